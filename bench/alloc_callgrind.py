#!/usr/bin/env python3
"""Instructions that allocation counting adds per allocator call, with
callgrind (machine load does not change them).

For each workload, four runs under `valgrind --tool=callgrind` with
PYTHONHASHSEED=0: N iterations and none, each without and with
cpyprof.start(mode="sample", rate=1, alloc=True) after a 100-iteration
warm-up (start-up and the profiler's start and stop cancel out). The
allocator calls are callgrind's call counts of the wrappers (w_malloc*,
w_calloc*, w_realloc*, w_free*, w_raw_*) in the counting runs:

    per call = ((Ir N,on - Ir 0,on) - (Ir N,off - Ir 0,off)) / (calls N - calls 0)

    python3 bench/alloc_callgrind.py --python /usr/bin/python3 --build build
    python3 bench/alloc_callgrind.py --floor alloc_heavy   # also pass-through wrappers' share
    python3 bench/alloc_callgrind.py --least alloc_heavy   # and leastcount.c's lower bounds

--floor and --least divide by the counting runs' wrapper calls: the helpers
wrap the same calls (leastcount.c leaves RAW alone, which alloc_heavy
hardly calls).
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

from _alloc_helpers import HELPERS  # bench/, on sys.path when run

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import sys
build, work, n, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
on = mode == "1"
sys.path.insert(0, build + "/python")
sys.path.insert(0, sys.argv[5])
import workloads

f = {"alloc_heavy": workloads.alloc_heavy, "objects": workloads.alloc_objects,
     "grow": workloads.alloc_grow}[work]
f(100)
from _alloc_helpers import HELPERS, hooks
if mode in HELPERS:  # built into the build argument
    sys.path.insert(0, build)
    hooks(mode)[0]()
if on:
    import cpyprof
    cpyprof.start(sys.argv[6], quiet=True, mode="sample", rate=1, alloc=True)
f(n)
if on:
    cpyprof.stop()
"""

ITERATIONS = {"alloc_heavy": 1000, "objects": 30000, "grow": 20000}
WRAPPER = re.compile(r"w_(malloc|calloc|realloc|free)(_[fs])?$|w_raw_\w+$")


def measure(python, build, work, n, mode, tmp):
    """Ir and wrapper calls of one run; mode: "1" counting, "0" no profiler,
    "floor" passalloc.c's wrappers, "least" and "least-counts" leastcount.c's
    (built into tmp/MODE)."""
    out = os.path.join(tmp, "%s-%d-%s.cg" % (work, n, mode))
    if mode in HELPERS:
        build = os.path.join(tmp, mode)
    env = dict(os.environ, PYTHONHASHSEED="0")
    for v in list(env):
        if v.startswith("CPYPROF_") or v == "LD_PRELOAD":
            del env[v]
    subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, python,
                    "-c", CHILD, os.path.abspath(build), work, str(n), mode, HERE,
                    os.path.join(tmp, "run.cpyprof")],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ir = calls = 0
    names, callee = {}, None
    with open(out) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                ir = int(line.split()[1])
            elif line.startswith(("fn=", "cfn=")):
                m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.strip())
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                callee = names.get(m.group(1), "") if line.startswith("cfn=") else None
            elif line.startswith("calls=") and callee is not None:
                if WRAPPER.match(callee):
                    calls += int(line.split("=")[1].split()[0])
                callee = None
    return ir, calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--build", default="build", help="a cpyprof build directory")
    ap.add_argument("workloads", nargs="*", default=list(ITERATIONS))
    ap.add_argument("--floor", action="store_true",
                    help="also count what pass-through wrappers (passalloc.c) add per call")
    ap.add_argument("--least", action="store_true",
                    help="also count what least-work exact counting (leastcount.c) adds per"
                    " call, with and without block sizes")
    a = ap.parse_args()
    helpers = ["floor"] * a.floor + ["least", "least-counts"] * a.least
    print("%s, %s; instructions per allocator call (callgrind)" % (a.python, a.build))
    print("| workload (iterations) | allocator calls | baseline Ir | counting adds | per call |"
          + "".join(" %s per call |" % h for h in helpers))
    print("| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(helpers))
    with tempfile.TemporaryDirectory(prefix="cpyprof-cg-") as tmp:
        from bench_alloc_ab import build_helper

        for h in helpers:
            os.mkdir(os.path.join(tmp, h))
            build_helper(a.python, os.path.join(tmp, h), h)
        for w in a.workloads:
            n = ITERATIONS[w]
            b0, _ = measure(a.python, a.build, w, 0, "0", tmp)
            bn, _ = measure(a.python, a.build, w, n, "0", tmp)
            p0, c0 = measure(a.python, a.build, w, 0, "1", tmp)
            pn, cn = measure(a.python, a.build, w, n, "1", tmp)
            base, add, calls = bn - b0, (pn - p0) - (bn - b0), cn - c0
            floor = ""
            for h in helpers:
                f0, _ = measure(a.python, a.build, w, 0, h, tmp)
                fn, _ = measure(a.python, a.build, w, n, h, tmp)
                floor += " %.1f |" % (((fn - f0) - (bn - b0)) / calls if calls else float("nan"))
            print("| %s (%d) | %.1fk | %.2fM | %+.2fM (%+.1f%%) | %.1f |%s"
                  % (w, n, calls / 1e3, base / 1e6, add / 1e6, 100.0 * add / base,
                     add / calls if calls else float("nan"), floor))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
