/*
 * genframe.c — a suspended generator or coroutine keeps no frame object
 * because of us.
 *
 * In 3.11 a frame object exists only when something asks for one; a profile
 * function is given one at every event (call_trace materialises it). For an
 * ordinary function it dies at the return, with the frame. A generator's
 * frame lives in the generator, and so did the frame object: every
 * generator or coroutine suspended while profiled carried a frame object
 * that it would not have without us. The program can tell: the generator's
 * GC referents (gc.get_referents), which frame object `gi_frame` returns,
 * and when one is allocated (CPython's
 * test_frame.test_sneaky_frame_object requests a generator's frame object
 * from a GC callback while the tracer's allocation of it triggers that
 * collection, and compares the two), plus the memory of every suspended
 * coroutine of an asyncio program.
 *
 * So at the RETURN event of a yield, the frame object goes back to what it
 * would be without us: taken from the generator when only the generator
 * holds it and it carries nothing the program set (py311.h,
 * cp311_detach_gen_frame_object says exactly what). It cannot be freed in
 * our callback: call_trace writes its f_lineno after the callback returns.
 * It is kept in the thread's state until the next one is taken (or the
 * thread state is freed), detached, so unreachable. With a
 * trace function set (sys.settrace) nothing is taken: the tracer sees the
 * frames itself and may compare them across events.
 *
 * Cost: the generator's next resume makes a new frame object for our CALL
 * event (one allocation and one free per resume, instead of one per
 * generator); measured in the commit that added this.
 */
#include "python/profiler.h"

void cp_genframe_suspended(cp_thread *th, PyFrameObject *frame)
{
    PyThreadState *ts = _PyThreadState_UncheckedGet();
    if (!ts || ts->c_tracefunc || !cp311_detach_gen_frame_object(frame))
        return;
    PyObject *old = th->gen_frame_taken;
    th->gen_frame_taken = (PyObject *)frame; /* the generator's reference, now ours */
    Py_XDECREF(old);                         /* call_trace is done with that one */
}
