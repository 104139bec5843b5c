"""Error paths: bad settings, unwritable output, unsupported Pythons, bad
command lines and bad profile files. Never a crash, one clear message."""
import os
import shutil
from pathlib import Path

import pytest

from conftest import (CLI, LIB, clean_env, describe, run, run_plain, run_preload, run_record,
                      write_prog)

PROG = """
import sys
def main():
    print("out", sys.argv[1:])
    print("own stderr line", file=sys.stderr)
    sys.exit(5)
main()
"""


def cpyprof_lines(stderr):
    return [l for l in stderr.decode("utf-8", "replace").splitlines(True)
            if l.startswith("cpyprof:")]


def without_cpyprof_lines(stderr):
    return "".join(l for l in stderr.decode("utf-8", "replace").splitlines(True)
                   if not l.startswith("cpyprof:")).encode()


@pytest.mark.parametrize("var,value,needle", [
    ("CPYPROF_MODE", "bogus", "CPYPROF_MODE"),
    ("CPYPROF_RAET", "1", "CPYPROF_RAET"),
    ("CPYPROF_BUILTINS", "maybe", "CPYPROF_BUILTINS"),
    ("CPYPROF_RING_SIZE", "lots", "CPYPROF_RING_SIZE"),
    ("CPYPROF_MAX_DEPTH", "deep", "CPYPROF_MAX_DEPTH"),
    ("CPYPROF_OUTPUT", "/nonexistent/dir/x", "/nonexistent/dir/x"),
    ("CPYPROF_OUTPUT", "/", "cannot write profile '/': "),
    ("CPYPROF_OUTPUT", "/dev/full", "cannot write profile '/dev/full': "),
    ("CPYPROF_TRANSPORT", "carrier-pigeon", "CPYPROF_TRANSPORT"),
    ("CPYPROF_MODE", "", "CPYPROF_MODE"),
    ("CPYPROF_MAX_DEPTH", "5", "CPYPROF_MAX_DEPTH"),
    ("CPYPROF_RING_SIZE", "1K", "CPYPROF_RING_SIZE"),
])
def test_bad_setting_disables_cleanly(py, tmp_path, var, value, needle):
    prog = write_prog(tmp_path, PROG)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    ref = run_plain(py, [prog, "a"], tmp_path, cwd=cwd)
    assert ref.returncode == 5
    out = tmp_path / "never.cpyprof"
    extra = {"CPYPROF_OUTPUT": out}
    extra[var] = value
    env = clean_env(LD_PRELOAD=LIB, **extra)
    p = run([py.exe, prog, "a"], env=env, cwd=cwd)
    lines = cpyprof_lines(p.stderr)
    assert len(lines) == 1, describe(p)
    line = lines[0]
    assert needle in line, line
    if var == "CPYPROF_OUTPUT":
        assert line.startswith("cpyprof: cannot write profile '%s': " % value), line
    assert line.rstrip("\n").endswith("; profiling disabled"), line
    assert p.stdout == ref.stdout, describe(p)
    assert without_cpyprof_lines(p.stderr) == ref.stderr, describe(p)
    assert p.returncode == ref.returncode, describe(p)
    assert not out.exists()
    assert list(cwd.iterdir()) == [], "files created: %r" % list(cwd.iterdir())
    assert "profiling disabled" not in p.stdout.decode("utf-8", "replace")


def test_record_bad_option(py, tmp_path):
    marker = tmp_path / "ran"
    prog = write_prog(tmp_path, "open(%r, 'w').close()\n" % str(marker))
    p = run([CLI, "record", "--bogus", "--", py.exe, prog], cwd=tmp_path)
    assert p.returncode == 2, describe(p)
    assert p.stderr.strip(), describe(p)
    assert b"bogus" in p.stderr, describe(p)
    assert p.stdout == b"", describe(p)
    assert not marker.exists(), "the program ran despite the bad option"


@pytest.mark.parametrize("opts", [["--bogus"], ["--max-depth", "5"], ["--max-depth", "x"],
                                  ["--ring-size", "1K"], ["--mode", "bogus"], ["-o"]])
def test_record_bad_options_do_not_run_the_program(py, tmp_path, opts):
    marker = tmp_path / "ran"
    prog = write_prog(tmp_path, "open(%r, 'w').close()\n" % str(marker))
    argv = [CLI, "record", *opts] + ([] if opts == ["-o"] else ["--", py.exe, prog])
    p = run(argv, cwd=tmp_path)
    assert p.returncode == 2, describe(p)
    assert p.stderr.startswith(b"cpyprof"), describe(p)
    assert p.stdout == b""
    assert not marker.exists()


@pytest.mark.parametrize("opts", [["--sort", "bogus"], ["--limit", "x"], ["--bogus"]])
def test_report_bad_options(good_profile, opts):
    p = run([CLI, "report", good_profile, *opts])
    assert p.returncode == 2 and p.stderr.strip() and p.stdout == b"", describe(p)


def test_cli_help_and_version():
    for argv in (["--help"], ["--version"], ["record", "--help"], ["report", "--help"],
                 ["convert", "--help"], ["flame", "--help"]):
        p = run([CLI, *argv])
        assert p.returncode == 0, describe(p)
        assert p.stdout.strip(), describe(p)
    p = run([CLI, "--version"])
    assert b"0.1.0" in p.stdout, describe(p)
    p = run([CLI, "nosuchcommand"])
    assert p.returncode > 0 and p.stderr.strip(), describe(p)


DBG = [p for p in ("/usr/bin/python3.11-dbg", "/usr/bin/python3-dbg") if os.path.exists(p)]


@pytest.mark.skipif(not DBG, reason="no Debian debug python installed")
@pytest.mark.parametrize("dbg", DBG)
def test_debug_python_unsupported(tmp_path, dbg):
    prog = write_prog(tmp_path, PROG)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    ref = run([dbg, prog, "d"], cwd=cwd)
    out = tmp_path / "dbg.cpyprof"
    p = run([dbg, prog, "d"], env=clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=out), cwd=cwd)
    lines = cpyprof_lines(p.stderr)
    assert len(lines) == 1, describe(p)
    assert lines[0].startswith("cpyprof: unsupported Python"), lines
    assert lines[0].rstrip("\n").endswith("; profiling disabled"), lines
    assert (p.stdout, without_cpyprof_lines(p.stderr), p.returncode) == \
        (ref.stdout, ref.stderr, ref.returncode), describe(p) + describe(ref)
    assert ref.returncode == 5
    assert not out.exists()


# ---- bad profile files ----------------------------------------------------

@pytest.fixture
def good_profile(tmp_path):
    """A real, complete profile from the Debian python."""
    prog = write_prog(tmp_path, """
        def f(i): return i
        def main():
            return [f(i) for i in range(2000)]
        main()
    """)
    from conftest import PYTHONS
    p, prof = run_record(PYTHONS[0], [prog], tmp_path, out=tmp_path / "good.cpyprof")
    assert p.returncode == 0 and not prof.truncated, describe(p)
    return tmp_path / "good.cpyprof"


def report_all(path):
    return run([CLI, "report", path]), run([CLI, "report", path, "--json"])


def one_message(p):
    text = p.stderr.decode("utf-8", "replace").strip()
    assert text, describe(p)
    assert len(text.splitlines()) == 1, "expected one message line" + describe(p)
    return text


def test_report_cut_in_half(good_profile, tmp_path):
    data = good_profile.read_bytes()
    cut = tmp_path / "cut.cpyprof"
    cut.write_bytes(data[: len(data) // 2])
    for p in report_all(cut):
        assert p.returncode >= 0, "crashed" + describe(p)
        msg = (p.stdout + p.stderr).decode("utf-8", "replace").lower()
        assert "truncated" in msg, describe(p)
        if p.returncode == 0 and b"--json" in b" ".join(str(a).encode() for a in p.args):
            import json
            assert json.loads(p.stdout)["truncated"] is True


def test_report_corrupt(good_profile, tmp_path):
    data = bytearray(good_profile.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 8):
        data[i] ^= 0xFF
    bad = tmp_path / "corrupt.cpyprof"
    bad.write_bytes(bytes(data))
    for p in report_all(bad):
        assert p.returncode >= 0, "crashed" + describe(p)
        msg = (p.stdout + p.stderr).decode("utf-8", "replace").lower()
        if p.returncode == 0:
            # kept what came before the bad chunk, and said so
            assert "corrupt" in msg or "crc" in msg or "truncated" in msg, describe(p)
            assert p.stderr.strip(), describe(p)
        else:
            text = one_message(p).lower()
            assert "corrupt" in text or "crc" in text or "checksum" in text or "invalid" in text, \
                describe(p)


@pytest.mark.parametrize("content", [b"", b"hello, this is not a profile\n" * 20,
                                     b"CPYPROF\x00", b"CPYPROF\x00\x63\x00\x00\x00\x00\x00\x00\x00",
                                     bytes(range(256))])
def test_report_not_a_profile(tmp_path, content):
    bad = tmp_path / "bad.cpyprof"
    bad.write_bytes(content)
    for p in report_all(bad):
        assert p.returncode > 0, describe(p)
        text = one_message(p)
        assert "bad.cpyprof" in text, "the message should name the file" + describe(p)
        assert p.stdout == b"", describe(p)
    for argv in (["convert", bad, "--to", "folded", "-o", "-"], ["flame", bad, "-o", tmp_path / "x.svg"]):
        p = run([CLI, *argv])
        assert p.returncode > 0, describe(p)
        one_message(p)


def test_report_missing_file(tmp_path):
    p = run([CLI, "report", tmp_path / "nope.cpyprof"])
    assert p.returncode > 0, describe(p)
    assert "nope.cpyprof" in one_message(p)
