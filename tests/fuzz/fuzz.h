/*
 * fuzz.h - helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c):
 * the input as a NUL-terminated copy, and a cursor that takes a selector
 * byte and NUL/newline-separated strings off the front. Single-threaded, as
 * libFuzzer calls each target.
 */
#ifndef AN_FUZZ_H
#define AN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A malloc'd NUL-terminated copy of data (the caller frees). */
static inline char *fz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
