/*
 * bench_numfmt.c - ns per double of core/numfmt.c's shortest round-trip
 * printer next to snprintf("%.17g") (not shortest, the cheapest libc form
 * that round-trips) and the %.15g/%.16g/%.17g-then-strtod loop a shortest
 * printer built on libc needs, in one run, on three sets: the prices and
 * volumes of a real candle file, 2-decimal prices with 6-decimal volumes,
 * and indicator-like values with 16-17 digits. Prints the ratios.
 * usage: bench_numfmt [values] [rounds]   (defaults 1000000, 5; AN_DATA_DIR
 * for the real file, default ../shared/data/candles)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/numfmt.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static volatile size_t sink;

static size_t fmt_ours(double v, char *b)
{
    return an_num_format(v, b);
}

static size_t fmt_17g(double v, char *b)
{
    return (size_t)snprintf(b, AN_NUM_MAX, "%.17g", v);
}

static size_t fmt_loop(double v, char *b)
{
    int len = 0;
    for (int prec = 15; prec <= 17; prec++) {
        len = snprintf(b, AN_NUM_MAX, "%.*g", prec, v);
        if (strtod(b, NULL) == v)
            break;
    }
    return (size_t)len;
}

/* best ns per value over rounds */
static double time_it(size_t (*f)(double, char *), const double *v, size_t n, int rounds)
{
    double best = 1e30;
    char b[AN_NUM_MAX];
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        size_t s = 0;
        for (size_t i = 0; i < n; i++)
            s += f(v[i], b);
        double dt = now_s() - t0;
        sink += s;
        if (dt < best)
            best = dt;
    }
    return best * 1e9 / (double)n;
}

static size_t load_real(double *v, size_t n)
{
    const char *dir = getenv("AN_DATA_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/BTC_USDT-1m.json",
             dir ? dir : AN_SOURCE_DIR "/../shared/data/candles");
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "bench_numfmt: cannot open %s\n", path);
        return 0;
    }
    size_t got = 0;
    int c, field = 0;
    char tok[64];
    size_t tl = 0;
    /* [[time,open,high,low,close,volume],...]: keep fields 1..5 */
    while ((c = fgetc(fp)) != EOF && got < n) {
        if ((c >= '0' && c <= '9') || c == '.' || c == '-' || c == 'e') {
            if (tl < sizeof tok - 1)
                tok[tl++] = (char)c;
            continue;
        }
        if (tl) {
            tok[tl] = '\0';
            if (field % 6 != 0)
                v[got++] = strtod(tok, NULL);
            field++;
            tl = 0;
        }
    }
    fclose(fp);
    for (size_t i = got; got && i < n; i++) /* repeat to n values */
        v[i] = v[i % got];
    return got ? n : 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    double *v = malloc(n * sizeof *v);
    if (!v || n == 0)
        return 1;
    uint64_t x = 88172645463325252u;
    int status = 0;
    for (int set = 0; set < 3; set++) {
        const char *name = set == 0   ? "real BTC/USDT 1m prices+volumes"
                           : set == 1 ? "2-decimal prices, 6-decimal volumes"
                                      : "indicator-like (16-17 digits)";
        if (set == 0 && !load_real(v, n)) {
            status = 1;
            continue;
        }
        for (size_t i = 0; set > 0 && i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            if (set == 1)
                v[i] = i % 5 == 4 ? (double)(x % 100000000) / 1e6 : (double)(x % 10000000) / 100;
            else
                v[i] = 100.0 - 100.0 / (1.0 + (double)(x % 1000000) / (double)(x % 7777 + 1));
        }
        double ours = time_it(fmt_ours, v, n, rounds), g17 = time_it(fmt_17g, v, n, rounds),
               loop = time_it(fmt_loop, v, n, rounds);
        printf("%-38s ours %6.1f ns  %%.17g %6.1f ns (%.1fx)  %%.15g..17g+strtod %6.1f ns "
               "(%.1fx)\n",
               name, ours, g17, g17 / ours, loop, loop / ours);
    }
    free(v);
    return status;
}
