/*
 * indicators.h - technical indicators, each exactly as TA-Lib computes it
 * (same seeding, same summation order, same zero tests), so values match
 * TA-Lib's to the last bits and the warm-up is the same.
 *
 * Every function reads in[0..n) and writes out[0..n): NAN where TA-Lib has
 * no value (the warm-up, or n too short), the value elsewhere. The recursive
 * ones (EMA, RSI, MACD) depend on where the series starts: callers pass the
 * whole stored series from a fixed anchor (see docs/decisions.md). Pure
 * functions, no allocation except an_ind_macd's scratch; thread-safe.
 */
#ifndef AN_ANALYTICS_INDICATORS_H
#define AN_ANALYTICS_INDICATORS_H

#include <stddef.h>

/* Simple moving average; first value at index period-1. */
void an_ind_sma(const double *in, size_t n, int period, double *out);

/* Exponential moving average, k = 2/(period+1), seeded with the SMA of the
 * first period values (TA-Lib's default compatibility); first value at
 * index period-1. */
void an_ind_ema(const double *in, size_t n, int period, double *out);

/* Relative strength index with Wilder's smoothing; first value at index
 * period; 0 when a window has no movement. */
void an_ind_rsi(const double *in, size_t n, int period, double *out);

/* Bollinger Bands around the SMA, population standard deviation; first
 * value at index period-1. */
void an_ind_bbands(const double *in, size_t n, int period, double nbdevup, double nbdevdn,
                   double *upper, double *middle, double *lower);

/* MACD(fast, slow, signal): both EMAs seeded on the bar where the slow one
 * starts; first value at index (slow-1)+(signal-1). Returns 0, or -1 when
 * out of memory (outputs then all NAN). */
int an_ind_macd(const double *in, size_t n, int fast, int slow, int signal, double *macd,
                double *macd_signal, double *hist);

#endif
