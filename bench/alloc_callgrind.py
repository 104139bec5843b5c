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
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import sys
build, work, n, on = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
sys.path.insert(0, build + "/python")
sys.path.insert(0, sys.argv[5])
import workloads

f = {"alloc_heavy": workloads.alloc_heavy, "objects": workloads.alloc_objects,
     "grow": workloads.alloc_grow}[work]
f(100)
if on:
    import cpyprof
    cpyprof.start(sys.argv[6], quiet=True, mode="sample", rate=1, alloc=True)
f(n)
if on:
    cpyprof.stop()
"""

ITERATIONS = {"alloc_heavy": 1000, "objects": 30000, "grow": 20000}
WRAPPER = re.compile(r"w_(malloc|calloc|realloc|free)(_[fs])?$|w_raw_\w+$")


def measure(python, build, work, n, on, tmp):
    out = os.path.join(tmp, "%s-%d-%d.cg" % (work, n, on))
    env = dict(os.environ, PYTHONHASHSEED="0")
    for v in list(env):
        if v.startswith("CPYPROF_") or v == "LD_PRELOAD":
            del env[v]
    subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, python,
                    "-c", CHILD, os.path.abspath(build), work, str(n), "1" if on else "0", HERE,
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
    a = ap.parse_args()
    print("%s, %s; instructions per allocator call (callgrind)" % (a.python, a.build))
    print("| workload (iterations) | allocator calls | baseline Ir | counting adds | per call |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="cpyprof-cg-") as tmp:
        for w in a.workloads:
            n = ITERATIONS[w]
            b0, _ = measure(a.python, a.build, w, 0, False, tmp)
            bn, _ = measure(a.python, a.build, w, n, False, tmp)
            p0, c0 = measure(a.python, a.build, w, 0, True, tmp)
            pn, cn = measure(a.python, a.build, w, n, True, tmp)
            base, add, calls = bn - b0, (pn - p0) - (bn - b0), cn - c0
            print("| %s (%d) | %.1fk | %.2fM | %+.2fM (%+.1f%%) | %.1f |"
                  % (w, n, calls / 1e3, base / 1e6, add / 1e6, 100.0 * add / base,
                     add / calls if calls else float("nan")))
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
