/*
 * pycheck.h — deciding whether a running interpreter is one we can profile.
 * Pure logic, separated from the probing (py311.c) so tests can feed it any
 * version string: we cannot install another minor version here.
 */
#ifndef CPYPROF_CORE_PYCHECK_H
#define CPYPROF_CORE_PYCHECK_H

#include <stdbool.h>
#include <stddef.h>

/** What was observed about the interpreter. */
typedef struct cp_python_facts {
    const char *version;        /* Py_GetVersion(), e.g. "3.11.2 (main, ...) [GCC 12]" */
    bool debug_build;           /* Py_DEBUG / Py_REF_DEBUG symbols present */
    long runtime_size;          /* st_size of _PyRuntime, or -1 if unknown */
    long expected_runtime_size; /* sizeof(_PyRuntimeState) we were built with */
} cp_python_facts;

/** Returns 0 if supported, else -1 with a one-line reason in err such as
 *  "unsupported Python 3.12.1: this cpyprof supports CPython 3.11 only". */
int cp_python_supported(const cp_python_facts *f, char *err, size_t errlen);

#endif
