/*
 * test_utf8.c - core/utf8.c: the well-formed sequences of Unicode's table
 * 3-7 (overlongs, surrogates, > U+10FFFF refused), validation compared with
 * glibc's own UTF-8 decoder (mbrtowc in C.UTF-8) over a million random byte
 * strings, cuts on character boundaries, repair, and an_err messages that
 * stay valid UTF-8 when they quote input cut mid-character.
 */
#include "core/utf8.h"

#include <locale.h>
#include <stdint.h>
#include <wchar.h>

#include "core/error.h"
#include "test.h"

static void test_sequences(void)
{
    static const struct {
        const char *s;
        size_t len;
    } cases[] = {
        {"A", 1},
        {"\xC3\xA9", 2},         /* é */
        {"\xE2\x82\xAC", 3},     /* € */
        {"\xF0\x9F\x98\x80", 4}, /* 😀 */
        {"\xF4\x8F\xBF\xBF", 4}, /* U+10FFFF */
        {"\xC0\xAF", 0},         /* overlong / */
        {"\xC1\xBF", 0},
        {"\xE0\x80\xAF", 0}, /* overlong */
        {"\xE0\x9F\xBF", 0},
        {"\xED\xA0\x80", 0}, /* U+D800 */
        {"\xED\xBF\xBF", 0}, /* U+DFFF */
        {"\xF0\x8F\xBF\xBF", 0},
        {"\xF4\x90\x80\x80", 0}, /* U+110000 */
        {"\xF5\x80\x80\x80", 0},
        {"\xFF", 0},
        {"\x80", 0},
        {"\xE2\x82", 0}, /* cut */
        {"\xC3\x28", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].s);
        AN_CHECK_MSG(an_utf8_seq_len((const unsigned char *)cases[i].s, n) == cases[i].len,
                     "case %zu", i);
    }
}

/* glibc's decoder as the oracle */
static int libc_valid(const char *s, size_t n)
{
    mbstate_t st;
    memset(&st, 0, sizeof st);
    size_t i = 0;
    while (i < n) {
        wchar_t wc;
        size_t r = mbrtowc(&wc, s + i, n - i, &st);
        if (r == (size_t)-1 || r == (size_t)-2)
            return 0;
        if (r == 0) /* an embedded NUL: one byte */
            r = 1;
        if ((wc >= 0xD800 && wc <= 0xDFFF) || (uint32_t)wc > 0x10FFFF) /* glibc takes both */
            return 0;
        i += r;
    }
    return 1;
}

static uint64_t rnd = 88172645463325252ULL;
static unsigned next(void)
{
    rnd ^= rnd << 13;
    rnd ^= rnd >> 7;
    rnd ^= rnd << 17;
    return (unsigned)rnd;
}

static void test_against_libc(void)
{
    if (!setlocale(LC_CTYPE, "C.UTF-8")) {
        fprintf(stderr, "  C.UTF-8 locale missing\n");
        AN_CHECK(0);
        return;
    }
    int disagree = 0, valid = 0;
    char buf[12];
    for (int k = 0; k < 1000000; k++) {
        size_t n = 1 + next() % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            unsigned r = next();
            /* mostly plausible lead and continuation bytes */
            buf[i] = (char)(r % 4 == 0   ? 0x80 | (r >> 8) % 64
                            : r % 4 == 1 ? 0xC0 | (r >> 8) % 64
                                         : r >> 8);
        }
        int a = an_utf8_valid(buf, n), b = libc_valid(buf, n);
        valid += a;
        if (a != b && disagree++ < 5) {
            fprintf(stderr, "  disagree (ours %d, libc %d):", a, b);
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, " %02x", (unsigned char)buf[i]);
            fputc('\n', stderr);
        }
    }
    setlocale(LC_CTYPE, "C");
    AN_CHECK_INT(disagree, 0);
    AN_CHECK(valid > 1000); /* the generator reaches valid strings too */
}

static void test_cut_and_copy(void)
{
    const char *s = "ab\xE2\x82\xAC"; /* ab€ */
    AN_CHECK_INT(an_utf8_cut(s, 5), 5);
    AN_CHECK_INT(an_utf8_cut(s, 4), 2);
    AN_CHECK_INT(an_utf8_cut(s, 3), 2);
    AN_CHECK_INT(an_utf8_cut(s, 2), 2);
    AN_CHECK_INT(an_utf8_cut("\xE2\x82\xAC", 2), 0);
    AN_CHECK_INT(an_utf8_cut("abc", 10), 3);
    char out[32];
    AN_CHECK_INT(an_utf8_copy(out, sizeof out, "BTC/\xC3\x28\xFF", 7), 4 + 3 + 1 + 3);
    AN_CHECK_STR(out, "BTC/\xEF\xBF\xBD(\xEF\xBF\xBD");
    /* too small: cut before a replacement that does not fit */
    AN_CHECK_INT(an_utf8_copy(out, 6, "ab\xFF\xFF", 4), 5);
    AN_CHECK_STR(out, "ab\xEF\xBF\xBD");
    char fix[8] = "ab\xE2\x82"; /* cut mid-character */
    AN_CHECK_INT(an_utf8_fix(fix, sizeof fix), 5);
    AN_CHECK_STR(fix, "ab\xEF\xBF\xBD");
    AN_CHECK(an_utf8_valid(fix, strlen(fix)));
}

static void test_error_messages_stay_valid(void)
{
    /* a message that quotes input with %.Ns cuts by bytes */
    an_err e = {0};
    an_err_set(&e, AN_ERR_INVALID, "unknown symbol '%.5s'", "BTC/\xC3\xA9\xC3\xA9");
    AN_CHECK(an_utf8_valid(e.msg, strlen(e.msg)));
    AN_CHECK(strstr(e.msg, "BTC/") != NULL);
    an_err_set(&e, AN_ERR_INVALID, "bad bytes '%s'", "\xFF\xFE\xC0\xAF");
    AN_CHECK(an_utf8_valid(e.msg, strlen(e.msg)));
    /* filling the whole buffer with multi-byte characters: the tail is cut whole */
    char big[2000];
    for (size_t i = 0; i + 3 < sizeof big; i += 3)
        memcpy(big + i, "\xE2\x82\xAC", 3);
    big[sizeof big - 2] = '\0';
    an_err_set(&e, AN_ERR_INVALID, "x%s", big);
    AN_CHECK(an_utf8_valid(e.msg, strlen(e.msg)));
    an_err_prefix(&e, "context \xE2\x82");
    AN_CHECK(an_utf8_valid(e.msg, strlen(e.msg)));
}

int main(void)
{
    AN_RUN(test_sequences);
    AN_RUN(test_against_libc);
    AN_RUN(test_cut_and_copy);
    AN_RUN(test_error_messages_stay_valid);
    return AN_TEST_DONE();
}
