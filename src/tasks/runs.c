/*
 * runs.c - task runs: ids, the rows in autonama.task_runs (PENDING,
 * PROGRESS, then SUCCESS, FAILURE or INTERRUPTED; in the primary, or the
 * fallback file while the primary is down), running one task and recording
 * it, the advisory-locked scheduled run, and reading runs back.
 *
 * Threads: a run runs on its caller's thread (the command line's main
 * thread, a runtime worker); t->mu is taken only for the running-run table
 * and the counters, never across a store call.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "tasks/tasks_internal.h"

static const char *COMPONENT = "tasks";

const char *an_task_state_name(an_task_state s)
{
    static const char *names[] = {"PENDING", "PROGRESS", "SUCCESS", "FAILURE", "INTERRUPTED"};
    return s <= AN_TASK_INTERRUPTED ? names[s] : "UNKNOWN";
}

void an_tasks_new_id(char *out)
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)((ts.tv_nsec >> (i % 4 * 8)) ^ (i * 37) ^ getpid());
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, AN_TASK_ID_MAX,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

an_code an_tasks_new(const an_config *cfg, an_service *svc, an_tasks **out, an_err *err)
{
    an_tasks *t = calloc(1, sizeof *t);
    if (!t)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    t->cfg = cfg;
    t->svc = svc;
    const char *inst = an_config_get(cfg, AN_CFG_INSTANCE);
    if (inst && *inst) {
        snprintf(t->instance, sizeof t->instance, "%s", inst);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(t->instance, sizeof t->instance, "%s:%d", host, (int)getpid());
    }
    atomic_init(&t->stop, 0);
    atomic_init(&t->fallback_active, 0);
    pthread_mutex_init(&t->fb_mu, NULL);
    pthread_mutex_init(&t->mu, NULL);
    /* the beat's deadlines are on the monotonic clock */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    *out = t;
    return AN_OK;
}

const char *an_tasks_instance(const an_tasks *t)
{
    return t->instance;
}

atomic_int *an_tasks_stop_flag(an_tasks *t)
{
    return &t->stop;
}

void an_tasks_request_stop(an_tasks *t)
{
    atomic_store(&t->stop, 1);
}

/* ---- recording a run ----------------------------------------------------- */

/* Writes the row where it is recorded; when the primary fails, to the
 * fallback file (replayed later). */
void an_tasks_save_row(an_run_ctx *rc)
{
    an_err e = {0};
    if (rc->rec && !rc->rec_is_fb) {
        if (an_store_task_put(rc->rec, &rc->row, &e) == AN_OK)
            return;
        if (!an_tasks_is_outage(e.code) || !an_tasks_fallback_enabled(rc->t)) {
            AN_WARN(COMPONENT, "msg=\"cannot record task run\" id=%s error=\"%s\"", rc->row.id,
                    e.msg);
            return;
        }
        rc->rec = NULL;
    }
    if (!an_tasks_fallback_enabled(rc->t))
        return;
    pthread_mutex_lock(&rc->t->fb_mu);
    an_store *fb = an_tasks_fallback_store_locked(rc->t, &e);
    if (fb && an_store_task_put(fb, &rc->row, &e) == AN_OK) {
        rc->rec = fb;
        rc->rec_is_fb = 1;
        atomic_store(&rc->t->fallback_active, 1);
    } else {
        AN_WARN(COMPONENT, "msg=\"cannot record task run\" id=%s error=\"%s\"", rc->row.id, e.msg);
    }
    pthread_mutex_unlock(&rc->t->fb_mu);
}

void an_tasks_set_json(char **dst, json_t *v)
{
    free(*dst);
    *dst = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

void an_tasks_progress(an_run_ctx *rc, const char *approach, const char *status, int64_t done,
                       int64_t total)
{
    snprintf(rc->row.state, sizeof rc->row.state, "PROGRESS");
    snprintf(rc->row.approach, sizeof rc->row.approach, "%s", approach);
    json_t *m = json_pack("{s:s, s:s, s:I, s:I}", "approach", approach, "status", status, "done",
                          (json_int_t)done, "total", (json_int_t)total);
    an_tasks_set_json(&rc->row.meta, m);
    json_decref(m);
    rc->row.heartbeat_ms = an_now_ms();
    an_tasks_save_row(rc);
}

/* Symbols from args.symbols or args.symbol (an array or "A,B"), or args
 * itself when it is an array; else AUTONAMA_SYMBOLS. */
void an_tasks_pick_record_store(an_run_ctx *rc)
{
    an_err e = {0};
    rc->rec = an_tasks_primary(rc->t, &e);
    rc->rec_is_fb = 0;
}

static void mark_running(an_tasks *t, const char *id, int on)
{
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i <= AN_TASKS_MAX_WORKERS; i++) {
        if (on && !t->run[i].used) {
            t->run[i].used = 1;
            snprintf(t->run[i].id, sizeof t->run[i].id, "%s", id);
            break;
        }
        if (!on && t->run[i].used && strcmp(t->run[i].id, id) == 0) {
            t->run[i].used = 0;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

/* The first failed item's error of a result, "ITEM: error" (an ingest's
 * symbols by category, or an indicator run's series), so the log line names
 * the cause; a pointer to the result when no item says why. */
static void first_item_error(json_t *res, char *out, size_t len)
{
    const char *cat, *sym;
    json_t *c, *o;
    json_object_foreach(json_object_get(res, "categories"), cat, c)
    {
        json_object_foreach(json_object_get(c, "symbols"), sym, o)
        {
            const char *e = json_string_value(json_object_get(o, "error"));
            if (e) {
                snprintf(out, len, "%s: %s", sym, e);
                return;
            }
        }
        const char *e = json_string_value(json_object_get(c, "error"));
        if (e) {
            snprintf(out, len, "%s: %s", cat, e);
            return;
        }
    }
    size_t i;
    json_array_foreach(json_object_get(res, "series"), i, o)
    {
        const char *e = json_string_value(json_object_get(o, "error"));
        if (e) {
            snprintf(out, len, "%s %s: %s", json_string_value(json_object_get(o, "symbol")),
                     json_string_value(json_object_get(o, "timeframe")), e);
            return;
        }
    }
    snprintf(out, len, "every item failed: see the result");
}

/* Fills the new run's row and records it PENDING (a scheduled run claims
 * its slot). 0 when the slot was claimed already: nothing to run. */
static int record_start(an_run_ctx *rc, const char *name, json_t *args, const char *symbol,
                        const char *slot, const char *given_id)
{
    an_tasks *t = rc->t;
    an_task_row *r = &rc->row;
    if (given_id)
        snprintf(r->id, sizeof r->id, "%s", given_id);
    else
        an_tasks_new_id(r->id);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->state, sizeof r->state, "PENDING");
    snprintf(r->instance, sizeof r->instance, "%s", t->instance);
    snprintf(r->symbol, sizeof r->symbol, "%s", symbol ? symbol : "");
    snprintf(r->slot, sizeof r->slot, "%s", slot ? slot : "");
    json_t *empty = json_object();
    an_tasks_set_json(&r->args, args ? args : empty);
    json_decref(empty);
    r->created_ms = r->heartbeat_ms = an_now_ms();
    an_tasks_pick_record_store(rc);
    if (rc->rec && !given_id) {
        int inserted = 0;
        an_err e = {0};
        if (an_store_task_claim(rc->rec, r, &inserted, &e) != AN_OK) {
            AN_WARN(COMPONENT, "msg=\"cannot record task run\" id=%s error=\"%s\"", r->id, e.msg);
            if (an_tasks_is_outage(e.code))
                rc->rec = NULL;
        } else if (!inserted) {
            AN_DEBUG(COMPONENT, "msg=\"period already claimed\" task=%s slot=\"%s\"", name,
                     r->slot);
            return 0;
        }
    }
    if (!rc->rec)
        an_tasks_save_row(rc); /* the primary is down: into the fallback file */
    return 1;
}

/* The final state of a run from its body's code and result; r->error says
 * why when it is not SUCCESS. */
static an_task_state final_state(an_tasks *t, an_task_row *r, an_code code, json_t *res,
                                 const an_err *terr)
{
    an_task_state st;
    const char *status = res ? json_string_value(json_object_get(res, "status")) : NULL;
    int stopping = atomic_load(&t->stop);
    if (code != AN_OK)
        st = stopping ? AN_TASK_INTERRUPTED : AN_TASK_FAILURE;
    else if (stopping && (!status || strcmp(status, "completed") != 0))
        st = AN_TASK_INTERRUPTED;
    else if (!status || strcmp(status, "failed") == 0)
        st = AN_TASK_FAILURE; /* a body's result without a status is a failure */
    else
        st = AN_TASK_SUCCESS;
    const char *why = res ? json_string_value(json_object_get(res, "error")) : NULL;
    if (code != AN_OK)
        snprintf(r->error, sizeof r->error, "%s", terr->msg);
    else if (st == AN_TASK_INTERRUPTED)
        snprintf(r->error, sizeof r->error, "interrupted by a signal");
    else if (st == AN_TASK_FAILURE && why)
        snprintf(r->error, sizeof r->error, "%s", why);
    else if (st == AN_TASK_FAILURE)
        first_item_error(res, r->error, sizeof r->error);
    return st;
}

/* Records the finished run: state, the last meta (done = total), result. */
static void record_finish(an_run_ctx *rc, an_task_state st, json_t *res)
{
    an_task_row *r = &rc->row;
    snprintf(r->state, sizeof r->state, "%s", an_task_state_name(st));
    json_t *meta = r->meta ? json_loads(r->meta, 0, NULL) : NULL;
    if (meta) {
        if (st == AN_TASK_SUCCESS)
            json_object_set(meta, "done", json_object_get(meta, "total"));
        json_object_set_new(meta, "status", json_string(r->state));
        an_tasks_set_json(&r->meta, meta);
        json_decref(meta);
    }
    const char *ap = res ? json_string_value(json_object_get(res, "approach")) : NULL;
    if (ap)
        snprintf(r->approach, sizeof r->approach, "%s", ap);
    an_tasks_set_json(&r->result, res);
    r->finished_ms = r->heartbeat_ms = an_now_ms();
    if (!rc->rec && !rc->rec_is_fb)
        an_tasks_pick_record_store(rc);
    an_tasks_save_row(rc);
}

an_code an_tasks_run_one(an_tasks *t, const char *name, json_t *args, const char *symbol,
                         const char *slot, const char *given_id, char *id_out, json_t **result,
                         an_err *err)
{
    *result = NULL;
    an_task_body fn = an_tasks_body(name);
    if (!fn)
        return an_err_set(err, AN_ERR_NOT_FOUND, "no task '%.64s' (%s)", name, an_tasks_names());
    an_run_ctx rc = {0};
    rc.t = t;
    an_task_row *r = &rc.row;
    if (!record_start(&rc, name, args, symbol, slot, given_id)) {
        an_task_row_free(r);
        return AN_OK;
    }
    if (id_out)
        snprintf(id_out, AN_TASK_ID_MAX, "%s", r->id);
    mark_running(t, r->id, 1);
    r->started_ms = an_now_ms();
    AN_INFO(COMPONENT, "msg=\"task started\" id=%s task=%s symbol=%s instance=%s", r->id, name,
            symbol ? symbol : "-", t->instance);
    json_t *res = NULL;
    an_err terr = {0};
    json_t *a = args ? json_incref(args) : json_object();
    an_code code = fn(&rc, a, &res, &terr);
    json_decref(a);
    an_task_state st = final_state(t, r, code, res, &terr);
    record_finish(&rc, st, res);
    mark_running(t, r->id, 0);
    pthread_mutex_lock(&t->mu);
    t->by_state[st]++;
    pthread_mutex_unlock(&t->mu);
    AN_LOG(st == AN_TASK_SUCCESS ? AN_LOG_INFO : AN_LOG_WARN, COMPONENT,
           "msg=\"task finished\" id=%s task=%s symbol=%s state=%s approach=%s%s%s%s", r->id, name,
           symbol ? symbol : "-", r->state, r->approach[0] ? r->approach : "-",
           r->error[0] ? " error=\"" : "", r->error[0] ? r->error : "", r->error[0] ? "\"" : "");
    if (!res)
        res = json_pack("{s:s, s:s, s:s}", "status", "failed", "error", terr.msg, "code",
                        an_code_str(code));
    json_object_set_new(res, "task",
                        json_pack("{s:s, s:s, s:s}", "id", r->id, "name", name, "state", r->state));
    *result = res;
    an_task_row_free(r);
    if (code != AN_OK && err)
        *err = terr;
    return code;
}

/* Replays the fallback file if it holds anything, then runs. */
static an_code replay_then_run(an_tasks *t, const char *name, json_t *args, const char *symbol,
                               const char *slot, char *id_out, json_t **result, an_err *err)
{
    json_t *rep = NULL;
    an_err e = {0};
    if (an_tasks_replay(t, &rep, &e) != AN_OK)
        AN_WARN(COMPONENT, "msg=\"fallback replay failed; retried on the next run\" error=\"%s\"",
                e.msg);
    json_decref(rep);
    return an_tasks_run_one(t, name, args, symbol, slot, NULL, id_out, result, err);
}

an_code an_tasks_run(an_tasks *t, const char *name, json_t *args, const char *symbol,
                     const char *slot, char *id_out, json_t **result, an_err *err)
{
    /* a command-line run heartbeats too: a serve starting meanwhile must not
     * take it for the run of a dead instance */
    int hb = an_tasks_heartbeat_begin(t);
    an_code rc = replay_then_run(t, name, args, symbol, slot, id_out, result, err);
    an_tasks_heartbeat_end(t, hb);
    return rc;
}

static int64_t lock_key(const char *name, const char *symbol)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '|') * 1099511628211ULL;
    for (const char *p = symbol ? symbol : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return (int64_t)h;
}

an_code an_tasks_run_locked(an_tasks *t, const char *name, json_t *args, const char *symbol,
                            const char *slot, int *ran, json_t **result, an_err *err)
{
    *ran = 0;
    *result = NULL;
    an_err e = {0};
    an_store *p = an_tasks_primary(t, &e);
    int64_t key = lock_key(name, symbol);
    int got = 1;
    if (p && an_store_try_lock(p, key, &got, &e) != AN_OK) {
        AN_WARN(COMPONENT, "msg=\"advisory lock failed\" task=%s error=\"%s\"", name, e.msg);
        got = 1; /* the primary is down: no other instance can run on it either */
        p = NULL;
    }
    if (!got) {
        AN_DEBUG(COMPONENT, "msg=\"another instance runs it\" task=%s symbol=%s", name,
                 symbol ? symbol : "-");
        return AN_OK;
    }
    /* a worker of the runtime: the beat thread heartbeats its run */
    an_code rc = replay_then_run(t, name, args, symbol, slot, NULL, result, err);
    *ran = *result != NULL;
    if (p && an_store_unlock(p, key, &e) != AN_OK)
        AN_DEBUG(COMPONENT, "msg=\"advisory unlock failed\" error=\"%s\"", e.msg);
    return rc;
}

/* ---- reading runs -------------------------------------------------------- */

static json_t *iso_or_null(int64_t ms)
{
    char buf[40];
    return ms ? json_string(an_time_format(ms, buf, sizeof buf)) : json_null();
}

static json_t *parsed_or_null(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);
    return v ? v : json_string(s);
}

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *an_tasks_row_json(const an_task_row *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(r->id));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "state", json_string(r->state));
    json_object_set_new(o, "approach", str_or_null(r->approach));
    json_object_set_new(o, "args", parsed_or_null(r->args));
    json_object_set_new(o, "meta", parsed_or_null(r->meta));
    json_object_set_new(o, "result", parsed_or_null(r->result));
    json_object_set_new(o, "error", str_or_null(r->error));
    json_object_set_new(o, "instance", str_or_null(r->instance));
    json_object_set_new(o, "symbol", str_or_null(r->symbol));
    json_object_set_new(o, "created_at", iso_or_null(r->created_ms));
    json_object_set_new(o, "started_at", iso_or_null(r->started_ms));
    json_object_set_new(o, "finished_at", iso_or_null(r->finished_ms));
    json_object_set_new(o, "heartbeat_at", iso_or_null(r->heartbeat_ms));
    return o;
}

json_t *an_tasks_list(an_tasks *t, const char *name, size_t limit, an_err *err)
{
    an_err local; /* err may be NULL: the outage check below reads the code */
    if (!err)
        err = &local;
    an_store *p = an_tasks_primary(t, err);
    an_task_row *rows = NULL;
    size_t n = 0;
    if (p) {
        if (an_store_task_list(p, name, limit, &rows, &n, err) != AN_OK)
            return NULL;
    } else {
        /* the primary is down: the runs recorded in the fallback file since */
        if (!an_tasks_is_outage(err->code) || !an_tasks_fallback_enabled(t))
            return NULL;
        pthread_mutex_lock(&t->fb_mu);
        an_err fe = {0};
        an_store *fb = an_tasks_fallback_store_locked(t, &fe);
        an_code rc = fb ? an_store_task_list(fb, name, limit, &rows, &n, &fe) : fe.code;
        pthread_mutex_unlock(&t->fb_mu);
        if (rc != AN_OK)
            return NULL;
        AN_WARN(COMPONENT, "msg=\"primary unreachable: listing the runs in the fallback file\"");
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(a, an_tasks_row_json(&rows[i]));
        an_task_row_free(&rows[i]);
    }
    free(rows);
    return a;
}

json_t *an_tasks_get(an_tasks *t, const char *id, an_err *err)
{
    an_store *p = an_tasks_primary(t, err);
    if (!p)
        return NULL;
    an_task_row r;
    int found = 0;
    if (an_store_task_get(p, id, &r, &found, err) != AN_OK)
        return NULL;
    if (!found) {
        an_err_set(err, AN_ERR_NOT_FOUND, "no task run '%.64s'", id);
        return NULL;
    }
    json_t *o = an_tasks_row_json(&r);
    an_task_row_free(&r);
    return o;
}

/* Records a run as INTERRUPTED (queued runs at shutdown, runs still going
 * after the grace). */
void an_tasks_interrupt_row(an_tasks *t, const char *id, const char *why)
{
    an_err e = {0};
    an_store *p = an_tasks_primary(t, &e);
    if (!p)
        return;
    an_task_row r;
    int found = 0;
    if (an_store_task_get(p, id, &r, &found, &e) != AN_OK || !found)
        return;
    if (!strcmp(r.state, "PENDING") || !strcmp(r.state, "PROGRESS")) {
        snprintf(r.state, sizeof r.state, "INTERRUPTED");
        snprintf(r.error, sizeof r.error, "%s", why);
        r.finished_ms = an_now_ms();
        an_store_task_put(p, &r, &e);
    }
    an_task_row_free(&r);
}
