/*
 * test_format.c — the writer and the reader against each other.
 *
 * A profile is written by hand through the writer API, read back and
 * compared field by field; then the same bytes are cut at every offset and
 * damaged at every byte, which must never crash the reader and must give a
 * truncated prefix, or an error.
 */
#include "core/writer.h"
#include "report/profile.h"
#include "profile_builder.h"

#include <check.h>
#include <cpyprof/format.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const strings_a[] = {"fib", "app.py", "len", "builtins", "MainThread"};
static const char *const strings_b[] = {"worker", "Thread-1"};
static const struct cpyprof_func_rec funcs[] = {
    {.id = 0, .name = 0, .file = 1, .line = 10, .kind = CPYPROF_FUNC_PYTHON},
    {.id = 1, .name = 2, .file = 3, .line = 0, .kind = CPYPROF_FUNC_BUILTIN},
    {.id = 2, .name = 5, .file = 1, .line = 20, .kind = CPYPROF_FUNC_PYTHON, .flags = 7},
};
static const struct cpyprof_thread_rec threads[] = {
    {.id = 0,
     .name = 4,
     .ident = 0x7f0011223344ull,
     .native_tid = 4242,
     .start_ns = 0,
     .end_ns = -1,
     .flags = CPYPROF_THREAD_MAIN},
    {.id = 1,
     .name = 6,
     .ident = 0x7f0055667788ull,
     .native_tid = 4243,
     .start_ns = 1500,
     .end_ns = 98765,
     .flags = CPYPROF_THREAD_STARTED_LATE},
};
static const tb_node tree0[] = {
    {CPYPROF_NONE, 0, 1, 1000}, {0, 0, 2, 600}, {1, 1, 3, 100}, {0, 1, 1, 50}};
static const tb_node tree1[] = {{CPYPROF_NONE, 2, 1, 500}, {0, 1, 4, 70}};
static const struct cpyprof_event_rec events1[] = {
    {.time_ns = 1500, .kind = CPYPROF_EV_THREAD_START, .a = 4243},
    {.time_ns = 98765, .kind = CPYPROF_EV_THREAD_END, .b = 1, .c = UINT64_MAX},
};
static const struct cpyprof_trailer_rec trailer = {.events_written = 2,
                                                   .events_dropped = 3,
                                                   .calls_untracked = 4,
                                                   .threads = 2,
                                                   .duration_ns = 123456789,
                                                   .end_reason = CPYPROF_END_EXIT,
                                                   .end_signal = 0,
                                                   .write_errors = 0};
static const char argv_value[] = "python3\0app.py\0--fast";

/* Payload offsets of every chunk in the written file, for the damage test. */
static size_t chunk_payload_off[16], chunk_payload_len[16], n_chunks;

static void put(cp_writer *w, uint32_t type, cp_buf *b)
{
    char err[256];
    ck_assert_msg(!b->oom, "encoder out of memory");
    ck_assert_msg(cp_writer_chunk(w, type, b->data, b->len, err, sizeof err) == 0, "%s", err);
    chunk_payload_off[n_chunks] = (size_t)w->bytes - b->len;
    chunk_payload_len[n_chunks++] = b->len;
    cp_buf_reset(b);
}

/* Writes the reference profile to `path` with the writer API. */
static void write_reference(const char *path)
{
    cp_writer w;
    char err[256];
    cp_buf b;
    n_chunks = 0;
    ck_assert_msg(cp_writer_open(&w, path, err, sizeof err) == 0, "%s", err);
    cp_buf_init(&b);

    cp_buf_meta(&b, "cpyprof_version", "0.1.0");
    cp_buf_meta(&b, "mode", "trace");
    cp_buf_lstr(&b, "argv", 4);
    cp_buf_lstr(&b, argv_value, sizeof argv_value - 1);
    cp_buf_meta(&b, "mode", "sample"); /* repeated: the last one wins */
    put(&w, CPYPROF_CHUNK_META, &b);

    cp_buf_u32(&b, 0);
    cp_buf_u32(&b, 5);
    for (int i = 0; i < 5; i++)
        cp_buf_lstr(&b, strings_a[i], strlen(strings_a[i]));
    put(&w, CPYPROF_CHUNK_STRINGS, &b);

    /* The tree of thread 1 before its THREAD chunk and the second STRINGS
     * chunk: forward references are allowed. */
    cp_buf_u32(&b, 1);
    cp_buf_u32(&b, 2);
    for (int i = 0; i < 2; i++) {
        cp_buf_u32(&b, tree1[i].parent);
        cp_buf_u32(&b, tree1[i].func);
        cp_buf_u64(&b, tree1[i].calls);
        cp_buf_u64(&b, tree1[i].total_ns);
    }
    put(&w, CPYPROF_CHUNK_TREE, &b);

    cp_buf_u32(&b, 5);
    cp_buf_u32(&b, 2);
    for (int i = 0; i < 2; i++)
        cp_buf_lstr(&b, strings_b[i], strlen(strings_b[i]));
    put(&w, CPYPROF_CHUNK_STRINGS, &b);

    cp_buf_u32(&b, 3);
    for (int i = 0; i < 3; i++) {
        cp_buf_u32(&b, funcs[i].id);
        cp_buf_u32(&b, funcs[i].name);
        cp_buf_u32(&b, funcs[i].file);
        cp_buf_u32(&b, funcs[i].line);
        cp_buf_u32(&b, funcs[i].kind);
        cp_buf_u32(&b, funcs[i].flags);
    }
    put(&w, CPYPROF_CHUNK_FUNCS, &b);

    for (int t = 0; t < 2; t++) {
        cp_buf_u32(&b, threads[t].id);
        cp_buf_u32(&b, threads[t].name);
        cp_buf_u64(&b, threads[t].ident);
        cp_buf_u64(&b, threads[t].native_tid);
        cp_buf_i64(&b, threads[t].start_ns);
        cp_buf_i64(&b, threads[t].end_ns);
        cp_buf_u32(&b, threads[t].flags);
        cp_buf_u32(&b, threads[t].reserved);
        put(&w, CPYPROF_CHUNK_THREAD, &b);
    }

    cp_buf_u32(&b, 0);
    cp_buf_u32(&b, 4);
    for (int i = 0; i < 4; i++) {
        cp_buf_u32(&b, tree0[i].parent);
        cp_buf_u32(&b, tree0[i].func);
        cp_buf_u64(&b, tree0[i].calls);
        cp_buf_u64(&b, tree0[i].total_ns);
    }
    put(&w, CPYPROF_CHUNK_TREE, &b);

    cp_buf_u32(&b, 1);
    cp_buf_u32(&b, 2);
    for (int i = 0; i < 2; i++) {
        cp_buf_i64(&b, events1[i].time_ns);
        cp_buf_u32(&b, events1[i].kind);
        cp_buf_u32(&b, events1[i].a);
        cp_buf_u64(&b, events1[i].b);
        cp_buf_u64(&b, events1[i].c);
    }
    put(&w, CPYPROF_CHUNK_EVENTS, &b);

    cp_buf_u64(&b, trailer.events_written);
    cp_buf_u64(&b, trailer.events_dropped);
    cp_buf_u64(&b, trailer.calls_untracked);
    cp_buf_u64(&b, trailer.threads);
    cp_buf_i64(&b, trailer.duration_ns);
    cp_buf_u32(&b, trailer.end_reason);
    cp_buf_u32(&b, trailer.end_signal);
    cp_buf_u64(&b, trailer.write_errors);
    cp_buf_u64(&b, trailer.reserved);
    put(&w, CPYPROF_CHUNK_TRAILER, &b);

    ck_assert_uint_eq(w.chunks, 10);
    ck_assert_uint_eq(w.errors, 0);
    ck_assert(!w.failed);
    ck_assert_msg(cp_writer_close(&w, err, sizeof err) == 0, "%s", err);
    cp_buf_free(&b);
}

static char tmp_path[64];

static void make_tmp(void)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/cpyprof-test-XXXXXX");
    int fd = mkstemp(tmp_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(d, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return d;
}

START_TEST(crc_known_value)
{
    ck_assert_uint_eq(cp_crc32(0, "123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(cp_crc32(0, "", 0), 0);
    /* Incremental use gives the same result. */
    ck_assert_uint_eq(cp_crc32(cp_crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}
END_TEST

/* The bit-at-a-time definition, against the table-driven (slice-by-8 for
 * long inputs) implementation, at every length and alignment near the
 * 64-byte switch-over and on a long buffer. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

START_TEST(crc_long_inputs)
{
    static uint8_t buf[5000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n < 200; n++)
            ck_assert_uint_eq(cp_crc32(0, buf + off, n), crc_bitwise(0, buf + off, n));
    ck_assert_uint_eq(cp_crc32(0, buf, sizeof buf), crc_bitwise(0, buf, sizeof buf));
    /* incremental across the switch-over */
    ck_assert_uint_eq(cp_crc32(cp_crc32(0, buf, 70), buf + 70, 1000), crc_bitwise(0, buf, 1070));
}
END_TEST

START_TEST(buf_encoding)
{
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, 0x11223344u);
    cp_buf_u64(&b, 0x0102030405060708ull);
    cp_buf_i64(&b, -1);
    cp_buf_meta(&b, "k", "vv");
    static const uint8_t want[] = {0x44, 0x33, 0x22, 0x11, 8,    7,    6,    5,    4,    3, 2,
                                   1,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 0,
                                   0,    0,    'k',  2,    0,    0,    0,    'v',  'v'};
    ck_assert_uint_eq(b.len, sizeof want);
    ck_assert_mem_eq(b.data, want, sizeof want);
    cp_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    cp_buf_free(&b);
    ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(round_trip)
{
    make_tmp();
    write_reference(tmp_path);
    cp_profile p;
    char err[256];
    ck_assert_msg(cp_profile_load(&p, tmp_path, err, sizeof err) == 0, "%s", err);
    ck_assert(!p.truncated);
    ck_assert(p.has_trailer);
    ck_assert_uint_eq(p.chunks_kept, 10);
    ck_assert_uint_eq(p.bytes_kept, p.file_size);

    ck_assert_str_eq(cp_profile_meta(&p, "cpyprof_version"), "0.1.0");
    ck_assert_str_eq(cp_profile_meta(&p, "mode"), "sample");
    size_t len;
    const char *argv = cp_profile_meta_len(&p, "argv", &len);
    ck_assert_uint_eq(len, sizeof argv_value - 1);
    ck_assert_mem_eq(argv, argv_value, len);
    ck_assert_ptr_null(cp_profile_meta(&p, "nope"));
    ck_assert_uint_eq(p.n_meta, 4);

    ck_assert_uint_eq(p.n_strings, 7);
    for (int i = 0; i < 5; i++)
        ck_assert_str_eq(cp_profile_string(&p, (uint32_t)i), strings_a[i]);
    for (int i = 0; i < 2; i++)
        ck_assert_str_eq(cp_profile_string(&p, (uint32_t)i + 5), strings_b[i]);
    ck_assert_ptr_null(cp_profile_string(&p, 7));
    ck_assert_ptr_null(cp_profile_string(&p, CPYPROF_NONE));

    ck_assert_uint_eq(p.n_funcs, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(cp_profile_func_index(&p, funcs[i].id), i);
        ck_assert_mem_eq(&p.funcs[i], &funcs[i], sizeof funcs[i]);
    }
    ck_assert_int_eq(cp_profile_func_index(&p, 3), -1);

    ck_assert_uint_eq(p.n_threads, 2);
    for (int t = 0; t < 2; t++) {
        ck_assert(p.threads[t].defined);
        ck_assert_mem_eq(&p.threads[t].rec, &threads[t], sizeof threads[t]);
    }
    const tb_node *trees[] = {tree0, tree1};
    size_t sizes[] = {4, 2};
    for (int t = 0; t < 2; t++) {
        ck_assert_uint_eq(p.threads[t].n_nodes, sizes[t]);
        for (size_t i = 0; i < sizes[t]; i++) {
            const cp_node *n = &p.threads[t].nodes[i];
            ck_assert_uint_eq(n->parent, trees[t][i].parent);
            /* func ids equal indices in this file */
            ck_assert_uint_eq(n->func, trees[t][i].func);
            ck_assert_uint_eq(n->calls, trees[t][i].calls);
            ck_assert_uint_eq(n->total_ns, trees[t][i].total_ns);
        }
    }

    ck_assert_uint_eq(p.n_events, 2);
    for (int i = 0; i < 2; i++) {
        ck_assert_uint_eq(p.events[i].thread, 1);
        ck_assert_mem_eq(&p.events[i].rec, &events1[i], sizeof events1[i]);
    }
    ck_assert_mem_eq(&p.trailer, &trailer, sizeof trailer);
    char warn[256];
    ck_assert(!cp_profile_warning(&p, warn, sizeof warn));
    cp_profile_free(&p);
    unlink(tmp_path);
}
END_TEST

/* Every prefix of the file loads as a truncated prefix of the data (or, inside
 * the file header, fails with a message). */
START_TEST(truncation_at_every_offset)
{
    make_tmp();
    write_reference(tmp_path);
    size_t size;
    uint8_t *full = read_all(tmp_path, &size);
    unlink(tmp_path);
    uint32_t last_chunks = 0;
    for (size_t k = 0; k < size; k++) {
        /* A fresh exact-size copy so ASan sees any read past the end. */
        uint8_t *d = malloc(k ? k : 1);
        memcpy(d, full, k);
        cp_profile p;
        char err[256] = "";
        int r = cp_profile_load_mem(&p, d, k, "cut.cpyprof", err, sizeof err);
        if (k < CPYPROF_FILE_HEADER_SIZE) {
            ck_assert_int_eq(r, -1);
            ck_assert_msg(strncmp(err, "cut.cpyprof: ", 13) == 0, "%s", err);
        } else {
            ck_assert_msg(r == 0, "offset %zu: %s", k, err);
            ck_assert(p.truncated);
            ck_assert(!p.has_trailer);
            ck_assert_uint_le(p.bytes_kept, k);
            ck_assert_uint_ge(p.chunks_kept, last_chunks);
            last_chunks = p.chunks_kept;
            ck_assert_uint_le(p.n_strings, 8); /* 7, +1 for "[unknown]" */
            for (size_t i = 0; i < p.n_strings && i < 5; i++)
                ck_assert_str_eq(p.strings[i], strings_a[i]);
            for (size_t t = 0; t < p.n_threads; t++) {
                ck_assert_uint_le(p.threads[t].n_nodes, 4);
                for (size_t i = 0; i < p.threads[t].n_nodes; i++)
                    ck_assert_uint_lt(p.threads[t].nodes[i].func, p.n_funcs);
            }
            char warn[256];
            ck_assert(cp_profile_warning(&p, warn, sizeof warn));
            ck_assert_msg(strncmp(warn, "profile is truncated (", 22) == 0, "%s", warn);
        }
        cp_profile_free(&p);
        free(d);
    }
    ck_assert_uint_eq(last_chunks, 9);
    free(full);
}
END_TEST

/* Flipping any payload byte is caught by the CRC; flipping a chunk header
 * byte never crashes (it may look like truncation or an unknown chunk). */
START_TEST(damage_every_byte)
{
    make_tmp();
    write_reference(tmp_path);
    size_t size;
    uint8_t *d = read_all(tmp_path, &size);
    unlink(tmp_path);
    for (size_t k = 0; k < size; k++) {
        bool in_payload = false;
        for (size_t c = 0; c < n_chunks; c++)
            if (k >= chunk_payload_off[c] && k < chunk_payload_off[c] + chunk_payload_len[c])
                in_payload = true;
        d[k] ^= 0x5A;
        cp_profile p;
        char err[256] = "";
        int r = cp_profile_load_mem(&p, d, size, "bad.cpyprof", err, sizeof err);
        if (in_payload) {
            ck_assert_msg(r == -1, "payload byte %zu flipped undetected", k);
            ck_assert_msg(strstr(err, "is corrupt (CRC mismatch)"), "%s", err);
        } else if (r != 0) {
            ck_assert_msg(strncmp(err, "bad.cpyprof: ", 13) == 0, "%s", err);
        }
        cp_profile_free(&p);
        d[k] ^= 0x5A;
    }
    free(d);
}
END_TEST

/* Random damage anywhere (chunk headers too: sizes, types, counts) with CRCs
 * recomputed so the decoders themselves are exercised: no crash, no leak,
 * and every success has consistent references. Fixed seed: reproducible. */
START_TEST(random_mutations)
{
    make_tmp();
    write_reference(tmp_path);
    size_t size;
    uint8_t *orig = read_all(tmp_path, &size);
    unlink(tmp_path);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t *d = malloc(size);
        memcpy(d, orig, size);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            size_t at = CPYPROF_FILE_HEADER_SIZE + (size_t)(seed % (size - 16));
            d[at] = (uint8_t)(seed >> 32);
        }
        /* Recompute each chunk's CRC as stored so content checks run. */
        if (iter % 2 == 0) {
            for (size_t c = 0; c < n_chunks; c++)
                if (chunk_payload_off[c] + chunk_payload_len[c] <= size) {
                    uint32_t crc = cp_crc32(0, d + chunk_payload_off[c], chunk_payload_len[c]);
                    for (int i = 0; i < 4; i++)
                        d[chunk_payload_off[c] - 12 + i] = (uint8_t)(crc >> (8 * i));
                }
        }
        cp_profile p;
        char err[256] = "";
        int r = cp_profile_load_mem(&p, d, size, "fuzz", err, sizeof err);
        if (r == 0) {
            for (size_t t = 0; t < p.n_threads; t++)
                for (size_t i = 0; i < p.threads[t].n_nodes; i++) {
                    const cp_node *n = &p.threads[t].nodes[i];
                    ck_assert_uint_lt(n->func, p.n_funcs);
                    ck_assert(n->parent == CPYPROF_NONE || n->parent < i);
                }
            for (size_t f = 0; f < p.n_funcs; f++)
                ck_assert(p.funcs[f].name == CPYPROF_NONE || p.funcs[f].name < p.n_strings);
            for (size_t e = 0; e < p.n_events; e++)
                ck_assert_uint_lt(p.events[e].thread, p.n_threads);
        } else {
            ck_assert_msg(strncmp(err, "fuzz: ", 6) == 0, "%s", err);
        }
        cp_profile_free(&p);
        free(d);
    }
    free(orig);
}
END_TEST

START_TEST(crc_message_names_chunk)
{
    cp_buf f;
    tb_begin(&f);
    const char *s[] = {"a"};
    tb_strings(&f, 0, s, 1);
    tb_strings(&f, 1, s, 1);
    tb_strings(&f, 2, s, 1);
    f.data[f.len - 1] ^= 1; /* the last byte of the third chunk's payload */
    cp_profile p;
    char err[256];
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len, "out.cpyprof", err, sizeof err), -1);
    ck_assert_str_eq(err, "out.cpyprof: chunk 3 (STRINGS) at offset 74 is corrupt (CRC mismatch)");
    cp_buf_free(&f);
}
END_TEST

START_TEST(bad_magic_and_version)
{
    cp_profile p;
    char err[256];
    const char junk[] = "#!/bin/sh\necho hello world\n";
    ck_assert_int_eq(cp_profile_load_mem(&p, junk, sizeof junk - 1, "out.cpyprof", err, sizeof err),
                     -1);
    ck_assert_str_eq(err, "out.cpyprof: not a cpyprof profile (bad magic)");
    ck_assert_int_eq(cp_profile_load_mem(&p, "", 0, "e", err, sizeof err), -1);
    ck_assert_str_eq(err, "e: empty file (0 bytes), nothing was kept: the profiled process "
                          "ended before it wrote the profile's header (killed?)");

    cp_buf f;
    cp_buf_init(&f);
    cp_buf_bytes(&f, CPYPROF_MAGIC, CPYPROF_MAGIC_LEN);
    cp_buf_u32(&f, 2);
    cp_buf_u32(&f, 0);
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len, "v2.cpyprof", err, sizeof err), -1);
    ck_assert_str_eq(err, "v2.cpyprof: unsupported profile format version 2 "
                          "(this cpyprof reads version 1)");
    cp_buf_free(&f);

    ck_assert_int_eq(cp_profile_load(&p, "/nonexistent/x.cpyprof", err, sizeof err), -1);
    ck_assert_str_eq(err,
                     "cannot read profile '/nonexistent/x.cpyprof': No such file or directory");
}
END_TEST

START_TEST(truncation_message)
{
    cp_buf f;
    tb_begin(&f);
    const char *s[] = {"abc"};
    tb_strings(&f, 0, s, 1);
    cp_profile p;
    char err[256], warn[256];
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len, "t", err, sizeof err), 0);
    ck_assert(cp_profile_warning(&p, warn, sizeof warn));
    ck_assert_str_eq(warn, "profile is truncated (no trailer): kept 1 chunk, 47 of 47 bytes");
    cp_profile_free(&p);
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len - 1, "t", err, sizeof err), 0);
    ck_assert(cp_profile_warning(&p, warn, sizeof warn));
    ck_assert_str_eq(warn, "profile is truncated (chunk 1 (STRINGS) at offset 16 cut short: "
                           "14 of 15 bytes): kept 0 chunks, 16 of 46 bytes");
    cp_profile_free(&p);
    cp_buf_free(&f);
}
END_TEST

/* A complete file that refers to an undefined function or string is corrupt. */
START_TEST(undefined_references)
{
    cp_buf f;
    cp_profile p;
    char err[256];
    struct cpyprof_trailer_rec tr = {0};
    const char *s[] = {"f"};
    struct cpyprof_func_rec fn = {.id = 0, .name = 0, .file = 9};

    tb_begin(&f);
    tb_strings(&f, 0, s, 1);
    tb_funcs(&f, &fn, 1);
    tb_trailer(&f, &tr);
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len, "u", err, sizeof err), -1);
    ck_assert_str_eq(err,
                     "u: corrupt profile: function 0 refers to string 9, which is not defined");
    cp_buf_free(&f);

    fn.file = CPYPROF_NONE;
    tb_node n[] = {{CPYPROF_NONE, 0, 1, 10}, {0, 5, 1, 5}};
    tb_begin(&f);
    tb_strings(&f, 0, s, 1);
    tb_funcs(&f, &fn, 1);
    tb_tree(&f, 3, n, 2);
    tb_trailer(&f, &tr);
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len, "u", err, sizeof err), -1);
    ck_assert_str_eq(err, "u: corrupt profile: the tree of thread 3 refers to function 5, which "
                          "is not defined");

    /* Without the trailer the same file is a truncated one: the node points
     * at "[unknown]", and the undescribed thread 3 exists. */
    f.len -= CPYPROF_CHUNK_HEADER_SIZE + sizeof(struct cpyprof_trailer_rec);
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len, "u", err, sizeof err), 0);
    ck_assert(p.truncated);
    ck_assert_uint_eq(p.unresolved, 1);
    ck_assert_uint_eq(p.n_threads, 1);
    ck_assert(!p.threads[0].defined);
    ck_assert_uint_eq(p.threads[0].rec.id, 3);
    ck_assert_uint_eq(p.n_funcs, 2);
    ck_assert_str_eq(cp_profile_string(&p, p.funcs[p.threads[0].nodes[1].func].name), "[unknown]");
    cp_profile_free(&p);

    /* A parent that does not come before its node. */
    tb_node bad[] = {{1, 0, 1, 10}, {CPYPROF_NONE, 0, 1, 5}};
    cp_buf_free(&f);
    tb_begin(&f);
    tb_tree(&f, 0, bad, 2);
    ck_assert_int_eq(cp_profile_load_mem(&p, f.data, f.len, "u", err, sizeof err), -1);
    ck_assert_str_eq(err, "u: chunk 1 (TREE) at offset 16 is corrupt (a node's parent does not "
                          "come before it)");
    cp_buf_free(&f);
}
END_TEST

START_TEST(writer_full_disk)
{
    cp_writer w;
    char err[256];
    ck_assert_int_eq(cp_writer_open(&w, "/dev/full", err, sizeof err), -1);
    ck_assert_str_eq(err, "cannot write profile '/dev/full': No space left on device");
    ck_assert(w.failed);
    ck_assert_uint_eq(w.errors, 1);
    ck_assert_int_eq(cp_writer_chunk(&w, CPYPROF_CHUNK_META, "x", 1, err, sizeof err), -1);
    ck_assert_str_eq(err, "cannot write profile '/dev/full': No space left on device");
    ck_assert_uint_eq(w.errors, 2);
    ck_assert_int_eq(cp_writer_close(&w, err, sizeof err), 0);
}
END_TEST

START_TEST(writer_bad_paths)
{
    cp_writer w;
    char err[256];
    ck_assert_int_eq(cp_writer_open(&w, "/nonexistent/dir/p.cpyprof", err, sizeof err), -1);
    ck_assert_str_eq(err, "cannot write profile '/nonexistent/dir/p.cpyprof': No such file or "
                          "directory");
    ck_assert_int_eq(cp_writer_check_path("/nonexistent/dir/p.cpyprof", err, sizeof err), -1);
    ck_assert_int_eq(cp_writer_check_path("/tmp", err, sizeof err), -1);
    ck_assert_str_eq(err, "cannot write profile '/tmp': Is a directory");

    /* Checking a new path leaves nothing behind; an existing file is kept. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/cpyprof-check-%d", (int)getpid());
    unlink(path);
    ck_assert_int_eq(cp_writer_check_path(path, err, sizeof err), 0);
    ck_assert_int_eq(access(path, F_OK), -1);
    FILE *f = fopen(path, "w");
    fputs("keep", f);
    fclose(f);
    ck_assert_int_eq(cp_writer_check_path(path, err, sizeof err), 0);
    size_t n;
    uint8_t *d = read_all(path, &n);
    ck_assert_uint_eq(n, 4);
    free(d);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("format");
    TCase *tc = tcase_create("format");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crc_known_value);
    tcase_add_test(tc, crc_long_inputs);
    tcase_add_test(tc, buf_encoding);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, truncation_at_every_offset);
    tcase_add_test(tc, damage_every_byte);
    tcase_add_test(tc, random_mutations);
    tcase_add_test(tc, crc_message_names_chunk);
    tcase_add_test(tc, bad_magic_and_version);
    tcase_add_test(tc, truncation_message);
    tcase_add_test(tc, undefined_references);
    tcase_add_test(tc, writer_full_disk);
    tcase_add_test(tc, writer_bad_paths);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
