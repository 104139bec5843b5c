/*
 * reserve.h — address space for the allocation counter's size shadows
 * (sizeshadow.h, flatshadow.h): large MAP_NORESERVE mappings of which only
 * the pages touched use memory.
 *
 * Hazard: a reservation costs no memory, but it counts in full against
 * RLIMIT_AS (`ulimit -v`). A program that runs under such a limit sizes
 * its memory to it (or is killed by MemoryError at it), and 128 MiB or
 * more of ours would make it fail sooner, which the program must not
 * notice. So under a finite RLIMIT_AS nothing is reserved and the callers
 * keep sizes in the hash map (core/ptrmap.h: memory in proportion to the
 * blocks held, slower per call). mmap and getrlimit only: this runs inside
 * allocator hooks, so never malloc.
 */
#ifndef CPYPROF_CORE_RESERVE_H
#define CPYPROF_CORE_RESERVE_H

#include <stdbool.h>
#include <stddef.h>

/** Reserves `bytes` of zeroed, readable and writable address space
 *  (MAP_NORESERVE; with `dontdump`, left out of core dumps), or NULL when
 *  mmap refuses or the process has a finite RLIMIT_AS (see above). */
void *cp_reserve(size_t bytes, bool dontdump);

#endif
