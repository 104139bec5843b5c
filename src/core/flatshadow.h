/*
 * flatshadow.h — block address -> size for blocks below 64 KiB at 16-byte
 * aligned addresses (nearly all: pymalloc and glibc hand out 16-byte
 * aligned blocks), in flat arrays found with one table read: the
 * allocation counter's fastest size lookup (MEM/OBJ side).
 *
 * Layout: the 47-bit user address space of x86-64 (4-level paging;
 * addresses above it are only handed out to a program that asks mmap for
 * them) is cut into 1 GiB windows. A window holding counted blocks gets
 * an array of one u16 per 16-byte granule (128 MiB reserved with
 * MAP_NORESERVE and MADV_DONTDUMP: only the pages touched use memory, 4
 * KiB per 32 KiB of address space holding counted blocks), holding size +
 * 1 of the block that starts there (0: none), as sizeshadow.h's region
 * arrays do. The directory holds, per window, the array's address minus
 * the window's first granule's offset, so that the slot of p is at
 * dir[p >> 30] + (p >> 3) (p 16-byte aligned: p >> 3 is twice the
 * granule number): a mask test, a table read and an add, where
 * sizeshadow.h's region cache needed a dozen instructions more on every
 * allocation and free (measured with callgrind on alloc_heavy:
 * bench/README.md). A whole-address-space array (16 TiB reserved) would
 * save the table read, but valgrind and a `ulimit -v` refuse it.
 *
 * At most CP_FLAT_MAX_WINDOWS windows (8 GiB reserved); past that, or when
 * a reservation is refused (vm.overcommit_memory=2 counts it), a block
 * has no slot and the caller uses its other structures. Not thread-safe:
 * the caller serialises (the GIL). mmap only, never malloc (this runs
 * inside allocator hooks).
 */
#ifndef CPYPROF_CORE_FLATSHADOW_H
#define CPYPROF_CORE_FLATSHADOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_FLAT_ADDR_BITS 47
#define CP_FLAT_WINDOW_BITS 30
#define CP_FLAT_WINDOWS (1u << (CP_FLAT_ADDR_BITS - CP_FLAT_WINDOW_BITS))
#define CP_FLAT_MAX_WINDOWS 64u
#define CP_FLAT_MAX_SIZE 65534u /* sizes stored as size + 1 in a u16 */

typedef struct cp_flat {
    /* per window: its array's address - (window's first address >> 3),
     * or 0 (no array); CP_FLAT_WINDOWS entries, mmap'd by cp_flat_init.
     * Without them (before init, after clear, refused) a one-entry table
     * of 0 (CP_FLAT_NONE): only p == 0 passes that mask, and finds 0. */
    const uintptr_t *dir;
    /* p & mask != 0: p has no slot (not 16-byte aligned, above 47 bits,
     * or no directory: all ones). One test on the fast path. */
    uintptr_t mask;
    uintptr_t *dir_map; /* dir when mapped (written by cp_flat_window_make), else NULL */
    uint32_t nwindows;
    bool refused;                          /* a reservation was refused: no more windows */
    uintptr_t arrays[CP_FLAT_MAX_WINDOWS]; /* the windows' arrays, to unmap */
} cp_flat;

extern const uintptr_t cp_flat_no_dir[1];
/** An initialiser: no directory, nothing has a slot. */
#define CP_FLAT_NONE                                                                               \
    {                                                                                              \
        .dir = cp_flat_no_dir, .mask = UINTPTR_MAX                                                 \
    }

/** Maps the (empty) directory. false (and a mask of all ones: nothing
 *  has a slot) if that is refused. */
bool cp_flat_init(cp_flat *f);

/** Unmaps everything; nothing has a slot until the next init. */
void cp_flat_clear(cp_flat *f);

/** Slow path of cp_flat_slot_make: maps p's window. */
uint16_t *cp_flat_window_make(cp_flat *f, uintptr_t p);

/** The slot of p (its u16: size + 1, or 0), or NULL when p has none (or
 *  its window has no array yet). */
static inline __attribute__((always_inline)) uint16_t *cp_flat_slot(const cp_flat *f, uintptr_t p)
{
    if (p & f->mask)
        return NULL;
    uintptr_t b = f->dir[p >> CP_FLAT_WINDOW_BITS];
    if (!b)
        return NULL;
    uint16_t *e = (uint16_t *)(b + (p >> 3));
    if (!e)
        __builtin_unreachable(); /* a slot in a mapped array: the caller's NULL test goes */
    return e;
}

/** The slot of p, mapping its window's array if needed; NULL when p
 *  cannot have one (unaligned, above 47 bits, no room, refused). */
static inline uint16_t *cp_flat_slot_make(cp_flat *f, uintptr_t p)
{
    uint16_t *e = cp_flat_slot(f, p);
    if (e || (p & f->mask) || !f->dir_map)
        return e;
    return cp_flat_window_make(f, p);
}

#endif
