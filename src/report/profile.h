/*
 * profile.h — a profile file loaded into memory (the reader).
 *
 * The reader trusts nothing in the file: every length is checked against the
 * bytes that are really there, every payload against its CRC, every id
 * against the ids the file defines, and no allocation is larger than the
 * file itself justifies. Three outcomes:
 *
 *   - complete: the file ends with a TRAILER; everything is loaded.
 *   - truncated: the file stops early (no TRAILER, or a chunk cut short, as
 *     after a kill or a full disk). Everything up to the last complete chunk
 *     is loaded, `truncated` is set and cp_profile_warning() describes it.
 *     Tools print the warning and carry on.
 *   - corrupt: bad magic, another format version, a CRC mismatch, a chunk
 *     whose content contradicts its size, a reference to an id that is never
 *     defined. Loading fails with one line naming the file, the chunk and its
 *     offset; tools exit non-zero.
 *
 * Ids: strings keep the file's ids (dense from 0). Functions and threads are
 * stored sorted by their file id; tree nodes and events refer to them by
 * *index* into those arrays (resolved by the reader), not by file id.
 */
#ifndef CPYPROF_REPORT_PROFILE_H
#define CPYPROF_REPORT_PROFILE_H

#include <cpyprof/format.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** One META entry. Both texts are NUL-terminated copies; a value may itself
 *  contain NUL bytes (argv), hence value_len. */
typedef struct cp_meta_entry {
    const char *key;
    const char *value;
    uint32_t value_len;
} cp_meta_entry;

/** A call-tree node as loaded: like cpyprof_node_rec, but `func` is an index
 *  into cp_profile.funcs and `parent` an index into the same thread's nodes
 *  (always smaller than the node's own index), or CPYPROF_NONE for a root. */
typedef struct cp_node {
    uint32_t parent;
    uint32_t func;
    uint64_t calls;
    uint64_t total_ns;
    uint32_t line; /* SAMPLES: the source line the frame was executing; 0 otherwise */
} cp_node;

/** A thread and its call tree. Several TREE chunks for one thread are kept
 *  side by side (a forest); a THREAD chunk seen again replaces the record. */
typedef struct cp_thread {
    struct cpyprof_thread_rec rec; /* rec.id is the file's thread id */
    bool defined;                  /* false: referenced by a TREE/EVENTS chunk, never described */
    cp_node *nodes;
    size_t n_nodes;
} cp_thread;

/** An event; `thread` is an index into cp_profile.threads. The record's
 *  fields are as in the file (for CALL/RETURN, rec.a is a file function id). */
typedef struct cp_event {
    uint32_t thread;
    struct cpyprof_event_rec rec;
} cp_event;

typedef struct cp_profile {
    cp_meta_entry *meta; /* in file order; lookups take the last match */
    size_t n_meta;

    const char **strings;  /* strings[id], NUL-terminated */
    uint32_t *string_lens; /* lengths (a string may contain NUL bytes) */
    size_t n_strings;

    struct cpyprof_func_rec *funcs; /* sorted by id, ids unique */
    size_t n_funcs;

    cp_thread *threads; /* sorted by rec.id, ids unique */
    size_t n_threads;

    cp_event *events; /* in file order */
    size_t n_events;

    /* Trees came from SAMPLES chunks (sampling mode): node calls are 0 and
     * total_ns holds inclusive sample counts, not ns. */
    bool samples;

    bool has_trailer;
    struct cpyprof_trailer_rec trailer; /* zero when there is no trailer */

    bool truncated;          /* the file stops before its trailer */
    char truncation[200];    /* why, e.g. "no trailer"; "" when not truncated */
    uint64_t file_size;      /* bytes in the file */
    uint64_t bytes_kept;     /* bytes up to the end of the last chunk loaded */
    uint32_t chunks_kept;    /* complete chunks loaded (trailer included) */
    uint32_t chunks_unknown; /* chunks of unknown type, skipped */
    uint64_t trailing_bytes; /* bytes after the trailer, ignored */
    /* References a truncated file could not resolve (the definition was in
     * the lost part) were pointed at a "[unknown]" function or dropped. */
    uint64_t unresolved;

    void *arena_; /* private: owner of all the text */
} cp_profile;

/** Loads the profile at `path`. Returns 0 (also for a truncated file: check
 *  `truncated`), or -1 with a one-line message in err that starts with the
 *  path, e.g. "out.cpyprof: not a cpyprof profile (bad magic)". On failure
 *  `p` is left empty (safe to free). */
int cp_profile_load(cp_profile *p, const char *path, char *err, size_t errlen);

/** Same from memory; `name` is used in messages in place of the path. */
int cp_profile_load_mem(cp_profile *p, const void *data, size_t size, const char *name, char *err,
                        size_t errlen);

/** Reads the whole file at `path` into *out (malloc'ed; the caller frees)
 *  and its length into *size. Returns 0, or -1 with "cannot read profile
 *  'PATH': why" in err. */
int cp_profile_read_file(const char *path, uint8_t **out, size_t *size, char *err, size_t errlen);

/** Reads the file at `path` and hands its image to `parse`, which fills
 *  `out` (the ALLOC and GIL readers); a parse error gets the path in front:
 *  "PATH: why". Returns parse's result, or -1 when the file is unreadable. */
int cp_profile_parse_file(const char *path,
                          int (*parse)(const void *data, size_t size, void *out, char *err,
                                       size_t errlen),
                          void *out, char *err, size_t errlen);

/** Frees everything; `p` becomes empty. Safe on an empty profile. */
void cp_profile_free(cp_profile *p);

/** The value of meta key `key` (the last one if repeated), or NULL. */
const char *cp_profile_meta(const cp_profile *p, const char *key);

/** Same, also returning the value's length (values may hold NUL bytes). */
const char *cp_profile_meta_len(const cp_profile *p, const char *key, size_t *len);

/** String `id`, or NULL for CPYPROF_NONE or an id out of range. */
const char *cp_profile_string(const cp_profile *p, uint32_t id);

/** Index in p->funcs of the function with file id `id`, or -1. */
long cp_profile_func_index(const cp_profile *p, uint32_t id);

/** Index in p->threads of the thread with file id `id`, or -1. */
long cp_profile_thread_index(const cp_profile *p, uint32_t id);

/** Writes the truncation warning for tools, e.g. "profile is truncated (no
 *  trailer): kept 12 chunks, 81234 of 81234 bytes". Returns false (and
 *  writes "") when the profile is complete. */
bool cp_profile_warning(const cp_profile *p, char *buf, size_t n);

/** A NUL-terminated copy of s[0..n) owned by `p` (freed with it); NULL when
 *  out of memory. */
char *cp_profile_add_text(cp_profile *p, const char *s, size_t n);

/** Moves every text `src` owns to `dst` (pointers into it stay valid and
 *  now live as long as `dst`); `src` no longer owns any. */
void cp_profile_take_text(cp_profile *dst, cp_profile *src);

/** Merges the profiles of several processes (one file each, as written with
 *  the subprocesses option) into `out`: the threads of each process keep
 *  their call trees below one new root frame "process PID: COMMAND" (a
 *  SPECIAL function), so every view (table, flamegraph, folded stacks)
 *  shows which process ran what. Parts are ordered by start time; `out`
 *  takes the first one's META and sums the trailers' counters (the duration
 *  is the longest). Sampled and traced profiles do not mix. `parts` are
 *  emptied (their text moves to `out`) whatever the outcome. Returns 0 or
 *  -1 with err set. */
int cp_profile_merge(cp_profile *parts, size_t n, cp_profile *out, char *err, size_t errlen);

/** "META", "STRINGS", ... or "unknown" for a chunk type. */
const char *cp_chunk_type_name(uint32_t type);

#endif
