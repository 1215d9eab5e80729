/*
 * test_import.c - the candle file readers, on every real file in
 * ../shared/data/candles and on generated files with every kind of bad row.
 */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source/import.h"
#include "test.h"

static char tmpdir[64];

static const char *write_tmp(const char *name, const char *content)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    fputs(content, f);
    fclose(f);
    return path;
}

static void real_file(const char *name, an_import_format fmt, const char *sym, const char *tf,
                      size_t rows, int64_t first, int64_t last)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", an_test_data_dir(), name);
    an_import_result r;
    an_err err = {0};
    AN_CHECK_OK(an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    AN_CHECK_MSG(r.format == fmt, "%s: format %s", name, an_import_format_name(r.format));
    AN_CHECK_STR(r.symbol, sym);
    AN_CHECK_STR(r.timeframe, tf);
    AN_CHECK_MSG(r.candles.n == rows, "%s: %zu rows, want %zu", name, r.candles.n, rows);
    if (r.candles.n) {
        AN_CHECK_INT(r.candles.v[0].ts, first);
        AN_CHECK_INT(r.candles.v[r.candles.n - 1].ts, last);
    }
    an_import_result_free(&r);
}

static void test_real_files(void)
{
    /* counts and ranges from SOURCES.md */
    real_file("BTC_USDT-1m.json", AN_IMPORT_FREQTRADE_JSON, "BTC/USDT", "1m", 42915,
              1618951320000LL, 1621543200000LL);
    real_file("ETH_USDT-1m.json", AN_IMPORT_FREQTRADE_JSON, "ETH/USDT", "1m", 42915,
              1618951200000LL, 1621543080000LL);
    real_file("BTC_USDT-5m.json", AN_IMPORT_FREQTRADE_JSON, "BTC/USDT", "5m", 65741,
              1606780800000LL, 1626555900000LL);
    real_file("BTC_USDT-1h.json", AN_IMPORT_FREQTRADE_JSON, "BTC/USDT", "1h", 5482, 1606780800000LL,
              1626552000000LL);
    real_file("ETH_USDT-1h.json", AN_IMPORT_FREQTRADE_JSON, "ETH/USDT", "1h", 5482, 1606780800000LL,
              1626552000000LL);
    real_file("Coinbase_BTCUSD_d.csv", AN_IMPORT_CDD_CSV, "BTC/USD", "1d", 1770, 1417392000000LL,
              1571270400000LL);
}

static void test_spot_values(void)
{
    char path[512];
    an_import_result r;
    an_err err = {0};
    snprintf(path, sizeof path, "%s/BTC_USDT-1h.json", an_test_data_dir());
    AN_CHECK_OK(an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    if (r.candles.n > 1) {
        an_candle c = r.candles.v[0];
        AN_CHECK_DBL(c.open, 19695.87);
        AN_CHECK_DBL(c.high, 19720.0);
        AN_CHECK_DBL(c.low, 19479.8);
        AN_CHECK_DBL(c.close, 19565.47);
        AN_CHECK_DBL(c.volume, 4570.361518);
        AN_CHECK_INT(r.candles.v[1].ts, 1606784400000LL);
        AN_CHECK_DBL(r.candles.v[1].close, 19605.75);
    }
    an_import_result_free(&r);
    /* the CSV runs newest first: reversed; first row of the file is the last candle */
    snprintf(path, sizeof path, "%s/Coinbase_BTCUSD_d.csv", an_test_data_dir());
    AN_CHECK_OK(an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    if (r.candles.n == 1770) {
        an_candle last = r.candles.v[1769], first = r.candles.v[0];
        AN_CHECK_DBL(last.open, 7993.54);
        AN_CHECK_DBL(last.high, 8070);
        AN_CHECK_DBL(last.low, 7937.01);
        AN_CHECK_DBL(last.close, 8034.32);
        AN_CHECK_DBL(last.volume, 1570.08); /* volume_btc, the base volume */
        AN_CHECK_DBL(first.volume, 0.05656);
    }
    an_import_result_free(&r);
    /* the maintenance gap of 2021-04-25 04:00-08:44 is kept as a gap */
    snprintf(path, sizeof path, "%s/ETH_USDT-1m.json", an_test_data_dir());
    AN_CHECK_OK(an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    size_t gaps = 0, missing = 0;
    for (size_t i = 1; i < r.candles.n; i++) {
        int64_t d = r.candles.v[i].ts - r.candles.v[i - 1].ts;
        if (d != 60000) {
            gaps++;
            missing += (size_t)(d / 60000 - 1);
        }
    }
    AN_CHECK_INT(gaps, 1);
    AN_CHECK_INT(missing, 284);
    an_import_result_free(&r);
}

static void test_header_csv(void)
{
    an_import_result r;
    an_err err = {0};
    const char *p = write_tmp("candles.csv", "Timestamp,Open,High,Low,Close,Volume\r\n"
                                             "2024-01-01T00:05:00Z,10,12,9,11,3.5\r\n"
                                             "2024-01-01 00:00,10,11,9.5,10,1\r\n"
                                             "\r\n");
    AN_CHECK(an_import_read(p, AN_IMPORT_AUTO, NULL, NULL, &r, &err) == AN_ERR_INVALID);
    AN_CHECK_MSG(strstr(err.msg, "--symbol") != NULL, "%s", err.msg);
    AN_CHECK_OK(an_import_read(p, AN_IMPORT_AUTO, "eth-usdt", "5m", &r, &err), err);
    AN_CHECK_INT(r.format, AN_IMPORT_HEADER_CSV);
    AN_CHECK_STR(r.symbol, "ETH/USDT");
    AN_CHECK_INT(r.candles.n, 2);
    AN_CHECK(r.candles.n == 2 && r.candles.v[0].ts == 1704067200000LL &&
             r.candles.v[1].volume == 3.5);
    an_import_result_free(&r);
    /* epoch seconds, symbol and timeframe columns, quoted fields */
    p = write_tmp("x.csv", "symbol,timeframe,time,open,high,low,close,volume\n"
                           "BTCUSDT,1h,1704067200,\"42,000\",1,1,1,1\n");
    AN_CHECK(an_import_read(p, AN_IMPORT_AUTO, NULL, NULL, &r, &err) == AN_ERR_PARSE);
    AN_CHECK_MSG(strstr(err.msg, "line 2") && strstr(err.msg, "open"), "%s", err.msg);
    p = write_tmp("y.csv", "symbol,timeframe,time,open,high,low,close,volume\n"
                           "BTCUSDT,1h,1704067200,\"42000\",42100,41900,42050,7\n"
                           "BTCUSDT,1h,1704070800,42050,42100,41900,42000,8\n");
    AN_CHECK_OK(an_import_read(p, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    AN_CHECK_STR(r.symbol, "BTC/USDT");
    AN_CHECK_STR(r.timeframe, "1h");
    AN_CHECK_INT(r.candles.n, 2);
    an_import_result_free(&r);
}

static void test_binance_csv(void)
{
    an_import_result r;
    an_err err = {0};
    /* milliseconds (before 2025) */
    const char *p = write_tmp("BTCUSDT-1m-2024-01.csv",
                              "1704067200000,42283.58,42298.62,42261.02,42298.61,35.92724,"
                              "1704067259999,1519522.1,1327,22.29,942737.0,0\n"
                              "1704067260000,42298.62,42320.00,42290.00,42300.00,21.5,"
                              "1704067319999,909500.1,900,10.1,427000.0,0\n");
    AN_CHECK_OK(an_import_read(p, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    AN_CHECK_INT(r.format, AN_IMPORT_BINANCE_CSV);
    AN_CHECK_STR(r.symbol, "BTC/USDT");
    AN_CHECK_STR(r.timeframe, "1m");
    AN_CHECK_INT(r.candles.n, 2);
    AN_CHECK(r.candles.n == 2 && r.candles.v[0].ts == 1704067200000LL &&
             r.candles.v[0].volume == 35.92724);
    an_import_result_free(&r);
    /* microseconds (spot files from 2025 on) */
    p = write_tmp(
        "ETHUSDT-1h-2025-01-01.csv",
        "1735689600000000,3337.78,3345.0,3330.0,3340.0,100.5,1735693199999999,1,1,1,1,0\n");
    AN_CHECK_OK(an_import_read(p, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    AN_CHECK_STR(r.symbol, "ETH/USDT");
    AN_CHECK_STR(r.timeframe, "1h");
    AN_CHECK(r.candles.n == 1 && r.candles.v[0].ts == 1735689600000LL);
    an_import_result_free(&r);
}

static void refused(const char *name, const char *content, const char *needle)
{
    an_import_result r;
    an_err err = {0};
    const char *p = write_tmp(name, content);
    an_code rc = an_import_read(p, AN_IMPORT_AUTO, NULL, NULL, &r, &err);
    AN_CHECK_MSG(rc != AN_OK, "%s accepted", name);
    AN_CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: '%s' lacks '%s'", name, err.msg, needle);
    AN_CHECK_MSG(strstr(err.msg, name) != NULL, "%s: message does not name the file: %s", name,
                 err.msg);
    AN_CHECK_INT(r.candles.n, 0);
}

static void test_bad_files(void)
{
    refused("A_USDT-1m.json", "[[60000,\"abc\",2,1,1,1]]", "open is not a number");
    refused("B_USDT-1m.json", "[[60000,1,0.5,1,1,1]]", "high is below low");
    refused("C_USDT-1m.json", "[[60000,1,2,1,1,1],[60000,1,2,1,1,1]]", "duplicate");
    refused("D_USDT-1m.json", "[[60001,1,2,1,1,1]]", "not aligned");
    refused("E_USDT-1m.json", "[[60000,1,2,1,1,1],[120000,1,2", "malformed JSON");
    refused("F_USDT-7m.json", "[[60000,1,2,1,1,1]]", "timeframe");
    refused("G_USDT-1m.json", "", "empty");
    refused("H_USDT-1m.json", "[[60000,1,2,1,1,-3]]", "volume must not be negative");
    refused("I_USDT-1m.json", "{\"a\":1}", "JSON array");
    refused("nocols.csv", "timestamp,open,high,low,close\n2024-01-01,1,2,1,1\n", "volume");
    refused("JUSDT-1m-2024-01.csv", "60000,1,2,1,1,nan,1,1,1,1,1,0\n", "volume 'nan'");
    refused("KUSDT-1m-2024-01.csv", "60000,1,2,1,1,1.2.3,1,1,1,1,1,0\n", "volume '1.2.3'");
    refused("LUSDT-1m-2024-01.csv", "60000,1,2,1,1,1,1,1,1,1,1,0\nxyz,1,2,1,1,1\n", "line 2");
    refused("short.csv", "timestamp,open,high,low,close,volume\n2024-01-01,1,2,1\n", "fields");
    /* extra fields are refused too, naming the row (they were accepted) */
    refused("long.csv",
            "timestamp,open,high,low,close,volume\n2024-01-01,1,2,1,1,1\n2024-01-02,1,2,1,1,1,9\n",
            "line 3: 7 fields, the header has 6");
    refused("MUSDT-1m-2024-01.csv", "60000,1,2,1,1,1,119999,1,1,1,1,0,77\n", "line 1: 13 fields");
    refused("NUSDT-1m-2024-01.csv", "60000,1,2,1,1,1\n",
            "line 1: 6 fields, a Binance klines row has 12");
    refused("O_USDT-1m.json", "[[60000,1,2,1,1,1,5]]",
            "candle 1: expected [time, open, high, low, close, volume] (it has more");

    an_import_result r;
    an_err err = {0};
    AN_CHECK(an_import_read("/nonexistent/x.json", AN_IMPORT_AUTO, NULL, NULL, &r, &err) ==
             AN_ERR_NOT_FOUND);
    AN_CHECK(strstr(err.msg, "/nonexistent/x.json") != NULL);
    AN_CHECK(an_import_read(tmpdir, AN_IMPORT_AUTO, NULL, NULL, &r, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "not a regular file") != NULL);
    an_import_format f;
    AN_CHECK(an_import_format_parse("xml", &f, &err) == AN_ERR_INVALID);
    AN_CHECK_OK(an_import_format_parse("binance-csv", &f, &err), err);
    AN_CHECK_INT(f, AN_IMPORT_BINANCE_CSV);
}

static void test_normalize_symbol(void)
{
    char out[AN_SYMBOL_MAX];
    an_err err = {0};
    const char *cases[][2] = {{"BTCUSDT", "BTC/USDT"},  {"btcusd", "BTC/USD"},
                              {"ETHBTC", "ETH/BTC"},    {"BTC_USDT", "BTC/USDT"},
                              {"sol-usdc", "SOL/USDC"}, {"BTC/FDUSD", "BTC/FDUSD"},
                              {"BTCFDUSD", "BTC/FDUSD"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        AN_CHECK_OK(an_import_normalize_symbol(cases[i][0], out, sizeof out, &err), err);
        AN_CHECK_STR(out, cases[i][1]);
    }
    AN_CHECK(an_import_normalize_symbol("FOOBAR", out, sizeof out, &err) == AN_ERR_INVALID);
    AN_CHECK(strstr(err.msg, "quote") != NULL);
    AN_CHECK(an_import_normalize_symbol("", out, sizeof out, &err) == AN_ERR_INVALID);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/autonama-import-XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    AN_RUN(test_real_files);
    AN_RUN(test_spot_values);
    AN_RUN(test_header_csv);
    AN_RUN(test_binance_csv);
    AN_RUN(test_bad_files);
    AN_RUN(test_normalize_symbol);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return AN_TEST_DONE();
}
