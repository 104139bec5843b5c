/*
 * reader.c — decoding a profile file (see profile.h for the contract).
 *
 * Two passes. The first walks the chunks in file order, checks each one's
 * size and CRC and decodes it into "pending" arrays that still hold the
 * file's ids. The second resolves ids (functions and threads may be defined
 * after the chunks that use them) and builds the final arrays.
 *
 * Hazards: all sizes come from an untrusted file. Every count is checked
 * against the payload it claims to describe before anything is allocated,
 * so memory use is bounded by a small multiple of the file size; arithmetic
 * is done in 64 bits on values already known to be <= the payload size.
 */
#include "report/profile.h"
#include "core/writer.h" /* cp_crc32 */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- small helpers -------------------------------------------------------- */

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd_u64(const uint8_t *p)
{
    return rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}

/* Grows *arr so that it holds at least `need` elements. */
static bool grow(void **arr, size_t *cap, size_t need, size_t elsize)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elsize)
        return false;
    void *q = realloc(*arr, n * elsize);
    if (!q)
        return false;
    *arr = q;
    *cap = n;
    return true;
}

/* The arena owns every text of a profile: a list of blocks, one per chunk
 * that holds text, each sized from that chunk's (already checked) payload. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

static char *arena_alloc(cp_profile *p, size_t n)
{
    arena_block *b = p->arena_;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        p->arena_ = b = nb;
    }
    char *r = b->data + b->used;
    b->used += n;
    return r;
}

static char *arena_text(cp_profile *p, const uint8_t *s, size_t n)
{
    char *r = arena_alloc(p, n + 1);
    if (r) {
        memcpy(r, s, n);
        r[n] = '\0';
    }
    return r;
}

char *cp_profile_add_text(cp_profile *p, const char *s, size_t n)
{
    return arena_text(p, (const uint8_t *)s, n);
}

void cp_profile_take_text(cp_profile *dst, cp_profile *src)
{
    /* Splice src's blocks in behind dst's current block: dst keeps filling
     * its own head, and every text pointer into src stays valid. */
    arena_block *tail = src->arena_;
    if (!tail)
        return;
    while (tail->next)
        tail = tail->next;
    arena_block *head = dst->arena_;
    if (head) {
        tail->next = head->next;
        head->next = src->arena_;
    } else {
        dst->arena_ = src->arena_;
    }
    src->arena_ = NULL;
}

const char *cp_chunk_type_name(uint32_t type)
{
    switch (type) {
    case CPYPROF_CHUNK_META:
        return "META";
    case CPYPROF_CHUNK_STRINGS:
        return "STRINGS";
    case CPYPROF_CHUNK_FUNCS:
        return "FUNCS";
    case CPYPROF_CHUNK_THREAD:
        return "THREAD";
    case CPYPROF_CHUNK_TREE:
        return "TREE";
    case CPYPROF_CHUNK_EVENTS:
        return "EVENTS";
    case CPYPROF_CHUNK_SAMPLES:
        return "SAMPLES";
    case CPYPROF_CHUNK_TIMELINE:
        return "TIMELINE";
    case CPYPROF_CHUNK_TIMELINE_INFO:
        return "TIMELINE_INFO";
    case CPYPROF_CHUNK_TRAILER:
        return "TRAILER";
    default:
        return "unknown";
    }
}

/* ---- loading state --------------------------------------------------------- */

typedef struct pending_func {
    struct cpyprof_func_rec rec;
    size_t seq; /* order of appearance: the last definition wins */
} pending_func;

typedef struct pending_thread {
    struct cpyprof_thread_rec rec;
    size_t seq;
} pending_thread;

typedef struct pending_tree {
    uint32_t thread_id;
    size_t first, count; /* range in loader.nodes (func still a file id) */
} pending_tree;

typedef struct pending_event {
    uint32_t thread_id;
    struct cpyprof_event_rec rec;
} pending_event;

typedef struct loader {
    cp_profile *p;
    const char *name;
    char *err;
    size_t errlen;

    size_t meta_cap, strings_cap, lens_cap;
    pending_func *funcs;
    size_t n_funcs, funcs_cap;
    pending_thread *threads;
    size_t n_threads, threads_cap;
    cp_node *nodes;
    size_t n_nodes, nodes_cap;
    pending_tree *trees;
    size_t n_trees, trees_cap;
    pending_event *events;
    size_t n_events, events_cap;

    /* the chunk being decoded, for messages */
    uint32_t chunk_no;
    uint32_t chunk_type;
    uint64_t chunk_off;
} loader;

static int fail(loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(loader *L, const char *fmt, ...)
{
    if (L->err && L->errlen) {
        int n = snprintf(L->err, L->errlen, "%s: ", L->name);
        if (n >= 0 && (size_t)n < L->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(L->err + n, L->errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return -1;
}

/* A chunk whose CRC matched but whose content is impossible. */
static int corrupt(loader *L, const char *why)
{
    return fail(L, "chunk %u (%s) at offset %llu is corrupt (%s)", L->chunk_no,
                cp_chunk_type_name(L->chunk_type), (unsigned long long)L->chunk_off, why);
}

static int oom(loader *L)
{
    return fail(L, "out of memory while loading the profile");
}

/* ---- chunk decoders: `d` is the payload, `n` its checked size --------------- */

static int read_meta(loader *L, const uint8_t *d, uint64_t n)
{
    cp_profile *p = L->p;
    uint64_t off = 0;
    while (off < n) {
        const uint8_t *text[2];
        uint32_t len[2];
        for (int i = 0; i < 2; i++) {
            if (n - off < 4)
                return corrupt(L, "entry cut short");
            len[i] = rd_u32(d + off);
            off += 4;
            if (n - off < len[i])
                return corrupt(L, "entry longer than the chunk");
            text[i] = d + off;
            off += len[i];
        }
        if (!grow((void **)&p->meta, &L->meta_cap, p->n_meta + 1, sizeof *p->meta))
            return oom(L);
        cp_meta_entry *e = &p->meta[p->n_meta];
        e->key = arena_text(p, text[0], len[0]);
        e->value = arena_text(p, text[1], len[1]);
        e->value_len = len[1];
        if (!e->key || !e->value)
            return oom(L);
        p->n_meta++;
    }
    return 0;
}

static int read_strings(loader *L, const uint8_t *d, uint64_t n)
{
    cp_profile *p = L->p;
    if (n < 8)
        return corrupt(L, "payload too short");
    uint32_t first = rd_u32(d), count = rd_u32(d + 4);
    if (first != p->n_strings)
        return corrupt(L, "string ids are not dense");
    if ((uint64_t)count * 4 > n - 8)
        return corrupt(L, "count larger than the chunk");
    if (p->n_strings + (uint64_t)count >= CPYPROF_NONE)
        return corrupt(L, "too many strings");
    size_t need = p->n_strings + count;
    if (!grow((void **)&p->strings, &L->strings_cap, need, sizeof *p->strings) ||
        !grow((void **)&p->string_lens, &L->lens_cap, need, sizeof *p->string_lens))
        return oom(L);
    uint64_t off = 8;
    for (uint32_t i = 0; i < count; i++) {
        if (n - off < 4)
            return corrupt(L, "string cut short");
        uint32_t len = rd_u32(d + off);
        off += 4;
        if (n - off < len)
            return corrupt(L, "string longer than the chunk");
        const char *s = arena_text(p, d + off, len);
        if (!s)
            return oom(L);
        p->strings[p->n_strings] = s;
        p->string_lens[p->n_strings] = len;
        p->n_strings++;
        off += len;
    }
    if (off != n)
        return corrupt(L, "bytes left after the last string");
    return 0;
}

static int read_funcs(loader *L, const uint8_t *d, uint64_t n)
{
    if (n < 4)
        return corrupt(L, "payload too short");
    uint32_t count = rd_u32(d);
    if ((uint64_t)count * sizeof(struct cpyprof_func_rec) != n - 4)
        return corrupt(L, "size does not match the function count");
    if (!grow((void **)&L->funcs, &L->funcs_cap, L->n_funcs + count, sizeof *L->funcs))
        return oom(L);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = d + 4 + (uint64_t)i * 24;
        pending_func *f = &L->funcs[L->n_funcs];
        f->rec.id = rd_u32(r);
        f->rec.name = rd_u32(r + 4);
        f->rec.file = rd_u32(r + 8);
        f->rec.line = rd_u32(r + 12);
        f->rec.kind = rd_u32(r + 16);
        f->rec.flags = rd_u32(r + 20);
        f->seq = L->n_funcs++;
        if (f->rec.id == CPYPROF_NONE)
            return corrupt(L, "a function has the id NONE");
    }
    return 0;
}

static int read_thread(loader *L, const uint8_t *d, uint64_t n)
{
    if (n != sizeof(struct cpyprof_thread_rec))
        return corrupt(L, "size is not 48");
    if (!grow((void **)&L->threads, &L->threads_cap, L->n_threads + 1, sizeof *L->threads))
        return oom(L);
    pending_thread *t = &L->threads[L->n_threads];
    t->rec.id = rd_u32(d);
    t->rec.name = rd_u32(d + 4);
    t->rec.ident = rd_u64(d + 8);
    t->rec.native_tid = rd_u64(d + 16);
    t->rec.start_ns = (int64_t)rd_u64(d + 24);
    t->rec.end_ns = (int64_t)rd_u64(d + 32);
    t->rec.flags = rd_u32(d + 40);
    t->rec.reserved = rd_u32(d + 44);
    t->seq = L->n_threads++;
    if (t->rec.id == CPYPROF_NONE)
        return corrupt(L, "a thread has the id NONE");
    return 0;
}

/* The head shared by SAMPLES, TREE and EVENTS payloads: a thread id and a
 * count of fixed-size records that must fill the rest exactly. */
static int thread_array(loader *L, const uint8_t *d, uint64_t n, size_t rec_size, const char *what,
                        uint32_t *thread, uint32_t *count)
{
    if (n < 8)
        return corrupt(L, "payload too short");
    *thread = rd_u32(d);
    *count = rd_u32(d + 4);
    if ((uint64_t)*count * rec_size != n - 8) {
        char msg[64];
        snprintf(msg, sizeof msg, "size does not match the %s count", what);
        return corrupt(L, msg);
    }
    if (*thread == CPYPROF_NONE)
        return corrupt(L, "thread id is NONE");
    return 0;
}

/* Room for one more tree of count nodes. */
static int room_for_tree(loader *L, uint32_t count)
{
    if (!grow((void **)&L->nodes, &L->nodes_cap, L->n_nodes + count, sizeof *L->nodes) ||
        !grow((void **)&L->trees, &L->trees_cap, L->n_trees + 1, sizeof *L->trees))
        return oom(L);
    return 0;
}

/* SAMPLES (sampling mode): loaded as a tree whose calls are 0 and whose
 * total_ns holds inclusive sample counts (self samples summed over the
 * subtree), so the model's self/total are sample counts. */
static int read_samples(loader *L, const uint8_t *d, uint64_t n)
{
    uint32_t thread, count;
    int rc = thread_array(L, d, n, sizeof(struct cpyprof_sample_node_rec), "node", &thread, &count);
    if (rc == 0)
        rc = room_for_tree(L, count);
    if (rc)
        return rc;
    /* count 0: L->nodes may still be NULL, and NULL + 0 is undefined */
    cp_node *nodes = count ? &L->nodes[L->n_nodes] : NULL;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = d + 8 + (uint64_t)i * sizeof(struct cpyprof_sample_node_rec);
        cp_node *nd = &nodes[i];
        nd->parent = rd_u32(r);
        nd->func = rd_u32(r + 4);
        nd->line = rd_u32(r + 8);
        nd->calls = 0;
        nd->total_ns = rd_u64(r + 16); /* self samples, summed below */
        if (nd->parent != CPYPROF_NONE && nd->parent >= i)
            return corrupt(L, "a node's parent does not come before it");
        if (nd->func == CPYPROF_NONE)
            return corrupt(L, "a node has no function");
        if (nd->total_ns > (1ull << 48))
            return corrupt(L, "a node has an absurd sample count");
    }
    for (uint32_t i = count; i-- > 0;) /* parents come first: children done */
        if (nodes[i].parent != CPYPROF_NONE)
            nodes[nodes[i].parent].total_ns += nodes[i].total_ns;
    L->trees[L->n_trees++] = (pending_tree){thread, L->n_nodes, count};
    L->n_nodes += count;
    L->p->samples = true;
    return 0;
}

static int read_tree(loader *L, const uint8_t *d, uint64_t n)
{
    uint32_t thread, count;
    int rc = thread_array(L, d, n, sizeof(struct cpyprof_node_rec), "node", &thread, &count);
    if (rc == 0)
        rc = room_for_tree(L, count);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = d + 8 + (uint64_t)i * 24;
        cp_node *nd = &L->nodes[L->n_nodes + i];
        nd->parent = rd_u32(r);
        nd->func = rd_u32(r + 4);
        nd->calls = rd_u64(r + 8);
        nd->total_ns = rd_u64(r + 16);
        nd->line = 0;
        if (nd->parent != CPYPROF_NONE && nd->parent >= i)
            return corrupt(L, "a node's parent does not come before it");
        if (nd->func == CPYPROF_NONE)
            return corrupt(L, "a node has no function");
    }
    L->trees[L->n_trees++] = (pending_tree){thread, L->n_nodes, count};
    L->n_nodes += count;
    return 0;
}

static int read_events(loader *L, const uint8_t *d, uint64_t n)
{
    uint32_t thread, count;
    int rc = thread_array(L, d, n, sizeof(struct cpyprof_event_rec), "event", &thread, &count);
    if (rc)
        return rc;
    if (!grow((void **)&L->events, &L->events_cap, L->n_events + count, sizeof *L->events))
        return oom(L);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = d + 8 + (uint64_t)i * 32;
        pending_event *e = &L->events[L->n_events++];
        e->thread_id = thread;
        e->rec.time_ns = (int64_t)rd_u64(r);
        e->rec.kind = rd_u32(r + 8);
        e->rec.a = rd_u32(r + 12);
        e->rec.b = rd_u64(r + 16);
        e->rec.c = rd_u64(r + 24);
    }
    return 0;
}

static int read_trailer(loader *L, const uint8_t *d, uint64_t n)
{
    if (n != sizeof(struct cpyprof_trailer_rec))
        return corrupt(L, "size is not 64");
    struct cpyprof_trailer_rec *t = &L->p->trailer;
    t->events_written = rd_u64(d);
    t->events_dropped = rd_u64(d + 8);
    t->calls_untracked = rd_u64(d + 16);
    t->threads = rd_u64(d + 24);
    t->duration_ns = (int64_t)rd_u64(d + 32);
    t->end_reason = rd_u32(d + 40);
    t->end_signal = rd_u32(d + 44);
    t->write_errors = rd_u64(d + 48);
    t->reserved = rd_u64(d + 56);
    L->p->has_trailer = true;
    return 0;
}

/* ---- pass 1: the chunk walk ------------------------------------------------ */

static void set_truncated(cp_profile *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_truncated(cp_profile *p, const char *fmt, ...)
{
    p->truncated = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->truncation, sizeof p->truncation, fmt, ap);
    va_end(ap);
}

static int read_header(loader *L, const uint8_t *d, size_t size)
{
    /* The writer creates the file and writes the header at once; a process
     * killed in between (SIGKILL) leaves exactly this. Say so plainly: the
     * user looks for a run that was lost, not for a format problem. */
    if (size == 0)
        return fail(L, "empty file (0 bytes), nothing was kept: the profiled process ended "
                       "before it wrote the profile's header (killed?)");
    size_t m = size < CPYPROF_MAGIC_LEN ? size : CPYPROF_MAGIC_LEN;
    if (memcmp(d, CPYPROF_MAGIC, m) != 0)
        return fail(L, "not a cpyprof profile (bad magic)");
    if (size < CPYPROF_FILE_HEADER_SIZE)
        return fail(L, "profile is truncated inside its %d-byte header (%zu bytes)",
                    CPYPROF_FILE_HEADER_SIZE, size);
    uint32_t version = rd_u32(d + 8);
    if (version != CPYPROF_FORMAT_VERSION)
        return fail(L, "unsupported profile format version %u (this cpyprof reads version %u)",
                    version, CPYPROF_FORMAT_VERSION);
    return 0;
}

static int walk_chunks(loader *L, const uint8_t *d, size_t size)
{
    cp_profile *p = L->p;
    uint64_t off = CPYPROF_FILE_HEADER_SIZE;
    p->bytes_kept = off;
    for (uint32_t no = 1;; no++) {
        uint64_t left = size - off;
        if (left == 0) {
            set_truncated(p, "no trailer");
            return 0;
        }
        if (left < CPYPROF_CHUNK_HEADER_SIZE) {
            set_truncated(p, "chunk %u header at offset %llu cut short", no,
                          (unsigned long long)off);
            return 0;
        }
        uint32_t type = rd_u32(d + off), crc = rd_u32(d + off + 4);
        uint64_t len = rd_u64(d + off + 8);
        L->chunk_no = no;
        L->chunk_type = type;
        L->chunk_off = off;
        if (len > CPYPROF_MAX_CHUNK_SIZE)
            return fail(L, "chunk %u (%s) at offset %llu is corrupt (impossible size %llu)", no,
                        cp_chunk_type_name(type), (unsigned long long)off, (unsigned long long)len);
        if (len > left - CPYPROF_CHUNK_HEADER_SIZE) {
            set_truncated(p, "chunk %u (%s) at offset %llu cut short: %llu of %llu bytes", no,
                          cp_chunk_type_name(type), (unsigned long long)off,
                          (unsigned long long)(left - CPYPROF_CHUNK_HEADER_SIZE),
                          (unsigned long long)len);
            return 0;
        }
        const uint8_t *payload = d + off + CPYPROF_CHUNK_HEADER_SIZE;
        if (cp_crc32(0, payload, len) != crc)
            return fail(L, "chunk %u (%s) at offset %llu is corrupt (CRC mismatch)", no,
                        cp_chunk_type_name(type), (unsigned long long)off);
        int r = 0;
        switch (type) {
        case CPYPROF_CHUNK_META:
            r = read_meta(L, payload, len);
            break;
        case CPYPROF_CHUNK_STRINGS:
            r = read_strings(L, payload, len);
            break;
        case CPYPROF_CHUNK_FUNCS:
            r = read_funcs(L, payload, len);
            break;
        case CPYPROF_CHUNK_THREAD:
            r = read_thread(L, payload, len);
            break;
        case CPYPROF_CHUNK_TREE:
            r = read_tree(L, payload, len);
            break;
        case CPYPROF_CHUNK_EVENTS:
            r = read_events(L, payload, len);
            break;
        case CPYPROF_CHUNK_SAMPLES:
            r = read_samples(L, payload, len);
            break;
        case CPYPROF_CHUNK_TRAILER:
            r = read_trailer(L, payload, len);
            break;
        case CPYPROF_CHUNK_TIMELINE:
        case CPYPROF_CHUNK_TIMELINE_INFO:
            /* Streamed by report/timeline.c (cpyprof convert --to chrome),
             * not loaded: a timeline can be far larger than memory. */
            break;
        default:
            p->chunks_unknown++; /* a newer writer's addition: skip it */
            break;
        }
        if (r)
            return r;
        off += CPYPROF_CHUNK_HEADER_SIZE + len;
        p->chunks_kept++;
        p->bytes_kept = off;
        if (type == CPYPROF_CHUNK_TRAILER) {
            p->trailing_bytes = size - off;
            return 0;
        }
    }
}

/* ---- pass 2: resolving ids ------------------------------------------------- */

static int cmp_pending_func(const void *a, const void *b)
{
    const pending_func *x = a, *y = b;
    if (x->rec.id != y->rec.id)
        return x->rec.id < y->rec.id ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_pending_thread(const void *a, const void *b)
{
    const pending_thread *x = a, *y = b;
    if (x->rec.id != y->rec.id)
        return x->rec.id < y->rec.id ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* A reference to a string that is never defined: an error in a complete
 * file; in a truncated one the definition may be in the lost part. */
static int check_string(loader *L, uint32_t *id, const char *what, uint32_t owner)
{
    if (*id == CPYPROF_NONE || *id < L->p->n_strings)
        return 0;
    if (!L->p->truncated)
        return fail(L, "corrupt profile: %s %u refers to string %u, which is not defined", what,
                    owner, *id);
    *id = CPYPROF_NONE;
    L->p->unresolved++;
    return 0;
}

static int resolve_funcs(loader *L)
{
    cp_profile *p = L->p;
    if (L->n_funcs) /* qsort(NULL, 0, ...) is undefined behaviour */
        qsort(L->funcs, L->n_funcs, sizeof *L->funcs, cmp_pending_func);
    p->funcs = malloc((L->n_funcs + 1) * sizeof *p->funcs); /* +1: room for "[unknown]" */
    if (!p->funcs)
        return oom(L);
    for (size_t i = 0; i < L->n_funcs; i++) {
        /* Of several definitions of one id keep the last (highest seq). */
        if (i + 1 < L->n_funcs && L->funcs[i + 1].rec.id == L->funcs[i].rec.id)
            continue;
        struct cpyprof_func_rec f = L->funcs[i].rec;
        if (check_string(L, &f.name, "function", f.id) ||
            check_string(L, &f.file, "function", f.id))
            return -1;
        p->funcs[p->n_funcs++] = f;
    }
    return 0;
}

/* The function nodes of a truncated file point at when theirs was lost. Its
 * id is NONE, which sorts last, so p->funcs stays sorted. */
static uint32_t unknown_func(loader *L)
{
    cp_profile *p = L->p;
    if (p->n_funcs && p->funcs[p->n_funcs - 1].id == CPYPROF_NONE)
        return (uint32_t)(p->n_funcs - 1);
    uint32_t name = CPYPROF_NONE;
    const char *s = arena_text(p, (const uint8_t *)"[unknown]", 9);
    if (s && grow((void **)&p->strings, &L->strings_cap, p->n_strings + 1, sizeof *p->strings) &&
        grow((void **)&p->string_lens, &L->lens_cap, p->n_strings + 1, sizeof *p->string_lens)) {
        p->strings[p->n_strings] = s;
        p->string_lens[p->n_strings] = 9;
        name = (uint32_t)p->n_strings++;
    }
    p->funcs[p->n_funcs] = (struct cpyprof_func_rec){
        .id = CPYPROF_NONE, .name = name, .file = CPYPROF_NONE, .kind = CPYPROF_FUNC_SPECIAL};
    return (uint32_t)p->n_funcs++;
}

static int resolve_threads(loader *L)
{
    cp_profile *p = L->p;
    /* Every thread id used anywhere, described or not. */
    size_t n_ids = L->n_threads + L->n_trees + L->n_events;
    uint32_t *ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
    if (!ids)
        return oom(L);
    size_t k = 0;
    for (size_t i = 0; i < L->n_threads; i++)
        ids[k++] = L->threads[i].rec.id;
    for (size_t i = 0; i < L->n_trees; i++)
        ids[k++] = L->trees[i].thread_id;
    for (size_t i = 0; i < L->n_events; i++)
        ids[k++] = L->events[i].thread_id;
    qsort(ids, k, sizeof *ids, cmp_u32);
    if (L->n_threads)
        qsort(L->threads, L->n_threads, sizeof *L->threads, cmp_pending_thread);

    size_t n_unique = 0;
    for (size_t i = 0; i < k; i++)
        if (i == 0 || ids[i] != ids[i - 1])
            ids[n_unique++] = ids[i];
    p->threads = calloc(n_unique ? n_unique : 1, sizeof *p->threads);
    if (!p->threads) {
        free(ids);
        return oom(L);
    }
    size_t j = 0; /* walks L->threads (sorted) alongside ids */
    for (size_t i = 0; i < n_unique; i++) {
        cp_thread *t = &p->threads[p->n_threads++];
        t->rec.id = ids[i];
        t->rec.name = CPYPROF_NONE;
        t->rec.end_ns = -1;
        while (j < L->n_threads && L->threads[j].rec.id == ids[i]) {
            t->rec = L->threads[j++].rec; /* the last definition wins */
            t->defined = true;
        }
    }
    free(ids);
    for (size_t i = 0; i < p->n_threads; i++)
        if (check_string(L, &p->threads[i].rec.name, "thread", p->threads[i].rec.id))
            return -1;
    return 0;
}

static int resolve_trees(loader *L)
{
    cp_profile *p = L->p;
    /* Node counts per thread first, so each thread gets one exact array. */
    for (size_t i = 0; i < L->n_trees; i++) {
        long t = cp_profile_thread_index(p, L->trees[i].thread_id);
        p->threads[t].n_nodes += L->trees[i].count;
    }
    for (size_t t = 0; t < p->n_threads; t++) {
        if (p->threads[t].n_nodes == 0)
            continue;
        p->threads[t].nodes = malloc(p->threads[t].n_nodes * sizeof(cp_node));
        if (!p->threads[t].nodes)
            return oom(L);
        p->threads[t].n_nodes = 0;
    }
    for (size_t i = 0; i < L->n_trees; i++) {
        const pending_tree *pt = &L->trees[i];
        cp_thread *t = &p->threads[cp_profile_thread_index(p, pt->thread_id)];
        size_t base = t->n_nodes;
        for (size_t k = 0; k < pt->count; k++) {
            cp_node nd = L->nodes[pt->first + k];
            if (nd.parent != CPYPROF_NONE)
                nd.parent += (uint32_t)base;
            long f = cp_profile_func_index(p, nd.func);
            if (f < 0 || p->funcs[f].id == CPYPROF_NONE) {
                if (!p->truncated)
                    return fail(L,
                                "corrupt profile: the tree of thread %u refers to function %u, "
                                "which is not defined",
                                pt->thread_id, nd.func);
                f = unknown_func(L);
                p->unresolved++;
            }
            nd.func = (uint32_t)f;
            t->nodes[t->n_nodes++] = nd;
        }
    }
    return 0;
}

static int resolve_events(loader *L)
{
    cp_profile *p = L->p;
    if (L->n_events == 0)
        return 0;
    p->events = malloc(L->n_events * sizeof *p->events);
    if (!p->events)
        return oom(L);
    for (size_t i = 0; i < L->n_events; i++) {
        p->events[i].thread = (uint32_t)cp_profile_thread_index(p, L->events[i].thread_id);
        p->events[i].rec = L->events[i].rec;
    }
    p->n_events = L->n_events;
    return 0;
}

/* ---- public ------------------------------------------------------------------ */

static void loader_free(loader *L)
{
    free(L->funcs);
    free(L->threads);
    free(L->nodes);
    free(L->trees);
    free(L->events);
}

int cp_profile_load_mem(cp_profile *p, const void *data, size_t size, const char *name, char *err,
                        size_t errlen)
{
    memset(p, 0, sizeof *p);
    if (err && errlen)
        err[0] = '\0';
    loader L = {.p = p, .name = name, .err = err, .errlen = errlen};
    p->file_size = size;
    int r = read_header(&L, data, size);
    if (!r)
        r = walk_chunks(&L, data, size);
    if (!r)
        r = resolve_funcs(&L);
    if (!r)
        r = resolve_threads(&L);
    if (!r)
        r = resolve_trees(&L);
    if (!r)
        r = resolve_events(&L);
    loader_free(&L);
    if (r)
        cp_profile_free(p);
    return r;
}

/* Regular files are read in one allocation of their size; anything else (a
 * pipe) grows as it goes. */
int cp_profile_read_file(const char *path, uint8_t **out, size_t *size, char *err, size_t errlen)
{
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        snprintf(err, errlen, "cannot read profile '%s': %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    size_t cap = 1 << 16;
    if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot read profile '%s': %s", path, strerror(EISDIR));
        close(fd);
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t)st.st_size + 1; /* +1: see EOF without a regrow */
    uint8_t *buf = malloc(cap);
    size_t len = 0;
    while (buf) {
        if (len == cap) {
            uint8_t *nb = cap < SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read profile '%s': %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    if (!buf) {
        snprintf(err, errlen, "cannot read profile '%s': out of memory", path);
        return -1;
    }
    *out = buf;
    *size = len;
    return 0;
}

int cp_profile_parse_file(const char *path,
                          int (*parse)(const void *data, size_t size, void *out, char *err,
                                       size_t errlen),
                          void *out, char *err, size_t errlen)
{
    uint8_t *data;
    size_t size;
    if (cp_profile_read_file(path, &data, &size, err, errlen))
        return -1;
    char e[512];
    int rc = parse(data, size, out, e, sizeof e);
    if (rc != 0)
        snprintf(err, errlen, "%s: %s", path, e);
    free(data);
    return rc;
}

int cp_profile_load(cp_profile *p, const char *path, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    uint8_t *data;
    size_t size;
    if (cp_profile_read_file(path, &data, &size, err, errlen))
        return -1;
    int r = cp_profile_load_mem(p, data, size, path, err, errlen);
    free(data);
    return r;
}

void cp_profile_free(cp_profile *p)
{
    free(p->meta);
    free(p->strings);
    free(p->string_lens);
    free(p->funcs);
    for (size_t i = 0; i < p->n_threads; i++)
        free(p->threads[i].nodes);
    free(p->threads);
    free(p->events);
    for (arena_block *b = p->arena_, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    memset(p, 0, sizeof *p);
}

const char *cp_profile_meta_len(const cp_profile *p, const char *key, size_t *len)
{
    for (size_t i = p->n_meta; i-- > 0;) {
        if (strcmp(p->meta[i].key, key) == 0) {
            if (len)
                *len = p->meta[i].value_len;
            return p->meta[i].value;
        }
    }
    return NULL;
}

const char *cp_profile_meta(const cp_profile *p, const char *key)
{
    return cp_profile_meta_len(p, key, NULL);
}

const char *cp_profile_string(const cp_profile *p, uint32_t id)
{
    return id < p->n_strings ? p->strings[id] : NULL;
}

long cp_profile_func_index(const cp_profile *p, uint32_t id)
{
    size_t lo = 0, hi = p->n_funcs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->funcs[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n_funcs && p->funcs[lo].id == id ? (long)lo : -1;
}

long cp_profile_thread_index(const cp_profile *p, uint32_t id)
{
    size_t lo = 0, hi = p->n_threads;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->threads[mid].rec.id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < p->n_threads && p->threads[lo].rec.id == id ? (long)lo : -1;
}

bool cp_profile_warning(const cp_profile *p, char *buf, size_t n)
{
    if (n)
        buf[0] = '\0';
    if (!p->truncated)
        return false;
    snprintf(buf, n, "profile is truncated (%s): kept %u chunk%s, %llu of %llu bytes",
             p->truncation, p->chunks_kept, p->chunks_kept == 1 ? "" : "s",
             (unsigned long long)p->bytes_kept, (unsigned long long)p->file_size);
    return true;
}
