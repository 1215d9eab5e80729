/*
 * test_core.c - core: timeframes, alignment, time parsing, candle checks,
 * the configuration table, log redaction.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "core/market.h"
#include "test.h"

static void test_timeframes(void)
{
    int monthly = -1;
    AN_CHECK_INT(an_timeframe_ms("1m", &monthly), 60000);
    AN_CHECK_INT(monthly, 0);
    AN_CHECK_INT(an_timeframe_ms("4h", NULL), 14400000);
    AN_CHECK_INT(an_timeframe_ms("1w", NULL), 604800000);
    AN_CHECK_INT(an_timeframe_ms("1M", &monthly), 0);
    AN_CHECK_INT(monthly, 1);
    AN_CHECK_INT(an_timeframe_ms("7m", NULL), -1);
    AN_CHECK_INT(an_timeframe_ms("1H", NULL), -1); /* case-sensitive, as Binance */
    AN_CHECK(!an_timeframe_valid(""));
    AN_CHECK(!an_timeframe_valid(NULL));
    const char *all[] = {"1s", "1m", "3m", "5m",  "15m", "30m", "1h", "2h",
                         "4h", "6h", "8h", "12h", "1d",  "3d",  "1w", "1M"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        AN_CHECK_MSG(an_timeframe_valid(all[i]), "%s", all[i]);
}

static void test_alignment(void)
{
    int64_t t = 0;
    an_err err = {0};
    AN_CHECK_OK(an_time_parse("2021-04-20T20:42:00Z", &t, &err), err);
    AN_CHECK(an_timeframe_aligned("1m", t));
    AN_CHECK(!an_timeframe_aligned("5m", t));
    AN_CHECK(!an_timeframe_aligned("1m", t + 1));
    /* Binance weeks open on Monday: 2024-01-01 was a Monday */
    AN_CHECK_OK(an_time_parse("2024-01-01", &t, &err), err);
    AN_CHECK(an_timeframe_aligned("1w", t));
    AN_CHECK(!an_timeframe_aligned("1w", t + 86400000LL));
    AN_CHECK(an_timeframe_aligned("1M", t));
    AN_CHECK_OK(an_time_parse("2024-02-01", &t, &err), err);
    AN_CHECK(an_timeframe_aligned("1M", t));
    AN_CHECK(!an_timeframe_aligned("1M", t + 86400000LL));
}

/* floor and next follow Binance's calendar, and agree with alignment */
static void test_floor_next(void)
{
    int64_t t = 1709294400123LL; /* 2024-03-01T12:00:00.123Z, a Friday */
    AN_CHECK_INT(an_timeframe_floor("1m", t), 1709294400000LL);
    AN_CHECK_INT(an_timeframe_floor("4h", t), 1709294400000LL - 0);
    AN_CHECK_INT(an_timeframe_floor("1d", t), 1709251200000LL);
    AN_CHECK_INT(an_timeframe_floor("1w", t), 1708905600000LL);              /* Monday 2024-02-26 */
    AN_CHECK_INT(an_timeframe_floor("1M", t), 1709251200000LL);              /* 2024-03-01 */
    AN_CHECK_INT(an_timeframe_next("1M", 1709251200000LL), 1711929600000LL); /* 2024-04-01 */
    AN_CHECK_INT(an_timeframe_next("1M", 1701388800000LL), 1704067200000LL); /* Dec -> Jan */
    AN_CHECK_INT(an_timeframe_next("1M", 1706745600000LL), 1709251200000LL); /* leap Feb */
    AN_CHECK_INT(an_timeframe_next("1w", 1708905600000LL), 1708905600000LL + 604800000LL);
    AN_CHECK_INT(an_timeframe_floor("7x", t), -1);
    static const char *tfs[] = {"1s", "1m", "3m", "5m",  "15m", "30m", "1h", "2h",
                                "4h", "6h", "8h", "12h", "1d",  "3d",  "1w", "1M"};
    for (size_t i = 0; i < sizeof tfs / sizeof *tfs; i++) {
        int64_t f = an_timeframe_floor(tfs[i], t), n = an_timeframe_next(tfs[i], f);
        AN_CHECK_MSG(an_timeframe_aligned(tfs[i], f) && an_timeframe_aligned(tfs[i], n) && f <= t &&
                         t < n,
                     "%s: floor %lld next %lld", tfs[i], (long long)f, (long long)n);
    }
}

static void test_time_parse_format(void)
{
    int64_t t = 0;
    an_err err = {0};
    char buf[40];
    AN_CHECK_OK(an_time_parse("1970-01-01", &t, &err), err);
    AN_CHECK_INT(t, 0);
    AN_CHECK_OK(an_time_parse("2020-12-01 00:00", &t, &err), err);
    AN_CHECK_INT(t, 1606780800000LL);
    AN_CHECK_OK(an_time_parse("2024-02-29T23:59:59+00:00", &t, &err), err);
    AN_CHECK_STR(an_time_format(t, buf, sizeof buf), "2024-02-29T23:59:59Z");
    AN_CHECK_OK(an_time_parse("1618951320000", &t, &err), err);
    AN_CHECK_STR(an_time_format(t, buf, sizeof buf), "2021-04-20T20:42:00Z");
    AN_CHECK_STR(an_time_format(1500, buf, sizeof buf), "1970-01-01T00:00:01.500Z");
    const char *bad[] = {"",           "2023-02-29",
                         "2024-13-01", "2024-01-01T25:00",
                         "yesterday",  "2024-01-01T10:00+02:00",
                         "2024-1-1",   "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        an_code rc = an_time_parse(bad[i], &t, &err);
        AN_CHECK_MSG(rc == AN_ERR_INVALID, "'%s' accepted", bad[i]);
    }
}

/* gmtime and strftime's text of ms (what an_time_format wrote before its
 * hand-written path; the year padded to 4 digits as %04d did). */
static void reference_time(int64_t ms, char *buf, size_t len)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    char rest[32];
    strftime(rest, sizeof rest, "%m-%dT%H:%M:%S", &tm);
    int n = snprintf(buf, len, "%04d-%s", tm.tm_year + 1900, rest);
    if (frac)
        n += snprintf(buf + n, len - (size_t)n, ".%03d", frac);
    snprintf(buf + n, len - (size_t)n, "Z");
}

/* The hand-written ISO text equals gmtime's over the years 0000..9999: the
 * edges, leap days, negative times, and 200,000 random instants. */
static void test_time_format_iso(void)
{
    const int64_t lo = -62167219200000LL, hi = 253402300800000LL; /* 0000-01-01, 10000-01-01 */
    int64_t edge[] = {0,
                      -1,
                      1,
                      999,
                      1000,
                      -1000,
                      -1001,
                      lo,
                      lo + 1,
                      hi - 1,
                      hi - 1000,
                      951782400000LL,
                      951868799999LL,
                      4107542400000LL,
                      -2203891200000LL,
                      1709251199000LL};
    char want[64], got[AN_TIME_ISO_MAX], via[64];
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        reference_time(edge[i], want, sizeof want);
        size_t n = an_time_format_iso(edge[i], got);
        AN_CHECK_MSG(strcmp(got, want) == 0 && n == strlen(want), "%" PRId64 ": %s, want %s",
                     edge[i], got, want);
    }
    uint64_t x = 88172645463325252ull; /* xorshift64 */
    int bad = 0;
    for (int i = 0; i < 200000 && bad < 5; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = lo + (int64_t)(x % (uint64_t)(hi - lo));
        if (i % 2)
            ms -= ms % 60000; /* whole minutes, as candles */
        reference_time(ms, want, sizeof want);
        an_time_format_iso(ms, got);
        an_time_format(ms, via, sizeof via);
        if (strcmp(got, want) != 0 || strcmp(via, want) != 0) {
            AN_CHECK_MSG(0, "%" PRId64 ": %s / %s, want %s", ms, got, via, want);
            bad++;
        }
    }
    /* outside 0000..9999: as gmtime and printf write them */
    reference_time(hi, want, sizeof want);
    an_time_format_iso(hi, got);
    AN_CHECK_STR(got, want);
}

static void test_candle_checks(void)
{
    an_err err = {0};
    an_candle ok = {60000, 10, 12, 9, 11, 5, 0};
    AN_CHECK_OK(an_candle_validate(&ok, 3, &err), err);
    an_candle c = ok;
    c.high = 8;
    AN_CHECK(an_candle_validate(&c, 3, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "row 3") && strstr(err.msg, "high is below low"));
    c = ok;
    c.open = 13;
    AN_CHECK(an_candle_validate(&c, -1, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "open is outside") && !strstr(err.msg, "row"));
    c = ok;
    c.volume = INFINITY;
    AN_CHECK(an_candle_validate(&c, 0, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "volume is not a finite number") != NULL);
    AN_CHECK_OK(an_symbol_validate("BTC/USDT", &err), err);
    AN_CHECK_OK(an_symbol_validate("1INCH/USDT", &err), err);
    const char *bad[] = {"BTCUSDT",
                         "btc/usdt",
                         "BTC/",
                         "/USDT",
                         "BTC/USDT/X",
                         "BTC USDT",
                         "BTC/USDT'; DROP TABLE x; --"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        AN_CHECK_MSG(an_symbol_validate(bad[i], &err) == AN_ERR_INVALID, "'%s' accepted", bad[i]);
    an_candle two[2] = {ok, ok};
    two[1].ts += 60000;
    AN_CHECK_OK(an_candles_validate("A/B", "1m", two, 2, &err), err);
    two[1].ts = two[0].ts - 60000;
    AN_CHECK(an_candles_validate("A/B", "1m", two, 2, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "earlier than") != NULL);
}

static void test_config(void)
{
    an_config cfg;
    an_err err = {0};
    setenv("POSTGRES_PORT", "6543", 1);
    setenv("POSTGRES_PASSWORD", "s3cr'et", 1);
    setenv("POSTGRES_SERVER", "db.local", 1);
    char *argv[] = {"--pg-port", "7000", "file1", "--timeframe=1h", "file2"};
    AN_CHECK_OK(an_config_load(&cfg, 5, argv, &err), err);
    AN_CHECK_INT(an_config_int(&cfg, AN_CFG_POSTGRES_PORT), 7000); /* flag beats env */
    AN_CHECK_STR(an_config_get(&cfg, AN_CFG_TIMEFRAME), "1h");
    AN_CHECK_STR(an_config_get(&cfg, AN_CFG_HTTP_ADDR), "127.0.0.1:8000");
    AN_CHECK_INT(cfg.nargs, 2);
    AN_CHECK(cfg.nargs == 2 && strcmp(cfg.args[1], "file2") == 0);
    AN_CHECK(an_config_has_postgres(&cfg));
    char *ci = an_config_pg_conninfo(&cfg);
    AN_CHECK_STR(ci, "host='db.local' port='7000' user='postgres' password='s3cr\\'et' "
                     "dbname='autonama' sslmode='prefer'");
    char red[256];
    an_log_redact(ci, red, sizeof red);
    AN_CHECK_MSG(strstr(red, "s3cr") == NULL, "%s", red);
    AN_CHECK(strstr(red, "password=*** dbname='autonama'") != NULL);
    free(ci);
    char **syms = NULL;
    size_t n = 0;
    AN_CHECK_OK(an_config_symbols(&cfg, &syms, &n, &err), err);
    AN_CHECK_INT(n, 5);
    AN_CHECK(n == 5 && strcmp(syms[4], "SOL/USDT") == 0);
    an_config_free_list(syms, n);
    an_config_free(&cfg);

    setenv("POSTGRES_PORT", "70000", 1);
    AN_CHECK(an_config_load(&cfg, 0, NULL, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "POSTGRES_PORT") && strstr(err.msg, "[1, 65535]"));
    an_config_free(&cfg);
    unsetenv("POSTGRES_PORT");
    char *a2[] = {"--timeframe", "2m"};
    AN_CHECK(an_config_load(&cfg, 2, a2, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "--timeframe") != NULL);
    an_config_free(&cfg);
    char *a3[] = {"--symbols"};
    AN_CHECK(an_config_load(&cfg, 1, a3, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "needs a value") != NULL);
    an_config_free(&cfg);
    char *a4[] = {"--http-addr", "localhost"};
    AN_CHECK(an_config_load(&cfg, 2, a4, &err) == AN_ERR_INVALID);
    an_config_free(&cfg);
    /* secrets are never echoed in errors */
    setenv("AUTONAMA_API_KEY", "x", 1);
    char *a5[] = {"--log-level", "loud"};
    AN_CHECK(an_config_load(&cfg, 2, a5, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "loud") != NULL);
    an_config_free(&cfg);
    unsetenv("AUTONAMA_API_KEY");
    /* issue 10, fault 2: AUTONAMA_INDICATORS is checked at load, the value named */
    setenv("AUTONAMA_INDICATORS", "sma:20,macd:1e10:26:9", 1);
    AN_CHECK(an_config_load(&cfg, 0, NULL, &err) == AN_ERR_INVALID);
    AN_CHECK_MSG(strstr(err.msg, "AUTONAMA_INDICATORS") && strstr(err.msg, "1e10"), "%s", err.msg);
    an_config_free(&cfg);
    unsetenv("AUTONAMA_INDICATORS");
    char *a6[] = {"--indicators", "bbands:20:nan"};
    AN_CHECK(an_config_load(&cfg, 2, a6, &err) == AN_ERR_INVALID);
    AN_CHECK_MSG(strstr(err.msg, "--indicators") && strstr(err.msg, "nan"), "%s", err.msg);
    an_config_free(&cfg);
    /* issue 12: the DuckDB store's read connections, 1..64, named when bad */
    AN_CHECK_OK(an_config_load(&cfg, 0, NULL, &err), err);
    AN_CHECK_INT(an_config_int(&cfg, AN_CFG_DUCKDB_READERS), 4);
    an_config_free(&cfg);
    const char *bad_readers[] = {"0", "65", "four", "-2"};
    for (size_t i = 0; i < sizeof bad_readers / sizeof bad_readers[0]; i++) {
        setenv("AUTONAMA_DUCKDB_READERS", bad_readers[i], 1);
        AN_CHECK_MSG(an_config_load(&cfg, 0, NULL, &err) == AN_ERR_INVALID, "readers '%s' accepted",
                     bad_readers[i]);
        AN_CHECK_MSG(strstr(err.msg, "AUTONAMA_DUCKDB_READERS") && strstr(err.msg, "[1, 64]"), "%s",
                     err.msg);
        an_config_free(&cfg);
    }
    unsetenv("AUTONAMA_DUCKDB_READERS");
    char *a7[] = {"--duckdb-readers", "2"};
    AN_CHECK_OK(an_config_load(&cfg, 2, a7, &err), err);
    AN_CHECK_INT(an_config_int(&cfg, AN_CFG_DUCKDB_READERS), 2);
    an_config_free(&cfg);
    unsetenv("POSTGRES_PASSWORD");
    unsetenv("POSTGRES_SERVER");
}

static void test_redact_uri(void)
{
    char out[128];
    an_log_redact("postgresql://bob:hunter2@db:5432/x", out, sizeof out);
    AN_CHECK_STR(out, "postgresql://bob:***@db:5432/x");
    an_log_redact("host=a password=plain user=b", out, sizeof out);
    AN_CHECK_STR(out, "host=a password=*** user=b");
    /* DuckDB's postgres extension quotes the whole connection string */
    an_log_redact("Unable to connect to Postgres at \"host='h' password='p w\\'x' dbname='d'\"",
                  out, sizeof out);
    AN_CHECK_STR(out, "Unable to connect to Postgres at \"host='h' password=*** dbname='d'\"");
}

int main(void)
{
    AN_RUN(test_timeframes);
    AN_RUN(test_alignment);
    AN_RUN(test_floor_next);
    AN_RUN(test_time_parse_format);
    AN_RUN(test_time_format_iso);
    AN_RUN(test_candle_checks);
    AN_RUN(test_config);
    AN_RUN(test_redact_uri);
    return AN_TEST_DONE();
}
