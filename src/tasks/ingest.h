/*
 * ingest.h - the seed's update_market_data for one category: fetch candles
 * from the category's provider (source/provider.h: Binance klines for crypto
 * by default) into the store, symbols in parallel (bounded), page by page,
 * smart incremental updates (from the newest stored candle, which may have
 * been the open one), backfill of a range, repair of holes inside it, and
 * --force to refetch a range whatever is stored. Every page is validated by
 * the provider before it reaches the store; store writes overlap fetching
 * (one batch in flight per symbol).
 */
#ifndef AN_TASKS_INGEST_H
#define AN_TASKS_INGEST_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "store/store.h"

typedef struct an_ingest_options {
    const char *category; /* NULL: "crypto" (for logs and results) */
    const char *provider; /* NULL: "binance" */
    const char *source;   /* the provider's location; NULL: base_url */
    const char *base_url; /* Binance's (BINANCE_BASE_URL) */
    const char *const *symbols;
    size_t n_symbols;
    const char *timeframe;
    int64_t since_ms; /* INT64_MIN: incremental from the newest stored candle */
    int64_t until_ms; /* INT64_MAX: up to the exchange's clock */
    int64_t lookback; /* candles to fetch for a symbol with none stored and no since */
    int force;        /* refetch [since, until) even where candles are stored */
    int parallel;     /* symbols fetched at once (1..16) */
    int timeout_ms, max_tries, backoff_ms, weight_budget;
    const atomic_int *stop; /* set on shutdown or a signal: stop between pages */
    int progress;           /* a live progress line on stderr */
} an_ingest_options;

typedef struct an_ingest_symbol {
    char symbol[AN_SYMBOL_MAX];
    an_code status; /* AN_OK, or why the symbol failed */
    char error[AN_ERR_MSG_MAX];
    int skipped; /* already fresh: nothing to fetch */
    int64_t fetched, inserted, updated, unchanged;
    int64_t requests, retries, refused, rate_limited;
    int holes; /* holes inside the range that were refetched */
} an_ingest_symbol;

/* Runs the update; after it the 1h/1d rollups are refreshed over what was
 * written (1m candles). results[i] (n_symbols of them, caller-allocated) says
 * what happened to each symbol. Returns AN_OK when the run itself could go
 * on (individual symbols may still have failed: see results). */
an_code an_ingest_run(an_store *s, const an_ingest_options *o, an_ingest_symbol *results,
                      an_err *err);

/* How the per-symbol threads are started: pthread_create, unless a test
 * replaces it (to make one fail as under RLIMIT_NPROC); NULL restores it.
 * Not thread-safe: call it while no run is going. */
typedef int (*an_thread_create_fn)(pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
                                   void *arg);
void an_ingest_set_thread_create(an_thread_create_fn fn);

#endif
