/*
 * http_watch.c - what the store's writes make stale in the HTTP server:
 * each change heard (store.h's "changes": this process's writes at once,
 * other instances' through the service's LISTEN thread on PostgreSQL)
 * drops the reply-cache entries of that symbol and every entry that names
 * no symbol (the lists, health: any series may matter to them), and the
 * routes' cached series list; "everything" (a TRUNCATE, a listener's
 * reconnect) drops them all. Per symbol, not per block of time: an entry
 * knows its symbol (a hash, http.c's cache_put), not which rows its reply
 * covers, and the next request recomputes a dropped reply in one query.
 * The generations bumped here, under the cache's write lock, keep a reply
 * computed from a read begun before the change out of the cache (it is
 * still sent): one per bucket of symbols (64), so a write of one symbol
 * does not keep other symbols' replies out (the live path writes every
 * series each second), one for "everything", and one moved by any change
 * for the replies naming no symbol. The block cache (blocks.h) drops, by
 * block of time, the closed history the write touched. Runs on the writing
 * thread or the listener's; takes cache.lock for writing, then the block
 * cache's lock, then the routes' series lock, never two at once.
 */
#include "api/http_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

uint64_t an_http_symbol_hash(const char *symbol)
{
    uint64_t x = an_reply_hash(symbol, strlen(symbol));
    return x ? x : 1;
}

uint64_t an_http_cache_gen(an_http_server *h, uint64_t symbol_hash)
{
    if (!symbol_hash)
        return atomic_load(&h->gen.any);
    return atomic_load(&h->gen.every) + atomic_load(&h->gen.sym[symbol_hash % GEN_BUCKETS]);
}

static void changed(void *ctx, const an_store_change *ch)
{
    an_http_server *h = ctx;
    uint64_t sym = ch->symbol[0] ? an_http_symbol_hash(ch->symbol) : 0;
    uint64_t dropped = 0;
    pthread_rwlock_wrlock(&h->cache.lock);
    atomic_fetch_add(&h->gen.any, 1);
    atomic_fetch_add(sym ? &h->gen.sym[sym % GEN_BUCKETS] : &h->gen.every, 1);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        cache_entry *e = &h->cache.slot[i];
        if (!e->resp || (sym && e->symbol_hash && e->symbol_hash != sym))
            continue;
        MHD_destroy_response(e->resp); /* a connection sending it holds its own reference */
        free(e->key);
        e->resp = NULL;
        e->key = NULL;
        dropped++;
    }
    pthread_rwlock_unlock(&h->cache.lock);
    atomic_fetch_add(&h->cache_dropped, dropped);
    /* a pass lists the catalog: not for the live path's write of an open
     * candle each second, only when blocks were dropped or may have closed */
    if (an_api_blocks_drop(h->blocks, ch))
        an_api_warm_again(h->warm);
    an_api_state_changed(h->state);
}

void an_http_watch_start(an_http_server *h)
{
    if (!an_config_bool(h->cfg, AN_CFG_HTTP_CACHE_LISTEN))
        return;
    an_err e = {0};
    /* the warming thread first, so h->warm is set before the hook can read
     * it; it waits for the first an_api_warm_again, once the hook is on */
    if (an_config_bool(h->cfg, AN_CFG_HTTP_BLOCK_WARM) &&
        an_api_warm_start(h->blocks, h->svc, &h->warm, &e) != AN_OK)
        AN_WARN("http", "msg=\"the block cache fills as requests ask\" error=\"%s\"", e.msg);
    if (an_service_watch(h->svc, changed, h, &e) != AN_OK) {
        AN_WARN("http", "msg=\"cached replies will last their TTL\" error=\"%s\"", e.msg);
        an_api_warm_stop(h->warm);
        h->warm = NULL;
        return;
    }
    h->watching = 1;
    an_api_warm_again(h->warm);
}

void an_http_watch_stop(an_http_server *h)
{
    if (h->watching)
        an_service_unwatch(h->svc);
    h->watching = 0;
    /* after the hook (which wakes it) is gone, before the blocks go */
    an_api_warm_stop(h->warm);
    h->warm = NULL;
}
