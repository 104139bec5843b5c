/*
 * hwcount.c — the instruction counter (see hwcount.h).
 *
 * Hazards: the counter belongs to the thread that opened it, in the process
 * that opened it. A forked child inherits the descriptor but would read the
 * parent thread's count: the pid is remembered and a child reports the
 * counter as unavailable. The read at dump time is a plain read(2) on the
 * descriptor, safe from the SIGTERM path. The syscall has no glibc wrapper.
 *
 * The descriptor is in the program's own table (the starting thread opens
 * it; the writer thread's private table holds a copy, drain.c): the program
 * can see it in /proc/self/fd, and close it and reuse its number. So it is
 * opened close-on-exec (PERF_FLAG_FD_CLOEXEC: an exec'd child inherits
 * nothing), moved to a high number as the profile file is (core/fdsafe.h),
 * and checked to still be the counter (fstat identity) before it is read
 * or closed: a read(2) on a number the program reused would consume 8 bytes
 * of the program's own file or pipe.
 */
#include "python/hwcount.h"

#include "core/fdsafe.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int hw_fd = -1;
static cp_fd_id hw_id; /* what hw_fd was when we opened it */
static pid_t hw_pid;
static char hw_why[160];

void cp_hw_start(void)
{
    if (hw_fd >= 0 && cp_fd_same(hw_fd, &hw_id))
        close(hw_fd); /* never a descriptor the program reused */
    hw_fd = -1;
    hw_pid = getpid();
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_INSTRUCTIONS;
    attr.exclude_kernel = 1; /* user-only: allowed at perf_event_paranoid 2 */
    attr.exclude_hv = 1;
    long fd =
        syscall(SYS_perf_event_open, &attr, 0 /* this thread */, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(hw_why, sizeof hw_why, "perf_event_open(instructions): %s%s", strerror(e),
                 e == ENOENT || e == EOPNOTSUPP || e == ENODEV
                     ? " (no hardware counters, as in many virtual machines)"
                 : e == EACCES || e == EPERM ? " (see /proc/sys/kernel/perf_event_paranoid)"
                                             : "");
        return;
    }
    int high = cp_fd_move_high((int)fd); /* keeps close-on-exec */
    if (!cp_fd_identify(high, &hw_id)) {
        close(high);
        snprintf(hw_why, sizeof hw_why, "perf_event_open(instructions): fstat failed");
        return;
    }
    hw_fd = high;
    hw_why[0] = 0;
}

int cp_hw_fd(void)
{
    return hw_fd;
}

void cp_hw_meta(cp_buf *b)
{
    char v[64];
    if (hw_fd < 0) {
        cp_buf_meta(b, "instructions_unavailable", hw_why[0] ? hw_why : "not measured");
        return;
    }
    if (getpid() != hw_pid) {
        cp_buf_meta(b, "instructions_unavailable",
                    "a forked child: the counter counts the parent's thread");
        return;
    }
    if (!cp_fd_same(hw_fd, &hw_id)) {
        cp_buf_meta(b, "instructions_unavailable", "the program closed the counter's descriptor");
        return;
    }
    uint64_t count;
    if (read(hw_fd, &count, sizeof count) != (ssize_t)sizeof count) {
        cp_buf_meta(b, "instructions_unavailable", "reading the counter failed");
        return;
    }
    snprintf(v, sizeof v, "%llu", (unsigned long long)count);
    cp_buf_meta(b, "instructions", v);
    cp_buf_meta(b, "instructions_scope", "user space, the thread that started profiling");
}
