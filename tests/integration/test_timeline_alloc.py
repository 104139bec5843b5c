"""Allocation counter track in timeline mode (--mode timeline --alloc): the
writer thread records the bytes held by counted blocks about every 10 ms
(ALLOC chunk kind 3), and `cpyprof convert --to chrome` draws them as the
counter track "allocated memory". A program that holds a 64 MiB bytearray
for a while and then frees it shows the rise and the fall."""
import os
import signal
import textwrap

import pytest

from conftest import describe, preload_env, run, run_record, write_prog
from test_timeline import chrome

BIG = 64 << 20

HOLD = textwrap.dedent("""
    import time
    time.sleep(0.1)
    b = bytearray(%d)
    time.sleep(0.3)
    del b
    time.sleep(0.2)
    print("ok")
""" % BIG)

HOLD_THEN_TERM = textwrap.dedent("""
    import os, signal, time
    b = bytearray(%d)
    time.sleep(0.3)
    print("kill", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
""" % BIG)


def live_points(doc):
    """[(ts_us, live bytes)] of the "allocated memory" counter, file order."""
    out = []
    for e in doc["traceEvents"]:
        if e["ph"] == "C" and e["name"] == "allocated memory":
            assert e["cat"] == "alloc" and e["tid"] == 0, e
            out.append((e["ts"], e["args"]["live bytes"]))
    return out


@pytest.mark.parametrize("keep", ["all", "last"])
def test_live_bytes_counter_rises_and_falls(py, tmp_path, keep):
    prog = write_prog(tmp_path, HOLD)
    opts = ["--mode", "timeline", "--alloc", "--keep", keep, "--buffer", "4M"]
    p, prof = run_record(py, [prog], tmp_path, opts=opts)
    assert p.returncode == 0 and p.stdout == b"ok\n", describe(p)
    doc, _ = chrome(prof.path, tmp_path)
    pts = live_points(doc)
    # ~0.6 s at a point per 10 ms or so; a loaded machine wakes the writer
    # less often, hence the wide floor.
    assert len(pts) >= 10, pts
    times = [t for t, _ in pts]
    assert times == sorted(times), "points in time order"
    values = [v for _, v in pts]
    assert values[0] < BIG, "before the bytearray"
    assert max(values) >= BIG, "while it is held"
    assert values[-1] < BIG, "after it is freed"
    high = [i for i, v in enumerate(values) if v >= BIG]
    # One stretch while held: the bytearray lives ~0.3 s, so several points.
    assert high == list(range(high[0], high[-1] + 1)) and len(high) >= 3, values
    # The series spans the run, not only the flight recorder's window.
    assert times[-1] - times[0] >= 400000, (times[0], times[-1])


def test_no_counter_without_alloc(py, tmp_path):
    prog = write_prog(tmp_path, HOLD)
    p, prof = run_record(py, [prog], tmp_path, opts=["--mode", "timeline"])
    assert p.returncode == 0, describe(p)
    doc, _ = chrome(prof.path, tmp_path)
    assert live_points(doc) == []


def test_counter_in_sigterm_profile(py, tmp_path):
    """SIGTERM: the writer thread writes the dump, the series included, and
    the process still dies by SIGTERM."""
    prog = write_prog(tmp_path, HOLD_THEN_TERM)
    out = tmp_path / "term.cpyprof"
    env = preload_env(out, CPYPROF_MODE="timeline", CPYPROF_ALLOC="1", CPYPROF_QUIET="1")
    p = run([py.exe, prog], env=env, cwd=tmp_path)
    assert p.returncode == -signal.SIGTERM and p.stdout == b"kill\n", describe(p)
    assert os.path.getsize(out) > 0
    doc, _ = chrome(out, tmp_path)
    pts = live_points(doc)
    assert len(pts) >= 3, pts
    assert pts[-1][1] >= BIG, "the last point, taken by the dump, sees the live bytearray"
