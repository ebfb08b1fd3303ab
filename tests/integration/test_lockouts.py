"""shimctl lockouts, state dump and status --json against a running shimd, as a
clinical engineer uses them: IDs locked out by failures are listed with the
time left (enrolled or not), reset-lockout clears one and the list follows,
and status --json is machine-readable with the SIEM link shown as disabled
when no SIEM is configured."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402


def ctl(s, *args):
    return subprocess.run([st.SHIMCTL, "--config", s.config, *args],
                          capture_output=True, text=True, timeout=30)


def test_lockouts_listed_and_cleared():
    def body(s):
        s.connect_dev()
        t = s.connect_tech()
        # two wrong codes lock alice, and an ID nobody enrolled
        for tid in ("alice@example.org", "mallory"):
            bad = "%06d" % ((int(s.code("alice@example.org")) + 1) % 1000000)
            for _ in range(2):
                assert b"Auth fail" in s.auth(t, tid, code=bad)
                t.read_until(st.PROMPT, 5)
        r = ctl(s, "lockouts", "--json")
        assert r.returncode == 0, r.stderr
        rows = json.loads(r.stdout)["lockouts"]
        byid = {x["id"]: x for x in rows}
        assert set(byid) == {"alice@example.org", "mallory"}, rows
        assert byid["alice@example.org"]["enrolled"] is True
        assert byid["mallory"]["enrolled"] is False
        for x in rows:
            assert 0 < x["seconds_left"] <= 600, x
            assert x["until"].endswith("Z") and "T" in x["until"], x
        r = ctl(s, "lockouts")
        assert "alice@example.org" in r.stdout and "LEFT" in r.stdout, r.stdout

        r = ctl(s, "status", "--json")
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["lockouts"] == 2 and doc["state"] == "CHALLENGE", doc
        assert doc["siem_link"] == "disabled (transport: noop)", doc
        assert doc["shim_id"] == "shim" and doc["session"] is None, doc

        # the durable state says the same, read from its slots
        r = ctl(s, "state", "dump")
        assert r.returncode == 0, r.stderr
        assert "gate-state.slots" in r.stdout and "<- read" in r.stdout, \
            r.stdout
        assert "mallory until" in r.stdout, r.stdout
        row = [x for x in r.stdout.splitlines()
               if x.startswith("alice@example.org")][0]
        assert row.split()[4] == "2", row  # failures counted
        assert s.techs["alice@example.org"] not in r.stdout

        r = ctl(s, "reset-lockout", "alice@example.org")
        assert r.returncode == 0 and "cleared" in r.stdout, r.stdout
        r = ctl(s, "lockouts", "--json")
        assert [x["id"] for x in json.loads(r.stdout)["lockouts"]] == \
            ["mallory"], r.stdout
        r = ctl(s, "reset-lockout", "nobody@example.org")
        assert "not an enrolled technician" in r.stdout, r.stdout
        r = ctl(s, "lockouts", "--bogus")
        assert r.returncode == 2 and r.stdout == "", r.stdout
    st.with_shim(body, totp_cfg={"max_failures": 2, "lockout_seconds": 600})


if __name__ == "__main__":
    st.need_binaries()
    sys.exit(st.run(st.tests_of(globals())))
