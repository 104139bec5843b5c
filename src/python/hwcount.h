/*
 * hwcount.h — hardware instruction counts (perf_event_open), when the
 * machine offers them: one counter of user-space instructions retired by the
 * thread that started profiling, from start to the end of the run.
 *
 * Many virtual machines (these development VMs among them) expose no
 * hardware counters: perf_event_open fails (ENOENT, EOPNOTSUPP) or
 * perf_event_paranoid forbids it (EACCES). Then the profile's META says
 * why, once, in `instructions_unavailable`, and nothing else changes.
 */
#ifndef CPYPROF_PYTHON_HWCOUNT_H
#define CPYPROF_PYTHON_HWCOUNT_H

#include "core/writer.h"

/** Opens the counter on the calling thread (closing one left from an
 *  earlier run). Never fails the run: a failure is remembered for META. */
void cp_hw_start(void);

/** Appends META entries: `instructions` (decimal) and `instructions_scope`,
 *  or `instructions_unavailable` with the reason. Reads the counter with
 *  read(2) only (this runs at exit and from the SIGTERM path). */
void cp_hw_meta(cp_buf *b);
/** The counter's descriptor, or -1 (the writer thread keeps it in its own
 *  descriptor table, drain.c; the program's copy is closed once the
 *  writer holds it). */
int cp_hw_fd(void);

/** Called by the thread that started the writer, once the writer holds the
 *  counter in its private descriptor table: closes the program's copy, so
 *  the program never sees our descriptor. From then on only the writer can
 *  read the counter (directly, or through cp_hw_snapshot). */
void cp_hw_hand_to_writer(void);

/** Called by the writer (private table) when its loop ends at stop: reads
 *  the counter once, for a cp_hw_meta made later on another thread. */
void cp_hw_snapshot(void);

#endif
