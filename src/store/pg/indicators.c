/*
 * indicators.c - the PostgreSQL backend's analytics.indicators (the seed's
 * long format) and analytics.indicator_runs: batched writes through
 * write.c's one write path (binary COPY into an empty key range on real
 * servers, (time, name index, value) binary arrays otherwise), reads, and
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

/* Whether any stored row shares a (name, time) range with the batch: $5 the
 * batch's names, $6 and $7 each name's first and last time in the batch
 * ($3..$4 the batch's whole range). Per name, the whole primary key
 * (symbol, timeframe, indicator_name, timestamp) bounds one index probe
 * (LIMIT 1), whatever the table holds. Per name and not over the batch's
 * whole range: rows arrive time-major (the engine) or name-major (sync), so
 * a batch of 50,000 rows usually starts inside a time or a name the
 * previous batch of the same transaction wrote, and one range over all the
 * names would find those rows and send every batch after the first down
 * the upsert path. */
const char AN_PG_IND_RANGE_EMPTY_SQL[] =
    "SELECT NOT EXISTS (SELECT 1 FROM unnest($5::text[], $6::timestamptz[], $7::timestamptz[])"
    " AS r(name, lo, hi), LATERAL (SELECT 1 FROM analytics.indicators d WHERE d.symbol = $1"
    " AND d.timeframe = $2 AND d.indicator_name = r.name AND d.\"timestamp\" BETWEEN"
    " greatest(r.lo, $3::timestamptz) AND least(r.hi, $4::timestamptz) LIMIT 1) AS hit)";

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

/* The six parameters of INSERT_SQL and UPSERT_SQL for rows [off, off + m):
 * symbol, timeframe, the names literal, then the time, name index and value
 * arrays built into arr. -1 when out of memory. */
typedef struct ind_params {
    const char *v[6];
    int len[6];
} ind_params;

static const Oid PARAM_TYPES[6] = {
    0, 0, 0, AN_OID_TIMESTAMPTZ_ARRAY, AN_OID_INT4_ARRAY, AN_OID_FLOAT8_ARRAY};
static const int PARAM_FORMATS[6] = {0, 0, 0, 1, 1, 1};

static int batch_params(ind_params *p, an_pg_buf arr[3], const an_pg_buf *names, const char *symbol,
                        const char *tf, const an_indicator_batch *b, size_t off, size_t m)
{
    for (int k = 0; k < 3; k++)
        if (binary_values(&arr[k], b, off, m, k) < 0)
            return -1;
    *p = (ind_params){{symbol, tf, names->p, arr[0].p, arr[1].p, arr[2].p},
                      {0, 0, 0, (int)arr[0].n, (int)arr[1].n, (int)arr[2].n}};
    return 0;
}

/* The names as a text[] literal, each quoted (a name may be "null"); names
 * are [a-z0-9_.] (checked by store.c). */
static int names_literal(an_pg_buf *names, const an_indicator_batch *b)
{
    size_t need = 3;
    for (int k = 0; k < b->n_names; k++)
        need += strlen(b->names[k]) + 3;
    if (an_pg_buf_reserve(names, need) < 0)
        return -1;
    names->n = 0;
    names->p[names->n++] = '{';
    for (int k = 0; k < b->n_names; k++)
        names->n += (size_t)sprintf(names->p + names->n, "%s\"%s\"", k ? "," : "", b->names[k]);
    names->p[names->n++] = '}';
    names->p[names->n] = '\0';
    return 0;
}

/* The plain insert as binary COPY (real servers; the PGlite test server dies
 * on COPY FROM STDIN and keeps INSERT_SQL): as for candles, the rows stream
 * straight into the table with no arrays to build and unnest. */
static const char COPY_SQL[] =
    "COPY analytics.indicators (symbol, timeframe, \"timestamp\", indicator_name,"
    " indicator_value) FROM STDIN (FORMAT binary)";

int an_pg_indicator_copy_rows(an_pg_buf *b, const char *symbol, const char *tf,
                              const an_indicator_batch *ib, size_t off, size_t m)
{
    size_t ls = strlen(symbol), lt = strlen(tf), name_max = 0;
    for (int k = 0; k < ib->n_names; k++)
        name_max = strlen(ib->names[k]) > name_max ? strlen(ib->names[k]) : name_max;
    b->n = 0;
    size_t row = 2 + 4 + ls + 4 + lt + 12 + 4 + name_max + 12;
    if (an_pg_buf_reserve(b, AN_PG_COPY_HEAD + m * row + 2) < 0)
        return -1;
    unsigned char *p = an_pg_copy_head((unsigned char *)b->p);
    for (size_t i = off; i < off + m; i++) {
        int k = ib->name_idx[i];
        uint64_t bits;
        memcpy(&bits, &ib->value[i], sizeof bits);
        p[0] = 0;
        p[1] = 5;
        p = an_pg_copy_text(p + 2, symbol, ls);
        p = an_pg_copy_text(p, tf, lt);
        p = an_pg_copy_8(p, (uint64_t)(ib->ts[i] * 1000 - AN_PG_EPOCH_US));
        p = an_pg_copy_text(p, ib->names[k], strlen(ib->names[k]));
        p = an_pg_copy_8(p, bits);
    }
    p[0] = 0xff;
    p[1] = 0xff;
    b->n = (size_t)(p + 2 - (unsigned char *)b->p);
    return 0;
}

typedef struct indicator_write {
    const char *symbol, *tf;
    const an_indicator_batch *b;
    int use_copy;
    size_t off, m;    /* the batch being written */
    int64_t *lo, *hi; /* per name: its first and last time in the batch */
    an_pg_buf arr[3], names, copy, range[3];
} indicator_write;

/* The batch's per-name ranges as three text[] literals (names, first and
 * last times) for the range check, and the batch's whole range. */
static int name_ranges(indicator_write *w, int64_t *lo_all, int64_t *hi_all)
{
    const an_indicator_batch *b = w->b;
    for (int k = 0; k < b->n_names; k++) {
        w->lo[k] = INT64_MAX;
        w->hi[k] = INT64_MIN;
    }
    *lo_all = INT64_MAX;
    *hi_all = INT64_MIN;
    for (size_t i = w->off; i < w->off + w->m; i++) {
        int k = b->name_idx[i];
        w->lo[k] = b->ts[i] < w->lo[k] ? b->ts[i] : w->lo[k];
        w->hi[k] = b->ts[i] > w->hi[k] ? b->ts[i] : w->hi[k];
        *lo_all = b->ts[i] < *lo_all ? b->ts[i] : *lo_all;
        *hi_all = b->ts[i] > *hi_all ? b->ts[i] : *hi_all;
    }
    for (int j = 0; j < 3; j++) {
        w->range[j].n = 0;
        if (an_pg_buf_reserve(&w->range[j], 2 + (size_t)b->n_names * 48) < 0)
            return -1;
        w->range[j].p[w->range[j].n++] = '{';
    }
    for (int k = 0; k < b->n_names; k++) {
        if (w->lo[k] > w->hi[k])
            continue; /* not in this batch */
        char *p[3] = {w->range[0].p + w->range[0].n, w->range[1].p + w->range[1].n,
                      w->range[2].p + w->range[2].n};
        int sep = w->range[0].n > 1;
        w->range[0].n += (size_t)sprintf(p[0], "%s\"%s\"", sep ? "," : "", b->names[k]);
        char t[40];
        w->range[1].n +=
            (size_t)sprintf(p[1], "%s%s", sep ? "," : "", an_time_format(w->lo[k], t, sizeof t));
        w->range[2].n +=
            (size_t)sprintf(p[2], "%s%s", sep ? "," : "", an_time_format(w->hi[k], t, sizeof t));
    }
    for (int j = 0; j < 3; j++) {
        w->range[j].p[w->range[j].n++] = '}';
        w->range[j].p[w->range[j].n] = '\0';
    }
    return 0;
}

static int copy_rows(void *ctx, an_pg_buf *rows)
{
    const indicator_write *w = ctx;
    return an_pg_indicator_copy_rows(rows, w->symbol, w->tf, w->b, w->off, w->m);
}

static an_code indicator_batch(PGconn *c, void *ctx, size_t off, size_t m, an_upsert_counts *counts,
                               an_err *err)
{
    indicator_write *w = ctx;
    const an_indicator_batch *b = w->b;
    int64_t lo, hi;
    w->off = off;
    w->m = m;
    if (name_ranges(w, &lo, &hi) < 0)
        return an_err_set(err, AN_ERR_NOMEM, "upsert indicators: out of memory");
    ind_params ip;
    if (batch_params(&ip, w->arr, &w->names, w->symbol, w->tf, b, off, m) < 0)
        return an_err_set(err, AN_ERR_NOMEM, "upsert indicators: out of memory");
    an_pg_batch pb = {
        .what = "upsert indicators",
        .range_empty_sql = AN_PG_IND_RANGE_EMPTY_SQL,
        .range_extra = (const char *const[3]){w->range[0].p, w->range[1].p, w->range[2].p},
        .range_nextra = 3,
        .insert_sql = INSERT_SQL,
        .upsert_sql = UPSERT_SQL,
        .nparams = 6,
        .params = ip.v,
        .types = PARAM_TYPES,
        .lengths = ip.len,
        .formats = PARAM_FORMATS,
        .lo_ms = lo,
        .hi_ms = hi,
        .rows = m,
        .copy_sql = w->use_copy ? COPY_SQL : NULL,
        .copy_rows = copy_rows,
        .copy_ctx = w,
        .copy_buf = &w->copy,
    };
    return an_pg_write_batch(c, &pb, counts, err);
}

an_code an_pg_upsert_indicators(an_store *s, const char *symbol, const char *tf,
                                const an_indicator_batch *b, an_upsert_counts *counts, an_err *err)
{
    pg_store *ps = s->impl;
    indicator_write w = {.symbol = symbol, .tf = tf, .b = b, .use_copy = !ps->is_pglite};
    an_code rc;
    w.lo = malloc((size_t)b->n_names * sizeof *w.lo);
    w.hi = malloc((size_t)b->n_names * sizeof *w.hi);
    if (!w.lo || !w.hi || names_literal(&w.names, b) < 0)
        rc = an_err_set(err, AN_ERR_NOMEM, "upsert indicators: out of memory");
    else
        rc = an_pg_write(ps, "upsert indicators", b->n, indicator_batch, &w, counts, err);
    for (int k = 0; k < 3; k++) {
        free(w.arr[k].p);
        free(w.range[k].p);
    }
    free(w.names.p);
    free(w.copy.p);
    free(w.lo);
    free(w.hi);
    return rc;
}

an_code an_pg_indicator_insert_rows(PGconn *c, const char *symbol, const char *tf,
                                    const an_indicator_batch *b, size_t off, size_t m,
                                    an_pg_buf bufs[4], an_err *err)
{
    ind_params ip;
    if (names_literal(&bufs[3], b) < 0 ||
        batch_params(&ip, bufs, &bufs[3], symbol, tf, b, off, m) < 0)
        return an_err_set(err, AN_ERR_NOMEM, "insert indicators: out of memory");
    PGresult *r = PQexecParams(c, INSERT_SQL, 6, PARAM_TYPES, ip.v, ip.len, PARAM_FORMATS, 0);
    an_code rc = AN_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = an_pg_res_error(r, c, "insert indicators", err);
    PQclear(r);
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

/* ---- many series at once (the live path's closes) ----------------------- */

/* Every series' rows as binary arrays (series number, time, name number,
 * value: nothing formatted), the series' symbols and timeframes and the
 * names as text[] literals. */
static const char UPSERT_MANY_SQL[] =
    "INSERT INTO analytics.indicators AS d"
    " (symbol, timeframe, \"timestamp\", indicator_name, indicator_value)"
    " SELECT ($1::text[])[t.k], ($2::text[])[t.k], t.ts, ($3::text[])[t.n], t.v"
    " FROM unnest($4::int4[], $5::timestamptz[], $6::int4[], $7::float8[]) AS t(k, ts, n, v)"
    " ON CONFLICT (symbol, timeframe, indicator_name, \"timestamp\") DO UPDATE SET"
    " indicator_value = excluded.indicator_value"
    " WHERE d.indicator_value IS DISTINCT FROM excluded.indicator_value";
static const Oid MANY_TYPES[7] = {
    0, 0, 0, AN_OID_INT4_ARRAY, AN_OID_TIMESTAMPTZ_ARRAY, AN_OID_INT4_ARRAY, AN_OID_FLOAT8_ARRAY};
static const int MANY_FORMATS[7] = {0, 0, 0, 1, 1, 1, 1};

typedef struct many_ind {
    const an_series_indicators *v;
    size_t n;
} many_ind;

/* Series b's names among names (each once, appended when new): map[k] for
 * its name k. -1 when out of memory. */
static int map_names(const an_indicator_batch *b, const char ***names, int *nnames, int **map)
{
    int *m = realloc(*map, (size_t)(b->n_names ? b->n_names : 1) * sizeof *m);
    if (m)
        *map = m;
    const char **nn = realloc(*names, (size_t)(*nnames + b->n_names + 1) * sizeof *nn);
    if (nn)
        *names = nn;
    if (!m || !nn)
        return -1;
    for (int k = 0; k < b->n_names; k++) {
        int j = 0;
        while (j < *nnames && strcmp(nn[j], b->names[k]) != 0)
            j++;
        if (j == *nnames)
            nn[(*nnames)++] = b->names[k];
        m[k] = j;
    }
    return 0;
}

/* The seven parameters for the series v[from, to) (rows in all) into a.
 * -1 when out of memory. */
static int many_params(an_pg_buf a[7], const an_series_indicators *v, size_t from, size_t to,
                       size_t rows)
{
    a[0].n = a[1].n = 0;
    for (size_t i = from; i < to; i++)
        if (an_pg_text_array_put(&a[0], v[i].symbol, 1) < 0 ||
            an_pg_text_array_put(&a[1], v[i].timeframe, 1) < 0)
            return -1;
    if (an_pg_text_array_end(&a[0]) < 0 || an_pg_text_array_end(&a[1]) < 0)
        return -1;
    static const uint32_t OIDS[4] = {AN_OID_INT4, AN_OID_TIMESTAMPTZ, AN_OID_INT4, AN_OID_FLOAT8};
    unsigned char *p[4];
    for (int k = 0; k < 4; k++) {
        size_t w = k % 2 ? 8 : 4;
        a[3 + k].n = 0;
        if (an_pg_buf_reserve(&a[3 + k], 20 + rows * (4 + w)) < 0)
            return -1;
        p[k] = an_pg_array_header((unsigned char *)a[3 + k].p, OIDS[k], rows);
        a[3 + k].n = 20 + rows * (4 + w);
    }
    /* most often every series has the same names: the map holds */
    const char **names = NULL;
    int nnames = 0, *map = NULL, ok = 1;
    for (size_t i = from; i < to && ok; i++) {
        const an_indicator_batch *b = &v[i].b;
        if (i == from || b->names != v[i - 1].b.names || b->n_names != v[i - 1].b.n_names)
            ok = map_names(b, &names, &nnames, &map) == 0;
        for (size_t r = 0; r < b->n && ok; r++) {
            uint64_t bits;
            memcpy(&bits, &b->value[r], sizeof bits);
            an_pg_put_be32(p[0], 4);
            an_pg_put_be32(p[0] + 4, (uint32_t)(i - from + 1));
            p[1] = an_pg_copy_8(p[1], (uint64_t)(b->ts[r] * 1000 - AN_PG_EPOCH_US));
            an_pg_put_be32(p[2], 4);
            an_pg_put_be32(p[2] + 4, (uint32_t)(map[b->name_idx[r]] + 1));
            p[3] = an_pg_copy_8(p[3], bits);
            p[0] += 8;
            p[2] += 8;
        }
    }
    an_indicator_batch all = {names, nnames, NULL, NULL, NULL, 0};
    ok = ok && names_literal(&a[2], &all) == 0;
    free(names);
    free(map);
    return ok ? 0 : -1;
}

/* One statement per group of series holding up to AN_PG_WRITE_BATCH rows
 * (one series' rows are never split), all in one transaction. */
static an_code many_ind_run(PGconn *c, void *ctx, an_err *err)
{
    many_ind *j = ctx;
    an_pg_buf a[7] = {{0}};
    an_code rc = an_pg_exec_cmd(c, "BEGIN", "upsert indicators", err);
    for (size_t from = 0; from < j->n && rc == AN_OK;) {
        size_t to = from, rows = 0;
        while (to < j->n && (to == from || rows + j->v[to].b.n <= AN_PG_WRITE_BATCH))
            rows += j->v[to++].b.n;
        if (many_params(a, j->v, from, to, rows) < 0) {
            rc = an_err_set(err, AN_ERR_NOMEM, "upsert indicators: out of memory");
            break;
        }
        const char *p[7];
        int len[7];
        for (int k = 0; k < 7; k++) {
            p[k] = a[k].p;
            len[k] = (int)a[k].n;
        }
        PGresult *r = PQexecParams(c, UPSERT_MANY_SQL, 7, MANY_TYPES, p, len, MANY_FORMATS, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            rc = an_pg_res_error(r, c, "upsert indicators", err);
        PQclear(r);
        from = to;
    }
    if (rc == AN_OK)
        rc = an_pg_exec_cmd(c, "COMMIT", "upsert indicators", err);
    for (int k = 0; k < 7; k++)
        free(a[k].p);
    return rc; /* on failure the release rolls the transaction back */
}

an_code an_pg_upsert_indicators_many(an_store *s, const an_series_indicators *v, size_t n,
                                     an_err *err)
{
    many_ind j = {v, n};
    return an_pg_with_conn(s->impl, many_ind_run, &j, err);
}
