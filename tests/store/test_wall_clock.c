/*
 * test_wall_clock.c - issue 10 fault 6: the pool's and the beat's timed
 * waits do not depend on the wall clock. The test links with
 * -Wl,--wrap=clock_gettime (tests/CMakeLists.txt), so every CLOCK_REALTIME
 * read of autonama's code here returns the real time plus an offset the
 * test sets, while the kernel, which ends a pthread_cond_timedwait on a
 * CLOCK_REALTIME condition, keeps the real time. A deadline taken from the
 * wall clock is then off by the offset: exactly what a waiter sees when the
 * wall clock is stepped by that much right after it took its deadline (NTP,
 * an operator, a VM resumed). A deadline on CLOCK_MONOTONIC is not moved.
 *
 * libfaketime (Debian's 0.9.10) cannot do this: with
 * FAKETIME_DONT_FAKE_MONOTONIC=1 its pthread_cond_timedwait wrapper makes
 * every wait on a CLOCK_MONOTONIC condition time out at once (fixed upstream
 * in 2025, after 0.9.10), and without it the monotonic clock jumps with the
 * wall clock. docs/decisions.md has the trials.
 *
 * - postgres run: a pool of one connection, held by a read that waits on a
 *   table lock; the wall clock steps an hour forward while another borrower
 *   waits. Before the fix (deadline on CLOCK_REALTIME) that borrower gave up
 *   at once with "no free PostgreSQL connection within 60 s"; now it gets
 *   the connection when the read ends.
 * - duckdb run: the beat, with health-check every second, while the wall
 *   clock reads an hour ahead of the waits' clock (a step back after every
 *   deadline). Before the fix the beat's waits lasted an hour: one or two
 *   firings; now one a second.
 * The timescaledb run has nothing to check (PGlite: one connection).
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "store/store.h"
#include "tasks/scheduler.h"
#include "tasks/service.h"
#include "tasks/tasks.h"
#include "test.h"

/* ---- the wall clock as autonama's code reads it ------------------------- */

static atomic_llong wall_offset_s;

int __real_clock_gettime(clockid_t id, struct timespec *ts);
int __wrap_clock_gettime(clockid_t id, struct timespec *ts);

int __wrap_clock_gettime(clockid_t id, struct timespec *ts)
{
    int rc = __real_clock_gettime(id, ts);
    if (rc == 0 && id == CLOCK_REALTIME)
        ts->tv_sec += (time_t)atomic_load(&wall_offset_s);
    return rc;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    __real_clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the pool: a borrower waiting on a full pool ------------------------ */

typedef struct borrower {
    an_store *s;
    an_code rc;
    int64_t ms;
} borrower;

/* Holds the pool's connection until the table lock is released. */
static void *read_runs(void *arg)
{
    borrower *b = arg;
    int64_t t0 = mono_ms();
    an_task_row row;
    int found = 0;
    an_err e = {0};
    b->rc = an_store_task_get(b->s, "no-such-run", &row, &found, &e);
    if (b->rc == AN_OK && found)
        an_task_row_free(&row);
    b->ms = mono_ms() - t0;
    return NULL;
}

/* Needs a connection of the pool (the one read_runs holds). */
static void *ping(void *arg)
{
    borrower *b = arg;
    int64_t t0 = mono_ms();
    an_err e = {0};
    b->rc = an_store_ping(b->s, &e);
    b->ms = mono_ms() - t0;
    if (b->rc != AN_OK)
        fprintf(stderr, "  ping: %s\n", e.msg);
    return NULL;
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    AN_CHECK_MSG(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static const char *conninfo;

static void test_pool_wait_ignores_wall_clock(void)
{
    an_store_options opt = {.pg_conninfo = conninfo, .pool_size = 1, .connect_timeout_s = 5};
    an_store *s = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_store_open(&opt, &s, &err), err);
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    /* another session locks the task table: a read of it waits, holding the
     * pool's only connection */
    PGconn *lk = PQconnectdb(conninfo);
    AN_CHECK(PQstatus(lk) == CONNECTION_OK);
    exec_ok(lk, "BEGIN");
    exec_ok(lk, "LOCK TABLE autonama.task_runs IN ACCESS EXCLUSIVE MODE");
    borrower holder = {s, AN_OK, 0}, waiter = {s, AN_OK, 0};
    pthread_t th, tw;
    AN_CHECK(pthread_create(&th, NULL, read_runs, &holder) == 0);
    usleep(200 * 1000);
    /* a borrower waits, its deadline read an hour behind the kernel's
     * clock: as if the wall clock stepped an hour forward once it took it */
    atomic_store(&wall_offset_s, -3600);
    AN_CHECK(pthread_create(&tw, NULL, ping, &waiter) == 0);
    usleep(600 * 1000);
    exec_ok(lk, "COMMIT"); /* the read ends and gives the connection back */
    pthread_join(th, NULL);
    pthread_join(tw, NULL);
    atomic_store(&wall_offset_s, 0);
    PQfinish(lk);
    AN_CHECK_INT(holder.rc, AN_OK);
    /* the waiter waited for the connection, then had it */
    AN_CHECK_MSG(waiter.rc == AN_OK, "the waiter gave up after %lld ms", (long long)waiter.ms);
    AN_CHECK_MSG(waiter.ms >= 500, "the waiter returned after %lld ms", (long long)waiter.ms);
    an_store_close(s);
}

/* ---- the beat: its waits while the wall clock reads ahead --------------- */

static long firings(an_tasks *t)
{
    char *m = an_tasks_metrics(t);
    const char *k =
        m ? strstr(m, "autonama_schedule_firings_total{entry=\"health-check\"} ") : NULL;
    long n = k ? atol(strchr(k, '}') + 2) : -1;
    free(m);
    return n;
}

static void test_beat_ignores_wall_clock(void)
{
    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/tmp/an-wall-%d", (int)getpid());
    snprintf(path, sizeof path, "%s/store.duckdb", dir);
    AN_CHECK(mkdir(dir, 0700) == 0);
    char *argv[] = {"--store",
                    "duckdb",
                    "--duckdb-path",
                    path,
                    "--beat-update-interval",
                    "0",
                    "--beat-indicators-interval",
                    "0",
                    "--beat-health-interval",
                    "1",
                    "--workers",
                    "1",
                    "--symbols",
                    "BTC/USDT"};
    an_config cfg;
    an_err err = {0};
    AN_CHECK_OK(an_config_load(&cfg, (int)(sizeof argv / sizeof argv[0]), argv, &err), err);
    an_service svc;
    an_service_init(&svc, &cfg);
    an_tasks *t = NULL;
    AN_CHECK_OK(an_tasks_new(&cfg, &svc, &t, &err), err);
    /* every deadline the beat takes from the wall clock lies an hour past
     * the kernel's: as if the clock were set back an hour after each */
    atomic_store(&wall_offset_s, 3600);
    an_clock clock = an_clock_system();
    AN_CHECK_OK(an_tasks_start(t, &clock, &err), err);
    /* health-check fires at the start, then every second */
    long n = 0;
    int64_t t0 = mono_ms();
    while ((n = firings(t)) < 3 && mono_ms() - t0 < 4500)
        usleep(20 * 1000);
    AN_CHECK_INT(an_tasks_shutdown(t, 5000), 1);
    atomic_store(&wall_offset_s, 0);
    /* when a wait lasts an hour: one firing, and a second only if the first
     * run ends (its worker wakes the beat) after the second was due */
    AN_CHECK_MSG(n >= 3, "health-check fired %ld times in 4.5 s", n);
    an_tasks_free(t);
    an_service_destroy(&svc);
    an_config_free(&cfg);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    AN_CHECK(system(cmd) == 0);
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "duckdb";
    if (!strcmp(backend, "duckdb")) {
        AN_RUN(test_beat_ignores_wall_clock);
        return AN_TEST_DONE();
    }
    if (strcmp(backend, "postgres") != 0) {
        printf("nothing to check on %s: the pool under test is plain PostgreSQL's\n", backend);
        return AN_TEST_DONE();
    }
    conninfo = an_test_pg_conninfo();
    AN_RUN(test_pool_wait_ignores_wall_clock);
    return AN_TEST_DONE();
}
