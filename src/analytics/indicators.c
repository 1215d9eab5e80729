/*
 * indicators.c - SMA, EMA, RSI, Bollinger Bands and MACD as TA-Lib defines
 * them (see indicators.h). The loops follow TA-Lib's order of operations so
 * that the floating-point results are the same, not merely close.
 */
#include "analytics/indicators.h"

#include <math.h>
#include <stdlib.h>

/* TA-Lib's TA_IS_ZERO and TA_IS_ZERO_OR_NEG. TA-Lib 0.4 used 1e-8; the
 * 0.6 C library (the one PyPI ta-lib 0.6 bundles, our oracle) uses
 * TA_EPSILON = 1e-14: a near-flat window then keeps its tiny deviation. */
#define TA_EPSILON 0.00000000000001
#define IS_ZERO(v) (-TA_EPSILON < (v) && (v) < TA_EPSILON)
#define IS_ZERO_OR_NEG(v) ((v) < TA_EPSILON)

static void fill_nan(double *out, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        out[i] = NAN;
}

/* The warm-up every single-output indicator starts with: a period under
 * min_period, or fewer than lookback + 1 inputs, makes the whole output NaN
 * (returns 0); otherwise out[0..lookback) is NaN and the caller fills the
 * rest (returns 1). */
static int warm_up(double *out, size_t n, int period, int min_period, size_t lookback)
{
    if (period < min_period || n < lookback + 1) {
        fill_nan(out, 0, n);
        return 0;
    }
    fill_nan(out, 0, lookback);
    return 1;
}

void an_ind_sma(const double *in, size_t n, int period, double *out)
{
    size_t p = (size_t)period;
    if (!warm_up(out, n, period, 1, p - 1))
        return;
    double total = 0;
    size_t i = 0, trailing = 0;
    while (i < p - 1)
        total += in[i++];
    for (; i < n; i++) {
        total += in[i];
        double t = total;
        total -= in[trailing++];
        out[i] = t / period;
    }
}

/* EMA of in[first..n) with its seed window in[first..first+period), written
 * from index first+period-1. */
static void ema_from(const double *in, size_t first, size_t n, int period, double k, double *out)
{
    size_t p = (size_t)period;
    double sum = 0;
    size_t today = first;
    for (size_t i = 0; i < p; i++)
        sum += in[today++];
    double prev = sum / period;
    out[today - 1] = prev;
    while (today < n) {
        prev = ((in[today] - prev) * k) + prev;
        out[today++] = prev;
    }
}

void an_ind_ema(const double *in, size_t n, int period, double *out)
{
    if (!warm_up(out, n, period, 1, (size_t)period - 1))
        return;
    ema_from(in, 0, n, period, 2.0 / (period + 1), out);
}

/* RSI's step: a rise adds to the gains, a fall to the losses. */
static void add_change(double d, double *gain, double *loss)
{
    if (d < 0)
        *loss -= d;
    else
        *gain += d;
}

static double rsi_of(double gain, double loss)
{
    double t = gain + loss;
    return !IS_ZERO(t) ? 100.0 * (gain / t) : 0.0;
}

void an_ind_rsi(const double *in, size_t n, int period, double *out)
{
    size_t p = (size_t)period;
    if (!warm_up(out, n, period, 2, p))
        return;
    size_t today = 0;
    double prev_value = in[today++];
    double gain = 0, loss = 0;
    for (size_t i = p; i > 0; i--) {
        double v = in[today++];
        add_change(v - prev_value, &gain, &loss);
        prev_value = v;
    }
    loss /= period;
    gain /= period;
    out[p] = rsi_of(gain, loss);
    while (today < n) {
        double v = in[today];
        loss *= (period - 1);
        gain *= (period - 1);
        add_change(v - prev_value, &gain, &loss);
        prev_value = v;
        loss /= period;
        gain /= period;
        out[today++] = rsi_of(gain, loss);
    }
}

void an_ind_bbands(const double *in, size_t n, int period, double nbdevup, double nbdevdn,
                   double *upper, double *middle, double *lower)
{
    size_t p = (size_t)period;
    if (period < 2 || n < p) {
        fill_nan(upper, 0, n);
        fill_nan(middle, 0, n);
        fill_nan(lower, 0, n);
        return;
    }
    an_ind_sma(in, n, period, middle);
    fill_nan(upper, 0, p - 1);
    fill_nan(lower, 0, p - 1);
    /* TA_INT_stddev_using_precalc_ma: a running sum of squares */
    double total2 = 0;
    size_t start = 0, end = p - 1;
    for (size_t i = start; i < end; i++)
        total2 += in[i] * in[i];
    for (size_t i = p - 1; i < n; i++, start++, end++) {
        double x = in[end];
        total2 += x * x;
        double mean2 = total2 / period;
        x = in[start];
        total2 -= x * x;
        x = middle[i];
        mean2 -= x * x;
        double sd = !IS_ZERO_OR_NEG(mean2) ? sqrt(mean2) : 0.0;
        if (nbdevup == nbdevdn) {
            double w = sd * nbdevup;
            upper[i] = middle[i] + w;
            lower[i] = middle[i] - w;
        } else {
            upper[i] = middle[i] + sd * nbdevup;
            lower[i] = middle[i] - sd * nbdevdn;
        }
    }
}

int an_ind_macd(const double *in, size_t n, int fast, int slow, int signal, double *macd,
                double *macd_signal, double *hist)
{
    if (slow < fast) {
        int t = slow;
        slow = fast;
        fast = t;
    }
    fill_nan(macd, 0, n);
    fill_nan(macd_signal, 0, n);
    fill_nan(hist, 0, n);
    if (fast < 2 || signal < 1)
        return 0;
    size_t s = (size_t)slow, g = (size_t)signal;
    size_t first = (s - 1) + (g - 1); /* TA-Lib's lookback */
    if (n <= first)
        return 0;
    double *fast_ema = malloc(n * sizeof *fast_ema), *slow_ema = malloc(n * sizeof *slow_ema);
    double *line_sig = malloc(n * sizeof *line_sig);
    if (!fast_ema || !slow_ema || !line_sig) {
        free(fast_ema);
        free(slow_ema);
        free(line_sig);
        return -1;
    }
    /* both EMAs start on bar slow-1: the fast one's seed window ends there too */
    ema_from(in, 0, n, slow, 2.0 / (slow + 1), slow_ema);
    ema_from(in, s - (size_t)fast, n, fast, 2.0 / (fast + 1), fast_ema);
    for (size_t i = s - 1; i < n; i++)
        fast_ema[i] = fast_ema[i] - slow_ema[i];
    /* the signal EMA runs over the MACD line from bar slow-1 */
    ema_from(fast_ema, s - 1, n, signal, 2.0 / (signal + 1), line_sig);
    for (size_t i = first; i < n; i++) {
        macd[i] = fast_ema[i];
        macd_signal[i] = line_sig[i];
        hist[i] = macd[i] - macd_signal[i];
    }
    free(fast_ema);
    free(slow_ema);
    free(line_sig);
    return 0;
}
