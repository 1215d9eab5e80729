/*
 * blocks.c - the block cache of closed candle history (see blocks.h): a
 * hash table of blocks keyed by (symbol, timeframe, block number), a
 * least-recently-used list of the loaded ones for eviction, and the read
 * that walks a query's blocks oldest or newest first and asks the store
 * only for what no closed block holds.
 *
 * Locking: b->lock guards the table, the list, every block's fields and the
 * counters; it is held to find, copy out of, insert and drop blocks, never
 * across a store read. A block being loaded is in the table (loading = 1,
 * not in the list), so a write heard meanwhile finds it and marks it dirty
 * (and unlinks it): its loader then frees it instead of keeping rows that
 * may predate the write. Called on the handler workers (reads), the warming
 * thread (blocks_warm.c) and the writing thread or the listener (drops).
 */
#include "api/blocks.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/market.h"
#include "core/numfmt.h"

#define DROP_LOOKUPS 64 /* a dropped range of more blocks scans the table */

/* A block's rows, oldest first: each row's open time (its bar, 2 bytes,
 * when every row is on one, else whole) and its five numbers' shortest
 * round-trip text ("o,h,l,c,v", null for what JSON cannot hold; len[] each
 * row's length, mark[] where every 64th row starts). The keys and the head
 * are written when a row is sent (expand()); rows without text get the
 * numbers read back (they read back as the same doubles). About 45 bytes a
 * candle (92 with the keys and whole times, 196 with binary rows). */
#define MARK_EVERY 64

typedef struct rows {
    int64_t base, step; /* row i's time: base + bar[i] * step (bar != NULL) */
    uint16_t *bar;
    int64_t *ts; /* else row i's time (ts != NULL) */
    uint8_t *len;
    uint32_t *mark; /* row k * MARK_EVERY's text starts at num[mark[k]] */
    char *num;
    size_t n;
} rows;

typedef struct block {
    struct block *hnext;       /* the table's chain */
    struct block *prev, *next; /* the list, most recent first (loaded blocks only) */
    char symbol[AN_SYMBOL_MAX];
    char tf[AN_TIMEFRAME_MAX];
    int64_t idx; /* covers [idx * span, (idx + 1) * span) */
    uint64_t hash;
    int loading, dirty;
    int64_t loaded_ms;
    rows r;
    size_t bytes;
} block;

struct an_api_blocks {
    pthread_mutex_t lock;
    block **tab;
    size_t nb; /* a power of two */
    block lru; /* the list's sentinel: lru.next the most recent */
    size_t bytes, max_bytes, nblocks;
    uint64_t hits, misses, evictions, dropped, passed;
    uint64_t warm_blocks, warm_bytes; /* loaded by warming (blocks_warm.c) */
    /* the admission doorkeeper: the keys of recently missed blocks not
     * kept, one per slot (key % nghost), overwritten in place */
    uint64_t *ghost;
    size_t nghost; /* a power of two */
};

int64_t an_api_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static uint64_t key_hash(const char *symbol, const char *tf, int64_t idx)
{
    uint64_t x = 1469598103934665603ull;
    for (const char *p = symbol; *p; p++)
        x = (x ^ (unsigned char)*p) * 1099511628211ull;
    x = (x ^ '|') * 1099511628211ull;
    for (const char *p = tf; *p; p++)
        x = (x ^ (unsigned char)*p) * 1099511628211ull;
    x ^= (uint64_t)idx * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 32);
}

an_api_blocks *an_api_blocks_new(size_t max_bytes)
{
    if (max_bytes == 0)
        return NULL;
    an_api_blocks *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    size_t want = max_bytes / 16384, nb = 64;
    while (nb < want && nb < ((size_t)1 << 20))
        nb <<= 1;
    if (!(b->tab = calloc(nb, sizeof *b->tab))) {
        free(b);
        return NULL;
    }
    /* about a tenth as many slots as the blocks that fit (~90 KB each
     * with their times and text): see admit() */
    size_t ng = 64;
    while (ng < max_bytes / (1024 * 1024) && ng < ((size_t)1 << 20))
        ng <<= 1;
    if (!(b->ghost = calloc(ng, sizeof *b->ghost))) {
        free(b->tab);
        free(b);
        return NULL;
    }
    b->nghost = ng;
    b->nb = nb;
    b->max_bytes = max_bytes;
    b->lru.next = b->lru.prev = &b->lru;
    pthread_mutex_init(&b->lock, NULL);
    return b;
}

void an_api_rendered_free(an_api_rendered *r)
{
    free(r->buf.body);
    free(r->end);
    memset(r, 0, sizeof *r);
}

static void rows_free(rows *r)
{
    free(r->bar);
    free(r->ts);
    free(r->len);
    free(r->mark);
    free(r->num);
    memset(r, 0, sizeof *r);
}

static size_t nmarks(size_t n)
{
    return (n + MARK_EVERY - 1) / MARK_EVERY;
}

/* The bytes r holds (its allocations, trimmed to their use). */
static size_t rows_bytes(const rows *r)
{
    if (r->n == 0)
        return 0;
    size_t last = r->n - 1, at = r->mark[last / MARK_EVERY];
    for (size_t i = last / MARK_EVERY * MARK_EVERY; i <= last; i++)
        at += r->len[i];
    return r->n * ((r->bar ? sizeof *r->bar : sizeof *r->ts) + sizeof *r->len) +
           nmarks(r->n) * sizeof *r->mark + at;
}

static int64_t row_ts(const rows *r, size_t i)
{
    return r->bar ? r->base + (int64_t)r->bar[i] * r->step : r->ts[i];
}

/* Where row i's text starts in r->num. */
static size_t row_at(const rows *r, size_t i)
{
    size_t at = r->mark[i / MARK_EVERY];
    for (size_t j = i / MARK_EVERY * MARK_EVERY; j < i; j++)
        at += r->len[j];
    return at;
}

static void block_free(block *k)
{
    rows_free(&k->r);
    free(k);
}

/* r from the store's candles v[0..n) (oldest first) of the block starting
 * at base, bars of step ms. */
static an_code rows_make(const an_candle *v, size_t n, int64_t base, int64_t step, rows *r,
                         an_err *err)
{
    memset(r, 0, sizeof *r);
    if (n == 0)
        return AN_OK;
    int on_bars = n <= AN_BLOCK_BARS && step > 0;
    for (size_t i = 0; on_bars && i < n; i++)
        on_bars = v[i].ts >= base && (v[i].ts - base) % step == 0 &&
                  (v[i].ts - base) / step < AN_BLOCK_BARS;
    char *num = malloc(n * 5 * AN_NUM_MAX);
    r->len = malloc(n * sizeof *r->len);
    r->mark = malloc(nmarks(n) * sizeof *r->mark);
    if (on_bars)
        r->bar = malloc(n * sizeof *r->bar);
    else
        r->ts = malloc(n * sizeof *r->ts);
    if (!num || !r->len || !r->mark || !(r->bar || r->ts)) {
        free(num);
        rows_free(r);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory keeping %zu candles", n);
    }
    r->base = base;
    r->step = step;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (r->bar)
            r->bar[i] = (uint16_t)((v[i].ts - base) / step);
        else
            r->ts[i] = v[i].ts;
        if (i % MARK_EVERY == 0)
            r->mark[i / MARK_EVERY] = (uint32_t)at; /* under 160 bytes a row */
        const double f[5] = {v[i].open, v[i].high, v[i].low, v[i].close, v[i].volume};
        size_t from = at;
        for (int j = 0; j < 5; j++) {
            if (j)
                num[at++] = ',';
            at += an_api_json_number(f[j], num + at);
        }
        r->len[i] = (uint8_t)(at - from); /* at most 5 * 31 + 4 */
    }
    char *fit = realloc(num, at); /* kept long: no slack */
    r->num = fit ? fit : num;
    r->n = n;
    return AN_OK;
}

/* The first row of r at or after ts (r->n when none). */
static size_t lower_bound(const rows *r, int64_t ts)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (row_ts(r, mid) < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Row i of r (its text at num) as a candle: the numbers read back. */
static an_candle row_candle(const rows *r, size_t i, const char *num)
{
    an_candle c = {.ts = row_ts(r, i)};
    double *f[5] = {&c.open, &c.high, &c.low, &c.close, &c.volume};
    char one[5 * AN_NUM_MAX]; /* NUL-ended: strtod must stop at the row's end */
    memcpy(one, num, r->len[i]);
    one[r->len[i]] = 0;
    const char *p = one, *e = one + r->len[i];
    for (int j = 0; j < 5 && p < e; j++, p++) {
        if (*p == 'n') { /* null: NaN or an infinity (JSON has neither) */
            *f[j] = NAN;
            p += 4;
        } else {
            char *stop;
            *f[j] = strtod(p, &stop);
            p = stop;
        }
    }
    return c;
}

/* Row i's members (an_api_put_candle's text) at out from its numbers' text
 * num[0..len) ("o,h,l,c,v"); the length written. */
static size_t expand(int64_t ts, const char *num, size_t len, char *out)
{
    static const char *const keys[5] = {
        ",\"open\":", ",\"high\":", ",\"low\":", ",\"close\":", ",\"volume\":"};
    static const size_t klen[5] = {8, 8, 7, 9, 10};
    char *p = out + an_api_candle_head(ts, out);
    const char *e = num + len;
    for (int j = 0; j < 5; j++) {
        memcpy(p, keys[j], klen[j]);
        p += klen[j];
        const char *c = memchr(num, ',', (size_t)(e - num));
        size_t n = c ? (size_t)(c - num) : (size_t)(e - num);
        memcpy(p, num, n);
        p += n;
        num += n + (c != NULL);
    }
    return (size_t)(p - out);
}

/* Room for n more items after used in *p (of *cap items of size each),
 * doubling from 1024. */
static an_code grow(void **p, size_t *cap, size_t used, size_t n, size_t size, an_err *err)
{
    if (*cap - used >= n)
        return AN_OK;
    size_t c = *cap ? *cap : 1024;
    while (c - used < n)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory growing an array to %zu items", c);
    *p = q;
    *cap = c;
    return AN_OK;
}

static an_code reserve_ends(an_api_rendered *r, size_t n, an_err *err)
{
    return grow((void **)&r->end, &r->cap, r->n, n, sizeof *r->end, err);
}

/* Appends the JSON of v[0..n) to r. */
static an_code render(const an_candle *v, size_t n, an_api_rendered *r, an_err *err)
{
    if (reserve_ends(r, n, err) != AN_OK)
        return err->code;
    for (size_t i = 0; i < n; i++) {
        an_api_put_candle(&r->buf, &v[i]);
        r->end[r->n++] = r->buf.len;
    }
    if (r->buf.oom)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory printing %zu candles", n);
    return AN_OK;
}

void an_api_blocks_free(an_api_blocks *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->nb; i++)
        for (block *k = b->tab[i], *nx; k; k = nx) {
            nx = k->hnext;
            block_free(k); /* no block is loading: the workers have stopped */
        }
    free(b->tab);
    free(b->ghost);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* ---- the table and the list (b->lock held) ---- */

static block *find(an_api_blocks *b, const char *symbol, const char *tf, int64_t idx, uint64_t h)
{
    for (block *k = b->tab[h & (b->nb - 1)]; k; k = k->hnext)
        if (k->hash == h && k->idx == idx && strcmp(k->symbol, symbol) == 0 &&
            strcmp(k->tf, tf) == 0)
            return k;
    return NULL;
}

static void lru_unlink(block *k)
{
    k->prev->next = k->next;
    k->next->prev = k->prev;
    k->prev = k->next = NULL;
}

static void lru_front(an_api_blocks *b, block *k)
{
    k->next = b->lru.next;
    k->prev = &b->lru;
    b->lru.next->prev = k;
    b->lru.next = k;
}

/* At the cold end: the first out (warmed blocks, before any request's). */
static void lru_back(an_api_blocks *b, block *k)
{
    k->prev = b->lru.prev;
    k->next = &b->lru;
    b->lru.prev->next = k;
    b->lru.prev = k;
}

static void table_unlink(an_api_blocks *b, block *k)
{
    for (block **p = &b->tab[k->hash & (b->nb - 1)]; *p; p = &(*p)->hnext)
        if (*p == k) {
            *p = k->hnext;
            k->hnext = NULL;
            return;
        }
}

/* Takes k out of the cache: a loaded block is freed, a loading one marked
 * dirty for its loader to free. */
static void discard(an_api_blocks *b, block *k)
{
    table_unlink(b, k);
    if (k->loading) {
        k->dirty = 1;
        return;
    }
    lru_unlink(k);
    b->bytes -= k->bytes;
    b->nblocks--;
    block_free(k);
}

static void evict(an_api_blocks *b)
{
    while (b->bytes > b->max_bytes && b->lru.prev != &b->lru) {
        discard(b, b->lru.prev);
        b->evictions++;
    }
}

/* ---- reading ---- */

/* Whether a missed block is loaded and kept (b->lock held). While the cache
 * has room, always. Once full, keeping a block evicts another, and a block
 * load reads twice a 500-row request's rows and prints them: when the
 * history read is larger than the cache (10 million candles against 256
 * MiB: 13% hits) that cost 0.35x the throughput of no block cache. So a
 * full cache keeps a block only on its second miss while its key is still
 * in the doorkeeper (a table of about a tenth as many recent misses as the
 * cache holds blocks: with half as many, 20% of the misses at 10 million
 * candles were still loaded, 0.85x); a block read often (charts looking at
 * recent history) gets in at once, history read once in a while does not,
 * and a miss not kept costs what no cache costs: one store read. */
static int admit(an_api_blocks *b, uint64_t h)
{
    if (b->nblocks == 0 || b->bytes + b->bytes / b->nblocks <= b->max_bytes)
        return 1; /* room for a block of the average size */
    uint64_t *g = &b->ghost[h & (b->nghost - 1)];
    if (*g == h) {
        *g = 0;
        return 1;
    }
    *g = h;
    return 0;
}

static an_code reserve(an_candles *out, size_t n, an_err *err)
{
    return grow((void **)&out->v, &out->cap, out->n, n, sizeof *out->v, err);
}

/* Appends r's rows (oldest first) in [lo, hi) to out, newest first when
 * desc, at most *left of them (*left is decreased). With txt, each row's
 * JSON goes to txt and out gets the rows' open times only (the handler
 * prints the text); without, out gets the whole candles. */
static an_code take(const rows *r, int64_t lo, int64_t hi, int desc, size_t *left, an_candles *out,
                    an_api_rendered *txt, an_err *err)
{
    size_t a = lower_bound(r, lo), z = lower_bound(r, hi); /* [a, z): the rows in [lo, hi) */
    if (z < a)
        z = a;
    size_t m = z - a < *left ? z - a : *left;
    if (m == 0)
        return AN_OK;
    if (reserve(out, m, err) != AN_OK || (txt && reserve_ends(txt, m, err) != AN_OK))
        return err->code;
    /* the text of row i starts at `at`: walked forwards, or back when desc */
    size_t i = desc ? z - 1 : a, at = row_at(r, i);
    for (size_t j = 0; j < m; j++) {
        if (j) {
            if (desc)
                at -= r->len[--i];
            else
                at += r->len[i++];
        }
        if (!txt) {
            out->v[out->n++] = row_candle(r, i, r->num + at);
            continue;
        }
        int64_t ts = row_ts(r, i);
        out->v[out->n++] = (an_candle){.ts = ts};
        char row[AN_API_CANDLE_MAX];
        an_api_put(&txt->buf, row, expand(ts, r->num + at, r->len[i], row));
        txt->end[txt->n++] = txt->buf.len;
    }
    *left -= m;
    if (txt && txt->buf.oom)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory copying rows' text");
    return AN_OK;
}

/* take() from the store's candles v[0..n) (oldest first), printed when txt. */
static an_code take_candles(const an_candle *v, size_t n, int64_t lo, int64_t hi, int desc,
                            size_t *left, an_candles *out, an_api_rendered *txt, an_err *err)
{
    size_t a = 0, z = n; /* [a, z): the rows in [lo, hi) */
    while (a < z && v[a].ts < lo)
        a++;
    while (z > a && v[z - 1].ts >= hi)
        z--;
    size_t m = z - a < *left ? z - a : *left;
    if (m == 0)
        return AN_OK;
    if (reserve(out, m, err) != AN_OK)
        return err->code;
    size_t had = out->n;
    for (size_t j = 0; j < m; j++)
        out->v[out->n++] = v[desc ? z - 1 - j : a + j];
    *left -= m;
    return txt ? render(out->v + had, m, txt, err) : AN_OK;
}

#define LOAD_MAX 8 /* blocks read by one store query at most */

/* One store read for a run of blocks: the ones in it this request keeps
 * (NULL: cached or loading already, or not admitted: read, not kept). */
typedef struct load {
    int64_t i0;
    int n;
    block *mine[LOAD_MAX];
} load;

/* A new loading entry for block idx in the table (b->lock held); NULL
 * when out of memory. */
static block *start_load(an_api_blocks *b, const an_api_series_ref *ser, int64_t idx, uint64_t h)
{
    block *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    memcpy(k->symbol, ser->symbol, strlen(ser->symbol) + 1); /* lengths checked */
    memcpy(k->tf, ser->timeframe, strlen(ser->timeframe) + 1);
    k->idx = idx;
    k->hash = h;
    k->loading = 1;
    k->hnext = b->tab[h & (b->nb - 1)];
    b->tab[h & (b->nb - 1)] = k;
    return k;
}

/* A loading block not kept: freed (out of the table unless a write took it
 * out and marked it dirty). b->lock held. */
static void unload(an_api_blocks *b, block *k)
{
    if (!k->dirty)
        table_unlink(b, k);
    block_free(k);
}

/* Loading block k keeps *r (taken: *r emptied), at the list's front or,
 * when cold, its back (first out). b->lock held. */
static void keep(an_api_blocks *b, block *k, rows *r, size_t bytes, int64_t now_ms, int cold)
{
    k->loading = 0;
    k->loaded_ms = now_ms;
    k->r = *r;
    k->bytes = bytes;
    memset(r, 0, sizeof *r);
    if (cold)
        lru_back(b, k);
    else
        lru_front(b, k);
    b->bytes += bytes;
    b->nblocks++;
}

/* Keeps what ld loaded (rs[j]: block ld->i0 + j's rows) unless a write
 * marked it dirty meanwhile or the read failed; frees the rest. */
static void finish_load(an_api_blocks *b, load *ld, rows *rs, an_code rc, int64_t now_ms)
{
    pthread_mutex_lock(&b->lock);
    for (int j = 0; j < ld->n; j++) {
        block *k = ld->mine[j];
        if (!k)
            continue;
        size_t bytes = sizeof *k + rows_bytes(&rs[j]);
        if (k->dirty || rc != AN_OK || bytes > b->max_bytes) {
            unload(b, k);
            continue;
        }
        keep(b, k, &rs[j], bytes, now_ms, 0);
        evict(b);
    }
    pthread_mutex_unlock(&b->lock);
    for (int j = 0; j < ld->n; j++)
        rows_free(&rs[j]);
}

/* Reads ld's blocks with one store query and takes their rows in [lo, hi)
 * in the request's order (as take()); each block this request keeps is
 * made from its rows first. */
static an_code run_load(an_api_blocks *b, an_store *s, const an_api_series_ref *ser, load *ld,
                        int64_t lo, int64_t hi, int desc, int64_t now_ms, size_t *left,
                        an_candles *out, an_api_rendered *txt, an_err *err)
{
    const int64_t span = ser->tf_ms * AN_BLOCK_BARS;
    an_candles got = {0};
    rows rs[LOAD_MAX] = {{0}};
    an_query q = {.start_ms = ld->i0 * span, .end_ms = (ld->i0 + ld->n) * span, .limit = 0};
    an_code rc = an_store_get_ohlc(s, ser->symbol, ser->timeframe, &q, &got, err);
    size_t at[LOAD_MAX + 1] = {0}; /* block j's rows: got.v[at[j] .. at[j + 1]) */
    for (int j = 0, i = 0; j < ld->n; j++) {
        while ((size_t)i < got.n && got.v[i].ts < (ld->i0 + j + 1) * span)
            i++;
        at[j + 1] = (size_t)i;
    }
    for (int t = 0; rc == AN_OK && t < ld->n; t++) {
        int j = desc ? ld->n - 1 - t : t;
        const an_candle *v = got.v + at[j];
        size_t n = at[j + 1] - at[j];
        if (!ld->mine[j])
            rc = take_candles(v, n, lo, hi, desc, left, out, txt, err);
        else if ((rc = rows_make(v, n, (ld->i0 + j) * span, ser->tf_ms, &rs[j], err)) == AN_OK)
            rc = take(&rs[j], lo, hi, desc, left, out, txt, err);
    }
    an_candles_free(&got);
    finish_load(b, ld, rs, rc, now_ms);
    return rc;
}

/* The rows in [lo, hi) (order and *left as take's) of block idx and, when
 * it is not cached and the request needs them, of the nblk - 1 blocks
 * after it (before it when desc): from the cache, else with one store
 * query for them all (the blocks admitted then kept). *used: the blocks
 * served (1 from the cache). *passed = 1 when block idx is neither cached
 * nor admitted: nothing was read, the caller reads the rest of the request
 * from the store at once. */
static an_code from_blocks(an_api_blocks *b, an_store *s, const an_api_series_ref *ser, int64_t idx,
                           int nblk, int64_t lo, int64_t hi, int desc, int64_t now_ms, size_t *left,
                           an_candles *out, an_api_rendered *txt, int *used, int *passed,
                           an_err *err)
{
    *passed = 0;
    *used = 1;
    uint64_t h = key_hash(ser->symbol, ser->timeframe, idx);
    pthread_mutex_lock(&b->lock);
    block *k = find(b, ser->symbol, ser->timeframe, idx, h);
    if (k && !k->loading && ser->max_age_ms > 0 && now_ms - k->loaded_ms >= ser->max_age_ms) {
        discard(b, k);
        k = NULL;
    }
    if (k && !k->loading) {
        b->hits++;
        lru_unlink(k);
        lru_front(b, k);
        an_code rc = take(&k->r, lo, hi, desc, left, out, txt, err);
        pthread_mutex_unlock(&b->lock);
        return rc;
    }
    if (!k && !admit(b, h)) {
        b->passed++;
        pthread_mutex_unlock(&b->lock);
        *passed = 1;
        return AN_OK;
    }
    b->misses++;
    load ld = {.i0 = desc ? idx - nblk + 1 : idx, .n = nblk};
    for (int j = 0; j < nblk; j++) {
        int64_t bi = ld.i0 + j;
        uint64_t hj = bi == idx ? h : key_hash(ser->symbol, ser->timeframe, bi);
        block *kj = bi == idx ? k : find(b, ser->symbol, ser->timeframe, bi, hj);
        /* block idx was admitted; a block after it is kept when admitted
         * too, and read either way (the request needs its rows) */
        if (!kj && (bi == idx || admit(b, hj)))
            ld.mine[j] = start_load(b, ser, bi, hj);
    }
    pthread_mutex_unlock(&b->lock);
    *used = nblk;
    return run_load(b, s, ser, &ld, lo, hi, desc, now_ms, left, out, txt, err);
}

/* The store's answer for [lo, hi) in q's order, at most left rows (0: no
 * limit), printed into txt when not NULL. */
static an_code direct(an_store *s, const an_api_series_ref *ser, const an_query *q, int64_t lo,
                      int64_t hi, size_t left, an_candles *out, an_api_rendered *txt, an_err *err)
{
    an_query d = {.start_ms = lo, .end_ms = hi, .limit = left, .descending = q->descending};
    size_t had = out->n;
    an_code rc = an_store_get_ohlc(s, ser->symbol, ser->timeframe, &d, out, err);
    if (rc == AN_OK && txt)
        rc = render(out->v + had, out->n - had, txt, err);
    return rc;
}

/* left as bars, no more than LOAD_MAX blocks hold. */
static int64_t want_bars(size_t left)
{
    return left < (size_t)LOAD_MAX * AN_BLOCK_BARS ? (int64_t)left : LOAD_MAX * AN_BLOCK_BARS;
}

/* n blocks, at least 1, at most LOAD_MAX and room (the walk's budget). */
static int64_t clamp_blocks(int64_t n, int64_t room)
{
    n = n < room ? n : room;
    n = n < LOAD_MAX ? n : LOAD_MAX;
    return n < 1 ? 1 : n;
}

an_code an_api_blocks_read(an_api_blocks *b, an_store *s, const an_api_series_ref *ser,
                           const an_query *q, int64_t now_ms, an_candles *out, an_api_rendered *txt,
                           an_err *err)
{
    if (!b || ser->max_age_ms < 0 || ser->rows <= 0 || ser->tf_ms <= 0 || q->limit == 0 ||
        ser->tf_ms > INT64_MAX / AN_BLOCK_BARS / 4 || strlen(ser->symbol) >= AN_SYMBOL_MAX ||
        strlen(ser->timeframe) >= AN_TIMEFRAME_MAX)
        return direct(s, ser, q, q->start_ms, q->end_ms, q->limit, out, txt, err);
    const int64_t span = ser->tf_ms * AN_BLOCK_BARS;
    /* blocks before this one are closed: it holds the newest stored candle */
    const int64_t open_idx = an_api_floordiv(ser->last_ms, span);
    const int64_t first = q->start_ms > ser->first_ms ? q->start_ms : ser->first_ms;
    /* a request walks at most this many blocks; past them (gaps) the store
     * answers the rest at once */
    const int64_t max_blocks = (int64_t)(q->limit / AN_BLOCK_BARS) + 3;
    size_t left = q->limit;
    an_code rc = AN_OK;
    if (!q->descending) {
        int64_t idx = an_api_floordiv(first, span);
        for (int64_t walked = 0; left > 0;) {
            int64_t lo = idx * span > q->start_ms ? idx * span : q->start_ms;
            if (lo >= q->end_ms)
                return AN_OK;
            if (idx >= open_idx || walked >= max_blocks)
                return direct(s, ser, q, lo, q->end_ms, left, out, txt, err);
            /* the closed blocks the rest of the request reaches (no gaps) */
            int64_t last = an_api_floordiv(q->end_ms - 1, span);
            int64_t bars = (lo - idx * span) / ser->tf_ms + want_bars(left);
            int64_t reach = idx + (bars - 1) / AN_BLOCK_BARS;
            last = reach < last ? reach : last;
            last = last < open_idx - 1 ? last : open_idx - 1;
            int nblk = (int)clamp_blocks(last - idx + 1, max_blocks - walked);
            int used, passed;
            rc = from_blocks(b, s, ser, idx, nblk, lo, q->end_ms, 0, now_ms, &left, out, txt, &used,
                             &passed, err);
            if (rc != AN_OK)
                return rc;
            if (passed)
                return direct(s, ser, q, lo, q->end_ms, left, out, txt, err);
            walked += used;
            idx += used;
        }
        return AN_OK;
    }
    int64_t hi = q->end_ms; /* what is left to read is [q->start_ms, hi) */
    if (hi > open_idx * span) {
        int64_t lo = open_idx * span > q->start_ms ? open_idx * span : q->start_ms;
        size_t had = out->n;
        if ((rc = direct(s, ser, q, lo, hi, left, out, txt, err)) != AN_OK)
            return rc;
        left -= out->n - had;
        hi = lo;
    }
    int64_t idx = an_api_floordiv(hi - 1, span);
    for (int64_t walked = 0; left > 0 && hi > first;) {
        if (walked >= max_blocks)
            return direct(s, ser, q, q->start_ms, hi, left, out, txt, err);
        int64_t low = an_api_floordiv(first, span);
        /* the bars of block idx under hi, then left rows down from there */
        int64_t under = (hi - idx * span + ser->tf_ms - 1) / ser->tf_ms;
        int64_t reach = idx + an_api_floordiv(under - want_bars(left), AN_BLOCK_BARS);
        low = reach > low ? reach : low;
        int nblk = (int)clamp_blocks(idx - low + 1, max_blocks - walked);
        int used, passed;
        rc = from_blocks(b, s, ser, idx, nblk, q->start_ms, hi, 1, now_ms, &left, out, txt, &used,
                         &passed, err);
        if (rc != AN_OK)
            return rc;
        if (passed)
            return direct(s, ser, q, q->start_ms, hi, left, out, txt, err);
        walked += used;
        idx -= used;
        hi = (idx + 1) * span;
    }
    return AN_OK;
}

int an_api_blocks_drop(an_api_blocks *b, const an_store_change *ch)
{
    if (!b)
        return 0;
    int monthly = 0;
    int64_t tf_ms = ch->symbol[0] ? an_timeframe_ms(ch->timeframe, &monthly) : 0;
    int64_t span = tf_ms > 0 && tf_ms <= INT64_MAX / AN_BLOCK_BARS / 4 ? tf_ms * AN_BLOCK_BARS : 0;
    int64_t i0 = 0, i1 = -1;
    int closes = !span; /* may have closed a block (see blocks.h) */
    if (span) {
        int64_t lo = ch->first_ms < ch->last_ms ? ch->first_ms : ch->last_ms;
        int64_t hi = ch->first_ms < ch->last_ms ? ch->last_ms : ch->first_ms;
        i0 = an_api_floordiv(lo, span);
        i1 = an_api_floordiv(hi, span);
        /* a block closes when its successor gets a row: the write crossed
         * into a block, or reached a block's first bar */
        closes = i1 > i0 || lo - i0 * span < tf_ms;
    }
    uint64_t n = 0;
    pthread_mutex_lock(&b->lock);
    if (span && i1 >= i0 && i1 - i0 < DROP_LOOKUPS) {
        for (int64_t idx = i0; idx <= i1; idx++) {
            block *k =
                find(b, ch->symbol, ch->timeframe, idx, key_hash(ch->symbol, ch->timeframe, idx));
            if (k) {
                discard(b, k);
                n++;
            }
        }
    } else {
        /* everything, a timeframe of no fixed length, or a wide range */
        for (size_t i = 0; i < b->nb; i++)
            for (block *k = b->tab[i], *nx; k; k = nx) {
                nx = k->hnext;
                if (ch->symbol[0] &&
                    (strcmp(k->symbol, ch->symbol) != 0 || strcmp(k->tf, ch->timeframe) != 0 ||
                     (span && (k->idx < i0 || k->idx > i1))))
                    continue;
                discard(b, k);
                n++;
            }
    }
    b->dropped += n;
    pthread_mutex_unlock(&b->lock);
    return n > 0 || closes;
}

void an_api_blocks_get_stats(an_api_blocks *b, an_api_blocks_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!b)
        return;
    pthread_mutex_lock(&b->lock);
    st->hits = b->hits;
    st->misses = b->misses;
    st->evictions = b->evictions;
    st->passed = b->passed;
    st->dropped = b->dropped;
    st->bytes = b->bytes;
    st->blocks = b->nblocks;
    st->max_bytes = b->max_bytes;
    st->warm_blocks = b->warm_blocks;
    st->warm_bytes = b->warm_bytes;
    pthread_mutex_unlock(&b->lock);
}

/* ---- warming (blocks_warm.c's thread) ---- */

/* Keeps the rows rs[j] of the blocks mine[j] warmed (b->lock held) at the
 * cold end while they fit; the others are freed (*full set). */
static void warm_keep(an_api_blocks *b, block **mine, rows *rs, int n, an_code rc, int64_t now_ms,
                      int *full)
{
    for (int j = 0; j < n; j++) {
        block *k = mine[j];
        if (!k)
            continue;
        size_t bytes = sizeof *k + rows_bytes(&rs[j]);
        if (k->dirty || rc != AN_OK || b->bytes + bytes > b->max_bytes) {
            *full |= rc == AN_OK && !k->dirty;
            unload(b, k);
            continue;
        }
        keep(b, k, &rs[j], bytes, now_ms, 1);
        b->warm_blocks++;
        b->warm_bytes += bytes;
    }
}

an_code an_api_blocks_warm(an_api_blocks *b, an_store *s, const an_api_series_ref *ser, int64_t i0,
                           int64_t i1, int64_t now_ms, int *full, an_err *err)
{
    *full = 0;
    if (i1 - i0 + 1 > AN_BLOCK_WARM_MAX)
        i0 = i1 - AN_BLOCK_WARM_MAX + 1;
    const int64_t span = ser->tf_ms * AN_BLOCK_BARS;
    block *mine[AN_BLOCK_WARM_MAX] = {0};
    rows rs[AN_BLOCK_WARM_MAX] = {{0}};
    int64_t lo = i1 + 1, hi = i0 - 1; /* the blocks to read: [lo, hi] */
    pthread_mutex_lock(&b->lock);
    for (int64_t idx = i1; idx >= i0; idx--) {
        if (b->nblocks && b->bytes + b->bytes / b->nblocks > b->max_bytes) {
            *full = 1; /* no room for a block of the average size */
            break;
        }
        uint64_t h = key_hash(ser->symbol, ser->timeframe, idx);
        if (find(b, ser->symbol, ser->timeframe, idx, h))
            continue;
        if (!(mine[idx - i0] = start_load(b, ser, idx, h)))
            break;
        lo = idx;
        hi = hi > idx ? hi : idx;
    }
    pthread_mutex_unlock(&b->lock);
    if (lo > hi)
        return AN_OK;
    an_candles got = {0};
    an_query q = {.start_ms = lo * span, .end_ms = (hi + 1) * span, .limit = 0};
    an_code rc = an_store_get_ohlc(s, ser->symbol, ser->timeframe, &q, &got, err);
    for (size_t i = 0, from = 0; rc == AN_OK && lo + (int64_t)from <= hi; from++) {
        int64_t idx = lo + (int64_t)from;
        size_t first = i;
        while (i < got.n && got.v[i].ts < (idx + 1) * span)
            i++;
        if (mine[idx - i0])
            rc = rows_make(got.v + first, i - first, idx * span, ser->tf_ms, &rs[idx - i0], err);
    }
    an_candles_free(&got);
    pthread_mutex_lock(&b->lock);
    warm_keep(b, mine, rs, (int)(i1 - i0 + 1), rc, now_ms, full);
    pthread_mutex_unlock(&b->lock);
    for (int j = 0; j < AN_BLOCK_WARM_MAX; j++)
        rows_free(&rs[j]);
    return rc;
}
