/*
 * The allocation-counting floor: PyMem allocator wrappers that only pass
 * every call on to the allocator they replaced.
 *
 * Any allocation hook pays this before it counts anything. On a build whose
 * PyObject_Malloc and friends test "is the allocator still pymalloc?" and
 * then run an inlined pymalloc (Debian's LTO+PGO python3), any installed
 * hook turns that into two indirect calls and pymalloc's out-of-line copy.
 * A run under this module measures that share, so that a counting
 * profiler's own cost can be told apart from it (bench_alloc_ab.py --floor).
 *
 * Built on the fly against the running Python's headers; not part of the
 * cpyprof product.
 *
 *   import _cpyprof_bench_passalloc as m
 *   m.install()     # RAW, MEM and OBJ; GIL held
 *   m.uninstall()   # puts back what install found (nothing may have wrapped it since)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* One per domain: the wrappers' ctx is their own slot, as cpyprof's are. */
typedef struct {
    PyMemAllocatorEx below;
} pass_layer;

static pass_layer layers[3];
static const PyMemAllocatorDomain domains[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                PYMEM_DOMAIN_OBJ};

static void *pass_malloc(void *ctx, size_t n)
{
    pass_layer *l = ctx;
    return l->below.malloc(l->below.ctx, n);
}

static void *pass_calloc(void *ctx, size_t nelem, size_t elsize)
{
    pass_layer *l = ctx;
    return l->below.calloc(l->below.ctx, nelem, elsize);
}

static void *pass_realloc(void *ctx, void *ptr, size_t n)
{
    pass_layer *l = ctx;
    return l->below.realloc(l->below.ctx, ptr, n);
}

static void pass_free(void *ctx, void *ptr)
{
    pass_layer *l = ctx;
    l->below.free(l->below.ctx, ptr);
}

static PyObject *install(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (layers[0].below.malloc) {
        PyErr_SetString(PyExc_RuntimeError, "already installed");
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        PyMem_GetAllocator(domains[i], &layers[i].below);
        PyMemAllocatorEx mine = {&layers[i], pass_malloc, pass_calloc, pass_realloc, pass_free};
        PyMem_SetAllocator(domains[i], &mine);
    }
    Py_RETURN_NONE;
}

static PyObject *uninstall(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (!layers[0].below.malloc) {
        PyErr_SetString(PyExc_RuntimeError, "not installed");
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        PyMem_SetAllocator(domains[i], &layers[i].below);
        layers[i].below.malloc = NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"install", install, METH_NOARGS, "Wrap the RAW, MEM and OBJ allocators (pass-through)."},
    {"uninstall", uninstall, METH_NOARGS, "Put back the allocators install found."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cpyprof_bench_passalloc", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__cpyprof_bench_passalloc(void)
{
    return PyModule_Create(&module);
}
