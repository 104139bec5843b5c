"""Threads: every thread has its own call tree, named, with exact counts."""
import pytest

from conftest import describe, root_ok, run, run_import, run_record, write_prog

# worker-i calls leaf_i exactly (i + 1) * 100 times, so each thread's work is
# told apart by function name even though the report aggregates functions.
THREADS = """
import threading

def leaf_0(): return 0
def leaf_1(): return 1
def leaf_2(): return 2
def leaf_3(): return 3
LEAVES = [leaf_0, leaf_1, leaf_2, leaf_3]

def work(i):
    f = LEAVES[i]
    s = 0
    for _ in range((i + 1) * 100):
        s += f()
    return s

def worker(i, out):
    out[i] = work(i)

def main():
    out = [None] * 4
    ts = [threading.Thread(target=worker, args=(i, out), name="worker-%d" % i) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(out)

main()
"""


def check_threads(prof, prog):
    names = sorted((t["name"] for t in prof.threads), key=str)
    assert names == ["MainThread", "worker-0", "worker-1", "worker-2", "worker-3"], prof.threads
    # (idents are pthread_t values and may be reused by a later thread;
    # kernel thread ids are not reused this quickly)
    tids = [t["native_tid"] for t in prof.threads]
    assert len(set(tids)) == 5, prof.threads
    for i in range(4):
        assert prof.calls("leaf_%d" % i, prog) == (i + 1) * 100, prof.summary()
    assert prof.calls("work", prog) == 4, prof.summary()
    assert prof.calls("worker", prog) == 4, prof.summary()
    assert prof.calls("main", prog) == 1, prof.summary()
    for frames, value in prof.folded:
        assert value >= 0
        assert root_ok(frames, prog), frames
    for names, value in prof.stacks():
        # worker code never shows up under main's stack (separate trees)
        if "worker" in names:
            assert "main" not in names, names


def test_four_threads_record(py, tmp_path):
    prog = write_prog(tmp_path, THREADS)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0, describe(p)
    assert p.stdout == b"[0, 200, 600, 1200]\n"
    check_threads(prof, prog)


# Threads started before cpyprof.start(): they wait on an event, profiling
# starts, then they do their work.
EARLY = """
import sys, threading
import cpyprof

def leaf_0(): return 0
def leaf_1(): return 1
def leaf_2(): return 2
def leaf_3(): return 3
LEAVES = [leaf_0, leaf_1, leaf_2, leaf_3]

def work(i):
    f = LEAVES[i]
    s = 0
    for _ in range((i + 1) * 100):
        s += f()
    return s

def worker(i, go, out):
    go.wait()
    out[i] = work(i)

def main(path):
    go = threading.Event()
    out = [None] * 4
    ts = [threading.Thread(target=worker, args=(i, go, out), name="worker-%d" % i, daemon=True)
          for i in range(4)]
    for t in ts:
        t.start()
    try:
        cpyprof.start(path)
    finally:
        go.set()
    for t in ts:
        t.join()
    cpyprof.stop()
    print(out)

main(sys.argv[1])
"""


@pytest.mark.parametrize("api", ["package", "extension"])
def test_threads_started_before_start(py, tmp_path, api):
    source = EARLY
    if api == "extension":
        source = (EARLY.replace("import cpyprof", "from cpyprof import _cpyprof")
                  .replace("cpyprof.start(path)", "_cpyprof.start(path, {})")
                  .replace("cpyprof.stop()", "_cpyprof.stop()"))
    prog = write_prog(tmp_path, source)
    out = tmp_path / "early.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0, describe(p)
    assert p.stdout == b"[0, 200, 600, 1200]\n"
    names = sorted((t["name"] for t in prof.threads), key=str)
    assert names == ["MainThread", "worker-0", "worker-1", "worker-2", "worker-3"], prof.threads
    for i in range(4):
        assert prof.calls("leaf_%d" % i, prog) == (i + 1) * 100, prof.summary()
    assert prof.calls("work", prog) == 4, prof.summary()
    for frames, value in prof.folded:
        assert value >= 0
        assert root_ok(frames, prog), frames
    # the workers' stacks were pre-filled: work runs under worker
    for i in range(4):
        stacks = [n for n, _ in prof.stacks() if "leaf_%d" % i in n]
        assert stacks, prof.summary()
        for n in stacks:
            assert n[-3:] == ["worker", "work", "leaf_%d" % i], n
    # and the main thread's tree is rooted at <module>: start() was called
    # from main, so main is on the pre-filled stack
    main_stacks = [n for n, _ in prof.stacks() if "main" in n]
    assert main_stacks, prof.summary()
    for n in main_stacks:
        assert n[:2] == ["<module>", "main"], n


def test_thread_started_after_start_import(py, tmp_path):
    prog = write_prog(tmp_path, """
        import sys, threading
        import cpyprof

        def leaf(): return 1

        def worker():
            for _ in range(250):
                leaf()

        def main(path):
            cpyprof.start(path)
            t = threading.Thread(target=worker, name="late-worker")
            t.start()
            t.join()
            cpyprof.stop()

        main(sys.argv[1])
    """)
    out = tmp_path / "late.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0, describe(p)
    assert sorted((t["name"] for t in prof.threads), key=str) == ["MainThread", "late-worker"], prof.threads
    assert prof.calls("leaf", prog) == 250, prof.summary()
    assert prof.calls("worker", prog) == 1, prof.summary()


def test_thread_from_c_via_ctypes(py, tmp_path):
    """A thread created in C (pthread_create through ctypes) that enters
    Python through a ctypes callback (PyGILState_Ensure) is profiled too."""
    prog = write_prog(tmp_path, """
        import ctypes
        libc = ctypes.CDLL(None)
        CB = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)

        def leaf():
            return 1

        def body(arg):
            for _ in range(25):
                leaf()
            return None

        def main():
            cb = CB(body)
            tid = ctypes.c_ulong()
            assert libc.pthread_create(ctypes.byref(tid), None, cb, None) == 0
            assert libc.pthread_join(tid, None) == 0
            print("joined")

        main()
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"joined\n" and p.stderr == b"", describe(p)
    assert prof.func("body", prog)["calls"] == 1, prof.summary()
    assert prof.func("leaf", prog)["calls"] == 25, prof.summary()
    assert len(prof.threads) == 2, prof.threads
    for names, _ in prof.stacks():
        if "leaf" in names:
            assert names[-2:] == ["body", "leaf"] and "main" not in names, names


def test_non_daemon_threads_finish_after_main(py, tmp_path):
    """Work done by threads after the main module has finished (while the
    interpreter waits for them at exit) is in the profile."""
    prog = write_prog(tmp_path, """
        import threading, time
        def leaf():
            return 1
        def late():
            time.sleep(0.2)
            for _ in range(50):
                leaf()
        threading.Thread(target=late, name="late").start()
        print("main module done", flush=True)
    """)
    p, prof = run_record(py, [prog], tmp_path)
    assert p.returncode == 0 and p.stdout == b"main module done\n", describe(p)
    assert not prof.truncated
    assert prof.func("leaf", prog)["calls"] == 50, prof.summary()
    assert prof.func("late", prog)["calls"] == 1, prof.summary()


def test_threads_keep_running_after_stop(py, tmp_path):
    """Threads that were profiled keep running after stop(): their later calls
    are not in the profile and nothing breaks."""
    prog = write_prog(tmp_path, """
        import sys, threading
        import cpyprof

        def leaf():
            return 1

        def worker(phase1, phase2, done1, out):
            phase1.wait()
            for _ in range(10):
                leaf()
            done1.set()
            phase2.wait()
            for _ in range(1000):
                leaf()
            out.append("worker done")

        def main(path):
            phase1, phase2, done1 = threading.Event(), threading.Event(), threading.Event()
            out = []
            t = threading.Thread(target=worker, args=(phase1, phase2, done1, out), name="w")
            t.start()
            cpyprof.start(path)
            phase1.set()
            done1.wait()
            cpyprof.stop()
            phase2.set()
            t.join()
            for _ in range(5):
                leaf()
            print(out)

        main(sys.argv[1])
    """)
    out = tmp_path / "after.cpyprof"
    p, prof = run_import(py, [prog, out], out, tmp_path)
    assert p.returncode == 0 and p.stdout == b"['worker done']\n" and p.stderr == b"", describe(p)
    assert prof.calls("leaf", prog) == 10, prof.summary()


def test_thread_dying_by_exception(py, tmp_path):
    prog = write_prog(tmp_path, """
        import threading
        def leaf():
            return 1
        def bad():
            leaf()
            raise RuntimeError("in thread")
        def main():
            t = threading.Thread(target=bad, name="bad-thread")
            t.start()
            t.join()
            leaf()
            print("main continues")
        main()
    """)
    ref = run([py.exe, prog], cwd=tmp_path)
    p, prof = run_record(py, [prog], tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (ref.returncode, ref.stdout, ref.stderr), \
        describe(p) + describe(ref)
    assert b"RuntimeError: in thread" in p.stderr
    assert prof.calls("leaf", prog) == 2 and prof.calls("bad", prog) == 1, prof.summary()
    for frames, _ in prof.folded:
        assert root_ok(frames, prog), frames
