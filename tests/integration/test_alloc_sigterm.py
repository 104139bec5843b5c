"""ALLOC and GC chunks in the profile written on SIGTERM: the writer thread
dumps without the GIL while a program thread still allocates and collects
(dump.c, alloc.c, gc.c). The counts made before the signal are exact; the
collections recorded before it are all there."""
import json
import signal

import pytest

from conftest import CLI, describe, load_profile, preload_env, run, write_prog
from test_exits import SIGNAL_EXIT_LIMIT, run_until_ready_then

N = 200      # bytearrays made by make(): 2 allocations each, no free list
SIZE = 1000  # bytes each: the buffer is SIZE + 1 bytes
CYCLES = 1000

# make() and the collections are over before "ready"; then a churning
# thread allocates, frees and collects until the process dies, so the dump
# runs while the wrappers count and gc.callbacks record.
PROG = """
import gc, json, sys, threading, time
def make(out, n, size):
    i = 0
    while i < n:
        out[i] = bytearray(size)
        i += 1
def cycles(n):
    for _ in range(n):
        a = []; b = [a]; a.append(b)
def churn():
    while True:
        x = [bytearray(64) for _ in range(50)]
        del x
        cycles(10)
        gc.collect(0)
def main():
    gc.disable()
    out = [None] * %(n)d
    make(out, %(n)d, %(size)d)  # before any collection: one empties the free lists
    gc.collect()
    cycles(%(cycles)d)
    gc.collect()
    threading.Thread(target=churn, name="churn", daemon=True).start()
    time.sleep(0.3)
    print("ready", flush=True)
    time.sleep(60)
main()
"""


def report_json(path):
    p = run([CLI, "report", "--json", path])
    assert p.returncode == 0, describe(p)
    return json.loads(p.stdout)


@pytest.mark.parametrize("mode", ["trace", "sample"])
def test_sigterm_profile_has_alloc_and_gc_data(py, tmp_path, mode):
    prog = write_prog(tmp_path, PROG % {"n": N, "size": SIZE, "cycles": CYCLES})
    out = tmp_path / "term.cpyprof"
    env = preload_env(out, CPYPROF_ALLOC="on", CPYPROF_MODE=mode)
    p = run_until_ready_then(py, [py.exe, prog], env, tmp_path, signal.SIGTERM)
    assert p.returncode == -signal.SIGTERM, describe(p)
    assert (p.stdout, p.stderr) == (b"ready\n", b""), describe(p)
    assert p.elapsed < SIGNAL_EXIT_LIMIT, "took %.2f s to die" % p.elapsed
    prof = load_profile(p, out)
    assert not prof.truncated, prof.summary()

    doc = report_json(out)
    assert doc["alloc"]["per_function"] == (mode == "sample")
    rows = {f["name"]: f for f in doc["alloc"]["functions"]}
    basic = 56  # bytearray.__basicsize__ on 64-bit 3.11
    make = rows["make"]
    assert (make["allocs"], make["alloc_bytes"]) == (2 * N, N * (basic + SIZE + 1)), make
    assert make["frees"] == 0, make
    assert rows["churn"]["allocs"] > 0, rows["churn"]

    recs = doc["gc"]["records"]  # start-up's (imports) first, under LD_PRELOAD
    names = [r["name"] for r in recs]
    mains = [r for r in recs if r["name"] == "main"]
    assert [r["generation"] for r in mains] == [2, 2], mains
    assert mains[1]["collected"] == 2 * CYCLES, mains
    # then the churning thread's, recorded until the signal
    assert "churn" in names and set(names[names.index("churn"):]) == {"churn"}, names
