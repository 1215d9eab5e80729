/*
 * params.c - request parameter parsing and the timeframe plan (see params.h).
 */
#include "api/params.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const an_api_timeframes[] = {"1m", "5m", "15m", "1h", "4h", "1d"};
const size_t an_api_ntimeframes = sizeof an_api_timeframes / sizeof an_api_timeframes[0];

int an_api_timeframe_known(const char *tf)
{
    for (size_t i = 0; tf && i < an_api_ntimeframes; i++)
        if (strcmp(tf, an_api_timeframes[i]) == 0)
            return 1;
    return 0;
}

const char *an_tf_source_name(an_tf_source s)
{
    switch (s) {
    case AN_TF_STORED: return "stored";
    case AN_TF_ROLLUP: return "rollup";
    case AN_TF_BUCKET: return "bucketed";
    case AN_TF_NONE: break;
    }
    return "none";
}

/* The symbol's stored timeframes that divide p->tf_ms, finest first. */
static void add_alts(an_tf_plan *p, const char *symbol, const an_series_info *series, size_t n)
{
    for (size_t k = 0; k < an_api_ntimeframes && p->nalts < AN_TF_MAX_ALTS; k++) {
        int64_t ms = an_timeframe_ms(an_api_timeframes[k], NULL);
        if (ms <= 0 || ms >= p->tf_ms || p->tf_ms % ms != 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (strcmp(series[i].symbol, symbol) == 0 && series[i].rows > 0 &&
                strcmp(series[i].timeframe, an_api_timeframes[k]) == 0) {
                snprintf(p->alts[p->nalts++], sizeof p->alts[0], "%s", an_api_timeframes[k]);
                break;
            }
    }
}

an_tf_plan an_api_plan_timeframe(const char *symbol, const char *tf, const an_series_info *series,
                                 size_t n)
{
    an_tf_plan p = {.source = AN_TF_NONE, .tf_ms = an_timeframe_ms(tf, NULL)};
    if (p.tf_ms <= 0)
        return p;
    int has_1m = 0;
    int64_t finest = 0;
    const char *finest_tf = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(series[i].symbol, symbol) != 0 || series[i].rows <= 0)
            continue;
        if (strcmp(series[i].timeframe, tf) == 0) {
            p.source = AN_TF_STORED;
            snprintf(p.from_tf, sizeof p.from_tf, "%s", tf);
            return p;
        }
        int64_t ms = an_timeframe_ms(series[i].timeframe, NULL);
        if (strcmp(series[i].timeframe, "1m") == 0)
            has_1m = 1;
        if (ms > 0 && ms < p.tf_ms && p.tf_ms % ms == 0 && (finest == 0 || ms < finest)) {
            finest = ms;
            finest_tf = series[i].timeframe;
        }
    }
    if (has_1m && (strcmp(tf, "1h") == 0 || strcmp(tf, "1d") == 0)) {
        p.source = AN_TF_ROLLUP;
        snprintf(p.from_tf, sizeof p.from_tf, "1m");
    } else if (finest_tf) {
        p.source = AN_TF_BUCKET;
        snprintf(p.from_tf, sizeof p.from_tf, "%s", finest_tf);
        add_alts(&p, symbol, series, n);
    }
    return p;
}

an_code an_api_parse_limit(const char *v, long max, long *out, an_err *err)
{
    if (!v || !*v)
        return an_err_set(err, AN_ERR_INVALID, "limit is empty: give an integer from 1 to %ld",
                          max);
    for (const char *c = v; *c; c++)
        if (!isdigit((unsigned char)*c))
            return an_err_set(err, AN_ERR_INVALID, "limit '%.20s' is not an integer from 1 to %ld",
                              v, max);
    errno = 0;
    long l = strtol(v, NULL, 10);
    if (errno || l < 1 || l > max)
        return an_err_set(err, AN_ERR_INVALID, "limit '%.20s' is out of range: 1 to %ld", v, max);
    *out = l;
    return AN_OK;
}

an_code an_api_parse_time(const char *v, int64_t *ms, an_err *err)
{
    if (!v || !*v)
        return an_err_set(err, AN_ERR_INVALID, "empty time");
    if (strlen(v) > 40)
        return an_err_set(err, AN_ERR_INVALID, "time too long");
    an_err e = {0};
    if (an_time_parse_arg(v, ms, &e) != AN_OK)
        return an_err_set(err, AN_ERR_INVALID,
                          "'%.40s' is not a time (2024-01-01, 2024-01-01T12:30:00Z or ms since "
                          "the epoch, without leading zeros, up to 2999-12-31)",
                          v);
    return AN_OK;
}

/* "_N" repeated: count numbers (digits, one optional '.'), -1 when malformed. */
static int numbers(const char *s)
{
    int k = 0;
    while (*s) {
        if (*s != '_' || !isdigit((unsigned char)s[1]))
            return -1;
        s++;
        int dots = 0;
        while (isdigit((unsigned char)*s) || (*s == '.' && !dots++))
            s++;
        if (s[-1] == '.')
            return -1;
        k++;
    }
    return k;
}

int an_api_indicator_name_valid(const char *name)
{
    static const struct {
        const char *prefix;
        int min, max;
    } fam[] = {
        {"sma", 1, 1},         {"ema", 1, 1},       {"rsi", 1, 1},
        {"bb_upper", 1, 3},    {"bb_middle", 1, 3}, {"bb_lower", 1, 3},
        {"macd_signal", 0, 3}, {"macd_hist", 0, 3}, {"macd", 0, 3},
    };
    if (!name || strlen(name) >= AN_INDICATOR_NAME_MAX)
        return 0;
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        size_t l = strlen(fam[i].prefix);
        if (strncmp(name, fam[i].prefix, l) != 0)
            continue;
        int k = numbers(name + l);
        if (k < 0)
            continue; /* "macd_signal" must not be read as macd + "_signal" */
        if (k >= fam[i].min && k <= fam[i].max && (fam[i].min > 0 || k == 0 || k == fam[i].max))
            return 1;
    }
    return 0;
}

an_code an_api_parse_names(const char *v, char (*names)[AN_INDICATOR_NAME_MAX], int max, int *n,
                           an_err *err)
{
    *n = 0;
    if (!v || !*v)
        return an_err_set(err, AN_ERR_INVALID, "empty list of indicator names");
    const char *p = v;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[AN_INDICATOR_NAME_MAX];
        if (len == 0 || len >= sizeof name)
            return an_err_set(err, AN_ERR_INVALID, "unknown indicator name '%.*s'",
                              (int)(len > 40 ? 40 : len), p);
        memcpy(name, p, len);
        name[len] = '\0';
        if (!an_api_indicator_name_valid(name))
            return an_err_set(err, AN_ERR_INVALID,
                              "unknown indicator name '%s' (known: sma_N, ema_N, rsi_N, "
                              "bb_upper_N, bb_middle_N, bb_lower_N, macd, macd_signal, macd_hist)",
                              name);
        for (int i = 0; i < *n; i++)
            if (strcmp(names[i], name) == 0)
                return an_err_set(err, AN_ERR_INVALID, "indicator name '%s' given twice", name);
        if (*n >= max)
            return an_err_set(err, AN_ERR_INVALID, "too many indicator names (at most %d)", max);
        memcpy(names[(*n)++], name, len + 1);
        if (!comma)
            break;
        p = comma + 1;
    }
    return AN_OK;
}

int an_api_bearer_ok(const char *header, const char *key)
{
    if (!header || !key || !*key)
        return 0;
    if (strncasecmp(header, "Bearer ", 7) != 0)
        return 0;
    const char *tok = header + 7;
    size_t tl = strlen(tok), kl = strlen(key);
    /* constant time in the key's length: every byte of the key is compared */
    unsigned char diff = (unsigned char)(tl != kl);
    for (size_t i = 0; i < kl; i++)
        diff |= (unsigned char)(key[i] ^ (i < tl ? tok[i] : 0));
    return diff == 0;
}
