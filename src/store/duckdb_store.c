/*
 * duckdb_store.c - the embedded DuckDB store backend (see store.h).
 *
 * Owns one DuckDB database (the file at DUCKDB_PATH) and one connection to
 * it, guarded by a mutex: any thread may call any op, and they run one at a
 * time. The database comes from a process-wide DuckDB instance cache, so two
 * handles on the same file in one process share one database instead of
 * opening it twice (which DuckDB allows and which can corrupt the file).
 *
 * Timestamps are plain TIMESTAMP columns holding UTC (DuckDB's TIMESTAMPTZ
 * would bucket the rollups by the session's time zone); an_candle.ts in ms
 * maps to TIMESTAMP micros exactly (ms * 1000). The 1h/1d rollups are views
 * over the 1m candles. Writes go through an appender into a TEMP staging
 * table, then one INSERT ... SELECT ... ON CONFLICT DO UPDATE, all in one
 * transaction; reads use prepared statements and read whole data chunks.
 */
#include "store/store_impl.h"

#include <duckdb.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/store_duckdb.h"

/* DuckDB's TIMESTAMP range, in ms (its infinities sit just outside). */
#define TS_MIN_MS (-9223372022400000LL)
#define TS_MAX_MS 9223372036854775LL

typedef struct duck_store {
    pthread_mutex_t lock; /* guards con and everything run on it */
    duckdb_database db;
    duckdb_connection con;
} duck_store;

static const char *COMPONENT = "store";

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static duckdb_instance_cache cache; /* process-wide; lives until exit */

static void cache_init(void)
{
    cache = duckdb_create_instance_cache();
}

/* ---- errors ------------------------------------------------------------- */

/* Copies a DuckDB message folded onto one line (they carry newlines and
 * "Did you mean" hints). */
static void one_line(char *out, size_t len, const char *msg)
{
    size_t w = 0;
    int space = 0;
    for (const char *r = msg ? msg : "unknown error"; *r && w + 1 < len; r++) {
        if (*r == '\n' || *r == '\r' || *r == '\t' || *r == ' ') {
            space = 1;
            continue;
        }
        if (space && w > 0 && w + 2 < len)
            out[w++] = ' ';
        space = 0;
        out[w++] = *r;
    }
    out[w] = '\0';
}

static an_code code_for(duckdb_error_type type, const char *msg)
{
    if (msg &&
        (strstr(msg, "read-only") || strstr(msg, "Read-only") || strstr(msg, "Permission denied")))
        return AN_ERR_READONLY;
    switch (type) {
    case DUCKDB_ERROR_CATALOG: return AN_ERR_SCHEMA;
    case DUCKDB_ERROR_OUT_OF_MEMORY: return AN_ERR_NOMEM;
    case DUCKDB_ERROR_IO: return AN_ERR_IO;
    case DUCKDB_ERROR_INTERRUPT: return AN_ERR_TIMEOUT;
    case DUCKDB_ERROR_PERMISSION: return AN_ERR_READONLY;
    case DUCKDB_ERROR_INTERNAL: return AN_ERR_INTERNAL;
    default: return AN_ERR_DB;
    }
}

static an_code duck_error(duckdb_error_type type, const char *msg, const char *what, an_err *err)
{
    char line[AN_ERR_MSG_MAX];
    one_line(line, sizeof line, msg);
    an_code code = code_for(type, msg);
    if (code == AN_ERR_SCHEMA)
        return an_err_set(err, code, "%s: %s: run `autonama migrate`", what, line);
    return an_err_set(err, code, "%s: %s", what, line);
}

static an_code result_error(duckdb_result *r, const char *what, an_err *err)
{
    return duck_error(duckdb_result_error_type(r), duckdb_result_error(r), what, err);
}

/* ---- small query helpers ------------------------------------------------ */

static an_code exec(duck_store *ds, const char *sql, const char *what, an_err *err)
{
    duckdb_result r;
    an_code rc = AN_OK;
    if (duckdb_query(ds->con, sql, &r) != DuckDBSuccess)
        rc = result_error(&r, what, err);
    duckdb_destroy_result(&r);
    return rc;
}

/* Ends a failed transaction; its own failure (no transaction left, after a
 * failed COMMIT) does not matter. */
static void rollback(duck_store *ds)
{
    duckdb_result r;
    duckdb_query(ds->con, "ROLLBACK", &r);
    duckdb_destroy_result(&r);
}

static an_code prepare(duck_store *ds, const char *sql, duckdb_prepared_statement *st,
                       const char *what, an_err *err)
{
    if (duckdb_prepare(ds->con, sql, st) == DuckDBSuccess)
        return AN_OK;
    /* a prepare error has no type: classify by DuckDB's own prefix */
    const char *msg = duckdb_prepare_error(*st);
    duckdb_error_type type = DUCKDB_ERROR_INVALID;
    if (msg && strncmp(msg, "Catalog Error", 13) == 0)
        type = DUCKDB_ERROR_CATALOG;
    an_code rc = duck_error(type, msg, what, err);
    duckdb_destroy_prepare(st);
    return rc;
}

/* Executes st into *r; on failure *r is destroyed already. */
static an_code execute(duckdb_prepared_statement st, duckdb_result *r, const char *what,
                       an_err *err)
{
    if (duckdb_execute_prepared(st, r) == DuckDBSuccess)
        return AN_OK;
    an_code rc = result_error(r, what, err);
    duckdb_destroy_result(r);
    return rc;
}

static int bind_ok(duckdb_state a)
{
    return a == DuckDBSuccess;
}

/* Reads the first ncols columns of row 0 of a result as int64 (BIGINT,
 * INTEGER, TIMESTAMP micros). null[c] = 1 when there is no row or the value
 * is NULL. */
static an_code first_row(duckdb_result *r, idx_t ncols, int64_t *v, int *null, const char *what,
                         an_err *err)
{
    for (idx_t c = 0; c < ncols; c++) {
        v[c] = 0;
        null[c] = 1;
    }
    duckdb_data_chunk chunk = duckdb_fetch_chunk(*r);
    if (!chunk)
        return AN_OK;
    an_code rc = AN_OK;
    for (idx_t c = 0; c < ncols && duckdb_data_chunk_get_size(chunk) > 0; c++) {
        duckdb_type type = duckdb_column_type(r, c);
        duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, c);
        uint64_t *valid = duckdb_vector_get_validity(vec);
        void *data = duckdb_vector_get_data(vec);
        if (valid && !duckdb_validity_row_is_valid(valid, 0))
            continue;
        null[c] = 0;
        if (type == DUCKDB_TYPE_BIGINT || type == DUCKDB_TYPE_TIMESTAMP) {
            v[c] = ((int64_t *)data)[0];
        } else if (type == DUCKDB_TYPE_INTEGER) {
            v[c] = ((int32_t *)data)[0];
        } else {
            rc = an_err_set(err, AN_ERR_INTERNAL, "%s: unexpected column type %d", what, (int)type);
            break;
        }
    }
    duckdb_destroy_data_chunk(&chunk);
    return rc;
}

/* Runs a query without parameters that returns one integer. */
static an_code query_int64(duck_store *ds, const char *sql, int64_t *v, int *null, const char *what,
                           an_err *err)
{
    duckdb_result r;
    if (duckdb_query(ds->con, sql, &r) != DuckDBSuccess) {
        an_code rc = result_error(&r, what, err);
        duckdb_destroy_result(&r);
        return rc;
    }
    an_code rc = first_row(&r, 1, v, null, what, err);
    duckdb_destroy_result(&r);
    return rc;
}

/* ---- schema ------------------------------------------------------------- */

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

/* MIGRATIONS[v] takes the schema from version v - 1 to v. */
static const char *const *const MIGRATIONS[AN_SCHEMA_VERSION + 1] = {NULL, MIGRATION_1, MIGRATION_2,
                                                                     MIGRATION_3, MIGRATION_4};

static an_code stored_version(duck_store *ds, int *version, an_err *err)
{
    int64_t v;
    int null;
    *version = 0;
    an_code rc = query_int64(ds,
                             "SELECT count(*) FROM duckdb_tables() WHERE database_name = "
                             "current_database() AND schema_name = 'autonama' AND table_name = "
                             "'schema_version'",
                             &v, &null, "read schema version", err);
    if (rc != AN_OK || v == 0)
        return rc;
    rc = query_int64(ds, "SELECT max(version) FROM autonama.schema_version", &v, &null,
                     "read schema version", err);
    if (rc == AN_OK && !null)
        *version = (int)v;
    return rc;
}

static an_code duck_migrate(an_store *s, int *applied, an_err *err)
{
    duck_store *ds = s->impl;
    int version = 0;
    *applied = 0;
    pthread_mutex_lock(&ds->lock);
    an_code rc = exec(ds, "BEGIN TRANSACTION", "migrate", err);
    if (rc != AN_OK)
        goto out;
    rc = stored_version(ds, &version, err);
    if (rc == AN_OK && version > AN_SCHEMA_VERSION)
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "DuckDB file %s has schema version %d, newer than this autonama (%d): "
                        "upgrade autonama",
                        s->describe, version, AN_SCHEMA_VERSION);
    if (rc == AN_OK && version < AN_SCHEMA_VERSION)
        rc = exec(ds, LEDGER_SQL, "migrate", err);
    for (int v = version + 1; rc == AN_OK && v <= AN_SCHEMA_VERSION; v++) {
        char what[48];
        snprintf(what, sizeof what, "migrate to version %d", v);
        for (int i = 0; rc == AN_OK && MIGRATIONS[v][i]; i++)
            rc = exec(ds, MIGRATIONS[v][i], what, err);
    }
    if (rc == AN_OK)
        rc = exec(ds, "COMMIT", "migrate", err);
    if (rc != AN_OK) {
        rollback(ds);
        /* another handle on this database may have migrated at the same
         * moment (a write-write conflict): then there is nothing left to do */
        int now = 0;
        an_err ignored;
        if (version < AN_SCHEMA_VERSION && stored_version(ds, &now, &ignored) == AN_OK &&
            now == AN_SCHEMA_VERSION) {
            an_err_clear(err);
            rc = AN_OK;
        }
        goto out;
    }
    if (version < AN_SCHEMA_VERSION) {
        *applied = AN_SCHEMA_VERSION - version;
        AN_INFO(COMPONENT, "msg=\"schema migrated\" from=%d version=%d mode=duckdb path=\"%s\"",
                version, AN_SCHEMA_VERSION, s->describe);
    }
out:
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_check_schema(an_store *s, int *version, an_err *err)
{
    static const char *const rels[][2] = {
        {"trading", "ohlc_data"},    {"trading", "ohlc_1h"},      {"trading", "ohlc_1d"},
        {"analytics", "indicators"}, {"optimization", "results"},
    };
    duck_store *ds = s->impl;
    duckdb_prepared_statement st = NULL;
    pthread_mutex_lock(&ds->lock);
    an_code rc = stored_version(ds, version, err);
    if (rc != AN_OK)
        goto out;
    if (*version == 0) {
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "DuckDB file %s has no autonama schema: run `autonama migrate`",
                        s->describe);
        goto out;
    }
    if (*version != AN_SCHEMA_VERSION) {
        rc = an_err_set(
            err, AN_ERR_SCHEMA, "DuckDB file %s has schema version %d, this autonama needs %d: %s",
            s->describe, *version, AN_SCHEMA_VERSION,
            *version > AN_SCHEMA_VERSION ? "upgrade autonama" : "run `autonama migrate`");
        goto out;
    }
    rc = prepare(ds,
                 "SELECT count(*) FROM (SELECT schema_name, table_name AS name FROM "
                 "duckdb_tables() WHERE database_name = current_database() UNION ALL SELECT "
                 "schema_name, view_name FROM duckdb_views() WHERE database_name = "
                 "current_database()) WHERE schema_name = $1 AND name = $2",
                 &st, "check schema", err);
    for (size_t i = 0; rc == AN_OK && i < sizeof rels / sizeof rels[0]; i++) {
        duckdb_result r;
        int64_t n;
        int null;
        if (!bind_ok(duckdb_bind_varchar(st, 1, rels[i][0])) ||
            !bind_ok(duckdb_bind_varchar(st, 2, rels[i][1]))) {
            rc = an_err_set(err, AN_ERR_INTERNAL, "check schema: cannot bind parameters");
            break;
        }
        if ((rc = execute(st, &r, "check schema", err)) != AN_OK)
            break;
        rc = first_row(&r, 1, &n, &null, "check schema", err);
        duckdb_destroy_result(&r);
        /* migrate does not recreate it: the ledger says version 1 is there */
        if (rc == AN_OK && n == 0)
            rc = an_err_set(err, AN_ERR_SCHEMA,
                            "DuckDB file %s lacks %s.%s although it records schema version %d: "
                            "it was changed outside autonama; restore it or use a new file",
                            s->describe, rels[i][0], rels[i][1], *version);
    }
out:
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_ping(an_store *s, an_err *err)
{
    duck_store *ds = s->impl;
    int64_t v;
    int null;
    pthread_mutex_lock(&ds->lock);
    an_code rc = query_int64(ds, "SELECT 1", &v, &null, "ping", err);
    pthread_mutex_unlock(&ds->lock);
    if (rc == AN_OK && (null || v != 1))
        rc = an_err_set(err, AN_ERR_INTERNAL, "ping: SELECT 1 did not return 1");
    return rc;
}

/* ---- writes ------------------------------------------------------------- */

/* The staging table lives in the connection's temp catalog and is empty
 * between calls: each insert fills it and empties it again before COMMIT,
 * and a ROLLBACK restores it to empty. */
static const char STAGE_SQL[] = "CREATE TEMP TABLE IF NOT EXISTS an_stage (ts TIMESTAMP, open "
                                "DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE, volume DOUBLE)";

/* How many of the batch's keys exist, and how many of those differ. The
 * range on "timestamp" lets DuckDB skip row groups by their zone maps. */
static const char COUNT_SQL[] =
    "SELECT count(*), count(*) FILTER (WHERE o.open <> s.open OR o.high <> s.high OR o.low <> "
    "s.low OR o.close <> s.close OR o.volume <> s.volume) FROM temp.an_stage s JOIN "
    "trading.ohlc_data o ON o.\"timestamp\" = s.ts WHERE o.symbol = $1 AND o.timeframe = $2 AND "
    "o.\"timestamp\" BETWEEN $3 AND $4";

static const char INSERT_SQL[] =
    "INSERT INTO trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low, close, "
    "volume) SELECT $1::VARCHAR, $2::VARCHAR, ts, open, high, low, close, volume FROM "
    "temp.an_stage";

/* Unchanged rows are left alone (no new row version, no WAL). */
static const char UPSERT_SQL[] =
    "INSERT INTO trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low, close, "
    "volume) SELECT $1::VARCHAR, $2::VARCHAR, ts, open, high, low, close, volume FROM "
    "temp.an_stage ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET open = "
    "excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, volume = "
    "excluded.volume WHERE ohlc_data.open <> excluded.open OR ohlc_data.high <> excluded.high OR "
    "ohlc_data.low <> excluded.low OR ohlc_data.close <> excluded.close OR ohlc_data.volume <> "
    "excluded.volume";

static an_code appender_error(duckdb_appender app, const char *what, an_err *err)
{
    duckdb_error_data e = duckdb_appender_error_data(app);
    an_code rc =
        duck_error(duckdb_error_data_error_type(e), duckdb_error_data_message(e), what, err);
    duckdb_destroy_error_data(&e);
    return rc;
}

/* Appends the candles to the staging table, a whole vector at a time. */
static an_code stage(duck_store *ds, const an_candle *v, size_t n, an_err *err)
{
    duckdb_appender app = NULL;
    duckdb_data_chunk chunk = NULL;
    duckdb_logical_type types[6];
    an_code rc = AN_OK;
    types[0] = duckdb_create_logical_type(DUCKDB_TYPE_TIMESTAMP);
    for (int c = 1; c < 6; c++)
        types[c] = duckdb_create_logical_type(DUCKDB_TYPE_DOUBLE);
    chunk = duckdb_create_data_chunk(types, 6);
    for (int c = 0; c < 6; c++)
        duckdb_destroy_logical_type(&types[c]);
    if (!chunk) {
        rc = an_err_set(err, AN_ERR_NOMEM, "insert_ohlc_data: out of memory");
        goto out;
    }
    if (duckdb_appender_create_ext(ds->con, "temp", "main", "an_stage", &app) != DuckDBSuccess) {
        if (app)
            rc = appender_error(app, "insert_ohlc_data: staging", err);
        else
            rc = an_err_set(err, AN_ERR_INTERNAL, "insert_ohlc_data: cannot create an appender");
        goto out;
    }
    const size_t cap = duckdb_vector_size();
    for (size_t off = 0; off < n; off += cap) {
        size_t m = n - off < cap ? n - off : cap;
        int64_t *ts = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
        double *col[5];
        for (int c = 0; c < 5; c++)
            col[c] = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, (idx_t)c + 1));
        for (size_t i = 0; i < m; i++) {
            const an_candle *k = &v[off + i];
            ts[i] = k->ts * 1000;
            col[0][i] = k->open;
            col[1][i] = k->high;
            col[2][i] = k->low;
            col[3][i] = k->close;
            col[4][i] = k->volume;
        }
        duckdb_data_chunk_set_size(chunk, m);
        if (duckdb_append_data_chunk(app, chunk) != DuckDBSuccess) {
            rc = appender_error(app, "insert_ohlc_data: staging", err);
            goto out;
        }
        duckdb_data_chunk_reset(chunk);
    }
    if (duckdb_appender_close(app) != DuckDBSuccess)
        rc = appender_error(app, "insert_ohlc_data: staging", err);
out:
    /* on failure the caller rolls back whatever reached the staging table */
    if (app)
        duckdb_appender_destroy(&app);
    if (chunk)
        duckdb_destroy_data_chunk(&chunk);
    return rc;
}

static an_code bind_key(duckdb_prepared_statement st, const char *symbol, const char *tf)
{
    if (bind_ok(duckdb_bind_varchar(st, 1, symbol)) && bind_ok(duckdb_bind_varchar(st, 2, tf)))
        return AN_OK;
    return AN_ERR_INTERNAL;
}

static an_code duck_insert_ohlc(an_store *s, const char *symbol, const char *tf, const an_candle *v,
                                size_t n, an_upsert_counts *counts, an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_prepared_statement count_st = NULL, write_st = NULL;
    duckdb_result r;
    int64_t found[2];
    int null[2];
    for (size_t i = 0; i < n; i++)
        if (v[i].ts < TS_MIN_MS || v[i].ts > TS_MAX_MS)
            return an_err_set(err, AN_ERR_INVALID,
                              "insert_ohlc_data: row %zu: timestamp %" PRId64
                              " ms is outside DuckDB's range",
                              i, v[i].ts);
    pthread_mutex_lock(&ds->lock);
    an_code rc = exec(ds, "BEGIN TRANSACTION", "insert_ohlc_data", err);
    if (rc != AN_OK)
        goto out;
    if ((rc = stage(ds, v, n, err)) != AN_OK)
        goto out;
    rc = prepare(ds, COUNT_SQL, &count_st, "insert_ohlc_data", err);
    if (rc != AN_OK)
        goto out;
    if (bind_key(count_st, symbol, tf) != AN_OK ||
        !bind_ok(duckdb_bind_timestamp(count_st, 3, (duckdb_timestamp){v[0].ts * 1000})) ||
        !bind_ok(duckdb_bind_timestamp(count_st, 4, (duckdb_timestamp){v[n - 1].ts * 1000}))) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "insert_ohlc_data: cannot bind parameters");
        goto out;
    }
    if ((rc = execute(count_st, &r, "insert_ohlc_data", err)) != AN_OK)
        goto out;
    rc = first_row(&r, 2, found, null, "insert_ohlc_data", err);
    duckdb_destroy_result(&r);
    if (rc != AN_OK)
        goto out;
    counts->inserted = (int64_t)n - found[0];
    counts->updated = found[1];
    counts->unchanged = found[0] - found[1];
    if (counts->inserted + counts->updated > 0) {
        /* all keys new: a plain INSERT, no conflict handling needed */
        rc = prepare(ds, found[0] == 0 ? INSERT_SQL : UPSERT_SQL, &write_st, "insert_ohlc_data",
                     err);
        if (rc != AN_OK)
            goto out;
        if (bind_key(write_st, symbol, tf) != AN_OK) {
            rc = an_err_set(err, AN_ERR_INTERNAL, "insert_ohlc_data: cannot bind parameters");
            goto out;
        }
        if ((rc = execute(write_st, &r, "insert_ohlc_data", err)) != AN_OK)
            goto out;
        int64_t written = (int64_t)duckdb_rows_changed(&r);
        duckdb_destroy_result(&r);
        if (written != counts->inserted + counts->updated) {
            rc = an_err_set(err, AN_ERR_INTERNAL,
                            "insert_ohlc_data: wrote %" PRId64 " rows, expected %" PRId64, written,
                            counts->inserted + counts->updated);
            goto out;
        }
    }
    if ((rc = exec(ds, "DELETE FROM temp.an_stage", "insert_ohlc_data", err)) != AN_OK)
        goto out;
    rc = exec(ds, "COMMIT", "insert_ohlc_data", err);
out:
    if (rc != AN_OK) {
        rollback(ds);
        memset(counts, 0, sizeof *counts);
    }
    if (count_st)
        duckdb_destroy_prepare(&count_st);
    if (write_st)
        duckdb_destroy_prepare(&write_st);
    pthread_mutex_unlock(&ds->lock);
    if (rc == AN_OK)
        AN_DEBUG(COMPONENT,
                 "msg=\"stored\" symbol=%s timeframe=%s inserted=%" PRId64 " updated=%" PRId64
                 " unchanged=%" PRId64,
                 symbol, tf, counts->inserted, counts->updated, counts->unchanged);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

static int64_t us_to_ms(int64_t us)
{
    return us / 1000 - (us % 1000 < 0); /* floor: exact for whole ms */
}

/* Appends every row of a (timestamp, open, high, low, close, volume) result;
 * on failure out is left as it was. */
static an_code read_candles(duckdb_result *r, an_candles *out, const char *what, an_err *err)
{
    if (duckdb_column_count(r) != 6 || duckdb_column_type(r, 0) != DUCKDB_TYPE_TIMESTAMP)
        return an_err_set(err, AN_ERR_INTERNAL, "%s: unexpected result shape", what);
    for (idx_t c = 1; c < 6; c++)
        if (duckdb_column_type(r, c) != DUCKDB_TYPE_DOUBLE)
            return an_err_set(err, AN_ERR_INTERNAL, "%s: column %d is not DOUBLE", what, (int)c);
    const size_t n0 = out->n;
    an_code rc = AN_OK;
    duckdb_data_chunk chunk;
    while (rc == AN_OK && (chunk = duckdb_fetch_chunk(*r)) != NULL) {
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        const int64_t *ts = NULL;
        const double *col[5];
        for (idx_t c = 0; c < 6; c++) {
            duckdb_vector vec = duckdb_data_chunk_get_vector(chunk, c);
            if (c == 0)
                ts = duckdb_vector_get_data(vec);
            else
                col[c - 1] = duckdb_vector_get_data(vec);
            /* the columns are NOT NULL: a NULL means the schema was changed */
            uint64_t *valid = duckdb_vector_get_validity(vec);
            for (idx_t i = 0; valid && i < rows && rc == AN_OK; i++)
                if (!duckdb_validity_row_is_valid(valid, i))
                    rc = an_err_set(err, AN_ERR_INTERNAL, "%s: NULL in column %d", what, (int)c);
        }
        for (idx_t i = 0; i < rows && rc == AN_OK; i++) {
            an_candle k = {us_to_ms(ts[i]), col[0][i], col[1][i], col[2][i], col[3][i], col[4][i]};
            rc = an_candles_push(out, &k, err);
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    if (rc != AN_OK)
        out->n = n0;
    return rc;
}

/* A query's time bounds as DuckDB can bind them: bounds beyond DuckDB's
 * timestamp range select everything (dropped) or nothing (none). */
typedef struct ts_bounds {
    int has_start, has_end, none;
} ts_bounds;

static ts_bounds bounds_of(const an_query *q)
{
    ts_bounds b;
    b.has_start = q->start_ms != INT64_MIN && q->start_ms > TS_MIN_MS;
    b.has_end = q->end_ms != INT64_MAX && q->end_ms <= TS_MAX_MS;
    b.none = (q->start_ms != INT64_MIN && q->start_ms > TS_MAX_MS) ||
             (q->end_ms != INT64_MAX && q->end_ms <= TS_MIN_MS);
    return b;
}

/* Appends the bounds on "timestamp", then group (may be ""), the order on
 * key and the limit, numbering parameters from *np + 1. */
static void append_range(char *sql, size_t cap, int pos, idx_t *np, ts_bounds bd, const an_query *q,
                         const char *group, const char *key)
{
    if (bd.has_start)
        pos += snprintf(sql + pos, cap - (size_t)pos, " AND \"timestamp\" >= $%d", (int)++*np);
    if (bd.has_end)
        pos += snprintf(sql + pos, cap - (size_t)pos, " AND \"timestamp\" < $%d", (int)++*np);
    pos += snprintf(sql + pos, cap - (size_t)pos, "%s ORDER BY %s %s", group, key,
                    q->descending ? "DESC" : "ASC");
    if (q->limit > 0)
        snprintf(sql + pos, cap - (size_t)pos, " LIMIT $%d", (int)++*np);
}

/* Runs a candle query whose parameters are symbol, tf (when not NULL),
 * bucket_ms (when >= 0), then what append_range numbered; its rows go to out. */
static an_code query_candles(duck_store *ds, const char *sql, const char *symbol, const char *tf,
                             int64_t bucket_ms, ts_bounds bd, const an_query *q, const char *what,
                             an_candles *out, an_err *err)
{
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    pthread_mutex_lock(&ds->lock);
    an_code rc = prepare(ds, sql, &st, what, err);
    if (rc != AN_OK)
        goto out;
    idx_t p = 1;
    int ok = bind_ok(duckdb_bind_varchar(st, p++, symbol));
    if (tf)
        ok = ok && bind_ok(duckdb_bind_varchar(st, p++, tf));
    if (bucket_ms >= 0)
        ok = ok && bind_ok(duckdb_bind_int64(st, p++, bucket_ms));
    if (bd.has_start)
        ok = ok && bind_ok(duckdb_bind_timestamp(st, p++, (duckdb_timestamp){q->start_ms * 1000}));
    if (bd.has_end)
        ok = ok && bind_ok(duckdb_bind_timestamp(st, p++, (duckdb_timestamp){q->end_ms * 1000}));
    if (q->limit > 0)
        ok = ok && bind_ok(duckdb_bind_int64(
                       st, p++, q->limit > (size_t)INT64_MAX ? INT64_MAX : (int64_t)q->limit));
    if (!ok) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "%s: cannot bind parameters", what);
        goto out;
    }
    if ((rc = execute(st, &r, what, err)) != AN_OK)
        goto out;
    rc = read_candles(&r, out, what, err);
    duckdb_destroy_result(&r);
out:
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_get_ohlc(an_store *s, const char *source, const char *symbol, const char *tf,
                             const an_query *q, an_candles *out, an_err *err)
{
    duck_store *ds = s->impl;
    if (strcmp(source, "ohlc_data") != 0 && strcmp(source, "ohlc_1h") != 0 &&
        strcmp(source, "ohlc_1d") != 0)
        return an_err_set(err, AN_ERR_INTERNAL, "get_ohlc_data: unknown source '%.16s'", source);
    ts_bounds bd = bounds_of(q);
    if (bd.none)
        return AN_OK;
    char sql[512];
    idx_t np = 1;
    int pos = snprintf(sql, sizeof sql,
                       "SELECT \"timestamp\", open, high, low, close, volume FROM trading.%s "
                       "WHERE symbol = $1",
                       source);
    if (tf)
        pos += snprintf(sql + pos, sizeof sql - (size_t)pos, " AND timeframe = $%d", (int)++np);
    append_range(sql, sizeof sql, pos, &np, bd, q, "", "\"timestamp\"");
    return query_candles(ds, sql, symbol, tf, -1, bd, q, "get_ohlc_data", out, err);
}

/* Buckets over ohlc_data with time_bucket on the epoch; arg_min/arg_max
 * pick the first open and the last close. */
static an_code duck_get_bucketed(an_store *s, const char *symbol, const char *tf, int64_t bucket_ms,
                                 const an_query *q, an_candles *out, an_err *err)
{
    duck_store *ds = s->impl;
    ts_bounds bd = bounds_of(q);
    if (bd.none)
        return AN_OK;
    char sql[768];
    idx_t np = 3;
    int pos = snprintf(sql, sizeof sql,
                       "SELECT time_bucket(to_milliseconds($3), \"timestamp\", TIMESTAMP "
                       "'1970-01-01') AS b, arg_min(open, \"timestamp\"), max(high), min(low), "
                       "arg_max(close, \"timestamp\"), sum(volume) FROM trading.ohlc_data "
                       "WHERE symbol = $1 AND timeframe = $2");
    append_range(sql, sizeof sql, pos, &np, bd, q, " GROUP BY b", "b");
    return query_candles(ds, sql, symbol, tf, bucket_ms, bd, q, "get bucketed candles", out, err);
}

static an_code duck_latest(an_store *s, const char *symbol, const char *tf, int64_t *ts, int *found,
                           an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    int64_t us = 0;
    int null = 1;
    pthread_mutex_lock(&ds->lock);
    an_code rc = prepare(ds,
                         "SELECT max(\"timestamp\") FROM trading.ohlc_data WHERE symbol = $1 AND "
                         "timeframe = $2",
                         &st, "get_latest_timestamp", err);
    if (rc != AN_OK)
        goto out;
    if (bind_key(st, symbol, tf) != AN_OK) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "get_latest_timestamp: cannot bind parameters");
        goto out;
    }
    if ((rc = execute(st, &r, "get_latest_timestamp", err)) != AN_OK)
        goto out;
    rc = first_row(&r, 1, &us, &null, "get_latest_timestamp", err);
    duckdb_destroy_result(&r);
    if (rc == AN_OK && !null) {
        *ts = us_to_ms(us);
        *found = 1;
    }
out:
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_refresh_rollups(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err)
{
    (void)s;
    (void)from_ms;
    (void)to_ms;
    (void)err;
    return AN_OK; /* the rollups are views: always current */
}

static an_code duck_list_series(an_store *s, an_series_info **out, size_t *n, an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_result r;
    an_series_info *list = NULL;
    size_t len = 0, cap = 0;
    an_code rc = AN_OK;
    pthread_mutex_lock(&ds->lock);
    if (duckdb_query(ds->con,
                     "SELECT symbol, timeframe, min(\"timestamp\"), max(\"timestamp\"), count(*) "
                     "FROM trading.ohlc_data GROUP BY symbol, timeframe ORDER BY symbol, "
                     "timeframe",
                     &r) != DuckDBSuccess) {
        rc = result_error(&r, "list series", err);
        goto out;
    }
    duckdb_data_chunk chunk;
    while (rc == AN_OK && (chunk = duckdb_fetch_chunk(r)) != NULL) {
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        duckdb_string_t *sym = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
        duckdb_string_t *tfs = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 1));
        int64_t *first = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 2));
        int64_t *last = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 3));
        int64_t *count = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 4));
        if (len + rows > cap) {
            size_t ncap = cap ? cap * 2 : 16;
            while (ncap < len + rows)
                ncap *= 2;
            an_series_info *p = realloc(list, ncap * sizeof *p);
            if (!p) {
                rc = an_err_set(err, AN_ERR_NOMEM, "list series: out of memory");
                duckdb_destroy_data_chunk(&chunk);
                break;
            }
            list = p;
            cap = ncap;
        }
        for (idx_t i = 0; i < rows; i++) {
            an_series_info *si = &list[len++];
            memset(si, 0, sizeof *si);
            snprintf(si->symbol, sizeof si->symbol, "%.*s", (int)duckdb_string_t_length(sym[i]),
                     duckdb_string_t_data(&sym[i]));
            snprintf(si->timeframe, sizeof si->timeframe, "%.*s",
                     (int)duckdb_string_t_length(tfs[i]), duckdb_string_t_data(&tfs[i]));
            si->first_ms = us_to_ms(first[i]);
            si->last_ms = us_to_ms(last[i]);
            si->rows = count[i];
        }
        duckdb_destroy_data_chunk(&chunk);
    }
    duckdb_destroy_result(&r);
out:
    pthread_mutex_unlock(&ds->lock);
    if (rc != AN_OK) {
        free(list);
        return rc;
    }
    *out = list;
    *n = len;
    return AN_OK;
}

/* ---- indicators --------------------------------------------------------- */

static const char IND_STAGE_SQL[] = "CREATE TEMP TABLE IF NOT EXISTS an_ind_stage (ts TIMESTAMP,"
                                    " name VARCHAR, value DOUBLE)";

static const char IND_COUNT_SQL[] =
    "SELECT count(*), count(*) FILTER (WHERE o.indicator_value IS DISTINCT FROM s.value)"
    " FROM temp.an_ind_stage s JOIN analytics.indicators o ON o.\"timestamp\" = s.ts AND"
    " o.indicator_name = s.name WHERE o.symbol = $1 AND o.timeframe = $2";

static const char IND_UPSERT_SQL[] =
    "INSERT INTO analytics.indicators (symbol, timeframe, \"timestamp\", indicator_name,"
    " indicator_value) SELECT $1::VARCHAR, $2::VARCHAR, ts, name, value FROM temp.an_ind_stage"
    " ON CONFLICT (symbol, timeframe, indicator_name, \"timestamp\") DO UPDATE SET"
    " indicator_value = excluded.indicator_value WHERE indicators.indicator_value IS DISTINCT"
    " FROM excluded.indicator_value";

static const char IND_INSERT_SQL[] =
    "INSERT INTO analytics.indicators (symbol, timeframe, \"timestamp\", indicator_name,"
    " indicator_value) SELECT $1::VARCHAR, $2::VARCHAR, ts, name, value FROM temp.an_ind_stage";

static an_code duck_upsert_indicators(an_store *s, const char *symbol, const char *tf,
                                      const an_indicator_batch *b, an_upsert_counts *counts,
                                      an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_appender app = NULL;
    duckdb_prepared_statement count_st = NULL, write_st = NULL;
    duckdb_result r;
    pthread_mutex_lock(&ds->lock);
    an_code rc = exec(ds, IND_STAGE_SQL, "upsert indicators", err);
    if (rc == AN_OK)
        rc = exec(ds, "BEGIN TRANSACTION", "upsert indicators", err);
    if (rc != AN_OK)
        goto out;
    if (duckdb_appender_create_ext(ds->con, "temp", "main", "an_ind_stage", &app) !=
        DuckDBSuccess) {
        rc = app ? appender_error(app, "upsert indicators", err)
                 : an_err_set(err, AN_ERR_INTERNAL, "upsert indicators: no appender");
        goto out;
    }
    for (size_t i = 0; i < b->n; i++) {
        if (duckdb_append_timestamp(app, (duckdb_timestamp){b->ts[i] * 1000}) != DuckDBSuccess ||
            duckdb_append_varchar(app, b->names[b->name_idx[i]]) != DuckDBSuccess ||
            duckdb_append_double(app, b->value[i]) != DuckDBSuccess ||
            duckdb_appender_end_row(app) != DuckDBSuccess) {
            rc = appender_error(app, "upsert indicators", err);
            goto out;
        }
    }
    if (duckdb_appender_close(app) != DuckDBSuccess) {
        rc = appender_error(app, "upsert indicators", err);
        goto out;
    }
    int64_t found[2];
    int null[2];
    if ((rc = prepare(ds, IND_COUNT_SQL, &count_st, "upsert indicators", err)) != AN_OK)
        goto out;
    if (bind_key(count_st, symbol, tf) != AN_OK) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "upsert indicators: cannot bind");
        goto out;
    }
    if ((rc = execute(count_st, &r, "upsert indicators", err)) != AN_OK)
        goto out;
    rc = first_row(&r, 2, found, null, "upsert indicators", err);
    duckdb_destroy_result(&r);
    if (rc != AN_OK)
        goto out;
    counts->inserted = (int64_t)b->n - found[0];
    counts->updated = found[1];
    counts->unchanged = found[0] - found[1];
    if (counts->inserted + counts->updated > 0) {
        rc = prepare(ds, found[0] == 0 ? IND_INSERT_SQL : IND_UPSERT_SQL, &write_st,
                     "upsert indicators", err);
        if (rc != AN_OK)
            goto out;
        if (bind_key(write_st, symbol, tf) != AN_OK) {
            rc = an_err_set(err, AN_ERR_INTERNAL, "upsert indicators: cannot bind");
            goto out;
        }
        if ((rc = execute(write_st, &r, "upsert indicators", err)) != AN_OK)
            goto out;
        duckdb_destroy_result(&r);
    }
    if ((rc = exec(ds, "DELETE FROM temp.an_ind_stage", "upsert indicators", err)) == AN_OK)
        rc = exec(ds, "COMMIT", "upsert indicators", err);
out:
    if (rc != AN_OK) {
        rollback(ds);
        memset(counts, 0, sizeof *counts);
    }
    if (app)
        duckdb_appender_destroy(&app);
    if (count_st)
        duckdb_destroy_prepare(&count_st);
    if (write_st)
        duckdb_destroy_prepare(&write_st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_get_indicators(an_store *s, const char *symbol, const char *tf,
                                   const char *name, const an_query *q, an_indicator_points *out,
                                   an_err *err)
{
    duck_store *ds = s->impl;
    char sql[512];
    int pos = snprintf(sql, sizeof sql,
                       "SELECT epoch_ms(\"timestamp\"), indicator_name, indicator_value FROM"
                       " analytics.indicators WHERE symbol = $1 AND timeframe = $2 AND"
                       " indicator_value IS NOT NULL AND ($3::VARCHAR IS NULL OR indicator_name"
                       " = $3) AND \"timestamp\" >= make_timestamp($4 * 1000) AND \"timestamp\""
                       " < make_timestamp($5 * 1000) ORDER BY indicator_name, \"timestamp\" %s",
                       q->descending ? "DESC" : "ASC");
    if (q->limit > 0)
        snprintf(sql + pos, sizeof sql - (size_t)pos, " LIMIT %zu", q->limit);
    int64_t lo = q->start_ms < TS_MIN_MS / 2 ? TS_MIN_MS / 2 : q->start_ms;
    int64_t hi = q->end_ms > TS_MAX_MS / 2 ? TS_MAX_MS / 2 : q->end_ms;
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    int have = 0;
    pthread_mutex_lock(&ds->lock);
    an_code rc = prepare(ds, sql, &st, "get indicators", err);
    if (rc != AN_OK)
        goto out;
    if (bind_key(st, symbol, tf) != AN_OK ||
        !bind_ok(name ? duckdb_bind_varchar(st, 3, name) : duckdb_bind_null(st, 3)) ||
        !bind_ok(duckdb_bind_int64(st, 4, lo)) || !bind_ok(duckdb_bind_int64(st, 5, hi))) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "get indicators: cannot bind");
        goto out;
    }
    if ((rc = execute(st, &r, "get indicators", err)) != AN_OK)
        goto out;
    have = 1;
    duckdb_data_chunk chunk;
    while (rc == AN_OK && (chunk = duckdb_fetch_chunk(r)) != NULL) {
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        const int64_t *ts = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
        duckdb_vector names = duckdb_data_chunk_get_vector(chunk, 1);
        duckdb_string_t *nm = duckdb_vector_get_data(names);
        const double *val = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 2));
        for (idx_t i = 0; i < rows && rc == AN_OK; i++) {
            if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 1024;
                an_indicator_point *v = realloc(out->v, cap * sizeof *v);
                if (!v) {
                    rc = an_err_set(err, AN_ERR_NOMEM, "get indicators: out of memory");
                    break;
                }
                out->v = v;
                out->cap = cap;
            }
            an_indicator_point *pt = &out->v[out->n++];
            pt->ts = ts[i];
            uint32_t len = duckdb_string_t_length(nm[i]);
            const char *data = duckdb_string_t_data(&nm[i]);
            snprintf(pt->name, sizeof pt->name, "%.*s", (int)len, data);
            pt->value = val[i];
        }
        duckdb_destroy_data_chunk(&chunk);
    }
out:
    if (have)
        duckdb_destroy_result(&r);
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_get_run(an_store *s, const char *symbol, const char *tf, an_indicator_run *run,
                            int *found, an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    pthread_mutex_lock(&ds->lock);
    an_code rc = prepare(ds,
                         "SELECT spec, epoch_ms(through_ts), candles, digest::VARCHAR FROM"
                         " analytics.indicator_runs WHERE symbol = $1 AND timeframe = $2",
                         &st, "read indicator run", err);
    if (rc == AN_OK && bind_key(st, symbol, tf) != AN_OK)
        rc = an_err_set(err, AN_ERR_INTERNAL, "read indicator run: cannot bind");
    if (rc == AN_OK && (rc = execute(st, &r, "read indicator run", err)) == AN_OK) {
        if (duckdb_row_count(&r) == 1) {
            char *spec = duckdb_value_varchar(&r, 0, 0), *dg = duckdb_value_varchar(&r, 3, 0);
            snprintf(run->spec, sizeof run->spec, "%s", spec ? spec : "");
            run->through_ms = duckdb_value_int64(&r, 1, 0);
            run->candles = duckdb_value_int64(&r, 2, 0);
            run->digest = dg ? strtoull(dg, NULL, 10) : 0;
            duckdb_free(spec);
            duckdb_free(dg);
            *found = 1;
        }
        duckdb_destroy_result(&r);
    }
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_put_run(an_store *s, const char *symbol, const char *tf,
                            const an_indicator_run *run, an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    char digest[24];
    snprintf(digest, sizeof digest, "%" PRIu64, run->digest);
    pthread_mutex_lock(&ds->lock);
    an_code rc = prepare(ds,
                         "INSERT INTO analytics.indicator_runs (symbol, timeframe, spec,"
                         " through_ts, candles, digest, updated_at) VALUES ($1, $2, $3,"
                         " make_timestamp($4 * 1000), $5, $6::UBIGINT, current_timestamp)"
                         " ON CONFLICT (symbol, timeframe) DO UPDATE SET spec = excluded.spec,"
                         " through_ts = excluded.through_ts, candles = excluded.candles,"
                         " digest = excluded.digest, updated_at = excluded.updated_at",
                         &st, "save indicator run", err);
    if (rc == AN_OK &&
        (bind_key(st, symbol, tf) != AN_OK || !bind_ok(duckdb_bind_varchar(st, 3, run->spec)) ||
         !bind_ok(duckdb_bind_int64(st, 4, run->through_ms)) ||
         !bind_ok(duckdb_bind_int64(st, 5, run->candles)) ||
         !bind_ok(duckdb_bind_varchar(st, 6, digest))))
        rc = an_err_set(err, AN_ERR_INTERNAL, "save indicator run: cannot bind");
    if (rc == AN_OK && (rc = execute(st, &r, "save indicator run", err)) == AN_OK)
        duckdb_destroy_result(&r);
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_export_closes(an_store *s, const char *source, const char *symbol,
                                  const char *tf, an_closes_cb cb, void *ctx, an_err *err)
{
    duck_store *ds = s->impl;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT epoch_ms(\"timestamp\"), close FROM trading.%s WHERE symbol = $1%s"
             " ORDER BY \"timestamp\"",
             source, tf ? " AND timeframe = $2" : "");
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    int have = 0;
    pthread_mutex_lock(&ds->lock);
    an_code rc = prepare(ds, sql, &st, "export series", err);
    if (rc != AN_OK)
        goto out;
    if (!bind_ok(duckdb_bind_varchar(st, 1, symbol)) ||
        (tf && !bind_ok(duckdb_bind_varchar(st, 2, tf)))) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "export series: cannot bind");
        goto out;
    }
    if ((rc = execute(st, &r, "export series", err)) != AN_OK)
        goto out;
    have = 1;
    duckdb_data_chunk chunk;
    while (rc == AN_OK && (chunk = duckdb_fetch_chunk(r)) != NULL) {
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        const int64_t *ts = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
        const double *close = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 1));
        rc = cb(ctx, ts, close, rows, err);
        duckdb_destroy_data_chunk(&chunk);
    }
out:
    if (have)
        duckdb_destroy_result(&r);
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

duckdb_database an_duckdb_store_database(an_store *s)
{
    if (!s || s->mode != AN_STORE_DUCKDB || !s->impl)
        return NULL;
    return ((duck_store *)s->impl)->db;
}

static void duck_close(an_store *s)
{
    duck_store *ds = s->impl;
    if (!ds)
        return;
    duckdb_disconnect(&ds->con);
    duckdb_close(&ds->db);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
    s->impl = NULL;
}

/* ---- task runs, moving data (schema v3) --------------------------------- */

static int bind_text(duckdb_prepared_statement st, idx_t i, const char *v)
{
    return bind_ok(v && *v ? duckdb_bind_varchar(st, i, v) : duckdb_bind_null(st, i));
}

static int bind_ms(duckdb_prepared_statement st, idx_t i, int64_t ms)
{
    return bind_ok(ms ? duckdb_bind_int64(st, i, ms) : duckdb_bind_null(st, i));
}

/* Prepares sql, binds n parameters by bind(ctx), runs it; *changed (may be
 * NULL) gets the rows changed. Caller holds ds->lock. */
static an_code run_prepared(duck_store *ds, const char *sql,
                            int (*bind)(duckdb_prepared_statement, const void *), const void *ctx,
                            int64_t *changed, const char *what, an_err *err)
{
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    an_code rc = prepare(ds, sql, &st, what, err);
    if (rc == AN_OK && !bind(st, ctx))
        rc = an_err_set(err, AN_ERR_INTERNAL, "%s: cannot bind", what);
    if (rc == AN_OK && (rc = execute(st, &r, what, err)) == AN_OK) {
        if (changed)
            *changed = (int64_t)duckdb_rows_changed(&r);
        duckdb_destroy_result(&r);
    }
    if (st)
        duckdb_destroy_prepare(&st);
    return rc;
}

#define DUCK_TS(n) "make_timestamp($" #n "::BIGINT * 1000)"

static const char DUCK_TASK_COLS[] =
    "id, name, args, state, approach, meta, result, error, instance, symbol, slot,"
    " epoch_ms(created_at), epoch_ms(started_at), epoch_ms(finished_at), epoch_ms(heartbeat_at)";

static int bind_task(duckdb_prepared_statement st, const void *ctx)
{
    const an_task_row *r = ctx;
    return bind_text(st, 1, r->id) && bind_text(st, 2, r->name) && bind_text(st, 3, r->args) &&
           bind_text(st, 4, r->state) && bind_text(st, 5, r->approach) &&
           bind_text(st, 6, r->meta) && bind_text(st, 7, r->result) && bind_text(st, 8, r->error) &&
           bind_text(st, 9, r->instance) && bind_text(st, 10, r->symbol) &&
           bind_text(st, 11, r->slot) && bind_ms(st, 12, r->created_ms) &&
           bind_ms(st, 13, r->started_ms) && bind_ms(st, 14, r->finished_ms) &&
           bind_ms(st, 15, r->heartbeat_ms);
}

static const char DUCK_TASK_INSERT[] =
    "INSERT INTO autonama.task_runs (id, name, args, state, approach, meta, result, error,"
    " instance, symbol, slot, created_at, started_at, finished_at, heartbeat_at) VALUES ($1, $2,"
    " $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce(" DUCK_TS(
        12) ", current_timestamp::TIMESTAMP),"
            " " DUCK_TS(13) ", " DUCK_TS(14) ", " DUCK_TS(15) ")";

static an_code duck_task_claim(an_store *s, const an_task_row *r, int *inserted, an_err *err)
{
    duck_store *ds = s->impl;
    *inserted = 0;
    pthread_mutex_lock(&ds->lock);
    duckdb_prepared_statement st = NULL;
    duckdb_result res;
    an_code rc = prepare(ds,
                         "SELECT count(*) FROM autonama.task_runs WHERE id = $1 OR"
                         " (slot IS NOT NULL AND slot = $2)",
                         &st, "claim task run", err);
    if (rc == AN_OK && !(bind_text(st, 1, r->id) && bind_ok(duckdb_bind_varchar(st, 2, r->slot))))
        rc = an_err_set(err, AN_ERR_INTERNAL, "claim task run: cannot bind");
    int64_t have = 1;
    if (rc == AN_OK && (rc = execute(st, &res, "claim task run", err)) == AN_OK) {
        have = duckdb_value_int64(&res, 0, 0);
        duckdb_destroy_result(&res);
    }
    if (st)
        duckdb_destroy_prepare(&st);
    if (rc == AN_OK && have == 0 &&
        (rc = run_prepared(ds, DUCK_TASK_INSERT, bind_task, r, NULL, "claim task run", err)) ==
            AN_OK)
        *inserted = 1;
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_task_put(an_store *s, const an_task_row *r, an_err *err)
{
    duck_store *ds = s->impl;
    char sql[1536];
    snprintf(sql, sizeof sql,
             "%s ON CONFLICT (id) DO UPDATE SET name = excluded.name, args = excluded.args,"
             " state = excluded.state, approach = excluded.approach, meta = excluded.meta,"
             " result = excluded.result, error = excluded.error, instance = excluded.instance,"
             " symbol = excluded.symbol, slot = excluded.slot, created_at = excluded.created_at,"
             " started_at = excluded.started_at, finished_at = excluded.finished_at,"
             " heartbeat_at = excluded.heartbeat_at",
             DUCK_TASK_INSERT);
    pthread_mutex_lock(&ds->lock);
    an_code rc = run_prepared(ds, sql, bind_task, r, NULL, "save task run", err);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

typedef struct id_ms {
    const char *id;
    int64_t a, b;
} id_ms;

static int bind_id_ms(duckdb_prepared_statement st, const void *ctx)
{
    const id_ms *v = ctx;
    return bind_text(st, 1, v->id) && bind_ok(duckdb_bind_int64(st, 2, v->a)) &&
           bind_ok(duckdb_bind_int64(st, 3, v->b));
}

static an_code duck_task_heartbeat(an_store *s, const char *id, int64_t now_ms, an_err *err)
{
    duck_store *ds = s->impl;
    id_ms v = {id, now_ms, 0};
    pthread_mutex_lock(&ds->lock);
    an_code rc = run_prepared(ds,
                              "UPDATE autonama.task_runs SET heartbeat_at = " DUCK_TS(
                                  2) " WHERE id = $1 AND state IN ('PENDING', 'PROGRESS') AND"
                                     " $3 = $3",
                              bind_id_ms, &v, NULL, "task heartbeat", err);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static char *value_or_null(duckdb_result *r, idx_t col, idx_t row)
{
    if (duckdb_value_is_null(r, col, row))
        return NULL;
    char *v = duckdb_value_varchar(r, col, row);
    char *out = v ? strdup(v) : NULL;
    duckdb_free(v);
    return out;
}

static void copy_value(duckdb_result *r, idx_t col, idx_t row, char *out, size_t len)
{
    char *v = duckdb_value_is_null(r, col, row) ? NULL : duckdb_value_varchar(r, col, row);
    snprintf(out, len, "%s", v ? v : "");
    duckdb_free(v);
}

static an_code task_rows(duck_store *ds, const char *sql, const char *p1, int64_t p2,
                         an_task_row **out, size_t *n, const char *what, an_err *err)
{
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    an_code rc = prepare(ds, sql, &st, what, err);
    if (rc == AN_OK && !(bind_text(st, 1, p1) && bind_ok(duckdb_bind_int64(st, 2, p2))))
        rc = an_err_set(err, AN_ERR_INTERNAL, "%s: cannot bind", what);
    if (rc == AN_OK && (rc = execute(st, &r, what, err)) == AN_OK) {
        idx_t rows = duckdb_row_count(&r);
        if (rows > 0 && !(*out = calloc(rows, sizeof **out)))
            rc = an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", what);
        for (idx_t i = 0; rc == AN_OK && i < rows; i++) {
            an_task_row *t = &(*out)[i];
            copy_value(&r, 0, i, t->id, sizeof t->id);
            copy_value(&r, 1, i, t->name, sizeof t->name);
            t->args = value_or_null(&r, 2, i);
            copy_value(&r, 3, i, t->state, sizeof t->state);
            copy_value(&r, 4, i, t->approach, sizeof t->approach);
            t->meta = value_or_null(&r, 5, i);
            t->result = value_or_null(&r, 6, i);
            copy_value(&r, 7, i, t->error, sizeof t->error);
            copy_value(&r, 8, i, t->instance, sizeof t->instance);
            copy_value(&r, 9, i, t->symbol, sizeof t->symbol);
            copy_value(&r, 10, i, t->slot, sizeof t->slot);
            int64_t *ms[4] = {&t->created_ms, &t->started_ms, &t->finished_ms, &t->heartbeat_ms};
            for (int k = 0; k < 4; k++)
                *ms[k] =
                    duckdb_value_is_null(&r, 11 + k, i) ? 0 : duckdb_value_int64(&r, 11 + k, i);
            *n = i + 1;
        }
        duckdb_destroy_result(&r);
    }
    if (st)
        duckdb_destroy_prepare(&st);
    return rc;
}

static an_code duck_task_get(an_store *s, const char *id, an_task_row *row, int *found, an_err *err)
{
    duck_store *ds = s->impl;
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM autonama.task_runs WHERE id = $1 AND $2 = $2",
             DUCK_TASK_COLS);
    an_task_row *rows = NULL;
    size_t n = 0;
    pthread_mutex_lock(&ds->lock);
    an_code rc = task_rows(ds, sql, id, 0, &rows, &n, "read task run", err);
    pthread_mutex_unlock(&ds->lock);
    if (rc == AN_OK && n == 1) {
        *row = rows[0];
        *found = 1;
    } else {
        for (size_t i = 0; i < n; i++)
            an_task_row_free(&rows[i]);
    }
    free(rows);
    return rc;
}

static an_code duck_task_list(an_store *s, const char *name, size_t limit, an_task_row **out,
                              size_t *n, an_err *err)
{
    duck_store *ds = s->impl;
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM autonama.task_runs WHERE ($1::VARCHAR IS NULL OR name = $1)"
             " ORDER BY created_at DESC, id DESC LIMIT $2",
             DUCK_TASK_COLS);
    pthread_mutex_lock(&ds->lock);
    an_code rc = task_rows(ds, sql, name, (int64_t)limit, out, n, "list task runs", err);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_task_interrupt(an_store *s, const char *instance, int64_t stale_before_ms,
                                   int64_t now_ms, int *n, an_err *err)
{
    duck_store *ds = s->impl;
    id_ms v = {instance, stale_before_ms, now_ms};
    int64_t changed = 0;
    pthread_mutex_lock(&ds->lock);
    an_code rc = run_prepared(
        ds,
        "UPDATE autonama.task_runs SET state = 'INTERRUPTED', finished_at = " DUCK_TS(
            3) ", error = coalesce(error, 'interrupted: its instance stopped (no heartbeat)')"
               " WHERE state IN ('PENDING', 'PROGRESS') AND (instance = $1 OR"
               " coalesce(heartbeat_at, created_at) < " DUCK_TS(2) ")",
        bind_id_ms, &v, &changed, "interrupt stale task runs", err);
    pthread_mutex_unlock(&ds->lock);
    *n = (int)changed;
    return rc;
}

static an_code duck_task_delete(an_store *s, const char *id, an_err *err)
{
    duck_store *ds = s->impl;
    id_ms v = {id, 0, 0};
    pthread_mutex_lock(&ds->lock);
    an_code rc = run_prepared(ds, "DELETE FROM autonama.task_runs WHERE id = $1 AND $2 = $3",
                              bind_id_ms, &v, NULL, "delete task run", err);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_list_indicator_series(an_store *s, an_series_info **out, size_t *n, an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_result r;
    an_code rc = AN_OK;
    pthread_mutex_lock(&ds->lock);
    if (duckdb_query(ds->con,
                     "SELECT symbol, timeframe, epoch_ms(min(\"timestamp\")),"
                     " epoch_ms(max(\"timestamp\")), count(*) FROM analytics.indicators"
                     " GROUP BY symbol, timeframe ORDER BY symbol, timeframe",
                     &r) != DuckDBSuccess) {
        rc = result_error(&r, "list indicator series", err);
    } else {
        idx_t rows = duckdb_row_count(&r);
        if (rows > 0 && !(*out = calloc(rows, sizeof **out)))
            rc = an_err_set(err, AN_ERR_NOMEM, "list indicator series: out of memory");
        for (idx_t i = 0; rc == AN_OK && i < rows; i++) {
            an_series_info *si = &(*out)[i];
            copy_value(&r, 0, i, si->symbol, sizeof si->symbol);
            copy_value(&r, 1, i, si->timeframe, sizeof si->timeframe);
            si->first_ms = duckdb_value_int64(&r, 2, i);
            si->last_ms = duckdb_value_int64(&r, 3, i);
            si->rows = duckdb_value_int64(&r, 4, i);
            *n = i + 1;
        }
    }
    duckdb_destroy_result(&r);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

typedef struct del_args {
    const char *symbol, *tf;
    int64_t from, to;
} del_args;

static int bind_del(duckdb_prepared_statement st, const void *ctx)
{
    const del_args *d = ctx;
    return bind_key(st, d->symbol, d->tf) == AN_OK && bind_ok(duckdb_bind_int64(st, 3, d->from)) &&
           bind_ok(duckdb_bind_int64(st, 4, d->to));
}

static an_code duck_delete_range(an_store *s, const char *table, const char *symbol, const char *tf,
                                 int64_t from_ms, int64_t to_ms, an_err *err)
{
    duck_store *ds = s->impl;
    char sql[256];
    snprintf(
        sql, sizeof sql,
        "DELETE FROM %s WHERE symbol = $1 AND timeframe = $2 AND \"timestamp\" BETWEEN " DUCK_TS(
            3) " AND " DUCK_TS(4),
        strcmp(table, "indicators") == 0 ? "analytics.indicators" : "trading.ohlc_data");
    del_args d = {symbol, tf, from_ms, to_ms};
    pthread_mutex_lock(&ds->lock);
    an_code rc = run_prepared(ds, sql, bind_del, &d, NULL, "delete rows", err);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

/* Optimizer results (schema v4): the rows travel as one JSON array. */
static an_code duck_put_opt_results(an_store *s, const char *rows_json, an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    pthread_mutex_lock(&ds->lock);
    an_code rc = prepare(
        ds,
        "INSERT INTO optimization.results (run_id, symbol, strategy, timeframe, parameters,"
        " metrics, period_start, period_end, sample) SELECT r.run_id, r.symbol, r.strategy,"
        " r.timeframe, r.parameters::VARCHAR, r.metrics::VARCHAR,"
        " make_timestamp(r.period_start * 1000), make_timestamp(r.period_end * 1000), r.sample"
        " FROM (SELECT unnest(from_json($1::JSON, '[{\"run_id\":\"VARCHAR\",\"symbol\":"
        "\"VARCHAR\",\"strategy\":\"VARCHAR\",\"timeframe\":\"VARCHAR\",\"parameters\":"
        "\"JSON\",\"metrics\":\"JSON\",\"period_start\":\"BIGINT\",\"period_end\":"
        "\"BIGINT\",\"sample\":\"VARCHAR\"}]')) AS r)",
        &st, "save optimizer results", err);
    if (rc == AN_OK && !bind_ok(duckdb_bind_varchar(st, 1, rows_json)))
        rc = an_err_set(err, AN_ERR_INTERNAL, "save optimizer results: cannot bind");
    if (rc == AN_OK && (rc = execute(st, &r, "save optimizer results", err)) == AN_OK)
        duckdb_destroy_result(&r);
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

/* One VARCHAR value of a query with VARCHAR parameters (*out malloc'd). */
static an_code duck_query_text(duck_store *ds, const char *sql, const char *const *params,
                               int nparams, char **out, const char *what, an_err *err)
{
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    *out = NULL;
    pthread_mutex_lock(&ds->lock);
    an_code rc = prepare(ds, sql, &st, what, err);
    for (int i = 0; rc == AN_OK && i < nparams; i++)
        if (!bind_ok(duckdb_bind_varchar(st, (idx_t)i + 1, params[i])))
            rc = an_err_set(err, AN_ERR_INTERNAL, "%s: cannot bind", what);
    if (rc == AN_OK && (rc = execute(st, &r, what, err)) == AN_OK) {
        char *v = duckdb_row_count(&r) > 0 ? duckdb_value_varchar(&r, 0, 0) : NULL;
        if (v) {
            *out = strdup(v);
            duckdb_free(v);
        }
        if (!*out)
            rc = an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", what);
        duckdb_destroy_result(&r);
    }
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

#define DUCK_ISO(col) "strftime(" col ", '%Y-%m-%dT%H:%M:%S.%gZ')"

static an_code duck_opt_runs(an_store *s, long limit, char **json, an_err *err)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *params[1] = {lim};
    return duck_query_text(
        s->impl,
        "SELECT coalesce(to_json(list(r ORDER BY r.created_ms DESC))::VARCHAR, '[]') FROM ("
        " SELECT g.*, (SELECT json_object('symbol', b.symbol, 'sample', b.sample, 'parameters',"
        " json(b.parameters), 'metrics', json(b.metrics)) FROM optimization.results b"
        " WHERE b.run_id = g.run_id AND b.sample <> 'out' ORDER BY"
        " TRY_CAST(json_extract_string(b.metrics, '$.sharpe') AS DOUBLE) DESC NULLS LAST, b.id"
        " LIMIT 1) AS best FROM (SELECT run_id, min(strategy) AS strategy, min(timeframe) AS"
        " timeframe, list(DISTINCT symbol ORDER BY symbol) AS symbols, list(DISTINCT sample"
        " ORDER BY sample) AS samples, count(*) AS \"rows\", epoch_ms(min(period_start)) AS"
        " period_start, epoch_ms(max(period_end)) AS period_end, " DUCK_ISO(
            "min(created_at)") " AS created_at, epoch_ms(min(created_at)) AS created_ms FROM "
                               "optimization.results"
                               " WHERE run_id IS NOT NULL GROUP BY run_id ORDER BY min(created_at) "
                               "DESC"
                               " LIMIT $1::BIGINT) g) r",
        params, 1, json, "read optimizer runs", err);
}

static an_code duck_opt_results(an_store *s, const char *run_id, const char *symbol,
                                const char *sort, int ascending, long limit, char **json,
                                an_err *err)
{
    char lim[24], sql[2048];
    snprintf(lim, sizeof lim, "%ld", limit);
    snprintf(sql, sizeof sql,
             "SELECT coalesce(to_json(list(t ORDER BY t.rank))::VARCHAR, '[]') FROM (SELECT id,"
             " run_id, symbol, strategy, timeframe, json(parameters) AS parameters, json(metrics)"
             " AS metrics, epoch_ms(period_start) AS period_start, epoch_ms(period_end) AS"
             " period_end, sample, %s AS created_at, row_number() OVER"
             " (ORDER BY TRY_CAST(json_extract_string(metrics, '$.%s') AS DOUBLE) %s NULLS LAST,"
             " id) AS rank FROM optimization.results WHERE ($1 = '' OR run_id = $1) AND"
             " ($2 = '' OR symbol = $2) QUALIFY rank <= $3::BIGINT) t",
             DUCK_ISO("created_at"), sort, ascending ? "ASC" : "DESC");
    const char *params[3] = {run_id, symbol, lim};
    return duck_query_text(s->impl, sql, params, 3, json, "read optimizer results", err);
}

static const an_store_ops DUCK_OPS = {
    .migrate = duck_migrate,
    .check_schema = duck_check_schema,
    .ping = duck_ping,
    .insert_ohlc = duck_insert_ohlc,
    .get_ohlc = duck_get_ohlc,
    .get_bucketed = duck_get_bucketed,
    .latest = duck_latest,
    .refresh_rollups = duck_refresh_rollups,
    .list_series = duck_list_series,
    .upsert_indicators = duck_upsert_indicators,
    .get_indicators = duck_get_indicators,
    .get_run = duck_get_run,
    .put_run = duck_put_run,
    .export_closes = duck_export_closes,
    .close = duck_close,
    .task_claim = duck_task_claim,
    .task_put = duck_task_put,
    .task_heartbeat = duck_task_heartbeat,
    .task_get = duck_task_get,
    .task_list = duck_task_list,
    .task_interrupt = duck_task_interrupt,
    .task_delete = duck_task_delete,
    .list_indicator_series = duck_list_indicator_series,
    .delete_range = duck_delete_range,
    .put_opt_results = duck_put_opt_results,
    .opt_runs = duck_opt_runs,
    .opt_results = duck_opt_results,
};

/* ---- open --------------------------------------------------------------- */

static an_code fs_error(int e, const char *what, const char *path, an_err *err)
{
    if (e == EACCES || e == EPERM || e == EROFS)
        return an_err_set(err, AN_ERR_READONLY, "%s %s: read-only for this user: %s", what, path,
                          strerror(e));
    return an_err_set(err, AN_ERR_IO, "%s %s: %s", what, path, strerror(e));
}

/* mkdir -p of the directory part of path. */
static an_code make_parents(const char *path, an_err *err)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return an_err_set(err, AN_ERR_INVALID, "DuckDB path is too long: %.64s...", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return AN_OK;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char keep = *p;
        *p = '\0';
        struct stat st;
        if (stat(dir, &st) != 0) {
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                if (e == EACCES || e == EPERM || e == EROFS)
                    return an_err_set(err, AN_ERR_READONLY,
                                      "cannot create the directory %s for the DuckDB file %s: "
                                      "its parent is read-only for this user: %s",
                                      dir, path, strerror(e));
                return an_err_set(err, AN_ERR_IO,
                                  "cannot create the directory %s for the DuckDB file %s: %s", dir,
                                  path, strerror(e));
            }
        } else if (!S_ISDIR(st.st_mode)) {
            return an_err_set(err, AN_ERR_IO,
                              "cannot use %s for the DuckDB file %s: %s is not a "
                              "directory",
                              dir, path, dir);
        }
        *p = keep;
        if (keep == '\0')
            return AN_OK;
    }
}

/* Checks what DuckDB would otherwise fail on later or less clearly: the
 * file and its directory must be writable (DuckDB writes path.wal beside
 * it). An empty file with no WAL (touch, mktemp) is removed so that DuckDB
 * creates a fresh database: DuckDB refuses a 0-byte file. */
static an_code check_file(const char *path, an_err *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return an_err_set(err, AN_ERR_IO, "DuckDB path %s is a directory, not a file", path);
        if (access(path, R_OK) != 0)
            return an_err_set(err, AN_ERR_IO, "cannot read the DuckDB file %s: %s", path,
                              strerror(errno));
        if (access(path, W_OK) != 0)
            return an_err_set(err, AN_ERR_READONLY, "DuckDB file %s is read-only: %s", path,
                              strerror(errno));
        if (access(dir, W_OK | X_OK) != 0)
            return an_err_set(err, AN_ERR_READONLY,
                              "directory %s of the DuckDB file %s is read-only for this user "
                              "(DuckDB writes its WAL beside the file): %s",
                              dir, path, strerror(errno));
        char wal[PATH_MAX + 8];
        snprintf(wal, sizeof wal, "%s.wal", path);
        if (st.st_size == 0 && access(wal, F_OK) != 0) {
            AN_INFO(COMPONENT, "msg=\"empty file: creating a new DuckDB database\" path=\"%s\"",
                    path);
            if (unlink(path) != 0)
                return fs_error(errno, "cannot replace the empty file", path, err);
        }
    } else if (errno != ENOENT) {
        return fs_error(errno, "cannot open the DuckDB file", path, err);
    } else if (access(dir, W_OK | X_OK) != 0) {
        return an_err_set(err, AN_ERR_READONLY,
                          "cannot create the DuckDB file %s: directory %s is read-only for this "
                          "user: %s",
                          path, dir, strerror(errno));
    }
    return AN_OK;
}

/* Classifies duckdb_open_ext's error text. */
static an_code open_error(const char *msg, const char *path, an_err *err)
{
    char line[AN_ERR_MSG_MAX];
    one_line(line, sizeof line, msg);
    if (strstr(line, "Could not set lock") || strstr(line, "Conflicting lock"))
        return an_err_set(err, AN_ERR_IO, "DuckDB file %s is in use: another process holds it (%s)",
                          path, line);
    if (strstr(line, "not a valid DuckDB database") || strstr(line, "Corrupt database") ||
        strstr(line, "Could not read enough bytes") || strstr(line, "checksum"))
        return an_err_set(err, AN_ERR_CORRUPT,
                          "%s is not a usable DuckDB database (move it away or point DUCKDB_PATH "
                          "elsewhere): %s",
                          path, line);
    if (strstr(line, "version number") || strstr(line, "storage version"))
        return an_err_set(err, AN_ERR_UNSUPPORTED,
                          "%s was written by an incompatible DuckDB version (this is %s): %s", path,
                          duckdb_library_version(), line);
    if (strstr(line, "Permission denied") || strstr(line, "Read-only file system") ||
        strstr(line, "read-only"))
        return an_err_set(err, AN_ERR_READONLY, "DuckDB file %s is read-only: %s", path, line);
    return an_err_set(err, AN_ERR_IO, "cannot open the DuckDB file %s: %s", path, line);
}

/* The absolute path of a file whose directory exists (the key of the
 * instance cache, so "./x.duckdb" and "x.duckdb" are one database). */
static an_code absolute(const char *path, char *out, size_t len, an_err *err)
{
    char dir[PATH_MAX], real[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = path;
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else {
        base = path + (slash - dir) + 1;
        if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
    }
    if (!realpath(dir, real))
        return fs_error(errno, "cannot resolve the directory of", path, err);
    if (snprintf(out, len, "%s/%s", strcmp(real, "/") == 0 ? "" : real, base) >= (int)len)
        return an_err_set(err, AN_ERR_INVALID, "DuckDB path is too long: %.64s...", path);
    return AN_OK;
}

/* DuckDB names the database (its catalog) after the file: a file called
 * autonama.duckdb or trading.duckdb makes "autonama.schema_version" or
 * "trading.ohlc_data" ambiguous between that catalog and our schema. Refuse
 * such names up front with a clear message. */
static an_code check_catalog_name(const char *path, an_err *err)
{
    static const char *schemas[] = {"trading", "analytics", "optimization", "autonama",
                                    "main",    "temp",      "system"};
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char stem[256];
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = '\0';
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++)
        if (strcasecmp(stem, schemas[i]) == 0)
            return an_err_set(err, AN_ERR_INVALID,
                              "DUCKDB_PATH %s: DuckDB names the database after the file, and "
                              "'%s' clashes with a schema of the same name inside it: choose "
                              "another file name (the default is data/financial_data.duckdb)",
                              path, stem);
    return AN_OK;
}

an_code an_duckdb_store_open(const an_store_options *opt, an_store *s, an_err *err)
{
    const char *path = opt->duckdb_path;
    char abs[PATH_MAX];
    char *open_err = NULL;
    duckdb_config cfg = NULL;
    an_code rc;
    if (!path || !*path)
        return an_err_set(err, AN_ERR_INVALID, "DUCKDB_PATH is empty: set the DuckDB file's path");
    int memory = strcmp(path, ":memory:") == 0;
    if (path[strlen(path) - 1] == '/')
        return an_err_set(err, AN_ERR_INVALID, "DUCKDB_PATH %s names a directory, not a file",
                          path);
    if (!memory) {
        if ((rc = check_catalog_name(path, err)) != AN_OK)
            return rc;
        if ((rc = make_parents(path, err)) != AN_OK)
            return rc;
        if ((rc = check_file(path, err)) != AN_OK)
            return rc;
        if ((rc = absolute(path, abs, sizeof abs, err)) != AN_OK)
            return rc;
    }
    duck_store *ds = calloc(1, sizeof *ds);
    if (!ds)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory opening %s", path);
    pthread_mutex_init(&ds->lock, NULL);
    if (duckdb_create_config(&cfg) != DuckDBSuccess) {
        rc = an_err_set(err, AN_ERR_NOMEM, "out of memory opening %s", path);
        goto fail;
    }
    /* no network here: never download an extension behind the user's back */
    if (duckdb_set_config(cfg, "autoinstall_known_extensions", "false") != DuckDBSuccess) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "DuckDB refused autoinstall_known_extensions=false");
        goto fail;
    }
    duckdb_state st;
    if (memory) {
        st = duckdb_open_ext(NULL, &ds->db, cfg, &open_err);
    } else {
        pthread_once(&cache_once, cache_init);
        st = duckdb_get_or_create_from_cache(cache, abs, &ds->db, cfg, &open_err);
    }
    if (st != DuckDBSuccess) {
        ds->db = NULL;
        rc = open_error(open_err, path, err);
        goto fail;
    }
    if (duckdb_connect(ds->db, &ds->con) != DuckDBSuccess) {
        rc = an_err_set(err, AN_ERR_IO, "cannot connect to the DuckDB database %s", path);
        goto fail;
    }
    /* belt and braces (settings of a cached database are not ours alone) */
    if ((rc = exec(ds, "SET autoinstall_known_extensions = false", path, err)) != AN_OK)
        goto fail;
    /* current_timestamp defaults are stored as UTC wall-clock time */
    an_err tz_err;
    if (exec(ds, "SET TimeZone = 'UTC'", path, &tz_err) != AN_OK)
        AN_DEBUG(COMPONENT, "msg=\"cannot set TimeZone (no ICU)\" path=\"%s\"", path);
    if ((rc = exec(ds, STAGE_SQL, path, err)) != AN_OK)
        goto fail;
    duckdb_destroy_config(&cfg);
    snprintf(s->describe, sizeof s->describe, "%s", path);
    s->ops = &DUCK_OPS;
    s->mode = AN_STORE_DUCKDB;
    s->impl = ds;
    AN_INFO(COMPONENT, "msg=\"opened\" mode=duckdb path=\"%s\" duckdb=%s", path,
            duckdb_library_version());
    return AN_OK;
fail:
    if (open_err)
        duckdb_free(open_err);
    if (cfg)
        duckdb_destroy_config(&cfg);
    if (ds->con)
        duckdb_disconnect(&ds->con);
    if (ds->db)
        duckdb_close(&ds->db);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
    return rc;
}
