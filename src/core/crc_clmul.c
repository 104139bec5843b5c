/*
 * crc_clmul.c — CRC-32 (the reflected IEEE polynomial of zlib and of the
 * profile format) by carry-less multiplication, for long payloads on x86-64
 * CPUs with PCLMULQDQ and SSE4.1.
 *
 * Why: the timeline writer checksums every TIMELINE chunk it writes (16
 * bytes per event); slice-by-8 costs about 3.5 instructions a byte, ~56 per
 * event, a quarter of the writer's work per event. Folding 64 bytes per
 * step with carry-less multiplies costs a fraction of an instruction a
 * byte.
 *
 * The method is the folding and Barrett reduction described by Gopal et
 * al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
 * Instruction" (Intel, 2009), in the bit-reflected domain. The constants
 * are powers of x modulo the CRC polynomial P (0x104C11DB7), bit-reflected
 * and shifted left by one as the reflected domain requires:
 *   K1 = x^(4*128+32) mod P, K2 = x^(4*128-32) mod P  (fold 512 bits ahead)
 *   K3 = x^(128+32) mod P,   K4 = x^(128-32) mod P    (fold 128 bits ahead)
 *   K5 = x^64 mod P                                    (128 -> 64 bits)
 *   P' = P reflected (33 bits), MU = floor(x^64 / P) reflected (Barrett).
 * tests/unit/test_format.c checks cp_crc32 (which calls this) against the
 * bit-at-a-time definition at every length and alignment around its
 * thresholds.
 */
#include "core/crc_clmul.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>

#define CLMUL_TARGET __attribute__((target("pclmul,sse4.1")))

static const uint64_t K1K2[2] __attribute__((aligned(16))) = {0x0154442bd4ull, 0x01c6e41596ull};
static const uint64_t K3K4[2] __attribute__((aligned(16))) = {0x01751997d0ull, 0x00ccaa009eull};
static const uint64_t K5K0[2] __attribute__((aligned(16))) = {0x0163cd6124ull, 0};
static const uint64_t PMU[2] __attribute__((aligned(16))) = {0x01db710641ull, 0x01f7011641ull};

bool cp_crc32_clmul_available(void)
{
    __builtin_cpu_init(); /* may run before libgcc's constructor (LD_PRELOAD) */
    return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

/* a = a.lo x k.lo  xor  a.hi x k.hi  xor  next: one 128-bit fold. */
CLMUL_TARGET static inline __m128i fold(__m128i a, __m128i k, __m128i next)
{
    __m128i lo = _mm_clmulepi64_si128(a, k, 0x00);
    __m128i hi = _mm_clmulepi64_si128(a, k, 0x11);
    return _mm_xor_si128(_mm_xor_si128(lo, hi), next);
}

CLMUL_TARGET uint32_t cp_crc32_clmul(uint32_t state, const uint8_t *p, size_t n)
{
    /* Four 128-bit lanes, the running state xored into the first. */
    __m128i x1 = _mm_loadu_si128((const __m128i *)(p + 0));
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)state));
    p += 64;
    n -= 64;
    __m128i k = _mm_load_si128((const __m128i *)K1K2);
    for (; n >= 64; p += 64, n -= 64) {
        x1 = fold(x1, k, _mm_loadu_si128((const __m128i *)(p + 0)));
        x2 = fold(x2, k, _mm_loadu_si128((const __m128i *)(p + 16)));
        x3 = fold(x3, k, _mm_loadu_si128((const __m128i *)(p + 32)));
        x4 = fold(x4, k, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    /* The four lanes into one, then the remaining 16-byte blocks. */
    k = _mm_load_si128((const __m128i *)K3K4);
    x1 = fold(x1, k, x2);
    x1 = fold(x1, k, x3);
    x1 = fold(x1, k, x4);
    for (; n >= 16; p += 16, n -= 16)
        x1 = fold(x1, k, _mm_loadu_si128((const __m128i *)p));
    /* 128 -> 96 bits: the low half times K4 into the high half. */
    __m128i mask32 = _mm_setr_epi32(-1, 0, -1, 0);
    __m128i t = _mm_clmulepi64_si128(x1, k, 0x10);
    x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
    /* 96 -> 64 bits: the low 32 bits times K5. */
    k = _mm_loadl_epi64((const __m128i *)K5K0);
    t = _mm_srli_si128(x1, 4);
    x1 = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k, 0x00);
    x1 = _mm_xor_si128(x1, t);
    /* Barrett reduction to 32 bits. */
    k = _mm_load_si128((const __m128i *)PMU);
    t = _mm_and_si128(x1, mask32);
    t = _mm_clmulepi64_si128(t, k, 0x10);
    t = _mm_and_si128(t, mask32);
    t = _mm_clmulepi64_si128(t, k, 0x00);
    x1 = _mm_xor_si128(x1, t);
    return (uint32_t)_mm_extract_epi32(x1, 1);
}

#else

bool cp_crc32_clmul_available(void)
{
    return false;
}

uint32_t cp_crc32_clmul(uint32_t state, const uint8_t *p, size_t n)
{
    (void)p;
    (void)n;
    return state; /* never called: not available */
}

#endif
