/*
 * providers/files.c - candles from a directory of candle files: the file
 * importer (source/import.h) as a provider, for any category (forex, stock
 * and commodity feeds delivered as files, or crypto history dumps).
 *
 * The source is a directory. A series (symbol, timeframe) is every file
 * there named SYMBOL-TF.ext or SYMBOL-TF-anything.ext, where SYMBOL is any
 * spelling import understands (EUR_USD, EUR-USD is not: the dash separates
 * the timeframe; EURUSD when the quote is known): BTC_USDT-1m.json,
 * BTCUSDT-1m-2024-01.csv, XAU_USD-1h.csv. Each file is read and validated
 * by the importer (a bad file refuses the whole series, naming the file);
 * files may split a series (monthly dumps) and may overlap where they agree.
 * A connection loads a series once and serves pages from memory.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "source/import.h"
#include "source/provider.h"

#define PAGE 100000

typedef struct files_conn {
    char dir[1024];
    char symbol[AN_SYMBOL_MAX], tf[AN_TIMEFRAME_MAX]; /* the loaded series */
    an_candles series;
    int loaded;
    an_provider_stats stats;
} files_conn;

static an_code open_(const an_provider_options *o, void *shared, void **impl, an_err *err)
{
    (void)shared;
    *impl = NULL;
    if (!o->source || !*o->source)
        return an_err_set(err, AN_ERR_INVALID, "the files provider needs a directory");
    DIR *d = opendir(o->source);
    if (!d)
        return an_err_set(err, AN_ERR_INVALID, "files provider: cannot open directory '%.300s'",
                          o->source);
    closedir(d);
    files_conn *c = calloc(1, sizeof *c);
    if (!c)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    snprintf(c->dir, sizeof c->dir, "%s", o->source);
    *impl = c;
    return AN_OK;
}

static void close_(void *impl)
{
    files_conn *c = impl;
    if (!c)
        return;
    an_candles_free(&c->series);
    free(c);
}

/* 1 when the file name belongs to (symbol, tf); tf NULL matches any. */
static int name_matches(const char *name, const char *symbol, const char *tf)
{
    const char *dash = strchr(name, '-');
    if (!dash || dash == name || (size_t)(dash - name) >= AN_SYMBOL_MAX)
        return 0;
    char stem[AN_SYMBOL_MAX], norm[AN_SYMBOL_MAX];
    snprintf(stem, sizeof stem, "%.*s", (int)(dash - name), name);
    an_err e;
    if (an_import_normalize_symbol(stem, norm, sizeof norm, &e) != AN_OK ||
        strcmp(norm, symbol) != 0)
        return 0;
    if (!tf)
        return 1;
    size_t n = strlen(tf);
    return strncmp(dash + 1, tf, n) == 0 && (dash[1 + n] == '.' || dash[1 + n] == '-');
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The file names of (symbol, tf) in the directory, sorted. */
static an_code list_files(files_conn *c, const char *symbol, const char *tf, char ***out, size_t *n,
                          an_err *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(c->dir);
    if (!d)
        return an_err_set(err, AN_ERR_IO, "files provider: cannot read directory '%.300s'", c->dir);
    size_t cap = 0;
    an_code rc = AN_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || !name_matches(de->d_name, symbol, tf))
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **nv = realloc(*out, nc * sizeof *nv);
            if (!nv) {
                rc = an_err_set(err, AN_ERR_NOMEM, "out of memory");
                break;
            }
            *out = nv;
            cap = nc;
        }
        if (!((*out)[*n] = strdup(de->d_name))) {
            rc = an_err_set(err, AN_ERR_NOMEM, "out of memory");
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (*n > 1)
        qsort(*out, *n, sizeof **out, cmp_name);
    return rc;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int cmp_ts(const void *a, const void *b)
{
    int64_t x = ((const an_candle *)a)->ts, y = ((const an_candle *)b)->ts;
    return x < y ? -1 : x > y;
}

/* Loads every file of (symbol, tf) into c->series, sorted, overlaps merged. */
static an_code load(files_conn *c, const char *symbol, const char *tf, an_err *err)
{
    if (c->loaded && !strcmp(c->symbol, symbol) && !strcmp(c->tf, tf))
        return AN_OK;
    c->loaded = 0;
    c->series.n = 0;
    char **names = NULL;
    size_t n = 0;
    an_code rc = list_files(c, symbol, tf, &names, &n, err);
    for (size_t i = 0; i < n && rc == AN_OK; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", c->dir, names[i]);
        an_import_result r;
        c->stats.requests++;
        if ((rc = an_import_read(path, AN_IMPORT_AUTO, symbol, tf, &r, err)) != AN_OK) {
            c->stats.refused_replies++;
            break;
        }
        for (size_t k = 0; k < r.candles.n && rc == AN_OK; k++)
            rc = an_candles_push(&c->series, &r.candles.v[k], err);
        an_import_result_free(&r);
    }
    free_list(names, n);
    if (rc != AN_OK) {
        c->series.n = 0;
        return rc;
    }
    qsort(c->series.v, c->series.n, sizeof *c->series.v, cmp_ts);
    size_t w = 0;
    for (size_t i = 0; i < c->series.n; i++) {
        an_candle *v = c->series.v;
        if (w > 0 && v[w - 1].ts == v[i].ts) {
            if (memcmp(&v[w - 1], &v[i], sizeof v[i]) != 0) {
                char t[40];
                c->series.n = 0;
                return an_err_set(err, AN_ERR_INVALID,
                                  "files provider: %s %s: two files disagree about the candle at "
                                  "%s",
                                  symbol, tf, an_time_format(v[i].ts, t, sizeof t));
            }
            continue;
        }
        v[w++] = v[i];
    }
    c->series.n = w;
    snprintf(c->symbol, sizeof c->symbol, "%s", symbol);
    snprintf(c->tf, sizeof c->tf, "%s", tf);
    c->loaded = 1;
    return AN_OK;
}

static an_code symbol_exists(void *impl, const char *symbol, int *exists, an_err *err)
{
    char **names = NULL;
    size_t n = 0;
    an_code rc = list_files(impl, symbol, NULL, &names, &n, err);
    *exists = n > 0;
    free_list(names, n);
    return rc;
}

static an_code now(void *impl, int64_t *ms, an_err *err)
{
    (void)impl;
    (void)err;
    *ms = an_now_ms();
    return AN_OK;
}

static an_code fetch(void *impl, const char *symbol, const char *tf, int64_t from, int64_t to,
                     an_candles *out, size_t *rows, an_err *err)
{
    files_conn *c = impl;
    *rows = 0;
    an_code rc = load(c, symbol, tf, err);
    if (rc != AN_OK)
        return rc;
    size_t lo = 0, hi = c->series.n;
    while (lo < hi) { /* first candle opening at or after from */
        size_t mid = lo + (hi - lo) / 2;
        if (c->series.v[mid].ts < from)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < c->series.n && *rows < PAGE; i++) {
        if (to >= 0 && c->series.v[i].ts > to)
            break;
        if ((rc = an_candles_push(out, &c->series.v[i], err)) != AN_OK)
            return rc;
        (*rows)++;
    }
    return AN_OK;
}

static void stats(void *impl, an_provider_stats *out)
{
    *out = ((files_conn *)impl)->stats;
}

const an_provider_ops an_provider_files = {
    .name = "files",
    .description = "candle files in a directory (SYMBOL-TF.json/.csv, as `autonama import` reads)",
    .page_max = PAGE,
    AN_PROVIDER_CONNECTION_OPS,
};
