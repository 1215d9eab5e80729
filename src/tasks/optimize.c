/*
 * optimize.c - an optimizer run (see optimize.h): the command's flags, the
 * checks, loading each symbol's closes from the store, the sweeps (whole
 * period, --split, --walk-forward), --keep, and the rows of
 * optimization.results; and the task optimize_strategy (its body and its
 * argument check, listed in bodies.c's registry). Runs on the caller's
 * thread (the command's, or a task worker's); the sweep starts its own
 * workers (AUTONAMA_OPT_THREADS).
 */
#include "tasks/optimize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analytics/engine.h"
#include "core/config.h"
#include "core/log.h"
#include "core/market.h"
#include "tasks/tasks_internal.h"

#define COMPONENT "optimize"

static an_code parse_double(const char *flag, const char *v, double *out, an_err *err)
{
    char *end;
    double d = v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || !isfinite(d))
        return an_err_set(err, AN_ERR_INVALID, "%s: '%s' is not a finite number", flag, v ? v : "");
    *out = d;
    return AN_OK;
}

static an_code parse_count(const char *flag, const char *v, size_t *out, an_err *err)
{
    char *end;
    long long n = v ? strtoll(v, &end, 10) : -1;
    if (!v || !*v || *end || n < 0)
        return an_err_set(err, AN_ERR_INVALID, "%s: '%s' is not a whole number >= 0", flag,
                          v ? v : "");
    *out = (size_t)n;
    return AN_OK;
}

an_code an_opt_spec_from_args(int *argc, char **argv, an_opt_spec *spec, an_err *err)
{
    memset(spec, 0, sizeof *spec);
    spec->sort = "sharpe";
    spec->fill = an_fill_default();
    static const char *const flags[] = {"--strategy",     "--grid",     "--split",
                                        "--walk-forward", "--keep",     "--sort",
                                        "--fees",         "--slippage", "--max-combinations"};
    int out = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i], *val = NULL;
        int f = -1;
        for (int k = 0; k < (int)(sizeof flags / sizeof flags[0]); k++) {
            size_t l = strlen(flags[k]);
            if (strncmp(a, flags[k], l) == 0 && (a[l] == 0 || a[l] == '=')) {
                f = k;
                val = a[l] == '=' ? a + l + 1 : NULL;
                break;
            }
        }
        if (f < 0) {
            argv[out++] = argv[i];
            continue;
        }
        if (!val) {
            if (i + 1 >= *argc)
                return an_err_set(err, AN_ERR_INVALID, "%s needs a value", flags[f]);
            val = argv[++i];
        }
        an_code rc = AN_OK;
        double d = 0; /* -O3's maybe-uninitialized cannot see parse_*'s stores */
        size_t n = 0;
        switch (f) {
        case 0: spec->strategy = val; break;
        case 1: spec->grid = val; break;
        case 2:
            if ((rc = parse_double("--split", val, &d, err)) == AN_OK && !(d > 0 && d < 1))
                rc = an_err_set(err, AN_ERR_INVALID, "--split: %s is not in (0, 1)", val);
            spec->split = d;
            break;
        case 3:
            if ((rc = parse_count("--walk-forward", val, &n, err)) == AN_OK && (n < 1 || n > 100))
                rc = an_err_set(err, AN_ERR_INVALID, "--walk-forward: %s is not in [1, 100]", val);
            spec->walk_forward = (int)n;
            break;
        case 4: rc = parse_count("--keep", val, &spec->keep, err); break;
        case 5: spec->sort = val; break;
        case 6:
        case 7:
            if ((rc = parse_double(flags[f], val, &d, err)) == AN_OK && (d < 0 || d >= 1))
                rc = an_err_set(err, AN_ERR_INVALID, "%s: %s is not a fraction in [0, 1)", flags[f],
                                val);
            if (f == 6)
                spec->fill.fees = d;
            else
                spec->fill.slippage = d;
            break;
        case 8:
            if ((rc = parse_count("--max-combinations", val, &spec->max_combinations, err)) ==
                    AN_OK &&
                spec->max_combinations == 0)
                rc = an_err_set(err, AN_ERR_INVALID, "--max-combinations: must be >= 1");
            break;
        }
        if (rc != AN_OK)
            return rc;
    }
    *argc = out;
    return AN_OK;
}

an_code an_opt_spec_from_json(json_t *args, an_opt_spec *spec, an_err *err)
{
    memset(spec, 0, sizeof *spec);
    spec->sort = "sharpe";
    spec->fill = an_fill_default();
    if (!json_is_object(args))
        return an_err_set(err, AN_ERR_INVALID,
                          "optimize_strategy: the arguments must be an object");
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v)
    {
        const char **str = !strcmp(key, "strategy") ? &spec->strategy
                           : !strcmp(key, "grid")   ? &spec->grid
                           : !strcmp(key, "sort")   ? &spec->sort
                                                    : NULL;
        if (str) {
            if (!json_is_string(v))
                return an_err_set(err, AN_ERR_INVALID, "optimize_strategy: %s must be a string",
                                  key);
            *str = json_string_value(v);
        } else if (!strcmp(key, "split") || !strcmp(key, "fees") || !strcmp(key, "slippage")) {
            double d = json_number_value(v);
            if (!json_is_number(v) || !isfinite(d))
                return an_err_set(err, AN_ERR_INVALID, "optimize_strategy: %s must be a number",
                                  key);
            if (!strcmp(key, "split") && !(d > 0 && d < 1))
                return an_err_set(err, AN_ERR_INVALID,
                                  "optimize_strategy: split %g is not in (0, 1)", d);
            if (strcmp(key, "split") && (d < 0 || d >= 1))
                return an_err_set(err, AN_ERR_INVALID,
                                  "optimize_strategy: %s %g is not a fraction in [0, 1)", key, d);
            *(!strcmp(key, "split")  ? &spec->split
              : !strcmp(key, "fees") ? &spec->fill.fees
                                     : &spec->fill.slippage) = d;
        } else if (!strcmp(key, "walk_forward") || !strcmp(key, "keep") ||
                   !strcmp(key, "max_combinations")) {
            json_int_t n = json_integer_value(v);
            if (!json_is_integer(v) || n < 0 || (!strcmp(key, "walk_forward") && n > 100) ||
                (!strcmp(key, "keep") && n > AN_OPT_KEEP_MAX) ||
                (!strcmp(key, "max_combinations") && (n < 1 || n > AN_OPT_COMBINATIONS_MAX)))
                return an_err_set(err, AN_ERR_INVALID,
                                  "optimize_strategy: %s must be a whole number in range", key);
            if (!strcmp(key, "walk_forward"))
                spec->walk_forward = (int)n;
            else if (!strcmp(key, "keep"))
                spec->keep = (size_t)n;
            else
                spec->max_combinations = (size_t)n;
        } else if (strcmp(key, "symbols") && strcmp(key, "timeframe") && strcmp(key, "since") &&
                   strcmp(key, "until")) {
            return an_err_set(err, AN_ERR_INVALID, "optimize_strategy: unknown argument '%.40s'",
                              key);
        }
    }
    return AN_OK;
}

an_code an_opt_spec_check(const an_opt_spec *spec, an_grid *g, an_err *err)
{
    memset(g, 0, sizeof *g);
    if (!spec->strategy)
        return an_err_set(err, AN_ERR_INVALID, "optimize needs --strategy (one of: %s)",
                          an_strategy_names());
    if (!spec->grid)
        return an_err_set(err, AN_ERR_INVALID, "optimize needs --grid name=start:stop:step,...");
    if (spec->split > 0 && spec->walk_forward > 0)
        return an_err_set(err, AN_ERR_INVALID, "--split and --walk-forward exclude each other");
    if (an_metric_index(spec->sort) < 0)
        return an_err_set(err, AN_ERR_INVALID,
                          "--sort: unknown metric '%s' (one of: total_return, annual_return, "
                          "sharpe, sortino, max_drawdown, trades, win_rate, exposure, "
                          "profit_factor, final_value)",
                          spec->sort);
    if (!(spec->fill.fees >= 0) || !(spec->fill.slippage >= 0))
        return an_err_set(err, AN_ERR_INVALID, "--fees and --slippage must be >= 0");
    return an_grid_parse(spec->strategy, spec->grid, spec->max_combinations, g, err);
}

static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *metrics_json(const an_metrics *m)
{
    json_t *o = json_object();
    for (int k = 0; k < AN_METRIC_COUNT; k++)
        json_object_set_new(o, an_metric_names[k],
                            k == 5 ? json_integer((json_int_t)m->trades)
                                   : num(an_metric_get(m, k)));
    return o;
}

static json_t *params_json(const an_grid *g, size_t idx)
{
    double p[AN_STRAT_MAX_PARAMS];
    an_grid_combo(g, idx, p);
    json_t *o = json_object();
    for (int i = 0; i < g->strategy->n_params; i++)
        json_object_set_new(o, g->strategy->params[i].name,
                            g->strategy->params[i].integer ? json_integer((json_int_t)p[i])
                                                           : json_real(p[i]));
    return o;
}

typedef struct run_ctx {
    const char *run_id, *symbol, *strategy, *timeframe;
    json_t *rows;
} run_ctx;

static void add_row(run_ctx *rc, const an_grid *g, size_t idx, const an_metrics *m,
                    int64_t start_ms, int64_t end_ms, const char *sample)
{
    json_t *r = json_object();
    json_object_set_new(r, "run_id", json_string(rc->run_id));
    json_object_set_new(r, "symbol", json_string(rc->symbol));
    json_object_set_new(r, "strategy", json_string(rc->strategy));
    json_object_set_new(r, "timeframe", json_string(rc->timeframe));
    json_object_set_new(r, "parameters", params_json(g, idx));
    json_object_set_new(r, "metrics", metrics_json(m));
    json_object_set_new(r, "period_start", json_integer(start_ms));
    json_object_set_new(r, "period_end", json_integer(end_ms));
    json_object_set_new(r, "sample", json_string(sample));
    json_array_append_new(rc->rows, r);
}

typedef struct sorter {
    const an_metrics *m;
    const unsigned char *skipped;
    int key;
} sorter;

/* The order of combinations by the sort metric, skipped ones out: *n kept. */
static size_t *rank(const an_grid *g, const an_metrics *m, const unsigned char *skipped, int key,
                    size_t *n)
{
    size_t *ord = malloc((g->total ? g->total : 1) * sizeof *ord);
    if (!ord)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < g->total; i++)
        if (!skipped[i])
            ord[k++] = i;
    /* insertion into a sorted prefix would be O(n^2): a merge sort */
    size_t *tmp = malloc((k ? k : 1) * sizeof *tmp);
    if (!tmp) {
        free(ord);
        return NULL;
    }
    for (size_t w = 1; w < k; w *= 2) {
        for (size_t lo = 0; lo < k; lo += 2 * w) {
            size_t mid = lo + w < k ? lo + w : k, hi = lo + 2 * w < k ? lo + 2 * w : k;
            size_t a = lo, b = mid, o = lo;
            while (a < mid && b < hi)
                tmp[o++] = an_metric_better(&m[ord[b]], &m[ord[a]], key) ? ord[b++] : ord[a++];
            while (a < mid)
                tmp[o++] = ord[a++];
            while (b < hi)
                tmp[o++] = ord[b++];
        }
        memcpy(ord, tmp, k * sizeof *ord);
    }
    free(tmp);
    *n = k;
    return ord;
}

typedef struct prog {
    an_opt_progress fn;
    void *ctx;
    const char *symbol;
} prog;

static void on_progress(void *ctx, size_t done, size_t total)
{
    prog *p = ctx;
    if (p->fn)
        p->fn(p->ctx, p->symbol, done, total);
}

typedef struct loaded {
    char symbol[AN_SYMBOL_MAX];
    double *close;
    int64_t *ts;
    size_t n;
    const char *source; /* "ohlc_data", "ohlc_1h" or "ohlc_1d" */
    char load_path[12]; /* "embedded", "direct" or "copy" (engine.h) */
} loaded;

/* Fold bars[3]'s rows (training bars [bars[0], bars[1]), test bars
 * [bars[1], bars[2])): its in-sample rows (the best keep by ord), the chosen
 * combination's out-of-sample row, and its entry in the summary's folds. */
static void fold_rows(run_ctx *rc, const an_grid *g, const loaded *ld, int64_t tf_ms,
                      const size_t bars[4], const size_t *ord, size_t keep, const an_metrics *m,
                      const an_metrics *oos, json_t *fj)
{
    size_t tr0 = bars[0], tr1 = bars[1], te1 = bars[2], k = bars[3];
    char sample[24];
    snprintf(sample, sizeof sample, "fold-%zu-in", k);
    for (size_t i = 0; i < keep; i++)
        add_row(rc, g, ord[i], &m[ord[i]], ld->ts[tr0], ld->ts[tr1 - 1] + tf_ms, sample);
    snprintf(sample, sizeof sample, "fold-%zu", k);
    add_row(rc, g, ord[0], oos, ld->ts[tr1], ld->ts[te1 - 1] + tf_ms, sample);
    json_t *f = json_object();
    json_object_set_new(f, "fold", json_integer((json_int_t)k));
    json_object_set_new(f, "train_start", json_integer(ld->ts[tr0]));
    json_object_set_new(f, "train_end", json_integer(ld->ts[tr1 - 1] + tf_ms));
    json_object_set_new(f, "test_start", json_integer(ld->ts[tr1]));
    json_object_set_new(f, "test_end", json_integer(ld->ts[te1 - 1] + tf_ms));
    json_object_set_new(f, "parameters", params_json(g, ord[0]));
    json_object_set_new(f, "in_sample", metrics_json(&m[ord[0]]));
    json_object_set_new(f, "out_of_sample", metrics_json(oos));
    json_array_append_new(fj, f);
}

/* One symbol's sweeps into rc->rows; its summary into summary. */
static an_code sweep_symbol(const an_opt_spec *spec, const an_grid *g, const loaded *ld, double bpy,
                            int64_t tf_ms, run_ctx *rc, prog *pg, json_t *summary, an_err *err)
{
    an_sweep *sw = NULL;
    an_metrics *m = malloc(g->total * sizeof *m), *m2 = NULL;
    unsigned char *skipped = malloc(g->total ? g->total : 1);
    size_t *ord = NULL, nord = 0;
    int key = an_metric_index(spec->sort);
    an_code r = AN_OK;
    if (!m || !skipped) {
        r = an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
        goto out;
    }
    if ((r = an_sweep_create(g, ld->close, ld->n, bpy, &sw, err)) != AN_OK)
        goto out;
    size_t n = ld->n;
#define T_START(i) (ld->ts[i])
#define T_END(i) (ld->ts[(i)-1] + tf_ms)
    if (spec->walk_forward > 0) {
        size_t folds = (size_t)spec->walk_forward, len = n / (folds + 1);
        json_t *fj = json_array();
        for (size_t k = 1; k <= folds && r == AN_OK; k++) {
            size_t tr0 = (k - 1) * len, tr1 = k * len, te1 = k == folds ? n : (k + 1) * len;
            if ((r = an_sweep_run(sw, tr0, tr1, &spec->fill, 0, on_progress, pg, m, skipped,
                                  err)) != AN_OK)
                break;
            free(ord);
            ord = rank(g, m, skipped, key, &nord);
            if (!ord || nord == 0) {
                r = ord ? an_err_set(err, AN_ERR_INVALID, "optimize: every combination is skipped")
                        : an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
                break;
            }
            an_metrics oos;
            if ((r = an_sweep_backtest(sw, ord[0], tr1, te1, &spec->fill, &oos, NULL, NULL, err)) !=
                AN_OK)
                break;
            size_t keep = spec->keep && spec->keep < nord ? spec->keep : nord;
            size_t bars[4] = {tr0, tr1, te1, k};
            fold_rows(rc, g, ld, tf_ms, bars, ord, keep, m, &oos, fj);
        }
        json_object_set_new(summary, "folds", fj);
        goto out;
    }
    size_t cut = spec->split > 0 ? (size_t)floor(spec->split * (double)n) : n;
    if (spec->split > 0 && (cut < 2 || n - cut < 2)) {
        r = an_err_set(err, AN_ERR_INVALID, "--split %g leaves an empty sample of %zu candles",
                       spec->split, n);
        goto out;
    }
    if ((r = an_sweep_run(sw, 0, cut, &spec->fill, 0, on_progress, pg, m, skipped, err)) != AN_OK)
        goto out;
    if (spec->split > 0) {
        if (!(m2 = malloc(g->total * sizeof *m2))) {
            r = an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
            goto out;
        }
        if ((r = an_sweep_run(sw, cut, n, &spec->fill, 0, on_progress, pg, m2, skipped, err)) !=
            AN_OK)
            goto out;
    }
    if (!(ord = rank(g, m, skipped, key, &nord))) {
        r = an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
        goto out;
    }
    size_t keep = spec->keep && spec->keep < nord ? spec->keep : nord;
    for (size_t i = 0; i < keep; i++) {
        add_row(rc, g, ord[i], &m[ord[i]], T_START(0), T_END(cut), "in");
        if (m2)
            add_row(rc, g, ord[i], &m2[ord[i]], T_START(cut), T_END(n), "out");
    }
    json_object_set_new(summary, "stored", json_integer((json_int_t)(keep * (m2 ? 2 : 1))));
    if (nord > 0) {
        json_t *best = json_object();
        json_object_set_new(best, "parameters", params_json(g, ord[0]));
        json_object_set_new(best, "metrics", metrics_json(&m[ord[0]]));
        if (m2)
            json_object_set_new(best, "out_of_sample", metrics_json(&m2[ord[0]]));
        json_object_set_new(summary, "best", best);
    }
out:
    free(ord);
    free(m);
    free(m2);
    free(skipped);
    an_sweep_destroy(sw);
    return r;
}

an_code an_opt_load_candles(an_store *s, const char *symbol, const char *timeframe,
                            int64_t since_ms, int64_t until_ms, an_candles *cs, const char **source,
                            an_err *err)
{
    an_query qq = an_query_all();
    qq.start_ms = since_ms;
    qq.end_ms = until_ms;
    *source = "ohlc_data";
    an_code r = an_store_get_ohlc(s, symbol, timeframe, &qq, cs, err);
    if (r == AN_OK && cs->n == 0 && (!strcmp(timeframe, "1h") || !strcmp(timeframe, "1d"))) {
        /* no candles stored in that timeframe: the rollup of the 1m ones */
        *source = !strcmp(timeframe, "1h") ? "ohlc_1h" : "ohlc_1d";
        r = an_store_get_rollup(s, symbol, timeframe, &qq, cs, err);
    }
    return r;
}

/* One symbol's candles of the period into L (closes and times), read
 * through the analytics engine's load paths (as `autonama indicators` reads
 * them: embedded on DuckDB, direct then COPY on PostgreSQL/TimescaleDB, the
 * 1h/1d rollup when that timeframe is not stored); refused when there are
 * fewer than need. */
static an_code load_symbol(an_store *s, loaded *L, const char *timeframe, int64_t since_ms,
                           int64_t until_ms, size_t need, an_err *err)
{
    an_engine_result how;
    an_code r = an_engine_load_closes(s, L->symbol, timeframe, AN_LOAD_AUTO, since_ms, until_ms,
                                      &L->ts, &L->close, &L->n, &how, err);
    if (r != AN_OK)
        return r;
    L->source = !strcmp(how.source, "ohlc_1h")   ? "ohlc_1h"
                : !strcmp(how.source, "ohlc_1d") ? "ohlc_1d"
                                                 : "ohlc_data";
    snprintf(L->load_path, sizeof L->load_path, "%s", how.load_path);
    if (L->n < need)
        return an_err_set(err, AN_ERR_INVALID,
                          "optimize: %s %s has %zu candles in the period: too few for the "
                          "slowest window of the grid (needs %zu)",
                          L->symbol, timeframe, L->n, need);
    return AN_OK;
}

/* The run's spec as the result reports it. */
static json_t *spec_json(const an_opt_spec *spec, const an_grid *g, const char *timeframe)
{
    json_t *j = json_object();
    json_object_set_new(j, "strategy", json_string(g->strategy->name));
    json_object_set_new(j, "grid", json_string(g->text));
    json_object_set_new(j, "timeframe", json_string(timeframe));
    json_object_set_new(j, "sort", json_string(spec->sort));
    json_object_set_new(j, "fees", json_real(spec->fill.fees));
    json_object_set_new(j, "slippage", json_real(spec->fill.slippage));
    if (spec->split > 0)
        json_object_set_new(j, "split", json_real(spec->split));
    if (spec->walk_forward > 0)
        json_object_set_new(j, "walk_forward", json_integer(spec->walk_forward));
    if (spec->keep)
        json_object_set_new(j, "keep", json_integer((json_int_t)spec->keep));
    return j;
}

/* The run (optimization.runs) and its rows, in one statement. */
static an_code store_run(an_store *s, const char *run_id, const an_opt_spec *spec, const an_grid *g,
                         const char *timeframe, json_t *rows, an_err *err)
{
    json_t *run = json_object();
    json_object_set_new(run, "run_id", json_string(run_id));
    json_object_set_new(run, "strategy", json_string(g->strategy->name));
    json_object_set_new(run, "timeframe", json_string(timeframe));
    json_object_set_new(run, "grid", json_string(g->text));
    json_object_set_new(run, "fees", json_real(spec->fill.fees));
    json_object_set_new(run, "slippage", json_real(spec->fill.slippage));
    json_object_set_new(run, "spec", spec_json(spec, g, timeframe));
    char *rt = json_dumps(run, JSON_COMPACT | JSON_REAL_PRECISION(17));
    char *text = json_dumps(rows, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(run);
    an_code r = text && rt ? an_store_put_opt_results(s, rt, text, err)
                           : an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
    free(rt);
    free(text);
    return r;
}

an_code an_optimize_run(an_store *s, const an_opt_spec *spec, const char *symbols,
                        const char *timeframe, int64_t since_ms, int64_t until_ms,
                        an_opt_progress progress, void *ctx, json_t **result, an_err *err)
{
    *result = NULL;
    an_grid g;
    an_code r = an_opt_spec_check(spec, &g, err);
    if (r != AN_OK)
        return r;
    int monthly = 0;
    int64_t tf_ms = an_timeframe_valid(timeframe) ? an_timeframe_ms(timeframe, &monthly) : 0;
    if (tf_ms <= 0 || monthly) {
        an_grid_free(&g);
        return an_err_set(err, AN_ERR_INVALID, "--timeframe: '%s' is not a timeframe to optimize",
                          timeframe ? timeframe : "");
    }
    double bpy = 365.0 * 86400000.0 / (double)tf_ms;
    loaded *ld = NULL;
    size_t nsym = 0;
    json_t *rows = json_array(), *per = json_array();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* every symbol is loaded and checked before anything runs or is stored */
    const char *q = symbols && *symbols ? symbols : "";
    size_t cap = 1;
    for (const char *c = q; *c; c++)
        cap += *c == ',';
    ld = calloc(cap, sizeof *ld);
    if (!ld) {
        r = an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
        goto out;
    }
    size_t warm = an_grid_warmup(&g);
    while (*q && r == AN_OK) {
        const char *c = strchr(q, ',');
        size_t len = c ? (size_t)(c - q) : strlen(q);
        loaded *L = &ld[nsym++];
        snprintf(L->symbol, sizeof L->symbol, "%.*s", (int)(len < AN_SYMBOL_MAX ? len : 0), q);
        q = c ? c + 1 : q + len;
        size_t need = warm + 2;
        if (spec->walk_forward > 0)
            need *= (size_t)spec->walk_forward + 1;
        r = load_symbol(s, L, timeframe, since_ms, until_ms, need, err);
    }
    if (r == AN_OK && nsym == 0)
        r = an_err_set(err, AN_ERR_INVALID, "optimize needs --symbols");
    if (r != AN_OK)
        goto out;
    char run_id[64];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    snprintf(run_id, sizeof run_id, "opt-%lld-%ld-%d", (long long)now.tv_sec,
             (long)(now.tv_nsec / 1000), (int)getpid());
    for (size_t i = 0; i < nsym && r == AN_OK; i++) {
        run_ctx rc = {run_id, ld[i].symbol, g.strategy->name, timeframe, rows};
        prog pg = {progress, ctx, ld[i].symbol};
        json_t *sum = json_object();
        json_object_set_new(sum, "symbol", json_string(ld[i].symbol));
        json_object_set_new(sum, "candles", json_integer((json_int_t)ld[i].n));
        json_object_set_new(sum, "source", json_string(ld[i].source));
        json_object_set_new(sum, "load_path", json_string(ld[i].load_path));
        r = sweep_symbol(spec, &g, &ld[i], bpy, tf_ms, &rc, &pg, sum, err);
        json_array_append_new(per, sum);
    }
    size_t nrows = json_array_size(rows);
    if (r == AN_OK && nrows > 0)
        r = store_run(s, run_id, spec, &g, timeframe, rows, err);
    if (r != AN_OK)
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    json_t *spec_j = spec_json(spec, &g, timeframe);
    *result = json_object();
    json_object_set_new(*result, "status", json_string("success"));
    json_object_set_new(*result, "run_id", json_string(run_id));
    json_object_set_new(*result, "spec", spec_j);
    json_object_set_new(*result, "combinations", json_integer((json_int_t)g.total));
    json_object_set_new(*result, "skipped", json_integer((json_int_t)g.skipped));
    json_object_set_new(*result, "rows_stored", json_integer((json_int_t)nrows));
    json_object_set_new(*result, "symbols", per);
    json_object_set_new(*result, "seconds", json_real(secs));
    per = NULL;
    AN_INFO(COMPONENT, "msg=\"run stored\" run_id=%s strategy=%s combinations=%zu rows=%zu", run_id,
            g.strategy->name, g.total, nrows);
out:
    for (size_t i = 0; ld && i < nsym; i++) {
        free(ld[i].close);
        free(ld[i].ts);
    }
    free(ld);
    json_decref(rows);
    json_decref(per);
    an_grid_free(&g);
    return r;
}

/* ---- the task optimize_strategy --------------------------------------------- */

an_code an_task_optimize_check(json_t *args, an_err *err)
{
    an_opt_spec spec;
    an_grid g;
    json_t *sv = json_object_get(args, "symbols"), *tf = json_object_get(args, "timeframe");
    const char *since = json_string_value(json_object_get(args, "since")),
               *until = json_string_value(json_object_get(args, "until"));
    an_code rc;
    if ((rc = an_opt_spec_from_json(args, &spec, err)) != AN_OK ||
        (rc = an_opt_spec_check(&spec, &g, err)) != AN_OK)
        return rc;
    an_grid_free(&g);
    if ((sv && !json_is_string(sv)) || (tf && !json_is_string(tf)))
        return an_err_set(err, AN_ERR_INVALID,
                          "optimize_strategy: symbols (\"A,B\") and timeframe must be strings");
    if ((json_object_get(args, "since") && !since) || (json_object_get(args, "until") && !until))
        return an_err_set(err, AN_ERR_INVALID, "optimize_strategy: since and until are strings");
    static const char *const checked[] = {"symbols", "timeframe", "since", "until"};
    for (size_t i = 0; i < sizeof checked / sizeof checked[0]; i++) {
        json_t *v = json_object_get(args, checked[i]);
        if (v && (rc = an_task_check_arg(checked[i], v, err)) != AN_OK)
            return an_err_prefix(err, "optimize_strategy");
    }
    int monthly = 0;
    if (tf && (an_timeframe_ms(json_string_value(tf), &monthly), monthly))
        return an_err_set(err, AN_ERR_INVALID,
                          "optimize_strategy: timeframe '1M' is not a timeframe to optimize");
    return AN_OK;
}

typedef struct opt_task {
    an_run_ctx *rc;
    an_opt_spec spec;
    const char *symbols, *tf;
    int64_t since, until;
    const char *approach;
    size_t last;
    int on_fb;
    json_t *result;
} opt_task;

static void task_progress(void *ctx, const char *symbol, size_t done, size_t total)
{
    opt_task *ot = ctx;
    if (ot->on_fb) /* the fallback's progress is the hybrid's (before fb_mu) */
        return;
    if (done != total && done - ot->last < total / 10 + 1)
        return; /* the row is written at most about ten times per symbol */
    ot->last = done == total ? 0 : done;
    char status[96];
    snprintf(status, sizeof status, "Optimizing %s", symbol);
    an_tasks_progress(ot->rc, ot->approach, status, (int64_t)done, (int64_t)total);
}

static an_code optimize_cb(void *ctx, an_store *s, int on_fb, const unsigned char *todo,
                           an_code *codes, an_err *err)
{
    opt_task *ot = ctx;
    (void)todo;
    if (!s)
        return err->code;
    ot->on_fb = on_fb;
    ot->approach = on_fb ? "duckdb_fallback" : an_tasks_approach(s);
    ot->last = 0;
    json_decref(ot->result);
    ot->result = NULL;
    codes[0] = an_optimize_run(s, &ot->spec, ot->symbols, ot->tf, ot->since, ot->until,
                               task_progress, ot, &ot->result, err);
    return AN_OK;
}

an_code an_task_optimize(an_run_ctx *rc, json_t *args, json_t **out, an_err *err)
{
    an_tasks *t = rc->t;
    opt_task ot = {.rc = rc, .since = INT64_MIN, .until = INT64_MAX};
    an_code code = an_task_optimize_check(args, err);
    if (code != AN_OK)
        return code;
    an_opt_spec_from_json(args, &ot.spec, err);
    const char *since = json_string_value(json_object_get(args, "since")),
               *until = json_string_value(json_object_get(args, "until"));
    if (since)
        an_time_parse(since, &ot.since, err);
    if (until)
        an_time_parse(until, &ot.until, err);
    const char *sv = json_string_value(json_object_get(args, "symbols"));
    const char *tf = json_string_value(json_object_get(args, "timeframe"));
    ot.symbols = sv ? sv : an_config_get(t->cfg, AN_CFG_SYMBOLS);
    ot.tf = tf ? tf : an_config_get(t->cfg, AN_CFG_TIMEFRAME);
    an_code codes[1] = {AN_OK};
    unsigned char todo[1] = {0};
    an_hybrid h = {.what = "task=optimize_strategy",
                   .rc = rc,
                   .fb_status = "Optimizing on the DuckDB fallback",
                   .n = 1,
                   .codes = codes,
                   .todo = todo};
    if ((code = an_tasks_hybrid(t, &h, optimize_cb, &ot, err)) != AN_OK)
        goto out;
    if (codes[0] != AN_OK) {
        /* the run's own error (bad input, too few candles): err has it */
        code = codes[0];
        if (err->code == AN_OK)
            code = an_err_set(err, codes[0], "optimize_strategy failed");
        goto out;
    }
    json_object_set_new(ot.result, "approach", json_string(h.approach));
    *out = ot.result;
    ot.result = NULL;
out:
    json_decref(ot.result);
    return code;
}
