"""What a sample costs the handler, by the library's own counters (closing
META): the code objects of a single-threaded program get registered, so the
handler stops copying their names (sample_timer.c, poke_main), and the wall
clock reads a running thread's CPU clock only when its Python position did
not move (sample_signal.c, on_wall)."""
from test_sampling import folded, leaf_samples
from test_sampling_wall import meta, record

# One thread only: before poke_main, the writer's pending call that
# registers the code objects on the stacks never ran until exit, and every
# sample copied the names of its three frames. The comprehension is entered
# and left all the time: it is registered as a constant of work().
SINGLE = """
import time
def work():
    t0 = time.process_time()
    n = 0
    while time.process_time() - t0 < 1.0:
        n += len([i * 3 for i in range(50)])
    return n
print(work() > 0)
"""


def test_single_thread_code_gets_registered(py, tmp_path):
    p, out = record(py, tmp_path, SINGLE, rate=1000)
    assert p.stdout == b"True\n"
    m = meta(out)
    calls = int(m["sample_handler_calls"])
    copied = int(m["sample_names_copied"])
    # 1 s of CPU at 1 kHz; the sampler skips periods under load
    assert calls >= 200, m
    # Until the first registration (the writer's first tick, ~50 ms) each
    # sample copies its frames' names; after it, none. Without it, at least
    # 3 per sample (<module>, work, and the comprehension or time.process_time's caller).
    assert copied < calls / 2, m
    st = folded(out)
    assert leaf_samples(st, "<listcomp>") + leaf_samples(st, "work") >= calls / 2, st


def test_wall_skips_cpu_clock_of_a_running_thread(py, tmp_path):
    p, out = record(py, tmp_path, SINGLE, rate=1000)
    assert p.stdout == b"True\n"
    m = meta(out)
    signals = int(m["sample_wall_signals"])
    reads = int(m["sample_wall_cpu_reads"])
    assert signals >= 200, m
    # The thread runs Python code all the time: its innermost frame or
    # instruction differs from one sample to the next except when a sample
    # lands on the same instruction twice. One read per sample before.
    assert reads < signals / 2, m
