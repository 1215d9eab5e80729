/*
 * static.h - the dashboard's files, compiled into the binary
 * (cmake/embed_web.cmake generates the table from web/ and lightweight-charts)
 * and served by the routes `/` and `/assets/{name}` (static.c). Handlers run
 * on the HTTP server's worker threads; the table is read-only.
 */
#ifndef AN_API_STATIC_H
#define AN_API_STATIC_H

#include <stddef.h>

typedef struct an_static_file {
    const char *path; /* "/" or "/assets/NAME.HASH.EXT" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    int hashed; /* 1: the name carries the content's hash (cacheable for a year) */
} an_static_file;

extern const an_static_file an_static_files[];
extern const size_t an_static_nfiles;

/* The file served at path, or NULL. */
const an_static_file *an_static_find(const char *path);

/* The Content-Security-Policy of the dashboard: our own origin only. */
extern const char an_static_csp[];

struct an_api_request;
struct an_api_reply;
/* GET / (index.html) and GET /assets/{name} (a hashed asset; 404 otherwise). */
void an_static_index(const struct an_api_request *rq, struct an_api_reply *rp);
void an_static_asset(const struct an_api_request *rq, struct an_api_reply *rp);

#endif
