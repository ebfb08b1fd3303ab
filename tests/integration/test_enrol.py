"""shimctl enrol and shimctl totp, driven as a clinical engineer would,
with oathtool as an independent authenticator."""
import base64
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse

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


def run(*args, stdin=None):
    return subprocess.run([SHIMCTL, *args], capture_output=True, text=True,
                          input=stdin, timeout=30)


def oathtool(secret, t, alg="SHA1", digits=6, period=30):
    out = subprocess.run(["oathtool", f"--totp={alg}", "-b", "-d", str(digits),
                          "-s", str(period), "-N", f"@{t}", secret],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def main():
    tmp = tempfile.mkdtemp(prefix="shim-enrol-")
    cfg = os.path.join(tmp, "config.yaml")
    store = os.path.join(tmp, "root", "technicians.sealed")
    os.mkdir(os.path.join(tmp, "root"), 0o700)

    def enrolled():
        r = run("--config", cfg, "technicians", "list")
        return r.stdout if r.returncode == 0 else "ERROR " + r.stderr
    with open(cfg, "w") as f:
        f.write(f"""shim:
  id: shim-test-01
serial:
  technician_side_path: "pty:{tmp}/tech"
  device_side_path: "pty:{tmp}/dev"
storage:
  root: {tmp}/root
totp:
  issuer: "St Elsewhere CE"
  algorithm: SHA256
  digits: 8
  period: 30
""")

    r = run("--config", cfg, "enrol", "alice@example.org", "--png",
            os.path.join(tmp, "alice.png"))
    check("enrol exits 0", r.returncode == 0, r.stderr)
    m = re.search(r"^Secret \(base32\): ([A-Z2-7]+)$", r.stdout, re.M)
    u = re.search(r"^URI: (\S+)$", r.stdout, re.M)
    check("enrol prints the base32 secret", m is not None, r.stdout)
    check("enrol prints an otpauth URI", u is not None and
          u.group(1).startswith("otpauth://totp/"), r.stdout)
    secret = m.group(1)
    check("secret has at least 160 bits", len(secret) * 5 >= 160, secret)
    check("enrol draws a QR code", "\u2588" in r.stdout and r.stdout.count("\n") > 20)

    uri = urllib.parse.urlparse(u.group(1))
    label = urllib.parse.unquote(uri.path.lstrip("/"))
    q = dict(urllib.parse.parse_qsl(uri.query))
    check("URI label is issuer:account, percent-encoded",
          "St%20Elsewhere%20CE:alice%40example.org" in u.group(1) and
          label == "St Elsewhere CE:alice@example.org", u.group(1))
    check("URI parameters", q.get("secret") == secret and
          q.get("issuer") == "St Elsewhere CE" and q.get("algorithm") == "SHA256"
          and q.get("digits") == "8" and q.get("period") == "30", str(q))

    # An authenticator reading the URI computes the same codes as shimctl.
    t = int(time.time())
    want = oathtool(q["secret"], t, q["algorithm"], int(q["digits"]), int(q["period"]))
    got = run("--config", cfg, "totp", "now", "--secret", secret, "--time", str(t))
    check("URI decodes with oathtool to shimctl's codes",
          got.returncode == 0 and got.stdout.strip() == want, f"{got.stdout} vs {want}")

    st = os.stat(store)
    check("sealed store created 0600", stat.S_IMODE(st.st_mode) == 0o600,
          oct(st.st_mode))
    key = os.path.join(tmp, "root", "keys", "storage.key")
    check("storage key created 0600",
          stat.S_IMODE(os.stat(key).st_mode) == 0o600)
    clear = []
    for dp, _, fn in os.walk(os.path.join(tmp, "root")):
        for f in fn:
            b = open(os.path.join(dp, f), "rb").read()
            if secret.encode() in b or base64.b32decode(secret) in b:
                clear.append(f)
    check("no file on the unit holds the secret in the clear", clear == [],
          str(clear))
    body = enrolled()
    check("the store holds the entry, listed without its secret",
          "alice@example.org" in body and "SHA256" in body and
          secret not in body, body)
    png = os.path.join(tmp, "alice.png")
    with open(png, "rb") as f:
        head = f.read(8)
    check("PNG written, 0600", head == b"\x89PNG\r\n\x1a\n" and
          stat.S_IMODE(os.stat(png).st_mode) == 0o600)

    z = subprocess.run(["zbarimg", "-q", "--raw", png], capture_output=True, text=True)
    check("the PNG QR code scans back to the URI", z.stdout.strip() == u.group(1),
          z.stdout + z.stderr)

    r = run("--config", cfg, "enrol", "alice@example.org")
    check("duplicate enrolment refused", r.returncode != 0 and
          "already" in r.stderr, r.stderr)

    # --confirm: the entry is written only when the first code matches.
    r = run("--config", cfg, "enrol", "bob@example.org", "--dry-run")
    bob = re.search(r"^Secret \(base32\): ([A-Z2-7]+)$", r.stdout, re.M).group(1)
    check("dry run writes nothing", "bob@example.org" not in enrolled())
    wrong = "00000000" if oathtool(bob, int(time.time()), "SHA256", 8) != "00000000" else "11111111"
    bobpng = os.path.join(tmp, "bob.png")
    r = run("--config", cfg, "enrol", "bob@example.org", "--secret", bob,
            "--confirm", wrong, "--png", bobpng)
    check("wrong confirmation code refused, nothing written",
          r.returncode != 0 and "bob@example.org" not in enrolled(), r.stderr)
    check("a failed confirmation leaves no QR code file",
          not os.path.exists(bobpng), r.stderr)
    code = oathtool(bob, int(time.time()), "SHA256", 8)
    r = run("--config", cfg, "enrol", "bob@example.org", "--secret", bob, "--confirm", code)
    check("right confirmation code writes the entry",
          r.returncode == 0 and "bob@example.org" in enrolled(), r.stderr)
    code = oathtool(bob, int(time.time()), "SHA256", 8)
    r = run("--config", cfg, "enrol", "carol", "--secret", bob, "--confirm", "-",
            stdin=code + "\n")
    check("interactive confirmation", r.returncode == 0, r.stderr)
    check("a secret shared with another technician is warned about",
          "same secret as 'bob@example.org'" in r.stderr, r.stderr)
    r = run("--config", cfg, "enrol", "dave", "--secret", "JBSWY3DPEHPK3PXP",
            "--dry-run")
    check("a secret under 128 bits is warned about",
          r.returncode == 0 and "80 bits; 128 or more" in r.stderr, r.stderr)

    r = run("--config", cfg, "enrol", "bad id")
    check("invalid ID refused", r.returncode == 2)
    r = run("totp", "now", "--secret", "NOT-BASE32!")
    check("bad secret refused", r.returncode != 0 and "base32" in r.stderr)
    # The prototype's demo secret, default parameters, no config.
    r = subprocess.run([SHIMCTL, "--config", "/nonexistent.yaml", "totp", "now",
                        "--secret", "JBSWY3DPEHPK3PXP", "--time", "1700000000"],
                       capture_output=True, text=True)
    check("totp now matches oathtool for the demo secret",
          r.stdout.strip() == oathtool("JBSWY3DPEHPK3PXP", 1700000000), r.stdout)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
