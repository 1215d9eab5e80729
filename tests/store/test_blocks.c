/*
 * test_blocks.c - the HTTP server's block cache of closed candle history
 * (src/api/blocks.h) against the store's own answer, run once per backend:
 *   test_blocks duckdb | postgres | timescaledb
 * Random queries (order, start, end, limit, inside and across blocks, gaps,
 * before and after the series) read through the cache must return exactly
 * the candles an_store_get_ohlc returns, bit for bit: on a fresh cache, on a
 * warm one, after an upsert that rewrites old candles inside cached closed
 * blocks, after new candles close the newest block, after a range delete,
 * under a budget that forces evictions (and, once full, keeps a block only
 * on its second miss) and with an age limit. A write heard
 * while a block loads keeps it out of the cache (PostgreSQL, where a lock
 * can hold the load). A second cache that hears no
 * writes (the invalidation removed) runs the same queries and must serve
 * stale rows after the rewrite and the delete: the comparison can fail.
 * Each comparison starts with the whole series both ways (every block is
 * read), then random queries: 18 (2 on the PGlite server, which is slow;
 * 4 under the sanitizers); AN_CHECK_ALL=1 runs 198.
 */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "api/blocks.h"
#include "backend.h"
#include "series.h"
#include "store/store.h"
#include "test.h"

static an_test_backend be;
static int nq = 20; /* queries per comparison (fewer on the PGlite server, slow) */

#define T0 1704067200000LL /* 2024-01-01, not on a block boundary */
#define MIN 60000LL
#define SPAN (MIN * AN_BLOCK_BARS)

static an_store *open_store(void)
{
    return an_test_backend_open(&be, 3);
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

/* The same rows, bit for bit; only the same open times when ts_only (a
 * read with text gives the rows' times, their numbers are in the text). */
static int same(const an_candles *a, const an_candles *b, int ts_only)
{
    if (a->n != b->n)
        return 0;
    if (!ts_only)
        return a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].ts != b->v[i].ts)
            return 0;
    return 1;
}

/* txt holds, row for row, the JSON an_api_put_candle prints for want. */
static int same_text(const an_api_rendered *txt, const an_candles *want)
{
    if (txt->n != want->n)
        return 0;
    an_api_reply one = {0};
    int ok = 1;
    for (size_t i = 0; ok && i < want->n; i++) {
        one.len = 0;
        an_api_put_candle(&one, &want->v[i]);
        size_t from = i ? txt->end[i - 1] : 0;
        ok = txt->end[i] - from == one.len && memcmp(txt->buf.body + from, one.body, one.len) == 0;
    }
    free(one.body);
    return ok;
}

/* nq random queries (from seed) through cache b and straight from the store
 * (the rows, and their JSON as the handler would print them); returns how
 * many differed (printing the first). */
static int compare(an_store *s, an_api_blocks *b, const an_api_series_ref *ser, uint64_t seed,
                   int64_t now_ms, const char *when)
{
    rng_state = seed;
    int bad = 0;
    an_candles got = {0}, want = {0};
    an_api_rendered txt = {0};
    an_err err = {0};
    for (int i = 0; i < nq; i++) {
        an_query q = random_query(ser->first_ms, ser->last_ms);
        if (i < 2) /* the whole series, both ways: every block at least once */
            q = (an_query){
                .start_ms = INT64_MIN, .end_ms = INT64_MAX, .limit = 10000, .descending = i};
        got.n = want.n = txt.n = txt.buf.len = 0;
        AN_CHECK_OK(an_api_blocks_read(b, s, ser, &q, now_ms, &got, i % 2 ? &txt : NULL, &err),
                    err);
        AN_CHECK_OK(an_store_get_ohlc(s, ser->symbol, ser->timeframe, &q, &want, &err), err);
        if ((!same(&got, &want, i % 2) || (i % 2 && !same_text(&txt, &want))) && bad++ == 0)
            fprintf(stderr,
                    "  %s: %s %s start %lld end %lld limit %zu %s: %zu rows, the store %zu\n", when,
                    ser->symbol, ser->timeframe, (long long)q.start_ms, (long long)q.end_ms,
                    q.limit, q.descending ? "desc" : "asc", got.n, want.n);
    }
    an_candles_free(&got);
    an_candles_free(&want);
    an_api_rendered_free(&txt);
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
    /* BLK/A 1m: 1,800 candles, a gap of 300, 1,200 more (blocks start 472
     * minutes before T0: three closed blocks, the newest open); BLK/A 5m
     * and BLK/B 1m over the same times, other values */
    put(s, "BLK/A", "1m", T0, 1800, 1, 0);
    put(s, "BLK/A", "1m", T0 + 2100 * MIN, 1200, 2, 0);
    put(s, "BLK/A", "5m", T0, 600, 3, 0);
    put(s, "BLK/B", "1m", T0, 1500, 4, 0);
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
    put(s, "BLK/A", "1m", T0 + 3300 * MIN, 600, 6, 0);
    a = ref_of(s, "BLK/A", "1m", &si);
    AN_CHECK_INT(compare(s, b, &a, 7, now, "after new candles"), 0);
    AN_CHECK_INT(compare(s, b, &a, 7, now, "after new candles, warm"), 0);

    /* a delete inside cached blocks, and one of the newest candles; deaf2
     * holds the blocks first */
    an_api_blocks *deaf2 = an_api_blocks_new(64u << 20);
    AN_CHECK_INT(compare(s, deaf2, &a, 7, now, "deaf2, before the deletes"), 0);
    AN_CHECK_OK(an_store_delete_range(s, "ohlc_data", "BLK/A", "1m", T0 + 1200 * MIN,
                                      T0 + 1350 * MIN, &err),
                err);
    AN_CHECK_OK(an_store_delete_range(s, "ohlc_data", "BLK/A", "1m", T0 + 3800 * MIN,
                                      T0 + 3950 * MIN, &err),
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

/* A budget of about two blocks (a candle's bar, length and numbers' text:
 * 40 to 70 bytes): least recently used out, never over it, the answers
 * still the store's. */
static void test_evictions(void)
{
    an_store *s = open_store();
    size_t budget = 2 * AN_BLOCK_BARS * 70;
    an_api_blocks *b = an_api_blocks_new(budget);
    an_series_info si;
    an_api_series_ref a = ref_of(s, "BLK/A", "1m", &si);
    AN_CHECK_INT(compare(s, b, &a, 11, an_now_ms(), "small budget"), 0);
    an_api_blocks_stats st;
    an_api_blocks_get_stats(b, &st);
    /* the budget was reached: blocks evicted, or (a full cache's first
     * miss of a block, test_admission) read and not kept */
    AN_CHECK_MSG(st.evictions + st.passed > 0 && st.bytes <= budget && st.blocks > 0,
                 "evictions %llu, passed %llu, %llu bytes in %llu blocks",
                 (unsigned long long)st.evictions, (unsigned long long)st.passed,
                 (unsigned long long)st.bytes, (unsigned long long)st.blocks);
    an_api_blocks_free(b);
    an_store_close(s);
}

/* Block k of BLK/A 1m's closed blocks, from 8 minutes after T0 (block 0)
 * to the block's end: 20 rows, either order. */
static an_query block_query(int k, int desc)
{
    const int64_t b0 = T0 / SPAN; /* the first block's number */
    return (an_query){.start_ms = (b0 + k) * SPAN + 480 * MIN,
                      .end_ms = (b0 + k + 1) * SPAN,
                      .limit = 20,
                      .descending = desc};
}

/* The bytes block k takes in the cache. */
static uint64_t block_bytes(an_store *s, const an_api_series_ref *a, int k)
{
    an_api_blocks *b = an_api_blocks_new((size_t)64 << 20);
    an_query q = block_query(k, 0);
    an_candles got = {0};
    an_err err = {0};
    AN_CHECK_OK(an_api_blocks_read(b, s, a, &q, an_now_ms(), &got, NULL, &err), err);
    an_api_blocks_stats st;
    an_api_blocks_get_stats(b, &st);
    an_candles_free(&got);
    an_api_blocks_free(b);
    return st.bytes;
}

/* The admission rule of a full cache (blocks.c admit()), with a budget
 * that holds any one of the three closed blocks but not two: after the
 * first block is kept, a block missed once is read from the store with the
 * request and not kept (passed), the same block missed again soon is kept
 * (evicting the other), and every answer is still the store's. Before the
 * rule every miss loaded and kept its block, evicting another: at 10
 * million candles against 256 MiB that made the block cache 0.35x the
 * throughput of none. */
static void test_admission(void)
{
    an_store *s = open_store();
    an_series_info si;
    an_api_series_ref a = ref_of(s, "BLK/A", "1m", &si);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int k = 0; k < 3; k++) {
        uint64_t n = block_bytes(s, &a, k);
        lo = n < lo ? n : lo;
        hi = n > hi ? n : hi;
    }
    /* any one block fits, and with one kept there is no room for another
     * of its size (admit() asks for room for the average block) */
    AN_CHECK_MSG(lo > 0 && 2 * lo > hi + 1024, "block sizes %llu..%llu", (unsigned long long)lo,
                 (unsigned long long)hi);
    /* block 1 holds 1,024 candles: a bar, a length and the numbers' text
     * each (70 bytes with these long decimals, 3 + 67; 121 when a block
     * kept the keys and whole times) */
    uint64_t full = block_bytes(s, &a, 1);
    AN_CHECK_MSG(full < 80 * AN_BLOCK_BARS, "%.1f bytes a candle (want under 80)",
                 (double)full / AN_BLOCK_BARS);
    size_t budget = (size_t)(hi + 2 * lo) / 2;
    an_api_blocks *b = an_api_blocks_new(budget);
    an_err err = {0};
    an_candles got = {0}, want = {0};
    an_api_blocks_stats st;
    const int order[] = {0, 1, 1, 2, 2, 0, 0};
    const uint64_t want_passed[] = {0, 1, 1, 2, 2, 3, 3};
    for (int i = 0; i < 7; i++) {
        an_query q = block_query(order[i], i % 2);
        got.n = want.n = 0;
        AN_CHECK_OK(an_api_blocks_read(b, s, &a, &q, an_now_ms(), &got, NULL, &err), err);
        AN_CHECK_OK(an_store_get_ohlc(s, a.symbol, a.timeframe, &q, &want, &err), err);
        AN_CHECK_MSG(same(&got, &want, 0) && got.n == 20,
                     "read %d (block %d): %zu rows, the store %zu", i, order[i], got.n, want.n);
        an_api_blocks_get_stats(b, &st);
        AN_CHECK_MSG(st.passed == want_passed[i] && st.blocks == 1 && st.bytes <= budget,
                     "after read %d (block %d): %llu passed (want %llu), %llu blocks, %llu bytes",
                     i, order[i], (unsigned long long)st.passed, (unsigned long long)want_passed[i],
                     (unsigned long long)st.blocks, (unsigned long long)st.bytes);
    }
    an_candles_free(&got);
    an_candles_free(&want);
    an_api_blocks_free(b);
    an_store_close(s);
}

typedef struct loader {
    an_store *s;
    an_api_blocks *b;
    an_api_series_ref ser;
    an_candles got;
    an_code rc;
} loader;

static void *load_one(void *p)
{
    loader *l = p;
    an_err err = {0};
    an_query q = {.start_ms = T0 + 900 * MIN, .end_ms = T0 + 1200 * MIN, .limit = 500};
    l->rc = an_api_blocks_read(l->b, l->s, &l->ser, &q, an_now_ms(), &l->got, NULL, &err);
    return NULL;
}

/* A write heard while a block is being read from the store: what the read
 * returns is sent, but the block is not kept (it may predate the write).
 * PostgreSQL only (the read is held with a table lock from another
 * connection; the mechanism is the same for every store): the load waits,
 * the write's change is heard, the lock goes, and the cache must hold
 * nothing; a second read is another miss. */
static void test_write_while_loading(void)
{
    if (strcmp(be.name, "postgres") != 0) {
        fprintf(stderr, "  skipped on %s: needs a second connection to hold a lock\n", be.name);
        return;
    }
    an_store *s = open_store();
    an_api_blocks *b = an_api_blocks_new(64u << 20);
    an_series_info si;
    loader l = {.s = s, .b = b, .ser = ref_of(s, "BLK/A", "1m", &si)};
    PGconn *c = PQconnectdb(be.conninfo);
    PGresult *r = PQexec(c, "BEGIN; LOCK TABLE trading.ohlc_data IN ACCESS EXCLUSIVE MODE");
    AN_CHECK_INT(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    pthread_t t;
    pthread_create(&t, NULL, load_one, &l);
    an_api_blocks_stats st = {0};
    for (int i = 0; i < 200 && st.misses == 0; i++) {
        usleep(10000);
        an_api_blocks_get_stats(b, &st);
    }
    usleep(100000); /* the load is in its query, waiting on the lock */
    an_store_change ch = {.symbol = "BLK/A", .timeframe = "1m"};
    ch.first_ms = ch.last_ms = T0 + 1000 * MIN;
    an_api_blocks_drop(b, &ch);
    r = PQexec(c, "COMMIT");
    PQclear(r);
    pthread_join(t, NULL);
    AN_CHECK_INT(l.rc, AN_OK);
    AN_CHECK_INT(l.got.n, 300);
    an_api_blocks_get_stats(b, &st);
    AN_CHECK_MSG(st.misses == 1 && st.blocks == 0 && st.bytes == 0,
                 "a block loaded across a write was kept: %llu misses, %llu blocks",
                 (unsigned long long)st.misses, (unsigned long long)st.blocks);
    l.got.n = 0;
    load_one(&l);
    an_api_blocks_get_stats(b, &st);
    AN_CHECK_MSG(st.misses == 2 && st.blocks == 1, "then %llu misses, %llu blocks",
                 (unsigned long long)st.misses, (unsigned long long)st.blocks);
    an_candles_free(&l.got);
    PQfinish(c);
    an_api_blocks_free(b);
    an_store_close(s);
}

/* The default size follows the memory: an eighth, 64 MiB to 4 GiB, whole
 * MiB; and what this machine gets is within those bounds. */
static void test_default_size(void)
{
    const uint64_t mib = (uint64_t)1 << 20;
    AN_CHECK_INT(an_api_blocks_size_for(0), 64 * mib);         /* unknown: the floor */
    AN_CHECK_INT(an_api_blocks_size_for(256 * mib), 64 * mib); /* a small machine */
    AN_CHECK_INT(an_api_blocks_size_for(2048 * mib), 256 * mib);
    AN_CHECK_INT(an_api_blocks_size_for(24 * 1024 * mib + 5), 3072 * mib);
    AN_CHECK_INT(an_api_blocks_size_for(256 * 1024 * mib), 4096 * mib); /* the cap */
    size_t here = an_api_blocks_default_bytes();
    AN_CHECK_MSG(here >= 64 * mib && here <= 4096 * mib && here % mib == 0, "%zu bytes", here);
}

/* What a heard write tells the warming thread: work after a drop, after
 * everything, or when a block may have closed; none for the live path's
 * open candle written again inside an open block. */
static void test_drop_wakes_warming(void)
{
    an_store *s = open_store();
    an_api_blocks *b = an_api_blocks_new(64u << 20);
    an_series_info si;
    loader l = {.s = s, .b = b, .ser = ref_of(s, "BLK/A", "1m", &si)};
    const int64_t open0 = (T0 / SPAN + 1) * SPAN; /* the block after T0's */
    an_store_change ch = {.symbol = "BLK/B", .timeframe = "1m"};
    ch.first_ms = ch.last_ms = open0 + 5 * MIN; /* an open candle, mid-block */
    AN_CHECK_INT(an_api_blocks_drop(b, &ch), 0);
    ch.first_ms = open0 + 3 * MIN; /* a few candles inside one block */
    AN_CHECK_INT(an_api_blocks_drop(b, &ch), 0);
    ch.first_ms = ch.last_ms = open0; /* a block's first bar: the one before closed */
    AN_CHECK_INT(an_api_blocks_drop(b, &ch), 1);
    ch.first_ms = open0 - 2 * MIN; /* across a block's start */
    ch.last_ms = open0 + 2 * MIN;
    AN_CHECK_INT(an_api_blocks_drop(b, &ch), 1);
    ch.first_ms = ch.last_ms = open0 + 5 * MIN;
    snprintf(ch.timeframe, sizeof ch.timeframe, "1M"); /* months: no fixed length */
    AN_CHECK_INT(an_api_blocks_drop(b, &ch), 1);
    ch.symbol[0] = 0; /* everything */
    AN_CHECK_INT(an_api_blocks_drop(b, &ch), 1);
    /* a cached block dropped: work, though mid-block (load_one reads
     * T0 + 900 to 1,200 minutes: open0's block) */
    load_one(&l);
    AN_CHECK_INT(l.rc, AN_OK);
    an_api_blocks_stats st;
    an_api_blocks_get_stats(b, &st);
    AN_CHECK_INT(st.blocks, 1);
    ch = (an_store_change){.symbol = "BLK/A", .timeframe = "1m"};
    ch.first_ms = ch.last_ms = open0 + 5 * MIN;
    AN_CHECK_INT(an_api_blocks_drop(b, &ch), 1);
    AN_CHECK_INT(an_api_blocks_drop(b, &ch), 0); /* nothing left to drop */
    an_candles_free(&l.got);
    an_api_blocks_free(b);
    an_store_close(s);
}

int main(int argc, char **argv)
{
    int rc = an_test_backend_init(&be, argc, argv, "blocks");
    if (rc)
        return rc;
    const char *all = getenv("AN_CHECK_ALL");
    if (all && strcmp(all, "1") == 0)
        nq *= 10;
    else if (strcmp(be.name, "timescaledb") == 0)
        nq = 4;
#ifdef __SANITIZE_ADDRESS__
    else /* the sanitizers slow every read: the whole series both ways, and 4 */
        nq = 6;
#endif
    an_test_backend_reset(&be);
    AN_RUN(test_default_size);
    AN_RUN(test_same_as_store);
    AN_RUN(test_evictions);
    AN_RUN(test_admission);
    AN_RUN(test_write_while_loading);
    AN_RUN(test_drop_wakes_warming);
    an_test_backend_done(&be);
    return AN_TEST_DONE();
}
