/*
 * candles.c - the DuckDB backend's candles: trading.ohlc_data writes (whole
 * data chunks appended to the staging table, then write.c's one write
 * path), reads of stored, rolled-up and bucketed candles (whole data chunks
 * at a time), the newest time, the list of series and the closes' export.
 * Any thread: writes under the store's lock, reads on a read connection
 * (readers.c).
 */
#include "store/duckdb/duck_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* ---- writes ------------------------------------------------------------- */

/* How many of the batch's keys exist, and how many of those differ. The
 * range on "timestamp" lets DuckDB skip row groups by their zone maps. */
static const char COUNT_SQL[] =
    "SELECT count(*), count(*) FILTER (WHERE o.open <> s.open OR o.high <> s.high OR o.low <> "
    "s.low OR o.close <> s.close OR o.volume <> s.volume) FROM temp.an_stage s JOIN "
    "trading.ohlc_data o ON o.\"timestamp\" = s.ts WHERE o.symbol = $1 AND o.timeframe = $2 AND "
    "o.\"timestamp\" BETWEEN $3 AND $4";

static const char INSERT_SQL[] =
    "INSERT INTO trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low, close, "
    "volume) SELECT $1::VARCHAR, $2::VARCHAR, ts, open, high, low, close, volume FROM "
    "temp.an_stage";

static const char UPSERT_SQL[] =
    "INSERT INTO trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low, close, "
    "volume) SELECT $1::VARCHAR, $2::VARCHAR, ts, open, high, low, close, volume FROM "
    "temp.an_stage ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET open = "
    "excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, volume = "
    "excluded.volume WHERE ohlc_data.open <> excluded.open OR ohlc_data.high <> excluded.high OR "
    "ohlc_data.low <> excluded.low OR ohlc_data.close <> excluded.close OR ohlc_data.volume <> "
    "excluded.volume";

typedef struct candle_write {
    an_duck_key key;
    const an_candle *v;
    size_t n;
} candle_write;

/* Appends the candles to the staging table, a whole vector at a time. */
static an_code stage_candles(duckdb_appender app, const void *ctx, an_err *err)
{
    const candle_write *w = ctx;
    duckdb_logical_type types[6];
    types[0] = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP);
    for (int c = 1; c < 6; c++)
        types[c] = duckdb_create_logical_type(DUCKDB_TYPE_DOUBLE);
    duckdb_data_chunk chunk = duckdb_create_data_chunk(types, 6);
    for (int c = 0; c < 6; c++)
        duckdb_destroy_logical_type(&types[c]);
    if (!chunk)
        return an_err_set(err, AN_ERR_NOMEM, "insert_ohlc_data: out of memory");
    an_code rc = AN_OK;
    const size_t cap = duckdb_vector_size();
    for (size_t off = 0; off < w->n && rc == AN_OK; off += cap) {
        size_t m = w->n - off < cap ? w->n - off : cap;
        int64_t *ts = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
        double *col[5];
        for (int c = 0; c < 5; c++)
            col[c] = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, (idx_t)c + 1));
        for (size_t i = 0; i < m; i++) {
            const an_candle *k = &w->v[off + i];
            ts[i] = k->ts * 1000;
            col[0][i] = k->open;
            col[1][i] = k->high;
            col[2][i] = k->low;
            col[3][i] = k->close;
            col[4][i] = k->volume;
        }
        duckdb_data_chunk_set_size(chunk, m);
        if (duckdb_append_data_chunk(app, chunk) != DuckDBSuccess)
            rc = an_duck_appender_error(app, "insert_ohlc_data: staging", err);
        duckdb_data_chunk_reset(chunk);
    }
    duckdb_destroy_data_chunk(&chunk);
    return rc;
}

/* $1 symbol, $2 timeframe, $3..$4 the batch's first and last time */
static int bind_count(duckdb_prepared_statement st, const void *ctx)
{
    const candle_write *w = ctx;
    if (an_duck_bind_key(st, &w->key) < 0 ||
        duckdb_bind_timestamp(st, 3, (duckdb_timestamp){w->v[0].ts * 1000}) != DuckDBSuccess ||
        duckdb_bind_timestamp(st, 4, (duckdb_timestamp){w->v[w->n - 1].ts * 1000}) != DuckDBSuccess)
        return -1;
    return 4;
}

static int bind_write(duckdb_prepared_statement st, const void *ctx)
{
    const candle_write *w = ctx;
    return an_duck_bind_key(st, &w->key);
}

an_code an_duck_insert_ohlc(an_store *s, const char *symbol, const char *tf, const an_candle *v,
                            size_t n, an_upsert_counts *counts, an_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].ts < AN_DUCK_TS_MIN_MS || v[i].ts > AN_DUCK_TS_MAX_MS)
            return an_err_set(err, AN_ERR_INVALID,
                              "insert_ohlc_data: row %zu: timestamp %" PRId64
                              " ms is outside DuckDB's range",
                              i, v[i].ts);
    candle_write cw = {{symbol, tf}, v, n};
    an_duck_write w = {
        .what = "insert_ohlc_data",
        .stage_table = "an_stage",
        .count_sql = COUNT_SQL,
        .insert_sql = INSERT_SQL,
        .upsert_sql = UPSERT_SQL,
        .rows = n,
        .stage = stage_candles,
        .stage_ctx = &cw,
        .bind_count = bind_count,
        .bind_write = bind_write,
        .bctx = &cw,
        .symbol = symbol,
        .tf = tf,
        .lo_ms = v[0].ts,
        .hi_ms = v[n - 1].ts,
    };
    an_code rc = an_duck_write_rows(s->impl, &w, counts, err);
    if (rc == AN_OK)
        AN_DEBUG(AN_DUCK_COMPONENT,
                 "msg=\"stored\" symbol=%s timeframe=%s inserted=%" PRId64 " updated=%" PRId64
                 " unchanged=%" PRId64,
                 symbol, tf, counts->inserted, counts->updated, counts->unchanged);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

/* Appends every row of a (timestamp, open, high, low, close, volume) result;
 * on failure out is left as it was. */
typedef struct candles_out {
    an_candles *out;
    const char *what;
    idx_t ncol; /* 6, or 7 with a bucketed read's candle count */
} candles_out;

static an_code candles_chunk(duckdb_data_chunk chunk, idx_t rows, void *ctx, an_err *err)
{
    candles_out *o = ctx;
    const int64_t *ts = an_duck_column(chunk, 0);
    const int64_t *cnt = o->ncol == 7 ? an_duck_column(chunk, 6) : NULL;
    const double *col[5];
    for (idx_t c = 0; c < o->ncol; c++) {
        if (c > 0 && c < 6)
            col[c - 1] = an_duck_column(chunk, c);
        /* the columns are NOT NULL: a NULL means the schema was changed */
        uint64_t *valid = duckdb_vector_get_validity(duckdb_data_chunk_get_vector(chunk, c));
        for (idx_t i = 0; valid && i < rows; i++)
            if (!duckdb_validity_row_is_valid(valid, i))
                return an_err_set(err, AN_ERR_INTERNAL, "%s: NULL in column %d", o->what, (int)c);
    }
    an_code rc = AN_OK;
    for (idx_t i = 0; i < rows && rc == AN_OK; i++) {
        an_candle k = {
            an_duck_us_to_ms(ts[i]), col[0][i], col[1][i], col[2][i], col[3][i], col[4][i],
            cnt ? cnt[i] : 0};
        rc = an_candles_push(o->out, &k, err);
    }
    return rc;
}

static an_code read_candles(duckdb_result *r, void *ctx, an_err *err)
{
    candles_out *o = ctx;
    o->ncol = duckdb_column_count(r); /* 7: a bucketed read's count */
    if ((o->ncol != 6 && o->ncol != 7) || duckdb_column_type(r, 0) != DUCKDB_TYPE_TIMESTAMP ||
        (o->ncol == 7 && duckdb_column_type(r, 6) != DUCKDB_TYPE_BIGINT))
        return an_err_set(err, AN_ERR_INTERNAL, "%s: unexpected result shape", o->what);
    for (idx_t c = 1; c < 6; c++)
        if (duckdb_column_type(r, c) != DUCKDB_TYPE_DOUBLE)
            return an_err_set(err, AN_ERR_INTERNAL, "%s: column %d is not DOUBLE", o->what, (int)c);
    const size_t n0 = o->out->n;
    an_code rc = an_duck_each_chunk(r, candles_chunk, o, err);
    if (rc != AN_OK)
        o->out->n = n0;
    return rc;
}

/* A query's time bounds as DuckDB can bind them: bounds beyond DuckDB's
 * timestamp range select everything (dropped) or nothing (none). */
typedef struct ts_bounds {
    int has_start, has_end, none;
} ts_bounds;

static ts_bounds bounds_of(const an_query *q)
{
    ts_bounds b;
    b.has_start = q->start_ms != INT64_MIN && q->start_ms > AN_DUCK_TS_MIN_MS;
    b.has_end = q->end_ms != INT64_MAX && q->end_ms <= AN_DUCK_TS_MAX_MS;
    b.none = (q->start_ms != INT64_MIN && q->start_ms > AN_DUCK_TS_MAX_MS) ||
             (q->end_ms != INT64_MAX && q->end_ms <= AN_DUCK_TS_MIN_MS);
    return b;
}

/* Appends the bounds on "timestamp", then group (may be ""), the order on
 * key and the limit, numbering parameters from *np + 1. */
static void append_range(char *sql, size_t cap, int pos, idx_t *np, ts_bounds bd, const an_query *q,
                         const char *group, const char *key)
{
    if (bd.has_start)
        pos += snprintf(sql + pos, cap - (size_t)pos, " AND \"timestamp\" >= $%d", (int)++*np);
    if (bd.has_end)
        pos += snprintf(sql + pos, cap - (size_t)pos, " AND \"timestamp\" < $%d", (int)++*np);
    pos += snprintf(sql + pos, cap - (size_t)pos, "%s ORDER BY %s %s", group, key,
                    q->descending ? "DESC" : "ASC");
    if (q->limit > 0)
        snprintf(sql + pos, cap - (size_t)pos, " LIMIT $%d", (int)++*np);
}

typedef struct candle_query {
    const char *symbol, *tf; /* tf NULL: not a parameter */
    int64_t bucket_ms;       /* < 0: not a parameter */
    ts_bounds bd;            /* set by query_candles */
    const an_query *q;
} candle_query;

/* symbol, tf (when not NULL), bucket_ms (when >= 0), then what append_range
 * numbered */
static int bind_candle_query(duckdb_prepared_statement st, const void *ctx)
{
    const candle_query *cq = ctx;
    const an_query *q = cq->q;
    idx_t p = 1;
    int ok = duckdb_bind_varchar(st, p++, cq->symbol) == DuckDBSuccess;
    if (cq->tf)
        ok = ok && duckdb_bind_varchar(st, p++, cq->tf) == DuckDBSuccess;
    if (cq->bucket_ms >= 0)
        ok = ok && duckdb_bind_int64(st, p++, cq->bucket_ms) == DuckDBSuccess;
    if (cq->bd.has_start)
        ok = ok && duckdb_bind_timestamp(st, p++, (duckdb_timestamp){q->start_ms * 1000}) ==
                       DuckDBSuccess;
    if (cq->bd.has_end)
        ok = ok &&
             duckdb_bind_timestamp(st, p++, (duckdb_timestamp){q->end_ms * 1000}) == DuckDBSuccess;
    if (q->limit > 0)
        ok = ok && duckdb_bind_int64(
                       st, p++, q->limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)q->limit) ==
                       DuckDBSuccess;
    return ok ? (int)(p - 1) : -1;
}

/* Runs head (a SELECT through its WHERE on the key, parameters $1..$np)
 * with cq's bounds, group (may be ""), the order on key and the limit
 * appended. */
static an_code query_candles(duck_store *ds, const char *head, idx_t np, const char *group,
                             const char *key, candle_query *cq, const char *what, an_candles *out,
                             an_err *err)
{
    cq->bd = bounds_of(cq->q);
    if (cq->bd.none)
        return AN_OK;
    char sql[768];
    int pos = snprintf(sql, sizeof sql, "%s", head);
    append_range(sql, sizeof sql, pos, &np, cq->bd, cq->q, group, key);
    candles_out o = {out, what, 0};
    return an_duck_read(ds, sql, bind_candle_query, cq, read_candles, &o, what, err);
}

/* A read from start oldest first, or up to end newest first, with a limit
 * and no other bound (how a chart pages): with no gaps its candles lie
 * within limit timeframes of that bound. *w gets that window; 0 when the
 * read is of another kind. */
static int window_of(const an_query *q, const char *tf, an_query *w)
{
    int monthly = 0;
    const int64_t tf_ms = tf ? an_timeframe_ms(tf, &monthly) : 0;
    if (q->limit == 0 || tf_ms <= 0 || q->limit > (size_t)(INT64_MAX / 4 / tf_ms))
        return 0;
    const int64_t span = (int64_t)q->limit * tf_ms;
    *w = *q;
    if (!q->descending && q->start_ms != INT64_MIN && q->end_ms == INT64_MAX &&
        q->start_ms < INT64_MAX - span) {
        w->end_ms = q->start_ms + span;
        return 1;
    }
    if (q->descending && q->end_ms != INT64_MAX && q->start_ms == INT64_MIN &&
        q->end_ms > INT64_MIN + span) {
        w->start_ms = q->end_ms - span;
        return 1;
    }
    return 0;
}

an_code an_duck_get_ohlc(an_store *s, const char *source, const char *symbol, const char *tf,
                         const an_query *q, an_candles *out, an_err *err)
{
    if (strcmp(source, "ohlc_data") != 0 && strcmp(source, "ohlc_1h") != 0 &&
        strcmp(source, "ohlc_1d") != 0)
        return an_err_set(err, AN_ERR_INTERNAL, "get_ohlc_data: unknown source '%.16s'", source);
    char head[256];
    snprintf(head, sizeof head,
             "SELECT \"timestamp\", open, high, low, close, volume FROM trading.%s WHERE symbol ="
             " $1%s",
             source, tf ? " AND timeframe = $2" : "");
    candle_query cq = {symbol, tf, -1, {0, 0, 0}, q};
    /* the window first: DuckDB skips the row groups outside it by their zone
     * maps, where an open range filtered the rest of the series for its top
     * limit (on average half of it); fewer rows than the limit there (gaps,
     * or the series' end): read again without it */
    an_query w;
    if (window_of(q, tf, &w)) {
        const size_t n0 = out->n;
        candle_query wq = {symbol, tf, -1, {0, 0, 0}, &w};
        an_code rc = query_candles(s->impl, head, tf ? 2 : 1, "", "\"timestamp\"", &wq,
                                   "get_ohlc_data", out, err);
        if (rc != AN_OK || out->n - n0 >= q->limit)
            return rc;
        out->n = n0;
    }
    return query_candles(s->impl, head, tf ? 2 : 1, "", "\"timestamp\"", &cq, "get_ohlc_data", out,
                         err);
}

/* Buckets over ohlc_data with time_bucket on the epoch; arg_min/arg_max
 * pick the first open and the last close. */
an_code an_duck_get_bucketed(an_store *s, const char *symbol, const char *tf, int64_t bucket_ms,
                             const an_query *q, an_candles *out, an_err *err)
{
    candle_query cq = {symbol, tf, bucket_ms, {0, 0, 0}, q};
    return query_candles(s->impl,
                         "SELECT time_bucket(to_milliseconds($3), \"timestamp\", TIMESTAMP "
                         "'1970-01-01') AS b, arg_min(open, \"timestamp\"), max(high), min(low), "
                         "arg_max(close, \"timestamp\"), sum(volume), count(*) FROM "
                         "trading.ohlc_data WHERE symbol = $1 AND timeframe = $2",
                         3, " GROUP BY b", "b", &cq, "get bucketed candles", out, err);
}

an_code an_duck_latest(an_store *s, const char *symbol, const char *tf, int64_t *ts, int *found,
                       an_err *err)
{
    /* from the series catalog: a key lookup, where max() over ohlc_data
     * read the whole series */
    return an_duck_read_key_one(s->impl,
                                "SELECT epoch_ms(last_ts) FROM trading.ohlc_series WHERE symbol = "
                                "$1 AND timeframe = $2",
                                symbol, tf, &AN_INT64_FIELDS, ts, found, "get_latest_timestamp",
                                err);
}

an_code an_duck_refresh_rollups(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err)
{
    (void)s;
    (void)from_ms;
    (void)to_ms;
    (void)err;
    return AN_OK; /* the rollups are views: always current */
}

/* Every (symbol, timeframe) of a table with first/last time and rows. */
static an_code list_table(an_store *s, const char *table, an_store_rows *rows, an_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT symbol, timeframe, epoch_ms(min(\"timestamp\")), epoch_ms(max(\"timestamp\")),"
             " count(*) FROM %s GROUP BY symbol, timeframe ORDER BY symbol, timeframe",
             table);
    return an_duck_read(s->impl, sql, NULL, NULL, an_duck_read_rows, rows, rows->what, err);
}

/* From the series catalog (catalog.c): as many rows as there are series. */
an_code an_duck_list_series(an_store *s, an_store_rows *rows, an_err *err)
{
    return an_duck_read(s->impl,
                        "SELECT symbol, timeframe, epoch_ms(first_ts), epoch_ms(last_ts), row_count"
                        " FROM trading.ohlc_series ORDER BY symbol, timeframe",
                        NULL, NULL, an_duck_read_rows, rows, rows->what, err);
}

an_code an_duck_list_indicator_series(an_store *s, an_store_rows *rows, an_err *err)
{
    return list_table(s, "analytics.indicators", rows, err);
}

/* ---- export ------------------------------------------------------------- */

typedef struct closes_out {
    an_closes_cb cb;
    void *ctx;
} closes_out;

static an_code closes_chunk(duckdb_data_chunk chunk, idx_t rows, void *ctx, an_err *err)
{
    closes_out *o = ctx;
    return o->cb(o->ctx, an_duck_column(chunk, 0), an_duck_column(chunk, 1), rows, err);
}

static an_code read_closes(duckdb_result *r, void *ctx, an_err *err)
{
    return an_duck_each_chunk(r, closes_chunk, ctx, err);
}

static int bind_export(duckdb_prepared_statement st, const void *ctx)
{
    const an_duck_key *k = ctx;
    if (duckdb_bind_varchar(st, 1, k->symbol) != DuckDBSuccess)
        return -1;
    if (!k->tf)
        return 1;
    return duckdb_bind_varchar(st, 2, k->tf) == DuckDBSuccess ? 2 : -1;
}

an_code an_duck_export_closes(an_store *s, const char *source, const char *symbol, const char *tf,
                              an_closes_cb cb, void *ctx, an_err *err)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT epoch_ms(\"timestamp\"), close FROM trading.%s WHERE symbol = $1%s"
             " ORDER BY \"timestamp\"",
             source, tf ? " AND timeframe = $2" : "");
    an_duck_key key = {symbol, tf};
    closes_out o = {cb, ctx};
    return an_duck_read(s->impl, sql, bind_export, &key, read_closes, &o, "export series", err);
}
