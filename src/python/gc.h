/*
 * gc.h — garbage collections (recorded with option alloc): every
 * collection's generation, duration, objects collected and uncollectable,
 * and the function running when it began. See gc.c.
 */
#ifndef CPYPROF_PYTHON_GC_H
#define CPYPROF_PYTHON_GC_H

#include <stddef.h>

/** Appends our callback to gc.callbacks (GIL held). Never fails the run:
 *  logs one line and goes on without GC data. */
void cp_gc_start(void);

/** Removes it (GIL held). Safe when not started. */
void cp_gc_stop(void);

/** Writes the GC chunk (GIL held, after cp_gc_stop, before the trailer).
 *  0, or -1 with err. Writes nothing when GC recording did not run. */
int cp_gc_dump(char *err, size_t errlen);

/** The same from the SIGTERM dump (writer thread, no GIL, a collection
 *  may be recording meanwhile): reads the published records, frees
 *  nothing (the process is about to die). */
int cp_gc_dump_nogil(char *err, size_t errlen);

#endif
