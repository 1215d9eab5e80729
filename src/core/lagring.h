/*
 * lagring.h - the last AN_LAG_RING latency samples (seconds) and their
 * quantiles, for /metrics summaries of the live path (realtime, sse). Plain
 * data the caller owns and locks; no allocation.
 */
#ifndef AN_CORE_LAGRING_H
#define AN_CORE_LAGRING_H

#include <stddef.h>

#define AN_LAG_RING 4096

typedef struct an_lag_ring {
    double v[AN_LAG_RING];
    size_t n, head;
} an_lag_ring;

void an_lag_add(an_lag_ring *r, double seconds);
/* The q-quantile (0..1) of the samples, 0 when there are none. scratch holds
 * AN_LAG_RING doubles. */
double an_lag_quantile(const an_lag_ring *r, double q, double *scratch);

#endif
