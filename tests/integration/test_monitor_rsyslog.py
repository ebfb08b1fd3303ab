"""The heartbeat monitor end to end with the real rsyslog receiver: signed
events (made with real identity keys by the shim's signing code) are sent
to a private rsyslogd over TCP with octet-counted framing, rsyslog writes
them with a %rawmsg% template (escaping control characters as #012), and
shimctl monitor judges the file it wrote. Every verdict, plus the exit
status and the table."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("SHIM_BUILD", "build")
SHIMCTL = os.path.join(BUILD, "shimctl")
HBSIGN = os.path.join(BUILD, "tests", "hbsign")
T0 = 1800000000
PERIOD = 60
NOW = T0 + 30 * PERIOD
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def shimctl(*args):
    return subprocess.run([SHIMCTL, *args], capture_output=True, text=True,
                          timeout=60)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def hb_fields(boot, t, tamper="clear", state="IDLE"):
    return [f"time={t}", f"period={PERIOD}", f"boot_count={boot}",
            f"uptime={t - T0 + 100}", f"state={state}", f"tamper={tamper}",
            "session_active=0", "spool_depth=0", "version=0.1.0",
            "binary_digest=ab", "config_digest=cd", "chain_head=-"]


class Fleet:
    def __init__(self, tmp):
        self.tmp = tmp
        self.inv = os.path.join(tmp, "inventory")
        os.mkdir(self.inv)
        self.specs = []
        self.keys = {}

    def key(self, shim, listed=True):
        if shim not in self.keys:
            path = os.path.join(self.tmp, f"{shim}.key")
            r = shimctl("keygen", "identity", "--out", path)
            assert r.returncode == 0, r.stderr
            if listed:
                r = shimctl("identity", "pub", "--key", path, "--out",
                            os.path.join(self.inv, f"{shim}.pub"))
                assert r.returncode == 0, r.stderr
            self.keys[shim] = path
        return self.keys[shim]

    def event(self, key, shim, seq, t, name, fields):
        self.specs.append("\t".join([key, shim, str(seq), str(t), name,
                                     *fields]))

    def beats(self, shim, seq, boot, start, end, key=None):
        t = start
        while t <= end:
            self.event(key or self.key(shim), shim, seq, t, "heartbeat",
                       hb_fields(boot, t))
            seq += 1
            t += PERIOD
        return seq

    def messages(self):
        out = subprocess.run([HBSIGN], input="\n".join(self.specs) + "\n",
                             capture_output=True, text=True, check=True)
        return [m for m in out.stdout.split("\0") if m]


def build_fleet(f):
    f.beats("ok-1", 1, 5, T0, NOW)
    f.beats("missing-1", 1, 2, T0, NOW - 4 * PERIOD)
    f.key("never-1")
    s = f.beats("offline-1", 1, 3, T0, T0 + 10 * PERIOD)
    f.event(f.key("offline-1"), "offline-1", s, T0 + 10 * PERIOD + 5,
            "shutting_down", ["reason=power_fail", *hb_fields(3, T0 + 605)])
    s = f.beats("tamper-1", 1, 1, T0, NOW)
    f.event("-", "tamper-1", s, NOW - 10, "tamper",
            ["event=case_opened", "detail=file /run/shim/case-open exists"])
    s = f.beats("reset-1", 1, 1, T0, T0 + 5 * PERIOD)
    f.event("-", "reset-1", s, T0 + 5 * PERIOD + 1, "tamper",
            ["event=case_opened", "detail=x"])
    f.event(f.key("reset-1"), "reset-1", s + 1, T0 + 6 * PERIOD,
            "tamper_reset", ["method=token", "by=soc-duty",
                             "reason=INC-4711\\nseals replaced",
                             "cleared=case_opened", "resets=1"])
    f.beats("reset-1", s + 2, 1, T0 + 7 * PERIOD, NOW)
    rogue = f.key("rogue", listed=False)
    s = f.beats("forged-1", 1, 1, T0, NOW - PERIOD)
    f.event(rogue, "forged-1", s, NOW, "heartbeat", hb_fields(1, NOW))
    f.beats("replay-1", 1, 1, T0, NOW)
    f.beats("reboot-1", f.beats("reboot-1", 1, 7, T0, T0 + 10 * PERIOD), 8,
            T0 + 12 * PERIOD, NOW)
    f.beats("altered-1", 1, 1, T0, NOW)
    f.beats("stranger-1", 1, 1, NOW - PERIOD, NOW, key=rogue)


def start_rsyslog(tmp, out):
    port = free_port()
    work = os.path.join(tmp, "rsyslog-work")
    os.mkdir(work)
    conf = os.path.join(tmp, "rsyslog.conf")
    with open(conf, "w") as fh:
        fh.write(f"""
global(workDirectory="{work}" maxMessageSize="64k"
       processInternalMessages="on")
module(load="imtcp")
template(name="raw" type="string" string="%rawmsg%\\n")
ruleset(name="recv") {{
  action(type="omfile" file="{out}" template="raw")
  stop
}}
input(type="imtcp" port="{port}" address="127.0.0.1" ruleset="recv")
""")
    proc = subprocess.Popen(["rsyslogd", "-n", "-f", conf, "-i",
                             os.path.join(tmp, "rsyslog.pid")],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, close_fds=True)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    return None, port


def main():
    if shutil.which("rsyslogd") is None:
        print("rsyslogd not installed: skipped")
        print("0 passed, 0 failed")
        return 0
    tmp = tempfile.mkdtemp(prefix="shim-monitor-")
    out = os.path.join(tmp, "received.log")
    proc = None
    try:
        fleet = Fleet(tmp)
        build_fleet(fleet)
        msgs = fleet.messages()
        # A replay: an old heartbeat of replay-1 sent again, byte for byte.
        old = next(m for m in msgs if 'shim_id="replay-1" seq="3"' in m)
        msgs.append(old)
        # An altered one: a good heartbeat with one value changed on the way.
        last = max(i for i, m in enumerate(msgs)
                   if 'shim_id="altered-1"' in m)
        msgs[last] = msgs[last].replace('state="IDLE"', 'state="OPEN"')
        check("fleet messages made", len(msgs) > 200, str(len(msgs)))

        proc, port = start_rsyslog(tmp, out)
        check("rsyslogd listening", proc is not None)
        if proc is None:
            return 1
        with socket.create_connection(("127.0.0.1", port)) as s:
            for m in msgs:
                b = m.encode()
                s.sendall(f"{len(b)} ".encode() + b)
        deadline = time.time() + 20
        lines = []
        while time.time() < deadline:
            if os.path.exists(out):
                with open(out) as fh:
                    lines = fh.read().splitlines()
                if len(lines) >= len(msgs):
                    break
            time.sleep(0.2)
        check("rsyslog wrote every message, one per line",
              len(lines) == len(msgs), f"{len(lines)} of {len(msgs)}")
        check("rsyslog escaped the line feed as #012",
              any("INC-4711#012seals" in l for l in lines))

        r = shimctl("monitor", "--inventory", fleet.inv, "--log", out,
                    "--now", str(NOW), "--json")
        check("monitor exits 1 on alarms", r.returncode == 1,
              f"{r.returncode} {r.stderr}")
        rep = json.loads(r.stdout)
        got = {s["shim_id"]: s for s in rep["shims"]}
        want = {
            "ok-1": "OK", "missing-1": "MISSING", "never-1": "MISSING",
            "offline-1": "OFFLINE-EXPECTED", "tamper-1": "TAMPERED",
            "reset-1": "OK", "forged-1": "BAD-SIGNATURE",
            "replay-1": "REPLAYED", "reboot-1": "REBOOTED-UNEXPECTEDLY",
            "altered-1": "BAD-SIGNATURE", "stranger-1": "BAD-SIGNATURE",
        }
        for shim, verdict in want.items():
            v = got.get(shim, {}).get("verdict")
            check(f"{shim} is {verdict}", v == verdict, str(got.get(shim)))
        check("reset-1 names who reset it",
              "soc-duty" in got["reset-1"]["note"], got["reset-1"]["note"])
        check("ok-1 counted every heartbeat",
              got["ok-1"]["heartbeats"] == 31, str(got["ok-1"]))
        check("no malformed lines", rep["malformed"] == 0, str(rep))
        check("alarm count", rep["alarms"] == 8, str(rep["alarms"]))

        r = shimctl("monitor", "--inventory", fleet.inv, "--log", out,
                    "--now", str(NOW))
        check("table for people", "REBOOTED-UNEXPECTEDLY" in r.stdout and
              "SHIM" in r.stdout.splitlines()[0], r.stdout[:200])

        # Only the healthy shims, judged when they were all alive: exit 0.
        quiet = os.path.join(tmp, "quiet.log")
        with open(quiet, "w") as fh:
            fh.writelines(l + "\n" for l in lines
                          if 'shim_id="ok-1"' in l or 'shim_id="reset-1"' in l)
        inv2 = os.path.join(tmp, "inv2")
        os.mkdir(inv2)
        for s in ("ok-1", "reset-1"):
            shutil.copy(os.path.join(fleet.inv, f"{s}.pub"), inv2)
        r = shimctl("monitor", "--inventory", inv2, "--log", quiet,
                    "--now", str(NOW))
        check("a healthy fleet exits 0", r.returncode == 0, r.stdout)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
