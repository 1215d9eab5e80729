/*
 * test_live.c - the live path's incremental indicators (analytics/live.c)
 * against the batch engine's kernels (an_engine_compute, the ones `autonama
 * indicators` runs): for every real candle file and some edge series, at
 * every index, the value a close would give (peek) and the value after it is
 * pushed must be the batch value bit for bit (NAN where the batch has none).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/engine.h"
#include "analytics/live.h"
#include "source/import.h"
#include "test.h"

static int same(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

static void check_series(const char *label, const char *spec, const double *c, size_t n)
{
    an_ind_set set;
    an_err err = {0};
    AN_CHECK_OK(an_ind_set_parse(spec, &set, &err), err);
    char(*names)[AN_INDICATOR_NAME_MAX] = NULL;
    double **batch = NULL;
    int nout = 0;
    AN_CHECK_OK(an_engine_compute(&set, c, n, &names, &batch, &nout, &err), err);
    an_live *l = an_live_new(&set);
    AN_CHECK(l != NULL);
    if (!l || !batch) {
        an_live_free(l);
        return;
    }
    AN_CHECK_INT(an_live_outputs(l), nout);
    for (int k = 0; k < nout && k < an_live_outputs(l); k++)
        AN_CHECK_STR(an_live_name(l, k), names[k]);
    double peek[64], push[64];
    long bad = 0;
    for (size_t i = 0; i < n && nout <= 64; i++) {
        an_live_peek(l, c[i], peek);
        an_live_push(l, c[i], push);
        for (int k = 0; k < nout; k++)
            if (!same(peek[k], batch[k][i]) || !same(push[k], batch[k][i])) {
                if (bad++ < 3)
                    fprintf(stderr, "  %s %s[%zu]: live %.17g / %.17g, batch %.17g\n", label,
                            names[k], i, peek[k], push[k], batch[k][i]);
            }
    }
    AN_CHECK_MSG(bad == 0, "%s: %ld values differ", label, bad);
    AN_CHECK_INT(an_live_count(l), n);
    /* reset: the same again from scratch */
    an_live_reset(l);
    for (size_t i = 0; i < n; i++)
        an_live_push(l, c[i], push);
    for (int k = 0; n && k < nout; k++)
        AN_CHECK(same(push[k], batch[k][n - 1]));
    an_live_free(l);
    an_engine_free_outputs(names, batch, nout);
}

#define SPECS AN_IND_DEFAULT ",rsi:2,sma:2,ema:2,ema:3,bbands:5:1.5:2.5,macd:5:35:5,macd:3:4:2"

static void test_real_files(void)
{
    const char *files[] = {"BTC_USDT-1m.json", "ETH_USDT-1h.json", "Coinbase_BTCUSD_d.csv"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", an_test_data_dir(), files[f]);
        an_import_result r;
        an_err err = {0};
        AN_CHECK_OK(an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
        size_t n = r.candles.n > 50000 ? 50000 : r.candles.n;
        double *c = malloc((n + 1) * sizeof *c);
        for (size_t i = 0; i < n; i++)
            c[i] = r.candles.v[i].close;
        check_series(files[f], SPECS, c, n);
        free(c);
        an_import_result_free(&r);
    }
}

static void test_edge_series(void)
{
    double flat[300], up[40];
    for (int i = 0; i < 300; i++)
        flat[i] = 42.5;
    for (int i = 0; i < 40; i++)
        up[i] = 100 + i;
    check_series("flat", SPECS, flat, 300);
    check_series("rising-40", SPECS, up, 40);
    check_series("short-15", SPECS, up, 15);
    check_series("short-1", SPECS, up, 1);
}

int main(void)
{
    AN_RUN(test_real_files);
    AN_RUN(test_edge_series);
    return AN_TEST_DONE();
}
