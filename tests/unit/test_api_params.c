/*
 * test_api_params.c - the API's parameter parsing and the timeframe plan
 * (src/api/params.c).
 */
#include <string.h>

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

int main(void)
{
    AN_RUN(test_plan);
    AN_RUN(test_limit_time);
    AN_RUN(test_names);
    AN_RUN(test_bearer);
    return AN_TEST_DONE();
}
