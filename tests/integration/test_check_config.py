"""shimd --check-config as an installer uses it: the shipped
config.example.yaml loads, and what the file alone cannot show (nobody
enrolled, serial paths missing, storage not writable) is reported as a
warning that does not fail the check."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

EXAMPLE = os.path.join(st.SRC, "config.example.yaml")


def check(path):
    p = subprocess.run([st.SHIMD, "--check-config", path],
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def test_example_config_loads():
    rc, out, err = check(EXAMPLE)
    assert rc == 0, err
    assert "error" not in err, err
    assert out.strip().endswith("config.example.yaml: ok"), out
    # nobody is enrolled in the example, and it says so
    assert "warning: no technicians enrolled" in err, err


def _edit(text, key, value):
    out = []
    for line in text.split("\n"):
        if line.strip().startswith(key + ":"):
            indent = line[:len(line) - len(line.lstrip())]
            line = "%s%s: %s" % (indent, key, st.yaml_str(value))
        out.append(line)
    return "\n".join(out)


def test_example_with_real_paths_reports_them():
    d = tempfile.mkdtemp(prefix="shimtest-cc-")
    try:
        text = open(EXAMPLE).read()
        text = _edit(text, "technician_side_path", "pty:" + d + "/tech")
        text = _edit(text, "device_side_path", "/dev/null")
        os.mkdir(os.path.join(d, "storage"), 0o700)
        text = _edit(text, "root", os.path.join(d, "storage"))
        cfg = os.path.join(d, "config.yaml")
        with open(cfg, "w") as f:
            f.write(text)
        rc, out, err = check(cfg)
        assert rc == 0, err
        assert "storage.root: %s/storage is writable" % d in out, out
        assert "device_side_path: /dev/null exists" in out, out
        assert "technician_side_path" not in err, err
        # a missing serial path and a missing pty directory: warnings only
        text2 = _edit(text, "device_side_path", d + "/no-such-tty")
        text2 = _edit(text2, "technician_side_path", "pty:" + d + "/nodir/t")
        text2 = _edit(text2, "root", d + "/no-storage")
        with open(cfg, "w") as f:
            f.write(text2)
        rc, out, err = check(cfg)
        assert rc == 0, err
        assert ("warning: serial.device_side_path: %s/no-such-tty does "
                "not exist" % d) in err, err
        assert "directory %s/nodir for the pty link does not exist" % d \
            in err, err
        assert "warning: storage.root: %s/no-storage does not exist" % d \
            in err, err
        # a read-only storage root (as a non-root user only: root may write)
        if os.geteuid() != 0:
            os.chmod(os.path.join(d, "storage"), 0o500)
            with open(cfg, "w") as f:
                f.write(text)
            rc, out, err = check(cfg)
            assert rc == 0, err
            assert "storage/ is not writable" in err or \
                "storage is not writable" in err, err
            os.chmod(os.path.join(d, "storage"), 0o700)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_directory_as_config_is_an_error():
    d = tempfile.mkdtemp(prefix="shimtest-cc-")
    try:
        rc, out, err = check(d)
        assert rc != 0
        assert "%s: cannot read: is a directory" % d in err, err
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_missing_config_names_the_cause():
    rc, out, err = check("/nonexistent/shim.yaml")
    assert rc != 0
    assert "/nonexistent/shim.yaml: cannot read: No such file" in err, err


if __name__ == "__main__":
    st.need_binaries(st.SHIMD)
    st.run(st.tests_of(globals()))
