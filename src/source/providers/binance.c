/*
 * providers/binance.c - crypto from Binance's spot REST API: the provider
 * face of source/binance.h (klines in pages of 1,000, exchangeInfo, the
 * server clock, one shared weight limiter per run).
 */
#include "source/binance.h"
#include "source/provider.h"

static void *shared_new(const an_provider_options *o)
{
    return an_binance_limiter_new(o->weight_budget);
}

static void shared_free(void *shared)
{
    an_binance_limiter_free(shared);
}

static an_code open_(const an_provider_options *o, void *shared, void **impl, an_err *err)
{
    an_binance_options bo = {0};
    bo.base_url = o->source;
    bo.timeout_ms = o->timeout_ms;
    bo.max_tries = o->max_tries;
    bo.backoff_ms = o->backoff_ms;
    bo.limiter = shared;
    bo.stop_flag = o->stop_flag;
    return an_binance_open(&bo, (an_binance **)impl, err);
}

static void close_(void *impl)
{
    an_binance_close(impl);
}

static an_code symbol_exists(void *impl, const char *symbol, int *exists, an_err *err)
{
    return an_binance_symbol_info(impl, symbol, exists, err);
}

static an_code now(void *impl, int64_t *ms, an_err *err)
{
    return an_binance_server_time(impl, ms, err);
}

static an_code fetch(void *impl, const char *symbol, const char *tf, int64_t from, int64_t to,
                     an_candles *out, size_t *rows, an_err *err)
{
    return an_binance_klines(impl, symbol, tf, from, to, 1000, out, rows, err);
}

static void stats(void *impl, an_provider_stats *out)
{
    an_binance_stats s;
    an_binance_get_stats(impl, &s);
    out->requests = s.requests;
    out->retries = s.retries;
    out->rate_limited = s.rate_limited;
    out->refused_replies = s.refused_replies;
}

const an_provider_ops an_provider_binance = {
    .name = "binance",
    .description = "Binance spot REST klines (BINANCE_BASE_URL)",
    .page_max = 1000,
    .shared_new = shared_new,
    .shared_free = shared_free,
    AN_PROVIDER_CONNECTION_OPS,
};
