"""Where and when the profile is written, and what else the library says."""
import json

from conftest import CLI, describe, load_profile, preload_env, run, run_preload, run_record, write_prog

FIB_N = """
import sys
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
print(fib(int(sys.argv[1])))
"""


def test_output_overwritten_not_appended(py, tmp_path):
    prog = write_prog(tmp_path, FIB_N)
    out = tmp_path / "same.cpyprof"
    p, prof = run_preload(py, [prog, "10"], tmp_path, out=out)
    assert p.returncode == 0 and prof.func("fib", prog)["calls"] == 177, prof.summary()
    p, prof = run_preload(py, [prog, "5"], tmp_path, out=out)
    assert p.returncode == 0 and p.stdout == b"5\n", describe(p)
    assert prof.func("fib", prog)["calls"] == 15, prof.summary()


def test_relative_output_survives_chdir(py, tmp_path):
    """A relative CPYPROF_OUTPUT names a file in the directory the program
    started in, even if the program changes directory."""
    prog = write_prog(tmp_path, """
        import os, sys
        def work():
            return 1
        os.mkdir("elsewhere")
        os.chdir("elsewhere")
        print(work())
    """)
    work = tmp_path / "start"
    work.mkdir()
    p = run([py.exe, prog], env=preload_env("rel.cpyprof"), cwd=work)
    assert p.returncode == 0 and p.stdout == b"1\n" and p.stderr == b"", describe(p)
    assert not (work / "elsewhere" / "rel.cpyprof").exists()
    prof = load_profile(p, work / "rel.cpyprof")
    assert prof.func("work", prog)["calls"] == 1


def test_odd_output_path(py, tmp_path):
    prog = write_prog(tmp_path, FIB_N)
    odd = tmp_path / "dir with space" / "prøfile ünï.cpyprof"
    odd.parent.mkdir()
    p, prof = run_preload(py, [prog, "6"], tmp_path, out=odd)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert prof.func("fib", prog)["calls"] == 25


def test_atexit_handlers_are_profiled(py, tmp_path):
    prog = write_prog(tmp_path, """
        import atexit
        def leaf():
            return 1
        def at_exit_fn():
            for _ in range(3):
                leaf()
        atexit.register(at_exit_fn)
        leaf()
        print("main done")
    """)
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"main done\n", describe(p)
    assert not prof.truncated
    assert prof.func("at_exit_fn", prog)["calls"] == 1, prof.summary()
    assert prof.func("leaf", prog)["calls"] == 4, prof.summary()


def test_quiet_silences_drop_warning(py, tmp_path):
    prog = write_prog(tmp_path, """
        def leaf(i):
            return i
        for i in range(200000):
            leaf(i)
        print("ok")
    """)
    p, prof = run_preload(py, [prog], tmp_path, env_extra={
        "CPYPROF_TRANSPORT": "ring", "CPYPROF_RING_SIZE": "4K", "CPYPROF_QUIET": "1"})
    assert p.returncode == 0 and p.stdout == b"ok\n", describe(p)
    assert prof.dropped > 0, prof.summary()
    assert p.stderr == b"", describe(p)


def test_meta_describes_the_run(py, tmp_path):
    prog = write_prog(tmp_path, FIB_N)
    p, prof = run_record(py, [prog, "3"], tmp_path, opts=["--no-builtins"])
    assert p.returncode == 0, describe(p)
    meta = prof.json["meta"]
    assert prof.json["schema"] == "cpyprof.report/1"
    assert meta.get("mode") == "trace", meta
    assert str(meta.get("builtins")) in ("0", "False", "false"), meta
    assert meta.get("python_version") == py.version, meta
    assert str(prog) in str(meta.get("argv")), meta


def test_sample_mode_basic(py, tmp_path):
    """Sampling: the program is unaffected and a CPU-bound function that runs
    for a good fraction of a second shows up. (Counts are statistical: only
    presence is asserted.)"""
    prog = write_prog(tmp_path, """
        def hot():
            s = 0
            for i in range(6_000_000):
                s += i & 7
            return s
        print(hot())
    """)
    ref = run([py.exe, prog], cwd=tmp_path)
    p, prof = run_record(py, [prog], tmp_path, opts=["--mode", "sample"])
    assert (p.returncode, p.stdout, p.stderr) == (ref.returncode, ref.stdout, ref.stderr), describe(p)
    assert prof.json["meta"].get("mode") == "sample", prof.json["meta"]
    assert prof.funcs("hot", prog), prof.summary()
    assert any("hot" in names for names, _ in prof.stacks()), prof.summary()
    assert not prof.truncated
