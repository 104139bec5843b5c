"""Wall-clock sampling (src/python/sample_wall.c): threads that have not run
since their last sample are parked (counted as repeats without being
interrupted), and the repeats land on the right stack."""
import json
import textwrap

from conftest import run, run_preload, describe, CLI, write_prog
from test_sampling import folded, leaf_samples, sample_env


def record(py, tmp_path, source, **env):
    prog = write_prog(tmp_path, textwrap.dedent(source))
    out = tmp_path / "w.cpyprof"
    p, _ = run_preload(py, [prog], tmp_path, out=out, env_extra=sample_env("wall", **env),
                       expect_profile=False)
    assert p.returncode == 0, describe(p)
    assert out.exists(), describe(p)
    return p, out


def meta(out):
    r = run([CLI, "report", out, "--json"])
    assert r.returncode == 0, describe(r)
    return json.loads(r.stdout)["meta"]


# A thread that naps, works, then naps again in another function: the second
# nap must get its own samples (the repeats follow the stack the thread left
# after running), and the first nap must not swallow the work.
# The thread's three phases, with the work's CPU seconds as %(work)s.
PHASE_FUNCS = """
import threading, time
def nap_one():
    time.sleep(0.5)
def work():
    s = 0
    t0 = time.process_time()
    while time.process_time() - t0 < %(work)s:
        for i in range(10000):
            s += i
def nap_two():
    time.sleep(0.5)
def phases():
    nap_one()
    work()
    nap_two()
"""

PHASES = PHASE_FUNCS % {"work": 0.25} + """
t = threading.Thread(target=phases, name="phases")
t.start()
t.join()
print("done")
"""


def test_repeats_follow_the_stack(py, tmp_path):
    # The main thread waits in join(), so the pending call that registers
    # code objects never runs and every sample copies the names: the case
    # where the sleeper used to miss parking in about half the runs (the
    # cost of interrupting a sleep, 10-99 us per period on the development
    # VM, against a 20 us threshold; sample_wall.c, park_ns).
    p, out = record(py, tmp_path, PHASES, rate=200)
    assert p.stdout == b"done\n", describe(p)
    st = folded(out)
    one, two, work = (leaf_samples(st, n) for n in ("nap_one", "nap_two", "work"))
    # 0.5 s at 200 Hz = 100 periods each nap; the sampler skips periods
    # when the machine is overloaded, so only a wide lower bound.
    assert one >= 40 and two >= 40, (one, two, work, st)
    assert work >= 10, (one, two, work, st)
    # The first nap cannot have more periods than its wall time allows
    # (+25% for the jittered periods): the work was not counted as it.
    assert one <= 0.5 * 200 * 1.25, (one, two, work)
    m = meta(out)
    assert int(m["sample_wall_signals"]) >= 10, m
    # Both naps parked (counted as repeats, not one signal per period): a
    # sleeper parks at its second sample after the sleep began, so each nap
    # of ~100 periods leaves at least 40 repeats even on a loaded machine.
    # The counter is the process's: the main thread's repeats are at most
    # its samples (its stacks begin at <module>), the rest are the naps'.
    main = sum(v for frames, v in st if frames[0].split(" (")[0] == "<module>")
    assert int(m["sample_wall_repeats"]) - main >= 80, (main, m)


NOIDLE = """
import threading, time
def sleeper():
    time.sleep(0.5)
def spin():
    s = 0
    for i in range(2_000_000):
        s += i
t = threading.Thread(target=sleeper, name="sleeper")
t.start()
spin()
t.join()
"""


def test_no_idle_drops_repeats_too(py, tmp_path):
    _, out = record(py, tmp_path, NOIDLE, rate=500, CPYPROF_IDLE="0")
    st = folded(out)
    # a sample may catch the sleeper while it holds the GIL on its way into
    # sleep(): a few, never its 250 sleeping periods
    assert leaf_samples(st, "sleeper") <= 3, st
    assert leaf_samples(st, "spin") >= 5, st
    assert int(meta(out)["sample_wall_repeats"]) >= 20  # counted, then dropped


def test_idle_keeps_repeats(py, tmp_path):
    _, out = record(py, tmp_path, NOIDLE, rate=500)
    st = folded(out)
    assert leaf_samples(st, "sleeper") >= 50, st  # 0.5 s at 500 Hz: 250 periods
