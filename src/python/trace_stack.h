/*
 * trace_stack.h — the shadow-stack helpers shared by the profile hooks of
 * trace.c (trace mode) and timeline_hook.c (timeline mode). Hot path: static
 * inline, GIL held, the thread's own state only.
 */
#ifndef CPYPROF_PYTHON_TRACE_STACK_H
#define CPYPROF_PYTHON_TRACE_STACK_H

#include "python/profiler.h"

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Reserves the next stack entry, or NULL past max_depth (counted). */
static inline cp_frame_entry *push_slot(cp_thread *th)
{
    if (UNLIKELY(th->depth >= th->max_depth)) {
        th->overflow++;
        th->untracked++;
        return NULL;
    }
    return &th->stack[th->depth];
}

/* Index of the entry for frame `f` + 1, or 0 if it is not on the stack. */
static inline uint32_t find_frame(const cp_thread *th, const void *f)
{
    uint32_t i = th->depth;
    while (i > 0 && th->stack[i - 1].what != f)
        i--;
    return i;
}

#endif
