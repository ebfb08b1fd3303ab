#!/usr/bin/env python3
"""shimctl session verify/list/export on real recordings: a recording with
traffic that never reached the disk is `degraded` (exit 10) with the bytes
not recorded per direction; a signer nobody pinned is `identity not
pinned` (exit 11) even when everything else is intact; the right
--identity makes it intact, another one is the wrong-identity verdict
(exit 8); and every meta record appears in the jsonl, asciicast and text
exports. Recordings come from shimd itself (storage failing mid-session
through RLIMIT_FSIZE, as in test_daemon_storage.py) and from
tests/helpers/rec-writer (the recorder as shimd uses it), including a
real filesystem that fills up and then frees space again."""

import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shimtest as st  # noqa: E402

WRITER = os.path.join(st.BUILD, "tests", "rec-writer")

EX_INTACT, EX_IDENTITY, EX_DEGRADED, EX_UNPINNED = 0, 8, 10, 11

DAEMON_METAS = [
    ("session_start", "alice@example.org"),
    ("technician_hangup", ""),
    ("technician_returned", "alice@example.org"),
    ("break", "technician"),
    ("device_logout", "logout"),
    ("device_reset", "dtr"),
    ("recording_failed", "No space left on device"),
]


def ctl(cfg, *args):
    return subprocess.run([st.SHIMCTL, "--config", cfg] + list(args),
                          capture_output=True, text=True, timeout=60)


def jsonl(cfg, target, *extra):
    r = ctl(cfg, "session", "export", target, "--format", "jsonl", *extra)
    return r, [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def verify_lines(out):
    """The 'key: value' lines of verify's report, as a dict."""
    d = {}
    for l in out.splitlines():
        m = re.match(r"\s+([a-z ,]+): (.*)$", l)
        if m:
            d[m.group(1)] = m.group(2)
    return d


def gap_split(lines):
    """Per-direction bytes the jsonl gap markers give, read independently
    of shimctl: (total, in, out) over 'N bytes not recorded' and
    'N bytes not recorded (in I, out O)'."""
    tot = gin = gout = 0
    for l in lines:
        if l.get("type") != "meta" or l["event"] != "recording_gap":
            continue
        m = re.fullmatch(r"(\d+) bytes not recorded(?: \(in (\d+), out (\d+)\))?",
                         l["detail"])
        assert m, "gap marker detail: %r" % l["detail"]
        tot += int(m.group(1))
        if m.group(2) is not None:
            gin += int(m.group(2))
            gout += int(m.group(3))
    return tot, gin, gout


def check_degraded_report(cfg, target, sent_total):
    """verify on a degraded recording: its verdict, exit code and the
    bytes not recorded, in total and per direction, against the export."""
    v = ctl(cfg, "session", "verify", target)
    assert v.returncode == EX_DEGRADED, (v.returncode, v.stdout, v.stderr)
    assert ": DEGRADED\n" in v.stdout, v.stdout
    assert "verdict: degraded (" in v.stdout, v.stdout
    rep = verify_lines(v.stdout)
    r, lines = jsonl(cfg, target)
    assert r.returncode == EX_DEGRADED, (r.returncode, r.stderr)
    assert "degraded" in r.stderr
    ftr = lines[-1]
    assert ftr["type"] == "session_footer" and ftr["degraded"] is True
    recorded = sum(l["len"] for l in lines if l["type"] == "traffic")
    gtot, gin, gout = gap_split(lines)
    total = max(ftr["dropped_bytes"], gtot)
    assert total > 0
    if sent_total is not None:
        # recorded plus not recorded is every byte that was relayed
        assert recorded + ftr["dropped_bytes"] == sent_total, \
            (recorded, ftr["dropped_bytes"], sent_total)
    m = re.fullmatch(r"(\d+) bytes in total", rep["not recorded"])
    assert m and int(m.group(1)) == total, (rep, total)
    m = re.fullmatch(r"in (\d+), out (\d+), unknown (\d+)",
                     rep["not recorded by direction"])
    assert m, rep
    assert (int(m.group(1)), int(m.group(2))) == (gin, gout), (m.groups(), gin, gout)
    assert int(m.group(1)) + int(m.group(2)) + int(m.group(3)) == total
    # list shows it as degraded, and --json has the field
    # (list does not decrypt: it knows what the footer says)
    in_footer = (ftr["dropped_bytes"] > 0 or
                 "recording_degraded" in ftr["flags"])
    row = [l for l in ctl(cfg, "session", "list").stdout.splitlines()
           if l.startswith(lines[0]["session_id"])]
    assert len(row) == 1, row
    assert row[0].rstrip().endswith("degraded") == in_footer, row
    lj = [json.loads(l) for l in
          ctl(cfg, "session", "list", "--json").stdout.splitlines()]
    e = [x for x in lj if x["session_id"] == lines[0]["session_id"]][0]
    assert e["degraded"] is in_footer, e
    assert (e["status"] == "degraded") is in_footer, e
    assert e["dropped_bytes"] == ftr["dropped_bytes"], e
    assert e["identity_pinned"] is True, e
    return rep, lines


# ---- shimd: storage fails mid-session ------------------------------------

LIMIT = 256 * 1024


limited = st.fsize_limited(LIMIT)


def test_shimd_storage_failure_verifies_degraded():
    s = st.Shim()
    try:
        s.start(preexec_fn=limited)
        dev = s.connect_dev()
        t = s.connect_tech()
        st.safe_epoch()
        sid = s.login(t)
        data = bytes(range(256)) * 2048          # 512 KiB, twice the limit
        for i in range(0, len(data), 4096):
            t.write(data[i:i + 4096])
            dev.read_exact(4096, 20)
        s.wait_log("recording degraded", timeout=10)
        reply = b"device says hello\r\n"
        dev.write(reply)
        t.read_exact(len(reply), 10)
        time.sleep(0.3)
        assert s.stop() == 0
        rec = os.path.join(s.storage, "sessions", sid + ".rec")
        assert os.path.exists(rec), os.listdir(os.path.join(s.storage,
                                                            "sessions"))
        rep, lines = check_degraded_report(s.config, sid,
                                           len(data) + len(reply))
        ftr = lines[-1]
        assert "recording_degraded" in ftr["flags"]
        # the bytes are there in the report, not just a flag
        assert int(rep["not recorded"].split()[0]) >= len(data) - LIMIT

        # the same file away from the shim, without any pinned key
        away = os.path.join(s.dir, "away.rec")
        shutil.copyfile(rec, away)
        v = ctl(os.path.join(s.dir, "none.yaml"), "session", "verify", away)
        assert v.returncode == EX_UNPINNED, (v.returncode, v.stdout)
        assert "identity not pinned" in v.stdout and "degraded" in v.stdout
    except Exception:
        print(s.log()[-4000:])
        raise
    finally:
        s.cleanup()


# ---- rec-writer: pinning, meta records, gaps ------------------------------

class Store:
    """A storage root and config for rec-writer and shimctl."""

    def __init__(self, name, root=None):
        self.dir = tempfile.mkdtemp(prefix="sv-%s." % name)
        self.root = root or os.path.join(self.dir, "st")
        self.cfg = os.path.join(self.dir, "config.yaml")
        with open(self.cfg, "w") as f:
            f.write("shim:\n  id: \"shim-sv-%s\"\n"
                    "serial:\n  technician_side_path: \"pty:%s/tech\"\n"
                    "  device_side_path: \"pty:%s/dev\"\n  baudrate: 9600\n"
                    "storage:\n  root: \"%s\"\n  min_free_bytes: 0\n"
                    "recording:\n  sync_interval_ms: 50\n"
                    % (name, self.dir, self.dir, self.root))
        os.chmod(self.cfg, 0o600)
        self.sessions = os.path.join(self.root, "sessions")

    def writer(self, *args):
        r = subprocess.run([WRITER, "--config", self.cfg] + list(args),
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return [l.split()[1] for l in r.stdout.splitlines()
                if l.startswith("session ")][0]

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def meta_args():
    out = []
    for name, detail in DAEMON_METAS[1:]:
        out += ["--meta", name + (":" + detail if detail else "")]
    return out


def test_identity_pinning():
    s = Store("pin")
    try:
        sid = s.writer("--bursts", "2", "--chunk-size", "50",
                       "--pause-ms", "80")
        rec = os.path.join(s.sessions, sid + ".rec")
        pub = os.path.join(s.dir, "identity.pub")
        k = ctl(s.cfg, "keygen", "identity")
        assert k.returncode == 0 and "BEGIN PUBLIC KEY" in k.stdout
        with open(pub, "w") as f:
            f.write(k.stdout)
        other = os.path.join(s.dir, "other.key")
        k = ctl(s.cfg, "keygen", "identity", "--out", other)
        assert k.returncode == 0, k.stderr
        other_pub = os.path.join(s.dir, "other.pub")
        assert os.path.exists(other_pub)
        away = os.path.join(s.dir, "away.rec")
        shutil.copyfile(rec, away)
        nocfg = os.path.join(s.dir, "absent.yaml")

        # pinned by the shim's own key through --config
        v = ctl(s.cfg, "session", "verify", sid)
        assert v.returncode == EX_INTACT, (v.returncode, v.stdout)
        assert ": OK\n" in v.stdout and "verdict: intact" in v.stdout

        # nothing pins it: its own verdict and exit code, though intact
        v = ctl(nocfg, "session", "verify", away)
        assert v.returncode == EX_UNPINNED, (v.returncode, v.stdout)
        assert "verdict: identity not pinned" in v.stdout
        assert "verdict: intact" not in v.stdout
        # the export says so too, and does not claim the footer verified
        r, lines = jsonl(nocfg, away, "--key",
                         os.path.join(s.root, "keys", "recording.key"))
        assert r.returncode == EX_UNPINNED and "identity not pinned" in r.stderr
        assert lines[-1]["verified"] is False
        assert lines[-1]["identity_pinned"] is False

        # --identity with the right public key: intact
        v = ctl(nocfg, "session", "verify", away, "--identity", pub)
        assert v.returncode == EX_INTACT, (v.returncode, v.stdout)
        assert "verdict: intact" in v.stdout
        # with the right private key file too
        v = ctl(nocfg, "session", "verify", away, "--identity",
                os.path.join(s.root, "keys", "identity.key"))
        assert v.returncode == EX_INTACT, (v.returncode, v.stdout)

        # another identity: the wrong-identity verdict, from either side
        for cfg in (nocfg, s.cfg):
            v = ctl(cfg, "session", "verify", away, "--identity", other_pub)
            assert v.returncode == EX_IDENTITY, (v.returncode, v.stdout)
            assert "IDENTITY" in v.stdout

        # an --identity that cannot be read is an error, not "unpinned"
        v = ctl(nocfg, "session", "verify", away, "--identity",
                os.path.join(s.dir, "missing.pub"))
        assert v.returncode == 1, v.returncode
    finally:
        s.cleanup()


def test_meta_records_in_every_export():
    s = Store("meta")
    try:
        sid = s.writer("--bursts", "1", "--burst-chunks", "4",
                       "--chunk-size", "20", "--pause-ms", "80",
                       *meta_args())
        want = DAEMON_METAS + [("burst", "done")]

        r, lines = jsonl(s.cfg, sid)
        assert r.returncode == 0, r.stderr
        metas = [l for l in lines if l["type"] == "meta"]
        assert [(m["event"], m["detail"]) for m in metas] == want, metas
        for m in metas:
            assert list(m.keys()) == ["type", "epoch", "monotonic", "event",
                                      "detail"], m
        v = ctl(s.cfg, "session", "verify", sid)
        assert v.returncode == 0 and "%d meta records" % len(want) in v.stdout

        cast = os.path.join(s.dir, "s.cast")
        r = ctl(s.cfg, "session", "export", sid, "--format", "asciicast",
                "--out", cast)
        assert r.returncode == 0, r.stderr
        with open(cast) as f:
            ev = [json.loads(l) for l in f.read().splitlines()[1:]]
        marks = [e[2] for e in ev if e[1] == "m"]
        assert marks == [n + (": " + d if d else "") for n, d in want], marks
        assert [e[0] for e in ev] == sorted(e[0] for e in ev)
        assert all(e[1] in ("o", "i", "m") for e in ev)
        if shutil.which("asciinema"):
            # asciinema cat wants a terminal: give it a pty
            pid, fd = pty.fork()
            if pid == 0:
                os.execvp("asciinema", ["asciinema", "cat", cast])
            got = b""
            while True:
                try:
                    d = os.read(fd, 65536)
                except OSError:
                    break
                if not d:
                    break
                got += d
            os.close(fd)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, got[-500:]
        else:
            print("note: asciinema not installed; replay not checked")

        r = ctl(s.cfg, "session", "export", sid, "--format", "text")
        assert r.returncode == 0, r.stderr
        tl = [l for l in r.stdout.splitlines() if "] * " in l]
        got = [l.split("] * ", 1)[1] for l in tl]
        assert got == [n + (" " + d if d else "") for n, d in want], got
    finally:
        s.cleanup()


def test_gap_markers_split_per_direction():
    """A recording whose gap marker names the directions (the documented
    long form): verify reports the split; the footer alone says nothing
    was dropped, so only the records show it (with the key)."""
    s = Store("split")
    try:
        sid = s.writer("--bursts", "1", "--chunk-size", "10",
                       "--pause-ms", "80", "--meta",
                       "recording_gap:300 bytes not recorded (in 200, out 100)")
        rep, lines = check_degraded_report(s.cfg, sid, None)
        assert rep["not recorded"] == "300 bytes in total", rep
        assert rep["not recorded by direction"] == "in 200, out 100, unknown 0"
        assert lines[-1]["dropped_bytes"] == 0
        # without the recording key the markers cannot be read: verify
        # says what it cannot know
        pub = os.path.join(s.dir, "identity.pub")
        with open(pub, "w") as f:
            f.write(ctl(s.cfg, "keygen", "identity").stdout)
        away = os.path.join(s.dir, "away.rec")
        shutil.copyfile(os.path.join(s.sessions, sid + ".rec"), away)
        v = ctl(os.path.join(s.dir, "absent.yaml"), "session", "verify",
                away, "--identity", pub)
        assert v.returncode == EX_INTACT, (v.returncode, v.stdout)
        assert "not checked" in v.stdout
    finally:
        s.cleanup()


def test_full_then_freed_filesystem_marks_gaps():
    """A real filesystem (a small tmpfs) that fills up mid-session and
    then gets space back: the recording resumes after a recording_gap
    marker; verify is degraded, with every byte accounted for."""
    base = tempfile.mkdtemp(prefix="sv-full.")
    mnt = os.path.join(base, "mnt")
    os.makedirs(mnt)
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs",
                        mnt], capture_output=True)
    if m.returncode != 0:
        print("note: cannot mount a small tmpfs here; freed space not tested")
        shutil.rmtree(base, ignore_errors=True)
        return
    s = Store("full", root=os.path.join(mnt, "st"))
    p = None
    try:
        os.makedirs(s.root, mode=0o700)
        ballast = os.path.join(mnt, "ballast")
        with open(ballast, "wb") as f:
            f.write(b"\xaa" * (400 * 1024))
        bursts, chunks, size = 12, 20, 1000
        p = subprocess.Popen([WRITER, "--config", s.cfg, "--bursts",
                              str(bursts), "--burst-chunks", str(chunks),
                              "--chunk-size", str(size), "--pause-ms", "150"],
                             stdout=subprocess.PIPE, text=True)
        out, sid, freed = [], None, False
        for line in p.stdout:
            out.append(line)
            if line.startswith("session "):
                sid = line.split()[1]
            if line.startswith("failed ") and not freed:
                os.unlink(ballast)
                freed = True
        p.wait(60)
        assert p.returncode == 0, out
        assert freed, "the filesystem never filled: %s" % out
        rep, lines = check_degraded_report(s.cfg, sid, bursts * chunks * size)
        gaps = [l for l in lines if l["type"] == "meta" and
                l["event"] == "recording_gap"]
        assert gaps, "the recording resumed after a marked gap"
        assert int(rep["gap markers"].split()[0]) == len(gaps), rep
        traffic_after = [l for l in lines if l["type"] == "traffic" and
                         l["monotonic"] > gaps[0]["monotonic"]]
        assert traffic_after, "bytes recorded after the gap"
    finally:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
        subprocess.run(["umount", mnt], capture_output=True)
        s.cleanup()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    st.need_binaries(st.SHIMD, st.SHIMCTL, WRITER)
    st.run(st.tests_of(globals()))
