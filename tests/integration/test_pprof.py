"""`cpyprof convert --to pprof`: a gzipped profile.proto whose totals equal
the profile's (calls and time for trace and timeline profiles, samples for
sampled ones, allocations with --alloc), decoded by an independent wire
decoder (pprof_decode.py)."""
import collections

from conftest import CLI, describe, line_of, run, run_record, write_prog
from pprof_decode import decode, stack
from test_counts import FIB
from test_threads import THREADS

HOT = """
def hot():
    s = 0
    for i in range(3_000_000):
        s += i
    return s

print(hot() > 0)
"""


def to_pprof(prof, tmp_path, name="profile.pb.gz"):
    out = tmp_path / name
    r = run([CLI, "convert", prof.path, "--to", "pprof", "-o", out])
    assert r.returncode == 0, describe(r)
    assert out.read_bytes()[:2] == b"\x1f\x8b", "not gzip"
    return decode(out)


def totals(pp):
    return [sum(s["values"][k] for s in pp["samples"]) for k in range(len(pp["sample_type"]))]


def test_pprof_trace_totals_equal_the_profile(py, tmp_path):
    prog = write_prog(tmp_path, FIB)
    p, prof = run_record(py, [prog], tmp_path)
    pp = to_pprof(prof, tmp_path)
    assert pp["sample_type"] == [("calls", "count"), ("wall", "nanoseconds")]
    assert pp["default_sample_type"] == "wall"
    calls, ns = totals(pp)
    assert calls == sum(f["calls"] for f in prof.functions)
    assert ns == sum(f["self_ns"] for f in prof.functions)
    fib = [s for s in pp["samples"] if stack(pp, s)[-1] == "fib"]
    assert sum(s["values"][0] for s in fib) == 21891
    assert all(stack(pp, s)[:2] == ["<module>", "fib"] for s in fib)
    (f,) = [f for f in pp["functions"].values() if f["name"] == "fib"]
    assert f["filename"] == str(prog) and f["start_line"] == line_of(prog, "def fib")
    (m,) = pp["mappings"].values()
    assert m["has_functions"] == 1 and m["filename"]
    assert pp["duration_nanos"] == prof.json["duration_ns"]
    assert pp["time_nanos"] > 1.6e18
    assert {s["labels"]["thread"] for s in pp["samples"]} == {"MainThread"}


def test_pprof_threads_and_timeline(py, tmp_path):
    prog = write_prog(tmp_path, THREADS)
    p, prof = run_record(py, [prog], tmp_path, opts=["--mode", "timeline", "--buffer", "16M"])
    pp = to_pprof(prof, tmp_path)
    calls, ns = totals(pp)
    assert calls == sum(f["calls"] for f in prof.functions)
    assert ns == sum(f["self_ns"] for f in prof.functions)
    by_thread = collections.defaultdict(int)
    for s in pp["samples"]:
        if stack(pp, s)[-1].startswith("leaf_"):
            by_thread[s["labels"]["thread"]] += s["values"][0]
    assert sorted(by_thread.values()) == [100, 200, 300, 400], by_thread


def test_pprof_sampled_profile(py, tmp_path):
    prog = write_prog(tmp_path, HOT)
    p, prof = run_record(py, [prog], tmp_path, opts=["--mode", "sample", "--clock", "wall",
                                                     "--rate", "500"])
    pp = to_pprof(prof, tmp_path)
    assert pp["sample_type"] == [("samples", "count"), ("wall", "nanoseconds")]
    assert pp["period_type"] == [("wall", "nanoseconds")] and pp["period"] == 2_000_000
    samples, ns = totals(pp)
    assert samples == prof.json["samples"] > 0
    assert ns == samples * 2_000_000
    hot = sum(s["values"][0] for s in pp["samples"] if "hot" in stack(pp, s))
    assert hot == prof.func("hot", prog)["samples_total"]
    # a sampled location carries the line being executed, inside hot()
    lines = {ln for s in pp["samples"] if stack(pp, s)[-1] == "hot"
             for fid, ln in pp["locations"][s["locations"][0]]["lines"]}
    first = line_of(prog, "def hot")
    assert lines and all(first < ln <= first + 4 for ln in lines), lines


ALLOC = """
def make():
    return [[i] for i in range(1000)]

def main():
    keep = [make() for _ in range(20)]
    return len(keep)

print(main())
"""


def test_pprof_allocations(py, tmp_path):
    prog = write_prog(tmp_path, ALLOC)
    p, prof = run_record(py, [prog], tmp_path, opts=["--alloc"])
    assert p.stdout == b"20\n", describe(p)
    pp = to_pprof(prof, tmp_path)
    assert pp["sample_type"][2:] == [("alloc_objects", "count"), ("alloc_space", "bytes")]
    calls, ns, objects, space = totals(pp)
    a = prof.json["alloc"]
    assert objects == sum(f["allocs"] for f in a["functions"]) + a["other_allocs"]
    assert space == sum(f["alloc_bytes"] for f in a["functions"]) + a["other_alloc_bytes"]
    # make's list comprehension (a function of its own in 3.11) makes 1000
    # one-element lists per call
    make = sum(s["values"][2] for s in pp["samples"] if "make" in stack(pp, s))
    assert make >= 20 * 1000, make
    assert calls == sum(f["calls"] for f in prof.functions)


def test_pprof_bad_input(tmp_path):
    bad = tmp_path / "bad.cpyprof"
    bad.write_bytes(b"not a profile")
    r = run([CLI, "convert", bad, "--to", "pprof", "-o", tmp_path / "x.pb.gz"])
    assert r.returncode == 1 and b"not a cpyprof profile" in r.stderr, describe(r)
