/*
 * sample_py311.h — the CPython 3.11 layout facts the sampling signal handler
 * reads (py311.h holds the rest). Every function here is a plain memory read
 * of the running thread's own structures: no lock, no allocation, no call
 * into the interpreter except PyCode_Addr2Line, checked below.
 *
 * PyCode_Addr2Line in 3.11 (Objects/codeobject.c): returns co_firstlineno
 * for a negative offset, else reads co->_co_linearray if the tracer built it,
 * else decodes co_linetable (an immutable bytes object owned by the code
 * object) with _PyCode_InitAddressRange/_PyCode_CheckLineNumber: pure reads
 * and arithmetic on a stack-local struct. It allocates nothing and takes no
 * lock, so it is usable in the handler on a code object that is alive (its
 * frame is on the interrupted thread's stack, which holds a reference).
 */
#ifndef CPYPROF_PYTHON_SAMPLE_PY311_H
#define CPYPROF_PYTHON_SAMPLE_PY311_H

#include "python/py311.h"

#include <internal/pycore_runtime.h>

#include <pthread.h>

/** This thread's own PyThreadState from the gilstate TSS key (NULL once the
 *  thread state was deleted: tstate_delete_common clears the key before the
 *  state is freed, on this same thread, so a non-NULL read from a handler on
 *  this thread means the state is still alive). pthread_getspecific is a
 *  lock-free array read in glibc. */
static inline PyThreadState *cp311s_own_tstate(void)
{
    if (!_PyRuntime.gilstate.autoTSSkey._is_initialized)
        return NULL;
    return (PyThreadState *)pthread_getspecific(_PyRuntime.gilstate.autoTSSkey._key);
}

/** Whether `ts` holds the GIL right now: locked and the last holder. */
static inline bool cp311s_holds_gil(PyThreadState *ts)
{
    const struct _gil_runtime_state *g = &_PyRuntime.ceval.gil;
    return _Py_atomic_load_relaxed(&g->locked) &&
           (PyThreadState *)_Py_atomic_load_relaxed(&g->last_holder) == ts;
}

/** Byte offset of the instruction a frame executes. */
static inline int cp311s_frame_addr(cp_iframe *f)
{
    return _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
}

/** UTF-8 bytes of a str without allocating: compact ASCII, or the cached
 *  UTF-8 of a compact string. NULL (use "?") otherwise. */
static inline const char *cp311s_str_utf8(PyObject *o, Py_ssize_t *len)
{
    if (!o || Py_TYPE(o) != &PyUnicode_Type || !PyUnicode_IS_READY(o))
        return NULL;
    if (PyUnicode_IS_COMPACT_ASCII(o)) {
        *len = ((PyASCIIObject *)o)->length;
        return (const char *)(((PyASCIIObject *)o) + 1);
    }
    const PyCompactUnicodeObject *c = (const PyCompactUnicodeObject *)o;
    if (c->utf8) {
        *len = c->utf8_length;
        return c->utf8;
    }
    return NULL;
}

#endif
