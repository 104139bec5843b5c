"""Sampling mode (CPYPROF_MODE=sample): shares, clocks, transparency to the
program's own signals and blocking calls. Workloads use loop counts, not time,
so CPU shares are known."""
import textwrap

from conftest import parse_folded, run, run_preload, describe, CLI, write_prog


def folded(out):
    p = run([CLI, "convert", out, "--to", "folded", "-o", "-"])
    assert p.returncode == 0, describe(p)
    return parse_folded(p.stdout.decode())


def leaf_samples(stacks, name):
    return sum(v for frames, v in stacks if frames[-1].split(" (")[0] == name)


def sample_env(clock, rate=None, **extra):
    env = {"CPYPROF_MODE": "sample", "CPYPROF_CLOCK": clock}
    if rate:
        env["CPYPROF_RATE"] = str(rate)
    env.update(extra)
    return env


def record(py, tmp_path, source, clock, rate=None):
    prog = write_prog(tmp_path, textwrap.dedent(source))
    out = tmp_path / "s.cpyprof"
    p, _ = run_preload(py, [prog], tmp_path, out=out, env_extra=sample_env(clock, rate),
                       expect_profile=False)
    assert p.returncode == 0, describe(p)
    assert out.exists(), describe(p)
    return p, out


SPLIT = """
def heavy():
    s = 0
    for i in range(3 * N):
        s += i * i
    return s

def light():
    s = 0
    for i in range(N):
        s += i * i
    return s

N = 200_000
for _ in range(25):
    heavy()
    light()
"""


def test_cpu_shares_3_to_1(py, tmp_path):
    _, out = record(py, tmp_path, SPLIT, "cpu", rate=250)
    st = folded(out)
    h, l = leaf_samples(st, "heavy"), leaf_samples(st, "light")
    assert h + l >= 50, st
    share = 100.0 * h / (h + l)
    assert abs(share - 75.0) <= 5.0, (h, l, share)
    r = run([CLI, "report", out])
    assert r.returncode == 0 and b"self%" in r.stdout, describe(r)


SLEEPER = """
import threading, time
def sleeper():
    time.sleep(0.6)
def spin():
    s = 0
    for i in range(3_000_000):
        s += i
t = threading.Thread(target=sleeper, name="sleeper")
t.start()
spin()
t.join()
"""


def test_sleeper_in_wall_not_in_cpu(py, tmp_path):
    _, out = record(py, tmp_path, SLEEPER, "wall", rate=200)
    assert leaf_samples(folded(out), "sleeper") >= 30
    (tmp_path / "s.cpyprof").unlink()
    _, out = record(py, tmp_path, SLEEPER, "cpu", rate=200)
    assert leaf_samples(folded(out), "sleeper") <= 2


TRANSPARENT = """
import os, signal, time, threading
t0 = time.monotonic()
time.sleep(0.5)
slept = time.monotonic() - t0
assert slept >= 0.49, slept
# blocking reads on a pipe fed late by another thread: no EINTR escapes
r, w = os.pipe()
def feed():
    time.sleep(0.3)
    os.write(w, b"x" * 10)
threading.Thread(target=feed).start()
got = os.read(r, 10)
assert got == b"x" * 10, got
# the program's own SIGALRM / setitimer
hits = []
signal.signal(signal.SIGALRM, lambda s, f: hits.append(s))
signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
t0 = time.monotonic()
while len(hits) < 5 and time.monotonic() - t0 < 5:
    time.sleep(0.01)
signal.setitimer(signal.ITIMER_REAL, 0)
assert len(hits) >= 5, hits
print("ok", round(slept, 2))
"""


def test_program_signals_and_sleeps_untouched(py, tmp_path):
    for clock in ("wall", "cpu"):
        p, out = record(py, tmp_path, TRANSPARENT, clock, rate=1000)
        assert p.stdout.startswith(b"ok"), describe(p)
        out.unlink()


def test_dying_code_objects_named(py, tmp_path):
    src = """
    for k in range(30):
        ns = {}
        exec(compile("def f%d():\\n s=0\\n for i in range(100000): s+=i\\nf%d()" % (k, k),
                     "<gen%d>" % k, "exec"), ns)
    """
    _, out = record(py, tmp_path, src, "cpu", rate=1000)
    for frames, _ in folded(out):
        for fr in frames:
            name = fr.split(" (")[0]
            if name.startswith("f") and name[1:].isdigit():
                assert "<gen%s>" % name[1:] in fr, fr
