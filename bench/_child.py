"""One measured run of one configuration (started by bench_trace.py in a fresh process).

    python bench/_child.py --config cprofile --iterations 20000 --out /tmp/x.prof

Installs the named profiler in-process (or none: the LD_PRELOAD configurations are set up
by the parent through the environment), times only the workload with
time.perf_counter(), then stops the profiler and writes its output (timed separately), and
prints one line ``BENCH_RESULT {json}`` on stdout.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import workloads  # noqa: E402


def _noop():
    return None


def setup(config, args):
    """Return (start, stop, finish) for ``config``.

    start/stop bracket the timed workload; finish writes the profiler's output (untimed
    for the workload figure, but inside the process wall time).
    """
    out = args.out

    if config in ("baseline", "cpyprof", "cpyprof-ring", "cpyprof-nobuiltins"):
        # Nothing in-process: baseline has no profiler; the cpyprof LD_PRELOAD variants are
        # activated by the environment before main() and write their file at exit.
        return _noop, _noop, _noop

    if config == "emptyhook":
        sys.path.insert(0, args.emptyhook_dir)
        import _cpyprof_bench_emptyhook as hook

        return hook.install, hook.uninstall, _noop

    if config in ("cprofile", "count"):
        import cProfile

        prof = cProfile.Profile()  # builtins=True by default

        def finish():
            if config == "count":
                import pstats

                args.extra["calls"] = pstats.Stats(prof).total_calls
            elif out:
                prof.dump_stats(out)

        return prof.enable, prof.disable, finish

    if config in ("yappi-wall", "yappi-cpu"):
        import yappi

        yappi.set_clock_type("wall" if config == "yappi-wall" else "cpu")

        def finish():
            stats = yappi.get_func_stats()
            if out:
                stats.save(out, type="pstat")

        # builtins=True so yappi sees the same C calls as cProfile and cpyprof.
        return (lambda: yappi.start(builtins=True)), yappi.stop, finish

    if config == "viztracer":
        from viztracer import VizTracer

        tracer = VizTracer(verbose=0, output_file=out or os.devnull)
        return tracer.start, tracer.stop, (lambda: tracer.save(out) if out else None)

    if config == "pyinstrument":
        from pyinstrument import Profiler

        prof = Profiler()  # default interval: 1 ms sampling (on top of a C profile hook)

        def finish():
            if out and prof.last_session is not None:
                prof.last_session.save(out)

        return prof.start, prof.stop, finish

    if config == "cpyprof-import":
        import cpyprof

        return (lambda: cpyprof.start(out or "cpyprof.out")), cpyprof.stop, _noop

    raise SystemExit(f"_child.py: unknown config {config!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--workload", default="call_heavy", choices=sorted(workloads.WORKLOADS))
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--iterations", type=int)
    group.add_argument("--seconds", type=float)
    ap.add_argument("--out", default="")
    ap.add_argument("--emptyhook-dir", default="")
    args = ap.parse_args()
    args.extra = {}

    t_setup = time.perf_counter()
    start, stop, finish = setup(args.config, args)
    func = workloads.WORKLOADS[args.workload]

    start()
    c0 = time.process_time()  # all threads of the process (a writer thread too)
    t0 = time.perf_counter()
    if args.seconds is not None:
        iterations, _, checksum = workloads.run_for(args.workload, args.seconds)
    else:
        iterations = args.iterations
        checksum = func(iterations)
    t1 = time.perf_counter()
    c1 = time.process_time()
    stop()
    finish()
    t2 = time.perf_counter()

    result = {
        "config": args.config,
        "workload": args.workload,
        "iterations": iterations,
        "checksum": checksum,
        "workload_s": t1 - t0,
        "workload_cpu_s": c1 - c0,
        "setup_s": t0 - t_setup,
        "finish_s": t2 - t1,
    }
    result.update(args.extra)
    sys.stdout.flush()
    print("BENCH_RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
