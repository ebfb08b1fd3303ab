"""A scripted walk-through of one whole shim session, for someone with one
terminal: starts shimd and the pump emulator on pseudo-terminals, plays the
technician (a wrong code, the right code, the pump's service console, a
binary firmware chunk), ends the session, and prints what each side saw.

Usage: python3 scripts/walkthrough.py BUILD_DIR
"""

import os
import re
import struct
import subprocess
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
os.environ["SHIM_BUILD"] = BUILD
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import shimtest as st  # noqa: E402

TECH = "alice@example.org"


def show(who, data):
    text = data.decode("latin-1").replace("\r\n", "\n")
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\xff]",
                  lambda m: "<%02x>" % ord(m.group(0)), text)
    for line in text.split("\n"):
        print("  %-10s| %s" % (who, line))


def say(msg):
    print("\n== " + msg)


def main():
    s = st.Shim(techs={TECH: "JBSWY3DPEHPK3PXP"},
                session={"reconnect_grace": 0, "idle_timeout": 900},
                name="shim-walkthrough")
    emu = None
    try:
        s.start()
        emu = subprocess.Popen([st.EMULATOR, s.dev_path],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        s.wait_log("device side opened")
        say("shimd is running; the pump emulator holds the device side.\n"
            "   The technician opens the serial line and sees the prompt:")
        t = st.Pty(s.tech_path)
        show("technician", t.read_until(st.PROMPT, 5))

        say("A wrong code (the answer does not say what was wrong):")
        t.write(("%s 000000\r" % TECH).encode())
        show("technician", t.read_until(re.compile(rb"Auth fail[^\n]*\n"), 5))
        show("technician", t.read_until(st.PROMPT, 5))

        epoch = st.safe_epoch()
        code = st.totp(s.techs[TECH], epoch)
        say("The right code, as the authenticator app shows it (%s):" % code)
        t.write(("%s %s\r" % (TECH, code)).encode())
        out = t.read_until(re.compile(rb"session \S+\r\n"), 5)
        show("technician", out)
        sid = re.search(rb"session (\S+)\r\n", out).group(1).decode()

        say("Now every byte is relayed (and recorded). The pump's console:")
        for line, until in ((b"\r", b"Service PIN: "),
                            (b"4711\r", b"svc> "),
                            (b"status\r", b"svc> "),
                            (b"set rate 42.0\r", b"svc> "),
                            (b"history\r", b"svc> ")):
            t.write(line)
            show("technician", t.read_until(until, 5))

        payload = bytes(range(256))
        frame = (bytes([0x02, 7]) + struct.pack(">H", len(payload)) + payload +
                 struct.pack(">I", zlib.crc32(payload) & 0xffffffff))
        say("A binary firmware chunk (all 256 byte values) goes through "
            "unchanged; the pump ACKs it:")
        t.write(frame)
        show("technician", t.read_exact(2, 5))
        t.write(b"fwinfo\r")
        show("technician", t.read_until(b"svc> ", 5))

        say("shimctl status while the session is open:")
        r = s.ctl("status")
        for line in r.stdout.splitlines():
            print("  shimctl   | " + line)

        say("The technician hangs up: the session ends and is sealed.")
        t.close()
        s.wait_log("ended: technician_disconnect", 5)
        for line in s.log().splitlines():
            if "session" in line or "auth" in line or "state" in line:
                print("  shimd log | " + line.split(" shimd ", 1)[-1])

        say("The recording, as the device side saw it (direction in) and "
            "answered (out):")
        r = s.ctl("session", "export", sid, "--format", "text")
        if r.returncode == 0:
            for line in r.stdout.splitlines()[:60]:
                print("  recording | " + line)
        else:
            print("  (shimctl session export is not available in this build: "
                  "%s)" % (r.stderr.strip() or r.stdout.strip()))
        if os.environ.get("SHIM_KEEP"):
            print("\nWalk-through complete. Storage kept in %s" % s.dir)
        else:
            print("\nWalk-through complete. (SHIM_KEEP=1 keeps the "
                  "storage and recording.)")
        return 0
    finally:
        if emu is not None:
            emu.terminate()
            emu.wait(5)
        s.cleanup()


if __name__ == "__main__":
    sys.exit(main())
