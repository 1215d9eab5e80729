/*
 * binance_ws.c - Binance's kline streams over libwebsockets, and the
 * validation of every kline event (see binance_ws.h).
 *
 * Owns: the libwebsockets context, one group per up to streams_per_conn
 * subscriptions whose combined-stream path fits libwebsockets' request line
 * (~110 names; see REQUEST_PATH_MAX) (its current connection, and during a rotation the one
 * replacing it), the per-series order state, the attempt ring and the
 * counters. Everything but the counters is touched by the service thread
 * only; the counters are read under `lock` by an_binance_ws_get_stats.
 */
#include "source/binance_ws.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/thread.h"
#include "source/binance.h"
#include "source/kline_frame.h"

#define COMPONENT "realtime"
#define FRAME_CAP (1u << 20) /* a kline frame is ~450 bytes; anything near this is not one */
#define BAD_RUN_MAX 100      /* this many bad frames in a row: the connection is dropped */
#define CONNECT_TIMEOUT_MS 30000

/* ---- validation ----------------------------------------------------- */

static const char *const bad_names[AN_WS_BAD__COUNT] = {"json", "wrapper",  "event", "value",
                                                        "time", "mismatch", "order"};

const char *an_ws_bad_name(an_ws_bad b)
{
    return b < AN_WS_BAD__COUNT ? bad_names[b] : "unknown";
}

an_code an_ws_sub_init(an_ws_sub *sub, const char *symbol, const char *timeframe, an_err *err)
{
    memset(sub, 0, sizeof *sub);
    if (an_symbol_validate(symbol, err) != AN_OK)
        return AN_ERR_INVALID;
    if (!an_timeframe_valid(timeframe))
        return an_err_set(err, AN_ERR_INVALID, "realtime: unknown timeframe '%.16s'", timeframe);
    snprintf(sub->symbol, sizeof sub->symbol, "%s", symbol);
    snprintf(sub->timeframe, sizeof sub->timeframe, "%s", timeframe);
    an_binance_symbol(symbol, sub->exchange, sizeof sub->exchange);
    char lower[AN_SYMBOL_MAX];
    size_t i = 0;
    for (; sub->exchange[i] && i + 1 < sizeof lower; i++)
        lower[i] =
            (char)(sub->exchange[i] >= 'A' && sub->exchange[i] <= 'Z' ? sub->exchange[i] - 'A' + 'a'
                                                                      : sub->exchange[i]);
    lower[i] = 0;
    snprintf(sub->stream, sizeof sub->stream, "%s@kline_%s", lower, timeframe);
    return AN_OK;
}

/* The subscription named `name`: binary search over order (subs sorted by
 * stream name) or, without it, a linear one. */
static long find_sub(const an_ws_sub *subs, const size_t *order, size_t n, const char *name)
{
    if (!order) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(subs[i].stream, name) == 0)
                return (long)i;
        return -1;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(subs[order[mid]].stream, name);
        if (c == 0)
            return (long)order[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* The frame read with jansson: any JSON, every check in order, the message
 * for the first one failed. */
static an_code parse_json(const char *text, size_t len, const an_ws_sub *subs, const size_t *order,
                          size_t nsubs, an_ws_kline *out, an_ws_bad *bad, an_err *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return an_ws_refuse(bad, AN_WS_BAD_JSON, err, "kline frame: not JSON: %.200s", je.text);
    an_code code = AN_OK;
    json_t *data = json_object_get(root, "data"), *k = NULL;
    const char *stream = json_string_value(json_object_get(root, "stream"));
    long si = -1;
    if (!json_is_object(root) || !stream || !json_is_object(data)) {
        code = an_ws_refuse(bad, AN_WS_BAD_WRAPPER, err,
                            "kline frame: not a combined-stream message {\"stream\", \"data\"}");
        goto out;
    }
    if ((si = find_sub(subs, order, nsubs, stream)) < 0) {
        code = an_ws_refuse(bad, AN_WS_BAD_WRAPPER, err,
                            "kline frame: stream '%.64s' not subscribed", stream);
        goto out;
    }
    const char *e = json_string_value(json_object_get(data, "e"));
    k = json_object_get(data, "k");
    if (!e || strcmp(e, "kline") != 0 || !json_is_object(k)) {
        code =
            an_ws_refuse(bad, AN_WS_BAD_EVENT, err, "kline frame (%s): not a kline event (e=%.20s)",
                         stream, e ? e : "missing");
        goto out;
    }
    static const char *const ints[] = {"t", "T", "f", "L", "n"};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (!json_is_integer(json_object_get(k, ints[i]))) {
            code = an_ws_refuse(bad, AN_WS_BAD_EVENT, err,
                                "kline frame (%s): k.%s is not an integer", stream, ints[i]);
            goto out;
        }
    json_t *s = json_object_get(data, "s"), *ks = json_object_get(k, "s"),
           *ki = json_object_get(k, "i"), *x = json_object_get(k, "x");
    if (!json_is_integer(json_object_get(data, "E")) || !json_is_string(s) || !json_is_string(ks) ||
        !json_is_string(ki) || !json_is_boolean(x)) {
        code = an_ws_refuse(bad, AN_WS_BAD_EVENT, err,
                            "kline frame (%s): E, s, k.s, k.i or k.x missing or of the wrong type",
                            stream);
        goto out;
    }
    an_ws_fields f = {.event_ms = json_integer_value(json_object_get(data, "E")),
                      .t = json_integer_value(json_object_get(k, "t")),
                      .T = json_integer_value(json_object_get(k, "T")),
                      .x = json_is_true(x)};
    f.s = (an_ws_span){json_string_value(s), json_string_length(s)};
    f.ks = (an_ws_span){json_string_value(ks), json_string_length(ks)};
    f.ki = (an_ws_span){json_string_value(ki), json_string_length(ki)};
    static const char *const decs[] = {"o", "h", "l", "c", "v", "q", "V", "Q"};
    for (size_t i = 0; i < 8; i++) {
        json_t *v = json_object_get(k, decs[i]); /* not a string: {NULL, 0}, refused */
        f.decs[i] =
            (an_ws_span){json_string_value(v), json_is_string(v) ? json_string_length(v) : 0};
    }
    code = an_ws_fields_check(&f, &subs[si], (size_t)si, out, bad, err);
out:
    json_decref(root);
    return code;
}

/* The scan first (the plain form Binance sends), jansson for anything else:
 * the same verdict either way (kline_frame.h). */
static an_code parse_frame(const char *text, size_t len, const an_ws_sub *subs, const size_t *order,
                           size_t nsubs, an_ws_kline *out, an_ws_bad *bad, an_err *err)
{
    an_ws_fields f;
    char name[sizeof subs[0].stream];
    if (an_ws_scan(text, len, &f) && f.stream.n < sizeof name && f.e.n == 5 &&
        memcmp(f.e.p, "kline", 5) == 0) {
        memcpy(name, f.stream.p, f.stream.n);
        name[f.stream.n] = 0;
        long si = find_sub(subs, order, nsubs, name);
        if (si >= 0)
            return an_ws_fields_check(&f, &subs[si], (size_t)si, out, bad, err);
    }
    return parse_json(text, len, subs, order, nsubs, out, bad, err);
}

an_code an_binance_ws_parse(const char *text, size_t len, const an_ws_sub *subs, size_t nsubs,
                            an_ws_kline *out, an_ws_bad *bad, an_err *err)
{
    return parse_frame(text, len, subs, NULL, nsubs, out, bad, err);
}

an_code an_binance_ws_parse_json(const char *text, size_t len, const an_ws_sub *subs, size_t nsubs,
                                 an_ws_kline *out, an_ws_bad *bad, an_err *err)
{
    return parse_json(text, len, subs, NULL, nsubs, out, bad, err);
}

/* ---- pacing ----------------------------------------------------------- */

int64_t an_ws_backoff_ms(int failures, int64_t base_ms, int64_t max_ms, double u)
{
    int64_t d = base_ms;
    for (int i = 0; i < failures && d < max_ms; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    if (u < 0)
        u = 0;
    if (u >= 1)
        u = 0.999999;
    return (int64_t)((double)d * (0.5 + u / 2));
}

int64_t an_ws_attempt(an_ws_attempts *a, int64_t now_ms)
{
    if (a->n == AN_WS_MAX_ATTEMPTS) {
        int64_t oldest = a->at[a->head]; /* the ring is full: head is the oldest */
        if (now_ms - oldest < AN_WS_ATTEMPT_WINDOW_MS)
            return oldest + AN_WS_ATTEMPT_WINDOW_MS - now_ms;
        a->at[a->head] = now_ms;
        a->head = (a->head + 1) % AN_WS_MAX_ATTEMPTS;
        return 0;
    }
    a->at[(a->head + a->n) % AN_WS_MAX_ATTEMPTS] = now_ms;
    a->n++;
    return 0;
}

/* ---- the client --------------------------------------------------------- */

typedef struct conn conn;
typedef struct group group;

struct conn {
    an_binance_ws *w;
    group *g;
    struct lws *wsi;
    conn *link; /* every conn, for the reaper and the final free */
    int next;   /* opened to replace g->cur */
    int established, gone, retired, destroyed, binary, overflow;
    int64_t started_ms, opened_ms, last_rx_ms;
    int bad_run;
    char *buf;
    size_t len, cap;
};

struct group {
    int index;
    char *path;
    conn *cur, *next;
    int failures;
    int had_connection;
    lws_sorted_usec_list_t sul; /* the reconnect timer */
    an_binance_ws *w;
};

typedef struct series_state {
    int64_t last_t;
    int last_closed, any;
} series_state;

struct an_binance_ws {
    an_binance_ws_options o;
    an_ws_sub *subs;
    size_t *order;
    series_state *series;
    group *groups;
    int ngroups;
    char host[256], prefix[256];
    int port, tls;
    struct lws_context *ctx;
    pthread_t thread;
    int started;
    atomic_int stopping;
    conn *conns;
    int delivered; /* a kline went out in this service round: on_batch after it */
    an_ws_attempts attempts;
    lws_sorted_usec_list_t tick;
    uint64_t rng;
    pthread_mutex_t lock; /* st */
    an_binance_ws_stats st;
};

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static double rnd(an_binance_ws *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (double)(w->rng >> 11) / 9007199254740992.0;
}

static void group_connect(an_binance_ws *w, group *g, int next);

static void reconnect_cb(lws_sorted_usec_list_t *sul)
{
    group *g = CONTAINER(sul, group, sul);
    if (!atomic_load(&g->w->stopping) && !g->cur)
        group_connect(g->w, g, 0);
}

static void schedule(an_binance_ws *w, group *g, int64_t ms)
{
    lws_sul_schedule(w->ctx, 0, &g->sul, reconnect_cb, (lws_usec_t)ms * 1000);
}

static void group_connect(an_binance_ws *w, group *g, int next)
{
    int64_t now = an_now_ms();
    int64_t wait = an_ws_attempt(&w->attempts, now);
    if (wait > 0) {
        AN_WARN(COMPONENT,
                "msg=\"connection attempts at Binance's limit (300 per 5 min): waiting\" "
                "group=%d wait_ms=%lld",
                g->index, (long long)wait);
        if (!next)
            schedule(w, g, wait);
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        if (!next)
            schedule(w, g, 1000);
        return;
    }
    c->w = w;
    c->g = g;
    c->next = next;
    c->started_ms = now;
    c->link = w->conns;
    w->conns = c;
    if (next)
        g->next = c;
    else
        g->cur = c;
    pthread_mutex_lock(&w->lock);
    w->st.attempts++;
    pthread_mutex_unlock(&w->lock);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = w->ctx;
    ci.address = w->host;
    ci.port = w->port;
    ci.ssl_connection = w->tls ? LCCSCF_USE_SSL : 0;
    ci.path = g->path;
    ci.host = w->host;
    ci.origin = w->host;
    ci.ietf_version_or_minus_one = -1;
    ci.userdata = c;
    ci.local_protocol_name = "an-binance-kline";
    ci.pwsi = &c->wsi;
    AN_DEBUG(COMPONENT, "msg=\"connecting\" group=%d next=%d", g->index, next);
    if (!lws_client_connect_via_info(&ci)) {
        /* lws holds no wsi for c now (it failed before one existed, or
         * destroyed it): c is done with */
        c->destroyed = 1;
        c->wsi = NULL;
        if (!c->gone) {
            c->gone = 1;
            if (g->cur == c) {
                g->cur = NULL;
                schedule(
                    w, g,
                    an_ws_backoff_ms(g->failures++, w->o.backoff_ms, w->o.backoff_max_ms, rnd(w)));
            }
            if (g->next == c)
                g->next = NULL;
        }
    }
}

static void conn_kill(conn *c)
{
    if (c && c->wsi && !c->gone)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* c's connection is over (an error, a close): the group reconnects unless it
 * was retired by a rotation or the client is stopping. */
static void conn_lost(conn *c, const char *why)
{
    if (c->gone)
        return;
    c->gone = 1;
    an_binance_ws *w = c->w;
    group *g = c->g;
    if (c->established) {
        pthread_mutex_lock(&w->lock);
        w->st.connected--;
        pthread_mutex_unlock(&w->lock);
    }
    if (g->next == c) {
        g->next = NULL;
        AN_WARN(COMPONENT,
                "msg=\"replacement connection failed; the current one stays\" group=%d "
                "why=\"%.200s\"",
                g->index, why);
        return;
    }
    if (c->retired || g->cur != c || atomic_load(&w->stopping))
        return;
    g->cur = NULL;
    int64_t d = an_ws_backoff_ms(g->failures++, w->o.backoff_ms, w->o.backoff_max_ms, rnd(w));
    AN_WARN(COMPONENT, "msg=\"stream connection lost\" group=%d why=\"%.200s\" reconnect_ms=%lld",
            g->index, why, (long long)d);
    if (w->o.cb.on_lost)
        w->o.cb.on_lost(w->o.cb.ctx, g->index, why);
    schedule(w, g, d);
}

static void deliver(an_binance_ws *w, conn *c, const char *text, size_t len)
{
    an_ws_kline k;
    an_ws_bad bad = AN_WS_BAD_JSON;
    an_err err = {0};
    int64_t now = an_now_ms();
    an_code code = AN_OK;
    if (c->binary || c->overflow)
        code = an_err_set(&err, AN_ERR_PARSE, "kline frame: %s",
                          c->binary ? "a binary frame" : "larger than 1 MiB");
    else
        code = parse_frame(text, len, w->subs, w->order, w->o.nsubs, &k, &bad, &err);
    if (code == AN_OK) {
        series_state *s = &w->series[k.sub];
        if (s->any && (k.candle.ts < s->last_t ||
                       (k.candle.ts == s->last_t && s->last_closed && !k.closed))) {
            bad = AN_WS_BAD_ORDER;
            code = an_err_set(&err, AN_ERR_INVALID,
                              "kline frame (%s): open time %lld is older than the newest %s",
                              w->subs[k.sub].stream, (long long)k.candle.ts,
                              s->last_closed ? "closed candle" : "event");
        } else if (s->any && k.candle.ts == s->last_t && s->last_closed && k.closed) {
            return; /* the same close twice (two connections during a rotation) */
        }
    }
    if (code != AN_OK) {
        pthread_mutex_lock(&w->lock);
        w->st.bad[bad]++;
        w->st.bad_total++;
        pthread_mutex_unlock(&w->lock);
        AN_WARN(COMPONENT, "msg=\"bad frame dropped\" kind=%s error=\"%.300s\"",
                an_ws_bad_name(bad), err.msg);
        if (++c->bad_run >= BAD_RUN_MAX) {
            AN_WARN(COMPONENT, "msg=\"%d bad frames in a row: dropping the connection\" group=%d",
                    BAD_RUN_MAX, c->g->index);
            conn_kill(c);
        }
        return;
    }
    c->bad_run = 0;
    c->g->failures = 0;
    series_state *s = &w->series[k.sub];
    s->any = 1;
    s->last_t = k.candle.ts;
    s->last_closed = k.closed;
    pthread_mutex_lock(&w->lock);
    w->st.messages++;
    pthread_mutex_unlock(&w->lock);
    w->delivered = 1;
    if (w->o.cb.on_kline)
        w->o.cb.on_kline(w->o.cb.ctx, &k, now);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED: {
        an_binance_ws *w = c->w;
        group *g = c->g;
        c->established = 1;
        c->opened_ms = c->last_rx_ms = an_now_ms();
        pthread_mutex_lock(&w->lock);
        w->st.connected++;
        if (!c->next && g->had_connection)
            w->st.reconnects++;
        if (c->next)
            w->st.rotations++;
        pthread_mutex_unlock(&w->lock);
        if (c->next) {
            /* seamless: the new connection is up, now the old one goes */
            conn *old = g->cur;
            c->next = 0;
            g->next = NULL;
            g->cur = c;
            if (old) {
                old->retired = 1;
                conn_kill(old);
            }
            AN_INFO(COMPONENT, "msg=\"stream connection replaced (age limit)\" group=%d", g->index);
            if (w->o.cb.on_connected)
                w->o.cb.on_connected(w->o.cb.ctx, g->index, 1);
        } else {
            AN_INFO(COMPONENT, "msg=\"stream connected\" group=%d reconnect=%d", g->index,
                    g->had_connection);
            if (w->o.cb.on_connected)
                w->o.cb.on_connected(w->o.cb.ctx, g->index, 0);
        }
        g->had_connection = 1;
        break;
    }
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        if (!c || c->gone)
            break;
        c->last_rx_ms = an_now_ms();
        if (lws_frame_is_binary(wsi))
            c->binary = 1;
        if (!c->overflow) {
            if (c->len + len + 1 > FRAME_CAP) {
                c->overflow = 1;
            } else {
                if (c->len + len + 1 > c->cap) {
                    size_t cap = c->cap ? c->cap : 1024;
                    while (cap < c->len + len + 1)
                        cap *= 2;
                    char *b = realloc(c->buf, cap);
                    if (!b) {
                        c->overflow = 1;
                        break;
                    }
                    c->buf = b;
                    c->cap = cap;
                }
                memcpy(c->buf + c->len, in, len);
                c->len += len;
            }
        }
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            deliver(c->w, c, c->buf ? c->buf : "", c->len);
            c->len = 0;
            c->binary = c->overflow = 0;
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c)
            conn_lost(c, in ? (const char *)in : "connection error");
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (c)
            conn_lost(c, "closed");
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c) {
            conn_lost(c, "destroyed");
            c->destroyed = 1;
            c->wsi = NULL;
        }
        break;
    default: break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"an-binance-kline", callback, 0, 64 * 1024, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Frees conns that lws is done with. */
static void reap(an_binance_ws *w, int all)
{
    conn **pp = &w->conns;
    while (*pp) {
        conn *c = *pp;
        if (all || (c->gone && c->destroyed)) {
            *pp = c->link;
            free(c->buf);
            free(c);
        } else {
            pp = &c->link;
        }
    }
}

/* Once a second: silent connections dropped, old ones replaced, stalled
 * attempts given up, finished conns freed. */
static void tick_cb(lws_sorted_usec_list_t *sul)
{
    an_binance_ws *w = CONTAINER(sul, an_binance_ws, tick);
    if (atomic_load(&w->stopping))
        return;
    int64_t now = an_now_ms();
    for (int i = 0; i < w->ngroups; i++) {
        group *g = &w->groups[i];
        conn *c = g->cur;
        if (c && !c->gone && c->established && now - c->last_rx_ms > w->o.idle_ms) {
            AN_WARN(COMPONENT,
                    "msg=\"stream silent: dropping the connection\" group=%d "
                    "silent_ms=%lld",
                    g->index, (long long)(now - c->last_rx_ms));
            conn_kill(c);
        } else if (c && !c->gone && !c->established && now - c->started_ms > CONNECT_TIMEOUT_MS) {
            conn_kill(c);
        }
        if (c && !c->gone && c->established && !g->next && now - c->opened_ms > w->o.max_age_ms)
            group_connect(w, g, 1);
        if (g->next && !g->next->gone && now - g->next->started_ms > CONNECT_TIMEOUT_MS)
            conn_kill(g->next);
    }
    reap(w, 0);
    lws_sul_schedule(w->ctx, 0, &w->tick, tick_cb, LWS_US_PER_SEC);
}

static void *service(void *arg)
{
    an_thread_name("an-rt-stream");
    an_binance_ws *w = arg;
    for (int i = 0; i < w->ngroups; i++)
        group_connect(w, &w->groups[i], 0);
    lws_sul_schedule(w->ctx, 0, &w->tick, tick_cb, LWS_US_PER_SEC);
    while (!atomic_load(&w->stopping)) {
        if (lws_service(w->ctx, 0) < 0)
            break;
        /* one round: every connection's frames read so far were delivered */
        if (w->delivered) {
            w->delivered = 0;
            if (w->o.cb.on_batch)
                w->o.cb.on_batch(w->o.cb.ctx);
            /* the frames that come meanwhile wait in the kernel and are read
             * together: one wake-up, one read per connection and one batch
             * for them all, not one each (1,000 streams: ~1,000 frames/s) */
            if (w->o.tick_ms > 0 && !atomic_load(&w->stopping) &&
                lws_service_adjust_timeout(w->ctx, 1, 0) != 0) { /* 0: rx still buffered */
                struct timespec ts = {(time_t)(w->o.tick_ms / 1000),
                                      (long)(w->o.tick_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
    }
    return NULL;
}

static int parse_url(an_binance_ws *w, const char *url, an_err *err)
{
    const char *p;
    if (strncmp(url, "wss://", 6) == 0) {
        w->tls = 1;
        w->port = 443;
        p = url + 6;
    } else if (strncmp(url, "ws://", 5) == 0) {
        w->port = 80;
        p = url + 5;
    } else {
        return an_err_set(err, AN_ERR_INVALID,
                          "BINANCE_WS_URL '%.100s' must start with ws:// or wss://", url);
    }
    size_t hl = strcspn(p, ":/");
    if (hl == 0 || hl >= sizeof w->host)
        return an_err_set(err, AN_ERR_INVALID, "BINANCE_WS_URL '%.100s': no host", url);
    memcpy(w->host, p, hl);
    w->host[hl] = 0;
    p += hl;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 || (*end && *end != '/'))
            return an_err_set(err, AN_ERR_INVALID, "BINANCE_WS_URL '%.100s': bad port", url);
        w->port = (int)port;
        p = end;
    }
    size_t pl = strlen(p);
    while (pl && p[pl - 1] == '/')
        pl--;
    if (pl >= sizeof w->prefix)
        return an_err_set(err, AN_ERR_INVALID, "BINANCE_WS_URL '%.100s': path too long", url);
    memcpy(w->prefix, p, pl);
    w->prefix[pl] = 0;
    return AN_OK;
}

static const an_ws_sub *sort_subs;
static int by_stream(const void *a, const void *b)
{
    return strcmp(sort_subs[*(const size_t *)a].stream, sort_subs[*(const size_t *)b].stream);
}

/* libwebsockets 4.1 writes the request line ("GET <path> HTTP/1.1") into
 * 2,048 bytes (lws_generate_client_handshake): a longer path is cut short and
 * the server drops the connection (a combined stream of more than ~110
 * names never connected). Paths stay under this. */
#define REQUEST_PATH_MAX 2000

/* The end of the group of streams starting at first: at most
 * streams_per_conn of them, and a path that fits REQUEST_PATH_MAX (one
 * stream at least). */
static size_t group_end(const char *prefix, const an_binance_ws_options *o, size_t first)
{
    size_t len = strlen(prefix) + strlen("/stream?streams="), end = first;
    while (end < o->nsubs && end - first < (size_t)o->streams_per_conn) {
        size_t add = strlen(o->subs[end].stream) + (end > first);
        if (end > first && len + add > REQUEST_PATH_MAX)
            break;
        len += add;
        end++;
    }
    return end;
}

static void lws_log(int level, const char *line)
{
    char q[400];
    if (level & LLL_ERR)
        AN_WARN("libwebsockets", "msg=\"%s\"", an_log_quote(line, q, sizeof q));
}

an_code an_binance_ws_start(const an_binance_ws_options *o, an_binance_ws **out, an_err *err)
{
    *out = NULL;
    if (o->nsubs == 0)
        return an_err_set(err, AN_ERR_INVALID, "realtime: no streams to subscribe to");
    if (o->streams_per_conn < 1 || o->streams_per_conn > AN_WS_MAX_STREAMS_PER_CONN)
        return an_err_set(err, AN_ERR_INVALID, "realtime: streams per connection must be 1..%d",
                          AN_WS_MAX_STREAMS_PER_CONN);
    an_binance_ws *w = calloc(1, sizeof *w);
    if (!w)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&w->lock, NULL);
    atomic_init(&w->stopping, 0);
    w->o = *o;
    w->rng = (uint64_t)an_now_ms() * 2654435761u + 1;
    an_code code = AN_OK;
    if ((code = parse_url(w, o->url, err)) != AN_OK)
        goto fail;
    w->subs = malloc(o->nsubs * sizeof *w->subs);
    w->order = malloc(o->nsubs * sizeof *w->order);
    w->series = calloc(o->nsubs, sizeof *w->series);
    w->ngroups = 0;
    for (size_t first = 0; first < o->nsubs; first = group_end(w->prefix, o, first))
        w->ngroups++;
    w->groups = calloc((size_t)w->ngroups, sizeof *w->groups);
    if (!w->subs || !w->order || !w->series || !w->groups) {
        code = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(w->subs, o->subs, o->nsubs * sizeof *w->subs);
    w->o.subs = w->subs;
    for (size_t i = 0; i < o->nsubs; i++)
        w->order[i] = i;
    sort_subs = w->subs; /* start is called once, before any thread of the client */
    qsort(w->order, o->nsubs, sizeof *w->order, by_stream);
    for (size_t i = 1; i < o->nsubs; i++)
        if (strcmp(w->subs[w->order[i]].stream, w->subs[w->order[i - 1]].stream) == 0) {
            code = an_err_set(err, AN_ERR_INVALID, "realtime: stream %s subscribed twice",
                              w->subs[w->order[i]].stream);
            goto fail;
        }
    size_t first = 0;
    for (int gi = 0; gi < w->ngroups; gi++) {
        group *g = &w->groups[gi];
        g->index = gi;
        g->w = w;
        size_t n = group_end(w->prefix, o, first) - first;
        size_t cap = strlen(w->prefix) + 32 + n * (sizeof w->subs[0].stream + 1);
        if (!(g->path = malloc(cap))) {
            code = an_err_set(err, AN_ERR_NOMEM, "out of memory");
            goto fail;
        }
        size_t off = (size_t)snprintf(g->path, cap, "%s/stream?streams=", w->prefix);
        for (size_t i = 0; i < n; i++)
            off += (size_t)snprintf(g->path + off, cap - off, "%s%s", i ? "/" : "",
                                    w->subs[first + i].stream);
        first += n;
    }
    w->st.groups = w->ngroups;
    lws_set_log_level(LLL_ERR, lws_log);
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.protocols = protocols;
    ci.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    ci.user = w;
    /* the handshake is built in this buffer: 1,024 stream names are ~20 KB */
    ci.pt_serv_buf_size = 64 * 1024;
    if (!(w->ctx = lws_create_context(&ci))) {
        code = an_err_set(err, AN_ERR_INTERNAL, "realtime: libwebsockets context failed");
        goto fail;
    }
    if (pthread_create(&w->thread, NULL, service, w) != 0) {
        code = an_err_set(err, AN_ERR_INTERNAL, "realtime: cannot start the stream thread");
        goto fail;
    }
    w->started = 1;
    AN_INFO(COMPONENT, "msg=\"stream client started\" url=%s streams=%zu connections=%d", o->url,
            o->nsubs, w->ngroups);
    *out = w;
    return AN_OK;
fail:
    an_binance_ws_stop(w);
    return code;
}

void an_binance_ws_stop(an_binance_ws *w)
{
    if (!w)
        return;
    atomic_store(&w->stopping, 1);
    if (w->started) {
        lws_cancel_service(w->ctx);
        pthread_join(w->thread, NULL);
    }
    if (w->ctx)
        lws_context_destroy(w->ctx); /* closes the connections: conn_lost sees stopping */
    reap(w, 1);
    for (int i = 0; w->groups && i < w->ngroups; i++)
        free(w->groups[i].path);
    free(w->groups);
    free(w->series);
    free(w->order);
    free(w->subs);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

void an_binance_ws_get_stats(an_binance_ws *w, an_binance_ws_stats *st)
{
    pthread_mutex_lock(&w->lock);
    *st = w->st;
    pthread_mutex_unlock(&w->lock);
}
