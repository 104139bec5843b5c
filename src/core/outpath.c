/*
 * outpath.c — the profile path of one process (cp_output_path, config.h).
 *
 * With subprocesses on, every process of the tree writes its own file, named
 * after its pid, so that a forked child, an exec'd Python and a
 * multiprocessing worker never share (or truncate) a file. The rule is
 * textual and needs no allocation: it runs in a forked child's after-fork
 * hook and in the preloaded library's start.
 */
#include "core/config.h"

#include <stdbool.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* The default file name inside an output directory. */
#define DIR_STEM "cpyprof"
#define DIR_EXT ".out"

static int too_long(const char *path, char *err, size_t errlen)
{
    snprintf(err, errlen, "output path '%.200s': too long with the process id added", path);
    return -1;
}

int cp_output_path(const cp_config *c, long pid, char *buf, size_t n, char *err, size_t errlen)
{
    const char *out = c->output;
    size_t len = strlen(out);
    int w;
    if (!c->subprocesses) {
        w = snprintf(buf, n, "%s", out);
        return w < 0 || (size_t)w >= n ? too_long(out, err, errlen) : 0;
    }
    struct stat st;
    bool is_dir = (len > 0 && out[len - 1] == '/') || (stat(out, &st) == 0 && S_ISDIR(st.st_mode));
    if (is_dir) {
        const char *sep = len > 0 && out[len - 1] == '/' ? "" : "/";
        w = snprintf(buf, n, "%s%s" DIR_STEM ".%ld" DIR_EXT, out, sep, pid);
        return w < 0 || (size_t)w >= n ? too_long(out, err, errlen) : 0;
    }
    /* The extension is the last '.' of the file name, not of a directory
     * ("a.d/prof" has none), and a leading dot (".prof") is not one. */
    const char *slash = strrchr(out, '/');
    const char *name = slash ? slash + 1 : out;
    const char *dot = strrchr(name, '.');
    if (dot == NULL || dot == name)
        dot = out + len;
    w = snprintf(buf, n, "%.*s.%ld%s", (int)(dot - out), out, pid, dot);
    return w < 0 || (size_t)w >= n ? too_long(out, err, errlen) : 0;
}
