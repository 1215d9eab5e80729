/*
 * series.h - the one synthetic candle-series generator of the C tests and
 * benches: a deterministic random walk (a linear congruential generator
 * from a seed) whose every candle passes an_candles_validate. Plain data,
 * no globals: any thread.
 */
#ifndef AN_TEST_SERIES_H
#define AN_TEST_SERIES_H

#include <stddef.h>
#include <stdint.h>

#include "core/market.h"

typedef struct an_test_series {
    int64_t start_ms; /* open time of the first candle */
    int64_t step_ms;  /* between candles (the timeframe's length) */
    double price;     /* the first open */
    int move_cents;   /* a close moves up to this many cents from its open */
    int wick_cents;   /* high and low reach up to this many cents beyond the body */
    double floor;     /* a close never goes below it */
    unsigned seed;
} an_test_series;

/* The usual 1m series: from 20,000, moves up to 10.00, wicks up to 5.00. */
an_test_series an_test_series_1m(int64_t start_ms, unsigned seed);

/* Appends n candles of the walk to out (which the caller owns). */
void an_test_series_make(an_candles *out, size_t n, const an_test_series *spec);

#endif
