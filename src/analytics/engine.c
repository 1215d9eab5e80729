/*
 * engine.c - the DuckDB analytical engine (see engine.h).
 *
 * A run: pick the source (ohlc_data or a rollup), bring its (time, close)
 * series into DuckDB by the embedded, direct or copy path, read it back one
 * data chunk at a time into two arrays, compute every indicator with the
 * TA-Lib-exact kernels, compare against the ledger of the last run
 * (analytics.indicator_runs: through which candle, how many candles, a digest
 * of their (time, close) pairs but the newest, which may have been open), and
 * send the store only the rows at or
 * after the last run's newest candle when the history it saw is unchanged,
 * or every row when it is not (the store's upsert then rewrites only values
 * that differ).
 */
#include "analytics/engine.h"

#include <duckdb.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics/indicators.h"
#include "core/log.h"
#include "store/store_duckdb.h"

static const char *COMPONENT = "indicators";

/* ---- the load path ------------------------------------------------------- */

an_code an_load_pref_parse(const char *s, an_load_pref *out, an_err *err)
{
    if (!s || strcmp(s, "auto") == 0)
        *out = AN_LOAD_AUTO;
    else if (strcmp(s, "direct") == 0)
        *out = AN_LOAD_DIRECT;
    else if (strcmp(s, "copy") == 0)
        *out = AN_LOAD_COPY;
    else
        return an_err_set(err, AN_ERR_INVALID, "unknown load path '%.20s' (auto, direct, copy)", s);
    return AN_OK;
}

/* ---- computing ---------------------------------------------------------- */

/* an_ind_spec_names (core/indspec.h) writes the names the store keeps */
_Static_assert(AN_IND_NAME_MAX == AN_INDICATOR_NAME_MAX, "indicator name sizes differ");

void an_engine_free_outputs(char (*names)[AN_INDICATOR_NAME_MAX], double **out, int n_outputs)
{
    for (int k = 0; out && k < n_outputs; k++)
        free(out[k]);
    free(out);
    free(names);
}

an_code an_engine_compute(const an_ind_set *set, const double *closes, size_t n,
                          char (**out_names)[AN_INDICATOR_NAME_MAX], double ***out, int *n_outputs,
                          an_err *err)
{
    int total = 0;
    for (int i = 0; i < set->n; i++)
        total += an_ind_spec_outputs(&set->v[i]);
    char(*names)[AN_INDICATOR_NAME_MAX] = calloc((size_t)total, sizeof *names);
    double **vals = calloc((size_t)total, sizeof *vals);
    if (!names || !vals)
        goto nomem;
    for (int k = 0; k < total; k++)
        if (!(vals[k] = malloc((n ? n : 1) * sizeof **vals)))
            goto nomem;
    int k = 0;
    for (int i = 0; i < set->n; i++) {
        const an_ind_spec *sp = &set->v[i];
        an_ind_spec_names(sp, names + k);
        switch (sp->kind) {
        case AN_IND_SMA: an_ind_sma(closes, n, sp->p[0], vals[k]); break;
        case AN_IND_EMA: an_ind_ema(closes, n, sp->p[0], vals[k]); break;
        case AN_IND_RSI: an_ind_rsi(closes, n, sp->p[0], vals[k]); break;
        case AN_IND_BBANDS:
            an_ind_bbands(closes, n, sp->p[0], sp->d[0], sp->d[1], vals[k], vals[k + 1],
                          vals[k + 2]);
            break;
        case AN_IND_MACD:
            if (an_ind_macd(closes, n, sp->p[0], sp->p[1], sp->p[2], vals[k], vals[k + 1],
                            vals[k + 2]) != 0)
                goto nomem;
            break;
        }
        k += an_ind_spec_outputs(sp);
    }
    *out_names = names;
    *out = vals;
    *n_outputs = total;
    return AN_OK;
nomem:
    an_engine_free_outputs(names, vals, total);
    return an_err_set(err, AN_ERR_NOMEM, "indicators: out of memory for %zu candles", n);
}

/* ---- the series in DuckDB ----------------------------------------------- */

static an_code duck_fail(duckdb_result *r, const char *what, an_err *err)
{
    const char *m = duckdb_result_error(r);
    an_code rc = an_err_set(err, AN_ERR_DB, "%s: %s", what, m ? m : "DuckDB error");
    duckdb_destroy_result(r);
    return rc;
}

static an_code run_sql(duckdb_connection con, const char *sql, const char *what, an_err *err)
{
    duckdb_result r;
    if (duckdb_query(con, sql, &r) != DuckDBSuccess)
        return duck_fail(&r, what, err);
    duckdb_destroy_result(&r);
    return AN_OK;
}

/* Reads a (BIGINT ms, DOUBLE close) result one data chunk at a time. */
static an_code read_series(duckdb_connection con, const char *sql, an_closes *out, an_err *err)
{
    duckdb_result r;
    if (duckdb_query(con, sql, &r) != DuckDBSuccess)
        return duck_fail(&r, "read series", err);
    an_code rc = AN_OK;
    duckdb_data_chunk chunk;
    while (rc == AN_OK && (chunk = duckdb_fetch_chunk(r)) != NULL) {
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        duckdb_vector tv = duckdb_data_chunk_get_vector(chunk, 0);
        duckdb_vector cv = duckdb_data_chunk_get_vector(chunk, 1);
        uint64_t *valid = duckdb_vector_get_validity(cv);
        for (idx_t i = 0; valid && i < rows; i++)
            if (!duckdb_validity_row_is_valid(valid, i))
                rc = an_err_set(err, AN_ERR_DB, "read series: a NULL close price");
        if (rc == AN_OK)
            rc = an_closes_push(out, duckdb_vector_get_data(tv), duckdb_vector_get_data(cv), rows,
                                err);
        duckdb_destroy_data_chunk(&chunk);
    }
    duckdb_destroy_result(&r);
    return rc;
}

static an_code open_memory_duckdb(duckdb_database *db, duckdb_connection *con, an_err *err)
{
    duckdb_config cfg = NULL;
    char *open_err = NULL;
    if (duckdb_create_config(&cfg) != DuckDBSuccess)
        return an_err_set(err, AN_ERR_NOMEM, "DuckDB: cannot create a configuration");
    duckdb_set_config(cfg, "autoinstall_known_extensions", "false");
    duckdb_set_config(cfg, "autoload_known_extensions", "false");
    duckdb_state st = duckdb_open_ext(NULL, db, cfg, &open_err);
    duckdb_destroy_config(&cfg);
    if (st != DuckDBSuccess) {
        an_code rc = an_err_set(err, AN_ERR_DB, "DuckDB: %s", open_err ? open_err : "open failed");
        duckdb_free(open_err);
        return rc;
    }
    if (duckdb_connect(*db, con) != DuckDBSuccess) {
        duckdb_close(db);
        return an_err_set(err, AN_ERR_DB, "DuckDB: cannot connect");
    }
    return AN_OK;
}

/* The series' SQL over a relation named rel ("trading.ohlc_data", ...). */
static void series_sql(char *buf, size_t len, const char *rel, const char *symbol, const char *tf,
                       int epoch_ms)
{
    /* symbol and timeframe are validated ([A-Z0-9/] and a known interval):
     * safe to quote as literals */
    snprintf(buf, len, "SELECT %s, close FROM %s WHERE symbol = '%s'%s%s%s ORDER BY \"timestamp\"",
             epoch_ms ? "epoch_ms(\"timestamp\")" : "\"timestamp\"", rel, symbol,
             tf ? " AND timeframe = '" : "", tf ? tf : "", tf ? "'" : "");
}

static an_code load_embedded(an_store *s, const char *source, const char *symbol, const char *tf,
                             an_closes *out, an_err *err)
{
    duckdb_connection con = NULL;
    if (duckdb_connect(an_duckdb_store_database(s), &con) != DuckDBSuccess)
        return an_err_set(err, AN_ERR_DB, "DuckDB: cannot connect to the store's database");
    char rel[48], sql[512];
    snprintf(rel, sizeof rel, "trading.%s", source);
    series_sql(sql, sizeof sql, rel, symbol, tf, 1);
    an_code rc = read_series(con, sql, out, err);
    duckdb_disconnect(&con);
    return rc;
}

/* Appends each streamed batch to the DuckDB table through an appender. */
typedef struct copy_ctx {
    duckdb_appender app;
} copy_ctx;

static an_code copy_batch(void *vctx, const int64_t *ts, const double *close, size_t n, an_err *err)
{
    copy_ctx *c = vctx;
    for (size_t i = 0; i < n; i++) {
        if (duckdb_append_int64(c->app, ts[i]) != DuckDBSuccess ||
            duckdb_append_double(c->app, close[i]) != DuckDBSuccess ||
            duckdb_appender_end_row(c->app) != DuckDBSuccess)
            return an_err_set(err, AN_ERR_DB, "copy into DuckDB: %s",
                              duckdb_appender_error(c->app));
    }
    return AN_OK;
}

static an_code load_copy(an_store *s, const char *source, const char *symbol, const char *tf,
                         an_closes *out, an_err *err)
{
    duckdb_database db = NULL;
    duckdb_connection con = NULL;
    copy_ctx ctx = {NULL};
    an_code rc = open_memory_duckdb(&db, &con, err);
    if (rc != AN_OK)
        return rc;
    rc = run_sql(con, "CREATE TABLE series (\"timestamp\" BIGINT, close DOUBLE)", "copy", err);
    if (rc == AN_OK && duckdb_appender_create(con, NULL, "series", &ctx.app) != DuckDBSuccess)
        rc = an_err_set(err, AN_ERR_DB, "copy: cannot create an appender");
    if (rc == AN_OK)
        rc = an_store_export_closes(s, source, symbol, tf, copy_batch, &ctx, err);
    if (rc == AN_OK && duckdb_appender_close(ctx.app) != DuckDBSuccess)
        rc = an_err_set(err, AN_ERR_DB, "copy: %s", duckdb_appender_error(ctx.app));
    if (ctx.app)
        duckdb_appender_destroy(&ctx.app);
    if (rc == AN_OK)
        rc = read_series(con, "SELECT \"timestamp\", close FROM series ORDER BY \"timestamp\"", out,
                         err);
    duckdb_disconnect(&con);
    duckdb_close(&db);
    return rc;
}

static const char *extension_path(char *buf, size_t len)
{
    const char *dir = getenv("AUTONAMA_DUCKDB_EXTENSION_DIR");
    snprintf(buf, len, "%s/postgres_scanner.duckdb_extension",
             dir && *dir ? dir : AN_DUCKDB_EXTENSION_DIR);
    return buf;
}

/* Appends s to buf as the body of an SQL string literal ('' for '). */
static size_t sql_quote(char *buf, size_t len, const char *s)
{
    size_t o = 0;
    for (; *s && o + 2 < len; s++) {
        if (*s == '\'')
            buf[o++] = '\'';
        buf[o++] = *s;
    }
    buf[o] = '\0';
    return o;
}

static an_code load_direct(an_store *s, const char *source, const char *symbol, const char *tf,
                           an_closes *out, an_err *err)
{
    duckdb_database db = NULL;
    duckdb_connection con = NULL;
    an_code rc = open_memory_duckdb(&db, &con, err);
    if (rc != AN_OK)
        return rc;
    const char *conninfo = an_store_pg_conninfo(s);
    /* a server that takes one connection at a time (the PGlite test server)
     * must not find it held by our idle pool */
    an_store_release_idle(s);
    size_t cap = 2 * strlen(conninfo) + 2048;
    char *sql = malloc(cap), *q = malloc(cap), path[600], inner[512];
    if (!sql || !q) {
        rc = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto out;
    }
    extension_path(path, sizeof path);
    snprintf(sql, cap, "LOAD '%s'", path);
    if ((rc = run_sql(con, sql, "load the DuckDB postgres extension", err)) != AN_OK)
        goto out;
    /* one connection is enough for one postgres_query, and the PGlite test
     * server takes no more than one at a time */
    run_sql(con, "SET pg_pool_max_connections = 1", "postgres extension settings", err);
    an_err_clear(err);
    size_t o = (size_t)snprintf(sql, cap, "ATTACH '");
    o += sql_quote(sql + o, cap - o, conninfo);
    snprintf(sql + o, cap - o, "' AS pg (TYPE postgres, READ_ONLY)");
    rc = run_sql(con, sql, "attach PostgreSQL", err);
    memset(sql, 0, cap); /* it held the password */
    if (rc != AN_OK)
        goto out;
    /* the WHERE clause runs on the server: TimescaleDB excludes chunks, and a
     * hypertable's empty parent is never scanned on its own */
    char rel[48];
    snprintf(rel, sizeof rel, "trading.%s", source);
    series_sql(inner, sizeof inner, rel, symbol, tf, 0);
    o = (size_t)snprintf(q, cap,
                         "SELECT epoch_ms(\"timestamp\"), close::DOUBLE FROM "
                         "postgres_query('pg', '");
    o += sql_quote(q + o, cap - o, inner);
    snprintf(q + o, cap - o, "') ORDER BY 1");
    rc = read_series(con, q, out, err);
out:
    if (rc != AN_OK && err) {
        /* DuckDB's messages quote the connection string: never pass the
         * password on */
        char red[AN_ERR_MSG_MAX];
        an_log_redact(err->msg, red, sizeof red);
        memcpy(err->msg, red, sizeof red);
    }
    free(sql);
    free(q);
    duckdb_disconnect(&con);
    duckdb_close(&db);
    return rc;
}

/* ---- the run ------------------------------------------------------------ */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Order-independent digest of (time, close) pairs [0, n). */
static uint64_t digest(const an_closes *s, size_t n)
{
    uint64_t d = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &s->close[i], sizeof bits);
        d += mix64((uint64_t)s->ts[i] * 0x100000001b3ULL ^ mix64(bits));
    }
    return d;
}

static double elapsed(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static an_code pick_source(an_store *s, const char *symbol, const char *tf, char *source,
                           an_err *err)
{
    int64_t ts;
    int found = 0;
    an_code rc = an_store_get_latest_timestamp(s, symbol, tf, &ts, &found, err);
    if (rc != AN_OK)
        return rc;
    if (found || (strcmp(tf, "1h") != 0 && strcmp(tf, "1d") != 0)) {
        strcpy(source, "ohlc_data");
        return AN_OK;
    }
    snprintf(source, 16, "ohlc_%s", tf);
    /* plain PostgreSQL's rollups are materialized views: bring them up to date */
    if (an_store_get_mode(s) == AN_STORE_POSTGRES)
        rc = an_store_refresh_rollups(s, INT64_MIN, INT64_MAX, err);
    return rc;
}

/* The checks and the source choice both loads share: symbol and timeframe
 * valid, res->source picked, *tf_filter the timeframe to select on
 * (NULL for a rollup, which holds one timeframe). */
static an_code series_source(an_store *s, const char *symbol, const char *timeframe,
                             an_engine_result *res, const char **tf_filter, an_err *err)
{
    if (an_symbol_validate(symbol, err) != AN_OK)
        return AN_ERR_INVALID;
    if (!an_timeframe_valid(timeframe))
        return an_err_set(err, AN_ERR_INVALID, "unknown timeframe '%.16s'", timeframe);
    an_code rc = pick_source(s, symbol, timeframe, res->source, err);
    *tf_filter = strcmp(res->source, "ohlc_data") == 0 ? timeframe : NULL;
    return rc;
}

/* 1. the series into DuckDB and back out as arrays: embedded for the DuckDB
 * store, else direct or copy as pref says (auto: direct, then copy when
 * direct fails, the reason kept in res->fallback_reason). */
static an_code load_series(an_store *s, const char *symbol, const char *tf_filter,
                           an_load_pref pref, an_engine_result *res, an_closes *ser, an_err *err)
{
    if (an_store_get_mode(s) == AN_STORE_DUCKDB) {
        strcpy(res->load_path, "embedded");
        return load_embedded(s, res->source, symbol, tf_filter, ser, err);
    }
    if (pref == AN_LOAD_COPY) {
        strcpy(res->load_path, "copy");
        return load_copy(s, res->source, symbol, tf_filter, ser, err);
    }
    strcpy(res->load_path, "direct");
    an_code rc = load_direct(s, res->source, symbol, tf_filter, ser, err);
    if (rc == AN_OK || pref != AN_LOAD_AUTO)
        return rc;
    snprintf(res->fallback_reason, sizeof res->fallback_reason, "%.250s", err->msg);
    AN_WARN(COMPONENT, "msg=\"direct load failed, using COPY\" symbol=%s reason=\"%.200s\"", symbol,
            err->msg);
    an_err_clear(err);
    an_closes_free(ser);
    strcpy(res->load_path, "copy");
    return load_copy(s, res->source, symbol, tf_filter, ser, err);
}

an_code an_engine_load_closes(an_store *s, const char *symbol, const char *timeframe,
                              an_load_pref pref, int64_t since_ms, int64_t until_ms, int64_t **ts,
                              double **close, size_t *n, an_engine_result *res, an_err *err)
{
    memset(res, 0, sizeof *res);
    *ts = NULL;
    *close = NULL;
    *n = 0;
    an_err local; /* err may be NULL: the fallback reason reads the message */
    if (!err)
        err = &local;
    const char *tf_filter;
    an_code rc = series_source(s, symbol, timeframe, res, &tf_filter, err);
    if (rc != AN_OK)
        return rc;
    an_closes ser = {0};
    if ((rc = load_series(s, symbol, tf_filter, pref, res, &ser, err)) != AN_OK) {
        an_closes_free(&ser);
        return rc;
    }
    /* the period: the series is in time order (ORDER BY on every path) */
    size_t lo = 0, hi = ser.n;
    while (lo < hi && ser.ts[lo] < since_ms)
        lo++;
    while (hi > lo && ser.ts[hi - 1] >= until_ms)
        hi--;
    if (lo > 0) {
        memmove(ser.ts, ser.ts + lo, (hi - lo) * sizeof *ser.ts);
        memmove(ser.close, ser.close + lo, (hi - lo) * sizeof *ser.close);
    }
    *ts = ser.ts;
    *close = ser.close;
    *n = hi - lo;
    res->candles = (int64_t)*n;
    return AN_OK;
}

/* 3. what changed since the last run: *from is the first candle whose rows
 * are sent (0 and res->full = 1 unless the last run, with the same spec, saw
 * exactly the first candles of this series). */
static an_code first_to_send(an_store *s, const char *symbol, const char *timeframe,
                             const an_ind_set *set, const an_closes *ser, an_engine_result *res,
                             size_t *from, an_err *err)
{
    an_indicator_run last;
    int found = 0;
    *from = 0;
    res->full = 1;
    an_code rc = an_store_get_indicator_run(s, symbol, timeframe, &last, &found, err);
    if (rc != AN_OK || !found || strcmp(last.spec, set->text) != 0)
        return rc;
    /* the candles the last run saw: [0, k) with ts <= through */
    size_t k = 0;
    while (k < ser->n && ser->ts[k] <= last.through_ms)
        k++;
    /* the newest of them may have been open then and changed since: it is
     * left out of the digest, and its rows are sent again */
    if ((int64_t)k == last.candles && k > 0 && digest(ser, k - 1) == last.digest) {
        *from = k - 1;
        res->full = 0;
    }
    return AN_OK;
}

/* 4. the rows from candle `from` on, every value TA-Lib would have, to the
 * store (time-major: each write batch then covers its own time range, which
 * a first run finds empty and writes with a plain INSERT). */
static an_code send_rows(an_store *s, const char *symbol, const char *timeframe,
                         const an_closes *ser, size_t from, char (*names)[AN_INDICATOR_NAME_MAX],
                         double **vals, int nout, an_engine_result *res, an_err *err)
{
    size_t cap = (ser->n - from) * (size_t)nout;
    int64_t *bts = malloc((cap ? cap : 1) * sizeof *bts);
    int *bidx = malloc((cap ? cap : 1) * sizeof *bidx);
    double *bval = malloc((cap ? cap : 1) * sizeof *bval);
    an_code rc = AN_OK;
    if (!bts || !bidx || !bval) {
        rc = an_err_set(err, AN_ERR_NOMEM, "indicators: out of memory");
        goto out;
    }
    size_t m = 0;
    for (int k = 0; k < nout; k++)
        for (size_t i = 0; i < ser->n; i++)
            res->computed += !isnan(vals[k][i]);
    for (size_t i = from; i < ser->n; i++) {
        for (int k = 0; k < nout; k++) {
            if (isnan(vals[k][i]))
                continue;
            bts[m] = ser->ts[i];
            bidx[m] = k;
            bval[m] = vals[k][i];
            m++;
        }
    }
    const char *name_ptrs[AN_IND_MAX * 3];
    for (int k = 0; k < nout; k++)
        name_ptrs[k] = names[k];
    an_indicator_batch batch = {name_ptrs, nout, bts, bidx, bval, m};
    res->sent = (int64_t)m;
    rc = an_store_upsert_indicators(s, symbol, timeframe, &batch, &res->written, err);
out:
    free(bts);
    free(bidx);
    free(bval);
    return rc;
}

an_code an_engine_run(an_store *s, const char *symbol, const char *timeframe, const an_ind_set *set,
                      an_load_pref pref, an_engine_result *res, an_err *err)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(res, 0, sizeof *res);
    an_closes ser = {0};
    char(*names)[AN_INDICATOR_NAME_MAX] = NULL;
    double **vals = NULL;
    int nout = 0;
    an_code rc = AN_OK;
    an_err local; /* err may be NULL: the fallback reason reads the message */
    if (!err)
        err = &local;
    const char *tf_filter;
    if ((rc = series_source(s, symbol, timeframe, res, &tf_filter, err)) != AN_OK)
        return rc;

    if ((rc = load_series(s, symbol, tf_filter, pref, res, &ser, err)) != AN_OK)
        goto out;
    res->candles = (int64_t)ser.n;
    if (ser.n == 0)
        goto out;
    for (size_t i = 1; i < ser.n; i++)
        if (ser.ts[i] <= ser.ts[i - 1]) {
            rc = an_err_set(err, AN_ERR_DB, "%s %s: the series is not in time order", symbol,
                            timeframe);
            goto out;
        }
    /* 2. every indicator over the whole series */
    size_t from = 0;
    if ((rc = an_engine_compute(set, ser.close, ser.n, &names, &vals, &nout, err)) != AN_OK ||
        (rc = first_to_send(s, symbol, timeframe, set, &ser, res, &from, err)) != AN_OK ||
        (rc = send_rows(s, symbol, timeframe, &ser, from, names, vals, nout, res, err)) != AN_OK)
        goto out;
    /* 5. the ledger */
    an_indicator_run now = {{0}, ser.ts[ser.n - 1], (int64_t)ser.n, digest(&ser, ser.n - 1)};
    snprintf(now.spec, sizeof now.spec, "%s", set->text);
    rc = an_store_put_indicator_run(s, symbol, timeframe, &now, err);
out:
    res->seconds = elapsed(&t0);
    if (rc == AN_OK)
        AN_INFO(COMPONENT,
                "msg=\"calculated\" symbol=%s timeframe=%s source=%s load_path=%s candles=%" PRId64
                " sent=%" PRId64 " inserted=%" PRId64 " updated=%" PRId64 " full=%d seconds=%.3f",
                symbol, timeframe, res->source, res->load_path, res->candles, res->sent,
                res->written.inserted, res->written.updated, res->full, res->seconds);
    an_engine_free_outputs(names, vals, nout);
    an_closes_free(&ser);
    return rc;
}
