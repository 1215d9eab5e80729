/*
 * strategy.h - the built-in trading strategies of the optimizer (issue 13):
 * their names and parameters, the indicator series each one reads, and the
 * two conditions whose crossings are its entry and exit signals.
 *
 * A strategy never computes an indicator itself: it names the series it
 * needs (an an_strat_series key: SMA 20, RSI 14, BBANDS 20/2, ...) and the
 * optimizer computes each distinct key once with the TA-Lib-exact kernels of
 * indicators.h, shared by every combination that reads it. A signal fires on
 * bar i when its condition holds on bar i and did not on bar i-1 (both bars
 * past the warm-up): "x crosses above y" is x[i] > y[i] and x[i-1] <= y[i-1].
 * Plain data and pure functions; thread-safe.
 */
#ifndef AN_ANALYTICS_STRATEGY_H
#define AN_ANALYTICS_STRATEGY_H

#include <stddef.h>

#define AN_STRAT_MAX_PARAMS 3

typedef enum an_strat_kind {
    AN_STRAT_SMA_CROSS = 0,
    AN_STRAT_EMA_CROSS,
    AN_STRAT_RSI_REVERT,
    AN_STRAT_BBANDS_REVERT,
    AN_STRAT_MACD_CROSS
} an_strat_kind;

typedef struct an_strat_param {
    const char *name;
    int integer;     /* 1: a whole number (a window length) */
    double min, max; /* accepted values, both included */
} an_strat_param;

typedef struct an_strategy {
    an_strat_kind kind;
    const char *name; /* "sma_cross", ... */
    int n_params;
    an_strat_param params[AN_STRAT_MAX_PARAMS];
} an_strategy;

/* The strategy named name, or NULL. */
const an_strategy *an_strategy_find(const char *name);

/* "sma_cross, ema_cross, ..." for error messages. */
const char *an_strategy_names(void);

/* Index of parameter name in st->params, or -1. */
int an_strategy_param_index(const an_strategy *st, const char *name);

/* 1 when the combination is not a strategy and is skipped (and counted):
 * fast >= slow for the crosses, lower >= upper for rsi_revert. */
int an_strategy_skip(const an_strategy *st, const double *params);

/* Index of the first bar on which every series the combination reads has a
 * value (TA-Lib's lookback); the first possible signal is one bar later. */
size_t an_strategy_warmup(const an_strategy *st, const double *params);

/* An indicator series: kind + its parameters. Two keys that compare equal
 * (an_strat_series_equal) are computed once. */
typedef enum an_series_kind {
    AN_SERIES_SMA,
    AN_SERIES_EMA,
    AN_SERIES_RSI,
    AN_SERIES_BBANDS,
    AN_SERIES_MACD
} an_series_kind;

typedef struct an_strat_series {
    an_series_kind kind;
    double p[3]; /* sma/ema/rsi: period; bbands: period, k; macd: fast, slow, signal */
} an_strat_series;

int an_strat_series_equal(const an_strat_series *a, const an_strat_series *b);

/* The series the combination reads (1 or 2) into keys[0..2); returns how many. */
int an_strategy_series(const an_strategy *st, const double *params, an_strat_series keys[2]);

/* Computes a series over close[0..n): out0 (and out1 for the two-output
 * kinds: bbands lower + middle, macd line + signal; NULL otherwise), NAN in
 * the warm-up. Returns 0, or -1 when out of memory. */
int an_strat_series_compute(const an_strat_series *key, const double *close, size_t n, double *out0,
                            double *out1);

/* Number of output arrays of a series kind (1 or 2). */
int an_strat_series_outputs(an_series_kind kind);

/* A condition: x[i] > y[i] (gt) or x[i] < y[i], y a series or a level. */
typedef struct an_strat_cond {
    const double *x;
    const double *y; /* NULL: compare with level */
    double level;
    int gt;
} an_strat_cond;

/* The entry and exit conditions of a combination, given the outputs of its
 * series (out[k][0..1] for keys[k]) and the close. */
void an_strategy_conditions(const an_strategy *st, const double *params, const double *close,
                            double *const out[2][2], an_strat_cond *entry, an_strat_cond *exit);

#endif
