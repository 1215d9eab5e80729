/*
 * params.h - the API's request parameters: parsing and validating query
 * values (limits, dates, orders, indicator names) and the timeframe plan
 * (which stored series serves a requested timeframe). Pure functions, no
 * I/O, thread-safe; unit-tested in tests/unit/test_api_params.c.
 */
#ifndef AN_API_PARAMS_H
#define AN_API_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "store/store.h"

/* The timeframes the API serves, finest first. */
extern const char *const an_api_timeframes[];
extern const size_t an_api_ntimeframes;

/* 1 when tf is one of an_api_timeframes. */
int an_api_timeframe_known(const char *tf);

typedef enum an_tf_source {
    AN_TF_NONE = 0, /* nothing stored can serve it */
    AN_TF_STORED,   /* trading.ohlc_data rows of that timeframe */
    AN_TF_ROLLUP,   /* trading.ohlc_1h / ohlc_1d (built from 1m) */
    AN_TF_BUCKET    /* bucketed on the fly from a finer stored timeframe */
} an_tf_source;

#define AN_TF_MAX_ALTS 6

typedef struct an_tf_plan {
    an_tf_source source;
    char from_tf[AN_TIMEFRAME_MAX]; /* the stored timeframe read: tf, "1m" (rollup), finer */
    int64_t tf_ms;                  /* the requested timeframe's length */
    /* AN_TF_BUCKET: every stored timeframe of the symbol that divides tf,
     * finest first (from_tf is the first): each bucket is built from one
     * that covers it entirely (api/buckets.h) */
    char alts[AN_TF_MAX_ALTS][AN_TIMEFRAME_MAX];
    int nalts;
} an_tf_plan;

/* Decides how to serve (symbol, tf) from what is stored (series, n: every
 * stored series, as an_store_list_series returns them):
 *   - candles stored in that timeframe, if any;
 *   - else for 1h and 1d the rollup when the symbol has 1m candles;
 *   - else buckets of the stored timeframes that divide tf (alts).
 * Returns the plan; source AN_TF_NONE when nothing can serve it. */
an_tf_plan an_api_plan_timeframe(const char *symbol, const char *tf, const an_series_info *series,
                                 size_t n);

/* "stored", "rollup", "bucketed" or "none". */
const char *an_tf_source_name(an_tf_source s);

/* Parses a positive decimal integer in [1, max] (no sign, no spaces). */
an_code an_api_parse_limit(const char *v, long max, long *out, an_err *err);

/* Parses a time as an_time_parse_arg does (dates, ISO-8601 UTC, ms since the
 * epoch without leading zeros; years 1970..2999). */
an_code an_api_parse_time(const char *v, int64_t *ms, an_err *err);

/* 1 when name is an indicator name autonama computes: sma_N, ema_N, rsi_N,
 * bb_upper_N / bb_middle_N / bb_lower_N (optionally _DEV), macd,
 * macd_signal, macd_hist (optionally _F_S_SIG). */
int an_api_indicator_name_valid(const char *name);

/* Splits a comma-separated list of indicator names into at most max
 * entries of AN_INDICATOR_NAME_MAX bytes each; every name must be valid
 * and appear once. */
an_code an_api_parse_names(const char *v, char (*names)[AN_INDICATOR_NAME_MAX], int max, int *n,
                           an_err *err);

/* Constant-time comparison of a request's Authorization header against the
 * API key: 1 when it is exactly "Bearer <key>" (scheme case-insensitive). */
int an_api_bearer_ok(const char *header, const char *key);

#endif
