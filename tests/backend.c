/*
 * backend.c - the store suite's backend (see backend.h).
 */
#include "backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

int an_test_backend_init(an_test_backend *b, int argc, char **argv, const char *test)
{
    memset(b, 0, sizeof *b);
    b->name = argc > 1 ? argv[1] : "duckdb";
    snprintf(b->duck_path, sizeof b->duck_path, "/tmp/autonama-test-%s-%d.duckdb", test,
             (int)getpid());
    if (strcmp(b->name, "duckdb") == 0)
        return 0;
    if (strcmp(b->name, "postgres") != 0 && strcmp(b->name, "timescaledb") != 0) {
        fprintf(stderr, "usage: %s duckdb|postgres|timescaledb\n", test);
        return 2;
    }
    const char *var = strcmp(b->name, "postgres") == 0 ? "AUTONAMA_TEST_PG" : "AUTONAMA_TEST_TS";
    b->conninfo = getenv(var);
    if (!b->conninfo || !*b->conninfo) {
        fprintf(stderr, "%s is not set: start the servers with scripts/test-services start\n", var);
        return 1;
    }
    return 0;
}

void an_test_backend_done(const an_test_backend *b)
{
    if (strcmp(b->name, "duckdb") != 0)
        return;
    char wal[300];
    snprintf(wal, sizeof wal, "%s.wal", b->duck_path);
    unlink(b->duck_path);
    unlink(wal);
}

void an_test_backend_reset(an_test_backend *b)
{
    if (strcmp(b->name, "duckdb") == 0) {
        an_test_backend_done(b);
        return;
    }
    PGconn *c = PQconnectdb(b->conninfo);
    PGresult *r = PQexec(c, "SET client_min_messages = warning;"
                            "DROP SCHEMA IF EXISTS trading CASCADE;"
                            "DROP SCHEMA IF EXISTS analytics CASCADE;"
                            "DROP SCHEMA IF EXISTS optimization CASCADE;"
                            "DROP SCHEMA IF EXISTS autonama CASCADE;");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "reset of %s failed: %s\n", b->name, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    PQfinish(c);
}

an_store *an_test_backend_open_raw(const an_test_backend *b, int pool_size)
{
    an_store_options opt = {.pool_size = pool_size, .connect_timeout_s = 10, .mode = b->name};
    if (strcmp(b->name, "duckdb") == 0)
        opt.duckdb_path = b->duck_path;
    else
        opt.pg_conninfo = b->conninfo;
    an_store *s = NULL;
    an_err err = {0};
    if (an_store_open(&opt, &s, &err) != AN_OK) {
        fprintf(stderr, "cannot open the %s store: %s\n", b->name, err.msg);
        exit(1);
    }
    return s;
}

an_store *an_test_backend_open(const an_test_backend *b, int pool_size)
{
    an_store *s = an_test_backend_open_raw(b, pool_size);
    an_err err = {0};
    if (an_store_migrate(s, NULL, &err) != AN_OK) {
        fprintf(stderr, "cannot migrate the %s store: %s\n", b->name, err.msg);
        exit(1);
    }
    return s;
}
