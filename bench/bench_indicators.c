/*
 * bench_indicators.c - the analytics engine against its baselines, side by
 * side in one run:
 *   1. compute: the full default set (SMA 20/50/200, EMA 12/26, RSI 14,
 *      BBANDS 20,2, MACD 12/26/9) over N candles in the engine, next to
 *      TA-Lib's own C functions over the same series (the libta-lib that
 *      PyPI ta-lib ships, loaded with dlopen from AN_TALIB_LIB); the outputs
 *      are also compared, value for value;
 *   2. end to end on PostgreSQL 15 (AUTONAMA_TEST_PG): store -> DuckDB ->
 *      indicators stored, next to writing the same indicator rows alone.
 * Targets: compute within 3x of TA-Lib; end to end within 1.5x of the write.
 * usage: bench_indicators [candles] [rounds] [e2e-rounds]   (defaults 1000000, 3, 1:
 * one end-to-end round writes about 12 million rows, over a minute)
 */
#include <dlfcn.h>
#include <libpq-fe.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics/engine.h"
#include "series.h"
#include "store/store.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* TA-Lib's C API, declared from its documented signatures (ta_func.h). */
typedef int (*ta_init_fn)(void);
typedef int (*ta_ma1_fn)(int, int, const double *, int, int *, int *, double *);
typedef int (*ta_bbands_fn)(int, int, const double *, int, double, double, int, int *, int *,
                            double *, double *, double *);
typedef int (*ta_macd_fn)(int, int, const double *, int, int, int, int *, int *, double *, double *,
                          double *);

typedef struct talib {
    ta_ma1_fn sma, ema, rsi;
    ta_bbands_fn bbands;
    ta_macd_fn macd;
} talib;

static int load_talib(talib *t)
{
    const char *path = getenv("AN_TALIB_LIB");
    void *h = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!h) {
        fprintf(stderr, "bench_indicators: cannot load TA-Lib (AN_TALIB_LIB=%s): %s\n",
                path ? path : "unset", dlerror());
        return -1;
    }
    ta_init_fn init = (ta_init_fn)dlsym(h, "TA_Initialize");
    t->sma = (ta_ma1_fn)dlsym(h, "TA_SMA");
    t->ema = (ta_ma1_fn)dlsym(h, "TA_EMA");
    t->rsi = (ta_ma1_fn)dlsym(h, "TA_RSI");
    t->bbands = (ta_bbands_fn)dlsym(h, "TA_BBANDS");
    t->macd = (ta_macd_fn)dlsym(h, "TA_MACD");
    if (!init || !t->sma || !t->ema || !t->rsi || !t->bbands || !t->macd || init() != 0) {
        fprintf(stderr, "bench_indicators: %s lacks the TA-Lib functions\n", path);
        return -1;
    }
    return 0;
}

/* The default set through TA-Lib, into 12 output arrays laid out like the
 * engine's (NAN in the warm-up). */
static void run_talib(const talib *t, const double *in, int n, double **out)
{
    int beg, nb;
    double *tmp[3];
    for (int k = 0; k < 3; k++)
        tmp[k] = malloc((size_t)n * sizeof(double));
    static const int sma[3] = {20, 50, 200};
    int o = 0;
    for (int i = 0; i < 3; i++, o++) {
        t->sma(0, n - 1, in, sma[i], &beg, &nb, tmp[0]);
        for (int j = 0; j < n; j++)
            out[o][j] = j < beg ? NAN : tmp[0][j - beg];
    }
    static const int ema[2] = {12, 26};
    for (int i = 0; i < 2; i++, o++) {
        t->ema(0, n - 1, in, ema[i], &beg, &nb, tmp[0]);
        for (int j = 0; j < n; j++)
            out[o][j] = j < beg ? NAN : tmp[0][j - beg];
    }
    t->rsi(0, n - 1, in, 14, &beg, &nb, tmp[0]);
    for (int j = 0; j < n; j++)
        out[o][j] = j < beg ? NAN : tmp[0][j - beg];
    o++;
    t->bbands(0, n - 1, in, 20, 2.0, 2.0, 0, &beg, &nb, tmp[0], tmp[1], tmp[2]);
    for (int k = 0; k < 3; k++, o++)
        for (int j = 0; j < n; j++)
            out[o][j] = j < beg ? NAN : tmp[k][j - beg];
    t->macd(0, n - 1, in, 12, 26, 9, &beg, &nb, tmp[0], tmp[1], tmp[2]);
    for (int k = 0; k < 3; k++, o++)
        for (int j = 0; j < n; j++)
            out[o][j] = j < beg ? NAN : tmp[k][j - beg];
    for (int k = 0; k < 3; k++)
        free(tmp[k]);
}

/* The closes are the series the indicators run on (the wicks do not matter). */
static void make_candles(an_candles *c, size_t n)
{
    an_test_series spec = {1500000000000LL / 60000 * 60000, 60000, 30000.0, 1000, 500, 100.0, 7};
    an_test_series_make(c, n, &spec);
}

static void sql(const char *ci, const char *q)
{
    PGconn *c = PQconnectdb(ci);
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench_indicators: %s: %s", q, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    PQfinish(c);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    int e2e_rounds = argc > 3 ? atoi(argv[3]) : 1;
    if (n < 1000 || rounds < 1 || e2e_rounds < 1) {
        fprintf(stderr, "usage: bench_indicators [candles >= 1000] [rounds >= 1] [e2e-rounds >= "
                        "1]\n");
        return 2;
    }
    int failed = 0;
    an_candles c = {0};
    make_candles(&c, n);
    double *closes = malloc(n * sizeof *closes);
    for (size_t i = 0; i < n; i++)
        closes[i] = c.v[i].close;
    an_ind_set set;
    an_err err = {0};
    an_ind_set_parse(NULL, &set, &err);

    /* 1. compute */
    printf("bench/indicators: %zu candles, set %s, best of %d\n", n, set.text, rounds);
    talib t;
    if (load_talib(&t) == 0) {
        double *ta[12];
        for (int k = 0; k < 12; k++)
            ta[k] = malloc(n * sizeof(double));
        double best_ours = 1e9, best_ta = 1e9;
        char(*names)[AN_INDICATOR_NAME_MAX] = NULL;
        double **vals = NULL;
        int nout = 0;
        for (int r = 0; r < rounds; r++) {
            double t0 = now_s();
            run_talib(&t, closes, (int)n, ta);
            double t1 = now_s();
            an_engine_free_outputs(names, vals, nout);
            if (an_engine_compute(&set, closes, n, &names, &vals, &nout, &err) != AN_OK) {
                fprintf(stderr, "bench_indicators: %s\n", err.msg);
                return 1;
            }
            double t2 = now_s();
            best_ta = fmin(best_ta, t1 - t0);
            best_ours = fmin(best_ours, t2 - t1);
        }
        size_t differ = 0;
        for (int k = 0; k < nout && k < 12; k++)
            for (size_t i = 0; i < n; i++)
                differ +=
                    !(isnan(vals[k][i]) ? isnan(ta[k][i])
                                        : fabs(vals[k][i] - ta[k][i]) <= 1e-9 * fabs(ta[k][i]));
        printf("%-44s %10.3f s %12.0f candles/s\n", "compute: engine (C over DuckDB chunks' data)",
               best_ours, (double)n / best_ours);
        printf("%-44s %10.3f s %12.0f candles/s\n", "compute: TA-Lib C functions", best_ta,
               (double)n / best_ta);
        printf("ratio engine / TA-Lib time = %.2f  (target <= 3)  %s;  values differing: %zu\n",
               best_ours / best_ta, best_ours / best_ta <= 3 ? "PASS" : "FAIL", differ);
        failed |= best_ours / best_ta > 3 || differ != 0;
        an_engine_free_outputs(names, vals, nout);
        for (int k = 0; k < 12; k++)
            free(ta[k]);
    } else {
        failed = 1;
    }

    /* 2. end to end on PostgreSQL 15 */
    const char *pg = getenv("AUTONAMA_TEST_PG");
    if (!pg || !*pg) {
        printf("AUTONAMA_TEST_PG not set: end-to-end skipped (scripts/run-bench sets it)\n");
        return 1;
    }
    sql(pg, "SET client_min_messages = warning; DROP SCHEMA IF EXISTS trading CASCADE; DROP "
            "SCHEMA IF EXISTS analytics CASCADE; DROP SCHEMA IF EXISTS optimization CASCADE; "
            "DROP SCHEMA IF EXISTS autonama CASCADE");
    an_store_options o = {0};
    o.pg_conninfo = pg;
    o.mode = "postgres";
    o.pool_size = 2;
    an_store *s = NULL;
    if (an_store_open(&o, &s, &err) != AN_OK || an_store_migrate(s, NULL, &err) != AN_OK ||
        an_store_insert_ohlc(s, "BEN/USDT", "1m", c.v, c.n, NULL, &err) != AN_OK) {
        fprintf(stderr, "bench_indicators: %s\n", err.msg);
        return 1;
    }
    /* the same rows the engine writes, time-major, for the write-alone run */
    char(*names)[AN_INDICATOR_NAME_MAX] = NULL;
    double **vals = NULL;
    int nout = 0;
    an_engine_compute(&set, closes, n, &names, &vals, &nout, &err);
    size_t m = 0, cap = n * (size_t)nout;
    int64_t *bts = malloc(cap * sizeof *bts);
    int *bidx = malloc(cap * sizeof *bidx);
    double *bval = malloc(cap * sizeof *bval);
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < nout; k++)
            if (!isnan(vals[k][i])) {
                bts[m] = c.v[i].ts;
                bidx[m] = k;
                bval[m] = vals[k][i];
                m++;
            }
    const char *name_ptrs[64];
    for (int k = 0; k < nout; k++)
        name_ptrs[k] = names[k];
    an_indicator_batch batch = {name_ptrs, nout, bts, bidx, bval, m};
    double best_e2e = 1e9, best_write = 1e9;
    const char *path = "?";
    static char load_path[16];
    for (int r = 0; r < e2e_rounds; r++) {
        sql(pg, "TRUNCATE analytics.indicators, analytics.indicator_runs");
        an_engine_result res;
        double t0 = now_s();
        if (an_engine_run(s, "BEN/USDT", "1m", &set, AN_LOAD_AUTO, &res, &err) != AN_OK) {
            fprintf(stderr, "bench_indicators: %s\n", err.msg);
            return 1;
        }
        best_e2e = fmin(best_e2e, now_s() - t0);
        snprintf(load_path, sizeof load_path, "%s", res.load_path);
        path = load_path;
        if ((size_t)res.written.inserted != m) {
            fprintf(stderr, "bench_indicators: engine wrote %lld rows, want %zu\n",
                    (long long)res.written.inserted, m);
            return 1;
        }
        sql(pg, "TRUNCATE analytics.indicators, analytics.indicator_runs");
        an_upsert_counts u;
        t0 = now_s();
        if (an_store_upsert_indicators(s, "BEN/USDT", "1m", &batch, &u, &err) != AN_OK) {
            fprintf(stderr, "bench_indicators: %s\n", err.msg);
            return 1;
        }
        best_write = fmin(best_write, now_s() - t0);
    }
    char label[64];
    snprintf(label, sizeof label, "end to end (load path %s)", path);
    printf("%-44s %10.3f s %12.0f rows/s\n", label, best_e2e, (double)m / best_e2e);
    printf("%-44s %10.3f s %12.0f rows/s\n", "write the same indicator rows alone", best_write,
           (double)m / best_write);
    printf("ratio end-to-end / write = %.2f  (target <= 1.5)  %s;  rows: %zu\n",
           best_e2e / best_write, best_e2e / best_write <= 1.5 ? "PASS" : "FAIL", m);
    failed |= best_e2e / best_write > 1.5;
    sql(pg, "TRUNCATE analytics.indicators, analytics.indicator_runs, trading.ohlc_data, "
            "trading.ohlc_series");
    an_engine_free_outputs(names, vals, nout);
    free(bts);
    free(bidx);
    free(bval);
    free(closes);
    an_candles_free(&c);
    an_store_close(s);
    return failed;
}
