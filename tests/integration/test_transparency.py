"""The profiled program must not notice: stdout, stderr and exit code are
byte-identical with and without the profiler."""
import pytest

from conftest import describe, run_plain, run_preload, run_record, write_prog

PROGRAMS = {
    "prints": ("""
        import sys
        def main():
            for i in range(50):
                print("line", i, "é" * (i % 3))
            sys.stdout.write("no newline at end")
        main()
    """, b""),
    "stdin": ("""
        import sys
        def main():
            data = sys.stdin.buffer.read()
            sys.stdout.buffer.write(data[::-1])
            print(file=sys.stderr)
            print("read", len(data), "bytes", file=sys.stderr)
        main()
    """, bytes(range(256)) * 40),
    "uncaught": ("""
        import sys
        def inner(x):
            return {}[x]
        def outer():
            print("about to fail", flush=True)
            print("to stderr", file=sys.stderr, flush=True)
            inner("missing")
        outer()
    """, b""),
    "exit7": ("""
        import sys
        def main():
            print("bye")
            sys.exit(7)
        main()
    """, b""),
    "sleepy": ("""
        import os, select, subprocess, sys, threading, time
        def main():
            for _ in range(3):
                time.sleep(0.03)
                select.select([], [], [], 0.03)
                threading.Event().wait(0.03)
            r, w = os.pipe()
            def writer():
                time.sleep(0.05)
                os.write(w, b"late data")
                os.close(w)
            t = threading.Thread(target=writer)
            t.start()
            data = os.read(r, 100)
            t.join()
            out = subprocess.run(["/bin/sh", "-c", "sleep 0.05; echo child"], capture_output=True)
            print(data, out.stdout, out.returncode)
        main()
    """, b""),
    "exit_message": ("""
        import sys
        def main():
            sys.exit("fatal: a message")
        main()
    """, b""),
}

EXPECTED_CODE = {"prints": 0, "stdin": 0, "sleepy": 0, "uncaught": 1, "exit7": 7, "exit_message": 1}


@pytest.mark.parametrize("how", ["preload", "record", "preload-ring", "preload-sample"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_output_identical(py, tmp_path, name, how):
    source, stdin = PROGRAMS[name]
    prog = write_prog(tmp_path, source)
    ref = run_plain(py, [prog], tmp_path, input=stdin)
    assert ref.returncode == EXPECTED_CODE[name], describe(ref)
    if how.startswith("preload"):
        extra = {"preload-ring": {"CPYPROF_TRANSPORT": "ring"},
                 "preload-sample": {"CPYPROF_MODE": "sample", "CPYPROF_RATE": "1000",
                                    "CPYPROF_CLOCK": "wall"}}.get(how, {})
        p, prof = run_preload(py, [prog], tmp_path, input=stdin, env_extra=extra)
    else:
        p, prof = run_record(py, [prog], tmp_path, input=stdin)
    assert p.stdout == ref.stdout, describe(p) + describe(ref)
    assert p.stderr == ref.stderr, describe(p) + describe(ref)
    assert p.returncode == ref.returncode, describe(p) + describe(ref)
    # and the profile is complete
    assert not prof.truncated, prof.summary()
    if how == "preload-sample":
        return  # samples carry no call counts
    assert prof.func("<module>", prog)["calls"] == 1, prof.summary()
    if name == "uncaught":
        assert b"Traceback (most recent call last)" in p.stderr
        assert b"KeyError: 'missing'" in p.stderr
        assert prof.func("inner", prog)["calls"] == 1, prof.summary()
        assert ("outer", "inner") in prof.stacks_under("outer"), prof.summary()
