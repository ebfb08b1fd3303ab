"""Uploads to central custody (docs/custody.md): throughput over loopback
TLS, and the relay's latency while an upload runs.

A real nginx (WebDAV PUT, client certificates required, the store of
docs/custody.md) on loopback. One session of UPLOAD_MB of device output is
recorded while the store is down, and COPIES copies of its recording are
queued beside it; then the store comes up, shimd restarts and a new session
is opened while the queue uploads. Figures:

  - upload throughput: bytes delivered / (PUT + HEAD + GET check) time, per
    recording (the `seconds` of recording_uploaded), and the queue as a
    whole (first PUT to last delivery, wall time);
  - one-way latency technician -> device, single bytes, p50/p99/max, while
    the uploads run, side by side with a direct socat relay (alternating
    blocks), and the same again after the queue has drained. The relay
    target is the one of bench_relay.py: p50 and p99 <= 1.2x direct.

Usage: python3 bench/bench_custody.py   (SHIM_BUILD = build directory)
"""

import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import bench_relay as br  # noqa: E402
import shimtest as st  # noqa: E402
import test_custody as tc  # noqa: E402

UPLOAD_MB = int(os.environ.get("UPLOAD_MB", "16"))
COPIES = int(os.environ.get("UPLOAD_COPIES", "12"))
LAT_SAMPLES = int(os.environ.get("LAT_SAMPLES", "2000"))


def queue_count(s):
    m = re.search(r"^upload_queue: (\d+) recordings", s.admin("status"), re.M)
    return int(m.group(1)) if m else -1


def main():
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    if shutil.which("nginx") is None:
        print("bench_custody: nginx is not installed (scripts/install-deps.sh)")
        return
    work = tempfile.mkdtemp(prefix="bench-custody-")
    pki = tc.Pki(os.path.join(work))
    ngd = os.path.join(work, "nginx")
    os.makedirs(ngd)
    ng = tc.Nginx(ngd, pki)
    s = tc.make_shim(pki, ng.port, keep=1)
    proc = None
    try:
        # 1. a big recording, made while the store is down
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = tc.big_session(s, t, dev, "t00@example.org", UPLOAD_MB)
        t.close()
        dev.close()
        s.stop()
        src = tc.local(s, sid)
        size = os.path.getsize(src)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        for i in range(COPIES):
            shutil.copy(src, tc.local(s, "%s-bench%02d" % (stamp, i)))
        total = size * (COPIES + 1)

        # 2. the store comes up; a session relays while the queue uploads
        ng.start()
        proc, dt, dd = br.direct_start()
        s.start()
        dev = s.connect_dev(count=2)
        t = s.connect_tech()
        s.login(t, tid="t01@example.org")
        t0 = time.time()
        st_wait = time.time() + 30
        while not [r for r in ng.requests() if r[0] == "PUT"]:
            if time.time() > st_wait:
                raise TimeoutError("no upload started")
            time.sleep(0.01)
        before = queue_count(s)
        (busy_s, busy_d) = br.latency_side_by_side((t, dev), (dt, dd),
                                                   LAT_SAMPLES)
        after = queue_count(s)
        deadline = time.time() + 600
        while len(tc.events(s, "recording_uploaded")) < COPIES + 1:
            if time.time() > deadline:
                raise TimeoutError("uploads did not finish")
            time.sleep(0.05)
        wall = time.time() - t0
        ups = tc.events(s, "recording_uploaded")
        secs = [float(e["seconds"]) for e in ups]
        (idle_s, idle_d) = br.latency_side_by_side((t, dev), (dt, dd),
                                                   LAT_SAMPLES)
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(5)
        s.cleanup()
        ng.stop()
        shutil.rmtree(work, ignore_errors=True)

    print("bench_custody: %d recordings of %.1f MB over loopback TLS to nginx"
          % (COPIES + 1, size / 1e6))
    print("%-40s %9.1f MB/s  (median per recording: %.3f s for PUT + HEAD + "
          "GET check)" % ("upload throughput, per recording",
                          size / 1e6 / sorted(secs)[len(secs) // 2],
                          sorted(secs)[len(secs) // 2]))
    print("%-40s %9.1f MB/s  (%.1f MB in %.2f s wall, checks included)" % (
        "upload throughput, whole queue", total / 1e6 / wall, total / 1e6,
        wall))
    print("%-40s queue %d -> %d recordings while sampling" % (
        "upload running during the samples:", before, after))
    print()
    print("%-40s %12s %12s %s" % ("", "shimd", "direct", "ratio / target"))
    for label, a, b in (("during upload", busy_s, busy_d),
                        ("after upload", idle_s, idle_d)):
        for i, name in enumerate(("p50", "p99", "max")):
            print("%-40s %9.1f us %9.1f us  %.2fx%s" % (
                "latency tech->device %s, %s" % (name, label), a[i], b[i],
                a[i] / b[i], "  (target <= 1.2x)" if i < 2 else ""))


if __name__ == "__main__":
    main()
