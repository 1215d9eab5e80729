/*
 * market.c - candles, timeframes, symbols and time helpers (see market.h).
 */
#include "core/market.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

an_code an_candles_push(an_candles *a, const an_candle *c, an_err *err)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        an_candle *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return an_err_set(err, AN_ERR_NOMEM, "out of memory growing a candle array to %zu",
                              cap);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *c;
    return AN_OK;
}

void an_candles_free(an_candles *a)
{
    if (!a)
        return;
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

an_code an_closes_push(an_closes *a, const int64_t *ts, const double *close, size_t n, an_err *err)
{
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->n + n)
            cap *= 2;
        int64_t *t = realloc(a->ts, cap * sizeof *t);
        if (t)
            a->ts = t;
        double *c = t ? realloc(a->close, cap * sizeof *c) : NULL;
        if (!t || !c)
            return an_err_set(err, AN_ERR_NOMEM, "out of memory growing a close series to %zu",
                              cap);
        a->close = c;
        a->cap = cap;
    }
    memcpy(a->ts + a->n, ts, n * sizeof *ts);
    memcpy(a->close + a->n, close, n * sizeof *close);
    a->n += n;
    return AN_OK;
}

void an_closes_free(an_closes *a)
{
    free(a->ts);
    free(a->close);
    *a = (an_closes){0};
}

static int cmp_ts(const void *x, const void *y)
{
    int64_t a = ((const an_candle *)x)->ts, b = ((const an_candle *)y)->ts;
    return (a > b) - (a < b);
}

void an_candles_sort(an_candles *a)
{
    if (a->n > 1)
        qsort(a->v, a->n, sizeof *a->v, cmp_ts);
}

void an_candles_reverse(an_candles *a)
{
    for (size_t i = 0, j = a->n ? a->n - 1 : 0; i < j; i++, j--) {
        an_candle t = a->v[i];
        a->v[i] = a->v[j];
        a->v[j] = t;
    }
}

static const struct {
    const char *name;
    int64_t ms;
} timeframes[] = {
    {"1s", 1000LL},     {"1m", 60000LL},     {"3m", 180000LL},    {"5m", 300000LL},
    {"15m", 900000LL},  {"30m", 1800000LL},  {"1h", 3600000LL},   {"2h", 7200000LL},
    {"4h", 14400000LL}, {"6h", 21600000LL},  {"8h", 28800000LL},  {"12h", 43200000LL},
    {"1d", 86400000LL}, {"3d", 259200000LL}, {"1w", 604800000LL}, {"1M", 0},
};

int64_t an_timeframe_ms(const char *tf, int *monthly)
{
    if (monthly)
        *monthly = 0;
    if (!tf)
        return -1;
    for (size_t i = 0; i < sizeof timeframes / sizeof timeframes[0]; i++) {
        if (strcmp(tf, timeframes[i].name) == 0) {
            if (timeframes[i].ms == 0 && monthly)
                *monthly = 1;
            return timeframes[i].ms;
        }
    }
    return -1;
}

int an_timeframe_valid(const char *tf)
{
    return an_timeframe_ms(tf, NULL) >= 0;
}

int an_timeframe_aligned(const char *tf, int64_t ts)
{
    int monthly = 0;
    int64_t ms = an_timeframe_ms(tf, &monthly);
    if (ms < 0)
        return 0;
    if (monthly) {
        if (ts % 86400000LL != 0)
            return 0;
        time_t t = (time_t)(ts / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        return tm.tm_mday == 1;
    }
    if (ms == 604800000LL) /* Binance weeks open on Monday; the epoch was a Thursday */
        return ((ts - 4 * 86400000LL) % ms) == 0;
    return ts % ms == 0;
}

int64_t an_timeframe_floor(const char *tf, int64_t ts)
{
    int monthly = 0;
    int64_t ms = an_timeframe_ms(tf, &monthly);
    if (ms < 0 || ts < 0)
        return -1;
    if (monthly) {
        time_t t = (time_t)(ts / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        return (int64_t)timegm(&tm) * 1000;
    }
    if (ms == 604800000LL) { /* weeks open on Monday: the epoch was a Thursday */
        int64_t off = 4 * 86400000LL;
        return ts < off ? off - ms : (ts - off) / ms * ms + off;
    }
    return ts / ms * ms;
}

int64_t an_timeframe_next(const char *tf, int64_t open)
{
    int monthly = 0;
    int64_t ms = an_timeframe_ms(tf, &monthly);
    if (ms < 0)
        return -1;
    if (monthly) {
        time_t t = (time_t)(open / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        tm.tm_mon += 1; /* timegm normalises December + 1 */
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        return (int64_t)timegm(&tm) * 1000;
    }
    return open + ms;
}

static int valid_asset(const char *s, size_t n)
{
    if (n < 1 || n > 15)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isupper((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
            return 0;
    return 1;
}

an_code an_symbol_validate(const char *symbol, an_err *err)
{
    if (!symbol || !*symbol)
        return an_err_set(err, AN_ERR_INVALID, "empty symbol");
    const char *slash = strchr(symbol, '/');
    size_t len = strlen(symbol);
    if (len >= AN_SYMBOL_MAX || !slash || !valid_asset(symbol, (size_t)(slash - symbol)) ||
        !valid_asset(slash + 1, strlen(slash + 1)))
        return an_err_set(err, AN_ERR_INVALID,
                          "invalid symbol '%.40s': expected BASE/QUOTE in upper case, e.g. "
                          "BTC/USDT",
                          symbol);
    return AN_OK;
}

static an_code bad(an_err *err, long row, const char *what, double v)
{
    char where[48] = "";
    if (row >= 0)
        snprintf(where, sizeof where, "row %ld: ", row);
    return an_err_set(err, AN_ERR_INVALID, "%s%s (%.17g)", where, what, v);
}

an_code an_candle_validate(const an_candle *c, long row, an_err *err)
{
    const double f[5] = {c->open, c->high, c->low, c->close, c->volume};
    static const char *names[5] = {"open", "high", "low", "close", "volume"};
    for (int i = 0; i < 5; i++) {
        if (!isfinite(f[i])) {
            char msg[64];
            snprintf(msg, sizeof msg, "%s is not a finite number", names[i]);
            return bad(err, row, msg, f[i]);
        }
    }
    if (c->open <= 0)
        return bad(err, row, "open must be positive", c->open);
    if (c->high <= 0)
        return bad(err, row, "high must be positive", c->high);
    if (c->low <= 0)
        return bad(err, row, "low must be positive", c->low);
    if (c->close <= 0)
        return bad(err, row, "close must be positive", c->close);
    if (c->volume < 0)
        return bad(err, row, "volume must not be negative", c->volume);
    if (c->high < c->low)
        return bad(err, row, "high is below low", c->high);
    if (c->open < c->low || c->open > c->high)
        return bad(err, row, "open is outside [low, high]", c->open);
    if (c->close < c->low || c->close > c->high)
        return bad(err, row, "close is outside [low, high]", c->close);
    if (c->ts < 0 || c->ts > 32503680000000LL) /* year 3000 */
        return bad(err, row, "timestamp out of range", (double)c->ts);
    return AN_OK;
}

an_code an_candles_validate(const char *symbol, const char *tf, const an_candle *v, size_t n,
                            an_err *err)
{
    if (an_symbol_validate(symbol, err) != AN_OK)
        return AN_ERR_INVALID;
    if (!an_timeframe_valid(tf))
        return an_err_set(err, AN_ERR_INVALID, "unknown timeframe '%.16s'", tf ? tf : "(null)");
    for (size_t i = 0; i < n; i++) {
        if (an_candle_validate(&v[i], (long)i, err) != AN_OK)
            return an_err_prefix(err, "%s %s", symbol, tf);
        if (!an_timeframe_aligned(tf, v[i].ts)) {
            char t[40];
            return an_err_set(err, AN_ERR_INVALID,
                              "%s %s: row %zu: timestamp %s is not aligned to the %s interval",
                              symbol, tf, i, an_time_format(v[i].ts, t, sizeof t), tf);
        }
        if (i > 0 && v[i].ts <= v[i - 1].ts) {
            char t[40];
            return an_err_set(err, AN_ERR_INVALID,
                              "%s %s: row %zu: timestamp %s is %s the previous row's", symbol, tf,
                              i, an_time_format(v[i].ts, t, sizeof t),
                              v[i].ts == v[i - 1].ts ? "a duplicate of" : "earlier than");
        }
    }
    return AN_OK;
}

/* The proleptic Gregorian date of a day count since 1970-01-01 (Howard
 * Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
    return p + 2;
}

size_t an_time_format_iso(int64_t ms, char *buf)
{
    /* years 0000..9999 by hand (called for every candle of a reply); the
     * rest as gmtime and printf write them */
    if (ms < -62167219200000LL || ms >= 253402300800000LL) {
        an_time_format(ms, buf, AN_TIME_ISO_MAX);
        return strlen(buf);
    }
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    unsigned frac = (unsigned)(ms - secs * 1000);
    int64_t days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    unsigned sod = (unsigned)(secs - days * 86400), mo, d;
    int64_t y;
    civil_from_days(days, &y, &mo, &d);
    char *p = put2(put2(buf, (unsigned)y / 100), (unsigned)y % 100);
    *p++ = '-';
    p = put2(p, mo);
    *p++ = '-';
    p = put2(p, d);
    *p++ = 'T';
    p = put2(p, sod / 3600);
    *p++ = ':';
    p = put2(p, sod / 60 % 60);
    *p++ = ':';
    p = put2(p, sod % 60);
    if (frac) {
        *p++ = '.';
        *p++ = (char)('0' + frac / 100);
        p = put2(p, frac % 100);
    }
    *p++ = 'Z';
    *p = '\0';
    return (size_t)(p - buf);
}

char *an_time_format(int64_t ms, char *buf, size_t len)
{
    if (len >= AN_TIME_ISO_MAX && ms >= -62167219200000LL && ms < 253402300800000LL) {
        an_time_format_iso(ms, buf);
        return buf;
    }
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int frac = (int)(ms - secs * 1000);
    time_t t = (time_t)secs;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(buf, len, "%" PRId64, ms);
        return buf;
    }
    if (frac)
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    else
        snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* 1 when s starts with pat, each 'd' of pat an ASCII digit (sscanf's %d
 * alone would take a sign or a space: "T-5:-5"). */
static int time_shape(const char *s, const char *pat)
{
    for (; *pat; pat++, s++)
        if (*pat == 'd' ? !isdigit((unsigned char)*s) : *s != *pat)
            return 0;
    return 1;
}

an_code an_time_parse(const char *s, int64_t *ms, an_err *err)
{
    if (!s || !*s)
        return an_err_set(err, AN_ERR_INVALID, "empty time");
    int all_digits = 1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            all_digits = 0;
    if (all_digits) {
        errno = 0;
        char *end;
        long long v = strtoll(s, &end, 10);
        if (errno || *end || strlen(s) > 16)
            return an_err_set(err, AN_ERR_INVALID, "time '%.40s' is out of range", s);
        *ms = v;
        return AN_OK;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    char rest[16] = "";
    if (!time_shape(s, "dddd-dd-dd") || sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        goto fail;
    if (s[n] == 'T' || s[n] == ' ') {
        int n2 = 0;
        if (!time_shape(s + n + 1, "dd:dd") || sscanf(s + n + 1, "%2d:%2d%n", &h, &mi, &n2) != 2 ||
            n2 != 5)
            goto fail;
        n += 1 + n2;
        if (s[n] == ':') {
            int n3 = 0;
            if (!time_shape(s + n + 1, "dd") || sscanf(s + n + 1, "%2d%n", &sec, &n3) != 1 ||
                n3 != 2)
                goto fail;
            n += 1 + n3;
        }
    }
    snprintf(rest, sizeof rest, "%s", s + n);
    if (strcmp(rest, "") != 0 && strcmp(rest, "Z") != 0 && strcmp(rest, "+00:00") != 0)
        goto fail;
    if (y < 1970 || y > 2999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 59)
        goto fail;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        goto fail;
    *ms =
        (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec) * 1000LL;
    return AN_OK;
fail:
    return an_err_set(err, AN_ERR_INVALID,
                      "invalid time '%.40s': expected YYYY-MM-DD[THH:MM[:SS]][Z] (UTC) or "
                      "milliseconds since the epoch",
                      s);
}

an_code an_time_parse_arg(const char *s, int64_t *ms, an_err *err)
{
    if (s && s[0] == '0' && s[1] >= '0' && s[1] <= '9')
        return an_err_set(err, AN_ERR_INVALID,
                          "invalid time '%.40s': milliseconds are written without leading zeros",
                          s);
    an_code rc = an_time_parse(s, ms, err);
    if (rc == AN_OK && *ms > AN_TIME_ARG_MAX_MS)
        return an_err_set(err, AN_ERR_INVALID, "time '%.40s' is after 2999-12-31", s);
    return rc;
}

int64_t an_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
