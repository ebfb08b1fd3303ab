"""shimd as a user deploys it, side by side with a direct relay.

The bench holds two pseudo-terminal pairs and their masters: the
technician's laptop on one, the medical device on the other. The relay
opens the two slave paths as plain tty device paths (as it would
/dev/ttyUSB0: no "pty:" spec), first shimd (an authenticated session,
recording on) on two pairs, socat on two others, their rounds taken in
turn. The device echoes every
byte back (a service console, many firmware-upload protocols). Figures, in
one run, shimd and direct with the ratio and the target:

  - full-duplex echoed throughput: ECHO_MB sent by the technician while
    the echo comes back, until the last echoed byte is in;
  - one-way latency technician -> device, one byte every GAP_MS,
    p50 and p99 over LAT_SAMPLES;
  - auth line -> success line, from the bench's own clock (median).

Usage: python3 bench/bench_tty.py   (SHIM_BUILD = build directory)
"""

import base64
import os
import re
import select
import statistics
import subprocess
import sys
import threading
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import shimtest as st  # noqa: E402

ECHO_MB = int(os.environ.get("ECHO_MB", "4"))
LAT_SAMPLES = int(os.environ.get("LAT_SAMPLES", "1000"))
GAP_MS = float(os.environ.get("GAP_MS", "1"))
AUTH_SAMPLES = int(os.environ.get("AUTH_SAMPLES", "20"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
PROMPT = re.escape(st.PROMPT) if isinstance(st.PROMPT, bytes) else \
    st.PROMPT.pattern


class Pair:
    """A pseudo-terminal pair; the bench keeps the master."""

    def __init__(self):
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        os.close(slave)  # the relay opens it by path
        os.set_blocking(self.master, False)

    def close(self):
        os.close(self.master)


def drain(fd, timeout=0.2):
    while select.select([fd], [], [], timeout)[0]:
        try:
            if not os.read(fd, 65536):
                return
        except (BlockingIOError, OSError):
            return


def write_all(fd, data, deadline):
    view = memoryview(data)
    while view:
        if time.time() > deadline:
            raise TimeoutError("write stalled")
        select.select([], [fd], [], 1)
        try:
            n = os.write(fd, view)
            view = view[n:]
        except BlockingIOError:
            pass


class Echo(threading.Thread):
    """The device: every byte read is written back."""

    def __init__(self, fd):
        super().__init__(daemon=True)
        self.fd, self.on, self.stop = fd, False, False
        self.seen = 0

    def run(self):
        # Reads and writes at once, keeping what it could not yet write
        # (a device with a receive buffer): an echo that stopped reading
        # while it writes would deadlock any relay that blocks on a write.
        pending = bytearray()
        while not self.stop:
            w = [self.fd] if pending and self.on else []
            r, w, _ = select.select([self.fd], w, [], 0.05)
            if r:
                try:
                    data = os.read(self.fd, 65536)
                except (BlockingIOError, OSError):
                    data = b""
                self.seen += len(data)
                if self.on:
                    pending += data
            if w:
                try:
                    n = os.write(self.fd, pending)
                    del pending[:n]
                except BlockingIOError:
                    pass


def full_duplex(tech_fd, echo):
    total = ECHO_MB * 1024 * 1024
    block = bytes(range(256)) * 64
    got = 0
    err = []
    echo.on = True

    def writer():
        try:
            sent = 0
            deadline = time.time() + 120
            while sent < total:
                n = min(len(block), total - sent)
                write_all(tech_fd, block[:n], deadline)
                sent += n
        except Exception as e:  # noqa: BLE001
            err.append(e)
    th = threading.Thread(target=writer)
    t0 = time.perf_counter()
    th.start()
    while got < total:
        if not select.select([tech_fd], [], [], 10)[0]:
            raise TimeoutError("echo stalled at %d of %d bytes" % (got, total))
        try:
            got += len(os.read(tech_fd, 65536))
        except BlockingIOError:
            pass
    dt = time.perf_counter() - t0
    th.join()
    echo.on = False
    if err:
        raise err[0]
    return total / dt / 1e6


def latency(tech_fd, dev_fd, echo):
    """One byte every GAP_MS, technician -> device; the echo thread is
    paused so that the bench reads the device side itself."""
    echo.stop = True
    echo.join()
    out = []
    for i in range(LAT_SAMPLES + 20):
        t0 = time.perf_counter_ns()
        os.write(tech_fd, b"\x55")
        while True:
            select.select([dev_fd], [], [], 5)
            try:
                if os.read(dev_fd, 16):
                    break
            except BlockingIOError:
                continue
        if i >= 20:
            out.append((time.perf_counter_ns() - t0) / 1000.0)
        time.sleep(GAP_MS / 1000.0)
    out.sort()
    return out[len(out) // 2], out[int(len(out) * 0.99) - 1]


def start_socat(tech, dev):
    p = subprocess.Popen(["socat", "%s,raw,echo=0" % tech.path,
                          "%s,raw,echo=0" % dev.path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # socat has no ready signal: let it open both
    return p


def read_until(fd, pattern, timeout):
    buf = b""
    deadline = time.time() + timeout
    while not re.search(pattern, buf):
        left = deadline - time.time()
        if left <= 0:
            raise TimeoutError("waiting for %r, got %r" % (pattern, buf))
        if select.select([fd], [], [], left)[0]:
            try:
                buf += os.read(fd, 4096)
            except BlockingIOError:
                pass
    return buf


def start_shimd(tech, dev):
    """shimd on the two paths, the auth samples taken, a session open."""
    # one technician per auth sample: each code is single-use
    secrets = [base64.b32encode(os.urandom(20)).decode()
               for _ in range(AUTH_SAMPLES)]
    techs = {"tech%d@example.org" % i: s for i, s in enumerate(secrets)}
    s = st.Shim(techs=techs, tech_spec=tech.path, dev_spec=dev.path)
    s.tech_path, s.dev_path = tech.path, dev.path
    s.start()
    try:
        read_until(tech.master, PROMPT, 10)
        auth = []
        epoch = st.safe_epoch(margin=15)
        names = list(techs)[:AUTH_SAMPLES]
        for i, tid in enumerate(names):
            line = ("%s %s" % (tid, st.totp(techs[tid], epoch))).encode()
            os.write(tech.master, line)
            read_until(tech.master, re.escape(line), 5)
            t0 = time.perf_counter_ns()
            os.write(tech.master, b"\r")
            read_until(tech.master, rb"Authenticated as [^;]+; session \S+\r\n",
                       5)
            auth.append((time.perf_counter_ns() - t0) / 1e6)
            if i < len(names) - 1:
                s.ctl("end-session", check=True)
                read_until(tech.master, PROMPT, 5)
        drain(dev.master)
    except BaseException:
        s.cleanup()
        raise
    return s, auth


def peak_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1])
    return 0


def measure(ts, ds, td, dd):
    """Rounds of full duplex taken in turn, shimd and socat (which goes
    first alternates), so that a machine that slows down or speeds up
    during the run weighs on both alike; then the latencies."""
    echo_s, echo_d = Echo(ds.master), Echo(dd.master)
    echo_s.start()
    echo_d.start()
    fd_s, fd_d = [], []
    for r in range(ROUNDS):
        order = [(ts, echo_s, fd_s), (td, echo_d, fd_d)]
        for tech, echo, out in (order if r % 2 == 0 else order[::-1]):
            out.append(full_duplex(tech.master, echo))
            drain(tech.master, 0.05)
    lat_s = latency(ts.master, ds.master, echo_s)
    lat_d = latency(td.master, dd.master, echo_d)
    return fd_s, fd_d, lat_s, lat_d


def main():
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    print("bench_tty: tty device paths, echoing device, recording on; "
          "%d MiB echoed x %d rounds in turn, %d latency samples %.0f ms apart"
          % (ECHO_MB, ROUNDS, LAT_SAMPLES, GAP_MS))
    ts, ds, td, dd = Pair(), Pair(), Pair(), Pair()
    s = sock = None
    try:
        s, auth = start_shimd(ts, ds)
        sock = start_socat(td, dd)
        fd_s, fd_d, s_lat, d_lat = measure(ts, ds, td, dd)
        rss = peak_rss(s.proc.pid)
    finally:
        if sock is not None:
            sock.terminate()
            sock.wait(5)
        if s is not None:
            s.cleanup()
        for p in (ts, ds, td, dd):
            p.close()
    s_fd, d_fd = statistics.median(fd_s), statistics.median(fd_d)
    ratios = [a / b for a, b in zip(fd_s, fd_d)]
    print()
    print("%-40s %12s %14s %s" % ("", "shimd", "direct (socat)",
                                  "ratio (target)"))
    print("%-40s %7.1f MB/s %9.1f MB/s  %.2fx (>= 0.9x)" % (
        "full duplex, echoed (median)", s_fd, d_fd,
        statistics.median(ratios)))
    print("%-40s %s" % ("  ratio of each round", " ".join(
        "%.2f" % r for r in ratios)))
    for i, name in enumerate(("p50", "p99")):
        print("%-40s %9.1f us %11.1f us  %.2fx (<= 1.1x)" % (
            "latency tech->device %s, %.0f ms gaps" % (name, GAP_MS),
            s_lat[i], d_lat[i], s_lat[i] / d_lat[i]))
    print("%-40s %9.3f ms  (median of %d, max %.3f ms; target <= 1 ms)" % (
        "auth line -> success line", statistics.median(auth), len(auth),
        max(auth)))
    print("%-40s %9d kB  (target < 4 MB)" % ("shimd peak RSS (VmHWM)", rss))


if __name__ == "__main__":
    main()
