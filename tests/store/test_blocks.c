/*
 * test_blocks.c - the HTTP server's block cache of closed candle history
 * (src/api/blocks.h) against the store's own answer, run once per backend:
 *   test_blocks duckdb | postgres | timescaledb
 * Random queries (order, start, end, limit, inside and across blocks, gaps,
 * before and after the series) read through the cache must return exactly
 * the candles an_store_get_ohlc returns, bit for bit: on a fresh cache, on a
 * warm one, after an upsert that rewrites old candles inside cached closed
 * blocks, after new candles close the newest block, after a range delete,
 * under a budget that forces evictions, with an age limit, and while
 * another thread rewrites a cached block. A second cache that hears no
 * writes (the invalidation removed) runs the same queries and must serve
 * stale rows after the rewrite and the delete: the comparison can fail.
 * Each comparison starts with the whole series both ways (every block is
 * read), then random queries: 40 (12 on the PGlite server, which is slow);
 * AN_CHECK_ALL=1 runs 400 and ten times the racing writes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "api/blocks.h"
#include "series.h"
#include "store/store.h"
#include "test.h"

static const char *backend;
static char duck_path[256];
static const char *conninfo;
static int nq = 40; /* queries per comparison (fewer on the PGlite server, slow) */

#define T0 1704067200000LL /* 2024-01-01, not on a block boundary */
#define MIN 60000LL
#define SPAN (MIN * AN_BLOCK_BARS)

static an_store *open_store(void)
{
    an_store_options opt = {.pool_size = 3, .connect_timeout_s = 10, .mode = backend};
    if (strcmp(backend, "duckdb") == 0)
        opt.duckdb_path = duck_path;
    else
        opt.pg_conninfo = conninfo;
    an_store *s = NULL;
    an_err err = {0};
    if (an_store_open(&opt, &s, &err) != AN_OK || an_store_migrate(s, NULL, &err) != AN_OK) {
        fprintf(stderr, "cannot open the %s store: %s\n", backend, err.msg);
        exit(1);
    }
    return s;
}

static void reset_backend(void)
{
    if (strcmp(backend, "duckdb") == 0) {
        snprintf(duck_path, sizeof duck_path, "/tmp/autonama-test-blocks-%d.duckdb", (int)getpid());
        unlink(duck_path);
        return;
    }
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r = PQexec(c, "SET client_min_messages = warning;"
                            "DROP SCHEMA IF EXISTS trading CASCADE;"
                            "DROP SCHEMA IF EXISTS analytics CASCADE;"
                            "DROP SCHEMA IF EXISTS optimization CASCADE;"
                            "DROP SCHEMA IF EXISTS autonama CASCADE;");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "reset failed: %s\n", PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    PQfinish(c);
}

/* n candles of the walk from start, the values shifted by bump (a rewrite). */
static void put(an_store *s, const char *symbol, const char *tf, int64_t start, size_t n,
                unsigned seed, double bump)
{
    an_candles c = {0};
    an_test_series sp = an_test_series_1m(start, seed);
    sp.step_ms = an_timeframe_ms(tf, NULL);
    an_test_series_make(&c, n, &sp);
    for (size_t i = 0; i < c.n; i++) {
        c.v[i].open += bump;
        c.v[i].high += bump;
        c.v[i].low += bump;
        c.v[i].close += bump;
    }
    an_err err = {0};
    AN_CHECK_OK(an_store_insert_ohlc(s, symbol, tf, c.v, c.n, NULL, &err), err);
    an_candles_free(&c);
}

/* The series as the catalog lists it (what the routes pass). */
static an_api_series_ref ref_of(an_store *s, const char *symbol, const char *tf, an_series_info *si)
{
    an_err err = {0};
    an_series_info *list = NULL;
    size_t n = 0;
    memset(si, 0, sizeof *si);
    AN_CHECK_OK(an_store_list_series(s, &list, &n, &err), err);
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i].symbol, symbol) == 0 && strcmp(list[i].timeframe, tf) == 0)
            *si = list[i];
    free(list);
    return (an_api_series_ref){.symbol = symbol,
                               .timeframe = tf,
                               .tf_ms = an_timeframe_ms(tf, NULL),
                               .first_ms = si->first_ms,
                               .last_ms = si->last_ms,
                               .rows = si->rows};
}

static uint64_t rng_state = 12;
static uint64_t rnd(uint64_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (rng_state >> 33) % n;
}

/* A random query around [first, last]: any order, start and end (or none),
 * limit 1..5000, edges on and off the minute. */
static an_query random_query(int64_t first, int64_t last)
{
    an_query q = {.start_ms = INT64_MIN, .end_ms = INT64_MAX};
    int64_t lo = first - 2 * SPAN, width = last - first + 4 * SPAN;
    if (rnd(5))
        q.start_ms = lo + (int64_t)rnd((uint64_t)width) / (rnd(2) ? MIN : 1) * (rnd(2) ? MIN : 1);
    if (rnd(2)) {
        int64_t from = q.start_ms == INT64_MIN ? lo : q.start_ms;
        q.end_ms = from + 1 + (int64_t)rnd((uint64_t)(3 * SPAN));
    }
    static const size_t limits[] = {1, 7, 500, 1023, 1024, 1025, 2048, 5000};
    q.limit = rnd(3) ? limits[rnd(8)] : 1 + rnd(5000);
    q.descending = (int)rnd(2);
    return q;
}

static int same(const an_candles *a, const an_candles *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

/* nq random queries (from seed) through cache b and straight from the store;
 * returns how many differed (printing the first). */
static int compare(an_store *s, an_api_blocks *b, const an_api_series_ref *ser, uint64_t seed,
                   int64_t now_ms, const char *when)
{
    rng_state = seed;
    int bad = 0;
    an_candles got = {0}, want = {0};
    an_err err = {0};
    for (int i = 0; i < nq; i++) {
        an_query q = random_query(ser->first_ms, ser->last_ms);
        if (i < 2) /* the whole series, both ways: every block at least once */
            q = (an_query){.start_ms = INT64_MIN, .end_ms = INT64_MAX, .limit = 10000,
                           .descending = i};
        got.n = want.n = 0;
        AN_CHECK_OK(an_api_blocks_read(b, s, ser, &q, now_ms, &got, &err), err);
        AN_CHECK_OK(an_store_get_ohlc(s, ser->symbol, ser->timeframe, &q, &want, &err), err);
        if (!same(&got, &want) && bad++ == 0)
            fprintf(stderr,
                    "  %s: %s %s start %lld end %lld limit %zu %s: %zu rows, the store %zu\n",
                    when, ser->symbol, ser->timeframe, (long long)q.start_ms, (long long)q.end_ms,
                    q.limit, q.descending ? "desc" : "asc", got.n, want.n);
    }
    an_candles_free(&got);
    an_candles_free(&want);
    return bad;
}

static void heard(void *ctx, const an_store_change *ch)
{
    an_api_blocks_drop(ctx, ch);
}

/* The cache answers as the store does through writes it hears; one that
 * hears nothing (no invalidation) serves the old rows. */
static void test_same_as_store(void)
{
    an_store *s = open_store();
    an_err err = {0};
    an_api_blocks *b = an_api_blocks_new(64u << 20), *deaf = an_api_blocks_new(64u << 20);
    AN_CHECK_OK(an_store_watch_local(heard, b, &err), err);
    /* BLK/A 1m: 3,000 candles, a gap of 600, 2,000 more; BLK/A 5m and
     * BLK/B 1m over the same times, other values */
    put(s, "BLK/A", "1m", T0, 3000, 1, 0);
    put(s, "BLK/A", "1m", T0 + 3600 * MIN, 2000, 2, 0);
    put(s, "BLK/A", "5m", T0, 1500, 3, 0);
    put(s, "BLK/B", "1m", T0, 4000, 4, 0);
    an_series_info si;
    an_api_series_ref a = ref_of(s, "BLK/A", "1m", &si);
    an_api_series_ref a5 = ref_of(s, "BLK/A", "5m", &si);
    an_api_series_ref bb = ref_of(s, "BLK/B", "1m", &si);
    int64_t now = an_now_ms();
    AN_CHECK_INT(compare(s, b, &a, 1, now, "cold"), 0);
    AN_CHECK_INT(compare(s, b, &a5, 2, now, "cold 5m"), 0);
    AN_CHECK_INT(compare(s, b, &bb, 3, now, "cold B"), 0);
    an_api_blocks_stats st0, st1;
    an_api_blocks_get_stats(b, &st0);
    AN_CHECK_INT(compare(s, b, &a, 1, now, "warm"), 0);
    AN_CHECK_INT(compare(s, deaf, &a, 1, now, "deaf, before the writes"), 0);
    an_api_blocks_get_stats(b, &st1);
    AN_CHECK_MSG(st0.blocks >= 4 && st1.hits > st0.hits && st1.misses == st0.misses,
                 "a warm pass read the store: %llu blocks, hits %llu -> %llu, misses %llu -> %llu",
                 (unsigned long long)st0.blocks, (unsigned long long)st0.hits,
                 (unsigned long long)st1.hits, (unsigned long long)st0.misses,
                 (unsigned long long)st1.misses);

    /* an import rewriting old candles inside cached closed blocks */
    put(s, "BLK/A", "1m", T0 + 1000 * MIN, 40, 5, 3.25);
    a = ref_of(s, "BLK/A", "1m", &si);
    AN_CHECK_INT(compare(s, b, &a, 1, now, "after a rewrite"), 0);
    AN_CHECK_INT(compare(s, b, &bb, 3, now, "B after A's rewrite"), 0);
    AN_CHECK_MSG(compare(s, deaf, &a, 1, now, "deaf, after a rewrite (expected)") > 0,
                 "a cache that hears no writes still matched: the test cannot fail");
    an_api_blocks_get_stats(b, &st1);
    AN_CHECK_MSG(st1.dropped > 0 && st1.dropped < st1.blocks + st1.dropped,
                 "dropped %llu of %llu blocks", (unsigned long long)st1.dropped,
                 (unsigned long long)st1.blocks);

    /* new candles: the newest block closes, a new one opens */
    put(s, "BLK/A", "1m", T0 + 5600 * MIN, 1500, 6, 0);
    a = ref_of(s, "BLK/A", "1m", &si);
    AN_CHECK_INT(compare(s, b, &a, 7, now, "after new candles"), 0);
    AN_CHECK_INT(compare(s, b, &a, 7, now, "after new candles, warm"), 0);

    /* a delete inside cached blocks, and one of the newest candles; deaf2
     * holds the blocks first */
    an_api_blocks *deaf2 = an_api_blocks_new(64u << 20);
    AN_CHECK_INT(compare(s, deaf2, &a, 7, now, "deaf2, before the deletes"), 0);
    AN_CHECK_OK(an_store_delete_range(s, "ohlc_data", "BLK/A", "1m", T0 + 2000 * MIN,
                                      T0 + 2300 * MIN, &err),
                err);
    AN_CHECK_OK(an_store_delete_range(s, "ohlc_data", "BLK/A", "1m", T0 + 6800 * MIN,
                                      T0 + 7200 * MIN, &err),
                err);
    a = ref_of(s, "BLK/A", "1m", &si);
    AN_CHECK_INT(compare(s, b, &a, 7, now, "after deletes"), 0);
    AN_CHECK_MSG(compare(s, deaf2, &a, 7, now, "deaf2, after deletes (expected)") > 0,
                 "a cache that hears no deletes still matched");
    an_api_blocks_free(deaf2);

    /* blocks older than the age limit are read again (no hook needed) */
    an_api_series_ref aged = a;
    aged.max_age_ms = 1000;
    AN_CHECK_INT(compare(s, deaf, &aged, 8, now + 5000, "deaf, blocks past their age"), 0);
    an_store_unwatch_local(heard, b);
    an_api_blocks_free(b);
    an_api_blocks_free(deaf);
    an_store_close(s);
}

/* A budget of three blocks: least recently used out, never over it, the
 * answers still the store's. */
static void test_evictions(void)
{
    an_store *s = open_store();
    size_t one = AN_BLOCK_BARS * sizeof(an_candle) + 256;
    an_api_blocks *b = an_api_blocks_new(3 * one);
    an_series_info si;
    an_api_series_ref a = ref_of(s, "BLK/A", "1m", &si);
    AN_CHECK_INT(compare(s, b, &a, 11, an_now_ms(), "small budget"), 0);
    an_api_blocks_stats st;
    an_api_blocks_get_stats(b, &st);
    AN_CHECK_MSG(st.evictions > 0 && st.bytes <= 3 * one && st.blocks > 0,
                 "evictions %llu, %llu bytes in %llu blocks", (unsigned long long)st.evictions,
                 (unsigned long long)st.bytes, (unsigned long long)st.blocks);
    an_api_blocks_free(b);
    an_store_close(s);
}

typedef struct racer {
    an_store *s;
    an_api_blocks *b;
    an_api_series_ref ser;
    atomic_int *stop;
    int reads;
} racer;

static void *race_reader(void *p)
{
    racer *r = p;
    an_candles got = {0};
    an_err err = {0};
    an_query q = {.start_ms = T0 + 900 * MIN, .end_ms = T0 + 1200 * MIN, .limit = 500};
    while (!atomic_load(r->stop)) {
        got.n = 0;
        an_api_blocks_read(r->b, r->s, &r->ser, &q, an_now_ms(), &got, &err);
        r->reads++;
    }
    an_candles_free(&got);
    return NULL;
}

/* Readers load and reload the block holding candles 900..1200 while a
 * writer rewrites them: a block read before a write and stored after it
 * must not stay cached. After the writer stops, the cache answers as the
 * store. */
static void test_writes_while_loading(void)
{
    an_store *s = open_store(), *w = s; /* PGlite serves one connection at a time */
    an_err err = {0};
    an_api_blocks *b = an_api_blocks_new(64u << 20);
    AN_CHECK_OK(an_store_watch_local(heard, b, &err), err);
    atomic_int stop = 0;
    racer r[2];
    pthread_t t[2];
    an_series_info si;
    for (int i = 0; i < 2; i++) {
        r[i] = (racer){.s = s, .b = b, .stop = &stop};
        r[i].ser = ref_of(s, "BLK/A", "1m", &si);
        pthread_create(&t[i], NULL, race_reader, &r[i]);
    }
    int writes = nq > 40 ? 200 : 10;
    for (int i = 0; i < writes; i++)
        put(w, "BLK/A", "1m", T0 + 1000 * MIN, 100, 5, 0.01 * (i + 1));
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "  %d writes, %d + %d reads meanwhile\n", writes, r[0].reads, r[1].reads);
    an_api_series_ref a = ref_of(s, "BLK/A", "1m", &si);
    AN_CHECK_INT(compare(s, b, &a, 1, an_now_ms(), "after racing writes"), 0);
    an_store_unwatch_local(heard, b);
    an_api_blocks_free(b);
    an_store_close(s);
}

int main(int argc, char **argv)
{
    backend = argc > 1 ? argv[1] : "duckdb";
    if (strcmp(backend, "postgres") == 0 || strcmp(backend, "timescaledb") == 0) {
        const char *var =
            strcmp(backend, "postgres") == 0 ? "AUTONAMA_TEST_PG" : "AUTONAMA_TEST_TS";
        conninfo = getenv(var);
        if (!conninfo || !*conninfo) {
            fprintf(stderr, "%s is not set: start the servers with scripts/test-services start\n",
                    var);
            return 1;
        }
    } else if (strcmp(backend, "duckdb") != 0) {
        fprintf(stderr, "usage: test_blocks duckdb|postgres|timescaledb\n");
        return 2;
    }
    const char *all = getenv("AN_CHECK_ALL");
    if (all && strcmp(all, "1") == 0)
        nq *= 10;
    else if (strcmp(backend, "timescaledb") == 0)
        nq = 12;
    reset_backend();
    AN_RUN(test_same_as_store);
    AN_RUN(test_evictions);
    AN_RUN(test_writes_while_loading);
    if (strcmp(backend, "duckdb") == 0) {
        unlink(duck_path);
        char wal[300];
        snprintf(wal, sizeof wal, "%s.wal", duck_path);
        unlink(wal);
    }
    return AN_TEST_DONE();
}
