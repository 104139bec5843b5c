/*
 * gil.h — GIL accounting: hold and wait time per thread, with the stacks
 * that hold and wait (option gil=exact), or the holder's share read by a
 * sampling thread (gil=sample). See gil.c and docs/usage.md.
 */
#ifndef CPYPROF_PYTHON_GIL_H
#define CPYPROF_PYTHON_GIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Starts accounting per cp_g.cfg.gil, with the GIL held, after the
 *  profiler's own start succeeded. Never fails the run: when the GIL cannot
 *  be watched it logs one line and the profile goes on without GIL data. */
void cp_gil_start(void);

/** Stops accounting (GIL held): puts the interpreter's GOT slots back, or
 *  stops gil=sample's reads. Safe when accounting never started. */
void cp_gil_stop(void);

/** Writer thread, every loop iteration (drain.c): with gil=sample, reads
 *  the GIL's holder when a read is due. Returns the wait to use, in
 *  microseconds: `timeout_us`, or less when the next read is due sooner. */
int64_t cp_gil_writer_tick(int64_t timeout_us);

/** Writes the GIL chunks; called by cp_dump_profile (dump.c) once per run,
 *  before the threads, symbols and trailer. With the GIL (`have_gil`),
 *  after cp_gil_stop. Without it (the SIGTERM dump on the writer thread,
 *  the program's threads still running): accounting is turned off first
 *  (a flag; the GOT slots stay, the process is about to die) and the
 *  totals, histograms and trees are read as they are — memory-safe, see
 *  gil.c. 0, or -1 with err. Writes nothing (0) when accounting did not
 *  run. */
int cp_gil_dump(bool have_gil, char *err, size_t errlen);

#endif
