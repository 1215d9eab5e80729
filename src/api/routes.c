/*
 * routes.c - the API's routes: the table the server dispatches on and the
 * handlers (candles, indicators, symbols, health, metrics, the key check;
 * the task routes are routes_tasks.c's, the optimizer's routes_optimize.c's).
 * Handlers run on the server's worker threads; the only shared state is
 * an_api_state (the list of stored series, cached briefly, under a mutex).
 * Every reply is JSON except /metrics; times are ISO-8601 UTC strings
 * ("timestamp") with the same instant in ms since the epoch ("ts").
 */
#include "api/api.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api/admission.h"
#include "api/blocks.h"
#include "api/buckets.h"
#include "api/params.h"
#include "api/static.h"
#include "core/log.h"
#include "core/market.h"
#include "tasks/health.h"
#include "tasks/tasks.h"

#define MAX_NAMES 32

/* The default indicator set's names (engine.h's AN_IND_DEFAULT). */
static const char *const DEFAULT_NAMES[] = {"sma_20",      "sma_50", "sma_200",     "ema_12",
                                            "ema_26",      "rsi_14", "bb_upper_20", "bb_middle_20",
                                            "bb_lower_20", "macd",   "macd_signal", "macd_hist"};

static void put_time(an_api_reply *rp, int64_t ms)
{
    char t[40];
    an_api_printf(rp, "\"timestamp\":\"%s\",\"ts\":%" PRId64, an_time_format(ms, t, sizeof t), ms);
}

/* ---- shared state: the stored series, cached for the reply-cache TTL ---- */

struct an_api_state {
    /* series_lock guards the three below; held across the listing query on
     * purpose (concurrent misses wait for one reload, not N) */
    pthread_mutex_t series_lock;
    an_series_info *series;
    size_t n;
    int64_t fetched_ms; /* 0: never, or dropped by a write (an_api_state_changed) */
    uint64_t gen;       /* bumped by each write heard: a reload begun before is not kept */
    /* after the store failed as unavailable, data routes answer 503 at once
     * until then (no request waits on a connect timeout meanwhile) */
    pthread_mutex_t down_lock; /* guards the two below; never held across I/O */
    int64_t down_until_ms;
    char down_msg[AN_ERR_MSG_MAX];
};

#define DOWN_HOLD_MS 1000

static void mark_down(const an_api_request *rq, const char *msg)
{
    an_api_state *st = rq->state;
    pthread_mutex_lock(&st->down_lock);
    st->down_until_ms =
        an_now_ms() + DOWN_HOLD_MS; /* from now: the failure may have taken a while */
    snprintf(st->down_msg, sizeof st->down_msg, "%s", msg);
    pthread_mutex_unlock(&st->down_lock);
}

an_api_state *an_api_state_new(void)
{
    an_api_state *st = calloc(1, sizeof *st);
    if (st) {
        pthread_mutex_init(&st->series_lock, NULL);
        pthread_mutex_init(&st->down_lock, NULL);
    }
    return st;
}

void an_api_state_changed(an_api_state *st)
{
    pthread_mutex_lock(&st->series_lock);
    st->fetched_ms = 0;
    st->gen++;
    pthread_mutex_unlock(&st->series_lock);
}

void an_api_state_free(an_api_state *st)
{
    if (!st)
        return;
    free(st->series);
    pthread_mutex_destroy(&st->series_lock);
    pthread_mutex_destroy(&st->down_lock);
    free(st);
}

/* A copy of the stored series (the caller frees *out). refresh 1: reload
 * unless the copy is younger than 250 ms (a symbol was not found); 2: reload
 * (GET /api/v1/symbols, whose counts must be current). */
static an_code series_get(const an_api_request *rq, an_store *s, int refresh, an_series_info **out,
                          size_t *n, an_err *err)
{
    an_api_state *st = rq->state;
    /* the list decides plans and windows, which stay right when it is a
     * little old (a symbol not found reloads it, /api/v1/symbols too): kept
     * 1 s. It reads the series catalog (one row per series, schema v5), so
     * a reload is cheap and runs outside the lock: no request waits on
     * another's query, and a concurrent reload only replaces the copy */
    const int64_t ttl = 1000;
    pthread_mutex_lock(&st->series_lock);
    int64_t age = rq->now_ms - st->fetched_ms;
    int stale = st->fetched_ms == 0 || age >= ttl || age < 0 || (refresh == 1 && age >= 250) ||
                refresh == 2;
    uint64_t gen = st->gen;
    pthread_mutex_unlock(&st->series_lock);
    an_code rc = AN_OK;
    if (stale) {
        an_series_info *list = NULL;
        size_t k = 0;
        rc = an_store_list_series(s, &list, &k, err);
        pthread_mutex_lock(&st->series_lock);
        if (rc == AN_OK && gen != st->gen) {
            /* a write was heard meanwhile: this list may predate it; used
             * for this request only */
            pthread_mutex_unlock(&st->series_lock);
            *out = list;
            *n = k;
            return AN_OK;
        }
        if (rc == AN_OK && rq->now_ms >= st->fetched_ms) { /* not over a newer reload */
            free(st->series);
            st->series = list;
            st->n = k;
            st->fetched_ms = rq->now_ms;
        } else {
            free(list);
        }
    } else {
        pthread_mutex_lock(&st->series_lock);
    }
    *out = NULL;
    *n = 0;
    if (rc == AN_OK && st->n > 0) {
        *out = malloc(st->n * sizeof **out);
        if (!*out)
            rc = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        else {
            memcpy(*out, st->series, st->n * sizeof **out);
            *n = st->n;
        }
    }
    pthread_mutex_unlock(&st->series_lock);
    return rc;
}

/* ---- helpers ------------------------------------------------------------ */

const char *an_api_param(const an_api_request *rq, const char *key)
{
    for (size_t i = 0; i < rq->nargs; i++)
        if (strcmp(rq->args[i].key, key) == 0)
            return rq->args[i].value;
    return NULL;
}

/* The store, or NULL with a 503 naming why. */
static an_store *store_or_503(const an_api_request *rq, an_api_reply *rp)
{
    an_api_state *st = rq->state;
    char msg[AN_ERR_MSG_MAX] = "";
    pthread_mutex_lock(&st->down_lock);
    if (an_now_ms() < st->down_until_ms)
        snprintf(msg, sizeof msg, "%s", st->down_msg);
    pthread_mutex_unlock(&st->down_lock);
    if (msg[0]) {
        rp->store_up = 0;
        an_api_error(rp, 503, NULL, "the store is unavailable: %s", msg);
        return NULL;
    }
    an_err err = {0};
    an_store *s = an_service_store(rq->svc, &err);
    if (!s) {
        rp->store_up = 0;
        mark_down(rq, err.msg);
        an_api_error(rp, 503, NULL, "the store is unavailable: %s", err.msg);
    }
    return s;
}

static void store_failed(const an_api_request *rq, an_api_reply *rp, const an_err *err)
{
    if (err->code == AN_ERR_TIMEOUT && an_store_deadline_passed()) {
        /* this request's own deadline (AUTONAMA_HTTP_QUERY_TIMEOUT): the
         * store is fine, so it is not marked down */
        an_api_error(rp, 503, NULL, "the query ran past AUTONAMA_HTTP_QUERY_TIMEOUT: %s", err->msg);
        rp->headers = an_admission_retry_headers;
        return;
    }
    unsigned st = an_api_status_for(err->code);
    if (st == 503) {
        rp->store_up = 0;
        mark_down(rq, err->msg);
    }
    char q[AN_ERR_MSG_MAX + 64];
    AN_WARN("api", "msg=\"store read failed\" error=\"%s\"", an_log_quote(err->msg, q, sizeof q));
    an_api_error(rp, st, NULL, "%s%s", st == 503 ? "the store is unavailable: " : "", err->msg);
}

typedef struct common {
    const char *symbol, *tf;
    an_query q;
    int has_end;
} common;

/* symbol, timeframe, start, end, limit, order: 400 naming the parameter. */
static int parse_common(const an_api_request *rq, an_api_reply *rp, common *c, long def_limit)
{
    an_err e = {0};
    c->symbol = an_api_param(rq, "symbol");
    c->tf = an_api_param(rq, "timeframe");
    c->q = an_query_all();
    c->q.descending = 1;
    if (!c->symbol) {
        an_api_error(rp, 400, "symbol", "symbol is required (e.g. symbol=BTC/USDT)");
        return 0;
    }
    if (an_symbol_validate(c->symbol, &e) != AN_OK) {
        an_api_error(rp, 400, "symbol", "%s", e.msg);
        return 0;
    }
    if (!c->tf) {
        an_api_error(rp, 400, "timeframe", "timeframe is required (1m, 5m, 15m, 1h, 4h or 1d)");
        return 0;
    }
    if (!an_api_timeframe_known(c->tf)) {
        an_api_error(rp, 400, "timeframe",
                     "unknown timeframe '%.16s': use 1m, 5m, 15m, 1h, 4h or 1d", c->tf);
        return 0;
    }
    const char *v;
    if ((v = an_api_param(rq, "start")) && an_api_parse_time(v, &c->q.start_ms, &e) != AN_OK) {
        an_api_error(rp, 400, "start", "start: %s", e.msg);
        return 0;
    }
    if ((v = an_api_param(rq, "end"))) {
        if (an_api_parse_time(v, &c->q.end_ms, &e) != AN_OK) {
            an_api_error(rp, 400, "end", "end: %s", e.msg);
            return 0;
        }
        c->has_end = 1;
    }
    if (c->q.start_ms != INT64_MIN && c->q.end_ms != INT64_MAX && c->q.end_ms <= c->q.start_ms) {
        an_api_error(rp, 400, "end", "end must be after start");
        return 0;
    }
    long limit = def_limit;
    long max = an_config_int(rq->cfg, AN_CFG_HTTP_MAX_LIMIT);
    if (limit > max)
        limit = max;
    if ((v = an_api_param(rq, "limit")) && an_api_parse_limit(v, max, &limit, &e) != AN_OK) {
        an_api_error(rp, 400, "limit", "%s", e.msg);
        return 0;
    }
    c->q.limit = (size_t)limit;
    if ((v = an_api_param(rq, "order"))) {
        if (strcmp(v, "asc") == 0)
            c->q.descending = 0;
        else if (strcmp(v, "desc") != 0) {
            an_api_error(rp, 400, "order", "order '%.16s' is not asc or desc", v);
            return 0;
        }
    }
    return 1;
}

/* History that cannot change: every candle of the range has closed, and
 * the store already holds candles from the range's end on (so ingestion has
 * gone past it: a range not backfilled yet is not declared final). src is
 * the series the candles come from. */
static an_api_cache cache_kind(const common *c, int64_t tf_ms, int64_t now_ms,
                               const an_series_info *src)
{
    if (c->has_end && c->q.end_ms <= now_ms - tf_ms && src->rows > 0 && c->q.end_ms <= src->last_ms)
        return AN_API_IMMUTABLE;
    return AN_API_REVALIDATE;
}

/* Finds the plan for (symbol, tf); 404 naming the parameter when none. */
static int plan_for(const an_api_request *rq, an_api_reply *rp, an_store *s, const common *c,
                    an_tf_plan *plan, an_series_info *src)
{
    memset(src, 0, sizeof *src);
    an_err e = {0};
    for (int attempt = 0; attempt < 2; attempt++) {
        an_series_info *list = NULL;
        size_t n = 0;
        if (series_get(rq, s, attempt, &list, &n, &e) != AN_OK) {
            store_failed(rq, rp, &e);
            return 0;
        }
        rp->store_up = 1;
        int known = 0;
        for (size_t i = 0; i < n; i++)
            known |= strcmp(list[i].symbol, c->symbol) == 0;
        *plan = an_api_plan_timeframe(c->symbol, c->tf, list, n);
        for (size_t i = 0; i < n; i++)
            if (strcmp(list[i].symbol, c->symbol) == 0 &&
                strcmp(list[i].timeframe, plan->from_tf) == 0)
                *src = list[i];
        free(list);
        if (plan->source != AN_TF_NONE)
            return 1;
        if (attempt == 1) {
            if (!known)
                an_api_error(rp, 404, "symbol", "unknown symbol '%s': no candles stored",
                             c->symbol);
            else
                an_api_error(rp, 404, "timeframe",
                             "no %s candles for %s: nothing stored can serve that timeframe", c->tf,
                             c->symbol);
        }
    }
    return 0;
}

/* Stored candles through the block cache: blocks are kept until a write
 * drops them when this process hears every write, else for the reply
 * cache's TTL (not at all when that is 0). */
static an_code read_stored(const an_api_request *rq, an_store *s, const common *c,
                           const an_series_info *src, int64_t tf_ms, const an_query *q,
                           an_candles *out, an_api_rendered *txt, an_err *err)
{
    an_api_series_ref ser = {.symbol = c->symbol,
                             .timeframe = c->tf,
                             .tf_ms = tf_ms,
                             .first_ms = src->first_ms,
                             .last_ms = src->last_ms,
                             .rows = src->rows,
                             .max_age_ms = -1};
    if (rq->blocks) {
        int64_t ttl = an_config_int(rq->cfg, AN_CFG_HTTP_CACHE_TTL_MS);
        ser.max_age_ms = an_service_hears_all(rq->svc) ? 0 : ttl > 0 ? ttl : -1;
    }
    return an_api_blocks_read(rq->blocks, s, &ser, q, rq->now_ms, out, txt, err);
}

/* txt (stored candles only; may be NULL) gets the rows' JSON. */
static an_code read_candles(const an_api_request *rq, an_store *s, const common *c,
                            const an_query *q, const an_tf_plan *plan, const an_series_info *src,
                            an_candles *out, an_api_rendered *txt, const char ***src_tf,
                            an_err *err)
{
    switch (plan->source) {
    case AN_TF_STORED: return read_stored(rq, s, c, src, plan->tf_ms, q, out, txt, err);
    case AN_TF_ROLLUP: return an_store_get_rollup(s, c->symbol, c->tf, q, out, err);
    case AN_TF_BUCKET:
        free((void *)*src_tf);
        return an_api_read_buckets(s, c->symbol, plan, q, out, src_tf, err);
    case AN_TF_NONE: break;
    }
    return an_err_set(err, AN_ERR_INTERNAL, "no plan");
}

/* Indicator values of names over [from, to] (ts), newest limit timestamps
 * (or oldest when ascending): per-name reads, merged by the caller. */
static an_code read_indicators(an_store *s, const char *symbol, const char *tf,
                               char (*names)[AN_INDICATOR_NAME_MAX], int nn, const an_query *q,
                               an_indicator_points *out, an_err *err)
{
    for (int i = 0; i < nn; i++) {
        an_code rc = an_store_get_indicators(s, symbol, tf, names[i], q, out, err);
        if (rc != AN_OK)
            return rc;
    }
    return AN_OK;
}

static int cmp_point_ts(const void *a, const void *b)
{
    const an_indicator_point *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static int name_index(char (*names)[AN_INDICATOR_NAME_MAX], int nn, const char *name)
{
    for (int i = 0; i < nn; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

static int parse_names_arg(const an_api_request *rq, an_api_reply *rp, const char *key,
                           char (*names)[AN_INDICATOR_NAME_MAX], int *nn)
{
    const char *v = an_api_param(rq, key);
    an_err e = {0};
    if (!v) {
        *nn = 0;
        return 1;
    }
    if (an_api_parse_names(v, names, MAX_NAMES, nn, &e) != AN_OK) {
        an_api_error(rp, 400, key, "%s", e.msg);
        return 0;
    }
    return 1;
}

/* Writes name:value|null,... for the timestamp ts, from points sorted by ts. */
static void put_values(an_api_reply *rp, char (*names)[AN_INDICATOR_NAME_MAX], int nn,
                       const an_indicator_points *pts, int64_t ts, double *row)
{
    for (int i = 0; i < nn; i++)
        row[i] = NAN;
    size_t lo = 0, hi = pts->n; /* first point with ts >= ts */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pts->v[mid].ts < ts)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t j = lo; j < pts->n && pts->v[j].ts == ts; j++) {
        int i = name_index(names, nn, pts->v[j].name);
        if (i >= 0)
            row[i] = pts->v[j].value;
    }
    for (int i = 0; i < nn; i++) {
        an_api_puts(rp, i ? "," : "");
        an_api_put_jstr(rp, names[i]);
        an_api_puts(rp, ":");
        an_api_put_double(rp, row[i]);
    }
}

/* ---- GET /api/v1/data/ohlc ---------------------------------------------- */

static void h_ohlc(const an_api_request *rq, an_api_reply *rp)
{
    common c = {0};
    char names[MAX_NAMES][AN_INDICATOR_NAME_MAX];
    int nn = 0;
    if (!parse_common(rq, rp, &c, 500) || !parse_names_arg(rq, rp, "indicators", names, &nn))
        return;
    an_store *s = store_or_503(rq, rp);
    if (!s)
        return;
    an_tf_plan plan;
    an_series_info src;
    if (!plan_for(rq, rp, s, &c, &plan, &src))
        return;
    an_candles cs = {0};
    const char **src_tf = NULL;
    an_indicator_points pts = {0};
    an_err e = {0};
    /* the rows' JSON comes with them from the block cache (copied, not
     * printed; the rows then carry their times only) */
    an_api_rendered txt = {0};
    an_api_rendered *tp = rq->blocks && plan.source == AN_TF_STORED ? &txt : NULL;
    /* newest first with a limit and no start (the common request): read
     * only the window the limit can reach from the newest stored candle, so
     * the store scans limit rows, not the whole series; when gaps leave it
     * short, read again without the window */
    an_query q = c.q;
    int windowed = 0;
    if (q.descending && q.limit > 0 && q.start_ms == INT64_MIN && src.rows > 0) {
        int64_t last = src.last_ms < q.end_ms ? src.last_ms : q.end_ms - 1;
        last -= last % plan.tf_ms;
        int64_t span = (int64_t)(q.limit - 1) * plan.tf_ms;
        if (last - span > src.first_ms) {
            q.start_ms = last - span;
            windowed = 1;
        }
    }
    if (read_candles(rq, s, &c, &q, &plan, &src, &cs, tp, &src_tf, &e) != AN_OK) {
        store_failed(rq, rp, &e);
        goto out;
    }
    if (windowed && cs.n < c.q.limit) {
        cs.n = txt.n = txt.buf.len = 0;
        if (read_candles(rq, s, &c, &c.q, &plan, &src, &cs, tp, &src_tf, &e) != AN_OK) {
            store_failed(rq, rp, &e);
            goto out;
        }
    }
    if (nn > 0 && cs.n > 0) {
        an_query iq = an_query_all();
        int64_t lo = cs.v[0].ts, hi = cs.v[cs.n - 1].ts;
        iq.start_ms = lo < hi ? lo : hi;
        iq.end_ms = (lo < hi ? hi : lo) + 1;
        if (read_indicators(s, c.symbol, c.tf, names, nn, &iq, &pts, &e) != AN_OK) {
            store_failed(rq, rp, &e);
            goto out;
        }
        if (pts.n > 1) /* qsort(NULL, 0) is undefined: no indicator rows in range */
            qsort(pts.v, pts.n, sizeof *pts.v, cmp_point_ts);
    }
    rp->cache = cache_kind(&c, plan.tf_ms, rq->now_ms, &src);
    rp->rows = (int64_t)cs.n;
    an_api_puts(rp, "{\"symbol\":");
    an_api_put_jstr(rp, c.symbol);
    an_api_printf(rp,
                  ",\"timeframe\":\"%s\",\"source\":\"%s\",\"source_timeframe\":\"%s\","
                  "\"order\":\"%s\",\"count\":%zu,\"candles\":[",
                  c.tf, an_tf_source_name(plan.source), plan.from_tf,
                  c.q.descending ? "desc" : "asc", cs.n);
    double row[MAX_NAMES];
    for (size_t j = 0; j < cs.n; j++) {
        const an_candle *x = &cs.v[j];
        an_api_puts(rp, j ? ",{" : "{");
        if (tp) { /* txt.n == cs.n: an_api_blocks_read gives both */
            size_t from = j ? txt.end[j - 1] : 0;
            an_api_put(rp, txt.buf.body + from, txt.end[j] - from);
        } else
            an_api_put_candle(rp, x);
        if (src_tf)
            an_api_put_bucket_source(rp, &plan, x, src_tf[j]);
        if (nn > 0) {
            an_api_puts(rp, ",\"indicators\":{");
            put_values(rp, names, nn, &pts, x->ts, row);
            an_api_puts(rp, "}");
        }
        an_api_puts(rp, "}");
    }
    an_api_puts(rp, "]}");
out:
    free((void *)src_tf);
    an_candles_free(&cs);
    an_indicator_points_free(&pts);
    an_api_rendered_free(&txt);
}

/* ---- GET /api/v1/data/indicators ---------------------------------------- */

static void h_indicators(const an_api_request *rq, an_api_reply *rp)
{
    common c = {0};
    char names[MAX_NAMES][AN_INDICATOR_NAME_MAX];
    int nn = 0;
    if (!parse_common(rq, rp, &c, 500) || !parse_names_arg(rq, rp, "names", names, &nn))
        return;
    if (nn == 0)
        for (size_t i = 0; i < sizeof DEFAULT_NAMES / sizeof DEFAULT_NAMES[0]; i++)
            snprintf(names[nn++], AN_INDICATOR_NAME_MAX, "%s", DEFAULT_NAMES[i]);
    an_store *s = store_or_503(rq, rp);
    if (!s)
        return;
    an_indicator_points pts = {0};
    an_err e = {0};
    if (read_indicators(s, c.symbol, c.tf, names, nn, &c.q, &pts, &e) != AN_OK) {
        store_failed(rq, rp, &e);
        goto out;
    }
    rp->store_up = 1;
    an_tf_plan plan;
    an_series_info src;
    if (!plan_for(rq, rp, s, &c, &plan, &src)) /* 404 for what cannot exist */
        goto out;
    if (pts.n > 1) /* qsort(NULL, 0) is undefined: no indicator rows in range */
        qsort(pts.v, pts.n, sizeof *pts.v, cmp_point_ts);
    /* distinct timestamps, the limit's worth from the requested end */
    size_t nts = 0;
    for (size_t i = 0; i < pts.n; i++)
        nts += i == 0 || pts.v[i].ts != pts.v[i - 1].ts;
    size_t keep = c.q.limit > 0 && nts > c.q.limit ? c.q.limit : nts;
    /* collect the row starts in ascending order */
    size_t *starts = malloc((nts ? nts : 1) * sizeof *starts), m = 0;
    if (!starts) {
        an_api_error(rp, 500, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < pts.n; i++)
        if (i == 0 || pts.v[i].ts != pts.v[i - 1].ts)
            starts[m++] = i;
    rp->cache = cache_kind(&c, plan.tf_ms, rq->now_ms, &src);
    rp->rows = (int64_t)keep;
    an_api_puts(rp, "{\"symbol\":");
    an_api_put_jstr(rp, c.symbol);
    an_api_printf(rp, ",\"timeframe\":\"%s\",\"order\":\"%s\",\"names\":[", c.tf,
                  c.q.descending ? "desc" : "asc");
    for (int i = 0; i < nn; i++) {
        an_api_puts(rp, i ? "," : "");
        an_api_put_jstr(rp, names[i]);
    }
    an_api_printf(rp, "],\"count\":%zu,\"rows\":[", keep);
    double row[MAX_NAMES];
    for (size_t j = 0; j < keep; j++) {
        size_t r = c.q.descending ? nts - 1 - j : j;
        int64_t ts = pts.v[starts[r]].ts;
        an_api_puts(rp, j ? ",{" : "{");
        put_time(rp, ts);
        an_api_puts(rp, ",\"values\":{");
        put_values(rp, names, nn, &pts, ts, row);
        an_api_puts(rp, "}}");
    }
    an_api_puts(rp, "]}");
    free(starts);
out:
    an_indicator_points_free(&pts);
}

/* ---- GET /api/v1/symbols ------------------------------------------------ */

static void h_symbols(const an_api_request *rq, an_api_reply *rp)
{
    an_store *s = store_or_503(rq, rp);
    if (!s)
        return;
    an_series_info *list = NULL;
    size_t n = 0;
    an_err e = {0};
    if (series_get(rq, s, 2, &list, &n, &e) != AN_OK) {
        store_failed(rq, rp, &e);
        return;
    }
    rp->store_up = 1;
    rp->cache = AN_API_REVALIDATE;
    an_api_puts(rp, "{\"symbols\":[");
    char t1[40], t2[40];
    size_t nsym = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(list[i].symbol, list[i - 1].symbol) == 0)
            continue;
        an_api_puts(rp, nsym++ ? ",{\"symbol\":" : "{\"symbol\":");
        an_api_put_jstr(rp, list[i].symbol);
        an_api_puts(rp, ",\"stored\":[");
        for (size_t j = i; j < n && strcmp(list[j].symbol, list[i].symbol) == 0; j++)
            an_api_printf(
                rp,
                "%s{\"timeframe\":\"%s\",\"first\":\"%s\",\"last\":\"%s\",\"first_ts\":%" PRId64
                ",\"last_ts\":%" PRId64 ",\"rows\":%" PRId64 "}",
                j > i ? "," : "", list[j].timeframe,
                an_time_format(list[j].first_ms, t1, sizeof t1),
                an_time_format(list[j].last_ms, t2, sizeof t2), list[j].first_ms, list[j].last_ms,
                list[j].rows);
        an_api_puts(rp, "],\"timeframes\":[");
        int k = 0;
        for (size_t t = 0; t < an_api_ntimeframes; t++) {
            an_tf_plan p = an_api_plan_timeframe(list[i].symbol, an_api_timeframes[t], list, n);
            if (p.source == AN_TF_NONE)
                continue;
            an_api_printf(
                rp, "%s{\"timeframe\":\"%s\",\"source\":\"%s\",\"source_timeframe\":\"%s\"}",
                k++ ? "," : "", an_api_timeframes[t], an_tf_source_name(p.source), p.from_tf);
        }
        an_api_puts(rp, "]}");
    }
    an_api_printf(rp, "],\"count\":%zu}", nsym);
    rp->rows = (int64_t)nsym;
    free(list);
}

/* ---- GET /health, GET /metrics, GET /api/v1/auth ------------------------ */

static void h_health(const an_api_request *rq, an_api_reply *rp)
{
    an_err err = {0};
    an_store *s = an_service_store(rq->svc, &err);
    int healthy = 0;
    json_t *o = an_health_check(rq->cfg, s, &err, rq->now_ms, &healthy);
    json_t *conn = json_object_get(json_object_get(o, "checks"), "connection");
    rp->store_up = json_is_true(json_object_get(conn, "ok"));
    if (!rq->trusted) /* the file path or host:port: only for the key's holder */
        json_object_del(json_object_get(o, "store"), "where");
    char *stream = an_http_health_extra(rq->server); /* the live path's state */
    json_t *sj = stream ? json_loads(stream, 0, NULL) : NULL;
    free(stream);
    if (sj)
        json_object_set_new(o, "stream", sj);
    int put = an_api_put_json(rp, o, AN_HEALTH_JSON_FLAGS);
    json_decref(o);
    if (put == 0)
        rp->status = healthy ? 200 : 503;
}

static void h_metrics(const an_api_request *rq, an_api_reply *rp)
{
    rp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    an_http_metrics_render(rq->server, rp);
}

extern const unsigned char an_openapi_json[];
extern const size_t an_openapi_json_len;

static void h_openapi(const an_api_request *rq, an_api_reply *rp)
{
    (void)rq;
    an_api_put(rp, (const char *)an_openapi_json, an_openapi_json_len);
    rp->cache = AN_API_REVALIDATE;
}

static void h_auth(const an_api_request *rq, an_api_reply *rp)
{
    (void)rq;
    an_api_puts(rp, "{\"authenticated\":true}");
}

/* ---- the table ---------------------------------------------------------- */

static const char *const P_NONE[] = {NULL};
static const char *const P_OHLC[] = {"symbol", "timeframe", "limit",      "start",
                                     "end",    "order",     "indicators", NULL};
static const char *const P_IND[] = {"symbol", "timeframe", "names", "start",
                                    "end",    "limit",     "order", NULL};

static const char *const P_TASKS[] = {"name", "limit", NULL};
static const char *const P_OPT_RUNS[] = {"limit", NULL};
static const char *const P_OPT_RESULTS[] = {"run_id", "symbol", "sample", "sort", "limit", NULL};
static const char *const P_OPT_EQUITY[] = {"run_id", "symbol", "params", NULL};

static const char *const P_STREAM[] = {"symbols", "timeframe", "indicators", NULL};

/* GET /api/v1/stream is answered by the server-sent events hub (sse.c) when
 * the live path runs; this handler only runs when it does not. */
static void h_stream(const an_api_request *rq, an_api_reply *rp)
{
    (void)rq;
    an_api_error(rp, 503, NULL, "live streaming is off: start serve with AUTONAMA_REALTIME=true");
}

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

/* POST /api/v1/tasks/NAME: a task queued (routes_tasks.c) */
#define TASK_ROUTE(task)                                                                           \
    {                                                                                              \
        .method = "POST", .path = "/api/v1/tasks/" task, .auth = 1,                                \
        .name = "/api/v1/tasks/{name}", .params = P_NONE, .fn = an_api_h_task_submit               \
    }

const an_api_route an_api_routes[] = {
    {.method = "GET",
     .path = "/api/v1/data/ohlc",
     .name = "/api/v1/data/ohlc",
     .params = P_OHLC,
     .fn = h_ohlc},
    {.method = "GET",
     .path = "/api/v1/data/indicators",
     .name = "/api/v1/data/indicators",
     .params = P_IND,
     .fn = h_indicators},
    {.method = "GET",
     .path = "/api/v1/symbols",
     .name = "/api/v1/symbols",
     .params = P_NONE,
     .fn = h_symbols},
    {.method = "GET", .path = "/health", .name = "/health", .params = P_NONE, .fn = h_health},
    {.method = "GET", .path = "/metrics", .name = "/metrics", .params = P_NONE, .fn = h_metrics},
    {.method = "GET",
     .path = "/api/v1/auth",
     .auth = 1,
     .name = "/api/v1/auth",
     .params = P_NONE,
     .fn = h_auth},
    {.method = "GET",
     .path = "/openapi.json",
     .name = "/openapi.json",
     .params = P_NONE,
     .fn = h_openapi},
    {.method = "GET",
     .path = "/api/v1/tasks",
     .name = "/api/v1/tasks",
     .params = P_TASKS,
     .fn = an_api_h_tasks},
    {.method = "GET",
     .path = "/api/v1/tasks/",
     .tail = 1,
     .name = "/api/v1/tasks/{id}",
     .params = P_NONE,
     .fn = an_api_h_task},
    /* one path per task, each with its body schema in openapi.json */
    TASK_ROUTE("update_market_data"),
    TASK_ROUTE("calculate_indicators_for_symbol"),
    TASK_ROUTE("health_check"),
    TASK_ROUTE("optimize_strategy"),
    /* the optimizer (routes_optimize.c) */
    {.method = "GET",
     .path = "/api/v1/optimization/runs",
     .name = "/api/v1/optimization/runs",
     .params = P_OPT_RUNS,
     .fn = an_api_h_opt_runs},
    {.method = "GET",
     .path = "/api/v1/optimization/results",
     .name = "/api/v1/optimization/results",
     .params = P_OPT_RESULTS,
     .fn = an_api_h_opt_results},
    {.method = "GET",
     .path = "/api/v1/optimization/equity",
     .name = "/api/v1/optimization/equity",
     .params = P_OPT_EQUITY,
     .fn = an_api_h_opt_equity},
    /* the dashboard (static.c) */
    {.method = "GET", .path = "/", .name = "/", .params = P_NONE, .fn = an_static_index},
    {.method = "GET",
     .path = "/assets/",
     .tail = 1,
     .name = "/assets/{name}",
     .params = P_NONE,
     .fn = an_static_asset},

    {.method = "GET",
     .path = "/api/v1/stream",
     .stream = 1,
     .name = "/api/v1/stream",
     .params = P_STREAM,
     .fn = h_stream},
};
const size_t an_api_nroutes = sizeof an_api_routes / sizeof an_api_routes[0];
