/*
 * hwcount.c — the instruction counter (see hwcount.h).
 *
 * Hazards: the counter belongs to the thread that opened it, in the process
 * that opened it. A forked child inherits the descriptor but would read the
 * parent thread's count: the pid is remembered and a child reports the
 * counter as unavailable. The read at dump time is a plain read(2) on the
 * descriptor, safe from the SIGTERM path. The syscall has no glibc wrapper.
 *
 * The starting thread opens it, in the program's table, close-on-exec
 * (PERF_FLAG_FD_CLOEXEC) and moved to a high number as the profile file is
 * (core/fdsafe.h). When the writer thread has a private table holding a
 * copy (drain.c), the starting thread closes the program's copy
 * (cp_hw_hand_to_writer): the program never sees it after start, and from
 * then on only the writer can read it (cp_hw_snapshot at the end of its
 * loop, for a dump made on another thread). Without a private table the
 * descriptor stays in the program's table, where the program can close it
 * and reuse its number: it is checked to still be the counter (fstat
 * identity) before it is read or closed, as a read(2) on a reused number
 * would consume 8 bytes of the program's own file or pipe.
 */
#include "python/hwcount.h"
#include "python/profiler.h" /* cp_writer_has_private_fds */

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
/* The descriptor lives only in the writer's private table (see
 * cp_hw_hand_to_writer): hw_fd is a number in that table, not in the
 * program's. hw_final is the count the writer read when its loop ended. */
static bool hw_handed;
static bool hw_final_ok;
static uint64_t hw_final;

void cp_hw_start(void)
{
    /* A descriptor handed to an earlier writer went with its private table
     * when that thread ended; the number here belongs to the program. */
    if (hw_fd >= 0 && !hw_handed && cp_fd_same(hw_fd, &hw_id))
        close(hw_fd); /* never a descriptor the program reused */
    hw_fd = -1;
    hw_handed = false;
    hw_final_ok = false;
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

void cp_hw_hand_to_writer(void)
{
    if (hw_fd < 0)
        return;
    if (cp_fd_same(hw_fd, &hw_id))
        close(hw_fd); /* the program's copy; the writer keeps its own */
    hw_handed = true;
}

/* read(2) of the counter: its value, or false */
static bool hw_read(uint64_t *count)
{
    return read(hw_fd, count, sizeof *count) == (ssize_t)sizeof *count;
}

void cp_hw_snapshot(void)
{
    if (hw_fd >= 0 && hw_handed && cp_writer_has_private_fds() && getpid() == hw_pid &&
        cp_fd_same(hw_fd, &hw_id))
        hw_final_ok = hw_read(&hw_final);
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
    uint64_t count;
    if (hw_handed && !cp_writer_has_private_fds()) {
        /* another thread: the descriptor is not in its table */
        if (!hw_final_ok) {
            cp_buf_meta(b, "instructions_unavailable", "the writer did not read the counter");
            return;
        }
        count = hw_final;
    } else if (!cp_fd_same(hw_fd, &hw_id)) {
        cp_buf_meta(b, "instructions_unavailable", "the program closed the counter's descriptor");
        return;
    } else if (!hw_read(&count)) {
        cp_buf_meta(b, "instructions_unavailable", "reading the counter failed");
        return;
    }
    snprintf(v, sizeof v, "%llu", (unsigned long long)count);
    cp_buf_meta(b, "instructions", v);
    cp_buf_meta(b, "instructions_scope", "user space, the thread that started profiling");
}
