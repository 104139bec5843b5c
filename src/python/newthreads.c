/*
 * newthreads.c — seeing the threads the program starts after profiling
 * began: `_thread.start_new_thread` (and its alias `start_new`, and
 * `threading._start_new_thread`, which threading binds when it is imported)
 * is replaced by a function that starts the thread on a small callable of
 * ours. In the new thread that callable makes the thread's state, installs
 * the hook (or the sampling timer) and calls the program's function.
 *
 * Why not threading.setprofile, as before: it made every new thread call
 * sys.setprofile(), whose audit event runs the program's Python audit hooks;
 * that lets other threads run in the middle of _PyEval_SetProfile, which
 * 3.11 (Debian's 3.11.2 and upstream 3.11.7 alike) guards with a
 * process-wide flag, so another thread starting meanwhile failed with
 * "Cannot install a profile function while another profile function is
 * being installed" (CPython's regrtest installs such a hook; test_functools
 * and test_threading saw it), and a fork at that moment left the flag set in
 * the child for good. It also needed `import threading` at start, which a
 * program may check (test_threading.test_import_from_another_thread).
 * `_thread` is built in: importing it changes nothing the program can see.
 * Threads started with `_thread` directly are now seen as well.
 *
 * What the program could notice, kept identical: the thread function's
 * exceptions are reported exactly as _thread does (SystemExit ignored,
 * otherwise "Exception ignored in thread started by" with the program's own
 * function as the object), and arguments _thread would refuse go to the
 * original unchanged, so its errors are its own.
 */
#include "python/profiler.h"
#include "python/sample.h"

#include "cpyprof/format.h"

#include <string.h>

typedef struct starter {
    PyObject_HEAD PyObject *func;
    PyObject *args;
    PyObject *kwargs;
} starter;

static void starter_dealloc(PyObject *self)
{
    starter *s = (starter *)self;
    Py_XDECREF(s->func);
    Py_XDECREF(s->args);
    Py_XDECREF(s->kwargs);
    PyObject_Free(self);
}

/* threading.Thread's name, when func is its bound _bootstrap: the name the
 * thread has as it starts (cp_threads_refresh_names updates live ones). */
static void name_from_thread_object(cp_thread *th, PyObject *func)
{
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *obj = PyMethod_Check(func) ? PyMethod_GET_SELF(func) : NULL;
    PyObject *name = obj ? PyObject_GetAttrString(obj, "name") : NULL;
    if (name && PyUnicode_Check(name)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(name, &n);
        if (s)
            th->name = cp_symtab_string(&cp_g.syms, s, (size_t)n);
    }
    Py_XDECREF(name);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}

/* In the new thread, with the GIL, before the program's function runs. */
static void attach_this_thread(PyObject *func)
{
    if (atomic_load(&cp_g.state) != CP_RUNNING || cp_g.inert)
        return;
    PyThreadState *ts = PyThreadState_Get();
    if (ts->c_profilefunc) /* the program's own (or ours already): never replaced */
        return;
    char err[256];
    cp_thread *th = cp_thread_new(ts, CPYPROF_THREAD_STARTED_LATE, err, sizeof err);
    if (!th)
        return;
    if (th->name == CPYPROF_NONE)
        name_from_thread_object(th, func);
    if (cp_g.cfg.mode == CP_MODE_SAMPLE) {
        /* Sampling: a timer on this thread, and no hook. */
        if (cp_sample_thread_attach(th, ts, true, err, sizeof err) != 0 && !cp_g.cfg.quiet)
            cp_log("%s", err);
    } else {
        cp_trace_prefill(th, cp311_tstate_frame(ts)); /* no frames yet: nothing */
        cp311_set_profile(ts, cp_trace_current_hook(), (PyObject *)th);
    }
    Py_DECREF(th); /* the thread state and the thread list hold it */
}

static PyObject *starter_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    starter *s = (starter *)self;
    attach_this_thread(s->func);
    PyObject *r = PyObject_Call(s->func, s->args, s->kwargs);
    if (r)
        return r;
    /* As _thread's t_bootstrap does, with the program's function named. */
    if (PyErr_ExceptionMatches(PyExc_SystemExit))
        PyErr_Clear();
    else
        _PyErr_WriteUnraisableMsg("in thread started by", s->func);
    Py_RETURN_NONE;
}

static PyObject *starter_repr(PyObject *self)
{
    return PyObject_Repr(((starter *)self)->func);
}

static PyTypeObject starter_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "cpyprof._ThreadStart",
    .tp_basicsize = sizeof(starter),
    .tp_dealloc = starter_dealloc,
    .tp_call = starter_call,
    .tp_repr = starter_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "cpyprof: starts a thread's function with the profiler attached (internal)",
};

/* The original _thread.start_new_thread and our replacement: made once,
 * kept for the process's life (threading may hold the replacement). */
static PyObject *orig_start;
static PyObject *our_start;

static PyObject *start_new_thread(PyObject *self, PyObject *fargs)
{
    (void)self;
    PyObject *func, *args, *kwargs = NULL;
    if (atomic_load(&cp_g.state) != CP_RUNNING || cp_g.inert ||
        !PyArg_UnpackTuple(fargs, "start_new_thread", 2, 3, &func, &args, &kwargs) ||
        !PyCallable_Check(func) || !PyTuple_Check(args) || (kwargs && !PyDict_Check(kwargs))) {
        PyErr_Clear();
        return PyObject_Call(orig_start, fargs, NULL); /* its errors, its way */
    }
    starter *s = PyObject_New(starter, &starter_type);
    if (!s)
        return NULL;
    Py_INCREF(func);
    Py_INCREF(args);
    Py_XINCREF(kwargs);
    s->func = func;
    s->args = args;
    s->kwargs = kwargs;
    PyObject *noargs = PyTuple_New(0);
    PyObject *r =
        noargs ? PyObject_CallFunctionObjArgs(orig_start, (PyObject *)s, noargs, NULL) : NULL;
    Py_XDECREF(noargs);
    Py_DECREF(s);
    return r;
}

static PyMethodDef start_def = {
    "start_new_thread", start_new_thread, METH_VARARGS,
    "start_new_thread(function, args[, kwargs])\n\nStarts a new thread (cpyprof: with the "
    "profiler attached to it, when profiling)."};

/* Sets module.attr to `to` if it is `from` now (a program that replaced it
 * itself keeps its own); errors cleared. */
static void swap_attr(PyObject *module, const char *attr, PyObject *from, PyObject *to)
{
    PyObject *cur = PyObject_GetAttrString(module, attr);
    if (cur == from && PyObject_SetAttrString(module, attr, to) != 0)
        PyErr_Clear();
    Py_XDECREF(cur);
    PyErr_Clear();
}

static void replace_attr(PyObject *module, const char *attr)
{
    swap_attr(module, attr, orig_start, our_start);
}

static void restore_attr(PyObject *module, const char *attr)
{
    swap_attr(module, attr, our_start, orig_start);
}

/* threading only if the program imported it already (never imports it). */
static PyObject *threading_if_imported(void)
{
    PyObject *name = PyUnicode_FromString("threading");
    PyObject *m = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    PyErr_Clear();
    return m;
}

int cp_newthreads_hook(char *err, size_t errlen)
{
    PyObject *thread = PyImport_ImportModule("_thread");
    if (!thread)
        goto fail;
    if (!orig_start) {
        if (PyType_Ready(&starter_type) != 0)
            goto fail;
        orig_start = PyObject_GetAttrString(thread, "start_new_thread");
        /* named as the original (the profile shows the C call) */
        PyObject *modname = PyUnicode_FromString("_thread");
        our_start = orig_start && modname ? PyCFunction_NewEx(&start_def, NULL, modname) : NULL;
        Py_XDECREF(modname);
        if (!our_start) {
            Py_CLEAR(orig_start);
            goto fail;
        }
    }
    replace_attr(thread, "start_new_thread");
    replace_attr(thread, "start_new");
    Py_DECREF(thread);
    PyObject *threading = threading_if_imported();
    if (threading) {
        replace_attr(threading, "_start_new_thread");
        Py_DECREF(threading);
    }
    return 0;
fail:
    Py_XDECREF(thread);
    PyErr_Clear();
    snprintf(err, errlen, "cannot hook new threads (_thread.start_new_thread)");
    return -1;
}

void cp_newthreads_unhook(void)
{
    if (!orig_start)
        return;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *thread = PyImport_ImportModule("_thread");
    if (thread) {
        restore_attr(thread, "start_new_thread");
        restore_attr(thread, "start_new");
        Py_DECREF(thread);
    }
    /* threading bound ours if it was imported while we ran: put the
     * original back; were it missed, ours passes through when not running. */
    PyObject *threading = threading_if_imported();
    if (threading) {
        restore_attr(threading, "_start_new_thread");
        Py_DECREF(threading);
    }
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}
