"""What the side-by-side benchmarks (bench_alloc.py, bench_gil.py) share:
the common options, a clean environment for the child, running one child
and the round order; the A/B scripts' table (print_ab_table); building the
C helpers (compile_c).

Every configuration runs in a fresh process started with this environment:
PYTHONPATH points at the build's assembled package, and every CPYPROF_*
variable and LD_PRELOAD of the caller is removed so that only the
configuration under test profiles anything."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys


def parse_arguments(doc, repo, rounds, python, workloads, scale=None):
    """The common options (--rounds, --quick, --python, --build,
    --workloads, --json; --scale too when `scale` is given, its default)
    parsed: (args, rounds, scale, [workload]); --quick means 2 rounds of
    0.3 x the work."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    if scale is not None:
        ap.add_argument("--scale", type=float, default=scale,
                        help="workload size (default %g)" % scale)
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--python", default=python)
    ap.add_argument("--build", default=os.environ.get("CPYPROF_BUILD_DIR") or
                    os.path.join(repo, "build"))
    ap.add_argument("--workloads", default=workloads)
    ap.add_argument("--json")
    a = ap.parse_args()
    full = a.scale if scale is not None else 1.0
    return (a, 2 if a.quick else a.rounds, 0.3 if a.quick else full, a.workloads.split(","))


def child_env(build):
    env = dict(os.environ, PYTHONPATH=os.path.join(build, "python"))
    for k in list(env):
        if k.startswith("CPYPROF_") or k == "LD_PRELOAD":
            del env[k]
    return env


def run_child(argv, build, workload, cfg, timeout):
    """Runs one measured child; its stdout, or exits naming the run."""
    p = subprocess.run(argv, env=child_env(build), capture_output=True, text=True,
                       timeout=timeout)
    if p.returncode != 0:
        sys.exit("run failed (%s %s):\n%s" % (workload, cfg, p.stderr))
    return p.stdout


def rotated(configs, r):
    """Round r's order: the configurations rotated by r, so that machine
    noise does not always hit the same one first."""
    k = r % len(configs)
    return configs[k:] + configs[:k]


def measure(rounds, workloads, configs, run):
    """Every configuration of every workload, `rounds` times, the rounds
    interleaved (rotated order). run(workload, config) -> (wall s, CPU s).
    Returns (times, cpus): {(workload, config): [seconds per round]}."""
    times = {(w, c): [] for w in workloads for c in configs}
    cpus = {(w, c): [] for w in workloads for c in configs}
    for r in range(rounds):
        for w in workloads:
            for c in rotated(configs, r):
                t, cpu = run(w, c)
                times[(w, c)].append(t)
                cpus[(w, c)].append(cpu)
                print("round %d %-8s %-14s %.3fs (cpu %.3fs)" % (r + 1, w, c, t, cpu),
                      file=sys.stderr)
    return times, cpus


def print_ab_table(names, cpu, wall):
    """The A/B scripts' table: per configuration (names[0] is the baseline), the
    medians of CPU and wall seconds against the baseline's, and the medians of the
    paired ratios (each run over the baseline run of its own round)."""
    base = names[0]
    bc, bw = statistics.median(cpu[base]), statistics.median(wall[base])
    print("| config | CPU median s | vs baseline | wall median s | vs baseline "
          "| paired CPU | paired wall |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        c, w = statistics.median(cpu[name]), statistics.median(wall[name])
        pc = statistics.median(x / b for x, b in zip(cpu[name], cpu[base]))
        pw = statistics.median(x / b for x, b in zip(wall[name], wall[base]))
        print("| %s | %.4f | %+.1f%% | %.4f | %+.1f%% | %+.1f%% | %+.1f%% |"
              % (name, c, 100 * (c / bc - 1), w, 100 * (w / bw - 1), 100 * (pc - 1),
                 100 * (pw - 1)))


def compile_c(src, target, cflags=(), libs=()):
    """Builds a shared object for a benchmark helper (emptyhook.c, passalloc.c,
    sigfloor.c): `cc -shared -fPIC -O2 CFLAGS src -o target LIBS`, cc from $CC.
    Returns None, or why it could not (one line, then the compiler's output)."""
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc.split()[0]):
        return "no C compiler (%s)" % cc
    cmd = cc.split() + ["-shared", "-fPIC", "-O2", *cflags, src, "-o", target, *libs]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return "build failed: %s\n%s" % (" ".join(cmd), p.stderr.strip())
    return None
