/*
 * test_binance_ws.c - the kline stream's frame validation, reconnect backoff
 * and attempt limiter (source/binance_ws.c), without a network.
 */
#include <stdio.h>
#include <string.h>

#include "source/binance_ws.h"
#include "test.h"

static an_ws_sub subs[2];

static void setup(void)
{
    an_err err = {0};
    AN_CHECK_OK(an_ws_sub_init(&subs[0], "BTC/USDT", "1m", &err), err);
    AN_CHECK_OK(an_ws_sub_init(&subs[1], "ETH/USDT", "1m", &err), err);
}

/* A frame's fields; NULL takes the good frame's value. */
typedef struct parts {
    const char *stream, *e, *s, *t, *T, *i, *o, *h, *l, *c, *v, *x;
} parts;

static const parts GOOD = {"btcusdt@kline_1m", "kline",        "BTCUSDT",      "1672515780000",
                           "1672515839999",    "1m",           "\"16500.10\"", "\"16510.00\"",
                           "\"16490.5\"",      "\"16505.25\"", "\"12.5\"",     "false"};

#define OR(f) (p->f ? p->f : GOOD.f)

/* The combined-stream frame of p (NULL fields from GOOD). */
static void frame(char *buf, size_t len, const parts *p)
{
    snprintf(buf, len,
             "{\"stream\":\"%s\",\"data\":{\"e\":\"%s\",\"E\":1672515782136,\"s\":\"%s\","
             "\"k\":{\"t\":%s,\"T\":%s,\"s\":\"%s\",\"i\":\"%s\",\"f\":100,\"L\":200,"
             "\"o\":%s,\"c\":%s,\"h\":%s,\"l\":%s,\"v\":%s,\"n\":100,\"x\":%s,"
             "\"q\":\"1.0000\",\"V\":\"500\",\"Q\":\"0.500\",\"B\":\"123456\"}}}",
             OR(stream), OR(e), OR(s), OR(t), OR(T), OR(s), OR(i), OR(o), OR(c), OR(h), OR(l),
             OR(v), OR(x));
}

static void test_sub_names(void)
{
    setup();
    AN_CHECK_STR(subs[0].stream, "btcusdt@kline_1m");
    AN_CHECK_STR(subs[0].exchange, "BTCUSDT");
    an_ws_sub s;
    an_err err = {0};
    AN_CHECK(an_ws_sub_init(&s, "btc-usdt", "1m", &err) == AN_ERR_INVALID);
    AN_CHECK(an_ws_sub_init(&s, "BTC/USDT", "7m", &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "7m") != NULL);
}

static void test_good_frame(void)
{
    setup();
    char buf[1024];
    frame(buf, sizeof buf, &GOOD);
    an_ws_kline k;
    an_ws_bad bad;
    an_err err = {0};
    AN_CHECK_OK(an_binance_ws_parse(buf, strlen(buf), subs, 2, &k, &bad, &err), err);
    AN_CHECK_INT(k.sub, 0);
    AN_CHECK_INT(k.candle.ts, 1672515780000LL);
    AN_CHECK(k.candle.open == 16500.10 && k.candle.high == 16510.00);
    AN_CHECK(k.candle.low == 16490.5 && k.candle.close == 16505.25 && k.candle.volume == 12.5);
    AN_CHECK_INT(k.closed, 0);
    AN_CHECK_INT(k.event_ms, 1672515782136LL);
    frame(buf, sizeof buf, &(parts){.x = "true"});
    AN_CHECK_OK(an_binance_ws_parse(buf, strlen(buf), subs, 2, &k, &bad, &err), err);
    AN_CHECK_INT(k.closed, 1);
}

/* Frames with one thing wrong, and the kind each must be counted as. */
static const struct {
    const char *label;
    const char *text; /* a whole frame, or NULL: the frame of p */
    parts p;
    an_ws_bad want;
} BAD[] = {
    {"not json", "{\"stream\":\"btcusdt@kline_1m\",\"da", {0}, AN_WS_BAD_JSON},
    {"array", "[1,2]", {0}, AN_WS_BAD_WRAPPER},
    {"raw event", "{\"e\":\"kline\"}", {0}, AN_WS_BAD_WRAPPER},
    {"stream not subscribed",
     NULL,
     {.stream = "xrpusdt@kline_1m", .s = "XRPUSDT"},
     AN_WS_BAD_WRAPPER},
    {"not a kline", NULL, {.e = "trade"}, AN_WS_BAD_EVENT},
    {"t as a string", NULL, {.t = "\"1672515780000\""}, AN_WS_BAD_EVENT},
    {"x not a boolean", NULL, {.x = "1"}, AN_WS_BAD_EVENT},
    {"price as a number", NULL, {.o = "16500.10"}, AN_WS_BAD_VALUE},
    {"price not a decimal", NULL, {.o = "\"abc\""}, AN_WS_BAD_VALUE},
    {"empty price", NULL, {.o = "\"\""}, AN_WS_BAD_VALUE},
    {"high below low", NULL, {.h = "\"16400.00\""}, AN_WS_BAD_VALUE},
    {"open above high", NULL, {.o = "\"16600.10\""}, AN_WS_BAD_VALUE},
    {"negative volume", NULL, {.v = "\"-1.5\""}, AN_WS_BAD_VALUE},
    {"misaligned open time", NULL, {.t = "1672515780001", .T = "1672515840000"}, AN_WS_BAD_TIME},
    {"wrong close time", NULL, {.T = "1672515840999"}, AN_WS_BAD_TIME},
    {"another symbol", NULL, {.s = "ETHUSDT"}, AN_WS_BAD_MISMATCH},
    {"another interval", NULL, {.i = "5m"}, AN_WS_BAD_MISMATCH},
};

static void test_bad_frames(void)
{
    setup();
    char b[1024];
    for (size_t n = 0; n < sizeof BAD / sizeof BAD[0]; n++) {
        frame(b, sizeof b, &BAD[n].p);
        const char *text = BAD[n].text ? BAD[n].text : b;
        an_ws_kline k;
        an_ws_bad bad = AN_WS_BAD__COUNT;
        an_err err = {0};
        an_code c = an_binance_ws_parse(text, strlen(text), subs, 2, &k, &bad, &err);
        AN_CHECK_MSG(c != AN_OK, "%s accepted", BAD[n].label);
        AN_CHECK_MSG(bad == BAD[n].want, "%s: kind %s, expected %s (%s)", BAD[n].label,
                     an_ws_bad_name(bad), an_ws_bad_name(BAD[n].want), err.msg);
        AN_CHECK_MSG(err.msg[0] != 0, "%s: no message", BAD[n].label);
    }
    /* every prefix of a good frame is refused */
    frame(b, sizeof b, &GOOD);
    size_t n = strlen(b);
    long accepted = 0;
    for (size_t i = 0; i < n; i++) {
        an_ws_kline k;
        an_ws_bad bad;
        an_err err = {0};
        accepted += an_binance_ws_parse(b, i, subs, 2, &k, &bad, &err) == AN_OK;
    }
    AN_CHECK_INT(accepted, 0);
}

static void test_backoff(void)
{
    for (int f = 0; f < 12; f++) {
        int64_t lo = an_ws_backoff_ms(f, 500, 30000, 0.0);
        int64_t hi = an_ws_backoff_ms(f, 500, 30000, 0.999);
        int64_t full = 500;
        for (int i = 0; i < f && full < 30000; i++)
            full *= 2;
        if (full > 30000)
            full = 30000;
        AN_CHECK_MSG(lo == full / 2 && hi < full && hi >= full * 99 / 100,
                     "failures %d: [%lld, %lld] for %lld", f, (long long)lo, (long long)hi,
                     (long long)full);
    }
}

static void test_attempts(void)
{
    static an_ws_attempts a;
    memset(&a, 0, sizeof a);
    int64_t t = 1000000;
    for (int i = 0; i < AN_WS_MAX_ATTEMPTS; i++)
        AN_CHECK_INT(an_ws_attempt(&a, t + i), 0);
    /* the 301st within 5 minutes waits until the first one is 5 minutes old */
    int64_t w = an_ws_attempt(&a, t + 1000);
    AN_CHECK_INT(w, AN_WS_ATTEMPT_WINDOW_MS - 1000);
    AN_CHECK_INT(an_ws_attempt(&a, t + AN_WS_ATTEMPT_WINDOW_MS), 0);
    AN_CHECK(an_ws_attempt(&a, t + AN_WS_ATTEMPT_WINDOW_MS) > 0);
    AN_CHECK_INT(an_ws_attempt(&a, t + AN_WS_ATTEMPT_WINDOW_MS + 1), 0);
}

static void on_kline_none(void *ctx, const an_ws_kline *k, int64_t arrived_ms)
{
    (void)ctx, (void)k, (void)arrived_ms;
}

/* 1,000 streams: libwebsockets 4.1 cuts a request line at 2,048 bytes, so
 * the client opens as many connections as keep every path under it (before,
 * one connection of an 18 KB path that never came up). */
static void test_groups_fit_the_request_line(void)
{
    static an_ws_sub many[1000];
    an_err err = {0};
    for (int i = 0; i < 1000; i++) {
        char sym[16];
        snprintf(sym, sizeof sym, "B%c%c%c/USDT", 'A' + i / 676 % 26, 'A' + i / 26 % 26,
                 'A' + i % 26);
        AN_CHECK_OK(an_ws_sub_init(&many[i], sym, "1m", &err), err);
    }
    an_binance_ws_options o = {0};
    o.url = "ws://127.0.0.1:9"; /* nothing listens: the connections just retry */
    o.subs = many;
    o.nsubs = 1000;
    o.streams_per_conn = 1024;
    o.idle_ms = 60000;
    o.max_age_ms = 3600000;
    o.backoff_ms = 1000;
    o.backoff_max_ms = 30000;
    o.cb.on_kline = on_kline_none;
    an_binance_ws *w = NULL;
    AN_CHECK_OK(an_binance_ws_start(&o, &w, &err), err);
    an_binance_ws_stats st = {0};
    an_binance_ws_get_stats(w, &st);
    /* "baaausdt@kline_1m/" is 18 bytes: 111 to a 2,000-byte path */
    AN_CHECK_INT(st.groups, 10);
    an_binance_ws_stop(w);
    o.streams_per_conn = 50; /* the setting still caps a connection */
    AN_CHECK_OK(an_binance_ws_start(&o, &w, &err), err);
    an_binance_ws_get_stats(w, &st);
    AN_CHECK_INT(st.groups, 20);
    an_binance_ws_stop(w);
}

int main(void)
{
    AN_RUN(test_sub_names);
    AN_RUN(test_good_frame);
    AN_RUN(test_bad_frames);
    AN_RUN(test_backoff);
    AN_RUN(test_attempts);
    AN_RUN(test_groups_fit_the_request_line);
    return AN_TEST_DONE();
}
