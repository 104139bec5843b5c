/*
 * py311.h — everything that depends on CPython 3.11's internal layout, in
 * one place. A port to 3.12 adds py312.h and picks one at start-up.
 *
 * Facts used (Include/internal/pycore_frame.h, cpython/pystate.h, 3.11):
 *  - a PyFrameObject points to its _PyInterpreterFrame (f_frame), which holds
 *    f_code and `previous`; frames of generators live inside the generator;
 *  - tstate->cframe->current_frame is the innermost executing frame;
 *  - a frame is "incomplete" until its first instruction ran (skip those);
 *  - code objects carry co_extra, an array of per-tool pointers.
 */
#ifndef CPYPROF_PYTHON_PY311_H
#define CPYPROF_PYTHON_PY311_H

#include "python/pyapi.h"

#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if PY_MAJOR_VERSION != 3 || PY_MINOR_VERSION != 11
#error "py311.h describes CPython 3.11 only"
#endif

typedef _PyInterpreterFrame cp_iframe;

/* co_extra's layout is private to Objects/codeobject.c in 3.11 (not in any
 * header): a size followed by that many pointers. */
typedef struct cp311_code_extra_s {
    Py_ssize_t ce_size;
    void *ce_extras[1];
} cp311_code_extra_t;

/** The interpreter frame of a frame object handed to a profile function. */
static inline cp_iframe *cp311_frame_iframe(PyFrameObject *f)
{
    return f->f_frame;
}

static inline PyCodeObject *cp311_iframe_code(const cp_iframe *f)
{
    return f->f_code;
}

static inline cp_iframe *cp311_iframe_previous(const cp_iframe *f)
{
    return f->previous;
}

static inline bool cp311_iframe_complete(cp_iframe *f)
{
    return !_PyFrame_IsIncomplete(f);
}

/** The innermost frame a thread is executing (NULL when none). Only valid
 *  with the GIL held or from the thread itself. */
static inline cp_iframe *cp311_tstate_frame(PyThreadState *ts)
{
    return ts->cframe ? ts->cframe->current_frame : NULL;
}

static inline unsigned long cp311_tstate_ident(PyThreadState *ts)
{
    return ts->thread_id;
}
static inline unsigned long cp311_tstate_native_id(PyThreadState *ts)
{
    return ts->native_thread_id;
}

/** Sets a thread's profile function as _PyEval_SetProfile does, without its
 *  audit event and without 3.11's process-wide re-entrancy flag: that
 *  call runs the program's audit hooks, a Python hook (regrtest has one)
 *  lets other threads run, and a second thread entering _PyEval_SetProfile
 *  meanwhile fails with "Cannot install a profile function while another
 *  profile function is being installed" (a fork at that moment leaves the
 *  flag set in the child for good). GIL held; `ts` is the caller's thread or
 *  one that is not running Python (3.11 layout: c_profilefunc, c_profileobj,
 *  tracing, cframe->use_tracing = 255 while a hook is set and not inside
 *  one). */
static inline void cp311_set_profile(PyThreadState *ts, Py_tracefunc func, PyObject *obj)
{
    PyObject *old = ts->c_profileobj;
    Py_XINCREF(obj);
    ts->c_profileobj = obj;
    ts->c_profilefunc = func;
    if (ts->cframe)
        ts->cframe->use_tracing =
            (ts->tracing == 0 && (ts->c_tracefunc || ts->c_profilefunc)) ? 255 : 0;
    Py_XDECREF(old); /* last: a destructor may run code that looks at ts */
}

/** A generator's or coroutine's frame (its RETURN event is a yield or an
 *  await when the generator is then suspended). */
static inline bool cp311_iframe_is_generator(const cp_iframe *f)
{
    return f->owner == FRAME_OWNED_BY_GENERATOR;
}

/** At the RETURN event of a generator frame that is being suspended: takes
 *  the frame object the profile callback made for it (call_trace
 *  materialises one for every event) away from the generator when nothing
 *  but the generator holds it and it carries nothing the program set, so
 *  that the suspended generator has no frame object, as without a profile
 *  function (a later `gi_frame` makes a new one, as it would). Returns true
 *  with the frame object now owned by the caller, detached: it points to
 *  its own, empty frame data (owner FRAME_OBJECT, no code, no locals), so
 *  its deallocation touches nothing of the generator's; and it is not
 *  tracked by the GC (a live frame's object never is in 3.11, only one
 *  that outlived its frame: untracked anyway, in case). The caller
 *  must not drop it before call_trace is done with it (it writes f_lineno
 *  after the callback returns). GIL held. Layout facts (3.11
 *  Objects/frameobject.c, genobject.c): a frame object's `_f_frame_data`
 *  has room for the frame's specials at least; frame_dealloc clears only
 *  the embedded frame's objects when that frame is its own. */
static inline bool cp311_detach_gen_frame_object(PyFrameObject *fo)
{
    cp_iframe *f = fo->f_frame;
    if (f->owner != FRAME_OWNED_BY_GENERATOR || f->frame_obj != fo || Py_REFCNT(fo) != 1 ||
        _PyFrame_GetGenerator(f)->gi_frame_state != FRAME_SUSPENDED || fo->f_back || fo->f_trace ||
        !fo->f_trace_lines || fo->f_trace_opcodes || fo->f_fast_as_locals)
        return false;
    f->frame_obj = NULL;
    PyObject_GC_UnTrack(fo);
    cp_iframe *own = (cp_iframe *)fo->_f_frame_data;
    memset(own, 0, offsetof(cp_iframe, localsplus));
    own->owner = FRAME_OWNED_BY_FRAME_OBJECT;
    fo->f_frame = own;
    return true;
}

/** co_extra slot `index` of a code object, or NULL. Reads the struct
 *  directly: _PyCode_GetExtra is an exported call plus checks, and this runs
 *  on every Python call. */
static inline void *cp311_code_extra(PyCodeObject *co, Py_ssize_t index)
{
    const cp311_code_extra_t *x = (const cp311_code_extra_t *)co->co_extra;
    if (x == NULL || index >= x->ce_size)
        return NULL;
    return x->ce_extras[index];
}

/** Line of the instruction a frame is executing (for samples). */
static inline int cp311_iframe_line(cp_iframe *f)
{
    int addr = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
    return PyCode_Addr2Line(f->f_code, addr);
}

/** Removes the audit hook `fn` from the runtime's list without freeing
 *  it (see activate.c for why). GIL held. Returns 1 if it was found. */
int cp311_unlink_audit_hook(Py_AuditHookFunction fn);

/** Checks that the running interpreter has the layout these headers
 *  describe: CPython 3.11, not a debug build, and a _PyRuntime of the size
 *  we were compiled against. Returns 0, or -1 with a one-line reason. */
int cp311_check_runtime(char *err, size_t errlen);

#endif
