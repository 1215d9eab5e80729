/*
 * watch.c - who hears about candle writes (store.h, "changes"): the
 * process's own hooks, which store.c calls after every candle write or
 * delete that changed rows, on any backend; and an_store_listen's dispatch
 * to the backend that can hear other processes (pg/listen.c). Owns the
 * hook registry. Any thread: the writing threads call an_store_changed;
 * the registry's mutex is held while the hooks run, so unwatch returning
 * means its hook is not running (hooks are short and never call the store).
 */
#include "store/store_impl.h"

#include <pthread.h>
#include <stdio.h>

#define MAX_HOOKS 8

static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;
/* guarded by hooks_mu */
static struct {
    an_store_change_fn fn;
    void *ctx;
} hooks[MAX_HOOKS];
static int nhooks;

an_code an_store_watch_local(an_store_change_fn fn, void *ctx, an_err *err)
{
    if (!fn)
        return an_err_set(err, AN_ERR_INVALID, "watch: no hook given");
    pthread_mutex_lock(&hooks_mu);
    int full = nhooks == MAX_HOOKS;
    if (!full) {
        hooks[nhooks].fn = fn;
        hooks[nhooks].ctx = ctx;
        nhooks++;
    }
    pthread_mutex_unlock(&hooks_mu);
    if (full)
        return an_err_set(err, AN_ERR_NOMEM, "watch: already %d hooks", MAX_HOOKS);
    return AN_OK;
}

void an_store_unwatch_local(an_store_change_fn fn, void *ctx)
{
    pthread_mutex_lock(&hooks_mu);
    for (int i = 0; i < nhooks; i++)
        if (hooks[i].fn == fn && hooks[i].ctx == ctx) {
            hooks[i] = hooks[--nhooks];
            break;
        }
    pthread_mutex_unlock(&hooks_mu);
}

void an_store_changed(const char *symbol, const char *tf, int64_t first_ms, int64_t last_ms)
{
    an_store_change ch = {.first_ms = first_ms, .last_ms = last_ms};
    if (symbol) {
        snprintf(ch.symbol, sizeof ch.symbol, "%s", symbol);
        snprintf(ch.timeframe, sizeof ch.timeframe, "%s", tf ? tf : "");
    }
    pthread_mutex_lock(&hooks_mu);
    for (int i = 0; i < nhooks; i++)
        hooks[i].fn(hooks[i].ctx, &ch);
    pthread_mutex_unlock(&hooks_mu);
}

an_code an_store_listen(an_store *s, an_store_change_fn fn, void *ctx, an_store_listener **out,
                        an_err *err)
{
    *out = NULL;
    if (!s || !fn)
        return an_err_set(err, AN_ERR_INVALID, "listen: no store or no hook");
    if (!s->ops->listen)
        return AN_OK;
    return s->ops->listen(s, fn, ctx, out, err);
}

void an_store_listener_stop(an_store_listener *l)
{
    an_pg_listener_stop(l);
}
