/*
 * tasks.c - the PostgreSQL backend's autonama.task_runs (schema v3) and its
 * cross-process advisory locks (range deletes are in catalog.c).
 * Any thread. Task ops borrow one pooled connection each; the advisory
 * locks live on one connection of their own (by_lock_mu.conn).
 */
#include "store/pg/pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS_PARAM(n) "(TIMESTAMPTZ 'epoch' + $" #n "::int8 * INTERVAL '1 millisecond')"
#define TS_COL(c) "(extract(epoch FROM " c ") * 1000)::int8"

static const char *TASK_COLS =
    "id, name, args::text, state, approach, meta::text, result::text, error, instance, symbol,"
    " slot, " TS_COL("created_at") ", " TS_COL("started_at") ", " TS_COL("finished_at") ", " TS_COL(
        "heartbeat_at");

static const char *TASK_INSERT =
    "INSERT INTO autonama.task_runs (id, name, args, state, approach, meta, result, error,"
    " instance, symbol, slot, created_at, started_at, finished_at, heartbeat_at) VALUES ($1, $2,"
    " $3::jsonb, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, $11, coalesce(" TS_PARAM(
        12) ", now()),"
            " " TS_PARAM(13) ", " TS_PARAM(14) ", " TS_PARAM(15) ")";

/* Task row -> 15 text parameters (NULL for empty); ms buffers are the caller's. */
static void task_params(const an_task_row *r, const char **p, char ms[4][24])
{
    const int64_t t[4] = {r->created_ms, r->started_ms, r->finished_ms, r->heartbeat_ms};
    p[0] = r->id;
    p[1] = r->name;
    p[2] = r->args;
    p[3] = r->state;
    p[4] = r->approach[0] ? r->approach : NULL;
    p[5] = r->meta;
    p[6] = r->result;
    p[7] = r->error[0] ? r->error : NULL;
    p[8] = r->instance[0] ? r->instance : NULL;
    p[9] = r->symbol[0] ? r->symbol : NULL;
    p[10] = r->slot[0] ? r->slot : NULL;
    for (int i = 0; i < 4; i++) {
        snprintf(ms[i], 24, "%" PRId64, t[i]);
        p[11 + i] = t[i] ? ms[i] : NULL;
    }
}

an_code an_pg_task_claim(an_store *s, const an_task_row *r, int *inserted, an_err *err)
{
    const char *p[15];
    char ms[4][24];
    char sql[1024];
    task_params(r, p, ms);
    snprintf(sql, sizeof sql, "%s ON CONFLICT DO NOTHING", TASK_INSERT);
    *inserted = 0;
    return an_pg_exec(s->impl, sql, 15, p, NULL, NULL, inserted, "claim task run", err);
}

an_code an_pg_task_put(an_store *s, const an_task_row *r, an_err *err)
{
    const char *p[15];
    char ms[4][24];
    char sql[1536];
    task_params(r, p, ms);
    snprintf(sql, sizeof sql, "%s %s", TASK_INSERT, AN_TASK_REPLACE_SQL);
    return an_pg_exec(s->impl, sql, 15, p, NULL, NULL, NULL, "save task run", err);
}

an_code an_pg_task_heartbeat(an_store *s, const char *id, int64_t now_ms, an_err *err)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%" PRId64, now_ms);
    const char *p[2] = {id, ms};
    return an_pg_exec(s->impl,
                      "UPDATE autonama.task_runs SET heartbeat_at = " TS_PARAM(
                          2) " WHERE id = $1 AND state IN ('PENDING', 'PROGRESS')",
                      2, p, NULL, NULL, NULL, "task heartbeat", err);
}

an_code an_pg_task_get(an_store *s, const char *id, an_task_row *row, int *found, an_err *err)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s FROM autonama.task_runs WHERE id = $1", TASK_COLS);
    const char *p[1] = {id};
    an_store_one one = {&AN_TASK_FIELDS, row, found};
    return an_pg_exec(s->impl, sql, 1, p, an_pg_read_one, &one, NULL, "read task run", err);
}

an_code an_pg_task_list(an_store *s, const char *name, size_t limit, an_task_row **out, size_t *n,
                        an_err *err)
{
    char sql[1024], lim[24];
    snprintf(lim, sizeof lim, "%zu", limit);
    snprintf(sql, sizeof sql,
             "SELECT %s FROM autonama.task_runs WHERE ($1::text IS NULL OR name = $1)"
             " ORDER BY created_at DESC, id DESC LIMIT $2::int8",
             TASK_COLS);
    const char *p[2] = {name, lim};
    an_store_rows rows = {&AN_TASK_FIELDS, sizeof **out, "list task runs", NULL, 0};
    an_code rc = an_pg_exec(s->impl, sql, 2, p, an_pg_read_rows, &rows, NULL, rows.what, err);
    *out = rows.v;
    *n = rows.n;
    return rc;
}

an_code an_pg_task_interrupt(an_store *s, const char *instance, int64_t stale_before_ms,
                             int64_t now_ms, int *n, an_err *err)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%" PRId64, stale_before_ms);
    snprintf(b, sizeof b, "%" PRId64, now_ms);
    const char *p[3] = {instance, a, b};
    *n = 0;
    return an_pg_exec(
        s->impl,
        "UPDATE autonama.task_runs SET state = 'INTERRUPTED', finished_at = " TS_PARAM(
            3) ", error = coalesce(error, 'interrupted: its instance stopped (no heartbeat)')"
               " WHERE state IN ('PENDING', 'PROGRESS') AND (instance = $1 OR"
               " coalesce(heartbeat_at, created_at) < " TS_PARAM(2) ")",
        3, p, NULL, NULL, n, "interrupt stale task runs", err);
}

an_code an_pg_task_delete(an_store *s, const char *id, an_err *err)
{
    const char *p[1] = {id};
    return an_pg_exec(s->impl, "DELETE FROM autonama.task_runs WHERE id = $1", 1, p, NULL, NULL,
                      NULL, "delete task run", err);
}

/* Advisory locks live on a connection of their own, outside the pool: a
 * session lock lasts as long as its connection. The PGlite server takes one
 * connection at a time, so there nothing is locked (one instance only). */
/* The lock connection, connecting one when there is none or it broke.
 * Called with lock_mu held; drops it across the connect (a slow server must
 * not hold up every other locker) and takes it again. */
static an_code lock_conn_locked(pg_store *ps, an_err *err)
{
    PGconn *c = ps->by_lock_mu.conn;
    if (c && PQstatus(c) == CONNECTION_OK)
        return AN_OK;
    PQfinish(c); /* its locks died with it */
    ps->by_lock_mu.conn = NULL;
    pthread_mutex_unlock(&ps->lock_mu);
    an_err local;
    an_err *e = err ? err : &local;
    PGconn *fresh = an_pg_pool_connect(&ps->pool, e);
    pthread_mutex_lock(&ps->lock_mu);
    if (!fresh)
        return e->code;
    if (ps->by_lock_mu.conn)
        PQfinish(fresh); /* another locker connected meanwhile: use its connection */
    else
        ps->by_lock_mu.conn = fresh;
    return AN_OK;
}

/* Advisory locks live on a connection of their own, outside the pool: a
 * session lock lasts as long as its connection. The PGlite server takes one
 * connection at a time, so there nothing is locked (one instance only). */
static an_code lock_call(an_store *s, const char *sql, int64_t key, int *got, an_err *err)
{
    pg_store *ps = s->impl;
    if (ps->is_pglite) {
        *got = 1;
        return AN_OK;
    }
    char k[24];
    snprintf(k, sizeof k, "%" PRId64, key);
    const char *p[1] = {k};
    pthread_mutex_lock(&ps->lock_mu);
    an_code rc = lock_conn_locked(ps, err);
    if (rc == AN_OK) {
        PGconn *c = ps->by_lock_mu.conn;
        PGresult *r = PQexecParams(c, sql, 1, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = an_pg_res_error(r, c, "advisory lock", err);
        else
            *got = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
    }
    pthread_mutex_unlock(&ps->lock_mu);
    return rc;
}

an_code an_pg_try_lock(an_store *s, int64_t key, int *got, an_err *err)
{
    *got = 0;
    return lock_call(s, "SELECT pg_try_advisory_lock($1::int8)", key, got, err);
}

an_code an_pg_unlock(an_store *s, int64_t key, an_err *err)
{
    int released = 0;
    return lock_call(s, "SELECT pg_advisory_unlock($1::int8)", key, &released, err);
}
