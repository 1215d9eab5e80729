/*
 * pg_store.c - the PostgreSQL and TimescaleDB store backends (see store.h).
 *
 * Owns a small pool of libpq connections (mutex + condition variable); every
 * op borrows one connection for its duration, so any thread may call any op.
 * The mode is timescaledb when trading.ohlc_data is a hypertable, or, before
 * the schema exists, when the timescaledb extension is installed or can be
 * created; otherwise postgres. On TimescaleDB the rollups are continuous
 * aggregates with refresh policies, ohlc_data and analytics.indicators are
 * hypertables with compression; on plain PostgreSQL the rollups are
 * materialized views that an_store_refresh_rollups refreshes.
 *
 * Writes are batched: one INSERT ... SELECT FROM unnest(arrays) ... ON
 * CONFLICT DO UPDATE per 10,000 rows, all batches of a call in one
 * transaction. The PGlite TimescaleDB test server takes one connection at a
 * time: it is recognised by its version string and the pool is sized to 1.
 */
#include "store/store_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

#define POOL_MAX 64
#define INSERT_BATCH 50000

typedef struct pg_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *conninfo; /* with our connect_timeout and options appended; secret */
    int size;
    int busy[POOL_MAX];
    PGconn *conns[POOL_MAX];
    int acquire_timeout_s;
} pg_pool;

typedef struct pg_store {
    pg_pool pool;
    int is_pglite;
    int ts_available; /* extension can be created */
    int ts_installed;
    char *compress_after;
    char *retention;
    pthread_mutex_t lock_mu; /* guards lock_conn */
    PGconn *lock_conn;       /* holds the advisory locks (schema v3 ops) */
} pg_store;

static const char *COMPONENT = "store";

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

static an_code res_error(PGresult *r, PGconn *c, const char *what, an_err *err)
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
    AN_DEBUG(COMPONENT, "msg=\"server notice\" notice=\"%s\"", an_log_quote(message, q, sizeof q));
}

static PGconn *pool_connect(pg_pool *p, an_err *err)
{
    PGconn *c = PQconnectdb(p->conninfo);
    if (!c || PQstatus(c) != CONNECTION_OK) {
        conn_error(c, "cannot connect to PostgreSQL", err);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, on_notice, NULL);
    /* the PGlite server ignores startup options: set them again */
    PGresult *r = PQexec(c, "SET TIME ZONE 'UTC'; SET client_min_messages = warning");
    PQclear(r);
    return c;
}

/* Borrows a connection, connecting or reconnecting as needed. */
static an_code pool_acquire(pg_pool *p, PGconn **out, int *slot, an_err *err)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += p->acquire_timeout_s;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        for (int i = 0; i < p->size; i++) {
            if (!p->busy[i]) {
                p->busy[i] = 1;
                PGconn *c = p->conns[i];
                p->conns[i] = NULL;
                pthread_mutex_unlock(&p->lock);
                if (c && PQstatus(c) != CONNECTION_OK) {
                    /* one fresh connect (not PQreset and then another: an
                     * unreachable server would cost the timeout twice) */
                    PQfinish(c);
                    c = NULL;
                }
                if (!c)
                    c = pool_connect(p, err);
                if (!c) {
                    pthread_mutex_lock(&p->lock);
                    p->busy[i] = 0;
                    pthread_cond_signal(&p->cond);
                    pthread_mutex_unlock(&p->lock);
                    return err ? err->code : AN_ERR_CONNECT;
                }
                *out = c;
                *slot = i;
                return AN_OK;
            }
        }
        if (pthread_cond_timedwait(&p->cond, &p->lock, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            return an_err_set(err, AN_ERR_TIMEOUT,
                              "no free PostgreSQL connection within %d s (pool of %d)",
                              p->acquire_timeout_s, p->size);
        }
    }
}

static void pool_release(pg_pool *p, PGconn *c, int slot)
{
    /* a connection left inside a failed transaction is rolled back first */
    if (c && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(c, "ROLLBACK");
        PQclear(r);
    }
    pthread_mutex_lock(&p->lock);
    p->conns[slot] = c;
    p->busy[slot] = 0;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

static void pool_destroy(pg_pool *p)
{
    for (int i = 0; i < POOL_MAX; i++)
        PQfinish(p->conns[i]);
    if (p->conninfo) {
        memset(p->conninfo, 0, strlen(p->conninfo));
        free(p->conninfo);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
}

/* ---- small query helpers ----------------------------------------------- */

static an_code exec_cmd(PGconn *c, const char *sql, const char *what, an_err *err)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        an_code rc = res_error(r, c, what, err);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    return AN_OK;
}

/* Runs a query returning one value; *val gets a malloc'd copy (NULL when no
 * row or SQL NULL). */
static an_code query_value(PGconn *c, const char *sql, int nparams, const char *const *params,
                           char **val, const char *what, an_err *err)
{
    *val = NULL;
    PGresult *r = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        an_code rc = res_error(r, c, what, err);
        PQclear(r);
        return rc;
    }
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        *val = strdup(PQgetvalue(r, 0, 0));
        if (!*val) {
            PQclear(r);
            return an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", what);
        }
    }
    PQclear(r);
    return AN_OK;
}

static int query_bool(PGconn *c, const char *sql, an_code *rc, an_err *err)
{
    char *v = NULL;
    *rc = query_value(c, sql, 0, NULL, &v, sql, err);
    int b = v && (v[0] == 't' || v[0] == '1');
    free(v);
    return b;
}

/* ---- mode detection ----------------------------------------------------- */

static an_code detect(pg_store *ps, PGconn *c, an_store *s, an_err *err)
{
    an_code rc;
    ps->ts_installed = query_bool(
        c, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')", &rc, err);
    if (rc != AN_OK)
        return rc;
    ps->ts_available = query_bool(
        c, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')", &rc,
        err);
    if (rc != AN_OK)
        return rc;
    int hyper = 0, have_table = 0;
    if (ps->ts_installed) {
        hyper = query_bool(c,
                           "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
                           "WHERE hypertable_schema = 'trading' AND hypertable_name = "
                           "'ohlc_data')",
                           &rc, err);
        if (rc != AN_OK)
            return rc;
    }
    have_table = query_bool(c, "SELECT to_regclass('trading.ohlc_data') IS NOT NULL", &rc, err);
    if (rc != AN_OK)
        return rc;
    if (have_table)
        s->mode = hyper ? AN_STORE_TIMESCALEDB : AN_STORE_POSTGRES;
    else
        s->mode = (ps->ts_installed || ps->ts_available) ? AN_STORE_TIMESCALEDB : AN_STORE_POSTGRES;
    return AN_OK;
}

/* ---- migrations --------------------------------------------------------- */

static const char *MIGRATION_1_COMMON[] = {
    "CREATE SCHEMA IF NOT EXISTS trading",
    "CREATE SCHEMA IF NOT EXISTS analytics",
    "CREATE SCHEMA IF NOT EXISTS optimization",
    "CREATE TABLE trading.ohlc_data ("
    " symbol text COLLATE \"C\" NOT NULL, timeframe text COLLATE \"C\" NOT NULL,"
    " \"timestamp\" timestamptz NOT NULL, open double precision NOT NULL,"
    " high double precision NOT NULL, low double precision NOT NULL,"
    " close double precision NOT NULL, volume double precision NOT NULL,"
    " PRIMARY KEY (symbol, timeframe, \"timestamp\"))",
    "CREATE TABLE analytics.indicators ("
    " symbol text COLLATE \"C\" NOT NULL, timeframe text COLLATE \"C\" NOT NULL,"
    " \"timestamp\" timestamptz NOT NULL, indicator_name text COLLATE \"C\" NOT NULL,"
    " indicator_value double precision,"
    " PRIMARY KEY (symbol, timeframe, indicator_name, \"timestamp\"))",
    "CREATE TABLE optimization.results ("
    " id bigserial PRIMARY KEY, symbol text NOT NULL, strategy text NOT NULL,"
    " parameters jsonb, metrics jsonb, created_at timestamptz NOT NULL DEFAULT now())",
    NULL,
};

#define ROLLUP_TS(bucket)                                                                          \
    "SELECT symbol, time_bucket(INTERVAL '" bucket "', \"timestamp\") AS \"timestamp\","           \
    " first(open, \"timestamp\") AS open, max(high) AS high, min(low) AS low,"                     \
    " last(close, \"timestamp\") AS close, sum(volume) AS volume, count(*) AS candle_count"        \
    " FROM trading.ohlc_data WHERE timeframe = '1m'"                                               \
    " GROUP BY symbol, time_bucket(INTERVAL '" bucket "', \"timestamp\")"

static const char *MIGRATION_1_TIMESCALE[] = {
    "SELECT create_hypertable('trading.ohlc_data', 'timestamp',"
    " chunk_time_interval => INTERVAL '7 days')",
    "SELECT create_hypertable('analytics.indicators', 'timestamp',"
    " chunk_time_interval => INTERVAL '30 days')",
    "CREATE MATERIALIZED VIEW trading.ohlc_1h WITH (timescaledb.continuous,"
    " timescaledb.materialized_only = false) AS " ROLLUP_TS("1 hour") " WITH NO DATA",
    "CREATE MATERIALIZED VIEW trading.ohlc_1d WITH (timescaledb.continuous,"
    " timescaledb.materialized_only = false) AS " ROLLUP_TS("1 day") " WITH NO DATA",
    "SELECT add_continuous_aggregate_policy('trading.ohlc_1h', start_offset => INTERVAL '3"
    " days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '15 minutes')",
    "SELECT add_continuous_aggregate_policy('trading.ohlc_1d', start_offset => INTERVAL '7"
    " days', end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour')",
    "ALTER TABLE trading.ohlc_data SET (timescaledb.compress,"
    " timescaledb.compress_segmentby = 'symbol, timeframe',"
    " timescaledb.compress_orderby = '\"timestamp\" DESC')",
    "ALTER TABLE analytics.indicators SET (timescaledb.compress,"
    " timescaledb.compress_segmentby = 'symbol, timeframe, indicator_name',"
    " timescaledb.compress_orderby = '\"timestamp\" DESC')",
    NULL,
};

#define ROLLUP_PG(bucket)                                                                          \
    "SELECT symbol, date_bin(INTERVAL '" bucket "', \"timestamp\","                                \
    " TIMESTAMPTZ '2000-01-01 00:00:00+00') AS \"timestamp\","                                     \
    " (array_agg(open ORDER BY \"timestamp\"))[1] AS open, max(high) AS high,"                     \
    " min(low) AS low, (array_agg(close ORDER BY \"timestamp\" DESC))[1] AS close,"                \
    " sum(volume) AS volume, count(*) AS candle_count"                                             \
    " FROM trading.ohlc_data WHERE timeframe = '1m' GROUP BY 1, 2"

static const char *MIGRATION_1_POSTGRES[] = {
    "CREATE MATERIALIZED VIEW trading.ohlc_1h AS " ROLLUP_PG("1 hour") " WITH NO DATA",
    "CREATE UNIQUE INDEX ohlc_1h_key ON trading.ohlc_1h (symbol, \"timestamp\")",
    "CREATE MATERIALIZED VIEW trading.ohlc_1d AS " ROLLUP_PG("1 day") " WITH NO DATA",
    "CREATE UNIQUE INDEX ohlc_1d_key ON trading.ohlc_1d (symbol, \"timestamp\")",
    NULL,
};

/* Version 2: the ledger of indicator runs, so a run knows what it computed
 * last time (through which candle, over how many candles, with which digest
 * of their closes) and writes only what is new or changed. */
static const char *MIGRATION_2[] = {
    "CREATE TABLE analytics.indicator_runs ("
    " symbol text NOT NULL, timeframe text NOT NULL, spec text NOT NULL,"
    " through_ts timestamptz NOT NULL, candles bigint NOT NULL, digest text NOT NULL,"
    " updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (symbol, timeframe))",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (2, 'analytics.indicator_runs')",
    NULL,
};

/* Version 3: the task runs (tasks/tasks.h): states, results, heartbeats; slot
 * is the claim key of a scheduled run, so two instances never run the same
 * scheduled task for the same period. */
static const char *MIGRATION_3[] = {
    "CREATE TABLE autonama.task_runs ("
    " id text PRIMARY KEY, name text NOT NULL, args jsonb, state text NOT NULL, approach text,"
    " meta jsonb, result jsonb, error text, instance text, symbol text, slot text UNIQUE,"
    " created_at timestamptz NOT NULL DEFAULT now(), started_at timestamptz,"
    " finished_at timestamptz, heartbeat_at timestamptz)",
    "CREATE INDEX task_runs_created_idx ON autonama.task_runs (created_at DESC)",
    "CREATE INDEX task_runs_state_idx ON autonama.task_runs (state)",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (3, 'autonama.task_runs')",
    NULL,
};

/* Version 4: optimizer runs in optimization.results (issue 13). */
static const char *MIGRATION_4[] = {
    "ALTER TABLE optimization.results ADD COLUMN run_id text, ADD COLUMN timeframe text,"
    " ADD COLUMN period_start timestamptz, ADD COLUMN period_end timestamptz,"
    " ADD COLUMN sample text",
    "CREATE INDEX results_run_idx ON optimization.results (run_id)",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (4, 'optimization.results: run_id, timeframe, period, sample')",
    NULL,
};

static an_code run_list(PGconn *c, const char *const *list, an_err *err)
{
    for (int i = 0; list[i]; i++) {
        an_code rc = exec_cmd(c, list[i], "migrate", err);
        if (rc != AN_OK)
            return rc;
    }
    return AN_OK;
}

static an_code stored_version(PGconn *c, int *version, an_err *err)
{
    an_code rc;
    *version = 0;
    int have = query_bool(c, "SELECT to_regclass('autonama.schema_version') IS NOT NULL", &rc, err);
    if (rc != AN_OK || !have)
        return rc;
    char *v = NULL;
    rc = query_value(c, "SELECT max(version) FROM autonama.schema_version", 0, NULL, &v,
                     "read schema version", err);
    if (rc == AN_OK && v)
        *version = atoi(v);
    free(v);
    return rc;
}

/* Compression and retention policies follow the configuration on every
 * migrate (they are settings, not schema): remove, then add when enabled. */
static an_code apply_policies(pg_store *ps, PGconn *c, an_err *err)
{
    an_code rc = exec_cmd(c,
                          "SELECT remove_compression_policy('trading.ohlc_data', if_exists =>"
                          " true)",
                          "migrate: compression policy", err);
    if (rc != AN_OK)
        return rc;
    if (ps->compress_after && *ps->compress_after) {
        const char *params[1] = {ps->compress_after};
        PGresult *r = PQexecParams(c,
                                   "SELECT add_compression_policy('trading.ohlc_data',"
                                   " compress_after => $1::interval)",
                                   1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = res_error(r, c, "migrate: compression policy", err);
            PQclear(r);
            return rc;
        }
        PQclear(r);
    }
    rc = exec_cmd(c, "SELECT remove_retention_policy('trading.ohlc_data', if_exists => true)",
                  "migrate: retention policy", err);
    if (rc != AN_OK)
        return rc;
    if (ps->retention && *ps->retention) {
        const char *params[1] = {ps->retention};
        PGresult *r = PQexecParams(c,
                                   "SELECT add_retention_policy('trading.ohlc_data',"
                                   " drop_after => $1::interval)",
                                   1, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = res_error(r, c, "migrate: retention policy", err);
            PQclear(r);
            return rc;
        }
        PQclear(r);
    }
    return AN_OK;
}

static an_code pg_migrate(an_store *s, int *applied, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    *applied = 0;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    int version = 0;
    rc = stored_version(c, &version, err);
    if (rc != AN_OK)
        goto out;
    if (version > AN_SCHEMA_VERSION) {
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "the database's schema is version %d, newer than this autonama "
                        "(%d): upgrade autonama",
                        version, AN_SCHEMA_VERSION);
        goto out;
    }
    if (version < 1) {
        int use_ts = s->mode == AN_STORE_TIMESCALEDB;
        if (use_ts && !ps->ts_installed) {
            rc = exec_cmd(c, "CREATE EXTENSION IF NOT EXISTS timescaledb",
                          "migrate: create extension timescaledb", err);
            if (rc != AN_OK) {
                AN_WARN(COMPONENT, "msg=\"timescaledb extension unavailable, using plain "
                                   "PostgreSQL\"");
                use_ts = 0;
                s->mode = AN_STORE_POSTGRES;
            } else {
                ps->ts_installed = 1;
            }
        }
        /* PGlite cannot run TimescaleDB's DDL inside one transaction block
         * with cagg creation; DDL of each step commits on its own there. A
         * failure leaves no schema_version row, so migrate can be rerun. */
        if (!ps->is_pglite && (rc = exec_cmd(c, "BEGIN", "migrate", err)) != AN_OK)
            goto out;
        rc = exec_cmd(c,
                      "CREATE SCHEMA IF NOT EXISTS autonama; CREATE TABLE IF NOT EXISTS "
                      "autonama.schema_version (version integer PRIMARY KEY, applied_at "
                      "timestamptz NOT NULL DEFAULT now(), description text NOT NULL)",
                      "migrate", err);
        if (rc == AN_OK)
            rc = run_list(c, MIGRATION_1_COMMON, err);
        if (rc == AN_OK && use_ts) {
            /* continuous aggregates cannot be created in a transaction block */
            if (!ps->is_pglite)
                rc = exec_cmd(c, "COMMIT", "migrate", err);
            for (int i = 0; rc == AN_OK && MIGRATION_1_TIMESCALE[i]; i++)
                rc = exec_cmd(c, MIGRATION_1_TIMESCALE[i], "migrate", err);
            if (rc == AN_OK && !ps->is_pglite)
                rc = exec_cmd(c, "BEGIN", "migrate", err);
        } else if (rc == AN_OK) {
            rc = run_list(c, MIGRATION_1_POSTGRES, err);
        }
        if (rc == AN_OK)
            rc = exec_cmd(c,
                          use_ts ? "INSERT INTO autonama.schema_version (version, description)"
                                   " VALUES (1, 'initial schema (timescaledb)')"
                                 : "INSERT INTO autonama.schema_version (version, description)"
                                   " VALUES (1, 'initial schema (postgres)')",
                          "migrate", err);
        if (rc == AN_OK && !ps->is_pglite)
            rc = exec_cmd(c, "COMMIT", "migrate", err);
        if (rc != AN_OK)
            goto out;
        *applied = 1;
        version = 1;
        AN_INFO(COMPONENT, "msg=\"schema migrated\" version=1 mode=%s",
                an_store_mode_name(s->mode));
    }
    /* versions 2.. : one transaction each (PGlite: none) */
    static const char *const *const LATER[] = {MIGRATION_2, MIGRATION_3, MIGRATION_4};
    for (int v = 2; v <= AN_SCHEMA_VERSION; v++) {
        if (version >= v)
            continue;
        if (!ps->is_pglite && (rc = exec_cmd(c, "BEGIN", "migrate", err)) != AN_OK)
            goto out;
        rc = run_list(c, LATER[v - 2], err);
        if (rc == AN_OK && !ps->is_pglite)
            rc = exec_cmd(c, "COMMIT", "migrate", err);
        if (rc != AN_OK)
            goto out;
        *applied += 1;
        AN_INFO(COMPONENT, "msg=\"schema migrated\" version=%d mode=%s", v,
                an_store_mode_name(s->mode));
    }
    if (s->mode == AN_STORE_TIMESCALEDB)
        rc = apply_policies(ps, c, err);
out:
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_check_schema(an_store *s, int *version, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    rc = stored_version(c, version, err);
    if (rc == AN_OK && *version == 0)
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "database %s has no autonama schema: run `autonama migrate`", s->describe);
    else if (rc == AN_OK && *version != AN_SCHEMA_VERSION)
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "database %s has schema version %d, this autonama needs %d: run "
                        "`autonama migrate`",
                        s->describe, *version, AN_SCHEMA_VERSION);
    if (rc == AN_OK) {
        static const char *rels[] = {"trading.ohlc_data", "trading.ohlc_1h", "trading.ohlc_1d",
                                     "analytics.indicators", "optimization.results"};
        for (size_t i = 0; i < sizeof rels / sizeof rels[0] && rc == AN_OK; i++) {
            const char *params[1] = {rels[i]};
            char *v = NULL;
            rc = query_value(c, "SELECT to_regclass($1) IS NOT NULL", 1, params, &v, "check schema",
                             err);
            if (rc == AN_OK && !(v && v[0] == 't'))
                rc = an_err_set(err, AN_ERR_SCHEMA, "database %s lacks %s: run `autonama migrate`",
                                s->describe, rels[i]);
            free(v);
        }
    }
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_ping(an_store *s, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    rc = exec_cmd(c, "SELECT 1", "ping", err);
    pool_release(&ps->pool, c, slot);
    return rc;
}

/* ---- insert ------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static int sbuf_reserve(sbuf *b, size_t more)
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

/* Binary array parameters (PostgreSQL's array_send format): no float
 * formatting on our side, no float parsing on the server's. */
#define OID_INT8 20
#define OID_FLOAT8 701
#define OID_TIMESTAMPTZ 1184
#define OID_FLOAT8_ARRAY 1022
#define OID_TIMESTAMPTZ_ARRAY 1185
/* microseconds from the Unix epoch to PostgreSQL's (2000-01-01) */
#define PG_EPOCH_US 946684800000000LL

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put_be64(unsigned char *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* field 0: timestamps as timestamptz[]; 1..5: open..volume as float8[] */
static int binary_array(sbuf *b, const an_candle *v, size_t n, size_t field)
{
    b->n = 0;
    if (sbuf_reserve(b, 20 + n * 12) < 0)
        return -1;
    unsigned char *p = (unsigned char *)b->p;
    put_be32(p, 1);                                             /* ndim */
    put_be32(p + 4, 0);                                         /* no NULLs */
    put_be32(p + 8, field == 0 ? OID_TIMESTAMPTZ : OID_FLOAT8); /* element type */
    put_be32(p + 12, (uint32_t)n);                              /* length */
    put_be32(p + 16, 1);                                        /* lower bound */
    p += 20;
    for (size_t i = 0; i < n; i++, p += 12) {
        uint64_t bits;
        if (field == 0) {
            bits = (uint64_t)(v[i].ts * 1000 - PG_EPOCH_US);
        } else {
            const double *f = &v[i].open;
            memcpy(&bits, &f[field - 1], sizeof bits);
        }
        put_be32(p, 8);
        put_be64(p + 4, bits);
    }
    b->n = 20 + n * 12;
    return 0;
}

static const char *UPSERT_SQL =
    "WITH up AS ("
    " INSERT INTO trading.ohlc_data AS d"
    " (symbol, timeframe, \"timestamp\", open, high, low, close, volume)"
    " SELECT $1, $2, t.ts, t.o, t.h, t.l, t.c, t.v"
    " FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[], $7::float8[],"
    " $8::float8[]) AS t(ts, o, h, l, c, v)"
    " ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET"
    " open = excluded.open, high = excluded.high, low = excluded.low,"
    " close = excluded.close, volume = excluded.volume"
    " WHERE (d.open, d.high, d.low, d.close, d.volume) IS DISTINCT FROM"
    " (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)"
    " RETURNING (xmax = 0) AS ins)"
    " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up";

/* Plain insert for a batch whose key range holds no stored row yet (the
 * common case: a backfill or an incremental run appending new candles). It
 * skips ON CONFLICT's speculative insertion; a concurrent writer that got
 * there first makes it fail with a unique violation, and the batch is then
 * redone as an upsert (see insert_batch). */
static const char *INSERT_NEW_SQL =
    "INSERT INTO trading.ohlc_data"
    " (symbol, timeframe, \"timestamp\", open, high, low, close, volume)"
    " SELECT $1, $2, t.ts, t.o, t.h, t.l, t.c, t.v"
    " FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float8[], $7::float8[],"
    " $8::float8[]) AS t(ts, o, h, l, c, v)";

/* The same plain insert as binary COPY (real servers: the PGlite test server
 * dies on COPY FROM STDIN). Measured ~1.5x the unnest INSERT: the rows stream
 * straight into the table, with no array to build and unnest on the server. */
static const char *COPY_NEW_SQL =
    "COPY trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low, close, volume)"
    " FROM STDIN (FORMAT binary)";

/* COPY's binary format: a signature, flags and an empty header extension;
 * per row a field count and (length, bytes) per field; -1 at the end. */
static int copy_rows(sbuf *b, const char *symbol, const char *tf, const an_candle *v, size_t n)
{
    static const unsigned char SIG[19] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};
    size_t ls = strlen(symbol), lt = strlen(tf);
    size_t row = 2 + 4 + ls + 4 + lt + 6 * 12;
    b->n = 0;
    if (sbuf_reserve(b, sizeof SIG + n * row + 2) < 0)
        return -1;
    unsigned char *p = (unsigned char *)b->p;
    memcpy(p, SIG, sizeof SIG); /* flags and extension length are the zeros at its end */
    p += sizeof SIG;
    for (size_t i = 0; i < n; i++) {
        p[0] = 0;
        p[1] = 8;
        put_be32(p + 2, (uint32_t)ls);
        memcpy(p + 6, symbol, ls);
        p += 6 + ls;
        put_be32(p, (uint32_t)lt);
        memcpy(p + 4, tf, lt);
        p += 4 + lt;
        const double *f = &v[i].open;
        for (int k = 0; k < 6; k++, p += 12) {
            uint64_t bits;
            if (k == 0) {
                bits = (uint64_t)(v[i].ts * 1000 - PG_EPOCH_US);
            } else {
                memcpy(&bits, &f[k - 1], sizeof bits);
            }
            put_be32(p, 8);
            put_be64(p + 4, bits);
        }
    }
    p[0] = 0xff;
    p[1] = 0xff;
    b->n = (size_t)(p + 2 - (unsigned char *)b->p);
    return 0;
}

/* Runs the COPY; the result (COMMAND_OK, or the error) is returned for the
 * caller to look at, as PQexecParams's would be. */
static PGresult *copy_in(PGconn *c, const sbuf *rows)
{
    PGresult *r = PQexec(c, COPY_NEW_SQL);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return r;
    PQclear(r);
    int ok = 1;
    for (size_t off = 0; off < rows->n && ok;) {
        size_t chunk = rows->n - off < (1u << 20) ? rows->n - off : (1u << 20);
        ok = PQputCopyData(c, rows->p + off, (int)chunk) == 1;
        off += chunk;
    }
    PQputCopyEnd(c, ok ? NULL : "autonama: sending the rows failed");
    PGresult *last = NULL;
    while ((r = PQgetResult(c)) != NULL) {
        if (last)
            PQclear(last);
        last = r;
    }
    return last;
}

static const char *RANGE_EMPTY_SQL =
    "SELECT NOT EXISTS (SELECT 1 FROM trading.ohlc_data WHERE symbol = $1 AND timeframe = $2"
    " AND \"timestamp\" BETWEEN $3::timestamptz AND $4::timestamptz)";

static an_code insert_batch(PGconn *c, int use_copy, const char *symbol, const char *tf,
                            const an_candle *v, size_t m, sbuf *arrays, an_upsert_counts *counts,
                            an_err *err)
{
    for (size_t f = 0; f < 6; f++)
        if (binary_array(&arrays[f], v, m, f) < 0)
            return an_err_set(err, AN_ERR_NOMEM, "insert_ohlc_data: out of memory");
    const char *params[8] = {symbol,      tf,          arrays[0].p, arrays[1].p,
                             arrays[2].p, arrays[3].p, arrays[4].p, arrays[5].p};
    static const Oid types[8] = {0,
                                 0,
                                 OID_TIMESTAMPTZ_ARRAY,
                                 OID_FLOAT8_ARRAY,
                                 OID_FLOAT8_ARRAY,
                                 OID_FLOAT8_ARRAY,
                                 OID_FLOAT8_ARRAY,
                                 OID_FLOAT8_ARRAY};
    int lengths[8] = {0, 0};
    int formats[8] = {0, 0, 1, 1, 1, 1, 1, 1};
    for (int k = 2; k < 8; k++)
        lengths[k] = (int)arrays[k - 2].n;

    /* fast path: nothing stored in [first, last] yet */
    char first[40], last[40];
    an_time_format(v[0].ts, first, sizeof first);
    an_time_format(v[m - 1].ts, last, sizeof last);
    const char *rparams[4] = {symbol, tf, first, last};
    char *empty = NULL;
    an_code rc = query_value(c, RANGE_EMPTY_SQL, 4, rparams, &empty, "insert_ohlc_data", err);
    int fast = rc == AN_OK && empty && empty[0] == 't';
    free(empty);
    if (rc != AN_OK)
        return rc;
    if (fast) {
        if ((rc = exec_cmd(c, "SAVEPOINT batch", "insert_ohlc_data", err)) != AN_OK)
            return rc;
        PGresult *r;
        if (use_copy) {
            if (copy_rows(&arrays[6], symbol, tf, v, m) < 0)
                return an_err_set(err, AN_ERR_NOMEM, "insert_ohlc_data: out of memory");
            r = copy_in(c, &arrays[6]);
        } else {
            r = PQexecParams(c, INSERT_NEW_SQL, 8, types, params, lengths, formats, 0);
        }
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            PQclear(r);
            counts->inserted += (int64_t)m;
            return exec_cmd(c, "RELEASE SAVEPOINT batch", "insert_ohlc_data", err);
        }
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (!state || strcmp(state, "23505") != 0) {
            rc = res_error(r, c, "insert_ohlc_data", err);
            PQclear(r);
            return rc;
        }
        PQclear(r); /* a concurrent writer got there first: upsert instead */
        if ((rc = exec_cmd(c, "ROLLBACK TO SAVEPOINT batch", "insert_ohlc_data", err)) != AN_OK)
            return rc;
    }
    PGresult *r = PQexecParams(c, UPSERT_SQL, 8, types, params, lengths, formats, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = res_error(r, c, "insert_ohlc_data", err);
        PQclear(r);
        return rc;
    }
    int64_t ins = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    int64_t upd = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    counts->inserted += ins;
    counts->updated += upd;
    counts->unchanged += (int64_t)m - ins - upd;
    return AN_OK;
}

static an_code pg_insert_ohlc(an_store *s, const char *symbol, const char *tf, const an_candle *v,
                              size_t n, an_upsert_counts *counts, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    sbuf arrays[7] = {{0}}; /* six arrays, and the COPY rows */
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    if ((rc = exec_cmd(c, "BEGIN", "insert_ohlc_data", err)) != AN_OK)
        goto out;
    for (size_t off = 0; off < n && rc == AN_OK; off += INSERT_BATCH) {
        size_t m = n - off < INSERT_BATCH ? n - off : INSERT_BATCH;
        rc = insert_batch(c, !ps->is_pglite, symbol, tf, v + off, m, arrays, counts, err);
    }
    if (rc == AN_OK)
        rc = exec_cmd(c, "COMMIT", "insert_ohlc_data", err);
out:
    if (rc != AN_OK)
        memset(counts, 0, sizeof *counts);
    for (size_t f = 0; f < 7; f++)
        free(arrays[f].p);
    pool_release(&ps->pool, c, slot); /* rolls back an open transaction */
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

/* Appends a query's time range, order and limit to sql as parameters
 * $np+1...; bufs hold the parameters' text and must outlive the query. */
typedef struct range_params {
    char start[24], end[24], limit[24];
} range_params;

static int append_range(char *sql, size_t cap, int pos, const an_query *q, const char *order_by,
                        const char **params, int *np, range_params *bufs)
{
    if (q->start_ms != INT64_MIN) {
        snprintf(bufs->start, sizeof bufs->start, "%" PRId64, q->start_ms);
        params[(*np)++] = bufs->start;
        pos += snprintf(sql + pos, cap - (size_t)pos,
                        " AND \"timestamp\" >= TIMESTAMPTZ 'epoch' + $%d::int8 * INTERVAL '1 "
                        "millisecond'",
                        *np);
    }
    if (q->end_ms != INT64_MAX) {
        snprintf(bufs->end, sizeof bufs->end, "%" PRId64, q->end_ms);
        params[(*np)++] = bufs->end;
        pos += snprintf(sql + pos, cap - (size_t)pos,
                        " AND \"timestamp\" < TIMESTAMPTZ 'epoch' + $%d::int8 * INTERVAL '1 "
                        "millisecond'",
                        *np);
    }
    pos += snprintf(sql + pos, cap - (size_t)pos, " ORDER BY %s\"timestamp\" %s", order_by,
                    q->descending ? "DESC" : "ASC");
    if (q->limit > 0) {
        snprintf(bufs->limit, sizeof bufs->limit, "%zu", q->limit);
        params[(*np)++] = bufs->limit;
        pos += snprintf(sql + pos, cap - (size_t)pos, " LIMIT $%d", *np);
    }
    return pos;
}

/* Runs a candle query (ms, open, high, low, close, volume per row) and
 * appends its rows to out. */
static an_code query_candles(pg_store *ps, const char *sql, int np, const char *const *params,
                             const char *what, an_candles *out, an_err *err)
{
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    PGresult *r = PQexecParams(c, sql, np, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = res_error(r, c, what, err);
        goto out;
    }
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        an_candle k;
        k.ts = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        k.open = strtod(PQgetvalue(r, i, 1), NULL);
        k.high = strtod(PQgetvalue(r, i, 2), NULL);
        k.low = strtod(PQgetvalue(r, i, 3), NULL);
        k.close = strtod(PQgetvalue(r, i, 4), NULL);
        k.volume = strtod(PQgetvalue(r, i, 5), NULL);
        if ((rc = an_candles_push(out, &k, err)) != AN_OK)
            goto out;
    }
out:
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_get_ohlc(an_store *s, const char *source, const char *symbol, const char *tf,
                           const an_query *q, an_candles *out, an_err *err)
{
    pg_store *ps = s->impl;
    char sql[768];
    const char *params[5];
    int np = 0;
    int pos = snprintf(sql, sizeof sql,
                       "SELECT (extract(epoch FROM \"timestamp\") * 1000)::int8, open, high, "
                       "low, close, volume FROM trading.%s WHERE symbol = $1",
                       source);
    params[np++] = symbol;
    if (tf) {
        params[np++] = tf;
        pos += snprintf(sql + pos, sizeof sql - (size_t)pos, " AND timeframe = $%d", np);
    }
    range_params bufs;
    append_range(sql, sizeof sql, pos, q, "", params, &np, &bufs);
    return query_candles(ps, sql, np, params, "get_ohlc_data", out, err);
}

/* Buckets over ohlc_data: time_bucket with first()/last() on TimescaleDB,
 * date_bin with ordered array_agg on plain PostgreSQL (both on the epoch). */
static an_code pg_get_bucketed(an_store *s, const char *symbol, const char *tf, int64_t bucket_ms,
                               const an_query *q, an_candles *out, an_err *err)
{
    pg_store *ps = s->impl;
    int ts = s->mode == AN_STORE_TIMESCALEDB;
    char sql[1024], bms[24];
    const char *params[6] = {symbol, tf, bms};
    int np = 3;
    snprintf(bms, sizeof bms, "%" PRId64, bucket_ms);
    int pos = snprintf(
        sql, sizeof sql,
        "SELECT (extract(epoch FROM b) * 1000)::int8, %s, max(high), min(low), %s, sum(volume)"
        " FROM (SELECT %s AS b, \"timestamp\", open, high, low, close, volume"
        " FROM trading.ohlc_data WHERE symbol = $1 AND timeframe = $2",
        ts ? "first(open, \"timestamp\")" : "(array_agg(open ORDER BY \"timestamp\"))[1]",
        ts ? "last(close, \"timestamp\")" : "(array_agg(close ORDER BY \"timestamp\" DESC))[1]",
        ts ? "time_bucket($3::int8 * INTERVAL '1 millisecond', \"timestamp\", TIMESTAMPTZ "
             "'epoch')"
           : "date_bin($3::int8 * INTERVAL '1 millisecond', \"timestamp\", TIMESTAMPTZ 'epoch')");
    range_params bufs;
    if (q->start_ms != INT64_MIN) {
        snprintf(bufs.start, sizeof bufs.start, "%" PRId64, q->start_ms);
        params[np++] = bufs.start;
        pos += snprintf(sql + pos, sizeof sql - (size_t)pos,
                        " AND \"timestamp\" >= TIMESTAMPTZ 'epoch' + $%d::int8 * INTERVAL '1 "
                        "millisecond'",
                        np);
    }
    if (q->end_ms != INT64_MAX) {
        snprintf(bufs.end, sizeof bufs.end, "%" PRId64, q->end_ms);
        params[np++] = bufs.end;
        pos += snprintf(sql + pos, sizeof sql - (size_t)pos,
                        " AND \"timestamp\" < TIMESTAMPTZ 'epoch' + $%d::int8 * INTERVAL '1 "
                        "millisecond'",
                        np);
    }
    pos += snprintf(sql + pos, sizeof sql - (size_t)pos, ") t GROUP BY b ORDER BY b %s",
                    q->descending ? "DESC" : "ASC");
    if (q->limit > 0) {
        snprintf(bufs.limit, sizeof bufs.limit, "%zu", q->limit);
        params[np++] = bufs.limit;
        snprintf(sql + pos, sizeof sql - (size_t)pos, " LIMIT $%d", np);
    }
    return query_candles(ps, sql, np, params, "get bucketed candles", out, err);
}

static an_code pg_latest(an_store *s, const char *symbol, const char *tf, int64_t *ts, int *found,
                         an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    const char *params[2] = {symbol, tf};
    char *v = NULL;
    /* ORDER BY ... LIMIT 1 walks the primary key backwards (and lets
     * TimescaleDB start from the newest chunk) */
    rc = query_value(c,
                     "SELECT (extract(epoch FROM \"timestamp\") * 1000)::int8 FROM "
                     "trading.ohlc_data WHERE symbol = $1 AND timeframe = $2 ORDER BY "
                     "\"timestamp\" DESC LIMIT 1",
                     2, params, &v, "get_latest_timestamp", err);
    if (rc == AN_OK && v) {
        *ts = strtoll(v, NULL, 10);
        *found = 1;
    }
    free(v);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_refresh_rollups(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    static const char *views[2] = {"trading.ohlc_1h", "trading.ohlc_1d"};
    for (int i = 0; i < 2 && rc == AN_OK; i++) {
        if (s->mode == AN_STORE_TIMESCALEDB) {
            char from[24], to[24];
            const char *params[3] = {views[i], NULL, NULL};
            if (from_ms != INT64_MIN) {
                snprintf(from, sizeof from, "%" PRId64, from_ms);
                params[1] = from;
            }
            if (to_ms != INT64_MAX) {
                snprintf(to, sizeof to, "%" PRId64, to_ms);
                params[2] = to;
            }
            PGresult *r =
                PQexecParams(c,
                             "CALL refresh_continuous_aggregate($1::regclass,"
                             " TIMESTAMPTZ 'epoch' + $2::int8 * INTERVAL '1 millisecond',"
                             " TIMESTAMPTZ 'epoch' + $3::int8 * INTERVAL '1 millisecond')",
                             3, NULL, params, NULL, NULL, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
                rc = res_error(r, c, "refresh rollups", err);
            PQclear(r);
        } else {
            /* the whole view; CONCURRENTLY keeps readers unblocked once populated */
            char sql[160], *pop = NULL;
            const char *params[1] = {views[i] + 8};
            rc = query_value(c,
                             "SELECT ispopulated FROM pg_matviews WHERE schemaname = 'trading' "
                             "AND matviewname = $1",
                             1, params, &pop, "refresh rollups", err);
            if (rc != AN_OK)
                break;
            if (!pop) {
                free(pop);
                rc = an_err_set(err, AN_ERR_SCHEMA, "%s is missing: run `autonama migrate`",
                                views[i]);
                break;
            }
            snprintf(sql, sizeof sql, "REFRESH MATERIALIZED VIEW %s%s",
                     pop[0] == 't' ? "CONCURRENTLY " : "", views[i]);
            free(pop);
            rc = exec_cmd(c, sql, "refresh rollups", err);
        }
    }
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_list_series(an_store *s, an_series_info **out, size_t *n, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    PGresult *r = PQexec(c, "SELECT symbol, timeframe,"
                            " (extract(epoch FROM min(\"timestamp\")) * 1000)::int8,"
                            " (extract(epoch FROM max(\"timestamp\")) * 1000)::int8, count(*)"
                            " FROM trading.ohlc_data GROUP BY symbol, timeframe"
                            " ORDER BY symbol, timeframe");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = res_error(r, c, "list series", err);
        goto out;
    }
    int rows = PQntuples(r);
    if (rows > 0) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out) {
            rc = an_err_set(err, AN_ERR_NOMEM, "list series: out of memory");
            goto out;
        }
    }
    for (int i = 0; i < rows; i++) {
        an_series_info *si = &(*out)[i];
        snprintf(si->symbol, sizeof si->symbol, "%s", PQgetvalue(r, i, 0));
        snprintf(si->timeframe, sizeof si->timeframe, "%s", PQgetvalue(r, i, 1));
        si->first_ms = strtoll(PQgetvalue(r, i, 2), NULL, 10);
        si->last_ms = strtoll(PQgetvalue(r, i, 3), NULL, 10);
        si->rows = strtoll(PQgetvalue(r, i, 4), NULL, 10);
    }
    *n = (size_t)rows;
out:
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

/* ---- indicators --------------------------------------------------------- */

#define OID_INT4 23
#define OID_INT4_ARRAY 1007

static const char *IND_UPSERT_SQL =
    "WITH up AS ("
    " INSERT INTO analytics.indicators AS d"
    " (symbol, timeframe, \"timestamp\", indicator_name, indicator_value)"
    " SELECT $1, $2, t.ts, ($3::text[])[t.k], t.v"
    " FROM unnest($4::timestamptz[], $5::int4[], $6::float8[]) AS t(ts, k, v)"
    " ON CONFLICT (symbol, timeframe, indicator_name, \"timestamp\") DO UPDATE SET"
    " indicator_value = excluded.indicator_value"
    " WHERE d.indicator_value IS DISTINCT FROM excluded.indicator_value"
    " RETURNING (xmax = 0) AS ins)"
    " SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM up";

static const char *IND_INSERT_SQL =
    "INSERT INTO analytics.indicators"
    " (symbol, timeframe, \"timestamp\", indicator_name, indicator_value)"
    " SELECT $1, $2, t.ts, ($3::text[])[t.k], t.v"
    " FROM unnest($4::timestamptz[], $5::int4[], $6::float8[]) AS t(ts, k, v)";

static const char *IND_RANGE_EMPTY_SQL =
    "SELECT NOT EXISTS (SELECT 1 FROM analytics.indicators WHERE symbol = $1 AND timeframe = $2"
    " AND \"timestamp\" BETWEEN $3::timestamptz AND $4::timestamptz)";

/* array_send format of n values: kind 0 timestamptz (from ms), 1 int4
 * (name index + 1), 2 float8 */
static int binary_values(sbuf *b, const an_indicator_batch *ib, size_t off, size_t n, int kind)
{
    size_t w = kind == 1 ? 4 : 8;
    if (sbuf_reserve(b, 20 + n * (4 + w)) < 0)
        return -1;
    unsigned char *p = (unsigned char *)b->p;
    put_be32(p, 1);
    put_be32(p + 4, 0);
    put_be32(p + 8, kind == 0 ? OID_TIMESTAMPTZ : kind == 1 ? OID_INT4 : OID_FLOAT8);
    put_be32(p + 12, (uint32_t)n);
    put_be32(p + 16, 1);
    p += 20;
    for (size_t i = off; i < off + n; i++) {
        put_be32(p, (uint32_t)w);
        if (kind == 0) {
            put_be64(p + 4, (uint64_t)(ib->ts[i] * 1000 - PG_EPOCH_US));
        } else if (kind == 1) {
            put_be32(p + 4, (uint32_t)(ib->name_idx[i] + 1));
        } else {
            uint64_t bits;
            memcpy(&bits, &ib->value[i], sizeof bits);
            put_be64(p + 4, bits);
        }
        p += 4 + w;
    }
    b->n = 20 + n * (4 + w);
    return 0;
}

static an_code pg_upsert_indicators(an_store *s, const char *symbol, const char *tf,
                                    const an_indicator_batch *b, an_upsert_counts *counts,
                                    an_err *err)
{
    pg_store *ps = s->impl;
    sbuf arr[3] = {{0}}, names = {0};
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    /* the names as a text[] literal; names are [a-z0-9_.] (checked by store.c) */
    size_t need = 3;
    for (int k = 0; k < b->n_names; k++)
        need += strlen(b->names[k]) + 1;
    if (sbuf_reserve(&names, need) < 0) {
        rc = an_err_set(err, AN_ERR_NOMEM, "upsert indicators: out of memory");
        goto out;
    }
    names.n = 0;
    names.p[names.n++] = '{';
    for (int k = 0; k < b->n_names; k++) {
        size_t l = strlen(b->names[k]);
        if (k)
            names.p[names.n++] = ',';
        memcpy(names.p + names.n, b->names[k], l);
        names.n += l;
    }
    names.p[names.n++] = '}';
    names.p[names.n] = '\0';
    if ((rc = exec_cmd(c, "BEGIN", "upsert indicators", err)) != AN_OK)
        goto out;
    for (size_t off = 0; off < b->n && rc == AN_OK; off += INSERT_BATCH) {
        size_t m = b->n - off < INSERT_BATCH ? b->n - off : INSERT_BATCH;
        int64_t lo = b->ts[off], hi = b->ts[off];
        for (size_t i = off; i < off + m; i++) {
            lo = b->ts[i] < lo ? b->ts[i] : lo;
            hi = b->ts[i] > hi ? b->ts[i] : hi;
        }
        for (int k = 0; k < 3; k++)
            if (binary_values(&arr[k], b, off, m, k) < 0) {
                rc = an_err_set(err, AN_ERR_NOMEM, "upsert indicators: out of memory");
                goto out;
            }
        const char *params[6] = {symbol, tf, names.p, arr[0].p, arr[1].p, arr[2].p};
        static const Oid types[6] = {
            0, 0, 0, OID_TIMESTAMPTZ_ARRAY, OID_INT4_ARRAY, OID_FLOAT8_ARRAY};
        int lengths[6] = {0, 0, 0, (int)arr[0].n, (int)arr[1].n, (int)arr[2].n};
        int formats[6] = {0, 0, 0, 1, 1, 1};
        char first[40], last[40], *empty = NULL;
        const char *rparams[4] = {symbol, tf, an_time_format(lo, first, sizeof first),
                                  an_time_format(hi, last, sizeof last)};
        rc = query_value(c, IND_RANGE_EMPTY_SQL, 4, rparams, &empty, "upsert indicators", err);
        int fast = rc == AN_OK && empty && empty[0] == 't';
        free(empty);
        if (rc != AN_OK)
            goto out;
        if (fast) {
            if ((rc = exec_cmd(c, "SAVEPOINT ind", "upsert indicators", err)) != AN_OK)
                goto out;
            PGresult *r = PQexecParams(c, IND_INSERT_SQL, 6, types, params, lengths, formats, 0);
            if (PQresultStatus(r) == PGRES_COMMAND_OK) {
                PQclear(r);
                counts->inserted += (int64_t)m;
                rc = exec_cmd(c, "RELEASE SAVEPOINT ind", "upsert indicators", err);
                continue;
            }
            const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            if (!state || strcmp(state, "23505") != 0) {
                rc = res_error(r, c, "upsert indicators", err);
                PQclear(r);
                goto out;
            }
            PQclear(r);
            if ((rc = exec_cmd(c, "ROLLBACK TO SAVEPOINT ind", "upsert indicators", err)) != AN_OK)
                goto out;
        }
        PGresult *r = PQexecParams(c, IND_UPSERT_SQL, 6, types, params, lengths, formats, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            rc = res_error(r, c, "upsert indicators", err);
            PQclear(r);
            goto out;
        }
        int64_t ins = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        int64_t upd = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
        counts->inserted += ins;
        counts->updated += upd;
        counts->unchanged += (int64_t)m - ins - upd;
    }
    if (rc == AN_OK)
        rc = exec_cmd(c, "COMMIT", "upsert indicators", err);
out:
    if (rc != AN_OK)
        memset(counts, 0, sizeof *counts);
    for (int k = 0; k < 3; k++)
        free(arr[k].p);
    free(names.p);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_get_indicators(an_store *s, const char *symbol, const char *tf, const char *name,
                                 const an_query *q, an_indicator_points *out, an_err *err)
{
    pg_store *ps = s->impl;
    char sql[768];
    const char *params[6] = {symbol, tf};
    int np = 2;
    int pos = snprintf(sql, sizeof sql,
                       "SELECT (extract(epoch FROM \"timestamp\") * 1000)::int8, indicator_name,"
                       " indicator_value FROM analytics.indicators WHERE symbol = $1 AND"
                       " timeframe = $2 AND indicator_value IS NOT NULL");
    if (name) {
        params[np++] = name;
        pos += snprintf(sql + pos, sizeof sql - (size_t)pos, " AND indicator_name = $%d", np);
    }
    range_params bufs;
    append_range(sql, sizeof sql, pos, q, "indicator_name, ", params, &np, &bufs);
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    PGresult *r = PQexecParams(c, sql, np, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = res_error(r, c, "get indicators", err);
        goto out;
    }
    int rows = PQntuples(r);
    for (int i = 0; i < rows; i++) {
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 1024;
            an_indicator_point *v = realloc(out->v, cap * sizeof *v);
            if (!v) {
                rc = an_err_set(err, AN_ERR_NOMEM, "get indicators: out of memory");
                goto out;
            }
            out->v = v;
            out->cap = cap;
        }
        an_indicator_point *pt = &out->v[out->n++];
        pt->ts = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        snprintf(pt->name, sizeof pt->name, "%s", PQgetvalue(r, i, 1));
        pt->value = strtod(PQgetvalue(r, i, 2), NULL);
    }
out:
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_get_run(an_store *s, const char *symbol, const char *tf, an_indicator_run *run,
                          int *found, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    const char *params[2] = {symbol, tf};
    PGresult *r = PQexecParams(c,
                               "SELECT spec, (extract(epoch FROM through_ts) * 1000)::int8,"
                               " candles, digest FROM analytics.indicator_runs WHERE symbol = $1"
                               " AND timeframe = $2",
                               2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = res_error(r, c, "read indicator run", err);
    } else if (PQntuples(r) == 1) {
        snprintf(run->spec, sizeof run->spec, "%s", PQgetvalue(r, 0, 0));
        run->through_ms = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        run->candles = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        run->digest = strtoull(PQgetvalue(r, 0, 3), NULL, 10);
        *found = 1;
    }
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_put_run(an_store *s, const char *symbol, const char *tf,
                          const an_indicator_run *run, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    char through[24], candles[24], digest[24];
    snprintf(through, sizeof through, "%" PRId64, run->through_ms);
    snprintf(candles, sizeof candles, "%" PRId64, run->candles);
    snprintf(digest, sizeof digest, "%" PRIu64, run->digest);
    const char *params[6] = {symbol, tf, run->spec, through, candles, digest};
    PGresult *r = PQexecParams(
        c,
        "INSERT INTO analytics.indicator_runs (symbol, timeframe, spec, through_ts, candles,"
        " digest, updated_at) VALUES ($1, $2, $3, TIMESTAMPTZ 'epoch' + $4::int8 * INTERVAL"
        " '1 millisecond', $5, $6, now()) ON CONFLICT (symbol, timeframe) DO UPDATE SET spec ="
        " excluded.spec, through_ts = excluded.through_ts, candles = excluded.candles, digest ="
        " excluded.digest, updated_at = excluded.updated_at",
        6, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = res_error(r, c, "save indicator run", err);
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const unsigned char *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

/* COPY (SELECT "timestamp", close ...) TO STDOUT (FORMAT binary), parsed as
 * it streams: an 11-byte signature, flags and extension header, then per row
 * an int16 field count and per field an int32 length and the bytes. */
static an_code pg_export_closes(an_store *s, const char *source, const char *symbol, const char *tf,
                                an_closes_cb cb, void *ctx, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    enum { BATCH = 8192 };
    int64_t *ts = malloc(BATCH * sizeof *ts);
    double *close = malloc(BATCH * sizeof *close);
    size_t n = 0, hdr_done = 0;
    char *sym = PQescapeLiteral(c, symbol, strlen(symbol));
    char *tfl = tf ? PQescapeLiteral(c, tf, strlen(tf)) : NULL;
    char sql[512];
    if (!ts || !close || !sym || (tf && !tfl)) {
        rc = an_err_set(err, AN_ERR_NOMEM, "export series: out of memory");
        goto out;
    }
    snprintf(sql, sizeof sql,
             "COPY (SELECT \"timestamp\", close::float8 FROM trading.%s WHERE symbol = %s%s%s"
             " ORDER BY \"timestamp\") TO STDOUT (FORMAT binary)",
             source, sym, tfl ? " AND timeframe = " : "", tfl ? tfl : "");
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_OUT) {
        rc = res_error(r, c, "export series", err);
        PQclear(r);
        goto out;
    }
    PQclear(r);
    for (;;) {
        char *buf = NULL;
        int len = PQgetCopyData(c, &buf, 0);
        if (len == -1)
            break; /* done */
        if (len < 0) {
            rc = an_err_set(err, AN_ERR_DB, "export series: %s", PQerrorMessage(c));
            goto drain;
        }
        const unsigned char *p = (const unsigned char *)buf, *end = p + len;
        if (!hdr_done) {
            if (len < 19 || memcmp(p, "PGCOPY\n\377\r\n\0", 11) != 0) {
                PQfreemem(buf);
                rc = an_err_set(err, AN_ERR_DB, "export series: not a binary COPY stream");
                goto drain;
            }
            uint32_t ext = get_be32(p + 15);
            p += 19 + ext;
            hdr_done = 1;
        }
        while (p + 2 <= end && rc == AN_OK) {
            int16_t fields = (int16_t)((p[0] << 8) | p[1]);
            p += 2;
            if (fields == -1)
                break;
            if (fields != 2 || p + 4 + 8 + 4 + 8 > end || get_be32(p) != 8 ||
                get_be32(p + 12) != 8) {
                rc = an_err_set(err, AN_ERR_DB, "export series: unexpected row layout");
                break;
            }
            ts[n] = ((int64_t)get_be64(p + 4) + PG_EPOCH_US) / 1000;
            uint64_t bits = get_be64(p + 16);
            memcpy(&close[n], &bits, sizeof bits);
            p += 24;
            if (++n == BATCH) {
                rc = cb(ctx, ts, close, n, err);
                n = 0;
            }
        }
        PQfreemem(buf);
        if (rc != AN_OK)
            goto drain;
    }
    if (n > 0)
        rc = cb(ctx, ts, close, n, err);
drain:
    /* finish the COPY whatever happened, so the connection is usable */
    while (rc != AN_OK) {
        char *buf = NULL;
        int len = PQgetCopyData(c, &buf, 0);
        if (buf)
            PQfreemem(buf);
        if (len < 0)
            break;
    }
    for (PGresult *res; (res = PQgetResult(c));) {
        if (rc == AN_OK && PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = res_error(res, c, "export series", err);
        PQclear(res);
    }
out:
    PQfreemem(sym);
    PQfreemem(tfl);
    free(ts);
    free(close);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static void pg_release_idle(an_store *s)
{
    pg_store *ps = s->impl;
    pthread_mutex_lock(&ps->pool.lock);
    for (int i = 0; i < ps->pool.size; i++) {
        if (!ps->pool.busy[i] && ps->pool.conns[i]) {
            PQfinish(ps->pool.conns[i]);
            ps->pool.conns[i] = NULL;
        }
    }
    pthread_mutex_unlock(&ps->pool.lock);
}

static const char *pg_conninfo(const an_store *s)
{
    const pg_store *ps = s->impl;
    return ps->pool.conninfo;
}

static void pg_close(an_store *s)
{
    pg_store *ps = s->impl;
    if (!ps)
        return;
    pool_destroy(&ps->pool);
    PQfinish(ps->lock_conn);
    pthread_mutex_destroy(&ps->lock_mu);
    free(ps->compress_after);
    free(ps->retention);
    free(ps);
    s->impl = NULL;
}

/* ---- task runs, locks, moving data (schema v3) -------------------------- */

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

static char *dup_or_null(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static void task_from_result(PGresult *r, int i, an_task_row *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", PQgetvalue(r, i, 0));
    snprintf(t->name, sizeof t->name, "%s", PQgetvalue(r, i, 1));
    t->args = dup_or_null(r, i, 2);
    snprintf(t->state, sizeof t->state, "%s", PQgetvalue(r, i, 3));
    snprintf(t->approach, sizeof t->approach, "%s", PQgetvalue(r, i, 4));
    t->meta = dup_or_null(r, i, 5);
    t->result = dup_or_null(r, i, 6);
    snprintf(t->error, sizeof t->error, "%s", PQgetvalue(r, i, 7));
    snprintf(t->instance, sizeof t->instance, "%s", PQgetvalue(r, i, 8));
    snprintf(t->symbol, sizeof t->symbol, "%s", PQgetvalue(r, i, 9));
    snprintf(t->slot, sizeof t->slot, "%s", PQgetvalue(r, i, 10));
    int64_t *ms[4] = {&t->created_ms, &t->started_ms, &t->finished_ms, &t->heartbeat_ms};
    for (int k = 0; k < 4; k++)
        *ms[k] = PQgetisnull(r, i, 11 + k) ? 0 : strtoll(PQgetvalue(r, i, 11 + k), NULL, 10);
}

/* Runs a statement with text parameters; *affected (may be NULL) gets the
 * rows it changed. */
static an_code pg_exec_params(an_store *s, const char *sql, int n, const char *const *params,
                              int *affected, const char *what, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = res_error(r, c, what, err);
    else if (affected)
        *affected = atoi(PQcmdTuples(r));
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_task_claim(an_store *s, const an_task_row *r, int *inserted, an_err *err)
{
    const char *p[15];
    char ms[4][24];
    char sql[1024];
    task_params(r, p, ms);
    snprintf(sql, sizeof sql, "%s ON CONFLICT DO NOTHING", TASK_INSERT);
    *inserted = 0;
    return pg_exec_params(s, sql, 15, p, inserted, "claim task run", err);
}

static an_code pg_task_put(an_store *s, const an_task_row *r, an_err *err)
{
    const char *p[15];
    char ms[4][24];
    char sql[1536];
    task_params(r, p, ms);
    snprintf(sql, sizeof sql,
             "%s ON CONFLICT (id) DO UPDATE SET name = excluded.name, args = excluded.args,"
             " state = excluded.state, approach = excluded.approach, meta = excluded.meta,"
             " result = excluded.result, error = excluded.error, instance = excluded.instance,"
             " symbol = excluded.symbol, slot = excluded.slot, created_at = excluded.created_at,"
             " started_at = excluded.started_at, finished_at = excluded.finished_at,"
             " heartbeat_at = excluded.heartbeat_at",
             TASK_INSERT);
    return pg_exec_params(s, sql, 15, p, NULL, "save task run", err);
}

static an_code pg_task_heartbeat(an_store *s, const char *id, int64_t now_ms, an_err *err)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%" PRId64, now_ms);
    const char *p[2] = {id, ms};
    return pg_exec_params(s,
                          "UPDATE autonama.task_runs SET heartbeat_at = " TS_PARAM(
                              2) " WHERE id = $1 AND state IN ('PENDING', 'PROGRESS')",
                          2, p, NULL, "task heartbeat", err);
}

static an_code task_query(an_store *s, const char *sql, int n, const char *const *params,
                          an_task_row **out, size_t *nout, const char *what, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = res_error(r, c, what, err);
    } else if (PQntuples(r) > 0) {
        *out = calloc((size_t)PQntuples(r), sizeof **out);
        if (!*out) {
            rc = an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", what);
        } else {
            for (int i = 0; i < PQntuples(r); i++)
                task_from_result(r, i, &(*out)[i]);
            *nout = (size_t)PQntuples(r);
        }
    }
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_task_get(an_store *s, const char *id, an_task_row *row, int *found, an_err *err)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s FROM autonama.task_runs WHERE id = $1", TASK_COLS);
    const char *p[1] = {id};
    an_task_row *rows = NULL;
    size_t n = 0;
    an_code rc = task_query(s, sql, 1, p, &rows, &n, "read task run", err);
    if (rc == AN_OK && n == 1) {
        *row = rows[0];
        *found = 1;
    }
    free(rows);
    return rc;
}

static an_code pg_task_list(an_store *s, const char *name, size_t limit, an_task_row **out,
                            size_t *n, an_err *err)
{
    char sql[1024], lim[24];
    snprintf(lim, sizeof lim, "%zu", limit);
    snprintf(sql, sizeof sql,
             "SELECT %s FROM autonama.task_runs WHERE ($1::text IS NULL OR name = $1)"
             " ORDER BY created_at DESC, id DESC LIMIT $2::int8",
             TASK_COLS);
    const char *p[2] = {name, lim};
    return task_query(s, sql, 2, p, out, n, "list task runs", err);
}

static an_code pg_task_interrupt(an_store *s, const char *instance, int64_t stale_before_ms,
                                 int64_t now_ms, int *n, an_err *err)
{
    char a[24], b[24];
    snprintf(a, sizeof a, "%" PRId64, stale_before_ms);
    snprintf(b, sizeof b, "%" PRId64, now_ms);
    const char *p[3] = {instance, a, b};
    *n = 0;
    return pg_exec_params(
        s,
        "UPDATE autonama.task_runs SET state = 'INTERRUPTED', finished_at = " TS_PARAM(
            3) ", error = coalesce(error, 'interrupted: its instance stopped (no heartbeat)')"
               " WHERE state IN ('PENDING', 'PROGRESS') AND (instance = $1 OR"
               " coalesce(heartbeat_at, created_at) < " TS_PARAM(2) ")",
        3, p, n, "interrupt stale task runs", err);
}

static an_code pg_task_delete(an_store *s, const char *id, an_err *err)
{
    const char *p[1] = {id};
    return pg_exec_params(s, "DELETE FROM autonama.task_runs WHERE id = $1", 1, p, NULL,
                          "delete task run", err);
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
    an_code rc = AN_OK;
    pthread_mutex_lock(&ps->lock_mu);
    if (ps->lock_conn && PQstatus(ps->lock_conn) != CONNECTION_OK) {
        PQfinish(ps->lock_conn); /* its locks died with it */
        ps->lock_conn = NULL;
    }
    if (!ps->lock_conn && !(ps->lock_conn = pool_connect(&ps->pool, err))) {
        rc = err ? err->code : AN_ERR_CONNECT;
        goto out;
    }
    PGresult *r = PQexecParams(ps->lock_conn, sql, 1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = res_error(r, ps->lock_conn, "advisory lock", err);
    else
        *got = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
out:
    pthread_mutex_unlock(&ps->lock_mu);
    return rc;
}

static an_code pg_try_lock(an_store *s, int64_t key, int *got, an_err *err)
{
    *got = 0;
    return lock_call(s, "SELECT pg_try_advisory_lock($1::int8)", key, got, err);
}

static an_code pg_unlock(an_store *s, int64_t key, an_err *err)
{
    int released = 0;
    return lock_call(s, "SELECT pg_advisory_unlock($1::int8)", key, &released, err);
}

static an_code pg_list_indicator_series(an_store *s, an_series_info **out, size_t *n, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    PGresult *r = PQexec(c, "SELECT symbol, timeframe, " TS_COL("min(\"timestamp\")") ", " TS_COL(
                                "max(\"timestamp\")") ", count(*) FROM analytics.indicators"
                                                      " GROUP BY symbol, timeframe"
                                                      " ORDER BY symbol, timeframe");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = res_error(r, c, "list indicator series", err);
    } else if (PQntuples(r) > 0) {
        if (!(*out = calloc((size_t)PQntuples(r), sizeof **out))) {
            rc = an_err_set(err, AN_ERR_NOMEM, "list indicator series: out of memory");
        } else {
            for (int i = 0; i < PQntuples(r); i++) {
                an_series_info *si = &(*out)[i];
                snprintf(si->symbol, sizeof si->symbol, "%s", PQgetvalue(r, i, 0));
                snprintf(si->timeframe, sizeof si->timeframe, "%s", PQgetvalue(r, i, 1));
                si->first_ms = strtoll(PQgetvalue(r, i, 2), NULL, 10);
                si->last_ms = strtoll(PQgetvalue(r, i, 3), NULL, 10);
                si->rows = strtoll(PQgetvalue(r, i, 4), NULL, 10);
            }
            *n = (size_t)PQntuples(r);
        }
    }
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_delete_range(an_store *s, const char *table, const char *symbol, const char *tf,
                               int64_t from_ms, int64_t to_ms, an_err *err)
{
    char a[24], b[24], sql[256];
    snprintf(a, sizeof a, "%" PRId64, from_ms);
    snprintf(b, sizeof b, "%" PRId64, to_ms);
    snprintf(
        sql, sizeof sql,
        "DELETE FROM %s WHERE symbol = $1 AND timeframe = $2 AND \"timestamp\" BETWEEN " TS_PARAM(
            3) " AND " TS_PARAM(4),
        strcmp(table, "indicators") == 0 ? "analytics.indicators" : "trading.ohlc_data");
    const char *p[4] = {symbol, tf, a, b};
    return pg_exec_params(s, sql, 4, p, NULL, "delete rows", err);
}

/* Optimizer results (schema v4): the rows travel as one jsonb parameter. */
static an_code pg_put_opt_results(an_store *s, const char *rows_json, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    const char *params[1] = {rows_json};
    PGresult *r = PQexecParams(
        c,
        "INSERT INTO optimization.results (run_id, symbol, strategy, timeframe, parameters,"
        " metrics, period_start, period_end, sample) SELECT r.run_id, r.symbol, r.strategy,"
        " r.timeframe, r.parameters, r.metrics,"
        " TIMESTAMPTZ 'epoch' + r.period_start * INTERVAL '1 millisecond',"
        " TIMESTAMPTZ 'epoch' + r.period_end * INTERVAL '1 millisecond', r.sample"
        " FROM jsonb_to_recordset($1::jsonb) AS r(run_id text, symbol text, strategy text,"
        " timeframe text, parameters jsonb, metrics jsonb, period_start int8, period_end int8,"
        " sample text)",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        rc = res_error(r, c, "save optimizer results", err);
    PQclear(r);
    pool_release(&ps->pool, c, slot);
    return rc;
}

#define PG_MS(col) "(extract(epoch FROM " col ") * 1000)::int8"

static an_code pg_opt_runs(an_store *s, long limit, char **json, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[1] = {lim};
    rc = query_value(
        c,
        "SELECT coalesce(json_agg(r ORDER BY r.created_ms DESC), '[]'::json)::text FROM ("
        " SELECT g.*, (SELECT json_build_object('symbol', b.symbol, 'sample', b.sample,"
        " 'parameters', b.parameters, 'metrics', b.metrics) FROM optimization.results b"
        " WHERE b.run_id = g.run_id AND b.sample <> 'out'"
        " ORDER BY (b.metrics->>'sharpe')::float8 DESC NULLS LAST, b.id LIMIT 1) AS best"
        " FROM (SELECT run_id, min(strategy) AS strategy, min(timeframe) AS timeframe,"
        " array_agg(DISTINCT symbol ORDER BY symbol) AS symbols,"
        " array_agg(DISTINCT sample ORDER BY sample) AS samples, count(*) AS rows,"
        " " PG_MS(
            "min(period_start)") " AS period_start,"
                                 " " PG_MS(
                                     "max(period_end)") " AS period_end,"
                                                        " to_char(min(created_at) AT TIME ZONE "
                                                        "'UTC', "
                                                        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                                                        " AS created_at, " PG_MS(
                                                            "min(created_at)") " AS created_ms"
                                                                               " FROM "
                                                                               "optimization."
                                                                               "results WHERE "
                                                                               "run_id IS NOT NULL "
                                                                               "GROUP BY run_id"
                                                                               " ORDER BY "
                                                                               "min(created_at) "
                                                                               "DESC LIMIT "
                                                                               "$1::int8) g) r",
        1, params, json, "read optimizer runs", err);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static an_code pg_opt_results(an_store *s, const char *run_id, const char *symbol, const char *sort,
                              int ascending, long limit, char **json, an_err *err)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    an_code rc = pool_acquire(&ps->pool, &c, &slot, err);
    if (rc != AN_OK)
        return rc;
    char lim[24], sql[2048];
    snprintf(lim, sizeof lim, "%ld", limit);
    snprintf(
        sql, sizeof sql,
        "SELECT coalesce(json_agg(t), '[]'::json)::text FROM (SELECT id, run_id, symbol,"
        " strategy, timeframe, parameters, metrics, " PG_MS(
            "period_start") " AS period_start,"
                            " " PG_MS("period_end") " AS period_end, sample, to_char(created_at AT "
                                                    "TIME ZONE"
                                                    " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
                                                    "AS created_at"
                                                    " FROM optimization.results WHERE ($1 = '' OR "
                                                    "run_id = $1) AND ($2 = '' OR"
                                                    " symbol = $2) ORDER BY "
                                                    "(metrics->>'%s')::float8 %s NULLS LAST, id"
                                                    " LIMIT $3::int8) t",
        sort, ascending ? "ASC" : "DESC");
    const char *params[3] = {run_id, symbol, lim};
    rc = query_value(c, sql, 3, params, json, "read optimizer results", err);
    pool_release(&ps->pool, c, slot);
    return rc;
}

static const an_store_ops PG_OPS = {
    .migrate = pg_migrate,
    .check_schema = pg_check_schema,
    .ping = pg_ping,
    .insert_ohlc = pg_insert_ohlc,
    .get_ohlc = pg_get_ohlc,
    .get_bucketed = pg_get_bucketed,
    .latest = pg_latest,
    .refresh_rollups = pg_refresh_rollups,
    .list_series = pg_list_series,
    .upsert_indicators = pg_upsert_indicators,
    .get_indicators = pg_get_indicators,
    .get_run = pg_get_run,
    .put_run = pg_put_run,
    .export_closes = pg_export_closes,
    .pg_conninfo = pg_conninfo,
    .release_idle = pg_release_idle,
    .close = pg_close,
    .task_claim = pg_task_claim,
    .task_put = pg_task_put,
    .task_heartbeat = pg_task_heartbeat,
    .task_get = pg_task_get,
    .task_list = pg_task_list,
    .task_interrupt = pg_task_interrupt,
    .task_delete = pg_task_delete,
    .try_lock = pg_try_lock,
    .unlock = pg_unlock,
    .list_indicator_series = pg_list_indicator_series,
    .delete_range = pg_delete_range,
    .put_opt_results = pg_put_opt_results,
    .opt_runs = pg_opt_runs,
    .opt_results = pg_opt_results,
};

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

an_code an_pg_store_open(const an_store_options *opt, an_store *s, an_err *err)
{
    pg_store *ps = calloc(1, sizeof *ps);
    if (!ps)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&ps->pool.lock, NULL);
    pthread_cond_init(&ps->pool.cond, NULL);
    pthread_mutex_init(&ps->lock_mu, NULL);
    ps->pool.acquire_timeout_s = 60;
    char where[200];
    describe_conninfo(opt->pg_conninfo, where, sizeof where);
    char *perr = NULL;
    PQconninfoOption *parsed = PQconninfoParse(opt->pg_conninfo, &perr);
    if (!parsed) {
        an_err_set(err, AN_ERR_INVALID, "invalid PostgreSQL connection settings: %s",
                   perr ? perr : "unparseable");
        PQfreemem(perr);
        goto fail;
    }
    PQconninfoFree(parsed);
    int timeout = opt->connect_timeout_s > 0 ? opt->connect_timeout_s : 10;
    size_t len = strlen(opt->pg_conninfo) + 200;
    ps->pool.conninfo = malloc(len);
    if (!ps->pool.conninfo) {
        an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    /* later keywords win in libpq: ours come last */
    snprintf(ps->pool.conninfo, len,
             "%s connect_timeout=%d application_name=autonama keepalives=1 "
             "keepalives_idle=30 options='-c client_min_messages=warning'",
             opt->pg_conninfo, timeout);
    PGconn *c = pool_connect(&ps->pool, err);
    if (!c) {
        an_err_prefix(err, "PostgreSQL at %s", where);
        goto fail;
    }
    describe(c, s->describe, sizeof s->describe);
    char *ver = NULL;
    an_code rc = query_value(c, "SELECT version()", 0, NULL, &ver, "version", err);
    if (rc != AN_OK) {
        PQfinish(c);
        goto fail;
    }
    ps->is_pglite = ver && strstr(ver, "Emscripten") != NULL;
    free(ver);
    int size = opt->pool_size > 0 ? opt->pool_size : 4;
    if (size > POOL_MAX)
        size = POOL_MAX;
    if (ps->is_pglite)
        size = 1;
    ps->pool.size = size;
    ps->pool.conns[0] = c;
    if ((rc = detect(ps, c, s, err)) != AN_OK)
        goto fail;
    if (opt->mode && strcmp(opt->mode, "postgres") == 0 && s->mode == AN_STORE_TIMESCALEDB) {
        /* plain mode asked for: honoured unless the schema already is hypertables */
        int have = query_bool(c, "SELECT to_regclass('trading.ohlc_data') IS NOT NULL", &rc, err);
        if (rc != AN_OK)
            goto fail;
        if (!have)
            s->mode = AN_STORE_POSTGRES;
    }
    ps->compress_after = strdup(opt->compress_after ? opt->compress_after : "");
    ps->retention = strdup(opt->retention ? opt->retention : "");
    if (!ps->compress_after || !ps->retention) {
        an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    s->ops = &PG_OPS;
    s->impl = ps;
    AN_INFO(COMPONENT, "msg=\"connected\" server=%s mode=%s pool=%d%s", s->describe,
            an_store_mode_name(s->mode), size, ps->is_pglite ? " pglite=true" : "");
    return AN_OK;
fail:
    if (err && err->code == AN_OK)
        an_err_set(err, AN_ERR_CONNECT, "cannot open PostgreSQL at %s", where);
    pool_destroy(&ps->pool);
    pthread_mutex_destroy(&ps->lock_mu);
    free(ps->compress_after);
    free(ps->retention);
    free(ps);
    return err ? err->code : AN_ERR_CONNECT;
}
