/*
 * routes_optimize.c - the optimizer's read routes (issue 13), declared in
 * openapi.json and listed in routes.c's table:
 *   GET /api/v1/optimization/runs[?limit=]      runs, newest first, with their
 *                                              spec and best result
 *   GET /api/v1/optimization/results[?run_id=&symbol=&sample=&sort=sharpe&limit=]
 *   GET /api/v1/optimization/equity?run_id=&symbol=&params=   one
 *                                              combination's equity curve and
 *                                              trades, recomputed
 * The rows come from the store as JSON text (optimization.results); the
 * handlers only validate and wrap; the equity is an_optimize_equity's. Called on the server's
 * worker threads.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/optimize.h"
#include "api/api.h"
#include "api/params.h"
#include "core/market.h"
#include "store/store.h"
#include "tasks/optimize.h"

static void read_failed(an_api_reply *rp, const an_err *err)
{
    unsigned st = an_api_status_for(err->code);
    if (st == 503)
        rp->store_up = 0;
    an_api_error(rp, st, NULL, "%s%s", st == 503 ? "the store is unavailable: " : "", err->msg);
}

/* A store read's outcome as the reply: its error (rc not AN_OK), or its
 * array text wrapped as {"KEY": [...], "count": N}. Frees rows. */
static void reply_rows(an_api_reply *rp, an_code rc, const an_err *err, const char *key, char *rows)
{
    if (rc != AN_OK) {
        free(rows);
        read_failed(rp, err);
        return;
    }
    rp->store_up = 1;
    json_error_t je;
    json_t *arr = json_loads(rows, 0, &je);
    free(rows);
    if (!json_is_array(arr)) {
        json_decref(arr);
        an_api_error(rp, 500, NULL, "the store's rows are not a JSON array: %s", je.text);
        return;
    }
    size_t count = json_array_size(arr);
    json_t *o = json_pack("{s:o, s:I}", key, arr, "count", (json_int_t)count);
    int put = an_api_put_json(rp, o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (put != 0)
        return;
    rp->rows = (int64_t)count;
    rp->cache = AN_API_REVALIDATE;
}

static an_store *store_of(const an_api_request *rq, an_api_reply *rp)
{
    an_err err = {0};
    an_store *s = an_service_store(rq->svc, &err);
    if (!s) {
        rp->store_up = 0;
        an_api_error(rp, 503, NULL, "the store is unavailable: %s", err.msg);
    }
    return s;
}

static int parse_limit(const an_api_request *rq, an_api_reply *rp, long def, long *limit)
{
    const char *v = an_api_param(rq, "limit");
    an_err err = {0};
    *limit = def;
    if (v && an_api_parse_limit(v, 5000, limit, &err) != AN_OK) {
        an_api_error(rp, 400, "limit", "%s", err.msg);
        return -1;
    }
    return 0;
}

void an_api_h_opt_runs(const an_api_request *rq, an_api_reply *rp)
{
    long limit;
    if (parse_limit(rq, rp, 50, &limit) != 0)
        return;
    an_store *s = store_of(rq, rp);
    if (!s)
        return;
    char *rows = NULL;
    an_err err = {0};
    an_code rc = an_store_opt_runs(s, limit, &rows, &err);
    reply_rows(rp, rc, &err, "runs", rows);
}

void an_api_h_opt_results(const an_api_request *rq, an_api_reply *rp)
{
    const char *run_id = an_api_param(rq, "run_id"), *symbol = an_api_param(rq, "symbol");
    const char *sort = an_api_param(rq, "sort"), *sample = an_api_param(rq, "sample");
    long limit;
    an_err err = {0};
    if (parse_limit(rq, rp, 100, &limit) != 0)
        return;
    if (run_id && (!*run_id || strlen(run_id) > 64)) {
        an_api_error(rp, 400, "run_id", "run_id must be 1 to 64 characters");
        return;
    }
    if (symbol && an_symbol_validate(symbol, &err) != AN_OK) {
        an_api_error(rp, 400, "symbol", "%s", err.msg);
        return;
    }
    if (sample && (!*sample || strlen(sample) > 16 ||
                   strspn(sample, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(sample))) {
        an_api_error(rp, 400, "sample",
                     "sample must be in, out, fold-N (a fold's out-of-sample row) or fold-N-in");
        return;
    }
    if (!sort)
        sort = "sharpe";
    if (an_metric_index(sort) < 0) {
        an_api_error(rp, 400, "sort",
                     "unknown metric '%.40s' (total_return, annual_return, sharpe, sortino, "
                     "max_drawdown, trades, win_rate, exposure, profit_factor, final_value)",
                     sort);
        return;
    }
    an_store *s = store_of(rq, rp);
    if (!s)
        return;
    char *rows = NULL;
    an_code rc = an_store_opt_results(s, run_id, symbol, sample, sort, limit, &rows, &err);
    reply_rows(rp, rc, &err, "results", rows);
}

void an_api_h_opt_equity(const an_api_request *rq, an_api_reply *rp)
{
    an_store *s = store_of(rq, rp);
    if (!s)
        return;
    json_t *out = NULL;
    const char *field = NULL;
    an_err err = {0};
    if (an_optimize_equity(s, an_api_param(rq, "run_id"), an_api_param(rq, "symbol"),
                           an_api_param(rq, "params"), &out, &field, &err) != AN_OK) {
        if (field)
            an_api_error(rp, an_api_status_for(err.code), field, "%s", err.msg);
        else
            read_failed(rp, &err);
        return;
    }
    rp->store_up = 1;
    int put = an_api_put_json(rp, out, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(out);
    if (put == 0)
        rp->cache = AN_API_REVALIDATE;
}
