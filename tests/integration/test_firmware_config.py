"""shimctl firmware-config: the YAML configuration as the firmware's
provisioning blob, and --show. The blob is also parsed here, independently
of core/provision.c, from the format table in docs/configuration.md."""
import base64
import os
import pty
import shutil
import stat
import struct
import subprocess
import tempfile
import zlib

import shimtest as st

TMP = tempfile.mkdtemp(prefix="shim-fwcfg-")


def ctl(*args, stdin=None, stdout=subprocess.PIPE):
    return subprocess.run([st.SHIMCTL, "firmware-config", *args],
                          input=stdin, stdout=stdout, stderr=subprocess.PIPE,
                          timeout=30)


def b32(secret):
    return base64.b32decode(secret + "=" * (-len(secret) % 8))


def write_config(name, body):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, 0o600)
    return path


def two_tech_config(name="two.yaml", extra=""):
    return write_config(name, f"""shim:
  id: "shim-fw-01"
serial:
  technician_side_path: "pty:{TMP}/tech"
  device_side_path: "pty:{TMP}/dev"
totp:
  algorithm: SHA256
  digits: 8
  period: 60
  window: 2
  max_failures: 3
  lockout_seconds: 600
  rate_limit_failures: 10
  rate_limit_seconds: 120
storage:
  root: "{TMP}/storage"
session:
  idle_timeout: 120
  max_duration: 3600.5
  reconnect_grace: 0
  device_logout: "logout\\r"
  device_reset: dtr
  device_reset_hold: 0.25
clock:
  max_jump: 300
tamper:
  heartbeat_period: 15
{extra}technicians:
  - technician_id: "alice@example.org"
    totp_secret: "{st.TECHS['alice@example.org']}"
  - technician_id: "carol@example.org"
    totp_secret: "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
""")


def parse(blob):
    """The blob as (header, {type: [value, ...]}), checked as a reader
    that knows only the documented format would check it."""
    assert blob[:8] == b"SHIMPRV1", blob[:8]
    version, flags, total = struct.unpack(">HHI", blob[8:16])
    assert (version, flags, total) == (1, 0, len(blob)), (version, flags, total)
    crc, = struct.unpack(">I", blob[-4:])
    assert crc == zlib.crc32(blob[:-4]) & 0xffffffff, "CRC"
    fields, off = {}, 16
    while off < len(blob) - 4:
        t, n = struct.unpack(">HH", blob[off:off + 4])
        fields.setdefault(t, []).append(blob[off + 4:off + 4 + n])
        off += 4 + n
    assert off == len(blob) - 4, "fields end at the CRC"
    return fields


def reseal(body):
    """Header fields and CRC for a list of raw field bytes."""
    total = 16 + len(body) + 4
    head = b"SHIMPRV1" + struct.pack(">HHI", 1, 0, total)
    return head + body + struct.pack(">I", zlib.crc32(head + body) & 0xffffffff)


def make(config):
    out = os.path.join(TMP, os.path.basename(config) + ".blob")
    if os.path.lexists(out):
        os.unlink(out)
    r = ctl(config, "-o", out)
    assert r.returncode == 0, r.stderr
    return out


def test_two_technicians_blob():
    cfg = two_tech_config()
    key = os.path.join(TMP, "rec.key")
    r = subprocess.run([st.SHIMCTL, "keygen", "recording", "--out", key],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    with open(cfg, "a") as f:
        f.write(f'recording:\n  public_key: "{key[:-4]}.pub"\n'
                "  on_failure: stop\n")
    path = make(cfg)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o600, oct(mode)
    blob = open(path, "rb").read()
    f = parse(blob)
    assert f[1] == [b"shim-fw-01"], f[1]
    md, digits, window, zero, period, maxf, lock, ratef, rates = \
        struct.unpack(">BBBBIIIII", f[2][0])
    assert (md, digits, window, zero, period, maxf, lock, ratef, rates) == \
        (1, 8, 2, 0, 60, 3, 600, 10, 120), f[2]
    idle, maxd, grace, hold, reset, onf, z = struct.unpack(">IIIIBBH", f[3][0])
    assert (idle, maxd, grace, hold, reset, onf, z) == \
        (120000, 3600500, 0, 250, 1, 1, 0), f[3]
    assert f[4] == [b"logout\r"], f[4]
    assert f[5] == [struct.pack(">I", 15000)], f[5]
    assert f[6] == [struct.pack(">I", 300)], f[6]
    assert len(f[7]) == 1 and len(f[7][0]) == 65 and f[7][0][0] == 4, f.get(7)
    techs = {}
    for v in f[0x10]:
        n = v[0]
        techs[v[1:1 + n].decode()] = v[2 + n:2 + n + v[1 + n]]
        assert len(v) == 2 + n + v[1 + n]
    assert techs == {
        "alice@example.org": b32(st.TECHS["alice@example.org"]),
        "carol@example.org": b32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
    }, sorted(techs)

    r = ctl("--show", path)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    for want in ("shim_id: shim-fw-01\n",
                 "totp: algorithm SHA256, digits 8, period 60 s, window 2\n",
                 "lockout: 3 failures in 600 s\n",
                 "rate_limit: 10 failures in 120 s\n",
                 "idle_timeout: 120 s\n", "max_duration: 3600.500 s\n",
                 "reconnect_grace: 0 s\n", "device_logout: 7 bytes\n",
                 "device_reset: dtr, held 250 ms\n", "on_failure: stop\n",
                 "heartbeat_period: 15 s\n", "clock_max_jump: 300 s\n",
                 "recording_public_key: 04" + f[7][0][1:].hex() + "\n",
                 "technicians: 2\n  alice@example.org\n  carol@example.org\n",
                 "%d bytes" % len(blob)):
        assert want in out, (want, out)
    # Neither the secrets nor their base32 or hex show.
    for sec in techs.values():
        for text in (sec.hex(), base64.b32encode(sec).decode().rstrip("=")):
            assert text.lower() not in out.lower(), "secret echoed"


def test_stdout_pipe_same_bytes():
    cfg = two_tech_config("pipe.yaml")
    path = make(cfg)
    r = ctl(cfg)
    assert r.returncode == 0, r.stderr
    assert r.stdout == open(path, "rb").read(), "stdout differs from -o"
    s = ctl("--show", "-", stdin=r.stdout)
    assert s.returncode == 0 and b"technicians: 2\n" in s.stdout, s.stderr


def test_refuses_terminal():
    cfg = two_tech_config("tty.yaml")
    master, slave = pty.openpty()
    try:
        r = ctl(cfg, stdout=slave)
        os.set_blocking(master, False)
        try:
            seen = os.read(master, 4096)
        except BlockingIOError:
            seen = b""
    finally:
        os.close(slave)
        os.close(master)
    assert r.returncode == 1, r.returncode
    assert b"terminal" in r.stderr, r.stderr
    assert b"SHIMPRV1" not in seen, seen


def test_never_overwrites_or_follows_links():
    cfg = two_tech_config("excl.yaml")
    out = os.path.join(TMP, "exists.blob")
    with open(out, "wb") as f:
        f.write(b"keep me")
    r = ctl(cfg, "-o", out)
    assert r.returncode == 1 and b"exists" in r.stderr, r.stderr
    assert open(out, "rb").read() == b"keep me"
    target = os.path.join(TMP, "target")
    link = os.path.join(TMP, "link.blob")
    os.symlink(target, link)
    r = ctl(cfg, "-o", link)
    assert r.returncode == 1, r.stderr
    assert not os.path.exists(target), "followed the link"


def test_config_error_names_file_and_line():
    cfg = two_tech_config("bad.yaml")
    text = open(cfg).read().replace("  digits: 8\n", "  digits: 9\n")
    write_config("bad.yaml", text)
    line = text.split("\n").index("  digits: 9") + 1
    out = os.path.join(TMP, "bad.blob")
    r = ctl(cfg, "-o", out)
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "%s:%d:" % (cfg, line) in err, err
    assert not os.path.exists(out), "a blob was written"


def test_too_many_technicians():
    techs = "".join(
        f'  - technician_id: "t{i}@example.org"\n'
        f'    totp_secret: "{base64.b32encode(bytes([i + 1]) * 20).decode()}"\n'
        for i in range(17))
    cfg = write_config("many.yaml", f"""shim:
  id: "shim-many"
serial:
  technician_side_path: "pty:{TMP}/tech"
  device_side_path: "pty:{TMP}/dev"
storage:
  root: "{TMP}/storage"
technicians:
{techs}""")
    out = os.path.join(TMP, "many.blob")
    r = ctl(cfg, "-o", out)
    assert r.returncode == 1 and b"at most 16" in r.stderr, r.stderr
    assert not os.path.exists(out)


def test_bad_blob_rejected_by_show():
    cfg = two_tech_config("show.yaml")
    blob = open(make(cfg), "rb").read()
    fields = parse(blob)
    cases = {
        "flipped": (blob[:40] + bytes([blob[40] ^ 1]) + blob[41:], "bad CRC"),
        "truncated": (blob[:-1], "truncated"),
        "empty": (b"", "truncated"),
        "trailing": (blob + b"\0", "after the blob"),
        "notablob": (b"#!/bin/sh\n" + blob, "bad magic"),
        "unknown": (reseal(blob[16:-4] + b"\x00\x42\x00\x01x"),
                    "unknown mandatory field"),
        "dup": (reseal(blob[16:-4] + struct.pack(">HH", 0x10, 2 + 17 + 16) +
                       b"\x11alice@example.org\x10" + b"k" * 16),
                "duplicate technician"),
    }
    for name, (data, why) in cases.items():
        path = os.path.join(TMP, name + ".bad")
        with open(path, "wb") as f:
            f.write(data)
        r = ctl("--show", path)
        err = r.stderr.decode()
        assert r.returncode == 1, (name, r.returncode, err)
        assert why in err and "refused" in err, (name, err)
        assert r.stdout == b"", (name, r.stdout)
    # An optional field it does not know is skipped.
    ok = reseal(blob[16:-4] + b"\x80\x42\x00\x01x")
    r = ctl("--show", "-", stdin=ok)
    assert r.returncode == 0, r.stderr
    assert len(fields[0x10]) == 2
    r = ctl("--show", os.path.join(TMP, "missing.blob"))
    assert r.returncode == 1 and b"No such file" in r.stderr, r.stderr


def test_prototype_example_converts():
    src = os.path.join(st.SRC, "tests", "data",
                       "prototype-config.example.yaml")
    cfg = write_config("prototype.yaml", open(src).read())
    r = ctl(cfg)
    assert r.returncode == 0, r.stderr
    s = ctl("--show", "-", stdin=r.stdout)
    out = s.stdout.decode()
    assert s.returncode == 0, s.stderr
    assert "shim_id: shim-empump-001\n" in out, out
    assert "technicians: 2\n  alice@example.org\n  bob@example.org\n" in out
    assert "totp: algorithm SHA1, digits 6, period 30 s, window 1\n" in out
    assert "heartbeat_period: 60 s\n" in out


def test_usage():
    r = ctl("--show")
    assert r.returncode == 2, r.returncode
    r = ctl("--show", "x", "-o", "y")
    assert r.returncode == 2, r.returncode


if __name__ == "__main__":
    st.need_binaries(st.SHIMCTL)
    try:
        st.run(st.tests_of(globals()))
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
