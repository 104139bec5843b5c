"""Workloads for the cpyprof overhead benchmarks.

Each workload is a function ``name(iterations) -> checksum`` that repeats a small,
deterministic unit of work ``iterations`` times.  The unit is small (a fraction of a
millisecond unprofiled) so a workload can be sized to a wall-clock target either by a
fixed iteration count (what the side-by-side comparison uses: every configuration does
exactly the same work) or by a duration (``run_for``: what the profile-size test uses).

The checksum makes sure the work cannot be optimised away and lets the harness check that
every profiler left the program's result unchanged.

Run standalone::

    python bench/workloads.py                       # call_heavy, ~1.5 s
    python bench/workloads.py --seconds 10          # as many units as fit in 10 s
    python bench/workloads.py --workload threads --iterations 2000

It prints one JSON line: {"workload", "iterations", "seconds", "checksum"}.
"""

import argparse
import json
import sys
import threading
import time

# ---------------------------------------------------------------------------
# call_heavy: many short Python calls and many C calls, the worst case for a
# deterministic profiler (the per-call cost dominates).
# ---------------------------------------------------------------------------


def fib(n):
    """Plain recursion: 2*fib(n)-1 Python calls, almost no work per call."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


class Vec:
    """A small value class: tiny methods, an __init__ per result."""

    __slots__ = ("x", "y")

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def add(self, other):
        return Vec(self.x + other.x, self.y + other.y)

    def dot(self, other):
        return self.x * other.x + self.y * other.y

    def norm2(self):
        return self.dot(self)

    @property
    def manhattan(self):
        return abs(self.x) + abs(self.y)


class Tally:
    """A small stateful class whose methods call builtins (dict.get, max)."""

    def __init__(self):
        self.counts = {}

    def bump(self, key):
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def top(self):
        return max(self.counts.values()) if self.counts else 0


def squares(n):
    """A generator: every resume is a call and every yield a return for a profiler."""
    for i in range(n):
        yield i * i


def _call_heavy_unit():
    total = fib(12)  # 465 Python calls

    v = Vec(0, 0)
    step = Vec(1, 2)
    for _ in range(40):
        v = v.add(step)  # add -> __init__
        total += v.norm2() % 7 + v.manhattan  # norm2 -> dot; property; abs x2

    tally = Tally()
    parts = []
    for i in range(40):
        tally.bump(i % 5)  # bump -> dict.get
        parts.append(str(i))  # list.append, str()
        total += len(parts) + min(i, 10)  # len, min
    total += tally.top() + len(",".join(parts))  # max, dict.values, str.join

    for sq in squares(40):  # 41 generator resumes
        total += sq & 3
    total += sum(squares(10))  # resumes driven from C
    return total


def call_heavy(iterations):
    """Recursion, small methods, builtins and a generator: ~1000 calls per unit."""
    checksum = 0
    for _ in range(iterations):
        checksum += _call_heavy_unit()
    return checksum


# ---------------------------------------------------------------------------
# Hooks for further workloads.  They share the signature of call_heavy so the
# harness can run any of them with --workload.
# ---------------------------------------------------------------------------


def threads(iterations, nthreads=4):
    """The call-heavy unit spread over several threads (GIL switching, per-thread trees).

    The total work equals call_heavy(iterations); it is split between ``nthreads``
    threads that started after any profiler was installed.
    """
    results = [0] * nthreads
    share = [iterations // nthreads + (1 if i < iterations % nthreads else 0) for i in range(nthreads)]

    def worker(idx):
        results[idx] = call_heavy(share[idx])

    workers = [threading.Thread(target=worker, args=(i,), name=f"bench-{i}") for i in range(nthreads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sum(results)


def _alloc_unit():
    rows = [{"id": i, "name": "row%d" % i, "tags": [i, i + 1, i + 2]} for i in range(30)]
    pairs = [(r["id"], tuple(r["tags"])) for r in rows]
    blob = bytearray(256)
    text = " ".join(r["name"] for r in rows)
    index = {name: i for i, name in enumerate(text.split())}
    return len(pairs) + len(blob) + len(index) + sum(len(r["tags"]) for r in rows)


def alloc_heavy(iterations):
    """Many short-lived containers, strings and bytes: for allocation-hook overhead."""
    checksum = 0
    for _ in range(iterations):
        checksum += _alloc_unit()
    return checksum


def alloc_objects(n):
    """n small dicts, lists, strings and bytearrays, kept in batches of 100:
    bench_alloc.py's "objects" (exact counts, some free-list traffic)."""
    keep = []
    for i in range(n):
        d = {"a": i, "b": i + 1}
        l = [i, i, i]
        s = "x%d" % i
        b = bytearray(64)
        keep.append((d, l, s, b))
        if len(keep) >= 100:
            keep = []


def alloc_grow(n):
    """Three times a list of n bytearrays, then all of them freed at once:
    bench_alloc.py's "grow" (a rising then falling peak)."""
    for _ in range(3):
        big = [bytearray(32) for _ in range(n)]
        del big


WORKLOADS = {
    "call_heavy": call_heavy,
    "threads": threads,
    "alloc_heavy": alloc_heavy,
}

# Iterations of call_heavy taking roughly 1.5 s on the development VM; the harness
# calibrates its own count per machine unless --iterations is given.
DEFAULT_ITERATIONS = {"call_heavy": 20000, "threads": 20000, "alloc_heavy": 50000}


def run_for(name, seconds, batch=20):
    """Repeat workload ``name`` in batches until ``seconds`` of wall time have passed.

    Returns (iterations, elapsed_seconds, checksum).  Under a profiler this runs for
    ``seconds`` of *profiled* time, which is what the profile-size test wants.
    """
    func = WORKLOADS[name]
    checksum = 0
    iterations = 0
    t0 = time.perf_counter()
    while True:
        checksum += func(batch)
        iterations += batch
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return iterations, elapsed, checksum


def run_iterations(name, iterations):
    """Run workload ``name`` for a fixed count; returns (elapsed_seconds, checksum)."""
    func = WORKLOADS[name]
    t0 = time.perf_counter()
    checksum = func(iterations)
    return time.perf_counter() - t0, checksum


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workload", choices=sorted(WORKLOADS), default="call_heavy")
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--seconds", type=float, help="run for this many seconds of wall time")
    group.add_argument("--iterations", type=int, help="run exactly this many units")
    args = ap.parse_args(argv)

    if args.seconds is not None:
        iterations, elapsed, checksum = run_for(args.workload, args.seconds)
    else:
        iterations = args.iterations or DEFAULT_ITERATIONS[args.workload]
        elapsed, checksum = run_iterations(args.workload, iterations)
    print(json.dumps({"workload": args.workload, "iterations": iterations,
                      "seconds": round(elapsed, 6), "checksum": checksum}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
