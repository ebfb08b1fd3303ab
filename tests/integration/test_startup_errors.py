"""shimd refuses to start with a message that names the real cause, as a
clinical engineer reads it in the journal: a serial path that is a plain
file (not a terminal), a directory given as the configuration file, a
missing configuration file, and storage on a read-only filesystem (when
this machine lets the test mount one). --check-config says the same as
warnings or errors."""
import os
import pty
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402


def shimd(*args):
    return subprocess.run([st.SHIMD, *args], capture_output=True, text=True,
                          timeout=20)


def config(d, tech, dev, root):
    path = os.path.join(d, "config.yaml")
    with open(path, "w") as f:
        f.write("shim:\n  id: se\nserial:\n  technician_side_path: %s\n"
                "  device_side_path: %s\nstorage:\n  root: %s\n"
                "siem:\n  transport: noop\n" % (tech, dev, root))
    os.chmod(path, 0o600)
    return path


def test_serial_path_that_is_not_a_terminal():
    d = tempfile.mkdtemp(prefix="shimtest-se-")
    plain = os.path.join(d, "ttyUSB0")
    open(plain, "w").close()
    m, s = pty.openpty()
    cfg = config(d, plain, os.ttyname(s), os.path.join(d, "storage"))
    p = shimd("--config", cfg)
    assert p.returncode != 0, p.stderr
    assert "technician side %s: is a regular file, not a terminal" % plain \
        in p.stderr, p.stderr
    p = shimd("--check-config", cfg)
    assert "is not a character device (not a tty)" in p.stderr, p.stderr
    os.close(m)
    os.close(s)


def test_config_that_is_a_directory_or_missing():
    d = tempfile.mkdtemp(prefix="shimtest-se-")
    for args in (["--config", d], ["--check-config", d]):
        p = shimd(*args)
        assert p.returncode != 0 and \
            "%s: cannot read: is a directory, not a config file" % d \
            in p.stderr, p.stderr
    missing = os.path.join(d, "nope.yaml")
    p = shimd("--config", missing)
    assert p.returncode != 0 and "%s: cannot read: No such file" % missing \
        in p.stderr, p.stderr


def test_storage_on_a_read_only_filesystem():
    d = tempfile.mkdtemp(prefix="shimtest-se-")
    ro = os.path.join(d, "ro")
    os.mkdir(ro)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", ro],
                      capture_output=True).returncode != 0:
        print("  (cannot mount here: read-only storage not checked)")
        return
    try:
        os.mkdir(os.path.join(ro, "storage"), 0o700)
        assert subprocess.run(["mount", "-o", "remount,ro", ro]).returncode \
            == 0
        m, s = pty.openpty()
        m2, s2 = pty.openpty()
        cfg = config(d, os.ttyname(s), os.ttyname(s2),
                     os.path.join(ro, "storage"))
        p = shimd("--config", cfg)
        assert p.returncode != 0 and "is on a read-only filesystem" in \
            p.stderr, p.stderr
        p = shimd("--check-config", cfg)
        assert "is not writable (Read-only file system)" in p.stderr, \
            p.stderr
        for fd in (m, s, m2, s2):
            os.close(fd)
    finally:
        subprocess.run(["umount", ro])


if __name__ == "__main__":
    st.need_binaries()
    sys.exit(st.run(st.tests_of(globals())))
