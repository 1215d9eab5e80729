/*
 * realtime.h - the live path of `autonama serve` (AUTONAMA_REALTIME=true):
 * Binance's kline streams (source/binance_ws.h) into the store, with REST gap
 * fill at start and after every reconnect, and live indicators on close.
 *
 *   stream thread (libwebsockets)  validated events -> the series table
 *   writer thread                  closed candles written at once; each open
 *                                  candle at most once per AUTONAMA_REALTIME_FLUSH_MS;
 *                                  indicators of closed candles (analytics/live.h)
 *   gap-fill thread                at start and after every reconnect: the REST
 *                                  ingest (tasks/ingest.h) from the newest candle
 *                                  stored before the gap to now, holes repaired
 *
 * Rows are the ones REST ingest writes: same key, same validation, same values
 * once closed. The REST beat stays the safety net. Thread-safe: start/stop from
 * the main thread; metrics and listeners from any thread.
 */
#ifndef AN_TASKS_REALTIME_H
#define AN_TASKS_REALTIME_H

#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/market.h"
#include "tasks/service.h"

typedef struct an_realtime an_realtime;

/* Starts the live path when AUTONAMA_REALTIME is true; *out is NULL (and
 * AN_OK) when it is off. AN_ERR_INVALID for a bad setting (the URL, a
 * symbol, a timeframe). */
an_code an_realtime_start(const an_config *cfg, an_service *svc, an_realtime **out, an_err *err);

/* Stops the stream, writes what is pending, joins the threads. NULL: no-op. */
void an_realtime_stop(an_realtime *rt);

/* Prometheus lines (connections, streams, messages, bad frames by kind,
 * reconnects, gap fills, writes, lag from arrival and from event time to the
 * store); malloc'd, the caller frees. NULL rt gives "". */
char *an_realtime_metrics(an_realtime *rt);

/* The stream's state for /health, a JSON object (malloc'd): connections up
 * and wanted, "state" (connected, degraded, reconnecting), messages, bad
 * frames, reconnects, gap fills, ms since the last message. */
char *an_realtime_health(an_realtime *rt);

/* One validated update of a series, as it arrived (for listeners). values
 * are the live indicator set's outputs for this candle (an_realtime_names;
 * NAN in the warm-up or while the state is being rebuilt after a gap). */
typedef struct an_realtime_update {
    size_t series; /* index: an_realtime_series */
    const char *symbol, *timeframe;
    an_candle candle;
    int closed;
    int64_t event_ms, arrived_ms;
    const double *values;
    int n_values;
} an_realtime_update;

/* The streamed series: count, and the i-th one's symbol and timeframe. */
size_t an_realtime_series(const an_realtime *rt, size_t i, const char **symbol,
                          const char **timeframe);
/* The live indicator outputs' names (sma_20, ..., macd_hist). */
int an_realtime_names(const an_realtime *rt, const char *const **names);

/* A listener sees every update in arrival order, on the stream thread: it
 * must not block. After the updates of one network read it is called with u
 * NULL (work it deferred per update, such as waking clients, is due then).
 * One listener, or NULL. Setting it waits for a call in progress: once it
 * returns, the previous listener is not running and will not be called
 * again (so its ctx may be freed). */
typedef void (*an_realtime_listener)(void *ctx, const an_realtime_update *u);
void an_realtime_listen(an_realtime *rt, an_realtime_listener fn, void *ctx);

#endif
