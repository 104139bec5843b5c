/*
 * chunks.h — walking the chunks of a profile file image, for the readers of
 * one kind of chunk (report/alloc.c: ALLOC and GC; report/gil.c: GIL) that
 * do not need the full model of reader.c.
 *
 * The walk stops at the TRAILER and at a chunk cut short (a truncated file:
 * what came before is kept, as reader.c does). Integers are little-endian
 * (docs/format.md). Header only: small static inline functions.
 */
#ifndef CPYPROF_REPORT_CHUNKS_H
#define CPYPROF_REPORT_CHUNKS_H

#include "core/writer.h" /* cp_crc32 */

#include <cpyprof/format.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline uint32_t cp_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t cp_rd64(const uint8_t *p)
{
    return (uint64_t)cp_rd32(p) | (uint64_t)cp_rd32(p + 4) << 32;
}

typedef struct cp_chunk_walk {
    const uint8_t *data;
    size_t size;
    uint64_t off; /* of the next chunk header */
} cp_chunk_walk;

typedef struct cp_chunk {
    uint32_t type;
    const uint8_t *payload;
    uint64_t len;
    bool crc_ok; /* the payload matches the header's CRC-32 */
} cp_chunk;

/** Starts a walk over a file image; -1 with "not a cpyprof profile" when it
 *  does not start with the magic. */
static inline int cp_chunk_walk_begin(cp_chunk_walk *w, const void *data, size_t size, char *err,
                                      size_t errlen)
{
    *w = (cp_chunk_walk){data, size, CPYPROF_FILE_HEADER_SIZE};
    if (size < CPYPROF_FILE_HEADER_SIZE || memcmp(data, CPYPROF_MAGIC, CPYPROF_MAGIC_LEN) != 0) {
        snprintf(err, errlen, "not a cpyprof profile");
        return -1;
    }
    return 0;
}

/** The next chunk of one of the types in `types` (n of them; the others are
 *  skipped without a CRC check). false at the TRAILER, at the end, or at a
 *  chunk cut short. */
static inline bool cp_chunk_next(cp_chunk_walk *w, const uint32_t *types, size_t n, cp_chunk *c)
{
    while (w->size - w->off >= CPYPROF_CHUNK_HEADER_SIZE) {
        const uint8_t *h = w->data + w->off;
        uint32_t type = cp_rd32(h), crc = cp_rd32(h + 4);
        uint64_t len = cp_rd64(h + 8);
        if (len > w->size - w->off - CPYPROF_CHUNK_HEADER_SIZE)
            return false; /* cut short: keep what came before */
        w->off += CPYPROF_CHUNK_HEADER_SIZE + len;
        if (type == CPYPROF_CHUNK_TRAILER)
            return false;
        for (size_t i = 0; i < n; i++)
            if (types[i] == type) {
                *c = (cp_chunk){type, h + CPYPROF_CHUNK_HEADER_SIZE, len, false};
                c->crc_ok = cp_crc32(0, c->payload, len) == crc;
                return true;
            }
    }
    return false;
}

#endif
