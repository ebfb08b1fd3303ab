"""shimd as a user deploys it, side by side with a direct relay.

The bench holds two pseudo-terminal pairs and their masters: the
technician's laptop on one, the medical device on the other. The relay
opens the two slave paths as plain tty device paths (as it would
/dev/ttyUSB0: no "pty:" spec): shimd (an authenticated session, recording
on) on two pairs, socat's raw relay on two others (the reference of the
targets), and on two more the line relay (bench/relay_ref.c: shimd's own
serial layer with nothing else, which shows what reading a tty as shimd
must, with PARMRK, costs by itself). Their rounds are taken in turn. The device echoes every
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


def one_trip(tech_fd, dev_fd):
    t0 = time.perf_counter_ns()
    os.write(tech_fd, b"\x55")
    while True:
        if not select.select([dev_fd], [], [], 5)[0]:
            raise TimeoutError("latency byte lost")
        try:
            if os.read(dev_fd, 16):
                return (time.perf_counter_ns() - t0) / 1000.0
        except BlockingIOError:
            continue


def latencies(relays, echoes):
    """One byte every GAP_MS, technician -> device, to each relay in turn
    (so that the machine's moments weigh on all alike); the echo threads
    are stopped so that the bench reads the device sides itself.
    Returns [(p50, p99)] in the order of relays."""
    for e in echoes:
        e.stop = True
        e.join()
    out = [[] for _ in relays]
    for i in range(LAT_SAMPLES + 20):
        for k, (tech, dev) in enumerate(relays):
            t = one_trip(tech.master, dev.master)
            if i >= 20:
                out[k].append(t)
            time.sleep(GAP_MS / 1000.0)
    res = []
    for o in out:
        o.sort()
        res.append((o[len(o) // 2], o[int(len(o) * 0.99) - 1]))
    return res


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


def cpu_s(pid):
    """User + system time of a process, all its threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(relays):
    """Rounds of full duplex taken in turn, one relay after the other (the
    order turning each round), so that a machine that slows down or speeds
    up during the run weighs on all alike; then the latencies.
    relays: [(tech pair, device pair)]; returns [(rounds, (p50, p99))]."""
    echoes = [Echo(dev.master) for _, dev in relays]
    for e in echoes:
        e.start()
    try:
        rounds = [[] for _ in relays]
        for r in range(ROUNDS):
            k = r % len(relays)
            for i in list(range(k, len(relays))) + list(range(k)):
                tech = relays[i][0]
                rounds[i].append(full_duplex(tech.master, echoes[i]))
                drain(tech.master, 0.05)
        lat = latencies(relays, echoes)
    finally:
        for e in echoes:
            e.stop = True
    return list(zip(rounds, lat))


def start_relay(argv):
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # no ready signal: let it open both
    return p


def main():
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    ref = os.path.join(st.BUILD, "bench", "relay_ref")
    print("bench_tty: tty device paths, echoing device, recording on; "
          "%d MiB echoed x %d rounds in turn, %d latency samples %.0f ms apart"
          % (ECHO_MB, ROUNDS, LAT_SAMPLES, GAP_MS))
    pairs = [Pair() for _ in range(6)]
    (ts, ds), (td, dd), (tr, dr) = zip(pairs[0::2], pairs[1::2])
    s, others = None, []
    try:
        s, auth = start_shimd(ts, ds)
        others.append(start_relay(["socat", "%s,raw,echo=0" % td.path,
                                   "%s,raw,echo=0" % dd.path]))
        others.append(start_relay([ref, tr.path, dr.path]))
        pids = [s.proc.pid] + [p.pid for p in others]
        cpu0 = [cpu_s(pid) for pid in pids]
        res = measure([(ts, ds), (td, dd), (tr, dr)])
        cpu = [cpu_s(pid) - c for pid, c in zip(pids, cpu0)]
        rss = peak_rss(s.proc.pid)
    finally:
        for p in others:
            p.terminate()
            p.wait(5)
        if s is not None:
            s.cleanup()
        for p in pairs:
            p.close()
    (fd_s, s_lat), (fd_d, d_lat), (fd_r, r_lat) = res
    vs_d = [a / b for a, b in zip(fd_s, fd_d)]
    vs_r = [a / b for a, b in zip(fd_s, fd_r)]
    print()
    print("%-36s %11s %14s %15s %14s" % (
        "", "shimd", "socat raw", "ratio (target)", "line relay"))
    print("%-36s %6.1f MB/s %9.1f MB/s %6.2fx (>= 0.9x) %8.1f MB/s  %.2fx"
          % ("full duplex, echoed (median)", statistics.median(fd_s),
             statistics.median(fd_d), statistics.median(vs_d),
             statistics.median(fd_r), statistics.median(vs_r)))
    print("%-36s %s | %s" % ("  shimd's ratio in each round",
                             " ".join("%.2f" % r for r in vs_d),
                             " ".join("%.2f" % r for r in vs_r)))
    for i, name in enumerate(("p50", "p99")):
        print("%-36s %8.1f us %11.1f us %6.2fx (<= 1.1x) %10.1f us  %.2fx"
              % ("latency tech->device %s, %.0f ms gaps" % (name, GAP_MS),
                 s_lat[i], d_lat[i], s_lat[i] / d_lat[i], r_lat[i],
                 s_lat[i] / r_lat[i]))
    print("%-36s %8.2f s %13.2f s %16s %11.2f s" % (
        "relay CPU while measured, user + sys", cpu[0], cpu[1], "", cpu[2]))
    print("%-36s %8.3f ms  (median of %d, max %.3f ms; target <= 1 ms)" % (
        "auth line -> success line", statistics.median(auth), len(auth),
        max(auth)))
    print("%-36s %8d kB  (target < 4 MB)" % ("shimd peak RSS (VmHWM)", rss))
    print("line relay: shimd's serial layer alone (bench/relay_ref.c: the "
          "same termios,\nPARMRK marking so that BREAK is told from data, "
          "and its undoing), no gate, no recording.")


if __name__ == "__main__":
    main()
