/*
 * ingest.c - Binance klines into the store (see ingest.h).
 *
 * One worker thread per parallel slot takes the next symbol; each has its own
 * Binance client (one keep-alive connection) and all share one rate limiter.
 * A symbol's work is a list of ranges: the tail from the newest stored candle
 * (or the backfill start), and, when a --since range is given, every hole
 * inside the stored part of it. Each range is fetched in pages of 1,000 and
 * stored in batches of up to 10,000 candles.
 */
#include "tasks/ingest.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "source/binance.h"

static const char *COMPONENT = "ingest";

#define PAGE 1000
#define STORE_BATCH 10000

typedef struct run_state {
    an_store *store;
    const an_ingest_options *o;
    an_ingest_symbol *results;
    an_binance_limiter *limiter;
    pthread_mutex_t lock;
    size_t next;
    int64_t total_fetched;
} run_state;

typedef struct range {
    int64_t from, to; /* open times, inclusive */
} range;

/* Holes inside [from, to]: stored candles there, but not every interval. */
static an_code find_holes(an_store *s, const char *symbol, const char *tf, int64_t iv, int64_t from,
                          int64_t to, range **out, size_t *n, an_err *err)
{
    an_candles have = {0};
    an_query q = an_query_all();
    q.start_ms = from;
    q.end_ms = to + 1;
    *out = NULL;
    *n = 0;
    an_code rc = an_store_get_ohlc(s, symbol, tf, &q, &have, err);
    if (rc != AN_OK || have.n == 0) {
        an_candles_free(&have);
        return rc;
    }
    size_t cap = 16;
    range *r = malloc(cap * sizeof *r);
    if (!r) {
        an_candles_free(&have);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    int64_t expect = from;
    for (size_t i = 0; i <= have.n; i++) {
        int64_t t = i < have.n ? have.v[i].ts : to + iv;
        if (t > expect && expect <= to) {
            if (*n == cap) {
                range *nr = realloc(r, cap * 2 * sizeof *r);
                if (!nr)
                    break;
                r = nr;
                cap *= 2;
            }
            r[(*n)++] = (range){expect, (t - iv < to ? t - iv : to)};
        }
        expect = t + iv;
    }
    an_candles_free(&have);
    *out = r;
    return AN_OK;
}

static void progress_line(run_state *st, const char *symbol, int64_t cursor, int64_t to)
{
    if (!st->o->progress)
        return;
    char a[40], b[40];
    pthread_mutex_lock(&st->lock);
    fprintf(stderr, "\r\033[Kingest: %s at %s of %s, %" PRId64 " candles so far", symbol,
            an_time_format(cursor, a, sizeof a), an_time_format(to, b, sizeof b),
            st->total_fetched);
    fflush(stderr);
    pthread_mutex_unlock(&st->lock);
}

/* Fetches [from, to] page by page into the store. */
static an_code fetch_range(run_state *st, an_binance *b, an_ingest_symbol *r, int64_t iv,
                           int64_t from, int64_t to, an_err *err)
{
    const an_ingest_options *o = st->o;
    an_candles buf = {0};
    an_code rc = AN_OK;
    int64_t cursor = from;
    while (cursor <= to) {
        if (o->stop && *o->stop) {
            rc = an_err_set(err, AN_ERR_TIMEOUT, "stopped by a signal");
            break;
        }
        size_t rows = 0;
        rc = an_binance_klines(b, r->symbol, o->timeframe, cursor, to, PAGE, &buf, &rows, err);
        if (rc != AN_OK)
            break;
        if (rows == 0)
            break;
        int64_t last = buf.v[buf.n - 1].ts;
        pthread_mutex_lock(&st->lock);
        st->total_fetched += (int64_t)rows;
        pthread_mutex_unlock(&st->lock);
        r->fetched += (int64_t)rows;
        if (buf.n >= STORE_BATCH || (rows < PAGE && buf.n > 0)) {
            an_upsert_counts c;
            if ((rc = an_store_insert_ohlc(st->store, r->symbol, o->timeframe, buf.v, buf.n, &c,
                                           err)) != AN_OK)
                break;
            r->inserted += c.inserted;
            r->updated += c.updated;
            r->unchanged += c.unchanged;
            progress_line(st, r->symbol, buf.v[buf.n - 1].ts, to);
            buf.n = 0;
        }
        if (rows < PAGE)
            break; /* the exchange has nothing more in the range */
        cursor = last + iv;
    }
    if (rc == AN_OK && buf.n > 0) {
        an_upsert_counts c;
        rc = an_store_insert_ohlc(st->store, r->symbol, o->timeframe, buf.v, buf.n, &c, err);
        if (rc == AN_OK) {
            r->inserted += c.inserted;
            r->updated += c.updated;
            r->unchanged += c.unchanged;
        }
    }
    an_candles_free(&buf);
    return rc;
}

static an_code ingest_symbol(run_state *st, an_binance *b, an_ingest_symbol *r, an_err *err)
{
    const an_ingest_options *o = st->o;
    int monthly = 0;
    int64_t iv = an_timeframe_ms(o->timeframe, &monthly);
    if (monthly)
        return an_err_set(err, AN_ERR_UNSUPPORTED, "ingest of 1M candles is not supported yet");
    int exists = 0;
    an_code rc = an_binance_symbol_info(b, r->symbol, &exists, err);
    if (rc != AN_OK)
        return rc;
    if (!exists)
        return an_err_set(err, AN_ERR_NOT_FOUND, "Binance does not list %s", r->symbol);
    int64_t now;
    if ((rc = an_binance_server_time(b, &now, err)) != AN_OK)
        return rc;
    /* the newest candle that has opened by now */
    int64_t last_open = now / iv * iv;
    int64_t to = o->until_ms == INT64_MAX ? last_open : (o->until_ms - 1) / iv * iv;
    if (to > last_open)
        to = last_open;
    int64_t latest = 0;
    int found = 0;
    if ((rc = an_store_get_latest_timestamp(st->store, r->symbol, o->timeframe, &latest, &found,
                                            err)) != AN_OK)
        return rc;
    int64_t since = o->since_ms;
    if (since != INT64_MIN)
        since = (since + iv - 1) / iv * iv;
    range ranges[2];
    int nr = 0;
    range *holes = NULL;
    size_t nholes = 0;
    if (o->force && since != INT64_MIN) {
        ranges[nr++] = (range){since, to};
    } else {
        int64_t tail = found ? latest : (since != INT64_MIN ? since : to - (o->lookback - 1) * iv);
        if (found && since != INT64_MIN && since < latest) {
            /* backfill before the stored range, and holes inside it */
            an_series_info *all = NULL;
            size_t n = 0;
            int64_t first = latest;
            if (an_store_list_series(st->store, &all, &n, err) == AN_OK)
                for (size_t i = 0; i < n; i++)
                    if (!strcmp(all[i].symbol, r->symbol) &&
                        !strcmp(all[i].timeframe, o->timeframe))
                        first = all[i].first_ms;
            free(all);
            if (since < first)
                ranges[nr++] = (range){since, first - iv};
            if ((rc = find_holes(st->store, r->symbol, o->timeframe, iv,
                                 since > first ? since : first, latest, &holes, &nholes, err)) !=
                AN_OK)
                return rc;
            r->holes = (int)nholes;
        }
        if (tail <= to)
            ranges[nr++] = (range){tail, to};
    }
    for (int i = 0; i < nr && rc == AN_OK; i++)
        rc = fetch_range(st, b, r, iv, ranges[i].from, ranges[i].to, err);
    for (size_t i = 0; i < nholes && rc == AN_OK; i++)
        rc = fetch_range(st, b, r, iv, holes[i].from, holes[i].to, err);
    free(holes);
    r->skipped = rc == AN_OK && r->inserted == 0 && r->updated == 0 && r->fetched <= 1;
    return rc;
}

static void *worker(void *arg)
{
    run_state *st = arg;
    const an_ingest_options *o = st->o;
    an_binance_options bo = {o->base_url, o->timeout_ms, o->max_tries, o->backoff_ms,
                             0,           st->limiter,   o->stop};
    an_binance *b = NULL;
    an_err open_err = {0};
    an_code open_rc = an_binance_open(&bo, &b, &open_err);
    for (;;) {
        pthread_mutex_lock(&st->lock);
        size_t i = st->next++;
        pthread_mutex_unlock(&st->lock);
        if (i >= o->n_symbols)
            break;
        an_ingest_symbol *r = &st->results[i];
        an_err err = {0};
        an_code rc = open_rc;
        if (rc != AN_OK)
            err = open_err;
        else
            rc = ingest_symbol(st, b, r, &err);
        r->status = rc;
        if (rc != AN_OK) {
            snprintf(r->error, sizeof r->error, "%s", err.msg);
            AN_WARN(COMPONENT, "msg=\"symbol failed\" symbol=%s error=\"%.300s\"", r->symbol,
                    err.msg);
        }
        if (b) {
            an_binance_stats bs;
            an_binance_get_stats(b, &bs);
            r->requests = bs.requests;
            r->retries = bs.retries;
            r->refused = bs.refused_replies;
        }
        AN_INFO(COMPONENT,
                "msg=\"symbol done\" symbol=%s timeframe=%s status=%s fetched=%" PRId64
                " inserted=%" PRId64 " updated=%" PRId64 " holes=%d",
                r->symbol, o->timeframe, an_code_str(rc), r->fetched, r->inserted, r->updated,
                r->holes);
    }
    an_binance_close(b);
    return NULL;
}

an_code an_ingest_run(an_store *s, const an_ingest_options *o, an_ingest_symbol *results,
                      an_err *err)
{
    if (!an_timeframe_valid(o->timeframe))
        return an_err_set(err, AN_ERR_INVALID, "unknown timeframe '%.16s'", o->timeframe);
    if (o->force && o->since_ms == INT64_MIN)
        return an_err_set(err, AN_ERR_INVALID, "--force needs --since: the range to refetch");
    if (o->since_ms != INT64_MIN && o->until_ms != INT64_MAX && o->until_ms <= o->since_ms)
        return an_err_set(err, AN_ERR_INVALID, "--until must be after --since");
    run_state st = {
        s, o, results, an_binance_limiter_new(o->weight_budget), PTHREAD_MUTEX_INITIALIZER, 0, 0};
    if (!st.limiter)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < o->n_symbols; i++) {
        memset(&results[i], 0, sizeof results[i]);
        snprintf(results[i].symbol, sizeof results[i].symbol, "%s", o->symbols[i]);
    }
    int n = o->parallel < 1 ? 1 : o->parallel > 16 ? 16 : o->parallel;
    if ((size_t)n > o->n_symbols)
        n = (int)o->n_symbols;
    pthread_t th[16];
    int started = 0;
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, worker, &st) == 0)
            started++;
    if (started == 0)
        worker(&st);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (o->progress)
        fprintf(stderr, "\r\033[K");
    an_binance_limiter_free(st.limiter);
    pthread_mutex_destroy(&st.lock);
    return AN_OK;
}
