/*
 * syswrap.c — three sys functions whose answer our hooks would change, made
 * to answer as without the profiler. Found by CPython's own tests
 * (test_profile, test_cprofile, test_sys) run under the profiler.
 *
 *  - sys.setprofile(f) while our hook is the thread's profile function.
 *    3.11's eval loop calls a C function under a profile function as
 *    "C_CALL; call; if (tstate->c_profilefunc) C_RETURN" (C_TRACE in
 *    ceval.c): the C_RETURN goes to whatever profile function is set
 *    *after* the call. Without us, a program calling sys.setprofile(f) had
 *    no profile function at the C_CALL, so f sees no event for that call;
 *    with us, f received a "c_return" for sys.setprofile as its first event,
 *    and profile.py's consistency check ("Bad return") failed. So when the
 *    call comes from Python code while our hook is set (our hook saw its
 *    C_CALL: cp_sys_c_call), the wrapper only notes f; our hook installs it
 *    when that call's C_RETURN reaches it (cp_sys_setprofile_returned),
 *    through the original sys.setprofile (its audit event, its checks), and
 *    the program's profiler starts with the next event, as without us. An
 *    error of the original (an audit hook refusing) is returned by the hook
 *    and raised at the program's call, as without us.
 *  - sys.getprofile() returned our per-thread state object (the
 *    `c_profileobj` our hook finds its thread by): None now while the
 *    profile function is ours, so `old = sys.getprofile(); ...;
 *    sys.setprofile(old)` restores "no profiler", not a non-callable.
 *  - sys._debugmallocstats() prints pymalloc's statistics only while the
 *    object allocator is pymalloc itself (_PyMem_PymallocEnabled compares
 *    _PyObject.malloc with _PyObject_Malloc), and --alloc wraps it: the
 *    wrapper puts the allocator under our layers back for the call (with
 *    the GIL; the call allocates nothing: it prints with fprintf), so the
 *    program sees pymalloc's statistics as without us. If another layer
 *    (tracemalloc) sits above ours, nothing is changed: without us that
 *    layer hides pymalloc too.
 *
 * How: each function object of the sys module keeps its identity (a program
 * may hold it from before the start; `from sys import setprofile`), only
 * its PyMethodDef pointer (m_ml, read at every call by the vectorcall of its
 * calling convention) is set to a copy of the original definition with our
 * C function: same name, doc, text signature, flags, __self__. What changes:
 * hash(sys.setprofile) (the hash of a builtin mixes in the C function's
 * address). Once per process, for good: the wrappers pass through when no
 * run is live or our hook is not the thread's. A function that is not the
 * interpreter's own (a program replaced sys.setprofile) is left alone.
 *
 * Not covered: a C extension installing its profiler with PyEval_SetProfile
 * from one of its C functions (cProfile's Profiler.enable) still gets the
 * C_RETURN of that function (cProfile ignores it: it has no call open); nor
 * does a program's profiler installed from a C function called by another C
 * function (map(sys.setprofile, ...)) miss the outer call's C_RETURN.
 */
#include "python/syswrap.h"
#include "python/alloc.h"

#include <stdbool.h>

PyObject *cp_sys_setprofile_fn;

/* One wrapped function: the interpreter's definition and our copy. */
typedef struct wrapped {
    const char *name;
    int flags; /* the calling convention our C function has */
    PyCFunction fn;
    const PyMethodDef *orig; /* the interpreter's, for calling through */
    PyMethodDef def;         /* copy of orig with fn: lives for the process */
    PyObject *self;          /* the sys module (m_self), a reference */
} wrapped;

static PyObject *w_setprofile(PyObject *self, PyObject *func);
static PyObject *w_getprofile(PyObject *self, PyObject *unused);
static PyObject *w_debugmallocstats(PyObject *self, PyObject *unused);

enum { W_SETPROFILE, W_GETPROFILE, W_MALLOCSTATS, W_COUNT };
static wrapped wraps[W_COUNT] = {
    [W_SETPROFILE] = {"setprofile", METH_O, w_setprofile},
    [W_GETPROFILE] = {"getprofile", METH_NOARGS, w_getprofile},
    [W_MALLOCSTATS] = {"_debugmallocstats", METH_NOARGS, w_debugmallocstats},
};

static PyObject *call_orig(const wrapped *w, PyObject *arg)
{
    return w->orig->ml_meth(w->self, arg);
}

/* The calling thread's state if our hook is its profile function. */
static cp_thread *our_thread(PyThreadState *ts)
{
    if (!ts || !cp_trace_is_ours(ts->c_profilefunc) || !ts->c_profileobj)
        return NULL;
    return (cp_thread *)ts->c_profileobj;
}

static PyObject *w_setprofile(PyObject *self, PyObject *func)
{
    cp_thread *th = our_thread(PyThreadState_Get());
    if (th && th->sys_setprofile == CP_SYS_ARMED) {
        /* Called from Python code (our hook saw the C_CALL just now): the
         * C_RETURN comes to our hook next, which installs `func`. */
        Py_INCREF(func);
        Py_XSETREF(th->sys_profile_pending, func);
        th->sys_setprofile = CP_SYS_DEFERRED;
        Py_RETURN_NONE;
    }
    return call_orig(&wraps[W_SETPROFILE], func);
}

int cp_sys_setprofile_returned(cp_thread *th, Py_tracefunc hook, PyFrameObject *frame, int what,
                               PyObject *arg)
{
    uint32_t st = th->sys_setprofile;
    th->sys_setprofile = CP_SYS_NONE;
    int rc = hook((PyObject *)th, frame, what, arg); /* our bookkeeping of the call */
    PyObject *func = th->sys_profile_pending;
    th->sys_profile_pending = NULL;
    if (st != CP_SYS_DEFERRED || !func) {
        Py_XDECREF(func);
        return rc;
    }
    /* Inside our hook (tstate->tracing is 1): the original sets the
     * program's function and the tracing flag is recomputed when the hook
     * returns; our thread state loses the thread state's reference (the
     * thread list keeps it). */
    PyObject *r = call_orig(&wraps[W_SETPROFILE], func);
    Py_DECREF(func);
    if (!r)
        return -1;
    Py_DECREF(r);
    return rc;
}

static PyObject *w_getprofile(PyObject *self, PyObject *unused)
{
    (void)unused;
    if (our_thread(PyThreadState_Get()))
        Py_RETURN_NONE; /* without us there would be no profile function */
    return call_orig(&wraps[W_GETPROFILE], NULL);
}

static PyObject *w_debugmallocstats(PyObject *self, PyObject *unused)
{
    (void)unused;
    PyMemAllocatorEx saved;
    bool unwrapped = cp_alloc_obj_unwrap(&saved);
    PyObject *r = call_orig(&wraps[W_MALLOCSTATS], NULL);
    if (unwrapped)
        cp_alloc_obj_rewrap(&saved);
    return r;
}

static void wrap_one(PyObject *sys, wrapped *w)
{
    PyObject *f = PyObject_GetAttrString(sys, w->name);
    if (!f) {
        PyErr_Clear();
        return;
    }
    /* Only the interpreter's own builtin, bound to this sys module, with
     * the calling convention we implement. */
    PyCFunctionObject *cf = (PyCFunctionObject *)f;
    if (!PyCFunction_CheckExact(f) || cf->m_self != sys ||
        (cf->m_ml->ml_flags & ~METH_COEXIST) != w->flags) {
        Py_DECREF(f);
        return;
    }
    w->orig = cf->m_ml;
    w->def = *cf->m_ml;
    w->def.ml_meth = w->fn;
    Py_INCREF(sys);
    w->self = sys;
    cf->m_ml = &w->def; /* GIL held: no call of it is under way on another thread */
    if (w == &wraps[W_SETPROFILE])
        cp_sys_setprofile_fn = f; /* keeps the reference, for good */
    else
        Py_DECREF(f);
}

void cp_syswrap_install(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    PyObject *sys = PyImport_ImportModule("sys");
    if (sys) {
        for (int i = 0; i < W_COUNT; i++)
            wrap_one(sys, &wraps[i]);
        Py_DECREF(sys);
    }
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
}
