/*
 * convert_pprof.c — `cpyprof convert --to pprof`: the profile as a gzipped
 * profile.proto (report/pprof.h), compressed with zlib's gzip framing
 * (deflateInit2 with windowBits 15 + 16), as `go tool pprof` and the
 * continuous-profiling backends expect.
 */
#include "cli.h"
#include "convert.h"
#include "report/alloc.h"
#include "report/pprof.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

int export_pprof(FILE *out, const cp_profile *p, const convert_options *o, char *err, size_t errlen)
{
    cp_pb pb = {0};
    cp_alloc_data alloc = {0};
    /* The reader skips ALLOC chunks: read them from the file again. */
    if (o->source && cp_alloc_load(o->source, &alloc, err, errlen) != 0)
        return -1;
    int enc = cp_pprof_encode(p, &alloc, &pb, err, errlen);
    cp_alloc_free(&alloc);
    if (enc != 0) {
        cp_pb_free(&pb);
        return -1;
    }
    z_stream z = {0};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        snprintf(err, errlen, "cannot start gzip compression");
        cp_pb_free(&pb);
        return -1;
    }
    unsigned char buf[1 << 16] = {0}; /* written by deflate; zeroed for cppcheck */
    z.next_in = pb.data;
    int rc = 0, zr;
    size_t left = pb.len;
    do {
        /* avail_in is 32 bits: feed at most 1 GiB at a time */
        if (z.avail_in == 0 && left) {
            uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
            z.avail_in = n;
            left -= n;
        }
        z.next_out = buf;
        z.avail_out = sizeof buf;
        zr = deflate(&z, left ? Z_NO_FLUSH : Z_FINISH);
        size_t have = sizeof buf - z.avail_out;
        if (have && fwrite(buf, 1, have, out) != have) {
            snprintf(err, errlen, "cannot write the pprof output: %s",
                     strerror(errno ? errno : EIO));
            rc = -1;
            break;
        }
    } while (zr != Z_STREAM_END && zr != Z_STREAM_ERROR);
    if (rc == 0 && zr != Z_STREAM_END) {
        snprintf(err, errlen, "gzip compression failed");
        rc = -1;
    }
    deflateEnd(&z);
    cp_pb_free(&pb);
    return rc;
}
