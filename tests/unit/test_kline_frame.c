/*
 * test_kline_frame.c - the kline frame scan (source/kline_frame.c) against
 * the jansson reading it stands in for (an_binance_ws_parse_json): over the
 * fake exchange's own frames, good and bad (tests/fake_binance/frames.py),
 * over frames the scan must leave to jansson, over every one-byte change of
 * a good frame, and its decimal conversion against strtod (50,000 random
 * decimals; 2,000,000 with AN_CHECK_ALL=1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/binance_ws.h"
#include "source/kline_frame.h"
#include "test.h"

#define NSUBS 5
static an_ws_sub subs[NSUBS];

static void setup(void)
{
    static const char *const syms[NSUBS] = {"BTC/USDT", "ETH/USDT", "DOGE/USDT", "SHIB/USDT",
                                            "XRP/USDT"};
    an_err err = {0};
    for (int i = 0; i < NSUBS; i++)
        AN_CHECK_OK(an_ws_sub_init(&subs[i], syms[i], "1m", &err), err);
}

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Both readings of text give the same verdict: the same kline, or the same
 * kind and message. Returns the code. */
static an_code same_verdict(const char *text, size_t len, const char *label)
{
    an_ws_kline a = {0}, b = {0};
    an_ws_bad ba = AN_WS_BAD__COUNT, bb = AN_WS_BAD__COUNT;
    an_err ea = {0}, eb = {0};
    an_code ca = an_binance_ws_parse(text, len, subs, NSUBS, &a, &ba, &ea);
    an_code cb = an_binance_ws_parse_json(text, len, subs, NSUBS, &b, &bb, &eb);
    AN_CHECK_MSG(ca == cb, "%s: scan %d, jansson %d (%s | %s)", label, ca, cb, ea.msg, eb.msg);
    if (ca != cb)
        return ca;
    if (ca == AN_OK) {
        AN_CHECK_MSG(a.sub == b.sub && a.candle.ts == b.candle.ts && a.closed == b.closed &&
                         a.event_ms == b.event_ms && same_double(a.candle.open, b.candle.open) &&
                         same_double(a.candle.high, b.candle.high) &&
                         same_double(a.candle.low, b.candle.low) &&
                         same_double(a.candle.close, b.candle.close) &&
                         same_double(a.candle.volume, b.candle.volume),
                     "%s: the readings differ", label);
    } else {
        AN_CHECK_MSG(ba == bb && strcmp(ea.msg, eb.msg) == 0, "%s: %s '%s' against %s '%s'", label,
                     an_ws_bad_name(ba), ea.msg, an_ws_bad_name(bb), eb.msg);
    }
    return ca;
}

/* The fake's frames: every good one scanned (no jansson) and read as
 * jansson reads it; every bad one refused alike. */
static void test_fake_frames(void)
{
    setup();
    const char *py = getenv("AN_PYTHON");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/fake_binance/frames.py' 10",
             py ? py : AN_SOURCE_DIR "/.deps/venv/bin/python", AN_SOURCE_DIR);
    FILE *p = popen(cmd, "r");
    AN_CHECK(p != NULL);
    if (!p)
        return;
    static char line[8192];
    long good = 0, bad = 0, scanned = 0, closed = 0;
    while (fgets(line, sizeof line, p)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = 0;
        int is_bad = strncmp(line, "bad ", 4) == 0;
        const char *text = is_bad ? line + 4 : line;
        size_t len = is_bad ? n - 4 : n;
        an_ws_fields f;
        if (is_bad) {
            bad += same_verdict(text, len, text) != AN_OK;
            continue;
        }
        scanned += an_ws_scan(text, len, &f);
        an_ws_kline k;
        an_ws_bad kind;
        an_err err = {0};
        if (same_verdict(text, len, text) == AN_OK &&
            an_binance_ws_parse(text, len, subs, NSUBS, &k, &kind, &err) == AN_OK)
            closed += k.closed;
        good++;
    }
    AN_CHECK_INT(pclose(p), 0);
    /* 5 generated series (6 with the real file) x 10 candles x 61 frames */
    AN_CHECK_MSG(good >= 5 * 10 * 61, "only %ld good frames from the fake", good);
    AN_CHECK_INT(scanned, good);
    AN_CHECK_INT(closed, good / 61);
    AN_CHECK_INT(bad, good / 61 * 11);
}

static const char GOOD[] =
    "{\"stream\":\"btcusdt@kline_1m\",\"data\":{\"e\":\"kline\",\"E\":1672531200017,\"s\":"
    "\"BTCUSDT\",\"k\":{\"t\":1672531200000,\"T\":1672531259999,\"s\":\"BTCUSDT\",\"i\":\"1m\","
    "\"f\":100,\"L\":100,\"o\":\"332.20500000\",\"c\":\"332.20601667\",\"h\":\"332.20666667\","
    "\"l\":\"332.20463333\",\"v\":\"6.67118616\",\"n\":0,\"x\":false,\"q\":\"2216.51049580\","
    "\"V\":\"2.11573764\",\"Q\":\"702.95665159\",\"B\":\"0\"}}}";

/* GOOD with its first `from` replaced by `to`. */
static void edit(char *out, size_t cap, const char *from, const char *to)
{
    const char *at = strstr(GOOD, from);
    AN_CHECK_MSG(at != NULL, "'%s' not in the frame", from);
    if (!at) {
        snprintf(out, cap, "%s", GOOD);
        return;
    }
    snprintf(out, cap, "%.*s%s%s", (int)(at - GOOD), GOOD, to, at + strlen(from));
}

/* Frames valid or not that the scan leaves to jansson, and what jansson says. */
static void test_left_to_jansson(void)
{
    setup();
    static const struct {
        const char *from, *to;
        int ok;    /* jansson accepts it */
        int scans; /* the scan reads it (then binance_ws.c still leaves it to jansson) */
    } cases[] = {
        {"\"s\":\"BTCUSDT\",\"k\"", "\"s\":\"BTC\\u0055SDT\",\"k\"", 1, 0},
        {"\"o\":\"332.20500000\"", "\"o\":\"33\\u0032.20500000\"", 1, 0},
        {"\"B\":\"0\"", "\"B\":{\"a\":[1,2.5,null]}", 1, 0},
        {"\"B\":\"0\"", "\"B\":\"\xc3\xa9\"", 1, 0},
        {"\"B\":\"0\"", "\"B\":\"0\",\"Z\":1", 1, 0},
        {"\"n\":0", "\"n\":0,\"n\":1", 0, 0},
        {"\"E\":1672531200017", "\"E\":1672531200017,\"E\":1", 0, 0},
        {"\"t\":1672531200000", "\"t\":1672531200000.0", 0, 0},
        {"\"t\":1672531200000", "\"t\":1.6725312e12", 0, 0},
        {"\"t\":1672531200000", "\"t\":01672531200000", 0, 0},
        {"\"n\":0", "\"n\":1234567890123456789", 1, 0},
        {"\"n\":0", "\"n\":99999999999999999999", 0, 0},
        {"\"n\":0", "\"n\":-0", 1, 1},
        {"\"x\":false", "\"x\":fals", 0, 0},
        {"\"x\":false", "\"x\":null", 0, 0},
        {"\"o\":\"332.20500000\"", "\"o\":\"332.2\\n\"", 0, 0},
        {"{\"stream\"", "[{\"stream\"", 0, 0},
        {"{\"stream\"", "{\"a\":1,\"stream\"", 1, 0},
        {"\"stream\":\"btcusdt@kline_1m\"", "\"stream\":\"btcusdt@kline_1m\",\"stream\":\"x\"", 0,
         0},
        {"\"e\":\"kline\"", "\"e\":\"trade\"", 0, 1},
        {"btcusdt@kline_1m", "adausdt@kline_1m", 0, 1},
    };
    char b[2048];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        edit(b, sizeof b, cases[i].from, cases[i].to);
        an_ws_fields f;
        AN_CHECK_MSG(an_ws_scan(b, strlen(b), &f) == cases[i].scans, "scan: %s", b);
        an_code c = same_verdict(b, strlen(b), cases[i].to);
        AN_CHECK_MSG((c == AN_OK) == cases[i].ok, "%s: %s", cases[i].to,
                     c == AN_OK ? "accepted" : "refused");
    }
    /* whitespace around the tokens is read by the scan itself */
    const char *spaced = " { \"stream\" : \"btcusdt@kline_1m\" ,\n\"data\":{\"e\":\"kline\","
                         "\"E\":1,\"s\":\"BTCUSDT\",\"k\":{\"t\":1672531200000,\"T\":"
                         "1672531259999,\"s\":\"BTCUSDT\",\"i\":\"1m\",\"f\":1,\"L\":2,\"o\":\"1\","
                         "\"c\":\"1\",\"h\":\"1\",\"l\":\"1\",\"v\":\"0\",\"n\":0,\"x\":true,\"q\":"
                         "\"0\",\"V\":\"0\",\"Q\":\"0\",\"B\":\"0\" } }\t}\r\n";
    an_ws_fields f;
    AN_CHECK(an_ws_scan(spaced, strlen(spaced), &f));
    AN_CHECK_INT(same_verdict(spaced, strlen(spaced), "spaced"), AN_OK);
}

/* Every byte of a good frame replaced (or removed): both readings agree. */
static void test_every_byte_changed(void)
{
    setup();
    static const char repl[] = "\"\\{}[],:09.-eE +xtT\x01\x80";
    size_t n = strlen(GOOD);
    char b[1024];
    long accepted = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r <= sizeof repl - 1; r++) { /* r == sizeof repl - 1: removed */
            memcpy(b, GOOD, n);
            size_t len = n;
            if (r < sizeof repl - 1) {
                b[i] = repl[r];
            } else {
                memmove(b + i, b + i + 1, n - i - 1);
                len--;
            }
            char label[64];
            snprintf(label, sizeof label, "byte %zu -> %d", i, r < sizeof repl - 1 ? repl[r] : -1);
            accepted += same_verdict(b, len, label) == AN_OK;
        }
    }
    AN_CHECK(accepted > 0); /* some changes keep a valid frame (a digit for a digit) */
}

/* an_ws_decimal equals strtod bit for bit, and refuses what is not one. */
static void test_decimals(void)
{
    static const char *const fixed[] = {"0",
                                        ".5",
                                        "5.",
                                        "00.000",
                                        "9007199254740993",
                                        "9007199254740992.5",
                                        "0.1",
                                        "1e5",
                                        "",
                                        "1.2.3",
                                        "12345678901234567890.5",
                                        "0.000000000000000000000001",
                                        "-1",
                                        ".",
                                        "+1",
                                        "4.35000000",
                                        "123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        const char *s = fixed[i];
        size_t n = strlen(s), digits = strspn(s, "0123456789.");
        int want = n > 0 && n <= 40 && digits == n && strchr(s, '.') == strrchr(s, '.') &&
                   strcspn(s, "0123456789") < n;
        double d = -1;
        int got = an_ws_decimal((an_ws_span){s, n}, &d);
        AN_CHECK_MSG(got == want, "'%s': %d", s, got);
        if (got)
            AN_CHECK_MSG(same_double(d, strtod(s, NULL)), "'%s': %.17g", s, d);
    }
    uint64_t x = 88172645463325252ull;
    char s[48];
    long cases =
        getenv("AN_CHECK_ALL") && strcmp(getenv("AN_CHECK_ALL"), "1") == 0 ? 2000000 : 50000;
    for (long i = 0; i < cases; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t n = 1 + x % 24, dot = (x >> 8) % (n + 1);
        for (size_t j = 0; j < n; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s[j] = (char)('0' + (x >> 20) % 10);
        }
        if (dot < n)
            s[dot] = '.';
        s[n] = 0;
        double d;
        if (!an_ws_decimal((an_ws_span){s, n}, &d)) {
            AN_CHECK_MSG(strcmp(s, ".") == 0, "'%s' refused", s);
            continue;
        }
        if (!same_double(d, strtod(s, NULL))) {
            AN_CHECK_MSG(0, "'%s': %.17g, strtod %.17g", s, d, strtod(s, NULL));
            break;
        }
    }
}

int main(void)
{
    AN_RUN(test_fake_frames);
    AN_RUN(test_left_to_jansson);
    AN_RUN(test_every_byte_changed);
    AN_RUN(test_decimals);
    return AN_TEST_DONE();
}
