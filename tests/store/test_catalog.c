/*
 * test_catalog.c - the series catalog (schema v5) and the rollups a write
 * keeps current, run once per backend:
 *   test_catalog duckdb | postgres | timescaledb
 * After each of a sequence of writes (a fresh series, an overlapping upsert,
 * an unchanged rewrite, older history, other series) and range deletes (the
 * middle, the head, a whole series, nothing), the catalog must equal what
 * the table holds (count, first and last time read back through the store;
 * the newest time the health check and ingestion ask for),
 * and the 1h/1d rollups must equal buckets recomputed here from the stored
 * 1m candles. The migration's fill is checked by dropping the catalog (and
 * on plain PostgreSQL the rollup tables) and migrating again. On the
 * PostgreSQL backends, EXPLAIN shows that listing the series and the
 * catalog upsert never touch ohlc_data, and that the write's range check,
 * the catalog's update after a delete and the rollup recomputation use an
 * index (no Seq Scan even with
 * enable_seqscan off, which only an index that fits can avoid). A raw
 * TRUNCATE leaves the catalog true (schema v7); the process's own writes
 * reach its hooks, and on PostgreSQL another process hears them through
 * LISTEN, also after its connection was killed.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "backend.h"
#include "series.h"
#include "store/duckdb/duck_internal.h"
#include "store/pg/pg_internal.h"
#include "store/store.h"
#include "test.h"

static an_test_backend B;
static const char *backend; /* B.name */

#define T0 1704067200000LL /* 2024-01-01 */
#define MIN 60000LL

/* not migrated: the tests migrate themselves (one checks what it applies) */
static an_store *open_store(void)
{
    return an_test_backend_open_raw(&B, 2);
}

/* Runs sql on the backend outside the store's API; 0 on success. */
static an_code duck_sql_job(duck_store *ds, void *ctx, an_err *err)
{
    return an_duck_exec_locked(ds, ctx, "test sql", err);
}

static an_code pg_sql_job(PGconn *c, void *ctx, an_err *err)
{
    return an_pg_exec_cmd(c, ctx, "test sql", err);
}

static int sql(an_store *s, const char *q)
{
    an_err err = {0};
    if (strcmp(backend, "duckdb") == 0) {
        an_code rc = an_duck_with_lock(s->impl, duck_sql_job, (void *)q, &err);
        if (rc != AN_OK)
            fprintf(stderr, "  sql failed: %s: %s\n", q, err.msg);
        return rc == AN_OK ? 0 : -1;
    }
    /* on the store's own pool: the TimescaleDB test server (PGlite) serves
     * one connection at a time */
    an_code rc = an_pg_with_conn(s->impl, pg_sql_job, (void *)q, &err);
    if (rc != AN_OK)
        fprintf(stderr, "  sql failed: %s: %s\n", q, err.msg);
    return rc == AN_OK ? 0 : -1;
}

static const struct {
    const char *symbol, *tf;
} SERIES[] = {{"CAT/A", "1m"}, {"CAT/A", "1h"}, {"CAT/B", "1m"}, {"CAT/C", "1m"}};
#define NSERIES (sizeof SERIES / sizeof SERIES[0])

static void read_all(an_store *s, const char *symbol, const char *tf, an_candles *out)
{
    an_err err = {0};
    an_query q = {.start_ms = INT64_MIN, .end_ms = INT64_MAX};
    out->n = 0;
    AN_CHECK_OK(an_store_get_ohlc(s, symbol, tf, &q, out, &err), err);
}

/* The catalog equals the table, series by series, and lists nothing else. */
static void check_catalog(an_store *s, const char *when)
{
    an_err err = {0};
    an_series_info *list = NULL;
    size_t n = 0;
    AN_CHECK_OK(an_store_list_series(s, &list, &n, &err), err);
    size_t nonempty = 0;
    an_candles c = {0};
    for (size_t k = 0; k < NSERIES; k++) {
        read_all(s, SERIES[k].symbol, SERIES[k].tf, &c);
        const an_series_info *si = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(list[i].symbol, SERIES[k].symbol) == 0 &&
                strcmp(list[i].timeframe, SERIES[k].tf) == 0)
                si = &list[i];
        nonempty += c.n > 0;
        int64_t latest = 0;
        int found = 0;
        AN_CHECK_OK(
            an_store_get_latest_timestamp(s, SERIES[k].symbol, SERIES[k].tf, &latest, &found, &err),
            err);
        AN_CHECK_MSG(found == (c.n > 0) && (!found || latest == c.v[c.n - 1].ts),
                     "%s: %s %s: the newest time %lld (found %d), the table's %lld", when,
                     SERIES[k].symbol, SERIES[k].tf, (long long)latest, found,
                     c.n ? (long long)c.v[c.n - 1].ts : 0LL);
        if (c.n == 0) {
            AN_CHECK_MSG(!si, "%s: %s %s is empty but listed", when, SERIES[k].symbol,
                         SERIES[k].tf);
            continue;
        }
        AN_CHECK_MSG(si && si->rows == (int64_t)c.n && si->first_ms == c.v[0].ts &&
                         si->last_ms == c.v[c.n - 1].ts,
                     "%s: %s %s: catalog (%lld rows, %lld..%lld), table (%zu rows, %lld..%lld)",
                     when, SERIES[k].symbol, SERIES[k].tf, si ? (long long)si->rows : -1LL,
                     si ? (long long)si->first_ms : 0LL, si ? (long long)si->last_ms : 0LL, c.n,
                     (long long)c.v[0].ts, (long long)c.v[c.n - 1].ts);
    }
    AN_CHECK_MSG(n == nonempty, "%s: %zu series listed, %zu stored", when, n, nonempty);
    an_candles_free(&c);
    free(list);
}

/* The rollups of sym equal buckets of width w recomputed from its 1m candles. */
static void check_rollup(an_store *s, const char *sym, const char *rollup, int64_t w,
                         const char *when)
{
    an_err err = {0};
    an_candles m = {0}, r = {0}, want = {0};
    read_all(s, sym, "1m", &m);
    for (size_t i = 0; i < m.n; i++) {
        const an_candle *k = &m.v[i];
        int64_t b = k->ts / w * w;
        an_candle *last = want.n ? &want.v[want.n - 1] : NULL;
        if (last && last->ts == b) {
            last->high = k->high > last->high ? k->high : last->high;
            last->low = k->low < last->low ? k->low : last->low;
            last->close = k->close;
            last->volume += k->volume;
        } else {
            an_candle nb = {b, k->open, k->high, k->low, k->close, k->volume, 0};
            an_candles_push(&want, &nb, &err);
        }
    }
    an_query q = {.start_ms = INT64_MIN, .end_ms = INT64_MAX};
    AN_CHECK_OK(an_store_get_rollup(s, sym, rollup, &q, &r, &err), err);
    int same = r.n == want.n;
    for (size_t i = 0; same && i < r.n; i++) {
        const an_candle *a = &r.v[i], *b = &want.v[i];
        same = a->ts == b->ts && a->open == b->open && a->high == b->high && a->low == b->low &&
               a->close == b->close && fabs(a->volume - b->volume) <= 1e-9 * fabs(b->volume);
        if (!same)
            fprintf(stderr, "  %s %s %s bucket %zu (%lld) differs\n", when, sym, rollup, i,
                    (long long)b->ts);
    }
    AN_CHECK_MSG(same, "%s: %s %s has %zu buckets, recomputed %zu", when, sym, rollup, r.n, want.n);
    an_candles_free(&m);
    an_candles_free(&r);
    an_candles_free(&want);
}

/* The catalog, and the rollups where writes maintain them (plain
 * PostgreSQL's tables; DuckDB's views). TimescaleDB's continuous aggregates
 * are refreshed by the callers and checked once at the end (final = 1):
 * the test server is slow. */
static void check_all(an_store *s, const char *when, int final)
{
    check_catalog(s, when);
    if (strcmp(backend, "timescaledb") == 0) {
        if (!final)
            return;
        an_err err = {0};
        AN_CHECK_OK(an_store_refresh_rollups(s, INT64_MIN, INT64_MAX, &err), err);
    }
    /* every 1m series: the live flush recomputes several series' buckets at once */
    static const char *const SYMS[] = {"CAT/A", "CAT/B", "CAT/C"};
    for (int i = 0; i < 3; i++) {
        check_rollup(s, SYMS[i], "1h", 3600000LL, when);
        check_rollup(s, SYMS[i], "1d", 86400000LL, when);
    }
}

static an_upsert_counts put(an_store *s, const char *symbol, const char *tf, int64_t start,
                            size_t n, unsigned seed)
{
    an_candles v = {0};
    an_test_series spec = an_test_series_1m(start, seed);
    if (strcmp(tf, "1h") == 0)
        spec.step_ms = 3600000LL;
    an_test_series_make(&v, n, &spec);
    an_upsert_counts c = {0};
    an_err err = {0};
    AN_CHECK_OK(an_store_insert_ohlc(s, symbol, tf, v.v, v.n, &c, &err), err);
    an_candles_free(&v);
    return c;
}

static void del(an_store *s, const char *symbol, const char *tf, int64_t from, int64_t to)
{
    an_err err = {0};
    AN_CHECK_OK(an_store_delete_range(s, "ohlc_data", symbol, tf, from, to, &err), err);
}

static void test_catalog_follows_writes(void)
{
    an_store *s = open_store();
    an_err err = {0};
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    check_all(s, "empty", 0);
    an_upsert_counts c = put(s, "CAT/A", "1m", T0, 3000, 1);
    AN_CHECK_INT(c.inserted, 3000);
    check_all(s, "a fresh series", 0);
    c = put(s, "CAT/A", "1m", T0 + 2500 * MIN, 1000, 2);
    AN_CHECK_INT(c.inserted, 500);
    check_all(s, "an overlapping upsert", 0);
    c = put(s, "CAT/A", "1m", T0 + 2500 * MIN, 1000, 2);
    AN_CHECK_INT(c.inserted + c.updated, 0);
    check_all(s, "an unchanged rewrite", 0);
    put(s, "CAT/A", "1m", T0 - 1000 * MIN, 1000, 3);
    check_all(s, "older history", 0);
    put(s, "CAT/B", "1m", T0, 500, 4);
    put(s, "CAT/A", "1h", T0, 100, 5);
    check_all(s, "other series", 0);
    del(s, "CAT/A", "1m", T0 + 100 * MIN, T0 + 200 * MIN);
    check_all(s, "a delete in the middle", 0);
    del(s, "CAT/A", "1m", T0 - 1000 * MIN, T0 + 30 * MIN);
    check_all(s, "a delete of the head", 0);
    del(s, "CAT/A", "1m", T0 + 3400 * MIN, T0 + 4000 * MIN);
    check_all(s, "a delete of the tail", 0);
    del(s, "CAT/B", "1m", T0 - 1, T0 + 1000 * MIN);
    check_all(s, "a delete of a whole series", 0);
    del(s, "CAT/A", "1h", T0 + 1000 * 3600000LL, T0 + 2000 * 3600000LL);
    check_all(s, "a delete of nothing", 0);
    put(s, "CAT/B", "1m", T0 + 10 * MIN, 20, 6);
    check_all(s, "a series written again", 0);
    /* the live path's flush: open candles of several series in one write
     * (one statement on PostgreSQL/TimescaleDB): a new series, a candle after
     * the end of another, a changed candle and an unchanged one */
    an_candles cur = {0};
    read_all(s, "CAT/A", "1m", &cur);
    AN_CHECK(cur.n > 2);
    if (cur.n > 2) {
        an_candle last = cur.v[cur.n - 1], changed = cur.v[cur.n - 2];
        changed.close = changed.low;
        an_candle next = last;
        next.ts += MIN;
        an_series_candle live[] = {{"CAT/C", "1m", last},
                                   {"CAT/A", "1m", next},
                                   {"CAT/A", "1m", changed},
                                   {"CAT/B", "1m", cur.v[0]}};
        live[3].c.ts = T0 + 10 * MIN; /* CAT/B's first candle time, new values */
        AN_CHECK_OK(an_store_upsert_candles(s, live, 4, &err), err);
    }
    an_candles_free(&cur);
    check_all(s, "a live flush of several series", 1);

    /* the migration fills the catalog (and plain PostgreSQL's rollup tables)
     * from what is stored */
    int bad = sql(s, "DROP TABLE trading.ohlc_series");
    bad |= sql(s, "DELETE FROM autonama.schema_version WHERE version >= 6");
    if (strcmp(backend, "duckdb") != 0)
        bad |= sql(s, "DROP TRIGGER ohlc_data_truncate ON trading.ohlc_data");
    if (strcmp(backend, "postgres") == 0)
        bad |= sql(s, "DROP TABLE trading.ohlc_1h; DROP TABLE trading.ohlc_1d;"
                      " CREATE MATERIALIZED VIEW trading.ohlc_1h AS SELECT 1 AS x;"
                      " CREATE MATERIALIZED VIEW trading.ohlc_1d AS SELECT 1 AS x");
    AN_CHECK_INT(bad, 0);
    an_store_close(s);
    s = open_store();
    int applied = 0;
    AN_CHECK_OK(an_store_migrate(s, &applied, &err), err);
    AN_CHECK_INT(applied, 2);
    check_all(s, "after migrating to versions 6 and 7", 1);
    an_store_close(s);
}

/* ---- a raw TRUNCATE (schema v7) ------------------------------------------
 * PostgreSQL / TimescaleDB: a trigger empties the catalog (and plain
 * PostgreSQL's rollup tables) with the candles, also when the statement
 * truncates the catalog itself. DuckDB has no triggers: its v7 step
 * rebuilds the catalog from what is stored. */
static void test_truncate(void)
{
    an_store *s = open_store();
    an_err err = {0};
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    del(s, "PLAN/A", "1m", T0 - 1000 * 86400000LL, T0 + 1000 * 86400000LL); /* test_plans' */
    put(s, "CAT/A", "1m", T0, 300, 11);
    put(s, "CAT/B", "1m", T0, 100, 12);
    check_all(s, "before the truncate", 0);
    if (strcmp(backend, "duckdb") == 0) {
        AN_CHECK_INT(sql(s, "DELETE FROM trading.ohlc_data WHERE symbol = 'CAT/B'"), 0);
        AN_CHECK_INT(sql(s, "DELETE FROM autonama.schema_version WHERE version = 7"), 0);
        int applied = 0;
        AN_CHECK_OK(an_store_migrate(s, &applied, &err), err);
        AN_CHECK_INT(applied, 1);
        check_all(s, "a raw delete, then the v7 rebuild", 0);
        an_store_close(s);
        return;
    }
    AN_CHECK_INT(sql(s, "TRUNCATE trading.ohlc_data"), 0);
    check_all(s, "a raw TRUNCATE of ohlc_data", 0);
    put(s, "CAT/A", "1m", T0, 300, 13);
    check_all(s, "written after the truncate", 0);
    AN_CHECK_INT(sql(s, "TRUNCATE trading.ohlc_data, trading.ohlc_series"), 0);
    check_all(s, "a TRUNCATE of ohlc_data and the catalog together", 0);
    if (strcmp(backend, "postgres") == 0) {
        put(s, "CAT/A", "1m", T0, 300, 14);
        AN_CHECK_INT(sql(s, "TRUNCATE trading.ohlc_data, trading.ohlc_series, trading.ohlc_1h,"
                            " trading.ohlc_1d"),
                     0);
        check_all(s, "a TRUNCATE of ohlc_data, the catalog and the rollups", 0);
    }
    an_store_close(s);
}

/* ---- announcing writes (watch.c, pg/listen.c) ---------------------------- */

#define MAX_HEARD 64
static struct {
    pthread_mutex_t mu;
    an_store_change v[MAX_HEARD];
    int n;
} heard = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void hear(void *ctx, const an_store_change *ch)
{
    (void)ctx;
    pthread_mutex_lock(&heard.mu);
    if (heard.n < MAX_HEARD)
        heard.v[heard.n++] = *ch;
    pthread_mutex_unlock(&heard.mu);
}

static void heard_reset(void)
{
    pthread_mutex_lock(&heard.mu);
    heard.n = 0;
    pthread_mutex_unlock(&heard.mu);
}

/* Waits up to ms for a change of symbol ("" for "everything") over
 * [first, last] (first > last: any range); 1 when heard. */
static int heard_within(const char *symbol, int64_t first, int64_t last, int ms)
{
    for (int waited = 0;; waited += 10) {
        int got = 0;
        pthread_mutex_lock(&heard.mu);
        for (int i = 0; i < heard.n && !got; i++)
            got = strcmp(heard.v[i].symbol, symbol) == 0 &&
                  (first > last || (heard.v[i].first_ms == first && heard.v[i].last_ms == last));
        pthread_mutex_unlock(&heard.mu);
        if (got || waited >= ms)
            return got;
        usleep(10000);
    }
}

static int heard_count(void)
{
    pthread_mutex_lock(&heard.mu);
    int n = heard.n;
    pthread_mutex_unlock(&heard.mu);
    return n;
}

/* The process's own writes reach its hooks on every backend: a write that
 * changed rows and a delete, not an unchanged rewrite. */
static void test_local_hooks(void)
{
    an_store *s = open_store();
    an_err err = {0};
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    AN_CHECK_OK(an_store_watch_local(hear, NULL, &err), err);
    heard_reset();
    put(s, "HOOK/A", "1m", T0, 10, 21);
    AN_CHECK_MSG(heard_within("HOOK/A", T0, T0 + 9 * MIN, 0), "a write was not heard");
    heard_reset();
    put(s, "HOOK/A", "1m", T0, 10, 21);
    AN_CHECK_MSG(heard_count() == 0, "an unchanged rewrite was heard (%d)", heard_count());
    del(s, "HOOK/A", "1m", T0, T0 + 2 * MIN);
    AN_CHECK_MSG(heard_within("HOOK/A", T0, T0 + 2 * MIN, 0), "a delete was not heard");
    an_store_unwatch_local(hear, NULL);
    heard_reset();
    put(s, "HOOK/A", "1m", T0 + 100 * MIN, 5, 22);
    AN_CHECK_MSG(heard_count() == 0, "a hook removed was still called");
    an_store_close(s);
}

/* Another process's writes: on PostgreSQL the listener hears every write
 * at its commit (not its own handle's tagged flush), a raw TRUNCATE as "everything", and after its
 * connection is killed it reconnects and says "everything" again (what it missed is unknown).
 * DuckDB and the PGlite server: no listener, and no error. */
static void test_listener(void)
{
    an_store *s = open_store();
    an_err err = {0};
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    heard_reset();
    an_store_listener *l = NULL;
    AN_CHECK_OK(an_store_listen(s, hear, NULL, &l, &err), err);
    if (strcmp(backend, "postgres") != 0) {
        AN_CHECK_MSG(!l, "%s: a listener where none can work", backend);
        an_store_listener_stop(l);
        an_store_close(s);
        return;
    }
    an_store *writer = open_store(); /* the other process, as far as s knows */
    AN_CHECK_MSG(l, "no listener on PostgreSQL");
    AN_CHECK_MSG(heard_within("", 1, 0, 5000), "no \"everything\" on connecting");
    put(writer, "LSN/A", "1m", T0, 20, 31);
    AN_CHECK_MSG(heard_within("LSN/A", T0, T0 + 19 * MIN, 5000), "a write was not heard");
    /* the live path's flush of several series in one write: each one heard
     * with its own range, the unchanged one not at all */
    heard_reset();
    an_candle c0 = {T0 + 5 * MIN, 10, 12, 9, 11, 1, 0}, c1 = {T0 + 7 * MIN, 20, 22, 19, 21, 2, 0};
    an_candles a0 = {0};
    read_all(writer, "LSN/A", "1m", &a0);
    AN_CHECK(a0.n > 0);
    an_series_candle many[] = {
        {"LSN/C", "1m", c1}, {"LSN/B", "1m", c0}, {"LSN/A", "1m", a0.n ? a0.v[0] : c0}};
    AN_CHECK_OK(an_store_upsert_candles(writer, many, 3, &err), err);
    an_candles_free(&a0);
    AN_CHECK_MSG(heard_within("LSN/B", T0 + 5 * MIN, T0 + 5 * MIN, 5000), "LSN/B not heard");
    AN_CHECK_MSG(heard_within("LSN/C", T0 + 7 * MIN, T0 + 7 * MIN, 5000), "LSN/C not heard");
    usleep(100000);
    AN_CHECK_MSG(!heard_within("LSN/A", 1, 0, 0), "an unchanged candle was heard");
    /* the listener's own store handle's flush carries its tag: this
     * process's hooks heard it at once, the listener skips it (a write of
     * one series, untagged, is still heard; notifications come in commit
     * order, so once it is heard the flush would have been too) */
    heard_reset();
    an_series_candle own[] = {{"LSN/D", "1m", c0}};
    AN_CHECK_OK(an_store_upsert_candles(s, own, 1, &err), err);
    put(s, "LSN/E", "1m", T0, 2, 34);
    AN_CHECK_MSG(heard_within("LSN/E", T0, T0 + MIN, 5000), "the own handle's put was not heard");
    AN_CHECK_MSG(!heard_within("LSN/D", 1, 0, 0), "the listener's own flush was heard again");
    heard_reset();
    AN_CHECK_INT(sql(writer, "TRUNCATE trading.ohlc_data"), 0);
    AN_CHECK_MSG(heard_within("", 1, 0, 5000), "a TRUNCATE was not heard as \"everything\"");
    heard_reset();
    AN_CHECK_INT(sql(writer, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                             " WHERE query = 'LISTEN " AN_STORE_NOTIFY_CHANNEL "'"),
                 0);
    AN_CHECK_MSG(heard_within("", 1, 0, 5000), "no \"everything\" after a reconnect");
    put(writer, "LSN/A", "1m", T0 + 100 * MIN, 3, 32);
    AN_CHECK_MSG(heard_within("LSN/A", T0 + 100 * MIN, T0 + 102 * MIN, 5000),
                 "a write after the reconnect was not heard");
    an_store_listener_stop(l);
    heard_reset();
    put(writer, "LSN/A", "1m", T0 + 200 * MIN, 3, 33);
    usleep(200000);
    AN_CHECK_MSG(heard_count() == 0, "heard after the listener stopped");
    an_store_close(writer);
    an_store_close(s);
}

/* ---- plans --------------------------------------------------------------- */

static char *explain(PGconn *c, const char *q, int n, const char *const *params)
{
    char text[4096];
    snprintf(text, sizeof text, "EXPLAIN %s", q);
    PGresult *r = PQexecParams(c, text, n, NULL, params, NULL, NULL, 0);
    char *plan = calloc(1, 32768);
    for (int i = 0; PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        strncat(plan, PQgetvalue(r, i, 0), 32768 - strlen(plan) - 2);
        strcat(plan, "\n");
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "  explain failed: %s", PQerrorMessage(c));
    PQclear(r);
    return plan;
}

static void test_plans(void)
{
    if (strcmp(backend, "duckdb") == 0)
        return;
    an_store *s = open_store();
    an_err err = {0};
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    put(s, "PLAN/A", "1m", T0, 20000, 7);
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    if (an_pg_pool_acquire(&ps->pool, &c, &slot, &err) != AN_OK) {
        AN_CHECK_OK(AN_ERR_CONNECT, err);
        an_store_close(s);
        return;
    }
    PQclear(PQexec(c, "ANALYZE trading.ohlc_data"));
    char *p = explain(c, AN_PG_SERIES_LIST_SQL, 0, NULL);
    AN_CHECK_MSG(strstr(p, "ohlc_series") && !strstr(p, "ohlc_data"),
                 "listing the series reads ohlc_data:\n%s", p);
    free(p);
    const char *up[5] = {"PLAN/A", "1m", "1704067200000", "1704070800000", "10"};
    p = explain(c, AN_PG_CATALOG_UPSERT_SQL, 5, up);
    AN_CHECK_MSG(p[0] && !strstr(p, "ohlc_data"), "the catalog upsert reads ohlc_data:\n%s", p);
    free(p);
    /* with sequential scans off, a Seq Scan remains only where no index fits */
    PQclear(PQexec(c, "SET enable_seqscan = off"));
    const char *rg[4] = {"PLAN/A", "1m", "2024-01-05T00:00:00Z", "2024-01-05T01:00:00Z"};
    p = explain(c, AN_PG_OHLC_RANGE_EMPTY_SQL, 4, rg);
    AN_CHECK_MSG(p[0] && !strstr(p, "Seq Scan"), "the candle range check scans:\n%s", p);
    free(p);
    const char *dl[3] = {"PLAN/A", "1m", "5"};
    p = explain(c, AN_PG_CATALOG_DELETE_SQL, 3, dl);
    AN_CHECK_MSG(p[0] && !strstr(p, "Seq Scan"), "the catalog's update after a delete scans:\n%s",
                 p);
    free(p);
    if (strcmp(backend, "postgres") == 0) { /* TimescaleDB: continuous aggregates */
        const char *ro[3] = {"PLAN/A", "1704067200000", "1704153600000"};
        p = explain(c, AN_PG_ROLLUP_1H_SQL, 3, ro);
        AN_CHECK_MSG(p[0] && !strstr(p, "Seq Scan"),
                     "the rollup recomputation scans ohlc_data:\n%s", p);
        free(p);
    }
    PQclear(PQexec(c, "RESET enable_seqscan"));
    an_pg_pool_release(&ps->pool, c, slot);
    an_store_close(s);
}

int main(int argc, char **argv)
{
    int rc = an_test_backend_init(&B, argc, argv, "catalog");
    if (rc != 0)
        return rc;
    backend = B.name;
    an_test_backend_reset(&B);
    AN_RUN(test_catalog_follows_writes);
    AN_RUN(test_plans);
    AN_RUN(test_truncate);
    AN_RUN(test_local_hooks);
    AN_RUN(test_listener);
    an_test_backend_done(&B);
    return AN_TEST_DONE();
}
