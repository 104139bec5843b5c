/*
 * gc.c — garbage collections, through gc.callbacks.
 *
 * The gc module calls every callable of gc.callbacks with ("start", info)
 * before a collection and ("stop", info) after it, with the GIL held, on
 * the thread that collects; info holds "generation", "collected" and
 * "uncollectable". That is the portable way in 3.11 (no C-level hook), and
 * a collection is rare enough that a Python-level call per phase costs
 * nothing measurable. Our callable is a builtin (a PyCFunction): the gc
 * module calls it directly, not through the eval loop, so it makes no
 * profile events.
 *
 * Hazards: the callback runs inside a collection, so it must not start
 * one: it allocates no Python objects (it only reads info) except when it
 * registers the name of the running function (a string's UTF-8 cache,
 * co_extra), which are not GC-tracked objects. Records go into chunks of
 * REC_CHUNK records, malloc'd on demand (we hold the GIL; this is not an
 * allocator hook) and never moved or freed while profiling, up to
 * MAX_RECORDS; more are counted as dropped. The program may clear
 * gc.callbacks: then collections are simply not recorded.
 *
 * SIGTERM: the writer thread writes the GC chunk without the GIL while a
 * collection may be recording (cp_gc_dump_nogil). It reads only records
 * below the count, which is published (release) after the record is
 * written, in chunks that never move; it frees nothing.
 */
#include "python/gc.h"
#include "python/alloc.h"
#include "python/profiler.h"

#include "cpyprof/format.h"

#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS (1u << 20)
#define REC_CHUNK 4096u
#define REC_CHUNKS (MAX_RECORDS / REC_CHUNK)

static struct {
    bool on;
    PyObject *callback; /* our builtin, as appended to gc.callbacks */
    uint64_t t0;        /* ticks at "start" */
    bool started;
    uint32_t func, thread;
    struct cpyprof_gc_rec *chunks[REC_CHUNKS];
    _Atomic size_t n; /* records written (published after each) */
    _Atomic uint64_t dropped;
} G;

static uint64_t info_u64(PyObject *info, const char *key)
{
    PyObject *v = PyDict_Check(info) ? PyDict_GetItemString(info, key) : NULL; /* borrowed */
    if (!v || !PyLong_Check(v))
        return 0;
    long long x = PyLong_AsLongLong(v);
    if (x < 0) {
        PyErr_Clear();
        return 0;
    }
    return (uint64_t)x;
}

/* The innermost Python function of the collecting thread, or NONE. */
static uint32_t running_function(void)
{
    PyThreadState *ts = PyThreadState_Get();
    cp_iframe *f = cp311_tstate_frame(ts);
    while (f && !cp311_iframe_complete(f))
        f = cp311_iframe_previous(f);
    return f ? cp_code_id(cp311_iframe_code(f)) : CPYPROF_NONE;
}

static void record(PyObject *info, uint64_t now)
{
    size_t i = atomic_load_explicit(&G.n, memory_order_relaxed);
    struct cpyprof_gc_rec **chunk = &G.chunks[i / REC_CHUNK];
    if (i >= MAX_RECORDS || (!*chunk && !(*chunk = malloc(REC_CHUNK * sizeof **chunk)))) {
        atomic_fetch_add_explicit(&G.dropped, 1, memory_order_relaxed);
        return;
    }
    struct cpyprof_gc_rec *r = &(*chunk)[i % REC_CHUNK];
    memset(r, 0, sizeof *r);
    r->start_ns = cp_clock_to_ns(&cp_g.clock, G.t0);
    r->duration_ns = (int64_t)cp_clock_delta_ns(&cp_g.clock, now - G.t0);
    r->generation = (uint32_t)info_u64(info, "generation");
    r->thread_id = G.thread;
    r->func = G.func;
    r->collected = info_u64(info, "collected");
    r->uncollectable = info_u64(info, "uncollectable");
    atomic_store_explicit(&G.n, i + 1, memory_order_release); /* the SIGTERM dump reads up to n */
}

static void free_records(void)
{
    for (size_t c = 0; c < REC_CHUNKS; c++) {
        free(G.chunks[c]);
        G.chunks[c] = NULL;
    }
    atomic_store(&G.n, 0);
}

static PyObject *gc_callback(PyObject *self, PyObject *args)
{
    PyObject *phase, *info;
    if (!PyArg_ParseTuple(args, "OO", &phase, &info))
        return NULL;
    if (!G.on || cp_g.inert || !PyUnicode_Check(phase))
        Py_RETURN_NONE;
    uint64_t now = cp_clock_ticks(&cp_g.clock);
    int was_busy = cp_alloc_busy; /* our work is not the program's allocations */
    cp_alloc_busy = 1;
    if (PyUnicode_CompareWithASCIIString(phase, "start") == 0) {
        cp_thread *th = cp_alloc_current_thread();
        G.thread = th ? th->id : CPYPROF_NONE;
        G.func = running_function();
        G.started = true;
        G.t0 = cp_clock_ticks(&cp_g.clock); /* after our own work */
    } else if (G.started && PyUnicode_CompareWithASCIIString(phase, "stop") == 0) {
        G.started = false;
        record(info, now);
    }
    cp_alloc_busy = was_busy;
    Py_RETURN_NONE;
}

static PyMethodDef callback_def = {"_cpyprof_gc_callback", gc_callback, METH_VARARGS,
                                   "cpyprof: records garbage collections (internal)"};

static PyObject *gc_callbacks_list(void)
{
    PyObject *gc = PyImport_ImportModule("gc");
    if (!gc)
        return NULL;
    PyObject *list = PyObject_GetAttrString(gc, "callbacks");
    Py_DECREF(gc);
    if (list && !PyList_Check(list)) {
        Py_DECREF(list);
        return NULL;
    }
    return list;
}

void cp_gc_start(void)
{
    if (cp_g.cfg.alloc == CP_ALLOC_OFF)
        return;
    free_records(); /* a previous run that was never dumped */
    atomic_store(&G.dropped, 0);
    G.started = false;
    PyObject *list = gc_callbacks_list();
    if (!G.callback)
        G.callback = PyCFunction_NewEx(&callback_def, NULL, NULL);
    if (!list || !G.callback || PyList_Append(list, G.callback) < 0) {
        PyErr_Clear();
        Py_XDECREF(list);
        cp_log("gc: cannot append to gc.callbacks: collections are not recorded");
        return;
    }
    Py_DECREF(list);
    G.on = true;
}

void cp_gc_stop(void)
{
    if (!G.on)
        return;
    G.on = false;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *list = gc_callbacks_list();
    if (list) {
        /* Remove every occurrence of our callback, leave the others. */
        for (Py_ssize_t i = PyList_GET_SIZE(list); i-- > 0;)
            if (PyList_GET_ITEM(list, i) == G.callback)
                PyList_SetSlice(list, i, i + 1, NULL);
        Py_DECREF(list);
    }
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}

static int dump(bool release, char *err, size_t errlen)
{
    size_t n = atomic_load_explicit(&G.n, memory_order_acquire);
    uint64_t dropped = atomic_load(&G.dropped);
    if (cp_g.cfg.alloc == CP_ALLOC_OFF || (!n && !dropped && !G.callback))
        return 0;
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, (uint32_t)n);
    cp_buf_u32(&b, 0);
    cp_buf_u64(&b, dropped);
    for (size_t i = 0; i < n; i++) {
        const struct cpyprof_gc_rec *r = &G.chunks[i / REC_CHUNK][i % REC_CHUNK];
        cp_buf_i64(&b, r->start_ns);
        cp_buf_i64(&b, r->duration_ns);
        cp_buf_u32(&b, r->generation);
        cp_buf_u32(&b, r->thread_id);
        cp_buf_u32(&b, r->func);
        cp_buf_u32(&b, 0);
        cp_buf_u64(&b, r->collected);
        cp_buf_u64(&b, r->uncollectable);
    }
    int rc;
    if (b.oom) {
        snprintf(err, errlen, "out of memory while writing the GC chunk");
        rc = -1;
    } else {
        rc = cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_GC, b.data, b.len, err, errlen);
    }
    cp_buf_free(&b);
    if (release)
        free_records();
    return rc;
}

int cp_gc_dump(char *err, size_t errlen)
{
    return dump(true, err, errlen);
}

int cp_gc_dump_nogil(char *err, size_t errlen)
{
    return dump(false, err, errlen);
}
