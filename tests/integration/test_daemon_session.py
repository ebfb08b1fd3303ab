"""shimd session life: idle timeout, technician hang-up with and without
the reconnect grace, device side lost, SIGTERM, admin end-session and
status, and the next technician after a session ends."""

import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402



with_shim = st.with_shim


ended = st.ended


def footer_reason(s, sid):
    """The terminal_reason sealed into the recording's footer."""
    deadline = time.time() + 5
    while True:
        try:
            return s.footer(sid)["terminal_reason"]
        except Exception:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def test_idle_timeout():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        t.write(b"x")
        dev.read_exact(1, 3)
        t0 = time.time()
        got_sid, reason = ended(t, 10)
        took = time.time() - t0
        assert (got_sid, reason) == (sid, "idle_timeout"), reason
        assert footer_reason(s, sid) == "idle_timeout"
        assert 1.5 <= took <= 4.5, took
        # back to CHALLENGE: the next prompt, and nothing crosses
        t.read_until(st.PROMPT, 3)
        t.write(b"after\r")
        assert dev.read_for(0.5) == b""
    with_shim(body, session={"idle_timeout": 2})


def test_typing_keeps_session_alive():
    """Idle means no technician input: typing keeps the session open."""
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        s.login(t)
        for _ in range(6):
            time.sleep(0.5)
            t.write(b".")
            dev.read_exact(1, 3)
        assert "idle_timeout" not in s.log()
    with_shim(body, session={"idle_timeout": 2})


def test_device_output_does_not_keep_session_alive():
    """A chatty device and a silent technician: the session goes idle."""
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        start = time.time()
        while "idle_timeout" not in s.log() and time.time() - start < 8:
            dev.write(b".")
            time.sleep(0.3)
        assert "idle_timeout" in s.log()
        assert 1.8 < time.time() - start < 5, time.time() - start
        assert footer_reason(s, sid) == "idle_timeout"
    with_shim(body, session={"idle_timeout": 2})


def test_max_duration():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        deadline = time.time() + 1.5
        while time.time() < deadline:
            t.write(b"k")
            dev.read_exact(1, 3)
            time.sleep(0.2)
        assert ended(t, 5) == (sid, "max_duration")
        assert footer_reason(s, sid) == "max_duration"
    with_shim(body, session={"max_duration": 2, "idle_timeout": 60})


def test_hangup_without_grace_ends_session_and_next_technician():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        t.write(b"one")
        assert dev.read_exact(3, 3) == b"one"
        t.close()
        s.wait_log("session %s of alice@example.org ended: "
                   "technician_disconnect" % sid)
        # Device output after the end goes nowhere.
        dev.write(b"LATE")
        # The next technician connects at the same path.
        t2 = s.connect_tech()
        assert b"LATE" not in t2.read_for(0.3)
        sid2 = s.login(t2, "bob@example.org")
        assert sid2 != sid
        assert footer_reason(s, sid) == "technician_disconnect"
        t2.write(b"two")
        assert dev.read_exact(3, 3) == b"two"
    with_shim(body, session={"reconnect_grace": 0})


def test_hangup_with_grace_return_needs_a_fresh_code():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch()
        sid = s.login(t, epoch=epoch)
        t.close()
        s.wait_log("reconnect grace")
        # The device answers while nobody is connected: held, not lost.
        dev.write(b"HELD")
        # Give shimd the chance to read it while nobody is connected (the
        # outcome asserted below is the same if it has not yet).
        time.sleep(0.3)
        # Whoever opens the line gets the prompt, not the session.
        t2 = s.connect_tech()
        t2.write(b"tool\r")
        assert dev.read_for(0.5) == b""
        seen = t2.read_until(st.PROMPT, 5)
        assert b"Auth fail" in seen and b"HELD" not in seen, seen
        # the same technician, a code of a later step: the session resumes
        resumed = s.login(t2, epoch=epoch, steps=1)
        assert resumed == sid
        t2.read_until(b"Session resumed\r\n", 3)
        assert t2.read_exact(4, 5) == b"HELD"
        t2.write(b"tool")
        assert dev.read_exact(4, 3) == b"tool"
        status = s.admin("status")
        assert "session: %s" % sid in status, status
        assert "state: OPEN" in status
        s.ctl("end-session", check=True)
        ended(t2, 5)
        # one session, both connections, nothing lost while away
        assert s.recorded(sid, "out") == b"HELD"
        assert s.recorded(sid, "in") == b"tool"
    with_shim(body, session={"reconnect_grace": 5})


def test_grace_expires():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        t.close()
        t0 = time.time()
        s.wait_log("ended: technician_disconnect", 6)
        assert time.time() - t0 >= 1.5
        t2 = s.connect_tech()
        t2.write(b"nothing\r")
        assert dev.read_for(0.5) == b""
        assert "state: CHALLENGE" in s.admin("status")
        assert footer_reason(s, sid) == "technician_disconnect"
    with_shim(body, session={"reconnect_grace": 2})


def test_device_lost():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        dev.close()
        assert ended(t, 5) == (sid, "device_disconnect")
        assert footer_reason(s, sid) == "device_disconnect"
        t.read_until(st.PROMPT, 3)
        # A device comes back at the same path and a new session works.
        s.wait_log("renewed: waiting for the device")
        dev2 = s.connect_dev(count=2)
        s.login(t, "bob@example.org")
        t.write(b"again")
        assert dev2.read_exact(5, 3) == b"again"
    with_shim(body)


def test_sigterm_ends_session():
    s = st.Shim().start()
    try:
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        t.write(b"q")
        dev.read_exact(1, 3)
        s.signal(signal.SIGTERM)
        assert ended(t, 5) == (sid, "shutdown")
        assert b"Shim shutting down" in t.read_until(b"Shim shutting down", 5)
        assert s.proc.wait(10) == 0
        # the recording was sealed with its footer
        assert footer_reason(s, sid) == "shutdown"
        assert not os.path.lexists(s.tech_path)
    finally:
        s.cleanup()


def test_admin_status_and_end_session():
    def body(s):
        dev = s.connect_dev()
        r = s.ctl("status")
        assert r.returncode == 0, r.stderr
        assert "state: IDLE" in r.stdout, r.stdout
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        t.write(b"12345")
        dev.read_exact(5, 3)
        r = s.ctl("status")
        assert "state: OPEN" in r.stdout, r.stdout
        assert "technician: alice@example.org" in r.stdout
        assert "session: %s" % sid in r.stdout
        assert "bytes_in: 5" in r.stdout
        assert "clock: ok" in r.stdout
        r = s.ctl("end-session")
        assert r.returncode == 0, r.stderr
        assert ended(t, 5) == (sid, "admin")
        assert footer_reason(s, sid) == "admin"
        assert re.search(r"admin uid=\d+ pid=\d+: end-session", s.log())
        r = s.ctl("end-session")
        assert r.returncode != 0 and "no session" in r.stderr
    with_shim(body)


def test_events_in_the_audit_log():
    import json

    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch()
        good = st.totp(s.techs["alice@example.org"], epoch)
        wrong = "%06d" % ((int(good) + 3) % 1000000)
        t.write(("alice@example.org %s\r" % wrong).encode())
        t.read_until(st.PROMPT, 5)
        t.write(("nobody@example.org %s\r" % good).encode())
        t.read_until(st.PROMPT, 5)
        sid = s.login(t)
        t.write(b"abc")
        s.ctl("end-session", check=True)
        ended(t, 5)
        s.stop()
        with open(os.path.join(s.storage, "audit.jsonl")) as f:
            text = f.read()
        evs = [json.loads(l) for l in text.splitlines()]
        names = [e["event"] for e in evs]
        for n in ("boot", "auth_fail", "auth_ok", "session_start",
                  "session_end", "admin", "shutting_down"):
            assert n in names, (n, names)
        fails = [e for e in evs if e["event"] == "auth_fail"]
        assert [(e["technician"], e["reason"]) for e in fails] == [
            ("alice@example.org", "bad_code"),
            ("nobody@example.org", "bad_user")], fails
        ok = [e for e in evs if e["event"] == "auth_ok"][0]
        assert ok["technician"] == "alice@example.org" and "drift" in ok
        end = [e for e in evs if e["event"] == "session_end"][0]
        assert end["session"] == sid and end["reason"] == "admin"
        assert end["bytes_in"] in ("3", 3)
        # codes never reach the audit log (time stamps aside)
        values = " ".join(str(v) for e in evs for k, v in e.items()
                          if k != "time_ns")
        assert good not in values and wrong not in values
        seqs = [int(e["seq"]) for e in evs]
        assert seqs == sorted(set(seqs))
    with_shim(body)


def test_admin_socket_is_private():
    def body(s):
        sock = os.path.join(s.storage, "shimd.sock")
        assert (os.stat(sock).st_mode & 0o777) == 0o600
        assert s.admin("bogus").endswith("error: unknown command\n")
    with_shim(body)


if __name__ == "__main__":
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    st.run(st.tests_of(globals()))
