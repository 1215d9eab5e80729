/*
 * market.h - the market-data vocabulary shared by every layer: a candle,
 * timeframes, symbols, and the checks every candle passes before it may be
 * stored. Pure functions, no allocation except an_candles and an_closes
 * (growable arrays the caller owns and frees with an_candles_free and
 * an_closes_free). Thread-safe.
 */
#ifndef AN_CORE_MARKET_H
#define AN_CORE_MARKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* One OHLCV candle. ts is the candle's open time in milliseconds since the
 * Unix epoch, UTC. volume is in the base asset. */
typedef struct an_candle {
    int64_t ts;
    double open, high, low, close, volume;
    int64_t count; /* a bucketed read's source candles in the bucket; 0 otherwise */
} an_candle;

/* A growable array of candles; zero-initialise before use. */
typedef struct an_candles {
    an_candle *v;
    size_t n, cap;
} an_candles;

an_code an_candles_push(an_candles *a, const an_candle *c, an_err *err);
void an_candles_free(an_candles *a);
/* A growable pair of arrays, candle open times and close prices (the
 * indicator engine's series); zero-initialise, free with an_closes_free. */
typedef struct an_closes {
    int64_t *ts;
    double *close;
    size_t n, cap;
} an_closes;

/* Appends n (time, close) pairs. */
an_code an_closes_push(an_closes *a, const int64_t *ts, const double *close, size_t n, an_err *err);
void an_closes_free(an_closes *a);

/* Sorts by ts ascending (stable order for equal ts is not guaranteed). */
void an_candles_sort(an_candles *a);
/* Reverses the array in place (newest-first files). */
void an_candles_reverse(an_candles *a);

#define AN_SYMBOL_MAX 32
#define AN_TIMEFRAME_MAX 8

/* Length in ms of a Binance interval ("1s", "1m", "3m", ..., "1d", "3d", "1w").
 * "1M" (a calendar month) returns 0 with *monthly = 1. Returns -1 when the
 * timeframe is unknown. */
int64_t an_timeframe_ms(const char *tf, int *monthly);

/* 1 when tf is a timeframe autonama accepts (every Binance interval). */
int an_timeframe_valid(const char *tf);

/* 1 when ts (ms) is the open time of a tf candle: aligned to the interval,
 * weeks starting on Monday 00:00 UTC, months on the 1st 00:00 UTC. */
int an_timeframe_aligned(const char *tf, int64_t ts);

/* The open time of the tf candle that contains ts (ms; ts >= 0), and the open
 * time of the candle after the one opening at open. Both follow Binance's
 * calendar: weeks open on Monday 00:00 UTC, months on the 1st. -1 when tf is
 * unknown. */
int64_t an_timeframe_floor(const char *tf, int64_t ts);
int64_t an_timeframe_next(const char *tf, int64_t open);

/* Validates a symbol in the seed's form BASE/QUOTE (upper-case letters and
 * digits, 1..15 each). Fills err naming the symbol when it is not. */
an_code an_symbol_validate(const char *symbol, an_err *err);

/* Checks one candle: finite values, prices > 0, volume >= 0, low <= open,
 * close <= high. On failure err names the field; row is put in the message
 * (pass -1 to leave it out). */
an_code an_candle_validate(const an_candle *c, long row, an_err *err);

/* Checks a whole batch for one (symbol, timeframe): every candle valid and
 * aligned, timestamps strictly increasing. */
an_code an_candles_validate(const char *symbol, const char *tf, const an_candle *v, size_t n,
                            an_err *err);

/* Formats ms as ISO-8601 UTC "2021-04-20T20:42:00Z" (or with .mmm when ms is
 * not whole seconds) into buf; returns buf. */
char *an_time_format(int64_t ms, char *buf, size_t len);

/* an_time_format's text into buf (AN_TIME_ISO_MAX bytes), returning its
 * length: without gmtime or printf for the years 0000 to 9999 (a reply's
 * every candle is printed with it). */
#define AN_TIME_ISO_MAX 40
size_t an_time_format_iso(int64_t ms, char *buf);

/* Parses "2024-01-01", "2024-01-01T12:30:00Z", "2024-01-01 12:30:00",
 * or an integer of ms since the epoch. Returns AN_OK and *ms. */
an_code an_time_parse(const char *s, int64_t *ms, an_err *err);

/* The latest time an argument may name: 2999-12-31T23:59:59.999Z, the end of
 * the date form's years. */
#define AN_TIME_ARG_MAX_MS 32503679999999LL

/* A time given as an argument (an API parameter, a task's since or until):
 * an_time_parse's forms, with milliseconds written canonically (digits only,
 * no leading zero but "0") and at most AN_TIME_ARG_MAX_MS, so that exactly
 * the strings of openapi.json's Time pattern are accepted. */
an_code an_time_parse_arg(const char *s, int64_t *ms, an_err *err);

/* Milliseconds since the Unix epoch, wall clock. */
int64_t an_now_ms(void);

#endif
