"""The sealed enrolment store and the whole life of a unit, through the
built binaries: provision -> enrol (into the sealed store, taken up by the
running shimd without a restart) -> session -> the unit fails -> its
replacement is restored from the central escrow copy, refusing the codes
the old unit accepted and accepting the next -> the old unit is
decommissioned and refuses to start -> the SOC monitor sees the new unit
with a verified inventory record and the old one as decommissioned. Also:
listing and removal (live), import of a prototype config's inline
secrets, and the refusals (a transfer for another unit, an unsigned
inventory record, a store from another unit, a tampered store)."""
import json
import os
import shutil
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402
from test_daemon_tamper import SyslogReceiver  # noqa: E402

SECRET = "KRUGS4ZANFZSAYJAONSWG4TFOQQGM33SKRUGS4ZA"
TECH = "tech@example.org"
PERIOD = 5


def ctl(*args, input=None):
    return subprocess.run([st.SHIMCTL, *args], capture_output=True,
                          text=True, timeout=60, input=input)


def provision(s, d, serial, shim_id, *extra):
    os.path.exists(s.config) and os.unlink(s.config)
    r = ctl("--config", s.config, "provision", "--serial", serial,
            "--shim-id", shim_id, "--operator", "bench",
            "--storage", s.storage,
            "--technician-port", "pty:" + s.tech_path,
            "--device-port", "pty:" + s.dev_path,
            "--inventory-key", os.path.join(d, "prov.key"),
            "--enrolment-custody-key", os.path.join(d, "custody.key.pub"),
            *extra)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(s.config, "a") as f:
        f.write("totp:\n  period: %d\n" % PERIOD)
    s.period = PERIOD
    s.name = shim_id


def with_siem(s, port):
    with open(s.config, "a") as f:
        f.write("siem:\n  transport: syslog-tcp\n  insecure: true\n"
                "  host: 127.0.0.1\n  port: %d\ntamper:\n"
                "  heartbeat_period: 1\n" % port)


def files_under(*roots):
    out = []
    for root in roots:
        for dp, dn, fn in os.walk(root):
            out += [os.path.join(dp, f) for f in fn]
    return out


def secret_in_clear(roots, secret_b32):
    raw = __import__("base64").b32decode(secret_b32)
    hits = []
    for p in files_under(*roots):
        try:
            if not stat.S_ISREG(os.lstat(p).st_mode):
                continue  # the pseudo-terminals' links
            blob = open(p, "rb").read()
        except OSError:
            continue
        if secret_b32.encode() in blob or raw in blob:
            hits.append(p)
    return hits


def keys(d):
    for name in ("prov.key", "custody.key"):
        if not os.path.exists(os.path.join(d, name)):
            verb = "inventory" if name == "prov.key" else "enrolment"
            r = ctl(verb, "keygen", "--out", os.path.join(d, name))
            assert r.returncode == 0, r.stderr


def login(s, t, code):
    t.write(("%s %s\r" % (TECH, code)).encode())
    return t.read_until(st.AUTH_ANSWER, 10)


def wait_step_after(mark_step):
    """Waits (bounded) until the current step is past mark_step."""
    deadline = time.time() + 4 * PERIOD
    while time.time() // PERIOD <= mark_step and time.time() < deadline:
        time.sleep(0.2)  # the TOTP step must advance: time is the point


def test_whole_life_of_a_unit():
    base = st.Shim(techs={})
    d = base.dir
    a = st.Shim(techs={}, base=d)
    b = st.Shim(techs={}, base=d)
    recv = SyslogReceiver(os.path.join(d, "siem.log"))
    try:
        keys(d)
        provision(a, d, "SN-A-0001", "pump-a")
        provision(b, d, "SN-B-0002", "pump-b")
        with_siem(b, recv.port)
        shutil.copy(os.path.join(a.storage, "inventory.inv"),
                    os.path.join(d, "pump-a.inv"))

        # enrol while shimd runs: taken up without a restart
        a.start()
        dev = a.connect_dev()
        t = a.connect_tech()
        r = ctl("--config", a.config, "enrol", TECH, "--secret", SECRET,
                "--confirm", st.totp(SECRET, period=PERIOD))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "shimd took the change into use" in r.stdout, r.stdout
        assert "Escrow copy" in r.stdout, r.stdout
        a.techs = {TECH: SECRET}
        assert os.path.exists(os.path.join(a.storage, "technicians.sealed"))
        assert secret_in_clear([a.dir], SECRET) == [], \
            secret_in_clear([a.dir], SECRET)
        ans = login(a, t, a.code(TECH))
        assert b"Authenticated as" in ans, ans + a.log()[-2000:].encode()
        used_code = a.code(TECH)
        used_step = int(time.time()) // PERIOD
        t.write(b"SERVICE MENU\r")
        assert b"SERVICE MENU" in dev.read_exact(13, 5)
        r = ctl("--config", a.config, "technicians", "list", "--json")
        row = json.loads(r.stdout)["technicians"][0]
        assert row["id"] == TECH and row["source"] == "store" and \
            row["last_success"] and row["algorithm"] == "SHA1" and \
            row["period"] == PERIOD, r.stdout
        assert SECRET not in r.stdout
        assert ctl("--config", a.config, "end-session").returncode == 0
        t.close()
        # the unit fails: nothing more can be asked of it
        a.stop()

        # central: the escrow copy, re-sealed for the replacement that
        # the provisioning authority vouches for
        escrow = os.path.join(a.storage, "escrow", "enrolment.sealed")
        transfer = os.path.join(d, "to-pump-b.sealed")
        args = ["enrolment", "export", "--escrow", escrow,
                "--custody-key", os.path.join(d, "custody.key"),
                "--authority", os.path.join(d, "prov.key.pub"),
                "--out", transfer]
        forged = os.path.join(d, "forged.inv")
        open(forged, "w").write(open(os.path.join(
            b.storage, "inventory.inv")).read().replace(
                "operator bench", "operator mallory"))
        r = ctl(*args, "--inventory", forged)
        assert r.returncode == 1 and "not signed by" in r.stderr, r.stderr
        assert not os.path.exists(transfer)
        r = ctl(*args, "--inventory", os.path.join(b.storage,
                                                   "inventory.inv"))
        assert r.returncode == 0, r.stderr
        mark = int(time.time()) // PERIOD + 1  # export's step + window

        # a transfer for pump-b does not open on another unit
        r = ctl("--config", a.config, "enrolment", "restore", transfer,
                "--force")
        assert r.returncode == 1 and "another unit" in r.stderr, r.stderr

        # the replacement: restored while it runs, nobody re-enrols
        b.start()
        b.techs = {TECH: SECRET}
        r = ctl("--config", b.config, "enrolment", "restore", transfer)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "shimd took the change into use" in r.stdout, r.stdout
        b.connect_dev()
        t = b.connect_tech()
        ans = login(b, t, used_code)
        assert b"Auth fail" in ans, ans
        b.wait_event("auth_fail", reason="replay")
        assert used_step <= mark
        wait_step_after(mark)
        ans = login(b, t, b.code(TECH))
        assert b"Authenticated as" in ans, ans + b.log()[-2000:].encode()
        assert ctl("--config", b.config, "end-session").returncode == 0
        t.close()

        # the old unit is decommissioned and stays down
        r = ctl("--config", a.config, "decommission", "--yes",
                "--abandon-undelivered", "--out",
                os.path.join(d, "pump-a.decom"))
        assert r.returncode == 0, r.stderr
        p = subprocess.run([st.SHIMD, "--config", a.config],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0 and "decommissioned" in p.stderr, p.stderr
        assert secret_in_clear([a.storage], SECRET) == []

        # the SOC: B verified from its signed record, A decommissioned
        deadline = time.time() + 20
        while time.time() < deadline and open(
                os.path.join(d, "siem.log")).read().count("heartbeat") < 3:
            time.sleep(0.2)  # the receiver writes what shimd sent
        inv = os.path.join(d, "inventory")
        os.mkdir(inv)
        shutil.copy(os.path.join(b.storage, "inventory.inv"),
                    os.path.join(inv, "pump-b.inv"))
        shutil.copy(os.path.join(d, "pump-a.inv"),
                    os.path.join(inv, "pump-a.inv"))
        shutil.copy(os.path.join(d, "pump-a.decom"),
                    os.path.join(inv, "pump-a.decom"))
        r = ctl("monitor", "--inventory", inv, "--authority",
                os.path.join(d, "prov.key.pub"), "--log",
                os.path.join(d, "siem.log"), "--period", "1", "--json")
        doc = json.loads(r.stdout)
        v = {x["shim_id"]: x for x in doc["shims"]}
        assert v["pump-b"]["verdict"] == "OK" and \
            v["pump-b"]["serial"] == "SN-B-0002", r.stdout + r.stderr
        assert v["pump-a"]["verdict"] == "DECOMMISSIONED" and \
            not v["pump-a"]["alarm"], r.stdout
    except Exception:
        for s in (a, b):
            print(s.log()[-3000:])
        raise
    finally:
        recv.close()
        a.stop()
        b.stop()


def test_remove_takes_effect_in_the_running_shimd():
    s = st.Shim(techs={})
    d = s.dir
    try:
        keys(d)
        provision(s, d, "SN-R-0001", "pump-r")
        s.start()
        s.connect_dev()
        r = ctl("--config", s.config, "enrol", TECH, "--secret", SECRET)
        assert r.returncode == 0, r.stderr
        s.techs = {TECH: SECRET}
        t = s.connect_tech()
        assert b"Authenticated as" in login(s, t, s.code(TECH))
        r = ctl("--config", s.config, "technicians", "remove", TECH)
        assert r.returncode == 0 and "shimd took the change" in r.stdout, \
            r.stdout + r.stderr
        # the removed technician's open session ends at once
        s.wait_event("session_end", timeout=10)
        s.wait_event("technicians_changed", removed=1)
        # the technician sees the end and a fresh prompt; reading it keeps
        # that prompt from being taken for the renewed line's
        seen = t.read_until(st.PROMPT, 10)
        assert b"ended: technician_removed" in seen, seen
        t.close()
        s.wait_tech_gone(5)
        t = s.reconnect_tech()
        ans = s.auth(t, TECH, steps=1)
        assert b"Auth fail" in ans, ans
        s.wait_event("auth_fail", reason="bad_user")
        r = ctl("--config", s.config, "technicians", "list")
        assert TECH not in r.stdout and "no technicians" in r.stdout, r.stdout
        r = ctl("--config", s.config, "technicians", "remove", TECH)
        assert r.returncode == 1 and "not enrolled" in r.stderr, r.stderr
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.stop()


def test_import_moves_inline_secrets_into_the_store():
    s = st.Shim()  # the prototype's way: secrets inline in the config
    try:
        tid, sec = next(iter(s.techs.items()))
        os.makedirs(s.storage, mode=0o700)
        r = ctl("--config", s.config, "technicians", "list")
        assert r.returncode == 0 and tid in r.stdout and "config" in \
            r.stdout, r.stdout + r.stderr
        r = ctl("--config", s.config, "technicians", "import")
        assert r.returncode == 0, r.stderr
        assert "delete the technicians: block" in r.stdout, r.stdout
        r = ctl("--config", s.config, "technicians", "list", "--json")
        rows = json.loads(r.stdout)["technicians"]
        assert [x["source"] for x in rows if x["id"] == tid] == ["store"], \
            r.stdout
        # the operator deletes the inline block: the store alone serves
        text = open(s.config).read()
        s.write_config(text[:text.index("technicians:")])
        assert secret_in_clear([s.dir], sec) == []
        s.start()
        s.connect_dev()
        t = s.connect_tech()
        t.write(("%s %s\r" % (tid, s.code(tid))).encode())
        ans = t.read_until(st.AUTH_ANSWER, 10)
        assert b"Authenticated as" in ans, ans
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.stop()


def test_a_store_that_does_not_open_keeps_shimd_down():
    s = st.Shim(techs={})
    d = s.dir
    try:
        keys(d)
        provision(s, d, "SN-T-0001", "pump-t")
        r = ctl("--config", s.config, "enrol", TECH, "--secret", SECRET)
        assert r.returncode == 0, r.stderr
        store = os.path.join(s.storage, "technicians.sealed")
        blob = bytearray(open(store, "rb").read())
        blob[40] ^= 1
        open(store, "wb").write(bytes(blob))
        p = subprocess.run([st.SHIMD, "--config", s.config],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0 and "does not open with this unit's " \
            "storage key" in p.stderr, p.stderr
        r = ctl("--config", s.config, "technicians", "list")
        assert r.returncode == 1 and "does not open" in r.stderr, r.stderr
        # a store from another unit does not open either
        other = st.Shim(techs={}, base=d)
        provision(other, d, "SN-T-0002", "pump-t2")
        r = ctl("--config", other.config, "enrol", TECH, "--secret", SECRET)
        assert r.returncode == 0, r.stderr
        shutil.copy(os.path.join(other.storage, "technicians.sealed"), store)
        r = ctl("--config", s.config, "technicians", "list")
        assert r.returncode == 1 and "does not open" in r.stderr, r.stderr
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.stop()


if __name__ == "__main__":
    st.need_binaries()
    sys.exit(st.run(st.tests_of(globals())))
