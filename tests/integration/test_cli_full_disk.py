"""Every `cpyprof` command that writes to standard output says so, and fails,
when that output cannot be written (a full disk: /dev/full), instead of
exiting 0 with the report lost."""
import subprocess

import pytest

from conftest import CLI, DEBIAN_PYTHON, TIMEOUT, clean_env, describe, run, write_prog

PROG = """
import threading
def spin():
    s = 0
    for i in range(200000):
        s += i
    return [bytearray(64) for _ in range(100)]
t = threading.Thread(target=spin)
t.start()
spin()
t.join()
"""


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    """A trace-mode profile with GIL and allocation data, and a timeline."""
    tmp = tmp_path_factory.mktemp("fulldisk")
    prog = write_prog(tmp, PROG)
    made = {}
    for name, opts in (("trace", ["--gil", "--alloc"]), ("timeline", ["--mode", "timeline"])):
        out = tmp / ("%s.cpyprof" % name)
        p = run([CLI, "record", "-q", *opts, "-o", out, "--", DEBIAN_PYTHON, prog],
                env=clean_env(), cwd=tmp)
        assert p.returncode == 0, describe(p)
        made[name] = out
    return made


@pytest.mark.parametrize("args", [
    ["report"], ["report", "--json"], ["report", "--threads"], ["gil"], ["gil", "--json"],
    ["flame", "-o", "-"], ["flame", "--alloc-bytes", "-o", "-"],
    ["convert", "--to", "folded", "-o", "-"], ["convert", "--to", "speedscope", "-o", "-"],
    ["convert", "--to", "chrome", "-o", "-"], ["convert", "--to", "pprof", "-o", "-"],
    ["diff", "PROFILE"],
], ids=lambda a: " ".join(a))
def test_full_stdout_is_an_error(profiles, args):
    profile = profiles["timeline" if "chrome" in args else "trace"]
    argv = [CLI, *(str(profile) if a == "PROFILE" else a for a in args), str(profile)]
    with open("/dev/full", "wb") as full:
        p = subprocess.run([str(a) for a in argv], stdout=full, stderr=subprocess.PIPE,
                           stdin=subprocess.DEVNULL, env=clean_env(), timeout=TIMEOUT)
    err = p.stderr.decode()
    assert p.returncode != 0, describe(p)
    assert "No space left on device" in err, describe(p)  # what, and why
    assert len(err.strip().splitlines()) == 1, describe(p)
