/*
 * schema.c - the DuckDB backend's schema: the versioned migrations (the
 * same tables and names as PostgreSQL's; the rollups are views), the schema
 * check, the ping, and the TEMP staging tables the writes use. Any thread:
 * migrations under the store's lock, the check and the ping on a read
 * connection.
 */
#include "store/duckdb/duck_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"

/* The staging tables live in the connection's temp catalog and are empty
 * between calls: each write fills one and empties it again before COMMIT,
 * and a ROLLBACK restores it to empty. Created at open. */
const char AN_DUCK_STAGE_SQL[] =
    "CREATE TEMP TABLE IF NOT EXISTS an_stage (ts TIMESTAMP, open DOUBLE, high DOUBLE, low "
    "DOUBLE, close DOUBLE, volume DOUBLE); CREATE TEMP TABLE IF NOT EXISTS an_ind_stage (ts "
    "TIMESTAMP, name VARCHAR, value DOUBLE)";

/* Bucketing a plain TIMESTAMP needs no time zone: hour and day buckets start
 * on the UTC hour and midnight. */
#define ROLLUP(width)                                                                              \
    " AS SELECT symbol, time_bucket(INTERVAL '" width "', \"timestamp\") AS \"timestamp\","        \
    " arg_min(open, \"timestamp\") AS open, max(high) AS high, min(low) AS low,"                   \
    " arg_max(close, \"timestamp\") AS close, sum(volume) AS volume,"                              \
    " count(*) AS candle_count"                                                                    \
    " FROM trading.ohlc_data WHERE timeframe = '1m'"                                               \
    " GROUP BY symbol, time_bucket(INTERVAL '" width "', \"timestamp\")"

static const char LEDGER_SQL[] =
    "CREATE SCHEMA IF NOT EXISTS autonama; CREATE TABLE IF NOT EXISTS autonama.schema_version "
    "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_timestamp, description "
    "VARCHAR)";

/* Version 1. Tables are created without IF NOT EXISTS: a same-named table
 * that no migration made is reported, not silently adopted. Each migration
 * ends by recording its version, in the same transaction. */
static const char *const MIGRATION_1[] = {
    "CREATE SCHEMA IF NOT EXISTS trading",
    "CREATE SCHEMA IF NOT EXISTS analytics",
    "CREATE SCHEMA IF NOT EXISTS optimization",
    "CREATE TABLE trading.ohlc_data ("
    " symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, \"timestamp\" TIMESTAMP NOT NULL,"
    " open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL, close DOUBLE NOT NULL,"
    " volume DOUBLE NOT NULL, PRIMARY KEY (symbol, timeframe, \"timestamp\"))",
    "CREATE TABLE analytics.indicators ("
    " symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, \"timestamp\" TIMESTAMP NOT NULL,"
    " indicator_name VARCHAR NOT NULL, indicator_value DOUBLE,"
    " PRIMARY KEY (symbol, timeframe, indicator_name, \"timestamp\"))",
    "CREATE SEQUENCE optimization.results_id_seq",
    "CREATE TABLE optimization.results ("
    " id BIGINT PRIMARY KEY DEFAULT nextval('optimization.results_id_seq'),"
    " symbol VARCHAR NOT NULL, strategy VARCHAR NOT NULL, parameters VARCHAR, metrics VARCHAR,"
    " created_at TIMESTAMP DEFAULT current_timestamp)",
    "CREATE VIEW trading.ohlc_1h" ROLLUP("1 hour"),
    "CREATE VIEW trading.ohlc_1d" ROLLUP("1 day"),
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (1, 'initial schema (duckdb)')",
    NULL,
};

/* Version 2: the ledger of indicator runs (see store.h). */
static const char *const MIGRATION_2[] = {
    "CREATE TABLE analytics.indicator_runs ("
    " symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, spec VARCHAR NOT NULL,"
    " through_ts TIMESTAMP NOT NULL, candles BIGINT NOT NULL, digest UBIGINT NOT NULL,"
    " updated_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (symbol, timeframe))",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (2, 'analytics.indicator_runs')",
    NULL,
};

/* Version 3: the task runs (see store.h). JSON columns are VARCHAR; the slot
 * claim is checked under the store's lock (one process owns the file), so
 * slot carries no UNIQUE constraint here. */
static const char *const MIGRATION_3[] = {
    "CREATE TABLE autonama.task_runs ("
    " id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, args VARCHAR, state VARCHAR NOT NULL,"
    " approach VARCHAR, meta VARCHAR, result VARCHAR, error VARCHAR, instance VARCHAR,"
    " symbol VARCHAR, slot VARCHAR, created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,"
    " started_at TIMESTAMP, finished_at TIMESTAMP, heartbeat_at TIMESTAMP)",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (3, 'autonama.task_runs')",
    NULL,
};

/* Version 4: optimizer runs in optimization.results (issue 13). */
static const char *const MIGRATION_4[] = {
    "ALTER TABLE optimization.results ADD COLUMN run_id VARCHAR",
    "ALTER TABLE optimization.results ADD COLUMN timeframe VARCHAR",
    "ALTER TABLE optimization.results ADD COLUMN period_start TIMESTAMP",
    "ALTER TABLE optimization.results ADD COLUMN period_end TIMESTAMP",
    "ALTER TABLE optimization.results ADD COLUMN sample VARCHAR",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (4, 'optimization.results: run_id, timeframe, period, sample')",
    NULL,
};

/* Version 5: each optimizer run's spec (grid, fees, slippage) (issue 13). */
static const char *const MIGRATION_5[] = {
    "CREATE TABLE optimization.runs ("
    " run_id VARCHAR PRIMARY KEY, strategy VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,"
    " grid VARCHAR NOT NULL, fees DOUBLE NOT NULL, slippage DOUBLE NOT NULL, spec VARCHAR,"
    " created_at TIMESTAMP DEFAULT current_timestamp)",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (5, 'optimization.runs: grid, fees, slippage')",
    NULL,
};

/* Version 6 (issue 12): the series catalog, one row per (symbol,
 * timeframe) of trading.ohlc_data, kept current by every write and delete
 * in their transaction (catalog.c); filled from what is stored. */
static const char *const MIGRATION_6[] = {
    "CREATE TABLE trading.ohlc_series ("
    " symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL, first_ts TIMESTAMP NOT NULL,"
    " last_ts TIMESTAMP NOT NULL, row_count BIGINT NOT NULL, PRIMARY KEY (symbol, timeframe))",
    "INSERT INTO trading.ohlc_series (symbol, timeframe, first_ts, last_ts, row_count)"
    " SELECT symbol, timeframe, min(\"timestamp\"), max(\"timestamp\"), count(*)"
    " FROM trading.ohlc_data GROUP BY symbol, timeframe",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (6, 'trading.ohlc_series: the series catalog')",
    NULL,
};

/* Version 7: on PostgreSQL a TRUNCATE trigger keeps the catalog true to a
 * raw TRUNCATE of the candles; DuckDB has no triggers, so its step rebuilds
 * the catalog from what is stored (a file whose candles were deleted by
 * hand is right again after `autonama migrate`) and keeps the versions in
 * step. */
static const char *const MIGRATION_7[] = {
    "DELETE FROM trading.ohlc_series",
    "INSERT INTO trading.ohlc_series (symbol, timeframe, first_ts, last_ts, row_count)"
    " SELECT symbol, timeframe, min(\"timestamp\"), max(\"timestamp\"), count(*)"
    " FROM trading.ohlc_data GROUP BY symbol, timeframe",
    "INSERT INTO autonama.schema_version (version, description)"
    " VALUES (7, 'trading.ohlc_series rebuilt (PostgreSQL: a TRUNCATE trigger)')",
    NULL,
};

/* MIGRATIONS[v] takes the schema from version v - 1 to v. */
static const char *const *const MIGRATIONS[AN_SCHEMA_VERSION + 1] = {
    NULL,        MIGRATION_1, MIGRATION_2, MIGRATION_3,
    MIGRATION_4, MIGRATION_5, MIGRATION_6, MIGRATION_7};

/* The ledger's version on con (0: none): the locked connection inside a
 * migration, a read connection for the check. */
static an_code stored_version(duckdb_connection con, int *version, an_err *err)
{
    int64_t v;
    int null;
    *version = 0;
    an_code rc =
        an_duck_query_int64_on(con,
                               "SELECT count(*) FROM duckdb_tables() WHERE database_name = "
                               "current_database() AND schema_name = 'autonama' AND table_name = "
                               "'schema_version'",
                               NULL, NULL, &v, &null, "read schema version", err);
    if (rc != AN_OK || v == 0)
        return rc;
    rc = an_duck_query_int64_on(con, "SELECT max(version) FROM autonama.schema_version", NULL, NULL,
                                &v, &null, "read schema version", err);
    if (rc == AN_OK && !null)
        *version = (int)v;
    return rc;
}

typedef struct migrate_job {
    an_store *s;
    int *applied;
    int version;
} migrate_job;

static an_code migrate_steps_locked(duck_store *ds, migrate_job *j, an_err *err)
{
    an_code rc = an_duck_exec_locked(ds, "BEGIN TRANSACTION", "migrate", err);
    if (rc == AN_OK)
        rc = stored_version(ds->by_lock.con, &j->version, err);
    if (rc == AN_OK && j->version > AN_SCHEMA_VERSION)
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "DuckDB file %s has schema version %d, newer than this autonama (%d): "
                        "upgrade autonama",
                        j->s->describe, j->version, AN_SCHEMA_VERSION);
    if (rc == AN_OK && j->version < AN_SCHEMA_VERSION)
        rc = an_duck_exec_locked(ds, LEDGER_SQL, "migrate", err);
    for (int v = j->version + 1; rc == AN_OK && v <= AN_SCHEMA_VERSION; v++) {
        char what[48];
        snprintf(what, sizeof what, "migrate to version %d", v);
        for (int i = 0; rc == AN_OK && MIGRATIONS[v][i]; i++)
            rc = an_duck_exec_locked(ds, MIGRATIONS[v][i], what, err);
    }
    if (rc == AN_OK)
        rc = an_duck_exec_locked(ds, "COMMIT", "migrate", err);
    return rc;
}

static an_code migrate_job_run(duck_store *ds, void *ctx, an_err *err)
{
    migrate_job *j = ctx;
    an_code rc = migrate_steps_locked(ds, j, err);
    if (rc != AN_OK) {
        an_duck_rollback_locked(ds);
        /* another handle on this database may have migrated at the same
         * moment (a write-write conflict): then there is nothing left to do */
        int now = 0;
        an_err ignored;
        if (j->version < AN_SCHEMA_VERSION &&
            stored_version(ds->by_lock.con, &now, &ignored) == AN_OK && now == AN_SCHEMA_VERSION) {
            an_err_clear(err);
            rc = AN_OK;
        }
        return rc;
    }
    if (j->version < AN_SCHEMA_VERSION) {
        *j->applied = AN_SCHEMA_VERSION - j->version;
        AN_INFO(AN_DUCK_COMPONENT,
                "msg=\"schema migrated\" from=%d version=%d mode=duckdb path=\"%s\"", j->version,
                AN_SCHEMA_VERSION, j->s->describe);
    }
    return AN_OK;
}

an_code an_duck_migrate(an_store *s, int *applied, an_err *err)
{
    *applied = 0;
    migrate_job j = {s, applied, 0};
    return an_duck_with_lock(s->impl, migrate_job_run, &j, err);
}

typedef struct rel {
    const char *schema, *name;
} rel;

static int bind_rel(duckdb_prepared_statement st, const void *ctx)
{
    const rel *r = ctx;
    if (duckdb_bind_varchar(st, 1, r->schema) != DuckDBSuccess ||
        duckdb_bind_varchar(st, 2, r->name) != DuckDBSuccess)
        return -1;
    return 2;
}

typedef struct check_job {
    an_store *s;
    int *version;
} check_job;

static an_code check_job_run(duckdb_connection con, void *ctx, an_err *err)
{
    static const rel rels[] = {
        {"trading", "ohlc_data"},    {"trading", "ohlc_1h"},      {"trading", "ohlc_1d"},
        {"analytics", "indicators"}, {"optimization", "results"}, {"optimization", "runs"},
        {"trading", "ohlc_series"},
    };
    check_job *j = ctx;
    const char *where = j->s->describe;
    an_code rc = stored_version(con, j->version, err);
    if (rc == AN_OK)
        rc = an_store_version_check("DuckDB file", where, *j->version, err);
    for (size_t i = 0; rc == AN_OK && i < sizeof rels / sizeof rels[0]; i++) {
        int64_t n = 0;
        int null;
        rc = an_duck_query_int64_on(
            con,
            "SELECT count(*) FROM (SELECT schema_name, table_name AS name FROM "
            "duckdb_tables() WHERE database_name = current_database() UNION "
            "ALL SELECT schema_name, view_name FROM duckdb_views() WHERE "
            "database_name = current_database()) WHERE schema_name = $1 AND "
            "name = $2",
            bind_rel, &rels[i], &n, &null, "check schema", err);
        /* migrate does not recreate it: the ledger says version 1 is there */
        if (rc == AN_OK && n == 0)
            rc = an_err_set(err, AN_ERR_SCHEMA,
                            "DuckDB file %s lacks %s.%s although it records schema version %d: "
                            "it was changed outside autonama; restore it or use a new file",
                            where, rels[i].schema, rels[i].name, *j->version);
    }
    return rc;
}

an_code an_duck_check_schema(an_store *s, int *version, an_err *err)
{
    check_job j = {s, version};
    /* on a read connection, as /health calls it */
    return an_duck_with_reader(s->impl, check_job_run, &j, "check schema", err);
}

an_code an_duck_ping(an_store *s, an_err *err)
{
    int64_t v = 0;
    int found = 0;
    an_store_one one = {&AN_INT64_FIELDS, &v, &found};
    /* on a read connection: /health answers while a write holds the lock */
    an_code rc = an_duck_read(s->impl, "SELECT 1", NULL, NULL, an_duck_read_one, &one, "ping", err);
    if (rc == AN_OK && (!found || v != 1))
        rc = an_err_set(err, AN_ERR_INTERNAL, "ping: SELECT 1 did not return 1");
    return rc;
}
