"""The instruction counter's descriptor (src/python/hwcount.c) never shows in
the program's descriptor table once the writer thread runs: the starting
thread opens it (close-on-exec, moved high) and, when the writer has a
descriptor table of its own (src/python/drain.c), closes its copy and leaves
the counter to the writer, which reads it when its loop ends at stop.

These development VMs have no hardware counters, so the tests preload
tests/shims/fake_perf.c before the library: perf_event_open then returns a
memfd named "fake-perf" that reads as the count 424242. A test without the
shim checks the real counter where the machine has one and says why it was
skipped otherwise."""
import json
import textwrap

import pytest

from conftest import BUILD, LIB, PYPKG, Profile, clean_env, describe, run, run_preload, write_prog

FAKE = BUILD / "fake_perf.so"
FAKE_COUNT = "424242"

LIST = """
    import json, os, subprocess, sys
    def counter_fds():
        out = []
        for n in os.listdir("/proc/self/fd"):
            try:
                link = os.readlink("/proc/self/fd/" + n)
            except OSError:
                continue  # the listing's own descriptor, closed meanwhile
            if link == "anon_inode:[perf_event]" or "fake-perf" in link:
                out.append(int(n))
        return out
"""

PROG = textwrap.dedent(LIST) + textwrap.dedent("""
    if sys.argv[1:] == ["child"]:
        print(json.dumps(counter_fds()))
        sys.exit(0)
    mine = counter_fds()
    child = subprocess.run([sys.executable, __file__, "child"], close_fds=False,
                           capture_output=True, check=True).stdout.decode()
    print(json.dumps({"parent": mine, "child": json.loads(child)}))
""")


def test_counter_descriptor_is_not_inherited(py, tmp_path):
    """The real counter, where the machine has one."""
    prog = write_prog(tmp_path, PROG)
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 0, describe(p)
    res = json.loads(p.stdout.decode().splitlines()[-1])
    meta = prof.json["meta"]
    if "instructions" not in meta:
        pytest.skip("no instruction counter: %s"
                    % meta.get("instructions_unavailable", "(no reason in META)"))
    assert res == {"parent": [], "child": []}, res


@pytest.mark.parametrize("mode", ["trace", "sample"])
def test_program_never_sees_the_counter(py, tmp_path, mode):
    prog = write_prog(tmp_path, PROG)
    out = tmp_path / "p.cpyprof"
    p = run([py.exe, str(prog)], cwd=tmp_path,
            env=clean_env(LD_PRELOAD="%s %s" % (FAKE, LIB), CPYPROF_OUTPUT=out,
                          CPYPROF_MODE=mode))
    assert p.returncode == 0, describe(p)
    res = json.loads(p.stdout.decode().splitlines()[-1])
    assert res == {"parent": [], "child": []}, res
    meta = Profile(out).json["meta"]
    assert meta.get("instructions") == FAKE_COUNT, meta


RESTART = textwrap.dedent(LIST) + textwrap.dedent("""
    import cpyprof
    seen = []
    for i in range(3):
        cpyprof.start(sys.argv[1] + "/run%d.cpyprof" % i)
        sum(range(1000))
        seen.append(counter_fds())
        cpyprof.stop()
        seen.append(counter_fds())
    print(json.dumps(seen))
""")


def test_counter_across_start_stop_cycles(py, tmp_path):
    """Each run opens a counter, hands it to its writer and reads it there;
    no run leaves a descriptor behind or closes one of the program's."""
    prog = write_prog(tmp_path, RESTART)
    p = run([py.exe, str(prog), str(tmp_path)], cwd=tmp_path,
            env=clean_env(LD_PRELOAD=FAKE, PYTHONPATH=PYPKG))
    assert p.returncode == 0, describe(p)
    assert json.loads(p.stdout.decode().splitlines()[-1]) == [[]] * 6, describe(p)
    for i in range(3):
        meta = Profile(tmp_path / ("run%d.cpyprof" % i)).json["meta"]
        assert meta.get("instructions") == FAKE_COUNT, (i, meta)
