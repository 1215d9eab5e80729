/*
 * candles.c - the PostgreSQL backend's candles: trading.ohlc_data writes
 * (binary array parameters, or binary COPY, through write.c's one write
 * path), reads of stored, rolled-up and bucketed candles, the newest time,
 * the rollups' refresh, the list of series and the closes' export (binary
 * COPY TO STDOUT read by copy_out.c). Any thread; each op borrows one pooled
 * connection.
 */
#include "store/pg/pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- writes ------------------------------------------------------------- */

static const char UPSERT_SQL[] =
    "WITH up AS ("
    " INSERT INTO trading.ohlc_data AS d"
    " (symbol, timeframe, \"timestamp\", open, high, low, close, volume)"
    " SELECT $1, $2, t.ts, t.o, t.h, t.l, t.c, t.v"
    " FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[], $7::float8[],"
    " $8::float8[]) AS t(ts, o, h, l, c, v)"
    " ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET"
    " open = excluded.open, high = excluded.high, low = excluded.low,"
    " close = excluded.close, volume = excluded.volume"
    " WHERE (d.open, d.high, d.low, d.close, d.volume) IS DISTINCT FROM"
    " (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)"
    " RETURNING (xmax = 0) AS ins)"
    " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up";

static const char INSERT_SQL[] =
    "INSERT INTO trading.ohlc_data"
    " (symbol, timeframe, \"timestamp\", open, high, low, close, volume)"
    " SELECT $1, $2, t.ts, t.o, t.h, t.l, t.c, t.v"
    " FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[], $7::float8[],"
    " $8::float8[]) AS t(ts, o, h, l, c, v)";

/* The plain insert as binary COPY (real servers: the PGlite test server
 * dies on COPY FROM STDIN). Measured ~1.5x the unnest INSERT: the rows stream
 * straight into the table, with no array to build and unnest on the server. */
static const char COPY_SQL[] =
    "COPY trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low, close, volume)"
    " FROM STDIN (FORMAT binary)";

const char AN_PG_OHLC_RANGE_EMPTY_SQL[] =
    "SELECT NOT EXISTS (SELECT 1 FROM trading.ohlc_data WHERE symbol = $1 AND timeframe = $2"
    " AND \"timestamp\" BETWEEN $3::timestamptz AND $4::timestamptz)";

/* A candle's field as 8 bytes: 0 the time (timestamptz), 1..5 open..volume. */
static uint64_t field_bits(const an_candle *k, size_t field)
{
    if (field == 0)
        return (uint64_t)(k->ts * 1000 - AN_PG_EPOCH_US);
    uint64_t bits;
    const double *f = &k->open;
    memcpy(&bits, &f[field - 1], sizeof bits);
    return bits;
}

/* field 0: timestamps as timestamptz[]; 1..5: open..volume as float8[] */
static int binary_array(an_pg_buf *b, const an_candle *v, size_t n, size_t field)
{
    b->n = 0;
    if (an_pg_buf_reserve(b, 20 + n * 12) < 0)
        return -1;
    unsigned char *p = an_pg_array_header((unsigned char *)b->p,
                                          field == 0 ? AN_OID_TIMESTAMPTZ : AN_OID_FLOAT8, n);
    for (size_t i = 0; i < n; i++, p += 12) {
        an_pg_put_be32(p, 8);
        an_pg_put_be64(p + 4, field_bits(&v[i], field));
    }
    b->n = 20 + n * 12;
    return 0;
}

typedef struct candle_write {
    const char *symbol, *tf;
    const an_candle *v;
    size_t n;
    int use_copy, plain_pg;
    an_pg_buf arrays[7]; /* six arrays, and the COPY rows */
    const an_candle *batch;
    size_t m;
} candle_write;

/* The batch's rows in COPY's binary format (pg_internal.h). */
static int copy_rows(void *ctx, an_pg_buf *b)
{
    const candle_write *w = ctx;
    size_t ls = strlen(w->symbol), lt = strlen(w->tf);
    size_t row = 2 + 4 + ls + 4 + lt + 6 * 12;
    if (an_pg_buf_reserve(b, AN_PG_COPY_HEAD + w->m * row + 2) < 0)
        return -1;
    unsigned char *p = an_pg_copy_head((unsigned char *)b->p);
    for (size_t i = 0; i < w->m; i++) {
        p[0] = 0;
        p[1] = 8;
        p = an_pg_copy_text(p + 2, w->symbol, ls);
        p = an_pg_copy_text(p, w->tf, lt);
        for (size_t k = 0; k < 6; k++)
            p = an_pg_copy_8(p, field_bits(&w->batch[i], k));
    }
    p[0] = 0xff;
    p[1] = 0xff;
    b->n = (size_t)(p + 2 - (unsigned char *)b->p);
    return 0;
}

static an_code candle_batch(PGconn *c, void *ctx, size_t off, size_t m, an_upsert_counts *counts,
                            an_err *err)
{
    candle_write *w = ctx;
    w->batch = w->v + off;
    w->m = m;
    for (size_t f = 0; f < 6; f++)
        if (binary_array(&w->arrays[f], w->batch, m, f) < 0)
            return an_err_set(err, AN_ERR_NOMEM, "insert_ohlc_data: out of memory");
    const char *params[8] = {w->symbol,      w->tf,          w->arrays[0].p, w->arrays[1].p,
                             w->arrays[2].p, w->arrays[3].p, w->arrays[4].p, w->arrays[5].p};
    static const Oid types[8] = {0,
                                 0,
                                 AN_OID_TIMESTAMPTZ_ARRAY,
                                 AN_OID_FLOAT8_ARRAY,
                                 AN_OID_FLOAT8_ARRAY,
                                 AN_OID_FLOAT8_ARRAY,
                                 AN_OID_FLOAT8_ARRAY,
                                 AN_OID_FLOAT8_ARRAY};
    static const int formats[8] = {0, 0, 1, 1, 1, 1, 1, 1};
    int lengths[8] = {0, 0};
    for (int k = 2; k < 8; k++)
        lengths[k] = (int)w->arrays[k - 2].n;
    an_pg_batch b = {
        .what = "insert_ohlc_data",
        .range_empty_sql = AN_PG_OHLC_RANGE_EMPTY_SQL,
        .insert_sql = INSERT_SQL,
        .upsert_sql = UPSERT_SQL,
        .nparams = 8,
        .params = params,
        .types = types,
        .lengths = lengths,
        .formats = formats,
        .lo_ms = w->batch[0].ts, /* validated: increasing */
        .hi_ms = w->batch[m - 1].ts,
        .rows = m,
        .copy_sql = w->use_copy ? COPY_SQL : NULL,
        .copy_rows = copy_rows,
        .copy_ctx = w,
        .copy_buf = &w->arrays[6],
    };
    return an_pg_write_batch(c, &b, counts, err);
}

/* The series catalog and the rollups, before the write commits. */
static an_code candle_after(PGconn *c, void *ctx, const an_upsert_counts *changed, an_err *err)
{
    const candle_write *w = ctx;
    return an_pg_catalog_after_write(c, w->plain_pg, w->symbol, w->tf, w->v[0].ts,
                                     w->v[w->n - 1].ts, changed, err);
}

an_code an_pg_insert_ohlc(an_store *s, const char *symbol, const char *tf, const an_candle *v,
                          size_t n, an_upsert_counts *counts, an_err *err)
{
    pg_store *ps = s->impl;
    candle_write w = {.symbol = symbol,
                      .tf = tf,
                      .v = v,
                      .n = n,
                      .use_copy = !ps->is_pglite,
                      .plain_pg = s->mode == AN_STORE_POSTGRES};
    an_code rc =
        an_pg_write_then(ps, "insert_ohlc_data", n, candle_batch, candle_after, &w, counts, err);
    for (size_t f = 0; f < 7; f++)
        free(w.arrays[f].p);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

/* The bounds of q on "timestamp" as parameters $np+1... */
static int append_bounds(char *sql, size_t cap, int pos, const an_query *q, const char **params,
                         int *np, an_pg_range *bufs)
{
    static const char *const CMP[2] = {">=", "<"};
    const int64_t bound[2] = {q->start_ms, q->end_ms};
    const int has[2] = {q->start_ms != INT64_MIN, q->end_ms != INT64_MAX};
    char *text[2] = {bufs->start, bufs->end};
    for (int i = 0; i < 2; i++) {
        if (!has[i])
            continue;
        snprintf(text[i], sizeof bufs->start, "%" PRId64, bound[i]);
        params[(*np)++] = text[i];
        pos += snprintf(sql + pos, cap - (size_t)pos,
                        " AND \"timestamp\" %s TIMESTAMPTZ 'epoch' + $%d::int8 * INTERVAL '1 "
                        "millisecond'",
                        CMP[i], *np);
    }
    return pos;
}

/* The limit of q as parameter $np+1. */
static int append_limit(char *sql, size_t cap, int pos, const an_query *q, const char **params,
                        int *np, an_pg_range *bufs)
{
    if (q->limit == 0)
        return pos;
    snprintf(bufs->limit, sizeof bufs->limit, "%zu", q->limit);
    params[(*np)++] = bufs->limit;
    return pos + snprintf(sql + pos, cap - (size_t)pos, " LIMIT $%d", *np);
}

int an_pg_append_range(char *sql, size_t cap, int pos, const an_query *q, const char *order_by,
                       const char **params, int *np, an_pg_range *bufs)
{
    pos = append_bounds(sql, cap, pos, q, params, np, bufs);
    pos += snprintf(sql + pos, cap - (size_t)pos, " ORDER BY %s\"timestamp\" %s", order_by,
                    q->descending ? "DESC" : "ASC");
    return append_limit(sql, cap, pos, q, params, np, bufs);
}

/* Binary rows of (time, open, high, low, close, volume[, count]) appended to
 * an an_candles (ctx): time as timestamptz (microseconds from 2000-01-01) or
 * int8 milliseconds, the prices float8, the count int8. */
static an_code read_candles(PGresult *r, void *ctx, an_err *err)
{
    an_candles *out = ctx;
    int nf = PQnfields(r), rows = PQntuples(r);
    Oid t0 = PQftype(r, 0);
    int ok = (nf == 6 || nf == 7) && (t0 == AN_OID_TIMESTAMPTZ || t0 == AN_OID_INT8) &&
             (nf == 6 || PQftype(r, 6) == AN_OID_INT8);
    for (int f = 0; ok && f < nf; f++)
        ok = PQfformat(r, f) == 1 && (f == 0 || f == 6 || PQftype(r, f) == AN_OID_FLOAT8);
    if (!ok)
        return an_err_set(err, AN_ERR_DB, "read candles: unexpected result columns (%d)", nf);
    for (int i = 0; i < rows; i++) {
        an_candle k;
        k.ts = t0 == AN_OID_TIMESTAMPTZ ? an_pg_bin_ms(r, i, 0) : (int64_t)an_pg_bin8(r, i, 0);
        k.open = an_pg_bin_f8(r, i, 1);
        k.high = an_pg_bin_f8(r, i, 2);
        k.low = an_pg_bin_f8(r, i, 3);
        k.close = an_pg_bin_f8(r, i, 4);
        k.volume = an_pg_bin_f8(r, i, 5);
        k.count = nf > 6 ? (int64_t)an_pg_bin8(r, i, 6) : 0;
        an_code rc = an_candles_push(out, &k, err);
        if (rc != AN_OK)
            return rc;
    }
    return AN_OK;
}

an_code an_pg_get_ohlc(an_store *s, const char *source, const char *symbol, const char *tf,
                       const an_query *q, an_candles *out, an_err *err)
{
    char sql[768];
    const char *params[5];
    int np = 0;
    int pos = snprintf(sql, sizeof sql,
                       "SELECT \"timestamp\", open, high, low, close, volume FROM trading.%s"
                       " WHERE symbol = $1",
                       source);
    params[np++] = symbol;
    if (tf) {
        params[np++] = tf;
        pos += snprintf(sql + pos, sizeof sql - (size_t)pos, " AND timeframe = $%d", np);
    }
    an_pg_range bufs;
    an_pg_append_range(sql, sizeof sql, pos, q, "", params, &np, &bufs);
    /* the candle route's query: a handful of shapes, each prepared once per
     * pooled connection, rows in binary */
    return an_pg_exec_binary(s->impl, sql, np, params, read_candles, out, "get_ohlc_data", err);
}

/* Buckets over ohlc_data: time_bucket with first()/last() on TimescaleDB,
 * date_bin with ordered array_agg on plain PostgreSQL (both on the epoch). */
an_code an_pg_get_bucketed(an_store *s, const char *symbol, const char *tf, int64_t bucket_ms,
                           const an_query *q, an_candles *out, an_err *err)
{
    int ts = s->mode == AN_STORE_TIMESCALEDB;
    char sql[1024], bms[24];
    const char *params[6] = {symbol, tf, bms};
    int np = 3;
    snprintf(bms, sizeof bms, "%" PRId64, bucket_ms);
    int pos = snprintf(
        sql, sizeof sql,
        "SELECT b, %s, max(high), min(low), %s, sum(volume),"
        " count(*) FROM (SELECT %s AS b, \"timestamp\", open, high, low, close, volume"
        " FROM trading.ohlc_data WHERE symbol = $1 AND timeframe = $2",
        ts ? "first(open, \"timestamp\")" : "(array_agg(open ORDER BY \"timestamp\"))[1]",
        ts ? "last(close, \"timestamp\")" : "(array_agg(close ORDER BY \"timestamp\" DESC))[1]",
        ts ? "time_bucket($3::int8 * INTERVAL '1 millisecond', \"timestamp\", TIMESTAMPTZ "
             "'epoch')"
           : "date_bin($3::int8 * INTERVAL '1 millisecond', \"timestamp\", TIMESTAMPTZ 'epoch')");
    an_pg_range bufs;
    pos = append_bounds(sql, sizeof sql, pos, q, params, &np, &bufs);
    pos += snprintf(sql + pos, sizeof sql - (size_t)pos, ") t GROUP BY b ORDER BY b %s",
                    q->descending ? "DESC" : "ASC");
    append_limit(sql, sizeof sql, pos, q, params, &np, &bufs);
    return an_pg_exec_binary(s->impl, sql, np, params, read_candles, out, "get bucketed candles",
                             err);
}

an_code an_pg_latest(an_store *s, const char *symbol, const char *tf, int64_t *ts, int *found,
                     an_err *err)
{
    const char *params[2] = {symbol, tf};
    an_store_one one = {&AN_INT64_FIELDS, ts, found};
    /* from the series catalog (catalog.c): one key lookup in a table of one
     * row per series, whatever the candle table's size or compression */
    return an_pg_exec(s->impl,
                      "SELECT (extract(epoch FROM last_ts) * 1000)::int8 FROM "
                      "trading.ohlc_series WHERE symbol = $1 AND timeframe = $2",
                      2, params, an_pg_read_one, &one, NULL, "get_latest_timestamp", err);
}

typedef struct refresh_job {
    an_store *s;
    int64_t from_ms, to_ms;
} refresh_job;

/* TimescaleDB: the continuous aggregate over [from, to). */
static an_code refresh_cagg(PGconn *c, const char *view, int64_t from_ms, int64_t to_ms,
                            an_err *err)
{
    char from[24], to[24];
    const char *params[3] = {view, NULL, NULL};
    if (from_ms != INT64_MIN) {
        snprintf(from, sizeof from, "%" PRId64, from_ms);
        params[1] = from;
    }
    if (to_ms != INT64_MAX) {
        snprintf(to, sizeof to, "%" PRId64, to_ms);
        params[2] = to;
    }
    PGresult *r = PQexecParams(c,
                               "CALL refresh_continuous_aggregate($1::regclass,"
                               " TIMESTAMPTZ 'epoch' + $2::int8 * INTERVAL '1 millisecond',"
                               " TIMESTAMPTZ 'epoch' + $3::int8 * INTERVAL '1 millisecond')",
                               3, NULL, params, NULL, NULL, 0);
    an_code rc = AN_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = an_pg_res_error(r, c, "refresh rollups", err);
    PQclear(r);
    return rc;
}

static an_code refresh_job_run(PGconn *c, void *ctx, an_err *err)
{
    refresh_job *j = ctx;
    static const char *views[2] = {"trading.ohlc_1h", "trading.ohlc_1d"};
    an_code rc = AN_OK;
    for (int i = 0; i < 2 && rc == AN_OK; i++)
        rc = refresh_cagg(c, views[i], j->from_ms, j->to_ms, err);
    return rc;
}

an_code an_pg_refresh_rollups(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err)
{
    /* plain PostgreSQL's rollups are tables each write keeps current (catalog.c) */
    if (s->mode != AN_STORE_TIMESCALEDB)
        return AN_OK;
    refresh_job j = {s, from_ms, to_ms};
    return an_pg_with_conn(s->impl, refresh_job_run, &j, err);
}

/* Every (symbol, timeframe) of a table with first/last time and rows. */
static an_code list_table(an_store *s, const char *table, an_store_rows *rows, an_err *err)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "SELECT symbol, timeframe, (extract(epoch FROM min(\"timestamp\")) * 1000)::int8,"
             " (extract(epoch FROM max(\"timestamp\")) * 1000)::int8, count(*) FROM %s"
             " GROUP BY symbol, timeframe ORDER BY symbol, timeframe",
             table);
    return an_pg_exec(s->impl, sql, 0, NULL, an_pg_read_rows, rows, NULL, rows->what, err);
}

/* From the series catalog (catalog.c): as many rows as there are series. */
an_code an_pg_list_series(an_store *s, an_store_rows *rows, an_err *err)
{
    return an_pg_exec(s->impl, AN_PG_SERIES_LIST_SQL, 0, NULL, an_pg_read_rows, rows, NULL,
                      rows->what, err);
}

an_code an_pg_list_indicator_series(an_store *s, an_store_rows *rows, an_err *err)
{
    return list_table(s, "analytics.indicators", rows, err);
}

/* ---- export ------------------------------------------------------------- */

typedef struct export_job {
    const char *source, *symbol, *tf;
    an_closes_cb cb;
    void *ctx;
} export_job;

/* Reads the COPY's data to its end; rc is what happened so far. */
static an_code read_copy(PGconn *c, an_pg_copy_reader *rd, an_err *err)
{
    an_code rc = AN_OK;
    for (;;) {
        char *buf = NULL;
        int len = PQgetCopyData(c, &buf, 0);
        if (len == -1)
            return an_pg_copy_reader_finish(rd, err); /* done */
        if (len < 0)
            return an_err_set(err, AN_ERR_DB, "export series: %s", PQerrorMessage(c));
        rc = an_pg_copy_reader_feed(rd, buf, (size_t)len, err);
        PQfreemem(buf);
        if (rc != AN_OK)
            return rc;
    }
}

/* COPY (SELECT "timestamp", close ...) TO STDOUT (FORMAT binary), parsed as
 * it streams (copy_out.c). */
static an_code export_job_run(PGconn *c, void *ctx, an_err *err)
{
    export_job *j = ctx;
    an_pg_copy_reader rd;
    char *sym = PQescapeLiteral(c, j->symbol, strlen(j->symbol));
    char *tfl = j->tf ? PQescapeLiteral(c, j->tf, strlen(j->tf)) : NULL;
    char sql[512];
    an_code rc = an_pg_copy_reader_init(&rd, j->cb, j->ctx, err);
    if (rc == AN_OK && (!sym || (j->tf && !tfl)))
        rc = an_err_set(err, AN_ERR_NOMEM, "export series: out of memory");
    if (rc != AN_OK)
        goto out;
    snprintf(sql, sizeof sql,
             "COPY (SELECT \"timestamp\", close::float8 FROM trading.%s WHERE symbol = %s%s%s"
             " ORDER BY \"timestamp\") TO STDOUT (FORMAT binary)",
             j->source, sym, tfl ? " AND timeframe = " : "", tfl ? tfl : "");
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        rc = an_pg_res_error(r, c, "export series", err);
        PQclear(r);
        goto out;
    }
    PQclear(r);
    rc = read_copy(c, &rd, err);
    /* finish the COPY whatever happened, so the connection is usable */
    while (rc != AN_OK) {
        char *buf = NULL;
        int len = PQgetCopyData(c, &buf, 0);
        if (buf)
            PQfreemem(buf);
        if (len < 0)
            break;
    }
    for (PGresult *res; (res = PQgetResult(c));) {
        if (rc == AN_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = an_pg_res_error(res, c, "export series", err);
        PQclear(res);
    }
out:
    PQfreemem(sym);
    PQfreemem(tfl);
    an_pg_copy_reader_free(&rd);
    return rc;
}

an_code an_pg_export_closes(an_store *s, const char *source, const char *symbol, const char *tf,
                            an_closes_cb cb, void *ctx, an_err *err)
{
    export_job j = {source, symbol, tf, cb, ctx};
    return an_pg_with_conn(s->impl, export_job_run, &j, err);
}
