#!/usr/bin/env python3
"""shimd protects itself (daemon/harden.c, daemon/notify.c): no_new_privs,
no capabilities, root dropped to shim.user, Landlock, the seccomp
allow-list (a system call outside it kills shimd), the service manager's
READY/WATCHDOG/STOPPING notifications. Needs the test build's hidden admin
commands (SHIM_TEST_HOOKS)."""
import ctypes
import os
import pwd
import signal
import socket
import subprocess
import time

import shimtest as st


def landlock_abi():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    return max(0, libc.syscall(444, None, 0, 1))


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def status(s):
    r = s.ctl("status")
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def admin_raw(s, line):
    """One admin request; returns the reply ('' when shimd died)."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(10)
    c.connect(os.path.join(s.storage, "shimd.sock"))
    c.sendall(line.encode() + b"\n")
    data = b""
    try:
        while True:
            b = c.recv(4096)
            if not b:
                break
            data += b
    except OSError:
        pass
    c.close()
    return data.decode("utf-8", "replace")


def test_status_and_log_report_the_hardening():
    def body(s):
        out = status(s)
        assert "capabilities: none\n" in out, out
        assert "no_new_privs: on\n" in out, out
        assert "seccomp: on (allow-list, kill)\n" in out, out
        if landlock_abi() > 0:
            assert "landlock: on (ABI %d," % landlock_abi() in out, out
        else:
            assert "landlock: off (" in out, out
        s.wait_log("hardening: user ")
        line = [l for l in s.log().splitlines() if "hardening: " in l][0]
        assert "capabilities none" in line and "seccomp allow-list" in line, line
        ps = proc_status(s.proc.pid)
        assert ps["NoNewPrivs"] == "1", ps
        assert ps["Seccomp"] == "2", ps          # filter mode
        for k in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
            assert int(ps[k], 16) == 0, (k, ps[k])
        if os.geteuid() == 0:
            # root without shim.user: uid 0 stays, the bounding set goes
            assert int(ps["CapBnd"], 16) == 0, ps["CapBnd"]
            assert "user: root (uid 0)" in out, out
        # the gate still works under all of it
        t = s.connect_tech()
        try:
            s.login(t)
        finally:
            t.close()
    st.with_shim(body)


def test_a_system_call_outside_the_allow_list_kills_shimd():
    s = st.Shim()
    try:
        s.start()
        assert "opened" in admin_raw(s, "test-open " + s.config)
        admin_raw(s, "test-forbidden-syscall")
        rc = s.proc.wait(20)
        assert rc == -signal.SIGSYS, (rc, s.log()[-2000:])
        log = s.log()
        assert "seccomp: system call " in log and \
            "is not on the allow-list: stopping" in log, log[-2000:]
    finally:
        s.cleanup()


def test_landlock_confines_the_filesystem():
    if landlock_abi() == 0:
        print("skip: the kernel has no Landlock")
        return

    def body(s):
        # the configuration and the storage: readable
        assert "opened" in admin_raw(s, "test-open " + s.config)
        assert "opened" in admin_raw(
            s, "test-open " + os.path.join(s.storage, "shimd.lock"))
        # anything else: refused, even to uid 0
        for p in ("/etc/passwd", "/etc/shadow", st.SHIMD, "/root"):
            r = admin_raw(s, "test-open " + p)
            assert "Permission denied" in r, (p, r)
        outside = os.path.join(s.dir, "outside")
        with open(outside, "w") as f:
            f.write("x")
        assert "Permission denied" in admin_raw(s, "test-open " + outside)
    st.with_shim(body)


def test_started_as_root_becomes_shim_user():
    if os.geteuid() != 0:
        print("skip: needs root")
        return
    nobody = pwd.getpwnam("nobody")
    s = st.Shim()
    try:
        # the pty links' directory must be writable by the user, and
        # sticky (like /tmp) for the storage check above the root
        os.chmod(s.dir, 0o1777)
        text = open(s.config).read().replace(
            "shim:\n", "shim:\n  user: nobody\n", 1)
        s.write_config(text)
        s.start()
        ps = proc_status(s.proc.pid)
        assert ps["Uid"].split() == [str(nobody.pw_uid)] * 4, ps["Uid"]
        assert ps["Gid"].split() == [str(nobody.pw_gid)] * 4, ps["Gid"]
        assert int(ps["CapEff"], 16) == 0 and int(ps["CapPrm"], 16) == 0
        assert int(ps["CapBnd"], 16) == 0, ps["CapBnd"]
        st_ = os.stat(s.storage)
        assert st_.st_uid == nobody.pw_uid and st_.st_mode & 0o777 == 0o700
        out = status(s)
        assert "user: nobody (uid %d)" % nobody.pw_uid in out, out
        assert "root dropped" in s.log(), s.log()[-2000:]
        t = s.connect_tech()
        try:
            sid = s.login(t)
        finally:
            t.close()
        s.stop()
        # what it wrote belongs to the user
        for root, dirs, files in os.walk(s.storage):
            for n in dirs + files:
                p = os.path.join(root, n)
                assert os.lstat(p).st_uid == nobody.pw_uid, p
        assert sid
    finally:
        s.cleanup()


def test_unknown_user_refuses_to_start():
    if os.geteuid() != 0:
        print("skip: needs root")
        return
    s = st.Shim()
    try:
        text = open(s.config).read().replace(
            "shim:\n", "shim:\n  user: no-such-user-here\n", 1)
        s.write_config(text)
        r = subprocess.run([st.SHIMD, "--config", s.config],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode != 0
        assert "shim.user no-such-user-here: no such user" in r.stderr, r.stderr
        assert not os.path.lexists(s.tech_path), "the gate side came up"
    finally:
        s.cleanup()


def test_notify_ready_watchdog_stopping():
    s = st.Shim()
    path = os.path.join(s.dir, "notify.sock")
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.bind(path)
    n.settimeout(20)
    try:
        s.start(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
        first = n.recv(4096).decode()
        assert first.startswith("READY=1\n"), first
        # READY comes after the seccomp filter is in place
        assert "seccomp on" in first, first
        t0 = time.time()
        pings = 0
        while pings < 3:
            msg = n.recv(4096).decode()
            assert msg == "WATCHDOG=1", msg
            pings += 1
        # every 0.2 s (half of WATCHDOG_USEC), not faster
        assert time.time() - t0 >= 0.35, time.time() - t0
        s.signal(signal.SIGTERM)
        while True:
            msg = n.recv(4096).decode()
            if msg != "WATCHDOG=1":
                break
        assert msg == "STOPPING=1", msg
        assert s.proc.wait(20) == 0
        assert "NOTIFY_SOCKET" not in s.log()
    finally:
        n.close()
        s.cleanup()


def test_unreachable_notify_socket_refuses_to_start():
    s = st.Shim()
    try:
        r = subprocess.run(
            [st.SHIMD, "--config", s.config], capture_output=True,
            text=True, timeout=20,
            env=dict(os.environ,
                     NOTIFY_SOCKET=os.path.join(s.dir, "nobody-listens")))
        assert r.returncode != 0
        assert "NOTIFY_SOCKET" in r.stderr, r.stderr
    finally:
        s.cleanup()


if __name__ == "__main__":
    st.need_binaries()
    st.run(st.tests_of(globals()))
