/* pycheck.c — see pycheck.h. */
#include "core/pycheck.h"

#include <stdio.h>
#include <string.h>

static void version_token(const char *v, char *out, size_t n)
{
    size_t i = 0;
    while (v[i] && v[i] != ' ' && i + 1 < n) {
        out[i] = v[i];
        i++;
    }
    out[i] = '\0';
}

int cp_python_supported(const cp_python_facts *f, char *err, size_t errlen)
{
    char ver[32];
    version_token(f->version ? f->version : "", ver, sizeof ver);
    /* "3.11." prefix: 3.110 would not exist, but be exact anyway. */
    if (strncmp(ver, "3.11.", 5) != 0 && strcmp(ver, "3.11") != 0) {
        snprintf(err, errlen, "unsupported Python %s: this cpyprof supports CPython 3.11 only",
                 ver[0] ? ver : "(unknown version)");
        return -1;
    }
    if (f->debug_build) {
        snprintf(err, errlen,
                 "unsupported Python %s: a debug build (Py_DEBUG) lays out objects and "
                 "frames differently",
                 ver);
        return -1;
    }
    if (f->runtime_size >= 0 && f->expected_runtime_size > 0 &&
        f->runtime_size != f->expected_runtime_size) {
        snprintf(err, errlen,
                 "unsupported Python %s: its _PyRuntime is %ld bytes, the headers cpyprof was "
                 "built with say %ld (a build with other options)",
                 ver, f->runtime_size, f->expected_runtime_size);
        return -1;
    }
    return 0;
}
