/*
 * binance.c - the Binance spot REST client (see binance.h).
 *
 * Owns one CURL easy handle per client (keep-alive: the connection is reused
 * across requests) and a capped reply buffer. The limiter is shared by the
 * clients of one process and guarded by its own mutex.
 */
#include "source/binance.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define MAX_REPLY (16 << 20) /* a 1000-row klines page is ~180 KB */

static const char *COMPONENT = "binance";

/* ---- the limiter -------------------------------------------------------- */

struct an_binance_limiter {
    pthread_mutex_t lock;
    int budget;
    int64_t minute;        /* the minute (ms / 60000) `used` belongs to */
    int used;              /* weight used in that minute, ours or the server's count */
    int64_t blocked_until; /* ms: a 429/418 Retry-After holds everyone back */
};

an_binance_limiter *an_binance_limiter_new(int budget)
{
    an_binance_limiter *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    pthread_mutex_init(&l->lock, NULL);
    l->budget = budget > 0 ? budget : 6000;
    return l;
}

void an_binance_limiter_free(an_binance_limiter *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

/* Sleeps ms in small steps; returns early (and 1) when stop is set. */
static int nap(int64_t ms, const atomic_int *stop)
{
    while (ms > 0) {
        if (stop && atomic_load(stop))
            return 1;
        int64_t step = ms < 100 ? ms : 100;
        struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return stop && atomic_load(stop);
}

/* Waits until a request of `weight` fits the budget (with 10% headroom). */
static int limiter_acquire(an_binance_limiter *l, int weight, const atomic_int *stop)
{
    if (!l)
        return 0;
    for (;;) {
        int64_t now = an_now_ms(), wait = 0;
        pthread_mutex_lock(&l->lock);
        if (now / 60000 != l->minute) {
            l->minute = now / 60000;
            l->used = 0;
        }
        if (now < l->blocked_until)
            wait = l->blocked_until - now;
        else if (l->used + weight > l->budget * 9 / 10)
            wait = (l->minute + 1) * 60000 - now + 50;
        else
            l->used += weight;
        pthread_mutex_unlock(&l->lock);
        if (!wait)
            return 0;
        AN_DEBUG(COMPONENT, "msg=\"pacing\" wait_ms=%" PRId64, wait);
        if (nap(wait, stop))
            return -1;
    }
}

static void limiter_observe(an_binance_limiter *l, int server_used, int retry_after_s)
{
    if (!l)
        return;
    int64_t now = an_now_ms();
    pthread_mutex_lock(&l->lock);
    if (server_used > l->used && now / 60000 == l->minute)
        l->used = server_used;
    if (retry_after_s > 0 && now + retry_after_s * 1000LL > l->blocked_until)
        l->blocked_until = now + retry_after_s * 1000LL;
    pthread_mutex_unlock(&l->lock);
}

/* ---- the client --------------------------------------------------------- */

struct an_binance {
    CURL *curl;
    char base[512];
    an_binance_options opt;
    char *buf;
    size_t len;
    int overflow;
    int used_weight; /* X-MBX-USED-WEIGHT-1M of the last reply, -1 if none */
    int retry_after; /* Retry-After of the last reply, 0 if none */
    unsigned seed;
    an_binance_stats stats;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    an_binance *b = ctx;
    size_t bytes = size * n;
    if (b->len + bytes > MAX_REPLY) {
        b->overflow = 1;
        return 0; /* aborts the transfer */
    }
    char *p = realloc(b->buf, b->len + bytes + 1);
    if (!p)
        return 0;
    b->buf = p;
    memcpy(b->buf + b->len, data, bytes);
    b->len += bytes;
    b->buf[b->len] = '\0';
    return bytes;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    an_binance *b = ctx;
    size_t bytes = size * n;
    if (bytes > 23 && strncasecmp(data, "x-mbx-used-weight-1m:", 21) == 0)
        b->used_weight = atoi(data + 21);
    else if (bytes > 12 && strncasecmp(data, "retry-after:", 12) == 0)
        b->retry_after = atoi(data + 12);
    return bytes;
}

an_code an_binance_open(const an_binance_options *opt, an_binance **out, an_err *err)
{
    *out = NULL;
    if (!opt->base_url || strncmp(opt->base_url, "http", 4) != 0)
        return an_err_set(err, AN_ERR_INVALID, "BINANCE_BASE_URL '%.80s' is not an http(s) URL",
                          opt->base_url ? opt->base_url : "");
    pthread_once(&curl_once, curl_init_once);
    an_binance *b = calloc(1, sizeof *b);
    if (!b)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    b->opt = *opt;
    if (b->opt.timeout_ms <= 0)
        b->opt.timeout_ms = 10000;
    if (b->opt.max_tries <= 0)
        b->opt.max_tries = 10;
    if (b->opt.backoff_ms <= 0)
        b->opt.backoff_ms = 250;
    if (b->opt.backoff_max_ms <= 0)
        b->opt.backoff_max_ms = 10000;
    snprintf(b->base, sizeof b->base, "%s", opt->base_url);
    size_t bl = strlen(b->base);
    while (bl && b->base[bl - 1] == '/')
        b->base[--bl] = '\0';
    b->seed = (unsigned)an_now_ms() ^ (unsigned)(uintptr_t)b;
    b->curl = curl_easy_init();
    if (!b->curl) {
        free(b);
        return an_err_set(err, AN_ERR_NOMEM, "cannot create a curl handle");
    }
    curl_easy_setopt(b->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(b->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(b->curl, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(b->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(b->curl, CURLOPT_HEADERDATA, b);
    curl_easy_setopt(b->curl, CURLOPT_TIMEOUT_MS, (long)b->opt.timeout_ms);
    curl_easy_setopt(b->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)b->opt.timeout_ms);
    curl_easy_setopt(b->curl, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(b->curl, CURLOPT_USERAGENT, "autonama/0.1");
    curl_easy_setopt(b->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    *out = b;
    return AN_OK;
}

void an_binance_close(an_binance *b)
{
    if (!b)
        return;
    curl_easy_cleanup(b->curl);
    free(b->buf);
    free(b);
}

void an_binance_symbol(const char *symbol, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = symbol; *p && o + 1 < len; p++)
        if (*p != '/')
            out[o++] = *p;
    out[o] = '\0';
}

void an_binance_get_stats(const an_binance *b, an_binance_stats *out)
{
    *out = b->stats;
}

/* What one attempt came to. */
typedef enum { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FATAL } attempt;

/* Validates a 200 reply; fills err on failure. */
typedef an_code (*reply_check)(an_binance *b, void *ctx, an_err *err);

/* One GET with retries. `check` parses the body of a 200 reply; when it
 * fails, the reply is refused and the request retried. */
static an_code get(an_binance *b, const char *path_query, int weight, const char *what,
                   reply_check check, void *ctx, an_err *err)
{
    char url[1024];
    snprintf(url, sizeof url, "%s%s", b->base, path_query);
    an_err last = {0};
    for (int attempt = 1; attempt <= b->opt.max_tries; attempt++) {
        if (attempt > 1) {
            b->stats.retries++;
            double d = b->opt.backoff_ms * pow(2.0, attempt - 2);
            if (d > b->opt.backoff_max_ms)
                d = b->opt.backoff_max_ms;
            d *= 0.5 + 0.5 * ((double)rand_r(&b->seed) / RAND_MAX); /* jitter */
            if (nap((int64_t)d, b->opt.stop_flag))
                return an_err_set(err, AN_ERR_TIMEOUT, "%s: stopped", what);
        }
        if (limiter_acquire(b->opt.limiter, weight, b->opt.stop_flag) < 0)
            return an_err_set(err, AN_ERR_TIMEOUT, "%s: stopped", what);
        b->len = 0;
        b->overflow = 0;
        b->used_weight = -1;
        b->retry_after = 0;
        if (b->buf)
            b->buf[0] = '\0';
        curl_easy_setopt(b->curl, CURLOPT_URL, url);
        b->stats.requests++;
        b->stats.weight_used += weight;
        CURLcode cc = curl_easy_perform(b->curl);
        long status = 0;
        curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
        limiter_observe(b->opt.limiter, b->used_weight,
                        status == 429 || status == 418 ? (b->retry_after > 0 ? b->retry_after : 60)
                                                       : 0);
        if (b->overflow) {
            an_err_set(&last, AN_ERR_PARSE, "%s: reply larger than %d bytes", what, MAX_REPLY);
        } else if (cc != CURLE_OK) {
            an_err_set(&last, cc == CURLE_OPERATION_TIMEDOUT ? AN_ERR_TIMEOUT : AN_ERR_CONNECT,
                       "%s: %s", what, curl_easy_strerror(cc));
        } else if (status == 429 || status == 418) {
            b->stats.rate_limited++;
            an_err_set(&last, AN_ERR_CONNECT, "%s: HTTP %ld (%s), Retry-After %d s", what, status,
                       status == 418 ? "IP banned" : "rate limited", b->retry_after);
            AN_WARN(COMPONENT, "msg=\"rate limited\" status=%ld retry_after_s=%d", status,
                    b->retry_after);
        } else if (status >= 500) {
            an_err_set(&last, AN_ERR_CONNECT, "%s: HTTP %ld", what, status);
        } else if (status != 200) {
            /* a 4xx other than rate limits is an answer, not a glitch */
            json_t *j = json_loadb(b->buf ? b->buf : "", b->len, 0, NULL);
            const char *msg = json_string_value(json_object_get(j, "msg"));
            int code = (int)json_integer_value(json_object_get(j, "code"));
            an_code rc =
                an_err_set(err, code == -1121 ? AN_ERR_NOT_FOUND : AN_ERR_INVALID,
                           "%s: HTTP %ld: %s (code %d)", what, status, msg ? msg : "refused", code);
            json_decref(j);
            return rc;
        } else if (check(b, ctx, &last) == AN_OK) {
            return AN_OK;
        } else {
            b->stats.refused_replies++;
            AN_WARN(COMPONENT, "msg=\"reply refused\" error=\"%.300s\"", last.msg);
        }
        AN_DEBUG(COMPONENT, "msg=\"retrying\" attempt=%d error=\"%.200s\"", attempt, last.msg);
    }
    *err = last;
    return an_err_prefix(err, "gave up after %d tries", b->opt.max_tries);
}

/* ---- /api/v3/time and exchangeInfo -------------------------------------- */

an_code an_binance_parse_server_time(const char *body, size_t len, int64_t *ms, an_err *err)
{
    json_t *j = json_loadb(body ? body : "", len, 0, NULL);
    json_t *t = json_object_get(j, "serverTime");
    an_code rc = AN_OK;
    if (!json_is_integer(t))
        rc = an_err_set(err, AN_ERR_PARSE, "/api/v3/time: no integer serverTime");
    else
        *ms = json_integer_value(t);
    json_decref(j);
    return rc;
}

static an_code check_time(an_binance *b, void *ctx, an_err *err)
{
    return an_binance_parse_server_time(b->buf, b->len, ctx, err);
}

an_code an_binance_server_time(an_binance *b, int64_t *ms, an_err *err)
{
    return get(b, "/api/v3/time", 1, "GET /api/v3/time", check_time, ms, err);
}

typedef struct info_ctx {
    const char *exchange_symbol;
    int found;
} info_ctx;

an_code an_binance_parse_exchange_info(const char *body, size_t len, const char *exchange_symbol,
                                       int *found, an_err *err)
{
    json_t *j = json_loadb(body ? body : "", len, 0, NULL);
    json_t *syms = json_object_get(j, "symbols");
    an_code rc = AN_OK;
    *found = 0;
    if (!json_is_array(syms)) {
        rc = an_err_set(err, AN_ERR_PARSE, "exchangeInfo: no symbols array");
    } else {
        for (size_t i = 0; i < json_array_size(syms); i++) {
            const char *s = json_string_value(json_object_get(json_array_get(syms, i), "symbol"));
            if (s && strcmp(s, exchange_symbol) == 0)
                *found = 1;
        }
    }
    json_decref(j);
    return rc;
}

static an_code check_info(an_binance *b, void *vctx, an_err *err)
{
    info_ctx *c = vctx;
    return an_binance_parse_exchange_info(b->buf, b->len, c->exchange_symbol, &c->found, err);
}

an_code an_binance_symbol_info(an_binance *b, const char *symbol, int *exists, an_err *err)
{
    char ex[AN_SYMBOL_MAX], path[128];
    an_binance_symbol(symbol, ex, sizeof ex);
    snprintf(path, sizeof path, "/api/v3/exchangeInfo?symbol=%s", ex);
    info_ctx c = {ex, 0};
    *exists = 0;
    an_code rc = get(b, path, 20, "GET /api/v3/exchangeInfo", check_info, &c, err);
    if (rc == AN_ERR_NOT_FOUND) {
        an_err_clear(err);
        return AN_OK;
    }
    *exists = c.found;
    return rc;
}

/* ---- klines ------------------------------------------------------------- */

/*
 * The klines reply is parsed by a small scanner made for its one shape (an
 * array of 12-value arrays) instead of a general JSON tree: it allocates
 * nothing per value and reads each decimal string once. It still checks the
 * whole reply is well-formed JSON. Decimal strings of up to 15 significant
 * digits and 22 decimals (every price and volume Binance sends) are converted
 * exactly (an integer mantissa divided by a power of ten, both exact in a
 * double: the quotient is correctly rounded, as strtod's is); longer ones go
 * through strtod.
 */
typedef struct scan {
    const char *p, *end;
} scan;

typedef enum tok { TOK_BAD = 0, TOK_STRING, TOK_NUMBER, TOK_OTHER } tok;

static void skip_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static int take(scan *s, char c)
{
    skip_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return 1;
    }
    return 0;
}

/* A JSON string at s->p (after the opening quote is checked): *b, *n get its
 * raw bytes; *plain is 0 when it has escapes. */
static int scan_string(scan *s, const char **b, size_t *n, int *plain)
{
    const char *p = s->p + 1;
    *plain = 1;
    *b = p;
    while (p < s->end && *p != '"') {
        if ((unsigned char)*p < 0x20)
            return -1;
        if (*p == '\\') {
            *plain = 0;
            if (++p >= s->end)
                return -1;
        }
        p++;
    }
    if (p >= s->end)
        return -1;
    *n = (size_t)(p - *b);
    s->p = p + 1;
    return 0;
}

/* A JSON number: *b, *n get its text. */
static int scan_number(scan *s, const char **b, size_t *n)
{
    const char *p = s->p;
    *b = p;
    if (p < s->end && *p == '-')
        p++;
    if (p >= s->end || *p < '0' || *p > '9')
        return -1;
    if (*p == '0')
        p++;
    else
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    if (p < s->end && *p == '.') {
        p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return -1;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < s->end && (*p == '+' || *p == '-'))
            p++;
        if (p >= s->end || *p < '0' || *p > '9')
            return -1;
        while (p < s->end && *p >= '0' && *p <= '9')
            p++;
    }
    *n = (size_t)(p - *b);
    s->p = p;
    return 0;
}

/* Any JSON value (for the ignored field, and to tell a wrong type from
 * broken JSON). depth bounds nesting. */
static int skip_value(scan *s, int depth)
{
    skip_ws(s);
    if (s->p >= s->end || depth > 64)
        return -1;
    const char *b;
    size_t n;
    int plain;
    switch (*s->p) {
    case '"': return scan_string(s, &b, &n, &plain);
    case '[':
    case '{': {
        char close = *s->p == '[' ? ']' : '}';
        int obj = close == '}';
        s->p++;
        if (take(s, close))
            return 0;
        do {
            if (obj) {
                skip_ws(s);
                if (s->p >= s->end || *s->p != '"' || scan_string(s, &b, &n, &plain) < 0 ||
                    !take(s, ':'))
                    return -1;
            }
            if (skip_value(s, depth + 1) < 0)
                return -1;
        } while (take(s, ','));
        return take(s, close) ? 0 : -1;
    }
    case 't':
        if (s->end - s->p >= 4 && !memcmp(s->p, "true", 4))
            return s->p += 4, 0;
        return -1;
    case 'f':
        if (s->end - s->p >= 5 && !memcmp(s->p, "false", 5))
            return s->p += 5, 0;
        return -1;
    case 'n':
        if (s->end - s->p >= 4 && !memcmp(s->p, "null", 4))
            return s->p += 4, 0;
        return -1;
    default: return scan_number(s, &b, &n);
    }
}

/* Reads the next value: a string or number is returned as text; anything
 * else is skipped and reported as TOK_OTHER. TOK_BAD: not JSON. */
static tok next_value(scan *s, const char **b, size_t *n, int *plain)
{
    skip_ws(s);
    if (s->p >= s->end)
        return TOK_BAD;
    if (*s->p == '"')
        return scan_string(s, b, n, plain) < 0 ? TOK_BAD : TOK_STRING;
    if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9'))
        return scan_number(s, b, n) < 0 ? TOK_BAD : TOK_NUMBER;
    return skip_value(s, 1) < 0 ? TOK_BAD : TOK_OTHER;
}

/* A non-negative JSON integer (no fraction, no exponent). */
static int parse_uint(const char *b, size_t n, int64_t *out)
{
    if (n == 0 || n > 18)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i] < '0' || b[i] > '9')
            return -1;
        v = v * 10 + (b[i] - '0');
    }
    *out = v;
    return 0;
}

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int an_binance_decimal(const char *b, size_t n, double *out)
{
    uint64_t m = 0;
    int sig = 0, frac = 0, dot = 0, digits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        if (c == '.') {
            if (dot++)
                return -1;
            continue;
        }
        if (c < '0' || c > '9')
            return -1;
        digits++;
        if (m == 0 && c == '0') {
            frac += dot;
            continue;
        }
        if (sig < 19)
            m = m * 10 + (uint64_t)(c - '0');
        sig++;
        frac += dot;
    }
    if (!digits)
        return -1;
    if (sig <= 15 && frac <= 22) {
        *out = (double)m / POW10[frac];
        return 0;
    }
    char tmp[128];
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, b, n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    double d = strtod(tmp, &end);
    if (errno || *end || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

static const char *const KLINE_FIELDS[12] = {
    "open time",  "open",         "high",   "low",        "close",       "volume",
    "close time", "quote volume", "trades", "taker base", "taker quote", "ignore"};

/* What one reply's rows are checked against, and where they go. */
typedef struct kline_ctx {
    const char *ex, *interval;
    int64_t iv; /* the interval in ms (monthly: a month's minimum) */
    int monthly;
    size_t n0; /* out->n before the reply */
    an_candles *out;
    an_err *err;
} kline_ctx;

/* Scans one row's fields after its '[' up to its ']': decimals into f,
 * integers (open time, close time, trades) into ints. -1 on malformed JSON;
 * a field of the wrong type sets *rc and the scan goes on to the row's end
 * (a broken row beats a wrong type). */
static int scan_row(scan *s, const kline_ctx *kc, size_t i, double f[12], int64_t ints[3],
                    an_code *rc)
{
    int k = 0;
    if (!take(s, ']')) {
        do {
            const char *b = NULL;
            size_t n = 0;
            int plain = 1;
            tok t = next_value(s, &b, &n, &plain);
            if (t == TOK_BAD)
                return -1;
            if (*rc != AN_OK || k >= 12) {
                k++;
                continue;
            }
            if (k == 0 || k == 6 || k == 8) {
                if (t != TOK_NUMBER || parse_uint(b, n, &ints[k == 0 ? 0 : k == 6 ? 1 : 2]) < 0)
                    *rc = an_err_set(kc->err, AN_ERR_PARSE, "%s %s row %zu: %s is not an integer",
                                     kc->ex, kc->interval, i, KLINE_FIELDS[k]);
            } else if (k != 11 &&
                       (t != TOK_STRING || !plain || an_binance_decimal(b, n, &f[k]) < 0)) {
                *rc = an_err_set(kc->err, AN_ERR_PARSE,
                                 "%s %s row %zu: %s is not a non-negative decimal string", kc->ex,
                                 kc->interval, i, KLINE_FIELDS[k]);
            }
            k++;
        } while (take(s, ','));
        if (!take(s, ']'))
            return -1;
    }
    if (k != 12 && *rc == AN_OK)
        *rc = an_err_set(kc->err, AN_ERR_PARSE, "%s %s row %zu: not a 12-field kline", kc->ex,
                         kc->interval, i);
    return 0;
}

/* Checks one scanned row (prices, alignment, close time, order) and appends
 * it to kc->out. */
static an_code push_row(const kline_ctx *kc, size_t i, const double f[12], const int64_t ints[3])
{
    int64_t open_ms = ints[0], close_ms = ints[1];
    an_candle c = {open_ms, f[1], f[2], f[3], f[4], f[5], 0};
    an_candles *out = kc->out;
    an_err e;
    if (an_candle_validate(&c, -1, &e) != AN_OK)
        return an_err_set(kc->err, AN_ERR_INVALID, "%s %s row %zu: %s", kc->ex, kc->interval, i,
                          e.msg);
    if (!an_timeframe_aligned(kc->interval, open_ms))
        return an_err_set(kc->err, AN_ERR_INVALID,
                          "%s %s row %zu: open time %" PRId64 " is not aligned to %s", kc->ex,
                          kc->interval, i, open_ms, kc->interval);
    if (!kc->monthly && close_ms != open_ms + kc->iv - 1)
        return an_err_set(kc->err, AN_ERR_INVALID,
                          "%s %s row %zu: close time %" PRId64 " is not open time + %s - 1 ms",
                          kc->ex, kc->interval, i, close_ms, kc->interval);
    if (out->n > kc->n0 && open_ms <= out->v[out->n - 1].ts)
        return an_err_set(kc->err, AN_ERR_INVALID, "%s %s row %zu: open time %" PRId64 " is %s",
                          kc->ex, kc->interval, i, open_ms,
                          open_ms == out->v[out->n - 1].ts ? "duplicated" : "out of order");
    return an_candles_push(out, &c, kc->err);
}

an_code an_binance_parse_klines(const char *body, size_t len, const char *symbol,
                                const char *interval, an_candles *out, an_err *err)
{
    char ex[AN_SYMBOL_MAX];
    an_binance_symbol(symbol, ex, sizeof ex);
    kline_ctx kc = {.ex = ex, .interval = interval, .n0 = out->n, .out = out, .err = err};
    kc.iv = an_timeframe_ms(interval, &kc.monthly);
    if (kc.iv < 0)
        return an_err_set(err, AN_ERR_INVALID, "%s: unknown interval '%.8s'", ex, interval);
    scan s = {body ? body : "", (body ? body : "") + len};
    an_code rc = AN_OK;
    skip_ws(&s);
    if (s.p < s.end && *s.p != '[') {
        rc =
            skip_value(&s, 0) == 0
                ? an_err_set(err, AN_ERR_PARSE, "%s %s: klines reply is not an array", ex, interval)
                : an_err_set(err, AN_ERR_PARSE, "%s %s: malformed JSON at byte %zu", ex, interval,
                             (size_t)(s.p - body));
        goto out;
    }
    if (!take(&s, '['))
        goto malformed;
    for (size_t i = 0; !take(&s, ']'); i++) {
        if (i > 0 && !take(&s, ','))
            goto malformed;
        skip_ws(&s);
        if (s.p >= s.end)
            goto malformed;
        if (*s.p != '[') {
            if (skip_value(&s, 1) < 0)
                goto malformed;
            rc = an_err_set(err, AN_ERR_PARSE, "%s %s row %zu: not a 12-field kline", ex, interval,
                            i);
            goto out;
        }
        s.p++;
        double f[12] = {0};
        int64_t ints[3] = {0}; /* open time, close time, trades */
        if (scan_row(&s, &kc, i, f, ints, &rc) < 0)
            goto malformed;
        if (rc != AN_OK || (rc = push_row(&kc, i, f, ints)) != AN_OK)
            goto out;
    }
    skip_ws(&s);
    if (s.p != s.end)
        goto malformed;
    goto out;
malformed:
    rc = an_err_set(err, AN_ERR_PARSE, "%s %s: malformed JSON at byte %zu of %zu", ex, interval,
                    (size_t)(s.p - (body ? body : "")), len);
out:
    if (rc != AN_OK)
        out->n = kc.n0; /* nothing of a refused reply is kept */
    return rc;
}

typedef struct klines_ctx {
    const char *symbol, *interval;
    int64_t start, end;
    an_candles *out;
    size_t rows;
} klines_ctx;

static an_code check_klines(an_binance *b, void *vctx, an_err *err)
{
    klines_ctx *c = vctx;
    size_t n0 = c->out->n;
    an_code rc = an_binance_parse_klines(b->buf, b->len, c->symbol, c->interval, c->out, err);
    if (rc != AN_OK)
        return rc;
    /* rows outside what was asked for are a broken reply too */
    for (size_t i = n0; i < c->out->n; i++) {
        int64_t t = c->out->v[i].ts;
        if (t < c->start || (c->end >= 0 && t > c->end)) {
            c->out->n = n0;
            return an_err_set(err, AN_ERR_INVALID,
                              "%s %s: row open time %" PRId64 " outside the range asked for",
                              c->symbol, c->interval, t);
        }
    }
    c->rows = c->out->n - n0;
    return AN_OK;
}

an_code an_binance_klines(an_binance *b, const char *symbol, const char *interval, int64_t start_ms,
                          int64_t end_ms, int limit, an_candles *out, size_t *page_rows,
                          an_err *err)
{
    if (limit < 1 || limit > 1000)
        return an_err_set(err, AN_ERR_INVALID, "klines limit %d outside 1..1000", limit);
    char ex[AN_SYMBOL_MAX], path[256];
    an_binance_symbol(symbol, ex, sizeof ex);
    int n = snprintf(path, sizeof path,
                     "/api/v3/klines?symbol=%s&interval=%s&startTime=%" PRId64 "&limit=%d", ex,
                     interval, start_ms, limit);
    if (end_ms >= 0)
        snprintf(path + n, sizeof path - (size_t)n, "&endTime=%" PRId64, end_ms);
    klines_ctx c = {symbol, interval, start_ms, end_ms, out, 0};
    char what[96];
    snprintf(what, sizeof what, "GET /api/v3/klines %s %s", ex, interval);
    an_code rc = get(b, path, 2, what, check_klines, &c, err);
    if (page_rows)
        *page_rows = c.rows;
    return rc;
}
