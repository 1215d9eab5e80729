/*
 * test_pg_pool.c - the PostgreSQL backend's connection handling against a
 * real server (AUTONAMA_TEST_PG): a connection whose ROLLBACK failed is not
 * pooled again, a failing session setup fails the connect, and the advisory
 * lock's mutex is not held across a blocking connect. Runs once per backend
 * like every store test; the duckdb and timescaledb (PGlite: one connection,
 * no advisory locks) runs have nothing to check and pass at once.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "store/pg/pg_internal.h"
#include "test.h"

static const char *conninfo;

static an_store *open_store(void)
{
    an_store_options opt = {.pg_conninfo = conninfo, .pool_size = 2, .connect_timeout_s = 2};
    an_store *s = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_store_open(&opt, &s, &err), err);
    return s;
}

/* A connection left in a state where ROLLBACK cannot run (here: pipeline
 * mode with a query in flight) is closed on release, so the next borrower
 * gets a fresh connection instead of one that fails every statement. */
static void test_failed_rollback_is_not_pooled(void)
{
    an_store *s = open_store();
    if (!s)
        return;
    pg_store *ps = s->impl;
    an_err err = {0};
    PGconn *c;
    int slot;
    AN_CHECK_OK(an_pg_pool_acquire(&ps->pool, &c, &slot, &err), err);
    AN_CHECK(PQenterPipelineMode(c) == 1);
    AN_CHECK(PQsendQueryParams(c, "SELECT 1", 0, NULL, NULL, NULL, NULL, 0) == 1);
    AN_CHECK(PQtransactionStatus(c) != PQTRANS_IDLE);
    an_pg_pool_release(&ps->pool, c, slot);
    for (int i = 0; i < 3; i++)
        AN_CHECK_OK(an_store_ping(s, &err), err);
    an_store_close(s);
}

/* The session setup (SET TIME ZONE ...) is checked: when it fails, the
 * connect fails, naming it, instead of lending out a misconfigured session. */
static void test_failed_session_setup_fails_connect(void)
{
    an_store *s = open_store();
    if (!s)
        return;
    pg_store *ps = s->impl;
    an_err err = {0};
    ps->pool.session_sql = "SET TIME ZONE 'No/Such_Zone'";
    an_store_release_idle(s);
    an_code rc = an_store_ping(s, &err);
    AN_CHECK_INT(rc, AN_ERR_CONNECT);
    AN_CHECK_MSG(strstr(err.msg, "session setup") && strstr(err.msg, "No/Such_Zone"), "%s",
                 err.msg);
    ps->pool.session_sql = NULL;
    AN_CHECK_OK(an_store_ping(s, &err), err);
    an_store_close(s);
}

typedef struct locker {
    an_store *s;
    int64_t key;
    an_code rc;
    an_err err;
} locker;

static void *lock_thread(void *arg)
{
    locker *l = arg;
    int got = 0;
    l->rc = an_store_try_lock(l->s, l->key, &got, &l->err);
    return NULL;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A server that accepts TCP connections and never answers: a connect waits
 * for its connect_timeout (2 s). Two lockers connecting at once must not
 * queue behind each other (the advisory lock's mutex was held across the
 * connect: 4 s instead of 2). */
static void test_lock_mutex_not_held_across_connect(void)
{
    an_store *s = open_store();
    if (!s)
        return;
    pg_store *ps = s->impl;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    AN_CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    AN_CHECK(listen(fd, 16) == 0);
    AN_CHECK(getsockname(fd, (struct sockaddr *)&a, &alen) == 0);
    char hole[200];
    snprintf(hole, sizeof hole, "host=127.0.0.1 port=%d user=x dbname=x connect_timeout=2",
             ntohs(a.sin_port));
    char *saved = ps->pool.conninfo;
    ps->pool.conninfo = hole;
    locker l[2] = {{.s = s, .key = 101}, {.s = s, .key = 102}};
    pthread_t th[2];
    double t0 = now_s();
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, lock_thread, &l[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    double took = now_s() - t0;
    ps->pool.conninfo = saved;
    close(fd);
    for (int i = 0; i < 2; i++)
        AN_CHECK_MSG(l[i].rc == AN_ERR_CONNECT, "%s: %s", an_code_str(l[i].rc), l[i].err.msg);
    AN_CHECK_MSG(took < 3.5, "two lockers took %.1f s: the second waited for the first's connect",
                 took);
    /* and the real server gives the lock afterwards */
    int got = 0;
    an_err err = {0};
    AN_CHECK_OK(an_store_try_lock(s, 101, &got, &err), err);
    AN_CHECK_INT(got, 1);
    AN_CHECK_OK(an_store_unlock(s, 101, &err), err);
    an_store_close(s);
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "duckdb";
    if (strcmp(backend, "postgres") != 0) {
        printf("nothing to check on %s: the pool under test is plain PostgreSQL's\n", backend);
        return AN_TEST_DONE();
    }
    conninfo = getenv("AUTONAMA_TEST_PG");
    if (!conninfo || !*conninfo) {
        fprintf(stderr, "AUTONAMA_TEST_PG is not set: start the servers with "
                        "scripts/test-services start (make test does)\n");
        return 1;
    }
    AN_RUN(test_failed_rollback_is_not_pooled);
    AN_RUN(test_failed_session_setup_fails_connect);
    AN_RUN(test_lock_mutex_not_held_across_connect);
    return AN_TEST_DONE();
}
