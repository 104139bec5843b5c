/* got.c — see got.h. */
#include "native/got.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct cp_got_slot patched_slot;

/* The set of cp_got_install / cp_got_restore_all (the C-thread hooks). */
static cp_got_set default_set;

struct scan_ctx {
    cp_got_set *set;
    const cp_got_hook *hooks;
    size_t nhooks;
    const void *self;
    int rewritten;
    int oom;
    /* cp_got_install_in: only the object containing `only`; slots go to out */
    const void *only;
    cp_got_patch *out;
    size_t cap;
    int found;
};

static int seen_before(const cp_got_set *set, uintptr_t key)
{
    for (size_t i = 0; i < set->nseen; i++)
        if (set->seen[i] == key)
            return 1;
    return 0;
}

static int remember_seen(cp_got_set *set, uintptr_t key)
{
    cp_got_set *got = set;
    if (got->nseen == got->capseen) {
        size_t cap = got->capseen ? got->capseen * 2 : 64;
        uintptr_t *s = realloc(got->seen, cap * sizeof *s);
        if (!s)
            return -1;
        got->seen = s;
        got->capseen = cap;
    }
    got->seen[got->nseen++] = key;
    return 0;
}

static int remember_slot(cp_got_set *got, void **slot, void *orig, void *repl, int relro)
{
    if (got->n == got->cap) {
        size_t cap = got->cap ? got->cap * 2 : 16;
        patched_slot *s = realloc(got->slots, cap * sizeof *s);
        if (!s)
            return -1;
        got->slots = s;
        got->cap = cap;
    }
    got->slots[got->n++] = (patched_slot){slot, orig, repl, relro};
    return 0;
}

/* Writes a slot, lifting RELRO protection around the store if needed. */
static void store_slot(void **slot, void *value, int relro)
{
    if (relro) {
        long page = sysconf(_SC_PAGESIZE);
        void *start = (void *)((uintptr_t)slot & ~((uintptr_t)page - 1));
        if (mprotect(start, (size_t)page, PROT_READ | PROT_WRITE) != 0)
            return;
        __atomic_store_n(slot, value, __ATOMIC_RELEASE);
        mprotect(start, (size_t)page, PROT_READ);
    } else {
        __atomic_store_n(slot, value, __ATOMIC_RELEASE);
    }
}

/* d_ptr values are relocated in memory by ld.so on x86-64, except in a
 * few objects (the vdso); treat a value below the load address as relative. */
static uintptr_t dyn_addr(uintptr_t base, ElfW(Addr) v)
{
    return (uintptr_t)v < base ? base + (uintptr_t)v : (uintptr_t)v;
}

static void patch_relocs(struct dl_phdr_info *info, struct scan_ctx *ctx, const ElfW(Rela) * rel,
                         size_t nrel, const ElfW(Sym) * symtab, const char *strtab,
                         uintptr_t relro_lo, uintptr_t relro_hi)
{
    for (size_t i = 0; i < nrel; i++) {
        unsigned type = ELF64_R_TYPE(rel[i].r_info);
        if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
            continue;
        const char *name = strtab + symtab[ELF64_R_SYM(rel[i].r_info)].st_name;
        for (size_t h = 0; h < ctx->nhooks; h++) {
            if (strcmp(name, ctx->hooks[h].symbol) != 0)
                continue;
            void **slot = (void **)(info->dlpi_addr + rel[i].r_offset);
            void *cur = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
            if (cur == ctx->hooks[h].replacement)
                continue;
            int relro = (uintptr_t)slot >= relro_lo && (uintptr_t)slot < relro_hi;
            if (ctx->out) {
                if ((size_t)ctx->rewritten == ctx->cap) {
                    ctx->oom = 1; /* out too small: the caller undoes what was done */
                    return;
                }
                ctx->out[ctx->rewritten] =
                    (cp_got_patch){slot, cur, ctx->hooks[h].replacement, relro};
            } else if (remember_slot(ctx->set, slot, cur, ctx->hooks[h].replacement, relro) != 0) {
                ctx->oom = 1;
                return;
            }
            store_slot(slot, ctx->hooks[h].replacement, relro);
            ctx->rewritten++;
        }
    }
}

static int scan_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct scan_ctx *ctx = arg;
    (void)size;
    ctx->set->adds = info->dlpi_adds;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    if (strstr(name, "linux-vdso") || strstr(name, "ld-linux"))
        return 0;
    if (!ctx->only && ctx->set->skip)
        for (const char *const *k = ctx->set->skip; *k; k++)
            if (strstr(name, *k))
                return 0;
    const ElfW(Dyn) *dyn = NULL;
    uintptr_t relro_lo = 0, relro_hi = 0;
    int contains_self = 0, contains_only = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_DYNAMIC)
            dyn = (const ElfW(Dyn) *)lo;
        else if (ph->p_type == PT_GNU_RELRO) {
            relro_lo = lo;
            relro_hi = lo + ph->p_memsz;
        } else if (ph->p_type == PT_LOAD && (uintptr_t)ctx->self >= lo &&
                   (uintptr_t)ctx->self < lo + ph->p_memsz)
            contains_self = 1;
        if (ph->p_type == PT_LOAD && ctx->only && (uintptr_t)ctx->only >= lo &&
            (uintptr_t)ctx->only < lo + ph->p_memsz)
            contains_only = 1;
    }
    if (ctx->only) {
        /* cp_got_install_in: one object, no "seen" bookkeeping. */
        if (!contains_only)
            return 0;
        ctx->found = 1;
    }
    if (!dyn || contains_self)
        return ctx->found;
    uintptr_t key = info->dlpi_addr ^ (uintptr_t)dyn;
    if (!ctx->only && seen_before(ctx->set, key))
        return 0;
    if (!ctx->only && remember_seen(ctx->set, key) != 0) {
        ctx->oom = 1;
        return 1;
    }
    const ElfW(Sym) *symtab = NULL;
    const char *strtab = NULL;
    const ElfW(Rela) *jmprel = NULL, *rela = NULL;
    size_t pltrelsz = 0, relasz = 0;
    for (const ElfW(Dyn) *d = dyn; d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_SYMTAB:
            symtab = (const ElfW(Sym) *)dyn_addr(info->dlpi_addr, d->d_un.d_ptr);
            break;
        case DT_STRTAB:
            strtab = (const char *)dyn_addr(info->dlpi_addr, d->d_un.d_ptr);
            break;
        case DT_JMPREL:
            jmprel = (const ElfW(Rela) *)dyn_addr(info->dlpi_addr, d->d_un.d_ptr);
            break;
        case DT_PLTRELSZ:
            pltrelsz = d->d_un.d_val;
            break;
        case DT_RELA:
            rela = (const ElfW(Rela) *)dyn_addr(info->dlpi_addr, d->d_un.d_ptr);
            break;
        case DT_RELASZ:
            relasz = d->d_un.d_val;
            break;
        default:
            break;
        }
    }
    if (!symtab || !strtab)
        return ctx->found;
    if (jmprel)
        patch_relocs(info, ctx, jmprel, pltrelsz / sizeof(ElfW(Rela)), symtab, strtab, relro_lo,
                     relro_hi);
    if (rela && !ctx->oom)
        patch_relocs(info, ctx, rela, relasz / sizeof(ElfW(Rela)), symtab, strtab, relro_lo,
                     relro_hi);
    return ctx->oom || ctx->found;
}

int cp_got_set_install(cp_got_set *set, const cp_got_hook *hooks, size_t nhooks,
                       const void *self_addr)
{
    struct scan_ctx ctx = {set, hooks, nhooks, self_addr, 0, 0, NULL, NULL, 0, 0};
    dl_iterate_phdr(scan_object, &ctx);
    return ctx.oom ? -1 : ctx.rewritten;
}

int cp_got_install(const cp_got_hook *hooks, size_t nhooks, const void *self_addr)
{
    return cp_got_set_install(&default_set, hooks, nhooks, self_addr);
}

static int first_adds(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    *(unsigned long long *)arg = info->dlpi_adds;
    return 1; /* stop at the first object */
}

int cp_got_set_changed(const cp_got_set *set)
{
    unsigned long long adds = 0;
    dl_iterate_phdr(first_adds, &adds);
    return adds != set->adds;
}

int cp_got_objects_changed(void)
{
    return cp_got_set_changed(&default_set);
}

void cp_got_set_restore(cp_got_set *got)
{
    for (size_t i = got->n; i-- > 0;) {
        patched_slot *p = &got->slots[i];
        /* Only undo our own change: if someone else rewrote the slot since,
         * theirs stays. An object unloaded meanwhile (dlclose) took its
         * slots with it: skip addresses no longer mapped. */
        Dl_info di;
        if (!dladdr(p->slot, &di))
            continue;
        if (__atomic_load_n(p->slot, __ATOMIC_ACQUIRE) == p->replacement)
            store_slot(p->slot, p->original, p->relro);
    }
    free(got->slots);
    free(got->seen);
    const char *const *skip = got->skip;
    memset(got, 0, sizeof *got);
    got->skip = skip;
}

void cp_got_restore_all(void)
{
    cp_got_set_restore(&default_set);
}

int cp_got_install_in(const cp_got_hook *hooks, size_t nhooks, const void *object_addr,
                      cp_got_patch *out, size_t cap)
{
    /* self = NULL: libcpyprof never holds object_addr, nothing to exclude.
     * got.adds is left as cp_got_install set it (its "objects changed"
     * test must not be fooled by this walk); scan_object writes it, so save
     * and restore it around the walk. */
    cp_got_set scratch = {0}; /* scan_object writes adds: keep the default set's */
    struct scan_ctx ctx = {&scratch, hooks, nhooks, NULL, 0, 0, object_addr, out, cap, 0};
    dl_iterate_phdr(scan_object, &ctx);
    if (ctx.oom) {
        cp_got_restore_patches(out, (size_t)ctx.rewritten);
        return -1;
    }
    return ctx.found ? ctx.rewritten : -1;
}

void cp_got_restore_patches(const cp_got_patch *patches, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        const cp_got_patch *p = &patches[i];
        if (__atomic_load_n(p->slot, __ATOMIC_ACQUIRE) == p->replacement)
            store_slot(p->slot, p->original, p->relro);
    }
}
