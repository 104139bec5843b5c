/*
 * ring.c — the per-thread SPSC record ring (see ring.h for the contract).
 *
 * Indices: `head` and `tail` are free-running 64-bit counters (they never
 * wrap in practice: 2^64 records). The slot of index i is slots[i & mask].
 * The ring holds head - tail records; it is full when that equals capacity.
 *
 * Ownership: only the producer thread writes `head`, `pushed` and `busy`;
 * only the consumer writes `tail`. `dropped` is written by the producer
 * thread from two contexts (normal code and a signal handler interrupting
 * it), so it is the one counter updated with an atomic read-modify-write.
 *
 * Memory ordering (the whole protocol):
 *   producer: write slot; store head (release)  -> the consumer that sees the
 *             new head (acquire) also sees the slot's contents.
 *   consumer: copy slots; store tail (release)  -> the producer that sees the
 *             new tail (acquire) knows the consumer is done reading those
 *             slots and may overwrite them.
 */
#include "core/ring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { CP_RING_MIN_RECORDS = 16 };

/* Smallest power of two >= n (n >= 1), or 0 if it does not fit in size_t. */
static size_t round_up_pow2(size_t n)
{
    size_t p = 1;
    while (p < n) {
        if (p > SIZE_MAX / 2)
            return 0;
        p <<= 1;
    }
    return p;
}

/* Bytes to map for `records` records: a whole number of pages. 0 on overflow. */
static size_t mapping_bytes(size_t records)
{
    if (records > SIZE_MAX / sizeof(cp_record))
        return 0;
    size_t bytes = records * sizeof(cp_record);
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t)page : 4096;
    if (bytes > SIZE_MAX - (pg - 1))
        return 0;
    return (bytes + pg - 1) / pg * pg;
}

int cp_ring_init(cp_ring *r, size_t min_records)
{
    size_t want = min_records < CP_RING_MIN_RECORDS ? CP_RING_MIN_RECORDS : min_records;
    size_t capacity = round_up_pow2(want);
    size_t bytes = capacity ? mapping_bytes(capacity) : 0;
    if (bytes == 0) {
        errno = ENOMEM;
        return -1;
    }
    /* mmap rather than malloc: rings are created on threads we do not own
     * (possibly inside an allocator hook), and anonymous pages come zeroed. */
    void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1; /* errno set by mmap */

    memset(r, 0, sizeof *r);
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
    atomic_init(&r->pushed, 0);
    r->busy = 0;
    r->mask = (uint64_t)capacity - 1;
    r->slots = mem;
    return 0;
}

void cp_ring_destroy(cp_ring *r)
{
    if (r->slots != NULL) {
        /* Recompute the mapped size exactly as cp_ring_init did. */
        munmap(r->slots, mapping_bytes(cp_ring_capacity(r)));
        r->slots = NULL;
    }
    r->mask = 0;
}

/* Counts one refused record. Hazard: a drop can happen in normal code and in
 * a signal handler that interrupted it on the same thread, so a plain
 * load+store could lose the handler's increment. A lock-free atomic add is
 * async-signal-safe; relaxed is enough, the count orders nothing else. */
static void count_drop(cp_ring *r)
{
    atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
}

bool cp_ring_push(cp_ring *r, const cp_record *rec)
{
    /* Re-entrancy guard. Hazard: a signal handler on this thread may run in
     * the middle of a push and push itself; it would then write the slot we
     * are writing and publish a half-written record. Signals on one thread
     * nest strictly (the handler runs to completion before the interrupted
     * code resumes), so test-then-set of a thread-local flag is race-free
     * here: a handler that lands between the test and the set finds busy==0,
     * completes its whole push, and restores busy to 0 before we go on.
     * The ring is single-producer, so no other thread touches `busy`. */
    if (r->busy) {
        count_drop(r);
        return false;
    }
    r->busy = 1;
    /* Compiler barrier: keep the slot accesses below after busy=1 is stored
     * (a volatile store alone does not order non-volatile accesses). Only
     * this thread's signal handlers read busy, so no CPU fence is needed. */
    atomic_signal_fence(memory_order_seq_cst);

    /* Only this thread writes head: relaxed read of our own value. */
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    /* Acquire pairs with the consumer's release store of tail: slots below
     * the tail we see are fully copied out and free to overwrite. */
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    bool ok = head - tail <= r->mask; /* i.e. used < capacity */
    if (ok) {
        r->slots[head & r->mask] = *rec;
        /* Release: the slot's contents become visible before the new head. */
        atomic_store_explicit(&r->head, head + 1, memory_order_release);
        /* `pushed` is only written inside the busy section, never
         * concurrently with itself: load+store avoids a locked add on the hot
         * path. Readers on other threads see a (relaxed) recent value. */
        uint64_t n = atomic_load_explicit(&r->pushed, memory_order_relaxed);
        atomic_store_explicit(&r->pushed, n + 1, memory_order_relaxed);
    } else {
        count_drop(r);
    }

    atomic_signal_fence(memory_order_seq_cst); /* finish the push before clearing busy */
    r->busy = 0;
    return ok;
}

size_t cp_ring_pop(cp_ring *r, cp_record *out, size_t max)
{
    /* Only the consumer writes tail: relaxed read of our own value. */
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    /* Acquire pairs with the producer's release store of head: every slot
     * below the head we see holds a complete record. */
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t avail = head - tail;
    size_t n = avail < (uint64_t)max ? (size_t)avail : max;
    if (n == 0)
        return 0;

    /* Copy in at most two runs: up to the end of the array, then from 0. */
    size_t capacity = cp_ring_capacity(r);
    size_t start = (size_t)(tail & r->mask);
    size_t first = capacity - start < n ? capacity - start : n;
    memcpy(out, &r->slots[start], first * sizeof(cp_record));
    if (n > first)
        memcpy(out + first, &r->slots[0], (n - first) * sizeof(cp_record));

    /* Release: our reads of these slots complete before the producer can see
     * them as free and overwrite them. */
    atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    return n;
}

size_t cp_ring_used(const cp_ring *r)
{
    /* Read tail first: head only grows and never passes tail + capacity at
     * any instant, so head read later is >= this tail (no underflow). The
     * consumer may advance meanwhile, which can make the difference exceed
     * the capacity: clamp it. */
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t used = head - tail;
    return used > r->mask ? cp_ring_capacity(r) : (size_t)used;
}
