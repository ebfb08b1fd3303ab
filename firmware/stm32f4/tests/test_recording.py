#!/usr/bin/env python3
"""Recordings made by the STM32 firmware under QEMU, checked on the host
with shimctl: a session sealed to a central recording key verifies as
intact against the firmware's identity, decrypts to exactly the bytes that
crossed, and a flipped byte is caught; a session cut by a power loss
(QEMU killed) is sealed at the next boot as power_loss_recovered, verifies
intact and is reported on the event line.

    test_recording.py [SRC [BUILD]]      (defaults: the tree, SRC/build)

Needs build-fw/firmware.elf (make firmware), BUILD/shimctl, qemu-system-arm
and oathtool. Exits 0 when every check passed.
"""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tty

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                      os.path.join(HERE, "..", "..", ".."))
BUILD = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else
                        os.path.join(SRC, "build"))
SHIMCTL = os.path.join(BUILD, "shimctl")
LAUNCHER = os.path.join(SRC, "scripts", "run-firmware.sh")
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
TECH = "alice@example.org"
PROMPT = b"\r\nShim MFA gate. Authenticate as: <technician_id> <totp_code>\r\n> "


class Target:
    def __init__(self, root, record_key=None):
        self.root = root
        self.state = os.path.join(root, "state")
        self.tech = os.path.join(root, "tech")
        self.dev = os.path.join(root, "dev")
        self.events = os.path.join(root, "events.log")
        self.config = os.path.join(root, "config.yaml")
        lines = ["shim:", "  id: fwrec",
                 "serial:",
                 "  technician_side_path: pty:%s" % self.tech,
                 "  device_side_path: pty:%s" % self.dev,
                 "storage:", "  root: %s" % os.path.join(root, "storage"),
                 "session:", "  idle_timeout: 2",
                 "siem:", "  transport: noop"]
        if record_key:
            lines += ["recording:", "  public_key: %s" % record_key]
        lines += ["technicians:", "  - technician_id: %s" % TECH,
                  "    totp_secret: %s" % SECRET]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.config, 0o600)
        self.proc = None

    def start(self):
        self.log = open(os.path.join(self.root, "launcher.log"), "ab")
        self.mark = self.log.tell()
        self.proc = subprocess.Popen(
            [LAUNCHER, "--config", self.config, "--tech", self.tech,
             "--dev", self.dev, "--state", self.state,
             "--events", self.events],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
            env=dict(os.environ, SHIM_BUILD=BUILD), start_new_session=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("launcher exited: %s" % self.log_text())
            if (os.path.lexists(self.tech) and os.path.lexists(self.dev)
                    and "shim-fw: ready" in self.log_text(self.mark)):
                return
            time.sleep(0.05)
        raise TimeoutError("firmware not ready: %s" % self.log_text())

    def log_text(self, since=0):
        with open(os.path.join(self.root, "launcher.log"), "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)
        self.proc = None

    def power_cut(self):
        """SIGKILL to QEMU: no footer, no checkpoint cleared."""
        qemu = [int(p) for p in subprocess.run(
            ["pgrep", "-s", str(self.proc.pid), "qemu-system-arm"],
            capture_output=True, text=True).stdout.split()]
        assert qemu, "no QEMU in the launcher's session"
        for p in qemu:
            os.kill(p, signal.SIGKILL)
        self.proc.wait(15)
        self.proc = None

    def recordings(self, ext=".rec"):
        d = os.path.join(self.state, "sessions")
        return sorted(os.path.join(d, n) for n in os.listdir(d)
                      if n.endswith(ext))


def opn(path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd


def read_for(fd, seconds):
    out, end = b"", time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            out += os.read(fd, 4096)
    return out


def read_until(fd, want, seconds):
    out, end = b"", time.time() + seconds
    while want not in out:
        if time.time() > end:
            raise TimeoutError("waited for %r, got %r" % (want, out))
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            out += os.read(fd, 4096)
    return out


def login(t):
    deadline = time.time() + 8
    while True:
        os.write(t, b"\r")
        try:
            read_until(t, PROMPT, 1.5)
            break
        except TimeoutError:
            if time.time() > deadline:
                raise
    code = subprocess.check_output(["oathtool", "--totp", "-b", SECRET])
    os.write(t, TECH.encode() + b" " + code.strip() + b"\r")
    out = read_until(t, b"; session ", 5)
    while not out.split(b"; session ", 1)[1].count(b"\r\n"):
        out += read_until(t, b"\r\n", 5)
    return out


def verify(path, *extra):
    return subprocess.run([SHIMCTL, "session", "verify", path] + list(extra),
                          capture_output=True, text=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def test_central_key_decrypts_exactly(root):
    keys = os.path.join(root, "keys")
    os.makedirs(keys)
    subprocess.run([SHIMCTL, "keygen", "recording", "--out",
                    os.path.join(keys, "rec.key")], check=True,
                   capture_output=True)
    fw = Target(root, record_key=os.path.join(keys, "rec.pub"))
    fw.start()
    try:
        t, d = opn(fw.tech), opn(fw.dev)
        time.sleep(1.2)
        login(t)
        sent_in = bytes(range(256)) * 12          # 3072 B: two batches
        os.write(t, sent_in)
        got = read_for(d, 1.5)
        check(got == sent_in, "device got %d of %d bytes" %
              (len(got), len(sent_in)))
        sent_out = b"device output \x00\xff\r\n" * 20
        os.write(d, sent_out)
        got = read_until(t, b"ended: idle_timeout", 6)
        check(got.startswith(sent_out), "technician got %r" % got[:40])
        os.close(t)
        os.close(d)
    finally:
        fw.stop()
    recs = fw.recordings()
    check(len(recs) == 1, "recordings: %r" % recs)
    ident = os.path.join(fw.state, "identity.pub.pem")
    r = verify(recs[0], "--identity", ident, "--key",
               os.path.join(keys, "rec.key"))
    check(r.returncode == 0 and "verdict: intact" in r.stdout,
          "verify: %d %s %s" % (r.returncode, r.stdout, r.stderr))
    check("bytes in %d, out %d" % (len(sent_in), len(sent_out)) in r.stdout,
          "counts: %s" % r.stdout)
    ex = subprocess.run([SHIMCTL, "session", "export", recs[0], "--format",
                         "jsonl", "--key", os.path.join(keys, "rec.key"),
                         "--identity", ident],
                        capture_output=True, text=True)
    check(ex.returncode == 0, "export: %s" % ex.stderr)
    rows = [json.loads(x) for x in ex.stdout.splitlines() if x.strip()]
    data = {"in": b"", "out": b""}
    for row in rows:
        if row.get("type") == "traffic" or "data_hex" in row:
            data[row["direction"]] += bytes.fromhex(row["data_hex"])
    check(data["in"] == sent_in, "recorded in: %d bytes" % len(data["in"]))
    check(data["out"] == sent_out, "recorded out: %d bytes" %
          len(data["out"]))
    footer = [x for x in rows if x.get("type") == "session_footer"
              or "terminal_reason" in x]
    check(footer and footer[-1]["terminal_reason"] == "idle_timeout",
          "footer: %r" % footer)

    # a flipped byte in the middle of the traffic is caught
    bad = os.path.join(root, "flipped.rec")
    with open(recs[0], "rb") as f:
        blob = bytearray(f.read())
    blob[len(blob) // 2] ^= 0x01
    with open(bad, "wb") as f:
        f.write(blob)
    r = verify(bad, "--identity", ident)
    check(r.returncode != 0 and "intact" not in r.stdout.split("verdict:")[-1],
          "a flipped byte verified: %s" % r.stdout)

    # signed by this unit: another identity is refused
    other = os.path.join(keys, "other.pub")
    subprocess.run([SHIMCTL, "keygen", "identity", "--out",
                    os.path.join(keys, "other.key")], check=True,
                   capture_output=True)
    if not os.path.exists(other):
        other = os.path.join(keys, "other.key")
    r = verify(recs[0], "--identity", other)
    check(r.returncode != 0, "verified under another identity: %s" %
          r.stdout)


def test_power_cut_recovered(root):
    fw = Target(root)
    fw.start()
    try:
        t, d = opn(fw.tech), opn(fw.dev)
        time.sleep(1.2)
        session = login(t).split(b"; session ")[1].split(b"\r")[0].decode()
        for _ in range(4):
            os.write(t, b"y" * 700)
            time.sleep(0.15)
        check(len(read_for(d, 1.0)) == 2800, "relay before the cut")
        time.sleep(0.5)   # past the recorder's batch flush
        os.close(t)
        os.close(d)
        fw.power_cut()
        check(fw.recordings(".part"), "no open recording after the cut")
        fw.start()
    finally:
        fw.stop()
    recs = fw.recordings()
    check([os.path.basename(x) for x in recs] == [session + ".rec"],
          "recordings after recovery: %r" % recs)
    check(not fw.recordings(".part"), "a .part is left")
    r = verify(recs[0], "--identity",
               os.path.join(fw.state, "identity.pub.pem"))
    check(r.returncode == 0 and "power_loss_recovered" in r.stdout and
          "verdict: intact" in r.stdout, "verify: %s" % r.stdout)
    check("bytes in 2800" in r.stdout, "bytes: %s" % r.stdout)
    with open(fw.events, encoding="utf-8", errors="replace") as f:
        ev = [x for x in f if " session_end " in x and
              'reason="power_loss_recovered"' in x and session in x]
    check(ev, "no session_end power_loss_recovered event")


def main():
    for need in (SHIMCTL, LAUNCHER,
                 os.path.join(SRC, "build-fw", "firmware.elf")):
        if not os.path.exists(need):
            print("missing: %s" % need)
            return 1
    failed = 0
    for test in (test_central_key_decrypts_exactly, test_power_cut_recovered):
        root = tempfile.mkdtemp(prefix="fwrec-")
        t0 = time.time()
        try:
            test(root)
            print("ok   %-40s %.1fs" % (test.__name__, time.time() - t0))
            shutil.rmtree(root, ignore_errors=True)
        except Exception as e:  # noqa: BLE001
            failed += 1
            print("FAIL %-40s %s (kept %s)" % (test.__name__, e, root))
    print("%d passed, %d failed" % (2 - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
