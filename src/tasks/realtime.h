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

/* One update of a series as the store now has it (for listeners). */
typedef struct an_realtime_update {
    const char *symbol, *timeframe;
    an_candle candle;
    int closed;
    int64_t event_ms, arrived_ms;
} an_realtime_update;

#endif
