/*
 * indspec.c - the indicator spec parser (see indspec.h).
 */
#include "core/indspec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/list.h"

#define MAX_NUMS 3

/* One item, split into its name and up to MAX_NUMS numbers (each with the
 * slice of text it came from, for messages). */
typedef struct item {
    const char *s;
    int len;
    char name[16];
    double num[MAX_NUMS];
    const char *num_at[MAX_NUMS];
    int num_len[MAX_NUMS];
    int got;
} item;

static an_code syntax_error(const item *it, an_err *err)
{
    return an_err_set(err, AN_ERR_INVALID,
                      "bad indicator '%.*s': expected sma:N, ema:N, rsi:N, "
                      "bbands:N[:DEV[:DEVDN]] or macd:FAST:SLOW:SIGNAL",
                      it->len > 40 ? 40 : it->len, it->s);
}

static an_code split_item(const char *s, size_t len, item *it, an_err *err)
{
    memset(it, 0, sizeof *it);
    it->s = s;
    it->len = len > 200 ? 200 : (int)len;
    char buf[128];
    if (len >= sizeof buf)
        return syntax_error(it, err);
    memcpy(buf, s, len);
    buf[len] = '\0';
    const char *colon = strchr(buf, ':');
    size_t nlen = colon ? (size_t)(colon - buf) : len;
    if (nlen >= sizeof it->name)
        return syntax_error(it, err);
    memcpy(it->name, buf, nlen);
    for (const char *p = colon; p && *p;) {
        if (*p != ':' || it->got == MAX_NUMS)
            return syntax_error(it, err);
        char *end;
        double v = strtod(p + 1, &end);
        if (end == p + 1)
            return syntax_error(it, err);
        it->num[it->got] = v;
        it->num_at[it->got] = s + (p + 1 - buf);
        it->num_len[it->got] = (int)(end - (p + 1));
        it->got++;
        p = end;
    }
    return AN_OK;
}

/* nums[k] as a period: a whole number in [min, AN_IND_PERIOD_MAX], checked
 * as a double before the conversion (NaN fails every comparison). */
static an_code period(const item *it, int k, int min, int *out, an_err *err)
{
    double v = it->num[k];
    if (!(v >= min && v <= AN_IND_PERIOD_MAX) || v != floor(v))
        return an_err_set(err, AN_ERR_INVALID,
                          "bad indicator '%.*s': period %.*s must be a whole number in [%d, %d]",
                          it->len > 40 ? 40 : it->len, it->s,
                          it->num_len[k] > 24 ? 24 : it->num_len[k], it->num_at[k], min,
                          AN_IND_PERIOD_MAX);
    *out = (int)v;
    return AN_OK;
}

static an_code deviation(const item *it, int k, double *out, an_err *err)
{
    double v = it->num[k];
    if (!(v > 0 && v < 100))
        return an_err_set(err, AN_ERR_INVALID,
                          "bad indicator '%.*s': deviation %.*s must be a number in (0, 100)",
                          it->len > 40 ? 40 : it->len, it->s,
                          it->num_len[k] > 24 ? 24 : it->num_len[k], it->num_at[k]);
    *out = v;
    return AN_OK;
}

/* Fills sp from it and writes its canonical text to buf. */
static an_code spec_of(const item *it, an_ind_spec *sp, char *buf, size_t len, an_err *err)
{
    const char *n = it->name;
    if (!strcmp(n, "sma") || !strcmp(n, "ema") || !strcmp(n, "rsi")) {
        sp->kind = n[0] == 's' ? AN_IND_SMA : n[0] == 'e' ? AN_IND_EMA : AN_IND_RSI;
        if (it->got != 1)
            return syntax_error(it, err);
        if (period(it, 0, sp->kind == AN_IND_SMA ? 1 : 2, &sp->p[0], err) != AN_OK)
            return AN_ERR_INVALID;
        snprintf(buf, len, "%s:%d", n, sp->p[0]);
    } else if (!strcmp(n, "bbands")) {
        sp->kind = AN_IND_BBANDS;
        if (it->got < 1)
            return syntax_error(it, err);
        sp->d[0] = 2.0;
        if (period(it, 0, 2, &sp->p[0], err) != AN_OK ||
            (it->got >= 2 && deviation(it, 1, &sp->d[0], err) != AN_OK))
            return AN_ERR_INVALID;
        sp->d[1] = sp->d[0];
        if (it->got == 3 && deviation(it, 2, &sp->d[1], err) != AN_OK)
            return AN_ERR_INVALID;
        snprintf(buf, len, "bbands:%d:%g:%g", sp->p[0], sp->d[0], sp->d[1]);
    } else if (!strcmp(n, "macd")) {
        sp->kind = AN_IND_MACD;
        if (it->got == 0) {
            sp->p[0] = 12, sp->p[1] = 26, sp->p[2] = 9;
        } else if (it->got != 3) {
            return syntax_error(it, err);
        }
        for (int k = 0; k < it->got; k++)
            if (period(it, k, k == 2 ? 1 : 2, &sp->p[k], err) != AN_OK)
                return AN_ERR_INVALID;
        snprintf(buf, len, "macd:%d:%d:%d", sp->p[0], sp->p[1], sp->p[2]);
    } else {
        return an_err_set(err, AN_ERR_INVALID,
                          "unknown indicator '%.*s' (sma, ema, rsi, bbands, macd)",
                          it->len > 40 ? 40 : it->len, it->s);
    }
    return AN_OK;
}

an_code an_ind_set_parse(const char *s, an_ind_set *out, an_err *err)
{
    memset(out, 0, sizeof *out);
    if (!s || !*s)
        s = AN_IND_DEFAULT;
    if (strlen(s) >= 512)
        return an_err_set(err, AN_ERR_INVALID, "indicator list too long");
    size_t tpos = 0, len;
    const char *at;
    for (const char *p = s; an_list_next(&p, &at, &len);) {
        if (out->n == AN_IND_MAX)
            return an_err_set(err, AN_ERR_INVALID, "more than %d indicators", AN_IND_MAX);
        item it;
        char one[64];
        if (split_item(at, len, &it, err) != AN_OK ||
            spec_of(&it, &out->v[out->n], one, sizeof one, err) != AN_OK)
            return AN_ERR_INVALID;
        int used =
            snprintf(out->text + tpos, sizeof out->text - tpos, "%s%s", tpos ? "," : "", one);
        if (used < 0 || tpos + (size_t)used >= sizeof out->text)
            return an_err_set(err, AN_ERR_INVALID, "indicator list too long");
        tpos += (size_t)used;
        out->n++;
    }
    if (out->n == 0)
        return an_err_set(err, AN_ERR_INVALID, "no indicators given");
    return AN_OK;
}

int an_ind_spec_outputs(const an_ind_spec *sp)
{
    return sp->kind == AN_IND_BBANDS || sp->kind == AN_IND_MACD ? 3 : 1;
}

void an_ind_spec_names(const an_ind_spec *sp, char (*names)[AN_IND_NAME_MAX])
{
    switch (sp->kind) {
    case AN_IND_SMA: snprintf(names[0], AN_IND_NAME_MAX, "sma_%d", sp->p[0]); break;
    case AN_IND_EMA: snprintf(names[0], AN_IND_NAME_MAX, "ema_%d", sp->p[0]); break;
    case AN_IND_RSI: snprintf(names[0], AN_IND_NAME_MAX, "rsi_%d", sp->p[0]); break;
    case AN_IND_BBANDS: {
        static const char *band[3] = {"upper", "middle", "lower"};
        for (int k = 0; k < 3; k++) {
            if (sp->d[0] == 2.0 && sp->d[1] == 2.0)
                snprintf(names[k], AN_IND_NAME_MAX, "bb_%s_%d", band[k], sp->p[0]);
            else
                snprintf(names[k], AN_IND_NAME_MAX, "bb_%s_%d_%g_%g", band[k], sp->p[0], sp->d[0],
                         sp->d[1]);
        }
        break;
    }
    case AN_IND_MACD: {
        static const char *part[3] = {"macd", "macd_signal", "macd_hist"};
        for (int k = 0; k < 3; k++) {
            if (sp->p[0] == 12 && sp->p[1] == 26 && sp->p[2] == 9)
                snprintf(names[k], AN_IND_NAME_MAX, "%s", part[k]);
            else
                snprintf(names[k], AN_IND_NAME_MAX, "%s_%d_%d_%d", part[k], sp->p[0], sp->p[1],
                         sp->p[2]);
        }
        break;
    }
    }
}
