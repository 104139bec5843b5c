/*
 * crc_clmul.h — CRC-32 by carry-less multiplication (x86-64 PCLMULQDQ),
 * used by cp_crc32 (writer.c) for long payloads. See crc_clmul.c.
 */
#ifndef CPYPROF_CORE_CRC_CLMUL_H
#define CPYPROF_CORE_CRC_CLMUL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** True if this CPU (and build) can run cp_crc32_clmul. Not signal-safe
 *  the first time (it reads the CPU features); call it once, up front. */
bool cp_crc32_clmul_available(void);

/** Advances the CRC register `state` (the inverted form: ~crc) over n
 *  bytes, n >= 64 and a multiple of 16; returns the new register. Only if
 *  cp_crc32_clmul_available(). */
uint32_t cp_crc32_clmul(uint32_t state, const uint8_t *p, size_t n);

#endif
