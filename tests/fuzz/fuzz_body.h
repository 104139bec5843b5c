/*
 * fuzz_body.h — the profile-reader fuzz harness, shared by the libFuzzer
 * target (fuzz_reader.c) and the plain replay tool (replay.c).
 */
#ifndef CPYPROF_TESTS_FUZZ_BODY_H
#define CPYPROF_TESTS_FUZZ_BODY_H

#include <stddef.h>
#include <stdint.h>

/** Loads `data` as a profile (as given, and again with every complete
 *  chunk's CRC recomputed so mutations get past the CRC check) and, for
 *  each copy that loads, runs every consumer of a loaded profile. Output
 *  goes to /dev/null. Aborts on a broken invariant; returns 0. */
int cp_fuzz_one(const uint8_t *data, size_t size);

#endif
