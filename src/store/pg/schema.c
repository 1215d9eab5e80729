/*
 * schema.c - the PostgreSQL backend's schema: which mode a database is in
 * (timescaledb or postgres), the versioned migrations (the same tables as
 * the DuckDB backend; hypertables, continuous aggregates and policies on
 * TimescaleDB, materialized views on plain PostgreSQL), the schema check
 * and the ping. Any thread; each op borrows one pooled connection.
 */
#include "store/pg/pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

/* ---- mode detection ----------------------------------------------------- */

an_code an_pg_detect(pg_store *ps, PGconn *c, an_store *s, an_err *err)
{
    an_code rc;
    ps->ts_installed = an_pg_query_bool(
        c, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')", &rc, err);
    if (rc != AN_OK)
        return rc;
    ps->ts_available = an_pg_query_bool(
        c, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')", &rc,
        err);
    if (rc != AN_OK)
        return rc;
    int hyper = 0, have_table = 0;
    if (ps->ts_installed) {
        hyper = an_pg_query_bool(c,
                                 "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
                                 "WHERE hypertable_schema = 'trading' AND hypertable_name = "
                                 "'ohlc_data')",
                                 &rc, err);
        if (rc != AN_OK)
            return rc;
    }
    have_table =
        an_pg_query_bool(c, "SELECT to_regclass('trading.ohlc_data') IS NOT NULL", &rc, err);
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

/* Version 5: each optimizer run's spec (grid, fees, slippage) (issue 13). */
static const char *MIGRATION_5[] = {
    "CREATE TABLE optimization.runs ("
    " run_id text PRIMARY KEY, strategy text NOT NULL, timeframe text NOT NULL,"
    " grid text NOT NULL, fees float8 NOT NULL, slippage float8 NOT NULL, spec jsonb,"
    " created_at timestamptz DEFAULT now())",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (5, 'optimization.runs: grid, fees, slippage')",
    NULL,
};

/* Version 6 (issue 12): the series catalog, one row per (symbol, timeframe)
 * of trading.ohlc_data with its first and last candle time and row count,
 * kept current by every write and delete in their own transaction (an
 * upsert of what the write added, candles.c), so listing the series reads
 * as many rows as there are series, never the candle table. Filled here
 * from what is stored. */
#define CATALOG_V6                                                                                 \
    "CREATE TABLE trading.ohlc_series ("                                                           \
    " symbol text COLLATE \"C\" NOT NULL, timeframe text COLLATE \"C\" NOT NULL,"                  \
    " first_ts timestamptz NOT NULL, last_ts timestamptz NOT NULL, row_count bigint NOT NULL,"     \
    " PRIMARY KEY (symbol, timeframe))",                                                           \
        "INSERT INTO trading.ohlc_series (symbol, timeframe, first_ts, last_ts, row_count)"        \
        " SELECT symbol, timeframe, min(\"timestamp\"), max(\"timestamp\"), count(*)"              \
        " FROM trading.ohlc_data GROUP BY symbol, timeframe"

static const char *MIGRATION_6_TIMESCALE[] = {
    CATALOG_V6,
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (6, 'trading.ohlc_series: the series catalog')",
    NULL,
};

/* Plain PostgreSQL's rollups become tables, recomputed by each write over
 * the hours and days it touched (candles.c) instead of materialized views
 * refreshed over the whole table after every import or ingest. */
#define ROLLUP_TABLE(name)                                                                         \
    "CREATE TABLE trading." name " (symbol text COLLATE \"C\" NOT NULL,"                           \
    " \"timestamp\" timestamptz NOT NULL, open double precision NOT NULL,"                         \
    " high double precision NOT NULL, low double precision NOT NULL,"                              \
    " close double precision NOT NULL, volume double precision NOT NULL,"                          \
    " candle_count bigint NOT NULL, PRIMARY KEY (symbol, \"timestamp\"))"

static const char *MIGRATION_6_POSTGRES[] = {
    CATALOG_V6,
    "DROP MATERIALIZED VIEW trading.ohlc_1h",
    "DROP MATERIALIZED VIEW trading.ohlc_1d",
    ROLLUP_TABLE("ohlc_1h"),
    ROLLUP_TABLE("ohlc_1d"),
    "INSERT INTO trading.ohlc_1h " ROLLUP_PG("1 hour"),
    "INSERT INTO trading.ohlc_1d " ROLLUP_PG("1 day"),
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (6, 'trading.ohlc_series; the 1h/1d rollups as tables')",
    NULL,
};

/* Version 7: a raw TRUNCATE of trading.ohlc_data (by hand, by a script)
 * empties what the writes keep beside it too, the series catalog and (plain
 * PostgreSQL) the rollup tables, which would otherwise go on describing the
 * candles gone; and it tells every listener that anything may have changed
 * (store.h's "*"). DELETE, not TRUNCATE: a statement truncating the catalog
 * with the candles ("TRUNCATE trading.ohlc_data, trading.ohlc_series") must
 * still work, and TRUNCATE refuses a table the statement already holds. */
#define TRUNCATE_FN(rollups)                                                                       \
    "CREATE OR REPLACE FUNCTION trading.ohlc_data_truncated() RETURNS trigger"                     \
    " LANGUAGE plpgsql AS $$ BEGIN DELETE FROM trading.ohlc_series; " rollups                      \
    " PERFORM pg_notify('" AN_STORE_NOTIFY_CHANNEL "', '*'); RETURN NULL; END $$"
#define TRUNCATE_TRIGGER                                                                           \
    "CREATE TRIGGER ohlc_data_truncate AFTER TRUNCATE ON trading.ohlc_data"                        \
    " FOR EACH STATEMENT EXECUTE FUNCTION trading.ohlc_data_truncated()",                          \
        "INSERT INTO autonama.schema_version (version, description)"                               \
        " VALUES (7, 'trading.ohlc_data: a TRUNCATE empties the catalog (and rollups) too')"

static const char *MIGRATION_7_TIMESCALE[] = {TRUNCATE_FN(""), TRUNCATE_TRIGGER, NULL};

static const char *MIGRATION_7_POSTGRES[] = {
    TRUNCATE_FN("DELETE FROM trading.ohlc_1h; DELETE FROM trading.ohlc_1d;"), TRUNCATE_TRIGGER,
    NULL};

static an_code run_list(PGconn *c, const char *const *list, an_err *err)
{
    for (int i = 0; list[i]; i++) {
        an_code rc = an_pg_exec_cmd(c, list[i], "migrate", err);
        if (rc != AN_OK)
            return rc;
    }
    return AN_OK;
}

static an_code stored_version(PGconn *c, int *version, an_err *err)
{
    an_code rc;
    *version = 0;
    int have =
        an_pg_query_bool(c, "SELECT to_regclass('autonama.schema_version') IS NOT NULL", &rc, err);
    if (rc != AN_OK || !have)
        return rc;
    char *v = NULL;
    rc = an_pg_query_value(c, "SELECT max(version) FROM autonama.schema_version", 0, NULL, &v,
                           "read schema version", err);
    if (rc == AN_OK && v)
        *version = atoi(v);
    free(v);
    return rc;
}

/* Removes a policy, then adds it again when value (an interval) is set. */
static an_code set_policy(PGconn *c, const char *remove_sql, const char *add_sql, const char *value,
                          const char *what, an_err *err)
{
    an_code rc = an_pg_exec_cmd(c, remove_sql, what, err);
    if (rc != AN_OK || !value || !*value)
        return rc;
    const char *params[1] = {value};
    PGresult *r = PQexecParams(c, add_sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = an_pg_res_error(r, c, what, err);
    PQclear(r);
    return rc;
}

/* Compression and retention policies follow the configuration on every
 * migrate (they are settings, not schema): remove, then add when enabled. */
static an_code apply_policies(pg_store *ps, PGconn *c, an_err *err)
{
    an_code rc = set_policy(c,
                            "SELECT remove_compression_policy('trading.ohlc_data', if_exists =>"
                            " true)",
                            "SELECT add_compression_policy('trading.ohlc_data',"
                            " compress_after => $1::interval)",
                            ps->compress_after, "migrate: compression policy", err);
    if (rc != AN_OK)
        return rc;
    return set_policy(c, "SELECT remove_retention_policy('trading.ohlc_data', if_exists => true)",
                      "SELECT add_retention_policy('trading.ohlc_data',"
                      " drop_after => $1::interval)",
                      ps->retention, "migrate: retention policy", err);
}

typedef struct migrate_job {
    an_store *s;
    int *applied;
} migrate_job;

/* Runs one migration's statements in a transaction (PGlite: each on its
 * own: it cannot run TimescaleDB's DDL in one transaction block with cagg
 * creation. A failure leaves no schema_version row, so migrate can be rerun). */
static an_code run_step(pg_store *ps, PGconn *c, const char *const *list, an_err *err)
{
    an_code rc = AN_OK;
    if (!ps->is_pglite && (rc = an_pg_exec_cmd(c, "BEGIN", "migrate", err)) != AN_OK)
        return rc;
    rc = run_list(c, list, err);
    if (rc == AN_OK && !ps->is_pglite)
        rc = an_pg_exec_cmd(c, "COMMIT", "migrate", err);
    return rc;
}

/* Version 1: the ledger, the tables, and the rollups of the store's mode
 * (the mode falls back to postgres when the extension cannot be created). */
static an_code migrate_v1(an_store *s, PGconn *c, an_err *err)
{
    pg_store *ps = s->impl;
    an_code rc;
    int use_ts = s->mode == AN_STORE_TIMESCALEDB;
    if (use_ts && !ps->ts_installed) {
        an_err ignored;
        if (an_pg_exec_cmd(c, "CREATE EXTENSION IF NOT EXISTS timescaledb",
                           "migrate: create extension timescaledb", &ignored) != AN_OK) {
            AN_WARN(AN_PG_COMPONENT, "msg=\"timescaledb extension unavailable, using plain "
                                     "PostgreSQL\"");
            use_ts = 0;
            s->mode = AN_STORE_POSTGRES;
        } else {
            ps->ts_installed = 1;
        }
    }
    static const char *const LEDGER[] = {
        "CREATE SCHEMA IF NOT EXISTS autonama; CREATE TABLE IF NOT EXISTS "
        "autonama.schema_version (version integer PRIMARY KEY, applied_at "
        "timestamptz NOT NULL DEFAULT now(), description text NOT NULL)",
        NULL};
    if (!ps->is_pglite && (rc = an_pg_exec_cmd(c, "BEGIN", "migrate", err)) != AN_OK)
        return rc;
    rc = run_list(c, LEDGER, err);
    if (rc == AN_OK)
        rc = run_list(c, MIGRATION_1_COMMON, err);
    if (rc == AN_OK && use_ts) {
        /* continuous aggregates cannot be created in a transaction block */
        if (!ps->is_pglite)
            rc = an_pg_exec_cmd(c, "COMMIT", "migrate", err);
        if (rc == AN_OK)
            rc = run_list(c, MIGRATION_1_TIMESCALE, err);
        if (rc == AN_OK && !ps->is_pglite)
            rc = an_pg_exec_cmd(c, "BEGIN", "migrate", err);
    } else if (rc == AN_OK) {
        rc = run_list(c, MIGRATION_1_POSTGRES, err);
    }
    if (rc == AN_OK)
        rc = an_pg_exec_cmd(c,
                            use_ts ? "INSERT INTO autonama.schema_version (version, description)"
                                     " VALUES (1, 'initial schema (timescaledb)')"
                                   : "INSERT INTO autonama.schema_version (version, description)"
                                     " VALUES (1, 'initial schema (postgres)')",
                            "migrate", err);
    if (rc == AN_OK && !ps->is_pglite)
        rc = an_pg_exec_cmd(c, "COMMIT", "migrate", err);
    return rc;
}

static an_code migrate_job_run(PGconn *c, void *ctx, an_err *err)
{
    migrate_job *j = ctx;
    an_store *s = j->s;
    pg_store *ps = s->impl;
    int version = 0;
    an_code rc = stored_version(c, &version, err);
    if (rc != AN_OK)
        return rc;
    if (version > AN_SCHEMA_VERSION)
        return an_err_set(err, AN_ERR_SCHEMA,
                          "the database's schema is version %d, newer than this autonama "
                          "(%d): upgrade autonama",
                          version, AN_SCHEMA_VERSION);
    static const char *const *const LATER[AN_SCHEMA_VERSION + 1] = {
        NULL,        NULL,        MIGRATION_2,           MIGRATION_3,
        MIGRATION_4, MIGRATION_5, MIGRATION_6_TIMESCALE, MIGRATION_7_TIMESCALE};
    for (int v = version + 1; v <= AN_SCHEMA_VERSION; v++) {
        const char *const *step = LATER[v];
        if (v == 6 && s->mode == AN_STORE_POSTGRES)
            step = MIGRATION_6_POSTGRES;
        if (v == 7 && s->mode == AN_STORE_POSTGRES)
            step = MIGRATION_7_POSTGRES;
        rc = v == 1 ? migrate_v1(s, c, err) : run_step(ps, c, step, err);
        if (rc != AN_OK)
            return rc;
        *j->applied += 1;
        AN_INFO(AN_PG_COMPONENT, "msg=\"schema migrated\" version=%d mode=%s", v,
                an_store_mode_name(s->mode));
    }
    if (s->mode == AN_STORE_TIMESCALEDB)
        rc = apply_policies(ps, c, err);
    return rc;
}

an_code an_pg_migrate(an_store *s, int *applied, an_err *err)
{
    *applied = 0;
    migrate_job j = {s, applied};
    return an_pg_with_conn(s->impl, migrate_job_run, &j, err);
}

typedef struct check_job {
    an_store *s;
    int *version;
} check_job;

static an_code check_job_run(PGconn *c, void *ctx, an_err *err)
{
    check_job *j = ctx;
    const char *where = j->s->describe;
    an_code rc = stored_version(c, j->version, err);
    if (rc == AN_OK)
        rc = an_store_version_check("database", where, *j->version, err);
    static const char *rels[] = {
        "trading.ohlc_data",    "trading.ohlc_1h",      "trading.ohlc_1d",  "trading.ohlc_series",
        "analytics.indicators", "optimization.results", "optimization.runs"};
    for (size_t i = 0; i < sizeof rels / sizeof rels[0] && rc == AN_OK; i++) {
        const char *params[1] = {rels[i]};
        char *v = NULL;
        rc = an_pg_query_value(c, "SELECT to_regclass($1) IS NOT NULL", 1, params, &v,
                               "check schema", err);
        if (rc == AN_OK && !(v && v[0] == 't'))
            rc = an_err_set(err, AN_ERR_SCHEMA, "database %s lacks %s: run `autonama migrate`",
                            where, rels[i]);
        free(v);
    }
    return rc;
}

an_code an_pg_check_schema(an_store *s, int *version, an_err *err)
{
    check_job j = {s, version};
    return an_pg_with_conn(s->impl, check_job_run, &j, err);
}

an_code an_pg_ping(an_store *s, an_err *err)
{
    return an_pg_exec(s->impl, "SELECT 1", 0, NULL, NULL, NULL, NULL, "ping", err);
}
