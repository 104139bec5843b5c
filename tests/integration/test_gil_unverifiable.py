"""Where the GIL layout of the running interpreter cannot be verified, one
clear line on stderr and the program runs on unaffected:

- in a supported 3.11, a GIL that does not look like ours (the test knob
  CPYPROF_TEST_GIL_SHIFT makes GIL accounting look for it 8 bytes off, as a
  build with another layout would have it): the real check fails, the rest
  of the profile goes on without GIL data, and `cpyprof gil` says why;
- another CPython version or a debug build: the whole profiler stands down
  at start-up, before it touches the interpreter (it used to crash 3.10 and
  hang 3.13 when it unlinked its audit hook from a _PyRuntime laid out
  otherwise)."""
import glob
import os
import subprocess

import pytest

from conftest import (CLI, LIB, PYPKG, clean_env, describe, load_profile, run, write_prog)
from test_errors import cpyprof_lines, without_cpyprof_lines

# Known output, stderr line and exit status, and known call counts, on three
# threads; the driver starts profiling for the import activation.
PROG = """
import sys, threading
def leaf(i):
    return i * 2
def work(n):
    return sum(leaf(i) for i in range(n))
def main():
    ts = [threading.Thread(target=work, args=(500,)) for _ in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
    print("out", work(100))
    print("own stderr line", file=sys.stderr)
%s
"""
PLAIN = "main()\nsys.exit(5)\n"
IMPORT = ("import cpyprof\ncpyprof.start(sys.argv[1], gil=%r)\nmain()\ncpyprof.stop()\n"
          "sys.exit(5)\n")

LINE_START = "cpyprof: GIL accounting disabled: the GIL at _PyRuntime.ceval.gil does not look held"
LINE_END = "; profiling goes on without GIL data\n"


@pytest.mark.parametrize("activation,method", [
    ("record", "exact"), ("preload", "exact"), ("import", "exact"), ("preload", "sample"),
])
def test_gil_layout_not_verified(py, tmp_path, activation, method):
    ref_prog = write_prog(tmp_path, PROG % PLAIN, "ref.py")
    ref = run([py.exe, ref_prog], env=clean_env(), cwd=tmp_path)
    assert ref.returncode == 5 and ref.stdout == b"out 9900\n", describe(ref)
    out = tmp_path / "p.cpyprof"
    knob = {"CPYPROF_TEST_GIL_SHIFT": "8"}
    gil = "1" if method == "exact" else method
    if activation == "record":
        prog = write_prog(tmp_path, PROG % PLAIN)
        p = run([CLI, "record", "-q", "-o", out, "--gil=" + method, "--", py.exe, prog],
                env=clean_env(**knob), cwd=tmp_path)
    elif activation == "preload":
        prog = write_prog(tmp_path, PROG % PLAIN)
        p = run([py.exe, prog], cwd=tmp_path,
                env=clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=out, CPYPROF_GIL=gil, **knob))
    else:
        prog = write_prog(tmp_path, PROG % (IMPORT % method))
        p = run([py.exe, prog, out], cwd=tmp_path, env=clean_env(PYTHONPATH=PYPKG, **knob))
    # The program does not notice: same output, own stderr, exit status.
    assert (p.stdout, without_cpyprof_lines(p.stderr), p.returncode) == \
        (ref.stdout, ref.stderr, ref.returncode), describe(p) + describe(ref)
    lines = cpyprof_lines(p.stderr)
    assert len(lines) == 1 and lines[0].startswith(LINE_START) and lines[0].endswith(LINE_END), \
        describe(p)
    # The rest of the profile is there, exact.
    prof = load_profile(p, out)
    assert not prof.truncated, prof.summary()
    assert prof.func("work", prog)["calls"] == 3, prof.summary()
    assert prof.func("leaf", prog)["calls"] == 1100, prof.summary()
    assert len(prof.threads) == 3, prof.summary()
    # ... without GIL data, and `cpyprof gil` says why.
    g = run([CLI, "gil", out])
    err = g.stderr.decode()
    assert g.returncode == 1 and g.stdout == b"", describe(g)
    assert "has no GIL data: GIL accounting was asked for but disabled in the run: the GIL " \
           "at _PyRuntime.ceval.gil does not look held" in err, describe(g)


def _other_pythons():
    """CPythons this build does not support: pyenv's other versions and
    Debian's debug build, each with its version text."""
    found = []
    cands = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin/python3")))
    cands += [p for p in ("/usr/bin/python3.11-dbg",) if os.path.exists(p)]
    for exe in cands:
        try:
            v = subprocess.run([exe, "-c", "import sys, platform; print(platform.python_version(),"
                                " int(hasattr(sys, 'gettotalrefcount')))"],
                               capture_output=True, text=True, timeout=30, env=clean_env())
        except (OSError, subprocess.SubprocessError):
            continue
        if v.returncode != 0:
            continue
        version, debug = v.stdout.split()
        if version.startswith("3.11.") and debug == "0":
            continue  # supported: tested everywhere else
        found.append(pytest.param(exe, version, debug == "1", id="%s%s" % (
            version, "-dbg" if debug == "1" else "")))
    return found


OTHERS = _other_pythons()


@pytest.mark.skipif(not OTHERS, reason="no other CPython version or debug build installed")
@pytest.mark.parametrize("exe,version,debug", OTHERS)
@pytest.mark.parametrize("dev", [False, True], ids=["plain", "xdev"])
def test_other_python_runs_on(tmp_path, exe, version, debug, dev):
    """LD_PRELOAD with GIL accounting asked for, in a Python whose layout is
    not ours (-X dev too: a debug allocator catches any block we touched)."""
    prog = write_prog(tmp_path, PROG % PLAIN)
    argv = [exe] + (["-X", "dev"] if dev else []) + [prog]
    ref = run(argv, env=clean_env(), cwd=tmp_path)
    assert ref.returncode == 5 and ref.stdout == b"out 9900\n", describe(ref)
    out = tmp_path / "p.cpyprof"
    p = run(argv, cwd=tmp_path,
            env=clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=out, CPYPROF_GIL="1"))
    assert (p.stdout, without_cpyprof_lines(p.stderr), p.returncode) == \
        (ref.stdout, ref.stderr, ref.returncode), describe(p) + describe(ref)
    why = ("a debug build (Py_DEBUG) lays out objects and frames differently" if debug
           else "this cpyprof supports CPython 3.11 only")
    assert cpyprof_lines(p.stderr) == [
        "cpyprof: unsupported Python %s: %s; profiling disabled\n" % (version, why)], describe(p)
    assert not out.exists()
