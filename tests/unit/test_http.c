/*
 * test_http.c - the server's own machinery over a real loopback socket, on
 * an empty embedded store: the metrics hook the task system will use (set
 * through an_http_start_with's options), the Bearer check, per-route counts.
 * (The routes and every bad input are tested end to end by
 * tests/cli/test_api.sh against the real binary.) Also: every reply path
 * when libmicrohttpd cannot build a response (memory pressure), through the
 * linker's --wrap of MHD_create_response_from_buffer (tests/CMakeLists.txt).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http.h"
#include "api/reply.h"
#include "core/config.h"
#include "core/log.h"
#include "test.h"

#include <microhttpd.h>

static atomic_int hook_calls;

/* --wrap: while fail_responses is set, no response can be built. */
static atomic_int fail_responses;
struct MHD_Response *__real_MHD_create_response_from_buffer(size_t size, void *buffer,
                                                            enum MHD_ResponseMemoryMode mode);
struct MHD_Response *__wrap_MHD_create_response_from_buffer(size_t size, void *buffer,
                                                            enum MHD_ResponseMemoryMode mode);
struct MHD_Response *__wrap_MHD_create_response_from_buffer(size_t size, void *buffer,
                                                            enum MHD_ResponseMemoryMode mode)
{
    if (atomic_load(&fail_responses))
        return NULL;
    return __real_MHD_create_response_from_buffer(size, buffer, mode);
}

static char *hook(void *ctx)
{
    atomic_fetch_add(&hook_calls, 1);
    const char *tag = ctx;
    char *s = malloc(128);
    if (s)
        snprintf(s, 128, "# TYPE autonama_test_hook gauge\nautonama_test_hook{tag=\"%s\"} 7\n",
                 tag);
    return s;
}

/* One request on a fresh connection; returns the whole reply (malloc'd). */
static char *http(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    size_t len = strlen(request);
    if (write(fd, request, len) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    ssize_t k;
    while (buf && (k = read(fd, buf + n, cap - n - 1)) > 0) {
        n += (size_t)k;
        if (n + 1 == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b)
                break;
            buf = b;
            cap *= 2;
        }
    }
    close(fd);
    if (buf)
        buf[n] = '\0';
    return buf;
}

/* A server on a free port over an empty DuckDB store in a temp dir (dir,
 * "/tmp/autonama-http.XXXXXX", is filled in), the API key s3cret-key. */
typedef struct fixture {
    char dir[32];
    an_config cfg;
    an_service svc;
    an_http_server *h;
    int port;
} fixture;

static void fixture_start(fixture *f, const an_http_options *opt)
{
    char path[256];
    snprintf(f->dir, sizeof f->dir, "/tmp/autonama-http.XXXXXX");
    AN_CHECK(mkdtemp(f->dir) != NULL);
    snprintf(path, sizeof path, "%s/store.duckdb", f->dir);
    setenv("DUCKDB_PATH", path, 1);
    setenv("AUTONAMA_HTTP_ADDR", "127.0.0.1:0", 1);
    setenv("AUTONAMA_API_KEY", "s3cret-key", 1);
    unsetenv("POSTGRES_SERVER");
    an_log_set_level(AN_LOG_ERROR);
    an_err err = {0};
    AN_CHECK_OK(an_config_load(&f->cfg, 0, NULL, &err), err);
    an_service_init(&f->svc, &f->cfg);
    f->h = NULL;
    AN_CHECK_OK(an_http_start_with(&f->cfg, &f->svc, opt, &f->h, &err), err);
    f->port = f->h ? an_http_port(f->h) : 0;
    AN_CHECK(f->port > 0);
}

static void fixture_stop(fixture *f)
{
    an_http_stop(f->h);
    an_service_destroy(&f->svc);
    an_config_free(&f->cfg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    AN_CHECK(system(cmd) == 0);
}

static void test_hook_and_auth(void)
{
    an_http_options opt = {.metrics_hook = hook, .metrics_ctx = (void *)"x1"};
    fixture f;
    fixture_start(&f, &opt);
    int port = f.port;

    char *r = http(port, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    AN_CHECK(r && strncmp(r, "HTTP/1.1 200", 12) == 0);
    AN_CHECK_MSG(r && strstr(r, "\nautonama_test_hook{tag=\"x1\"} 7\n"), "hook lines: %s",
                 r ? r : "(null)");
    AN_CHECK(r && strstr(r, "autonama_http_requests_total{route=\"/metrics\",code=\"2xx\"}"));
    AN_CHECK(r && strstr(r, "\nautonama_store_up 1\n"));
    AN_CHECK(atomic_load(&hook_calls) == 1);
    free(r);

    r = http(port, "GET /api/v1/auth HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    AN_CHECK(r && strncmp(r, "HTTP/1.1 401", 12) == 0);
    AN_CHECK(r && strstr(r, "WWW-Authenticate: Bearer"));
    AN_CHECK(r && strstr(r, "\"error\":"));
    free(r);
    r = http(port, "GET /api/v1/auth HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret-kex\r\n"
                   "Connection: close\r\n\r\n");
    AN_CHECK(r && strncmp(r, "HTTP/1.1 401", 12) == 0);
    AN_CHECK(r && !strstr(r, "s3cret")); /* the key is never echoed */
    free(r);
    r = http(port, "GET /api/v1/auth HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cret-key\r\n"
                   "Connection: close\r\n\r\n");
    AN_CHECK(r && strncmp(r, "HTTP/1.1 200", 12) == 0 && strstr(r, "{\"authenticated\":true}"));
    free(r);

    /* the 401s and the 200 are counted under their route */
    r = http(port, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    AN_CHECK(r &&
             strstr(r, "autonama_http_requests_total{route=\"/api/v1/auth\",code=\"4xx\"} 2\n"));
    AN_CHECK(r &&
             strstr(r, "autonama_http_requests_total{route=\"/api/v1/auth\",code=\"2xx\"} 1\n"));
    free(r);

    fixture_stop(&f);
}

/* Issue 10, fault 5: MHD_create_response_from_buffer returning NULL was not
 * checked (NULL passed on to MHD_add_response_header / MHD_queue_response,
 * or the connection dropped without a status). Every path now answers with
 * the server's preallocated 503. */
static void test_no_memory_for_responses(void)
{
    setenv("AUTONAMA_HTTP_CORS_ORIGIN", "*", 1);
    fixture f;
    fixture_start(&f, NULL);
    int port = f.port;
    /* a cached reply first, for the 304 and cache-hit paths */
    char *r = http(port, "GET /openapi.json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    AN_CHECK(r && strncmp(r, "HTTP/1.1 200", 12) == 0);
    const char *et = r ? strstr(r, "ETag: ") : NULL;
    char etag[64] = "";
    if (et)
        sscanf(et + 6, "%63[^\r]", etag);
    free(r);
    AN_CHECK(etag[0] != '\0');

    atomic_store(&fail_responses, 1);
    char inm[256];
    snprintf(inm, sizeof inm,
             "GET /openapi.json HTTP/1.1\r\nHost: t\r\nIf-None-Match: %s\r\n"
             "Connection: close\r\n\r\n",
             etag);
    const char *requests[] = {
        "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",      /* handler */
        "DELETE /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",   /* 405 */
        "OPTIONS /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",  /* preflight */
        "GET /nowhere HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",     /* 404 */
        "GET /api/v1/auth HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", /* 401 */
        inm,                                                                 /* 304 */
    };
    for (size_t i = 0; i < sizeof requests / sizeof *requests; i++) {
        r = http(port, requests[i]);
        AN_CHECK_MSG(r && strncmp(r, "HTTP/1.1 503", 12) == 0 && strstr(r, "short of memory") &&
                         strstr(r, "Retry-After: 1"),
                     "request %zu: %.80s", i, r ? r : "(no reply)");
        free(r);
    }
    atomic_store(&fail_responses, 0);
    r = http(port, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    AN_CHECK_MSG(r && strncmp(r, "HTTP/1.1 200", 12) == 0, "after: %.80s", r ? r : "(null)");
    /* answered and counted: DELETE, OPTIONS and /nowhere match no route */
    AN_CHECK(r && strstr(r, "autonama_http_requests_total{route=\"other\",code=\"5xx\"} 3\n"));
    free(r);

    fixture_stop(&f);
    unsetenv("AUTONAMA_HTTP_CORS_ORIGIN");
}

/* The reply cache's slot is an_reply_hash(url) % 128: URLs that differ in
 * any one byte spread over the slots (before: only the first byte of each
 * 8-byte word reached the low bits, so 64 URLs differing at byte 29 all
 * shared one slot). */
static void test_reply_hash_spreads_slots(void)
{
    for (size_t at = 25; at < 33; at++) {
        char url[] = "/api/v1/data/ohlc?symbol=INST/AA&timeframe=1m&limit=500";
        int used[128] = {0}, slots = 0;
        for (int i = 0; i < 64; i++) {
            url[at] = (char)('0' + i);
            size_t s = an_reply_hash(url, strlen(url)) % 128;
            slots += !used[s]++;
        }
        AN_CHECK_MSG(slots >= 32, "64 URLs differing at byte %zu use %d of 128 slots", at, slots);
    }
}

int main(void)
{
    AN_RUN(test_reply_hash_spreads_slots);
    AN_RUN(test_no_memory_for_responses);
    AN_RUN(test_hook_and_auth);
    return AN_TEST_DONE();
}
