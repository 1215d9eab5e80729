/*
 * conn.c - the DuckDB backend's statements: error mapping, running SQL on a
 * connection under the thread's deadline (an_duck_run_on, which also checks
 * that each statement binds exactly the parameters it has), and the
 * lock-run-unlock helpers every write goes through (an_duck_run,
 * an_duck_with_lock) on the store's locked connection; reads borrow their
 * own (readers.c). Any thread; a function suffixed _locked needs ds->lock
 * held.
 */
#include "store/duckdb/duck_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const AN_DUCK_COMPONENT = "store";

/* ---- errors ------------------------------------------------------------- */

void an_duck_one_line(char *out, size_t len, const char *msg)
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

an_code an_duck_error(duckdb_error_type type, const char *msg, const char *what, an_err *err)
{
    char line[AN_ERR_MSG_MAX];
    an_duck_one_line(line, sizeof line, msg);
    an_code code = code_for(type, msg);
    if (code == AN_ERR_SCHEMA)
        return an_err_set(err, code, "%s: %s: run `autonama migrate`", what, line);
    return an_err_set(err, code, "%s: %s", what, line);
}

static an_code result_error(duckdb_result *r, const char *what, an_err *err)
{
    return an_duck_error(duckdb_result_error_type(r), duckdb_result_error(r), what, err);
}

an_code an_duck_appender_error(duckdb_appender app, const char *what, an_err *err)
{
    duckdb_error_data e = duckdb_appender_error_data(app);
    an_code rc =
        an_duck_error(duckdb_error_data_error_type(e), duckdb_error_data_message(e), what, err);
    duckdb_destroy_error_data(&e);
    return rc;
}

/* ---- statements --------------------------------------------------------- */

an_code an_duck_exec_locked(duck_store *ds, const char *sql, const char *what, an_err *err)
{
    duckdb_result r;
    an_code rc = AN_OK;
    if (duckdb_query(ds->by_lock.con, sql, &r) != DuckDBSuccess)
        rc = result_error(&r, what, err);
    duckdb_destroy_result(&r);
    return rc;
}

void an_duck_rollback_locked(duck_store *ds)
{
    duckdb_result r;
    duckdb_query(ds->by_lock.con, "ROLLBACK", &r);
    duckdb_destroy_result(&r);
}

static an_code prepare(duckdb_connection con, const char *sql, duckdb_prepared_statement *st,
                       const char *what, an_err *err)
{
    if (duckdb_prepare(con, sql, st) == DuckDBSuccess)
        return AN_OK;
    /* a prepare error has no type: classify by DuckDB's own prefix */
    const char *msg = duckdb_prepare_error(*st);
    duckdb_error_type type = DUCKDB_ERROR_INVALID;
    if (msg && strncmp(msg, "Catalog Error", 13) == 0)
        type = DUCKDB_ERROR_CATALOG;
    an_code rc = an_duck_error(type, msg, what, err);
    duckdb_destroy_prepare(st);
    *st = NULL;
    return rc;
}

an_code an_duck_first_row(duckdb_result *r, idx_t ncols, int64_t *v, int *null, const char *what,
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

typedef struct int64_out {
    int64_t *v;
    int *null;
    const char *what;
} int64_out;

static an_code read_int64(duckdb_result *r, void *ctx, an_err *err)
{
    int64_out *o = ctx;
    return an_duck_first_row(r, 1, o->v, o->null, o->what, err);
}

an_code an_duck_query_int64_on(duckdb_connection con, const char *sql, an_duck_binder bind,
                               const void *bctx, int64_t *v, int *null, const char *what,
                               an_err *err)
{
    int64_out o = {v, null, what};
    return an_duck_run_on(con, sql, bind, bctx, read_int64, &o, NULL, what, err);
}

an_code an_duck_query_int64_locked(duck_store *ds, const char *sql, an_duck_binder bind,
                                   const void *bctx, int64_t *v, int *null, const char *what,
                                   an_err *err)
{
    return an_duck_query_int64_on(ds->by_lock.con, sql, bind, bctx, v, null, what, err);
}

/* duckdb_execute_prepared under the thread's deadline (store.h): the
 * statement runs task by task and is interrupted at the deadline, on con,
 * the connection it runs on (another reader's statement runs on). */
static duckdb_state execute(duckdb_connection con, duckdb_prepared_statement st, duckdb_result *r,
                            int *timed_out)
{
    if (an_store_deadline() <= 0)
        return duckdb_execute_prepared(st, r);
    duckdb_pending_result pr;
    if (duckdb_pending_prepared(st, &pr) != DuckDBSuccess) {
        duckdb_destroy_pending(&pr);
        return duckdb_execute_prepared(st, r); /* reports the error */
    }
    duckdb_pending_state ps;
    while ((ps = duckdb_pending_execute_task(pr)) != DUCKDB_PENDING_RESULT_READY &&
           ps != DUCKDB_PENDING_ERROR) {
        if (an_store_deadline_passed()) {
            duckdb_interrupt(con);
            *timed_out = 1;
            break;
        }
        if (ps == DUCKDB_PENDING_NO_TASKS_AVAILABLE) /* other threads work: no spinning */
            nanosleep(&(struct timespec){0, 1000000L}, NULL);
    }
    duckdb_state s = duckdb_execute_pending(pr, r);
    duckdb_destroy_pending(&pr);
    return s;
}

an_code an_duck_run_on(duckdb_connection con, const char *sql, an_duck_binder bind,
                       const void *bctx, an_duck_reader read, void *rctx, int64_t *changed,
                       const char *what, an_err *err)
{
    duckdb_prepared_statement st = NULL;
    duckdb_result r;
    int timed_out = 0;
    an_code rc = prepare(con, sql, &st, what, err);
    if (rc != AN_OK)
        return rc;
    int bound = bind ? bind(st, bctx) : 0;
    if (bound < 0) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "%s: cannot bind parameters", what);
    } else if ((idx_t)bound != duckdb_nparams(st)) {
        rc = an_err_set(err, AN_ERR_INTERNAL, "%s: the statement has %llu parameters, %d bound",
                        what, (unsigned long long)duckdb_nparams(st), bound);
    } else if (execute(con, st, &r, &timed_out) != DuckDBSuccess) {
        rc = timed_out ? an_err_set(err, AN_ERR_TIMEOUT,
                                    "%s: interrupted at the request's query timeout", what)
                       : result_error(&r, what, err);
        duckdb_destroy_result(&r);
    } else {
        if (read)
            rc = read(&r, rctx, err);
        if (rc == AN_OK && changed)
            *changed = (int64_t)duckdb_rows_changed(&r);
        duckdb_destroy_result(&r);
    }
    duckdb_destroy_prepare(&st);
    return rc;
}

an_code an_duck_run_locked(duck_store *ds, const char *sql, an_duck_binder bind, const void *bctx,
                           an_duck_reader read, void *rctx, int64_t *changed, const char *what,
                           an_err *err)
{
    return an_duck_run_on(ds->by_lock.con, sql, bind, bctx, read, rctx, changed, what, err);
}

an_code an_duck_run(duck_store *ds, const char *sql, an_duck_binder bind, const void *bctx,
                    an_duck_reader read, void *rctx, int64_t *changed, const char *what,
                    an_err *err)
{
    pthread_mutex_lock(&ds->lock);
    an_code rc = an_duck_run_locked(ds, sql, bind, bctx, read, rctx, changed, what, err);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

an_code an_duck_with_lock(duck_store *ds, an_duck_job job, void *ctx, an_err *err)
{
    pthread_mutex_lock(&ds->lock);
    an_code rc = job(ds, ctx, err);
    pthread_mutex_unlock(&ds->lock);
    return rc;
}

/* ---- binding and reading values ----------------------------------------- */

int an_duck_bind_text(duckdb_prepared_statement st, idx_t i, const char *v)
{
    return (v && *v ? duckdb_bind_varchar(st, i, v) : duckdb_bind_null(st, i)) == DuckDBSuccess;
}

int an_duck_bind_ms(duckdb_prepared_statement st, idx_t i, int64_t ms)
{
    return (ms ? duckdb_bind_int64(st, i, ms) : duckdb_bind_null(st, i)) == DuckDBSuccess;
}

int an_duck_bind_key(duckdb_prepared_statement st, const void *ctx)
{
    const an_duck_key *k = ctx;
    if (duckdb_bind_varchar(st, 1, k->symbol) != DuckDBSuccess ||
        duckdb_bind_varchar(st, 2, k->tf) != DuckDBSuccess)
        return -1;
    return 2;
}

/* A cell as text (out gets "" for NULL), or as a malloc'd copy (NULL for NULL). */
static void copy_value(duckdb_result *r, idx_t col, idx_t row, char *out, size_t len)
{
    char *v = duckdb_value_is_null(r, col, row) ? NULL : duckdb_value_varchar(r, col, row);
    snprintf(out, len, "%s", v ? v : "");
    duckdb_free(v);
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

/* ---- reading whole chunks ------------------------------------------------ */

an_code an_duck_each_chunk(duckdb_result *r, an_duck_chunk_fn fn, void *ctx, an_err *err)
{
    an_code rc = AN_OK;
    duckdb_data_chunk chunk;
    while (rc == AN_OK && (chunk = duckdb_fetch_chunk(*r)) != NULL) {
        rc = fn(chunk, duckdb_data_chunk_get_size(chunk), ctx, err);
        duckdb_destroy_data_chunk(&chunk);
    }
    return rc;
}

void *an_duck_column(duckdb_data_chunk chunk, idx_t col)
{
    return duckdb_vector_get_data(duckdb_data_chunk_get_vector(chunk, col));
}

/* ---- reading rows into structs (rows.c's field tables) ------------------ */

static void fill_fields(const void *res, size_t row, const an_fields *f, void *elem)
{
    duckdb_result *r = (duckdb_result *)res;
    for (idx_t c = 0; c < f->n; c++) {
        const an_field *fd = &f->v[c];
        char *p = (char *)elem + fd->offset;
        int null = duckdb_value_is_null(r, c, row);
        if (fd->kind == AN_FIELD_TEXT) {
            copy_value(r, c, row, p, fd->size);
        } else if (fd->kind == AN_FIELD_TEXT_DUP) {
            char *d = value_or_null(r, c, row);
            memcpy(p, &d, sizeof d);
        } else if (fd->kind == AN_FIELD_INT64) {
            int64_t v = null ? 0 : duckdb_value_int64(r, c, row);
            memcpy(p, &v, sizeof v);
        } else {
            char text[24];
            copy_value(r, c, row, text, sizeof text);
            uint64_t v = strtoull(text, NULL, 10);
            memcpy(p, &v, sizeof v);
        }
    }
}

an_code an_duck_read_rows(duckdb_result *r, void *ctx, an_err *err)
{
    return an_store_read_rows(ctx, r, duckdb_row_count(r), fill_fields, err);
}

an_code an_duck_read_one(duckdb_result *r, void *ctx, an_err *err)
{
    (void)err;
    an_store_read_one(ctx, r, duckdb_row_count(r) > 0 && !duckdb_value_is_null(r, 0, 0),
                      fill_fields);
    return AN_OK;
}

an_code an_duck_read_key_one(duck_store *ds, const char *sql, const char *symbol, const char *tf,
                             const an_fields *fields, void *elem, int *found, const char *what,
                             an_err *err)
{
    an_duck_key key = {symbol, tf};
    an_store_one one = {fields, elem, found};
    return an_duck_read(ds, sql, an_duck_bind_key, &key, an_duck_read_one, &one, what, err);
}

int64_t an_duck_us_to_ms(int64_t us)
{
    return us / 1000 - (us % 1000 < 0); /* floor: exact for whole ms */
}
