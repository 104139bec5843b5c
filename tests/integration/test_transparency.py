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
    "exit_message": ("""
        import sys
        def main():
            sys.exit("fatal: a message")
        main()
    """, b""),
}

EXPECTED_CODE = {"prints": 0, "stdin": 0, "uncaught": 1, "exit7": 7, "exit_message": 1}


@pytest.mark.parametrize("how", ["preload", "record"])
@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_output_identical(py, tmp_path, name, how):
    source, stdin = PROGRAMS[name]
    prog = write_prog(tmp_path, source)
    ref = run_plain(py, [prog], tmp_path, input=stdin)
    assert ref.returncode == EXPECTED_CODE[name], describe(ref)
    if how == "preload":
        p, prof = run_preload(py, [prog], tmp_path, input=stdin)
    else:
        p, prof = run_record(py, [prog], tmp_path, input=stdin)
    assert p.stdout == ref.stdout, describe(p) + describe(ref)
    assert p.stderr == ref.stderr, describe(p) + describe(ref)
    assert p.returncode == ref.returncode, describe(p) + describe(ref)
    # and the profile is complete
    assert not prof.truncated, prof.summary()
    assert prof.func("<module>", prog)["calls"] == 1, prof.summary()
    if name == "uncaught":
        assert b"Traceback (most recent call last)" in p.stderr
        assert b"KeyError: 'missing'" in p.stderr
        assert prof.func("inner", prog)["calls"] == 1, prof.summary()
        assert ("outer", "inner") in prof.stacks_under("outer"), prof.summary()
