"""A 0-byte profile: what a process killed (SIGKILL) between creating its
output file and writing the 16-byte header leaves (writer.c does both at
once, so the window is too short to hit on purpose: the file is made empty
here). Every command that reads a profile says in one line on stderr what
the file is (empty, nothing kept, and the likely why) and fails; nothing on
stdout, no output file."""
import pytest

from conftest import CLI, describe, run

MSG = ("empty file (0 bytes), nothing was kept: the profiled process ended before it "
       "wrote the profile's header (killed?)")


def check_refused(p, path):
    assert p.returncode != 0, describe(p)
    assert p.stdout == b"", describe(p)
    lines = p.stderr.decode().strip().splitlines()
    assert lines == ["cpyprof: %s: %s" % (path, MSG)], describe(p)


@pytest.mark.parametrize("cmd", [["report"], ["report", "--json"], ["flame", "-o", "{out}"],
                                 ["convert", "--to", "folded", "-o", "{out}"], ["gil"]],
                         ids=["report", "report-json", "flame", "convert", "gil"])
def test_every_reader_says_empty(tmp_path, cmd):
    empty = tmp_path / "killed.cpyprof"
    empty.write_bytes(b"")
    out = tmp_path / "out.file"
    argv = [CLI] + [a.format(out=out) for a in cmd] + [empty]
    p = run(argv)
    check_refused(p, empty)
    assert not out.exists()

