#!/usr/bin/env python3
"""Sampling overhead, A/B: the baseline and one sampling configuration with
one or more cpyprof builds, interleaved run by run, on one workload.

bench_sample.py measures every configuration against the baseline; this
script answers a narrower question on a shared machine: did a change to
the library move one configuration's overhead?  Every run is a fresh
process (LD_PRELOAD, as `cpyprof record` does) timed by bench_sample.py's
runner. The order rotates every round, and each build's run is also
divided by the baseline run of its own round: the median of those paired
ratios moves least with load that drifts over the run. With --floor, a "floor"
row preloads sigfloor.c instead: the same per-thread timers at the same rate
with an empty handler, what the machine charges for the signals alone.

    python3 bench/bench_sample_ab.py --build old=/path/to/old/build --build new=build \\
        --workload threads --rate 1000 --clock wall --rounds 30
    python3 bench/bench_sample_ab.py --build main=build --floor --workload alloc_heavy \\
        --iterations 100000 --rate 10000 --rounds 10
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_sample  # noqa: E402  (RUNNER, sample_env, clean_env)
from _common import print_ab_table  # noqa: E402


def run(python, env, workload, iterations):
    p = subprocess.run([python, "-c", bench_sample.RUNNER, HERE, workload, str(iterations)],
                       env=bench_sample.clean_env(env), capture_output=True, text=True,
                       timeout=600)
    line = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not line or "cpyprof:" in p.stderr:
        sys.exit("run failed (exit %d): %s" % (p.returncode, p.stderr[-400:]))
    r = json.loads(line[-1])
    return r["cpu"], r["seconds"], r["checksum"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--build", action="append", required=True, metavar="NAME=DIR",
                    help="a cpyprof build directory (holding libcpyprof.so); repeatable")
    ap.add_argument("--workload", default="threads")
    ap.add_argument("--iterations", type=int, default=3000)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="wall")
    ap.add_argument("--native", action="store_true")
    ap.add_argument("--floor", action="store_true",
                    help="add a row for an empty signal handler at the same rate "
                    "(sigfloor.c; wall-clock timers, so compare with --clock wall)")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--out", default="/tmp/cpyprof-bench-sample-ab.cpyprof")
    a = ap.parse_args()
    configs = [("baseline", {})]
    for b in a.build:
        name, d = b.split("=", 1)
        lib = os.path.join(os.path.abspath(d), "libcpyprof.so")
        if not os.path.exists(lib):
            sys.exit("%s not found: build first" % lib)
        configs.append((name, bench_sample.sample_env(lib, a.out, a.rate, a.clock, a.native)))
    tmp = tempfile.mkdtemp(prefix="cpyprof-bench-sample-ab-")
    if a.floor:
        lib, why = bench_sample.build_sigfloor(tmp)
        if not lib:
            sys.exit("--floor: %s" % why)
        configs.append(("floor", {"LD_PRELOAD": lib, "SIGFLOOR_HZ": str(a.rate)}))
    cpu = {c[0]: [] for c in configs}
    wall = {c[0]: [] for c in configs}
    checksum = None
    for r in range(a.rounds):
        k = r % len(configs)
        for name, env in configs[k:] + configs[:k]:
            c, w, ck = run(a.python, env, a.workload, a.iterations)
            if checksum is None:
                checksum = ck
            elif ck != checksum:
                sys.exit("checksum differs under %s" % name)
            cpu[name].append(c)
            wall[name].append(w)
    if os.path.exists(a.out):
        os.unlink(a.out)
    shutil.rmtree(tmp, ignore_errors=True)
    print("%s(%d), %d rounds, %d Hz %s%s, %s; indicative on a shared machine"
          % (a.workload, a.iterations, a.rounds, a.rate, a.clock,
             " --native" if a.native else "", a.python))
    print_ab_table([c[0] for c in configs], cpu, wall)
    return 0


if __name__ == "__main__":
    sys.exit(main())
