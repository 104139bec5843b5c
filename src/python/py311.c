/* py311.c — checks that the running interpreter matches py311.h. */
#include "python/py311.h"

#include "core/pycheck.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>

#include <internal/pycore_runtime.h>

/* Size of a data symbol from its ELF symbol entry, or -1. */
static long symbol_size(const void *addr)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    if (!dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym)
        return -1;
    return (long)sym->st_size;
}

int cp311_check_runtime(char *err, size_t errlen)
{
    cp_python_facts f = {
        .version = Py_GetVersion(),
        /* Py_DEBUG implies Py_REF_DEBUG, which exports _Py_RefTotal. */
        .debug_build = dlsym(RTLD_DEFAULT, "_Py_RefTotal") != NULL,
        .runtime_size = &_PyRuntime ? symbol_size(&_PyRuntime) : -1,
        .expected_runtime_size = (long)sizeof(_PyRuntimeState),
    };
    return cp_python_supported(&f, err, errlen);
}

int cp311_unlink_audit_hook(Py_AuditHookFunction fn)
{
    /* The list is only changed with the GIL held (PySys_AddAuditHook
     * appends). The entry stays allocated and keeps its `next`, so an
     * iteration in progress (we are called from inside one) goes on. */
    _Py_AuditHookEntry **link = &_PyRuntime.audit_hook_head;
    while (*link) {
        if ((*link)->hookCFunction == fn) {
            *link = (*link)->next;
            return 1;
        }
        link = &(*link)->next;
    }
    return 0;
}
