/*
 * write.c - the PostgreSQL backend's one write path, shared by candles and
 * indicators: a call is one transaction of batches; a batch whose key range
 * holds no stored row yet (a backfill, an incremental run appending new
 * rows: the common case) is a plain insert or binary COPY in a savepoint,
 * any other batch an upsert that leaves unchanged rows alone (IS DISTINCT
 * FROM) and counts what it inserted and updated. Also the byte buffers and
 * binary array headers both writers build their parameters with.
 * Any thread, on a connection the caller borrowed.
 */
#include "store/pg/pg_internal.h"

#include <stdlib.h>
#include <string.h>

int an_pg_buf_reserve(an_pg_buf *b, size_t more)
{
    if (b->n + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

unsigned char *an_pg_array_header(unsigned char *p, uint32_t oid, size_t n)
{
    an_pg_put_be32(p, 1);                /* ndim */
    an_pg_put_be32(p + 4, 0);            /* no NULLs */
    an_pg_put_be32(p + 8, oid);          /* element type */
    an_pg_put_be32(p + 12, (uint32_t)n); /* length */
    an_pg_put_be32(p + 16, 1);           /* lower bound */
    return p + 20;
}

unsigned char *an_pg_copy_head(unsigned char *p)
{
    static const unsigned char SIG[AN_PG_COPY_HEAD] = {'P',  'G',  'C',  'O',  'P', 'Y',
                                                       '\n', 0xff, '\r', '\n', 0};
    memcpy(p, SIG, sizeof SIG); /* flags and extension length are the zeros at its end */
    return p + sizeof SIG;
}

/* Runs the COPY of rows; returns its last result (COMMAND_OK, or the error)
 * for the caller to look at, as PQexecParams's would be. */
static PGresult *copy_in(PGconn *c, const char *sql, const an_pg_buf *rows)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return r;
    PQclear(r);
    int ok = 1;
    for (size_t off = 0; off < rows->n && ok;) {
        size_t chunk = rows->n - off < (1u << 20) ? rows->n - off : (1u << 20);
        ok = PQputCopyData(c, rows->p + off, (int)chunk) == 1;
        off += chunk;
    }
    /* -1: the end could not be sent (the connection failed); the results
     * below then carry the error, and an empty one is an error too */
    if (PQputCopyEnd(c, ok ? NULL : "autonama: sending the rows failed") != 1)
        ok = 0;
    PGresult *last = NULL;
    while ((r = PQgetResult(c)) != NULL) {
        if (last)
            PQclear(last);
        last = r;
    }
    if (!ok && last && PQresultStatus(last) == PGRES_COMMAND_OK) {
        PQclear(last); /* the server saw a complete COPY, but not every row was sent */
        last = NULL;
    }
    return last; /* NULL reads as PGRES_FATAL_ERROR with the connection's message */
}

/* 1 when nothing is stored in the batch's key range, 0 when something is. */
static an_code range_empty(PGconn *c, const an_pg_batch *b, int *empty, an_err *err)
{
    char first[40], last[40], *v = NULL;
    const char *params[8] = {b->params[0], b->params[1],
                             an_time_format(b->lo_ms, first, sizeof first),
                             an_time_format(b->hi_ms, last, sizeof last)};
    if (b->range_nextra > 4)
        return an_err_set(err, AN_ERR_INTERNAL, "%s: %d range parameters (at most 8)", b->what,
                          4 + b->range_nextra);
    for (int k = 0; k < b->range_nextra; k++)
        params[4 + k] = b->range_extra[k];
    an_code rc =
        an_pg_query_value(c, b->range_empty_sql, 4 + b->range_nextra, params, &v, b->what, err);
    *empty = rc == AN_OK && v && v[0] == 't';
    free(v);
    return rc;
}

/* The plain insert (or COPY) in a savepoint. *conflict = 1 when a
 * concurrent writer got there first (rolled back to the savepoint). */
static an_code insert_new(PGconn *c, const an_pg_batch *b, int *conflict, an_upsert_counts *counts,
                          an_err *err)
{
    an_code rc;
    *conflict = 0;
    if ((rc = an_pg_exec_cmd(c, "SAVEPOINT batch", b->what, err)) != AN_OK)
        return rc;
    PGresult *r;
    if (b->copy_sql) {
        b->copy_buf->n = 0;
        if (b->copy_rows(b->copy_ctx, b->copy_buf) < 0)
            return an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", b->what);
        r = copy_in(c, b->copy_sql, b->copy_buf);
    } else {
        r = PQexecParams(c, b->insert_sql, b->nparams, b->types, b->params, b->lengths, b->formats,
                         0);
    }
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        PQclear(r);
        counts->inserted += (int64_t)b->rows;
        return an_pg_exec_cmd(c, "RELEASE SAVEPOINT batch", b->what, err);
    }
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (!state || strcmp(state, "23505") != 0) {
        rc = an_pg_res_error(r, c, b->what, err);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    *conflict = 1;
    return an_pg_exec_cmd(c, "ROLLBACK TO SAVEPOINT batch", b->what, err);
}

an_code an_pg_write_batch(PGconn *c, const an_pg_batch *b, an_upsert_counts *counts, an_err *err)
{
    int empty = 0, conflict = 0;
    an_code rc = range_empty(c, b, &empty, err);
    if (rc != AN_OK)
        return rc;
    if (empty) {
        rc = insert_new(c, b, &conflict, counts, err);
        if (rc != AN_OK || !conflict)
            return rc;
    }
    PGresult *r =
        PQexecParams(c, b->upsert_sql, b->nparams, b->types, b->params, b->lengths, b->formats, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = an_pg_res_error(r, c, b->what, err);
        PQclear(r);
        return rc;
    }
    int64_t ins = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    int64_t upd = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    counts->inserted += ins;
    counts->updated += upd;
    counts->unchanged += (int64_t)b->rows - ins - upd;
    return AN_OK;
}

typedef struct write_job {
    const char *what;
    size_t n;
    an_pg_batch_fn batch;
    an_pg_after_fn after;
    void *ctx;
    an_upsert_counts *counts;
} write_job;

static an_code write_job_run(PGconn *c, void *ctx, an_err *err)
{
    write_job *j = ctx;
    an_upsert_counts before = *j->counts;
    an_code rc = an_pg_exec_cmd(c, "BEGIN", j->what, err);
    for (size_t off = 0; off < j->n && rc == AN_OK; off += AN_PG_WRITE_BATCH) {
        size_t m = j->n - off < AN_PG_WRITE_BATCH ? j->n - off : AN_PG_WRITE_BATCH;
        rc = j->batch(c, j->ctx, off, m, j->counts, err);
    }
    if (rc == AN_OK && j->after) {
        an_upsert_counts changed = {.inserted = j->counts->inserted - before.inserted,
                                    .updated = j->counts->updated - before.updated,
                                    .unchanged = j->counts->unchanged - before.unchanged};
        rc = j->after(c, j->ctx, &changed, err);
    }
    if (rc == AN_OK)
        rc = an_pg_exec_cmd(c, "COMMIT", j->what, err);
    return rc; /* on failure the release rolls the transaction back */
}

an_code an_pg_write(pg_store *ps, const char *what, size_t n, an_pg_batch_fn batch, void *ctx,
                    an_upsert_counts *counts, an_err *err)
{
    return an_pg_write_then(ps, what, n, batch, NULL, ctx, counts, err);
}

an_code an_pg_write_then(pg_store *ps, const char *what, size_t n, an_pg_batch_fn batch,
                         an_pg_after_fn after, void *ctx, an_upsert_counts *counts, an_err *err)
{
    write_job j = {what, n, batch, after, ctx, counts};
    an_code rc = an_pg_with_conn(ps, write_job_run, &j, err);
    if (rc != AN_OK)
        memset(counts, 0, sizeof *counts);
    return rc;
}
