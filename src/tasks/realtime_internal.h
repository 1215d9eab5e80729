/*
 * realtime_internal.h - the live path's shared state (tasks/realtime.c,
 * tasks/realtime_write.c): the series table, the closed-candle queues and the
 * an_realtime struct. Not for other modules: they use tasks/realtime.h.
 * Every field below `lock` is under rt->lock unless its comment says which
 * thread alone touches it.
 */
#ifndef AN_TASKS_REALTIME_INTERNAL_H
#define AN_TASKS_REALTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "analytics/live.h"
#include "core/lagring.h"
#include "source/binance_ws.h"
#include "tasks/realtime.h"

#define AN_RT_QUEUE_MAX 1000000 /* closed candles waiting for the store */

typedef struct rt_series {
    an_ws_sub sub;
    an_candle open; /* the newest open candle */
    int has_open, dirty;
    int64_t open_arrived_ms, open_event_ms;
    /* the oldest candle that may not be stored final: from here the next gap
     * fill refetches (INT64_MIN: not known yet, at start) */
    int64_t final_from;
    /* live indicators (writer thread only): the state after live_through's
     * close; rows are written for final candles from ind_from on */
    an_live *live;
    int64_t live_through, ind_from;
    int live_stale;   /* rebuild from the store before the next step (under live_lock) */
    int live_pending; /* final candles not yet given indicator rows (under lock) */
    /* a gap fill asks for a rebuild (under lock; the writer turns it into
     * live_stale under live_lock: the filler holds lock, and live_lock is
     * taken first) */
    int stale_wanted;
} rt_series;

typedef struct closed_item {
    size_t series;
    an_candle c;
    int64_t arrived_ms, event_ms;
} closed_item;

/* One series' indicator rows made in a writer round (its final candles'
 * values), written with every other series' at the round's end. */
typedef struct ind_rows {
    size_t series;
    int64_t *ts;
    int *idx;
    double *val;
    size_t n;
    int64_t prev_ind_from; /* the series' ind_from before these rows */
} ind_rows;

typedef struct item_vec {
    closed_item *v;
    size_t n, cap;
} item_vec;

struct an_realtime {
    const an_config *cfg;
    an_service *svc;
    rt_series *series;
    size_t n;
    size_t nsym; /* series are timeframe-major: series[t * nsym + i] */
    an_binance_ws *ws;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    item_vec closed, rewrite;
    int ready;          /* stored_through of every series known: writes may start */
    int gapfill_wanted; /* a (re)connect happened: fill the gap */
    int gapfill_running;
    int stop;
    atomic_int ingest_stop;
    int64_t flush_ms;
    pthread_t writer, filler;
    int writer_started, filler_started;
    /* counters (under lock) */
    int64_t writes, rows, write_errors, dropped, gapfills, gapfill_errors, gapfill_fetched,
        gapfill_inserted;
    an_lag_ring lag_arrival, lag_event;
    an_lag_ring lag_receive; /* event time (E) -> the frame's arrival */
    int64_t ind_rows, ind_rebuilds, ind_errors;
    /* the round's indicator rows, all series' in one write (writer only) */
    ind_rows *indq;
    size_t indq_n, indq_cap;
    int64_t last_message_ms;
    /* listeners: the live states are read by the stream thread under live_lock */
    pthread_mutex_t live_lock;
    /* the listener and its ctx, changed and called under listen_mu (so a
     * removal waits for the call in flight); listener is also read without
     * it, to skip the lock when there is none */
    pthread_mutex_t listen_mu;
    _Atomic(an_realtime_listener) listener;
    void *listener_ctx;
    const char **names;
    int n_names;
};

/* Appends it to q (grows q); -1 when out of memory. */
int an_rt_push(item_vec *q, const closed_item *it);

/* The writer thread's body (arg: the an_realtime): closed candles at once,
 * dirty open candles once per flush_ms, live indicator rows on close. */
void *an_rt_writer(void *arg);

#endif
