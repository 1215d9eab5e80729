/*
 * tasks.c - the DuckDB backend's autonama.task_runs (schema v3) (range
 * deletes are in catalog.c). One process owns the file, so a slot
 * claim is checked under the store's lock instead of a UNIQUE constraint.
 * Any thread, under the store's lock; each statement binds exactly the
 * parameters it has.
 */
#include "store/duckdb/duck_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUCK_TS(n) "make_timestamp($" #n "::BIGINT * 1000)"

static const char TASK_COLS[] =
    "id, name, args, state, approach, meta, result, error, instance, symbol, slot,"
    " epoch_ms(created_at), epoch_ms(started_at), epoch_ms(finished_at), epoch_ms(heartbeat_at)";

static const char TASK_INSERT[] =
    "INSERT INTO autonama.task_runs (id, name, args, state, approach, meta, result, error,"
    " instance, symbol, slot, created_at, started_at, finished_at, heartbeat_at) VALUES ($1, $2,"
    " $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce(" DUCK_TS(
        12) ", current_timestamp::TIMESTAMP),"
            " " DUCK_TS(13) ", " DUCK_TS(14) ", " DUCK_TS(15) ")";

static int bind_task(duckdb_prepared_statement st, const void *ctx)
{
    const an_task_row *r = ctx;
    const char *text[11] = {r->id,     r->name,  r->args,     r->state,  r->approach, r->meta,
                            r->result, r->error, r->instance, r->symbol, r->slot};
    const int64_t ms[4] = {r->created_ms, r->started_ms, r->finished_ms, r->heartbeat_ms};
    for (idx_t i = 0; i < 11; i++)
        if (!an_duck_bind_text(st, i + 1, text[i]))
            return -1;
    for (idx_t i = 0; i < 4; i++)
        if (!an_duck_bind_ms(st, 12 + i, ms[i]))
            return -1;
    return 15;
}

/* $1 a text (NULL for NULL or ""), then n int64 values */
typedef struct text_ints {
    const char *text;
    int n;
    int64_t v[2];
} text_ints;

static int bind_text_ints(duckdb_prepared_statement st, const void *ctx)
{
    const text_ints *t = ctx;
    if (!an_duck_bind_text(st, 1, t->text))
        return -1;
    for (int i = 0; i < t->n; i++)
        if (duckdb_bind_int64(st, (idx_t)i + 2, t->v[i]) != DuckDBSuccess)
            return -1;
    return 1 + t->n;
}

static int bind_id_slot(duckdb_prepared_statement st, const void *ctx)
{
    const an_task_row *r = ctx;
    if (!an_duck_bind_text(st, 1, r->id) || duckdb_bind_varchar(st, 2, r->slot) != DuckDBSuccess)
        return -1;
    return 2;
}

typedef struct claim_job {
    const an_task_row *r;
    int *inserted;
} claim_job;

static an_code claim_job_run(duck_store *ds, void *ctx, an_err *err)
{
    claim_job *j = ctx;
    int64_t have = 1;
    int null;
    an_code rc =
        an_duck_query_int64_locked(ds,
                                   "SELECT count(*) FROM autonama.task_runs WHERE id = $1"
                                   " OR (slot IS NOT NULL AND slot = $2)",
                                   bind_id_slot, j->r, &have, &null, "claim task run", err);
    if (rc == AN_OK && have == 0 &&
        (rc = an_duck_run_locked(ds, TASK_INSERT, bind_task, j->r, NULL, NULL, NULL,
                                 "claim task run", err)) == AN_OK)
        *j->inserted = 1;
    return rc;
}

an_code an_duck_task_claim(an_store *s, const an_task_row *r, int *inserted, an_err *err)
{
    *inserted = 0;
    claim_job j = {r, inserted};
    return an_duck_with_lock(s->impl, claim_job_run, &j, err);
}

an_code an_duck_task_put(an_store *s, const an_task_row *r, an_err *err)
{
    char sql[1536];
    snprintf(sql, sizeof sql, "%s %s", TASK_INSERT, AN_TASK_REPLACE_SQL);
    return an_duck_run(s->impl, sql, bind_task, r, NULL, NULL, NULL, "save task run", err);
}

an_code an_duck_task_heartbeat(an_store *s, const char *id, int64_t now_ms, an_err *err)
{
    text_ints t = {id, 1, {now_ms}};
    return an_duck_run(s->impl,
                       "UPDATE autonama.task_runs SET heartbeat_at = " DUCK_TS(
                           2) " WHERE id = $1 AND state IN ('PENDING', 'PROGRESS')",
                       bind_text_ints, &t, NULL, NULL, NULL, "task heartbeat", err);
}

an_code an_duck_task_get(an_store *s, const char *id, an_task_row *row, int *found, an_err *err)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT %s FROM autonama.task_runs WHERE id = $1", TASK_COLS);
    text_ints t = {id, 0, {0}};
    an_store_one one = {&AN_TASK_FIELDS, row, found};
    return an_duck_run(s->impl, sql, bind_text_ints, &t, an_duck_read_one, &one, NULL,
                       "read task run", err);
}

an_code an_duck_task_list(an_store *s, const char *name, size_t limit, an_task_row **out, size_t *n,
                          an_err *err)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM autonama.task_runs WHERE ($1::VARCHAR IS NULL OR name = $1)"
             " ORDER BY created_at DESC, id DESC LIMIT $2",
             TASK_COLS);
    text_ints t = {name, 1, {(int64_t)limit}};
    an_store_rows rows = {&AN_TASK_FIELDS, sizeof **out, "list task runs", NULL, 0};
    an_code rc = an_duck_run(s->impl, sql, bind_text_ints, &t, an_duck_read_rows, &rows, NULL,
                             rows.what, err);
    *out = rows.v;
    *n = rows.n;
    return rc;
}

an_code an_duck_task_interrupt(an_store *s, const char *instance, int64_t stale_before_ms,
                               int64_t now_ms, int *n, an_err *err)
{
    text_ints t = {instance, 2, {stale_before_ms, now_ms}};
    int64_t changed = 0;
    an_code rc = an_duck_run(
        s->impl,
        "UPDATE autonama.task_runs SET state = 'INTERRUPTED', finished_at = " DUCK_TS(
            3) ", error = coalesce(error, 'interrupted: its instance stopped (no heartbeat)')"
               " WHERE state IN ('PENDING', 'PROGRESS') AND (instance = $1 OR"
               " coalesce(heartbeat_at, created_at) < " DUCK_TS(2) ")",
        bind_text_ints, &t, NULL, NULL, &changed, "interrupt stale task runs", err);
    *n = (int)changed;
    return rc;
}

an_code an_duck_task_delete(an_store *s, const char *id, an_err *err)
{
    text_ints t = {id, 0, {0}};
    return an_duck_run(s->impl, "DELETE FROM autonama.task_runs WHERE id = $1", bind_text_ints, &t,
                       NULL, NULL, NULL, "delete task run", err);
}
