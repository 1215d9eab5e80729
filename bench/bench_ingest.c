/*
 * bench_ingest.c - rows/s of insert_ohlc_data, side by side with its
 * baselines in one run:
 *   PostgreSQL 15 (AUTONAMA_TEST_PG): ours, `psql \copy` of the same rows into
 *     the same table, and one INSERT statement per row (the seed's way);
 *   the TimescaleDB server (AUTONAMA_TEST_TS): ours and one INSERT per row
 *     (the PGlite test server cannot take COPY FROM STDIN).
 * Every measurement starts from an empty trading.ohlc_data; rounds are
 * interleaved and the best of each is kept (the machine is shared and noisy).
 * usage: bench_ingest [rows] [rounds]   (defaults 200000, 3)
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "series.h"
#include "store/store.h"

#define PER_ROW_ROWS 5000

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void make_series(an_candles *out, size_t n)
{
    an_test_series spec = {1577836800000LL /* 2020-01-01 */, 60000, 30000.0, 1000, 500, 100.0, 42};
    an_test_series_make(out, n, &spec);
}

static PGconn *connect_or_die(const char *ci)
{
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "bench_ingest: cannot connect: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static void sql_or_die(const char *ci, const char *sql)
{
    PGconn *c = connect_or_die(ci);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench_ingest: %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    PQfinish(c);
}

static long long count_rows(const char *ci)
{
    PGconn *c = connect_or_die(ci);
    PGresult *r = PQexec(c, "SELECT count(*) FROM trading.ohlc_data");
    long long n = PQresultStatus(r) == PGRES_TUPLES_OK ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(c);
    return n;
}

static void expect_rows(const char *ci, long long want, const char *what)
{
    long long got = count_rows(ci);
    if (got != want) {
        fprintf(stderr, "bench_ingest: %s left %lld rows, want %lld\n", what, got, want);
        exit(1);
    }
}

static void reset_schema(const char *ci, const char *mode)
{
    an_test_backend b = {.name = mode, .conninfo = ci};
    an_test_backend_reset(&b);
    an_store_close(an_test_backend_open(&b, 1));
}

static void empty_table(const char *ci)
{
    sql_or_die(ci, "TRUNCATE trading.ohlc_data, trading.ohlc_series");
}

static double run_ours(const char *ci, const char *mode, const an_candles *c)
{
    an_store_options o = {0};
    o.pg_conninfo = ci;
    o.mode = mode;
    o.pool_size = 1;
    an_store *s = NULL;
    an_err err = {0};
    if (an_store_open(&o, &s, &err) != AN_OK) {
        fprintf(stderr, "bench_ingest: %s\n", err.msg);
        exit(1);
    }
    an_upsert_counts counts;
    double t0 = now_s();
    if (an_store_insert_ohlc(s, "BEN/USDT", "1m", c->v, c->n, &counts, &err) != AN_OK) {
        fprintf(stderr, "bench_ingest: insert_ohlc_data: %s\n", err.msg);
        exit(1);
    }
    double dt = now_s() - t0;
    an_store_close(s);
    if (counts.inserted != (int64_t)c->n) {
        fprintf(stderr, "bench_ingest: inserted %lld, want %zu\n", (long long)counts.inserted,
                c->n);
        exit(1);
    }
    return dt;
}

/* The seed's way: one INSERT ... ON CONFLICT per row, in one transaction. */
static double run_per_row(const char *ci, const an_candles *c, size_t n)
{
    PGconn *pc = connect_or_die(ci);
    PQclear(PQexec(pc, "SET TIME ZONE 'UTC'"));
    double t0 = now_s();
    PQclear(PQexec(pc, "BEGIN"));
    for (size_t i = 0; i < n; i++) {
        char ts[32], o[32], h[32], l[32], cl[32], v[32];
        snprintf(ts, sizeof ts, "%lld", (long long)c->v[i].ts);
        snprintf(o, sizeof o, "%.17g", c->v[i].open);
        snprintf(h, sizeof h, "%.17g", c->v[i].high);
        snprintf(l, sizeof l, "%.17g", c->v[i].low);
        snprintf(cl, sizeof cl, "%.17g", c->v[i].close);
        snprintf(v, sizeof v, "%.17g", c->v[i].volume);
        const char *p[8] = {"BEN/USDT", "1m", ts, o, h, l, cl, v};
        PGresult *r = PQexecParams(
            pc,
            "INSERT INTO trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low,"
            " close, volume) VALUES ($1, $2, to_timestamp($3::bigint / 1000.0), $4, $5, $6, $7,"
            " $8) ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET open ="
            " excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,"
            " volume = excluded.volume",
            8, NULL, p, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            fprintf(stderr, "bench_ingest: per-row insert: %s", PQerrorMessage(pc));
            exit(1);
        }
        PQclear(r);
    }
    PQclear(PQexec(pc, "COMMIT"));
    double dt = now_s() - t0;
    PQfinish(pc);
    return dt;
}

static char csv_path[] = "/tmp/autonama-bench-XXXXXX.csv";

static void write_csv(const an_candles *c)
{
    int fd = mkstemps(csv_path, 4);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        perror("bench_ingest: csv");
        exit(1);
    }
    for (size_t i = 0; i < c->n; i++) {
        char ts[40];
        an_time_format(c->v[i].ts, ts, sizeof ts);
        fprintf(f, "BEN/USDT,1m,%s,%.17g,%.17g,%.17g,%.17g,%.17g\n", ts, c->v[i].open, c->v[i].high,
                c->v[i].low, c->v[i].close, c->v[i].volume);
    }
    fclose(f);
}

/* psql \copy of the CSV, timed around the psql process. */
static double run_copy(const char *ci)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "\\copy trading.ohlc_data (symbol, timeframe, \"timestamp\", open, high, low, close,"
             " volume) FROM '%s' WITH (FORMAT csv)",
             csv_path);
    double t0 = now_s();
    pid_t pid = fork();
    if (pid == 0) {
        /* the connection string (with its password) goes in as the dbname
         * argument: it never appears in our output */
        execlp("psql", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", ci, "-c", cmd,
               (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    double dt = now_s() - t0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench_ingest: psql \\copy failed\n");
        exit(1);
    }
    return dt;
}

static double best(double a, double b)
{
    return a < b ? a : b;
}

int main(int argc, char **argv)
{
    size_t rows = argc > 1 ? (size_t)atol(argv[1]) : 200000;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    const char *pg = getenv("AUTONAMA_TEST_PG"), *ts = getenv("AUTONAMA_TEST_TS");
    if (rows < PER_ROW_ROWS || rounds < 1) {
        fprintf(stderr, "usage: bench_ingest [rows >= %d] [rounds >= 1]\n", PER_ROW_ROWS);
        return 2;
    }
    an_candles c = {0};
    make_series(&c, rows);
    int failed = 0;
    printf("bench/ingest: %zu 1m candles into an empty trading.ohlc_data, best of %d rounds\n",
           rows, rounds);
    printf("%-14s %-38s %9s %9s %12s\n", "server", "method", "rows", "seconds", "rows/s");
    if (pg && *pg) {
        reset_schema(pg, "postgres");
        write_csv(&c);
        double t_ours = 1e9, t_copy = 1e9, t_row = 1e9;
        for (int r = 0; r < rounds; r++) {
            empty_table(pg);
            t_ours = best(t_ours, run_ours(pg, "postgres", &c));
            expect_rows(pg, (long long)rows, "insert_ohlc_data");
            empty_table(pg);
            t_copy = best(t_copy, run_copy(pg));
            expect_rows(pg, (long long)rows, "psql \\copy");
            empty_table(pg);
            t_row = best(t_row, run_per_row(pg, &c, PER_ROW_ROWS));
            expect_rows(pg, PER_ROW_ROWS, "per-row INSERT");
        }
        unlink(csv_path);
        double r_ours = (double)rows / t_ours, r_copy = (double)rows / t_copy,
               r_row = PER_ROW_ROWS / t_row;
        printf("%-14s %-38s %9zu %9.3f %12.0f\n", "PostgreSQL 15", "insert_ohlc_data (ours)", rows,
               t_ours, r_ours);
        printf("%-14s %-38s %9zu %9.3f %12.0f\n", "PostgreSQL 15", "psql \\copy (CSV)", rows,
               t_copy, r_copy);
        printf("%-14s %-38s %9d %9.3f %12.0f\n", "PostgreSQL 15", "one INSERT per row (seed)",
               PER_ROW_ROWS, t_row, r_row);
        printf("ratio PostgreSQL 15 ours / \\copy       = %6.2f  (target >= 0.7)  %s\n",
               r_ours / r_copy, r_ours / r_copy >= 0.7 ? "PASS" : "FAIL");
        printf("ratio PostgreSQL 15 ours / per-row     = %6.1f  (target >= 20)   %s\n",
               r_ours / r_row, r_ours / r_row >= 20 ? "PASS" : "FAIL");
        failed |= r_ours / r_copy < 0.7 || r_ours / r_row < 20;
    } else {
        printf("AUTONAMA_TEST_PG not set: PostgreSQL 15 skipped (scripts/run-bench sets it)\n");
    }
    if (ts && *ts) {
        reset_schema(ts, "timescaledb");
        double t_ours = 1e9, t_row = 1e9;
        for (int r = 0; r < rounds; r++) {
            empty_table(ts);
            t_ours = best(t_ours, run_ours(ts, "timescaledb", &c));
            expect_rows(ts, (long long)rows, "insert_ohlc_data");
            empty_table(ts);
            t_row = best(t_row, run_per_row(ts, &c, PER_ROW_ROWS));
            expect_rows(ts, PER_ROW_ROWS, "per-row INSERT");
        }
        double r_ours = (double)rows / t_ours, r_row = PER_ROW_ROWS / t_row;
        printf("%-14s %-38s %9zu %9.3f %12.0f\n", "TimescaleDB", "insert_ohlc_data (ours)", rows,
               t_ours, r_ours);
        printf("%-14s %-38s %9d %9.3f %12.0f\n", "TimescaleDB", "one INSERT per row (seed)",
               PER_ROW_ROWS, t_row, r_row);
        printf("%-14s %-38s\n", "TimescaleDB", "psql \\copy: n/a (PGlite dies on COPY FROM STDIN)");
        printf("ratio TimescaleDB ours / per-row       = %6.1f  (target >= 20)   %s\n",
               r_ours / r_row, r_ours / r_row >= 20 ? "PASS" : "FAIL");
        failed |= r_ours / r_row < 20;
        sql_or_die(ts, "TRUNCATE trading.ohlc_data, trading.ohlc_series");
    } else {
        printf("AUTONAMA_TEST_TS not set: TimescaleDB skipped (scripts/run-bench sets it)\n");
    }
    an_candles_free(&c);
    return failed;
}
