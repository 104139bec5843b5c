/*
 * cpyprof/format.h — the profile file format, version 1.
 *
 * A profile is a 16-byte file header followed by chunks. Every chunk carries
 * its type, its payload size and a CRC-32 of its payload, so a reader can stop
 * cleanly at the last complete chunk of a file that was cut short (a killed
 * process, a full disk) and can reject a corrupt one. All integers are
 * little-endian and unaligned; readers must not cast file bytes to these
 * structs on big-endian hosts (the reader decodes field by field).
 *
 * Order of chunks written by the profiler:
 *   META, then any number of STRINGS / FUNCS / THREAD / TREE / EVENTS / SAMPLES / GIL /
 *   ALLOC / GC chunks
 *   in any order (a chunk only refers to ids defined by earlier chunks, or by
 *   later ones before the TRAILER), and last a TRAILER. A file without a
 *   TRAILER is truncated: readers report it and keep what they have.
 *
 * docs/format.md is the prose version of this header; keep them together.
 */
#ifndef CPYPROF_FORMAT_H
#define CPYPROF_FORMAT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The 8 magic bytes at offset 0. */
#define CPYPROF_MAGIC "CPYPROF\0"
#define CPYPROF_MAGIC_LEN 8
/** Bumped on any incompatible change; readers refuse other versions. */
#define CPYPROF_FORMAT_VERSION 1u

/** Id meaning "none" in string, function and node references. */
#define CPYPROF_NONE 0xFFFFFFFFu

/** File header: magic (8), u32 version, u32 flags (0). 16 bytes. */
#define CPYPROF_FILE_HEADER_SIZE 16

/** Chunk header: u32 type, u32 crc32(payload), u64 payload size. 16 bytes. */
#define CPYPROF_CHUNK_HEADER_SIZE 16

/** Largest payload a reader accepts (guards against absurd sizes). */
#define CPYPROF_MAX_CHUNK_SIZE (1ull << 30)

enum cpyprof_chunk_type {
    /* Key/value metadata: repeated {u32 klen, key, u32 vlen, value}, UTF-8.
     * Keys written by the profiler (all values are text):
     *   cpyprof_version, python_version, python_executable, pid, ppid,
     *   argv (arguments joined by NUL bytes), mode (trace|sample),
     *   clock_source (tsc|monotonic), tsc_hz, start_unix_ns, hostname, cwd,
     *   builtins (0|1), activation (preload|import).
     * Unknown keys must be ignored by readers. */
    CPYPROF_CHUNK_META = 1,

    /* Strings: u32 first_id, u32 count, then count x {u32 len, bytes}.
     * Ids are first_id, first_id+1, ...; ids are dense from 0 over a file. */
    CPYPROF_CHUNK_STRINGS = 2,

    /* Functions: u32 count, then count x struct cpyprof_func_rec (24 bytes). */
    CPYPROF_CHUNK_FUNCS = 3,

    /* One thread: struct cpyprof_thread_rec (48 bytes). */
    CPYPROF_CHUNK_THREAD = 4,

    /* A thread's aggregated call tree: u32 thread_id, u32 count, then count x
     * struct cpyprof_node_rec (24 bytes). Node i's parent is < i, or
     * CPYPROF_NONE for a root. */
    CPYPROF_CHUNK_TREE = 5,

    /* Raw events drained from a thread's ring: u32 thread_id, u32 count,
     * then count x struct cpyprof_event_rec (32 bytes). */
    CPYPROF_CHUNK_EVENTS = 6,

    /* A thread's sampled stacks (mode sample): u32 thread_id, u32 count,
     * then count x struct cpyprof_sample_node_rec (32 bytes). Node i's
     * parent is < i, or CPYPROF_NONE for a root. Functions may be defined by
     * STRINGS/FUNCS chunks written right before the SAMPLES chunks. */
    CPYPROF_CHUNK_SAMPLES = 8,

    /* GIL accounting (option gil=exact|sample), written before the TRAILER.
     * u32 kind, then:
     *   kind 1 (CPYPROF_GIL_RUN): struct cpyprof_gil_run_rec, once;
     *   kind 2 (CPYPROF_GIL_THREAD): struct cpyprof_gil_thread_rec, then
     *     nbuckets u64 hold histogram counts, nbuckets u64 wait histogram
     *     counts (bucket 0: 0 ns; bucket b: [2^(b-1), 2^b) ns; the last is
     *     open), then nnodes x struct cpyprof_gil_node_rec.
     * Function ids may be defined by FUNCS chunks later in the file. */
    CPYPROF_CHUNK_GIL = 9,

    /* Allocation counts (option alloc), written before the TRAILER.
     * u32 kind, then:
     *   kind 1 (CPYPROF_ALLOC_RUN): struct cpyprof_alloc_run_rec, once, after
     *     the thread records;
     *   kind 2 (CPYPROF_ALLOC_THREAD): u32 thread_id, u32 count, then count x
     *     struct cpyprof_alloc_node_rec (40 bytes). Node i's parent is < i,
     *     or CPYPROF_NONE for a root;
     *   kind 3 (CPYPROF_ALLOC_LIVE, mode timeline): u32 count, then count x
     *     struct cpyprof_alloc_live_rec (16 bytes): the bytes held by counted
     *     blocks over time, in time order, over all such chunks.
     * Function ids may be defined by FUNCS chunks later in the file. */
    CPYPROF_CHUNK_ALLOC = 10,

    /* Garbage collections (option alloc): u32 count, u32 reserved, u64
     * dropped (collections not recorded: the table was full), then count x
     * struct cpyprof_gc_rec (48 bytes), in time order. */
    CPYPROF_CHUNK_GC = 11,
    /* A thread's timeline (mode timeline): u32 thread_id, u32 count, then
     * count x struct cpyprof_tl_rec (16 bytes), in time order. Per thread,
     * over all its TIMELINE chunks in file order, the events nest: every
     * BEGIN has its END, an END closes the innermost open BEGIN (the writer
     * synthesizes begins and ends where the real ones are unknown and flags
     * them CPYPROF_TL_SYNTH). GIL events (kind CPYPROF_TL_GIL, with
     * gil=exact) are interleaved in time order; per thread they alternate
     * ACQUIRED, RELEASED, starting with ACQUIRED and ending with RELEASED.
     * Function ids may be defined later in the file. */
    CPYPROF_CHUNK_TIMELINE = 12,

    /* A thread's timeline accounting, written once per thread before the
     * TRAILER: struct cpyprof_tl_info_rec (64 bytes). */
    CPYPROF_CHUNK_TIMELINE_INFO = 13,

    /* Always last: struct cpyprof_trailer_rec (64 bytes). */
    CPYPROF_CHUNK_TRAILER = 0x7F,
};

/** Kinds of function. */
enum cpyprof_func_kind {
    CPYPROF_FUNC_PYTHON = 0,  /**< a Python code object */
    CPYPROF_FUNC_BUILTIN = 1, /**< a C function or method (PyCFunction) */
    CPYPROF_FUNC_SPECIAL = 2, /**< a marker made by the profiler, e.g. "[truncated]" */
};

/** A function. name is the qualified name ("Class.method", "fib",
 *  "len", "list.append"), file the source file (for builtins: the module,
 *  e.g. "builtins", "_io"), line the first line of the code object (0 for
 *  builtins). 24 bytes. */
struct cpyprof_func_rec {
    uint32_t id;
    uint32_t name; /* string id */
    uint32_t file; /* string id */
    uint32_t line;
    uint32_t kind;  /* enum cpyprof_func_kind */
    uint32_t flags; /* reserved, 0 */
};

/** A thread. id is the thread's index in this file (0 = the thread that
 *  started the profiler). ident is threading.get_ident() (pthread_t),
 *  native_tid the kernel thread id. Times are ns since the profile start
 *  (monotonic clock); end_ns is -1 if the thread was still running when the
 *  profile was written. 48 bytes. */
struct cpyprof_thread_rec {
    uint32_t id;
    uint32_t name; /* string id, CPYPROF_NONE if unknown */
    uint64_t ident;
    uint64_t native_tid;
    int64_t start_ns;
    int64_t end_ns;
    uint32_t flags; /* CPYPROF_THREAD_* */
    uint32_t reserved;
};

#define CPYPROF_THREAD_MAIN 1u         /* the interpreter's main thread */
#define CPYPROF_THREAD_STARTED_LATE 2u /* created after profiling began */

/** A call-tree node: a function reached by one path from a root. calls
 *  counts entries of the function along this path; total_ns is inclusive
 *  time. Self time is total_ns minus the children's total_ns. 24 bytes. */
struct cpyprof_node_rec {
    uint32_t parent; /* node index, or CPYPROF_NONE */
    uint32_t func;   /* function id */
    uint64_t calls;
    uint64_t total_ns;
};

/** A node of a sampled stack tree: function `func` at source line `line`,
 *  reached by one path from a root (an outermost frame, or the
 *  "[truncated]" marker above stacks deeper than 900 frames). samples counts
 *  the samples whose innermost frame was this node (self samples; weighted
 *  by timer overruns); gil_samples those of them taken while the thread held
 *  the GIL. Inclusive counts are the sums over subtrees. kind is 0 for a
 *  Python frame (native frames later). 32 bytes. */
struct cpyprof_sample_node_rec {
    uint32_t parent; /* node index, or CPYPROF_NONE */
    uint32_t func;   /* function id */
    uint32_t line;   /* line being executed, 0 if unknown */
    uint32_t kind;   /* 0: Python frame */
    uint64_t samples;
    uint64_t gil_samples;
};

/** Event kinds carried in EVENTS chunks. */
enum cpyprof_event_kind {
    CPYPROF_EV_THREAD_START = 1, /* a = native tid low 32 bits */
    CPYPROF_EV_THREAD_END = 2,
    CPYPROF_EV_CALL = 3,   /* a = function id */
    CPYPROF_EV_RETURN = 4, /* a = function id */
};

/** One event. time_ns is ns since profile start. a, b, c depend on kind.
 *  32 bytes. */
struct cpyprof_event_rec {
    int64_t time_ns;
    uint32_t kind;
    uint32_t a;
    uint64_t b;
    uint64_t c;
};

/** A timeline event. info packs: bits 0-1 the kind (CPYPROF_TL_BEGIN,
 *  CPYPROF_TL_END, CPYPROF_TL_GIL), bit 2 CPYPROF_TL_SYNTH, bits 8-31 the
 *  frame's depth (1 = outermost frame recorded; 0 for GIL events). A GIL
 *  event (option gil=exact) says that the thread took the GIL (func =
 *  CPYPROF_TL_GIL_ACQUIRED) or dropped it (func = CPYPROF_TL_GIL_RELEASED);
 *  it is not part of the call nesting. 16 bytes. */
struct cpyprof_tl_rec {
    int64_t time_ns; /* ns since the profile start */
    uint32_t func;   /* function id */
    uint32_t info;
};

#define CPYPROF_TL_BEGIN 1u
#define CPYPROF_TL_END 2u
#define CPYPROF_TL_KIND_MASK 3u
#define CPYPROF_TL_GIL 3u   /* a GIL transition: func says which (files since GIL tracks) */
#define CPYPROF_TL_SYNTH 4u /* made by the profiler: see CPYPROF_CHUNK_TIMELINE */
#define CPYPROF_TL_GIL_RELEASED 0u
#define CPYPROF_TL_GIL_ACQUIRED 1u
#define CPYPROF_TL_DEPTH_SHIFT 8
#define CPYPROF_TL_INFO(kind, flags, depth) ((kind) | (flags) | ((uint32_t)(depth) << 8))

/** How a timeline was bounded. */
enum cpyprof_tl_keep {
    CPYPROF_TL_KEEP_ALL = 0,  /* streaming: every event (minus drops) is in the file */
    CPYPROF_TL_KEEP_LAST = 1, /* flight recorder: the newest events that fit the buffer */
};

/** One thread's timeline accounting. recorded: call/return events the hooks
 *  produced; written: events in this thread's TIMELINE chunks (synthesized
 *  ones included); dropped: events lost because the buffer was full
 *  (streaming); overwritten: older events the flight recorder discarded;
 *  synthesized: BEGIN/END events the profiler made (frames active at start,
 *  open at stop or thread end, or cut by a drop); first_ns/last_ns: the
 *  times of the first and last event written (-1 if none). 64 bytes. */
struct cpyprof_tl_info_rec {
    uint32_t thread_id;
    uint32_t keep; /* enum cpyprof_tl_keep */
    uint64_t recorded;
    uint64_t written;
    uint64_t dropped;
    uint64_t overwritten;
    uint64_t synthesized;
    int64_t first_ns;
    int64_t last_ns;
};

/** Kinds of GIL chunk (the u32 at the start of its payload). */
enum cpyprof_gil_kind {
    CPYPROF_GIL_RUN = 1,
    CPYPROF_GIL_THREAD = 2,
};

/** How GIL times were measured. */
enum cpyprof_gil_method {
    CPYPROF_GIL_EXACT = 1,  /* every transition: hold and wait times */
    CPYPROF_GIL_SAMPLE = 2, /* the holder read ~1000 times a second: hold shares only */
};

/** The run's GIL totals. duration_ns is the accounted interval (GIL busy
 *  fraction = sum of thread holds / duration); switches counts changes of
 *  holder (the interpreter's switch_number). samples and samples_locked are
 *  the sampler's reads and those that found the GIL held (method sample).
 *  stacks_dropped counts transitions whose stack did not fit in the node
 *  pool. 48 bytes. */
struct cpyprof_gil_run_rec {
    uint32_t method; /* enum cpyprof_gil_method */
    uint32_t reserved;
    int64_t duration_ns;
    uint64_t switches;
    uint64_t samples;
    uint64_t samples_locked;
    uint64_t stacks_dropped;
};

/** One thread's GIL totals. thread_id is the file's thread id, or
 *  CPYPROF_NONE for a thread the profile does not describe (native_tid
 *  names it, 0 if unknown). Times in ns; holds/waits still open at the end
 *  count up to the end. samples_held: sampler reads that found this thread
 *  holding (method sample). 72 bytes. */
struct cpyprof_gil_thread_rec {
    uint32_t thread_id;
    uint32_t nbuckets;
    uint64_t native_tid;
    uint64_t hold_ns;
    uint64_t wait_ns;
    uint64_t acquisitions;
    uint64_t max_hold_ns;
    uint64_t max_wait_ns;
    uint64_t samples_held;
    uint32_t nnodes;
    uint32_t reserved;
};

/** A node of a thread's GIL stack trees: function `func` reached from a
 *  root by one path. kind 0: the "wait" tree (stacks that waited for the
 *  GIL), 1: the "hold" tree (stacks that released it, charged with the hold
 *  that ended there). count and ns are self values: the transitions whose
 *  innermost frame was this node, and their wait or hold time. Node i's
 *  parent is < i and of the same kind, or CPYPROF_NONE for a root. func is
 *  CPYPROF_NONE for a frame whose function was not registered. 32 bytes. */
struct cpyprof_gil_node_rec {
    uint32_t parent;
    uint32_t func;
    uint32_t kind;
    uint32_t reserved;
    uint64_t count;
    uint64_t ns;
};

/** Kinds of ALLOC chunk (the u32 at the start of its payload). */
enum cpyprof_alloc_kind {
    CPYPROF_ALLOC_RUN = 1,
    CPYPROF_ALLOC_THREAD = 2,
    CPYPROF_ALLOC_LIVE = 3,
};

/** One point of the live-bytes series (ALLOC kind 3): at time_ns (the
 *  clock of every other record), counted blocks held live_bytes. */
struct cpyprof_alloc_live_rec {
    int64_t time_ns;
    uint64_t live_bytes;
};

/** ALLOC run flags. */
#define CPYPROF_ALLOC_NATIVE 1u       /* malloc/free of native code were counted too */
#define CPYPROF_ALLOC_PER_FUNCTION 2u /* nodes are functions (roots only), not call paths */

/** The run's allocation totals. peak_bytes is the most memory the counted
 *  blocks held at once; peak_thread/peak_node name the ALLOC node that made
 *  the allocation reaching it (CPYPROF_NONE if unknown). live_bytes: counted
 *  blocks still allocated at the end. other_*: allocations and frees on
 *  threads the profiler does not know (not in any node). frees_untracked:
 *  frees of blocks allocated before profiling began (their size is unknown;
 *  not in any node). map_full: allocations whose size could not be
 *  remembered (the size map hit its limit); their frees look untracked.
 *  72 bytes. */
struct cpyprof_alloc_run_rec {
    uint32_t flags; /* CPYPROF_ALLOC_* */
    uint32_t peak_thread;
    uint32_t peak_node;
    uint32_t reserved;
    uint64_t peak_bytes;
    uint64_t live_bytes;
    uint64_t other_allocs;
    uint64_t other_alloc_bytes;
    uint64_t other_frees;
    uint64_t other_free_bytes;
    uint64_t frees_untracked;
};

/** A node of a thread's allocation tree: function `func` reached from a
 *  root by one path (flag PER_FUNCTION: the function alone). The counts are
 *  self values: allocations made and blocks freed while this node was the
 *  innermost frame; a realloc counts as a free of the old block and an
 *  allocation of the new one. Net bytes = alloc_bytes - free_bytes. 40 bytes. */
struct cpyprof_alloc_node_rec {
    uint32_t parent;
    uint32_t func;
    uint64_t allocs;
    uint64_t alloc_bytes;
    uint64_t frees;
    uint64_t free_bytes;
};

/** One garbage collection: start time (ns since the profile start),
 *  duration, generation collected, the file's thread id that ran it (or
 *  NONE), the innermost Python function running when it started (or NONE),
 *  objects collected and uncollectable. 48 bytes. */
struct cpyprof_gc_rec {
    int64_t start_ns;
    int64_t duration_ns;
    uint32_t generation;
    uint32_t thread_id;
    uint32_t func;
    uint32_t reserved;
    uint64_t collected;
    uint64_t uncollectable;
};

/** Why the profile was written. */
enum cpyprof_end_reason {
    CPYPROF_END_STOP = 0,   /* cpyprof.stop() / context exit */
    CPYPROF_END_EXIT = 1,   /* interpreter exit (atexit) */
    CPYPROF_END_SIGNAL = 2, /* a fatal signal (SIGTERM) was caught */
};

/** Trailer. 64 bytes. */
struct cpyprof_trailer_rec {
    uint64_t events_written;
    uint64_t events_dropped;  /* ring full: records lost */
    uint64_t calls_untracked; /* calls beyond the depth limit or node table */
    uint64_t threads;
    int64_t duration_ns;
    uint32_t end_reason;   /* enum cpyprof_end_reason */
    uint32_t end_signal;   /* signal number when end_reason is SIGNAL */
    uint64_t write_errors; /* chunks the writer failed to write */
    uint64_t reserved;
};

#ifdef __cplusplus
}
#endif
#endif /* CPYPROF_FORMAT_H */
