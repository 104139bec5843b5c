/*
 * protobuf.c — protocol buffers wire encoding (see protobuf.h).
 */
#include "report/protobuf.h"

#include <stdlib.h>
#include <string.h>

void cp_pb_free(cp_pb *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void cp_pb_reset(cp_pb *b)
{
    b->len = 0;
    b->oom = false;
}

static bool reserve(cp_pb *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void cp_pb_varint(cp_pb *b, uint64_t v)
{
    if (!reserve(b, 10))
        return;
    do {
        uint8_t byte = v & 0x7F;
        v >>= 7;
        b->data[b->len++] = byte | (v ? 0x80 : 0);
    } while (v);
}

void cp_pb_raw(cp_pb *b, const void *p, size_t n)
{
    if (n && reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

static void key(cp_pb *b, uint32_t field, uint32_t wire)
{
    cp_pb_varint(b, (uint64_t)field << 3 | wire);
}

void cp_pb_uint(cp_pb *b, uint32_t field, uint64_t v)
{
    key(b, field, 0);
    cp_pb_varint(b, v);
}

void cp_pb_bytes(cp_pb *b, uint32_t field, const void *p, size_t n)
{
    key(b, field, 2);
    cp_pb_varint(b, n);
    if (n && reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

void cp_pb_packed(cp_pb *b, uint32_t field, const uint64_t *v, size_t n)
{
    if (n == 0)
        return;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = v[i];
        do {
            len++;
            x >>= 7;
        } while (x);
    }
    key(b, field, 2);
    cp_pb_varint(b, len);
    for (size_t i = 0; i < n; i++)
        cp_pb_varint(b, v[i]);
}
