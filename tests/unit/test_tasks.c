/*
 * test_tasks.c - the task layer on an embedded DuckDB store, as the HTTP API
 * will drive it: the runtime started with a clock, a run submitted and
 * followed to its final state, the runs listed and read back, the Prometheus
 * lines, an unknown task refused, a graceful shutdown; then the same store
 * reopened (history survives) and a run started from a thread (an_tasks_run).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
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

static void test_runtime(void)
{
    an_config cfg;
    load(&cfg);
    an_service svc;
    an_service_init(&svc, &cfg);
    an_tasks *t = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_tasks_new(&cfg, &svc, &t, &err), err);
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
    load(&cfg);
    an_service_init(&svc, &cfg);
    AN_CHECK_OK(an_tasks_new(&cfg, &svc, &t, &err), err);
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

int main(void)
{
    snprintf(path, sizeof path, "/tmp/an-tasks-%d.duckdb", (int)getpid());
    AN_RUN(test_runtime);
    unlink(path);
    char wal[80];
    snprintf(wal, sizeof wal, "%s.wal", path);
    unlink(wal);
    return AN_TEST_DONE();
}
