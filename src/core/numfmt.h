/*
 * numfmt.h - doubles as the shortest decimal that reads back as the same
 * double, for the JSON the API writes (candles, indicator values, the event
 * stream), and integers in decimal. Replaces a general-purpose formatter on
 * the hot path of every uncached reply and of the live path's writes. Pure functions, thread-safe;
 * called on the handler workers and the event-stream thread.
 */
#ifndef AN_CORE_NUMFMT_H
#define AN_CORE_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

#define AN_NUM_MAX 32 /* a buffer that holds any output with its NUL */

/*
 * Writes v into buf (AN_NUM_MAX bytes) as the decimal with the fewest
 * significant digits that strtod reads back as v, NUL-terminated, and
 * returns its length. The form is printf's %g at the precision the digits
 * need (at least 15): "0.1", "1e-05", "1e+15", "123.456"; except that a
 * value with at most 8 decimals below 9e7 is always positional, as exchange
 * prices and volumes are ("0.00000001"). Both zeros print as "0". A value
 * that is not finite writes "" and returns 0 (the caller decides: the API
 * writes null).
 */
size_t an_num_format(double v, char *buf);

/*
 * Writes v into buf (at least 21 bytes) in decimal, as printf's "%" PRId64
 * does, NUL-terminated, and returns its length. For the writers that put
 * thousands of integers a second into statement parameters.
 */
size_t an_int_format(int64_t v, char *buf);

#endif
