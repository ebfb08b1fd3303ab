"""The storage root trusts nothing it did not make: shimd refuses to start
on a storage tree another user could write to or owns, naming the path, its
owner and mode, and a symbolic link planted where a temporary or state file
goes is never followed: a root-owned file outside the storage stays as it
was. Real files, real chown, run as root."""

import os
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

PRECIOUS = b"root-owned file outside the storage: must not change\n"


def need_root():
    if os.geteuid() != 0:
        raise AssertionError("this test needs root (real chown)")


def outside_target(s):
    """A root-owned file outside the storage root, for links to point at."""
    d = os.path.join(s.dir, "outside")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "precious")
    with open(path, "wb") as f:
        f.write(PRECIOUS)
    os.chown(path, 0, 0)
    os.chmod(path, 0o644)
    return path


def assert_unchanged(path):
    with open(path, "rb") as f:
        body = f.read()
    assert body == PRECIOUS, "the file outside the storage changed: %r" % body
    sb = os.stat(path)
    assert sb.st_uid == 0 and stat.S_IMODE(sb.st_mode) == 0o644, sb


def run_shimd(s):
    return subprocess.run([st.SHIMD, "--config", s.config],
                          capture_output=True, text=True, timeout=20)


def first_run(s):
    """Starts and stops shimd once, so the storage tree exists."""
    s.start()
    assert s.stop() == 0, s.log()


def refusal_line(r, path):
    assert r.returncode != 0, "shimd started:\n" + r.stderr
    lines = [l for l in r.stderr.splitlines() if "storage " + path in l]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_refuses_world_writable_root():
    need_root()
    s = st.Shim()
    try:
        os.mkdir(s.storage, 0o700)
        os.chmod(s.storage, 0o777)
        r = run_shimd(s)
        line = refusal_line(r, s.storage)
        assert "writable by group or others" in line, line
        assert "mode 0777" in line and "owner root (uid 0)" in line, line
        assert not os.path.lexists(s.tech_path), "the gate side came up"
        # only the write bits matter: 0755 is fine
        os.chmod(s.storage, 0o755)
        first_run(s)
    finally:
        s.cleanup()


def test_refuses_subdirectory_of_another_user():
    need_root()
    s = st.Shim()
    try:
        first_run(s)
        sessions = os.path.join(s.storage, "sessions")
        os.chown(sessions, 65534, 65534)      # nobody
        r = run_shimd(s)
        line = refusal_line(r, sessions)
        assert "owned by another user" in line, line
        assert "nobody (uid 65534)" in line and "mode 0700" in line, line
        os.chown(sessions, 0, 0)
        # a group-writable directory deeper down is refused as well
        os.chmod(os.path.join(s.storage, "state"), 0o770)
        r = run_shimd(s)
        line = refusal_line(r, os.path.join(s.storage, "state"))
        assert "mode 0770" in line, line
    finally:
        s.cleanup()


def test_refuses_lax_directory_above_root():
    need_root()
    s = st.Shim()
    try:
        parent = os.path.join(s.dir, "lax")
        os.mkdir(parent)
        os.chmod(parent, 0o777)               # not sticky
        text = open(s.config).read().replace(s.storage, parent + "/storage")
        s.write_config(text)
        r = run_shimd(s)
        assert r.returncode != 0, r.stderr
        assert "storage %s (above the root" % parent in r.stderr, r.stderr
        assert "mode 0777" in r.stderr, r.stderr
        assert not os.path.lexists(s.tech_path), "the gate side came up"
    finally:
        s.cleanup()


def test_planted_links_refused_at_start():
    need_root()
    s = st.Shim()
    try:
        first_run(s)
        target = outside_target(s)
        # where the write probe, a state blob and the lock file go
        links = [os.path.join(s.storage, ".shimd-write-test"),
                 os.path.join(s.storage, "state", "gate-state.slots.tmp.1"),
                 os.path.join(s.storage, "shimd.lock.new")]
        for link in links:
            os.symlink(target, link)
            r = run_shimd(s)
            line = refusal_line(r, link)
            assert "is a symbolic link" in line, line
            assert_unchanged(target)
            os.unlink(link)
        # a link in place of a whole storage directory
        sessions = os.path.join(s.storage, "sessions")
        os.rename(sessions, sessions + ".real")
        os.symlink(os.path.dirname(target), sessions)
        r = run_shimd(s)
        refusal_line(r, sessions)
        assert os.listdir(os.path.dirname(target)) == ["precious"]
        assert_unchanged(target)
    finally:
        s.cleanup()


def test_links_planted_while_running_not_followed():
    """Names a writer could guess while shimd runs (the temporary file of
    each state blob under the old <name>.tmp.<pid> scheme, the lock and
    the event log): saving the gate's replay mark after a login goes
    through none of them."""
    need_root()

    def body(s):
        target = outside_target(s)
        state = os.path.join(s.storage, "state")
        planted = []
        for name in os.listdir(state):
            for tmp in ("%s.tmp.%d" % (name, s.proc.pid), name + ".tmp"):
                p = os.path.join(state, tmp)
                os.symlink(target, p)
                planted.append(p)
        t = s.connect_tech()
        s.connect_dev()
        st.safe_epoch()
        s.login(t)                        # saves gate-state durably
        s.admin("end-session")
        assert_unchanged(target)
        for p in planted:
            assert os.path.islink(p), p   # left alone, never written
        mark = os.lstat(os.path.join(state, "gate-state.slots"))
        assert stat.S_ISREG(mark.st_mode) and \
            stat.S_IMODE(mark.st_mode) == 0o600, mark
        for p in planted:
            os.unlink(p)
    st.with_shim(body)


if __name__ == "__main__":
    st.need_binaries()
    st.run(st.tests_of(globals()))
