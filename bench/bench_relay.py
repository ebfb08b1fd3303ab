"""shimd on the data path, side by side with a direct relay.

The same arrangement twice: a technician program and a device program,
each on a pseudo-terminal, with a relay process between them. The relay is
first socat (PTY <-> PTY, no shim), then shimd in an authenticated session
with recording on. Figures:

  - one-way latency technician -> device, single bytes, p50/p99/max over
    LAT_SAMPLES samples (the next byte is sent when the last arrived),
    taken in alternating blocks from both arrangements, running side by
    side, so that load from other programs falls on both alike;
  - throughput in MB/s each way (THROUGHPUT_MB, one direction at a time);
  - time from the auth line's last byte to the success line;
  - shimd's resident memory (VmRSS, VmHWM) after the traffic;
  - wake-ups per second while idle (context switches of every shimd thread
    over IDLE_SECONDS, from /proc/PID/task/*/status).

Usage: python3 bench/bench_relay.py   (SHIM_BUILD = build directory)
"""

import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import shimtest as st  # noqa: E402

LAT_SAMPLES = int(os.environ.get("LAT_SAMPLES", "2000"))
THROUGHPUT_MB = int(os.environ.get("THROUGHPUT_MB", "16"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "10"))
AUTH_SAMPLES = 8


def lat_samples(src, dst, n, warm=50):
    out = []
    one = b"\x55"
    for i in range(n + warm):
        t0 = time.perf_counter_ns()
        os.write(src.fd, one)
        while True:
            select.select([dst.fd], [], [], 5)
            try:
                if os.read(dst.fd, 16):
                    break
            except BlockingIOError:
                continue
        dt = time.perf_counter_ns() - t0
        if i >= warm:
            out.append(dt / 1000.0)
    return out


def summary(out):
    out = sorted(out)
    return (out[len(out) // 2], out[int(len(out) * 0.99) - 1], out[-1])


def latency_side_by_side(a, b, n, blocks=8):
    """Alternates blocks of samples between two arrangements, so that load
    from other programs on the machine falls on both alike."""
    sa, sb = [], []
    per = max(1, n // blocks)
    for _ in range(blocks):
        sa += lat_samples(a[0], a[1], per, warm=10)
        sb += lat_samples(b[0], b[1], per, warm=10)
    return summary(sa), summary(sb)


def throughput(src, dst, mb):
    total = mb * 1024 * 1024
    block = bytes(range(256)) * 64  # 16 KiB, every byte value
    err = []

    def writer():
        try:
            sent = 0
            while sent < total:
                n = min(len(block), total - sent)
                src.write(block[:n], timeout=60)
                sent += n
        except Exception as e:  # noqa: BLE001
            err.append(e)
    th = threading.Thread(target=writer)
    t0 = time.perf_counter()
    th.start()
    got = 0
    while got < total:
        r, _, _ = select.select([dst.fd], [], [], 10)
        if not r:
            raise TimeoutError("throughput stalled at %d bytes" % got)
        try:
            got += len(os.read(dst.fd, 65536))
        except BlockingIOError:
            pass
    dt = time.perf_counter() - t0
    th.join()
    if err:
        raise err[0]
    return total / dt / 1e6


def direct_start():
    d = tempfile.mkdtemp(prefix="bench-socat-")
    a, b = os.path.join(d, "tech"), os.path.join(d, "dev")
    p = subprocess.Popen(["socat", "PTY,link=%s,raw,echo=0" % a,
                          "PTY,link=%s,raw,echo=0" % b],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 5
        while not (os.path.lexists(a) and os.path.lexists(b)):
            if time.time() > deadline:
                raise TimeoutError("socat did not start")
            time.sleep(0.02)
        return p, st.Pty(a), st.Pty(b)
    except Exception:
        p.terminate()
        p.wait(5)
        raise


def proc_status(pid):
    vals = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            vals[k] = v.strip()
    return vals


def switches(pid):
    """Context switches: (all threads, the main loop's thread)."""
    total = main = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches",
                                    "nonvoluntary_ctxt_switches")):
                    n = int(line.split(":")[1])
                    total += n
                    if int(tid) == pid:
                        main += n
    return total, main


def auth_times(s, t, techs, names, epoch):
    """Auth line's last byte -> success line, one sample per technician."""
    out = []
    for i, tid in enumerate(names):
        code = st.totp(techs[tid], epoch)
        line = ("%s %s" % (tid, code)).encode()
        t.write(line)
        t.read_until(line, 5)
        t0 = time.perf_counter_ns()
        t.write(b"\r")
        t.read_until(re.compile(rb"Authenticated as [^;]+; session \S+\r\n"), 5)
        out.append((time.perf_counter_ns() - t0) / 1e6)
        if i < len(names) - 1:
            s.ctl("end-session", check=True)
            t.read_until(st.PROMPT, 5)
    return out


def auth_on_tmpfs(techs):
    """The same on storage in RAM: what the shim itself costs, without the
    two fsyncs (durable replay mark, durable recording header)."""
    if not os.path.isdir("/dev/shm"):
        return None
    s = st.Shim(techs=techs, base="/dev/shm")
    s.start()
    try:
        s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=10)
        return auth_times(s, t, techs, list(techs)[:AUTH_SAMPLES], epoch)
    finally:
        s.cleanup()


def shim(direct_ends):
    techs = {}
    # one technician per auth sample (each code is single-use)
    secrets = ["JBSWY3DPEHPK3PXP", "JFAVAU2GMUKDOMRX", "GEZDGNBVGY3TQOJQ",
               "MFRGGZDFMZTWQ2LK", "KRSXG5CTMVRXEZLU", "ONSWG4TFOQYTEMZU",
               "NBSWY3DPO5XXE3DE", "IFBEGRCFIZDUQSKK", "JBQWY3DPMFZGK3TU"]
    for i, sec in enumerate(secrets):
        techs["tech%d@example.org" % i] = sec
    s = st.Shim(techs=techs, session={"idle_timeout": 900})
    s.start()
    try:
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=10)
        auth = auth_times(s, t, techs, list(techs)[:AUTH_SAMPLES], epoch)
        lat, dlat = latency_side_by_side((t, dev), direct_ends, LAT_SAMPLES)
        dt, dd = direct_ends
        d_up = throughput(dt, dd, THROUGHPUT_MB)
        up = throughput(t, dev, THROUGHPUT_MB)
        d_down = throughput(dd, dt, THROUGHPUT_MB)
        down = throughput(dev, t, THROUGHPUT_MB)
        direct = {"lat": dlat, "up": d_up, "down": d_down}
        ps = proc_status(s.proc.pid)
        # idle: the session ends, the technician leaves
        s.ctl("end-session", check=True)
        t.close()
        s.wait_log("-> IDLE")
        time.sleep(1.0)
        c0 = switches(s.proc.pid)
        time.sleep(IDLE_SECONDS)
        c1 = switches(s.proc.pid)
        ps_idle = proc_status(s.proc.pid)
        s.cleanup()
        return direct, {"lat": lat, "up": up, "down": down, "auth": auth,
                "auth_ram": auth_on_tmpfs(techs),
                "rss": ps["VmRSS"], "hwm": ps_idle["VmHWM"],
                "rss_idle": ps_idle["VmRSS"],
                "threads": ps_idle["Threads"],
                "wakeups": (c1[0] - c0[0]) / IDLE_SECONDS,
                "wakeups_main": (c1[1] - c0[1]) / IDLE_SECONDS}
    finally:
        s.cleanup()


def main():
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    print("bench_relay: %d latency samples, %d MiB each way, idle %.0f s"
          % (LAT_SAMPLES, THROUGHPUT_MB, IDLE_SECONDS))
    proc, dt, dd = direct_start()
    try:
        d, s = shim((dt, dd))
    finally:
        proc.terminate()
        proc.wait(5)
    print()
    print("%-36s %14s %14s %s" % ("", "shimd", "direct (socat)",
                                  "ratio / target"))
    for i, name in enumerate(("p50", "p99", "max")):
        r = s["lat"][i] / d["lat"][i]
        print("%-36s %11.1f us %11.1f us  %.2fx%s" % (
            "latency tech->device " + name, s["lat"][i], d["lat"][i], r,
            "  (target <= 1.2x)" if i < 2 else ""))
    for k, label in (("up", "technician -> device"),
                     ("down", "device -> technician")):
        print("%-36s %9.1f MB/s %9.1f MB/s  %.2fx  (target >= 0.5x)" % (
            "throughput " + label, s[k], d[k], s[k] / d[k]))
    print("%-36s %11.3f ms  (median of %d; max %.3f ms; target <= 1 ms)" % (
        "auth line -> success line", statistics.median(s["auth"]),
        len(s["auth"]), max(s["auth"])))
    if s["auth_ram"]:
        print("%-36s %11.3f ms  (storage on tmpfs: the shim's own cost)" % (
            "auth line -> success line, tmpfs", statistics.median(s["auth_ram"])))
    print("%-36s %14s  (peak %s, idle %s; %s threads; target < 4 MB)" % (
        "RSS after traffic", s["rss"], s["hwm"], s["rss_idle"], s["threads"]))
    print("%-36s %11.2f /s  (all threads; event loop thread %.2f /s; "
          "target: only configured timers)"
          % ("wake-ups when idle", s["wakeups"], s["wakeups_main"]))
    print("\nPrototype reference: +80-100 ms per byte on ttys, ~1/10 of direct "
          "throughput, 21-29 MB RSS, 1-14 wake-ups/s idle.")


if __name__ == "__main__":
    main()
