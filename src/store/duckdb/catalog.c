/*
 * catalog.c - the DuckDB backend's series catalog (trading.ohlc_series,
 * schema v5: first and last candle time and row count per series), kept
 * current by the writes themselves in the write's transaction: a candle
 * write adds what it inserted (write.c calls an_duck_catalog_after_write
 * before its COMMIT), a range delete subtracts what it removed and reads
 * the series' new bounds (candles.c lists the series from it). Any thread,
 * under the store's lock.
 */
#include "store/duckdb/duck_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUCK_MS(n) "make_timestamp($" #n "::BIGINT * 1000)"

static const char UPSERT_SQL[] =
    "INSERT INTO trading.ohlc_series (symbol, timeframe, first_ts, last_ts, row_count)"
    " VALUES ($1, $2, " DUCK_MS(3) ", " DUCK_MS(
        4) ", $5::BIGINT)"
           " ON CONFLICT (symbol, timeframe) DO UPDATE SET"
           " first_ts = least(ohlc_series.first_ts, excluded.first_ts),"
           " last_ts = greatest(ohlc_series.last_ts, excluded.last_ts),"
           " row_count = ohlc_series.row_count + excluded.row_count";

static const char AFTER_DELETE_SQL[] =
    "UPDATE trading.ohlc_series SET row_count = row_count - $3::BIGINT,"
    " first_ts = coalesce((SELECT min(\"timestamp\") FROM trading.ohlc_data d"
    " WHERE d.symbol = $1 AND d.timeframe = $2), first_ts),"
    " last_ts = coalesce((SELECT max(\"timestamp\") FROM trading.ohlc_data d"
    " WHERE d.symbol = $1 AND d.timeframe = $2), last_ts)"
    " WHERE symbol = $1 AND timeframe = $2";

static const char DROP_EMPTY_SQL[] =
    "DELETE FROM trading.ohlc_series WHERE symbol = $1 AND timeframe = $2 AND row_count <= 0";

typedef struct cat_args {
    an_duck_key key;
    int64_t a, b, k;
    int nargs; /* 2: the key; 3: and k; 4: and a, b; 5: all */
} cat_args;

static int bind_cat(duckdb_prepared_statement st, const void *ctx)
{
    const cat_args *c = ctx;
    if (an_duck_bind_key(st, &c->key) < 0)
        return -1;
    if (c->nargs == 3)
        return duckdb_bind_int64(st, 3, c->k) == DuckDBSuccess ? 3 : -1;
    if (c->nargs >= 4 && (duckdb_bind_int64(st, 3, c->a) != DuckDBSuccess ||
                          duckdb_bind_int64(st, 4, c->b) != DuckDBSuccess))
        return -1;
    if (c->nargs == 5 && duckdb_bind_int64(st, 5, c->k) != DuckDBSuccess)
        return -1;
    return c->nargs;
}

an_code an_duck_catalog_after_write(duck_store *ds, const char *symbol, const char *tf,
                                    int64_t lo_ms, int64_t hi_ms, int64_t inserted, an_err *err)
{
    if (inserted <= 0)
        return AN_OK;
    cat_args c = {{symbol, tf}, lo_ms, hi_ms, inserted, 5};
    return an_duck_run_locked(ds, UPSERT_SQL, bind_cat, &c, NULL, NULL, NULL,
                              "update the series catalog", err);
}

/* ---- range deletes ----------------------------------------------------- */

typedef struct delete_job {
    const char *table;
    cat_args c;
} delete_job;

static an_code delete_locked(duck_store *ds, delete_job *j, an_err *err)
{
    int candles = strcmp(j->table, "indicators") != 0;
    char sql[256];
    snprintf(
        sql, sizeof sql,
        "DELETE FROM %s WHERE symbol = $1 AND timeframe = $2 AND \"timestamp\" BETWEEN " DUCK_MS(
            3) " AND " DUCK_MS(4),
        candles ? "trading.ohlc_data" : "analytics.indicators");
    int64_t removed = 0;
    j->c.nargs = 4;
    an_code rc = an_duck_exec_locked(ds, "BEGIN TRANSACTION", "delete rows", err);
    if (rc == AN_OK)
        rc = an_duck_run_locked(ds, sql, bind_cat, &j->c, NULL, NULL, &removed, "delete rows", err);
    if (rc == AN_OK && candles && removed > 0) {
        j->c.k = removed;
        j->c.nargs = 3;
        rc = an_duck_run_locked(ds, AFTER_DELETE_SQL, bind_cat, &j->c, NULL, NULL, NULL,
                                "update the series catalog", err);
        j->c.nargs = 2;
        if (rc == AN_OK)
            rc = an_duck_run_locked(ds, DROP_EMPTY_SQL, bind_cat, &j->c, NULL, NULL, NULL,
                                    "update the series catalog", err);
    }
    if (rc == AN_OK)
        rc = an_duck_exec_locked(ds, "COMMIT", "delete rows", err);
    return rc;
}

static an_code delete_job_run(duck_store *ds, void *ctx, an_err *err)
{
    an_code rc = delete_locked(ds, ctx, err);
    if (rc != AN_OK)
        an_duck_rollback_locked(ds);
    return rc;
}

an_code an_duck_delete_range(an_store *s, const char *table, const char *symbol, const char *tf,
                             int64_t from_ms, int64_t to_ms, an_err *err)
{
    delete_job j = {table, {{symbol, tf}, from_ms, to_ms, 0, 4}};
    return an_duck_with_lock(s->impl, delete_job_run, &j, err);
}
