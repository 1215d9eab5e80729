/*
 * pool.c - the PostgreSQL backend's connections: error mapping, the pool,
 * the borrow-run-release helpers every op goes through, open and close.
 *
 * Owns the pool (pg_internal.h): a fixed array of slots under one mutex and
 * a condition variable on CLOCK_MONOTONIC. A borrower takes a slot under the
 * mutex and connects outside it, so a slow or unreachable server never holds
 * the mutex; a connection comes back rolled back to idle, or is closed. Any
 * thread calls these; the store's ops are the only callers.
 *
 * The PGlite TimescaleDB test server takes one connection at a time: it is
 * recognised by its version string and the pool is sized to 1.
 */
#include "store/pg/pg_internal.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

const char *const AN_PG_COMPONENT = "store";

/* the PGlite server ignores startup options: they are set again per connection */
static const char SESSION_SQL[] = "SET TIME ZONE 'UTC'; SET client_min_messages = warning";

/* ---- errors ------------------------------------------------------------- */

/* Folds a multi-line libpq message into one line. */
static void one_line(char *msg)
{
    char *w = msg;
    int space = 0;
    for (char *r = msg; *r; r++) {
        if (*r == '\n' || *r == '\t' || *r == '\r' || *r == ' ') {
            space = 1;
            continue;
        }
        if (space && w != msg)
            *w++ = ' ';
        space = 0;
        *w++ = *r;
    }
    *w = '\0';
}

static an_code conn_error(PGconn *c, const char *what, an_err *err)
{
    const char *m = c ? PQerrorMessage(c) : "out of memory";
    char msg[AN_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", m ? m : "");
    one_line(msg);
    an_code code = AN_ERR_CONNECT;
    if (strstr(msg, "password authentication failed") || strstr(msg, "no password supplied") ||
        strstr(msg, "authentication failed"))
        code = AN_ERR_AUTH;
    else if (strstr(msg, "does not exist"))
        code = AN_ERR_NOT_FOUND;
    return an_err_set(err, code, "%s: %s", what, msg);
}

an_code an_pg_res_error(PGresult *r, PGconn *c, const char *what, an_err *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *prim = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!prim)
        prim = PQerrorMessage(c);
    char msg[AN_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", prim ? prim : "unknown error");
    one_line(msg);
    if (PQstatus(c) != CONNECTION_OK)
        return an_err_set(err, AN_ERR_CONNECT, "%s: connection lost: %s", what, msg);
    an_code code = AN_ERR_DB;
    if (state && (strcmp(state, "3F000") == 0 || strcmp(state, "42P01") == 0))
        code = AN_ERR_SCHEMA;
    else if (state && strcmp(state, "25006") == 0)
        code = AN_ERR_READONLY;
    else if (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0))
        code = AN_ERR_CONNECT; /* connection exception, or the server shutting down */
    else if (state && strncmp(state, "22", 2) == 0)
        code = AN_ERR_INVALID;
    if (code == AN_ERR_SCHEMA)
        return an_err_set(err, code, "%s: %s (SQLSTATE %s): run `autonama migrate`", what, msg,
                          state);
    return an_err_set(err, code, "%s: %s (SQLSTATE %s)", what, msg, state ? state : "none");
}

/* ---- pool --------------------------------------------------------------- */

/* Server notices go to the debug log, not raw to stderr. */
static void on_notice(void *arg, const char *message)
{
    (void)arg;
    char q[512];
    AN_DEBUG(AN_PG_COMPONENT, "msg=\"server notice\" notice=\"%s\"",
             an_log_quote(message, q, sizeof q));
}

PGconn *an_pg_pool_connect(an_pg_pool *p, an_err *err)
{
    PGconn *c = PQconnectdb(p->conninfo);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        conn_error(c, "cannot connect to PostgreSQL", err);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    const char *setup = p->session_sql ? p->session_sql : SESSION_SQL;
    PGresult *r = PQexec(c, setup);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char what[160];
        snprintf(what, sizeof what, "PostgreSQL session setup (%.100s)", setup);
        an_err why;
        an_pg_res_error(r, c, what, &why);
        /* the connection is unusable for us either way: a connect error */
        an_err_set(err, AN_ERR_CONNECT, "%s", why.msg);
        PQclear(r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

/* Frees a slot taken by a borrower that has no connection to give back. */
static void free_slot(an_pg_pool *p, int slot)
{
    pthread_mutex_lock(&p->lock);
    assert(p->by_lock.busy[slot] && !p->by_lock.conns[slot]);
    p->by_lock.busy[slot] = 0;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* A free slot's index (marked busy, its connection moved to *c), or -1. */
static int take_slot_locked(an_pg_pool *p, PGconn **c)
{
    for (int i = 0; i < p->size; i++) {
        if (!p->by_lock.busy[i]) {
            p->by_lock.busy[i] = 1;
            *c = p->by_lock.conns[i];
            p->by_lock.conns[i] = NULL;
            return i;
        }
    }
    return -1;
}

an_code an_pg_pool_acquire(an_pg_pool *p, PGconn **out, int *slot, an_err *err)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += p->acquire_timeout_s;
    PGconn *c = NULL;
    pthread_mutex_lock(&p->lock);
    int i;
    while ((i = take_slot_locked(p, &c)) < 0) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            return an_err_set(err, AN_ERR_TIMEOUT,
                              "no free PostgreSQL connection within %d s (pool of %d)",
                              p->acquire_timeout_s, p->size);
        }
    }
    pthread_mutex_unlock(&p->lock);
    if (c && PQstatus(c) != CONNECTION_OK) {
        /* one fresh connect (not PQreset and then another: an unreachable
         * server would cost the timeout twice) */
        PQfinish(c);
        c = NULL;
    }
    if (!c) {
        an_err local;
        an_err *e = err ? err : &local;
        c = an_pg_pool_connect(p, e);
        if (!c) {
            free_slot(p, i);
            return e->code;
        }
        p->prepared[i].n = 0; /* a new session: nothing prepared on it */
    }
    *out = c;
    *slot = i;
    return AN_OK;
}

void an_pg_pool_release(an_pg_pool *p, PGconn *c, int slot)
{
    /* a connection left inside a transaction is rolled back first; one that
     * is broken, or whose ROLLBACK failed, is closed (the next borrower of
     * the slot connects afresh) */
    if (c && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c, "ROLLBACK");
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK && PQtransactionStatus(c) == PQTRANS_IDLE;
        PQclear(r);
        if (!ok) {
            char q[256];
            AN_WARN(AN_PG_COMPONENT,
                    "msg=\"closing a connection whose ROLLBACK failed\" error=\"%s\"",
                    an_log_quote(PQerrorMessage(c), q, sizeof q));
            PQfinish(c);
            c = NULL;
        }
    }
    if (c && PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        c = NULL;
    }
    pthread_mutex_lock(&p->lock);
    assert(p->by_lock.busy[slot] && !p->by_lock.conns[slot]);
    p->by_lock.conns[slot] = c;
    p->by_lock.busy[slot] = 0;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static an_code pool_init(an_pg_pool *p, an_err *err)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return an_err_set(err, AN_ERR_NOMEM, "cannot create the pool's condition variable");
    int bad = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
              pthread_cond_init(&p->cond, &attr) != 0;
    pthread_condattr_destroy(&attr);
    if (bad)
        return an_err_set(err, AN_ERR_INTERNAL, "cannot create the pool's condition variable");
    pthread_mutex_init(&p->lock, NULL);
    p->acquire_timeout_s = 60;
    return AN_OK;
}

static void pool_destroy(an_pg_pool *p)
{
    for (int i = 0; i < AN_PG_POOL_MAX; i++)
        PQfinish(p->by_lock.conns[i]);
    if (p->conninfo) {
        memset(p->conninfo, 0, strlen(p->conninfo));
        free(p->conninfo);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
}

/* ---- borrow, run, release ----------------------------------------------- */

an_code an_pg_with_conn(pg_store *ps, an_pg_job job, void *ctx, an_err *err)
{
    PGconn *c;
    int slot;
    an_code rc = an_pg_pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    rc = job(c, ctx, err);
    an_pg_pool_release(&ps->pool, c, slot);
    return rc;
}

/* Sends the statement: the prepared one called name, else sql unnamed. */
static int send(PGconn *c, const char *name, const char *sql, int n, const char *const *params,
                int fmt)
{
    return name ? PQsendQueryPrepared(c, name, n, params, NULL, NULL, fmt)
                : PQsendQueryParams(c, sql, n, NULL, params, NULL, NULL, fmt);
}

/* The reply to what was sent on c, under the thread's deadline (store.h):
 * waits for it until then, sends a cancel request at it and returns the
 * last result (*timed_out = 1 when the cancel was sent). */
static PGresult *await_by_deadline(PGconn *c, int *timed_out)
{
    while (PQisBusy(c)) {
        int64_t left = an_store_deadline() - an_store_mono_ms();
        if (left <= 0 && !*timed_out) {
            char buf[256];
            PGcancel *cc = PQgetCancel(c);
            if (cc) {
                PQcancel(cc, buf, sizeof buf);
                PQfreeCancel(cc);
            }
            *timed_out = 1;
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        if (poll(&pfd, 1, *timed_out ? 1000 : (int)(left < 1000 ? left : 1000)) < 0 &&
            errno != EINTR)
            break;
        if (!PQconsumeInput(c))
            break;
    }
    PGresult *last = NULL, *r;
    while ((r = PQgetResult(c))) {
        PQclear(last);
        last = r;
    }
    return last;
}

/* The statement under the thread's deadline (await_by_deadline). A deadline
 * already past is not sent at all (NULL, *timed_out = 1): a cancel that
 * reaches the backend before it has read the statement is ignored, so the
 * statement would run to its end. */
static PGresult *exec_by_deadline(PGconn *c, const char *name, const char *sql, int n,
                                  const char *const *params, int fmt, int *timed_out)
{
    if (an_store_deadline_passed()) {
        *timed_out = 1;
        return NULL;
    }
    if (!send(c, name, sql, n, params, fmt))
        return NULL;
    return await_by_deadline(c, timed_out);
}

/* PQprepare, under the thread's deadline when it has one (preparing reads
 * the catalog and waits on a table's lock as the statement would). */
static PGresult *prepare_by_deadline(PGconn *c, const char *name, const char *sql, int n,
                                     int *timed_out)
{
    if (an_store_deadline() <= 0)
        return PQprepare(c, name, sql, n, NULL);
    if (an_store_deadline_passed()) {
        *timed_out = 1;
        return NULL;
    }
    return PQsendPrepare(c, name, sql, n, NULL) ? await_by_deadline(c, timed_out) : NULL;
}

static int sqlstate_is(const PGresult *r, const char *code)
{
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return st && strcmp(st, code) == 0;
}

/* FNV-1a of a statement's text: its prepared name. */
static uint64_t sql_id(const char *sql)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 0x100000001b3u;
    return h;
}

/* sql prepared on the slot's connection, once per connection: *named = 1
 * with its name in name, 0 when the slot has no room left (run it unnamed). */
static an_code prepare_once(an_pg_pool *p, int slot, PGconn *c, const char *sql, int n,
                            char name[24], int *named, const char *what, an_err *err)
{
    uint64_t id = sql_id(sql);
    snprintf(name, 24, "an_%016" PRIx64, id);
    an_pg_prepared *pr = &p->prepared[slot];
    *named = 1;
    for (int i = 0; i < pr->n; i++)
        if (pr->ids[i] == id)
            return AN_OK;
    if (pr->n == AN_PG_PREPARED_MAX) {
        *named = 0;
        return AN_OK;
    }
    int timed_out = 0;
    PGresult *r = prepare_by_deadline(c, name, sql, n, &timed_out);
    an_code rc = AN_OK;
    /* "already exists": a server whose clients share one session (the PGlite
     * test server) has it from another connection, under the same name, so
     * the same text */
    if (timed_out)
        rc = an_err_set(err, AN_ERR_TIMEOUT, "%s: cancelled at the request's query timeout", what);
    else if (PQresultStatus(r) != PGRES_COMMAND_OK && !sqlstate_is(r, "42P05"))
        rc = an_pg_res_error(r, c, what, err);
    else
        pr->ids[pr->n++] = id;
    PQclear(r);
    return rc;
}

/* One statement, under the thread's deadline when it has one. */
static PGresult *run(PGconn *c, const char *name, const char *sql, int n, const char *const *params,
                     int fmt, int *timed_out)
{
    if (an_store_deadline() > 0)
        return exec_by_deadline(c, name, sql, n, params, fmt, timed_out);
    return name ? PQexecPrepared(c, name, n, params, NULL, NULL, fmt)
                : PQexecParams(c, sql, n, NULL, params, NULL, NULL, fmt);
}

/* an_pg_exec's body; binary: prepared, with binary results. */
static an_code exec_on_pool(pg_store *ps, const char *sql, int n, const char *const *params,
                            an_pg_reader read, void *ctx, int *affected, const char *what,
                            int binary, an_err *err)
{
    PGconn *c;
    int slot;
    an_code rc = an_pg_pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    char name[24];
    int named = 0;
    if (binary &&
        (rc = prepare_once(&ps->pool, slot, c, sql, n, name, &named, what, err)) != AN_OK) {
        an_pg_pool_release(&ps->pool, c, slot);
        return rc;
    }
    const char *nm = named ? name : NULL;
    int timed_out = 0;
    PGresult *r = run(c, nm, sql, n, params, binary, &timed_out);
    if (nm && sqlstate_is(r, "26000") && PQtransactionStatus(c) == PQTRANS_IDLE) {
        /* gone from the session (a DISCARD ALL): prepare it again, once */
        PQclear(r);
        ps->pool.prepared[slot].n = 0;
        if ((rc = prepare_once(&ps->pool, slot, c, sql, n, name, &named, what, err)) != AN_OK) {
            an_pg_pool_release(&ps->pool, c, slot);
            return rc;
        }
        r = run(c, named ? name : NULL, sql, n, params, binary, &timed_out);
    }
    ExecStatusType st = PQresultStatus(r);
    /* past the deadline the reply is the timeout even when the statement
     * finished before the cancel reached it, as on DuckDB: which of the two
     * won the race must not decide the answer */
    if (timed_out)
        rc = an_err_set(err, AN_ERR_TIMEOUT, "%s: cancelled at the request's query timeout", what);
    else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = an_pg_res_error(r, c, what, err);
    else if (read)
        rc = read(r, ctx, err);
    if (rc == AN_OK && affected)
        *affected = atoi(PQcmdTuples(r));
    PQclear(r);
    an_pg_pool_release(&ps->pool, c, slot);
    return rc;
}

an_code an_pg_exec(pg_store *ps, const char *sql, int n, const char *const *params,
                   an_pg_reader read, void *ctx, int *affected, const char *what, an_err *err)
{
    return exec_on_pool(ps, sql, n, params, read, ctx, affected, what, 0, err);
}

an_code an_pg_exec_binary(pg_store *ps, const char *sql, int n, const char *const *params,
                          an_pg_reader read, void *ctx, const char *what, an_err *err)
{
    return exec_on_pool(ps, sql, n, params, read, ctx, NULL, what, 1, err);
}

/* ---- statements on a held connection ------------------------------------ */

an_code an_pg_exec_cmd(PGconn *c, const char *sql, const char *what, an_err *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    an_code rc = AN_OK;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        rc = an_pg_res_error(r, c, what, err);
    PQclear(r);
    return rc;
}

an_code an_pg_query_value(PGconn *c, const char *sql, int nparams, const char *const *params,
                          char **val, const char *what, an_err *err)
{
    *val = NULL;
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    an_code rc = AN_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = an_pg_res_error(r, c, what, err);
    else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) && !(*val = strdup(PQgetvalue(r, 0, 0))))
        rc = an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", what);
    PQclear(r);
    return rc;
}

int an_pg_query_bool(PGconn *c, const char *sql, an_code *rc, an_err *err)
{
    char *v = NULL;
    *rc = an_pg_query_value(c, sql, 0, NULL, &v, sql, err);
    int b = v && (v[0] == 't' || v[0] == '1');
    free(v);
    return b;
}

/* ---- reading rows into structs (rows.c's field tables) ------------------ */

static void fill_fields(const void *res, size_t row, const an_fields *f, void *elem)
{
    const PGresult *r = res;
    for (size_t c = 0; c < f->n; c++) {
        const an_field *fd = &f->v[c];
        char *p = (char *)elem + fd->offset;
        int null = PQgetisnull(r, (int)row, (int)c);
        const char *text = PQgetvalue(r, (int)row, (int)c);
        if (fd->kind == AN_FIELD_TEXT) {
            snprintf(p, fd->size, "%s", text);
        } else if (fd->kind == AN_FIELD_TEXT_DUP) {
            char *d = null ? NULL : strdup(text);
            memcpy(p, &d, sizeof d);
        } else if (fd->kind == AN_FIELD_INT64) {
            int64_t v = null ? 0 : strtoll(text, NULL, 10);
            memcpy(p, &v, sizeof v);
        } else {
            uint64_t v = null ? 0 : strtoull(text, NULL, 10);
            memcpy(p, &v, sizeof v);
        }
    }
}

an_code an_pg_read_rows(PGresult *r, void *ctx, an_err *err)
{
    return an_store_read_rows(ctx, r, (size_t)PQntuples(r), fill_fields, err);
}

an_code an_pg_read_one(PGresult *r, void *ctx, an_err *err)
{
    (void)err;
    an_store_read_one(ctx, r, PQntuples(r) > 0 && !PQgetisnull(r, 0, 0), fill_fields);
    return AN_OK;
}

uint64_t an_pg_bin8(const PGresult *r, int row, int col)
{
    if (PQgetlength(r, row, col) != 8)
        return 0;
    return an_pg_get_be64((const unsigned char *)PQgetvalue(r, row, col));
}

double an_pg_bin_f8(const PGresult *r, int row, int col)
{
    uint64_t b = an_pg_bin8(r, row, col);
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

int64_t an_pg_bin_ms(const PGresult *r, int row, int col)
{
    int64_t us = (int64_t)an_pg_bin8(r, row, col); /* from 2000-01-01 */
    return (us - (us % 1000 + 1000) % 1000 + AN_PG_EPOCH_US) / 1000;
}

/* ---- ops of the connection itself --------------------------------------- */

static void pg_release_idle(an_store *s)
{
    pg_store *ps = s->impl;
    pthread_mutex_lock(&ps->pool.lock);
    for (int i = 0; i < ps->pool.size; i++) {
        if (!ps->pool.by_lock.busy[i] && ps->pool.by_lock.conns[i]) {
            PQfinish(ps->pool.by_lock.conns[i]);
            ps->pool.by_lock.conns[i] = NULL;
        }
    }
    pthread_mutex_unlock(&ps->pool.lock);
}

static const char *pg_conninfo(const an_store *s)
{
    const pg_store *ps = s->impl;
    return ps->pool.conninfo;
}

static void free_store(pg_store *ps)
{
    pool_destroy(&ps->pool);
    PQfinish(ps->by_lock_mu.conn);
    pthread_mutex_destroy(&ps->lock_mu);
    free(ps->compress_after);
    free(ps->retention);
    free(ps);
}

static void pg_close(an_store *s)
{
    pg_store *ps = s->impl;
    if (!ps)
        return;
    free_store(ps);
    s->impl = NULL;
}

#define AN_PG_OP(op) .op = an_pg_##op,
static const an_store_ops PG_OPS = {.try_lock = an_pg_try_lock,
                                    .unlock = an_pg_unlock,
                                    .pg_conninfo = pg_conninfo,
                                    .release_idle = pg_release_idle,
                                    .close = pg_close,
                                    .upsert_candles = an_pg_upsert_candles,
                                    .upsert_indicators_many = an_pg_upsert_indicators_many,
                                    .listen = an_pg_listen,
                                    /* and every op of AN_STORE_OPS: an_pg_OP */
                                    AN_STORE_OPS(AN_PG_OP)};

/* ---- open --------------------------------------------------------------- */

static void describe(PGconn *c, char *buf, size_t len)
{
    snprintf(buf, len, "%s:%s/%s", PQhost(c) ? PQhost(c) : "?", PQport(c) ? PQport(c) : "?",
             PQdb(c) ? PQdb(c) : "?");
}

/* Describes a conninfo without connecting (for errors): host:port/dbname. */
static void describe_conninfo(const char *conninfo, char *buf, size_t len)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
    const char *host = "localhost", *port = "5432", *db = "?";
    for (PQconninfoOption *o = opts; o && o->keyword; o++) {
        if (!o->val)
            continue;
        if (strcmp(o->keyword, "host") == 0 || strcmp(o->keyword, "hostaddr") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
    }
    snprintf(buf, len, "%s:%s/%s", host, port, db);
    PQconninfoFree(opts);
    PQfreemem(errmsg);
}

/* The pool's conninfo: the user's, then ours (later keywords win in libpq). */
static an_code make_conninfo(const an_store_options *opt, an_pg_pool *p, an_err *err)
{
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(opt->pg_conninfo, &perr);
    if (!parsed) {
        an_err_set(err, AN_ERR_INVALID, "invalid PostgreSQL connection settings: %s",
                   perr ? perr : "unparseable");
        PQfreemem(perr);
        return AN_ERR_INVALID;
    }
    PQconninfoFree(parsed);
    int timeout = opt->connect_timeout_s > 0 ? opt->connect_timeout_s : 10;
    size_t len = strlen(opt->pg_conninfo) + 200;
    if (!(p->conninfo = malloc(len)))
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    snprintf(p->conninfo, len,
             "%s connect_timeout=%d application_name=autonama keepalives=1 "
             "keepalives_idle=30 options='-c client_min_messages=warning'",
             opt->pg_conninfo, timeout);
    return AN_OK;
}

/* Sizes the pool from the first connection and settles the mode. */
static an_code settle(const an_store_options *opt, pg_store *ps, PGconn *c, an_store *s,
                      an_err *err)
{
    char *ver = NULL;
    an_code rc = an_pg_query_value(c, "SELECT version()", 0, NULL, &ver, "version", err);
    if (rc != AN_OK)
        return rc;
    ps->is_pglite = ver && strstr(ver, "Emscripten") != NULL;
    free(ver);
    int size = opt->pool_size > 0 ? opt->pool_size : 4;
    ps->pool.size = ps->is_pglite ? 1 : size > AN_PG_POOL_MAX ? AN_PG_POOL_MAX : size;
    if ((rc = an_pg_detect(ps, c, s, err)) != AN_OK)
        return rc;
    if (opt->mode && strcmp(opt->mode, "postgres") == 0 && s->mode == AN_STORE_TIMESCALEDB) {
        /* plain mode asked for: honoured unless the schema already is hypertables */
        int have =
            an_pg_query_bool(c, "SELECT to_regclass('trading.ohlc_data') IS NOT NULL", &rc, err);
        if (rc != AN_OK)
            return rc;
        if (!have)
            s->mode = AN_STORE_POSTGRES;
    }
    ps->compress_after = strdup(opt->compress_after ? opt->compress_after : "");
    ps->retention = strdup(opt->retention ? opt->retention : "");
    if (!ps->compress_after || !ps->retention)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    return AN_OK;
}

an_code an_pg_store_open(const an_store_options *opt, an_store *s, an_err *err)
{
    an_err local;
    if (!err)
        err = &local;
    an_err_clear(err);
    pg_store *ps = calloc(1, sizeof *ps);
    if (!ps)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    an_code rc = pool_init(&ps->pool, err);
    if (rc != AN_OK) {
        free(ps);
        return rc;
    }
    pthread_mutex_init(&ps->lock_mu, NULL);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t x = ((uint64_t)getpid() << 32) ^ (uint64_t)now.tv_nsec ^ (uint64_t)now.tv_sec ^
                 (uint64_t)(uintptr_t)ps;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u; /* splitmix64's finalizer */
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
    snprintf(ps->tag, sizeof ps->tag, "%016" PRIx64, x ^ (x >> 31));
    char where[200];
    describe_conninfo(opt->pg_conninfo, where, sizeof where);
    if ((rc = make_conninfo(opt, &ps->pool, err)) != AN_OK)
        goto fail;
    PGconn *c = an_pg_pool_connect(&ps->pool, err);
    if (!c) {
        rc = an_err_prefix(err, "PostgreSQL at %s", where);
        goto fail;
    }
    describe(c, s->describe, sizeof s->describe);
    ps->pool.by_lock.conns[0] = c; /* the pool owns it from here */
    if ((rc = settle(opt, ps, c, s, err)) != AN_OK)
        goto fail;
    s->ops = &PG_OPS;
    s->impl = ps;
    AN_INFO(AN_PG_COMPONENT, "msg=\"connected\" server=%s mode=%s pool=%d%s", s->describe,
            an_store_mode_name(s->mode), ps->pool.size, ps->is_pglite ? " pglite=true" : "");
    return AN_OK;
fail:
    if (rc == AN_OK) /* every failure above sets rc */
        rc = an_err_set(err, AN_ERR_CONNECT, "cannot open PostgreSQL at %s", where);
    free_store(ps);
    return rc;
}
