"""Edge cases of the allocation wrappers' fast paths (src/python/alloc.c):
the wrapper set is chosen per run by the site source (frame or shadow
stack), so runs of different modes in one process each count exactly; an
allocation made while the innermost frame is still incomplete (its cells
being made) belongs to the caller in the sampling mode (the frame is the
site), also when the caller's code object is the one cached."""
import json
import textwrap

from conftest import CLI, describe, run, run_import, write_prog

N = 200


def alloc_rows(path):
    p = run([CLI, "report", "--json", path])
    assert p.returncode == 0, describe(p)
    return {f["name"]: f for f in json.loads(p.stdout)["alloc"]["functions"]}


# make(): bytearray(1000) is two allocations (object, buffer of 1001 bytes),
# no free list; the loop's ints stay below 257. with_cell() makes its cell
# (MAKE_CELL, before the frame is complete: counted under the caller) and
# a closure (counted under with_cell). caller's list holds None only, so
# the caller itself frees nothing: the last allocation before each call of
# with_cell is with_cell's own closure, and the cell of the next call meets
# the cached code object in a frame not yet complete (must go to caller).
PROG = textwrap.dedent("""
    import json, sys, cpyprof
    def make(out, n):
        i = 0
        while i < n:
            out[i] = bytearray(1000)
            i += 1
    def with_cell():
        x = None
        return lambda: x
    def caller(out, n):
        i = 0
        while i < n:
            out[i] = with_cell()
            i += 1
    out = [None] * %(n)d
    for k, mode in enumerate(["sample", "trace", "sample", "trace"]):
        cpyprof.start(sys.argv[1] + str(k), mode=mode, rate=1, alloc=True, quiet=True)
        make(out, %(n)d)
        caller([None] * %(n)d, %(n)d)
        cpyprof.stop()
        out = [None] * %(n)d
    print(json.dumps({"basic": bytearray.__basicsize__,
                      "cell": sys.getsizeof((lambda y: (lambda: y))(1).__closure__[0])}))
""")


def test_modes_alternate_and_cells_go_to_the_caller(py, tmp_path):
    prog = write_prog(tmp_path, PROG % {"n": N})
    out = tmp_path / "fp.cpyprof"
    p, _ = run_import(py, [prog, out], out.with_name("fp.cpyprof0"), tmp_path)
    assert p.returncode == 0, describe(p)
    sizes = json.loads(p.stdout.decode().splitlines()[-1])
    for k in range(4):
        rows = alloc_rows(str(out) + str(k))
        make = rows["make"]
        assert (make["allocs"], make["alloc_bytes"]) == (
            2 * N, N * (sizes["basic"] + 1001)), (k, make)
        if k % 2:
            continue  # trace: the site is the hook's shadow stack, not the frame
        caller = rows["caller"]
        assert (caller["allocs"], caller["alloc_bytes"]) == (N, N * sizes["cell"]), (k, caller)
