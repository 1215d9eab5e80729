/*
 * binance.h - the Binance spot REST client (GET /api/v3/klines,
 * /api/v3/exchangeInfo, /api/v3/time) on libcurl.
 *
 * A client is one keep-alive connection (one CURL handle): use one per
 * thread. Clients that share an an_binance_limiter pace their requests
 * together: the limiter follows the X-MBX-USED-WEIGHT-1M header and stays
 * under a weight budget per minute, and honours 429/418 Retry-After for
 * everyone. Transient failures (5xx, timeouts, resets, truncated or malformed
 * replies, replies that fail validation) are retried with exponential backoff
 * and jitter, a bounded number of times. A reply that fails validation never
 * leaves the client: the caller only ever sees checked candles.
 */
#ifndef AN_SOURCE_BINANCE_H
#define AN_SOURCE_BINANCE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/market.h"

typedef struct an_binance_limiter an_binance_limiter;

/* budget: request weight per minute to stay under (Binance allows 6,000 per
 * IP; the limiter keeps 10% headroom). */
an_binance_limiter *an_binance_limiter_new(int budget);
void an_binance_limiter_free(an_binance_limiter *l);

typedef struct an_binance_options {
    const char *base_url;        /* e.g. https://api.binance.com (no trailing /) */
    int timeout_ms;              /* per request; default 10,000 */
    int max_tries;               /* per request; default 6 */
    int backoff_ms;              /* first retry delay; doubles each try; default 250 */
    int backoff_max_ms;          /* cap; default 10,000 */
    an_binance_limiter *limiter; /* shared pacing; NULL: none */
    const atomic_int *stop_flag; /* when non-NULL and set, waits end early (shutdown) */
} an_binance_options;

typedef struct an_binance an_binance;

an_code an_binance_open(const an_binance_options *opt, an_binance **out, an_err *err);
void an_binance_close(an_binance *b);

/* "BTC/USDT" -> "BTCUSDT". */
void an_binance_symbol(const char *symbol, char *out, size_t len);

/* GET /api/v3/time. */
an_code an_binance_server_time(an_binance *b, int64_t *ms, an_err *err);

/* GET /api/v3/exchangeInfo?symbol=: *exists = 0 when Binance does not list
 * the symbol (an unknown symbol is found before any klines fetch). */
an_code an_binance_symbol_info(an_binance *b, const char *symbol, int *exists, an_err *err);

/* GET /api/v3/klines for [start_ms, end_ms] (open times, inclusive; end_ms <
 * 0 for none), at most limit (1..1000) candles, oldest first, appended to
 * out after validation. *page_rows gets the number of rows of the reply. */
an_code an_binance_klines(an_binance *b, const char *symbol, const char *interval, int64_t start_ms,
                          int64_t end_ms, int limit, an_candles *out, size_t *page_rows,
                          an_err *err);

/* A decimal string as Binance sends prices and volumes: digits with at most
 * one '.', at least one digit; no sign, exponent, nan or inf. 0 and *out
 * (correctly rounded, strtod's value), else -1. Used by the klines reply's
 * scanner and the kline stream's (source/kline_frame.c). */
int an_binance_decimal(const char *b, size_t n, double *out);

/* Parses and validates a klines reply body: 12-element rows, prices and
 * volumes as decimal strings, high >= low, open and close within [low, high],
 * volume >= 0, open times aligned to the interval and strictly increasing,
 * close time = open time + interval - 1. On failure nothing is appended and
 * err names the symbol, interval, row and field. */
an_code an_binance_parse_klines(const char *body, size_t len, const char *symbol,
                                const char *interval, an_candles *out, an_err *err);

/* Parses a GET /api/v3/time body: {"serverTime": ms}. */
an_code an_binance_parse_server_time(const char *body, size_t len, int64_t *ms, an_err *err);

/* Parses a GET /api/v3/exchangeInfo body: *found is 1 when its symbols array
 * lists exchange_symbol ("BTCUSDT"). AN_ERR_PARSE when there is no such array. */
an_code an_binance_parse_exchange_info(const char *body, size_t len, const char *exchange_symbol,
                                       int *found, an_err *err);

/* Request counters of a client, for logs and tests. */
typedef struct an_binance_stats {
    int64_t requests, retries, rate_limited, refused_replies, weight_used;
} an_binance_stats;

void an_binance_get_stats(const an_binance *b, an_binance_stats *out);

#endif
