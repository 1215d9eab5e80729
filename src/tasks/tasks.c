/*
 * tasks.c - task runs, the hybrid chain and the serve runtime (see tasks.h).
 *
 * Threads: an_tasks_run runs on its caller's thread (the command line's main
 * thread, or a worker). The runtime has one beat thread (the scheduler's
 * clock loop, heartbeats) and AUTONAMA_WORKERS worker threads taking jobs
 * from one queue; everything shared sits under t->mu. The fallback store is
 * opened lazily and used under t->fb_mu (DuckDB writes one at a time anyway),
 * so a replay never runs while a fallback run writes.
 */
#include "tasks/tasks.h"

#include "source/provider.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analytics/engine.h"
#include "core/log.h"
#include "tasks/health.h"
#include "tasks/ingest.h"
#include "tasks/optimize.h"
#include "tasks/scheduler.h"
#include "tasks/sync.h"

static const char *COMPONENT = "tasks";

#define MAX_WORKERS 32
#define MAX_ENTRIES 8
#define HEARTBEAT_MS 5000

typedef struct job {
    struct job *next;
    int entry; /* scheduler entry, -1 for a submitted run */
    char name[AN_TASK_NAME_MAX];
    char symbol[AN_SYMBOL_MAX];
    char slot[160];
    char id[AN_TASK_ID_MAX]; /* submitted runs: recorded PENDING already */
    json_t *args;
} job;

typedef struct running {
    char id[AN_TASK_ID_MAX];
    int used;
} running;

typedef struct beat_entry {
    char task[AN_TASK_NAME_MAX];
    char **symbols; /* NULL: one job without symbol */
    size_t n;
    int pending; /* jobs of the current firing not done yet */
} beat_entry;

struct an_tasks {
    const an_config *cfg;
    an_service *svc;
    char instance[96];
    volatile int stop;

    pthread_mutex_t fb_mu; /* the fallback store and its use */
    an_store *fb;
    int fallback_active; /* data sits in the fallback file */

    pthread_mutex_t mu; /* the runtime below */
    pthread_cond_t cv;
    an_clock clock;
    an_sched *sched;
    beat_entry entries[MAX_ENTRIES];
    job *head, *tail;
    running run[MAX_WORKERS + 1];
    pthread_t beat, workers[MAX_WORKERS];
    int nworkers, started, busy;
    int64_t by_state[5]; /* finished runs of this process by state */
};

const char *an_task_state_name(an_task_state s)
{
    static const char *names[] = {"PENDING", "PROGRESS", "SUCCESS", "FAILURE", "INTERRUPTED"};
    return s <= AN_TASK_INTERRUPTED ? names[s] : "UNKNOWN";
}

static void new_id(char *out)
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
    pthread_mutex_init(&t->fb_mu, NULL);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    *out = t;
    return AN_OK;
}

const char *an_tasks_instance(const an_tasks *t)
{
    return t->instance;
}

volatile int *an_tasks_stop_flag(an_tasks *t)
{
    return &t->stop;
}

/* ---- stores -------------------------------------------------------------- */

static int fallback_enabled(an_tasks *t)
{
    return an_config_bool(t->cfg, AN_CFG_FALLBACK) && an_config_has_postgres(t->cfg) &&
           strcmp(an_config_get(t->cfg, AN_CFG_STORE), "duckdb") != 0;
}

/* A primary failure the fallback is for: the server is unreachable. */
static int is_outage(an_code c)
{
    return c == AN_ERR_CONNECT || c == AN_ERR_TIMEOUT || c == AN_ERR_IO;
}

/* The fallback store, opened and migrated on first use. Caller holds fb_mu. */
static an_store *fallback_store(an_tasks *t, an_err *err)
{
    if (t->fb)
        return t->fb;
    an_store_options o = {0};
    o.mode = "duckdb";
    o.duckdb_path = an_config_get(t->cfg, AN_CFG_FALLBACK_PATH);
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

/* The primary, when it can be opened (and migrated) now. */
static an_store *primary(an_tasks *t, an_err *err)
{
    return an_service_store(t->svc, err);
}

an_code an_tasks_replay(an_tasks *t, json_t **report, an_err *err)
{
    if (report)
        *report = NULL;
    if (!fallback_enabled(t))
        return AN_OK;
    struct stat stt;
    const char *path = an_config_get(t->cfg, AN_CFG_FALLBACK_PATH);
    if (!t->fb && stat(path, &stt) != 0)
        return AN_OK; /* never used */
    an_err e = {0};
    an_store *p = primary(t, &e);
    if (!p)
        return AN_OK; /* still down: later */
    an_code rc = AN_OK;
    pthread_mutex_lock(&t->fb_mu);
    an_store *fb = fallback_store(t, &e);
    int pending = 0;
    if (!fb) {
        AN_DEBUG(COMPONENT, "msg=\"fallback file not readable now\" error=\"%s\"", e.msg);
    } else if (an_sync_pending(fb, &pending, &e) == AN_OK && pending) {
        AN_INFO(COMPONENT, "msg=\"primary is back: replaying the fallback file\" fallback=\"%s\"",
                path);
        an_sync_stats st;
        rc = an_sync_stores(fb, p, 1, &st, err);
        if (rc == AN_OK) {
            t->fallback_active = 0;
            if (report)
                *report =
                    json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "from", path, "series",
                              (json_int_t)st.series, "candles", (json_int_t)st.candles,
                              "candles_inserted", (json_int_t)st.candle_counts.inserted,
                              "indicator_series", (json_int_t)st.indicator_series, "indicators",
                              (json_int_t)st.indicators, "tasks", (json_int_t)st.tasks);
        }
    }
    pthread_mutex_unlock(&t->fb_mu);
    return rc;
}

/* ---- a run --------------------------------------------------------------- */

typedef struct run_ctx {
    an_tasks *t;
    an_task_row row;
    an_store *rec; /* where the row is recorded (primary, or the fallback) */
    int rec_is_fb;
} run_ctx;

/* Writes the row where it is recorded; when the primary fails, to the
 * fallback file (replayed later). */
static void save_row(run_ctx *rc)
{
    an_err e = {0};
    if (rc->rec && !rc->rec_is_fb) {
        if (an_store_task_put(rc->rec, &rc->row, &e) == AN_OK)
            return;
        if (!is_outage(e.code) || !fallback_enabled(rc->t)) {
            AN_WARN(COMPONENT, "msg=\"cannot record task run\" id=%s error=\"%s\"", rc->row.id,
                    e.msg);
            return;
        }
        rc->rec = NULL;
    }
    if (!fallback_enabled(rc->t))
        return;
    pthread_mutex_lock(&rc->t->fb_mu);
    an_store *fb = fallback_store(rc->t, &e);
    if (fb && an_store_task_put(fb, &rc->row, &e) == AN_OK) {
        rc->rec = fb;
        rc->rec_is_fb = 1;
        rc->t->fallback_active = 1;
    } else {
        AN_WARN(COMPONENT, "msg=\"cannot record task run\" id=%s error=\"%s\"", rc->row.id, e.msg);
    }
    pthread_mutex_unlock(&rc->t->fb_mu);
}

static void set_json(char **dst, json_t *v)
{
    free(*dst);
    *dst = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static void progress(run_ctx *rc, const char *approach, const char *status, int64_t done,
                     int64_t total)
{
    snprintf(rc->row.state, sizeof rc->row.state, "PROGRESS");
    snprintf(rc->row.approach, sizeof rc->row.approach, "%s", approach);
    json_t *m = json_pack("{s:s, s:s, s:I, s:I}", "approach", approach, "status", status, "done",
                          (json_int_t)done, "total", (json_int_t)total);
    set_json(&rc->row.meta, m);
    json_decref(m);
    rc->row.heartbeat_ms = an_now_ms();
    save_row(rc);
}

/* Symbols from args.symbols or args.symbol (an array or "A,B"), or args
 * itself when it is an array; else AUTONAMA_SYMBOLS. */
static an_code arg_symbols(an_tasks *t, json_t *args, char ***out, size_t *n, an_err *err)
{
    /* Celery-style positional args (the seed's ['BTC/USDT']) are the symbols */
    json_t *v = json_is_array(args) ? args : json_object_get(args, "symbols");
    if (!v)
        v = json_object_get(args, "symbol");
    if (json_is_array(v)) {
        size_t k = json_array_size(v);
        if (k == 0)
            return an_err_set(err, AN_ERR_INVALID, "no symbols given");
        char **list = calloc(k, sizeof *list);
        if (!list)
            return an_err_set(err, AN_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < k; i++) {
            const char *s = json_string_value(json_array_get(v, i));
            if (!s || an_symbol_validate(s, err) != AN_OK || !(list[i] = strdup(s))) {
                an_config_free_list(list, k);
                return s ? (err->code ? err->code : AN_ERR_NOMEM)
                         : an_err_set(err, AN_ERR_INVALID, "symbols must be strings");
            }
        }
        *out = list;
        *n = k;
        return AN_OK;
    }
    if (json_is_string(v)) {
        /* "A,B": through a scratch config so validation is the same */
        an_config c = *t->cfg;
        c.val[AN_CFG_SYMBOLS] = (char *)json_string_value(v);
        return an_config_symbols(&c, out, n, err);
    }
    return an_config_symbols(t->cfg, out, n, err);
}

static const char *arg_str(json_t *args, const char *key, const char *def)
{
    const char *v = json_string_value(json_object_get(args, key));
    return v ? v : def;
}

/* ---- update_market_data ---------------------------------------------------- */

static json_t *ingest_symbols_json(const an_ingest_symbol *res, size_t n, const int *on_fb,
                                   int64_t *ok, int64_t *failed, int64_t *skipped)
{
    json_t *syms = json_object();
    for (size_t i = 0; i < n; i++) {
        const an_ingest_symbol *r = &res[i];
        const char *status = r->status != AN_OK ? "failed" : r->skipped ? "skipped" : "success";
        *failed += r->status != AN_OK;
        *skipped += r->status == AN_OK && r->skipped;
        *ok += r->status == AN_OK && !r->skipped;
        json_t *o = json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I}", "status", status, "fetched",
            (json_int_t)r->fetched, "inserted", (json_int_t)r->inserted, "updated",
            (json_int_t)r->updated, "unchanged", (json_int_t)r->unchanged, "holes_repaired",
            r->holes, "requests", (json_int_t)r->requests, "retries", (json_int_t)r->retries,
            "refused_replies", (json_int_t)r->refused, "rate_limited", (json_int_t)r->rate_limited);
        if (on_fb && on_fb[i])
            json_object_set_new(o, "store", json_string("duckdb_fallback"));
        if (r->status != AN_OK)
            json_object_set_new(o, "error", json_string(r->error));
        json_object_set_new(syms, r->symbol, o);
    }
    return syms;
}

/* What one run of update_market_data has done so far, over its categories. */
typedef struct ingest_totals {
    int64_t ok, failed, skipped;
    const char *approach, *mode; /* of the primary, or duckdb_fallback once used */
    json_t *fb_symbols;          /* symbols that went to the fallback */
    const char *fb_reason;
    char fb_reason_buf[AN_ERR_MSG_MAX];
} ingest_totals;

/* One category: its symbols on the primary first, those the primary fails
 * (or all, when it is down) on the fallback file. Fills *cat_json. */
static an_code update_category(run_ctx *rc, const an_ingest_options *base, const char *category,
                               char **symbols, size_t n, ingest_totals *tot, json_t **cat_json,
                               an_err *err)
{
    an_tasks *t = rc->t;
    an_ingest_options o = *base;
    o.symbols = (const char *const *)symbols;
    o.n_symbols = n;
    an_code code = AN_OK;
    an_ingest_symbol *res = calloc(n, sizeof *res);
    int64_t *before = calloc(n, sizeof *before);
    int *on_fb = calloc(n, sizeof *on_fb);
    an_err perr = {0};
    an_store *p = NULL;
    char status_text[96];
    if (!res || !before || !on_fb) {
        code = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto out;
    }
    p = primary(t, &perr);
    size_t nfb = 0;
    if (p) {
        if (!tot->approach || strcmp(tot->approach, "duckdb_fallback") != 0) {
            tot->approach = an_tasks_approach(p);
            tot->mode = an_store_mode_name(an_store_get_mode(p));
        }
        snprintf(status_text, sizeof status_text, "Processing %s", category);
        progress(rc, tot->approach, status_text, 0, (int64_t)n);
        for (size_t i = 0; i < n; i++) {
            int found = 0;
            an_err e;
            before[i] = INT64_MIN;
            if (an_store_get_latest_timestamp(p, symbols[i], o.timeframe, &before[i], &found, &e) !=
                    AN_OK ||
                !found)
                before[i] = INT64_MIN;
        }
        if ((code = an_ingest_run(p, &o, res, err)) != AN_OK)
            goto out;
        /* a statement error may be the server going away: ask it */
        int down = -1;
        for (size_t i = 0; i < n; i++) {
            an_code c = res[i].status;
            if (c == AN_ERR_DB && down < 0) {
                an_err pe = {0};
                down = an_store_ping(p, &pe) != AN_OK && is_outage(pe.code);
            }
            if (c != AN_OK && (is_outage(c) || (c == AN_ERR_DB && down == 1)) && !t->stop &&
                fallback_enabled(t))
                on_fb[i] = 1, nfb++;
        }
    } else if (is_outage(perr.code) && fallback_enabled(t)) {
        for (size_t i = 0; i < n; i++)
            on_fb[i] = 1, before[i] = INT64_MIN;
        nfb = n;
    } else {
        *err = perr;
        code = perr.code;
        goto out;
    }
    if (nfb > 0) {
        const char *why = p ? "the primary failed during the run" : perr.msg;
        AN_WARN(COMPONENT,
                "msg=\"TimescaleDB-first approach failed: switching to the DuckDB fallback\" "
                "category=%s symbols=%zu reason=\"%.200s\"",
                category, nfb, why);
        tot->approach = "duckdb_fallback";
        tot->mode = "duckdb";
        snprintf(tot->fb_reason_buf, sizeof tot->fb_reason_buf, "%s", why);
        tot->fb_reason = tot->fb_reason_buf;
        snprintf(status_text, sizeof status_text, "Processing %s with the DuckDB fallback",
                 category);
        progress(rc, tot->approach, status_text, 0, (int64_t)nfb);
        pthread_mutex_lock(&t->fb_mu);
        an_err fe = {0};
        an_store *fb = fallback_store(t, &fe);
        /* the fallback file may be empty: fetch what the primary lacked, from
         * the newest candle it had before the run (or the requested since);
         * symbols with the same start go in one parallel run */
        int64_t *eff = calloc(n, sizeof *eff);
        const char **group = calloc(n, sizeof *group);
        size_t *gidx = calloc(n, sizeof *gidx);
        an_ingest_symbol *r2 = calloc(n, sizeof *r2);
        int *done = calloc(n, sizeof *done);
        for (size_t i = 0; eff && i < n; i++)
            eff[i] = o.since_ms == INT64_MIN ? before[i] : o.since_ms;
        for (size_t i = 0; i < n; i++) {
            if (!on_fb[i] || !eff || !group || !gidx || !r2 || !done || done[i])
                continue;
            size_t ng = 0;
            for (size_t j = i; j < n; j++) {
                if (on_fb[j] && !done[j] && eff[j] == eff[i]) {
                    done[j] = 1;
                    group[ng] = symbols[j];
                    gidx[ng++] = j;
                    json_array_append_new(tot->fb_symbols, json_string(symbols[j]));
                }
            }
            an_ingest_options o2 = o;
            o2.symbols = group;
            o2.n_symbols = ng;
            o2.since_ms = eff[i];
            o2.force = o2.force && o2.since_ms != INT64_MIN;
            an_err e2 = {0};
            an_code frc = fb ? an_ingest_run(fb, &o2, r2, &e2) : fe.code;
            for (size_t k = 0; k < ng; k++) {
                if (!fb)
                    snprintf(res[gidx[k]].error, sizeof res[gidx[k]].error,
                             "fallback unavailable: %.400s", fe.msg);
                else if (frc != AN_OK)
                    snprintf(res[gidx[k]].error, sizeof res[gidx[k]].error, "fallback: %.400s",
                             e2.msg);
                else
                    res[gidx[k]] = r2[k];
            }
            if (fb && frc == AN_OK)
                t->fallback_active = 1;
        }
        free(eff);
        free(group);
        free(gidx);
        free(r2);
        free(done);
        pthread_mutex_unlock(&t->fb_mu);
    }
    int64_t ok = 0, failed = 0, skipped = 0;
    json_t *syms = ingest_symbols_json(res, n, on_fb, &ok, &failed, &skipped);
    *cat_json = json_pack("{s:s, s:I, s:I, s:I, s:o}", "provider",
                          o.provider ? o.provider : "binance", "success", (json_int_t)ok, "failed",
                          (json_int_t)failed, "skipped", (json_int_t)skipped, "symbols", syms);
    tot->ok += ok;
    tot->failed += failed;
    tot->skipped += skipped;
out:
    free(res);
    free(before);
    free(on_fb);
    return code;
}

/* 1 when the run's arguments name symbols (then they are every category's). */
static int has_symbol_args(json_t *args)
{
    return json_is_array(args) || json_object_get(args, "symbols") ||
           json_object_get(args, "symbol");
}

static an_code task_update_market_data(run_ctx *rc, json_t *args, json_t **out, an_err *err)
{
    an_tasks *t = rc->t;
    const an_config *cfg = t->cfg;
    int64_t since = INT64_MIN, until = INT64_MAX;
    const char *s_since = arg_str(args, "since", NULL), *s_until = arg_str(args, "until", NULL);
    if ((s_since && an_time_parse(s_since, &since, err) != AN_OK) ||
        (s_until && an_time_parse(s_until, &until, err) != AN_OK))
        return err->code;
    /* the categories: the run's argument ("crypto,forex") or the configuration's */
    char **cats = NULL;
    size_t ncat = 0;
    an_config ccfg = *cfg;
    const char *cat_arg = arg_str(args, "categories", NULL);
    if (cat_arg) {
        for (const char *c = cat_arg; *c;) {
            size_t len = strcspn(c, ", ");
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(len < 31 ? len : 31), c);
            if (len && !an_provider_category_valid(name))
                return an_err_set(err, AN_ERR_INVALID,
                                  "unknown category '%.40s' (crypto, forex, stock, commodity)",
                                  name);
            c += len;
            c += strspn(c, ", ");
        }
        ccfg.val[AN_CFG_CATEGORIES] = (char *)cat_arg;
    }
    an_code code = an_config_categories(&ccfg, &cats, &ncat, err);
    if (code != AN_OK)
        return code;
    if (ncat == 0) {
        an_config_free_list(cats, ncat);
        return an_err_set(err, AN_ERR_INVALID, "no categories given");
    }
    char **arg_syms = NULL;
    size_t narg = 0;
    if (has_symbol_args(args) && (code = arg_symbols(t, args, &arg_syms, &narg, err)) != AN_OK) {
        an_config_free_list(cats, ncat);
        return code;
    }
    an_ingest_options o = {0};
    o.base_url = an_config_get(cfg, AN_CFG_BINANCE_BASE_URL);
    o.timeframe = arg_str(args, "timeframe", an_config_get(cfg, AN_CFG_TIMEFRAME));
    o.since_ms = since;
    o.until_ms = until;
    o.lookback = an_config_int(cfg, AN_CFG_INGEST_LOOKBACK);
    o.force = json_is_true(json_object_get(args, "force"));
    o.parallel = (int)an_config_int(cfg, AN_CFG_INGEST_PARALLEL);
    o.timeout_ms = (int)an_config_int(cfg, AN_CFG_BINANCE_TIMEOUT_MS);
    o.max_tries = (int)an_config_int(cfg, AN_CFG_BINANCE_MAX_TRIES);
    o.backoff_ms = (int)an_config_int(cfg, AN_CFG_BINANCE_BACKOFF_MS);
    o.weight_budget = (int)an_config_int(cfg, AN_CFG_BINANCE_WEIGHT_BUDGET);
    o.stop = &t->stop;
    o.progress = json_is_true(json_object_get(args, "progress"));
    if (o.force && since == INT64_MIN) {
        an_config_free_list(cats, ncat);
        an_config_free_list(arg_syms, narg);
        return an_err_set(err, AN_ERR_INVALID, "--force needs --since: the range to refetch");
    }

    ingest_totals tot = {0}; /* approach and mode: set by the first category that runs */
    tot.fb_symbols = json_array();
    json_t *cjson = json_object();
    for (size_t c = 0; c < ncat && code == AN_OK; c++) {
        an_category_config cc;
        an_err ce = {0};
        json_t *cj = NULL;
        if (an_config_category(cfg, cats[c], &cc, &ce) == AN_OK) {
            o.category = cats[c];
            o.provider = cc.provider;
            o.source = cc.source;
            an_code r = update_category(rc, &o, cats[c], arg_syms ? arg_syms : cc.symbols,
                                        arg_syms ? narg : cc.n_symbols, &tot, &cj, &ce);
            if (r != AN_OK && r != AN_ERR_INVALID) {
                /* the store itself failed (no fallback): the run fails */
                *err = ce;
                code = r;
            }
        }
        if (!cj) { /* the category could not run: no provider, no symbols, a bad setting */
            AN_WARN(COMPONENT, "msg=\"category failed\" category=%s error=\"%.300s\"", cats[c],
                    ce.msg);
            int64_t nf = (int64_t)(arg_syms ? narg : cc.n_symbols ? cc.n_symbols : 1);
            tot.failed += nf;
            cj = json_pack("{s:s, s:s, s:s, s:I}", "status", "failed", "provider",
                           cc.provider ? cc.provider : "", "error", ce.msg, "failed",
                           (json_int_t)nf);
        }
        json_object_set_new(cjson, cats[c], cj);
        an_config_free_list(cc.symbols, cc.n_symbols);
    }
    if (code == AN_OK) {
        *out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:O}", "status",
                         tot.failed ? (tot.ok || tot.skipped ? "partial" : "failed") : "completed",
                         "approach", tot.approach ? tot.approach : "none", "store_mode",
                         tot.mode ? tot.mode : "none", "timeframe", o.timeframe,
                         "categories_processed", (int)ncat, "summary", "total_success",
                         (json_int_t)tot.ok, "total_failed", (json_int_t)tot.failed,
                         "total_skipped", (json_int_t)tot.skipped, "categories", cjson);
        if (json_array_size(tot.fb_symbols) > 0)
            json_object_set_new(
                *out, "fallback",
                json_pack("{s:s, s:s, s:O}", "path", an_config_get(cfg, AN_CFG_FALLBACK_PATH),
                          "reason", tot.fb_reason ? tot.fb_reason : "", "symbols", tot.fb_symbols));
        AN_INFO(COMPONENT,
                "msg=\"UPDATE SUMMARY\" task=update_market_data approach=%s categories=%zu "
                "success=%" PRId64 " failed=%" PRId64 " skipped=%" PRId64,
                tot.approach ? tot.approach : "none", ncat, tot.ok, tot.failed, tot.skipped);
    }
    json_decref(cjson);
    json_decref(tot.fb_symbols);
    an_config_free_list(cats, ncat);
    an_config_free_list(arg_syms, narg);
    return code;
}

/* ---- calculate_indicators_for_symbol ------------------------------------- */

/* Runs the pairs (symbol i, timeframe k) with todo[i * ntf + k] set (todo
 * NULL: all) on store s; list[i * ntf + k] gets each outcome, codes[] its
 * code. where (may be NULL) is added to each entry. */
static void indicators_on(an_store *s, const an_ind_set *set, an_load_pref pref, char **symbols,
                          size_t nsym, char **tfs, size_t ntf, const unsigned char *todo,
                          const char *where, volatile const int *stop, json_t *list, an_code *codes)
{
    for (size_t i = 0; i < nsym; i++) {
        for (size_t k = 0; k < ntf; k++) {
            size_t at = i * ntf + k;
            if (todo && !todo[at])
                continue;
            an_engine_result r;
            an_err e = {0};
            json_t *o = json_pack("{s:s, s:s}", "symbol", symbols[i], "timeframe", tfs[k]);
            if (*stop) /* shutting down: the series left are not started */
                codes[at] = an_err_set(&e, AN_ERR_TIMEOUT, "stopped by a signal");
            else
                codes[at] = an_engine_run(s, symbols[i], tfs[k], set, pref, &r, &e);
            if (codes[at] != AN_OK) {
                AN_WARN(COMPONENT, "msg=\"indicators failed\" symbol=%s timeframe=%s error=\"%s\"",
                        symbols[i], tfs[k], e.msg);
                json_object_set_new(o, "status", json_string("failed"));
                json_object_set_new(o, "error", json_string(e.msg));
            } else {
                json_object_set_new(o, "status", json_string(r.candles ? "success" : "skipped"));
                json_object_set_new(o, "source", json_string(r.source));
                json_object_set_new(o, "load_path", json_string(r.load_path));
                if (r.fallback_reason[0])
                    json_object_set_new(o, "fallback_reason", json_string(r.fallback_reason));
                json_object_set_new(o, "candles", json_integer(r.candles));
                json_object_set_new(o, "computed", json_integer(r.computed));
                json_object_set_new(o, "sent", json_integer(r.sent));
                json_object_set_new(o, "inserted", json_integer(r.written.inserted));
                json_object_set_new(o, "updated", json_integer(r.written.updated));
                json_object_set_new(o, "unchanged", json_integer(r.written.unchanged));
                json_object_set_new(o, "recomputed_history", json_boolean(r.full));
                json_object_set_new(o, "seconds", json_real(r.seconds));
            }
            if (where)
                json_object_set_new(o, "store", json_string(where));
            json_array_set_new(list, at, o);
        }
    }
}

static an_code task_indicators(run_ctx *rc, json_t *args, json_t **out, an_err *err)
{
    an_tasks *t = rc->t;
    an_ind_set set;
    an_load_pref pref;
    if (an_ind_set_parse(arg_str(args, "indicators", an_config_get(t->cfg, AN_CFG_INDICATORS)),
                         &set, err) != AN_OK ||
        an_load_pref_parse(arg_str(args, "load_path", an_config_get(t->cfg, AN_CFG_LOAD_PATH)),
                           &pref, err) != AN_OK)
        return err->code;
    char **symbols = NULL, **tfs = NULL;
    size_t nsym = 0, ntf = 0;
    an_code code = arg_symbols(t, args, &symbols, &nsym, err);
    if (code != AN_OK)
        return code;
    an_config c = *t->cfg;
    const char *tfarg = arg_str(args, "timeframes", NULL);
    if (tfarg) {
        c.val[AN_CFG_INDICATOR_TIMEFRAMES] = (char *)tfarg;
        c.from[AN_CFG_TIMEFRAME] = 0; /* --timeframe would win */
    }
    if ((code = an_config_indicator_timeframes(&c, &tfs, &ntf, err)) != AN_OK) {
        an_config_free_list(symbols, nsym);
        return code;
    }
    size_t n = nsym * ntf;
    an_code *codes = calloc(n, sizeof *codes);
    unsigned char *todo = calloc(n, 1);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_null());
    if (!codes || !todo) {
        code = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto out;
    }
    an_err perr = {0};
    an_store *p = primary(t, &perr);
    const char *approach = "duckdb_fallback", *mode = "duckdb";
    size_t nfb = 0;
    if (p) {
        approach = an_tasks_approach(p);
        mode = an_store_mode_name(an_store_get_mode(p));
        progress(rc, approach, "Calculating indicators", 0, (int64_t)n);
        indicators_on(p, &set, pref, symbols, nsym, tfs, ntf, NULL, NULL, &t->stop, list, codes);
        for (size_t i = 0; i < n; i++)
            if (is_outage(codes[i]) && !t->stop && fallback_enabled(t))
                todo[i] = 1, nfb++;
    } else if (is_outage(perr.code) && fallback_enabled(t)) {
        memset(todo, 1, n);
        nfb = n;
    } else {
        *err = perr;
        code = perr.code;
        goto out;
    }
    if (nfb > 0) {
        /* the primary is down (or went down): compute on the fallback's candles */
        AN_WARN(COMPONENT,
                "msg=\"TimescaleDB-first approach failed: switching to the DuckDB fallback\" "
                "task=calculate_indicators_for_symbol series=%zu reason=\"%.200s\"",
                nfb, p ? "the primary failed during the run" : perr.msg);
        approach = "duckdb_fallback";
        progress(rc, approach, "Calculating indicators on the DuckDB fallback", 0, (int64_t)nfb);
        pthread_mutex_lock(&t->fb_mu);
        an_err fe = {0};
        an_store *fb = fallback_store(t, &fe);
        if (fb) {
            indicators_on(fb, &set, pref, symbols, nsym, tfs, ntf, todo, "duckdb_fallback",
                          &t->stop, list, codes);
            t->fallback_active = 1;
        }
        pthread_mutex_unlock(&t->fb_mu);
        if (!fb) {
            *err = fe;
            code = fe.code;
            goto out;
        }
    }
    int64_t ok = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        const char *st = json_string_value(json_object_get(json_array_get(list, i), "status"));
        ok += st && !strcmp(st, "success");
        skipped += st && !strcmp(st, "skipped");
        failed += !st || !strcmp(st, "failed");
    }
    *out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:O}", "status",
                     failed ? (ok ? "partial" : "failed") : "completed", "approach", approach,
                     "store_mode", mode, "indicators", set.text, "categories_processed", 1,
                     "summary", "total_success", (json_int_t)ok, "total_failed", (json_int_t)failed,
                     "total_skipped", (json_int_t)skipped, "series", list);
out:
    json_decref(list);
    free(codes);
    free(todo);
    an_config_free_list(symbols, nsym);
    an_config_free_list(tfs, ntf);
    return code;
}

/* ---- health_check ------------------------------------------------------------ */

static an_code task_health(run_ctx *rc, json_t *args, json_t **out, an_err *err)
{
    (void)args;
    (void)err;
    an_err perr = {0};
    an_store *p = primary(rc->t, &perr);
    int healthy = 0;
    json_t *h = an_health_check(rc->t->cfg, p, &perr, an_now_ms(), &healthy);
    const char *first = json_string_value(json_array_get(json_object_get(h, "problems"), 0));
    AN_LOG(healthy ? AN_LOG_INFO : AN_LOG_WARN, COMPONENT,
           "msg=\"health check\" status=%s problems=%zu first=\"%.200s\"",
           healthy ? "healthy" : "unhealthy", json_array_size(json_object_get(h, "problems")),
           first ? first : "");
    *out = json_pack(
        "{s:s, s:s, s:i, s:{s:i, s:i, s:i}, s:o}", "status", healthy ? "completed" : "failed",
        "approach", p ? an_tasks_approach(p) : "none", "categories_processed", 1, "summary",
        "total_success", healthy, "total_failed", !healthy, "total_skipped", 0, "health", h);
    if (!healthy)
        json_object_set_new(*out, "error", json_string(first ? first : "unhealthy"));
    return AN_OK;
}

/* ---- optimize_strategy (the run itself: tasks/optimize.c) ------------------ */

typedef struct opt_task {
    run_ctx *rc;
    const char *approach;
    size_t last;
} opt_task;

static void opt_progress(void *ctx, const char *symbol, size_t done, size_t total)
{
    opt_task *ot = ctx;
    if (done != total && done - ot->last < total / 10 + 1)
        return; /* the row is written at most about ten times per symbol */
    ot->last = done == total ? 0 : done;
    char status[96];
    snprintf(status, sizeof status, "Optimizing %s", symbol);
    progress(ot->rc, ot->approach, status, (int64_t)done, (int64_t)total);
}

static an_code task_optimize(run_ctx *rc, json_t *args, json_t **out, an_err *err)
{
    an_tasks *t = rc->t;
    an_opt_spec spec;
    an_grid g;
    int64_t since = INT64_MIN, until = INT64_MAX;
    const char *s_since = arg_str(args, "since", NULL), *s_until = arg_str(args, "until", NULL);
    json_t *sv = json_object_get(args, "symbols");
    if (an_opt_spec_from_json(args, &spec, err) != AN_OK ||
        an_opt_spec_check(&spec, &g, err) != AN_OK ||
        (s_since && an_time_parse(s_since, &since, err) != AN_OK) ||
        (s_until && an_time_parse(s_until, &until, err) != AN_OK))
        return err->code;
    an_grid_free(&g);
    if (sv && !json_is_string(sv))
        return an_err_set(err, AN_ERR_INVALID, "optimize_strategy: symbols must be \"A,B\"");
    const char *symbols = sv ? json_string_value(sv) : an_config_get(t->cfg, AN_CFG_SYMBOLS);
    const char *tf = arg_str(args, "timeframe", an_config_get(t->cfg, AN_CFG_TIMEFRAME));
    an_err perr = {0};
    an_store *p = primary(t, &perr);
    an_code code = AN_ERR_CONNECT;
    opt_task ot = {rc, p ? an_tasks_approach(p) : "duckdb_fallback", 0};
    if (p)
        code = an_optimize_run(p, &spec, symbols, tf, since, until, opt_progress, &ot, out, err);
    else
        *err = perr;
    if (code != AN_OK && is_outage(p ? code : perr.code) && !t->stop && fallback_enabled(t)) {
        /* the primary is down (or went down): optimize over the fallback's candles */
        AN_WARN(COMPONENT,
                "msg=\"TimescaleDB-first approach failed: switching to the DuckDB fallback\" "
                "task=optimize_strategy reason=\"%.200s\"",
                err->msg);
        ot.approach = "duckdb_fallback";
        pthread_mutex_lock(&t->fb_mu);
        an_store *fb = fallback_store(t, err);
        code =
            fb ? an_optimize_run(fb, &spec, symbols, tf, since, until, opt_progress, &ot, out, err)
               : err->code;
        if (fb && code == AN_OK)
            t->fallback_active = 1;
        pthread_mutex_unlock(&t->fb_mu);
    }
    if (code == AN_OK)
        json_object_set_new(*out, "approach", json_string(ot.approach));
    return code;
}

/* ---- the run ----------------------------------------------------------------- */

typedef an_code (*task_fn)(run_ctx *rc, json_t *args, json_t **out, an_err *err);

static const struct {
    const char *name;
    task_fn fn;
} TASKS[] = {
    {"update_market_data", task_update_market_data},
    {"calculate_indicators_for_symbol", task_indicators},
    {"health_check", task_health},
    {"optimize_strategy", task_optimize},
};

static task_fn find_task(const char *name)
{
    for (size_t i = 0; i < sizeof TASKS / sizeof TASKS[0]; i++)
        if (strcmp(TASKS[i].name, name) == 0)
            return TASKS[i].fn;
    return NULL;
}

/* Where a new run is recorded: the primary, or the fallback while it is down. */
static void pick_record_store(run_ctx *rc)
{
    an_err e = {0};
    rc->rec = primary(rc->t, &e);
    rc->rec_is_fb = 0;
}

static void mark_running(an_tasks *t, const char *id, int on)
{
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i <= MAX_WORKERS; i++) {
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

static an_code run_task(an_tasks *t, const char *name, json_t *args, const char *symbol,
                        const char *slot, const char *given_id, char *id_out, json_t **result,
                        an_err *err)
{
    *result = NULL;
    task_fn fn = find_task(name);
    if (!fn)
        return an_err_set(err, AN_ERR_NOT_FOUND,
                          "no task '%.64s' (update_market_data, calculate_indicators_for_symbol, "
                          "health_check, optimize_strategy)",
                          name);
    run_ctx rc = {0};
    rc.t = t;
    an_task_row *r = &rc.row;
    if (given_id)
        snprintf(r->id, sizeof r->id, "%s", given_id);
    else
        new_id(r->id);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->state, sizeof r->state, "PENDING");
    snprintf(r->instance, sizeof r->instance, "%s", t->instance);
    snprintf(r->symbol, sizeof r->symbol, "%s", symbol ? symbol : "");
    snprintf(r->slot, sizeof r->slot, "%s", slot ? slot : "");
    json_t *empty = json_object();
    set_json(&r->args, args ? args : empty);
    json_decref(empty);
    r->created_ms = r->heartbeat_ms = an_now_ms();
    if (id_out)
        snprintf(id_out, AN_TASK_ID_MAX, "%s", r->id);
    pick_record_store(&rc);
    if (rc.rec && !given_id) {
        int inserted = 0;
        an_err e = {0};
        if (an_store_task_claim(rc.rec, r, &inserted, &e) != AN_OK) {
            AN_WARN(COMPONENT, "msg=\"cannot record task run\" id=%s error=\"%s\"", r->id, e.msg);
            if (is_outage(e.code))
                rc.rec = NULL;
        } else if (!inserted) {
            AN_DEBUG(COMPONENT, "msg=\"period already claimed\" task=%s slot=\"%s\"", name,
                     r->slot);
            an_task_row_free(r);
            return AN_OK;
        }
    }
    if (!rc.rec)
        save_row(&rc); /* the primary is down: into the fallback file */
    mark_running(t, r->id, 1);
    r->started_ms = an_now_ms();
    AN_INFO(COMPONENT, "msg=\"task started\" id=%s task=%s symbol=%s instance=%s", r->id, name,
            symbol ? symbol : "-", t->instance);
    json_t *res = NULL;
    an_err terr = {0};
    json_t *a = args ? json_incref(args) : json_object();
    an_code code = fn(&rc, a, &res, &terr);
    json_decref(a);
    an_task_state st;
    if (code != AN_OK)
        st = t->stop ? AN_TASK_INTERRUPTED : AN_TASK_FAILURE;
    else if (t->stop && res &&
             strcmp(json_string_value(json_object_get(res, "status")), "completed") != 0)
        st = AN_TASK_INTERRUPTED;
    else if (res && strcmp(json_string_value(json_object_get(res, "status")), "failed") == 0)
        st = AN_TASK_FAILURE;
    else
        st = AN_TASK_SUCCESS;
    snprintf(r->state, sizeof r->state, "%s", an_task_state_name(st));
    const char *why = res ? json_string_value(json_object_get(res, "error")) : NULL;
    if (code != AN_OK)
        snprintf(r->error, sizeof r->error, "%s", terr.msg);
    else if (st == AN_TASK_INTERRUPTED)
        snprintf(r->error, sizeof r->error, "interrupted by a signal");
    else if (st == AN_TASK_FAILURE)
        snprintf(r->error, sizeof r->error, "%s", why ? why : "every item failed: see the result");
    /* the last meta: done = total */
    json_t *meta = r->meta ? json_loads(r->meta, 0, NULL) : NULL;
    if (meta) {
        if (st == AN_TASK_SUCCESS)
            json_object_set(meta, "done", json_object_get(meta, "total"));
        json_object_set_new(meta, "status", json_string(r->state));
        set_json(&r->meta, meta);
        json_decref(meta);
    }
    if (res) {
        const char *ap = json_string_value(json_object_get(res, "approach"));
        if (ap)
            snprintf(r->approach, sizeof r->approach, "%s", ap);
    }
    set_json(&r->result, res);
    r->finished_ms = r->heartbeat_ms = an_now_ms();
    if (!rc.rec && !rc.rec_is_fb)
        pick_record_store(&rc);
    save_row(&rc);
    mark_running(t, r->id, 0);
    pthread_mutex_lock(&t->mu);
    t->by_state[st]++;
    pthread_mutex_unlock(&t->mu);
    AN_LOG(st == AN_TASK_SUCCESS ? AN_LOG_INFO : AN_LOG_WARN, COMPONENT,
           "msg=\"task finished\" id=%s task=%s symbol=%s state=%s approach=%s%s%s%s", r->id, name,
           symbol ? symbol : "-", r->state, r->approach[0] ? r->approach : "-",
           r->error[0] ? " error=\"" : "", r->error[0] ? r->error : "", r->error[0] ? "\"" : "");
    if (!res) {
        res = json_pack("{s:s, s:s, s:s}", "status", "failed", "error", terr.msg, "code",
                        an_code_str(code));
    }
    json_object_set_new(res, "task",
                        json_pack("{s:s, s:s, s:s}", "id", r->id, "name", name, "state", r->state));
    *result = res;
    an_task_row_free(r);
    if (code != AN_OK && err)
        *err = terr;
    return code;
}

an_code an_tasks_run(an_tasks *t, const char *name, json_t *args, const char *symbol,
                     const char *slot, char *id_out, json_t **result, an_err *err)
{
    json_t *rep = NULL;
    an_err e = {0};
    if (an_tasks_replay(t, &rep, &e) != AN_OK)
        AN_WARN(COMPONENT, "msg=\"fallback replay failed; retried on the next run\" error=\"%s\"",
                e.msg);
    json_decref(rep);
    return run_task(t, name, args, symbol, slot, NULL, id_out, result, err);
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
    an_store *p = primary(t, &e);
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
    an_code rc = an_tasks_run(t, name, args, symbol, slot, NULL, result, err);
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
    an_store *p = primary(t, err);
    an_task_row *rows = NULL;
    size_t n = 0;
    if (p) {
        if (an_store_task_list(p, name, limit, &rows, &n, err) != AN_OK)
            return NULL;
    } else {
        /* the primary is down: the runs recorded in the fallback file since */
        if (!is_outage(err->code) || !fallback_enabled(t))
            return NULL;
        pthread_mutex_lock(&t->fb_mu);
        an_err fe = {0};
        an_store *fb = fallback_store(t, &fe);
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
    an_store *p = primary(t, err);
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

char *an_tasks_metrics(an_tasks *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    pthread_mutex_lock(&t->mu);
    fprintf(f, "# HELP autonama_task_runs_total Task runs finished by this process, by state.\n");
    fprintf(f, "# TYPE autonama_task_runs_total counter\n");
    for (int s = AN_TASK_SUCCESS; s <= AN_TASK_INTERRUPTED; s++)
        fprintf(f, "autonama_task_runs_total{state=\"%s\"} %" PRId64 "\n",
                an_task_state_name((an_task_state)s), t->by_state[s]);
    int running = 0, queued = 0;
    for (int i = 0; i <= MAX_WORKERS; i++)
        running += t->run[i].used;
    for (job *j = t->head; j; j = j->next)
        queued++;
    fprintf(f, "# HELP autonama_task_runs Task runs of this process now, by state.\n");
    fprintf(f, "# TYPE autonama_task_runs gauge\n");
    fprintf(f, "autonama_task_runs{state=\"PENDING\"} %d\n", queued);
    fprintf(f, "autonama_task_runs{state=\"PROGRESS\"} %d\n", running);
    fprintf(f, "# HELP autonama_fallback_active 1 while data sits in the DuckDB fallback file.\n");
    fprintf(f, "# TYPE autonama_fallback_active gauge\n");
    fprintf(f, "autonama_fallback_active %d\n", t->fallback_active);
    if (t->sched) {
        fprintf(f, "# HELP autonama_schedule_firings_total Beat schedule firings.\n");
        fprintf(f, "# TYPE autonama_schedule_firings_total counter\n");
        for (int i = 0; i < an_sched_count(t->sched); i++) {
            an_sched_stats st;
            an_sched_entry_stats(t->sched, i, &st);
            fprintf(f, "autonama_schedule_firings_total{entry=\"%s\"} %" PRId64 "\n",
                    an_sched_entry_name(t->sched, i), st.fired);
        }
    }
    pthread_mutex_unlock(&t->mu);
    fclose(f);
    return buf;
}

/* ---- the serve runtime ------------------------------------------------------ */

/* Caller holds t->mu. Takes ownership of j. */
static void enqueue(an_tasks *t, job *j)
{
    j->next = NULL;
    if (t->tail)
        t->tail->next = j;
    else
        t->head = j;
    t->tail = j;
    pthread_cond_broadcast(&t->cv);
}

static job *new_job(int entry, const char *name, const char *symbol, const char *slot, json_t *args)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->entry = entry;
    snprintf(j->name, sizeof j->name, "%s", name);
    snprintf(j->symbol, sizeof j->symbol, "%s", symbol ? symbol : "");
    snprintf(j->slot, sizeof j->slot, "%s", slot ? slot : "");
    j->args = args;
    return j;
}

/* Queues one job of a firing of entry: tag (a symbol, "category:NAME", or
 * NULL) names its slot and advisory lock; takes ownership of args. */
static void fire_job(an_tasks *t, int entry, const char *ename, const char *tag, int64_t slot_ms,
                     json_t *args)
{
    beat_entry *be = &t->entries[entry];
    char slot[160];
    snprintf(slot, sizeof slot, "%s|%s|%" PRId64, ename, tag ? tag : "-", slot_ms);
    job *j = new_job(entry, be->task, tag, slot, args);
    if (!j) {
        json_decref(args);
        return;
    }
    be->pending++;
    enqueue(t, j);
}

/* The scheduler's fire callback (t->mu held): one job per symbol. */
static void on_fire(void *ctx, int entry, int64_t slot_ms)
{
    an_tasks *t = ctx;
    beat_entry *be = &t->entries[entry];
    const char *ename = an_sched_entry_name(t->sched, entry);
    size_t n = be->symbols ? be->n : 1;
    be->pending = 0;
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
        fire_job(t, entry, ename, sym, slot_ms, args);
    }
    for (size_t c = 0; c < ncat; c++) {
        if (strcmp(cats[c], "crypto") == 0)
            continue;
        char tag[48];
        snprintf(tag, sizeof tag, "category:%s", cats[c]);
        fire_job(t, entry, ename, tag, slot_ms, json_pack("{s:s}", "categories", cats[c]));
    }
    an_config_free_list(cats, ncat);
    AN_DEBUG(COMPONENT, "msg=\"fired\" entry=%s jobs=%d", ename, be->pending);
    if (be->pending == 0)
        an_sched_step(t->sched, AN_SCHED_DONE, entry);
}

static void *worker(void *arg)
{
    an_tasks *t = arg;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (!t->head && !t->stop)
            pthread_cond_wait(&t->cv, &t->mu);
        if (t->stop)
            break;
        job *j = t->head;
        t->head = j->next;
        if (!t->head)
            t->tail = NULL;
        t->busy++;
        pthread_mutex_unlock(&t->mu);
        json_t *res = NULL;
        an_err err = {0};
        if (j->id[0]) {
            an_tasks_replay(t, NULL, &err);
            run_task(t, j->name, j->args, NULL, NULL, j->id, NULL, &res, &err);
        } else {
            int ran = 0;
            an_tasks_run_locked(t, j->name, j->args, j->symbol[0] ? j->symbol : NULL,
                                j->slot[0] ? j->slot : NULL, &ran, &res, &err);
        }
        json_decref(res);
        json_decref(j->args);
        pthread_mutex_lock(&t->mu);
        t->busy--;
        if (j->entry >= 0 && --t->entries[j->entry].pending == 0)
            an_sched_step(t->sched, AN_SCHED_DONE, j->entry);
        free(j);
        pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static void heartbeats(an_tasks *t)
{
    char ids[MAX_WORKERS + 1][AN_TASK_ID_MAX];
    int n = 0;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i <= MAX_WORKERS; i++)
        if (t->run[i].used)
            snprintf(ids[n++], AN_TASK_ID_MAX, "%s", t->run[i].id);
    pthread_mutex_unlock(&t->mu);
    if (n == 0)
        return;
    an_err e = {0};
    an_store *p = primary(t, &e);
    for (int i = 0; p && i < n; i++)
        if (an_store_task_heartbeat(p, ids[i], an_now_ms(), &e) != AN_OK)
            break;
}

static void *beat(void *arg)
{
    an_tasks *t = arg;
    int64_t last_hb = 0;
    pthread_mutex_lock(&t->mu);
    while (an_sched_get_state(t->sched) == AN_SCHED_RUNNING && !t->stop) {
        int64_t next = an_sched_step(t->sched, AN_SCHED_TICK, -1);
        int64_t now = t->clock.now_ms(t->clock.ctx);
        if (now - last_hb >= HEARTBEAT_MS) {
            last_hb = now;
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
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

/* Splits a list setting ("" -> AUTONAMA_SYMBOLS). */
static an_code entry_symbols(an_tasks *t, an_cfg_key key, beat_entry *be, an_err *err)
{
    const char *v = an_config_get(t->cfg, key);
    if (!v || !*v)
        return an_config_symbols(t->cfg, &be->symbols, &be->n, err);
    an_config c = *t->cfg;
    c.val[AN_CFG_SYMBOLS] = (char *)v;
    return an_config_symbols(&c, &be->symbols, &be->n, err);
}

an_code an_tasks_start(an_tasks *t, const an_clock *clock, an_err *err)
{
    t->clock = *clock;
    /* runs of instances that died (no heartbeat), and our own name's leftovers */
    an_err e = {0};
    an_store *p = primary(t, &e);
    int n = 0;
    int64_t now = an_now_ms();
    if (p &&
        an_store_task_interrupt_stale(
            p, an_config_is_set(t->cfg, AN_CFG_INSTANCE) ? t->instance : NULL,
            now - an_config_int(t->cfg, AN_CFG_TASK_STALE_AFTER) * 1000, now, &n, &e) == AN_OK &&
        n > 0)
        AN_WARN(COMPONENT, "msg=\"runs of a stopped instance marked INTERRUPTED\" runs=%d", n);
    t->sched = an_sched_new(t->clock, on_fire, t);
    if (!t->sched)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
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
        long iv = an_config_int(t->cfg, BEAT[i].interval);
        int idx = an_sched_add(t->sched, BEAT[i].entry, (int64_t)iv * 1000, iv > 0);
        beat_entry *be = &t->entries[idx];
        snprintf(be->task, sizeof be->task, "%s", BEAT[i].task);
        if (BEAT[i].symbols != AN_CFG__COUNT && entry_symbols(t, BEAT[i].symbols, be, err) != AN_OK)
            return err->code;
        AN_INFO(COMPONENT, "msg=\"beat entry\" entry=%s task=%s every_s=%ld enabled=%d symbols=%zu",
                BEAT[i].entry, BEAT[i].task, iv, iv > 0, be->n);
    }
    int nw = (int)an_config_int(t->cfg, AN_CFG_WORKERS);
    if (nw > MAX_WORKERS)
        nw = MAX_WORKERS;
    for (int i = 0; i < nw; i++)
        if (pthread_create(&t->workers[t->nworkers], NULL, worker, t) == 0)
            t->nworkers++;
    if (t->nworkers == 0 || pthread_create(&t->beat, NULL, beat, t) != 0) {
        t->stop = 1;
        pthread_cond_broadcast(&t->cv);
        for (int i = 0; i < t->nworkers; i++)
            pthread_join(t->workers[i], NULL);
        t->nworkers = 0;
        return an_err_set(err, AN_ERR_INTERNAL, "cannot start the task threads");
    }
    t->started = 1;
    AN_INFO(COMPONENT, "msg=\"scheduler started\" instance=%s workers=%d", t->instance,
            t->nworkers);
    return AN_OK;
}

an_code an_tasks_submit(an_tasks *t, const char *name, json_t *args, char *id_out, an_err *err)
{
    if (!find_task(name))
        return an_err_set(err, AN_ERR_NOT_FOUND, "no task '%.64s'", name);
    if (!t->started || t->stop)
        return an_err_set(err, AN_ERR_UNSUPPORTED, "the task runtime is not running");
    json_t *a = args ? json_deep_copy(args) : json_object();
    job *j = new_job(-1, name, NULL, NULL, a);
    if (!j) {
        json_decref(a);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    new_id(j->id);
    run_ctx rc = {0};
    rc.t = t;
    snprintf(rc.row.id, sizeof rc.row.id, "%s", j->id);
    snprintf(rc.row.name, sizeof rc.row.name, "%s", name);
    snprintf(rc.row.state, sizeof rc.row.state, "PENDING");
    snprintf(rc.row.instance, sizeof rc.row.instance, "%s", t->instance);
    set_json(&rc.row.args, a);
    rc.row.created_ms = rc.row.heartbeat_ms = an_now_ms();
    pick_record_store(&rc);
    save_row(&rc);
    an_task_row_free(&rc.row);
    if (id_out)
        snprintf(id_out, AN_TASK_ID_MAX, "%s", j->id);
    pthread_mutex_lock(&t->mu);
    enqueue(t, j);
    pthread_mutex_unlock(&t->mu);
    return AN_OK;
}

/* Records a run as INTERRUPTED (queued runs at shutdown, runs still going
 * after the grace). */
static void interrupt_row(an_tasks *t, const char *id, const char *why)
{
    an_err e = {0};
    an_store *p = primary(t, &e);
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

int an_tasks_shutdown(an_tasks *t, int64_t grace_ms)
{
    if (!t->started)
        return 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_mutex_lock(&t->mu);
    an_sched_step(t->sched, AN_SCHED_STOP, -1);
    t->stop = 1; /* running tasks stop between pages; workers take nothing new */
    /* queued jobs never start: submitted ones are recorded INTERRUPTED */
    job *q = t->head;
    t->head = t->tail = NULL;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    while (q) {
        job *next = q->next;
        if (q->id[0])
            interrupt_row(t, q->id, "interrupted: the instance stopped before it started");
        pthread_mutex_lock(&t->mu);
        if (q->entry >= 0 && --t->entries[q->entry].pending == 0)
            an_sched_step(t->sched, AN_SCHED_DONE, q->entry);
        pthread_mutex_unlock(&t->mu);
        json_decref(q->args);
        free(q);
        q = next;
    }
    pthread_join(t->beat, NULL);
    /* wait for the workers, up to the grace */
    int done = 0;
    for (;;) {
        pthread_mutex_lock(&t->mu);
        done = t->busy == 0;
        pthread_mutex_unlock(&t->mu);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (done || el >= grace_ms)
            break;
        usleep(50 * 1000);
    }
    pthread_mutex_lock(&t->mu);
    an_sched_step(t->sched, done ? AN_SCHED_STOP : AN_SCHED_GRACE_OVER, -1);
    pthread_mutex_unlock(&t->mu);
    if (!done) {
        char ids[MAX_WORKERS + 1][AN_TASK_ID_MAX];
        int n = 0;
        pthread_mutex_lock(&t->mu);
        for (int i = 0; i <= MAX_WORKERS; i++)
            if (t->run[i].used)
                snprintf(ids[n++], AN_TASK_ID_MAX, "%s", t->run[i].id);
        pthread_mutex_unlock(&t->mu);
        for (int i = 0; i < n; i++)
            interrupt_row(t, ids[i], "interrupted: still running when the shutdown grace ended");
        AN_WARN(COMPONENT, "msg=\"shutdown grace over: runs marked INTERRUPTED\" runs=%d", n);
        return 0;
    }
    for (int i = 0; i < t->nworkers; i++)
        pthread_join(t->workers[i], NULL);
    t->nworkers = 0;
    t->started = 0;
    AN_INFO(COMPONENT, "msg=\"task runtime stopped\"");
    return 1;
}

void an_tasks_free(an_tasks *t)
{
    if (!t)
        return;
    if (t->started && !an_tasks_shutdown(t, 0))
        return; /* threads still run: leave it to the exit */
    for (int i = 0; i < MAX_ENTRIES; i++)
        an_config_free_list(t->entries[i].symbols, t->entries[i].n);
    an_sched_free(t->sched);
    an_store_close(t->fb);
    pthread_mutex_destroy(&t->fb_mu);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}
