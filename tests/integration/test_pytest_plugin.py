"""cpyprof.pytest_plugin, tested with pytest's own pytester: budgets from the
marker, baselines saved and compared, failures naming the functions."""
import os
import re

import pytest

from conftest import PYPKG

pytest_plugins = ["pytester"]

MODULE = """
def helper():
    return 1

def work(n):
    return sum(helper() for _ in range(n))
"""


@pytest.fixture
def tester(pytester, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(PYPKG))
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    for k in list(os.environ):
        if k.startswith("CPYPROF_"):
            monkeypatch.delenv(k)
    pytester.makepyfile(mymod=MODULE)
    return pytester


def run(pytester, *args, env=None):
    """pytest in a subprocess with the plugin; `env`: variables set for it."""
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        return pytester.runpytest_subprocess("-p", "cpyprof.pytest_plugin", "-p",
                                             "no:cacheprovider", *args, timeout=120)
    finally:
        for k, v in saved.items():
            if v is None:
                del os.environ[k]
            else:
                os.environ[k] = v


def test_call_budget_violation_names_the_function(tester):
    tester.makepyfile(test_budget="""
        import pytest
        import mymod

        @pytest.mark.cpyprof(max_calls={"mymod.helper": 100})
        def test_within():
            assert mymod.work(100) == 100

        @pytest.mark.cpyprof(max_calls={"mymod.helper": 100, "work": 1})
        def test_over():
            assert mymod.work(101) == 101

        @pytest.mark.cpyprof(max_calls={"helper": 5})
        def test_fails_by_itself():
            mymod.work(50)
            assert False, "its own failure"

        def test_unmarked():
            mymod.work(1000)
    """)
    r = run(tester, "-v")
    r.assert_outcomes(passed=2, failed=2)
    out = r.stdout.str()
    assert "test_budget.py::test_within PASSED" in out
    assert "test_budget.py::test_unmarked PASSED" in out
    assert "cpyprof budget exceeded in test_over:" in out
    assert "max_calls mymod.helper: 101 calls > 100 (mymod.py:helper 101)" in out
    # work was called once: within its budget, not named
    assert "max_calls work" not in out
    # a test that fails by itself reports its own failure, not the budget
    assert "its own failure" in out
    assert "budget exceeded in test_fails_by_itself" not in out


def test_alloc_budget(tester):
    tester.makepyfile(test_alloc="""
        import pytest

        def make():
            return [bytearray(100000) for _ in range(20)]

        @pytest.mark.cpyprof(max_alloc_bytes=1000000)
        def test_too_much():
            assert len(make()) == 20

        @pytest.mark.cpyprof(max_alloc_bytes={"make": 10000000})
        def test_enough():
            assert len(make()) == 20
    """)
    r = run(tester, "-v")
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert "cpyprof budget exceeded in test_too_much:" in out
    assert "max_alloc_bytes: " in out and "test_alloc.py:make" in out, out


def test_save_then_compare(tester):
    tester.makepyfile(test_base="""
        import os
        import mymod

        def test_work():
            mymod.work(int(os.environ.get("N", "10")))
    """)
    r = run(tester, "--cpyprof-save=main")
    r.assert_outcomes(passed=1)
    saved = tester.path / ".cpyprof" / "main" / "test_base.py_test_work.cpyprof"
    assert saved.is_file(), sorted(p.name for p in (tester.path / ".cpyprof").rglob("*"))

    # same code: the exact counts match
    r = run(tester, "--cpyprof-compare=main")
    r.assert_outcomes(passed=1)

    # helper now called 10x more: fails naming helper with both numbers
    r = run(tester, "--cpyprof-compare=main", env={"N": "100"})
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    assert "cpyprof regression against baseline 'main'" in out, out
    assert "calls helper (mymod.py): 10 -> 100 breaks calls:+0" in out, out

    # a rule limited to another module does not see it
    r = run(tester, "--cpyprof-compare=main", "--cpyprof-fail-on", "calls:+0:other.py:*",
            env={"N": "100"})
    r.assert_outcomes(passed=1)

    # a test without baseline: a warning, not a failure
    tester.makepyfile(test_new="""
        def test_fresh():
            pass
    """)
    r = run(tester, "--cpyprof-compare=main", "test_new.py")
    r.assert_outcomes(passed=1, warnings=1)
    assert "no baseline" in r.stdout.str()


def test_bad_marker_argument(tester):
    tester.makepyfile(test_bad="""
        import pytest

        @pytest.mark.cpyprof(max_cals={"x": 1})
        def test_typo():
            pass
    """)
    r = run(tester)
    r.assert_outcomes(failed=1)
    assert "unknown argument(s) max_cals" in r.stdout.str()


SPIN = """
import threading
import pytest

def spin(n):
    t = 0
    for i in range(n):
        t += i
    return t

def two_threads():
    # two CPU-bound threads: each waits for the GIL while the other runs
    ts = [threading.Thread(target=spin, args=(3_000_000,)) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
"""


def test_gil_wait_budget(tester):
    """max_gil_wait: two CPU-bound threads wait for each other (switch
    interval 5 ms, hundreds of hand-overs: far above 10 ms); one thread
    alone never waits, so even a zero budget holds."""
    tester.makepyfile(test_gil=SPIN + """
@pytest.mark.cpyprof(max_gil_wait=0.0)
def test_one_thread():
    spin(3_000_000)

@pytest.mark.cpyprof(max_gil_wait=0.01)
def test_two_threads():
    two_threads()

@pytest.mark.cpyprof(max_gil_wait={"spin": 0.01})
def test_two_threads_per_function():
    two_threads()

@pytest.mark.cpyprof(max_gil_wait=1000.0)
def test_two_threads_generous():
    two_threads()
""")
    r = run(tester, "-v")
    r.assert_outcomes(passed=2, failed=2)
    out = r.stdout.str()
    assert "test_gil.py::test_one_thread PASSED" in out, out
    assert "test_gil.py::test_two_threads_generous PASSED" in out, out
    # the numbers: total seconds waited, the budget, where
    m = re.search(r"cpyprof budget exceeded in test_two_threads:\n\s+max_gil_wait: "
                  r"([0-9.e+-]+) s > 0.01; most in test_gil.py:spin ([0-9.e+-]+)", out)
    assert m, out
    assert float(m.group(1)) > 0.01 and float(m.group(2)) > 0.01, m.groups()
    m = re.search(r"budget exceeded in test_two_threads_per_function:\n\s+max_gil_wait spin: "
                  r"([0-9.e+-]+) s > 0.01 \(test_gil.py:spin ([0-9.e+-]+)\)", out)
    assert m, out
    assert float(m.group(1)) > 0.01, m.groups()


def test_instructions_budget_unavailable_here(tester):
    """These VMs have no hardware counters: the budget is not checked, the
    test passes (its other budgets still apply) with a warning saying why."""
    tester.makepyfile(test_instr="""
        import pytest
        import mymod

        @pytest.mark.cpyprof(max_instructions=1)
        def test_counted():
            mymod.work(10)

        @pytest.mark.cpyprof(max_instructions=1, max_calls={"helper": 5})
        def test_other_budget_still_applies():
            mymod.work(10)
    """)
    probe = tester.runpython_c(
        "import cpyprof; cpyprof.start('probe.cpyprof', quiet=True); cpyprof.stop()")
    assert probe.ret == 0
    meta = _meta(tester.path / "probe.cpyprof")
    if "instructions" in meta:
        pytest.skip("this machine has hardware counters")
    why = meta["instructions_unavailable"]
    r = run(tester, "-v")
    r.assert_outcomes(passed=1, failed=1, warnings=2)
    out = r.stdout.str()
    assert "test_instr.py::test_counted PASSED" in out, out
    assert "cpyprof: max_instructions not checked in test_counted: %s" % why in out, out
    assert "max_calls helper: 10 calls > 5" in out, out


def test_instructions_budget_with_counts(tester):
    """Where the machine counts: the test's count against the budget. The
    count is written into each test's profile by the inner conftest (this
    machine has no counter), the rest of the path is the real one."""
    import inspect
    import profile_meta
    tester.makepyfile(profile_meta=inspect.getsource(profile_meta))
    tester.makeconftest("""
        import os
        import cpyprof
        import profile_meta

        _start, _stop, _path = cpyprof.start, cpyprof.stop, []

        def start(path, **kw):
            _path[:] = [path]
            return _start(path, **kw)

        def stop():
            _stop()
            n = os.environ["FAKE_INSTRUCTIONS"]
            profile_meta.with_meta(_path[0], _path[0], drop=("instructions_unavailable",),
                                   instructions=n)

        cpyprof.start, cpyprof.stop = start, stop
    """)
    tester.makepyfile(test_instr="""
        import pytest

        @pytest.mark.cpyprof(max_instructions=2_000_000)
        def test_budget():
            pass

        @pytest.mark.cpyprof(max_instructions={"f": 1})
        def test_per_function_refused():
            pass
    """)
    r = run(tester, "-v", env={"FAKE_INSTRUCTIONS": "1500000"})
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert "test_instr.py::test_budget PASSED" in out, out
    assert "max_instructions is a number (the whole test: there are no per-function " \
           "instruction counts)" in out, out

    r = run(tester, "-v", "-k", "test_budget", env={"FAKE_INSTRUCTIONS": "2000001"})
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    assert "cpyprof budget exceeded in test_budget:" in out, out
    assert "max_instructions: 2000001 instructions > 2000000 (user space, the test's " \
           "thread)" in out, out


def _meta(path):
    from profile_file import ProfileFile
    return ProfileFile(path).meta
