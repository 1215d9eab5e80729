/*
 * fuzz_kline_frame.c - libFuzzer target: a kline frame of Binance's combined
 * streams as the exchange might send it. The production reading (the scan of
 * source/kline_frame.c, jansson for the rest) and the jansson-only reading
 * must give the same verdict on any input: the same kline, or the same kind
 * of bad frame and the same message; an accepted kline is a valid candle.
 */
#include <string.h>

#include "core/market.h"
#include "fuzz.h"
#include "source/binance_ws.h"

static an_ws_sub subs[2];
static int ready;

static int same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        an_err err = {0};
        if (an_ws_sub_init(&subs[0], "BTC/USDT", "1m", &err) != AN_OK ||
            an_ws_sub_init(&subs[1], "ETH/USDT", "1h", &err) != AN_OK)
            abort();
        ready = 1;
    }
    const char *text = (const char *)data;
    an_ws_kline a = {0}, b = {0};
    an_ws_bad ba = AN_WS_BAD__COUNT, bb = AN_WS_BAD__COUNT;
    an_err ea = {0}, eb = {0};
    an_code ca = an_binance_ws_parse(text, size, subs, 2, &a, &ba, &ea);
    an_code cb = an_binance_ws_parse_json(text, size, subs, 2, &b, &bb, &eb);
    if (ca != cb)
        abort();
    if (ca != AN_OK) {
        if (ba != bb || strcmp(ea.msg, eb.msg) != 0)
            abort();
        return 0;
    }
    if (a.sub != b.sub || a.candle.ts != b.candle.ts || a.closed != b.closed ||
        a.event_ms != b.event_ms || !same_double(a.candle.open, b.candle.open) ||
        !same_double(a.candle.high, b.candle.high) || !same_double(a.candle.low, b.candle.low) ||
        !same_double(a.candle.close, b.candle.close) ||
        !same_double(a.candle.volume, b.candle.volume))
        abort();
    an_err ce = {0};
    if (an_candle_validate(&a.candle, -1, &ce) != AN_OK)
        abort();
    return 0;
}
