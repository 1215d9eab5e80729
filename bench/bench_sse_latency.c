/*
 * bench_sse_latency.c - bench/realtime's measuring SSE client: one
 * connection to GET /api/v1/stream (HTTP/1.0: no chunk framing between the
 * lines), read for SECONDS; for every event, the
 * receive time (wall clock) minus the event time E its id carries
 * ("id: E-seq", E in ms since the epoch, stamped by the fake exchange as it
 * sent the frame). Prints "count p50_ms p99_ms". In C so that the measuring
 * client's own delay stays out of the figure (a Python reader at load 10
 * added tens of ms of its own).
 *   bench_sse_latency HOST PORT PATH SECONDS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(int clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double quantile(const double *v, size_t n, double p)
{
    return n ? v[(size_t)(p * (double)(n - 1) + 0.5)] : -1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST PORT PATH SECONDS\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
        fprintf(stderr, "bench_sse_latency: %s is not an IPv4 address\n", argv[1]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "bench_sse_latency: connect %s:%s: %s\n", argv[1], argv[2],
                strerror(errno));
        return 1;
    }
    char req[16384];
    int rn = snprintf(req, sizeof req,
                      "GET %s HTTP/1.0\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", argv[3],
                      argv[1]);
    if (rn <= 0 || (size_t)rn >= sizeof req || send(fd, req, (size_t)rn, 0) != rn) {
        fprintf(stderr, "bench_sse_latency: the request did not go out\n");
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    double *lat = malloc(cap * sizeof *lat);
    static char buf[1 << 20];
    size_t have = 0;
    double end = now_ms(CLOCK_MONOTONIC) + atof(argv[4]) * 1000.0;
    while (lat) {
        double left = end - now_ms(CLOCK_MONOTONIC);
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left + 1) <= 0)
            continue;
        ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (r <= 0)
            break; /* the server closed: what was read counts */
        double t = now_ms(CLOCK_REALTIME);
        have += (size_t)r;
        buf[have] = 0;
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', (size_t)(buf + have - line)))) {
            if (strncmp(line, "id: ", 4) == 0) {
                if (n == cap) {
                    double *v = realloc(lat, (cap *= 2) * sizeof *lat);
                    if (!v)
                        break;
                    lat = v;
                }
                lat[n++] = t - (double)strtoll(line + 4, NULL, 10);
            }
            line = nl + 1;
        }
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0; /* a line longer than the buffer: not an id line */
    }
    close(fd);
    if (!lat) {
        fprintf(stderr, "bench_sse_latency: out of memory\n");
        return 1;
    }
    qsort(lat, n, sizeof *lat, cmp);
    printf("%zu %.1f %.1f\n", n, quantile(lat, n, 0.5), quantile(lat, n, 0.99));
    free(lat);
    return 0;
}
