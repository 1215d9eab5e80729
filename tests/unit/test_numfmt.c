/*
 * test_numfmt.c - core/numfmt.c, the shortest round-trip printer, checked
 * against strtod: every output reads back as the same double, and no form
 * with one significant digit fewer does (%.{D-1}g, the nearest such decimal).
 * Values: random bit patterns, every power of two and its neighbours, every
 * price and volume in the real candle files, decimals with 0..8 places, and
 * indicator-like values with 17 digits. Each output is also compared with
 * the printer the API used before (its copy below): the same text unless
 * that one was not the shortest. About 0.9 million values by default,
 * 0.5 million under ASan, 10 million with AN_CHECK_ALL=1 (all five files).
 * And the integer printer against printf's.
 */
#include "core/numfmt.h"

#include <float.h>
#include <inttypes.h>
#include <stdint.h>

#include "test.h"

#if defined(__SANITIZE_ADDRESS__)
#define SCALE 1
#else
#define SCALE 3
#endif

static long scale(void)
{
    const char *all = getenv("AN_CHECK_ALL");
    return all && strcmp(all, "1") == 0 ? 40 : SCALE;
}

static uint64_t rng = 0x9E3779B97F4A7C15u;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The API's printer before numfmt.c (reply.c's an_api_put_double). */
static void old_format(double v, char *buf)
{
    double a = fabs(v);
    if (a < 9e7) {
        int64_t m = llround(a * 1e8);
        if ((double)m / 1e8 == a) {
            char *p = buf;
            if (v < 0 && m)
                *p++ = '-';
            p += sprintf(p, "%" PRId64, m / 100000000);
            int64_t f = m % 100000000;
            if (f) {
                char frac[9];
                for (int i = 7; i >= 0; i--, f /= 10)
                    frac[i] = (char)('0' + f % 10);
                int n = 8;
                while (frac[n - 1] == '0')
                    n--;
                *p++ = '.';
                memcpy(p, frac, (size_t)n);
                p += n;
            }
            *p = '\0';
            return;
        }
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, 40, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
}

/* Significant digits of a %g-style text: no sign, exponent, point, leading
 * or trailing zeros ("1200" has 2, "0.0012" has 2). */
static int sig_digits(const char *s)
{
    char d[64];
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && (n || *s != '0'))
            d[n++] = *s;
    while (n > 0 && d[n - 1] == '0')
        n--;
    return n;
}

static long n_checked, n_old_longer;

static void check(double v)
{
    char out[AN_NUM_MAX + 8], old[48], shorter[400];
    memset(out, 'x', sizeof out);
    size_t len = an_num_format(v, out);
    if (!isfinite(v)) {
        AN_CHECK_INT(len, 0);
        return;
    }
    n_checked++;
    if (len != strlen(out) || len >= AN_NUM_MAX) {
        AN_CHECK_MSG(0, "%.17g: length %zu for \"%s\"", v, len, out);
        return;
    }
    char *end;
    double back = strtod(out, &end);
    if (back != v || *end) {
        AN_CHECK_MSG(0, "%.17g printed \"%s\" reads back as %.17g", v, out, back);
        return;
    }
    int d = sig_digits(out);
    if (d > 1) {
        snprintf(shorter, sizeof shorter, "%.*g", d - 1, v);
        if (strtod(shorter, NULL) == v) {
            AN_CHECK_MSG(0, "%.17g printed \"%s\", but \"%s\" is shorter", v, out, shorter);
            return;
        }
    }
    old_format(v, old);
    if (strcmp(old, out) != 0) {
        if (sig_digits(old) > d) {
            if (n_old_longer++ < 3 || getenv("AN_NUMFMT_VERBOSE"))
                fprintf(stderr, "  shorter than before: \"%s\" (was \"%s\")\n", out, old);
        } else
            AN_CHECK_MSG(0, "%.17g printed \"%s\", the old printer \"%s\"", v, out, old);
    }
}

static void test_edges(void)
{
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-1, "-1"},
        {0.1, "0.1"},
        {-2.5, "-2.5"},
        {1200, "1200"},
        {56738.76, "56738.76"},
        {0.00000001, "0.00000001"}, /* the exchange-price domain: positional */
        {0.00001, "0.00001"},
        {1e-9, "1e-09"}, /* outside it: %g's form */
        {0.000012345678901, "1.2345678901e-05"},
        {1e15, "1e+15"},
        {1e14, "100000000000000"},
        {123456789.5, "123456789.5"},
        /* the old printer wrote 16 digits here: below 9e7 two 8-decimal
         * forms can read back as the same double, and it took m = llround */
        {85577551.18, "85577551.18"},
        {-84517095.4, "-84517095.4"},
        {9007199254740993.0, "9007199254740992"},
        {0.30000000000000004, "0.30000000000000004"},
        {1e100, "1e+100"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "5e-324"}, /* subnormals have fewer digits */
        {-4.4501477170144e-309, "-4.4501477170144e-309"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {50.123456789012345, "50.123456789012344"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[AN_NUM_MAX];
        an_num_format(cases[i].v, out);
        AN_CHECK_STR(out, cases[i].s);
        check(cases[i].v);
    }
    char out[AN_NUM_MAX] = "x";
    AN_CHECK_INT(an_num_format(NAN, out), 0);
    AN_CHECK_STR(out, "");
    AN_CHECK_INT(an_num_format(INFINITY, out), 0);
    AN_CHECK_INT(an_num_format(-INFINITY, out), 0);
    /* every power of two, and the doubles next to it (asymmetric intervals) */
    for (int e = -1074; e <= 1023; e++) {
        double p = ldexp(1, e);
        check(p);
        check(-p);
        check(nextafter(p, 0));
        check(nextafter(p, INFINITY));
    }
}

static void test_random_bits(void)
{
    long n = 100000 * scale();
    for (long i = 0; i < n; i++) {
        uint64_t b = next();
        double v;
        memcpy(&v, &b, sizeof v);
        check(v);
    }
}

/* m / 10^k for k in 0..8 and m of 1 to 16 digits: prices, volumes, sizes. */
static void test_decimals(void)
{
    static const double p10[] = {1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    long n = 50000 * scale();
    for (long i = 0; i < n; i++) {
        int k = (int)(next() % 9), digits = 1 + (int)(next() % 16);
        uint64_t lim = 1;
        for (int j = 0; j < digits; j++)
            lim *= 10;
        double v = (double)(next() % lim) / p10[k];
        check(next() & 1 ? v : -v);
    }
}

/* What indicators produce: sums and quotients with 16-17 digits. */
static void test_computed(void)
{
    long n = 20000 * scale();
    for (long i = 0; i < n; i++) {
        double x = (double)(next() % 10000000) / 100.0, y = (double)(next() % 1000 + 1) / 7.0;
        check(x / y);
        check(x * 0.1 + y);
        check(100.0 - 100.0 / (1.0 + x / (y * 3.0)));
    }
}

/* Every number in the real candle files (prices, volumes, open times). */
static void test_real_candles(void)
{
    const char *dir = getenv("AN_DATA_DIR");
    static const char *files[] = {"BTC_USDT-1m.json", "ETH_USDT-1m.json", "BTC_USDT-5m.json",
                                  "BTC_USDT-1h.json", "ETH_USDT-1h.json"};
    if (!dir) {
        fprintf(stderr, "  AN_DATA_DIR not set: the real candles are not checked\n");
        AN_CHECK(0);
        return;
    }
    long before = n_checked;
    int nfiles = scale() > SCALE ? 5 : 1;
    for (int f = 0; f < nfiles; f++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        FILE *fp = fopen(path, "rb");
        AN_CHECK_MSG(fp != NULL, "%s", path);
        if (!fp)
            continue;
        fseek(fp, 0, SEEK_END);
        long size = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        char *text = malloc((size_t)size + 1);
        size_t got = fread(text, 1, (size_t)size, fp);
        text[got] = '\0';
        fclose(fp);
        for (char *p = text; *p;) {
            if ((*p >= '0' && *p <= '9') || *p == '-') {
                char *end;
                double v = strtod(p, &end);
                check(v);
                p = end > p ? end : p + 1;
            } else {
                p++;
            }
        }
        free(text);
    }
    AN_CHECK(n_checked - before > 100000);
}

/* an_int_format against printf's %" PRId64 ": the ends, every power of ten
 * and its neighbours, and random values of every length. */
static void int_case(int64_t v)
{
    char want[32], got[32];
    int wn = snprintf(want, sizeof want, "%" PRId64, v);
    size_t gn = an_int_format(v, got);
    AN_CHECK_MSG(gn == (size_t)wn && strcmp(got, want) == 0, "%s printed \"%s\"", want, got);
}

static void test_integers(void)
{
    int_case(0);
    int_case(INT64_MAX);
    int_case(INT64_MIN);
    int_case(INT64_MIN + 1);
    for (int64_t p = 1; p <= INT64_MAX / 10; p *= 10)
        for (int64_t d = -1; d <= 1; d++) {
            int_case(p + d);
            int_case(-(p + d));
            int_case(p * 10 + d);
        }
    for (int i = 0; i < 100000; i++) {
        uint64_t r = next();
        int64_t x = (int64_t)(r >> (r % 64)); /* lengths 1..19 */
        int_case(i % 2 && x != INT64_MIN ? -x : x);
    }
}

int main(void)
{
    AN_RUN(test_integers);
    AN_RUN(test_edges);
    AN_RUN(test_random_bits);
    AN_RUN(test_decimals);
    AN_RUN(test_computed);
    AN_RUN(test_real_candles);
    fprintf(stderr, "  %ld values checked; the old printer was longer on %ld\n", n_checked,
            n_old_longer);
    return AN_TEST_DONE();
}
