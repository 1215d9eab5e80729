/*
 * optimize.c - grids, the fill model, the metrics and the threaded sweep
 * (see optimize.h).
 *
 * One combination is one pass over its bars: the entry and exit conditions
 * are turned into 64-bar bit words, their crossings are the set bits, and
 * only the bars with a signal are visited one by one. What happens between
 * an entry and an exit needs no per-bar work: the sums of the per-bar returns
 * come from prefix sums of the closes' returns, and the drawdown from a
 * segment tree over the closes (max, min, worst fall from a running peak).
 * The sweep owns those arrays and one array per distinct indicator series;
 * worker threads only read them. Called from the command's thread;
 * an_sweep_run starts and joins its own workers.
 */
#include "analytics/optimize.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the sweep ------------------------------------------------------ */

typedef struct dd_node {
    double mx, mn, worst; /* worst: min over the range of c[j] / max(c[..j]) */
} dd_node;

typedef struct series {
    an_strat_series key;
    double *out[2];
    size_t first; /* first bar with a value (n when none) */
} series;

struct an_sweep {
    const an_grid *grid;
    const double *close;
    size_t n;
    double bars_per_year;
    /* prefix sums of r, r^2, min(r,0)^2 (r[i] = c[i]/c[i-1]-1), side by side:
     * one cache line per lookup */
    struct psum {
        double r, r2, down2;
    } * ps;
    dd_node *tree; /* segment tree over the closes, leaves at [size, 2*size) */
    size_t tree_size;
    series *ser;
    size_t n_ser;
    uint32_t *combo_ser; /* 2 per combination: series indexes */
    int avx2;            /* the CPU has AVX2: 4 compares at a time */
};

static dd_node dd_merge(dd_node a, dd_node b)
{
    if (a.mx == -INFINITY)
        return b;
    if (b.mx == -INFINITY)
        return a;
    dd_node r = {fmax(a.mx, b.mx), fmin(a.mn, b.mn), fmin(fmin(a.worst, b.worst), b.mn / a.mx)};
    return r;
}

/* (max, min, worst) of closes [l, r] */
static dd_node dd_query(const an_sweep *sw, size_t l, size_t r)
{
    dd_node left = {-INFINITY, INFINITY, 1}, right = left;
    l += sw->tree_size;
    r += sw->tree_size + 1;
    while (l < r) {
        if (l & 1)
            left = dd_merge(left, sw->tree[l++]);
        if (r & 1)
            right = dd_merge(sw->tree[--r], right);
        l >>= 1;
        r >>= 1;
    }
    return dd_merge(left, right);
}

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
    free(sw->tree);
    free(sw);
}

/* Memory the indicator arrays may take (bytes). */
#define SERIES_BUDGET ((size_t)4 << 30)

/* The per-bar return prefix sums (mean, variance, downside) and the
 * drawdown tree over the closes: shared by every combination. */
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
    for (size_t i = 0; i < sw->tree_size; i++) {
        dd_node leaf = {close[i < n ? i : n - 1], close[i < n ? i : n - 1], 1};
        if (i >= n)
            leaf.mx = -INFINITY; /* padding: empty */
        sw->tree[sw->tree_size + i] = leaf;
    }
    for (size_t i = sw->tree_size - 1; i >= 1; i--)
        sw->tree[i] = dd_merge(sw->tree[2 * i], sw->tree[2 * i + 1]);
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
    an_sweep *sw = calloc(1, sizeof *sw);
    if (!sw)
        return an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory");
    sw->grid = g;
    sw->close = close;
    sw->n = n;
    sw->bars_per_year = bars_per_year;
#if defined(__x86_64__)
    sw->avx2 = __builtin_cpu_supports("avx2") && !getenv("AN_OPT_NO_AVX2");
#endif
    an_code rc = AN_OK;
    an_strat_series *keys = NULL;
    sw->ps = malloc((n + 1) * sizeof *sw->ps);
    for (sw->tree_size = 1; sw->tree_size < n; sw->tree_size <<= 1)
        ;
    sw->tree = malloc(2 * sw->tree_size * sizeof *sw->tree);
    sw->combo_ser = malloc(2 * g->total * sizeof *sw->combo_ser);
    keys = malloc(2 * g->total * sizeof *keys);
    if (!sw->ps || !sw->tree || !sw->combo_ser || !keys) {
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

/* bits j of the result: condition c holds on bar base+j, for j < len */
static uint64_t cond_bits_plain(const an_strat_cond *c, size_t base, int len)
{
    uint64_t m = 0;
    const double *x = c->x + base;
    if (c->y) {
        const double *y = c->y + base;
        if (c->gt)
            for (int j = 0; j < len; j++)
                m |= (uint64_t)(x[j] > y[j]) << j;
        else
            for (int j = 0; j < len; j++)
                m |= (uint64_t)(x[j] < y[j]) << j;
    } else {
        double l = c->level;
        if (c->gt)
            for (int j = 0; j < len; j++)
                m |= (uint64_t)(x[j] > l) << j;
        else
            for (int j = 0; j < len; j++)
                m |= (uint64_t)(x[j] < l) << j;
    }
    return m;
}

#if defined(__x86_64__)
#include <immintrin.h>

/* The same for a whole word, four compares at a time (ordered compares: a
 * NAN is false, as in C). */
__attribute__((target("avx2"))) static uint64_t cond_bits_avx2(const an_strat_cond *c, size_t base)
{
    uint64_t m = 0;
    const double *x = c->x + base;
    if (c->y) {
        const double *y = c->y + base;
        if (c->gt)
            for (int j = 0; j < 64; j += 4)
                m |= (uint64_t)_mm256_movemask_pd(
                         _mm256_cmp_pd(_mm256_loadu_pd(x + j), _mm256_loadu_pd(y + j), _CMP_GT_OQ))
                     << j;
        else
            for (int j = 0; j < 64; j += 4)
                m |= (uint64_t)_mm256_movemask_pd(
                         _mm256_cmp_pd(_mm256_loadu_pd(x + j), _mm256_loadu_pd(y + j), _CMP_LT_OQ))
                     << j;
    } else {
        __m256d l = _mm256_set1_pd(c->level);
        if (c->gt)
            for (int j = 0; j < 64; j += 4)
                m |= (uint64_t)_mm256_movemask_pd(
                         _mm256_cmp_pd(_mm256_loadu_pd(x + j), l, _CMP_GT_OQ))
                     << j;
        else
            for (int j = 0; j < 64; j += 4)
                m |= (uint64_t)_mm256_movemask_pd(
                         _mm256_cmp_pd(_mm256_loadu_pd(x + j), l, _CMP_LT_OQ))
                     << j;
    }
    return m;
}
#endif

static inline uint64_t cond_bits(const an_strat_cond *c, size_t base, int len, int avx2)
{
#if defined(__x86_64__)
    if (avx2 && len == 64)
        return cond_bits_avx2(c, base);
#else
    (void)avx2;
#endif
    return cond_bits_plain(c, base, len);
}

static inline int cond_at(const an_strat_cond *c, size_t i)
{
    double y = c->y ? c->y[i] : c->level;
    return c->gt ? c->x[i] > y : c->x[i] < y;
}

typedef struct trade_list {
    an_trade *v;
    size_t n, cap;
    int failed;
} trade_list;

static void trade_push(trade_list *t, an_trade tr)
{
    if (!t || t->failed)
        return;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        an_trade *v = realloc(t->v, cap * sizeof *v);
        if (!v) {
            t->failed = 1;
            return;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = tr;
}

/* The returns' sums of the held bars [a, b] (closes' own returns). */
typedef struct acc {
    double s1, s2, sd;
} acc;

static inline void acc_add(acc *a, double r)
{
    a->s1 += r;
    a->s2 += r * r;
    if (r < 0)
        a->sd += r * r;
}

static inline void acc_range(acc *a, const an_sweep *sw, size_t from, size_t to)
{
    if (from >= to)
        return;
    const struct psum *t = &sw->ps[to], *f = &sw->ps[from];
    a->s1 += t->r - f->r;
    a->s2 += t->r2 - f->r2;
    a->sd += t->down2 - f->down2;
}

/* One combination on [lo, hi). */
/* What a backtest counted along the way, for its metrics. */
typedef struct tally {
    acc a;        /* sums of the per-bar returns */
    double worst; /* the lowest value / running peak */
    double gain, loss;
    int64_t closed, wins;
    size_t held; /* bars in a position */
} tally;

/* The metrics of a backtest over nbars bars (formulas in the README). */
static void set_metrics(const an_sweep *sw, const an_fill *fill, size_t nbars, double final_value,
                        const tally *t, an_metrics *m)
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

static void simulate(const an_sweep *sw, size_t idx, size_t lo, size_t hi, const an_fill *fill,
                     an_metrics *m, trade_list *trades)
{
    const an_grid *g = sw->grid;
    double p[AN_STRAT_MAX_PARAMS];
    an_grid_combo(g, idx, p);
    const series *s0 = &sw->ser[sw->combo_ser[2 * idx]];
    const series *s1 = &sw->ser[sw->combo_ser[2 * idx + 1]];
    double *out[2][2] = {{s0->out[0], s0->out[1]}, {s1->out[0], s1->out[1]}};
    an_strat_cond ce, cx;
    an_strategy_conditions(g->strategy, p, sw->close, out, &ce, &cx);
    size_t first = s0->first > s1->first ? s0->first : s1->first;
    const double *c = sw->close;
    const double fees = fill->fees, slip = fill->slippage;
    double cash = fill->init_cash, size = 0, cash_before = 0, peak = fill->init_cash, worst = 1;
    double gain = 0, loss = 0;
    int64_t closed = 0, wins = 0;
    size_t held = 0, entry = 0;
    int in_pos = 0;
    acc a = {0, 0, 0};
    size_t start = first + 1 > lo ? first + 1 : lo;
    if (start < hi) {
        int pe = cond_at(&ce, start - 1), px = cond_at(&cx, start - 1);
        for (size_t base = start; base < hi; base += 64) {
            int len = hi - base < 64 ? (int)(hi - base) : 64;
            uint64_t be = cond_bits(&ce, base, len, sw->avx2),
                     bx = cond_bits(&cx, base, len, sw->avx2);
            uint64_t en = be & ~((be << 1) | (uint64_t)pe);
            uint64_t ex = bx & ~((bx << 1) | (uint64_t)px);
            pe = (int)((be >> (len - 1)) & 1);
            px = (int)((bx >> (len - 1)) & 1);
            uint64_t both = en & ex; /* an entry and an exit on one bar cancel */
            en &= ~both;
            ex &= ~both;
            uint64_t ev = in_pos ? ex : en; /* the events that can act now */
            while (ev) {
                int j = __builtin_ctzll(ev);
                size_t i = base + (size_t)j;
                uint64_t below = ~0ULL << j << 1; /* bits after j */
                if (!in_pos) {
                    /* all in at this close */
                    double adj = c[i] * (1 + slip);
                    cash_before = cash;
                    size = cash / (1 + fees) / adj;
                    cash = 0;
                    acc_add(&a, size * c[i] / cash_before - 1);
                    entry = i;
                    in_pos = 1;
                    ev = ex & below;
                } else {
                    /* everything out at this close */
                    acc_range(&a, sw, entry + 1, i);
                    dd_node d = dd_query(sw, entry, i - 1);
                    worst = fmin(worst, fmin(d.worst, size * d.mn / peak));
                    peak = fmax(peak, size * d.mx);
                    double acq = size * (c[i] * (1 - slip));
                    cash = acq - acq * fees;
                    acc_add(&a, cash / (size * c[i - 1]) - 1);
                    worst = fmin(worst, cash / peak);
                    peak = fmax(peak, cash);
                    double pnl = cash - cash_before;
                    closed++;
                    wins += pnl > 0;
                    if (pnl > 0)
                        gain += pnl;
                    else
                        loss -= pnl;
                    held += i - entry;
                    trade_push(trades, (an_trade){entry, i, pnl});
                    size = 0;
                    in_pos = 0;
                    ev = en & below;
                }
            }
        }
    }
    double final_value = cash;
    if (in_pos) {
        acc_range(&a, sw, entry + 1, hi);
        dd_node d = dd_query(sw, entry, hi - 1);
        worst = fmin(worst, fmin(d.worst, size * d.mn / peak));
        final_value = size * c[hi - 1];
        held += hi - entry;
        trade_push(trades, (an_trade){entry, SIZE_MAX, final_value - cash_before});
    }
    tally t = {a, worst, gain, loss, closed, wins, held};
    set_metrics(sw, fill, hi - lo, final_value, &t, m);
}

static void metrics_nan(an_metrics *m)
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
        metrics_nan(m);
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

/* ---- threads ---------------------------------------------------------- */

int an_opt_threads(void)
{
    const char *e = getenv("AUTONAMA_OPT_THREADS");
    long n = 0;
    if (e && *e) {
        char *end;
        n = strtol(e, &end, 10);
        if (*end || n < 1 || n > 256)
            n = 0;
    }
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

#define CHUNK 16

typedef struct job {
    const an_sweep *sw;
    size_t lo, hi;
    const an_fill *fill;
    an_metrics *out;
    unsigned char *skipped;
    atomic_size_t next, done;
} job;

static size_t work(job *jb)
{
    const an_grid *g = jb->sw->grid;
    size_t from = atomic_fetch_add(&jb->next, CHUNK);
    if (from >= g->total)
        return 0;
    size_t to = from + CHUNK < g->total ? from + CHUNK : g->total;
    double p[AN_STRAT_MAX_PARAMS];
    for (size_t i = from; i < to; i++) {
        an_grid_combo(g, i, p);
        jb->skipped[i] = (unsigned char)an_strategy_skip(g->strategy, p);
        if (jb->skipped[i])
            metrics_nan(&jb->out[i]);
        else
            simulate(jb->sw, i, jb->lo, jb->hi, jb->fill, &jb->out[i], NULL);
    }
    atomic_fetch_add(&jb->done, to - from);
    return to - from;
}

static void *worker(void *arg)
{
    while (work(arg))
        ;
    return NULL;
}

an_code an_sweep_run(an_sweep *sw, size_t lo, size_t hi, const an_fill *fill, int threads,
                     an_sweep_progress progress, void *ctx, an_metrics *out, unsigned char *skipped,
                     an_err *err)
{
    if (lo >= hi || hi > sw->n)
        return an_err_set(err, AN_ERR_INVALID, "optimize: empty period [%zu, %zu)", lo, hi);
    if (threads <= 0)
        threads = an_opt_threads();
    size_t total = sw->grid->total;
    if ((size_t)threads > total / CHUNK + 1)
        threads = (int)(total / CHUNK + 1);
    job jb = {sw, lo, hi, fill, out, skipped, 0, 0};
    pthread_t tid[256];
    int started = 0;
    for (int t = 1; t < threads && t < 256; t++) {
        if (pthread_create(&tid[started], NULL, worker, &jb) != 0)
            break; /* fewer threads: the rest is done below */
        started++;
    }
    size_t last = 0;
    while (work(&jb)) {
        size_t d = atomic_load(&jb.done);
        if (progress && d - last >= total / 100 + 1) {
            progress(ctx, d, total);
            last = d;
        }
    }
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    if (progress)
        progress(ctx, total, total);
    return AN_OK;
}
