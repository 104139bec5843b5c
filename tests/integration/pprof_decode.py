"""A small decoder of gzipped pprof profiles (profile.proto, package
perftools.profiles) for the tests: the protocol buffers wire format by hand
(varints and length-delimited fields; packed or unpacked repeated
integers), no protobuf library needed. Written from the .proto field
numbers, independently of src/report/pprof.c."""
import gzip


def _varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def fields(b):
    """[(field, wire, value)] of one message; value is int or bytes."""
    out, i = [], 0
    while i < len(b):
        key, i = _varint(b, i)
        field, wire = key >> 3, key & 7
        assert field > 0, "field number 0"
        if wire == 0:
            v, i = _varint(b, i)
        elif wire == 2:
            n, i = _varint(b, i)
            v = bytes(b[i:i + n])
            assert len(v) == n, "length-delimited field cut short"
            i += n
        elif wire == 1:
            v, i = int.from_bytes(b[i:i + 8], "little"), i + 8
        elif wire == 5:
            v, i = int.from_bytes(b[i:i + 4], "little"), i + 4
        else:
            raise AssertionError("wire type %d" % wire)
        out.append((field, wire, v))
    return out


def _ints(fs, field):
    """A repeated integer field, packed or not."""
    r = []
    for f, w, v in fs:
        if f == field:
            if w == 2:
                i = 0
                while i < len(v):
                    x, i = _varint(v, i)
                    r.append(x)
            else:
                r.append(v)
    return r


def _one(fs, field, default=0):
    vals = [v for f, _, v in fs if f == field]
    return vals[-1] if vals else default


def decode(path):
    raw = gzip.decompress(open(path, "rb").read())
    top = fields(raw)
    strings = [v.decode() for f, w, v in top if f == 6]
    assert strings and strings[0] == "", "string_table[0] must be empty"
    s = lambda i: strings[i]
    prof = {"strings": strings}
    prof["sample_type"] = [(s(_one(fields(v), 1)), s(_one(fields(v), 2)))
                           for f, _, v in top if f == 1]
    funcs = {}
    for f, _, v in top:
        if f == 5:
            fs = fields(v)
            funcs[_one(fs, 1)] = dict(name=s(_one(fs, 2)), system_name=s(_one(fs, 3)),
                                      filename=s(_one(fs, 4)), start_line=_one(fs, 5))
    locs = {}
    for f, _, v in top:
        if f == 4:
            fs = fields(v)
            lines = [fields(lv) for lf, _, lv in fs if lf == 4]
            locs[_one(fs, 1)] = dict(mapping=_one(fs, 2),
                                     lines=[(_one(l, 1), _one(l, 2)) for l in lines])
    maps = {}
    for f, _, v in top:
        if f == 3:
            fs = fields(v)
            maps[_one(fs, 1)] = dict(filename=s(_one(fs, 5)), has_functions=_one(fs, 7))
    samples = []
    for f, _, v in top:
        if f == 2:
            fs = fields(v)
            labels = {}
            for lf, _, lv in fs:
                if lf == 3:
                    l = fields(lv)
                    labels[s(_one(l, 1))] = s(_one(l, 2))
            samples.append(dict(locations=_ints(fs, 1), values=_ints(fs, 2), labels=labels))
    prof.update(functions=funcs, locations=locs, mappings=maps, samples=samples,
                time_nanos=_one(top, 9), duration_nanos=_one(top, 10),
                period=_one(top, 12),
                period_type=[(s(_one(fields(v), 1)), s(_one(fields(v), 2)))
                             for f, _, v in top if f == 11],
                default_sample_type=s(_one(top, 14)))
    # referential integrity
    for smp in samples:
        assert len(smp["values"]) == len(prof["sample_type"]), smp
        for lid in smp["locations"]:
            assert lid in locs, ("unknown location", lid)
    for loc in locs.values():
        assert loc["mapping"] in maps, loc
        for fid, _ in loc["lines"]:
            assert fid in funcs, ("unknown function", fid)
    return prof


def stack(prof, sample):
    """Function names of a sample, root first."""
    out = []
    for lid in reversed(sample["locations"]):
        for fid, _ in reversed(prof["locations"][lid]["lines"]):
            out.append(prof["functions"][fid]["name"])
    return out
