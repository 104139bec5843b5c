"""Programs that stress the edges: dying code objects, many functions, deep
recursion, fork, thread churn, daemon threads still running at exit."""
from conftest import describe, run, run_preload, run_record, write_prog


def test_many_short_lived_code_objects(py, tmp_path):
    """Functions created by exec, called once and dropped: every one is named
    correctly even though its code object is gone by the time the profile is
    written."""
    prog = write_prog(tmp_path, """
        import gc
        def make_and_call(n):
            total = 0
            for i in range(n):
                ns = {}
                exec("def gen_%d(x):\\n    return x + %d\\n" % (i, i), ns)
                total += ns["gen_%d" % i](1)
                del ns
            gc.collect()
            return total
        print(make_and_call(2000))
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"%d\n" % sum(i + 1 for i in range(2000)), describe(p)
    gens = [f for f in prof.functions if f["name"].startswith("gen_")]
    assert len(gens) == 2000, prof.summary()
    assert sorted(int(f["name"][4:]) for f in gens) == list(range(2000))
    assert all(f["calls"] == 1 and f["file"] == "<string>" and f["line"] == 1 for f in gens)
    assert prof.calls("exec") == 2000, prof.summary()


def test_many_distinct_functions_and_unicode_names(py, tmp_path):
    prog = write_prog(tmp_path, """
        src = "\\n".join("def f_%d():\\n    return %d" % (i, i) for i in range(3000))
        exec(compile(src, "generated.py", "exec"))
        def λ_ünïcode():
            return sum(globals()["f_%d" % i]() for i in range(3000))
        print(λ_ünïcode())
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"%d\n" % sum(range(3000)), describe(p)
    fs = [f for f in prof.functions if f["name"].startswith("f_") and f["file"] == "generated.py"]
    assert len(fs) == 3000 and all(f["calls"] == 1 for f in fs), prof.summary()
    assert {f["line"] for f in fs} == {1 + 2 * i for i in range(3000)}
    assert prof.func("λ_ünïcode", prog)["calls"] == 1, prof.summary()
    assert ("λ_ünïcode", "sum", "λ_ünïcode.<locals>.<genexpr>", "f_42") in \
        prof.stacks_under("λ_ünïcode"), prof.summary()


def test_deep_recursion_and_recursion_error(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys
        def down(n):
            return 0 if n == 0 else 1 + down(n - 1)
        def forever(n):
            return forever(n + 1)
        def after():
            return 1
        def main():
            print(down(900))
            try:
                forever(0)
            except RecursionError:
                print("RecursionError")
            print(after())
        main()
    """)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"900\nRecursionError\n1\n", describe(p)
    assert prof.func("down", prog)["calls"] == 901, prof.summary()
    assert prof.func("after", prog)["calls"] == 1
    # after runs directly under main: the frames unwound by RecursionError
    # are all closed
    assert ("main", "after") in prof.stacks_under("main"), prof.summary()
    for names, _ in prof.stacks():
        if "after" in names:
            assert names == ["<module>", "main", "after"], names
    assert prof.func("down", prog)["total_ns"] <= prof.func("main", prog)["total_ns"]


def test_max_depth_limits_without_breaking(py, tmp_path):
    prog = write_prog(tmp_path, """
        def down(n):
            return 0 if n == 0 else 1 + down(n - 1)
        def after():
            return 2
        def main():
            return down(100) + after()
        print(main())
    """)
    p, prof = run_record(py, [prog], tmp_path, opts=["--max-depth", "16"])
    assert p.returncode == 0 and p.stdout == b"102\n", describe(p)
    assert not prof.truncated
    # frames below the limit are exact; after() (depth 3) too
    assert prof.func("main", prog)["calls"] == 1
    assert prof.func("after", prog)["calls"] == 1, prof.summary()
    for names, _ in prof.stacks():
        assert len(names) <= 16, names
        if "after" in names:
            assert names == ["<module>", "main", "after"], names


def test_fork_child_does_not_overwrite(py, tmp_path):
    """A forked child that exits normally (atexit runs) must not rewrite or
    spoil the parent's profile."""
    prog = write_prog(tmp_path, """
        import os, sys
        def child_only():
            return 1
        def parent_before():
            return 1
        def parent_after():
            return 2
        def main():
            parent_before()
            pid = os.fork()
            if pid == 0:
                for _ in range(5):
                    child_only()
                sys.exit(0)
            _, status = os.waitpid(pid, 0)
            print("child", os.waitstatus_to_exitcode(status))
            parent_after()
        main()
    """)
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"child 0\n" and p.stderr == b"", describe(p)
    assert not prof.truncated, prof.summary()
    assert prof.func("parent_before", prog)["calls"] == 1, prof.summary()
    assert prof.func("parent_after", prog)["calls"] == 1, prof.summary()
    assert prof.funcs("child_only", prog) == [], prof.summary()
    assert sorted(x.name for x in tmp_path.iterdir()) == ["preload.cpyprof", "prog.py"]


def test_multiprocessing_fork_pool(py, tmp_path):
    prog = write_prog(tmp_path, """
        import multiprocessing as mp
        def square(x):
            return x * x
        def main():
            ctx = mp.get_context("fork")
            with ctx.Pool(2) as pool:
                print(sum(pool.map(square, range(100))))
        if __name__ == "__main__":
            main()
    """)
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"328350\n" and p.stderr == b"", describe(p)
    assert not prof.truncated
    assert prof.func("main", prog)["calls"] == 1, prof.summary()
    # square ran only in the workers
    assert prof.funcs("square", prog) == [], prof.summary()


def test_thread_churn(py, tmp_path):
    prog = write_prog(tmp_path, """
        import threading
        def leaf():
            return 1
        def work():
            for _ in range(10):
                leaf()
        def main():
            for i in range(60):
                t = threading.Thread(target=work, name="churn-%d" % i)
                t.start()
                t.join()
        main()
        print("done")
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"done\n", describe(p)
    assert prof.calls("leaf", prog) == 600, prof.summary()
    assert prof.calls("work", prog) == 60
    names = [t["name"] for t in prof.threads]
    assert len(names) == 61, prof.threads
    assert sorted(n for n in names if n != "MainThread") == sorted("churn-%d" % i for i in range(60))


def test_daemon_thread_running_at_exit(py, tmp_path):
    prog = write_prog(tmp_path, """
        import threading, time
        started = threading.Event()
        def spin_leaf():
            return 1
        def spinner():
            started.set()
            while True:
                spin_leaf()
        def main_work():
            return sum(range(10))
        def main():
            threading.Thread(target=spinner, name="spinner", daemon=True).start()
            started.wait()
            print(main_work())
        main()
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"45\n" and p.stderr == b"", describe(p)
    assert not prof.truncated, prof.summary()
    assert prof.func("main_work", prog)["calls"] == 1
    assert prof.func("spinner", prog)["calls"] == 1, prof.summary()
    assert prof.func("spin_leaf", prog)["calls"] >= 1
    assert sorted(t["name"] for t in prof.threads) == ["MainThread", "spinner"], prof.threads


def test_subinterpreter_does_not_break(py, tmp_path):
    prog = write_prog(tmp_path, """
        import _xxsubinterpreters as interpreters
        def main_fn():
            return 1
        def main():
            iid = interpreters.create()
            interpreters.run_string(iid, "def sub_fn():\\n    return 2\\nfor _ in range(3): sub_fn()\\nprint('sub ok')")
            interpreters.destroy(iid)
            for _ in range(4):
                main_fn()
            print("main ok")
        main()
    """)
    p, prof = run_preload(py, [prog], tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"sub ok\nmain ok\n", b""), describe(p)
    assert not prof.truncated
    assert prof.func("main_fn", prog)["calls"] == 4, prof.summary()
    assert prof.func("main", prog)["calls"] == 1, prof.summary()


def test_program_own_tracer_sees_the_same(py, tmp_path):
    """A program with its own sys.settrace (coverage tools, debuggers) gets
    the same events with and without the profiler."""
    prog = write_prog(tmp_path, """
        import sys
        seen = []
        def tracer(frame, event, arg):
            if event == "call" and frame.f_code.co_filename == __file__:
                seen.append(frame.f_code.co_name)
            return None
        def g():
            return 1
        def f():
            return g() + g()
        sys.settrace(tracer)
        for _ in range(3):
            f()
        sys.settrace(None)
        print(sorted(seen))
    """)
    ref = run([py.exe, prog], cwd=tmp_path)
    p, prof = run_preload(py, [prog], tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (ref.returncode, ref.stdout, ref.stderr), \
        describe(p) + describe(ref)
    assert ref.stdout == b"['f', 'f', 'f', 'g', 'g', 'g', 'g', 'g', 'g']\n"
    assert prof.func("f", prog)["calls"] == 3 and prof.func("g", prog)["calls"] == 6, prof.summary()


def test_trivial_program(py, tmp_path):
    p, prof = run_preload(py, ["-c", "pass"], tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"", b""), describe(p)
    assert not prof.truncated
    assert prof.func("<module>", "<string>")["calls"] == 1, prof.summary()


def test_recursion_beyond_default_max_depth(py, tmp_path):
    """Deeper than the default depth limit (2048): calls beyond it are not
    tracked, but the stack is back in step once they return."""
    prog = write_prog(tmp_path, """
        import sys
        sys.setrecursionlimit(10000)
        def down(n):
            return 0 if n == 0 else 1 + down(n - 1)
        def after():
            return 1
        def main():
            a = down(3000)
            b = after()
            c = down(10)
            return a + b + c
        print(main())
    """)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"3011\n" and p.stderr == b"", describe(p)
    assert not prof.truncated
    assert prof.func("after", prog)["calls"] == 1, prof.summary()
    assert prof.func("main", prog)["calls"] == 1, prof.summary()
    calls = prof.func("down", prog)["calls"]
    assert 11 + 2000 <= calls <= 3001 + 11, calls
    for names, _ in prof.stacks():
        assert len(names) <= 2048, len(names)
        if "after" in names:
            assert names == ["<module>", "main", "after"], names[:6]
        if "main" in names:
            assert names[:2] == ["<module>", "main"], names[:6]


def test_python_signal_handlers(py, tmp_path):
    prog = write_prog(tmp_path, """
        import os, signal
        hits = []
        def handler(sig, frame):
            hits.append(sig)
        def main():
            signal.signal(signal.SIGUSR1, handler)
            for _ in range(3):
                os.kill(os.getpid(), signal.SIGUSR1)
            print(len(hits))
        main()
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"3\n" and p.stderr == b"", describe(p)
    assert prof.func("handler", prog)["calls"] == 3, prof.summary()
    for names, _ in prof.stacks():
        if "handler" in names:
            assert names[:2] == ["<module>", "main"], names


def test_generator_send_and_throw(py, tmp_path):
    prog = write_prog(tmp_path, """
        def acc():
            total = 0
            while True:
                try:
                    x = yield total
                except ValueError:
                    x = 100
                total += x

        def after():
            return 0

        def main():
            g = acc()
            next(g)
            g.send(1)
            g.send(2)
            r = g.throw(ValueError)
            g.close()
            after()
            return r

        print(main())
    """)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"103\n", describe(p)
    # next, send, send, throw, close: five resumptions
    assert prof.func("acc", prog)["calls"] == 5, prof.summary()
    assert prof.stacks_under("main") <= {("main",), ("main", "acc"), ("main", "after")}, prof.summary()
    assert ("main", "after") in prof.stacks_under("main")


def test_ninety_thousand_call_paths(py, tmp_path):
    """300 x 300 distinct caller/callee paths: every node is kept exactly."""
    prog = write_prog(tmp_path, """
        N = 300
        ns = {}
        src = "\\n".join("def inner_%d():\\n    return %d" % (i, i) for i in range(N))
        src += "\\n" + "\\n".join(
            "def outer_%d():\\n    s = 0\\n    for f in INNERS:\\n        s += f()\\n    return s" % i
            for i in range(N))
        exec(compile(src, "gen.py", "exec"), ns)
        ns["INNERS"] = [ns["inner_%d" % i] for i in range(N)]
        print(sum(ns["outer_%d" % i]() for i in range(N)))
    """)
    p, prof = run_record(py, [prog], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0 and p.stdout == b"13455000\n", describe(p)
    inner = [f for f in prof.functions if f["name"].startswith("inner_") and f["file"] == "gen.py"]
    outer = [f for f in prof.functions if f["name"].startswith("outer_") and f["file"] == "gen.py"]
    assert len(inner) == 300 and {f["calls"] for f in inner} == {300}, prof.summary()
    assert len(outer) == 300 and {f["calls"] for f in outer} == {1}, prof.summary()
    paths = {tuple(n[-2:]) for n, _ in prof.stacks() if n[-1].startswith("inner_")}
    assert len(paths) == 90000
