/*
 * sample_agg.h — the writer thread's side of sampling: turns the sample
 * records of one thread's ring (sample_rec.h) into a stack tree whose nodes
 * are (function, line) with self sample counts.
 *
 * Python-free and single-threaded: only the writer thread (or the stopping
 * thread after the writer was joined) calls these. The tree (core/tree.h) is
 * read by the SIGTERM dump on the same writer thread, so no concurrency.
 *
 * Node fields reused from cp_tree_node: key = ((line << 32) | func) + 1,
 * func = function id, calls = self samples, ticks = self samples taken while
 * the thread held the GIL.
 */
#ifndef CPYPROF_PYTHON_SAMPLE_AGG_H
#define CPYPROF_PYTHON_SAMPLE_AGG_H

#include "core/ring.h"
#include "core/tree.h"
#include "python/sample_rec.h"

#include <stdbool.h>
#include <stdint.h>

/** Functions met as CODE entries (not registered with the GIL when
 *  sampled), deduplicated by (name, file, first line). Their ids are
 *  CP_SAMPLE_PRIVATE_ID | index; sample_dump.c maps them to file ids. */
typedef struct cp_sfunc {
    char *name;
    char *file;
    uint32_t line;
    uint32_t kind; /* CPYPROF_FUNC_PYTHON, or CPYPROF_FUNC_BUILTIN for a
                    * native frame (name = symbol, file = object basename) */
} cp_sfunc;

typedef struct cp_sfuncs {
    cp_sfunc *items;
    uint32_t n, cap;
    uint32_t *slots; /* hash: index + 1, 0 = empty */
    uint32_t mask;
} cp_sfuncs;

void cp_sfuncs_init(cp_sfuncs *f);
void cp_sfuncs_destroy(cp_sfuncs *f);
/** Id of (name, file, line), added if new; CPYPROF_NONE when out of memory. */
uint32_t cp_sfuncs_intern(cp_sfuncs *f, const char *name, uint32_t nlen, const char *file,
                          uint32_t flen, uint32_t line);
/** The same for any kind (kinds are part of the identity). */
uint32_t cp_sfuncs_intern_kind(cp_sfuncs *f, const char *name, uint32_t nlen, const char *file,
                               uint32_t flen, uint32_t line, uint32_t kind);

/** Turns a native instruction address (a NATIVE entry) into a function id
 *  of `funcs` (symbolizing it), or CPYPROF_NONE to leave the frame out.
 *  Called on the writer thread only. */
typedef uint32_t (*cp_sagg_native_fn)(cp_sfuncs *funcs, uint64_t ip);
/** Sets the resolver used by every cp_sagg (NULL: NATIVE entries are left
 *  out). Set before sampling starts, never changed while samples flow. */
void cp_sagg_set_native(cp_sagg_native_fn fn);

typedef struct cp_sagg_frame {
    uint32_t func;
    uint32_t line;
} cp_sagg_frame;

typedef struct cp_sagg {
    cp_tree tree;
    cp_sfuncs *funcs;       /* shared by all threads (writer-only) */
    uint32_t truncated_fid; /* function id of the "[truncated]" marker */
    /* the sample being assembled */
    bool in_sample;
    uint32_t want, have, flags;
    uint64_t weight;
    bool last_ok; /* frames/flags hold the last committed sample (REPEAT) */
    cp_sagg_frame frames[CP_SAMPLE_MAX_FRAMES];
    /* a CODE entry waiting for its text */
    bool in_code;
    uint32_t code_first, code_line, name_len, file_len, text_have;
    char text[CP_SAMPLE_NAME_MAX + CP_SAMPLE_FILE_MAX + CP_SREC_TEXT_BYTES];
    /* counters */
    uint64_t samples;   /* samples added to the tree (weights summed) */
    uint64_t malformed; /* samples abandoned (bad record sequence) */
    uint64_t lost;      /* samples not added (tree full, out of memory) */
} cp_sagg;

/** Returns 0, or -1 when out of memory. */
int cp_sagg_init(cp_sagg *a, cp_sfuncs *funcs, uint32_t truncated_fid);
void cp_sagg_destroy(cp_sagg *a);

/** Adds the last committed sample `count` more times (a REPEAT record, or
 *  the repeats still counted when the thread's sampling ended). */
void cp_sagg_repeat(cp_sagg *a, uint64_t count);

/** Feeds one sample record (cp_srec_is_sample(r->kind) is true). */
void cp_sagg_feed(cp_sagg *a, const cp_record *r);

static inline uint32_t cp_sagg_node_line(const cp_tree_node *n)
{
    return (uint32_t)((n->key - 1) >> 32);
}

#endif
