/*
 * runtime.c - the serve runtime (an_tasks_start .. an_tasks_shutdown): the
 * beat thread that drives the schedule (scheduler.h) and the workers of one
 * work queue (core/workq.h) that run its jobs and the submitted runs; the
 * Prometheus lines.
 *
 * Threads: the thread that owns the an_tasks (serve's main thread) calls
 * start, shutdown and free; the beat thread fires entries and sends
 * heartbeats; the queue's workers run jobs; submit and metrics come from
 * HTTP workers. t->mu guards the schedule, the entries, the running-run
 * table and the counters, and is never held across I/O: the beat queues
 * jobs under it (mu, then the queue's lock), heartbeats and runs happen
 * with it released.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/thread.h"
#include "tasks/tasks_internal.h"

static const char *COMPONENT = "tasks";

#define HEARTBEAT_MS 5000

/* How often a run heartbeats: every 5 s, or four times within
 * AUTONAMA_TASK_STALE_AFTER when that is shorter, so no live run looks stale. */
static int64_t heartbeat_every_ms(const an_tasks *t)
{
    int64_t every = an_config_int(t->cfg, AN_CFG_TASK_STALE_AFTER) * 1000 / 4;
    return every > 0 && every < HEARTBEAT_MS ? every : HEARTBEAT_MS;
}

char *an_tasks_metrics(an_tasks *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    int queued = 0, running = 0;
    pthread_mutex_lock(&t->mu);
    an_workq *q = t->started ? t->q : NULL; /* q lives until an_tasks_free */
    pthread_mutex_unlock(&t->mu);
    if (q)
        an_workq_counts(q, &queued, &running);
    pthread_mutex_lock(&t->mu);
    fprintf(f, "# HELP autonama_task_runs_total Task runs finished by this process, by state.\n");
    fprintf(f, "# TYPE autonama_task_runs_total counter\n");
    for (int s = AN_TASK_SUCCESS; s <= AN_TASK_INTERRUPTED; s++)
        fprintf(f, "autonama_task_runs_total{state=\"%s\"} %" PRId64 "\n",
                an_task_state_name((an_task_state)s), t->by_state[s]);
    running = 0;
    for (int i = 0; i <= AN_TASKS_MAX_WORKERS; i++)
        running += t->run[i].used;
    fprintf(f, "# HELP autonama_task_runs Task runs of this process now, by state.\n");
    fprintf(f, "# TYPE autonama_task_runs gauge\n");
    fprintf(f, "autonama_task_runs{state=\"PENDING\"} %d\n", queued);
    fprintf(f, "autonama_task_runs{state=\"PROGRESS\"} %d\n", running);
    fprintf(f, "# HELP autonama_fallback_active 1 while data sits in the DuckDB fallback file.\n");
    fprintf(f, "# TYPE autonama_fallback_active gauge\n");
    fprintf(f, "autonama_fallback_active %d\n", atomic_load(&t->fallback_active));
    const an_sched *sched = t->sched; /* published whole, under t->mu */
    if (sched) {
        fprintf(f, "# HELP autonama_schedule_firings_total Beat schedule firings.\n");
        fprintf(f, "# TYPE autonama_schedule_firings_total counter\n");
        for (int i = 0; i < an_sched_count(sched); i++) {
            an_sched_stats st;
            an_sched_entry_stats(sched, i, &st);
            fprintf(f, "autonama_schedule_firings_total{entry=\"%s\"} %" PRId64 "\n",
                    an_sched_entry_name(sched, i), st.fired);
        }
    }
    pthread_mutex_unlock(&t->mu);
    fclose(f);
    return buf;
}

/* ---- jobs ------------------------------------------------------------------- */

static an_job *new_job(int entry, const char *name, const char *symbol, const char *slot,
                       json_t *args)
{
    an_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->entry = entry;
    snprintf(j->name, sizeof j->name, "%s", name);
    snprintf(j->symbol, sizeof j->symbol, "%s", symbol ? symbol : "");
    snprintf(j->slot, sizeof j->slot, "%s", slot ? slot : "");
    j->args = args;
    return j;
}

/* A job of a firing has ended (ran, or was discarded): the firing is done
 * when it was the last. */
static void job_done_locked(an_tasks *t, const an_job *j)
{
    if (j->entry < 0)
        return;
    assert(j->entry < AN_TASKS_MAX_ENTRIES && t->entries[j->entry].pending > 0);
    if (--t->entries[j->entry].pending == 0)
        an_sched_step(t->sched, AN_SCHED_DONE, j->entry);
}

static void free_job(an_job *j)
{
    json_decref(j->args);
    free(j);
}

/* Queues one job of a firing of entry: tag (a symbol, "category:NAME", or
 * NULL) names its slot and advisory lock; takes ownership of args. */
static void fire_job_locked(an_tasks *t, int entry, const char *ename, const char *tag,
                            int64_t slot_ms, json_t *args)
{
    an_beat_entry *be = &t->entries[entry];
    /* the period: its start and its length (periods of two intervals may
     * start at the same instant, e.g. on the hour, and are not one period;
     * the start alone made an hourly run skip the hour a 1 s schedule of
     * the same entry had claimed) */
    char slot[160];
    snprintf(slot, sizeof slot, "%s|%s|%" PRId64 "|%" PRId64, ename, tag ? tag : "-", slot_ms,
             be->interval_ms);
    an_job *j = new_job(entry, be->task, tag, slot, args);
    if (!j) {
        json_decref(args);
        return;
    }
    if (!an_workq_push(t->q, &j->work)) { /* closed: shutting down */
        free_job(j);
        return;
    }
    be->pending++;
}

/* The scheduler's fire callback (t->mu held): one job per symbol. */
static void on_fire(void *ctx, int entry, int64_t slot_ms)
{
    an_tasks *t = ctx;
    an_beat_entry *be = &t->entries[entry];
    const char *ename = an_sched_entry_name(t->sched, entry);
    size_t n = be->symbols ? be->n : 1;
    be->pending = 0; /* workers count it down under t->mu, held here throughout */
    /* update_market_data: the entry's symbols are crypto's; every other
     * configured category is one job over its own symbols */
    int update = strcmp(be->task, "update_market_data") == 0;
    char **cats = NULL;
    size_t ncat = 0;
    an_err ce = {0};
    int crypto = 1;
    if (update && an_config_categories(t->cfg, &cats, &ncat, &ce) == AN_OK) {
        crypto = 0;
        for (size_t c = 0; c < ncat; c++)
            crypto |= strcmp(cats[c], "crypto") == 0;
    }
    for (size_t i = 0; crypto && i < n; i++) {
        const char *sym = be->symbols ? be->symbols[i] : NULL;
        json_t *args = sym ? json_pack("{s:[s]}", "symbols", sym) : json_object();
        if (update)
            json_object_set_new(args, "categories", json_string("crypto"));
        fire_job_locked(t, entry, ename, sym, slot_ms, args);
    }
    for (size_t c = 0; c < ncat; c++) {
        if (strcmp(cats[c], "crypto") == 0)
            continue;
        char tag[48];
        snprintf(tag, sizeof tag, "category:%s", cats[c]);
        fire_job_locked(t, entry, ename, tag, slot_ms, json_pack("{s:s}", "categories", cats[c]));
    }
    an_config_free_list(cats, ncat);
    AN_DEBUG(COMPONENT, "msg=\"fired\" entry=%s jobs=%d", ename, be->pending);
    if (be->pending == 0)
        an_sched_step(t->sched, AN_SCHED_DONE, entry);
}

/* The queue's run callback, on a worker: one job, no lock held. */
static void run_job(an_work *w, void *ctx)
{
    an_tasks *t = ctx;
    an_job *j = (an_job *)w;
    json_t *res = NULL;
    an_err err = {0};
    if (j->id[0]) {
        an_tasks_replay(t, NULL, &err);
        an_tasks_run_one(t, j->name, j->args, NULL, NULL, j->id, NULL, &res, &err);
    } else {
        int ran = 0;
        an_tasks_run_locked(t, j->name, j->args, j->symbol[0] ? j->symbol : NULL,
                            j->slot[0] ? j->slot : NULL, &ran, &res, &err);
    }
    json_decref(res);
    pthread_mutex_lock(&t->mu);
    job_done_locked(t, j);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    free_job(j);
}

/* ---- the beat ----------------------------------------------------------------- */

/* The ids of the runs going now (copied under mu); their number. */
static int running_ids(an_tasks *t, char ids[][AN_TASK_ID_MAX])
{
    int n = 0;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i <= AN_TASKS_MAX_WORKERS; i++)
        if (t->run[i].used)
            snprintf(ids[n++], AN_TASK_ID_MAX, "%s", t->run[i].id);
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* The running runs' heartbeats (the ids copied under mu, written without it). */
static void heartbeats(an_tasks *t)
{
    char ids[AN_TASKS_MAX_WORKERS + 1][AN_TASK_ID_MAX];
    int n = running_ids(t, ids);
    if (n == 0)
        return;
    an_err e = {0};
    an_store *p = an_tasks_primary(t, &e);
    for (int i = 0; p && i < n; i++)
        if (an_store_task_heartbeat(p, ids[i], an_now_ms(), &e) != AN_OK)
            break;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The heartbeat thread of runs outside the serve runtime: beats until
 * hb_stop, waiting on t->cv (the beat thread's, which does not run then). */
static void *oneshot_heartbeat(void *arg)
{
    an_thread_name("an-run-beat");
    an_tasks *t = arg;
    pthread_mutex_lock(&t->mu);
    while (!t->hb_stop) {
        int64_t until = mono_ms() + heartbeat_every_ms(t);
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
        while (!t->hb_stop && mono_ms() < until)
            pthread_cond_timedwait(&t->cv, &t->mu, &ts);
        if (t->hb_stop)
            break;
        pthread_mutex_unlock(&t->mu);
        heartbeats(t);
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

int an_tasks_heartbeat_begin(an_tasks *t)
{
    pthread_mutex_lock(&t->mu);
    t->hb_stop = 0;
    pthread_mutex_unlock(&t->mu);
    if (pthread_create(&t->hb, NULL, oneshot_heartbeat, t) != 0) {
        AN_WARN(COMPONENT, "msg=\"cannot start the heartbeat thread: the run may look stale\"");
        return 0;
    }
    return 1;
}

void an_tasks_heartbeat_end(an_tasks *t, int begun)
{
    if (!begun)
        return;
    an_thread_stop_join(&t->mu, &t->cv, &t->hb_stop, t->hb);
}

static void *beat(void *arg)
{
    an_thread_name("an-scheduler");
    an_tasks *t = arg;
    int64_t last_hb = INT64_MIN;
    pthread_mutex_lock(&t->mu);
    while (an_sched_get_state(t->sched) == AN_SCHED_RUNNING && !atomic_load(&t->stop)) {
        int64_t next = an_sched_step(t->sched, AN_SCHED_TICK, -1);
        int64_t now = t->clock.now_ms(t->clock.ctx);
        int64_t mono = mono_ms();
        if (last_hb == INT64_MIN || mono - last_hb >= heartbeat_every_ms(t)) {
            last_hb = mono;
            pthread_mutex_unlock(&t->mu);
            heartbeats(t);
            pthread_mutex_lock(&t->mu);
            continue;
        }
        int64_t wait = next == INT64_MAX ? 1000 : next - now;
        if (wait > 1000)
            wait = 1000;
        if (wait < 10)
            wait = 10;
        /* the deadline on the monotonic clock (t->cv's): a wall-clock step
         * neither stalls nor hurries the beat */
        int64_t until = mono + wait;
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Splits a list setting ("" -> AUTONAMA_SYMBOLS). */
static an_code entry_symbols(an_tasks *t, an_cfg_key key, an_beat_entry *be, an_err *err)
{
    const char *v = an_config_get(t->cfg, key);
    if (!v || !*v)
        return an_config_symbols(t->cfg, &be->symbols, &be->n, err);
    an_config c = *t->cfg;
    c.val[AN_CFG_SYMBOLS] = (char *)v;
    return an_config_symbols(&c, &be->symbols, &be->n, err);
}

/* The beat's entries (the seed's beat schedule). */
static an_code add_entries(an_tasks *t, an_sched *sched, an_err *err)
{
    an_err local_err; /* err may be NULL (error.h): this function reads the code */
    if (!err)
        err = &local_err;
    static const struct {
        const char *entry, *task;
        an_cfg_key interval, symbols;
    } BEAT[] = {
        {"update-market-data", "update_market_data", AN_CFG_BEAT_UPDATE_INTERVAL,
         AN_CFG_BEAT_UPDATE_SYMBOLS},
        {"calculate-indicators", "calculate_indicators_for_symbol", AN_CFG_BEAT_INDICATORS_INTERVAL,
         AN_CFG_BEAT_INDICATORS_SYMBOLS},
        {"health-check", "health_check", AN_CFG_BEAT_HEALTH_INTERVAL, AN_CFG__COUNT},
    };
    for (size_t i = 0; i < sizeof BEAT / sizeof BEAT[0]; i++) {
        assert(an_tasks_find(BEAT[i].task));
        long iv = an_config_int(t->cfg, BEAT[i].interval);
        int idx = an_sched_add(sched, BEAT[i].entry, (int64_t)iv * 1000, iv > 0);
        if (idx < 0 || idx >= AN_TASKS_MAX_ENTRIES)
            return an_err_set(err, AN_ERR_INTERNAL, "no room for beat entry %s", BEAT[i].entry);
        an_beat_entry *be = &t->entries[idx];
        snprintf(be->task, sizeof be->task, "%s", BEAT[i].task);
        be->interval_ms = (int64_t)iv * 1000;
        if (BEAT[i].symbols != AN_CFG__COUNT && entry_symbols(t, BEAT[i].symbols, be, err) != AN_OK)
            return err->code;
        AN_INFO(COMPONENT, "msg=\"beat entry\" entry=%s task=%s every_s=%ld enabled=%d symbols=%zu",
                BEAT[i].entry, BEAT[i].task, iv, iv > 0, be->n);
    }
    return AN_OK;
}

an_code an_tasks_start(an_tasks *t, const an_clock *clock, an_err *err)
{
    an_err local_err; /* err may be NULL (error.h): this function reads the code */
    if (!err)
        err = &local_err;
    assert(!t->started);
    /* once only: a submit or /metrics may still hold the first start's
     * queue, which lives until an_tasks_free */
    if (t->sched)
        return an_err_set(err, AN_ERR_UNSUPPORTED,
                          "the task runtime was started before: it starts once (make a new one)");
    t->clock = *clock;
    /* runs of instances that died (no heartbeat), and our own name's leftovers */
    an_err e = {0};
    an_store *p = an_tasks_primary(t, &e);
    int n = 0;
    int64_t now = an_now_ms();
    if (p &&
        an_store_task_interrupt_stale(
            p, an_config_is_set(t->cfg, AN_CFG_INSTANCE) ? t->instance : NULL,
            now - an_config_int(t->cfg, AN_CFG_TASK_STALE_AFTER) * 1000, now, &n, &e) == AN_OK &&
        n > 0)
        AN_WARN(COMPONENT, "msg=\"runs of a stopped instance marked INTERRUPTED\" runs=%d", n);
    /* built whole, then published under t->mu: /metrics reads it under
     * that lock from the HTTP threads, which run already */
    an_sched *sched = an_sched_new(t->clock, on_fire, t);
    if (!sched)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    if (add_entries(t, sched, err) != AN_OK) {
        an_sched_free(sched);
        return err->code;
    }
    pthread_mutex_lock(&t->mu);
    t->sched = sched;
    pthread_mutex_unlock(&t->mu);
    int nw = (int)an_config_int(t->cfg, AN_CFG_WORKERS);
    if (nw > AN_TASKS_MAX_WORKERS)
        nw = AN_TASKS_MAX_WORKERS;
    if (an_workq_new("tasks", nw, run_job, t, &t->q, err) != AN_OK)
        return err->code;
    if (pthread_create(&t->beat, NULL, beat, t) != 0) {
        an_workq_free(t->q);
        t->q = NULL;
        return an_err_set(err, AN_ERR_INTERNAL, "cannot start the beat thread");
    }
    pthread_mutex_lock(&t->mu);
    t->started = 1;
    pthread_mutex_unlock(&t->mu);
    AN_INFO(COMPONENT, "msg=\"scheduler started\" instance=%s workers=%d", t->instance,
            an_workq_threads(t->q));
    return AN_OK;
}

an_code an_tasks_submit(an_tasks *t, const char *name, json_t *args, char *id_out, an_err *err)
{
    an_code rc = an_tasks_check_args(name, args, err);
    if (rc != AN_OK)
        return rc;
    /* started is read under mu: a submit racing an_tasks_start or
     * an_tasks_shutdown then uses a queue that stays valid (closed at worst:
     * the push below says so) until an_tasks_free */
    pthread_mutex_lock(&t->mu);
    int running = t->started && !atomic_load(&t->stop);
    pthread_mutex_unlock(&t->mu);
    if (!running)
        return an_err_set(err, AN_ERR_UNSUPPORTED, "the task runtime is not running");
    json_t *a = args ? json_deep_copy(args) : json_object();
    an_job *j = new_job(-1, name, NULL, NULL, a);
    if (!j) {
        json_decref(a);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    an_tasks_new_id(j->id);
    an_run_ctx rc2 = {0};
    rc2.t = t;
    snprintf(rc2.row.id, sizeof rc2.row.id, "%s", j->id);
    snprintf(rc2.row.name, sizeof rc2.row.name, "%s", name);
    snprintf(rc2.row.state, sizeof rc2.row.state, "PENDING");
    snprintf(rc2.row.instance, sizeof rc2.row.instance, "%s", t->instance);
    an_tasks_set_json(&rc2.row.args, a);
    rc2.row.created_ms = rc2.row.heartbeat_ms = an_now_ms();
    an_tasks_pick_record_store(&rc2);
    an_tasks_save_row(&rc2);
    an_task_row_free(&rc2.row);
    if (id_out)
        snprintf(id_out, AN_TASK_ID_MAX, "%s", j->id);
    if (!an_workq_push(t->q, &j->work)) { /* the runtime stopped meanwhile */
        an_tasks_interrupt_row(t, j->id, "interrupted: the instance stopped before it started");
        free_job(j);
    }
    return AN_OK;
}

/* Queued jobs at shutdown never start: submitted ones are recorded
 * INTERRUPTED, a firing's count goes down. */
static void discard_jobs(an_tasks *t, an_work *w)
{
    while (w) {
        an_work *next = w->next;
        an_job *j = (an_job *)w;
        if (j->id[0])
            an_tasks_interrupt_row(t, j->id, "interrupted: the instance stopped before it started");
        pthread_mutex_lock(&t->mu);
        job_done_locked(t, j);
        pthread_mutex_unlock(&t->mu);
        free_job(j);
        w = next;
    }
}

int an_tasks_shutdown(an_tasks *t, int64_t grace_ms)
{
    if (!t->started)
        return 1;
    pthread_mutex_lock(&t->mu);
    an_sched_step(t->sched, AN_SCHED_STOP, -1);
    atomic_store(&t->stop, 1); /* running tasks stop between pages and series */
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    discard_jobs(t, an_workq_close(t->q, AN_WORKQ_DISCARD));
    pthread_join(t->beat, NULL);
    int done = an_workq_wait_idle(t->q, grace_ms);
    pthread_mutex_lock(&t->mu);
    an_sched_step(t->sched, done ? AN_SCHED_STOP : AN_SCHED_GRACE_OVER, -1);
    pthread_mutex_unlock(&t->mu);
    if (!done) {
        char ids[AN_TASKS_MAX_WORKERS + 1][AN_TASK_ID_MAX];
        int n = running_ids(t, ids);
        for (int i = 0; i < n; i++)
            an_tasks_interrupt_row(t, ids[i],
                                   "interrupted: still running when the shutdown grace ended");
        AN_WARN(COMPONENT, "msg=\"shutdown grace over: runs marked INTERRUPTED\" runs=%d", n);
        return 0;
    }
    /* the queue is closed and idle; an_tasks_free joins its threads and
     * frees it, so a submit or /metrics still holding it stays safe */
    pthread_mutex_lock(&t->mu);
    t->started = 0;
    pthread_mutex_unlock(&t->mu);
    AN_INFO(COMPONENT, "msg=\"task runtime stopped\"");
    return 1;
}

void an_tasks_free(an_tasks *t)
{
    if (!t)
        return;
    if (t->started && !an_tasks_shutdown(t, 0))
        return; /* threads still run: leave it to the exit */
    an_workq_free(t->q);
    for (int i = 0; i < AN_TASKS_MAX_ENTRIES; i++)
        an_config_free_list(t->entries[i].symbols, t->entries[i].n);
    an_sched_free(t->sched);
    an_store_close(t->fb);
    pthread_mutex_destroy(&t->fb_mu);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
