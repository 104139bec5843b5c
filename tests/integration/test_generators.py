"""Generators, coroutines and exceptions keep the stacks balanced."""
from conftest import describe, root_ok, run_record, write_prog


def check_balanced(prof, prog):
    for frames, value in prof.folded:
        assert value >= 0, (frames, value)
        assert frames and all(frames), frames
        assert root_ok(frames, prog), frames


GEN = """
def gen():
    for i in range(10):
        yield i

def consume():
    s = 0
    for v in gen():
        s += v
    return s

print(consume())
"""


def test_generator_resumes_are_calls(py, tmp_path):
    prog = write_prog(tmp_path, GEN)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"45\n", describe(p)
    assert prof.func("gen", prog)["calls"] == 11, prof.summary()
    assert prof.func("consume", prog)["calls"] == 1, prof.summary()
    check_balanced(prof, prog)
    for names, _ in prof.stacks():
        if "gen" in names:
            assert names[:3] == ["<module>", "consume", "gen"], names
    # consume is never under gen, nor gen under gen
    for names, _ in prof.stacks():
        assert names.count("gen") <= 1, names
        if "consume" in names:
            assert names.index("consume") == 1, names


ASYNC = """
import asyncio

async def worker():
    for _ in range(5):
        await asyncio.sleep(0)
    return 42

async def amain():
    return await worker()

print(asyncio.run(amain()))
"""


def test_coroutine_stacks(py, tmp_path):
    prog = write_prog(tmp_path, ASYNC)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"42\n", describe(p)
    check_balanced(prof, prog)
    # started once and resumed after each of the 5 suspensions
    assert prof.func("worker", prog)["calls"] == 6, prof.summary()
    assert prof.func("amain", prog)["calls"] == 6, prof.summary()
    # worker always runs directly under amain; nothing runs under a
    # suspended coroutine once it has yielded
    for names, _ in prof.stacks():
        if "worker" in names:
            i = names.index("worker")
            assert names[i - 1] == "amain", names
            assert names.count("worker") == 1 and names.count("amain") == 1, names
            assert names[0] == "<module>", names
        # asyncio.sleep and its helper run only inside worker
        for helper in ("sleep", "__sleep0"):
            if helper in names:
                assert "worker" in names and names.index("worker") < names.index(helper), names

EXC = """
def l3(i):
    raise ValueError(i)

def l2(i):
    return l3(i)

def l1(i):
    return l2(i)

def after():
    return 1

def top():
    caught = 0
    for i in range(3):
        try:
            l1(i)
        except ValueError:
            caught += 1
        after()
    return caught

print(top())
"""


def test_exceptions_unwind_frames(py, tmp_path):
    prog = write_prog(tmp_path, EXC)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"3\n", describe(p)
    for name in ("l1", "l2", "l3", "after"):
        assert prof.func(name, prog)["calls"] == 3, (name, prof.summary())
    assert prof.func("top", prog)["calls"] == 1
    check_balanced(prof, prog)
    assert prof.stacks_under("top") == {
        ("top",), ("top", "l1"), ("top", "l1", "l2"), ("top", "l1", "l2", "l3"), ("top", "after"),
    }, prof.summary()
    for names, _ in prof.stacks():
        if "top" in names:
            assert names[:2] == ["<module>", "top"], names


def test_exception_through_generator_and_nested_handlers(py, tmp_path):
    prog = write_prog(tmp_path, """
        def g():
            yield 1
            raise KeyError("x")

        def inner():
            try:
                for _ in g():
                    pass
            finally:
                cleanup()

        def cleanup():
            return 0

        def outer():
            n = 0
            for _ in range(4):
                try:
                    inner()
                except KeyError:
                    n += 1
            return n

        print(outer())
    """)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"4\n", describe(p)
    assert prof.func("g", prog)["calls"] == 8, prof.summary()  # 4 x (start + 1 resume)
    assert prof.func("inner", prog)["calls"] == 4
    assert prof.func("cleanup", prog)["calls"] == 4
    check_balanced(prof, prog)
    assert prof.stacks_under("outer") == {
        ("outer",), ("outer", "inner"), ("outer", "inner", "g"), ("outer", "inner", "cleanup"),
    }, prof.summary()


def test_exception_through_c_function(py, tmp_path):
    prog = write_prog(tmp_path, """
        def bad(x):
            if x == 2:
                raise KeyError(x)
            return x

        def after():
            return 0

        def top():
            n = 0
            for _ in range(3):
                try:
                    sorted([3, 1, 2], key=bad)
                except KeyError:
                    n += 1
                after()
            return n

        print(top())
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"3\n", describe(p)
    check_balanced(prof, prog)
    assert prof.calls("sorted") == 3, prof.summary()
    assert prof.func("bad", prog)["calls"] == 9, prof.summary()  # 3, 1, 2 then raise
    assert prof.func("after", prog)["calls"] == 3
    under = prof.stacks_under("top")
    assert ("top", "sorted", "bad") in under and ("top", "after") in under, prof.summary()
    for names in under:
        assert names[:2] in (("top",), ("top", "sorted"), ("top", "after")), names
        assert "after" not in names or names == ("top", "after"), names


def test_yield_from_and_early_close(py, tmp_path):
    prog = write_prog(tmp_path, """
        def inner():
            for i in range(5):
                yield i

        def outer():
            yield from inner()

        def partial():
            for v in inner():
                if v == 1:
                    break

        def after():
            return 1

        def main():
            s = sum(outer())
            partial()
            after()
            return s

        print(main())
    """)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"10\n", describe(p)
    check_balanced(prof, prog)
    assert prof.func("outer", prog)["calls"] == 6, prof.summary()
    assert prof.func("after", prog)["calls"] == 1
    # after runs right under main, whatever happened to the abandoned generator
    for names, _ in prof.stacks():
        if "after" in names:
            assert names == ["<module>", "main", "after"], names
        if "inner" in names:
            i = names.index("inner")
            assert names[i - 1] in ("outer", "partial"), names
            assert names.count("inner") == 1, names


def test_gather_tasks(py, tmp_path):
    prog = write_prog(tmp_path, """
        import asyncio

        async def task(n):
            for _ in range(4):
                await asyncio.sleep(0)
            return n

        async def amain():
            return sum(await asyncio.gather(task(1), task(2), task(3)))

        print(asyncio.run(amain()))
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"6\n", describe(p)
    check_balanced(prof, prog)
    # 3 tasks x (start + 4 resumes)
    assert prof.func("task", prog)["calls"] == 15, prof.summary()
    for names, _ in prof.stacks():
        if "task" in names:
            assert names.count("task") == 1 and "amain" not in names, names
            assert names[0] == "<module>", names


def test_generator_resumed_in_another_thread(py, tmp_path):
    prog = write_prog(tmp_path, """
        import threading
        def gen():
            for i in range(6):
                yield i
        def take(g, n, out):
            for _ in range(n):
                out.append(next(g))
        def main():
            g = gen()
            out = []
            take(g, 3, out)
            t = threading.Thread(target=take, args=(g, 3, out), name="other")
            t.start()
            t.join()
            take(g, 0, out)
            print(out, list(g))
        main()
    """)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"[0, 1, 2, 3, 4, 5] []\n", describe(p)
    check_balanced(prof, prog)
    # 3 resumptions in main, 3 in the thread, the final one from list(g)
    assert prof.func("gen", prog)["calls"] == 7, prof.summary()
    for names, _ in prof.stacks():
        if "gen" in names:
            assert names[names.index("gen") - 1] in ("take", "main"), names
            assert names.count("gen") == 1, names
