#!/usr/bin/env python3
"""Instructions per event of timeline mode, counted by callgrind (which load on the
machine does not disturb, unlike the clock): call_heavy (bench/workloads.py) run with no
profiler, with `--mode timeline` streaming and with the flight recorder, each under
`valgrind --tool=callgrind`; prints the instructions per recorded event, in total and per
function of libcpyprof (hook: cp_tl_hook_*; writer: the rest), and for streaming minus
the flight recorder (the price of streaming).

callgrind runs the threads one at a time, so it counts the writer thread's instructions
but hides what crossing cores costs (cache lines moving between the hook and the writer):
wall-clock figures come from bench_timeline.py on a quiet machine.

    python3 bench/callgrind_timeline.py                       # /usr/bin/python3, 200 units
    python3 bench/callgrind_timeline.py --python /usr/bin/python3 --iterations 100
"""

import argparse
import os
import re
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CHILD = r"""
import sys
sys.path.insert(0, %(bench)r)
import workloads
mode, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode != "none":
    import cpyprof
    kw = dict(mode="timeline", quiet=True, buffer="16M")
    if mode == "last":
        kw["keep"] = "last"
        kw["buffer"] = "32M"
    cpyprof.start(out, **kw)
workloads.call_heavy(n)
if mode != "none":
    cpyprof.stop()
"""


def recorded_events(path):
    """Sum of TIMELINE_INFO `recorded` (docs/format.md)."""
    data = open(path, "rb").read()
    off, total = 16, 0
    while off + 16 <= len(data):
        ctype, _, size = struct.unpack_from("<IIQ", data, off)
        if ctype == 13:
            total += struct.unpack_from("<IIQ", data, off + 16)[2]
        off += 16 + size
        if ctype == 0x7F:
            break
    return total


def run(python, mode, n, tmp):
    child = os.path.join(tmp, "child.py")
    with open(child, "w") as f:
        f.write(CHILD % {"bench": HERE})
    cg = os.path.join(tmp, "%s.cg" % mode)
    out = os.path.join(tmp, "%s.cpyprof" % mode)
    env = dict(os.environ, PYTHONPATH=os.path.join(REPO, "build", "python"), PYTHONHASHSEED="0")
    p = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg, python,
                        child, mode, str(n), out], env=env, capture_output=True, text=True)
    m = re.search(r"Collected : (\d+)", p.stderr)
    if p.returncode != 0 or not m:
        sys.exit("callgrind run failed (%s):\n%s" % (mode, p.stderr[-2000:]))
    funcs = {}
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", cg], capture_output=True,
                         text=True).stdout
    for line in ann.splitlines():
        mm = re.match(r"\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S+):(\S+) \[(\S+)\]", line)
        if mm and "libcpyprof" in mm.group(4):
            funcs[mm.group(3)] = funcs.get(mm.group(3), 0) + int(mm.group(1).replace(",", ""))
    events = recorded_events(out) if mode != "none" else 0
    return int(m.group(1)), events, funcs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="/usr/bin/python3",
                    help="a real interpreter, not a shell shim (pyenv's shims are scripts)")
    ap.add_argument("--iterations", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base, _, _ = run(args.python, "none", args.iterations, tmp)
        res = {m: run(args.python, m, args.iterations, tmp) for m in ("all", "last")}
    print("call_heavy(%d), %s; instructions per recorded event (callgrind Ir)\n"
          % (args.iterations, args.python))
    print("| configuration | events | total over no profiler | hook | writer (libcpyprof, rest) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    per = {}
    for mode, (ir, ev, funcs) in res.items():
        hook = sum(v for k, v in funcs.items() if k.startswith("cp_tl_hook"))
        rest = sum(funcs.values()) - hook
        per[mode] = (ir - base) / ev
        print("| %s | %d | %.0f | %.0f | %.0f |" % (
            "streaming 16M" if mode == "all" else "flight recorder 32M", ev, per[mode],
            hook / ev, rest / ev))
    print("\nstreaming - flight recorder: %.0f instructions per event" % (per["all"] - per["last"]))
    for mode, (_, ev, funcs) in res.items():
        top = sorted(funcs.items(), key=lambda kv: -kv[1])[:8]
        print("\n%s, libcpyprof functions (Ir per event): %s" % (
            mode, ", ".join("%s %.1f" % (k, v / ev) for k, v in top)))


if __name__ == "__main__":
    main()
