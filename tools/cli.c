/* cli.c — helpers shared by the subcommands (see cli.h). */
#include "cli.h"
#include "report/text.h"

#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cpyprof: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cpyprof %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nsee cpyprof %s --help\n", cmd);
    va_end(ap);
    return CLI_USAGE;
}

int cli_getopt_error(const char *cmd, int c, char **argv)
{
    /* getopt_long leaves optind past the offending element. */
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':') {
        if (optopt && strncmp(arg, "--", 2) != 0)
            return cli_usage(cmd, "option '-%c' needs a value", optopt);
        return cli_usage(cmd, "option '%s' needs a value", arg);
    }
    if (optopt && strncmp(arg, "--", 2) != 0)
        return cli_usage(cmd, "unknown option '-%c'", optopt);
    return cli_usage(cmd, "unknown option '%s'", arg);
}

int cli_load(const char *path, cp_profile *p, bool warn)
{
    char err[1024];
    if (cp_profile_load(p, path, err, sizeof err) != 0) {
        cli_error("%s", err);
        return CLI_FAIL;
    }
    if (warn && cp_profile_warning(p, err, sizeof err))
        fprintf(stderr, "cpyprof: warning: %s: %s\n", path, err);
    return CLI_OK;
}

FILE *cli_open_output(const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "we");
    if (!f)
        cli_error("cannot write '%s': %s", path, strerror(errno));
    return f;
}

int cli_close_output(FILE *f, const char *path)
{
    bool bad = fflush(f) != 0 || ferror(f);
    int e = errno;
    if (f != stdout && fclose(f) != 0 && !bad) {
        bad = true;
        e = errno;
    }
    if (bad) {
        cli_error("cannot write '%s': %s", path, strerror(e));
        return CLI_FAIL;
    }
    return CLI_OK;
}

bool cli_parse_uint(const char *text, unsigned long long min, unsigned long long max,
                    unsigned long long *out)
{
    if (!text || *text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool cli_parse_duration(const char *text, uint64_t *ns)
{
    /* Digits, an optional fraction, an optional unit; no locale (strtod
     * would read "1,5" in some), no sign, no exponent. */
    if (!text || *text < '0' || *text > '9')
        return false;
    unsigned long long whole = 0, frac = 0, scale = 1;
    const char *s = text;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (whole > (ULLONG_MAX - 9) / 10)
            return false;
        whole = whole * 10 + (unsigned)(*s - '0');
    }
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return false;
        for (; *s >= '0' && *s <= '9'; s++)
            if (scale < 1000000000ull) {
                frac = frac * 10 + (unsigned)(*s - '0');
                scale *= 10;
            }
    }
    unsigned long long unit;
    if (*s == '\0' || strcmp(s, "ns") == 0)
        unit = 1;
    else if (strcmp(s, "us") == 0)
        unit = 1000;
    else if (strcmp(s, "ms") == 0)
        unit = 1000000;
    else if (strcmp(s, "s") == 0)
        unit = 1000000000;
    else
        return false;
    if (whole > ULLONG_MAX / unit)
        return false;
    *ns = whole * unit + frac * unit / scale;
    return true;
}

const char *cli_profile_command(const cp_profile *p, char *buf, size_t n)
{
    size_t len;
    const char *argv = cp_profile_meta_len(p, "argv", &len);
    if (!argv || len == 0)
        return NULL;
    return cp_argv_join(argv, len, buf, n);
}
