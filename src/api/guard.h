/*
 * guard.h - the HTTP server's front door (issue 11): what a hostile or
 * broken client may not do to the others. Per client (source address) a
 * connection limit; per request a deadline for the whole head and body that
 * is not reset by each byte (libmicrohttpd's own timeout is); and the
 * checks of a request head before any handler sees it (request smuggling
 * shapes, a declared body over the limit, an oversized head). http.c owns the guard and calls it
 * from libmicrohttpd's callbacks on the event threads; the guard's sweep thread closes the
 * connections past their deadline.
 */
#ifndef AN_API_GUARD_H
#define AN_API_GUARD_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct an_http_guard an_http_guard;

/* per_client: connections one address may hold (0: no limit); deadline_ms:
 * how long a request's head and body may take to arrive, counted from the
 * connection's start or the previous reply (0: no deadline). Starts the
 * sweep thread. */
an_code an_http_guard_new(int per_client, int64_t deadline_ms, an_http_guard **out, an_err *err);
/* Stops the sweep thread and frees; after MHD_stop_daemon. NULL is fine. */
void an_http_guard_free(an_http_guard *g);

/* The hard cap per address for MHD_OPTION_PER_IP_CONNECTION_LIMIT: beyond
 * it connections are refused at accept; between the limit and the cap they
 * are answered 503 (0: no cap). */
unsigned an_http_guard_hard_cap(const an_http_guard *g);

/* MHD_OPTION_NOTIFY_CONNECTION's callback (cls: the guard). */
void an_http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code);

/* 1 when conn was opened while its address already held its limit. */
int an_http_guard_over_limit(struct MHD_Connection *conn);
/* The request on conn is in (1: its deadline stops while it is served) or
 * answered (0: the next request's deadline starts now). */
void an_http_guard_busy(struct MHD_Connection *conn, int busy);

/* The request line's URI length (from MHD_OPTION_URI_LOG_CALLBACK), kept
 * on the connection until the handler reads it: the URI callback allocates
 * nothing, as libmicrohttpd does not call the completion callback for a
 * request it refuses before the handler (issue 11 fault 2's leak). */
void an_http_guard_note_uri(struct MHD_Connection *conn, size_t len);
size_t an_http_guard_uri_len(struct MHD_Connection *conn);

/* The checks of a request head (RFC 9112 section 6.3 and our limits): 0
 * when it may go on, else the status to answer (400, 413, 431) with the
 * reason in msg. Such an answer must close the connection. */
unsigned an_http_guard_check_head(struct MHD_Connection *conn, size_t max_body, size_t max_head,
                                  char *msg, size_t cap);

#endif
