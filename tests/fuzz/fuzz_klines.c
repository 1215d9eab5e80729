/*
 * fuzz_klines.c - libFuzzer target: Binance's REST replies (klines,
 * exchangeInfo, server time) as the exchange might send them. The first
 * byte picks the interval, so alignment and monthly/weekly paths are
 * reached; a reply that parses must have produced valid candles.
 */
#include "core/market.h"
#include "fuzz.h"
#include "source/binance.h"

static const char *const INTERVALS[] = {"1m", "5m", "1h", "4h", "1d", "1w", "1M", "3d"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *iv = INTERVALS[data[0] % 8];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    an_candles out = {0};
    an_err err = {0};
    if (an_binance_parse_klines(body, len, "BTC/USDT", iv, &out, &err) == AN_OK) {
        /* what the parser accepts, the store's own check accepts too */
        an_err e2 = {0};
        if (out.n > 0 && an_candles_validate("BTC/USDT", iv, out.v, out.n, &e2) != AN_OK)
            abort();
    }
    an_candles_free(&out);
    int found = 0;
    an_binance_parse_exchange_info(body, len, "BTCUSDT", &found, &err);
    int64_t ms = 0;
    an_binance_parse_server_time(body, len, &ms, &err);
    return 0;
}
