/*
 * optimize.c - grids, the fill model, the metrics and the threaded sweep
 * (see optimize.h).
 *
 * One combination is one pass over its bars: the entry and exit conditions
 * are turned into 64-bar bit words, their crossings are the set bits, and
 * only the bars with a signal are visited one by one. What happens between
 * an entry and an exit needs no per-bar work: the sums of the per-bar returns
 * come from prefix sums of the closes' returns, and the drawdown from a
 * sparse table over the closes (max, min, worst fall from a running peak of
 * every power-of-two range: any range in O(1)).
 * The sweep owns those arrays and one array per distinct indicator series;
 * worker threads only read them. Called from the command's thread;
 * an_sweep_run starts and joins its own workers.
 */
#include "analytics/optimize_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the sweep ------------------------------------------------------ */

static int cmp_key(const void *a, const void *b)
{
    const an_strat_series *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    for (int i = 0; i < 3; i++)
        if (x->p[i] != y->p[i])
            return x->p[i] < y->p[i] ? -1 : 1;
    return 0;
}

void an_sweep_destroy(an_sweep *sw)
{
    if (!sw)
        return;
    for (size_t i = 0; sw->ser && i < sw->n_ser; i++) {
        free(sw->ser[i].out[0]);
        free(sw->ser[i].out[1]);
    }
    free(sw->ser);
    free(sw->combo_ser);
    free(sw->ps);
    free(sw->sparse);
    free(sw);
}

/* Memory the indicator arrays may take (bytes). */
#define SERIES_BUDGET ((size_t)4 << 30)

/* The per-bar return prefix sums (mean, variance, downside) and the
 * drawdown sparse table over the closes: shared by every combination. */
static void build_tables(an_sweep *sw)
{
    const double *close = sw->close;
    size_t n = sw->n;
    sw->ps[0] = sw->ps[1] = (struct psum){0, 0, 0};
    for (size_t i = 1; i < n; i++) {
        double r = close[i] / close[i - 1] - 1;
        sw->ps[i + 1].r = sw->ps[i].r + r;
        sw->ps[i + 1].r2 = sw->ps[i].r2 + r * r;
        sw->ps[i + 1].down2 = sw->ps[i].down2 + (r < 0 ? r * r : 0);
    }
    dd_node *t = sw->sparse;
    for (size_t i = 0; i < n; i++)
        t[i] = (dd_node){close[i], close[i], 1};
    for (int k = 1; k < sw->levels; k++) {
        const dd_node *prev = t + (size_t)(k - 1) * n;
        dd_node *cur = t + (size_t)k * n;
        size_t half = (size_t)1 << (k - 1);
        for (size_t i = 0; i + 2 * half <= n; i++) {
            dd_node a = prev[i], b = prev[i + half];
            cur[i] = (dd_node){dd_max(a.mx, b.mx), dd_min(a.mn, b.mn),
                               dd_min(dd_min(a.worst, b.worst), b.mn / a.mx)};
        }
    }
}

/* One distinct indicator series of the grid, computed once, and the first
 * bar where it (and its second output) has a value. */
static an_code compute_series(series *s, const an_strat_series *key, const double *close, size_t n,
                              an_err *err)
{
    s->key = *key;
    int outs = an_strat_series_outputs(s->key.kind);
    for (int k = 0; k < outs; k++)
        if (!(s->out[k] = malloc(n * sizeof(double))))
            return an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory for the indicators");
    if (an_strat_series_compute(&s->key, close, n, s->out[0], s->out[1]) != 0)
        return an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory for the indicators");
    s->first = n;
    for (size_t j = 0; j < n; j++)
        if (!isnan(s->out[0][j]) && (outs < 2 || !isnan(s->out[1][j]))) {
            s->first = j;
            break;
        }
    return AN_OK;
}

an_code an_sweep_create(const an_grid *g, const double *close, size_t n, double bars_per_year,
                        an_sweep **out, an_err *err)
{
    *out = NULL;
    if (n < 2)
        return an_err_set(err, AN_ERR_INVALID, "optimize: %zu candles: too few to backtest", n);
    if (n >= ((size_t)1 << 31))
        return an_err_set(err, AN_ERR_INVALID, "optimize: %zu candles: over 2^31, too many", n);
    an_sweep *sw = calloc(1, sizeof *sw);
    if (!sw)
        return an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
    sw->grid = g;
    sw->close = close;
    sw->n = n;
    sw->bars_per_year = bars_per_year;
#if defined(__x86_64__)
    /* AN_OPT_SIMD=0|1 caps it (tests and benchmarks of the other paths) */
    const char *cap = getenv("AN_OPT_SIMD");
    sw->simd = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
    if (cap && *cap >= '0' && *cap < '0' + sw->simd)
        sw->simd = *cap - '0';
#endif
    an_code rc = AN_OK;
    an_strat_series *keys = NULL;
    sw->ps = malloc((n + 1) * sizeof *sw->ps);
    for (sw->levels = 1; ((size_t)1 << sw->levels) <= n; sw->levels++)
        ;
    sw->sparse = malloc((size_t)sw->levels * n * sizeof *sw->sparse);
    sw->combo_ser = malloc(2 * g->total * sizeof *sw->combo_ser);
    keys = malloc(2 * g->total * sizeof *keys);
    if (!sw->ps || !sw->sparse || !sw->combo_ser || !keys) {
        rc = an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory for %zu candles", n);
        goto out;
    }
    build_tables(sw);

    /* the distinct series of the grid */
    size_t nk = 0;
    double p[AN_STRAT_MAX_PARAMS];
    for (size_t i = 0; i < g->total; i++) {
        an_grid_combo(g, i, p);
        if (an_strategy_skip(g->strategy, p))
            continue;
        nk += (size_t)an_strategy_series(g->strategy, p, keys + nk);
    }
    qsort(keys, nk, sizeof *keys, cmp_key);
    size_t nu = 0;
    for (size_t i = 0; i < nk; i++)
        if (nu == 0 || cmp_key(&keys[nu - 1], &keys[i]) != 0)
            keys[nu++] = keys[i];
    size_t bytes = 0;
    for (size_t i = 0; i < nu; i++)
        bytes += (size_t)an_strat_series_outputs(keys[i].kind) * n * sizeof(double);
    if (bytes > SERIES_BUDGET) {
        rc = an_err_set(err, AN_ERR_INVALID,
                        "optimize: the grid needs %zu distinct indicator series (%zu MiB over "
                        "%zu candles): narrow it",
                        nu, bytes >> 20, n);
        goto out;
    }
    sw->ser = calloc(nu ? nu : 1, sizeof *sw->ser);
    if (!sw->ser) {
        rc = an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
        goto out;
    }
    sw->n_ser = nu;
    for (size_t i = 0; i < nu && rc == AN_OK; i++)
        rc = compute_series(&sw->ser[i], &keys[i], close, n, err);
    if (rc != AN_OK)
        goto out;
    for (size_t i = 0; i < g->total; i++) {
        an_grid_combo(g, i, p);
        an_strat_series k[2];
        int nks = an_strategy_skip(g->strategy, p) ? 0 : an_strategy_series(g->strategy, p, k);
        sw->combo_ser[2 * i] = sw->combo_ser[2 * i + 1] = 0;
        for (int j = 0; j < nks; j++) {
            an_strat_series *hit = bsearch(&k[j], keys, nu, sizeof *keys, cmp_key);
            sw->combo_ser[2 * i + (size_t)j] = (uint32_t)(hit - keys);
        }
        if (nks == 1)
            sw->combo_ser[2 * i + 1] = sw->combo_ser[2 * i];
    }
out:
    free(keys);
    if (rc != AN_OK) {
        an_sweep_destroy(sw);
        return rc;
    }
    *out = sw;
    return AN_OK;
}

/* The metrics of a backtest over nbars bars (formulas in the README). */
static void set_metrics(const an_sweep *sw, const an_fill *fill, size_t nbars, double final_value,
                        const an_opt_sim *t, an_metrics *m)
{
    double nb = (double)nbars;
    m->final_value = final_value;
    m->total_return = final_value / fill->init_cash - 1;
    m->annual_return = pow(final_value / fill->init_cash, sw->bars_per_year / nb) - 1;
    double mean = t->a.s1 / nb;
    double var = nb > 1 ? (t->a.s2 - t->a.s1 * t->a.s1 / nb) / (nb - 1) : 0;
    double ann = sqrt(sw->bars_per_year);
    m->sharpe = var > 0 ? mean / sqrt(var) * ann : NAN;
    double down = sqrt(t->a.sd / nb);
    m->sortino = down > 0 ? mean / down * ann : NAN;
    m->max_drawdown = 1 - t->worst;
    m->trades = t->closed;
    m->win_rate = t->closed ? (double)t->wins / (double)t->closed : NAN;
    m->profit_factor = t->loss > 0 ? t->gain / t->loss : NAN;
    m->exposure = (double)t->held / nb;
}

void an_opt_sim_finish(an_opt_sim *s, const an_sweep *sw, const an_fill *fill, size_t lo, size_t hi,
                       an_metrics *m, trade_list *trades)
{
    double final_value = s->cash;
    if (s->in_pos) {
        acc_range(&s->a, sw, s->entry + 1, hi);
        dd_node d = an_opt_dd_query(sw, s->entry, hi - 1);
        s->worst = dd_min(s->worst, dd_min(d.worst, s->size * d.mn / s->peak));
        final_value = s->size * sw->close[hi - 1];
        s->held += hi - s->entry;
        trade_push(trades, (an_trade){s->entry, SIZE_MAX, final_value - s->cash_before});
    }
    set_metrics(sw, fill, hi - lo, final_value, s, m);
}

size_t an_opt_conditions(const an_sweep *sw, size_t idx, size_t lo, an_strat_cond *ce,
                         an_strat_cond *cx)
{
    const an_grid *g = sw->grid;
    double p[AN_STRAT_MAX_PARAMS];
    an_grid_combo(g, idx, p);
    const series *s0 = &sw->ser[sw->combo_ser[2 * idx]];
    const series *s1 = &sw->ser[sw->combo_ser[2 * idx + 1]];
    double *out[2][2] = {{s0->out[0], s0->out[1]}, {s1->out[0], s1->out[1]}};
    an_strategy_conditions(g->strategy, p, sw->close, out, ce, cx);
    size_t first = s0->first > s1->first ? s0->first : s1->first;
    return first + 1 > lo ? first + 1 : lo;
}

/* One combination on [lo, hi), a word of 64 bars at a time. */
static void simulate(const an_sweep *sw, size_t idx, size_t lo, size_t hi, const an_fill *fill,
                     an_metrics *m, trade_list *trades)
{
    an_strat_cond ce, cx;
    size_t start = an_opt_conditions(sw, idx, lo, &ce, &cx);
    an_opt_sim s;
    sim_start(&s, fill);
    if (start < hi) {
        int pe = cond_at(&ce, start - 1), px = cond_at(&cx, start - 1);
        for (size_t base = start; base < hi; base += 64) {
            int len = hi - base < 64 ? (int)(hi - base) : 64;
            uint64_t be = cond_bits(&ce, base, len, sw->simd),
                     bx = cond_bits(&cx, base, len, sw->simd);
            sim_word(&s, sw, fill, base, len, be, bx, &pe, &px, trades);
        }
    }
    an_opt_sim_finish(&s, sw, fill, lo, hi, m, trades);
}

void an_opt_metrics_nan(an_metrics *m)
{
    m->total_return = m->annual_return = m->sharpe = m->sortino = m->max_drawdown = NAN;
    m->win_rate = m->profit_factor = m->exposure = m->final_value = NAN;
    m->trades = 0;
}

an_code an_sweep_backtest(an_sweep *sw, size_t idx, size_t lo, size_t hi, const an_fill *fill,
                          an_metrics *m, an_trade **trades, size_t *n_trades, an_err *err)
{
    if (idx >= sw->grid->total || lo >= hi || hi > sw->n)
        return an_err_set(err, AN_ERR_INVALID, "optimize: combination %zu or bars [%zu, %zu)", idx,
                          lo, hi);
    double p[AN_STRAT_MAX_PARAMS];
    an_grid_combo(sw->grid, idx, p);
    if (an_strategy_skip(sw->grid->strategy, p)) {
        an_opt_metrics_nan(m);
        if (trades)
            *trades = NULL, *n_trades = 0;
        return AN_OK;
    }
    trade_list t = {0};
    simulate(sw, idx, lo, hi, fill, m, trades ? &t : NULL);
    if (t.failed) {
        free(t.v);
        return an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory for the trades");
    }
    if (trades) {
        *trades = t.v;
        *n_trades = t.n;
    }
    return AN_OK;
}

void an_sweep_equity(const an_sweep *sw, const an_trade *tr, size_t nt, size_t lo, size_t hi,
                     const an_fill *fill, double *equity, double *trade_return)
{
    const double *c = sw->close;
    double cash = fill->init_cash;
    size_t k = 0;
    for (size_t i = lo; i < hi;) {
        if (k == nt || tr[k].entry != i) {
            equity[i - lo] = cash;
            i++;
            continue;
        }
        /* the same arithmetic as simulate's fills */
        double before = cash, adj = c[i] * (1 + fill->slippage);
        double size = cash / (1 + fill->fees) / adj;
        size_t end = tr[k].exit == SIZE_MAX ? hi : tr[k].exit;
        for (size_t j = i; j < end; j++)
            equity[j - lo] = size * c[j];
        if (end < hi) {
            double acq = size * (c[end] * (1 - fill->slippage));
            cash = acq - acq * fill->fees;
            equity[end - lo] = cash;
            trade_return[k] = cash / before - 1;
            i = end + 1;
        } else {
            trade_return[k] = size * c[hi - 1] / before - 1;
            i = hi;
        }
        k++;
    }
}
