/*
 * live.h - incremental indicators for the live path: the state of an
 * indicator set at the last closed candle, advanced by one close in O(1)
 * (an_live_push), and the values an open candle would give, computed from
 * that state without changing it (an_live_peek), also O(1).
 *
 * Every operation is TA-Lib's, in TA-Lib's order (the kernels of
 * indicators.c: SMA's running total, EMA seeded with an SMA, RSI with
 * Wilder's smoothing, Bollinger Bands' running sum of squares, MACD with both
 * EMAs seeded on the slow one's first bar), so after pushing closes[0..n)
 * the values equal the batch kernels' values at index n-1 bit for bit
 * (tests/unit/test_live.c checks every index of real series). Outputs are in
 * the order and with the names of core/indspec.h's an_ind_spec_names.
 * An an_live is owned by its creator; one thread at a time.
 */
#ifndef AN_ANALYTICS_LIVE_H
#define AN_ANALYTICS_LIVE_H

#include <stddef.h>

#include "analytics/engine.h"
#include "core/error.h"

typedef struct an_live an_live;

/* A fresh state (no closes yet) for the set. NULL when out of memory. */
an_live *an_live_new(const an_ind_set *set);
void an_live_free(an_live *l);
/* Back to no closes. */
void an_live_reset(an_live *l);

/* How many outputs (bbands and macd have 3 each) and their names. */
int an_live_outputs(const an_live *l);
const char *an_live_name(const an_live *l, int i);

/* Closes pushed so far. */
size_t an_live_count(const an_live *l);

/* Advances the state by one closed candle; out (an_live_outputs values, may
 * be NULL) gets the values at that candle, NAN in the warm-up. */
void an_live_push(an_live *l, double close, double *out);

/* The values a candle closing at `close` would have, state unchanged. */
void an_live_peek(const an_live *l, double close, double *out);

#endif
