/*
 * store.h - the store: where candles, indicators and results live.
 *
 * One interface, three backends (DESIGN.md, "Store modes"):
 *   timescaledb  PostgreSQL with the timescaledb extension: hypertables,
 *                continuous aggregates for the 1h/1d rollups, compression and
 *                retention policies.
 *   postgres     plain PostgreSQL: the same tables; rollups are materialized
 *                views refreshed by an_store_refresh_rollups.
 *   duckdb       one DuckDB file at DUCKDB_PATH (the embedded default, and the
 *                fallback while the primary is unreachable); rollups are views.
 * The same names everywhere: trading.ohlc_data, trading.ohlc_1h,
 * trading.ohlc_1d, analytics.indicators, optimization.results, the
 * migration ledger autonama.schema_version, and autonama.task_runs (v3).
 *
 * An an_store is opaque and owned by whoever opened it; an_store_close(NULL)
 * is a no-op. Every function is safe to call from several threads at once
 * (PostgreSQL through a connection pool, DuckDB writes under the backend's
 * lock and reads on a pool of read connections).
 */
#ifndef AN_STORE_STORE_H
#define AN_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/market.h"

typedef enum an_store_mode {
    AN_STORE_TIMESCALEDB = 0,
    AN_STORE_POSTGRES,
    AN_STORE_DUCKDB
} an_store_mode;

/* "timescaledb", "postgres", "duckdb". */
const char *an_store_mode_name(an_store_mode mode);

typedef struct an_store an_store;

typedef struct an_store_options {
    /* libpq connection string ("host=... port=... ..."); NULL or "" means the
     * embedded DuckDB store. Never logged unredacted. */
    const char *pg_conninfo;
    /* PostgreSQL connection pool size (1..64). The PGlite TimescaleDB test
     * server takes one connection at a time: the pool is forced to 1 there. */
    int pool_size;
    /* Seconds to wait for a PostgreSQL connection before giving up. */
    int connect_timeout_s;
    /* "auto" (default), "timescaledb", "postgres" or "duckdb". */
    const char *mode;
    /* Path of the DuckDB file (DUCKDB_PATH). */
    const char *duckdb_path;
    /* DuckDB: the read connections the reads borrow (AUTONAMA_DUCKDB_READERS,
     * 1..64; 0: the default, 4). Writes keep one connection of their own. */
    int duckdb_readers;
    /* TimescaleDB policies, as PostgreSQL intervals ("7 days"); NULL or ""
     * disables. compress_after is on by default (see config), retention off. */
    const char *compress_after;
    const char *retention;
    /* 1: the caller only reads (export): a DuckDB file is opened with
     * access_mode READ_ONLY, so a file on a read-only disk still serves its
     * data (writes then fail with AN_ERR_READONLY). Ignored by PostgreSQL. */
    int read_only;
} an_store_options;

/* Opens the store the options name. For PostgreSQL this connects (and fails
 * with AN_ERR_CONNECT / AN_ERR_AUTH naming the server, never the password);
 * the mode is timescaledb when the extension is installed in the database (or
 * can be created by migrate), else postgres. For DuckDB this opens or creates
 * the file (AN_ERR_READONLY, AN_ERR_CORRUPT when it cannot). Does not create
 * the schema: see an_store_migrate. */
an_code an_store_open(const an_store_options *opt, an_store **out, an_err *err);
void an_store_close(an_store *s);

an_store_mode an_store_get_mode(const an_store *s);

/* A human description of where the store is: "127.0.0.1:5432/autonama" or
 * the DuckDB path. No secrets. */
const char *an_store_describe(const an_store *s);

/* The schema version this binary expects. */
int an_store_schema_version(void);

/* Creates or upgrades the schema; idempotent. *applied (may be NULL) is the
 * number of migrations run now (0 when already current). */
an_code an_store_migrate(an_store *s, int *applied, an_err *err);

/* AN_OK when the schema exists at the expected version; AN_ERR_SCHEMA with a
 * message saying what is missing otherwise. *version gets the stored version
 * (0 when there is none). */
an_code an_store_check_schema(an_store *s, int *version, an_err *err);

/* A trivial round trip (SELECT 1): AN_OK when the store answers. */
an_code an_store_ping(an_store *s, an_err *err);

/* The calling thread's statement deadline, on CLOCK_MONOTONIC in ms (0: none;
 * an_store_mono_ms() gives the clock). The HTTP server sets it around a
 * handler (AUTONAMA_HTTP_QUERY_TIMEOUT): a statement still running then is
 * cancelled (PostgreSQL: a cancel request; DuckDB: interrupted between its
 * tasks) and fails with AN_ERR_TIMEOUT; an_store_deadline_passed() tells that
 * case from a server that timed out. */
void an_store_set_deadline(int64_t mono_ms);
int64_t an_store_deadline(void);
int an_store_deadline_passed(void);
int64_t an_store_mono_ms(void);

typedef struct an_upsert_counts {
    int64_t inserted;  /* new rows */
    int64_t updated;   /* existing rows whose values changed */
    int64_t unchanged; /* existing rows written again with the same values */
} an_upsert_counts;

/* Batched upsert of n candles of one (symbol, timeframe), keyed by
 * (symbol, timeframe, timestamp). The batch is validated first
 * (an_candles_validate); nothing is written when any row is bad. Atomic: all
 * rows or none. counts may be NULL. */
an_code an_store_insert_ohlc(an_store *s, const char *symbol, const char *timeframe,
                             const an_candle *v, size_t n, an_upsert_counts *counts, an_err *err);

/* One candle of a named series (an_store_upsert_candles). */
typedef struct an_series_candle {
    const char *symbol, *timeframe;
    an_candle c;
} an_series_candle;

/* Upsert of n candles of any series, each validated first (nothing is
 * written when one is bad), keyed as an_store_insert_ohlc's; at most one
 * candle per key. PostgreSQL / TimescaleDB: one statement; DuckDB: one
 * insert per candle. For the live path's open candles: one write per flush
 * for every series. */
an_code an_store_upsert_candles(an_store *s, const an_series_candle *v, size_t n, an_err *err);

typedef struct an_query {
    int64_t start_ms; /* inclusive; INT64_MIN for none */
    int64_t end_ms;   /* exclusive; INT64_MAX for none */
    size_t limit;     /* 0 for no limit */
    int descending;   /* 1: newest first (the limit keeps the newest) */
} an_query;

/* A query over everything, oldest first, no limit. */
an_query an_query_all(void);

/* Candles of (symbol, timeframe) stored in trading.ohlc_data, appended to out
 * (the caller owns out). */
an_code an_store_get_ohlc(an_store *s, const char *symbol, const char *timeframe, const an_query *q,
                          an_candles *out, an_err *err);

/* The 1h or 1d rollup of the symbol's 1m candles (trading.ohlc_1h / _1d).
 * rollup is "1h" or "1d". */
an_code an_store_get_rollup(an_store *s, const char *symbol, const char *rollup, const an_query *q,
                            an_candles *out, an_err *err);

/* Candles of (symbol, src_tf) from trading.ohlc_data aggregated into buckets
 * of bucket_ms aligned on the Unix epoch (time_bucket on TimescaleDB and
 * DuckDB, date_bin on PostgreSQL): first open, highest high, lowest low, last
 * close, summed volume. q's range applies to the buckets' open times, its
 * limit to the buckets. bucket_ms must be a multiple of src_tf's length. */
an_code an_store_get_ohlc_bucketed(an_store *s, const char *symbol, const char *src_tf,
                                   int64_t bucket_ms, const an_query *q, an_candles *out,
                                   an_err *err);

/* Open time of the newest stored candle; *found = 0 when there is none. */
an_code an_store_get_latest_timestamp(an_store *s, const char *symbol, const char *timeframe,
                                      int64_t *ts, int *found, an_err *err);

/* Open time of the oldest stored candle; *found = 0 when there is none. */
an_code an_store_get_first_timestamp(an_store *s, const char *symbol, const char *timeframe,
                                     int64_t *ts, int *found, an_err *err);

/* Brings the 1h/1d rollups up to date for candles in [from_ms, to_ms)
 * (INT64_MIN/INT64_MAX for everything). TimescaleDB: refreshes the continuous
 * aggregates; PostgreSQL: refreshes the materialized views; DuckDB: nothing to
 * do (views). */
an_code an_store_refresh_rollups(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err);

typedef struct an_series_info {
    char symbol[AN_SYMBOL_MAX];
    char timeframe[AN_TIMEFRAME_MAX];
    int64_t first_ms, last_ms;
    int64_t rows;
} an_series_info;

/* Every stored (symbol, timeframe) with its first/last open time and row
 * count, sorted by symbol then timeframe. *out is malloc'd; the caller frees. */
an_code an_store_list_series(an_store *s, an_series_info **out, size_t *n, an_err *err);

/* ---- indicators: analytics.indicators, the seed's long format ---------- */

#define AN_INDICATOR_NAME_MAX 32

/* n indicator rows of one (symbol, timeframe): row i is (ts[i],
 * names[name_idx[i]], value[i]). Values are finite. */
typedef struct an_indicator_batch {
    const char *const *names;
    int n_names;
    const int64_t *ts; /* candle open time, ms */
    const int *name_idx;
    const double *value;
    size_t n;
} an_indicator_batch;

/* Batched upsert keyed by (symbol, timeframe, indicator_name, timestamp);
 * rows whose value is unchanged are not rewritten. Atomic. */
an_code an_store_upsert_indicators(an_store *s, const char *symbol, const char *timeframe,
                                   const an_indicator_batch *b, an_upsert_counts *counts,
                                   an_err *err);

/* The indicator rows of one series (an_store_upsert_indicators_many). */
typedef struct an_series_indicators {
    const char *symbol, *timeframe;
    an_indicator_batch b;
} an_series_indicators;

/* an_store_upsert_indicators for n series at once, each batch checked first
 * (nothing is written when one is bad); a (series, name, time) key at most
 * once. PostgreSQL / TimescaleDB: one statement, atomic; DuckDB: one upsert
 * per series. For the live path: every series' rows of a minute's close in
 * one write, not one per series. */
an_code an_store_upsert_indicators_many(an_store *s, const an_series_indicators *v, size_t n,
                                        an_err *err);

typedef struct an_indicator_point {
    int64_t ts;
    char name[AN_INDICATOR_NAME_MAX];
    double value;
} an_indicator_point;

typedef struct an_indicator_points {
    an_indicator_point *v;
    size_t n, cap;
} an_indicator_points;

void an_indicator_points_free(an_indicator_points *p);

/* Stored indicator values of (symbol, timeframe), one name or all (name
 * NULL), ordered by name then time; q's range applies to the time, its limit
 * to the rows. Appended to out. */
an_code an_store_get_indicators(an_store *s, const char *symbol, const char *timeframe,
                                const char *name, const an_query *q, an_indicator_points *out,
                                an_err *err);

/* What the last indicator run of (symbol, timeframe) computed: the indicator
 * spec, the newest candle it saw, how many candles, and a digest of their
 * (time, close) pairs. analytics.indicator_runs. */
typedef struct an_indicator_run {
    char spec[256];
    int64_t through_ms;
    int64_t candles;
    uint64_t digest;
} an_indicator_run;

an_code an_store_get_indicator_run(an_store *s, const char *symbol, const char *timeframe,
                                   an_indicator_run *run, int *found, an_err *err);
an_code an_store_put_indicator_run(an_store *s, const char *symbol, const char *timeframe,
                                   const an_indicator_run *run, an_err *err);

/* Streams the (open time ms, close) pairs of a series oldest first through
 * cb, in batches. source is "ohlc_data" (tf required), "ohlc_1h" or
 * "ohlc_1d" (tf NULL). On PostgreSQL this is COPY (SELECT ...) TO STDOUT
 * (FORMAT binary). A non-AN_OK return from cb stops the stream. */
typedef an_code (*an_closes_cb)(void *ctx, const int64_t *ts, const double *close, size_t n,
                                an_err *err);
an_code an_store_export_closes(an_store *s, const char *source, const char *symbol,
                               const char *timeframe, an_closes_cb cb, void *ctx, an_err *err);

/* Closes the store's idle PostgreSQL connections (they reconnect on next
 * use), so another client (DuckDB's postgres extension) can connect to a
 * server that takes one connection at a time. No-op for DuckDB. */
void an_store_release_idle(an_store *s);

/* The libpq connection string of a PostgreSQL store (secret: never log it),
 * NULL for DuckDB. For the analytics engine's direct path. */
const char *an_store_pg_conninfo(const an_store *s);

/* ---- task runs: autonama.task_runs (schema v3) ------------------------- */

#define AN_TASK_ID_MAX 40
#define AN_TASK_NAME_MAX 64

/* One run of a task (tasks/tasks.h gives it meaning). JSON columns travel as
 * text; args/meta/result are malloc'd (NULL for none) and freed by
 * an_task_row_free. Times are ms since the epoch, 0 for not yet. */
typedef struct an_task_row {
    char id[AN_TASK_ID_MAX];
    char name[AN_TASK_NAME_MAX];
    char state[16];
    char approach[32];
    char instance[96];
    char symbol[AN_SYMBOL_MAX]; /* "" for none */
    char slot[160];             /* claim key of a scheduled run ("" for none): unique */
    char *args, *meta, *result;
    char error[AN_ERR_MSG_MAX];
    int64_t created_ms, started_ms, finished_ms, heartbeat_ms;
} an_task_row;

void an_task_row_free(an_task_row *r);

/* Inserts the row unless a row with its id or (non-empty) slot exists:
 * *inserted = 1 when it was written (a claim), 0 when it was there already. */
an_code an_store_task_claim(an_store *s, const an_task_row *r, int *inserted, an_err *err);
/* Inserts or replaces the row with its id (every column). */
an_code an_store_task_put(an_store *s, const an_task_row *r, an_err *err);
/* Sets heartbeat_at of a PENDING/PROGRESS run (a no-op on finished ones). */
an_code an_store_task_heartbeat(an_store *s, const char *id, int64_t now_ms, an_err *err);
an_code an_store_task_get(an_store *s, const char *id, an_task_row *r, int *found, an_err *err);
/* Runs newest first (name NULL for all), at most limit (0: 100). *out is
 * malloc'd: free each row with an_task_row_free, then the array. */
an_code an_store_task_list(an_store *s, const char *name, size_t limit, an_task_row **out,
                           size_t *n, an_err *err);
/* Marks PENDING/PROGRESS runs INTERRUPTED when their heartbeat (or creation)
 * is older than stale_before_ms, or (instance non-NULL) they belong to
 * instance. *n (may be NULL) gets how many. */
an_code an_store_task_interrupt_stale(an_store *s, const char *instance, int64_t stale_before_ms,
                                      int64_t now_ms, int *n, an_err *err);
an_code an_store_task_delete(an_store *s, const char *id, an_err *err);

/* ---- cross-process locks ------------------------------------------------ */

/* A session advisory lock on PostgreSQL (pg_try_advisory_lock on a dedicated
 * connection of the store, so it lasts until an_store_unlock or the
 * connection's end). *got = 1 when taken. DuckDB (one process per file) and
 * the one-connection PGlite server: always granted, nothing is locked. The
 * same key taken twice in one process is granted twice: callers keep their
 * own in-process exclusion. */
an_code an_store_try_lock(an_store *s, int64_t key, int *got, an_err *err);
an_code an_store_unlock(an_store *s, int64_t key, an_err *err);

/* ---- moving data between stores (fallback replay, sync) ---------------- */

/* Every (symbol, timeframe) with rows in analytics.indicators, with the
 * first/last time and row count, sorted. *out is malloc'd. */
an_code an_store_list_indicator_series(an_store *s, an_series_info **out, size_t *n, an_err *err);

/* Deletes the rows of (symbol, timeframe) with time in [from_ms, to_ms] from
 * "ohlc_data" or "indicators". */
an_code an_store_delete_range(an_store *s, const char *table, const char *symbol,
                              const char *timeframe, int64_t from_ms, int64_t to_ms, an_err *err);

/* ---- optimizer results: optimization.results (schema v4) --------------- */

/* Inserts the run of run_json (an object: run_id, strategy, timeframe, grid
 * (strings), fees, slippage (numbers), spec (an object)) into
 * optimization.runs (schema v5) and the rows of rows_json, a JSON array of
 * objects with run_id, symbol, strategy, timeframe (strings), parameters and
 * metrics (objects), period_start and period_end (ms since the epoch) and
 * sample ("in", "out", "fold-N", "fold-N-in"). Atomic: both or nothing. */
an_code an_store_put_opt_results(an_store *s, const char *run_json, const char *rows_json,
                                 an_err *err);

/* One run's spec as a JSON object text (*json malloc'd; NULL when the store
 * has no such run): run_id, strategy, timeframe, grid, fees, slippage, spec,
 * symbols, period_start/period_end (ms). */
an_code an_store_opt_run_spec(an_store *s, const char *run_id, char **json, an_err *err);

/* The newest optimizer runs first (at most limit), as a JSON array text
 * (*json malloc'd): run_id, strategy, timeframe, grid, fees, slippage, spec
 * (NULL for runs stored before schema v5), symbols, samples, rows,
 * period_start/period_end (ms), created_at, best (symbol, sample, parameters,
 * metrics of the row with the best sharpe outside the out-of-sample rows). */
an_code an_store_opt_runs(an_store *s, long limit, char **json, an_err *err);

/* Result rows (run_id / symbol / sample NULL for any) by metrics->sort, best first
 * (max_drawdown: lowest first), at most limit, as a JSON array text: id,
 * run_id, symbol, strategy, timeframe, parameters, metrics, period_start,
 * period_end (ms), sample, created_at. sort must be a metric name. */
an_code an_store_opt_results(an_store *s, const char *run_id, const char *symbol,
                             const char *sample, const char *sort, long limit, char **json,
                             an_err *err);

/* ---- changes: who hears about candle writes (watch.c, pg/listen.c) ------
 * Every candle write or delete that changed rows is announced: to the hooks
 * of this process at once (any backend: on DuckDB the process knows its own
 * writes), and on PostgreSQL / TimescaleDB to every process with
 * NOTIFY autonama_candles, sent in the writing transaction (so delivered at
 * its commit, never for a write rolled back). The payload is
 * "SYMBOL TIMEFRAME FIRST_MS LAST_MS" (the range written or deleted), or
 * "*" for "anything may have changed" (a TRUNCATE of trading.ohlc_data).
 * The many-series upsert (the live path's flush) adds " TAG", the writing
 * store handle's tag: its own listener skips those (this process's hooks
 * heard them at once); a reader of four fields ignores it. */
#define AN_STORE_NOTIFY_CHANNEL "autonama_candles"

typedef struct an_store_change {
    char symbol[AN_SYMBOL_MAX]; /* "": every series may have changed */
    char timeframe[AN_TIMEFRAME_MAX];
    int64_t first_ms, last_ms;
} an_store_change;

/* Called with what changed; ch->symbol "" for everything. Must be short and
 * must not call into the store (it may run under the store's write path or
 * on the listener thread). */
typedef void (*an_store_change_fn)(void *ctx, const an_store_change *ch);

/* Adds fn(ctx) to the process's hooks (at most 8); every later candle write
 * or delete of any store of this process that changed rows calls it after
 * it committed, on the writing thread. */
an_code an_store_watch_local(an_store_change_fn fn, void *ctx, an_err *err);
/* Removes it; when this returns, fn is not running and will not be called. */
void an_store_unwatch_local(an_store_change_fn fn, void *ctx);

typedef struct an_store_listener an_store_listener;

/* Other processes' writes: on PostgreSQL a thread of its own LISTENs on a
 * dedicated connection (not the pool's) and calls fn for each notification;
 * on every (re)connect it calls fn with ch->symbol "" (what was sent while
 * it was not listening is unknown), reconnecting with a backoff of 0.1 s
 * doubling up to 5 s. *out is NULL (and AN_OK) when the store cannot:
 * DuckDB (one process), and the PGlite TimescaleDB server, which takes one
 * connection at a time (logged once; callers keep their expiry). */
an_code an_store_listen(an_store *s, an_store_change_fn fn, void *ctx, an_store_listener **out,
                        an_err *err);
/* Stops and joins the thread (promptly, even while it connects); when this
 * returns fn will not be called again. NULL is a no-op. The listener keeps
 * its own copy of the connection settings: it may outlive s. */
void an_store_listener_stop(an_store_listener *l);

#endif
