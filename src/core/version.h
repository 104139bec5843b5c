#ifndef CPYPROF_CORE_VERSION_H
#define CPYPROF_CORE_VERSION_H
/** The cpyprof release, e.g. "0.1.0" (from CMakeLists.txt). */
const char *cp_version(void);
#endif
