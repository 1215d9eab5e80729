/*
 * ingest.c - candles from a provider into the store (see ingest.h).
 *
 * One worker thread per parallel slot takes the next symbol; each has its own
 * provider connection (one keep-alive connection) and all share the
 * provider's pacing state (Binance's weight limiter). A symbol's work is a
 * list of ranges: the tail from the newest stored candle (or the backfill
 * start), and, when a --since range is given, the part before the stored
 * range and every hole inside it. Each range is fetched page by page; pages
 * are gathered into batches of up to 50,000 candles (or a second's worth)
 * that a writer thread of the symbol stores while the next pages are fetched (one batch in flight:
 * memory stays bounded and the store's order is the fetch order).
 */
#include "tasks/ingest.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/thread.h"
#include "source/provider.h"

static const char *COMPONENT = "ingest";

#define STORE_BATCH 50000

typedef struct run_state {
    an_store *store;
    const an_ingest_options *o;
    const an_provider_ops *prov;
    an_provider_options popt;
    void *shared;
    an_ingest_symbol *results;
    pthread_mutex_t lock;
    size_t next;
    int64_t total_fetched;
    int64_t written_from, written_to; /* open times written (inserted or updated) */
} run_state;

typedef struct range {
    int64_t from, to; /* open times, inclusive */
} range;

static an_thread_create_fn thread_create = pthread_create;

void an_ingest_set_thread_create(an_thread_create_fn fn)
{
    thread_create = fn ? fn : pthread_create;
}

/* ---- the writer: stores one symbol's batches while pages are fetched ---- */

typedef struct writer {
    run_state *st;
    an_ingest_symbol *r;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    an_candles slot; /* the batch in flight */
    int full, quit;
    an_code rc; /* the first failed write; later batches are dropped */
    an_err err;
    int64_t to; /* for the progress line */
} writer;

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

/* Writes one batch; counts go to the symbol's result. */
static an_code store_batch(run_state *st, an_ingest_symbol *r, const an_candles *b, an_err *err)
{
    an_upsert_counts c;
    an_code rc = an_store_insert_ohlc(st->store, r->symbol, st->o->timeframe, b->v, b->n, &c, err);
    if (rc != AN_OK)
        return rc;
    r->inserted += c.inserted;
    r->updated += c.updated;
    r->unchanged += c.unchanged;
    if (c.inserted + c.updated > 0) {
        pthread_mutex_lock(&st->lock);
        if (b->v[0].ts < st->written_from)
            st->written_from = b->v[0].ts;
        if (b->v[b->n - 1].ts > st->written_to)
            st->written_to = b->v[b->n - 1].ts;
        pthread_mutex_unlock(&st->lock);
    }
    return AN_OK;
}

static void *writer_main(void *arg)
{
    an_thread_name("an-ingest-write");
    writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->full && !w->quit)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->full)
            break; /* quit, nothing left */
        pthread_mutex_unlock(&w->mu);
        an_err err = {0};
        an_code rc = AN_OK;
        if (w->rc == AN_OK) { /* only this thread writes w->rc once started */
            rc = store_batch(w->st, w->r, &w->slot, &err);
            if (rc == AN_OK)
                progress_line(w->st, w->r->symbol, w->slot.v[w->slot.n - 1].ts, w->to);
        }
        pthread_mutex_lock(&w->mu);
        if (rc != AN_OK) {
            w->rc = rc;
            w->err = err;
        }
        w->slot.n = 0;
        w->full = 0;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void writer_start(writer *w, run_state *st, an_ingest_symbol *r)
{
    memset(w, 0, sizeof *w);
    w->st = st;
    w->r = r;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->started = pthread_create(&w->th, NULL, writer_main, w) == 0;
}

/* Hands the batch in *b to the writer (b gets an empty buffer back). Waits
 * while the previous batch is still being written. Returns the writer's
 * error, if a write failed. */
static an_code writer_put(writer *w, an_candles *b, an_err *err)
{
    if (b->n == 0)
        return AN_OK;
    if (!w->started) { /* no thread: write in line */
        an_code rc = store_batch(w->st, w->r, b, err);
        b->n = 0;
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    while (w->full)
        pthread_cond_wait(&w->cv, &w->mu);
    an_code rc = w->rc;
    if (rc != AN_OK) {
        *err = w->err;
    } else {
        an_candles t = w->slot;
        w->slot = *b;
        *b = t;
        b->n = 0;
        w->full = 1;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* Waits for the last batch, stops the thread; the first write error. */
static an_code writer_finish(writer *w, an_err *err)
{
    if (w->started)
        an_thread_stop_join(&w->mu, &w->cv, &w->quit, w->th);
    an_code rc = w->rc;
    if (rc != AN_OK)
        *err = w->err;
    an_candles_free(&w->slot);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return rc;
}

/* ---- planning ------------------------------------------------------------ */

/* The open time n candles before t. */
static int64_t back(const char *tf, int64_t t, int64_t n)
{
    int monthly = 0;
    int64_t iv = an_timeframe_ms(tf, &monthly);
    if (!monthly)
        return t - n * iv;
    for (int64_t i = 0; i < n && t > 0; i++)
        t = an_timeframe_floor(tf, t - 1);
    return t;
}

/* Holes inside [from, to]: stored candles there, but not every interval. */
static an_code find_holes(an_store *s, const char *symbol, const char *tf, int64_t from, int64_t to,
                          range **out, size_t *n, an_err *err)
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
    for (size_t i = 0; i < have.n && rc == AN_OK; i++) {
        int64_t t = have.v[i].ts;
        if (t > expect) {
            if (*n == cap) {
                range *nr = realloc(r, cap * 2 * sizeof *r);
                if (!nr) {
                    rc = an_err_set(err, AN_ERR_NOMEM, "out of memory");
                    break;
                }
                r = nr;
                cap *= 2;
            }
            r[(*n)++] = (range){expect, an_timeframe_floor(tf, t - 1)};
        }
        expect = an_timeframe_next(tf, t);
    }
    an_candles_free(&have);
    if (rc != AN_OK) {
        free(r);
        *n = 0;
        return rc;
    }
    *out = r;
    return AN_OK;
}

/* ---- fetching ------------------------------------------------------------ */

/* Fetches [from, to] page by page; full batches go to the writer. */
static an_code fetch_range(run_state *st, void *conn, writer *w, an_ingest_symbol *r, int64_t from,
                           int64_t to, an_err *err)
{
    const an_ingest_options *o = st->o;
    an_candles buf = {0};
    an_code rc = AN_OK, stop_rc = AN_OK;
    int64_t cursor = from, flushed = an_now_ms();
    w->to = to;
    while (cursor <= to) {
        if (o->stop && atomic_load(o->stop)) {
            stop_rc = an_err_set(err, AN_ERR_TIMEOUT, "stopped: the process is shutting down");
            break; /* what was fetched is still stored below */
        }
        size_t rows = 0;
        rc = st->prov->fetch(conn, r->symbol, o->timeframe, cursor, to, &buf, &rows, err);
        if (rc != AN_OK || rows == 0)
            break;
        int64_t last = buf.v[buf.n - 1].ts;
        pthread_mutex_lock(&st->lock);
        st->total_fetched += (int64_t)rows;
        pthread_mutex_unlock(&st->lock);
        r->fetched += (int64_t)rows;
        /* a full batch, or a second's worth on a slow source: progress is
         * stored as it comes, so a stop loses nothing fetched */
        int64_t now = an_now_ms();
        if ((buf.n >= STORE_BATCH || now - flushed >= 1000) && buf.n > 0) {
            if ((rc = writer_put(w, &buf, err)) != AN_OK)
                break;
            flushed = now;
        }
        if (rows < st->prov->page_max)
            break; /* the source has nothing more in the range */
        cursor = an_timeframe_next(o->timeframe, last);
    }
    if (rc == AN_OK) {
        an_err werr = {0};
        rc = writer_put(w, &buf, &werr);
        if (rc != AN_OK)
            *err = werr;
        else
            rc = stop_rc; /* err already says so */
    }
    an_candles_free(&buf);
    return rc;
}

static an_code ingest_symbol(run_state *st, void *conn, an_ingest_symbol *r, an_err *err)
{
    const an_ingest_options *o = st->o;
    const char *tf = o->timeframe;
    int exists = 0;
    an_code rc = st->prov->symbol_exists(conn, r->symbol, &exists, err);
    if (rc != AN_OK)
        return rc;
    if (!exists)
        return an_err_set(err, AN_ERR_NOT_FOUND, "%s does not list %s", st->prov->name, r->symbol);
    int64_t now;
    if ((rc = st->prov->now(conn, &now, err)) != AN_OK)
        return rc;
    /* the newest candle that has opened by now */
    int64_t last_open = an_timeframe_floor(tf, now);
    int64_t to = o->until_ms == INT64_MAX ? last_open : an_timeframe_floor(tf, o->until_ms - 1);
    if (to > last_open)
        to = last_open;
    int64_t latest = 0, first = 0;
    int found = 0, found_first = 0;
    if ((rc = an_store_get_latest_timestamp(st->store, r->symbol, tf, &latest, &found, err)) !=
        AN_OK)
        return rc;
    int64_t since = o->since_ms;
    if (since != INT64_MIN && since > 0 && an_timeframe_floor(tf, since) != since)
        since = an_timeframe_next(tf, an_timeframe_floor(tf, since)); /* round up */
    range ranges[2];
    int nr = 0;
    range *holes = NULL;
    size_t nholes = 0;
    if (o->force && since != INT64_MIN) {
        ranges[nr++] = (range){since, to};
    } else {
        /* the tail: from the newest stored candle (it may have been the open
         * one), or from --since when that is later (the range asked for) */
        int64_t tail = found ? (since != INT64_MIN && since > latest ? since : latest)
                             : (since != INT64_MIN ? since : back(tf, to, o->lookback - 1));
        if (found && since != INT64_MIN && since < latest) {
            /* backfill before the stored range, and holes inside it */
            if ((rc = an_store_get_first_timestamp(st->store, r->symbol, tf, &first, &found_first,
                                                   err)) != AN_OK)
                return rc;
            if (!found_first)
                first = latest;
            int64_t before = an_timeframe_floor(tf, first - 1);
            if (since < first)
                ranges[nr++] = (range){since, before < to ? before : to};
            int64_t hfrom = since > first ? since : first, hto = latest < to ? latest : to;
            if (hfrom <= hto && (rc = find_holes(st->store, r->symbol, tf, hfrom, hto, &holes,
                                                 &nholes, err)) != AN_OK)
                return rc;
            r->holes = (int)nholes;
        }
        if (tail <= to)
            ranges[nr++] = (range){tail, to};
    }
    writer w;
    writer_start(&w, st, r);
    for (int i = 0; i < nr && rc == AN_OK; i++)
        rc = fetch_range(st, conn, &w, r, ranges[i].from, ranges[i].to, err);
    for (size_t i = 0; i < nholes && rc == AN_OK; i++)
        rc = fetch_range(st, conn, &w, r, holes[i].from, holes[i].to, err);
    an_err werr = {0};
    an_code wrc = writer_finish(&w, &werr);
    if (rc == AN_OK && wrc != AN_OK) {
        rc = wrc;
        *err = werr;
    }
    free(holes);
    r->skipped = rc == AN_OK && r->inserted == 0 && r->updated == 0 && r->fetched <= 1;
    return rc;
}

static void *worker(void *arg)
{
    an_thread_name("an-ingest-fetch");
    run_state *st = arg;
    const an_ingest_options *o = st->o;
    void *conn = NULL;
    an_err open_err = {0};
    an_code open_rc = st->prov->open(&st->popt, st->shared, &conn, &open_err);
    for (;;) {
        pthread_mutex_lock(&st->lock);
        size_t i = st->next++;
        pthread_mutex_unlock(&st->lock);
        if (i >= o->n_symbols)
            break;
        an_ingest_symbol *r = &st->results[i];
        an_provider_stats before = {0};
        if (conn && st->prov->stats)
            st->prov->stats(conn, &before);
        an_err err = {0};
        an_code rc = open_rc;
        if (rc != AN_OK)
            err = open_err;
        else
            rc = ingest_symbol(st, conn, r, &err);
        r->status = rc;
        if (rc != AN_OK) {
            snprintf(r->error, sizeof r->error, "%s", err.msg);
            AN_WARN(COMPONENT, "msg=\"symbol failed\" category=%s symbol=%s error=\"%.300s\"",
                    o->category ? o->category : "crypto", r->symbol, err.msg);
        }
        if (conn && st->prov->stats) { /* this symbol's share of the connection's counts */
            an_provider_stats after;
            st->prov->stats(conn, &after);
            r->requests = after.requests - before.requests;
            r->retries = after.retries - before.retries;
            r->refused = after.refused_replies - before.refused_replies;
            r->rate_limited = after.rate_limited - before.rate_limited;
        }
        AN_INFO(COMPONENT,
                "msg=\"symbol done\" category=%s symbol=%s timeframe=%s status=%s fetched=%" PRId64
                " inserted=%" PRId64 " updated=%" PRId64 " holes=%d requests=%" PRId64
                " retries=%" PRId64,
                o->category ? o->category : "crypto", r->symbol, o->timeframe, an_code_str(rc),
                r->fetched, r->inserted, r->updated, r->holes, r->requests, r->retries);
    }
    st->prov->close(conn);
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
    const char *pname = o->provider ? o->provider : "binance";
    const an_provider_ops *prov = an_provider_find(pname);
    if (!prov)
        return an_err_set(err, AN_ERR_INVALID, "unknown provider '%.40s'", pname);
    run_state st = {0};
    st.store = s;
    st.o = o;
    st.prov = prov;
    st.results = results;
    st.written_from = INT64_MAX;
    st.written_to = INT64_MIN;
    st.popt.source = o->source ? o->source : o->base_url;
    st.popt.timeout_ms = o->timeout_ms;
    st.popt.max_tries = o->max_tries;
    st.popt.backoff_ms = o->backoff_ms;
    st.popt.weight_budget = o->weight_budget;
    st.popt.stop_flag = o->stop;
    if (prov->shared_new && !(st.shared = prov->shared_new(&st.popt)))
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&st.lock, NULL);
    for (size_t i = 0; i < o->n_symbols; i++) {
        memset(&results[i], 0, sizeof results[i]);
        snprintf(results[i].symbol, sizeof results[i].symbol, "%s", o->symbols[i]);
    }
    int n = o->parallel < 1 ? 1 : o->parallel > 16 ? 16 : o->parallel;
    if ((size_t)n > o->n_symbols)
        n = (int)o->n_symbols;
    /* the handles of the threads that started, packed: a thread that cannot
     * start leaves no hole to join, and every started one is joined before
     * st (on this stack) goes away */
    pthread_t th[16];
    int started = 0;
    for (int i = 0; i < n; i++)
        if (thread_create(&th[started], NULL, worker, &st) == 0)
            started++;
    if (started == 0)
        worker(&st);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (o->progress)
        fprintf(stderr, "\r\033[K");
    if (prov->shared_free)
        prov->shared_free(st.shared);
    pthread_mutex_destroy(&st.lock);
    /* the 1h/1d rollups of what was written, whole days around it */
    if (strcmp(o->timeframe, "1m") == 0 && st.written_from <= st.written_to) {
        int64_t day = 86400000LL;
        an_err rerr = {0};
        if (an_store_refresh_rollups(s, st.written_from / day * day,
                                     (st.written_to + 60000 + day - 1) / day * day, &rerr) != AN_OK)
            AN_WARN(COMPONENT, "msg=\"rollup refresh failed\" error=\"%.300s\"", rerr.msg);
    }
    return AN_OK;
}
