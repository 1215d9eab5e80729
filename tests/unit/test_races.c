/*
 * test_races.c - issue 10 fault 3: every stop flag is set by one thread
 * while another works and reads it, and fallback_active is written by a
 * run on the fallback while /metrics reads it. Under ThreadSanitizer
 * (`make tsan`, docs/threads.md) a flag that is a plain int, or a field
 * written under one lock and read under another, is reported as a race and
 * the run exits 66; before the fix (feee055^: volatile int stop, a plain
 * fallback_active written under fb_mu and read under mu) the same scenario
 * gave those reports. In every build the behaviour is checked too: the
 * stop reaches the running work and the runtime, and the gauge shows the
 * fallback.
 *
 * The primary is PostgreSQL on a port nothing listens on, so every run goes
 * to the DuckDB fallback file; the candles come from the files provider
 * (small CSVs written here). No server is needed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/guard.h"
#include "core/config.h"
#include "source/binance_ws.h"
#include "tasks/scheduler.h"
#include "tasks/service.h"
#include "tasks/tasks.h"
#include "test.h"

#define NSYM 4
static const char *const SYMS[NSYM] = {"AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT"};
static char dir[64], fb_path[96], src_dir[96], port[16];

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
static void closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    AN_CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    close(fd);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/an-races-%d", (int)getpid());
    snprintf(src_dir, sizeof src_dir, "%s/candles", dir);
    snprintf(fb_path, sizeof fb_path, "%s/fallback.duckdb", dir);
    AN_CHECK(mkdir(dir, 0700) == 0 && mkdir(src_dir, 0700) == 0);
    for (int s = 0; s < NSYM; s++) {
        char file[160];
        snprintf(file, sizeof file, "%s/%.3s_USDT-1h.csv", src_dir, SYMS[s]);
        FILE *f = fopen(file, "w");
        AN_CHECK(f != NULL);
        fprintf(f, "timestamp,open,high,low,close,volume\n");
        for (int i = 0; i < 200; i++)
            fprintf(f, "%lld,10,12,9,11,%d\n", 1704067200000LL + i * 3600000LL, i + s);
        fclose(f);
    }
    closed_port();
    setenv("POSTGRES_SERVER", "127.0.0.1", 1);
    setenv("POSTGRES_PORT", port, 1);
}

/* The task layer over a primary that is down (cfg and svc outlive it). */
static an_tasks *open_tasks(an_config *cfg, an_service *svc)
{
    char *argv[] = {"--store",
                    "postgres",
                    "--connect-timeout",
                    "1",
                    "--fallback-path",
                    fb_path,
                    "--crypto-provider",
                    "files",
                    "--crypto-source",
                    src_dir,
                    "--beat-update-interval",
                    "0",
                    "--beat-indicators-interval",
                    "0",
                    "--beat-health-interval",
                    "0",
                    "--workers",
                    "2",
                    "--symbols",
                    "AAA/USDT,BBB/USDT,CCC/USDT,DDD/USDT"};
    an_err err = {0};
    AN_CHECK_OK(an_config_load(cfg, (int)(sizeof argv / sizeof argv[0]), argv, &err), err);
    an_service_init(svc, cfg);
    an_tasks *t = NULL;
    AN_CHECK_OK(an_tasks_new(cfg, svc, &t, &err), err);
    return t;
}

static void close_tasks(an_tasks *t, an_config *cfg, an_service *svc)
{
    an_tasks_free(t);
    an_service_destroy(svc);
    an_config_free(cfg);
}

static json_t *ingest_args(void)
{
    return json_pack("{s:[s,s,s,s], s:s, s:s, s:s, s:b}", "symbols", SYMS[0], SYMS[1], SYMS[2],
                     SYMS[3], "timeframe", "1h", "since", "2024-01-01", "until", "2024-01-10",
                     "force", 1);
}

/* ---- the serve runtime: /metrics, submits and a shutdown at once -------- */

typedef struct shared {
    an_tasks *t;
    atomic_int done;
    atomic_int saw_active; /* /metrics said autonama_fallback_active 1 */
    atomic_int succeeded;  /* /metrics' count of runs that ended SUCCESS */
    int submitted;
    an_code last; /* why the submits ended */
} shared;

/* /metrics, as the HTTP workers call it, until the test ends. */
static void *metrics_loop(void *arg)
{
    shared *s = arg;
    while (!atomic_load(&s->done)) {
        char *m = an_tasks_metrics(s->t);
        if (m && strstr(m, "autonama_fallback_active 1"))
            atomic_store(&s->saw_active, 1);
        const char *k = m ? strstr(m, "autonama_task_runs_total{state=\"SUCCESS\"} ") : NULL;
        if (k)
            atomic_store(&s->succeeded, atoi(strchr(k, '}') + 2));
        free(m);
        usleep(2000);
    }
    return NULL;
}

/* POST /api/v1/tasks, as an HTTP worker calls it, until the runtime says it
 * is not running. */
static void *submit_loop(void *arg)
{
    shared *s = arg;
    json_t *a = ingest_args();
    for (int i = 0; i < 2000; i++) {
        char id[AN_TASK_ID_MAX];
        an_err e = {0};
        s->last = an_tasks_submit(s->t, "update_market_data", a, id, &e);
        if (s->last != AN_OK)
            break;
        s->submitted++;
        usleep(20000);
    }
    json_decref(a);
    return NULL;
}

static void test_runtime_stop_and_gauge(void)
{
    an_config cfg;
    an_service svc;
    an_err err = {0};
    shared s = {0};
    s.t = open_tasks(&cfg, &svc);
    an_clock clock = an_clock_system();
    AN_CHECK_OK(an_tasks_start(s.t, &clock, &err), err);
    pthread_t mt, st;
    AN_CHECK(pthread_create(&mt, NULL, metrics_loop, &s) == 0);
    AN_CHECK(pthread_create(&st, NULL, submit_loop, &s) == 0);
    /* the runs go to the fallback file while /metrics reads the gauge; the
     * shutdown comes once one has succeeded there, while others run */
    int64_t t0 = mono_ms();
    while ((!atomic_load(&s.saw_active) || atomic_load(&s.succeeded) < 1) && mono_ms() - t0 < 20000)
        usleep(5000);
    AN_CHECK_MSG(atomic_load(&s.saw_active), "the gauge never showed the fallback in 20 s");
    AN_CHECK_MSG(atomic_load(&s.succeeded) >= 1, "no run succeeded on the fallback in 20 s");
    /* the shutdown sets the stop flag while runs and submits read it */
    int64_t t1 = mono_ms();
    AN_CHECK_INT(an_tasks_shutdown(s.t, 20000), 1);
    AN_CHECK(mono_ms() - t1 < 20000);
    pthread_join(st, NULL);
    atomic_store(&s.done, 1);
    pthread_join(mt, NULL);
    /* the submits saw the stop: refused, not queued into a stopped runtime */
    AN_CHECK_INT(s.last, AN_ERR_UNSUPPORTED);
    AN_CHECK(s.submitted >= 1);
    close_tasks(s.t, &cfg, &svc);
}

/* ---- the command line: a stop from the signal thread ---------------------- */

typedef struct stopper {
    an_tasks *t;
    int delay_ms;
} stopper;

/* What cli_run's signal thread does on SIGTERM. */
static void *stop_later(void *arg)
{
    stopper *p = arg;
    usleep((useconds_t)p->delay_ms * 1000);
    an_tasks_request_stop(p->t);
    return NULL;
}

static void test_cli_stop(void)
{
    an_config cfg;
    an_service svc;
    an_tasks *t = open_tasks(&cfg, &svc);
    stopper p = {t, 50};
    pthread_t th;
    AN_CHECK(pthread_create(&th, NULL, stop_later, &p) == 0);
    /* runs (each with its heartbeat thread and ingest's writers) until one
     * sees the stop: it ends INTERRUPTED */
    json_t *a = ingest_args();
    char state[32] = "";
    for (int i = 0; i < 200 && strcmp(state, "INTERRUPTED") != 0; i++) {
        json_t *res = NULL;
        char id[AN_TASK_ID_MAX];
        an_err e = {0};
        AN_CHECK_OK(an_tasks_run(t, "update_market_data", a, NULL, NULL, id, &res, &e), e);
        const char *s = json_string_value(json_object_get(json_object_get(res, "task"), "state"));
        snprintf(state, sizeof state, "%s", s ? s : "none");
        json_decref(res);
    }
    json_decref(a);
    pthread_join(th, NULL);
    AN_CHECK_STR(state, "INTERRUPTED");
    close_tasks(t, &cfg, &svc);
}

/* ---- the other stop flags: the guard's sweeper, the realtime client ----- */

typedef struct ws_stop {
    an_binance_ws *w;
    int64_t ms;
} ws_stop;

static void *stop_ws(void *arg)
{
    ws_stop *p = arg;
    int64_t t0 = mono_ms();
    an_binance_ws_stop(p->w);
    p->ms = mono_ms() - t0;
    return NULL;
}

static void test_other_stops(void)
{
    /* the guard's sweeper, sweeping every few ms, stopped while it works */
    an_http_guard *g = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_http_guard_new(4, 5, &g, &err), err);
    usleep(30 * 1000);
    int64_t t0 = mono_ms();
    an_http_guard_free(g);
    AN_CHECK(mono_ms() - t0 < 1000);

    /* the realtime client reconnecting to a port nothing listens on, stopped
     * from another thread than the one that started it */
    an_ws_sub sub;
    AN_CHECK_OK(an_ws_sub_init(&sub, "BTC/USDT", "1m", &err), err);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%s", port);
    an_binance_ws_options o = {0};
    o.url = url;
    o.subs = &sub;
    o.nsubs = 1;
    o.streams_per_conn = 1;
    o.idle_ms = 1000;
    o.max_age_ms = 3600000;
    o.backoff_ms = 5;
    o.backoff_max_ms = 20;
    ws_stop p = {0};
    AN_CHECK_OK(an_binance_ws_start(&o, &p.w, &err), err);
    an_binance_ws_stats ws;
    int64_t t1 = mono_ms();
    do {
        usleep(10 * 1000);
        an_binance_ws_get_stats(p.w, &ws);
    } while (ws.attempts < 3 && mono_ms() - t1 < 5000);
    AN_CHECK(ws.attempts >= 3);
    pthread_t th;
    AN_CHECK(pthread_create(&th, NULL, stop_ws, &p) == 0);
    pthread_join(th, NULL);
    AN_CHECK(p.ms < 2000);
}

int main(void)
{
    setup();
    AN_RUN(test_runtime_stop_and_gauge);
    AN_RUN(test_cli_stop);
    AN_RUN(test_other_stops);
    unsetenv("POSTGRES_SERVER");
    unsetenv("POSTGRES_PORT");
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    AN_CHECK(system(cmd) == 0);
    return AN_TEST_DONE();
}
