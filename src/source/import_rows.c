/*
 * import_rows.c - candle files read one row at a time (import_internal.h):
 * a buffered byte reader, the CSV line splitter and the three CSV layouts,
 * and an incremental reader of freqtrade's JSON ([[t,o,h,l,c,v],...]) that
 * never holds more than one number of it. Every row is checked on its own
 * (fields, numbers, times, an_candle_validate); the order and the file as a
 * whole are import.c's.
 *
 * Threads: the caller's; no shared state.
 */
#include "source/import_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- bytes ---------------------------------------------------------------- */

/* next_byte's refill, end, NUL and newline cases. */
static int next_byte_slow(an_import_bytes *b)
{
    if (b->pos == b->len) {
        if (b->eof)
            return -1;
        b->len = fread(b->buf, 1, sizeof b->buf, b->f);
        b->pos = 0;
        if (b->len < sizeof b->buf) {
            if (ferror(b->f)) {
                an_err_set(b->err, AN_ERR_IO, "%s: read error: %s", b->path, strerror(errno));
                return -2;
            }
            b->eof = 1;
        }
        if (b->len == 0)
            return -1;
    }
    int c = b->buf[b->pos++];
    if (c == '\0') {
        an_err_set(b->err, AN_ERR_PARSE, "%s: binary data (a NUL byte): not a candle file",
                   b->path);
        return -2;
    }
    if (c == '\n')
        b->line++;
    return c;
}

/* The next byte, -1 at the end, -2 on a read error or a NUL byte (err set). */
static inline int next_byte(an_import_bytes *b)
{
    if (b->pos < b->len && b->buf[b->pos] > '\n')
        return b->buf[b->pos++];
    return next_byte_slow(b);
}

static int peek_byte(an_import_bytes *b)
{
    int c = next_byte(b);
    if (c >= 0) {
        b->pos--;
        if (c == '\n')
            b->line--;
    }
    return c;
}

/* The next line into text (CRLF tolerated): 1, 0 at the end, -1 on error. */
static int next_line(an_import_rows *r)
{
    size_t n = 0;
    r->where = r->in.line;
    int c = next_byte(&r->in);
    if (c == -1)
        return 0;
    while (c >= 0 && c != '\n') {
        if (n == AN_IMPORT_LINE_MAX) {
            an_err_set(r->in.err, AN_ERR_PARSE, "%s: line %ld: longer than %d bytes", r->in.path,
                       r->in.line, AN_IMPORT_LINE_MAX);
            return -1;
        }
        r->text[n++] = (char)c;
        c = next_byte(&r->in);
    }
    if (c == -2)
        return -1;
    if (n && r->text[n - 1] == '\r')
        n--;
    r->text[n] = '\0';
    return 1;
}

/* ---- numbers and times ---------------------------------------------------- */

static int parse_double(const char *s, double *out)
{
    while (*s == ' ')
        s++;
    if (!*s)
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ')
        end++;
    if (errno == ERANGE || *end || !isfinite(v))
        return -1;
    for (const char *p = s; p < end; p++) /* refuse hex floats, "nan", "inf" */
        if (isalpha((unsigned char)*p) && *p != 'e' && *p != 'E')
            return -1;
    *out = v;
    return 0;
}

/* An integer time in s, ms or µs -> ms. */
static int int_time_ms(const char *s, int64_t *ms)
{
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ')
        end++;
    if (errno || *end)
        return -1;
    if (v < 100000000000LL)
        *ms = v * 1000; /* seconds */
    else if (v < 100000000000000LL)
        *ms = v; /* milliseconds */
    else if (v < 100000000000000000LL)
        *ms = v / 1000; /* microseconds */
    else
        return -1;
    return 0;
}

static an_code row_error(an_import_rows *r, const char *fmt, const char *field)
{
    char what[200];
    snprintf(what, sizeof what, fmt, field);
    return an_err_set(r->in.err, AN_ERR_PARSE, "%s: line %ld: %s", r->in.path, r->where, what);
}

static an_code set_field(an_import_rows *r, const char *name, const char *text, double *out)
{
    if (parse_double(text, out) < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s '%.40s' is not a number", name, text);
        return an_err_set(r->in.err, AN_ERR_PARSE, "%s: line %ld: %s", r->in.path, r->where, msg);
    }
    return AN_OK;
}

static an_code parse_time_field(an_import_rows *r, const char *text, int64_t *ms)
{
    if (int_time_ms(text, ms) == 0)
        return AN_OK;
    an_err e;
    if (an_time_parse(text, ms, &e) == AN_OK)
        return AN_OK;
    /* CryptoDataDownload hourly files: "2019-10-17 09-PM" */
    int y, mo, d, h;
    char ap[3];
    if (sscanf(text, "%4d-%2d-%2d %2d-%2[AP]M", &y, &mo, &d, &h, ap) == 5 && h >= 1 && h <= 12) {
        char iso[40];
        int h24 = (h % 12) + (ap[0] == 'P' ? 12 : 0);
        snprintf(iso, sizeof iso, "%04d-%02d-%02dT%02d:00:00Z", y, mo, d, h24);
        if (an_time_parse(iso, ms, &e) == AN_OK)
            return AN_OK;
    }
    return row_error(r, "time '%.40s' is not a date, a datetime or an epoch number", text);
}

static an_code checked(an_import_rows *r, const an_candle *k, const char *unit)
{
    an_err e;
    if (an_candle_validate(k, -1, &e) != AN_OK)
        return an_err_set(r->in.err, AN_ERR_INVALID, "%s: %s %ld: %s", r->in.path, unit, r->where,
                          e.msg);
    return AN_OK;
}

/* ---- CSV ------------------------------------------------------------------ */

/* Splits a CSV line in place (double quotes, "" escapes); the field count,
 * -1 when there are more than max. */
static int split_csv(char *line, char **fields, int max)
{
    int n = 0;
    char *r = line;
    for (;;) {
        if (n == max)
            return -1;
        char *w = r;
        fields[n++] = w;
        if (*r == '"') {
            r++;
            for (;;) {
                if (!*r)
                    break;
                if (*r == '"' && r[1] == '"') {
                    *w++ = '"';
                    r += 2;
                } else if (*r == '"') {
                    r++;
                    break;
                } else {
                    *w++ = *r++;
                }
            }
            while (*r && *r != ',')
                r++;
        } else {
            while (*r && *r != ',')
                *w++ = *r++;
        }
        int more = *r == ',';
        *w = '\0';
        if (!more)
            break;
        r++;
    }
    return n;
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

static int eq_any(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcasecmp(s, names[i]) == 0)
            return 1;
    return 0;
}

static void find_cols(char **f, int n, an_import_cols *c, int cdd)
{
    static const char *const t_names[] = {"timestamp", "time",         "date",     "datetime",
                                          "open_time", "open time",    "opentime", "ts",
                                          "date_time", "timestamp_ms", NULL};
    static const char *const v_names[] = {"volume",      "vol",        "volume_base",
                                          "base_volume", "basevolume", NULL};
    *c = (an_import_cols){-1, -1, -1, -1, -1, -1, -1, -1, -1};
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", f[i]);
        for (char *p = name; *p; p++)
            if (*p == ' ' && cdd)
                *p = '_';
        const char *s = f[i];
        while (*s == ' ')
            s++;
        if (c->time < 0 && eq_any(s, t_names))
            c->time = i;
        else if (strcasecmp(s, "unix") == 0 || strcasecmp(s, "unix timestamp") == 0)
            c->unix_time = i;
        else if (strcasecmp(s, "open") == 0)
            c->open = i;
        else if (strcasecmp(s, "high") == 0)
            c->high = i;
        else if (strcasecmp(s, "low") == 0)
            c->low = i;
        else if (strcasecmp(s, "close") == 0)
            c->close = i;
        else if (strcasecmp(s, "symbol") == 0 || strcasecmp(s, "pair") == 0)
            c->symbol = i;
        else if (strcasecmp(s, "timeframe") == 0 || strcasecmp(s, "interval") == 0)
            c->timeframe = i;
        else if (c->volume < 0 && eq_any(s, v_names))
            c->volume = i;
        else if (cdd && c->volume < 0 && strncasecmp(name, "volume_", 7) == 0 &&
                 strcasecmp(name + 7, "usd") != 0 && strcasecmp(name + 7, "usdt") != 0)
            c->volume = i; /* CryptoDataDownload: "Volume BTC" / volume_btc is the base volume */
    }
}

/* The next non-blank line, split: 1, 0 at the end, -1 on error. */
static int next_row(an_import_rows *r, int *n)
{
    for (;;) {
        int got = next_line(r);
        if (got <= 0)
            return got;
        if (blank(r->text))
            continue;
        *n = split_csv(r->text, r->f, AN_IMPORT_FIELDS_MAX);
        return 1;
    }
}

/* The preamble (CryptoDataDownload) and the header line. */
static an_code read_header(an_import_rows *r)
{
    int cdd = r->format == AN_IMPORT_CDD_CSV;
    if (cdd && next_line(r) < 0)
        return r->in.err->code;
    int got = next_line(r);
    if (got < 0)
        return r->in.err->code;
    if (got == 0)
        return an_err_set(r->in.err, AN_ERR_PARSE, "%s: no header line", r->in.path);
    r->nf = split_csv(r->text, r->f, AN_IMPORT_FIELDS_MAX);
    if (r->nf < 0)
        return an_err_set(r->in.err, AN_ERR_PARSE, "%s: line %ld: more than %d columns", r->in.path,
                          r->where, AN_IMPORT_FIELDS_MAX);
    an_import_cols *k = &r->cols;
    find_cols(r->f, r->nf, k, cdd);
    if (k->time < 0 && k->unix_time >= 0)
        k->time = k->unix_time;
    const char *missing = k->time < 0     ? "time (timestamp, date, time or open_time)"
                          : k->open < 0   ? "open"
                          : k->high < 0   ? "high"
                          : k->low < 0    ? "low"
                          : k->close < 0  ? "close"
                          : k->volume < 0 ? "volume"
                                          : NULL;
    if (missing)
        return an_err_set(r->in.err, AN_ERR_PARSE, "%s: line %ld: the header has no %s column",
                          r->in.path, r->where, missing);
    return AN_OK;
}

/* A symbol or timeframe column's value: the same on every row. */
static an_code one_per_file(an_import_rows *r)
{
    const an_import_cols *k = &r->cols;
    if (k->symbol >= 0 && !r->sym_given) {
        char s[AN_SYMBOL_MAX];
        an_err e;
        if (an_import_normalize_symbol(r->f[k->symbol], s, sizeof s, &e) != AN_OK)
            return an_err_set(r->in.err, AN_ERR_PARSE, "%s: line %ld: %s", r->in.path, r->where,
                              e.msg);
        if (!r->sym[0])
            snprintf(r->sym, AN_SYMBOL_MAX, "%s", s);
        else if (strcmp(r->sym, s) != 0)
            return an_err_set(r->in.err, AN_ERR_INVALID,
                              "%s: line %ld: symbol %s differs from %s above: one symbol per file",
                              r->in.path, r->where, s, r->sym);
    }
    if (k->timeframe >= 0 && !r->tf_given) {
        const char *t = r->f[k->timeframe];
        if (!an_timeframe_valid(t))
            return row_error(r, "unknown timeframe '%.16s'", t);
        if (!r->tf[0])
            snprintf(r->tf, AN_TIMEFRAME_MAX, "%s", t);
        else if (strcmp(r->tf, t) != 0)
            return an_err_set(r->in.err, AN_ERR_INVALID,
                              "%s: line %ld: timeframe %s differs from %s above", r->in.path,
                              r->where, t, r->tf);
    }
    return AN_OK;
}

/* The next row of a CSV file, which must have `want` fields (`rule` names
 * whose rule, in the error). Returns 1 for a row, 0 at the end (*rc AN_OK)
 * and -1 for an error (its code in *rc). */
static int row_of(an_import_rows *r, int want, const char *rule, an_code *rc)
{
    int n;
    int more = next_row(r, &n);
    *rc = more < 0 ? r->in.err->code : AN_OK;
    if (more <= 0)
        return more;
    if (n == want)
        return 1;
    *rc = an_err_set(r->in.err, AN_ERR_PARSE, "%s: line %ld: %s%d fields, %s %d", r->in.path,
                     r->where, n < 0 ? "more than " : "", n < 0 ? AN_IMPORT_FIELDS_MAX : n, rule,
                     want);
    return -1;
}

/* A CSV row's open, high, low, close and volume fields, in that order. */
static an_code set_ohlcv(an_import_rows *r, const char *const v[5], an_candle *cd)
{
    static const char *const names[5] = {"open", "high", "low", "close", "volume"};
    double *dst[5] = {&cd->open, &cd->high, &cd->low, &cd->close, &cd->volume};
    an_code rc = AN_OK;
    for (int i = 0; i < 5 && rc == AN_OK; i++)
        rc = set_field(r, names[i], v[i], dst[i]);
    return rc;
}

static an_code header_csv_next(an_import_rows *r, an_candle *cd, int *got)
{
    an_code rc;
    if (!r->started) {
        r->started = 1;
        if ((rc = read_header(r)) != AN_OK)
            return rc;
    }
    if (row_of(r, r->nf, "the header has", &rc) <= 0)
        return rc;
    const an_import_cols *k = &r->cols;
    const char *v[5] = {r->f[k->open], r->f[k->high], r->f[k->low], r->f[k->close],
                        r->f[k->volume]};
    if ((rc = parse_time_field(r, r->f[k->time], &cd->ts)) != AN_OK ||
        (rc = set_ohlcv(r, v, cd)) != AN_OK || (rc = one_per_file(r)) != AN_OK ||
        (rc = checked(r, cd, "line")) != AN_OK)
        return rc;
    *got = 1;
    return AN_OK;
}

static an_code binance_csv_next(an_import_rows *r, an_candle *cd, int *got)
{
    an_code rc;
    if (row_of(r, 12, "a Binance klines row has", &rc) <= 0)
        return rc;
    if (int_time_ms(r->f[0], &cd->ts) < 0)
        return row_error(r, "open time '%.40s' is not an epoch number", r->f[0]);
    const char *v[5] = {r->f[1], r->f[2], r->f[3], r->f[4], r->f[5]};
    if ((rc = set_ohlcv(r, v, cd)) != AN_OK || (rc = checked(r, cd, "line")) != AN_OK)
        return rc;
    *got = 1;
    return AN_OK;
}

/* ---- freqtrade JSON ------------------------------------------------------- */

/* The next byte that is not JSON white space (-1 end, -2 error). */
static int json_skip(an_import_bytes *b)
{
    int c;
    do
        c = next_byte(b);
    while (c == ' ' || c == '\t' || c == '\n' || c == '\r');
    return c;
}

static an_code malformed(an_import_rows *r, const char *what)
{
    return an_err_set(r->in.err, AN_ERR_PARSE, "%s: line %ld: malformed JSON: %s", r->in.path,
                      r->in.line, what);
}

/* A JSON number's text (RFC 8259's grammar) is all of s. */
static int json_number_text(const char *s)
{
    if (*s == '-')
        s++;
    if (*s == '0')
        s++;
    else if (isdigit((unsigned char)*s))
        while (isdigit((unsigned char)*s))
            s++;
    else
        return 0;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            s++;
        if (!isdigit((unsigned char)*s))
            return 0;
        while (isdigit((unsigned char)*s))
            s++;
    }
    return *s == '\0';
}

/* One value of a candle array, starting at byte c: a number, or a string
 * holding one. *isnum = 0 for anything else (the row is refused). The byte
 * after the value is left unread. */
static an_code json_value(an_import_rows *r, int c, double *out, int *isnum)
{
    char tok[72];
    size_t n = 0;
    *isnum = 0;
    if (c == '"') {
        while ((c = next_byte(&r->in)) >= 0 && c != '"') {
            if (c == '\\' || n + 1 == sizeof tok)
                return AN_OK; /* escapes or a long string: not a number */
            tok[n++] = (char)c;
        }
        if (c < 0)
            return c == -2 ? r->in.err->code : malformed(r, "the file ends inside a string");
        tok[n] = '\0';
        *isnum = parse_double(tok, out) == 0;
        return AN_OK;
    }
    if (c != '-' && !isdigit(c)) {
        /* true, false, null, an object or an array: not a number; the row
         * is refused, so what follows need not be read */
        if (c < 0)
            return c == -2 ? r->in.err->code : malformed(r, "the file ends inside an array");
        return AN_OK;
    }
    tok[n++] = (char)c;
    for (;;) {
        int p = peek_byte(&r->in);
        if (p == -2)
            return r->in.err->code;
        if (p < 0 || !(isdigit(p) || p == '.' || p == 'e' || p == 'E' || p == '+' || p == '-'))
            break;
        if (n + 1 == sizeof tok)
            return malformed(r, "a number longer than 70 characters");
        tok[n++] = (char)next_byte(&r->in);
    }
    tok[n] = '\0';
    if (!json_number_text(tok))
        return malformed(r, "not a number");
    errno = 0;
    *out = strtod(tok, NULL);
    *isnum = isfinite(*out);
    return AN_OK;
}

static an_code json_next(an_import_rows *r, an_candle *cd, int *got)
{
    static const char *names[6] = {"open time", "open", "high", "low", "close", "volume"};
    int c;
    if (r->ended)
        return AN_OK;
    if (!r->started) {
        r->started = 1;
        c = json_skip(&r->in);
        if (c == -2)
            return r->in.err->code;
        if (c != '[')
            return an_err_set(r->in.err, AN_ERR_PARSE, "%s: expected a JSON array of candle arrays",
                              r->in.path);
        c = json_skip(&r->in);
        if (c >= 0 && c != ']')
            r->in.pos--; /* the first candle's '[' (never a newline), read again below */
    } else {
        c = json_skip(&r->in); /* after a candle: ',' or ']' */
        if (c == ',')
            c = 0;
        else if (c != ']')
            return c == -2 ? r->in.err->code
                           : malformed(r, c < 0 ? "the file ends inside the array"
                                                : "expected ',' or ']' after a candle");
    }
    if (c == ']') {
        r->ended = 1;
        c = json_skip(&r->in);
        if (c == -2)
            return r->in.err->code;
        return c < 0 ? AN_OK : malformed(r, "text after the array");
    }
    if (c < 0)
        return c == -2 ? r->in.err->code : malformed(r, "the file ends inside the array");
    r->where = (long)++r->index;
    c = json_skip(&r->in);
    if (c == -2)
        return r->in.err->code;
    if (c != '[')
        return c < 0 ? malformed(r, "the file ends inside the array")
                     : an_err_set(r->in.err, AN_ERR_PARSE,
                                  "%s: candle %zu: expected [time, open, high, low, close, volume]",
                                  r->in.path, r->index);
    double f[6];
    int k = 0;
    for (;;) {
        c = json_skip(&r->in);
        if (c == ']' && k == 0)
            break;
        if (k == 6)
            return an_err_set(r->in.err, AN_ERR_PARSE,
                              "%s: candle %zu: expected [time, open, high, low, close, volume] "
                              "(it has more elements)",
                              r->in.path, r->index);
        int isnum;
        an_code rc = json_value(r, c, &f[k], &isnum);
        if (rc != AN_OK)
            return rc;
        if (!isnum)
            return an_err_set(r->in.err, AN_ERR_PARSE, "%s: candle %zu: %s is not a number",
                              r->in.path, r->index, names[k]);
        k++;
        c = json_skip(&r->in);
        if (c == ']')
            break;
        if (c != ',')
            return c == -2 ? r->in.err->code
                           : malformed(r, c < 0 ? "the file ends inside a candle"
                                                : "expected ',' or ']' in a candle");
    }
    if (k != 6)
        return an_err_set(r->in.err, AN_ERR_PARSE,
                          "%s: candle %zu: expected [time, open, high, low, close, volume]",
                          r->in.path, r->index);
    if (f[0] != floor(f[0]) || f[0] < 0 || f[0] > 9e15)
        return an_err_set(r->in.err, AN_ERR_PARSE,
                          "%s: candle %zu: open time %.17g is not milliseconds", r->in.path,
                          r->index, f[0]);
    *cd = (an_candle){(int64_t)f[0], f[1], f[2], f[3], f[4], f[5], 0};
    an_code rc = checked(r, cd, "candle");
    if (rc == AN_OK)
        *got = 1;
    return rc;
}

/* ---- the public part -------------------------------------------------------- */

void an_import_rows_init(an_import_rows *r, FILE *f, const char *path, an_import_format format,
                         char *sym, char *tf, int sym_given, int tf_given, an_err *err)
{
    memset(r, 0, sizeof *r);
    r->in.f = f;
    r->in.path = path;
    r->in.err = err;
    r->in.line = 1;
    r->format = format;
    r->sym = sym;
    r->tf = tf;
    r->sym_given = sym_given;
    r->tf_given = tf_given;
}

an_code an_import_rows_next(an_import_rows *r, an_candle *out, int *got)
{
    *got = 0;
    memset(out, 0, sizeof *out);
    switch (r->format) {
    case AN_IMPORT_FREQTRADE_JSON: return json_next(r, out, got);
    case AN_IMPORT_BINANCE_CSV: return binance_csv_next(r, out, got);
    case AN_IMPORT_CDD_CSV:
    case AN_IMPORT_HEADER_CSV:
    case AN_IMPORT_AUTO: break;
    }
    return header_csv_next(r, out, got);
}

const char *an_import_rows_where(const an_import_rows *r, char *buf, size_t len)
{
    snprintf(buf, len, "%s %ld", r->format == AN_IMPORT_FREQTRADE_JSON ? "candle" : "line",
             r->where);
    return buf;
}

an_code an_import_detect(FILE *f, const char *path, an_import_format *format, int *empty,
                         an_err *err)
{
    char head[4097];
    size_t n = 0;
    int c;
    *empty = 1;
    /* past leading white space, then up to one line of 4 KiB */
    while ((c = getc(f)) != EOF && isspace(c))
        ;
    while (c != EOF && n < sizeof head - 1) {
        if (c == '\0')
            return an_err_set(err, AN_ERR_PARSE, "%s: binary data (a NUL byte): not a candle file",
                              path);
        head[n++] = (char)c;
        if (c == '\n')
            break;
        c = getc(f);
    }
    head[n] = '\0';
    if (ferror(f))
        return an_err_set(err, AN_ERR_IO, "%s: read error: %s", path, strerror(errno));
    rewind(f);
    if (n == 0)
        return AN_OK;
    *empty = 0;
    if (*format != AN_IMPORT_AUTO)
        return AN_OK;
    if (head[0] == '[' || head[0] == '{')
        *format = AN_IMPORT_FREQTRADE_JSON;
    else if (strncmp(head, "Created", 7) == 0 || strstr(head, "CryptoDataDownload") ||
             strstr(head, "cryptodatadownload"))
        *format = AN_IMPORT_CDD_CSV;
    else {
        const char *q = head;
        while (isdigit((unsigned char)*q))
            q++;
        *format = q > head && *q == ',' ? AN_IMPORT_BINANCE_CSV : AN_IMPORT_HEADER_CSV;
    }
    return AN_OK;
}
