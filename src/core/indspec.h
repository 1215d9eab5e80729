/*
 * indspec.h - indicator specs: the grammar of AUTONAMA_INDICATORS,
 * --indicators and a task's "indicators" argument ("sma:20,rsi:14,
 * bbands:20:2[:2],macd:12:26:9,ema:12") and the parsed set the engine
 * (analytics/engine.h) computes. Here in core/ because the configuration
 * validates AUTONAMA_INDICATORS when it loads.
 *
 * Every number is range-checked as a double before it becomes an int (a
 * period is a whole number in [min, 100000], a deviation a finite number in
 * (0, 100)), so no input reaches an out-of-range conversion. Pure functions;
 * any thread.
 */
#ifndef AN_CORE_INDSPEC_H
#define AN_CORE_INDSPEC_H

#include "core/error.h"

typedef enum an_ind_kind {
    AN_IND_SMA,
    AN_IND_EMA,
    AN_IND_RSI,
    AN_IND_BBANDS,
    AN_IND_MACD
} an_ind_kind;

typedef struct an_ind_spec {
    an_ind_kind kind;
    int p[3];    /* periods: sma/ema/rsi p[0]; bbands p[0]; macd fast, slow, signal */
    double d[2]; /* bbands deviations up, down */
} an_ind_spec;

#define AN_IND_MAX 32
#define AN_IND_PERIOD_MAX 100000
/* an output name's size: AN_INDICATOR_NAME_MAX in store/store.h (the engine
 * asserts they are equal) */
#define AN_IND_NAME_MAX 32

typedef struct an_ind_set {
    an_ind_spec v[AN_IND_MAX];
    int n;
    char text[256]; /* canonical form, e.g. "sma:20,rsi:14,bbands:20:2:2" */
} an_ind_set;

/* The default set: SMA 20/50/200, EMA 12/26, RSI 14, BBANDS 20,2, MACD 12/26/9. */
#define AN_IND_DEFAULT "sma:20,sma:50,sma:200,ema:12,ema:26,rsi:14,bbands:20:2,macd:12:26:9"

/* Parses s (NULL or "" means AN_IND_DEFAULT); AN_ERR_INVALID with a message
 * naming the bad item and, for a number out of range, the number as written. */
an_code an_ind_set_parse(const char *s, an_ind_set *out, an_err *err);

/* How many series one spec gives: 3 for bbands and macd, else 1. */
int an_ind_spec_outputs(const an_ind_spec *sp);

/* The output names of one spec (1, or 3 for bbands and macd), as stored in
 * analytics.indicators: sma_20, bb_upper_20, macd_signal, macd_5_35_5, ... */
void an_ind_spec_names(const an_ind_spec *sp, char (*names)[AN_IND_NAME_MAX]);

#endif
