"""`report`, `flame` and `convert` given several profiles (or a directory, as
written with --subprocesses) where some hold nothing: a 0-byte file (a
process killed between creating its profile and writing the header) or only
the 16-byte header. Such a file gets one warning line on stderr saying what
and why, and the others are merged as if it were not there; only when every
file is empty does the command fail. Before, one such file failed the whole
command and the run's other processes could not be read."""
import json

import pytest

from conftest import CLI, LIB, clean_env, describe, run, write_prog

PROG = """
def work(n):
    return sum(i for i in range(n))

for _ in range(3):
    work(100)
"""

EMPTY_MSG = ("empty file (0 bytes), nothing was kept (the process ended before it wrote "
             "the profile's header); left out of the merge")
HEADER_MSG = ("no chunk after the header, nothing was kept (the process ended as it "
              "started); left out of the merge")


def record_two(py, tmp_path):
    prog = write_prog(tmp_path, PROG)
    d = tmp_path / "profiles"
    d.mkdir()
    for name in ("a", "b"):
        env = clean_env(LD_PRELOAD=LIB, CPYPROF_OUTPUT=d / (name + ".cpyprof"))
        p = run([py.exe, prog], env=env, cwd=tmp_path)
        assert p.returncode == 0 and p.stderr == b"", describe(p)
    header = (d / "a.cpyprof").read_bytes()[:16]
    (d / "c-empty.cpyprof").write_bytes(b"")
    (d / "d-header.cpyprof").write_bytes(header)
    return prog, d


def warnings_of(p, d):
    return sorted(p.stderr.decode().splitlines()) == sorted([
        "cpyprof: warning: %s: %s" % (d / "c-empty.cpyprof", EMPTY_MSG),
        "cpyprof: warning: %s: %s" % (d / "d-header.cpyprof", HEADER_MSG)])


@pytest.mark.parametrize("as_dir", [False, True], ids=["files", "directory"])
def test_empty_parts_are_left_out(py, tmp_path, as_dir):
    prog, d = record_two(py, tmp_path)
    args = [d] if as_dir else sorted(d.iterdir())
    r = run([CLI, "report", *args, "--json"])
    assert r.returncode == 0, describe(r)
    assert warnings_of(r, d), describe(r)
    j = json.loads(r.stdout)
    assert j["meta"]["processes"] == "2"
    procs = [f for f in j["functions"] if f["name"].startswith("process ")]
    assert len(procs) == 2, procs
    assert sum(f["calls"] for f in j["functions"] if f["name"] == "work") == 6
    r = run([CLI, "report", *args])
    assert r.returncode == 0 and b"work" in r.stdout and warnings_of(r, d), describe(r)
    svg = tmp_path / "all.svg"
    r = run([CLI, "flame", *args, "-o", svg])
    assert r.returncode == 0 and warnings_of(r, d), describe(r)
    assert svg.read_text().count("process ") >= 2
    r = run([CLI, "convert", *args, "--to", "folded", "-o", "-"])
    assert r.returncode == 0 and warnings_of(r, d), describe(r)
    lines = r.stdout.decode().splitlines()
    roots = {l.split(";")[0] for l in lines}
    assert len(roots) == 2 and all(x.startswith("process ") for x in roots), roots


def test_only_empty_parts_fail(tmp_path):
    a, b = tmp_path / "a.cpyprof", tmp_path / "b.cpyprof"
    a.write_bytes(b"")
    b.write_bytes(b"")
    for cmd in (["report"], ["flame", "-o", tmp_path / "x.svg"]):
        r = run([CLI, *cmd, a, b])
        assert r.returncode == 1 and r.stdout == b"", describe(r)
        lines = r.stderr.decode().splitlines()
        assert lines[:2] == ["cpyprof: warning: %s: %s" % (f, EMPTY_MSG) for f in (a, b)]
        assert lines[2:] == ["cpyprof: none of the 2 files holds profile data"], lines
    assert not (tmp_path / "x.svg").exists()


def test_a_corrupt_part_still_fails(py, tmp_path):
    """Only files that hold nothing are left out: a file that is not a
    profile at all is an error, as before."""
    prog, d = record_two(py, tmp_path)
    bad = tmp_path / "bad.cpyprof"
    bad.write_bytes(b"not a profile at all")
    r = run([CLI, "report", d / "a.cpyprof", bad])
    assert r.returncode == 1, describe(r)
    assert b"bad magic" in r.stderr, describe(r)
