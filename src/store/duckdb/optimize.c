/*
 * optimize.c - the DuckDB backend's optimization.results (schema v4): the
 * optimizer's rows written from one JSON parameter (from_json + unnest),
 * and the runs and results read back as one JSON text each. Any thread;
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

/* The SQL reads one row: the JSON text, never NULL (coalesce).
 * (an_duck_bind_text binds "" as NULL: the filters take either for "any".) */
static an_code json_query(an_store *s, const char *sql, const texts *t, char **json,
                          const char *what, an_err *err)
{
    int found = 0;
    an_store_one one = {&AN_TEXT_DUP_FIELDS, json, &found};
    return an_duck_run(s->impl, sql, bind_texts, t, an_duck_read_one, &one, NULL, what, err);
}

an_code an_duck_put_opt_results(an_store *s, const char *rows_json, an_err *err)
{
    const char *v[1] = {rows_json};
    texts t = {v, 1};
    return an_duck_run(
        s->impl,
        "INSERT INTO optimization.results (run_id, symbol, strategy, timeframe, parameters,"
        " metrics, period_start, period_end, sample) SELECT r.run_id, r.symbol, r.strategy,"
        " r.timeframe, r.parameters::VARCHAR, r.metrics::VARCHAR,"
        " make_timestamp(r.period_start * 1000), make_timestamp(r.period_end * 1000), r.sample"
        " FROM (SELECT unnest(from_json($1::JSON, '[{\"run_id\":\"VARCHAR\",\"symbol\":"
        "\"VARCHAR\",\"strategy\":\"VARCHAR\",\"timeframe\":\"VARCHAR\",\"parameters\":"
        "\"JSON\",\"metrics\":\"JSON\",\"period_start\":\"BIGINT\",\"period_end\":"
        "\"BIGINT\",\"sample\":\"VARCHAR\"}]')) AS r)",
        bind_texts, &t, NULL, NULL, NULL, "save optimizer results", err);
}

#define DUCK_ISO(col) "strftime(" col ", '%Y-%m-%dT%H:%M:%S.%gZ')"

an_code an_duck_opt_runs(an_store *s, long limit, char **json, an_err *err)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *v[1] = {lim};
    texts t = {v, 1};
    return json_query(
        s,
        "SELECT coalesce(to_json(list(r ORDER BY r.created_ms DESC))::VARCHAR, '[]') FROM ("
        " SELECT g.*, (SELECT json_object('symbol', b.symbol, 'sample', b.sample, 'parameters',"
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
                               " LIMIT $1::BIGINT) g) r",
        &t, json, "read optimizer runs", err);
}

an_code an_duck_opt_results(an_store *s, const char *run_id, const char *symbol, const char *sort,
                            int ascending, long limit, char **json, an_err *err)
{
    char lim[24], sql[2048];
    snprintf(lim, sizeof lim, "%ld", limit);
    /* sort is a metric name (store.c checked it) */
    snprintf(sql, sizeof sql,
             "SELECT coalesce(to_json(list(t ORDER BY t.rank))::VARCHAR, '[]') FROM (SELECT id,"
             " run_id, symbol, strategy, timeframe, json(parameters) AS parameters, json(metrics)"
             " AS metrics, epoch_ms(period_start) AS period_start, epoch_ms(period_end) AS"
             " period_end, sample, %s AS created_at, row_number() OVER"
             " (ORDER BY TRY_CAST(json_extract_string(metrics, '$.%s') AS DOUBLE) %s NULLS LAST,"
             " id) AS rank FROM optimization.results WHERE (coalesce($1, '') = '' OR run_id = $1)"
             " AND (coalesce($2, '') = '' OR symbol = $2) QUALIFY rank <= $3::BIGINT) t",
             DUCK_ISO("created_at"), sort, ascending ? "ASC" : "DESC");
    const char *v[3] = {run_id, symbol, lim};
    texts t = {v, 3};
    return json_query(s, sql, &t, json, "read optimizer results", err);
}
