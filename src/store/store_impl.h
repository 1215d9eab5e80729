/*
 * store_impl.h - what a store backend implements (internal to src/store/).
 *
 * Each backend fills an an_store_ops table; store.c validates arguments
 * once and dispatches through it, so callers never know which backend runs.
 * Backends may assume: symbol/timeframe valid, candles validated, q non-NULL,
 * out-pointers non-NULL (store.c substitutes dummies). Every op may be called
 * from any thread at once. The backends live in store/pg/ (PostgreSQL and
 * TimescaleDB) and store/duckdb/, each split by concern behind its own
 * internal header (pg_internal.h, duck_internal.h).
 */
#ifndef AN_STORE_IMPL_H
#define AN_STORE_IMPL_H

#include "store/store.h"

typedef struct an_store_ops {
    /* ---- schema ---- */
    /* Creates or upgrades the schema to AN_SCHEMA_VERSION; *applied = migrations run now. */
    an_code (*migrate)(an_store *s, int *applied, an_err *err);
    /* AN_OK when every relation exists at AN_SCHEMA_VERSION; *version = the stored one. */
    an_code (*check_schema)(an_store *s, int *version, an_err *err);
    /* One round trip; AN_OK when the store answers. */
    an_code (*ping)(an_store *s, an_err *err);
    /* ---- candles ---- */
    /* Atomic batched upsert of validated, increasing candles; counts what changed. */
    an_code (*insert_ohlc)(an_store *s, const char *symbol, const char *tf, const an_candle *v,
                           size_t n, an_upsert_counts *counts, an_err *err);
    /* Rows of source ("ohlc_data", "ohlc_1h", "ohlc_1d"; tf NULL for rollups) appended to out. */
    an_code (*get_ohlc)(an_store *s, const char *source, const char *symbol, const char *tf,
                        const an_query *q, an_candles *out, an_err *err);
    /* Epoch-aligned buckets of bucket_ms over ohlc_data; q's bounds already aligned. */
    an_code (*get_bucketed)(an_store *s, const char *symbol, const char *tf, int64_t bucket_ms,
                            const an_query *q, an_candles *out, an_err *err);
    /* Open time of the newest candle; *found = 1 when there is one (untouched otherwise). */
    an_code (*latest)(an_store *s, const char *symbol, const char *tf, int64_t *ts, int *found,
                      an_err *err);
    /* Brings the 1h/1d rollups up to date over [from_ms, to_ms) (a no-op for views). */
    an_code (*refresh_rollups)(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err);
    /* Every stored (symbol, timeframe) of ohlc_data, sorted; *out malloc'd (NULL when none). */
    an_code (*list_series)(an_store *s, an_series_info **out, size_t *n, an_err *err);
    /* Streams (ms, close) oldest first through cb in batches; a cb failure stops it. */
    an_code (*export_closes)(an_store *s, const char *source, const char *symbol, const char *tf,
                             an_closes_cb cb, void *ctx, an_err *err);
    /* ---- indicators ---- */
    /* Atomic batched upsert keyed by (symbol, tf, name, time); unchanged values not rewritten. */
    an_code (*upsert_indicators)(an_store *s, const char *symbol, const char *tf,
                                 const an_indicator_batch *b, an_upsert_counts *counts,
                                 an_err *err);
    /* Non-NULL values of one name (or all: name NULL), by name then time, appended to out. */
    an_code (*get_indicators)(an_store *s, const char *symbol, const char *tf, const char *name,
                              const an_query *q, an_indicator_points *out, an_err *err);
    /* The last indicator run of (symbol, tf); *found = 1 when there is one. */
    an_code (*get_run)(an_store *s, const char *symbol, const char *tf, an_indicator_run *run,
                       int *found, an_err *err);
    /* Records (replaces) the last indicator run of (symbol, tf). */
    an_code (*put_run)(an_store *s, const char *symbol, const char *tf, const an_indicator_run *run,
                       an_err *err);
    /* Every (symbol, timeframe) of analytics.indicators, sorted; *out malloc'd. */
    an_code (*list_indicator_series)(an_store *s, an_series_info **out, size_t *n, an_err *err);
    /* ---- the connection ---- */
    /* The libpq connection string (secret), or NULL: PostgreSQL only (may be NULL in the table). */
    const char *(*pg_conninfo)(const an_store *s);
    /* Closes idle pooled connections (PostgreSQL only; may be NULL in the table). */
    void (*release_idle)(an_store *s);
    /* Frees the backend's state (s->impl); s itself is the caller's. */
    void (*close)(an_store *s);
    /* ---- task runs, locks, moving data (schema v3) ---- */
    /* Inserts r unless its id or non-empty slot exists; *inserted = 1 when it did. */
    an_code (*task_claim)(an_store *s, const an_task_row *r, int *inserted, an_err *err);
    /* Inserts or replaces the run with r's id (every column). */
    an_code (*task_put)(an_store *s, const an_task_row *r, an_err *err);
    /* Sets heartbeat_at of a PENDING/PROGRESS run (a no-op on finished ones). */
    an_code (*task_heartbeat)(an_store *s, const char *id, int64_t now_ms, an_err *err);
    /* The run with id; *found = 1 when there is one (r then owns malloc'd JSON). */
    an_code (*task_get)(an_store *s, const char *id, an_task_row *r, int *found, an_err *err);
    /* Runs newest first (name NULL: all), at most limit (> 0); *out malloc'd. */
    an_code (*task_list)(an_store *s, const char *name, size_t limit, an_task_row **out, size_t *n,
                         an_err *err);
    /* Marks stale (or instance's) PENDING/PROGRESS runs INTERRUPTED; *n = how many. */
    an_code (*task_interrupt)(an_store *s, const char *instance, int64_t stale_before_ms,
                              int64_t now_ms, int *n, an_err *err);
    /* Deletes the run with id (no error when there is none). */
    an_code (*task_delete)(an_store *s, const char *id, an_err *err);
    /* Takes a cross-process lock on key without waiting; *got = 1 when taken (NULL in the
     * table: always granted). */
    an_code (*try_lock)(an_store *s, int64_t key, int *got, an_err *err);
    /* Releases a lock taken by try_lock (may be NULL in the table). */
    an_code (*unlock)(an_store *s, int64_t key, an_err *err);
    /* Deletes rows of (symbol, tf) with time in [from_ms, to_ms] from table
     * ("ohlc_data" or "indicators"). */
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
#define AN_SCHEMA_VERSION 5

/* Backend constructors: fill s->ops, s->mode, s->describe and s->impl. */
an_code an_pg_store_open(const an_store_options *opt, an_store *s, an_err *err);
an_code an_duckdb_store_open(const an_store_options *opt, an_store *s, an_err *err);

#endif
