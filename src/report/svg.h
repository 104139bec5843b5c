/*
 * svg.h — a self-contained interactive SVG flamegraph.
 *
 * The input is a tree of frames in pre-order (a node's parent comes before
 * it; node 0 is the root, drawn as "all"). Values are inclusive (a node's
 * total includes its children). The output needs nothing but a browser:
 * inline CSS and JavaScript, no network. Click zooms, Ctrl-F/the Search
 * button highlights matches and shows their share, hovering shows a tooltip
 * with the full name, value and percentage.
 */
#ifndef CPYPROF_REPORT_SVG_H
#define CPYPROF_REPORT_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct cp_flame_node {
    const char *name;   /* shown in the box: "qualname" */
    const char *detail; /* shown in tooltips: "file:line"; may be NULL */
    uint32_t parent;    /* index of the parent; UINT32_MAX for node 0 */
    uint64_t total;     /* inclusive value */
    int kind;           /* 0 python, 1 builtin/C, 2 special: picks the colour family */
} cp_flame_node;

/** A node's value in the BASE profile of a differential flamegraph. */
typedef struct cp_flame_base {
    uint64_t value; /* inclusive, as cp_flame_node.total */
    bool present;   /* BASE has this stack at all */
} cp_flame_base;

typedef struct cp_svg_options {
    const char *title;    /* e.g. "cpyprof: python3 app.py" */
    const char *subtitle; /* e.g. "wall time, 4 threads, 0 records dropped"; may be NULL */
    const char *unit;     /* "ns" (printed as s/ms/us), "samples", "bytes", "calls" */
    unsigned width;       /* pixels; default 1200 when 0 */
    double min_width_px;  /* frames narrower than this are not drawn; default 0.1 when 0 */
    bool inverted;        /* icicle (root on top) instead of flame (root at bottom) */
} cp_svg_options;

/** Writes the SVG. Returns 0, or -1 with a message in err (write error,
 *  bad tree). */
int cp_svg_write(FILE *out, const cp_flame_node *nodes, size_t n, const cp_svg_options *opt,
                 char *err, size_t errlen);

/** A differential flamegraph: the same, with base[i] the BASE value of
 *  nodes[i]. Colours by the change from BASE to `total` (red slower, blue
 *  faster, grey within 1%, stronger for larger changes: full at 4x either
 *  way; a stack absent from BASE is full red); tooltips show both values. */
int cp_svg_write_diff(FILE *out, const cp_flame_node *nodes, size_t n, const cp_flame_base *base,
                      const cp_svg_options *opt, char *err, size_t errlen);

#endif
