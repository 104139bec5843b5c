"""Timeline mode (--mode timeline): every call and return with its time, the
two bounds (streaming with counted drops, the flight recorder that keeps the
newest events), the nesting the file promises, and the Chrome trace JSON
that `cpyprof convert --to chrome` makes of it (with its filters)."""
import collections
import json
from decimal import Decimal

from conftest import CLI, describe, line_of, run, run_import, run_record, write_prog
from profile_file import BEGIN, ProfileFile
from test_counts import FIB, TREE
from test_generators import ASYNC, EXC, GEN
from test_threads import THREADS

BIG = ["--mode", "timeline", "--buffer", "16M"]


def record_timeline(py, tmp_path, source, opts=BIG, name="prog.py"):
    prog = write_prog(tmp_path, source, name=name)
    p, prof = run_record(py, [prog], tmp_path, opts=list(opts))
    assert p.returncode == 0, describe(p)
    assert prof.json["meta"].get("mode") == "timeline", prof.json["meta"]
    f = ProfileFile(prof.path)
    return prog, p, prof, f


def chrome(path, tmp_path, *extra, name="trace.json"):
    out = tmp_path / name
    p = run([CLI, "convert", path, "--to", "chrome", "-o", out, *extra])
    assert p.returncode == 0, describe(p)
    doc = json.loads(out.read_text(), parse_float=Decimal)
    return doc, p


def slices(doc):
    """X events as (tid, name, begin_ns, end_ns, args)."""
    out = []
    for e in doc["traceEvents"]:
        if e["ph"] == "X":
            b = int(e["ts"] * 1000)
            out.append((e["tid"], e["name"], b, b + int(e["dur"] * 1000), e.get("args", {})))
    return out


def check_chrome_nesting(doc):
    """On every track, any two slices are disjoint or one contains the other."""
    by_tid = collections.defaultdict(list)
    for tid, name, b, e, _ in slices(doc):
        assert e >= b, (name, b, e)
        by_tid[tid].append((b, -e, name))
    for tid, evs in by_tid.items():
        evs.sort()
        stack = []
        for b, neg_e, name in evs:
            e = -neg_e
            while stack and stack[-1][1] <= b and not (stack[-1][0] == b == stack[-1][1]):
                stack.pop()
            if stack:
                assert e <= stack[-1][1], ("overlap on track", tid, name, stack[-1], (b, e))
            stack.append((b, e, name))


def metadata(doc, what):
    return {e["tid"]: e["args"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == what}


def test_timeline_call_events_equal_call_counts(py, tmp_path):
    prog, p, prof, f = record_timeline(py, tmp_path, FIB)
    assert p.stdout == b"6765\n"
    assert prof.dropped == 0
    calls = f.check_nesting()
    (main,) = calls.values()
    fib_begins = [c for c in main if c[0] == "fib"]
    assert len(fib_begins) == 21891
    assert not any(c[4] for c in fib_begins), "no fib call is synthesized"
    # the call tree built alongside says the same
    assert prof.func("fib", prog)["calls"] == 21891, prof.summary()
    (info,) = f.info.values()
    assert info["dropped"] == 0 and info["overwritten"] == 0
    assert info["written"] == sum(len(v) for v in f.timeline.values())
    doc, _ = chrome(prof.path, tmp_path)
    check_chrome_nesting(doc)
    names = collections.Counter(s[1] for s in slices(doc))
    assert names["fib"] == 21891 and names["<module>"] == 1
    fib = [s for s in slices(doc) if s[1] == "fib"]
    line = line_of(prog, "def fib")
    assert all(s[4]["file"] == str(prog) and s[4]["line"] == line for s in fib), fib[0]
    assert doc["otherData"]["dropped_events"] == 0
    assert doc["otherData"]["events"] == sum(len(v) for v in f.timeline.values())


def test_timeline_nests_with_exceptions_generators_coroutines(py, tmp_path):
    cases = ((EXC, {"l1": 3, "l2": 3, "l3": 3, "after": 3, "top": 1}),
             (GEN, {"gen": 11, "consume": 1}),
             (ASYNC, {"worker": 6, "amain": 6}))
    for k, (source, expect) in enumerate(cases):
        d = tmp_path / str(k)
        d.mkdir()
        prog, p, prof, f = record_timeline(py, d, source)
        assert p.returncode == 0, describe(p)
        calls = f.check_nesting()
        got = collections.Counter(c[0] for cs in calls.values() for c in cs)
        for name, n in expect.items():
            assert got[name] == n, (name, got[name], n)
        doc, _ = chrome(prof.path, d)
        check_chrome_nesting(doc)


def test_timeline_exception_ends_every_frame(py, tmp_path):
    prog, p, prof, f = record_timeline(py, tmp_path, EXC, opts=BIG + ["--no-builtins"])
    (evs,) = f.timeline.values()
    seq = [(kind, f.name(func)) for _, func, kind, _, _ in evs
           if f.name(func) in ("l1", "l2", "l3", "after")]
    one = [(1, "l1"), (1, "l2"), (1, "l3"), (2, "l3"), (2, "l2"), (2, "l1"), (1, "after"),
           (2, "after")]
    assert seq == one * 3


def test_timeline_threads_have_tracks(py, tmp_path):
    prog, p, prof, f = record_timeline(py, tmp_path, THREADS)
    assert p.stdout == b"[0, 200, 600, 1200]\n"
    calls = f.check_nesting()
    assert len(calls) == 5, list(calls)
    leaves = collections.Counter(c[0] for cs in calls.values() for c in cs)
    assert [leaves["leaf_%d" % i] for i in range(4)] == [100, 200, 300, 400]
    # each leaf runs on one thread only
    for i in range(4):
        owners = [t for t, cs in calls.items() if any(c[0] == "leaf_%d" % i for c in cs)]
        assert len(owners) == 1, owners
    doc, _ = chrome(prof.path, tmp_path)
    check_chrome_nesting(doc)
    names = metadata(doc, "thread_name")
    tids = {s[0] for s in slices(doc)}
    assert tids <= set(names), (tids, names)
    assert any(v["name"].startswith("MainThread (tid ") for v in names.values()), names
    assert len(tids) == 5
    assert len(metadata(doc, "process_name")) == 1


STARTED_INSIDE = """
import sys
import cpyprof

def leaf():
    return 1

def inner():
    cpyprof.start(sys.argv[1], mode="timeline", builtins=False)
    for _ in range(5):
        leaf()
    cpyprof.stop()

def outer():
    inner()

outer()
"""


def test_timeline_frames_active_at_start_and_stop_are_synthesized(py, tmp_path):
    prog = write_prog(tmp_path, STARTED_INSIDE)
    out = tmp_path / "inside.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0, describe(p)
    f = ProfileFile(out)
    (calls,) = f.check_nesting().values()
    by_name = {c[0]: c for c in calls}
    # <module>, outer and inner were running at start: synthesized begins,
    # and still running at stop: synthesized ends
    for name in ("<module>", "outer", "inner"):
        assert by_name[name][4], by_name[name]
    assert sum(1 for c in calls if c[0] == "leaf" and not c[4]) == 5
    assert [c[3] for c in calls if c[0] == "leaf"] == [4] * 5  # under <module>, outer, inner
    doc, _ = chrome(out, tmp_path)
    check_chrome_nesting(doc)
    synth = {s[1] for s in slices(doc) if s[4].get("synthesized")}
    assert synth >= {"<module>", "outer", "inner"} and "leaf" not in synth


FLIGHT = """
def early():
    return 1

def late():
    return 2

def main():
    for _ in range(30000):
        early()
    for _ in range(3000):
        late()

main()
"""


def test_flight_recorder_keeps_only_the_last_events(py, tmp_path):
    # 64K of 16-byte slots: 4096 events, the newest ones
    prog, p, prof, f = record_timeline(
        py, tmp_path, FLIGHT, opts=["--mode", "timeline", "--buffer", "64K", "--keep", "last",
                                    "--no-builtins"])
    assert f.meta["timeline_keep"] == "last"
    calls = f.check_nesting()
    (main,) = calls.values()
    names = collections.Counter(c[0] for c in main if not c[4])
    assert names["early"] == 0, names
    # 4096 events = the end of main's loop (late calls and returns: 2048
    # calls at most) and the interpreter's shutdown calls
    assert 2000 <= names["late"] <= 2048, names
    (evs,) = f.timeline.values()
    real = sum(1 for e in evs if not e[3])
    assert real == 4096, real
    (info,) = f.info.values()
    assert info["keep"] == 1 and info["dropped"] == 0
    assert info["recorded"] - info["overwritten"] == 4096, info
    assert info["recorded"] >= 2 * 33000
    # main and <module> were open when the window began: synthesized begins
    synth = {c[0] for c in main if c[4]}
    assert {"main", "<module>"} <= synth, synth
    assert prof.dropped == 0
    doc, _ = chrome(prof.path, tmp_path)
    check_chrome_nesting(doc)
    assert doc["otherData"]["overwritten_events"] == info["overwritten"]


def test_streaming_drops_are_counted_and_nesting_survives(py, tmp_path):
    src = FIB.replace("fib(20)", "fib(24)")
    prog, p, prof, f = record_timeline(py, tmp_path, src, opts=["--mode", "timeline",
                                                                "--buffer", "64K"])
    assert p.stdout == b"46368\n"
    f.check_nesting()
    (info,) = f.info.values()
    # fib(24) is 150049 calls: 300098 events through a 2048-record buffer;
    # however fast the writer is, it cannot keep up with every burst...
    # unless it does: then nothing is lost and the count is exact.
    assert info["recorded"] >= 300098
    assert info["dropped"] == prof.dropped
    (evs,) = f.timeline.values()
    fib = sum(1 for t, func, kind, synth, _ in evs if kind == BEGIN and not synth
              and f.name(func) == "fib")
    # a call is missing only if its own record was dropped
    assert 150049 - info["dropped"] <= fib <= 150049
    if info["dropped"] == 0:
        assert fib == 150049
    doc, _ = chrome(prof.path, tmp_path)
    check_chrome_nesting(doc)
    assert doc["otherData"]["dropped_events"] == info["dropped"]


def test_chrome_filters(py, tmp_path):
    prog, p, prof, f = record_timeline(py, tmp_path, TREE, opts=BIG + ["--no-builtins"])
    full, _ = chrome(prof.path, tmp_path, name="full.json")
    count = lambda doc: collections.Counter(s[1] for s in slices(doc))
    assert {k: v for k, v in count(full).items() if k in "main a b c"} == {
        "main": 1, "a": 2, "b": 6, "c": 1}
    # depth: <module> 1, main 2, a/c 3, b 4
    d3, _ = chrome(prof.path, tmp_path, "--max-depth", "3", name="d3.json")
    assert count(d3)["b"] == 0 and count(d3)["a"] == 2 and count(d3)["main"] == 1
    only_b, _ = chrome(prof.path, tmp_path, "--include", "b", name="b.json")
    assert set(count(only_b)) == {"b"}
    no_ab, _ = chrome(prof.path, tmp_path, "--include", str(prog), "--exclude", "[ab]",
                      name="noab.json")
    assert set(count(no_ab)) == {"<module>", "main", "c"}
    check_chrome_nesting(no_ab)
    # every call lasts at least a few ns; nothing lasts an hour
    assert count(chrome(prof.path, tmp_path, "--min-duration", "1ns", name="m1.json")[0]) \
        == count(full)
    longest = max(s[3] - s[2] for s in slices(full))
    mx, _ = chrome(prof.path, tmp_path, "--min-duration", str(longest + 1), name="mx.json")
    assert slices(mx) == []
    top, _ = chrome(prof.path, tmp_path, "--min-duration", "%.3fus" % (longest / 1000),
                    name="top.json")
    assert len(slices(top)) >= 1


def test_chrome_bad_options_and_inputs(py, tmp_path):
    prog = write_prog(tmp_path, FIB)
    p, prof = run_record(py, [prog], tmp_path)  # trace mode: no timeline
    r = run([CLI, "convert", prof.path, "--to", "chrome", "-o", tmp_path / "x.json"])
    assert r.returncode == 1 and b"no timeline" in r.stderr and b"--mode timeline" in r.stderr, \
        describe(r)
    r = run([CLI, "convert", prof.path, "--to", "folded", "--max-depth", "3", "-o", "-"])
    assert r.returncode == 2 and b"chrome only" in r.stderr, describe(r)
    r = run([CLI, "convert", prof.path, "--to", "chrome", "--min-duration", "fast", "-o", "-"])
    assert r.returncode == 2 and b"--min-duration: 'fast'" in r.stderr, describe(r)
    r = run([CLI, "record", "--keep", "first", "--", "true"])
    assert r.returncode == 2 and b"--keep: 'first' is not valid (expected all or last)" \
        in r.stderr, describe(r)
    r = run([CLI, "record", "--buffer", "1K", "--", "true"])
    assert r.returncode == 2 and b"--buffer: '1K' is out of range" in r.stderr, describe(r)


def test_chrome_truncated_timeline(py, tmp_path):
    prog, p, prof, f = record_timeline(py, tmp_path, FIB.replace("fib(20)", "fib(22)"))
    tl = [(off, size) for t, off, size in f.chunk_offsets if t == 12]
    assert len(tl) >= 2, tl
    off, size = tl[1]
    cut = tmp_path / "cut.cpyprof"
    cut.write_bytes(prof.path.read_bytes()[:off + 16 + size // 2])
    r = run([CLI, "convert", cut, "--to", "chrome", "-o", tmp_path / "cut.json"])
    assert r.returncode == 0, describe(r)
    assert b"warning" in r.stderr and b"truncated" in r.stderr, describe(r)
    doc = json.loads((tmp_path / "cut.json").read_text(), parse_float=Decimal)
    assert doc["otherData"]["truncated"] is True
    check_chrome_nesting(doc)
    # the first TIMELINE chunk survives whole: one slice per BEGIN in it, the
    # frames still open closed at its last time (the names are lost with the
    # FUNCS chunk, written at the end)
    kept = (tl[0][1] - 8) // 16
    (evs,) = f.timeline.values()
    assert len(slices(doc)) == sum(1 for e in evs[:kept] if e[2] == BEGIN) > 0
    # a damaged TIMELINE chunk (CRC) is refused with the chunk named
    bad = bytearray(prof.path.read_bytes())
    bad[off + 16 + 20] ^= 0xFF
    (tmp_path / "bad.cpyprof").write_bytes(bytes(bad))
    r = run([CLI, "convert", tmp_path / "bad.cpyprof", "--to", "chrome", "-o",
             tmp_path / "bad.json"])
    assert r.returncode == 1 and b"(TIMELINE)" in r.stderr and b"CRC mismatch" in r.stderr, \
        describe(r)
    # the reader of every other command skips the timeline but still checks it
    r = run([CLI, "report", tmp_path / "bad.cpyprof"])
    assert r.returncode == 1 and b"CRC mismatch" in r.stderr, describe(r)
    r = run([CLI, "report", cut])
    assert r.returncode == 0 and b"truncated" in r.stdout + r.stderr, describe(r)


GC = """
import gc

class Node:
    def __init__(self):
        self.me = self  # a cycle: only the collector frees it

def churn():
    for _ in range(3):
        for _ in range(1000):
            Node()
        gc.collect()

churn()
"""


def test_chrome_gc_slices_and_counter(py, tmp_path):
    prog, p, prof, f = record_timeline(py, tmp_path, GC, opts=BIG + ["--alloc"])
    gc = prof.json["gc"]
    doc, _ = chrome(prof.path, tmp_path)
    check_chrome_nesting(doc)
    gcs = [s for s in slices(doc) if s[1].startswith("gc (generation ")]
    assert len(gcs) == gc["collections"] >= 3
    assert sum(s[4]["collected"] for s in gcs) == sum(r["collected"] for r in gc["records"])
    # each explicit collection runs inside gc.collect, called by churn
    collect = [s for s in slices(doc) if s[1] == "collect"]
    assert len(collect) == 3
    for b, e in ((s[2], s[3]) for s in collect):
        assert any(b <= g[2] and g[3] <= e for g in gcs), (b, e, gcs)
    counter = [e for e in doc["traceEvents"]
               if e["ph"] == "C" and e["name"] == "gc collected objects"]
    assert [c["args"]["total"] for c in counter][-1] == sum(s[4]["collected"] for s in gcs)


def test_timeline_through_python_m_cpyprof(py, tmp_path):
    from conftest import run_module
    prog = write_prog(tmp_path, FIB.replace("fib(20)", "fib(15)"))
    p, prof = run_module(py, ["--mode", "timeline", "--keep", "last", "--buffer", "64K", prog],
                         tmp_path)
    assert p.returncode == 0 and p.stdout == b"610\n", describe(p)
    assert prof.json["meta"]["mode"] == "timeline"
    assert prof.json["meta"]["timeline_keep"] == "last"
    f = ProfileFile(prof.path)
    (calls,) = f.check_nesting().values()
    # fib(15) is 1973 calls, 3946 events: all of them fit the 4096-event window
    assert sum(1 for c in calls if c[0] == "fib" and not c[4]) == 1973
