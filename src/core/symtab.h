/*
 * symtab.h — interned strings and the function table of one profile.
 *
 * Written by whoever registers a function (with the GIL held, so one writer
 * at a time); read by the dumper, possibly from another thread without the
 * GIL (the SIGTERM path). Both tables are append-only chunked arrays whose
 * entries are published by a release store of the count, like tree.h.
 */
#ifndef CPYPROF_CORE_SYMTAB_H
#define CPYPROF_CORE_SYMTAB_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CP_SYM_CHUNK_BITS 12
#define CP_SYM_CHUNK (1u << CP_SYM_CHUNK_BITS)
#define CP_SYM_MAX_CHUNKS 1024 /* 4M strings / functions */

typedef struct cp_func_info {
    uint32_t name; /* string ids */
    uint32_t file;
    uint32_t line;
    uint32_t kind; /* enum cpyprof_func_kind */
} cp_func_info;

typedef struct cp_symtab {
    /* strings */
    char **str_chunks[CP_SYM_MAX_CHUNKS];
    uint32_t *str_len_chunks[CP_SYM_MAX_CHUNKS];
    _Atomic uint32_t nstr;
    uint32_t *str_slots; /* writer-private hash: id + 1 */
    uint32_t str_mask;
    /* functions */
    cp_func_info *func_chunks[CP_SYM_MAX_CHUNKS];
    _Atomic uint32_t nfunc;
} cp_symtab;

int cp_symtab_init(cp_symtab *s);
void cp_symtab_destroy(cp_symtab *s);

/** Interns `len` bytes (not necessarily NUL-terminated). Returns the id, or
 *  UINT32_MAX when out of memory or full. */
uint32_t cp_symtab_string(cp_symtab *s, const char *text, size_t len);

/** Adds a function. Returns its id, or UINT32_MAX when out of memory. */
uint32_t cp_symtab_func(cp_symtab *s, uint32_t name, uint32_t file, uint32_t line, uint32_t kind);

static inline uint32_t cp_symtab_nstrings(const cp_symtab *s)
{
    return atomic_load_explicit(&s->nstr, memory_order_acquire);
}
static inline uint32_t cp_symtab_nfuncs(const cp_symtab *s)
{
    return atomic_load_explicit(&s->nfunc, memory_order_acquire);
}
static inline const char *cp_symtab_str(const cp_symtab *s, uint32_t id, uint32_t *len)
{
    if (len)
        *len = s->str_len_chunks[id >> CP_SYM_CHUNK_BITS][id & (CP_SYM_CHUNK - 1)];
    return s->str_chunks[id >> CP_SYM_CHUNK_BITS][id & (CP_SYM_CHUNK - 1)];
}
static inline const cp_func_info *cp_symtab_get_func(const cp_symtab *s, uint32_t id)
{
    return &s->func_chunks[id >> CP_SYM_CHUNK_BITS][id & (CP_SYM_CHUNK - 1)];
}

#endif
