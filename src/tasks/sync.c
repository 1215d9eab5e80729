/*
 * sync.c - moving a store's data into another (see sync.h).
 */
#include "tasks/sync.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/utf8.h"
#include "tasks/tasks_internal.h"

static const char *COMPONENT = "sync";

#define CANDLE_BATCH 50000
#define IND_WINDOW_MS (3LL * 86400000) /* ~4,300 1m candles x the indicators */

static void add_counts(an_upsert_counts *to, const an_upsert_counts *k)
{
    to->inserted += k->inserted;
    to->updated += k->updated;
    to->unchanged += k->unchanged;
}

/* A series' rows of table are all in dst: with move they leave src too;
 * *series counts the series. */
static an_code series_done(an_store *src, const char *table, const an_series_info *si, int move,
                           int64_t *series, an_err *err)
{
    an_code rc = move ? an_store_delete_range(src, table, si->symbol, si->timeframe, si->first_ms,
                                              si->last_ms, err)
                      : AN_OK;
    if (rc == AN_OK)
        (*series)++;
    return rc;
}

static an_code move_candles(an_store *src, an_store *dst, const an_series_info *si, int move,
                            an_sync_stats *st, an_err *err)
{
    an_candles c = {0};
    an_code rc = AN_OK;
    an_query q = an_query_all();
    q.limit = CANDLE_BATCH;
    for (;;) {
        c.n = 0;
        if ((rc = an_store_get_ohlc(src, si->symbol, si->timeframe, &q, &c, err)) != AN_OK ||
            c.n == 0)
            break;
        an_upsert_counts k = {0};
        if ((rc = an_store_insert_ohlc(dst, si->symbol, si->timeframe, c.v, c.n, &k, err)) != AN_OK)
            break;
        st->candles += (int64_t)c.n;
        add_counts(&st->candle_counts, &k);
        q.start_ms = c.v[c.n - 1].ts + 1;
        if (c.n < CANDLE_BATCH)
            break;
    }
    an_candles_free(&c);
    return rc == AN_OK ? series_done(src, "ohlc_data", si, move, &st->series, err) : rc;
}

/* One window of indicator rows as a batch (rows come ordered by name, time). */
static an_code send_indicators(an_store *dst, const an_series_info *si,
                               const an_indicator_points *p, an_sync_stats *st, an_err *err)
{
    const char **names = NULL;
    int n_names = 0;
    int64_t *ts = malloc(p->n * sizeof *ts);
    int *idx = malloc(p->n * sizeof *idx);
    double *val = malloc(p->n * sizeof *val);
    names = malloc(p->n * sizeof *names);
    an_code rc = AN_OK;
    if (!ts || !idx || !val || !names) {
        rc = an_err_set(err, AN_ERR_NOMEM, "sync: out of memory");
        goto out;
    }
    for (size_t i = 0; i < p->n; i++) {
        if (n_names == 0 || strcmp(names[n_names - 1], p->v[i].name) != 0)
            names[n_names++] = p->v[i].name;
        ts[i] = p->v[i].ts;
        idx[i] = n_names - 1;
        val[i] = p->v[i].value;
    }
    an_indicator_batch b = {names, n_names, ts, idx, val, p->n};
    an_upsert_counts k = {0};
    rc = an_store_upsert_indicators(dst, si->symbol, si->timeframe, &b, &k, err);
    if (rc == AN_OK) {
        st->indicators += (int64_t)p->n;
        add_counts(&st->indicator_counts, &k);
    }
out:
    free(ts);
    free(idx);
    free(val);
    free(names);
    return rc;
}

static an_code move_indicators(an_store *src, an_store *dst, const an_series_info *si, int move,
                               an_sync_stats *st, an_err *err)
{
    an_code rc = AN_OK;
    for (int64_t from = si->first_ms; rc == AN_OK && from <= si->last_ms; from += IND_WINDOW_MS) {
        an_indicator_points p = {0};
        an_query q = an_query_all();
        q.start_ms = from;
        q.end_ms = from + IND_WINDOW_MS;
        rc = an_store_get_indicators(src, si->symbol, si->timeframe, NULL, &q, &p, err);
        if (rc == AN_OK && p.n > 0)
            rc = send_indicators(dst, si, &p, st, err);
        an_indicator_points_free(&p);
    }
    if (rc == AN_OK) {
        /* the next indicator run on dst recomputes and compares everything */
        an_indicator_run reset = {0};
        snprintf(reset.spec, sizeof reset.spec, "replayed");
        rc = an_store_put_indicator_run(dst, si->symbol, si->timeframe, &reset, err);
    }
    return rc == AN_OK ? series_done(src, "indicators", si, move, &st->indicator_series, err) : rc;
}

/* One run into dst. A schedule slot the destination holds under another run
 * (another instance claimed that period while this one ran on its fallback)
 * stays the destination's: the run is kept under its own id, without the
 * slot. */
static an_code put_task(an_store *dst, an_task_row *r, an_sync_stats *st, an_err *err)
{
    an_code rc = an_store_task_put(dst, r, err);
    if (rc != AN_OK && r->slot[0] && !an_tasks_is_outage(rc)) {
        char slot[sizeof r->slot];
        snprintf(slot, sizeof slot, "%s", r->slot);
        r->slot[0] = '\0';
        an_err e2 = {0};
        if ((rc = an_store_task_put(dst, r, &e2)) == AN_OK) {
            AN_WARN(COMPONENT,
                    "msg=\"schedule slot held by another run: run kept without it\" id=%s "
                    "slot=\"%s\"",
                    r->id, slot);
            st->tasks_unslotted++;
        }
    }
    return rc;
}

/* Task runs one by one: a run the destination refuses (not an outage) is
 * reported, left in the source and skipped, so one bad row never blocks the
 * replay; an outage stops it (the next replay goes on). */
static an_code move_tasks(an_store *src, an_store *dst, int move, an_sync_stats *st, an_err *err)
{
    an_task_row *rows = NULL;
    size_t n = 0;
    an_code rc = an_store_task_list(src, NULL, 1000000, &rows, &n, err);
    for (size_t i = 0; rc == AN_OK && i < n; i++) {
        an_err e = {0};
        an_code r1 = put_task(dst, &rows[i], st, &e);
        if (r1 != AN_OK && !an_tasks_is_outage(r1)) {
            AN_WARN(COMPONENT,
                    "msg=\"task run refused by the target: kept in the source\" id=%s name=%s "
                    "error=\"%s\"",
                    rows[i].id, rows[i].name, e.msg);
            if (st->tasks_kept == 0) {
                snprintf(st->kept_error, sizeof st->kept_error, "%.64s: %.400s", rows[i].id, e.msg);
                an_utf8_fix(st->kept_error, sizeof st->kept_error); /* cut on a character */
            }
            st->tasks_kept++;
            continue;
        }
        if (r1 != AN_OK) {
            *err = e;
            rc = r1;
            break;
        }
        if (move)
            rc = an_store_task_delete(src, rows[i].id, err);
        if (rc == AN_OK)
            st->tasks++;
    }
    for (size_t i = 0; i < n; i++)
        an_task_row_free(&rows[i]);
    free(rows);
    return rc;
}

an_code an_sync_stores(an_store *src, an_store *dst, int move, an_sync_stats *st, an_err *err)
{
    memset(st, 0, sizeof *st);
    an_series_info *series = NULL, *ind = NULL;
    size_t ns = 0, ni = 0;
    an_code rc = an_store_list_series(src, &series, &ns, err);
    for (size_t i = 0; rc == AN_OK && i < ns; i++)
        rc = move_candles(src, dst, &series[i], move, st, err);
    if (rc == AN_OK) {
        an_err e = {0};
        an_code r2 = an_store_list_indicator_series(src, &ind, &ni, &e);
        if (r2 == AN_ERR_SCHEMA)
            AN_INFO(COMPONENT, "msg=\"source has no analytics.indicators\" source=\"%s\"",
                    an_store_describe(src));
        else if (r2 != AN_OK) {
            *err = e;
            rc = r2;
        }
    }
    for (size_t i = 0; rc == AN_OK && i < ni; i++)
        rc = move_indicators(src, dst, &ind[i], move, st, err);
    if (rc == AN_OK) {
        an_err e = {0};
        an_code r2 = move_tasks(src, dst, move, st, &e);
        if (r2 == AN_ERR_SCHEMA)
            AN_INFO(COMPONENT, "msg=\"source has no autonama.task_runs\" source=\"%s\"",
                    an_store_describe(src));
        else if (r2 != AN_OK) {
            *err = e;
            rc = r2;
        }
    }
    free(series);
    free(ind);
    AN_LOG(rc == AN_OK ? AN_LOG_INFO : AN_LOG_WARN, COMPONENT,
           "msg=\"%s\" source=\"%s\" target=%s series=%" PRId64 " candles=%" PRId64
           " inserted=%" PRId64 " indicator_series=%" PRId64 " indicators=%" PRId64
           " tasks=%" PRId64 " tasks_kept=%" PRId64 " move=%d",
           rc == AN_OK ? "synced" : "sync failed", an_store_describe(src), an_store_describe(dst),
           st->series, st->candles, st->candle_counts.inserted, st->indicator_series,
           st->indicators, st->tasks, st->tasks_kept, move);
    return rc;
}

an_code an_sync_pending(an_store *src, int *pending, an_err *err)
{
    *pending = 0;
    an_series_info *s = NULL;
    size_t n = 0;
    an_code rc = an_store_list_series(src, &s, &n, err);
    free(s);
    if (rc != AN_OK || n > 0) {
        *pending = n > 0;
        return rc;
    }
    an_err e = {0};
    if (an_store_list_indicator_series(src, &s, &n, &e) == AN_OK && n > 0)
        *pending = 1;
    free(s);
    an_task_row *rows = NULL;
    size_t nt = 0;
    if (!*pending && an_store_task_list(src, NULL, 1, &rows, &nt, &e) == AN_OK && nt > 0)
        *pending = 1;
    for (size_t i = 0; i < nt; i++)
        an_task_row_free(&rows[i]);
    free(rows);
    return AN_OK;
}
