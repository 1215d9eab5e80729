/*
 * optimize_grid.c - the optimizer's grids (parsing "name=start:stop:step" or
 * "name=a|b|c" per parameter, the combinations' order), the metric names
 * and their ranking, and the default fill (see optimize.h). Pure functions:
 * any thread.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/optimize.h"

/* ---- grids ---------------------------------------------------------- */

void an_grid_free(an_grid *g)
{
    if (!g)
        return;
    for (int i = 0; i < AN_STRAT_MAX_PARAMS; i++) {
        free(g->values[i]);
        g->values[i] = NULL;
    }
}

static int parse_number(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    char *end;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v) || isspace((unsigned char)buf[0]))
        return -1;
    *out = v;
    return 0;
}

static an_code check_value(const an_strat_param *p, double v, an_err *err)
{
    if (p->integer && v != floor(v))
        return an_err_set(err, AN_ERR_INVALID, "grid: %s must be a whole number, got %g", p->name,
                          v);
    if (v < p->min || v > p->max)
        return an_err_set(err, AN_ERR_INVALID, "grid: %s must be in [%g, %g], got %g", p->name,
                          p->min, p->max, v);
    return AN_OK;
}

/* Parses one "start:stop:step" or "a|b|c" into a malloc'd list. */
static an_code parse_values(const an_strat_param *p, const char *s, size_t len, double **out,
                            size_t *n, an_err *err)
{
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += s[i] == '|';
    if (memchr(s, '|', len) == NULL && memchr(s, ':', len) != NULL) {
        double a[3];
        const char *q = s, *end = s + len;
        for (int k = 0; k < 3; k++) {
            const char *c = k < 2 ? memchr(q, ':', (size_t)(end - q)) : end;
            if (!c || parse_number(q, (size_t)(c - q), &a[k]) != 0)
                return an_err_set(err, AN_ERR_INVALID,
                                  "grid: %s=%.*s is not start:stop:step (three numbers)", p->name,
                                  (int)len, s);
            q = c + 1;
        }
        if (q <= end)
            return an_err_set(err, AN_ERR_INVALID,
                              "grid: %s=%.*s is not start:stop:step (three numbers)", p->name,
                              (int)len, s);
        if (!(a[2] > 0))
            return an_err_set(err, AN_ERR_INVALID, "grid: %s=%.*s: the step must be > 0", p->name,
                              (int)len, s);
        if (a[0] > a[1])
            return an_err_set(err, AN_ERR_INVALID,
                              "grid: %s=%.*s is an inverted range (start > stop)", p->name,
                              (int)len, s);
        double steps = floor((a[1] - a[0]) / a[2] + 1e-9);
        if (steps >= (double)AN_GRID_DEFAULT_MAX * 100)
            return an_err_set(err, AN_ERR_INVALID, "grid: %s=%.*s has too many values", p->name,
                              (int)len, s);
        cap = (size_t)steps + 1;
        double *v = malloc(cap * sizeof *v);
        if (!v)
            return an_err_set(err, AN_ERR_NOMEM, "grid: out of memory");
        for (size_t i = 0; i < cap; i++) {
            /* round away the step's binary error (0.1 steps) */
            double x = a[0] + (double)i * a[2];
            v[i] = p->integer ? round(x) : round(x * 1e9) / 1e9;
            an_code rc = check_value(p, v[i], err);
            if (rc != AN_OK) {
                free(v);
                return rc;
            }
        }
        *out = v;
        *n = cap;
        return AN_OK;
    }
    double *v = malloc(cap * sizeof *v);
    if (!v)
        return an_err_set(err, AN_ERR_NOMEM, "grid: out of memory");
    const char *q = s, *end = s + len;
    for (size_t i = 0; i < cap; i++) {
        const char *c = memchr(q, '|', (size_t)(end - q));
        if (!c)
            c = end;
        an_code rc = AN_OK;
        if (parse_number(q, (size_t)(c - q), &v[i]) != 0)
            rc = an_err_set(err, AN_ERR_INVALID, "grid: %s=%.*s: '%.*s' is not a number", p->name,
                            (int)len, s, (int)(c - q), q);
        else
            rc = check_value(p, v[i], err);
        if (rc != AN_OK) {
            free(v);
            return rc;
        }
        q = c + 1;
    }
    *out = v;
    *n = cap;
    return AN_OK;
}

an_code an_grid_parse(const char *strategy, const char *text, size_t max_combinations, an_grid *out,
                      an_err *err)
{
    memset(out, 0, sizeof *out);
    const an_strategy *st = an_strategy_find(strategy);
    if (!st)
        return an_err_set(err, AN_ERR_INVALID, "unknown strategy '%s' (known: %s)",
                          strategy ? strategy : "", an_strategy_names());
    out->strategy = st;
    if (!text || !*text)
        return an_err_set(err, AN_ERR_INVALID, "--grid is empty: give %s its parameters", st->name);
    const char *q = text;
    an_code rc = AN_OK;
    while (rc == AN_OK && *q) {
        const char *c = strchr(q, ',');
        size_t len = c ? (size_t)(c - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        if (!eq) {
            rc = an_err_set(err, AN_ERR_INVALID, "grid: '%.*s' is not name=values", (int)len, q);
            break;
        }
        char name[32];
        size_t nl = (size_t)(eq - q);
        snprintf(name, sizeof name, "%.*s", (int)(nl < sizeof name ? nl : sizeof name - 1), q);
        int k = an_strategy_param_index(st, name);
        if (k < 0 || nl >= sizeof name) {
            char known[128] = "";
            for (int i = 0; i < st->n_params; i++)
                snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                         st->params[i].name);
            rc = an_err_set(err, AN_ERR_INVALID, "grid: %s has no parameter '%.*s' (it has: %s)",
                            st->name, (int)nl, q, known);
            break;
        }
        if (out->values[k]) {
            rc = an_err_set(err, AN_ERR_INVALID, "grid: parameter %s given twice", name);
            break;
        }
        rc = parse_values(&st->params[k], eq + 1, len - nl - 1, &out->values[k], &out->count[k],
                          err);
        q = c ? c + 1 : q + len;
        if (c && !*q && rc == AN_OK)
            rc = an_err_set(err, AN_ERR_INVALID, "grid: trailing comma");
    }
    for (int i = 0; rc == AN_OK && i < st->n_params; i++)
        if (!out->values[i])
            rc = an_err_set(err, AN_ERR_INVALID, "grid: parameter %s of %s is missing",
                            st->params[i].name, st->name);
    if (rc != AN_OK) {
        an_grid_free(out);
        return rc;
    }
    size_t limit = max_combinations ? max_combinations : AN_GRID_DEFAULT_MAX;
    double total = 1;
    for (int i = 0; i < st->n_params; i++)
        total *= (double)out->count[i];
    if (total > (double)limit) {
        an_grid_free(out);
        return an_err_set(
            err, AN_ERR_INVALID, "grid: %.0f combinations is over the limit of %zu%s", total, limit,
            max_combinations ? " (--max-combinations)" : " (raise it with --max-combinations)");
    }
    out->total = (size_t)total;
    double p[AN_STRAT_MAX_PARAMS];
    for (size_t i = 0; i < out->total; i++) {
        an_grid_combo(out, i, p);
        out->skipped += (size_t)an_strategy_skip(st, p);
    }
    size_t off = 0;
    for (int i = 0; i < st->n_params; i++) {
        off += (size_t)snprintf(out->text + off, sizeof out->text - off, "%s%s=", i ? "," : "",
                                st->params[i].name);
        for (size_t j = 0; j < out->count[i] && off < sizeof out->text; j++)
            off += (size_t)snprintf(out->text + off, sizeof out->text - off, "%s%.10g",
                                    j ? "|" : "", out->values[i][j]);
        if (off >= sizeof out->text) {
            snprintf(out->text, sizeof out->text, "%s", text); /* too long: as given */
            break;
        }
    }
    return AN_OK;
}

void an_grid_combo(const an_grid *g, size_t idx, double *params)
{
    for (int i = g->strategy->n_params - 1; i >= 0; i--) {
        params[i] = g->values[i][idx % g->count[i]];
        idx /= g->count[i];
    }
}

size_t an_grid_warmup(const an_grid *g)
{
    /* every warm-up grows with each window: the largest value of each */
    double p[AN_STRAT_MAX_PARAMS] = {0};
    for (int i = 0; i < g->strategy->n_params; i++)
        for (size_t j = 0; j < g->count[i]; j++)
            if (g->strategy->params[i].integer)
                p[i] = fmax(p[i], g->values[i][j]);
            else
                p[i] = g->values[i][0];
    return an_strategy_warmup(g->strategy, p);
}

/* ---- metrics -------------------------------------------------------- */

const char *const an_metric_names[AN_METRIC_COUNT] = {
    "total_return", "annual_return", "sharpe",   "sortino",       "max_drawdown",
    "trades",       "win_rate",      "exposure", "profit_factor", "final_value"};

double an_metric_get(const an_metrics *m, int k)
{
    switch (k) {
    case 0: return m->total_return;
    case 1: return m->annual_return;
    case 2: return m->sharpe;
    case 3: return m->sortino;
    case 4: return m->max_drawdown;
    case 5: return (double)m->trades;
    case 6: return m->win_rate;
    case 7: return m->exposure;
    case 8: return m->profit_factor;
    case 9: return m->final_value;
    }
    return NAN;
}

int an_metric_index(const char *name)
{
    for (int k = 0; name && k < AN_METRIC_COUNT; k++)
        if (strcmp(an_metric_names[k], name) == 0)
            return k;
    return -1;
}

int an_metric_better(const an_metrics *a, const an_metrics *b, int k)
{
    double x = an_metric_get(a, k), y = an_metric_get(b, k);
    if (isnan(x) || isnan(y))
        return !isnan(x) && isnan(y);
    return k == 4 ? x < y : x > y;
}

an_fill an_fill_default(void)
{
    an_fill f = {0.001, 0.0, 10000.0};
    return f;
}
