/*
 * gil_py311.h — CPython 3.11's GIL, as GIL accounting reads it.
 *
 * The GIL is _PyRuntime.ceval.gil, struct _gil_runtime_state
 * (Include/internal/pycore_gil.h): locked, last_holder, switch_number,
 * cond, mutex. Its offsets come from the headers we build against; py311.c
 * checks at start that the running interpreter's _PyRuntime has the size of
 * those headers, and gil.c checks the values make sense (the starting
 * thread holds the GIL: locked == 1 and last_holder == its thread state).
 * A 3.12 port reads interp->ceval.gil (a pointer per interpreter) instead.
 */
#ifndef CPYPROF_PYTHON_GIL_PY311_H
#define CPYPROF_PYTHON_GIL_PY311_H

#include "python/py311.h"

#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>

#include <pthread.h>
#include <stdint.h>

typedef struct _gil_runtime_state cp311_gil;

/** The GIL, or NULL outside a Python process (_PyRuntime is weak). */
static inline cp311_gil *cp311_gil_get(void)
{
    return &_PyRuntime ? &_PyRuntime.ceval.gil : NULL;
}

/** The mutex take_gil/drop_gil lock (PyMUTEX_T is pthread_mutex_t). */
static inline pthread_mutex_t *cp311_gil_mutex(cp311_gil *g)
{
    return &g->mutex;
}

/** The mutex a forced switch waits under (FORCE_SWITCHING is always
 *  defined in 3.11's pycore_gil.h). */
static inline pthread_mutex_t *cp311_gil_switch_mutex(cp311_gil *g)
{
    return &g->switch_mutex;
}

/** Whether another thread asked the holder to drop the GIL (interp->
 *  ceval.gil_drop_request). `ts` is the caller's own, live thread state. */
static inline int cp311_gil_drop_requested(PyThreadState *ts)
{
    return ts && ts->interp ? _Py_atomic_load_relaxed(&ts->interp->ceval.gil_drop_request) : 0;
}

/** 1 held, 0 free, -1 not created. Atomic read, no lock: safe anywhere. */
static inline int cp311_gil_locked(cp311_gil *g)
{
    return _Py_atomic_load_relaxed(&g->locked);
}

/** The thread state holding or having last held the GIL, as a number:
 *  never dereference it without the GIL (the state may be freed). */
static inline uintptr_t cp311_gil_last_holder(cp311_gil *g)
{
    return (uintptr_t)_Py_atomic_load_relaxed(&g->last_holder);
}

/** Changes of holder since start-up (written under the GIL's mutex; a
 *  racy read is good enough for a total). */
static inline unsigned long cp311_gil_switches(cp311_gil *g)
{
    return *(volatile unsigned long *)&g->switch_number;
}

/** This thread's own PyThreadState from the gilstate TSS key, without the
 *  GIL: pthread_getspecific is async-signal-safe in practice (a TLS array
 *  read) and the value is only ever set by this thread. NULL for a thread
 *  without one, and during thread deletion (the key is cleared first). */
static inline PyThreadState *cp311_gil_own_tstate(void)
{
    if (!_PyRuntime.gilstate.autoTSSkey._is_initialized)
        return NULL;
    return (PyThreadState *)pthread_getspecific(_PyRuntime.gilstate.autoTSSkey._key);
}

#endif
