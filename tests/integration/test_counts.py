"""Exact call counts and call-tree shapes."""
from conftest import describe, line_of, run_preload, run_record, write_prog

FIB = """
import sys

def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)

print(fib(20))
"""


def test_fib_calls_and_no_double_counting(py, tmp_path):
    prog = write_prog(tmp_path, FIB)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0, describe(p)
    assert p.stdout == b"6765\n"
    fib = prof.func("fib", prog)
    assert fib["calls"] == 21891, prof.summary()
    assert fib["line"] == line_of(prog, "def fib")
    module = prof.func("<module>", prog)
    assert module["calls"] == 1, prof.summary()
    # Recursion must not be counted once per level: the inclusive time of
    # fib is part of the program's time, never more.
    assert 0 < fib["total_ns"] <= module["total_ns"], prof.summary()
    assert fib["self_ns"] <= fib["total_ns"]
    # Every folded stack that reaches fib is <module>;fib;fib;...
    for names, value in prof.stacks():
        assert value >= 0
        if "fib" in names:
            assert names[0] == "<module>", names
            i = names.index("fib")
            assert all(n == "fib" for n in names[i:]), names
            assert len(names) - i <= 20, names
    depths = {len(n) - n.index("fib") for n, _ in prof.stacks() if "fib" in n}
    # fib(20) recurses to depth 20 (fib(20) -> ... -> fib(1))
    assert max(depths) == 20, sorted(depths)


TREE = """
def b():
    return 1

def a():
    s = 0
    for _ in range(3):
        s += b()
    return s

def c():
    return 2

def main():
    x = a()
    y = a()
    z = c()
    return x + y + z

main()
"""


def test_call_tree_exact_no_builtins(py, tmp_path):
    prog = write_prog(tmp_path, TREE)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0, describe(p)
    assert p.stdout == b"" and p.stderr == b"", describe(p)
    under_main = prof.stacks_under("main")
    assert under_main == {("main", "a", "b"), ("main", "a"), ("main", "c"), ("main",)}, \
        prof.summary()
    # main is called from the module, nothing else above it
    for names, _ in prof.stacks():
        if "main" in names:
            assert names[:2] == ["<module>", "main"], names
    # no C functions at all with --no-builtins
    assert not [f for f in prof.functions if f["line"] == 0 and f["file"] == "builtins"], \
        prof.summary()
    assert "range" not in prof.names()
    # one exact frame string, with file and first line
    frame_a = "a (%s:%d)" % (prog, line_of(prog, "def a"))
    frames = {f for stack, _ in prof.folded for f in stack}
    assert frame_a in frames, prof.folded_text
    assert "main (%s:%d)" % (prog, line_of(prog, "def main")) in frames
    assert "<module> (%s:1)" % prog in frames
    # exact calls per function
    assert prof.func("main", prog)["calls"] == 1
    assert prof.func("a", prog)["calls"] == 2
    assert prof.func("b", prog)["calls"] == 6
    assert prof.func("c", prog)["calls"] == 1


def test_call_tree_same_under_preload(py, tmp_path):
    """The raw LD_PRELOAD path with CPYPROF_BUILTINS=0 gives the same tree."""
    prog = write_prog(tmp_path, TREE)
    p, prof = run_preload(py, [prog], tmp_path, env_extra={"CPYPROF_BUILTINS": "0"})
    assert p.returncode == 0, describe(p)
    assert prof.stacks_under("main") == {("main", "a", "b"), ("main", "a"), ("main", "c"),
                                         ("main",)}, prof.summary()
    assert [prof.func(n, prog)["calls"] for n in ("main", "a", "b", "c")] == [1, 2, 6, 1]


BUILTINS = """
import sys

def work(n_len, n_append):
    xs = []
    data = "abc"
    t = 0
    for _ in range(n_len):
        t += len(data)
    for i in range(n_append):
        xs.append(i)
    return t, len(xs)

print(work(int(sys.argv[1]), int(sys.argv[2])))
"""


def test_builtin_call_counts(py, tmp_path):
    """len x1000 and list.append x500. The interpreter's own start-up and
    shut-down code may call len too, so compare against the same program
    making zero calls: the difference is exact."""
    prog = write_prog(tmp_path, BUILTINS)
    p0, prof0 = run_record(py, [prog, "0", "0"], tmp_path, out=tmp_path / "zero.cpyprof")
    assert p0.returncode == 0, describe(p0)
    assert p0.stdout == b"(0, 0)\n"
    p1, prof1 = run_record(py, [prog, "1000", "500"], tmp_path, out=tmp_path / "many.cpyprof")
    assert p1.returncode == 0, describe(p1)
    assert p1.stdout == b"(3000, 500)\n"
    # the len(xs) at the end of work is one more call in both runs
    assert prof1.calls("len") - prof0.calls("len") == 1000, prof1.summary()
    assert prof1.calls("list.append") - prof0.calls("list.append") == 500, prof1.summary()
    assert prof1.calls("len") >= 1001
    assert prof1.calls("list.append") >= 500
    ln = prof1.funcs("len")
    assert ln and all(f["line"] == 0 for f in ln), ln
    assert any(f["file"] == "builtins" for f in ln), ln
    # a C function is a different kind of function than a Python one
    assert {f["kind"] for f in ln}.isdisjoint({prof1.func("work", prog)["kind"]}), prof1.summary()
    # the calls are attributed under work in the folded stacks
    assert ("work", "len") in prof1.stacks_under("work"), prof1.summary()
    assert ("work", "list.append") in prof1.stacks_under("work"), prof1.summary()
    # and the file:line detail of a C function is its module
    frames = {f for stack, _ in prof1.folded for f in stack}
    assert "len (builtins)" in frames, sorted(frames)[:50]


NAMES = """
class Foo:
    def bar(self):
        return 1

    @staticmethod
    def st():
        return 2

def main():
    def inner():
        return Foo().bar()
    f = lambda: inner()
    return f() + Foo.st()

print(main())
"""


def test_qualified_names(py, tmp_path):
    prog = write_prog(tmp_path, NAMES)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"3\n", describe(p)
    for name in ("Foo.bar", "Foo.st", "main.<locals>.inner", "main.<locals>.<lambda>", "main"):
        assert prof.func(name, prog)["calls"] == 1, (name, prof.summary())
    assert prof.func("Foo.bar", prog)["line"] == line_of(prog, "def bar")
    assert ("main", "main.<locals>.<lambda>", "main.<locals>.inner", "Foo.bar") in \
        prof.stacks_under("main"), prof.summary()


def test_report_sort_limit_and_flame(py, tmp_path):
    prog = write_prog(tmp_path, FIB)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0, describe(p)
    from conftest import CLI, run
    import json
    r = run([CLI, "report", prof.path, "--sort", "calls", "--limit", "3", "--json"])
    assert r.returncode == 0, describe(r)
    fs = json.loads(r.stdout)["functions"]
    assert len(fs) == 3, fs
    assert fs[0]["name"] == "fib" and fs[0]["calls"] == 21891, fs
    assert [f["calls"] for f in fs] == sorted((f["calls"] for f in fs), reverse=True), fs
    r = run([CLI, "report", prof.path, "--sort", "total", "--json"])
    fs = json.loads(r.stdout)["functions"]
    assert [f["total_ns"] for f in fs] == sorted((f["total_ns"] for f in fs), reverse=True)
    # text report: fib with its exact count on one line
    r = run([CLI, "report", prof.path, "--sort", "calls", "--limit", "5"])
    assert r.returncode == 0, describe(r)
    lines = [l for l in r.stdout.decode().splitlines() if "fib (" in l]
    assert len(lines) == 1 and "21891" in lines[0].replace(",", ""), describe(r)
    svg = tmp_path / "fib.svg"
    r = run([CLI, "flame", prof.path, "-o", svg])
    assert r.returncode == 0, describe(r)
    text = svg.read_text()
    assert text.lstrip().startswith(("<?xml", "<svg")) and "</svg>" in text
    assert "fib" in text


def test_convert_to_file_equals_stdout(py, tmp_path):
    prog = write_prog(tmp_path, TREE)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    from conftest import CLI, run
    out = tmp_path / "x.folded"
    r = run([CLI, "convert", prof.path, "--to", "folded", "-o", out])
    assert r.returncode == 0 and r.stdout == b"", describe(r)
    assert out.read_text() == prof.folded_text
    # folded values are self times: they add up to the sum of self_ns
    assert sum(v for _, v in prof.folded) == sum(f["self_ns"] for f in prof.functions)


def test_times_are_in_nanoseconds(py, tmp_path):
    """A function that sleeps 200 ms has a total of at least 200 ms (sleep
    never returns early) and not absurdly more: a wide check of the clock
    calibration, not a benchmark."""
    prog = write_prog(tmp_path, """
        import threading, time
        def sleeper():
            time.sleep(0.2)
        def in_thread():
            time.sleep(0.2)
        t = threading.Thread(target=in_thread)
        t.start()
        sleeper()
        t.join()
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0, describe(p)
    for name in ("sleeper", "in_thread"):
        total = prof.func(name, prog)["total_ns"]
        assert 200_000_000 <= total <= 2_200_000_000, (name, total)
    sleep = sum(f["total_ns"] for f in prof.funcs("sleep"))
    assert 400_000_000 <= sleep <= 4_400_000_000, sleep
    assert prof.func("sleeper", prog)["self_ns"] < 100_000_000, prof.summary()
