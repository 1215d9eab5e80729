/*
 * realtime_write.c - the live path's writer thread (see realtime_internal.h):
 * it alone writes the stream's candles and the live indicator rows.
 *
 * Each round takes the closed candles queued by the stream thread and, once
 * per AUTONAMA_REALTIME_FLUSH_MS, every series' dirty open candle; closed
 * candles of all series go in one write, and so do the open ones
 * (an_store_upsert_candles). After a series' final candles are written its
 * live indicator state (analytics/live.h) advances, O(1) per close, or is
 * rebuilt from the stored closes when it is stale or not contiguous; the
 * round's indicator rows of all series go in one write at its end
 * (an_store_upsert_indicators_many).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/abstime.h"
#include "core/log.h"
#include "core/thread.h"
#include "tasks/realtime_internal.h"

#define COMPONENT "realtime"

int an_rt_push(item_vec *q, const closed_item *it)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        closed_item *v = realloc(q->v, cap * sizeof *v);
        if (!v)
            return -1;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->n++] = *it;
    return 0;
}

/* ---- the writer ----------------------------------------------------------- */

static int cmp_item(const void *a, const void *b)
{
    const closed_item *x = a, *y = b;
    if (x->series != y->series)
        return x->series < y->series ? -1 : 1;
    return x->c.ts < y->c.ts ? -1 : x->c.ts > y->c.ts;
}

/* Writes one series' candles (sorted, distinct times); 0 on success. */
static int write_series(an_store *st, const rt_series *s, const an_candle *v, size_t n)
{
    an_err err = {0};
    if (an_store_insert_ohlc(st, s->sub.symbol, s->sub.timeframe, v, n, NULL, &err) != AN_OK) {
        AN_WARN(COMPONENT, "msg=\"store write failed\" symbol=%s timeframe=%s error=\"%.300s\"",
                s->sub.symbol, s->sub.timeframe, err.msg);
        return -1;
    }
    return 0;
}

/* ---- live indicators (writer thread) ------------------------------------ */

typedef struct closes_vec {
    an_closes c;
    int64_t below; /* only candles opening before this */
} closes_vec;

static an_code collect_closes(void *ctx, const int64_t *ts, const double *close, size_t n,
                              an_err *err)
{
    closes_vec *v = ctx;
    an_code rc = AN_OK;
    for (size_t i = 0; i < n && rc == AN_OK; i++) /* each run of those before below */
        if (ts[i] < v->below) {
            size_t j = i + 1;
            while (j < n && ts[j] < v->below)
                j++;
            rc = an_closes_push(&v->c, ts + i, close + i, j - i, err);
            i = j;
        }
    return rc;
}

/* Indicator rows for the series' final candles not done yet: the state is
 * rebuilt from the stored closes (a fixed anchor: the first stored candle,
 * as `autonama indicators` computes) when it is stale or not contiguous,
 * else advanced one close at a time. Values equal the batch engine's
 * (analytics/live.h). */
static void queue_indicator_rows(an_realtime *rt, rt_series *s, const int64_t *ts, const int *idx,
                                 const double *val, size_t n, int64_t through);

/* The common case, O(1) per candle: the closes just written follow the state
 * directly and are all final. 0 when it applied. */
static int live_step(an_realtime *rt, rt_series *s, int64_t final_from, const an_candle *fresh,
                     size_t nfresh)
{
    if (s->live_stale || s->live_through == INT64_MIN || !nfresh ||
        fresh[0].ts != an_timeframe_next(s->sub.timeframe, s->live_through) ||
        fresh[nfresh - 1].ts >= final_from)
        return -1;
    for (size_t i = 1; i < nfresh; i++)
        if (fresh[i].ts != an_timeframe_next(s->sub.timeframe, fresh[i - 1].ts))
            return -1;
    int nout = an_live_outputs(s->live);
    if (nout > 64)
        return -1;
    size_t cap = nfresh * (size_t)nout;
    int64_t *ts = malloc(cap * sizeof *ts);
    int *idx = malloc(cap * sizeof *idx);
    double *val = malloc(cap * sizeof *val);
    size_t n = 0;
    double out[64];
    for (size_t i = 0; ts && idx && val && i < nfresh; i++) {
        an_live_push(s->live, fresh[i].close, out);
        for (int k = 0; k < nout; k++)
            if (!isnan(out[k]) && fresh[i].ts >= s->ind_from) {
                ts[n] = fresh[i].ts;
                idx[n] = k;
                val[n++] = out[k];
            }
    }
    if (ts && idx && val) {
        s->live_through = fresh[nfresh - 1].ts;
        queue_indicator_rows(rt, s, ts, idx, val, n, s->live_through);
    } else {
        s->live_stale = 1;
    }
    free(ts);
    free(idx);
    free(val);
    return ts && idx && val ? 0 : -1;
}

/* The rows go out with every other series' at the round's end
 * (write_indicators); ind_from moves past them now, so a later step or
 * rebuild of the round does not make them again, and moves back if the
 * write fails. Out of memory: the series is rebuilt next round. */
static void queue_indicator_rows(an_realtime *rt, rt_series *s, const int64_t *ts, const int *idx,
                                 const double *val, size_t n, int64_t through)
{
    int64_t prev = s->ind_from;
    if (through != INT64_MIN && through >= s->ind_from)
        s->ind_from = an_timeframe_next(s->sub.timeframe, through);
    if (!n)
        return;
    ind_rows r = {(size_t)(s - rt->series),
                  malloc(n * sizeof *ts),
                  malloc(n * sizeof *idx),
                  malloc(n * sizeof *val),
                  n,
                  prev};
    if (rt->indq_n == rt->indq_cap) {
        size_t cap = rt->indq_cap ? rt->indq_cap * 2 : 64;
        ind_rows *q = realloc(rt->indq, cap * sizeof *q);
        if (q) {
            rt->indq = q;
            rt->indq_cap = cap;
        }
    }
    if (!r.ts || !r.idx || !r.val || rt->indq_n == rt->indq_cap) {
        free(r.ts);
        free(r.idx);
        free(r.val);
        s->ind_from = prev;
        s->live_stale = 1;
        pthread_mutex_lock(&rt->lock);
        rt->ind_errors++;
        s->live_pending = 1;
        pthread_mutex_unlock(&rt->lock);
        return;
    }
    memcpy(r.ts, ts, n * sizeof *ts);
    memcpy(r.idx, idx, n * sizeof *idx);
    memcpy(r.val, val, n * sizeof *val);
    rt->indq[rt->indq_n++] = r;
}

/* The round's indicator rows, every series' in one write
 * (an_store_upsert_indicators_many: at a minute's close 1,000 series were
 * 1,000 transactions). When it fails, each series is rebuilt and its rows
 * rewritten from where they were next round. */
static void write_indicators(an_realtime *rt, an_store *st)
{
    if (!rt->indq_n)
        return;
    int nout = an_live_outputs(rt->series[0].live);
    const char **names = malloc((size_t)(nout > 0 ? nout : 1) * sizeof *names);
    an_series_indicators *v = malloc(rt->indq_n * sizeof *v);
    an_err err = {0};
    an_code rc = AN_ERR_NOMEM;
    int64_t rows = 0;
    if (names && v) {
        for (int k = 0; k < nout; k++) /* every series has the same set */
            names[k] = an_live_name(rt->series[0].live, k);
        for (size_t i = 0; i < rt->indq_n; i++) {
            const ind_rows *r = &rt->indq[i];
            const rt_series *s = &rt->series[r->series];
            v[i] = (an_series_indicators){
                s->sub.symbol, s->sub.timeframe, {names, nout, r->ts, r->idx, r->val, r->n}};
            rows += (int64_t)r->n;
        }
        rc = an_store_upsert_indicators_many(st, v, rt->indq_n, &err);
    }
    if (rc != AN_OK)
        AN_WARN(COMPONENT, "msg=\"indicator write failed\" series=%zu error=\"%.300s\"", rt->indq_n,
                err.msg);
    pthread_mutex_lock(&rt->live_lock);
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->indq_n; i++) {
        ind_rows *r = &rt->indq[i];
        rt_series *s = &rt->series[r->series];
        if (rc != AN_OK) {
            s->ind_from = r->prev_ind_from < s->ind_from ? r->prev_ind_from : s->ind_from;
            s->live_stale = 1;
            s->live_pending = 1;
        }
        free(r->ts);
        free(r->idx);
        free(r->val);
    }
    if (rc == AN_OK)
        rt->ind_rows += rows;
    else
        rt->ind_errors++;
    pthread_mutex_unlock(&rt->lock);
    pthread_mutex_unlock(&rt->live_lock);
    rt->indq_n = 0;
    free(names);
    free(v);
}

static void live_rebuild(an_realtime *rt, an_store *st, rt_series *s, int64_t final_from);

static void live_update(an_realtime *rt, an_store *st, rt_series *s, int64_t final_from,
                        const an_candle *fresh, size_t nfresh)
{
    if (!s->live || final_from == INT64_MIN)
        return;
    pthread_mutex_lock(&rt->live_lock);
    pthread_mutex_lock(&rt->lock); /* a gap fill's rebuild request (live_lock first) */
    if (s->stale_wanted) {
        s->live_stale = 1;
        s->stale_wanted = 0;
    }
    pthread_mutex_unlock(&rt->lock);
    if (live_step(rt, s, final_from, fresh, nfresh) != 0)
        live_rebuild(rt, st, s, final_from);
    pthread_mutex_unlock(&rt->live_lock);
}

static void live_rebuild(an_realtime *rt, an_store *st, rt_series *s, int64_t final_from)
{
    closes_vec v = {0};
    v.below = final_from;
    an_err err = {0};
    if (an_store_export_closes(st, "ohlc_data", s->sub.symbol, s->sub.timeframe, collect_closes, &v,
                               &err) != AN_OK) {
        AN_WARN(COMPONENT, "msg=\"indicator closes unreadable\" symbol=%s error=\"%.300s\"",
                s->sub.symbol, err.msg);
        pthread_mutex_lock(&rt->lock);
        rt->ind_errors++;
        s->live_pending = 1;
        pthread_mutex_unlock(&rt->lock);
        goto out;
    }
    /* where the state stands in the stored series */
    size_t from = 0;
    int rebuild = s->live_stale || s->live_through == INT64_MIN;
    if (!rebuild) {
        size_t i = 0;
        while (i < v.c.n && v.c.ts[i] <= s->live_through)
            i++;
        rebuild = i != an_live_count(s->live) || (i > 0 && v.c.ts[i - 1] != s->live_through);
        from = i;
    }
    if (rebuild) {
        an_live_reset(s->live);
        from = 0;
        pthread_mutex_lock(&rt->lock);
        rt->ind_rebuilds++;
        pthread_mutex_unlock(&rt->lock);
    }
    int nout = an_live_outputs(s->live);
    size_t cap = (v.c.n - from) * (size_t)nout + 1;
    int64_t *rts = malloc(cap * sizeof *rts);
    int *ridx = malloc(cap * sizeof *ridx);
    double *rval = malloc(cap * sizeof *rval);
    double out[64];
    size_t nrows = 0;
    for (size_t i = from; rts && ridx && rval && nout <= 64 && i < v.c.n; i++) {
        an_live_push(s->live, v.c.close[i], out);
        if (v.c.ts[i] < s->ind_from)
            continue;
        for (int k = 0; k < nout; k++)
            if (!isnan(out[k])) {
                rts[nrows] = v.c.ts[i];
                ridx[nrows] = k;
                rval[nrows++] = out[k];
            }
    }
    s->live_stale = !(rts && ridx && rval && nout <= 64);
    if (!s->live_stale) {
        s->live_through = v.c.n ? v.c.ts[v.c.n - 1] : INT64_MIN;
        queue_indicator_rows(rt, s, rts, ridx, rval, nrows, s->live_through);
    }
    free(rts);
    free(ridx);
    free(rval);
out:
    an_closes_free(&v.c);
}

/* Takes the queued closed candles into todo and, when flush_open, every
 * dirty open candle into opens. 1 when live indicator rows are pending. */
static int take_round(an_realtime *rt, item_vec *todo, item_vec *opens, int flush_open)
{
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->closed.n; i++)
        an_rt_push(todo, &rt->closed.v[i]);
    rt->closed.n = 0;
    if (flush_open)
        for (size_t i = 0; i < rt->n; i++) {
            rt_series *s = &rt->series[i];
            if (s->has_open && s->dirty) {
                closed_item it = {i, s->open, s->open_arrived_ms, s->open_event_ms};
                an_rt_push(opens, &it);
                s->dirty = 0;
            }
        }
    int live_pending = 0;
    for (size_t i = 0; i < rt->n; i++)
        live_pending |= rt->series[i].live_pending;
    pthread_mutex_unlock(&rt->lock);
    return live_pending;
}

/* Marks the open candles taken dirty again (their write failed), unless a
 * newer one replaced them meanwhile. Under the lock. */
static void redirty(an_realtime *rt, const item_vec *opens)
{
    for (size_t i = 0; i < opens->n; i++) {
        rt_series *s = &rt->series[opens->v[i].series];
        if (s->has_open && s->open.ts == opens->v[i].c.ts)
            s->dirty = 1;
    }
}

static void add_lags(an_realtime *rt, const closed_item *v, size_t n)
{
    int64_t now = an_now_ms();
    for (size_t x = 0; x < n; x++) {
        an_lag_add(&rt->lag_arrival, (double)(now - v[x].arrived_ms) / 1000.0);
        an_lag_add(&rt->lag_event, (double)(now - v[x].event_ms) / 1000.0);
    }
}

/* One series' closed candles in write_closed: todo->v[i..j), deduplicated
 * into buf[off..off + m). */
typedef struct closed_run {
    size_t i, j, off, m;
} closed_run;

/* Sorts todo and cuts it into one run per series (the later of two events
 * of one candle wins); every candle also into all (an_store_upsert_candles'
 * input). The number of runs. */
static size_t cut_runs(an_realtime *rt, item_vec *todo, an_candle *buf, an_series_candle *all,
                       closed_run *runs)
{
    qsort(todo->v, todo->n, sizeof *todo->v, cmp_item);
    size_t nruns = 0, off = 0;
    for (size_t i = 0; i < todo->n;) {
        size_t j = i, m = 0;
        an_candle *b = buf + off;
        for (; j < todo->n && todo->v[j].series == todo->v[i].series; j++)
            if (m == 0 || b[m - 1].ts != todo->v[j].c.ts)
                b[m++] = todo->v[j].c;
            else
                b[m - 1] = todo->v[j].c;
        const rt_series *s = &rt->series[todo->v[i].series];
        for (size_t x = 0; x < m; x++)
            all[off + x] = (an_series_candle){s->sub.symbol, s->sub.timeframe, b[x]};
        runs[nruns++] = (closed_run){i, j, off, m};
        off += m;
        i = j;
    }
    return nruns;
}

/* The closed candles of every series in one write (set form on
 * PostgreSQL/TimescaleDB); when that fails, per series, and a series whose
 * write failed stays in todo for the next round. Then each written series'
 * final_from advances and its live indicators step. Counts into *writes,
 * *rows, *errors. */
static void write_closed(an_realtime *rt, an_store *st, item_vec *todo, int64_t *writes,
                         int64_t *rows, int64_t *errors)
{
    if (!todo->n)
        return;
    an_candle *buf = malloc(todo->n * sizeof *buf);
    an_series_candle *all = malloc(todo->n * sizeof *all);
    closed_run *runs = malloc(todo->n * sizeof *runs);
    if (!buf || !all || !runs) {
        free(buf);
        free(all);
        free(runs);
        return; /* todo stays for the next round */
    }
    size_t nruns = cut_runs(rt, todo, buf, all, runs), total = 0;
    for (size_t r = 0; r < nruns; r++)
        total += runs[r].m;
    an_err err = {0};
    int together = an_store_upsert_candles(st, all, total, &err) == AN_OK;
    if (together)
        (*writes)++;
    else
        AN_WARN(COMPONENT,
                "msg=\"closed candles write failed; writing per series\" error=\"%.300s\"",
                err.msg);
    size_t kept = 0;
    for (size_t r = 0; r < nruns; r++) {
        closed_run *u = &runs[r];
        rt_series *s = &rt->series[todo->v[u->i].series];
        an_candle *b = buf + u->off;
        if (together || write_series(st, s, b, u->m) == 0) {
            *writes += !together;
            *rows += (int64_t)u->m;
            pthread_mutex_lock(&rt->lock);
            for (size_t x = 0; x < u->m; x++) /* final up to the first gap */
                if (b[x].ts == s->final_from)
                    s->final_from = an_timeframe_next(s->sub.timeframe, b[x].ts);
            int64_t final_from = s->final_from;
            s->live_pending = 0;
            add_lags(rt, todo->v + u->i, u->j - u->i);
            pthread_mutex_unlock(&rt->lock);
            live_update(rt, st, s, final_from, b, u->m);
        } else {
            (*errors)++;
            for (size_t x = u->i; x < u->j; x++) /* kept for the next round */
                todo->v[kept++] = todo->v[x];
        }
    }
    todo->n = kept;
    free(buf);
    free(all);
    free(runs);
}

/* Every series' open candle in one statement (an_store_upsert_candles). */
static void write_opens(an_realtime *rt, an_store *st, const item_vec *opens, int64_t *writes,
                        int64_t *rows, int64_t *errors)
{
    if (!opens->n)
        return;
    an_series_candle *v = malloc(opens->n * sizeof *v);
    an_err err = {0};
    an_code rc = AN_ERR_NOMEM;
    if (v) {
        for (size_t i = 0; i < opens->n; i++) {
            const rt_series *s = &rt->series[opens->v[i].series];
            v[i] = (an_series_candle){s->sub.symbol, s->sub.timeframe, opens->v[i].c};
        }
        rc = an_store_upsert_candles(st, v, opens->n, &err);
        free(v);
    }
    pthread_mutex_lock(&rt->lock);
    if (rc == AN_OK) {
        (*writes)++;
        *rows += (int64_t)opens->n;
        add_lags(rt, opens->v, opens->n);
    } else {
        (*errors)++;
        redirty(rt, opens);
    }
    pthread_mutex_unlock(&rt->lock);
    if (rc != AN_OK)
        AN_WARN(COMPONENT, "msg=\"open candles write failed\" series=%zu error=\"%.300s\"",
                opens->n, err.msg);
}

/* One round: the closed candles taken, then (when due) the dirty open ones,
 * then the indicator rows still pending. */
static void write_round(an_realtime *rt, item_vec *todo, int flush_open)
{
    item_vec opens = {0};
    int live_pending = take_round(rt, todo, &opens, flush_open);
    if (!todo->n && !opens.n && !live_pending) {
        free(opens.v);
        return;
    }
    an_err err = {0};
    an_store *st = an_service_store(rt->svc, &err);
    if (!st) {
        AN_WARN(COMPONENT, "msg=\"store unavailable; candles kept\" error=\"%.300s\"", err.msg);
        pthread_mutex_lock(&rt->lock);
        redirty(rt, &opens);
        rt->gapfill_wanted = 1; /* the store may have missed more than the queue */
        pthread_mutex_unlock(&rt->lock);
        free(opens.v);
        return; /* todo stays for the next round */
    }
    int64_t writes = 0, rows = 0, errors = 0;
    write_closed(rt, st, todo, &writes, &rows, &errors);
    write_opens(rt, st, &opens, &writes, &rows, &errors);
    free(opens.v);
    for (size_t i = 0; i < rt->n; i++) {
        rt_series *s = &rt->series[i];
        pthread_mutex_lock(&rt->lock);
        int pending = s->live_pending;
        int64_t final_from = s->final_from;
        s->live_pending = 0;
        pthread_mutex_unlock(&rt->lock);
        if (pending)
            live_update(rt, st, s, final_from, NULL, 0);
    }
    write_indicators(rt, st);
    pthread_mutex_lock(&rt->lock);
    rt->writes += writes;
    rt->rows += rows;
    rt->write_errors += errors;
    pthread_mutex_unlock(&rt->lock);
}

void *an_rt_writer(void *arg)
{
    an_thread_name("an-rt-writer");
    an_realtime *rt = arg;
    item_vec todo = {0};
    int64_t next_flush = an_now_ms() + rt->flush_ms;
    pthread_mutex_lock(&rt->lock);
    for (;;) {
        int64_t now = an_now_ms();
        int due = now >= next_flush;
        if (rt->stop || (rt->ready && (rt->closed.n || due || todo.n))) {
            int stopping = rt->stop;
            pthread_mutex_unlock(&rt->lock);
            if (rt->ready) {
                write_round(rt, &todo, due || stopping);
                if (due)
                    next_flush = an_now_ms() + rt->flush_ms;
                if (todo.n && !stopping) { /* the store failed: wait a little */
                    struct timespec ts = {0, 200 * 1000000};
                    nanosleep(&ts, NULL);
                }
            }
            pthread_mutex_lock(&rt->lock);
            if (stopping)
                break;
            continue;
        }
        struct timespec ts = an_abstime_in(next_flush - now > 0 ? next_flush - now : 1);
        pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
    }
    pthread_mutex_unlock(&rt->lock);
    free(todo.v);
    free(rt->indq);
    rt->indq = NULL;
    rt->indq_cap = 0;
    return NULL;
}
