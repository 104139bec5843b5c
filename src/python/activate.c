/*
 * activate.c — activation by LD_PRELOAD.
 *
 * The constructor runs in every process that inherits LD_PRELOAD, before
 * main. It must do nothing at all outside a Python process (no Python
 * symbols: /bin/sh, compilers), nothing in a process where the interpreter is
 * already running (we were loaded by `import cpyprof`: the module drives),
 * and nothing in a child of the profiled process (CPYPROF_PID names another
 * process) unless CPYPROF_SUBPROCESSES is on: then the child claims its own
 * run and writes its own file (cp_output_path).
 *
 * In a Python that has not started yet it parses the CPYPROF_* settings and
 * adds an audit hook (allowed before initialisation). The interpreter raises
 * cpython.run_file / run_command / run_module / run_stdin on the main
 * thread, with the GIL held, just before the program's code runs: that is
 * where profiling starts, so `import site` and the rest of start-up are not
 * in the profile (as with python -m cProfile). This
 * works the same for Debian's static-libpython executable, where Py_* entry
 * points cannot be interposed, and for a shared libpython.
 */
#include "python/profiler.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static cp_config preload_cfg;
static int preload_armed; /* 1: waiting for the first event after init; 2: done */

static int audit_hook(const char *event, PyObject *args, void *userdata)
{
    (void)args;
    (void)userdata;
    if (preload_armed != 1 || strncmp(event, "cpython.run_", 12) != 0 || !Py_IsInitialized())
        return 0;
    /* Set before starting: starting raises audit events itself
     * (sys.setprofile, imports) that come back here. */
    preload_armed = 2;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    char err[1024];
    if (cp_profiler_start(&preload_cfg, CP_ACT_PRELOAD, err, sizeof err) != 0)
        cp_log("%s; profiling disabled", err);
    /* Our hook's list entry was allocated before initialisation, with the
     * allocator of that moment; at exit CPython frees every entry with the
     * allocator of *that* moment. Under PYTHONMALLOC=debug or -X dev those
     * differ and the interpreter aborts ("bad ID"). The hook has done its
     * job: take it out of the list and never free it (24 bytes). This also
     * makes every later audit event free of our hook. */
    cp311_unlink_audit_hook(audit_hook);
    PyErr_Clear();
    PyErr_Restore(et, ev, tb);
    return 0;
}

__attribute__((constructor)) static void cp_preload_init(void)
{
    /* Weak symbols: all NULL outside a Python process. */
    if (!&Py_IsInitialized || !&PySys_AddAuditHook || !&Py_GetVersion || !&PyEval_SetProfile)
        return;
    if (Py_IsInitialized())
        return;
    const char *pid = getenv("CPYPROF_PID");
    bool child = pid && *pid && strtol(pid, NULL, 10) != (long)getpid();
    cp_config_defaults(&preload_cfg);
    char err[1024];
    if (cp_config_from_env(&preload_cfg, environ, err, sizeof err) != 0) {
        if (!child) /* the profiled process already said it */
            cp_log("%s; profiling disabled", err);
        return;
    }
    /* A child of the profiled process stays inactive, unless the run follows
     * subprocesses: then it claims a run of its own (its own file). */
    if (child && !preload_cfg.subprocesses)
        return;
    if (!pid || !*pid || child) {
        /* Claim the run so that Python children (which inherit LD_PRELOAD)
         * stay inactive. os.environ is built after this, so the program
         * sees CPYPROF_PID like any inherited variable. */
        char v[32];
        snprintf(v, sizeof v, "%ld", (long)getpid());
        setenv("CPYPROF_PID", v, 1);
    }
    /* Refuse another version or a debug build here, before the audit hook
     * exists: the hook later unlinks itself by walking _PyRuntime at the
     * offsets of our 3.11 headers, which in another layout is someone
     * else's memory (it crashed 3.10 and hung 3.13); and a hook left in the
     * list is freed at exit with the wrong allocator under -X dev. The check
     * reads only Py_GetVersion (safe before initialisation) and symbols. */
    if (cp311_check_runtime(err, sizeof err) != 0) {
        cp_log("%s; profiling disabled", err);
        return;
    }
    if (PySys_AddAuditHook(audit_hook, NULL) != 0)
        return;
    preload_armed = 1;
}
