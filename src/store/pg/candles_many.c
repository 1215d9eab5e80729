/*
 * candles_many.c - the PostgreSQL backend's upsert of candles of many series
 * in one statement (an_store_upsert_candles): the live path flushes every
 * series' open candle at once. Parameters are text arrays (symbols,
 * timeframes, epoch milliseconds, and the five values printed with 17
 * significant digits, which read back exactly). Any thread; borrows one
 * pooled connection.
 */
#include "store/pg/pg_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char UPSERT_MANY_SQL[] =
    "INSERT INTO trading.ohlc_data AS d"
    " (symbol, timeframe, \"timestamp\", open, high, low, close, volume)"
    " SELECT t.s, t.tf, 'epoch'::timestamptz + t.ms * interval '1 millisecond',"
    " t.o, t.h, t.l, t.c, t.v"
    " FROM unnest($1::text[], $2::text[], $3::int8[], $4::float8[], $5::float8[], $6::float8[],"
    " $7::float8[], $8::float8[]) AS t(s, tf, ms, o, h, l, c, v)"
    " ON CONFLICT (symbol, timeframe, \"timestamp\") DO UPDATE SET"
    " open = excluded.open, high = excluded.high, low = excluded.low,"
    " close = excluded.close, volume = excluded.volume"
    " WHERE (d.open, d.high, d.low, d.close, d.volume) IS DISTINCT FROM"
    " (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)";

/* Appends an array element: a quoted string (symbols and timeframes hold no
 * quote or backslash: validated) or a number. -1 when out of memory. */
static int put(an_pg_buf *b, const char *s, int quote)
{
    size_t l = strlen(s);
    if (an_pg_buf_reserve(b, l + 4) < 0)
        return -1;
    char sep = b->n ? ',' : '{';
    b->p[b->n++] = sep;
    if (quote)
        b->p[b->n++] = '"';
    memcpy(b->p + b->n, s, l);
    b->n += l;
    if (quote)
        b->p[b->n++] = '"';
    b->p[b->n] = 0;
    return 0;
}

an_code an_pg_upsert_candles(an_store *s, const an_series_candle *v, size_t n, an_err *err)
{
    pg_store *ps = s->impl;
    an_pg_buf a[8] = {{0}};
    an_code rc = AN_OK;
    for (size_t i = 0; i < n && rc == AN_OK; i++) {
        char num[6][40];
        snprintf(num[0], sizeof num[0], "%" PRId64, v[i].c.ts);
        const double *f = &v[i].c.open;
        for (int k = 0; k < 5; k++)
            snprintf(num[k + 1], sizeof num[k + 1], "%.17g", f[k]);
        int bad = put(&a[0], v[i].symbol, 1) < 0 || put(&a[1], v[i].timeframe, 1) < 0;
        for (int k = 0; k < 6 && !bad; k++)
            bad = put(&a[k + 2], num[k], 0) < 0;
        if (bad)
            rc = an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory");
    }
    const char *params[8];
    for (int k = 0; k < 8 && rc == AN_OK; k++) {
        if (an_pg_buf_reserve(&a[k], 2) < 0) {
            rc = an_err_set(err, AN_ERR_NOMEM, "upsert_candles: out of memory");
            break;
        }
        a[k].p[a[k].n++] = '}';
        a[k].p[a[k].n] = 0;
        params[k] = a[k].p;
    }
    if (rc == AN_OK)
        rc = an_pg_exec(ps, UPSERT_MANY_SQL, 8, params, NULL, NULL, NULL, "upsert_candles", err);
    for (int k = 0; k < 8; k++)
        free(a[k].p);
    return rc;
}
