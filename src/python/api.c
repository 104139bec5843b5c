/* api.c — the exported C API (include/cpyprof/cpyprof.h). */
#include "python/profiler.h"

#include "core/version.h"
#include "cpyprof/cpyprof.h"
#include "cpyprof/format.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int cpyprof_start(const char *output, const cpyprof_option *options, size_t noptions, int *err_kind,
                  char *err, size_t errlen)
{
    cp_config cfg;
    cp_config_defaults(&cfg);
    int kind = 1;
    if (output && cp_config_set(&cfg, "output", output, "", err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < noptions; i++)
        if (cp_config_set(&cfg, options[i].key, options[i].value, "", err, errlen) != 0)
            goto fail;
    kind = 3;
    if (cp_profiler_start(&cfg, CP_ACT_IMPORT, err, errlen) != 0) {
        if (strncmp(err, "cannot write profile", 20) == 0)
            kind = 2;
        goto fail;
    }
    return 0;
fail:
    if (err_kind)
        *err_kind = kind;
    return -1;
}

int cpyprof_stop(char *err, size_t errlen)
{
    return cp_profiler_stop(CPYPROF_END_STOP, err, errlen);
}

int cpyprof_is_running(void)
{
    return atomic_load(&cp_g.state) == CP_RUNNING;
}

const char *cpyprof_output(void)
{
    return cp_g.path[0] ? cp_g.path : cp_g.cfg.output; /* the file of this process */
}

const char *cpyprof_library_path(void)
{
    static char path[4096];
    Dl_info info;
    if (!path[0] && dladdr((void *)cpyprof_library_path, &info) && info.dli_fname)
        snprintf(path, sizeof path, "%s", info.dli_fname);
    return path;
}

const char *cpyprof_version(void)
{
    return cp_version();
}
