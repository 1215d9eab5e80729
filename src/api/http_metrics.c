/*
 * http_metrics.c - the HTTP server's own metrics (see api.h): requests by
 * route and status class, the latency histogram, rows served, the reply
 * cache's hits and the store's state, as Prometheus text for GET /metrics.
 * Lock-free counters (atomics in an_http_server, http_int.h), counted by the
 * event threads when a request completes and read by the handler workers.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "api/http_int.h"

static const double LAT_LE[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};

_Static_assert(sizeof LAT_LE / sizeof LAT_LE[0] == NLAT, "NLAT is the bucket count");

void an_http_metrics_count(an_http_server *h, int route, unsigned status, const struct timespec *t0,
                           int64_t rows)
{
    route_metrics *m = &h->m[route >= 0 ? (size_t)route : an_api_nroutes];
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
    size_t b = 0;
    while (b < NLAT && s > LAT_LE[b])
        b++;
    atomic_fetch_add(&m->lat[b], 1);
    atomic_fetch_add(&m->lat_sum_us, (uint_fast64_t)(s * 1e6));
    unsigned cls_ix = status / 100;
    atomic_fetch_add(&m->by_class[cls_ix < 6 ? cls_ix : 0], 1);
    if (rows > 0)
        atomic_fetch_add(&m->rows, (uint_fast64_t)rows);
}

char *an_http_health_extra(an_http_server *h)
{
    return h->opt.health_hook ? h->opt.health_hook(h->opt.health_ctx) : NULL;
}

/* The block cache's counters (all 0 when it is off). */
static void blocks_metrics(an_http_server *h, an_api_reply *rp)
{
    an_api_blocks_stats st;
    an_api_blocks_get_stats(h->blocks, &st);
    an_api_printf(
        rp,
        "# HELP autonama_http_block_hits_total Closed candle blocks served from the "
        "block cache.\n# TYPE autonama_http_block_hits_total counter\n"
        "autonama_http_block_hits_total %" PRIu64 "\n"
        "# HELP autonama_http_block_misses_total Closed candle blocks read from the "
        "store.\n# TYPE autonama_http_block_misses_total counter\n"
        "autonama_http_block_misses_total %" PRIu64 "\n"
        "# HELP autonama_http_block_evictions_total Blocks evicted to stay within "
        "AUTONAMA_HTTP_BLOCK_CACHE_MB.\n# TYPE autonama_http_block_evictions_total "
        "counter\nautonama_http_block_evictions_total %" PRIu64 "\n"
        "# HELP autonama_http_block_passed_total Blocks missed and not kept (the "
        "full cache's admission rule): read from the store with the request.\n"
        "# TYPE autonama_http_block_passed_total counter\n"
        "autonama_http_block_passed_total %" PRIu64 "\n"
        "# HELP autonama_http_block_dropped_total Blocks dropped by writes heard.\n"
        "# TYPE autonama_http_block_dropped_total counter\n"
        "autonama_http_block_dropped_total %" PRIu64 "\n"
        "# HELP autonama_http_block_bytes Bytes held by the block cache.\n"
        "# TYPE autonama_http_block_bytes gauge\nautonama_http_block_bytes %" PRIu64
        "\n# HELP autonama_http_block_count Blocks held by the block cache.\n"
        "# TYPE autonama_http_block_count gauge\nautonama_http_block_count %" PRIu64 "\n"
        "# HELP autonama_http_block_max_bytes The block cache's size "
        "(AUTONAMA_HTTP_BLOCK_CACHE_MB, or what -1 chose).\n"
        "# TYPE autonama_http_block_max_bytes gauge\nautonama_http_block_max_bytes %" PRIu64 "\n"
        "# HELP autonama_http_block_warm_blocks_total Blocks loaded by warming "
        "(AUTONAMA_HTTP_BLOCK_WARM).\n# TYPE autonama_http_block_warm_blocks_total counter\n"
        "autonama_http_block_warm_blocks_total %" PRIu64 "\n"
        "# HELP autonama_http_block_warm_bytes_total Bytes of the blocks loaded by warming.\n"
        "# TYPE autonama_http_block_warm_bytes_total counter\n"
        "autonama_http_block_warm_bytes_total %" PRIu64 "\n"
        "# HELP autonama_http_block_warm_done 1 when warming has filled what it can (every "
        "closed block cached, or the cache full) and no pass is due; 0 while it runs or "
        "when it is off.\n# TYPE autonama_http_block_warm_done gauge\n"
        "autonama_http_block_warm_done %d\n",
        st.hits, st.misses, st.evictions, st.passed, st.dropped, st.bytes, st.blocks, st.max_bytes,
        st.warm_blocks, st.warm_bytes, an_api_warm_done(h->warm));
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
                  "autonama_http_not_modified_total %" PRIuFAST64 "\n"
                  "# HELP autonama_http_cache_dropped_total Cached replies dropped by writes.\n"
                  "# TYPE autonama_http_cache_dropped_total counter\n"
                  "autonama_http_cache_dropped_total %" PRIuFAST64 "\n",
                  atomic_load(&h->cache_hits), atomic_load(&h->cache_misses),
                  atomic_load(&h->not_modified), atomic_load(&h->cache_dropped));
    blocks_metrics(h, rp);
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
