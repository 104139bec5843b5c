/* unwind.c — see unwind.h. */
#define UNW_LOCAL_ONLY
#include "native/unwind.h"

#include "cpyprof/format.h"
#include "native/symbols.h"

#include <dlfcn.h>
#include <libunwind.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

uintptr_t cp_unwind_eval_lo, cp_unwind_eval_hi;

/* initial-exec: read in the handler, where dynamic TLS could allocate. */
static __thread int unw_ready __attribute__((tls_model("initial-exec")));

void cp_unwind_thread_init(void)
{
    if (unw_ready)
        return;
    void *ips[CP_UNWIND_MAX];
    (void)unw_backtrace(ips, CP_UNWIND_MAX);
    unw_ready = 1;
}

bool cp_unwind_thread_ready(void)
{
    return unw_ready != 0;
}

int cp_unwind_capture(uint64_t *ips, const void *uc)
{
    if (!unw_ready || !uc)
        return 0;
    /* Room for the handler's own frames (on_sample, take_sample, this
     * function) and the signal trampoline on top of CP_UNWIND_MAX. */
    enum { EXTRA = 8 };
    void *raw[CP_UNWIND_MAX + EXTRA];
    int n = unw_backtrace(raw, CP_UNWIND_MAX + EXTRA);
#if defined(__x86_64__)
    uintptr_t pc = (uintptr_t)((const ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    uintptr_t pc = (uintptr_t)((const ucontext_t *)uc)->uc_mcontext.pc;
#else
#error "cp_unwind_capture: add this architecture's interrupted PC"
#endif
    int first = -1;
    for (int i = 0; i < n && i < EXTRA + 4; i++)
        if ((uintptr_t)raw[i] == pc) {
            first = i;
            break;
        }
    if (first < 0)
        return 0; /* not recognisable: no native frames rather than wrong ones */
    int k = 0;
    for (int i = first; i < n && k < CP_UNWIND_MAX; i++)
        ips[k++] = (uint64_t)(uintptr_t)raw[i] - (i == first ? 0 : 1);
    return k;
}

/* ---- off the hot path ------------------------------------------------------- */

static cp_symbols syms; /* writer thread (and start) only */

int cp_unwind_eval_init(void)
{
    cp_unwind_eval_lo = cp_unwind_eval_hi = 0;
    void *f = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
    uintptr_t lo, hi;
    if (!f || cp_symbols_range(&syms, (uintptr_t)f, &lo, &hi) != 0)
        return -1;
    cp_unwind_eval_lo = lo;
    cp_unwind_eval_hi = hi;
    return 0;
}

/* Address -> function id, open addressing; ip 0 never occurs (slot empty). */
static struct {
    uint64_t *ips;
    uint32_t *ids;
    uint32_t n, mask;
} cache;

static int cache_grow(void)
{
    uint32_t cap = cache.mask ? (cache.mask + 1) * 2 : 1024;
    uint64_t *ips = calloc(cap, sizeof *ips);
    uint32_t *ids = calloc(cap, sizeof *ids);
    if (!ips || !ids) {
        free(ips);
        free(ids);
        return -1;
    }
    for (uint32_t i = 0; cache.mask && i <= cache.mask; i++) {
        if (!cache.ips[i])
            continue;
        uint32_t j = (uint32_t)((cache.ips[i] * 0x9E3779B97F4A7C15ull) >> 40) & (cap - 1);
        while (ips[j])
            j = (j + 1) & (cap - 1);
        ips[j] = cache.ips[i];
        ids[j] = cache.ids[i];
    }
    free(cache.ips);
    free(cache.ids);
    cache.ips = ips;
    cache.ids = ids;
    cache.mask = cap - 1;
    return 0;
}

uint32_t cp_unwind_frame_id(cp_sfuncs *funcs, uint64_t ip)
{
    if (ip == 0)
        return CPYPROF_NONE;
    if ((cache.n + 1) * 2 > cache.mask + 1 && cache_grow() != 0 && !cache.mask)
        return CPYPROF_NONE;
    uint32_t j = (uint32_t)((ip * 0x9E3779B97F4A7C15ull) >> 40) & cache.mask;
    for (; cache.ips[j]; j = (j + 1) & cache.mask)
        if (cache.ips[j] == ip)
            return cache.ids[j];
    char name[512], obj[256];
    cp_symbols_resolve(&syms, (uintptr_t)ip, name, sizeof name, obj, sizeof obj);
    uint32_t id = cp_sfuncs_intern_kind(funcs, name, (uint32_t)strlen(name), obj,
                                        (uint32_t)strlen(obj), 0, CPYPROF_FUNC_BUILTIN);
    if (id != CPYPROF_NONE && cache.n < cache.mask) { /* never fill the table */
        cache.ips[j] = ip;
        cache.ids[j] = id;
        cache.n++;
    }
    return id;
}

void cp_unwind_reset(void)
{
    free(cache.ips);
    free(cache.ids);
    memset(&cache, 0, sizeof cache);
    cp_symbols_destroy(&syms);
}
