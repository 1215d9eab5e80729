/*
 * kline_frame.h - one kline frame of Binance's combined streams as fields,
 * read two ways, and the checks on those fields (used by binance_ws.c).
 *
 * an_ws_scan is the hot path: a single pass over the text, no tree, no
 * allocation. It accepts only what it can read exactly: well-formed JSON
 * whose objects hold only Binance's keys (each once, every one present, of
 * its type), ASCII strings without escapes, integers of at most 18 digits.
 * Anything else (a malformed or unusual frame) is left to the jansson
 * reading in binance_ws.c, which gives the verdict and the error message;
 * for the frames the scan accepts, both readings give the same fields
 * (tests/unit/test_kline_frame.c compares them, and so does
 * tests/fuzz/fuzz_kline_frame.c on any input).
 *
 * an_ws_fields_check applies what follows the types in both: symbol and
 * interval as subscribed, decimal strings, alignment, l <= o,c <= h, v >= 0.
 *
 * Threads: pure functions over the caller's memory; the stream thread calls
 * them.
 */
#ifndef AN_SOURCE_KLINE_FRAME_H
#define AN_SOURCE_KLINE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "source/binance_ws.h"

/* A piece of the frame's text (or of a jansson string): not NUL-terminated. */
typedef struct an_ws_span {
    const char *p;
    size_t n;
} an_ws_span;

/* The fields of a kline event that are read; decs are k's o h l c v q V Q. */
typedef struct an_ws_fields {
    an_ws_span stream, e, s, ks, ki, decs[8];
    int64_t event_ms, t, T;
    int x;
} an_ws_fields;

/* 1 and *f when text is a combined-stream kline frame in the plain form the
 * scan reads (see above); 0 otherwise, f undefined: the caller reads the
 * frame with jansson. The spans point into text. */
int an_ws_scan(const char *text, size_t len, an_ws_fields *f);

/* The checks after the types, for the subscription sub (index si): AN_OK
 * and *out, or AN_ERR_INVALID with *bad (MISMATCH, VALUE or TIME) and err. */
an_code an_ws_fields_check(const an_ws_fields *f, const an_ws_sub *sub, size_t si, an_ws_kline *out,
                           an_ws_bad *bad, an_err *err);

/* Sets *bad = kind and err (AN_ERR_PARSE for AN_WS_BAD_JSON, else
 * AN_ERR_INVALID) and returns that code. */
an_code an_ws_refuse(an_ws_bad *bad, an_ws_bad kind, an_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A Binance decimal string (digits with at most one '.', at least one
 * digit, at most 40 bytes): 1 and *out (correctly rounded), else 0. */
int an_ws_decimal(an_ws_span s, double *out);

#endif
