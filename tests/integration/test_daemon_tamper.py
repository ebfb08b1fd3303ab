"""shimd with its tamper sensors, latch and heartbeats, driven end to end:
a file sensor tripped mid-session closes the gate (no byte crosses after
it), the session is sealed with tamper:<event>, the latch survives a
restart and only a good reset token for that latch clears it, never while
the case is still open, and a case still or again open after a reset trips
at once; heartbeats arrive at the
period with a rising boot count and verify in the central monitor; the
power-fail input shuts down gracefully without tamper; a sensor that
cannot be read stops the gate (or is only reported)."""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

class TamperShim(st.Shim):
    """A shim with a case-open file sensor, a power-fail file sensor and a
    reset authority key pair."""

    def __init__(self, heartbeat=60.0, extra_sensors="", siem=None,
                 fault=None, **kw):
        self.pre = None
        super().__init__(**kw)
        self.case = os.path.join(self.dir, "case-open")
        self.pfail = os.path.join(self.dir, "power-fail")
        self.auth_key = os.path.join(self.dir, "authority.key")
        self.auth_pub = os.path.join(self.dir, "authority.pub")
        self.ctl("token", "keygen", "--out", self.auth_key, "--pub",
                 self.auth_pub, check=True)
        with open(self.config) as f:
            text = f.read()
        tamper = ["tamper:",
                  "  heartbeat_period: %s" % heartbeat,
                  "  reset_authority_public_key: %s" % self.auth_pub]
        if fault:
            tamper += ["  on_sensor_fault: %s" % fault]
        tamper += ["  sensors:",
                   "    - {type: file, path: %s, event: case_opened}" % self.case,
                   "    - {type: file, path: %s, event: mains_lost, role: power_fail}"
                   % self.pfail]
        tamper += [l for l in extra_sensors.split("\n") if l]
        text = text.replace("technicians:", "\n".join(tamper) + "\ntechnicians:", 1)
        if siem:
            text = text.replace('siem:\n  transport: "noop"', siem, 1)
        self.write_config(text)

    def events(self, name=None):
        out = []
        try:
            with open(os.path.join(self.storage, "audit.jsonl")) as f:
                for line in f:
                    e = json.loads(line)
                    if name is None or e.get("event") == name:
                        out.append(e)
        except FileNotFoundError:
            pass
        return out

    def wait_event(self, name, count=1, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ev = self.events(name)
            if len(ev) >= count:
                return ev
            time.sleep(0.05)
        raise TimeoutError("no %d %s event(s): %s" %
                           (count, name, self.events()[-10:]))

    def latch_id(self):
        """The latch identity as 'shimctl tamper status' shows it (it
        reads the state shimd persisted, also while shimd runs)."""
        r = self.ctl("tamper", "status")
        m = re.search(r"^latch_id: (\d+-\d+)$", r.stdout, re.M)
        assert m, r.stdout + r.stderr
        return m.group(1)

    def token(self, shim=None, key=None, extra=(), latch=None):
        r = self.ctl("token", "issue", "tamper-reset", "--shim",
                     shim or "shim", "--latch", latch or self.latch_id(),
                     "--key", key or self.auth_key,
                     "--issuer", "soc-duty", "--reason", "case inspected",
                     *extra, check=True)
        return r.stdout.strip().splitlines()[-1]


def with_shim(fn, **kw):
    st.with_shim(fn, cls=TamperShim, **kw)


def trip(s, path=None):
    with open(path or s.case, "w") as f:
        f.write("open\n")


def test_trip_mid_session_closes_gate():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        t.write(b"before-trip")
        assert dev.read_exact(11, 5) == b"before-trip"

        # A technician keeps typing while the case is opened.
        stop = threading.Event()
        sent_after = []

        def typist():
            n = 0
            while not stop.is_set():
                try:
                    t.write(b"x", timeout=1)
                    n += 1
                except Exception:
                    break
                time.sleep(0.001)
            sent_after.append(n)
        th = threading.Thread(target=typist)
        th.start()
        time.sleep(0.2)  # the typist is mid-stream when the case opens
        t0 = time.time_ns()
        trip(s)
        tam = s.wait_event("tamper", timeout=5)[0]
        closed = (int(tam["gate_closed_ns"]) - t0) / 1e6
        time.sleep(0.3)  # the typist keeps typing against a closed gate
        stop.set()
        th.join()
        got_before = dev.read_for(0.5)
        # Everything the device got was typed before the trip was seen.
        assert set(got_before) <= {ord("x")}, got_before[:40]
        print("trip to gate closed: %.2f ms" % closed)
        assert 0 < closed < 1000, closed
        # After the stop, nothing crosses in either direction.
        t.write(b"after-the-trip" * 50)
        dev.write(b"device-talks")
        assert dev.read_for(0.8) == b""
        out = t.read_for(0.8)
        assert b"device-talks" not in out, out
        # Sealed with the tamper reason; reported in the priority lane.
        reason = None
        deadline = time.time() + 5
        while time.time() < deadline and reason is None:
            try:
                reason = s.footer(sid)["terminal_reason"]
            except Exception:
                time.sleep(0.1)
        assert reason == "tamper:case_opened", reason
        tam = s.wait_event("tamper")[0]
        stp = s.wait_event("emergency_stop")[0]
        assert tam["seq"] < stp["seq"]
        assert "state: EMERGENCY_STOP" in s.admin("status")
    with_shim(body)


def test_latch_survives_restart_and_reset_needs_authority():
    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        trip(s)
        assert b"EMERGENCY STOP" in t.read_until(b"EMERGENCY STOP", 5)
        os.unlink(s.case)          # the case is closed again...
        t.close()
        s.stop()
        s.start()                  # ...and the shim restarted
        dev = s.connect_dev(count=2)
        t = st.Pty(s.tech_path)
        assert b"EMERGENCY STOP" in t.read_until(b"EMERGENCY STOP", 5)
        code = st.totp(s.techs["alice@example.org"])
        t.write(("alice@example.org %s\r" % code).encode())
        assert b"Authenticated" not in t.read_for(1.0)
        assert dev.read_for(0.3) == b""
        assert "state: EMERGENCY_STOP" in s.admin("status")

        # Refused: a key that is not the authority, another shim, expired.
        other_key = os.path.join(s.dir, "other.key")
        s.ctl("token", "keygen", "--out", other_key, check=True)
        for name, tok in [
                ("wrong key", s.token(key=other_key)),
                ("other shim", s.token(shim="shim-elsewhere")),
                ("expired", s.token(extra=("--now", str(int(time.time()) - 7200),
                                           "--ttl", "600")))]:
            r = s.ctl("tamper", "reset", "--token", tok)
            assert r.returncode != 0, (name, r.stdout, r.stderr)
            assert "state: EMERGENCY_STOP" in s.admin("status"), name
        assert len(s.events("tamper_reset_refused")) == 3

        # The issuer learns the latch from the events and the status.
        lid = s.events("emergency_stop")[0]["latch"]
        assert lid == s.events("tamper")[0]["latch"] == s.latch_id(), lid
        good = s.token()
        r = s.ctl("tamper", "reset", "--token", good)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "cleared" in r.stdout and ("latch %s" % lid) in r.stdout
        assert re.search(r"state: (CHALLENGE|IDLE)", s.admin("status"))
        ev = s.wait_event("tamper_reset")[0]
        assert "soc-duty" in json.dumps(ev)
        # The technician can work again: the prompt comes back.
        t.read_until(st.PROMPT, 5)
        st.safe_epoch()
        s.login(t)
        t.write(b"ok")
        assert dev.read_exact(2, 5) == b"ok"
        # A used token does not clear a later stop.
        trip(s)
        s.wait_event("emergency_stop", count=2)
        r = s.ctl("tamper", "reset", "--token", good)
        assert r.returncode != 0
        assert "state: EMERGENCY_STOP" in s.admin("status")
    with_shim(body)


def wait_status(s, pattern, timeout=5):
    deadline = time.time() + timeout
    st_text = ""
    while time.time() < deadline:
        st_text = s.admin("status")
        if re.search(pattern, st_text):
            return st_text
        time.sleep(0.05)
    raise AssertionError("status never matched %r:\n%s" % (pattern, st_text))


def test_reset_refused_while_case_open():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        trip(s)
        assert b"EMERGENCY STOP" in t.read_until(b"EMERGENCY STOP", 5)
        s.wait_event("emergency_stop")
        lid = s.latch_id()
        tok = s.token()
        # The case is still open: refused with its own reason, the token
        # is not spent, the gate stays closed.
        r = s.ctl("tamper", "reset", "--token", tok)
        assert r.returncode != 0, r.stdout
        assert "sensor case_opened still active" in r.stdout + r.stderr, \
            r.stdout + r.stderr
        ref = s.wait_event("tamper_reset_refused")[-1]
        assert "sensor case_opened still active" in ref["reason"], ref
        assert ref["latch"] == lid, ref
        s.wait_log("sensor case_opened still active")
        assert "state: EMERGENCY_STOP" in s.admin("status")
        assert not s.events("tamper_reset")
        assert s.latch_id() == lid
        code = st.totp(s.techs["alice@example.org"])
        t.write(("alice@example.org %s\r" % code).encode())
        assert b"Authenticated" not in t.read_for(1.0)
        assert dev.read_for(0.3) == b""
        # Closed: the same token now clears the latch.
        os.unlink(s.case)
        r = s.ctl("tamper", "reset", "--token", tok)
        assert r.returncode == 0, r.stdout + r.stderr
        wait_status(s, r"state: (CHALLENGE|IDLE)")
        assert s.wait_event("tamper_reset")[0]["latch"] == lid
        # Opened again after the reset: it trips at once, as a new latch.
        trip(s)
        s.wait_event("emergency_stop", count=2)
        wait_status(s, r"state: EMERGENCY_STOP")
        lid2 = s.latch_id()
        assert lid2 != lid and int(lid2.split("-")[0]) == \
            int(lid.split("-")[0]) + 1, (lid, lid2)
        assert s.events("emergency_stop")[-1]["latch"] == lid2
    with_shim(body)


def test_case_open_at_the_moment_of_reset_trips_again():
    """A debounced switch: the case is closed (its clear still debouncing
    in the edge history) when the reset is accepted, and opened again at
    once. Before the re-arm, no edge was ever reported again and the shim
    ran with the case open."""
    sensor = ("    - {type: file, path: %s, event: lid_opened, "
              "debounce_ms: 5000}")

    def body(s):
        lid_path = os.path.join(s.dir, "lid")
        s.connect_dev()
        t = s.connect_tech()
        trip(s, lid_path)
        assert b"EMERGENCY STOP" in t.read_until(b"EMERGENCY STOP", 5)
        s.wait_event("emergency_stop")
        tok = s.token()
        os.unlink(lid_path)
        r = s.ctl("tamper", "reset", "--token", tok)
        assert r.returncode == 0, r.stdout + r.stderr
        trip(s, lid_path)
        s.wait_event("emergency_stop", count=2)
        wait_status(s, r"state: EMERGENCY_STOP")
        assert s.events("emergency_stop")[-1]["reason"] == "tamper:lid_opened"
        # Heartbeats and status say so.
        r = s.ctl("tamper", "status")
        assert r.returncode == 1 and "LATCHED" in r.stdout, r.stdout

    def run_it():
        s = TamperShim(heartbeat=60.0)
        try:
            with open(s.config) as f:
                text = f.read()
            text = text.replace("  sensors:\n", "  sensors:\n" +
                                sensor % os.path.join(s.dir, "lid") + "\n", 1)
            s.write_config(text)
            s.start()
            body(s)
        except Exception:
            print(s.log()[-4000:])
            raise
        finally:
            s.cleanup()
    run_it()


def test_token_for_another_latch_refused():
    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        trip(s)
        assert b"EMERGENCY STOP" in t.read_until(b"EMERGENCY STOP", 5)
        s.wait_event("emergency_stop")
        lid = s.latch_id()
        first = s.token()
        spare = s.token()          # issued for the same latch, never used
        os.unlink(s.case)
        r = s.ctl("tamper", "reset", "--token", first)
        assert r.returncode == 0, r.stdout + r.stderr
        wait_status(s, r"state: (CHALLENGE|IDLE)")
        # A later, unrelated trip: latch N+1.
        trip(s)
        s.wait_event("emergency_stop", count=2)
        os.unlink(s.case)
        lid2 = s.latch_id()
        assert lid2 != lid
        r = s.ctl("tamper", "reset", "--token", spare)
        assert r.returncode != 0, r.stdout
        out = r.stdout + r.stderr
        assert "token is for another latch" in out, out
        assert lid in out and lid2 in out, out
        ref = s.wait_event("tamper_reset_refused")[-1]
        assert "token is for another latch" in ref["reason"], ref
        assert "state: EMERGENCY_STOP" in s.admin("status")
        # A token issued for latch N+1 clears it.
        r = s.ctl("tamper", "reset", "--token", s.token(latch=lid2))
        assert r.returncode == 0, r.stdout + r.stderr
        wait_status(s, r"state: (CHALLENGE|IDLE)")
        # Issuing needs the latch.
        r = s.ctl("token", "issue", "tamper-reset", "--shim", "shim",
                  "--key", s.auth_key)
        assert r.returncode == 2 and "--latch" in r.stderr, r.stderr
        for bad in ("0-1", "1", "x-2", "1-2-3"):
            r = s.ctl("token", "issue", "tamper-reset", "--shim", "shim",
                      "--latch", bad, "--key", s.auth_key)
            assert r.returncode == 2, (bad, r.stdout, r.stderr)
    with_shim(body)


def test_heartbeat_names_the_latch():
    def body(s):
        s.wait_event("heartbeat")
        assert s.events("heartbeat")[-1]["latch"] == "-"
        trip(s)
        s.wait_event("emergency_stop")
        n = len(s.events("heartbeat"))
        hb = s.wait_event("heartbeat", count=n + 1, timeout=5)[-1]
        assert hb["tamper"] == "latched" and hb["latch"] == s.latch_id(), hb
    with_shim(body, heartbeat=1.0)


class SyslogReceiver:
    """A plain RFC 5425-framed syslog receiver on 127.0.0.1 that writes one
    message per line, as rsyslog does with a %rawmsg% template."""

    def __init__(self, path):
        self.path = path
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.stop = False
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def run(self):
        self.srv.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.client, args=(c,), daemon=True).start()

    def client(self, c):
        buf = b""
        c.settimeout(0.2)
        with open(self.path, "ab") as out:
            while not self.stop:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                buf += chunk
                while True:
                    m = re.match(rb"(\d+) ", buf)
                    if not m or len(buf) < m.end() + int(m.group(1)):
                        break
                    n = int(m.group(1))
                    msg = buf[m.end():m.end() + n]
                    buf = buf[m.end() + n:]
                    out.write(msg.replace(b"\n", b"#012") + b"\n")
                    out.flush()
        c.close()

    def close(self):
        self.stop = True
        self.srv.close()


def test_heartbeats_signed_and_monitored():
    s = None
    recv = None
    try:
        tmp_log = None
        s = TamperShim(heartbeat=1.0)
        tmp_log = os.path.join(s.dir, "siem.log")
        recv = SyslogReceiver(tmp_log)
        with open(s.config) as f:
            text = f.read()
        text = text.replace('siem:\n  transport: "noop"',
                            "siem:\n  transport: syslog-tcp\n  insecure: true\n"
                            "  host: 127.0.0.1\n  port: %d" % recv.port, 1)
        s.write_config(text)
        s.start()
        hb = s.wait_event("heartbeat", count=3, timeout=8)
        t = [e["time_ns"] for e in hb[:3]]
        gaps = [(b - a) / 1e9 for a, b in zip(t, t[1:])]
        assert all(0.7 < g < 1.6 for g in gaps), gaps
        assert hb[0]["boot_count"] == "1" and len(hb[0]["sig"]) == 128
        for k in ("uptime", "state", "tamper", "session_active", "spool_depth",
                  "version", "binary_digest", "config_digest"):
            assert k in hb[0], k
        s.stop()
        s.start()
        hb2 = s.wait_event("heartbeat", count=len(hb) + 2, timeout=8)
        assert hb2[-1]["boot_count"] == "2", hb2[-1]
        assert s.events("shutting_down")[0]["reason"] == "sigterm"

        # The central monitor verifies them against the shim's public key.
        inv = os.path.join(s.dir, "inventory")
        os.makedirs(inv)
        r = s.ctl("identity", "pub", "--out", os.path.join(inv, "shim.pub"))
        assert r.returncode == 0, r.stderr
        deadline = time.time() + 10
        while time.time() < deadline:
            with open(tmp_log, "rb") as f:
                if f.read().count(b" heartbeat ") >= len(hb2):
                    break
            time.sleep(0.2)
        r = s.ctl("monitor", "--inventory", inv, "--log", tmp_log, "--json",
                  "--period", "1")
        assert r.returncode == 0, r.stdout + r.stderr
        verdict = json.loads(r.stdout)
        text = json.dumps(verdict)
        assert '"OK"' in text, text
        # An altered heartbeat is flagged.
        with open(tmp_log, "rb") as f:
            lines = f.read().splitlines()
        forged = [l.replace(b'state="IDLE"', b'state="OPEN"', 1)
                  if b" heartbeat " in l else l for l in lines]
        bad = os.path.join(s.dir, "forged.log")
        with open(bad, "wb") as f:
            f.write(b"\n".join(forged) + b"\n")
        r = s.ctl("monitor", "--inventory", inv, "--log", bad, "--period", "1")
        assert r.returncode == 1 and "BAD-SIGNATURE" in r.stdout, r.stdout
        # After a graceful stop the absence is expected.
        s.stop()
        # the receiver writes the signed shutdown record when it gets it
        deadline = time.time() + 20
        while True:
            r = s.ctl("monitor", "--inventory", inv, "--log", tmp_log,
                      "--period", "1", "--now", str(int(time.time()) + 30))
            if "OFFLINE-EXPECTED" in r.stdout or time.time() > deadline:
                break
            time.sleep(0.2)
        assert "OFFLINE-EXPECTED" in r.stdout, r.stdout
    except Exception:
        if s is not None:
            print(s.log()[-4000:])
        raise
    finally:
        if recv:
            recv.close()
        if s:
            s.cleanup()


def test_power_fail_is_graceful_not_tamper():
    def body(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        t.write(b"abc")
        dev.read_exact(3, 5)
        trip(s, s.pfail)
        s.proc.wait(10)
        assert s.proc.returncode == 0, s.proc.returncode
        assert not s.events("tamper") and not s.events("emergency_stop")
        sd = s.events("shutting_down")
        assert sd and sd[-1]["reason"] == "power_fail" and len(sd[-1]["sig"]) == 128
        assert s.footer(sid)["terminal_reason"] == "power_loss"
        # Back on mains: no latch.
        os.unlink(s.pfail)
        s.start()
        assert re.search(r"state: (CHALLENGE|IDLE)", s.admin("status"))
    with_shim(body)


def test_sensor_fault_stops_or_reports():
    gpio = "    - {type: gpio, chip: gpiochip-missing, line: 3, event: lid_switch}"

    def stops(s):
        t = st.Pty(s.tech_path)
        assert b"EMERGENCY STOP" in t.read_until(b"EMERGENCY STOP", 5)
        assert s.wait_event("sensor_fault")
        assert "state: EMERGENCY_STOP" in s.admin("status")
    with_shim(stops, extra_sensors=gpio)

    def reports(s):
        dev = s.connect_dev()
        t = s.connect_tech()
        assert s.wait_event("sensor_fault")
        st.safe_epoch()
        s.login(t)
        t.write(b"hi")
        assert dev.read_exact(2, 5) == b"hi"
    with_shim(reports, extra_sensors=gpio, fault="report")


if __name__ == "__main__":
    st.need_binaries()
    st.run(st.tests_of(globals()))
