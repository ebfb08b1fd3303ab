"""Retiring a unit through the built binaries: shimctl decommission refuses
while shimd runs, while recordings are undelivered (saying what would be
lost) and on a misspelled option; with --abandon-undelivered it leaves no
key, secret, log or recorded byte in the storage root, prints a record
signed by the unit's identity, and shimd then refuses to start, saying the
unit is decommissioned; the SOC monitor shows it DECOMMISSIONED (no
alarm); provisioning it again puts it back in service."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

SECRET = "KRUGS4ZANFZSAYJAONSWG4TFOQQGM33S"
ANSWER = re.compile(rb"(Authenticated as [^\r]*\r\n|Auth fail[^\n]*\n)")


def ctl(*args, input=None):
    return subprocess.run([st.SHIMCTL, *args], capture_output=True,
                          text=True, timeout=60, input=input)


def provision(s, d, *extra):
    return ctl("--config", s.config, "provision", "--serial", "SN-0100",
               "--shim-id", "pump-old-01", "--operator", "bench",
               "--storage", s.storage,
               "--technician-port", "pty:" + s.tech_path,
               "--device-port", "pty:" + s.dev_path,
               "--inventory-key", os.path.join(d, "prov.key"), *extra)


def provisioned_and_enrolled(s, d, enrol=True):
    r = ctl("inventory", "keygen", "--out", os.path.join(d, "prov.key"))
    assert r.returncode == 0, r.stderr
    os.unlink(s.config)
    r = provision(s, d)
    assert r.returncode == 0, r.stderr
    if enrol:
        r = ctl("--config", s.config, "enrol", "tech@example.org",
                "--secret", SECRET, "--confirm", st.totp(SECRET))
        assert r.returncode == 0, r.stderr


def storage_files(root):
    out = []
    for dp, dn, fn in os.walk(root):
        out += [os.path.join(dp, f) for f in fn]
    return sorted(out)


def test_decommission_whole_path():
    s = st.Shim()
    d = s.dir
    try:
        provisioned_and_enrolled(s, d, enrol=False)
        # the SOC keeps the unit's inventory record
        shutil.copy(os.path.join(s.storage, "inventory.inv"),
                    os.path.join(d, "saved.inv"))
        r = ctl("--config", s.config, "enrol", "tech@example.org",
                "--secret", SECRET, "--confirm", st.totp(SECRET))
        assert r.returncode == 0, r.stderr
        s.techs = {"tech@example.org": SECRET}
        ident_pem = open(os.path.join(s.storage, "keys",
                                      "identity.key")).read()
        # a session, so that there is a recording
        s.start()
        dev = s.connect_dev()
        t = s.connect_tech()
        epoch = st.safe_epoch(margin=5)
        t.write(("tech@example.org %s\r" % st.totp(SECRET, epoch)).encode())
        assert b"Authenticated as" in t.read_until(ANSWER, 6)
        t.write(b"SERVICE MENU\r")
        assert b"SERVICE MENU" in dev.read_exact(13, 5)
        r = ctl("--config", s.config, "decommission", "--yes",
                "--abandon-undelivered")
        assert r.returncode == 1 and "shimd is running" in r.stderr, \
            r.stderr
        assert ctl("--config", s.config, "end-session").returncode == 0
        t.close()
        s.stop()

        before = storage_files(s.storage)
        r = ctl("--config", s.config, "decommission", "--yes")
        assert r.returncode == 1 and "would lose" in r.stderr and \
            "1 recording(s)" in r.stderr, r.stderr
        r = ctl("--config", s.config, "decommission", "--yes",
                "--abandon-undelivred")
        assert r.returncode == 2, r.stderr
        r = ctl("--config", s.config, "decommission",
                "--abandon-undelivered", input="wrong-id\n")
        assert r.returncode == 1 and "not confirmed" in r.stderr, r.stderr
        assert storage_files(s.storage) == before, "refusals erased files"

        r = ctl("--config", s.config, "decommission", "--abandon-undelivered",
                "--operator", "Jo Bloggs", "--out",
                os.path.join(d, "decom.txt"), input="pump-old-01\n")
        assert r.returncode == 0, r.stderr
        record = r.stdout
        assert record.startswith("shim-decommission 1\nserial SN-0100\n"), \
            record
        assert "undelivered_recordings 1\n" in record
        assert "operator Jo Bloggs\n" in record
        # nothing but the marker is left, and no key or recorded byte
        left = storage_files(s.storage)
        assert left == [os.path.join(s.storage, "DECOMMISSIONED")], left
        assert open(left[0]).read() == record
        blob = open(left[0], "rb").read()
        assert b"PRIVATE KEY" not in blob and b"SERVICE MENU" not in blob
        assert ident_pem.encode() not in blob
        assert not os.path.exists(os.path.join(s.storage,
                                               "technicians.yaml"))

        # shimd refuses to start, and says why
        p = subprocess.run([st.SHIMD, "--config", s.config],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0 and "decommissioned" in p.stderr, \
            p.stderr
        assert storage_files(s.storage) == left, "shimd created files"
        r = ctl("--config", s.config, "decommission", "--yes")
        assert r.returncode == 1 and "already decommissioned" in r.stderr

        # the SOC: the unit's inventory record plus its decommission
        # record -> DECOMMISSIONED, not an alarm
        inv = os.path.join(d, "inventory")
        os.mkdir(inv)
        shutil.copy(os.path.join(d, "saved.inv"),
                    os.path.join(inv, "pump-old-01.inv"))
        shutil.copy(os.path.join(d, "decom.txt"),
                    os.path.join(inv, "pump-old-01.decom"))
        open(os.path.join(d, "empty.log"), "w").close()
        r = ctl("monitor", "--inventory", inv, "--authority",
                os.path.join(d, "prov.key.pub"), "--log",
                os.path.join(d, "empty.log"), "--json")
        doc = json.loads(r.stdout)
        v = doc["shims"][0]
        assert v["verdict"] == "DECOMMISSIONED" and not v["alarm"] and \
            r.returncode == 0, r.stdout + r.stderr
        # a forged decommission record (not signed by the unit) is ignored
        forged = open(os.path.join(d, "decom.txt")).read().replace(
            "operator Jo Bloggs", "operator Mallory")
        open(os.path.join(inv, "pump-old-01.decom"), "w").write(forged)
        r = ctl("monitor", "--inventory", inv, "--authority",
                os.path.join(d, "prov.key.pub"), "--log",
                os.path.join(d, "empty.log"), "--json")
        v = json.loads(r.stdout)["shims"][0]
        assert v["verdict"] == "MISSING" and "not a decommission record" \
            in r.stderr, r.stdout + r.stderr

        # provisioned again, it runs
        r = provision(s, d)
        assert r.returncode == 0 and "in service again" in r.stdout, \
            r.stdout + r.stderr
        s.start()
        s.stop()
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.stop()


def test_interrupted_erase_leaves_a_unit_that_refuses_to_start():
    """A decommission killed half-way through the erase (power cut, kill)
    must not leave a unit that starts again with part of its keys: the
    marker is written before anything is erased, shimd refuses to start,
    and running decommission again finishes the erase."""
    assert shutil.which("strace"), "strace: scripts/install-deps.sh"
    s = st.Shim()
    d = s.dir
    try:
        provisioned_and_enrolled(s, d)
        ident = os.path.join(s.storage, "keys", "identity.key")
        assert os.path.exists(ident)
        # killed by the kernel at the moment it removes the identity key
        # (already overwritten by then): the erase stops half-way
        p = subprocess.run(
            ["strace", "-qq", "-f", "-o", "/dev/null", "-P", ident,
             "-e", "trace=unlink,unlinkat",
             "-e", "inject=unlink,unlinkat:signal=SIGKILL",
             st.SHIMCTL, "--config", s.config, "decommission", "--yes"],
            capture_output=True, text=True, timeout=60)
        assert p.returncode != 0, p.stderr
        marker = os.path.join(s.storage, "DECOMMISSIONED")
        assert os.path.exists(marker), storage_files(s.storage)
        assert len(storage_files(s.storage)) > 1, "nothing was left over"
        assert open(marker).read().startswith("shim-decommission 1\n")
        # the half-erased unit does not start
        p = subprocess.run([st.SHIMD, "--config", s.config],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0 and "decommissioned" in p.stderr, p.stderr
        # running it again finishes the erase and keeps the record
        record = open(marker).read()
        r = ctl("--config", s.config, "decommission", "--yes")
        assert r.returncode == 0 and "interrupted" in r.stderr, r.stderr
        left = storage_files(s.storage)
        assert left == [marker], left
        assert open(marker).read() == record
        r = ctl("--config", s.config, "decommission", "--yes")
        assert r.returncode == 1 and "already decommissioned" in r.stderr
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.stop()


if __name__ == "__main__":
    sys.exit(st.run(st.tests_of(globals())))
