#!/usr/bin/env python3
"""Size report of core/ for microcontrollers, checked against a budget.

Reads the objects that scripts/cross-core.sh left in OUT/<target>/core/
and prints, per module (one core/*.c):
  flash  text + rodata + data (initialised data is stored in flash)
  ram    data + bss (static RAM; state the caller allocates is separate,
         see the build-time sizes below)
  frame  the largest single stack frame (-fstack-usage)
  stack  the deepest call chain from any function of the module, through
         the other core modules (-fcallgraph-info); calls through port
         ops and into the C library are not followed ("+port" marks a
         module that makes such calls: add the port's own stack)
  div64  calls to the 64-bit division helpers (__aeabi_[u]ldivmod)
  fp64   calls to double-precision soft-float helpers (the FPU of the
         Cortex-M4 is single precision)
then the gate path total (base32, otp, gate, lineedit, session, and
controller when present), the same table for RV32, and the build-time
sizes of the state a caller allocates, for the Linux defaults and for an
MCU configuration.

With --check, the Cortex-M4 figures are compared with the budget file
(lines "module flash ram stack", "-" for no limit; "gate_path" for the
total): a figure over its budget, or a module without a budget line,
fails (exit 1). Budgets are raised on purpose, by editing the file.
--write-budget prints a budget file from today's figures plus headroom.
"""
import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

GATE_PATH = ["base32", "otp", "gate", "lineedit", "session", "controller"]
GATE_PATH_GOAL = (24 * 1024, 4 * 1024)  # flash, static RAM (issue 10)
MCU_DEFS = ("-DSHIM_GATE_LOCK_SLOTS=16 -DSHIM_GATE_RATE_SLOTS=32 "
            "-DSHIM_EVENT_MAX_FIELDS=16 -DSHIM_EVENT_VALUE_MAX=160 "
            "-DSHIM_CTL_RELAY_BUF=512 -DSHIM_CTL_MSG_BUF=512")
TARGETS = {
    "cortex-m4": {
        "prefix": "arm-none-eabi-",
        "cflags": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                   "-mfpu=fpv4-sp-d16"],
        "title": "Cortex-M4 (arm-none-eabi-gcc -Os -mthumb, fpv4-sp-d16 "
                 "hard float)",
        "div64": re.compile(r"^__aeabi_u?ldivmod$"),
        "fp64": re.compile(r"^__aeabi_(d[a-z0-9]+|[a-z0-9]*2d)$"),
    },
    "rv32imc": {
        "prefix": "riscv64-unknown-elf-",
        "cflags": ["-march=rv32imc", "-mabi=ilp32",
                   "--specs=picolibc.specs"],
        "title": "RV32IMC (riscv64-unknown-elf-gcc -Os -march=rv32imc "
                 "-mabi=ilp32, picolibc)",
        "div64": re.compile(r"^__(u)?(div|mod)di3$"),
        "fp64": re.compile(r"^__[a-z]+df[0-9]?$|^__float[a-z]*df$|"
                           r"^__fix[a-z]*df[a-z]*$"),
    },
}
SIZE_ROWS = [
    ("gate", "struct shim_gate"),
    ("gate_lock", "  one lock slot (struct shim_gate_lock)"),
    ("technician", "struct shim_technician (one)"),
    ("gate_scratch_8", "gate scratch, 8 technicians (*)"),
    ("gate_scratch_100", "gate scratch, 100 technicians (*)"),
    ("clock", "struct shim_clock"),
    ("lineedit", "struct shim_lineedit"),
    ("event", "struct shim_event"),
    ("event_canon", "event sign/verify scratch (CANON_MAX)"),
    ("tamper", "struct shim_tamper"),
    ("ctl", "struct shim_ctl"),
    ("rec_writer", "struct shim_rec_writer"),
    ("rec_plain", "  its batch buffer (REC_MAX_PLAIN)"),
    ("rec_reader", "struct shim_rec_reader"),
    ("rec_reader_buf", "  its buffer (REC_READER_BUF)"),
]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE,
                          universal_newlines=True, **kw).stdout


def sections(readelf, obj):
    """text, rodata, data, bss of an object, from its section flags."""
    out = {"text": 0, "rodata": 0, "data": 0, "bss": 0}
    for line in run([readelf, "-SW", obj]).splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+\S+\s+\S+\s+(\S+)"
                     r"\s+\S+\s+(\S*)", line)
        if not m:
            continue
        name, typ, size, flags = m.groups()
        size = int(size, 16)
        if "A" not in flags or size == 0:
            continue
        if typ == "NOBITS":
            out["bss"] += size
        elif "X" in flags:
            out["text"] += size
        elif "W" in flags:
            out["data"] += size
        else:
            out["rodata"] += size
    return out


def helper_calls(readelf, obj, pattern):
    n = 0
    for line in run([readelf, "-rW", obj]).splitlines():
        f = line.split()
        if len(f) >= 5 and pattern.match(f[4]):
            n += 1
    return n


def max_frame(su):
    best, fn = 0, "-"
    with open(su) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            size = int(parts[1])
            if size > best:
                best, fn = size, parts[0].rsplit(":", 1)[-1]
    return best, fn


def callgraph(ci_files):
    """Frames and edges over all modules; node -> module of definition."""
    frame, module, edges = {}, {}, {}
    node_re = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
    edge_re = re.compile(r'edge: \{ sourcename: "([^"]+)" '
                         r'targetname: "([^"]+)"')
    for mod, path in ci_files.items():
        with open(path) as f:
            for line in f:
                m = node_re.match(line)
                if m:
                    b = re.search(r"\\n(\d+) bytes \(([^)]*)\)", m.group(2))
                    if b:
                        frame[m.group(1)] = int(b.group(1))
                        module[m.group(1)] = mod
                    continue
                m = edge_re.match(line)
                if m:
                    edges.setdefault(m.group(1), set()).add(m.group(2))
    return frame, module, edges


def chains(frame, edges):
    """Deepest stack from each function; flags for port/libc calls."""
    memo, active = {}, set()

    def walk(fn):
        if fn in memo:
            return memo[fn]
        if fn not in frame:  # port op, C library, compiler helper
            return (0, fn == "__indirect_call", False)
        if fn in active:  # recursion: counted once, flagged
            return (0, False, True)
        active.add(fn)
        deepest, port, rec = 0, False, False
        for callee in edges.get(fn, ()):
            d, p, r = walk(callee)
            deepest = max(deepest, d)
            port, rec = port or p, rec or r
        active.discard(fn)
        memo[fn] = (frame[fn] + deepest, port, rec)
        return memo[fn]

    return {fn: walk(fn) for fn in frame}


def module_figures(out, target):
    t = TARGETS[target]
    readelf = t["prefix"] + "readelf"
    cdir = os.path.join(out, target, "core")
    mods = sorted(f[:-2] for f in os.listdir(cdir) if f.endswith(".o"))
    ci = {m: os.path.join(cdir, m + ".ci") for m in mods}
    frame, module, edges = callgraph(ci)
    depth = chains(frame, edges)
    rows = {}
    for m in mods:
        obj = os.path.join(cdir, m + ".o")
        s = sections(readelf, obj)
        fr, fr_fn = max_frame(os.path.join(cdir, m + ".su"))
        stack, fn, port, rec = 0, "-", False, False
        for f, (d, p, r) in depth.items():
            if module[f] != m:
                continue
            port, rec = port or p, rec or r
            if d > stack or fn == "-":
                stack, fn = d, f.rsplit(":", 1)[-1]
        rows[m] = dict(s, flash=s["text"] + s["rodata"] + s["data"],
                       ram=s["data"] + s["bss"], frame=fr, frame_fn=fr_fn,
                       stack=stack, stack_fn=fn, port=port, rec=rec,
                       div64=helper_calls(readelf, obj, t["div64"]),
                       fp64=helper_calls(readelf, obj, t["fp64"]))
    gp = [m for m in GATE_PATH if m in rows]
    for m in reached_modules(gp, frame, module, edges):
        rows[m]["gate_dep"] = True
    return rows


def reached_modules(mods, frame, module, edges):
    """Core modules whose functions the functions of mods call."""
    seen, todo = set(), [f for f in frame if module[f] in mods]
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.add(fn)
        todo.extend(c for c in edges.get(fn, ()) if c in frame)
    return sorted(set(module[f] for f in seen) - set(mods))


def gate_path(rows):
    mods = [m for m in GATE_PATH if m in rows]
    return mods, {k: sum(rows[m][k] for m in mods)
                  for k in ("flash", "ram")}, max(rows[m]["stack"]
                                                  for m in mods)


def print_table(target, rows, verdicts):
    print("core/ on " + TARGETS[target]["title"] + ", bytes")
    hdr = ("module", "flash", "text", "rodata", "data", "bss", "ram",
           "frame", "stack", "div64", "fp64")
    fmt = "%-11s" + "%7s" * 7 + "%8s" + "%6s" * 2 + "  %s"
    print(fmt % (hdr + ("deepest call chain from" +
                        (" | budget" if verdicts else ""),)))
    tot = dict.fromkeys(hdr[1:], 0)
    for m, r in rows.items():
        note = r["stack_fn"] + ("()+port" if r["port"] else "()")
        if r["rec"]:
            note += " (recursion)"
        if verdicts:
            note += " | " + verdicts.get(m, "")
        print(fmt % (m, r["flash"], r["text"], r["rodata"], r["data"],
                     r["bss"], r["ram"], r["frame"], r["stack"], r["div64"],
                     r["fp64"], note))
        for k in tot:
            tot[k] = max(tot[k], r[k]) if k in ("frame", "stack") \
                else tot[k] + r[k]
    print(fmt % (("total",) + tuple(tot[k] for k in hdr[1:]) +
                 ("(frame, stack: the largest)",)))
    mods, gp, stack = gate_path(rows)
    print("gate path (%s): flash %d, static RAM %d, stack %d; goal flash "
          "<= %d, RAM <= %d, without the crypto library"
          % (" ".join(mods), gp["flash"], gp["ram"], stack,
             GATE_PATH_GOAL[0], GATE_PATH_GOAL[1]))
    deps = [m for m, r in rows.items() if r.get("gate_dep")]
    print("  with the core modules it calls (%s): flash %d, static RAM %d"
          % (" ".join(deps), gp["flash"] + sum(rows[m]["flash"] for m in deps),
             gp["ram"] + sum(rows[m]["ram"] for m in deps)))
    if verdicts and "gate_path" in verdicts:
        print("gate path budget: " + verdicts["gate_path"])
    print()


def read_budget(path):
    budget = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) != 4:
                raise SystemExit("%s:%d: want 'module flash ram stack'"
                                 % (path, n))
            budget[line[0]] = [None if v == "-" else int(v)
                               for v in line[1:]]
    return budget


def check(rows, budget, path):
    """Verdict per module and the failures."""
    verdicts, fails = {}, []
    mods, gp, gp_stack = gate_path(rows)
    figures = dict((m, (r["flash"], r["ram"], r["stack"]))
                   for m, r in rows.items())
    figures["gate_path"] = (gp["flash"], gp["ram"], gp_stack)
    for m, fig in figures.items():
        if m not in budget:
            verdicts[m] = "NO BUDGET"
            fails.append("%s: no budget line in %s (add 'module flash ram "
                         "stack' on purpose)" % (m, path))
            continue
        over = []
        for name, have, limit in zip(("flash", "ram", "stack"), fig,
                                     budget[m]):
            if limit is not None and have > limit:
                over.append("%s %d > %d" % (name, have, limit))
        verdicts[m] = "OVER: " + ", ".join(over) if over else "ok"
        if over:
            fails.append("%s: %s (budget in %s)" % (m, ", ".join(over), path))
    for m in budget:
        if m not in figures:
            print("size-report: warning: %s has a budget but no module"
                  % m, file=sys.stderr)
    return verdicts, fails


def headroom(v, step, least):
    """v plus 12.5 % (at least `least` bytes), rounded up to step."""
    return int(math.ceil(max(v * 1.125, v + least) / step) * step)


def write_budget(rows):
    print("# Size budget of core/ on Cortex-M4 (make size; checked in make "
          "check).")
    print("# Bytes: flash = text+rodata+data, ram = data+bss (static), "
          "stack = deepest")
    print("# call chain. '-' = no limit. Today's figures plus ~12.5 %; "
          "raise one only")
    print("# on purpose, and say why in the commit.")
    print("# Static RAM 0 stays 0: core/ keeps no state of its own, and a "
          "static")
    print("# variable in it is a decision to make here.")
    print("# module      flash    ram  stack")
    for m, r in rows.items():
        print("%-12s %6d %6d %6d" % (m, headroom(r["flash"], 16, 64),
                                     headroom(r["ram"], 8, 8)
                                     if r["ram"] else 0,
                                     headroom(r["stack"], 8, 16)))
    print("# The gate path together (%s, and %s when"
          % (" ".join(GATE_PATH[:-1]), GATE_PATH[-1]))
    print("# present): the goal is <= 24 KiB flash, <= 4 KiB static RAM.")
    print("%-12s %6d %6d %6s" % ("gate_path", GATE_PATH_GOAL[0],
                                 GATE_PATH_GOAL[1], "-"))


def probe_target(src, target, defs, tmp):
    t = TARGETS[target]
    obj = os.path.join(tmp, "probe-%s.o" % target)
    run([t["prefix"] + "gcc"] + t["cflags"] +
        ["-std=c11", "-ffreestanding", "-c", "-I" + os.path.join(src, "core"),
         os.path.join(src, "scripts", "size-report.c"), "-o", obj] +
        defs.split())
    sizes = {}
    for line in run([t["prefix"] + "nm", "-S", obj]).splitlines():
        f = line.split()
        if len(f) == 4 and f[3].startswith("shim_size_"):
            sizes[f[3][len("shim_size_"):]] = int(f[1], 16)
    return sizes


def probe_host(src, defs, tmp):
    cc = os.environ.get("CC", "cc")
    exe = os.path.join(tmp, "probe-host")
    core = [os.path.join(src, "core", f)
            for f in sorted(os.listdir(os.path.join(src, "core")))
            if f.endswith(".c")]
    run([cc, "-std=c11", "-O1", "-DSHIM_SIZE_MAIN",
         "-I" + os.path.join(src, "core"),
         os.path.join(src, "scripts", "size-report.c")] + core +
        ["-o", exe] + defs.split())
    return dict((k, int(v)) for k, v in
                (line.split() for line in run([exe]).splitlines()))


def print_sizes(src, mcu_defs):
    tmp = tempfile.mkdtemp(prefix="shim-size.")
    try:
        host = probe_host(src, "", tmp)
        host_mcu = probe_host(src, mcu_defs, tmp)
        m4 = probe_target(src, "cortex-m4", "", tmp)
        m4_mcu = probe_target(src, "cortex-m4", mcu_defs, tmp)
    finally:
        shutil.rmtree(tmp)
    for scratch in ("gate_scratch_8", "gate_scratch_100"):
        m4[scratch] = host[scratch]
        m4_mcu[scratch] = host_mcu[scratch]
    print("Build-time sizes of caller-owned state, bytes")
    print("  MCU configuration: " + mcu_defs)
    fmt = "%-40s %12s %12s %12s"
    print(fmt % ("", "Linux host", "Linux cfg", "MCU cfg"))
    print(fmt % ("", "(LP64)", "on M4", "on M4"))
    for key, label in SIZE_ROWS:
        if key not in host:
            continue
        print(fmt % (label, host[key], m4[key], m4_mcu[key]))
    n = 8
    path = lambda s: (s["gate"] + s["gate_scratch_8"] + n * s["technician"]
                      + s["clock"] + s["lineedit"])
    print(fmt % ("gate path state, %d technicians (**)" % n, path(host),
                 path(m4), path(m4_mcu)))
    print("  (*) bytes of the persisted format: the same on every target")
    print("  (**) struct shim_gate + its scratch + the technician table + "
          "clock + line editor")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="directory scripts/cross-core.sh built into")
    ap.add_argument("--budget", help="budget file to check against")
    ap.add_argument("--check", action="store_true",
                    help="fail when a module is over or without budget")
    ap.add_argument("--write-budget", action="store_true",
                    help="print a budget file from today's figures")
    ap.add_argument("--no-sizes", action="store_true",
                    help="leave out the build-time sizes")
    ap.add_argument("--mcu-defs", default=os.environ.get("SHIM_MCU_DEFS",
                                                         MCU_DEFS))
    args = ap.parse_args()
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

    m4 = module_figures(args.out, "cortex-m4")
    if args.write_budget:
        write_budget(m4)
        return 0
    verdicts, fails = {}, []
    if args.check:
        path = args.budget or os.path.join(src, "size-budget.txt")
        verdicts, fails = check(m4, read_budget(path), path)
    print_table("cortex-m4", m4, verdicts)
    if os.path.isdir(os.path.join(args.out, "rv32imc", "core")):
        print_table("rv32imc", module_figures(args.out, "rv32imc"), {})
    if not args.no_sizes:
        print_sizes(src, args.mcu_defs)
    for f in fails:
        print("size-report: " + f, file=sys.stderr)
    if args.check:
        print("size-report: %d modules and the gate path checked, %d over "
              "or without budget" % (len(m4), len(fails)))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
