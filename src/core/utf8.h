/*
 * utf8.h - making outside bytes safe to store and send as text. Messages
 * quote user input (a symbol, a file line, a database error) and cut it by
 * bytes; PostgreSQL refuses text that is not valid UTF-8 and JSON must be
 * valid UTF-8, so every text that leaves the process passes through here.
 * Pure functions, thread-safe.
 */
#ifndef AN_CORE_UTF8_H
#define AN_CORE_UTF8_H

#include <stddef.h>

/* Length of the first valid UTF-8 sequence at s (1-4), or 0 when the bytes
 * at s (n of them available) are not a valid, complete sequence (overlong
 * forms, surrogates and code points above U+10FFFF are invalid). */
size_t an_utf8_seq_len(const unsigned char *s, size_t n);

/* 1 when s[0..n) is valid UTF-8. */
int an_utf8_valid(const char *s, size_t n);

/* The largest length <= max at which s (NUL-terminated) can be cut without
 * splitting a multi-byte character. */
size_t an_utf8_cut(const char *s, size_t max);

/* Copies src[0..n) into dst (cap bytes, cap >= 1), each invalid byte
 * replaced by U+FFFD, cut on a character boundary when dst is too small;
 * always NUL-terminated. dst and src may be the same buffer only when
 * src is valid (use an_utf8_fix for in-place repair). Returns the length. */
size_t an_utf8_copy(char *dst, size_t cap, const char *src, size_t n);

/* Repairs the NUL-terminated string s (a buffer of cap bytes) in place:
 * invalid bytes become U+FFFD, the tail cut on a character boundary when
 * the replacements do not fit. Returns the new length. */
size_t an_utf8_fix(char *s, size_t cap);

#endif
