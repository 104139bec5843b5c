/*
 * flame_diff.h — the BASE side of a differential flamegraph (`cpyprof flame
 * --diff BASE NEW`): the shape and widths come from NEW's merged tree; each
 * of its stacks is looked up in BASE's merged tree to colour it by change.
 *
 * Stacks are matched by their frames' names and files, lines ignored and
 * files made relative to each profile's META cwd (as in `cpyprof diff`), so
 * two checkouts of slightly different code still line up.
 */
#ifndef CPYPROF_REPORT_FLAME_DIFF_H
#define CPYPROF_REPORT_FLAME_DIFF_H

#include "report/model.h"
#include "report/svg.h"

/** out[k] describes NEW's merged node order[k] (the order of the
 *  flamegraph's nodes: pre-order, node 0 the root) in BASE. Returns 0 or -1
 *  (out of memory, message in err). */
int cp_flame_diff_fill(const cp_profile *base, const cp_merged *bm, const cp_profile *new_,
                       const cp_merged *nm, const uint32_t *order, cp_flame_base *out, char *err,
                       size_t errlen);

#endif
