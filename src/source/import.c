/*
 * import.c - candle file readers (see import.h).
 */
#include "source/import.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MAX_FILE_BYTES (2LL << 30)
#define MAX_FIELDS 32

const char *an_import_format_name(an_import_format f)
{
    switch (f) {
    case AN_IMPORT_AUTO: return "auto";
    case AN_IMPORT_FREQTRADE_JSON: return "freqtrade-json";
    case AN_IMPORT_CDD_CSV: return "cryptodatadownload-csv";
    case AN_IMPORT_HEADER_CSV: return "csv";
    case AN_IMPORT_BINANCE_CSV: return "binance-csv";
    }
    return "unknown";
}

an_code an_import_format_parse(const char *s, an_import_format *out, an_err *err)
{
    for (int f = AN_IMPORT_AUTO; f <= AN_IMPORT_BINANCE_CSV; f++) {
        if (s && strcmp(s, an_import_format_name((an_import_format)f)) == 0) {
            *out = (an_import_format)f;
            return AN_OK;
        }
    }
    return an_err_set(err, AN_ERR_INVALID,
                      "unknown import format '%.40s' (auto, freqtrade-json, "
                      "cryptodatadownload-csv, csv, binance-csv)",
                      s ? s : "");
}

void an_import_result_free(an_import_result *r)
{
    if (r)
        an_candles_free(&r->candles);
}

/* ---- symbols and file names -------------------------------------------- */

static const char *QUOTES[] = {"FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "USD",
                               "EUR",   "GBP",  "TRY",  "BRL",  "JPY",  "AUD",  "DAI",
                               "BTC",   "ETH",  "BNB",  "XRP",  "TRX",  "DOGE", NULL};

an_code an_import_normalize_symbol(const char *in, char *out, size_t outlen, an_err *err)
{
    char up[AN_SYMBOL_MAX];
    size_t n = in ? strlen(in) : 0;
    if (n == 0 || n >= sizeof up)
        return an_err_set(err, AN_ERR_INVALID, "invalid symbol '%.40s'", in ? in : "");
    for (size_t i = 0; i <= n; i++)
        up[i] = (char)toupper((unsigned char)in[i]);
    char *sep = strpbrk(up, "/_-");
    char norm[2 * AN_SYMBOL_MAX + 2];
    if (sep) {
        *sep = '\0';
        snprintf(norm, sizeof norm, "%s/%s", up, sep + 1);
    } else {
        int found = 0;
        for (int i = 0; QUOTES[i] && !found; i++) {
            size_t q = strlen(QUOTES[i]);
            if (n > q && strcmp(up + n - q, QUOTES[i]) == 0) {
                snprintf(norm, sizeof norm, "%.*s/%s", (int)(n - q), up, QUOTES[i]);
                found = 1;
            }
        }
        if (!found)
            return an_err_set(err, AN_ERR_INVALID,
                              "cannot tell the quote asset of symbol '%s': write it as "
                              "BASE/QUOTE (e.g. --symbol BTC/USDT)",
                              in);
    }
    if (an_symbol_validate(norm, err) != AN_OK)
        return AN_ERR_INVALID;
    snprintf(out, outlen, "%s", norm);
    return AN_OK;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* freqtrade: BTC_USDT-1m.json, BTC_USDT-1m-futures.json */
static void names_from_freqtrade(const char *path, char *sym, char *tf)
{
    char name[256];
    snprintf(name, sizeof name, "%s", base_name(path));
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = '\0';
    char *dash = strchr(name, '-');
    if (!dash)
        return;
    *dash = '\0';
    char *tf_s = dash + 1, *dash2 = strchr(tf_s, '-');
    if (dash2)
        *dash2 = '\0';
    an_err ignore;
    if (an_import_normalize_symbol(name, sym, AN_SYMBOL_MAX, &ignore) != AN_OK)
        sym[0] = '\0';
    if (an_timeframe_valid(tf_s))
        snprintf(tf, AN_TIMEFRAME_MAX, "%s", tf_s);
}

/* Binance dumps: BTCUSDT-1m-2024-01.csv, BTCUSDT-1m-2024-01-15.csv */
static void names_from_binance(const char *path, char *sym, char *tf)
{
    names_from_freqtrade(path, sym, tf);
}

/* CryptoDataDownload: Coinbase_BTCUSD_d.csv, Binance_BTCUSDT_1h.csv, ..._minute.csv */
static void tf_from_cdd(const char *path, char *tf)
{
    char name[256];
    snprintf(name, sizeof name, "%s", base_name(path));
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = '\0';
    char *us = strrchr(name, '_');
    if (!us)
        return;
    const char *suf = us + 1;
    const char *map[][2] = {{"d", "1d"},      {"1d", "1d"},   {"day", "1d"}, {"h", "1h"},
                            {"1h", "1h"},     {"hour", "1h"}, {"m", "1m"},   {"1m", "1m"},
                            {"minute", "1m"}, {"5m", "5m"},   {"15m", "15m"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcasecmp(suf, map[i][0]) == 0)
            snprintf(tf, AN_TIMEFRAME_MAX, "%s", map[i][1]);
}

/* ---- numbers ------------------------------------------------------------ */

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

/* ---- reading the file --------------------------------------------------- */

static an_code read_file(const char *path, char **buf, size_t *len, an_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return an_err_set(err, errno == ENOENT ? AN_ERR_NOT_FOUND : AN_ERR_IO, "%s: %s", path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode))
        return an_err_set(err, AN_ERR_INVALID, "%s: not a regular file", path);
    if (st.st_size > MAX_FILE_BYTES)
        return an_err_set(err, AN_ERR_INVALID, "%s: larger than 2 GiB", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return an_err_set(err, AN_ERR_IO, "%s: %s", path, strerror(errno));
    *buf = malloc((size_t)st.st_size + 1);
    if (!*buf) {
        fclose(f);
        return an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", path);
    }
    *len = fread(*buf, 1, (size_t)st.st_size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(*buf);
        *buf = NULL;
        return an_err_set(err, AN_ERR_IO, "%s: read error", path);
    }
    (*buf)[*len] = '\0';
    if (memchr(*buf, '\0', *len)) {
        free(*buf);
        *buf = NULL;
        return an_err_set(err, AN_ERR_PARSE, "%s: binary data (a NUL byte): not a candle file",
                          path);
    }
    return AN_OK;
}

/* Splits the next line off *p (CRLF tolerated); NULL at the end. */
static char *next_line(char **p)
{
    if (!**p)
        return NULL;
    char *line = *p, *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = line + strlen(line);
    }
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r')
        line[n - 1] = '\0';
    return line;
}

/* Splits a CSV line in place (double quotes, "" escapes); returns the field count. */
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

/* ---- per-row checks ----------------------------------------------------- */

typedef struct ctx {
    const char *path;
    an_err *err;
} ctx;

static an_code row_error(ctx *c, long line, const char *fmt, const char *field)
{
    char what[200];
    snprintf(what, sizeof what, fmt, field);
    return an_err_set(c->err, AN_ERR_PARSE, "%s: line %ld: %s", c->path, line, what);
}

static an_code set_field(ctx *c, long line, const char *name, const char *text, double *out)
{
    if (parse_double(text, out) < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s '%.40s' is not a number", name, text);
        return an_err_set(c->err, AN_ERR_PARSE, "%s: line %ld: %s", c->path, line, msg);
    }
    return AN_OK;
}

static an_code push_checked(ctx *c, an_candles *out, const an_candle *k, long line)
{
    an_err e;
    if (an_candle_validate(k, -1, &e) != AN_OK)
        return an_err_set(c->err, AN_ERR_INVALID, "%s: line %ld: %s", c->path, line, e.msg);
    return an_candles_push(out, k, c->err);
}

/* ---- freqtrade JSON ----------------------------------------------------- */

static int json_num(json_t *v, double *out)
{
    if (json_is_integer(v)) {
        *out = (double)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        *out = json_real_value(v);
        return isfinite(*out) ? 0 : -1;
    }
    if (json_is_string(v))
        return parse_double(json_string_value(v), out);
    return -1;
}

static an_code read_freqtrade(ctx *c, const char *buf, size_t len, an_candles *out)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    if (!root)
        return an_err_set(c->err, AN_ERR_PARSE, "%s: line %d: malformed JSON: %s", c->path, je.line,
                          je.text);
    an_code rc = AN_OK;
    if (!json_is_array(root)) {
        rc =
            an_err_set(c->err, AN_ERR_PARSE, "%s: expected a JSON array of candle arrays", c->path);
        goto out;
    }
    static const char *names[6] = {"open time", "open", "high", "low", "close", "volume"};
    for (size_t i = 0; i < json_array_size(root) && rc == AN_OK; i++) {
        json_t *row = json_array_get(root, i);
        if (!json_is_array(row) || json_array_size(row) != 6) {
            rc = an_err_set(c->err, AN_ERR_PARSE,
                            "%s: candle %zu: expected [time, open, high, low, close, volume]%s",
                            c->path, i + 1,
                            json_array_size(row) > 6 ? " (it has more elements)" : "");
            break;
        }
        double f[6];
        for (int k = 0; k < 6 && rc == AN_OK; k++)
            if (json_num(json_array_get(row, (size_t)k), &f[k]) < 0)
                rc = an_err_set(c->err, AN_ERR_PARSE, "%s: candle %zu: %s is not a number", c->path,
                                i + 1, names[k]);
        if (rc != AN_OK)
            break;
        if (f[0] != floor(f[0]) || f[0] < 0 || f[0] > 9e15) {
            rc = an_err_set(c->err, AN_ERR_PARSE,
                            "%s: candle %zu: open time %.17g is not milliseconds", c->path, i + 1,
                            f[0]);
            break;
        }
        an_candle k = {(int64_t)f[0], f[1], f[2], f[3], f[4], f[5], 0};
        an_err e;
        if (an_candle_validate(&k, -1, &e) != AN_OK)
            rc = an_err_set(c->err, AN_ERR_INVALID, "%s: candle %zu: %s", c->path, i + 1, e.msg);
        else
            rc = an_candles_push(out, &k, c->err);
    }
out:
    json_decref(root);
    return rc;
}

/* ---- CSVs --------------------------------------------------------------- */

static an_code parse_time_field(ctx *c, long line, const char *text, int64_t *ms)
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
    return row_error(c, line, "time '%.40s' is not a date, a datetime or an epoch number", text);
}

/* Column positions found from a header. */
typedef struct cols {
    int time, open, high, low, close, volume, symbol, timeframe, unix_time;
} cols;

static int eq_any(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcasecmp(s, names[i]) == 0)
            return 1;
    return 0;
}

static void find_cols(char **f, int n, cols *c, int cdd)
{
    static const char *const t_names[] = {"timestamp", "time",         "date",     "datetime",
                                          "open_time", "open time",    "opentime", "ts",
                                          "date_time", "timestamp_ms", NULL};
    static const char *const v_names[] = {"volume",      "vol",        "volume_base",
                                          "base_volume", "basevolume", NULL};
    *c = (cols){-1, -1, -1, -1, -1, -1, -1, -1, -1};
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

static an_code read_header_csv(ctx *c, char *p, long line, int cdd, an_candles *out, char *sym,
                               char *tf, int sym_given, int tf_given)
{
    char *hdr = next_line(&p);
    line++;
    if (!hdr)
        return an_err_set(c->err, AN_ERR_PARSE, "%s: no header line", c->path);
    char *f[MAX_FIELDS];
    int nf = split_csv(hdr, f, MAX_FIELDS);
    if (nf < 0)
        return an_err_set(c->err, AN_ERR_PARSE, "%s: line %ld: more than %d columns", c->path, line,
                          MAX_FIELDS);
    cols k;
    find_cols(f, nf, &k, cdd);
    if (k.time < 0 && k.unix_time >= 0)
        k.time = k.unix_time;
    const char *missing = k.time < 0     ? "time (timestamp, date, time or open_time)"
                          : k.open < 0   ? "open"
                          : k.high < 0   ? "high"
                          : k.low < 0    ? "low"
                          : k.close < 0  ? "close"
                          : k.volume < 0 ? "volume"
                                         : NULL;
    if (missing)
        return an_err_set(c->err, AN_ERR_PARSE, "%s: line %ld: the header has no %s column",
                          c->path, line, missing);
    char *row;
    while ((row = next_line(&p))) {
        line++;
        if (blank(row))
            continue;
        int n = split_csv(row, f, MAX_FIELDS);
        if (n != nf)
            return an_err_set(c->err, AN_ERR_PARSE, "%s: line %ld: %s%d fields, the header has %d",
                              c->path, line, n < 0 ? "more than " : "", n < 0 ? MAX_FIELDS : n, nf);
        an_candle cd;
        an_code rc;
        if ((rc = parse_time_field(c, line, f[k.time], &cd.ts)) != AN_OK ||
            (rc = set_field(c, line, "open", f[k.open], &cd.open)) != AN_OK ||
            (rc = set_field(c, line, "high", f[k.high], &cd.high)) != AN_OK ||
            (rc = set_field(c, line, "low", f[k.low], &cd.low)) != AN_OK ||
            (rc = set_field(c, line, "close", f[k.close], &cd.close)) != AN_OK ||
            (rc = set_field(c, line, "volume", f[k.volume], &cd.volume)) != AN_OK)
            return rc;
        if (k.symbol >= 0 && !sym_given) {
            char s[AN_SYMBOL_MAX];
            an_err e;
            if (an_import_normalize_symbol(f[k.symbol], s, sizeof s, &e) != AN_OK)
                return an_err_set(c->err, AN_ERR_PARSE, "%s: line %ld: %s", c->path, line, e.msg);
            if (!sym[0])
                snprintf(sym, AN_SYMBOL_MAX, "%s", s);
            else if (strcmp(sym, s) != 0)
                return an_err_set(c->err, AN_ERR_INVALID,
                                  "%s: line %ld: symbol %s differs from %s above: one symbol "
                                  "per file",
                                  c->path, line, s, sym);
        }
        if (k.timeframe >= 0 && !tf_given) {
            const char *t = f[k.timeframe];
            if (!an_timeframe_valid(t))
                return row_error(c, line, "unknown timeframe '%.16s'", t);
            if (!tf[0])
                snprintf(tf, AN_TIMEFRAME_MAX, "%s", t);
            else if (strcmp(tf, t) != 0)
                return an_err_set(c->err, AN_ERR_INVALID,
                                  "%s: line %ld: timeframe %s differs from %s above", c->path, line,
                                  t, tf);
        }
        if ((rc = push_checked(c, out, &cd, line)) != AN_OK)
            return rc;
    }
    return AN_OK;
}

static an_code read_binance_csv(ctx *c, char *p, an_candles *out)
{
    char *row, *f[MAX_FIELDS];
    long line = 0;
    while ((row = next_line(&p))) {
        line++;
        if (blank(row))
            continue;
        int n = split_csv(row, f, MAX_FIELDS);
        if (n != 12)
            return an_err_set(c->err, AN_ERR_PARSE,
                              "%s: line %ld: %s%d fields, a Binance klines row has 12", c->path,
                              line, n < 0 ? "more than " : "", n < 0 ? MAX_FIELDS : n);
        an_candle cd;
        an_code rc;
        if (int_time_ms(f[0], &cd.ts) < 0)
            return row_error(c, line, "open time '%.40s' is not an epoch number", f[0]);
        if ((rc = set_field(c, line, "open", f[1], &cd.open)) != AN_OK ||
            (rc = set_field(c, line, "high", f[2], &cd.high)) != AN_OK ||
            (rc = set_field(c, line, "low", f[3], &cd.low)) != AN_OK ||
            (rc = set_field(c, line, "close", f[4], &cd.close)) != AN_OK ||
            (rc = set_field(c, line, "volume", f[5], &cd.volume)) != AN_OK ||
            (rc = push_checked(c, out, &cd, line)) != AN_OK)
            return rc;
    }
    return AN_OK;
}

/* ---- detection and the whole read -------------------------------------- */

static an_import_format detect(const char *buf)
{
    const char *p = buf;
    while (*p && isspace((unsigned char)*p))
        p++;
    if (*p == '[' || *p == '{')
        return AN_IMPORT_FREQTRADE_JSON;
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if ((n >= 7 && strncmp(p, "Created", 7) == 0) ||
        (memmem(p, n, "CryptoDataDownload", 18) != NULL) ||
        (memmem(p, n, "cryptodatadownload", 18) != NULL))
        return AN_IMPORT_CDD_CSV;
    if (isdigit((unsigned char)*p)) {
        const char *q = p;
        while (isdigit((unsigned char)*q))
            q++;
        if (*q == ',')
            return AN_IMPORT_BINANCE_CSV;
    }
    return AN_IMPORT_HEADER_CSV;
}

/* Fills whichever of sym and tf is still empty from a file name's guess. */
static void take_names(char *sym, char *tf, const char *s2, const char *t2)
{
    if (!sym[0])
        snprintf(sym, AN_SYMBOL_MAX, "%s", s2);
    if (!tf[0])
        snprintf(tf, AN_TIMEFRAME_MAX, "%s", t2);
}

/* Reads buf in *format (AUTO: detected; set to what was read); sym and tf
 * (given or empty) are completed from the file's name or content. */
static an_code read_format(ctx *c, char *buf, size_t len, an_import_format *format, char *sym,
                           char *tf, int sym_given, int tf_given, an_candles *out)
{
    char s2[AN_SYMBOL_MAX] = "", t2[AN_TIMEFRAME_MAX] = "";
    if (*format == AN_IMPORT_AUTO)
        *format = detect(buf);
    switch (*format) {
    case AN_IMPORT_FREQTRADE_JSON:
        names_from_freqtrade(c->path, s2, t2);
        take_names(sym, tf, s2, t2);
        return read_freqtrade(c, buf, len, out);
    case AN_IMPORT_BINANCE_CSV:
        names_from_binance(c->path, s2, t2);
        take_names(sym, tf, s2, t2);
        return read_binance_csv(c, buf, out);
    case AN_IMPORT_CDD_CSV: {
        if (!tf[0])
            tf_from_cdd(c->path, tf);
        char *p = buf;
        next_line(&p); /* the preamble */
        return read_header_csv(c, p, 1, 1, out, sym, tf, sym_given, tf_given);
    }
    case AN_IMPORT_HEADER_CSV:
    case AN_IMPORT_AUTO: break;
    }
    *format = AN_IMPORT_HEADER_CSV;
    return read_header_csv(c, buf, 0, 0, out, sym, tf, sym_given, tf_given);
}

/* The series as read: it must name its symbol and timeframe and hold
 * candles; put oldest first (files run oldest first, or newest first as
 * CryptoDataDownload's do) and validated whole. */
static an_code order_and_check(ctx *c, const char *sym, const char *tf, an_candles *candles)
{
    if (!sym[0])
        return an_err_set(c->err, AN_ERR_INVALID,
                          "%s: cannot tell the symbol from the file: pass --symbol BASE/QUOTE",
                          c->path);
    if (!tf[0])
        return an_err_set(c->err, AN_ERR_INVALID,
                          "%s: cannot tell the timeframe from the file: pass --timeframe (e.g. 1m)",
                          c->path);
    if (candles->n == 0)
        return an_err_set(c->err, AN_ERR_PARSE, "%s: no candles in the file", c->path);
    int ascending = 1, descending = 1;
    for (size_t i = 1; i < candles->n; i++) {
        ascending &= candles->v[i].ts > candles->v[i - 1].ts;
        descending &= candles->v[i].ts < candles->v[i - 1].ts;
    }
    if (descending && !ascending)
        an_candles_reverse(candles);
    else if (!ascending)
        an_candles_sort(candles);
    an_code rc = an_candles_validate(sym, tf, candles->v, candles->n, c->err);
    if (rc != AN_OK)
        an_err_prefix(c->err, "%s", c->path);
    return rc;
}

an_code an_import_read(const char *path, an_import_format format, const char *symbol,
                       const char *timeframe, an_import_result *out, an_err *err)
{
    memset(out, 0, sizeof *out);
    if (!path || !*path)
        return an_err_set(err, AN_ERR_INVALID, "no file given");
    if (timeframe && !an_timeframe_valid(timeframe))
        return an_err_set(err, AN_ERR_INVALID, "unknown timeframe '%.16s'", timeframe);
    char sym[AN_SYMBOL_MAX] = "", tf[AN_TIMEFRAME_MAX] = "";
    if (symbol && an_import_normalize_symbol(symbol, sym, sizeof sym, err) != AN_OK)
        return AN_ERR_INVALID;
    if (timeframe)
        snprintf(tf, sizeof tf, "%s", timeframe);
    char *buf = NULL;
    size_t len = 0;
    an_code rc = read_file(path, &buf, &len, err);
    if (rc != AN_OK)
        return rc;
    ctx c = {path, err};
    an_candles candles = {0};
    if (blank(buf))
        rc = an_err_set(err, AN_ERR_PARSE, "%s: the file is empty", path);
    else if ((rc = read_format(&c, buf, len, &format, sym, tf, symbol != NULL, timeframe != NULL,
                               &candles)) == AN_OK &&
             (rc = order_and_check(&c, sym, tf, &candles)) == AN_OK) {
        out->format = format;
        snprintf(out->symbol, sizeof out->symbol, "%s", sym);
        snprintf(out->timeframe, sizeof out->timeframe, "%s", tf);
        out->candles = candles;
        candles = (an_candles){0};
    }
    an_candles_free(&candles);
    free(buf);
    return rc;
}
