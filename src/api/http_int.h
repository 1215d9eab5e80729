/*
 * http_int.h - the HTTP server's own state, shared by its files: http.c
 * (the daemon, dispatch, the reply cache), http_metrics.c (GET /metrics
 * of the server itself) and http_watch.c (dropping what writes make stale).
 * Not for other modules.
 */
#ifndef AN_API_HTTP_INT_H
#define AN_API_HTTP_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "api/admission.h"
#include "api/api.h"
#include "api/blocks.h"
#include "api/guard.h"
#include "api/http.h"
#include "api/reply.h"
#include "core/workq.h"

#define MAX_ROUTES 32
#define CACHE_SLOTS 128
#define CACHE_MAX_BYTES (1024 * 1024) /* replies larger than this are not kept */
#define STALE_MS 10000                /* how long an expired reply may stand in */
#define REFRESH_RETRY_MS 2000         /* a refresh not done by then may be taken again */
#define CACHE_KEY_MAX 4096
#define GEN_BUCKETS 64 /* symbols' generations (http_watch.c) */

#define NLAT 14 /* the latency histogram's buckets (http_metrics.c) */

typedef struct route_metrics {
    atomic_uint_fast64_t by_class[6]; /* [status / 100] */
    atomic_uint_fast64_t lat[NLAT + 1];
    atomic_uint_fast64_t lat_sum_us;
    atomic_uint_fast64_t rows;
} route_metrics;

typedef struct cache_entry {
    char *key;
    struct MHD_Response *resp;
    char etag[AN_REPLY_ETAG_MAX];
    an_api_cache kind;
    int64_t expires_ms;         /* fresh until then */
    int64_t stale_until_ms;     /* then served stale while one request refreshes it */
    atomic_llong refreshing_ms; /* when a request took on the refresh (0: none); atomic,
                                   so a reader under the read lock can claim it */
    uint64_t symbol_hash;       /* of the request's symbol; 0: none (any series may matter) */
} cache_entry;

struct an_http_server {
    /* set at start, read-only afterwards */
    struct MHD_Daemon *d;
    const an_config *cfg;
    an_service *svc;
    int port;
    an_api_state *state;
    an_http_options opt;
    size_t max_url, max_body, max_head;
    an_http_guard *guard; /* per-client limit, request deadline, head checks */
    int64_t ttl_ms;
    char cors[256];
    struct MHD_Response *unavailable; /* the preallocated 503 (reply.h) */
    an_workq *q;                      /* the handler workers */
    an_admission adm;                 /* heavy reads and the query deadline */
    an_api_blocks *blocks;            /* closed candle history (blocks.h; own lock); NULL: off */
    an_api_warm *warm; /* fills the blocks in the background (blocks_warm.c); NULL: not */
    /* the reply cache: every field of every slot under cache.lock (a
     * rwlock: lookups share it); never held across I/O or a handler */
    struct {
        pthread_rwlock_t lock;
        cache_entry slot[CACHE_SLOTS];
    } cache;
    /* lock-free counters */
    route_metrics m[MAX_ROUTES + 1]; /* [an_api_nroutes]: requests matching no route */
    atomic_int store_up;             /* -1 unknown, 0 down, 1 up */
    atomic_uint_fast64_t cache_hits, cache_misses, not_modified;
    /* generations, bumped under cache.lock (for writing) by the writes
     * heard (http_watch.c): a reply whose generation moved while it was
     * computed is sent but not kept. A reply naming a symbol follows
     * gen_every + gen_sym[its bucket], one naming none gen_any. */
    struct {
        atomic_uint_fast64_t any, every, sym[GEN_BUCKETS];
    } gen;
    atomic_uint_fast64_t cache_dropped; /* entries dropped by writes heard */
    int watching;                       /* an_service_watch succeeded (http_watch.c) */
};

/* ---- the reply cache and the writes (http_watch.c) ---- */

/* What a cache entry's symbol_hash is for a request's symbol value (never 0). */
uint64_t an_http_symbol_hash(const char *symbol);
/* The generation a reply with that symbol_hash (0: none) follows now. */
uint64_t an_http_cache_gen(an_http_server *h, uint64_t symbol_hash);
/* Starts hearing the store's writes when AUTONAMA_HTTP_CACHE_LISTEN is on
 * (a failure is logged: the caches then last their TTL). */
void an_http_watch_start(an_http_server *h);
/* Stops it (before the cache is freed); a no-op when not started. */
void an_http_watch_stop(an_http_server *h);

/* Counts one answered request for GET /metrics (any thread). */
void an_http_metrics_count(an_http_server *h, int route, unsigned status, const struct timespec *t0,
                           int64_t rows);

#endif
