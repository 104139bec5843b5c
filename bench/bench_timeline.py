#!/usr/bin/env python3
"""Timeline mode side by side: the call-heavy workload (bench/workloads.py) with no
profiler, cProfile, cpyprof --mode timeline (streaming and flight recorder) and
viztracer, in one run, with the peak memory (ru_maxrss) of each child; then the time and
peak memory of converting a generated 10-million-event timeline to Chrome JSON.

Every configuration runs the same workload (same iterations, same checksum) in a fresh
process, in rounds with a rotating order so that machine noise hits them alike. The
workload time is measured inside the child (time.perf_counter around the workload only);
"CPU s" is the process's CPU time over the same interval (all threads: cpyprof's writer
thread too, which on a loaded 2-core machine competes with the workload); "process" is
the child's whole wall time, which includes writing the output.

    python3 bench/bench_timeline.py                        # 5 rounds + the 10M conversion
    python3 bench/bench_timeline.py --quick                # 2 rounds, 2M-event conversion
    python3 bench/bench_timeline.py --python ~/.pyenv/versions/3.11.7/bin/python3

viztracer must be importable by --python (it is installed on the pyenv python here).
Targets (issue 7): timeline <= 0.75 x cProfile and below viztracer; 10 M events to
Chrome JSON in under 10 s.
"""

import argparse
import array
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CHILD = os.path.join(HERE, "_child.py")
TARGET_VS_CPROFILE = 0.75
TARGET_CONVERT_S = 10.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def child_env(extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CPYPROF_") and k != "LD_PRELOAD"}
    env["PYTHONHASHSEED"] = "0"
    env.update(extra)
    return env


def run_measured(cmd, env, cwd):
    """Runs cmd; returns (returncode, stdout, stderr, wall seconds, peak RSS in kB)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read().decode(), err.read().decode(), wall, usage.ru_maxrss


CONFIGS = [
    # name, label, child config, environment
    ("baseline", "baseline", "baseline", {}),
    ("cprofile", "cProfile", "cprofile", {}),
    ("timeline", "cpyprof timeline, streaming", "cpyprof",
     {"CPYPROF_MODE": "timeline", "CPYPROF_KEEP": "all", "CPYPROF_BUFFER": "16M"}),
    ("timeline-last", "cpyprof timeline, flight recorder 32M", "cpyprof",
     {"CPYPROF_MODE": "timeline", "CPYPROF_KEEP": "last", "CPYPROF_BUFFER": "32M"}),
    ("viztracer", "viztracer (1M-entry ring)", "viztracer", {}),
]


def run_config(args, cfg, workdir, iterations):
    name, _, child_cfg, extra = cfg
    out = os.path.join(workdir, name + (".json" if name == "viztracer" else ".out"))
    if os.path.exists(out):
        os.unlink(out)
    cmd = [args.python, CHILD, "--config", child_cfg, "--workload", args.workload,
           "--iterations", str(iterations)]
    env = dict(extra)
    if child_cfg == "cpyprof":
        env.update(LD_PRELOAD=args.lib, CPYPROF_OUTPUT=out)
    elif name != "baseline":
        cmd += ["--out", out]
    rc, stdout, stderr, wall, rss = run_measured(cmd, child_env(env), workdir)
    res = None
    for line in stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            res = json.loads(line[len("BENCH_RESULT "):])
    if rc != 0 or res is None:
        raise SystemExit("%s failed (exit %d): %s" % (name, rc, stderr.strip()[-500:]))
    res["process_s"] = wall
    res["rss_kb"] = rss
    res["out_bytes"] = os.path.getsize(out) if os.path.exists(out) else 0
    res["dropped"] = 0
    for line in stderr.splitlines():
        if "records dropped" in line:
            res["dropped"] = int(line.split("cpyprof: ")[1].split()[0])
    if child_cfg == "cpyprof" and not res["out_bytes"]:
        raise SystemExit("%s wrote no profile: %s" % (name, stderr.strip()[-500:]))
    if os.path.exists(out):
        os.unlink(out)
    return res


# ---- a generated timeline for the conversion benchmark ------------------------------

def chunk(ctype, payload):
    return struct.pack("<IIQ", ctype, zlib.crc32(payload), len(payload)) + payload


def make_timeline(path, n_events, n_threads=2):
    """A profile file whose TIMELINE chunks hold n_events nested events (a fixed
    pattern of depth-first calls, 8 children under each of 2 levels, 40 functions),
    spread over n_threads threads."""
    meta = b""
    for k, v in (("cpyprof_version", "bench"), ("mode", "timeline"), ("pid", "4242"),
                 ("argv", "python3\0generated.py"), ("timeline_keep", "all")):
        meta += struct.pack("<I", len(k)) + k.encode() + struct.pack("<I", len(v)) + v.encode()
    names = ["func_%d" % i for i in range(40)] + ["/src/app/module.py", "MainThread",
                                                  "Worker"]
    strings = struct.pack("<II", 0, len(names))
    for s in names:
        strings += struct.pack("<I", len(s)) + s.encode()
    funcs = struct.pack("<I", 40)
    for i in range(40):
        funcs += struct.pack("<6I", i, i, 40, 10 + i, 0, 0)
    # one balanced block: a root call, 8 calls under it, each with 8 leaves -> 146 events
    block = []
    t = 0

    def ev(kind, func, depth):
        nonlocal t
        block.append((t, func | ((kind | depth << 8) << 32)))
        t += 37

    ev(1, 0, 1)
    for i in range(8):
        ev(1, 1 + i, 2)
        for j in range(8):
            ev(1, 9 + (i * 8 + j) % 31, 3)
            ev(2, 9 + (i * 8 + j) % 31, 3)
        ev(2, 1 + i, 2)
    ev(2, 0, 1)
    per_chunk_blocks = 65536 // len(block)
    per_chunk = per_chunk_blocks * len(block)
    base = array.array("Q")
    for b in range(per_chunk_blocks):
        for tt, word in block:
            base.append(tt + b * t)
            base.append(word)
    span = per_chunk_blocks * t
    written = 0
    with open(path, "wb") as f:
        f.write(b"CPYPROF\0" + struct.pack("<II", 1, 0))
        f.write(chunk(1, meta))
        c = 0
        while written < n_events:
            n = min(per_chunk, n_events - written)
            n -= n % len(block) if n < per_chunk else 0
            if n <= 0:
                break
            thread = c % n_threads
            off = (c // n_threads) * span
            recs = array.array("Q", base[:2 * n])
            recs[0::2] = array.array("Q", (x + off for x in recs[0::2]))
            f.write(chunk(12, struct.pack("<II", thread, n) + recs.tobytes()))
            written += n
            c += 1
        for th in range(n_threads):
            f.write(chunk(4, struct.pack("<IIQQqqII", th, 41 + th, 1000 + th, 5000 + th, 0, -1,
                                         1 if th == 0 else 2, 0)))
        f.write(chunk(2, strings))
        f.write(chunk(3, funcs))
        f.write(chunk(0x7F, struct.pack("<QQQQqIIQQ", written, 0, 0, n_threads,
                                        (c // n_threads + 1) * span, 0, 0, 0, 0)))
    return written


def bench_convert(args, workdir):
    n = 2_000_000 if args.quick else args.events
    src = os.path.join(workdir, "big.cpyprof")
    log("generating a %d-event timeline..." % n)
    written = make_timeline(src, n)
    out = os.path.join(workdir, "big.json")
    cli = os.path.join(os.path.dirname(args.lib), "cpyprof")
    runs = []
    for _ in range(2 if args.quick else 3):
        rc, _, stderr, wall, rss = run_measured([cli, "convert", src, "--to", "chrome", "-o", out],
                                                child_env({}), workdir)
        if rc != 0:
            raise SystemExit("convert failed: " + stderr)
        runs.append((wall, rss))
    size_in = os.path.getsize(src)
    size_out = os.path.getsize(out)
    with open(out, "rb") as f:  # light check: the tail closes the document
        f.seek(max(0, size_out - 300))
        tail = f.read().decode(errors="replace")
    assert tail.rstrip().endswith("}}"), tail
    os.unlink(src)
    os.unlink(out)
    best = min(r[0] for r in runs)
    return {"events": written, "input_bytes": size_in, "output_bytes": size_out,
            "seconds": [r[0] for r in runs], "best_s": best,
            "peak_rss_kb": max(r[1] for r in runs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--lib", default=os.path.join(REPO, "build", "libcpyprof.so"))
    ap.add_argument("--workload", default="call_heavy")
    ap.add_argument("--iterations", type=int, default=None,
                    help="call_heavy units per run (default 3000, about 6 million events and "
                         "0.15 s unprofiled: shorter runs are dominated by noise; --quick 1000)")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--no-convert", action="store_true")
    ap.add_argument("--json", metavar="OUT")
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    if args.iterations is None:
        args.iterations = 1000 if args.quick else 3000
    args.lib = os.path.abspath(args.lib)
    results = {c[0]: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="bench-timeline-") as workdir:
        for r in range(rounds):
            order = CONFIGS[r % len(CONFIGS):] + CONFIGS[:r % len(CONFIGS)]
            for cfg in order:
                res = run_config(args, cfg, workdir, args.iterations)
                results[cfg[0]].append(res)
                log("round %d %-14s %.3f s  rss %d MB" % (r + 1, cfg[0], res["workload_s"],
                                                          res["rss_kb"] // 1024))
        checks = {res["checksum"] for rs in results.values() for res in rs}
        assert len(checks) == 1, "workloads disagree: %r" % checks
        conv = None if args.no_convert else bench_convert(args, workdir)

    med = {k: statistics.median(x["workload_s"] for x in v) for k, v in results.items()}
    print("## Timeline mode overhead (%s, %d iterations, %d rounds, %s)\n"
          % (args.workload, args.iterations, rounds, args.python))
    cpu = {k: statistics.median(x["workload_cpu_s"] for x in v) for k, v in results.items()}
    print("| configuration | workload median s | min s | × baseline | × cProfile | CPU s "
          "| CPU × cProfile | process s | peak RSS | output | dropped |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, label, _, _ in CONFIGS:
        rs = results[name]
        print("| %s | %.3f | %.3f | %.2f× | %.2f× | %.3f | %.2f× | %.2f | %d MB | %.1f MB | %s |" % (
            label, med[name], min(x["workload_s"] for x in rs), med[name] / med["baseline"],
            med[name] / med["cprofile"], cpu[name], cpu[name] / cpu["cprofile"],
            statistics.median(x["process_s"] for x in rs),
            max(x["rss_kb"] for x in rs) // 1024,
            max(x["out_bytes"] for x in rs) / 1e6, max(x["dropped"] for x in rs)))
    for name in ("timeline", "timeline-last"):
        ratio = med[name] / med["cprofile"]
        print("\n%s: %.2f× cProfile (target ≤ %.2f: %s), %.2f× viztracer (target < 1: %s)" % (
            name, ratio, TARGET_VS_CPROFILE, "PASS" if ratio <= TARGET_VS_CPROFILE else "FAIL",
            med[name] / med["viztracer"], "PASS" if med[name] < med["viztracer"] else "FAIL"))
    if conv:
        print("\n## Chrome JSON conversion of a generated timeline\n")
        print("%d events (%.0f MB file) -> %.0f MB of JSON: best %.2f s of %s, peak RSS %d MB "
              "(target < %.0f s: %s)" % (
                  conv["events"], conv["input_bytes"] / 1e6, conv["output_bytes"] / 1e6,
                  conv["best_s"], ", ".join("%.2f" % s for s in conv["seconds"]),
                  conv["peak_rss_kb"] // 1024, TARGET_CONVERT_S,
                  "PASS" if conv["best_s"] < TARGET_CONVERT_S else "FAIL"))
    print("\nload average at the end: %s (2 cores shared with other work: figures are "
          "indicative)" % " ".join("%.1f" % x for x in os.getloadavg()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"runs": results, "convert": conv}, f, indent=1)


if __name__ == "__main__":
    main()
