"""GIL tracks in timeline mode (--mode timeline --gil): the GIL transitions
each thread makes go into its timeline, and `cpyprof convert --to chrome`
shows every thread's GIL holds on a track of its own. Two CPU-bound threads
take turns: their holds never overlap (one holder at a time), and each
thread's total matches what `cpyprof gil` says it held."""
import collections
import json
import signal
import textwrap

import pytest

from conftest import CLI, describe, preload_env, run, run_record, write_prog
from profile_file import ProfileFile
from test_timeline import chrome, check_chrome_nesting, metadata, slices

# Fixed work per thread (not a fixed run time): each spinner calls step()
# often enough to leave call events between GIL switches.
TWO = textwrap.dedent("""
    import threading
    def step(i):
        x = 0
        for k in range(200):
            x += k
        return x
    def spin():
        for i in range(15000):
            step(i)
    ts = [threading.Thread(target=spin, name="spin%d" % i) for i in range(2)]
    for t in ts: t.start()
    for t in ts: t.join()
    print("ok")
""")

GIL_TID_BASE = 2000000000
TOLERANCE_NS = 1000  # clock granularity and rounding to ns between cores


def gil_tracks(doc):
    """{track name: [(begin_ns, end_ns, synthesized)]} of the GIL tracks."""
    names = {tid: a["name"] for tid, a in metadata(doc, "thread_name").items()}
    out = collections.defaultdict(list)
    for tid, name, b, e, args in slices(doc):
        if tid >= GIL_TID_BASE:
            assert name == "GIL held", name
            out[names[tid]].append((b, e, bool(args.get("synthesized"))))
    return out


def assert_one_holder(tracks):
    """Across threads, holds do not overlap."""
    allh = sorted((b, e, name) for name, hs in tracks.items() for b, e, _ in hs)
    for (b0, e0, n0), (b1, e1, n1) in zip(allh, allh[1:]):
        assert b1 >= e0 - TOLERANCE_NS, ("two holders", (n0, b0, e0), (n1, b1, e1))


def record(py, tmp_path, keep):
    prog = write_prog(tmp_path, TWO)
    out = tmp_path / ("gil-%s.cpyprof" % keep)
    opts = ["--mode", "timeline", "--gil", "--buffer", "16M", "--keep", keep]
    p, prof = run_record(py, [prog], tmp_path, opts=opts, out=out)
    assert p.returncode == 0 and p.stdout == b"ok\n", describe(p)
    assert b"GIL accounting disabled" not in p.stderr, describe(p)
    return out, prof


@pytest.mark.parametrize("keep", ["all", "last"])
def test_gil_tracks_one_holder_at_a_time(py, tmp_path, keep):
    out, prof = record(py, tmp_path, keep)
    assert prof.dropped == 0
    f = ProfileFile(out)
    f.check_nesting()  # GIL events do not disturb the call nesting
    holds = f.gil_holds()  # and alternate ACQUIRED/RELEASED per thread
    assert len(holds) >= 3, holds.keys()  # main and both spinners
    doc, _ = chrome(out, tmp_path)
    check_chrome_nesting(doc)
    tracks = gil_tracks(doc)
    spins = {n: h for n, h in tracks.items() if n.startswith("GIL held \u2014 spin")}
    assert sorted(n.split()[3] for n in spins) == ["spin0", "spin1"], tracks.keys()
    assert any(n.startswith("GIL held \u2014 MainThread") for n in tracks), tracks.keys()
    for name, hs in spins.items():
        # Two CPU-bound threads take turns at every switch interval (5 ms):
        # many holds each, all of them real but perhaps the first one.
        assert len(hs) >= 5, (name, len(hs))
        assert sum(1 for _, _, s in hs if s) <= 2, (name, hs[:3])
    assert_one_holder(tracks)
    # The file's holds and the JSON's are the same.
    assert sum(len(v) for v in holds.values()) == sum(len(v) for v in tracks.values())


def test_gil_track_totals_match_gil_report(py, tmp_path):
    out, _ = record(py, tmp_path, "all")
    p = run([CLI, "gil", "--json", out])
    assert p.returncode == 0, describe(p)
    g = json.loads(p.stdout)
    held = {t["name"]: t["hold_ns"] for t in g["threads"]}
    doc, _ = chrome(out, tmp_path)
    tracks = gil_tracks(doc)
    for name in ("spin0", "spin1"):
        (track,) = [hs for n, hs in tracks.items() if n.split()[3] == name]
        total = sum(e - b for b, e, _ in track)
        # The report also counts the moments before the thread's profile
        # hook was set (its first hold begins at its first event here).
        assert abs(total - held[name]) <= 0.1 * held[name] + 20e6, (name, total, held[name])


def test_no_gil_track_without_gil_option(py, tmp_path):
    prog = write_prog(tmp_path, TWO)
    p, prof = run_record(py, [prog], tmp_path, opts=["--mode", "timeline", "--buffer", "16M"])
    assert p.returncode == 0, describe(p)
    f = ProfileFile(prof.path)
    assert f.gil_holds() == {}
    doc, _ = chrome(prof.path, tmp_path)
    assert not gil_tracks(doc)


def test_gil_tracks_survive_drops(py, tmp_path):
    """A buffer far too small for two busy threads: events (GIL ones too)
    are dropped and counted, and what is kept still alternates
    ACQUIRED/RELEASED per thread without two holders at once (a hold the
    writer had to guess at is inside the real one)."""
    prog = write_prog(tmp_path, TWO)
    out = tmp_path / "drops.cpyprof"
    p, prof = run_record(py, [prog], tmp_path, out=out,
                         opts=["--mode", "timeline", "--gil", "--buffer", "64K"])
    assert p.returncode == 0 and p.stdout == b"ok\n", describe(p)
    f = ProfileFile(out)
    f.check_nesting()
    holds = f.gil_holds()
    assert sum(i["dropped"] for i in f.info.values()) == prof.dropped
    allh = sorted((b, e, t) for t, hs in holds.items() for b, e, _ in hs)
    for (b0, e0, t0), (b1, e1, t1) in zip(allh, allh[1:]):
        assert b1 >= e0 - TOLERANCE_NS, ("two holders", (t0, b0, e0), (t1, b1, e1))
    doc, _ = chrome(out, tmp_path)
    check_chrome_nesting(doc)
    assert_one_holder(gil_tracks(doc))


SIGTERM_PROG = textwrap.dedent("""
    import os, signal, threading
    def f(n):
        return n if n < 2 else f(n - 1) + f(n - 2)
    def spin():
        while True:
            f(12)
    threading.Thread(target=spin, daemon=True).start()
    for i in range(40):
        f(16)
    print("kill", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    while True:
        f(12)
""")


@pytest.mark.parametrize("keep", ["all", "last"])
def test_sigterm_while_both_threads_record(py, tmp_path, keep):
    """SIGTERM: the writer thread writes the profile without the GIL while
    both threads keep pushing events (streaming: it reads the ring in place
    as the hook fills it; flight recorder: it skips the slots the hook may
    be overwriting). The file still nests, the GIL holds still alternate,
    and the process dies by SIGTERM as it would without us."""
    prog = write_prog(tmp_path, SIGTERM_PROG)
    out = tmp_path / ("term-%s.cpyprof" % keep)
    env = preload_env(out, CPYPROF_MODE="timeline", CPYPROF_GIL="1", CPYPROF_KEEP=keep,
                      CPYPROF_BUFFER="4M", CPYPROF_QUIET="1")
    p = run([py.exe, prog], env=env, cwd=tmp_path)
    assert p.returncode == -signal.SIGTERM and p.stdout == b"kill\n", describe(p)
    f = ProfileFile(out)
    assert f.trailer is not None, "the profile was completed"
    calls = f.check_nesting()
    assert sum(1 for c in calls.values() for name, *_ in c if name == "f") > 1000
    holds = f.gil_holds()
    assert len(holds) == 2, holds.keys()
    doc, _ = chrome(out, tmp_path)
    check_chrome_nesting(doc)
    assert_one_holder(gil_tracks(doc))
