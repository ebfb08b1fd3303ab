"""The STM32F405 firmware under QEMU beside shimd on Linux.

Figures:
  - relay latency technician -> device, single bytes over the ptys, p50/p99
    over FW_LAT_SAMPLES bytes (the next byte is sent when the last arrived),
    in wall time, for the firmware (QEMU netduinoplus2 through
    scripts/run-firmware.sh) and for shimd in the same arrangement;
  - the same for the firmware under `-icount shift=0` (one instruction per
    virtual nanosecond: deterministic), in wall time and in instructions
    the guest executed per byte (QMP query-replay reads the instruction
    counter before the write and after the read), with the time that is at
    168 MHz and one instruction per cycle;
  - firmware flash (text + data) and static RAM (data + bss) of the ELF
    (arm-none-eabi-size) beside the Linux shimd binary's text/data/bss.

Wall-time figures under QEMU say more about QEMU's chardev loop than about
the firmware: QEMU takes one received byte per main-loop turn, and its pty
backend polls for a reader once a second. The instruction count is the
firmware's own cost (including what its main loop runs while it waits).

Skips (exit 0, with a line saying why) when QEMU, the launcher or the
firmware image is missing.

Usage: python3 bench/bench_firmware.py   (SHIM_BUILD = build directory)
"""

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import shimtest as st  # noqa: E402
import fwtarget  # noqa: E402

SAMPLES = int(os.environ.get("FW_LAT_SAMPLES", "400"))
MCU_HZ = 168e6  # STM32F405 at its top clock


def sizes(path, tool):
    """(text, data, bss) of an ELF from Berkeley `size` output."""
    out = subprocess.run([tool, path], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    text, data, bss = (int(x) for x in out[1].split()[:3])
    return text, data, bss


class Qmp:
    """A QMP client on a unix socket (one command at a time)."""

    def __init__(self, path, timeout=10.0):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r

    def icount(self):
        r = self.cmd("query-replay")
        if "return" not in r:
            raise RuntimeError("query-replay: %r" % r)
        return int(r["return"]["icount"])

    def close(self):
        self.s.close()


def one_byte(src, dst, timeout=5.0):
    os.write(src.fd, b"\x55")
    deadline = time.time() + timeout
    while True:
        r, _, _ = select.select([dst.fd], [], [], max(0.0, deadline -
                                                      time.time()))
        if not r:
            raise TimeoutError("byte not relayed within %.0f s" % timeout)
        try:
            if os.read(dst.fd, 16):
                return
        except BlockingIOError:
            continue


def latency(src, dst, n, qmp=None, warm=20):
    """Wall microseconds per byte, and instructions per byte with qmp."""
    wall, insns = [], []
    for i in range(n + warm):
        a = qmp.icount() if qmp else 0
        t0 = time.perf_counter_ns()
        one_byte(src, dst)
        dt = (time.perf_counter_ns() - t0) / 1000.0
        b = qmp.icount() if qmp else 0
        if i >= warm:
            wall.append(dt)
            insns.append(b - a)
    return wall, insns


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(len(xs) * p) - 1))]


def session(s):
    dev = s.connect_dev()
    t = s.connect_tech()
    st.safe_epoch(margin=4)
    s.login(t)
    return t, dev


def qemu_wrapper(d, extra_args):
    """A qemu-system-arm that adds extra_args, for the launcher's QEMU
    variable (the launcher takes no QEMU arguments of its own)."""
    path = os.path.join(d, "qemu-system-arm")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec %s \"$@\" %s\n" % (
            shutil.which("qemu-system-arm"),
            " ".join("'%s'" % a for a in extra_args)))
    os.chmod(path, 0o755)
    return path


def run_firmware(extra_args=None, qmp_path=None):
    s = fwtarget.Firmware(session={"idle_timeout": 3600})
    env = {}
    if extra_args:
        env["QEMU"] = qemu_wrapper(s.dir, extra_args)
    try:
        s.start(env=env)
        t, dev = session(s)
        qmp = Qmp(qmp_path) if qmp_path else None
        try:
            return latency(t, dev, SAMPLES, qmp)
        finally:
            if qmp:
                qmp.close()
    except Exception:
        print(s.log()[-3000:])
        raise
    finally:
        s.cleanup()


def run_shimd():
    s = st.Shim(session={"idle_timeout": 3600})
    try:
        s.start()
        t, dev = session(s)
        return latency(t, dev, SAMPLES)
    finally:
        s.cleanup()


def main():
    why = fwtarget.missing()
    if why:
        print("bench_firmware: skipped: %s" % "; ".join(why))
        return
    st.need_binaries(st.SHIMD, st.SHIMCTL)
    elf = fwtarget.firmware_image()
    print("bench_firmware: %d latency samples; firmware %s" %
          (SAMPLES, os.path.relpath(elf)))
    wall_sd, _ = run_shimd()
    wall_fw, _ = run_firmware()
    qmp_path = os.path.join("/tmp", "shim-bench-qmp-%d.sock" % os.getpid())
    ic = None
    try:
        ic = run_firmware(["-icount", "shift=0",
                           "-qmp", "unix:%s,server=on,wait=off" % qmp_path],
                          qmp_path)
    except Exception as e:  # noqa: BLE001
        print("  -icount run failed (%s): instruction counts not measured"
              % e)
    finally:
        if os.path.exists(qmp_path):
            os.unlink(qmp_path)

    print()
    print("%-40s %14s %14s %14s" % ("latency tech->device per byte",
                                    "shimd (Linux)", "firmware/QEMU",
                                    "fw, -icount 0"))
    for name, p in (("p50", 0.50), ("p99", 0.99)):
        print("%-40s %11.1f us %11.1f us %14s" % (
            "  wall time " + name, pct(wall_sd, p), pct(wall_fw, p),
            "%11.1f us" % pct(ic[0], p) if ic else "-"))
    if ic:
        for name, p in (("p50", 0.50), ("p99", 0.99)):
            n = pct(ic[1], p)
            print("%-40s %14s %14s %8d insns" % (
                "  guest instructions " + name, "-", "-", n))
            print("%-40s %14s %14s %11.2f us" % (
                "    = at 168 MHz, 1 insn/cycle", "-", "-", n / MCU_HZ * 1e6))

    ft, fd, fb = sizes(elf, "arm-none-eabi-size")
    lt, ld, lb = sizes(st.SHIMD, "size")
    print()
    print("%-40s %14s %14s" % ("footprint", "shimd (Linux)", "firmware"))
    print("%-40s %11.1f KB %11.1f KB  (F405: 1024 KB)" % (
        "  flash / text+data", (lt + ld) / 1024, (ft + fd) / 1024))
    print("%-40s %11.1f KB %11.1f KB  (F405: 192 KB; target <= 128 KB)" % (
        "  static RAM / data+bss", (ld + lb) / 1024, (fd + fb) / 1024))
    print("%-40s %8d %d %d %8d %d %d" % ("  text data bss", lt, ld, lb,
                                          ft, fd, fb))
    print("\nshimd's RAM at run time (VmRSS) is in bench_relay.py; the "
          "firmware's static RAM is all it has (no heap on the data path).")


if __name__ == "__main__":
    if shutil.which("size") is None:
        print("bench_firmware: skipped: binutils' size is missing")
        sys.exit(0)
    main()
