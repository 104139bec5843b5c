"""The allocation benchmarks' C helpers and scripts still build and run.

bench/ is not part of the product and its figures are never asserted (tests
do not time things), but its lower bound (leastcount.c) and floor
(passalloc.c) are only worth something while they count what they claim:
these tests build them for each Python, check leastcount's size record
exactly (every block counted while it is installed is freed again: the live
total returns to where it was) and that both give the allocators back, and
run the two A/B scripts with tiny sizes to see that every row comes out.
"""
import re
import subprocess
import sys

import pytest

from conftest import BUILD, REPO, TIMEOUT, clean_env

BENCH = REPO / "bench"


def _build(py, tmp_path, which):
    """Builds _alloc_helpers.HELPERS[which] for py into tmp_path."""
    sys.path.insert(0, str(BENCH))
    try:
        import bench_alloc_ab
    finally:
        sys.path.remove(str(BENCH))
    try:
        bench_alloc_ab.build_helper(py.exe, str(tmp_path), which)
    except SystemExit as e:  # no compiler or no Python.h: the benchmark cannot run either
        pytest.skip("bench helper not built: %s" % e)


CHECK = r"""
import sys, tracemalloc
import _cpyprof_bench_leastcount as least, _cpyprof_bench_passalloc as passalloc

def make(n):
    keep = [bytearray(100) for _ in range(n)]
    del keep

make(10)  # warm-up: the list's and the comprehension's first allocations
least.install(True)
a0, f0, live0, _, slotless0 = least.totals()
make(1000)
a1, f1, live1, peak, slotless1 = least.totals()
# 1000 bytearray objects and their 1000 buffers at least, all freed again
assert a1 - a0 >= 2000 and f1 - f0 >= 2000, (a1 - a0, f1 - f0)
assert live1 == live0, (live0, live1)
assert peak >= live0 + 1000 * 101, (peak, live0)
assert slotless1 == slotless0 == 0
least.uninstall()
least.install(False)  # counts only
make(1000)
a, f, live, peak, _ = least.totals()
assert a >= 2000 and f >= 2000 and live == 0 and peak == 0, (a, f, live, peak)
least.uninstall()
passalloc.install()
make(100)
passalloc.uninstall()
tracemalloc.start()  # the allocators are Python's own again
x = [bytearray(1000) for _ in range(10)]
assert tracemalloc.get_traced_memory()[0] >= 10000
tracemalloc.stop()
print("ok")
"""


def test_leastcount_counts_exactly_and_gives_back(py, tmp_path):
    _build(py, tmp_path, "least")
    _build(py, tmp_path, "floor")
    p = subprocess.run([py.exe, "-c", CHECK], capture_output=True, text=True, timeout=TIMEOUT,
                       env=clean_env(PYTHONPATH=str(tmp_path)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ok"


def _rows(out):
    return re.findall(r"^\| (\S+) \|", out, re.M)


@pytest.mark.parametrize("script, args, rows", [
    ("bench_alloc_blocks.py", ["--build", str(BUILD), "--rounds", "2", "--iterations", "20"],
     ["baseline", "cpyprof", "floor", "least", "least-counts"]),
    ("bench_alloc_ab.py", ["--build", "main=%s" % BUILD, "--rounds", "1", "--iterations", "20",
                           "--out", "OUT"],
     ["baseline", "main", "floor", "least", "least-counts"]),
])
def test_alloc_ab_scripts_print_every_row(py, tmp_path, script, args, rows):
    args = [str(tmp_path / "run.cpyprof") if a == "OUT" else a for a in args]
    p = subprocess.run([sys.executable, str(BENCH / script), "--python", py.exe, "--floor",
                        "--least"] + args, capture_output=True, text=True, timeout=TIMEOUT,
                       env=clean_env(), cwd=str(tmp_path))
    if p.returncode != 0 and ("no C compiler" in p.stderr or "no Python.h" in p.stderr):
        pytest.skip(p.stderr.strip().splitlines()[-1])
    assert p.returncode == 0, p.stderr
    assert [r for r in _rows(p.stdout) if r not in ("config", "---")] == rows, p.stdout
