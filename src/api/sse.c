/*
 * sse.c - server-sent events for the live path (see sse.h).
 *
 * Owns the hub: the list of clients (each with its series, its indicator
 * choice, its bounded byte queue and whether libmicrohttpd has it
 * suspended), the counters and the heartbeat thread. A client is freed by
 * libmicrohttpd's response-free callback (its connection ended); the hub
 * only unlinks it then. Everything is under hub->lock; MHD_suspend /
 * MHD_resume are called with it held (they only flag the connection).
 */
#include "api/sse.h"

#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/abstime.h"
#include "core/lagring.h"
#include "core/log.h"

#define COMPONENT "sse"
#define MAX_NAMES 32

typedef struct client client;
struct client {
    an_sse_hub *hub;
    struct MHD_Connection *conn;
    client *next;
    char *want;         /* per realtime series: 1 when subscribed */
    int ind[MAX_NAMES]; /* indices into the realtime's names */
    int n_ind;
    char *buf; /* pending bytes [off, len) */
    size_t off, len, cap;
    int suspended, dropped, ended;
    int64_t last_enqueue_ms;
    /* arrival times of the events in the queue, by their end offset */
    struct {
        size_t end;
        int64_t arrived_ms;
    } pend[64];
    int npend;
};

struct an_sse_hub {
    an_realtime *rt;
    an_service *svc;
    int max_clients;
    size_t queue_max;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    client *clients;
    int nclients;
    int closing;
    uint64_t seq;
    pthread_t beat;
    int beat_started;
    int64_t events, dropped, opened, heartbeats;
    an_lag_ring lag;
    const char *const *names;
    int n_names;
};

/* Appends bytes to c's queue, or drops c when it would pass the cap. Resumes
 * a suspended client. Under the lock. */
static void enqueue(client *c, const char *s, size_t n, int64_t arrived_ms)
{
    if (c->dropped || c->ended)
        return;
    if (c->len - c->off + n > c->hub->queue_max) {
        c->dropped = 1;
        c->hub->dropped++;
        free(c->buf);
        c->buf = NULL;
        c->off = c->len = c->cap = 0;
        AN_WARN(COMPONENT, "msg=\"slow client dropped (queue full)\" queue_max=%zu",
                c->hub->queue_max);
    } else {
        if (c->off && c->off == c->len)
            c->off = c->len = 0;
        if (c->len + n > c->cap) {
            if (c->off) { /* compact first */
                memmove(c->buf, c->buf + c->off, c->len - c->off);
                for (int i = 0; i < c->npend; i++)
                    c->pend[i].end -= c->off;
                c->len -= c->off;
                c->off = 0;
            }
            size_t cap = c->cap ? c->cap : 4096;
            while (cap < c->len + n)
                cap *= 2;
            if (cap != c->cap) {
                char *b = realloc(c->buf, cap);
                if (!b) {
                    c->dropped = 1;
                    c->hub->dropped++;
                    goto wake;
                }
                c->buf = b;
                c->cap = cap;
            }
        }
        memcpy(c->buf + c->len, s, n);
        c->len += n;
        c->last_enqueue_ms = an_now_ms();
        if (arrived_ms && c->npend < 64) {
            c->pend[c->npend].end = c->len;
            c->pend[c->npend++].arrived_ms = arrived_ms;
        }
    }
wake:
    if (c->suspended) {
        c->suspended = 0;
        MHD_resume_connection(c->conn);
    }
}

/* One event's text for client c into rp. */
static void format_event(an_api_reply *rp, const char *id, const char *symbol, const char *tf,
                         const an_candle *k, int closed, const double *values,
                         const char *const *names, const client *c)
{
    char ts[40];
    an_api_printf(rp, "id: %s\nevent: candle\ndata: {\"symbol\":", id);
    an_api_put_jstr(rp, symbol);
    an_api_printf(rp, ",\"timeframe\":\"%s\",\"timestamp\":\"%s\",\"ts\":%" PRId64 ",\"open\":", tf,
                  an_time_format(k->ts, ts, sizeof ts), k->ts);
    an_api_put_double(rp, k->open);
    an_api_puts(rp, ",\"high\":");
    an_api_put_double(rp, k->high);
    an_api_puts(rp, ",\"low\":");
    an_api_put_double(rp, k->low);
    an_api_puts(rp, ",\"close\":");
    an_api_put_double(rp, k->close);
    an_api_puts(rp, ",\"volume\":");
    an_api_put_double(rp, k->volume);
    an_api_printf(rp, ",\"closed\":%s", closed ? "true" : "false");
    if (c->n_ind) {
        an_api_puts(rp, ",\"indicators\":{");
        for (int i = 0; i < c->n_ind; i++) {
            an_api_puts(rp, i ? "," : "");
            an_api_put_jstr(rp, names[c->ind[i]]);
            an_api_puts(rp, ":");
            an_api_put_double(rp, values ? values[c->ind[i]] : NAN);
        }
        an_api_puts(rp, "}");
    }
    an_api_puts(rp, "}\n\n");
}

/* The realtime listener: on the stream thread, every update in order. */
static void on_update(void *ctx, const an_realtime_update *u)
{
    an_sse_hub *hub = ctx;
    pthread_mutex_lock(&hub->lock);
    if (!hub->clients || hub->closing) {
        pthread_mutex_unlock(&hub->lock);
        return;
    }
    char id[48];
    snprintf(id, sizeof id, "%" PRId64 "-%" PRIu64, u->event_ms, ++hub->seq);
    for (client *c = hub->clients; c; c = c->next) {
        if (!c->want[u->series] || c->dropped || c->ended)
            continue;
        an_api_reply rp = {0};
        format_event(&rp, id, u->symbol, u->timeframe, &u->candle, u->closed, u->values, hub->names,
                     c);
        if (!rp.oom)
            enqueue(c, rp.body, rp.len, u->arrived_ms);
        free(rp.body);
        hub->events++;
    }
    pthread_mutex_unlock(&hub->lock);
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    client *c = cls;
    an_sse_hub *hub = c->hub;
    pthread_mutex_lock(&hub->lock);
    ssize_t n;
    if (c->dropped) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (c->off < c->len) {
        size_t k = c->len - c->off < max ? c->len - c->off : max;
        memcpy(buf, c->buf + c->off, k);
        c->off += k;
        int64_t now = an_now_ms();
        int j = 0;
        for (int i = 0; i < c->npend; i++)
            if (c->pend[i].end <= c->off)
                an_lag_add(&hub->lag, (double)(now - c->pend[i].arrived_ms) / 1000.0);
            else
                c->pend[j++] = c->pend[i];
        c->npend = j;
        n = (ssize_t)k;
    } else if (c->ended) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        /* nothing to send: off the event loop until the next update */
        c->suspended = 1;
        MHD_suspend_connection(c->conn);
        n = 0;
    }
    pthread_mutex_unlock(&hub->lock);
    return n;
}

static void client_free(void *cls)
{
    client *c = cls;
    an_sse_hub *hub = c->hub;
    pthread_mutex_lock(&hub->lock);
    for (client **pp = &hub->clients; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            hub->nclients--;
            break;
        }
    pthread_cond_broadcast(&hub->cond);
    pthread_mutex_unlock(&hub->lock);
    free(c->want);
    free(c->buf);
    free(c);
}

static void *heartbeat(void *arg)
{
    an_sse_hub *hub = arg;
    pthread_mutex_lock(&hub->lock);
    while (!hub->closing) {
        struct timespec ts = an_abstime_in(1000);
        pthread_cond_timedwait(&hub->cond, &hub->lock, &ts);
        int64_t now = an_now_ms();
        for (client *c = hub->clients; c && !hub->closing; c = c->next)
            if (!c->dropped && now - c->last_enqueue_ms >= AN_SSE_HEARTBEAT_MS) {
                enqueue(c, ": heartbeat\n\n", 13, 0);
                hub->heartbeats++;
            }
    }
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

an_code an_sse_hub_new(an_realtime *rt, an_service *svc, int max_clients, size_t queue_max,
                       an_sse_hub **out, an_err *err)
{
    *out = NULL;
    an_sse_hub *hub = calloc(1, sizeof *hub);
    if (!hub)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    hub->rt = rt;
    hub->svc = svc;
    hub->max_clients = max_clients;
    hub->queue_max = queue_max;
    hub->n_names = an_realtime_names(rt, &hub->names);
    pthread_mutex_init(&hub->lock, NULL);
    pthread_cond_init(&hub->cond, NULL);
    if (pthread_create(&hub->beat, NULL, heartbeat, hub) != 0) {
        an_sse_hub_free(hub);
        return an_err_set(err, AN_ERR_INTERNAL, "sse: cannot start the heartbeat thread");
    }
    hub->beat_started = 1;
    an_realtime_listen(rt, on_update, hub);
    *out = hub;
    return AN_OK;
}

void an_sse_hub_close(an_sse_hub *hub)
{
    if (!hub)
        return;
    an_realtime_listen(hub->rt, NULL, NULL);
    pthread_mutex_lock(&hub->lock);
    hub->closing = 1;
    for (client *c = hub->clients; c; c = c->next) {
        c->ended = 1;
        if (c->suspended) {
            c->suspended = 0;
            MHD_resume_connection(c->conn);
        }
    }
    pthread_cond_broadcast(&hub->cond);
    pthread_mutex_unlock(&hub->lock);
    if (hub->beat_started) {
        pthread_join(hub->beat, NULL);
        hub->beat_started = 0;
    }
}

void an_sse_hub_free(an_sse_hub *hub)
{
    if (!hub)
        return;
    an_sse_hub_close(hub);
    pthread_cond_destroy(&hub->cond);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

static int fail(unsigned *status, const char **param, char *msg, size_t msglen, unsigned st,
                const char *p, const char *fmt, const char *what)
{
    *status = st;
    *param = p;
    snprintf(msg, msglen, fmt, what);
    return -1;
}

/* The stored candles of c's series from the one open at `since` on, as
 * events ahead of the live ones (Last-Event-ID resumption). */
static void replay(an_sse_hub *hub, client *c, int64_t since)
{
    an_err err = {0};
    an_store *st = an_service_store(hub->svc, &err);
    if (!st) {
        AN_WARN(COMPONENT, "msg=\"resumption skipped: store unavailable\" error=\"%.200s\"",
                err.msg);
        return;
    }
    size_t n = an_realtime_series(hub->rt, 0, NULL, NULL);
    int64_t now = an_now_ms();
    for (size_t i = 0; i < n; i++) {
        if (!c->want[i])
            continue;
        const char *sym, *tf;
        an_realtime_series(hub->rt, i, &sym, &tf);
        an_query q = an_query_all();
        q.start_ms = an_timeframe_floor(tf, since);
        an_candles cs = {0};
        if (an_store_get_ohlc(st, sym, tf, &q, &cs, &err) != AN_OK) {
            AN_WARN(COMPONENT, "msg=\"resumption read failed\" symbol=%s error=\"%.200s\"", sym,
                    err.msg);
            continue;
        }
        for (size_t k = 0; k < cs.n; k++) {
            char id[48];
            snprintf(id, sizeof id, "%" PRId64 "-0", since);
            an_api_reply rp = {0};
            int closed = an_timeframe_next(tf, cs.v[k].ts) <= now;
            format_event(&rp, id, sym, tf, &cs.v[k], closed, NULL, hub->names, c);
            if (!rp.oom)
                enqueue(c, rp.body, rp.len, 0);
            free(rp.body);
        }
        an_candles_free(&cs);
    }
}

int an_sse_open(an_sse_hub *hub, void *conn, const an_api_arg *args, size_t nargs,
                const char *last_event_id, void **resp, unsigned *status, const char **param,
                char *msg, size_t msglen)
{
    const char *symbols = NULL, *tf = NULL, *inds = NULL;
    for (size_t i = 0; i < nargs; i++) {
        if (strcmp(args[i].key, "symbols") == 0)
            symbols = args[i].value;
        else if (strcmp(args[i].key, "timeframe") == 0)
            tf = args[i].value;
        else if (strcmp(args[i].key, "indicators") == 0)
            inds = args[i].value;
    }
    if (!symbols || !*symbols)
        return fail(status, param, msg, msglen, 400, "symbols", "%s",
                    "symbols is required (e.g. symbols=BTC/USDT,ETH/USDT)");
    if (!tf || !*tf)
        return fail(status, param, msg, msglen, 400, "timeframe", "%s",
                    "timeframe is required (e.g. timeframe=1m)");
    if (!an_timeframe_valid(tf))
        return fail(status, param, msg, msglen, 400, "timeframe", "unknown timeframe '%.16s'", tf);
    size_t n = an_realtime_series(hub->rt, 0, NULL, NULL);
    client *c = calloc(1, sizeof *c);
    if (!c || !(c->want = calloc(n ? n : 1, 1))) {
        free(c);
        return fail(status, param, msg, msglen, 503, NULL, "%s", "out of memory");
    }
    c->hub = hub;
    c->conn = conn;
    char item[64];
    for (const char *p = symbols; *p;) {
        size_t l = strcspn(p, ",");
        snprintf(item, sizeof item, "%.*s", (int)(l < 40 ? l : 40), p);
        an_err e = {0};
        if (an_symbol_validate(item, &e) != AN_OK) {
            free(c->want);
            free(c);
            return fail(status, param, msg, msglen, 400, "symbols", "bad symbol '%s'", item);
        }
        int found = 0;
        for (size_t i = 0; i < n; i++) {
            const char *sym, *stf;
            an_realtime_series(hub->rt, i, &sym, &stf);
            if (strcmp(sym, item) == 0 && strcmp(stf, tf) == 0)
                found = c->want[i] = 1;
        }
        if (!found) {
            free(c->want);
            free(c);
            return fail(status, param, msg, msglen, 404, "symbols",
                        "'%s' is not streamed in this timeframe (AUTONAMA_REALTIME_SYMBOLS / "
                        "_TIMEFRAMES)",
                        item);
        }
        p += l;
        if (*p == ',')
            p++;
    }
    for (const char *p = inds ? inds : ""; *p;) {
        size_t l = strcspn(p, ",");
        snprintf(item, sizeof item, "%.*s", (int)(l < 40 ? l : 40), p);
        int k = -1;
        for (int i = 0; i < hub->n_names; i++)
            if (strcmp(hub->names[i], item) == 0)
                k = i;
        for (int i = 0; i < c->n_ind && k >= 0; i++)
            if (c->ind[i] == k)
                k = -2;
        if (k < 0 || c->n_ind >= MAX_NAMES) {
            free(c->want);
            free(c);
            return fail(status, param, msg, msglen, 400, "indicators",
                        k == -2 ? "indicator '%s' given twice"
                                : "unknown indicator '%s' (the live set: AUTONAMA_INDICATORS)",
                        item);
        }
        c->ind[c->n_ind++] = k;
        p += l;
        if (*p == ',')
            p++;
    }
    if (inds && !*inds) {
        free(c->want);
        free(c);
        return fail(status, param, msg, msglen, 400, "indicators", "%s",
                    "indicators is empty (leave it out for none)");
    }
    int64_t since = 0;
    int resume = 0;
    if (last_event_id && *last_event_id) {
        char *end;
        long long v = strtoll(last_event_id, &end, 10);
        if (end != last_event_id && v >= 0 && (*end == '-' || !*end)) {
            since = v;
            resume = 1;
        }
    }
    pthread_mutex_lock(&hub->lock);
    if (hub->closing || hub->nclients >= hub->max_clients) {
        pthread_mutex_unlock(&hub->lock);
        free(c->want);
        free(c);
        return fail(status, param, msg, msglen, 503, NULL,
                    "too many streams open (AUTONAMA_HTTP_MAX_STREAMS %s)", "reached");
    }
    c->last_enqueue_ms = an_now_ms();
    if (resume)
        replay(hub, c, since); /* under the lock: no live update can come between */
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, c, client_free);
    if (!r) {
        pthread_mutex_unlock(&hub->lock);
        free(c->want);
        free(c->buf);
        free(c);
        return fail(status, param, msg, msglen, 503, NULL, "%s", "out of memory");
    }
    c->next = hub->clients;
    hub->clients = c;
    hub->nclients++;
    hub->opened++;
    pthread_mutex_unlock(&hub->lock);
    /* a bounded kernel send buffer too: what a stalled client holds is
     * bounded by it plus the queue (loopback autotuning grows it to MBs) */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        int sndbuf = 64 * 1024;
        setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    *resp = r;
    return 0;
}

char *an_sse_metrics(an_sse_hub *hub)
{
    char *b = malloc(2048);
    if (!b)
        return NULL;
    double *scratch = malloc(AN_LAG_RING * sizeof *scratch);
    pthread_mutex_lock(&hub->lock);
    double q50 = an_lag_quantile(&hub->lag, 0.5, scratch);
    double q99 = an_lag_quantile(&hub->lag, 0.99, scratch);
    snprintf(b, 2048,
             "# HELP autonama_sse_clients Server-sent event streams open now.\n"
             "# TYPE autonama_sse_clients gauge\n"
             "autonama_sse_clients %d\n"
             "# TYPE autonama_sse_streams_opened_total counter\n"
             "autonama_sse_streams_opened_total %" PRId64 "\n"
             "# TYPE autonama_sse_events_total counter\n"
             "autonama_sse_events_total %" PRId64 "\n"
             "# TYPE autonama_sse_heartbeats_total counter\n"
             "autonama_sse_heartbeats_total %" PRId64 "\n"
             "# HELP autonama_sse_dropped_total Slow clients dropped (queue full).\n"
             "# TYPE autonama_sse_dropped_total counter\n"
             "autonama_sse_dropped_total %" PRId64 "\n"
             "# HELP autonama_sse_lag_seconds From a frame's arrival to its bytes handed to a "
             "client's socket; last %d events.\n"
             "# TYPE autonama_sse_lag_seconds summary\n"
             "autonama_sse_lag_seconds{quantile=\"0.5\"} %.6f\n"
             "autonama_sse_lag_seconds{quantile=\"0.99\"} %.6f\n",
             hub->nclients, hub->opened, hub->events, hub->heartbeats, hub->dropped, AN_LAG_RING,
             q50, q99);
    pthread_mutex_unlock(&hub->lock);
    free(scratch);
    return b;
}
