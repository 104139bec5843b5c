"""A suspended generator or coroutine holds no frame object because of us
(src/python/genframe.c). CPython 3.11 makes a frame object only when asked
for one, and a profile function is handed one at every event; before, every
generator suspended while profiled kept it, which CPython's
test_frame.test_sneaky_frame_object detects (it failed in every mode with a
profile hook), and which costs a frame object per suspended coroutine.

Each program prints what it observes; the output must be the same with and
without the profiler, in every mode that sets a profile hook."""
import pytest

from conftest import describe, modes_env, run_beside_plain

MODES = modes_env("trace", "ring", "timeline", "gil", "alloc")

# How many frame objects of gen()'s code exist once 50 generators are
# suspended (0 without a profile function), and what the program set on a
# generator's frame object itself is still there after more resumes.
COUNT_PROG = r"""
import asyncio, gc, sys

def gen(n):
    for i in range(n):
        yield i

def frames_of(gens):
    # a generator's GC traversal visits its frame object when it has one
    return sum(1 for g in gens for o in gc.get_referents(g) if type(o).__name__ == "frame")

gens = [gen(3) for _ in range(50)]
for g in gens:
    next(g)
print("suspended generators' frame objects:", frames_of(gens))

# a frame object the program asked for and changed stays the same object
g = gens[0]
fo = g.gi_frame
fo.f_trace_lines = False
ident = id(fo)
del fo
next(g)
print("kept:", g.gi_frame.f_trace_lines, id(g.gi_frame) == ident)

async def tick(n):
    for _ in range(n):
        await asyncio.sleep(0)

async def main():
    tasks = [asyncio.create_task(tick(3)) for _ in range(20)]
    await asyncio.sleep(0)
    print("suspended coroutines' frame objects:", frames_of([t.get_coro() for t in tasks]))
    await asyncio.gather(*tasks)

asyncio.run(main())
print("sum", sum(gen(10)))
"""

# The scenario of test_frame.test_sneaky_frame_object, in our words: a GC
# callback asks for a generator's frame object while the tracer's request
# for it triggers that very collection; gi_frame must be the callback's.
SNEAKY_PROG = r"""
import gc, sys

def trace(frame, event, arg):
    pass

def main():
    def f():
        while True:
            yield

    seen = None
    def callback(phase, info):
        nonlocal seen
        seen = sys._getframe().f_back
        gc.callbacks.remove(callback)

    old = gc.get_threshold()
    try:
        gc.disable()
        g = f()
        next(g)
        gc.collect()
        gc.set_threshold(1, 0, 0)
        sys.settrace(trace)
        gc.callbacks.append(callback)
        gc.enable()
        next(g)
    finally:
        sys.settrace(None)
        gc.set_threshold(*old)
        gc.enable()
    print("same frame:", g.gi_frame is seen, seen is not None and seen.f_code.co_name)

main()
"""

# With a tracer, generator frames keep their frame object across resumes
# (the tracer asked for it; the generator holds it): a tracer that only
# remembers id(frame) must see one frame object per generator.
TRACER_PROG = r"""
import sys

def gen(n):
    for i in range(n):
        yield i

ids = []
def tracer(frame, event, arg):
    if frame.f_code is gen.__code__:
        ids.append(id(frame))
    return tracer

sys.settrace(tracer)
g = gen(4)
total = sum(g)
sys.settrace(None)
print(total, "events:", len(ids), "frame objects:", len(set(ids)))
"""


def compare(py, tmp_path, src, mode):
    prog, p, _, prof = run_beside_plain(py, src, tmp_path, MODES[mode])
    return prog, p, prof


@pytest.mark.parametrize("mode", sorted(MODES))
def test_suspended_generators_keep_no_frame_object(py, tmp_path, mode):
    prog, p, prof = compare(py, tmp_path, COUNT_PROG, mode)
    assert b"frame objects: 0\n" in p.stdout, describe(p)
    # and the profile still counts every resume as a call
    # (50 first resumes + 1 + 11 for sum(gen(10)))
    assert prof.calls("gen", prog) == 62, prof.summary()


@pytest.mark.parametrize("mode", sorted(MODES))
def test_sneaky_frame_object(py, tmp_path, mode):
    prog, p, _ = compare(py, tmp_path, SNEAKY_PROG, mode)
    assert p.stdout == b"same frame: True f\n", describe(p)


@pytest.mark.parametrize("mode", ["trace", "timeline"])
def test_tracer_keeps_its_frame_objects(py, tmp_path, mode):
    prog, p, _ = compare(py, tmp_path, TRACER_PROG, mode)
    assert p.stdout.endswith(b"frame objects: 1\n"), describe(p)
