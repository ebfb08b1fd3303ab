"""shimctl token / tamper / identity as the SOC and clinical engineering
use them: the authority key, a latched state directory and its latch
identity, tokens refused for the wrong key, the wrong shim, another latch,
the old unbound format, after expiry, when reused, while the case is still
open (not spent), and a good one clearing the latch; the refusal while
shimd runs; identity CSR."""
import base64
import fcntl
import re
import os
import shutil
import socket
import threading
import stat
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("SHIM_BUILD", "build")
SHIMCTL = os.path.join(BUILD, "shimctl")
passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def run(*args):
    return subprocess.run([SHIMCTL, *args], capture_output=True, text=True,
                          timeout=30)


def latch_of(cfg):
    r = run(*cfg, "tamper", "status")
    m = re.search(r"^latch_id: (\d+-\d+)$", r.stdout, re.M)
    return m.group(1) if m else None


def der_to_raw(der):
    """ECDSA DER signature (SEQUENCE of two INTEGERs) to r || s."""
    assert der[0] == 0x30
    i = 2
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        v = der[i + 2:i + 2 + n].lstrip(b"\0")
        out += v.rjust(32, b"\0")
        i += 2 + n
    return out


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def old_format_token(key, shim, now):
    """A token of payload format 1 (no latch line), properly signed."""
    payload = ("shim-reset-token 1\npurpose=tamper-reset\nshim=%s\n"
               "issued=%d\nexpires=%d\nnonce=%s\nissuer=soc-duty\n"
               "reason=old tool\n" % (shim, now, now + 600,
                                       os.urandom(16).hex())).encode()
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                         input=payload, capture_output=True,
                         check=True).stdout
    return "SRT1." + b64u(payload) + "." + b64u(der_to_raw(der))


def main():
    tmp = tempfile.mkdtemp(prefix="shim-tamper-")
    try:
        root = os.path.join(tmp, "root")
        state = os.path.join(root, "state")
        os.makedirs(state)
        auth_key = os.path.join(tmp, "authority.key")
        auth_pub = os.path.join(tmp, "authority.pub")
        other_key = os.path.join(tmp, "other.key")
        conf = os.path.join(tmp, "config.yaml")
        with open(conf, "w") as fh:
            fh.write(f"""shim:
  id: pump-07
serial:
  technician_side_path: "pty:{tmp}/tech"
  device_side_path: "pty:{tmp}/dev"
storage:
  root: {root}
tamper:
  reset_authority_public_key: {auth_pub}
  sensors:
    - {{type: file, path: {tmp}/case-open, event: case_opened}}
""")
        cfg = ["--config", conf]

        r = run("token", "keygen", "--out", auth_key, "--pub", auth_pub)
        check("authority key made", r.returncode == 0 and
              "BEGIN PUBLIC KEY" in r.stdout, r.stderr)
        check("authority key is 0600",
              stat.S_IMODE(os.stat(auth_key).st_mode) == 0o600)
        r = run("token", "keygen", "--out", auth_key)
        check("an existing key is never replaced", r.returncode == 1 and
              "exists" in r.stderr, r.stderr)
        run("token", "keygen", "--out", other_key)

        r = run(*cfg, "keygen", "identity")
        idkey = os.path.join(root, "keys", "identity.key")
        check("identity key in the storage root, 0600", r.returncode == 0 and
              stat.S_IMODE(os.stat(idkey).st_mode) == 0o600, r.stderr)
        r = run(*cfg, "identity", "csr", "--cn", "pump-07")
        csr = subprocess.run(["openssl", "req", "-noout", "-subject",
                              "-verify"], input=r.stdout, capture_output=True,
                             text=True)
        check("CSR for the SIEM client certificate",
              r.returncode == 0 and "CN = pump-07" in csr.stdout and
              csr.returncode == 0, csr.stdout + csr.stderr)

        # A state directory whose boot record was removed: latched.
        with open(os.path.join(state, "tamper"), "wb") as fh:
            fh.write(b"not a tamper record")
        r = run(*cfg, "tamper", "status")
        check("removed state is latched", r.returncode == 1 and
              "LATCHED" in r.stdout and "state_missing" in r.stdout, r.stdout)
        lid = latch_of(cfg)
        check("status shows the latch identity", lid == "1-1", r.stdout)
        check("status shows the sensors", "sensors: clear" in r.stdout,
              r.stdout)

        now = int(time.time())

        def issue(key=auth_key, shim="pump-07", extra=(), latch=None):
            r = run("token", "issue", "tamper-reset", "--shim", shim,
                    "--latch", latch or latch_of(cfg), "--key",
                    key, "--issuer", "soc-duty", "--reason",
                    "INC-4711 inspected", *extra)
            return r.stdout.strip()

        bad = [
            ("wrong key", issue(other_key), "not signed by the reset authority"),
            ("another shim", issue(shim="pump-08"), "another shim"),
            ("expired", issue(extra=("--now", str(now - 3600), "--ttl", "60")),
             "expired"),
            ("another latch", issue(latch="2-1"),
             "token is for another latch (token: latch 2-1; latched: 1-1)"),
            ("old format without a latch",
             old_format_token(auth_key, "pump-07", now), "format 1"),
        ]
        for name, tok, msg in bad:
            r = run(*cfg, "tamper", "reset", "--token", tok)
            check(f"token refused: {name}", r.returncode == 1 and
                  msg in r.stderr, r.stderr)
        tampered = issue()
        tampered = tampered[:20] + ("A" if tampered[20] != "A" else "B") + \
            tampered[21:]
        r = run(*cfg, "tamper", "reset", "--token", tampered)
        check("token refused: altered", r.returncode == 1, r.stderr)
        r = run(*cfg, "tamper", "reset", "--token", "garbage")
        check("token refused: malformed", r.returncode == 1 and
              "malformed" in r.stderr, r.stderr)
        check("still latched after refusals",
              "LATCHED" in run(*cfg, "tamper", "status").stdout)

        good = issue()
        r = run("token", "show", good)
        check("token show", "shim: pump-07" in r.stdout and
              "latch: 1-1" in r.stdout and
              "issuer: soc-duty" in r.stdout, r.stdout)
        check("token show times in ISO 8601 UTC",
              re.search(r"^issued: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+\)$",
                        r.stdout, re.M) is not None and
              re.search(r"^expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ",
                        r.stdout, re.M) is not None, r.stdout)
        r = run("token", "show", old_format_token(auth_key, "pump-07", now))
        check("token show names the old format", r.returncode == 1 and
              "format 1" in r.stderr, r.stderr)

        # The case is still open: refused offline too, the token not spent.
        case = os.path.join(tmp, "case-open")
        with open(case, "w") as fh:
            fh.write("open\n")
        r = run(*cfg, "tamper", "reset", "--token", good)
        check("refused while the case is open", r.returncode == 1 and
              "sensor case_opened still active" in r.stderr and
              "not used" in r.stderr, r.stderr)
        r = run(*cfg, "tamper", "status")
        check("status shows the open case", "LATCHED" in r.stdout and
              "sensors: case_opened active" in r.stdout, r.stdout)
        os.unlink(case)

        # While shimd runs (its admin socket answers), the reset goes to
        # the daemon, which owns the latch; nothing is cleared offline.
        sock_path = os.path.join(root, "shimd.sock")
        srv = socket.socket(socket.AF_UNIX)
        srv.bind(sock_path)
        srv.listen(1)
        seen = []

        def answer():
            # shimctl first probes the socket, then sends its request.
            srv.settimeout(10)
            for _ in range(3):
                c, _ = srv.accept()
                req = c.recv(4096)
                if req:
                    seen.append(req)
                    c.sendall(b"error: token refused: test daemon\n")
                    c.close()
                    return
                c.close()
        r = run(*cfg, "tamper", "status")
        check("status reads the state while shimd runs",
              r.returncode == 1 and "latch_id: 1-1" in r.stdout and
              "shimd: running" in r.stdout, r.stdout + r.stderr)
        th = threading.Thread(target=answer)
        th.start()
        r = run(*cfg, "tamper", "reset", "--token", good)
        th.join(5)
        srv.close()
        os.unlink(sock_path)
        check("sent to the running shimd, not applied offline",
              r.returncode == 1 and seen and
              seen[0].startswith(b"tamper-reset SRT1.") and
              "LATCHED" in run(*cfg, "tamper", "status").stdout,
              r.stdout + r.stderr)
        # ... or holds its event log lock.
        with open(os.path.join(root, "eventlog.lock"), "w") as lk:
            fcntl.flock(lk, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = run(*cfg, "tamper", "reset", "--token", good)
            check("refused while shimd holds its locks", r.returncode == 1 and
                  "running" in r.stderr, r.stderr)

        r = run(*cfg, "tamper", "reset", "--token", good)
        check("a good token clears the latch (once the case is closed)",
              r.returncode == 0 and "latch cleared" in r.stdout and
              "latch 1-1" in r.stdout and "soc-duty" in r.stdout,
              r.stdout + r.stderr)
        r = run(*cfg, "tamper", "status")
        check("clear afterwards, reset recorded for reporting",
              r.returncode == 0 and "latch: clear" in r.stdout and
              "not yet reported" in r.stdout, r.stdout)
        names = sorted(os.listdir(state))
        check("both records written", "boot" in names and "tamper" in names,
              str(names))

        # Latch again (the boot record goes): a new latch, and the spent
        # token names the old one.
        os.unlink(os.path.join(state, "boot"))
        check("a new latch gets the next number", latch_of(cfg) == "2-1",
              run(*cfg, "tamper", "status").stdout)
        r = run(*cfg, "tamper", "reset", "--token", good)
        check("token refused: for the cleared latch", r.returncode == 1 and
              "another latch" in r.stderr, r.stderr)

        # Records written without the identity key are not believed once
        # the key is there: edit-by-copy does not work either.
        r = run(*cfg, "tamper", "reset", "--token", issue())
        check("a fresh token clears again", r.returncode == 0, r.stderr)
        with open(os.path.join(state, "tamper"), "r+b") as fh:
            data = bytearray(fh.read())
            data[40] ^= 1
            fh.seek(0)
            fh.write(data)
        r = run(*cfg, "tamper", "status")
        check("an edited record latches", r.returncode == 1 and
              ("state_corrupt" in r.stdout or "state_forged" in r.stdout),
              r.stdout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
