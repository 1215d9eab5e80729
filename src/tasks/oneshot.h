/*
 * oneshot.h - the command line's one-shot data moves, as library calls:
 * import candle files, export one series as CSV, sync a DuckDB file into
 * PostgreSQL. main.c only parses, calls these and prints.
 *
 * Threads: the caller's (the command line's main thread); each call opens
 * and closes its own store.
 */
#ifndef AN_TASKS_ONESHOT_H
#define AN_TASKS_ONESHOT_H

#include <jansson.h>
#include <stdio.h>

#include "core/config.h"
#include "core/error.h"

/* Imports the files into the configured store (its schema must exist). A
 * file's timeframe comes from its name or --timeframe (never from
 * AUTONAMA_TIMEFRAME). *result (new reference) is the seed's shape with
 * files[] (each: status, and error when it failed); AN_OK once the store
 * opened, whatever the files did. */
an_code an_oneshot_import(const an_config *cfg, char *const *paths, int n, json_t **result,
                          an_err *err);

/* One series (--symbol, --timeframe, --since, --until) as CSV on out: the
 * open time in ms, then open, high, low, close, volume. */
an_code an_oneshot_export(const an_config *cfg, FILE *out, an_err *err);

/* A DuckDB store (--from, default the fallback file, then moved) into
 * PostgreSQL; *result the seed's shape with what moved. */
an_code an_oneshot_sync(const an_config *cfg, json_t **result, an_err *err);

#endif
