#!/usr/bin/env python3
"""Side-by-side overhead of deterministic profilers on a call-heavy workload.

Every configuration runs the same workload (same iteration count, same checksum) in a
fresh subprocess; runs are interleaved in rounds with a rotating order so machine noise
hits every configuration alike.  Reports median and min workload time and the ratios to
the unprofiled baseline, to an empty C profile hook (the floor of the 3.11 profile hook)
and to cProfile, as a Markdown table on stdout; progress goes to stderr.

    python3 bench/bench_trace.py                       # 5 rounds, full size test
    python3 bench/bench_trace.py --quick               # 2 short rounds, no size test
    python3 bench/bench_trace.py --rounds 5 --json results.json

See bench/README.md.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from _common import compile_c  # bench/, on sys.path when run

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CHILD = os.path.join(HERE, "_child.py")
WORKLOADS_PY = os.path.join(HERE, "workloads.py")
EMPTYHOOK_C = os.path.join(HERE, "emptyhook.c")

# Targets from the issue.
TARGET_VS_CPROFILE = 0.65
TARGET_VS_FLOOR = 1.15
TARGET_SIZE_BYTES = 1_000_000  # "< 1 MB" (decimal megabyte: the stricter reading)
PRIMARY = "cpyprof"

RUN_TIMEOUT = 600

# Output file names per configuration (viztracer insists on .json/.html/.gz).
OUT_EXT = {"viztracer": ".json", "pyinstrument": ".pyisession", "cprofile": ".prof",
           "yappi-wall": ".prof", "yappi-cpu": ".prof"}


class Config:
    def __init__(self, name, label, meaning, env=None, needs=None, lib=False):
        self.name = name
        self.label = label
        self.meaning = meaning
        self.env = env or {}
        self.needs = needs  # Python module the target interpreter must import
        self.lib = lib  # activated with LD_PRELOAD (the parent checks the output file)
        self.skip = None  # reason, when not available


def make_configs(args):
    preload = {"LD_PRELOAD": args.lib_run}
    return [
        Config("baseline", "baseline", "no profiler"),
        Config("emptyhook", "empty C hook (floor)",
               "PyEval_SetProfile with a function returning 0"),
        Config("cprofile", "cProfile", "stdlib cProfile, builtins included", needs="cProfile"),
        Config("yappi-wall", "yappi (wall)", "yappi, wall clock, builtins=True", needs="yappi"),
        Config("yappi-cpu", "yappi (cpu)", "yappi, CPU clock, builtins=True", needs="yappi"),
        Config("viztracer", "viztracer", "viztracer, default 1M-entry ring, C functions logged",
               needs="viztracer"),
        Config("pyinstrument", "pyinstrument (sampler, 1 ms)",
               "statistical: default 1 ms interval, not deterministic", needs="pyinstrument"),
        Config(PRIMARY, "cpyprof (LD_PRELOAD)", "default: trace mode, inline transport, builtins",
               env=dict(preload), lib=True),
        Config("cpyprof-ring", "cpyprof ring transport", "CPYPROF_TRANSPORT=ring",
               env=dict(preload, CPYPROF_TRANSPORT="ring"), lib=True),
        Config("cpyprof-nobuiltins", "cpyprof no builtins", "CPYPROF_BUILTINS=0 (Python calls only)",
               env=dict(preload, CPYPROF_BUILTINS="0"), lib=True),
        Config("cpyprof-import", "cpyprof import mode", "cpyprof.start()/stop() in the process",
               env={"PYTHONPATH": args.pythonpath_run, "LD_LIBRARY_PATH": args.libdir_run},
               needs="cpyprof"),
    ]


# --------------------------------------------------------------------------- helpers


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def child_env(extra=None):
    """A clean environment: no inherited profiler activation, fixed hash seed."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CPYPROF_") and k != "LD_PRELOAD"}
    env["PYTHONHASHSEED"] = "0"
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    for key, value in (extra or {}).items():
        if not value:
            continue
        if key in ("PYTHONPATH", "LD_LIBRARY_PATH") and env.get(key):
            value = value + os.pathsep + env[key]
        env[key] = value
    return env


def probe_python(python, pythonpath):
    """Version, headers and which peers the target interpreter can import."""
    code = r"""
import importlib, json, sys, sysconfig
info = {"version": sys.version.split()[0], "full_version": sys.version.replace("\n", " "),
        "executable": sys.executable,
        "include": sysconfig.get_paths()["include"],
        "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX") or ".so",
        "available": {}}
for name in ("cProfile", "yappi", "viztracer", "pyinstrument"):
    try:
        mod = importlib.import_module(name)
        info["available"][name] = getattr(mod, "__version__", "") or "stdlib"
    except Exception as exc:
        info["available"][name] = None
        info.setdefault("errors", {})[name] = repr(exc)
try:
    import cpyprof
    if hasattr(cpyprof, "start") and hasattr(cpyprof, "stop"):
        info["available"]["cpyprof"] = getattr(cpyprof, "__version__", "") or "yes"
    else:
        info["available"]["cpyprof"] = None
        info.setdefault("errors", {})["cpyprof"] = (
            "package at %s has no start()/stop()" % getattr(cpyprof, "__file__", "?"))
except Exception as exc:
    info["available"]["cpyprof"] = None
    info.setdefault("errors", {})["cpyprof"] = repr(exc)
print(json.dumps(info))
"""
    env = child_env({"PYTHONPATH": pythonpath})
    out = subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def build_emptyhook(python_info, cache_root):
    """Compile emptyhook.c for the target interpreter into a cache directory.

    The directory is keyed by the source, the headers and the extension suffix, so a
    change to any of them rebuilds.  Returns (directory, None) or (None, reason).
    """
    include = python_info["include"]
    if not os.path.exists(os.path.join(include, "Python.h")):
        return None, f"no Python.h in {include} (install the interpreter's -dev headers)"
    with open(EMPTYHOOK_C, "rb") as f:
        src = f.read()
    key = hashlib.sha256(src + include.encode() + python_info["ext_suffix"].encode()
                         + python_info["full_version"].encode()).hexdigest()[:16]
    outdir = os.path.join(cache_root, "emptyhook-" + key)
    target = os.path.join(outdir, "_cpyprof_bench_emptyhook" + python_info["ext_suffix"])
    if os.path.exists(target):
        return outdir, None
    os.makedirs(outdir, exist_ok=True)
    tmp = target + ".tmp%d" % os.getpid()
    why = compile_c(EMPTYHOOK_C, tmp, cflags=("-I", include))
    if why:
        return None, why
    os.replace(tmp, target)
    log(f"built {target}")
    return outdir, None


def default_cache_root():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cpyprof-bench")


def run_child(python, config, args, workdir, iterations=None, seconds=None, tag="run"):
    """Run one configuration in a fresh process. Returns a dict (with "error" on failure)."""
    out = os.path.join(workdir, f"{config.name}-{tag}{OUT_EXT.get(config.name, '.out')}")
    if os.path.exists(out):
        os.unlink(out)
    cmd = [python, CHILD, "--config", config.name, "--workload", args.workload,
           "--emptyhook-dir", args.emptyhook_dir or ""]
    cmd += ["--iterations", str(iterations)] if seconds is None else ["--seconds", str(seconds)]
    env_extra = dict(config.env)
    if config.lib:
        env_extra["CPYPROF_OUTPUT"] = out
    else:
        cmd += ["--out", out]
    env = child_env(env_extra)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                              cwd=workdir)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {RUN_TIMEOUT} s"}
    total = time.perf_counter() - t0
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line[len("BENCH_RESULT "):])
    stderr = proc.stderr.strip()
    if proc.returncode != 0 or result is None:
        tail = stderr.splitlines()[-1] if stderr else "(no stderr)"
        return {"error": f"exit {proc.returncode}: {tail}", "stderr": stderr}
    result["total_s"] = total
    result["stderr"] = stderr
    if config.name.startswith("cpyprof"):
        # An inactive profiler would look like a fast one: insist on a clean start and a file.
        msgs = [l for l in stderr.splitlines() if l.startswith("cpyprof:")]
        bad = [l for l in msgs if "profiling disabled" in l or "cannot" in l]
        if bad:
            return {"error": bad[0], "stderr": stderr}
        # Other messages (records dropped from full rings) do not invalidate the timing,
        # but the profile is incomplete: keep them for the table.
        for line in msgs:
            m = re.search(r"(\d+) records? dropped", line)
            if m:
                result["dropped"] = int(m.group(1))
        result["messages"] = msgs
        if not os.path.exists(out) or os.path.getsize(out) == 0:
            return {"error": f"no profile written at {out}", "stderr": stderr}
    result["out_bytes"] = os.path.getsize(out) if os.path.exists(out) else None
    if os.path.exists(out):
        if args.keep_outputs:
            result["out_path"] = out
        else:
            os.unlink(out)
    return result


def fmt_s(x):
    return "–" if x is None else f"{x:.3f}"


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def fmt_bytes(n):
    if n is None:
        return "–"
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1000:
        return f"{n / 1000:.0f} kB"
    return f"{n} B"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


# --------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="interpreter to benchmark (default: this one)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds of every configuration (default 5; 2 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="short workload (~0.3 s), 2 rounds, no 10-second size test")
    ap.add_argument("--json", metavar="OUT", help="also write all runs and results as JSON")
    ap.add_argument("--lib", default=os.path.join(REPO, "build", "libcpyprof.so"),
                    help="cpyprof library for LD_PRELOAD (default <repo>/build/libcpyprof.so)")
    ap.add_argument("--pythonpath", default=None,
                    help="where `import cpyprof` is found for import mode (default: <lib dir>/python)")
    ap.add_argument("--workload", default="call_heavy", help="workload from bench/workloads.py")
    ap.add_argument("--iterations", type=int, help="fixed workload size (default: calibrate to --target-seconds)")
    ap.add_argument("--target-seconds", type=float, default=None,
                    help="unprofiled workload duration to calibrate to (default 1.5; 0.3 with --quick)")
    ap.add_argument("--size-seconds", type=float, default=None,
                    help="duration of the profile-size test (default 10; 0 skips; skipped with --quick)")
    ap.add_argument("--configs", help="comma-separated subset of configurations to run")
    ap.add_argument("--cache-dir", default=default_cache_root(), help="where the empty hook is built")
    ap.add_argument("--keep-outputs", action="store_true", help="keep the profilers' output files")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target FAILs")
    args = ap.parse_args(argv)

    rounds = args.rounds if args.rounds is not None else (2 if args.quick else 5)
    target_s = args.target_seconds if args.target_seconds is not None else (0.3 if args.quick else 1.5)
    size_s = args.size_seconds if args.size_seconds is not None else (0 if args.quick else 10)
    args.lib = os.path.abspath(args.lib)
    if args.pythonpath is None:
        args.pythonpath = os.path.join(os.path.dirname(args.lib), "python")
    python = args.python

    info = probe_python(python, args.pythonpath)
    log(f"python {info['version']} at {info['executable']}")

    # Snapshot the library and the package: the lead may rebuild build/ while we run, and
    # one run must not mix two versions.
    workdir = tempfile.mkdtemp(prefix="cpyprof-bench-")
    snap = os.path.join(workdir, "snapshot")
    os.makedirs(snap)
    args.lib_run, args.pythonpath_run, args.libdir_run = args.lib, args.pythonpath, ""
    lib_id = "not found"
    if os.path.exists(args.lib):
        args.lib_run = os.path.join(snap, os.path.basename(args.lib))
        shutil.copy2(args.lib, args.lib_run)
        with open(args.lib_run, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        mtime = datetime.datetime.fromtimestamp(os.path.getmtime(args.lib), datetime.timezone.utc)
        lib_id = f"sha256 {digest}, built {mtime:%Y-%m-%d %H:%M:%S} UTC"
        try:
            head = subprocess.run(["git", "-C", REPO, "log", "-1", "--format=%h %s"],
                                  capture_output=True, text=True).stdout.strip()
            if head:
                lib_id += f"; repo HEAD {head}"
        except OSError:
            pass
    if os.path.isdir(args.pythonpath):
        args.pythonpath_run = os.path.join(snap, "python")
        shutil.copytree(args.pythonpath, args.pythonpath_run,
                        ignore=shutil.ignore_patterns("__pycache__"))
        # The extension finds libcpyprof.so through its RUNPATH (the build dir); point the
        # loader at the snapshot's copy first.
        for root, _, files in os.walk(args.pythonpath_run):
            if "libcpyprof.so" in files:
                args.libdir_run = root
                break
        else:
            args.libdir_run = snap

    configs = make_configs(args)
    if args.configs:
        wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
        unknown = set(wanted) - {c.name for c in configs}
        if unknown:
            ap.error("unknown configs: %s (known: %s)" % (", ".join(sorted(unknown)),
                                                        ", ".join(c.name for c in configs)))
        # baseline is always needed for ratios and checksums
        configs = [c for c in configs if c.name in wanted or c.name == "baseline"]

    args.emptyhook_dir, why = build_emptyhook(info, args.cache_dir)
    errors = info.get("errors", {})
    for c in configs:
        if c.name == "emptyhook" and why:
            c.skip = why
        elif c.needs and not info["available"].get(c.needs):
            if c.needs == "cpyprof":
                c.skip = f"`import cpyprof` from {args.pythonpath} failed: {errors.get('cpyprof')}"
            else:
                c.skip = f"{c.needs} is not installed in {python} ({python} -m pip install {c.needs})"
        elif c.lib and not os.path.exists(args.lib):
            c.skip = f"{args.lib} not found (cmake -S . -B build -G Ninja && cmake --build build)"
    for c in configs:
        if c.skip:
            log(f"skip {c.name}: {c.skip}")
    active = [c for c in configs if not c.skip]
    by_name = {c.name: c for c in configs}
    baseline = by_name["baseline"]

    try:
        # Calibrate: how many units fill target_s unprofiled on this machine.
        if args.iterations:
            iterations = args.iterations
        else:
            # The fastest of three short runs: a busy moment on a 2-core machine must not
            # inflate the size of every later run.
            rate = 0.0
            for k in range(3):
                cal = run_child(python, baseline, args, workdir, seconds=max(0.2, target_s / 3),
                                tag=f"cal{k}")
                if "error" in cal:
                    sys.exit(f"bench_trace: calibration run failed: {cal['error']}")
                rate = max(rate, cal["iterations"] / cal["workload_s"])
            iterations = max(20, int(round(rate * target_s / 20)) * 20)
        sizing = "fixed with --iterations" if args.iterations else f"calibrated to ~{target_s:g} s unprofiled"
        log(f"workload {args.workload}: {iterations} iterations ({sizing})")

        # Count the calls one run makes (cProfile's total_calls, builtins and generator
        # resumes included) to express overheads per call.
        calls = None
        cnt = run_child(python, Config("count", "count", ""), args, workdir, iterations=iterations, tag="count")
        if "error" not in cnt:
            calls = cnt.get("calls")
            log(f"calls per run: {calls}")

        runs = {c.name: [] for c in configs}
        failures = {}
        expected_checksum = None
        n = len(active)
        for r in range(rounds):
            order = active[r % n:] + active[:r % n]
            for c in order:
                if c.name in failures:
                    continue
                res = run_child(python, c, args, workdir, iterations=iterations, tag=f"r{r}")
                if "error" not in res:
                    if expected_checksum is None:
                        expected_checksum = res["checksum"]
                    elif res["checksum"] != expected_checksum:
                        res = {"error": f"checksum {res['checksum']} != {expected_checksum}"}
                if "error" in res:
                    failures[c.name] = res["error"]
                    log(f"round {r + 1}/{rounds} {c.name:20s} FAILED: {res['error']}")
                    if res.get("stderr"):
                        log("    " + res["stderr"].replace("\n", "\n    ")[-2000:])
                    continue
                runs[c.name].append(res)
                log(f"round {r + 1}/{rounds} {c.name:20s} workload {res['workload_s']:7.3f} s"
                    f"  total {res['total_s']:7.3f} s")

        # Summaries.
        summary = {}
        for c in configs:
            rs = runs[c.name]
            if not rs:
                continue
            ws = [x["workload_s"] for x in rs]
            sizes = [x["out_bytes"] for x in rs if x.get("out_bytes") is not None]
            summary[c.name] = {
                "median_s": statistics.median(ws), "min_s": min(ws), "max_s": max(ws),
                "median_total_s": statistics.median(x["total_s"] for x in rs),
                "median_finish_s": statistics.median(x["finish_s"] for x in rs),
                "out_bytes": int(statistics.median(sizes)) if sizes else None,
                "dropped_max": max((x.get("dropped", 0) for x in rs), default=0),
                "runs": len(rs),
            }

        def ratio(name, ref):
            if name in summary and ref in summary:
                return summary[name]["median_s"] / summary[ref]["median_s"]
            return None

        def min_ratio(name, ref):
            if name in summary and ref in summary:
                return summary[name]["min_s"] / summary[ref]["min_s"]
            return None

        for name, s in summary.items():
            s["min_x_floor"] = min_ratio(name, "emptyhook")
            s["min_x_cprofile"] = min_ratio(name, "cprofile")
            s["x_baseline"] = ratio(name, "baseline")
            s["x_floor"] = ratio(name, "emptyhook")
            s["x_cprofile"] = ratio(name, "cprofile")
            if calls and "baseline" in summary:
                s["ns_per_call"] = (s["median_s"] - summary["baseline"]["median_s"]) / calls * 1e9
            else:
                s["ns_per_call"] = None

        # Profile-size test: the default cpyprof configuration, one run of size_s seconds.
        size_result = None
        primary = by_name.get(PRIMARY)
        if size_s > 0 and primary is not None:
            if primary.skip or PRIMARY in failures:
                size_result = {"error": primary.skip or failures[PRIMARY]}
            else:
                log(f"size test: cpyprof, {args.workload} for {size_s:g} s ...")
                res = run_child(python, primary, args, workdir, seconds=size_s, tag="size")
                size_result = res if "error" in res else {
                    "seconds": res["workload_s"], "iterations": res["iterations"],
                    "calls": (calls * res["iterations"] // iterations) if calls else None,
                    "bytes": res["out_bytes"], "total_s": res["total_s"]}
    finally:
        if not args.keep_outputs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"outputs kept in {workdir}")

    # ----------------------------------------------------------------- report
    lines = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"## cpyprof overhead: `{args.workload}` ({now})")
    lines.append("")
    lines.append(f"- Python {info['version']} ({info['executable']}); {os.cpu_count()} CPUs, {cpu_model()}")
    callstr = f"{calls:,} calls per run (cProfile count, builtins and generator resumes included)" if calls else "calls not counted"
    lines.append(f"- {iterations} iterations per run ({sizing}); {callstr}")
    lines.append(f"- {rounds} rounds, each configuration in a fresh process, rotating order; "
                 "times are the workload only (time.perf_counter() inside the process)")
    lines.append(f"- library: {args.lib} ({lib_id})")
    lines.append("")
    lines.append("| configuration | median s | min s | × baseline | × empty hook | × cProfile "
                 "| ns/call over baseline | process s (median) | output |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in configs:
        if c.name in summary:
            s = summary[c.name]
            nsc = "–" if s["ns_per_call"] is None or c.name == "baseline" else f"{s['ns_per_call']:.0f}"
            lines.append(f"| {c.label} | {fmt_s(s['median_s'])} | {fmt_s(s['min_s'])} | "
                         f"{fmt_ratio(s['x_baseline'])} | {fmt_ratio(s['x_floor'])} | "
                         f"{fmt_ratio(s['x_cprofile'])} | {nsc} | {fmt_s(s['median_total_s'])} | "
                         f"{fmt_bytes(s['out_bytes'])}"
                         + (f" (up to {s['dropped_max']:,} records dropped)" if s["dropped_max"] else "")
                         + " |")
        else:
            why = ("skipped: " + c.skip) if c.skip else ("failed: " + failures.get(c.name, "no runs"))
            lines.append(f"| {c.label} | {why.replace('|', '/')} | | | | | | | |")
    lines.append("")
    lines.append("Configurations: " + "; ".join(f"**{c.label}** = {c.meaning}" for c in configs) + ".")
    lines.append("")

    # Targets.
    verdicts = []

    def verdict(ok, text):
        word = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        verdicts.append((word, text))

    p = summary.get(PRIMARY)
    if p and p["x_cprofile"] is not None:
        verdict(p["x_cprofile"] <= TARGET_VS_CPROFILE,
                f"cpyprof wall ≤ {TARGET_VS_CPROFILE} × cProfile: {p['x_cprofile']:.3f}×")
    else:
        verdict(None, f"cpyprof wall ≤ {TARGET_VS_CPROFILE} × cProfile: not measured")
    if p and p["x_floor"] is not None:
        verdict(p["x_floor"] <= TARGET_VS_FLOOR,
                f"cpyprof wall ≤ {TARGET_VS_FLOOR} × empty-hook floor: {p['x_floor']:.3f}×")
    else:
        verdict(None, f"cpyprof wall ≤ {TARGET_VS_FLOOR} × empty-hook floor: not measured")
    if size_result is None:
        verdict(None, f"profile of a {size_s or 10:g}-second run < 1 MB: not run"
                + (" (--quick)" if args.quick else ""))
    elif "error" in size_result:
        verdict(None, f"profile of a {size_s:g}-second run < 1 MB: {size_result['error']}")
    else:
        b = size_result["bytes"]
        callinfo = f", ~{size_result['calls']:,} calls" if size_result.get("calls") else ""
        verdict(b < TARGET_SIZE_BYTES,
                f"profile of a {size_s:g}-second run < 1 MB: {b:,} bytes "
                f"({size_result['iterations']} iterations in {size_result['seconds']:.2f} s{callinfo})")
    lines.append("Targets (default cpyprof configuration):")
    lines.append("")
    lines.append("```")
    for word, text in verdicts:
        lines.append(f"{word} {text}")
    # Informational: the other cpyprof variants against the same targets.
    # Informational: the same ratios on the fastest runs, and the other cpyprof variants.
    for name in (PRIMARY, "cpyprof-ring", "cpyprof-nobuiltins", "cpyprof-import"):
        s = summary.get(name)
        if s and s["x_cprofile"] is not None and s["x_floor"] is not None:
            lines.append(f"info {name}: median {s['x_cprofile']:.3f}× cProfile, {s['x_floor']:.3f}× floor;"
                         f" min/min {s['min_x_cprofile']:.3f}× cProfile, {s['min_x_floor']:.3f}× floor")
    lines.append("```")
    report = "\n".join(lines)
    print(report)

    if args.json:
        doc = {
            "schema": "cpyprof.bench_trace/1", "date": now, "python": info,
            "cpus": os.cpu_count(), "cpu_model": cpu_model(), "workload": args.workload,
            "iterations": iterations, "calls_per_run": calls, "rounds": rounds,
            "lib": args.lib, "lib_id": lib_id,
            "configs": [{"name": c.name, "label": c.label, "meaning": c.meaning,
                         "env": c.env, "skipped": c.skip, "failed": failures.get(c.name)}
                        for c in configs],
            "summary": summary,
            "runs": {k: [{kk: vv for kk, vv in r.items() if kk != "stderr"} for r in v]
                     for k, v in runs.items()},
            "size_test": size_result,
            "verdicts": [{"result": w, "text": t} for w, t in verdicts],
            "markdown": report,
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        log(f"wrote {args.json}")

    if args.check and any(w == "FAIL" for w, _ in verdicts):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
