/*
 * symbols.h — names for native instruction addresses, off the hot path
 * (the writer thread, or the start of a run; NEVER a signal handler: dl_iterate_phdr
 * takes the loader's lock and this file allocates and reads files).
 *
 * How an address is named:
 *  1. the loaded object (path, load bias) from the address spans of the
 *     objects listed by dl_iterate_phdr, reread when the loader's
 *     add/remove counters moved or an address is in no known object (not
 *     dladdr: glibc's scans the object's whole dynamic symbol table, ~100k
 *     instructions per address on Debian's python3.11);
 *  2. the object's ELF symbol table, read once with libelf and cached per
 *     object: .symtab if present (static functions too), else .dynsym; FUNC
 *     symbols sorted by address; a symbol covers [value, value + size), or
 *     up to the next symbol when its size is 0;
 *  3. else, for an object whose file could not be read (the vDSO), dladdr's
 *     own nearest exported symbol;
 *  4. else "<object basename>+0x<offset from the object's load address>".
 * Debian's python3.11 executable is stripped (.dynsym only): its static
 * functions come out as "python3.11+0x..." unless debug symbols are there.
 *
 * Hazards: an object may be unloaded (dlclose) between the sample and its
 * symbolization: the address is then in no object, or in another object
 * loaded at the same place (its name is used: the address was not recorded with an object
 * identity). The cache keys objects by load address and path, so an object
 * reloaded elsewhere is read again. Files are opened read-only with
 * O_CLOEXEC; a file replaced on disk since it was loaded may give wrong
 * names (same limitation as every symbolizer reading files).
 */
#ifndef CPYPROF_NATIVE_SYMBOLS_H
#define CPYPROF_NATIVE_SYMBOLS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cp_symobj cp_symobj;

/** A loaded object's address span (its PT_LOAD segments). */
typedef struct cp_symrange {
    uintptr_t lo, hi; /* [lo, hi), runtime addresses */
    uintptr_t base;   /* first segment's page: origin of "object+0xoffset" */
    uintptr_t bias;   /* load bias (dlpi_addr): symbol value + bias = address */
    char *path;
} cp_symrange;

/** A symbolizer: a cache of the objects read so far. Not thread-safe (one
 *  user at a time). Zero-initialised is valid. */
typedef struct cp_symbols {
    cp_symobj **objs; /* objects whose symbols were read */
    size_t n, cap;
    cp_symrange *ranges; /* every loaded object, from dl_iterate_phdr */
    size_t nranges, hint;
    unsigned long long adds, subs; /* the loader's counters at that read */
    int counts_ok;
} cp_symbols;

void cp_symbols_destroy(cp_symbols *s);

/** Names `addr`: the function name into `name` and the object's basename
 *  into `obj` (both NUL-terminated, truncated to their sizes). Returns 1 when
 *  a symbol was found, 0 when `name` is the "object+0xoffset" fallback. */
int cp_symbols_resolve(cp_symbols *s, uintptr_t addr, char *name, size_t namelen, char *obj,
                       size_t objlen);

/** The address range [*lo, *hi) of the function containing `addr`, from
 *  the symbol table (the size, or the next symbol when the size is 0).
 *  Returns 0, or -1 when no symbol covers addr. */
int cp_symbols_range(cp_symbols *s, uintptr_t addr, uintptr_t *lo, uintptr_t *hi);

#endif
