/*
 * catalog.c - the PostgreSQL backend's series catalog (trading.ohlc_series,
 * schema v6: first and last candle time and row count per series) and, on
 * plain PostgreSQL, the table-backed 1h/1d rollups. Both are kept current
 * by the writes themselves, in the write's transaction: a candle write adds
 * what it inserted to its series' catalog row and recomputes the rollup
 * buckets its range touches; a range delete subtracts what it removed and
 * reads the new bounds from the primary key (candles.c lists the series
 * from it). Both announce what changed to every listening process (NOTIFY
 * autonama_candles, store.h; pg/listen.c hears it). Any thread, on a connection the caller borrowed
 * (writes) or a pooled one (deletes).
 */
#include "store/pg/pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_TS(n) "TIMESTAMPTZ 'epoch' + $" #n "::int8 * INTERVAL '1 millisecond'"

const char AN_PG_CATALOG_UPSERT_SQL[] =
    "INSERT INTO trading.ohlc_series AS s (symbol, timeframe, first_ts, last_ts, row_count)"
    " VALUES ($1, $2, " MS_TS(3) ", " MS_TS(4) ", $5::int8)"
                                               " ON CONFLICT (symbol, timeframe) DO UPDATE SET"
                                               " first_ts = least(s.first_ts, excluded.first_ts),"
                                               " last_ts = greatest(s.last_ts, excluded.last_ts),"
                                               " row_count = s.row_count + excluded.row_count";

const char AN_PG_SERIES_LIST_SQL[] =
    "SELECT symbol, timeframe, (extract(epoch FROM first_ts) * 1000)::int8,"
    " (extract(epoch FROM last_ts) * 1000)::int8, row_count FROM trading.ohlc_series"
    " ORDER BY symbol, timeframe";

/* after a delete: the removed rows off the count, the bounds from the
 * primary key (two index probes), the row gone when the series is */
const char AN_PG_CATALOG_DELETE_SQL[] =
    "UPDATE trading.ohlc_series s SET row_count = s.row_count - $3::int8,"
    " first_ts = coalesce((SELECT min(\"timestamp\") FROM trading.ohlc_data d"
    " WHERE d.symbol = $1 AND d.timeframe = $2), s.first_ts),"
    " last_ts = coalesce((SELECT max(\"timestamp\") FROM trading.ohlc_data d"
    " WHERE d.symbol = $1 AND d.timeframe = $2), s.last_ts)"
    " WHERE s.symbol = $1 AND s.timeframe = $2";

static const char CATALOG_DROP_EMPTY_SQL[] =
    "DELETE FROM trading.ohlc_series WHERE symbol = $1 AND timeframe = $2 AND row_count <= 0";

/* one writer at a time recomputes a symbol's buckets, so two concurrent
 * writes cannot each store a bucket computed without the other's rows */
static const char ROLLUP_LOCK_SQL[] = "SELECT pg_advisory_xact_lock(1634624877, hashtext($1))";

#define ROLLUP_DELETE(table)                                                                       \
    "DELETE FROM trading." table                                                                   \
    " WHERE symbol = $1 AND \"timestamp\" >= " MS_TS(2) " AND \"timestamp\" < " MS_TS(3)

#define ROLLUP_INSERT(table, width)                                                                \
    "INSERT INTO trading." table " (symbol, \"timestamp\", open, high, low, close, volume,"        \
    " candle_count) SELECT symbol, date_bin(INTERVAL '" width "', \"timestamp\","                  \
    " TIMESTAMPTZ '2000-01-01 00:00:00+00'), (array_agg(open ORDER BY \"timestamp\"))[1],"         \
    " max(high), min(low), (array_agg(close ORDER BY \"timestamp\" DESC))[1], sum(volume),"        \
    " count(*) FROM trading.ohlc_data WHERE symbol = $1 AND timeframe = '1m'"                      \
    " AND \"timestamp\" >= " MS_TS(2) " AND \"timestamp\" < " MS_TS(3) " GROUP BY 1, 2"

const char AN_PG_ROLLUP_1H_SQL[] = ROLLUP_INSERT("ohlc_1h", "1 hour");

static an_code run(PGconn *c, const char *sql, int n, const char *const *params, const char *what,
                   an_err *err)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    an_code rc = AN_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = an_pg_res_error(r, c, what, err);
    PQclear(r);
    return rc;
}

void an_pg_rollup_span(int64_t width, int64_t lo_ms, int64_t hi_ms, int64_t *from, int64_t *to)
{
    int64_t w = width;
    const int64_t far = (int64_t)1 << 50; /* ms, some 35,000 years: no overflow below */
    lo_ms = lo_ms < -far ? -far : lo_ms;
    hi_ms = hi_ms > far ? far : hi_ms;
    *from = (lo_ms >= 0 ? lo_ms : lo_ms - w + 1) / w * w;
    *to = ((hi_ms >= 0 ? hi_ms : hi_ms - w + 1) / w + 1) * w;
}

/* The 1h and 1d buckets of symbol that [lo_ms, hi_ms] touches, recomputed
 * from ohlc_data's 1m candles (an index range scan). */
static an_code recompute_rollups(PGconn *c, const char *symbol, int64_t lo_ms, int64_t hi_ms,
                                 an_err *err)
{
    static const struct {
        int64_t width;
        const char *del, *ins;
    } R[2] = {
        {3600000LL, ROLLUP_DELETE("ohlc_1h"), AN_PG_ROLLUP_1H_SQL},
        {86400000LL, ROLLUP_DELETE("ohlc_1d"), ROLLUP_INSERT("ohlc_1d", "1 day")},
    };
    const char *p1[1] = {symbol};
    an_code rc = run(c, ROLLUP_LOCK_SQL, 1, p1, "refresh rollups", err);
    for (int i = 0; i < 2 && rc == AN_OK; i++) {
        int64_t from, to;
        an_pg_rollup_span(R[i].width, lo_ms, hi_ms, &from, &to);
        char a[24], b[24];
        snprintf(a, sizeof a, "%" PRId64, from);
        snprintf(b, sizeof b, "%" PRId64, to);
        const char *p[3] = {symbol, a, b};
        rc = run(c, R[i].del, 3, p, "refresh rollups", err);
        if (rc == AN_OK)
            rc = run(c, R[i].ins, 3, p, "refresh rollups", err);
    }
    return rc;
}

/* NOTIFY autonama_candles with what changed (store.h's payload), in the
 * write's transaction: delivered to every listener at its commit, never for
 * a write rolled back. */
static an_code notify(PGconn *c, const char *symbol, const char *tf, int64_t lo_ms, int64_t hi_ms,
                      an_err *err)
{
    char payload[96];
    snprintf(payload, sizeof payload, "%s %s %" PRId64 " %" PRId64, symbol, tf, lo_ms, hi_ms);
    const char *p[1] = {payload};
    return run(c, "SELECT pg_notify('" AN_STORE_NOTIFY_CHANNEL "', $1)", 1, p, "announce the write",
               err);
}

an_code an_pg_catalog_after_write(PGconn *c, int plain_pg, const char *symbol, const char *tf,
                                  int64_t lo_ms, int64_t hi_ms, const an_upsert_counts *changed,
                                  an_err *err)
{
    an_code rc = AN_OK;
    if (changed->inserted > 0) {
        char a[24], b[24], k[24];
        snprintf(a, sizeof a, "%" PRId64, lo_ms);
        snprintf(b, sizeof b, "%" PRId64, hi_ms);
        snprintf(k, sizeof k, "%" PRId64, changed->inserted);
        const char *p[5] = {symbol, tf, a, b, k};
        rc = run(c, AN_PG_CATALOG_UPSERT_SQL, 5, p, "update the series catalog", err);
    }
    if (rc == AN_OK && plain_pg && strcmp(tf, "1m") == 0 &&
        changed->inserted + changed->updated > 0)
        rc = recompute_rollups(c, symbol, lo_ms, hi_ms, err);
    if (rc == AN_OK && changed->inserted + changed->updated > 0)
        rc = notify(c, symbol, tf, lo_ms, hi_ms, err);
    return rc;
}

/* ---- range deletes ----------------------------------------------------- */

typedef struct delete_job {
    an_store *s;
    const char *table, *symbol, *tf;
    int64_t from_ms, to_ms;
} delete_job;

static an_code delete_job_run(PGconn *c, void *ctx, an_err *err)
{
    delete_job *j = ctx;
    int candles = strcmp(j->table, "indicators") != 0;
    char a[24], b[24], sql[256];
    snprintf(a, sizeof a, "%" PRId64, j->from_ms);
    snprintf(b, sizeof b, "%" PRId64, j->to_ms);
    snprintf(sql, sizeof sql,
             "DELETE FROM %s WHERE symbol = $1 AND timeframe = $2 AND \"timestamp\" BETWEEN " MS_TS(
                 3) " AND " MS_TS(4),
             candles ? "trading.ohlc_data" : "analytics.indicators");
    const char *p[4] = {j->symbol, j->tf, a, b};
    an_code rc = an_pg_exec_cmd(c, "BEGIN", "delete rows", err);
    if (rc != AN_OK)
        return rc;
    PGresult *r = PQexecParams(c, sql, 4, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        rc = an_pg_res_error(r, c, "delete rows", err);
        PQclear(r);
        return rc; /* the release rolls the transaction back */
    }
    char k[24];
    snprintf(k, sizeof k, "%s", PQcmdTuples(r));
    PQclear(r);
    if (candles && strtoll(k, NULL, 10) > 0) {
        const char *pk[3] = {j->symbol, j->tf, k};
        rc = run(c, AN_PG_CATALOG_DELETE_SQL, 3, pk, "update the series catalog", err);
        if (rc == AN_OK)
            rc = run(c, CATALOG_DROP_EMPTY_SQL, 2, pk, "update the series catalog", err);
        if (rc == AN_OK && j->s->mode == AN_STORE_POSTGRES && strcmp(j->tf, "1m") == 0)
            rc = recompute_rollups(c, j->symbol, j->from_ms, j->to_ms, err);
        if (rc == AN_OK)
            rc = notify(c, j->symbol, j->tf, j->from_ms, j->to_ms, err);
    }
    if (rc == AN_OK)
        rc = an_pg_exec_cmd(c, "COMMIT", "delete rows", err);
    return rc;
}

an_code an_pg_delete_range(an_store *s, const char *table, const char *symbol, const char *tf,
                           int64_t from_ms, int64_t to_ms, an_err *err)
{
    delete_job j = {s, table, symbol, tf, from_ms, to_ms};
    return an_pg_with_conn(s->impl, delete_job_run, &j, err);
}
