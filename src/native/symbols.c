/* symbols.c — see symbols.h. */
#include "native/symbols.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct symdef {
    uintptr_t start, end; /* runtime addresses, [start, end) */
    char *name;
} symdef;

struct cp_symobj {
    uintptr_t base; /* dli_fbase: where the object's first segment is mapped */
    char *path;
    const char *basename;
    symdef *syms; /* sorted by start */
    size_t nsyms;
};

static int cmp_sym(const void *a, const void *b)
{
    const symdef *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    /* same address: the sized one first, so it is the one kept */
    return (x->end > y->end) ? -1 : (x->end < y->end);
}

/* Appends the defined FUNC symbols of section `scn` (SHT_SYMTAB or
 * SHT_DYNSYM). Returns 0, -1 when out of memory. */
static int read_symbols(Elf *e, Elf_Scn *scn, const GElf_Shdr *sh, uintptr_t bias, symdef **syms,
                        size_t *n, size_t *cap)
{
    Elf_Data *d = elf_getdata(scn, NULL);
    if (!d || sh->sh_entsize == 0)
        return 0;
    size_t count = sh->sh_size / sh->sh_entsize;
    for (size_t i = 0; i < count; i++) {
        GElf_Sym s;
        if (!gelf_getsym(d, (int)i, &s))
            continue;
        if (GELF_ST_TYPE(s.st_info) != STT_FUNC && GELF_ST_TYPE(s.st_info) != STT_GNU_IFUNC)
            continue;
        if (s.st_shndx == SHN_UNDEF || s.st_value == 0)
            continue;
        const char *nm = elf_strptr(e, sh->sh_link, s.st_name);
        if (!nm || !*nm)
            continue;
        if (*n == *cap) {
            size_t c = *cap ? *cap * 2 : 1024;
            symdef *p = realloc(*syms, c * sizeof *p);
            if (!p)
                return -1;
            *syms = p;
            *cap = c;
        }
        symdef *sd = &(*syms)[*n];
        sd->start = (uintptr_t)s.st_value + bias;
        sd->end = s.st_size ? sd->start + (uintptr_t)s.st_size : 0;
        sd->name = strdup(nm);
        if (!sd->name)
            return -1;
        (*n)++;
    }
    return 0;
}

/* Reads an object's symbol table (.symtab, else .dynsym). A file that
 * cannot be read gives an object without symbols (addresses then come out
 * as object+0xoffset): never an error for the caller. */
static void load_symbols(cp_symobj *o, uintptr_t bias)
{
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    elf_version(EV_CURRENT);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    if (!e) {
        close(fd);
        return;
    }
    Elf_Scn *symtab = NULL, *dynsym = NULL;
    GElf_Shdr sh_symtab, sh_dynsym;
    for (Elf_Scn *scn = elf_nextscn(e, NULL); scn; scn = elf_nextscn(e, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        if (sh.sh_type == SHT_SYMTAB && !symtab) {
            symtab = scn;
            sh_symtab = sh;
        } else if (sh.sh_type == SHT_DYNSYM && !dynsym) {
            dynsym = scn;
            sh_dynsym = sh;
        }
    }
    symdef *syms = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (symtab)
        rc = read_symbols(e, symtab, &sh_symtab, bias, &syms, &n, &cap);
    if (rc == 0 && n == 0 && dynsym)
        rc = read_symbols(e, dynsym, &sh_dynsym, bias, &syms, &n, &cap);
    elf_end(e);
    close(fd);
    if (rc != 0) { /* out of memory: keep none */
        for (size_t i = 0; i < n; i++)
            free(syms[i].name);
        free(syms);
        return;
    }
    qsort(syms, n, sizeof *syms, cmp_sym);
    /* Drop duplicates (aliases at one address), then give sizeless symbols
     * the next symbol's start as their end. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && syms[k - 1].start == syms[i].start) {
            free(syms[i].name);
            continue;
        }
        syms[k++] = syms[i];
    }
    for (size_t i = 0; i < k; i++)
        if (syms[i].end == 0)
            syms[i].end = i + 1 < k ? syms[i + 1].start : syms[i].start + 1;
    o->syms = syms;
    o->nsyms = k;
}

/* ---- which object holds an address ---------------------------------------
 *
 * dladdr1 was the first answer and cost ~100k instructions per address on
 * Debian's python3.11: glibc's _dl_addr scans the whole dynamic symbol
 * table of the object for the nearest symbol, which we do not even use.
 * Every captured sample brings a new innermost address (the exact PC), so
 * that was the writer's main cost with --native. Instead the writer keeps
 * the loaded objects' address spans (PT_LOAD segments, from
 * dl_iterate_phdr) and rereads them only when the loader's add/remove
 * counters moved (a dlopen or dlclose since the last read) or an address
 * falls in no known object. */

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

typedef struct iter_ctx {
    cp_symbols *s;
    cp_symrange *out;
    size_t n, cap;
    int oom;
} iter_ctx;

static int collect_range(struct dl_phdr_info *info, size_t size, void *arg)
{
    iter_ctx *c = arg;
    (void)size;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t a = (uintptr_t)info->dlpi_addr + (uintptr_t)ph->p_vaddr;
        if (a < lo)
            lo = a;
        if (a + ph->p_memsz > hi)
            hi = a + (uintptr_t)ph->p_memsz;
    }
    if (hi <= lo)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        cp_symrange *p = realloc(c->out, cap * sizeof *p);
        if (!p) {
            c->oom = 1;
            return 1;
        }
        c->out = p;
        c->cap = cap;
    }
    const char *name = info->dlpi_name;
    char *path = NULL;
    if (!name || !name[0]) { /* the main executable: no name in the list */
        char exe[4096];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k > 0) {
            exe[k] = '\0';
            path = strdup(exe);
        }
    } else {
        path = strdup(name);
    }
    if (!path) {
        c->oom = 1;
        return 1;
    }
    cp_symrange *r = &c->out[c->n++];
    /* The object+0xoffset origin: the first segment's page, as dladdr's
     * dli_fbase (glibc's l_map_start). */
    r->base = lo & ~(uintptr_t)(page_size() - 1);
    r->lo = r->base;
    r->hi = hi;
    r->bias = (uintptr_t)info->dlpi_addr;
    r->path = path;
    return 0;
}

typedef struct counts {
    unsigned long long adds, subs;
    int ok;
} counts;

static int read_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
    counts *c = arg;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c->adds = info->dlpi_adds;
        c->subs = info->dlpi_subs;
        c->ok = 1;
    }
    return 1; /* the first object is enough */
}

static void free_ranges(cp_symrange *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].path);
    free(r);
}

/* Rereads the object list. Returns 0, or -1 when out of memory (the old
 * list is kept). */
static int refresh_ranges(cp_symbols *s)
{
    counts k = {0, 0, 0};
    dl_iterate_phdr(read_counts, &k);
    iter_ctx c = {s, NULL, 0, 0, 0};
    dl_iterate_phdr(collect_range, &c);
    if (c.oom) {
        free_ranges(c.out, c.n);
        return -1;
    }
    free_ranges(s->ranges, s->nranges);
    s->ranges = c.out;
    s->nranges = c.n;
    s->adds = k.adds;
    s->subs = k.subs;
    s->counts_ok = k.ok;
    s->hint = 0;
    return 0;
}

static cp_symrange *range_of(cp_symbols *s, uintptr_t addr)
{
    if (s->hint < s->nranges && addr >= s->ranges[s->hint].lo && addr < s->ranges[s->hint].hi)
        return &s->ranges[s->hint];
    for (size_t i = 0; i < s->nranges; i++)
        if (addr >= s->ranges[i].lo && addr < s->ranges[i].hi) {
            s->hint = i;
            return &s->ranges[i];
        }
    return NULL;
}

/* The object holding addr, from a list that is current: reread when the
 * loader's counters moved (one dl_iterate_phdr stopped at the first
 * object, to check), or when addr is in none of the known objects. */
static const cp_symrange *find_range(cp_symbols *s, uintptr_t addr)
{
    bool stale = s->ranges == NULL;
    if (!stale) {
        counts k = {0, 0, 0};
        dl_iterate_phdr(read_counts, &k);
        stale = !k.ok || !s->counts_ok || k.adds != s->adds || k.subs != s->subs;
    }
    cp_symrange *r = stale ? NULL : range_of(s, addr);
    if (!r && (refresh_ranges(s) != 0 || !(r = range_of(s, addr))))
        return NULL;
    return r;
}

static cp_symobj *find_object(cp_symbols *s, uintptr_t addr, char *obj, size_t objlen,
                              uintptr_t *base_out)
{
    const cp_symrange *r = find_range(s, addr);
    if (!r)
        return NULL;
    const char *path = r->path;
    uintptr_t base = r->base;
    *base_out = base;
    for (size_t i = 0; i < s->n; i++)
        if (s->objs[i]->base == base && strcmp(s->objs[i]->path, path) == 0)
            return s->objs[i];
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 16;
        cp_symobj **p = realloc(s->objs, c * sizeof *p);
        if (!p)
            goto nocache;
        s->objs = p;
        s->cap = c;
    }
    cp_symobj *o = calloc(1, sizeof *o);
    if (!o || !(o->path = strdup(path))) {
        free(o);
        goto nocache;
    }
    o->base = base;
    const char *slash = strrchr(o->path, '/');
    o->basename = slash ? slash + 1 : o->path;
    load_symbols(o, r->bias);
    s->objs[s->n++] = o;
    return o;
nocache: /* out of memory: at least name the object */
    snprintf(obj, objlen, "%s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    return NULL;
}

static const symdef *lookup(const cp_symobj *o, uintptr_t addr)
{
    size_t lo = 0, hi = o->nsyms; /* first symbol with start > addr */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->syms[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    const symdef *sd = &o->syms[lo - 1];
    return addr < sd->end ? sd : NULL;
}

int cp_symbols_resolve(cp_symbols *s, uintptr_t addr, char *name, size_t namelen, char *obj,
                       size_t objlen)
{
    uintptr_t base = 0;
    snprintf(obj, objlen, "?");
    cp_symobj *o = find_object(s, addr, obj, objlen, &base);
    if (!o && base == 0) {
        snprintf(name, namelen, "0x%llx", (unsigned long long)addr);
        return 0;
    }
    if (o) {
        snprintf(obj, objlen, "%s", o->basename);
        const symdef *sd = lookup(o, addr);
        if (sd) {
            snprintf(name, namelen, "%s", sd->name);
            return 1;
        }
    }
    /* dladdr's nearest exported symbol, only for objects whose file we
     * could not read (the vDSO...): with a symbol table read, dladdr (which
     * honours sizes as we do) finds nothing more, and costs a scan of the
     * object's whole dynamic symbol table. Only if it plausibly contains
     * addr (no size is known). */
    Dl_info info;
    if ((!o || o->nsyms == 0) && dladdr((void *)addr, &info) && info.dli_sname && info.dli_saddr &&
        (uintptr_t)info.dli_saddr <= addr && addr - (uintptr_t)info.dli_saddr < 0x10000) {
        snprintf(name, namelen, "%s", info.dli_sname);
        return 1;
    }
    snprintf(name, namelen, "%s+0x%llx", obj, (unsigned long long)(addr - base));
    return 0;
}

int cp_symbols_range(cp_symbols *s, uintptr_t addr, uintptr_t *lo, uintptr_t *hi)
{
    char obj[8];
    uintptr_t base = 0;
    cp_symobj *o = find_object(s, addr, obj, sizeof obj, &base);
    const symdef *sd = o ? lookup(o, addr) : NULL;
    if (!sd)
        return -1;
    *lo = sd->start;
    *hi = sd->end;
    return 0;
}

void cp_symbols_destroy(cp_symbols *s)
{
    for (size_t i = 0; i < s->n; i++) {
        cp_symobj *o = s->objs[i];
        for (size_t j = 0; j < o->nsyms; j++)
            free(o->syms[j].name);
        free(o->syms);
        free(o->path);
        free(o);
    }
    free(s->objs);
    free_ranges(s->ranges, s->nranges);
    memset(s, 0, sizeof *s);
}
