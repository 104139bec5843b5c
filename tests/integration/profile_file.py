"""A minimal reader of the profile file (docs/format.md) for tests that look
at chunks the `cpyprof` command does not print: TIMELINE (12) and
TIMELINE_INFO (13), with the STRINGS and FUNCS they refer to. Written from
the format document, independently of src/report, so the two check each
other."""
import struct
import zlib

TIMELINE = 12
TIMELINE_INFO = 13
BEGIN, END, GIL, SYNTH = 1, 2, 3, 4
GIL_RELEASED, GIL_ACQUIRED = 0, 1


class ProfileFile:
    def __init__(self, path):
        data = open(path, "rb").read()
        assert data[:8] == b"CPYPROF\0", "bad magic"
        self.strings = []
        self.funcs = {}        # id -> (name, file, line, kind)
        self.timeline = {}     # thread id -> [(time_ns, func, kind, synth, depth)]
        self.info = {}         # thread id -> dict
        self.meta = {}
        self.trailer = None
        self.chunk_offsets = []  # (type, offset, size)
        off = 16
        while off + 16 <= len(data):
            ctype, crc, size = struct.unpack_from("<IIQ", data, off)
            payload = data[off + 16:off + 16 + size]
            if len(payload) < size:
                break
            assert zlib.crc32(payload) == crc, "CRC mismatch in chunk at %d" % off
            self.chunk_offsets.append((ctype, off, size))
            self._chunk(ctype, payload)
            off += 16 + size
            if ctype == 0x7F:
                break

    def _chunk(self, ctype, d):
        if ctype == 1:
            i = 0
            while i < len(d):
                (kl,) = struct.unpack_from("<I", d, i)
                k = d[i + 4:i + 4 + kl].decode()
                i += 4 + kl
                (vl,) = struct.unpack_from("<I", d, i)
                self.meta[k] = d[i + 4:i + 4 + vl].decode(errors="replace")
                i += 4 + vl
        elif ctype == 2:
            first, count = struct.unpack_from("<II", d, 0)
            assert first == len(self.strings)
            i = 8
            for _ in range(count):
                (n,) = struct.unpack_from("<I", d, i)
                self.strings.append(d[i + 4:i + 4 + n].decode(errors="replace"))
                i += 4 + n
        elif ctype == 3:
            (count,) = struct.unpack_from("<I", d, 0)
            for k in range(count):
                fid, name, file, line, kind, _ = struct.unpack_from("<6I", d, 4 + 24 * k)
                self.funcs[fid] = (name, file, line, kind)
        elif ctype == TIMELINE:
            thread, count = struct.unpack_from("<II", d, 0)
            assert len(d) == 8 + 16 * count
            out = self.timeline.setdefault(thread, [])
            for k in range(count):
                t, func, info = struct.unpack_from("<qII", d, 8 + 16 * k)
                out.append((t, func, info & 3, bool(info & SYNTH), info >> 8))
        elif ctype == TIMELINE_INFO:
            assert len(d) == 64
            v = struct.unpack("<IIQQQQQqq", d)
            self.info[v[0]] = dict(zip(("thread", "keep", "recorded", "written", "dropped",
                                        "overwritten", "synthesized", "first_ns", "last_ns"), v))
        elif ctype == 0x7F:
            self.trailer = struct.unpack_from("<QQQQq", d, 0)

    def name(self, fid):
        f = self.funcs.get(fid)
        return self.strings[f[0]] if f else "[unknown]"

    def file(self, fid):
        f = self.funcs.get(fid)
        return self.strings[f[1]] if f and f[1] != 0xFFFFFFFF else None

    def check_nesting(self):
        """Per thread: times never go back, every END closes the innermost
        open BEGIN of the same function at the depth recorded, and nothing
        is left open. Returns {thread: [(name, begin, end, depth, synth)]}."""
        calls = {}
        for thread, evs in self.timeline.items():
            stack, out, last = [], [], None
            for t, func, kind, synth, depth in evs:
                assert last is None or t >= last, ("time goes back", thread, t, last)
                last = t
                if kind == GIL:
                    continue  # not part of the call nesting: see gil_holds()
                if kind == BEGIN:
                    stack.append((func, t, synth))
                    assert depth == len(stack), ("begin depth", depth, len(stack))
                else:
                    assert kind == END, kind
                    assert stack, ("END without BEGIN", thread, self.name(func), t)
                    assert depth == len(stack), ("end depth", depth, len(stack))
                    f, t0, s0 = stack.pop()
                    assert f == func, ("END of another function", self.name(f), self.name(func))
                    out.append((self.name(func), t0, t, depth, s0 or synth))
            assert not stack, ("left open", [self.name(f) for f, _, _ in stack])
            calls[thread] = out
        return calls

    def gil_holds(self):
        """Per thread, the GIL holds as [(begin_ns, end_ns, synth)]: GIL events
        alternate ACQUIRED, RELEASED, starting with ACQUIRED and ending with
        RELEASED, at depth 0."""
        holds = {}
        for thread, evs in self.timeline.items():
            out, open_at = [], None
            for t, func, kind, synth, depth in evs:
                if kind != GIL:
                    continue
                assert depth == 0, depth
                if func == GIL_ACQUIRED:
                    assert open_at is None, ("ACQUIRED while held", thread, t)
                    open_at = (t, synth)
                else:
                    assert func == GIL_RELEASED, func
                    assert open_at is not None, ("RELEASED while not held", thread, t)
                    out.append((open_at[0], t, open_at[1] or synth))
                    open_at = None
            assert open_at is None, ("hold left open", thread)
            if out:
                holds[thread] = out
        return holds
