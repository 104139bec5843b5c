"""The profiled program sees no descriptor of the profiler, in any mode: its
writer thread keeps the profile file in a descriptor table of its own
(src/python/drain.c). A program that lists /proc/self/fd, or passes
descriptors to a child and has the child count its own (CPython's
test_subprocess.test_pass_fds_redirected), finds exactly what it finds
without the profiler; children inherit nothing of ours."""
import pytest

from conftest import LIB, Profile, clean_env, describe, modes_env, run, run_plain, write_prog

LIST_PROG = """
    import os, subprocess, sys, threading
    def mine():
        # the listing's own descriptor is the lowest free number: the same
        # in both runs when nothing else is open
        return sorted(int(n) for n in os.listdir("/proc/self/fd"))
    def work():
        return sum(range(100))
    def child():
        r, w = os.pipe()
        code = "import os; print(sorted(int(n) for n in os.listdir('/proc/self/fd')))"
        out = subprocess.run([sys.executable, "-c", code], pass_fds=(w,),
                             capture_output=True).stdout.decode().strip()
        os.close(r); os.close(w)
        return out
    print("start", mine(), flush=True)
    ths = [threading.Thread(target=work) for _ in range(3)]
    for t in ths: t.start()
    for t in ths: t.join()
    for _ in range(200):
        work()
    print("running", mine(), flush=True)
    print("child", child(), flush=True)
"""

MODES = modes_env()


@pytest.mark.parametrize("subprocesses", [False, True], ids=["alone", "subprocesses"])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_program_sees_no_profiler_descriptor(py, tmp_path, mode, subprocesses):
    prog = write_prog(tmp_path, LIST_PROG)
    plain = run_plain(py, [str(prog)], tmp_path)
    assert plain.returncode == 0, describe(plain)
    out = tmp_path / "profiles"
    out.mkdir()
    extra = dict(MODES[mode])
    if subprocesses:
        extra["CPYPROF_SUBPROCESSES"] = "1"
    # a directory with --subprocesses (one file per process), else one file
    target = str(out) + "/" if subprocesses else str(out / "prog.cpyprof")
    p = run([py.exe, str(prog)], cwd=tmp_path,
            env=clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=target, **extra))
    assert (p.returncode, p.stdout, p.stderr) == (0, plain.stdout, plain.stderr), \
        describe(p) + describe(plain)
    files = sorted(out.iterdir())
    assert len(files) == (2 if subprocesses else 1), files
    for f in files:
        prof = Profile(f)
        assert not prof.truncated, prof.summary()
