/*
 * sse.c - server-sent events for the live path (see sse.h).
 *
 * Owns the hub: the list of clients (each with its series, its indicator
 * choice, its bounded queue of event texts and whether libmicrohttpd has it
 * suspended; an update's text is made once and the queues of all the
 * clients it goes to hold that one text, counted, not a copy each), per series the clients
 * subscribed to it, the counters, the heartbeat thread and the replay worker (Last-Event-ID: it
 * reads the store outside the lock, then puts the stored events ahead of the live ones queued
 * meanwhile). A client is freed by libmicrohttpd's response-free callback (its connection ended),
 * or by the replay worker when that came during its replay. Everything else is under hub->lock;
 * MHD_suspend / MHD_resume are called with it held (they only flag the connection). A suspended
 * client that the stream thread's updates queued bytes for is resumed once, at the end of that
 * thread's batch (the listener's NULL update), not once per update.
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
#include "core/numfmt.h"
#include "core/thread.h"

#define COMPONENT "sse"
#define MAX_NAMES 32

/* An event's text, shared by every client it is queued for: freed by the
 * last one to send it or be gone (refs under the hub's lock). */
typedef struct text {
    int refs;
    size_t len;
    char s[];
} text;

/* A queued text and when its event arrived (0: not an event's) */
typedef struct qent {
    text *t;
    int64_t arrived_ms;
} qent;

typedef struct client client;
struct client {
    an_sse_hub *hub;
    struct MHD_Connection *conn;
    client *next;
    char *want;         /* per realtime series: 1 when subscribed */
    int ind[MAX_NAMES]; /* indices into the realtime's names */
    int n_ind;
    qent *q; /* the queue: q[head .. head + n), of qcap */
    size_t head, n, qcap;
    size_t qoff;   /* bytes of q[head] already sent */
    size_t qbytes; /* bytes queued and not sent */
    int suspended, dropped, ended;
    int wake; /* suspended with bytes queued by on_update: resumed at the batch's end */
    /* Last-Event-ID: the replay worker reads the store for it; until it has
     * queued the stored events (ahead of any live ones that came meanwhile)
     * nothing is sent. gone: the connection ended meanwhile (the worker
     * frees the client). */
    int replaying, gone;
    int64_t since;
    client *rnext;
    int64_t last_enqueue_ms;
};

/* The clients subscribed to one series. */
typedef struct sub_list {
    client **v;
    size_t n, cap;
} sub_list;

struct an_sse_hub {
    an_realtime *rt;
    /* per realtime series, its subscribers: an update visits only them
     * (1,000 series, 100 clients of 100 each: 10 a update, not 100) */
    sub_list *subs;
    size_t nseries;
    an_service *svc;
    int max_clients;
    size_t queue_max;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    client *clients;
    int nclients;
    int wake_any; /* some client's wake is set */
    /* the last wake_all, and a deferred one due at last_wake_ms +
     * AN_SSE_COALESCE_MS (the heartbeat thread runs it) */
    int64_t last_wake_ms;
    int flush_due;
    int closing;
    uint64_t seq;
    an_api_reply fmt; /* on_update's formatting buffer (under the lock) */
    pthread_t beat, replayer;
    int beat_started, replayer_started;
    pthread_cond_t rcond;
    client *rq_head, *rq_tail; /* clients waiting for their replay */
    int64_t events, dropped, opened, heartbeats, replays;
    an_lag_ring lag;
    const char *const *names;
    int n_names;
};

/* Adds c to the lists of the series it wants; -1 (and in none) when out of
 * memory. Under the lock. */
static int subscribe(an_sse_hub *hub, client *c)
{
    for (size_t i = 0; i < hub->nseries; i++) {
        sub_list *l = &hub->subs[i];
        if (!c->want[i])
            continue;
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 8;
            client **v = realloc(l->v, cap * sizeof *v);
            if (!v) {
                while (i-- > 0) /* undo: c was pushed last where it is */
                    if (c->want[i])
                        hub->subs[i].n--;
                return -1;
            }
            l->v = v;
            l->cap = cap;
        }
        l->v[l->n++] = c;
    }
    return 0;
}

/* Takes c out of its series' lists. Under the lock. */
static void unsubscribe(an_sse_hub *hub, client *c)
{
    for (size_t i = 0; i < hub->nseries; i++) {
        sub_list *l = &hub->subs[i];
        for (size_t k = 0; c->want[i] && k < l->n; k++)
            if (l->v[k] == c) {
                memmove(l->v + k, l->v + k + 1, (l->n - k - 1) * sizeof *l->v);
                l->n--;
                break;
            }
    }
}

/* A text of its own copy of s[0..n), held once by the caller; NULL when out
 * of memory. */
static text *text_new(const char *s, size_t n)
{
    text *t = malloc(sizeof *t + n);
    if (t) {
        t->refs = 1;
        t->len = n;
        memcpy(t->s, s, n);
    }
    return t;
}

/* Lets go of t. Under the lock (t may be queued to other clients). */
static void text_unref(text *t)
{
    if (t && --t->refs == 0)
        free(t);
}

/* Empties c's queue. Under the lock. */
static void queue_clear(client *c)
{
    for (size_t i = 0; i < c->n; i++)
        text_unref(c->q[c->head + i].t);
    free(c->q);
    c->q = NULL;
    c->head = c->n = c->qcap = c->qoff = c->qbytes = 0;
}

/* Room for one more entry after the last; 0 when out of memory. */
static int queue_room(client *c)
{
    if (c->head + c->n < c->qcap)
        return 1;
    if (c->head && c->head >= c->qcap / 2) { /* half of it already sent: move down */
        memmove(c->q, c->q + c->head, c->n * sizeof *c->q);
        c->head = 0;
        return 1;
    }
    size_t cap = c->qcap ? c->qcap * 2 : 64;
    qent *q = realloc(c->q, cap * sizeof *q);
    if (!q)
        return 0;
    c->q = q;
    c->qcap = cap;
    return 1;
}

/* Drops a client whose queue would pass its cap (it stopped reading): its
 * connection ends with an error at its next read. Under the lock. */
static void drop(client *c)
{
    c->dropped = 1;
    c->hub->dropped++;
    queue_clear(c);
    AN_WARN(COMPONENT, "msg=\"slow client dropped (queue full)\" queue_max=%zu", c->hub->queue_max);
}

/* Resumes a suspended client (not while its replay runs): at once, or with
 * later = 1 at the end of the stream thread's batch (wake_all). Under the
 * lock. */
static void wake(client *c, int later)
{
    if (!c->suspended || c->replaying)
        return;
    if (later) {
        c->wake = c->hub->wake_any = 1;
        return;
    }
    c->suspended = 0;
    MHD_resume_connection(c->conn);
}

/* The end of a batch of updates (the frames of one network read): the
 * clients they queued bytes for are resumed, each once, so one send carries
 * all of a client's events of the batch. Under the lock. */
static void wake_all(an_sse_hub *hub)
{
    if (!hub->wake_any)
        return;
    hub->wake_any = 0;
    for (client *c = hub->clients; c; c = c->next)
        if (c->wake) {
            c->wake = 0;
            wake(c, 0);
        }
}

/* Queues t (shared, not copied) to c, or drops c when it would pass the
 * cap. Wakes a suspended client (later: see wake). Under the lock. */
static void enqueue(client *c, text *t, int64_t arrived_ms, int later)
{
    if (c->dropped || c->ended)
        return;
    if (c->qbytes + t->len > c->hub->queue_max) {
        drop(c);
    } else if (!queue_room(c)) {
        c->dropped = 1;
        c->hub->dropped++;
    } else {
        c->q[c->head + c->n++] = (qent){t, arrived_ms};
        t->refs++;
        c->qbytes += t->len;
        c->last_enqueue_ms = arrived_ms ? arrived_ms : an_now_ms(); /* no clock read per client */
    }
    wake(c, later && !c->dropped);
}

/* One event's text for client c into rp. */
static void format_event(an_api_reply *rp, const char *id, const char *symbol, const char *tf,
                         const an_candle *k, int closed, const double *values,
                         const char *const *names, const client *c)
{
    /* no printf: the stream thread formats one of these per update */
    an_api_puts(rp, "id: ");
    an_api_puts(rp, id);
    an_api_puts(rp, "\nevent: candle\ndata: {\"symbol\":");
    an_api_put_jstr(rp, symbol);
    an_api_puts(rp, ",\"timeframe\":\"");
    an_api_puts(rp, tf); /* a validated timeframe: nothing to escape */
    an_api_puts(rp, "\",");
    an_api_put_candle(rp, k);
    an_api_puts(rp, closed ? ",\"closed\":true" : ",\"closed\":false");
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

/* The realtime listener: on the stream thread, every update in order; u
 * NULL at the end of a batch. */
static void on_update(void *ctx, const an_realtime_update *u)
{
    an_sse_hub *hub = ctx;
    pthread_mutex_lock(&hub->lock);
    if (!u) {
        /* at most one wake-up of the clients per AN_SSE_COALESCE_MS: the
         * batches that end meanwhile go out with the next one */
        int64_t now = an_now_ms();
        if (hub->wake_any && now - hub->last_wake_ms >= AN_SSE_COALESCE_MS) {
            wake_all(hub);
            hub->last_wake_ms = now;
        } else if (hub->wake_any && !hub->flush_due) {
            hub->flush_due = 1;
            pthread_cond_broadcast(&hub->cond);
        }
        pthread_mutex_unlock(&hub->lock);
        return;
    }
    if (!hub->clients || hub->closing) {
        pthread_mutex_unlock(&hub->lock);
        return;
    }
    char id[48]; /* "<event ms>-<seq>", as replay's */
    size_t idn = an_int_format(u->event_ms, id);
    id[idn++] = '-';
    an_int_format((int64_t)(++hub->seq & INT64_MAX), id + idn);
    /* the text is made once per indicator choice: clients asking for the
     * same indicators (most often none) share the last one formatted, each
     * queue holding it (not a copy) until that client has sent it */
    text *t = NULL;
    const client *made = NULL;
    const sub_list *l = u->series < hub->nseries ? &hub->subs[u->series] : &(sub_list){0};
    for (size_t k = 0; k < l->n; k++) {
        client *c = l->v[k];
        if (c->dropped || c->ended)
            continue;
        if (!made || made->n_ind != c->n_ind ||
            memcmp(made->ind, c->ind, (size_t)c->n_ind * sizeof *c->ind) != 0) {
            an_api_reply *rp = &hub->fmt; /* its buffer kept from update to update */
            rp->len = 0;
            rp->oom = 0;
            format_event(rp, id, u->symbol, u->timeframe, &u->candle, u->closed, u->values,
                         hub->names, c);
            text_unref(t);
            t = rp->oom ? NULL : text_new(rp->body, rp->len);
            made = c;
        }
        if (t)
            enqueue(c, t, u->arrived_ms, 1);
        hub->events++;
    }
    text_unref(t);
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
    } else if (c->replaying && !c->ended) {
        c->suspended = 1; /* the replay worker resumes it */
        MHD_suspend_connection(c->conn);
        n = 0;
    } else if (c->n) {
        size_t k = 0;
        int64_t now = 0;
        while (c->n && k < max) { /* whole texts while they fit, then part of one */
            qent *e = &c->q[c->head];
            size_t m = e->t->len - c->qoff < max - k ? e->t->len - c->qoff : max - k;
            memcpy(buf + k, e->t->s + c->qoff, m);
            k += m;
            c->qoff += m;
            c->qbytes -= m;
            if (c->qoff < e->t->len)
                break;
            if (e->arrived_ms) {
                now = now ? now : an_now_ms();
                an_lag_add(&hub->lag, (double)(now - e->arrived_ms) / 1000.0);
            }
            text_unref(e->t);
            c->head++;
            c->n--;
            c->qoff = 0;
        }
        if (!c->n)
            c->head = 0;
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

/* Frees c; its queue must be empty unless the lock is held. */
static void client_destroy(client *c)
{
    queue_clear(c);
    free(c->want);
    free(c);
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
            unsubscribe(hub, c);
            break;
        }
    pthread_cond_broadcast(&hub->cond);
    int later = c->replaying; /* the replay worker still holds it */
    c->gone = 1;
    if (!later)
        queue_clear(c); /* its texts, other clients may hold them too */
    pthread_mutex_unlock(&hub->lock);
    if (!later)
        client_destroy(c);
}

static void *heartbeat(void *arg)
{
    an_thread_name("an-sse-beat");
    an_sse_hub *hub = arg;
    pthread_mutex_lock(&hub->lock);
    int64_t next_beat = an_now_ms() + 1000;
    while (!hub->closing) {
        int64_t now = an_now_ms();
        int64_t until = hub->flush_due ? hub->last_wake_ms + AN_SSE_COALESCE_MS : next_beat;
        if (until > now) {
            struct timespec ts = an_abstime_in(until - now);
            pthread_cond_timedwait(&hub->cond, &hub->lock, &ts);
            continue;
        }
        if (hub->flush_due) { /* a wake-up the coalescing deferred */
            hub->flush_due = 0;
            wake_all(hub);
            hub->last_wake_ms = now;
            continue;
        }
        next_beat = now + 1000;
        wake_all(hub); /* a batch whose end never came (the listener set mid-batch) */
        text *hb = NULL;
        for (client *c = hub->clients; c && !hub->closing; c = c->next)
            if (!c->dropped && now - c->last_enqueue_ms >= AN_SSE_HEARTBEAT_MS &&
                (hb || (hb = text_new(": heartbeat\n\n", 13)))) {
                enqueue(c, hb, 0, 0);
                hub->heartbeats++;
            }
        text_unref(hb);
    }
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

static void *replayer(void *arg);

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
    hub->nseries = an_realtime_series(rt, 0, NULL, NULL);
    if (!(hub->subs = calloc(hub->nseries ? hub->nseries : 1, sizeof *hub->subs))) {
        free(hub);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&hub->lock, NULL);
    pthread_cond_init(&hub->cond, NULL);
    pthread_cond_init(&hub->rcond, NULL);
    if (pthread_create(&hub->beat, NULL, heartbeat, hub) != 0) {
        an_sse_hub_free(hub);
        return an_err_set(err, AN_ERR_INTERNAL, "sse: cannot start the heartbeat thread");
    }
    hub->beat_started = 1;
    if (pthread_create(&hub->replayer, NULL, replayer, hub) != 0) {
        an_sse_hub_free(hub);
        return an_err_set(err, AN_ERR_INTERNAL, "sse: cannot start the replay thread");
    }
    hub->replayer_started = 1;
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
    pthread_cond_broadcast(&hub->rcond);
    pthread_mutex_unlock(&hub->lock);
    if (hub->beat_started) {
        pthread_join(hub->beat, NULL);
        hub->beat_started = 0;
    }
    if (hub->replayer_started) {
        pthread_join(hub->replayer, NULL);
        hub->replayer_started = 0;
    }
}

void an_sse_hub_free(an_sse_hub *hub)
{
    if (!hub)
        return;
    an_sse_hub_close(hub);
    pthread_cond_destroy(&hub->cond);
    pthread_cond_destroy(&hub->rcond);
    pthread_mutex_destroy(&hub->lock);
    for (size_t i = 0; i < hub->nseries; i++)
        free(hub->subs[i].v);
    free(hub->subs);
    free(hub->fmt.body);
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

/* The stored indicator values of the candles cs (hub->n_names per candle,
 * NAN where none is stored: the open candle, the warm-up), or NULL. */
static double *stored_values(an_sse_hub *hub, an_store *st, const char *sym, const char *tf,
                             const an_candles *cs)
{
    size_t nn = (size_t)hub->n_names;
    double *v = cs->n && nn ? malloc(cs->n * nn * sizeof *v) : NULL;
    if (!v)
        return NULL;
    for (size_t i = 0; i < cs->n * nn; i++)
        v[i] = NAN;
    an_query q = an_query_all();
    q.start_ms = cs->v[0].ts;
    an_indicator_points pts = {0};
    an_err err = {0};
    if (an_store_get_indicators(st, sym, tf, NULL, &q, &pts, &err) != AN_OK)
        AN_WARN(COMPONENT, "msg=\"resumption: indicators unreadable\" symbol=%s error=\"%.200s\"",
                sym, err.msg);
    for (size_t p = 0; p < pts.n; p++) {
        size_t k = 0;
        while (k < nn && strcmp(hub->names[k], pts.v[p].name) != 0)
            k++;
        size_t lo = 0, hi = cs->n; /* the candle, by binary search */
        while (k < nn && lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (cs->v[mid].ts < pts.v[p].ts)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (k < nn && lo < cs->n && cs->v[lo].ts == pts.v[p].ts)
            v[lo * nn + k] = pts.v[p].value;
    }
    an_indicator_points_free(&pts);
    return v;
}

/* The stored candles of c's series from the one open at c->since on, as
 * events (with the indicator values stored for them) into rp. On the replay
 * worker, without the hub's lock: c's series and indicator choice do not
 * change after the open. */
static void replay_read(an_sse_hub *hub, const client *c, an_api_reply *rp)
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
    char id[48];
    snprintf(id, sizeof id, "%" PRId64 "-0", c->since);
    for (size_t i = 0; i < n; i++) {
        if (!c->want[i])
            continue;
        const char *sym, *tf;
        an_realtime_series(hub->rt, i, &sym, &tf);
        an_query q = an_query_all();
        q.start_ms = an_timeframe_floor(tf, c->since);
        an_candles cs = {0};
        if (an_store_get_ohlc(st, sym, tf, &q, &cs, &err) != AN_OK) {
            AN_WARN(COMPONENT, "msg=\"resumption read failed\" symbol=%s error=\"%.200s\"", sym,
                    err.msg);
            continue;
        }
        double *vals = c->n_ind ? stored_values(hub, st, sym, tf, &cs) : NULL;
        for (size_t k = 0; k < cs.n; k++) {
            int closed = an_timeframe_next(tf, cs.v[k].ts) <= now;
            format_event(rp, id, sym, tf, &cs.v[k], closed,
                         vals ? vals + k * (size_t)hub->n_names : NULL, hub->names, c);
        }
        free(vals);
        an_candles_free(&cs);
    }
}

/* Puts the replayed bytes ahead of the live events queued meanwhile (or
 * drops c when both pass its cap). Under the lock. */
static void prepend(client *c, const char *s, size_t n)
{
    if (!n || c->dropped || c->ended)
        return;
    /* nothing was sent meanwhile (qoff 0): the replay goes first whole */
    text *t = c->qbytes + n <= c->hub->queue_max ? text_new(s, n) : NULL;
    if (!t || !queue_room(c)) {
        free(t);
        drop(c);
        return;
    }
    memmove(c->q + c->head + 1, c->q + c->head, c->n * sizeof *c->q);
    c->q[c->head] = (qent){t, 0};
    c->n++;
    c->qbytes += n;
}

/* Ends a client's replay (under the lock); frees it when its connection
 * ended meanwhile, else lets it send. */
static void replay_done(client *c)
{
    c->replaying = 0;
    if (c->gone) {
        client_destroy(c);
    } else if (c->suspended) {
        c->suspended = 0;
        MHD_resume_connection(c->conn);
    }
}

/* The replay worker: Last-Event-ID resumptions, one at a time, off the
 * event threads and outside the hub's lock while the store is read. */
static void *replayer(void *arg)
{
    an_thread_name("an-sse-replay");
    an_sse_hub *hub = arg;
    pthread_mutex_lock(&hub->lock);
    for (;;) {
        while (!hub->closing && !hub->rq_head)
            pthread_cond_wait(&hub->rcond, &hub->lock);
        if (hub->closing)
            break;
        client *c = hub->rq_head;
        if (!(hub->rq_head = c->rnext))
            hub->rq_tail = NULL;
        if (c->gone) {
            replay_done(c);
            continue;
        }
        pthread_mutex_unlock(&hub->lock);
        an_api_reply rp = {0};
        replay_read(hub, c, &rp);
        pthread_mutex_lock(&hub->lock);
        if (rp.oom)
            drop(c);
        else
            prepend(c, rp.body, rp.len);
        free(rp.body);
        hub->replays++;
        replay_done(c);
    }
    while (hub->rq_head) { /* closing: the rest end without their replay */
        client *c = hub->rq_head;
        hub->rq_head = c->rnext;
        replay_done(c);
    }
    hub->rq_tail = NULL;
    pthread_mutex_unlock(&hub->lock);
    return NULL;
}

/* Reads symbols= into c->want: every one must be streamed in tf. */
static int parse_symbols(an_sse_hub *hub, client *c, const char *symbols, const char *tf,
                         unsigned *status, const char **param, char *msg, size_t msglen)
{
    size_t n = an_realtime_series(hub->rt, 0, NULL, NULL);
    char item[64];
    for (const char *p = symbols; *p;) {
        size_t l = strcspn(p, ",");
        snprintf(item, sizeof item, "%.*s", (int)(l < 40 ? l : 40), p);
        an_err e = {0};
        if (an_symbol_validate(item, &e) != AN_OK)
            return fail(status, param, msg, msglen, 400, "symbols", "bad symbol '%s'", item);
        int found = 0;
        for (size_t i = 0; i < n; i++) {
            const char *sym, *stf;
            an_realtime_series(hub->rt, i, &sym, &stf);
            if (strcmp(sym, item) == 0 && strcmp(stf, tf) == 0)
                found = c->want[i] = 1;
        }
        if (!found)
            return fail(status, param, msg, msglen, 404, "symbols",
                        "'%s' is not streamed in this timeframe (AUTONAMA_REALTIME_SYMBOLS / "
                        "_TIMEFRAMES)",
                        item);
        p += l;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* Reads indicators= into c->ind: names of the live set, each once. */
static int parse_indicators(an_sse_hub *hub, client *c, const char *inds, unsigned *status,
                            const char **param, char *msg, size_t msglen)
{
    char item[64];
    if (inds && !*inds)
        return fail(status, param, msg, msglen, 400, "indicators", "%s",
                    "indicators is empty (leave it out for none)");
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
        if (k < 0 || c->n_ind >= MAX_NAMES)
            return fail(status, param, msg, msglen, 400, "indicators",
                        k == -2 ? "indicator '%s' given twice"
                                : "unknown indicator '%s' (the live set: AUTONAMA_INDICATORS)",
                        item);
        c->ind[c->n_ind++] = k;
        p += l;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* A new client of the request's parameters, or NULL with the failure set. */
static client *parse_request(an_sse_hub *hub, const an_api_arg *args, size_t nargs,
                             unsigned *status, const char **param, char *msg, size_t msglen)
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
    if (!symbols || !*symbols) {
        fail(status, param, msg, msglen, 400, "symbols", "%s",
             "symbols is required (e.g. symbols=BTC/USDT,ETH/USDT)");
        return NULL;
    }
    if (!tf || !*tf) {
        fail(status, param, msg, msglen, 400, "timeframe", "%s",
             "timeframe is required (e.g. timeframe=1m)");
        return NULL;
    }
    if (!an_timeframe_valid(tf)) {
        fail(status, param, msg, msglen, 400, "timeframe", "unknown timeframe '%.16s'", tf);
        return NULL;
    }
    size_t n = an_realtime_series(hub->rt, 0, NULL, NULL);
    client *c = calloc(1, sizeof *c);
    if (!c || !(c->want = calloc(n ? n : 1, 1))) {
        free(c);
        fail(status, param, msg, msglen, 503, NULL, "%s", "out of memory");
        return NULL;
    }
    c->hub = hub;
    if (parse_symbols(hub, c, symbols, tf, status, param, msg, msglen) != 0 ||
        parse_indicators(hub, c, inds, status, param, msg, msglen) != 0) {
        client_destroy(c);
        return NULL;
    }
    return c;
}

int an_sse_open(an_sse_hub *hub, void *conn, const an_api_arg *args, size_t nargs,
                const char *last_event_id, void **resp, unsigned *status, const char **param,
                char *msg, size_t msglen)
{
    client *c = parse_request(hub, args, nargs, status, param, msg, msglen);
    if (!c)
        return -1;
    c->conn = conn;
    if (last_event_id && *last_event_id) {
        char *end;
        long long v = strtoll(last_event_id, &end, 10);
        if (end != last_event_id && v >= 0 && (*end == '-' || !*end)) {
            c->since = v;
            c->replaying = 1;
        }
    }
    pthread_mutex_lock(&hub->lock);
    struct MHD_Response *r = NULL;
    int subscribed = !hub->closing && hub->nclients < hub->max_clients && subscribe(hub, c) == 0;
    if (subscribed)
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, c, client_free);
    if (!r && subscribed)
        unsubscribe(hub, c);
    if (!r) {
        int full = hub->closing || hub->nclients >= hub->max_clients;
        pthread_mutex_unlock(&hub->lock);
        client_destroy(c);
        return fail(status, param, msg, msglen, 503, NULL,
                    full ? "too many streams open (AUTONAMA_HTTP_MAX_STREAMS %s)" : "%s",
                    full ? "reached" : "out of memory");
    }
    c->last_enqueue_ms = an_now_ms();
    c->next = hub->clients;
    hub->clients = c;
    hub->nclients++;
    hub->opened++;
    if (c->replaying) { /* live updates queue behind the replay from now on */
        if (hub->rq_tail)
            hub->rq_tail->rnext = c;
        else
            hub->rq_head = c;
        hub->rq_tail = c;
        pthread_cond_signal(&hub->rcond);
    }
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
             "# HELP autonama_sse_replays_total Last-Event-ID resumptions served from the store.\n"
             "# TYPE autonama_sse_replays_total counter\n"
             "autonama_sse_replays_total %" PRId64 "\n"
             "# HELP autonama_sse_lag_seconds From a frame's arrival to its bytes handed to a "
             "client's socket; last %d events.\n"
             "# TYPE autonama_sse_lag_seconds summary\n"
             "autonama_sse_lag_seconds{quantile=\"0.5\"} %.6f\n"
             "autonama_sse_lag_seconds{quantile=\"0.99\"} %.6f\n",
             hub->nclients, hub->opened, hub->events, hub->heartbeats, hub->dropped, hub->replays,
             AN_LAG_RING, q50, q99);
    pthread_mutex_unlock(&hub->lock);
    free(scratch);
    return b;
}
