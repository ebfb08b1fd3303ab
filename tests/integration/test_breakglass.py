#!/usr/bin/env python3
"""Break-glass end to end through the built binaries on ptys: shimctl
breakglass keygen / provision / issue make the keys and codes; shimd
takes `<technician_id> <code>` at the normal prompt.

Scenarios: a code opens a session (the device gets the bytes, the session
is marked in the recording, `session list` and the jsonl export, both
notifications are in the audit log and at a real rsyslog over mutual TLS);
reuse is refused, also after a restart; another shim's code, an expired
code and a mistyped code are refused, each with its own reason; a code
used while the SIEM is down has its notifications spooled and delivered
when it returns; a flood of guesses hits the rate limit; a verify key for
another shim stops shimd; the commands' usage errors.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402
import test_siem as ts  # noqa: E402

SHIM_ID = ts.CLIENT_NAME  # the rsyslog peer name and the shim's ID
AUTH_OK = re.compile(rb"Authenticated as ([^;]+); session (\S+)\r\n")
BG_LINE = re.compile(rb"BREAK-GLASS session (\S+): recorded, reported to "
                     rb"clinical engineering and InfoSec; ends in (\d+) min\r\n")


def bgctl(*args, check=True):
    r = subprocess.run([st.SHIMCTL, "breakglass"] + list(args),
                       capture_output=True, text=True, timeout=20)
    if check and r.returncode != 0:
        raise AssertionError("shimctl breakglass %s: %d %s %s" %
                             (args, r.returncode, r.stdout, r.stderr))
    return r


class Keys:
    """A central master and the verify key of one shim, in d."""

    def __init__(self, d, shim=SHIM_ID):
        self.master = os.path.join(d, "bg-master")
        self.verify = os.path.join(d, "bg-verify-%s" % shim)
        bgctl("keygen", "--out", self.master)
        bgctl("provision", "--shim", shim, "--key", self.master,
              "--out", self.verify)

    def issue(self, shim=SHIM_ID, ttl="1h", reason="pump 4 alarm, TOTP phone dead",
              tech=None, now=None):
        args = ["issue", "--shim", shim, "--ttl", ttl, "--reason", reason,
                "--key", self.master]
        if tech:
            args += ["--technician", tech]
        if now is not None:
            args += ["--now", str(int(now))]
        r = bgctl(*args)
        lines = r.stdout.splitlines()
        return lines[0], json.loads(lines[1])


def bg_shim(keys, siem=None, totp_cfg=None, name=SHIM_ID):
    s = st.Shim(name=name, totp_cfg=totp_cfg, extra=(
        "breakglass:\n  verify_key: %s\n  max_duration: 3600" %
        st.yaml_str(keys.verify)))
    if siem:
        text = open(s.config).read()
        text = text.replace('siem:\n  transport: "noop"\n', siem)
        s.write_config(text)
    return s


def siem_block(port, pki):
    return ('siem:\n  transport: syslog-tls\n  host: 127.0.0.1\n  port: %d\n'
            '  server_name: localhost\n  ca: "%s"\n  client_cert: "%s"\n'
            '  client_key: "%s"\n' % (port, pki["ca"], pki["cert"], pki["key"]))


def make_pki(d):
    ts.make_ca(d, "ca")
    srv = ts.make_cert(d, os.path.join(d, "ca"), "server", "localhost", True)
    cli = ts.make_cert(d, os.path.join(d, "ca"), "client", SHIM_ID, False)
    return {"ca": os.path.join(d, "ca.pem"), "srv": srv, "cert": cli[0],
            "key": cli[1]}


def use_code(s, tech, tid, code):
    """Types `tid code`; returns (session id, serial) from the two lines."""
    tech.write(("%s %s\r" % (tid, code)).encode())
    out = tech.read_until(BG_LINE, 15)
    m = AUTH_OK.search(out)
    assert m and m.group(1).decode() == tid, out
    return m.group(2).decode(), BG_LINE.search(out).group(1).decode()


def refused(s, tech, tid, code, reason):
    """The uniform answer, and the precise reason in the audit log."""
    n = len([e for e in s.events() if e.get("event") == "auth_fail"])
    tech.write(("%s %s\r" % (tid, code)).encode())
    out = tech.read_until(st.AUTH_ANSWER, 10)
    ans = st.AUTH_ANSWER.search(out).group(0)
    assert ans == b"Auth fail\r\n", ans
    deadline = time.time() + 10
    while True:
        fails = [e for e in s.events() if e.get("event") == "auth_fail"]
        if len(fails) > n:
            break
        assert time.time() < deadline, "no auth_fail event"
        time.sleep(0.05)
    assert fails[-1]["reason"] == reason, fails[-1]
    assert code not in json.dumps(fails[-1])
    tech.read_until(st.PROMPT, 10)  # after the failure delay


def notifications(s, serial):
    return sorted(e.get("audience") for e in s.events()
                  if e.get("event") == "breakglass_notify"
                  and e.get("serial") == serial)


def assert_elevated(s, sid, serial, issued):
    """Recording, list and export say break-glass, with the serial."""
    rec = s.recording(sid)
    metas = [e for e in rec if e.get("type") == "meta"]
    bg = [m for m in metas if m.get("name") == "breakglass" or
          m.get("event") == "breakglass"]
    assert bg, metas
    text = json.dumps(bg[0])
    assert serial in text and issued["issuer_key_id"] in text, text
    footer = [e for e in rec if e.get("type") == "session_footer"][0]
    assert "breakglass" in footer.get("flags", []), footer
    lst = s.ctl("session", "list", check=True).stdout
    row = [l for l in lst.splitlines() if l.startswith(sid)]
    assert row and "BREAK-GLASS" in row[0], lst
    js = s.ctl("session", "list", "--json", check=True).stdout
    row = [json.loads(l) for l in js.splitlines() if sid in l]
    assert row and row[0]["breakglass"] is True, js


# ---- scenarios ------------------------------------------------------------------

def test_use_reuse_restart_and_rsyslog():
    d = tempfile.mkdtemp(prefix="bgtest-")
    pki = make_pki(d)
    port = ts.free_port()
    rs = ts.Rsyslog(d, port, pki["ca"], pki["srv"][0], pki["srv"][1])
    rs.start()
    keys = Keys(d)
    s = bg_shim(keys, siem=siem_block(port, pki))
    try:
        s.start()
        dev = s.connect_dev()
        tech = s.connect_tech()
        code, rec = keys.issue()
        assert re.fullmatch(r"([0-9A-HJKMNP-TV-Z]{5}-){3}[0-9A-HJKMNP-TV-Z]{5}",
                            code), code
        for k in ("serial", "shim", "issued", "expires", "reason", "issuer",
                  "technician"):
            assert k in rec, rec
        assert rec["shim"] == SHIM_ID and rec["technician"] is None
        sid, serial = use_code(s, tech, "vendor.eng", code)
        assert serial == rec["serial"]
        tech.write(b"SERVICE?\r")
        assert dev.read_until(b"SERVICE?\r", 10) == b"SERVICE?\r"
        dev.write(b"OK pump\r\n")
        tech.read_until(b"OK pump\r\n", 10)
        used = s.wait_event("breakglass_used", serial=serial)
        assert used["technician"] == "vendor.eng"
        assert notifications(s, serial) == ["clinical_engineering", "infosec"]
        assert code not in s.log(), "the code is in shimd's log"
        # at the real SIEM, over mutual TLS
        got = rs.wait_count(lambda l: serial in l and "breakglass" in l, 3, 30)
        assert len(got) >= 3, rs.lines()
        assert any("breakglass_used" in l for l in got)
        assert any('audience="clinical_engineering"' in l for l in got), got
        assert any('audience="infosec"' in l for l in got), got
        s.ctl("end-session", check=True)
        st.ended(tech)
        assert_elevated(s, sid, serial, rec)
        # reuse refused
        tech.read_until(st.PROMPT, 10)
        refused(s, tech, "vendor.eng", code, "breakglass_used")
        refused(s, tech, "someone.else", code, "breakglass_used")
        tech.close()
        dev.close()
        # and after a restart
        s.stop()
        s.start()
        dev = s.connect_dev(count=2)
        tech = s.connect_tech()
        refused(s, tech, "vendor.eng", code, "breakglass_used")
        tech.close()
        dev.close()
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()
        rs.stop()


def test_other_shim_expired_mistyped_bound():
    d = tempfile.mkdtemp(prefix="bgtest-")
    keys = Keys(d)
    s = bg_shim(keys, totp_cfg={"max_failures": 20})
    try:
        s.start()
        dev = s.connect_dev()
        tech = s.connect_tech()
        other = next(n for n in ("shim-b", "shim-c", "shim-d")
                     if zlib.crc32(n.encode()) & 63 !=
                     zlib.crc32(SHIM_ID.encode()) & 63)
        code, _ = keys.issue(shim=other)
        refused(s, tech, "vendor.eng", code, "breakglass_wrong_shim")
        code, _ = keys.issue(now=time.time() - 7200, ttl="1h")
        refused(s, tech, "vendor.eng", code, "breakglass_expired")
        code, _ = keys.issue(ttl="15m")
        typo = code[:7] + ("A" if code[7] != "A" else "B") + code[8:]
        refused(s, tech, "vendor.eng", typo, "breakglass_mistyped")
        # bound to a technician: nobody else can use it
        bound, rec = keys.issue(tech="carol.vendor", ttl="90s")
        assert rec["technician"] == "carol.vendor"
        refused(s, tech, "vendor.eng", bound, "breakglass_bad")
        # typed in lower case with spaces, as read over the phone: opens
        sid, serial = use_code(s, tech, "vendor.eng",
                               code.lower().replace("-", " "))
        assert s.wait_event("breakglass_used", serial=serial)
        s.ctl("end-session", check=True)
        st.ended(tech)
        tech.read_until(st.PROMPT, 10)
        sid, serial = use_code(s, tech, "carol.vendor", bound)
        # its own maximum: 90 s asked, whole minutes from the issued one
        assert s.wait_event("breakglass_used", serial=serial)
        tech.close()
        dev.close()
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()


def test_siem_down_notifications_spooled():
    d = tempfile.mkdtemp(prefix="bgtest-")
    pki = make_pki(d)
    port = ts.free_port()
    rs = ts.Rsyslog(d, port, pki["ca"], pki["srv"][0], pki["srv"][1])
    keys = Keys(d)
    s = bg_shim(keys, siem=siem_block(port, pki))
    try:
        s.start()  # the SIEM is down
        dev = s.connect_dev()
        tech = s.connect_tech()
        code, rec = keys.issue()
        sid, serial = use_code(s, tech, "vendor.eng", code)
        tech.write(b"X")
        dev.read_until(b"X", 10)
        assert notifications(s, serial) == ["clinical_engineering", "infosec"]
        st_txt = s.ctl("status").stdout
        m = re.search(r"^siem_spool: (\d+)", st_txt, re.M)
        assert m and int(m.group(1)) >= 3, st_txt
        rs.start()
        got = rs.wait_count(lambda l: serial in l and "breakglass" in l, 3, 90)
        assert len(got) >= 3, rs.lines()
        tech.close()
        dev.close()
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()
        rs.stop()


def test_flood_of_guesses_hits_the_rate_limit():
    d = tempfile.mkdtemp(prefix="bgtest-")
    keys = Keys(d)
    s = bg_shim(keys, totp_cfg={"rate_limit_failures": 5,
                                "rate_limit_seconds": 60})
    try:
        s.start()
        dev = s.connect_dev()
        tech = s.connect_tech()
        code, _ = keys.issue()
        alpha = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        for i in range(5):
            # forged codes: a changed character and a fixed check character
            body = code.replace("-", "")[:19]
            body = body[:10] + alpha[(alpha.index(body[10]) + i + 1) % 32] + body[11:]
            guess = luhn_code(body)
            tech.write(("guess%d %s\r" % (i, guess)).encode())
            out = tech.read_until(st.AUTH_ANSWER, 10)
            if b"retry in" in out:
                break
            tech.read_until(st.PROMPT, 10)
        fails = [e for e in s.events() if e.get("event") == "auth_fail"]
        assert all(e["reason"] == "breakglass_bad" for e in fails[:5]), fails
        # the shim is locked: even the real code is not read now
        tech.write(("vendor.eng %s\r" % code).encode())
        out = tech.read_for(2)
        assert b"Authenticated" not in out, out
        assert s.wait_event("lockout", technician="*")
        assert not [e for e in s.events() if e.get("event") == "breakglass_used"]
        tech.close()
        dev.close()
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()


def luhn_code(body):
    """The 20-character code with its Luhn mod 32 check character."""
    alpha = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    total, factor = 0, 2
    for ch in reversed(body):
        a = factor * alpha.index(ch)
        factor = 1 if factor == 2 else 2
        total += a // 32 + a % 32
    full = body + alpha[(32 - total % 32) % 32]
    return "-".join(full[i:i + 5] for i in range(0, 20, 5))


def test_key_of_another_shim_stops_shimd():
    d = tempfile.mkdtemp(prefix="bgtest-")
    keys = Keys(d, shim="someone-else")
    s = bg_shim(keys)
    try:
        r = subprocess.run([st.SHIMD, "--check-config", s.config],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "is for shim 'someone-else', this is '%s'" % SHIM_ID in r.stderr, r.stderr
        s.start(wait=False)
        rc = s.proc.wait(20)
        assert rc != 0
        assert "is for shim 'someone-else'" in s.log(), s.log()
    finally:
        s.cleanup()
    good = Keys(tempfile.mkdtemp(prefix="bgtest-"))
    s = bg_shim(good)
    try:
        r = subprocess.run([st.SHIMD, "--check-config", s.config],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0 and r.stdout.endswith(": ok\n"), (r.stdout, r.stderr)
    finally:
        s.cleanup()
    # a broken key names the file and line
    s = bg_shim(keys)
    try:
        with open(keys.verify, "a") as f:
            f.write("garbage\n")
        r = subprocess.run([st.SHIMD, "--check-config", s.config],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1 and "%s:5: not a break-glass verify key" % \
            keys.verify in r.stderr, r.stderr
        s.start(wait=False)
        assert s.proc.wait(20) != 0
        assert "%s:5: not a break-glass verify key" % keys.verify in s.log(), s.log()
    finally:
        s.cleanup()


def test_commands_usage_and_files():
    d = tempfile.mkdtemp(prefix="bgtest-")
    keys = Keys(d)
    for p in (keys.master, keys.verify):
        assert os.stat(p).st_mode & 0o777 == 0o600, oct(os.stat(p).st_mode)
    with open(keys.verify) as f:
        text = f.read()
    with open(keys.master) as f:
        master_hex = f.read().split("key ")[1].strip()
    assert master_hex not in text, "the master is on the shim"
    r = bgctl("keygen", "--out", keys.master, check=False)
    assert r.returncode == 1 and "not replaced" in r.stderr
    for args in (["issue", "--bogus"], ["issue", "--shim"],
                 ["issue", "--shim", "x", "--ttl", "25h", "--reason", "r",
                  "--key", keys.master],
                 ["issue", "--shim", "x", "--ttl", "1h", "--key", keys.master],
                 ["provision", "--shim", "x"], ["nonsense"]):
        r = bgctl(*args, check=False)
        assert r.returncode == 2 and "usage" in r.stderr + r.stdout or \
            r.returncode == 2, (args, r.returncode, r.stderr)
        assert r.stdout == "", (args, r.stdout)
    r = bgctl("issue", "--help", check=False)
    assert r.returncode == 0 and "usage:" in r.stdout
    for ttl, mins in (("90s", (2, 3)), ("15m", (15, 16)), ("1h", (60, 61))):
        code, rec = keys.issue(ttl=ttl)
        assert (rec["expires_unix"] - rec["issued_unix"]) // 60 in mins, (ttl, rec)
    code, rec = keys.issue(ttl="24h")
    assert rec["expires_unix"] - rec["issued_unix"] <= 86400


if __name__ == "__main__":
    st.need_binaries()
    st.run(st.tests_of(globals()))
