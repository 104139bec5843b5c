/*
 * cthreads.c — threads that enter Python from C (PyGILState_Ensure), e.g. a
 * thread made by pthread_create in a C library that calls back into Python
 * through ctypes or an extension.
 *
 * 3.11 has no hook for "a thread state was created", and such threads never
 * run threading's bootstrap, so neither threading.setprofile nor
 * PyEval_SetProfile reaches them. Every such thread does call
 * PyGILState_Ensure, though, from some loaded object (an extension module,
 * _ctypes): we redirect those calls (native/got.c) to a wrapper that, once
 * the GIL is held, installs the profile hook on a thread state that has no
 * profile function yet. Objects loaded later are redirected at the next audit
 * event after they appear (an import is always followed by more events).
 *
 * Calls from inside the executable to itself (Debian's static libpython)
 * are direct calls and cannot be redirected; CPython's own threads come
 * through threading and are covered there.
 */
#include "python/profiler.h"

#include "cpyprof/format.h"
#include "native/got.h"

#include <stdio.h>

/* The state this OS thread had in the current run: a C thread that enters
 * and leaves Python repeatedly gets a new PyThreadState each time, but must
 * stay one thread in the profile. */
static __thread cp_thread *tls_thread;
static __thread uint32_t tls_generation;

static bool hooks_installed;
static bool audit_added;

static void attach_c_thread(PyThreadState *ts)
{
    cp_thread *th = tls_generation == cp_g.generation ? tls_thread : NULL;
    char err[256];
    if (th) {
        th->depth = 0; /* every frame of the last visit has returned */
        th->overflow = 0;
        Py_INCREF(th); /* balanced below, like a fresh one */
    } else {
        th = cp_thread_new(ts, CPYPROF_THREAD_STARTED_LATE, err, sizeof err);
        if (!th)
            return;
        tls_thread = th;
        tls_generation = cp_g.generation;
    }
    cp_trace_prefill(th, cp311_tstate_frame(ts));
    cp311_set_profile(ts, cp_trace_current_hook(), (PyObject *)th); /* py311.h: why */
    Py_DECREF(th); /* the thread state and the thread list hold it */
}

static PyGILState_STATE wrap_gilstate_ensure(void)
{
    PyGILState_STATE st = PyGILState_Ensure(); /* our own slot is never redirected */
    if (atomic_load(&cp_g.state) == CP_RUNNING && !cp_g.inert && cp_g.cfg.mode != CP_MODE_SAMPLE) {
        PyThreadState *ts = _PyThreadState_UncheckedGet();
        if (ts && ts->c_profilefunc == NULL)
            attach_c_thread(ts);
    }
    return st;
}

static const cp_got_hook gil_hooks[] = {
    {"PyGILState_Ensure", (void *)wrap_gilstate_ensure},
};

static int audit_rescan(const char *event, PyObject *args, void *userdata)
{
    (void)event;
    (void)args;
    (void)userdata;
    if (hooks_installed && cp_got_objects_changed())
        cp_got_install(gil_hooks, 1, (const void *)wrap_gilstate_ensure);
    return 0;
}

void cp_cthreads_start(void)
{
    if (cp_g.cfg.mode == CP_MODE_SAMPLE)
        return;
    if (cp_got_install(gil_hooks, 1, (const void *)wrap_gilstate_ensure) < 0 && !cp_g.cfg.quiet)
        cp_log("out of memory while hooking PyGILState_Ensure: threads made in C "
               "will not be profiled");
    hooks_installed = true;
    if (!audit_added) {
        /* Added after initialisation, so its entry is allocated and freed by
         * the same allocator (unlike the preload hook, see activate.c). It
         * cannot be removed; it does nothing once profiling stops. */
        if (PySys_AddAuditHook(audit_rescan, NULL) == 0)
            audit_added = true;
        else
            PyErr_Clear();
    }
}

void cp_cthreads_stop(void)
{
    if (!hooks_installed)
        return;
    hooks_installed = false;
    cp_got_restore_all();
}
