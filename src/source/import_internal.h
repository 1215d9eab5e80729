/*
 * import_internal.h - the row readers behind import.c: a candle file read
 * one row at a time from a FILE, in a fixed-size buffer, so that memory
 * follows the row, not the file. Used by import.c only.
 *
 * Threads: a reader belongs to one caller.
 */
#ifndef AN_IMPORT_INTERNAL_H
#define AN_IMPORT_INTERNAL_H

#include <stdio.h>

#include "core/error.h"
#include "core/market.h"
#include "source/import.h"

#define AN_IMPORT_LINE_MAX 16384 /* the longest CSV line read */
#define AN_IMPORT_FIELDS_MAX 32

/* The bytes of a file, buffered; tracks the line of the next byte. */
typedef struct an_import_bytes {
    FILE *f;
    const char *path;
    an_err *err;
    unsigned char buf[65536];
    size_t pos, len;
    int eof;
    long line; /* 1-based */
} an_import_bytes;

/* Column positions found from a header. */
typedef struct an_import_cols {
    int time, open, high, low, close, volume, symbol, timeframe, unix_time;
} an_import_cols;

/* One pass over one file. sym/tf are the caller's buffers: given (flag or
 * file name) or empty, completed from the content (a symbol or timeframe
 * column), and checked to be one per file. */
typedef struct an_import_rows {
    an_import_bytes in;
    an_import_format format; /* never AUTO */
    char *sym, *tf;
    int sym_given, tf_given;
    /* CSV: the current line, its fields and the header's columns */
    char text[AN_IMPORT_LINE_MAX + 1];
    char *f[AN_IMPORT_FIELDS_MAX];
    int nf;
    an_import_cols cols;
    int started; /* header/preamble read (CSV), '[' read (JSON) */
    int ended;
    size_t index; /* JSON: candles read */
    long where;   /* the last row's line (CSV) or candle number (JSON) */
} an_import_rows;

/* Starts a pass over an open file (at its beginning). */
void an_import_rows_init(an_import_rows *r, FILE *f, const char *path, an_import_format format,
                         char *sym, char *tf, int sym_given, int tf_given, an_err *err);

/* The next candle into *out and *got = 1, or *got = 0 at the end of the
 * file. A row that cannot be read (or a candle that is not valid on its
 * own) fails naming the file and the line or candle number. */
an_code an_import_rows_next(an_import_rows *r, an_candle *out, int *got);

/* "line N" or "candle N" for the last row, into buf. */
const char *an_import_rows_where(const an_import_rows *r, char *buf, size_t len);

/* Sniffs the format from the file's first bytes; *empty = 1 when the file
 * holds only white space. Leaves f at its beginning. */
an_code an_import_detect(FILE *f, const char *path, an_import_format *format, int *empty,
                         an_err *err);

#endif
