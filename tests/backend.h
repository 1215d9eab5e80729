/*
 * backend.h - the store suite's backend, shared by its tests (run once per
 * backend: `test_x duckdb | postgres | timescaledb`): the name from argv,
 * the connection string from AUTONAMA_TEST_PG / AUTONAMA_TEST_TS (what
 * scripts/test-services start prints), a fresh start (every schema dropped,
 * or the DuckDB file removed) and stores opened on it. Main thread; plain
 * data.
 */
#ifndef AN_TEST_BACKEND_H
#define AN_TEST_BACKEND_H

#include "store/store.h"

typedef struct an_test_backend {
    const char *name;     /* "duckdb", "postgres" or "timescaledb" */
    const char *conninfo; /* PostgreSQL backends */
    char duck_path[256];  /* DuckDB: /tmp/autonama-test-<test>-<pid>.duckdb */
} an_test_backend;

/* Reads the backend from argv[1] (duckdb when none) and its connection
 * string; 0 when usable, else the exit status (the reason printed). */
int an_test_backend_init(an_test_backend *b, int argc, char **argv, const char *test);

/* Drops every schema autonama made (PostgreSQL backends) or removes the
 * DuckDB file and its WAL; exits when the server cannot be reached. */
void an_test_backend_reset(an_test_backend *b);

/* A store on the backend, migrated; exits when it cannot be opened. */
an_store *an_test_backend_open(const an_test_backend *b, int pool_size);

/* The same, not migrated (for tests of the migrations themselves). */
an_store *an_test_backend_open_raw(const an_test_backend *b, int pool_size);

/* Removes the DuckDB file and its WAL (nothing on the PostgreSQL backends). */
void an_test_backend_done(const an_test_backend *b);

#endif
