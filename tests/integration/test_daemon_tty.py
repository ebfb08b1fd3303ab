"""shimd with a tty device configured through termios (the device side is
one end of a socat pty pair, a real tty to shimd): line settings applied
and read back, exclusive open, every byte value across PARMRK marking,
settings restored on exit, a lost device, and a device that comes back."""

import os
import signal
import subprocess
import sys
import termios
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402


SocatPair = st.SocatPair


def attrs(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        return termios.tcgetattr(fd)
    finally:
        os.close(fd)


def make(extra_serial="", **kw):
    s = st.Shim(**kw)
    pair = SocatPair(s.dir)
    text = open(s.config).read().replace("pty:" + s.dev_path, pair.a)
    text = text.replace("  baudrate: 9600\n", "  baudrate: 9600\n" + extra_serial)
    s.write_config(text)
    s.dev_path = pair.b  # what the fake device opens
    return s, pair


def test_settings_applied_and_restored():
    s, pair = make("  device:\n    baudrate: 115200\n    stop_bits: 2\n"
                   "    flow_control: xonxoff\n")
    try:
        before = attrs(pair.a)
        s.start()
        during = attrs(pair.a)
        iflag, oflag, cflag, lflag, ispeed, ospeed, cc = during
        assert ispeed == termios.B115200 and ospeed == termios.B115200
        assert cflag & termios.CSIZE == termios.CS8
        assert not cflag & termios.PARENB
        assert cflag & termios.CSTOPB
        assert iflag & termios.IXON and iflag & termios.IXOFF
        assert not cflag & termios.HUPCL
        assert cflag & termios.CLOCAL
        assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
        assert iflag & termios.PARMRK
        assert s.stop() == 0
        assert attrs(pair.a) == before
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        pair.stop()
        s.cleanup()


def test_settings_the_line_does_not_take_are_refused():
    # A pty forces 8 data bits without parity: the read-back catches it.
    s, pair = make("  device:\n    data_bits: 7\n    parity: even\n")
    try:
        r = subprocess.run([st.SHIMD, "--config", s.config],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0
        assert "device side %s: operation not supported" % pair.a in r.stderr, \
            r.stderr
    finally:
        pair.stop()
        s.cleanup()


def test_exclusive_open():
    s, pair = make()
    try:
        s.start()
        # the same storage: refused by the instance lock
        other = subprocess.run([st.SHIMD, "--config", s.config],
                               capture_output=True, text=True, timeout=10)
        assert other.returncode != 0
        assert "another shimd is running" in other.stderr, other.stderr
        # other storage and technician side, the same device tty
        cfg2 = os.path.join(s.dir, "other.yaml")
        with open(cfg2, "w") as f:
            f.write(open(s.config).read()
                    .replace(s.storage, s.storage + "2")
                    .replace("pty:" + s.tech_path, "pty:" + s.tech_path + "2"))
        os.chmod(cfg2, 0o600)  # it holds technician secrets
        other = subprocess.run([st.SHIMD, "--config", cfg2],
                               capture_output=True, text=True, timeout=10)
        assert other.returncode != 0
        assert "device side %s: permission denied" % pair.a in other.stderr, \
            other.stderr
        assert s.proc.poll() is None
        assert "state: IDLE" in s.admin("status")
    finally:
        pair.stop()
        s.cleanup()


def test_every_byte_value_through_a_tty():
    s, pair = make()
    try:
        s.start()
        dev = st.Pty(pair.b)
        t = s.connect_tech()
        st.safe_epoch()
        s.login(t)
        size = 256 * 1024
        # 0xff and "\xff\x00" are what PARMRK marking turns into escapes
        up = (bytes(range(256)) + b"\xff\xff\x00\xff\x00\x00") * (size // 262)
        down = (b"\xff\x00\x00" + bytes(reversed(range(256)))) * (size // 259)
        got = {}

        def rd(p, n, k):
            got[k] = p.read_exact(n, 60)
        r1 = threading.Thread(target=rd, args=(dev, len(up), "dev"))
        r2 = threading.Thread(target=rd, args=(t, len(down), "tech"))
        r1.start()
        r2.start()
        w = threading.Thread(target=t.write, args=(up, 60))
        w.start()
        dev.write(down, 60)
        for th in (w, r1, r2):
            th.join(90)
        assert got.get("dev") == up, "technician->device differs"
        assert got.get("tech") == down, "device->technician differs"
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        pair.stop()
        s.cleanup()


def test_device_lost_then_back_with_retry():
    s, pair = make("  device_retry: true\n")
    try:
        s.start()
        t = s.connect_tech()
        dev = st.Pty(pair.b)
        st.safe_epoch()
        sid = s.login(t)
        # the adapter is unplugged: its tty disappears
        pair.stop()
        dev.close()
        out = t.read_until(b"ended: device_disconnect\r\n", 10)
        assert sid.encode() in out
        t.read_until(st.PROMPT, 5)
        # plugged in again under the same name
        pair2 = SocatPair(s.dir)
        try:
            s.wait_log("device side %s connected" % pair2.a, 10)
            dev2 = st.Pty(pair2.b)
            s.login(t, "bob@example.org")
            t.write(b"back")
            assert dev2.read_exact(4, 5) == b"back"
        finally:
            pair2.stop()
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.cleanup()


def test_technician_on_a_tty():
    s = st.Shim()
    pair = SocatPair(s.dir)
    text = open(s.config).read().replace("pty:" + s.tech_path, pair.a)
    s.write_config(text)
    s.tech_path = pair.b
    try:
        s.start()
        dev = s.connect_dev()
        t = st.Pty(pair.b)
        # a tty technician without presence lines gets the prompt at once
        t.read_until(st.PROMPT, 5)
        st.safe_epoch()
        sid = s.login(t)
        data = bytes(range(256)) * 64
        t.write(data)
        assert dev.read_exact(len(data), 10) == data
        dev.write(b"\xff\x00\x00pong")
        assert t.read_exact(7, 5) == b"\xff\x00\x00pong"
        s.ctl("end-session", check=True)
        t.read_until(b"ended: admin\r\n", 5)
        t.read_until(st.PROMPT, 5)
        assert s.recorded(sid, "in") == data
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        pair.stop()
        s.cleanup()


if __name__ == "__main__":
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    import shutil
    if shutil.which("socat") is None:
        print("socat is not installed (scripts/install-deps.sh)")
        print("0 passed, 1 failed")
        sys.exit(1)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    st.run(st.tests_of(globals()))
