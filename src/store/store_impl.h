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

/* Each op's contract, as a function type: a backend declares its ops with
 * these (AN_STORE_OPS below), so a definition that strays from the
 * contract does not compile. */

/* Rows read into an array of structs (defined below with the readers). */
typedef struct an_store_rows an_store_rows;

/* ---- schema ---- */
/* Creates or upgrades the schema to AN_SCHEMA_VERSION; *applied = migrations run now. */
typedef an_code an_store_migrate_fn(an_store *s, int *applied, an_err *err);
/* AN_OK when every relation exists at AN_SCHEMA_VERSION; *version = the stored one. */
typedef an_code an_store_check_schema_fn(an_store *s, int *version, an_err *err);
/* One round trip; AN_OK when the store answers. */
typedef an_code an_store_ping_fn(an_store *s, an_err *err);

/* ---- candles ---- */
/* Atomic batched upsert of validated, increasing candles; counts what changed. */
typedef an_code an_store_insert_ohlc_fn(an_store *s, const char *symbol, const char *tf,
                                        const an_candle *v, size_t n, an_upsert_counts *counts,
                                        an_err *err);
/* Validated candles of any series in one statement (NULL in the table: the
 * store falls back to insert_ohlc per candle). */
typedef an_code an_store_upsert_candles_fn(an_store *s, const an_series_candle *v, size_t n,
                                           an_err *err);
/* Rows of source ("ohlc_data", "ohlc_1h", "ohlc_1d"; tf NULL for rollups) appended to out. */
typedef an_code an_store_get_ohlc_fn(an_store *s, const char *source, const char *symbol,
                                     const char *tf, const an_query *q, an_candles *out,
                                     an_err *err);
/* Epoch-aligned buckets of bucket_ms over ohlc_data; q's bounds already aligned. */
typedef an_code an_store_get_bucketed_fn(an_store *s, const char *symbol, const char *tf,
                                         int64_t bucket_ms, const an_query *q, an_candles *out,
                                         an_err *err);
/* Open time of the newest candle; *found = 1 when there is one (untouched otherwise). */
typedef an_code an_store_latest_fn(an_store *s, const char *symbol, const char *tf, int64_t *ts,
                                   int *found, an_err *err);
/* Brings the 1h/1d rollups up to date over [from_ms, to_ms) (a no-op for views). */
typedef an_code an_store_refresh_rollups_fn(an_store *s, int64_t from_ms, int64_t to_ms,
                                            an_err *err);
/* Every stored (symbol, timeframe) of ohlc_data, sorted, read into rows
 * (store.c sets its fields, size and what: AN_SERIES_FIELDS). */
typedef an_code an_store_list_series_fn(an_store *s, an_store_rows *rows, an_err *err);
/* Streams (ms, close) oldest first through cb in batches; a cb failure stops it. */
typedef an_code an_store_export_closes_fn(an_store *s, const char *source, const char *symbol,
                                          const char *tf, an_closes_cb cb, void *ctx, an_err *err);

/* ---- indicators ---- */
/* Many series' rows in one write (store.h); the batches are checked. */
typedef an_code an_store_upsert_indicators_many_fn(an_store *s, const an_series_indicators *v,
                                                   size_t n, an_err *err);
/* Atomic batched upsert keyed by (symbol, tf, name, time); unchanged values not rewritten. */
typedef an_code an_store_upsert_indicators_fn(an_store *s, const char *symbol, const char *tf,
                                              const an_indicator_batch *b, an_upsert_counts *counts,
                                              an_err *err);
/* Non-NULL values of one name (or all: name NULL), by name then time, appended to out. */
typedef an_code an_store_get_indicators_fn(an_store *s, const char *symbol, const char *tf,
                                           const char *name, const an_query *q,
                                           an_indicator_points *out, an_err *err);
/* The last indicator run of (symbol, tf); *found = 1 when there is one. */
typedef an_code an_store_get_run_fn(an_store *s, const char *symbol, const char *tf,
                                    an_indicator_run *run, int *found, an_err *err);
/* Records (replaces) the last indicator run of (symbol, tf). */
typedef an_code an_store_put_run_fn(an_store *s, const char *symbol, const char *tf,
                                    const an_indicator_run *run, an_err *err);
/* Every (symbol, timeframe) of analytics.indicators, sorted, read into rows
 * as list_series does. */
typedef an_code an_store_list_indicator_series_fn(an_store *s, an_store_rows *rows, an_err *err);

/* ---- the connection ---- */
/* The libpq connection string (secret), or NULL: PostgreSQL only (may be NULL in the table). */
typedef const char *an_store_pg_conninfo_fn(const an_store *s);
/* Closes idle pooled connections (PostgreSQL only; may be NULL in the table). */
typedef void an_store_release_idle_fn(an_store *s);
/* Starts a thread hearing other processes' candle writes (store.h's
 * an_store_listen; may be NULL in the table: nothing to hear). */
typedef an_code an_store_listen_fn(an_store *s, an_store_change_fn fn, void *ctx,
                                   an_store_listener **out, an_err *err);
/* Frees the backend's state (s->impl); s itself is the caller's. */
typedef void an_store_close_fn(an_store *s);

/* ---- task runs, locks, moving data (schema v3) ---- */
/* Inserts r unless its id or non-empty slot exists; *inserted = 1 when it did. */
typedef an_code an_store_task_claim_fn(an_store *s, const an_task_row *r, int *inserted,
                                       an_err *err);
/* Inserts or replaces the run with r's id (every column). */
typedef an_code an_store_task_put_fn(an_store *s, const an_task_row *r, an_err *err);
/* Sets heartbeat_at of a PENDING/PROGRESS run (a no-op on finished ones). */
typedef an_code an_store_task_heartbeat_fn(an_store *s, const char *id, int64_t now_ms,
                                           an_err *err);
/* The run with id; *found = 1 when there is one (r then owns malloc'd JSON). */
typedef an_code an_store_task_get_fn(an_store *s, const char *id, an_task_row *r, int *found,
                                     an_err *err);
/* Runs newest first (name NULL: all), at most limit (> 0); *out malloc'd. */
typedef an_code an_store_task_list_fn(an_store *s, const char *name, size_t limit,
                                      an_task_row **out, size_t *n, an_err *err);
/* Marks stale (or instance's) PENDING/PROGRESS runs INTERRUPTED; *n = how many. */
typedef an_code an_store_task_interrupt_fn(an_store *s, const char *instance,
                                           int64_t stale_before_ms, int64_t now_ms, int *n,
                                           an_err *err);
/* Deletes the run with id (no error when there is none). */
typedef an_code an_store_task_delete_fn(an_store *s, const char *id, an_err *err);
/* Takes a cross-process lock on key without waiting; *got = 1 when taken (NULL in the
 * table: always granted). */
typedef an_code an_store_try_lock_fn(an_store *s, int64_t key, int *got, an_err *err);
/* Releases a lock taken by try_lock (may be NULL in the table). */
typedef an_code an_store_unlock_fn(an_store *s, int64_t key, an_err *err);
/* Deletes rows of (symbol, tf) with time in [from_ms, to_ms] from table
 * ("ohlc_data" or "indicators"). */
typedef an_code an_store_delete_range_fn(an_store *s, const char *table, const char *symbol,
                                         const char *tf, int64_t from_ms, int64_t to_ms,
                                         an_err *err);

/* ---- optimizer results (schema v4, runs v5; see store.h) ---- */
/* Inserts the run (one JSON object) and its rows (one JSON array) together. */
typedef an_code an_store_put_opt_results_fn(an_store *s, const char *run_json,
                                            const char *rows_json, an_err *err);
/* One run's spec; *json NULL when there is no such run. */
typedef an_code an_store_opt_run_spec_fn(an_store *s, const char *run_id, char **json, an_err *err);
/* The runs (newest first) and the results as JSON text: run_id/symbol/sample
 * "" for any; sort a metric name (validated); *json malloc'd. */
typedef an_code an_store_opt_runs_fn(an_store *s, long limit, char **json, an_err *err);
typedef an_code an_store_opt_results_fn(an_store *s, const char *run_id, const char *symbol,
                                        const char *sample, const char *sort, int ascending,
                                        long limit, char **json, an_err *err);

typedef struct an_store_ops {
    /* ---- schema ---- */
    an_store_migrate_fn *migrate;
    an_store_check_schema_fn *check_schema;
    an_store_ping_fn *ping;
    /* ---- candles ---- */
    an_store_insert_ohlc_fn *insert_ohlc;
    an_store_upsert_candles_fn *upsert_candles; /* optional: NULL falls back */
    an_store_get_ohlc_fn *get_ohlc;
    an_store_get_bucketed_fn *get_bucketed;
    an_store_latest_fn *latest;
    an_store_refresh_rollups_fn *refresh_rollups;
    an_store_list_series_fn *list_series;
    an_store_export_closes_fn *export_closes;
    /* ---- indicators ---- */
    an_store_upsert_indicators_fn *upsert_indicators;
    an_store_upsert_indicators_many_fn *upsert_indicators_many; /* optional: NULL falls back */
    an_store_get_indicators_fn *get_indicators;
    an_store_get_run_fn *get_run;
    an_store_put_run_fn *put_run;
    an_store_list_indicator_series_fn *list_indicator_series;
    /* ---- the connection ---- */
    an_store_pg_conninfo_fn *pg_conninfo;
    an_store_release_idle_fn *release_idle;
    an_store_listen_fn *listen; /* optional: NULL, nothing to listen to */
    an_store_close_fn *close;
    /* ---- task runs, locks, moving data (schema v3) ---- */
    an_store_task_claim_fn *task_claim;
    an_store_task_put_fn *task_put;
    an_store_task_heartbeat_fn *task_heartbeat;
    an_store_task_get_fn *task_get;
    an_store_task_list_fn *task_list;
    an_store_task_interrupt_fn *task_interrupt;
    an_store_task_delete_fn *task_delete;
    an_store_try_lock_fn *try_lock;
    an_store_unlock_fn *unlock;
    an_store_delete_range_fn *delete_range;
    /* ---- optimizer results (schema v4) ---- */
    an_store_put_opt_results_fn *put_opt_results;
    an_store_opt_run_spec_fn *opt_run_spec; /* schema v5 */
    an_store_opt_runs_fn *opt_runs;
    an_store_opt_results_fn *opt_results;
} an_store_ops;

/* The ops every backend implements, by concern: X(op) for each, to declare
 * a backend's functions (an_pg_OP, an_duck_OP) and fill its table. The
 * optional ops (pg_conninfo, release_idle, try_lock, unlock) and close are
 * named by each backend itself. */
#define AN_STORE_OPS(X)                                                                            \
    X(migrate)                                                                                     \
    X(check_schema)                                                                                \
    X(ping)                                                                                        \
    X(insert_ohlc)                                                                                 \
    X(get_ohlc)                                                                                    \
    X(get_bucketed)                                                                                \
    X(latest)                                                                                      \
    X(refresh_rollups)                                                                             \
    X(list_series)                                                                                 \
    X(export_closes)                                                                               \
    X(upsert_indicators)                                                                           \
    X(get_indicators)                                                                              \
    X(get_run)                                                                                     \
    X(put_run)                                                                                     \
    X(list_indicator_series)                                                                       \
    X(task_claim)                                                                                  \
    X(task_put)                                                                                    \
    X(task_heartbeat)                                                                              \
    X(task_get)                                                                                    \
    X(task_list)                                                                                   \
    X(task_interrupt)                                                                              \
    X(task_delete)                                                                                 \
    X(delete_range)                                                                                \
    X(put_opt_results)                                                                             \
    X(opt_run_spec)                                                                                \
    X(opt_runs)                                                                                    \
    X(opt_results)

struct an_store {
    const an_store_ops *ops;
    an_store_mode mode;
    char describe[256];
    void *impl; /* the backend's own state; freed by ops->close */
};

/* ---- rows read into structs (rows.c) ------------------------------------
 * A result's columns land in a struct by a field table: column i fills
 * fields[i]. Each backend reads one cell by kind (its typed getters); the
 * loops, the array and the tables are shared here, so a reader of task
 * runs, series or indicator runs is the same on every backend. */
typedef enum an_field_kind {
    AN_FIELD_TEXT,       /* char[size]: "" for NULL, cut to fit */
    AN_FIELD_TEXT_DUP,   /* char *: a malloc'd copy, NULL for NULL */
    AN_FIELD_INT64,      /* int64_t: 0 for NULL */
    AN_FIELD_UINT64_TEXT /* uint64_t written as decimal text: 0 for NULL */
} an_field_kind;

typedef struct an_field {
    an_field_kind kind;
    size_t offset, size; /* where in the struct, and a TEXT field's buffer size */
} an_field;

typedef struct an_fields {
    const an_field *v;
    size_t n;
} an_fields;

/* Task runs: id, name, args, state, approach, meta, result, error, instance,
 * symbol, slot, then created/started/finished/heartbeat ms. */
extern const an_fields AN_TASK_FIELDS;
/* Series: symbol, timeframe, first ms, last ms, rows. */
extern const an_fields AN_SERIES_FIELDS;
/* Indicator runs: spec, through ms, candles, digest (as text). */
extern const an_fields AN_RUN_FIELDS;
/* One malloc'd text (NULL for NULL). */
extern const an_fields AN_TEXT_DUP_FIELDS;
/* One int64 (0 for NULL). */
extern const an_fields AN_INT64_FIELDS;

/* What follows a task run's INSERT to replace every column of an existing
 * run (the same on every backend). */
#define AN_TASK_REPLACE_SQL                                                                        \
    "ON CONFLICT (id) DO UPDATE SET name = excluded.name, args = excluded.args,"                   \
    " state = excluded.state, approach = excluded.approach, meta = excluded.meta,"                 \
    " result = excluded.result, error = excluded.error, instance = excluded.instance,"             \
    " symbol = excluded.symbol, slot = excluded.slot, created_at = excluded.created_at,"           \
    " started_at = excluded.started_at, finished_at = excluded.finished_at,"                       \
    " heartbeat_at = excluded.heartbeat_at"

/* Fills one struct (elem) from row `row` of a backend's result res. */
typedef void (*an_fill_fn)(const void *res, size_t row, const an_fields *f, void *elem);

/* Every row of a result as a malloc'd array of structs. */
struct an_store_rows {
    const an_fields *fields;
    size_t size; /* of one struct */
    const char *what;
    void *v;  /* out: calloc'd, NULL when there are no rows; the caller frees */
    size_t n; /* out: how many */
};

/* Reads n rows of res into rows->v through fill. */
an_code an_store_read_rows(an_store_rows *rows, const void *res, size_t n, an_fill_fn fill,
                           an_err *err);

/* At most one row of a result into one struct: elem is filled and *found
 * set to 1 when the result has a row whose first column is not NULL. */
typedef struct an_store_one {
    const an_fields *fields;
    void *elem;
    int *found;
} an_store_one;

void an_store_read_one(an_store_one *one, const void *res, int have_row, an_fill_fn fill);

/* Appends one point to out (grows it); on failure out is as it was. */
an_code an_store_points_push(an_indicator_points *out, int64_t ts, const char *name,
                             size_t name_len, double value, an_err *err);

/* The schema version both backends migrate to. */
#define AN_SCHEMA_VERSION 7

/* Tells the process's hooks (watch.c) that (symbol, tf) changed over
 * [first_ms, last_ms]; symbol NULL: everything. store.c calls it after a
 * write or delete returned AN_OK. */
void an_store_changed(const char *symbol, const char *tf, int64_t first_ms, int64_t last_ms);
/* The PostgreSQL listener's stop (pg/listen.c): the only backend with one. */
void an_pg_listener_stop(an_store_listener *l);

/* A stored schema version's verdict (both backends' check_schema): AN_OK at
 * AN_SCHEMA_VERSION, else AN_ERR_SCHEMA naming the store ("<kind> <where>")
 * and what to do (migrate, or upgrade autonama for a newer schema). */
an_code an_store_version_check(const char *kind, const char *where, int version, an_err *err);

/* Backend constructors: fill s->ops, s->mode, s->describe and s->impl. */
an_code an_pg_store_open(const an_store_options *opt, an_store *s, an_err *err);
an_code an_duckdb_store_open(const an_store_options *opt, an_store *s, an_err *err);

#endif
