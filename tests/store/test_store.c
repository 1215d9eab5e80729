/*
 * test_store.c - the store suite, run once per backend:
 *   test_store duckdb | postgres | timescaledb
 * postgres reads its connection string from AUTONAMA_TEST_PG, timescaledb
 * from AUTONAMA_TEST_TS (scripts/test-services start prints both). Each run
 * starts from an empty schema. The same assertions hold on every backend.
 */
#include <libpq-fe.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "backend.h"
#include "series.h"
#include "source/import.h"
#include "store/store.h"
#include "test.h"

static an_test_backend B;
static const char *backend; /* B.name */

static const char *retention_setting = "";

static an_store *open_store(void)
{
    an_store_options opt = {0};
    opt.retention = retention_setting;
    opt.pool_size = 4;
    opt.connect_timeout_s = 10;
    opt.compress_after = "30 days";
    if (strcmp(backend, "duckdb") == 0) {
        opt.mode = "duckdb";
        opt.duckdb_path = B.duck_path;
    } else {
        opt.mode = backend;
        opt.pg_conninfo = B.conninfo;
    }
    an_store *s = NULL;
    an_err err = {0};
    if (an_store_open(&opt, &s, &err) != AN_OK) {
        fprintf(stderr, "cannot open the %s store: %s\n", backend, err.msg);
        exit(1);
    }
    return s;
}

/* A deterministic 1m series: a random walk that satisfies every candle rule. */
static void make_series(an_candles *out, int64_t start, size_t n, unsigned seed)
{
    an_test_series spec = an_test_series_1m(start, seed);
    an_test_series_make(out, n, &spec);
}

static int same_candle(const an_candle *a, const an_candle *b)
{
    return a->ts == b->ts && a->open == b->open && a->high == b->high && a->low == b->low &&
           a->close == b->close && a->volume == b->volume;
}

static void test_migrate_twice(void)
{
    an_err err = {0};
    an_store *s = open_store();
    int version = -1;
    AN_CHECK(an_store_check_schema(s, &version, &err) == AN_ERR_SCHEMA);
    AN_CHECK_MSG(strstr(err.msg, "migrate") != NULL, "message: %s", err.msg);
    AN_CHECK_INT(version, 0);
    int applied = -1;
    AN_CHECK_OK(an_store_migrate(s, &applied, &err), err);
    AN_CHECK_INT(applied, an_store_schema_version());
    AN_CHECK_OK(an_store_migrate(s, &applied, &err), err);
    AN_CHECK_INT(applied, 0);
    AN_CHECK_OK(an_store_check_schema(s, &version, &err), err);
    AN_CHECK_INT(version, an_store_schema_version());
    AN_CHECK_STR(an_store_mode_name(an_store_get_mode(s)), backend);
    an_store_close(s);
    /* a fresh handle sees the same schema and migrates nothing */
    s = open_store();
    AN_CHECK_OK(an_store_migrate(s, &applied, &err), err);
    AN_CHECK_INT(applied, 0);
    AN_CHECK_STR(an_store_mode_name(an_store_get_mode(s)), backend);
    an_store_close(s);
}

static void test_insert_twice_and_open_candle(void)
{
    an_err err = {0};
    an_store *s = open_store();
    an_candles in = {0}, got = {0};
    const int64_t start = 1700000040000LL / 60000 * 60000;
    make_series(&in, start, 10000, 7);
    an_upsert_counts c1, c2, c3;
    AN_CHECK_OK(an_store_insert_ohlc(s, "TST/USDT", "1m", in.v, in.n, &c1, &err), err);
    AN_CHECK_INT(c1.inserted, 10000);
    AN_CHECK_INT(c1.updated, 0);
    AN_CHECK_OK(an_store_insert_ohlc(s, "TST/USDT", "1m", in.v, in.n, &c2, &err), err);
    AN_CHECK_INT(c2.inserted, 0);
    AN_CHECK_INT(c2.updated, 0);
    AN_CHECK_INT(c2.unchanged, 10000);
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", NULL, &got, &err), err);
    AN_CHECK_INT(got.n, 10000);
    size_t mismatches = 0;
    for (size_t i = 0; i < got.n && i < in.n; i++)
        mismatches += !same_candle(&got.v[i], &in.v[i]);
    AN_CHECK_INT(mismatches, 0);

    /* the still-open last candle changes: updated in place, not duplicated */
    an_candle open = in.v[in.n - 1];
    open.close = open.high; /* price moved up to the high */
    open.volume += 12.5;
    AN_CHECK_OK(an_store_insert_ohlc(s, "TST/USDT", "1m", &open, 1, &c3, &err), err);
    AN_CHECK_INT(c3.inserted, 0);
    AN_CHECK_INT(c3.updated, 1);
    an_candles_free(&got);
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", NULL, &got, &err), err);
    AN_CHECK_INT(got.n, 10000);
    AN_CHECK(got.n == 10000 && same_candle(&got.v[9999], &open));

    /* a partially new batch: 100 old (one changed) + 50 new */
    an_candles more = {0};
    make_series(&more, start + 10000LL * 60000, 50, 99);
    an_candles mixed = {0};
    for (size_t i = 9900; i < 10000; i++)
        an_candles_push(&mixed, i == 9999 ? &open : &in.v[i], NULL);
    mixed.v[0].volume += 1.0;
    for (size_t i = 0; i < more.n; i++)
        an_candles_push(&mixed, &more.v[i], NULL);
    AN_CHECK_OK(an_store_insert_ohlc(s, "TST/USDT", "1m", mixed.v, mixed.n, &c3, &err), err);
    AN_CHECK_INT(c3.inserted, 50);
    AN_CHECK_INT(c3.updated, 1);
    AN_CHECK_INT(c3.unchanged, 99);
    int64_t latest = 0;
    int found = 0;
    AN_CHECK_OK(an_store_get_latest_timestamp(s, "TST/USDT", "1m", &latest, &found, &err), err);
    AN_CHECK_INT(found, 1);
    AN_CHECK_INT(latest, start + 10049LL * 60000);
    AN_CHECK_OK(an_store_get_latest_timestamp(s, "NONE/USDT", "1m", &latest, &found, &err), err);
    AN_CHECK_INT(found, 0);
    AN_CHECK_OK(an_store_get_latest_timestamp(s, "TST/USDT", "5m", &latest, &found, &err), err);
    AN_CHECK_INT(found, 0);
    an_candles_free(&in);
    an_candles_free(&got);
    an_candles_free(&more);
    an_candles_free(&mixed);
    an_store_close(s);
}

/* n_ts times x 3 names from time index t0 on, time-major (as the engine
 * sends them); value = f(time index, name) + bump where i % 10 == 0 */
static an_indicator_batch ind_rows(int64_t start, int t0, int n_ts, double bump)
{
    static const char *const names[3] = {"sma_20", "ema_12", "rsi_14"};
    size_t n = (size_t)n_ts * 3;
    int64_t *ts = malloc(n * sizeof *ts);
    int *idx = malloc(n * sizeof *idx);
    double *val = malloc(n * sizeof *val);
    for (int i = 0; i < n_ts; i++)
        for (int k = 0; k < 3; k++) {
            size_t r = (size_t)i * 3 + (size_t)k;
            int t = t0 + i;
            ts[r] = start + (int64_t)t * 60000;
            idx[r] = k;
            val[r] = 100.0 + t * 0.25 + k * 1000.0 + (t % 10 == 0 ? bump : 0.0);
        }
    return (an_indicator_batch){names, 3, ts, idx, val, n};
}

static void ind_rows_free(an_indicator_batch *b)
{
    free((void *)b->ts);
    free((void *)b->name_idx);
    free((void *)b->value);
}

/* Indicator writes whose key range is partly stored, partly empty: on the
 * PostgreSQL backends the write goes in batches of 50,000 rows, so the
 * second write below has one batch over stored and new rows (the upsert)
 * and one over new rows only (binary COPY on PostgreSQL, the plain insert on
 * the TimescaleDB test server); every row reads back with its last value and
 * the counts say exactly what changed. */
static void test_indicator_writes_mixed(void)
{
    an_err err = {0};
    an_store *s = open_store();
    const int64_t start = 1704067200000LL;
    an_upsert_counts u;
    /* times [0, 12000): a first write into nothing */
    an_indicator_batch first = ind_rows(start, 0, 12000, 0.0);
    AN_CHECK_OK(an_store_upsert_indicators(s, "IND/USDT", "1m", &first, &u, &err), err);
    AN_CHECK_INT(u.inserted, 36000);
    AN_CHECK_INT(u.updated + u.unchanged, 0);
    /* times [8000, 28000): 4,000 stored (every tenth value changed), 16,000 new */
    an_indicator_batch second = ind_rows(start, 8000, 20000, 0.5);
    AN_CHECK_OK(an_store_upsert_indicators(s, "IND/USDT", "1m", &second, &u, &err), err);
    AN_CHECK_INT(u.inserted, 16000 * 3);
    AN_CHECK_INT(u.updated, 400 * 3);
    AN_CHECK_INT(u.unchanged, 3600 * 3);
    /* the same rows again: nothing changes */
    AN_CHECK_OK(an_store_upsert_indicators(s, "IND/USDT", "1m", &second, &u, &err), err);
    AN_CHECK_INT(u.inserted + u.updated, 0);
    AN_CHECK_INT(u.unchanged, 20000 * 3);
    /* what is stored: times [0, 8000) from the first write, the rest from the second */
    an_indicator_points got = {0};
    an_query all = an_query_all();
    AN_CHECK_OK(an_store_get_indicators(s, "IND/USDT", "1m", NULL, &all, &got, &err), err);
    AN_CHECK_INT(got.n, 28000 * 3);
    static const char *const order[3] = {"ema_12", "rsi_14", "sma_20"}; /* by name */
    static const int name_k[3] = {1, 2, 0};
    size_t wrong = 0;
    for (size_t r = 0; r < got.n && got.n == 28000 * 3; r++) {
        int n = (int)(r / 28000), t = (int)(r % 28000);
        double want = 100.0 + t * 0.25 + name_k[n] * 1000.0 + (t >= 8000 && t % 10 == 0 ? 0.5 : 0);
        wrong += got.v[r].ts != start + (int64_t)t * 60000 ||
                 strcmp(got.v[r].name, order[n]) != 0 || got.v[r].value != want;
    }
    AN_CHECK_INT(wrong, 0);
    an_indicator_points_free(&got);
    /* a name that reads as NULL in an array literal is still a name */
    static const char *const null_name[1] = {"null"};
    int64_t t1 = start;
    int i0 = 0;
    double v1 = 1.5;
    an_indicator_batch one = {null_name, 1, &t1, &i0, &v1, 1};
    AN_CHECK_OK(an_store_upsert_indicators(s, "IND/USDT", "1m", &one, &u, &err), err);
    AN_CHECK_INT(u.inserted, 1);
    AN_CHECK_OK(an_store_get_indicators(s, "IND/USDT", "1m", "null", &all, &got, &err), err);
    AN_CHECK(got.n == 1 && got.v[0].value == 1.5);
    an_indicator_points_free(&got);
    ind_rows_free(&first);
    ind_rows_free(&second);
    an_store_close(s);
}

/* The value stored for (symbol, tf, name, ts), or -1 when none is. */
static double stored_value(an_store *s, const char *symbol, const char *tf, const char *name,
                           int64_t ts)
{
    an_err err = {0};
    an_indicator_points got = {0};
    an_query q = an_query_all();
    q.start_ms = ts;
    q.end_ms = ts + 1;
    double v = -1;
    if (an_store_get_indicators(s, symbol, tf, name, &q, &got, &err) == AN_OK && got.n == 1)
        v = got.v[0].value;
    an_indicator_points_free(&got);
    return v;
}

/* Many series' indicator rows in one write (the live path's closes): every
 * row reads back under its own series, a second write updates the rows it
 * repeats and adds the new ones, and a batch with one bad row writes
 * nothing at all. */
static void test_indicator_writes_many(void)
{
    an_err err = {0};
    an_store *s = open_store();
    const int64_t t0 = 1704067200000LL;
    static const char *const names[2] = {"sma_20", "null"};
    int64_t ts[4] = {t0, t0, t0 + 60000, t0 + 60000};
    int idx[4] = {0, 1, 0, 1};
    double a[4] = {1.25, 2.5, 3.75, 0.1}, b[4] = {10, 20, 30, 40}, c[2] = {7, 8};
    static const char *const other[2] = {"rsi_14", "null"}; /* a series' own names */
    double d[2] = {5, 6};
    an_series_indicators v[4] = {
        {"MANYA/USDT", "1m", {names, 2, ts, idx, a, 4}},
        {"MANYB/USDT", "1m", {names, 2, ts, idx, b, 4}},
        {"MANYC/USDT", "1m", {other, 2, ts, idx, d, 2}},
        {"MANYA/USDT", "5m", {names, 2, ts, idx, c, 2}},
    };
    AN_CHECK_OK(an_store_upsert_indicators_many(s, v, 4, &err), err);
    AN_CHECK(stored_value(s, "MANYC/USDT", "1m", "rsi_14", t0) == 5);
    AN_CHECK(stored_value(s, "MANYC/USDT", "1m", "null", t0) == 6);
    AN_CHECK(stored_value(s, "MANYC/USDT", "1m", "sma_20", t0) == -1);
    for (int i = 0; i < 4; i++) {
        AN_CHECK(stored_value(s, "MANYA/USDT", "1m", names[idx[i]], ts[i]) == a[i]);
        AN_CHECK(stored_value(s, "MANYB/USDT", "1m", names[idx[i]], ts[i]) == b[i]);
    }
    AN_CHECK(stored_value(s, "MANYA/USDT", "5m", "sma_20", t0) == 7);
    AN_CHECK(stored_value(s, "MANYA/USDT", "5m", "null", t0) == 8);
    AN_CHECK(stored_value(s, "MANYA/USDT", "5m", "sma_20", t0 + 60000) == -1);
    /* the last two rows of A again (one changed) and one new time */
    int64_t ts2[3] = {t0 + 60000, t0 + 60000, t0 + 120000};
    int idx2[3] = {0, 1, 0};
    double a2[3] = {3.75, 0.30000000000000004, 5};
    an_series_indicators again = {"MANYA/USDT", "1m", {names, 2, ts2, idx2, a2, 3}};
    AN_CHECK_OK(an_store_upsert_indicators_many(s, &again, 1, &err), err);
    AN_CHECK(stored_value(s, "MANYA/USDT", "1m", "null", t0 + 60000) == 0.30000000000000004);
    AN_CHECK(stored_value(s, "MANYA/USDT", "1m", "sma_20", t0 + 120000) == 5);
    AN_CHECK(stored_value(s, "MANYA/USDT", "1m", "sma_20", t0) == 1.25);
    /* one value not finite in the second series: nothing of the first either */
    double bad[1] = {NAN}, good[1] = {99};
    int64_t t3[1] = {t0 + 180000};
    int i3[1] = {0};
    an_series_indicators refused[2] = {{"MANYA/USDT", "1m", {names, 2, t3, i3, good, 1}},
                                       {"MANYB/USDT", "1m", {names, 2, t3, i3, bad, 1}}};
    AN_CHECK(an_store_upsert_indicators_many(s, refused, 2, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "not finite") != NULL);
    AN_CHECK(stored_value(s, "MANYA/USDT", "1m", "sma_20", t0 + 180000) == -1);
    an_store_close(s);
}

static void test_range_queries(void)
{
    an_err err = {0};
    an_store *s = open_store();
    an_candles all = {0}, got = {0};
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", NULL, &all, &err), err);
    AN_CHECK_INT(all.n, 10050);
    if (all.n < 10050)
        goto out;
    /* [start, end) */
    an_query q = an_query_all();
    q.start_ms = all.v[100].ts;
    q.end_ms = all.v[200].ts;
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", &q, &got, &err), err);
    AN_CHECK_INT(got.n, 100);
    AN_CHECK(got.n == 100 && same_candle(&got.v[0], &all.v[100]) &&
             same_candle(&got.v[99], &all.v[199]));
    an_candles_free(&got);
    /* newest first with a limit keeps the newest */
    q = an_query_all();
    q.descending = 1;
    q.limit = 500;
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", &q, &got, &err), err);
    AN_CHECK_INT(got.n, 500);
    AN_CHECK(got.n == 500 && same_candle(&got.v[0], &all.v[10049]) &&
             same_candle(&got.v[499], &all.v[10049 - 499]));
    an_candles_free(&got);
    /* oldest first with a limit keeps the oldest; start bound inclusive */
    q = an_query_all();
    q.start_ms = all.v[5].ts;
    q.limit = 3;
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", &q, &got, &err), err);
    AN_CHECK_INT(got.n, 3);
    AN_CHECK(got.n == 3 && got.v[0].ts == all.v[5].ts && got.v[2].ts == all.v[7].ts);
    an_candles_free(&got);
    /* a range between candles, and one past the end: empty */
    q = an_query_all();
    q.start_ms = all.v[10].ts + 1;
    q.end_ms = all.v[11].ts;
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", &q, &got, &err), err);
    AN_CHECK_INT(got.n, 0);
    q.start_ms = all.v[10049].ts + 60000;
    q.end_ms = INT64_MAX;
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", &q, &got, &err), err);
    AN_CHECK_INT(got.n, 0);
    /* another symbol or timeframe sees nothing */
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/BTC", "1m", NULL, &got, &err), err);
    AN_CHECK_INT(got.n, 0);
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1h", NULL, &got, &err), err);
    AN_CHECK_INT(got.n, 0);
    /* end before start is refused */
    q.start_ms = 1000;
    q.end_ms = 0;
    AN_CHECK(an_store_get_ohlc(s, "TST/USDT", "1m", &q, &got, &err) == AN_ERR_INVALID);
out:
    an_candles_free(&all);
    an_candles_free(&got);
    an_store_close(s);
}

/* The oracle for the rollups: a GROUP BY in C over the same candles. */
static void group_by(const an_candles *in, int64_t bucket, an_candles *out)
{
    for (size_t i = 0; i < in->n; i++) {
        int64_t b = in->v[i].ts / bucket * bucket;
        an_candle *last = out->n ? &out->v[out->n - 1] : NULL;
        if (!last || last->ts != b) {
            an_candle c = in->v[i];
            c.ts = b;
            an_candles_push(out, &c, NULL);
        } else {
            if (in->v[i].high > last->high)
                last->high = in->v[i].high;
            if (in->v[i].low < last->low)
                last->low = in->v[i].low;
            last->close = in->v[i].close;
            last->volume += in->v[i].volume;
        }
    }
}

static int near(double a, double b)
{
    return a == b || fabs(a - b) <= 1e-9 * fmax(fabs(a), fabs(b));
}

static void check_rollup(an_store *s, const char *symbol, const an_candles *src, const char *tf,
                         int64_t bucket)
{
    an_err err = {0};
    an_candles want = {0}, got = {0};
    group_by(src, bucket, &want);
    AN_CHECK_OK(an_store_get_rollup(s, symbol, tf, NULL, &got, &err), err);
    AN_CHECK_MSG(got.n == want.n, "%s %s rollup: %zu rows, want %zu", symbol, tf, got.n, want.n);
    size_t bad = 0;
    for (size_t i = 0; i < got.n && i < want.n; i++) {
        const an_candle *g = &got.v[i], *w = &want.v[i];
        if (!(g->ts == w->ts && g->open == w->open && g->high == w->high && g->low == w->low &&
              g->close == w->close && near(g->volume, w->volume))) {
            if (bad++ < 3)
                fprintf(stderr,
                        "  %s %s bucket %" PRId64 ": got %.10g %.10g %.10g %.10g %.10g"
                        " want %.10g %.10g %.10g %.10g %.10g\n",
                        symbol, tf, w->ts, g->open, g->high, g->low, g->close, g->volume, w->open,
                        w->high, w->low, w->close, w->volume);
        }
    }
    AN_CHECK_INT(bad, 0);
    an_candles_free(&want);
    an_candles_free(&got);
}

static void test_rollups_real_candles(void)
{
    an_err err = {0};
    an_store *s = open_store();
    char path[512];
    snprintf(path, sizeof path, "%s/BTC_USDT-1m.json", an_test_data_dir());
    an_import_result r = {0};
    AN_CHECK_OK(an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    AN_CHECK_INT(r.candles.n, 42915);
    an_upsert_counts c;
    AN_CHECK_OK(an_store_insert_ohlc(s, r.symbol, r.timeframe, r.candles.v, r.candles.n, &c, &err),
                err);
    AN_CHECK_INT(c.inserted, 42915);
    AN_CHECK_OK(an_store_refresh_rollups(s, INT64_MIN, INT64_MAX, &err), err);
    check_rollup(s, "BTC/USDT", &r.candles, "1h", 3600000LL);
    check_rollup(s, "BTC/USDT", &r.candles, "1d", 86400000LL);
    /* the synthetic series of the other tests rolls up too */
    an_candles tst = {0};
    AN_CHECK_OK(an_store_get_ohlc(s, "TST/USDT", "1m", NULL, &tst, &err), err);
    check_rollup(s, "TST/USDT", &tst, "1h", 3600000LL);
    /* a candle that changes moves its buckets after a refresh */
    an_candle last = r.candles.v[r.candles.n - 1];
    last.high *= 1.01;
    last.close = last.high;
    AN_CHECK_OK(an_store_insert_ohlc(s, "BTC/USDT", "1m", &last, 1, &c, &err), err);
    AN_CHECK_INT(c.updated, 1);
    r.candles.v[r.candles.n - 1] = last;
    AN_CHECK_OK(an_store_refresh_rollups(s, last.ts / 86400000LL * 86400000LL,
                                         last.ts / 86400000LL * 86400000LL + 86400000LL, &err),
                err);
    check_rollup(s, "BTC/USDT", &r.candles, "1h", 3600000LL);
    check_rollup(s, "BTC/USDT", &r.candles, "1d", 86400000LL);
    an_candles_free(&tst);
    an_import_result_free(&r);
    an_store_close(s);
}

static void test_list_series(void)
{
    an_err err = {0};
    an_store *s = open_store();
    an_series_info *list = NULL;
    size_t n = 0;
    AN_CHECK_OK(an_store_list_series(s, &list, &n, &err), err);
    AN_CHECK_INT(n, 2);
    if (n == 2) {
        AN_CHECK_STR(list[0].symbol, "BTC/USDT");
        AN_CHECK_STR(list[0].timeframe, "1m");
        AN_CHECK_INT(list[0].rows, 42915);
        AN_CHECK_INT(list[0].first_ms, 1618951320000LL);
        AN_CHECK_STR(list[1].symbol, "TST/USDT");
        AN_CHECK_INT(list[1].rows, 10050);
    }
    free(list);
    an_store_close(s);
}

static int64_t count_rows(an_store *s)
{
    an_err err = {0};
    an_series_info *list = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (an_store_list_series(s, &list, &n, &err) != AN_OK)
        return -1;
    for (size_t i = 0; i < n; i++)
        total += list[i].rows;
    free(list);
    return total;
}

static void expect_refused(an_store *s, const char *symbol, const char *tf, const an_candle *v,
                           size_t n, const char *needle)
{
    an_err err = {0};
    an_upsert_counts c;
    an_code rc = an_store_insert_ohlc(s, symbol, tf, v, n, &c, &err);
    AN_CHECK_MSG(rc == AN_ERR_INVALID, "want invalid for '%s', got %s", needle, an_code_str(rc));
    AN_CHECK_MSG(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    AN_CHECK_INT(c.inserted + c.updated, 0);
}

static void test_invalid_input_refused(void)
{
    an_store *s = open_store();
    int64_t before = count_rows(s);
    an_candles v = {0};
    make_series(&v, 1600000020000LL / 60000 * 60000, 20000, 3);
    expect_refused(s, "btcusdt", "1m", v.v, v.n, "invalid symbol");
    expect_refused(s, "BTC/USDT", "7m", v.v, v.n, "unknown timeframe");
    an_candle keep = v.v[15000];
    v.v[15000].high = v.v[15000].low - 1;
    expect_refused(s, "NEW/USDT", "1m", v.v, v.n, "row 15000");
    v.v[15000] = keep;
    v.v[17000].ts += 1000;
    expect_refused(s, "NEW/USDT", "1m", v.v, v.n, "not aligned");
    v.v[17000].ts -= 1000;
    v.v[5].ts = v.v[4].ts;
    expect_refused(s, "NEW/USDT", "1m", v.v, v.n, "duplicate");
    v.v[5].ts = v.v[4].ts + 60000;
    v.v[7].close = NAN;
    expect_refused(s, "NEW/USDT", "1m", v.v, v.n, "close is not a finite number");
    v.v[7].close = v.v[7].open;
    v.v[9].volume = -1;
    expect_refused(s, "NEW/USDT", "1m", v.v, v.n, "volume must not be negative");
    v.v[9].volume = 1;
    v.v[11].open = 0;
    expect_refused(s, "NEW/USDT", "1m", v.v, v.n, "open must be positive");
    AN_CHECK_INT(count_rows(s), before);
    /* after all that, the good batch goes in whole */
    v.v[11].open = v.v[11].low;
    an_err err = {0};
    an_upsert_counts c;
    AN_CHECK_OK(an_store_insert_ohlc(s, "NEW/USDT", "1m", v.v, v.n, &c, &err), err);
    AN_CHECK_INT(c.inserted, 20000);
    AN_CHECK_INT(count_rows(s), before + 20000);
    /* bad reads are refused too */
    an_candles got = {0};
    AN_CHECK(an_store_get_ohlc(s, "BTC-USDT", "1m", NULL, &got, &err) == AN_ERR_INVALID);
    AN_CHECK(an_store_get_rollup(s, "BTC/USDT", "4h", NULL, &got, &err) == AN_ERR_INVALID);
    an_candles_free(&v);
    an_store_close(s);
}

/* One value from the test database (PostgreSQL backends only). */
static char *pg_value(const char *sql)
{
    PGconn *c = PQconnectdb(B.conninfo);
    char *v = NULL;
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        v = strdup(PQgetvalue(r, 0, 0));
    else
        fprintf(stderr, "  query failed: %s: %s\n", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return v ? v : strdup("(error)");
}

static void check_value(const char *sql, const char *want)
{
    char *v = pg_value(sql);
    AN_CHECK_MSG(strcmp(v, want) == 0, "%s -> '%s', want '%s'", sql, v, want);
    free(v);
}

/* TimescaleDB: hypertables, real-time continuous aggregates, the
 * compression policy (on by default) and the retention policy (off by
 * default, configurable); the policy jobs really run (CALL run_job: the test
 * server has no background worker). Plain PostgreSQL: none of that. */
static void test_timescale_objects_and_policies(void)
{
    if (strcmp(backend, "duckdb") == 0)
        return;
    if (strcmp(backend, "postgres") == 0) {
        /* schema v5: tables each write keeps current over the buckets it touched */
        check_value("SELECT relkind FROM pg_class WHERE oid = 'trading.ohlc_1h'::regclass", "r");
        check_value("SELECT relkind FROM pg_class WHERE oid = 'trading.ohlc_data'::regclass", "r");
        return;
    }
    check_value("SELECT string_agg(hypertable_name, ',' ORDER BY hypertable_name) FROM "
                "timescaledb_information.hypertables WHERE hypertable_schema IN ('trading', "
                "'analytics')",
                "indicators,ohlc_data");
    check_value("SELECT string_agg(view_name || ':' || materialized_only, ',' ORDER BY view_name)"
                " FROM timescaledb_information.continuous_aggregates",
                "ohlc_1d:false,ohlc_1h:false");
    check_value("SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = "
                "'policy_refresh_continuous_aggregate'",
                "2");
    check_value("SELECT config->>'compress_after' FROM timescaledb_information.jobs WHERE "
                "proc_name = 'policy_compression' AND hypertable_name = 'ohlc_data'",
                "30 days");
    check_value("SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = "
                "'policy_retention'",
                "0");
    /* run the compression job: the 2021 candles are older than 30 days */
    char *job = pg_value("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = "
                         "'policy_compression' AND hypertable_name = 'ohlc_data'");
    char sql[128];
    snprintf(sql, sizeof sql, "CALL run_job(%s)", job);
    free(job);
    PGconn *c = PQconnectdb(B.conninfo);
    PGresult *r = PQexec(c, sql);
    AN_CHECK_MSG(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    char *compressed = pg_value("SELECT count(*) FROM timescaledb_information.chunks WHERE "
                                "hypertable_name = 'ohlc_data' AND is_compressed");
    AN_CHECK_MSG(atoi(compressed) > 0, "compressed chunks: %s", compressed);
    free(compressed);
    /* compressed history still reads and upserts correctly */
    an_err err = {0};
    an_store *s = open_store();
    an_candles got = {0};
    an_query q = an_query_all();
    AN_CHECK_OK(an_store_get_ohlc(s, "BTC/USDT", "1m", &q, &got, &err), err);
    AN_CHECK_INT(got.n, 42915);
    if (got.n > 100) {
        an_candle k = got.v[100];
        k.volume += 1;
        an_upsert_counts cnt;
        AN_CHECK_OK(an_store_insert_ohlc(s, "BTC/USDT", "1m", &k, 1, &cnt, &err), err);
        AN_CHECK_INT(cnt.updated, 1);
        AN_CHECK_OK(an_store_insert_ohlc(s, "BTC/USDT", "1m", &k, 1, &cnt, &err), err);
        AN_CHECK_INT(cnt.unchanged, 1);
    }
    an_candles_free(&got);
    an_store_close(s);
    /* retention: configurable, applied by migrate, and removed again */
    retention_setting = "3650 days";
    s = open_store();
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    an_store_close(s);
    check_value("SELECT config->>'drop_after' FROM timescaledb_information.jobs WHERE "
                "proc_name = 'policy_retention'",
                "3650 days");
    retention_setting = "";
    s = open_store();
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    an_store_close(s);
    check_value("SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = "
                "'policy_retention'",
                "0");
}

int main(int argc, char **argv)
{
    int rc = an_test_backend_init(&B, argc, argv, "store");
    if (rc != 0)
        return rc;
    backend = B.name;
    an_test_backend_reset(&B);
    AN_RUN(test_migrate_twice);
    AN_RUN(test_insert_twice_and_open_candle);
    AN_RUN(test_range_queries);
    AN_RUN(test_indicator_writes_mixed);
    AN_RUN(test_indicator_writes_many);
    AN_RUN(test_rollups_real_candles);
    AN_RUN(test_list_series);
    AN_RUN(test_invalid_input_refused);
    AN_RUN(test_timescale_objects_and_policies);
    an_test_backend_done(&B);
    return AN_TEST_DONE();
}
