/*
 * numfmt.c - the shortest round-trip printer of numfmt.h.
 *
 * The fast path is Clinger's: for the smallest k in 0..22 with
 * n = round(|v| * 10^k) below 2^53, n and 10^k are exact doubles, so
 * n / 10^k is one correctly rounded division: when it gives v back, the
 * decimal n * 10^-k is what strtod reads as v, and the smallest such k gives
 * the fewest digits. Its digits go out by integer code. Between 1e-7 and
 * 2^53 that search is exhaustive for 15 digits or fewer, so what it misses
 * there needs 16 or 17: exact() finds those with 128-bit integers (indicator
 * values mostly). Anything else (beyond 2^53, below 1e-7) takes printf's %.15g,
 * %.16g, then %.17g, the first that strtod reads back equal (from %.1g up
 * for a subnormal, which has fewer bits than 15 digits need). Pure functions,
 * no state; any thread.
 */
#include "core/numfmt.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double P10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                             1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
#define K_MAX 22 /* 10^22 is the largest power of ten a double holds exactly */
#define TWO53 9007199254740992.0

/* n's decimal digits into d (no NUL), trailing zeros dropped; returns how
 * many digits and sets *tz to how many zeros were dropped. n > 0. */
static int digits_of(uint64_t n, char d[20], int *tz)
{
    int z = 0;
    while (n % 10 == 0) {
        n /= 10;
        z++;
    }
    char t[20];
    int len = 0;
    while (n) {
        t[len++] = (char)('0' + n % 10);
        n /= 10;
    }
    for (int i = 0; i < len; i++)
        d[i] = t[len - 1 - i];
    *tz = z;
    return len;
}

/* The significant digits d[0..nd) (no trailing zero) times 10^e, where e is
 * the exponent of the first digit, as %g writes them: scientific when sci. */
static size_t emit(char *out, int neg, const char *d, int nd, int e, int sci)
{
    char *p = out;
    if (neg)
        *p++ = '-';
    if (sci) {
        *p++ = d[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, d + 1, (size_t)nd - 1);
            p += nd - 1;
        }
        *p++ = 'e';
        *p++ = e < 0 ? '-' : '+';
        unsigned x = (unsigned)(e < 0 ? -e : e);
        if (x >= 100)
            *p++ = (char)('0' + x / 100);
        *p++ = (char)('0' + x / 10 % 10);
        *p++ = (char)('0' + x % 10);
    } else if (e < 0) {
        *p++ = '0';
        *p++ = '.';
        memset(p, '0', (size_t)(-e - 1));
        p += -e - 1;
        memcpy(p, d, (size_t)nd);
        p += nd;
    } else if (nd <= e + 1) {
        memcpy(p, d, (size_t)nd);
        p += nd;
        memset(p, '0', (size_t)(e + 1 - nd));
        p += e + 1 - nd;
    } else {
        memcpy(p, d, (size_t)e + 1);
        p += e + 1;
        *p++ = '.';
        memcpy(p, d + e + 1, (size_t)(nd - e - 1));
        p += nd - e - 1;
    }
    *p = '\0';
    return (size_t)(p - out);
}

/* Clinger's path; 0 when no k fits. */
static size_t fast(double v, char *buf)
{
    double a = fabs(v);
    if (!(a < TWO53))
        return 0;
    for (int k = 0; k <= K_MAX; k++) {
        double s = a * P10[k];
        if (s >= TWO53)
            return 0;
        if (s < 0.5)
            continue; /* n would be 0, and v is not */
        uint64_t n = (uint64_t)llround(s);
        if ((double)n / P10[k] != a)
            continue;
        char d[20];
        int tz, nd = digits_of(n, d, &tz);
        int e = nd + tz - 1 - k;
        /* %.15g's rule at the precision %g needs for these digits (15, or 16
         * when there are 16), except the old exchange-price domain, always
         * positional */
        int prec = nd > 15 ? nd : 15;
        int sci = e >= prec || (e < -4 && !(k <= 8 && a < 9e7));
        return emit(buf, v < 0, d, nd, e, sci);
    }
    return 0;
}

#ifdef __SIZEOF_INT128__
__extension__ typedef unsigned __int128 u128;

static const uint64_t P5[] = {1u,
                              5u,
                              25u,
                              125u,
                              625u,
                              3125u,
                              15625u,
                              78125u,
                              390625u,
                              1953125u,
                              9765625u,
                              48828125u,
                              244140625u,
                              1220703125u,
                              6103515625u,
                              30517578125u,
                              152587890625u,
                              762939453125u,
                              3814697265625u,
                              19073486328125u,
                              95367431640625u,
                              476837158203125u,
                              2384185791015625u,
                              11920928955078125u};

/* 1 when the decimal N * 10^-q reads back as the double that is X in units
 * of 2^-t * 10^-q, G the gap to the next double up in those units (half of
 * it below at a power of two: lower_half), ties to the even mantissa. */
static int reads_back(u128 N, int t, u128 X, u128 G, int lower_half, int even)
{
    u128 y = N << t;
    u128 d = y >= X ? (y - X) * 2 : (X - y) * (lower_half ? 4 : 2);
    return d < G || (d == G && even);
}

/* Exact 16- or 17-digit forms for 1e-7 <= |v| < 2^53, where Clinger's path
 * has ruled out 15 digits or fewer: |v| = M * 2^E is X = M * 5^q * 2^(E+q)
 * in units of 2^-t * 10^-q (q puts 16 digits before the point), all in 128
 * bits. The 16-digit neighbours of v are tried (the nearer first when both
 * read back, as %.16g would pick), else the nearest 17-digit form, which
 * always reads back. 0 outside that range. */
static size_t exact(double v, char *buf)
{
    double a = fabs(v);
    if (!(a >= 1e-7 && a < TWO53))
        return 0;
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    uint64_t frac = bits & ((1ull << 52) - 1), M = frac | 1ull << 52;
    int be = (int)(bits >> 52), E = be - 1075, lower_half = frac == 0 && be > 1,
        even = (M & 1) == 0;
    int e10 = (int)floor(log10(a));
    for (int tries = 0; tries < 3; tries++) {
        int q = 15 - e10;
        if (q < 0 || q > 22)
            return 0;
        int sh = E + q, t = sh < 0 ? -sh : 0, up = sh > 0 ? sh : 0;
        u128 X = ((u128)M * P5[q]) << up, G = (u128)P5[q] << up;
        u128 lo = X >> t, rem = X - (lo << t), half = (u128)1 << t >> 1;
        if (lo < (u128)1000000000000000u) {
            e10--;
            continue;
        }
        if (lo >= (u128)10000000000000000u) {
            e10++;
            continue;
        }
        int okl = reads_back(lo, t, X, G, lower_half, even),
            okh = rem && reads_back(lo + 1, t, X, G, lower_half, even);
        u128 n = lo;
        int k = q;
        if (okl && okh)
            n = rem > half || (rem == half && (lo & 1)) ? lo + 1 : lo;
        else if (okh)
            n = lo + 1;
        else if (!okl) { /* 17 digits: the nearest, half to even */
            u128 X17 = X * 10, n17 = X17 >> t, r17 = X17 - (n17 << t);
            n = r17 > half || (r17 == half && (n17 & 1)) ? n17 + 1 : n17;
            k = q + 1;
        }
        char d[20];
        int tz, nd = digits_of((uint64_t)n, d, &tz);
        int e = nd + tz - 1 - k, prec = nd > 15 ? nd : 15;
        return emit(buf, v < 0, d, nd, e, e >= prec || e < -4);
    }
    return 0;
}
#else
static size_t exact(double v, char *buf)
{
    (void)v;
    (void)buf;
    return 0; /* no 128-bit integers: the printf path below */
}
#endif

size_t an_num_format(double v, char *buf)
{
    if (!isfinite(v)) {
        buf[0] = '\0';
        return 0;
    }
    if (v == 0) {
        memcpy(buf, "0", 2);
        return 1;
    }
    size_t n = fast(v, buf);
    if (!n)
        n = exact(v, buf);
    if (n)
        return n;
    /* 15 digits always round-trip a normal double; a subnormal has fewer
     * bits, so its shortest form may have fewer digits */
    int len = 0;
    for (int prec = fabs(v) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        len = snprintf(buf, AN_NUM_MAX, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return (size_t)len;
}

size_t an_int_format(int64_t v, char *buf)
{
    /* the magnitude as unsigned: -INT64_MIN does not fit an int64_t */
    uint64_t n = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char t[20];
    int len = 0;
    do {
        t[len++] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    size_t k = 0;
    if (v < 0)
        buf[k++] = '-';
    while (len)
        buf[k++] = t[--len];
    buf[k] = 0;
    return k;
}
