/*
 * test_indicators.c - every indicator against TA-Lib itself (PyPI ta-lib,
 * run through tests/oracle/talib_values.py) on the close prices of each real
 * candle file and on edge series: every value within 1e-9 relative, and NAN
 * exactly where TA-Lib has no value.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analytics/engine.h"
#include "analytics/indicators.h"
#include "source/import.h"
#include "test.h"

typedef struct series {
    char name[32];
    double *v;
    size_t n;
} series;

static series oracle[32];
static int n_oracle;

/* Runs the TA-Lib oracle on closes; fills oracle[]. */
static int run_oracle(const double *closes, size_t n)
{
    char path[] = "/tmp/autonama-closes-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.17g\n", closes[i]);
    fclose(f);
    const char *py = getenv("AN_PYTHON");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/oracle/talib_values.py' '%s'",
             py ? py : AN_SOURCE_DIR "/.deps/venv/bin/python", AN_SOURCE_DIR, path);
    FILE *p = popen(cmd, "r");
    if (!p) {
        unlink(path);
        return -1;
    }
    n_oracle = 0;
    size_t cap = 1 << 20;
    char *line = malloc(cap);
    while (fgets(line, (int)cap, p)) {
        size_t len = strlen(line);
        while (len == cap - 1 && line[len - 1] != '\n') {
            line = realloc(line, cap * 2);
            if (!fgets(line + len, (int)(cap * 2 - len), p))
                break;
            cap *= 2;
            len = strlen(line);
        }
        series *s = &oracle[n_oracle++];
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        snprintf(s->name, sizeof s->name, "%s", tok);
        s->v = malloc(n * sizeof *s->v);
        s->n = 0;
        while ((tok = strtok_r(NULL, " \n", &save)) && s->n < n)
            s->v[s->n++] = strtod(tok, NULL);
    }
    free(line);
    int rc = pclose(p);
    unlink(path);
    return rc == 0 && n_oracle > 0 ? 0 : -1;
}

static void free_oracle(void)
{
    for (int i = 0; i < n_oracle; i++)
        free(oracle[i].v);
    n_oracle = 0;
}

static const series *want(const char *name)
{
    for (int i = 0; i < n_oracle; i++)
        if (strcmp(oracle[i].name, name) == 0)
            return &oracle[i];
    fprintf(stderr, "  oracle has no %s\n", name);
    return NULL;
}

static void compare(const char *label, const char *name, const double *got, size_t n)
{
    const series *w = want(name);
    AN_CHECK_MSG(w && w->n == n, "%s %s: oracle length", label, name);
    if (!w || w->n != n)
        return;
    size_t bad = 0, values = 0;
    for (size_t i = 0; i < n; i++) {
        int wn = isnan(w->v[i]), gn = isnan(got[i]);
        int ok = wn ? gn
                    : !gn && (got[i] == w->v[i] ||
                              fabs(got[i] - w->v[i]) <= 1e-9 * fmax(fabs(got[i]), fabs(w->v[i])));
        values += !wn;
        if (!ok && bad++ < 3)
            fprintf(stderr, "  %s %s[%zu]: got %.17g, TA-Lib %.17g\n", label, name, i, got[i],
                    w->v[i]);
    }
    AN_CHECK_MSG(bad == 0, "%s %s: %zu of %zu differ", label, name, bad, n);
    AN_CHECK_MSG(n < 300 || values > 0, "%s %s: no values at all", label, name);
}

static void check_all(const char *label, const double *c, size_t n)
{
    if (run_oracle(c, n) != 0) {
        AN_CHECK_MSG(0, "%s: the TA-Lib oracle failed (scripts/bootstrap installs it)", label);
        return;
    }
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *d = malloc(n * sizeof *d);
    static const int sma[] = {20, 50, 200};
    char name[32];
    for (int i = 0; i < 3; i++) {
        an_ind_sma(c, n, sma[i], a);
        snprintf(name, sizeof name, "sma_%d", sma[i]);
        compare(label, name, a, n);
    }
    an_ind_ema(c, n, 12, a);
    compare(label, "ema_12", a, n);
    an_ind_ema(c, n, 26, a);
    compare(label, "ema_26", a, n);
    an_ind_rsi(c, n, 14, a);
    compare(label, "rsi_14", a, n);
    an_ind_bbands(c, n, 20, 2, 2, a, b, d);
    compare(label, "bb_upper_20", a, n);
    compare(label, "bb_middle_20", b, n);
    compare(label, "bb_lower_20", d, n);
    an_ind_bbands(c, n, 10, 1.5, 2.5, a, b, d);
    compare(label, "bb_upper_10_asym", a, n);
    compare(label, "bb_middle_10_asym", b, n);
    compare(label, "bb_lower_10_asym", d, n);
    AN_CHECK(an_ind_macd(c, n, 12, 26, 9, a, b, d) == 0);
    compare(label, "macd", a, n);
    compare(label, "macd_signal", b, n);
    compare(label, "macd_hist", d, n);
    AN_CHECK(an_ind_macd(c, n, 35, 5, 5, a, b, d) == 0); /* swapped, as TA-Lib does */
    compare(label, "macd_5_35_5", a, n);
    compare(label, "macd_signal_5_35_5", b, n);
    compare(label, "macd_hist_5_35_5", d, n);
    free(a);
    free(b);
    free(d);
    free_oracle();
}

static void test_real_files(void)
{
    const char *files[] = {"BTC_USDT-1m.json", "ETH_USDT-1m.json", "BTC_USDT-5m.json",
                           "BTC_USDT-1h.json", "ETH_USDT-1h.json", "Coinbase_BTCUSD_d.csv"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", an_test_data_dir(), files[f]);
        an_import_result r;
        an_err err = {0};
        AN_CHECK_OK(an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
        double *c = malloc((r.candles.n + 1) * sizeof *c);
        for (size_t i = 0; i < r.candles.n; i++)
            c[i] = r.candles.v[i].close;
        check_all(files[f], c, r.candles.n);
        free(c);
        an_import_result_free(&r);
    }
}

static void test_edge_series(void)
{
    /* flat (RSI 0, zero deviation), too short, exactly the warm-up length */
    double flat[300];
    for (int i = 0; i < 300; i++)
        flat[i] = 42.5;
    check_all("flat", flat, 300);
    double up[40];
    for (int i = 0; i < 40; i++)
        up[i] = 100 + i;
    check_all("rising-40", up, 40);
    check_all("short-15", up, 15);
    check_all("short-3", up, 3);
}

/* Issue 10, fault 2: parameters out of int range (or NaN) were cast to int
 * before any check (undefined behaviour, caught by float-cast-overflow);
 * each is refused with an error naming the value. */
static void test_spec_ranges(void)
{
    static const struct {
        const char *spec, *named;
    } bad[] = {
        {"sma:1e300", "1e300"},
        {"ema:-1e300", "-1e300"},
        {"rsi:nan", "nan"},
        {"macd:1e10:26:9", "1e10"},
        {"macd:12:inf:9", "inf"},
        {"macd:12:26:-1e19", "-1e19"},
        {"bbands:20:nan", "nan"},
        {"bbands:1e300:2", "1e300"},
        {"bbands:20:2:inf", "inf"},
        {"sma:2147483648", "2147483648"},
        {"sma:20.5", "20.5"},
        {"sma:0", "0"},
        {"macd:12:26:100001", "100001"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        an_ind_set set;
        an_err err = {0};
        AN_CHECK_MSG(an_ind_set_parse(bad[i].spec, &set, &err) == AN_ERR_INVALID, "'%s' accepted",
                     bad[i].spec);
        AN_CHECK_MSG(strstr(err.msg, bad[i].named) != NULL, "'%s': %s", bad[i].spec, err.msg);
    }
    an_ind_set set;
    an_err err = {0};
    AN_CHECK_OK(an_ind_set_parse("sma:100000,macd:2:3:1,bbands:2:0.5:99", &set, &err), err);
    AN_CHECK_INT(set.n, 3);
    AN_CHECK_STR(set.text, "sma:100000,macd:2:3:1,bbands:2:0.5:99");
}

int main(void)
{
    AN_RUN(test_spec_ranges);
    AN_RUN(test_real_files);
    AN_RUN(test_edge_series);
    return AN_TEST_DONE();
}
