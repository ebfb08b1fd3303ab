"""shimd's gate as a technician meets it: codes are single-use (also across
a restart), lockout and its expiry, the admin reset, and start-up refusals
(config errors with file:line, unwritable storage, missing device)."""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

FAIL = re.compile(rb"Auth fail[^\n]*\n")
ANSWER = re.compile(rb"(Authenticated as [^\r]*\r\n|Auth fail[^\n]*\n)")


with_shim = st.with_shim


def attempt(t, tid, code):
    t.write(("%s %s\r" % (tid, code)).encode())
    ans = t.read_until(ANSWER, 6)
    return ANSWER.search(ans).group(0)


def test_replay_refused_also_after_restart():
    s = st.Shim(session={"idle_timeout": 900})
    try:
        s.start()
        s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=8)
        code = st.totp(s.techs["alice@example.org"], epoch)
        assert attempt(t, "alice@example.org", code).startswith(
            b"Authenticated as alice@example.org; session ")
        assert s.ctl("end-session").returncode == 0
        t.read_until(st.PROMPT, 5)
        # the same code again, and an older one
        assert attempt(t, "alice@example.org", code) == b"Auth fail\r\n"
        t.read_until(st.PROMPT, 5)
        older = st.totp(s.techs["alice@example.org"], epoch, steps=-1)
        assert attempt(t, "alice@example.org", older) == b"Auth fail\r\n"
        assert "auth fail: technician 'alice@example.org': replay" in s.log()
        # after a restart the mark is still there
        t.close()
        s.stop()
        s.start()
        s.connect_dev(count=2)
        t = s.connect_tech()
        assert attempt(t, "alice@example.org", code) == b"Auth fail\r\n"
        t.read_until(st.PROMPT, 5)
        # a later code still works
        newer = st.totp(s.techs["alice@example.org"], epoch, steps=1)
        assert attempt(t, "alice@example.org", newer).startswith(
            b"Authenticated as alice@example.org")
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()


def test_lockout_and_expiry():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=12)
        good = st.totp(s.techs["bob@example.org"], epoch)
        bad = "%06d" % ((int(good) + 500000) % 1000000)
        answers = []
        for _ in range(3):
            answers.append(attempt(t, "bob@example.org", bad))
            t.read_until(st.PROMPT, 5)
        assert answers[0] == b"Auth fail\r\n", answers
        assert answers[2].startswith(b"Auth fail: retry in "), answers
        # the right code is refused while locked out
        a = attempt(t, "bob@example.org", good)
        assert a.startswith(b"Auth fail"), a
        t.read_until(st.PROMPT, 5)
        assert "locked_out" in s.log()
        # another technician is not affected
        c = st.totp(s.techs["carol@example.org"], epoch)
        assert attempt(t, "carol@example.org", c).startswith(b"Authenticated")
        assert s.ctl("end-session").returncode == 0
        t.read_until(st.PROMPT, 5)
        time.sleep(4.2)  # the lockout must run out: time is the point
        a = attempt(t, "bob@example.org", good)
        assert a.startswith(b"Authenticated as bob@example.org"), a
        t.write(b"ok")
        assert dev.read_exact(2, 3) == b"ok"
    with_shim(body, totp_cfg={"max_failures": 3, "lockout_seconds": 4})


def test_admin_reset_lockout():
    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=10)
        good = st.totp(s.techs["dave@example.org"], epoch)
        bad = "%06d" % ((int(good) + 1) % 1000000)
        for _ in range(2):
            attempt(t, "dave@example.org", bad)
            t.read_until(st.PROMPT, 5)
        assert "lockouts: 1" in s.ctl("status").stdout
        r = s.ctl("reset-lockout", "dave@example.org")
        assert r.returncode == 0, r.stderr
        assert "cleared" in r.stdout
        assert re.search(r"admin uid=\d+ pid=\d+: reset-lockout "
                         r"dave@example.org: cleared", s.log())
        assert attempt(t, "dave@example.org", good).startswith(b"Authenticated")
    with_shim(body, totp_cfg={"max_failures": 2, "lockout_seconds": 600})


def test_shim_wide_rate_limit_locks_the_gate():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        answers = []
        # three failures fill the shim-wide budget; the fourth attempt
        # meets the limit
        for i in range(4):
            answers.append(attempt(t, "x%d@example.org" % i, "000000"))
            if i < 3:
                t.read_until(st.PROMPT, 5)
        assert answers[-1].startswith(b"Auth fail: retry in"), answers
        assert "state: LOCKED" in s.admin("status")
        # input while locked goes nowhere
        t.write(b"alice@example.org 123456\r")
        assert dev.read_for(0.5) == b""
        # the lock expires by itself and the prompt comes back
        t.read_until(st.PROMPT, 14)
        assert "state: CHALLENGE" in s.admin("status")
    with_shim(body, extra="", totp_cfg={"rate_limit_failures": 3,
                                        "rate_limit_seconds": 10})


def test_no_session_without_recording():
    # storage budget: refused before the code is spent
    def full(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=6)
        code = st.totp(s.techs["alice@example.org"], epoch)
        a = attempt(t, "alice@example.org", code)
        assert a == b"Auth fail: recording storage full\r\n", a
        assert dev.read_for(0.3) == b""
        assert "storage" in s.log()
    s = st.Shim()
    try:
        cfg = open(s.config).read().replace(
            "storage:\n", "storage:\n  min_free_bytes: 1000000000000000\n")
        s.write_config(cfg)
        s.start()
        full(s)
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.cleanup()

    # the recording cannot start: the gate stays closed
    def broken(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        sessions = os.path.join(s.storage, "sessions")
        for name in os.listdir(sessions):
            os.unlink(os.path.join(sessions, name))
        os.rmdir(sessions)
        open(sessions, "w").close()
        st.safe_epoch()
        code = st.totp(s.techs["bob@example.org"])
        a = attempt(t, "bob@example.org", code)
        assert a == b"Auth fail: recording unavailable\r\n", a
        t.write(b"anything\r")
        assert dev.read_for(0.5) == b""
        assert "state: CHALLENGE" in s.admin("status")
    with_shim(broken)


def test_check_config_reports_file_and_line():
    s = st.Shim()
    try:
        good = subprocess.run([st.SHIMD, "--check-config", s.config],
                              capture_output=True, text=True)
        assert good.returncode == 0, good.stderr
        text = open(s.config).read()
        text = text.replace("serial:\n", "serial:\n  baud_rate_typo: 5\n", 1)
        text = text.replace("  digits: 6", "  digits: 12")
        s.write_config(text)
        bad = subprocess.run([st.SHIMD, "--check-config", s.config],
                             capture_output=True, text=True)
        assert bad.returncode != 0
        lines = [l for l in bad.stderr.splitlines()
                 if re.match(re.escape(s.config) + r":\d+: ", l)]
        assert len(lines) >= 2, bad.stderr
        unknown = [l for l in lines if "baud_rate_typo" in l]
        assert unknown and unknown[0].startswith(s.config + ":4:"), lines
        # shimd --config refuses to start with the same errors
        run = subprocess.run([st.SHIMD, "--config", s.config],
                             capture_output=True, text=True, timeout=10)
        assert run.returncode != 0
        assert "refusing to start" in run.stderr
        assert not os.path.lexists(s.tech_path)
    finally:
        s.cleanup()


def test_refuses_unwritable_storage_and_missing_device():
    s = st.Shim()
    try:
        text = open(s.config).read()
        # storage root under a file: cannot be created
        blocker = os.path.join(s.dir, "blocker")
        open(blocker, "w").close()
        s.write_config(text.replace(s.storage, blocker + "/storage"))
        r = subprocess.run([st.SHIMD, "--config", s.config],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0
        assert "not writable" in r.stderr, r.stderr
        # a device path that does not exist
        s.write_config(text.replace("pty:" + s.dev_path,
                                    "/dev/serial/by-id/usb-none-if00"))
        r = subprocess.run([st.SHIMD, "--config", s.config],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0
        assert "device side /dev/serial/by-id/usb-none-if00" in r.stderr, \
            r.stderr
    finally:
        s.cleanup()


def test_version_and_help():
    r = subprocess.run([st.SHIMD, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("shimd ")
    r = subprocess.run([st.SHIMD, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for opt in ("--config", "--check-config", "--demo", "--log-level"):
        assert opt in r.stdout
    r = subprocess.run([st.SHIMD], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run([st.SHIMD, "--log-level", "loud", "--config", "x"],
                       capture_output=True, text=True)
    assert r.returncode == 2


if __name__ == "__main__":
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    st.run(st.tests_of(globals()))
