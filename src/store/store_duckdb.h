/*
 * store_duckdb.h - for the analytics engine only: the DuckDB database behind
 * a duckdb-mode store, so the engine queries the store's file directly
 * through a connection of its own (duckdb_connect) instead of opening the
 * file a second time, which DuckDB would allow and which can corrupt it.
 */
#ifndef AN_STORE_DUCKDB_H
#define AN_STORE_DUCKDB_H

#include <duckdb.h>

#include "store/store.h"

/* The store's database (owned by the store: do not close it), or NULL when
 * the store is not in duckdb mode. */
duckdb_database an_duckdb_store_database(an_store *s);

#endif
