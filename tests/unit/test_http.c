/*
 * test_http.c - the server's own machinery over a real loopback socket, on
 * an empty embedded store: the metrics hook the task system will use (set
 * through an_http_start_with's options), the Bearer check, per-route counts.
 * (The routes and every bad input are tested end to end by
 * tests/cli/test_api.sh against the real binary.)
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
#include "core/config.h"
#include "core/log.h"
#include "test.h"

static atomic_int hook_calls;

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

static void test_hook_and_auth(void)
{
    char dir[] = "/tmp/autonama-http.XXXXXX", path[256];
    AN_CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/store.duckdb", dir);
    setenv("DUCKDB_PATH", path, 1);
    setenv("AUTONAMA_HTTP_ADDR", "127.0.0.1:0", 1);
    setenv("AUTONAMA_API_KEY", "s3cret-key", 1);
    an_log_set_level(AN_LOG_ERROR);
    unsetenv("POSTGRES_SERVER");
    an_config cfg;
    an_err err = {0};
    AN_CHECK_OK(an_config_load(&cfg, 0, NULL, &err), err);
    an_service svc;
    an_service_init(&svc, &cfg);
    an_http_options opt = {hook, (void *)"x1", NULL, NULL, NULL, NULL};
    an_http_server *h = NULL;
    AN_CHECK_OK(an_http_start_with(&cfg, &svc, &opt, &h, &err), err);
    int port = an_http_port(h);
    AN_CHECK(port > 0);

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

    an_http_stop(h);
    an_service_destroy(&svc);
    an_config_free(&cfg);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    AN_CHECK(system(cmd) == 0);
}

int main(void)
{
    AN_RUN(test_hook_and_auth);
    return AN_TEST_DONE();
}
