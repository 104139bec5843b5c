"""Rewriting META entries of a real profile file (docs/format.md: META is
chunk type 1, key/value pairs of u32-length-prefixed strings; every chunk
has a CRC-32 of its payload).

For tests of what the machine here cannot produce: these virtual machines
have no hardware counters, so a profile never carries META `instructions`;
`with_meta(src, dst, instructions="123")` writes a copy of `src` where it
does (and `instructions_unavailable` is gone), the rest byte for byte."""
import struct
import zlib

META = 1
HEADER = 16  # magic (8), format version (4), flags (4)


def _pairs(payload):
    out, i = [], 0
    while i < len(payload):
        (kl,) = struct.unpack_from("<I", payload, i)
        k = payload[i + 4:i + 4 + kl]
        i += 4 + kl
        (vl,) = struct.unpack_from("<I", payload, i)
        v = payload[i + 4:i + 4 + vl]
        i += 4 + vl
        out.append((k, v))
    return out


def _payload(pairs):
    return b"".join(struct.pack("<I", len(k)) + k + struct.pack("<I", len(v)) + v
                    for k, v in pairs)


def with_meta(src, dst, drop=(), **entries):
    """Copies profile `src` to `dst`: the META keys in `entries` and `drop`
    are removed from every META chunk, and `entries` (str values) are added
    to the last one. Returns dst."""
    data = open(src, "rb").read()
    remove = {k.encode() for k in list(entries) + list(drop)}
    chunks, off = [], HEADER
    while off + 16 <= len(data):
        ctype, crc, size = struct.unpack_from("<IIQ", data, off)
        chunks.append([ctype, data[off + 16:off + 16 + size]])
        off += 16 + size
    metas = [c for c in chunks if c[0] == META]
    assert metas, "no META chunk in %s" % src
    for c in metas:
        c[1] = _payload([(k, v) for k, v in _pairs(c[1]) if k not in remove])
    metas[-1][1] += _payload([(k.encode(), str(v).encode()) for k, v in entries.items()])
    out = bytearray(data[:HEADER])
    for ctype, payload in chunks:
        out += struct.pack("<IIQ", ctype, zlib.crc32(payload), len(payload)) + payload
    open(dst, "wb").write(bytes(out))
    return dst
