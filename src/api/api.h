/*
 * api.h - what the server (http.c) and the routes (routes.c) share, internal
 * to src/api/: the request as a route sees it, the reply it fills (built by
 * reply.c), and the
 * route table. A route is one entry in an_api_routes; the server matches the
 * path and method, checks the query parameters against the route's list
 * (unknown or repeated ones get a 400), checks the Bearer key when the route
 * asks for it, and calls the handler on one of its worker threads. Handlers
 * must be thread-safe and never see libmicrohttpd.
 */
#ifndef AN_API_API_H
#define AN_API_API_H

#include <stddef.h>
#include <stdint.h>

#include "api/http.h"
#include "core/config.h"
#include "core/market.h"
#include "tasks/service.h"

#define AN_API_MAX_ARGS 16
#define AN_API_BODY_CAP (64u * 1024 * 1024) /* a reply never grows past this */

typedef struct an_api_arg {
    const char *key, *value; /* value "" when the parameter has none */
} an_api_arg;

typedef struct an_api_state an_api_state;   /* the routes' shared state (routes.c) */
typedef struct an_api_blocks an_api_blocks; /* closed candle history (blocks.h) */

typedef struct an_api_request {
    const char *method; /* "GET" (also for HEAD) or "POST" */
    const char *path;
    const char *tail; /* for a route with a {param} tail: what follows its prefix */
    const an_api_arg *args;
    size_t nargs;
    const char *body; /* the request body (NUL-terminated), NULL when none */
    size_t body_len;
    const an_config *cfg;
    an_service *svc;
    an_http_server *server;
    an_api_state *state;
    an_api_blocks *blocks;  /* NULL when AUTONAMA_HTTP_BLOCK_CACHE_MB is 0 */
    struct an_tasks *tasks; /* NULL when the task system is not running */
    int64_t now_ms;
    /* the caller sent the API key: /health shows where the store is and the
     * task routes which host:pid ran a run only then (issue 11) */
    int trusted;
} an_api_request;

typedef enum an_api_cache {
    AN_API_NO_STORE = 0, /* never reused (health, metrics, errors) */
    AN_API_REVALIDATE,   /* may still change: ETag, reused server-side for the cache TTL */
    AN_API_IMMUTABLE,    /* history that cannot change: long max-age */
    AN_API_HASHED        /* a file whose name carries its content's hash: a year, immutable */
} an_api_cache;

typedef struct an_api_reply {
    unsigned status;
    char *body; /* malloc'd; the server takes it */
    size_t len, cap;
    int oom; /* the body hit AN_API_BODY_CAP or malloc failed */
    const char *content_type;
    an_api_cache cache;
    int64_t rows;               /* data rows in the reply (metrics) */
    int store_up;               /* -1 not touched, 0 store unavailable, 1 answered */
    int auth_challenge;         /* add WWW-Authenticate: Bearer */
    const char *const *headers; /* extra headers: name, value, ..., NULL (static strings) */
} an_api_reply;

struct json_t; /* jansson's */

/* Body building (reply.c); all are no-ops once rp->oom is set. */
void an_api_put(an_api_reply *rp, const char *s, size_t n);
void an_api_puts(an_api_reply *rp, const char *s);
/* The JSON text of v (json_dumps with flags; v stays the caller's). NULL v
 * or a failed dump is a 500 "out of memory": returns -1, else 0. */
int an_api_put_json(an_api_reply *rp, const struct json_t *v, size_t flags);
void an_api_printf(an_api_reply *rp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal, escaped. */
void an_api_put_jstr(an_api_reply *rp, const char *s);
/* A JSON number, shortest text that reads back as the same double; null for
 * NaN and infinities. */
void an_api_put_double(an_api_reply *rp, double v);
/* v's JSON text at p (at most AN_NUM_MAX bytes): the shortest round-trip
 * decimal, or null for NaN and infinities; its length (no NUL promised). */
size_t an_api_json_number(double v, char *p);
/* A candle's members (no braces): "timestamp":"<ISO 8601>","ts":<ms>,
 * "open":..,"high":..,"low":..,"close":..,"volume":.. (the ohlc route and
 * the stream's events). */
void an_api_put_candle(an_api_reply *rp, const an_candle *k);
/* an_api_put_candle's text in two parts, written at p: the head
 * ("timestamp":"...","ts":N, at most AN_API_CANDLE_HEAD_MAX bytes) and the
 * tail (,"open":...,"volume":X, at most AN_API_CANDLE_MAX minus that);
 * each returns its length (no NUL). The block cache keeps tails only. */
#define AN_API_CANDLE_HEAD_MAX 96
#define AN_API_CANDLE_MAX (AN_API_CANDLE_HEAD_MAX + 5 * 48)
size_t an_api_candle_head(int64_t ts, char *p);
size_t an_api_candle_tail(const an_candle *k, char *p);

/* Replaces the body with {"error": msg, "status": status, "parameter": param}
 * (parameter left out when NULL). */
void an_api_error(an_api_reply *rp, unsigned status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The one mapping from an_code to an HTTP status. */
unsigned an_api_status_for(an_code code);

typedef void (*an_api_handler)(const an_api_request *rq, an_api_reply *rp);

typedef struct an_api_route {
    const char *method;        /* "GET" or "POST" */
    const char *path;          /* exact, or the prefix before a {param} tail */
    int tail;                  /* 1: path is a prefix and a non-empty tail follows */
    int auth;                  /* 1: requires Authorization: Bearer AUTONAMA_API_KEY */
    int stream;                /* 1: server-sent events from the hub (api/sse.h) when it runs */
    const char *name;          /* metrics label, e.g. "/api/v1/data/ohlc" */
    const char *const *params; /* query parameters accepted, NULL-terminated */
    an_api_handler fn;
} an_api_route;

/* The value of query parameter key, or NULL (routes.c). */
const char *an_api_param(const an_api_request *rq, const char *key);

/* Handlers defined outside routes.c (listed in its table). */
void an_api_h_tasks(const an_api_request *rq, an_api_reply *rp);       /* routes_tasks.c */
void an_api_h_task(const an_api_request *rq, an_api_reply *rp);        /* routes_tasks.c */
void an_api_h_task_submit(const an_api_request *rq, an_api_reply *rp); /* routes_tasks.c */
void an_api_h_opt_runs(const an_api_request *rq, an_api_reply *rp);    /* routes_optimize.c */
void an_api_h_opt_equity(const an_api_request *rq, an_api_reply *rp);  /* routes_optimize.c */
void an_api_h_opt_results(const an_api_request *rq, an_api_reply *rp); /* routes_optimize.c */

extern const an_api_route an_api_routes[];
extern const size_t an_api_nroutes;

/* 1 when url is rt's path (exact), or, for a tail route, rt's prefix then a
 * non-empty tail without '/' (*tail points at it; NULL for exact routes). */
int an_api_route_match(const an_api_route *rt, const char *url, const char **tail);

an_api_state *an_api_state_new(void);
void an_api_state_free(an_api_state *st);
/* A write changed the stored series: the cached list is reloaded by the
 * next request, and a reload already running is not kept (any thread). */
void an_api_state_changed(an_api_state *st);

/* The health hook's JSON object text (malloc'd), or NULL when none. */
char *an_http_health_extra(an_http_server *h);

/* Appends the server's own metrics (requests and latency by route, rows,
 * cache, store availability) and the registered hook's lines (Prometheus
 * text format) to rp. */
void an_http_metrics_render(an_http_server *h, an_api_reply *rp);

#endif
