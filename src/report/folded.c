/* folded.c — collapsed stacks from the merged tree (see folded.h). */
#include "report/folded.h"
#include "report/model.h"
#include "report/text.h"

#include <stdlib.h>
#include <string.h>

int cp_folded_write(FILE *out, const cp_profile *p, bool per_thread, char *err, size_t errlen)
{
    cp_merged m;
    if (cp_merged_build(p, per_thread, &m, err, errlen))
        return -1;
    uint32_t *order = malloc(m.n * sizeof *order);
    /* plen[d]: length of the path text of the ancestor at depth d */
    size_t *plen = malloc((m.n + 1) * sizeof *plen);
    char *path = NULL;
    size_t cap = 0;
    int r = -1;
    if (!order || !plen)
        goto oom;
    cp_merged_preorder(&m, order);
    plen[0] = 0;
    for (size_t k = 1; k < m.n; k++) {
        const cp_mnode *n = &m.nodes[order[k]];
        const char *label = m.frames[n->frame].label;
        size_t at = plen[n->depth - 1], ll = strlen(label);
        if (at + ll + 2 > cap) {
            size_t nc = (at + ll + 2) * 2;
            char *np = realloc(path, nc);
            if (!np)
                goto oom;
            path = np;
            cap = nc;
        }
        if (n->depth > 1)
            path[at++] = ';';
        memcpy(path + at, label, ll);
        plen[n->depth] = at + ll;
        if (n->self_ns > 0) {
            fwrite(path, 1, plen[n->depth], out);
            fprintf(out, " %llu\n", (unsigned long long)n->self_ns);
        }
    }
    if (cp_flush_checked(out, "cannot write folded stacks", err, errlen))
        goto done;
    r = 0;
    goto done;
oom:
    snprintf(err, errlen, "out of memory while writing folded stacks");
done:
    free(order);
    free(plen);
    free(path);
    cp_merged_free(&m);
    return r;
}
