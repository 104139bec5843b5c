/*
 * pyapi.h — how libcpyprof.so sees CPython. Include this instead of Python.h
 * in every src/python file.
 *
 * Hazard: libcpyprof.so is preloaded into every process of a profiled
 * program, including /bin/sh and compilers, and it must not link libpython
 * (in Debian's static-libpython executable that would map a second
 * interpreter). Every CPython symbol we use is therefore declared weak
 * (pyweak_list.h): in a Python process it binds to the interpreter's
 * exported symbol; elsewhere it is NULL and the constructor does nothing.
 * A test checks that the built library has no strong undefined Py symbol.
 *
 * Py_BUILD_CORE exposes the internal headers that describe 3.11's frames and
 * thread states; only py311.h reads those structs.
 */
#ifndef CPYPROF_PYTHON_PYAPI_H
#define CPYPROF_PYTHON_PYAPI_H

#define PY_SSIZE_T_CLEAN
#ifndef Py_BUILD_CORE
#define Py_BUILD_CORE 1
#endif
#include <Python.h>
#include <frameobject.h>

#include "python/pyweak_list.h"

#endif
