"""The demo as a newcomer meets it: shimd --demo with the pump emulator,
the demo technician alice@example.org, and the recording afterwards; and
the scripted walk-through of scripts/demo.sh."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

DEMO_SECRET = "JBSWY3DPEHPK3PXP"


def test_demo_session_and_recording():
    p = subprocess.Popen([st.SHIMD, "--demo"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out = b""
    demo_dir = None
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            out += line
            m = re.search(rb"connect a terminal to (\S+)/tech", line)
            if m:
                demo_dir = m.group(1).decode()
            if b"=====" in line and demo_dir and out.count(b"=====") >= 2:
                break
        assert demo_dir, out
        assert b"service PIN 4711" in out
        assert b"alice@example.org" in out
        tech = os.path.join(demo_dir, "tech")
        t = st.Pty(tech)
        t.read_until(st.PROMPT, 5)
        st.safe_epoch()
        code = st.totp(DEMO_SECRET)
        t.write(("alice@example.org %s\r" % code).encode())
        got = t.read_until(re.compile(rb"session (\S+)\r\n"), 10)
        sid = re.search(rb"session (\S+)\r\n", got).group(1).decode()
        t.write(b"\r")
        t.read_until(b"Service PIN: ", 5)
        t.write(b"4711\r")
        t.read_until(b"svc> ", 5)
        t.write(b"get rate\r")
        assert b"RATE 12.5 ml/h" in t.read_until(b"svc> ", 5)
        p.send_signal(signal.SIGINT)
        rest, _ = p.communicate(timeout=15)
        assert p.returncode == 0, rest
        assert b"Demo stopped" in rest
        cfg = os.path.join(demo_dir, "config.yaml")
        r = subprocess.run([st.SHIMCTL, "--config", cfg, "session", "list"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        assert sid in r.stdout and "shutdown" in r.stdout, r.stdout
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if demo_dir and os.environ.get("SHIM_KEEP") is None:
            shutil.rmtree(demo_dir, ignore_errors=True)


def test_walkthrough_runs_a_whole_session():
    r = subprocess.run(["sh", os.path.join(st.SRC, "scripts", "demo.sh"),
                        st.BUILD, "--walkthrough"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    for want in ("Shim MFA gate. Authenticate as:", "Auth fail",
                 "Authenticated as alice@example.org; session",
                 "Service mode. Type help.", "RATE SET 42.0 ml/h",
                 "FW chunks 1; bytes 256", "state: OPEN",
                 "ended: technician_disconnect",
                 "Walk-through complete"):
        assert want in out, (want, out[-3000:])
    # the device's view, from the recording
    assert "recording | " in out and "> 4711" in out, out[-3000:]


if __name__ == "__main__":
    st.need_binaries(st.SHIMD, st.SHIMCTL, st.EMULATOR)
    st.run(st.tests_of(globals()))
