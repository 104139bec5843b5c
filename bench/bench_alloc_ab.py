#!/usr/bin/env python3
"""Allocation counting, A/B: the baseline and counting with one or more
cpyprof builds, interleaved run by run, on workloads.py's alloc_heavy.

Each run is a fresh process that times only alloc_heavy(N) with
time.process_time() (the process's CPU time, all its threads) and
time.perf_counter() (wall), with cpyprof.start(mode="sample", rate=1,
alloc=True) for the builds. The order rotates every round so that machine
noise hits every configuration alike, and each build's run is also divided
by the baseline run of its own round: the median of those paired ratios
is the figure least moved by load that drifts over the run (the medians
of the separate columns are shown too). PYTHONHASHSEED is fixed so that
every process hashes alike. Used to compare a change with the
library before it on a shared machine, where bench_alloc.py's separate
medians drift with the load. With --floor, a "floor" row runs the workload
under pass-through allocator wrappers (passalloc.c, built on the fly):
what any hook costs on this Python before it counts anything. With
--least, a "least" row runs it under leastcount.c's wrappers: only the
work exact per-function counting with a peak cannot do without, done the
cheapest way (a lower bound for counting's overhead on this Python), and
a "least-counts" row the same without the block sizes (no freed bytes,
live total or peak): what the size record costs.

    python3 bench/bench_alloc_ab.py --build new=build --build old=/path/to/other/build
    python3 bench/bench_alloc_ab.py --python /usr/bin/python3 --build main=build --floor --least
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from _alloc_helpers import HELPERS  # bench/, on sys.path when run
from _common import child_env, compile_c, print_ab_table

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
import workloads
build, n = sys.argv[1], int(sys.argv[2])
from _alloc_helpers import HELPERS, hooks
workloads.alloc_heavy(100)
if build in HELPERS:
    hooks(build)[0]()
elif build != "-":
    import cpyprof
    cpyprof.start(sys.argv[4], quiet=True, mode="sample", rate=1, alloc=True)
c0, w0 = time.process_time(), time.perf_counter()
workloads.alloc_heavy(n)
c1, w1 = time.process_time(), time.perf_counter()
if build != "-" and build not in HELPERS:
    cpyprof.stop()
print("%.6f %.6f" % (c1 - c0, w1 - w0))
"""


def build_helper(python, outdir, which="floor"):
    """Compiles the C helper of row `which` (HELPERS) for `python` into
    outdir; returns outdir or exits."""
    src, module, _ = HELPERS[which]
    info = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['include']);"
                           " print(sysconfig.get_config_var('EXT_SUFFIX'))"],
                          capture_output=True, text=True, check=True).stdout.split()
    include, suffix = info[0], info[1]
    if not os.path.exists(os.path.join(include, "Python.h")):
        sys.exit("--%s: no Python.h in %s (install the interpreter's -dev headers)"
                 % (which, include))
    why = compile_c(os.path.join(HERE, src), os.path.join(outdir, module + suffix),
                    cflags=("-I", include))
    if why:
        sys.exit("--%s: %s" % (which, why))
    return outdir


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="/root/.pyenv/versions/3.11.7/bin/python3")
    ap.add_argument("--build", action="append", required=True, metavar="NAME=DIR",
                    help="a cpyprof build directory to measure (repeatable)")
    ap.add_argument("--floor", action="store_true",
                    help="add a row for pass-through allocator wrappers (passalloc.c)")
    ap.add_argument("--least", action="store_true",
                    help="add rows for least-work exact counting wrappers (leastcount.c),"
                    " with and without block sizes")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--out", default="/tmp/cpyprof-bench-ab.out")
    a = ap.parse_args()
    configs = [("baseline", None)] + [tuple(b.split("=", 1)) for b in a.build]
    helper_dir = None
    if a.floor or a.least:
        helper_dir = tempfile.mkdtemp(prefix="cpyprof-bench-helpers-")
    for which, wanted in (("floor", a.floor), ("least", a.least), ("least-counts", a.least)):
        if wanted:
            build_helper(a.python, helper_dir, which)
            configs.append((which, which))
    cpu = {c[0]: [] for c in configs}
    wall = {c[0]: [] for c in configs}
    for r in range(a.rounds):
        k = r % len(configs)
        for name, build in configs[k:] + configs[:k]:
            env = child_env(os.path.abspath(build or "."))
            env["PYTHONHASHSEED"] = "0"
            if build in HELPERS:
                env["PYTHONPATH"] = helper_dir
            elif not build:
                del env["PYTHONPATH"]  # the baseline imports no cpyprof
            p = subprocess.run([a.python, "-c", CHILD, build or "-", str(a.iterations), HERE,
                                a.out], env=env, capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                sys.exit("run failed (%s):\n%s" % (name, p.stderr))
            c, w = map(float, p.stdout.split()[-2:])
            cpu[name].append(c)
            wall[name].append(w)
    if helper_dir:
        shutil.rmtree(helper_dir, ignore_errors=True)
    print("alloc_heavy(%d), %d rounds, %s; indicative on a shared machine"
          % (a.iterations, a.rounds, a.python))
    print_ab_table([c[0] for c in configs], cpu, wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
