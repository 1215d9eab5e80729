/*
 * http.h - autonama's HTTP server (libmicrohttpd, epoll, a thread pool).
 *
 * Serves the routes of api.h's table (candles, indicators, symbols, health,
 * metrics; openapi.json describes them), with request limits, timeouts,
 * gzip, ETag / If-None-Match, Cache-Control, a short server-side reply cache
 * and optional CORS. Binds to AUTONAMA_HTTP_ADDR (default 127.0.0.1:8000;
 * port 0 picks a free port). The server borrows cfg and the service state;
 * both must outlive it.
 */
#ifndef AN_API_HTTP_H
#define AN_API_HTTP_H

#include "core/config.h"
#include "core/error.h"
#include "tasks/service.h"

typedef struct an_http_server an_http_server;

/* Extra metric lines for GET /metrics: returns a malloc'd string of
 * Prometheus text-format lines (the server frees it), or NULL. Called on a
 * worker thread, possibly from several at once. */
typedef char *(*an_http_metrics_fn)(void *ctx);

struct an_tasks;
struct an_sse_hub;

typedef struct an_http_options {
    an_http_metrics_fn metrics_hook; /* NULL: none (the task system sets one) */
    void *metrics_ctx;
    struct an_tasks *tasks; /* the task routes' runtime; NULL: they answer 503 */
    struct an_sse_hub *sse; /* GET /api/v1/stream (api/sse.h); NULL: it answers 503 */
    /* a JSON object (malloc'd text) /health shows as "stream"; NULL: none */
    an_http_metrics_fn health_hook;
    void *health_ctx;
} an_http_options;

an_code an_http_start(const an_config *cfg, an_service *svc, an_http_server **out, an_err *err);
/* The same with options (opt may be NULL). */
an_code an_http_start_with(const an_config *cfg, an_service *svc, const an_http_options *opt,
                           an_http_server **out, an_err *err);
/* The bound port (useful with port 0). */
int an_http_port(const an_http_server *h);
void an_http_stop(an_http_server *h);

#endif
