"""shimctl's command line as an engineer meets it: every command has a
real --help (exit 0) listing the same options as the man page
(docs/man/shimctl.1.scd), and a misspelled option or a missing value gets
that command's usage on stderr, exit 2, with nothing written or sent."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

MAN = os.path.join(st.SRC, "docs", "man", "shimctl.1.scd")


def ctl(*args, cwd=None, config=None):
    env = dict(os.environ)
    env.pop("SHIM_CONFIG", None)
    argv = [st.SHIMCTL] + (["--config", config] if config else []) + \
        list(args)
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)


def commands():
    """The commands shimctl --help lists."""
    p = ctl("--help")
    assert p.returncode == 0, p.stderr
    names = re.findall(r"^  shimctl (\S+)", p.stdout, re.M)
    assert len(names) >= 10, p.stdout
    return names


def help_options(cmd):
    p = ctl(cmd, "--help")
    assert p.returncode == 0, (cmd, p.stderr)
    assert p.stdout.startswith("usage: shimctl %s" % cmd), p.stdout
    assert p.stderr == "", p.stderr
    body = p.stdout.split("\noptions:\n", 1)[1]
    return {m for m in re.findall(r"^  (-\S+)", body, re.M)} - {"--help"}


def man_options():
    """{command: set of options} from the man page's COMMANDS section."""
    text = open(MAN).read()
    text = text.split("\n# COMMANDS\n", 1)[1].split("\n# ", 1)[0]
    out = {}
    for sec in re.split(r"^## ", text, flags=re.M)[1:]:
        name, body = sec.split("\n", 1)
        out[name.strip()] = set(re.findall(r"^\*(-[^*]+)\*", body, re.M))
    return out


def test_help_matches_man_page():
    man = man_options()
    cmds = commands()
    assert sorted(man) == sorted(cmds), (sorted(man), sorted(cmds))
    for c in cmds:
        assert help_options(c) == man[c], (c, help_options(c), man[c])


def _tree(d):
    out = []
    for root, dirs, files in os.walk(d):
        for f in dirs + files:
            p = os.path.join(root, f)
            st_ = os.lstat(p)
            out.append((p, st_.st_size, st_.st_mtime_ns))
    return sorted(out)


def test_misspelled_option_writes_nothing():
    d = tempfile.mkdtemp(prefix="shimtest-cli-")
    try:
        os.mkdir(os.path.join(d, "storage"), 0o700)
        cfg = os.path.join(d, "config.yaml")
        with open(cfg, "w") as f:
            f.write("shim:\n  id: cli\nserial:\n"
                    "  technician_side_path: \"pty:%s/tech\"\n"
                    "  device_side_path: \"pty:%s/dev\"\n"
                    "storage:\n  root: \"%s/storage\"\n"
                    "technicians_file: technicians.yaml\n" % (d, d, d))
        before = _tree(d)
        for c in commands():
            for bad in (["--no-such-option"], ["--no-such=1"]):
                p = ctl(c, *bad, cwd=d, config=cfg)
                assert p.returncode == 2, (c, bad, p.returncode, p.stderr)
                assert "shimctl %s: unknown option '--no-such" % c \
                    in p.stderr, (c, p.stderr)
                assert "usage: shimctl %s" % c in p.stderr, p.stderr
                assert p.stdout == "", (c, p.stdout)
        # enrol: a misspelled --png and a --confirm without its value
        for args in (["bob@example.org", "--pgn", "qr.png"],
                     ["bob@example.org", "--secret",
                      "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "--confirm"],
                     ["bob@example.org", "--dry-run=yes"]):
            p = ctl("enrol", *args, cwd=d, config=cfg)
            assert p.returncode == 2, (args, p.stderr)
            assert p.stdout == "", p.stdout  # no secret was printed
        assert _tree(d) == before, "files changed: %r" % (
            set(_tree(d)) ^ set(before))
        assert not os.path.exists(os.path.join(d, "technicians.yaml"))
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_help_never_reaches_the_daemon():
    def body(s):
        n = len([e for e in s.events() if e.get("event") == "admin"])
        for args in (["reset-lockout", "--help", "alice@example.org"],
                     ["reset-lockout", "alice@example.org", "--bogus"],
                     ["end-session", "-h"], ["clock", "trust", "--help"],
                     ["gate", "reset-state", "--help"]):
            p = ctl(*args, config=s.config)
            assert p.returncode in (0, 2), (args, p.returncode, p.stderr)
        # a real request afterwards does reach the daemon and its audit
        # log: once it is there, the ones above would be too
        p = ctl("reset-lockout", "carol@example.org", config=s.config)
        assert p.returncode == 0, p.stderr
        s.wait_log("reset-lockout carol@example.org", 30)
        s.wait_event("admin", 30)
        admin = [e for e in s.events() if e.get("event") == "admin"]
        assert len(admin) == n + 1, admin
        assert "reset-lockout alice" not in s.log(), s.log()[-2000:]
        assert "clock trust" not in s.log() and \
            "end-session" not in s.log(), s.log()[-2000:]
    st.with_shim(body)


def test_enrol_without_a_place_to_save_prints_no_secret():
    d = tempfile.mkdtemp(prefix="shimtest-cli-")
    try:
        cfg = os.path.join(d, "config.yaml")
        with open(cfg, "w") as f:
            f.write("shim:\n  id: cli\nserial:\n"
                    "  technician_side_path: \"pty:%s/tech\"\n"
                    "  device_side_path: \"pty:%s/dev\"\n"
                    "storage:\n  root: \"%s/storage\"\n" % (d, d, d))
        p = ctl("enrol", "bob@example.org", cwd=d, config=cfg)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "storage root" in p.stderr and "provision" in p.stderr, \
            p.stderr
        assert p.stdout == "", p.stdout  # no secret, no QR code
        # --dry-run still shows one to add by hand
        p = ctl("enrol", "bob@example.org", "--dry-run", cwd=d, config=cfg)
        assert p.returncode == 0, p.stderr
        assert "Secret (base32): " in p.stdout, p.stdout
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_status_and_reset_lockout_answers():
    def body(s):
        p = ctl("status", config=s.config)
        assert p.returncode == 0, p.stderr
        # the test shims run transport: noop: nothing to be down
        assert "siem_link: disabled (transport: noop)\n" in p.stdout, \
            p.stdout
        p = ctl("reset-lockout", "nobody@example.org", config=s.config)
        assert p.returncode == 0, p.stderr
        assert "not an enrolled technician" in p.stdout, p.stdout
        p = ctl("reset-lockout", "alice@example.org", config=s.config)
        assert p.returncode == 0, p.stderr
        assert "no lockout held for that id" in p.stdout, p.stdout
        assert "not an enrolled" not in p.stdout, p.stdout
    st.with_shim(body)


if __name__ == "__main__":
    st.need_binaries()
    st.run(st.tests_of(globals()))
