/*
 * buckets.c - per-bucket choice of the source timeframe (buckets.h).
 *
 * Each candidate timeframe is bucketed by the store (its own limit: the
 * newest or oldest limit buckets of the union are among each one's), then
 * every bucket takes the finest candidate whose count fills it, else the one
 * covering the most time.
 */
#include "api/buckets.h"

#include <stdlib.h>
#include <string.h>

typedef struct cand {
    an_candle c;
    int src; /* index into the plan's sources */
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->c.ts != y->c.ts)
        return x->c.ts < y->c.ts ? -1 : 1;
    return x->src - y->src; /* finest first within a bucket */
}

/* The better of two builds of one bucket: complete beats partial (finest
 * first, as they come), else more time covered. */
static int better(const cand *x, const cand *best, const int64_t *src_ms, int64_t bucket_ms)
{
    int64_t cx = x->c.count * src_ms[x->src], cb = best->c.count * src_ms[best->src];
    if (cb >= bucket_ms)
        return 0;
    return cx >= bucket_ms || cx > cb;
}

void an_api_put_bucket_source(an_api_reply *rp, const an_tf_plan *plan, const an_candle *x,
                              const char *tf)
{
    if (strcmp(tf, plan->from_tf) != 0)
        an_api_printf(rp, ",\"source_timeframe\":\"%s\"", tf);
    int64_t ms = an_timeframe_ms(tf, NULL);
    if (ms > 0 && x->count * ms < plan->tf_ms)
        an_api_printf(rp, ",\"partial\":true,\"source_candles\":%lld", (long long)x->count);
}

an_code an_api_read_buckets(an_store *s, const char *symbol, const an_tf_plan *plan,
                            const an_query *q, an_candles *out, const char ***src_tf, an_err *err)
{
    *src_tf = NULL;
    const char *names[AN_TF_MAX_ALTS];
    int64_t src_ms[AN_TF_MAX_ALTS];
    int ns = 0;
    for (int i = 0; i < plan->nalts; i++)
        names[ns++] = plan->alts[i];
    if (ns == 0)
        names[ns++] = plan->from_tf;
    cand *all = NULL;
    size_t n = 0;
    an_code rc = AN_OK;
    for (int k = 0; k < ns && rc == AN_OK; k++) {
        an_candles one = {0};
        src_ms[k] = an_timeframe_ms(names[k], NULL);
        rc = an_store_get_ohlc_bucketed(s, symbol, names[k], plan->tf_ms, q, &one, err);
        cand *grown = rc == AN_OK ? realloc(all, (n + one.n + 1) * sizeof *all) : NULL;
        if (rc == AN_OK && !grown)
            rc = an_err_set(err, AN_ERR_NOMEM, "bucketed candles: out of memory");
        if (grown)
            all = grown;
        for (size_t i = 0; rc == AN_OK && i < one.n; i++)
            all[n++] = (cand){one.v[i], k};
        an_candles_free(&one);
    }
    if (rc != AN_OK)
        goto out;
    qsort(all, n, sizeof *all, cmp_cand);
    size_t m = 0; /* the chosen build of each bucket, ascending */
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && all[m - 1].c.ts == all[i].c.ts) {
            if (better(&all[i], &all[m - 1], src_ms, plan->tf_ms))
                all[m - 1] = all[i];
        } else {
            all[m++] = all[i];
        }
    }
    size_t keep = q->limit > 0 && q->limit < m ? q->limit : m;
    *src_tf = malloc((keep + 1) * sizeof **src_tf);
    if (!*src_tf) {
        rc = an_err_set(err, AN_ERR_NOMEM, "bucketed candles: out of memory");
        goto out;
    }
    for (size_t j = 0; j < keep && rc == AN_OK; j++) {
        const cand *c = q->descending ? &all[m - 1 - j] : &all[j];
        (*src_tf)[j] = names[c->src];
        rc = an_candles_push(out, &c->c, err);
    }
out:
    free(all);
    return rc;
}
