/*
 * fake_perf.c — a test shim (LD_PRELOAD, before libcpyprof.so) that makes
 * perf_event_open succeed on machines without hardware counters, such as
 * the development VMs, so the tests can follow the instruction counter's
 * descriptor (src/python/hwcount.c) where it would be on real hardware.
 *
 * syscall(SYS_perf_event_open, ...) returns a memfd named "fake-perf"
 * holding one 64-bit count, FAKE_PERF_COUNT, at offset 0: a read(2) of it
 * gives what reading a real counter gives. Every other system call is
 * passed to libc's syscall unchanged (six register-sized arguments, which
 * is what the x86-64 and aarch64 calling conventions pass anyway).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FAKE_PERF_COUNT 424242u

__attribute__((visibility("default"))) long syscall(long number, ...)
{
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_perf_event_open) {
        int fd = memfd_create("fake-perf", (a[4] & 8 /* PERF_FLAG_FD_CLOEXEC */) ? MFD_CLOEXEC : 0);
        if (fd < 0)
            return -1;
        uint64_t count = FAKE_PERF_COUNT;
        if (write(fd, &count, sizeof count) != (ssize_t)sizeof count ||
            lseek(fd, 0, SEEK_SET) != 0) {
            close(fd);
            return -1;
        }
        return fd;
    }
    static long (*next)(long, ...);
    if (!next)
        next = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return next(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}
