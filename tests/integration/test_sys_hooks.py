"""The program's own profilers and sys functions that look at profiling see
what they see without cpyprof (found by CPython's test_profile,
test_cprofile and test_sys under the profiler; src/python/syswrap.c).

- A profile function the program installs with sys.setprofile (directly,
  through threading.setprofile in new threads, profile.py) gets exactly the
  events it gets without us: before, its first event was a stray "c_return"
  of sys.setprofile (CPython's C_TRACE sends a C call's return to whatever
  profile function is set after the call), and profile.py failed its "Bad
  return" assertion.
- sys.getprofile() is None while only our hook is set (it returned our
  per-thread object: `old = sys.getprofile(); ...; sys.setprofile(old)`
  then made every later event raise "object is not callable").
- sys._debugmallocstats() prints pymalloc's statistics under --alloc.
- An audit hook refusing sys.setprofile raises at the program's call.

Each program's output is compared with a run without the profiler, in every
mode that sets a profile hook, and in sample mode."""
import json
import re

import pytest

from conftest import CLI, LIB, Profile, clean_env, describe, modes_env, run, run_beside_plain, run_plain, write_prog

MODES = modes_env()

EVENTS_PROG = r"""
import sys, threading

def work(n):
    return len([i for i in range(n)])

def name(frame, event, arg):
    return getattr(arg, "__name__", "?") if event.startswith("c_") else frame.f_code.co_name

events = []
def prof(frame, event, arg):
    events.append((event, name(frame, event, arg)))

for _ in range(3):
    work(5)
print("before:", sys.getprofile())
old = sys.getprofile()
sys.setprofile(prof)
work(2)
sys.setprofile(old)
print("direct:", events)
print("after:", sys.getprofile())
work(4)

# the same through threading.setprofile (the thread's bootstrap calls
# sys.setprofile from Python)
tev = []
def tprof(frame, event, arg):
    if threading.current_thread() is not threading.main_thread():
        tev.append((event, name(frame, event, arg)))
threading.setprofile(tprof)
t = threading.Thread(target=work, args=(3,))
t.start(); t.join()
threading.setprofile(None)
print("thread first events:", tev[:6])

# a wrong call is refused as without us
try:
    sys.setprofile()
except TypeError as e:
    print("TypeError:", e)
print("identity:", sys.setprofile.__name__, sys.setprofile.__self__ is sys,
      sys.getprofile.__text_signature__, sys.setprofile.__doc__ == sys.setprofile.__doc__)
print("final:", sys.getprofile())
"""

PROFILE_PY_PROG = r"""
import io, profile, pstats, sys
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
p = profile.Profile()
p.runctx("fib(12); max([0])", globals(), {})
s = pstats.Stats(p, stream=io.StringIO())
calls = {k[2]: v[1] for k, v in s.stats.items()}
print("fib", calls["fib"], "max", calls.get("<built-in method builtins.max>"))
print("getprofile", sys.getprofile())
"""

AUDIT_PROG = r"""
import sys
def hook(event, args):
    if event == "sys.setprofile":
        raise RuntimeError("no profilers here")
sys.addaudithook(hook)
def prof(*a):
    print("never called")
try:
    sys.setprofile(prof)
except RuntimeError as e:
    print("refused:", e, sys.getprofile())
def f():
    return 1
f()
print("done")
"""


def compare(py, tmp_path, src, mode):
    prog, p, plain, prof = run_beside_plain(py, src, tmp_path, MODES[mode])
    assert p.stderr == plain.stderr, describe(p)
    return prog, prof


@pytest.mark.parametrize("mode", sorted(MODES))
def test_program_profilers_see_their_own_events(py, tmp_path, mode):
    prog, prof = compare(py, tmp_path, EVENTS_PROG, mode)
    if mode != "sample":
        # our profile still has what ran before the program took the thread
        assert prof.calls("work", prog) >= 3, prof.summary()


@pytest.mark.parametrize("mode", ["trace", "gil", "alloc", "timeline"])
def test_profile_py(py, tmp_path, mode):
    """profile.py (pure Python, checks every return against its stack)."""
    compare(py, tmp_path, PROFILE_PY_PROG, mode)


@pytest.mark.parametrize("mode", ["trace", "sample"])
def test_audit_hook_refusing_setprofile(py, tmp_path, mode):
    compare(py, tmp_path, AUDIT_PROG, mode)


def test_profile_module_as_main(py, tmp_path):
    """`python -m profile script` and `python -m cProfile script` under the
    preloaded profiler with --subprocesses (test_profile's
    test_run_profile_as_module: it failed with "Bad return")."""
    prog = write_prog(tmp_path, "def f():\n    return max([1, 2])\nf()\nprint('ok')\n",
                      name="demo.py")
    for mod in ("profile", "cProfile"):
        argv = ["-m", mod, "-o", tmp_path / ("%s.out" % mod), prog]
        plain = run_plain(py, argv, tmp_path)
        assert plain.returncode == 0 and plain.stdout == b"ok\n", describe(plain)
        env = clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=tmp_path / "d/",
                        CPYPROF_SUBPROCESSES="1")
        p = run([py.exe, *argv], env=env, cwd=tmp_path)
        assert (p.returncode, p.stdout, p.stderr) == (0, b"ok\n", b""), describe(p)


@pytest.mark.parametrize("mode", ["alloc", "trace"])
def test_debugmallocstats(py, tmp_path, mode):
    """test_sys.test_debugmallocstats: pymalloc's statistics are printed
    under --alloc, and our allocation counting goes on afterwards."""
    src = ("import sys\nsys._debugmallocstats()\n"
           "def build():\n    return [str(i) for i in range(1000)]\nbuild()\n")
    prog = write_prog(tmp_path, src)
    plain = run_plain(py, [prog], tmp_path)
    assert b"Small block threshold" in plain.stderr, describe(plain)
    out = tmp_path / "p.cpyprof"
    env = clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=out, **MODES[mode])
    p = run([py.exe, prog], env=env, cwd=tmp_path)
    assert p.returncode == 0, describe(p)
    assert b"Small block threshold" in p.stderr, describe(p)
    # the same report up to the numbers (the heap differs with us): the
    # same set of labels once the digits are taken out
    def labels(b):
        return {b" ".join(re.sub(rb"[0-9.,=:#]+", b" ", l).split()) for l in b.splitlines()} - {b""}
    assert labels(p.stderr) == labels(plain.stderr), describe(p)
    if mode == "alloc":
        # counting went on after the call: build()'s 1000 strings
        r = run([CLI, "report", out, "--json"])
        assert r.returncode == 0, describe(r)
        rows = {f["name"]: f for f in json.loads(r.stdout)["alloc"]["functions"]}
        # (in the list comprehension below it: its total, 1000 str objects
        # of at least 50 bytes)
        assert rows["build"]["alloc_bytes_total"] >= 50000, rows.get("build")
