/*
 * test_tasks.c - the task layer on an embedded DuckDB store, as the HTTP API
 * will drive it: the runtime started with a clock, a run submitted and
 * followed to its final state, the runs listed and read back, the Prometheus
 * lines, an unknown task refused, a graceful shutdown; then the same store
 * reopened (history survives) and a run started from a thread (an_tasks_run).
 * Then two faults of issue 10: an ingest whose second per-symbol thread
 * cannot start (it used to join an unstarted handle and hang), and the
 * service opening a store on a server that never answers (other callers
 * used to queue behind the connect timeout).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "tasks/ingest.h"
#include "tasks/scheduler.h"
#include "tasks/service.h"
#include "tasks/tasks.h"
#include "test.h"

static char path[64];

static void load(an_config *cfg)
{
    char *argv[] = {"--store",
                    "duckdb",
                    "--duckdb-path",
                    path,
                    "--beat-update-interval",
                    "0",
                    "--beat-indicators-interval",
                    "0",
                    "--beat-health-interval",
                    "3600",
                    "--workers",
                    "2",
                    "--symbols",
                    "BTC/USDT"};
    an_err err = {0};
    AN_CHECK_OK(an_config_load(cfg, (int)(sizeof argv / sizeof argv[0]), argv, &err), err);
}

static const char *state_of(an_tasks *t, const char *id, char *buf, size_t len)
{
    an_err err = {0};
    json_t *o = an_tasks_get(t, id, &err);
    snprintf(buf, len, "%s", o ? json_string_value(json_object_get(o, "state")) : "none");
    json_decref(o);
    return buf;
}

/* The test config, its service and a task runtime on them, not started. */
static an_tasks *open_runtime(an_config *cfg, an_service *svc)
{
    load(cfg);
    an_service_init(svc, cfg);
    an_tasks *t = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_tasks_new(cfg, svc, &t, &err), err);
    return t;
}

static void test_runtime(void)
{
    an_config cfg;
    an_service svc;
    an_tasks *t = open_runtime(&cfg, &svc);
    an_err err = {0};
    char id[AN_TASK_ID_MAX];
    /* not running yet: submit is refused */
    AN_CHECK(an_tasks_submit(t, "health_check", NULL, id, &err) == AN_ERR_UNSUPPORTED);
    an_clock clock = an_clock_system();
    AN_CHECK_OK(an_tasks_start(t, &clock, &err), err);
    AN_CHECK(an_tasks_submit(t, "no_such_task", NULL, id, &err) == AN_ERR_NOT_FOUND);
    AN_CHECK_OK(an_tasks_submit(t, "health_check", NULL, id, &err), err);
    char st[32] = "";
    for (int i = 0; i < 200; i++) {
        state_of(t, id, st, sizeof st);
        if (!strcmp(st, "SUCCESS") || !strcmp(st, "FAILURE"))
            break;
        usleep(20000);
    }
    /* no candles stored: unhealthy, so FAILURE with the first problem */
    AN_CHECK_STR(st, "FAILURE");
    json_t *o = an_tasks_get(t, id, &err);
    AN_CHECK(o != NULL);
    AN_CHECK_STR(json_string_value(json_object_get(o, "name")), "health_check");
    AN_CHECK(strstr(json_string_value(json_object_get(o, "error")), "BTC/USDT") != NULL);
    AN_CHECK_STR(json_string_value(json_object_get(json_object_get(o, "result"), "status")),
                 "failed");
    json_decref(o);
    /* the beat's own health-check ran at start too */
    json_t *list = an_tasks_list(t, "health_check", 10, &err);
    AN_CHECK(list != NULL && json_array_size(list) >= 1);
    json_decref(list);
    AN_CHECK(an_tasks_get(t, "nope", &err) == NULL && err.code == AN_ERR_NOT_FOUND);
    char *m = an_tasks_metrics(t);
    AN_CHECK(m && strstr(m, "autonama_task_runs_total{state=\"FAILURE\"}") != NULL);
    AN_CHECK(m && strstr(m, "autonama_fallback_active 0") != NULL);
    AN_CHECK(m && strstr(m, "autonama_schedule_firings_total{entry=\"health-check\"} 1") != NULL);
    free(m);
    AN_CHECK_INT(an_tasks_shutdown(t, 5000), 1);
    an_tasks_free(t);
    an_service_destroy(&svc);
    an_config_free(&cfg);

    /* reopened: the history is there; a run on this thread */
    t = open_runtime(&cfg, &svc);
    o = an_tasks_get(t, id, &err);
    AN_CHECK(o != NULL);
    json_decref(o);
    json_t *res = NULL;
    char id2[AN_TASK_ID_MAX];
    AN_CHECK_OK(an_tasks_run(t, "health_check", NULL, NULL, NULL, id2, &res, &err), err);
    AN_CHECK_STR(json_string_value(json_object_get(json_object_get(res, "task"), "id")), id2);
    json_decref(res);
    list = an_tasks_list(t, NULL, 1, &err);
    AN_CHECK_STR(json_string_value(json_object_get(json_array_get(list, 0), "id")), id2);
    json_decref(list);
    /* the seed's positional args: ['ETH/USDT'] (no candles: every series skipped) */
    json_t *args = json_pack("[s]", "ETH/USDT");
    AN_CHECK_OK(
        an_tasks_run(t, "calculate_indicators_for_symbol", args, NULL, NULL, id2, &res, &err), err);
    json_decref(args);
    AN_CHECK_STR(json_string_value(json_object_get(res, "status")), "completed");
    AN_CHECK_STR(json_string_value(
                     json_object_get(json_array_get(json_object_get(res, "series"), 0), "symbol")),
                 "ETH/USDT");
    AN_CHECK_STR(json_string_value(json_object_get(json_object_get(res, "task"), "state")),
                 "SUCCESS");
    json_decref(res);
    /* bad args: FAILURE recorded, the error returned */
    args = json_pack("{s:s}", "symbols", "btcusdt");
    AN_CHECK(an_tasks_run(t, "update_market_data", args, NULL, NULL, id2, &res, &err) ==
             AN_ERR_INVALID);
    json_decref(args);
    json_decref(res);
    AN_CHECK_STR(state_of(t, id2, st, sizeof st), "FAILURE");
    an_tasks_free(t);
    an_service_destroy(&svc);
    an_config_free(&cfg);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- ingest: a per-symbol thread that cannot start ---------------------- */

static int creates;

/* The second thread the run asks for cannot start (EAGAIN, as under
 * RLIMIT_NPROC); the others do. */
static int second_fails(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (++creates == 2)
        return EAGAIN;
    return pthread_create(th, attr, fn, arg);
}

/* Started again after a shutdown: refused with a clear error, nothing
 * leaked (the first version made a second schedule over the first; ASan's
 * leak check fails on that) and the first start's history still readable. */
static void test_restart_refused(void)
{
    an_config cfg;
    an_service svc;
    an_tasks *t = open_runtime(&cfg, &svc);
    an_err err = {0};
    an_clock clock = an_clock_system();
    AN_CHECK_OK(an_tasks_start(t, &clock, &err), err);
    AN_CHECK_INT(an_tasks_shutdown(t, 5000), 1);
    AN_CHECK(an_tasks_start(t, &clock, &err) == AN_ERR_UNSUPPORTED);
    AN_CHECK_MSG(strstr(err.msg, "starts once") != NULL, "error: %s", err.msg);
    char id[AN_TASK_ID_MAX];
    AN_CHECK(an_tasks_submit(t, "health_check", NULL, id, &err) == AN_ERR_UNSUPPORTED);
    char *m = an_tasks_metrics(t);
    AN_CHECK(m && strstr(m, "autonama_schedule_firings_total{entry=\"health-check\"}") != NULL);
    free(m);
    an_tasks_free(t);
    an_service_destroy(&svc);
    an_config_free(&cfg);
}

static void test_ingest_thread_fails(void)
{
    char dir[64], file[128], store[96];
    snprintf(dir, sizeof dir, "/tmp/an-ingest-%d", (int)getpid());
    snprintf(store, sizeof store, "%s/store.duckdb", dir);
    AN_CHECK(mkdir(dir, 0700) == 0);
    const char *syms[] = {"AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT"};
    for (int s = 0; s < 4; s++) {
        snprintf(file, sizeof file, "%s/%.3s_USDT-1h.csv", dir, syms[s]);
        FILE *f = fopen(file, "w");
        AN_CHECK(f != NULL);
        fprintf(f, "timestamp,open,high,low,close,volume\n");
        for (int i = 0; i < 48; i++)
            fprintf(f, "%lld,10,12,9,11,%d\n", 1704067200000LL + i * 3600000LL, i + s);
        fclose(f);
    }
    an_store_options o = {0};
    o.mode = "duckdb";
    o.duckdb_path = store;
    an_store *s = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_store_open(&o, &s, &err), err);
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    an_ingest_options io = {0};
    io.provider = "files";
    io.source = dir;
    io.category = "crypto";
    io.symbols = syms;
    io.n_symbols = 4;
    io.timeframe = "1h";
    io.since_ms = 1704067200000LL;
    io.until_ms = 1704067200000LL + 48 * 3600000LL;
    io.lookback = 1000;
    io.parallel = 3;
    io.max_tries = 1;
    an_ingest_symbol res[4];
    creates = 0;
    an_ingest_set_thread_create(second_fails);
    AN_CHECK_OK(an_ingest_run(s, &io, res, &err), err);
    an_ingest_set_thread_create(NULL);
    /* two threads (the first and the third) did every symbol, and both were
     * joined before the run returned */
    AN_CHECK(creates >= 3);
    for (int i = 0; i < 4; i++) {
        AN_CHECK_INT(res[i].status, AN_OK);
        AN_CHECK_INT(res[i].inserted, 48);
    }
    an_store_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    AN_CHECK(system(cmd) == 0);
}

/* ---- the service: a slow database does not hold the other callers -------- */

typedef struct open_arg {
    an_service *svc;
    int64_t ms;
} open_arg;

static void *open_store(void *arg)
{
    open_arg *a = arg;
    int64_t t0 = mono_ms();
    an_err e = {0};
    an_service_store(a->svc, &e);
    a->ms = mono_ms() - t0;
    return NULL;
}

static void test_service_slow_open(void)
{
    /* a server that accepts connections and never answers: a connect waits
     * for AUTONAMA_CONNECT_TIMEOUT (1 s) */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    AN_CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 16) == 0 &&
             getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    char port[16];
    snprintf(port, sizeof port, "%d", ntohs(a.sin_port));
    setenv("POSTGRES_SERVER", "127.0.0.1", 1);
    setenv("POSTGRES_PORT", port, 1);
    char *argv[] = {"--store", "postgres", "--connect-timeout", "1"};
    an_config cfg;
    an_err err = {0};
    AN_CHECK_OK(an_config_load(&cfg, 4, argv, &err), err);
    an_service svc;
    an_service_init(&svc, &cfg);
    open_arg first = {&svc, 0}, again = {&svc, 0}, other = {&svc, 0};
    open_store(&first); /* fails after the timeout: the service knows why */
    AN_CHECK(first.ms >= 900);
    pthread_t th;
    AN_CHECK(pthread_create(&th, NULL, open_store, &again) == 0);
    usleep(200 * 1000); /* `again` is connecting now */
    open_store(&other);
    pthread_join(th, NULL);
    /* the other caller got the last error at once instead of queueing */
    AN_CHECK(again.ms >= 900);
    AN_CHECK(other.ms < 500);
    an_service_destroy(&svc);
    an_config_free(&cfg);
    unsetenv("POSTGRES_SERVER");
    unsetenv("POSTGRES_PORT");
    close(fd);
}

int main(void)
{
    snprintf(path, sizeof path, "/tmp/an-tasks-%d.duckdb", (int)getpid());
    AN_RUN(test_runtime);
    AN_RUN(test_restart_refused);
    AN_RUN(test_ingest_thread_fails);
    AN_RUN(test_service_slow_open);
    unlink(path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s.wal", path);
    unlink(wal);
    return AN_TEST_DONE();
}
