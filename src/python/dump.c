/*
 * dump.c — writing the profile: META at start; THREAD, TREE, STRINGS, FUNCS
 * and the TRAILER at the end.
 *
 * The end dump runs either with the GIL held (stop(), atexit) or, after a
 * SIGTERM, on the writer thread without it while the program's threads may
 * still be running their hooks. That is memory-safe because trees, the
 * symbol tables and the thread list only grow, by release-published
 * appends into storage that is never moved while profiling (tree.h,
 * symtab.h); values read may be off by the call in flight. The GIL, ALLOC
 * and GC chunks follow the same rule (gil.c, alloc.c, gc.c).
 */
#include "python/alloc.h"
#include "python/gc.h"
#include "python/gil.h"
#include "python/hwcount.h"
#include "python/profiler.h"
#include "python/sample.h"

#include "core/version.h"
#include "cpyprof/format.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int put_chunk(uint32_t type, cp_buf *b, char *err, size_t errlen)
{
    if (b->oom) {
        snprintf(err, errlen, "out of memory while writing the profile");
        cp_g.writer.errors++;
        return -1;
    }
    return cp_writer_chunk(&cp_g.writer, type, b->data, b->len, err, errlen);
}

/* /proc/self/cmdline: the whole command line, NUL-separated. */
static size_t read_cmdline(char *buf, size_t cap)
{
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    return n;
}

int cp_write_meta(char *err, size_t errlen)
{
    cp_buf b;
    cp_buf_init(&b);
    char v[256];
    cp_buf_meta(&b, "cpyprof_version", cp_version());
    const char *pv = Py_GetVersion();
    size_t i = 0;
    while (pv[i] && pv[i] != ' ' && i + 1 < sizeof v) {
        v[i] = pv[i];
        i++;
    }
    v[i] = '\0';
    cp_buf_meta(&b, "python_version", v);
    PyObject *exe = PySys_GetObject("executable"); /* borrowed */
    if (exe && PyUnicode_Check(exe)) {
        const char *s = PyUnicode_AsUTF8(exe);
        if (s)
            cp_buf_meta(&b, "python_executable", s);
        else
            PyErr_Clear();
    }
    snprintf(v, sizeof v, "%ld", (long)getpid());
    cp_buf_meta(&b, "pid", v);
    snprintf(v, sizeof v, "%ld", (long)getppid());
    cp_buf_meta(&b, "ppid", v);
    static char cmd[16384];
    size_t cn = read_cmdline(cmd, sizeof cmd);
    cp_buf_u32(&b, 4);
    cp_buf_bytes(&b, "argv", 4);
    cp_buf_lstr(&b, cmd, cn);
    static const char *const mode_names[] = {"trace", "sample", "timeline"}; /* = cp_mode */
    cp_buf_meta(&b, "mode", mode_names[cp_g.cfg.mode]);
    if (cp_g.cfg.mode == CP_MODE_TIMELINE) {
        cp_buf_meta(&b, "timeline_keep", cp_g.cfg.keep == CP_KEEP_LAST ? "last" : "all");
        snprintf(v, sizeof v, "%llu", (unsigned long long)cp_g.cfg.buffer_bytes);
        cp_buf_meta(&b, "timeline_buffer", v);
    }
    cp_buf_meta(&b, "clock_source", cp_g.clock.use_tsc ? "tsc" : "monotonic");
    snprintf(v, sizeof v, "%llu", (unsigned long long)cp_g.clock.hz);
    cp_buf_meta(&b, "tsc_hz", v);
    struct timespec rt;
    clock_gettime(CLOCK_REALTIME, &rt);
    snprintf(v, sizeof v, "%lld", (long long)rt.tv_sec * 1000000000ll + rt.tv_nsec);
    cp_buf_meta(&b, "start_unix_ns", v);
    if (gethostname(v, sizeof v) == 0) {
        v[sizeof v - 1] = '\0';
        cp_buf_meta(&b, "hostname", v);
    }
    /* cpyprof diff makes file names relative to it, so profiles taken in
     * different checkouts (a CI runner, a laptop) compare function by
     * function. */
    static char cwd[4096];
    if (getcwd(cwd, sizeof cwd))
        cp_buf_meta(&b, "cwd", cwd);
    cp_buf_meta(&b, "builtins", cp_g.cfg.builtins ? "1" : "0");
    cp_buf_meta(&b, "transport", cp_g.cfg.transport == CP_TRANSPORT_RING ? "ring" : "inline");
    cp_buf_meta(&b, "activation", cp_g.activation == CP_ACT_PRELOAD ? "preload" : "import");
    if (cp_g.cfg.mode == CP_MODE_SAMPLE) {
        snprintf(v, sizeof v, "%u", cp_g.cfg.rate_hz);
        cp_buf_meta(&b, "sample_rate", v);
        cp_buf_meta(&b, "sample_clock", cp_g.cfg.clock == CP_CLOCK_WALL ? "wall" : "cpu");
    }
    snprintf(v, sizeof v, "%u", cp_g.cfg.max_depth);
    cp_buf_meta(&b, "max_depth", v);
    int rc = put_chunk(CPYPROF_CHUNK_META, &b, err, errlen);
    cp_buf_free(&b);
    return rc;
}

/* The open stack of a thread contributes its time so far: without this a
 * frame still running at exit (or at SIGTERM) would have calls but no time. */
static void add_open_frames(const cp_thread *th, uint64_t *extra, uint32_t count, uint64_t now)
{
    if (cp_g.cfg.transport == CP_TRANSPORT_RING || cp_g.cfg.mode == CP_MODE_TIMELINE) {
        for (uint32_t i = 0; i < th->agg_depth; i++) {
            const cp_tree_node *n = th->agg[i].node;
            if (n && n->index < count && now > th->agg[i].t0)
                extra[n->index] += now - th->agg[i].t0;
        }
        return;
    }
    uint32_t depth = *(volatile const uint32_t *)&th->depth;
    if (depth > th->max_depth)
        depth = th->max_depth;
    for (uint32_t i = 0; i < depth; i++) {
        const cp_tree_node *n = th->stack[i].node;
        uint64_t t0 = th->stack[i].t0;
        if (n && n->index < count && now > t0)
            extra[n->index] += now - t0;
    }
}

static int write_thread(const cp_thread *th, uint64_t now, char *err, size_t errlen)
{
    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u32(&b, th->id);
    cp_buf_u32(&b, th->name);
    cp_buf_u64(&b, th->ident);
    cp_buf_u64(&b, th->native_tid);
    cp_buf_i64(&b, th->start_ns);
    cp_buf_i64(&b, -1);
    cp_buf_u32(&b, th->flags);
    cp_buf_u32(&b, 0);
    int rc = put_chunk(CPYPROF_CHUNK_THREAD, &b, err, errlen);

    uint32_t count = cp_tree_count(&th->tree);
    uint64_t *extra = calloc(count ? count : 1, sizeof *extra);
    cp_buf_reset(&b);
    cp_buf_u32(&b, th->id);
    cp_buf_u32(&b, count);
    if (extra)
        add_open_frames(th, extra, count, now);
    for (uint32_t i = 0; i < count; i++) {
        const cp_tree_node *nd = cp_tree_at(&th->tree, i);
        uint64_t ticks = nd->ticks + (extra ? extra[i] : 0);
        cp_buf_u32(&b, nd->parent == CP_TREE_ROOT ? CPYPROF_NONE : nd->parent);
        cp_buf_u32(&b, nd->func);
        cp_buf_u64(&b, nd->calls);
        cp_buf_u64(&b, cp_clock_delta_ns(&cp_g.clock, ticks));
    }
    free(extra);
    if (rc == 0)
        rc = put_chunk(CPYPROF_CHUNK_TREE, &b, err, errlen);
    cp_buf_free(&b);
    return rc;
}

static int write_symbols(uint32_t *ns_out, uint32_t *nf_out, char *err, size_t errlen)
{
    cp_buf b;
    cp_buf_init(&b);
    int rc = 0;
    uint32_t ns = cp_symtab_nstrings(&cp_g.syms);
    for (uint32_t first = 0; first < ns && rc == 0;) {
        uint32_t n = ns - first > 65536 ? 65536 : ns - first;
        cp_buf_reset(&b);
        cp_buf_u32(&b, first);
        cp_buf_u32(&b, n);
        for (uint32_t i = first; i < first + n; i++) {
            uint32_t len;
            const char *s = cp_symtab_str(&cp_g.syms, i, &len);
            cp_buf_lstr(&b, s, len);
        }
        rc = put_chunk(CPYPROF_CHUNK_STRINGS, &b, err, errlen);
        first += n;
    }
    uint32_t nf = cp_symtab_nfuncs(&cp_g.syms);
    *ns_out = ns;
    *nf_out = nf;
    if (rc == 0) {
        cp_buf_reset(&b);
        cp_buf_u32(&b, nf);
        for (uint32_t i = 0; i < nf; i++) {
            const cp_func_info *f = cp_symtab_get_func(&cp_g.syms, i);
            cp_buf_u32(&b, i);
            cp_buf_u32(&b, f->name);
            cp_buf_u32(&b, f->file);
            cp_buf_u32(&b, f->line);
            cp_buf_u32(&b, f->kind);
            cp_buf_u32(&b, 0);
        }
        rc = put_chunk(CPYPROF_CHUNK_FUNCS, &b, err, errlen);
    }
    cp_buf_free(&b);
    return rc;
}

int cp_dump_profile(int end_reason, int end_signal, bool have_gil, char *err, size_t errlen)
{
    if (atomic_exchange(&cp_g.dumped, 1))
        return 0; /* written already (SIGTERM raced with exit) */
    if (cp_g.writer.fd < 0) {
        snprintf(err, errlen, "profile file is not open");
        return -1;
    }
    /* GIL chunks first: without the GIL this also ends GIL accounting, so
     * every function and thread id they use is already in the tables the
     * chunks below write. Losing them loses only GIL data. */
    char gerr[256];
    if (cp_gil_dump(have_gil, gerr, sizeof gerr) != 0)
        cp_log("%s", gerr);
    /* ALLOC and GC: with the GIL, stop() wrote them already; on SIGTERM
     * here, before the names they use (alloc.c, gc.c: read-only without
     * the GIL). Losing them loses only their data. */
    if (!have_gil) {
        if (cp_alloc_dump_nogil(gerr, sizeof gerr) != 0)
            cp_log("%s", gerr);
        if (cp_gc_dump_nogil(gerr, sizeof gerr) != 0)
            cp_log("%s", gerr);
    }
    uint64_t now = cp_clock_ticks(&cp_g.clock);
    if (have_gil)
        cp_threads_refresh_names();

    /* Threads in id order (the list is newest first). */
    uint32_t nth = 0;
    for (cp_thread *t = atomic_load(&cp_g.threads); t; t = t->next)
        nth++;
    cp_thread **order = calloc(nth ? nth : 1, sizeof *order);
    uint64_t dropped = 0, untracked = 0;
    int rc = 0;
    /* Timeline: the flight recorder's window and the ends of open frames,
     * before the trees are written (they update them). */
    if (cp_g.cfg.mode == CP_MODE_TIMELINE)
        rc = cp_tl_dump(now, have_gil, err, errlen);
    uint32_t k = 0;
    for (cp_thread *t = atomic_load(&cp_g.threads); t && k < nth; t = t->next)
        order[k++] = t;
    for (uint32_t i = 0; i < k; i++) {
        cp_thread *t = order[k - 1 - i];
        if (cp_g.cfg.mode != CP_MODE_TIMELINE || cp_g.cfg.keep != CP_KEEP_LAST)
            dropped += cp_ring_dropped(&t->ring);
        untracked += t->untracked + t->tree.full;
        if (rc == 0)
            rc = write_thread(t, now, err, errlen);
    }
    free(order);
    uint32_t ns = 0, nf = 0;
    if (rc == 0)
        rc = write_symbols(&ns, &nf, err, errlen);
    if (rc == 0 && cp_g.cfg.mode == CP_MODE_SAMPLE) /* after the names they use */
        rc = cp_sample_dump(ns, nf, err, errlen);
    if (rc == 0) { /* run totals known only now: a further META chunk */
        cp_buf m;
        cp_buf_init(&m);
        cp_hw_meta(&m);
        rc = put_chunk(CPYPROF_CHUNK_META, &m, err, errlen);
        cp_buf_free(&m);
    }

    cp_buf b;
    cp_buf_init(&b);
    cp_buf_u64(&b, cp_g.events_written);
    cp_buf_u64(&b, dropped);
    cp_buf_u64(&b, untracked);
    cp_buf_u64(&b, nth);
    cp_buf_i64(&b, cp_clock_to_ns(&cp_g.clock, now));
    cp_buf_u32(&b, (uint32_t)end_reason);
    cp_buf_u32(&b, (uint32_t)end_signal);
    cp_buf_u64(&b, cp_g.writer.errors);
    cp_buf_u64(&b, 0);
    if (rc == 0)
        rc = put_chunk(CPYPROF_CHUNK_TRAILER, &b, err, errlen);
    cp_buf_free(&b);
    char cerr[256];
    if (cp_writer_close(&cp_g.writer, cerr, sizeof cerr) != 0 && rc == 0) {
        snprintf(err, errlen, "%s", cerr);
        rc = -1;
    }
    if (rc == 0 && dropped && !cp_g.cfg.quiet)
        cp_log("%llu records dropped (rings full): consider a larger %s",
               (unsigned long long)dropped,
               cp_g.cfg.mode == CP_MODE_TIMELINE ? "--buffer (CPYPROF_BUFFER), or --keep last"
                                                 : "CPYPROF_RING_SIZE");
    return rc;
}
