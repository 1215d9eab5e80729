/*
 * kline_frame.c - a kline frame's fields: the single-pass scan of the plain
 * form, the checks after the types, and Binance's decimal strings (see
 * kline_frame.h). binance_ws.c calls them on the stream thread for every
 * frame; its jansson reading takes whatever the scan leaves.
 *
 * Owns nothing: pure functions over the caller's memory.
 */
#include "source/kline_frame.h"

#include "source/binance.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the scan ----------------------------------------------------------- */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

static int punct(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes: its span. */
static int string(cursor *c, an_ws_span *s)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p != '"')
        return 0;
    const char *b = ++c->p;
    for (; c->p < c->end; c->p++) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            s->p = b;
            s->n = (size_t)(c->p++ - b);
            return 1;
        }
        if (ch == '\\' || ch < 0x20 || ch >= 0x80)
            return 0;
    }
    return 0;
}

/* A JSON integer (no fraction, no exponent) of at most 18 digits. */
static int integer(cursor *c, int64_t *v)
{
    skip_ws(c);
    int neg = c->p < c->end && *c->p == '-';
    c->p += neg;
    const char *d = c->p;
    uint64_t m = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        m = m * 10 + (uint64_t)(*c->p++ - '0');
    size_t nd = (size_t)(c->p - d);
    if (nd == 0 || nd > 18 || (nd > 1 && *d == '0'))
        return 0;
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E'))
        return 0; /* a real */
    *v = neg ? -(int64_t)m : (int64_t)m;
    return 1;
}

static int boolean(cursor *c, int *v)
{
    skip_ws(c);
    size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "true", 4) == 0) {
        c->p += 4;
        *v = 1;
        return 1;
    }
    if (left >= 5 && memcmp(c->p, "false", 5) == 0) {
        c->p += 5;
        *v = 0;
        return 1;
    }
    return 0;
}

static int key_is(an_ws_span k, const char *z)
{
    size_t n = strlen(z);
    return k.n == n && memcmp(k.p, z, n) == 0;
}

/* The members of an object, each key once: read(c, key, f) reads the value
 * and returns its bit (0: an unknown key or a value of the wrong type); the
 * object is accepted when the bits seen are all of `all`. */
static int object(cursor *c, an_ws_fields *f, unsigned all,
                  unsigned (*read)(cursor *, an_ws_span, an_ws_fields *))
{
    if (!punct(c, '{'))
        return 0;
    unsigned seen = 0;
    do {
        an_ws_span key;
        if (!string(c, &key) || !punct(c, ':'))
            return 0;
        unsigned bit = read(c, key, f);
        if (!bit || (seen & bit))
            return 0;
        seen |= bit;
    } while (punct(c, ','));
    return punct(c, '}') && seen == all;
}

/* k's keys: Binance's kline, every one of them. */
static unsigned read_k(cursor *c, an_ws_span key, an_ws_fields *f)
{
    static const char decs[] = "ohlcvqVQ";
    int64_t ignored;
    an_ws_span skip;
    if (key.n != 1)
        return 0;
    const char *d = memchr(decs, key.p[0], 8);
    if (d)
        return string(c, &f->decs[d - decs]) ? 1u << (d - decs) : 0;
    switch (key.p[0]) {
    case 't': return integer(c, &f->t) ? 1u << 8 : 0;
    case 'T': return integer(c, &f->T) ? 1u << 9 : 0;
    case 'f': return integer(c, &ignored) ? 1u << 10 : 0;
    case 'L': return integer(c, &ignored) ? 1u << 11 : 0;
    case 'n': return integer(c, &ignored) ? 1u << 12 : 0;
    case 's': return string(c, &f->ks) ? 1u << 13 : 0;
    case 'i': return string(c, &f->ki) ? 1u << 14 : 0;
    case 'x': return boolean(c, &f->x) ? 1u << 15 : 0;
    case 'B': return string(c, &skip) ? 1u << 16 : 0;
    default: return 0;
    }
}

static unsigned read_data(cursor *c, an_ws_span key, an_ws_fields *f)
{
    if (key_is(key, "e"))
        return string(c, &f->e) ? 1 : 0;
    if (key_is(key, "E"))
        return integer(c, &f->event_ms) ? 2 : 0;
    if (key_is(key, "s"))
        return string(c, &f->s) ? 4 : 0;
    if (key_is(key, "k"))
        return object(c, f, (1u << 17) - 1, read_k) ? 8 : 0;
    return 0;
}

static unsigned read_root(cursor *c, an_ws_span key, an_ws_fields *f)
{
    if (key_is(key, "stream"))
        return string(c, &f->stream) ? 1 : 0;
    if (key_is(key, "data"))
        return object(c, f, 15, read_data) ? 2 : 0;
    return 0;
}

int an_ws_scan(const char *text, size_t len, an_ws_fields *f)
{
    cursor c = {text, text + len};
    if (!object(&c, f, 3, read_root))
        return 0;
    skip_ws(&c);
    return c.p == c.end;
}

/* ---- decimals ------------------------------------------------------------ */

int an_ws_decimal(an_ws_span s, double *out)
{
    return s.n > 0 && s.n <= 40 && an_binance_decimal(s.p, s.n, out) == 0;
}

/* ---- the checks ---------------------------------------------------------- */

an_code an_ws_refuse(an_ws_bad *bad, an_ws_bad kind, an_err *err, const char *fmt, ...)
{
    *bad = kind;
    va_list ap;
    va_start(ap, fmt);
    an_err_vset(err, kind == AN_WS_BAD_JSON ? AN_ERR_PARSE : AN_ERR_INVALID, fmt, ap);
    va_end(ap);
    return err ? err->code : (kind == AN_WS_BAD_JSON ? AN_ERR_PARSE : AN_ERR_INVALID);
}

static int span_is(an_ws_span s, const char *z)
{
    return s.p && key_is(s, z);
}

/* for messages: at most max bytes of s */
#define SHOW(s, max) (int)((s).n < (max) ? (s).n : (max)), (s).p ? (s).p : ""

an_code an_ws_fields_check(const an_ws_fields *f, const an_ws_sub *sub, size_t si, an_ws_kline *out,
                           an_ws_bad *bad, an_err *err)
{
    if (!span_is(f->s, sub->exchange) || !span_is(f->ks, sub->exchange) ||
        !span_is(f->ki, sub->timeframe))
        return an_ws_refuse(bad, AN_WS_BAD_MISMATCH, err,
                            "kline frame (%s): symbol %.*s/%.*s interval %.*s, subscribed %s %s",
                            sub->stream, SHOW(f->s, 20), SHOW(f->ks, 20), SHOW(f->ki, 8),
                            sub->exchange, sub->timeframe);
    static const char *const names[] = {"o", "h", "l", "c", "v", "q", "V", "Q"};
    double d[8];
    for (size_t i = 0; i < 8; i++)
        if (!an_ws_decimal(f->decs[i], &d[i]))
            return an_ws_refuse(bad, AN_WS_BAD_VALUE, err,
                                "kline frame (%s): k.%s is not a decimal string", sub->stream,
                                names[i]);
    if (f->t < 0 || !an_timeframe_aligned(sub->timeframe, f->t) ||
        f->T != an_timeframe_next(sub->timeframe, f->t) - 1)
        return an_ws_refuse(bad, AN_WS_BAD_TIME, err,
                            "kline frame (%s): open time %lld / close time %lld do not fit %s",
                            sub->stream, (long long)f->t, (long long)f->T, sub->timeframe);
    an_candle c = {f->t, d[0], d[1], d[2], d[3], d[4], 0};
    an_err ce = {0};
    if (an_candle_validate(&c, -1, &ce) != AN_OK)
        return an_ws_refuse(bad, AN_WS_BAD_VALUE, err, "kline frame (%s): %s", sub->stream, ce.msg);
    out->sub = si;
    out->candle = c;
    out->closed = f->x;
    out->event_ms = f->event_ms;
    return AN_OK;
}
