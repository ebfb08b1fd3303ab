"""shimd on real pseudo-terminals: the technician dialogue, the gate before
authentication, and byte-exact relaying after it (fake device and the pump
emulator)."""

import os
import re
import struct
import subprocess
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402


with_shim = st.with_shim


def test_prompt_echo_backspace():
    def body(s):
        s.connect_dev()
        t = st.Pty(s.tech_path)
        # The exact prompt of contract 4.4.
        got = t.read_until(b"\r\n> ", 5)
        assert got == st.PROMPT, got
        t.write(b"ab\x7fc")
        assert t.read_until(b"c", 3) == b"ab\b \bc"
        t.write(b"\r")
        out = t.read_until(re.compile(rb"Auth fail[^\n]*\n"), 5)
        assert out.startswith(b"\r\n"), out
    with_shim(body)


def test_nothing_crosses_before_auth():
    def body(s):
        dev = s.connect_dev()
        # Typed before the prompt: the terminal opens, types at once.
        t = st.Pty(s.tech_path)
        t.write(b"early bytes\x00\xff")
        t.read_until(st.PROMPT, 5)
        # Device output in CHALLENGE never reaches the technician.
        dev.write(b"DEVICE-SECRET-OUTPUT" * 50)
        # A flood from the technician: 256 KiB without a line end, then
        # binary garbage with line ends (each line a failed attempt).
        flood = bytes(((i * 7) % 250) + 5 for i in range(256 * 1024))
        flood = flood.replace(b"\r", b"x").replace(b"\n", b"x")
        t.write(flood, timeout=60)
        t.write(b"\r")
        # Wait on the shim's answers, not on the clock: a slow machine
        # may take many seconds to chew through the flood.
        seen_tech = t.read_until(b"Auth fail", 60)
        seen_tech += t.read_until(st.PROMPT, 30)  # failure delay over
        # The rest of the flood may cost further attempts: drain every
        # "Auth fail" until its prompt, until the shim has gone quiet.
        deadline = time.time() + 120
        while time.time() < deadline:
            more = t.read_for(1.0)
            if not more:
                break
            seen_tech += more
            if more.rfind(b"Auth fail") > more.rfind(st.PROMPT):
                seen_tech += t.read_until(st.PROMPT, 30)
        assert b"DEVICE-SECRET" not in seen_tech
        seen_dev = dev.read_for(1.0)
        assert seen_dev == b"", "device got %d bytes before auth" % len(seen_dev)
        # After authentication only what is typed then arrives.
        st.safe_epoch()
        sid = s.login(t, "bob@example.org")
        t.write(b"AFTER")
        assert dev.read_exact(5, 5) == b"AFTER"
        assert dev.read_for(0.5) == b""
        assert "DEVICE-SECRET" not in s.log()
        s.ctl("end-session", check=True)
        t.read_until(st.PROMPT, 5)
        # the recording holds only what crossed
        assert s.recorded(sid, "in") == b"AFTER"
        assert s.recorded(sid, "out") == b""
    with_shim(body)


def _pump(src, dst, data, results, key):
    try:
        src.write(data, timeout=120)
    except Exception as e:  # noqa: BLE001
        results[key] = e


def test_one_mib_each_way_exact(extra="", stalls=False):
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        size = 1024 * 1024
        up = bytes(range(256)) * (size // 256)
        down = bytes(reversed(range(256))) * (size // 256)
        errs = {}
        w1 = threading.Thread(target=_pump, args=(t, dev, up, errs, "up"))
        w2 = threading.Thread(target=_pump, args=(dev, t, down, errs, "down"))
        t0 = time.time()
        w1.start()
        w2.start()
        got_dev = []
        got_tech = []

        def rd(p, n, out):
            out.append(p.read_exact(n, 120))
        r1 = threading.Thread(target=rd, args=(dev, size, got_dev))
        r2 = threading.Thread(target=rd, args=(t, size, got_tech))
        r1.start()
        r2.start()
        for th in (w1, w2, r1, r2):
            th.join(150)
        assert not errs, errs
        assert got_dev and got_dev[0] == up, "technician->device differs"
        assert got_tech and got_tech[0] == down, "device->technician differs"
        print("  1 MiB each way in %.2f s" % (time.time() - t0))
        status = s.admin("status")
        assert "bytes_in: %d" % size in status, status
        assert "bytes_out: %d" % size in status, status
        s.ctl("end-session", check=True)
        t.read_until(st.PROMPT, 5)
        foot = s.footer(sid)
        assert foot["bytes_inbound"] == size and foot["bytes_outbound"] == size
        assert foot["terminal_reason"] == "admin"
        assert foot.get("verified") is True
        assert s.recorded(sid, "in") == up
        assert s.recorded(sid, "out") == down
        if stalls:
            m = re.search(r"recorder queue pushed back (\d+) times", s.log())
            assert m and int(m.group(1)) > 0, "no back-pressure seen"
    with_shim(body, extra=extra)


def test_back_pressure_from_a_small_recorder_queue():
    # A queue far smaller than the traffic: the relay must hold bytes back
    # (never forward unrecorded ones) and still deliver everything.
    test_one_mib_each_way_exact("recording:\n  queue_bytes: 4096\n"
                                "  sync_interval_ms: 5", stalls=True)


def test_failure_text_is_uniform():
    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch()
        good = st.totp(s.techs["alice@example.org"], epoch)
        wrong = "%06d" % ((int(good) + 1) % 1000000)
        answers = []
        for line in ("nobody@example.org %s" % good,
                     "alice@example.org %s" % wrong,
                     "alice@example.org 12ab56",
                     "garbage",
                     good,
                     "%s alice@example.org" % wrong):
            t.write(line.encode() + b"\r")
            t.read_until(line.encode() + b"\r\n", 3)
            ans = t.read_until(re.compile(rb"[^\n]*\n"), 5)
            answers.append(ans)
            t.read_until(st.PROMPT, 5)
        assert all(a == b"Auth fail\r\n" for a in answers), answers
        log = s.log()
        assert "bad_user" in log and "bad_code" in log, log
        # the codes never reach the log, not even typed alone or first
        assert good not in log and wrong not in log
        assert "(malformed)" in log
    with_shim(body)


def test_overlong_line_is_a_failure():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        t.write(b"a" * 300 + b"\r")
        out = t.read_until(re.compile(rb"Auth fail[^\n]*\n"), 5)
        # echo stops at the limit
        echoed = out.split(b"Auth fail")[0]
        assert echoed.count(b"a") == 256, echoed.count(b"a")
        assert "line_too_long" in s.log()
        assert dev.read_for(0.3) == b""
    with_shim(body)


def test_crlf_and_lf_end_the_line():
    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch()
        code = st.totp(s.techs["carol@example.org"], epoch)
        t.write(b"carol@example.org " + code.encode() + b"\r\n")
        t.read_until(b"Authenticated as carol@example.org; session ", 5)
        rest = t.read_until(b"\r\n", 2)
        # the LF of CRLF must not leak to the device or count as a line
        assert b"Auth fail" not in rest
    with_shim(body)
    def body2(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch()
        code = st.totp(s.techs["dave@example.org"], epoch)
        t.write(b"dave@example.org\t" + code.encode() + b"\n")
        t.read_until(b"Authenticated as dave@example.org; session ", 5)
        assert dev.read_for(0.3) == b""
    with_shim(body2)


def frame(seq, payload):
    return (bytes([0x02, seq]) + struct.pack(">H", len(payload)) + payload +
            struct.pack(">I", zlib.crc32(payload) & 0xffffffff))


def test_pump_emulator_through_the_shim():
    def body(s):
        emu = subprocess.Popen([st.EMULATOR, s.dev_path],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            s.wait_log("device side opened")
            t = s.connect_tech()
            st.safe_epoch()
            s.login(t)
            # The banner was printed before the session: it is not relayed.
            t.write(b"\r")
            t.read_until(b"Service PIN: ", 5)
            t.write(b"4711\r")
            t.read_until(b"svc> ", 5)
            t.write(b"set rate 20.5\r")
            assert b"RATE SET 20.5 ml/h" in t.read_until(b"svc> ", 5)
            t.write(b"status\r")
            assert b"rate 20.5 ml/h" in t.read_until(b"svc> ", 5)
            payload = bytes(range(256)) * 4
            t.write(frame(1, payload))
            assert t.read_exact(2, 5) == b"\x06\x01"
            bad = bytearray(frame(2, payload))
            bad[10] ^= 0xff
            t.write(bytes(bad))
            assert t.read_exact(2, 5) == b"\x15\x02"
            t.write(b"fwinfo\r")
            out = t.read_until(b"svc> ", 5)
            want = b"FW chunks 1; bytes 1024; crc32 %08x" % (
                zlib.crc32(payload) & 0xffffffff)
            assert want in out, out
        finally:
            emu.terminate()
            emu.wait(5)
    with_shim(body)


if __name__ == "__main__":
    st.need_binaries(st.SHIMD, st.SHIMCTL, st.EMULATOR)
    st.run(st.tests_of(globals()))
