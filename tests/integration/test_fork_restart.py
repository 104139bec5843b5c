"""A forked child of a profiled program starts its own profiling run: the
parent's run state it inherited (thread list and ids, string and function
tables, C-function ids, sampling timers) must not leak into the child's
profile, and both profiles read cleanly with exact call counts."""
import textwrap

import pytest

from conftest import describe, load_profile, run_import, write_prog

# The parent profiles (trace or sample mode, GIL accounting on or off),
# calls work() 3 times on two threads, forks; the child starts a run of its
# own (the parent's is off in the child), calls child_work() 7 times on two
# threads, calls str.upper (a C function: its id is cached per PyMethodDef)
# and either stops by hand or leaves the file to atexit. The parent waits
# for the child, then calls work() again and stops.
PROG = textwrap.dedent("""
    import os, sys, threading, cpyprof
    MODE, GIL, CHILD_END = sys.argv[3], sys.argv[4] == "1", sys.argv[5]
    def work(n):
        x = 0
        for i in range(n):
            x += i
        return x
    def child_work(n):
        return work(n) + len("a".upper())
    def on_thread(fn, n):
        t = threading.Thread(target=fn, args=(n,))
        t.start()
        t.join()
    cpyprof.start(sys.argv[1], mode=MODE, gil=GIL, quiet=True)
    work(300_000)
    on_thread(work, 300_000)
    work(300_000)
    pid = os.fork()
    if pid == 0:
        assert not cpyprof.is_running()
        cpyprof.start(sys.argv[2], mode=MODE, gil=GIL, quiet=True)
        for _ in range(3):
            child_work(200_000)
        on_thread(child_work, 200_000)
        for _ in range(3):
            child_work(200_000)
        if CHILD_END == "stop":
            cpyprof.stop()
            os._exit(0)
        sys.exit(0)  # atexit writes the child's profile
    _, status = os.waitpid(pid, 0)
    work(300_000)
    cpyprof.stop()
    print("child", os.waitstatus_to_exitcode(status))
    print("ok")
""")


@pytest.mark.parametrize("mode,gil,child_end", [
    ("trace", "0", "stop"),
    ("trace", "1", "exit"),
    ("sample", "0", "stop"),
])
def test_forked_child_profiles_on_its_own(py, tmp_path, mode, gil, child_end):
    prog = write_prog(tmp_path, PROG)
    parent_out, child_out = tmp_path / "parent.cpyprof", tmp_path / "child.cpyprof"
    p, _ = run_import(py, [prog, parent_out, child_out, mode, gil, child_end], parent_out,
                      tmp_path)
    assert p.returncode == 0 and p.stdout.decode().split() == ["child", "0", "ok"], describe(p)
    assert p.stderr == b"", describe(p)
    parent = load_profile(p, parent_out)
    child = load_profile(p, child_out)
    # The child's run is its own: the main thread and the one it started,
    # only the child's functions.
    assert len(child.threads) == 2, child.summary()
    assert len(parent.threads) == 2, parent.summary()
    assert child.funcs("work") and child.funcs("child_work"), child.summary()
    assert not parent.funcs("child_work"), parent.summary()
    if mode == "trace":
        assert child.calls("child_work") == 7, child.summary()
        assert child.calls("work") == 7, child.summary()
        assert child.calls("str.upper") == 7, child.summary()
        assert parent.calls("work") == 4, parent.summary()
    if gil == "1":
        from test_gil import gil_json
        g = gil_json(child_out)
        assert g["method"] == "exact" and len(g["threads"]) >= 2, g
        assert all(t["hold_ns"] > 0 for t in g["threads"]), g
