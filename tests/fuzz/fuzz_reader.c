/*
 * fuzz_reader.c — libFuzzer entry point for the profile reader and its
 * consumers. Built only with -DCPYPROF_FUZZ=ON and clang; see run.sh.
 */
#include "fuzz_body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return cp_fuzz_one(data, size);
}
