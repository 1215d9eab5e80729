/*
 * config.h - the configuration, as one table (config.c): each setting has a
 * name, a type, a default, bounds, its environment variable (the seed's names
 * first), its command-line flag and a help line. The same table drives the
 * environment, the flags, validation and `autonama --help`.
 *
 * Flags override the environment, which overrides the defaults. Values are
 * validated and converted to their types once, on load (lists go through the
 * one tokenizer, core/list.h); a bad one gives AN_ERR_INVALID naming the variable or
 * flag and the value (secrets are never echoed). An an_config is plain data
 * owned by the caller; an_config_free releases it. Not thread-safe while
 * loading; read-only afterwards.
 */
#ifndef AN_CORE_CONFIG_H
#define AN_CORE_CONFIG_H

#include <stddef.h>

#include "core/error.h"
#include "core/indspec.h"

typedef enum an_cfg_key {
    AN_CFG_POSTGRES_SERVER = 0,
    AN_CFG_POSTGRES_PORT,
    AN_CFG_POSTGRES_USER,
    AN_CFG_POSTGRES_PASSWORD,
    AN_CFG_POSTGRES_DB,
    AN_CFG_POSTGRES_SSLMODE,
    AN_CFG_DUCKDB_PATH,
    AN_CFG_DUCKDB_READERS,
    AN_CFG_STORE,
    AN_CFG_PG_POOL_SIZE,
    AN_CFG_CONNECT_TIMEOUT,
    AN_CFG_COMPRESS_AFTER,
    AN_CFG_RETENTION,
    AN_CFG_BINANCE_BASE_URL,
    AN_CFG_SYMBOLS,
    AN_CFG_TIMEFRAME,
    AN_CFG_HTTP_ADDR,
    AN_CFG_API_KEY,
    AN_CFG_FRESHNESS_MAX_AGE,
    AN_CFG_LOG_LEVEL,
    AN_CFG_INDICATORS,
    AN_CFG_INDICATOR_TIMEFRAMES,
    AN_CFG_LOAD_PATH,
    AN_CFG_INGEST_PARALLEL,
    AN_CFG_INGEST_LOOKBACK,
    AN_CFG_BINANCE_WEIGHT_BUDGET,
    AN_CFG_BINANCE_TIMEOUT_MS,
    AN_CFG_BINANCE_MAX_TRIES,
    AN_CFG_BINANCE_BACKOFF_MS,
    AN_CFG_FORCE,
    AN_CFG_CATEGORIES,
    AN_CFG_CRYPTO_PROVIDER,
    AN_CFG_CRYPTO_SOURCE,
    AN_CFG_FOREX_PROVIDER,
    AN_CFG_FOREX_SOURCE,
    AN_CFG_FOREX_SYMBOLS,
    AN_CFG_STOCK_PROVIDER,
    AN_CFG_STOCK_SOURCE,
    AN_CFG_STOCK_SYMBOLS,
    AN_CFG_COMMODITY_PROVIDER,
    AN_CFG_COMMODITY_SOURCE,
    AN_CFG_COMMODITY_SYMBOLS,
    AN_CFG_HTTP_THREADS,
    AN_CFG_HTTP_WORKERS,
    AN_CFG_HTTP_MAX_CONNECTIONS,
    AN_CFG_HTTP_TIMEOUT,
    AN_CFG_HTTP_MAX_URL,
    AN_CFG_HTTP_MAX_BODY,
    AN_CFG_HTTP_MAX_HEADERS,
    AN_CFG_HTTP_MAX_CONNECTIONS_PER_CLIENT,
    AN_CFG_HTTP_REQUEST_DEADLINE,
    AN_CFG_HTTP_CORS_ORIGIN,
    AN_CFG_HTTP_CACHE_TTL_MS,
    AN_CFG_HTTP_CACHE_LISTEN,
    AN_CFG_HTTP_BLOCK_CACHE_MB,
    AN_CFG_HTTP_BLOCK_WARM,
    AN_CFG_HTTP_MAX_LIMIT,
    AN_CFG_HTTP_QUERY_TIMEOUT,
    AN_CFG_HTTP_HEAVY_MAX,
    AN_CFG_HTTP_HEAVY_LIMIT,
    AN_CFG_BEAT_UPDATE_INTERVAL,
    AN_CFG_BEAT_UPDATE_SYMBOLS,
    AN_CFG_BEAT_INDICATORS_INTERVAL,
    AN_CFG_BEAT_INDICATORS_SYMBOLS,
    AN_CFG_BEAT_HEALTH_INTERVAL,
    AN_CFG_WORKERS,
    AN_CFG_SHUTDOWN_GRACE,
    AN_CFG_FALLBACK,
    AN_CFG_FALLBACK_PATH,
    AN_CFG_INSTANCE,
    AN_CFG_TASK_STALE_AFTER,
    AN_CFG_FROM,
    AN_CFG_MOVE,
    AN_CFG_LIMIT,
    /* realtime: Binance's kline streams under serve (tasks/realtime.c) */
    AN_CFG_REALTIME,
    AN_CFG_REALTIME_SYMBOLS,
    AN_CFG_REALTIME_TIMEFRAMES,
    AN_CFG_REALTIME_FLUSH_MS,
    AN_CFG_REALTIME_TICK_MS,
    AN_CFG_BINANCE_WS_URL,
    AN_CFG_REALTIME_IDLE_MS,
    AN_CFG_REALTIME_MAX_AGE,
    AN_CFG_REALTIME_BACKOFF_MS,
    AN_CFG_REALTIME_STREAMS_PER_CONN,
    AN_CFG_HTTP_MAX_STREAMS,
    AN_CFG_HTTP_STREAM_QUEUE,
    /* command options (flags only) */
    AN_CFG_FORMAT,
    AN_CFG_SYMBOL,
    AN_CFG_SINCE,
    AN_CFG_UNTIL,
    AN_CFG__COUNT
} an_cfg_key;

/* Where a setting's value came from; a later origin overrides an earlier. */
typedef enum an_cfg_origin {
    AN_CFG_ORIGIN_DEFAULT = 0,
    AN_CFG_ORIGIN_ENV,
    AN_CFG_ORIGIN_FLAG
} an_cfg_origin;

/* Every value is validated and converted once, at load: the accessors below
 * return these typed fields. (val[] stays writable for the task layer's
 * scratch copies, which override a list's text; the list accessors read
 * val[], so they see it.) */
typedef struct an_config {
    char *val[AN_CFG__COUNT];          /* the text; NULL when unset and without default */
    an_cfg_origin from[AN_CFG__COUNT]; /* where each value came from */
    long num[AN_CFG__COUNT];           /* integers, booleans (0/1), log levels */
    an_ind_set indicators;             /* AUTONAMA_INDICATORS / --indicators, parsed */
    char **args;                       /* positional arguments after the command */
    int nargs;
} an_config;

/* Loads defaults, then the environment, then flags from argv[0..argc).
 * Positional arguments are collected into cfg->args. */
an_code an_config_load(an_config *cfg, int argc, char **argv, an_err *err);
void an_config_free(an_config *cfg);

const char *an_config_get(const an_config *cfg, an_cfg_key key);
/* An integer, boolean or log-level setting as parsed at load; 0 when unset. */
long an_config_int(const an_config *cfg, an_cfg_key key);
/* 1 when the setting came from the environment or a flag. */
int an_config_is_set(const an_config *cfg, an_cfg_key key);
an_cfg_origin an_config_origin(const an_config *cfg, an_cfg_key key);

/* A boolean setting ("true"/"1"). */
int an_config_bool(const an_config *cfg, an_cfg_key key);

/* AUTONAMA_INDICATORS as parsed (and range-checked) at load. */
const an_ind_set *an_config_indicators(const an_config *cfg);

/* 1 when a PostgreSQL server is configured (POSTGRES_SERVER set). */
int an_config_has_postgres(const an_config *cfg);

/* Builds a libpq connection string from the POSTGRES_* settings (values
 * quoted). Returns a malloc'd string (contains the password: never log it). */
char *an_config_pg_conninfo(const an_config *cfg);

/* Splits AUTONAMA_SYMBOLS / --symbols ("BTC/USDT,ETH/USDT") into a malloc'd
 * array of malloc'd strings, each validated; free with an_config_free_list. */
an_code an_config_symbols(const an_config *cfg, char ***out, size_t *n, an_err *err);
void an_config_free_list(char **list, size_t n);

/* The categories to ingest (AUTONAMA_CATEGORIES / --categories: crypto,
 * forex, stock, commodity), as a list like an_config_symbols. */
an_code an_config_categories(const an_config *cfg, char ***out, size_t *n, an_err *err);

/* A category's provider, its source (a URL or a directory) and its symbols.
 * crypto: AUTONAMA_CRYPTO_PROVIDER (binance), AUTONAMA_CRYPTO_SOURCE (default
 * BINANCE_BASE_URL), AUTONAMA_SYMBOLS; forex, stock, commodity:
 * AUTONAMA_<CATEGORY>_PROVIDER, _SOURCE and _SYMBOLS. A --symbols flag
 * overrides the symbols of every category of the run. AN_ERR_INVALID naming
 * the variables when a category has no provider or no symbols. */
typedef struct an_category_config {
    const char *provider, *source; /* owned by cfg */
    char **symbols;                /* free with an_config_free_list */
    size_t n_symbols;
} an_category_config;
an_code an_config_category(const an_config *cfg, const char *category, an_category_config *out,
                           an_err *err);

/* The indicator timeframes: --timeframe when given, else
 * AUTONAMA_INDICATOR_TIMEFRAMES / --timeframes ("1m,1h,1d"). */
an_code an_config_indicator_timeframes(const an_config *cfg, char ***out, size_t *n, an_err *err);

/* Any comma-separated list setting split like an_config_symbols (symbols
 * validated when the setting holds symbols). An unset setting gives n = 0. */
an_code an_config_list(const an_config *cfg, an_cfg_key key, char ***out, size_t *n, an_err *err);

/* Prints the settings table (name, env, flag, default, help) to f. */
void an_config_print_help(void *file);

#endif
