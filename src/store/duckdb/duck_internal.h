/*
 * duck_internal.h - what the files of the embedded DuckDB backend share
 * (internal to src/store/duckdb/; see store_impl.h for the ops contract).
 *
 * The backend is split by concern: conn.c (error mapping, the statement
 * helpers, the lock-run-unlock helpers every write goes through), readers.c
 * (the pool of read connections the API's reads borrow), open.c (checking
 * and opening the file, close), schema.c (migrations, schema check, ping),
 * write.c (the one write path shared by candles and indicators), candles.c,
 * indicators.c and tasks.c. Threads: any thread may call any op; writes,
 * migrations and task records run one at a time under the store's lock,
 * reads each on a read connection of their own (see docs/threads.md).
 */
#ifndef AN_STORE_DUCK_INTERNAL_H
#define AN_STORE_DUCK_INTERNAL_H

#include <duckdb.h>
#include <pthread.h>

#include "store/store_impl.h"

/* DuckDB's TIMESTAMP range, in ms (its infinities sit just outside). */
#define AN_DUCK_TS_MIN_MS (-9223372022400000LL)
#define AN_DUCK_TS_MAX_MS 9223372036854775LL

/* AUTONAMA_DUCKDB_READERS: the read connections when the options say 0,
 * and the most there may be. */
#define AN_DUCK_READERS_DEFAULT 4
#define AN_DUCK_READERS_MAX 64

typedef struct duck_store {
    duckdb_database db; /* set at open, read-only afterwards */
    pthread_mutex_t lock;
    struct {
        duckdb_connection con; /* everything run on it runs under lock */
    } by_lock;
    /* the read connections (readers.c): nreaders and readers[] are set at
     * open and read-only afterwards; a borrowed one is its borrower's alone */
    int nreaders;
    duckdb_connection *readers;
    pthread_mutex_t readers_mu; /* a leaf: never held across a statement */
    pthread_cond_t readers_cond;
    struct {
        duckdb_connection *idle; /* nidle of them, free to borrow */
        int nidle;
    } by_readers_mu;
} duck_store;

extern const char *const AN_DUCK_COMPONENT;

/* ---- errors and statements (conn.c); the caller holds ds->lock ---------- */

/* Copies a DuckDB message folded onto one line. */
void an_duck_one_line(char *out, size_t len, const char *msg);
an_code an_duck_error(duckdb_error_type type, const char *msg, const char *what, an_err *err);
an_code an_duck_exec_locked(duck_store *ds, const char *sql, const char *what, an_err *err);
/* Ends a failed transaction (its own failure does not matter). */
void an_duck_rollback_locked(duck_store *ds);
/* Reads the first ncols columns of row 0 as int64; null[c] = 1 when there
 * is no row or the value is NULL. */
an_code an_duck_first_row(duckdb_result *r, idx_t ncols, int64_t *v, int *null, const char *what,
                          an_err *err);
/* Binds a statement's parameters from ctx; returns how many it bound, or
 * -1 when a bind failed. The runner checks that count against the
 * statement's: every statement binds exactly the parameters it has. */
typedef int (*an_duck_binder)(duckdb_prepared_statement st, const void *ctx);
/* Reads a successful result (must not destroy it). */
typedef an_code (*an_duck_reader)(duckdb_result *r, void *ctx, an_err *err);

/* One integer from a query (bind may be NULL: no parameters), on con (the
 * caller owns its use) or on the locked connection. */
an_code an_duck_query_int64_on(duckdb_connection con, const char *sql, an_duck_binder bind,
                               const void *bctx, int64_t *v, int *null, const char *what,
                               an_err *err);
an_code an_duck_query_int64_locked(duck_store *ds, const char *sql, an_duck_binder bind,
                                   const void *bctx, int64_t *v, int *null, const char *what,
                                   an_err *err);

/* Prepares sql, binds it (bind may be NULL: no parameters), runs it, hands
 * the result to read (may be NULL), sets *changed (may be NULL) to the rows
 * changed, and frees everything. The _locked form runs under the caller's
 * hold of ds->lock; an_duck_run takes and releases the lock itself. */
an_code an_duck_run_locked(duck_store *ds, const char *sql, an_duck_binder bind, const void *bctx,
                           an_duck_reader read, void *rctx, int64_t *changed, const char *what,
                           an_err *err);
an_code an_duck_run(duck_store *ds, const char *sql, an_duck_binder bind, const void *bctx,
                    an_duck_reader read, void *rctx, int64_t *changed, const char *what,
                    an_err *err);

/* an_duck_run_locked's work on a given connection, whose use the caller
 * owns (ds->lock held for by_lock.con, a borrowed reader otherwise). The
 * thread's deadline interrupts the statement on con. */
an_code an_duck_run_on(duckdb_connection con, const char *sql, an_duck_binder bind,
                       const void *bctx, an_duck_reader read, void *rctx, int64_t *changed,
                       const char *what, an_err *err);

/* Runs job under ds->lock (lock, run, unlock). */
typedef an_code (*an_duck_job)(duck_store *ds, void *ctx, an_err *err);
an_code an_duck_with_lock(duck_store *ds, an_duck_job job, void *ctx, an_err *err);

/* Bind helpers: 1 when bound. Text binds NULL for NULL or "", ms NULL for 0. */
int an_duck_bind_text(duckdb_prepared_statement st, idx_t i, const char *v);
int an_duck_bind_ms(duckdb_prepared_statement st, idx_t i, int64_t ms);
/* Binds $1 symbol and $2 timeframe (an an_duck_key as ctx): returns 2 or -1. */
typedef struct an_duck_key {
    const char *symbol, *tf;
} an_duck_key;
int an_duck_bind_key(duckdb_prepared_statement st, const void *ctx);

/* Hands each data chunk of r to fn (rows: the chunk's size) until fn
 * fails; the chunks are freed here. */
typedef an_code (*an_duck_chunk_fn)(duckdb_data_chunk chunk, idx_t rows, void *ctx, an_err *err);
an_code an_duck_each_chunk(duckdb_result *r, an_duck_chunk_fn fn, void *ctx, an_err *err);
/* The data of a chunk's column col. */
void *an_duck_column(duckdb_data_chunk chunk, idx_t col);

/* Readers (an_duck_reader) by rows.c's field tables: every row into an
 * an_store_rows (ctx), or the first row into an an_store_one (ctx). */
an_code an_duck_read_rows(duckdb_result *r, void *ctx, an_err *err);
an_code an_duck_read_one(duckdb_result *r, void *ctx, an_err *err);
/* ---- the read connections (readers.c) ----------------------------------- */

/* Connects n read connections (1..AN_DUCK_READERS_MAX) to ds->db, each set
 * up as the locked one is (UTC). ds->readers_mu and readers_cond are
 * initialised by the caller. */
an_code an_duck_readers_open(duck_store *ds, int n, const char *path, an_err *err);
/* Disconnects them (none borrowed: the store is closing). */
void an_duck_readers_close(duck_store *ds);
/* an_duck_run for a statement that only reads committed data: it borrows a
 * read connection (waiting for one, up to the thread's deadline), runs
 * there without ds->lock, and gives it back. Never called with ds->lock
 * held. DuckDB gives each statement a snapshot: it sees whole committed
 * transactions, never part of one. */
an_code an_duck_read(duck_store *ds, const char *sql, an_duck_binder bind, const void *bctx,
                     an_duck_reader read, void *rctx, const char *what, an_err *err);
/* Lends a read connection to job (an_duck_read's borrowing, for reads of
 * several statements). */
typedef an_code (*an_duck_reader_job)(duckdb_connection con, void *ctx, an_err *err);
an_code an_duck_with_reader(duck_store *ds, an_duck_reader_job job, void *ctx, const char *what,
                            an_err *err);
/* One series' row: sql's first row, with $1 symbol and $2 timeframe bound,
 * into elem by fields (*found 1 when there is one); on a read connection. */
an_code an_duck_read_key_one(duck_store *ds, const char *sql, const char *symbol, const char *tf,
                             const an_fields *fields, void *elem, int *found, const char *what,
                             an_err *err);

/* Microseconds to ms, rounding down. */
int64_t an_duck_us_to_ms(int64_t us);

/* ---- the write path (write.c) ------------------------------------------- */

/* One write: rows already appended to a TEMP staging table (stage fills it,
 * inside the write's transaction); count_sql says how many of them exist
 * and how many of those differ; then a plain insert when none exists, else
 * the upsert that leaves unchanged rows alone; the stage is emptied and the
 * transaction committed. Binders bind the same key (bind/bctx). */
typedef struct an_duck_write {
    const char *what;
    const char *stage_table; /* "an_stage" */
    const char *count_sql, *insert_sql, *upsert_sql;
    size_t rows;
    an_code (*stage)(duckdb_appender app, const void *ctx, an_err *err);
    const void *stage_ctx;
    an_duck_binder bind_count, bind_write;
    const void *bctx;
    /* candles: the series and the range the rows span, for the catalog
     * (catalog.c) before the COMMIT; symbol NULL: no catalog (indicators) */
    const char *symbol, *tf;
    int64_t lo_ms, hi_ms;
} an_duck_write;

/* Adds inserted rows of (symbol, tf) spanning [lo_ms, hi_ms] to
 * trading.ohlc_series (nothing when none). In the caller's transaction. */
an_code an_duck_catalog_after_write(duck_store *ds, const char *symbol, const char *tf,
                                    int64_t lo_ms, int64_t hi_ms, int64_t inserted, an_err *err);

an_code an_duck_write_rows(duck_store *ds, const an_duck_write *w, an_upsert_counts *counts,
                           an_err *err);
an_code an_duck_appender_error(duckdb_appender app, const char *what, an_err *err);

/* ---- the ops (store_impl.h's contracts), by concern: schema.c, candles.c,
 * indicators.c, tasks.c, optimize.c ---------------------------------------- */

#define AN_DUCK_DECLARE_OP(op) an_store_##op##_fn an_duck_##op;
AN_STORE_OPS(AN_DUCK_DECLARE_OP)

/* The staging tables' definitions (schema.c), which the writes fill. */
extern const char AN_DUCK_STAGE_SQL[];

#endif
