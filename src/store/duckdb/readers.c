/*
 * readers.c - the DuckDB store's read connections: AUTONAMA_DUCKDB_READERS
 * connections to the same database, connected at open, which the reads the
 * API takes (candles, buckets, indicators, the series lists, the newest
 * time, the ping, the closes' export) borrow one at a time, so that reads
 * run side by side and never wait behind a write, which keeps the store's
 * locked connection (conn.c). DuckDB's MVCC gives each statement a snapshot
 * of what was committed when it began. Owns the connections and their free
 * list (readers_mu, a leaf lock, never held across a statement). Any
 * thread; never called with the store's lock held.
 */
#include "store/duckdb/duck_internal.h"

#include <stdlib.h>
#include <time.h>

#include "core/log.h"

an_code an_duck_readers_open(duck_store *ds, int n, const char *path, an_err *err)
{
    ds->readers = calloc((size_t)n, sizeof *ds->readers);
    ds->by_readers_mu.idle = calloc((size_t)n, sizeof *ds->by_readers_mu.idle);
    if (!ds->readers || !ds->by_readers_mu.idle)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory opening %s", path);
    for (int i = 0; i < n; i++) {
        if (duckdb_connect(ds->db, &ds->readers[i]) != DuckDBSuccess)
            return an_err_set(err, AN_ERR_IO,
                              "cannot open read connection %d of %d to the DuckDB database %s",
                              i + 1, n, path);
        ds->nreaders = i + 1;
        an_err tz_err;
        if (an_duck_run_on(ds->readers[i], "SET TimeZone = 'UTC'", NULL, NULL, NULL, NULL, NULL,
                           path, &tz_err) != AN_OK)
            AN_DEBUG(AN_DUCK_COMPONENT, "msg=\"cannot set TimeZone (no ICU)\" path=\"%s\"", path);
        ds->by_readers_mu.idle[i] = ds->readers[i];
    }
    ds->by_readers_mu.nidle = n;
    return AN_OK;
}

void an_duck_readers_close(duck_store *ds)
{
    for (int i = 0; i < ds->nreaders; i++)
        duckdb_disconnect(&ds->readers[i]);
    free(ds->readers);
    free(ds->by_readers_mu.idle);
    ds->readers = ds->by_readers_mu.idle = NULL;
    ds->nreaders = ds->by_readers_mu.nidle = 0;
}

/* Takes a free read connection, waiting for one until the thread's
 * deadline (none: as long as it takes). */
static an_code borrow(duck_store *ds, duckdb_connection *con, const char *what, an_err *err)
{
    const int64_t deadline = an_store_deadline();
    an_code rc = AN_OK;
    pthread_mutex_lock(&ds->readers_mu);
    while (ds->by_readers_mu.nidle == 0) {
        if (deadline <= 0) {
            pthread_cond_wait(&ds->readers_cond, &ds->readers_mu);
            continue;
        }
        if (an_store_mono_ms() >= deadline) {
            rc = an_err_set(err, AN_ERR_TIMEOUT,
                            "%s: all %d DuckDB read connections stayed busy until the request's "
                            "query timeout",
                            what, ds->nreaders);
            break;
        }
        struct timespec until = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
        pthread_cond_timedwait(&ds->readers_cond, &ds->readers_mu, &until);
    }
    if (rc == AN_OK)
        *con = ds->by_readers_mu.idle[--ds->by_readers_mu.nidle];
    pthread_mutex_unlock(&ds->readers_mu);
    return rc;
}

static void give_back(duck_store *ds, duckdb_connection con)
{
    pthread_mutex_lock(&ds->readers_mu);
    ds->by_readers_mu.idle[ds->by_readers_mu.nidle++] = con;
    pthread_cond_signal(&ds->readers_cond);
    pthread_mutex_unlock(&ds->readers_mu);
}

/* One statement with no parameters and no result (BEGIN, COMMIT, ROLLBACK). */
static an_code exec(duckdb_connection con, const char *sql, const char *what, an_err *err)
{
    duckdb_result r;
    an_code rc = AN_OK;
    if (duckdb_query(con, sql, &r) != DuckDBSuccess)
        rc = an_duck_error(duckdb_result_error_type(&r), duckdb_result_error(&r), what, err);
    duckdb_destroy_result(&r);
    return rc;
}

an_code an_duck_with_reader(duck_store *ds, an_duck_reader_job job, void *ctx, const char *what,
                            an_err *err)
{
    duckdb_connection con;
    an_code rc = borrow(ds, &con, what, err);
    if (rc != AN_OK)
        return rc;
    /* Prepared and run in one transaction. In autocommit DuckDB plans a
     * statement in one transaction and runs it in the next: a write
     * committed in between (now possible: the writer does not wait for
     * readers) is then read through a plan made from the older statistics,
     * and the values DuckDB compresses by those statistics come back wrong
     * (a catalog row count of 1,000 read as 744; tested by
     * test_duckdb_readers' whole transactions). */
    rc = exec(con, "BEGIN TRANSACTION", what, err);
    if (rc == AN_OK) {
        rc = job(con, ctx, err);
        if (rc == AN_OK)
            rc = exec(con, "COMMIT", what, err);
        else
            exec(con, "ROLLBACK", what, &(an_err){0});
    }
    give_back(ds, con);
    return rc;
}

typedef struct read_job {
    const char *sql;
    an_duck_binder bind;
    const void *bctx;
    an_duck_reader read;
    void *rctx;
    const char *what;
} read_job;

static an_code run_read(duckdb_connection con, void *ctx, an_err *err)
{
    const read_job *j = ctx;
    return an_duck_run_on(con, j->sql, j->bind, j->bctx, j->read, j->rctx, NULL, j->what, err);
}

an_code an_duck_read(duck_store *ds, const char *sql, an_duck_binder bind, const void *bctx,
                     an_duck_reader read, void *rctx, const char *what, an_err *err)
{
    read_job j = {sql, bind, bctx, read, rctx, what};
    return an_duck_with_reader(ds, run_read, &j, what, err);
}
