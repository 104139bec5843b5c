/*
 * libpath.c — finding libcpyprof.so for `cpyprof record`.
 *
 * Order:
 *   1. $CPYPROF_LIBRARY, when set (it must exist);
 *   2. next to the cpyprof executable (the build tree);
 *   3. where `pip install` puts it relative to <prefix>/bin/cpyprof:
 *      <prefix>/lib/python3.X/{site,dist}-packages/cpyprof/libcpyprof.so
 *      (also lib64);
 *   4. <prefix>/lib/libcpyprof.so and <prefix>/lib/x86_64-linux-gnu/ (make
 *      install).
 * The result is made absolute: LD_PRELOAD is read by every process the
 * program starts, whatever its working directory.
 */
#include "cli.h"

#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIBNAME "libcpyprof.so"

/* Accepts `path` if it is a readable file: canonical path into buf. */
static bool take(const char *path, char *buf, size_t n)
{
    char real[PATH_MAX];
    if (access(path, R_OK) != 0 || !realpath(path, real))
        return false;
    snprintf(buf, n, "%s", real);
    return true;
}

static bool take_glob(const char *pattern, char *buf, size_t n)
{
    glob_t g;
    bool found = false;
    if (glob(pattern, 0, NULL, &g) == 0) {
        /* Several matches (several Pythons): the first readable one in
         * glob's (text) order. */
        for (size_t i = 0; i < g.gl_pathc && !found; i++)
            found = take(g.gl_pathv[i], buf, n);
        globfree(&g);
    }
    return found;
}

int cli_find_library(char *buf, size_t n, char *err, size_t errlen)
{
    const char *env = getenv("CPYPROF_LIBRARY");
    if (env && *env) {
        if (take(env, buf, n))
            return 0;
        snprintf(err, errlen, "CPYPROF_LIBRARY='%s' is not a readable file", env);
        return -1;
    }
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) {
        snprintf(err, errlen, "cannot find %s: /proc/self/exe is unreadable; set CPYPROF_LIBRARY",
                 LIBNAME);
        return -1;
    }
    exe[len] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    const char *dir = exe;

    static const char *const direct[] = {
        "%s/" LIBNAME,
        "%s/../lib/" LIBNAME,
        "%s/../lib/x86_64-linux-gnu/" LIBNAME,
        "%s/../lib64/" LIBNAME,
    };
    static const char *const globbed[] = {
        "%s/../lib/python3*/site-packages/cpyprof/" LIBNAME,
        "%s/../lib/python3*/dist-packages/cpyprof/" LIBNAME,
        "%s/../lib64/python3*/site-packages/cpyprof/" LIBNAME,
    };
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, direct[0], dir);
    if (take(path, buf, n))
        return 0;
    for (size_t i = 0; i < sizeof globbed / sizeof *globbed; i++) {
        snprintf(path, sizeof path, globbed[i], dir);
        if (take_glob(path, buf, n))
            return 0;
    }
    for (size_t i = 1; i < sizeof direct / sizeof *direct; i++) {
        snprintf(path, sizeof path, direct[i], dir);
        if (take(path, buf, n))
            return 0;
    }
    snprintf(err, errlen,
             "cannot find %s next to %s/cpyprof, in ../lib/python3.*/site-packages/cpyprof "
             "or in ../lib; set CPYPROF_LIBRARY to its path",
             LIBNAME, dir);
    return -1;
}
