/*
 * writer.h — encoding chunks and writing them to the profile file.
 *
 * Runs off the hot path (the writer thread, stop(), atexit), so it may
 * allocate. Every failure (unwritable path, ENOSPC, EIO) becomes a message
 * and a counted write error; it never exits and never raises a signal
 * (SIGXFSZ is the program's business: Python ignores it).
 */
#ifndef CPYPROF_CORE_WRITER_H
#define CPYPROF_CORE_WRITER_H

#include "core/fdsafe.h"

#include <pthread.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A growable byte buffer for building chunk payloads. On allocation
 *  failure `oom` is set and further appends are ignored. */
typedef struct cp_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool oom;
} cp_buf;

void cp_buf_init(cp_buf *b);
void cp_buf_free(cp_buf *b);
void cp_buf_reset(cp_buf *b);
void cp_buf_bytes(cp_buf *b, const void *p, size_t n);
void cp_buf_u32(cp_buf *b, uint32_t v); /* little-endian */
void cp_buf_u64(cp_buf *b, uint64_t v); /* little-endian */
void cp_buf_i64(cp_buf *b, int64_t v);
/** Appends {u32 len, bytes} (the META and STRINGS encoding of text). */
void cp_buf_lstr(cp_buf *b, const char *s, size_t n);
/** Appends a META entry {u32 klen, key, u32 vlen, value}. */
void cp_buf_meta(cp_buf *b, const char *key, const char *value);

/** CRC-32 (IEEE 802.3, reflected, as zlib's crc32). Start with crc = 0. */
uint32_t cp_crc32(uint32_t crc, const void *data, size_t n);

struct cp_writer;
enum { CP_WRITER_OP_CHUNK = 1, CP_WRITER_OP_CLOSE = 2 };
/** Carries out a chunk write or the close on the thread that owns the
 *  descriptor (see cp_writer.route); returns what the operation returns. */
typedef int (*cp_writer_route_fn)(struct cp_writer *w, int op, uint32_t type, const void *payload,
                                  size_t n, char *err, size_t errlen);

typedef struct cp_writer {
    int fd; /* -1 when closed */
    /* When route is set, fd is a number in the descriptor table of thread
     * `owner` alone (the profiler's writer thread unshares its table, so the
     * program can neither see nor close nor dup2 over the file): chunks and
     * the close from any other thread go through route(), which hands them
     * to the owner and waits. */
    cp_writer_route_fn route;
    pthread_t owner;
    bool failed;     /* a write failed; later chunks are not attempted */
    uint64_t bytes;  /* bytes written so far */
    uint64_t chunks; /* chunks written */
    uint64_t errors; /* chunks that could not be written */
    int last_errno;
    char path[4096]; /* the file's path, for messages (truncated if longer) */
    cp_fd_id id;     /* the file fd must still be (fdsafe.h); a program that
                        closed fd gets it reopened by path, or the writer fails */
} cp_writer;

/** Creates/truncates `path` (mode 0644, O_CLOEXEC) and writes the file
 *  header. Returns 0, or -1 with err = "cannot write profile 'PATH': REASON". */
int cp_writer_open(cp_writer *w, const char *path, char *err, size_t errlen);

/** Opens `path` without writing anything, to check early that it is
 *  writable (the profiler checks at start, not at exit). */
int cp_writer_check_path(const char *path, char *err, size_t errlen);

/** Writes one chunk (header with CRC, then payload), retrying EINTR and
 *  short writes. After a failure the writer is `failed` and further chunks
 *  are counted as errors. Returns 0 or -1 with err set. */
int cp_writer_chunk(cp_writer *w, uint32_t type, const void *payload, size_t n, char *err,
                    size_t errlen);

/** True while w->fd is still the profile file (not closed, or closed and
 *  reused, by the program). Async-signal-safe. */
bool cp_writer_fd_ok(const cp_writer *w);

/** Closes the file (unless the program already closed the descriptor: then
 *  its number may be one of the program's files and is left alone). Returns 0 or -1 with err set
 * when close() itself fails (an earlier chunk failure was already reported by cp_writer_chunk;
 * check `failed`/`errors`). Closing a closed writer does nothing. */
int cp_writer_close(cp_writer *w, char *err, size_t errlen);

#endif
