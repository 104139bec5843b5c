#!/usr/bin/env python3
"""Writes the hand-made edge-case profiles in tests/fuzz/crashers/ (edge-*).

The files are checked in; rerun this script only to regenerate them after a
change to the file format (docs/format.md). fuzz.regressions replays them.
"""
import os
import struct
import zlib

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "crashers")
NONE = 0xFFFFFFFF
MAGIC = b"CPYPROF\0"
HEADER = MAGIC + struct.pack("<II", 1, 0)
META, STRINGS, FUNCS, THREAD, TREE, EVENTS, SAMPLES, TRAILER = 1, 2, 3, 4, 5, 6, 8, 0x7F
ALLOC, GC = 10, 11


def chunk(ctype, payload, crc=None, size=None):
    crc = zlib.crc32(payload) if crc is None else crc
    size = len(payload) if size is None else size
    return struct.pack("<IIQ", ctype, crc, size) + payload


def text(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<I", len(b)) + b


def meta(**kv):
    return chunk(META, b"".join(text(k) + text(v) for k, v in kv.items()))


def strings(first, items):
    return chunk(STRINGS, struct.pack("<II", first, len(items)) + b"".join(text(s) for s in items))


def funcs(recs):
    return chunk(FUNCS, struct.pack("<I", len(recs)) + b"".join(struct.pack("<6I", *r) for r in recs))


def thread(tid, name=NONE, flags=1):
    return chunk(THREAD, struct.pack("<IIQQqqII", tid, name, 1234, 42, 0, 1000, flags, 0))


def tree(tid, nodes):
    return chunk(TREE, struct.pack("<II", tid, len(nodes)) + b"".join(struct.pack("<IIQQ", *n) for n in nodes))


def events(tid, evs):
    return chunk(EVENTS, struct.pack("<II", tid, len(evs)) + b"".join(struct.pack("<qIIQQ", *e) for e in evs))


def samples(tid, nodes):
    return chunk(SAMPLES, struct.pack("<II", tid, len(nodes)) + b"".join(struct.pack("<IIIIQQ", *n) for n in nodes))


def alloc_thread(tid, nodes, count=None):
    count = len(nodes) if count is None else count
    return chunk(ALLOC, struct.pack("<III", 2, tid, count)
                 + b"".join(struct.pack("<IIQQQQ", *n) for n in nodes))


def alloc_run(peak_thread=0, peak_node=0, flags=0, peak=100, live=10):
    return chunk(ALLOC, struct.pack("<IIIIIQQQQQQQ", 1, flags, peak_thread, peak_node, 0, peak, live,
                                    1, 2, 3, 4, 5))


def gc(recs, dropped=0, count=None):
    count = len(recs) if count is None else count
    return chunk(GC, struct.pack("<IIQ", count, 0, dropped)
                 + b"".join(struct.pack("<qqIIIIQQ", *r) for r in recs))


def timeline(tid, evs, count=None):
    """evs: (time_ns, func, kind, synth, depth); kind 1 BEGIN, 2 END."""
    body = b"".join(struct.pack("<qII", t, f, k | (4 if sy else 0) | (d << 8)) for t, f, k, sy, d in evs)
    return chunk(12, struct.pack("<II", tid, len(evs) if count is None else count) + body)


def timeline_info(tid, size=64):
    return chunk(13, (struct.pack("<IIQQQQQqq", tid, 0, 4, 4, 0, 0, 1, 0, 9) + b"\0" * 64)[:size])


def trailer(threads=1):
    return chunk(TRAILER, struct.pack("<QQQQqIIQQ", 0, 0, 0, threads, 1000, 0, 0, 0, 0))


BASE_STRINGS = strings(0, ["main", "app.py", "helper", "MainThread"])
BASE_FUNCS = funcs([(0, 0, 1, 1, 0, 0), (1, 2, 1, 5, 0, 0)])


def valid(*body):
    return HEADER + meta(mode="trace", argv="python3\0app.py") + BASE_STRINGS + BASE_FUNCS + thread(0, 3) + b"".join(body) + trailer()


FILES = {
    "edge-empty": b"",
    "edge-magic-only": MAGIC,
    "edge-header-only": HEADER,
    "edge-bad-version": MAGIC + struct.pack("<II", 2, 0),
    # a chunk announcing more than CPYPROF_MAX_CHUNK_SIZE (2^30)
    "edge-huge-chunk-size": HEADER + chunk(META, b"", size=1 << 40),
    # off + 16 + size wraps around 2^64
    "edge-chunk-size-overflow": HEADER + chunk(META, b"\0" * 32, size=0xFFFFFFFFFFFFFFF0),
    # exactly the limit, but the file is short: truncated
    "edge-chunk-size-at-limit": HEADER + chunk(STRINGS, b"\0" * 8, size=1 << 30),
    "edge-chunk-header-cut": HEADER + chunk(META, b"")[:10],
    # node 0's parent is node 1, after itself
    "edge-tree-parent-after-self": valid(tree(0, [(1, 0, 1, 10), (NONE, 1, 1, 5)])),
    "edge-tree-parent-is-self": valid(tree(0, [(NONE, 0, 1, 10), (1, 1, 1, 5)])),
    "edge-tree-count-too-big": valid(chunk(TREE, struct.pack("<II", 0, 0x7FFFFFFF) + b"\0" * 24)),
    "edge-tree-unknown-func": valid(tree(0, [(NONE, 77, 1, 10)])),
    "edge-tree-unknown-thread": valid(tree(9, [(NONE, 0, 1, 10)])),
    "edge-tree-child-bigger-than-parent": valid(tree(0, [(NONE, 0, 1, 10), (0, 1, 1, 1 << 63), (0, 0, 1, 1 << 63)])),
    "edge-tree-deep-chain": valid(tree(0, [(NONE if i == 0 else i - 1, i % 2, 1, 100000 - i) for i in range(2000)])),
    "edge-tree-no-trailer": HEADER + BASE_STRINGS + tree(0, [(NONE, 0, 1, 10), (0, 5, 1, 3)]),
    "edge-strings-not-dense": valid(strings(10, ["x"])),
    "edge-strings-count-too-big": valid(chunk(STRINGS, struct.pack("<II", 4, 0xFFFFFFFF))),
    "edge-string-len-too-big": valid(chunk(STRINGS, struct.pack("<III", 4, 1, 0xFFFFFFF0) + b"abc")),
    "edge-funcs-duplicate-ids": valid(funcs([(0, 2, 1, 9, 1, 0), (0, 0, 1, 1, 2, 0)]), tree(0, [(NONE, 0, 1, 10)])),
    "edge-funcs-bad-kind": valid(funcs([(5, 0, NONE, 0, 99, 0)]), tree(0, [(NONE, 5, 1, 10)])),
    "edge-func-undefined-string": valid(funcs([(6, 99, 98, 0, 0, 0)])),
    "edge-labels-special-chars": HEADER
    + strings(0, ["a;b\nc\x00d", "\xff\xfe bad utf8".encode("latin-1"), "<svg>&\"'", "\x1b[31m"])
    + funcs([(0, 0, 1, 3, 0, 0), (1, 2, 3, 0, 1, 0), (2, 1, NONE, 0, 2, 0)])
    + thread(0, 2) + thread(1, 0)
    + tree(0, [(NONE, 0, 1, 10), (0, 1, 1, 5), (1, 2, 1, 2)])
    + tree(1, [(NONE, 2, 3, 30)])
    + trailer(2),
    "edge-same-label-two-funcs": valid(funcs([(2, 0, 1, 1, 0, 0)]), tree(0, [(NONE, 0, 1, 10), (NONE, 2, 1, 10), (1, 0, 2, 4)])),
    "edge-threads-same-name": valid(thread(1, 3), thread(2, 3), tree(1, [(NONE, 0, 1, 1)]), tree(2, [(NONE, 0, 1, 1)])),
    "edge-thread-id-none": valid(thread(NONE, NONE), tree(NONE, [(NONE, 0, 1, 1)])),
    "edge-thread-short": valid(chunk(THREAD, b"\0" * 47)),
    "edge-events": valid(events(0, [(5, 1, 42, 0, 0), (6, 3, 0, 0, 0), (7, 4, 0, 0, 0), (8, 3, 999, 0, 0), (9, 2, 0, 0, 0)])),
    "edge-events-unknown-thread": valid(events(5, [(5, 1, 42, 0, 0)])),
    "edge-meta-odd": valid(chunk(META, text("mode") + text("sample") + text("argv") + struct.pack("<I", 100))),
    "edge-meta-empty-argv": valid(meta(argv="", mode="")),
    "edge-trailer-short": HEADER + BASE_STRINGS + chunk(TRAILER, b"\0" * 63),
    "edge-after-trailer": valid() + b"garbage after the trailer",
    "edge-unknown-chunk": valid(chunk(0x42, b"future data")),
    "edge-crc-mismatch": valid(chunk(TREE, struct.pack("<II", 0, 1) + struct.pack("<IIQQ", NONE, 0, 1, 1), crc=0)),
    "edge-samples": valid(samples(0, [(NONE, 0, 3, 0, 5, 2), (0, 1, 7, 0, 9, 9), (NONE, 1, 0, 0, 0, 0)])),
    "edge-samples-parent-after-self": valid(samples(0, [(1, 0, 3, 0, 5, 2), (NONE, 1, 7, 0, 9, 9)])),
    "edge-samples-absurd-count": valid(samples(0, [(NONE, 0, 3, 0, (1 << 64) - 1, 0), (0, 1, 3, 0, (1 << 64) - 1, 0)])),
    "edge-samples-and-tree": valid(tree(0, [(NONE, 0, 1, 10)]), samples(0, [(NONE, 0, 3, 0, 4, 1), (0, 1, 3, 0, 6, 0)])),
    "edge-zero-everything": valid(tree(0, [(NONE, 0, 0, 0), (0, 1, 0, 0)])),
    "edge-max-u64-times": valid(tree(0, [(NONE, 0, (1 << 64) - 1, (1 << 64) - 1), (0, 1, (1 << 64) - 1, (1 << 64) - 1),
                                         (NONE, 0, (1 << 64) - 1, (1 << 64) - 1)])),
    "edge-alloc": valid(alloc_thread(0, [(NONE, 0, 3, 300, 1, 10), (0, 1, 2, 20, 0, 0), (0, 77, 1, 1, 1, 1)]),
                        alloc_run(0, 1), gc([(0, 100, 0, 0, 1, 0, 5, 0), (200, 50, 2, NONE, NONE, 0, 7, 1)])),
    "edge-alloc-parent-after-self": valid(alloc_thread(0, [(1, 0, 3, 300, 1, 10), (NONE, 1, 2, 20, 0, 0)])),
    "edge-alloc-count-too-big": valid(chunk(ALLOC, struct.pack("<III", 2, 0, 0x7FFFFFFF) + b"\0" * 40)),
    "edge-alloc-peak-out-of-range": valid(alloc_thread(0, [(NONE, 0, 1, 1, 0, 0)]), alloc_run(0, 9999), alloc_run(NONE, NONE)),
    "edge-alloc-max-u64": valid(alloc_thread(0, [(NONE, 0, (1 << 64) - 1, (1 << 64) - 1, (1 << 64) - 1, 0),
                                                 (0, 0, (1 << 64) - 1, (1 << 64) - 1, 0, (1 << 64) - 1)])),
    "edge-alloc-run-short": valid(chunk(ALLOC, struct.pack("<I", 1) + b"\0" * 40)),
    "edge-gc-count-too-big": valid(gc([], count=0xFFFFFFFF)),
    "edge-timeline": valid(timeline(0, [(1, 0, 1, True, 1), (2, 1, 1, False, 2), (3, 1, 2, False, 2),
                                         (9, 0, 2, True, 1)]), timeline_info(0)),
    "edge-timeline-unbalanced": valid(timeline(0, [(5, 1, 2, False, 1), (1, 0, 1, False, 7), (0, 77, 1, False, 1 << 23),
                                                   (-3, 1, 2, False, 0), (2, 1, 3, False, 2)])),
    "edge-timeline-unknown-thread-and-func": valid(timeline(9, [(1, 99, 1, False, 1), (2, 99, 2, False, 1)]),
                                                   timeline(NONE, [(1, 0, 1, False, 1)])),
    "edge-timeline-count-too-big": valid(timeline(0, [(1, 0, 1, False, 1)], count=0x7FFFFFFF)),
    "edge-timeline-odd-size": valid(chunk(12, struct.pack("<II", 0, 1) + b"\0" * 15)),
    "edge-timeline-info-short": valid(timeline_info(0, size=63)),
    "edge-timeline-cut": (valid(timeline(0, [(1, 0, 1, False, 1), (2, 0, 2, False, 1)]))[:-80]),
    "edge-gc-negative-times": valid(gc([(-5, -(1 << 63), 99, 7, 1, 0, (1 << 64) - 1, (1 << 64) - 1)] * 3)),
}


def main():
    os.makedirs(HERE, exist_ok=True)
    for name, data in FILES.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(FILES)} files to {HERE}")


if __name__ == "__main__":
    main()
