"""Where the allocation counter keeps block sizes (src/python/alloc.c,
core/flatshadow.h): blocks of any size, and the same counts when the flat
shadow's 128 MiB window reservations are refused (a tight address-space
limit, as `ulimit -v` sets): the sizes then go to the hash map, and every
free still finds its block's size; and none is made under any
address-space limit, however roomy. The program checks which case it is
in: the windows are the only mappings of 128 MiB or more marked
MADV_DONTDUMP."""
import json
import textwrap

import pytest

from conftest import CLI, describe, run, run_import, write_prog

N = 100

# make(): bytearray(n) is two allocations (the object, n + 1 bytes of
# buffer), none from a free list; 100000 bytes is above the flat shadow's
# 64 KiB (its size goes to the map), 1000 and 16 below it. drop() frees
# them all. The loop's ints stay below 257. With LIMIT the program caps
# its address space (RLIMIT_AS) at what it uses now plus 96 MiB before
# starting: a 128 MiB window cannot be reserved. With ROOMY the cap is 16 GiB
# above that, room for every reservation; none is made all the same, since
# under any RLIMIT_AS they would spend the program's own budget
# (core/reserve.h).
PROG = textwrap.dedent("""
    import json, resource, sys
    if sys.argv[2] != "nolimit":
        with open("/proc/self/status") as f:
            vm = [l for l in f if l.startswith("VmSize:")][0].split()[1]
        cap = int(vm) * 1024 + ((96 << 20) if sys.argv[2] == "limit" else (16 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import cpyprof
    def make(out, n, sizes):
        i = 0
        while i < n:
            out[i] = bytearray(sizes[i %% 3])
            i += 1
    def drop(out, n):
        i = 0
        while i < n:
            out[i] = None
            i += 1
    out = [None] * %(n)d
    sizes = (16, 1000, 100000)
    def windows():  # mappings of 128 MiB or more kept out of core dumps
        n, size = 0, 0  # (the flat shadow's windows; neighbours may merge)
        with open("/proc/self/smaps") as f:
            for l in f:
                head = l.split()[0]
                if "-" in head and not head.endswith(":"):
                    a, b = head.split("-")
                    size = int(b, 16) - int(a, 16)
                elif head == "VmFlags:" and "dd" in l.split()[1:]:
                    n += size >= 128 << 20
        return n
    cpyprof.start(sys.argv[1], mode=sys.argv[3], rate=1, alloc=True, quiet=True)
    make(out, %(n)d, sizes)
    seen = windows()
    drop(out, %(n)d)
    make(out, %(n)d, sizes)
    drop(out, %(n)d)
    cpyprof.stop()
    print(json.dumps({"basic": bytearray.__basicsize__, "windows": seen}))
""")


@pytest.mark.parametrize("limit", ["nolimit", "limit", "roomy"])
@pytest.mark.parametrize("mode", ["sample", "trace"])
def test_sizes_of_every_block_are_found_again(py, tmp_path, limit, mode):
    prog = write_prog(tmp_path, PROG % {"n": N})
    out = tmp_path / "fs.cpyprof"
    p, _ = run_import(py, [prog, out, limit, mode], out, tmp_path)
    assert p.returncode == 0, describe(p)
    got = json.loads(p.stdout.decode().splitlines()[-1])
    basic = got["basic"]
    # the case is the one meant: windows mapped, or refused
    assert (got["windows"] > 0) == (limit == "nolimit"), got
    r = run([CLI, "report", "--json", out])
    assert r.returncode == 0, describe(r)
    doc = json.loads(r.stdout)
    rows = {f["name"]: f for f in doc["alloc"]["functions"]}
    # sizes[i % 3] for i in 0..N-1, twice
    per_round = sum(basic + (16, 1000, 100000)[i % 3] + 1 for i in range(N))
    make, drop = rows["make"], rows["drop"]
    assert (make["allocs"], make["alloc_bytes"]) == (4 * N, 2 * per_round), make
    assert (make["frees"], make["free_bytes"]) == (0, 0), make
    assert (drop["allocs"], drop["frees"], drop["free_bytes"]) == (0, 4 * N, 2 * per_round), drop
    assert doc["alloc"]["peak_bytes"] >= per_round
