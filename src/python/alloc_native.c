/*
 * alloc_native.c — alloc=native: malloc, calloc, realloc, free, mmap and
 * munmap of native code (C extensions, libraries they use, ctypes'
 * libraries), counted like raw blocks and charged to the calling thread's
 * Python stack (alloc.c).
 *
 * How: the GOT slots for those functions (and for dlopen) of every loaded
 * object are rewritten to our wrappers (native/got.c, a set of our own so
 * that the C-thread hooks' bookkeeping is untouched); objects loaded later
 * are processed when our dlopen wrapper sees a dlopen return (the
 * interpreter imports extension modules with dlopen, ctypes loads libraries
 * with it), and at stop every slot still pointing at a wrapper is put back.
 *
 * Hazards, and why each is safe:
 *  - The wrappers call the real functions through libcpyprof's own GOT,
 *    which is never rewritten (our own object is skipped), so they cannot
 *    recurse, and an original slot that still held a lazy-binding stub is
 *    never called.
 *  - Not patched: libcpyprof and its helpers libunwind and libelf (the
 *    sampler's signal handler may call into libunwind: a counting wrapper
 *    taking the raw lock there could deadlock against the interrupted
 *    thread), ld.so and the vDSO.
 *  - A block allocated by PyMem's raw allocator is malloc'd inside it: the
 *    PyMem wrappers set the thread-local busy flag around the allocator,
 *    and a native wrapper forwards without counting while it is set, so a
 *    block is counted once.
 *  - Native code may allocate on any thread, without the GIL, with no
 *    Python thread state: counting goes through the raw lock (alloc.c);
 *    threads the profiler does not know go to the "other" counters.
 *  - Frees of blocks from before the start, or allocated by functions we
 *    do not redirect (posix_memalign, strdup inside libc, ...), are counted
 *    as untracked; munmap counts only the unmapping of a whole mapping we
 *    saw made (partial unmaps change no count).
 *  - dlopen may run on several threads at once: re-scans take a mutex (a
 *    dlopen is never inside a signal handler).
 *  - fork: the child keeps the rewritten slots; counting is off there, the
 *    wrappers only forward.
 */
#include "python/alloc.h"
#include "python/profiler.h"

#include "native/got.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

static const char *const skip_objects[] = {"libcpyprof", "libunwind", "libelf", NULL};
static cp_got_set natset = {.skip = skip_objects};
static pthread_mutex_t rescan_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int installed;

static inline bool counting(void)
{
    return atomic_load_explicit(&cp_alloc_native_live, memory_order_relaxed) && !cp_alloc_busy;
}

static void *nat_malloc(size_t n)
{
    void *p = malloc(n);
    if (p && counting())
        cp_alloc_raw_new(p, n);
    return p;
}

static void *nat_calloc(size_t nelem, size_t elsize)
{
    void *p = calloc(nelem, elsize);
    if (p && counting())
        cp_alloc_raw_new(p, nelem * elsize);
    return p;
}

static void *libc_realloc(void *ctx, void *ptr, size_t n)
{
    (void)ctx;
    return realloc(ptr, n);
}

static void *nat_realloc(void *ptr, size_t n)
{
    if (!counting())
        return realloc(ptr, n);
    return cp_alloc_raw_realloc(libc_realloc, NULL, ptr, n);
}

static void nat_free(void *ptr)
{
    if (ptr && counting())
        cp_alloc_raw_free(ptr);
    free(ptr);
}

static void *nat_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    void *p = mmap(addr, len, prot, flags, fd, off);
    if (p != MAP_FAILED && counting())
        cp_alloc_raw_new(p, len);
    return p;
}

static int nat_munmap(void *addr, size_t len)
{
    if (addr && counting())
        cp_alloc_raw_free(addr);
    return munmap(addr, len);
}

static void *nat_dlopen(const char *file, int mode);

static const cp_got_hook hooks[] = {
    {"malloc", (void *)nat_malloc},   {"calloc", (void *)nat_calloc},
    {"realloc", (void *)nat_realloc}, {"free", (void *)nat_free},
    {"mmap", (void *)nat_mmap},       {"mmap64", (void *)nat_mmap},
    {"munmap", (void *)nat_munmap},   {"dlopen", (void *)nat_dlopen},
};

static void rescan(void)
{
    pthread_mutex_lock(&rescan_lock);
    if (atomic_load(&installed) && cp_got_set_changed(&natset))
        cp_got_set_install(&natset, hooks, sizeof hooks / sizeof hooks[0], (const void *)rescan);
    pthread_mutex_unlock(&rescan_lock);
}

static void *nat_dlopen(const char *file, int mode)
{
    void *h = dlopen(file, mode);
    if (h && atomic_load_explicit(&installed, memory_order_acquire)) {
        int was_busy = cp_alloc_busy; /* the scan's own allocations */
        cp_alloc_busy = 1;
        rescan();
        cp_alloc_busy = was_busy;
    }
    return h;
}

void cp_alloc_native_start(void)
{
    int was_busy = cp_alloc_busy;
    cp_alloc_busy = 1;
    pthread_mutex_lock(&rescan_lock);
    int n =
        cp_got_set_install(&natset, hooks, sizeof hooks / sizeof hooks[0], (const void *)rescan);
    atomic_store(&installed, 1);
    pthread_mutex_unlock(&rescan_lock);
    cp_alloc_busy = was_busy;
    if (n < 0) {
        cp_log("alloc: out of memory while redirecting malloc: native allocations are not "
               "counted");
        cp_alloc_native_stop();
        return;
    }
    atomic_store(&cp_alloc_native_live, 1);
}

void cp_alloc_native_atfork_child(void)
{
    /* Only this thread exists in the child; a lock held by another thread
     * at the fork would never be released. */
    pthread_mutex_init(&rescan_lock, NULL);
}

void cp_alloc_native_stop(void)
{
    atomic_store(&cp_alloc_native_live, 0);
    pthread_mutex_lock(&rescan_lock);
    if (atomic_exchange(&installed, 0))
        cp_got_set_restore(&natset);
    pthread_mutex_unlock(&rescan_lock);
}
