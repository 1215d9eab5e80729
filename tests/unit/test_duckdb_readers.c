/*
 * test_duckdb_readers.c - the DuckDB store's read connections
 * (src/store/duckdb/readers.c, AUTONAMA_DUCKDB_READERS): the setting is
 * checked; the API's reads answer while a write holds the store's lock and
 * while another read runs (before, every statement queued on one locked
 * connection); a read waits for a free connection no longer than its
 * deadline; the request deadline interrupts the statement on the reader it
 * runs on while another reader works; and readers running beside a writer
 * see whole write transactions only. Every check runs the real store on a
 * file; a read that would block forever on a regression runs on a thread of
 * its own and is given up on after WAIT_MS, so the test fails rather than
 * hangs.
 */
#include <duckdb.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analytics/engine.h"
#include "core/log.h"
#include "series.h"
#include "store/duckdb/duck_internal.h"
#include "store/store.h"
#include "store/store_duckdb.h"
#include "test.h"

#define T0_MS 1577836800000LL /* 2020-01-01 */
#define WAIT_MS 5000          /* a read that should not wait gets this long */

static char tmpdir[256];

static an_store *open_readers(const char *name, int readers);
static void put_series(an_store *s, const char *symbol, size_t n);

/* The store the tests with two readers and AAA/USDT share (one open and
 * migrate fewer: seconds under ASan); the last of them closes it. */
static an_store *two_readers(void)
{
    static an_store *s;
    if (!s) {
        s = open_readers("two.duckdb", 2);
        put_series(s, "AAA/USDT", 1000);
    }
    return s;
}

static an_store *open_readers(const char *name, int readers)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    an_store_options opt = {0};
    opt.mode = "duckdb";
    opt.duckdb_path = path;
    opt.duckdb_readers = readers;
    an_store *s = NULL;
    an_err err = {0};
    if (an_store_open(&opt, &s, &err) != AN_OK || an_store_migrate(s, NULL, &err) != AN_OK) {
        fprintf(stderr, "cannot open %s: %s\n", path, err.msg);
        exit(1);
    }
    return s;
}

static void put_series(an_store *s, const char *symbol, size_t n)
{
    an_candles c = {0};
    an_test_series spec = an_test_series_1m(T0_MS, 7);
    an_test_series_make(&c, n, &spec);
    an_err err = {0};
    AN_CHECK_OK(an_store_insert_ohlc(s, symbol, "1m", c.v, c.n, NULL, &err), err);
    an_candles_free(&c);
}

/* ---- a flag one thread sets and another waits for, with a limit ---------- */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int set;
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->set = 0;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->set = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* 1 when the gate opened within ms (on the realtime clock: a test's limit). */
static int gate_wait(gate *g, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(ms / 1000);
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&g->mu);
    while (!g->set && pthread_cond_timedwait(&g->cv, &g->mu, &until) == 0)
        ;
    int set = g->set;
    pthread_mutex_unlock(&g->mu);
    return set;
}

static void gate_free(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

/* ---- the API's reads, on a thread of their own ---------------------------- */

typedef struct api_reads {
    an_store *s;
    int64_t deadline_in_ms; /* 0: none */
    gate done;
    an_code rc;
    char msg[AN_ERR_MSG_MAX];
    size_t candles, buckets, series;
    int64_t latest, took_ms;
} api_reads;

/* What GET /api/v1/data/ohlc, /symbols and /health read on DuckDB. */
static void *run_api_reads(void *arg)
{
    api_reads *a = arg;
    an_err err = {0};
    an_candles c = {0}, b = {0};
    an_series_info *list = NULL;
    int found = 0, version = 0;
    int64_t t0 = an_store_mono_ms();
    an_query q = an_query_all();
    q.limit = 5;
    q.descending = 1;
    if (a->deadline_in_ms > 0)
        an_store_set_deadline(t0 + a->deadline_in_ms);
    a->rc = an_store_get_ohlc(a->s, "AAA/USDT", "1m", &q, &c, &err);
    if (a->rc == AN_OK)
        a->rc = an_store_get_ohlc_bucketed(a->s, "AAA/USDT", "1m", 3600000, &q, &b, &err);
    if (a->rc == AN_OK)
        a->rc = an_store_list_series(a->s, &list, &a->series, &err);
    if (a->rc == AN_OK)
        a->rc = an_store_get_latest_timestamp(a->s, "AAA/USDT", "1m", &a->latest, &found, &err);
    if (a->rc == AN_OK)
        a->rc = an_store_ping(a->s, &err);
    if (a->rc == AN_OK)
        a->rc = an_store_check_schema(a->s, &version, &err);
    an_store_set_deadline(0);
    a->took_ms = an_store_mono_ms() - t0;
    a->candles = c.n;
    a->buckets = b.n;
    snprintf(a->msg, sizeof a->msg, "%s", a->rc == AN_OK ? "" : err.msg);
    an_candles_free(&c);
    an_candles_free(&b);
    free(list);
    gate_open(&a->done);
    return NULL;
}

static void start_reads(api_reads *a, an_store *s, int64_t deadline_in_ms, pthread_t *t)
{
    memset(a, 0, sizeof *a);
    a->s = s;
    a->deadline_in_ms = deadline_in_ms;
    gate_init(&a->done);
    pthread_create(t, NULL, run_api_reads, a);
}

static void check_reads(const api_reads *a, const char *when)
{
    AN_CHECK_MSG(a->rc == AN_OK, "%s: the reads failed: %s", when, a->msg);
    AN_CHECK_MSG(a->candles == 5 && a->buckets == 5 && a->series == 1 &&
                     a->latest == T0_MS + 999 * 60000,
                 "%s: %zu candles, %zu buckets, %zu series, newest %" PRId64, when, a->candles,
                 a->buckets, a->series, a->latest);
}

/* ---- the setting ---------------------------------------------------------- */

static void test_setting(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/setting.duckdb", tmpdir);
    an_store_options opt = {0};
    opt.mode = "duckdb";
    opt.duckdb_path = path;
    const int bad[] = {-1, 65, 1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        an_store *s = NULL;
        an_err err = {0};
        opt.duckdb_readers = bad[i];
        AN_CHECK_MSG(an_store_open(&opt, &s, &err) == AN_ERR_INVALID, "readers=%d accepted",
                     bad[i]);
        char num[16];
        snprintf(num, sizeof num, "%d", bad[i]);
        AN_CHECK_MSG(strstr(err.msg, "AUTONAMA_DUCKDB_READERS") && strstr(err.msg, num) &&
                         strstr(err.msg, "1 to 64"),
                     "readers=%d: %s", bad[i], err.msg);
        an_store_close(s);
    }
    /* the bounds open, read and close */
    const int good[] = {1, 64};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        an_store *s = open_readers("setting.duckdb", good[i]);
        an_err err = {0};
        AN_CHECK_OK(an_store_ping(s, &err), err);
        an_store_close(s);
    }
}

/* ---- reads beside a write ------------------------------------------------- */

typedef struct holder {
    an_store *s;
    gate holding, release;
} holder;

/* Holds the store's lock, as a write does for its whole transaction, until
 * told to let go. */
static an_code hold_job(duck_store *ds, void *ctx, an_err *err)
{
    (void)ds;
    (void)err;
    holder *h = ctx;
    gate_open(&h->holding);
    gate_wait(&h->release, 60000);
    return AN_OK;
}

static void *hold_lock(void *arg)
{
    holder *h = arg;
    an_err err = {0};
    an_duck_with_lock(h->s->impl, hold_job, h, &err);
    return NULL;
}

/* Before: every read queued on the store's one locked connection, behind
 * any write; /health on DuckDB waited out an ingest's batch. */
static void test_reads_beside_a_write(void)
{
    an_store *s = two_readers();
    holder h = {.s = s};
    gate_init(&h.holding);
    gate_init(&h.release);
    pthread_t th, tr;
    pthread_create(&th, NULL, hold_lock, &h);
    AN_CHECK(gate_wait(&h.holding, WAIT_MS));
    api_reads a;
    start_reads(&a, s, 0, &tr);
    int answered = gate_wait(&a.done, WAIT_MS);
    gate_open(&h.release);
    pthread_join(tr, NULL);
    pthread_join(th, NULL);
    AN_CHECK_MSG(answered, "the reads waited for the write's lock (%" PRId64 " ms in all)",
                 a.took_ms);
    check_reads(&a, "beside a write");
    gate_free(&a.done);
    gate_free(&h.holding);
    gate_free(&h.release);
}

/* ---- reads beside a long read --------------------------------------------- */

typedef struct long_read {
    an_store *s;
    gate inside, release;
    an_code rc;
} long_read;

/* The export's callback: parks the export on its read connection. */
static an_code park(void *ctx, const int64_t *ts, const double *close, size_t n, an_err *err)
{
    (void)ts;
    (void)close;
    (void)n;
    (void)err;
    long_read *l = ctx;
    gate_open(&l->inside);
    gate_wait(&l->release, 60000);
    return AN_OK;
}

static void *run_long_read(void *arg)
{
    long_read *l = arg;
    an_err err = {0};
    l->rc = an_store_export_closes(l->s, "ohlc_data", "AAA/USDT", "1m", park, l, &err);
    return NULL;
}

static void start_long_read(long_read *l, an_store *s, pthread_t *t)
{
    l->s = s;
    l->rc = AN_ERR_INTERNAL;
    gate_init(&l->inside);
    gate_init(&l->release);
    pthread_create(t, NULL, run_long_read, l);
}

static void end_long_read(long_read *l, pthread_t t)
{
    gate_open(&l->release);
    pthread_join(t, NULL);
    AN_CHECK_MSG(l->rc == AN_OK, "the long read: code %d", (int)l->rc);
    gate_free(&l->inside);
    gate_free(&l->release);
}

/* The API's reads (under a deadline deadline_in_ms away; 0: none) while an
 * export holds one of s's readers; 1 when they answered within WAIT_MS. */
static int reads_beside_a_long_one(an_store *s, int64_t deadline_in_ms, api_reads *a)
{
    long_read l;
    pthread_t tl, tr;
    start_long_read(&l, s, &tl);
    AN_CHECK(gate_wait(&l.inside, WAIT_MS));
    start_reads(a, s, deadline_in_ms, &tr);
    int answered = gate_wait(&a->done, WAIT_MS);
    end_long_read(&l, tl);
    pthread_join(tr, NULL);
    gate_free(&a->done);
    return answered;
}

/* Before: a cheap read waited for the long one to end. */
static void test_reads_beside_a_read(void)
{
    api_reads a;
    int answered = reads_beside_a_long_one(two_readers(), 0, &a);
    AN_CHECK_MSG(answered, "a cheap read waited for a long one (%" PRId64 " ms in all)", a.took_ms);
    check_reads(&a, "beside a long read");
}

/* With every reader busy a read waits for one, but not past its deadline:
 * the timeout (503 at the API), then the next read answers. */
static void test_wait_ends_at_the_deadline(void)
{
    an_store *s = open_readers("busy.duckdb", 1);
    put_series(s, "AAA/USDT", 1000);
    api_reads a;
    int answered = reads_beside_a_long_one(s, 150, &a);
    AN_CHECK_MSG(answered && a.rc == AN_ERR_TIMEOUT && strstr(a.msg, "busy"),
                 "a read with every reader busy: code %d after %" PRId64 " ms: %s", (int)a.rc,
                 a.took_ms, a.msg);
    AN_CHECK_MSG(a.took_ms >= 140 && a.took_ms < WAIT_MS, "gave up after %" PRId64 " ms",
                 a.took_ms);
    pthread_t tr;
    start_reads(&a, s, 0, &tr);
    pthread_join(tr, NULL);
    check_reads(&a, "after the busy reader came back");
    gate_free(&a.done);
    an_store_close(s);
}

/* ---- the deadline interrupts a read on its own reader ---------------------- */

/* rows 1m candles of BIG/USDT written by SQL on a connection of our own
 * (seconds faster than the write path; the catalog is not read here). */
static void put_big(an_store *s, int64_t first, int64_t rows)
{
    duckdb_connection con;
    duckdb_result r;
    char sql[512];
    snprintf(sql, sizeof sql,
             "INSERT INTO trading.ohlc_data SELECT 'BIG/USDT', '1m', TIMESTAMP '2017-07-14' + "
             "to_minutes(i), 100 + sin(i / 997.0), 101 + sin(i / 997.0), 99 + sin(i / 997.0), "
             "100 + sin((i + 1) / 997.0), 1 + i %% 7 FROM range(%" PRId64 ", %" PRId64 ") t(i)",
             first, first + rows);
    AN_CHECK(duckdb_connect(an_duckdb_store_database(s), &con) == DuckDBSuccess);
    AN_CHECK_MSG(duckdb_query(con, sql, &r) == DuckDBSuccess, "%s", duckdb_result_error(&r));
    duckdb_destroy_result(&r);
    duckdb_disconnect(&con);
}

/* Every bucket of BIG/USDT: a read that scans the whole series. */
static an_code big_read(an_store *s, int64_t deadline_in_ms, int64_t *took_ms, an_err *err)
{
    an_candles out = {0};
    an_query q = an_query_all();
    q.limit = 10;
    const int64_t t0 = an_store_mono_ms();
    if (deadline_in_ms > 0)
        an_store_set_deadline(t0 + deadline_in_ms);
    an_code rc = an_store_get_ohlc_bucketed(s, "BIG/USDT", "1m", 7 * 60000, &q, &out, err);
    an_store_set_deadline(0);
    *took_ms = an_store_mono_ms() - t0;
    an_candles_free(&out);
    return rc;
}

typedef struct cheap_loop {
    an_store *s;
    atomic_int stop;
    int ok, failed;
    gate first;
    char msg[AN_ERR_MSG_MAX + 32];
} cheap_loop;

static void *run_cheap_loop(void *arg)
{
    cheap_loop *c = arg;
    while (!atomic_load(&c->stop)) {
        an_err err = {0};
        an_candles out = {0};
        an_query q = an_query_all();
        q.limit = 5;
        if (an_store_get_ohlc(c->s, "AAA/USDT", "1m", &q, &out, &err) == AN_OK && out.n == 5) {
            c->ok++;
        } else {
            c->failed++;
            snprintf(c->msg, sizeof c->msg, "%s (%zu rows)", err.msg, out.n);
        }
        an_candles_free(&out);
        gate_open(&c->first);
    }
    return NULL;
}

/* Before, the interrupt went to the store's locked connection: a read on a
 * reader would have run to its end. */
static void test_deadline_interrupts_its_reader(void)
{
    an_store *s = two_readers();
    /* enough rows that the read takes 40 ms on this machine, now */
    int64_t rows = 0, step = 100000, took = 0;
    an_err err = {0};
    do {
        put_big(s, rows, step);
        rows += step;
        AN_CHECK_OK(big_read(s, 0, &took, &err), err);
    } while (took < 40 && rows < 4000000);
    printf("  # %" PRId64 " rows: the read takes %" PRId64 " ms without a deadline\n", rows, took);
    cheap_loop c = {.s = s};
    atomic_init(&c.stop, 0);
    gate_init(&c.first);
    pthread_t tc;
    pthread_create(&tc, NULL, run_cheap_loop, &c);
    AN_CHECK(gate_wait(&c.first, WAIT_MS));
    int64_t cut = 0;
    an_code rc = big_read(s, took / 6 > 1 ? took / 6 : 1, &cut, &err);
    atomic_store(&c.stop, 1);
    pthread_join(tc, NULL);
    AN_CHECK_MSG(rc == AN_ERR_TIMEOUT && strstr(err.msg, "query timeout"),
                 "a %" PRId64 " ms read under a %" PRId64 " ms deadline: code %d after %" PRId64
                 " ms (%s)",
                 took, took / 6, (int)rc, cut, rc == AN_OK ? "" : err.msg);
    AN_CHECK_MSG(c.failed == 0 && c.ok > 0, "the other reader: %d reads, %d failed: %s", c.ok,
                 c.failed, c.msg);
    printf("  # interrupted after %" PRId64 " ms; the other reader answered %d reads meanwhile\n",
           cut, c.ok);
    /* both readers answer afterwards, the interrupted one included */
    for (int i = 0; i < 4; i++)
        AN_CHECK_OK(big_read(s, 0, &took, &err), err);
    gate_free(&c.first);
    an_store_close(s);
}

/* ---- readers beside a writer see whole transactions ---------------------- */

#define BATCH 500

typedef struct writer_run {
    an_store *s;
    int rounds;
    atomic_int done;
    int failed;
    char msg[AN_ERR_MSG_MAX + 32];
} writer_run;

/* Version k of UPD/USDT: the same 1,000 keys, every value k. */
static void version_of(an_candle *v, size_t n, int k)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (an_candle){T0_MS + (int64_t)i * 60000, k, k, k, k, k, 0};
}

/* Each round: one new batch of GRO/USDT, then every UPD/USDT row rewritten. */
static void *run_writer(void *arg)
{
    writer_run *w = arg;
    an_candles grow = {0};
    an_test_series spec = an_test_series_1m(T0_MS, 3);
    an_test_series_make(&grow, (size_t)w->rounds * BATCH, &spec);
    an_candle upd[1000];
    for (int k = 1; k <= w->rounds && !w->failed; k++) {
        an_err err = {0};
        an_upsert_counts g = {0}, u = {0};
        version_of(upd, 1000, k);
        if (an_store_insert_ohlc(w->s, "GRO/USDT", "1m", grow.v + (size_t)(k - 1) * BATCH, BATCH,
                                 &g, &err) != AN_OK ||
            an_store_insert_ohlc(w->s, "UPD/USDT", "1m", upd, 1000, &u, &err) != AN_OK) {
            w->failed = 1;
            snprintf(w->msg, sizeof w->msg, "round %d: %s", k, err.msg);
        } else if (g.inserted != BATCH || u.inserted != (k == 1 ? 1000 : 0) ||
                   u.updated != (k == 1 ? 0 : 1000)) {
            w->failed = 1;
            snprintf(w->msg, sizeof w->msg,
                     "round %d: GRO/USDT inserted %" PRId64 " of %d; UPD/USDT inserted %" PRId64
                     ", updated %" PRId64,
                     k, g.inserted, BATCH, u.inserted, u.updated);
        }
    }
    an_candles_free(&grow);
    atomic_store(&w->done, 1);
    return NULL;
}

typedef struct reader_run {
    an_store *s;
    writer_run *w;
    int reads, bad;
    char msg[AN_ERR_MSG_MAX];
} reader_run;

/* One round of reads: which whole batches it saw, or why not. */
static int read_round(reader_run *r, size_t *grown)
{
    an_err err = {0};
    an_candles g = {0}, u = {0};
    an_series_info *list = NULL;
    size_t n = 0;
    int ok = 0;
    if (an_store_get_ohlc(r->s, "GRO/USDT", "1m", NULL, &g, &err) != AN_OK ||
        an_store_get_ohlc(r->s, "UPD/USDT", "1m", NULL, &u, &err) != AN_OK ||
        an_store_list_series(r->s, &list, &n, &err) != AN_OK) {
        snprintf(r->msg, sizeof r->msg, "%s", err.msg);
    } else if (g.n % BATCH || g.n < *grown) {
        snprintf(r->msg, sizeof r->msg, "GRO/USDT: %zu rows after %zu", g.n, *grown);
    } else if (u.n != 0 && u.n != 1000) {
        snprintf(r->msg, sizeof r->msg, "UPD/USDT: %zu rows of 1000", u.n);
    } else {
        ok = 1;
        for (size_t i = 1; i < u.n && ok; i++)
            if (u.v[i].close != u.v[0].close || u.v[i].volume != u.v[0].close) {
                snprintf(r->msg, sizeof r->msg, "UPD/USDT: row %zu is of version %g, row 0 of %g",
                         i, u.v[i].close, u.v[0].close);
                ok = 0;
            }
        /* the catalog is written in the same transaction as the rows */
        for (size_t i = 0; i < n && ok; i++)
            if (list[i].rows % (strcmp(list[i].symbol, "GRO/USDT") == 0 ? BATCH : 1000)) {
                snprintf(r->msg, sizeof r->msg,
                         "catalog: %s has %" PRId64 " rows (%zu series; GRO/USDT %zu rows, "
                         "UPD/USDT %zu read just before)",
                         list[i].symbol, list[i].rows, n, g.n, u.n);
                ok = 0;
            }
        *grown = g.n;
    }
    an_candles_free(&g);
    an_candles_free(&u);
    free(list);
    return ok;
}

static void *run_reader(void *arg)
{
    reader_run *r = arg;
    size_t grown = 0;
    while (!atomic_load(&r->w->done) && !r->bad) {
        r->reads++;
        r->bad += !read_round(r, &grown);
    }
    return NULL;
}

/* The analytics engine's embedded load (its own DuckDB connection) sees
 * whole writes too: every UPD/USDT close of one version, GRO/USDT in whole
 * batches. */
static int engine_round(reader_run *r, size_t *grown)
{
    an_err err = {0};
    an_engine_result res;
    int64_t *ts = NULL;
    double *cl = NULL;
    size_t n = 0;
    int ok = 0;
    if (an_engine_load_closes(r->s, "UPD/USDT", "1m", AN_LOAD_AUTO, INT64_MIN, INT64_MAX, &ts, &cl,
                              &n, &res, &err) != AN_OK) {
        snprintf(r->msg, sizeof r->msg, "engine: %.400s", err.msg);
    } else if (n != 0 && n != 1000) {
        snprintf(r->msg, sizeof r->msg, "engine: UPD/USDT %zu closes of 1000", n);
    } else {
        ok = 1;
        for (size_t i = 1; i < n && ok; i++)
            if (cl[i] != cl[0]) {
                snprintf(r->msg, sizeof r->msg, "engine: UPD/USDT close %zu of version %g, 0 of %g",
                         i, cl[i], cl[0]);
                ok = 0;
            }
    }
    free(ts);
    free(cl);
    ts = NULL;
    cl = NULL;
    if (ok && an_engine_load_closes(r->s, "GRO/USDT", "1m", AN_LOAD_AUTO, INT64_MIN, INT64_MAX, &ts,
                                    &cl, &n, &res, &err) != AN_OK) {
        snprintf(r->msg, sizeof r->msg, "engine: %.400s", err.msg);
        ok = 0;
    } else if (ok && (n % BATCH || n < *grown)) {
        snprintf(r->msg, sizeof r->msg, "engine: GRO/USDT %zu closes after %zu", n, *grown);
        ok = 0;
    } else if (ok) {
        *grown = n;
    }
    free(ts);
    free(cl);
    return ok;
}

static void *run_engine_reader(void *arg)
{
    reader_run *r = arg;
    size_t grown = 0;
    while (!atomic_load(&r->w->done) && !r->bad) {
        r->reads++;
        r->bad += !engine_round(r, &grown);
    }
    return NULL;
}

static void test_whole_transactions(void)
{
    an_store *s = open_readers("batches.duckdb", 3);
    /* make test's budget: 10 rounds (5 under ASan); make check-all: 60 */
    const char *all = getenv("AN_CHECK_ALL");
#ifdef __SANITIZE_ADDRESS__
    const int quick = 5;
#else
    const int quick = 10;
#endif
    writer_run w = {.s = s, .rounds = all && strcmp(all, "1") == 0 ? 60 : quick};
    atomic_init(&w.done, 0);
    reader_run r[4]; /* three store readers and the engine's */
    pthread_t tw, tr[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (reader_run){.s = s, .w = &w};
        pthread_create(&tr[i], NULL, i < 3 ? run_reader : run_engine_reader, &r[i]);
    }
    pthread_create(&tw, NULL, run_writer, &w);
    pthread_join(tw, NULL);
    int reads = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(tr[i], NULL);
        AN_CHECK_MSG(r[i].bad == 0, "reader %d, read %d: %s", i, r[i].reads, r[i].msg);
        reads += i < 3 ? r[i].reads : 0;
    }
    AN_CHECK_MSG(!w.failed, "the writer: %s", w.msg);
    printf("  # %d write rounds; 3 readers read %d times meanwhile, the engine %d\n", w.rounds,
           reads, r[3].reads);
    AN_CHECK(reads >= 3 && r[3].reads >= 1);
    an_series_info *list = NULL;
    size_t n = 0;
    an_err err = {0};
    AN_CHECK_OK(an_store_list_series(s, &list, &n, &err), err);
    AN_CHECK_INT(n, 2);
    for (size_t i = 0; i < n; i++)
        AN_CHECK_MSG(list[i].rows ==
                         (strcmp(list[i].symbol, "GRO/USDT") == 0 ? w.rounds * BATCH : 1000),
                     "catalog at the end: %s has %" PRId64 " rows", list[i].symbol, list[i].rows);
    free(list);
    an_store_close(s);
}

int main(void)
{
    an_log_set_level(AN_LOG_WARN);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/autonama-readers-test-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    AN_RUN(test_setting);
    AN_RUN(test_wait_ends_at_the_deadline);
    AN_RUN(test_reads_beside_a_write);
    AN_RUN(test_reads_beside_a_read);
    AN_RUN(test_deadline_interrupts_its_reader); /* the last on two_readers(): closes it */
    AN_RUN(test_whole_transactions);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", tmpdir);
    return AN_TEST_DONE();
}
