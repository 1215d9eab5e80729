/*
 * test_engine.c - the analytics engine end to end, once per backend:
 *   test_engine duckdb | postgres | timescaledb
 * Candles go in through the store, indicators come out of
 * analytics.indicators, and must equal TA-Lib itself (the PyPI oracle) with
 * the same warm-up; the direct and copy load paths must store the same
 * numbers; an incremental run writes only the new rows and ends equal to a
 * full recomputation; a changed old candle rewrites the history it affects.
 */
#include <stdint.h>
#include <unistd.h>

#include "analytics/engine.h"
#include "backend.h"
#include "source/import.h"
#include "store/store.h"
#include "test.h"

static an_test_backend be;
static const char *backend; /* be.name */

static an_store *open_store(void)
{
    return an_test_backend_open(&be, 2);
}

/* ---- the TA-Lib oracle -------------------------------------------------- */

typedef struct oracle_series {
    char name[32];
    double *v;
    size_t n;
} oracle_series;

static oracle_series oracle[32];
static int n_oracle;

static int run_oracle(const double *closes, size_t n)
{
    char path[] = "/tmp/autonama-engine-closes-XXXXXX";
    FILE *f = fdopen(mkstemp(path), "w");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.17g\n", closes[i]);
    fclose(f);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s/.deps/venv/bin/python' '%s/tests/oracle/talib_values.py' '%s'",
             AN_SOURCE_DIR, AN_SOURCE_DIR, path);
    FILE *p = popen(cmd, "r");
    size_t cap = 64 << 20;
    char *line = malloc(cap);
    n_oracle = 0;
    while (p && fgets(line, (int)cap, p)) {
        oracle_series *s = &oracle[n_oracle++];
        char *save = NULL, *tok = strtok_r(line, " \n", &save);
        snprintf(s->name, sizeof s->name, "%s", tok);
        s->v = malloc(n * sizeof *s->v);
        s->n = 0;
        while ((tok = strtok_r(NULL, " \n", &save)) && s->n < n)
            s->v[s->n++] = strtod(tok, NULL);
    }
    free(line);
    int rc = p ? pclose(p) : -1;
    unlink(path);
    return rc == 0 && n_oracle > 0 ? 0 : -1;
}

static void free_oracle(void)
{
    for (int i = 0; i < n_oracle; i++)
        free(oracle[i].v);
    n_oracle = 0;
}

static int near(double a, double b)
{
    return a == b || fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

/* Every stored value of `name` equals TA-Lib's, and there are exactly as
 * many as TA-Lib has (the same warm-up). */
static void check_against_oracle(an_store *s, const char *symbol, const char *tf,
                                 const an_candles *c, const char *name, const char *oracle_name)
{
    an_err err = {0};
    an_indicator_points pts = {0};
    AN_CHECK_OK(an_store_get_indicators(s, symbol, tf, name, NULL, &pts, &err), err);
    const oracle_series *o = NULL;
    for (int i = 0; i < n_oracle; i++)
        if (strcmp(oracle[i].name, oracle_name) == 0)
            o = &oracle[i];
    AN_CHECK_MSG(o && o->n == c->n, "oracle has no %s", oracle_name);
    if (!o || o->n != c->n)
        goto out;
    size_t want = 0, bad = 0, j = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (isnan(o->v[i]))
            continue;
        want++;
        while (j < pts.n && pts.v[j].ts < c->v[i].ts)
            j++;
        if (j >= pts.n || pts.v[j].ts != c->v[i].ts || !near(pts.v[j].value, o->v[i])) {
            if (bad++ < 3)
                fprintf(stderr, "  %s %s %s at %" PRId64 ": stored %.17g, TA-Lib %.17g\n", symbol,
                        tf, name, c->v[i].ts, j < pts.n ? pts.v[j].value : NAN, o->v[i]);
        }
    }
    AN_CHECK_MSG(pts.n == want, "%s %s %s: %zu stored values, TA-Lib has %zu", symbol, tf, name,
                 pts.n, want);
    AN_CHECK_MSG(bad == 0, "%s %s %s: %zu values differ from TA-Lib", symbol, tf, name, bad);
out:
    an_indicator_points_free(&pts);
}

static const char *NAMES[][2] = {
    {"sma_20", "sma_20"},           {"sma_50", "sma_50"},
    {"sma_200", "sma_200"},         {"ema_12", "ema_12"},
    {"ema_26", "ema_26"},           {"rsi_14", "rsi_14"},
    {"bb_upper_20", "bb_upper_20"}, {"bb_middle_20", "bb_middle_20"},
    {"bb_lower_20", "bb_lower_20"}, {"macd", "macd"},
    {"macd_signal", "macd_signal"}, {"macd_hist", "macd_hist"},
};

static an_candles load_file(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", an_test_data_dir(), name);
    an_import_result r;
    an_err err = {0};
    if (an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err) != AN_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    return r.candles;
}

static void closes_of(const an_candles *c, double *out)
{
    for (size_t i = 0; i < c->n; i++)
        out[i] = c->v[i].close;
}

/* Stored values of every default indicator equal an in-memory full
 * computation over the same candles, bit for bit. */
static void check_equals_full(an_store *s, const char *symbol, const char *tf, const an_candles *c)
{
    an_ind_set set;
    an_err err = {0};
    an_ind_set_parse(NULL, &set, &err);
    double *closes = malloc(c->n * sizeof *closes);
    closes_of(c, closes);
    char(*names)[AN_INDICATOR_NAME_MAX] = NULL;
    double **vals = NULL;
    int nout = 0;
    AN_CHECK_OK(an_engine_compute(&set, closes, c->n, &names, &vals, &nout, &err), err);
    size_t total = 0, bad = 0;
    for (int k = 0; k < nout; k++) {
        an_indicator_points pts = {0};
        AN_CHECK_OK(an_store_get_indicators(s, symbol, tf, names[k], NULL, &pts, &err), err);
        size_t j = 0, want = 0;
        for (size_t i = 0; i < c->n; i++) {
            if (isnan(vals[k][i]))
                continue;
            want++;
            if (j >= pts.n || pts.v[j].ts != c->v[i].ts || pts.v[j].value != vals[k][i])
                bad++;
            j++;
        }
        AN_CHECK_MSG(pts.n == want, "%s: %zu stored, want %zu", names[k], pts.n, want);
        total += want;
        an_indicator_points_free(&pts);
    }
    AN_CHECK_MSG(bad == 0, "%zu of %zu stored values differ from a full recomputation", bad, total);
    an_engine_free_outputs(names, vals, nout);
    free(closes);
}

static an_engine_result run(an_store *s, const char *symbol, const char *tf, an_load_pref pref)
{
    an_ind_set set;
    an_err err = {0};
    an_ind_set_parse(NULL, &set, &err);
    an_engine_result r;
    AN_CHECK_OK(an_engine_run(s, symbol, tf, &set, pref, &r, &err), err);
    return r;
}

static int is_pg(void)
{
    return strcmp(backend, "duckdb") != 0;
}

static void test_equals_talib_every_path(void)
{
    an_err err = {0};
    an_store *s = open_store();
    an_candles c = load_file("BTC_USDT-1h.json");
    an_upsert_counts u;
    AN_CHECK_OK(an_store_insert_ohlc(s, "BTC/USDT", "1h", c.v, c.n, &u, &err), err);
    /* the same candles under a second symbol, for the second load path */
    AN_CHECK_OK(an_store_insert_ohlc(s, "BTC/TEST", "1h", c.v, c.n, &u, &err), err);
    an_engine_result r = run(s, "BTC/USDT", "1h", is_pg() ? AN_LOAD_DIRECT : AN_LOAD_AUTO);
    AN_CHECK_STR(r.load_path, is_pg() ? "direct" : "embedded");
    AN_CHECK_STR(r.source, "ohlc_data");
    AN_CHECK_INT(r.candles, (int64_t)c.n);
    AN_CHECK(r.full == 1 && r.written.inserted == r.sent && r.sent == r.computed);
    double *closes = malloc(c.n * sizeof *closes);
    closes_of(&c, closes);
    AN_CHECK(run_oracle(closes, c.n) == 0);
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        check_against_oracle(s, "BTC/USDT", "1h", &c, NAMES[i][0], NAMES[i][1]);
    if (is_pg()) {
        r = run(s, "BTC/TEST", "1h", AN_LOAD_COPY);
        AN_CHECK_STR(r.load_path, "copy");
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
            check_against_oracle(s, "BTC/TEST", "1h", &c, NAMES[i][0], NAMES[i][1]);
        /* and the two paths stored identical numbers */
        an_indicator_points a = {0}, b = {0};
        AN_CHECK_OK(an_store_get_indicators(s, "BTC/USDT", "1h", NULL, NULL, &a, &err), err);
        AN_CHECK_OK(an_store_get_indicators(s, "BTC/TEST", "1h", NULL, NULL, &b, &err), err);
        AN_CHECK_INT(a.n, b.n);
        size_t diff = 0;
        for (size_t i = 0; i < a.n && i < b.n; i++)
            diff += a.v[i].ts != b.v[i].ts || strcmp(a.v[i].name, b.v[i].name) != 0 ||
                    a.v[i].value != b.v[i].value;
        AN_CHECK_INT(diff, 0);
        an_indicator_points_free(&a);
        an_indicator_points_free(&b);
    }
    free_oracle();
    free(closes);
    an_candles_free(&c);
    an_store_close(s);
}

/* Every real candle file through the store and the engine equals TA-Lib. */
static void test_every_real_file(void)
{
    static const char *files[][3] = {{"BTC_USDT-1m.json", "RBTC/USDT", "1m"},
                                     {"ETH_USDT-1m.json", "RETH/USDT", "1m"},
                                     {"BTC_USDT-5m.json", "RBTC/USDT", "5m"},
                                     {"ETH_USDT-1h.json", "RETH/USDT", "1h"},
                                     {"Coinbase_BTCUSD_d.csv", "RBTC/USD", "1d"}};
    /* The PGlite TimescaleDB server is the slowest store by far: in `make test`
     * it takes the hourly and daily files (the 1m/5m files are the same
     * computation, checked on DuckDB and PostgreSQL); `make check-all` takes
     * every file on every store. */
    const char *all = getenv("AN_CHECK_ALL");
    int every = strcmp(backend, "timescaledb") != 0 || (all && strcmp(all, "1") == 0);
    an_store *s = open_store();
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        an_err err = {0};
        if (!every && (strcmp(files[f][2], "1m") == 0 || strcmp(files[f][2], "5m") == 0))
            continue;
        an_candles c = load_file(files[f][0]);
        an_upsert_counts u;
        AN_CHECK_OK(an_store_insert_ohlc(s, files[f][1], files[f][2], c.v, c.n, &u, &err), err);
        an_engine_result r = run(s, files[f][1], files[f][2], AN_LOAD_AUTO);
        AN_CHECK_INT(r.candles, (int64_t)c.n);
        double *closes = malloc(c.n * sizeof *closes);
        closes_of(&c, closes);
        AN_CHECK(run_oracle(closes, c.n) == 0);
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
            check_against_oracle(s, files[f][1], files[f][2], &c, NAMES[i][0], NAMES[i][1]);
        free_oracle();
        free(closes);
        an_candles_free(&c);
    }
    an_store_close(s);
}

static void test_incremental(void)
{
    an_err err = {0};
    an_store *s = open_store();
    an_candles c = load_file("ETH_USDT-1m.json");
    size_t first = c.n - 100;
    an_upsert_counts u;
    AN_CHECK_OK(an_store_insert_ohlc(s, "ETH/USDT", "1m", c.v, first, &u, &err), err);
    an_engine_result r = run(s, "ETH/USDT", "1m", AN_LOAD_AUTO);
    AN_CHECK_INT(r.candles, (int64_t)first);
    AN_CHECK_INT(r.full, 1);
    /* a run with nothing new re-sends only the newest candle's rows, changing nothing */
    r = run(s, "ETH/USDT", "1m", AN_LOAD_AUTO);
    AN_CHECK_INT(r.full, 0);
    AN_CHECK_INT(r.sent, 12);
    AN_CHECK_INT(r.written.inserted + r.written.updated, 0);
    /* 100 new candles arrive; the previously newest one (still open then) changed too */
    c.v[first - 1].close = c.v[first - 1].low;
    AN_CHECK_OK(an_store_insert_ohlc(s, "ETH/USDT", "1m", c.v + first - 1, 101, &u, &err), err);
    AN_CHECK_INT(u.inserted, 100);
    AN_CHECK_INT(u.updated, 1);
    r = run(s, "ETH/USDT", "1m", AN_LOAD_AUTO);
    AN_CHECK_INT(r.full, 0);
    AN_CHECK_INT(r.candles, (int64_t)c.n);
    AN_CHECK_INT(r.sent, 101 * 12);
    AN_CHECK_INT(r.written.inserted, 100 * 12);
    AN_CHECK_INT(r.written.updated, 12);
    check_equals_full(s, "ETH/USDT", "1m", &c);
    /* an old candle is repaired: the history it touches is rewritten */
    c.v[5000].close = c.v[5000].high;
    AN_CHECK_OK(an_store_insert_ohlc(s, "ETH/USDT", "1m", &c.v[5000], 1, &u, &err), err);
    r = run(s, "ETH/USDT", "1m", AN_LOAD_AUTO);
    AN_CHECK_INT(r.full, 1);
    AN_CHECK_MSG(r.written.updated > 12 && r.written.inserted == 0, "updated %" PRId64,
                 r.written.updated);
    check_equals_full(s, "ETH/USDT", "1m", &c);
    an_candles_free(&c);
    an_store_close(s);
}

static void test_rollups_and_empty(void)
{
    an_err err = {0};
    an_store *s = open_store();
    an_candles c = load_file("BTC_USDT-1m.json");
    an_upsert_counts u;
    AN_CHECK_OK(an_store_insert_ohlc(s, "BTC/USDT", "1m", c.v, c.n, &u, &err), err);
    AN_CHECK_OK(an_store_refresh_rollups(s, INT64_MIN, INT64_MAX, &err), err);
    an_candles hourly = {0};
    AN_CHECK_OK(an_store_get_rollup(s, "BTC/USDT", "1h", NULL, &hourly, &err), err);
    an_engine_result r = run(s, "BTC/USDT", "1h", AN_LOAD_AUTO);
    /* BTC/USDT 1h candles were stored by the first test: they win over the rollup */
    AN_CHECK_STR(r.source, "ohlc_data");
    r = run(s, "BTC/USDT", "1d", AN_LOAD_AUTO);
    AN_CHECK_STR(r.source, "ohlc_1d");
    AN_CHECK_INT(r.candles, 31);
    an_candles daily = {0};
    AN_CHECK_OK(an_store_get_rollup(s, "BTC/USDT", "1d", NULL, &daily, &err), err);
    check_equals_full(s, "BTC/USDT", "1d", &daily);
    r = run(s, "ETH/USDT", "1h", AN_LOAD_AUTO);
    AN_CHECK_STR(r.source, "ohlc_1h");
    /* no candles: nothing to do, not an error */
    r = run(s, "NONE/USDT", "1m", AN_LOAD_AUTO);
    AN_CHECK_INT(r.candles, 0);
    an_candles_free(&c);
    an_candles_free(&hourly);
    an_candles_free(&daily);
    an_store_close(s);
}

static void test_bad_specs(void)
{
    an_ind_set set;
    an_err err = {0};
    const char *bad[] = {"sma",        "sma:0",    "sma:x",   "wma:10", "bbands:20:-1",
                         "macd:12:26", "rsi:14:3", "rsi:1.5", ""};
    for (size_t i = 0; i + 1 < sizeof bad / sizeof bad[0]; i++)
        AN_CHECK_MSG(an_ind_set_parse(bad[i], &set, &err) == AN_ERR_INVALID, "'%s' accepted",
                     bad[i]);
    AN_CHECK_OK(an_ind_set_parse("sma:20,rsi:14,bbands:20:2", &set, &err), err);
    AN_CHECK_STR(set.text, "sma:20,rsi:14,bbands:20:2:2");
    AN_CHECK_OK(an_ind_set_parse(NULL, &set, &err), err);
    AN_CHECK_INT(set.n, 8);
}

int main(int argc, char **argv)
{
    int rc = an_test_backend_init(&be, argc, argv, "engine");
    if (rc)
        return rc;
    backend = be.name;
    an_test_backend_reset(&be);
    AN_RUN(test_bad_specs);
    AN_RUN(test_equals_talib_every_path);
    AN_RUN(test_every_real_file);
    AN_RUN(test_incremental);
    AN_RUN(test_rollups_and_empty);
    an_test_backend_done(&be);
    return AN_TEST_DONE();
}
