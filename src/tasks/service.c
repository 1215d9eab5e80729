/*
 * service.c - the serve-time state: the store, opened lazily, and the
 * listener that hears other instances' writes for the watch hook (see
 * service.h). Any thread; the listener runs on its own (store/pg/listen.c).
 */
#include "tasks/service.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

an_code an_service_store_options(const an_config *cfg, an_store_options *opt, char **conninfo,
                                 an_err *err)
{
    memset(opt, 0, sizeof *opt);
    *conninfo = NULL;
    const char *mode = an_config_get(cfg, AN_CFG_STORE);
    if (an_config_has_postgres(cfg) && strcmp(mode, "duckdb") != 0) {
        *conninfo = an_config_pg_conninfo(cfg);
        if (!*conninfo)
            return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    opt->pg_conninfo = *conninfo;
    opt->pool_size = (int)an_config_int(cfg, AN_CFG_PG_POOL_SIZE);
    opt->connect_timeout_s = (int)an_config_int(cfg, AN_CFG_CONNECT_TIMEOUT);
    opt->mode = mode;
    opt->duckdb_path = an_config_get(cfg, AN_CFG_DUCKDB_PATH);
    opt->duckdb_readers = (int)an_config_int(cfg, AN_CFG_DUCKDB_READERS);
    opt->compress_after = an_config_get(cfg, AN_CFG_COMPRESS_AFTER);
    opt->retention = an_config_get(cfg, AN_CFG_RETENTION);
    return AN_OK;
}

an_code an_service_open_store(const an_config *cfg, an_store **out, an_err *err)
{
    an_store_options opt;
    char *conninfo = NULL;
    an_code rc = an_service_store_options(cfg, &opt, &conninfo, err);
    if (rc == AN_OK)
        rc = an_store_open(&opt, out, err);
    if (conninfo) {
        memset(conninfo, 0, strlen(conninfo));
        free(conninfo);
    }
    return rc;
}

void an_service_init(an_service *svc, const an_config *cfg)
{
    memset(svc, 0, sizeof *svc);
    svc->cfg = cfg;
    pthread_mutex_init(&svc->lock, NULL);
    pthread_cond_init(&svc->opened, NULL);
}

/* Opens and migrates the store; no lock held (it may take the connect
 * timeout). */
static an_store *open_and_migrate(const an_config *cfg, an_err *e)
{
    an_store *s = NULL;
    if (an_service_open_store(cfg, &s, e) != AN_OK)
        return NULL;
    int applied = 0;
    if (an_store_migrate(s, &applied, e) != AN_OK) {
        AN_WARN("service", "msg=\"migrate failed\" error=\"%s\"", e->msg);
        an_store_close(s);
        return NULL;
    }
    return s;
}

/* Starts the store's listener for the watch hook, if both are there and it
 * is not running yet (a thread start: quick, no I/O). lock held. */
static void start_listener_locked(an_service *svc)
{
    if (!svc->watch_fn || !svc->store || svc->listener)
        return;
    an_err e = {0};
    if (an_store_listen(svc->store, svc->watch_fn, svc->watch_ctx, &svc->listener, &e) != AN_OK)
        AN_WARN("service", "msg=\"cannot hear other instances' writes\" error=\"%s\"", e.msg);
}

an_code an_service_watch(an_service *svc, an_store_change_fn fn, void *ctx, an_err *err)
{
    pthread_mutex_lock(&svc->lock);
    int taken = svc->watch_fn != NULL;
    if (!taken) {
        svc->watch_fn = fn;
        svc->watch_ctx = ctx;
    }
    pthread_mutex_unlock(&svc->lock);
    if (taken)
        return an_err_set(err, AN_ERR_INVALID, "the store's writes are already watched");
    an_code rc = an_store_watch_local(fn, ctx, err);
    pthread_mutex_lock(&svc->lock);
    if (rc == AN_OK) {
        start_listener_locked(svc);
    } else {
        svc->watch_fn = NULL;
        svc->watch_ctx = NULL;
    }
    pthread_mutex_unlock(&svc->lock);
    return rc;
}

void an_service_unwatch(an_service *svc)
{
    pthread_mutex_lock(&svc->lock);
    an_store_change_fn fn = svc->watch_fn;
    void *ctx = svc->watch_ctx;
    an_store_listener *l = svc->listener;
    svc->watch_fn = NULL;
    svc->watch_ctx = NULL;
    svc->listener = NULL;
    pthread_mutex_unlock(&svc->lock);
    an_store_listener_stop(l); /* joins its thread: not under the lock */
    if (fn)
        an_store_unwatch_local(fn, ctx);
}

int an_service_hears_all(an_service *svc)
{
    pthread_mutex_lock(&svc->lock);
    int all = svc->watch_fn && svc->store &&
              (svc->listener || an_store_get_mode(svc->store) == AN_STORE_DUCKDB);
    pthread_mutex_unlock(&svc->lock);
    return all;
}

an_store *an_service_store(an_service *svc, an_err *err)
{
    pthread_mutex_lock(&svc->lock);
    /* someone else is opening: take the last failure at once; before the
     * first attempt ended there is none, so wait for it */
    while (!svc->store && svc->opening && svc->attempts == 0)
        pthread_cond_wait(&svc->opened, &svc->lock);
    if (!svc->store && !svc->opening) {
        svc->opening = 1;
        pthread_mutex_unlock(&svc->lock);
        an_err e = {0};
        an_store *s = open_and_migrate(svc->cfg, &e);
        pthread_mutex_lock(&svc->lock);
        assert(svc->opening && !svc->store);
        svc->opening = 0;
        svc->attempts++;
        if (s) {
            svc->store = s;
            an_err_clear(&svc->open_err);
            start_listener_locked(svc);
        } else if (memcmp(&svc->open_err, &e, sizeof e) != 0) {
            AN_WARN("service", "msg=\"store unavailable\" error=\"%s\"", e.msg);
            svc->open_err = e;
        }
        pthread_cond_broadcast(&svc->opened);
    }
    an_store *s = svc->store;
    if (!s && err)
        *err = svc->open_err;
    pthread_mutex_unlock(&svc->lock);
    return s;
}

void an_service_destroy(an_service *svc)
{
    an_service_unwatch(svc);
    an_store_close(svc->store);
    svc->store = NULL;
    pthread_cond_destroy(&svc->opened);
    pthread_mutex_destroy(&svc->lock);
}
