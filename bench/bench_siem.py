#!/usr/bin/env python3
"""bench_siem.py: the SIEM transport against a real rsyslog over mutual TLS.

Figures (each with the target beside it):
  - sustained events/s, emitted and delivered to rsyslog over TLS with the
    durable spool (20,000 events, time from the first emit until the spool
    is empty and rsyslog has written them all);
  - time to drain a day's heartbeat backlog (1,440 heartbeats spooled while
    the SIEM was down), a week's (10,080), and a 100,000-event storm.
Uses the rsyslog/certificate helpers of tests/integration/test_siem.py and
build/tests/event-sender.
"""
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import test_siem as ts  # noqa: E402


def count_received(srv, name, want, timeout):
    deadline = time.time() + timeout
    n = 0
    while time.time() < deadline:
        n = sum(1 for l in srv.lines() if (" %s [" % name) in l)
        if n >= want:
            return n, time.time()
        time.sleep(0.02)
    return n, time.time()


def timing(out):
    m = re.search(r"timing emit_ms=([\d.]+) durable_ms=([\d.]+) drained_ms=([\d.]+)", out)
    return [float(x) for x in m.groups()] if m else [0.0, 0.0, 0.0]


def main():
    if not os.path.exists(ts.SENDER) or shutil.which("rsyslogd") is None:
        print("bench_siem.py: needs build/tests/event-sender and rsyslogd; skipped")
        return 0
    t = tempfile.mkdtemp(prefix="shim-bench-siem-")
    rows = []
    try:
        ts.make_ca(t, "ca")
        ca = os.path.join(t, "ca.pem")
        server = ts.make_cert(t, "ca", "server", "localhost", True)
        client = ts.make_cert(t, "ca", "client", ts.CLIENT_NAME, False)
        port = ts.free_port()

        # 1. Sustained: emit and deliver 20,000 events.
        d = tempfile.mkdtemp(dir=t)
        srv = ts.Rsyslog(d, port, ca, *server)
        srv.start()
        cfg = os.path.join(d, "shim.yaml")
        ts.write_config(cfg, os.path.join(d, "store"), port, ca, *client)
        n = 20000
        start = time.time()
        p = ts.sender(cfg, "--name", "session_end", "--count", n,
                      "--field", "technician=alice@example.org",
                      "--field", "reason=technician_disconnect",
                      "--wait-drain", 120, timeout=300)
        got, end = count_received(srv, "session_end", n, 60)
        emit_ms, durable_ms, drained_ms = timing(p.stdout)
        rows.append(("events emitted/s (durable spool)", "%.0f" % (n / (durable_ms / 1e3)), ">= 2000"))
        rows.append(("events/s delivered to rsyslog over TLS", "%.0f" % (got / (end - start)), ">= 2000"))
        srv.stop()

        # 2. Backlogs: spooled with the SIEM down, then drained.
        for label, name, count in (("day of heartbeats (1,440)", "heartbeat", 1440),
                                   ("week of heartbeats (10,080)", "heartbeat", 10080),
                                   ("storm of 100,000 events", "auth_fail", 100000)):
            d = tempfile.mkdtemp(dir=t)
            port = ts.free_port()
            srv = ts.Rsyslog(d, port, ca, *server)
            cfg = os.path.join(d, "shim.yaml")
            ts.write_config(cfg, os.path.join(d, "store"), port, ca, *client,
                            extra="  spool_max_bytes: 1073741824\n")
            p = ts.sender(cfg, "--name", name, "--count", count,
                          "--field", "boot_count=3", "--field", "uptime=86400",
                          "--field", "state=IDLE", "--field", "tamper=clear",
                          "--close-timeout", 0, timeout=600)
            srv.start()
            start = time.time()
            p = ts.sender(cfg, "--count", 0, "--wait-drain", 300, timeout=600)
            got, end = count_received(srv, name, count, 120)
            ok = got >= count and "spool_depth=0" in p.stdout
            rows.append(("drain " + label, "%.2f s%s" % (end - start, "" if ok else " (INCOMPLETE %d)" % got),
                         "< 60 s" if count == 1440 else "-"))
            srv.stop()
    finally:
        shutil.rmtree(t, ignore_errors=True)
    print("%-44s %16s %12s" % ("figure", "shimd", "target"))
    for r in rows:
        print("%-44s %16s %12s" % r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
