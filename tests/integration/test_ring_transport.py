"""The ring transport (every call shipped through the per-thread ring to the
writer thread) must give the same exact answers as the inline one whenever
nothing is dropped."""
from conftest import clean_env, describe, root_ok, run_record, write_prog
from test_counts import FIB, TREE
from test_generators import ASYNC, EXC, GEN
from test_threads import THREADS, check_threads

RING = {"CPYPROF_TRANSPORT": "ring", "CPYPROF_RING_SIZE": "16M"}


def record_ring(py, tmp_path, source, opts=()):
    prog = write_prog(tmp_path, source)
    p, prof = run_record(py, [prog], tmp_path, opts=opts, env=clean_env(**RING))
    assert p.returncode == 0, describe(p)
    assert prof.json["meta"].get("transport") == "ring", prof.json["meta"]
    assert prof.dropped == 0, prof.summary()
    assert not prof.truncated
    for frames, value in prof.folded:
        assert value >= 0 and root_ok(frames, prog), frames
    return prog, p, prof


def test_ring_fib(py, tmp_path):
    prog, p, prof = record_ring(py, tmp_path, FIB)
    assert p.stdout == b"6765\n"
    fib = prof.func("fib", prog)
    assert fib["calls"] == 21891, prof.summary()
    assert fib["total_ns"] <= prof.func("<module>", prog)["total_ns"]


def test_ring_tree(py, tmp_path):
    prog, p, prof = record_ring(py, tmp_path, TREE, opts=["--no-builtins"])
    assert prof.stacks_under("main") == {("main", "a", "b"), ("main", "a"), ("main", "c"),
                                         ("main",)}, prof.summary()
    assert [prof.func(n, prog)["calls"] for n in ("main", "a", "b", "c")] == [1, 2, 6, 1]


def test_ring_generators_and_exceptions(py, tmp_path):
    prog, p, prof = record_ring(py, tmp_path, GEN)
    assert prof.func("gen", prog)["calls"] == 11, prof.summary()
    d = tmp_path / "exc"
    d.mkdir()
    prog, p, prof = record_ring(py, d, EXC, opts=["--no-builtins"])
    assert prof.stacks_under("top") == {
        ("top",), ("top", "l1"), ("top", "l1", "l2"), ("top", "l1", "l2", "l3"), ("top", "after"),
    }, prof.summary()
    d = tmp_path / "async"
    d.mkdir()
    prog, p, prof = record_ring(py, d, ASYNC)
    assert prof.func("worker", prog)["calls"] == 6, prof.summary()


def test_ring_threads(py, tmp_path):
    prog, p, prof = record_ring(py, tmp_path, THREADS)
    assert p.stdout == b"[0, 200, 600, 1200]\n"
    check_threads(prof, prog)
