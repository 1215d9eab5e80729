/*
 * numfmt.c - the shortest round-trip printer of numfmt.h.
 *
 * The fast path is Clinger's: for the smallest k in 0..22 with
 * n = round(|v| * 10^k) below 2^53, n and 10^k are exact doubles, so
 * n / 10^k is one correctly rounded division: when it gives v back, the
 * decimal n * 10^-k is what strtod reads as v, and the smallest such k gives
 * the fewest digits. Its digits go out by integer code. Values it cannot
 * write (more than 16 significant digits, or beyond 2^53) take printf's %.15g,
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
