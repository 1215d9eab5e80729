/*
 * http.h - autonama's HTTP server (libmicrohttpd, epoll, a thread pool).
 *
 * Serves GET /health (the health check as JSON: 200 when healthy, 503
 * otherwise); the API routes are added by the API issue. Binds to
 * AUTONAMA_HTTP_ADDR (default 127.0.0.1:8000; port 0 picks a free port).
 * The server borrows cfg and the service state; both must outlive it.
 */
#ifndef AN_API_HTTP_H
#define AN_API_HTTP_H

#include "core/config.h"
#include "core/error.h"
#include "tasks/service.h"

typedef struct an_http_server an_http_server;

an_code an_http_start(const an_config *cfg, an_service *svc, an_http_server **out, an_err *err);
/* The bound port (useful with port 0). */
int an_http_port(const an_http_server *h);
void an_http_stop(an_http_server *h);

#endif
