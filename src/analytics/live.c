/*
 * live.c - incremental TA-Lib indicators (see live.h). Each indicator keeps
 * the running quantities of its batch kernel in indicators.c; push does one
 * step of that kernel's loop, peek does the same step on copies of the
 * scalars. Owns its rings (SMA/BBANDS windows); one thread at a time.
 */
#include "analytics/live.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/indicators.h"

/* TA-Lib 0.6's zero tests, as in indicators.c */
#define TA_EPSILON 0.00000000000001
#define IS_ZERO(v) (-TA_EPSILON < (v) && (v) < TA_EPSILON)
#define IS_ZERO_OR_NEG(v) ((v) < TA_EPSILON)

/* SMA's running total over a ring of the last p closes */
typedef struct sma_st {
    int p;
    double total;
    double *ring;
} sma_st;

/* EMA seeded with the SMA of its first p inputs */
typedef struct ema_st {
    int p;
    double k, sum, prev;
    size_t n; /* inputs seen */
} ema_st;

typedef struct rsi_st {
    int p;
    double prev, gain, loss;
    size_t n;
} rsi_st;

typedef struct ind_st {
    an_ind_spec spec;
    sma_st sma;        /* SMA, BBANDS */
    double total2;     /* BBANDS: running sum of squares */
    ema_st e1, e2, e3; /* EMA: e1; MACD: e1 slow, e2 fast, e3 signal */
    rsi_st rsi;
    size_t skip_fast; /* MACD: bars before the fast EMA's seed window */
} ind_st;

struct an_live {
    ind_st *ind;
    int n_ind, n_out;
    char (*names)[AN_INDICATOR_NAME_MAX];
    size_t count; /* closes pushed */
};

static void ema_init(ema_st *e, int p)
{
    e->p = p;
    e->k = 2.0 / (p + 1);
    e->sum = e->prev = 0;
    e->n = 0;
}

/* ema_from's loop: the seed sum, then prev = ((x - prev) * k) + prev */
static double ema_step(const ema_st *e, double x, ema_st *next)
{
    ema_st t = *e;
    double v = NAN;
    if (t.n < (size_t)t.p) {
        t.sum += x;
        if (t.n + 1 == (size_t)t.p)
            v = t.prev = t.sum / t.p;
    } else {
        v = t.prev = ((x - t.prev) * t.k) + t.prev;
    }
    t.n++;
    if (next)
        *next = t;
    return v;
}

/* an_ind_sma's loop: total += x; out = total / p; total -= oldest */
static double sma_step(sma_st *s, size_t n, double x, int commit)
{
    size_t p = (size_t)s->p;
    if (n + 1 < p) {
        if (commit) {
            s->total += x;
            s->ring[n % p] = x;
        }
        return NAN;
    }
    double t = s->total + x;
    double out = t / s->p;
    if (commit) {
        s->ring[n % p] = x;
        s->total = t - s->ring[(n + 1 - p) % p];
    }
    return out;
}

static double rsi_value(double gain, double loss)
{
    double t = gain + loss;
    return !IS_ZERO(t) ? 100.0 * (gain / t) : 0.0;
}

/* an_ind_rsi's loop */
static double rsi_step(rsi_st *r, double x, int commit)
{
    rsi_st t = *r;
    double v = NAN;
    if (t.n == 0) {
        t.prev = x;
    } else {
        double d = x - t.prev;
        t.prev = x;
        if (t.n > (size_t)t.p) {
            t.loss *= (t.p - 1);
            t.gain *= (t.p - 1);
        }
        if (d < 0)
            t.loss -= d;
        else
            t.gain += d;
        if (t.n >= (size_t)t.p) {
            t.loss /= t.p;
            t.gain /= t.p;
            v = rsi_value(t.gain, t.loss);
        }
    }
    t.n++;
    if (commit)
        *r = t;
    return v;
}

/* One indicator, one close: its outputs into out; the state advanced when
 * commit. n is the index of this close in the series. */
static void step(ind_st *s, size_t n, double x, double *out, int commit)
{
    switch (s->spec.kind) {
    case AN_IND_SMA: out[0] = sma_step(&s->sma, n, x, commit); break;
    case AN_IND_EMA: {
        ema_st next;
        out[0] = ema_step(&s->e1, x, &next);
        if (commit)
            s->e1 = next;
        break;
    }
    case AN_IND_RSI: out[0] = rsi_step(&s->rsi, x, commit); break;
    case AN_IND_BBANDS: {
        size_t p = (size_t)s->sma.p;
        double oldest = n + 1 >= p ? (n + 1 == p && p == 1 ? x : s->sma.ring[(n + 1 - p) % p]) : 0;
        double mid = sma_step(&s->sma, n, x, commit);
        if (n + 1 < p) {
            if (commit)
                s->total2 += x * x;
            out[0] = out[1] = out[2] = NAN;
            break;
        }
        /* TA_INT_stddev_using_precalc_ma */
        double total2 = s->total2 + x * x;
        double mean2 = total2 / s->sma.p;
        if (p == 1)
            oldest = x;
        total2 -= oldest * oldest;
        mean2 -= mid * mid;
        if (commit)
            s->total2 = total2;
        double sd = !IS_ZERO_OR_NEG(mean2) ? sqrt(mean2) : 0.0;
        double up = s->spec.d[0], dn = s->spec.d[1];
        if (up == dn) {
            double w = sd * up;
            out[0] = mid + w;
            out[2] = mid - w;
        } else {
            out[0] = mid + sd * up;
            out[2] = mid - sd * dn;
        }
        out[1] = mid;
        break;
    }
    case AN_IND_MACD: {
        out[0] = out[1] = out[2] = NAN;
        if (s->e2.p < 2 || s->e3.p < 1)
            break; /* an_ind_macd: all NAN */
        ema_st slow, fast = s->e2, sig = s->e3;
        double vs = ema_step(&s->e1, x, &slow);
        double vf = NAN;
        if (n >= s->skip_fast)
            vf = ema_step(&s->e2, x, &fast);
        size_t first = (size_t)(s->e1.p - 1) + (size_t)(s->e3.p - 1);
        if (n + 1 >= (size_t)s->e1.p) { /* bar slow-1 on: the MACD line */
            double line = vf - vs;
            double vsig = ema_step(&s->e3, line, &sig);
            if (n >= first) {
                out[0] = line;
                out[1] = vsig;
                out[2] = line - vsig;
            }
        }
        if (commit) {
            s->e1 = slow;
            s->e2 = fast;
            s->e3 = sig;
        }
        break;
    }
    }
}

static void init_state(ind_st *s)
{
    s->sma.total = 0;
    s->total2 = 0;
    switch (s->spec.kind) {
    case AN_IND_EMA: ema_init(&s->e1, s->spec.p[0]); break;
    case AN_IND_RSI:
        memset(&s->rsi, 0, sizeof s->rsi);
        s->rsi.p = s->spec.p[0];
        break;
    case AN_IND_MACD: {
        int fast = s->spec.p[0], slow = s->spec.p[1];
        if (slow < fast) {
            int t = slow;
            slow = fast;
            fast = t;
        }
        ema_init(&s->e1, slow);
        ema_init(&s->e2, fast);
        ema_init(&s->e3, s->spec.p[2]);
        s->skip_fast = (size_t)(slow - fast);
        break;
    }
    default: break;
    }
}

an_live *an_live_new(const an_ind_set *set)
{
    an_live *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    l->n_ind = set->n;
    l->ind = calloc((size_t)(set->n ? set->n : 1), sizeof *l->ind);
    for (int i = 0; i < set->n; i++)
        l->n_out += an_ind_spec_outputs(&set->v[i]);
    l->names = calloc((size_t)(l->n_out ? l->n_out : 1), sizeof *l->names);
    if (!l->ind || !l->names)
        goto fail;
    int o = 0;
    for (int i = 0; i < set->n; i++) {
        ind_st *s = &l->ind[i];
        s->spec = set->v[i];
        an_ind_spec_names(&s->spec, l->names + o);
        o += an_ind_spec_outputs(&s->spec);
        if (s->spec.kind == AN_IND_SMA || s->spec.kind == AN_IND_BBANDS) {
            s->sma.p = s->spec.p[0] < 1 ? 1 : s->spec.p[0];
            if (!(s->sma.ring = calloc((size_t)s->sma.p, sizeof *s->sma.ring)))
                goto fail;
        }
        init_state(s);
    }
    return l;
fail:
    an_live_free(l);
    return NULL;
}

void an_live_free(an_live *l)
{
    if (!l)
        return;
    for (int i = 0; l->ind && i < l->n_ind; i++)
        free(l->ind[i].sma.ring);
    free(l->ind);
    free(l->names);
    free(l);
}

void an_live_reset(an_live *l)
{
    for (int i = 0; i < l->n_ind; i++)
        init_state(&l->ind[i]);
    l->count = 0;
}

int an_live_outputs(const an_live *l)
{
    return l->n_out;
}

const char *an_live_name(const an_live *l, int i)
{
    return i >= 0 && i < l->n_out ? l->names[i] : "";
}

size_t an_live_count(const an_live *l)
{
    return l->count;
}

/* Specs whose batch kernel gives all NAN whatever the input (bad periods). */
static int degenerate(const an_ind_spec *sp)
{
    switch (sp->kind) {
    case AN_IND_SMA:
    case AN_IND_EMA: return sp->p[0] < 1;
    case AN_IND_RSI:
    case AN_IND_BBANDS: return sp->p[0] < 2;
    case AN_IND_MACD: return 0;
    }
    return 1;
}

static void run(an_live *l, double close, double *out, int commit)
{
    double tmp[3];
    int o = 0;
    for (int i = 0; i < l->n_ind; i++) {
        ind_st *s = &l->ind[i];
        int k = an_ind_spec_outputs(&s->spec);
        if (degenerate(&s->spec))
            tmp[0] = tmp[1] = tmp[2] = NAN;
        else
            step(s, l->count, close, tmp, commit);
        if (out)
            memcpy(out + o, tmp, (size_t)k * sizeof *tmp);
        o += k;
    }
    if (commit)
        l->count++;
}

void an_live_push(an_live *l, double close, double *out)
{
    run(l, close, out, 1);
}

void an_live_peek(const an_live *l, double close, double *out)
{
    run((an_live *)l, close, out, 0);
}
