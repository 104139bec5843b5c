#!/usr/bin/env python3
"""What a thread that wakes N times a second costs a Python program, on this machine.

The question behind gil=sample's default rate (docs/architecture.md, "GIL"):
reading the GIL's holder is a few loads, but a reader that wakes 1000 times a
second pays a wake-up each time. This measures that price with no profiler
at all: the GIL workloads of bench_gil.py run unprofiled, alone and beside a
separate process (a few lines of C, compiled here with `cc`) that does nothing
but sleep to absolute CLOCK_MONOTONIC deadlines N times a second, as
cpyprof's writer thread does for gil_rate=N. A separate process, not a
thread, so that nothing in the Python process changes.

Configurations (each round interleaved, rotated order):
  alone       the workload only
  wake100     beside a process waking 100 times a second
  wake1000    beside a process waking 1000 times a second

Reported: the paired ratio (median over rounds of config / alone of the same
round) of wall and CPU time. Nothing is judged: this is a measurement of the
machine, used to choose a default.

    python3 bench/bench_wakeups.py                     # 9 rounds
    python3 bench/bench_wakeups.py --rounds 15 --workloads cpu4
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import child_env, measure, parse_arguments  # bench/, on sys.path when run
from bench_gil import CHILD

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

WAKER_C = r"""
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv)
{
    long step = 1000000000L / atol(argv[1]);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    for (;;) {
        t.tv_nsec += step;
        while (t.tv_nsec >= 1000000000L) {
            t.tv_nsec -= 1000000000L;
            t.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
    }
}
"""

CONFIGS = ["alone", "wake100", "wake1000"]


def build_waker(tmp):
    src, exe = os.path.join(tmp, "waker.c"), os.path.join(tmp, "waker")
    with open(src, "w") as f:
        f.write(WAKER_C)
    subprocess.run(["cc", "-O2", "-o", exe, src], check=True)
    return exe


def run_one(py, build, waker, workload, cfg, scale, tmp):
    w = None
    if cfg != "alone":
        w = subprocess.Popen([waker, cfg[len("wake"):]])
        time.sleep(0.05)  # running before the workload starts
    try:
        p = subprocess.run([py, "-c", CHILD, workload, "baseline", str(scale),
                            os.path.join(tmp, "unused")],
                           capture_output=True, text=True, timeout=600,
                           env=child_env(build))
    finally:
        if w:
            w.kill()
            w.wait()
    if p.returncode != 0:
        sys.exit("run failed (%s %s):\n%s" % (workload, cfg, p.stderr))
    wall, cpu = p.stdout.split()[-2:]
    return float(wall), float(cpu)


def main():
    a, rounds, scale, workloads = parse_arguments(__doc__, REPO, rounds=9,
                                                  python="/usr/bin/python3",
                                                  workloads="cpu4,stat2")
    with tempfile.TemporaryDirectory() as tmp:
        waker = build_waker(tmp)
        times, cpus = measure(rounds, workloads, CONFIGS,
                              lambda w, c: run_one(a.python, a.build, waker, w, c, scale, tmp))
    print("| workload | config | median s | paired wall | paired CPU |")
    print("| --- | --- | ---: | ---: | ---: |")
    for w in workloads:
        for c in CONFIGS:
            pw = statistics.median(t / o for t, o in zip(times[(w, c)], times[(w, "alone")]))
            pc = statistics.median(t / o for t, o in zip(cpus[(w, c)], cpus[(w, "alone")]))
            print("| %s | %s | %.3f | %+.1f%% | %+.1f%% |" % (
                w, c, statistics.median(times[(w, c)]), 100 * (pw - 1), 100 * (pc - 1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
