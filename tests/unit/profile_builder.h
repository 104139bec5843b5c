/*
 * profile_builder.h — helpers for unit tests that need hand-made profiles.
 *
 * Payloads are encoded with cp_buf (the writer's encoder) and framed into a
 * complete file image in memory, which tests then hand to
 * cp_profile_load_mem(). Header-only (static functions) because every
 * tests/unit/test_*.c file is its own executable.
 */
#ifndef CPYPROF_TESTS_PROFILE_BUILDER_H
#define CPYPROF_TESTS_PROFILE_BUILDER_H

#include "core/writer.h"
#include "report/profile.h"

#include <cpyprof/format.h>
#include <string.h>

typedef struct tb_node {
    uint32_t parent, func;
    uint64_t calls, total_ns;
} tb_node;

/* Starts a file image: magic, version, flags. */
static inline void tb_begin(cp_buf *f)
{
    cp_buf_init(f);
    cp_buf_bytes(f, CPYPROF_MAGIC, CPYPROF_MAGIC_LEN);
    cp_buf_u32(f, CPYPROF_FORMAT_VERSION);
    cp_buf_u32(f, 0);
}

/* Frames `payload` as a chunk of `type` and appends it; resets `payload`. */
static inline void tb_chunk(cp_buf *f, uint32_t type, cp_buf *payload)
{
    cp_buf_u32(f, type);
    cp_buf_u32(f, cp_crc32(0, payload->data, payload->len));
    cp_buf_u64(f, payload->len);
    cp_buf_bytes(f, payload->data, payload->len);
    cp_buf_reset(payload);
}

static inline void tb_strings(cp_buf *f, uint32_t first, const char *const *s, uint32_t n)
{
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, first);
    cp_buf_u32(&b, n);
    for (uint32_t i = 0; i < n; i++)
        cp_buf_lstr(&b, s[i], strlen(s[i]));
    tb_chunk(f, CPYPROF_CHUNK_STRINGS, &b);
    cp_buf_free(&b);
}

static inline void tb_funcs(cp_buf *f, const struct cpyprof_func_rec *r, uint32_t n)
{
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, n);
    for (uint32_t i = 0; i < n; i++) {
        cp_buf_u32(&b, r[i].id);
        cp_buf_u32(&b, r[i].name);
        cp_buf_u32(&b, r[i].file);
        cp_buf_u32(&b, r[i].line);
        cp_buf_u32(&b, r[i].kind);
        cp_buf_u32(&b, r[i].flags);
    }
    tb_chunk(f, CPYPROF_CHUNK_FUNCS, &b);
    cp_buf_free(&b);
}

static inline void tb_thread(cp_buf *f, const struct cpyprof_thread_rec *t)
{
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, t->id);
    cp_buf_u32(&b, t->name);
    cp_buf_u64(&b, t->ident);
    cp_buf_u64(&b, t->native_tid);
    cp_buf_i64(&b, t->start_ns);
    cp_buf_i64(&b, t->end_ns);
    cp_buf_u32(&b, t->flags);
    cp_buf_u32(&b, t->reserved);
    tb_chunk(f, CPYPROF_CHUNK_THREAD, &b);
    cp_buf_free(&b);
}

static inline void tb_tree(cp_buf *f, uint32_t thread, const tb_node *nodes, uint32_t n)
{
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, thread);
    cp_buf_u32(&b, n);
    for (uint32_t i = 0; i < n; i++) {
        cp_buf_u32(&b, nodes[i].parent);
        cp_buf_u32(&b, nodes[i].func);
        cp_buf_u64(&b, nodes[i].calls);
        cp_buf_u64(&b, nodes[i].total_ns);
    }
    tb_chunk(f, CPYPROF_CHUNK_TREE, &b);
    cp_buf_free(&b);
}

static inline void tb_trailer(cp_buf *f, const struct cpyprof_trailer_rec *t)
{
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u64(&b, t->events_written);
    cp_buf_u64(&b, t->events_dropped);
    cp_buf_u64(&b, t->calls_untracked);
    cp_buf_u64(&b, t->threads);
    cp_buf_i64(&b, t->duration_ns);
    cp_buf_u32(&b, t->end_reason);
    cp_buf_u32(&b, t->end_signal);
    cp_buf_u64(&b, t->write_errors);
    cp_buf_u64(&b, t->reserved);
    tb_chunk(f, CPYPROF_CHUNK_TRAILER, &b);
    cp_buf_free(&b);
}

#endif
