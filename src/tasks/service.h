/*
 * service.h - the long-lived state of `autonama serve`: the configuration
 * and the store, opened lazily and reopened after a failure, so the server
 * keeps answering while the database is down and recovers by itself.
 * Thread-safe: one caller at a time (re)opens the store, with no lock held
 * across the connect and the migration; the others do not queue behind a
 * slow or unreachable database: they get the last open error at once (or,
 * before any open ended, wait for the first one). It also starts the
 * store's listener for whoever watches the writes (an_service_watch: the
 * HTTP server's caches).
 */
#ifndef AN_TASKS_SERVICE_H
#define AN_TASKS_SERVICE_H

#include <pthread.h>

#include "core/config.h"
#include "store/store.h"

typedef struct an_service {
    const an_config *cfg;
    /* guarded by lock (never held across the open) */
    pthread_mutex_t lock;
    pthread_cond_t opened; /* an open attempt ended */
    an_store *store;       /* NULL while it cannot be opened */
    an_err open_err;       /* why, when store is NULL */
    int opening;           /* a caller is opening it now (single flight) */
    int attempts;          /* open attempts that ended */
    /* an_service_watch's hook, and the store's listener started for it once
     * the store is open (NULL where the store has none) */
    an_store_change_fn watch_fn;
    void *watch_ctx;
    an_store_listener *listener;
} an_service;

/* Fills options from the configuration. conninfo (malloc'd, secret) is
 * returned in *conninfo for the caller to free, or NULL for DuckDB. */
an_code an_service_store_options(const an_config *cfg, an_store_options *opt, char **conninfo,
                                 an_err *err);

/* Opens the configured store (the command-line commands use this too). */
an_code an_service_open_store(const an_config *cfg, an_store **out, an_err *err);

void an_service_init(an_service *svc, const an_config *cfg);
/* The store, (re)opening and migrating it if needed; NULL with *err filled
 * when it cannot be opened now. The store stays owned by the service. */
an_store *an_service_store(an_service *svc, an_err *err);
/* Calls fn(ctx) for each candle write that changed rows (store.h's
 * "changes"): this process's own at once, and other processes' through the
 * store's listener, started now or when the store opens (PostgreSQL only;
 * every reconnect of it calls fn with "everything"). One hook per service:
 * a second gets AN_ERR_INVALID. */
an_code an_service_watch(an_service *svc, an_store_change_fn fn, void *ctx, an_err *err);
/* Stops it: when this returns fn is not running and will not be called. */
void an_service_unwatch(an_service *svc);
/* 1 when the watch hook hears every candle write to the store: a hook is
 * set and the store is DuckDB (one process: its own writes) or has a
 * listener (PostgreSQL; while it reconnects, its reconnect says
 * "everything"); 0 otherwise (the PGlite TimescaleDB server, no hook). */
int an_service_hears_all(an_service *svc);
void an_service_destroy(an_service *svc);

#endif
