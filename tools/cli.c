/* cli.c — helpers shared by the subcommands (see cli.h). */
#include "cli.h"
#include "report/text.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* A growable list of file names (owned copies). */
typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static bool names_add(name_list *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return false;
        l->v = v;
        l->cap = cap;
    }
    return (l->v[l->n] = strdup(s)) != NULL && ++l->n;
}

static void names_free(name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds `path`, or each regular file of the directory `path` (sorted). */
static int expand_path(name_list *l, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return names_add(l, path) ? CLI_OK : CLI_FAIL;
    DIR *d = opendir(path);
    if (!d) {
        cli_error("%s: %s", path, strerror(errno));
        return CLI_FAIL;
    }
    size_t first = l->n;
    struct dirent *e;
    char full[8192];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && !names_add(l, full)) {
            closedir(d);
            return CLI_FAIL;
        }
    }
    closedir(d);
    if (l->n == first) {
        cli_error("%s: a directory without profiles", path);
        return CLI_FAIL;
    }
    qsort(l->v + first, l->n - first, sizeof *l->v, cmp_name);
    return CLI_OK;
}

int cli_load_many(char *const *paths, size_t n, cp_profile *p, bool warn)
{
    name_list l = {0};
    for (size_t i = 0; i < n; i++)
        if (expand_path(&l, paths[i]) != CLI_OK) {
            names_free(&l);
            return CLI_FAIL;
        }
    if (l.n == 1 && n == 1 && strcmp(l.v[0], paths[0]) == 0) {
        names_free(&l);
        return cli_load(paths[0], p, warn);
    }
    /* A profile that holds nothing (0 bytes, or only the 16-byte header: a
     * process killed as it started, common among a run's children) is left
     * out with one warning: it must not cost the other processes' data. */
    cp_profile *parts = calloc(l.n, sizeof *parts);
    int rc = parts ? CLI_OK : CLI_FAIL;
    size_t loaded = 0;
    char err[1024];
    for (size_t i = 0; rc == CLI_OK && i < l.n; i++) {
        struct stat st;
        if (stat(l.v[i], &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0) {
            fprintf(stderr,
                    "cpyprof: warning: %s: empty file (0 bytes), nothing was kept (the process "
                    "ended before it wrote the profile's header); left out of the merge\n",
                    l.v[i]);
            continue;
        }
        if (cli_load(l.v[i], &parts[loaded], false) != CLI_OK) {
            rc = CLI_FAIL;
            break;
        }
        if (parts[loaded].chunks_kept == 0) {
            fprintf(stderr,
                    "cpyprof: warning: %s: no chunk after the header, nothing was kept (the "
                    "process ended as it started); left out of the merge\n",
                    l.v[i]);
            cp_profile_free(&parts[loaded]);
            continue;
        }
        if (warn && cp_profile_warning(&parts[loaded], err, sizeof err))
            fprintf(stderr, "cpyprof: warning: %s: %s\n", l.v[i], err);
        loaded++;
    }
    if (rc == CLI_OK && loaded == 0) {
        cli_error("none of the %zu files holds profile data", l.n);
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK && cp_profile_merge(parts, loaded, p, err, sizeof err) != 0) {
        cli_error("%s", err);
        rc = CLI_FAIL;
    }
    if (rc != CLI_OK)
        for (size_t i = 0; i < loaded; i++)
            cp_profile_free(&parts[i]);
    free(parts);
    names_free(&l);
    return rc;
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

int cli_finish_output(FILE *f, const char *path, int rc, const char *err)
{
    if (rc == 0)
        return cli_close_output(f, path);
    cli_error("%s", err);
    if (f != stdout)
        fclose(f);
    return CLI_FAIL;
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
