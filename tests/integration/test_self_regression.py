"""cpyprof on itself in CI: the exact call counts of a fixed workload
(tests/perf/workload.py) against the committed baseline profile
(tests/perf/baseline.cpyprof), compared with `cpyprof diff --fail-on
calls:+0`. Call counts do not depend on timing, load or the Python build,
so this cannot flake; it fails when the profiler starts miscounting calls
(or the workload changes: then regenerate the baseline, see workload.py)."""
import shutil

from conftest import CLI, PYPKG, REPO, clean_env, describe, run

WORKLOAD = REPO / "tests" / "perf" / "workload.py"
BASELINE = REPO / "tests" / "perf" / "baseline.cpyprof"
RULE = "calls:+0:tests/perf/workload.py:*"  # our functions, wherever the package lives


def profile(py, cwd, out):
    p = run([py.exe, "tests/perf/workload.py", out], cwd=cwd,
            env=clean_env(PYTHONPATH=PYPKG))
    assert p.returncode == 0 and p.stdout == b"139845\n", describe(p)


def test_call_counts_match_the_baseline(py, tmp_path):
    out = tmp_path / "new.cpyprof"
    profile(py, REPO, out)
    p = run([CLI, "diff", BASELINE, out, "--fail-on", RULE])
    assert p.returncode == 0, describe(p)
    assert b"result: OK (every rule holds)" in p.stdout, describe(p)


def test_a_changed_count_is_caught(py, tmp_path):
    # the same workload in another checkout, with one more level of fib
    (tmp_path / "tests" / "perf").mkdir(parents=True)
    changed = tmp_path / "tests" / "perf" / "workload.py"
    shutil.copy(WORKLOAD, changed)
    text = changed.read_text().replace("total += fib(15)", "total += fib(16) - 377")
    assert "fib(16)" in text
    changed.write_text(text)
    out = tmp_path / "new.cpyprof"
    profile(py, tmp_path, out)
    p = run([CLI, "diff", BASELINE, out, "--fail-on", RULE])
    assert p.returncode == 1, describe(p)
    # fib(15) makes 1973 calls, fib(16) 3193; nothing else changed
    assert (b"FAIL calls       fib (tests/perf/workload.py): 1973 -> 3193 (+61.8%) breaks "
            + RULE.encode()) in p.stdout, describe(p)
    assert p.stdout.count(b"  FAIL ") == 1, describe(p)
