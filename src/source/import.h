/*
 * import.h - candle files into candles: the file-import provider behind
 * `autonama import`.
 *
 * Formats (auto-detected from the content, or named):
 *   freqtrade-json          [[open_ms, open, high, low, close, volume], ...];
 *                           symbol and timeframe from the name (BTC_USDT-1m.json)
 *   cryptodatadownload-csv  a preamble line, a header, rows newest first;
 *                           symbol from its column, timeframe from the name (_d, _1h)
 *   csv                     any CSV whose header names its columns
 *                           (timestamp/date/time/open_time, open, high, low, close, volume)
 *   binance-csv             Binance public-data klines: no header, 12 columns,
 *                           open time in ms (µs in spot files from 2025 on);
 *                           symbol and timeframe from the name (BTCUSDT-1m-2024-01.csv)
 * Every candle is validated; a file with one bad row is refused whole, with a
 * message naming the file, the line and the field. Pure functions: no
 * globals, safe from any thread.
 */
#ifndef AN_SOURCE_IMPORT_H
#define AN_SOURCE_IMPORT_H

#include <stddef.h>

#include "core/error.h"
#include "core/market.h"

typedef enum an_import_format {
    AN_IMPORT_AUTO = 0,
    AN_IMPORT_FREQTRADE_JSON,
    AN_IMPORT_CDD_CSV,
    AN_IMPORT_HEADER_CSV,
    AN_IMPORT_BINANCE_CSV
} an_import_format;

/* "auto", "freqtrade-json", "cryptodatadownload-csv", "csv", "binance-csv". */
const char *an_import_format_name(an_import_format f);
an_code an_import_format_parse(const char *s, an_import_format *out, an_err *err);

typedef struct an_import_result {
    an_import_format format;          /* the format read */
    char symbol[AN_SYMBOL_MAX];       /* BASE/QUOTE */
    char timeframe[AN_TIMEFRAME_MAX]; /* e.g. "1m" */
    an_candles candles;               /* oldest first; freed by an_import_result_free */
} an_import_result;

/* Reads a whole candle file. symbol and timeframe (may be NULL) override what
 * the file name or content says. On failure nothing is returned (out is left
 * empty) and err names the file, line and field. */
an_code an_import_read(const char *path, an_import_format format, const char *symbol,
                       const char *timeframe, an_import_result *out, an_err *err);
void an_import_result_free(an_import_result *r);

/* "BTCUSDT", "btc_usdt", "BTC-USDT", "BTC/USDT" -> "BTC/USDT" (the quote found
 * from a list of known quote assets when there is no separator). */
an_code an_import_normalize_symbol(const char *in, char *out, size_t outlen, an_err *err);

#endif
