"""Shared helpers for the integration tests (Python 3 stdlib only).

They drive the BUILT binaries as a user would: a temporary storage
directory, a config file, shimd started on pseudo-terminals, codes from
oathtool (an independent TOTP implementation), and pty reads that wait for
what a technician or a device would see, with time-outs.

Environment: SHIM_BUILD (build directory), SHIM_SRC (source directory).
"""

import errno
import fcntl
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
import traceback
import tty

BUILD = os.environ.get("SHIM_BUILD") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build")
SRC = os.environ.get("SHIM_SRC") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
SHIMD = os.path.join(BUILD, "shimd")
SHIMCTL = os.path.join(BUILD, "shimctl")
EMULATOR = os.path.join(BUILD, "pump-emulator")

PROMPT = b"\r\nShim MFA gate. Authenticate as: <technician_id> <totp_code>\r\n> "

# Demo and test technicians (base32 secrets).
TECHS = {
    "alice@example.org": "JBSWY3DPEHPK3PXP",
    "bob@example.org": "JFAVAU2GMUKDOMRX",
    "carol@example.org": "GEZDGNBVGY3TQOJQ",
    "dave@example.org": "MFRGGZDFMZTWQ2LK",
}


# ---- TOTP codes ------------------------------------------------------------

def totp(secret, epoch=None, steps=0, period=30, digits=6):
    """The code oathtool computes at epoch (default now) + steps periods."""
    if epoch is None:
        epoch = int(time.time())
    t = int(epoch) + steps * period
    out = subprocess.run(
        ["oathtool", "--totp", "-b", "-d", str(digits), "-s", "%ds" % period,
         "-N", "@%d" % t, secret],
        check=True, capture_output=True, text=True)
    return out.stdout.strip()


def safe_epoch(margin=3, period=30):
    """Now, after waiting out the last seconds of a step, so that a code
    computed now is still current when it is typed."""
    now = time.time()
    if period - (now % period) < margin:
        time.sleep(period - (now % period) + 0.2)
    return int(time.time())


# ---- pseudo-terminal ends ----------------------------------------------------

class Pty:
    """One program's end of a pty link made by shimd (a technician's
    terminal or a device)."""

    def __init__(self, path, timeout=5.0):
        deadline = time.time() + timeout
        while True:
            try:
                self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.02)
        # TCSANOW: TCSAFLUSH would drop what shimd already sent
        tty.setraw(self.fd, termios.TCSANOW)
        self.path = path
        self.buf = b""

    def write(self, data, timeout=10.0):
        view = memoryview(bytes(data))
        deadline = time.time() + timeout
        while view:
            try:
                n = os.write(self.fd, view)
                view = view[n:]
            except BlockingIOError:
                if time.time() > deadline:
                    raise TimeoutError("write blocked on %s" % self.path)
                select.select([], [self.fd], [], 0.05)

    def _fill(self, timeout):
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return True
        except OSError as e:
            if e.errno == errno.EIO:
                raise EOFError("pty %s hung up" % self.path)
            raise
        if not chunk:
            raise EOFError("pty %s closed" % self.path)
        self.buf += chunk
        return True

    def read_until(self, what, timeout=5.0):
        """Reads until what (bytes or a compiled regex) appears; returns
        everything up to and including it, keeping the rest."""
        deadline = time.time() + timeout
        while True:
            if isinstance(what, bytes):
                i = self.buf.find(what)
                if i >= 0:
                    end = i + len(what)
                    out, self.buf = self.buf[:end], self.buf[end:]
                    return out
            else:
                m = what.search(self.buf)
                if m:
                    out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                    return out
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("waiting for %r on %s; got %r" %
                                   (what, self.path, self.buf[-300:]))
            self._fill(min(left, 0.2))

    def read_exact(self, n, timeout=30.0):
        deadline = time.time() + timeout
        while len(self.buf) < n:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("%d of %d bytes on %s" %
                                   (len(self.buf), n, self.path))
            self._fill(min(left, 0.2))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_for(self, seconds):
        """Everything that arrives within seconds (stops early on hang-up)."""
        deadline = time.time() + seconds
        try:
            while time.time() < deadline:
                self._fill(deadline - time.time())
        except EOFError:
            pass
        out, self.buf = self.buf, b""
        return out

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# ---- shimd ----------------------------------------------------------------------

def yaml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Shim:
    """A shimd on pty endpoints in a temporary directory."""

    def __init__(self, techs=None, session=None, totp_cfg=None, extra="",
                 tech_spec=None, dev_spec=None, name="shim", base=None):
        self.dir = tempfile.mkdtemp(prefix="shimtest-", dir=base)
        self.tech_path = os.path.join(self.dir, "tech")
        self.dev_path = os.path.join(self.dir, "dev")
        self.storage = os.path.join(self.dir, "storage")
        self.config = os.path.join(self.dir, "config.yaml")
        self.log_path = os.path.join(self.dir, "shimd.log")
        self.proc = None
        self.techs = dict(TECHS if techs is None else techs)
        self.period = int((totp_cfg or {}).get("period", 30))
        self.digits = int((totp_cfg or {}).get("digits", 6))
        session = dict({"idle_timeout": 900, "max_duration": 28800,
                        "reconnect_grace": 0}, **(session or {}))
        totp_cfg = dict({"period": 30, "digits": 6, "window": 1,
                         "max_failures": 5, "lockout_seconds": 300},
                        **(totp_cfg or {}))
        lines = [
            "shim:",
            "  id: %s" % yaml_str(name),
            "serial:",
            "  technician_side_path: %s" % yaml_str(
                tech_spec or "pty:" + self.tech_path),
            "  device_side_path: %s" % yaml_str(
                dev_spec or "pty:" + self.dev_path),
            "  baudrate: 9600",
            "totp:",
        ]
        lines += ["  %s: %s" % kv for kv in totp_cfg.items()]
        lines += ["storage:", "  root: %s" % yaml_str(self.storage),
                  "session:"]
        lines += ["  %s: %s" % kv for kv in session.items()]
        lines += ["siem:", '  transport: "noop"']
        if extra:
            lines += extra.rstrip("\n").split("\n")
        lines += ["technicians:"]
        for tid, sec in self.techs.items():
            lines += ["  - technician_id: %s" % yaml_str(tid),
                      "    totp_secret: %s" % yaml_str(sec)]
        self.write_config("\n".join(lines) + "\n")

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)
        os.chmod(self.config, 0o600)

    def start(self, wait=True, args=None, env=None, preexec_fn=None):
        """Starts shimd; env (a dict) is added to the environment, and
        preexec_fn runs in the child before exec (resource limits)."""
        self.logf = open(self.log_path, "ab")
        if env and "LD_PRELOAD" in env:
            # a preloaded library (libfaketime) comes before the ASan
            # runtime of a sanitizer build: let ASan accept that
            env = dict(env)
            env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                                   ":verify_asan_link_order=0").lstrip(":")
        self.proc = subprocess.Popen(
            [SHIMD, "--config", self.config, "--log-level", "debug"] +
            (args or []),
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            close_fds=True, env=dict(os.environ, **env) if env else None,
            preexec_fn=preexec_fn)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.time() + timeout
        sock = os.path.join(self.storage, "shimd.sock")
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("shimd exited with %d:\n%s" %
                                   (self.proc.returncode, self.log()))
            if (os.path.exists(sock) and os.path.lexists(self.tech_path)
                    and os.path.lexists(self.dev_path)):
                return
            time.sleep(0.02)
        raise TimeoutError("shimd not ready:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_log(self, text, timeout=5.0, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.log().count(text) >= count:
                return True
            time.sleep(0.05)
        raise TimeoutError("log never said %r:\n%s" % (text, self.log()[-3000:]))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def cleanup(self):
        self.stop()
        if os.environ.get("SHIM_KEEP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args, check=False):
        """Runs shimctl with this config; returns CompletedProcess."""
        r = subprocess.run([SHIMCTL, "--config", self.config] + list(args),
                           capture_output=True, text=True, timeout=20)
        if check and r.returncode != 0:
            raise RuntimeError("shimctl %s: %d %s %s" %
                               (args, r.returncode, r.stdout, r.stderr))
        return r

    def recording(self, sid):
        """The session's recording as exported JSON lines (dicts)."""
        import json
        r = self.ctl("session", "export", sid, "--format", "jsonl")
        if r.returncode != 0:
            raise RuntimeError("export %s: %d %s" % (sid, r.returncode,
                                                     r.stderr))
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def recorded(self, sid, direction):
        """All bytes recorded in one direction ("in" or "out")."""
        return b"".join(bytes.fromhex(e["data_hex"])
                        for e in self.recording(sid)
                        if e.get("type") == "traffic"
                        and e.get("direction") == direction)

    def footer(self, sid):
        return [e for e in self.recording(sid)
                if e.get("type") == "session_footer"][0]

    def admin(self, line):
        """Talks to the admin socket directly; returns the answer text."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(os.path.join(self.storage, "shimd.sock"))
        s.sendall(line.encode() + b"\n")
        out = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        s.close()
        return out.decode()

    # -- technician helpers

    def connect_tech(self, timeout=5.0):
        t = Pty(self.tech_path)
        t.read_until(PROMPT, timeout)
        return t

    def connect_dev(self, count=1):
        """Opens the device end (the count-th device connection)."""
        d = Pty(self.dev_path)
        self.wait_log("device side opened", count=count)
        return d

    def login(self, tech, tid="alice@example.org", steps=0, epoch=None):
        """Types a fresh code for tid; returns the session id."""
        code = totp(self.techs[tid], epoch=epoch, steps=steps)
        tech.write(("%s %s\r" % (tid, code)).encode())
        line = tech.read_until(re.compile(
            rb"(Authenticated as [^;]+; session (\S+)\r\n|Auth fail[^\n]*\n)"), 10)
        m = re.search(rb"Authenticated as ([^;]+); session (\S+)\r\n", line)
        if not m:
            raise AssertionError("login of %s refused: %r\n%s" %
                                 (tid, line, self.log()[-2000:]))
        return m.group(2).decode()


    # -- additions: codes of the configured period, raw answers, events

    def code(self, tid, steps=0, epoch=None):
        """tid's code at epoch (default now) + steps of this shim's period."""
        return totp(self.techs[tid], epoch=epoch, steps=steps,
                    period=self.period, digits=self.digits)

    def auth(self, tech, tid="alice@example.org", code=None, steps=0,
             epoch=None, timeout=10):
        """Types `tid code` (default: tid's code at steps) and returns the
        answer line: the one containing "Authenticated as" or beginning
        "Auth fail", up to and including its CR LF."""
        if code is None:
            code = self.code(tid, steps=steps, epoch=epoch)
        tech.write(("%s %s\r" % (tid, code)).encode())
        out = tech.read_until(AUTH_ANSWER, timeout)
        return AUTH_ANSWER.search(out).group(0)

    def wait_tech_gone(self, timeout=5.0):
        """Waits until shimd has seen the technician hang up (status no
        longer says the technician side is connected)."""
        deadline = time.time() + timeout
        while True:
            st = self.admin("status")
            m = re.search(r"^technician_side: .*\((.*)\)$", st, re.M)
            if m and m.group(1) != "connected":
                return m.group(1)
            if time.time() > deadline:
                raise TimeoutError("technician still connected:\n" + st)
            time.sleep(0.05)

    def reconnect_tech(self, timeout=5.0):
        """connect_tech after a hang-up: shimd renews the pty behind the
        link, so an open that lands on the old, hung-up pty is retried.
        What came before the prompt is kept in the result's greeting."""
        deadline = time.time() + timeout
        while True:
            t = Pty(self.tech_path, timeout)
            try:
                t.greeting = t.read_until(PROMPT,
                                          max(0.1, deadline - time.time()))
                return t
            except EOFError:
                t.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def events(self):
        """The local audit log (admin.audit_log default) as dicts."""
        import json
        try:
            with open(os.path.join(self.storage, "audit.jsonl")) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def wait_event(self, name, timeout=10.0, **match):
        """The first audit event called name whose fields include match."""
        deadline = time.time() + timeout
        while True:
            for e in self.events():
                if e.get("event") == name and all(
                        str(e.get(k)) == str(v) for k, v in match.items()):
                    return e
            if time.time() > deadline:
                raise TimeoutError("no event %s %r in %r" % (
                    name, match, [e.get("event") for e in self.events()]))
            time.sleep(0.1)

    def footer_reason(self, sid, timeout=5.0):
        """The terminal_reason of sid's footer, once it is sealed."""
        deadline = time.time() + timeout
        while True:
            try:
                return self.footer(sid)["terminal_reason"]
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)

    def session_ids(self):
        """The session IDs `shimctl session list` shows."""
        r = self.ctl("session", "list", check=True)
        return re.findall(r"\b\d{8}T\d{6}Z\S*", r.stdout)


AUTH_ANSWER = re.compile(
    rb"[^\n]*Authenticated as [^\r\n]*\r\n|Auth fail[^\r\n]*\r\n")
SESSION_ENDED = re.compile(rb"Session (\S+) ended: (\S+)\r\n")


def wait_hangup(p, timeout=5.0):
    """True when pty end p sees a hang-up within timeout (what arrives
    before it is kept in p.buf)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            p._fill(min(0.2, max(0.0, deadline - time.time())))
        except EOFError:
            return True
    return False


def ended(t, timeout=10):
    """Waits for "Session SID ended: REASON" on t; returns (sid, reason)."""
    m = SESSION_ENDED.search(t.read_until(SESSION_ENDED, timeout))
    return m.group(1).decode(), m.group(2).decode()


def fsize_limited(limit):
    """A preexec_fn for Shim.start(): files shimd writes cannot grow past
    limit bytes (writes fail with EFBIG instead of killing it), the way a
    full disk makes them fail."""
    import resource

    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


class SocatPair:
    """Two linked ptys made by socat, real ttys to shimd: shimd gets `a`,
    the test holds `b`. Ending socat makes both disappear."""

    def __init__(self, d, name="tty"):
        self.a = os.path.join(d, name + "A")
        self.b = os.path.join(d, name + "B")
        self.p = subprocess.Popen(
            ["socat", "PTY,link=%s,raw,echo=0" % self.a,
             "PTY,link=%s,raw,echo=0" % self.b],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 5
        while not (os.path.lexists(self.a) and os.path.lexists(self.b)):
            if time.time() > deadline:
                raise TimeoutError("socat did not start")
            time.sleep(0.02)

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(5)


def with_shim(fn, cls=None, **kw):
    """Starts a shim (class cls, default Shim), runs fn(shim), prints the
    tail of shimd's log when fn fails, and always cleans up."""
    s = (cls or Shim)(**kw)
    try:
        s.start()
        fn(s)
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()


# ---- a tiny runner ------------------------------------------------------------

def run(tests):
    """Runs each (name, fn); prints 'N passed, M failed'; exits non-zero
    when anything failed."""
    passed = failed = 0
    only = os.environ.get("SHIM_TEST")
    for name, fn in tests:
        if only and only not in name:
            continue
        t0 = time.time()
        try:
            fn()
            passed += 1
            print("ok   %-45s %.1fs" % (name, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %-45s %.1fs" % (name, time.time() - t0), flush=True)
            traceback.print_exc()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


def tests_of(module_globals):
    return [(n, f) for n, f in module_globals.items()
            if n.startswith("test_") and callable(f)]


def need_binaries(*paths):
    for p in paths or (SHIMD, SHIMCTL):
        if not os.access(p, os.X_OK):
            print("missing %s: build first" % p)
            print("0 passed, 1 failed")
            sys.exit(1)
    if shutil.which("oathtool") is None:
        print("oathtool is not installed (scripts/install-deps.sh)")
        print("0 passed, 1 failed")
        sys.exit(1)


# ---- the firmware target ---------------------------------------------------------

# The STM32 firmware under QEMU with Shim's interface (start, stop, restart
# on the same state, tech/dev links, events from USART3): st.Firmware and
# st.need_firmware come from fwtarget.py, loaded at first use (it builds on
# the helpers above).
def __getattr__(name):
    if name in ("Firmware", "need_firmware"):
        import fwtarget
        return getattr(fwtarget, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
