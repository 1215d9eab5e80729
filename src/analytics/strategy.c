/*
 * strategy.c - the table of built-in strategies and their signal conditions
 * (see strategy.h). The indicator values come from indicators.c, the same
 * kernels `autonama indicators` stores. Pure functions; thread-safe.
 */
#include "analytics/strategy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/indicators.h"

#define WINDOW(n)                                                                                  \
    {                                                                                              \
        n, 1, 2, 100000                                                                            \
    }

static const an_strategy STRATEGIES[] = {
    {AN_STRAT_SMA_CROSS, "sma_cross", 2, {WINDOW("fast"), WINDOW("slow")}},
    {AN_STRAT_EMA_CROSS, "ema_cross", 2, {WINDOW("fast"), WINDOW("slow")}},
    {AN_STRAT_RSI_REVERT,
     "rsi_revert",
     3,
     {WINDOW("period"), {"lower", 0, 0, 100}, {"upper", 0, 0, 100}}},
    {AN_STRAT_BBANDS_REVERT, "bbands_revert", 2, {WINDOW("period"), {"k", 0, 0, 100}}},
    {AN_STRAT_MACD_CROSS,
     "macd_cross",
     3,
     {WINDOW("fast"), WINDOW("slow"), {"signal", 1, 1, 100000}}},
};

#define N_STRATEGIES (sizeof STRATEGIES / sizeof STRATEGIES[0])

const an_strategy *an_strategy_find(const char *name)
{
    for (size_t i = 0; name && i < N_STRATEGIES; i++)
        if (strcmp(STRATEGIES[i].name, name) == 0)
            return &STRATEGIES[i];
    return NULL;
}

const char *an_strategy_names(void)
{
    return "sma_cross, ema_cross, rsi_revert, bbands_revert, macd_cross";
}

int an_strategy_param_index(const an_strategy *st, const char *name)
{
    for (int i = 0; i < st->n_params; i++)
        if (strcmp(st->params[i].name, name) == 0)
            return i;
    return -1;
}

int an_strategy_skip(const an_strategy *st, const double *p)
{
    switch (st->kind) {
    case AN_STRAT_SMA_CROSS:
    case AN_STRAT_EMA_CROSS:
    case AN_STRAT_MACD_CROSS: return p[0] >= p[1];
    case AN_STRAT_RSI_REVERT: return p[1] >= p[2];
    case AN_STRAT_BBANDS_REVERT: return 0;
    }
    return 0;
}

size_t an_strategy_warmup(const an_strategy *st, const double *p)
{
    switch (st->kind) {
    case AN_STRAT_SMA_CROSS:
    case AN_STRAT_EMA_CROSS: return (size_t)fmax(p[0], p[1]) - 1;
    case AN_STRAT_RSI_REVERT: return (size_t)p[0];
    case AN_STRAT_BBANDS_REVERT: return (size_t)p[0] - 1;
    case AN_STRAT_MACD_CROSS: return (size_t)fmax(p[0], p[1]) - 1 + (size_t)p[2] - 1;
    }
    return 0;
}

int an_strat_series_equal(const an_strat_series *a, const an_strat_series *b)
{
    return a->kind == b->kind && a->p[0] == b->p[0] && a->p[1] == b->p[1] && a->p[2] == b->p[2];
}

int an_strat_series_outputs(an_series_kind kind)
{
    return kind == AN_SERIES_BBANDS || kind == AN_SERIES_MACD ? 2 : 1;
}

static an_strat_series key(an_series_kind kind, double a, double b, double c)
{
    an_strat_series k = {kind, {a, b, c}};
    return k;
}

int an_strategy_series(const an_strategy *st, const double *p, an_strat_series keys[2])
{
    switch (st->kind) {
    case AN_STRAT_SMA_CROSS:
    case AN_STRAT_EMA_CROSS: {
        an_series_kind k = st->kind == AN_STRAT_SMA_CROSS ? AN_SERIES_SMA : AN_SERIES_EMA;
        keys[0] = key(k, p[0], 0, 0);
        keys[1] = key(k, p[1], 0, 0);
        return 2;
    }
    case AN_STRAT_RSI_REVERT: keys[0] = key(AN_SERIES_RSI, p[0], 0, 0); return 1;
    case AN_STRAT_BBANDS_REVERT: keys[0] = key(AN_SERIES_BBANDS, p[0], p[1], 0); return 1;
    case AN_STRAT_MACD_CROSS: keys[0] = key(AN_SERIES_MACD, p[0], p[1], p[2]); return 1;
    }
    return 0;
}

int an_strat_series_compute(const an_strat_series *k, const double *close, size_t n, double *out0,
                            double *out1)
{
    int a = (int)k->p[0];
    switch (k->kind) {
    case AN_SERIES_SMA: an_ind_sma(close, n, a, out0); return 0;
    case AN_SERIES_EMA: an_ind_ema(close, n, a, out0); return 0;
    case AN_SERIES_RSI: an_ind_rsi(close, n, a, out0); return 0;
    case AN_SERIES_BBANDS:
    case AN_SERIES_MACD: {
        /* the third output (upper band, histogram) is not read by a strategy */
        double *unused = malloc(n ? n * sizeof *unused : 1);
        int rc = 0;
        if (!unused)
            return -1;
        if (k->kind == AN_SERIES_BBANDS)
            an_ind_bbands(close, n, a, k->p[1], k->p[1], unused, out1, out0);
        else
            rc = an_ind_macd(close, n, a, (int)k->p[1], (int)k->p[2], out0, out1, unused);
        free(unused);
        return rc;
    }
    }
    return 0;
}

void an_strategy_conditions(const an_strategy *st, const double *p, const double *close,
                            double *const out[2][2], an_strat_cond *entry, an_strat_cond *exit)
{
    memset(entry, 0, sizeof *entry);
    memset(exit, 0, sizeof *exit);
    switch (st->kind) {
    case AN_STRAT_SMA_CROSS:
    case AN_STRAT_EMA_CROSS:
        /* fast crosses above slow / below slow */
        entry->x = exit->x = out[0][0];
        entry->y = exit->y = out[1][0];
        entry->gt = 1;
        break;
    case AN_STRAT_RSI_REVERT:
        /* RSI crosses below lower / above upper */
        entry->x = exit->x = out[0][0];
        entry->level = p[1];
        exit->level = p[2];
        exit->gt = 1;
        break;
    case AN_STRAT_BBANDS_REVERT:
        /* close crosses below the lower band / above the middle band */
        entry->x = exit->x = close;
        entry->y = out[0][0];
        exit->y = out[0][1];
        exit->gt = 1;
        break;
    case AN_STRAT_MACD_CROSS:
        /* MACD crosses above its signal line / below it */
        entry->x = exit->x = out[0][0];
        entry->y = exit->y = out[0][1];
        entry->gt = 1;
        break;
    }
}
