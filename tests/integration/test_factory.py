"""The factory-test mode: present only in a factory build (cmake
-DSHIM_FACTORY=ON), where a factory_jumper input lets tamper sensors report
without latching, so that a unit can be enrolled and provisioned with its
case open. The deployed build provably lacks it: no symbol or message of
the mode in its binaries, the configuration role refused with file:line,
and its heartbeats and inventory record say "deployed"."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402
import test_daemon_tamper as td  # noqa: E402

SRC = os.environ.get("SHIM_SRC", ".")
# The mode's own messages: none may be in a deployed binary.
MODE_STRINGS = [b"factory-test mode", b"factory-test build",
                b"reported, not latched", b"report without latching"]


def factory_build():
    out = os.path.join(st.BUILD, "factory")
    r = subprocess.run(["cmake", "-S", SRC, "-B", out, "-DSHIM_FACTORY=ON",
                        "-DSHIM_TESTS=OFF", "-DBUILD_TESTING=OFF",
                        "-DSHIM_SANITIZE=OFF", "-DCMAKE_BUILD_TYPE=Release"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", out, "-j", "2", "--target",
                        "shimd", "shimctl"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return os.path.join(out, "shimd"), os.path.join(out, "shimctl")


def jumper_shim(**kw):
    s = td.TamperShim(heartbeat=1.0, **kw)
    s.jumper = os.path.join(s.dir, "jumper")
    with open(s.config) as f:
        text = f.read()
    text = text.replace("  sensors:\n", "  sensors:\n    - {type: file, path: %s,"
                        " role: factory_jumper}\n" % s.jumper, 1)
    s.write_config(text)
    return s


def test_deployed_binaries_lack_the_mode():
    for b in (st.SHIMD, st.SHIMCTL):
        syms = subprocess.run(["nm", b], capture_output=True,
                              text=True).stdout
        assert "factory" not in syms.lower(), \
            [l for l in syms.splitlines() if "factory" in l.lower()]
        blob = open(b, "rb").read()
        for m in MODE_STRINGS:
            assert m not in blob, (b, m)


def test_deployed_build_refuses_the_role():
    s = jumper_shim()
    try:
        r = subprocess.run([st.SHIMD, "--check-config", s.config],
                           capture_output=True, text=True)
        out = r.stdout + r.stderr
        line = [i + 1 for i, l in enumerate(open(s.config))
                if "factory_jumper" in l][0]
        assert r.returncode != 0, out
        assert "%s:%d:" % (s.config, line) in out and \
            "exists only in a factory build" in out, out
    finally:
        s.stop()


def test_deployed_heartbeats_say_deployed():
    s = td.TamperShim(heartbeat=1.0)
    try:
        s.start()
        hb = s.wait_event("heartbeat")[0]
        assert hb.get("build") == "deployed", hb
    finally:
        s.stop()


def test_factory_jumper_reports_without_latching():
    shimd, shimctl = factory_build()
    saved = st.SHIMD, st.SHIMCTL
    st.SHIMD, st.SHIMCTL = shimd, shimctl
    s = jumper_shim()
    try:
        with open(s.jumper, "w") as f:
            f.write("in\n")
        s.start()
        s.wait_log("factory-test build")
        hb = s.wait_event("heartbeat")[0]
        assert hb.get("build") == "factory", hb
        dev = s.connect_dev()
        t = s.connect_tech()
        td.trip(s)
        s.wait_log("reported, not latched")
        ev = [e for e in s.wait_event("tamper")
              if e.get("latched") == "no"]
        assert ev and ev[0].get("field_event") == "case_opened", s.events()
        assert not s.events("emergency_stop")
        # the gate still works with the case open
        st.safe_epoch()
        s.login(t)
        t.write(b"CAL 1\r")
        assert dev.read_exact(6, 5) == b"CAL 1\r"
        assert s.ctl("end-session").returncode == 0
        # jumper out, case closed and opened again: it latches
        os.unlink(s.jumper)
        os.unlink(s.case)
        s.wait_log("sensor case_opened cleared")
        td.trip(s)
        s.wait_event("emergency_stop")
        # the factory build's inventory record says so
        r = subprocess.run([shimctl, "--config", s.config, "inventory",
                            "create", "--serial", "SN-F1", "--operator",
                            "factory", "--binary", shimd],
                           capture_output=True, text=True)
        assert r.returncode == 0 and "\nbuild factory\n" in r.stdout, \
            r.stdout + r.stderr
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.stop()
        st.SHIMD, st.SHIMCTL = saved


if __name__ == "__main__":
    sys.exit(st.run(st.tests_of(globals())))
