"""Every way of turning the profiler on, and every way of starting Python."""
import json
import subprocess
import time

import pytest

from conftest import (PYPKG, clean_env, describe, load_profile, preload_env, run, run_import,
                      run_module, run_preload, run_record, write_prog)

# marker() is called exactly 7 times; argv and exit code are observable.
MARKED = """
import json, sys

def marker(i):
    return i * 2

def main():
    return sum(marker(i) for i in range(7))

print(json.dumps({"argv": sys.argv[1:], "sum": main()}))
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
"""


def check_marked(p, prof, file, args, code=0):
    assert p.returncode == code, describe(p)
    assert json.loads(p.stdout) == {"argv": args, "sum": 42}, describe(p)
    assert prof.calls("marker", str(file)) == 7, prof.summary()
    assert prof.calls("main", str(file)) == 1, prof.summary()
    assert not prof.truncated


# ---- cpyprof record ------------------------------------------------------

def test_record_passes_args_and_exit_code(py, tmp_path):
    prog = write_prog(tmp_path, MARKED)
    args = ["3", "--flag", "with space", "-o", "x", "--", "ünï"]
    p, prof = run_record(py, [prog, *args], tmp_path)
    check_marked(p, prof, prog, args, code=3)
    assert p.stderr == b"", describe(p)


def test_record_summary_goes_to_stderr_only(py, tmp_path):
    """Without --quiet, `record` may add its own `cpyprof: ` lines after the
    program's stderr; stdout and the exit code stay the program's."""
    prog = write_prog(tmp_path, MARKED.replace("print(json", "print('err', file=sys.stderr)\nprint(json"))
    ref = run([py.exe, prog, "3"], cwd=tmp_path)
    assert ref.returncode == 3 and ref.stderr == b"err\n", describe(ref)
    p, prof = run_record(py, [prog, "3"], tmp_path, quiet=False)
    check_marked(p, prof, prog, ["3"], code=3)
    assert p.stdout == ref.stdout
    assert p.stderr.startswith(ref.stderr), describe(p)
    extra = p.stderr[len(ref.stderr):].decode().splitlines()
    assert all(l.startswith("cpyprof: ") for l in extra), describe(p)


def test_record_exit_zero_and_stdin(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys
        def echo():
            data = sys.stdin.read()
            sys.stdout.write(data.upper())
        echo()
    """)
    p, prof = run_record(py, [prog], tmp_path, input=b"hello\nworld\n")
    assert p.returncode == 0 and p.stdout == b"HELLO\nWORLD\n", describe(p)
    assert prof.func("echo", prog)["calls"] == 1


def test_record_child_killed_by_signal(py, tmp_path):
    prog = write_prog(tmp_path, """
        import os, signal
        def die():
            os.kill(os.getpid(), signal.SIGTERM)
        print("before", flush=True)
        die()
        print("not reached")
    """)
    t0 = time.monotonic()
    p, prof = run_record(py, [prog], tmp_path, expect_profile=False)
    elapsed = time.monotonic() - t0
    assert p.returncode == -15, describe(p)
    assert p.stdout == b"before\n"
    prof = load_profile(p, tmp_path / "record.cpyprof")
    assert not prof.truncated, prof.summary()
    assert prof.func("die", prog)["calls"] == 1, prof.summary()
    # without the profiler this takes a few ms; a wide margin, not a benchmark
    assert elapsed < 5.0, "took %.2f s to die by SIGTERM" % elapsed


# ---- raw LD_PRELOAD -------------------------------------------------------

def test_preload_script(py, tmp_path):
    prog = write_prog(tmp_path, MARKED)
    p, prof = run_preload(py, [prog, "5", "a"], tmp_path)
    check_marked(p, prof, prog, ["5", "a"], code=5)
    assert p.stderr == b""


def test_preload_default_output_name(py, tmp_path):
    prog = write_prog(tmp_path, MARKED)
    work = tmp_path / "cwd"
    work.mkdir()
    env = preload_env("unused")
    del env["CPYPROF_OUTPUT"]
    p = run([py.exe, prog], env=env, cwd=work)
    assert sorted(x.name for x in work.iterdir()) == ["cpyprof.out"], describe(p)
    check_marked(p, load_profile(p, work / "cpyprof.out"), prog, [])


def test_preload_dash_c(py, tmp_path):
    p, prof = run_preload(py, ["-c", MARKED, "9"], tmp_path)
    check_marked(p, prof, "<string>", ["9"], code=9)


def test_preload_dash_m(py, tmp_path):
    write_prog(tmp_path, MARKED, name="markmod.py")
    p, prof = run_preload(py, ["-m", "markmod", "x", "y"], tmp_path, cwd=tmp_path)
    check_marked(p, prof, tmp_path / "markmod.py", ["x", "y"])


def test_preload_stdin_dash_redirect(py, tmp_path):
    prog = write_prog(tmp_path, MARKED)
    with open(prog, "rb") as f:
        p, prof = run_preload(py, ["-", "4"], tmp_path, stdin=f)
    check_marked(p, prof, "<stdin>", ["4"], code=4)


def test_preload_stdin_piped(py, tmp_path):
    prog = write_prog(tmp_path, MARKED)
    p, prof = run_preload(py, [], tmp_path, input=prog.read_bytes())
    check_marked(p, prof, "<stdin>", [])


@pytest.mark.parametrize("flags", ["-I", "-S", "-E", "-B", "-u", "-O", "-X dev", "-X importtime",
                                   "-W error", "-X faulthandler"])
def test_preload_interpreter_flags(py, tmp_path, flags):
    prog = write_prog(tmp_path, MARKED)
    ref = run([py.exe, *flags.split(), prog, "6"], cwd=tmp_path)
    p, prof = run_preload(py, [*flags.split(), prog, "6"], tmp_path)
    if flags != "-X importtime":  # import times differ from run to run
        assert p.stderr == ref.stderr, describe(p) + describe(ref)
    check_marked(p, prof, prog, ["6"], code=6)


# ---- the Python package ---------------------------------------------------

def test_import_start_stop(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys
        import cpyprof

        def marker(i):
            return i * 2

        def main(path):
            assert not cpyprof.is_running()
            cpyprof.start(path)
            assert cpyprof.is_running()
            s = sum(marker(i) for i in range(7))
            ret = cpyprof.stop()
            assert not cpyprof.is_running()
            print(ret == path, s)
            marker(100)  # not profiled

        main(sys.argv[1])
    """)
    out = tmp_path / "api.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0 and p.stdout == b"True 42\n", describe(p)
    assert p.stderr == b""
    assert prof.calls("marker", prog) == 7, prof.summary()
    assert not prof.truncated
    # started inside main: stacks are rooted at <module>, through main
    for names, _ in prof.stacks():
        if "marker" in names:
            assert names[:2] == ["<module>", "main"], names


def test_import_context_manager(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys
        import cpyprof

        def marker(i):
            return i * 2

        marker(0)
        with cpyprof.profile(output=sys.argv[1]):
            s = sum(marker(i) for i in range(7))
        marker(1)
        print(s, cpyprof.is_running())
    """)
    out = tmp_path / "ctx.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0 and p.stdout == b"42 False\n", describe(p)
    assert prof.calls("marker", prog) == 7, prof.summary()
    assert not prof.truncated


def test_import_decorator(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys
        import cpyprof

        def marker(i):
            return i * 2

        @cpyprof.profile(output=sys.argv[1], builtins=False)
        def job():
            return sum([marker(i) for i in range(7)])

        marker(0)
        print(job(), cpyprof.is_running())
    """)
    out = tmp_path / "deco.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0 and p.stdout == b"42 False\n", describe(p)
    assert prof.calls("marker", prog) == 7, prof.summary()
    assert prof.calls("job", prog) == 1, prof.summary()
    assert "sum" not in prof.names(), prof.summary()  # builtins=False


def test_import_api_errors(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys
        import cpyprof
        out = sys.argv[1]

        try:
            cpyprof.start(out, mode="bogus")
        except ValueError as e:
            print("ValueError", "mode" in str(e).lower())
        print(cpyprof.is_running())
        try:
            cpyprof.start("/nonexistent/dir/x.cpyprof")
        except OSError:
            print("OSError")
        print(cpyprof.is_running())
        cpyprof.start(out)
        try:
            cpyprof.start(out)
        except RuntimeError:
            print("RuntimeError")
        print(cpyprof.stop() == out)
        print(cpyprof.library_path().endswith(".so"))
    """)
    out = tmp_path / "err.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0, describe(p)
    assert p.stdout.decode().split("\n") == [
        "ValueError True", "False", "OSError", "False", "RuntimeError", "True", "True", ""], \
        describe(p)


# ---- python -m cpyprof record ----------------------------------------------

def test_python_m_cpyprof_script(py, tmp_path):
    prog = write_prog(tmp_path, MARKED)
    p, prof = run_module(py, [prog, "3", "z"], tmp_path)
    check_marked(p, prof, prog, ["3", "z"], code=3)


def test_python_m_cpyprof_module(py, tmp_path):
    write_prog(tmp_path, MARKED, name="markmod2.py")
    p, prof = run_module(py, ["-m", "markmod2", "q"], tmp_path, cwd=tmp_path)
    check_marked(p, prof, tmp_path / "markmod2.py", ["q"])


def test_python_m_cpyprof_code(py, tmp_path):
    p, prof = run_module(py, ["-c", MARKED, "8"], tmp_path)
    check_marked(p, prof, "<string>", ["8"], code=8)


def test_python_m_cpyprof_no_builtins(py, tmp_path):
    prog = write_prog(tmp_path, MARKED)
    p, prof = run_module(py, ["--no-builtins", prog], tmp_path)
    check_marked(p, prof, prog, [])
    assert "sum" not in prof.names(), prof.summary()


# ---- the extension module itself (cpyprof._cpyprof) -------------------------

def test_extension_api(py, tmp_path):
    prog = write_prog(tmp_path, """
        import os, sys
        from cpyprof import _cpyprof as c
        out = sys.argv[1]

        def marker(i):
            return i * 2

        def main():
            print(isinstance(c.__version__, str), os.path.exists(c.library_path()), c.is_running())
            for opts, exc in (({"mode": "bogus"}, ValueError), ({"ring_size": "huge"}, ValueError),
                              ({"nosuchoption": "1"}, ValueError)):
                try:
                    c.start(out, opts)
                    print("no error for", opts)
                except exc as e:
                    print(exc.__name__, bool(str(e)))
            try:
                c.start("/nonexistent/dir/x", {})
            except OSError as e:
                print("OSError", "/nonexistent/dir/x" in str(e))
            print(c.is_running())
            c.start(out, {"builtins": "0"})
            try:
                c.start(out, {})
            except RuntimeError:
                print("RuntimeError")
            print(c.is_running(), sum([marker(i) for i in range(7)]))
            print(c.stop() == out, c.is_running(), c.stop())

        main()
    """)
    out = tmp_path / "ext.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert p.stdout.decode().splitlines() == [
        "True True False", "ValueError True", "ValueError True", "ValueError True",
        "OSError True", "False", "RuntimeError", "True 42", "True False None"], describe(p)
    assert prof.calls("marker", prog) == 7, prof.summary()
    assert "sum" not in prof.names(), prof.summary()
    assert not prof.truncated
    for names, _ in prof.stacks():
        if "marker" in names:
            assert names[:2] == ["<module>", "main"], names


def test_python_m_cpyprof_script_semantics(py, tmp_path):
    """The script runs as __main__ with its own argv[0] and __file__; an
    uncaught exception still writes the profile and exits 1."""
    prog = write_prog(tmp_path, """
        import sys
        def inner():
            raise ValueError("from the script")
        def main():
            print(__name__, sys.argv[0] == __file__, sys.argv[1:])
            sys.stdout.flush()
            inner()
        if __name__ == "__main__":
            main()
    """)
    ref = run([py.exe, prog, "a"], cwd=tmp_path)
    p, prof = run_module(py, [prog, "a"], tmp_path)
    assert p.returncode == 1 == ref.returncode, describe(p)
    assert p.stdout == ref.stdout == b"__main__ True ['a']\n", describe(p)
    assert p.stderr.splitlines()[-1] == b"ValueError: from the script", describe(p)
    assert prof.func("inner", prog)["calls"] == 1, prof.summary()
    assert prof.func("main", prog)["calls"] == 1, prof.summary()
    assert not prof.truncated


def test_python_m_cpyprof_help(py, tmp_path):
    p = run([py.exe, "-m", "cpyprof", "record", "--help"], env=clean_env(PYTHONPATH=PYPKG),
            cwd=tmp_path)
    assert p.returncode == 0 and b"-o" in p.stdout, describe(p)
    p = run([py.exe, "-m", "cpyprof", "record", "--bogus", "x.py"],
            env=clean_env(PYTHONPATH=PYPKG), cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip(), describe(p)


def test_import_two_sessions_in_one_process(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys
        import cpyprof
        def f():
            return len("abc")
        cpyprof.start(sys.argv[1])
        for _ in range(3):
            f()
        cpyprof.stop()
        f()
        cpyprof.start(sys.argv[2], builtins=False)
        for _ in range(5):
            f()
        cpyprof.stop()
        print("ok")
    """)
    a, b = tmp_path / "a.cpyprof", tmp_path / "b.cpyprof"
    p, prof_b = run_import(py, [prog, a, b], b, tmp_path)
    assert p.returncode == 0 and p.stdout == b"ok\n" and p.stderr == b"", describe(p)
    prof_a = load_profile(p, a)
    assert prof_a.func("f", prog)["calls"] == 3, prof_a.summary()
    assert prof_b.func("f", prog)["calls"] == 5, prof_b.summary()
    assert prof_a.calls("len") == 3, prof_a.summary()
    assert "len" not in prof_b.names(), prof_b.summary()


def test_import_start_from_a_worker_thread(py, tmp_path):
    """start() called from a worker thread covers the main thread as well."""
    prog = write_prog(tmp_path, """
        import sys, threading
        import cpyprof
        def main_leaf():
            return 1
        def worker_leaf():
            return 2
        started = threading.Event()
        main_done = threading.Event()
        def worker(path):
            cpyprof.start(path)
            started.set()
            for _ in range(7):
                worker_leaf()
            main_done.wait()
            cpyprof.stop()
        t = threading.Thread(target=worker, args=(sys.argv[1],), name="starter")
        t.start()
        started.wait()
        for _ in range(9):
            main_leaf()
        main_done.set()
        t.join()
        print("ok")
    """)
    out = tmp_path / "w.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0 and p.stdout == b"ok\n" and p.stderr == b"", describe(p)
    assert prof.func("worker_leaf", prog)["calls"] == 7, prof.summary()
    assert prof.func("main_leaf", prog)["calls"] == 9, prof.summary()
    assert sorted((t["name"] for t in prof.threads), key=str) == ["MainThread", "starter"], \
        prof.threads


@pytest.mark.parametrize("allocator", ["malloc", "debug", "pymalloc_debug"])
def test_preload_with_pythonmalloc(py, tmp_path, allocator):
    """PYTHONMALLOC (also set by -X dev) changes the allocators during
    pre-initialisation, after the library's constructor has run."""
    prog = write_prog(tmp_path, MARKED)
    ref = run([py.exe, prog, "6"], cwd=tmp_path, env=clean_env(PYTHONMALLOC=allocator))
    assert ref.returncode == 6, describe(ref)
    p, prof = run_preload(py, [prog, "6"], tmp_path, env_extra={"PYTHONMALLOC": allocator})
    assert (p.stdout, p.stderr, p.returncode) == (ref.stdout, ref.stderr, ref.returncode), \
        describe(p) + describe(ref)
    check_marked(p, prof, prog, ["6"], code=6)


def test_import_context_manager_with_exception_and_defaults(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys
        import cpyprof

        def marker():
            return 1

        def boom():
            marker()
            raise KeyError("inside")

        print(cpyprof.stop())
        try:
            with cpyprof.profile(output=sys.argv[1]):
                boom()
        except KeyError as e:
            print("propagated", e, cpyprof.is_running())

        @cpyprof.profile(output=sys.argv[2])
        def decorated():
            marker()
            raise ValueError("deco")
        try:
            decorated()
        except ValueError as e:
            print("propagated", e, cpyprof.is_running())

        cpyprof.start()
        marker()
        print(cpyprof.stop())
    """)
    a, b = tmp_path / "ctx.cpyprof", tmp_path / "deco.cpyprof"
    work = tmp_path / "cwd"
    work.mkdir()
    p, prof_a = run_import(py, [prog, a, b], a, tmp_path, cwd=work)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert p.stdout.decode().splitlines() == [
        "None", "propagated 'inside' False", "propagated deco False", "cpyprof.out"], describe(p)
    assert prof_a.func("boom", prog)["calls"] == 1 and prof_a.func("marker", prog)["calls"] == 1
    prof_b = load_profile(p, b)
    assert prof_b.func("decorated", prog)["calls"] == 1, prof_b.summary()
    prof_c = load_profile(p, work / "cpyprof.out")
    assert prof_c.func("marker", prog)["calls"] == 1, prof_c.summary()


def test_python_m_cpyprof_stdin(py, tmp_path):
    p, prof = run_module(py, ["-", "2"], tmp_path, input=MARKED.encode())
    check_marked(p, prof, "<stdin>", ["2"], code=2)


def test_python_m_cpyprof_package_main(py, tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write_prog(pkg, MARKED, name="__main__.py")
    p, prof = run_module(py, ["-m", "mypkg", "z"], tmp_path, cwd=tmp_path)
    check_marked(p, prof, pkg / "__main__.py", ["z"])


def test_preload_package_main_and_zipapp(py, tmp_path):
    import zipfile
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write_prog(pkg, MARKED, name="__main__.py")
    p, prof = run_preload(py, ["-m", "mypkg", "z"], tmp_path, cwd=tmp_path)
    check_marked(p, prof, pkg / "__main__.py", ["z"])
    app = tmp_path / "app.pyz"
    with zipfile.ZipFile(app, "w") as z:
        z.writestr("__main__.py", MARKED)
    p, prof = run_preload(py, [app, "q"], tmp_path, out=tmp_path / "zip.cpyprof")
    check_marked(p, prof, app / "__main__.py", ["q"])
