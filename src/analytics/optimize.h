/*
 * optimize.h - parameter sweeps of a strategy over one series of closes: the
 * grid, the fill model, the metrics, and the threads (issue 13).
 *
 * Fill model (vectorbt's Portfolio.from_signals defaults): signals are taken
 * at a bar's close and filled at that close; long only; all cash in on entry
 * (size = cash / (1 + fees) / (close * (1 + slippage))), the whole position
 * out on exit (cash = size * close * (1 - slippage) * (1 - fees)); one
 * position at a time; an entry and an exit on the same bar cancel; an open
 * position is valued at the last close, not closed. The README defines every
 * metric.
 *
 * An an_sweep owns the closes' derived data (per-bar returns and their prefix
 * sums, a drawdown tree) and one array per distinct indicator series of the
 * grid, shared by every combination and thread. Built by the caller's thread;
 * an_sweep_run spreads the combinations over threads and returns when all
 * are done; the sweep is read-only meanwhile.
 */
#ifndef AN_ANALYTICS_OPTIMIZE_H
#define AN_ANALYTICS_OPTIMIZE_H

#include <stddef.h>
#include <stdint.h>

#include "analytics/strategy.h"
#include "core/error.h"

/* Grids of more combinations than this need --max-combinations. */
#define AN_GRID_DEFAULT_MAX 1000000
/* The largest max_combinations and keep a task's JSON arguments take (as
 * openapi.json's OptimizeArgs says). */
#define AN_OPT_COMBINATIONS_MAX 1000000000
#define AN_OPT_KEEP_MAX 1000000

/* A parsed grid: every parameter of the strategy with its values. */
typedef struct an_grid {
    const an_strategy *strategy;
    double *values[AN_STRAT_MAX_PARAMS]; /* malloc'd, in parameter order */
    size_t count[AN_STRAT_MAX_PARAMS];
    size_t total;   /* product of the counts */
    size_t skipped; /* combinations an_strategy_skip refuses */
    char text[512]; /* canonical form */
} an_grid;

/* Parses "fast=5:50:5,slow=20:200:10" or "period=14|21,lower=20:30:5,...":
 * each parameter of the strategy exactly once, `start:stop:step` (both ends
 * included, step > 0, start <= stop) or `a|b|c`. Every value is checked
 * against the parameter's bounds (whole numbers for windows). More than
 * max_combinations (0: AN_GRID_DEFAULT_MAX) is an error. AN_ERR_INVALID with
 * a message naming the problem. */
an_code an_grid_parse(const char *strategy, const char *text, size_t max_combinations, an_grid *out,
                      an_err *err);
void an_grid_free(an_grid *g);

/* The parameters of combination idx (0 <= idx < total), last parameter
 * fastest. */
void an_grid_combo(const an_grid *g, size_t idx, double *params);

/* The largest warm-up (strategy.h) over the grid's combinations. */
size_t an_grid_warmup(const an_grid *g);

typedef struct an_fill {
    double fees;      /* fraction of traded value, 0.001 by default */
    double slippage;  /* fraction of the price, 0 by default */
    double init_cash; /* 10,000 */
} an_fill;

/* The defaults: fees 0.001, slippage 0, 10,000 cash. */
an_fill an_fill_default(void);

/* Metrics of one combination over one period. NAN where undefined (no
 * closed trade for win_rate, no loss for profit_factor, no variation for
 * sharpe/sortino). */
typedef struct an_metrics {
    double total_return, annual_return, sharpe, sortino, max_drawdown;
    int64_t trades; /* closed trades */
    double win_rate, profit_factor, exposure, final_value;
} an_metrics;

/* The metric keys, in the order of an_metrics ("total_return", ...). */
#define AN_METRIC_COUNT 10
extern const char *const an_metric_names[AN_METRIC_COUNT];
/* Value of metric k (an_metric_names' index) of m. */
double an_metric_get(const an_metrics *m, int k);
/* Index of a metric name, or -1. */
int an_metric_index(const char *name);
/* 1 when a's metric k ranks before b's: higher first, except max_drawdown
 * (lower first); NAN last. */
int an_metric_better(const an_metrics *a, const an_metrics *b, int k);

typedef struct an_trade {
    size_t entry, exit; /* bar indexes; exit == SIZE_MAX while open */
    double pnl;         /* cash after the exit - cash before the entry */
} an_trade;

typedef struct an_sweep an_sweep;

/* Prepares the grid over close[0..n): computes each distinct indicator series
 * once. bars_per_year annualises (365 days / the timeframe). */
an_code an_sweep_create(const an_grid *g, const double *close, size_t n, double bars_per_year,
                        an_sweep **out, an_err *err);
void an_sweep_destroy(an_sweep *sw);

/* Called by the calling thread of an_sweep_run as combinations finish. */
typedef void (*an_sweep_progress)(void *ctx, size_t done, size_t total);

/* Evaluates every combination of the grid on bars [lo, hi) (a fresh
 * portfolio at lo; the indicators keep their history before lo): out[idx]
 * for combination idx, skipped[idx] = 1 for those an_strategy_skip refuses
 * (their metrics are NAN). threads <= 0: all cores. */
an_code an_sweep_run(an_sweep *sw, size_t lo, size_t hi, const an_fill *fill, int threads,
                     an_sweep_progress progress, void *ctx, an_metrics *out, unsigned char *skipped,
                     an_err *err);

/* One combination on [lo, hi) with its trades (*trades malloc'd, the caller
 * frees; may be NULL when not wanted). */
an_code an_sweep_backtest(an_sweep *sw, size_t idx, size_t lo, size_t hi, const an_fill *fill,
                          an_metrics *m, an_trade **trades, size_t *n_trades, an_err *err);

/* The portfolio's value at each bar of [lo, hi) into equity[0..hi-lo) and
 * each trade's return (cash after / cash before - 1; an open trade valued
 * at the last close) into trade_return[0..nt), from the trades
 * an_sweep_backtest returned for the same bars and fill. */
void an_sweep_equity(const an_sweep *sw, const an_trade *tr, size_t nt, size_t lo, size_t hi,
                     const an_fill *fill, double *equity, double *trade_return);

/* The number of threads AUTONAMA_OPT_THREADS asks for (default: all cores). */
int an_opt_threads(void);

#endif
