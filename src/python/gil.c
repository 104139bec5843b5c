/*
 * gil.c — GIL hold and wait time per thread, with the stacks that hold and
 * wait.
 *
 * gil=exact: the calls that the object holding _PyRuntime (Debian's static
 * python3.11 executable, or libpython3.11.so) makes to pthread_mutex_lock
 * and pthread_mutex_unlock go through its GOT; we rewrite those two slots
 * (native/got.c, that object only) to wrappers that feed gil_sm.h when the
 * mutex is the GIL's, then call the real function. The same works for both
 * activation modes, and stop puts the original slots back.
 *
 * gil=sample: the writer thread reads the GIL's `locked` and
 * `last_holder` gil_rate times a second (100 by default; at jittered
 * deadlines, see cp_gil_writer_tick) and counts, per holder thread state, how often it
 * held the GIL: hold shares only, no wait times, no stacks; cheap enough to
 * leave on (no thread and no wake-up of its own).
 *
 * Hazards, and why each is safe:
 *  - The wrappers run on every pthread_mutex_lock/unlock of the interpreter,
 *    including inside signal handlers and at any point of thread creation
 *    and teardown: they take no lock, never allocate, keep errno (only a
 *    thread's first call of a run makes a syscall, and restores it), and use
 *    only initial-exec TLS (no __tls_get_addr, which may allocate). For a
 *    mutex that is not the GIL's the cost is one compare.
 *  - Per-thread accounting lives in slots of a table mapped once and never
 *    freed (a thread inside a wrapper while stop runs may still write into
 *    it); a thread claims a slot with one atomic add. A thread past the
 *    last slot is not accounted (counted in the dump).
 *  - Stacks: at acquisition and release the thread holds the GIL (locked
 *    == 1 and it is last_holder; or it is about to drop it), and it reads
 *    only its own frame chain, which only it mutates. The function id comes
 *    from the code object's co_extra slot if registered in this run (by the
 *    profile hook or the stack sampler), else "[unregistered]": never a call into
 *    Python (we are inside take_gil/drop_gil).
 *  - Stack tree nodes come from a pool mapped once (atomic bump
 *    allocation, never freed); each thread's trees are written by that
 *    thread only, and a child is published with a release store after its
 *    fields, so the dump can read while a late wrapper still runs.
 *  - The wrappers call pthread_mutex_lock/unlock through libcpyprof's own
 *    GOT (never rewritten), so an object interposing those (a sanitizer)
 *    still sees the calls; the original slot value may still be a lazy PLT
 *    stub, which we must not call.
 *  - A forked child inherits the rewritten slots: a fork handler turns
 *    accounting off (a flag store), the wrappers then only compare.
 */
#include "python/gil.h"
#include "python/gil_py311.h"
#include "python/gil_sm.h"
#include "python/profiler.h"

#include "cpyprof/format.h"
#include "native/got.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TLS_IE __attribute__((tls_model("initial-exec")))

#define GIL_MAX_SLOTS 4096       /* threads accounted per run */
#define GIL_MAX_NODES (1u << 20) /* stack tree nodes per run (40 MB of address space) */
#define GIL_MAX_DEPTH 128        /* innermost frames kept per stack */
#define GIL_NONE 0xFFFFFFFFu
#define GIL_SAMPLE_SLOTS 1024 /* holders gil=sample tells apart (power of 2) */

/* A stack tree node. first_child is published with a release store after
 * the child's fields; the owner thread is the only writer of a tree. */
typedef struct gil_node {
    uint32_t parent;
    uint32_t func;
    _Atomic uint32_t first_child;
    uint32_t next_sibling;
    uint32_t hint; /* the child found last: stacks repeat */
    uint32_t pad;
    uint64_t count;
    uint64_t ns;
} gil_node;

typedef struct gil_slot {
    /* Aligned: a slot is written by its thread at every transition, and a
     * neighbour sharing a line would pay a miss for it. */
    _Alignas(64) cp_gil_acct acct;
    uint64_t native_tid;
    uint32_t root[2]; /* tree roots: 0 wait, 1 hold; GIL_NONE until needed */
    _Atomic uint32_t used;
} gil_slot;

/* gil=sample's count for one holder (thread state address). */
typedef struct gil_sample_entry {
    _Atomic uintptr_t tstate; /* 0: free */
    _Atomic uint64_t held;
    _Atomic uint64_t native_tid; /* filled by a pending call with the GIL */
} gil_sample_entry;

static struct {
    /* What the wrappers read on every call, in one cache line that nothing
     * writes while accounting runs (copies of cp_g's clock kind and co_extra
     * index included: cp_g's lines are written by the writer thread and by
     * name registration, and sharing them costs a miss per transition). */
    _Alignas(64) _Atomic int live; /* wrappers account */
    uint32_t generation;
    bool use_tsc;           /* cp_g.clock.use_tsc */
    uint32_t extra_gen;     /* cp_g.generation: co_extra ids of this run */
    Py_ssize_t extra_index; /* cp_g.co_extra_index */
    pthread_mutex_t *mutex;
    pthread_mutex_t *switch_mutex;
    cp311_gil *gil;
    bool timeline;        /* mode timeline: transitions also go to the thread's timeline */
    uint64_t tick0, mult; /* time base of now_ns(): ticks at start, ns/tick in 32.32 */
    uint64_t since;       /* now_ns() when accounting began */
    gil_slot *slots;      /* GIL_MAX_SLOTS, mapped once */
    gil_node *nodes;      /* GIL_MAX_NODES, mapped once */
    /* hot, but written when a node or slot is claimed: a line of their own */
    _Alignas(64) _Atomic uint32_t nnodes;
    _Atomic uint32_t nslots;
    /* cold */
    _Alignas(64) int method; /* enum cpyprof_gil_method, 0 when off */
    uint64_t until;          /* ns when it ended */
    unsigned long switch0, switch1;
    cp_got_patch patches[4];
    int npatches;
    _Atomic uint64_t stacks_dropped;
    _Atomic uint64_t threads_dropped;
    uint32_t unknown_fid, nopy_fid;
    bool atfork_registered;
    /* gil=sample: read on the writer thread (cp_gil_writer_tick) */
    _Atomic int reading;
    int64_t next_read; /* writer thread only: CLOCK_MONOTONIC ns of the next read */
    int64_t period_ns; /* 1e9 / gil_rate_hz: the mean time between two reads */
    uint32_t rng;      /* writer thread only: jitter */
    _Atomic uint64_t samples, samples_locked;
    _Atomic int map_pending;
    gil_sample_entry entries[GIL_SAMPLE_SLOTS];
} G;

static __thread gil_slot *tls_slot TLS_IE;
static __thread uint32_t tls_gen TLS_IE;

/* ns since accounting began (G.tick0): rdtsc and a 64x64->128 fixed-point
 * multiply (cp_clock_to_ns uses long double and roundl, several times
 * slower, and this runs 3 times per GIL switch). G.mult is ns per tick in
 * 32.32 fixed point. Ticks before tick0 (a thread that read the TSC just
 * before start) count as 0. */
static inline uint64_t now_ticks(void)
{
    return G.use_tsc ? cp_rdtsc() : (uint64_t)cp_monotonic_ns();
}

static inline uint64_t ticks_ns(uint64_t t)
{
    if (t <= G.tick0)
        return 0;
    return (uint64_t)(((unsigned __int128)(t - G.tick0) * G.mult) >> 32);
}

static inline uint64_t now_ns(void)
{
    return ticks_ns(now_ticks());
}

/* ---- per-thread slots ------------------------------------------------------- */

/* The first call of a thread in a run: claims a slot. Out of line, so that
 * the fast path below inlines into every wrapper. */
static __attribute__((noinline, cold)) gil_slot *claim_slot(void)
{
    int saved = errno; /* syscall() below; nothing else in the wrappers sets errno */
    uint32_t i = atomic_fetch_add(&G.nslots, 1);
    gil_slot *s = NULL;
    if (i < GIL_MAX_SLOTS) {
        s = &G.slots[i];
        /* Zeroed at start (slots past the previous run's count are
         * untouched zero pages). gettid is a raw syscall: async-signal-safe,
         * once per thread per run. */
        s->native_tid = (uint64_t)syscall(SYS_gettid);
        s->root[0] = s->root[1] = GIL_NONE;
        atomic_store_explicit(&s->used, 1, memory_order_release);
    } else {
        atomic_fetch_add(&G.threads_dropped, 1);
    }
    tls_slot = s;
    tls_gen = G.generation;
    errno = saved;
    return s;
}

static inline gil_slot *my_slot(void)
{
    if (__builtin_expect(tls_gen == G.generation, 1))
        return tls_slot; /* NULL if the table was full */
    return claim_slot();
}

/* ---- stack trees ------------------------------------------------------------ */

static uint32_t node_new(uint32_t parent, uint32_t func)
{
    uint32_t n = atomic_fetch_add_explicit(&G.nnodes, 1, memory_order_relaxed);
    if (n >= GIL_MAX_NODES)
        return GIL_NONE;
    gil_node *nd = &G.nodes[n];
    nd->parent = parent;
    nd->func = func;
    atomic_store_explicit(&nd->first_child, GIL_NONE, memory_order_relaxed);
    nd->next_sibling = GIL_NONE;
    nd->hint = GIL_NONE;
    nd->count = 0;
    nd->ns = 0;
    return n;
}

static uint32_t child_of(uint32_t parent, uint32_t func)
{
    gil_node *p = &G.nodes[parent];
    if (p->hint != GIL_NONE && G.nodes[p->hint].func == func)
        return p->hint;
    uint32_t first = atomic_load_explicit(&p->first_child, memory_order_relaxed);
    for (uint32_t c = first; c != GIL_NONE; c = G.nodes[c].next_sibling)
        if (G.nodes[c].func == func) {
            p->hint = c;
            return c;
        }
    uint32_t c = node_new(parent, func);
    if (c == GIL_NONE)
        return GIL_NONE;
    G.nodes[c].next_sibling = first;
    atomic_store_explicit(&p->first_child, c, memory_order_release);
    p->hint = c;
    return c;
}

/* The function id of a frame's code object, registered in this run, or
 * "[unregistered]". Reads co_extra only (no Python call). */
static inline uint32_t frame_fid(cp_iframe *f)
{
    uintptr_t x = (uintptr_t)cp311_code_extra(cp311_iframe_code(f), G.extra_index);
    return (uint32_t)(x >> 32) == G.extra_gen ? (uint32_t)x : G.unknown_fid;
}

/* Charges `dur` ns to this thread's current stack in tree `kind`. */
static void add_stack(gil_slot *s, int kind, PyThreadState *ts, uint64_t dur)
{
    uint32_t fids[GIL_MAX_DEPTH];
    uint32_t n = 0;
    for (cp_iframe *f = ts ? cp311_tstate_frame(ts) : NULL; f && n < GIL_MAX_DEPTH;
         f = cp311_iframe_previous(f))
        if (cp311_iframe_complete(f))
            fids[n++] = frame_fid(f);
    if (s->root[kind] == GIL_NONE && (s->root[kind] = node_new(GIL_NONE, GIL_NONE)) == GIL_NONE) {
        atomic_fetch_add_explicit(&G.stacks_dropped, 1, memory_order_relaxed);
        return;
    }
    uint32_t at = s->root[kind];
    while (n > 0 && at != GIL_NONE)
        at = child_of(at, fids[--n]); /* outermost first */
    if (at == GIL_NONE) {
        atomic_fetch_add_explicit(&G.stacks_dropped, 1, memory_order_relaxed);
        return;
    }
    G.nodes[at].count++;
    G.nodes[at].ns += dur;
}

/* ---- the wrappers ----------------------------------------------------------- */

/* errno: only my_slot's slow path can change it, and it restores it. */
static void on_lock(void)
{
    gil_slot *s = my_slot();
    if (s && !s->acct.holding && !s->acct.waiting) /* else no change: skip the clock */
        cp_gil_on_lock(&s->acct, now_ns());
}

static void on_switch_lock(void)
{
    gil_slot *s = my_slot();
    if (s && !s->acct.holding && !s->acct.waiting)
        cp_gil_on_switch_lock(&s->acct, now_ns());
}

static void on_unlock(void)
{
    gil_slot *s = my_slot();
    if (!s)
        return;
    /* Read while the mutex is held: take_gil/drop_gil change these only
     * under it, so they are stable here. */
    int locked = cp311_gil_locked(G.gil);
    if (s->acct.holding ? locked != 0 : locked != 1)
        return; /* nothing can change: skip the clock */
    PyThreadState *me = cp311_gil_own_tstate();
    /* Without a TSS entry (a state made by PyThreadState_New and swapped in
     * by hand) trust our own wait flag. */
    int holder_is_me = me ? cp311_gil_last_holder(G.gil) == (uintptr_t)me : (int)s->acct.waiting;
    int forced = locked == 0 && cp311_gil_drop_requested(me);
    uint64_t dur = 0, t = now_ticks();
    int ev = cp_gil_on_unlock(&s->acct, locked, holder_is_me, forced, ticks_ns(t), G.since, &dur);
    if (ev == CP_GIL_EV_ACQUIRED)
        add_stack(s, 0, me, dur); /* the stack that waited */
    else if (ev == CP_GIL_EV_RELEASED)
        add_stack(s, 1, me, dur); /* the stack that releases, charged with the hold */
    /* Same clock reading as the totals, so the timeline's hold slices add
     * up to them (timeline_hook.c: lock-free, no allocation, no Python). */
    if (G.timeline && ev != CP_GIL_EV_NONE && ev != CP_GIL_EV_WAIT)
        cp_tl_gil_event(me, ev == CP_GIL_EV_ACQUIRED, t);
}

static int wrap_mutex_lock(pthread_mutex_t *m)
{
    if (m == G.mutex) {
        if (atomic_load_explicit(&G.live, memory_order_relaxed))
            on_lock(); /* before: blocking on the mutex is part of the wait */
    } else if (m == G.switch_mutex) {
        if (atomic_load_explicit(&G.live, memory_order_relaxed))
            on_switch_lock(); /* a forced switch: see gil_sm.h */
    }
    return pthread_mutex_lock(m);
}

static int wrap_mutex_unlock(pthread_mutex_t *m)
{
    if (m == G.mutex && atomic_load_explicit(&G.live, memory_order_relaxed))
        on_unlock(); /* before: the GIL's fields are stable under the mutex */
    return pthread_mutex_unlock(m);
}

static void atfork_child(void)
{
    atomic_store(&G.live, 0);    /* async-signal-safe: a flag */
    atomic_store(&G.reading, 0); /* no writer thread in the child */
}

/* ---- the sampler (gil=sample) ------------------------------------------------ */

/* With the GIL, on the main thread (Py_AddPendingCall): names the holders
 * gil=sample has seen, from the interpreter's list of thread states. A
 * state freed before this ran stays unnamed ("an exited thread"). */
static int map_holders(void *arg)
{
    (void)arg;
    atomic_store(&G.map_pending, 0);
    PyInterpreterState *interp = PyThreadState_GetInterpreter(PyThreadState_Get());
    for (PyThreadState *t = interp ? PyInterpreterState_ThreadHead(interp) : NULL; t;
         t = PyThreadState_Next(t)) {
        for (uint32_t i = 0; i < GIL_SAMPLE_SLOTS; i++) {
            gil_sample_entry *e = &G.entries[i];
            if (atomic_load(&e->tstate) == (uintptr_t)t && atomic_load(&e->native_tid) == 0)
                atomic_store(&e->native_tid, cp311_tstate_native_id(t));
        }
    }
    return 0;
}

/* One read of the GIL's state: counts a sample, and one for the holder. */
static void read_gil_once(void)
{
    atomic_fetch_add_explicit(&G.samples, 1, memory_order_relaxed);
    if (cp311_gil_locked(G.gil) != 1)
        return;
    atomic_fetch_add_explicit(&G.samples_locked, 1, memory_order_relaxed);
    /* The holder's address is a key only: never dereferenced here. */
    uintptr_t h = cp311_gil_last_holder(G.gil);
    if (!h)
        return;
    uint32_t i = (uint32_t)((h >> 4) * 2654435761u) & (GIL_SAMPLE_SLOTS - 1);
    for (uint32_t probe = 0; probe < GIL_SAMPLE_SLOTS;
         probe++, i = (i + 1) & (GIL_SAMPLE_SLOTS - 1)) {
        gil_sample_entry *e = &G.entries[i];
        uintptr_t k = atomic_load(&e->tstate);
        if (k == 0) {
            atomic_store(&e->tstate, h); /* the writer thread is the only writer */
            /* Named now if a profiled thread has this state (the newest
             * with that address: a state freed and reused keeps its
             * address, and the holder is alive now); else by a pending
             * call, which runs only when the main thread runs bytecode
             * (not while it waits in join()). */
            uint64_t native = 0;
            for (cp_thread *t = atomic_load_explicit(&cp_g.threads, memory_order_acquire); t;
                 t = t->next)
                if (t->tstate_key == h) {
                    native = t->native_tid;
                    break;
                }
            if (native)
                atomic_store(&e->native_tid, native);
            else if (!atomic_exchange(&G.map_pending, 1) &&
                     Py_AddPendingCall(map_holders, NULL) != 0)
                atomic_store(&G.map_pending, 0);
            k = h;
        }
        if (k == h) {
            atomic_fetch_add_explicit(&e->held, 1, memory_order_relaxed);
            break;
        }
    }
}

/* gil=sample reads the GIL on the writer thread (drain.c), not on a thread
 * of its own, gil_rate_hz times a second (default 100). Measured
 * (bench/README.md, "GIL accounting"): the cost is the wake-ups, not the
 * reads. On the two-core development VM each wake-up of a sleeping thread
 * is ~10 us of CPU, and a separate process doing nothing but wake 1000
 * times a second slowed four CPU-bound Python threads by ~3% and two
 * threads switching the GIL in a loop by ~4% (100 a second: no cost
 * measurable). So 100 is the default, always-on rate, and 1000 is there
 * for a finer reading at that price. Each read is due at a deadline drawn
 * uniformly from [3/4, 5/4] of the period after the previous one (the
 * GIL's 5 ms switch interval must not alias with a fixed period), and a
 * read happens only when due: the writer's other wake-ups (rings filling,
 * which happen while a thread runs and likely holds the GIL) would bias
 * the shares. */
static int64_t next_period(void)
{
    uint32_t x = G.rng ? G.rng : 1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    G.rng = x;
    return G.period_ns * 3 / 4 + (int64_t)(x % (uint32_t)(G.period_ns / 2 + 1));
}

int64_t cp_gil_writer_tick(int64_t timeout_us)
{
    if (!atomic_load_explicit(&G.reading, memory_order_acquire))
        return timeout_us;
    int64_t now = cp_monotonic_ns();
    if (G.next_read == 0)
        G.next_read = now + next_period();
    if (now >= G.next_read) {
        read_gil_once();
        G.next_read += next_period();
        if (G.next_read <= now) /* fell behind (a long drain): from now on */
            G.next_read = now + next_period();
    }
    int64_t left = (G.next_read - now + 999) / 1000;
    return left < timeout_us ? left : timeout_us;
}

static int sampler_start(char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    memset(G.entries, 0, sizeof G.entries);
    atomic_store(&G.samples, 0);
    atomic_store(&G.samples_locked, 0);
    atomic_store(&G.map_pending, 0);
    G.next_read = 0;
    G.period_ns = 1000000000 / (int64_t)(cp_g.cfg.gil_rate_hz ? cp_g.cfg.gil_rate_hz : 100);
    G.rng = (uint32_t)getpid() * 2654435761u | 1u;
    /* Release: the writer thread sees the cleared table before the flag. */
    atomic_store_explicit(&G.reading, 1, memory_order_release);
    return 0;
}

/* ---- start / stop ------------------------------------------------------------ */

static int map_once(void **p, size_t bytes)
{
    if (*p)
        return 0;
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED)
        return -1;
    *p = m;
    return 0;
}

/* The layout check that matters here: we hold the GIL, so a GIL struct at
 * the offsets of our headers must say locked == 1, last_holder == us. */
static int check_gil(cp311_gil *g, char *err, size_t errlen)
{
    if (!g) {
        snprintf(err, errlen, "_PyRuntime not found");
        return -1;
    }
    PyThreadState *me = PyThreadState_Get();
    if (cp311_gil_locked(g) != 1 || cp311_gil_last_holder(g) != (uintptr_t)me) {
        snprintf(err, errlen,
                 "the GIL at _PyRuntime.ceval.gil does not look held by this thread "
                 "(locked=%d): this interpreter's layout differs from the headers cpyprof was "
                 "built against",
                 cp311_gil_locked(g));
        return -1;
    }
    return 0;
}

/* Accounting was asked for but cannot run: one line on stderr, and a META
 * entry `gil_disabled` so that `cpyprof gil FILE` can say why the file has
 * no GIL data. Start holds the GIL and the writer thread does not run yet:
 * the chunk write is ours alone. */
static void disabled(const char *why)
{
    cp_log("GIL accounting disabled: %s; profiling goes on without GIL data", why);
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_meta(&b, "gil_disabled", why);
    char err[256];
    if (!b.oom)
        (void)cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_META, b.data, b.len, err, sizeof err);
    cp_buf_free(&b);
}

/* Test knob (tests/integration/test_gil_unverifiable.py, reserved in
 * core/config.c): CPYPROF_TEST_GIL_SHIFT=n looks for the GIL n bytes away
 * from where our headers put it, as a build whose layout differs would, so
 * that the layout check and the path without GIL data run for real in a
 * supported interpreter. n is a multiple of 8 within +-64: still inside
 * _PyRuntime, which is all the check reads. */
static cp311_gil *shifted_for_test(cp311_gil *g)
{
    const char *v = getenv("CPYPROF_TEST_GIL_SHIFT");
    if (!g || !v || !*v)
        return g;
    long n = strtol(v, NULL, 10);
    if (n < -64 || n > 64 || n % 8 != 0)
        return g;
    return (cp311_gil *)((char *)g + n);
}

void cp_gil_start(void)
{
    G.method = 0;
    atomic_store(&cp_g.tl_gil, false); /* until the wrappers are in */
    if (cp_g.cfg.gil == CP_GIL_OFF)
        return;
    char err[512];
    cp311_gil *g = shifted_for_test(cp311_gil_get());
    if (check_gil(g, err, sizeof err) != 0) {
        disabled(err);
        return;
    }
    if (G.npatches) {
        /* A forked child of a run that was accounting: the slots it
         * inherited still point at our wrappers (atfork_child only turned
         * accounting off). Put them back so they can be taken again. */
        cp_got_restore_patches(G.patches, (size_t)G.npatches);
        G.npatches = 0;
    }
    G.gil = g;
    G.mutex = cp311_gil_mutex(g);
    G.switch_mutex = cp311_gil_switch_mutex(g);
    G.generation++;
    uint32_t n = atomic_load(&G.nslots);
    if (G.slots)
        memset(G.slots, 0, (size_t)(n < GIL_MAX_SLOTS ? n : GIL_MAX_SLOTS) * sizeof *G.slots);
    atomic_store(&G.nslots, 0);
    atomic_store(&G.nnodes, 0);
    atomic_store(&G.stacks_dropped, 0);
    atomic_store(&G.threads_dropped, 0);
    uint32_t unk = cp_names_string("[unregistered]");
    uint32_t nopy = cp_names_string("[no Python frame]");
    G.unknown_fid = cp_symtab_func(&cp_g.syms, unk, CPYPROF_NONE, 0, CPYPROF_FUNC_SPECIAL);
    G.nopy_fid = cp_symtab_func(&cp_g.syms, nopy, CPYPROF_NONE, 0, CPYPROF_FUNC_SPECIAL);
    G.use_tsc = cp_g.clock.use_tsc;
    G.extra_gen = cp_g.generation;
    G.extra_index = cp_g.co_extra_index;
    G.tick0 = cp_clock_ticks(&cp_g.clock);
    G.mult = (uint64_t)(cp_g.clock.ns_per_tick * 4294967296.0 + 0.5);
    uint64_t since_ticks = now_ticks();
    G.since = ticks_ns(since_ticks);
    G.timeline = cp_g.cfg.mode == CP_MODE_TIMELINE;
    G.switch0 = cp311_gil_switches(g);

    if (cp_g.cfg.gil == CP_GIL_SAMPLE) {
        if (sampler_start(err, sizeof err) != 0) {
            disabled(err);
            return;
        }
        G.method = CPYPROF_GIL_SAMPLE;
        return;
    }
    if (map_once((void **)&G.slots, GIL_MAX_SLOTS * sizeof(gil_slot)) != 0 ||
        map_once((void **)&G.nodes, (size_t)GIL_MAX_NODES * sizeof(gil_node)) != 0) {
        disabled("out of memory");
        return;
    }
    if (!G.atfork_registered && pthread_atfork(NULL, NULL, atfork_child) == 0)
        G.atfork_registered = true;
    /* This thread holds the GIL now. */
    gil_slot *me = my_slot();
    if (me)
        cp_gil_start_holding(&me->acct, G.since);
    atomic_store(&G.live, 1);
    static const cp_got_hook hooks[] = {
        {"pthread_mutex_lock", (void *)wrap_mutex_lock},
        {"pthread_mutex_unlock", (void *)wrap_mutex_unlock},
    };
    int r = cp_got_install_in(hooks, 2, (const void *)g, G.patches,
                              sizeof G.patches / sizeof *G.patches);
    if (r < 2) {
        if (r > 0)
            cp_got_restore_patches(G.patches, (size_t)r);
        atomic_store(&G.live, 0);
        snprintf(err, sizeof err,
                 "the interpreter's calls to pthread_mutex_lock/unlock cannot be redirected (%s)",
                 r < 0 ? "no loaded object holds _PyRuntime" : "no GOT slots for them");
        disabled(err);
        return;
    }
    G.npatches = r;
    G.method = CPYPROF_GIL_EXACT;
    if (G.timeline) { /* this thread's hold, then everyone's transitions */
        if (me)
            cp_tl_gil_event(PyThreadState_Get(), true, since_ticks);
        atomic_store(&cp_g.tl_gil, true);
    }
}

void cp_gil_stop(void)
{
    if (!G.method)
        return;
    if (G.method == CPYPROF_GIL_EXACT) {
        /* Slots first: after this no new wrapper call starts; one already
         * inside a wrapper finishes against memory that is never freed. */
        cp_got_restore_patches(G.patches, (size_t)G.npatches);
        G.npatches = 0;
        atomic_store(&G.live, 0);
    }
    if (atomic_exchange(&G.reading, 0)) {
        /* A read already under way on the writer thread may still add one
         * count: the table is static and its counters atomic. */
        map_holders(NULL); /* name the holders still alive */
    }
    G.until = now_ns();
    G.switch1 = cp311_gil_switches(G.gil);
}

/* ---- dump -------------------------------------------------------------------- */

static uint32_t thread_id_of(uint64_t native_tid)
{
    if (native_tid == 0)
        return CPYPROF_NONE;
    for (cp_thread *t = atomic_load(&cp_g.threads); t; t = t->next)
        if (t->native_tid == native_tid)
            return t->id;
    return CPYPROF_NONE;
}

typedef struct out_node {
    uint32_t parent, func, kind;
    uint64_t count, ns;
} out_node;

/* Pre-order walk of one tree (parents before children), iterative, over
 * the nodes below `nn` (the snapshot `stack` and `outpos` are sized for):
 * without the GIL a thread may still be adding nodes. A node is published
 * (first_child, release) after its fields, so following a sibling link
 * through a newer node is safe; the newer node itself is left out. */
static void walk_tree(cp_buf *b, uint32_t root, uint32_t kind, uint32_t nn, uint32_t *count,
                      uint32_t *stack, uint32_t *outpos)
{
    if (root == GIL_NONE || root >= nn)
        return;
    const gil_node *r = &G.nodes[root];
    /* The root itself: transitions with no Python frame at all. */
    if (r->count) {
        cp_buf_u32(b, CPYPROF_NONE);
        cp_buf_u32(b, G.nopy_fid);
        cp_buf_u32(b, kind);
        cp_buf_u32(b, 0);
        cp_buf_u64(b, r->count);
        cp_buf_u64(b, r->ns);
        (*count)++;
    }
    uint32_t sp = 0;
    for (uint32_t c = atomic_load_explicit(&((gil_node *)r)->first_child, memory_order_acquire);
         c != GIL_NONE && c < GIL_MAX_NODES; c = G.nodes[c].next_sibling)
        if (c < nn)
            stack[sp++] = c;
    while (sp > 0) {
        uint32_t i = stack[--sp];
        const gil_node *nd = &G.nodes[i];
        uint32_t parent = nd->parent == root ? CPYPROF_NONE : outpos[nd->parent];
        outpos[i] = *count;
        cp_buf_u32(b, parent);
        cp_buf_u32(b, nd->func);
        cp_buf_u32(b, kind);
        cp_buf_u32(b, 0);
        cp_buf_u64(b, nd->count);
        cp_buf_u64(b, nd->ns);
        (*count)++;
        for (uint32_t c =
                 atomic_load_explicit(&((gil_node *)nd)->first_child, memory_order_acquire);
             c != GIL_NONE && c < GIL_MAX_NODES && sp < nn; c = G.nodes[c].next_sibling)
            if (c < nn)
                stack[sp++] = c;
    }
}

static int put(cp_buf *b, char *err, size_t errlen)
{
    if (b->oom) {
        snprintf(err, errlen, "out of memory while writing the GIL chunks");
        return -1;
    }
    return cp_writer_chunk(&cp_g.writer, CPYPROF_CHUNK_GIL, b->data, b->len, err, errlen);
}

static void thread_head(cp_buf *b, uint32_t tid, uint64_t native, uint64_t hold, uint64_t wait,
                        uint64_t acq, uint64_t maxh, uint64_t maxw, uint64_t held)
{
    cp_buf_u32(b, CPYPROF_GIL_THREAD);
    cp_buf_u32(b, tid);
    cp_buf_u32(b, CP_GIL_NBUCKETS);
    cp_buf_u64(b, native);
    cp_buf_u64(b, hold);
    cp_buf_u64(b, wait);
    cp_buf_u64(b, acq);
    cp_buf_u64(b, maxh);
    cp_buf_u64(b, maxw);
    cp_buf_u64(b, held);
}

/* The SIGTERM dump (no GIL, writer thread): end accounting where it is.
 * Wrappers past their `live` check may still finish one transition; their
 * totals are plain stores read one transition old at worst, and a node they
 * add lies past the snapshot of nnodes that walk_tree keeps to. The writer
 * thread (this one) does not read the GIL meanwhile; its counters are atomics. Nothing is restored:
 * the process dies by SIGTERM right after the dump. */
static void freeze_without_gil(void)
{
    atomic_store(&G.live, 0);
    G.until = now_ns();
    G.switch1 = cp311_gil_switches(G.gil);
}

int cp_gil_dump(bool have_gil, char *err, size_t errlen)
{
    if (!G.method || cp_g.writer.fd < 0)
        return 0;
    if (!have_gil)
        freeze_without_gil();
    int method = G.method;
    G.method = 0;
    uint64_t dur = G.until > G.since ? G.until - G.since : 0;
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, CPYPROF_GIL_RUN);
    cp_buf_u32(&b, (uint32_t)method);
    cp_buf_u32(&b, 0);
    cp_buf_i64(&b, (int64_t)dur);
    cp_buf_u64(&b, (uint64_t)(G.switch1 - G.switch0));
    cp_buf_u64(&b, atomic_load(&G.samples));
    cp_buf_u64(&b, atomic_load(&G.samples_locked));
    cp_buf_u64(&b, atomic_load(&G.stacks_dropped));
    int rc = put(&b, err, errlen);

    if (method == CPYPROF_GIL_SAMPLE) {
        uint64_t total = atomic_load(&G.samples);
        for (uint32_t i = 0; i < GIL_SAMPLE_SLOTS && rc == 0; i++) {
            gil_sample_entry *e = &G.entries[i];
            if (!atomic_load(&e->tstate))
                continue;
            uint64_t held = atomic_load(&e->held), native = atomic_load(&e->native_tid);
            uint64_t hold = total ? (uint64_t)((double)dur * (double)held / (double)total) : 0;
            cp_buf_reset(&b);
            thread_head(&b, thread_id_of(native), native, hold, 0, 0, 0, 0, held);
            cp_buf_u32(&b, 0); /* nnodes */
            cp_buf_u32(&b, 0);
            for (uint32_t k = 0; k < 2 * CP_GIL_NBUCKETS; k++)
                cp_buf_u64(&b, 0);
            rc = put(&b, err, errlen);
        }
        cp_buf_free(&b);
        return rc;
    }

    uint32_t nn = atomic_load(&G.nnodes);
    if (nn > GIL_MAX_NODES)
        nn = GIL_MAX_NODES;
    uint32_t *stack = malloc((size_t)(nn ? nn : 1) * sizeof *stack);
    uint32_t *outpos = malloc((size_t)(nn ? nn : 1) * sizeof *outpos);
    cp_buf nodes;
    cp_buf_init(&nodes);
    uint32_t ns = atomic_load(&G.nslots);
    if (ns > GIL_MAX_SLOTS)
        ns = GIL_MAX_SLOTS;
    for (uint32_t i = 0; i < ns && rc == 0; i++) {
        gil_slot *s = &G.slots[i];
        if (!atomic_load_explicit(&s->used, memory_order_acquire))
            continue;
        uint64_t hold, wait, maxh, maxw;
        cp_gil_totals_at(&s->acct, G.until, &hold, &wait, &maxh, &maxw);
        if (hold == 0 && wait == 0 && s->acct.acquisitions == 0)
            continue; /* claimed a slot but never held or waited (e.g. stop came first) */
        uint32_t count = 0;
        cp_buf_reset(&nodes);
        if (stack && outpos) {
            walk_tree(&nodes, s->root[0], 0, nn, &count, stack, outpos);
            walk_tree(&nodes, s->root[1], 1, nn, &count, stack, outpos);
        }
        cp_buf_reset(&b);
        thread_head(&b, thread_id_of(s->native_tid), s->native_tid, hold, wait,
                    s->acct.acquisitions, maxh, maxw, 0);
        cp_buf_u32(&b, count);
        cp_buf_u32(&b, 0);
        for (uint32_t k = 0; k < CP_GIL_NBUCKETS; k++)
            cp_buf_u64(&b, s->acct.hold_hist[k]);
        for (uint32_t k = 0; k < CP_GIL_NBUCKETS; k++)
            cp_buf_u64(&b, s->acct.wait_hist[k]);
        cp_buf_bytes(&b, nodes.data, nodes.len);
        if (nodes.oom)
            b.oom = true;
        rc = put(&b, err, errlen);
    }
    free(stack);
    free(outpos);
    cp_buf_free(&nodes);
    cp_buf_free(&b);
    uint64_t td = atomic_load(&G.threads_dropped);
    if (td && !cp_g.cfg.quiet)
        cp_log("GIL accounting: %llu threads beyond %u were not accounted", (unsigned long long)td,
               GIL_MAX_SLOTS);
    return rc;
}
