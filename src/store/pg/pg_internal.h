/*
 * pg_internal.h - what the files of the PostgreSQL / TimescaleDB backend
 * share (internal to src/store/pg/; see store_impl.h for the ops contract).
 *
 * The backend is split by concern: pool.c (connections, the pool, the
 * borrow-run-release helpers, open and close), schema.c (mode detection,
 * migrations, schema check), write.c (the one fast write path shared by
 * candles and indicators), candles.c, indicators.c, copy_out.c (the binary
 * COPY reader), tasks.c (task runs, advisory locks, deleting ranges) and
 * listen.c (the LISTEN thread hearing other processes' writes).
 * Threads: any thread may call any op; see docs/threads.md for the
 * locks.
 */
#ifndef AN_STORE_PG_INTERNAL_H
#define AN_STORE_PG_INTERNAL_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "store/store_impl.h"

#define AN_PG_POOL_MAX 64
/* rows per statement of a write (all statements of a call share one transaction) */
#define AN_PG_WRITE_BATCH 50000
/* statements prepared per pooled connection (an_pg_exec_binary); more run unnamed */
#define AN_PG_PREPARED_MAX 64

/* The statements prepared on one connection, by a hash of their SQL. */
typedef struct an_pg_prepared {
    int n;
    uint64_t ids[AN_PG_PREPARED_MAX];
} an_pg_prepared;

/* The connection pool. Every field below `lock` is guarded by it; conninfo,
 * size and acquire_timeout_s are set at open and read-only afterwards. */
typedef struct an_pg_pool {
    char *conninfo; /* with our connect_timeout and options appended; secret */
    int size;
    int acquire_timeout_s;
    /* the SQL run on every new connection (the PGlite server ignores startup
     * options); a field so a test can make it fail */
    const char *session_sql;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled when a slot is freed; waits on CLOCK_MONOTONIC */
    struct {
        int busy[AN_PG_POOL_MAX];      /* slot lent out: conns[i] belongs to the borrower */
        PGconn *conns[AN_PG_POOL_MAX]; /* idle connections (NULL: connect on next borrow) */
    } by_lock;
    /* what is prepared on each slot's connection: owned by the slot's
     * borrower, as the connection is; emptied when the slot connects afresh */
    an_pg_prepared prepared[AN_PG_POOL_MAX];
} an_pg_pool;

typedef struct pg_store {
    an_pg_pool pool;
    int is_pglite;
    int ts_available; /* extension can be created */
    int ts_installed;
    char *compress_after;
    char *retention;
    /* the advisory locks' connection, outside the pool: a session lock lasts
     * as long as its connection. lock_mu is held across a query on it, never
     * across a connect. */
    pthread_mutex_t lock_mu;
    struct {
        PGconn *conn;
    } by_lock_mu;
    /* this handle's NOTIFY tag (16 hex digits, store.h): its listener skips
     * the announcements that carry it, which this process heard at once */
    char tag[17];
} pg_store;

extern const char *const AN_PG_COMPONENT;

/* ---- errors (pool.c) ----------------------------------------------------- */

/* Fills err from a failed result (SQLSTATE -> an_code); returns the code. */
an_code an_pg_res_error(PGresult *r, PGconn *c, const char *what, an_err *err);

/* ---- pool (pool.c) ------------------------------------------------------- */

/* A new connection with the session set up, or NULL with err filled. */
PGconn *an_pg_pool_connect(an_pg_pool *p, an_err *err);
/* Borrows a connection (connecting as needed; waits up to acquire_timeout_s
 * for a free slot). */
an_code an_pg_pool_acquire(an_pg_pool *p, PGconn **out, int *slot, an_err *err);
/* Returns a borrowed connection: an open transaction is rolled back first;
 * a connection that is broken or whose ROLLBACK failed is closed, not pooled. */
void an_pg_pool_release(an_pg_pool *p, PGconn *c, int slot);

/* ---- borrow, run, release (pool.c) --------------------------------------- */

/* Borrows a pooled connection, runs job(c, ctx, err), and releases it
 * (libpq's PQexecStart/PQexecFinish is the model). */
typedef an_code (*an_pg_job)(PGconn *c, void *ctx, an_err *err);
an_code an_pg_with_conn(pg_store *ps, an_pg_job job, void *ctx, an_err *err);

/* Reads a successful result; must not keep r. */
typedef an_code (*an_pg_reader)(PGresult *r, void *ctx, an_err *err);
/* One statement with n text parameters on a borrowed connection: runs it,
 * maps a failure to an an_code (what names the operation), hands the result
 * to read (may be NULL), sets *affected (may be NULL) to the rows changed. */
an_code an_pg_exec(pg_store *ps, const char *sql, int n, const char *const *params,
                   an_pg_reader read, void *ctx, int *affected, const char *what, an_err *err);

/* an_pg_exec for a hot read: the statement prepared once per pooled
 * connection (PQprepare, named by a hash of sql) and run with binary
 * results (PQexecPrepared, resultFormat 1): read decodes network byte order
 * (an_pg_get_be64). Parameters stay text. */
an_code an_pg_exec_binary(pg_store *ps, const char *sql, int n, const char *const *params,
                          an_pg_reader read, void *ctx, const char *what, an_err *err);

/* ---- statements on a connection the caller holds (pool.c) ---------------- */

an_code an_pg_exec_cmd(PGconn *c, const char *sql, const char *what, an_err *err);
/* One value of a query; *val is a malloc'd copy (NULL when no row or NULL). */
an_code an_pg_query_value(PGconn *c, const char *sql, int nparams, const char *const *params,
                          char **val, const char *what, an_err *err);
int an_pg_query_bool(PGconn *c, const char *sql, an_code *rc, an_err *err);
/* Readers (an_pg_reader) by rows.c's field tables: every row into an
 * an_store_rows (ctx), or the first row into an an_store_one (ctx). */
an_code an_pg_read_rows(PGresult *r, void *ctx, an_err *err);
an_code an_pg_read_one(PGresult *r, void *ctx, an_err *err);
/* Fields of a binary result (an_pg_exec_binary): an 8-byte value's bits
 * (0 when NULL), a float8 (0.0 when NULL), a timestamptz as Unix
 * milliseconds (floored). */
uint64_t an_pg_bin8(const PGresult *r, int row, int col);
double an_pg_bin_f8(const PGresult *r, int row, int col);
int64_t an_pg_bin_ms(const PGresult *r, int row, int col);

/* ---- byte buffers and PostgreSQL's binary formats (write.c) -------------- */

typedef struct an_pg_buf {
    char *p;
    size_t n, cap;
} an_pg_buf;

/* Room for more bytes (and a NUL); -1 when out of memory. */
int an_pg_buf_reserve(an_pg_buf *b, size_t more);

#define AN_OID_INT8 20
#define AN_OID_TEXT 25
#define AN_OID_VARCHAR 1043
#define AN_OID_INT4 23
#define AN_OID_FLOAT8 701
#define AN_OID_TIMESTAMPTZ 1184
#define AN_OID_INT4_ARRAY 1007
#define AN_OID_INT8_ARRAY 1016
#define AN_OID_FLOAT8_ARRAY 1022
#define AN_OID_TIMESTAMPTZ_ARRAY 1185
/* microseconds from the Unix epoch to PostgreSQL's (2000-01-01) */
#define AN_PG_EPOCH_US 946684800000000LL

static inline void an_pg_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline void an_pg_put_be64(unsigned char *p, uint64_t v)
{
    an_pg_put_be32(p, (uint32_t)(v >> 32));
    an_pg_put_be32(p + 4, (uint32_t)v);
}

static inline uint32_t an_pg_get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t an_pg_get_be64(const unsigned char *p)
{
    return (uint64_t)an_pg_get_be32(p) << 32 | an_pg_get_be32(p + 4);
}

/* Writes an array_send header for n elements of type oid; returns the
 * position of the first element. */
unsigned char *an_pg_array_header(unsigned char *p, uint32_t oid, size_t n);

/* COPY's binary format (FORMAT binary): the stream starts with a signature,
 * flags and an empty header extension (AN_PG_COPY_HEAD bytes) and ends with
 * a field count of -1 (2 bytes); each row is a 16-bit field count, then per
 * field a 32-bit length and its bytes. */
#define AN_PG_COPY_HEAD 19
unsigned char *an_pg_copy_head(unsigned char *p);
static inline unsigned char *an_pg_copy_text(unsigned char *p, const char *s, size_t len)
{
    an_pg_put_be32(p, (uint32_t)len);
    memcpy(p + 4, s, len);
    return p + 4 + len;
}
static inline unsigned char *an_pg_copy_8(unsigned char *p, uint64_t v)
{
    an_pg_put_be32(p, 8);
    an_pg_put_be64(p + 4, v);
    return p + 12;
}

/* ---- the fast write path (write.c) --------------------------------------- */

/* One batch of a write, as candles.c or indicators.c prepares it. params[0]
 * and params[1] are the symbol and timeframe; lo_ms..hi_ms the batch's key
 * range. */
typedef struct an_pg_batch {
    const char *what;
    const char *range_empty_sql;    /* $1 symbol, $2 timeframe, $3..$4 the range[, $5...]: a bool */
    const char *const *range_extra; /* $5... of range_empty_sql (range_nextra of them) */
    int range_nextra;
    const char *insert_sql; /* plain insert of the batch (same params) */
    const char *upsert_sql; /* upsert returning (inserted, updated) counts */
    int nparams;
    const char *const *params;
    const Oid *types;
    const int *lengths;
    const int *formats;
    int64_t lo_ms, hi_ms;
    size_t rows;
    /* binary COPY instead of insert_sql when copy_sql is set: copy_rows
     * builds the rows (COPY's binary format) into *rows; -1 out of memory */
    const char *copy_sql;
    int (*copy_rows)(void *ctx, an_pg_buf *rows);
    void *copy_ctx;
    an_pg_buf *copy_buf;
} an_pg_batch;

/* Writes one batch: when nothing is stored in its key range, a plain insert
 * (or binary COPY) in a savepoint, redone as an upsert if a concurrent
 * writer got there first; otherwise the upsert (IS DISTINCT FROM), so
 * unchanged rows are not rewritten. Adds to counts. Inside a transaction. */
an_code an_pg_write_batch(PGconn *c, const an_pg_batch *b, an_upsert_counts *counts, an_err *err);

/* Prepares and writes rows [off, off + m) (by calling an_pg_write_batch). */
typedef an_code (*an_pg_batch_fn)(PGconn *c, void *ctx, size_t off, size_t m,
                                  an_upsert_counts *counts, an_err *err);
/* A whole write: borrows a connection, BEGIN, batches of AN_PG_WRITE_BATCH
 * rows, COMMIT; counts are zeroed when it fails (nothing was written). */
an_code an_pg_write(pg_store *ps, const char *what, size_t n, an_pg_batch_fn batch, void *ctx,
                    an_upsert_counts *counts, an_err *err);
/* Runs before the COMMIT of an_pg_write_then's transaction with what the
 * write's batches changed (added up over them): the catalog and rollups. */
typedef an_code (*an_pg_after_fn)(PGconn *c, void *ctx, const an_upsert_counts *changed,
                                  an_err *err);
/* an_pg_write, then after (may be NULL) in the same transaction. */
an_code an_pg_write_then(pg_store *ps, const char *what, size_t n, an_pg_batch_fn batch,
                         an_pg_after_fn after, void *ctx, an_upsert_counts *counts, an_err *err);

/* ---- the series catalog and the plain-PostgreSQL rollups (catalog.c) ----- */

/* After a write of (symbol, tf) whose candles span [lo_ms, hi_ms]: adds the
 * inserted rows to trading.ohlc_series and, on plain PostgreSQL for 1m,
 * recomputes the 1h/1d rollup buckets the range touches. Nothing when
 * nothing changed. Inside the write's transaction. */
an_code an_pg_catalog_after_write(PGconn *c, int plain_pg, const char *symbol, const char *tf,
                                  int64_t lo_ms, int64_t hi_ms, const an_upsert_counts *changed,
                                  an_err *err);
/* The rollup buckets of width ms that [lo_ms, hi_ms] touches: [*from, *to). */
void an_pg_rollup_span(int64_t width, int64_t lo_ms, int64_t hi_ms, int64_t *from, int64_t *to);
/* The SQL the catalog and rollups run (for EXPLAIN in the suite). */
extern const char AN_PG_CATALOG_UPSERT_SQL[];
/* After a range delete: $1 symbol, $2 timeframe, $3 rows removed. */
extern const char AN_PG_CATALOG_DELETE_SQL[];
/* The candle write's "is the batch's key range empty?" check (candles.c). */
extern const char AN_PG_OHLC_RANGE_EMPTY_SQL[];
/* The rollup recomputation's read of ohlc_data ($1 symbol, $2..$3 ms). */
extern const char AN_PG_ROLLUP_1H_SQL[];
extern const char AN_PG_SERIES_LIST_SQL[];

/* ---- the binary COPY reader (copy_out.c) --------------------------------- */

/* Reads a COPY ... TO STDOUT (FORMAT binary) stream of (timestamptz,
 * float8) rows as bytes, whatever the CopyData messages' boundaries: a row
 * may span messages, a message may hold several rows. Rows go to cb in
 * batches. */
typedef struct an_pg_copy_reader {
    an_closes_cb cb;
    void *ctx;
    int64_t *ts;
    double *close;
    size_t n;
    int header_done, trailer_seen;
    unsigned char pending[64]; /* the bytes of an incomplete header or row */
    size_t npending;
    size_t skip; /* header extension bytes still to skip */
} an_pg_copy_reader;

#define AN_PG_COPY_BATCH 8192

an_code an_pg_copy_reader_init(an_pg_copy_reader *rd, an_closes_cb cb, void *ctx, an_err *err);
/* Feeds one CopyData message's bytes. */
an_code an_pg_copy_reader_feed(an_pg_copy_reader *rd, const char *buf, size_t len, an_err *err);
/* At the end of the stream: flushes the last rows; fails when the stream
 * stopped inside a row or without its trailer. */
an_code an_pg_copy_reader_finish(an_pg_copy_reader *rd, an_err *err);
void an_pg_copy_reader_free(an_pg_copy_reader *rd);

/* ---- the ops (store_impl.h's contracts), by concern: schema.c, candles.c,
 * indicators.c, tasks.c (and the advisory locks), optimize.c ----------------- */

#define AN_PG_DECLARE_OP(op) an_store_##op##_fn an_pg_##op;
AN_STORE_OPS(AN_PG_DECLARE_OP)
an_store_try_lock_fn an_pg_try_lock;
an_store_listen_fn an_pg_listen; /* listen.c */
an_store_unlock_fn an_pg_unlock;

/* Reads the server (version, TimescaleDB) into ps and s->mode (schema.c). */
an_code an_pg_detect(pg_store *ps, PGconn *c, an_store *s, an_err *err);

/* candles_many.c: the optional op (store_impl.h's upsert_candles) */
an_code an_pg_upsert_candles(an_store *s, const an_series_candle *v, size_t n, an_err *err);
/* Appends an element to a text[] literal being built in b (quote: as a
 * quoted string; the text holds no quote or backslash), and closes it. -1
 * when out of memory. */
int an_pg_text_array_put(an_pg_buf *b, const char *s, int quote);
int an_pg_text_array_end(an_pg_buf *b);
/* indicators.c: the optional op (store_impl.h's upsert_indicators_many) */
an_code an_pg_upsert_indicators_many(an_store *s, const an_series_indicators *v, size_t n,
                                     an_err *err);
/* Appends the query's range, order and limit to sql as parameters $np+1...;
 * bufs hold their text and must outlive the query. Returns the new length. */
typedef struct an_pg_range {
    char start[24], end[24], limit[24];
} an_pg_range;
int an_pg_append_range(char *sql, size_t cap, int pos, const an_query *q, const char *order_by,
                       const char **params, int *np, an_pg_range *bufs);

/* The indicator write's "is the key range empty?" query (exported for the
 * test that checks its plan). */
extern const char AN_PG_IND_RANGE_EMPTY_SQL[];
/* Rows [off, off + m) of an indicator batch of (symbol, tf) as a whole
 * binary COPY stream (header, rows, trailer) into *b, replacing its bytes;
 * -1 when out of memory. The indicator write's COPY, and the baseline
 * bench/indicators measures it against. */
int an_pg_indicator_copy_rows(an_pg_buf *b, const char *symbol, const char *tf,
                              const an_indicator_batch *ib, size_t off, size_t m);
/* Rows [off, off + m) of an indicator batch by the write path's plain
 * INSERT (unnest of binary arrays; bufs are its four parameter buffers),
 * with no range check and no counts: the baseline bench/indicators measures
 * the write against on a server without COPY FROM STDIN. */
an_code an_pg_indicator_insert_rows(PGconn *c, const char *symbol, const char *tf,
                                    const an_indicator_batch *b, size_t off, size_t m,
                                    an_pg_buf bufs[4], an_err *err);

#endif
