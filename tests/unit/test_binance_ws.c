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

/* A good frame with one field replaced: key "k.o" -> value text. */
static void frame(char *buf, size_t len, const char *stream, const char *e, const char *s,
                  const char *t, const char *T, const char *i, const char *o, const char *h,
                  const char *l, const char *c, const char *v, const char *x)
{
    snprintf(buf, len,
             "{\"stream\":\"%s\",\"data\":{\"e\":\"%s\",\"E\":1672515782136,\"s\":\"%s\","
             "\"k\":{\"t\":%s,\"T\":%s,\"s\":\"%s\",\"i\":\"%s\",\"f\":100,\"L\":200,"
             "\"o\":%s,\"c\":%s,\"h\":%s,\"l\":%s,\"v\":%s,\"n\":100,\"x\":%s,"
             "\"q\":\"1.0000\",\"V\":\"500\",\"Q\":\"0.500\",\"B\":\"123456\"}}}",
             stream, e, s, t, T, s, i, o, c, h, l, v, x);
}

#define GOOD "btcusdt@kline_1m", "kline", "BTCUSDT", "1672515780000", "1672515839999", "1m"
#define VALS "\"16500.10\"", "\"16510.00\"", "\"16490.5\"", "\"16505.25\"", "\"12.5\""

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
    frame(buf, sizeof buf, GOOD, VALS, "false");
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
    frame(buf, sizeof buf, GOOD, VALS, "true");
    AN_CHECK_OK(an_binance_ws_parse(buf, strlen(buf), subs, 2, &k, &bad, &err), err);
    AN_CHECK_INT(k.closed, 1);
}

static void expect(const char *label, const char *text, an_ws_bad want)
{
    an_ws_kline k;
    an_ws_bad bad = AN_WS_BAD__COUNT;
    an_err err = {0};
    an_code c = an_binance_ws_parse(text, strlen(text), subs, 2, &k, &bad, &err);
    AN_CHECK_MSG(c != AN_OK, "%s accepted", label);
    AN_CHECK_MSG(bad == want, "%s: kind %s, expected %s (%s)", label, an_ws_bad_name(bad),
                 an_ws_bad_name(want), err.msg);
    AN_CHECK_MSG(err.msg[0] != 0, "%s: no message", label);
}

static void test_bad_frames(void)
{
    setup();
    char b[1024];
    expect("not json", "{\"stream\":\"btcusdt@kline_1m\",\"da", AN_WS_BAD_JSON);
    expect("array", "[1,2]", AN_WS_BAD_WRAPPER);
    expect("raw event", "{\"e\":\"kline\"}", AN_WS_BAD_WRAPPER);
    frame(b, sizeof b, "xrpusdt@kline_1m", "kline", "XRPUSDT", "1672515780000", "1672515839999",
          "1m", VALS, "false");
    expect("stream not subscribed", b, AN_WS_BAD_WRAPPER);
    frame(b, sizeof b, "btcusdt@kline_1m", "trade", "BTCUSDT", "1672515780000", "1672515839999",
          "1m", VALS, "false");
    expect("not a kline", b, AN_WS_BAD_EVENT);
    frame(b, sizeof b, "btcusdt@kline_1m", "kline", "BTCUSDT", "\"1672515780000\"", "1672515839999",
          "1m", VALS, "false");
    expect("t as a string", b, AN_WS_BAD_EVENT);
    frame(b, sizeof b, GOOD, VALS, "1");
    expect("x not a boolean", b, AN_WS_BAD_EVENT);
    frame(b, sizeof b, GOOD, "16500.10", "\"16510.00\"", "\"16490.5\"", "\"16505.25\"", "\"12.5\"",
          "false");
    expect("price as a number", b, AN_WS_BAD_VALUE);
    frame(b, sizeof b, GOOD, "\"abc\"", "\"16510.00\"", "\"16490.5\"", "\"16505.25\"", "\"12.5\"",
          "false");
    expect("price not a decimal", b, AN_WS_BAD_VALUE);
    frame(b, sizeof b, GOOD, "\"\"", "\"16510.00\"", "\"16490.5\"", "\"16505.25\"", "\"12.5\"",
          "false");
    expect("empty price", b, AN_WS_BAD_VALUE);
    frame(b, sizeof b, GOOD, "\"16500.10\"", "\"16400.00\"", "\"16490.5\"", "\"16505.25\"",
          "\"12.5\"", "false");
    expect("high below low", b, AN_WS_BAD_VALUE);
    frame(b, sizeof b, GOOD, "\"16600.10\"", "\"16510.00\"", "\"16490.5\"", "\"16505.25\"",
          "\"12.5\"", "false");
    expect("open above high", b, AN_WS_BAD_VALUE);
    frame(b, sizeof b, GOOD, "\"16500.10\"", "\"16510.00\"", "\"16490.5\"", "\"16505.25\"",
          "\"-1.5\"", "false");
    expect("negative volume", b, AN_WS_BAD_VALUE);
    frame(b, sizeof b, "btcusdt@kline_1m", "kline", "BTCUSDT", "1672515780001", "1672515840000",
          "1m", VALS, "false");
    expect("misaligned open time", b, AN_WS_BAD_TIME);
    frame(b, sizeof b, "btcusdt@kline_1m", "kline", "BTCUSDT", "1672515780000", "1672515840999",
          "1m", VALS, "false");
    expect("wrong close time", b, AN_WS_BAD_TIME);
    frame(b, sizeof b, "btcusdt@kline_1m", "kline", "ETHUSDT", "1672515780000", "1672515839999",
          "1m", VALS, "false");
    expect("another symbol", b, AN_WS_BAD_MISMATCH);
    frame(b, sizeof b, "btcusdt@kline_1m", "kline", "BTCUSDT", "1672515780000", "1672515839999",
          "5m", VALS, "false");
    expect("another interval", b, AN_WS_BAD_MISMATCH);
    /* every prefix of a good frame is refused */
    frame(b, sizeof b, GOOD, VALS, "false");
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

int main(void)
{
    AN_RUN(test_sub_names);
    AN_RUN(test_good_frame);
    AN_RUN(test_bad_frames);
    AN_RUN(test_backoff);
    AN_RUN(test_attempts);
    return AN_TEST_DONE();
}
