/*
 * alloc.c — counting allocations (option alloc).
 *
 * At start we read the three PyMem allocators (RAW, MEM, OBJ) with
 * PyMem_GetAllocator and install wrappers with PyMem_SetAllocator. Every
 * call is forwarded to the allocator we found (so a block allocated before
 * the wrap is freed by its owner, and we add no header to any block), then
 * counted:
 *
 *  - per site of the calling thread: the call-tree node on top of the
 *    thread's shadow stack (deterministic mode, inline transport: the stack
 *    comes for free), else the innermost Python function (sampling mode,
 *    ring transport: a stack walk per allocation would cost more than the
 *    allocation). Counters: allocations, bytes, frees, freed bytes.
 *  - the size of a freed block comes from a map address -> size of the
 *    blocks allocated while counting (core/ptrmap.h). A free of an address
 *    not in the map is a block from before start: counted apart
 *    (frees_untracked), in no site, so net bytes of all sites add up to the
 *    bytes still live.
 *  - the live total and its peak, with the site that reached the peak.
 *
 * Hazards, and why each is safe:
 *  - MEM and OBJ are called with the GIL held (the C API requires it, and
 *    pymalloc relies on it): their map, flat shadow (core/flatshadow.h)
 *    and counters need no lock. The fast paths still test for a NULL
 *    thread state and a NULL frame: a program that calls them without the
 *    GIL, or with no Python frame running, takes the slow path.
 *  - RAW runs with or without the GIL, on any thread: its map is separate
 *    and every RAW accounting step runs under a spin lock (a few
 *    instructions; the allocation itself happens outside the lock). A RAW
 *    free takes its entry out of the map before the block is freed, so an
 *    address handed out again to another thread cannot be confused.
 *  - pymalloc calls PyMem_RawMalloc for large blocks from inside
 *    PyObject_Malloc (and PyMem_RawFree from PyObject_Free): the OBJ/MEM
 *    wrappers set a thread-local busy flag around the forward (around a
 *    free only when the block may be such a large one, see w_free), and
 *    the RAW wrapper forwards without counting while it is set (one
 *    allocation is counted once). The profiler's own Python calls
 *    (registering a function's name) set it too. It is one bit of the
 *    thread's 64-bit cache key (T.gen_stamp), so that the sampling
 *    wrappers' one compare with the layer's key (whose bit is 0) also
 *    says "not busy"; only this thread writes it.
 *  - SIGTERM: the writer thread writes the ALLOC chunks without the GIL
 *    while wrappers still run (cp_alloc_dump_nogil): counters are only
 *    read, maps are neither read nor freed.
 *  - Each thread's site counters are written by that thread only (it finds
 *    its state through initial-exec TLS, filled once per run by matching
 *    its thread state's id, never reused, in the thread list); threads the
 *    profiler does not know (not yet attached, C threads) go to atomic
 *    "other" counters.
 *  - Per-thread caches (TLS): the thread's state and, in the sampling mode,
 *    the last function's counters keyed by code object address, dropped
 *    whenever a code object carrying co_extra is freed (a new one could
 *    take its address), and all of them at every start and stop (an epoch).
 *    The MEM/OBJ layers carry the epoch and stamp the caches must have
 *    (layer.key, kept equal to E while the layer counts, 0 otherwise).
 *  - The counters, maps and shadows live in mmap'd memory: calling malloc
 *    inside a RAW hook would recurse.
 *  - stop() runs with the GIL: no MEM/OBJ wrapper is running. It turns
 *    counting off, then takes and releases the RAW lock, after which no RAW
 *    wrapper touches anything of ours; only then are maps and counters
 *    freed.
 *  - Restoring: each install is a "layer" (the allocator found, for one
 *    domain) in a static table that is never freed. At stop a domain is put
 *    back only if its current allocator is still our layer; if something
 *    wrapped us since (tracemalloc started after us), our layer stays in its
 *    chain and forwards without counting. A layer counts only while it is
 *    the run's current one, so stacked layers never count twice.
 *  - fork: the child inherits the wrappers; a fork handler turns counting
 *    off (a flag store) and they only forward.
 */
#include "python/alloc.h"
#include "python/profiler.h"

#include "core/flatshadow.h"
#include "core/ptrmap.h"
#include "core/sizeshadow.h"
#include <internal/pycore_pystate.h> /* _PyThreadState_GET: one load of _PyRuntime */
#include "core/sitestats.h"
#include "cpyprof/format.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GCC pairs the two counter increments of a site into SSE loads, an add
 * and a store, with the set-up of the pair: 7 instructions for 2. */
#if defined(__GNUC__) && !defined(__clang__)
#define HOT_PATH __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define HOT_PATH
#endif

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

#define MAX_LAYERS 64                 /* installs per domain over the process's life */
#define MAP_MAX_ENTRIES (64ull << 20) /* 64M live blocks (1 GiB of map) */
#define SHADOW_REGIONS (1u << 18)     /* 4 GiB of address space in 16 KiB regions */

__thread cp_alloc_tls_t cp_alloc_tls CP_TLS_IE;
#define T cp_alloc_tls

/* An epoch and a code stamp, laid out as T's (cp_alloc_tls_t), whose busy
 * bit is 0 here: one 64-bit compare with T.gen_stamp. */
typedef union cp_alloc_key {
    struct {
        uint32_t gen;
        uint32_t stamp : 31; /* wraps as T's */
        uint32_t zero : 1;   /* T.busy's place */
    };
    uint64_t both;
} cp_alloc_key;

typedef struct layer {
    PyMemAllocatorEx orig; /* what we found and forward to */
    PyMemAllocatorDomain domain;
    /* 1 while this layer is the run's current one and counting is live.
     * Set last at start, cleared first at stop and in a fork child. */
    volatile int on;
    /* While `on`: E's value (epoch and code stamp, kept equal to it by
     * cp_alloc_code_extra_freed); else key_off's EPOCH_NONE, which no
     * thread's T.gen ever is (a new or unknown thread's is 0). The MEM/OBJ wrappers'
     * first test compares the thread's cache key with it (a load through
     * ctx, which the call brought into a register): one compare says
     * "this layer counts, and this thread's caches are current". */
    cp_alloc_key volatile key;
} layer;

/* A layer's key while it does not count: an epoch no thread's cache ever
 * holds. Not 0: a new thread's T is zeroed and a thread the lookup did not
 * find has T.gen 0, so a key of 0 "matched" them and sent them down the
 * fast path with no thread (a crash in a forked child's new thread, whose
 * layers are off; or after stop, with a layer left in the chain under
 * tracemalloc). new_epoch never hands this value out. */
#define EPOCH_NONE UINT32_MAX

static void key_off(layer *L)
{
    cp_alloc_key k = {.gen = EPOCH_NONE};
    L->key.both = k.both;
}

static layer layers[3][MAX_LAYERS];
static int nlayers[3];

/* The fields every wrapper call reads or writes (flags, the GIL side's
 * live total, the peak, the flat shadow's directory) come first, in one
 * 64-byte line; the shadows'
 * region caches (4 KiB each) and the maps follow. */
static struct {
    /* MEM/OBJ: under the GIL */
    uint64_t gil_live;
    /* peak: written from both sides, a race only blurs which site wins */
    _Atomic uint64_t peak;
    /* peak - raw_live, as of the last change of either: the GIL side's
     * live total may reach a new peak only above it, so its fast paths
     * compare gil_live with this one word (note_peak_gil) */
    _Atomic uint64_t gil_bar;
    /* E (below): the per-thread caches' epoch and code stamp */
    cp_alloc_key epoch;
    _Atomic int live;
    bool per_function;
    bool trace;
    bool native;   /* alloc=native */
    bool by_frame; /* per_function && !trace: the site comes from the frame (sampling) */
    /* w_free's fast path takes a block whose shadow slot (size + 1) minus
     * one is below this: PYMALLOC_MAX_SIZE + 1, or 0 (never) with native */
    uint16_t free_fast_below;
    /* MEM/OBJ: the sizes of blocks below 64 KiB at 16-byte aligned
     * addresses (flatshadow.h: its dir and mask, which the fast paths
     * read, end the hot line); the others go to gil_map, or without the
     * flat shadow's directory, to gil_shadow and gil_map */
    cp_flat flat;
    layer *cur[3];             /* the run's counting layer per domain, NULL when off */
    _Atomic uint64_t raw_live; /* RAW: under raw_lock */
    /* the site that reached the peak (written at a new peak only) */
    _Atomic(cp_thread *) peak_th;
    _Atomic(cp_site_counts *) peak_counts; /* the site's counters (dump: its number) */
    uint32_t nopy_fid, unreg_fid;
    /* MEM/OBJ: under the GIL */
    cp_shadow gil_shadow;
    cp_ptrmap gil_map;
    /* RAW: under raw_lock */
    atomic_flag raw_lock;
    cp_shadow raw_shadow;
    cp_ptrmap raw_map;
    /* threads the profiler does not know */
    _Atomic uint64_t other_allocs, other_alloc_bytes, other_frees, other_free_bytes;
    _Atomic uint64_t frees_untracked;
    bool atfork_registered;
} A __attribute__((aligned(64))) = {.raw_lock = ATOMIC_FLAG_INIT, .flat = CP_FLAT_NONE};

/* T (cp_alloc_tls, alloc.h): the calling thread's profiler state, found
 * once per run. In the sampling mode, GIL side, also the counters of the
 * last code object seen, so that the next allocation in the same function
 * skips the co_extra read and the counter lookup. Those are valid while
 * E.stamp is unchanged: it moves whenever a code object carrying
 * co_extra is freed (cp_alloc_code_extra_freed), so a new code object at
 * a freed one's address is never mistaken for it. Cleared with th. */

/* E.gen: the epoch of the per-thread caches (new_epoch). E.stamp: moved by
 * the co_extra free function (GIL held) and at every start. Side by side
 * as in T, for one 64-bit compare; in A's first cache line. */
#define E (A.epoch)
_Static_assert(offsetof(__typeof__(A), flat.mask) + sizeof A.flat.mask <= 64,
               "the wrappers' fields fit one cache line");

void cp_alloc_code_extra_freed(void *extra)
{
    (void)extra;
    E.stamp++;
    for (int d = 1; d < 3; d++) /* MEM, OBJ: GIL held, as here */
        if (A.cur[d] && A.cur[d]->on)
            A.cur[d]->key.stamp = E.stamp;
}

/* ---- per-thread state ------------------------------------------------------ */

int cp_alloc_thread_init(cp_thread *th)
{
    if (cp_g.cfg.alloc == CP_ALLOC_OFF)
        return 0;
    th->alloc = cp_sites_new();
    return th->alloc ? 0 : -1;
}

void cp_alloc_thread_free(cp_thread *th)
{
    cp_sites_free(th->alloc);
    th->alloc = NULL;
}

/* Slow path: match the thread's Python thread state against the list.
 * Keyed by the thread state's id, which the interpreter never hands out
 * twice, not by the kernel tid: a thread that exits and whose tid the
 * kernel gives to a new thread (not yet attached, or never: a C thread)
 * must not find the dead thread's counters. (A new thread starts with
 * zeroed TLS, so nothing cached by the dead one survives either.) A
 * thread with no thread state bound (a C thread, or one being set up) is
 * not attached: NULL, looked up again once another thread is attached. */
static cp_thread *lookup_thread(void)
{
    uint32_t n = *(volatile uint32_t *)&cp_g.nthreads;
    if (T.miss_gen == E.gen && T.seen == n)
        return NULL; /* not attached, and no thread was attached since */
    /* Any thread, GIL or not: a TSS read (pthread_getspecific), NULL
     * before a thread state is bound and after the runtime is finalized. */
    PyThreadState *ts = PyGILState_GetThisThreadState();
    cp_thread *found = NULL;
    if (ts)
        for (cp_thread *t = atomic_load_explicit(&cp_g.threads, memory_order_acquire); t;
             t = t->next)
            if (t->ts_id == ts->id && t->native_tid == cp311_tstate_native_id(ts)) {
                found = t;
                break;
            }
    if (found && !found->alloc)
        found = NULL; /* made before counting was on: not counted */
    T.th = found;
    T.sites = found ? found->alloc : NULL;
    T.code = NULL;
    T.seen = n;
    /* gen == E.gen is the fast path's one test: th and sites set */
    T.gen = found ? E.gen : 0;
    T.miss_gen = found ? 0 : E.gen;
    return found;
}

static inline __attribute__((always_inline)) cp_thread *current_thread(void)
{
    if (LIKELY(T.gen == E.gen))
        return T.th;
    return lookup_thread();
}

cp_thread *cp_alloc_current_thread(void)
{
    return current_thread();
}

static inline __attribute__((always_inline)) cp_thread *counting_thread(void)
{
    cp_thread *th = current_thread();
    return th && th->alloc ? th : NULL;
}

/* ---- sites ------------------------------------------------------------------ */

/* The innermost complete Python frame of this thread, or NULL. With the
 * GIL the running thread state is the runtime's current one (one load);
 * without it, the thread's own (gilstate TSS key, a pthread_getspecific). */
static inline __attribute__((always_inline)) cp_iframe *innermost_frame(bool gil)
{
    PyThreadState *ts = gil ? _PyThreadState_GET() : PyGILState_GetThisThreadState();
    cp_iframe *f = ts ? cp311_tstate_frame(ts) : NULL;
    while (f && !cp311_iframe_complete(f))
        f = cp311_iframe_previous(f);
    return f;
}

/* The site of the allocation being counted on thread th. `gil`: the caller
 * holds the GIL (MEM/OBJ), so a code object seen for the first time may be
 * registered (busy is set: its allocations are not counted). */
static inline __attribute__((always_inline)) uint32_t site_of(cp_thread *th, bool gil)
{
    if (LIKELY(!A.per_function)) {
        uint32_t d = th->depth;
        return d ? th->stack[d - 1].node->index + 1 : 0;
    }
    if (A.trace) { /* ring transport: the stack holds function ids */
        uint32_t d = th->depth;
        return d ? th->stack[d - 1].fid + 1 : 0;
    }
    cp_iframe *f = innermost_frame(gil);
    if (!f)
        return 0;
    PyCodeObject *co = cp311_iframe_code(f);
    uintptr_t x = (uintptr_t)cp311_code_extra(co, cp_g.co_extra_index);
    if ((uint32_t)(x >> 32) == cp_g.generation)
        return (uint32_t)x + 1;
    return (gil ? cp_names_code(co) : A.unreg_fid) + 1;
}

/* Where an allocation or free made with the GIL is counted: th NULL for a
 * thread the profiler does not know ("other" counters), else c is the
 * site's counters (NULL when refused). Two words: returned in registers. */
typedef struct where {
    cp_thread *th;
    cp_site_counts *c;
} where;

/* Everything gil_where's fast path does not cover: the thread's first
 * allocation in the run, a function not seen last, the deterministic
 * mode's first use of a node's counters. Out of line, so that the
 * wrappers' fast path needs no registers saved around a call; not marked
 * cold (optimised for size): in the sampling mode every change of the
 * running function comes here, each comprehension's call and return
 * (alloc_heavy: one allocator call in 34). */
static __attribute__((noinline)) where gil_where_slow(void)
{
    where w = {counting_thread(), NULL};
    if (!w.th)
        return w;
    if (!A.by_frame) {
        w.c = cp_sites_get(w.th->alloc, site_of(w.th, true));
        return w;
    }
    cp_iframe *f = innermost_frame(true);
    if (!f) {
        w.c = cp_sites_get(w.th->alloc, 0);
        return w;
    }
    PyCodeObject *co = cp311_iframe_code(f);
    uintptr_t x = (uintptr_t)cp311_code_extra(co, cp_g.co_extra_index);
    if ((uint32_t)(x >> 32) != cp_g.generation) {
        /* First sight in this run: registering sets co_extra. */
        cp_names_code(co);
        x = (uintptr_t)cp311_code_extra(co, cp_g.co_extra_index);
        if ((uint32_t)(x >> 32) != cp_g.generation) {
            /* Not registered (no memory): counted as before, not cached. */
            w.c = cp_sites_get(w.th->alloc, A.unreg_fid + 1);
            return w;
        }
    }
    w.c = cp_sites_get(w.th->alloc, (uint32_t)x + 1);
    if (w.c) {
        /* Our co_extra slot is set: freeing the code object calls the free
         * function, which moves the stamp. */
        T.code = co;
        T.counts = w.c;
        T.code_first = _PyCode_CODE(co) + co->_co_firsttraceable;
        T.stamp = E.stamp;
    }
    return w;
}

/* The fast path: the thread known and counting, and (sampling) the
 * innermost function the one seen last, or (deterministic) the node's
 * counters mapped. c NULL: take gil_where_slow. */
static inline __attribute__((always_inline)) where gil_where_fast(bool by_frame, bool keyed)
{
    if (by_frame) {
        /* Only the innermost frame is looked at: a hit needs it to run the
         * cached code object and to be complete, tested against the cached
         * first traceable instruction (_PyFrame_IsIncomplete without the
         * code object's loads). An incomplete innermost frame (its cells
         * being made) takes the slow path, which walks to the caller. A
         * thread state's cframe is never NULL (root_cframe, 3.11), and
         * with the GIL held the runtime's current thread state is set. */
        PyThreadState *ts = _PyThreadState_GET();
        cp_iframe *f = LIKELY(ts != NULL) ? ts->cframe->current_frame : NULL;
        if (UNLIKELY(!f || (!keyed && T.gen_stamp != E.both)))
            return (where){NULL, NULL};
        if (UNLIKELY(cp311_iframe_code(f) != T.code ||
                     ((const void *)f->prev_instr < T.code_first &&
                      f->owner != FRAME_OWNED_BY_GENERATOR)))
            return (where){NULL, NULL};
        cp_site_counts *c = T.counts;
        if (!c) /* T.code is set (and matched a frame's code) only with its counters */
            __builtin_unreachable();
        return (where){T.th, c};
    }
    if (UNLIKELY(!keyed && T.gen != E.gen))
        return (where){NULL, NULL};
    /* site_of's first two cases (not by_frame: the stack gives the site),
     * written out so that its frame case, which may call into the
     * registry, is not compiled into the wrappers (a call there gave
     * w_free a stack frame and saved registers on every call). */
    cp_thread *th = T.th;
    uint32_t d = th->depth;
    uint32_t site =
        d ? (A.per_function ? th->stack[d - 1].fid : th->stack[d - 1].node->index) + 1 : 0;
    uint32_t k = site >> CP_SITES_CHUNK_BITS;
    cp_site_counts *chunk = k < CP_SITES_MAX_CHUNKS
                                ? atomic_load_explicit(&T.sites->chunks[k], memory_order_relaxed)
                                : NULL;
    if (UNLIKELY(!chunk))
        return (where){NULL, NULL};
    cp_site_counts *c = &chunk[site & (CP_SITES_CHUNK - 1)];
    if (!c)
        __builtin_unreachable(); /* an element of a mapped chunk */
    return (where){T.th, c};
}

static inline __attribute__((always_inline)) where gil_where(void)
{
    where w = gil_where_fast(A.by_frame, false);
    if (LIKELY(w.c != NULL))
        return w;
    return gil_where_slow();
}

static inline void note_peak(uint64_t total, cp_thread *th, cp_site_counts *c)
{
    if (total > atomic_load_explicit(&A.peak, memory_order_relaxed)) {
        atomic_store_explicit(&A.peak, total, memory_order_relaxed);
        atomic_store_explicit(&A.peak_th, th, memory_order_relaxed);
        atomic_store_explicit(&A.peak_counts, c, memory_order_relaxed);
    }
}

/* A.gil_bar again, after the peak or raw_live changed. Both sides write
 * it (the RAW side under raw_lock, the GIL side at its new peaks): a race
 * leaves the bar of one or the other, which the next change of either
 * puts right; a bar too high misses at most the RAW bytes of the
 * allocation in flight, as note_peak's own race does. */
static inline void set_gil_bar(void)
{
    uint64_t peak = atomic_load_explicit(&A.peak, memory_order_relaxed);
    uint64_t raw = atomic_load_explicit(&A.raw_live, memory_order_relaxed);
    atomic_store_explicit(&A.gil_bar, peak > raw ? peak - raw : 0, memory_order_relaxed);
}

/* The GIL side's live total `live` went above A.gil_bar: a new peak
 * unless raw_live went down since the bar was set, reached on the calling
 * thread (T.th: the where's thread, which gil_where and gil_where_fast
 * take from T) at its counters c. Out of line: the fast paths only
 * compare. */
static __attribute__((noinline)) void note_peak_gil(uint64_t live, cp_site_counts *c)
{
    note_peak(live + atomic_load_explicit(&A.raw_live, memory_order_relaxed), T.th, c);
    set_gil_bar();
}

/* The fast paths' peak test: the GIL side's live total is now `live`. */
static inline __attribute__((always_inline)) void gil_peak_test(uint64_t live, cp_site_counts *c)
{
    if (UNLIKELY(live > atomic_load_explicit(&A.gil_bar, memory_order_relaxed)))
        note_peak_gil(live, c);
}

/* Returns the site's counters (NULL: other thread, or refused). */
static inline cp_site_counts *count_alloc(cp_thread *th, uint32_t site, size_t n)
{
    if (th) {
        cp_site_counts *c = cp_sites_get(th->alloc, site);
        if (c) {
            c->allocs++;
            c->alloc_bytes += n;
        }
        return c;
    }
    atomic_fetch_add_explicit(&A.other_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&A.other_alloc_bytes, n, memory_order_relaxed);
    return NULL;
}

static inline void count_free(cp_thread *th, uint32_t site, uint64_t n)
{
    if (th) {
        cp_site_counts *c = cp_sites_get(th->alloc, site);
        if (c) {
            c->frees++;
            c->free_bytes += n;
        }
    } else {
        atomic_fetch_add_explicit(&A.other_frees, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&A.other_free_bytes, n, memory_order_relaxed);
    }
}

/* ---- MEM / OBJ (GIL held) --------------------------------------------------- */

/* Below this, a block's free does not reach PyMem_RawFree: pymalloc serves
 * requests up to 512 bytes (SMALL_REQUEST_THRESHOLD in 3.11's obmalloc.c)
 * and hands larger ones to the RAW domain; the debug hooks (-X dev,
 * PYTHONMALLOC=pymalloc_debug) add 4 words to every request. */
#define PYMALLOC_MAX_SIZE (512u - 4 * 8u)

static inline __attribute__((always_inline)) void gil_count_alloc(where w, size_t n)
{
    if (LIKELY(w.c != NULL)) {
        w.c->allocs++;
        w.c->alloc_bytes += n;
    } else if (!w.th) {
        atomic_fetch_add_explicit(&A.other_allocs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&A.other_alloc_bytes, n, memory_order_relaxed);
    }
}

static inline __attribute__((always_inline)) void gil_count_free(where w, uint64_t n)
{
    if (LIKELY(w.c != NULL)) {
        w.c->frees++;
        w.c->free_bytes += n;
    } else if (!w.th) {
        atomic_fetch_add_explicit(&A.other_frees, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&A.other_free_bytes, n, memory_order_relaxed);
    }
}

/* The GIL side's block sizes, the general way (the fast paths read and
 * write the flat shadow's slots themselves). A block below 64 KiB at a
 * 16-byte aligned address goes to the flat shadow, any other to the map;
 * without the flat shadow (its reservation refused) sizeshadow.h's
 * regions and the map take them all. Returns as cp_sizes_put: 1 added, 2
 * a block was recorded at p already (its size in *old), 0 not kept. */
static int gil_sizes_put(uintptr_t p, uint64_t n, uint64_t *old)
{
    uint16_t *e = n <= CP_FLAT_MAX_SIZE ? cp_flat_slot_make(&A.flat, p) : cp_flat_slot(&A.flat, p);
    if (e && n <= CP_FLAT_MAX_SIZE) {
        uint16_t was = *e;
        *e = (uint16_t)(n + 1);
        if (!was)
            return 1;
        *old = (uint64_t)was - 1;
        return 2;
    }
    if (!A.flat.dir_map)
        return cp_sizes_put(&A.gil_shadow, &A.gil_map, p, n, old);
    if (e && *e) {
        /* a small block recorded at p whose free we missed: a free of p
         * must not find it (the flat shadow is looked at first) */
        *old = (uint64_t)*e - 1;
        *e = 0;
        uint64_t ignored;
        return cp_ptrmap_put(&A.gil_map, p, n, &ignored) ? 2 : 0;
    }
    return cp_ptrmap_put(&A.gil_map, p, n, old);
}

/* gil_sizes_take for a block the flat shadow does not hold. */
static __attribute__((noinline)) bool gil_sizes_take_other(uintptr_t p, uint64_t *n)
{
    if (!A.flat.dir_map)
        return cp_sizes_take(&A.gil_shadow, &A.gil_map, p, n);
    return A.gil_map.count && cp_ptrmap_take(&A.gil_map, p, n);
}

/* Forgets p; true (and its size) if it was recorded. The flat shadow's
 * part inline: w_free_slow comes here for nearly every free whose site
 * test failed (the running function changed), of a small block. */
static inline bool gil_sizes_take(uintptr_t p, uint64_t *n)
{
    uint16_t *e = cp_flat_slot(&A.flat, p);
    if (LIKELY(e && *e)) {
        *n = (uint64_t)*e - 1;
        *e = 0;
        return true;
    }
    return gil_sizes_take_other(p, n);
}

/* A counted block p of n bytes (the full path). */
static inline __attribute__((always_inline)) void gil_new(where w, void *p, size_t n)
{
    uint64_t sz;
    gil_count_alloc(w, n);
    if (UNLIKELY(gil_sizes_put((uintptr_t)p, n, &sz) == 2))
        A.gil_live -= sz; /* a block freed behind our back */
    A.gil_live += n;
    gil_peak_test(A.gil_live, w.c);
}

/* The layer's `on` (see struct layer) and not inside our own work. */
static inline bool gil_counting(const layer *L)
{
    return L->on && !cp_alloc_busy;
}

/* The wrappers' first test: not inside our own work, the layer counts
 * and the thread's caches are of this run (and, sampling mode, of the
 * current code stamp), so that gil_where_fast need not compare them with
 * E again (`keyed`). Anything else takes the general path. In the
 * sampling mode this is one compare: T's busy bit is in T.gen_stamp,
 * and the key's is 0. */
static inline __attribute__((always_inline)) bool gil_keyed(const layer *L, bool by_frame)
{
    if (by_frame)
        return T.gen_stamp == L->key.both;
    return !cp_alloc_busy && T.gen == L->key.gen;
}

/*
 * The wrappers' fast paths are written so that their only calls are the
 * forward to the allocator and tail calls: no registers to save, no frame
 * (measured: the prologue and epilogue were 15 of ~100 instructions per
 * call). Anything unusual (first allocation of the thread, a function not
 * seen last, a region not in the shadow's cache, a large block) goes to
 * an out-of-line function that does the whole accounting the general way.
 *
 * busy is set around the forward of malloc, calloc and realloc (pymalloc
 * hands large requests to PyMem_RawMalloc, which must not count them
 * again) and cleared before the accounting: nothing there allocates
 * through PyMem (registering a code object sets busy itself; our tables
 * are mmap'd).
 */

/* The fast accounting of a new block p of n bytes at w; false (nothing
 * done) when w has no counters or p no free slot in the flat shadow. */
static inline __attribute__((always_inline)) bool gil_new_flat(where w, void *p, size_t n)
{
    uint16_t *e;
    if (UNLIKELY(!w.c || n > CP_FLAT_MAX_SIZE || !(e = cp_flat_slot(&A.flat, (uintptr_t)p)) || *e))
        return false;
    *e = (uint16_t)(n + 1);
    w.c->allocs++;
    w.c->alloc_bytes += n;
    uint64_t live = A.gil_live += n;
    gil_peak_test(live, w.c);
    return true;
}

/* A fast path missed (mostly: the innermost function is not the one
 * cached): the site from scratch (gil_where_slow, not gil_where, whose
 * fast half has just failed), then the block the fast way if it can. */
static __attribute__((noinline)) void *gil_new_slow(void *p, size_t n)
{
    where w = gil_where_slow();
    if (!gil_new_flat(w, p, n))
        gil_new(w, p, n);
    return p;
}

/* Counts p (non-NULL) of n bytes; returns p. */
static inline __attribute__((always_inline)) void *gil_new_fast_at(where w, void *p, size_t n)
{
    if (UNLIKELY(!gil_new_flat(w, p, n)))
        return gil_new_slow(p, n);
    return p;
}

static inline __attribute__((always_inline)) void *gil_new_fast(void *p, size_t n, bool by_frame)
{
    return gil_new_fast_at(gil_where_fast(by_frame, true), p, n);
}

/* The general paths: the layer may not count, the thread may be unknown
 * or its caches stale (gil_keyed false). Out of line. */
static __attribute__((noinline)) void *malloc_general(layer *L, size_t n)
{
    if (!gil_counting(L))
        return L->orig.malloc(L->orig.ctx, n);
    cp_alloc_busy = 1;
    void *p = L->orig.malloc(L->orig.ctx, n);
    cp_alloc_busy = 0;
    return p ? gil_new_slow(p, n) : p;
}

static __attribute__((noinline)) void *calloc_general(layer *L, size_t nelem, size_t elsize)
{
    if (!gil_counting(L))
        return L->orig.calloc(L->orig.ctx, nelem, elsize);
    cp_alloc_busy = 1;
    void *p = L->orig.calloc(L->orig.ctx, nelem, elsize);
    cp_alloc_busy = 0;
    return p ? gil_new_slow(p, nelem * elsize) : p;
}

static __attribute__((noinline)) void *gil_realloc_slow(void *ptr, void *p, size_t n);

static __attribute__((noinline)) void *realloc_general(layer *L, void *ptr, size_t n)
{
    if (!gil_counting(L))
        return L->orig.realloc(L->orig.ctx, ptr, n);
    cp_alloc_busy = 1;
    void *p = L->orig.realloc(L->orig.ctx, ptr, n);
    cp_alloc_busy = 0;
    return p ? gil_realloc_slow(ptr, p, n) : p;
}

static inline __attribute__((always_inline)) void *malloc_body(void *ctx, size_t n, bool bf)
{
    layer *L = ctx;
    if (UNLIKELY(!gil_keyed(L, bf)))
        return malloc_general(L, n);
    cp_alloc_busy = 1;
    void *p = L->orig.malloc(L->orig.ctx, n);
    cp_alloc_busy = 0;
    if (UNLIKELY(p == NULL))
        return p;
    return gil_new_fast(p, n, bf);
}

static inline __attribute__((always_inline)) void *calloc_body(void *ctx, size_t nelem,
                                                               size_t elsize, bool bf)
{
    layer *L = ctx;
    if (UNLIKELY(!gil_keyed(L, bf)))
        return calloc_general(L, nelem, elsize);
    cp_alloc_busy = 1;
    void *p = L->orig.calloc(L->orig.ctx, nelem, elsize);
    cp_alloc_busy = 0;
    if (UNLIKELY(p == NULL))
        return p;
    return gil_new_fast(p, nelem * elsize, bf); /* no overflow: the allocator checked */
}

/* A realloc of ptr (may be NULL) that returned p (non-NULL), the general
 * way: the old block's free and the new block, on the same site. */
static __attribute__((noinline)) void *gil_realloc_slow(void *ptr, void *p, size_t n)
{
    where w = gil_where_slow();
    uint64_t sz;
    if (!ptr) {
    } else if (gil_sizes_take((uintptr_t)ptr, &sz)) {
        A.gil_live -= sz;
        gil_count_free(w, sz);
    } else {
        atomic_fetch_add_explicit(&A.frees_untracked, 1, memory_order_relaxed);
    }
    gil_new(w, p, n);
    return p;
}

static inline __attribute__((always_inline)) void *realloc_body(void *ctx, void *ptr, size_t n,
                                                                bool bf)
{
    layer *L = ctx;
    if (UNLIKELY(!gil_keyed(L, bf)))
        return realloc_general(L, ptr, n);
    cp_alloc_busy = 1;
    void *p = L->orig.realloc(L->orig.ctx, ptr, n);
    cp_alloc_busy = 0;
    if (UNLIKELY(p == NULL))
        return p; /* the old block is untouched: nothing to count */
    where w = gil_where_fast(bf, true);
    if (!ptr) /* realloc(NULL, n): a new block (list and string growth start so) */
        return gil_new_fast_at(w, p, n);
    uint16_t *eo, *en;
    /* The slow path starts from scratch: anything changed before it is
     * taken is put back. */
    if (UNLIKELY(!w.c || n > CP_FLAT_MAX_SIZE || !(eo = cp_flat_slot(&A.flat, (uintptr_t)ptr)) ||
                 !(en = cp_flat_slot(&A.flat, (uintptr_t)p))))
        return gil_realloc_slow(ptr, p, n);
    uint16_t was = *eo;
    /* Cleared before *en is read: the new block may be the old one (grown
     * in place), and then needs no test of its own (no branch on en ==
     * eo, which goes either way at random). */
    *eo = 0;
    if (UNLIKELY(!was || *en)) {
        *eo = was;
        return gil_realloc_slow(ptr, p, n);
    }
    uint64_t old = (uint64_t)was - 1;
    *en = (uint16_t)(n + 1);
    w.c->frees++;
    w.c->free_bytes += old;
    w.c->allocs++;
    w.c->alloc_bytes += n;
    uint64_t live = A.gil_live = A.gil_live - old + n;
    gil_peak_test(live, w.c);
    return p;
}

/* The free of ptr, the general way: accounting, then the forward with busy
 * set if the block may reach PyMem_RawFree (pymalloc hands it the blocks
 * it did not serve, whose allocation the RAW wrapper did not count
 * either), or (native) pymalloc may munmap an arena. */
static __attribute__((noinline)) void w_free_slow(layer *L, void *ptr)
{
    uint64_t sz;
    if (!ptr) { /* the fast path does not test it: its slot is never set */
        L->orig.free(L->orig.ctx, ptr);
        return;
    }
    if (gil_sizes_take((uintptr_t)ptr, &sz)) {
        A.gil_live -= sz;
        gil_count_free(gil_where_slow(), sz); /* (the fast path's site test failed, or will) */
    } else {
        atomic_fetch_add_explicit(&A.frees_untracked, 1, memory_order_relaxed);
        sz = UINT64_MAX; /* unknown: may be a large block */
    }
    if (sz > PYMALLOC_MAX_SIZE || A.native) {
        cp_alloc_busy = 1;
        L->orig.free(L->orig.ctx, ptr);
        cp_alloc_busy = 0;
        return;
    }
    L->orig.free(L->orig.ctx, ptr);
}

static __attribute__((noinline)) void free_general(layer *L, void *ptr)
{
    if (ptr && gil_counting(L))
        return w_free_slow(L, ptr);
    L->orig.free(L->orig.ctx, ptr);
}

static inline __attribute__((always_inline)) void free_body(void *ctx, void *ptr, bool bf)
{
    layer *L = ctx;
    if (UNLIKELY(!gil_keyed(L, bf)))
        return free_general(L, ptr);
    where w = gil_where_fast(bf, true);
    uint16_t *e;
    /* ptr NULL (rare) is not tested here: the slot of address 0, if any,
     * is 0, which takes w_free_slow. */
    if (UNLIKELY(!w.c || !(e = cp_flat_slot(&A.flat, (uintptr_t)ptr)) ||
                 (uint16_t)(*e - 1) >= A.free_fast_below)) /* 0: no block recorded */
        return w_free_slow(L, ptr);
    uint64_t sz = (uint64_t)*e - 1;
    *e = 0;
    A.gil_live -= sz;
    w.c->frees++;
    w.c->free_bytes += sz;
    L->orig.free(L->orig.ctx, ptr);
}

/* The wrappers, one set per site source, chosen at start (A.by_frame
 * does not change while they are installed): the mode's test is compiled
 * out of every call. _f: the site comes from the frame (sampling mode);
 * _s: from the shadow stack. */
#define GIL_WRAPPERS(sfx, bf)                                                                      \
    HOT_PATH static void *w_malloc##sfx(void *ctx, size_t n)                                       \
    {                                                                                              \
        return malloc_body(ctx, n, bf);                                                            \
    }                                                                                              \
    HOT_PATH static void *w_calloc##sfx(void *ctx, size_t nelem, size_t elsize)                    \
    {                                                                                              \
        return calloc_body(ctx, nelem, elsize, bf);                                                \
    }                                                                                              \
    HOT_PATH static void *w_realloc##sfx(void *ctx, void *ptr, size_t n)                           \
    {                                                                                              \
        return realloc_body(ctx, ptr, n, bf);                                                      \
    }                                                                                              \
    HOT_PATH static void w_free##sfx(void *ctx, void *ptr)                                         \
    {                                                                                              \
        free_body(ctx, ptr, bf);                                                                   \
    }
GIL_WRAPPERS(_f, true)
GIL_WRAPPERS(_s, false)

/* ---- RAW (any thread, GIL or not) -------------------------------------------- */

static inline void raw_lock(void)
{
    while (atomic_flag_test_and_set_explicit(&A.raw_lock, memory_order_acquire))
        __builtin_ia32_pause();
}

static inline void raw_unlock(void)
{
    atomic_flag_clear_explicit(&A.raw_lock, memory_order_release);
}

static inline bool raw_counting(const layer *L)
{
    return L->on && !cp_alloc_busy;
}

/* Takes `old` out of the map (counted as a free). Under the lock. */
static void raw_forget(cp_thread *th, uint32_t site, void *old)
{
    uint64_t sz;
    if (cp_sizes_take(&A.raw_shadow, &A.raw_map, (uintptr_t)old, &sz)) {
        atomic_fetch_sub_explicit(&A.raw_live, sz, memory_order_relaxed);
        set_gil_bar();
        count_free(th, site, sz);
    } else {
        atomic_fetch_add_explicit(&A.frees_untracked, 1, memory_order_relaxed);
    }
}

/* Counts a new block. Under the lock. */
static void raw_remember(cp_thread *th, uint32_t site, void *p, size_t n)
{
    uint64_t sz;
    cp_site_counts *c = count_alloc(th, site, n);
    if (cp_sizes_put(&A.raw_shadow, &A.raw_map, (uintptr_t)p, n, &sz) == 2)
        atomic_fetch_sub_explicit(&A.raw_live, sz, memory_order_relaxed);
    uint64_t live = atomic_fetch_add_explicit(&A.raw_live, n, memory_order_relaxed) + n;
    note_peak(live + A.gil_live, th, c);
    set_gil_bar();
}

void cp_alloc_raw_new(void *p, size_t n)
{
    int was_busy = cp_alloc_busy;
    cp_alloc_busy = 1;
    raw_lock();
    if (atomic_load_explicit(&A.live, memory_order_relaxed)) {
        cp_thread *th = counting_thread();
        raw_remember(th, th ? site_of(th, false) : 0, p, n);
    }
    raw_unlock();
    cp_alloc_busy = was_busy;
}

void cp_alloc_raw_free(void *ptr)
{
    int was_busy = cp_alloc_busy;
    cp_alloc_busy = 1;
    raw_lock();
    if (atomic_load_explicit(&A.live, memory_order_relaxed)) {
        cp_thread *th = counting_thread();
        raw_forget(th, th ? site_of(th, false) : 0, ptr);
    }
    raw_unlock();
    cp_alloc_busy = was_busy;
}

void *cp_alloc_raw_realloc(cp_realloc_fn fn, void *ctx, void *ptr, size_t n)
{
    int was_busy = cp_alloc_busy;
    cp_alloc_busy = 1; /* the allocator's own calls (malloc, mmap) are not counted again */
    if (!ptr) {
        void *p = fn(ctx, NULL, n);
        cp_alloc_busy = was_busy;
        if (p)
            cp_alloc_raw_new(p, n);
        return p;
    }
    /* Take the old entry out first (see the RAW hazard above); put it back
     * if the realloc fails and the old block stays. */
    raw_lock();
    uint64_t old_size = 0;
    bool had = atomic_load_explicit(&A.live, memory_order_relaxed) &&
               cp_sizes_take(&A.raw_shadow, &A.raw_map, (uintptr_t)ptr, &old_size);
    raw_unlock();
    void *p = fn(ctx, ptr, n);
    raw_lock();
    if (atomic_load_explicit(&A.live, memory_order_relaxed)) {
        cp_thread *th = counting_thread();
        uint32_t site = th ? site_of(th, false) : 0;
        uint64_t ignored;
        if (!p) {
            if (had)
                cp_sizes_put(&A.raw_shadow, &A.raw_map, (uintptr_t)ptr, old_size, &ignored);
        } else {
            if (had) {
                atomic_fetch_sub_explicit(&A.raw_live, old_size, memory_order_relaxed);
                count_free(th, site, old_size);
            } else {
                atomic_fetch_add_explicit(&A.frees_untracked, 1, memory_order_relaxed);
            }
            raw_remember(th, site, p, n);
        }
    }
    raw_unlock();
    cp_alloc_busy = was_busy;
    return p;
}

static void *w_raw_malloc(void *ctx, size_t n)
{
    layer *L = ctx;
    if (!raw_counting(L))
        return L->orig.malloc(L->orig.ctx, n);
    cp_alloc_busy = 1; /* the allocator's malloc is not a native allocation */
    void *p = L->orig.malloc(L->orig.ctx, n);
    cp_alloc_busy = 0;
    if (p)
        cp_alloc_raw_new(p, n);
    return p;
}

static void *w_raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
    layer *L = ctx;
    if (!raw_counting(L))
        return L->orig.calloc(L->orig.ctx, nelem, elsize);
    cp_alloc_busy = 1;
    void *p = L->orig.calloc(L->orig.ctx, nelem, elsize);
    cp_alloc_busy = 0;
    if (p)
        cp_alloc_raw_new(p, nelem * elsize);
    return p;
}

static void *layer_realloc(void *ctx, void *ptr, size_t n)
{
    layer *L = ctx;
    return L->orig.realloc(L->orig.ctx, ptr, n);
}

static void *w_raw_realloc(void *ctx, void *ptr, size_t n)
{
    layer *L = ctx;
    if (!raw_counting(L))
        return L->orig.realloc(L->orig.ctx, ptr, n);
    return cp_alloc_raw_realloc(layer_realloc, L, ptr, n);
}

static void w_raw_free(void *ctx, void *ptr)
{
    layer *L = ctx;
    if (!ptr || !raw_counting(L)) {
        L->orig.free(L->orig.ctx, ptr);
        return;
    }
    cp_alloc_raw_free(ptr);
    cp_alloc_busy = 1;
    L->orig.free(L->orig.ctx, ptr);
    cp_alloc_busy = 0;
}

/* ---- start / stop ------------------------------------------------------------ */

static bool is_ours(const PyMemAllocatorEx *a)
{
    return a->malloc == w_malloc_f || a->malloc == w_malloc_s || a->malloc == w_raw_malloc;
}

_Atomic int cp_alloc_native_live;

static void layers_off(void)
{
    for (int d = 0; d < 3; d++)
        if (A.cur[d]) {
            A.cur[d]->on = 0;
            key_off(A.cur[d]);
        }
}

static void atfork_child(void)
{
    atomic_store(&cp_alloc_native_live, 0);
    layers_off();
    atomic_store(&A.live, 0);
    /* Only the forking thread exists now, and it was not inside the lock
     * (it was calling fork): another thread may have held it at the fork,
     * and a cpyprof.start() in the child must not spin on it forever. */
    atomic_flag_clear(&A.raw_lock);
    cp_alloc_native_atfork_child();
}

/* E.gen: the epoch of the per-thread caches (T), moved at every
 * start and stop, never 0 (a new thread's TLS) nor EPOCH_NONE (a layer
 * that does not count). A lookup is always of the
 * live thread list, so a cache filled in any epoch is right for it; moving
 * the epoch at stop and start keeps a thread from using a state cached in
 * an earlier run (gc.c asks for the thread while start is still running). */
static void new_epoch(void)
{
    static uint32_t epoch;
    if (++epoch == 0 || epoch == EPOCH_NONE)
        epoch = 1;
    E.gen = epoch;
}

void cp_alloc_start(void)
{
    if (cp_g.cfg.alloc == CP_ALLOC_OFF)
        return;
    new_epoch();
    for (int d = 0; d < 3; d++) {
        if (nlayers[d] >= MAX_LAYERS) {
            cp_log("alloc: the allocators were wrapped %d times in this process already: "
                   "allocations are not counted in this run",
                   MAX_LAYERS);
            return;
        }
    }
    /* Timeline mode's shadow stack holds function ids, like the ring transport's. */
    A.trace = cp_g.cfg.mode == CP_MODE_TRACE || cp_g.cfg.mode == CP_MODE_TIMELINE;
    A.per_function =
        !A.trace || cp_g.cfg.transport == CP_TRANSPORT_RING || cp_g.cfg.mode == CP_MODE_TIMELINE;
    A.by_frame = A.per_function && !A.trace;
    A.native = cp_g.cfg.alloc == CP_ALLOC_NATIVE;
    A.free_fast_below = A.native ? 0 : PYMALLOC_MAX_SIZE + 1;
    E.stamp++; /* caches of a previous run (ids of another generation) */
    A.nopy_fid = cp_symtab_func(&cp_g.syms, cp_names_string("[no Python frame]"), CPYPROF_NONE, 0,
                                CPYPROF_FUNC_SPECIAL);
    A.unreg_fid = cp_symtab_func(&cp_g.syms, cp_names_string("[unregistered]"), CPYPROF_NONE, 0,
                                 CPYPROF_FUNC_SPECIAL);
    cp_ptrmap_clear(&A.gil_map); /* a previous run that was never dumped */
    cp_ptrmap_clear(&A.raw_map);
    cp_shadow_clear(&A.gil_shadow);
    cp_shadow_clear(&A.raw_shadow);
    cp_flat_clear(&A.flat);
    /* refused (no overcommit, ulimit -v): gil_shadow's regions instead */
    cp_flat_init(&A.flat);
    cp_shadow_init(&A.gil_shadow, SHADOW_REGIONS);
    cp_shadow_init(&A.raw_shadow, SHADOW_REGIONS);
    cp_ptrmap_init(&A.gil_map, MAP_MAX_ENTRIES);
    cp_ptrmap_init(&A.raw_map, MAP_MAX_ENTRIES);
    A.gil_live = 0;
    atomic_store(&A.raw_live, 0);
    atomic_store(&A.peak, 0);
    atomic_store(&A.gil_bar, 0);
    atomic_store(&A.peak_th, NULL);
    atomic_store(&A.peak_counts, NULL);
    atomic_store(&A.other_allocs, 0);
    atomic_store(&A.other_alloc_bytes, 0);
    atomic_store(&A.other_frees, 0);
    atomic_store(&A.other_free_bytes, 0);
    atomic_store(&A.frees_untracked, 0);
    if (!A.atfork_registered) {
        pthread_atfork(NULL, NULL, atfork_child);
        A.atfork_registered = true;
    }
    static const PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                    PYMEM_DOMAIN_OBJ};
    for (int d = 0; d < 3; d++) {
        layer *L = &layers[d][nlayers[d]++];
        PyMem_GetAllocator(domains[d], &L->orig);
        L->domain = domains[d];
        PyMemAllocatorEx w = {L, w_malloc_s, w_calloc_s, w_realloc_s, w_free_s};
        if (A.by_frame)
            w = (PyMemAllocatorEx){L, w_malloc_f, w_calloc_f, w_realloc_f, w_free_f};
        if (d == 0)
            w = (PyMemAllocatorEx){L, w_raw_malloc, w_raw_calloc, w_raw_realloc, w_raw_free};
        A.cur[d] = L;
        L->on = 0;
        key_off(L);
        PyMem_SetAllocator(domains[d], &w);
    }
    atomic_store(&A.live, 1);
    for (int d = 0; d < 3; d++) {
        A.cur[d]->key.both = E.both;
        A.cur[d]->on = 1;
    }
    if (cp_g.cfg.alloc == CP_ALLOC_NATIVE)
        cp_alloc_native_start(); /* after live: its wrappers count from now */
}

void cp_alloc_stop(void)
{
    if (!A.cur[0])
        return;
    cp_alloc_native_stop(); /* slots back first; late callers only forward */
    layers_off();
    atomic_store(&A.live, 0);
    new_epoch();
    /* A RAW or native wrapper that saw live == 1 finishes under the lock. */
    raw_lock();
    raw_unlock();
    static const PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                    PYMEM_DOMAIN_OBJ};
    for (int d = 0; d < 3; d++) {
        PyMemAllocatorEx now;
        PyMem_GetAllocator(domains[d], &now);
        if (is_ours(&now) && now.ctx == A.cur[d])
            PyMem_SetAllocator(domains[d], &A.cur[d]->orig);
        /* else someone wrapped us: our layer stays and forwards only */
        A.cur[d] = NULL;
    }
}

bool cp_alloc_obj_unwrap(PyMemAllocatorEx *saved)
{
    PyMemAllocatorEx a;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &a);
    if (!is_ours(&a))
        return false; /* someone wrapped us (tracemalloc): as without us */
    *saved = a;
    /* Layers of earlier runs may lie under this one (a stop could not take
     * them out): the allocator under the last of ours. */
    while (is_ours(&a))
        a = ((const layer *)a.ctx)->orig;
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &a);
    return true;
}

void cp_alloc_obj_rewrap(const PyMemAllocatorEx *saved)
{
    PyMemAllocatorEx a = *saved;
    PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &a);
}

/* ---- dump --------------------------------------------------------------------- */

static int put(cp_buf *b, char *err, size_t errlen)
{
    if (b->oom) {
        snprintf(err, errlen, "out of memory while writing the ALLOC chunks");
        return -1;
    }
    return cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_ALLOC, b->data, b->len, err, errlen);
}

static void put_node(cp_buf *b, uint32_t parent, uint32_t func, const cp_site_counts *c)
{
    cp_buf_u32(b, parent);
    cp_buf_u32(b, func);
    cp_buf_u64(b, c ? c->allocs : 0);
    cp_buf_u64(b, c ? c->alloc_bytes : 0);
    cp_buf_u64(b, c ? c->frees : 0);
    cp_buf_u64(b, c ? c->free_bytes : 0);
}

/* One thread's nodes. Tree mode: the call-tree nodes with counts and their
 * ancestors, in index order (parents first), plus a root for site 0. Per
 * function: one root per site with counts. *peak_node gets the output
 * index of the peak site if it is on this thread. */
static int dump_thread(cp_thread *th, uint32_t peak_site, uint32_t *peak_node, char *err,
                       size_t errlen)
{
    cp_sitestats *s = th->alloc;
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, CPYPROF_ALLOC_THREAD);
    cp_buf_u32(&b, th->id);
    size_t count_at = b.len;
    cp_buf_u32(&b, 0);
    uint32_t k = 0;
    const cp_site_counts *c0 = cp_sites_peek(s, 0);
    if (!cp_site_counts_zero(c0) || peak_site == 0) {
        if (peak_site == 0)
            *peak_node = k;
        put_node(&b, CPYPROF_NONE, A.nopy_fid, c0);
        k++;
    }
    if (A.per_function) {
        uint32_t bound = cp_sites_bound(s);
        uint32_t nf = cp_symtab_nfuncs(&cp_g.syms);
        for (uint32_t site = 1; site < bound; site++) {
            const cp_site_counts *c = cp_sites_peek(s, site);
            if (cp_site_counts_zero(c) && site != peak_site)
                continue;
            if (site - 1 >= nf)
                continue; /* not a function id: cannot happen, never write a bad reference */
            if (site == peak_site)
                *peak_node = k;
            put_node(&b, CPYPROF_NONE, site - 1, c);
            k++;
        }
    } else {
        uint32_t count = cp_tree_count(&th->tree);
        uint8_t *need = calloc(count ? count : 1, 1);
        uint32_t *pos = calloc(count ? count : 1, sizeof *pos);
        if (!need || !pos) {
            free(need);
            free(pos);
            cp_buf_free(&b);
            snprintf(err, errlen, "out of memory while writing the ALLOC chunks");
            return -1;
        }
        for (uint32_t i = count; i-- > 0;) {
            if (!need[i] && cp_site_counts_zero(cp_sites_peek(s, i + 1)) && peak_site != i + 1)
                continue;
            need[i] = 1;
            uint32_t parent = cp_tree_at(&th->tree, i)->parent;
            if (parent != CP_TREE_ROOT && parent < i)
                need[parent] = 1;
        }
        for (uint32_t i = 0; i < count; i++) {
            if (!need[i])
                continue;
            const cp_tree_node *nd = cp_tree_at(&th->tree, i);
            pos[i] = k;
            if (peak_site == i + 1)
                *peak_node = k;
            uint32_t parent =
                nd->parent == CP_TREE_ROOT || nd->parent >= i ? CPYPROF_NONE : pos[nd->parent];
            put_node(&b, parent, nd->func, cp_sites_peek(s, i + 1));
            k++;
        }
        free(need);
        free(pos);
    }
    if (k == 0) {
        cp_buf_free(&b);
        return 0;
    }
    memcpy(b.data + count_at, &k, 4); /* little-endian host (x86-64) */
    int rc = put(&b, err, errlen);
    cp_buf_free(&b);
    return rc;
}

uint64_t cp_alloc_live_bytes(void)
{
    /* gil_live is a plain counter the MEM/OBJ wrappers update under the
     * GIL; an aligned 64-bit relaxed load from another thread sees an old
     * or new value, never a torn one. */
    return __atomic_load_n(&A.gil_live, __ATOMIC_RELAXED) +
           atomic_load_explicit(&A.raw_live, memory_order_relaxed);
}

/* release: free the maps afterwards (stop's dump, with the GIL); not from
 * the SIGTERM dump, where wrappers may still be using them. */
static int dump_all(bool release, char *err, size_t errlen)
{
    if (cp_g.cfg.alloc == CP_ALLOC_OFF || !A.gil_map.max_entries)
        return 0;
    if (cp_alloc_series_flush(err, errlen) != 0) /* loses only the series */
        cp_log("%s", err);
    cp_thread *peak_th = atomic_load(&A.peak_th);
    uint32_t peak_site =
        peak_th ? cp_sites_index_of(peak_th->alloc, atomic_load(&A.peak_counts)) : UINT32_MAX;
    uint32_t peak_thread = CPYPROF_NONE, peak_node = CPYPROF_NONE;
    int rc = 0;
    for (cp_thread *t = atomic_load(&cp_g.threads); t && rc == 0; t = t->next) {
        if (!t->alloc)
            continue;
        uint32_t pn = CPYPROF_NONE;
        rc = dump_thread(t, t == peak_th ? peak_site : UINT32_MAX, &pn, err, errlen);
        if (t == peak_th && pn != CPYPROF_NONE) {
            peak_thread = t->id;
            peak_node = pn;
        }
    }
    if (rc == 0) {
        cp_buf b;
        cp_buf_init(&b);
        cp_buf_u32(&b, CPYPROF_ALLOC_RUN);
        uint32_t flags = A.per_function ? CPYPROF_ALLOC_PER_FUNCTION : 0;
        if (cp_g.cfg.alloc == CP_ALLOC_NATIVE)
            flags |= CPYPROF_ALLOC_NATIVE;
        cp_buf_u32(&b, flags);
        cp_buf_u32(&b, peak_thread);
        cp_buf_u32(&b, peak_node);
        cp_buf_u32(&b, 0);
        cp_buf_u64(&b, atomic_load(&A.peak));
        cp_buf_u64(&b, A.gil_live + atomic_load(&A.raw_live));
        cp_buf_u64(&b, atomic_load(&A.other_allocs));
        cp_buf_u64(&b, atomic_load(&A.other_alloc_bytes));
        cp_buf_u64(&b, atomic_load(&A.other_frees));
        cp_buf_u64(&b, atomic_load(&A.other_free_bytes));
        cp_buf_u64(&b, atomic_load(&A.frees_untracked));
        rc = put(&b, err, errlen);
        cp_buf_free(&b);
    }
    if (!cp_g.cfg.quiet && (A.gil_map.refused || A.raw_map.refused))
        cp_log("alloc: %llu blocks were counted without their size being remembered (size map "
               "full): their frees count as untracked",
               (unsigned long long)(A.gil_map.refused + A.raw_map.refused));
    if (release) {
        cp_ptrmap_clear(&A.gil_map);
        cp_ptrmap_clear(&A.raw_map);
        cp_shadow_clear(&A.gil_shadow);
        cp_shadow_clear(&A.raw_shadow);
        cp_flat_clear(&A.flat);
        A.gil_map.max_entries = 0;
    }
    return rc;
}

int cp_alloc_dump(char *err, size_t errlen)
{
    return dump_all(true, err, errlen);
}

int cp_alloc_dump_nogil(char *err, size_t errlen)
{
    return dump_all(false, err, errlen);
}
