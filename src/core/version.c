/* version.c — the version string, one definition for the library and tools. */
#include "core/version.h"

const char *cp_version(void)
{
    return CPYPROF_VERSION;
}
