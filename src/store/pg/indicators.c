/*
 * indicators.c - the PostgreSQL backend's analytics.indicators (the seed's
 * long format) and analytics.indicator_runs: batched writes of (time, name
 * index, value) binary arrays through write.c's one write path, reads, and
 * the ledger of indicator runs. Any thread; each op borrows one pooled
 * connection.
 */
#include "store/pg/pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char UPSERT_SQL[] =
    "WITH up AS ("
    " INSERT INTO analytics.indicators AS d"
    " (symbol, timeframe, \"timestamp\", indicator_name, indicator_value)"
    " SELECT $1, $2, t.ts, ($3::text[])[t.k], t.v"
    " FROM unnest($4::timestamptz[], $5::int4[], $6::float8[]) AS t(ts, k, v)"
    " ON CONFLICT (symbol, timeframe, indicator_name, \"timestamp\") DO UPDATE SET"
    " indicator_value = excluded.indicator_value"
    " WHERE d.indicator_value IS DISTINCT FROM excluded.indicator_value"
    " RETURNING (xmax = 0) AS ins)"
    " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up";

static const char INSERT_SQL[] =
    "INSERT INTO analytics.indicators"
    " (symbol, timeframe, \"timestamp\", indicator_name, indicator_value)"
    " SELECT $1, $2, t.ts, ($3::text[])[t.k], t.v"
    " FROM unnest($4::timestamptz[], $5::int4[], $6::float8[]) AS t(ts, k, v)";

/* With the batch's names ($5), the whole primary key (symbol, timeframe,
 * indicator_name, timestamp) bounds the index scan: without them only
 * (symbol, timeframe) would, and the scan would read every stored value of
 * the series. */
const char AN_PG_IND_RANGE_EMPTY_SQL[] =
    "SELECT NOT EXISTS (SELECT 1 FROM analytics.indicators WHERE symbol = $1 AND timeframe = $2"
    " AND indicator_name = ANY ($5::text[])"
    " AND \"timestamp\" BETWEEN $3::timestamptz AND $4::timestamptz)";

/* array_send format of n values: kind 0 timestamptz (from ms), 1 int4
 * (name index + 1), 2 float8 */
static int binary_values(an_pg_buf *b, const an_indicator_batch *ib, size_t off, size_t n, int kind)
{
    static const uint32_t OIDS[3] = {AN_OID_TIMESTAMPTZ, AN_OID_INT4, AN_OID_FLOAT8};
    size_t w = kind == 1 ? 4 : 8;
    if (an_pg_buf_reserve(b, 20 + n * (4 + w)) < 0)
        return -1;
    unsigned char *p = an_pg_array_header((unsigned char *)b->p, OIDS[kind], n);
    for (size_t i = off; i < off + n; i++) {
        an_pg_put_be32(p, (uint32_t)w);
        if (kind == 0) {
            an_pg_put_be64(p + 4, (uint64_t)(ib->ts[i] * 1000 - AN_PG_EPOCH_US));
        } else if (kind == 1) {
            an_pg_put_be32(p + 4, (uint32_t)(ib->name_idx[i] + 1));
        } else {
            uint64_t bits;
            memcpy(&bits, &ib->value[i], sizeof bits);
            an_pg_put_be64(p + 4, bits);
        }
        p += 4 + w;
    }
    b->n = 20 + n * (4 + w);
    return 0;
}

/* The names as a text[] literal; names are [a-z0-9_.] (checked by store.c). */
static int names_literal(an_pg_buf *names, const an_indicator_batch *b)
{
    size_t need = 3;
    for (int k = 0; k < b->n_names; k++)
        need += strlen(b->names[k]) + 1;
    if (an_pg_buf_reserve(names, need) < 0)
        return -1;
    names->n = 0;
    names->p[names->n++] = '{';
    for (int k = 0; k < b->n_names; k++) {
        size_t l = strlen(b->names[k]);
        if (k)
            names->p[names->n++] = ',';
        memcpy(names->p + names->n, b->names[k], l);
        names->n += l;
    }
    names->p[names->n++] = '}';
    names->p[names->n] = '\0';
    return 0;
}

typedef struct indicator_write {
    const char *symbol, *tf;
    const an_indicator_batch *b;
    an_pg_buf arr[3], names;
} indicator_write;

static an_code indicator_batch(PGconn *c, void *ctx, size_t off, size_t m, an_upsert_counts *counts,
                               an_err *err)
{
    indicator_write *w = ctx;
    const an_indicator_batch *b = w->b;
    int64_t lo = b->ts[off], hi = b->ts[off];
    for (size_t i = off; i < off + m; i++) {
        lo = b->ts[i] < lo ? b->ts[i] : lo;
        hi = b->ts[i] > hi ? b->ts[i] : hi;
    }
    for (int k = 0; k < 3; k++)
        if (binary_values(&w->arr[k], b, off, m, k) < 0)
            return an_err_set(err, AN_ERR_NOMEM, "upsert indicators: out of memory");
    const char *params[6] = {w->symbol, w->tf, w->names.p, w->arr[0].p, w->arr[1].p, w->arr[2].p};
    static const Oid types[6] = {
        0, 0, 0, AN_OID_TIMESTAMPTZ_ARRAY, AN_OID_INT4_ARRAY, AN_OID_FLOAT8_ARRAY};
    static const int formats[6] = {0, 0, 0, 1, 1, 1};
    int lengths[6] = {0, 0, 0, (int)w->arr[0].n, (int)w->arr[1].n, (int)w->arr[2].n};
    an_pg_batch pb = {
        .what = "upsert indicators",
        .range_empty_sql = AN_PG_IND_RANGE_EMPTY_SQL,
        .range_extra = w->names.p,
        .insert_sql = INSERT_SQL,
        .upsert_sql = UPSERT_SQL,
        .nparams = 6,
        .params = params,
        .types = types,
        .lengths = lengths,
        .formats = formats,
        .lo_ms = lo,
        .hi_ms = hi,
        .rows = m,
    };
    return an_pg_write_batch(c, &pb, counts, err);
}

an_code an_pg_upsert_indicators(an_store *s, const char *symbol, const char *tf,
                                const an_indicator_batch *b, an_upsert_counts *counts, an_err *err)
{
    indicator_write w = {.symbol = symbol, .tf = tf, .b = b};
    an_code rc;
    if (names_literal(&w.names, b) < 0)
        rc = an_err_set(err, AN_ERR_NOMEM, "upsert indicators: out of memory");
    else
        rc = an_pg_write(s->impl, "upsert indicators", b->n, indicator_batch, &w, counts, err);
    for (int k = 0; k < 3; k++)
        free(w.arr[k].p);
    free(w.names.p);
    return rc;
}

/* Binary rows of (timestamptz, name text, value float8). */
static an_code read_points(PGresult *r, void *ctx, an_err *err)
{
    if (PQnfields(r) != 3 || PQftype(r, 0) != AN_OID_TIMESTAMPTZ ||
        (PQftype(r, 1) != AN_OID_TEXT && PQftype(r, 1) != AN_OID_VARCHAR) ||
        PQftype(r, 2) != AN_OID_FLOAT8 || PQfformat(r, 0) != 1)
        return an_err_set(err, AN_ERR_DB, "get indicators: unexpected result columns");
    an_code rc = AN_OK;
    for (int i = 0; i < PQntuples(r) && rc == AN_OK; i++)
        rc = an_store_points_push(ctx, an_pg_bin_ms(r, i, 0), PQgetvalue(r, i, 1),
                                  (size_t)PQgetlength(r, i, 1), an_pg_bin_f8(r, i, 2), err);
    return rc;
}

an_code an_pg_get_indicators(an_store *s, const char *symbol, const char *tf, const char *name,
                             const an_query *q, an_indicator_points *out, an_err *err)
{
    char sql[768];
    const char *params[6] = {symbol, tf};
    int np = 2;
    int pos = snprintf(sql, sizeof sql,
                       "SELECT \"timestamp\", indicator_name, indicator_value"
                       " FROM analytics.indicators WHERE symbol = $1 AND"
                       " timeframe = $2 AND indicator_value IS NOT NULL");
    if (name) {
        params[np++] = name;
        pos += snprintf(sql + pos, sizeof sql - (size_t)pos, " AND indicator_name = $%d", np);
    }
    an_pg_range bufs;
    an_pg_append_range(sql, sizeof sql, pos, q, "indicator_name, ", params, &np, &bufs);
    return an_pg_exec_binary(s->impl, sql, np, params, read_points, out, "get indicators", err);
}

an_code an_pg_get_run(an_store *s, const char *symbol, const char *tf, an_indicator_run *run,
                      int *found, an_err *err)
{
    const char *params[2] = {symbol, tf};
    an_store_one one = {&AN_RUN_FIELDS, run, found};
    return an_pg_exec(s->impl,
                      "SELECT spec, (extract(epoch FROM through_ts) * 1000)::int8,"
                      " candles, digest FROM analytics.indicator_runs WHERE symbol = $1"
                      " AND timeframe = $2",
                      2, params, an_pg_read_one, &one, NULL, "read indicator run", err);
}

an_code an_pg_put_run(an_store *s, const char *symbol, const char *tf, const an_indicator_run *run,
                      an_err *err)
{
    char through[24], candles[24], digest[24];
    snprintf(through, sizeof through, "%" PRId64, run->through_ms);
    snprintf(candles, sizeof candles, "%" PRId64, run->candles);
    snprintf(digest, sizeof digest, "%" PRIu64, run->digest);
    const char *params[6] = {symbol, tf, run->spec, through, candles, digest};
    return an_pg_exec(
        s->impl,
        "INSERT INTO analytics.indicator_runs (symbol, timeframe, spec, through_ts, candles,"
        " digest, updated_at) VALUES ($1, $2, $3, TIMESTAMPTZ 'epoch' + $4::int8 * INTERVAL"
        " '1 millisecond', $5, $6, now()) ON CONFLICT (symbol, timeframe) DO UPDATE SET spec ="
        " excluded.spec, through_ts = excluded.through_ts, candles = excluded.candles, digest ="
        " excluded.digest, updated_at = excluded.updated_at",
        6, params, NULL, NULL, NULL, "save indicator run", err);
}
