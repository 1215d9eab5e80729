/*
 * rows.c - how both store backends read result rows into structs: the field
 * tables of the structs they return (task runs, series, indicator runs),
 * the array and single-row readers built on a backend's cell getter, and
 * the growth of indicator points. Owns no state; any thread.
 */
#include "store/store_impl.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define TEXT(type, f)                                                                              \
    {                                                                                              \
        AN_FIELD_TEXT, offsetof(type, f), sizeof(((type *)0)->f)                                   \
    }
#define DUP(type, f)                                                                               \
    {                                                                                              \
        AN_FIELD_TEXT_DUP, offsetof(type, f), 0                                                    \
    }
#define INT64(type, f)                                                                             \
    {                                                                                              \
        AN_FIELD_INT64, offsetof(type, f), 0                                                       \
    }

static const an_field TASK[] = {
    TEXT(an_task_row, id),
    TEXT(an_task_row, name),
    DUP(an_task_row, args),
    TEXT(an_task_row, state),
    TEXT(an_task_row, approach),
    DUP(an_task_row, meta),
    DUP(an_task_row, result),
    TEXT(an_task_row, error),
    TEXT(an_task_row, instance),
    TEXT(an_task_row, symbol),
    TEXT(an_task_row, slot),
    INT64(an_task_row, created_ms),
    INT64(an_task_row, started_ms),
    INT64(an_task_row, finished_ms),
    INT64(an_task_row, heartbeat_ms),
};
const an_fields AN_TASK_FIELDS = {TASK, sizeof TASK / sizeof TASK[0]};

static const an_field SERIES[] = {
    TEXT(an_series_info, symbol),    TEXT(an_series_info, timeframe),
    INT64(an_series_info, first_ms), INT64(an_series_info, last_ms),
    INT64(an_series_info, rows),
};
const an_fields AN_SERIES_FIELDS = {SERIES, sizeof SERIES / sizeof SERIES[0]};

static const an_field RUN[] = {
    TEXT(an_indicator_run, spec),
    INT64(an_indicator_run, through_ms),
    INT64(an_indicator_run, candles),
    {AN_FIELD_UINT64_TEXT, offsetof(an_indicator_run, digest), 0},
};
const an_fields AN_RUN_FIELDS = {RUN, sizeof RUN / sizeof RUN[0]};

static const an_field TEXT_DUP_ONLY[] = {{AN_FIELD_TEXT_DUP, 0, 0}};
const an_fields AN_TEXT_DUP_FIELDS = {TEXT_DUP_ONLY, 1};

static const an_field INT64_ONLY[] = {{AN_FIELD_INT64, 0, 0}};
const an_fields AN_INT64_FIELDS = {INT64_ONLY, 1};

an_code an_store_read_rows(an_store_rows *rows, const void *res, size_t n, an_fill_fn fill,
                           an_err *err)
{
    rows->v = NULL;
    rows->n = 0;
    if (n == 0)
        return AN_OK;
    if (!(rows->v = calloc(n, rows->size)))
        return an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", rows->what);
    for (size_t i = 0; i < n; i++)
        fill(res, i, rows->fields, (char *)rows->v + i * rows->size);
    rows->n = n;
    return AN_OK;
}

void an_store_read_one(an_store_one *one, const void *res, int have_row, an_fill_fn fill)
{
    if (!have_row)
        return;
    fill(res, 0, one->fields, one->elem);
    *one->found = 1;
}

an_code an_store_points_push(an_indicator_points *out, int64_t ts, const char *name,
                             size_t name_len, double value, an_err *err)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 1024;
        an_indicator_point *v = realloc(out->v, cap * sizeof *v);
        if (!v)
            return an_err_set(err, AN_ERR_NOMEM, "get indicators: out of memory");
        out->v = v;
        out->cap = cap;
    }
    an_indicator_point *pt = &out->v[out->n++];
    pt->ts = ts;
    if (name_len >= sizeof pt->name)
        name_len = sizeof pt->name - 1;
    memcpy(pt->name, name, name_len);
    pt->name[name_len] = '\0';
    pt->value = value;
    return AN_OK;
}
