#!/usr/bin/env python3
"""Overhead of cpyprof's allocation counting, side by side with the baseline,
tracemalloc (1 frame) and memray (with and without native traces).

Workloads (fixed amounts of work, so times compare; --scale multiplies them,
default 3: runs of about a second, steadier than the 0.3 s of scale 1):
  objects  dicts, lists, tuples, strings and bytearrays made and dropped in
           a loop (about 6 allocations and 6 frees per iteration)
  grow     a list of 200k small objects built and freed (the size map grows)
  alloc_heavy  workloads.py's alloc_heavy (10000 iterations), the workload the
           other benchmarks share: containers, strings, comprehensions

Configurations (each run is a fresh process; the child times only the
workload, with time.perf_counter() and with time.process_time(), the
process's CPU time, which other jobs on a shared machine disturb less;
rounds are interleaved with a rotating order so machine noise hits every
configuration alike):
  baseline        no profiler
  alloc           cpyprof.start(mode="sample", rate=1, alloc=True): counting
                  mode, per function, no profile hook (the figure the target
                  is about)
  native          the same with alloc="native" (malloc/free of C code too)
  trace           cpyprof.start() (deterministic, no counting)
  trace+alloc     cpyprof.start(alloc=True): counting per call-tree node
  tracemalloc     tracemalloc.start(1)
  memray          memray.Tracker(file) (Python allocators traced)
  memray-native   memray.Tracker(file, native_traces=True)

Target: alloc <= 10% over baseline (median wall time; the CPU-time column
is the steadier figure on a loaded machine). trace+alloc is compared with
trace (the counting's own share under the deterministic hook). memray must
be importable by the Python that runs the benchmark (pip install memray);
otherwise its rows are left out and the table says so.

    python3 bench/bench_alloc.py --python /root/.pyenv/versions/3.11.7/bin/python3
    python3 bench/bench_alloc.py --quick   # 2 rounds, workloads at scale 0.3
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

from _common import measure, parse_arguments, run_child  # bench/, on sys.path when run

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

CHILD = textwrap.dedent(r"""
    import sys, time
    workload, cfg, scale, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    sys.path.insert(0, sys.argv[5])
    import workloads

    work = {"objects": lambda: workloads.alloc_objects(int(300_000 * scale)),
            "grow": lambda: workloads.alloc_grow(int(200_000 * scale)),
            "alloc_heavy": lambda: workloads.alloc_heavy(int(10_000 * scale))}[workload]

    tracker = None
    if cfg in ("alloc", "native", "trace", "trace+alloc"):
        import cpyprof
        kw = {"alloc": True} if cfg.endswith("alloc") else {}
        if cfg in ("alloc", "native"):
            kw.update(mode="sample", rate=1, alloc=True if cfg == "alloc" else "native")
        cpyprof.start(out, quiet=True, **kw)
    elif cfg == "tracemalloc":
        import tracemalloc
        tracemalloc.start(1)
    elif cfg.startswith("memray"):
        import memray
        tracker = memray.Tracker(out, native_traces=cfg == "memray-native")
        tracker.__enter__()
    t0, c0 = time.perf_counter(), time.process_time()
    work()
    t1, c1 = time.perf_counter(), time.process_time()
    if cfg in ("alloc", "native", "trace", "trace+alloc"):
        cpyprof.stop()
    elif cfg == "tracemalloc":
        tracemalloc.stop()
    elif tracker is not None:
        tracker.__exit__(None, None, None)
    print("%.6f %.6f" % (t1 - t0, c1 - c0))
""")

CONFIGS = ["baseline", "alloc", "native", "trace", "trace+alloc", "tracemalloc", "memray", "memray-native"]
TARGETS = {"alloc": 10.0}


def run_one(py, build, workload, cfg, scale, tmp):
    out = os.path.join(tmp, "%s-%s.out" % (workload, cfg))
    if os.path.exists(out):
        os.unlink(out)  # memray refuses to overwrite
    stdout = run_child([py, "-c", CHILD, workload, cfg, str(scale), out, HERE], build, workload,
                       cfg, timeout=900)
    wall, cpu = stdout.split()[-2:]
    return float(wall), float(cpu)


def main():
    # --scale 3 (default): about a second of baseline each
    a, rounds, scale, workloads = parse_arguments(
        __doc__, REPO, rounds=5, python="/root/.pyenv/versions/3.11.7/bin/python3",
        workloads="objects,grow,alloc_heavy", scale=3.0)
    configs = list(CONFIGS)
    have_memray = subprocess.run([a.python, "-c", "import memray"],
                                 capture_output=True).returncode == 0
    if not have_memray:
        configs = [c for c in configs if not c.startswith("memray")]
    with tempfile.TemporaryDirectory() as tmp:
        times, cpus = measure(rounds, workloads, configs,
                              lambda w, c: run_one(a.python, a.build, w, c, scale, tmp))

    print("python: %s; %d rounds; scale %g; indicative only on a shared, loaded machine"
          % (a.python, rounds, scale))
    if not have_memray:
        print("memray: not importable by this Python (pip install memray): rows left out")
    print()
    print("| workload | config | median s | min s | vs baseline | vs baseline (min) "
          "| vs baseline (CPU) | target | ok |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    result = {}
    ok_all = True
    for w in workloads:
        base = statistics.median(times[(w, "baseline")])
        base_min = min(times[(w, "baseline")])
        base_cpu = statistics.median(cpus[(w, "baseline")])
        for c in configs:
            med = statistics.median(times[(w, c)])
            mn = min(times[(w, c)])
            vb = 100.0 * (med / base - 1.0)
            vm = 100.0 * (mn / base_min - 1.0)
            vc = 100.0 * (statistics.median(cpus[(w, c)]) / base_cpu - 1.0)
            tgt = TARGETS.get(c)
            ok = "" if tgt is None else ("PASS" if vb <= tgt else "FAIL")
            ok_all &= ok != "FAIL"
            print("| %s | %s | %.3f | %.3f | %+.1f%% | %+.1f%% | %+.1f%% | %s | %s |" % (
                w, c, med, mn, vb, vm, vc, "<= %g%%" % tgt if tgt else "", ok))
            result["%s/%s" % (w, c)] = {"median": med, "min": mn, "vs_baseline_pct": vb,
                                         "vs_baseline_min_pct": vm, "vs_baseline_cpu_pct": vc,
                                         "target_pct": tgt}
    print()
    for w in workloads:
        tr = statistics.median(times[(w, "trace")])
        ta = statistics.median(times[(w, "trace+alloc")])
        print("- %s: counting under the deterministic hook, trace+alloc vs trace: %+.1f%%"
              % (w, 100.0 * (ta / tr - 1)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"python": a.python, "rounds": rounds, "scale": scale, "results": result},
                      f, indent=2)
    return 0 if ok_all else 1


if __name__ == "__main__":
    sys.exit(main())
