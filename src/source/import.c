/*
 * import.c - candle file readers (see import.h).
 */
#include "source/import.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "source/import_internal.h"

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

/* The file's name without its directory and its last extension, into name. */
static void file_stem(const char *path, char *name, size_t len)
{
    const char *s = strrchr(path, '/');
    snprintf(name, len, "%s", s ? s + 1 : path);
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = '\0';
}

/* freqtrade: BTC_USDT-1m.json, BTC_USDT-1m-futures.json */
static void names_from_freqtrade(const char *path, char *sym, char *tf)
{
    char name[256];
    file_stem(path, name, sizeof name);
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
    file_stem(path, name, sizeof name);
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

/* Fills whichever of sym and tf is still empty from a file name's guess. */
static void take_names(char *sym, char *tf, const char *s2, const char *t2)
{
    if (!sym[0])
        snprintf(sym, AN_SYMBOL_MAX, "%s", s2);
    if (!tf[0])
        snprintf(tf, AN_TIMEFRAME_MAX, "%s", t2);
}

/* What a file's name says of its symbol and timeframe, in its format. */
static void names_for(const char *path, an_import_format fmt, char *sym, char *tf)
{
    char s2[AN_SYMBOL_MAX] = "", t2[AN_TIMEFRAME_MAX] = "";
    switch (fmt) {
    case AN_IMPORT_FREQTRADE_JSON:
        names_from_freqtrade(path, s2, t2);
        take_names(sym, tf, s2, t2);
        break;
    case AN_IMPORT_BINANCE_CSV:
        names_from_binance(path, s2, t2);
        take_names(sym, tf, s2, t2);
        break;
    case AN_IMPORT_CDD_CSV:
        if (!tf[0])
            tf_from_cdd(path, tf);
        break;
    case AN_IMPORT_HEADER_CSV:
    case AN_IMPORT_AUTO: break;
    }
}

static an_code open_file(const char *path, FILE **f, an_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return an_err_set(err, errno == ENOENT ? AN_ERR_NOT_FOUND : AN_ERR_IO, "%s: %s", path,
                          strerror(errno));
    if (!S_ISREG(st.st_mode))
        return an_err_set(err, AN_ERR_INVALID, "%s: not a regular file", path);
    *f = fopen(path, "rb");
    if (!*f)
        return an_err_set(err, AN_ERR_IO, "%s: %s", path, strerror(errno));
    return AN_OK;
}

/* One read of a file: its reader, the names it completes, what pass 1 saw. */
typedef struct stream {
    const char *path;
    FILE *f;
    an_import_rows rows;
    an_import_format format;
    char sym[AN_SYMBOL_MAX], tf[AN_TIMEFRAME_MAX];
    int sym_given, tf_given;
    size_t n;
    int64_t first, last; /* in file order */
    int ascending, descending;
    an_err *err;
} stream;

static void restart(stream *st)
{
    rewind(st->f);
    an_import_rows_init(&st->rows, st->f, st->path, st->format, st->sym, st->tf, st->sym_given,
                        st->tf_given, st->err);
}

/* Pass 1: every row read and checked, nothing kept. */
static an_code check_pass(stream *st)
{
    restart(st);
    int64_t prev = 0;
    for (;;) {
        an_candle k;
        int got;
        an_code rc = an_import_rows_next(&st->rows, &k, &got);
        if (rc != AN_OK || !got)
            return rc;
        if (st->tf[0] && !an_timeframe_aligned(st->tf, k.ts)) {
            char t[40], where[40];
            return an_err_set(st->err, AN_ERR_INVALID,
                              "%s: %s: timestamp %s is not aligned to the %s interval", st->path,
                              an_import_rows_where(&st->rows, where, sizeof where),
                              an_time_format(k.ts, t, sizeof t), st->tf);
        }
        if (st->n == 0) {
            st->first = k.ts;
        } else {
            st->ascending &= k.ts > prev;
            st->descending &= k.ts < prev;
        }
        prev = st->last = k.ts;
        st->n++;
    }
}

/* The file as a whole after pass 1: named, not empty, a valid symbol. */
static an_code check_whole(stream *st)
{
    if (!st->sym[0])
        return an_err_set(st->err, AN_ERR_INVALID,
                          "%s: cannot tell the symbol from the file: pass --symbol BASE/QUOTE",
                          st->path);
    if (!st->tf[0])
        return an_err_set(st->err, AN_ERR_INVALID,
                          "%s: cannot tell the timeframe from the file: pass --timeframe (e.g. 1m)",
                          st->path);
    if (st->n == 0)
        return an_err_set(st->err, AN_ERR_PARSE, "%s: no candles in the file", st->path);
    if (an_symbol_validate(st->sym, st->err) != AN_OK)
        return an_err_prefix(st->err, "%s", st->path);
    return AN_OK;
}

static void reverse(an_candle *v, size_t n)
{
    for (size_t i = 0, j = n ? n - 1 : 0; i < j; i++, j--) {
        an_candle t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Pass 2 of a file in order: batches to emit. */
static an_code emit_pass(stream *st, size_t batch, an_import_emit emit, void *ctx,
                         const an_import_info *info)
{
    an_candle *buf = malloc(batch * sizeof *buf);
    if (!buf)
        return an_err_set(st->err, AN_ERR_NOMEM, "%s: out of memory", st->path);
    restart(st);
    size_t n = 0, total = 0;
    int64_t first = 0, last = 0;
    an_code rc = AN_OK;
    for (;;) {
        int got;
        if ((rc = an_import_rows_next(&st->rows, &buf[n], &got)) != AN_OK)
            break;
        if (got) {
            last = buf[n].ts;
            if (total++ == 0)
                first = last;
            n++;
        }
        if (n == batch || (!got && n > 0)) {
            if (st->descending && !st->ascending)
                reverse(buf, n);
            if ((rc = emit(ctx, info, buf, n, st->err)) != AN_OK)
                break;
            n = 0;
        }
        if (!got)
            break;
    }
    if (rc == AN_OK && (total != st->n || first != st->first || last != st->last))
        rc = an_err_set(st->err, AN_ERR_IO, "%s: the file changed while it was read", st->path);
    free(buf);
    return rc;
}

/* Pass 2 of a file in neither order: its candles sorted in memory, checked
 * for duplicates, then emitted. */
static an_code emit_sorted(stream *st, size_t batch, an_import_emit emit, void *ctx,
                           const an_import_info *info)
{
    an_candles all = {0};
    restart(st);
    an_code rc;
    for (;;) {
        an_candle k;
        int got;
        if ((rc = an_import_rows_next(&st->rows, &k, &got)) != AN_OK || !got)
            break;
        if ((rc = an_candles_push(&all, &k, st->err)) != AN_OK)
            break;
    }
    if (rc == AN_OK) {
        an_candles_sort(&all);
        if ((rc = an_candles_validate(st->sym, st->tf, all.v, all.n, st->err)) != AN_OK)
            an_err_prefix(st->err, "%s", st->path);
    }
    for (size_t i = 0; rc == AN_OK && i < all.n; i += batch)
        rc = emit(ctx, info, all.v + i, all.n - i < batch ? all.n - i : batch, st->err);
    an_candles_free(&all);
    return rc;
}

an_code an_import_stream(const char *path, an_import_format format, const char *symbol,
                         const char *timeframe, size_t batch, an_import_emit emit, void *ctx,
                         an_import_info *info, an_err *err)
{
    an_err local_err; /* err may be NULL (error.h): this function reads the code */
    if (!err)
        err = &local_err;
    if (info)
        memset(info, 0, sizeof *info);
    if (!path || !*path)
        return an_err_set(err, AN_ERR_INVALID, "no file given");
    if (timeframe && !an_timeframe_valid(timeframe))
        return an_err_set(err, AN_ERR_INVALID, "unknown timeframe '%.16s'", timeframe);
    stream *st = calloc(1, sizeof *st);
    if (!st)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    *st = (stream){.path = path,
                   .format = format,
                   .sym_given = symbol != NULL,
                   .tf_given = timeframe != NULL,
                   .ascending = 1,
                   .descending = 1,
                   .err = err};
    an_code rc = AN_OK;
    if (symbol && an_import_normalize_symbol(symbol, st->sym, sizeof st->sym, err) != AN_OK) {
        free(st);
        return AN_ERR_INVALID;
    }
    if (timeframe)
        snprintf(st->tf, sizeof st->tf, "%s", timeframe);
    if ((rc = open_file(path, &st->f, err)) != AN_OK) {
        free(st);
        return rc;
    }
    int empty;
    if ((rc = an_import_detect(st->f, path, &st->format, &empty, err)) != AN_OK)
        goto out;
    if (empty) {
        rc = an_err_set(err, AN_ERR_PARSE, "%s: the file is empty", path);
        goto out;
    }
    if (st->format == AN_IMPORT_AUTO) /* cannot happen: detection names one */
        st->format = AN_IMPORT_HEADER_CSV;
    names_for(path, st->format, st->sym, st->tf);
    if ((rc = check_pass(st)) != AN_OK || (rc = check_whole(st)) != AN_OK)
        goto out;
    an_import_info in = {.format = st->format, .rows = st->n};
    snprintf(in.symbol, sizeof in.symbol, "%s", st->sym);
    snprintf(in.timeframe, sizeof in.timeframe, "%s", st->tf);
    in.first_ms = st->first < st->last ? st->first : st->last;
    in.last_ms = st->first < st->last ? st->last : st->first;
    if (info)
        *info = in;
    if (batch == 0)
        batch = 1;
    rc = st->ascending || st->descending ? emit_pass(st, batch, emit, ctx, &in)
                                         : emit_sorted(st, batch, emit, ctx, &in);
out:
    fclose(st->f);
    free(st);
    return rc;
}

/* an_import_read's emit: every batch appended in memory. */
static an_code collect(void *ctx, const an_import_info *info, const an_candle *v, size_t n,
                       an_err *err)
{
    (void)info;
    an_candles *all = ctx;
    for (size_t i = 0; i < n; i++)
        if (an_candles_push(all, &v[i], err) != AN_OK)
            return AN_ERR_NOMEM;
    return AN_OK;
}

an_code an_import_read(const char *path, an_import_format format, const char *symbol,
                       const char *timeframe, an_import_result *out, an_err *err)
{
    memset(out, 0, sizeof *out);
    an_candles all = {0};
    an_import_info info;
    an_code rc =
        an_import_stream(path, format, symbol, timeframe, 65536, collect, &all, &info, err);
    if (rc != AN_OK) {
        an_candles_free(&all);
        return rc;
    }
    /* a newest-first file's batches come newest batch first */
    if (all.n > 1 && all.v[0].ts > all.v[all.n - 1].ts)
        an_candles_sort(&all);
    out->format = info.format;
    snprintf(out->symbol, sizeof out->symbol, "%s", info.symbol);
    snprintf(out->timeframe, sizeof out->timeframe, "%s", info.timeframe);
    out->candles = all;
    return AN_OK;
}
