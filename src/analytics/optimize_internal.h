/*
 * optimize_internal.h - what optimize.c (the sweep's tables, one backtest)
 * and optimize_run.c (the threaded sweep) share: the sweep's layout, the
 * condition bit words, and one portfolio's fills (an_opt_sim): both paths
 * fill with exactly the same arithmetic. Not for other modules.
 */
#ifndef AN_ANALYTICS_OPTIMIZE_INTERNAL_H
#define AN_ANALYTICS_OPTIMIZE_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "analytics/optimize.h"

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
    /* sparse table: level k (n entries each, the first n - 2^k + 1 used)
     * covers closes [i, i + 2^k) */
    dd_node *sparse;
    int levels;
    series *ser;
    size_t n_ser;
    uint32_t *combo_ser; /* 2 per combination: series indexes */
    int simd;            /* 2: the CPU has AVX-512 (8 compares at a time), 1: AVX2 (4), 0: none */
};

/* fmin/fmax for numbers that are never NAN here (positive closes and
 * values): inlined, where fmin is a library call. */
static inline double dd_min(double a, double b)
{
    return b < a ? b : a;
}

static inline double dd_max(double a, double b)
{
    return b > a ? b : a;
}

/* (max, min, worst) of closes [l, r], l <= r: two overlapping power-of-two
 * ranges A = [l, l + 2^k) and B = (r - 2^k, r]; B's falls are measured from
 * the peak before B (the max of [l, start of B)) too. Every term is a ratio
 * of two closes, as in a merge, so the figure is the same to the bit. */
static inline dd_node an_opt_dd_query(const an_sweep *sw, size_t l, size_t r)
{
    size_t len = r - l + 1, n = sw->n;
    int k = 63 - __builtin_clzll(len);
    const dd_node *a = &sw->sparse[(size_t)k * n + l];
    if (len == (size_t)1 << k)
        return *a;
    size_t m1 = r + 1 - ((size_t)1 << k);
    const dd_node *b = &sw->sparse[(size_t)k * n + m1];
    size_t len2 = m1 - l;
    int k2 = 63 - __builtin_clzll(len2);
    double peak = dd_max(sw->sparse[(size_t)k2 * n + l].mx,
                         sw->sparse[(size_t)k2 * n + m1 - ((size_t)1 << k2)].mx);
    dd_node d = {dd_max(a->mx, b->mx), dd_min(a->mn, b->mn),
                 dd_min(dd_min(a->worst, b->worst), b->mn / peak)};
    return d;
}

/* Every metric NAN (a skipped combination). */
void an_opt_metrics_nan(an_metrics *m);

/* bits j of the result: condition c holds on bar base+j, for j < len */
static inline uint64_t cond_bits_plain(const an_strat_cond *c, size_t base, int len)
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

/* The body of a whole-word kernel, W compares at a time (ordered compares:
 * a NAN is false, as in C): VEC the vector type, LOAD and SET1 its loads,
 * CMP_MASK(a, b, pred) the W-bit mask of a pred b. One body for the AVX2
 * and AVX-512 kernels below, so the two cannot drift apart. */
#define AN_COND_BITS_BODY(W, VEC, LOAD, SET1, CMP_MASK)                                            \
    uint64_t m = 0;                                                                                \
    const double *x = c->x + base;                                                                 \
    if (c->y) {                                                                                    \
        const double *y = c->y + base;                                                             \
        if (c->gt)                                                                                 \
            for (int j = 0; j < 64; j += W)                                                        \
                m |= (uint64_t)CMP_MASK(LOAD(x + j), LOAD(y + j), _CMP_GT_OQ) << j;                \
        else                                                                                       \
            for (int j = 0; j < 64; j += W)                                                        \
                m |= (uint64_t)CMP_MASK(LOAD(x + j), LOAD(y + j), _CMP_LT_OQ) << j;                \
    } else {                                                                                       \
        VEC l = SET1(c->level);                                                                    \
        if (c->gt)                                                                                 \
            for (int j = 0; j < 64; j += W)                                                        \
                m |= (uint64_t)CMP_MASK(LOAD(x + j), l, _CMP_GT_OQ) << j;                          \
        else                                                                                       \
            for (int j = 0; j < 64; j += W)                                                        \
                m |= (uint64_t)CMP_MASK(LOAD(x + j), l, _CMP_LT_OQ) << j;                          \
    }                                                                                              \
    return m

#define AN_AVX2_CMP_MASK(a, b, pred) _mm256_movemask_pd(_mm256_cmp_pd(a, b, pred))

/* The same for a whole word, four compares at a time. */
__attribute__((target("avx2"))) static inline uint64_t cond_bits_avx2(const an_strat_cond *c,
                                                                      size_t base)
{
    AN_COND_BITS_BODY(4, __m256d, _mm256_loadu_pd, _mm256_set1_pd, AN_AVX2_CMP_MASK);
}

/* The same, eight compares at a time into a mask register. */
__attribute__((target("avx512f"))) static inline uint64_t cond_bits_avx512(const an_strat_cond *c,
                                                                           size_t base)
{
    AN_COND_BITS_BODY(8, __m512d, _mm512_loadu_pd, _mm512_set1_pd, _mm512_cmp_pd_mask);
}
#endif

/* simd: 0 plain C, 1 AVX2, 2 AVX-512 (an_sweep's, from the CPU) */
static inline uint64_t cond_bits(const an_strat_cond *c, size_t base, int len, int simd)
{
#if defined(__x86_64__)
    if (simd == 2 && len == 64)
        return cond_bits_avx512(c, base);
    if (simd == 1 && len == 64)
        return cond_bits_avx2(c, base);
#else
    (void)simd;
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

static inline void trade_push(trade_list *t, an_trade tr)
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

/* One portfolio along its signals, and what it counted for its metrics. */
typedef struct an_opt_sim {
    acc a;        /* sums of the per-bar returns */
    double worst; /* the lowest value / running peak */
    double gain, loss;
    int64_t closed, wins;
    size_t held; /* bars in a position */
    double cash, size, cash_before, peak;
    size_t entry;
    int in_pos;
} an_opt_sim;

static inline void sim_start(an_opt_sim *s, const an_fill *fill)
{
    *s = (an_opt_sim){.worst = 1, .cash = fill->init_cash, .peak = fill->init_cash};
}

/* All in at bar i's close. */
static inline void sim_enter(an_opt_sim *s, const double *c, const an_fill *fill, size_t i)
{
    double adj = c[i] * (1 + fill->slippage);
    s->cash_before = s->cash;
    s->size = s->cash / (1 + fill->fees) / adj;
    s->cash = 0;
    acc_add(&s->a, s->size * c[i] / s->cash_before - 1);
    s->entry = i;
    s->in_pos = 1;
}

/* Everything out at bar i's close. */
static inline void sim_exit(an_opt_sim *s, const an_sweep *sw, const an_fill *fill, size_t i,
                            trade_list *trades)
{
    const double *c = sw->close;
    size_t entry = s->entry;
    double size = s->size;
    acc_range(&s->a, sw, entry + 1, i);
    dd_node d = an_opt_dd_query(sw, entry, i - 1);
    s->worst = dd_min(s->worst, dd_min(d.worst, size * d.mn / s->peak));
    s->peak = dd_max(s->peak, size * d.mx);
    double acq = size * (c[i] * (1 - fill->slippage));
    s->cash = acq - acq * fill->fees;
    acc_add(&s->a, s->cash / (size * c[i - 1]) - 1);
    s->worst = dd_min(s->worst, s->cash / s->peak);
    s->peak = dd_max(s->peak, s->cash);
    double pnl = s->cash - s->cash_before;
    s->closed++;
    s->wins += pnl > 0;
    if (pnl > 0)
        s->gain += pnl;
    else
        s->loss -= pnl;
    s->held += i - entry;
    trade_push(trades, (an_trade){entry, i, pnl});
    s->size = 0;
    s->in_pos = 0;
}

/* One word of 64 bars from base: the entry and exit conditions' bits (be,
 * bx: len bars) and their values on the bar before (*pe, *px, updated) give
 * the crossings, and the portfolio acts on those it can (an entry while
 * out, an exit while in). */
static inline void sim_word(an_opt_sim *s, const an_sweep *sw, const an_fill *fill, size_t base,
                            int len, uint64_t be, uint64_t bx, int *pe, int *px, trade_list *trades)
{
    uint64_t en = be & ~((be << 1) | (uint64_t)*pe);
    uint64_t ex = bx & ~((bx << 1) | (uint64_t)*px);
    *pe = (int)((be >> (len - 1)) & 1);
    *px = (int)((bx >> (len - 1)) & 1);
    uint64_t both = en & ex; /* an entry and an exit on one bar cancel */
    en &= ~both;
    ex &= ~both;
    uint64_t ev = s->in_pos ? ex : en; /* the events that can act now */
    while (ev) {
        int j = __builtin_ctzll(ev);
        size_t i = base + (size_t)j;
        uint64_t below = ~0ULL << j << 1; /* bits after j */
        if (!s->in_pos) {
            sim_enter(s, sw->close, fill, i);
            ev = ex & below;
        } else {
            sim_exit(s, sw, fill, i, trades);
            ev = en & below;
        }
    }
}

/* The open position valued at the last close, and the metrics over [lo, hi). */
void an_opt_sim_finish(an_opt_sim *s, const an_sweep *sw, const an_fill *fill, size_t lo, size_t hi,
                       an_metrics *m, trade_list *trades);

/* The combination's conditions and the first bar (>= lo) where a crossing
 * can be seen. */
size_t an_opt_conditions(const an_sweep *sw, size_t idx, size_t lo, an_strat_cond *ce,
                         an_strat_cond *cx);

#endif
