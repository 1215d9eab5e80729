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
 * message naming the file, the line and the field. Files are read as
 * streams (import_rows.c): memory follows a row or a batch, not the file.
 * Pure functions: no globals, safe from any thread.
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

/* Reads a whole candle file into memory (the files provider's reads).
 * symbol and timeframe (may be NULL) override what the file name or content
 * says. On failure nothing is returned (out is left empty) and err names the
 * file, line and field. */
an_code an_import_read(const char *path, an_import_format format, const char *symbol,
                       const char *timeframe, an_import_result *out, an_err *err);
void an_import_result_free(an_import_result *r);

/* What an_import_stream read. */
typedef struct an_import_info {
    an_import_format format;
    char symbol[AN_SYMBOL_MAX];
    char timeframe[AN_TIMEFRAME_MAX];
    size_t rows;
    int64_t first_ms, last_ms; /* the oldest and the newest candle */
} an_import_info;

/* Receives one batch: at most the batch size of candles, oldest first
 * within the batch; err set and non-AN_OK stops the stream. */
typedef an_code (*an_import_emit)(void *ctx, const an_import_info *info, const an_candle *v,
                                  size_t n, an_err *err);

/* Streams a candle file to emit in batches of at most batch candles, for
 * `autonama import`: memory follows the batch, not the file. The file is
 * read twice: the first pass checks every row, the order (oldest first or
 * newest first; batches then come newest batch first), alignment, and the
 * symbol and timeframe, and nothing is emitted when anything is wrong (the
 * file is refused whole); the second pass emits. A file in neither order
 * is read into memory as candles (48 bytes each, never its text), sorted
 * and checked for duplicates before anything is emitted. info (may be
 * NULL) is filled after the first pass. */
an_code an_import_stream(const char *path, an_import_format format, const char *symbol,
                         const char *timeframe, size_t batch, an_import_emit emit, void *ctx,
                         an_import_info *info, an_err *err);

/* "BTCUSDT", "btc_usdt", "BTC-USDT", "BTC/USDT" -> "BTC/USDT" (the quote found
 * from a list of known quote assets when there is no separator). */
an_code an_import_normalize_symbol(const char *in, char *out, size_t outlen, an_err *err);

#endif
