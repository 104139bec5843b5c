"""cpyprof.pytest_plugin, tested with pytest's own pytester: budgets from the
marker, baselines saved and compared, failures naming the functions."""
import os

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


def run(pytester, *args):
    return pytester.runpytest_subprocess("-p", "cpyprof.pytest_plugin", "-p", "no:cacheprovider",
                                         *args, timeout=120)


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
    os.environ["N"] = "100"
    try:
        r = run(tester, "--cpyprof-compare=main")
    finally:
        del os.environ["N"]
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    assert "cpyprof regression against baseline 'main'" in out, out
    assert "calls helper (mymod.py): 10 -> 100 breaks calls:+0" in out, out

    # a rule limited to another module does not see it
    os.environ["N"] = "100"
    try:
        r = run(tester, "--cpyprof-compare=main", "--cpyprof-fail-on", "calls:+0:other.py:*")
    finally:
        del os.environ["N"]
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
