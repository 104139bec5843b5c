/*
 * protobuf.h — the few pieces of the protocol buffers wire format that the
 * pprof exporter needs: varints, length-delimited fields, packed repeated
 * integers, nested messages (encoded into their own buffer, then copied
 * in with their length). No schema, no reflection.
 *
 * Wire format: a field is a key varint (field_number << 3 | wire_type) and
 * a value; wire type 0 = varint, 2 = length-delimited (bytes, strings,
 * nested messages, packed repeated scalars). Negative int64 values take 10
 * bytes (two's complement as uint64), as the format says.
 */
#ifndef CPYPROF_REPORT_PROTOBUF_H
#define CPYPROF_REPORT_PROTOBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A growable byte buffer; `oom` is set on allocation failure and later
 *  appends are ignored. */
typedef struct cp_pb {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} cp_pb;

void cp_pb_free(cp_pb *b);
void cp_pb_reset(cp_pb *b);
void cp_pb_varint(cp_pb *b, uint64_t v);
/** Appends bytes already encoded (fields framed elsewhere). */
void cp_pb_raw(cp_pb *b, const void *p, size_t n);
/** Field `field` as a varint (wire type 0); zero values are written too. */
void cp_pb_uint(cp_pb *b, uint32_t field, uint64_t v);
/** Field `field` as length-delimited bytes (wire type 2). */
void cp_pb_bytes(cp_pb *b, uint32_t field, const void *p, size_t n);
/** Field `field` as a packed repeated varint (skipped when n is 0). */
void cp_pb_packed(cp_pb *b, uint32_t field, const uint64_t *v, size_t n);

#endif
