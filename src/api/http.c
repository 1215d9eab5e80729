/*
 * http.c - the HTTP server (see http.h). libmicrohttpd runs the sockets on
 * its own epoll thread pool (the event threads); handlers run on the server's
 * work queue (core/workq.h, the handler workers), their connection suspended
 * meanwhile, so an event thread never waits on the store. docs/threads.md
 * has the threads, what each owns and the locks.
 *
 * Owns: the daemon, the work queue, the reply cache (built MHD responses,
 * shared between connections: libmicrohttpd reference-counts them), the
 * per-route metrics (atomics), the preallocated 503 and the routes' shared
 * state. A request goes through dispatch's chain of checks (limits, route,
 * parameters, auth, cache, hand-off: see dispatch). Replies are built by
 * reply.c: ETag (If-None-Match gives a 304), Cache-Control (no-cache for data
 * that may change, a day for closed history), gzip when the client accepts
 * it, CORS headers when AUTONAMA_HTTP_CORS_ORIGIN is set.
 */
#include "api/http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api/admission.h"
#include "api/api.h"
#include "api/guard.h"
#include "api/http_int.h"
#include "api/params.h"
#include "api/reply.h"
#include "api/sse.h"
#include "core/log.h"
#include "core/market.h"
#include "core/workq.h"

typedef struct args_acc {
    an_api_arg v[AN_API_MAX_ARGS];
    size_t n;
    int overflow;
} args_acc;

/* One request's state, from the URI log callback to the completion one, or
 * a background refresh's (conn NULL, which owns copies of what it points
 * at). A request that runs a handler is suspended and pushed onto the work
 * queue; the worker fills rp and resumes it, and the event thread sends the
 * reply. Only one thread touches it at a time (the hand-off is the queue). */
typedef struct req_ctx {
    an_work work; /* the work queue's link */
    struct timespec t0;
    size_t uri_len;
    size_t body; /* bytes received */
    char *data;  /* the body itself, up to max_body (malloc'd, NUL-terminated) */
    int route;   /* index into an_api_routes, or -1 */
    unsigned status;
    int64_t rows;
    /* filled by dispatch's checks */
    const char *method; /* the route's method ("GET" for HEAD) */
    const char *tail;
    char allow[64]; /* the path's methods, for 405 and OPTIONS */
    /* handed to a worker */
    struct MHD_Connection *conn;
    int done; /* the worker filled rp */
    args_acc args;
    an_api_request rq;
    an_api_reply rp;
    int gz;
    char *key;                 /* the reply cache key (malloc'd), NULL: not cacheable */
    uint64_t gen, symbol_hash; /* its cache generation when it came in; its symbol's */
    int heavy;                 /* holds one of adm's heavy slots (admission.h) */
} req_ctx;

static req_ctx *req_of(an_work *w)
{
    return (req_ctx *)(void *)((char *)w - offsetof(req_ctx, work));
}

/* ---- sending ------------------------------------------------------------ */

/* Queues r (NULL: building it failed, the preallocated 503 goes instead) and
 * releases the caller's reference when release is set. */
static enum MHD_Result queue(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                             unsigned status, struct MHD_Response *r, int release)
{
    if (!r) {
        r = h->unavailable;
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        release = 0;
    }
    rc->status = status;
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    if (release)
        MHD_destroy_response(r);
    return ret;
}

/* Keeps r in slot e (the cache then owns that reference). cache.lock held
 * for writing. */
static void cache_store_locked(an_http_server *h, cache_entry *e, char *key, struct MHD_Response *r,
                               const char *etag, an_api_cache kind, uint64_t symbol_hash)
{
    int64_t ttl = kind == AN_API_IMMUTABLE ? 300000 : h->ttl_ms;
    if (e->resp)
        MHD_destroy_response(e->resp);
    free(e->key);
    e->key = key;
    e->resp = r;
    snprintf(e->etag, sizeof e->etag, "%s", etag);
    e->kind = kind;
    e->symbol_hash = symbol_hash;
    e->expires_ms = an_now_ms() + ttl;
    /* a slow store (measured: > 1 s right after a bulk load on PostgreSQL)
     * must not show through: the previous reply stays servable while a
     * background job recomputes it */
    e->stale_until_ms = e->expires_ms + (ttl > STALE_MS ? ttl : STALE_MS);
    atomic_store(&e->refreshing_ms, 0);
}

/* Keeps r in the reply cache under key (rc's); 1 when kept (the cache owns
 * that reference), 0 when the caller still owns r: not cacheable, or a
 * write was heard since rc came in (its reply may predate it). */
static int cache_put(an_http_server *h, const req_ctx *rc, const char *key, struct MHD_Response *r,
                     const char *etag, size_t len, an_api_cache kind)
{
    if (!key || !etag[0] || len > CACHE_MAX_BYTES || h->ttl_ms <= 0)
        return 0;
    char *k = strdup(key);
    if (!k)
        return 0;
    size_t slot = an_reply_hash(key, strlen(key)) % CACHE_SLOTS;
    pthread_rwlock_wrlock(&h->cache.lock);
    int kept = an_http_cache_gen(h, rc->symbol_hash) == rc->gen;
    if (kept)
        cache_store_locked(h, &h->cache.slot[slot], k, r, etag, kind, rc->symbol_hash);
    pthread_rwlock_unlock(&h->cache.lock);
    if (!kept)
        free(k);
    return kept;
}

static enum MHD_Result send_not_modified(an_http_server *h, struct MHD_Connection *conn,
                                         req_ctx *rc, const char *etag, an_api_cache cache)
{
    atomic_fetch_add(&h->not_modified, 1);
    return queue(h, conn, rc, MHD_HTTP_NOT_MODIFIED, an_reply_not_modified(etag, cache, h->cors),
                 1);
}

/* Sends a handler's reply (taking its body) and, when allowed, keeps it in
 * the cache under key. */
static enum MHD_Result send_reply(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                                  an_api_reply *rp, int gz, const char *key)
{
    char etag[AN_REPLY_ETAG_MAX];
    struct MHD_Response *r = an_reply_response(rp, gz, h->cors, etag);
    if (!r)
        return queue(h, conn, rc, 0, NULL, 0);
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    enum MHD_Result ret;
    if (etag[0] && an_reply_etag_matches(inm, etag))
        ret = send_not_modified(h, conn, rc, etag, rp->cache);
    else
        ret = queue(h, conn, rc, rp->status, r, 0);
    /* only now, with the connection's own reference taken: once in the cache
     * another thread may evict (destroy) r at any moment, and queueing it
     * after that crashed libmicrohttpd ("response.c: Failed to lock mutex")
     * under varied URLs, whose replies keep replacing each other in a slot */
    if (!cache_put(h, rc, key, r, etag, rp->len, rp->cache))
        MHD_destroy_response(r);
    return ret;
}

/* A JSON error; allow adds the Allow header (405), challenge WWW-Authenticate. */
static enum MHD_Result send_error(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                                  unsigned status, const char *param, const char *allow,
                                  int challenge, const char *fmt, const char *detail)
{
    an_api_reply rp = {0};
    an_api_error(&rp, status, param, fmt, detail ? detail : "");
    rp.auth_challenge = challenge;
    if (rp.oom) {
        free(rp.body);
        return queue(h, conn, rc, 0, NULL, 0);
    }
    if (!allow)
        return send_reply(h, conn, rc, &rp, 0, NULL);
    char etag[AN_REPLY_ETAG_MAX];
    struct MHD_Response *r = an_reply_response(&rp, 0, h->cors, etag);
    if (r)
        MHD_add_response_header(r, "Allow", allow);
    return queue(h, conn, rc, status, r, 1);
}

/* ---- handlers on the workers -------------------------------------------- */

static void run_handler(an_http_server *h, req_ctx *rc)
{
    assert(rc->route >= 0 && (size_t)rc->route < an_api_nroutes);
    an_admission_begin(&h->adm);
    an_api_routes[rc->route].fn(&rc->rq, &rc->rp);
    an_admission_end();
    an_admission_leave(&h->adm, rc->heavy);
    rc->heavy = 0;
    if (rc->rp.store_up >= 0)
        atomic_store(&h->store_up, rc->rp.store_up);
    rc->done = 1;
}

/* On the event thread, once the handler ran: sends its reply. */
static enum MHD_Result finish(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc)
{
    an_api_reply *rp = &rc->rp;
    assert(rc->done);
    if (rp->oom) {
        free(rp->body);
        rp->body = NULL;
        return send_error(h, conn, rc, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0,
                          "the reply is too large or memory ran out%s", "");
    }
    rc->rows = rp->rows;
    return send_reply(h, conn, rc, rp, rc->gz, rc->key);
}

/* A background refresh owns copies of what its request pointed at. */
static void free_job(req_ctx *rc)
{
    for (size_t i = 0; i < rc->args.n; i++) {
        free((char *)rc->args.v[i].key);
        free((char *)rc->args.v[i].value);
    }
    free((char *)rc->rq.path);
    free(rc->data);
    free(rc->key);
    free(rc->rp.body);
    free(rc);
}

/* The work queue's callback, on a handler worker: runs the handler, then
 * resumes the request's connection (its event thread sends the reply), or,
 * for a background refresh, puts the new reply into the cache. */
static void run_work(an_work *w, void *ctx)
{
    an_http_server *h = ctx;
    req_ctx *rc = req_of(w);
    run_handler(h, rc);
    if (rc->conn) {
        MHD_resume_connection(rc->conn);
        return;
    }
    char etag[AN_REPLY_ETAG_MAX];
    if (!rc->rp.oom && rc->rp.status == 200) {
        struct MHD_Response *r = an_reply_response(&rc->rp, rc->gz, h->cors, etag);
        if (r && !cache_put(h, rc, rc->key, r, etag, rc->rp.len, rc->rp.cache))
            MHD_destroy_response(r);
    }
    free_job(rc);
}

/* The request a handler sees. */
static an_api_request request_of(an_http_server *h, const req_ctx *rc, const char *path,
                                 const char *tail)
{
    return (an_api_request){.method = rc->method,
                            .path = path,
                            .tail = tail,
                            .args = rc->args.v,
                            .nargs = rc->args.n,
                            .body = rc->data,
                            .body_len = rc->data ? rc->body : 0,
                            .cfg = h->cfg,
                            .svc = h->svc,
                            .server = h,
                            .state = h->state,
                            .blocks = h->blocks,
                            .tasks = h->opt.tasks,
                            .now_ms = an_now_ms()};
}

/* Queues a background recomputation of a request's reply (its cache entry
 * has expired); the request itself is answered from the cache. */
static void refresh_later(an_http_server *h, const req_ctx *rc, const char *url, const char *key)
{
    req_ctx *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->route = rc->route;
    j->method = rc->method;
    j->gz = rc->gz;
    j->gen = rc->gen;
    j->symbol_hash = rc->symbol_hash;
    j->key = strdup(key);
    char *path = strdup(url);
    int ok = j->key && path;
    for (size_t i = 0; ok && i < rc->args.n; i++) {
        j->args.v[i].key = strdup(rc->args.v[i].key);
        j->args.v[i].value = strdup(rc->args.v[i].value);
        j->args.n = i + 1;
        ok = j->args.v[i].key && j->args.v[i].value;
    }
    j->rq = request_of(h, j, path, path && rc->tail ? path + (rc->tail - url) : NULL);
    j->rp = (an_api_reply){.status = 200, .content_type = "application/json", .store_up = -1};
    if (!ok || !an_workq_push(h->q, &j->work))
        free_job(j);
}

/* ---- dispatch: the chain of checks --------------------------------------- */

/* Each check answers the request (1, with *ret set) or lets it through (0). */

/* 414 for a URL longer than AUTONAMA_HTTP_MAX_URL, 413 for a larger body
 * than AUTONAMA_HTTP_MAX_BODY. */
static int check_limits(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                        enum MHD_Result *ret)
{
    char d[32];
    if (rc->uri_len > h->max_url) {
        snprintf(d, sizeof d, "%zu", h->max_url);
        *ret = send_error(h, conn, rc, MHD_HTTP_URI_TOO_LONG, NULL, NULL, 0,
                          "the request URL is longer than %s bytes", d);
        return 1;
    }
    if (rc->body > h->max_body) {
        snprintf(d, sizeof d, "%zu", h->max_body);
        *ret = send_error(h, conn, rc, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL, 0,
                          "the request body is larger than %s bytes", d);
        return 1;
    }
    return 0;
}

/* Adds method (and HEAD after GET) to the path's Allow list. */
static void allow_add(char allow[64], const char *method)
{
    if (strstr(allow, method))
        return;
    size_t al = strlen(allow);
    snprintf(allow + al, 64 - al, "%s%s%s", al ? ", " : "", method,
             strcmp(method, "GET") == 0 ? ", HEAD" : "");
}

/* The route for (url, method): 404 for an unknown path, the CORS preflight
 * for OPTIONS, 405 with Allow for a method the path does not take. Sets
 * rc->route, rc->method, rc->tail and rc->allow. */
static int find_route(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc, const char *url,
                      const char *method, enum MHD_Result *ret)
{
    rc->method = strcmp(method, "HEAD") == 0 ? "GET" : method;
    rc->allow[0] = '\0';
    int found = -1, path_known = 0, concrete = 0;
    const char *t;
    /* a concrete path is matched before the templated ones (OpenAPI's rule):
     * /api/v1/tasks/health_check is a task (POST), not a run id (GET) */
    for (size_t i = 0; i < an_api_nroutes && !concrete; i++)
        concrete = !an_api_routes[i].tail && an_api_route_match(&an_api_routes[i], url, &t);
    for (size_t i = 0; i < an_api_nroutes; i++) {
        if ((concrete && an_api_routes[i].tail) || !an_api_route_match(&an_api_routes[i], url, &t))
            continue;
        path_known = 1;
        allow_add(rc->allow, an_api_routes[i].method);
        if (found < 0 && strcmp(an_api_routes[i].method, rc->method) == 0) {
            found = (int)i;
            rc->tail = t;
        }
    }
    rc->route = found;
    if (!path_known) {
        *ret = send_error(h, conn, rc, MHD_HTTP_NOT_FOUND, NULL, NULL, 0, "no such route%s", "");
        return 1;
    }
    if (strcmp(method, "OPTIONS") == 0) { /* CORS preflight */
        size_t al = strlen(rc->allow);
        snprintf(rc->allow + al, sizeof rc->allow - al, ", OPTIONS");
        *ret = queue(h, conn, rc, MHD_HTTP_NO_CONTENT, an_reply_options(rc->allow, h->cors), 1);
        return 1;
    }
    if (found < 0) {
        *ret = send_error(h, conn, rc, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, rc->allow, 0,
                          "method %s not allowed here", method);
        return 1;
    }
    return 0;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    args_acc *a = cls;
    if (a->n >= AN_API_MAX_ARGS) {
        a->overflow = 1;
        return MHD_NO;
    }
    a->v[a->n].key = key ? key : "";
    a->v[a->n].value = value ? value : "";
    a->n++;
    return MHD_YES;
}

/* The query parameters into rc->args: 400 for too many, an unknown one (not
 * in the route's list) or a repeated one. */
static int check_params(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                        enum MHD_Result *ret)
{
    const an_api_route *rt = &an_api_routes[rc->route];
    args_acc *ap = &rc->args;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, ap);
    if (ap->overflow) {
        char d[16];
        snprintf(d, sizeof d, "%d", AN_API_MAX_ARGS);
        *ret = send_error(h, conn, rc, MHD_HTTP_BAD_REQUEST, NULL, NULL, 0,
                          "too many query parameters (at most %s)", d);
        return 1;
    }
    for (size_t i = 0; i < ap->n; i++) {
        int known = 0;
        for (const char *const *p = rt->params; *p && !known; p++)
            known = strcmp(*p, ap->v[i].key) == 0;
        char k[64];
        snprintf(k, sizeof k, "%.60s", ap->v[i].key);
        const char *why = known ? NULL : "unknown query parameter '%s'";
        for (size_t j = 0; !why && j < i; j++)
            if (strcmp(ap->v[j].key, ap->v[i].key) == 0)
                why = "query parameter '%s' given more than once";
        if (why) {
            *ret = send_error(h, conn, rc, MHD_HTTP_BAD_REQUEST, k, NULL, 0, why, k);
            return 1;
        }
    }
    return 0;
}

/* For a route that asks for it, the Bearer key: 403 when the server has no
 * AUTONAMA_API_KEY, 401 (with a challenge) when missing or wrong. */
static int check_auth(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                      enum MHD_Result *ret)
{
    if (!an_api_routes[rc->route].auth)
        return 0;
    const char *key = an_config_get(h->cfg, AN_CFG_API_KEY);
    const char *hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!key || !*key) {
        *ret = send_error(h, conn, rc, MHD_HTTP_FORBIDDEN, NULL, NULL, 0,
                          "this route is disabled: the server has no AUTONAMA_API_KEY%s", "");
        return 1;
    }
    if (!an_api_bearer_ok(hdr, key)) {
        *ret = send_error(h, conn, rc, MHD_HTTP_UNAUTHORIZED, NULL, NULL, 1, "%s",
                          hdr ? "wrong API key" : "missing Authorization: Bearer <key>");
        return 1;
    }
    return 0;
}

/* A stream route (GET /api/v1/stream) while the live path runs: the
 * server-sent events hub (api/sse.c) answers with a text/event-stream
 * response instead of a handler, or 400, 404 or 503 as it says. Without the
 * hub the route's handler answers (503). */
static int open_stream(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                       enum MHD_Result *ret)
{
    if (!an_api_routes[rc->route].stream || !h->opt.sse)
        return 0;
    void *r = NULL;
    unsigned st = 0;
    const char *param = NULL;
    char msg[256];
    const char *leid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (an_sse_open(h->opt.sse, conn, rc->args.v, rc->args.n, leid, &r, &st, &param, msg,
                    sizeof msg)) {
        *ret = send_error(h, conn, rc, st, param, NULL, 0, "%s", msg);
        return 1;
    }
    an_reply_add_cors(r, h->cors);
    *ret = queue(h, conn, rc, MHD_HTTP_OK, r, 1);
    return 1;
}

/* The reply cache key (method, path, parameters in order, encoding) into
 * key; 0 when the request is not cacheable (auth routes, too long). */
static int cache_key(const req_ctx *rc, const char *url, char key[CACHE_KEY_MAX], size_t *kl)
{
    const an_api_route *rt = &an_api_routes[rc->route];
    size_t n = (size_t)snprintf(key, CACHE_KEY_MAX, "%s %s?", rt->method, url);
    for (size_t i = 0; i < rc->args.n && n < CACHE_KEY_MAX; i++)
        n += (size_t)snprintf(key + n, CACHE_KEY_MAX - n, "%s=%s&", rc->args.v[i].key,
                              rc->args.v[i].value);
    if (n < CACHE_KEY_MAX)
        n += (size_t)snprintf(key + n, CACHE_KEY_MAX - n, "#%d", rc->gz);
    *kl = n;
    return !rt->auth && n < CACHE_KEY_MAX;
}

/* A fresh (or stale but standing in) reply from the cache, or a 304 when
 * If-None-Match matches it. The first request to see an expired entry
 * queues a background recomputation; everyone gets the previous reply
 * meanwhile (no stampede, and no client waits on the store). */
static int serve_cached(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                        const char *url, const char *key, size_t kl, enum MHD_Result *ret)
{
    size_t slot = an_reply_hash(key, kl) % CACHE_SLOTS;
    int64_t now = an_now_ms();
    pthread_rwlock_rdlock(&h->cache.lock);
    cache_entry *e = &h->cache.slot[slot];
    int serve = 0, refresh = 0;
    if (e->resp && strcmp(e->key, key) == 0 && now < e->stale_until_ms) {
        serve = 1;
        long long r = atomic_load(&e->refreshing_ms);
        refresh = now >= e->expires_ms && now - r >= REFRESH_RETRY_MS &&
                  atomic_compare_exchange_strong(&e->refreshing_ms, &r, (long long)now);
    }
    if (!serve) {
        pthread_rwlock_unlock(&h->cache.lock);
        atomic_fetch_add(&h->cache_misses, 1);
        return 0;
    }
    atomic_fetch_add(&h->cache_hits, 1);
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    if (an_reply_etag_matches(inm, e->etag)) {
        char etag[AN_REPLY_ETAG_MAX];
        snprintf(etag, sizeof etag, "%s", e->etag);
        an_api_cache kind = e->kind;
        pthread_rwlock_unlock(&h->cache.lock);
        *ret = send_not_modified(h, conn, rc, etag, kind);
    } else {
        /* MHD takes its own reference before the lock goes */
        *ret = queue(h, conn, rc, MHD_HTTP_OK, e->resp, 0);
        pthread_rwlock_unlock(&h->cache.lock);
    }
    if (refresh) /* after the lock: the queue's lock is never taken under it */
        refresh_later(h, rc, url, key);
    return 1;
}

/* Heavy reads beyond AUTONAMA_HTTP_HEAVY_MAX get 503 + Retry-After at once
 * (admission.h). */
static int admit(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc, enum MHD_Result *ret)
{
    const an_api_route *rt = &an_api_routes[rc->route];
    rc->heavy = an_admission_heavy(&h->adm, rt, rc->args.v, rc->args.n);
    if (an_admission_enter(&h->adm, rc->heavy))
        return 0;
    rc->heavy = 0;
    an_api_reply rp = {0};
    an_admission_refusal(&h->adm, &rp);
    *ret = send_reply(h, conn, rc, &rp, 0, NULL);
    return 1;
}

static void suspend(an_work *w, void *arg)
{
    (void)arg;
    MHD_suspend_connection(req_of(w)->conn);
}

/* Hands the request to a handler worker: suspended (under the queue's lock,
 * before a worker can see it and resume it) and queued. Once the queue is
 * closed (the server stopping), the handler runs here instead. */
static enum MHD_Result hand_off(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                                const char *url, const char *key)
{
    rc->rq = request_of(h, rc, url, rc->tail);
    const char *api_key = an_config_get(h->cfg, AN_CFG_API_KEY);
    rc->rq.trusted =
        api_key && *api_key &&
        an_api_bearer_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
                         api_key);
    rc->rp = (an_api_reply){.status = 200, .content_type = "application/json", .store_up = -1};
    rc->key = key ? strdup(key) : NULL;
    rc->conn = conn;
    if (an_workq_push_with(h->q, &rc->work, suspend, NULL))
        return MHD_YES;
    run_handler(h, rc);
    return finish(h, conn, rc);
}

/*
 * dispatch - one request whose headers and body are in, on an event thread;
 * never waits on the store. The checks run in this order and the first that
 * answers ends it: check_limits (414, 413), find_route (404, OPTIONS, 405),
 * check_params (400), check_auth (403, 401), open_stream (the event stream
 * of GET /api/v1/stream), serve_cached (200 or 304 from the reply cache),
 * admit (503 for a heavy read over the limit), and hand_off queues the
 * route's handler. Every answer
 * sets rc->status; none depends on an allocation succeeding (reply.h).
 */
static enum MHD_Result dispatch(an_http_server *h, struct MHD_Connection *conn, const char *url,
                                const char *method, req_ctx *rc)
{
    enum MHD_Result ret = MHD_NO;
    if (check_limits(h, conn, rc, &ret) || find_route(h, conn, rc, url, method, &ret) ||
        check_params(h, conn, rc, &ret) || check_auth(h, conn, rc, &ret) ||
        open_stream(h, conn, rc, &ret))
        return ret;
    rc->gz = an_reply_accepts_gzip(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    char key[CACHE_KEY_MAX];
    size_t kl = 0;
    int keyed = cache_key(rc, url, key, &kl);
    for (size_t i = 0; i < rc->args.n; i++)
        if (strcmp(rc->args.v[i].key, "symbol") == 0)
            rc->symbol_hash = an_http_symbol_hash(rc->args.v[i].value);
    rc->gen = an_http_cache_gen(h, rc->symbol_hash);
    if ((keyed && h->ttl_ms > 0 && serve_cached(h, conn, rc, url, key, kl, &ret)) ||
        admit(h, conn, rc, &ret))
        return ret;
    return hand_off(h, conn, rc, url, keyed ? key : NULL);
}

/* The front door, on a request's first call (its head is in, its body not
 * yet read): 503 for a connection over its client's limit, 400/413/431 for
 * a head guard.c refuses (smuggling shapes, a declared body over the limit,
 * oversized headers). These answers close the connection. */
static int check_front(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                       enum MHD_Result *ret)
{
    char msg[200];
    unsigned st = 0;
    if (an_http_guard_over_limit(conn)) {
        st = MHD_HTTP_SERVICE_UNAVAILABLE;
        snprintf(msg, sizeof msg, "too many connections from your address (at most %d)",
                 (int)an_config_int(h->cfg, AN_CFG_HTTP_MAX_CONNECTIONS_PER_CLIENT));
    } else {
        st = an_http_guard_check_head(conn, h->max_body, h->max_head, msg, sizeof msg);
    }
    if (!st)
        return 0;
    an_api_reply rp = {0};
    an_api_error(&rp, st, NULL, "%s", msg);
    char etag[AN_REPLY_ETAG_MAX];
    struct MHD_Response *r = rp.oom ? NULL : an_reply_response(&rp, 0, h->cors, etag);
    free(rp.body);
    if (r) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
        if (st == MHD_HTTP_SERVICE_UNAVAILABLE)
            MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    }
    *ret = queue(h, conn, rc, st, r, 1);
    return 1;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    an_http_server *h = cls;
    req_ctx *rc = *con_cls;
    if (!rc) { /* first call: headers only; from here on-completed frees rc */
        if (!(rc = calloc(1, sizeof *rc)))
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rc->t0);
        rc->uri_len = an_http_guard_uri_len(conn);
        rc->route = -1;
        *con_cls = rc;
        enum MHD_Result ret;
        return check_front(h, conn, rc, &ret) ? ret : MHD_YES;
    }
    if (rc->status) { /* answered by check_front: the body is not kept */
        *upload_size = 0;
        return MHD_YES;
    }
    if (rc->done) /* resumed: the worker ran the handler */
        return finish(h, conn, rc);
    if (*upload_size) { /* kept up to max_body (POST routes read it), counted beyond */
        if (rc->body + *upload_size <= h->max_body) {
            char *d = realloc(rc->data, rc->body + *upload_size + 1);
            if (!d)
                return MHD_NO;
            memcpy(d + rc->body, upload, *upload_size);
            d[rc->body + *upload_size] = '\0';
            rc->data = d;
        }
        rc->body += *upload_size;
        *upload_size = 0;
        return MHD_YES;
    }
    an_http_guard_busy(conn, 1);
    return dispatch(h, conn, url, method, rc);
}

/* The request line's URI, before libmicrohttpd splits it: its length is
 * noted for the 414 check, and the query of a URI over
 * AUTONAMA_HTTP_MAX_URL is emptied (one NUL after the '?'), so that
 * libmicrohttpd 0.9.75, which parses the query only after this callback,
 * spends none of the connection's memory on parameter records (one per
 * "a&": a 16 KB URL needs 450 KB) and the request still reaches our JSON
 * 414. The string is libmicrohttpd's own writable read buffer;
 * cli.test_hostile's dense-URL cases check that the pinned version still
 * behaves so. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    const an_http_server *h = cls;
    size_t len = uri ? strlen(uri) : 0;
    an_http_guard_note_uri(conn, len);
    char *q = len > h->max_url ? strchr(uri, '?') : NULL;
    if (q)
        q[1] = '\0';
    return NULL;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    an_http_server *h = cls;
    req_ctx *rc = *con_cls;
    *con_cls = NULL;
    an_http_guard_busy(conn, 0);
    if (!rc)
        return;
    if (rc->status)
        an_http_metrics_count(h, rc->route, rc->status, &rc->t0, rc->rows);
    free(rc->data);
    free(rc->key);
    free(rc->rp.body);
    free(rc);
}

/* ---- start / stop ------------------------------------------------------- */

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512], q[600];
    vsnprintf(buf, sizeof buf, fmt, ap);
    AN_WARN("http", "msg=\"%s\"", an_log_quote(buf, q, sizeof q));
}

an_code an_http_start(const an_config *cfg, an_service *svc, an_http_server **out, an_err *err)
{
    return an_http_start_with(cfg, svc, NULL, out, err);
}

/* What the daemon binds: AUTONAMA_HTTP_ADDR resolved (freeaddrinfo it). */
static an_code listen_addr(const char *addr, struct addrinfo **ai, an_err *err)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return an_err_set(err, AN_ERR_INVALID, "AUTONAMA_HTTP_ADDR: host too long");
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, colon + 1, &hints, ai);
    if (gai != 0)
        return an_err_set(err, AN_ERR_INVALID, "AUTONAMA_HTTP_ADDR '%s': %s", addr,
                          gai_strerror(gai));
    return AN_OK;
}

/* Frees what an_http_start_with built before the daemon (NULLs are fine). */
static void server_free(an_http_server *h)
{
    an_workq_free(h->q);
    an_http_guard_free(h->guard);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (h->cache.slot[i].resp)
            MHD_destroy_response(h->cache.slot[i].resp);
        free(h->cache.slot[i].key);
    }
    if (h->unavailable)
        MHD_destroy_response(h->unavailable);
    pthread_rwlock_destroy(&h->cache.lock);
    an_api_state_free(h->state);
    an_api_blocks_free(h->blocks);
    free(h);
}

static struct MHD_Daemon *start_daemon(an_http_server *h, const struct addrinfo *ai)
{
    const an_config *cfg = h->cfg;
    /* the connection's memory holds the request line, the headers, one
     * record (~56 bytes) per query parameter and header, and the reply's
     * head. libmicrohttpd 0.9.75 zeroes all of it before every keep-alive
     * request, so its size is paid per request (320 KiB cost the cached
     * route 25-29 us of CPU per request against 9-10 us at 32 KiB):
     * twice the longest URL, its parameters as dense as "a&" (a longer
     * URL's query is dropped unparsed: on_uri), the headers and 16 KiB,
     * and at least 128 KiB, so a request line or header of up to 100 KB
     * still gets our JSON 414/431 rather than libmicrohttpd's HTML (issue
     * 11). */
    size_t mem = 30 * h->max_url + h->max_head + 16 * 1024;
    if (mem < 128 * 1024)
        mem = 128 * 1024;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)an_config_int(cfg, AN_CFG_HTTP_THREADS), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)an_config_int(cfg, AN_CFG_HTTP_TIMEOUT), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)an_config_int(cfg, AN_CFG_HTTP_MAX_CONNECTIONS),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_CONNECTION, an_http_guard_notify, h->guard,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, an_http_guard_hard_cap(h->guard),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
}

an_code an_http_start_with(const an_config *cfg, an_service *svc, const an_http_options *opt,
                           an_http_server **out, an_err *err)
{
    *out = NULL;
    if (an_api_nroutes > MAX_ROUTES)
        return an_err_set(err, AN_ERR_INTERNAL, "too many routes");
    const char *addr = an_config_get(cfg, AN_CFG_HTTP_ADDR);
    const char *cors = an_config_get(cfg, AN_CFG_HTTP_CORS_ORIGIN);
    if (!cors)
        cors = "";
    if (strlen(cors) >= 256 || strpbrk(cors, "\r\n"))
        return an_err_set(err, AN_ERR_INVALID,
                          "AUTONAMA_HTTP_CORS_ORIGIN: one origin or *, at most 255 bytes");
    struct addrinfo *ai = NULL;
    an_code rc = listen_addr(addr, &ai, err);
    if (rc != AN_OK)
        return rc;
    an_http_server *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    pthread_rwlock_init(&h->cache.lock, NULL);
    h->cfg = cfg;
    h->svc = svc;
    if (opt)
        h->opt = *opt;
    h->max_url = (size_t)an_config_int(cfg, AN_CFG_HTTP_MAX_URL);
    h->max_body = (size_t)an_config_int(cfg, AN_CFG_HTTP_MAX_BODY);
    h->ttl_ms = an_config_int(cfg, AN_CFG_HTTP_CACHE_TTL_MS);
    snprintf(h->cors, sizeof h->cors, "%s", cors);
    atomic_store(&h->store_up, -1);
    h->max_head = (size_t)an_config_int(cfg, AN_CFG_HTTP_MAX_HEADERS);
    an_admission_init(&h->adm, cfg);
    long block_mb = an_config_int(cfg, AN_CFG_HTTP_BLOCK_CACHE_MB);
    size_t block_bytes = block_mb < 0 ? an_api_blocks_default_bytes() : (size_t)block_mb << 20;
    if (!(h->state = an_api_state_new()) || !(h->unavailable = an_reply_unavailable_new()) ||
        (block_bytes && !(h->blocks = an_api_blocks_new(block_bytes))))
        rc = an_err_set(err, AN_ERR_NOMEM, "out of memory");
    else
        rc = an_http_guard_new((int)an_config_int(cfg, AN_CFG_HTTP_MAX_CONNECTIONS_PER_CLIENT),
                               an_config_int(cfg, AN_CFG_HTTP_REQUEST_DEADLINE) * 1000, &h->guard,
                               err);
    if (rc == AN_OK)
        rc = an_workq_new("http", (int)an_config_int(cfg, AN_CFG_HTTP_WORKERS), run_work, h, &h->q,
                          err);
    if (rc == AN_OK && !(h->d = start_daemon(h, ai)))
        rc = an_err_set(err, AN_ERR_IO,
                        "cannot listen on %s (address in use, or not an address of this "
                        "machine)",
                        addr);
    freeaddrinfo(ai);
    if (rc != AN_OK) {
        server_free(h);
        return rc;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    an_http_watch_start(h);
    *out = h;
    return AN_OK;
}

int an_http_port(const an_http_server *h)
{
    return h->port;
}

void an_http_stop(an_http_server *h)
{
    if (!h)
        return;
    an_http_watch_stop(h); /* before the cache goes */
    /* the workers finish what is queued (resuming those connections: the
     * daemon must have none suspended when it stops); requests arriving
     * meanwhile find the queue closed and run on the event threads */
    an_workq_close(h->q, AN_WORKQ_DRAIN);
    while (!an_workq_wait_idle(h->q, 1000))
        AN_INFO("http", "msg=\"waiting for running handlers\"");
    MHD_stop_daemon(h->d);
    server_free(h);
}
