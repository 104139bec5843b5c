"""Only one process profiles; non-Python processes are untouched."""
import pytest

from conftest import CLI, LIB, clean_env, describe, load_profile, run, run_preload, run_record, write_prog


def test_non_python_child_untouched(py, tmp_path):
    prog = write_prog(tmp_path, """
        import subprocess
        def main():
            r = subprocess.run(["/bin/sh", "-c", "echo hi; echo err >&2; exit 3"],
                               capture_output=True)
            print(repr(r.stdout), repr(r.stderr), r.returncode)
        main()
    """)
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert p.stdout == b"b'hi\\n' b'err\\n' 3\n", describe(p)
    assert prof.func("main", prog)["calls"] == 1
    p, prof = run_record(py, [prog], tmp_path)
    assert p.stdout == b"b'hi\\n' b'err\\n' 3\n" and p.returncode == 0, describe(p)


@pytest.mark.parametrize("argv,out,code", [
    (["/bin/sh", "-c", "echo x; exit 7"], b"x\n", 7),
    (["/bin/true"], b"", 0),
    (["/bin/false"], b"", 1),
    (["/bin/echo", "-n", "y"], b"y", 0),
])
def test_preload_into_non_python(tmp_path, argv, out, code):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = clean_env(LD_PRELOAD=LIB)
    p = run(argv, env=env, cwd=cwd)
    assert (p.stdout, p.stderr, p.returncode) == (out, b"", code), describe(p)
    assert list(cwd.iterdir()) == []
    # also with settings present (even bad ones): a shell must not care
    env = clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=cwd / "x.cpyprof", CPYPROF_MODE="bogus",
                    CPYPROF_RAET="1")
    p = run(argv, env=env, cwd=cwd)
    assert (p.stdout, p.stderr, p.returncode) == (out, b"", code), describe(p)
    assert list(cwd.iterdir()) == []


def test_python_child_does_not_profile(py, tmp_path):
    prog = write_prog(tmp_path, """
        import os, subprocess, sys
        def parent_only():
            code = "def child_only():\\n    return 5\\nprint(child_only())"
            r = subprocess.run([sys.executable, "-c", code], capture_output=True)
            print(r.stdout.decode().strip(), r.returncode, repr(r.stderr))
            r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                               cwd=sys.argv[1])
            print(r.stdout.decode().strip(), r.returncode, repr(r.stderr))
        parent_only()
    """)
    child_cwd = tmp_path / "childcwd"
    child_cwd.mkdir()
    p, prof = run_preload(py, [prog, child_cwd], tmp_path)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert p.stdout == b"5 0 b''\n5 0 b''\n", describe(p)
    assert prof.func("parent_only", prog)["calls"] == 1, prof.summary()
    assert prof.funcs("child_only") == [], prof.summary()
    # the child wrote nothing (not even a default cpyprof.out)
    assert list(child_cwd.iterdir()) == []
    assert sorted(x.name for x in tmp_path.iterdir()) == ["childcwd", "preload.cpyprof", "prog.py"]


def test_python_child_under_record(py, tmp_path):
    prog = write_prog(tmp_path, """
        import subprocess, sys
        def parent_only():
            r = subprocess.run([sys.executable, "-c", "def child_only(): pass\\nchild_only()"])
            return r.returncode
        print(parent_only())
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"0\n" and p.stderr == b"", describe(p)
    assert prof.func("parent_only", prog)["calls"] == 1, prof.summary()
    assert prof.funcs("child_only") == [], prof.summary()


@pytest.mark.parametrize("style", ["exec", "fork"])
def test_record_through_shell_wrapper(py, tmp_path, style):
    """`cpyprof record -- ./wrapper.sh prog.py`: the shell is untouched. A
    Python it exec's is profiled. (A Python it starts as a child is not:
    `record` names its own child in CPYPROF_PID, so for the fork style only
    the program's behaviour is checked.)"""
    prog = write_prog(tmp_path, """
        import sys
        def marker():
            return 1
        for _ in range(4):
            marker()
        print("args", sys.argv[1:])
        sys.exit(6)
    """)
    wrapper = tmp_path / "wrapper.sh"
    if style == "exec":
        wrapper.write_text('#!/bin/sh\nexec "%s" "$@"\n' % py.exe)
    else:
        wrapper.write_text('#!/bin/sh\n"%s" "$@"\nrc=$?\necho "wrapper saw $rc"\nexit $rc\n' % py.exe)
    wrapper.chmod(0o755)
    out = tmp_path / "wrapped.cpyprof"
    p = run([CLI, "record", "-q", "-o", out, "--", wrapper, prog, "x"], cwd=tmp_path)
    expected = b"args ['x']\n" + (b"wrapper saw 6\n" if style == "fork" else b"")
    assert (p.returncode, p.stdout) == (6, expected), describe(p)
    if style == "fork":
        lines = p.stderr.decode().splitlines()
        assert all(l.startswith("cpyprof: ") for l in lines), describe(p)
        return
    assert p.stderr == b"", describe(p)
    prof = load_profile(p, out)
    assert prof.func("marker", prog)["calls"] == 4, prof.summary()


def test_record_non_python_program(tmp_path):
    p = run([CLI, "record", "-q", "-o", tmp_path / "none.cpyprof", "--", "/bin/sh", "-c",
             "echo hi; exit 4"], cwd=tmp_path)
    assert p.returncode == 4 and p.stdout == b"hi\n", describe(p)
