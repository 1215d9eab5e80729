/*
 * instances_writer.c - the writer of tests/cli/test_instances.sh: writes
 * one new 1m candle at a time through the product's write path
 * (an_store_insert_ohlc: the upsert, the catalog, the NOTIFY, in one
 * transaction) and, from the moment the write returned (committed), asks
 * every serve instance named on the command line for the series' newest
 * candle, round-robin, until each serves the new one; then asks each once
 * more (a reply must not go back to an older candle). Prints the delays
 * from commit to "every instance serves it" over all writes: p50, p99,
 * max, and how many took longer than the limit or never came.
 *
 *   instances_writer CONNINFO SYMBOL WRITES LIMIT_MS URL...
 *
 * Exit 0 when every write was served by every instance within LIMIT_MS and
 * nothing stale was served after; 1 otherwise; 2 on a usage or setup error.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define MAX_URLS 8
#define GIVE_UP_MS 5000
#define T0 1767225600000LL /* 2026-01-01 */

typedef struct body {
    char buf[8192];
    size_t n;
} body;

static size_t on_data(char *p, size_t size, size_t nmemb, void *ctx)
{
    body *b = ctx;
    size_t len = size * nmemb, room = sizeof b->buf - 1 - b->n;
    size_t take = len < room ? len : room;
    memcpy(b->buf + b->n, p, take);
    b->n += take;
    b->buf[b->n] = 0;
    return len;
}

/* The newest candle time instance h serves for the symbol (-1: no answer). */
static int64_t newest(CURL *h, const char *url)
{
    body b = {.n = 0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    long status = 0;
    if (curl_easy_perform(h) != CURLE_OK ||
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200)
        return -1;
    const char *t = strstr(b.buf, "\"ts\":");
    return t ? strtoll(t + 5, NULL, 10) : -1;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 6 || argc - 5 > MAX_URLS) {
        fprintf(stderr, "usage: instances_writer CONNINFO SYMBOL WRITES LIMIT_MS URL...\n");
        return 2;
    }
    const char *symbol = argv[2];
    int writes = atoi(argv[3]);
    int64_t limit_ms = atoll(argv[4]);
    int nurl = argc - 5;
    an_store_options opt = {.pg_conninfo = argv[1], .pool_size = 1, .connect_timeout_s = 10};
    an_store *s = NULL;
    an_err err = {0};
    if (writes < 1 || an_store_open(&opt, &s, &err) != AN_OK) {
        fprintf(stderr, "instances_writer: %s\n", writes < 1 ? "WRITES must be > 0" : err.msg);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h[MAX_URLS];
    char url[MAX_URLS][512];
    for (int k = 0; k < nurl; k++) {
        h[k] = curl_easy_init();
        curl_easy_setopt(h[k], CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(h[k], CURLOPT_TIMEOUT_MS, 5000L);
        snprintf(url[k], sizeof url[k], "%s/api/v1/data/ohlc?symbol=%s&timeframe=1m&limit=1",
                 argv[5 + k], symbol);
    }
    int64_t *delay = calloc((size_t)writes, sizeof *delay);
    int late = 0, missed = 0, stale = 0, failed = 0;
    for (int i = 0; i < writes && delay; i++) {
        an_candle c = {.ts = T0 + (int64_t)i * 60000,
                       .open = 100 + i % 7,
                       .high = 110 + i % 7,
                       .low = 90,
                       .close = 101 + i % 5,
                       .volume = 1 + i};
        if (an_store_insert_ohlc(s, symbol, "1m", &c, 1, NULL, &err) != AN_OK) {
            fprintf(stderr, "instances_writer: write %d: %s\n", i, err.msg);
            failed++;
            break;
        }
        int64_t t0 = an_store_mono_ms(), took = 0;
        int seen[MAX_URLS] = {0}, left = nurl;
        while (left > 0 && took <= GIVE_UP_MS) {
            for (int k = 0; k < nurl; k++)
                if (!seen[k] && newest(h[k], url[k]) == c.ts) {
                    seen[k] = 1;
                    left--;
                }
            took = an_store_mono_ms() - t0;
        }
        delay[i] = took;
        missed += left > 0;
        late += left == 0 && took > limit_ms;
        for (int k = 0; k < nurl; k++) /* once served, never older again */
            stale += seen[k] && newest(h[k], url[k]) != c.ts;
    }
    int n = failed ? 0 : writes;
    if (n > 0) {
        qsort(delay, (size_t)n, sizeof *delay, cmp64);
        printf("writes=%d instances=%d p50_ms=%" PRId64 " p99_ms=%" PRId64 " max_ms=%" PRId64
               " over_%" PRId64 "ms=%d never=%d stale_after=%d\n",
               n, nurl, delay[n / 2], delay[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1],
               delay[n - 1], limit_ms, late, missed, stale);
    }
    free(delay);
    for (int k = 0; k < nurl; k++)
        curl_easy_cleanup(h[k]);
    curl_global_cleanup();
    an_store_close(s);
    return failed || n == 0 || late || missed || stale ? 1 : 0;
}
