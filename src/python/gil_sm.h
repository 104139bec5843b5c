/*
 * gil_sm.h — the GIL accounting state machine of one thread, and the log2
 * histograms: pure C, no Python, so unit tests drive it with a fake mutex
 * and a fake clock (tests/unit/test_gil.c). gil.c feeds it from the
 * redirected pthread_mutex_lock/unlock calls of the interpreter.
 *
 * CPython 3.11's take_gil/drop_gil (Python/ceval_gil.h) use the GIL's mutex
 * like this:
 *   take_gil:  lock(mutex); while (locked) cond_timedwait(cond, mutex);
 *              locked = 1; last_holder = tstate; ...; unlock(mutex)
 *   drop_gil:  lock(mutex); locked = 0; signal(cond); unlock(mutex)
 * (cond_timedwait releases and retakes the mutex inside glibc, not through
 * the GOT, so we never see those.) Hence, seen from one thread:
 *   lock   while this thread does not hold the GIL -> it starts waiting;
 *   unlock with locked == 1 and last_holder == this thread, while it was not
 *          holding -> it has acquired the GIL (the wait ends, a hold starts);
 *   unlock with locked == 0 while it was holding -> it released the GIL.
 * Every other lock/unlock of the GIL mutex (the lock in drop_gil, take_gil's
 * exit path of a thread killed at finalisation, where last_holder is another
 * thread) changes nothing.
 *
 * Forced switches: when another thread asked for the GIL (gil_drop_request,
 * after the switch interval), the eval loop calls drop_gil and then
 * take_gil at once: the thread wants the GIL back from the moment it
 * releases it. In between it may wait on switch_cond (under the GIL's
 * switch_mutex) or sit in the run queue, preempted by the thread it woke:
 * measured, four spinning threads on two cores spent 10-15% of their time
 * there. So a release while a drop request is pending (read under the
 * mutex, before the new holder can reset it) begins a wait at once; and a
 * lock of switch_mutex by a thread that neither holds nor waits also
 * begins one. A voluntary release (I/O) that happens to meet a pending
 * request is counted as waiting until the thread's next take_gil: rare,
 * as requests are served within microseconds. take_gil itself takes
 * switch_mutex while already waiting: no change.
 *
 * All functions run on the owning thread only (inside the wrappers: no
 * allocation, no lock, async-signal-safe). Totals are plain stores; a dump
 * from another thread may read a value one transition old, which is fine.
 */
#ifndef CPYPROF_PYTHON_GIL_SM_H
#define CPYPROF_PYTHON_GIL_SM_H

#include <stdint.h>

/** Histogram buckets: bucket 0 holds durations of 0 ns, bucket b >= 1 those
 *  in [2^(b-1), 2^b) ns; the last bucket also takes everything longer
 *  (2^38 ns is about 4.6 minutes). */
#define CP_GIL_NBUCKETS 40

/** The bucket of a duration in ns. */
static inline uint32_t cp_gil_bucket(uint64_t ns)
{
    if (ns == 0)
        return 0;
    uint32_t b = 64u - (uint32_t)__builtin_clzll(ns); /* 1 for ns == 1 */
    return b < CP_GIL_NBUCKETS ? b : CP_GIL_NBUCKETS - 1;
}

/** Upper bound (exclusive) of bucket b in ns; the last bucket is open. */
static inline uint64_t cp_gil_bucket_limit(uint32_t b)
{
    return b == 0 ? 1 : (uint64_t)1 << b;
}

/** Per-thread accounting. Times are ns on one monotonic time base. */
typedef struct cp_gil_acct {
    /* state (owning thread only) */
    uint32_t holding; /* this thread holds the GIL (as far as we saw) */
    uint32_t waiting; /* it is between wait-begin and acquisition */
    uint64_t t_wait0; /* when the current wait began */
    uint64_t t_hold0; /* when the current hold began */
    /* totals of completed intervals */
    uint64_t hold_ns, wait_ns;
    uint64_t acquisitions, releases;
    uint64_t max_hold_ns, max_wait_ns;
    uint64_t hold_hist[CP_GIL_NBUCKETS];
    uint64_t wait_hist[CP_GIL_NBUCKETS];
} cp_gil_acct;

/** What a call changed. */
enum cp_gil_event {
    CP_GIL_EV_NONE = 0,
    CP_GIL_EV_WAIT = 1,     /* a wait began */
    CP_GIL_EV_ACQUIRED = 2, /* the GIL was acquired; *dur = the wait */
    CP_GIL_EV_RELEASED = 3, /* the GIL was released; *dur = the hold */
};

/** The thread locks the GIL's mutex at time `now`. */
static inline int cp_gil_on_lock(cp_gil_acct *a, uint64_t now)
{
    if (a->holding)
        return CP_GIL_EV_NONE; /* drop_gil taking the mutex */
    if (a->waiting)
        return CP_GIL_EV_NONE; /* already waiting since a forced switch */
    a->waiting = 1;
    a->t_wait0 = now;
    return CP_GIL_EV_WAIT;
}

/** The thread locks the GIL's switch_mutex at time `now`. */
static inline int cp_gil_on_switch_lock(cp_gil_acct *a, uint64_t now)
{
    if (a->holding || a->waiting)
        return CP_GIL_EV_NONE; /* take_gil's use, or not ours to judge */
    a->waiting = 1;
    a->t_wait0 = now;
    return CP_GIL_EV_WAIT;
}

/** The thread unlocks the GIL's mutex at time `now`; `locked` is the GIL's
 *  locked flag and `holder_is_me` whether last_holder is this thread's state
 *  (both read while the mutex is still held, so they are stable), `forced`
 *  whether a drop request is pending (see above). A thread
 *  that was already waiting when accounting began acquires without a seen
 *  wait-begin: its wait is counted from `since` (the start of accounting). */
static inline int cp_gil_on_unlock(cp_gil_acct *a, int locked, int holder_is_me, int forced,
                                   uint64_t now, uint64_t since, uint64_t *dur)
{
    if (!a->holding && locked == 1 && holder_is_me) {
        uint64_t t0 = a->waiting ? a->t_wait0 : since;
        uint64_t w = now > t0 ? now - t0 : 0;
        a->waiting = 0;
        a->holding = 1;
        a->t_hold0 = now;
        a->wait_ns += w;
        a->acquisitions++;
        if (w > a->max_wait_ns)
            a->max_wait_ns = w;
        a->wait_hist[cp_gil_bucket(w)]++;
        *dur = w;
        return CP_GIL_EV_ACQUIRED;
    }
    if (a->holding && locked == 0) {
        uint64_t h = now > a->t_hold0 ? now - a->t_hold0 : 0;
        a->holding = 0;
        a->hold_ns += h;
        a->releases++;
        if (h > a->max_hold_ns)
            a->max_hold_ns = h;
        a->hold_hist[cp_gil_bucket(h)]++;
        if (forced) { /* made to drop it: it wants it back from now on */
            a->waiting = 1;
            a->t_wait0 = now;
        }
        *dur = h;
        return CP_GIL_EV_RELEASED;
    }
    return CP_GIL_EV_NONE;
}

/** The thread that starts accounting holds the GIL from `now`. */
static inline void cp_gil_start_holding(cp_gil_acct *a, uint64_t now)
{
    a->holding = 1;
    a->waiting = 0;
    a->t_hold0 = now;
}

/** Totals as of `now`, counting an open hold or wait up to `now` (for the
 *  dump: accounting stops while threads still hold or wait). */
static inline void cp_gil_totals_at(const cp_gil_acct *a, uint64_t now, uint64_t *hold_ns,
                                    uint64_t *wait_ns, uint64_t *max_hold, uint64_t *max_wait)
{
    *hold_ns = a->hold_ns;
    *wait_ns = a->wait_ns;
    *max_hold = a->max_hold_ns;
    *max_wait = a->max_wait_ns;
    if (a->holding && now > a->t_hold0) {
        uint64_t h = now - a->t_hold0;
        *hold_ns += h;
        if (h > *max_hold)
            *max_hold = h;
    } else if (a->waiting && now > a->t_wait0) {
        uint64_t w = now - a->t_wait0;
        *wait_ns += w;
        if (w > *max_wait)
            *max_wait = w;
    }
}

#endif
