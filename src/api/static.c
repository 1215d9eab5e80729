/*
 * static.c - serves the embedded dashboard (see static.h): index.html at `/`
 * (revalidated through its ETag, so a new build is seen at once) and the
 * content-hashed assets under /assets/ (cached for a year, immutable). Every
 * reply carries the Content-Security-Policy and X-Content-Type-Options; the
 * server adds ETag, 304 and gzip as for any reply. Called on the HTTP
 * server's worker threads; holds no state.
 */
#include "api/static.h"

#include <string.h>

#include "api/api.h"

const char an_static_csp[] = "default-src 'self'; script-src 'self'; style-src 'self'; "
                             "img-src 'self'; connect-src 'self'; font-src 'self'; "
                             "object-src 'none'; base-uri 'none'; form-action 'self'; "
                             "frame-ancestors 'none'";

static const char *const headers[] = {"Content-Security-Policy",
                                      an_static_csp,
                                      "X-Content-Type-Options",
                                      "nosniff",
                                      "Referrer-Policy",
                                      "no-referrer",
                                      NULL};

const an_static_file *an_static_find(const char *path)
{
    for (size_t i = 0; i < an_static_nfiles; i++)
        if (strcmp(an_static_files[i].path, path) == 0)
            return &an_static_files[i];
    return NULL;
}

static void serve(const an_static_file *f, an_api_reply *rp)
{
    an_api_put(rp, (const char *)f->data, f->len);
    rp->content_type = f->type;
    rp->cache = f->hashed ? AN_API_HASHED : AN_API_REVALIDATE;
    rp->headers = headers;
}

void an_static_index(const an_api_request *rq, an_api_reply *rp)
{
    (void)rq;
    serve(&an_static_files[0], rp);
}

void an_static_asset(const an_api_request *rq, an_api_reply *rp)
{
    const an_static_file *f = an_static_find(rq->path);
    if (!f || !f->hashed) {
        an_api_error(rp, 404, NULL, "no asset '%.80s' (asset names change with every build)",
                     rq->path);
        return;
    }
    serve(f, rp);
}
