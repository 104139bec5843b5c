/*
 * threads.c — per-thread state: made for every thread that exists when
 * profiling starts, and (newthreads.c) for every thread started later
 * through _thread / threading. In 3.11 a profile function covers only one
 * thread. Threads that enter Python from C (PyGILState_Ensure) are seen by
 * cthreads.c.
 */
#include "python/alloc.h"
#include "python/profiler.h"
#include "python/sample.h"

#include "cpyprof/format.h"

#include <stdlib.h>
#include <string.h>

static void thread_dealloc(PyObject *self)
{
    cp_thread *th = (cp_thread *)self;
    Py_CLEAR(th->sys_profile_pending); /* never left set, but never leaked either */
    Py_CLEAR(th->gen_frame_taken);
    cp_sample_thread_free(th);
    cp_alloc_thread_free(th);
    cp_tree_destroy(&th->tree);
    cp_ring_destroy(&th->ring);
    free(th->stack);
    free(th->agg);
    cp_buf_free(&th->tl_out);
    PyObject_Free(self);
}

static PyTypeObject thread_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cpyprof.ThreadState",
    .tp_basicsize = sizeof(cp_thread),
    .tp_dealloc = thread_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "cpyprof per-thread profiling state (internal)",
};

int cp_threads_init_type(void)
{
    if (thread_type.tp_flags & Py_TPFLAGS_READY)
        return 0;
    return PyType_Ready(&thread_type);
}

/* A module if it is already imported (never imports it), else NULL. */
static PyObject *imported_module(const char *name)
{
    PyObject *n = PyUnicode_FromString(name);
    if (!n)
        return NULL;
    PyObject *m = PyImport_GetModule(n);
    Py_DECREF(n);
    return m;
}

/* threading.Thread name for a thread ident, as a string id; GIL held. */
static uint32_t thread_name(uint64_t ident)
{
    uint32_t id = CPYPROF_NONE;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *threading = imported_module("threading");
    if (threading == NULL) {
        PyErr_Clear();
    } else {
        PyObject *active = PyObject_GetAttrString(threading, "_active");
        PyObject *key = PyLong_FromUnsignedLongLong(ident);
        PyObject *t =
            (active && key && PyDict_Check(active)) ? PyDict_GetItemWithError(active, key) : NULL;
        if (t) {
            PyObject *name = PyObject_GetAttrString(t, "name");
            if (name && PyUnicode_Check(name)) {
                Py_ssize_t n;
                const char *s = PyUnicode_AsUTF8AndSize(name, &n);
                if (s)
                    id = cp_symtab_string(&cp_g.syms, s, (size_t)n);
            }
            Py_XDECREF(name);
        }
        Py_XDECREF(key);
        Py_XDECREF(active);
        Py_DECREF(threading);
        PyErr_Clear();
    }
    PyErr_Restore(et, ev, tb);
    return id;
}

cp_thread *cp_thread_new(PyThreadState *ts, uint32_t flags, char *err, size_t errlen)
{
    cp_thread *th = PyObject_New(cp_thread, &thread_type);
    if (!th) {
        PyErr_Clear();
        snprintf(err, errlen, "out of memory for thread state");
        return NULL;
    }
    memset((char *)th + sizeof(PyObject), 0, sizeof *th - sizeof(PyObject));
    th->max_depth = cp_g.cfg.max_depth;
    th->stack = calloc(th->max_depth, sizeof *th->stack);
    bool timeline = cp_g.cfg.mode == CP_MODE_TIMELINE;
    size_t ring_records =
        (size_t)((timeline ? cp_g.cfg.buffer_bytes : cp_g.cfg.ring_bytes) / sizeof(cp_record));
    if (!th->stack || cp_tree_init(&th->tree) != 0 || cp_ring_init(&th->ring, ring_records) != 0 ||
        cp_alloc_thread_init(th) != 0) {
        snprintf(err, errlen, "out of memory for thread state (ring of %llu bytes)",
                 (unsigned long long)cp_g.cfg.ring_bytes);
        Py_DECREF(th);
        return NULL;
    }
    th->tl_first_ns = th->tl_last_ns = -1;
    /* The flight recorder's memory is fixed: touch it now, with the GIL,
     * rather than take a page fault in the hook every 256 events. */
    if (timeline && cp_g.cfg.keep == CP_KEEP_LAST)
        memset(th->ring.slots, 0, cp_ring_capacity(&th->ring) * sizeof(cp_record));
    if (cp_g.cfg.transport == CP_TRANSPORT_RING || timeline) {
        th->agg = calloc(th->max_depth + 1, sizeof *th->agg);
        if (!th->agg) {
            snprintf(err, errlen, "out of memory for thread state");
            Py_DECREF(th);
            return NULL;
        }
    }
    th->ident = cp311_tstate_ident(ts);
    th->native_tid = cp311_tstate_native_id(ts);
    th->ts_id = ts->id;
    th->tstate_key = (uintptr_t)ts;
    th->flags = flags;
    th->start_ns = cp_clock_to_ns(&cp_g.clock, cp_clock_ticks(&cp_g.clock));
    th->name = thread_name(th->ident);
    /* threading may not be imported yet (we never import it): its name for
     * the main thread, for a dump that cannot ask later (SIGTERM). */
    if (th->name == CPYPROF_NONE && (flags & CPYPROF_THREAD_MAIN))
        th->name = cp_symtab_string(&cp_g.syms, "MainThread", 10);
    th->id = cp_g.nthreads++;
    /* Publish on the list last: the writer thread walks it without the GIL. */
    th->next = atomic_load(&cp_g.threads);
    atomic_store_explicit(&cp_g.threads, th, memory_order_release);
    Py_INCREF(th); /* the list's reference */

    /* Not in a timeline ring: it holds 16-byte slots of calls, returns and
     * GIL transitions only (timeline_hook.c). */
    if (!timeline) {
        cp_record r = {.ticks = cp_clock_ticks(&cp_g.clock),
                       .kind = CPYPROF_EV_THREAD_START,
                       .a = (uint32_t)th->native_tid,
                       .b = th->ident};
        cp_ring_push(&th->ring, &r);
    }
    return th;
}

int cp_threads_attach_all(char *err, size_t errlen)
{
    /* New threads first (newthreads.c), before any hook is live. */
    if (cp_newthreads_hook(err, errlen) != 0)
        return -1;

    PyThreadState *me = PyThreadState_Get();
    PyInterpreterState *interp = PyThreadState_GetInterpreter(me);
    /* The calling thread first, so it is thread 0. */
    for (int pass = 0; pass < 2; pass++) {
        for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts;
             ts = PyThreadState_Next(ts)) {
            if ((pass == 0) != (ts == me))
                continue;
            uint32_t flags = 0;
            if (cp311_tstate_ident(ts) == PyThread_get_thread_ident() && ts == me &&
                _PyOS_IsMainThread())
                flags |= CPYPROF_THREAD_MAIN;
            cp_thread *th = cp_thread_new(ts, flags, err, errlen);
            if (!th)
                return -1;
            if (cp_g.cfg.mode == CP_MODE_SAMPLE) { /* a timer, no hook */
                int src = cp_sample_thread_attach(th, ts, false, err, errlen);
                Py_DECREF(th);
                if (src != 0)
                    return -1;
                continue;
            }
            cp_trace_prefill(th, cp311_tstate_frame(ts));
            /* Not _PyEval_SetProfile: see cp311_set_profile. */
            cp311_set_profile(ts, cp_trace_current_hook(), (PyObject *)th);
            Py_DECREF(th);
        }
    }
    return 0;
}

void cp_threads_detach_all(void)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyThreadState *me = PyThreadState_Get();
    PyInterpreterState *interp = PyThreadState_GetInterpreter(me);
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp); ts;
         ts = PyThreadState_Next(ts)) {
        /* Only remove our own hook: a program may have set its own since. */
        if (cp_trace_is_ours(ts->c_profilefunc))
            cp311_set_profile(ts, NULL, NULL);
    }
    cp_newthreads_unhook();
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}

void cp_threads_refresh_names(void)
{
    for (cp_thread *th = atomic_load(&cp_g.threads); th; th = th->next) {
        uint32_t id = thread_name(th->ident);
        if (id != CPYPROF_NONE)
            th->name = id;
    }
}

void cp_threads_free_all(void)
{
    cp_thread *th = atomic_exchange(&cp_g.threads, NULL);
    while (th) {
        cp_thread *next = th->next;
        Py_DECREF(th);
        th = next;
    }
    cp_g.nthreads = 0;
}
