/*
 * engine.h - the DuckDB analytical engine (the seed's DuckDBAnalyticalEngine
 * and calculate_indicators_for_symbol): candles go from the store into
 * DuckDB, indicators are computed over DuckDB's data chunks with TA-Lib's
 * exact definitions (indicators.h), and only new or changed indicator rows
 * are written back to analytics.indicators.
 *
 * How candles reach DuckDB, reported as load_path:
 *   embedded  the DuckDB store: the engine queries the store's own database
 *   direct    PostgreSQL/TimescaleDB through DuckDB's postgres extension
 *             (ATTACH ... (TYPE postgres, READ_ONLY) + postgres_query, so the
 *             WHERE clause runs on the server and TimescaleDB excludes chunks)
 *   copy      PostgreSQL/TimescaleDB through libpq COPY (SELECT ...) TO STDOUT
 *             (FORMAT binary), streamed into a DuckDB appender
 * Each run opens its own in-memory DuckDB (PostgreSQL modes) or connection
 * (DuckDB mode); runs for different series may go in parallel.
 */
#ifndef AN_ANALYTICS_ENGINE_H
#define AN_ANALYTICS_ENGINE_H

#include <stdint.h>

#include "core/error.h"
#include "core/indspec.h" /* the indicator specs and their parser */
#include "store/store.h"

typedef enum an_load_pref { AN_LOAD_AUTO = 0, AN_LOAD_DIRECT, AN_LOAD_COPY } an_load_pref;

an_code an_load_pref_parse(const char *s, an_load_pref *out, an_err *err);

typedef struct an_engine_result {
    char load_path[12];        /* "embedded", "direct" or "copy" */
    char source[16];           /* "ohlc_data", "ohlc_1h" or "ohlc_1d" */
    char fallback_reason[256]; /* why direct was not used, when auto fell back */
    int64_t candles;           /* candles read */
    int64_t computed;          /* indicator values computed */
    int64_t sent;              /* rows sent to the store */
    an_upsert_counts written;
    int full; /* 1: history was (re)written, 0: only new rows */
    double seconds;
} an_engine_result;

/* Computes the set for (symbol, timeframe) from the whole stored series (a
 * fixed anchor: EMA, RSI and MACD depend on all history) and writes what is
 * new or changed since the last run. The source is trading.ohlc_data for the
 * timeframe, or, when that holds none and timeframe is 1h or 1d, the rollup
 * of the 1m candles. A series with no candles is not an error: candles = 0. */
an_code an_engine_run(an_store *s, const char *symbol, const char *timeframe, const an_ind_set *set,
                      an_load_pref pref, an_engine_result *res, an_err *err);

/* One series' (time, close) pairs, oldest first, read the way an_engine_run
 * reads them (the same source choice and load paths: embedded on DuckDB;
 * direct, then COPY, or as pref says, on PostgreSQL/TimescaleDB), kept to
 * [since_ms, until_ms). res->load_path, res->source and res->candles say
 * what was read; *ts and *close are malloc'd (the caller frees them, also
 * when *n is 0). The optimizer's loader. */
an_code an_engine_load_closes(an_store *s, const char *symbol, const char *timeframe,
                              an_load_pref pref, int64_t since_ms, int64_t until_ms, int64_t **ts,
                              double **close, size_t *n, an_engine_result *res, an_err *err);

/* Computes the set over closes[0..n) into names/values in memory (no store):
 * the engine's own kernel, for tests and benchmarks. *out_names and *out
 * (n_outputs arrays of n values, NAN in the warm-up) are malloc'd; free with
 * an_engine_free_outputs. */
an_code an_engine_compute(const an_ind_set *set, const double *closes, size_t n,
                          char (**out_names)[AN_INDICATOR_NAME_MAX], double ***out, int *n_outputs,
                          an_err *err);
void an_engine_free_outputs(char (*names)[AN_INDICATOR_NAME_MAX], double **out, int n_outputs);

#endif
