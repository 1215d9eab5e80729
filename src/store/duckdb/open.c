/*
 * open.c - opening and closing the embedded DuckDB store: the checks that
 * give clear errors before DuckDB would (directory, permissions, an empty
 * file, a file name that clashes with a schema), the process-wide instance
 * cache (two handles on one file share one database instead of opening it
 * twice, which DuckDB allows and which can corrupt it), the ops table.
 * Called by whichever thread opens or closes the store.
 *
 * Timestamps are plain TIMESTAMP columns holding UTC (DuckDB's TIMESTAMPTZ
 * would bucket the rollups by the session's time zone); an_candle.ts in ms
 * maps to TIMESTAMP micros exactly (ms * 1000). The 1h/1d rollups are views
 * over the 1m candles.
 */
#include "store/duckdb/duck_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "store/store_duckdb.h"

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static duckdb_instance_cache cache; /* process-wide; lives until exit */

static void cache_init(void)
{
    cache = duckdb_create_instance_cache();
}

duckdb_database an_duckdb_store_database(an_store *s)
{
    if (!s || s->mode != AN_STORE_DUCKDB || !s->impl)
        return NULL;
    return ((duck_store *)s->impl)->db;
}

/* A store's memory and locks, with nothing connected (calloc'd). */
static duck_store *new_store(void)
{
    duck_store *ds = calloc(1, sizeof *ds);
    if (!ds)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the deadline's clock */
    pthread_cond_init(&ds->readers_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&ds->readers_mu, NULL);
    pthread_mutex_init(&ds->lock, NULL);
    return ds;
}

static void free_store(duck_store *ds)
{
    pthread_cond_destroy(&ds->readers_cond);
    pthread_mutex_destroy(&ds->readers_mu);
    pthread_mutex_destroy(&ds->lock);
    free(ds);
}

static void duck_close(an_store *s)
{
    duck_store *ds = s->impl;
    if (!ds)
        return;
    an_duck_readers_close(ds);
    duckdb_disconnect(&ds->by_lock.con);
    duckdb_close(&ds->db);
    free_store(ds);
    s->impl = NULL;
}

#define AN_DUCK_OP(op) .op = an_duck_##op,
static const an_store_ops DUCK_OPS = {.close = duck_close,
                                      /* and every op of AN_STORE_OPS: an_duck_OP */
                                      AN_STORE_OPS(AN_DUCK_OP)};

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
static an_code check_file(const char *path, int read_only, an_err *err)
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
        if (read_only)
            return AN_OK; /* nothing is written: the file need only be readable */
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
            AN_INFO(AN_DUCK_COMPONENT,
                    "msg=\"empty file: creating a new DuckDB database\" path=\"%s\"", path);
            if (unlink(path) != 0)
                return fs_error(errno, "cannot replace the empty file", path, err);
        }
    } else if (errno != ENOENT) {
        return fs_error(errno, "cannot open the DuckDB file", path, err);
    } else if (read_only) {
        return an_err_set(err, AN_ERR_NOT_FOUND, "DuckDB file %s does not exist", path);
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
    an_duck_one_line(line, sizeof line, msg);
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
    if (opt->duckdb_readers < 0 || opt->duckdb_readers > AN_DUCK_READERS_MAX)
        return an_err_set(err, AN_ERR_INVALID,
                          "AUTONAMA_DUCKDB_READERS is %d: the DuckDB store's read connections "
                          "must be 1 to %d",
                          opt->duckdb_readers, AN_DUCK_READERS_MAX);
    int memory = strcmp(path, ":memory:") == 0;
    if (path[strlen(path) - 1] == '/')
        return an_err_set(err, AN_ERR_INVALID, "DUCKDB_PATH %s names a directory, not a file",
                          path);
    if (!memory) {
        if ((rc = check_catalog_name(path, err)) != AN_OK)
            return rc;
        if (!opt->read_only && (rc = make_parents(path, err)) != AN_OK)
            return rc;
        if ((rc = check_file(path, opt->read_only, err)) != AN_OK)
            return rc;
        if ((rc = absolute(path, abs, sizeof abs, err)) != AN_OK)
            return rc;
    }
    duck_store *ds = new_store();
    if (!ds)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory opening %s", path);
    if (duckdb_create_config(&cfg) != DuckDBSuccess) {
        rc = an_err_set(err, AN_ERR_NOMEM, "out of memory opening %s", path);
        goto fail;
    }
    /* no network here: never download an extension behind the user's back */
    if (duckdb_set_config(cfg, "autoinstall_known_extensions", "false") != DuckDBSuccess) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "DuckDB refused autoinstall_known_extensions=false");
        goto fail;
    }
    if (opt->read_only && !memory &&
        duckdb_set_config(cfg, "access_mode", "READ_ONLY") != DuckDBSuccess) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "DuckDB refused access_mode=READ_ONLY");
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
    if (duckdb_connect(ds->db, &ds->by_lock.con) != DuckDBSuccess) {
        rc = an_err_set(err, AN_ERR_IO, "cannot connect to the DuckDB database %s", path);
        goto fail;
    }
    /* belt and braces (settings of a cached database are not ours alone) */
    if ((rc = an_duck_exec_locked(ds, "SET autoinstall_known_extensions = false", path, err)) !=
        AN_OK)
        goto fail;
    /* current_timestamp defaults are stored as UTC wall-clock time */
    an_err tz_err;
    if (an_duck_exec_locked(ds, "SET TimeZone = 'UTC'", path, &tz_err) != AN_OK)
        AN_DEBUG(AN_DUCK_COMPONENT, "msg=\"cannot set TimeZone (no ICU)\" path=\"%s\"", path);
    if (!opt->read_only && (rc = an_duck_exec_locked(ds, AN_DUCK_STAGE_SQL, path, err)) != AN_OK)
        goto fail;
    const int readers = opt->duckdb_readers ? opt->duckdb_readers : AN_DUCK_READERS_DEFAULT;
    if ((rc = an_duck_readers_open(ds, readers, path, err)) != AN_OK)
        goto fail;
    duckdb_destroy_config(&cfg);
    snprintf(s->describe, sizeof s->describe, "%s", path);
    s->ops = &DUCK_OPS;
    s->mode = AN_STORE_DUCKDB;
    s->impl = ds;
    AN_INFO(AN_DUCK_COMPONENT, "msg=\"opened\" mode=duckdb path=\"%s\" duckdb=%s readers=%d", path,
            duckdb_library_version(), readers);
    return AN_OK;
fail:
    if (open_err)
        duckdb_free(open_err);
    if (cfg)
        duckdb_destroy_config(&cfg);
    an_duck_readers_close(ds);
    if (ds->by_lock.con)
        duckdb_disconnect(&ds->by_lock.con);
    if (ds->db)
        duckdb_close(&ds->db);
    free_store(ds);
    return rc;
}
