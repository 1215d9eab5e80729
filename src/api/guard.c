/*
 * guard.c - the HTTP front door (see guard.h). Owns the list of open
 * connections (one record each, libmicrohttpd's socket context: its client
 * address, when its current request began, whether it is being served)
 * under one mutex, and the sweep thread that closes each connection whose
 * request head and body have not arrived within the deadline (a shutdown of
 * its socket: libmicrohttpd's event thread then sees the end and closes
 * it). libmicrohttpd 0.9.75 restarts its own connection timeout on every
 * byte, so a client dripping one header line every few seconds would hold
 * a connection forever; the deadline here is not reset by traffic.
 * Called from libmicrohttpd's callbacks on the event threads (http.c).
 */
#include "api/guard.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "core/thread.h"

#define SWEEP_MS 200
#define OVER_GRACE_MS 1000 /* an over-limit connection's time to send its request */

typedef struct gconn {
    struct gconn *prev, *next;
    an_http_guard *g;
    int fd;
    unsigned char addr[16];
    size_t alen;
    int over;         /* opened while its address held its limit */
    int busy;         /* its request is in and being served */
    int closing;      /* the sweep shut it down */
    int64_t since_ms; /* when its current request began (start or last reply) */
    size_t uri_len;   /* the current request line's URI length */
} gconn;

struct an_http_guard {
    pthread_mutex_t lock; /* the list and every record's fields */
    pthread_cond_t wake;
    gconn *head;
    int per_client;
    int64_t deadline_ms;
    int stop;
    pthread_t sweeper;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sweep_once(an_http_guard *g, int64_t now)
{
    for (gconn *c = g->head; c; c = c->next) {
        if (c->busy || c->closing)
            continue;
        int64_t limit = g->deadline_ms;
        if (c->over && (limit <= 0 || limit > OVER_GRACE_MS))
            limit = OVER_GRACE_MS;
        if (limit > 0 && now - c->since_ms > limit) {
            /* the record (and so the fd) lives until the CLOSED
             * notification, which takes the lock first */
            shutdown(c->fd, SHUT_RDWR);
            c->closing = 1;
        }
    }
}

static void *sweeper(void *arg)
{
    an_thread_name("an-http-guard");
    an_http_guard *g = arg;
    pthread_mutex_lock(&g->lock);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += SWEEP_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->wake, &g->lock, &ts);
        if (!g->stop)
            sweep_once(g, mono_ms());
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

an_code an_http_guard_new(int per_client, int64_t deadline_ms, an_http_guard **out, an_err *err)
{
    *out = NULL;
    an_http_guard *g = calloc(1, sizeof *g);
    if (!g)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    g->per_client = per_client;
    g->deadline_ms = deadline_ms;
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->wake, NULL);
    if (pthread_create(&g->sweeper, NULL, sweeper, g) != 0) {
        pthread_cond_destroy(&g->wake);
        pthread_mutex_destroy(&g->lock);
        free(g);
        return an_err_set(err, AN_ERR_INTERNAL, "cannot start the HTTP deadline thread");
    }
    *out = g;
    return AN_OK;
}

void an_http_guard_free(an_http_guard *g)
{
    if (!g)
        return;
    an_thread_stop_join(&g->lock, &g->wake, &g->stop, g->sweeper);
    while (g->head) { /* none once the daemon stopped; kept safe anyway */
        gconn *c = g->head;
        g->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&g->wake);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

unsigned an_http_guard_hard_cap(const an_http_guard *g)
{
    return g->per_client > 0 ? (unsigned)g->per_client * 2 + 16 : 0;
}

/* The connection's address bytes (IPv4 or IPv6) into c. */
static void client_addr(struct MHD_Connection *conn, gconn *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(c->addr, &in->sin_addr, 4);
        c->alen = 4;
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        memcpy(c->addr, &in6->sin6_addr, 16);
        c->alen = 16;
    }
}

static void conn_started(an_http_guard *g, struct MHD_Connection *conn, void **socket_context)
{
    gconn *c = calloc(1, sizeof *c);
    if (!c)
        return; /* not tracked: no limit or deadline for it */
    c->g = g;
    const union MHD_ConnectionInfo *fi =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = fi ? fi->connect_fd : -1;
    client_addr(conn, c);
    c->since_ms = mono_ms();
    pthread_mutex_lock(&g->lock);
    int same = 0;
    for (gconn *o = g->head; o; o = o->next)
        same += o->alen == c->alen && memcmp(o->addr, c->addr, c->alen) == 0 && !o->closing;
    c->over = g->per_client > 0 && same >= g->per_client;
    c->next = g->head;
    if (g->head)
        g->head->prev = c;
    g->head = c;
    pthread_mutex_unlock(&g->lock);
    *socket_context = c;
}

void an_http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    an_http_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_started(g, conn, socket_context);
        return;
    }
    gconn *c = *socket_context;
    if (!c)
        return;
    pthread_mutex_lock(&g->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&g->lock);
    *socket_context = NULL;
    free(c);
}

static gconn *record_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

int an_http_guard_over_limit(struct MHD_Connection *conn)
{
    gconn *c = record_of(conn);
    if (!c)
        return 0;
    pthread_mutex_lock(&c->g->lock);
    int over = c->over;
    pthread_mutex_unlock(&c->g->lock);
    return over;
}

void an_http_guard_busy(struct MHD_Connection *conn, int busy)
{
    gconn *c = record_of(conn);
    if (!c)
        return;
    pthread_mutex_lock(&c->g->lock);
    c->busy = busy;
    if (!busy)
        c->since_ms = mono_ms();
    pthread_mutex_unlock(&c->g->lock);
}

void an_http_guard_note_uri(struct MHD_Connection *conn, size_t len)
{
    gconn *c = record_of(conn);
    if (c)
        c->uri_len = len; /* only this connection's event thread touches it */
}

size_t an_http_guard_uri_len(struct MHD_Connection *conn)
{
    gconn *c = record_of(conn);
    return c ? c->uri_len : 0;
}

/* What check_head learns from the header lines. */
typedef struct head_scan {
    size_t bytes;
    size_t ncl, nte;
    int cl_differ;
    char cl[32], te[64];
} head_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    head_scan *s = cls;
    s->bytes += key_size + value_size + 4;
    if (!key || !value)
        return MHD_YES;
    if (strcasecmp(key, "Content-Length") == 0) {
        if (s->ncl && strcmp(s->cl, value) != 0)
            s->cl_differ = 1;
        if (!s->ncl)
            snprintf(s->cl, sizeof s->cl, "%.31s", value);
        s->ncl++;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        if (!s->nte)
            snprintf(s->te, sizeof s->te, "%.60s", value);
        s->nte++;
    }
    return MHD_YES;
}

unsigned an_http_guard_check_head(struct MHD_Connection *conn, size_t max_body, size_t max_head,
                                  char *msg, size_t cap)
{
    head_scan s = {0};
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_header, &s);
    if (s.bytes > max_head) {
        snprintf(msg, cap, "the request headers are larger than %zu bytes", max_head);
        return 431;
    }
    if (s.nte && s.ncl) {
        snprintf(msg, cap,
                 "Content-Length together with Transfer-Encoding is refused (RFC 9112 "
                 "section 6.3)");
        return 400;
    }
    if (s.nte > 1 || (s.nte && strcasecmp(s.te, "chunked") != 0)) {
        snprintf(msg, cap, "unsupported Transfer-Encoding '%s' (only chunked is taken)", s.te);
        return 400;
    }
    if (s.cl_differ) {
        snprintf(msg, cap, "conflicting Content-Length headers (RFC 9112 section 6.3)");
        return 400;
    }
    if (s.ncl) {
        char *end;
        unsigned long long v = strtoull(s.cl, &end, 10);
        if (end == s.cl || *end || s.cl[0] == '-' || s.cl[0] == '+') {
            snprintf(msg, cap, "invalid Content-Length '%s'", s.cl);
            return 400;
        }
        if (v > max_body) {
            snprintf(msg, cap, "the request body (Content-Length %s) is larger than %zu bytes",
                     s.cl, max_body);
            return 413;
        }
    }
    return 0;
}
