/*
 * realtime.c - the live path under `autonama serve` (see realtime.h).
 *
 * Owns: the stream client, the series table (each series' pending open
 * candle, the newest candle known stored), the queue of closed candles, and
 * the writer and gap-fill threads. The stream thread only fills the table and
 * the queue (under `lock`); the writer thread alone writes candles; the
 * gap-fill thread alone runs the REST ingest.
 *
 * Every candle ends up stored final: a closed event is written at once; a
 * close the stream never delivered (a reconnect or a rotation across the
 * candle's end) is seen when the next candle's first event arrives and
 * triggers a gap fill. A gap fill refetches (force) from each series'
 * final_from to now, so it also replaces open values stored before. A closed
 * candle that arrives while a fill runs is written again after it, and so is
 * an open candle that arrived after the fill started: the fill's REST pages
 * may be older than them.
 */
#include "tasks/realtime.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics/engine.h"
#include "analytics/live.h"
#include "core/abstime.h"
#include "core/lagring.h"
#include "core/log.h"
#include "core/thread.h"
#include "source/binance_ws.h"
#include "tasks/ingest.h"

#include "tasks/realtime_internal.h"

#define COMPONENT "realtime"

/* ---- the stream thread's side ------------------------------------------- */

/* The listener's update: the candle and, when the state stands at the
 * candle before it, the indicator values it gives (O(1), state unchanged). */
static void notify(an_realtime *rt, const an_ws_kline *k, int64_t arrived_ms)
{
    rt_series *s = &rt->series[k->sub];
    double values[64];
    int n = rt->n_names > 64 ? 64 : rt->n_names;
    /* a rebuild holds the lock while it reads the store: no values then */
    int locked = pthread_mutex_trylock(&rt->live_lock) == 0;
    if (locked && s->live && !s->live_stale && s->live_through != INT64_MIN &&
        an_timeframe_next(s->sub.timeframe, s->live_through) == k->candle.ts)
        an_live_peek(s->live, k->candle.close, values);
    else
        for (int i = 0; i < n; i++)
            values[i] = NAN;
    if (locked)
        pthread_mutex_unlock(&rt->live_lock);
    an_realtime_update u = {k->sub,      s->sub.symbol, s->sub.timeframe, k->candle, k->closed,
                            k->event_ms, arrived_ms,    values,           n};
    pthread_mutex_lock(&rt->listen_mu);
    an_realtime_listener fn = atomic_load(&rt->listener);
    if (fn)
        fn(rt->listener_ctx, &u);
    pthread_mutex_unlock(&rt->listen_mu);
}

static void on_kline(void *ctx, const an_ws_kline *k, int64_t arrived_ms)
{
    an_realtime *rt = ctx;
    if (atomic_load(&rt->listener))
        notify(rt, k, arrived_ms);
    pthread_mutex_lock(&rt->lock);
    rt->last_message_ms = arrived_ms;
    an_lag_add(&rt->lag_receive, (double)(arrived_ms - k->event_ms) / 1000.0);
    rt_series *s = &rt->series[k->sub];
    if (s->has_open && s->open.ts < k->candle.ts) {
        /* the stream never said the previous candle closed: REST will */
        rt->gapfill_wanted = 1;
        pthread_cond_broadcast(&rt->cond);
    }
    if (k->closed) {
        closed_item it = {k->sub, k->candle, arrived_ms, k->event_ms};
        if (rt->closed.n >= AN_RT_QUEUE_MAX || an_rt_push(&rt->closed, &it) != 0) {
            rt->dropped++;
            rt->gapfill_wanted = 1; /* the REST fill will bring it */
        }
        if (rt->gapfill_running)
            an_rt_push(&rt->rewrite, &it);
        if (s->has_open && s->open.ts <= k->candle.ts)
            s->has_open = s->dirty = 0;
    } else {
        s->open = k->candle;
        s->has_open = s->dirty = 1;
        s->open_arrived_ms = arrived_ms;
        s->open_event_ms = k->event_ms;
    }
    if (k->closed) /* open candles wait for the flush: no wake-up per event */
        pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
}

/* The listener hears the batch's end as a NULL update. */
static void on_batch(void *ctx)
{
    an_realtime *rt = ctx;
    if (!atomic_load(&rt->listener))
        return;
    pthread_mutex_lock(&rt->listen_mu);
    an_realtime_listener fn = atomic_load(&rt->listener);
    if (fn)
        fn(rt->listener_ctx, NULL);
    pthread_mutex_unlock(&rt->listen_mu);
}

static void on_connected(void *ctx, int group, int rotated)
{
    an_realtime *rt = ctx;
    (void)group;
    if (rotated)
        return; /* the old connection stayed up until the new one was: no gap */
    pthread_mutex_lock(&rt->lock);
    rt->gapfill_wanted = 1;
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
}

/* ---- gap fill ------------------------------------------------------------- */

/* The newest stored candle of every series not known yet (at start). */
static int resolve_stored(an_realtime *rt, an_store *st)
{
    int64_t lookback = an_config_int(rt->cfg, AN_CFG_INGEST_LOOKBACK);
    for (size_t i = 0; i < rt->n; i++) {
        rt_series *s = &rt->series[i];
        if (s->final_from != INT64_MIN)
            continue;
        int64_t ts = 0;
        int found = 0;
        an_err err = {0};
        if (an_store_get_latest_timestamp(st, s->sub.symbol, s->sub.timeframe, &ts, &found, &err) !=
            AN_OK) {
            AN_WARN(COMPONENT, "msg=\"newest stored candle unknown\" symbol=%s error=\"%.300s\"",
                    s->sub.symbol, err.msg);
            return -1;
        }
        if (!found) {
            /* nothing stored: the last `lookback` candles, as ingest does */
            int64_t now = an_now_ms(), t = an_timeframe_floor(s->sub.timeframe, now);
            int64_t len = an_timeframe_ms(s->sub.timeframe, NULL);
            ts = len > 0 ? t - (lookback - 1) * len : t;
        }
        pthread_mutex_lock(&rt->lock);
        s->final_from = ts;
        s->ind_from = ts; /* this session's candles get live indicator rows */
        pthread_mutex_unlock(&rt->lock);
    }
    return 0;
}

/* The REST fill: per group of series with the same timeframe and final_from,
 * a forced refetch of [final_from, now) (holes and stale open values
 * included). Each series that succeeded is final up to the candle open when
 * the fill started. 0 when every series succeeded. */
static int gap_fill(an_realtime *rt, an_store *st, int64_t t0)
{
    const an_config *cfg = rt->cfg;
    int rc = 0;
    int64_t *since = malloc(rt->n * sizeof *since);
    char *done = calloc(rt->n, 1);
    const char **syms = malloc(rt->n * sizeof *syms);
    size_t *idx = malloc(rt->n * sizeof *idx);
    an_ingest_symbol *res = calloc(rt->n, sizeof *res);
    if (!since || !done || !syms || !idx || !res) {
        rc = -1;
        goto out;
    }
    pthread_mutex_lock(&rt->lock);
    for (size_t i = 0; i < rt->n; i++)
        since[i] = rt->series[i].final_from;
    pthread_mutex_unlock(&rt->lock);
    for (size_t i = 0; i < rt->n; i++) {
        if (done[i])
            continue;
        const char *tf = rt->series[i].sub.timeframe;
        size_t n = 0;
        for (size_t j = i; j < rt->n; j++)
            if (!done[j] && since[j] == since[i] && strcmp(rt->series[j].sub.timeframe, tf) == 0) {
                done[j] = 1;
                idx[n] = j;
                syms[n++] = rt->series[j].sub.symbol;
            }
        an_ingest_options o = {0};
        o.category = "crypto";
        o.provider = "binance";
        o.base_url = an_config_get(cfg, AN_CFG_BINANCE_BASE_URL);
        o.symbols = syms;
        o.n_symbols = n;
        o.timeframe = tf;
        o.since_ms = since[i];
        o.until_ms = INT64_MAX;
        o.force = 1;
        o.lookback = an_config_int(cfg, AN_CFG_INGEST_LOOKBACK);
        o.parallel = (int)an_config_int(cfg, AN_CFG_INGEST_PARALLEL);
        o.timeout_ms = (int)an_config_int(cfg, AN_CFG_BINANCE_TIMEOUT_MS);
        o.max_tries = (int)an_config_int(cfg, AN_CFG_BINANCE_MAX_TRIES);
        o.backoff_ms = (int)an_config_int(cfg, AN_CFG_BINANCE_BACKOFF_MS);
        o.weight_budget = (int)an_config_int(cfg, AN_CFG_BINANCE_WEIGHT_BUDGET);
        o.stop = &rt->ingest_stop;
        an_err err = {0};
        an_code code = an_ingest_run(st, &o, res, &err);
        int64_t fetched = 0, inserted = 0, updated = 0, failed = 0;
        int64_t open_t0 = an_timeframe_floor(tf, t0);
        pthread_mutex_lock(&rt->lock);
        for (size_t j = 0; j < n; j++) {
            fetched += res[j].fetched;
            inserted += res[j].inserted;
            updated += res[j].updated;
            if (code != AN_OK || res[j].status != AN_OK)
                failed++;
            else if (open_t0 > rt->series[idx[j]].final_from)
                rt->series[idx[j]].final_from = open_t0;
        }
        rt->gapfill_fetched += fetched;
        rt->gapfill_inserted += inserted;
        pthread_mutex_unlock(&rt->lock);
        for (size_t j = 0; j < n; j++)
            if (res[j].status != AN_OK)
                AN_WARN(COMPONENT, "msg=\"gap fill failed\" symbol=%s error=\"%.300s\"",
                        res[j].symbol, res[j].error);
        if (code != AN_OK)
            AN_WARN(COMPONENT, "msg=\"gap fill failed\" error=\"%.300s\"", err.msg);
        char since_s[40];
        AN_INFO(COMPONENT,
                "msg=\"gap filled\" timeframe=%s symbols=%zu since=%s fetched=%" PRId64
                " inserted=%" PRId64 " updated=%" PRId64 " failed=%" PRId64 " ms=%" PRId64,
                tf, n, an_time_format(since[i], since_s, sizeof since_s), fetched, inserted,
                updated, failed, an_now_ms() - t0);
        if (failed)
            rc = -1;
    }
out:
    free(since);
    free(done);
    free(syms);
    free(idx);
    free(res);
    return rc;
}

static void *filler(void *arg)
{
    an_thread_name("an-rt-gapfill");
    an_realtime *rt = arg;
    pthread_mutex_lock(&rt->lock);
    for (;;) {
        while (!rt->stop && !rt->gapfill_wanted) {
            struct timespec ts = an_abstime_in(1000);
            pthread_cond_timedwait(&rt->cond, &rt->lock, &ts);
        }
        if (rt->stop)
            break;
        rt->gapfill_wanted = 0;
        rt->gapfill_running = 1;
        pthread_mutex_unlock(&rt->lock);
        an_err err = {0};
        int64_t t0 = an_now_ms();
        an_store *st = an_service_store(rt->svc, &err);
        int ok = st && resolve_stored(rt, st) == 0;
        if (ok) {
            pthread_mutex_lock(&rt->lock);
            rt->ready = 1; /* the stream's rows may go in now: the fill starts from before them */
            pthread_cond_broadcast(&rt->cond);
            pthread_mutex_unlock(&rt->lock);
            ok = gap_fill(rt, st, t0) == 0;
        } else if (!st) {
            AN_WARN(COMPONENT, "msg=\"gap fill waits for the store\" error=\"%.300s\"", err.msg);
        }
        pthread_mutex_lock(&rt->lock);
        rt->gapfills++;
        /* what the stream closed meanwhile goes in again, and every open candle */
        for (size_t i = 0; i < rt->rewrite.n; i++)
            an_rt_push(&rt->closed, &rt->rewrite.v[i]);
        rt->rewrite.n = 0;
        for (size_t i = 0; i < rt->n; i++) {
            if (rt->series[i].has_open && rt->series[i].open_arrived_ms >= t0)
                rt->series[i].dirty = 1;
            rt->series[i].live_pending = 1; /* REST may have filled candles: rebuild */
            rt->series[i].stale_wanted = 1;
        }
        rt->gapfill_running = 0;
        if (!ok) {
            rt->gapfill_errors++;
            rt->gapfill_wanted = 1;
            struct timespec ts = an_abstime_in(2000); /* then try again */
            while (!rt->stop && pthread_cond_timedwait(&rt->cond, &rt->lock, &ts) == 0)
                ;
        }
        pthread_cond_broadcast(&rt->cond);
    }
    pthread_mutex_unlock(&rt->lock);
    return NULL;
}

/* ---- start, stop, metrics ----------------------------------------------- */

/* One series per (timeframe, symbol), each with its live indicator state,
 * and the indicator output names they share. On failure the caller stops
 * rt, which frees what was made. */
static an_code init_series(an_realtime *rt, char **syms, size_t nsym, char **tfs, size_t ntf,
                           const an_ind_set *set, an_err *err)
{
    an_code code;
    rt->nsym = nsym;
    for (size_t t = 0; t < ntf; t++)
        for (size_t i = 0; i < nsym; i++) {
            rt_series *s = &rt->series[rt->n++];
            if ((code = an_ws_sub_init(&s->sub, syms[i], tfs[t], err)) != AN_OK) {
                an_err_prefix(err, "AUTONAMA_REALTIME_SYMBOLS/TIMEFRAMES");
                return code;
            }
            s->final_from = INT64_MIN;
            s->live_through = INT64_MIN;
            s->ind_from = INT64_MAX;
            if (!(s->live = an_live_new(set)))
                return an_err_set(err, AN_ERR_NOMEM, "out of memory");
        }
    rt->n_names = an_live_outputs(rt->series[0].live);
    if (!(rt->names = calloc((size_t)rt->n_names + 1, sizeof *rt->names)))
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < rt->n_names; i++)
        rt->names[i] = an_live_name(rt->series[0].live, i);
    return AN_OK;
}

an_code an_realtime_start(const an_config *cfg, an_service *svc, an_realtime **out, an_err *err)
{
    *out = NULL;
    if (!an_config_bool(cfg, AN_CFG_REALTIME))
        return AN_OK;
    char **syms = NULL, **tfs = NULL;
    size_t nsym = 0, ntf = 0;
    an_code code = an_config_list(cfg, AN_CFG_REALTIME_SYMBOLS, &syms, &nsym, err);
    if (code == AN_OK && nsym == 0)
        code = an_config_symbols(cfg, &syms, &nsym, err);
    if (code == AN_OK)
        code = an_config_list(cfg, AN_CFG_REALTIME_TIMEFRAMES, &tfs, &ntf, err);
    if (code != AN_OK)
        goto out;
    if (!nsym || !ntf) {
        code = an_err_set(err, AN_ERR_INVALID,
                          "AUTONAMA_REALTIME: no symbols or no timeframes to stream");
        goto out;
    }
    an_realtime *rt = calloc(1, sizeof *rt);
    if (!rt || !(rt->series = calloc(nsym * ntf, sizeof *rt->series))) {
        free(rt);
        code = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto out;
    }
    rt->cfg = cfg;
    rt->svc = svc;
    const an_ind_set *set = an_config_indicators(cfg); /* checked at load */
    rt->flush_ms = an_config_int(cfg, AN_CFG_REALTIME_FLUSH_MS);
    pthread_mutex_init(&rt->lock, NULL);
    pthread_mutex_init(&rt->live_lock, NULL);
    pthread_mutex_init(&rt->listen_mu, NULL);
    pthread_cond_init(&rt->cond, NULL);
    if ((code = init_series(rt, syms, nsym, tfs, ntf, set, err)) != AN_OK) {
        an_realtime_stop(rt);
        goto out;
    }
    an_ws_sub *subs = malloc(rt->n * sizeof *subs);
    if (!subs) {
        an_realtime_stop(rt);
        code = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < rt->n; i++)
        subs[i] = rt->series[i].sub;
    an_binance_ws_options wo = {0};
    wo.url = an_config_get(cfg, AN_CFG_BINANCE_WS_URL);
    wo.subs = subs;
    wo.nsubs = rt->n;
    wo.streams_per_conn = (int)an_config_int(cfg, AN_CFG_REALTIME_STREAMS_PER_CONN);
    wo.idle_ms = an_config_int(cfg, AN_CFG_REALTIME_IDLE_MS);
    wo.max_age_ms = an_config_int(cfg, AN_CFG_REALTIME_MAX_AGE) * 1000;
    wo.backoff_ms = an_config_int(cfg, AN_CFG_REALTIME_BACKOFF_MS);
    wo.backoff_max_ms = 30000;
    wo.tick_ms = an_config_int(cfg, AN_CFG_REALTIME_TICK_MS);
    wo.cb.ctx = rt;
    wo.cb.on_kline = on_kline;
    wo.cb.on_batch = on_batch;
    wo.cb.on_connected = on_connected;
    if (pthread_create(&rt->writer, NULL, an_rt_writer, rt) == 0)
        rt->writer_started = 1;
    if (pthread_create(&rt->filler, NULL, filler, rt) == 0)
        rt->filler_started = 1;
    if (!rt->writer_started || !rt->filler_started) {
        free(subs);
        an_realtime_stop(rt);
        code = an_err_set(err, AN_ERR_INTERNAL, "realtime: cannot start its threads");
        goto out;
    }
    code = an_binance_ws_start(&wo, &rt->ws, err);
    free(subs);
    if (code != AN_OK) {
        an_realtime_stop(rt);
        goto out;
    }
    *out = rt;
out:
    an_config_free_list(syms, nsym);
    an_config_free_list(tfs, ntf);
    return code;
}

void an_realtime_stop(an_realtime *rt)
{
    if (!rt)
        return;
    an_binance_ws_stop(rt->ws); /* no more events after this */
    rt->ws = NULL;
    pthread_mutex_lock(&rt->lock);
    rt->stop = 1;
    atomic_store(&rt->ingest_stop, 1);
    pthread_cond_broadcast(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
    if (rt->filler_started)
        pthread_join(rt->filler, NULL);
    if (rt->writer_started)
        pthread_join(rt->writer, NULL); /* its last round writes what is pending */
    pthread_cond_destroy(&rt->cond);
    pthread_mutex_destroy(&rt->lock);
    pthread_mutex_destroy(&rt->live_lock);
    pthread_mutex_destroy(&rt->listen_mu);
    free(rt->names);
    free(rt->closed.v);
    free(rt->rewrite.v);
    for (size_t i = 0; i < rt->n; i++)
        an_live_free(rt->series[i].live);
    free(rt->series);
    free(rt);
}

char *an_realtime_metrics(an_realtime *rt)
{
    size_t cap = 8192;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    b[0] = 0;
    if (!rt)
        return b;
    an_binance_ws_stats ws = {0};
    if (rt->ws)
        an_binance_ws_get_stats(rt->ws, &ws);
    double *scratch = malloc(AN_LAG_RING * sizeof *scratch);
    pthread_mutex_lock(&rt->lock);
    double qa50 = an_lag_quantile(&rt->lag_arrival, 0.5, scratch);
    double qa99 = an_lag_quantile(&rt->lag_arrival, 0.99, scratch);
    double qe50 = an_lag_quantile(&rt->lag_event, 0.5, scratch);
    double qe99 = an_lag_quantile(&rt->lag_event, 0.99, scratch);
    double qr50 = an_lag_quantile(&rt->lag_receive, 0.5, scratch);
    double qr99 = an_lag_quantile(&rt->lag_receive, 0.99, scratch);
    size_t off = (size_t)snprintf(
        b, cap,
        "# HELP autonama_realtime_connections Stream connections up now.\n"
        "# TYPE autonama_realtime_connections gauge\n"
        "autonama_realtime_connections %d\n"
        "# TYPE autonama_realtime_connections_wanted gauge\n"
        "autonama_realtime_connections_wanted %d\n"
        "# TYPE autonama_realtime_streams gauge\n"
        "autonama_realtime_streams %zu\n"
        "# TYPE autonama_realtime_connect_attempts_total counter\n"
        "autonama_realtime_connect_attempts_total %" PRId64 "\n"
        "# HELP autonama_realtime_reconnects_total Connections reopened after a loss.\n"
        "# TYPE autonama_realtime_reconnects_total counter\n"
        "autonama_realtime_reconnects_total %" PRId64 "\n"
        "# TYPE autonama_realtime_rotations_total counter\n"
        "autonama_realtime_rotations_total %" PRId64 "\n"
        "# TYPE autonama_realtime_messages_total counter\n"
        "autonama_realtime_messages_total %" PRId64 "\n"
        "# HELP autonama_realtime_bad_frames_total Frames refused by validation, by kind.\n"
        "# TYPE autonama_realtime_bad_frames_total counter\n",
        ws.connected, ws.groups, rt->n, ws.attempts, ws.reconnects, ws.rotations, ws.messages);
    for (int k = 0; k < AN_WS_BAD__COUNT && off < cap; k++)
        off += (size_t)snprintf(b + off, cap - off,
                                "autonama_realtime_bad_frames_total{kind=\"%s\"} %" PRId64 "\n",
                                an_ws_bad_name((an_ws_bad)k), ws.bad[k]);
    if (off < cap)
        off += (size_t)snprintf(
            b + off, cap - off,
            "# TYPE autonama_realtime_gap_fills_total counter\n"
            "autonama_realtime_gap_fills_total %" PRId64 "\n"
            "# TYPE autonama_realtime_gap_fill_errors_total counter\n"
            "autonama_realtime_gap_fill_errors_total %" PRId64 "\n"
            "# TYPE autonama_realtime_gap_fill_candles_total counter\n"
            "autonama_realtime_gap_fill_candles_total{what=\"fetched\"} %" PRId64 "\n"
            "autonama_realtime_gap_fill_candles_total{what=\"inserted\"} %" PRId64 "\n"
            "# TYPE autonama_realtime_store_writes_total counter\n"
            "autonama_realtime_store_writes_total %" PRId64 "\n"
            "# TYPE autonama_realtime_store_rows_total counter\n"
            "autonama_realtime_store_rows_total %" PRId64 "\n"
            "# TYPE autonama_realtime_store_errors_total counter\n"
            "autonama_realtime_store_errors_total %" PRId64 "\n"
            "# HELP autonama_realtime_indicator_rows_total Live indicator rows written on close.\n"
            "# TYPE autonama_realtime_indicator_rows_total counter\n"
            "autonama_realtime_indicator_rows_total %" PRId64 "\n"
            "# TYPE autonama_realtime_indicator_rebuilds_total counter\n"
            "autonama_realtime_indicator_rebuilds_total %" PRId64 "\n"
            "# TYPE autonama_realtime_indicator_errors_total counter\n"
            "autonama_realtime_indicator_errors_total %" PRId64 "\n"
            "# TYPE autonama_realtime_dropped_total counter\n"
            "autonama_realtime_dropped_total %" PRId64 "\n"
            "# HELP autonama_realtime_store_lag_seconds From a frame's arrival (from=arrival) "
            "or its event time (from=event) to the row committed; last %d writes.\n"
            "# TYPE autonama_realtime_store_lag_seconds summary\n"
            "autonama_realtime_store_lag_seconds{from=\"arrival\",quantile=\"0.5\"} %.6f\n"
            "autonama_realtime_store_lag_seconds{from=\"arrival\",quantile=\"0.99\"} %.6f\n"
            "autonama_realtime_store_lag_seconds{from=\"event\",quantile=\"0.5\"} %.6f\n"
            "autonama_realtime_store_lag_seconds{from=\"event\",quantile=\"0.99\"} %.6f\n"
            "# HELP autonama_realtime_receive_lag_seconds From a frame's event time (E) to its "
            "arrival; last %d frames.\n"
            "# TYPE autonama_realtime_receive_lag_seconds summary\n"
            "autonama_realtime_receive_lag_seconds{quantile=\"0.5\"} %.6f\n"
            "autonama_realtime_receive_lag_seconds{quantile=\"0.99\"} %.6f\n",
            rt->gapfills, rt->gapfill_errors, rt->gapfill_fetched, rt->gapfill_inserted, rt->writes,
            rt->rows, rt->write_errors, rt->ind_rows, rt->ind_rebuilds, rt->ind_errors, rt->dropped,
            AN_LAG_RING, qa50, qa99, qe50, qe99, AN_LAG_RING, qr50, qr99);
    pthread_mutex_unlock(&rt->lock);
    free(scratch);
    return b;
}

size_t an_realtime_series(const an_realtime *rt, size_t i, const char **symbol,
                          const char **timeframe)
{
    if (i < rt->n) {
        if (symbol)
            *symbol = rt->series[i].sub.symbol;
        if (timeframe)
            *timeframe = rt->series[i].sub.timeframe;
    }
    return rt->n;
}

int an_realtime_names(const an_realtime *rt, const char *const **names)
{
    *names = rt->names;
    return rt->n_names;
}

void an_realtime_listen(an_realtime *rt, an_realtime_listener fn, void *ctx)
{
    pthread_mutex_lock(&rt->listen_mu);
    rt->listener_ctx = ctx;
    atomic_store(&rt->listener, fn);
    pthread_mutex_unlock(&rt->listen_mu);
}

char *an_realtime_health(an_realtime *rt)
{
    an_binance_ws_stats ws = {0};
    if (rt->ws)
        an_binance_ws_get_stats(rt->ws, &ws);
    pthread_mutex_lock(&rt->lock);
    int64_t last = rt->last_message_ms, fills = rt->gapfills, errors = rt->write_errors;
    pthread_mutex_unlock(&rt->lock);
    const char *state = ws.connected >= ws.groups && ws.groups > 0 ? "connected"
                        : ws.connected > 0                         ? "degraded"
                                                                   : "reconnecting";
    /* what is streamed, so a client (the dashboard) knows which series
     * /api/v1/stream serves: the symbols and the timeframes, each once, in
     * subscription order (series[t * nsym + i]: timeframe t, symbol i) */
    json_t *syms = json_array(), *tfs = json_array();
    for (size_t i = 0; syms && tfs && i < rt->n; i++) {
        const an_ws_sub *sub = &rt->series[i].sub;
        if (i < rt->nsym)
            json_array_append_new(syms, json_string(sub->symbol));
        if (rt->nsym && i % rt->nsym == 0)
            json_array_append_new(tfs, json_string(sub->timeframe));
    }
    json_t *o = json_pack(
        "{s:b,s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "enabled", 1, "state", state,
        "connections", ws.connected, "connections_wanted", ws.groups, "streams", (json_int_t)rt->n,
        "messages", (json_int_t)ws.messages, "bad_frames", (json_int_t)ws.bad_total, "reconnects",
        (json_int_t)ws.reconnects, "gap_fills", (json_int_t)fills, "store_errors",
        (json_int_t)errors, "last_message_age_ms", (json_int_t)(last ? an_now_ms() - last : -1),
        "symbols", syms ? syms : json_null(), "timeframes", tfs ? tfs : json_null());
    char *b = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return b;
}
