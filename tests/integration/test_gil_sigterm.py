"""GIL accounting in the profile written on SIGTERM: the writer thread dumps
without the GIL while the program's threads still run (dump.c, gil.c), and
the GIL chunks are there with plausible per-thread numbers."""
import signal

import pytest

from conftest import CLI, describe, load_profile, preload_env, run, write_prog
from test_exits import SIGNAL_EXIT_LIMIT, run_until_ready_then
from test_gil import gil_json

# Three spinners that never end; "ready" once each has computed a while, then
# the main thread sleeps (GIL released) until SIGTERM kills the process.
SPINNERS = """
import threading, time
ready = [threading.Event() for _ in range(3)]
def spin(i):
    x = 0
    while True:
        x += 1
        if x == 300_000:
            ready[i].set()
def main():
    ts = [threading.Thread(target=spin, args=(i,), name="spin%d" % i, daemon=True)
          for i in range(3)]
    for t in ts: t.start()
    for e in ready: e.wait()
    time.sleep(1.0)
    print("ready", flush=True)
    time.sleep(60)
main()
"""


@pytest.mark.parametrize("method", ["exact", "sample"])
def test_sigterm_profile_has_gil_data(py, tmp_path, method):
    prog = write_prog(tmp_path, SPINNERS)
    out = tmp_path / "term.cpyprof"
    env = preload_env(out, CPYPROF_GIL="1" if method == "exact" else method)
    p = run_until_ready_then(py, [py.exe, prog], env, tmp_path, signal.SIGTERM)
    assert p.returncode == -signal.SIGTERM, describe(p)
    assert (p.stdout, p.stderr) == (b"ready\n", b""), describe(p)
    assert p.elapsed < SIGNAL_EXIT_LIMIT, "took %.2f s to die" % p.elapsed
    prof = load_profile(p, out)
    assert not prof.truncated, prof.summary()
    assert prof.func("spin", prog)["calls"] == 3, prof.summary()

    g = gil_json(out)
    assert g["method"] == method, g
    dur = g["duration_ns"]
    assert dur >= 1.0e9, g  # at least the sleep before "ready"
    spins = [t for t in g["threads"] if t["name"].startswith("spin")]
    assert sorted(t["name"] for t in spins) == ["spin0", "spin1", "spin2"], g
    total_hold = sum(t["hold_ns"] for t in g["threads"])
    # The spinners keep the GIL busy from their start to the end (the
    # sampled shares are estimates: 1 ms samples over >= 1 s).
    assert 0.6 * dur <= total_hold <= (1.01 if method == "exact" else 1.05) * dur, g
    for t in spins:
        # Three threads sharing the GIL: a third each, give or take what a
        # loaded two-core machine does to the shares.
        assert 0.1 * dur <= t["hold_ns"] <= 0.6 * dur, t
        if method == "exact":
            assert t["acquisitions"] >= 5 and t["wait_ns"] >= 0.25 * dur, t
            assert t["hold_ns"] + t["wait_ns"] <= 1.01 * dur, t
            assert t["max_hold_ns"] <= t["hold_ns"] and t["max_wait_ns"] <= t["wait_ns"], t
            assert t["top_holder"] and t["top_holder"].startswith("spin"), t
    rep = run([CLI, "gil", out])
    assert rep.returncode == 0 and b"spin0" in rep.stdout, describe(rep)
