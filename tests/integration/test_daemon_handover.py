"""The hand-over of a session between technician connections, and the edges
of the gate around it: within the reconnect grace the next connection meets
the normal prompt (never the open session), the returning technician resumes
with a fresh code, another technician seals the old session and starts a new
one; idle means no technician input (device chatter does not keep a session
open); bytes typed in the same write as the authentication line never reach
the device."""

import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

ALICE = "alice@example.org"
BOB = "bob@example.org"


ended = st.ended


def sid_of(answer):
    m = re.search(rb"Authenticated as ([^;]+); session (\S+)", answer)
    assert m, "not authenticated: %r" % answer
    return m.group(1).decode(), m.group(2).decode()


def hang_up_in_grace(s, t):
    """The technician closes the terminal; returns when shimd noticed."""
    t.close()
    s.wait_tech_gone(5)


# ---- 1. reconnect grace: the next connection authenticates -------------------

def test_grace_next_connection_gets_prompt_and_nothing_crosses():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        s.login(t)
        t.write(b"one")
        assert dev.read_exact(3, 3) == b"one"
        hang_up_in_grace(s, t)
        # the device answers while nobody is there
        dev.write(b"DEVICE-SECRET")
        t2 = s.reconnect_tech()
        assert b"DEVICE-SECRET" not in t2.greeting, t2.greeting
        # typed without authenticating: nothing reaches the device
        t2.write(b"cat /etc/passwd")
        assert dev.read_for(0.8) == b""
        assert b"DEVICE-SECRET" not in t2.read_for(0.5)
    st.with_shim(body, session={"reconnect_grace": 10})


def test_grace_same_technician_resumes_session_with_fresh_code():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch()
        sid = s.login(t, ALICE, epoch=epoch)
        t.write(b"one")
        assert dev.read_exact(3, 3) == b"one"
        hang_up_in_grace(s, t)
        t2 = s.reconnect_tech()
        # a code of a later step than the one used (replay protection)
        answer = s.auth(t2, ALICE, steps=1, epoch=epoch)
        assert b"Authenticated as %s; session %s\r\n" % (
            ALICE.encode(), sid.encode()) in answer, answer
        t2.read_until(b"Session resumed\r\n", 3)
        t2.write(b"two")
        assert dev.read_exact(3, 3) == b"two"
        dev.write(b"back")
        t2.read_until(b"back", 5)
        s.ctl("end-session", check=True)
        assert ended(t2, 5) == (sid, "admin")
        # one recording holds both connections
        assert s.recorded(sid, "in") == b"onetwo"
        assert s.session_ids() == [sid], s.session_ids()
        metas = [e.get("event") for e in s.recording(sid)
                 if e.get("type") == "meta"]
        assert "technician_returned" in metas, metas
        ev = s.wait_event("technician_returned", 5, session=sid)
        assert ev.get("technician") in (None, ALICE), ev
    st.with_shim(body, session={"reconnect_grace": 10})


def test_grace_other_technician_seals_old_session_and_starts_new():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t, ALICE)
        t.write(b"aaa")
        assert dev.read_exact(3, 3) == b"aaa"
        hang_up_in_grace(s, t)
        t2 = s.reconnect_tech()
        tid, sid2 = sid_of(s.auth(t2, BOB))
        assert tid == BOB
        assert sid2 != sid
        assert s.footer_reason(sid) == "technician_disconnect"
        t2.write(b"bbb")
        assert dev.read_exact(3, 3) == b"bbb"
        s.ctl("end-session", check=True)
        ended(t2, 5)
        assert s.recorded(sid, "in") == b"aaa"
        assert s.recorded(sid2, "in") == b"bbb"
        assert sorted(s.session_ids()) == sorted([sid, sid2])
    st.with_shim(body, session={"reconnect_grace": 10})


def test_grace_handover_waits_for_the_device_reset():
    """Sealing the waiting session resets the device (device_reset: dtr):
    the next technician's session does not open onto a device that is
    being logged out; after the reset it opens onto a fresh line."""
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch()
        sid = s.login(t, ALICE, epoch=epoch)
        t.write(b"aaa")
        assert dev.read_exact(3, 3) == b"aaa"
        hang_up_in_grace(s, t)
        t2 = s.reconnect_tech()
        answer = s.auth(t2, BOB, epoch=epoch)
        assert answer.startswith(b"Auth fail: device resetting"), answer
        assert s.footer_reason(sid) == "technician_disconnect"
        assert "state: CHALLENGE" in s.admin("status")
        # the hold ends: the device pty is hung up and opened afresh
        assert st.wait_hangup(dev, 5), "the device side saw no hang-up"
        dev = s.connect_dev(count=2)
        t2.read_until(st.PROMPT, 5)
        tid, sid2 = sid_of(s.auth(t2, BOB, epoch=epoch, steps=1))
        assert tid == BOB and sid2 != sid
        t2.write(b"bbb")
        assert dev.read_exact(3, 3) == b"bbb"
    st.with_shim(body, session={"reconnect_grace": 10, "device_reset": "dtr",
                                "device_reset_hold": 0.5})


def test_grace_wrong_code_fails_and_session_ends_at_expiry():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch()
        sid = s.login(t, ALICE, epoch=epoch)
        hang_up_in_grace(s, t)
        t_hup = time.time()
        t2 = s.reconnect_tech()
        good = s.code(ALICE, steps=1, epoch=epoch)
        wrong = "%06d" % ((int(good) + 7) % 1000000)
        answer = s.auth(t2, ALICE, code=wrong)
        assert answer.startswith(b"Auth fail"), answer
        assert dev.read_for(0.5) == b""
        assert s.footer_reason(sid, 10) == "technician_disconnect"
        assert time.time() - t_hup >= 2.0
        assert "state: OPEN" not in s.admin("status")
    st.with_shim(body, session={"reconnect_grace": 3})


# ---- 2. idle means no technician input -----------------------------------------

class Chatter:
    """Plays a device that writes a line every 0.3 s."""

    def __init__(self, dev, period=0.3):
        self.dev = dev
        self.stop_ev = threading.Event()
        self.th = threading.Thread(target=self._run, args=(period,),
                                   daemon=True)
        self.th.start()

    def _run(self, period):
        n = 0
        while not self.stop_ev.wait(period):
            try:
                self.dev.write(b"tick %d\r\n" % n, timeout=1)
            except (OSError, TimeoutError):
                pass
            n += 1

    def stop(self):
        self.stop_ev.set()
        self.th.join(5)


def test_idle_timeout_ignores_device_output():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        chat = Chatter(dev)
        try:
            t0 = time.time()
            got = ended(t, 8)
            took = time.time() - t0
        finally:
            chat.stop()
        assert got == (sid, "idle_timeout"), got
        assert 1.5 <= took <= 4.5, took
        assert s.footer_reason(sid) == "idle_timeout"
    st.with_shim(body, session={"idle_timeout": 2})


def test_idle_timeout_reset_by_typing():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        chat = Chatter(dev)
        try:
            # 4 s of typing (twice the timeout) keeps the session open
            t0 = time.time()
            while time.time() - t0 < 4.0:
                t.write(b"k")
                t_last = time.time()
                time.sleep(0.5)
                assert not st.SESSION_ENDED.search(t.buf), t.buf
                t.read_for(0.01)
            assert "state: OPEN" in s.admin("status")
            # then silence: it ends about 2 s after the last key
            got = ended(t, 8)
            took = time.time() - t_last
        finally:
            chat.stop()
        assert got == (sid, "idle_timeout"), got
        assert 1.5 <= took <= 4.5, took
    st.with_shim(body, session={"idle_timeout": 2})


def test_tty_technician_without_presence_warns_at_start():
    s = st.Shim()
    pair = st.SocatPair(s.dir)
    s.write_config(open(s.config).read().replace("pty:" + s.tech_path,
                                                 pair.a))
    s.tech_path = pair.b
    try:
        s.start()
        deadline = time.time() + 5
        warned = []
        while time.time() < deadline and not warned:
            warned = [l for l in s.log().splitlines()
                      if " warn" in l and "presence" in l]
            time.sleep(0.05)
        assert warned, s.log()
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        pair.stop()
        s.cleanup()


def test_pty_technician_gives_no_presence_warning():
    def body(s):
        s.wait_log("technician side", 5)
        assert not [l for l in s.log().splitlines()
                    if " warn" in l and "presence" in l], s.log()
    st.with_shim(body)


# ---- 4. bytes typed after the authentication line ----------------------------

def test_bytes_in_the_same_write_as_the_auth_line_never_cross():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        code = s.code(ALICE)
        tail = bytes((i % 94) + 33 for i in range(2000))
        t.write(("%s %s\r" % (ALICE, code)).encode() + tail)
        answer = t.read_until(st.AUTH_ANSWER, 10)
        sid_of(answer)
        got = dev.read_for(1.5)
        assert got == b"", "%d of the 2000 bytes reached the device" % len(got)
        # the session itself relays what is typed after the answer
        t.write(b"after")
        assert dev.read_exact(5, 3) == b"after"
        assert dev.read_for(0.3) == b""
    st.with_shim(body)


if __name__ == "__main__":
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    st.run(st.tests_of(globals()))
