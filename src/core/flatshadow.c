/* flatshadow.c — see flatshadow.h. */
#include "core/flatshadow.h"

#include "core/reserve.h"

#include <sys/mman.h>

#define DIR_BYTES ((size_t)CP_FLAT_WINDOWS * sizeof(uintptr_t))
/* a u16 per 16-byte granule of a window */
#define WINDOW_ARRAY_BYTES ((size_t)1 << (CP_FLAT_WINDOW_BITS - 4 + 1))
/* bits that must be 0 for p to have a slot: the granule (alignment) and
 * everything above the 47-bit user address space */
#define FLAT_MASK (~(((uintptr_t)1 << CP_FLAT_ADDR_BITS) - 1) | 15u)

const uintptr_t cp_flat_no_dir[1];

bool cp_flat_init(cp_flat *f)
{
    *f = (cp_flat)CP_FLAT_NONE;
    f->dir_map = cp_reserve(DIR_BYTES, true);
    if (!f->dir_map)
        return false;
    f->dir = f->dir_map;
    f->mask = FLAT_MASK;
    return true;
}

void cp_flat_clear(cp_flat *f)
{
    for (uint32_t i = 0; i < f->nwindows; i++)
        munmap((void *)f->arrays[i], WINDOW_ARRAY_BYTES);
    if (f->dir_map)
        munmap(f->dir_map, DIR_BYTES);
    *f = (cp_flat)CP_FLAT_NONE;
}

uint16_t *cp_flat_window_make(cp_flat *f, uintptr_t p)
{
    if (!f->dir_map || f->refused || f->nwindows >= CP_FLAT_MAX_WINDOWS)
        return NULL;
    uintptr_t w = p >> CP_FLAT_WINDOW_BITS;
    void *arr = cp_reserve(WINDOW_ARRAY_BYTES, true);
    uintptr_t bias = (uintptr_t)arr - ((w << CP_FLAT_WINDOW_BITS) >> 3);
    if (!arr || bias == 0) { /* bias 0 means "no array": refuse (not seen in practice) */
        if (arr)
            munmap(arr, WINDOW_ARRAY_BYTES);
        f->refused = true; /* not a system call per allocation from now on */
        return NULL;
    }
    f->arrays[f->nwindows++] = (uintptr_t)arr;
    f->dir_map[w] = bias;
    return cp_flat_slot(f, p);
}
