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
medians drift with the load.

    python3 bench/bench_alloc_ab.py --build new=build --build old=/path/to/other/build
"""

import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[3])
import workloads
build, n = sys.argv[1], int(sys.argv[2])
workloads.alloc_heavy(100)
if build != "-":
    import cpyprof
    cpyprof.start(sys.argv[4], quiet=True, mode="sample", rate=1, alloc=True)
c0, w0 = time.process_time(), time.perf_counter()
workloads.alloc_heavy(n)
c1, w1 = time.process_time(), time.perf_counter()
if build != "-":
    cpyprof.stop()
print("%.6f %.6f" % (c1 - c0, w1 - w0))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="/root/.pyenv/versions/3.11.7/bin/python3")
    ap.add_argument("--build", action="append", required=True, metavar="NAME=DIR",
                    help="a cpyprof build directory to measure (repeatable)")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iterations", type=int, default=20000)
    ap.add_argument("--out", default="/tmp/cpyprof-bench-ab.out")
    a = ap.parse_args()
    configs = [("baseline", None)] + [tuple(b.split("=", 1)) for b in a.build]
    cpu = {c[0]: [] for c in configs}
    wall = {c[0]: [] for c in configs}
    for r in range(a.rounds):
        k = r % len(configs)
        for name, build in configs[k:] + configs[:k]:
            env = dict(os.environ)
            for v in list(env):
                if v.startswith("CPYPROF_") or v == "LD_PRELOAD":
                    del env[v]
            env["PYTHONHASHSEED"] = "0"
            if build:
                env["PYTHONPATH"] = os.path.join(os.path.abspath(build), "python")
            p = subprocess.run([a.python, "-c", CHILD, build or "-", str(a.iterations), HERE,
                                a.out], env=env, capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                sys.exit("run failed (%s):\n%s" % (name, p.stderr))
            c, w = map(float, p.stdout.split()[-2:])
            cpu[name].append(c)
            wall[name].append(w)
    bc, bw = statistics.median(cpu["baseline"]), statistics.median(wall["baseline"])
    print("alloc_heavy(%d), %d rounds, %s; indicative on a shared machine"
          % (a.iterations, a.rounds, a.python))
    print("| config | CPU median s | vs baseline | wall median s | vs baseline "
          "| paired CPU | paired wall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, _ in configs:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        pc = statistics.median(x / b for x, b in zip(cpu[name], cpu["baseline"]))
        pw = statistics.median(x / b for x, b in zip(wall[name], wall["baseline"]))
        print("| %s | %.4f | %+.1f%% | %.4f | %+.1f%% | %+.1f%% | %+.1f%% |"
              % (name, c, 100 * (c / bc - 1), w, 100 * (w / bw - 1), 100 * (pc - 1),
                 100 * (pw - 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
