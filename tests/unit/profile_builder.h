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
#include <stdbool.h>
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

/*
 * The sample profile shared by the model, folded and table tests:
 *
 *   thread 0 "MainThread"              thread 1 "worker;1\nx"
 *   main        1 call   1000 ns       fib          1 call  100 ns
 *    fib        1        800            fib         1        40
 *     fib       2        500             [truncated] 0       40
 *      fib      3        200
 *       len     4         50
 *     len       1        100
 *    len        2         30
 *
 * Per function, all threads: main calls 1 self 170 total 1000; fib 8 / 710 /
 * 900; len 7 / 180 / 180; [truncated] 0 / 40 / 40.
 */
static inline void tb_sample(cp_buf *f, bool with_trailer)
{
    static const char *const str[] = {"main",       "app.py",      "fib",
                                      "len",        "builtins",    "[truncated]",
                                      "MainThread", "worker;1\nx", "python3"};
    static const struct cpyprof_func_rec fn[] = {
        {.id = 0, .name = 0, .file = 1, .line = 1, .kind = CPYPROF_FUNC_PYTHON},
        {.id = 1, .name = 2, .file = 1, .line = 5, .kind = CPYPROF_FUNC_PYTHON},
        {.id = 2, .name = 3, .file = 4, .line = 0, .kind = CPYPROF_FUNC_BUILTIN},
        {.id = 3, .name = 5, .file = CPYPROF_NONE, .kind = CPYPROF_FUNC_SPECIAL},
    };
    static const struct cpyprof_thread_rec th[] = {
        {.id = 0,
         .name = 6,
         .ident = 140000,
         .native_tid = 100,
         .end_ns = -1,
         .flags = CPYPROF_THREAD_MAIN},
        {.id = 1,
         .name = 7,
         .ident = 140001,
         .native_tid = 101,
         .start_ns = 10,
         .end_ns = 20,
         .flags = CPYPROF_THREAD_STARTED_LATE},
    };
    static const tb_node t0[] = {{CPYPROF_NONE, 0, 1, 1000},
                                 {0, 1, 1, 800},
                                 {1, 1, 2, 500},
                                 {2, 1, 3, 200},
                                 {3, 2, 4, 50},
                                 {1, 2, 1, 100},
                                 {0, 2, 2, 30}};
    static const tb_node t1[] = {{CPYPROF_NONE, 1, 1, 100}, {0, 1, 1, 40}, {1, 3, 0, 40}};
    static const char argv[] = "python3\0app.py\0it's here";
    cp_buf b;
    cp_buf_init(&b);
    tb_begin(f);
    cp_buf_meta(&b, "cpyprof_version", "0.1.0");
    cp_buf_meta(&b, "mode", "trace");
    cp_buf_lstr(&b, "argv", 4);
    cp_buf_lstr(&b, argv, sizeof argv - 1);
    tb_chunk(f, CPYPROF_CHUNK_META, &b);
    cp_buf_free(&b);
    tb_strings(f, 0, str, 9);
    tb_funcs(f, fn, 4);
    tb_thread(f, &th[0]);
    tb_thread(f, &th[1]);
    tb_tree(f, 0, t0, 7);
    tb_tree(f, 1, t1, 3);
    if (with_trailer) {
        struct cpyprof_trailer_rec tr = {.events_dropped = 3, .threads = 2, .duration_ns = 2500000};
        tb_trailer(f, &tr);
    }
}

/* Loads a cp_buf image; aborts the test with the reader's message. */
#define TB_LOAD(p, f)                                                                              \
    do {                                                                                           \
        char tb_err_[256];                                                                         \
        ck_assert_msg(cp_profile_load_mem((p), (f)->data, (f)->len, "sample.cpyprof", tb_err_,     \
                                          sizeof tb_err_) == 0,                                    \
                      "%s", tb_err_);                                                              \
    } while (0)

#endif
