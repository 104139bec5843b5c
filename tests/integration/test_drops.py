"""A ring too small for the call rate drops records, counts them, and the
program does not wait or fail."""
import json
import re

from conftest import CLI, describe, run, run_preload, write_prog

HEAVY = """
def leaf(i):
    return i

def main():
    s = 0
    for i in range(300000):
        s += leaf(i)
    print(s)

main()
"""


def test_ring_drops_are_counted(py, tmp_path):
    prog = write_prog(tmp_path, HEAVY)
    p, prof = run_preload(py, [prog], tmp_path,
                          env_extra={"CPYPROF_TRANSPORT": "ring", "CPYPROF_RING_SIZE": "4K"})
    assert p.returncode == 0, describe(p)
    assert p.stdout == b"%d\n" % sum(range(300000)), describe(p)
    # the program itself writes nothing on stderr; the profiler may warn about
    # the drops in one line of its own
    lines = p.stderr.decode().splitlines()
    assert len(lines) <= 1 and all(l.startswith("cpyprof: ") for l in lines), describe(p)
    assert not prof.truncated, prof.summary()
    assert isinstance(prof.dropped, int) and prof.dropped > 0, prof.json.get("dropped")
    rep = run([CLI, "report", prof.path])
    assert rep.returncode == 0, describe(rep)
    lines = [l for l in rep.stdout.decode().splitlines() + rep.stderr.decode().splitlines()
             if "dropped" in l.lower()]
    assert lines, "no line mentions dropped records" + describe(rep)
    # the number in the text is the number in the JSON
    nums = {int(n.replace(",", "")) for l in lines for n in re.findall(r"\d[\d,]*", l)}
    assert prof.dropped in nums, (lines, prof.dropped)


def test_no_drops_with_default_transport(py, tmp_path):
    prog = write_prog(tmp_path, HEAVY)
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 0, describe(p)
    assert prof.dropped == 0, prof.summary()
    assert prof.func("leaf", prog)["calls"] == 300000, prof.summary()


def test_ring_transport_big_ring_exact(py, tmp_path):
    """The ring transport with a ring large enough for every record (40,000
    records of 32 bytes in 16 MiB) drops nothing and gives exact counts."""
    prog = write_prog(tmp_path, HEAVY.replace("300000", "20000"))
    p, prof = run_preload(py, [prog], tmp_path,
                          env_extra={"CPYPROF_TRANSPORT": "ring", "CPYPROF_RING_SIZE": "16M"})
    assert p.returncode == 0, describe(p)
    assert prof.dropped == 0, prof.summary()
    assert prof.func("leaf", prog)["calls"] == 20000, prof.summary()
    assert prof.func("main", prog)["calls"] == 1, prof.summary()


def test_drops_with_threads(py, tmp_path):
    prog = write_prog(tmp_path, """
        import threading
        def leaf(i):
            return i
        def work():
            for i in range(100000):
                leaf(i)
        ts = [threading.Thread(target=work, name="t%d" % i) for i in range(4)]
        for t in ts:
            t.start()
        work()
        for t in ts:
            t.join()
        print("ok")
    """)
    p, prof = run_preload(py, [prog], tmp_path,
                          env_extra={"CPYPROF_TRANSPORT": "ring", "CPYPROF_RING_SIZE": "4K",
                                     "CPYPROF_QUIET": "1"})
    assert (p.returncode, p.stdout, p.stderr) == (0, b"ok\n", b""), describe(p)
    assert not prof.truncated
    assert prof.dropped > 0
    assert sorted(t["name"] for t in prof.threads) == ["MainThread", "t0", "t1", "t2", "t3"]
    # what was kept never exceeds what happened
    assert prof.calls("leaf", prog) <= 500000
    assert prof.calls("work", prog) <= 5
