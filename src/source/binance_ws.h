/*
 * binance_ws.h - Binance's kline WebSocket streams: the client (libwebsockets)
 * and the validation of every kline event.
 *
 * The client subscribes to <symbol>@kline_<interval> combined streams
 * (BINANCE_WS_URL + /stream?streams=a/b/...), at most 1,024 per connection
 * and fewer when the path would pass libwebsockets 4.1's 2,048-byte request
 * line (~110 names a connection),
 * symbols lowercase. It follows Binance's rules: pings are answered (by
 * libwebsockets, at once), reconnects back off exponentially with jitter and
 * never exceed 300 connection attempts per 5 minutes, a connection is
 * replaced before Binance's 24 h cut, seamlessly (the new one is opened, then
 * the old one closed), and a connection that stays silent (no frame for
 * idle_ms) is dropped and reopened. It sends nothing but pongs and close
 * frames (the streams are named in the URL), so the 5 messages per second
 * limit on what a client sends cannot be reached.
 *
 * Every frame is validated like a REST reply (an_binance_ws_parse): the
 * wrapper, the event type, every field's type, decimal strings, l <= o, c <=
 * h, v >= 0, the open time aligned and the close time = next open - 1, the
 * stream, symbol and interval as subscribed. A bad frame is counted and
 * dropped; the connection stays up unless 100 frames in a row are bad. An
 * event older than the newest one seen for its series (or reopening a closed
 * candle) is counted as out of order and dropped.
 *
 * Threads: the client runs its own thread (the libwebsockets service loop);
 * the callbacks are called on it, one at a time, and must not block for long.
 * an_binance_ws_stats may be called from any thread.
 */
#ifndef AN_SOURCE_BINANCE_WS_H
#define AN_SOURCE_BINANCE_WS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/market.h"

#define AN_WS_MAX_STREAMS_PER_CONN 1024
#define AN_WS_MAX_ATTEMPTS 300           /* connection attempts ... */
#define AN_WS_ATTEMPT_WINDOW_MS 300000LL /* ... per 5 minutes */

/* One subscribed series. */
typedef struct an_ws_sub {
    char symbol[AN_SYMBOL_MAX];       /* "BTC/USDT" */
    char timeframe[AN_TIMEFRAME_MAX]; /* "1m" */
    char stream[AN_SYMBOL_MAX + 16];  /* "btcusdt@kline_1m" */
    char exchange[AN_SYMBOL_MAX];     /* "BTCUSDT" */
} an_ws_sub;

/* Fills sub from a symbol and a timeframe (validated: AN_ERR_INVALID). */
an_code an_ws_sub_init(an_ws_sub *sub, const char *symbol, const char *timeframe, an_err *err);

/* A validated kline event. */
typedef struct an_ws_kline {
    size_t sub;       /* index into the subscription list */
    an_candle candle; /* open time, o, h, l, c, v */
    int closed;       /* k.x */
    int64_t event_ms; /* E */
} an_ws_kline;

/* Why a frame was refused (an_binance_ws_parse's return, for the counters). */
typedef enum an_ws_bad {
    AN_WS_BAD_JSON = 0, /* not JSON, not an object, a binary frame, too large */
    AN_WS_BAD_WRAPPER,  /* no "stream"/"data", or a stream not subscribed */
    AN_WS_BAD_EVENT,    /* not a kline event, or a field missing or of the wrong type */
    AN_WS_BAD_VALUE,    /* a decimal string that is not one, or l <= o,c <= h / v >= 0 broken */
    AN_WS_BAD_TIME,     /* open time not aligned, close time not open + interval - 1 */
    AN_WS_BAD_MISMATCH, /* symbol or interval not the stream's */
    AN_WS_BAD_ORDER,    /* older than the newest event of the series (counted by the client) */
    AN_WS_BAD__COUNT
} an_ws_bad;

/* "json", "wrapper", ... */
const char *an_ws_bad_name(an_ws_bad b);

/* Parses and validates one text frame of a combined stream against the
 * subscriptions. AN_OK and *out; otherwise AN_ERR_PARSE or AN_ERR_INVALID,
 * *bad says which kind, err says what exactly. */
an_code an_binance_ws_parse(const char *text, size_t len, const an_ws_sub *subs, size_t nsubs,
                            an_ws_kline *out, an_ws_bad *bad, an_err *err);
/* The same, always through jansson (an_binance_ws_parse scans the plain form
 * without it): the reference the tests compare the scan with. */
an_code an_binance_ws_parse_json(const char *text, size_t len, const an_ws_sub *subs, size_t nsubs,
                                 an_ws_kline *out, an_ws_bad *bad, an_err *err);

/* The reconnect delay after `failures` failed attempts in a row (0: the
 * first retry): base_ms doubled per failure up to max_ms, then scaled by a
 * jitter factor in [0.5, 1) from u in [0, 1). */
int64_t an_ws_backoff_ms(int failures, int64_t base_ms, int64_t max_ms, double u);

/* Connection attempts in the last 5 minutes (a ring of their times). */
typedef struct an_ws_attempts {
    int64_t at[AN_WS_MAX_ATTEMPTS];
    int n, head;
} an_ws_attempts;

/* 0 when an attempt may start at now_ms (and records it), else the ms to
 * wait before one may. */
int64_t an_ws_attempt(an_ws_attempts *a, int64_t now_ms);

typedef struct an_binance_ws an_binance_ws;

typedef struct an_binance_ws_callbacks {
    void *ctx;
    /* a valid, in-order kline event */
    void (*on_kline)(void *ctx, const an_ws_kline *k, int64_t arrived_ms);
    /* the end of a service round that delivered klines (the frames of one
     * wait for the network): work deferred per kline can be done now */
    void (*on_batch)(void *ctx);
    /* a connection of the group was established; rotated = 1 when it replaced
     * a connection seamlessly (no gap), 0 after a start or a loss */
    void (*on_connected)(void *ctx, int group, int rotated);
    /* a connection was lost (not a planned rotation) */
    void (*on_lost)(void *ctx, int group, const char *why);
} an_binance_ws_callbacks;

typedef struct an_binance_ws_options {
    const char *url;       /* ws://host:port or wss://host:port, optional path prefix */
    const an_ws_sub *subs; /* copied */
    size_t nsubs;
    int streams_per_conn;   /* 1..1024 */
    int64_t idle_ms;        /* no frame for this long: drop and reconnect */
    int64_t max_age_ms;     /* replace a connection this old (Binance cuts at 24 h) */
    int64_t backoff_ms;     /* first reconnect delay */
    int64_t backoff_max_ms; /* longest reconnect delay */
    /* after a service round that delivered events, wait this long before
     * the next read (0: none): the frames that arrive meanwhile are read
     * together, with one poll, one read per connection and one on_batch */
    int64_t tick_ms;
    an_binance_ws_callbacks cb;
} an_binance_ws_options;

/* Starts the client (its thread connects at once). */
an_code an_binance_ws_start(const an_binance_ws_options *o, an_binance_ws **out, an_err *err);
/* Closes every connection and joins the thread; NULL is a no-op. */
void an_binance_ws_stop(an_binance_ws *w);

typedef struct an_binance_ws_stats {
    int groups;         /* connections wanted */
    int connected;      /* connections up now */
    int64_t attempts;   /* connection attempts */
    int64_t reconnects; /* connections reopened after a loss */
    int64_t rotations;  /* seamless replacements (age) */
    int64_t messages;   /* valid kline events delivered */
    int64_t bad[AN_WS_BAD__COUNT];
    int64_t bad_total;
} an_binance_ws_stats;

void an_binance_ws_get_stats(an_binance_ws *w, an_binance_ws_stats *st);

#endif
