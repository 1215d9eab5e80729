/*
 * optimize_equity.c - one combination of a stored optimizer run replayed
 * for the dashboard: GET /api/v1/optimization/equity (routes_optimize.c)
 * calls an_optimize_equity on a server worker thread. The run's spec
 * (strategy, timeframe, grid, fees, slippage: optimization.runs) and period
 * come from the store, the candles from the store as the run read them
 * (an_opt_load_candles), and the combination is backtested again with its
 * trades; the equity curve is the portfolio's value at every bar.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/market.h"
#include "tasks/optimize.h"

/* Sets *field and the error. */
static an_code fail(const char **field, const char *name, an_code code, an_err *err,
                    const char *msg, const char *detail)
{
    *field = name;
    return an_err_set(err, code, "%s%s", msg, detail ? detail : "");
}

/* Checks params (a JSON object text) against the run's strategy and grid
 * and writes the one-combination grid text ("fast=10,slow=30") into one. */
static an_code check_params(const char *strategy, const char *grid_text, const char *params,
                            char *one, size_t len, an_err *err)
{
    json_error_t je;
    json_t *p = json_loads(params, 0, &je);
    an_grid g;
    an_code rc = AN_OK;
    if (!json_is_object(p)) {
        json_decref(p);
        return an_err_set(err, AN_ERR_INVALID, "params must be a JSON object of the parameters");
    }
    if ((rc = an_grid_parse(strategy, grid_text, (size_t)-1, &g, err)) != AN_OK) {
        json_decref(p);
        return an_err_set(err, AN_ERR_INTERNAL, "the run's stored grid does not parse: %s",
                          err->msg);
    }
    const an_strategy *st = g.strategy;
    size_t off = 0;
    one[0] = 0;
    if (json_object_size(p) != (size_t)st->n_params)
        rc = an_err_set(err, AN_ERR_NOT_FOUND, "params must give exactly the %d parameters of %s",
                        st->n_params, st->name);
    double vals[AN_STRAT_MAX_PARAMS];
    for (int i = 0; rc == AN_OK && i < st->n_params; i++) {
        json_t *v = json_object_get(p, st->params[i].name);
        if (!json_is_number(v)) {
            rc = an_err_set(err, v ? AN_ERR_INVALID : AN_ERR_NOT_FOUND, "params: %s is %s",
                            st->params[i].name,
                            v ? "not a number" : "missing: the run has no such combination");
            break;
        }
        vals[i] = json_number_value(v);
        int in_grid = 0;
        for (size_t j = 0; j < g.count[i]; j++)
            in_grid |= fabs(g.values[i][j] - vals[i]) <= 1e-9 * fmax(1, fabs(vals[i]));
        if (!in_grid)
            rc = an_err_set(err, AN_ERR_NOT_FOUND, "params: %s=%.10g is not in the run's grid (%s)",
                            st->params[i].name, vals[i], g.text);
        else
            off += (size_t)snprintf(one + off, off < len ? len - off : 0, "%s%s=%.10g",
                                    i ? "," : "", st->params[i].name, vals[i]);
    }
    if (rc == AN_OK && an_strategy_skip(st, vals))
        rc = an_err_set(err, AN_ERR_NOT_FOUND, "params: %s skips this combination (%s)", st->name,
                        one);
    an_grid_free(&g);
    json_decref(p);
    return rc;
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *time_json(int64_t ms)
{
    char t[40];
    return json_string(an_time_format(ms, t, sizeof t));
}

/* The reply's equity, trades and metrics over the loaded candles. */
static an_code replay(const char *one, const char *strategy, const an_fill *fill, double bpy,
                      const an_candles *cs, json_t *out, an_err *err)
{
    an_grid g;
    an_sweep *sw = NULL;
    an_trade *tr = NULL;
    size_t nt = 0, n = cs->n;
    double *close = malloc((n ? n : 1) * sizeof *close), *eq = malloc((n ? n : 1) * sizeof *eq);
    double *ret = NULL;
    an_metrics m;
    an_code rc = an_grid_parse(strategy, one, 1, &g, err);
    if (rc != AN_OK) {
        free(close);
        free(eq);
        return rc;
    }
    if (!close || !eq) {
        rc = an_err_set(err, AN_ERR_NOMEM, "equity: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        close[i] = cs->v[i].close;
    if ((rc = an_sweep_create(&g, close, n, bpy, &sw, err)) != AN_OK ||
        (rc = an_sweep_backtest(sw, 0, 0, n, fill, &m, &tr, &nt, err)) != AN_OK)
        goto out;
    if (!(ret = malloc((nt ? nt : 1) * sizeof *ret))) {
        rc = an_err_set(err, AN_ERR_NOMEM, "equity: out of memory");
        goto out;
    }
    an_sweep_equity(sw, tr, nt, 0, n, fill, eq, ret);
    json_t *ej = json_array(), *tj = json_array(), *mj = json_object();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            ej, json_pack("{s:o, s:o}", "timestamp", time_json(cs->v[i].ts), "value", num(eq[i])));
    for (size_t k = 0; k < nt; k++) {
        int open = tr[k].exit == SIZE_MAX;
        size_t e = tr[k].entry, x = tr[k].exit;
        json_array_append_new(
            tj, json_pack("{s:o, s:o, s:o, s:o, s:o}", "entry_time", time_json(cs->v[e].ts),
                          "entry_price", num(cs->v[e].close * (1 + fill->slippage)), "exit_time",
                          open ? json_null() : time_json(cs->v[x].ts), "exit_price",
                          open ? json_null() : num(cs->v[x].close * (1 - fill->slippage)), "return",
                          open ? json_null() : num(ret[k])));
    }
    for (int k = 0; k < AN_METRIC_COUNT; k++)
        json_object_set_new(mj, an_metric_names[k],
                            k == 5 ? json_integer((json_int_t)m.trades)
                                   : num(an_metric_get(&m, k)));
    json_object_set_new(out, "equity", ej);
    json_object_set_new(out, "trades", tj);
    json_object_set_new(out, "metrics", mj);
out:
    free(ret);
    free(tr);
    an_sweep_destroy(sw);
    an_grid_free(&g);
    free(close);
    free(eq);
    return rc;
}

an_code an_optimize_equity(an_store *s, const char *run_id, const char *symbol, const char *params,
                           json_t **out, const char **field, an_err *err)
{
    *out = NULL;
    *field = NULL;
    if (!run_id || !*run_id || strlen(run_id) > 64)
        return fail(field, "run_id", AN_ERR_INVALID, err, "run_id must be 1 to 64 characters",
                    NULL);
    if (!symbol)
        return fail(field, "symbol", AN_ERR_INVALID, err, "symbol is required", NULL);
    if (an_symbol_validate(symbol, err) != AN_OK) {
        *field = "symbol";
        return AN_ERR_INVALID;
    }
    if (!params || !*params)
        return fail(field, "params", AN_ERR_INVALID, err,
                    "params is required: the combination's parameters as a JSON object", NULL);
    char *text = NULL;
    an_code rc = an_store_opt_run_spec(s, run_id, &text, err);
    if (rc != AN_OK)
        return rc;
    if (!text)
        return fail(field, "run_id", AN_ERR_NOT_FOUND, err, "no optimizer run ", run_id);
    json_error_t je;
    json_t *run = json_loads(text, 0, &je), *res = NULL;
    free(text);
    const char *strategy = json_string_value(json_object_get(run, "strategy"));
    const char *tf = json_string_value(json_object_get(run, "timeframe"));
    const char *grid = json_string_value(json_object_get(run, "grid"));
    json_t *syms = json_object_get(run, "symbols"), *v;
    size_t i;
    int found = 0;
    json_array_foreach(syms, i, v) found |=
        json_is_string(v) && !strcmp(json_string_value(v), symbol);
    int monthly = 0;
    int64_t tf_ms = tf ? an_timeframe_ms(tf, &monthly) : 0;
    char one[256];
    an_candles cs = {0};
    const char *source;
    if (!strategy || !grid || tf_ms <= 0 || monthly) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "optimizer run %s: its stored spec is incomplete",
                        run_id);
        goto out;
    }
    if (!found) {
        rc = fail(field, "symbol", AN_ERR_NOT_FOUND, err, "the run has no results for ", symbol);
        goto out;
    }
    /* malformed params are a 400; a well-formed combination the run does not
     * have (other parameters, a value off its grid, a skipped one) a 404 */
    if ((rc = check_params(strategy, grid, params, one, sizeof one, err)) != AN_OK) {
        if (rc == AN_ERR_INVALID || rc == AN_ERR_NOT_FOUND)
            *field = "params";
        goto out;
    }
    an_fill fill = an_fill_default();
    fill.fees = json_number_value(json_object_get(run, "fees"));
    fill.slippage = json_number_value(json_object_get(run, "slippage"));
    int64_t from = json_integer_value(json_object_get(run, "period_start"));
    int64_t to = json_integer_value(json_object_get(run, "period_end"));
    if ((rc = an_opt_load_candles(s, symbol, tf, from, to, &cs, &source, err)) != AN_OK)
        goto out;
    if (cs.n < 2) {
        rc = fail(field, "symbol", AN_ERR_NOT_FOUND, err,
                  "the run's candles are no longer stored for ", symbol);
        goto out;
    }
    res = json_object();
    json_object_set_new(res, "run_id", json_string(run_id));
    json_object_set_new(res, "strategy", json_string(strategy));
    json_object_set_new(res, "symbol", json_string(symbol));
    json_object_set_new(res, "timeframe", json_string(tf));
    json_object_set_new(res, "params", json_loads(params, 0, &je));
    json_object_set_new(res, "fees", json_real(fill.fees));
    json_object_set_new(res, "slippage", json_real(fill.slippage));
    rc = replay(one, strategy, &fill, 365.0 * 86400000.0 / (double)tf_ms, &cs, res, err);
    if (rc == AN_OK) {
        *out = res;
        res = NULL;
    }
out:
    an_candles_free(&cs);
    json_decref(res);
    json_decref(run);
    return rc;
}
