/*
 * text.h — small text helpers shared by the exporters and the tools:
 * human time units, JSON string escaping, names made one-line, command lines
 * from META argv.
 */
#ifndef CPYPROF_REPORT_TEXT_H
#define CPYPROF_REPORT_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/** Formats nanoseconds with a human unit and 3-4 significant digits:
 *  "850ns", "12.34us", "1.50ms", "2.00s". Returns buf. */
char *cp_fmt_ns(uint64_t ns, char *buf, size_t n);

/** Length of the well-formed UTF-8 sequence at s (at most `left` bytes), or
 *  0 if the bytes there are not one: overlong forms, surrogates and values
 *  past U+10FFFF are rejected. The one validator of every exporter. */
size_t cp_utf8_seq_len(const unsigned char *s, size_t left);

/** Writes `s` (len bytes) as a JSON string literal, quotes included.
 *  Control characters and NUL are escaped; bytes that are not valid UTF-8
 *  become U+FFFD, so the output always parses. */
void cp_json_string(FILE *out, const char *s, size_t len);

/** Flushes out and checks it for a write error (now or earlier): 0, or -1
 *  with err = "WHAT: REASON" (EIO's text when errno does not say). The end
 *  of every writer of a report or an export that streams to a FILE. */
int cp_flush_checked(FILE *out, const char *what, char *err, size_t errlen);

/** Replaces the control characters (and DEL) of s by spaces, in place, and
 *  returns s: names come from the profiled program, and a newline in one
 *  must not break a text table's one-line-per-row layout. */
char *cp_one_line(char *s);

/** Joins META "argv" (arguments separated by NUL bytes) into one shell-like
 *  line: arguments holding spaces or quotes are single-quoted. Truncates to
 *  fit n. Returns buf. */
char *cp_argv_join(const char *argv, size_t len, char *buf, size_t n);

#endif
