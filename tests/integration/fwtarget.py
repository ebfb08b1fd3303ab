"""The STM32F405 firmware under QEMU (netduinoplus2) as a second target of
the black-box tests, with the interface of shimtest.Shim where the gate
tests need it.

scripts/run-firmware.sh starts QEMU with the technician USART (USART1) and
the device USART (USART2) on host pseudo-terminals, links to them at the
paths given (like shimd's pty: endpoints), keeps the firmware's state in a
host directory (semihosting files) and writes the events that leave on
USART3 (RFC 5424 text) to a file. It stops on SIGTERM.

What differs from shimd, and how the helpers deal with it:
  - QEMU's USART shows no hang-up to the firmware: a technician counts as
    connected at the first byte, so connect_tech() sends CR when no
    prompt comes by itself (as the connection byte it is dropped; as an
    empty line it asks for the prompt again). QEMU also drops what the
    firmware writes while nobody holds the link's far end, and notices a
    new opener within about a second: the prompt written at boot is lost.
  - There is no admin socket and no shimctl end-session: sessions end by
    session.idle_timeout (the tests configure a short one).
  - There is no log file of the firmware's own; the launcher's and
    QEMU's output go to launcher.log, the events to events.log.
"""

import glob
import os
import re
import shutil
import signal
import subprocess
import time

import shimtest as st

RUN_FIRMWARE = os.path.normpath(os.path.join(st.SRC, "scripts",
                                             "run-firmware.sh"))
QEMU = "qemu-system-arm"


def firmware_image():
    """The firmware ELF: $SHIM_FIRMWARE, else the first one found of
    BUILD/firmware/**.elf, BUILD/firmware.elf and SRC/build-fw/firmware.elf
    (firmware/stm32f4/Makefile's default); None when there is none."""
    env = os.environ.get("SHIM_FIRMWARE")
    if env:
        return env if os.path.isfile(env) else None
    found = sorted(glob.glob(os.path.join(st.BUILD, "firmware", "**", "*.elf"),
                             recursive=True))
    found += [os.path.join(st.BUILD, "firmware.elf"),
              os.path.join(st.SRC, "build-fw", "firmware.elf")]
    for f in found:
        if os.path.isfile(f):
            return os.path.normpath(f)
    return None


def missing():
    """What the firmware target lacks here, as a list of reasons."""
    why = []
    if shutil.which(QEMU) is None:
        why.append("%s is not installed (scripts/install-deps.sh)" % QEMU)
    if not os.access(RUN_FIRMWARE, os.X_OK):
        why.append("%s is missing or not executable" % RUN_FIRMWARE)
    if firmware_image() is None:
        why.append("no firmware image (SHIM_FIRMWARE, an ELF under "
                   "%s/firmware/, or build-fw/firmware.elf): build it "
                   "first" % os.path.normpath(st.BUILD))
    return why


SKIP_ENV = "SHIM_FIRMWARE_SKIP_OK"
SKIP_CODE = 77  # CTest's SKIP_RETURN_CODE for this test


def need_firmware():
    """Exits unless the firmware can run here: failing, or skipping with
    code 77 when SHIM_FIRMWARE_SKIP_OK=1 allows it and only QEMU or the
    image is missing."""
    why = missing()
    st.need_binaries(st.SHIMCTL)
    if not why:
        return
    only_optional = all(w.startswith(QEMU) or w.startswith("no firmware")
                        for w in why)
    if os.environ.get(SKIP_ENV) == "1" and only_optional:
        print("SKIP: the firmware target cannot run: %s (%s=1 allows the "
              "skip)" % ("; ".join(why), SKIP_ENV))
        raise SystemExit(SKIP_CODE)
    for w in why:
        print("missing: %s" % w)
    print("0 passed, 1 failed")
    raise SystemExit(1)


# ---- RFC 5424 as it leaves USART3 -------------------------------------------

RFC5424_HEAD = re.compile(r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")
SD_PARAM = re.compile(r'(\S+?)="((?:[^"\\]|\\.)*)"')
SD_UNESCAPE = re.compile(r'\\(["\\\]])')


def _sd_end(text):
    """The length of the structured data at the start of text ("-" or
    one or more [..] elements, with \\-escapes in values), or -1."""
    if text.startswith("-"):
        return 1
    i, quoted = 0, False
    while i < len(text) and text[i] == "[":
        i += 1
        while i < len(text):
            c = text[i]
            if quoted and c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "]" and not quoted:
                break
            i += 1
        if i >= len(text):
            return -1
        i += 1
    return i if i > 0 else -1


def parse_rfc5424(line):
    """One message as a dict in the audit log's shape: event (MSGID),
    severity, time, host, app, procid, the SD-ID as sd_id, the SD
    parameters as keys (shim_id, seq, ...) and msg; None when the line is
    not RFC 5424. An octet-counting prefix ("LEN ") is skipped."""
    line = line.rstrip("\r\n")
    m = re.match(r"^(\d+) (<.*)$", line)
    if m:
        line = m.group(2)
    m = RFC5424_HEAD.match(line)
    if not m:
        return None
    rest = line[m.end():]
    n = _sd_end(rest)
    if n < 0 or (n < len(rest) and rest[n] != " "):
        return None
    sd, msg = rest[:n], rest[n + 1:]
    pri = int(m.group(1))
    ev = {"event": m.group(6), "facility": pri >> 3, "severity": pri & 7,
          "time": m.group(2), "host": m.group(3), "app": m.group(4),
          "procid": m.group(5), "msg": msg}
    if sd != "-":
        ev["sd_id"] = sd[1:].split(" ", 1)[0].split("]", 1)[0]
        for k, v in SD_PARAM.findall(sd):
            ev[k] = SD_UNESCAPE.sub(r"\1", v)
    return ev


# ---- the target --------------------------------------------------------------

def _children(pid):
    """PIDs of pid's living descendants (from /proc)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for k in kids.get(todo.pop(), []):
            out.append(k)
            todo.append(k)
    return out


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def group_alive(pgid):
    """PIDs of the living (non-zombie) members of process group pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(d))
    return out


class Firmware(st.Shim):
    """The firmware on QEMU through scripts/run-firmware.sh, configured by
    the same YAML as shimd (Shim writes it); the state directory survives
    stop() and start()."""

    BOOT_TIMEOUT = 30.0

    def __init__(self, **kw):
        kw.setdefault("name", "fwtest")
        super().__init__(**kw)
        self.state = os.path.join(self.dir, "state")
        self.events_path = os.path.join(self.dir, "events.log")
        self.log_path = os.path.join(self.dir, "launcher.log")
        self.pgid = None
        self.started = []  # launcher and QEMU PIDs of every start

    def start(self, wait=True, args=None, env=None, preexec_fn=None):
        """Starts the launcher in a process group of its own (so that no
        QEMU can be left behind unnoticed)."""
        os.makedirs(self.state, exist_ok=True)
        self.logf = open(self.log_path, "ab")
        self.events_mark = self._events_size()
        e = dict(os.environ, **(env or {}))
        img = firmware_image()
        if img:
            e.setdefault("SHIM_FIRMWARE", img)
        e.setdefault("SHIM_BUILD", st.BUILD)
        self.proc = subprocess.Popen(
            [RUN_FIRMWARE, "--config", self.config, "--tech", self.tech_path,
             "--dev", self.dev_path, "--state", self.state,
             "--events", self.events_path] + (args or []),
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            close_fds=True, env=e, start_new_session=True,
            preexec_fn=preexec_fn)
        self.pgid = self.proc.pid
        if wait:
            self.wait_ready()
        return self

    def _events_size(self):
        try:
            return os.path.getsize(self.events_path)
        except OSError:
            return 0

    def wait_ready(self, timeout=None):
        """Both links are there and the firmware said it booted (its boot
        event); QEMU drops what a USART receives before the firmware
        enables it, so nothing may be typed earlier."""
        deadline = time.time() + (timeout or self.BOOT_TIMEOUT)
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("run-firmware.sh exited with %d:\n%s" %
                                   (self.proc.returncode, self.log()))
            if (os.path.lexists(self.tech_path)
                    and os.path.lexists(self.dev_path)
                    and any(e.get("event") == "boot"
                            for e in self.events(since_start=True))):
                self.started += [self.proc.pid] + _children(self.proc.pid)
                return
            time.sleep(0.05)
        raise TimeoutError("firmware not ready (links %s, %s; boot event %s)"
                           ":\n%s" % (os.path.lexists(self.tech_path),
                                      os.path.lexists(self.dev_path),
                                      bool(self.events(since_start=True)),
                                      self.log()[-3000:]))

    def stop(self, timeout=15.0):
        """SIGTERM to the launcher and wait; returns its exit status. What
        is left of its process group afterwards is killed (and reported by
        leftovers())."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.leftover = self.leftovers()
        if self.leftover:
            try:
                os.killpg(self.pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for p in self.leftover:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if not self.logf.closed:
            self.logf.close()
        return self.proc.returncode

    def leftovers(self, settle=2.0):
        """Processes of this target still alive: members of the launcher's
        process group and any PID seen at start (QEMU), after waiting up
        to settle seconds for them to go."""
        deadline = time.time() + settle
        while True:
            left = set(group_alive(self.pgid)) if self.pgid else set()
            left |= {p for p in self.started if pid_alive(p)}
            if not left or time.time() > deadline:
                return sorted(left)
            time.sleep(0.05)

    def cleanup(self):
        self.stop()
        if os.environ.get("SHIM_KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- what shimd has and the firmware has not

    def ctl(self, *args, check=False):
        raise NotImplementedError("the firmware has no admin socket")

    def admin(self, line):
        raise NotImplementedError("the firmware has no admin socket")

    # -- technician and device

    def connect_tech(self, timeout=8.0):
        """Opens the technician's end and waits for the prompt, sending CR
        when it does not come by itself (see the module's comment)."""
        t = st.Pty(self.tech_path)
        try:
            t.read_until(st.PROMPT, 0.5)
            return t
        except TimeoutError:
            pass
        deadline = time.time() + timeout
        while True:
            t.write(b"\r")
            try:
                t.read_until(st.PROMPT, 1.5)
                return t
            except TimeoutError:
                if time.time() > deadline:
                    raise

    def connect_dev(self, count=1):
        return st.Pty(self.dev_path)

    # -- events from USART3

    def events(self, since_start=False):
        """The events written to the USART3 file so far, as dicts (see
        parse_rfc5424); since_start: only those of the latest start."""
        try:
            with open(self.events_path, "rb") as f:
                if since_start:
                    f.seek(self.events_mark)
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return []
        out = []
        for line in text.split("\n"):
            ev = parse_rfc5424(line)
            if ev is not None:
                out.append(ev)
        return out

    def raw_events(self):
        try:
            with open(self.events_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
