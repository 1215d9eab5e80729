/*
 * buckets.h - bucketed candles that are never wrong (issue 11, fault 5): a
 * bucket of a timeframe nothing stores (4h) is built, per bucket, from the
 * finest stored timeframe that covers it entirely; when none does, from the
 * one that covers most of it, and the reply marks it partial with its count.
 *
 * Threads: a handler worker; no shared state.
 */
#ifndef AN_API_BUCKETS_H
#define AN_API_BUCKETS_H

#include "api/api.h"
#include "api/params.h"
#include "store/store.h"

/* The buckets of plan (AN_TF_BUCKET) for symbol under q (order, limit)
 * into out; each candle's count is its source candles, and (*src_tf)[i]
 * (malloc'd, pointing into plan) the timeframe it was built from. A bucket
 * is complete when count == plan->tf_ms / an_timeframe_ms(src_tf). The
 * caller frees *src_tf, also after an error. */
an_code an_api_read_buckets(an_store *s, const char *symbol, const an_tf_plan *plan,
                            const an_query *q, an_candles *out, const char ***src_tf, an_err *err);

/* Adds to a candle's JSON object its source_timeframe when it is not the
 * reply's (plan->from_tf), and "partial": true with "source_candles" when
 * its source does not fill the bucket. */
void an_api_put_bucket_source(an_api_reply *rp, const an_tf_plan *plan, const an_candle *x,
                              const char *tf);

#endif
