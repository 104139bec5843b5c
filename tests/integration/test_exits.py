"""However the program ends, the profile is written (or marked truncated)."""
import signal
import subprocess
import time

from conftest import (CLI, TIMEOUT, clean_env, describe, load_profile, preload_env, run,
                      run_plain, run_preload, write_prog)

WORK = """
import os, signal, sys, time

def leaf(i):
    return i + 1

def before():
    return sum(leaf(i) for i in range(10))

def ending():
    {ending}

def main():
    before()
    ending()

main()
"""


def ending_prog(tmp_path, ending):
    return write_prog(tmp_path, WORK.replace("{ending}", ending))


def check_complete(prof, prog):
    assert not prof.truncated, prof.summary()
    assert prof.func("leaf", prog)["calls"] == 10, prof.summary()
    assert prof.func("before", prog)["calls"] == 1, prof.summary()
    assert prof.func("ending", prog)["calls"] == 1, prof.summary()
    assert prof.func("main", prog)["calls"] == 1, prof.summary()


def test_uncaught_exception(py, tmp_path):
    prog = ending_prog(tmp_path, "raise RuntimeError('boom')")
    ref = run_plain(py, [prog], tmp_path)
    p, prof = run_preload(py, [prog], tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (ref.returncode, ref.stdout, ref.stderr) == \
        (1, b"", ref.stderr), describe(p)
    assert ref.stderr.endswith(b"RuntimeError: boom\n")
    check_complete(prof, prog)


def test_sys_exit(py, tmp_path):
    prog = ending_prog(tmp_path, "sys.exit(4)")
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 4 and p.stderr == b"", describe(p)
    check_complete(prof, prog)


def test_sigint_self(py, tmp_path):
    """os.kill(self, SIGINT) raises KeyboardInterrupt inside os.kill; uncaught,
    Python exits by SIGINT (returncode -2) after finalisation."""
    prog = ending_prog(tmp_path, "os.kill(os.getpid(), signal.SIGINT)")
    ref = run_plain(py, [prog], tmp_path)
    assert ref.returncode == -signal.SIGINT, describe(ref)
    p, prof = run_preload(py, [prog], tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (ref.returncode, ref.stdout, ref.stderr), \
        describe(p) + describe(ref)
    assert b"KeyboardInterrupt" in p.stderr
    check_complete(prof, prog)


SPIN = """
import sys, time

def leaf(i):
    return i + 1

def before():
    return sum(leaf(i) for i in range(10))

def tick():
    time.sleep(0.002)

def spin():
    tick()
    print("ready", flush=True)
    while True:
        tick()

def main():
    before()
    spin()

main()
"""


def run_until_ready_then(py, argv, env, cwd, sig):
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=cwd)
    try:
        line = proc.stdout.readline()
        assert line == b"ready\n", (line, proc.stderr.read() if proc.poll() is not None else b"")
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=TIMEOUT)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    cp = subprocess.CompletedProcess(proc.args, proc.returncode, line + out, err)
    cp.elapsed = elapsed
    return cp


# Dying by a signal takes milliseconds without the profiler; writing a small
# profile first must not make it take seconds.
SIGNAL_EXIT_LIMIT = 5.0


def test_sigterm_after_ready(py, tmp_path):
    prog = write_prog(tmp_path, SPIN)
    ref = run_until_ready_then(py, [py.exe, prog], clean_env(), tmp_path, signal.SIGTERM)
    assert ref.returncode == -signal.SIGTERM, describe(ref)
    out = tmp_path / "term.cpyprof"
    p = run_until_ready_then(py, [py.exe, prog], preload_env(out), tmp_path, signal.SIGTERM)
    assert p.returncode == -signal.SIGTERM, describe(p)
    assert (p.stdout, p.stderr) == (ref.stdout, ref.stderr) == (b"ready\n", b""), describe(p)
    prof = load_profile(p, out)
    assert not prof.truncated, prof.summary()
    assert prof.func("leaf", prog)["calls"] == 10, prof.summary()
    assert prof.func("before", prog)["calls"] == 1, prof.summary()
    assert prof.func("spin", prog)["calls"] == 1, prof.summary()
    assert prof.func("main", prog)["calls"] == 1, prof.summary()
    assert prof.func("tick", prog)["calls"] >= 1, prof.summary()
    rep = run([CLI, "report", out])
    assert rep.returncode == 0 and b"spin" in rep.stdout, describe(rep)
    assert p.elapsed < SIGNAL_EXIT_LIMIT, \
        "took %.2f s to die after SIGTERM (%.3f s without the profiler)" % (p.elapsed, ref.elapsed)


def test_sigint_after_ready(py, tmp_path):
    prog = write_prog(tmp_path, SPIN)
    out = tmp_path / "int.cpyprof"
    p = run_until_ready_then(py, [py.exe, prog], preload_env(out), tmp_path, signal.SIGINT)
    assert p.returncode == -signal.SIGINT, describe(p)
    assert p.elapsed < SIGNAL_EXIT_LIMIT, "took %.2f s to die after SIGINT" % p.elapsed
    assert p.stderr.startswith(b"Traceback") and p.stderr.endswith(b"KeyboardInterrupt\n"), \
        describe(p)
    prof = load_profile(p, out)
    assert not prof.truncated, prof.summary()
    assert prof.func("before", prog)["calls"] == 1, prof.summary()
    assert prof.func("spin", prog)["calls"] == 1, prof.summary()


def test_program_own_sigterm_handler_is_kept(py, tmp_path):
    """A program with its own SIGTERM handler keeps it."""
    prog = write_prog(tmp_path, """
        import os, signal, sys
        def handler(sig, frame):
            print("handled", sig, flush=True)
            sys.exit(11)
        def main():
            signal.signal(signal.SIGTERM, handler)
            os.kill(os.getpid(), signal.SIGTERM)
            print("not reached")
        main()
    """)
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 11 and p.stdout == b"handled 15\n" and p.stderr == b"", describe(p)
    assert not prof.truncated
    assert prof.func("handler", prog)["calls"] == 1, prof.summary()


def test_os_exit_is_truncated(py, tmp_path):
    prog = ending_prog(tmp_path, "sys.stdout.flush(); os._exit(0)")
    out = tmp_path / "osexit.cpyprof"
    p, _ = run_preload(py, [prog], tmp_path, out=out, expect_profile=False)
    assert p.returncode == 0 and p.stdout == b"" and p.stderr == b"", describe(p)
    assert out.exists(), "nothing streamed before os._exit" + describe(p)
    rep = run([CLI, "report", out])
    assert rep.returncode >= 0, describe(rep)
    msg = (rep.stdout + rep.stderr).decode("utf-8", "replace").lower()
    assert "truncated" in msg, describe(rep)
    js = run([CLI, "report", out, "--json"])
    assert js.returncode >= 0, describe(js)
    if js.returncode == 0:
        import json
        assert json.loads(js.stdout)["truncated"] is True, describe(js)


def test_ctrl_c_on_record_process_group(py, tmp_path):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground group: the
    `cpyprof record` command and the program. The program gets its
    KeyboardInterrupt, the profile is written, and record dies by SIGINT like
    the program did."""
    import os
    prog = write_prog(tmp_path, SPIN)
    out = tmp_path / "ctrlc.cpyprof"
    proc = subprocess.Popen([str(CLI), "record", "-q", "-o", str(out), "--", py.exe, str(prog)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(),
                            cwd=tmp_path, start_new_session=True)
    try:
        line = proc.stdout.readline()
        assert line == b"ready\n", (line, proc.poll())
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == -signal.SIGINT, (proc.returncode, err)
    assert err.endswith(b"KeyboardInterrupt\n"), err
    assert err.count(b"KeyboardInterrupt") == 1, err
    prof = load_profile(subprocess.CompletedProcess(proc.args, proc.returncode, b"", err), out)
    assert not prof.truncated, prof.summary()
    assert prof.func("spin", prog)["calls"] == 1, prof.summary()
    assert prof.func("before", prog)["calls"] == 1, prof.summary()


def test_sigterm_to_record_alone_is_forwarded(py, tmp_path):
    """A job runner sends SIGTERM to `cpyprof record` only (docs/usage.md):
    it is passed on to the program, which writes its profile and dies by
    SIGTERM; record dies by SIGTERM too."""
    prog = write_prog(tmp_path, SPIN)
    out = tmp_path / "fwd.cpyprof"
    p = run_until_ready_then(py, [CLI, "record", "-q", "-o", out, "--", py.exe, prog],
                             clean_env(), tmp_path, signal.SIGTERM)
    assert p.returncode == -signal.SIGTERM, describe(p)
    assert p.stdout == b"ready\n" and p.stderr == b"", describe(p)
    prof = load_profile(p, out)
    assert not prof.truncated, prof.summary()
    assert prof.func("spin", prog)["calls"] == 1, prof.summary()
    assert p.elapsed < SIGNAL_EXIT_LIMIT, "took %.2f s" % p.elapsed


def test_sigterm_with_busy_threads(py, tmp_path):
    prog = write_prog(tmp_path, """
        import threading, time
        def leaf():
            return 1
        def busy():
            while True:
                leaf()
        def napper():
            while True:
                time.sleep(0.001)
        def main():
            for i in range(2):
                threading.Thread(target=busy, name="busy-%d" % i, daemon=True).start()
                threading.Thread(target=napper, name="nap-%d" % i, daemon=True).start()
            time.sleep(0.1)
            print("ready", flush=True)
            while True:
                time.sleep(0.01)
        main()
    """)
    out = tmp_path / "busy.cpyprof"
    p = run_until_ready_then(py, [py.exe, prog], preload_env(out), tmp_path, signal.SIGTERM)
    assert p.returncode == -signal.SIGTERM, describe(p)
    assert (p.stdout, p.stderr) == (b"ready\n", b""), describe(p)
    prof = load_profile(p, out)
    assert not prof.truncated, prof.summary()
    assert sorted(t["name"] for t in prof.threads) == \
        ["MainThread", "busy-0", "busy-1", "nap-0", "nap-1"], prof.threads
    assert prof.func("busy", prog)["calls"] == 2 and prof.func("napper", prog)["calls"] == 2
    assert prof.func("leaf", prog)["calls"] > 0
    assert p.elapsed < SIGNAL_EXIT_LIMIT, "took %.2f s" % p.elapsed
