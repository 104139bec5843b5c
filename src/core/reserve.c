/* reserve.c — see reserve.h. */
#include "core/reserve.h"

#include <sys/mman.h>
#include <sys/resource.h>

void *cp_reserve(size_t bytes, bool dontdump)
{
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) != 0 || as.rlim_cur != RLIM_INFINITY)
        return NULL; /* the program's own address-space budget: not ours to spend */
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (dontdump)
        (void)madvise(p, bytes, MADV_DONTDUMP); /* advice only: else a core dump walks it */
    return p;
}
