"""A wrapper layer that does not count (in a forked child, whose layers are
switched off; after stop, when a later allocator such as tracemalloc keeps
ours in its chain) must forward every call, whichever thread makes it. A
layer's key of 0 once matched the zeroed cache of a thread new to the
allocator wrappers and sent it down the fast path with no thread: a
segmentation fault (CPython's test_threading.test_2_join_in_forked_process
under --alloc found it)."""
import textwrap

import pytest

from conftest import LIB, PYPKG, clean_env, describe, run, write_prog

FORK = textwrap.dedent("""
    import os, sys, threading
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        print("child status", status, flush=True)
        sys.exit(0)
    def work():
        print("thread", len([bytearray(100) for _ in range(1000)]), flush=True)
    t = threading.Thread(target=work)
    t.start()
    t.join()
    print("child done", flush=True)
""")

AFTER_STOP = textwrap.dedent("""
    import sys, threading, tracemalloc
    import cpyprof
    cpyprof.start(sys.argv[1], mode=sys.argv[2], alloc=True, quiet=True)
    tracemalloc.start()  # wraps ours: stop cannot take our layer out
    cpyprof.stop()
    def work():
        print("thread", len([bytearray(100) for _ in range(1000)]), flush=True)
    t = threading.Thread(target=work)
    t.start()
    t.join()
    tracemalloc.stop()
    print("done", flush=True)
""")


@pytest.mark.parametrize("mode", ["trace", "sample"])
def test_thread_in_forked_child(py, tmp_path, mode):
    prog = write_prog(tmp_path, FORK)
    p = run([py.exe, str(prog)], cwd=tmp_path,
            env=clean_env(LD_PRELOAD=LIB, CPYPROF_ALLOC="1",
                          CPYPROF_MODE=mode, CPYPROF_OUTPUT=tmp_path / "p.cpyprof"))
    assert p.returncode == 0, describe(p)
    assert p.stdout.decode().splitlines() == ["thread 1000", "child done", "child status 0"], \
        describe(p)


@pytest.mark.parametrize("mode", ["trace", "sample"])
def test_thread_after_stop_under_tracemalloc(py, tmp_path, mode):
    prog = write_prog(tmp_path, AFTER_STOP)
    p = run([py.exe, str(prog), str(tmp_path / "p.cpyprof"), mode], cwd=tmp_path,
            env=clean_env(PYTHONPATH=PYPKG))
    assert p.returncode == 0, describe(p)
    assert p.stdout.decode().splitlines() == ["thread 1000", "done"], describe(p)
