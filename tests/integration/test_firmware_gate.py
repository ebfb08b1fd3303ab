"""The gate's black-box behaviour, run against the STM32F405 firmware under
QEMU (scripts/run-firmware.sh) as a second target beside shimd: the
prompt, the success line, one failure text, the +-1 step window, replay
refused also after a restart on the same state, lockout and its expiry,
nothing crossing before authentication, a byte-exact relay of all 256
values both ways, unsolicited device output, and a clean stop on SIGTERM.

What the firmware cannot do that shimd's tests use (so it is not tested
here): QEMU's USART shows no hang-up or modem line to the firmware, so
there is no technician_disconnect, no reconnect grace and no presence;
a technician counts as connected at the first byte and sessions end by
session.idle_timeout. There is no admin socket (shimctl status,
end-session, reset-lockout) and no recording export on the host side in
these tests; events are read from USART3 (RFC 5424) instead of the audit
log.

SHIM_GATE_TARGET=shimd runs the same checks against shimd on ptys (the
tests' own check: they pass on the target they were modelled on).
SHIM_FIRMWARE_SKIP_OK=1 lets the test skip (exit 77) when QEMU or the
firmware image is missing; without it a missing firmware fails.
"""

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402
import fwtarget  # noqa: E402

TARGET = os.environ.get("SHIM_GATE_TARGET", "firmware")
IDLE = 2  # session.idle_timeout (s): how sessions end on the firmware
SUCCESS = re.compile(rb"Authenticated as ([^;\r\n]+); session (\S+)\r\n")


def target(**kw):
    """A firmware (or, with SHIM_GATE_TARGET=shimd, a shimd) whose sessions
    end after IDLE seconds without technician input."""
    kw["session"] = dict({"idle_timeout": IDLE}, **kw.get("session", {}))
    if TARGET == "shimd":
        return st.Shim(**kw)
    return fwtarget.Firmware(**kw)


def with_target(fn, **kw):
    s = target(**kw)
    try:
        s.start()
        fn(s)
    except Exception:
        print("---- target log\n" + s.log()[-4000:])
        print("---- events\n" + "\n".join(
            repr(e) for e in s.events()[-30:]))
        raise
    finally:
        s.cleanup()


def attempt(s, t, tid, code):
    """Types `tid code`; returns the answer line (keeps the prompt that
    follows a failure in t.buf, reads it with t.read_until)."""
    return s.auth(t, tid, code=code)


def fresh(s, tid, steps=0, margin=4):
    """tid's code at now + steps, typed at least margin s before the step
    ends."""
    return s.code(tid, steps=steps, epoch=st.safe_epoch(margin=margin))


def wait_idle_end(t, sid):
    """The session ends by its idle timeout; the prompt follows."""
    got_sid, reason = st.ended(t, IDLE + 8)
    assert (got_sid, reason) == (sid, "idle_timeout"), (got_sid, reason)
    t.read_until(st.PROMPT, 5)


def login(s, t, tid, steps=0):
    line = attempt(s, t, tid, fresh(s, tid, steps))
    m = SUCCESS.search(line)
    assert m and m.group(1).decode() == tid, line
    return m.group(2).decode()


def event(s, name, timeout=5.0, **match):
    return s.wait_event(name, timeout=timeout, **match)


def no_event(s, name, **match):
    return not [e for e in s.events() if e.get("event") == name and all(
        str(e.get(k)) == str(v) for k, v in match.items())]


# ---- the dialogue ------------------------------------------------------------

def test_prompt_echo_and_uniform_failure():
    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        # connect_tech() waited for the exact prompt of contract 4.4;
        # nothing else came before it but what a CR may have echoed
        t.write(b"ab\x7fc")
        assert t.read_until(b"c", 3) == b"ab\b \bc"
        t.write(b"\b\b\b")
        t.read_until(b"\b \b", 3)
        good = fresh(s, "alice@example.org", margin=6)
        wrong = "%06d" % ((int(good) + 1) % 1000000)
        answers = []
        for tid, code in (("nobody@example.org", good),
                          ("alice@example.org", wrong),
                          ("alice@example.org", "12ab56")):
            answers.append(attempt(s, t, tid, code))
            t.read_until(st.PROMPT, 5)
        assert all(a == b"Auth fail\r\n" for a in answers), answers
        reasons = [e.get("reason") for e in s.events()
                   if e.get("event") == "auth_fail"]
        deadline = time.time() + 5
        while len(reasons) < 3 and time.time() < deadline:
            time.sleep(0.1)
            reasons = [e.get("reason") for e in s.events()
                       if e.get("event") == "auth_fail"]
        assert "bad_user" in reasons and "bad_code" in reasons, reasons
        # the codes never leave the unit in an event
        text = repr(s.events())
        assert good not in text and wrong not in text
    with_target(body)


def test_success_line_and_session_end():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        sid = login(s, t, "alice@example.org")
        assert sid, sid
        event(s, "auth_ok", technician="alice@example.org")
        event(s, "session_start", technician="alice@example.org",
              session=sid)
        t.write(b"hello")
        assert dev.read_exact(5, 5) == b"hello"
        wait_idle_end(t, sid)
        event(s, "session_end", session=sid, reason="idle_timeout")
        # after the end nothing crosses either way
        dev.write(b"AFTER-END")
        t.write(b"xyz")
        assert b"AFTER-END" not in t.read_for(1.0)
        assert dev.read_for(0.5) == b""
    with_target(body)


def test_window_one_step_each_way():
    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        for steps in (-2, 2):
            a = attempt(s, t, "dave@example.org",
                        fresh(s, "dave@example.org", steps))
            assert a == b"Auth fail\r\n", (steps, a)
            t.read_until(st.PROMPT, 5)
        event(s, "auth_fail", technician="dave@example.org",
              reason="bad_code")
        # one technician per accepted step: an accepted +1 would make -1
        # a replay
        for tid, steps in (("bob@example.org", -1),
                           ("carol@example.org", 1)):
            sid = login(s, t, tid, steps)
            e = event(s, "auth_ok", technician=tid)
            if "drift" in e:
                assert int(e["drift"]) == steps, e
            wait_idle_end(t, sid)
    with_target(body)


# ---- replay and lockout ------------------------------------------------------

def test_replay_refused_also_after_restart():
    s = target()
    tid = "alice@example.org"
    try:
        s.start()
        s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=8)
        code = s.code(tid, epoch=epoch)
        older = s.code(tid, epoch=epoch, steps=-1)
        sid = SUCCESS.search(attempt(s, t, tid, code)).group(2).decode()
        wait_idle_end(t, sid)
        assert attempt(s, t, tid, code) == b"Auth fail\r\n"
        t.read_until(st.PROMPT, 5)
        assert attempt(s, t, tid, older) == b"Auth fail\r\n"
        t.read_until(st.PROMPT, 5)
        event(s, "auth_fail", technician=tid, reason="replay")
        # a restart on the same state directory keeps the mark
        t.close()
        s.stop()
        s.start()
        seen = len(s.events())
        s.connect_dev()
        t = s.connect_tech()
        # the code is still inside the window, so only the mark refuses it
        assert time.time() < epoch - epoch % 30 + 60, \
            "restart took too long to test the replay mark"
        assert attempt(s, t, tid, code) == b"Auth fail\r\n"
        t.read_until(st.PROMPT, 5)
        deadline = time.time() + 5
        while not [e for e in s.events()[seen:]
                   if e.get("event") == "auth_fail"
                   and e.get("reason") == "replay"]:
            assert time.time() < deadline, s.events()[seen:]
            time.sleep(0.1)
        # a later code still works
        newer = s.code(tid, epoch=epoch, steps=1)
        assert SUCCESS.search(attempt(s, t, tid, newer)), "newer refused"
    except Exception:
        print("---- target log\n" + s.log()[-4000:])
        print("---- events\n" + "\n".join(repr(e) for e in s.events()[-30:]))
        raise
    finally:
        s.cleanup()


def test_lockout_and_expiry():
    lock_s = 4

    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=10)
        good = s.code("bob@example.org", epoch=epoch)
        bad = "%06d" % ((int(good) + 500000) % 1000000)
        answers = []
        for _ in range(3):
            answers.append(attempt(s, t, "bob@example.org", bad))
            t.read_until(st.PROMPT, 5)
        locked_at = time.time()
        assert answers[0] == b"Auth fail\r\n", answers
        assert answers[2].startswith(b"Auth fail: retry in "), answers
        # the right code is refused while locked out (and not spent)
        a = attempt(s, t, "bob@example.org", good)
        assert a.startswith(b"Auth fail"), a
        t.read_until(st.PROMPT, 5)
        event(s, "lockout", technician="bob@example.org")
        event(s, "auth_fail", technician="bob@example.org",
              reason="locked_out")
        # another technician is not affected
        sid = login(s, t, "carol@example.org")
        wait_idle_end(t, sid)
        left = lock_s + 0.3 - (time.time() - locked_at)
        if left > 0:
            time.sleep(left)
        a = attempt(s, t, "bob@example.org", fresh(s, "bob@example.org"))
        assert SUCCESS.search(a), a
        t.write(b"ok")
        assert dev.read_exact(2, 3) == b"ok"
    with_target(body, totp_cfg={"max_failures": 3,
                                "lockout_seconds": lock_s})


# ---- the relay -------------------------------------------------------------------

def test_nothing_crosses_before_auth():
    def body(s):
        dev = s.connect_dev()
        t = st.Pty(s.tech_path)
        # typed before any prompt
        t.write(b"early bytes\x00\xff\r")
        t.close()
        t = s.connect_tech()
        # device output in CHALLENGE never reaches the technician, now
        # or after the authentication
        dev.write(b"DEVICE-SECRET-OUTPUT" * 20)
        # a technician flood without a line end, then binary lines
        flood = bytes(((i * 7) % 250) + 5 for i in range(8 * 1024))
        flood = flood.replace(b"\r", b"x").replace(b"\n", b"x")
        t.write(flood, timeout=60)
        t.write(b"\r\x01\x02\x03\r")
        seen_tech = t.read_for(2.0)
        assert b"DEVICE-SECRET" not in seen_tech
        assert b"Auth fail" in seen_tech
        seen_dev = dev.read_for(0.5)
        assert seen_dev == b"", "device got %d bytes before auth: %r" % (
            len(seen_dev), seen_dev[:64])
        time.sleep(1.2)  # the refusal delay
        t.read_for(0.3)
        login(s, t, "bob@example.org")
        t.write(b"AFTER")
        assert dev.read_exact(5, 5) == b"AFTER"
        assert dev.read_for(0.5) == b""
        assert b"DEVICE-SECRET" not in t.read_for(0.5)
    with_target(body)


def _write(p, data, errs, key):
    try:
        p.write(data, timeout=60)
    except Exception as e:  # noqa: BLE001
        errs[key] = e


def test_all_256_values_both_ways_and_unsolicited_output():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        login(s, t, "alice@example.org")
        every = bytes(range(256))
        # one way at a time, then both at once
        t.write(every)
        assert dev.read_exact(256, 10) == every, "technician->device"
        dev.write(every[::-1])
        assert t.read_exact(256, 10) == every[::-1], "device->technician"
        up, down = every * 16, every[::-1] * 16
        errs = {}
        ws = [threading.Thread(target=_write, args=(t, up, errs, "up")),
              threading.Thread(target=_write, args=(dev, down, errs, "dn"))]
        got = {}

        def rd(p, n, key):
            try:
                got[key] = p.read_exact(n, 30)
            except Exception as e:  # noqa: BLE001
                errs[key + "-read"] = e
        rs = [threading.Thread(target=rd, args=(dev, len(up), "dev")),
              threading.Thread(target=rd, args=(t, len(down), "tech"))]
        for th in ws + rs:
            th.start()
        for th in ws + rs:
            th.join(60)
        assert not errs, errs
        assert got.get("dev") == up, "technician->device differs"
        assert got.get("tech") == down, "device->technician differs"
        # the device speaks by itself while the technician is quiet
        time.sleep(0.5)
        alarm = b"\r\nALARM: occlusion downstream\r\n\x07"
        dev.write(alarm)
        assert t.read_exact(len(alarm), 5) == alarm
        assert dev.read_for(0.3) == b""
    with_target(body)


# ---- the clock behind the window --------------------------------------------

def event_time(e):
    """An event's time in Unix seconds (RFC 3339 with microseconds)."""
    import datetime
    t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


SPAN = 20.0


def test_clock_keeps_pace():
    """The unit's wall clock (its events' time stamps) keeps pace with the
    host's: a clock running 1 % slow puts codes a whole step behind after
    50 minutes and out of the +-1 window after 100."""
    def body(s):
        t = s.connect_tech()
        marks = []
        for i in range(2):
            if i:
                time.sleep(SPAN)
            n = len([e for e in s.events() if e.get("event") == "auth_fail"])
            h0 = time.time()
            attempt(s, t, "nobody@example.org", "000000")
            h1 = time.time()
            t.read_until(st.PROMPT, 5)
            deadline = time.time() + 5
            while True:
                fails = [e for e in s.events()
                         if e.get("event") == "auth_fail"]
                if len(fails) > n or time.time() > deadline:
                    break
                time.sleep(0.1)
            assert len(fails) > n, "no auth_fail event"
            marks.append(((h0 + h1) / 2, event_time(fails[-1])))
        (h0, f0), (h1, f1) = marks
        rate = (f1 - f0) / (h1 - h0) - 1.0
        print("  unit clock against the host's: %+.2f %% (%+.2f s in %.0f s;"
              " offset %+.2f s)" % (rate * 100, (f1 - f0) - (h1 - h0),
                                    h1 - h0, f1 - h1))
        assert abs(rate) < 0.01, "unit clock off by %+.2f %%: a step " \
            "behind after %.0f min" % (rate * 100, 30 / abs(rate) / 60)
        assert abs(f1 - h1) < 2.0, "unit clock %+.2f s off" % (f1 - h1)
    with_target(body)


# ---- stopping ------------------------------------------------------------------------

def test_sigterm_stops_cleanly():
    s = target()
    try:
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        login(s, t, "carol@example.org")
        t.write(b"x")
        assert dev.read_exact(1, 5) == b"x"
        t0 = time.time()
        rc = s.stop(timeout=10)
        took = time.time() - t0
        assert rc == 0, "exit status %r after SIGTERM" % rc
        assert took < 10, "took %.1f s to stop" % took
        left = getattr(s, "leftover", [])
        assert not left, "left running after SIGTERM: %s" % [
            open("/proc/%d/cmdline" % p).read().replace("\0", " ")
            for p in left if os.path.exists("/proc/%d" % p)]
        assert not os.path.lexists(s.tech_path), "technician link left"
        assert not os.path.lexists(s.dev_path), "device link left"
        t.close()
        dev.close()
    except Exception:
        print("---- target log\n" + s.log()[-4000:])
        raise
    finally:
        s.cleanup()


if __name__ == "__main__":
    if TARGET == "shimd":
        st.need_binaries(st.SHIMD, st.SHIMCTL)
    else:
        fwtarget.need_firmware()
    st.run(st.tests_of(globals()))
