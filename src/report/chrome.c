/*
 * chrome.c — Chrome Trace Event JSON from a timeline (see chrome.h).
 *
 * Speed: 10 million events must convert in seconds. Per event the loop does
 * a table lookup of the function's pre-escaped JSON fragment, two hand-made
 * number conversions and memcpys into a 1 MiB output buffer; nothing is
 * allocated per event.
 */
#include "report/chrome.h"
#include "report/model.h"
#include "report/text.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#define OUT_CAP (1u << 20)

typedef struct out_buf {
    FILE *f;
    char *b;
    size_t n;
    bool failed;
    int err; /* errno of the first failure: the message says why */
} out_buf;

static void ob_fail(out_buf *o)
{
    if (!o->failed)
        o->err = errno ? errno : EIO;
    o->failed = true;
}

static void ob_flush(out_buf *o)
{
    if (o->n && fwrite(o->b, 1, o->n, o->f) != o->n)
        ob_fail(o);
    o->n = 0;
}

static inline void ob_put(out_buf *o, const char *s, size_t n)
{
    if (OUT_CAP - o->n < n) {
        ob_flush(o);
        if (n > OUT_CAP) {
            if (fwrite(s, 1, n, o->f) != n)
                ob_fail(o);
            return;
        }
    }
    memcpy(o->b + o->n, s, n);
    o->n += n;
}

#define OB_LIT(o, s) ob_put((o), (s), sizeof(s) - 1)

/* Decimal digits of v into the end of tmp; returns the start. */
static inline char *u64_digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static inline void ob_u64(out_buf *o, uint64_t v)
{
    char tmp[24];
    char *s = u64_digits(v, tmp + sizeof tmp);
    ob_put(o, s, (size_t)(tmp + sizeof tmp - s));
}

/* ns as µs with three decimals: 1234567 -> "1234.567"; negatives clamp to 0. */
static inline void ob_us(out_buf *o, int64_t ns)
{
    uint64_t v = ns > 0 ? (uint64_t)ns : 0;
    char tmp[32];
    char *end = tmp + sizeof tmp;
    uint64_t frac = v % 1000;
    end[-1] = (char)('0' + frac % 10);
    end[-2] = (char)('0' + frac / 10 % 10);
    end[-3] = (char)('0' + frac / 100);
    end[-4] = '.';
    char *s = u64_digits(v / 1000, end - 4);
    ob_put(o, s, (size_t)(end - s));
}

/* A JSON string literal through cp_json_string (validated UTF-8). */
static void ob_json(out_buf *o, const char *s)
{
    char *m = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&m, &n);
    if (!f) {
        ob_fail(o);
        return;
    }
    cp_json_string(f, s ? s : "", s ? strlen(s) : 0);
    fclose(f);
    ob_put(o, m, n);
    free(m);
}

/* The pre-escaped middle of a function's events:
 * "name":"...","cat":"python","args":{"file":"...","line":N  (args left open). */
static char *make_fragment(const cp_profile *p, long fi, size_t *len, bool *args_empty)
{
    char *m = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&m, &n);
    if (!f)
        return NULL;
    const char *name = fi >= 0 ? cp_profile_string(p, p->funcs[fi].name) : NULL;
    const char *file = fi >= 0 ? cp_profile_string(p, p->funcs[fi].file) : NULL;
    uint32_t kind = fi >= 0 ? p->funcs[fi].kind : CPYPROF_FUNC_SPECIAL;
    if (!name)
        name = "[unknown]";
    fputs("\"name\":", f);
    cp_json_string(f, name, strlen(name));
    fprintf(f, ",\"cat\":\"%s\",\"args\":{",
            kind == CPYPROF_FUNC_PYTHON    ? "python"
            : kind == CPYPROF_FUNC_BUILTIN ? "builtin"
                                           : "special");
    *args_empty = !file;
    if (file) {
        fputs(kind == CPYPROF_FUNC_BUILTIN ? "\"module\":" : "\"file\":", f);
        cp_json_string(f, file, strlen(file));
        if (kind == CPYPROF_FUNC_PYTHON)
            fprintf(f, ",\"line\":%u", p->funcs[fi].line);
    }
    if (fclose(f) != 0) {
        free(m);
        return NULL;
    }
    *len = n;
    return m;
}

bool cp_tl_filter_keeps(const cp_profile *p, uint32_t func, const cp_tl_filter *f)
{
    if (!f || (f->n_include == 0 && f->n_exclude == 0))
        return true;
    const char *name = func < p->n_funcs ? cp_profile_string(p, p->funcs[func].name) : NULL;
    const char *file = func < p->n_funcs ? cp_profile_string(p, p->funcs[func].file) : NULL;
    bool keep = f->n_include == 0;
    for (size_t i = 0; i < f->n_include && !keep; i++)
        keep = (name && fnmatch(f->include[i], name, 0) == 0) ||
               (file && fnmatch(f->include[i], file, 0) == 0);
    for (size_t i = 0; i < f->n_exclude && keep; i++)
        keep = !((name && fnmatch(f->exclude[i], name, 0) == 0) ||
                 (file && fnmatch(f->exclude[i], file, 0) == 0));
    return keep;
}

typedef struct frag {
    char *s;
    size_t n;
    bool keep;
    bool args_empty; /* "args":{ has nothing yet */
} frag;

typedef struct open_call {
    uint32_t frag;
    uint32_t synth;
    int64_t begin;
} open_call;

typedef struct tstate {
    uint32_t id;  /* file thread id */
    uint64_t tid; /* the "tid" written */
    open_call *stack;
    size_t depth, cap;
    int64_t last_ns;
    /* GIL track (GIL events, gil=exact): the open hold, if any */
    int64_t gil_t0;
    bool gil_open, gil_synth, gil_named;
} tstate;

/* The GIL track of a thread is a track of its own: a "tid" no real thread
 * has (Linux thread ids stay below 2^22; 1000000000 + id is taken by
 * threads without a native id). */
#define GIL_TID_BASE 2000000000ull

typedef struct conv {
    const cp_profile *p;
    out_buf o;
    frag *frags; /* p->n_funcs fragments, then "[unknown]" */
    size_t n_frags;
    uint32_t *by_id; /* dense map file func id -> fragment, when ids are small */
    size_t n_by_id;
    tstate *threads;
    size_t n_threads;
    char pid[24];
    size_t pid_n;
    const cp_tl_filter *filter;
    cp_chrome_stats *st;
} conv;

static uint32_t frag_of(const conv *c, uint32_t id)
{
    if (id < c->n_by_id)
        return c->by_id[id];
    long fi = cp_profile_func_index(c->p, id);
    return fi >= 0 ? (uint32_t)fi : (uint32_t)(c->n_frags - 1);
}

static tstate *thread_of(conv *c, uint32_t id)
{
    for (size_t i = 0; i < c->n_threads; i++)
        if (c->threads[i].id == id)
            return &c->threads[i];
    tstate *q = realloc(c->threads, (c->n_threads + 1) * sizeof *q);
    if (!q)
        return NULL;
    c->threads = q;
    tstate *t = &q[c->n_threads++];
    memset(t, 0, sizeof *t);
    t->id = id;
    long ti = cp_profile_thread_index(c->p, id);
    t->tid = ti >= 0 && c->p->threads[ti].rec.native_tid ? c->p->threads[ti].rec.native_tid
                                                         : (uint64_t)id + 1000000000ull;
    return t;
}

/* end - begin in ns: 0 when end is not after begin, INT64_MAX at most.
 * Times come from the file: a hostile one may put them far apart, and the
 * difference of two int64 can overflow (UBSan, fuzz crashers in emit and
 * emit_gil). */
static int64_t span_ns(int64_t begin, int64_t end)
{
    if (end <= begin)
        return 0;
    uint64_t d = (uint64_t)end - (uint64_t)begin;
    return d > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)d;
}

/* The start of every event: ,\n{"ph":PH,"pid":P,"tid":T (the object left
 * open). ph: 'X' a complete event (a slice), 'M' metadata, 'C' a counter. */
static inline void ob_event(conv *c, char ph, uint64_t tid)
{
    out_buf *o = &c->o;
    char head[] = ",\n{\"ph\":\"?\",\"pid\":"; /* one put: this runs per event */
    head[9] = ph;
    OB_LIT(o, head);
    ob_put(o, c->pid, c->pid_n);
    OB_LIT(o, ",\"tid\":");
    ob_u64(o, tid);
}

/* The start of a slice on track tid from ts_ns lasting dur_ns (negative
 * times are written as 0): its name, category and args follow. */
static inline void ob_slice(conv *c, uint64_t tid, int64_t ts_ns, int64_t dur_ns)
{
    ob_event(c, 'X', tid);
    OB_LIT(&c->o, ",\"ts\":");
    ob_us(&c->o, ts_ns);
    OB_LIT(&c->o, ",\"dur\":");
    ob_us(&c->o, dur_ns);
}

/* Names track tid in the viewer and sets its place in the list: a
 * thread_name and a thread_sort_index metadata event. */
static void ob_track_names(conv *c, uint64_t tid, const char *name, uint64_t sort_index)
{
    out_buf *o = &c->o;
    ob_event(c, 'M', tid);
    OB_LIT(o, ",\"name\":\"thread_name\",\"args\":{\"name\":");
    ob_json(o, name);
    OB_LIT(o, "}}");
    ob_event(c, 'M', tid);
    OB_LIT(o, ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":");
    ob_u64(o, sort_index);
    OB_LIT(o, "}}");
}

static void emit(conv *c, tstate *t, const open_call *oc, int64_t end, uint32_t depth, bool synth)
{
    const frag *fr = &c->frags[oc->frag];
    int64_t dur = span_ns(oc->begin, end);
    const cp_tl_filter *f = c->filter;
    if (!fr->keep || (f && f->max_depth && depth > f->max_depth) ||
        (f && (uint64_t)dur < f->min_duration_ns)) {
        c->st->filtered++;
        return;
    }
    out_buf *o = &c->o;
    ob_slice(c, t->tid, oc->begin, dur);
    OB_LIT(o, ",");
    ob_put(o, fr->s, fr->n);
    if (synth && fr->args_empty)
        OB_LIT(o, "\"synthesized\":true}}");
    else if (synth)
        OB_LIT(o, ",\"synthesized\":true}}");
    else
        OB_LIT(o, "}}");
    c->st->slices++;
}

/* The thread's label as in its thread_name event: "NAME (tid N)". */
static void thread_label(const conv *c, const tstate *t, char *label, size_t len)
{
    long ti = cp_profile_thread_index(c->p, t->id);
    char name[256];
    if (ti >= 0)
        snprintf(label, len, "%s (tid %llu)", cp_thread_name(c->p, (size_t)ti, name, sizeof name),
                 (unsigned long long)c->p->threads[ti].rec.native_tid);
    else
        snprintf(label, len, "thread %u", t->id);
}

/* One GIL hold on the thread's GIL track; the track is named at its first
 * slice (metadata events may come anywhere in the array). */
static void emit_gil(conv *c, tstate *t, int64_t end, bool synth)
{
    out_buf *o = &c->o;
    uint64_t tid = GIL_TID_BASE + t->id;
    if (!t->gil_named) {
        char label[320], track[400];
        thread_label(c, t, label, sizeof label);
        snprintf(track, sizeof track, "GIL held \xe2\x80\x94 %s", label);
        ob_track_names(c, tid, track, t->id);
        t->gil_named = true;
    }
    ob_slice(c, tid, t->gil_t0, span_ns(t->gil_t0, end));
    if (synth)
        OB_LIT(o, ",\"name\":\"GIL held\",\"cat\":\"gil\",\"args\":{\"synthesized\":true}}");
    else
        OB_LIT(o, ",\"name\":\"GIL held\",\"cat\":\"gil\",\"args\":{}}");
    t->gil_open = false;
    c->st->gil++;
}

/* A GIL event: ACQUIRED opens a hold, RELEASED closes it (a file that
 * breaks the alternation loses the odd event, counted as unmatched). */
static void feed_gil(conv *c, tstate *t, const struct cpyprof_tl_rec *r)
{
    bool synth = (r->info & CPYPROF_TL_SYNTH) != 0;
    if (r->func == CPYPROF_TL_GIL_ACQUIRED) {
        if (t->gil_open) {
            c->st->unmatched++;
            emit_gil(c, t, r->time_ns, true);
        }
        t->gil_open = true;
        t->gil_t0 = r->time_ns;
        t->gil_synth = synth;
    } else if (t->gil_open) {
        emit_gil(c, t, r->time_ns, synth || t->gil_synth);
    } else {
        c->st->unmatched++;
    }
}

static int feed_chunk(conv *c, uint32_t thread, const uint8_t *recs, uint32_t n)
{
    tstate *t = thread_of(c, thread);
    if (!t)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        struct cpyprof_tl_rec r;
        cp_tl_decode(recs, i, &r);
        c->st->events++;
        t->last_ns = r.time_ns;
        uint32_t kind = r.info & CPYPROF_TL_KIND_MASK;
        if (kind == CPYPROF_TL_BEGIN) {
            if (t->depth == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 64;
                open_call *s = realloc(t->stack, cap * sizeof *s);
                if (!s)
                    return -1;
                t->stack = s;
                t->cap = cap;
            }
            t->stack[t->depth++] =
                (open_call){frag_of(c, r.func), r.info & CPYPROF_TL_SYNTH, r.time_ns};
        } else if (kind == CPYPROF_TL_END) {
            if (t->depth == 0) {
                c->st->unmatched++;
                continue;
            }
            open_call *oc = &t->stack[--t->depth];
            emit(c, t, oc, r.time_ns, (uint32_t)t->depth + 1,
                 oc->synth || (r.info & CPYPROF_TL_SYNTH));
        } else {
            feed_gil(c, t, &r);
        }
    }
    return 0;
}

static void write_header(conv *c, const char *title)
{
    out_buf *o = &c->o;
    const cp_profile *p = c->p;
    OB_LIT(o, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":");
    ob_put(o, c->pid, c->pid_n);
    OB_LIT(o, ",\"tid\":0,\"name\":\"process_name\",\"args\":{\"name\":");
    ob_json(o, title);
    OB_LIT(o, "}}");
    for (size_t i = 0; i < p->n_threads; i++) {
        tstate *t = thread_of(c, p->threads[i].rec.id);
        if (!t)
            continue;
        char name[256], label[320];
        snprintf(label, sizeof label, "%s (tid %llu)", cp_thread_name(p, i, name, sizeof name),
                 (unsigned long long)p->threads[i].rec.native_tid);
        ob_track_names(c, t->tid, label, p->threads[i].rec.id);
    }
}

static void write_footer(conv *c, cp_tl_file *t, const char *title)
{
    out_buf *o = &c->o;
    uint64_t dropped = 0, overwritten = 0, synthesized = 0;
    for (size_t i = 0; i < t->n_info; i++) {
        dropped += t->info[i].dropped;
        overwritten += t->info[i].overwritten;
        synthesized += t->info[i].synthesized;
    }
    OB_LIT(o, "\n],\"otherData\":{\"source\":");
    ob_json(o, title);
    OB_LIT(o, ",\"events\":");
    ob_u64(o, c->st->events);
    OB_LIT(o, ",\"dropped_events\":");
    ob_u64(o, dropped);
    OB_LIT(o, ",\"overwritten_events\":");
    ob_u64(o, overwritten);
    OB_LIT(o, ",\"synthesized_events\":");
    ob_u64(o, synthesized);
    OB_LIT(o, ",\"truncated\":");
    if (c->p->truncated)
        OB_LIT(o, "true");
    else
        OB_LIT(o, "false");
    OB_LIT(o, "}}\n");
}

/* Garbage collections: slices on the thread that collected, and a counter. */
static int write_gc(conv *c, const cp_alloc_data *gc)
{
    out_buf *o = &c->o;
    uint64_t collected = 0;
    for (size_t i = 0; gc && gc->gc_present && i < gc->n_gc; i++) {
        const struct cpyprof_gc_rec *g = &gc->gc[i];
        tstate *t = thread_of(c, g->thread_id == CPYPROF_NONE ? 0 : g->thread_id);
        if (!t)
            return -1;
        ob_slice(c, t->tid, g->start_ns, g->duration_ns);
        OB_LIT(o, ",\"name\":\"gc (generation ");
        ob_u64(o, g->generation);
        OB_LIT(o, ")\",\"cat\":\"gc\",\"args\":{\"collected\":");
        ob_u64(o, g->collected);
        OB_LIT(o, ",\"uncollectable\":");
        ob_u64(o, g->uncollectable);
        OB_LIT(o, "}}");
        collected += g->collected;
        ob_event(c, 'C', 0);
        OB_LIT(o, ",\"ts\":");
        /* wrapping, not overflowing, on hostile values (UBSan, fuzz crasher) */
        ob_us(o, (int64_t)((uint64_t)g->start_ns + (uint64_t)g->duration_ns));
        OB_LIT(o, ",\"name\":\"gc collected objects\",\"args\":{\"total\":");
        ob_u64(o, collected);
        OB_LIT(o, "}}");
        c->st->gc++;
    }
    return 0;
}

/* The live-bytes series (timeline with alloc): one counter track. */
static void write_live(conv *c, const cp_alloc_data *a)
{
    out_buf *o = &c->o;
    for (size_t i = 0; a && i < a->n_live; i++) {
        ob_event(c, 'C', 0);
        OB_LIT(o, ",\"ts\":");
        ob_us(o, a->live[i].time_ns);
        OB_LIT(o, ",\"name\":\"allocated memory\",\"cat\":\"alloc\",\"args\":{\"live bytes\":");
        ob_u64(o, a->live[i].live_bytes);
        OB_LIT(o, "}}");
        c->st->counters++;
    }
}

int cp_chrome_write(FILE *out, cp_tl_file *t, const char *title, const cp_tl_filter *f,
                    const cp_alloc_data *gc, cp_chrome_stats *st, char *err, size_t errlen)
{
    const cp_profile *p = &t->p;
    conv c = {.p = p, .filter = f, .st = st};
    memset(st, 0, sizeof *st);
    c.o.f = out;
    c.o.b = malloc(OUT_CAP);
    c.n_frags = p->n_funcs + 1;
    c.frags = calloc(c.n_frags, sizeof *c.frags);
    int rc = -1;
    if (!c.o.b || !c.frags)
        goto oom;
    uint32_t max_id = 0;
    for (size_t i = 0; i < c.n_frags; i++) {
        long fi = i < p->n_funcs ? (long)i : -1;
        c.frags[i].s = make_fragment(p, fi, &c.frags[i].n, &c.frags[i].args_empty);
        if (!c.frags[i].s)
            goto oom;
        c.frags[i].keep = fi < 0 || cp_tl_filter_keeps(p, (uint32_t)fi, f);
        if (fi >= 0 && p->funcs[fi].id != CPYPROF_NONE && p->funcs[fi].id > max_id)
            max_id = p->funcs[fi].id;
    }
    /* Function ids are dense from 0 in files the profiler writes. */
    if (p->n_funcs && max_id < 4 * p->n_funcs + 1024) {
        c.n_by_id = (size_t)max_id + 1;
        c.by_id = malloc(c.n_by_id * sizeof *c.by_id);
        if (!c.by_id)
            goto oom;
        for (size_t i = 0; i < c.n_by_id; i++)
            c.by_id[i] = (uint32_t)(c.n_frags - 1);
        for (size_t i = 0; i < p->n_funcs; i++)
            if (p->funcs[i].id < c.n_by_id)
                c.by_id[p->funcs[i].id] = (uint32_t)i;
    }
    const char *pid = cp_profile_meta(p, "pid");
    c.pid_n = (size_t)snprintf(c.pid, sizeof c.pid, "%llu", pid ? strtoull(pid, NULL, 10) : 1ull);

    write_header(&c, title);
    cp_tl_rewind(t);
    uint32_t thread, n;
    const uint8_t *recs;
    int k;
    while ((k = cp_tl_next(t, &thread, &recs, &n, err, errlen)) == 1)
        if (feed_chunk(&c, thread, recs, n) != 0)
            goto oom;
    if (k < 0)
        goto done;
    /* Calls still open (a truncated file): end them at the thread's last event. */
    for (size_t i = 0; i < c.n_threads; i++) {
        tstate *ts = &c.threads[i];
        while (ts->depth) {
            open_call *oc = &ts->stack[--ts->depth];
            emit(&c, ts, oc, ts->last_ns, (uint32_t)ts->depth + 1, true);
            st->closed_eof++;
        }
        if (ts->gil_open) {
            emit_gil(&c, ts, ts->last_ns, true);
            st->closed_eof++;
        }
    }
    if (write_gc(&c, gc) != 0)
        goto oom;
    write_live(&c, gc);
    write_footer(&c, t, title);
    ob_flush(&c.o);
    if (c.o.failed) {
        snprintf(err, errlen, "cannot write the trace: %s", strerror(c.o.err));
        goto done;
    }
    rc = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory while writing the trace");
done:
    for (size_t i = 0; c.frags && i < c.n_frags; i++)
        free(c.frags[i].s);
    free(c.frags);
    free(c.by_id);
    for (size_t i = 0; i < c.n_threads; i++)
        free(c.threads[i].stack);
    free(c.threads);
    free(c.o.b);
    return rc;
}
