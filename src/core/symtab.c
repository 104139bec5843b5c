/* symtab.c — string interning and the function table (see symtab.h). */
#include "core/symtab.h"

#include <stdlib.h>
#include <string.h>

static uint32_t str_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

int cp_symtab_init(cp_symtab *s)
{
    memset(s, 0, sizeof *s);
    s->str_mask = 4096 - 1;
    s->str_slots = calloc(s->str_mask + 1, sizeof *s->str_slots);
    return s->str_slots ? 0 : -1;
}

void cp_symtab_destroy(cp_symtab *s)
{
    uint32_t n = atomic_load(&s->nstr);
    for (uint32_t i = 0; i < n; i++)
        free(s->str_chunks[i >> CP_SYM_CHUNK_BITS][i & (CP_SYM_CHUNK - 1)]);
    for (size_t c = 0; c < CP_SYM_MAX_CHUNKS; c++) {
        free(s->str_chunks[c]);
        free(s->str_len_chunks[c]);
        free(s->func_chunks[c]);
    }
    free(s->str_slots);
    memset(s, 0, sizeof *s);
}

static int str_grow(cp_symtab *s)
{
    uint32_t nmask = s->str_mask * 2 + 1;
    uint32_t *ns = calloc((size_t)nmask + 1, sizeof *ns);
    if (!ns)
        return -1;
    uint32_t n = atomic_load_explicit(&s->nstr, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len;
        const char *t = cp_symtab_str(s, i, &len);
        uint32_t k = str_hash(t, len) & nmask;
        while (ns[k])
            k = (k + 1) & nmask;
        ns[k] = i + 1;
    }
    free(s->str_slots);
    s->str_slots = ns;
    s->str_mask = nmask;
    return 0;
}

uint32_t cp_symtab_string(cp_symtab *s, const char *text, size_t len)
{
    if (len > UINT32_MAX / 2)
        len = UINT32_MAX / 2;
    uint32_t k = str_hash(text, len) & s->str_mask;
    for (;;) {
        uint32_t v = s->str_slots[k];
        if (!v)
            break;
        uint32_t l;
        const char *t = cp_symtab_str(s, v - 1, &l);
        if (l == len && memcmp(t, text, len) == 0)
            return v - 1;
        k = (k + 1) & s->str_mask;
    }
    uint32_t n = atomic_load_explicit(&s->nstr, memory_order_relaxed);
    uint32_t c = n >> CP_SYM_CHUNK_BITS;
    /* A hash that could not grow must keep an empty slot or probes never end. */
    if (c >= CP_SYM_MAX_CHUNKS || (uint64_t)n + 2 > s->str_mask)
        return UINT32_MAX;
    if (!s->str_chunks[c]) {
        s->str_chunks[c] = calloc(CP_SYM_CHUNK, sizeof(char *));
        s->str_len_chunks[c] = calloc(CP_SYM_CHUNK, sizeof(uint32_t));
        if (!s->str_chunks[c] || !s->str_len_chunks[c])
            return UINT32_MAX;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return UINT32_MAX;
    memcpy(copy, text, len);
    copy[len] = '\0';
    s->str_chunks[c][n & (CP_SYM_CHUNK - 1)] = copy;
    s->str_len_chunks[c][n & (CP_SYM_CHUNK - 1)] = (uint32_t)len;
    atomic_store_explicit(&s->nstr, n + 1, memory_order_release);
    s->str_slots[k] = n + 1;
    if ((uint64_t)(n + 1) * 2 > (uint64_t)s->str_mask + 1)
        str_grow(s); /* on failure the table keeps working until nearly full */
    return n;
}

uint32_t cp_symtab_func(cp_symtab *s, uint32_t name, uint32_t file, uint32_t line, uint32_t kind)
{
    uint32_t n = atomic_load_explicit(&s->nfunc, memory_order_relaxed);
    uint32_t c = n >> CP_SYM_CHUNK_BITS;
    if (c >= CP_SYM_MAX_CHUNKS)
        return UINT32_MAX;
    if (!s->func_chunks[c]) {
        s->func_chunks[c] = calloc(CP_SYM_CHUNK, sizeof(cp_func_info));
        if (!s->func_chunks[c])
            return UINT32_MAX;
    }
    cp_func_info *f = &s->func_chunks[c][n & (CP_SYM_CHUNK - 1)];
    f->name = name;
    f->file = file;
    f->line = line;
    f->kind = kind;
    atomic_store_explicit(&s->nfunc, n + 1, memory_order_release);
    return n;
}
