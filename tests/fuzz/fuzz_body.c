/*
 * fuzz_body.c — one fuzz input through the reader and every consumer of a
 * loaded profile (see fuzz_body.h).
 *
 * Random mutations almost never keep a chunk's CRC right, so the reader
 * would refuse nearly every mutant before decoding it. The input is
 * therefore loaded twice: once exactly as given (the CRC check, the chunk
 * walk and truncation handling), and once with every complete chunk's CRC
 * recomputed (the decoders, id resolution and all consumers).
 *
 * The SVG adapter mirrors tools/cmd_flame.c (its draw() is static); the
 * speedscope adapter is the tool's own export_speedscope() from
 * tools/convert_speedscope.c, linked in.
 *
 * Documented invariants of the derived views (model.h) are checked and a
 * violation aborts, so the fuzzer reports it like a crash.
 */
#include "fuzz_body.h"

#include "convert.h"     /* tools/: export_speedscope */
#include "core/writer.h" /* cp_crc32 */
#include "report/alloc.h"
#include "report/chrome.h"
#include "report/pprof.h"
#include "report/folded.h"
#include "report/model.h"
#include "report/profile.h"
#include "report/samples_table.h"
#include "report/svg.h"
#include "report/table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_body.c:%d: invariant broken: %s\n", __LINE__, #cond);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static FILE *sink(void)
{
    static FILE *out;
    if (!out) {
        out = fopen("/dev/null", "w");
        if (!out) {
            perror("fuzz: /dev/null");
            abort();
        }
    }
    return out;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

/* Rewrites the CRC of every complete chunk of buf; returns true when one
 * changed. Stops after a TRAILER, like the reader. */
static bool fix_crcs(uint8_t *buf, size_t size)
{
    bool changed = false;
    size_t off = CPYPROF_FILE_HEADER_SIZE;
    while (size >= off && size - off >= CPYPROF_CHUNK_HEADER_SIZE) {
        uint64_t len = rd64(buf + off + 8);
        if (len > size - off - CPYPROF_CHUNK_HEADER_SIZE)
            break;
        uint32_t crc = cp_crc32(0, buf + off + CPYPROF_CHUNK_HEADER_SIZE, (size_t)len);
        if (rd32(buf + off + 4) != crc) {
            for (int i = 0; i < 4; i++)
                buf[off + 4 + i] = (uint8_t)(crc >> (8 * i));
            changed = true;
        }
        uint32_t type = rd32(buf + off);
        off += CPYPROF_CHUNK_HEADER_SIZE + (size_t)len;
        if (type == CPYPROF_CHUNK_TRAILER)
            break;
    }
    return changed;
}

/* ---- views --------------------------------------------------------------- */

static void check_profile(const cp_profile *p)
{
    char buf[512];
    bool warned = cp_profile_warning(p, buf, sizeof buf);
    CHECK(warned == p->truncated);
    CHECK(p->bytes_kept <= p->file_size);
    for (size_t i = 0; i < p->n_meta; i++) {
        CHECK(p->meta[i].key && p->meta[i].value);
        size_t len;
        CHECK(cp_profile_meta_len(p, p->meta[i].key, &len) != NULL);
    }
    for (size_t i = 0; i < p->n_strings; i++)
        CHECK(p->strings[i] && p->strings[i][p->string_lens[i]] == '\0');
    for (size_t i = 0; i < p->n_funcs; i++) {
        if (i)
            CHECK(p->funcs[i - 1].id < p->funcs[i].id);
        CHECK(cp_profile_func_index(p, p->funcs[i].id) == (long)i);
        cp_func_label(p, (uint32_t)i, buf, sizeof buf);
        cp_func_location(p, (uint32_t)i, buf, sizeof buf);
        CHECK(cp_func_name(p, (uint32_t)i) && cp_func_file(p, (uint32_t)i));
    }
    for (size_t t = 0; t < p->n_threads; t++) {
        const cp_thread *th = &p->threads[t];
        if (t)
            CHECK(p->threads[t - 1].rec.id < th->rec.id);
        CHECK(cp_profile_thread_index(p, th->rec.id) == (long)t);
        cp_thread_name(p, t, buf, sizeof buf);
        for (size_t k = 0; k < th->n_nodes; k++) {
            CHECK(th->nodes[k].parent == CPYPROF_NONE || th->nodes[k].parent < k);
            CHECK(th->nodes[k].func < p->n_funcs);
        }
    }
    for (size_t e = 0; e < p->n_events; e++)
        CHECK(p->events[e].thread < p->n_threads);
}

static int walk_cb(void *ctx, const cp_thread *t, const uint32_t *path, size_t depth, bool leave)
{
    CHECK(depth >= 1 && path[depth - 1] < t->n_nodes);
    if (depth >= 2)
        CHECK(t->nodes[path[depth - 1]].parent == path[depth - 2]);
    else
        CHECK(t->nodes[path[0]].parent == CPYPROF_NONE);
    (*(size_t *)ctx) += !leave;
    return 0;
}

static void run_flat(const cp_profile *p, long thread)
{
    char err[512];
    cp_flat f;
    if (cp_flat_build(p, thread, &f, err, sizeof err))
        return;
    for (size_t i = 0; i < f.n; i++) {
        CHECK(f.rows[i].func < p->n_funcs);
        if (i)
            CHECK(f.rows[i - 1].func < f.rows[i].func);
    }
    for (int key = CP_SORT_CALLS; key <= CP_SORT_NAME; key++)
        cp_flat_sort(&f, p, (cp_sort_key)key);
    cp_flat_free(&f);
}

static void check_merged(const cp_profile *p, const cp_merged *m, const uint32_t *order)
{
    for (size_t i = 0; i < m->n_frames; i++) {
        const cp_mframe *f = &m->frames[i];
        CHECK(f->label && f->name);
        for (const unsigned char *c = (const unsigned char *)f->label; *c; c++)
            CHECK(*c != ';' && *c >= 0x20);
        if (i)
            CHECK(strcmp(m->frames[i - 1].label, f->label) < 0);
        CHECK(f->func == CPYPROF_NONE || f->func < p->n_funcs);
        CHECK(f->thread == CPYPROF_NONE || f->thread < p->n_threads);
    }
    for (size_t i = 0; i < m->n; i++) {
        const cp_mnode *n = &m->nodes[i];
        if (i == 0) {
            CHECK(n->parent == CPYPROF_NONE && n->depth == 0);
            continue;
        }
        CHECK(n->parent < i);
        CHECK(n->frame < m->n_frames);
        CHECK(n->depth == m->nodes[n->parent].depth + 1);
    }
    if (m->n) {
        CHECK(order[0] == 0);
        unsigned char *seen = calloc(m->n, 1);
        CHECK(seen);
        for (size_t k = 0; k < m->n; k++) {
            CHECK(order[k] < m->n && !seen[order[k]]);
            seen[order[k]] = 1;
            if (k)
                CHECK(seen[m->nodes[order[k]].parent]); /* parent before child */
        }
        free(seen);
    }
}

/* Mirrors draw() in tools/cmd_flame.c. */
static void run_svg(const cp_profile *p, const cp_merged *m, const uint32_t *order, bool inverted)
{
    char err[512];
    uint32_t *pos = malloc((m->n ? m->n : 1) * sizeof *pos);
    cp_flame_node *nodes = malloc((m->n ? m->n : 1) * sizeof *nodes);
    CHECK(pos && nodes);
    for (size_t k = 0; k < m->n; k++)
        pos[order[k]] = (uint32_t)k;
    for (size_t k = 0; k < m->n; k++) {
        const cp_mnode *n = &m->nodes[order[k]];
        if (k == 0) {
            nodes[0] = (cp_flame_node){"all", NULL, UINT32_MAX, n->total_ns, CPYPROF_FUNC_SPECIAL};
            continue;
        }
        const cp_mframe *f = &m->frames[n->frame];
        nodes[k] = (cp_flame_node){f->name, f->detail, pos[n->parent], n->total_ns, f->kind};
    }
    char subtitle[128];
    snprintf(subtitle, sizeof subtitle, "%zu threads", p->n_threads);
    const char *mode = cp_profile_meta(p, "mode");
    cp_svg_options opt = {
        .title = mode ? mode : "fuzz", .subtitle = subtitle, .unit = "ns", .inverted = inverted};
    cp_svg_write(sink(), nodes, m->n, &opt, err, sizeof err);
    free(pos);
    free(nodes);
}

static void run_merged(const cp_profile *p, bool per_thread)
{
    char err[512];
    cp_merged m;
    if (cp_merged_build(p, per_thread, &m, err, sizeof err))
        return;
    uint32_t *order = malloc((m.n ? m.n : 1) * sizeof *order);
    CHECK(order);
    cp_merged_preorder(&m, order);
    check_merged(p, &m, order);
    run_svg(p, &m, order, per_thread);
    free(order);
    cp_merged_free(&m);
}

static void consume(const cp_profile *p, unsigned sel)
{
    char err[1024];
    FILE *out = sink();
    check_profile(p);

    size_t visited = 0;
    for (size_t t = 0; t < p->n_threads; t++) {
        size_t before = visited;
        CHECK(cp_tree_walk(&p->threads[t], walk_cb, &visited) == 0);
        CHECK(visited - before == p->threads[t].n_nodes);
    }

    run_flat(p, -1);
    for (size_t t = 0; t < p->n_threads; t++)
        run_flat(p, (long)t);

    run_merged(p, false);
    run_merged(p, true);

    cp_folded_write(out, p, false, err, sizeof err);
    cp_folded_write(out, p, true, err, sizeof err);

    cp_table_options o = {.source = "fuzz", .sort = (cp_sort_key)(sel % 6), .limit = 0};
    for (int pt = 0; pt < 2; pt++) {
        o.per_thread = pt;
        o.limit = pt ? 3 : 0;
        cp_table_write(out, p, &o, err, sizeof err);
        cp_report_json_write(out, p, &o, err, sizeof err);
        cp_samples_table_write(out, p, &o, err, sizeof err); /* any profile, not only p->samples */
    }

    convert_options co = {.per_thread = false, .source = "fuzz"};
    export_speedscope(out, p, &co, err, sizeof err);

    cp_pb pb = {0};
    if (cp_pprof_encode(p, NULL, &pb, err, sizeof err) == 0)
        CHECK(pb.len > 0);
    cp_pb_free(&pb);
    fflush(out);
    clearerr(out);
}

/* The ALLOC and GC chunks (report/alloc.h reads them from the image). */
static void run_alloc(const cp_profile *p, const uint8_t *data, size_t size)
{
    cp_alloc_data a;
    char err[1024];
    if (cp_alloc_parse(data, size, &a, err, sizeof err) != 0)
        return;
    FILE *out = sink();
    cp_alloc_print(out, p, &a, 0);
    cp_alloc_print(out, p, &a, 2);
    cp_alloc_print_json(out, p, &a);
    for (int metric = 0; metric < 2; metric++) {
        cp_flame_node *nodes;
        size_t n;
        char *names;
        if (cp_alloc_flame(p, &a, metric, &nodes, &n, &names, err, sizeof err) == 0) {
            CHECK(n >= 2 && nodes[0].parent == UINT32_MAX);
            for (size_t i = 1; i < n; i++) /* pre-order, children within their parent */
                CHECK(nodes[i].parent < i && nodes[i].total <= nodes[nodes[i].parent].total);
            cp_svg_options opt = {.title = "fuzz", .unit = "bytes"};
            cp_svg_write(out, nodes, n, &opt, err, sizeof err);
            free(nodes);
            free(names);
        }
    }
    fflush(out);
    clearerr(out);
    cp_alloc_free(&a);
}

/* The timeline reader (TIMELINE/TIMELINE_INFO chunks, streamed) and the
 * Chrome export, with and without filters. */
static void run_timeline(const uint8_t *data, size_t size, unsigned sel)
{
    if (size == 0)
        return;
    FILE *f = fmemopen((void *)data, size, "rb");
    CHECK(f);
    cp_tl_file t;
    char err[1024];
    if (cp_tl_open_stream(&t, f, size, "fuzz", err, sizeof err) != 0) {
        CHECK(strncmp(err, "fuzz", 4) == 0);
        return;
    }
    static const char *const globs[] = {"*a*"};
    cp_tl_filter none = {0};
    cp_tl_filter some = {.min_duration_ns = sel % 100,
                         .max_depth = 1 + sel % 5,
                         .include = globs,
                         .n_include = sel & 1,
                         .exclude = globs,
                         .n_exclude = (sel >> 1) & 1};
    cp_chrome_stats st;
    for (int k = 0; k < 2; k++) {
        if (cp_chrome_write(sink(), &t, "fuzz", k ? &some : &none, &t.alloc, &st, err,
                            sizeof err) == 0)
            CHECK(st.slices + st.filtered <= st.events);
    }
    fflush(sink());
    clearerr(sink());
    cp_tl_close(&t);
}

static void load_and_consume(const uint8_t *data, size_t size, unsigned sel)
{
    run_timeline(data, size, sel);
    cp_profile p;
    char err[1024];
    if (cp_profile_load_mem(&p, data, size, "fuzz", err, sizeof err) == 0) {
        CHECK(p.file_size == size);
        consume(&p, sel);
        run_alloc(&p, data, size);
    } else {
        CHECK(strncmp(err, "fuzz", 4) == 0); /* messages start with the name */
    }
    cp_profile_free(&p);
    cp_profile_free(&p); /* documented safe on an empty profile */
}

int cp_fuzz_one(const uint8_t *data, size_t size)
{
    unsigned sel = size ? data[size - 1] : 0;
    load_and_consume(data, size, sel);

    if (size > CPYPROF_FILE_HEADER_SIZE) {
        uint8_t *copy = malloc(size);
        CHECK(copy);
        memcpy(copy, data, size);
        if (fix_crcs(copy, size))
            load_and_consume(copy, size, sel);
        free(copy);
    }
    return 0;
}
