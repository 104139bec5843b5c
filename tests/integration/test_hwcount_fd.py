"""The instruction counter's descriptor (src/python/hwcount.c) is opened by
the starting thread in the program's own descriptor table, so the program
can see it in /proc/self/fd; it is opened close-on-exec
(PERF_FLAG_FD_CLOEXEC), so a child the program execs, even with
close_fds=False, inherits nothing of it. Where the machine has no hardware
counters (many virtual machines) there is no descriptor and the test is
skipped, saying so."""
import json
import textwrap

import pytest

from conftest import describe, run_preload, write_prog

PROG = textwrap.dedent("""
    import json, os, subprocess, sys
    def perf_fds():
        out = []
        for n in os.listdir("/proc/self/fd"):
            try:
                if os.readlink("/proc/self/fd/" + n) == "anon_inode:[perf_event]":
                    out.append(int(n))
            except OSError:
                pass  # the listing's own descriptor, closed meanwhile
        return out
    if sys.argv[1:] == ["child"]:
        print(json.dumps(perf_fds()))
        sys.exit(0)
    mine = perf_fds()
    child = subprocess.run([sys.executable, __file__, "child"], close_fds=False,
                           capture_output=True, check=True).stdout.decode()
    print(json.dumps({"parent": mine, "child": json.loads(child)}))
""")


def test_counter_descriptor_is_not_inherited(py, tmp_path):
    prog = write_prog(tmp_path, PROG)
    p, prof = run_preload(py, [prog], tmp_path)
    assert p.returncode == 0, describe(p)
    res = json.loads(p.stdout.decode().splitlines()[-1])
    if not res["parent"]:
        pytest.skip("no instruction counter open: %s"
                    % prof.json["meta"].get("instructions_unavailable", "(no reason in META)"))
    assert res["child"] == [], res
