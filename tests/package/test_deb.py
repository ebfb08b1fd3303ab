#!/usr/bin/env python3
"""The Debian package (make deb) installed on this machine with dpkg -i:
files, modes, the shim user, the unit (systemd-analyze verify and
security), the conffile, remove keeping the data and purge deleting it.
Cleans up after itself: the package is purged, and the shim user and gpio
group are deleted when this test created them. Needs root (dpkg -i)."""
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import time

SRC = os.environ.get("SHIM_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")
BUILD = os.environ.get("SHIM_BUILD") or os.path.join(SRC, "build")
UNIT = "/lib/systemd/system/shimd.service"
MAX_EXPOSURE = 2.0


def run(*cmd, check=True, **kw):
    r = subprocess.run(list(cmd), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(cmd), r.returncode,
                                                   r.stdout, r.stderr))
    return r


def mode_owner(path):
    s = os.lstat(path)
    return (stat.S_IMODE(s.st_mode), pwd.getpwuid(s.st_uid).pw_name,
            grp.getgrgid(s.st_gid).gr_name)


def version():
    out = run("dpkg-parsechangelog", "-S", "Version", cwd=SRC).stdout.strip()
    return out


def exists(name, db):
    try:
        (pwd.getpwnam if db == "passwd" else grp.getgrnam)(name)
        return True
    except KeyError:
        return False


def installed():
    r = run("dpkg-query", "-W", "-f=${Status}", "shimd", check=False)
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def main():
    if os.geteuid() != 0:
        print("needs root (dpkg -i)\n0 passed, 1 failed")
        return 1
    if installed():
        print("shimd is already installed here: not touching it\n0 passed, 1 failed")
        return 1
    had_user = exists("shim", "passwd")
    had_gpio = exists("gpio", "group")
    arch = run("dpkg", "--print-architecture").stdout.strip()
    build_rel = os.path.relpath(os.path.abspath(BUILD), os.path.abspath(SRC))
    deb = os.path.join(BUILD, "shimd_%s_%s.deb" % (version(), arch))
    t0 = time.time()
    run("make", "-C", SRC, "deb", "BUILD=" + build_rel, timeout=1500)
    print("make deb: %.0f s" % (time.time() - t0))
    assert os.path.isfile(deb), deb
    checks = 0
    try:
        run("dpkg", "-i", deb)
        # files
        for p in ("/usr/sbin/shimd", "/usr/bin/shimctl"):
            assert os.access(p, os.X_OK), p
        for p in (UNIT, "/usr/share/man/man8/shimd.8.gz",
                  "/usr/share/man/man5/shim.yaml.5.gz",
                  "/usr/share/doc/shimd/copyright",
                  "/etc/shim/config.yaml"):
            assert os.path.isfile(p), p
        docs = os.listdir("/usr/share/doc/shimd")
        assert any(d.startswith("operations.md") for d in docs), docs
        assert any(d.startswith("README.md") for d in docs), docs
        r = run("/usr/sbin/shimd", "--version")
        assert version() in r.stdout, r.stdout
        # the package has no test hooks
        with open("/usr/sbin/shimd", "rb") as f:
            assert b"test-forbidden-syscall" not in f.read()
        checks += 1
        # the user and the modes
        pw = pwd.getpwnam("shim")
        assert pw.pw_dir == "/var/lib/shim" and pw.pw_shell.endswith("nologin"), pw
        groups = [g.gr_name for g in grp.getgrall() if "shim" in g.gr_mem]
        assert "dialout" in groups and "gpio" in groups, groups
        assert mode_owner("/var/lib/shim") == (0o700, "shim", "shim"), \
            mode_owner("/var/lib/shim")
        assert mode_owner("/etc/shim") == (0o750, "root", "shim"), \
            mode_owner("/etc/shim")
        assert mode_owner("/etc/shim/config.yaml") == (0o600, "shim", "shim"), \
            mode_owner("/etc/shim/config.yaml")
        checks += 1
        # the conffile, and the configuration it holds works
        r = run("dpkg-query", "-W", "-f=${Conffiles}", "shimd")
        assert "/etc/shim/config.yaml" in r.stdout, r.stdout
        r = run("/usr/sbin/shimd", "--check-config", "/etc/shim/config.yaml")
        assert "ok" in r.stdout, r.stdout
        r = run("runuser", "-u", "shim", "--", "/usr/sbin/shimd",
                "--check-config", "/etc/shim/config.yaml")
        checks += 1
        # the unit
        text = open(UNIT).read()
        for want in ("Type=notify", "WatchdogSec=", "Restart=on-failure",
                     "User=shim", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "ReadWritePaths=/var/lib/shim", "PrivateTmp=yes",
                     "ProtectHome=yes", "DevicePolicy=closed", "DeviceAllow=",
                     "CapabilityBoundingSet=\n",
                     "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                     "SystemCallFilter=@system-service",
                     "MemoryDenyWriteExecute=yes", "LockPersonality=yes"):
            assert want in text, want
        r = run("systemd-analyze", "verify", UNIT, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        r = run("systemd-analyze", "security", "--offline=true", UNIT)
        m = re.search(r"Overall exposure level for shimd\.service: ([0-9.]+) (\w+)",
                      r.stdout)
        assert m, r.stdout[-500:]
        print("systemd-analyze security: %s %s" % (m.group(1), m.group(2)))
        assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout
        checks += 1
        # the man pages render
        for page in ("/usr/share/man/man8/shimd.8.gz",
                     "/usr/share/man/man5/shim.yaml.5.gz"):
            r = run("man", "-l", page, env=dict(os.environ, MANPAGER="cat",
                                                 MANWIDTH="80"))
            assert "NAME" in r.stdout and not r.stderr.strip(), r.stderr
        checks += 1
        # remove keeps the data and the changed conffile; purge deletes both
        with open("/etc/shim/config.yaml", "a") as f:
            f.write("# changed by the operator\n")
        marker = "/var/lib/shim/recording-marker"
        run("runuser", "-u", "shim", "--", "touch", marker)
        run("dpkg", "-r", "shimd")
        assert not os.path.exists("/usr/sbin/shimd")
        assert os.path.exists(marker), "remove deleted the data"
        assert "changed by the operator" in open("/etc/shim/config.yaml").read()
        run("dpkg", "-P", "shimd")
        assert not os.path.exists("/var/lib/shim"), "purge kept the data"
        assert not os.path.exists("/etc/shim/config.yaml"), "purge kept the config"
        r = run("dpkg-statoverride", "--list", check=False)
        assert "/var/lib/shim" not in r.stdout and "/etc/shim" not in r.stdout
        checks += 1
    finally:
        if installed() or run("dpkg-query", "-W", "shimd", check=False).returncode == 0:
            run("dpkg", "-P", "shimd", check=False)
        if not had_user and exists("shim", "passwd"):
            run("userdel", "shim", check=False)
        if not had_gpio and exists("gpio", "group"):
            run("groupdel", "gpio", check=False)
        if not had_user and exists("shim", "group"):
            run("groupdel", "shim", check=False)
    print("ok   package: %d checks" % checks)
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:
        import traceback
        traceback.print_exc()
        print("0 passed, 1 failed")
        sys.exit(1)
