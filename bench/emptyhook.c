/*
 * The deterministic floor: a C profile function that does nothing.
 *
 * In CPython 3.11, installing any profile function with PyEval_SetProfile switches the
 * calling thread to the interpreter's tracing dispatch and makes it call the function on
 * every Python call/return and every C call/return/exception.  This module installs a
 * function that returns 0 at once, so a run under it measures what the interpreter charges
 * before a profiler has done any work of its own.  No deterministic profiler built on the
 * legacy profile hook can be cheaper than this.
 *
 * Built on the fly by bench_trace.py (cc -shared -fPIC against the running Python's
 * headers); not part of the cpyprof product.
 *
 *   import _cpyprof_bench_emptyhook as h
 *   h.install()     # calling thread only, like PyEval_SetProfile itself in 3.11
 *   ...
 *   h.uninstall()
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int empty_profile(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    (void)obj;
    (void)frame;
    (void)what;
    (void)arg;
    return 0;
}

static PyObject *install(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyEval_SetProfile(empty_profile, NULL);
    if (PyErr_Occurred()) /* an audit hook may refuse sys.setprofile */
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *uninstall(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyEval_SetProfile(NULL, NULL);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"install", install, METH_NOARGS, "Install an empty C profile function on this thread."},
    {"uninstall", uninstall, METH_NOARGS, "Remove the profile function from this thread."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_cpyprof_bench_emptyhook",
    "An empty C profile function: the floor for deterministic profilers.",
    -1,
    methods,
};

PyMODINIT_FUNC PyInit__cpyprof_bench_emptyhook(void)
{
    return PyModule_Create(&module);
}
