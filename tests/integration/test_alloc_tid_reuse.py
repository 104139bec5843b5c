"""A thread whose kernel tid once belonged to a profiled thread that exited
is not that thread: its allocations are not charged to the dead thread's
counters (alloc.c matches thread states by their id, which the interpreter
never reuses, not by tid).

The kernel is made to hand the dead thread's tid to a new thread by writing
/proc/sys/kernel/ns_last_pid (root with CAP_SYS_ADMIN or
CAP_CHECKPOINT_RESTORE); elsewhere, or if other processes keep taking the
tid first, the test is skipped and says why."""
import json
import textwrap

import pytest

from conftest import CLI, describe, run, run_record, write_prog

N = 100      # bytearrays the new thread makes
SIZE = 1000  # bytes each

PROG = textwrap.dedent("""
    import _thread, json, threading, time
    def b_work(n, size):
        out = [None] * n
        i = 0
        while i < n:
            out[i] = bytearray(size)
            i += 1
        return out
    def main():
        tids = []
        a = threading.Thread(target=lambda: tids.append(threading.get_native_id()), name="A")
        a.start(); a.join()
        tid = tids[0]
        res = {"reused": False}
        for attempt in range(300):
            time.sleep(0.01)  # the kernel thread of A finishes exiting
            done = threading.Event()
            got = {}
            def b():
                got["tid"] = threading.get_native_id()
                if got["tid"] == tid:
                    got["keep"] = b_work(%(n)d, %(size)d)
                done.set()
            try:
                with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                    f.write(str(tid - 1))
            except OSError as e:
                res["why"] = "cannot write ns_last_pid: %%s" %% e
                break
            # _thread: no threading hook, so the profiler never attaches it
            _thread.start_new_thread(b, ())
            assert done.wait(30)
            if got["tid"] == tid:
                res["reused"] = True
                break
        else:
            res["why"] = "other processes took tid %%d first, 300 times" %% tid
        print(json.dumps(res))
    main()
""")


@pytest.mark.parametrize("opts", [("--alloc",), ("--alloc", "--mode", "sample")],
                         ids=["trace", "sample"])
def test_reused_tid_is_not_the_dead_thread(py, tmp_path, opts):
    prog = write_prog(tmp_path, PROG % {"n": N, "size": SIZE})
    p, prof = run_record(py, [prog], tmp_path, opts=opts)
    assert p.returncode == 0, describe(p)
    res = json.loads(p.stdout.decode().splitlines()[-1])
    if not res["reused"]:
        pytest.skip(res["why"])
    rep = run([CLI, "report", "--json", prof.path])
    assert rep.returncode == 0, describe(rep)
    a = json.loads(rep.stdout)["alloc"]
    names = [f["name"] for f in a["functions"]]
    # b_work ran on a thread the profiler does not know: "other" counters
    # only, not thread A's (nor any thread's) function rows
    assert "b_work" not in names, [f for f in a["functions"] if f["name"] == "b_work"]
    assert a["other_allocs"] >= 2 * N and a["other_alloc_bytes"] >= N * (SIZE + 1), a
