/*
 * folded.h — collapsed stacks ("folded" format) for flamegraph.pl,
 * inferno, speedscope and friends.
 *
 * One line per unique stack: frames from the outermost down, joined by ';',
 * a space, and the stack's self time in ns. Stacks with zero self time are
 * left out. Frames are labelled "qualname (file:line)" (Python),
 * "qualname (module)" (builtins) or "qualname" (special); ';' inside a label
 * becomes ',' and control characters (newlines) become spaces. Lines come in
 * depth-first order, siblings sorted by label, a parent before its children.
 */
#ifndef CPYPROF_REPORT_FOLDED_H
#define CPYPROF_REPORT_FOLDED_H

#include "report/profile.h"

#include <stdbool.h>
#include <stdio.h>

/** Writes the folded stacks of all threads merged, or with `per_thread`
 *  each stack prefixed by a "thread NAME" frame. Returns 0, or -1 with err
 *  set (out of memory, write error). */
int cp_folded_write(FILE *out, const cp_profile *p, bool per_thread, char *err, size_t errlen);

#endif
