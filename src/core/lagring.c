/*
 * lagring.c - latency samples and quantiles (see lagring.h).
 */
#include "core/lagring.h"

#include <stdlib.h>
#include <string.h>

void an_lag_add(an_lag_ring *r, double seconds)
{
    r->v[r->head] = seconds;
    r->head = (r->head + 1) % AN_LAG_RING;
    if (r->n < AN_LAG_RING)
        r->n++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double an_lag_quantile(const an_lag_ring *r, double q, double *scratch)
{
    if (!r->n || !scratch)
        return 0;
    memcpy(scratch, r->v, r->n * sizeof *scratch);
    qsort(scratch, r->n, sizeof *scratch, cmp_double);
    return scratch[(size_t)(q * (double)(r->n - 1) + 0.5)];
}
