/*
 * test_pg_pool.c - the PostgreSQL backend's connection handling against a
 * real server (AUTONAMA_TEST_PG): a connection whose ROLLBACK failed is not
 * pooled again, a failing session setup fails the connect, and the advisory
 * lock's mutex is not held across a blocking connect; the indicator
 * write's "is the key range empty?" check is bounded by the whole primary
 * key (its plan's index condition names the time), and its binary COPY,
 * beaten to a key by another writer, is rolled back and redone as the
 * upsert; a NULL an_err is allowed on a failing open (error.h's rule); the
 * candle reads are prepared once per connection, return binary rows that
 * decode to the stored values bit for bit, and survive a DEALLOCATE ALL;
 * past a request's deadline the reply is the timeout, whichever of the
 * statement and its cancel wins the race.
 * Runs once per backend
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

/* error.h's NULL rule (issue 10, fault 9): a caller that passes no an_err
 * still gets the failure's code back. Opening a store on a port where
 * nothing listens read err->code of the NULL err (a segfault before). */
static void test_null_err_is_allowed(void)
{
    an_store_options opt = {.pg_conninfo = "host=127.0.0.1 port=1 dbname=x user=x",
                            .pool_size = 1,
                            .connect_timeout_s = 2};
    an_store *s = NULL;
    an_code rc = an_store_open(&opt, &s, NULL);
    AN_CHECK_MSG(rc != AN_OK, "opening a store on port 1 succeeded");
    AN_CHECK(s == NULL);
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

/* The EXPLAIN of the indicator write's range check, one line per row. */
static char *explain_range_check(an_store *s, const char *names)
{
    pg_store *ps = s->impl;
    an_err err = {0};
    PGconn *c;
    int slot;
    if (an_pg_pool_acquire(&ps->pool, &c, &slot, &err) != AN_OK)
        return NULL;
    char sql[1024];
    snprintf(sql, sizeof sql, "EXPLAIN %s", AN_PG_IND_RANGE_EMPTY_SQL);
    const char *params[7] = {"PLAN/TEST",
                             "1m",
                             "2024-01-05T00:00:00Z",
                             "2024-01-05T01:00:00Z",
                             names,
                             "{2024-01-05T00:00:00Z,2024-01-05T00:00:00Z,2024-01-05T00:30:00Z}",
                             "{2024-01-05T01:00:00Z,2024-01-05T01:00:00Z,2024-01-05T01:00:00Z}"};
    PGresult *r = PQexecParams(c, sql, 7, NULL, params, NULL, NULL, 0);
    char *plan = calloc(1, 16384);
    for (int i = 0; plan && PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r); i++) {
        strncat(plan, PQgetvalue(r, i, 0), 16384 - strlen(plan) - 2);
        strcat(plan, "\n");
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "  explain: %s", PQerrorMessage(c));
    PQclear(r);
    an_pg_pool_release(&ps->pool, c, slot);
    return plan;
}

/* 3 names x 20,000 values stored: the check for an hour of new values must
 * find its rows by (symbol, timeframe, name, time), not read the series. */
static void test_indicator_range_check_uses_the_key(void)
{
    an_store *s = open_store();
    if (!s)
        return;
    an_err err = {0};
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    enum { N = 20000 };
    static const char *const names[3] = {"sma_20", "ema_50", "rsi_14"};
    int64_t *ts = malloc(3 * N * sizeof *ts);
    int *idx = malloc(3 * N * sizeof *idx);
    double *val = malloc(3 * N * sizeof *val);
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N; i++) {
            ts[k * N + i] = 1704067200000LL + (int64_t)i * 60000;
            idx[k * N + i] = k;
            val[k * N + i] = 100.0 + i * 0.01 + k;
        }
    an_indicator_batch b = {names, 3, ts, idx, val, 3 * N};
    an_upsert_counts counts = {0};
    AN_CHECK_OK(an_store_upsert_indicators(s, "PLAN/TEST", "1m", &b, &counts, &err), err);
    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    if (an_pg_pool_acquire(&ps->pool, &c, &slot, &err) == AN_OK) {
        PQclear(PQexec(c, "ANALYZE analytics.indicators"));
        an_pg_pool_release(&ps->pool, c, slot);
    }
    char *plan = explain_range_check(s, "{sma_20,ema_50,rsi_14}");
    AN_CHECK(plan != NULL);
    if (plan) {
        const char *cond = strstr(plan, "Index Cond");
        AN_CHECK_MSG(cond && strstr(cond, "indicator_name") && strstr(cond, "timestamp"),
                     "the range check's index scan is not bounded by the time:\n%s", plan);
        AN_CHECK_MSG(!strstr(plan, "Seq Scan"), "the range check scans the table:\n%s", plan);
    }
    free(plan);
    AN_CHECK_OK(an_store_delete_range(s, "indicators", "PLAN/TEST", "1m", ts[0], ts[N - 1], &err),
                err);
    free(ts);
    free(idx);
    free(val);
    an_store_close(s);
}

/* The prepared statements of the one pooled connection whose text reads
 * trading.ohlc_data. */
static int prepared_reads(an_store *s)
{
    pg_store *ps = s->impl;
    PGconn *c;
    int slot, n = -1;
    an_err err = {0};
    if (an_pg_pool_acquire(&ps->pool, &c, &slot, &err) != AN_OK)
        return -1;
    PGresult *r = PQexec(c, "SELECT count(*) FROM pg_prepared_statements"
                            " WHERE name LIKE 'an\\_%' AND statement LIKE '%trading.ohlc_data%'");
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    an_pg_pool_release(&ps->pool, c, slot);
    return n;
}

static void check_read(an_store *s, const an_candle *want, size_t n, const an_query *q)
{
    an_candles got = {0};
    an_err err = {0};
    AN_CHECK_OK(an_store_get_ohlc(s, "BIN/TEST", "1m", q, &got, &err), err);
    AN_CHECK_INT(got.n, n);
    for (size_t i = 0; i < got.n && i < n; i++) {
        const an_candle *a = &got.v[i], *b = &want[q->descending ? n - 1 - i : i];
        AN_CHECK_MSG(
            a->ts == b->ts && memcmp(&a->open, &b->open, 5 * sizeof(double)) == 0 && a->count == 0,
            "row %zu: ts %" PRId64 " open %.17g volume %.17g, want %" PRId64 " %.17g %.17g", i,
            a->ts, a->open, a->volume, b->ts, b->open, b->volume);
    }
    an_candles_free(&got);
}

/* Candle reads: one prepared statement per query shape on a connection,
 * whatever the parameters; binary rows decoded to the stored doubles bit for
 * bit and the times to the millisecond
 * (before 2000 too); after a DEALLOCATE ALL the read prepares again instead of failing. */
static void test_candle_reads_prepared_binary(void)
{
    an_store_options opt = {.pg_conninfo = conninfo, .pool_size = 1, .connect_timeout_s = 2};
    an_store *s = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_store_open(&opt, &s, &err), err);
    if (!s)
        return;
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    an_candle v[4] = {
        {631152000000LL, 0.1 + 0.2, 1e300, 5e-324, 0.30000000000000004, 0, 0},
        {946684740000LL, 56738.76, 56840.3, 56733.23, 56813.98, 50.9752, 0},
        {946684800000LL, 1.0 / 3.0, 2.0 / 3.0, 1e-9, 0.5, 123456789.123, 0},
        {1704067200000LL, 42000.01, 42100.5, 41999.99, 42050.25, 0.00000001, 0},
    };
    an_upsert_counts counts = {0};
    AN_CHECK_OK(an_store_insert_ohlc(s, "BIN/TEST", "1m", v, 4, &counts, &err), err);
    an_query all = an_query_all();
    check_read(s, v, 4, &all);
    AN_CHECK_INT(prepared_reads(s), 1);
    an_query q = {.start_ms = 946684740000LL, .end_ms = INT64_MAX, .limit = 3};
    check_read(s, v + 1, 3, &q);
    q.start_ms = 946684800000LL;
    check_read(s, v + 2, 2, &q);
    AN_CHECK_INT(prepared_reads(s), 2); /* the same shape with new values: no new one */
    q.descending = 1;
    check_read(s, v + 2, 2, &q);
    AN_CHECK_INT(prepared_reads(s), 3);

    pg_store *ps = s->impl;
    PGconn *c;
    int slot;
    if (an_pg_pool_acquire(&ps->pool, &c, &slot, &err) == AN_OK) {
        PQclear(PQexec(c, "DEALLOCATE ALL"));
        an_pg_pool_release(&ps->pool, c, slot);
    }
    AN_CHECK_INT(prepared_reads(s), 0);
    check_read(s, v, 4, &all);
    AN_CHECK_INT(prepared_reads(s), 1);
    AN_CHECK_OK(an_store_delete_range(s, "ohlc_data", "BIN/TEST", "1m", v[0].ts, v[3].ts, &err),
                err);
    an_store_close(s);
}

/* A read under a request's deadline (AUTONAMA_HTTP_QUERY_TIMEOUT): one
 * already past is not sent and fails with AN_ERR_TIMEOUT, even a read so
 * small it would finish before a cancel reached the server (before: sent,
 * won the race with its cancel, and answered 200 in the HTTP test); a
 * statement still running at the deadline is cancelled well before its end;
 * without a deadline the same read answers. */
static void test_deadline_decides_the_reply(void)
{
    an_store *s = open_store();
    if (!s)
        return;
    an_err err = {0};
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    an_candles got = {0};
    an_query all = an_query_all();
    an_store_set_deadline(an_store_mono_ms() - 1);
    an_code rc = an_store_get_ohlc(s, "BIN/NONE", "1m", &all, &got, &err);
    AN_CHECK_MSG(rc == AN_ERR_TIMEOUT, "past deadline: code %d (%s), want the timeout", (int)rc,
                 err.msg);
    an_candles_free(&got);

    int64_t t0 = an_store_mono_ms();
    an_store_set_deadline(t0 + 100);
    memset(&err, 0, sizeof err);
    rc = an_pg_exec(s->impl, "SELECT pg_sleep(5)", 0, NULL, NULL, NULL, NULL, "sleep", &err);
    int64_t took = an_store_mono_ms() - t0;
    AN_CHECK_MSG(rc == AN_ERR_TIMEOUT && took < 3000,
                 "pg_sleep(5) under a 100 ms deadline: code %d after %" PRId64 " ms (%s)", (int)rc,
                 took, err.msg);

    an_store_set_deadline(0);
    memset(&err, 0, sizeof err);
    AN_CHECK_OK(an_store_get_ohlc(s, "BIN/NONE", "1m", &all, &got, &err), err);
    AN_CHECK_INT(got.n, 0);
    an_candles_free(&got);
    an_store_close(s);
}

typedef struct racer {
    an_store *s;
    const an_indicator_batch *b;
    an_upsert_counts counts;
    an_code rc;
    an_err err;
} racer;

static void *race_write(void *arg)
{
    racer *r = arg;
    r->rc = an_store_upsert_indicators(r->s, "RACE/TEST", "1m", r->b, &r->counts, &r->err);
    return NULL;
}

/* Another writer commits a row inside a batch's key range after the batch
 * found the range empty: the batch's binary COPY then waits on that row's
 * key and fails with a unique violation; the batch is rolled back to its
 * savepoint (none of its rows stay) and redone as the upsert, whose counts
 * say what happened: 299 inserted, 1 updated (the other writer's value). */
static void test_indicator_copy_conflict_redone_as_upsert(void)
{
    an_store *s = open_store();
    if (!s)
        return;
    an_err err = {0};
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    enum { N = 100 };
    static const char *const names[3] = {"sma_20", "ema_50", "rsi_14"};
    int64_t ts[3 * N];
    int idx[3 * N];
    double val[3 * N];
    for (int i = 0; i < 3 * N; i++) {
        ts[i] = 1704067200000LL + (int64_t)(i / 3) * 60000;
        idx[i] = i % 3;
        val[i] = 10.0 + i;
    }
    an_indicator_batch b = {names, 3, ts, idx, val, 3 * N};
    PGconn *other = PQconnectdb(conninfo);
    PGresult *r = PQexec(other, "BEGIN; INSERT INTO analytics.indicators VALUES ('RACE/TEST',"
                                " '1m', '2024-01-01T00:50:00Z', 'ema_50', -1)");
    AN_CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    racer w = {.s = s, .b = &b};
    pthread_t th;
    pthread_create(&th, NULL, race_write, &w);
    usleep(1000 * 1000); /* the write finds the range empty and waits in its COPY */
    r = PQexec(other, "COMMIT");
    AN_CHECK(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
    pthread_join(th, NULL);
    AN_CHECK_OK(w.rc, w.err);
    AN_CHECK_INT(w.counts.inserted, 3 * N - 1);
    AN_CHECK_INT(w.counts.updated, 1);
    r = PQexec(other, "SELECT count(*), count(*) FILTER (WHERE indicator_value = 10 +"
                      " (extract(epoch FROM \"timestamp\" - '2024-01-01T00:00:00Z') / 60) * 3 +"
                      " CASE indicator_name WHEN 'sma_20' THEN 0 WHEN 'ema_50' THEN 1 ELSE 2 END)"
                      " FROM analytics.indicators WHERE symbol = 'RACE/TEST'");
    AN_CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "300") == 0 &&
             strcmp(PQgetvalue(r, 0, 1), "300") == 0);
    PQclear(r);
    PQclear(PQexec(other, "DELETE FROM analytics.indicators WHERE symbol = 'RACE/TEST'"));
    PQfinish(other);
    an_store_close(s);
}

int main(int argc, char **argv)
{
    const char *backend = argc > 1 ? argv[1] : "duckdb";
    if (strcmp(backend, "postgres") != 0) {
        printf("nothing to check on %s: the pool under test is plain PostgreSQL's\n", backend);
        return AN_TEST_DONE();
    }
    conninfo = an_test_pg_conninfo();
    AN_RUN(test_failed_rollback_is_not_pooled);
    AN_RUN(test_failed_session_setup_fails_connect);
    AN_RUN(test_lock_mutex_not_held_across_connect);
    AN_RUN(test_indicator_range_check_uses_the_key);
    AN_RUN(test_null_err_is_allowed);
    AN_RUN(test_candle_reads_prepared_binary);
    AN_RUN(test_indicator_copy_conflict_redone_as_upsert);
    AN_RUN(test_deadline_decides_the_reply);
    return AN_TEST_DONE();
}
