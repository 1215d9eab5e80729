/*
 * listen.c - the PostgreSQL backend's listener (store.h's an_store_listen):
 * one thread of its own with one connection of its own (outside the pool)
 * that LISTENs on autonama_candles and turns each notification every
 * writer sends at commit (catalog.c) into a call of the caller's hook.
 * The thread waits on the connection's socket and a wake pipe with poll,
 * reads with PQconsumeInput / PQnotifies, and reconnects with a backoff
 * (0.1 s doubling to 5 s) when the connection is lost, calling the hook
 * with "everything changed" on every (re)connect: what was sent while it
 * was not listening is not known. The connect is non-blocking
 * (PQconnectStart / PQconnectPoll) so a stop never waits on it. Owns the
 * listener, its connection and a copy of the connection string (secret,
 * never logged). The announcements its own store handle tagged (the live
 * path's many-series flush, store.h) are skipped: this process's hooks
 * heard them at once. Threads: the listener's own; start and stop from any one.
 */
#include "store/pg/pg_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/thread.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CONNECT_MAX_MS 10000

struct an_store_listener {
    char *conninfo; /* malloc'd copy of the pool's; secret */
    an_store_change_fn fn;
    void *ctx;
    char tag[17]; /* the store handle's: its own announcements are skipped */
    int wake[2];  /* stop writes a byte to wake[1]; the thread polls wake[0] */
    atomic_int stop;
    pthread_t thread;
};

/* The PGlite server takes one connection at a time: a listener would hold
 * it. Said once per process. */
static atomic_int pglite_said;

/* Waits until fd is ready for events (or the wake pipe is), at most ms
 * (-1: no limit). 1: fd ready; 0: timed out; -1: stopping or poll failed. */
static int wait_fd(an_store_listener *l, int fd, short events, int ms)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = l->wake[0], .events = POLLIN}, {.fd = fd, .events = events}};
        int r = poll(p, fd >= 0 ? 2 : 1, ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || atomic_load(&l->stop) || p[0].revents)
            return -1;
        return r > 0 ? 1 : 0;
    }
}

/* A connection, made without blocking the stop; NULL when it failed or the
 * listener is stopping. */
static PGconn *connect_nb(an_store_listener *l)
{
    PGconn *c = PQconnectStart(l->conninfo);
    if (!c || PQstatus(c) == CONNECTION_BAD)
        goto fail;
    int64_t until = an_store_mono_ms() + CONNECT_MAX_MS;
    for (;;) {
        PostgresPollingStatusType st = PQconnectPoll(c);
        if (st == PGRES_POLLING_OK)
            return c;
        if (st == PGRES_POLLING_FAILED)
            goto fail;
        int64_t left = until - an_store_mono_ms();
        short ev = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (left <= 0 || wait_fd(l, PQsocket(c), ev, (int)left) <= 0)
            goto fail;
    }
fail:
    if (c && !atomic_load(&l->stop)) {
        char q[256];
        AN_WARN(AN_PG_COMPONENT, "msg=\"listener cannot connect\" error=\"%s\"",
                an_log_quote(PQerrorMessage(c), q, sizeof q));
    }
    PQfinish(c);
    return NULL;
}

/* One notification's payload (store.h) to the hook; what cannot be read
 * counts as "everything changed". */
static void deliver(an_store_listener *l, const char *payload)
{
    /* this store handle's own write (the tag, the last field, is ours):
     * this process heard it at once; the live path's own flushes are most
     * of what arrives here, so they are told apart before any parsing */
    size_t len = strlen(payload), tl = strlen(l->tag);
    if (tl && len > tl && payload[len - tl - 1] == ' ' &&
        memcmp(payload + len - tl, l->tag, tl) == 0)
        return;
    an_store_change ch = {0};
    char sym[AN_SYMBOL_MAX], tf[AN_TIMEFRAME_MAX];
    int64_t a, b; /* another handle's tag, if any, follows: not needed */
    int got = sscanf(payload, "%31s %7s %" SCNd64 " %" SCNd64, sym, tf, &a, &b);
    if (got == 4) {
        memcpy(ch.symbol, sym, sizeof sym);
        memcpy(ch.timeframe, tf, sizeof tf);
        ch.first_ms = a;
        ch.last_ms = b;
    }
    l->fn(l->ctx, &ch);
}

/* LISTENs on c and hands notifications to the hook until the connection is
 * lost or the listener stops. */
static void listen_on(an_store_listener *l, PGconn *c)
{
    PGresult *r = PQexec(c, "LISTEN " AN_STORE_NOTIFY_CHANNEL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok || PQsetnonblocking(c, 1) != 0)
        return;
    AN_INFO(AN_PG_COMPONENT, "msg=\"listening\" channel=" AN_STORE_NOTIFY_CHANNEL);
    an_store_change all = {0};
    l->fn(l->ctx, &all); /* what came before is unknown */
    for (;;) {
        PGnotify *n; /* first those read with LISTEN's reply, if any */
        while ((n = PQnotifies(c)) != NULL) {
            deliver(l, n->extra ? n->extra : "");
            PQfreemem(n);
        }
        if (wait_fd(l, PQsocket(c), POLLIN, -1) < 0)
            return;
        if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
            break;
    }
    char q[256];
    AN_WARN(AN_PG_COMPONENT, "msg=\"listener lost its connection; reconnecting\" error=\"%s\"",
            an_log_quote(PQerrorMessage(c), q, sizeof q));
}

static void *run(void *arg)
{
    an_thread_name("an-pg-listen");
    an_store_listener *l = arg;
    int backoff = BACKOFF_MIN_MS;
    while (!atomic_load(&l->stop)) {
        PGconn *c = connect_nb(l);
        if (c) {
            int64_t t0 = an_store_mono_ms();
            listen_on(l, c);
            PQfinish(c);
            if (an_store_mono_ms() - t0 > BACKOFF_MAX_MS)
                backoff = BACKOFF_MIN_MS; /* it had been listening a while */
        }
        if (atomic_load(&l->stop) || wait_fd(l, -1, 0, backoff) < 0)
            break;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return NULL;
}

static void free_listener(an_store_listener *l)
{
    if (l->conninfo) {
        memset(l->conninfo, 0, strlen(l->conninfo));
        free(l->conninfo);
    }
    for (int i = 0; i < 2; i++)
        if (l->wake[i] >= 0)
            close(l->wake[i]);
    free(l);
}

an_code an_pg_listen(an_store *s, an_store_change_fn fn, void *ctx, an_store_listener **out,
                     an_err *err)
{
    pg_store *ps = s->impl;
    if (ps->is_pglite) {
        if (atomic_exchange(&pglite_said, 1) == 0)
            AN_WARN(AN_PG_COMPONENT,
                    "msg=\"this server (PGlite) takes one connection at a time: no LISTEN; "
                    "cached replies of other instances' writes last until they expire\"");
        return AN_OK;
    }
    an_store_listener *l = calloc(1, sizeof *l);
    if (!l)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    l->wake[0] = l->wake[1] = -1;
    l->fn = fn;
    l->ctx = ctx;
    memcpy(l->tag, ps->tag, sizeof l->tag);
    if (!(l->conninfo = strdup(ps->pool.conninfo))) {
        free_listener(l);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        an_code rc = an_err_set(err, AN_ERR_IO, "listener: pipe: %s", strerror(errno));
        free_listener(l);
        return rc;
    }
    int e = pthread_create(&l->thread, NULL, run, l);
    if (e != 0) {
        free_listener(l);
        return an_err_set(err, AN_ERR_INTERNAL, "listener: cannot start its thread: %s",
                          strerror(e));
    }
    *out = l;
    return AN_OK;
}

void an_pg_listener_stop(an_store_listener *l)
{
    if (!l)
        return;
    atomic_store(&l->stop, 1);
    ssize_t w = write(l->wake[1], "x", 1);
    (void)w; /* the flag is set either way; the pipe only wakes the poll */
    pthread_join(l->thread, NULL);
    free_listener(l);
}
