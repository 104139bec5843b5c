/*
 * config.c — defaults, the one key=value parser, and the environment reader
 * (see config.h).
 *
 * Hazard: this runs in the preloaded library's constructor, possibly inside a
 * process that is not Python at all and before its allocator is usable by us:
 * no malloc, no locale-dependent calls (ASCII case folding is done by hand),
 * no stdio streams. Messages are built with snprintf into the caller's buffer.
 *
 * A setting is parsed completely before it is stored: on error the config is
 * left unchanged.
 */
#include "core/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Same order as the fields of cp_config and the key_id enum below. */
const char *const cp_config_keys[] = {
    "output", "mode",   "builtins", "max_depth",    "ring_size", "transport",
    "quiet",  "rate",   "clock",    "idle",         "native",    "gil",
    "alloc",  "buffer", "keep",     "subprocesses", "gil_rate",  NULL,
};

typedef enum key_id {
    KEY_OUTPUT,
    KEY_MODE,
    KEY_BUILTINS,
    KEY_MAX_DEPTH,
    KEY_RING_SIZE,
    KEY_TRANSPORT,
    KEY_QUIET,
    KEY_RATE,
    KEY_CLOCK,
    KEY_IDLE,
    KEY_NATIVE,
    KEY_GIL,
    KEY_ALLOC,
    KEY_BUFFER,
    KEY_KEEP,
    KEY_SUBPROCESSES,
    KEY_GIL_RATE,
    KEY_COUNT,
} key_id;

_Static_assert(sizeof cp_config_keys / sizeof cp_config_keys[0] == KEY_COUNT + 1,
               "cp_config_keys and key_id must list the same keys");

/* Names that belong to the launcher/tools, not to cp_config: ignored by
 * cp_config_from_env rather than reported as unknown. */
static const char *const reserved_env[] = {
    "CPYPROF_PID",     "CPYPROF_SKIP_INSTALL_TEST", /* read by the test suite, not the library */
    "CPYPROF_LIBRARY", "CPYPROF_BUILD_DIR",
    "CPYPROF_ACTIVE",  "CPYPROF_TEST_GIL_SHIFT", /* test knob read by python/gil.c */
};

#define ENV_PREFIX "CPYPROF_"
#define KEY_DISPLAY_MAX 64   /* longest key shown in a message */
#define VALUE_DISPLAY_MAX 64 /* longest value shown in a message */

/* Ranges, and the text that states them in messages. */
#define MAX_DEPTH_MIN 16u
#define MAX_DEPTH_MAX 100000u
#define MAX_DEPTH_EXPECT "expected 16..100000 frames"
#define RATE_MIN 1u
#define RATE_MAX 10000u
#define RATE_EXPECT "expected 1..10000 samples per second"
#define RING_MIN (4ull << 10)
#define RING_MAX (1ull << 30)
#define RING_EXPECT "expected 4K..1G bytes, with an optional K, M or G suffix"
#define BUFFER_MIN (64ull << 10)
#define BUFFER_MAX (1ull << 30)
#define BUFFER_EXPECT "expected 64K..1G bytes, with an optional K, M or G suffix"
#define GIL_RATE_MIN 1u
#define GIL_RATE_MAX 1000u
#define GIL_RATE_EXPECT "expected 1..1000 reads per second"
#define BOOL_EXPECT "expected 1/0, true/false, yes/no, on/off"
#define GIL_EXPECT "expected off, exact or sample (or 1/0, true/false, yes/no, on/off)"
#define ALLOC_EXPECT "expected off, on or native (or 1/0, true/false, yes/no)"

void cp_config_defaults(cp_config *c)
{
    memset(c, 0, sizeof *c);
    strcpy(c->output, "cpyprof.out");
    c->mode = CP_MODE_TRACE;
    c->builtins = true;
    c->max_depth = 2048;
    c->ring_bytes = 1ull << 20;
    c->transport = CP_TRANSPORT_INLINE;
    c->quiet = false;
    c->rate_hz = 100;
    c->clock = CP_CLOCK_CPU;
    c->idle = true;
    c->native = false;
    c->buffer_bytes = 4ull << 20;
    c->keep = CP_KEEP_ALL;
    c->gil_rate_hz = 100;
}

/* --- small text helpers (ASCII only, no locale) ---------------------------- */

static char ascii_lower(char ch)
{
    return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}
static char ascii_upper(char ch)
{
    return ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
}

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        if (ascii_lower(*a) != ascii_lower(*b))
            return false;
    }
    return *a == *b;
}

/* Key comparison: case-insensitive, '-' and '_' equivalent. */
static bool key_eq(const char *given, const char *name)
{
    for (; *given && *name; given++, name++) {
        char g = *given == '-' ? '_' : ascii_lower(*given);
        if (g != *name)
            return false;
    }
    return *given == *name;
}

static int find_key(const char *key)
{
    for (int i = 0; i < KEY_COUNT; i++) {
        if (key_eq(key, cp_config_keys[i]))
            return i;
    }
    return -1;
}

/* Bounded appender into a caller's buffer: never overflows, always
 * NUL-terminated, silently truncates. */
typedef struct text_buf {
    char *buf;
    size_t cap;
    size_t len;
} text_buf;

static void tb_init(text_buf *tb, char *buf, size_t cap)
{
    tb->buf = buf;
    tb->cap = buf ? cap : 0;
    tb->len = 0;
    if (tb->cap)
        buf[0] = '\0';
}

static void tb_putc(text_buf *tb, char ch)
{
    if (tb->len + 1 < tb->cap) {
        tb->buf[tb->len++] = ch;
        tb->buf[tb->len] = '\0';
    }
}

static void tb_puts(text_buf *tb, const char *s)
{
    for (; *s; s++)
        tb_putc(tb, *s);
}

static void tb_printf(text_buf *tb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tb_printf(text_buf *tb, const char *fmt, ...)
{
    if (tb->len + 1 >= tb->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tb->buf + tb->len, tb->cap - tb->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        tb->len += (size_t)n < tb->cap - tb->len ? (size_t)n : tb->cap - tb->len - 1;
}

/* Appends a key as the user wrote it where it came from: CPYPROF_MAX_DEPTH
 * for the environment, --max-depth for the CLI, as given otherwise. */
static void tb_key(text_buf *tb, const char *prefix, const char *key)
{
    bool env = strcmp(prefix, ENV_PREFIX) == 0;
    bool cli = strcmp(prefix, "--") == 0;
    tb_puts(tb, prefix);
    size_t i = 0;
    for (; i < KEY_DISPLAY_MAX && key[i]; i++) {
        char ch = key[i];
        if (env)
            ch = ch == '-' ? '_' : ascii_upper(ch);
        else if (cli)
            ch = ch == '_' ? '-' : ascii_lower(ch);
        tb_putc(tb, ch);
    }
    if (key[i])
        tb_puts(tb, "...");
}

/* Appends a value in quotes, made safe for a one-line message: control
 * characters become '?', long values are cut. */
static void tb_value(text_buf *tb, const char *value)
{
    tb_putc(tb, '\'');
    size_t i = 0;
    for (; i < VALUE_DISPLAY_MAX && value[i]; i++) {
        unsigned char ch = (unsigned char)value[i];
        tb_putc(tb, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
    }
    if (value[i])
        tb_puts(tb, "...");
    tb_putc(tb, '\'');
}

/* "<key>: unknown setting (known: <k1>, <k2>, ...)" */
static void format_unknown(text_buf *tb, const char *prefix, const char *key)
{
    tb_key(tb, prefix, key);
    tb_puts(tb, ": unknown setting (known: ");
    for (int i = 0; i < KEY_COUNT; i++) {
        if (i)
            tb_puts(tb, ", ");
        tb_key(tb, prefix, cp_config_keys[i]);
    }
    tb_putc(tb, ')');
}

/* "<key>: '<value>' <what> (<expect>)" */
static int bad_value(text_buf *tb, const char *prefix, const char *key, const char *value,
                     const char *what, const char *expect)
{
    tb_key(tb, prefix, key);
    tb_puts(tb, ": ");
    tb_value(tb, value);
    tb_printf(tb, " %s (%s)", what, expect);
    return -1;
}

/* --- value parsers ----------------------------------------------------------- */

typedef enum num_status {
    NUM_OK = 0,
    NUM_SYNTAX = 1, /* not a number at all */
    NUM_RANGE = 2,  /* well-formed but does not fit (overflow, or negative) */
} num_status;

/* Strict decimal: one or more digits and nothing else (no sign, no spaces,
 * no hex). Leading zeros are decimal, not octal. */
static num_status parse_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    bool overflow = false;
    if (*s < '0' || *s > '9')
        return NUM_SYNTAX;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    *p = s;
    *out = v;
    return overflow ? NUM_RANGE : NUM_OK;
}

static num_status parse_uint(const char *text, uint64_t *out)
{
    const char *s = text;
    num_status st = parse_digits(&s, out);
    if (st == NUM_SYNTAX || *s != '\0')
        return NUM_SYNTAX;
    return st;
}

static num_status parse_size(const char *text, uint64_t *out)
{
    const char *s = text;
    uint64_t v;
    num_status st = parse_digits(&s, &v);
    if (st == NUM_SYNTAX)
        return NUM_SYNTAX;
    unsigned shift = 0;
    switch (ascii_lower(*s)) {
    case 'k':
        shift = 10;
        s++;
        break;
    case 'm':
        shift = 20;
        s++;
        break;
    case 'g':
        shift = 30;
        s++;
        break;
    default:
        break;
    }
    if (ascii_lower(*s) == 'b')
        s++;
    if (*s != '\0')
        return NUM_SYNTAX;
    if (st == NUM_RANGE || (shift && v > (UINT64_MAX >> shift)))
        return NUM_RANGE;
    *out = v << shift;
    return NUM_OK;
}

int cp_parse_size(const char *text, uint64_t *out)
{
    uint64_t v;
    if (text == NULL || parse_size(text, &v) != NUM_OK)
        return -1;
    *out = v;
    return 0;
}

/* A leading '-' on something that would otherwise parse is reported as out of
 * range (the user wrote a number, just not an acceptable one). */
static num_status parse_signed_as(num_status (*parse)(const char *, uint64_t *), const char *text,
                                  uint64_t *out)
{
    if (text[0] == '-') {
        uint64_t ignored;
        return parse(text + 1, &ignored) == NUM_SYNTAX ? NUM_SYNTAX : NUM_RANGE;
    }
    return parse(text, out);
}

/* 1 = true, 0 = false, -1 = not a boolean. */
static int parse_bool(const char *text)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (ascii_ieq(text, yes[i]))
            return 1;
        if (ascii_ieq(text, no[i]))
            return 0;
    }
    return -1;
}

/* Index of `text` among `choices` (case-insensitive), or -1. */
static int parse_choice(const char *text, const char *const *choices, int n)
{
    for (int i = 0; i < n; i++) {
        if (ascii_ieq(text, choices[i]))
            return i;
    }
    return -1;
}

/* --- setters ------------------------------------------------------------------ */

static int set_bool(bool *field, text_buf *tb, const char *prefix, const char *key,
                    const char *value)
{
    int b = parse_bool(value);
    if (b < 0)
        return bad_value(tb, prefix, key, value, "is not a boolean", BOOL_EXPECT);
    *field = b == 1;
    return 0;
}

/* Parses a two-way choice; stores its index in *index. */
static int set_choice(int *index, const char *const choices[2], text_buf *tb, const char *prefix,
                      const char *key, const char *value)
{
    int i = parse_choice(value, choices, 2);
    if (i < 0) {
        char expect[64];
        snprintf(expect, sizeof expect, "expected %s or %s", choices[0], choices[1]);
        return bad_value(tb, prefix, key, value, "is not valid", expect);
    }
    *index = i;
    return 0;
}

static int set_uint(uint64_t *out, uint64_t lo, uint64_t hi, const char *expect, text_buf *tb,
                    const char *prefix, const char *key, const char *value)
{
    uint64_t v = 0;
    num_status st = parse_signed_as(parse_uint, value, &v);
    if (st == NUM_SYNTAX)
        return bad_value(tb, prefix, key, value, "is not a number", expect);
    if (st == NUM_RANGE || v < lo || v > hi)
        return bad_value(tb, prefix, key, value, "is out of range", expect);
    *out = v;
    return 0;
}

static int set_size(uint64_t *out, uint64_t lo, uint64_t hi, const char *expect, text_buf *tb,
                    const char *prefix, const char *key, const char *value)
{
    uint64_t v = 0;
    num_status st = parse_signed_as(parse_size, value, &v);
    if (st == NUM_SYNTAX)
        return bad_value(tb, prefix, key, value, "is not a size", expect);
    if (st == NUM_RANGE || v < lo || v > hi)
        return bad_value(tb, prefix, key, value, "is out of range", expect);
    *out = v;
    return 0;
}

static int set_output(cp_config *c, text_buf *tb, const char *prefix, const char *key,
                      const char *value)
{
    size_t n = strlen(value);
    if (n == 0) {
        tb_key(tb, prefix, key);
        tb_puts(tb, ": empty value (expected a file path)");
        return -1;
    }
    if (n >= sizeof c->output) {
        tb_key(tb, prefix, key);
        tb_printf(tb, ": path too long (%zu bytes, at most %zu)", n, sizeof c->output - 1);
        return -1;
    }
    memcpy(c->output, value, n + 1);
    return 0;
}

int cp_config_set(cp_config *c, const char *key, const char *value, const char *origin_prefix,
                  char *err, size_t errlen)
{
    static const char *const keeps[2] = {"all", "last"};         /* = cp_keep */
    static const char *const transports[2] = {"inline", "ring"}; /* = cp_transport */
    static const char *const clocks[2] = {"cpu", "wall"};        /* = cp_sample_clock */
    const char *prefix = origin_prefix ? origin_prefix : "";
    text_buf tb;
    tb_init(&tb, err, errlen);

    if (key == NULL)
        key = "";
    int id = find_key(key);
    if (id < 0) {
        format_unknown(&tb, prefix, key);
        return -1;
    }
    if (value == NULL) {
        tb_key(&tb, prefix, key);
        tb_puts(&tb, ": missing value");
        return -1;
    }

    uint64_t u = 0;
    int choice = 0;
    switch ((key_id)id) {
    case KEY_OUTPUT:
        return set_output(c, &tb, prefix, key, value);
    case KEY_QUIET:
        return set_bool(&c->quiet, &tb, prefix, key, value);
    case KEY_BUILTINS:
        return set_bool(&c->builtins, &tb, prefix, key, value);
    case KEY_IDLE:
        return set_bool(&c->idle, &tb, prefix, key, value);
    case KEY_NATIVE:
        return set_bool(&c->native, &tb, prefix, key, value);
    case KEY_SUBPROCESSES:
        return set_bool(&c->subprocesses, &tb, prefix, key, value);
    case KEY_GIL: {
        /* A boolean turns exact accounting on or off (CPYPROF_GIL=1). */
        static const char *const gil_modes[3] = {"off", "exact", "sample"}; /* = cp_gil_mode */
        int g = parse_choice(value, gil_modes, 3);
        if (g < 0) {
            int b = parse_bool(value);
            if (b < 0)
                return bad_value(&tb, prefix, key, value, "is not valid", GIL_EXPECT);
            g = b == 1 ? CP_GIL_EXACT : CP_GIL_OFF;
        }
        c->gil = (cp_gil_mode)g;
        return 0;
    }
    case KEY_ALLOC: {
        static const char *const alloc_modes[3] = {"off", "on", "native"}; /* = cp_alloc_mode */
        int m = parse_choice(value, alloc_modes, 3);
        if (m < 0) {
            int b = parse_bool(value);
            if (b < 0)
                return bad_value(&tb, prefix, key, value, "is not valid", ALLOC_EXPECT);
            m = b == 1 ? CP_ALLOC_ON : CP_ALLOC_OFF;
        }
        c->alloc = (cp_alloc_mode)m;
        return 0;
    }
    case KEY_MODE: {
        static const char *const modes[3] = {"trace", "sample", "timeline"}; /* = cp_mode */
        int m = parse_choice(value, modes, 3);
        if (m < 0)
            return bad_value(&tb, prefix, key, value, "is not valid",
                             "expected trace, sample or timeline");
        c->mode = (cp_mode)m;
        return 0;
    }
    case KEY_KEEP:
        if (set_choice(&choice, keeps, &tb, prefix, key, value) < 0)
            return -1;
        c->keep = choice ? CP_KEEP_LAST : CP_KEEP_ALL;
        return 0;
    case KEY_BUFFER:
        if (set_size(&u, BUFFER_MIN, BUFFER_MAX, BUFFER_EXPECT, &tb, prefix, key, value) < 0)
            return -1;
        c->buffer_bytes = u;
        return 0;
    case KEY_TRANSPORT:
        if (set_choice(&choice, transports, &tb, prefix, key, value) < 0)
            return -1;
        c->transport = choice ? CP_TRANSPORT_RING : CP_TRANSPORT_INLINE;
        return 0;
    case KEY_CLOCK:
        if (set_choice(&choice, clocks, &tb, prefix, key, value) < 0)
            return -1;
        c->clock = choice ? CP_CLOCK_WALL : CP_CLOCK_CPU;
        return 0;
    case KEY_MAX_DEPTH:
        if (set_uint(&u, MAX_DEPTH_MIN, MAX_DEPTH_MAX, MAX_DEPTH_EXPECT, &tb, prefix, key, value) <
            0)
            return -1;
        c->max_depth = (uint32_t)u;
        return 0;
    case KEY_RATE:
        if (set_uint(&u, RATE_MIN, RATE_MAX, RATE_EXPECT, &tb, prefix, key, value) < 0)
            return -1;
        c->rate_hz = (uint32_t)u;
        return 0;
    case KEY_GIL_RATE:
        if (set_uint(&u, GIL_RATE_MIN, GIL_RATE_MAX, GIL_RATE_EXPECT, &tb, prefix, key, value) < 0)
            return -1;
        c->gil_rate_hz = (uint32_t)u;
        return 0;
    case KEY_RING_SIZE:
        if (set_size(&u, RING_MIN, RING_MAX, RING_EXPECT, &tb, prefix, key, value) < 0)
            return -1;
        c->ring_bytes = u;
        return 0;
    case KEY_COUNT:
        break;
    }
    return -1; /* not reached: find_key returns a valid id */
}

static bool is_reserved(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof reserved_env / sizeof reserved_env[0]; i++) {
        if (strlen(reserved_env[i]) == len && memcmp(reserved_env[i], name, len) == 0)
            return true;
    }
    return false;
}

int cp_config_from_env(cp_config *c, char *const *envp, char *err, size_t errlen)
{
    const size_t plen = sizeof ENV_PREFIX - 1;
    if (err && errlen)
        err[0] = '\0';
    if (envp == NULL)
        return 0;
    for (; *envp; envp++) {
        const char *entry = *envp;
        if (strncmp(entry, ENV_PREFIX, plen) != 0)
            continue;
        const char *eq = strchr(entry, '=');
        if (eq == NULL)
            continue; /* not a NAME=value entry */
        size_t name_len = (size_t)(eq - entry);
        if (is_reserved(entry, name_len))
            continue;

        /* The key is the suffix, lower-cased, in a fixed buffer (no malloc).
         * A suffix too long to be any key is cut one character past what a
         * message shows, so it stays unknown and the message marks the cut. */
        char key[KEY_DISPLAY_MAX + 2];
        size_t klen = name_len - plen;
        if (klen > KEY_DISPLAY_MAX + 1)
            klen = KEY_DISPLAY_MAX + 1;
        for (size_t i = 0; i < klen; i++)
            key[i] = ascii_lower(entry[plen + i]);
        key[klen] = '\0';

        if (cp_config_set(c, key, eq + 1, ENV_PREFIX, err, errlen) < 0)
            return -1;
    }
    return 0;
}
