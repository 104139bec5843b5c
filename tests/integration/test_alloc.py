"""Allocation counting and garbage collections (alloc=on): exact counts and
bytes on workloads whose allocations are known, in the deterministic and
sampling modes and both Pythons; collections of a reference-cycle
workload; the program's allocators intact after start/stop cycles; a
tracemalloc started while we count still works."""
import json
import textwrap

import pytest

from conftest import CLI, describe, run, run_import, run_record, write_prog

N = 200      # objects per call; small ints only (< 257): the loop allocates nothing
SIZE = 1000  # bytes per bytearray: its buffer is SIZE + 1 bytes (the NUL)

# bytearray(n) is exactly two allocations, neither served by a free list:
# the object (PyObject_Malloc of __basicsize__) and its buffer (n + 1 bytes).
# The loop counter stays below 257 (cached small ints) and the list is made
# by the caller, so make() allocates nothing else; drop() frees the same.
BYTEARRAYS = textwrap.dedent("""
    import json, sys
    def make(out, n, size):
        i = 0
        while i < n:
            out[i] = bytearray(size)
            i += 1
    def drop(out, n):
        i = 0
        while i < n:
            out[i] = None
            i += 1
    def main():
        out = [None] * %(n)d
        make(out, %(n)d, %(size)d)
        drop(out, %(n)d)
        make(out, %(n)d, %(size)d)
        drop(out, %(n)d)
    %(driver)s
    print(json.dumps({"basicsize": bytearray.__basicsize__}))
""")


def report_json(path):
    p = run([CLI, "report", "--json", path])
    assert p.returncode == 0, describe(p)
    return json.loads(p.stdout)


def alloc_rows(doc):
    return {f["name"]: f for f in doc["alloc"]["functions"]}


def check_bytearrays(proc, doc):
    assert proc.returncode == 0, describe(proc)
    basic = json.loads(proc.stdout.decode().splitlines()[-1])["basicsize"]
    rows = alloc_rows(doc)
    each = basic + SIZE + 1
    make, drop = rows["make"], rows["drop"]
    assert (make["allocs"], make["alloc_bytes"]) == (4 * N, 2 * N * each), make
    assert (make["frees"], make["free_bytes"]) == (0, 0), make
    assert (drop["allocs"], drop["frees"], drop["free_bytes"]) == (0, 4 * N, 2 * N * each), drop
    assert drop["net_bytes"] == -make["net_bytes"]
    assert doc["alloc"]["peak_bytes"] >= N * each


@pytest.mark.parametrize("opts", [("--alloc",), ("--alloc", "--mode", "sample"),
                                  ("--alloc=on", "--no-builtins")],
                         ids=["trace", "sample", "trace-nobuiltins"])
def test_bytearrays_exact_counts_and_bytes(py, tmp_path, opts):
    prog = write_prog(tmp_path, BYTEARRAYS % {"n": N, "size": SIZE, "driver": "main()"})
    p, prof = run_record(py, [prog], tmp_path, opts=opts)
    doc = report_json(prof.path)
    check_bytearrays(p, doc)
    assert doc["alloc"]["per_function"] == (opts[1:2] == ("--mode",))
    names = [f["name"] for f in doc["alloc"]["peak_stack"]]
    if "--mode" not in opts:  # the peak came from make() called by main()
        assert names[:3] == ["make", "main", "<module>"], names
    else:  # per function: the function alone
        assert names == ["make"], names


def test_ring_transport_counts_per_function(py, tmp_path):
    prog = write_prog(tmp_path, BYTEARRAYS % {"n": N, "size": SIZE, "driver": "main()"})
    env_opts = ("--alloc",)
    from conftest import clean_env
    p, prof = run_record(py, [prog], tmp_path, opts=env_opts,
                         env=clean_env(CPYPROF_TRANSPORT="ring"))
    check_bytearrays(p, report_json(prof.path))


def test_import_api_and_thread(py, tmp_path):
    """cpyprof.start(alloc=True); allocations of a thread started later are
    its own, exact."""
    out = tmp_path / "imp.cpyprof"
    driver = textwrap.dedent("""
        import threading, cpyprof
        cpyprof.start(sys.argv[1], alloc=True, quiet=True)
        t = threading.Thread(target=main, name="worker")
        t.start(); t.join()
        cpyprof.stop()
    """)
    prog = write_prog(tmp_path, BYTEARRAYS % {"n": N, "size": SIZE, "driver": driver})
    p, prof = run_import(py, [prog, out], out, tmp_path)
    check_bytearrays(p, report_json(out))


CYCLES = textwrap.dedent("""
    import gc
    def cycles(n):
        for _ in range(n):
            a = []; b = [a]; a.append(b)
    def main():
        gc.disable()    # no automatic collection: exactly the one below
        gc.collect()    # garbage from start-up, before the measured part
        cycles(%(n)d)
        gc.collect()
    main()
""")


def test_gc_collections_of_reference_cycles(py, tmp_path):
    n = 1000
    prog = write_prog(tmp_path, CYCLES % {"n": n})
    p, prof = run_record(py, [prog], tmp_path, opts=("--alloc",))
    assert p.returncode == 0, describe(p)
    doc = report_json(prof.path)
    recs = doc["gc"]["records"]
    assert [r["generation"] for r in recs] == [2, 2], recs
    # the second collection finds the n two-list cycles, and nothing else
    assert recs[1]["collected"] == 2 * n and recs[1]["uncollectable"] == 0, recs
    assert [r["name"] for r in recs] == ["main", "main"], recs
    assert all(r["duration_ns"] > 0 for r in recs)
    assert doc["gc"]["total_ns"] == sum(r["duration_ns"] for r in recs)
    text = run([CLI, "report", prof.path])
    assert text.returncode == 0, describe(text)
    out = text.stdout.decode()
    assert "Garbage collections: 2 (generation 0: 0, 1: 0, 2: 2)" in out, out
    assert "%d objects collected" % (2 * n + recs[0]["collected"]) in out, out


def test_automatic_collections_name_the_running_function(py, tmp_path):
    prog = write_prog(tmp_path, textwrap.dedent("""
        def cycles(n):
            for _ in range(n):
                a = []; b = [a]; a.append(b)
        cycles(20000)
    """))
    p, prof = run_record(py, [prog], tmp_path, opts=("--alloc",))
    assert p.returncode == 0, describe(p)
    recs = report_json(prof.path)["gc"]["records"]
    # 40000 container allocations: gen-0 collections every 700 (the default)
    assert len(recs) >= 20, len(recs)
    assert sum(1 for r in recs if r["name"] == "cycles") >= 20, recs[:5]


# PyMem_GetAllocator for the three domains, through ctypes: the function
# pointers of the installed allocators, to compare before and after.
ALLOCATORS = textwrap.dedent("""
    import ctypes
    class Allocator(ctypes.Structure):
        _fields_ = [(n, ctypes.c_void_p) for n in ("ctx", "malloc", "calloc", "realloc", "free")]
    def allocators():
        get = ctypes.pythonapi.PyMem_GetAllocator
        get.restype = None
        get.argtypes = [ctypes.c_int, ctypes.POINTER(Allocator)]
        res = []
        for domain in range(3):
            a = Allocator()
            get(domain, ctypes.byref(a))
            res.append((a.ctx, a.malloc, a.calloc, a.realloc, a.free))
        return res
""")


def test_start_stop_cycles_leave_allocators_intact(py, tmp_path):
    prog = write_prog(tmp_path, ALLOCATORS + textwrap.dedent("""
        import sys, cpyprof
        before = allocators()
        for i in range(3):
            cpyprof.start(sys.argv[1] + str(i), alloc=True, quiet=True)
            assert allocators() != before, "not wrapped"
            x = [bytearray(100) for _ in range(100)]
            cpyprof.stop()
            assert allocators() == before, (i, allocators(), before)
        print("intact")
    """))
    out = tmp_path / "cyc.cpyprof"
    p, _ = run_import(py, [prog, out], out.with_name("cyc.cpyprof0"), tmp_path)
    assert p.returncode == 0 and b"intact" in p.stdout, describe(p)
    for i in range(3):  # every run counted the list comprehension's 100 bytearrays
        rows = alloc_rows(report_json(str(out) + str(i)))
        lc = rows["<listcomp>"]
        assert lc["allocs"] >= 200 and lc["alloc_bytes"] >= 100 * 101, lc


def test_tracemalloc_started_while_counting_still_works(py, tmp_path):
    """tracemalloc wraps our wrappers; our stop cannot unwrap (it leaves a
    forwarding layer); tracemalloc keeps tracing, and its stop and a new run
    of ours still work."""
    prog = write_prog(tmp_path, textwrap.dedent("""
        import sys, tracemalloc, cpyprof
        def work(n):
            return [bytearray(1000) for _ in range(n)]
        cpyprof.start(sys.argv[1] + "1", alloc=True, quiet=True)
        tracemalloc.start()
        a = work(50)
        cpyprof.stop()
        b = work(100)
        cur, peak = tracemalloc.get_traced_memory()
        assert cur >= 150 * 1000, cur
        stats = tracemalloc.take_snapshot().statistics("lineno")
        assert any(s.size >= 100 * 1000 for s in stats), stats[:3]
        tracemalloc.stop()
        cpyprof.start(sys.argv[1] + "2", alloc=True, quiet=True)
        c = work(30)
        cpyprof.stop()
        print("ok")
    """))
    out = tmp_path / "tm.cpyprof"
    p, _ = run_import(py, [prog, out], out.with_name("tm.cpyprof1"), tmp_path)
    assert p.returncode == 0 and b"ok" in p.stdout, describe(p)
    rows = alloc_rows(report_json(str(out) + "2"))
    lc = rows["work.<locals>.<listcomp>"]
    # 30 bytearrays (2 allocations each), the list and its growth
    assert lc["allocs"] >= 60 and lc["alloc_bytes"] >= 30 * (56 + 1001), lc


def test_flamegraphs_and_text_report(py, tmp_path):
    # main() four times: make's share of all allocations must be wide enough
    # for a label in the flame graph next to the imports (json imports re,
    # enum, functools...: the program's own, and in the profile since the
    # profiler no longer imports threading and its modules at start)
    prog = write_prog(tmp_path, BYTEARRAYS % {"n": N, "size": SIZE,
                                              "driver": "for _ in range(4): main()"})
    p, prof = run_record(py, [prog], tmp_path, opts=("--alloc",))
    assert p.returncode == 0, describe(p)
    for flag, unit in (("--alloc-bytes", "bytes"), ("--alloc-count", "allocations")):
        svg = tmp_path / ("f%s.svg" % flag)
        f = run([CLI, "flame", flag, prof.path, "-o", svg])
        assert f.returncode == 0, describe(f)
        text = svg.read_text()
        assert ">make<" in text or "make (" in text, text[:300]
        assert unit in text
    r = run([CLI, "report", prof.path])
    out = r.stdout.decode()
    assert r.returncode == 0 and "Allocations (PyMem allocators)" in out, describe(r)
    assert "stack at the peak" in out
    table = out[out.index("freed bytes"):].splitlines()
    line = next(l for l in table if l.endswith(" make (%s:2)" % prog))
    assert line.split()[:2] == [str(4 * 4 * N), str(4 * 2 * N * (SIZE + 1 + 56))], line


def test_flame_without_alloc_data_says_so(py, tmp_path):
    prog = write_prog(tmp_path, "x = 1\n")
    p, prof = run_record(py, [prog], tmp_path)
    f = run([CLI, "flame", "--alloc-bytes", prof.path, "-o", tmp_path / "x.svg"])
    assert f.returncode != 0
    assert b"no allocation data (record with --alloc)" in f.stderr, describe(f)


def test_bad_alloc_value_is_one_clear_line(py, tmp_path):
    prog = write_prog(tmp_path, "print('ran')\n")
    p = run([CLI, "record", "--alloc=sometimes", "-o", tmp_path / "x", "--", py.exe, prog])
    assert p.returncode != 0 and b"ran" not in p.stdout
    assert b"--alloc: 'sometimes' is not valid (expected off, on or native" in p.stderr, describe(p)


@pytest.mark.parametrize("how", ["on", "native"])
def test_fork_child_with_alloc(py, tmp_path, how):
    """The child inherits the wrappers (and, native, the GOT slots): they
    only forward; no deadlock with threads allocating at the fork."""
    prog = write_prog(tmp_path, textwrap.dedent("""
        import os, threading
        def churn():
            for _ in range(2000):
                x = bytearray(64); y = bytearray(64)
        ts = [threading.Thread(target=churn) for _ in range(2)]
        for t in ts: t.start()
        pids = []
        for _ in range(5):
            pid = os.fork()
            if pid == 0:
                y = [bytearray(64) for _ in range(1000)]
                os._exit(7)
            pids.append(pid)
        for t in ts: t.join()
        print(sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids))
    """))
    p, prof = run_record(py, [prog], tmp_path, opts=("--alloc=" + how,))
    assert p.returncode == 0, describe(p)
    assert p.stdout.decode().strip() == "[7, 7, 7, 7, 7]"
    assert alloc_rows(report_json(prof.path))["churn"]["allocs"] >= 2 * 2000 * 4


# zlib's compress2 at level 9 allocates its deflate state with malloc
# through libz's own GOT: about 262 KiB (window, prev and head tables,
# pending buffer). ctypes loads libz with dlopen during the run, so the
# redirection has to follow the dlopen.
NATIVE = textwrap.dedent("""
    import ctypes, ctypes.util
    def squeeze(data):
        libz = ctypes.CDLL(ctypes.util.find_library("z"))
        bound = libz.compressBound(len(data))
        dest = ctypes.create_string_buffer(bound)
        n = ctypes.c_ulong(bound)
        assert libz.compress2(dest, ctypes.byref(n), data, len(data), 9) == 0
        return n.value
    def main():
        print(squeeze(b"hello world " * 1000))
    main()
""")


@pytest.mark.parametrize("mode", ["trace", "sample"])
def test_native_zlib_allocation_under_its_python_caller(py, tmp_path, mode):
    prog = write_prog(tmp_path, NATIVE)
    got = {}
    for alloc in ("on", "native"):
        p, prof = run_record(py, [prog], tmp_path, opts=("--alloc=" + alloc, "--mode", mode),
                             out=tmp_path / ("%s.cpyprof" % alloc))
        assert p.returncode == 0 and p.stdout.strip() == b"61", describe(p)
        doc = report_json(prof.path)
        assert doc["alloc"]["native"] == (alloc == "native")
        got[alloc] = alloc_rows(doc)["squeeze"]
    assert got["on"]["alloc_bytes"] < 100_000, got["on"]
    # the deflate state, allocated and freed inside compress2
    assert got["native"]["alloc_bytes"] - got["on"]["alloc_bytes"] >= 250_000, got
    assert got["native"]["free_bytes"] - got["on"]["free_bytes"] >= 250_000, got


def test_native_stop_puts_malloc_back(py, tmp_path):
    """After stop no GOT slot points at our wrappers: a later run without
    native counting counts no native allocation."""
    prog = write_prog(tmp_path, NATIVE.replace("main()\n", "") + textwrap.dedent("""
        import sys, cpyprof
        cpyprof.start(sys.argv[1] + "1", alloc="native", quiet=True)
        main()
        cpyprof.stop()
        cpyprof.start(sys.argv[1] + "2", alloc=True, quiet=True)
        main()
        cpyprof.stop()
    """))
    out = tmp_path / "ns.cpyprof"
    p, _ = run_import(py, [prog, out], out.with_name("ns.cpyprof1"), tmp_path)
    assert p.returncode == 0, describe(p)
    first = alloc_rows(report_json(str(out) + "1"))["squeeze"]
    second = alloc_rows(report_json(str(out) + "2"))["squeeze"]
    assert first["alloc_bytes"] >= 250_000 and second["alloc_bytes"] < 100_000, (first, second)


def test_threads_unknown_to_the_profiler_are_counted_apart(py, tmp_path):
    """A thread started with _thread (no threading hook) is not profiled:
    its allocations go to the "other" counters, exactly; churn of 50
    threading threads allocating while others start and end."""
    prog = write_prog(tmp_path, textwrap.dedent("""
        import _thread, threading, time
        done = threading.Event()
        def raw():
            keep = [bytearray(5000) for _ in range(20)]
            done.set()
        def churn(i):
            x = [bytearray(100) for _ in range(50)]
        def main():
            _thread.start_new_thread(raw, ())
            assert done.wait(30)
            ts = [threading.Thread(target=churn, args=(i,)) for i in range(50)]
            for t in ts: t.start()
            for t in ts: t.join()
        main()
        time.sleep(0.05)
    """))
    p, prof = run_record(py, [prog], tmp_path, opts=("--alloc",))
    assert p.returncode == 0, describe(p)
    doc = report_json(prof.path)
    a = doc["alloc"]
    # 20 bytearrays of 5000 bytes (object + buffer) and the list
    assert a["other_allocs"] >= 40 and a["other_alloc_bytes"] >= 20 * 5001, a
    lc = alloc_rows(doc)["churn.<locals>.<listcomp>"]
    assert lc["allocs"] >= 50 * 100 and lc["alloc_bytes"] >= 50 * 50 * 101, lc


@pytest.mark.parametrize("how", ["on", "native"])
def test_forked_child_counts_again_after_its_own_start(py, tmp_path, how):
    """A child forked while the parent counts (threads allocating) starts
    its own run with alloc: no lock inherited from the parent blocks it,
    and it counts its own allocations exactly."""
    prog = write_prog(tmp_path, BYTEARRAYS % {"n": N, "size": SIZE, "driver": ""} + textwrap.dedent("""
        import os, threading, cpyprof
        stop = threading.Event()
        def churn():
            while not stop.is_set():
                x = [bytearray(64) for _ in range(10)]
        cpyprof.start(sys.argv[1] + "-parent", alloc="%s", quiet=True)
        ts = [threading.Thread(target=churn) for _ in range(2)]
        for t in ts: t.start()
        pid = os.fork()
        if pid == 0:
            cpyprof.start(sys.argv[1] + "-child", alloc="%s", quiet=True)
            main()
            cpyprof.stop()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        stop.set()
        for t in ts: t.join()
        cpyprof.stop()
        print(os.waitstatus_to_exitcode(status))
    """ % (how, how)))
    out = tmp_path / "fk.cpyprof"
    p, _ = run_import(py, [prog, out], out.with_name("fk.cpyprof-parent"), tmp_path)
    assert p.returncode == 0 and p.stdout.decode().split()[-1] == "0", describe(p)
    rows = alloc_rows(report_json(str(out) + "-child"))
    basic = 56
    assert rows["make"]["allocs"] == 4 * N, rows["make"]
    assert rows["make"]["alloc_bytes"] == 2 * N * (basic + SIZE + 1), rows["make"]
    assert rows["drop"]["free_bytes"] == 2 * N * (basic + SIZE + 1), rows["drop"]


@pytest.mark.parametrize("flag", ["--alloc", "--alloc=native"])
def test_python_m_cpyprof_record_alloc(py, tmp_path, flag):
    from conftest import run_module
    prog = write_prog(tmp_path, BYTEARRAYS % {"n": N, "size": SIZE, "driver": "main()"})
    p, prof = run_module(py, [flag, str(prog)], tmp_path)
    doc = report_json(prof.path)
    check_bytearrays(p, doc)
    assert doc["alloc"]["native"] == (flag == "--alloc=native")


@pytest.mark.parametrize("pymalloc", ["malloc", "debug"])
def test_other_allocators_under_the_wrap(py, tmp_path, pymalloc):
    """PYTHONMALLOC=malloc (glibc blocks) and =debug (CPython's debug hooks,
    which add guard bytes around each block): the counts are the same,
    since we wrap whatever is installed and count requested sizes."""
    from conftest import clean_env
    prog = write_prog(tmp_path, BYTEARRAYS % {"n": N, "size": SIZE, "driver": "main()"})
    p, prof = run_record(py, [prog], tmp_path, opts=("--alloc",),
                         env=clean_env(PYTHONMALLOC=pymalloc))
    check_bytearrays(p, report_json(prof.path))
