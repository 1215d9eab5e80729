/*
 * series.c - the synthetic candle series of the C tests and benches (see
 * series.h). Built into the an_test_series library that tests/ and bench/
 * link.
 */
#include "series.h"

an_test_series an_test_series_1m(int64_t start_ms, unsigned seed)
{
    an_test_series s = {start_ms, 60000, 20000.0, 1000, 500, 1.0, seed};
    return s;
}

void an_test_series_make(an_candles *out, size_t n, const an_test_series *spec)
{
    unsigned seed = spec->seed;
    double price = spec->price;
    unsigned span = 2u * (unsigned)spec->move_cents + 1u;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        double step = ((double)((seed >> 8) % span) - spec->move_cents) / 100.0;
        double open = price, close = price + step;
        if (close < spec->floor)
            close = spec->floor;
        double high = (open > close ? open : close) +
                      (double)((seed >> 4) % (unsigned)spec->wick_cents) / 100.0;
        double low = (open < close ? open : close) -
                     (double)((seed >> 12) % (unsigned)spec->wick_cents) / 100.0;
        if (low <= 0)
            low = 0.5;
        an_candle c = {spec->start_ms + (int64_t)i * spec->step_ms, open, high, low, close,
                       (double)((seed >> 3) % 100000) / 1000.0,     0};
        an_candles_push(out, &c, NULL);
        price = close;
    }
}
