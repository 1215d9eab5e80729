/*
 * test_api_params.c - the API's parameter parsing and the timeframe plan
 * (src/api/params.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/params.h"
#include "test.h"

static an_series_info S(const char *sym, const char *tf, int64_t rows)
{
    an_series_info s;
    memset(&s, 0, sizeof s);
    snprintf(s.symbol, sizeof s.symbol, "%s", sym);
    snprintf(s.timeframe, sizeof s.timeframe, "%s", tf);
    s.rows = rows;
    return s;
}

static void test_plan(void)
{
    an_series_info v[] = {S("BTC/USDT", "1m", 10), S("BTC/USDT", "5m", 10), S("ETH/USDT", "5m", 10),
                          S("ETH/USDT", "1h", 10), S("SOL/USDT", "1d", 10)};
    size_t n = sizeof v / sizeof v[0];
    an_tf_plan p;
    /* stored wins */
    p = an_api_plan_timeframe("BTC/USDT", "5m", v, n);
    AN_CHECK_INT(p.source, AN_TF_STORED);
    AN_CHECK_STR(p.from_tf, "5m");
    /* 1h/1d: rollup of 1m */
    p = an_api_plan_timeframe("BTC/USDT", "1h", v, n);
    AN_CHECK_INT(p.source, AN_TF_ROLLUP);
    AN_CHECK_STR(p.from_tf, "1m");
    p = an_api_plan_timeframe("BTC/USDT", "1d", v, n);
    AN_CHECK_INT(p.source, AN_TF_ROLLUP);
    /* 15m / 4h: bucket from the finest divisor */
    p = an_api_plan_timeframe("BTC/USDT", "15m", v, n);
    AN_CHECK_INT(p.source, AN_TF_BUCKET);
    AN_CHECK_STR(p.from_tf, "1m");
    AN_CHECK_INT(p.tf_ms, 900000);
    p = an_api_plan_timeframe("BTC/USDT", "4h", v, n);
    AN_CHECK_INT(p.source, AN_TF_BUCKET);
    AN_CHECK_STR(p.from_tf, "1m");
    /* no 1m: 1h stored, 4h from 5m (finer than 1h), 1d from 5m */
    p = an_api_plan_timeframe("ETH/USDT", "1h", v, n);
    AN_CHECK_INT(p.source, AN_TF_STORED);
    p = an_api_plan_timeframe("ETH/USDT", "4h", v, n);
    AN_CHECK_INT(p.source, AN_TF_BUCKET);
    AN_CHECK_STR(p.from_tf, "5m");
    p = an_api_plan_timeframe("ETH/USDT", "1d", v, n);
    AN_CHECK_INT(p.source, AN_TF_BUCKET);
    AN_CHECK_STR(p.from_tf, "5m");
    /* nothing finer */
    p = an_api_plan_timeframe("ETH/USDT", "1m", v, n);
    AN_CHECK_INT(p.source, AN_TF_NONE);
    p = an_api_plan_timeframe("SOL/USDT", "4h", v, n);
    AN_CHECK_INT(p.source, AN_TF_NONE);
    p = an_api_plan_timeframe("SOL/USDT", "1d", v, n);
    AN_CHECK_INT(p.source, AN_TF_STORED);
    p = an_api_plan_timeframe("XRP/USDT", "1m", v, n);
    AN_CHECK_INT(p.source, AN_TF_NONE);
    /* an empty series does not count */
    an_series_info e[] = {S("BTC/USDT", "1m", 0)};
    p = an_api_plan_timeframe("BTC/USDT", "1h", e, 1);
    AN_CHECK_INT(p.source, AN_TF_NONE);
    AN_CHECK(an_api_timeframe_known("4h"));
    AN_CHECK(!an_api_timeframe_known("2h"));
    AN_CHECK(!an_api_timeframe_known(NULL));
}

static void test_limit_time(void)
{
    an_err e = {0};
    long l = 0;
    AN_CHECK_OK(an_api_parse_limit("500", 5000, &l, &e), e);
    AN_CHECK_INT(l, 500);
    AN_CHECK(an_api_parse_limit("0", 5000, &l, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_limit("5001", 5000, &l, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_limit("-1", 5000, &l, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_limit("1e3", 5000, &l, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_limit("", 5000, &l, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_limit("99999999999999999999999", 5000, &l, &e) == AN_ERR_INVALID);
    int64_t ms = 0;
    AN_CHECK_OK(an_api_parse_time("2021-05-01", &ms, &e), e);
    AN_CHECK_INT(ms, 1619827200000LL);
    AN_CHECK_OK(an_api_parse_time("2021-05-01T01:00:00Z", &ms, &e), e);
    AN_CHECK_INT(ms, 1619830800000LL);
    AN_CHECK_OK(an_api_parse_time("1619827200000", &ms, &e), e);
    AN_CHECK(an_api_parse_time("2021-13-01", &ms, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_time("yesterday", &ms, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_time("", &ms, &e) == AN_ERR_INVALID);
    /* openapi.json's Time pattern, exactly: ms without leading zeros, up to
     * 2999-12-31 (schemathesis sent end=00, and 00 was taken for 0) */
    AN_CHECK_OK(an_api_parse_time("0", &ms, &e), e);
    AN_CHECK_INT(ms, 0);
    AN_CHECK_OK(an_api_parse_time("32503679999999", &ms, &e), e);
    AN_CHECK(an_api_parse_time("32503680000000", &ms, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_time("00", &ms, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_time("01619827200000", &ms, &e) == AN_ERR_INVALID);
    AN_CHECK_OK(an_api_parse_time("2999-12-31T23:59:59Z", &ms, &e), e);
    AN_CHECK_OK(an_api_parse_time("2024-02-29 00:00+00:00", &ms, &e), e);
    AN_CHECK(an_api_parse_time("2023-02-29", &ms, &e) == AN_ERR_INVALID);
    /* sscanf's %d takes a sign or a space: every field must be digits */
    const char *shapes[] = {"2021-05-02T-5:-5",    "2021-05-02T 5: 5", "2021-05-02T05:-5",
                            "2021-05-02T05:05:-5", "2021--5-02",       "+2021-05-02",
                            "2021-05- 2",          "2021-05-02T+5:05"};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        AN_CHECK_MSG(an_api_parse_time(shapes[i], &ms, &e) == AN_ERR_INVALID, "%s accepted",
                     shapes[i]);
        AN_CHECK_MSG(strstr(e.msg, shapes[i]) != NULL, "%s: %s", shapes[i], e.msg);
    }
}

/* Every JSON string we write is valid UTF-8: invalid or cut sequences in
 * what is echoed become U+FFFD, valid ones pass unchanged. */
static void test_jstr_utf8(void)
{
    struct {
        const char *in, *want;
    } v[] = {{"BTC/\xc3\x28\xff", "\"BTC/\\ufffd(\\ufffd\""},
             {"\xff\xfe", "\"\\ufffd\\ufffd\""},
             {"BTC\xe2\x82", "\"BTC\\ufffd\\ufffd\""},
             {"\xc0\xaf", "\"\\ufffd\\ufffd\""},
             {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
             {"a\"b\\c\x01\x7f", "\"a\\\"b\\\\c\\u0001\\u007f\""}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        an_api_reply rp = {0};
        an_api_put_jstr(&rp, v[i].in);
        AN_CHECK(!rp.oom && rp.body);
        if (rp.body)
            AN_CHECK_STR(rp.body, v[i].want);
        free(rp.body);
    }
}

static void test_names(void)
{
    const char *good[] = {
        "sma_20", "ema_12",      "rsi_14",    "bb_upper_20", "bb_lower_20_2",     "bb_middle_20",
        "macd",   "macd_signal", "macd_hist", "macd_5_35_5", "macd_signal_5_35_5"};
    const char *bad[] = {"sma",          "sma_",   "sma_x",       "foo_1", "macd_5",
                         "rsi_14_2",     "SMA_20", "sma_20;drop", "",      "bb_upper",
                         "macd_signal_", "sma_1.", "sma__20"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        AN_CHECK_MSG(an_api_indicator_name_valid(good[i]), "%s should be valid", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        AN_CHECK_MSG(!an_api_indicator_name_valid(bad[i]), "%s should be invalid", bad[i]);
    char names[4][AN_INDICATOR_NAME_MAX];
    int n = 0;
    an_err e = {0};
    AN_CHECK_OK(an_api_parse_names("sma_20,rsi_14", names, 4, &n, &e), e);
    AN_CHECK_INT(n, 2);
    AN_CHECK_STR(names[1], "rsi_14");
    AN_CHECK(an_api_parse_names("sma_20,sma_20", names, 4, &n, &e) == AN_ERR_INVALID);
    AN_CHECK(strstr(e.msg, "twice") != NULL);
    AN_CHECK(an_api_parse_names("sma_20,bogus", names, 4, &n, &e) == AN_ERR_INVALID);
    AN_CHECK(strstr(e.msg, "bogus") != NULL);
    AN_CHECK(an_api_parse_names("sma_20,", names, 4, &n, &e) == AN_ERR_INVALID);
    AN_CHECK(an_api_parse_names("a,b,c,d,e", names, 4, &n, &e) == AN_ERR_INVALID);
}

static void test_bearer(void)
{
    AN_CHECK(an_api_bearer_ok("Bearer s3cret", "s3cret"));
    AN_CHECK(an_api_bearer_ok("bearer s3cret", "s3cret"));
    AN_CHECK(!an_api_bearer_ok("Bearer s3cre", "s3cret"));
    AN_CHECK(!an_api_bearer_ok("Bearer s3cretX", "s3cret"));
    AN_CHECK(!an_api_bearer_ok("Basic s3cret", "s3cret"));
    AN_CHECK(!an_api_bearer_ok("Bearer ", "s3cret"));
    AN_CHECK(!an_api_bearer_ok(NULL, "s3cret"));
    AN_CHECK(!an_api_bearer_ok("Bearer ", ""));
    AN_CHECK(!an_api_bearer_ok("Bearer x", NULL));
}

/* JSON numbers read back as the same double; exchange values stay short. */
static void test_doubles(void)
{
    an_api_reply rp = {0};
    const double fixed[] = {0,
                            1,
                            -1,
                            40116.04,
                            0.00001234,
                            2888.177015999999,
                            1e-300,
                            1.7976931348623157e308,
                            89999999.99999999,
                            9e7,
                            0.1,
                            -221.62459349985875,
                            123456.78901234};
    srand(7);
    for (int i = 0; i < 200000; i++) {
        double v;
        if (i < (int)(sizeof fixed / sizeof fixed[0]))
            v = fixed[i];
        else if (i % 2)
            v = (double)(rand() % 100000000) / 100.0 + (double)(rand() % 1000) * 1000.0;
        else {
            uint64_t bits = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 11) ^ (uint64_t)rand();
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v))
                continue;
        }
        rp.len = 0;
        an_api_put_double(&rp, v);
        AN_CHECK(!rp.oom);
        if (rp.oom)
            break;
        char *end;
        double back = strtod(rp.body, &end);
        if (back != v || *end) {
            AN_CHECK_MSG(0, "%.17g printed as %s", v, rp.body);
            break;
        }
    }
    rp.len = 0;
    an_api_put_double(&rp, 40116.04);
    AN_CHECK_STR(rp.body, "40116.04");
    rp.len = 0;
    an_api_put_double(&rp, -0.5);
    AN_CHECK_STR(rp.body, "-0.5");
    rp.len = 0;
    an_api_put_double(&rp, NAN);
    AN_CHECK_STR(rp.body, "null");
    free(rp.body);
}

/* Random bytes into every parser: no crash (ASan), no acceptance of junk. */
static void test_random_input(void)
{
    char s[48], names[8][AN_INDICATOR_NAME_MAX];
    an_err e;
    srand(11);
    for (int i = 0; i < 100000; i++) {
        size_t n = (size_t)(rand() % 47);
        for (size_t k = 0; k < n; k++)
            s[k] = (char)(1 + rand() % 255);
        s[n] = '\0';
        long l;
        int64_t ms;
        int nn;
        (void)an_api_parse_limit(s, 5000, &l, &e);
        (void)an_api_parse_time(s, &ms, &e);
        (void)an_api_parse_names(s, names, 8, &nn, &e);
        (void)an_api_indicator_name_valid(s);
        (void)an_api_bearer_ok(s, "key");
        (void)an_api_timeframe_known(s);
    }
    AN_CHECK(1);
}

/* The task routes will use a {param} tail: /api/v1/tasks/{id}. */
static void test_route_match(void)
{
    static const char *const none[] = {NULL};
    an_api_route exact = {
        .method = "GET", .path = "/api/v1/tasks", .name = "/api/v1/tasks", .params = none};
    an_api_route tail = {.method = "GET",
                         .path = "/api/v1/tasks/",
                         .tail = 1,
                         .name = "/api/v1/tasks/{id}",
                         .params = none};
    const char *t = "x";
    AN_CHECK(an_api_route_match(&exact, "/api/v1/tasks", &t) && t == NULL);
    AN_CHECK(!an_api_route_match(&exact, "/api/v1/tasks/", &t));
    AN_CHECK(!an_api_route_match(&exact, "/api/v1/task", &t));
    AN_CHECK(an_api_route_match(&tail, "/api/v1/tasks/42", &t) && strcmp(t, "42") == 0);
    AN_CHECK(an_api_route_match(&tail, "/api/v1/tasks/update_market_data", &t));
    AN_CHECK_STR(t, "update_market_data");
    AN_CHECK(!an_api_route_match(&tail, "/api/v1/tasks/", &t));
    AN_CHECK(!an_api_route_match(&tail, "/api/v1/tasks", &t));
    AN_CHECK(!an_api_route_match(&tail, "/api/v1/tasks/42/x", &t));
    /* every real route matches its own path */
    for (size_t i = 0; i < an_api_nroutes; i++)
        AN_CHECK(an_api_routes[i].tail ||
                 an_api_route_match(&an_api_routes[i], an_api_routes[i].path, &t));
}

int main(void)
{
    AN_RUN(test_route_match);
    AN_RUN(test_doubles);
    AN_RUN(test_random_input);
    AN_RUN(test_plan);
    AN_RUN(test_limit_time);
    AN_RUN(test_jstr_utf8);
    AN_RUN(test_names);
    AN_RUN(test_bearer);
    return AN_TEST_DONE();
}
