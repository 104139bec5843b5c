"""New threads are profiled through _thread.start_new_thread (newthreads.c),
not threading.setprofile: no sys.setprofile in every new thread (Debian
3.11's process-wide guard made concurrent ones fail when a Python audit hook
let threads switch inside it, as under CPython's regrtest), no `import
threading` at start, threads made with _thread directly are seen, and what
the program can observe of thread starts is unchanged."""
import pytest

from conftest import LIB, Profile, clean_env, describe, modes_env, run, run_plain, write_prog

MODES = modes_env("trace", "sample", "gil", "timeline")


def profiled(py, prog, tmp_path, mode="trace", *args):
    out = tmp_path / ("%s.cpyprof" % mode)
    p = run([py.exe, str(prog), *args], cwd=tmp_path,
            env=clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=out, **MODES[mode]))
    return p, out


@pytest.mark.parametrize("mode", sorted(MODES))
def test_threads_starting_under_a_python_audit_hook(py, tmp_path, mode):
    """Threads starting while a Python audit hook runs and the switch
    interval is tiny, and forks meanwhile: before, 17 or 18 "Cannot install
    a profile function while another profile function is being installed"
    per run, and forked children whose profile functions could never be set
    again."""
    prog = write_prog(tmp_path, """
        import os, sys, threading
        sys.addaudithook(lambda name, args: None)  # as CPython's regrtest does
        sys.setswitchinterval(1e-6)
        def f():
            pass
        for _ in range(30):
            ts = [threading.Thread(target=f) for _ in range(10)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        statuses = []
        for _ in range(10):  # forks while another thread starts
            t = threading.Thread(target=f)
            t.start()
            pid = os.fork()
            if pid == 0:
                sys.setprofile(None)  # must work in the child
                os._exit(0)
            t.join()
            statuses.append(os.waitpid(pid, 0)[1])
        print("ok", statuses == [0] * 10)
    """)
    plain = run_plain(py, [str(prog)], tmp_path)
    p, out = profiled(py, prog, tmp_path, mode)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"ok True\n", b""), describe(p)
    assert (plain.returncode, plain.stdout, plain.stderr) == (0, p.stdout, b""), describe(plain)
    prof = Profile(out)
    assert not prof.truncated and len(prof.threads) == 311, prof.summary()
    if mode in ("trace", "gil"):
        assert prof.calls("f", prog) == 310, prof.summary()


def test_threading_not_imported_at_start(py, tmp_path):
    """CPython's test_threading.test_import_from_another_thread: threading is
    first imported by a thread made with _thread; the profiler must not have
    imported it. That thread is profiled too."""
    prog = write_prog(tmp_path, """
        import _thread, sys
        print("threading" in sys.modules, flush=True)
        lock = _thread.allocate_lock()
        lock.acquire()
        def import_threading():
            import threading
            lock.release()
        _thread.start_new_thread(import_threading, ())
        lock.acquire()
        lock.release()
        print("threading" in sys.modules, flush=True)
    """)
    plain = run_plain(py, [str(prog)], tmp_path)
    p, out = profiled(py, prog, tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (plain.returncode, plain.stdout, plain.stderr), \
        describe(p) + describe(plain)
    # Debian's python3 starts without threading; pyenv's site imports it
    assert p.stdout in (b"False\nTrue\n", b"True\nTrue\n"), describe(p)
    if py.exe.startswith("/usr/bin/"):
        assert p.stdout == b"False\nTrue\n", describe(p)
    prof = Profile(out)
    assert prof.calls("import_threading", prog) == 1, prof.summary()
    names = sorted(t["name"] or "" for t in prof.threads)
    assert len(names) == 2 and "MainThread" in names, prof.threads


def test_what_the_program_sees_of_thread_starts(py, tmp_path):
    """Errors of the thread function are reported as _thread reports them
    (naming the program's function), SystemExit ends the thread quietly,
    bad arguments raise _thread's own errors, and threading's threads still
    get their names."""
    prog = write_prog(tmp_path, """
        import _thread, sys, threading, time
        def boom():
            raise ValueError("from the thread")
        def quits():
            sys.exit(3)
        def hook(u):
            print("unraisable:", u.err_msg, u.object is boom, type(u.exc_value).__name__,
                  flush=True)
        sys.unraisablehook = hook
        for bad in [(1, ()), (boom, []), (boom, (), [])]:
            try:
                _thread.start_new_thread(*bad)
            except TypeError as e:
                print("TypeError:", e, flush=True)
        print(_thread.start_new_thread.__name__, threading._start_new_thread.__name__)
        for fn in (boom, quits):
            done = _thread.allocate_lock()
            _thread.start_new_thread(lambda fn=fn: (fn(), None), ())
            time.sleep(0.2)
        t = threading.Thread(target=time.sleep, args=(0.01,), name="named-one")
        t.start()
        t.join()
    """)
    plain = run_plain(py, [str(prog)], tmp_path)
    p, out = profiled(py, prog, tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (plain.returncode, plain.stdout, plain.stderr), \
        describe(p) + describe(plain)
    assert p.stdout.count(b"TypeError:") == 3, describe(p)
    prof = Profile(out)
    assert "named-one" in [t["name"] for t in prof.threads], prof.threads
    assert prof.calls("boom", prog) == 1 and prof.calls("quits", prog) == 1, prof.summary()
