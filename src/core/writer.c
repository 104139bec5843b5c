/*
 * writer.c — chunk encoding (cp_buf), CRC-32 and the profile file writer.
 *
 * Off the hot path: this runs in the writer thread, in stop() and at exit,
 * so it may allocate and block. It must never exit or raise: every failure
 * becomes a one-line message and a counted error, and the profiled program
 * carries on.
 */
#include "core/writer.h"
#include "core/crc_clmul.h"

#include <pthread.h>

#include <cpyprof/format.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- growable buffer -------------------------------------------------- */

void cp_buf_init(cp_buf *b)
{
    memset(b, 0, sizeof *b);
}

void cp_buf_free(cp_buf *b)
{
    free(b->data);
    cp_buf_init(b);
}

void cp_buf_reset(cp_buf *b)
{
    b->len = 0;
    b->oom = false;
}

/* Makes room for n more bytes; false (and oom set) when that fails, so one
 * failed append poisons the whole payload rather than leaving a hole. */
static bool buf_reserve(cp_buf *b, size_t n)
{
    if (b->oom)
        return false;
    if (n <= b->cap - b->len)
        return true;
    if (n > SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void cp_buf_bytes(cp_buf *b, const void *p, size_t n)
{
    if (n == 0 || !buf_reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void cp_buf_u32(cp_buf *b, uint32_t v)
{
    uint8_t le[4];
    for (int i = 0; i < 4; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    cp_buf_bytes(b, le, sizeof le);
}

void cp_buf_u64(cp_buf *b, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    cp_buf_bytes(b, le, sizeof le);
}

void cp_buf_i64(cp_buf *b, int64_t v)
{
    cp_buf_u64(b, (uint64_t)v);
}

void cp_buf_lstr(cp_buf *b, const char *s, size_t n)
{
    /* The format's lengths are u32: longer text cannot be encoded. Mark the
     * buffer failed instead of writing a length that lies. */
    if (n > UINT32_MAX) {
        b->oom = true;
        return;
    }
    cp_buf_u32(b, (uint32_t)n);
    cp_buf_bytes(b, s, n);
}

void cp_buf_meta(cp_buf *b, const char *key, const char *value)
{
    cp_buf_lstr(b, key, strlen(key));
    cp_buf_lstr(b, value, strlen(value));
}

/* ---- CRC-32 ------------------------------------------------------------ */

/* Reflected IEEE 802.3 polynomial 0xEDB88320, one byte per step (the same
 * function as zlib's crc32()). */
static const uint32_t crc_table[256] = {
    0x00000000, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419, 0x706af48f, 0xe963a535, 0x9e6495a3,
    0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988, 0x09b64c2b, 0x7eb17cbd, 0xe7b82d07, 0x90bf1d91,
    0x1db71064, 0x6ab020f2, 0xf3b97148, 0x84be41de, 0x1adad47d, 0x6ddde4eb, 0xf4d4b551, 0x83d385c7,
    0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec, 0x14015c4f, 0x63066cd9, 0xfa0f3d63, 0x8d080df5,
    0x3b6e20c8, 0x4c69105e, 0xd56041e4, 0xa2677172, 0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b,
    0x35b5a8fa, 0x42b2986c, 0xdbbbc9d6, 0xacbcf940, 0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59,
    0x26d930ac, 0x51de003a, 0xc8d75180, 0xbfd06116, 0x21b4f4b5, 0x56b3c423, 0xcfba9599, 0xb8bda50f,
    0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924, 0x2f6f7c87, 0x58684c11, 0xc1611dab, 0xb6662d3d,
    0x76dc4190, 0x01db7106, 0x98d220bc, 0xefd5102a, 0x71b18589, 0x06b6b51f, 0x9fbfe4a5, 0xe8b8d433,
    0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818, 0x7f6a0dbb, 0x086d3d2d, 0x91646c97, 0xe6635c01,
    0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e, 0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457,
    0x65b0d9c6, 0x12b7e950, 0x8bbeb8ea, 0xfcb9887c, 0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65,
    0x4db26158, 0x3ab551ce, 0xa3bc0074, 0xd4bb30e2, 0x4adfa541, 0x3dd895d7, 0xa4d1c46d, 0xd3d6f4fb,
    0x4369e96a, 0x346ed9fc, 0xad678846, 0xda60b8d0, 0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9,
    0x5005713c, 0x270241aa, 0xbe0b1010, 0xc90c2086, 0x5768b525, 0x206f85b3, 0xb966d409, 0xce61e49f,
    0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4, 0x59b33d17, 0x2eb40d81, 0xb7bd5c3b, 0xc0ba6cad,
    0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a, 0xead54739, 0x9dd277af, 0x04db2615, 0x73dc1683,
    0xe3630b12, 0x94643b84, 0x0d6d6a3e, 0x7a6a5aa8, 0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1,
    0xf00f9344, 0x8708a3d2, 0x1e01f268, 0x6906c2fe, 0xf762575d, 0x806567cb, 0x196c3671, 0x6e6b06e7,
    0xfed41b76, 0x89d32be0, 0x10da7a5a, 0x67dd4acc, 0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5,
    0xd6d6a3e8, 0xa1d1937e, 0x38d8c2c4, 0x4fdff252, 0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
    0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60, 0xdf60efc3, 0xa867df55, 0x316e8eef, 0x4669be79,
    0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236, 0xcc0c7795, 0xbb0b4703, 0x220216b9, 0x5505262f,
    0xc5ba3bbe, 0xb2bd0b28, 0x2bb45a92, 0x5cb36a04, 0xc2d7ffa7, 0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d,
    0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a, 0x9c0906a9, 0xeb0e363f, 0x72076785, 0x05005713,
    0x95bf4a82, 0xe2b87a14, 0x7bb12bae, 0x0cb61b38, 0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21,
    0x86d3d2d4, 0xf1d4e242, 0x68ddb3f8, 0x1fda836e, 0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777,
    0x88085ae6, 0xff0f6a70, 0x66063bca, 0x11010b5c, 0x8f659eff, 0xf862ae69, 0x616bffd3, 0x166ccf45,
    0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2, 0xa7672661, 0xd06016f7, 0x4969474d, 0x3e6e77db,
    0xaed16a4a, 0xd9d65adc, 0x40df0b66, 0x37d83bf0, 0xa9bcae53, 0xdebb9ec5, 0x47b2cf7f, 0x30b5ffe9,
    0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6, 0xbad03605, 0xcdd70693, 0x54de5729, 0x23d967bf,
    0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94, 0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d,
};

/* Slice-by-8: eight bytes per step through eight tables, derived once from
 * crc_table (pthread_once: the writer thread and a dump may race to it).
 * Timeline chunks are megabytes written on the writer thread while the
 * program runs; one byte per step cost ~2 ns a byte there. */
static uint32_t crc_table8[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_clmul; /* PCLMULQDQ folding for whole 16-byte blocks (crc_clmul.c) */

static void crc_init8(void)
{
    crc_clmul = cp_crc32_clmul_available();
    for (int i = 0; i < 256; i++) {
        uint32_t c = crc_table[i];
        crc_table8[0][i] = c;
        for (int k = 1; k < 8; k++) {
            c = crc_table[c & 0xFF] ^ (c >> 8);
            crc_table8[k][i] = c;
        }
    }
}

uint32_t cp_crc32(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    if (n >= 64) {
        pthread_once(&crc_once, crc_init8);
        if (crc_clmul) {
            size_t m = n & ~(size_t)15;
            crc = cp_crc32_clmul(crc, p, m);
            p += m;
            n -= m;
        }
        while (n >= 8) {
            /* bytes in file order, little-endian words: the same on any host */
            uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                 (uint32_t)p[3] << 24);
            uint32_t hi =
                (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
            crc = crc_table8[7][lo & 0xFF] ^ crc_table8[6][(lo >> 8) & 0xFF] ^
                  crc_table8[5][(lo >> 16) & 0xFF] ^ crc_table8[4][lo >> 24] ^
                  crc_table8[3][hi & 0xFF] ^ crc_table8[2][(hi >> 8) & 0xFF] ^
                  crc_table8[1][(hi >> 16) & 0xFF] ^ crc_table8[0][hi >> 24];
            p += 8;
            n -= 8;
        }
    }
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* ---- the file ------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *path, int errnum)
{
    if (err && errlen)
        snprintf(err, errlen, "cannot write profile '%s': %s", path, strerror(errnum));
}

/* Writes all n bytes, retrying EINTR and short writes. Returns 0 or an errno.
 * A write() that returns 0 for a non-empty request makes no progress and is
 * reported as ENOSPC rather than looping forever. */
static int write_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t r = write(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (r == 0)
            return ENOSPC;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void fail(cp_writer *w, int errnum, char *err, size_t errlen)
{
    w->failed = true;
    w->last_errno = errnum;
    w->errors++;
    set_err(err, errlen, w->path, errnum);
}

int cp_writer_open(cp_writer *w, const char *path, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->fd = -1;
    snprintf(w->path, sizeof w->path, "%s", path);
    int fd;
    do {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        fail(w, errno, err, errlen);
        return -1;
    }
    fd = cp_fd_move_high(fd);
    w->fd = fd;
    if (!cp_fd_identify(fd, &w->id)) {
        fail(w, errno, err, errlen);
        close(fd);
        w->fd = -1;
        return -1;
    }

    uint8_t hdr[CPYPROF_FILE_HEADER_SIZE];
    memcpy(hdr, CPYPROF_MAGIC, CPYPROF_MAGIC_LEN);
    for (int i = 0; i < 4; i++) {
        hdr[8 + i] = (uint8_t)(CPYPROF_FORMAT_VERSION >> (8 * i));
        hdr[12 + i] = 0; /* flags */
    }
    int e = write_all(fd, hdr, sizeof hdr);
    if (e) {
        fail(w, e, err, errlen);
        close(fd);
        w->fd = -1;
        return -1;
    }
    w->bytes = sizeof hdr;
    return 0;
}

int cp_writer_check_path(const char *path, char *err, size_t errlen)
{
    /* O_EXCL tells us whether we created the file, so a check does not leave
     * an empty profile behind when the program never gets to write one. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    bool created = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, path, errno);
        return -1;
    }
    close(fd);
    if (created)
        unlink(path);
    return 0;
}

bool cp_writer_fd_ok(const cp_writer *w)
{
    return w->fd >= 0 && cp_fd_same(w->fd, &w->id);
}

/* The program closed our descriptor (and maybe reopened its number for a
 * file of its own, which must not get our bytes): open the profile again by
 * path, if it is still the same file with exactly what we wrote. */
static int reopen(cp_writer *w)
{
    int fd;
    do {
        fd = open(w->path, O_WRONLY | O_APPEND | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != w->id.dev ||
        (uint64_t)st.st_ino != w->id.ino || (uint64_t)st.st_size != w->bytes) {
        close(fd);
        return ESTALE; /* replaced, or written by someone else */
    }
    w->fd = cp_fd_move_high(fd);
    return 0;
}

int cp_writer_chunk(cp_writer *w, uint32_t type, const void *payload, size_t n, char *err,
                    size_t errlen)
{
    if (w->route && !pthread_equal(pthread_self(), w->owner))
        return w->route(w, CP_WRITER_OP_CHUNK, type, payload, n, err, errlen);
    if (!w->failed && w->fd >= 0 && !cp_writer_fd_ok(w)) {
        int e = reopen(w);
        if (e) {
            w->fd = -1; /* not ours any more: never write to it or close it */
            fail(w, e, err, errlen);
            if (e == ESTALE && err && errlen)
                snprintf(err, errlen,
                         "cannot write profile '%s': the program closed its file descriptor "
                         "and the file was replaced or changed",
                         w->path);
            return -1;
        }
    }
    if (w->failed || w->fd < 0) {
        w->errors++;
        set_err(err, errlen, w->path, w->last_errno ? w->last_errno : EBADF);
        return -1;
    }
    if ((uint64_t)n > CPYPROF_MAX_CHUNK_SIZE) {
        /* Readers reject such a chunk; writing it would corrupt the file. */
        w->errors++;
        if (err && errlen)
            snprintf(err, errlen, "cannot write profile '%s': chunk of %zu bytes is too large",
                     w->path, n);
        return -1;
    }
    uint32_t crc = cp_crc32(0, payload, n);
    uint8_t hdr[CPYPROF_CHUNK_HEADER_SIZE];
    for (int i = 0; i < 4; i++) {
        hdr[i] = (uint8_t)(type >> (8 * i));
        hdr[4 + i] = (uint8_t)(crc >> (8 * i));
    }
    for (int i = 0; i < 8; i++)
        hdr[8 + i] = (uint8_t)((uint64_t)n >> (8 * i));
    int e = write_all(w->fd, hdr, sizeof hdr);
    if (!e)
        e = write_all(w->fd, payload, n);
    if (e) {
        /* Part of the chunk may be on disk: readers see a chunk cut short and
         * keep everything before it. */
        fail(w, e, err, errlen);
        return -1;
    }
    w->bytes += sizeof hdr + n;
    w->chunks++;
    return 0;
}

int cp_writer_close(cp_writer *w, char *err, size_t errlen)
{
    if (w->fd < 0)
        return 0;
    if (w->route && !pthread_equal(pthread_self(), w->owner))
        return w->route(w, CP_WRITER_OP_CLOSE, 0, NULL, 0, err, errlen);
    /* No retry on EINTR: Linux releases the descriptor even then, and a retry
     * could close a descriptor another thread just opened. */
    if (!cp_writer_fd_ok(w)) { /* the program's now, or closed */
        w->fd = -1;
        return 0;
    }
    int r = close(w->fd);
    w->fd = -1;
    if (r < 0 && errno != EINTR) {
        fail(w, errno, err, errlen);
        return -1;
    }
    return 0;
}
