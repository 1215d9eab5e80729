/*
 * optimize.c - the PostgreSQL backend's optimization.results (schema v4):
 * the optimizer's rows written as one jsonb parameter (jsonb_to_recordset),
 * and the runs and results read back as one JSON text each. Any thread;
 * each op borrows one pooled connection.
 */
#include "store/pg/pg_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* The SQL reads one row: the JSON text, never NULL (coalesce). */
static an_code json_query(an_store *s, const char *sql, int n, const char *const *params,
                          char **json, const char *what, an_err *err)
{
    int found = 0;
    an_store_one one = {&AN_TEXT_DUP_FIELDS, json, &found};
    return an_pg_exec(s->impl, sql, n, params, an_pg_read_one, &one, NULL, what, err);
}

an_code an_pg_put_opt_results(an_store *s, const char *rows_json, an_err *err)
{
    const char *params[1] = {rows_json};
    return an_pg_exec(
        s->impl,
        "INSERT INTO optimization.results (run_id, symbol, strategy, timeframe, parameters,"
        " metrics, period_start, period_end, sample) SELECT r.run_id, r.symbol, r.strategy,"
        " r.timeframe, r.parameters, r.metrics,"
        " TIMESTAMPTZ 'epoch' + r.period_start * INTERVAL '1 millisecond',"
        " TIMESTAMPTZ 'epoch' + r.period_end * INTERVAL '1 millisecond', r.sample"
        " FROM jsonb_to_recordset($1::jsonb) AS r(run_id text, symbol text, strategy text,"
        " timeframe text, parameters jsonb, metrics jsonb, period_start int8, period_end int8,"
        " sample text)",
        1, params, NULL, NULL, NULL, "save optimizer results", err);
}

an_code an_pg_opt_runs(an_store *s, long limit, char **json, an_err *err)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[1] = {lim};
    return json_query(
        s,
        "SELECT coalesce(json_agg(r ORDER BY r.created_ms DESC), '[]'::json)::text FROM ("
        " SELECT g.*, (SELECT json_build_object('symbol', b.symbol, 'sample', b.sample,"
        " 'parameters', b.parameters, 'metrics', b.metrics) FROM optimization.results b"
        " WHERE b.run_id = g.run_id AND b.sample <> 'out'"
        " ORDER BY (b.metrics->>'sharpe')::float8 DESC NULLS LAST, b.id LIMIT 1) AS best"
        " FROM (SELECT run_id, min(strategy) AS strategy, min(timeframe) AS timeframe,"
        " array_agg(DISTINCT symbol ORDER BY symbol) AS symbols,"
        " array_agg(DISTINCT sample ORDER BY sample) AS samples, count(*) AS rows,"
        " (extract(epoch FROM min(period_start)) * 1000)::int8 AS period_start,"
        " (extract(epoch FROM max(period_end)) * 1000)::int8 AS period_end,"
        " to_char(min(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
        " AS created_at, (extract(epoch FROM min(created_at)) * 1000)::int8 AS created_ms"
        " FROM optimization.results WHERE run_id IS NOT NULL GROUP BY run_id"
        " ORDER BY min(created_at) DESC LIMIT $1::int8) g) r",
        1, params, json, "read optimizer runs", err);
}

an_code an_pg_opt_results(an_store *s, const char *run_id, const char *symbol, const char *sort,
                          int ascending, long limit, char **json, an_err *err)
{
    char lim[24], sql[2048];
    snprintf(lim, sizeof lim, "%ld", limit);
    /* sort is a metric name (store.c checked it) */
    snprintf(sql, sizeof sql,
             "SELECT coalesce(json_agg(t), '[]'::json)::text FROM (SELECT id, run_id, symbol,"
             " strategy, timeframe, parameters, metrics,"
             " (extract(epoch FROM period_start) * 1000)::int8 AS period_start,"
             " (extract(epoch FROM period_end) * 1000)::int8 AS period_end, sample,"
             " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
             " AS created_at FROM optimization.results WHERE ($1 = '' OR run_id = $1)"
             " AND ($2 = '' OR symbol = $2) ORDER BY (metrics->>'%s')::float8 %s NULLS LAST, id"
             " LIMIT $3::int8) t",
             sort, ascending ? "ASC" : "DESC");
    const char *params[3] = {run_id, symbol, lim};
    return json_query(s, sql, 3, params, json, "read optimizer results", err);
}
