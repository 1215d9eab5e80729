/*
 * fallback.c - the primary store, the DuckDB fallback file and the hybrid
 * rule (tasks_internal.h): work runs on the primary first and goes on
 * against the fallback while the primary is unreachable; the fallback file
 * is replayed into the primary once it answers again.
 *
 * Threads: any thread running a task (the command line's main thread, a
 * runtime worker). The fallback store and every use of it are under
 * t->fb_mu, held across its I/O; t->mu is never taken here.
 */
#include <assert.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "tasks/sync.h"
#include "tasks/tasks_internal.h"

static const char *COMPONENT = "tasks";

int an_tasks_fallback_enabled(const an_tasks *t)
{
    return an_config_bool(t->cfg, AN_CFG_FALLBACK) && an_config_has_postgres(t->cfg) &&
           strcmp(an_config_get(t->cfg, AN_CFG_STORE), "duckdb") != 0;
}

int an_tasks_is_outage(an_code c)
{
    return c == AN_ERR_CONNECT || c == AN_ERR_TIMEOUT || c == AN_ERR_IO;
}

an_store *an_tasks_fallback_store_locked(an_tasks *t, an_err *err)
{
    if (t->fb)
        return t->fb;
    an_store_options o = {0};
    o.mode = "duckdb";
    o.duckdb_path = an_config_get(t->cfg, AN_CFG_FALLBACK_PATH);
    o.duckdb_readers = (int)an_config_int(t->cfg, AN_CFG_DUCKDB_READERS);
    an_store *s = NULL;
    if (an_store_open(&o, &s, err) != AN_OK)
        return NULL;
    if (an_store_migrate(s, NULL, err) != AN_OK) {
        an_store_close(s);
        return NULL;
    }
    t->fb = s;
    return s;
}

const char *an_tasks_approach(an_store *s)
{
    switch (an_store_get_mode(s)) {
    case AN_STORE_TIMESCALEDB: return "timescaledb_first";
    case AN_STORE_POSTGRES: return "postgres_first";
    case AN_STORE_DUCKDB: return "duckdb_embedded";
    }
    return "unknown";
}

an_store *an_tasks_primary(an_tasks *t, an_err *err)
{
    return an_service_store(t->svc, err);
}

an_code an_tasks_replay(an_tasks *t, json_t **report, an_err *err)
{
    if (report)
        *report = NULL;
    if (!an_tasks_fallback_enabled(t))
        return AN_OK;
    struct stat stt;
    const char *path = an_config_get(t->cfg, AN_CFG_FALLBACK_PATH);
    pthread_mutex_lock(&t->fb_mu);
    int never_used = !t->fb && stat(path, &stt) != 0;
    pthread_mutex_unlock(&t->fb_mu);
    if (never_used)
        return AN_OK;
    an_err e = {0};
    an_store *p = an_tasks_primary(t, &e);
    if (!p)
        return AN_OK; /* still down: later */
    an_code rc = AN_OK;
    pthread_mutex_lock(&t->fb_mu);
    an_store *fb = an_tasks_fallback_store_locked(t, &e);
    int pending = 0;
    if (!fb) {
        AN_DEBUG(COMPONENT, "msg=\"fallback file not readable now\" error=\"%s\"", e.msg);
    } else if (an_sync_pending(fb, &pending, &e) == AN_OK && pending) {
        AN_INFO(COMPONENT, "msg=\"primary is back: replaying the fallback file\" fallback=\"%s\"",
                path);
        an_sync_stats st;
        rc = an_sync_stores(fb, p, 1, &st, err);
        if (rc == AN_OK) {
            /* runs the primary refused stay in the file (reported by the sync) */
            atomic_store(&t->fallback_active, st.tasks_kept > 0);
            if (report)
                *report = json_pack(
                    "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "from", path, "series",
                    (json_int_t)st.series, "candles", (json_int_t)st.candles, "candles_inserted",
                    (json_int_t)st.candle_counts.inserted, "indicator_series",
                    (json_int_t)st.indicator_series, "indicators", (json_int_t)st.indicators,
                    "tasks", (json_int_t)st.tasks, "tasks_kept", (json_int_t)st.tasks_kept);
        }
    }
    pthread_mutex_unlock(&t->fb_mu);
    return rc;
}

/* The items of a primary run that belong on the fallback: outages, and
 * statement errors while the server no longer answers (it went away). */
static size_t pick_for_fallback(an_tasks *t, an_store *p, an_hybrid *h)
{
    size_t nfb = 0;
    int down = -1;
    for (size_t i = 0; i < h->n; i++) {
        an_code c = h->codes[i];
        if (c == AN_ERR_DB && down < 0) {
            an_err pe = {0};
            down = an_store_ping(p, &pe) != AN_OK && an_tasks_is_outage(pe.code);
        }
        h->todo[i] = c != AN_OK && (an_tasks_is_outage(c) || (c == AN_ERR_DB && down == 1)) &&
                     !atomic_load(&t->stop) && an_tasks_fallback_enabled(t);
        nfb += h->todo[i];
    }
    return nfb;
}

an_code an_tasks_hybrid(an_tasks *t, an_hybrid *h, an_hybrid_fn run, void *ctx, an_err *err)
{
    assert(h->codes && h->todo);
    an_err perr = {0};
    an_store *p = an_tasks_primary(t, &perr);
    h->n_fallback = 0;
    h->fallback_ok = 0;
    h->reason[0] = '\0';
    h->primary_mode = NULL;
    memset(h->todo, 0, h->n);
    if (p) {
        h->approach = an_tasks_approach(p);
        h->mode = h->primary_mode = an_store_mode_name(an_store_get_mode(p));
        an_code rc = run(ctx, p, 0, NULL, h->codes, err);
        if (rc != AN_OK)
            return rc;
        h->n_fallback = pick_for_fallback(t, p, h);
    } else if (an_tasks_is_outage(perr.code) && an_tasks_fallback_enabled(t)) {
        memset(h->todo, 1, h->n);
        h->n_fallback = h->n;
    } else {
        *err = perr;
        return perr.code;
    }
    if (h->n_fallback == 0)
        return AN_OK;
    snprintf(h->reason, sizeof h->reason, "%s", p ? "the primary failed during the run" : perr.msg);
    AN_WARN(COMPONENT,
            "msg=\"TimescaleDB-first approach failed: switching to the DuckDB fallback\" %s "
            "items=%zu reason=\"%.200s\"",
            h->what, h->n_fallback, h->reason);
    h->approach = "duckdb_fallback";
    h->mode = "duckdb";
    /* before fb_mu: recording progress may itself write to the fallback */
    an_tasks_progress(h->rc, h->approach, h->fb_status, 0, (int64_t)h->n_fallback);
    pthread_mutex_lock(&t->fb_mu);
    an_err fe = {0};
    an_store *fb = an_tasks_fallback_store_locked(t, &fe);
    h->fallback_ok = fb != NULL;
    an_code rc = run(ctx, fb, 1, h->todo, h->codes, fb ? err : &fe);
    if (fb && rc == AN_OK)
        atomic_store(&t->fallback_active, 1);
    pthread_mutex_unlock(&t->fb_mu);
    if (!fb && rc != AN_OK)
        *err = fe;
    return rc;
}
