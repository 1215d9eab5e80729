/*
 * bodies.c - the task bodies (the seed's Celery tasks) and their registry:
 * update_market_data (ingest.h, per category, through the hybrid rule),
 * calculate_indicators_for_symbol (engine.h, through the hybrid rule) and
 * health_check (health.h). Each body reads its JSON arguments and fills the
 * seed's result shape; runs.c records it.
 *
 * Threads: a body runs on the thread of its run (the command line's main
 * thread, a runtime worker). It takes no lock of its own; the hybrid rule
 * takes fb_mu around the fallback part.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/engine.h"
#include "core/log.h"
#include "source/provider.h"
#include "tasks/health.h"
#include "tasks/ingest.h"
#include "tasks/tasks_internal.h"

static const char *COMPONENT = "tasks";

/* "crypto, forex, stock, commodity": the provider layer's list, for messages. */
static char category_list[160];
static pthread_once_t category_once = PTHREAD_ONCE_INIT;

static void build_category_list(void)
{
    const char *const *c = an_provider_categories();
    for (size_t i = 0; c[i]; i++)
        snprintf(category_list + strlen(category_list),
                 sizeof category_list - strlen(category_list), "%s%s", i ? ", " : "", c[i]);
}

static const char *category_names(void)
{
    pthread_once(&category_once, build_category_list);
    return category_list;
}

/* ---- arguments ------------------------------------------------------------ */

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
            an_code vrc = s ? an_symbol_validate(s, err) : AN_ERR_INVALID;
            if (vrc != AN_OK || !(list[i] = strdup(s))) {
                an_config_free_list(list, k);
                return !s             ? an_err_set(err, vrc, "symbols must be strings")
                       : vrc != AN_OK ? vrc
                                      : an_err_set(err, AN_ERR_NOMEM, "out of memory");
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

static json_t *ingest_symbols_json(const an_ingest_symbol *res, size_t n,
                                   const unsigned char *on_fb, int64_t *ok, int64_t *failed,
                                   int64_t *skipped)
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
    char fb_reason[AN_ERR_MSG_MAX];
} ingest_totals;

/* One category's run through the hybrid rule. */
typedef struct category_run {
    an_run_ctx *rc;
    an_ingest_options o;
    const char *category;
    char **symbols;
    size_t n;
    an_ingest_symbol *res, *r2;
    int64_t *before; /* the newest stored candle on the primary before the run */
    int64_t *eff;
    const char **group;
    size_t *gidx;
    unsigned char *done;
    ingest_totals *tot;
} category_run;

/* The fallback part: the fallback file may be empty, so fetch what the
 * primary lacked, from the newest candle it had before the run (or the
 * requested since); symbols with the same start go in one parallel run. */
static void category_on_fallback(category_run *cr, an_store *fb, const unsigned char *todo,
                                 const an_err *fe)
{
    size_t n = cr->n;
    for (size_t i = 0; i < n; i++)
        cr->eff[i] = cr->o.since_ms == INT64_MIN ? cr->before[i] : cr->o.since_ms;
    for (size_t i = 0; i < n; i++) {
        if (!todo[i] || cr->done[i])
            continue;
        size_t ng = 0;
        for (size_t j = i; j < n; j++) {
            if (todo[j] && !cr->done[j] && cr->eff[j] == cr->eff[i]) {
                cr->done[j] = 1;
                cr->group[ng] = cr->symbols[j];
                cr->gidx[ng++] = j;
                json_array_append_new(cr->tot->fb_symbols, json_string(cr->symbols[j]));
            }
        }
        an_ingest_options o2 = cr->o;
        o2.symbols = cr->group;
        o2.n_symbols = ng;
        o2.since_ms = cr->eff[i];
        o2.force = o2.force && o2.since_ms != INT64_MIN;
        an_err e2 = {0};
        an_code frc = fb ? an_ingest_run(fb, &o2, cr->r2, &e2) : fe->code;
        for (size_t k = 0; k < ng; k++) {
            an_ingest_symbol *r = &cr->res[cr->gidx[k]];
            if (!fb)
                snprintf(r->error, sizeof r->error, "fallback unavailable: %.400s", fe->msg);
            else if (frc != AN_OK)
                snprintf(r->error, sizeof r->error, "fallback: %.400s", e2.msg);
            else
                *r = cr->r2[k];
        }
    }
}

/* The hybrid rule's callback: the category's symbols on one store. */
static an_code category_on(void *ctx, an_store *s, int on_fb, const unsigned char *todo,
                           an_code *codes, an_err *err)
{
    category_run *cr = ctx;
    char status_text[96];
    size_t n = cr->n;
    if (!on_fb) {
        snprintf(status_text, sizeof status_text, "Processing %s", cr->category);
        an_tasks_progress(cr->rc, an_tasks_approach(s), status_text, 0, (int64_t)n);
        for (size_t i = 0; i < n; i++) {
            int found = 0;
            an_err e;
            if (an_store_get_latest_timestamp(s, cr->symbols[i], cr->o.timeframe, &cr->before[i],
                                              &found, &e) != AN_OK ||
                !found)
                cr->before[i] = INT64_MIN;
        }
        an_code rc = an_ingest_run(s, &cr->o, cr->res, err);
        for (size_t i = 0; rc == AN_OK && i < n; i++)
            codes[i] = cr->res[i].status;
        return rc;
    }
    category_on_fallback(cr, s, todo, err);
    return AN_OK;
}

/* One category: its symbols on the primary first, those the primary fails
 * (or all, when it is down) on the fallback file. Fills *cat_json. */
static an_code update_category(an_run_ctx *rc, const an_ingest_options *base, const char *category,
                               char **symbols, size_t n, ingest_totals *tot, json_t **cat_json,
                               an_err *err)
{
    category_run cr = {
        .rc = rc, .o = *base, .category = category, .symbols = symbols, .n = n, .tot = tot};
    cr.o.symbols = (const char *const *)symbols;
    cr.o.n_symbols = n;
    an_code code = AN_OK;
    cr.res = calloc(n, sizeof *cr.res);
    cr.r2 = calloc(n, sizeof *cr.r2);
    cr.before = calloc(n, sizeof *cr.before);
    cr.eff = calloc(n, sizeof *cr.eff);
    cr.group = calloc(n, sizeof *cr.group);
    cr.gidx = calloc(n, sizeof *cr.gidx);
    cr.done = calloc(n, 1);
    an_code *codes = calloc(n, sizeof *codes);
    unsigned char *todo = calloc(n, 1);
    char what[64], fb_status[96];
    snprintf(what, sizeof what, "category=%.40s", category);
    snprintf(fb_status, sizeof fb_status, "Processing %.40s with the DuckDB fallback", category);
    an_hybrid h = {
        .what = what, .rc = rc, .fb_status = fb_status, .n = n, .codes = codes, .todo = todo};
    if (!cr.res || !cr.r2 || !cr.before || !cr.eff || !cr.group || !cr.gidx || !cr.done || !codes ||
        !todo) {
        code = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        cr.before[i] = INT64_MIN;
    if ((code = an_tasks_hybrid(rc->t, &h, category_on, &cr, err)) != AN_OK)
        goto out;
    if (!tot->approach || strcmp(tot->approach, "duckdb_fallback") != 0 || h.n_fallback) {
        tot->approach = h.approach;
        tot->mode = h.mode;
    }
    if (h.n_fallback)
        snprintf(tot->fb_reason, sizeof tot->fb_reason, "%s", h.reason);
    int64_t ok = 0, failed = 0, skipped = 0;
    json_t *syms =
        ingest_symbols_json(cr.res, n, h.n_fallback ? todo : NULL, &ok, &failed, &skipped);
    *cat_json =
        json_pack("{s:s, s:I, s:I, s:I, s:o}", "provider",
                  cr.o.provider ? cr.o.provider : "binance", "success", (json_int_t)ok, "failed",
                  (json_int_t)failed, "skipped", (json_int_t)skipped, "symbols", syms);
    tot->ok += ok;
    tot->failed += failed;
    tot->skipped += skipped;
out:
    free(cr.res);
    free(cr.r2);
    free(cr.before);
    free(cr.eff);
    free(cr.group);
    free(cr.gidx);
    free(cr.done);
    free(codes);
    free(todo);
    return code;
}

/* 1 when the run's arguments name symbols (then they are every category's). */
static int has_symbol_args(json_t *args)
{
    return json_is_array(args) || json_object_get(args, "symbols") ||
           json_object_get(args, "symbol");
}

/* The run's categories: args.categories ("crypto,forex") or the
 * configuration's; each one a known category. */
static an_code run_categories(const an_config *cfg, json_t *args, char ***cats, size_t *ncat,
                              an_err *err)
{
    an_config ccfg = *cfg;
    const char *cat_arg = arg_str(args, "categories", NULL);
    if (cat_arg) {
        for (const char *c = cat_arg; *c;) {
            size_t len = strcspn(c, ", ");
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(len < 31 ? len : 31), c);
            if (len && !an_provider_category_valid(name))
                return an_err_set(err, AN_ERR_INVALID, "unknown category '%.40s' (%s)", name,
                                  category_names());
            c += len;
            c += strspn(c, ", ");
        }
        ccfg.val[AN_CFG_CATEGORIES] = (char *)cat_arg;
    }
    an_code code = an_config_categories(&ccfg, cats, ncat, err);
    if (code == AN_OK && *ncat == 0) {
        an_config_free_list(*cats, *ncat);
        *cats = NULL;
        return an_err_set(err, AN_ERR_INVALID, "no categories given");
    }
    return code;
}

/* The ingest options of a run, from its arguments and the configuration. */
static an_code ingest_options(an_tasks *t, json_t *args, an_ingest_options *o, an_err *err)
{
    const an_config *cfg = t->cfg;
    memset(o, 0, sizeof *o);
    o->since_ms = INT64_MIN;
    o->until_ms = INT64_MAX;
    const char *s_since = arg_str(args, "since", NULL), *s_until = arg_str(args, "until", NULL);
    an_code prc = AN_OK;
    if ((s_since && (prc = an_time_parse(s_since, &o->since_ms, err)) != AN_OK) ||
        (s_until && (prc = an_time_parse(s_until, &o->until_ms, err)) != AN_OK))
        return prc;
    o->base_url = an_config_get(cfg, AN_CFG_BINANCE_BASE_URL);
    o->timeframe = arg_str(args, "timeframe", an_config_get(cfg, AN_CFG_TIMEFRAME));
    o->lookback = an_config_int(cfg, AN_CFG_INGEST_LOOKBACK);
    o->force = json_is_true(json_object_get(args, "force"));
    o->parallel = (int)an_config_int(cfg, AN_CFG_INGEST_PARALLEL);
    o->timeout_ms = (int)an_config_int(cfg, AN_CFG_BINANCE_TIMEOUT_MS);
    o->max_tries = (int)an_config_int(cfg, AN_CFG_BINANCE_MAX_TRIES);
    o->backoff_ms = (int)an_config_int(cfg, AN_CFG_BINANCE_BACKOFF_MS);
    o->weight_budget = (int)an_config_int(cfg, AN_CFG_BINANCE_WEIGHT_BUDGET);
    o->stop = &t->stop;
    o->progress = json_is_true(json_object_get(args, "progress"));
    if (o->force && o->since_ms == INT64_MIN)
        return an_err_set(err, AN_ERR_INVALID, "--force needs --since: the range to refetch");
    return AN_OK;
}

/* One category of the run into cjson; non-AN_OK when the store itself
 * failed (no fallback): the run fails. */
static an_code run_category(an_run_ctx *rc, an_ingest_options *o, const char *cat, char **arg_syms,
                            size_t narg, ingest_totals *tot, json_t *cjson, an_err *err)
{
    an_category_config cc;
    an_err ce = {0};
    json_t *cj = NULL;
    an_code code = AN_OK;
    if (an_config_category(rc->t->cfg, cat, &cc, &ce) == AN_OK) {
        o->category = cat;
        o->provider = cc.provider;
        o->source = cc.source;
        an_code r = update_category(rc, o, cat, arg_syms ? arg_syms : cc.symbols,
                                    arg_syms ? narg : cc.n_symbols, tot, &cj, &ce);
        if (r != AN_OK && r != AN_ERR_INVALID) {
            *err = ce;
            code = r;
        }
    }
    if (!cj) { /* the category could not run: no provider, no symbols, a bad setting */
        AN_WARN(COMPONENT, "msg=\"category failed\" category=%s error=\"%.300s\"", cat, ce.msg);
        int64_t nf = (int64_t)(arg_syms ? narg : cc.n_symbols ? cc.n_symbols : 1);
        tot->failed += nf;
        cj = json_pack("{s:s, s:s, s:s, s:I}", "status", "failed", "provider",
                       cc.provider ? cc.provider : "", "error", ce.msg, "failed", (json_int_t)nf);
    }
    json_object_set_new(cjson, cat, cj);
    an_config_free_list(cc.symbols, cc.n_symbols);
    return code;
}

static an_code task_update_market_data(an_run_ctx *rc, json_t *args, json_t **out, an_err *err)
{
    an_tasks *t = rc->t;
    const an_config *cfg = t->cfg;
    an_ingest_options o;
    char **cats = NULL, **arg_syms = NULL;
    size_t ncat = 0, narg = 0;
    an_code code = ingest_options(t, args, &o, err);
    if (code == AN_OK)
        code = run_categories(cfg, args, &cats, &ncat, err);
    if (code == AN_OK && has_symbol_args(args))
        code = arg_symbols(t, args, &arg_syms, &narg, err);
    if (code != AN_OK) {
        an_config_free_list(cats, ncat);
        return code;
    }
    ingest_totals tot = {0}; /* approach and mode: set by the first category that runs */
    tot.fb_symbols = json_array();
    json_t *cjson = json_object();
    for (size_t c = 0; c < ncat && code == AN_OK; c++)
        code = run_category(rc, &o, cats[c], arg_syms, narg, &tot, cjson, err);
    if (code == AN_OK) {
        *out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:O}", "status",
                         tot.failed ? (tot.ok || tot.skipped ? "partial" : "failed") : "completed",
                         "approach", tot.approach ? tot.approach : "none", "store_mode",
                         tot.mode ? tot.mode : "none", "timeframe", o.timeframe,
                         "categories_processed", (int)ncat, "summary", "total_success",
                         (json_int_t)tot.ok, "total_failed", (json_int_t)tot.failed,
                         "total_skipped", (json_int_t)tot.skipped, "categories", cjson);
        if (json_array_size(tot.fb_symbols) > 0)
            json_object_set_new(*out, "fallback",
                                json_pack("{s:s, s:s, s:O}", "path",
                                          an_config_get(cfg, AN_CFG_FALLBACK_PATH), "reason",
                                          tot.fb_reason, "symbols", tot.fb_symbols));
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
                          const char *where, const atomic_int *stop, json_t *list, an_code *codes)
{
    for (size_t i = 0; i < nsym; i++) {
        for (size_t k = 0; k < ntf; k++) {
            size_t at = i * ntf + k;
            if (todo && !todo[at])
                continue;
            an_engine_result r;
            an_err e = {0};
            json_t *o = json_pack("{s:s, s:s}", "symbol", symbols[i], "timeframe", tfs[k]);
            if (atomic_load(stop)) /* shutting down: the series left are not started */
                codes[at] = an_err_set(&e, AN_ERR_TIMEOUT, "stopped: the process is shutting down");
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

/* One indicator run through the hybrid rule. */
typedef struct indicator_run {
    an_run_ctx *rc;
    an_ind_set set;
    an_load_pref pref;
    char **symbols, **tfs;
    size_t nsym, ntf;
    json_t *list;
} indicator_run;

/* The hybrid rule's callback: the series on one store (NULL: the fallback
 * cannot be opened; *err says why and the run fails). */
static an_code indicators_cb(void *ctx, an_store *s, int on_fb, const unsigned char *todo,
                             an_code *codes, an_err *err)
{
    indicator_run *ir = ctx;
    size_t n = ir->nsym * ir->ntf;
    if (!s)
        return err->code;
    if (!on_fb) /* the fallback's progress is the hybrid's (before fb_mu) */
        an_tasks_progress(ir->rc, an_tasks_approach(s), "Calculating indicators", 0, (int64_t)n);
    indicators_on(s, &ir->set, ir->pref, ir->symbols, ir->nsym, ir->tfs, ir->ntf, todo,
                  on_fb ? "duckdb_fallback" : NULL, &ir->rc->t->stop, ir->list, codes);
    return AN_OK;
}

/* The run's symbols and timeframes: args.timeframes, else
 * AUTONAMA_INDICATOR_TIMEFRAMES; never AUTONAMA_TIMEFRAME (the ingest
 * timeframe; the command line passes its --timeframe as args.timeframes). */
static an_code indicator_series(an_tasks *t, json_t *args, indicator_run *ir, an_err *err)
{
    an_code code = arg_symbols(t, args, &ir->symbols, &ir->nsym, err);
    if (code != AN_OK)
        return code;
    an_config c = *t->cfg;
    const char *tfarg = arg_str(args, "timeframes", NULL);
    if (tfarg)
        c.val[AN_CFG_INDICATOR_TIMEFRAMES] = (char *)tfarg;
    c.from[AN_CFG_TIMEFRAME] = AN_CFG_ORIGIN_DEFAULT;
    return an_config_indicator_timeframes(&c, &ir->tfs, &ir->ntf, err);
}

static an_code task_indicators(an_run_ctx *rc, json_t *args, json_t **out, an_err *err)
{
    an_tasks *t = rc->t;
    indicator_run ir = {.rc = rc};
    an_code prc;
    if ((prc =
             an_ind_set_parse(arg_str(args, "indicators", an_config_get(t->cfg, AN_CFG_INDICATORS)),
                              &ir.set, err)) != AN_OK ||
        (prc =
             an_load_pref_parse(arg_str(args, "load_path", an_config_get(t->cfg, AN_CFG_LOAD_PATH)),
                                &ir.pref, err)) != AN_OK)
        return prc;
    an_code code = indicator_series(t, args, &ir, err);
    size_t n = ir.nsym * ir.ntf;
    an_code *codes = code == AN_OK ? calloc(n ? n : 1, sizeof *codes) : NULL;
    unsigned char *todo = code == AN_OK ? calloc(n ? n : 1, 1) : NULL;
    ir.list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(ir.list, json_null());
    an_hybrid h = {.what = "task=calculate_indicators_for_symbol",
                   .rc = rc,
                   .fb_status = "Calculating indicators on the DuckDB fallback",
                   .n = n,
                   .codes = codes,
                   .todo = todo};
    if (code != AN_OK)
        goto out;
    if (!codes || !todo) {
        code = an_err_set(err, AN_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((code = an_tasks_hybrid(t, &h, indicators_cb, &ir, err)) != AN_OK)
        goto out;
    int64_t ok = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < n; i++) {
        const char *st = json_string_value(json_object_get(json_array_get(ir.list, i), "status"));
        ok += st && !strcmp(st, "success");
        skipped += st && !strcmp(st, "skipped");
        failed += !st || !strcmp(st, "failed");
    }
    *out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:O}", "status",
                     failed ? (ok ? "partial" : "failed") : "completed", "approach", h.approach,
                     "store_mode", h.primary_mode ? h.primary_mode : h.mode, "indicators",
                     ir.set.text, "categories_processed", 1, "summary", "total_success",
                     (json_int_t)ok, "total_failed", (json_int_t)failed, "total_skipped",
                     (json_int_t)skipped, "series", ir.list);
out:
    json_decref(ir.list);
    free(codes);
    free(todo);
    an_config_free_list(ir.symbols, ir.nsym);
    an_config_free_list(ir.tfs, ir.ntf);
    return code;
}

/* ---- health_check ------------------------------------------------------------ */

static an_code task_health(an_run_ctx *rc, json_t *args, json_t **out, an_err *err)
{
    (void)args;
    (void)err;
    an_err perr = {0};
    an_store *p = an_tasks_primary(rc->t, &perr);
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

/* ---- the registry ---------------------------------------------------------- */

static const struct {
    an_task_def def;
    an_task_body body;
} TASKS[] = {
    {{"update_market_data", "candles from each category's provider into the store",
      an_task_ingest_check},
     task_update_market_data},
    {{"calculate_indicators_for_symbol", "indicators with DuckDB into analytics.indicators",
      an_task_indicators_check},
     task_indicators},
    {{"health_check", "connection, schema and freshness", an_task_health_check_args}, task_health},
    {{"optimize_strategy", "a strategy's parameter grid backtested into optimization.results",
      an_task_optimize_check},
     an_task_optimize},
};
#define NTASKS (sizeof TASKS / sizeof TASKS[0])

static char task_names[160];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void build_task_names(void)
{
    for (size_t i = 0; i < NTASKS; i++)
        snprintf(task_names + strlen(task_names), sizeof task_names - strlen(task_names), "%s%s",
                 i ? ", " : "", TASKS[i].def.name);
}

const char *an_tasks_names(void)
{
    pthread_once(&names_once, build_task_names);
    return task_names;
}

const an_task_def *an_tasks_registry(size_t i)
{
    return i < NTASKS ? &TASKS[i].def : NULL;
}

const an_task_def *an_tasks_find(const char *name)
{
    for (size_t i = 0; name && i < NTASKS; i++)
        if (strcmp(TASKS[i].def.name, name) == 0)
            return &TASKS[i].def;
    return NULL;
}

an_task_body an_tasks_body(const char *name)
{
    for (size_t i = 0; name && i < NTASKS; i++)
        if (strcmp(TASKS[i].def.name, name) == 0)
            return TASKS[i].body;
    return NULL;
}

an_code an_tasks_check_args(const char *name, json_t *args, an_err *err)
{
    const an_task_def *d = an_tasks_find(name);
    if (!d)
        return an_err_set(err, AN_ERR_NOT_FOUND, "no task '%.64s' (%s)", name ? name : "",
                          an_tasks_names());
    return d->check_args ? d->check_args(args, err) : AN_OK;
}
