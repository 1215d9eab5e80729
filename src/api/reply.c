/*
 * reply.c - the reply builder (see reply.h and api.h): body building into a
 * capped buffer, error bodies, the one an_code -> HTTP status mapping, and
 * the libmicrohttpd responses with their headers. Runs on the handler
 * workers (bodies) and the event threads (responses); no shared state.
 */
#include "api/reply.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "core/market.h"
#include "core/numfmt.h"
#include "core/utf8.h"

#define GZIP_MIN 1024 /* smaller replies go uncompressed */

/* ---- reply body --------------------------------------------------------- */

static int reserve(an_api_reply *rp, size_t more)
{
    if (rp->oom)
        return 0;
    if (rp->len + more + 1 <= rp->cap)
        return 1;
    size_t cap = rp->cap ? rp->cap : 4096;
    while (cap < rp->len + more + 1)
        cap *= 2;
    if (cap > AN_API_BODY_CAP) {
        rp->oom = 1;
        return 0;
    }
    char *b = realloc(rp->body, cap);
    if (!b) {
        rp->oom = 1;
        return 0;
    }
    rp->body = b;
    rp->cap = cap;
    return 1;
}

void an_api_put(an_api_reply *rp, const char *s, size_t n)
{
    if (!reserve(rp, n))
        return;
    memcpy(rp->body + rp->len, s, n);
    rp->len += n;
    rp->body[rp->len] = '\0';
}

void an_api_puts(an_api_reply *rp, const char *s)
{
    an_api_put(rp, s, strlen(s));
}

int an_api_put_json(an_api_reply *rp, const json_t *v, size_t flags)
{
    char *text = v ? json_dumps(v, flags) : NULL;
    if (!text) {
        an_api_error(rp, 500, NULL, "out of memory");
        return -1;
    }
    an_api_puts(rp, text);
    free(text);
    return 0;
}

void an_api_printf(an_api_reply *rp, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        an_api_put(rp, small, (size_t)n);
        return;
    }
    if (!reserve(rp, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(rp->body + rp->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rp->len += (size_t)n;
}

void an_api_put_jstr(an_api_reply *rp, const char *s)
{
    an_api_put(rp, "\"", 1);
    const unsigned char *c = (const unsigned char *)s;
    size_t left = strlen(s);
    while (left) {
        size_t n = *c < 0x80 ? 1 : an_utf8_seq_len(c, left);
        if (n == 0) { /* an invalid or cut sequence: one byte becomes U+FFFD */
            an_api_puts(rp, "\\ufffd");
            n = 1;
        } else if (*c == '"' || *c == '\\') {
            char e[2] = {'\\', (char)*c};
            an_api_put(rp, e, 2);
        } else if (*c < 0x20 || *c == 0x7f) {
            an_api_printf(rp, "\\u%04x", *c);
        } else {
            an_api_put(rp, (const char *)c, n);
        }
        c += n;
        left -= n;
    }
    an_api_put(rp, "\"", 1);
}

size_t an_api_json_number(double v, char *p)
{
    size_t n = an_num_format(v, p);
    if (n == 0) { /* JSON has no NaN or infinity */
        memcpy(p, "null", 4);
        n = 4;
    }
    return n;
}

void an_api_put_double(an_api_reply *rp, double v)
{
    if (reserve(rp, AN_NUM_MAX))
        rp->len += an_api_json_number(v, rp->body + rp->len);
}

/* Writes "key":v of a double (null for NaN and infinities) at p. */
static char *put_num(char *p, const char *key, size_t klen, double v)
{
    memcpy(p, key, klen);
    p += klen;
    return p + an_api_json_number(v, p);
}

#define KEY(s) s, sizeof s - 1

size_t an_api_candle_head(int64_t ts, char *p)
{
    char *p0 = p;
    memcpy(p, "\"timestamp\":\"", 13);
    p += 13;
    p += an_time_format_iso(ts, p);
    memcpy(p, "\",\"ts\":", 7);
    p += 7;
    p += an_int_format(ts, p); /* its NUL is within AN_API_CANDLE_HEAD_MAX */
    return (size_t)(p - p0);
}

size_t an_api_candle_tail(const an_candle *k, char *p)
{
    char *p0 = p;
    p = put_num(p, KEY(",\"open\":"), k->open);
    p = put_num(p, KEY(",\"high\":"), k->high);
    p = put_num(p, KEY(",\"low\":"), k->low);
    p = put_num(p, KEY(",\"close\":"), k->close);
    p = put_num(p, KEY(",\"volume\":"), k->volume);
    return (size_t)(p - p0);
}

void an_api_put_candle(an_api_reply *rp, const an_candle *k)
{
    /* one row of a reply of thousands: written into one buffer, no printf */
    char row[AN_API_CANDLE_MAX];
    size_t n = an_api_candle_head(k->ts, row);
    n += an_api_candle_tail(k, row + n);
    an_api_put(rp, row, n);
}

void an_api_error(an_api_reply *rp, unsigned status, const char *param, const char *fmt, ...)
{
    char msg[AN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    rp->len = 0;
    rp->oom = 0;
    rp->status = status;
    rp->cache = AN_API_NO_STORE;
    rp->content_type = "application/json";
    an_api_puts(rp, "{\"error\":");
    an_api_put_jstr(rp, msg);
    an_api_printf(rp, ",\"status\":%u", status);
    if (param) {
        an_api_puts(rp, ",\"parameter\":");
        an_api_put_jstr(rp, param);
    }
    an_api_puts(rp, "}");
}

unsigned an_api_status_for(an_code code)
{
    switch (code) {
    case AN_OK: return 200;
    case AN_ERR_INVALID:
    case AN_ERR_PARSE: return 400;
    case AN_ERR_NOT_FOUND: return 404;
    case AN_ERR_UNSUPPORTED: return 501;
    case AN_ERR_CONNECT:
    case AN_ERR_AUTH:
    case AN_ERR_SCHEMA:
    case AN_ERR_TIMEOUT:
    case AN_ERR_READONLY:
    case AN_ERR_CORRUPT:
    case AN_ERR_UNHEALTHY: return 503;
    case AN_ERR_NOMEM:
    case AN_ERR_IO:
    case AN_ERR_DB:
    case AN_ERR_INTERNAL: return 500;
    }
    return 500;
}

/* ---- responses ------------------------------------------------------------ */

uint64_t an_reply_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        h ^= w;
        h *= 1099511628211ULL;
    }
    for (; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    /* a multiply carries only upwards, so without this the low bits (the
     * cache slot, h % 128) depended on the first byte of each 8-byte word
     * only: URLs differing elsewhere (INST/A, INST/B) shared a slot. Fold
     * the high bits down (xor-shift-multiply, as in SplitMix64). */
    h ^= h >> 31;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
    return h;
}

int an_reply_accepts_gzip(const char *ae)
{
    if (!ae)
        return 0;
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ')
            p++;
        size_t tl = (size_t)(p - tok);
        double q = 1;
        while (*p == ' ')
            p++;
        if (*p == ';') {
            const char *qs = strstr(p, "q=");
            const char *comma = strchr(p, ',');
            if (qs && (!comma || qs < comma))
                q = strtod(qs + 2, NULL);
        }
        if (tl == 4 && strncasecmp(tok, "gzip", 4) == 0 && q > 0)
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

/* gzip of in[0..n) into a malloc'd buffer; NULL when it fails or does not shrink. */
static char *gzip_body(const char *in, size_t n, size_t *out_len)
{
    z_stream z = {0};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)n);
    char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || *out_len >= n) {
        free(out);
        return NULL;
    }
    return out;
}

int an_reply_etag_matches(const char *inm, const char *etag)
{
    if (!inm || !*etag)
        return 0;
    if (strcmp(inm, "*") == 0)
        return 1;
    return strstr(inm, etag) != NULL;
}

void an_reply_add_cors(struct MHD_Response *r, const char *cors)
{
    if (cors && cors[0]) {
        MHD_add_response_header(r, "Access-Control-Allow-Origin", cors);
        MHD_add_response_header(r, "Access-Control-Expose-Headers", "ETag");
    }
}

static const char *cache_control(an_api_cache c)
{
    switch (c) {
    case AN_API_REVALIDATE: return "no-cache";
    case AN_API_IMMUTABLE: return "public, max-age=86400";
    case AN_API_HASHED: return "public, max-age=31536000, immutable";
    case AN_API_NO_STORE: break;
    }
    return "no-store";
}

struct MHD_Response *an_reply_response(an_api_reply *rp, int gz, const char *cors,
                                       char etag[AN_REPLY_ETAG_MAX])
{
    etag[0] = '\0';
    if (rp->status == 200 && rp->cache != AN_API_NO_STORE)
        snprintf(etag, AN_REPLY_ETAG_MAX, "\"%016" PRIx64 "%s\"", an_reply_hash(rp->body, rp->len),
                 gz ? "-gz" : "");
    char *body = rp->body;
    size_t len = rp->len;
    int gzipped = 0;
    if (gz && len >= GZIP_MIN) {
        size_t zl = 0;
        char *z = gzip_body(body, len, &zl);
        if (z) {
            free(body);
            body = z;
            len = zl;
            gzipped = 1;
        }
    }
    rp->body = NULL;
    rp->len = len;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body ? body : (void *)"", MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return NULL;
    }
    MHD_add_response_header(r, "Content-Type",
                            rp->content_type ? rp->content_type : "application/json");
    MHD_add_response_header(r, "Cache-Control", cache_control(rp->cache));
    if (etag[0]) {
        MHD_add_response_header(r, "ETag", etag);
        MHD_add_response_header(r, "Vary", "Accept-Encoding");
    }
    if (gzipped)
        MHD_add_response_header(r, "Content-Encoding", "gzip");
    if (rp->auth_challenge)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"autonama\"");
    for (const char *const *p = rp->headers; p && p[0] && p[1]; p += 2)
        MHD_add_response_header(r, p[0], p[1]);
    an_reply_add_cors(r, cors);
    return r;
}

struct MHD_Response *an_reply_not_modified(const char *etag, an_api_cache cache, const char *cors)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return NULL;
    MHD_add_response_header(r, "ETag", etag);
    MHD_add_response_header(r, "Cache-Control", cache_control(cache));
    MHD_add_response_header(r, "Vary", "Accept-Encoding");
    an_reply_add_cors(r, cors);
    return r;
}

struct MHD_Response *an_reply_options(const char *allow, const char *cors)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return NULL;
    MHD_add_response_header(r, "Allow", allow);
    if (cors && cors[0]) {
        MHD_add_response_header(r, "Access-Control-Allow-Methods", allow);
        MHD_add_response_header(r, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, If-None-Match");
        MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    }
    an_reply_add_cors(r, cors);
    return r;
}

struct MHD_Response *an_reply_unavailable_new(void)
{
    static const char body[] = "{\"error\":\"the server is short of memory: try again\","
                               "\"status\":503}";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!r)
        return NULL;
    if (MHD_add_response_header(r, "Content-Type", "application/json") != MHD_YES ||
        MHD_add_response_header(r, "Cache-Control", "no-store") != MHD_YES ||
        MHD_add_response_header(r, "Retry-After", "1") != MHD_YES) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}
