"""GIL accounting (gil=exact|sample): hold and wait shares per thread on
programs whose truth is known, in every activation mode and both Pythons,
and the GOT slots put back at stop."""
import json
import re
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import (CLI, describe, run, run_import, run_preload, run_record, write_prog)


def out_text(p):
    return p.stdout.decode("utf-8", "replace")


def err_text(p):
    return p.stderr.decode("utf-8", "replace")

SPIN = 1.5  # about the seconds of work per program (fixed iteration counts or run time)

# Four threads with the same fixed amount of work: each holds the GIL for a
# quarter of the busy time whatever the scheduler does (with a fixed run
# time instead, shares depend on how fairly the OS and the GIL hand out
# turns on a loaded two-core machine: 20-30% was seen).
FOUR = textwrap.dedent("""
    import json, threading, time
    cpu = {}
    def spin(n):
        x = 0
        for i in range(int(%(spin)s * 5_000_000)):
            x += i
        cpu[threading.current_thread().name] = time.thread_time_ns()
    def main():
        ts = [threading.Thread(target=spin, args=(i,), name="spin%%d" %% i) for i in range(4)]
        for t in ts: t.start()
        for t in ts: t.join()
    %(driver)s
    print(json.dumps(cpu))
    print("ok")
""")

DRIVER_PLAIN = "main()"
DRIVER_IMPORT = textwrap.dedent("""
    import sys, cpyprof
    cpyprof.start(sys.argv[1], gil=%s, quiet=True)
    main()
    cpyprof.stop()
""")


def gil_json(path):
    p = run([CLI, "gil", "--json", path])
    assert p.returncode == 0, describe(p)
    return json.loads(p.stdout)


def by_name(g):
    return {t["name"]: t for t in g["threads"]}


def share(t, g, key):
    return 100.0 * t[key] / g["duration_ns"]


def run_mode(py, tmp_path, activation, source_fmt, *, gil="exact", mode="trace", spin=SPIN,
             gil_rate=None):
    """Runs a program (source_fmt with %(driver)s) with GIL accounting in one
    activation mode; returns (process, gil json)."""
    out = tmp_path / ("%s.cpyprof" % activation)
    SPIN = spin  # noqa: N806 (the programs below are formatted with it)
    if activation == "import":
        driver = DRIVER_IMPORT % ("True" if gil == "exact" else repr(gil))
        if mode != "trace":
            driver = driver.replace("gil=", "mode=%r, gil=" % mode)
        if gil_rate is not None:
            driver = driver.replace("gil=", "gil_rate=%d, gil=" % gil_rate)
        prog = write_prog(tmp_path, source_fmt % {"spin": SPIN, "driver": driver})
        p, _ = run_import(py, [prog, out], out, tmp_path)
    elif activation == "record":
        prog = write_prog(tmp_path, source_fmt % {"spin": SPIN, "driver": DRIVER_PLAIN})
        opts = ("--gil" if gil == "exact" else "--gil=" + gil, "--mode", mode)
        if gil_rate is not None:
            opts += ("--gil-rate", str(gil_rate))
        p, _ = run_record(py, [prog], tmp_path, opts=opts, out=out)
    else:
        prog = write_prog(tmp_path, source_fmt % {"spin": SPIN, "driver": DRIVER_PLAIN})
        env = {"CPYPROF_GIL": "1" if gil == "exact" else gil, "CPYPROF_MODE": mode,
               "CPYPROF_QUIET": "1"}
        if gil_rate is not None:
            env["CPYPROF_GIL_RATE"] = str(gil_rate)
        p, _ = run_preload(py, [prog], tmp_path, out=out, env_extra=env)
    assert p.returncode == 0 and out_text(p).strip().endswith("ok"), describe(p)
    assert "GIL accounting disabled" not in err_text(p), describe(p)
    return p, gil_json(out)


def cpu_times(p):
    """The spinners' own CPU times (ns), printed by FOUR."""
    return json.loads(out_text(p).strip().splitlines()[-2])


def attempts(check, n=3):
    """Runs check() up to n times until it returns None (success), else fails
    with the last message. Shares of the GIL are what the scheduler makes
    them: on a loaded two-core machine a waiting thread may not get a CPU to
    ask for the GIL for hundreds of ms, and the holder then really keeps it.
    The invariants (a spinner computes only while it holds the GIL) are
    asserted on every attempt; the ideal shares on at least one."""
    msg = None
    for _ in range(n):
        msg = check()
        if msg is None:
            return
    pytest.fail(msg)


@pytest.mark.parametrize("activation", ["record", "preload", "import"])
def test_four_cpu_threads(py, tmp_path, activation):
    def check():
        p, g = run_mode(py, tmp_path, activation, FOUR)
        assert g["method"] == "exact"
        spins = [t for t in g["threads"] if "spin" in t["name"]]
        assert len(spins) == 4, g
        cpu = cpu_times(p)
        for t in spins:
            # A pure-Python spinner runs only while it holds the GIL.
            assert t["hold_ns"] >= 0.97 * cpu[t["name"]] - 5e6, (t, cpu)
            assert t["top_holder"] and t["top_holder"].startswith("spin"), t
            assert t["acquisitions"] >= 10, t
        holds = [share(t, g, "hold_ns") for t in spins]
        waits = [share(t, g, "wait_ns") for t in spins]
        if sum(share(t, g, "hold_ns") for t in g["threads"]) < 95:
            return "holds sum below 95%%: %s" % g
        if not all(21 <= h <= 29 for h in holds):
            return "hold shares not 25 +- 4: %s %s" % (holds, g)
        # 75 ideally; a spinner the loaded machine gives no CPU is neither
        # holding nor waiting (it has not asked), so the floor is wide:
        # 58-59 seen under a full suite in parallel. An uncontended thread
        # would wait ~0.
        if not all(50 <= w <= 90 for w in waits):
            return "wait shares not 50..90: %s %s" % (waits, g)
        if not any("fight over the GIL" in a for a in g["advice"]):
            return "no 'fight over the GIL' reading: %s" % g
        return None
    attempts(check)


@pytest.mark.parametrize("mode", ["sample"])
def test_four_cpu_threads_in_sample_mode(py, tmp_path, mode):
    """GIL accounting works the same when the profiler samples stacks."""
    def check():
        p, g = run_mode(py, tmp_path, "record", FOUR, mode=mode)
        spins = [t for t in g["threads"] if "spin" in t["name"]]
        assert len(spins) == 4, g
        cpu = cpu_times(p)
        for t in spins:
            assert t["hold_ns"] >= 0.97 * cpu[t["name"]] - 5e6, (t, cpu)
        holds = [share(t, g, "hold_ns") for t in spins]
        if not all(21 <= h <= 29 for h in holds):
            return "hold shares not 25 +- 4: %s %s" % (holds, g)
        return None
    attempts(check)


def test_gil_sample_method(py, tmp_path):
    """gil=sample: hold shares from ~100 reads a second (on the writer
    thread, at jittered 7.5-12.5 ms deadlines), no wait times."""
    def check():
        # 3x the usual work (~7 s): ~100 reads a second give ~700 samples,
        # so each share has a standard error of ~1.6 points.
        p, g = run_mode(py, tmp_path, "preload", FOUR, gil="sample", spin=3 * SPIN)
        assert g["method"] == "sample"
        # An overloaded machine delays the writer's wake-ups: the floor
        # below is a third of the ideal.
        assert g["samples"] > 200, g
        spins = [t for t in g["threads"] if "spin" in t["name"]]
        assert len(spins) == 4, g
        for t in spins:
            assert t["wait_ns"] == 0
        holds = [share(t, g, "hold_ns") for t in spins]
        if not all(18 <= h <= 32 for h in holds) or g["busy"] < 0.9:
            return "sampled hold shares not 25 +- 7: %s %s" % (holds, g)
        rate = g["samples"] / (g["duration_ns"] / 1e9)
        if not 70 <= rate <= 130:
            return "not ~100 reads a second: %.0f/s %s" % (rate, g)
        return None
    attempts(check)


@pytest.mark.parametrize("activation", ["record", "preload", "import"])
def test_gil_sample_rate(py, tmp_path, activation):
    """gil_rate=1000 (the rate the issue names): ten times the default's
    reads, the same shares. ~2.3 s of work at ~1000 reads a second is
    ~2300 reads: a share's standard error is ~0.9 points."""
    def check():
        p, g = run_mode(py, tmp_path, activation, FOUR, gil="sample", gil_rate=1000)
        assert g["method"] == "sample"
        spins = [t for t in g["threads"] if "spin" in t["name"]]
        assert len(spins) == 4, g
        # The writer can fall behind on a loaded machine (a read is never
        # made up twice): the floor is half the rate. Above 1300 would mean
        # reads off their deadlines (e.g. at the writer's other wake-ups).
        rate = g["samples"] / (g["duration_ns"] / 1e9)
        assert rate <= 1300, (rate, g)
        if rate < 500:
            return "not ~1000 reads a second: %.0f/s %s" % (rate, g)
        holds = [share(t, g, "hold_ns") for t in spins]
        if not all(19 <= h <= 31 for h in holds) or g["busy"] < 0.9:
            return "sampled hold shares not 25 +- 6: %s %s" % (holds, g)
        return None
    attempts(check)


def test_gil_rate_bad_value(py, tmp_path):
    """A bad rate is one line naming the setting and the range; the program
    still runs (the environment is read by the preloaded library)."""
    prog = write_prog(tmp_path, 'print("ok")')
    p, _ = run_preload(py, [prog], tmp_path, out=tmp_path / "x.cpyprof",
                       env_extra={"CPYPROF_GIL": "sample", "CPYPROF_GIL_RATE": "5000"},
                       expect_profile=False)
    assert p.returncode == 0 and out_text(p).strip() == "ok", describe(p)
    assert "CPYPROF_GIL_RATE: '5000' is out of range (expected 1..1000 reads per second)" \
        in err_text(p), describe(p)


MIXED = textwrap.dedent("""
    import threading, time, zlib, os
    stop = time.monotonic() + %(spin)s
    def spinner():
        x = 0
        while time.monotonic() < stop:
            x += 1
    def sleeper():
        # Long sleeps: each wake-up waits for the spinner to be made to drop
        # the GIL (up to the 5 ms switch interval). With 10 ms sleeps that
        # is a third of the sleeper's time, and accounting shows it.
        while time.monotonic() < stop:
            time.sleep(0.5)
    def main():
        ts = [threading.Thread(target=spinner, name="spinner"),
              threading.Thread(target=sleeper, name="sleeper")]
        for t in ts: t.start()
        for t in ts: t.join()
    %(driver)s
    print("ok")
""")


@pytest.mark.parametrize("activation", ["record", "import"])
def test_spinner_and_sleeper(py, tmp_path, activation):
    def check():
        p, g = run_mode(py, tmp_path, activation, MIXED)
        t = by_name(g)
        assert share(t["sleeper"], g, "hold_ns") < 2, g
        assert t["sleeper"]["acquisitions"] <= 6, g  # ~4 wake-ups
        # Each of its ~4 wake-ups waits for the spinner's switch interval
        # (5 ms), then for the spinner and itself to get a CPU: 8 ms each on a
        # loaded two-core machine, 20 ms when it is overloaded (the spinner
        # preempted while holding the GIL).
        if share(t["sleeper"], g, "wait_ns") >= 3:
            return "sleeper waits 3%% or more: %s" % g
        if share(t["spinner"], g, "hold_ns") <= 85:
            return "spinner holds 85%% or less: %s" % g
        # the spinner gives the GIL up at every sleeper wake-up, briefly
        if share(t["spinner"], g, "wait_ns") >= 10:
            return "spinner waits 10%% or more: %s" % g
        return None
    attempts(check)


ZLIB = textwrap.dedent("""
    import threading, time, zlib, os
    data = os.urandom(1 << 20) + bytes(1 << 22)
    def compress():
        end = time.monotonic() + %(spin)s
        n = 0
        while time.monotonic() < end:
            zlib.compress(data, 6)   # releases the GIL while it works
            n += 1
        assert n > 0
    def main():
        t = threading.Thread(target=compress, name="zlib")
        t.start(); t.join()
    %(driver)s
    print("ok")
""")


def test_zlib_releases_the_gil(py, tmp_path):
    p, g = run_mode(py, tmp_path, "record", ZLIB)
    t = by_name(g)["zlib"]
    assert share(t, g, "hold_ns") < 15, g
    assert any("mostly idle" in a for a in g["advice"]), g


GOT_PROG = textwrap.dedent("""
    import ctypes, os, re, subprocess, sys, threading, time
    import cpyprof

    # The object holding _PyRuntime (the executable or libpython), by dladdr.
    class DlInfo(ctypes.Structure):
        _fields_ = [("fname", ctypes.c_char_p), ("fbase", ctypes.c_void_p),
                    ("sname", ctypes.c_char_p), ("saddr", ctypes.c_void_p)]
    libc = ctypes.CDLL(None)
    info = DlInfo()
    rt = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
    assert libc.dladdr(ctypes.c_void_p(rt), ctypes.byref(info))
    obj = info.fname.decode()
    if not obj.startswith("/"):
        obj = os.path.realpath(sys.executable)
    rel = subprocess.run(["readelf", "-rW", obj], capture_output=True, text=True).stdout
    off = int(re.search(r"^([0-9a-f]+)\\s+\\S+\\s+R_X86_64_JUMP_SLOT\\s+\\S+\\s+"
                        r"pthread_mutex_lock@", rel, re.M).group(1), 16)
    hdr = subprocess.run(["readelf", "-hW", obj], capture_output=True, text=True).stdout
    base = info.fbase if "DYN" in hdr else 0   # a non-PIE executable: absolute
    slot = ctypes.c_void_p.from_address(base + off)

    def spin():
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            pass
    def work():
        ts = [threading.Thread(target=spin) for _ in range(3)]
        for t in ts: t.start()
        for t in ts: t.join()

    before = slot.value
    for run in range(2):
        out = sys.argv[1 + run]
        cpyprof.start(out, gil=True, quiet=True)
        during = slot.value
        work()
        cpyprof.stop()
        after = slot.value
        print("run", run, during != before, after == before)
        work()                       # threads after stop, originals back
    print("ok")
""")


def test_got_slot_restored_and_restart(py, tmp_path):
    """The GOT slot of pthread_mutex_lock in the object holding _PyRuntime is
    ours while accounting runs and the original after stop; a second
    start/stop works and the program runs threads on normally."""
    prog = write_prog(tmp_path, GOT_PROG)
    outs = [tmp_path / "a.cpyprof", tmp_path / "b.cpyprof"]
    p, _ = run_import(py, [prog, *outs], outs[1], tmp_path)
    assert p.returncode == 0, describe(p)
    assert out_text(p).split("\n")[:3] == ["run 0 True True", "run 1 True True", "ok"], describe(p)
    for out in outs:
        g = gil_json(out)
        assert len([t for t in g["threads"] if t["hold_ns"] > 0]) >= 3, g


def test_cli_table_and_flames(py, tmp_path):
    p, g = run_mode(py, tmp_path, "record", FOUR)
    out = tmp_path / "record.cpyprof"
    t = run([CLI, "gil", out])
    assert t.returncode == 0, describe(t)
    assert "hold%" in out_text(t) and "longest wait" in out_text(t)
    assert "Reading:" in out_text(t)  # which reading: test_four_cpu_threads
    for opt in ("--gil-wait", "--gil-hold"):
        svg = tmp_path / ("f%s.svg" % opt)
        f = run([CLI, "flame", opt, out, "-o", svg])
        assert f.returncode == 0, describe(f)
        text = svg.read_text()
        assert "spin" in text and "thread spin0" in text


def test_no_gil_data(py, tmp_path):
    prog = write_prog(tmp_path, "print('ok')\n")
    p, _ = run_record(py, [prog], tmp_path)
    out = tmp_path / "record.cpyprof"
    t = run([CLI, "gil", out])
    assert t.returncode == 1
    assert "has no GIL data" in err_text(t) and "--gil" in err_text(t)
    f = run([CLI, "flame", "--gil-wait", out, "-o", tmp_path / "x.svg"])
    assert f.returncode == 1 and "no GIL stacks" in err_text(f), describe(f)


def test_bad_gil_value(py, tmp_path):
    prog = write_prog(tmp_path, "print('ok')\n")
    p = run([CLI, "record", "--gil=always", "--", py.exe, prog])
    assert p.returncode == 2
    assert "--gil: 'always' is not valid" in err_text(p), describe(p)


FORK = textwrap.dedent("""
    import os, sys, threading, cpyprof
    def spin():
        x = 0
        for i in range(1_000_000):
            x += i
    def work(tag):
        ts = [threading.Thread(target=spin, name="%s%d" % (tag, i)) for i in range(2)]
        for t in ts: t.start()
        for t in ts: t.join()
    cpyprof.start(sys.argv[1], gil=True, quiet=True)
    work("before")
    pid = os.fork()
    if pid == 0:
        work("child")      # inherited redirections, accounting off: runs normally
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    work("after")
    cpyprof.stop()
    print("child", status)
    print("ok")
""")


def test_fork_child_runs_and_parent_keeps_accounting(py, tmp_path):
    prog = write_prog(tmp_path, FORK)
    out = tmp_path / "fork.cpyprof"
    p, _ = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0 and "child 0" in out_text(p), describe(p)
    names = {t["name"].split(" ")[0]: t for t in gil_json(out)["threads"]}
    for n in ("before0", "before1", "after0", "after1"):
        assert n in names and names[n]["hold_ns"] > 0, names
    assert not any(n.startswith("child") for n in names)


CHURN = textwrap.dedent("""
    import threading, time, zlib
    def short(i):
        x = 0
        for k in range(2000):
            x += k
        if i %% 3 == 0:
            time.sleep(0.001)
        if i %% 5 == 0:
            zlib.compress(bytes(100000))
    def main():
        for batch in range(30):
            ts = [threading.Thread(target=short, args=(i,), daemon=(i %% 2 == 0))
                  for i in range(10)]
            for t in ts: t.start()
            for t in ts: t.join()
    %(driver)s
    print("ok")
""")


@pytest.mark.parametrize("activation", ["record", "import"])
def test_thread_churn(py, tmp_path, activation):
    """300 short threads (starting, sleeping, compressing, exiting) under
    exact accounting: every thread accounted, the program unharmed."""
    p, g = run_mode(py, tmp_path, activation, CHURN)
    assert len(g["threads"]) >= 300, len(g["threads"])
    total = sum(t["hold_ns"] for t in g["threads"])
    assert total <= g["duration_ns"] * 1.01, g
    assert all(t["acquisitions"] >= 1 for t in g["threads"] if t["name"] != "MainThread")
