/*
 * config.c - the configuration table and its loader (see config.h).
 */
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    T_ENUMLIST
} ctype;

typedef struct cdef {
    an_cfg_key key;
    const char *env;  /* NULL: flag only */
    const char *flag; /* without the leading "--" */
    ctype type;
    const char *def;
    long min, max;       /* T_INT bounds */
    const char *choices; /* T_ENUM: "a|b|c" */
    const char *help;
} cdef;

static const cdef table[AN_CFG__COUNT] = {
    {AN_CFG_POSTGRES_SERVER, "POSTGRES_SERVER", "pg-server", T_STR, NULL, 0, 0, NULL,
     "PostgreSQL/TimescaleDB host; unset means the embedded DuckDB store"},
    {AN_CFG_POSTGRES_PORT, "POSTGRES_PORT", "pg-port", T_INT, "5432", 1, 65535, NULL,
     "PostgreSQL port"},
    {AN_CFG_POSTGRES_USER, "POSTGRES_USER", "pg-user", T_STR, "postgres", 0, 0, NULL,
     "PostgreSQL user"},
    {AN_CFG_POSTGRES_PASSWORD, "POSTGRES_PASSWORD", NULL, T_SECRET, NULL, 0, 0, NULL,
     "PostgreSQL password (environment only; never logged)"},
    {AN_CFG_POSTGRES_DB, "POSTGRES_DB", "pg-db", T_STR, "autonama", 0, 0, NULL,
     "PostgreSQL database"},
    {AN_CFG_POSTGRES_SSLMODE, "POSTGRES_SSLMODE", "pg-sslmode", T_ENUM, "prefer", 0, 0,
     "disable|allow|prefer|require|verify-ca|verify-full", "libpq sslmode"},
    {AN_CFG_DUCKDB_PATH, "DUCKDB_PATH", "duckdb-path", T_STR, "data/financial_data.duckdb", 0, 0,
     NULL, "DuckDB file: the embedded store and the fallback"},
    {AN_CFG_STORE, "AUTONAMA_STORE", "store", T_ENUM, "auto", 0, 0,
     "auto|timescaledb|postgres|duckdb",
     "store mode; auto = TimescaleDB/PostgreSQL when POSTGRES_SERVER is set, else DuckDB"},
    {AN_CFG_PG_POOL_SIZE, "AUTONAMA_PG_POOL_SIZE", "pg-pool-size", T_INT, "4", 1, 64, NULL,
     "PostgreSQL connections in the pool"},
    {AN_CFG_CONNECT_TIMEOUT, "AUTONAMA_CONNECT_TIMEOUT", "connect-timeout", T_INT, "10", 1, 300,
     NULL, "seconds to wait for a database connection"},
    {AN_CFG_COMPRESS_AFTER, "AUTONAMA_COMPRESS_AFTER", "compress-after", T_STR, "30 days", 0, 0,
     NULL, "TimescaleDB: compress candle chunks older than this interval (empty: off)"},
    {AN_CFG_RETENTION, "AUTONAMA_RETENTION", "retention", T_STR, "", 0, 0, NULL,
     "TimescaleDB: drop candle chunks older than this interval (empty: off, the default)"},
    {AN_CFG_BINANCE_BASE_URL, "BINANCE_BASE_URL", "binance-base-url", T_STR,
     "https://api.binance.com", 0, 0, NULL, "Binance REST base URL"},
    {AN_CFG_SYMBOLS, "AUTONAMA_SYMBOLS", "symbols", T_SYMBOLS,
     "BTC/USDT,ETH/USDT,ADA/USDT,BNB/USDT,SOL/USDT", 0, 0, NULL,
     "comma-separated symbols (BASE/QUOTE)"},
    {AN_CFG_TIMEFRAME, "AUTONAMA_TIMEFRAME", "timeframe", T_TIMEFRAME, "1m", 0, 0, NULL,
     "candle timeframe ingested and checked for freshness"},
    {AN_CFG_HTTP_ADDR, "AUTONAMA_HTTP_ADDR", "http-addr", T_ADDR, "127.0.0.1:8000", 0, 0, NULL,
     "HTTP listen address host:port"},
    {AN_CFG_API_KEY, "AUTONAMA_API_KEY", NULL, T_SECRET, NULL, 0, 0, NULL,
     "API key for POST routes (environment only; never logged)"},
    {AN_CFG_FRESHNESS_MAX_AGE, "AUTONAMA_FRESHNESS_MAX_AGE", "max-age", T_INT, "3600", 1,
     10000000000L, NULL, "health: seconds after which a symbol's newest candle is stale"},
    {AN_CFG_LOG_LEVEL, "AUTONAMA_LOG_LEVEL", "log-level", T_LEVEL, "info", 0, 0, NULL,
     "debug|info|warn|error|off"},
    {AN_CFG_INDICATORS, "AUTONAMA_INDICATORS", "indicators", T_STR,
     "sma:20,sma:50,sma:200,ema:12,ema:26,rsi:14,bbands:20:2,macd:12:26:9", 0, 0, NULL,
     "indicators to calculate (sma:N, ema:N, rsi:N, bbands:N:DEV, macd:F:S:SIG)"},
    {AN_CFG_INDICATOR_TIMEFRAMES, "AUTONAMA_INDICATOR_TIMEFRAMES", "timeframes", T_TIMEFRAMES,
     "1m,1h,1d", 0, 0, NULL,
     "timeframes the indicators task covers (1h/1d from the rollups when not stored)"},
    {AN_CFG_LOAD_PATH, "AUTONAMA_LOAD_PATH", "load-path", T_ENUM, "auto", 0, 0, "auto|direct|copy",
     "how DuckDB reads PostgreSQL: the postgres extension (direct) or libpq COPY"},
    {AN_CFG_INGEST_PARALLEL, "AUTONAMA_INGEST_PARALLEL", "parallel", T_INT, "3", 1, 16, NULL,
     "ingest: symbols fetched at once"},
    {AN_CFG_INGEST_LOOKBACK, "AUTONAMA_INGEST_LOOKBACK", "lookback", T_INT, "1000", 1, 100000000,
     NULL, "ingest: candles fetched for a symbol with none stored (without --since)"},
    {AN_CFG_BINANCE_WEIGHT_BUDGET, "AUTONAMA_BINANCE_WEIGHT_BUDGET", "weight-budget", T_INT, "6000",
     10, 1000000, NULL, "Binance request weight per minute to stay under (10% headroom)"},
    {AN_CFG_BINANCE_TIMEOUT_MS, "AUTONAMA_BINANCE_TIMEOUT_MS", "http-timeout-ms", T_INT, "10000",
     100, 600000, NULL, "Binance: timeout of one request"},
    {AN_CFG_BINANCE_MAX_TRIES, "AUTONAMA_BINANCE_MAX_TRIES", "max-tries", T_INT, "10", 1, 100, NULL,
     "Binance: tries per request before a symbol is given up"},
    {AN_CFG_BINANCE_BACKOFF_MS, "AUTONAMA_BINANCE_BACKOFF_MS", "backoff-ms", T_INT, "250", 1, 60000,
     NULL, "Binance: first retry delay (doubles, with jitter)"},
    {AN_CFG_FORCE, NULL, "force", T_BOOL, "false", 0, 0, NULL,
     "ingest: refetch and rewrite [--since, --until) even where fresh"},
    {AN_CFG_CATEGORIES, "AUTONAMA_CATEGORIES", "categories", T_ENUMLIST, "crypto", 0, 0,
     "crypto|forex|stock|commodity", "ingest: the categories to update (comma-separated)"},
    {AN_CFG_CRYPTO_PROVIDER, "AUTONAMA_CRYPTO_PROVIDER", "crypto-provider", T_STR, "binance", 0, 0,
     NULL, "crypto: the provider (binance, files)"},
    {AN_CFG_CRYPTO_SOURCE, "AUTONAMA_CRYPTO_SOURCE", "crypto-source", T_STR, NULL, 0, 0, NULL,
     "crypto: where the provider reads (default BINANCE_BASE_URL; a directory for files)"},
    {AN_CFG_FOREX_PROVIDER, "AUTONAMA_FOREX_PROVIDER", "forex-provider", T_STR, NULL, 0, 0, NULL,
     "forex: the provider (e.g. files)"},
    {AN_CFG_FOREX_SOURCE, "AUTONAMA_FOREX_SOURCE", "forex-source", T_STR, NULL, 0, 0, NULL,
     "forex: where the provider reads (a URL, a directory)"},
    {AN_CFG_FOREX_SYMBOLS, "AUTONAMA_FOREX_SYMBOLS", "forex-symbols", T_SYMBOLS, NULL, 0, 0, NULL,
     "forex: symbols (BASE/QUOTE, e.g. EUR/USD)"},
    {AN_CFG_STOCK_PROVIDER, "AUTONAMA_STOCK_PROVIDER", "stock-provider", T_STR, NULL, 0, 0, NULL,
     "stock: the provider"},
    {AN_CFG_STOCK_SOURCE, "AUTONAMA_STOCK_SOURCE", "stock-source", T_STR, NULL, 0, 0, NULL,
     "stock: where the provider reads"},
    {AN_CFG_STOCK_SYMBOLS, "AUTONAMA_STOCK_SYMBOLS", "stock-symbols", T_SYMBOLS, NULL, 0, 0, NULL,
     "stock: symbols (e.g. AAPL/USD)"},
    {AN_CFG_COMMODITY_PROVIDER, "AUTONAMA_COMMODITY_PROVIDER", "commodity-provider", T_STR, NULL, 0,
     0, NULL, "commodity: the provider"},
    {AN_CFG_COMMODITY_SOURCE, "AUTONAMA_COMMODITY_SOURCE", "commodity-source", T_STR, NULL, 0, 0,
     NULL, "commodity: where the provider reads"},
    {AN_CFG_COMMODITY_SYMBOLS, "AUTONAMA_COMMODITY_SYMBOLS", "commodity-symbols", T_SYMBOLS, NULL,
     0, 0, NULL, "commodity: symbols (e.g. XAU/USD)"},
    {AN_CFG_HTTP_THREADS, "AUTONAMA_HTTP_THREADS", "http-threads", T_INT, "4", 1, 256, NULL,
     "HTTP: event threads (libmicrohttpd epoll thread pool; they never wait on the store)"},
    {AN_CFG_HTTP_WORKERS, "AUTONAMA_HTTP_WORKERS", "http-workers", T_INT, "4", 1, 256, NULL,
     "HTTP: threads that run the handlers (store reads, JSON encoding)"},
    {AN_CFG_HTTP_MAX_CONNECTIONS, "AUTONAMA_HTTP_MAX_CONNECTIONS", "http-max-connections", T_INT,
     "1024", 1, 100000, NULL, "HTTP: connections served at once (more are refused)"},
    {AN_CFG_HTTP_TIMEOUT, "AUTONAMA_HTTP_TIMEOUT", "http-timeout", T_INT, "30", 1, 3600, NULL,
     "HTTP: seconds an idle or slow connection is kept"},
    {AN_CFG_HTTP_MAX_URL, "AUTONAMA_HTTP_MAX_URL", "http-max-url", T_INT, "2048", 64, 32768, NULL,
     "HTTP: longest request URL (path and query) accepted; longer gets 414"},
    {AN_CFG_HTTP_MAX_BODY, "AUTONAMA_HTTP_MAX_BODY", "http-max-body", T_INT, "65536", 0, 16777216,
     NULL, "HTTP: largest request body accepted; larger gets 413"},
    {AN_CFG_HTTP_CORS_ORIGIN, "AUTONAMA_HTTP_CORS_ORIGIN", "cors-origin", T_STR, "", 0, 0, NULL,
     "HTTP: Access-Control-Allow-Origin value (e.g. * or https://example.org); empty: no CORS"},
    {AN_CFG_HTTP_CACHE_TTL_MS, "AUTONAMA_HTTP_CACHE_TTL_MS", "http-cache-ttl-ms", T_INT, "1000", 0,
     3600000, NULL, "HTTP: how long a data reply that may still change is reused (0: never)"},
    {AN_CFG_HTTP_MAX_LIMIT, "AUTONAMA_HTTP_MAX_LIMIT", "http-max-limit", T_INT, "5000", 1, 1000000,
     NULL, "HTTP: largest limit a data request may ask for"},
    {AN_CFG_BEAT_UPDATE_INTERVAL, "AUTONAMA_BEAT_UPDATE_INTERVAL", "beat-update-interval", T_INT,
     "900", 0, 31536000, NULL, "serve: update-market-data every N s (0: off)"},
    {AN_CFG_BEAT_UPDATE_SYMBOLS, "AUTONAMA_BEAT_UPDATE_SYMBOLS", "beat-update-symbols", T_STR, "",
     0, 0, NULL, "serve: symbols of update-market-data (empty: AUTONAMA_SYMBOLS)"},
    {AN_CFG_BEAT_INDICATORS_INTERVAL, "AUTONAMA_BEAT_INDICATORS_INTERVAL",
     "beat-indicators-interval", T_INT, "1800", 0, 31536000, NULL,
     "serve: calculate-indicators every N s (0: off)"},
    {AN_CFG_BEAT_INDICATORS_SYMBOLS, "AUTONAMA_BEAT_INDICATORS_SYMBOLS", "beat-indicators-symbols",
     T_STR, "BTC/USDT", 0, 0, NULL,
     "serve: symbols of calculate-indicators (the seed's args; empty: AUTONAMA_SYMBOLS)"},
    {AN_CFG_BEAT_HEALTH_INTERVAL, "AUTONAMA_BEAT_HEALTH_INTERVAL", "beat-health-interval", T_INT,
     "300", 0, 31536000, NULL, "serve: health-check every N s (0: off)"},
    {AN_CFG_WORKERS, "AUTONAMA_WORKERS", "workers", T_INT, "2", 1, 32, NULL,
     "serve: worker threads running tasks"},
    {AN_CFG_SHUTDOWN_GRACE, "AUTONAMA_SHUTDOWN_GRACE", "shutdown-grace", T_INT, "8", 0, 3600, NULL,
     "serve: seconds running tasks get to stop after SIGTERM/SIGINT"},
    {AN_CFG_FALLBACK, "AUTONAMA_FALLBACK", "fallback", T_BOOL, "true", 0, 0, NULL,
     "tasks: go on against the DuckDB fallback file when PostgreSQL is unreachable"},
    {AN_CFG_FALLBACK_PATH, "AUTONAMA_FALLBACK_PATH", "fallback-path", T_STR,
     "data/autonama_fallback.duckdb", 0, 0, NULL,
     "tasks: the DuckDB fallback file (one per instance), replayed into PostgreSQL"},
    {AN_CFG_INSTANCE, "AUTONAMA_INSTANCE", "instance", T_STR, NULL, 0, 0, NULL,
     "tasks: this instance's name in the task table (default host:pid)"},
    {AN_CFG_TASK_STALE_AFTER, "AUTONAMA_TASK_STALE_AFTER", "task-stale-after", T_INT, "60", 5,
     86400, NULL, "tasks: a running task without heartbeat for N s is marked INTERRUPTED"},
    {AN_CFG_FROM, NULL, "from", T_STR, NULL, 0, 0, NULL, "sync: the DuckDB file to move from"},
    {AN_CFG_MOVE, NULL, "move", T_BOOL, "false", 0, 0, NULL,
     "sync: delete what was copied from the --from file"},
    {AN_CFG_LIMIT, NULL, "limit", T_INT, "50", 1, 100000, NULL, "tasks: runs to list"},
    {AN_CFG_REALTIME, "AUTONAMA_REALTIME", "realtime", T_BOOL, "false", 0, 0, NULL,
     "serve: stream Binance's kline WebSocket streams into the store"},
    {AN_CFG_REALTIME_SYMBOLS, "AUTONAMA_REALTIME_SYMBOLS", "realtime-symbols", T_SYMBOLS, NULL, 0,
     0, NULL, "realtime: symbols streamed (default AUTONAMA_SYMBOLS)"},
    {AN_CFG_REALTIME_TIMEFRAMES, "AUTONAMA_REALTIME_TIMEFRAMES", "realtime-timeframes",
     T_TIMEFRAMES, "1m", 0, 0, NULL, "realtime: intervals streamed per symbol"},
    {AN_CFG_REALTIME_FLUSH_MS, "AUTONAMA_REALTIME_FLUSH_MS", "realtime-flush-ms", T_INT, "1000", 10,
     60000, NULL, "realtime: at most one write of a series' open candle per this many ms"},
    {AN_CFG_BINANCE_WS_URL, "BINANCE_WS_URL", "binance-ws-url", T_STR,
     "wss://stream.binance.com:9443", 0, 0, NULL, "Binance WebSocket streams base URL"},
    {AN_CFG_REALTIME_IDLE_MS, "AUTONAMA_REALTIME_IDLE_MS", "realtime-idle-ms", T_INT, "30000", 1000,
     600000, NULL, "realtime: a connection without a frame for this long is dropped and reopened"},
    {AN_CFG_REALTIME_MAX_AGE, "AUTONAMA_REALTIME_MAX_AGE", "realtime-max-age", T_INT, "82800", 5,
     86000, NULL,
     "realtime: seconds after which a connection is replaced, seamlessly (Binance cuts at 24 h)"},
    {AN_CFG_REALTIME_BACKOFF_MS, "AUTONAMA_REALTIME_BACKOFF_MS", "realtime-backoff-ms", T_INT,
     "500", 10, 60000, NULL, "realtime: first reconnect delay (doubles to 30 s, with jitter)"},
    {AN_CFG_REALTIME_STREAMS_PER_CONN, "AUTONAMA_REALTIME_STREAMS_PER_CONN",
     "realtime-streams-per-conn", T_INT, "1024", 1, 1024, NULL,
     "realtime: streams per connection (Binance allows 1,024)"},
    {AN_CFG_HTTP_MAX_STREAMS, "AUTONAMA_HTTP_MAX_STREAMS", "http-max-streams", T_INT, "256", 1,
     100000, NULL, "HTTP: server-sent event streams (GET /api/v1/stream) open at once"},
    {AN_CFG_HTTP_STREAM_QUEUE, "AUTONAMA_HTTP_STREAM_QUEUE", "http-stream-queue", T_INT, "262144",
     4096, 67108864, NULL,
     "HTTP: bytes queued for one event stream; a client that falls this far behind is dropped"},
    {AN_CFG_FORMAT, NULL, "format", T_ENUM, "auto", 0, 0,
     "auto|freqtrade-json|cryptodatadownload-csv|csv|binance-csv", "import: file format"},
    {AN_CFG_SYMBOL, NULL, "symbol", T_STR, NULL, 0, 0, NULL,
     "import: the file's symbol when its name does not say"},
    {AN_CFG_SINCE, NULL, "since", T_STR, NULL, 0, 0, NULL, "start time (YYYY-MM-DD[THH:MM])"},
    {AN_CFG_UNTIL, NULL, "until", T_STR, NULL, 0, 0, NULL, "end time (exclusive)"},
};

static an_code validate(const cdef *d, const char *v, const char *origin, an_err *err)
{
    char shown[80];
    if (d->type == T_SECRET)
        snprintf(shown, sizeof shown, "(hidden)");
    else
        snprintf(shown, sizeof shown, "'%.60s'", v);
    switch (d->type) {
    case T_INT: {
        errno = 0;
        char *end;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < d->min || x > d->max)
            return an_err_set(err, AN_ERR_INVALID, "%s: %s must be an integer in [%ld, %ld]",
                              origin, shown, d->min, d->max);
        return AN_OK;
    }
    case T_ENUM: {
        size_t len = strlen(v);
        for (const char *p = d->choices; p && *p;) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            if (n == len && strncmp(p, v, n) == 0)
                return AN_OK;
            p = bar ? bar + 1 : NULL;
        }
        return an_err_set(err, AN_ERR_INVALID, "%s: %s is not one of %s", origin, shown,
                          d->choices);
    }
    case T_TIMEFRAME:
        if (!an_timeframe_valid(v))
            return an_err_set(err, AN_ERR_INVALID,
                              "%s: %s is not a timeframe (1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, "
                              "6h, 8h, 12h, 1d, 3d, 1w, 1M)",
                              origin, shown);
        return AN_OK;
    case T_TIMEFRAMES: {
        char copy[256];
        snprintf(copy, sizeof copy, "%s", v);
        int count = 0;
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            if (!an_timeframe_valid(tok))
                return an_err_set(err, AN_ERR_INVALID, "%s: '%.16s' is not a timeframe", origin,
                                  tok);
            count++;
        }
        if (!count)
            return an_err_set(err, AN_ERR_INVALID, "%s: no timeframes given", origin);
        return AN_OK;
    }
    case T_ENUMLIST: {
        int count = 0;
        for (const char *p = v; *p;) {
            while (*p == ' ' || *p == ',')
                p++;
            if (!*p)
                break;
            size_t n = strcspn(p, ", ");
            int okv = 0;
            for (const char *c = d->choices; c && *c;) {
                const char *bar = strchr(c, '|');
                size_t cn = bar ? (size_t)(bar - c) : strlen(c);
                if (cn == n && strncmp(c, p, n) == 0)
                    okv = 1;
                c = bar ? bar + 1 : NULL;
            }
            if (!okv)
                return an_err_set(err, AN_ERR_INVALID, "%s: '%.*s' is not one of %s", origin,
                                  (int)(n > 40 ? 40 : n), p, d->choices);
            count++;
            p += n;
        }
        if (!count)
            return an_err_set(err, AN_ERR_INVALID, "%s: nothing given (one or more of %s)", origin,
                              d->choices);
        return AN_OK;
    }
    case T_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0"))
            return an_err_set(err, AN_ERR_INVALID, "%s: %s must be true or false", origin, shown);
        return AN_OK;
    case T_LEVEL:
        if (an_log_level_parse(v) < 0)
            return an_err_set(err, AN_ERR_INVALID,
                              "%s: %s is not a log level (debug, info, warn, error, off)", origin,
                              shown);
        return AN_OK;
    case T_ADDR: {
        const char *colon = strrchr(v, ':');
        if (!colon || colon == v)
            return an_err_set(err, AN_ERR_INVALID, "%s: %s must be host:port", origin, shown);
        errno = 0;
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
            return an_err_set(err, AN_ERR_INVALID, "%s: %s has a bad port (0..65535)", origin,
                              shown);
        return AN_OK;
    }
    case T_SYMBOLS: {
        char *copy = strdup(v);
        if (!copy)
            return an_err_set(err, AN_ERR_NOMEM, "out of memory");
        an_code rc = AN_OK;
        int count = 0;
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && rc == AN_OK;
             tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ')
                tok++;
            size_t n = strlen(tok);
            while (n && tok[n - 1] == ' ')
                tok[--n] = '\0';
            rc = an_symbol_validate(tok, err);
            if (rc != AN_OK)
                an_err_prefix(err, "%s", origin);
            count++;
        }
        free(copy);
        if (rc == AN_OK && count == 0)
            rc = an_err_set(err, AN_ERR_INVALID, "%s: no symbols given", origin);
        return rc;
    }
    case T_STR:
    case T_SECRET:
        if (strlen(v) > 4096)
            return an_err_set(err, AN_ERR_INVALID, "%s: value too long", origin);
        return AN_OK;
    }
    return AN_OK;
}

static an_code set_val(an_config *cfg, const cdef *d, const char *v, int from, an_err *err)
{
    char origin[80];
    if (from == 1)
        snprintf(origin, sizeof origin, "environment variable %s", d->env);
    else
        snprintf(origin, sizeof origin, "flag --%s", d->flag);
    if (validate(d, v, origin, err) != AN_OK)
        return AN_ERR_INVALID;
    char *copy = strdup(v);
    if (!copy)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    free(cfg->val[d->key]);
    cfg->val[d->key] = copy;
    cfg->from[d->key] = from;
    return AN_OK;
}

an_code an_config_load(an_config *cfg, int argc, char **argv, an_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->args = calloc((size_t)argc + 1, sizeof *cfg->args);
    if (!cfg->args)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        const cdef *d = &table[i];
        if (d->def && !(cfg->val[i] = strdup(d->def)))
            return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        const cdef *d = &table[i];
        const char *v = d->env ? getenv(d->env) : NULL;
        if (v && *v && set_val(cfg, d, v, 1, err) != AN_OK)
            return AN_ERR_INVALID;
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
            if (strcmp(a, "--") == 0) {
                for (i++; i < argc; i++)
                    cfg->args[cfg->nargs++] = argv[i];
                break;
            }
            cfg->args[cfg->nargs++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const cdef *d = NULL;
        for (int k = 0; k < AN_CFG__COUNT; k++)
            if (table[k].flag && strlen(table[k].flag) == nlen &&
                strncmp(table[k].flag, name, nlen) == 0)
                d = &table[k];
        if (!d)
            return an_err_set(err, AN_ERR_INVALID, "unknown flag --%.*s (see autonama --help)",
                              (int)(nlen > 40 ? 40 : nlen), name);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && d->type == T_BOOL)
            v = "true"; /* a bare boolean flag */
        if (!v) {
            if (i + 1 >= argc)
                return an_err_set(err, AN_ERR_INVALID, "flag --%s needs a value", d->flag);
            v = argv[++i];
        }
        if (set_val(cfg, d, v, 2, err) != AN_OK)
            return AN_ERR_INVALID;
    }
    return AN_OK;
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

const char *an_config_get(const an_config *cfg, an_cfg_key key)
{
    return cfg->val[key];
}

long an_config_int(const an_config *cfg, an_cfg_key key)
{
    return cfg->val[key] ? strtol(cfg->val[key], NULL, 10) : 0;
}

int an_config_is_set(const an_config *cfg, an_cfg_key key)
{
    return cfg->from[key] != 0;
}

int an_config_bool(const an_config *cfg, an_cfg_key key)
{
    const char *v = cfg->val[key];
    return v && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
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

/* A comma-separated list into malloc'd strings; symbols are validated. */
static an_code split_list(const char *v, int symbols, char ***out, size_t *n, an_err *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = v; *p; p++)
        cap += *p == ',';
    char **list = calloc(cap, sizeof *list);
    char *copy = strdup(v);
    if (!list || !copy) {
        free(list);
        free(copy);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    size_t count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len && tok[len - 1] == ' ')
            tok[--len] = '\0';
        if (!len)
            continue;
        if ((symbols && an_symbol_validate(tok, err) != AN_OK) || !(list[count] = strdup(tok))) {
            an_config_free_list(list, count);
            free(copy);
            return err && err->code != AN_OK ? err->code
                                             : an_err_set(err, AN_ERR_NOMEM, "out of memory");
        }
        count++;
    }
    free(copy);
    *out = list;
    *n = count;
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
        const char *syms =
            cfg->from[AN_CFG_SYMBOLS] == 2 ? cfg->val[AN_CFG_SYMBOLS] : cfg->val[cats[i].symbols];
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
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
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

an_code an_config_list(const an_config *cfg, an_cfg_key key, char ***out, size_t *n, an_err *err)
{
    *out = NULL;
    *n = 0;
    if (key < 0 || key >= AN_CFG__COUNT || !cfg->val[key])
        return AN_OK;
    return split_list(cfg->val[key], table[key].type == T_SYMBOLS, out, n, err);
}

an_code an_config_indicator_timeframes(const an_config *cfg, char ***out, size_t *n, an_err *err)
{
    *out = NULL;
    *n = 0;
    const char *v = cfg->from[AN_CFG_TIMEFRAME] ? cfg->val[AN_CFG_TIMEFRAME]
                                                : cfg->val[AN_CFG_INDICATOR_TIMEFRAMES];
    char **list = calloc(strlen(v) / 2 + 2, sizeof *list);
    char *copy = strdup(v);
    if (!list || !copy) {
        free(list);
        free(copy);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    size_t count = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        if (!(list[count] = strdup(tok))) {
            an_config_free_list(list, count);
            free(copy);
            return an_err_set(err, AN_ERR_NOMEM, "out of memory");
        }
        count++;
    }
    free(copy);
    *out = list;
    *n = count;
    return AN_OK;
}
