/*
 * timeline.h — reading a profile's timeline (TIMELINE and TIMELINE_INFO
 * chunks, docs/format.md) without holding it in memory.
 *
 * cp_tl_open() reads the file once, chunk by chunk: every other chunk is
 * copied into a memory image that cp_profile_load_mem() decodes (so the
 * functions, threads and trailer are checked exactly as everywhere else),
 * TIMELINE chunks are only located (offset, size) and TIMELINE_INFO chunks
 * decoded. cp_tl_next() then reads the TIMELINE chunks back one at a time,
 * checking each CRC and record. Memory: the non-timeline part of the file
 * plus one chunk.
 *
 * A file cut short keeps what is before the cut, as the reader does: the
 * profile is marked truncated and the timeline ends at the last complete
 * chunk.
 */
#ifndef CPYPROF_REPORT_TIMELINE_H
#define CPYPROF_REPORT_TIMELINE_H

#include "report/alloc.h"
#include "report/profile.h"

#include <stdio.h>

typedef struct cp_tl_chunk_loc {
    uint64_t off;  /* offset of the chunk header */
    uint64_t size; /* payload size */
    uint32_t crc;
    uint32_t no; /* chunk number in the file, from 1 */
} cp_tl_chunk_loc;

typedef struct cp_tl_file {
    cp_profile p; /* everything but the timeline */
    FILE *f;
    const char *path;
    cp_tl_chunk_loc *chunks;
    size_t n_chunks, next;
    uint64_t n_events; /* events in all TIMELINE chunks (their counts) */
    struct cpyprof_tl_info_rec *info;
    size_t n_info;
    cp_alloc_data alloc; /* ALLOC and GC chunks (--alloc), from the same pass */
    uint8_t *buf;        /* the current chunk's payload */
    size_t cap;
} cp_tl_file;

/** Opens and indexes `path`. Returns 0, or -1 with a one-line message (the
 *  reader's messages for a damaged file). */
int cp_tl_open(cp_tl_file *t, const char *path, char *err, size_t errlen);

/** Same from an open stream (which cp_tl_close closes) of `size` bytes;
 *  `path` names it in messages. For memory: fmemopen. */
int cp_tl_open_stream(cp_tl_file *t, FILE *f, uint64_t size, const char *path, char *err,
                      size_t errlen);

/** The next TIMELINE chunk: *thread is its file thread id, *recs points at
 *  *n records of 16 bytes (decode with cp_tl_decode). Returns 1, 0 at the
 *  end, -1 on a damaged chunk (CRC, size) with err set. */
int cp_tl_next(cp_tl_file *t, uint32_t *thread, const uint8_t **recs, uint32_t *n, char *err,
               size_t errlen);

/** Decodes record i of a chunk. */
void cp_tl_decode(const uint8_t *recs, uint32_t i, struct cpyprof_tl_rec *out);

/** Rewinds to the first TIMELINE chunk. */
void cp_tl_rewind(cp_tl_file *t);

void cp_tl_close(cp_tl_file *t);

#endif
