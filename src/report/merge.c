/*
 * merge.c — several processes' profiles as one (cp_profile_merge, profile.h).
 *
 * With the subprocesses option every process writes its own file. Merging
 * renumbers what each file numbers on its own (strings, functions, threads)
 * into one id space, and puts one frame per process at the root of each of
 * its threads' trees: the process's calls and time are then the sum of its
 * threads', and two processes running the same function stay apart in a
 * flamegraph.
 */
#include "report/profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_COMMAND_MAX 120 /* characters of the command line in a process frame */

/* "process PID: COMMAND" from the part's META (pid, argv). */
static size_t process_label(const cp_profile *p, char *buf, size_t n)
{
    const char *pid = cp_profile_meta(p, "pid");
    size_t alen = 0;
    const char *argv = cp_profile_meta_len(p, "argv", &alen);
    int w = snprintf(buf, n, "process %s", pid ? pid : "?");
    size_t len = w > 0 ? (size_t)w : 0;
    if (argv && alen && len + 3 < n) {
        buf[len++] = ':';
        buf[len++] = ' ';
        size_t cap = n - len - 1, shown = alen < LABEL_COMMAND_MAX ? alen : LABEL_COMMAND_MAX;
        for (size_t i = 0; i < shown && i < cap; i++) {
            unsigned char c = (unsigned char)argv[i];
            buf[len++] = c == '\0' ? ' ' : (c < 0x20 || c == 0x7f || c == ';') ? '?' : (char)c;
        }
        if (alen > shown && len + 3 < n) {
            memcpy(buf + len, "...", 3);
            len += 3;
        }
        buf[len] = '\0';
    }
    return len;
}

static long long meta_ll(const cp_profile *p, const char *key)
{
    const char *v = cp_profile_meta(p, key);
    return v ? strtoll(v, NULL, 10) : 0;
}

static const cp_profile *sort_base;
static int cmp_start(const void *a, const void *b)
{
    const cp_profile *x = &sort_base[*(const size_t *)a], *y = &sort_base[*(const size_t *)b];
    long long sx = meta_ll(x, "start_unix_ns"), sy = meta_ll(y, "start_unix_ns");
    if (sx != sy)
        return sx < sy ? -1 : 1;
    long long px = meta_ll(x, "pid"), py = meta_ll(y, "pid");
    return px < py ? -1 : px > py;
}

static int oom(char *err, size_t errlen)
{
    snprintf(err, errlen, "out of memory while merging profiles");
    return -1;
}

int cp_profile_merge(cp_profile *parts, size_t n, cp_profile *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    size_t n_strings = n, n_funcs = n, n_threads = 0, n_events = 0;
    int rc = -1;
    if (!order) {
        oom(err, errlen);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        order[i] = i;
        if (parts[i].samples != parts[0].samples) {
            snprintf(err, errlen,
                     "cannot merge a sampled profile (record --mode sample) with a "
                     "traced one");
            goto done;
        }
        n_strings += parts[i].n_strings;
        n_funcs += parts[i].n_funcs;
        n_threads += parts[i].n_threads;
        n_events += parts[i].n_events;
    }
    sort_base = parts;
    qsort(order, n, sizeof *order, cmp_start);

    out->strings = calloc(n_strings ? n_strings : 1, sizeof *out->strings);
    out->string_lens = calloc(n_strings ? n_strings : 1, sizeof *out->string_lens);
    out->funcs = calloc(n_funcs ? n_funcs : 1, sizeof *out->funcs);
    out->threads = calloc(n_threads ? n_threads : 1, sizeof *out->threads);
    out->events = calloc(n_events ? n_events : 1, sizeof *out->events);
    if (!out->strings || !out->string_lens || !out->funcs || !out->threads || !out->events) {
        oom(err, errlen);
        goto done;
    }
    out->samples = n ? parts[0].samples : false;
    out->has_trailer = n > 0;
    for (size_t k = 0; k < n; k++) {
        cp_profile *p = &parts[order[k]];
        uint32_t sbase = (uint32_t)out->n_strings, fbase = (uint32_t)out->n_funcs;
        uint32_t tbase = (uint32_t)out->n_threads;
        for (size_t i = 0; i < p->n_strings; i++) {
            out->strings[out->n_strings] = p->strings[i];
            out->string_lens[out->n_strings++] = p->string_lens[i];
        }
        for (size_t i = 0; i < p->n_funcs; i++) {
            struct cpyprof_func_rec f = p->funcs[i];
            f.id = (uint32_t)out->n_funcs;
            f.name = f.name == CPYPROF_NONE ? CPYPROF_NONE : f.name + sbase;
            f.file = f.file == CPYPROF_NONE ? CPYPROF_NONE : f.file + sbase;
            out->funcs[out->n_funcs++] = f;
        }
        /* The process frame: a function and a string of its own. */
        char label[256];
        size_t llen = process_label(p, label, sizeof label);
        const char *text = cp_profile_add_text(out, label, llen);
        if (!text) {
            oom(err, errlen);
            goto done;
        }
        uint32_t label_id = (uint32_t)out->n_strings;
        out->strings[out->n_strings] = text;
        out->string_lens[out->n_strings++] = (uint32_t)llen;
        uint32_t proc_func = (uint32_t)out->n_funcs;
        out->funcs[out->n_funcs++] = (struct cpyprof_func_rec){
            .id = proc_func, .name = label_id, .file = CPYPROF_NONE, .kind = CPYPROF_FUNC_SPECIAL};

        for (size_t t = 0; t < p->n_threads; t++) {
            cp_thread *src = &p->threads[t];
            cp_thread *dst = &out->threads[out->n_threads];
            *dst = *src;
            dst->rec.id = (uint32_t)out->n_threads;
            if (dst->rec.name != CPYPROF_NONE)
                dst->rec.name += sbase;
            dst->nodes = malloc((src->n_nodes + 1) * sizeof *dst->nodes);
            if (!dst->nodes) {
                oom(err, errlen);
                goto done;
            }
            out->n_threads++;
            cp_node root = {.parent = CPYPROF_NONE, .func = proc_func, .calls = t == 0};
            for (size_t i = 0; i < src->n_nodes; i++) {
                cp_node nd = src->nodes[i];
                nd.func += fbase;
                if (nd.parent == CPYPROF_NONE) {
                    nd.parent = 0;
                    root.total_ns += nd.total_ns;
                } else {
                    nd.parent += 1;
                }
                dst->nodes[i + 1] = nd;
            }
            dst->nodes[0] = root;
            dst->n_nodes = src->n_nodes + 1;
        }
        for (size_t i = 0; i < p->n_events; i++) {
            cp_event e = p->events[i];
            e.thread += tbase;
            if (e.rec.kind == CPYPROF_EV_CALL || e.rec.kind == CPYPROF_EV_RETURN) {
                long fi = cp_profile_func_index(p, e.rec.a);
                e.rec.a = fi < 0 ? CPYPROF_NONE : fbase + (uint32_t)fi;
            }
            out->events[out->n_events++] = e;
        }
        /* Trailers: counters add up; the run lasted as long as the longest. */
        struct cpyprof_trailer_rec *tr = &out->trailer;
        tr->events_written += p->trailer.events_written;
        tr->events_dropped += p->trailer.events_dropped;
        tr->calls_untracked += p->trailer.calls_untracked;
        tr->threads += p->trailer.threads;
        tr->write_errors += p->trailer.write_errors;
        if (p->trailer.duration_ns > tr->duration_ns)
            tr->duration_ns = p->trailer.duration_ns;
        if (k == 0) {
            tr->end_reason = p->trailer.end_reason;
            tr->end_signal = p->trailer.end_signal;
        }
        out->has_trailer = out->has_trailer && p->has_trailer;
        if (p->truncated && !out->truncated) {
            out->truncated = true;
            snprintf(out->truncation, sizeof out->truncation, "process %.20s: %.160s",
                     cp_profile_meta(p, "pid") ? cp_profile_meta(p, "pid") : "?", p->truncation);
        }
        out->file_size += p->file_size;
        out->bytes_kept += p->bytes_kept;
        out->chunks_kept += p->chunks_kept;
        out->chunks_unknown += p->chunks_unknown;
        out->trailing_bytes += p->trailing_bytes;
        out->unresolved += p->unresolved;
    }
    if (!out->has_trailer)
        memset(&out->trailer, 0, sizeof out->trailer);
    /* META: the first (earliest) process's, plus how many were merged. */
    if (n) {
        cp_profile *first = &parts[order[0]];
        out->meta = calloc(first->n_meta + 1, sizeof *out->meta);
        if (!out->meta) {
            oom(err, errlen);
            goto done;
        }
        memcpy(out->meta, first->meta, first->n_meta * sizeof *out->meta);
        out->n_meta = first->n_meta;
        char v[32];
        int w = snprintf(v, sizeof v, "%zu", n);
        const char *key = cp_profile_add_text(out, "processes", 9);
        const char *val = cp_profile_add_text(out, v, (size_t)w);
        if (!key || !val) {
            oom(err, errlen);
            goto done;
        }
        out->meta[out->n_meta++] = (cp_meta_entry){key, val, (uint32_t)w};
    }
    rc = 0;
done:
    for (size_t i = 0; i < n; i++) {
        cp_profile_take_text(out, &parts[i]);
        cp_profile_free(&parts[i]);
    }
    free(order);
    if (rc != 0)
        cp_profile_free(out);
    return rc;
}
