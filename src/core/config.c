/*
 * config.c - the configuration table and its loader (see config.h). Owns the
 * table (one designated entry per an_cfg_key, checked at compile time) and
 * the parsing: each value is validated and converted once, at load, into the
 * an_config's typed fields. Called by main.c's thread before any other
 * thread starts; the an_config is read-only afterwards.
 */
#include "core/config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/list.h"
#include "core/log.h"
#include "core/market.h"

typedef enum {
    T_STR,
    T_INT,
    T_SECRET,
    T_ENUM,
    T_SYMBOLS,
    T_TIMEFRAME,
    T_TIMEFRAMES,
    T_ADDR,
    T_LEVEL,
    T_BOOL,
    T_ENUMLIST,
    T_INDICATORS
} ctype;

typedef struct cdef {
    const char *env;  /* NULL: flag only */
    const char *flag; /* without the leading "--" */
    ctype type;
    const char *def;
    long min, max;       /* T_INT bounds */
    const char *choices; /* T_ENUM: "a|b|c" */
    const char *help;
} cdef;

static const cdef table[] = {
    [AN_CFG_POSTGRES_SERVER] =
        {.env = "POSTGRES_SERVER",
         .flag = "pg-server",
         .type = T_STR,
         .help = "PostgreSQL/TimescaleDB host; unset means the embedded DuckDB store"},
    [AN_CFG_POSTGRES_PORT] = {.env = "POSTGRES_PORT",
                              .flag = "pg-port",
                              .type = T_INT,
                              .def = "5432",
                              .min = 1,
                              .max = 65535,
                              .help = "PostgreSQL port"},
    [AN_CFG_POSTGRES_USER] = {.env = "POSTGRES_USER",
                              .flag = "pg-user",
                              .type = T_STR,
                              .def = "postgres",
                              .help = "PostgreSQL user"},
    [AN_CFG_POSTGRES_PASSWORD] = {.env = "POSTGRES_PASSWORD",
                                  .type = T_SECRET,
                                  .help = "PostgreSQL password (environment only; never logged)"},
    [AN_CFG_POSTGRES_DB] = {.env = "POSTGRES_DB",
                            .flag = "pg-db",
                            .type = T_STR,
                            .def = "autonama",
                            .help = "PostgreSQL database"},
    [AN_CFG_POSTGRES_SSLMODE] = {.env = "POSTGRES_SSLMODE",
                                 .flag = "pg-sslmode",
                                 .type = T_ENUM,
                                 .def = "prefer",
                                 .choices = "disable|allow|prefer|require|verify-ca|verify-full",
                                 .help = "libpq sslmode"},
    [AN_CFG_DUCKDB_PATH] = {.env = "DUCKDB_PATH",
                            .flag = "duckdb-path",
                            .type = T_STR,
                            .def = "data/financial_data.duckdb",
                            .help = "DuckDB file: the embedded store and the fallback"},
    [AN_CFG_STORE] =
        {.env = "AUTONAMA_STORE",
         .flag = "store",
         .type = T_ENUM,
         .def = "auto",
         .choices = "auto|timescaledb|postgres|duckdb",
         .help =
             "store mode; auto = TimescaleDB/PostgreSQL when POSTGRES_SERVER is set, else DuckDB"},
    [AN_CFG_PG_POOL_SIZE] = {.env = "AUTONAMA_PG_POOL_SIZE",
                             .flag = "pg-pool-size",
                             .type = T_INT,
                             .def = "4",
                             .min = 1,
                             .max = 64,
                             .help = "PostgreSQL connections in the pool"},
    [AN_CFG_CONNECT_TIMEOUT] = {.env = "AUTONAMA_CONNECT_TIMEOUT",
                                .flag = "connect-timeout",
                                .type = T_INT,
                                .def = "10",
                                .min = 1,
                                .max = 300,
                                .help = "seconds to wait for a database connection"},
    [AN_CFG_COMPRESS_AFTER] =
        {.env = "AUTONAMA_COMPRESS_AFTER",
         .flag = "compress-after",
         .type = T_STR,
         .def = "30 days",
         .help = "TimescaleDB: compress candle chunks older than this interval (empty: off)"},
    [AN_CFG_RETENTION] =
        {.env = "AUTONAMA_RETENTION",
         .flag = "retention",
         .type = T_STR,
         .def = "",
         .help =
             "TimescaleDB: drop candle chunks older than this interval (empty: off, the default)"},
    [AN_CFG_BINANCE_BASE_URL] = {.env = "BINANCE_BASE_URL",
                                 .flag = "binance-base-url",
                                 .type = T_STR,
                                 .def = "https://api.binance.com",
                                 .help = "Binance REST base URL"},
    [AN_CFG_SYMBOLS] = {.env = "AUTONAMA_SYMBOLS",
                        .flag = "symbols",
                        .type = T_SYMBOLS,
                        .def = "BTC/USDT,ETH/USDT,ADA/USDT,BNB/USDT,SOL/USDT",
                        .help = "comma-separated symbols (BASE/QUOTE)"},
    [AN_CFG_TIMEFRAME] = {.env = "AUTONAMA_TIMEFRAME",
                          .flag = "timeframe",
                          .type = T_TIMEFRAME,
                          .def = "1m",
                          .help = "candle timeframe ingested and checked for freshness"},
    [AN_CFG_HTTP_ADDR] = {.env = "AUTONAMA_HTTP_ADDR",
                          .flag = "http-addr",
                          .type = T_ADDR,
                          .def = "127.0.0.1:8000",
                          .help = "HTTP listen address host:port"},
    [AN_CFG_API_KEY] = {.env = "AUTONAMA_API_KEY",
                        .type = T_SECRET,
                        .help = "API key for POST routes (environment only; never logged)"},
    [AN_CFG_FRESHNESS_MAX_AGE] =
        {.env = "AUTONAMA_FRESHNESS_MAX_AGE",
         .flag = "max-age",
         .type = T_INT,
         .def = "3600",
         .min = 1,
         .max = 10000000000L,
         .help = "health: seconds after which a symbol's newest candle is stale"},
    [AN_CFG_LOG_LEVEL] = {.env = "AUTONAMA_LOG_LEVEL",
                          .flag = "log-level",
                          .type = T_LEVEL,
                          .def = "info",
                          .help = "debug|info|warn|error|off"},
    [AN_CFG_INDICATORS] =
        {.env = "AUTONAMA_INDICATORS",
         .flag = "indicators",
         .type = T_INDICATORS,
         .def = "sma:20,sma:50,sma:200,ema:12,ema:26,rsi:14,bbands:20:2,macd:12:26:9",
         .help = "indicators to calculate (sma:N, ema:N, rsi:N, bbands:N:DEV, macd:F:S:SIG)"},
    [AN_CFG_INDICATOR_TIMEFRAMES] =
        {.env = "AUTONAMA_INDICATOR_TIMEFRAMES",
         .flag = "timeframes",
         .type = T_TIMEFRAMES,
         .def = "1m,1h,1d",
         .help = "timeframes the indicators task covers (1h/1d from the rollups when not stored)"},
    [AN_CFG_LOAD_PATH] =
        {.env = "AUTONAMA_LOAD_PATH",
         .flag = "load-path",
         .type = T_ENUM,
         .def = "auto",
         .choices = "auto|direct|copy",
         .help = "how DuckDB reads PostgreSQL: the postgres extension (direct) or libpq COPY"},
    [AN_CFG_INGEST_PARALLEL] = {.env = "AUTONAMA_INGEST_PARALLEL",
                                .flag = "parallel",
                                .type = T_INT,
                                .def = "3",
                                .min = 1,
                                .max = 16,
                                .help = "ingest: symbols fetched at once"},
    [AN_CFG_INGEST_LOOKBACK] =
        {.env = "AUTONAMA_INGEST_LOOKBACK",
         .flag = "lookback",
         .type = T_INT,
         .def = "1000",
         .min = 1,
         .max = 100000000,
         .help = "ingest: candles fetched for a symbol with none stored (without --since)"},
    [AN_CFG_BINANCE_WEIGHT_BUDGET] =
        {.env = "AUTONAMA_BINANCE_WEIGHT_BUDGET",
         .flag = "weight-budget",
         .type = T_INT,
         .def = "6000",
         .min = 10,
         .max = 1000000,
         .help = "Binance request weight per minute to stay under (10% headroom)"},
    [AN_CFG_BINANCE_TIMEOUT_MS] = {.env = "AUTONAMA_BINANCE_TIMEOUT_MS",
                                   .flag = "http-timeout-ms",
                                   .type = T_INT,
                                   .def = "10000",
                                   .min = 100,
                                   .max = 600000,
                                   .help = "Binance: timeout of one request"},
    [AN_CFG_BINANCE_MAX_TRIES] = {.env = "AUTONAMA_BINANCE_MAX_TRIES",
                                  .flag = "max-tries",
                                  .type = T_INT,
                                  .def = "10",
                                  .min = 1,
                                  .max = 100,
                                  .help = "Binance: tries per request before a symbol is given up"},
    [AN_CFG_BINANCE_BACKOFF_MS] = {.env = "AUTONAMA_BINANCE_BACKOFF_MS",
                                   .flag = "backoff-ms",
                                   .type = T_INT,
                                   .def = "250",
                                   .min = 1,
                                   .max = 60000,
                                   .help = "Binance: first retry delay (doubles, with jitter)"},
    [AN_CFG_FORCE] = {.flag = "force",
                      .type = T_BOOL,
                      .def = "false",
                      .help = "ingest: refetch and rewrite [--since, --until) even where fresh"},
    [AN_CFG_CATEGORIES] = {.env = "AUTONAMA_CATEGORIES",
                           .flag = "categories",
                           .type = T_ENUMLIST,
                           .def = "crypto",
                           .choices = "crypto|forex|stock|commodity",
                           .help = "ingest: the categories to update (comma-separated)"},
    [AN_CFG_CRYPTO_PROVIDER] = {.env = "AUTONAMA_CRYPTO_PROVIDER",
                                .flag = "crypto-provider",
                                .type = T_STR,
                                .def = "binance",
                                .help = "crypto: the provider (binance, files)"},
    [AN_CFG_CRYPTO_SOURCE] =
        {.env = "AUTONAMA_CRYPTO_SOURCE",
         .flag = "crypto-source",
         .type = T_STR,
         .help =
             "crypto: where the provider reads (default BINANCE_BASE_URL; a directory for files)"},
    [AN_CFG_FOREX_PROVIDER] = {.env = "AUTONAMA_FOREX_PROVIDER",
                               .flag = "forex-provider",
                               .type = T_STR,
                               .help = "forex: the provider (e.g. files)"},
    [AN_CFG_FOREX_SOURCE] = {.env = "AUTONAMA_FOREX_SOURCE",
                             .flag = "forex-source",
                             .type = T_STR,
                             .help = "forex: where the provider reads (a URL, a directory)"},
    [AN_CFG_FOREX_SYMBOLS] = {.env = "AUTONAMA_FOREX_SYMBOLS",
                              .flag = "forex-symbols",
                              .type = T_SYMBOLS,
                              .help = "forex: symbols (BASE/QUOTE, e.g. EUR/USD)"},
    [AN_CFG_STOCK_PROVIDER] = {.env = "AUTONAMA_STOCK_PROVIDER",
                               .flag = "stock-provider",
                               .type = T_STR,
                               .help = "stock: the provider"},
    [AN_CFG_STOCK_SOURCE] = {.env = "AUTONAMA_STOCK_SOURCE",
                             .flag = "stock-source",
                             .type = T_STR,
                             .help = "stock: where the provider reads"},
    [AN_CFG_STOCK_SYMBOLS] = {.env = "AUTONAMA_STOCK_SYMBOLS",
                              .flag = "stock-symbols",
                              .type = T_SYMBOLS,
                              .help = "stock: symbols (e.g. AAPL/USD)"},
    [AN_CFG_COMMODITY_PROVIDER] = {.env = "AUTONAMA_COMMODITY_PROVIDER",
                                   .flag = "commodity-provider",
                                   .type = T_STR,
                                   .help = "commodity: the provider"},
    [AN_CFG_COMMODITY_SOURCE] = {.env = "AUTONAMA_COMMODITY_SOURCE",
                                 .flag = "commodity-source",
                                 .type = T_STR,
                                 .help = "commodity: where the provider reads"},
    [AN_CFG_COMMODITY_SYMBOLS] = {.env = "AUTONAMA_COMMODITY_SYMBOLS",
                                  .flag = "commodity-symbols",
                                  .type = T_SYMBOLS,
                                  .help = "commodity: symbols (e.g. XAU/USD)"},
    [AN_CFG_HTTP_THREADS] =
        {.env = "AUTONAMA_HTTP_THREADS",
         .flag = "http-threads",
         .type = T_INT,
         .def = "4",
         .min = 1,
         .max = 256,
         .help =
             "HTTP: event threads (libmicrohttpd epoll thread pool; they never wait on the store)"},
    [AN_CFG_HTTP_WORKERS] =
        {.env = "AUTONAMA_HTTP_WORKERS",
         .flag = "http-workers",
         .type = T_INT,
         .def = "4",
         .min = 1,
         .max = 256,
         .help = "HTTP: threads that run the handlers (store reads, JSON encoding)"},
    [AN_CFG_HTTP_MAX_CONNECTIONS] = {.env = "AUTONAMA_HTTP_MAX_CONNECTIONS",
                                     .flag = "http-max-connections",
                                     .type = T_INT,
                                     .def = "1024",
                                     .min = 1,
                                     .max = 100000,
                                     .help = "HTTP: connections served at once (more are refused)"},
    [AN_CFG_HTTP_TIMEOUT] = {.env = "AUTONAMA_HTTP_TIMEOUT",
                             .flag = "http-timeout",
                             .type = T_INT,
                             .def = "30",
                             .min = 1,
                             .max = 3600,
                             .help = "HTTP: seconds an idle or slow connection is kept"},
    [AN_CFG_HTTP_MAX_URL] =
        {.env = "AUTONAMA_HTTP_MAX_URL",
         .flag = "http-max-url",
         .type = T_INT,
         .def = "2048",
         .min = 64,
         .max = 32768,
         .help = "HTTP: longest request URL (path and query) accepted; longer gets 414"},
    [AN_CFG_HTTP_MAX_BODY] = {.env = "AUTONAMA_HTTP_MAX_BODY",
                              .flag = "http-max-body",
                              .type = T_INT,
                              .def = "65536",
                              .max = 16777216,
                              .help = "HTTP: largest request body accepted; larger gets 413"},
    [AN_CFG_HTTP_MAX_HEADERS] = {.env = "AUTONAMA_HTTP_MAX_HEADERS",
                                 .flag = "http-max-headers",
                                 .type = T_INT,
                                 .def = "32768",
                                 .min = 1024,
                                 .max = 1048576,
                                 .help = "HTTP: largest request header block accepted; larger "
                                         "gets 431"},
    [AN_CFG_HTTP_MAX_CONNECTIONS_PER_CLIENT] =
        {.env = "AUTONAMA_HTTP_MAX_CONNECTIONS_PER_CLIENT",
         .flag = "http-max-connections-per-client",
         .type = T_INT,
         .def = "128",
         .max = 100000,
         .help = "HTTP: connections one client address may hold; more get 503 (beyond twice "
                 "that plus 16, refused); 0: no limit"},
    [AN_CFG_HTTP_REQUEST_DEADLINE] =
        {.env = "AUTONAMA_HTTP_REQUEST_DEADLINE",
         .flag = "http-request-deadline",
         .type = T_INT,
         .def = "10",
         .max = 3600,
         .help = "HTTP: seconds a request's head and body may take to arrive (not reset by "
                 "traffic; idle keep-alive connections count too); 0: none"},
    [AN_CFG_HTTP_CORS_ORIGIN] = {.env = "AUTONAMA_HTTP_CORS_ORIGIN",
                                 .flag = "cors-origin",
                                 .type = T_STR,
                                 .def = "",
                                 .help = "HTTP: Access-Control-Allow-Origin value (e.g. * or "
                                         "https://example.org); empty: no CORS"},
    [AN_CFG_HTTP_CACHE_TTL_MS] =
        {.env = "AUTONAMA_HTTP_CACHE_TTL_MS",
         .flag = "http-cache-ttl-ms",
         .type = T_INT,
         .def = "1000",
         .max = 3600000,
         .help = "HTTP: how long a data reply that may still change is reused (0: never)"},
    [AN_CFG_HTTP_MAX_LIMIT] = {.env = "AUTONAMA_HTTP_MAX_LIMIT",
                               .flag = "http-max-limit",
                               .type = T_INT,
                               .def = "5000",
                               .min = 1,
                               .max = 1000000,
                               .help = "HTTP: largest limit a data request may ask for"},
    [AN_CFG_HTTP_QUERY_TIMEOUT] =
        {.env = "AUTONAMA_HTTP_QUERY_TIMEOUT",
         .flag = "http-query-timeout",
         .type = T_INT,
         .def = "30000",
         .max = 3600000,
         .help = "HTTP: milliseconds a request's store statements may run; then they are "
                 "cancelled and the reply is 503 with Retry-After (0: no limit)"},
    [AN_CFG_HTTP_HEAVY_MAX] =
        {.env = "AUTONAMA_HTTP_HEAVY_MAX",
         .flag = "http-heavy-max",
         .type = T_INT,
         .def = "2",
         .min = 1,
         .max = 256,
         .help = "HTTP: heavy data reads (limit above AUTONAMA_HTTP_HEAVY_LIMIT) run at once; "
                 "more get 503 with Retry-After at once, so cheap requests never wait"},
    [AN_CFG_HTTP_HEAVY_LIMIT] = {.env = "AUTONAMA_HTTP_HEAVY_LIMIT",
                                 .flag = "http-heavy-limit",
                                 .type = T_INT,
                                 .def = "1000",
                                 .min = 1,
                                 .max = 1000000,
                                 .help = "HTTP: a data read asking for more rows is heavy"},
    [AN_CFG_BEAT_UPDATE_INTERVAL] = {.env = "AUTONAMA_BEAT_UPDATE_INTERVAL",
                                     .flag = "beat-update-interval",
                                     .type = T_INT,
                                     .def = "900",
                                     .max = 31536000,
                                     .help = "serve: update-market-data every N s (0: off)"},
    [AN_CFG_BEAT_UPDATE_SYMBOLS] =
        {.env = "AUTONAMA_BEAT_UPDATE_SYMBOLS",
         .flag = "beat-update-symbols",
         .type = T_STR,
         .def = "",
         .help = "serve: symbols of update-market-data (empty: AUTONAMA_SYMBOLS)"},
    [AN_CFG_BEAT_INDICATORS_INTERVAL] = {.env = "AUTONAMA_BEAT_INDICATORS_INTERVAL",
                                         .flag = "beat-indicators-interval",
                                         .type = T_INT,
                                         .def = "1800",
                                         .max = 31536000,
                                         .help = "serve: calculate-indicators every N s (0: off)"},
    [AN_CFG_BEAT_INDICATORS_SYMBOLS] =
        {.env = "AUTONAMA_BEAT_INDICATORS_SYMBOLS",
         .flag = "beat-indicators-symbols",
         .type = T_STR,
         .def = "BTC/USDT",
         .help =
             "serve: symbols of calculate-indicators (the seed's args; empty: AUTONAMA_SYMBOLS)"},
    [AN_CFG_BEAT_HEALTH_INTERVAL] = {.env = "AUTONAMA_BEAT_HEALTH_INTERVAL",
                                     .flag = "beat-health-interval",
                                     .type = T_INT,
                                     .def = "300",
                                     .max = 31536000,
                                     .help = "serve: health-check every N s (0: off)"},
    [AN_CFG_WORKERS] = {.env = "AUTONAMA_WORKERS",
                        .flag = "workers",
                        .type = T_INT,
                        .def = "2",
                        .min = 1,
                        .max = 32,
                        .help = "serve: worker threads running tasks"},
    [AN_CFG_SHUTDOWN_GRACE] = {.env = "AUTONAMA_SHUTDOWN_GRACE",
                               .flag = "shutdown-grace",
                               .type = T_INT,
                               .def = "8",
                               .max = 3600,
                               .help =
                                   "serve: seconds running tasks get to stop after SIGTERM/SIGINT"},
    [AN_CFG_FALLBACK] =
        {.env = "AUTONAMA_FALLBACK",
         .flag = "fallback",
         .type = T_BOOL,
         .def = "true",
         .help = "tasks: go on against the DuckDB fallback file when PostgreSQL is unreachable"},
    [AN_CFG_FALLBACK_PATH] =
        {.env = "AUTONAMA_FALLBACK_PATH",
         .flag = "fallback-path",
         .type = T_STR,
         .def = "data/autonama_fallback.duckdb",
         .help = "tasks: the DuckDB fallback file (one per instance), replayed into PostgreSQL"},
    [AN_CFG_INSTANCE] = {.env = "AUTONAMA_INSTANCE",
                         .flag = "instance",
                         .type = T_STR,
                         .help =
                             "tasks: this instance's name in the task table (default host:pid)"},
    [AN_CFG_TASK_STALE_AFTER] =
        {.env = "AUTONAMA_TASK_STALE_AFTER",
         .flag = "task-stale-after",
         .type = T_INT,
         .def = "60",
         .min = 5,
         .max = 86400,
         .help = "tasks: a running task without heartbeat for N s is marked INTERRUPTED"},
    [AN_CFG_FROM] = {.flag = "from", .type = T_STR, .help = "sync: the DuckDB file to move from"},
    [AN_CFG_MOVE] = {.flag = "move",
                     .type = T_BOOL,
                     .def = "false",
                     .help = "sync: delete what was copied from the --from file"},
    [AN_CFG_LIMIT] = {.flag = "limit",
                      .type = T_INT,
                      .def = "50",
                      .min = 1,
                      .max = 100000,
                      .help = "tasks: runs to list"},
    [AN_CFG_REALTIME] = {.env = "AUTONAMA_REALTIME",
                         .flag = "realtime",
                         .type = T_BOOL,
                         .def = "false",
                         .help = "serve: stream Binance's kline WebSocket streams into the store"},
    [AN_CFG_REALTIME_SYMBOLS] = {.env = "AUTONAMA_REALTIME_SYMBOLS",
                                 .flag = "realtime-symbols",
                                 .type = T_SYMBOLS,
                                 .help = "realtime: symbols streamed (default AUTONAMA_SYMBOLS)"},
    [AN_CFG_REALTIME_TIMEFRAMES] = {.env = "AUTONAMA_REALTIME_TIMEFRAMES",
                                    .flag = "realtime-timeframes",
                                    .type = T_TIMEFRAMES,
                                    .def = "1m",
                                    .help = "realtime: intervals streamed per symbol"},
    [AN_CFG_REALTIME_FLUSH_MS] =
        {.env = "AUTONAMA_REALTIME_FLUSH_MS",
         .flag = "realtime-flush-ms",
         .type = T_INT,
         .def = "1000",
         .min = 10,
         .max = 60000,
         .help = "realtime: at most one write of a series' open candle per this many ms"},
    [AN_CFG_BINANCE_WS_URL] = {.env = "BINANCE_WS_URL",
                               .flag = "binance-ws-url",
                               .type = T_STR,
                               .def = "wss://stream.binance.com:9443",
                               .help = "Binance WebSocket streams base URL"},
    [AN_CFG_REALTIME_IDLE_MS] =
        {.env = "AUTONAMA_REALTIME_IDLE_MS",
         .flag = "realtime-idle-ms",
         .type = T_INT,
         .def = "30000",
         .min = 1000,
         .max = 600000,
         .help = "realtime: a connection without a frame for this long is dropped and reopened"},
    [AN_CFG_REALTIME_MAX_AGE] = {.env = "AUTONAMA_REALTIME_MAX_AGE",
                                 .flag = "realtime-max-age",
                                 .type = T_INT,
                                 .def = "82800",
                                 .min = 5,
                                 .max = 86000,
                                 .help = "realtime: seconds after which a connection is replaced, "
                                         "seamlessly (Binance cuts at 24 h)"},
    [AN_CFG_REALTIME_BACKOFF_MS] =
        {.env = "AUTONAMA_REALTIME_BACKOFF_MS",
         .flag = "realtime-backoff-ms",
         .type = T_INT,
         .def = "500",
         .min = 10,
         .max = 60000,
         .help = "realtime: first reconnect delay (doubles to 30 s, with jitter)"},
    [AN_CFG_REALTIME_STREAMS_PER_CONN] =
        {.env = "AUTONAMA_REALTIME_STREAMS_PER_CONN",
         .flag = "realtime-streams-per-conn",
         .type = T_INT,
         .def = "1024",
         .min = 1,
         .max = 1024,
         .help = "realtime: streams per connection (Binance allows 1,024)"},
    [AN_CFG_HTTP_MAX_STREAMS] =
        {.env = "AUTONAMA_HTTP_MAX_STREAMS",
         .flag = "http-max-streams",
         .type = T_INT,
         .def = "256",
         .min = 1,
         .max = 100000,
         .help = "HTTP: server-sent event streams (GET /api/v1/stream) open at once"},
    [AN_CFG_HTTP_STREAM_QUEUE] = {.env = "AUTONAMA_HTTP_STREAM_QUEUE",
                                  .flag = "http-stream-queue",
                                  .type = T_INT,
                                  .def = "262144",
                                  .min = 4096,
                                  .max = 67108864,
                                  .help = "HTTP: bytes queued for one event stream; a client that "
                                          "falls this far behind is dropped"},
    [AN_CFG_FORMAT] = {.flag = "format",
                       .type = T_ENUM,
                       .def = "auto",
                       .choices = "auto|freqtrade-json|cryptodatadownload-csv|csv|binance-csv",
                       .help = "import: file format"},
    [AN_CFG_SYMBOL] = {.flag = "symbol",
                       .type = T_STR,
                       .help = "import: the file's symbol when its name does not say"},
    [AN_CFG_SINCE] = {.flag = "since", .type = T_STR, .help = "start time (YYYY-MM-DD[THH:MM])"},
    [AN_CFG_UNTIL] = {.flag = "until", .type = T_STR, .help = "end time (exclusive)"},
};
_Static_assert(sizeof table / sizeof table[0] == AN_CFG__COUNT, "one table entry per an_cfg_key");

/* ---- parsing one value ----------------------------------------------------- */

/* Where a value came from, for messages: "environment variable X" or "flag --x". */
typedef struct origin {
    char text[80];
} origin;

/* 1 when v[0..n) is one of choices ("a|b|c"). */
static int is_choice(const char *choices, const char *v, size_t n)
{
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t cn = bar ? (size_t)(bar - p) : strlen(p);
        if (cn == n && strncmp(p, v, n) == 0)
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static an_code parse_int(const cdef *d, const char *v, const char *shown, const origin *o,
                         long *num, an_err *err)
{
    errno = 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < d->min || x > d->max)
        return an_err_set(err, AN_ERR_INVALID, "%s: %s must be an integer in [%ld, %ld]", o->text,
                          shown, d->min, d->max);
    *num = x;
    return AN_OK;
}

/* Each item of a list setting, checked by type; at least one item. */
static an_code parse_list(const cdef *d, const char *v, const origin *o, an_err *err)
{
    int count = 0;
    size_t n;
    const char *it;
    for (const char *p = v; an_list_next(&p, &it, &n); count++) {
        char one[128];
        snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one ? n : sizeof one - 1), it);
        if (d->type == T_TIMEFRAMES && !an_timeframe_valid(one))
            return an_err_set(err, AN_ERR_INVALID, "%s: '%.16s' is not a timeframe", o->text, one);
        if (d->type == T_ENUMLIST && !is_choice(d->choices, it, n))
            return an_err_set(err, AN_ERR_INVALID, "%s: '%.40s' is not one of %s", o->text, one,
                              d->choices);
        if (d->type == T_SYMBOLS && (n >= sizeof one || an_symbol_validate(one, err) != AN_OK)) {
            if (n >= sizeof one)
                an_err_set(err, AN_ERR_INVALID, "symbol '%.40s...' is too long", one);
            return an_err_prefix(err, "%s", o->text);
        }
    }
    if (count)
        return AN_OK;
    if (d->type == T_ENUMLIST)
        return an_err_set(err, AN_ERR_INVALID, "%s: nothing given (one or more of %s)", o->text,
                          d->choices);
    return an_err_set(err, AN_ERR_INVALID, "%s: no %s given", o->text,
                      d->type == T_SYMBOLS ? "symbols" : "timeframes");
}

static an_code parse_addr(const char *v, const char *shown, const origin *o, an_err *err)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return an_err_set(err, AN_ERR_INVALID, "%s: %s must be host:port", o->text, shown);
    errno = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
        return an_err_set(err, AN_ERR_INVALID, "%s: %s has a bad port (0..65535)", o->text, shown);
    return AN_OK;
}

/* Validates v for d and converts it into cfg's typed field for key. */
static an_code parse_value(an_config *cfg, an_cfg_key key, const char *v, const origin *o,
                           an_err *err)
{
    const cdef *d = &table[key];
    char shown[80];
    if (d->type == T_SECRET)
        snprintf(shown, sizeof shown, "(hidden)");
    else
        snprintf(shown, sizeof shown, "'%.60s'", v);
    switch (d->type) {
    case T_INT: return parse_int(d, v, shown, o, &cfg->num[key], err);
    case T_ENUM:
        if (!is_choice(d->choices, v, strlen(v)))
            return an_err_set(err, AN_ERR_INVALID, "%s: %s is not one of %s", o->text, shown,
                              d->choices);
        return AN_OK;
    case T_TIMEFRAME:
        if (!an_timeframe_valid(v))
            return an_err_set(err, AN_ERR_INVALID,
                              "%s: %s is not a timeframe (1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, "
                              "6h, 8h, 12h, 1d, 3d, 1w, 1M)",
                              o->text, shown);
        return AN_OK;
    case T_TIMEFRAMES:
    case T_ENUMLIST:
    case T_SYMBOLS: return parse_list(d, v, o, err);
    case T_INDICATORS:
        if (an_ind_set_parse(v, &cfg->indicators, err) != AN_OK)
            return an_err_prefix(err, "%s", o->text);
        return AN_OK;
    case T_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0"))
            return an_err_set(err, AN_ERR_INVALID, "%s: %s must be true or false", o->text, shown);
        cfg->num[key] = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
        return AN_OK;
    case T_LEVEL:
        if ((cfg->num[key] = an_log_level_parse(v)) < 0)
            return an_err_set(err, AN_ERR_INVALID,
                              "%s: %s is not a log level (debug, info, warn, error, off)", o->text,
                              shown);
        return AN_OK;
    case T_ADDR: return parse_addr(v, shown, o, err);
    case T_STR:
    case T_SECRET:
        if (strlen(v) > 4096)
            return an_err_set(err, AN_ERR_INVALID, "%s: value too long", o->text);
        return AN_OK;
    }
    return AN_OK;
}

static an_code set_val(an_config *cfg, an_cfg_key key, const char *v, an_cfg_origin from,
                       an_err *err)
{
    const cdef *d = &table[key];
    origin o;
    if (from == AN_CFG_ORIGIN_ENV)
        snprintf(o.text, sizeof o.text, "environment variable %s", d->env);
    else if (from == AN_CFG_ORIGIN_FLAG)
        snprintf(o.text, sizeof o.text, "flag --%s", d->flag);
    else
        snprintf(o.text, sizeof o.text, "the default of %s", d->env ? d->env : d->flag);
    if (parse_value(cfg, key, v, &o, err) != AN_OK)
        return AN_ERR_INVALID;
    char *copy = strdup(v);
    if (!copy)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    free(cfg->val[key]);
    cfg->val[key] = copy;
    cfg->from[key] = from;
    return AN_OK;
}

/* ---- loading ----------------------------------------------------------------- */

/* The table entry of flag name[0..nlen), or -1. */
static int flag_key(const char *name, size_t nlen)
{
    for (int k = 0; k < AN_CFG__COUNT; k++)
        if (table[k].flag && strlen(table[k].flag) == nlen &&
            strncmp(table[k].flag, name, nlen) == 0)
            return k;
    return -1;
}

/* argv: flags (--name value, --name=value, a bare boolean) and positional
 * arguments (everything after "--" is positional). */
static an_code load_flags(an_config *cfg, int argc, char **argv, an_err *err)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                cfg->args[cfg->nargs++] = argv[i];
            break;
        }
        if (strncmp(a, "--", 2) != 0) {
            cfg->args[cfg->nargs++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int k = flag_key(name, nlen);
        if (k < 0)
            return an_err_set(err, AN_ERR_INVALID, "unknown flag --%.*s (see autonama --help)",
                              (int)(nlen > 40 ? 40 : nlen), name);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && table[k].type == T_BOOL)
            v = "true"; /* a bare boolean flag */
        if (!v) {
            if (i + 1 >= argc)
                return an_err_set(err, AN_ERR_INVALID, "flag --%s needs a value", table[k].flag);
            v = argv[++i];
        }
        if (set_val(cfg, (an_cfg_key)k, v, AN_CFG_ORIGIN_FLAG, err) != AN_OK)
            return AN_ERR_INVALID;
    }
    return AN_OK;
}

an_code an_config_load(an_config *cfg, int argc, char **argv, an_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->args = calloc((size_t)argc + 1, sizeof *cfg->args);
    if (!cfg->args)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        assert(table[i].help); /* every key has its entry */
        an_code drc = table[i].def
                          ? set_val(cfg, (an_cfg_key)i, table[i].def, AN_CFG_ORIGIN_DEFAULT, err)
                          : AN_OK;
        if (drc != AN_OK)
            return drc;
    }
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        const char *v = table[i].env ? getenv(table[i].env) : NULL;
        if (v && *v && set_val(cfg, (an_cfg_key)i, v, AN_CFG_ORIGIN_ENV, err) != AN_OK)
            return AN_ERR_INVALID;
    }
    return load_flags(cfg, argc, argv, err);
}

void an_config_free(an_config *cfg)
{
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        if (cfg->val[i]) {
            if (table[i].type == T_SECRET)
                memset(cfg->val[i], 0, strlen(cfg->val[i]));
            free(cfg->val[i]);
        }
        cfg->val[i] = NULL;
    }
    free(cfg->args);
    cfg->args = NULL;
    cfg->nargs = 0;
}

/* ---- accessors ------------------------------------------------------------- */

const char *an_config_get(const an_config *cfg, an_cfg_key key)
{
    return cfg->val[key];
}

long an_config_int(const an_config *cfg, an_cfg_key key)
{
    assert(table[key].type == T_INT || table[key].type == T_BOOL || table[key].type == T_LEVEL);
    return cfg->val[key] ? cfg->num[key] : 0;
}

int an_config_is_set(const an_config *cfg, an_cfg_key key)
{
    return cfg->from[key] != AN_CFG_ORIGIN_DEFAULT;
}

an_cfg_origin an_config_origin(const an_config *cfg, an_cfg_key key)
{
    return cfg->from[key];
}

int an_config_bool(const an_config *cfg, an_cfg_key key)
{
    assert(table[key].type == T_BOOL);
    return cfg->val[key] && cfg->num[key];
}

const an_ind_set *an_config_indicators(const an_config *cfg)
{
    return &cfg->indicators;
}

int an_config_has_postgres(const an_config *cfg)
{
    const char *s = cfg->val[AN_CFG_POSTGRES_SERVER];
    return s && *s;
}

/* Appends key='value' with libpq quoting (backslash before ' and \). */
static void append_kv(char *buf, size_t len, const char *key, const char *val)
{
    size_t o = strlen(buf);
    int w = snprintf(buf + o, len - o, "%s%s='", o ? " " : "", key);
    if (w < 0)
        return;
    o += (size_t)w;
    for (const char *p = val; *p && o + 3 < len; p++) {
        if (*p == '\'' || *p == '\\')
            buf[o++] = '\\';
        buf[o++] = *p;
    }
    if (o + 1 < len)
        buf[o++] = '\'';
    buf[o] = '\0';
}

char *an_config_pg_conninfo(const an_config *cfg)
{
    size_t len = 64;
    for (int k = AN_CFG_POSTGRES_SERVER; k <= AN_CFG_POSTGRES_SSLMODE; k++)
        len += 16 + 2 * (cfg->val[k] ? strlen(cfg->val[k]) : 0);
    char *buf = calloc(1, len);
    if (!buf)
        return NULL;
    append_kv(buf, len, "host",
              cfg->val[AN_CFG_POSTGRES_SERVER] ? cfg->val[AN_CFG_POSTGRES_SERVER] : "localhost");
    append_kv(buf, len, "port", cfg->val[AN_CFG_POSTGRES_PORT]);
    append_kv(buf, len, "user", cfg->val[AN_CFG_POSTGRES_USER]);
    if (cfg->val[AN_CFG_POSTGRES_PASSWORD])
        append_kv(buf, len, "password", cfg->val[AN_CFG_POSTGRES_PASSWORD]);
    append_kv(buf, len, "dbname", cfg->val[AN_CFG_POSTGRES_DB]);
    append_kv(buf, len, "sslmode", cfg->val[AN_CFG_POSTGRES_SSLMODE]);
    return buf;
}

/* A list setting's items (the one tokenizer, list.h); symbols are
 * validated (the text may be a task's argument, not a loaded value). */
static an_code split_list(const char *v, int symbols, char ***out, size_t *n, an_err *err)
{
    an_code rc = an_list_split(v, out, n, err);
    if (rc != AN_OK)
        return rc;
    for (size_t i = 0; symbols && i < *n; i++) {
        if (an_symbol_validate((*out)[i], err) != AN_OK) {
            an_list_free(*out, *n);
            *out = NULL;
            *n = 0;
            return AN_ERR_INVALID;
        }
    }
    return AN_OK;
}

an_code an_config_symbols(const an_config *cfg, char ***out, size_t *n, an_err *err)
{
    return split_list(cfg->val[AN_CFG_SYMBOLS], 1, out, n, err);
}

an_code an_config_categories(const an_config *cfg, char ***out, size_t *n, an_err *err)
{
    return split_list(cfg->val[AN_CFG_CATEGORIES], 0, out, n, err);
}

an_code an_config_list(const an_config *cfg, an_cfg_key key, char ***out, size_t *n, an_err *err)
{
    *out = NULL;
    *n = 0;
    if (key < 0 || key >= AN_CFG__COUNT || !cfg->val[key])
        return AN_OK;
    return split_list(cfg->val[key], table[key].type == T_SYMBOLS, out, n, err);
}

an_code an_config_category(const an_config *cfg, const char *category, an_category_config *out,
                           an_err *err)
{
    static const struct {
        const char *name, *env;
        an_cfg_key provider, source, symbols;
    } cats[] = {
        {"crypto", "CRYPTO", AN_CFG_CRYPTO_PROVIDER, AN_CFG_CRYPTO_SOURCE, AN_CFG_SYMBOLS},
        {"forex", "FOREX", AN_CFG_FOREX_PROVIDER, AN_CFG_FOREX_SOURCE, AN_CFG_FOREX_SYMBOLS},
        {"stock", "STOCK", AN_CFG_STOCK_PROVIDER, AN_CFG_STOCK_SOURCE, AN_CFG_STOCK_SYMBOLS},
        {"commodity", "COMMODITY", AN_CFG_COMMODITY_PROVIDER, AN_CFG_COMMODITY_SOURCE,
         AN_CFG_COMMODITY_SYMBOLS},
    };
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof cats / sizeof *cats; i++) {
        if (strcmp(cats[i].name, category) != 0)
            continue;
        out->provider = cfg->val[cats[i].provider];
        out->source = cfg->val[cats[i].source];
        if (!out->source && out->provider && strcmp(out->provider, "binance") == 0)
            out->source = cfg->val[AN_CFG_BINANCE_BASE_URL];
        if (!out->provider || !*out->provider)
            return an_err_set(err, AN_ERR_INVALID,
                              "category %s has no provider: set AUTONAMA_%s_PROVIDER (e.g. files) "
                              "and AUTONAMA_%s_SOURCE",
                              category, cats[i].env, cats[i].env);
        const char *syms = cfg->from[AN_CFG_SYMBOLS] == AN_CFG_ORIGIN_FLAG
                               ? cfg->val[AN_CFG_SYMBOLS]
                               : cfg->val[cats[i].symbols];
        if (!syms || !*syms)
            return an_err_set(err, AN_ERR_INVALID,
                              "category %s has no symbols: set AUTONAMA_%s_SYMBOLS or --symbols",
                              category, cats[i].env);
        return split_list(syms, 1, &out->symbols, &out->n_symbols, err);
    }
    return an_err_set(err, AN_ERR_INVALID,
                      "unknown category '%.40s' (crypto, forex, stock, commodity)", category);
}

void an_config_free_list(char **list, size_t n)
{
    an_list_free(list, n);
}

void an_config_print_help(void *file)
{
    FILE *f = file;
    fprintf(f, "Settings (flags override environment variables, which override defaults):\n");
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        const cdef *d = &table[i];
        char flag[48] = "", env[48] = "";
        if (d->flag)
            snprintf(flag, sizeof flag, "--%s", d->flag);
        if (d->env)
            snprintf(env, sizeof env, "%s", d->env);
        fprintf(f, "  %-22s %-28s %s", flag, env, d->help);
        if (d->def && *d->def)
            fprintf(f, " [default: %s]", d->def);
        fputc('\n', f);
    }
}

an_code an_config_indicator_timeframes(const an_config *cfg, char ***out, size_t *n, an_err *err)
{
    const char *v = cfg->from[AN_CFG_TIMEFRAME] != AN_CFG_ORIGIN_DEFAULT
                        ? cfg->val[AN_CFG_TIMEFRAME]
                        : cfg->val[AN_CFG_INDICATOR_TIMEFRAMES];
    return split_list(v, 0, out, n, err);
}
