/*
 * names.c — turning code objects and C functions into function ids with
 * names, with the GIL held, the first time each is seen.
 *
 * Code objects: the id is stored in the code object's co_extra slot together
 * with the profiling run's generation, so the hook finds it with three loads
 * and a code object that dies takes its id with it: a new code object at the
 * same address has no extra and gets a fresh id (never a stale name).
 *
 * C functions: keyed by their PyMethodDef, which is static for builtins and
 * extension functions and lives as long as the function. A small hash maps
 * it to the id.
 */
#include "python/alloc.h"
#include "python/profiler.h"

#include "cpyprof/format.h"

#include <stdlib.h>
#include <string.h>

static struct {
    const void **keys;
    uint32_t *ids;
    uint32_t mask;
    uint32_t used;
} cfuncs;

void cp_names_reset(void)
{
    free(cfuncs.keys);
    free(cfuncs.ids);
    memset(&cfuncs, 0, sizeof cfuncs);
}

uint32_t cp_names_string(const char *s)
{
    return cp_symtab_string(&cp_g.syms, s, strlen(s));
}

/* UTF-8 of a str object; "?" when it is not a str or cannot be encoded
 * (lone surrogates). Never leaves an exception set. */
static const char *utf8_or(PyObject *o, const char *fallback, Py_ssize_t *len)
{
    if (o && PyUnicode_Check(o)) {
        const char *s = PyUnicode_AsUTF8AndSize(o, len);
        if (s)
            return s;
        PyErr_Clear();
    }
    *len = (Py_ssize_t)strlen(fallback);
    return fallback;
}

uint32_t cp_names_code(PyCodeObject *co)
{
    /* Our own allocations (the UTF-8 cache, co_extra) are not the program's. */
    int was_busy = cp_alloc_busy;
    cp_alloc_busy = 1;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb); /* the hook may run while an exception is set */
    Py_ssize_t nl, fl;
    const char *name = utf8_or(co->co_qualname, "?", &nl);
    const char *file = utf8_or(co->co_filename, "?", &fl);
    uint32_t ns = cp_symtab_string(&cp_g.syms, name, (size_t)nl);
    uint32_t fs = cp_symtab_string(&cp_g.syms, file, (size_t)fl);
    uint32_t id =
        cp_symtab_func(&cp_g.syms, ns, fs, (uint32_t)co->co_firstlineno, CPYPROF_FUNC_PYTHON);
    if (id != UINT32_MAX && cp_g.co_extra_index >= 0) {
        uintptr_t x = ((uintptr_t)cp_g.generation << 32) | id;
        if (_PyCode_SetExtra((PyObject *)co, cp_g.co_extra_index, (void *)x) < 0)
            PyErr_Clear();
    }
    PyErr_Restore(et, ev, tb);
    cp_alloc_busy = was_busy;
    return id == UINT32_MAX ? 0 : id;
}

/* The type that defines method `ml`: the instance's type or a base whose
 * tp_methods holds it (so list.append called on a subclass is still
 * "list.append"). */
static PyTypeObject *defining_type(PyTypeObject *t, const PyMethodDef *ml)
{
    for (PyTypeObject *b = t; b; b = b->tp_base) {
        for (PyMethodDef *m = b->tp_methods; m && m->ml_name; m++)
            if (m == ml)
                return b;
    }
    return t;
}

static uint32_t name_cfunc_body(PyCFunctionObject *fn)
{
    const PyMethodDef *ml = fn->m_ml;
    const char *mname = ml->ml_name ? ml->ml_name : "?";
    PyObject *self = fn->m_self;
    char buf[512];
    const char *module = "builtins";
    Py_ssize_t len;
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    if (self == NULL || PyModule_Check(self)) {
        if (fn->m_module && PyUnicode_Check(fn->m_module))
            module = utf8_or(fn->m_module, "builtins", &len);
        else if (self && PyModule_Check(self)) {
            const char *m = PyModule_GetName(self);
            if (m)
                module = m;
            else
                PyErr_Clear();
        }
        snprintf(buf, sizeof buf, "%s", mname);
    } else {
        PyTypeObject *t = PyType_Check(self) ? (PyTypeObject *)self : Py_TYPE(self);
        if (!PyType_Check(self))
            t = defining_type(t, ml);
        const char *tp = t->tp_name ? t->tp_name : "?";
        const char *dot = strrchr(tp, '.');
        static char modbuf[256];
        if (dot) {
            size_t n =
                (size_t)(dot - tp) < sizeof modbuf - 1 ? (size_t)(dot - tp) : sizeof modbuf - 1;
            memcpy(modbuf, tp, n);
            modbuf[n] = '\0';
            module = modbuf;
            tp = dot + 1;
        }
        snprintf(buf, sizeof buf, "%s.%s", tp, mname);
    }
    uint32_t ns = cp_names_string(buf);
    uint32_t fs = cp_names_string(module);
    PyErr_Restore(et, ev, tb);
    uint32_t id = cp_symtab_func(&cp_g.syms, ns, fs, 0, CPYPROF_FUNC_BUILTIN);
    return id == UINT32_MAX ? 0 : id;
}

static inline uint32_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (uint32_t)x;
}

static int cfuncs_grow(void)
{
    uint32_t nmask = cfuncs.mask ? cfuncs.mask * 2 + 1 : 255;
    const void **nk = calloc((size_t)nmask + 1, sizeof *nk);
    uint32_t *ni = calloc((size_t)nmask + 1, sizeof *ni);
    if (!nk || !ni) {
        free(nk);
        free(ni);
        return -1;
    }
    for (uint32_t i = 0; cfuncs.keys && i <= cfuncs.mask; i++) {
        if (!cfuncs.keys[i])
            continue;
        uint32_t s = ptr_hash(cfuncs.keys[i]) & nmask;
        while (nk[s])
            s = (s + 1) & nmask;
        nk[s] = cfuncs.keys[i];
        ni[s] = cfuncs.ids[i];
    }
    free(cfuncs.keys);
    free(cfuncs.ids);
    cfuncs.keys = nk;
    cfuncs.ids = ni;
    cfuncs.mask = nmask;
    return 0;
}

/* Our own allocations (the type's and module's names) are not the program's. */
static uint32_t name_cfunc(PyCFunctionObject *fn)
{
    int was_busy = cp_alloc_busy;
    cp_alloc_busy = 1;
    uint32_t id = name_cfunc_body(fn);
    cp_alloc_busy = was_busy;
    return id;
}

uint32_t cp_names_cfunc(PyObject *cfunc)
{
    const PyMethodDef *ml = ((PyCFunctionObject *)cfunc)->m_ml;
    if ((cfuncs.used + 1) * 2 > cfuncs.mask + 1 && cfuncs_grow() != 0 &&
        cfuncs.used + 2 > cfuncs.mask)
        return name_cfunc((PyCFunctionObject *)cfunc); /* no memory: unshared id */
    uint32_t s = ptr_hash(ml) & cfuncs.mask;
    while (cfuncs.keys[s]) {
        if (cfuncs.keys[s] == ml)
            return cfuncs.ids[s];
        s = (s + 1) & cfuncs.mask;
    }
    uint32_t id = name_cfunc((PyCFunctionObject *)cfunc);
    cfuncs.keys[s] = ml;
    cfuncs.ids[s] = id;
    cfuncs.used++;
    return id;
}
