/*
 * duckdb_store.c - the embedded DuckDB store backend (see store.h).
 *
 * Owns one duckdb_database (the file at DUCKDB_PATH) and one connection;
 * every op takes the backend's mutex for its duration, so any thread may call
 * any op. Candles are written through an appender into a temporary staging
 * table, then merged with one INSERT ... ON CONFLICT DO UPDATE inside a
 * transaction. The 1h and 1d rollups are views over the 1m candles, always
 * current. Timestamps are TIMESTAMP values holding UTC (no ICU needed).
 */
#include "store/store_impl.h"

#include <duckdb.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

typedef struct duck_store {
    pthread_mutex_t lock;
    duckdb_database db;
    duckdb_connection con;
    char path[4096];
} duck_store;

static const char *COMPONENT = "store";

/* ---- helpers ------------------------------------------------------------ */

/* Runs sql; on failure fills err with what and DuckDB's message. */
static an_code run(duck_store *ds, const char *sql, const char *what, an_err *err)
{
    duckdb_result res;
    if (duckdb_query(ds->con, sql, &res) == DuckDBError) {
        const char *m = duckdb_result_error(&res);
        an_code rc = an_err_set(err, AN_ERR_DB, "%s: %s", what, m ? m : "unknown DuckDB error");
        if (m && (strstr(m, "read-only") || strstr(m, "read only")))
            err->code = rc = AN_ERR_READONLY;
        duckdb_destroy_result(&res);
        return rc;
    }
    duckdb_destroy_result(&res);
    return AN_OK;
}

static an_code prepare(duck_store *ds, const char *sql, duckdb_prepared_statement *st,
                       const char *what, an_err *err)
{
    if (duckdb_prepare(ds->con, sql, st) == DuckDBError) {
        an_code rc = an_err_set(err, AN_ERR_DB, "%s: %s", what, duckdb_prepare_error(*st));
        duckdb_destroy_prepare(st);
        return rc;
    }
    return AN_OK;
}

static an_code exec_prepared(duckdb_prepared_statement st, duckdb_result *res, const char *what,
                             an_err *err)
{
    if (duckdb_execute_prepared(st, res) == DuckDBError) {
        const char *m = duckdb_result_error(res);
        an_code rc = an_err_set(err, AN_ERR_DB, "%s: %s", what, m ? m : "unknown DuckDB error");
        duckdb_destroy_result(res);
        return rc;
    }
    return AN_OK;
}

static duckdb_timestamp ts_of(int64_t ms)
{
    duckdb_timestamp t = {ms * 1000};
    return t;
}

/* ---- schema ------------------------------------------------------------- */

#define ROLLUP_VIEW(name, bucket)                                                                  \
    "CREATE VIEW trading." name " AS SELECT symbol, time_bucket(INTERVAL '" bucket "',"            \
    " \"timestamp\") AS \"timestamp\", arg_min(open, \"timestamp\") AS open,"                      \
    " max(high) AS high, min(low) AS low, arg_max(close, \"timestamp\") AS close,"                 \
    " sum(volume) AS volume, count(*) AS candle_count FROM trading.ohlc_data"                      \
    " WHERE timeframe = '1m' GROUP BY ALL"

static const char *MIGRATION_1[] = {
    "CREATE SCHEMA IF NOT EXISTS trading",
    "CREATE SCHEMA IF NOT EXISTS analytics",
    "CREATE SCHEMA IF NOT EXISTS optimization",
    "CREATE TABLE trading.ohlc_data (symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,"
    " \"timestamp\" TIMESTAMP NOT NULL, open DOUBLE NOT NULL, high DOUBLE NOT NULL,"
    " low DOUBLE NOT NULL, close DOUBLE NOT NULL, volume DOUBLE NOT NULL,"
    " PRIMARY KEY (symbol, timeframe, \"timestamp\"))",
    "CREATE TABLE analytics.indicators (symbol VARCHAR NOT NULL, timeframe VARCHAR NOT NULL,"
    " \"timestamp\" TIMESTAMP NOT NULL, indicator_name VARCHAR NOT NULL,"
    " indicator_value DOUBLE, PRIMARY KEY (symbol, timeframe, indicator_name, \"timestamp\"))",
    "CREATE SEQUENCE optimization.results_id_seq",
    "CREATE TABLE optimization.results (id BIGINT PRIMARY KEY DEFAULT"
    " nextval('optimization.results_id_seq'), symbol VARCHAR NOT NULL,"
    " strategy VARCHAR NOT NULL, parameters VARCHAR, metrics VARCHAR,"
    " created_at TIMESTAMP DEFAULT current_timestamp)",
    ROLLUP_VIEW("ohlc_1h", "1 hour"),
    ROLLUP_VIEW("ohlc_1d", "1 day"),
    "INSERT INTO autonama.schema_version (version, description) VALUES (1, 'initial schema"
    " (duckdb)')",
    NULL,
};

static an_code stored_version(duck_store *ds, int *version, an_err *err)
{
    *version = 0;
    duckdb_result res;
    if (duckdb_query(ds->con,
                     "SELECT count(*) FROM information_schema.tables WHERE table_schema ="
                     " 'autonama' AND table_name = 'schema_version'",
                     &res) == DuckDBError) {
        an_code rc =
            an_err_set(err, AN_ERR_DB, "read schema version: %s", duckdb_result_error(&res));
        duckdb_destroy_result(&res);
        return rc;
    }
    int64_t have = duckdb_value_int64(&res, 0, 0);
    duckdb_destroy_result(&res);
    if (!have)
        return AN_OK;
    if (duckdb_query(ds->con, "SELECT coalesce(max(version), 0) FROM autonama.schema_version",
                     &res) == DuckDBError) {
        an_code rc =
            an_err_set(err, AN_ERR_DB, "read schema version: %s", duckdb_result_error(&res));
        duckdb_destroy_result(&res);
        return rc;
    }
    *version = (int)duckdb_value_int64(&res, 0, 0);
    duckdb_destroy_result(&res);
    return AN_OK;
}

static an_code duck_migrate(an_store *s, int *applied, an_err *err)
{
    duck_store *ds = s->impl;
    *applied = 0;
    pthread_mutex_lock(&ds->lock);
    int version = 0;
    an_code rc = stored_version(ds, &version, err);
    if (rc == AN_OK && version > AN_SCHEMA_VERSION)
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "%s has schema version %d, newer than this autonama (%d): upgrade "
                        "autonama",
                        ds->path, version, AN_SCHEMA_VERSION);
    if (rc == AN_OK && version < 1) {
        rc = run(ds, "BEGIN TRANSACTION", "migrate", err);
        if (rc == AN_OK)
            rc = run(ds,
                     "CREATE SCHEMA IF NOT EXISTS autonama; CREATE TABLE IF NOT EXISTS"
                     " autonama.schema_version (version INTEGER PRIMARY KEY, applied_at"
                     " TIMESTAMP DEFAULT current_timestamp, description VARCHAR NOT NULL)",
                     "migrate", err);
        for (int i = 0; rc == AN_OK && MIGRATION_1[i]; i++)
            rc = run(ds, MIGRATION_1[i], "migrate", err);
        if (rc == AN_OK)
            rc = run(ds, "COMMIT", "migrate", err);
        if (rc != AN_OK) {
            an_err ignore;
            run(ds, "ROLLBACK", "migrate", &ignore);
        } else {
            *applied = 1;
            AN_INFO(COMPONENT, "msg=\"schema migrated\" version=1 mode=duckdb");
        }
    }
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_check_schema(an_store *s, int *version, an_err *err)
{
    duck_store *ds = s->impl;
    pthread_mutex_lock(&ds->lock);
    an_code rc = stored_version(ds, version, err);
    if (rc == AN_OK && *version == 0)
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "DuckDB file %s has no autonama schema: run `autonama migrate`", ds->path);
    else if (rc == AN_OK && *version != AN_SCHEMA_VERSION)
        rc = an_err_set(err, AN_ERR_SCHEMA,
                        "DuckDB file %s has schema version %d, this autonama needs %d: run "
                        "`autonama migrate`",
                        ds->path, *version, AN_SCHEMA_VERSION);
    if (rc == AN_OK) {
        duckdb_result res;
        if (duckdb_query(ds->con,
                         "SELECT count(*) FROM information_schema.tables WHERE"
                         " (table_schema, table_name) IN (('trading', 'ohlc_data'),"
                         " ('trading', 'ohlc_1h'), ('trading', 'ohlc_1d'),"
                         " ('analytics', 'indicators'), ('optimization', 'results'))",
                         &res) == DuckDBError) {
            rc = an_err_set(err, AN_ERR_DB, "check schema: %s", duckdb_result_error(&res));
        } else if (duckdb_value_int64(&res, 0, 0) != 5) {
            rc = an_err_set(err, AN_ERR_SCHEMA,
                            "DuckDB file %s lacks some of the autonama tables: run `autonama "
                            "migrate`",
                            ds->path);
        }
        duckdb_destroy_result(&res);
    }
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_ping(an_store *s, an_err *err)
{
    duck_store *ds = s->impl;
    pthread_mutex_lock(&ds->lock);
    an_code rc = run(ds, "SELECT 1", "ping", err);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

/* ---- insert ------------------------------------------------------------- */

static const char *MERGE_COUNTS_SQL =
    "SELECT count(*) FILTER (WHERE d.symbol IS NULL),"
    " count(*) FILTER (WHERE d.symbol IS NOT NULL AND (d.open, d.high, d.low, d.close,"
    " d.volume) IS DISTINCT FROM (s.open, s.high, s.low, s.close, s.volume))"
    " FROM stage_ohlc s LEFT JOIN trading.ohlc_data d ON d.symbol = s.symbol"
    " AND d.timeframe = s.timeframe AND d.\"timestamp\" = s.\"timestamp\"";

static const char *MERGE_SQL =
    "INSERT INTO trading.ohlc_data SELECT s.* FROM stage_ohlc s"
    " LEFT JOIN trading.ohlc_data d ON d.symbol = s.symbol AND d.timeframe = s.timeframe"
    " AND d.\"timestamp\" = s.\"timestamp\""
    " WHERE d.symbol IS NULL OR (d.open, d.high, d.low, d.close, d.volume) IS DISTINCT FROM"
    " (s.open, s.high, s.low, s.close, s.volume)"
    " ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET open = excluded.open,"
    " high = excluded.high, low = excluded.low, close = excluded.close,"
    " volume = excluded.volume";

static an_code duck_insert_ohlc(an_store *s, const char *symbol, const char *tf, const an_candle *v,
                                size_t n, an_upsert_counts *counts, an_err *err)
{
    duck_store *ds = s->impl;
    duckdb_appender app = NULL;
    int in_tx = 0;
    pthread_mutex_lock(&ds->lock);
    an_code rc = run(ds,
                     "CREATE TEMP TABLE IF NOT EXISTS stage_ohlc (symbol VARCHAR, timeframe"
                     " VARCHAR, \"timestamp\" TIMESTAMP, open DOUBLE, high DOUBLE, low DOUBLE,"
                     " close DOUBLE, volume DOUBLE); DELETE FROM stage_ohlc",
                     "insert_ohlc_data", err);
    if (rc != AN_OK)
        goto out;
    if (duckdb_appender_create(ds->con, NULL, "stage_ohlc", &app) == DuckDBError) {
        rc = an_err_set(err, AN_ERR_DB, "insert_ohlc_data: appender: %s",
                        duckdb_appender_error(app));
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (duckdb_append_varchar(app, symbol) == DuckDBError ||
            duckdb_append_varchar(app, tf) == DuckDBError ||
            duckdb_append_timestamp(app, ts_of(v[i].ts)) == DuckDBError ||
            duckdb_append_double(app, v[i].open) == DuckDBError ||
            duckdb_append_double(app, v[i].high) == DuckDBError ||
            duckdb_append_double(app, v[i].low) == DuckDBError ||
            duckdb_append_double(app, v[i].close) == DuckDBError ||
            duckdb_append_double(app, v[i].volume) == DuckDBError ||
            duckdb_appender_end_row(app) == DuckDBError) {
            rc = an_err_set(err, AN_ERR_DB, "insert_ohlc_data: append row %zu: %s", i,
                            duckdb_appender_error(app));
            goto out;
        }
    }
    if (duckdb_appender_close(app) == DuckDBError) {
        rc = an_err_set(err, AN_ERR_DB, "insert_ohlc_data: %s", duckdb_appender_error(app));
        goto out;
    }
    if ((rc = run(ds, "BEGIN TRANSACTION", "insert_ohlc_data", err)) != AN_OK)
        goto out;
    in_tx = 1;
    duckdb_result res;
    if (duckdb_query(ds->con, MERGE_COUNTS_SQL, &res) == DuckDBError) {
        rc = an_err_set(err, AN_ERR_DB, "insert_ohlc_data: %s", duckdb_result_error(&res));
        duckdb_destroy_result(&res);
        goto out;
    }
    int64_t ins = duckdb_value_int64(&res, 0, 0), upd = duckdb_value_int64(&res, 1, 0);
    duckdb_destroy_result(&res);
    if (ins + upd > 0 && (rc = run(ds, MERGE_SQL, "insert_ohlc_data", err)) != AN_OK)
        goto out;
    if ((rc = run(ds, "COMMIT", "insert_ohlc_data", err)) != AN_OK)
        goto out;
    in_tx = 0;
    counts->inserted = ins;
    counts->updated = upd;
    counts->unchanged = (int64_t)n - ins - upd;
out:
    if (in_tx) {
        an_err ignore;
        run(ds, "ROLLBACK", "insert_ohlc_data", &ignore);
    }
    if (app)
        duckdb_appender_destroy(&app);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

/* ---- reads -------------------------------------------------------------- */

static an_code duck_get_ohlc(an_store *s, const char *source, const char *symbol, const char *tf,
                             const an_query *q, an_candles *out, an_err *err)
{
    duck_store *ds = s->impl;
    char sql[512];
    int pos = snprintf(sql, sizeof sql,
                       "SELECT epoch_us(\"timestamp\"), open, high, low, close, volume FROM"
                       " trading.%s WHERE symbol = $1 AND (%s) AND \"timestamp\" >= $3 AND"
                       " \"timestamp\" < $4 ORDER BY \"timestamp\" %s",
                       source, tf ? "timeframe = $2" : "$2::VARCHAR IS NULL",
                       q->descending ? "DESC" : "ASC");
    if (q->limit > 0)
        snprintf(sql + pos, sizeof sql - (size_t)pos, " LIMIT %zu", q->limit);
    pthread_mutex_lock(&ds->lock);
    duckdb_prepared_statement st = NULL;
    duckdb_result res;
    int have_res = 0;
    an_code rc = prepare(ds, sql, &st, "get_ohlc_data", err);
    if (rc != AN_OK)
        goto out;
    /* TIMESTAMP spans about 290,000 years: clamp the open bounds */
    int64_t lo = q->start_ms == INT64_MIN ? -9000000000000000LL : q->start_ms;
    int64_t hi = q->end_ms == INT64_MAX ? 9000000000000000LL : q->end_ms;
    duckdb_bind_varchar(st, 1, symbol);
    if (tf)
        duckdb_bind_varchar(st, 2, tf);
    else
        duckdb_bind_null(st, 2);
    duckdb_bind_timestamp(st, 3, ts_of(lo / 1000 * 1000 == lo ? lo : lo));
    duckdb_bind_timestamp(st, 4, ts_of(hi));
    if ((rc = exec_prepared(st, &res, "get_ohlc_data", err)) != AN_OK)
        goto out;
    have_res = 1;
    for (;;) {
        duckdb_data_chunk chunk = duckdb_fetch_chunk(res);
        if (!chunk)
            break;
        idx_t rows = duckdb_data_chunk_get_size(chunk);
        const int64_t *ts = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, 0));
        const double *col[5];
        for (int k = 0; k < 5; k++)
            col[k] = duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, (idx_t)k + 1));
        for (idx_t i = 0; i < rows && rc == AN_OK; i++) {
            an_candle c = {ts[i] / 1000, col[0][i], col[1][i], col[2][i], col[3][i], col[4][i]};
            rc = an_candles_push(out, &c, err);
        }
        duckdb_destroy_data_chunk(&chunk);
        if (rc != AN_OK)
            break;
    }
out:
    if (have_res)
        duckdb_destroy_result(&res);
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_latest(an_store *s, const char *symbol, const char *tf, int64_t *ts, int *found,
                           an_err *err)
{
    duck_store *ds = s->impl;
    pthread_mutex_lock(&ds->lock);
    duckdb_prepared_statement st = NULL;
    duckdb_result res;
    an_code rc = prepare(ds,
                         "SELECT epoch_us(max(\"timestamp\")) FROM trading.ohlc_data WHERE"
                         " symbol = $1 AND timeframe = $2",
                         &st, "get_latest_timestamp", err);
    if (rc == AN_OK) {
        duckdb_bind_varchar(st, 1, symbol);
        duckdb_bind_varchar(st, 2, tf);
        rc = exec_prepared(st, &res, "get_latest_timestamp", err);
        if (rc == AN_OK) {
            if (!duckdb_value_is_null(&res, 0, 0)) {
                *ts = duckdb_value_int64(&res, 0, 0) / 1000;
                *found = 1;
            }
            duckdb_destroy_result(&res);
        }
    }
    if (st)
        duckdb_destroy_prepare(&st);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

static an_code duck_refresh_rollups(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err)
{
    (void)s, (void)from_ms, (void)to_ms, (void)err;
    return AN_OK; /* the rollups are views */
}

static an_code duck_list_series(an_store *s, an_series_info **out, size_t *n, an_err *err)
{
    duck_store *ds = s->impl;
    pthread_mutex_lock(&ds->lock);
    duckdb_result res;
    an_code rc = AN_OK;
    if (duckdb_query(ds->con,
                     "SELECT symbol, timeframe, epoch_us(min(\"timestamp\")),"
                     " epoch_us(max(\"timestamp\")), count(*) FROM trading.ohlc_data"
                     " GROUP BY ALL ORDER BY symbol, timeframe",
                     &res) == DuckDBError) {
        rc = an_err_set(err, AN_ERR_DB, "list series: %s", duckdb_result_error(&res));
        duckdb_destroy_result(&res);
        goto out;
    }
    idx_t rows = duckdb_row_count(&res);
    if (rows > 0 && !(*out = calloc(rows, sizeof **out))) {
        rc = an_err_set(err, AN_ERR_NOMEM, "list series: out of memory");
        duckdb_destroy_result(&res);
        goto out;
    }
    for (idx_t i = 0; i < rows; i++) {
        an_series_info *si = &(*out)[i];
        char *sym = duckdb_value_varchar(&res, 0, i), *tf = duckdb_value_varchar(&res, 1, i);
        snprintf(si->symbol, sizeof si->symbol, "%s", sym ? sym : "");
        snprintf(si->timeframe, sizeof si->timeframe, "%s", tf ? tf : "");
        duckdb_free(sym);
        duckdb_free(tf);
        si->first_ms = duckdb_value_int64(&res, 2, i) / 1000;
        si->last_ms = duckdb_value_int64(&res, 3, i) / 1000;
        si->rows = duckdb_value_int64(&res, 4, i);
    }
    *n = (size_t)rows;
    duckdb_destroy_result(&res);
out:
    pthread_mutex_unlock(&ds->lock);
    return rc;
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

static const an_store_ops DUCK_OPS = {
    .migrate = duck_migrate,
    .check_schema = duck_check_schema,
    .ping = duck_ping,
    .insert_ohlc = duck_insert_ohlc,
    .get_ohlc = duck_get_ohlc,
    .latest = duck_latest,
    .refresh_rollups = duck_refresh_rollups,
    .list_series = duck_list_series,
    .close = duck_close,
};

/* ---- open --------------------------------------------------------------- */

/* mkdir -p of path's parent directory. */
static int make_parent(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Classifies why the file cannot be opened, before DuckDB tries. */
static an_code precheck(const char *path, an_err *err)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode))
            return an_err_set(err, AN_ERR_INVALID, "DUCKDB_PATH %s is not a regular file", path);
        if (access(path, R_OK | W_OK) != 0)
            return an_err_set(err, AN_ERR_READONLY,
                              "DuckDB file %s is read-only or unreadable for this user (%s)", path,
                              strerror(errno));
        if (st.st_size > 0) {
            /* a DuckDB file carries "DUCK" at byte 8 */
            char magic[12] = {0};
            int fd = open(path, O_RDONLY);
            ssize_t got = fd >= 0 ? read(fd, magic, sizeof magic) : -1;
            if (fd >= 0)
                close(fd);
            if (got < 12 || memcmp(magic + 8, "DUCK", 4) != 0)
                return an_err_set(err, AN_ERR_CORRUPT,
                                  "%s is not a DuckDB database file (corrupt, or another kind "
                                  "of file): move it away or point DUCKDB_PATH elsewhere",
                                  path);
        }
        return AN_OK;
    }
    if (make_parent(path) < 0)
        return an_err_set(err, AN_ERR_READONLY, "cannot create the directory of DuckDB file %s: %s",
                          path, strerror(errno));
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0)
        return an_err_set(err, AN_ERR_READONLY,
                          "cannot create DuckDB file %s: directory %s is read-only for this user",
                          path, dir);
    return AN_OK;
}

an_code an_duckdb_store_open(const an_store_options *opt, an_store *s, an_err *err)
{
    const char *path = opt->duckdb_path;
    if (!path || !*path)
        return an_err_set(err, AN_ERR_INVALID, "DUCKDB_PATH is empty");
    if (strlen(path) >= sizeof(((duck_store *)0)->path))
        return an_err_set(err, AN_ERR_INVALID, "DUCKDB_PATH is too long");
    an_code rc = precheck(path, err);
    if (rc != AN_OK)
        return rc;
    duck_store *ds = calloc(1, sizeof *ds);
    if (!ds)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    snprintf(ds->path, sizeof ds->path, "%s", path);
    pthread_mutex_init(&ds->lock, NULL);
    duckdb_config config = NULL;
    char *open_err = NULL;
    if (duckdb_create_config(&config) == DuckDBError) {
        rc = an_err_set(err, AN_ERR_NOMEM, "DuckDB: cannot create a configuration");
        goto fail;
    }
    /* no network here, and none wanted: never download extensions */
    duckdb_set_config(config, "autoinstall_known_extensions", "false");
    duckdb_set_config(config, "autoload_known_extensions", "false");
    if (duckdb_open_ext(path, &ds->db, config, &open_err) == DuckDBError) {
        const char *m = open_err ? open_err : "unknown error";
        an_code code = AN_ERR_IO;
        if (strstr(m, "lock"))
            rc = an_err_set(err, code,
                            "DuckDB file %s is in use by another process (%s): stop it or use "
                            "another DUCKDB_PATH",
                            path, m);
        else if (strstr(m, "Read-only") || strstr(m, "read-only") || strstr(m, "Permission"))
            rc = an_err_set(err, AN_ERR_READONLY, "cannot open DuckDB file %s: %s", path, m);
        else if (strstr(m, "not a valid DuckDB") || strstr(m, "Corrupt") || strstr(m, "corrupt") ||
                 strstr(m, "version"))
            rc = an_err_set(err, AN_ERR_CORRUPT, "cannot open DuckDB file %s: %s", path, m);
        else
            rc = an_err_set(err, code, "cannot open DuckDB file %s: %s", path, m);
        duckdb_free(open_err);
        goto fail;
    }
    duckdb_destroy_config(&config);
    config = NULL;
    if (duckdb_connect(ds->db, &ds->con) == DuckDBError) {
        rc = an_err_set(err, AN_ERR_IO, "cannot connect to DuckDB file %s", path);
        duckdb_close(&ds->db);
        goto fail;
    }
    s->ops = &DUCK_OPS;
    s->mode = AN_STORE_DUCKDB;
    snprintf(s->describe, sizeof s->describe, "%s", path);
    s->impl = ds;
    AN_DEBUG(COMPONENT, "msg=\"opened\" mode=duckdb path=\"%s\"", path);
    return AN_OK;
fail:
    if (config)
        duckdb_destroy_config(&config);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
    return rc;
}
