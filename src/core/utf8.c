/*
 * utf8.c - UTF-8 validation and repair (see utf8.h). Follows the well-formed
 * byte sequences of Unicode's table 3-7: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF.
 */
#include "core/utf8.h"

#include <string.h>

size_t an_utf8_seq_len(const unsigned char *s, size_t n)
{
    if (n == 0)
        return 0;
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* the range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* a continuation byte, C0/C1, F5..FF */
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

int an_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t l = an_utf8_seq_len(p + i, n - i);
        if (!l)
            return 0;
        i += l;
    }
    return 1;
}

size_t an_utf8_cut(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    if (n < max)
        return n;
    /* step back over continuation bytes to the start of the last character */
    size_t i = n;
    while (i > 0 && n - i < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return n;
    size_t start = i - 1;
    size_t l = an_utf8_seq_len((const unsigned char *)s + start, n - start);
    if (l && start + l == n)
        return n; /* the last character is whole */
    if (((unsigned char)s[start] & 0x80) == 0)
        return n; /* plain ASCII before stray continuation bytes: keep as is */
    return start;
}

static const char REPL[] = "\xEF\xBF\xBD"; /* U+FFFD */

size_t an_utf8_copy(char *dst, size_t cap, const char *src, size_t n)
{
    const unsigned char *p = (const unsigned char *)src;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = an_utf8_seq_len(p + i, n - i);
        const char *piece = l ? src + i : REPL;
        size_t pl = l ? l : 3;
        if (o + pl + 1 > cap)
            break;
        memmove(dst + o, piece, pl);
        o += pl;
        i += l ? l : 1;
    }
    dst[o] = '\0';
    return o;
}

size_t an_utf8_fix(char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);
    if (an_utf8_valid(s, n)) {
        s[n] = '\0';
        return n;
    }
    char tmp[4096];
    if (n + 1 <= sizeof tmp) {
        memcpy(tmp, s, n);
        return an_utf8_copy(s, cap, tmp, n);
    }
    /* a long string: drop invalid bytes in place instead of widening them */
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = an_utf8_seq_len(p + i, n - i);
        if (l) {
            memmove(s + o, s + i, l);
            o += l;
            i += l;
        } else {
            s[o++] = '?';
            i++;
        }
    }
    s[o] = '\0';
    return o;
}
