/* text.c — human units, JSON escaping, one-line names, argv joining (see text.h). */
#include "report/text.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

char *cp_fmt_ns(uint64_t ns, char *buf, size_t n)
{
    if (ns < 1000)
        snprintf(buf, n, "%lluns", (unsigned long long)ns);
    else if (ns < 1000000)
        snprintf(buf, n, "%.2fus", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buf, n, "%.2fms", (double)ns / 1e6);
    else
        snprintf(buf, n, "%.2fs", (double)ns / 1e9);
    return buf;
}

size_t cp_utf8_seq_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        n = 2, min = 0x80, c &= 0x1F;
    else if ((c & 0xF0) == 0xE0)
        n = 3, min = 0x800, c &= 0x0F;
    else if ((c & 0xF8) == 0xF0)
        n = 4, min = 0x10000, c &= 0x07;
    else
        return 0;
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

void cp_json_string(FILE *out, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
        } else if (c == '\n') {
            fputs("\\n", out);
        } else if (c == '\t') {
            fputs("\\t", out);
        } else if (c == '\r') {
            fputs("\\r", out);
        } else if (c < 0x20 || c == 0x7F) {
            fprintf(out, "\\u%04x", c);
        } else if (c >= 0x80) {
            size_t k = cp_utf8_seq_len(s + i, len - i);
            if (k == 0) {
                fputs("\\ufffd", out);
                i++;
            } else {
                fwrite(s + i, 1, k, out);
                i += k;
            }
            continue;
        } else {
            fputc(c, out);
        }
        i++;
    }
    fputc('"', out);
}

int cp_flush_checked(FILE *out, const char *what, char *err, size_t errlen)
{
    if (fflush(out) != 0 || ferror(out)) {
        int e = errno ? errno : EIO;
        snprintf(err, errlen, "%s: %s", what, strerror(e));
        return -1;
    }
    return 0;
}

char *cp_one_line(char *s)
{
    for (char *c = s; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7F)
            *c = ' ';
    return s;
}

static bool needs_quotes(const char *a, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++)
        if (strchr(" \t\n'\"\\$`*?;&|<>()", a[i]))
            return true;
    return false;
}

char *cp_argv_join(const char *argv, size_t len, char *buf, size_t n)
{
    size_t o = 0;
    if (n == 0)
        return buf;
    buf[0] = '\0';
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (o + 1 < n)                                                                             \
            buf[o++] = (ch);                                                                       \
    } while (0)
    /* A trailing NUL (argv written as "a\0b\0") does not start an argument. */
    if (len && argv[len - 1] == '\0')
        len--;
    if (len == 0)
        return buf;
    for (size_t i = 0; i <= len;) {
        const char *a = argv + i;
        const char *end = memchr(a, '\0', len - i);
        size_t alen = end ? (size_t)(end - a) : len - i;
        if (i)
            PUT(' ');
        bool q = needs_quotes(a, alen);
        if (q)
            PUT('\'');
        for (size_t k = 0; k < alen; k++) {
            if (q && a[k] == '\'') {
                /* close the quotes, an escaped quote, reopen: 'it'\''s' */
                PUT('\'');
                PUT('\\');
                PUT('\'');
                PUT('\'');
            } else {
                PUT(a[k]);
            }
        }
        if (q)
            PUT('\'');
        i += alen + 1;
    }
#undef PUT
    buf[o] = '\0';
    return buf;
}
