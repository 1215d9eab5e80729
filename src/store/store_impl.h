/*
 * store_impl.h - what a store backend implements (internal to src/store/).
 *
 * Each backend fills an an_store_ops table; store.c validates arguments
 * once and dispatches through it, so callers never know which backend runs.
 * Backends may assume: symbol/timeframe valid, candles validated, q non-NULL.
 */
#ifndef AN_STORE_IMPL_H
#define AN_STORE_IMPL_H

#include "store/store.h"

typedef struct an_store_ops {
    an_code (*migrate)(an_store *s, int *applied, an_err *err);
    an_code (*check_schema)(an_store *s, int *version, an_err *err);
    an_code (*ping)(an_store *s, an_err *err);
    an_code (*insert_ohlc)(an_store *s, const char *symbol, const char *tf, const an_candle *v,
                           size_t n, an_upsert_counts *counts, an_err *err);
    /* source: "ohlc_data", "ohlc_1h" or "ohlc_1d"; tf is NULL for rollups */
    an_code (*get_ohlc)(an_store *s, const char *source, const char *symbol, const char *tf,
                        const an_query *q, an_candles *out, an_err *err);
    /* buckets of bucket_ms over ohlc_data; q's bounds already aligned */
    an_code (*get_bucketed)(an_store *s, const char *symbol, const char *tf, int64_t bucket_ms,
                            const an_query *q, an_candles *out, an_err *err);
    an_code (*latest)(an_store *s, const char *symbol, const char *tf, int64_t *ts, int *found,
                      an_err *err);
    an_code (*refresh_rollups)(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err);
    an_code (*list_series)(an_store *s, an_series_info **out, size_t *n, an_err *err);
    an_code (*upsert_indicators)(an_store *s, const char *symbol, const char *tf,
                                 const an_indicator_batch *b, an_upsert_counts *counts,
                                 an_err *err);
    an_code (*get_indicators)(an_store *s, const char *symbol, const char *tf, const char *name,
                              const an_query *q, an_indicator_points *out, an_err *err);
    an_code (*get_run)(an_store *s, const char *symbol, const char *tf, an_indicator_run *run,
                       int *found, an_err *err);
    an_code (*put_run)(an_store *s, const char *symbol, const char *tf, const an_indicator_run *run,
                       an_err *err);
    an_code (*export_closes)(an_store *s, const char *source, const char *symbol, const char *tf,
                             an_closes_cb cb, void *ctx, an_err *err);
    const char *(*pg_conninfo)(const an_store *s);
    void (*release_idle)(an_store *s);
    void (*close)(an_store *s);
    /* schema v3: task runs, locks, moving data (see store.h) */
    an_code (*task_claim)(an_store *s, const an_task_row *r, int *inserted, an_err *err);
    an_code (*task_put)(an_store *s, const an_task_row *r, an_err *err);
    an_code (*task_heartbeat)(an_store *s, const char *id, int64_t now_ms, an_err *err);
    an_code (*task_get)(an_store *s, const char *id, an_task_row *r, int *found, an_err *err);
    an_code (*task_list)(an_store *s, const char *name, size_t limit, an_task_row **out, size_t *n,
                         an_err *err);
    an_code (*task_interrupt)(an_store *s, const char *instance, int64_t stale_before_ms,
                              int64_t now_ms, int *n, an_err *err);
    an_code (*task_delete)(an_store *s, const char *id, an_err *err);
    an_code (*try_lock)(an_store *s, int64_t key, int *got, an_err *err);
    an_code (*unlock)(an_store *s, int64_t key, an_err *err);
    an_code (*list_indicator_series)(an_store *s, an_series_info **out, size_t *n, an_err *err);
    an_code (*delete_range)(an_store *s, const char *table, const char *symbol, const char *tf,
                            int64_t from_ms, int64_t to_ms, an_err *err);
    /* schema v4: optimizer results (see store.h) */
    an_code (*put_opt_results)(an_store *s, const char *rows_json, an_err *err);
    /* run_id/symbol "" for any; sort a metric name (validated); *json malloc'd */
    an_code (*opt_runs)(an_store *s, long limit, char **json, an_err *err);
    an_code (*opt_results)(an_store *s, const char *run_id, const char *symbol, const char *sort,
                           int ascending, long limit, char **json, an_err *err);
} an_store_ops;

struct an_store {
    const an_store_ops *ops;
    an_store_mode mode;
    char describe[256];
    void *impl; /* the backend's own state; freed by ops->close */
};

/* The schema version both backends migrate to. */
#define AN_SCHEMA_VERSION 4

/* Backend constructors: fill s->ops, s->mode, s->describe and s->impl. */
an_code an_pg_store_open(const an_store_options *opt, an_store *s, an_err *err);
an_code an_duckdb_store_open(const an_store_options *opt, an_store *s, an_err *err);

#endif
