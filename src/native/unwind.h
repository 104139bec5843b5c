/*
 * unwind.h — native stacks for sampling (--native): capture in the signal
 * handler, the eval loop's address range for merging with Python frames,
 * and the writer-side naming of the captured addresses.
 *
 * Capture (signal handler): libunwind's unw_backtrace, local-only
 * (UNW_LOCAL_ONLY), into a caller's fixed array. unw_backtrace walks with
 * libunwind's per-thread trace cache (frame descriptions by address) and is
 * far cheaper than an unw_step loop. Hazards, libunwind 1.6 x86_64:
 *  - first use in a thread allocates: the trace cache is created (mmap'd
 *    memory, a pthread_setspecific that may calloc its second-level array
 *    for keys >= 32) and libunwind's __thread variables are touched (a
 *    dlopen'ed libunwind has dynamic TLS: the first access in a thread goes
 *    through __tls_get_addr, which may malloc). None of that is signal-safe,
 *    so cp_unwind_thread_init() does a first unw_backtrace on the thread,
 *    outside any handler, and the handler captures only on threads where it
 *    ran (an initial-exec TLS flag). Threads that existed when sampling
 *    started, other than the starting one, run it from a one-shot profile
 *    hook at their next Python call (sample_timer.c); Python frames only
 *    until then;
 *  - an address not in the trace cache yet makes libunwind read DWARF CFI
 *    (dl_iterate_phdr: the loader's recursive lock; libunwind's own locks
 *    are taken with all signals blocked, so a handler never finds one held
 *    by its own thread). A handler interrupting this thread inside dlopen
 *    could see a half-updated object list: the walk runs under the sampling
 *    fault guard (a fault drops the sample), and the risk is accepted as
 *    other in-process samplers do;
 *  - frames with no CFI (JIT code) end the walk early: the Python frames
 *    not matched to an eval-loop frame are then appended outermost.
 *
 * The first entries are the handler's own frames and the kernel's signal
 * trampoline (__restore_rt): everything before the interrupted instruction
 * pointer (from the ucontext) is dropped. The interrupted frame keeps its
 * exact address; the others are return addresses and are stored minus one,
 * so they name the call instruction (a call ending a function would
 * otherwise be named after the next function).
 */
#ifndef CPYPROF_NATIVE_UNWIND_H
#define CPYPROF_NATIVE_UNWIND_H

#include "python/sample_agg.h"

#include <stdbool.h>
#include <stdint.h>

#define CP_UNWIND_MAX 128 /* native frames kept per sample */

/** Warms libunwind up on the calling thread (not in a signal handler).
 *  Idempotent. */
void cp_unwind_thread_init(void);

/** Whether cp_unwind_thread_init ran on this thread (signal-safe). */
bool cp_unwind_thread_ready(void);

/** In the signal handler: the interrupted thread's native stack, innermost
 *  first, into ips (at most CP_UNWIND_MAX). `uc` is the handler's ucontext.
 *  Returns the count, 0 when this thread is not warmed up or the
 *  interrupted frame is not found. */
int cp_unwind_capture(uint64_t *ips, const void *uc);

/** [lo, hi) of _PyEval_EvalFrameDefault, found at start (no handler may
 *  run meanwhile). Returns 0, or -1 (then no frame is in the eval loop, and
 *  Python frames are all put outermost). */
int cp_unwind_eval_init(void);
extern uintptr_t cp_unwind_eval_lo, cp_unwind_eval_hi;

static inline bool cp_unwind_in_eval(uint64_t ip)
{
    return ip >= cp_unwind_eval_lo && ip < cp_unwind_eval_hi;
}

/** Writer thread: the function id of a native address (cp_sagg_native_fn),
 *  symbolized once per address and cached. */
uint32_t cp_unwind_frame_id(cp_sfuncs *funcs, uint64_t ip);

/** Frees the writer's caches (after the writer stopped). */
void cp_unwind_reset(void);

#endif
