/*
 * reply.h - from a route's an_api_reply to what goes on the wire, internal
 * to src/api/: the libmicrohttpd response of a reply (gzip when the client
 * accepts it and it shrinks, the ETag, Cache-Control, Vary, CORS and the
 * other headers), the 304 and OPTIONS responses, and the hash the ETags and
 * the reply cache use. The body builders handlers use (an_api_put...) are
 * declared in api.h and defined in reply.c too.
 *
 * Every function that builds a response returns NULL when libmicrohttpd
 * cannot (memory pressure); the server then answers with its preallocated
 * 503 (http.c), so no path depends on an allocation succeeding. Called on the
 * event threads and the handler workers; no shared state.
 */
#ifndef AN_API_REPLY_H
#define AN_API_REPLY_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"

#define AN_REPLY_ETAG_MAX 40

/* FNV-1a over 8-byte words, then the tail bytes: ETags and cache slots. */
uint64_t an_reply_hash(const void *p, size_t n);

/* 1 when an Accept-Encoding value accepts gzip (a "gzip" token whose q is not 0). */
int an_reply_accepts_gzip(const char *accept_encoding);

/* 1 when an If-None-Match value matches etag ("*" matches any). */
int an_reply_etag_matches(const char *if_none_match, const char *etag);

/* The response of a handler's reply. Takes rp->body (rp->len becomes the
 * length sent); etag gets the ETag, "" when the reply is not cacheable. cors
 * is the Access-Control-Allow-Origin value ("" for none). NULL when out of
 * memory (the body is freed). */
struct MHD_Response *an_reply_response(an_api_reply *rp, int gz, const char *cors,
                                       char etag[AN_REPLY_ETAG_MAX]);

/* The CORS headers (Access-Control-Allow-Origin, -Expose-Headers) on r when
 * cors is not "" (a response not built here: the event stream's). */
void an_reply_add_cors(struct MHD_Response *r, const char *cors);

/* A 304's response for etag; NULL when out of memory. */
struct MHD_Response *an_reply_not_modified(const char *etag, an_api_cache cache, const char *cors);

/* The 204 answer to an OPTIONS request (CORS preflight) for a path whose
 * methods are allow; NULL when out of memory. */
struct MHD_Response *an_reply_options(const char *allow, const char *cors);

/* The server's last resort, built once at start: 503 with a JSON body and
 * Retry-After, for when no other response can be built. NULL when even that
 * fails (the server does not start). */
struct MHD_Response *an_reply_unavailable_new(void);

#endif
