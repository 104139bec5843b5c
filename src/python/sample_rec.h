/*
 * sample_rec.h — how one stack sample travels through a thread's ring, from
 * the signal handler (sample_signal.c) to the writer thread (sample_agg.c).
 * Python-free, so the encoding and the aggregation are unit-tested alone.
 *
 * A sample is a run of 32-byte ring records published at once (the handler
 * writes them into free slots and moves the ring's head past all of them in
 * one release store, so the writer never sees half a sample):
 *
 *   SAMPLE  a = number of frame entries that follow, b = CP_SAMPLE_F_* flags,
 *           c = weight (1 + timer overruns), ticks = clock reading
 *   then, innermost frame first, one entry per frame:
 *   FRAME   a = function id (read from the code object's co_extra slot, so
 *           it is the live object's own id), b = line
 *   CODE    a code object not registered yet: a = first line, b = line |
 *           name length << 32 | file length << 48, c = code address (debug
 *           only, never dereferenced later); followed by
 *           ceil((name+file)/28) TEXT records carrying the qualified name
 *           then the file name, copied from the live object by the handler.
 *   NATIVE  (--native) a = 0, b = instruction pointer
 *
 * A REPEAT record (c = count) stands alone, before a SAMPLE: the thread was
 * not interrupted for `count` periods because it had not run since its
 * previous sample (wall clock, sample_timer.c), so its stack was the
 * previous sample's; the writer adds the previous stack `count` more times.
 *
 * Kinds are above every CPYPROF_EV_* value, so drain.c can tell them apart.
 */
#ifndef CPYPROF_PYTHON_SAMPLE_REC_H
#define CPYPROF_PYTHON_SAMPLE_REC_H

#include "core/ring.h"

#include <stdint.h>
#include <string.h>

#define CP_SREC_SAMPLE 0x5301u
#define CP_SREC_FRAME 0x5302u
#define CP_SREC_CODE 0x5303u
#define CP_SREC_TEXT 0x5304u   /* kind | (bytes << 16) */
#define CP_SREC_NATIVE 0x5305u /* a native frame (--native) */
#define CP_SREC_REPEAT 0x5306u /* c = n more of the thread's previous sample */

#define CP_SAMPLE_F_GIL 1u       /* the sampled thread held the GIL */
#define CP_SAMPLE_F_TRUNCATED 2u /* deeper than CP_SAMPLE_MAX_FRAMES */

#define CP_SAMPLE_MAX_FRAMES 900
#define CP_SAMPLE_NAME_MAX 255  /* bytes of a qualified name kept */
#define CP_SAMPLE_FILE_MAX 1023 /* bytes of a file name kept */
#define CP_SREC_TEXT_BYTES 28

/** Private function ids (writer-made, from CODE entries) have this bit. */
#define CP_SAMPLE_PRIVATE_ID 0x80000000u

static inline uint32_t cp_srec_kind(uint32_t kind)
{
    return kind & 0xFFFFu;
}

static inline int cp_srec_is_sample(uint32_t kind)
{
    uint32_t k = cp_srec_kind(kind);
    return k >= CP_SREC_SAMPLE && k <= CP_SREC_REPEAT;
}

/** Packs up to 28 bytes of text into a TEXT record (ticks, a, b, c). */
static inline void cp_srec_text_pack(cp_record *r, const char *s, uint32_t n)
{
    char buf[CP_SREC_TEXT_BYTES] = {0};
    uint32_t m = n < CP_SREC_TEXT_BYTES ? n : CP_SREC_TEXT_BYTES;
    memcpy(buf, s, m);
    memcpy(&r->ticks, buf, 8);
    memcpy(&r->a, buf + 8, 4);
    memcpy(&r->b, buf + 12, 8);
    memcpy(&r->c, buf + 20, 8);
    r->kind = CP_SREC_TEXT | (m << 16);
}

/** Unpacks a TEXT record into out (28 bytes); returns the byte count. */
static inline uint32_t cp_srec_text_unpack(const cp_record *r, char *out)
{
    memcpy(out, &r->ticks, 8);
    memcpy(out + 8, &r->a, 4);
    memcpy(out + 12, &r->b, 8);
    memcpy(out + 20, &r->c, 8);
    uint32_t n = r->kind >> 16;
    return n > CP_SREC_TEXT_BYTES ? CP_SREC_TEXT_BYTES : n;
}

#endif
