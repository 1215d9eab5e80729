/*
 * sse.h - server-sent events: GET /api/v1/stream?symbols=A,B&timeframe=1m
 * [&indicators=sma_20,rsi_14] streams the live path's updates
 * (tasks/realtime.h) as `candle` events, in arrival order:
 *
 *   id: 1795912227003-42
 *   event: candle
 *   data: {"symbol":"BTC/USDT","timeframe":"1m","timestamp":"...","ts":...,"open":...,
 *          "high":...,"low":...,"close":...,"volume":...,"closed":false,
 *          "indicators":{"sma_20":...,"rsi_14":null}}
 *
 * The id is the update's event time (ms) and a sequence number. A client
 * that reconnects with Last-Event-ID gets, first, every stored candle of its
 * series from the one open at that time on (read from the store), then the
 * live updates. A comment line (": heartbeat") goes out after 15 s without
 * an event. Each client has a bounded queue (AUTONAMA_HTTP_STREAM_QUEUE bytes): a
 * client that stops reading is dropped when it fills, so the server's memory
 * does not grow. At most AUTONAMA_HTTP_MAX_STREAMS clients at once.
 *
 * Threads: updates arrive on the realtime stream thread; libmicrohttpd's
 * event threads open streams and pull bytes (a client with nothing to send
 * is suspended and resumed by the next update); a heartbeat thread. All
 * state is under the hub's lock.
 */
#ifndef AN_API_SSE_H
#define AN_API_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "core/error.h"
#include "tasks/realtime.h"
#include "tasks/service.h"

#define AN_SSE_HEARTBEAT_MS 15000
/* The clients are woken (their queued events sent) at most once per this
 * many ms: the stream's reads come ~1 ms apart, each with a few frames, and
 * one send per client per read was most of the SSE cost. */
#define AN_SSE_COALESCE_MS 5

typedef struct an_sse_hub an_sse_hub;

/* A hub fed by rt (it registers itself as rt's listener), allowing
 * max_clients streams of at most queue_max bytes queued each. */
an_code an_sse_hub_new(an_realtime *rt, an_service *svc, int max_clients, size_t queue_max,
                       an_sse_hub **out, an_err *err);
/* Ends every stream (their connections are resumed and finish), stops the
 * heartbeat thread. Call before the HTTP server stops. */
void an_sse_hub_close(an_sse_hub *hub);
/* Frees the hub; after the HTTP server stopped. NULL: no-op. */
void an_sse_hub_free(an_sse_hub *hub);

/* Opens a stream for a GET /api/v1/stream request whose parameters passed
 * the route's checks: *resp (a text/event-stream response the caller queues
 * and destroys) on success (0); otherwise -1 with *status (400, 404, 503),
 * *param (the parameter at fault or NULL) and msg. conn is the
 * libmicrohttpd connection (struct MHD_Connection *). */
int an_sse_open(an_sse_hub *hub, void *conn, const an_api_arg *args, size_t nargs,
                const char *last_event_id, void **resp, unsigned *status, const char **param,
                char *msg, size_t msglen);

/* Prometheus lines: clients, events sent, clients dropped, lag from arrival
 * to a client's socket. malloc'd. */
char *an_sse_metrics(an_sse_hub *hub);

#endif
