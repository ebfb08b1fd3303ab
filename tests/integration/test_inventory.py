"""Signed inventory records through the built shimctl: the provisioning
authority's key, a unit's record made from its own key files and signed,
verification (good, altered, other authority, malformed with FILE:LINE),
and the SOC monitor trusting only heartbeat keys that a signed record
vouches for."""
import json
import os
import subprocess
import sys
import tempfile

BUILD = os.environ.get("SHIM_BUILD", "build")
SHIMCTL = os.path.join(BUILD, "shimctl")
HBSIGN = os.path.join(BUILD, "tests", "hbsign")
T0 = 1800000000
PERIOD = 60
NOW = T0 + 10 * PERIOD
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
    return subprocess.run([SHIMCTL, "--config", "/nonexistent/none.yaml",
                           *args], capture_output=True, text=True, timeout=60)


def hb_fields(t):
    return [f"time={t}", f"period={PERIOD}", "boot_count=1",
            f"uptime={t - T0 + 100}", "state=IDLE", "tamper=clear",
            "session_active=0", "spool_depth=0", "version=0.1.0",
            "binary_digest=ab", "config_digest=cd", "chain_head=-"]


def main():
    tmp = tempfile.mkdtemp(prefix="shim-inv-")
    p = lambda *n: os.path.join(tmp, *n)
    inv = p("inventory")
    os.mkdir(inv)

    r = shimctl("inventory", "keygen", "--out", p("auth.key"))
    check("keygen writes the authority key 0600 and its public key",
          r.returncode == 0 and os.stat(p("auth.key")).st_mode & 0o777 == 0o600
          and os.path.exists(p("auth.key.pub"))
          and "BEGIN PUBLIC KEY" in r.stdout, r.stderr)
    r = shimctl("inventory", "keygen", "--out", p("auth.key"))
    check("keygen never overwrites a key", r.returncode == 1
          and "exists" in r.stderr, r.stderr)
    shimctl("inventory", "keygen", "--out", p("other.key"))
    r = shimctl("keygen", "recording", "--out", p("rec.key"))
    assert r.returncode == 0, r.stderr

    keys = {}
    for shim in ("ward3-01", "ward3-02", "unvouched-1", "other-auth-1",
                 "altered-1"):
        keys[shim] = p(f"{shim}.key")
        r = shimctl("keygen", "identity", "--out", keys[shim])
        assert r.returncode == 0, r.stderr

    def create(shim, serial, key, out, *extra):
        return shimctl("inventory", "create", "--serial", serial,
                       "--shim-id", shim, "--operator", "Jo Bloggs",
                       "--identity", keys[shim], "--recording-pub",
                       p("rec.pub"), "--binary", SHIMCTL, "--out", out,
                       *(["--key", key] if key else []), *extra)

    r = create("ward3-01", "SN-0001", p("auth.key"), p(inv, "ward3-01.inv"))
    check("create writes a signed record", r.returncode == 0, r.stderr)
    text = open(p(inv, "ward3-01.inv")).read()
    lines = text.splitlines()
    check("the record holds the unit's facts in the documented order",
          [l.split(" ")[0] for l in lines] ==
          ["shim-inventory", "serial", "shim_id", "identity_pub",
           "recording_key", "software", "binary", "build", "provisioned",
           "operator", "authority", "signature"]
          and "serial SN-0001" in lines and "build deployed" in lines,
          text)
    r2 = shimctl("inventory", "verify", p(inv, "ward3-01.inv"),
                 "--authority", p("auth.key.pub"), "--json")
    doc = json.loads(r2.stdout) if r2.returncode == 0 else {}
    check("verify accepts it and reports its fields", r2.returncode == 0
          and doc.get("verified") is True and doc.get("serial") == "SN-0001"
          and doc.get("shim_id") == "ward3-01"
          and doc.get("operator") == "Jo Bloggs", r2.stderr)

    # Unsigned, then signed elsewhere (the bench without the authority key).
    r = create("ward3-02", "SN-0002", None, p("ward3-02.unsigned"))
    r2 = shimctl("inventory", "verify", p("ward3-02.unsigned"),
                 "--authority", p("auth.key.pub"))
    check("an unsigned record does not verify", r.returncode == 0
          and r2.returncode == 1 and "not signed" in r2.stderr, r2.stderr)
    r = shimctl("inventory", "sign", p("ward3-02.unsigned"), "--key",
                p("auth.key"), "--out", p(inv, "ward3-02.inv"))
    r2 = shimctl("inventory", "verify", p(inv, "ward3-02.inv"),
                 "--authority", p("auth.key.pub"))
    check("sign makes it verify", r.returncode == 0 and r2.returncode == 0,
          r.stderr + r2.stderr)

    create("other-auth-1", "SN-0003", p("other.key"),
           p(inv, "other-auth-1.inv"))
    r = shimctl("inventory", "verify", p(inv, "other-auth-1.inv"),
                "--authority", p("auth.key.pub"))
    check("a record signed by another authority is refused",
          r.returncode == 1 and "not signed by this authority" in r.stderr,
          r.stderr)

    create("altered-1", "SN-0004", p("auth.key"), p(inv, "altered-1.inv"))
    t = open(p(inv, "altered-1.inv")).read()
    # A signed record edited afterwards (its serial here).
    t2 = t.replace("serial SN-0004", "serial SN-0005")
    open(p(inv, "altered-1.inv"), "w").write(t2)
    r = shimctl("inventory", "verify", p(inv, "altered-1.inv"),
                "--authority", p("auth.key.pub"))
    check("an altered record is refused", r.returncode == 1, r.stderr)

    open(p("bad.inv"), "w").write(text.replace("build deployed",
                                               "build debug"))
    r = shimctl("inventory", "verify", p("bad.inv"), "--authority",
                p("auth.key.pub"))
    check("a malformed record is refused with FILE:LINE: why",
          r.returncode == 3 and f"{p('bad.inv')}:8:" in r.stderr
          and "build" in r.stderr, r.stderr)

    # The unvouched shim has only a bare public key in the inventory.
    r = shimctl("identity", "pub", "--key", keys["unvouched-1"], "--out",
                p(inv, "unvouched-1.pub"))
    assert r.returncode == 0, r.stderr

    specs = []
    for shim in keys:
        seq, tt = 1, T0
        while tt <= NOW:
            specs.append("\t".join([keys[shim], shim, str(seq), str(tt),
                                    "heartbeat", *hb_fields(tt)]))
            seq += 1
            tt += PERIOD
    out = subprocess.run([HBSIGN], input="\n".join(specs) + "\n",
                         capture_output=True, text=True, check=True)
    with open(p("received.log"), "w") as f:
        for m in out.stdout.split("\0"):
            if m:
                f.write(m + "\n")

    r = shimctl("monitor", "--inventory", inv, "--authority",
                p("auth.key.pub"), "--log", p("received.log"), "--now",
                str(NOW), "--period", str(PERIOD), "--json")
    doc = json.loads(r.stdout) if r.stdout.startswith("{") else {}
    v = {s["shim_id"]: s for s in doc.get("shims", [])}
    check("monitor: vouched units are OK and carry their serial",
          v.get("ward3-01", {}).get("verdict") == "OK"
          and v.get("ward3-01", {}).get("serial") == "SN-0001"
          and v.get("ward3-02", {}).get("verdict") == "OK"
          and v.get("ward3-02", {}).get("build") == "deployed", r.stdout)
    check("monitor: a key no signed record vouches for is refused",
          v.get("unvouched-1", {}).get("verdict") == "BAD-SIGNATURE"
          and v.get("unvouched-1", {}).get("in_inventory") is False
          and "unvouched-1.pub: no signed inventory record" in r.stderr,
          r.stdout + r.stderr)
    check("monitor: records of another authority or altered are refused",
          v.get("other-auth-1", {}).get("verdict") == "BAD-SIGNATURE"
          and v.get("altered-1", {}).get("verdict") == "BAD-SIGNATURE"
          and "other-auth-1.inv: not signed by this authority" in r.stderr
          and "altered-1.inv: not signed by this authority" in r.stderr
          and r.returncode == 1, r.stderr)
    r = shimctl("monitor", "--inventory", inv, "--log", p("received.log"),
                "--now", str(NOW), "--period", str(PERIOD), "--json")
    doc = json.loads(r.stdout) if r.stdout.startswith("{") else {}
    v = {s["shim_id"]: s for s in doc.get("shims", [])}
    check("monitor without --authority still reads bare keys",
          v.get("unvouched-1", {}).get("verdict") == "OK", r.stdout)

    # Strict options: nothing is written for a misspelled option.
    r = shimctl("inventory", "create", "--serial", "SN-9", "--shim-id",
                "ward3-01", "--operator", "x", "--identity",
                keys["ward3-01"], "--recording-pub", p("rec.pub"),
                "--binary", SHIMCTL, "--out", p("typo.inv"), "--kye",
                p("auth.key"))
    check("a misspelled option is refused and writes nothing",
          r.returncode == 2 and "--kye" in r.stderr
          and not os.path.exists(p("typo.inv")), r.stderr)
    r = shimctl("inventory", "verify", p(inv, "ward3-01.inv"), "--authority")
    check("a missing value is refused", r.returncode == 2
          and "--authority" in r.stderr and "usage:" in r.stderr, r.stderr)
    r = shimctl("inventory", "sign", "--help")
    check("--help prints the usage and exits 0", r.returncode == 0
          and "sign RECORD --key AUTHKEY" in r.stdout, r.stdout)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
