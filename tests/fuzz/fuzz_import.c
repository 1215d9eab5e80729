/*
 * fuzz_import.c - libFuzzer target: every candle-file format `autonama
 * import` reads (auto-detected, freqtrade JSON, CryptoDataDownload CSV,
 * CSV with a header, Binance public-data CSV). The first byte picks the
 * format and the file name; the rest is the file. A file that reads must
 * hold valid candles.
 */
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/market.h"
#include "fuzz.h"
#include "source/import.h"

static const char *const NAMES[] = {"BTC_USDT-1m.json", "BTC_USDT-1h.csv", "BTCUSDT-1m-2024-01.csv",
                                    "Binance_BTCUSDT_d.csv"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/autonama-fuzz-import-%d", (int)getpid());
        mkdir(dir, 0700);
    }
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, NAMES[(data[0] >> 3) % 4]);
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data + 1, 1, size - 1, f);
    fclose(f);
    an_import_format fmt = (an_import_format)(data[0] % 5);
    an_import_result r = {0};
    an_err err = {0};
    if (an_import_read(path, fmt, NULL, NULL, &r, &err) == AN_OK) {
        an_err e2 = {0};
        if (r.candles.n > 0 &&
            an_candles_validate(r.symbol, r.timeframe, r.candles.v, r.candles.n, &e2) != AN_OK)
            abort();
    }
    an_import_result_free(&r);
    unlink(path);
    return 0;
}
