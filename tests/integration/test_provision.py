"""A unit's first day through the built binaries: shimctl provision takes
an empty storage root to a unit that shimd runs (storage tree and modes,
configuration that loads, identity, SIEM CSR, recording and tamper
authority keys, a signed inventory record), a technician is enrolled
into it and logs in, its heartbeats are trusted by the SOC monitor
through the record; provisioning again changes nothing, another serial
or a hand-written configuration is refused without --force."""
import hashlib
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ctl(*args):
    return subprocess.run([st.SHIMCTL, *args], capture_output=True,
                          text=True, timeout=60)


class Bench:
    def __init__(self, s):
        self.s = s
        self.d = s.dir
        p = lambda n: os.path.join(self.d, n)
        self.p = p
        for args in (("inventory", "keygen", "--out", p("prov.key")),
                     ("token", "keygen", "--out", p("tamper.key"),
                      "--pub", p("tamper.pub")),
                     ("keygen", "recording", "--out", p("central.key")),
                     ("breakglass", "keygen", "--out", p("bg.master")),
                     ("breakglass", "provision", "--shim", "pump-ward3-01",
                      "--key", p("bg.master"), "--out", p("bg.key")),
                     ("breakglass", "provision", "--shim", "other-01",
                      "--key", p("bg.master"), "--out", p("bg-other.key"))):
            r = ctl(*args)
            assert r.returncode == 0, r.stderr

    def provision(self, serial="SN-0042", *extra):
        return ctl("--config", self.s.config, "provision", "--serial",
                   serial, "--shim-id", "pump-ward3-01", "--operator",
                   "Jo Bloggs", "--storage", self.s.storage,
                   "--technician-port", "pty:" + self.s.tech_path,
                   "--device-port", "pty:" + self.s.dev_path,
                   "--recording-pub", self.p("central.pub"),
                   "--tamper-authority", self.p("tamper.pub"),
                   "--inventory-key", self.p("prov.key"),
                   "--breakglass-key", self.p("bg.key"), *extra)


def test_provision_to_first_login():
    s = st.Shim()
    b = Bench(s)
    try:
        # the test harness wrote a configuration of its own: refused
        before = open(s.config).read()
        r = b.provision()
        assert r.returncode == 1 and "not written by shimctl provision" \
            in r.stderr, r.stderr
        assert open(s.config).read() == before
        assert not os.path.exists(s.storage), "wrote before refusing"
        r = b.provision("SN-0042", "--force")
        assert r.returncode == 0, r.stderr
        keys = os.path.join(s.storage, "keys")
        assert os.stat(s.storage).st_mode & 0o777 == 0o700
        assert os.stat(keys).st_mode & 0o777 == 0o700
        ident = os.path.join(keys, "identity.key")
        assert os.stat(ident).st_mode & 0o777 == 0o600
        bgk = os.path.join(keys, "breakglass.key")
        assert os.stat(bgk).st_mode & 0o777 == 0o600
        assert open(bgk).read() == open(b.p("bg.key")).read()
        assert 'verify_key: "%s"' % bgk in open(s.config).read()
        csr = open(os.path.join(keys, "siem-client.csr")).read()
        assert "BEGIN CERTIFICATE REQUEST" in csr
        r = subprocess.run([st.SHIMD, "--check-config", s.config],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        inv = os.path.join(s.storage, "inventory.inv")
        r = ctl("inventory", "verify", inv, "--authority",
                b.p("prov.key.pub"), "--json")
        assert r.returncode == 0, r.stderr
        rec = json.loads(r.stdout)
        assert rec["serial"] == "SN-0042" and rec["shim_id"] == \
            "pump-ward3-01" and rec["build"] == "deployed"
        # the record names this unit's identity and recording key
        r = ctl("identity", "pub", "--key", ident)
        assert r.returncode == 0
        with open(inv) as f:
            text = f.read()
        pubhex = re.search(r"identity_pub ([0-9a-f]+)", text).group(1)
        assert len(pubhex) == 130
        assert hashlib.sha256(open(st.SHIMD, "rb").read()).hexdigest() in \
            text, "binary digest is not shimd's"

        # again, the same: nothing replaced
        k1, i1 = sha(ident), open(inv).read()
        time.sleep(1.1)  # a rewritten record would carry a later time
        r = b.provision()
        assert r.returncode == 0 and "nothing replaced" in r.stdout, \
            r.stdout + r.stderr
        assert sha(ident) == k1
        # another shim's break-glass key: refused, nothing changed
        r = ctl("--config", s.config, "provision", "--serial", "SN-0042",
                "--shim-id", "pump-ward3-01", "--operator", "Jo Bloggs",
                "--storage", s.storage, "--breakglass-key",
                b.p("bg-other.key"))
        assert r.returncode == 1 and "not of pump-ward3-01" in r.stderr, \
            r.stderr
        assert sha(ident) == k1
        # another serial: refused, nothing changed
        r = b.provision("SN-9999")
        assert r.returncode == 1 and "provisioned as serial SN-0042" in \
            r.stderr, r.stderr
        assert sha(ident) == k1 and open(inv).read() == i1

        # enrol a technician into the unit and log in through shimd
        code = st.totp(SECRET)
        r = ctl("--config", s.config, "enrol", "tech@example.org",
                "--secret", SECRET, "--confirm", code)
        assert r.returncode == 0, r.stderr
        s.techs = {"tech@example.org": SECRET}
        s.start()
        s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=5)
        t.write(("tech@example.org %s\r" %
                 st.totp(SECRET, epoch)).encode())
        ans = t.read_until(re.compile(rb"(Authenticated as [^\r]*\r\n|"
                                      rb"Auth fail[^\n]*\n)"), 6)
        assert b"Authenticated as tech@example.org; session " in ans, ans
        t.close()
        s.stop()

        # --force re-provisions with a new identity and a new record
        r = b.provision("SN-0043", "--force")
        assert r.returncode == 0, r.stderr
        assert sha(ident) != k1
        r = ctl("inventory", "verify", inv, "--authority",
                b.p("prov.key.pub"), "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["serial"] == \
            "SN-0043", r.stdout + r.stderr
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.stop()


def test_bad_options_write_nothing():
    s = st.Shim()
    b = Bench(s)
    try:
        os.unlink(s.config)
        r = b.provision("SN 42", "--force")
        assert r.returncode == 2 and "serial" in r.stderr, r.stderr
        assert not os.path.exists(s.storage) or \
            not os.path.exists(os.path.join(s.storage, "inventory.inv"))
        r = b.provision("SN-1", "--forse")
        assert r.returncode == 2 and "--forse" in r.stderr, r.stderr
        r = ctl("--config", s.config, "provision", "--serial", "SN-1",
                "--shim-id", "x", "--operator", "o", "--storage",
                s.storage, "--recording-pub", "/nonexistent.pub")
        assert r.returncode == 1 and "/nonexistent.pub" in r.stderr, \
            r.stderr
        assert not os.path.exists(s.config)
        assert not os.path.exists(s.storage)
        r = ctl("provision", "--help")
        assert r.returncode == 0 and "--serial SN" in r.stdout
    finally:
        s.stop()


def test_storage_given_to_shimd_user():
    """Provisioned as root for a shimd that drops to shim.user: the
    configuration names the account and the storage tree is its own."""
    import pwd
    s = st.Shim()
    b = Bench(s)
    try:
        os.unlink(s.config)
        r = b.provision("SN-0042", "--user", "no-such-user-x")
        assert r.returncode == 1 and "no such user" in r.stderr, r.stderr
        assert not os.path.exists(s.storage)
        nobody = pwd.getpwnam("nobody")
        r = b.provision("SN-0042", "--user", "nobody")
        assert r.returncode == 0, r.stderr
        assert 'user: "nobody"' in open(s.config).read()
        for dp, dn, fn in os.walk(s.storage):
            for n in dn + fn:
                assert os.lstat(os.path.join(dp, n)).st_uid == \
                    nobody.pw_uid, os.path.join(dp, n)
        ident = os.path.join(s.storage, "keys", "identity.key")
        assert os.stat(ident).st_mode & 0o777 == 0o600
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(st.run(st.tests_of(globals())))
