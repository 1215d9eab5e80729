/*
 * indicators.c - the DuckDB backend's analytics.indicators (the seed's long
 * format) and analytics.indicator_runs: writes through write.c's one write
 * path, reads, and the ledger of indicator runs. Any thread: writes under
 * the store's lock, reads on a read connection (readers.c).
 */
#include "store/duckdb/duck_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char COUNT_SQL[] =
    "SELECT count(*), count(*) FILTER (WHERE o.indicator_value IS DISTINCT FROM s.value)"
    " FROM temp.an_ind_stage s JOIN analytics.indicators o ON o.\"timestamp\" = s.ts AND"
    " o.indicator_name = s.name WHERE o.symbol = $1 AND o.timeframe = $2";

static const char UPSERT_SQL[] =
    "INSERT INTO analytics.indicators (symbol, timeframe, \"timestamp\", indicator_name,"
    " indicator_value) SELECT $1::VARCHAR, $2::VARCHAR, ts, name, value FROM temp.an_ind_stage"
    " ON CONFLICT (symbol, timeframe, indicator_name, \"timestamp\") DO UPDATE SET"
    " indicator_value = excluded.indicator_value WHERE indicators.indicator_value IS DISTINCT"
    " FROM excluded.indicator_value";

static const char INSERT_SQL[] =
    "INSERT INTO analytics.indicators (symbol, timeframe, \"timestamp\", indicator_name,"
    " indicator_value) SELECT $1::VARCHAR, $2::VARCHAR, ts, name, value FROM temp.an_ind_stage";

static an_code stage_indicators(duckdb_appender app, const void *ctx, an_err *err)
{
    const an_indicator_batch *b = ctx;
    for (size_t i = 0; i < b->n; i++) {
        if (duckdb_append_timestamp(app, (duckdb_timestamp){b->ts[i] * 1000}) != DuckDBSuccess ||
            duckdb_append_varchar(app, b->names[b->name_idx[i]]) != DuckDBSuccess ||
            duckdb_append_double(app, b->value[i]) != DuckDBSuccess ||
            duckdb_appender_end_row(app) != DuckDBSuccess)
            return an_duck_appender_error(app, "upsert indicators", err);
    }
    return AN_OK;
}

an_code an_duck_upsert_indicators(an_store *s, const char *symbol, const char *tf,
                                  const an_indicator_batch *b, an_upsert_counts *counts,
                                  an_err *err)
{
    an_duck_key key = {symbol, tf};
    an_duck_write w = {
        .what = "upsert indicators",
        .stage_table = "an_ind_stage",
        .count_sql = COUNT_SQL,
        .insert_sql = INSERT_SQL,
        .upsert_sql = UPSERT_SQL,
        .rows = b->n,
        .stage = stage_indicators,
        .stage_ctx = b,
        .bind_count = an_duck_bind_key,
        .bind_write = an_duck_bind_key,
        .bctx = &key,
    };
    return an_duck_write_rows(s->impl, &w, counts, err);
}

typedef struct points_query {
    const char *symbol, *tf, *name; /* name NULL: every name, not a parameter */
    int64_t lo, hi;
} points_query;

static int bind_points(duckdb_prepared_statement st, const void *ctx)
{
    const points_query *pq = ctx;
    idx_t p = 1;
    int ok = duckdb_bind_varchar(st, p++, pq->symbol) == DuckDBSuccess &&
             duckdb_bind_varchar(st, p++, pq->tf) == DuckDBSuccess;
    if (pq->name)
        ok = ok && duckdb_bind_varchar(st, p++, pq->name) == DuckDBSuccess;
    ok = ok && duckdb_bind_int64(st, p++, pq->lo) == DuckDBSuccess &&
         duckdb_bind_int64(st, p++, pq->hi) == DuckDBSuccess;
    return ok ? (int)(p - 1) : -1;
}

/* Rows of (ms, name, value) appended to an an_indicator_points. */
static an_code points_chunk(duckdb_data_chunk chunk, idx_t rows, void *ctx, an_err *err)
{
    const int64_t *ts = an_duck_column(chunk, 0);
    duckdb_string_t *nm = an_duck_column(chunk, 1);
    const double *val = an_duck_column(chunk, 2);
    an_code rc = AN_OK;
    for (idx_t i = 0; i < rows && rc == AN_OK; i++)
        rc = an_store_points_push(ctx, ts[i], duckdb_string_t_data(&nm[i]),
                                  duckdb_string_t_length(nm[i]), val[i], err);
    return rc;
}

static an_code read_points(duckdb_result *r, void *ctx, an_err *err)
{
    return an_duck_each_chunk(r, points_chunk, ctx, err);
}

an_code an_duck_get_indicators(an_store *s, const char *symbol, const char *tf, const char *name,
                               const an_query *q, an_indicator_points *out, an_err *err)
{
    char sql[512];
    int np = name ? 3 : 2;
    int pos = snprintf(sql, sizeof sql,
                       "SELECT epoch_ms(\"timestamp\"), indicator_name, indicator_value FROM"
                       " analytics.indicators WHERE symbol = $1 AND timeframe = $2 AND"
                       " indicator_value IS NOT NULL%s AND \"timestamp\" >= make_timestamp($%d *"
                       " 1000) AND \"timestamp\" < make_timestamp($%d * 1000) ORDER BY"
                       " indicator_name, \"timestamp\" %s",
                       name ? " AND indicator_name = $3" : "", np + 1, np + 2,
                       q->descending ? "DESC" : "ASC");
    if (q->limit > 0)
        snprintf(sql + pos, sizeof sql - (size_t)pos, " LIMIT %zu", q->limit);
    points_query pq = {
        symbol,
        tf,
        name,
        q->start_ms < AN_DUCK_TS_MIN_MS / 2 ? AN_DUCK_TS_MIN_MS / 2 : q->start_ms,
        q->end_ms > AN_DUCK_TS_MAX_MS / 2 ? AN_DUCK_TS_MAX_MS / 2 : q->end_ms,
    };
    return an_duck_read(s->impl, sql, bind_points, &pq, read_points, out, "get indicators", err);
}

an_code an_duck_get_run(an_store *s, const char *symbol, const char *tf, an_indicator_run *run,
                        int *found, an_err *err)
{
    return an_duck_read_key_one(s->impl,
                                "SELECT spec, epoch_ms(through_ts), candles, digest::VARCHAR FROM"
                                " analytics.indicator_runs WHERE symbol = $1 AND timeframe = $2",
                                symbol, tf, &AN_RUN_FIELDS, run, found, "read indicator run", err);
}

typedef struct run_in {
    an_duck_key key;
    const an_indicator_run *run;
    char digest[24];
} run_in;

static int bind_run(duckdb_prepared_statement st, const void *ctx)
{
    const run_in *in = ctx;
    if (an_duck_bind_key(st, &in->key) < 0 ||
        duckdb_bind_varchar(st, 3, in->run->spec) != DuckDBSuccess ||
        duckdb_bind_int64(st, 4, in->run->through_ms) != DuckDBSuccess ||
        duckdb_bind_int64(st, 5, in->run->candles) != DuckDBSuccess ||
        duckdb_bind_varchar(st, 6, in->digest) != DuckDBSuccess)
        return -1;
    return 6;
}

an_code an_duck_put_run(an_store *s, const char *symbol, const char *tf,
                        const an_indicator_run *run, an_err *err)
{
    run_in in = {{symbol, tf}, run, ""};
    snprintf(in.digest, sizeof in.digest, "%" PRIu64, run->digest);
    return an_duck_run(s->impl,
                       "INSERT INTO analytics.indicator_runs (symbol, timeframe, spec,"
                       " through_ts, candles, digest, updated_at) VALUES ($1, $2, $3,"
                       " make_timestamp($4 * 1000), $5, $6::UBIGINT, current_timestamp)"
                       " ON CONFLICT (symbol, timeframe) DO UPDATE SET spec = excluded.spec,"
                       " through_ts = excluded.through_ts, candles = excluded.candles,"
                       " digest = excluded.digest, updated_at = excluded.updated_at",
                       bind_run, &in, NULL, NULL, NULL, "save indicator run", err);
}
