/*
 * The least an exact allocation counter can do per call: a lower bound for
 * cpyprof's counting mode, not a profiler.
 *
 * Wraps MEM and OBJ (RAW is left alone: it is not on alloc_heavy's path)
 * and, per call, does only what exact per-function counts with a peak
 * need, each the cheapest way this benchmark could think of:
 *  - the running function: runtime -> thread state -> cframe -> frame ->
 *    code object, compared with the one seen last (a one-entry cache per
 *    thread, initial-exec TLS as cpyprof's); a miss takes an out-of-line
 *    lookup in a fixed open-addressing table;
 *  - the size of every block, for exact freed bytes and the live total: a
 *    u16 per 16 bytes of the whole 47-bit address space (16 TiB reserved
 *    with MAP_NORESERVE), found with a shift and an add: no directory;
 *  - allocations, bytes, frees and freed bytes of the function; the live
 *    total, compared with the peak (a new peak out of line).
 * And nothing else: no incomplete-frame test, no busy flag (pymalloc's
 * calls into RAW are not counted anyway), no epochs, no thread lookup, no
 * fallback when the reservation is refused, no stop, no report. Code
 * objects are never freed while it runs (the benchmark's are module
 * constants), so the cache key cannot be reused. It shows how much of a
 * counter's cost the design's essentials alone take on a given Python
 * (bench_alloc_ab.py --least, alloc_callgrind.py --least).
 *
 * Built on the fly against the running Python's headers; not part of the
 * cpyprof product.
 *
 *   import _cpyprof_bench_leastcount as m
 *   m.install()     # MEM and OBJ; GIL held; once
 *   m.install(False)  # the same without the size record: counts only
 *   m.uninstall()   # puts back what install found; counters, sizes and peak start
 *                   # again at the next install
 *   m.totals()      # (allocations, frees, live, peak, no slot): a sanity check
 */
#define PY_SSIZE_T_CLEAN
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_pystate.h>

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define LIKELY(x) __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef struct {
    uint64_t allocs, alloc_bytes, frees, free_bytes;
} counts;

#define TABLE_SIZE 4096 /* code objects; the benchmark has a handful */
static struct {
    PyCodeObject *code;
    counts c;
} table[TABLE_SIZE];
static counts no_frame; /* calls with no Python frame running */

static __thread struct {
    PyCodeObject *code;
    counts *c;
} last __attribute__((tls_model("initial-exec")));

static uint16_t *sizes; /* size + 1 per 16-byte granule of the address space */
/* Bits of p that must be 0 for p to have a slot: the granule and all above
 * the address bits the array covers. 47 (16 TiB reserved) outside
 * valgrind, which refuses that: then the most it grants (its client
 * addresses stay low). Blocks with no slot are counted in no_slot. */
static uintptr_t no_slot_mask = UINTPTR_MAX;
static uint64_t no_slot;
static uint64_t live, peak;
static counts *peak_at;

typedef struct {
    PyMemAllocatorEx below;
} least_layer;
static least_layer layers[2];

static __attribute__((noinline)) counts *lookup(PyCodeObject *co)
{
    uintptr_t h = ((uintptr_t)co >> 4) & (TABLE_SIZE - 1);
    for (unsigned i = 0; i < TABLE_SIZE; i++, h = (h + 1) & (TABLE_SIZE - 1))
        if (table[h].code == co || !table[h].code) {
            table[h].code = co;
            last.code = co;
            last.c = &table[h].c;
            return last.c;
        }
    return &no_frame; /* full: not reached by the benchmark */
}

static inline __attribute__((always_inline)) counts *running(void)
{
    PyThreadState *ts = _PyThreadState_GET();
    _PyInterpreterFrame *f = LIKELY(ts != NULL) ? ts->cframe->current_frame : NULL;
    if (UNLIKELY(!f))
        return &no_frame;
    if (LIKELY(f->f_code == last.code))
        return last.c;
    return lookup(f->f_code);
}

static __attribute__((noinline)) void new_peak(counts *c)
{
    peak = live;
    peak_at = c;
}

static inline __attribute__((always_inline)) uint16_t *slot(void *p)
{
    uintptr_t a = (uintptr_t)p;
    return (a & no_slot_mask) ? NULL : (uint16_t *)((char *)sizes + (a >> 3));
}

/* sized: the block's size is recorded (exact freed bytes, live total and
 * peak), else only counts and allocated bytes (install(sized=False): how
 * much of the cost the size record is). */
static inline __attribute__((always_inline)) void count_new(counts *c, void *p, size_t n,
                                                            bool sized)
{
    uint16_t *e;
    c->allocs++;
    c->alloc_bytes += n;
    if (!sized)
        return;
    if (LIKELY(n < 65535 && (e = slot(p)) != NULL)) {
        *e = (uint16_t)(n + 1);
        if ((live += n) > peak)
            new_peak(c);
    } else {
        no_slot++;
    }
}

static inline __attribute__((always_inline)) void count_free(counts *c, void *p, bool sized)
{
    if (!sized) {
        c->frees++;
        return;
    }
    uint16_t *e = slot(p);
    if (LIKELY(e != NULL && *e)) {
        uint64_t n = (uint64_t)*e - 1;
        *e = 0;
        c->frees++;
        c->free_bytes += n;
        live -= n;
    }
}

#define LEAST_WRAPPERS(sfx, sized)                                                                 \
    static void *least_malloc##sfx(void *ctx, size_t n)                                            \
    {                                                                                              \
        least_layer *l = ctx;                                                                      \
        void *p = l->below.malloc(l->below.ctx, n);                                                \
        if (LIKELY(p != NULL))                                                                     \
            count_new(running(), p, n, sized);                                                     \
        return p;                                                                                  \
    }                                                                                              \
    static void *least_calloc##sfx(void *ctx, size_t nelem, size_t elsize)                         \
    {                                                                                              \
        least_layer *l = ctx;                                                                      \
        void *p = l->below.calloc(l->below.ctx, nelem, elsize);                                    \
        if (LIKELY(p != NULL))                                                                     \
            count_new(running(), p, nelem *elsize, sized);                                         \
        return p;                                                                                  \
    }                                                                                              \
    static void *least_realloc##sfx(void *ctx, void *ptr, size_t n)                                \
    {                                                                                              \
        least_layer *l = ctx;                                                                      \
        void *p = l->below.realloc(l->below.ctx, ptr, n);                                          \
        if (LIKELY(p != NULL)) {                                                                   \
            counts *c = running();                                                                 \
            if (ptr)                                                                               \
                count_free(c, ptr, sized);                                                         \
            count_new(c, p, n, sized);                                                             \
        }                                                                                          \
        return p;                                                                                  \
    }                                                                                              \
    static void least_free##sfx(void *ctx, void *ptr)                                              \
    {                                                                                              \
        least_layer *l = ctx;                                                                      \
        count_free(running(), ptr, sized);                                                         \
        l->below.free(l->below.ctx, ptr);                                                          \
    }
LEAST_WRAPPERS(_sized, true)
LEAST_WRAPPERS(_counts, false)

static const PyMemAllocatorDomain domains[2] = {PYMEM_DOMAIN_MEM, PYMEM_DOMAIN_OBJ};
static size_t sizes_bytes;

static PyObject *install(PyObject *self, PyObject *args)
{
    int sized = 1;
    (void)self;
    if (!PyArg_ParseTuple(args, "|p:install", &sized))
        return NULL;
    if (sizes || layers[0].below.malloc) {
        PyErr_SetString(PyExc_RuntimeError, "already installed");
        return NULL;
    }
    void *m = MAP_FAILED;
    int bits;
    if (!sized)
        goto wrap;
    for (bits = 47; bits >= 32 && m == MAP_FAILED; bits--)
        m = mmap(NULL, (size_t)1 << (bits - 3), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return PyErr_SetFromErrno(PyExc_OSError);
    sizes = m;
    sizes_bytes = (size_t)1 << (bits + 1 - 3);
    no_slot_mask = ~(((uintptr_t)1 << (bits + 1)) - 1) | 15u;
wrap:
    for (int i = 0; i < 2; i++) {
        PyMem_GetAllocator(domains[i], &layers[i].below);
        PyMemAllocatorEx sized_ = {&layers[i], least_malloc_sized, least_calloc_sized,
                                   least_realloc_sized, least_free_sized};
        PyMemAllocatorEx counts_ = {&layers[i], least_malloc_counts, least_calloc_counts,
                                    least_realloc_counts, least_free_counts};
        PyMem_SetAllocator(domains[i], sized ? &sized_ : &counts_);
    }
    Py_RETURN_NONE;
}

/* Back to what install found. The size array goes (a block allocated now
 * and freed under the next install must not find a stale size), and with
 * it the counters, the live total and the peak. */
static PyObject *uninstall(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (!layers[0].below.malloc) {
        PyErr_SetString(PyExc_RuntimeError, "not installed");
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        PyMem_SetAllocator(domains[i], &layers[i].below);
        layers[i].below.malloc = NULL;
    }
    if (sizes)
        munmap(sizes, sizes_bytes);
    sizes = NULL;
    no_slot_mask = UINTPTR_MAX;
    memset(table, 0, sizeof table);
    memset(&no_frame, 0, sizeof no_frame);
    last.code = NULL; /* this thread's; the benchmark has no other */
    live = peak = no_slot = 0;
    Py_RETURN_NONE;
}

static PyObject *totals(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    uint64_t a = no_frame.allocs, f = no_frame.frees;
    for (unsigned i = 0; i < TABLE_SIZE; i++) {
        a += table[i].c.allocs;
        f += table[i].c.frees;
    }
    return Py_BuildValue("KKKKK", (unsigned long long)a, (unsigned long long)f,
                         (unsigned long long)live, (unsigned long long)peak,
                         (unsigned long long)no_slot);
}

static PyMethodDef methods[] = {
    {"install", install, METH_VARARGS,
     "install(sized=True): wrap MEM and OBJ with least-work exact counters; sized=False\n"
     "records no block sizes (no freed bytes, live total or peak)."},
    {"uninstall", uninstall, METH_NOARGS, "Put back the allocators install found; reset."},
    {"totals", totals, METH_NOARGS,
     "(allocations, frees, live bytes, peak bytes, blocks with no size slot)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cpyprof_bench_leastcount", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cpyprof_bench_leastcount(void)
{
    return PyModule_Create(&module);
}
