/*
 * optimize.c - the DuckDB backend's optimization.results (schema v4) and
 * optimization.runs (v5): a run's spec and rows written in one transaction
 * from JSON parameters (from_json + unnest), and the runs, one run's spec
 * and the results read back as one JSON text each. Any thread;
 * each op runs under the store's lock (an_duck_run).
 */
#include "store/duckdb/duck_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct texts {
    const char *const *v;
    int n;
} texts;

static int bind_texts(duckdb_prepared_statement st, const void *ctx)
{
    const texts *t = ctx;
    for (int i = 0; i < t->n; i++)
        if (!an_duck_bind_text(st, (idx_t)i + 1, t->v[i]))
            return -1;
    return t->n;
}

/* The first value of the result as a malloc'd string. (an_duck_bind_text
 * binds "" as NULL: the filters below take either for "any".) */
static an_code read_text(duckdb_result *r, void *ctx, an_err *err)
{
    char **out = ctx;
    char *v = duckdb_row_count(r) > 0 ? duckdb_value_varchar(r, 0, 0) : NULL;
    *out = v ? strdup(v) : NULL;
    if (v)
        duckdb_free(v);
    return *out ? AN_OK : an_err_set(err, AN_ERR_NOMEM, "optimizer results: out of memory");
}

typedef struct put_job {
    const char *run_json, *rows_json;
} put_job;

/* The run's INSERT ($1: [run]) and its rows' ($1: [row, ...]), each from
 * JSON through from_json + unnest. */
static const char *const PUT_SQL[2] = {
    "INSERT INTO optimization.runs (run_id, strategy, timeframe, grid, fees, slippage, spec)"
    " SELECT r.run_id, r.strategy, r.timeframe, r.grid, r.fees, r.slippage,"
    " r.spec::VARCHAR FROM (SELECT unnest(from_json($1::JSON, '[{\"run_id\":\"VARCHAR\","
    "\"strategy\":\"VARCHAR\",\"timeframe\":\"VARCHAR\",\"grid\":\"VARCHAR\","
    "\"fees\":\"DOUBLE\",\"slippage\":\"DOUBLE\",\"spec\":\"JSON\"}]')) AS r)",
    "INSERT INTO optimization.results (run_id, symbol, strategy, timeframe, parameters,"
    " metrics, period_start, period_end, sample) SELECT r.run_id, r.symbol, r.strategy,"
    " r.timeframe, r.parameters::VARCHAR, r.metrics::VARCHAR,"
    " make_timestamp(r.period_start * 1000), make_timestamp(r.period_end * 1000),"
    " r.sample FROM (SELECT unnest(from_json($1::JSON, '[{\"run_id\":\"VARCHAR\","
    "\"symbol\":\"VARCHAR\",\"strategy\":\"VARCHAR\",\"timeframe\":\"VARCHAR\","
    "\"parameters\":\"JSON\",\"metrics\":\"JSON\",\"period_start\":\"BIGINT\","
    "\"period_end\":\"BIGINT\",\"sample\":\"VARCHAR\"}]')) AS r)",
};

/* The run and its rows in one transaction, under the store's lock. */
static an_code put_locked(duck_store *ds, void *ctx, an_err *err)
{
    put_job *j = ctx;
    const char *json[2] = {j->run_json, j->rows_json};
    static const char *const what[2] = {"save optimizer run", "save optimizer results"};
    an_code rc = an_duck_exec_locked(ds, "BEGIN TRANSACTION", "save optimizer results", err);
    if (rc != AN_OK)
        return rc;
    for (int i = 0; i < 2 && rc == AN_OK; i++) {
        texts t = {&json[i], 1};
        rc = an_duck_run_locked(ds, PUT_SQL[i], bind_texts, &t, NULL, NULL, NULL, what[i], err);
    }
    if (rc == AN_OK)
        rc = an_duck_exec_locked(ds, "COMMIT", "save optimizer results", err);
    if (rc != AN_OK)
        an_duck_rollback_locked(ds);
    return rc;
}

an_code an_duck_put_opt_results(an_store *s, const char *run_json, const char *rows_json,
                                an_err *err)
{
    /* from_json reads a list: the run is wrapped as [run] */
    size_t len = strlen(run_json);
    char *wrapped = malloc(len + 3);
    if (!wrapped)
        return an_err_set(err, AN_ERR_NOMEM, "save optimizer results: out of memory");
    snprintf(wrapped, len + 3, "[%s]", run_json);
    put_job j = {wrapped, rows_json};
    an_code rc = an_duck_with_lock(s->impl, put_locked, &j, err);
    free(wrapped);
    return rc;
}

#define DUCK_ISO(col) "strftime(" col ", '%Y-%m-%dT%H:%M:%S.%gZ')"

an_code an_duck_opt_runs(an_store *s, long limit, char **json, an_err *err)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *v[1] = {lim};
    texts t = {v, 1};
    *json = NULL;
    return an_duck_run(
        s->impl,
        "SELECT coalesce(to_json(list(r ORDER BY r.created_ms DESC))::VARCHAR, '[]') FROM ("
        " SELECT g.*, x.grid, x.fees, x.slippage, json(x.spec) AS spec,"
        " (SELECT json_object('symbol', b.symbol, 'sample', b.sample, 'parameters',"
        " json(b.parameters), 'metrics', json(b.metrics)) FROM optimization.results b"
        " WHERE b.run_id = g.run_id AND b.sample <> 'out' ORDER BY"
        " TRY_CAST(json_extract_string(b.metrics, '$.sharpe') AS DOUBLE) DESC NULLS LAST, b.id"
        " LIMIT 1) AS best FROM (SELECT run_id, min(strategy) AS strategy, min(timeframe) AS"
        " timeframe, list(DISTINCT symbol ORDER BY symbol) AS symbols, list(DISTINCT sample"
        " ORDER BY sample) AS samples, count(*) AS \"rows\", epoch_ms(min(period_start)) AS"
        " period_start, epoch_ms(max(period_end)) AS period_end, " DUCK_ISO(
            "min(created_at)") " AS created_at, epoch_ms(min(created_at)) AS created_ms FROM "
                               "optimization.results"
                               " WHERE run_id IS NOT NULL GROUP BY run_id ORDER BY min(created_at) "
                               "DESC"
                               " LIMIT $1::BIGINT) g LEFT JOIN optimization.runs x ON x.run_id = "
                               "g.run_id) r",
        bind_texts, &t, read_text, json, NULL, "read optimizer runs", err);
}

an_code an_duck_opt_results(an_store *s, const char *run_id, const char *symbol, const char *sample,
                            const char *sort, int ascending, long limit, char **json, an_err *err)
{
    char lim[24], sql[2048];
    snprintf(lim, sizeof lim, "%ld", limit);
    /* sort is a metric name (store.c checked it) */
    snprintf(
        sql, sizeof sql,
        "SELECT coalesce(to_json(list(t ORDER BY t.rank))::VARCHAR, '[]') FROM (SELECT id,"
        " run_id, symbol, strategy, timeframe, json(parameters) AS parameters, json(metrics)"
        " AS metrics, epoch_ms(period_start) AS period_start, epoch_ms(period_end) AS"
        " period_end, sample, %s AS created_at, row_number() OVER"
        " (ORDER BY TRY_CAST(json_extract_string(metrics, '$.%s') AS DOUBLE) %s NULLS LAST,"
        " id) AS rank FROM optimization.results WHERE (coalesce($1, '') = '' OR run_id = $1)"
        " AND (coalesce($2, '') = '' OR symbol = $2) AND (coalesce($4, '') = '' OR sample = $4)"
        " QUALIFY rank <= $3::BIGINT) t",
        DUCK_ISO("created_at"), sort, ascending ? "ASC" : "DESC");
    const char *v[4] = {run_id, symbol, lim, sample};
    texts t = {v, 4};
    *json = NULL;
    return an_duck_run(s->impl, sql, bind_texts, &t, read_text, json, NULL,
                       "read optimizer results", err);
}

an_code an_duck_opt_run_spec(an_store *s, const char *run_id, char **json, an_err *err)
{
    const char *v[1] = {run_id};
    texts t = {v, 1};
    *json = NULL;
    an_code rc = an_duck_run(
        s->impl,
        "SELECT coalesce((SELECT json_object('run_id', run_id, 'strategy', strategy, 'timeframe',"
        " timeframe, 'grid', grid, 'fees', fees, 'slippage', slippage, 'spec', json(spec),"
        " 'symbols', (SELECT list(DISTINCT r.symbol ORDER BY r.symbol) FROM optimization.results"
        " r WHERE r.run_id = $1), 'period_start', (SELECT epoch_ms(min(r.period_start)) FROM"
        " optimization.results r WHERE r.run_id = $1), 'period_end', (SELECT"
        " epoch_ms(max(r.period_end)) FROM optimization.results r WHERE r.run_id = $1))::VARCHAR"
        " FROM optimization.runs WHERE run_id = $1), '')",
        bind_texts, &t, read_text, json, NULL, "read an optimizer run", err);
    if (rc == AN_OK && *json && !**json) {
        free(*json); /* no such run */
        *json = NULL;
    }
    return rc;
}
