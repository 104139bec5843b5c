/*
 * fdsafe.h — the profiler's own file descriptors in a program that closes
 * and reuses descriptors.
 *
 * Programs (daemons, test suites, subprocess-like code) call
 * os.closerange(3, maxfd) and then open files that get the lowest free
 * numbers: without care, the profile's chunks and the writer's wake-up bytes
 * would land in the program's files, and our close() would close them. So:
 *   - our descriptors live at high numbers (cp_fd_move_high), where a
 *     program that reopens a few files does not reach;
 *   - before using one off the hot path we check that it is still the file
 *     we opened (cp_fd_same: device and inode), and never close one that is
 *     not. fstat is async-signal-safe: usable in the SIGTERM handler and
 *     after fork.
 */
#ifndef CPYPROF_CORE_FDSAFE_H
#define CPYPROF_CORE_FDSAFE_H

#include <stdbool.h>
#include <stdint.h>

/** An open file's identity. */
typedef struct cp_fd_id {
    uint64_t dev;
    uint64_t ino;
} cp_fd_id;

/** Moves `fd` to a number near the top of RLIMIT_NOFILE (close-on-exec),
 *  closing the original; returns the new number, or `fd` itself when that
 *  is not possible. */
int cp_fd_move_high(int fd);

/** Reads fd's identity into *id; false if fd is not open. */
bool cp_fd_identify(int fd, cp_fd_id *id);

/** True if fd is open and is the file `id` names. Async-signal-safe. */
bool cp_fd_same(int fd, const cp_fd_id *id);

#endif
