/*
 * optimize.h - an optimizer run (issue 13): a strategy's grid over stored
 * candles of some symbols, every combination backtested (analytics/
 * optimize.h), in-sample / out-of-sample / walk-forward samples, the metrics
 * stored in optimization.results under one run_id. Called by `autonama
 * optimize` on the command's thread.
 */
#ifndef AN_TASKS_OPTIMIZE_H
#define AN_TASKS_OPTIMIZE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "analytics/optimize.h"
#include "core/error.h"
#include "store/store.h"

typedef struct an_opt_spec {
    const char *strategy, *grid, *sort;
    double split;     /* 0: none; else the in-sample fraction, (0, 1) */
    int walk_forward; /* 0: none; else the number of folds */
    size_t keep;      /* 0: every combination; else the best K per symbol */
    size_t max_combinations;
    an_fill fill;
} an_opt_spec;

/* Takes the optimizer's own flags (--strategy, --grid, --split,
 * --walk-forward, --keep, --sort, --fees, --slippage, --max-combinations)
 * out of argv[0..argc): they are parsed into spec, the other arguments are
 * left in argv (*argc updated) for the configuration. AN_ERR_INVALID names a
 * bad value. */
an_code an_opt_spec_from_args(int *argc, char **argv, an_opt_spec *spec, an_err *err);

/* The same from a task's JSON arguments: strategy, grid, sort (strings),
 * split, fees, slippage (numbers), walk_forward, keep, max_combinations
 * (integers); unknown keys other than symbols, timeframe, since and until
 * are refused. The strings point into args. */
an_code an_opt_spec_from_json(json_t *args, an_opt_spec *spec, an_err *err);

/* Checks what can be checked without the store; parses the grid into *g
 * (freed by the caller with an_grid_free). */
an_code an_opt_spec_check(const an_opt_spec *spec, an_grid *g, an_err *err);

/* Runs the spec over symbols (comma-separated) of timeframe in [since,
 * until): loads every symbol first (too few candles for the slowest window
 * is AN_ERR_INVALID and nothing is stored), then sweeps and stores all rows
 * in one statement. *result: the run's JSON (the caller decrefs). progress
 * (may be NULL) is called with the symbol and done/total combinations. */
typedef void (*an_opt_progress)(void *ctx, const char *symbol, size_t done, size_t total);
an_code an_optimize_run(an_store *s, const an_opt_spec *spec, const char *symbols,
                        const char *timeframe, int64_t since_ms, int64_t until_ms,
                        an_opt_progress progress, void *ctx, json_t **result, an_err *err);

/* The candles of (symbol, timeframe) in [since, until] into cs (appended;
 * the caller frees): trading.ohlc_data, or when that holds none and
 * timeframe is 1h or 1d, the rollup of the 1m candles. *source names what
 * served them ("ohlc_data", "ohlc_1h", "ohlc_1d"). */
an_code an_opt_load_candles(an_store *s, const char *symbol, const char *timeframe,
                            int64_t since_ms, int64_t until_ms, an_candles *cs, const char **source,
                            an_err *err);

/* One combination of a stored run replayed (GET /api/v1/optimization/equity):
 * params is the combination's parameter object as JSON text (as in a
 * results row). *out: {run_id, strategy, symbol, timeframe, params, fees,
 * slippage, equity: [{timestamp, value}] one per bar of the run's period,
 * trades: [{entry_time, entry_price, exit_time, exit_price, return}],
 * metrics}. AN_ERR_INVALID (bad run_id, symbol or params: not a JSON object)
 * and AN_ERR_NOT_FOUND (no such run, symbol not in the run, a combination the
 * run does not have) set *field to the parameter's name. */
an_code an_optimize_equity(an_store *s, const char *run_id, const char *symbol, const char *params,
                           json_t **out, const char **field, an_err *err);

#endif
