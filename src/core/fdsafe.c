/* fdsafe.c — see fdsafe.h. */
#include "core/fdsafe.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Distance below the descriptor limit: room for a few of our descriptors
 * while staying far above what programs reopen after closing everything. */
#define HIGH_MARGIN 128
#define HIGH_MIN_LIMIT 512 /* below this limit, leave descriptors where they are */

int cp_fd_move_high(int fd)
{
    struct rlimit rl;
    if (fd < 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur < HIGH_MIN_LIMIT)
        return fd;
    rlim_t base = rl.rlim_cur - HIGH_MARGIN;
    if (base > 65536) /* a huge limit: high enough, and keep poll/select tables small */
        base = 65536;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, (int)base);
    if (nfd < 0)
        return fd;
    close(fd);
    return nfd;
}

bool cp_fd_identify(int fd, cp_fd_id *id)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0)
        return false;
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    return true;
}

bool cp_fd_same(int fd, const cp_fd_id *id)
{
    cp_fd_id now;
    return cp_fd_identify(fd, &now) && now.dev == id->dev && now.ino == id->ino;
}
