/*
 * model.h — views derived from a loaded profile's call trees.
 *
 *   - the flat table: one row per function, over one thread or all;
 *   - the tree walk: every root-to-node path of a thread, in pre-order;
 *   - frame labels: "qualname (file:line)" and friends;
 *   - the merged tree: the call trees of all threads merged by frame label
 *     (optionally one subtree per thread), the input of folded stacks and
 *     flamegraphs.
 *
 * Definitions (per function f, over the chosen threads):
 *   calls    = sum of `calls` of f's nodes
 *   self     = sum over f's nodes of (total - sum of the children's totals),
 *              each term clamped at 0 (a damaged tree must not go negative)
 *   total    = sum of `total_ns` of f's nodes that have no ancestor of f:
 *              in recursion fib -> fib -> fib only the outermost counts, so
 *              inclusive time is not counted twice.
 */
#ifndef CPYPROF_REPORT_MODEL_H
#define CPYPROF_REPORT_MODEL_H

#include "report/profile.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- flat table --------------------------------------------------------- */

typedef struct cp_func_stats {
    uint32_t func; /* index into p->funcs */
    uint64_t calls;
    uint64_t self_ns;
    uint64_t total_ns;
} cp_func_stats;

typedef struct cp_flat {
    cp_func_stats *rows; /* functions that appear in a tree, by func index */
    size_t n;
} cp_flat;

/** Builds the flat table of thread index `thread` (into p->threads), or of
 *  all threads merged when `thread` is -1. Returns 0 or -1 with err set. */
int cp_flat_build(const cp_profile *p, long thread, cp_flat *out, char *err, size_t errlen);

void cp_flat_free(cp_flat *f);

/* ---- line table (sampled profiles) --------------------------------------- */

/** One (function, line) pair of a sampled profile. `self` counts the samples
 *  whose innermost frame executed that line; `total` those with the line
 *  anywhere on the stack, counted once per sample (outermost occurrence). */
typedef struct cp_line_stats {
    uint32_t func; /* index into p->funcs */
    uint32_t line; /* source line; 0 when unknown (trace profiles) */
    uint64_t self;
    uint64_t total;
} cp_line_stats;

typedef struct cp_lines {
    cp_line_stats *rows; /* ordered by function index, then line */
    size_t n;
} cp_lines;

/** Builds the line table of thread index `thread`, or of all threads when
 *  `thread` is -1, from the nodes' `line` fields. Returns 0 or -1 with err
 *  set. */
int cp_lines_build(const cp_profile *p, long thread, cp_lines *out, char *err, size_t errlen);

void cp_lines_free(cp_lines *l);

/* ---- tree walk ---------------------------------------------------------- */

/** Called on entering a node (`leave` false) and again after its subtree
 *  (`leave` true). path[0..depth-1] are node indices from the root down to
 *  the current node, path[depth-1]. Return non-zero to stop the walk. */
typedef int (*cp_walk_fn)(void *ctx, const cp_thread *t, const uint32_t *path, size_t depth,
                          bool leave);

/** Walks thread `t`'s forest depth-first; roots and children in node index
 *  order. No recursion (trees can be 100000 deep). Returns 0, the callback's
 *  non-zero value, or -1 when out of memory. */
int cp_tree_walk(const cp_thread *t, cp_walk_fn fn, void *ctx);

/* ---- labels -------------------------------------------------------------- */

/** The function's name / file, "?" when unknown. */
const char *cp_func_name(const cp_profile *p, uint32_t func);
const char *cp_func_file(const cp_profile *p, uint32_t func);

/** "qualname (file:line)" for Python, "qualname (file)" for builtins,
 *  "qualname" for special functions and when the file is unknown. Returns
 *  the length the full label needs (like snprintf). */
size_t cp_func_label(const cp_profile *p, uint32_t func, char *buf, size_t n);

/** "file:line" (Python), "file" (builtins) or "" into buf. Returns buf. */
char *cp_func_location(const cp_profile *p, uint32_t func, char *buf, size_t n);

/** "MainThread", or "#ID" (e.g. "#3") when the thread has no name. Returns buf. */
char *cp_thread_name(const cp_profile *p, size_t thread, char *buf, size_t n);

/* ---- merged tree ----------------------------------------------------------- */

typedef struct cp_mframe {
    char *label;     /* unique; folded-safe: no ';' and no control characters */
    char *name;      /* qualname, or "thread NAME" for a thread frame */
    char *detail;    /* "file:line", "file", or NULL */
    int kind;        /* enum cpyprof_func_kind; thread frames are SPECIAL */
    uint32_t func;   /* a function with this label (index into p->funcs), or NONE */
    uint32_t thread; /* for a thread frame: a thread with this label, else NONE */
} cp_mframe;

typedef struct cp_mnode {
    uint32_t parent;       /* CPYPROF_NONE for node 0, the root ("all") */
    uint32_t frame;        /* index into frames; CPYPROF_NONE for the root */
    uint32_t first_child;  /* children are ordered by label; CPYPROF_NONE: leaf */
    uint32_t next_sibling; /* CPYPROF_NONE: last child */
    uint32_t depth;        /* 0 for the root */
    uint64_t calls;
    uint64_t self_ns;  /* sum of the merged nodes' self times */
    uint64_t total_ns; /* self_ns + the children's total_ns */
} cp_mnode;

typedef struct cp_merged {
    cp_mnode *nodes; /* node 0 is the root; a parent's index is below its children's */
    size_t n;
    cp_mframe *frames; /* sorted by label */
    size_t n_frames;
} cp_merged;

/** Merges the trees of all threads by frame label. With `per_thread`, each
 *  thread's tree hangs under a frame "thread NAME" below the root. Returns 0
 *  or -1 with err set. */
int cp_merged_build(const cp_profile *p, bool per_thread, cp_merged *m, char *err, size_t errlen);

/** Fills order[0..m->n-1] with node indices in depth-first pre-order,
 *  siblings in label order (order[0] is the root). */
void cp_merged_preorder(const cp_merged *m, uint32_t *order);

void cp_merged_free(cp_merged *m);

#endif
