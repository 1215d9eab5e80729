/*
 * test_task_periods.c - a beat period is its start and its length. Periods
 * of two intervals that start at the same instant (on the hour) are two
 * periods: an hourly schedule runs although a 1 s schedule of the same entry
 * (another instance, or this one before a restart) ran in the second that
 * starts on that hour. The period's claim (the task table's unique `slot`)
 * once named only the start, so on PostgreSQL the hourly run found it
 * claimed and was skipped for the whole hour (cli.test_tasks failed so when
 * it crossed 21:00:00). The task runtime on each store, with a clock fixed
 * on the hour. On DuckDB (one process a file, no unique slot) it passes
 * either way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "backend.h"
#include "core/config.h"
#include "tasks/scheduler.h"
#include "tasks/service.h"
#include "tasks/tasks.h"
#include "test.h"

static an_test_backend be;

static int64_t fixed_now(void *ctx)
{
    return *(const int64_t *)ctx;
}

/* The backend's config, health-check every `every` seconds, nothing else. */
static void load(an_config *cfg, char *every)
{
    char *argv[] = {"--store",
                    (char *)be.name,
                    "--duckdb-path",
                    be.duck_path,
                    "--beat-update-interval",
                    "0",
                    "--beat-indicators-interval",
                    "0",
                    "--beat-health-interval",
                    every,
                    "--workers",
                    "1",
                    "--symbols",
                    "BTC/USDT"};
    if (be.conninfo) { /* the server's settings, as serve reads them */
        static const char *const keys[][2] = {{"host", "POSTGRES_SERVER"},
                                              {"port", "POSTGRES_PORT"},
                                              {"user", "POSTGRES_USER"},
                                              {"password", "POSTGRES_PASSWORD"},
                                              {"dbname", "POSTGRES_DB"}};
        PQconninfoOption *opts = PQconninfoParse(be.conninfo, NULL);
        AN_CHECK_MSG(opts != NULL, "cannot parse the backend's connection string");
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
            for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (o->val && strcmp(o->keyword, keys[i][0]) == 0)
                    setenv(keys[i][1], o->val, 1);
        PQconninfoFree(opts);
    }
    an_err err = {0};
    AN_CHECK_OK(an_config_load(cfg, (int)(sizeof argv / sizeof argv[0]), argv, &err), err);
}

/* The health-check runs in the store, after waiting up to 4 s for want. */
static size_t health_runs(an_tasks *t, size_t want)
{
    size_t n = 0;
    for (int i = 0; i < 200 && n < want; i++) {
        an_err err = {0};
        json_t *list = an_tasks_list(t, "health_check", 10, &err);
        n = list ? json_array_size(list) : 0;
        json_decref(list);
        if (n < want)
            usleep(20000);
    }
    return n;
}

/* A runtime on the backend, every `every` s, its clock at *now, until the
 * store holds `want` health-check runs (or 4 s); returns how many. */
static size_t run_beat(char *every, int64_t *now, size_t want)
{
    an_config cfg;
    an_service svc;
    load(&cfg, every);
    an_service_init(&svc, &cfg);
    an_tasks *t = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_tasks_new(&cfg, &svc, &t, &err), err);
    an_clock clock = {fixed_now, now};
    AN_CHECK_OK(an_tasks_start(t, &clock, &err), err);
    size_t n = health_runs(t, want);
    AN_CHECK_INT(an_tasks_shutdown(t, 5000), 1);
    an_tasks_free(t);
    an_service_destroy(&svc);
    an_config_free(&cfg);
    return n;
}

static void test_two_intervals_same_start(void)
{
    an_test_backend_reset(&be);
    int64_t now = 1704067200000; /* 2024-01-01 00:00:00 UTC, on the hour */
    size_t first = run_beat("1", &now, 1);
    AN_CHECK_MSG(first == 1, "the 1 s schedule's run at its start: %zu runs", first);
    now += 500; /* the same hour, the same second */
    size_t then = run_beat("3600", &now, first + 1);
    AN_CHECK_MSG(then == first + 1, "the hourly schedule's run: %zu runs before, %zu after", first,
                 then);
    /* the same hour again: that period is claimed now (PostgreSQL), or this
     * process owns the file and runs it again (DuckDB has no claims) */
    now += 500;
    size_t again = run_beat("3600", &now, then + 1);
    if (strcmp(be.name, "duckdb") != 0)
        AN_CHECK_MSG(again == then, "the hourly period ran twice: %zu runs, then %zu", then, again);
}

int main(int argc, char **argv)
{
    int rc = an_test_backend_init(&be, argc, argv, "task_periods");
    if (rc)
        return rc;
    AN_RUN(test_two_intervals_same_start);
    an_test_backend_done(&be);
    return AN_TEST_DONE();
}
