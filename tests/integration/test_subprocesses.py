"""--subprocesses: every Python process of the tree profiles itself into its
own file (out.PID.cpyprof, or DIR/cpyprof.PID.out), and report / flame /
convert merge the files with one root frame per process."""
import json
import os
import time
from pathlib import Path

import pytest

from conftest import (CLI, LIB, PYPKG, Profile, clean_env, describe, run, run_plain,
                      write_prog)


def files_in(directory):
    return sorted(p for p in Path(directory).iterdir() if p.name.startswith("cpyprof."))


def wait_complete(directory, count, timeout=30):
    """Waits until `directory` holds `count` profiles that all have a trailer:
    a forkserver or resource tracker ends a moment after the program."""
    deadline = time.monotonic() + timeout
    while True:
        fs = files_in(directory)
        done = len(fs) >= count and all(
            not json.loads(run([CLI, "report", f, "--json"]).stdout or b'{"truncated": true}')
            ["truncated"] for f in fs)
        if done or time.monotonic() > deadline:
            return fs
        time.sleep(0.2)


def by_pid(directory):
    """{pid: Profile} of every file in the directory; each named after its pid."""
    out = {}
    for f in files_in(directory):
        prof = Profile(f)
        pid = int(prof.json["meta"]["pid"])
        assert f.name == "cpyprof.%d.out" % pid, f
        assert not prof.truncated, (f, prof.summary())
        out[pid] = prof
    return out


def run_sub(py, prog, tmp_path, *args, extra=None):
    """LD_PRELOAD with CPYPROF_SUBPROCESSES=1 and CPYPROF_OUTPUT=DIR/."""
    d = tmp_path / "profiles"
    env = clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=str(d) + "/", CPYPROF_SUBPROCESSES="1",
                    **(extra or {}))
    p = run([py.exe, str(prog), *map(str, args)], env=env, cwd=tmp_path)
    return p, d


FORK_PROG = """
    import os, sys, threading, time
    def child_only():
        return 1
    def parent_before():
        return 1
    def parent_after():
        return 2
    def spin(stop):
        while not stop.is_set():
            sum(range(100))
    def main():
        stop = threading.Event()
        threads = [threading.Thread(target=spin, args=(stop,)) for _ in range(3)]
        for t in threads:
            t.start()
        parent_before()
        pids = []
        for i in range(int(sys.argv[2])):
            pid = os.fork()
            if pid == 0:
                for _ in range(5 + i):
                    child_only()
                if sys.argv[1] == "os_exit":
                    sys.stdout.flush()
                    os._exit(3)
                sys.exit(3)
            pids.append(pid)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
        stop.set()
        for t in threads:
            t.join()
        parent_after()
        print("children", codes, flush=True)
        return pids
    main()
"""


@pytest.mark.parametrize("ending", ["os_exit", "sys_exit"])
def test_fork_in_threaded_program(py, tmp_path, ending):
    """Forked children of a program with busy threads each profile only
    themselves (the surviving thread), exactly; the parent's file is the
    parent's. No deadlock, no inherited half-written state."""
    n = 6
    prog = write_prog(tmp_path, FORK_PROG)
    p, d = run_sub(py, prog, tmp_path, ending, n)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert p.stdout == ("children %s\n" % ([3] * n)).encode(), describe(p)
    profs = by_pid(d)
    assert len(profs) == n + 1, sorted(profs)
    parent = [pr for pr in profs.values() if pr.calls("parent_after", prog) == 1]
    assert len(parent) == 1, [pr.summary() for pr in profs.values()]
    parent = parent[0]
    assert parent.func("parent_before", prog)["calls"] == 1
    assert parent.funcs("child_only", prog) == [], parent.summary()
    ppid = int(parent.json["meta"]["pid"])
    counts = []
    for pid, pr in profs.items():
        if pr is parent:
            continue
        assert int(pr.json["meta"]["ppid"]) == ppid
        assert pr.funcs("parent_after", prog) == [] and pr.funcs("parent_before", prog) == []
        assert pr.funcs("spin", prog) == [], "a thread that did not survive the fork"
        assert [t["name"] for t in pr.threads] == ["MainThread"], pr.threads
        counts.append(pr.func("child_only", prog)["calls"])
    assert sorted(counts) == list(range(5, 5 + n)), counts


def test_fork_without_flag_writes_nothing(py, tmp_path):
    prog = write_prog(tmp_path, FORK_PROG)
    out = tmp_path / "one.cpyprof"
    env = clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=out)
    p = run([py.exe, str(prog), "os_exit", "3"], env=env, cwd=tmp_path)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["one.cpyprof", "prog.py"]
    prof = Profile(out)
    assert prof.funcs("child_only", prog) == [] and prof.calls("parent_after", prog) == 1


EXEC_PROG = """
    import os, subprocess, sys
    CHILD = "def child_only():\\n    return 5\\nfor _ in range(7):\\n    child_only()\\nprint('c')"
    def parent_only():
        r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True)
        print(r.stdout.decode().strip(), r.returncode, repr(r.stderr), flush=True)
        # a shell in between: not Python, untouched; its Python child is followed
        r = subprocess.run(["/bin/sh", "-c", '"$0" -c "$1"', sys.executable, CHILD])
        pid = os.fork()
        if pid == 0:
            os.execv(sys.executable, [sys.executable, "-c", CHILD])
        os.waitpid(pid, 0)
    parent_only()
"""


def test_exec_children(py, tmp_path):
    """subprocess.run([sys.executable, ...]), a Python started through /bin/sh,
    and fork + os.execv: each child claims its own run (CPYPROF_PID names its
    parent) and writes its own file."""
    prog = write_prog(tmp_path, EXEC_PROG)
    p, d = run_sub(py, prog, tmp_path)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert p.stdout == b"c 0 b''\nc\nc\n", describe(p)
    assert p.stdout == run_plain(py, [prog], tmp_path).stdout
    profs = by_pid(d)
    assert len(profs) == 4, sorted(profs)  # parent, 3 children; not the shell
    parent = [pr for pr in profs.values() if pr.funcs("parent_only", prog)]
    assert len(parent) == 1
    children = [pr for pr in profs.values() if pr is not parent[0]]
    for pr in children:
        assert pr.func("child_only", "<string>")["calls"] == 7, pr.summary()
        assert pr.funcs("parent_only", prog) == []
        assert pr.json["meta"]["activation"] == "preload"
    assert parent[0].funcs("child_only") == []


MP_PROG = """
    import multiprocessing as mp, os, sys
    def square(x):
        return x * x
    def single(n):
        for _ in range(n):
            square(0)
    def main():
        ctx = mp.get_context(sys.argv[1])
        p = ctx.Process(target=single, args=(9,))
        p.start()
        p.join()
        # close + join, not `with` (terminate): a worker SIGTERMed while its
        # profiler starts leaves a file with only its META (truncated)
        pool = ctx.Pool(2)
        print(sum(pool.map(square, range(12), chunksize=1)), p.exitcode, flush=True)
        pool.close()
        pool.join()
    if __name__ == "__main__":
        main()
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_multiprocessing(py, tmp_path, method):
    """multiprocessing with each start method: the worker processes' files
    hold the work, exactly (9 calls in the Process, 12 over the Pool's
    workers), and nothing of it is in the parent's."""
    prog = write_prog(tmp_path, MP_PROG)
    p, d = run_sub(py, prog, tmp_path, method)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert p.stdout == b"506 0\n", describe(p)
    # parent + Process + 2 pool workers (+ resource tracker for spawn and
    # forkserver, + the forkserver itself)
    expected = {"fork": 4, "spawn": 5, "forkserver": 6}[method]
    wait_complete(d, expected)
    profs = by_pid(d)
    assert len(profs) == expected, sorted(profs)
    # the program's own process: its parent is not one of the profiled ones
    parent = [pr for pr in profs.values() if int(pr.json["meta"]["ppid"]) not in profs]
    assert len(parent) == 1, [pr.json["meta"]["argv"] for pr in profs.values()]
    assert parent[0].json["meta"]["argv"].split("\0")[1:] == [str(prog), method]
    parent = parent[0]
    assert parent.calls("square", prog) == 0 and parent.calls("single", prog) == 0
    singles = [pr for pr in profs.values() if pr.calls("single", prog)]
    assert len(singles) == 1 and singles[0].func("single", prog)["calls"] == 1
    assert singles[0].func("square", prog)["calls"] == 9
    pool_calls = sum(pr.calls("square", prog) for pr in profs.values() if pr not in singles)
    assert pool_calls == 12, [pr.calls("square", prog) for pr in profs.values()]


def test_multiprocessing_spawn_without_flag(py, tmp_path):
    prog = write_prog(tmp_path, MP_PROG)
    out = tmp_path / "one.cpyprof"
    env = clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=out)
    p = run([py.exe, str(prog), "spawn"], env=env, cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == b"506 0\n" and p.stderr == b"", describe(p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["one.cpyprof", "prog.py"]
    assert Profile(out).calls("square", prog) == 0


def test_merge_views(py, tmp_path):
    """report, flame and convert take several files or the directory, with
    the process as the root frame; one file alone is shown as before."""
    prog = write_prog(tmp_path, EXEC_PROG)
    p, d = run_sub(py, prog, tmp_path)
    assert p.returncode == 0, describe(p)
    files = files_in(d)
    assert len(files) == 4
    pids = sorted(int(f.name.split(".")[1]) for f in files)
    for args in ([d], files):
        r = run([CLI, "report", *args, "--json"])
        assert r.returncode == 0 and r.stderr == b"", describe(r)
        j = json.loads(r.stdout)
        procs = sorted(f["name"] for f in j["functions"] if f["name"].startswith("process "))
        assert [int(n.split()[1].rstrip(":")) for n in procs] == pids, procs
        assert sum(f["calls"] for f in j["functions"] if f["name"] == "child_only") == 21
        assert j["meta"]["processes"] == "4"
        assert len(j["threads"]) == 4
        folded = run([CLI, "convert", *args, "--to", "folded", "-o", "-"])
        assert folded.returncode == 0, describe(folded)
        lines = folded.stdout.decode().splitlines()
        assert lines and all(l.startswith("process ") for l in lines), lines[:3]
        roots = {l.split(";")[0] for l in lines}
        assert len(roots) == 4, roots
    svg = tmp_path / "all.svg"
    r = run([CLI, "flame", d, "-o", svg])
    assert r.returncode == 0 and r.stderr == b"", describe(r)
    text = svg.read_text()
    for pid in pids:
        assert "process %d: " % pid in text
    # one file: no process frame
    one = run([CLI, "convert", files[0], "--to", "folded", "-o", "-"])
    assert one.returncode == 0 and b"process " not in one.stdout
    # a sampled profile does not merge with a traced one
    env = clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=tmp_path / "s.cpyprof", CPYPROF_MODE="sample")
    assert run([py.exe, "-c", "pass"], env=env).returncode == 0
    r = run([CLI, "report", files[0], tmp_path / "s.cpyprof"])
    assert r.returncode == 1, describe(r)
    assert b"cannot merge a sampled profile" in r.stderr, describe(r)


def test_record_and_python_api(py, tmp_path):
    """`cpyprof record --subprocesses -o out.cpyprof` names files
    out.PID.cpyprof and says how many children wrote one; the Python API
    follows exec'd children through os.environ until stop()."""
    prog = write_prog(tmp_path, EXEC_PROG)
    p = run([CLI, "record", "--subprocesses", "-o", "out.cpyprof", "--", py.exe, prog],
            env=clean_env(), cwd=tmp_path)
    assert p.returncode == 0 and p.stdout == b"c 0 b''\nc\nc\n", describe(p)
    names = sorted(x.name for x in tmp_path.iterdir() if x.name.startswith("out."))
    assert len(names) == 4 and all(n.split(".")[1].isdigit() for n in names), names
    err = p.stderr.decode()
    assert "cpyprof: wrote out.%s.cpyprof" % p.stderr.decode().split("out.")[1].split(".")[0] \
        in err and "and 3 profiles of child processes" in err, describe(p)

    api = write_prog(tmp_path, """
        import os, subprocess, sys, cpyprof
        CHILD = "def child_only():\\n    pass\\nchild_only()"
        def before():
            subprocess.run([sys.executable, "-c", CHILD])
        cpyprof.start(sys.argv[1], subprocesses=True)
        before()
        print(os.environ.get("CPYPROF_SUBPROCESSES"), flush=True)
        path = cpyprof.stop()
        print(os.path.basename(path) == "api.%d.cpyprof" % os.getpid(),
              os.environ.get("CPYPROF_SUBPROCESSES"), "LD_PRELOAD" in os.environ)
        subprocess.run([sys.executable, "-c", CHILD])  # after stop: not followed
    """, name="api.py")
    d = tmp_path / "api"
    d.mkdir()
    p = run([py.exe, api, d / "api.cpyprof"], env=clean_env(PYTHONPATH=PYPKG), cwd=d)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert p.stdout == b"1\nTrue None False\n", describe(p)
    files = sorted(d.iterdir())
    assert len(files) == 2, files
    profs = [Profile(f) for f in files]
    assert sorted(pr.calls("child_only", "<string>") for pr in profs) == [0, 1]


def test_pool_terminate(py, tmp_path):
    """`with Pool()` ends with terminate(): SIGTERM to workers that may be
    writing their profile in os._exit at that moment. The profile is
    finished first (the signal waits for it), so every call is in a file;
    a worker killed while its profiler was still starting may leave a file
    with no calls, truncated but readable. (Once ended by SIGTERM in the
    parent about 1 run in 10 under load; the writer's wake-up pipe, which a
    forked worker shared with its parent, is now a private futex.)"""
    prog = write_prog(tmp_path, """
        import multiprocessing as mp
        def square(x):
            return x * x
        if __name__ == "__main__":
            for _ in range(3):
                with mp.get_context("fork").Pool(3) as pool:
                    print(sum(pool.map(square, range(20), chunksize=1)), flush=True)
    """)
    p, d = run_sub(py, prog, tmp_path)
    assert p.returncode == 0 and p.stderr == b"" and p.stdout == b"2470\n" * 3, describe(p)
    files = files_in(d)
    assert len(files) == 10, files
    total = 0
    for f in files:
        prof = Profile(f)
        n = prof.calls("square", prog)
        assert n == 0 or not prof.truncated, (f, prof.summary())
        total += n
    assert total == 60


def test_fork_from_a_thread_is_not_followed(py, tmp_path):
    """A child forked from a thread other than the main one ends by
    pthread_exit when its function returns (no atexit): a profiler writer
    thread in it would keep the process alive for ever (CPython's
    test_threading join-in-forked-from-thread tests hung). Such a child is
    not followed: it ends as without the profiler, and only the parent writes."""
    prog = write_prog(tmp_path, """
        import os, threading
        def child_only():
            return 1
        def func():
            pid = os.fork()
            if pid == 0:
                child_only()
                print("child", flush=True)
            else:
                print("parent", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
        th = threading.Thread(target=func)
        th.start()
        th.join()
    """)
    p, d = run_sub(py, prog, tmp_path)
    assert p.returncode == 0 and p.stderr == b"", describe(p)
    assert sorted(p.stdout.splitlines()) == [b"child", b"parent 0"], describe(p)
    profs = by_pid(d)
    assert len(profs) == 1, sorted(profs)
    (parent,) = profs.values()
    assert parent.calls("func", prog) == 1 and parent.funcs("child_only", prog) == []
