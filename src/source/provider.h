/*
 * provider.h - where candles come from: one interface, one provider per
 * source (curl's backends behind a table of function pointers).
 *
 * A provider serves candles of (symbol, timeframe) in pages, oldest first,
 * every page already validated: Binance's REST klines (crypto), the candle
 * file importer (any category: a directory of files), and whatever is added
 * next. A category of the configuration (crypto, forex, stock, commodity)
 * names its provider and where that provider reads from.
 *
 * Adding a REST provider is one new file, src/source/providers/NAME.c, that
 * defines `const an_provider_ops an_provider_NAME` (see binance.c and files.c
 * there; AN_PROVIDER_CONNECTION_OPS binds its connection functions): the
 * build lists that folder and generates the registry, so nothing else
 * changes.
 *
 * An an_provider is one connection (one keep-alive HTTP connection, one open
 * file set): use one per thread. Providers opened with the same shared pacing
 * state (an_provider_shared) pace their requests together.
 */
#ifndef AN_SOURCE_PROVIDER_H
#define AN_SOURCE_PROVIDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/market.h"

typedef struct an_provider_options {
    const char *source;          /* the provider's location: a base URL, a directory */
    int timeout_ms;              /* per request */
    int max_tries;               /* per request */
    int backoff_ms;              /* first retry delay */
    int weight_budget;           /* request weight per minute, for providers that pace */
    const atomic_int *stop_flag; /* when set, waits end early */
} an_provider_options;

typedef struct an_provider_stats {
    int64_t requests, retries, rate_limited, refused_replies;
} an_provider_stats;

typedef struct an_provider_ops {
    const char *name;        /* "binance", "files" */
    const char *description; /* one line for --help and errors */
    size_t page_max;         /* most candles one fetch returns */
    /* State shared by every connection of one run (a rate limiter); may be
     * NULL when the provider has none. */
    void *(*shared_new)(const an_provider_options *o);
    void (*shared_free)(void *shared);
    an_code (*open)(const an_provider_options *o, void *shared, void **impl, an_err *err);
    void (*close)(void *impl);
    /* *exists = 0 when the source does not have the symbol at all. */
    an_code (*symbol_exists)(void *impl, const char *symbol, int *exists, an_err *err);
    /* The source's clock (ms): candles that open after it do not exist yet,
     * and the one containing it is still open. */
    an_code (*now)(void *impl, int64_t *ms, an_err *err);
    /* Candles of [from, to] (open times, inclusive), oldest first, at most
     * page_max, appended to out after validation; *rows gets how many. */
    an_code (*fetch)(void *impl, const char *symbol, const char *tf, int64_t from, int64_t to,
                     an_candles *out, size_t *rows, an_err *err);
    void (*stats)(void *impl, an_provider_stats *out);
} an_provider_ops;

/* The connection members of a provider's table, bound to the static
 * functions every provider file defines under these names (open_, close_,
 * symbol_exists, now, fetch, stats): one binding for every provider. */
#define AN_PROVIDER_CONNECTION_OPS                                                                 \
    .open = open_, .close = close_, .symbol_exists = symbol_exists, .now = now, .fetch = fetch,    \
    .stats = stats

/* The provider named name, or NULL. */
const an_provider_ops *an_provider_find(const char *name);

/* Every provider, NULL-terminated, in name order. */
const an_provider_ops *const *an_provider_all(void);

/* The categories autonama knows, NULL-terminated: crypto, forex, stock,
 * commodity. */
const char *const *an_provider_categories(void);

/* 1 when name is one of an_provider_categories(). */
int an_provider_category_valid(const char *name);

#endif
