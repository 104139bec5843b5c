/*
 * convert_speedscope.c — a profile as speedscope JSON (report/speedscope.h).
 *
 * The per-thread merged tree gives one speedscope profile per thread: every
 * tree node with self time becomes one "sample" whose stack is the path of
 * frames from the thread's root and whose weight is that self time. That is
 * the same information as folded stacks, so speedscope's "left heavy" and
 * "sandwich" views show exact trace totals. For a sampled profile the
 * weights are sample counts (unit "none").
 *
 * Hazard: a stack is stored for every node, so very deep trees cost depth x
 * nodes entries; a cap turns a runaway into a message instead of swapping.
 */
#include "cli.h"
#include "convert.h"
#include "core/version.h"
#include "report/model.h"
#include "report/speedscope.h"

#include <stdlib.h>
#include <string.h>

#define MAX_STACK_ENTRIES (1ull << 27) /* 512 MiB of uint32_t */

typedef struct ss_build {
    cp_ss_frame *frames;
    cp_ss_thread *threads;
    size_t n_threads;
    cp_ss_sample *samples;
    uint32_t *stacks;
    char (*names)[300];
} ss_build;

static void ss_free(ss_build *b)
{
    free(b->frames);
    free(b->threads);
    free(b->samples);
    free(b->stacks);
    free(b->names);
}

static int by_thread(const void *a, const void *b, void *ctx)
{
    const cp_merged *m = ctx;
    uint32_t x = m->frames[m->nodes[*(const uint32_t *)a].frame].thread;
    uint32_t y = m->frames[m->nodes[*(const uint32_t *)b].frame].thread;
    return x < y ? -1 : x > y;
}

int export_speedscope(FILE *out, const cp_profile *p, const convert_options *o, char *err,
                      size_t errlen)
{
    cp_merged m;
    if (cp_merged_build(p, true, &m, err, errlen))
        return -1;
    ss_build b = {0};
    uint32_t *order = malloc(m.n * sizeof *order);
    uint32_t *path = malloc((m.n + 1) * sizeof *path);
    uint32_t *tops = malloc(m.n * sizeof *tops); /* the thread frames */
    int r = -1;
    b.frames = malloc((m.n_frames ? m.n_frames : 1) * sizeof *b.frames);
    b.samples = malloc(m.n * sizeof *b.samples);
    if (!order || !path || !tops || !b.frames || !b.samples)
        goto oom;
    for (size_t i = 0; i < m.n_frames; i++) {
        const cp_mframe *f = &m.frames[i];
        bool py = f->func != CPYPROF_NONE && p->funcs[f->func].kind == CPYPROF_FUNC_PYTHON;
        b.frames[i] = (cp_ss_frame){
            f->name,
            f->func != CPYPROF_NONE ? cp_profile_string(p, p->funcs[f->func].file) : NULL,
            py ? p->funcs[f->func].line : 0,
        };
    }

    /* Stack storage: each node with self time needs depth-1 entries. */
    unsigned long long entries = 0;
    for (size_t i = 1; i < m.n; i++)
        if (m.nodes[i].self_ns && m.nodes[i].depth > 1)
            entries += m.nodes[i].depth - 1;
    if (entries > MAX_STACK_ENTRIES) {
        snprintf(err, errlen,
                 "the call trees are too deep to export to speedscope "
                 "(%llu stack entries)",
                 entries);
        goto done;
    }
    b.stacks = malloc((entries ? entries : 1) * sizeof *b.stacks);
    if (!b.stacks)
        goto oom;

    size_t n_tops = 0;
    for (uint32_t c = m.n ? m.nodes[0].first_child : CPYPROF_NONE; c != CPYPROF_NONE;
         c = m.nodes[c].next_sibling)
        tops[n_tops++] = c;
    qsort_r(tops, n_tops, sizeof *tops, by_thread, &m);
    b.threads = calloc(n_tops ? n_tops : 1, sizeof *b.threads);
    b.names = calloc(n_tops ? n_tops : 1, sizeof *b.names);
    if (!b.threads || !b.names)
        goto oom;

    cp_merged_preorder(&m, order);
    size_t n_samples = 0, used = 0;
    for (size_t t = 0; t < n_tops; t++) {
        uint32_t th = m.frames[m.nodes[tops[t]].frame].thread;
        char name[256];
        snprintf(b.names[t], sizeof b.names[t], "%s (tid %llu)",
                 cp_thread_name(p, th, name, sizeof name),
                 (unsigned long long)p->threads[th].rec.native_tid);
        b.threads[t].name = b.names[t];
        b.threads[t].samples = b.samples + n_samples;
        /* The thread's subtree is a contiguous run of the pre-order. */
        size_t k = 0;
        while (order[k] != tops[t])
            k++;
        uint32_t base = m.nodes[tops[t]].depth;
        for (k++; k < m.n && m.nodes[order[k]].depth > base; k++) {
            const cp_mnode *n = &m.nodes[order[k]];
            uint32_t d = n->depth - base; /* 1 for the thread's roots */
            path[d - 1] = n->frame;
            if (!n->self_ns)
                continue;
            memcpy(b.stacks + used, path, d * sizeof *path);
            b.samples[n_samples++] = (cp_ss_sample){b.stacks + used, d, n->self_ns};
            used += d;
        }
        b.threads[t].nsamples = (size_t)(b.samples + n_samples - b.threads[t].samples);
    }
    b.n_threads = n_tops;

    char command[1024], exporter[64];
    const char *title = cli_profile_command(p, command, sizeof command);
    snprintf(exporter, sizeof exporter, "cpyprof %s", cp_version());
    cp_ss_options opt = {.name = title ? title : o->source,
                         .exporter = exporter,
                         /* sampled: weights are sample counts, speedscope's unit "none" */
                         .unit = p->samples ? CP_SS_UNIT_NONE : CP_SS_UNIT_NANOSECONDS};
    r = cp_speedscope_write(out, b.frames, m.n_frames, b.threads, b.n_threads, &opt, err, errlen);
    goto done;
oom:
    snprintf(err, errlen, "out of memory while exporting to speedscope");
done:
    free(order);
    free(path);
    free(tops);
    ss_free(&b);
    cp_merged_free(&m);
    return r;
}
