/*
 * cpyprof_module.c — the Python extension `cpyprof._cpyprof`: a thin layer
 * over libcpyprof.so's C API (linked with rpath $ORIGIN, so the library next
 * to the extension is used — or the preloaded one, which has the same
 * soname and is therefore the same copy).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "cpyprof/cpyprof.h"

#include <errno.h>

static PyObject *mod_start(PyObject *self, PyObject *args)
{
    PyObject *output_obj, *options;
    if (!PyArg_ParseTuple(args, "OO!:start", &output_obj, &PyDict_Type, &options))
        return NULL;
    PyObject *output_bytes = NULL;
    if (!PyUnicode_FSConverter(output_obj, &output_bytes))
        return NULL;
    Py_ssize_t n = PyDict_Size(options);
    cpyprof_option *opts = PyMem_Calloc((size_t)(n ? n : 1), sizeof *opts);
    if (!opts) {
        Py_DECREF(output_bytes);
        return PyErr_NoMemory();
    }
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    while (PyDict_Next(options, &pos, &k, &v)) {
        if (!PyUnicode_Check(k) || !PyUnicode_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "cpyprof options must be str: str");
            goto fail;
        }
        opts[i].key = PyUnicode_AsUTF8(k);
        opts[i].value = PyUnicode_AsUTF8(v);
        if (!opts[i].key || !opts[i].value)
            goto fail;
        i++;
    }
    char err[1024];
    int kind = 0;
    if (cpyprof_start(PyBytes_AS_STRING(output_bytes), opts, (size_t)i, &kind, err, sizeof err) !=
        0) {
        PyErr_SetString(kind == 1   ? PyExc_ValueError
                        : kind == 2 ? PyExc_OSError
                                    : PyExc_RuntimeError,
                        err);
        goto fail;
    }
    PyMem_Free(opts);
    Py_DECREF(output_bytes);
    Py_RETURN_NONE;
fail:
    PyMem_Free(opts);
    Py_DECREF(output_bytes);
    return NULL;
}

static PyObject *mod_stop(PyObject *self, PyObject *unused)
{
    char err[1024];
    int rc = cpyprof_stop(err, sizeof err);
    if (rc == 1)
        Py_RETURN_NONE;
    if (rc < 0) {
        PyErr_SetString(PyExc_OSError, err);
        return NULL;
    }
    return PyUnicode_DecodeFSDefault(cpyprof_output());
}

static PyObject *mod_is_running(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(cpyprof_is_running());
}

static PyObject *mod_library_path(PyObject *self, PyObject *unused)
{
    return PyUnicode_DecodeFSDefault(cpyprof_library_path());
}

static PyMethodDef methods[] = {
    {"start", mod_start, METH_VARARGS,
     "start(output, options) -> None\n\nStart profiling the process into `output`; options is "
     "a dict of str settings (see docs/usage.md). ValueError for a bad setting, OSError for an "
     "unwritable output, RuntimeError if already running or the interpreter is unsupported."},
    {"stop", mod_stop, METH_NOARGS,
     "stop() -> str | None\n\nStop profiling and write the profile; returns its path, or None "
     "if not running."},
    {"is_running", mod_is_running, METH_NOARGS, "is_running() -> bool"},
    {"library_path", mod_library_path, METH_NOARGS,
     "library_path() -> str\n\nPath of libcpyprof.so (for LD_PRELOAD)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_cpyprof",
    .m_doc = "cpyprof's native core (use the cpyprof package).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__cpyprof(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddStringConstant(m, "__version__", cpyprof_version()) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
