/*
 * syswrap.h — sys functions whose answer our hooks would change, made to
 * answer as without the profiler (syswrap.c says what and why).
 */
#ifndef CPYPROF_PYTHON_SYSWRAP_H
#define CPYPROF_PYTHON_SYSWRAP_H

#include "python/profiler.h"

/** The sys.setprofile function object (NULL until cp_syswrap_install): the
 *  hooks compare a C_CALL's argument with it. */
extern PyObject *cp_sys_setprofile_fn;

/** Wraps sys.setprofile, sys.getprofile and sys._debugmallocstats, once per
 *  process (the wrappers pass through when no run is live). GIL held;
 *  never fails the run (a sys function that is not the interpreter's own is
 *  left alone). */
void cp_syswrap_install(void);

/** Hook side, C_CALL: `arg` is the function being called. The program is
 *  calling sys.setprofile directly from Python code: its C_RETURN comes to
 *  our hook next, and the wrapper may leave the swap to it. */
static inline void cp_sys_c_call(cp_thread *th, PyObject *arg)
{
    if (__builtin_expect(arg == cp_sys_setprofile_fn, 0))
        th->sys_setprofile = CP_SYS_ARMED;
}

/** Hook side, C_RETURN or C_EXCEPTION while th->sys_setprofile is set:
 *  runs `hook` for this event with the flag cleared (our own bookkeeping),
 *  then installs the profile function the program asked for, if the
 *  wrapper deferred it. Returns the hook's result (-1 with the program's
 *  exception set if sys.setprofile failed: it is raised at its call, as
 *  without us). */
int cp_sys_setprofile_returned(cp_thread *th, Py_tracefunc hook, PyFrameObject *frame, int what,
                               PyObject *arg);

#endif
