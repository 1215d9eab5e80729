/*
 * optimize.c - the PostgreSQL backend's optimization.results (schema v4) and
 * optimization.runs (v5): a run's spec and rows written in one statement
 * (jsonb parameters), and the runs, one run's spec and the results read
 * back as one JSON text each. Any thread;
 * each op borrows one pooled connection.
 */
#include "store/pg/pg_internal.h"

#include <stdio.h>
#include <stdlib.h>

#define PG_MS(col) "(extract(epoch FROM " col ") * 1000)::int8"

typedef struct opt_query {
    const char *sql, *what;
    int n;
    const char *const *params;
    char **out; /* the first value, malloc'd */
} opt_query;

static an_code query_job(PGconn *c, void *ctx, an_err *err)
{
    opt_query *q = ctx;
    if (!q->out) {
        PGresult *r = PQexecParams(c, q->sql, q->n, NULL, q->params, NULL, NULL, 0);
        an_code rc =
            PQresultStatus(r) == PGRES_COMMAND_OK ? AN_OK : an_pg_res_error(r, c, q->what, err);
        PQclear(r);
        return rc;
    }
    return an_pg_query_value(c, q->sql, q->n, q->params, q->out, q->what, err);
}

an_code an_pg_put_opt_results(an_store *s, const char *run_json, const char *rows_json, an_err *err)
{
    /* one statement: the run and its rows together or nothing */
    const char *params[2] = {run_json, rows_json};
    opt_query q = {
        "WITH run AS (INSERT INTO optimization.runs (run_id, strategy, timeframe, grid, fees,"
        " slippage, spec) SELECT x.run_id, x.strategy, x.timeframe, x.grid, x.fees, x.slippage,"
        " x.spec FROM jsonb_to_record($1::jsonb) AS x(run_id text, strategy text, timeframe"
        " text, grid text, fees float8, slippage float8, spec jsonb))"
        " INSERT INTO optimization.results (run_id, symbol, strategy, timeframe, parameters,"
        " metrics, period_start, period_end, sample) SELECT r.run_id, r.symbol, r.strategy,"
        " r.timeframe, r.parameters, r.metrics,"
        " TIMESTAMPTZ 'epoch' + r.period_start * INTERVAL '1 millisecond',"
        " TIMESTAMPTZ 'epoch' + r.period_end * INTERVAL '1 millisecond', r.sample"
        " FROM jsonb_to_recordset($2::jsonb) AS r(run_id text, symbol text, strategy text,"
        " timeframe text, parameters jsonb, metrics jsonb, period_start int8, period_end int8,"
        " sample text)",
        "save optimizer results", 2, params, NULL};
    return an_pg_with_conn(s->impl, query_job, &q, err);
}

an_code an_pg_opt_run_spec(an_store *s, const char *run_id, char **json, an_err *err)
{
    const char *params[1] = {run_id};
    opt_query q = {
        "SELECT json_build_object('run_id', run_id, 'strategy', strategy, 'timeframe',"
        " timeframe, 'grid', grid, 'fees', fees, 'slippage', slippage, 'spec', spec,"
        " 'symbols', (SELECT array_agg(DISTINCT r.symbol ORDER BY r.symbol) FROM"
        " optimization.results r WHERE r.run_id = $1), 'period_start', (SELECT"
        " " PG_MS("min(r.period_start)") " FROM optimization.results r WHERE"
                                         " r.run_id = $1), 'period_end', (SELECT " PG_MS(
                                             "max(r.period_end)") " FROM optimization.results r "
                                                                  "WHERE r.run_id = $1))::text"
                                                                  " FROM optimization.runs WHERE "
                                                                  "run_id = $1",
        "read an optimizer run", 1, params, json};
    return an_pg_with_conn(s->impl, query_job, &q, err);
}

an_code an_pg_opt_runs(an_store *s, long limit, char **json, an_err *err)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[1] = {lim};
    opt_query q = {
        "SELECT coalesce(json_agg(r ORDER BY r.created_ms DESC), '[]'::json)::text FROM ("
        " SELECT g.*, x.grid, x.fees, x.slippage, x.spec,"
        " (SELECT json_build_object('symbol', b.symbol, 'sample', b.sample,"
        " 'parameters', b.parameters, 'metrics', b.metrics) FROM optimization.results b"
        " WHERE b.run_id = g.run_id AND b.sample <> 'out'"
        " ORDER BY (b.metrics->>'sharpe')::float8 DESC NULLS LAST, b.id LIMIT 1) AS best"
        " FROM (SELECT run_id, min(strategy) AS strategy, min(timeframe) AS timeframe,"
        " array_agg(DISTINCT symbol ORDER BY symbol) AS symbols,"
        " array_agg(DISTINCT sample ORDER BY sample) AS samples, count(*) AS rows,"
        " " PG_MS(
            "min(period_start)") " AS period_start,"
                                 " " PG_MS(
                                     "max(period_end)") " AS period_end,"
                                                        " to_char(min(created_at) AT TIME ZONE "
                                                        "'UTC', "
                                                        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                                                        " AS created_at, " PG_MS(
                                                            "min(created_at)") " AS created_ms"
                                                                               " FROM "
                                                                               "optimization."
                                                                               "results WHERE "
                                                                               "run_id IS NOT NULL "
                                                                               "GROUP BY run_id"
                                                                               " ORDER BY "
                                                                               "min(created_at) "
                                                                               "DESC LIMIT "
                                                                               "$1::int8) g"
                                                                               " LEFT JOIN "
                                                                               "optimization.runs"
                                                                               " x ON x.run_id = "
                                                                               "g.run_id) r",
        "read optimizer runs", 1, params, json};
    return an_pg_with_conn(s->impl, query_job, &q, err);
}

an_code an_pg_opt_results(an_store *s, const char *run_id, const char *symbol, const char *sample,
                          const char *sort, int ascending, long limit, char **json, an_err *err)
{
    char lim[24], sql[2048];
    snprintf(lim, sizeof lim, "%ld", limit);
    /* sort is a metric name (store.c checked it) */
    snprintf(
        sql, sizeof sql,
        "SELECT coalesce(json_agg(t), '[]'::json)::text FROM (SELECT id, run_id, symbol,"
        " strategy, timeframe, parameters, metrics, " PG_MS(
            "period_start") " AS period_start,"
                            " " PG_MS(
                                "period_end") " AS period_end, sample, to_char(created_at AT "
                                              "TIME ZONE"
                                              " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
                                              "AS created_at"
                                              " FROM optimization.results WHERE ($1 = '' OR "
                                              "run_id = $1) AND ($2 = '' OR"
                                              " symbol = $2) AND ($4 = '' OR sample = $4) ORDER BY "
                                              "(metrics->>'%s')::float8 %s NULLS LAST, id"
                                              " LIMIT $3::int8) t",
        sort, ascending ? "ASC" : "DESC");
    const char *params[4] = {run_id, symbol, lim, sample};
    opt_query q = {sql, "read optimizer results", 4, params, json};
    return an_pg_with_conn(s->impl, query_job, &q, err);
}
