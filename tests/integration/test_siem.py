#!/usr/bin/env python3
"""SIEM transport against a real rsyslog (imtcp + gtls, client certificates
required), with a test CA made by openssl. Drives build/tests/event-sender
(events through shim_eventlog_*) and `shimctl siem test`.

Scenarios: fields arrive as RFC 5424 (and CEF); a shim whose CA does not
match the server refuses to send; a client certificate from another CA is
rejected by the server and nothing is lost (delivered after the fix);
rsyslog stopped while 1,000 events are made, then started: all arrive, no
sequence number missing, and the outage alarm fires; kill -9 of the sender
with a full spool (and again mid-drain): all delivered after restart.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("SHIM_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
SENDER = os.path.join(BUILD, "tests", "event-sender")
SHIMCTL = os.path.join(BUILD, "shimctl")
CLIENT_NAME = "shim-test-01"

PASSED = 0
FAILED = 0


def check(cond, what):
    global PASSED, FAILED
    what = what.rstrip().replace("\n", "\n       | ")
    if cond:
        PASSED += 1
        print("ok   " + what)
    else:
        FAILED += 1
        print("FAIL " + what)
    sys.stdout.flush()


# ---- certificates ---------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", name + ".key", "-out", name + ".pem", "-days", "2",
            "-subj", "/CN=" + name + " test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return os.path.join(d, name + ".pem")


def make_cert(d, ca, name, cn, server):
    eku = "serverAuth" if server else "clientAuth"
    ext = os.path.join(d, name + ".ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=%s\nsubjectAltName=DNS:%s\n" % (eku, cn))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn, cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", ext, cwd=d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


# ---- a private rsyslog ------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port):
    for tbl in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(tbl) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].split(":")[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


class Rsyslog:
    def __init__(self, d, port, ca, cert, key, peer=CLIENT_NAME, plain=False):
        self.d = d
        self.port = port
        self.proc = None
        self.out = os.path.join(d, "received.log")
        self.conf = os.path.join(d, "rsyslog.conf")
        work = os.path.join(d, "work")
        os.makedirs(work, exist_ok=True)
        if plain:
            with open(self.conf, "w") as f:
                f.write('''global(workDirectory="%s" maxMessageSize="64k" processInternalMessages="on")
module(load="imtcp")
template(name="raw" type="string" string="%%rawmsg%%\\n")
ruleset(name="in") {
  action(type="omfile" file="%s" template="raw")
  stop
}
input(type="imtcp" port="%d" ruleset="in")
''' % (work, self.out, port))
            return
        with open(self.conf, "w") as f:
            f.write('''global(workDirectory="%s" maxMessageSize="64k"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="%s"
  defaultNetstreamDriverCertFile="%s"
  defaultNetstreamDriverKeyFile="%s"
  processInternalMessages="on")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1"
  streamDriver.authMode="x509/name" permittedPeer=["%s"])
template(name="raw" type="string" string="%%rawmsg%%\\n")
ruleset(name="in") {
  action(type="omfile" file="%s" template="raw")
  stop
}
input(type="imtcp" port="%d" ruleset="in")
''' % (work, ca, cert, key, peer, self.out, port))

    def start(self):
        self.proc = subprocess.Popen(
            ["rsyslogd", "-n", "-f", self.conf, "-i", os.path.join(self.d, "rsyslog.pid")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.d, "rsyslog.err"), "ab"), close_fds=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            if listening(self.port):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("rsyslog did not start listening on %d" % self.port)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        deadline = time.time() + 5
        while listening(self.port) and time.time() < deadline:
            time.sleep(0.05)

    def lines(self):
        try:
            with open(self.out, encoding="utf-8", errors="replace") as f:
                return [l.rstrip("\n") for l in f if l.strip()]
        except FileNotFoundError:
            return []

    def wait_count(self, pred, n, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = [l for l in self.lines() if pred(l)]
            if len(got) >= n:
                return got
            time.sleep(0.1)
        return [l for l in self.lines() if pred(l)]


# ---- the shim side ----------------------------------------------------------

def write_config(path, storage, port, ca, cert, key, extra=""):
    with open(path, "w") as f:
        f.write('''shim:
  id: "%s"
serial:
  technician_side_path: "pty:%s/tech"
  device_side_path: "pty:%s/dev"
storage:
  root: "%s"
siem:
  transport: syslog-tls
  host: 127.0.0.1
  port: %d
  server_name: localhost
  ca: "%s"
  client_cert: "%s"
  client_key: "%s"
%s''' % (CLIENT_NAME, storage, storage, storage, port, ca, cert, key, extra))


def sender(cfg, *args, timeout=120):
    p = subprocess.run([SENDER, "--config", cfg] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout)
    return p


def start_sender(cfg, *args):
    return subprocess.Popen([SENDER, "--config", cfg] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_line(proc, prefix, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            return None
        if line.startswith(prefix):
            return line
    return None


def status_of(out):
    m = re.search(r"^status (.*)$", out, re.M)
    if not m:
        return {}
    st = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', m.group(1)))
    return {k: v.strip('"') for k, v in st.items()}


SD_RE = re.compile(r'^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) \[(shim@\d+) (.*)\] (.*)$')
PARAM_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse(line):
    m = SD_RE.match(line)
    if not m:
        return None
    params = [(k, re.sub(r'\\(["\\\]])', r"\1", v)) for k, v in PARAM_RE.findall(m.group(8))]
    return {"pri": int(m.group(1)), "time": m.group(2), "host": m.group(3),
            "app": m.group(4), "procid": m.group(5), "msgid": m.group(6),
            "sdid": m.group(7), "params": params, "msg": m.group(9)}


def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80:
        b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b


def verify_signed(line, d):
    """Rebuilds the canonical text from the structured data and checks the
    "sig" field (hex r||s) with openssl against identity.pub in d."""
    ev = parse(line)
    if ev is None:
        return False
    params = ev["params"]
    fields = dict(params)
    if "sig" not in fields:
        return False
    canon = ev["msgid"] + "\n" + "".join("%s=%s\n" % (k, v) for k, v in params if k != "sig")
    raw = bytes.fromhex(fields["sig"])
    body = der_int(raw[:32]) + der_int(raw[32:])
    with open(os.path.join(d, "canon.txt"), "wb") as f:
        f.write(canon.encode())
    with open(os.path.join(d, "sig.der"), "wb") as f:
        f.write(b"\x30" + bytes([len(body)]) + body)
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", os.path.join(d, "identity.pub"),
                        "-signature", os.path.join(d, "sig.der"), os.path.join(d, "canon.txt")],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return r.returncode == 0


def seqs(lines, msgid=None):
    out = []
    for l in lines:
        p = parse(l)
        if p and (msgid is None or p["msgid"] == msgid):
            out.append(int(dict(p["params"])["seq"]))
    return out


def is_msg(name):
    return lambda l: (" shimd " in l and (" %s [" % name) in l)


# ---- scenarios ----------------------------------------------------------------

def scenario_fields(t, pki, port):
    d = tempfile.mkdtemp(dir=t)
    srv = Rsyslog(d, port, pki["ca"], *pki["server"])
    srv.start()
    try:
        cfg = os.path.join(d, "shim.yaml")
        write_config(cfg, os.path.join(d, "store"), port, pki["ca"], *pki["client"],
                     extra="  enterprise_number: 99999\n")
        p = sender(cfg, "--name", "auth_fail", "--count", 3, "--severity", 4,
                   "--field", "technician=alice@example.org",
                   "--field", 'reason=bad "code" \\ [x] done',
                   "--field", "uni=caf\u00e9", "--wait-drain", 20)
        check(p.returncode == 0, "sender delivers 3 events (rc=%d %s)" % (p.returncode, p.stderr.strip()))
        got = srv.wait_count(is_msg("auth_fail"), 3, 10)
        check(len(got) == 3, "3 auth_fail messages arrive (%d)" % len(got))
        ev = parse(got[0]) if got else None
        check(ev is not None, "RFC 5424 with structured data: %r" % (got[:1],))
        if ev:
            keys = [k for k, _ in ev["params"]]
            vals = dict(ev["params"])
            check(ev["app"] == "shimd" and ev["msgid"] == "auth_fail",
                  "APP-NAME shimd, MSGID auth_fail")
            check(ev["sdid"] == "shim@99999", "SD-ID uses the configured enterprise number")
            check(keys[:2] == ["shim_id", "seq"] and keys[2:] == ["n", "technician", "reason", "uni"],
                  "SD params in order shim_id, seq, fields: %s" % keys)
            check(vals["shim_id"] == CLIENT_NAME, "shim_id value")
            check(vals["reason"] == 'bad "code" \\ [x] done', "escaped value round-trips: %r" % vals["reason"])
            check(vals["uni"] == "caf\u00e9", "UTF-8 value intact")
            check(ev["pri"] == 10 * 8 + 4, "PRI = authpriv.warning (%d)" % ev["pri"])
            check(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", ev["time"]) is not None,
                  "RFC 3339 UTC timestamp")
        s = seqs(got)
        check(s == sorted(s) and len(set(s)) == 3 and s[-1] - s[0] == 2, "seq consecutive: %s" % s)
        audit = open(os.path.join(d, "store", "audit.jsonl")).read()
        check(audit.count('"event":"auth_fail"') == 3 and '"seq":%d' % s[0] in audit,
              "audit log has every event as JSON lines")
        check("bad \\\"code\\\"" in audit, "audit log escapes JSON")
        # A signed heartbeat verifies at the SIEM side with openssl alone.
        key = os.path.join(d, "identity.pem")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key, cwd=d)
        openssl("ec", "-in", key, "-pubout", "-out", os.path.join(d, "identity.pub"), cwd=d)
        p = sender(cfg, "--name", "heartbeat", "--sign", "--identity", key,
                   "--field", "boot_count=3", "--field", "state=IDLE",
                   "--field", 'tamper=clear "x"]', "--wait-drain", 20)
        got = srv.wait_count(is_msg("heartbeat"), 1, 10)
        check(len(got) == 1 and verify_signed(got[0], d), "signed heartbeat verifies with openssl")
        if got:
            bad = got[0].replace('boot_count="3"', 'boot_count="4"')
            check(not verify_signed(bad, d), "an altered heartbeat does not verify")
        # CEF
        write_config(cfg, os.path.join(d, "store"), port, pki["ca"], *pki["client"],
                     extra="  format: cef\n")
        p = sender(cfg, "--name", "session_start", "--field", "technician=a=b|c", "--wait-drain", 20)
        got = srv.wait_count(lambda l: "CEF:0|" in l, 1, 10)
        check(len(got) == 1 and "|session_start|session_start|2|" in got[0]
              and "technician=a\\=b|c" in got[0] and "shim_id=%s" % CLIENT_NAME in got[0],
              "CEF message with escaped extension: %r" % got[:1])
        # shimctl siem test
        write_config(cfg, os.path.join(d, "store"), port, pki["ca"], *pki["client"])
        p = subprocess.run([SHIMCTL, "--config", cfg, "siem", "test"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        check(p.returncode == 0 and "TLSv1.2" in p.stdout and "CN=localhost" in p.stdout
              and "cipher" in p.stdout, "shimctl siem test reports TLS details:\n" + p.stdout)
        got = srv.wait_count(is_msg("siem_test"), 1, 10)
        check(len(got) == 1, "the test event arrives")
    finally:
        srv.stop()


def scenario_plain_tcp(t, pki, port):
    d = tempfile.mkdtemp(dir=t)
    srv = Rsyslog(d, port, None, None, None, plain=True)
    srv.start()
    try:
        cfg = os.path.join(d, "shim.yaml")
        with open(cfg, "w") as f:
            f.write('''shim:
  id: "%s"
serial:
  technician_side_path: "pty:%s/tech"
  device_side_path: "pty:%s/dev"
storage:
  root: "%s/store"
siem:
  transport: syslog-tcp
  insecure: true
  host: 127.0.0.1
  port: %d
''' % (CLIENT_NAME, d, d, d, port))
        p = sender(cfg, "--name", "lockout", "--count", 10, "--wait-drain", 20)
        got = srv.wait_count(is_msg("lockout"), 10, 10)
        check(p.returncode == 0 and len(got) == 10, "syslog-tcp with insecure: true delivers (%d)" % len(got))
        with open(cfg) as f:
            text = f.read().replace("  insecure: true\n", "")
        with open(cfg, "w") as f:
            f.write(text)
        p = sender(cfg, "--name", "lockout", "--count", 1)
        check(p.returncode != 0 and "insecure" in p.stderr,
              "syslog-tcp without insecure is refused: %s" % p.stderr.strip().splitlines()[-1:])
    finally:
        srv.stop()


def scenario_wrong_server_ca(t, pki, port):
    d = tempfile.mkdtemp(dir=t)
    srv = Rsyslog(d, port, pki["ca"], *pki["server"])
    srv.start()
    try:
        cfg = os.path.join(d, "shim.yaml")
        # The shim trusts another CA: the server cannot be verified.
        write_config(cfg, os.path.join(d, "store"), port, pki["ca2"], *pki["client"])
        p = sender(cfg, "--name", "auth_ok", "--count", 5, "--wait-drain", 3)
        st = status_of(p.stdout)
        check(p.returncode == 3 and st.get("spool_depth") == "5",
              "unverifiable server: 5 events stay spooled (rc=%d, %s)" % (p.returncode, st))
        check("server certificate rejected" in st.get("link_error", "") and
              "not correctly signed" in st.get("link_error", ""),
              "status gives the reason: %s" % st.get("link_error"))
        time.sleep(0.5)
        check(srv.lines() == [], "the server got nothing")
        p = subprocess.run([SHIMCTL, "--config", cfg, "siem", "test"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        check(p.returncode != 0 and "not correctly signed" in p.stdout,
              "shimctl siem test prints the exact failure:\n" + p.stdout)
        # Wrong server name: same CA, name that is not in the certificate.
        cfg2 = os.path.join(d, "shim2.yaml")
        write_config(cfg2, os.path.join(d, "store2"), port, pki["ca"], *pki["client"])
        with open(cfg2) as f:
            text = f.read().replace("server_name: localhost", "server_name: siem.example.org")
        with open(cfg2, "w") as f:
            f.write(text)
        p = subprocess.run([SHIMCTL, "--config", cfg2, "siem", "test"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        check(p.returncode != 0 and "CN" in p.stdout and "siem.example.org" in p.stdout,
              "server name mismatch refused:\n" + p.stdout)
        time.sleep(0.3)
        check(srv.lines() == [], "still nothing at the server")
    finally:
        srv.stop()


def scenario_client_other_ca(t, pki, port):
    d = tempfile.mkdtemp(dir=t)
    srv = Rsyslog(d, port, pki["ca"], *pki["server"])
    srv.start()
    try:
        cfg = os.path.join(d, "shim.yaml")
        store = os.path.join(d, "store")
        write_config(cfg, store, port, pki["ca"], *pki["client_other"])
        p = sender(cfg, "--name", "session_end", "--count", 20, "--wait-drain", 4)
        st = status_of(p.stdout)
        check(p.returncode == 3 and st.get("spool_depth") == "20",
              "rejected client: all 20 events kept (rc=%d %s)" % (p.returncode, st))
        check("refused this client's certificate" in st.get("link_error", ""),
              "the failure is in status: %s" % st.get("link_error"))
        time.sleep(0.5)
        check(not [l for l in srv.lines() if "session_end" in l], "the server accepted nothing")
        p = subprocess.run([SHIMCTL, "--config", cfg, "siem", "test"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        check(p.returncode != 0 and "refused this client's certificate" in p.stdout,
              "shimctl siem test says the server dropped us:\n" + p.stdout)
        # The fix: the right client certificate. Nothing was lost.
        write_config(cfg, store, port, pki["ca"], *pki["client"])
        p = sender(cfg, "--count", 0, "--wait-drain", 30)
        st = status_of(p.stdout)
        got = srv.wait_count(is_msg("session_end"), 20, 10)
        s = sorted(set(seqs(got)))
        check(len(s) == 20 and s == list(range(s[0], s[0] + 20)),
              "after the fix all 20 arrive, none missing (%d)" % len(s))
        check(st.get("spool_depth") == "0", "spool drained")
    finally:
        srv.stop()


def scenario_outage(t, pki, port):
    d = tempfile.mkdtemp(dir=t)
    srv = Rsyslog(d, port, pki["ca"], *pki["server"])
    srv.start()
    try:
        cfg = os.path.join(d, "shim.yaml")
        store = os.path.join(d, "store")
        write_config(cfg, store, port, pki["ca"], *pki["client"],
                     extra="  outage_alarm_seconds: 1\n")
        p = sender(cfg, "--name", "boot", "--count", 5, "--wait-drain", 20)
        check(p.returncode == 0, "5 events before the outage delivered")
        first = [int(x) for x in re.findall(r"first_seq=(\d+) last_seq=(\d+)", p.stdout)[0]]
        srv.stop()
        proc = start_sender(cfg, "--name", "auth_ok", "--count", 1000, "--wait-drain", 90)
        line = wait_line(proc, "emitted=", 60)
        check(line is not None and "emitted=1000" in line, "1000 events made while rsyslog is down")
        time.sleep(1.6)
        audit = open(os.path.join(store, "audit.jsonl")).read()
        check('"event":"siem_outage"' in audit, "outage alarm in the audit log")
        srv.start()
        out, err = proc.communicate(timeout=120)
        st = status_of(out)
        check(proc.returncode == 0 and st.get("spool_depth") == "0",
              "spool drained after restart (rc=%d %s %s)" % (proc.returncode, st, err.strip()))
        got = srv.wait_count(is_msg("auth_ok"), 1000, 10)
        s = sorted(set(seqs(got)))
        m = re.findall(r"first_seq=(\d+) last_seq=(\d+)", line or "")
        a, b = (int(m[0][0]), int(m[0][1])) if m else (0, -1)
        check(len(s) == 1000 and s == list(range(a, b + 1)),
              "all 1000 arrive, no sequence number missing (%d unique)" % len(s))
        check(a == first[1] + 1, "sequence continues across restarts (%d after %d)" % (a, first[1]))
        restored = srv.wait_count(is_msg("siem_restored"), 1, 5)
        outage = srv.wait_count(is_msg("siem_outage"), 1, 5)
        check(len(outage) >= 1 and len(restored) >= 1, "siem_outage and siem_restored reach the SIEM")
        allseq = sorted(set(seqs(srv.lines())))
        check(allseq == list(range(allseq[0], allseq[-1] + 1)),
              "no gap in the whole stream (%d..%d)" % (allseq[0], allseq[-1]))
    finally:
        srv.stop()


def scenario_kill9(t, pki, port):
    d = tempfile.mkdtemp(dir=t)
    srv = Rsyslog(d, port, pki["ca"], *pki["server"])
    try:
        cfg = os.path.join(d, "shim.yaml")
        store = os.path.join(d, "store")
        write_config(cfg, store, port, pki["ca"], *pki["client"])
        n = 20000
        proc = start_sender(cfg, "--name", "session_start", "--count", n, "--hold")
        line = wait_line(proc, "emitted=", 120)
        check(line is not None and "emitted=%d" % n in line, "%d events spooled, link down" % n)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        srv.start()
        # Restart, and kill -9 again in the middle of the drain.
        proc = start_sender(cfg, "--count", 0, "--wait-drain", 120)
        deadline = time.time() + 60
        mid = 0
        while time.time() < deadline:
            mid = len(srv.lines())
            if mid >= 1000:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        check(0 < mid < n, "killed mid-drain after %d of %d arrived" % (mid, n))
        p = sender(cfg, "--count", 0, "--wait-drain", 120, timeout=180)
        st = status_of(p.stdout)
        check(p.returncode == 0 and st.get("spool_depth") == "0", "drained after restart: %s" % st)
        got = srv.wait_count(is_msg("session_start"), n, 20)
        s = seqs(got)
        u = sorted(set(s))
        m = re.findall(r"first_seq=(\d+) last_seq=(\d+)", line or "")
        a, b = (int(m[0][0]), int(m[0][1])) if m else (0, -1)
        check(u == list(range(a, b + 1)), "all %d delivered after kill -9, none missing (%d unique, %d duplicates)"
              % (n, len(u), len(s) - len(u)))
        p = sender(cfg, "--name", "boot", "--count", 1, "--wait-drain", 20)
        m2 = re.findall(r"first_seq=(\d+)", p.stdout)
        check(m2 and int(m2[0]) == b + 1, "next event after the kills gets seq %d" % (b + 1))
    finally:
        srv.stop()


def main():
    for tool in ("rsyslogd", "openssl"):
        if shutil.which(tool) is None:
            print("SKIP: %s not installed" % tool)
            print("0 passed, 0 failed")
            return 0
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so") and \
            not any(os.path.exists(os.path.join(p, "lmnsd_gtls.so"))
                    for p in ("/usr/lib/rsyslog", "/usr/lib64/rsyslog")):
        print("SKIP: rsyslog-gnutls not installed")
        print("0 passed, 0 failed")
        return 0
    t = tempfile.mkdtemp(prefix="shim-siem-")
    try:
        pki = {}
        make_ca(t, "ca")
        make_ca(t, "ca2")
        pki["ca"] = os.path.join(t, "ca.pem")
        pki["ca2"] = os.path.join(t, "ca2.pem")
        pki["server"] = make_cert(t, "ca", "server", "localhost", True)
        pki["client"] = make_cert(t, "ca", "client", CLIENT_NAME, False)
        pki["client_other"] = make_cert(t, "ca2", "client-other", CLIENT_NAME, False)
        only = sys.argv[1:] or ["fields", "plain_tcp", "wrong_server_ca", "client_other_ca", "outage", "kill9"]
        for name in only:
            print("-- " + name)
            globals()["scenario_" + name](t, pki, free_port())
    finally:
        if os.environ.get("KEEP") is None:
            shutil.rmtree(t, ignore_errors=True)
        else:
            print("kept " + t)
    print("%d passed, %d failed" % (PASSED, FAILED))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
