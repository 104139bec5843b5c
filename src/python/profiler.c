/*
 * profiler.c — starting and stopping a profiling run, with the GIL held, and
 * the process-level hooks that make the file complete at every exit:
 * Python's atexit (normal end, sys.exit, uncaught exception, KeyboardInterrupt
 * from SIGINT), a SIGTERM handler (only if the program left SIGTERM at its
 * default), and fork handlers (the child of a fork stops profiling: it must
 * neither write to the parent's file nor pay for the hook).
 */
#include "python/profiler.h"
#include "python/alloc.h"
#include "python/gc.h"
#include "python/gil.h"
#include "python/hwcount.h"
#include "python/sample.h"
#include "python/syswrap.h"

#include "cpyprof/format.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

cp_profiler cp_g = {
    .co_extra_index = -1,
    .writer = {.fd = -1},
};

/* The writer thread's own descriptor table (drain.c) has no stderr: keeping
 * one would hold the program's stderr open after the program closed it (a
 * daemon's parent waiting for EOF would wait for ever). Borrow the program's
 * descriptor 2 for one message: pidfd_getfd copies it from the shared table;
 * where that is refused, reopen it through /proc (appending, as a log). */
static int borrow_stderr(void)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_getfd)
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd >= 0) {
        int fd = (int)syscall(SYS_pidfd_getfd, pidfd, 2, 0);
        close(pidfd);
        if (fd >= 0)
            return fd;
    }
#endif
    return open("/proc/self/fd/2", O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY);
}

void cp_log(const char *fmt, ...)
{
    /* One write(2) per message so lines from several processes don't mix;
     * stderr's FILE buffer is the program's, leave it alone. */
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "cpyprof: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n +
                 ((size_t)m < sizeof buf - (size_t)n - 1 ? (size_t)m : sizeof buf - (size_t)n - 2);
    buf[len++] = '\n';
    int fd = cp_writer_has_private_fds() ? borrow_stderr() : 2;
    if (fd < 0)
        return;
    ssize_t w = write(fd, buf, len);
    (void)w;
    if (fd != 2)
        close(fd);
}

/* ---- SIGTERM -------------------------------------------------------------- */

static void die_by_sigterm_now(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(SIGTERM);
}

/* Whether the thread calling fork() is the process's first thread (Python's
 * main thread). Recorded in the parent, read in the child. */
static volatile int fork_from_main;

/* Set by os.register_at_fork(before=...) and cleared after the fork on both
 * sides: the fork under way is os.fork() (or a preexec_fn fork), so the
 * child will run our after_in_child callback. A fork from C (subprocess's
 * fork+exec) runs pthread_atfork handlers but never that callback. */
static volatile int python_fork;
/* The child blocked SIGTERM in its atfork handler (below), to unblock once
 * its own profiler runs. */
static volatile int term_blocked_for_start;
/* A SIGTERM reached a child of os.fork() before its atfork handler ran (the
 * child may not have been scheduled at all yet): kept for its profiler. */
static volatile int child_term_pending;

/* A SIGTERM that came while the profile was being written at stop. */
static _Atomic int term_while_stopping;

static void on_sigterm(int sig)
{
    /* Async-signal-safe only: a futex wake, poll, sigaction, raise.
     *
     * Without us the program would die right here, so this thread must not
     * go back to running Python code: it wakes the writer thread, which
     * writes the profile without the GIL and then kills the process with
     * SIGTERM at its default disposition, and meanwhile waits. If there is no
     * writer, or it takes longer than 10 s, die without the profile. */
    (void)sig;
    int saved = errno;
    if (getpid() != cp_g.run_pid && cp_g.cfg.subprocesses && python_fork && fork_from_main) {
        /* A followed child of os.fork() before its fork handler ran (these
         * flags are the parent's at the fork): the handler blocks SIGTERM
         * and raises it again, so it is delivered once the child's own run
         * has started and can write its profile. */
        child_term_pending = 1;
        errno = saved;
        return;
    }
    if (getpid() != cp_g.run_pid) {
        /* A forked child before its fork handler ran: the state and the
         * writer are the parent's (the wake is a private futex now, which
         * cannot reach the parent, but the state says RUNNING and no writer
         * of ours exists here). Die as without us. */
        die_by_sigterm_now();
        errno = saved;
        return;
    }
    if (atomic_load(&cp_g.state) == CP_STOPPING) {
        /* cp_profiler_stop is writing the profile on another thread (or
         * this one, interrupted): it delivers the signal when done. */
        atomic_store(&term_while_stopping, 1);
        errno = saved;
        return;
    }
    if (atomic_load(&cp_g.state) == CP_RUNNING && cp_g.writer_running) {
        /* The flag is enough (the writer polls every 10 ms); the futex wakes
         * it at once. */
        cp_note_term();
        cp_wake_writer('T');
        /* SIGTERM is blocked while its handler runs; unblock it so the
         * writer's re-raise (at SIG_DFL) ends the process at once. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
        poll(NULL, 0, 10000);
    }
    die_by_sigterm_now();
    errno = saved;
}

static void install_term_handler(void)
{
    struct sigaction old;
    if (sigaction(SIGTERM, NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
        (old.sa_flags & SA_SIGINFO))
        return; /* the program handles SIGTERM itself: leave it alone */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) == 0)
        cp_g.term_handler_installed = true;
}

static void remove_term_handler(void)
{
    if (!cp_g.term_handler_installed)
        return;
    struct sigaction cur;
    if (sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == on_sigterm) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGTERM, &sa, NULL);
    }
    cp_g.term_handler_installed = false;
}

/* ---- fork ----------------------------------------------------------------- */

static void atfork_prepare(void)
{
    fork_from_main = (pid_t)syscall(SYS_gettid) == getpid();
}

static void atfork_child(void)
{
    /* Async-signal-safe context (after fork in a threaded parent): only
     * flags and close(). The writer thread does not exist in the child. */
    if (atomic_load(&cp_g.state) == CP_OFF)
        return;
    cp_g.inert = 1;
    cp_sample_atfork_child();
    cp_g.writer_running = false;
    /* The file's descriptor is normally in the writer thread's own table,
     * which the child does not have (route set): nothing to close. Otherwise
     * closed only if still ours (fstat is async-signal-safe): a number the
     * program closed and reused belongs to the program. */
    if (!cp_g.writer.route && cp_writer_fd_ok(&cp_g.writer))
        close(cp_g.writer.fd);
    cp_g.writer.fd = -1;
    cp_g.writer.route = NULL;
    cp_g.term_handler_installed = false;
    atomic_store(&cp_g.dumped, 1);
    /* The parent's run state (thread list and ids, string and function
     * tables, the C-function id cache) is still here and must not leak into
     * a run the child starts: its trees refer to the parent's function ids.
     * Freeing needs the GIL and malloc, so the next start does it. */
    cp_g.stale_run_state = true;
    /* --subprocesses: the child profiles itself into its own file, but not
     * from here (no GIL, no malloc in a child of a threaded parent): the
     * after_in_child hook below restarts it with the GIL held. A child forked
     * from C (subprocess's fork+exec) never runs that hook; it is followed
     * by the library's constructor after the exec instead. */
    /* Not after a fork from another thread: there the child's only thread
     * ends with pthread_exit when its function returns (no atexit, no
     * exit()), and the process ends when its last thread does, so our
     * writer thread would keep it alive for ever (test_threading's
     * join-in-forked-from-thread tests hung). Such a child is not followed. */
    cp_g.follow_fork = cp_g.cfg.subprocesses && fork_from_main;
    /* A followed child killed by SIGTERM before its profiler has started
     * would leave no file at all (a pool's terminate() reaching a worker
     * still starting up). Hold SIGTERM back until the after_in_child
     * callback has started the run and installed the handler that writes
     * the profile first; then it is delivered. Only for os.fork(): a child
     * that never runs the callback would exec with SIGTERM blocked. */
    term_blocked_for_start = 0;
    if (cp_g.follow_fork && python_fork) {
        sigset_t set, old;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        if (pthread_sigmask(SIG_BLOCK, &set, &old) == 0 && !sigismember(&old, SIGTERM))
            term_blocked_for_start = 1;
    }
    python_fork = 0;
    if (child_term_pending) { /* see on_sigterm */
        child_term_pending = 0;
        if (term_blocked_for_start)
            raise(SIGTERM); /* pending until the run has started */
        else
            die_by_sigterm_now();
    }
    atomic_store(&cp_g.state, CP_OFF);
}

static PyObject *py_before_fork(PyObject *self, PyObject *unused)
{
    python_fork = 1;
    Py_RETURN_NONE;
}

static PyObject *py_after_fork_parent(PyObject *self, PyObject *unused)
{
    python_fork = 0;
    Py_RETURN_NONE;
}

static PyMethodDef before_fork_def = {"_cpyprof_before_fork", py_before_fork, METH_NOARGS,
                                      "cpyprof: an os.fork() is starting"};
static PyMethodDef after_fork_parent_def = {"_cpyprof_after_fork_parent", py_after_fork_parent,
                                            METH_NOARGS, "cpyprof: the os.fork() is done"};

/* os.register_at_fork(after_in_child=...): with the GIL, remove the hook
 * from the thread that survived the fork, and restore SIGTERM. */
static PyObject *py_after_fork_child(PyObject *self, PyObject *unused)
{
    if (cp_g.inert && cp_trace_is_ours(PyThreadState_Get()->c_profilefunc))
        cp311_set_profile(PyThreadState_Get(), NULL, NULL); /* the parent's flag may be set */
    struct sigaction cur;
    if (sigaction(SIGTERM, NULL, &cur) == 0 && cur.sa_handler == on_sigterm) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGTERM, &sa, NULL);
    }
    if (cp_g.follow_fork) {
        /* After PyOS_AfterFork_Child: the GIL and the thread states are
         * sane again, only this thread exists, and the parent's run state is
         * dropped by the start (stale_run_state). */
        cp_g.follow_fork = false;
        cp_g.clock_from_parent = true;
        cp_config cfg = cp_g.cfg;
        char err[1024];
        if (cp_profiler_start(&cfg, cp_g.activation, err, sizeof err) != 0)
            cp_log("%s; this child process is not profiled", err);
    }
    if (term_blocked_for_start) {
        /* A SIGTERM that came meanwhile is delivered here, to our handler
         * if the run started (it writes the profile, then dies by it). */
        term_blocked_for_start = 0;
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    }
    Py_RETURN_NONE;
}

static PyMethodDef after_fork_def = {"_cpyprof_after_fork_child", py_after_fork_child, METH_NOARGS,
                                     "cpyprof: stop profiling in a forked child"};

/* ---- atexit --------------------------------------------------------------- */

static PyObject *py_atexit(PyObject *self, PyObject *unused)
{
    char err[512];
    if (atomic_load(&cp_g.state) == CP_RUNNING &&
        cp_profiler_stop(CPYPROF_END_EXIT, err, sizeof err) < 0)
        cp_log("%s", err);
    Py_RETURN_NONE;
}

static PyMethodDef atexit_def = {"_cpyprof_atexit", py_atexit, METH_NOARGS,
                                 "cpyprof: write the profile at exit"};

static int call_module(const char *module, const char *func, const char *kw, PyMethodDef *def)
{
    PyObject *m = PyImport_ImportModule(module);
    if (!m)
        return -1;
    PyObject *fn = PyCFunction_NewEx(def, NULL, NULL);
    PyObject *meth = PyObject_GetAttrString(m, func);
    PyObject *r = NULL;
    if (fn && meth) {
        if (kw) {
            PyObject *args = PyTuple_New(0);
            PyObject *kwargs = Py_BuildValue("{sO}", kw, fn);
            if (args && kwargs)
                r = PyObject_Call(meth, args, kwargs);
            Py_XDECREF(args);
            Py_XDECREF(kwargs);
        } else {
            r = PyObject_CallOneArg(meth, fn);
        }
    }
    Py_XDECREF(r);
    Py_XDECREF(meth);
    Py_XDECREF(fn);
    Py_DECREF(m);
    return r ? 0 : -1;
}

/* ---- os._exit (subprocesses) -------------------------------------------- */

/* os._exit skips atexit, and it is how multiprocessing's forked workers and
 * forkserver children end: without this their profiles would have no end.
 * With subprocesses on, os._exit is replaced by a function that writes the
 * profile and then calls the original (kept here for the process's life). */
static PyObject *orig_os_exit;

static PyObject *py_os_exit(PyObject *self, PyObject *args, PyObject *kwargs)
{
    (void)self;
    char err[512];
    if (atomic_load(&cp_g.state) == CP_RUNNING &&
        cp_profiler_stop(CPYPROF_END_EXIT, err, sizeof err) < 0)
        cp_log("%s", err);
    return PyObject_Call(orig_os_exit, args, kwargs);
}

static PyMethodDef os_exit_def = {"_exit", (PyCFunction)(void (*)(void))py_os_exit,
                                  METH_VARARGS | METH_KEYWORDS,
                                  "Exit to the system with specified status, without normal exit "
                                  "processing (cpyprof writes its profile first)."};

static void wrap_os_exit(void)
{
    if (cp_g.os_exit_wrapped)
        return;
    PyObject *os = PyImport_ImportModule("os");
    PyObject *fn = os ? PyObject_GetAttrString(os, "_exit") : NULL;
    PyObject *wrapper = fn ? PyCFunction_NewEx(&os_exit_def, NULL, NULL) : NULL;
    if (wrapper && PyObject_SetAttrString(os, "_exit", wrapper) == 0) {
        orig_os_exit = fn; /* owned for good */
        fn = NULL;
        cp_g.os_exit_wrapped = true;
    } else {
        PyErr_Clear();
    }
    Py_XDECREF(wrapper);
    Py_XDECREF(fn);
    Py_XDECREF(os);
}

static void register_process_hooks(void)
{
    cp_syswrap_install(); /* sys functions that would see our hooks (syswrap.c) */
    if (cp_g.cfg.subprocesses)
        wrap_os_exit();
    if (!cp_g.atexit_registered) {
        if (call_module("atexit", "register", NULL, &atexit_def) == 0)
            cp_g.atexit_registered = true;
        else
            PyErr_Clear();
    }
    if (!cp_g.atfork_registered) {
        pthread_atfork(atfork_prepare, NULL, atfork_child);
        if (call_module("os", "register_at_fork", "after_in_child", &after_fork_def) != 0 ||
            call_module("os", "register_at_fork", "before", &before_fork_def) != 0 ||
            call_module("os", "register_at_fork", "after_in_parent", &after_fork_parent_def) != 0)
            PyErr_Clear();
        cp_g.atfork_registered = true;
    }
}

/* ---- start / stop --------------------------------------------------------- */

static void release_run_state(void)
{
    cp_threads_free_all();
    cp_names_reset();
    cp_symtab_destroy(&cp_g.syms);
}

int cp_profiler_start(const cp_config *cfg, int activation, char *err, size_t errlen)
{
    int st = atomic_load(&cp_g.state);
    if (st != CP_OFF) {
        snprintf(err, errlen, "cpyprof is already profiling this process (started %s)",
                 cp_g.activation == CP_ACT_PRELOAD ? "by LD_PRELOAD" : "by cpyprof.start()");
        return -1;
    }
    if (cp311_check_runtime(err, errlen) != 0)
        return -1;
    if (cp_g.stale_run_state) {
        /* A forked child of a profiled parent (see atfork_child): drop the
         * parent's state, with the GIL, before anything is added to it. */
        release_run_state();
        cp_g.stale_run_state = false;
    }
    cp_g.cfg = *cfg;
    cp_g.activation = activation;
    cp_g.run_pid = getpid();
    if (cp_g.co_extra_index < 0) {
        cp_g.co_extra_index = _PyEval_RequestCodeExtraIndex(cp_alloc_code_extra_freed);
        if (cp_g.co_extra_index < 0) {
            PyErr_Clear();
            snprintf(err, errlen, "no free co_extra slot in this interpreter");
            return -1;
        }
    }
    if (cp_output_path(cfg, (long)getpid(), cp_g.path, sizeof cp_g.path, err, errlen) != 0)
        return -1;
    size_t olen = strlen(cfg->output);
    if (cfg->subprocesses && olen > 1 && cfg->output[olen - 1] == '/')
        (void)mkdir(cfg->output, 0777); /* "-o dir/": made if missing; open says if not */
    if (cp_writer_open(&cp_g.writer, cp_g.path, err, errlen) != 0)
        return -1;
    if (cp_g.clock_from_parent) /* a followed fork: the parent's rate holds */
        cp_clock_rebase(&cp_g.clock);
    else
        cp_clock_calibrate(&cp_g.clock, 5, true);
    cp_g.clock_from_parent = false;
    if (cp_symtab_init(&cp_g.syms) != 0 || cp_threads_init_type() != 0) {
        PyErr_Clear();
        snprintf(err, errlen, "out of memory");
        cp_writer_close(&cp_g.writer, err, errlen);
        return -1;
    }
    cp_g.generation++;
    cp_g.events_written = 0;
    atomic_store(&cp_g.dumped, 0);
    if (cp_write_meta(err, errlen) != 0) {
        char e2[64];
        cp_writer_close(&cp_g.writer, e2, sizeof e2);
        cp_symtab_destroy(&cp_g.syms);
        return -1;
    }
    cp_hw_start(); /* instructions of this thread, when the machine counts them */
    /* Imports (atexit, os) before the hooks go live: not in the profile. */
    register_process_hooks();
    cp_g.inert = 0;
    atomic_store(&cp_g.state, CP_RUNNING);
    bool sampling = cfg->mode == CP_MODE_SAMPLE;
    if ((sampling && cp_sample_start(err, errlen) != 0) ||
        cp_threads_attach_all(err, errlen) != 0) {
        cp_g.inert = 1;
        if (sampling)
            cp_sample_stop();
        cp_threads_detach_all();
        atomic_store(&cp_g.state, CP_OFF);
        char e2[64];
        cp_writer_close(&cp_g.writer, e2, sizeof e2);
        release_run_state();
        return -1;
    }
    cp_cthreads_start();
    cp_gil_start();   /* never fails the run: logs why and goes on without GIL data */
    cp_gc_start();    /* likewise */
    cp_alloc_start(); /* likewise; last, so that our own start is not counted */
    if (cp_writer_thread_start(err, errlen) != 0) {
        /* Not fatal: aggregated trees need no writer; rings just fill up. */
        cp_log("%s (continuing without it)", err);
    }
    if (cp_g.writer_running)
        install_term_handler();
    return 0;
}

int cp_profiler_stop(int end_reason, char *err, size_t errlen)
{
    if (atomic_load(&cp_g.state) != CP_RUNNING) {
        snprintf(err, errlen, "cpyprof is not running");
        return 1;
    }
    atomic_store(&cp_g.state, CP_STOPPING);
    cp_alloc_stop(); /* first: the stop itself is not the program's allocations */
    cp_gc_stop();
    cp_gil_stop(); /* the stop itself is not GIL activity of the program */
    cp_cthreads_stop();
    /* The GIL is held: no hook is running now, and after this none will. */
    cp_threads_detach_all();
    cp_g.inert = 1;
    if (cp_g.cfg.mode == CP_MODE_SAMPLE)
        cp_sample_stop(); /* no handler runs after this */
    /* Our SIGTERM handler stays until the file is complete: while the state
     * is STOPPING it only notes the signal (a pool's terminate() often hits
     * a worker that is writing its profile in os._exit). */
    atomic_store(&term_while_stopping, 0);
    cp_writer_thread_stop();
    int term = cp_take_pending_term();
    cp_drain_all();
    /* GIL chunks: cp_dump_profile writes them (also on SIGTERM). */
    if (cp_alloc_dump(err, errlen) != 0) /* before the trailer; losing it loses only ALLOC data */
        cp_log("%s", err);
    if (cp_gc_dump(err, errlen) != 0)
        cp_log("%s", err);
    int rc = cp_dump_profile(end_reason, 0, true, err, errlen);
    cp_writer_thread_join(); /* after the last chunk, which it may have written */
    remove_term_handler();
    term |= atomic_exchange(&term_while_stopping, 0);
    release_run_state();
    atomic_store(&cp_g.state, CP_OFF);
    if (term) /* a SIGTERM arrived while we stopped: deliver it now */
        kill(getpid(), SIGTERM);
    return rc;
}
