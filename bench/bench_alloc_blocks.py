#!/usr/bin/env python3
"""Allocation counting, A/B inside one process: short blocks of alloc_heavy
with each configuration in turn, so that every configuration's block runs
within a second of the baseline block it is compared with.

bench_alloc_ab.py starts a fresh process per run and compares runs seconds
apart; on this project's VMs the baseline alone moves by 10-15% between
such runs (CPU time, quiet machine), more than the effect being measured.
Here one process alternates, round after round (order rotated), blocks of
workloads.alloc_heavy(N) timed with time.process_time():
  baseline      no hook
  cpyprof       cpyprof.start(mode="sample", rate=1, alloc=True) ... stop()
  floor         pass-through wrappers (passalloc.c; --floor)
  least         least-work exact counting (leastcount.c; --least)
  least-counts  the same without block sizes (--least)
Only the workload is timed: the hooks' install and removal, and cpyprof's
start and stop (which write the profile), are outside the blocks. Each
block is divided by the baseline block of its own round; the table gives
the medians of those ratios, with the quartiles.

    python3 bench/bench_alloc_blocks.py --python /usr/bin/python3 --build build --floor --least
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

from _common import child_env  # bench/, on sys.path when run
from bench_alloc_ab import build_helper

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import workloads
names, n, rounds, out = sys.argv[2].split(","), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
hooks = {"baseline": (lambda: None, lambda: None)}
if "cpyprof" in names:
    import cpyprof
    hooks["cpyprof"] = (lambda: cpyprof.start(out, quiet=True, mode="sample", rate=1, alloc=True),
                        cpyprof.stop)
from _alloc_helpers import HELPERS, hooks as helper_hooks
hooks.update((name, helper_hooks(name)) for name in names if name in HELPERS)
workloads.alloc_heavy(n)  # warm-up: code objects, free lists, pymalloc's arenas
times = {name: [] for name in names}
for r in range(rounds):
    k = r % len(names)
    for name in names[k:] + names[:k]:
        on, off = hooks[name]
        on()
        c0 = time.process_time()
        workloads.alloc_heavy(n)
        c1 = time.process_time()
        off()
        times[name].append(c1 - c0)
print(json.dumps(times))
"""


def quartiles(xs):
    q = statistics.quantiles(xs, n=4)
    return q[0], statistics.median(xs), q[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--python", default="/root/.pyenv/versions/3.11.7/bin/python3")
    ap.add_argument("--build", default="build", help="the cpyprof build directory")
    ap.add_argument("--floor", action="store_true",
                    help="add blocks under pass-through allocator wrappers (passalloc.c)")
    ap.add_argument("--least", action="store_true",
                    help="add blocks under least-work exact counting (leastcount.c),"
                    " with and without block sizes")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--iterations", type=int, default=10000,
                    help="alloc_heavy iterations per block (default: about 0.15 s)")
    ap.add_argument("--processes", type=int, default=1,
                    help="run the rounds in this many processes one after the other"
                    " (another address-space layout each)")
    a = ap.parse_args()
    names = ["baseline", "cpyprof"] + ["floor"] * a.floor + ["least", "least-counts"] * a.least
    tmp = tempfile.mkdtemp(prefix="cpyprof-bench-blocks-")
    try:
        for which in names[2:]:
            build_helper(a.python, tmp, which)
        env = child_env(os.path.abspath(a.build))
        env["PYTHONHASHSEED"] = "0"
        env["PYTHONPATH"] += os.pathsep + tmp
        times = {name: [] for name in names}
        for _ in range(a.processes):
            p = subprocess.run([a.python, "-c", CHILD, HERE, ",".join(names),
                                str(a.iterations), str(a.rounds),
                                os.path.join(tmp, "run.cpyprof")],
                               env=env, capture_output=True, text=True, timeout=3600)
            if p.returncode != 0:
                sys.exit("run failed:\n%s" % p.stderr)
            for name, ts in json.loads(p.stdout.splitlines()[-1]).items():
                times[name].extend(ts)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = times["baseline"]
    print("alloc_heavy(%d) blocks, %d rounds x %d process(es), %s; CPU time"
          % (a.iterations, a.rounds, a.processes, a.python))
    print("| config | median block s | paired vs baseline: 25% | median | 75% |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name in names:
        q1, med, q3 = quartiles([x / b - 1 for x, b in zip(times[name], base)])
        print("| %s | %.4f | %+.1f%% | **%+.1f%%** | %+.1f%% |"
              % (name, statistics.median(times[name]), 100 * q1, 100 * med, 100 * q3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
