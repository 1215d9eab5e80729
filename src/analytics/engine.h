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
#include "store/store.h"

typedef enum an_ind_kind {
    AN_IND_SMA,
    AN_IND_EMA,
    AN_IND_RSI,
    AN_IND_BBANDS,
    AN_IND_MACD
} an_ind_kind;

typedef struct an_ind_spec {
    an_ind_kind kind;
    int p[3];    /* periods: sma/ema/rsi p[0]; bbands p[0]; macd fast, slow, signal */
    double d[2]; /* bbands deviations up, down */
} an_ind_spec;

#define AN_IND_MAX 32

typedef struct an_ind_set {
    an_ind_spec v[AN_IND_MAX];
    int n;
    char text[256]; /* canonical form, e.g. "sma:20,rsi:14,bbands:20:2:2" */
} an_ind_set;

/* The default set: SMA 20/50/200, EMA 12/26, RSI 14, BBANDS 20,2, MACD 12/26/9. */
#define AN_IND_DEFAULT "sma:20,sma:50,sma:200,ema:12,ema:26,rsi:14,bbands:20:2,macd:12:26:9"

/* Parses "sma:20,rsi:14,bbands:20:2[:2],macd:12:26:9,ema:12"; a clear error
 * names the bad item. */
an_code an_ind_set_parse(const char *s, an_ind_set *out, an_err *err);

/* The output names of one spec (1, or 3 for bbands and macd), as stored in
 * analytics.indicators: sma_20, bb_upper_20, macd_signal, macd_5_35_5, ... */
void an_ind_spec_names(const an_ind_spec *sp, char (*names)[AN_INDICATOR_NAME_MAX]);

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

/* Computes the set over closes[0..n) into names/values in memory (no store):
 * the engine's own kernel, for tests and benchmarks. *out_names and *out
 * (n_outputs arrays of n values, NAN in the warm-up) are malloc'd; free with
 * an_engine_free_outputs. */
an_code an_engine_compute(const an_ind_set *set, const double *closes, size_t n,
                          char (**out_names)[AN_INDICATOR_NAME_MAX], double ***out, int *n_outputs,
                          an_err *err);
void an_engine_free_outputs(char (*names)[AN_INDICATOR_NAME_MAX], double **out, int n_outputs);

#endif
