/*
 * The sampling floor: what a machine charges a program for timer signals
 * alone, with a handler that does nothing.
 *
 * Preloaded (LD_PRELOAD) into the benchmark's Python, it arms one timer
 * per thread, as cpyprof's wall-clock sampler does (timer_create on
 * CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGPROF), at SIGFLOOR_HZ (default 1000):
 * for the main thread from its constructor, for every thread made later
 * through an interposed pthread_create. Every expiry interrupts the thread;
 * the handler only returns. The kernel's timer interrupt, the signal
 * delivery and the return (and, on a virtual machine, the hypervisor's
 * share of each timer interrupt) are all that is measured.
 *
 * Unlike cpyprof it never parks a thread that waits: a program whose
 * threads block (bench/workloads.py's threads) gets every signal, so its
 * floor row can be above cpyprof's own.
 *
 * Built on the fly by bench_sample.py (cc -shared -fPIC -O2 -ldl); not part
 * of the cpyprof product.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long period_ns;

static void on_tick(int sig)
{
    (void)sig;
}

/* A per-thread timer aimed at the calling thread; never deleted: the
 * kernel drops it when the thread exits. */
static void arm_this_thread(void)
{
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = SIGPROF;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t t;
    if (timer_create(CLOCK_MONOTONIC, &ev, &t) != 0)
        return;
    struct itimerspec its = {{0, period_ns}, {0, period_ns}};
    timer_settime(t, 0, &its, NULL);
}

typedef struct {
    void *(*start)(void *);
    void *arg;
} start_args;

static void *start_armed(void *p)
{
    start_args a = *(start_args *)p;
    free(p);
    arm_this_thread();
    return a.start(a.arg);
}

int pthread_create(pthread_t *th, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (!real)
        real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(
            RTLD_NEXT, "pthread_create");
    start_args *a = period_ns ? malloc(sizeof *a) : NULL;
    if (!a)
        return real(th, attr, start, arg);
    a->start = start;
    a->arg = arg;
    int rc = real(th, attr, start_armed, a);
    if (rc != 0)
        free(a);
    return rc;
}

__attribute__((constructor)) static void sigfloor_init(void)
{
    const char *hz = getenv("SIGFLOOR_HZ");
    long rate = hz ? atol(hz) : 1000;
    if (rate <= 0 || rate > 100000)
        return;
    period_ns = 1000000000L / rate;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    arm_this_thread();
}
