/*
 * timeline_read.c — streaming access to TIMELINE chunks (see timeline.h).
 *
 * Hazards: the file is untrusted. Chunk sizes are checked against the file
 * size before anything is allocated or skipped; a TIMELINE payload must be
 * exactly 8 + 16 x count bytes; the memory image only ever holds bytes that
 * were read from the file.
 */
#include "report/timeline.h"
#include "core/writer.h" /* cp_crc32 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd_u64(const uint8_t *p)
{
    return rd_u32(p) | (uint64_t)rd_u32(p + 4) << 32;
}

typedef struct image {
    uint8_t *data;
    size_t len, cap;
} image;

static bool img_add(image *im, const void *p, size_t n)
{
    if (n == 0) /* an empty payload: p may be NULL, which memcpy must not get */
        return true;
    if (im->cap - im->len < n) {
        size_t c = im->cap ? im->cap : 1 << 16;
        while (c - im->len < n)
            c *= 2;
        uint8_t *d = realloc(im->data, c);
        if (!d)
            return false;
        im->data = d;
        im->cap = c;
    }
    memcpy(im->data + im->len, p, n);
    im->len += n;
    return true;
}

static bool read_exact(FILE *f, void *p, size_t n)
{
    return fread(p, 1, n, f) == n;
}

static bool ensure(cp_tl_file *t, size_t n)
{
    if (t->cap >= n)
        return true;
    uint8_t *b = realloc(t->buf, n ? n : 1);
    if (!b)
        return false;
    t->buf = b;
    t->cap = n;
    return true;
}

/* Indexes one chunk whose header was read; returns 0, 1 (stop: cut short) or -1. */
static int index_chunk(cp_tl_file *t, image *im, const uint8_t hdr[16], uint64_t off,
                       uint64_t file_size, uint32_t no, char *err, size_t errlen)
{
    uint32_t type = rd_u32(hdr), crc = rd_u32(hdr + 4);
    uint64_t len = rd_u64(hdr + 8);
    if (len > CPYPROF_MAX_CHUNK_SIZE || len > file_size - off - CPYPROF_CHUNK_HEADER_SIZE)
        return 1; /* the image's reader gives the message (impossible size or cut short) */
    if (type == CPYPROF_CHUNK_TIMELINE) {
        if (len < 8 || (len - 8) % 16 != 0) {
            snprintf(err, errlen,
                     "%s: chunk %u (TIMELINE) at offset %llu is corrupt (size is "
                     "not 8 + 16 x count)",
                     t->path, no, (unsigned long long)off);
            return -1;
        }
        if (t->n_chunks % 64 == 0) {
            cp_tl_chunk_loc *c = realloc(t->chunks, (t->n_chunks + 64) * sizeof *c);
            if (!c)
                goto oom;
            t->chunks = c;
        }
        t->chunks[t->n_chunks++] = (cp_tl_chunk_loc){off, len, crc, no};
        t->n_events += (len - 8) / 16;
        /* In the image: a placeholder of the same type with an empty
         * payload (CRC 0), so chunk numbers in the reader's messages stay
         * those of the file. */
        uint8_t ph[CPYPROF_CHUNK_HEADER_SIZE] = {0};
        memcpy(ph, hdr, 4);
        if (!img_add(im, ph, sizeof ph))
            goto oom;
        return fseeko(t->f, (off_t)len, SEEK_CUR) == 0 ? 0 : 1;
    }
    if (!ensure(t, (size_t)len) || !read_exact(t->f, t->buf, (size_t)len))
        return ensure(t, (size_t)len) ? 1 : -2;
    if (type == CPYPROF_CHUNK_TIMELINE_INFO && cp_crc32(0, t->buf, len) == crc) {
        if (len != sizeof(struct cpyprof_tl_info_rec)) {
            snprintf(err, errlen,
                     "%s: chunk %u (TIMELINE_INFO) at offset %llu is corrupt (size "
                     "is not 64)",
                     t->path, no, (unsigned long long)off);
            return -1;
        }
        if (t->n_info % 16 == 0) {
            struct cpyprof_tl_info_rec *q = realloc(t->info, (t->n_info + 16) * sizeof *q);
            if (!q)
                goto oom;
            t->info = q;
        }
        const uint8_t *d = t->buf;
        t->info[t->n_info++] = (struct cpyprof_tl_info_rec){
            rd_u32(d),      rd_u32(d + 4),           rd_u64(d + 8),
            rd_u64(d + 16), rd_u64(d + 24),          rd_u64(d + 32),
            rd_u64(d + 40), (int64_t)rd_u64(d + 48), (int64_t)rd_u64(d + 56)};
    }
    /* Everything else (TIMELINE_INFO too, which the reader skips after its
     * CRC check) goes to the image. */
    if (!img_add(im, hdr, 16) || !img_add(im, t->buf, (size_t)len))
        goto oom;
    return 0;
oom:
    snprintf(err, errlen, "%s: out of memory while loading the profile", t->path);
    return -1;
}

int cp_tl_open(cp_tl_file *t, const char *path, char *err, size_t errlen)
{
    FILE *f;
    do {
        f = fopen(path, "rbe");
    } while (!f && errno == EINTR);
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0) {
        snprintf(err, errlen, "cannot read profile '%s': %s", path, strerror(errno));
        if (f)
            fclose(f);
        memset(t, 0, sizeof *t);
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot read profile '%s': %s", path, strerror(EISDIR));
        fclose(f);
        memset(t, 0, sizeof *t);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen,
                 "cannot read profile '%s': not a regular file (the timeline is "
                 "read twice)",
                 path);
        fclose(f);
        memset(t, 0, sizeof *t);
        return -1;
    }
    return cp_tl_open_stream(t, f, (uint64_t)st.st_size, path, err, errlen);
}

int cp_tl_open_stream(cp_tl_file *t, FILE *f, uint64_t size, const char *path, char *err,
                      size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->path = path;
    t->f = f;
    uint64_t kept = CPYPROF_FILE_HEADER_SIZE;
    image im = {0};
    int r = 0;
    uint8_t hdr[CPYPROF_FILE_HEADER_SIZE];
    size_t got = fread(hdr, 1, sizeof hdr, t->f);
    if (!img_add(&im, hdr, got)) {
        snprintf(err, errlen, "%s: out of memory while loading the profile", path);
        r = -1;
    }
    if (r == 0 && got == sizeof hdr && memcmp(hdr, CPYPROF_MAGIC, CPYPROF_MAGIC_LEN) == 0) {
        uint64_t off = CPYPROF_FILE_HEADER_SIZE;
        for (uint32_t no = 1; off + CPYPROF_CHUNK_HEADER_SIZE <= size; no++) {
            uint8_t ch[CPYPROF_CHUNK_HEADER_SIZE];
            if (!read_exact(t->f, ch, sizeof ch))
                break;
            int k = index_chunk(t, &im, ch, off, size, no, err, errlen);
            if (k == 1) { /* cut short or impossible: let the reader see it */
                img_add(&im, ch, sizeof ch);
                break;
            }
            if (k < 0) {
                if (k == -2)
                    snprintf(err, errlen, "%s: out of memory while loading the profile", path);
                r = -1;
                break;
            }
            off += CPYPROF_CHUNK_HEADER_SIZE + rd_u64(ch + 8);
            kept = off;
            if (rd_u32(ch) == CPYPROF_CHUNK_TRAILER)
                break;
        }
    }
    if (r == 0)
        r = cp_profile_load_mem(&t->p, im.data, im.len, path, err, errlen);
    /* GC records for the trace, from the image: reading the file again
     * (cp_alloc_load) would hold all of it, timeline included, in memory. */
    char aerr[512];
    if (r == 0 && cp_alloc_parse(im.data, im.len, &t->alloc, aerr, sizeof aerr) != 0) {
        snprintf(err, errlen, "%s: %s", path, aerr);
        r = -1;
    }
    free(im.data);
    if (r != 0) {
        cp_tl_close(t);
        return -1;
    }
    /* The image is shorter than the file: report sizes of the file. */
    t->p.file_size = size;
    t->p.bytes_kept = kept;
    return 0;
}

int cp_tl_next(cp_tl_file *t, uint32_t *thread, const uint8_t **recs, uint32_t *n, char *err,
               size_t errlen)
{
    if (t->next >= t->n_chunks)
        return 0;
    const cp_tl_chunk_loc *c = &t->chunks[t->next++];
    if (!ensure(t, (size_t)c->size)) {
        snprintf(err, errlen, "%s: out of memory while reading the timeline", t->path);
        return -1;
    }
    if (fseeko(t->f, (off_t)(c->off + CPYPROF_CHUNK_HEADER_SIZE), SEEK_SET) != 0 ||
        !read_exact(t->f, t->buf, (size_t)c->size)) {
        snprintf(err, errlen, "%s: cannot read chunk %u (TIMELINE) at offset %llu", t->path, c->no,
                 (unsigned long long)c->off);
        return -1;
    }
    if (cp_crc32(0, t->buf, c->size) != c->crc) {
        snprintf(err, errlen, "%s: chunk %u (TIMELINE) at offset %llu is corrupt (CRC mismatch)",
                 t->path, c->no, (unsigned long long)c->off);
        return -1;
    }
    uint32_t count = rd_u32(t->buf + 4);
    if ((uint64_t)count * 16 != c->size - 8) {
        snprintf(err, errlen,
                 "%s: chunk %u (TIMELINE) at offset %llu is corrupt (size does not match the "
                 "event count)",
                 t->path, c->no, (unsigned long long)c->off);
        return -1;
    }
    *thread = rd_u32(t->buf);
    *recs = t->buf + 8;
    *n = count;
    return 1;
}

void cp_tl_decode(const uint8_t *recs, uint32_t i, struct cpyprof_tl_rec *out)
{
    const uint8_t *r = recs + (size_t)i * 16;
    out->time_ns = (int64_t)rd_u64(r);
    out->func = rd_u32(r + 8);
    out->info = rd_u32(r + 12);
}

void cp_tl_rewind(cp_tl_file *t)
{
    t->next = 0;
}

void cp_tl_close(cp_tl_file *t)
{
    if (t->f)
        fclose(t->f);
    free(t->chunks);
    free(t->info);
    free(t->buf);
    cp_alloc_free(&t->alloc);
    cp_profile_free(&t->p);
    memset(t, 0, sizeof *t);
}
