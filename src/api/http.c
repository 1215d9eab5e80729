/*
 * http.c - the HTTP server (see http.h). libmicrohttpd runs the sockets on
 * its own epoll thread pool; handlers run on those threads.
 */
#include "api/http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/market.h"
#include "tasks/health.h"

struct an_http_server {
    struct MHD_Daemon *d;
    const an_config *cfg;
    an_service *svc;
    int port;
};

static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, text ? text : (void *)"", MHD_RESPMEM_MUST_FREE);
    if (!text)
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    json_t *o = json_pack("{s:s, s:i}", "error", msg, "status", (int)status);
    enum MHD_Result r = send_json(conn, status, o);
    json_decref(o);
    return r;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    (void)upload;
    an_http_server *h = cls;
    if (*con_cls == NULL) { /* first call: headers only */
        *con_cls = h;
        return MHD_YES;
    }
    if (*upload_size) { /* no route takes a body yet */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/health") == 0) {
        if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed: use GET");
        an_err err = {0};
        an_store *s = an_service_store(h->svc, &err);
        int healthy = 0;
        json_t *o = an_health_check(h->cfg, s, &err, an_now_ms(), &healthy);
        enum MHD_Result r =
            send_json(conn, healthy ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, o);
        json_decref(o);
        return r;
    }
    return send_error(conn, MHD_HTTP_NOT_FOUND, "no such route");
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512], q[600];
    vsnprintf(buf, sizeof buf, fmt, ap);
    AN_WARN("http", "msg=\"%s\"", an_log_quote(buf, q, sizeof q));
}

an_code an_http_start(const an_config *cfg, an_service *svc, an_http_server **out, an_err *err)
{
    *out = NULL;
    const char *addr = an_config_get(cfg, AN_CFG_HTTP_ADDR);
    char host[256];
    const char *colon = strrchr(addr, ':');
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return an_err_set(err, AN_ERR_INVALID, "AUTONAMA_HTTP_ADDR: host too long");
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai != 0)
        return an_err_set(err, AN_ERR_INVALID, "AUTONAMA_HTTP_ADDR '%s': %s", addr,
                          gai_strerror(gai));
    an_http_server *h = calloc(1, sizeof *h);
    if (!h) {
        freeaddrinfo(ai);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    h->cfg = cfg;
    h->svc = svc;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
                            MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        free(h);
        return an_err_set(err, AN_ERR_IO,
                          "cannot listen on %s (address in use, or not an address of this "
                          "machine)",
                          addr);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *out = h;
    return AN_OK;
}

int an_http_port(const an_http_server *h)
{
    return h->port;
}

void an_http_stop(an_http_server *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
