"""Integration test: the wall clock jumps while shimd runs.

shimd runs under libfaketime with its offset read from a file on every
call (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1) and the monotonic clock
left real (FAKETIME_DONT_FAKE_MONOTONIC=1), so the test moves shimd's wall
clock while it runs and shimd can tell the jump from elapsed time:

1. offset +0: the clock is trusted and a login works;
2. offset +1d: the periodic check reports the jump (log line, clock_jump
   event with the wall and the expected time), status says untrusted and a
   code valid for the moved clock is refused;
3. `shimctl clock trust`: trusted again, clock_confirmed event, and a code
   for the moved clock is accepted;
4. offset back to +0 (a day behind the trusted clock): again a jump, and
   codes are refused.

Codes come from oathtool at the time shimd's clock shows (real time plus
the offset).
"""

import glob
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

DAY = 86400
MAX_JUMP = 30
ALICE = "alice@example.org"
CLOCK_REFUSED = b"Auth fail: shim clock not trusted\r\n"


def libfaketime():
    for p in sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1")):
        return p
    return None


def set_offset(path, seconds):
    """Sets the offset libfaketime applies to shimd's wall clock; the file
    is replaced whole so shimd never reads half of it."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("%+d\n" % seconds)
    os.rename(tmp, path)


def clock_line(s):
    """The clock verdict from shimctl status ("ok" there means trusted),
    checked against shimctl clock status."""
    r = s.ctl("status", check=True)
    m = re.search(r"^clock: (\S+)$", r.stdout, re.M)
    assert m, r.stdout
    verdict = "trusted" if m.group(1) == "ok" else m.group(1)
    c = s.ctl("clock", "status", check=True)
    assert re.search(r"^clock: %s$" % verdict, c.stdout, re.M), c.stdout
    return verdict


def wait_clock(s, want, timeout=12.0):
    deadline = time.time() + timeout
    while True:
        got = clock_line(s)
        if got == want:
            return
        if time.time() > deadline:
            raise AssertionError("status says clock: %s, not %s" % (got, want))
        time.sleep(0.2)


def jump_events(s):
    return [e for e in s.events() if e.get("event") == "clock_jump"]


def wait_jump(s, count, timeout=12.0):
    """The count-th clock_jump event, once the log line of it is there."""
    s.wait_log("clock jump: wall clock ", timeout=timeout, count=count)
    deadline = time.time() + 5
    while len(jump_events(s)) < count:
        if time.time() > deadline:
            raise AssertionError("%d clock_jump events, want %d: %r" %
                                 (len(jump_events(s)), count, s.events()))
        time.sleep(0.1)
    return jump_events(s)[count - 1]


def check_jump(e, offset, trusted=0):
    """e reports a jump of about offset seconds away from a clock trusted
    at real time + trusted: wall is the moved clock, expected the trusted
    one (both checked against real time here)."""
    real = time.time()
    wall, expected, off = int(e["wall"]), int(e["expected"]), int(e["offset"])
    assert off == wall - expected, e
    assert abs(off - offset) <= 15, e
    assert abs(expected - (real + trusted)) <= 30, (e, real)
    assert abs(wall - (real + trusted + offset)) <= 30, (e, real)


def fake_code(s, offset, tid=ALICE):
    """tid's code at shimd's clock (now + offset), typed before its step
    ends."""
    st.safe_epoch(margin=5)
    return s.code(tid, epoch=int(time.time()) + offset)


def test_clock_jump_while_running_refuses_until_trusted():
    lib = libfaketime()
    # the clock is checked at every heartbeat (and every login)
    s = st.Shim(extra="clock:\n  max_jump: %d\ntamper:\n  heartbeat_period: 2\n"
                % MAX_JUMP)
    ts = os.path.join(s.dir, "faketime")
    set_offset(ts, 0)
    env = {"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": ts,
           "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    try:
        s.start(env=env)
        dev = s.connect_dev()
        t = s.connect_tech()

        # 1. offset +0: trusted, and a login works
        assert clock_line(s) == "trusted"
        r = s.ctl("clock", "status", check=True)
        assert re.search(r"^max_jump: %d$" % MAX_JUMP, r.stdout, re.M), \
            r.stdout
        answer = s.auth(t, ALICE, code=fake_code(s, 0))
        assert b"Authenticated as alice@example.org; session " in answer, \
            answer
        t.write(b"ping")
        assert dev.read_exact(4, 3) == b"ping"
        s.ctl("end-session", check=True)
        t.read_until(st.SESSION_ENDED, 5)
        t.read_until(st.PROMPT, 5)
        assert not jump_events(s), jump_events(s)

        # 2. a day ahead while running: seen by the periodic check
        set_offset(ts, DAY)
        moved = time.time()
        e = wait_jump(s, 1, timeout=12)
        assert time.time() - moved < 12, "the jump was seen late"
        check_jump(e, DAY)
        m = re.search(r"clock jump: wall clock (\d+), trusted clock (\d+) "
                      r"\(([+-]\d+) s\)", s.log())
        assert m, s.log()[-2000:]
        assert abs(int(m.group(3)) - DAY) <= 15, m.group(0)
        assert clock_line(s) == "untrusted"
        r = s.ctl("clock", "status", check=True)
        assert re.search(r"^clock: untrusted$", r.stdout, re.M), r.stdout
        # a code right for the moved clock does not open the gate
        answer = s.auth(t, ALICE, code=fake_code(s, DAY))
        assert answer == CLOCK_REFUSED, answer
        t.read_until(st.PROMPT, 5)
        # nor one right for the real time
        answer = s.auth(t, ALICE, code=fake_code(s, 0))
        assert answer == CLOCK_REFUSED, answer
        t.read_until(st.PROMPT, 5)
        assert dev.read_for(0.2) == b"", "bytes reached the device"
        assert not [e for e in s.events() if e.get("event") == "clock_confirmed"]

        # 3. an administrator trusts the clock as it is
        r = s.ctl("clock", "trust")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert clock_line(s) == "trusted"
        e = s.wait_event("clock_confirmed", timeout=5, source="admin")
        assert e.get("result") == "done", e
        r = s.ctl("clock", "status", check=True)
        assert re.search(r"^confirmed_by: admin$", r.stdout, re.M), r.stdout
        wall = int(re.search(r"^wall: (\d+)$", r.stdout, re.M).group(1))
        assert abs(wall - (time.time() + DAY)) <= 5, r.stdout
        answer = s.auth(t, ALICE, code=fake_code(s, DAY))
        assert b"Authenticated as alice@example.org; session " in answer, \
            answer
        t.write(b"pong")
        assert dev.read_exact(4, 3) == b"pong"
        s.ctl("end-session", check=True)
        t.read_until(st.SESSION_ENDED, 5)
        t.read_until(st.PROMPT, 5)
        # still trusted across more checks: time must pass for them
        time.sleep(6)
        assert clock_line(s) == "trusted"
        assert len(jump_events(s)) == 1, jump_events(s)

        # 4. back by a day (to real time) relative to the trusted clock
        set_offset(ts, 0)
        moved = time.time()
        e = wait_jump(s, 2, timeout=12)
        assert time.time() - moved < 12, "the jump was seen late"
        check_jump(e, -DAY, trusted=DAY)
        wait_clock(s, "untrusted", timeout=2)
        answer = s.auth(t, ALICE, code=fake_code(s, 0))
        assert answer == CLOCK_REFUSED, answer
        t.read_until(st.PROMPT, 5)
        answer = s.auth(t, ALICE, code=fake_code(s, DAY))
        assert answer == CLOCK_REFUSED, answer
        assert dev.read_for(0.2) == b"", "bytes reached the device"

        t.close()
        dev.close()
        assert s.stop() == 0
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()


if __name__ == "__main__":
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    if libfaketime() is None:
        print("skipped: libfaketime is not installed "
              "(faketime in scripts/install-deps.sh)")
        print("0 passed, 0 failed")
        sys.exit(0)
    os.environ.pop("FAKETIME", None)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    st.run(st.tests_of(globals()))
