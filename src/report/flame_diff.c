/*
 * flame_diff.c — matching NEW's stacks in BASE for `flame --diff` (see
 * flame_diff.h).
 *
 * Each merged node gets a 64-bit hash of its path: the parent's hash mixed
 * with the frame's key (name, and file without the line). BASE's hashes are
 * sorted with their inclusive values (equal paths added up: two lines of one
 * function fold together), and NEW's nodes are looked up by binary search.
 * A collision of 64-bit hashes between two different stacks is possible in
 * principle; it would only mis-colour one frame.
 */
#include "report/flame_diff.h"
#include "report/diff.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    h ^= 0xff; /* field separator */
    h *= 1099511628211ull;
    return h;
}

/* The frame's key: name, then the file part of detail without ":LINE",
 * normalised like cpyprof diff's keys. */
static uint64_t frame_hash(uint64_t parent, const cp_mframe *f, const char *cwd)
{
    uint64_t h = mix(parent, f->name, strlen(f->name));
    if (f->detail) {
        char file[4096], key[4096];
        size_t n = strlen(f->detail);
        size_t e = n;
        while (e > 0 && isdigit((unsigned char)f->detail[e - 1]))
            e--;
        if (e > 0 && e < n && f->detail[e - 1] == ':')
            n = e - 1;
        if (n >= sizeof file)
            n = sizeof file - 1;
        memcpy(file, f->detail, n);
        file[n] = 0;
        cp_diff_file_key(file, cwd, key, sizeof key);
        h = mix(h, key, strlen(key));
    }
    return h;
}

typedef struct hv {
    uint64_t hash;
    uint64_t value;
} hv;

static int cmp_hv(const void *a, const void *b)
{
    uint64_t x = ((const hv *)a)->hash, y = ((const hv *)b)->hash;
    return (x > y) - (x < y);
}

/* Path hashes of every node of m (parents come before children). */
static uint64_t *path_hashes(const cp_profile *p, const cp_merged *m)
{
    uint64_t *h = malloc((m->n ? m->n : 1) * sizeof *h);
    if (!h)
        return NULL;
    const char *cwd = cp_profile_meta(p, "cwd");
    for (size_t i = 0; i < m->n; i++)
        h[i] = i == 0 ? 14695981039346656037ull
                      : frame_hash(h[m->nodes[i].parent], &m->frames[m->nodes[i].frame], cwd);
    return h;
}

int cp_flame_diff_fill(const cp_profile *base, const cp_merged *bm, const cp_profile *new_,
                       const cp_merged *nm, const uint32_t *order, cp_flame_base *out, char *err,
                       size_t errlen)
{
    uint64_t *bh = path_hashes(base, bm), *nh = path_hashes(new_, nm);
    hv *table = malloc((bm->n ? bm->n : 1) * sizeof *table);
    int rc = -1;
    if (!bh || !nh || !table) {
        snprintf(err, errlen, "out of memory while drawing the differential flamegraph");
        goto done;
    }
    for (size_t i = 0; i < bm->n; i++)
        table[i] = (hv){bh[i], bm->nodes[i].total_ns};
    qsort(table, bm->n, sizeof *table, cmp_hv);
    size_t w = 0;
    for (size_t i = 0; i < bm->n; i++) {
        if (w > 0 && table[w - 1].hash == table[i].hash)
            table[w - 1].value += table[i].value;
        else
            table[w++] = table[i];
    }
    for (size_t k = 0; k < nm->n; k++) {
        hv key = {nh[order[k]], 0};
        const hv *hit = bsearch(&key, table, w, sizeof *table, cmp_hv);
        out[k].present = hit != NULL;
        out[k].value = hit ? hit->value : 0;
    }
    rc = 0;
done:
    free(bh);
    free(nh);
    free(table);
    return rc;
}
