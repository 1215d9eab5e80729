/*
 * ingest.h - the seed's update_market_data for crypto: fetch Binance klines
 * into the store, symbols in parallel (bounded), pages of 1,000, smart
 * incremental updates (from the newest stored candle, which may have been
 * the open one), backfill of a range, repair of holes inside it, and --force
 * to refetch a range whatever is stored. Every page is validated by the
 * client before it reaches the store.
 */
#ifndef AN_TASKS_INGEST_H
#define AN_TASKS_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "store/store.h"

typedef struct an_ingest_options {
    const char *base_url;
    const char *const *symbols;
    size_t n_symbols;
    const char *timeframe;
    int64_t since_ms; /* INT64_MIN: incremental from the newest stored candle */
    int64_t until_ms; /* INT64_MAX: up to the exchange's clock */
    int64_t lookback; /* candles to fetch for a symbol with none stored and no since */
    int force;        /* refetch [since, until) even where candles are stored */
    int parallel;     /* symbols fetched at once (1..16) */
    int timeout_ms, max_tries, backoff_ms, weight_budget;
    volatile const int *stop; /* set by a signal handler: stop between pages */
    int progress;             /* a live progress line on stderr */
} an_ingest_options;

typedef struct an_ingest_symbol {
    char symbol[AN_SYMBOL_MAX];
    an_code status; /* AN_OK, or why the symbol failed */
    char error[AN_ERR_MSG_MAX];
    int skipped; /* already fresh: nothing to fetch */
    int64_t fetched, inserted, updated, unchanged;
    int64_t requests, retries, refused;
    int holes; /* holes inside the range that were refetched */
} an_ingest_symbol;

/* Runs the update; results[i] (n_symbols of them, caller-allocated) says
 * what happened to each symbol. Returns AN_OK when the run itself could go
 * on (individual symbols may still have failed: see results). */
an_code an_ingest_run(an_store *s, const an_ingest_options *o, an_ingest_symbol *results,
                      an_err *err);

#endif
