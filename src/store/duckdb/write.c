/*
 * write.c - the DuckDB backend's one write path, shared by candles and
 * indicators: in one transaction under the store's lock, the rows go
 * through an appender into a TEMP staging table; one query counts how many
 * of their keys exist and how many of those differ; then a plain INSERT
 * when none exists (no conflict handling needed), else an upsert that
 * leaves unchanged rows alone (no new row version, no WAL); a candle write
 * adds what it inserted to the series catalog (catalog.c); the stage is
 * emptied and the transaction committed. Any thread.
 */
#include "store/duckdb/duck_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct found_out {
    int64_t v[2];
    int null[2];
    const char *what;
} found_out;

static an_code read_found(duckdb_result *r, void *ctx, an_err *err)
{
    found_out *o = ctx;
    return an_duck_first_row(r, 2, o->v, o->null, o->what, err);
}

static an_code stage_locked(duck_store *ds, const an_duck_write *w, an_err *err)
{
    duckdb_appender app = NULL;
    an_code rc = AN_OK;
    if (duckdb_appender_create_ext(ds->by_lock.con, "temp", "main", w->stage_table, &app) !=
        DuckDBSuccess) {
        rc = app ? an_duck_appender_error(app, w->what, err)
                 : an_err_set(err, AN_ERR_INTERNAL, "%s: cannot create an appender", w->what);
    } else if ((rc = w->stage(app, w->stage_ctx, err)) == AN_OK &&
               duckdb_appender_close(app) != DuckDBSuccess) {
        rc = an_duck_appender_error(app, w->what, err);
    }
    /* on failure the caller rolls back whatever reached the staging table */
    if (app)
        duckdb_appender_destroy(&app);
    return rc;
}

static an_code write_locked(duck_store *ds, const an_duck_write *w, an_upsert_counts *counts,
                            an_err *err)
{
    found_out f = {.what = w->what};
    an_code rc = an_duck_exec_locked(ds, "BEGIN TRANSACTION", w->what, err);
    if (rc == AN_OK)
        rc = stage_locked(ds, w, err);
    if (rc == AN_OK)
        rc = an_duck_run_locked(ds, w->count_sql, w->bind_count, w->bctx, read_found, &f, NULL,
                                w->what, err);
    if (rc != AN_OK)
        return rc;
    counts->inserted = (int64_t)w->rows - f.v[0];
    counts->updated = f.v[1];
    counts->unchanged = f.v[0] - f.v[1];
    if (counts->inserted + counts->updated > 0) {
        int64_t written = 0;
        rc = an_duck_run_locked(ds, f.v[0] == 0 ? w->insert_sql : w->upsert_sql, w->bind_write,
                                w->bctx, NULL, NULL, &written, w->what, err);
        if (rc != AN_OK)
            return rc;
        if (written != counts->inserted + counts->updated)
            return an_err_set(err, AN_ERR_INTERNAL, "%s: wrote %" PRId64 " rows, expected %" PRId64,
                              w->what, written, counts->inserted + counts->updated);
    }
    if (w->symbol && (rc = an_duck_catalog_after_write(ds, w->symbol, w->tf, w->lo_ms, w->hi_ms,
                                                       counts->inserted, err)) != AN_OK)
        return rc;
    char sql[64];
    snprintf(sql, sizeof sql, "DELETE FROM temp.%s", w->stage_table);
    if ((rc = an_duck_exec_locked(ds, sql, w->what, err)) != AN_OK)
        return rc;
    return an_duck_exec_locked(ds, "COMMIT", w->what, err);
}

an_code an_duck_write_rows(duck_store *ds, const an_duck_write *w, an_upsert_counts *counts,
                           an_err *err)
{
    pthread_mutex_lock(&ds->lock);
    an_code rc = write_locked(ds, w, counts, err);
    if (rc != AN_OK) {
        an_duck_rollback_locked(ds);
        memset(counts, 0, sizeof *counts);
    }
    pthread_mutex_unlock(&ds->lock);
    return rc;
}
