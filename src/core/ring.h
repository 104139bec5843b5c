/*
 * ring.h — a per-thread, single-producer single-consumer ring of fixed-size
 * records.
 *
 * The producer is the profiled thread (its profile hook, and later its signal
 * handler); the consumer is the writer thread. Neither side ever blocks or
 * allocates: a push into a full ring drops the record and counts the drop.
 *
 * Hazard: a signal handler on the producer thread may interrupt a push in
 * progress and push itself. cp_ring_push guards against this with a
 * producer-local busy flag: a re-entrant push is dropped and counted rather
 * than corrupting the slot being written.
 */
#ifndef CPYPROF_CORE_RING_H
#define CPYPROF_CORE_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <signal.h>
#include <stdint.h>

/** One record: 32 bytes, the same fields as struct cpyprof_event_rec but
 *  with a raw clock reading (ticks) instead of ns. */
typedef struct cp_record {
    uint64_t ticks;
    uint32_t kind;
    uint32_t a;
    uint64_t b;
    uint64_t c;
} cp_record;

typedef struct cp_ring {
    /* Producer side (own cache line). head = next slot to write. */
    _Atomic uint64_t head;
    volatile sig_atomic_t busy; /* producer re-entrancy guard (signals) */
    char pad0[64 - sizeof(uint64_t) - sizeof(sig_atomic_t)];
    /* Consumer side (own cache line). tail = next slot to read. */
    _Atomic uint64_t tail;
    char pad1[64 - sizeof(uint64_t)];
    _Atomic uint64_t dropped; /* records refused because the ring was full */
    _Atomic uint64_t pushed;  /* records accepted */
    uint64_t mask;            /* capacity - 1; capacity is a power of two */
    cp_record *slots;         /* mmap'd, capacity records */
} cp_ring;

/** Sets up a ring able to hold at least `min_records` records (rounded up to
 *  a power of two, at least 16). Memory comes from mmap, not malloc.
 *  Returns 0, or -1 with errno set. */
int cp_ring_init(cp_ring *r, size_t min_records);

/** Releases the ring's memory. Only once the producer and consumer are gone. */
void cp_ring_destroy(cp_ring *r);

/** Producer: appends one record. Returns true, or false (and counts a drop)
 *  if the ring is full or a push is already in progress on this ring.
 *  Lock-free, async-signal-safe. */
bool cp_ring_push(cp_ring *r, const cp_record *rec);

/** Consumer: moves up to `max` records into `out`, oldest first, and
 *  returns how many. Lock-free. */
size_t cp_ring_pop(cp_ring *r, cp_record *out, size_t max);

/** Records currently in the ring (approximate while the producer runs). */
size_t cp_ring_used(const cp_ring *r);

/** Capacity in records. */
static inline size_t cp_ring_capacity(const cp_ring *r)
{
    return (size_t)r->mask + 1;
}

/** Records dropped so far. */
static inline uint64_t cp_ring_dropped(const cp_ring *r)
{
    return atomic_load_explicit(&r->dropped, memory_order_relaxed);
}

#endif
