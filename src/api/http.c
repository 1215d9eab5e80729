/*
 * http.c - the HTTP server (see http.h). libmicrohttpd runs the sockets on
 * its own epoll thread pool (the event threads); handlers run on a pool of
 * worker threads, their connection suspended meanwhile, so an event thread
 * never waits on the store.
 *
 * Owns: the daemon, the reply cache (built MHD responses, shared between
 * connections: libmicrohttpd reference-counts them), the per-route metrics
 * (atomics) and the routes' shared state. A request goes through
 *   URL length (414), body size (413), route and method (404, 405, OPTIONS),
 *   query parameters (400: unknown, repeated, too many), the Bearer key
 *   (401), the reply cache, then the route's handler (routes.c).
 * Data replies carry an ETag (If-None-Match gives a 304), Cache-Control
 * (no-cache for data that may change, a day for closed history), gzip when
 * the client accepts it, and CORS headers when AUTONAMA_HTTP_CORS_ORIGIN is
 * set.
 */
#include "api/http.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <zlib.h>

#include "api/api.h"
#include "api/params.h"
#include "api/sse.h"
#include "core/log.h"
#include "core/market.h"

#define MAX_ROUTES 32
#define CACHE_SLOTS 128
#define CACHE_MAX_BYTES (1024 * 1024) /* replies larger than this are not kept */
#define GZIP_MIN 1024                 /* smaller replies go uncompressed */
#define STALE_MS 10000                /* how long an expired reply may stand in */

static const double LAT_LE[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define NLAT (sizeof LAT_LE / sizeof LAT_LE[0])

typedef struct route_metrics {
    atomic_uint_fast64_t by_class[6]; /* [status / 100] */
    atomic_uint_fast64_t lat[NLAT + 1];
    atomic_uint_fast64_t lat_sum_us;
    atomic_uint_fast64_t rows;
} route_metrics;

typedef struct cache_entry {
    char *key;
    struct MHD_Response *resp;
    char etag[40];
    int64_t expires_ms;         /* fresh until then */
    int64_t stale_until_ms;     /* then served stale while one request refreshes it */
    atomic_llong refreshing_ms; /* when a request took on the refresh (0: none) */
} cache_entry;

struct an_http_server {
    struct MHD_Daemon *d;
    const an_config *cfg;
    an_service *svc;
    int port;
    an_api_state *state;
    an_http_options opt;
    size_t max_url, max_body;
    int64_t ttl_ms;
    char cors[256];
    pthread_rwlock_t cache_lock;
    cache_entry cache[CACHE_SLOTS];
    route_metrics m[MAX_ROUTES + 1]; /* [an_api_nroutes]: requests matching no route */
    atomic_int store_up;             /* -1 unknown, 0 down, 1 up */
    /* the workers that run handlers, and their queue */
    pthread_t *workers;
    int nworkers;
    pthread_mutex_t q_lock;
    pthread_cond_t q_cond;
    struct req_ctx *q_head, *q_tail;
    int stopping;
    atomic_uint_fast64_t cache_hits, cache_misses, not_modified;
};

typedef struct args_acc {
    an_api_arg v[AN_API_MAX_ARGS];
    size_t n;
    int overflow;
} args_acc;

/* One request's state, from the URI log callback to the completion one. A
 * request that runs a handler is suspended and handed to a worker thread
 * (the event threads never wait on the store); the worker fills rp and
 * resumes it, and the event thread sends the reply. */
typedef struct req_ctx {
    struct timespec t0;
    size_t uri_len;
    size_t body; /* bytes received */
    char *data;  /* the body itself, up to max_body (malloc'd, NUL-terminated) */
    int started;
    int route; /* index into an_api_routes, or -1 */
    unsigned status;
    int64_t rows;
    /* handed to a worker */
    struct MHD_Connection *conn;
    int done; /* the worker filled rp */
    args_acc args;
    an_api_request rq;
    an_api_reply rp;
    int gz;
    char *key; /* the reply cache key (malloc'd), NULL: not cacheable */
    struct req_ctx *next;
} req_ctx;

/* ---- small helpers ------------------------------------------------------ */

/* FNV-1a over 8-byte words (then the tail bytes): ETags and cache slots. */
static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h ^= w;
        h *= 1099511628211ULL;
    }
    for (; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* 1 when Accept-Encoding accepts gzip (a "gzip" token whose q is not 0). */
static int accepts_gzip(const char *ae)
{
    if (!ae)
        return 0;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t tl = (size_t)(p - tok);
        double q = 1;
        while (*p == ' ')
            p++;
        if (*p == ';') {
            const char *qs = strstr(p, "q=");
            const char *comma = strchr(p, ',');
            if (qs && (!comma || qs < comma))
                q = strtod(qs + 2, NULL);
        }
        if (tl == 4 && strncasecmp(tok, "gzip", 4) == 0 && q > 0)
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

/* gzip of in[0..n) into a malloc'd buffer; NULL when it fails or does not shrink. */
static char *gzip_body(const char *in, size_t n, size_t *out_len)
{
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)n);
    char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || *out_len >= n) {
        free(out);
        return NULL;
    }
    return out;
}

static int etag_matches(const char *inm, const char *etag)
{
    if (!inm || !*etag)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    return strstr(inm, etag) != NULL;
}

static void add_common_headers(an_http_server *h, struct MHD_Response *r)
{
    if (h->cors[0]) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", h->cors);
        MHD_add_response_header(r, "Access-Control-Expose-Headers", "ETag");
    }
}

static const char *cache_control(an_api_cache c)
{
    switch (c) {
    case AN_API_REVALIDATE: return "no-cache";
    case AN_API_IMMUTABLE: return "public, max-age=86400";
    case AN_API_NO_STORE: break;
    }
    return "no-store";
}

static enum MHD_Result queue(struct MHD_Connection *conn, req_ctx *rc, unsigned status,
                             struct MHD_Response *r)
{
    rc->status = status;
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    return ret;
}

/* Queues a reply built by a handler (or an error) and, when allowed,
 * keeps it in the cache under key. Takes the reply's body. */
/* Builds the response of a handler's reply (takes its body); etag gets the
 * ETag ("" when the reply is not cacheable). NULL when out of memory. */
static struct MHD_Response *build_response(an_http_server *h, an_api_reply *rp, int gz,
                                           char etag[40])
{
    etag[0] = '\0';
    if (rp->status == 200 && rp->cache != AN_API_NO_STORE)
        snprintf(etag, 40, "\"%016" PRIx64 "%s\"", fnv1a(rp->body, rp->len), gz ? "-gz" : "");
    char *body = rp->body;
    size_t len = rp->len;
    int gzipped = 0;
    if (gz && len >= GZIP_MIN) {
        size_t zl = 0;
        char *z = gzip_body(body, len, &zl);
        if (z) {
            free(body);
            body = z;
            len = zl;
            gzipped = 1;
        }
    }
    rp->body = NULL;
    rp->len = len;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body ? body : (void *)"", MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type",
                            rp->content_type ? rp->content_type : "application/json");
    MHD_add_response_header(r, "Cache-Control", cache_control(rp->cache));
    if (etag[0]) {
        MHD_add_response_header(r, "ETag", etag);
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    }
    if (gzipped)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    if (rp->auth_challenge)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"autonama\"");
    add_common_headers(h, r);
    return r;
}

/* Keeps r in the reply cache under key (the cache then owns that reference);
 * 1 when kept, 0 when the caller still owns r. */
static int cache_put(an_http_server *h, const char *key, struct MHD_Response *r, const char *etag,
                     size_t len, an_api_cache kind)
{
    if (!key || !etag[0] || len > CACHE_MAX_BYTES || h->ttl_ms <= 0)
        return 0;
    int64_t ttl = kind == AN_API_IMMUTABLE ? 300000 : h->ttl_ms;
    char *k = strdup(key);
    if (!k)
        return 0;
    size_t slot = fnv1a(key, strlen(key)) % CACHE_SLOTS;
    pthread_rwlock_wrlock(&h->cache_lock);
    cache_entry *e = &h->cache[slot];
    if (e->resp)
        MHD_destroy_response(e->resp);
    free(e->key);
    e->key = k;
    e->resp = r;
    snprintf(e->etag, sizeof e->etag, "%s", etag);
    e->expires_ms = an_now_ms() + ttl;
    /* a slow store (measured: > 1 s right after a bulk load on PostgreSQL)
     * must not show through: the previous reply stays servable while a
     * background job recomputes it */
    e->stale_until_ms = e->expires_ms + (ttl > STALE_MS ? ttl : STALE_MS);
    atomic_store(&e->refreshing_ms, 0);
    pthread_rwlock_unlock(&h->cache_lock);
    return 1;
}

static enum MHD_Result send_reply(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                                  an_api_reply *rp, int gz, const char *key)
{
    char etag[40];
    struct MHD_Response *r = build_response(h, rp, gz, etag);
    if (!r)
        return MHD_NO;
    int keep = cache_put(h, key, r, etag, rp->len, rp->cache);
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    enum MHD_Result ret;
    if (etag[0] && etag_matches(inm, etag)) {
        atomic_fetch_add(&h->not_modified, 1);
        struct MHD_Response *nm =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(nm, "ETag", etag);
        MHD_add_response_header(nm, "Cache-Control", cache_control(rp->cache));
        MHD_add_response_header(nm, "Vary", "Accept-Encoding");
        add_common_headers(h, nm);
        ret = queue(conn, rc, MHD_HTTP_NOT_MODIFIED, nm);
        MHD_destroy_response(nm);
    } else {
        ret = queue(conn, rc, rp->status, r);
    }
    if (!keep)
        MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc,
                                  unsigned status, const char *param, const char *allow,
                                  int challenge, const char *fmt, const char *detail)
{
    an_api_reply rp = {0};
    an_api_error(&rp, status, param, fmt, detail ? detail : "");
    rp.auth_challenge = challenge;
    if (rp.oom) {
        free(rp.body);
        return MHD_NO;
    }
    if (!allow)
        return send_reply(h, conn, rc, &rp, 0, NULL);
    /* 405 carries Allow */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(rp.len, rp.body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Allow", allow);
    add_common_headers(h, r);
    enum MHD_Result ret = queue(conn, rc, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- query parameters --------------------------------------------------- */

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

/* ---- handlers on the workers -------------------------------------------- */

static void run_handler(an_http_server *h, req_ctx *rc)
{
    an_api_routes[rc->route].fn(&rc->rq, &rc->rp);
    if (rc->rp.store_up >= 0)
        atomic_store(&h->store_up, rc->rp.store_up);
    rc->done = 1;
}

/* On the event thread, once the handler ran: sends its reply. */
static enum MHD_Result finish(an_http_server *h, struct MHD_Connection *conn, req_ctx *rc)
{
    an_api_reply *rp = &rc->rp;
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

static int enqueue(an_http_server *h, req_ctx *rc)
{
    pthread_mutex_lock(&h->q_lock);
    int queued = !h->stopping && h->nworkers > 0;
    if (queued) {
        rc->next = NULL;
        if (h->q_tail)
            h->q_tail->next = rc;
        else
            h->q_head = rc;
        h->q_tail = rc;
        pthread_cond_signal(&h->q_cond);
    }
    pthread_mutex_unlock(&h->q_lock);
    return queued;
}

/* Queues a background recomputation of a request's reply (its cache entry
 * has expired); the request itself is answered from the cache. */
static void refresh_later(an_http_server *h, const req_ctx *rc, const an_api_route *rt,
                          const char *url, const char *tail, const char *key, int gz)
{
    req_ctx *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->route = rc->route;
    j->gz = gz;
    j->key = strdup(key);
    char *path = strdup(url);
    int ok = j->key && path;
    for (size_t i = 0; ok && i < rc->args.n; i++) {
        j->args.v[i].key = strdup(rc->args.v[i].key);
        j->args.v[i].value = strdup(rc->args.v[i].value);
        j->args.n = i + 1;
        ok = j->args.v[i].key && j->args.v[i].value;
    }
    j->rq = (an_api_request){.method = rt->method,
                             .path = path,
                             .tail = path && tail ? path + (tail - url) : NULL,
                             .args = j->args.v,
                             .nargs = j->args.n,
                             .cfg = h->cfg,
                             .svc = h->svc,
                             .server = h,
                             .state = h->state,
                             .tasks = h->opt.tasks,
                             .now_ms = an_now_ms()};
    j->rp = (an_api_reply){.status = 200, .content_type = "application/json", .store_up = -1};
    if (!ok || !enqueue(h, j))
        free_job(j);
}

static void *worker(void *arg)
{
    an_http_server *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->q_lock);
        while (!h->q_head && !h->stopping)
            pthread_cond_wait(&h->q_cond, &h->q_lock);
        req_ctx *rc = h->q_head;
        if (!rc) { /* stopping and nothing left */
            pthread_mutex_unlock(&h->q_lock);
            return NULL;
        }
        h->q_head = rc->next;
        if (!h->q_head)
            h->q_tail = NULL;
        pthread_mutex_unlock(&h->q_lock);
        run_handler(h, rc);
        if (rc->conn) {
            MHD_resume_connection(rc->conn);
            continue;
        }
        /* a background refresh: into the cache, or left for a later one */
        char etag[40];
        if (!rc->rp.oom && rc->rp.status == 200) {
            struct MHD_Response *r = build_response(h, &rc->rp, rc->gz, etag);
            if (r && !cache_put(h, rc->key, r, etag, rc->rp.len, rc->rp.cache))
                MHD_destroy_response(r);
        }
        free_job(rc);
    }
}

/* ---- dispatch ----------------------------------------------------------- */

int an_api_route_match(const an_api_route *rt, const char *url, const char **tail)
{
    size_t l = strlen(rt->path);
    if (!rt->tail) {
        *tail = NULL;
        return strcmp(url, rt->path) == 0;
    }
    if (strncmp(url, rt->path, l) != 0 || url[l] == '\0' || strchr(url + l, '/'))
        return 0;
    *tail = url + l;
    return 1;
}

static enum MHD_Result dispatch(an_http_server *h, struct MHD_Connection *conn, const char *url,
                                const char *method, req_ctx *rc)
{
    if (rc->uri_len > h->max_url) {
        char d[32];
        snprintf(d, sizeof d, "%zu", h->max_url);
        return send_error(h, conn, rc, MHD_HTTP_URI_TOO_LONG, NULL, NULL, 0,
                          "the request URL is longer than %s bytes", d);
    }
    if (rc->body > h->max_body) {
        char d[32];
        snprintf(d, sizeof d, "%zu", h->max_body);
        return send_error(h, conn, rc, MHD_HTTP_CONTENT_TOO_LARGE, NULL, NULL, 0,
                          "the request body is larger than %s bytes", d);
    }
    int is_head = strcmp(method, "HEAD") == 0;
    const char *m = is_head ? "GET" : method;
    char allow[64] = "";
    const char *tail = NULL;
    int found = -1, path_known = 0;
    for (size_t i = 0; i < an_api_nroutes; i++) {
        const char *t;
        if (!an_api_route_match(&an_api_routes[i], url, &t))
            continue;
        path_known = 1;
        if (!strstr(allow, an_api_routes[i].method)) {
            size_t al = strlen(allow);
            snprintf(allow + al, sizeof allow - al, "%s%s", al ? ", " : "",
                     an_api_routes[i].method);
            if (strcmp(an_api_routes[i].method, "GET") == 0) {
                al = strlen(allow);
                snprintf(allow + al, sizeof allow - al, ", HEAD");
            }
        }
        if (found < 0 && strcmp(an_api_routes[i].method, m) == 0) {
            found = (int)i;
            tail = t;
        }
    }
    if (!path_known)
        return send_error(h, conn, rc, MHD_HTTP_NOT_FOUND, NULL, NULL, 0, "no such route%s", "");
    if (strcmp(method, "OPTIONS") == 0) { /* CORS preflight */
        rc->route = found;
        struct MHD_Response *r =
            MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        size_t al = strlen(allow);
        snprintf(allow + al, sizeof allow - al, ", OPTIONS");
        MHD_add_response_header(r, "Allow", allow);
        if (h->cors[0]) {
            MHD_add_response_header(r, "Access-Control-Allow-Methods", allow);
            MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type, If-None-Match");
            MHD_add_response_header(r, "Access-Control-Max-Age", "600");
        }
        add_common_headers(h, r);
        enum MHD_Result ret = queue(conn, rc, MHD_HTTP_NO_CONTENT, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (found < 0)
        return send_error(h, conn, rc, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, allow, 0,
                          "method %s not allowed here", method);
    rc->route = found;
    const an_api_route *rt = &an_api_routes[found];

    args_acc *ap = &rc->args;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, ap);
    if (ap->overflow) {
        char d[16];
        snprintf(d, sizeof d, "%d", AN_API_MAX_ARGS);
        return send_error(h, conn, rc, MHD_HTTP_BAD_REQUEST, NULL, NULL, 0,
                          "too many query parameters (at most %s)", d);
    }
    for (size_t i = 0; i < ap->n; i++) {
        int known = 0;
        for (const char *const *p = rt->params; *p && !known; p++)
            known = strcmp(*p, ap->v[i].key) == 0;
        char k[64];
        snprintf(k, sizeof k, "%.60s", ap->v[i].key);
        if (!known)
            return send_error(h, conn, rc, MHD_HTTP_BAD_REQUEST, k, NULL, 0,
                              "unknown query parameter '%s'", k);
        for (size_t j = 0; j < i; j++)
            if (strcmp(ap->v[j].key, ap->v[i].key) == 0)
                return send_error(h, conn, rc, MHD_HTTP_BAD_REQUEST, k, NULL, 0,
                                  "query parameter '%s' given more than once", k);
    }
    if (rt->auth) {
        const char *key = an_config_get(h->cfg, AN_CFG_API_KEY);
        const char *hdr = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        if (!key || !*key)
            return send_error(h, conn, rc, MHD_HTTP_FORBIDDEN, NULL, NULL, 0,
                              "this route is disabled: the server has no AUTONAMA_API_KEY%s", "");
        if (!an_api_bearer_ok(hdr, key))
            return send_error(h, conn, rc, MHD_HTTP_UNAUTHORIZED, NULL, NULL, 1, "%s",
                              hdr ? "wrong API key" : "missing Authorization: Bearer <key>");
    }
    if (h->opt.sse && strcmp(rt->path, "/api/v1/stream") == 0) {
        /* server-sent events: a streamed response from the hub (api/sse.c) */
        void *r = NULL;
        unsigned st = 0;
        const char *param = NULL;
        char msg[256];
        const char *leid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
        if (an_sse_open(h->opt.sse, conn, ap->v, ap->n, leid, &r, &st, &param, msg, sizeof msg))
            return send_error(h, conn, rc, st, param, NULL, 0, "%s", msg);
        add_common_headers(h, r);
        enum MHD_Result ret = queue(conn, rc, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    int gz = accepts_gzip(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));

    /* the reply cache: key = path, parameters in order, encoding */
    char key[4096];
    size_t kl = (size_t)snprintf(key, sizeof key, "%s %s?", rt->method, url);
    for (size_t i = 0; i < ap->n && kl < sizeof key; i++)
        kl += (size_t)snprintf(key + kl, sizeof key - kl, "%s=%s&", ap->v[i].key, ap->v[i].value);
    if (kl < sizeof key)
        kl += (size_t)snprintf(key + kl, sizeof key - kl, "#%d", gz);
    int keyed = !rt->auth && kl < sizeof key;
    if (keyed && h->ttl_ms > 0) {
        size_t slot = fnv1a(key, kl) % CACHE_SLOTS;
        int64_t now = an_now_ms();
        pthread_rwlock_rdlock(&h->cache_lock);
        cache_entry *e = &h->cache[slot];
        int serve = 0, refresh = 0;
        if (e->resp && strcmp(e->key, key) == 0) {
            if (now < e->expires_ms) {
                serve = 1;
            } else if (now < e->stale_until_ms) {
                /* expired: the first request to see it queues a background
                 * recomputation; everyone gets the previous reply meanwhile
                 * (no stampede, and no client waits on the store) */
                long long r = atomic_load(&e->refreshing_ms);
                serve = 1;
                if (now - r >= 2000 &&
                    atomic_compare_exchange_strong(&e->refreshing_ms, &r, (long long)now))
                    refresh = 1;
            }
        }
        if (refresh) /* recomputed on a worker; this request gets the previous reply */
            refresh_later(h, rc, rt, url, tail, key, gz);
        if (serve) {
            const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
            enum MHD_Result ret;
            atomic_fetch_add(&h->cache_hits, 1);
            if (etag_matches(inm, e->etag)) {
                char etag[40];
                snprintf(etag, sizeof etag, "%s", e->etag);
                pthread_rwlock_unlock(&h->cache_lock);
                atomic_fetch_add(&h->not_modified, 1);
                struct MHD_Response *nm =
                    MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
                MHD_add_response_header(nm, "ETag", etag);
                MHD_add_response_header(nm, "Vary", "Accept-Encoding");
                add_common_headers(h, nm);
                ret = queue(conn, rc, MHD_HTTP_NOT_MODIFIED, nm);
                MHD_destroy_response(nm);
                return ret;
            }
            ret = queue(conn, rc, MHD_HTTP_OK, e->resp);
            pthread_rwlock_unlock(&h->cache_lock);
            return ret;
        }
        pthread_rwlock_unlock(&h->cache_lock);
        atomic_fetch_add(&h->cache_misses, 1);
    }

    rc->rq = (an_api_request){.method = m,
                              .path = url,
                              .tail = tail,
                              .args = ap->v,
                              .nargs = ap->n,
                              .body = rc->data,
                              .body_len = rc->data ? rc->body : 0,
                              .cfg = h->cfg,
                              .svc = h->svc,
                              .server = h,
                              .state = h->state,
                              .tasks = h->opt.tasks,
                              .now_ms = an_now_ms()};
    rc->rp = (an_api_reply){.status = 200, .content_type = "application/json", .store_up = -1};
    rc->gz = gz;
    rc->key = keyed ? strdup(key) : NULL;
    rc->conn = conn;
    /* suspended before it is queued (under the queue's lock), as a worker
     * may resume it as soon as it sees it */
    pthread_mutex_lock(&h->q_lock);
    int queued = !h->stopping && h->nworkers > 0;
    if (queued) {
        MHD_suspend_connection(conn);
        rc->next = NULL;
        if (h->q_tail)
            h->q_tail->next = rc;
        else
            h->q_head = rc;
        h->q_tail = rc;
        pthread_cond_signal(&h->q_cond);
    }
    pthread_mutex_unlock(&h->q_lock);
    if (queued)
        return MHD_YES;
    run_handler(h, rc); /* stopping: run it here */
    return finish(h, conn, rc);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    an_http_server *h = cls;
    req_ctx *rc = *con_cls;
    if (!rc)
        return MHD_NO;  /* the URI callback could not allocate */
    if (!rc->started) { /* first call: headers only */
        rc->started = 1;
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
    return dispatch(h, conn, url, method, rc);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    req_ctx *rc = calloc(1, sizeof *rc);
    if (!rc)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, &rc->t0);
    rc->uri_len = uri ? strlen(uri) : 0;
    rc->route = -1;
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    (void)toe;
    an_http_server *h = cls;
    req_ctx *rc = *con_cls;
    *con_cls = NULL;
    if (!rc)
        return;
    if (rc->status) {
        route_metrics *m = &h->m[rc->route >= 0 ? (size_t)rc->route : an_api_nroutes];
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s =
            (double)(t1.tv_sec - rc->t0.tv_sec) + (double)(t1.tv_nsec - rc->t0.tv_nsec) / 1e9;
        size_t b = 0;
        while (b < NLAT && s > LAT_LE[b])
            b++;
        atomic_fetch_add(&m->lat[b], 1);
        atomic_fetch_add(&m->lat_sum_us, (uint_fast64_t)(s * 1e6));
        unsigned cls_ix = rc->status / 100;
        atomic_fetch_add(&m->by_class[cls_ix < 6 ? cls_ix : 0], 1);
        if (rc->rows > 0)
            atomic_fetch_add(&m->rows, (uint_fast64_t)rc->rows);
    }
    free(rc->data);
    free(rc->key);
    free(rc->rp.body);
    free(rc);
}

/* ---- metrics ------------------------------------------------------------ */

char *an_http_health_extra(an_http_server *h)
{
    return h->opt.health_hook ? h->opt.health_hook(h->opt.health_ctx) : NULL;
}

void an_http_metrics_render(an_http_server *h, an_api_reply *rp)
{
    size_t nr = an_api_nroutes + 1;
    an_api_puts(rp, "# HELP autonama_http_requests_total HTTP requests answered, by route and "
                    "status class.\n# TYPE autonama_http_requests_total counter\n");
    for (size_t i = 0; i < nr; i++) {
        const char *name = i < an_api_nroutes ? an_api_routes[i].name : "other";
        for (int c = 2; c < 6; c++)
            an_api_printf(
                rp, "autonama_http_requests_total{route=\"%s\",code=\"%dxx\"} %" PRIuFAST64 "\n",
                name, c, atomic_load(&h->m[i].by_class[c]));
    }
    an_api_puts(rp, "# HELP autonama_http_request_duration_seconds Time from the request line to "
                    "the reply sent, by route.\n# TYPE autonama_http_request_duration_seconds "
                    "histogram\n");
    for (size_t i = 0; i < nr; i++) {
        const char *name = i < an_api_nroutes ? an_api_routes[i].name : "other";
        uint64_t cum = 0;
        for (size_t b = 0; b <= NLAT; b++) {
            cum += atomic_load(&h->m[i].lat[b]);
            if (b < NLAT)
                an_api_printf(
                    rp,
                    "autonama_http_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %" PRIu64
                    "\n",
                    name, LAT_LE[b], cum);
            else
                an_api_printf(rp,
                              "autonama_http_request_duration_seconds_bucket{route=\"%s\",le=\"+"
                              "Inf\"} %" PRIu64 "\n",
                              name, cum);
        }
        an_api_printf(rp, "autonama_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
                      (double)atomic_load(&h->m[i].lat_sum_us) / 1e6);
        an_api_printf(rp,
                      "autonama_http_request_duration_seconds_count{route=\"%s\"} %" PRIu64 "\n",
                      name, cum);
    }
    an_api_puts(rp, "# HELP autonama_http_rows_served_total Data rows (candles, indicator rows, "
                    "symbols) in replies, by route.\n# TYPE autonama_http_rows_served_total "
                    "counter\n");
    for (size_t i = 0; i < an_api_nroutes; i++)
        an_api_printf(rp, "autonama_http_rows_served_total{route=\"%s\"} %" PRIuFAST64 "\n",
                      an_api_routes[i].name, atomic_load(&h->m[i].rows));
    an_api_printf(rp,
                  "# HELP autonama_http_cache_hits_total Replies served from the reply cache.\n"
                  "# TYPE autonama_http_cache_hits_total counter\n"
                  "autonama_http_cache_hits_total %" PRIuFAST64 "\n"
                  "# HELP autonama_http_cache_misses_total Cacheable requests computed afresh.\n"
                  "# TYPE autonama_http_cache_misses_total counter\n"
                  "autonama_http_cache_misses_total %" PRIuFAST64 "\n"
                  "# HELP autonama_http_not_modified_total 304 replies to If-None-Match.\n"
                  "# TYPE autonama_http_not_modified_total counter\n"
                  "autonama_http_not_modified_total %" PRIuFAST64 "\n",
                  atomic_load(&h->cache_hits), atomic_load(&h->cache_misses),
                  atomic_load(&h->not_modified));
    int up = atomic_load(&h->store_up);
    if (up < 0) { /* nothing has touched the store yet: ask the service */
        an_err e = {0};
        up = an_service_store(h->svc, &e) != NULL;
    }
    an_api_printf(rp,
                  "# HELP autonama_store_up 1 when the last use of the store succeeded, 0 when "
                  "it was unavailable.\n# TYPE autonama_store_up gauge\nautonama_store_up %d\n",
                  up);
    if (h->opt.metrics_hook) {
        char *extra = h->opt.metrics_hook(h->opt.metrics_ctx);
        if (extra) {
            an_api_puts(rp, extra);
            free(extra);
        }
    }
}

/* ---- start / stop ------------------------------------------------------- */

static void stop_workers(an_http_server *h)
{
    pthread_mutex_lock(&h->q_lock);
    h->stopping = 1;
    pthread_cond_broadcast(&h->q_cond);
    pthread_mutex_unlock(&h->q_lock);
    for (int i = 0; i < h->nworkers; i++)
        pthread_join(h->workers[i], NULL);
    free(h->workers);
    h->workers = NULL;
    h->nworkers = 0;
}

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
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0)
        return an_err_set(err, AN_ERR_INVALID, "AUTONAMA_HTTP_ADDR '%s': %s", addr,
                          gai_strerror(gai));
    an_http_server *h = calloc(1, sizeof *h);
    if (!h || !(h->state = an_api_state_new())) {
        free(h);
        freeaddrinfo(ai);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    h->cfg = cfg;
    h->svc = svc;
    if (opt)
        h->opt = *opt;
    h->max_url = (size_t)an_config_int(cfg, AN_CFG_HTTP_MAX_URL);
    h->max_body = (size_t)an_config_int(cfg, AN_CFG_HTTP_MAX_BODY);
    h->ttl_ms = an_config_int(cfg, AN_CFG_HTTP_CACHE_TTL_MS);
    snprintf(h->cors, sizeof h->cors, "%s", cors);
    atomic_store(&h->store_up, -1);
    pthread_rwlock_init(&h->cache_lock, NULL);
    pthread_mutex_init(&h->q_lock, NULL);
    pthread_cond_init(&h->q_cond, NULL);
    int nw = (int)an_config_int(cfg, AN_CFG_HTTP_WORKERS);
    h->workers = calloc((size_t)nw, sizeof *h->workers);
    for (int i = 0; h->workers && i < nw; i++) {
        if (pthread_create(&h->workers[i], NULL, worker, h) != 0)
            break;
        h->nworkers++;
    }
    /* the connection's memory holds the request line and headers: room for
     * the longest URL we accept, so a long one gets our JSON 414 */
    size_t mem = 2 * h->max_url + 32 * 1024;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)an_config_int(cfg, AN_CFG_HTTP_THREADS), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)an_config_int(cfg, AN_CFG_HTTP_TIMEOUT), MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)an_config_int(cfg, AN_CFG_HTTP_MAX_CONNECTIONS),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        stop_workers(h);
        an_api_state_free(h->state);
        pthread_rwlock_destroy(&h->cache_lock);
        free(h);
        return an_err_set(err, AN_ERR_IO,
                          "cannot listen on %s (address in use, or not an address of this "
                          "machine)",
                          addr);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
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
    /* the workers finish what is queued (resuming those connections: the
     * daemon must have none suspended when it stops); requests arriving
     * meanwhile run on the event threads */
    stop_workers(h);
    MHD_stop_daemon(h->d);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (h->cache[i].resp)
            MHD_destroy_response(h->cache[i].resp);
        free(h->cache[i].key);
    }
    pthread_rwlock_destroy(&h->cache_lock);
    pthread_mutex_destroy(&h->q_lock);
    pthread_cond_destroy(&h->q_cond);
    an_api_state_free(h->state);
    free(h);
}
