/*
 * main.c - the autonama command line: parses the command and dispatches.
 *
 *   autonama serve       HTTP API + dashboard + scheduler (the main job)
 *   autonama migrate     create or upgrade the schema (idempotent)
 *   autonama health      connection, schema, freshness; JSON; exit 0 only when healthy
 *   autonama ingest      fetch Binance klines (the seed's update_market_data)
 *   autonama import F... load candles from files into the store
 *   autonama indicators  calculate indicators (DuckDB) into analytics.indicators
 *
 * Every command prints its result as one JSON object on stdout; logs and the
 * one-line error go to stderr. Exit status: 0 success, 1 failure, 2 bad
 * input or configuration.
 */
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analytics/engine.h"
#include "api/http.h"
#include "core/config.h"
#include "core/log.h"
#include "source/import.h"
#include "store/store.h"
#include "tasks/health.h"
#include "tasks/ingest.h"
#include "tasks/service.h"

#define AN_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: autonama COMMAND [flags] [args]\n\n"
            "commands:\n"
            "  serve              run the HTTP API (see openapi.json) on AUTONAMA_HTTP_ADDR\n"
            "  migrate            create or upgrade the schema (idempotent)\n"
            "  health             check connection, schema and data freshness (JSON);\n"
            "                     exit 0 only when healthy\n"
            "  import FILE...     load candles from freqtrade JSON, CryptoDataDownload CSV,\n"
            "                     a CSV with a header, or a Binance public-data klines CSV\n"
            "                     [--format F] [--symbol BASE/QUOTE] [--timeframe TF]\n"
            "  ingest             fetch candles for each category from its provider\n"
            "                     (crypto: Binance klines) [--categories C,..] [--symbols S,..]\n"
            "                     [--timeframe TF] [--since T [--until T]] [--force]\n"
            "  export             one series' candles as CSV [--symbol S] [--timeframe TF]\n"
            "  indicators         calculate indicators with DuckDB and store the new ones\n"
            "                     [--symbols S,..] [--timeframe TF | --timeframes TF,..]\n"
            "                     [--indicators sma:20,rsi:14,...] [--load-path auto|direct|copy]\n"
            "  version            print the version\n\n");
    an_config_print_help(f);
}

static void print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    if (s) {
        puts(s);
        free(s);
    }
    fflush(stdout);
}

/* The one error line, and a failed result on stdout. */
static int fail(const char *command, const an_err *err)
{
    fprintf(stderr, "autonama%s%s: error: %s\n", *command ? " " : "", command, err->msg);
    json_t *o = json_pack("{s:s, s:s, s:s}", "status", "failed", "error", err->msg, "code",
                          an_code_str(err->code));
    print_json(o);
    json_decref(o);
    return an_code_exit_status(err->code);
}

static const char *approach(an_store *s)
{
    switch (an_store_get_mode(s)) {
    case AN_STORE_TIMESCALEDB: return "timescaledb_first";
    case AN_STORE_POSTGRES: return "postgres_first";
    case AN_STORE_DUCKDB: return "duckdb_embedded";
    }
    return "unknown";
}

static int cmd_migrate(const an_config *cfg)
{
    an_err err = {0};
    an_store *s = NULL;
    if (an_service_open_store(cfg, &s, &err) != AN_OK)
        return fail("migrate", &err);
    int applied = 0, version = 0;
    if (an_store_migrate(s, &applied, &err) != AN_OK ||
        an_store_check_schema(s, &version, &err) != AN_OK) {
        an_store_close(s);
        return fail("migrate", &err);
    }
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:i}", "status", "completed", "store_mode",
                          an_store_mode_name(an_store_get_mode(s)), "store", an_store_describe(s),
                          "schema_version", version, "migrations_applied", applied);
    print_json(o);
    json_decref(o);
    an_store_close(s);
    return 0;
}

static int cmd_health(const an_config *cfg)
{
    an_err err = {0};
    an_store *s = NULL;
    if (an_service_open_store(cfg, &s, &err) != AN_OK)
        s = NULL;
    int healthy = 0;
    json_t *o = an_health_check(cfg, s, &err, an_now_ms(), &healthy);
    print_json(o);
    if (!healthy) {
        json_t *problems = json_object_get(o, "problems");
        const char *first = json_string_value(json_array_get(problems, 0));
        fprintf(stderr, "autonama health: unhealthy: %s%s\n", first ? first : "unknown",
                json_array_size(problems) > 1 ? " (and more: see the JSON)" : "");
    }
    json_decref(o);
    an_store_close(s);
    return healthy ? 0 : 1;
}

static int cmd_import(const an_config *cfg)
{
    an_err err = {0};
    if (cfg->nargs < 1) {
        an_err_set(&err, AN_ERR_INVALID, "no file given: autonama import FILE...");
        return fail("import", &err);
    }
    an_import_format fmt;
    if (an_import_format_parse(an_config_get(cfg, AN_CFG_FORMAT), &fmt, &err) != AN_OK)
        return fail("import", &err);
    const char *symbol = an_config_get(cfg, AN_CFG_SYMBOL);
    const char *tf =
        an_config_is_set(cfg, AN_CFG_TIMEFRAME) ? an_config_get(cfg, AN_CFG_TIMEFRAME) : NULL;
    an_store *s = NULL;
    if (an_service_open_store(cfg, &s, &err) != AN_OK)
        return fail("import", &err);
    int version = 0;
    if (an_store_check_schema(s, &version, &err) != AN_OK) {
        an_store_close(s);
        return fail("import", &err);
    }
    json_t *files = json_array();
    int64_t ok = 0, failed = 0;
    int64_t rollup_from = INT64_MAX, rollup_to = INT64_MIN;
    for (int i = 0; i < cfg->nargs; i++) {
        const char *path = cfg->args[i];
        an_import_result r = {0};
        an_upsert_counts counts = {0};
        json_t *fo = json_pack("{s:s}", "path", path);
        an_err ferr = {0};
        if (an_import_read(path, fmt, symbol, tf, &r, &ferr) == AN_OK &&
            an_store_insert_ohlc(s, r.symbol, r.timeframe, r.candles.v, r.candles.n, &counts,
                                 &ferr) == AN_OK) {
            ok++;
            json_object_set_new(fo, "status", json_string("success"));
            json_object_set_new(fo, "format", json_string(an_import_format_name(r.format)));
            json_object_set_new(fo, "symbol", json_string(r.symbol));
            json_object_set_new(fo, "timeframe", json_string(r.timeframe));
            json_object_set_new(fo, "rows", json_integer((json_int_t)r.candles.n));
            json_object_set_new(fo, "inserted", json_integer(counts.inserted));
            json_object_set_new(fo, "updated", json_integer(counts.updated));
            json_object_set_new(fo, "unchanged", json_integer(counts.unchanged));
            AN_INFO("import",
                    "msg=\"imported\" file=\"%s\" symbol=%s timeframe=%s rows=%zu inserted=%" PRId64
                    " updated=%" PRId64,
                    path, r.symbol, r.timeframe, r.candles.n, counts.inserted, counts.updated);
            if (strcmp(r.timeframe, "1m") == 0 && r.candles.n > 0) {
                if (r.candles.v[0].ts < rollup_from)
                    rollup_from = r.candles.v[0].ts;
                if (r.candles.v[r.candles.n - 1].ts + 60000 > rollup_to)
                    rollup_to = r.candles.v[r.candles.n - 1].ts + 60000;
            }
        } else {
            failed++;
            fprintf(stderr, "autonama import: error: %s\n", ferr.msg);
            json_object_set_new(fo, "status", json_string("failed"));
            json_object_set_new(fo, "error", json_string(ferr.msg));
        }
        an_import_result_free(&r);
        json_array_append_new(files, fo);
    }
    if (rollup_from < rollup_to) {
        /* whole days around the range, so the 1d buckets are complete */
        int64_t day = 86400000LL;
        if (an_store_refresh_rollups(s, rollup_from / day * day, (rollup_to + day - 1) / day * day,
                                     &err) != AN_OK)
            AN_WARN("import", "msg=\"rollup refresh failed\" error=\"%s\"", err.msg);
    }
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:o}", "status",
                  failed ? (ok ? "partial" : "failed") : "completed", "approach", approach(s),
                  "store_mode", an_store_mode_name(an_store_get_mode(s)), "categories_processed", 1,
                  "summary", "total_success", (json_int_t)ok, "total_failed", (json_int_t)failed,
                  "total_skipped", (json_int_t)0, "files", files);
    print_json(o);
    json_decref(o);
    an_store_close(s);
    return failed ? 1 : 0;
}

static volatile int ingest_stop;

static void on_ingest_signal(int sig)
{
    (void)sig;
    ingest_stop = 1;
}

/* One category's update; its part of the result goes into cats. */
static void ingest_category(const an_config *cfg, an_store *s, const char *category,
                            an_ingest_options *o, json_t *cats, int64_t *ok, int64_t *failed,
                            int64_t *skipped)
{
    an_err err = {0};
    an_category_config cc;
    int64_t c_ok = 0, c_failed = 0, c_skipped = 0;
    json_t *co = json_object();
    an_ingest_symbol *res = NULL;
    if (an_config_category(cfg, category, &cc, &err) != AN_OK)
        goto failed;
    o->category = category;
    o->provider = cc.provider;
    o->source = cc.source;
    o->symbols = (const char *const *)cc.symbols;
    o->n_symbols = cc.n_symbols;
    if (!(res = calloc(cc.n_symbols, sizeof *res))) {
        an_err_set(&err, AN_ERR_NOMEM, "out of memory");
        goto failed;
    }
    if (an_ingest_run(s, o, res, &err) != AN_OK)
        goto failed;
    json_t *syms = json_object();
    for (size_t i = 0; i < cc.n_symbols; i++) {
        an_ingest_symbol *r = &res[i];
        const char *status = r->status != AN_OK ? "failed" : r->skipped ? "skipped" : "success";
        c_failed += r->status != AN_OK;
        c_skipped += r->status == AN_OK && r->skipped;
        c_ok += r->status == AN_OK && !r->skipped;
        json_t *o2 = json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I}", "status", status, "fetched",
            (json_int_t)r->fetched, "inserted", (json_int_t)r->inserted, "updated",
            (json_int_t)r->updated, "unchanged", (json_int_t)r->unchanged, "holes_repaired",
            r->holes, "requests", (json_int_t)r->requests, "retries", (json_int_t)r->retries,
            "refused_replies", (json_int_t)r->refused, "rate_limited", (json_int_t)r->rate_limited);
        if (r->status != AN_OK)
            json_object_set_new(o2, "error", json_string(r->error));
        json_object_set_new(syms, r->symbol, o2);
    }
    json_object_set_new(co, "provider", json_string(cc.provider));
    json_object_set_new(co, "success", json_integer(c_ok));
    json_object_set_new(co, "failed", json_integer(c_failed));
    json_object_set_new(co, "skipped", json_integer(c_skipped));
    json_object_set_new(co, "symbols", syms);
    goto out;
failed:
    /* the whole category failed (no provider, no symbols, a bad setting) */
    fprintf(stderr, "autonama ingest: error: %s: %s\n", category, err.msg);
    c_failed = cc.n_symbols ? (int64_t)cc.n_symbols : 1;
    json_object_set_new(co, "status", json_string("failed"));
    json_object_set_new(co, "error", json_string(err.msg));
    json_object_set_new(co, "failed", json_integer(c_failed));
out:
    json_object_set_new(cats, category, co);
    *ok += c_ok;
    *failed += c_failed;
    *skipped += c_skipped;
    free(res);
    an_config_free_list(cc.symbols, cc.n_symbols);
}

/* The seed's update_market_data: every configured category (crypto from
 * Binance by default) from its provider into the store. */
static int cmd_ingest(const an_config *cfg)
{
    an_err err = {0};
    char **categories = NULL;
    size_t ncat = 0;
    int64_t since = INT64_MIN, until = INT64_MAX;
    const char *s_since = an_config_get(cfg, AN_CFG_SINCE),
               *s_until = an_config_get(cfg, AN_CFG_UNTIL);
    if ((s_since && an_time_parse(s_since, &since, &err) != AN_OK) ||
        (s_until && an_time_parse(s_until, &until, &err) != AN_OK))
        return fail("ingest", &err);
    if (an_config_categories(cfg, &categories, &ncat, &err) != AN_OK)
        return fail("ingest", &err);
    an_store *s = NULL;
    int version = 0;
    if (an_service_open_store(cfg, &s, &err) != AN_OK ||
        an_store_check_schema(s, &version, &err) != AN_OK) {
        an_store_close(s);
        an_config_free_list(categories, ncat);
        return fail("ingest", &err);
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_ingest_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    an_ingest_options o = {0};
    o.base_url = an_config_get(cfg, AN_CFG_BINANCE_BASE_URL);
    o.timeframe = an_config_get(cfg, AN_CFG_TIMEFRAME);
    o.since_ms = since;
    o.until_ms = until;
    o.lookback = an_config_int(cfg, AN_CFG_INGEST_LOOKBACK);
    o.force = an_config_bool(cfg, AN_CFG_FORCE);
    o.parallel = (int)an_config_int(cfg, AN_CFG_INGEST_PARALLEL);
    o.timeout_ms = (int)an_config_int(cfg, AN_CFG_BINANCE_TIMEOUT_MS);
    o.max_tries = (int)an_config_int(cfg, AN_CFG_BINANCE_MAX_TRIES);
    o.backoff_ms = (int)an_config_int(cfg, AN_CFG_BINANCE_BACKOFF_MS);
    o.weight_budget = (int)an_config_int(cfg, AN_CFG_BINANCE_WEIGHT_BUDGET);
    o.stop = &ingest_stop;
    o.progress = isatty(2);
    if (o.force && since == INT64_MIN) {
        an_err_set(&err, AN_ERR_INVALID, "--force needs --since: the range to refetch");
        an_store_close(s);
        an_config_free_list(categories, ncat);
        return fail("ingest", &err);
    }
    int64_t ok = 0, failed = 0, skipped = 0;
    json_t *cats = json_object();
    for (size_t c = 0; c < ncat; c++)
        ingest_category(cfg, s, categories[c], &o, cats, &ok, &failed, &skipped);
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:o}", "status",
                  failed ? (ok || skipped ? "partial" : "failed") : "completed", "approach",
                  approach(s), "store_mode", an_store_mode_name(an_store_get_mode(s)), "timeframe",
                  o.timeframe, "categories_processed", (int)ncat, "summary", "total_success",
                  (json_int_t)ok, "total_failed", (json_int_t)failed, "total_skipped",
                  (json_int_t)skipped, "categories", cats);
    print_json(out);
    json_decref(out);
    an_store_close(s);
    an_config_free_list(categories, ncat);
    return failed ? 1 : 0;
}

/* The shortest %g form that reads back as the same double. */
static const char *fmt_double(double v, char *buf, size_t len)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

/* Candles of one series as CSV on stdout (open time in ms, then OHLCV). */
static int cmd_export(const an_config *cfg)
{
    an_err err = {0};
    const char *symbol = an_config_get(cfg, AN_CFG_SYMBOL);
    const char *tf = an_config_get(cfg, AN_CFG_TIMEFRAME);
    an_query q = an_query_all();
    const char *s_since = an_config_get(cfg, AN_CFG_SINCE),
               *s_until = an_config_get(cfg, AN_CFG_UNTIL);
    if (!symbol) {
        an_err_set(&err, AN_ERR_INVALID, "export needs --symbol BASE/QUOTE");
        return fail("export", &err);
    }
    if ((s_since && an_time_parse(s_since, &q.start_ms, &err) != AN_OK) ||
        (s_until && an_time_parse(s_until, &q.end_ms, &err) != AN_OK))
        return fail("export", &err);
    an_store *s = NULL;
    int version = 0;
    an_candles c = {0};
    if (an_service_open_store(cfg, &s, &err) != AN_OK ||
        an_store_check_schema(s, &version, &err) != AN_OK ||
        an_store_get_ohlc(s, symbol, tf, &q, &c, &err) != AN_OK) {
        an_store_close(s);
        return fail("export", &err);
    }
    printf("timestamp,open,high,low,close,volume\n");
    for (size_t i = 0; i < c.n; i++) {
        char a[32], b[32], d[32], e[32], f[32];
        printf("%" PRId64 ",%s,%s,%s,%s,%s\n", c.v[i].ts, fmt_double(c.v[i].open, a, sizeof a),
               fmt_double(c.v[i].high, b, sizeof b), fmt_double(c.v[i].low, d, sizeof d),
               fmt_double(c.v[i].close, e, sizeof e), fmt_double(c.v[i].volume, f, sizeof f));
    }
    fflush(stdout);
    an_candles_free(&c);
    an_store_close(s);
    return 0;
}

/* The seed's calculate_indicators_for_symbol, for each symbol x timeframe. */
static int cmd_indicators(const an_config *cfg)
{
    an_err err = {0};
    an_ind_set set;
    an_load_pref pref;
    if (an_ind_set_parse(an_config_get(cfg, AN_CFG_INDICATORS), &set, &err) != AN_OK ||
        an_load_pref_parse(an_config_get(cfg, AN_CFG_LOAD_PATH), &pref, &err) != AN_OK)
        return fail("indicators", &err);
    char **symbols = NULL, **tfs = NULL;
    size_t nsym = 0, ntf = 0;
    if (an_config_symbols(cfg, &symbols, &nsym, &err) != AN_OK)
        return fail("indicators", &err);
    if (an_config_indicator_timeframes(cfg, &tfs, &ntf, &err) != AN_OK) {
        an_config_free_list(symbols, nsym);
        return fail("indicators", &err);
    }
    an_store *s = NULL;
    int version = 0;
    if (an_service_open_store(cfg, &s, &err) != AN_OK ||
        an_store_check_schema(s, &version, &err) != AN_OK) {
        an_store_close(s);
        an_config_free_list(symbols, nsym);
        an_config_free_list(tfs, ntf);
        return fail("indicators", &err);
    }
    json_t *list = json_array();
    int64_t ok = 0, failed = 0, skipped = 0;
    for (size_t i = 0; i < nsym; i++) {
        for (size_t t = 0; t < ntf; t++) {
            an_engine_result r;
            an_err e = {0};
            json_t *o = json_pack("{s:s, s:s}", "symbol", symbols[i], "timeframe", tfs[t]);
            if (an_engine_run(s, symbols[i], tfs[t], &set, pref, &r, &e) != AN_OK) {
                failed++;
                fprintf(stderr, "autonama indicators: error: %s %s: %s\n", symbols[i], tfs[t],
                        e.msg);
                json_object_set_new(o, "status", json_string("failed"));
                json_object_set_new(o, "error", json_string(e.msg));
            } else {
                if (r.candles == 0)
                    skipped++;
                else
                    ok++;
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
            json_array_append_new(list, o);
        }
    }
    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:o}", "status",
                            failed ? (ok ? "partial" : "failed") : "completed", "approach",
                            approach(s), "store_mode", an_store_mode_name(an_store_get_mode(s)),
                            "indicators", set.text, "categories_processed", 1, "summary",
                            "total_success", (json_int_t)ok, "total_failed", (json_int_t)failed,
                            "total_skipped", (json_int_t)skipped, "series", list);
    print_json(out);
    json_decref(out);
    an_store_close(s);
    an_config_free_list(symbols, nsym);
    an_config_free_list(tfs, ntf);
    return failed ? 1 : 0;
}

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int cmd_serve(const an_config *cfg)
{
    an_err err = {0};
    an_service svc;
    an_service_init(&svc, cfg);
    an_http_server *h = NULL;
    if (an_http_start(cfg, &svc, &h, &err) != AN_OK) {
        an_service_destroy(&svc);
        return fail("serve", &err);
    }
    const char *addr = an_config_get(cfg, AN_CFG_HTTP_ADDR);
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(addr, ':') - addr), addr);
    AN_INFO("serve", "msg=\"listening\" addr=%s:%d", host, an_http_port(h));
    /* open (and migrate) the store now, so the first request finds it ready */
    if (!an_service_store(&svc, &err))
        AN_WARN("serve", "msg=\"store not available yet; /health reports why\"");
    else
        AN_INFO("serve", "msg=\"store ready\" mode=%s store=%s",
                an_store_mode_name(an_store_get_mode(svc.store)), an_store_describe(svc.store));
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!stop_requested)
        pause();
    AN_INFO("serve", "msg=\"stopping\"");
    an_http_stop(h);
    an_service_destroy(&svc);
    json_t *o = json_pack("{s:s}", "status", "stopped");
    print_json(o);
    json_decref(o);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("autonama %s\n", AN_VERSION);
        return 0;
    }
    an_config cfg;
    an_err err = {0};
    if (an_config_load(&cfg, argc - 2, argv + 2, &err) != AN_OK) {
        an_config_free(&cfg);
        return fail(cmd, &err);
    }
    an_log_set_level((an_log_level)an_log_level_parse(an_config_get(&cfg, AN_CFG_LOG_LEVEL)));
    int rc;
    if (strcmp(cmd, "serve") == 0)
        rc = cmd_serve(&cfg);
    else if (strcmp(cmd, "migrate") == 0)
        rc = cmd_migrate(&cfg);
    else if (strcmp(cmd, "health") == 0)
        rc = cmd_health(&cfg);
    else if (strcmp(cmd, "import") == 0)
        rc = cmd_import(&cfg);
    else if (strcmp(cmd, "indicators") == 0)
        rc = cmd_indicators(&cfg);
    else if (strcmp(cmd, "ingest") == 0)
        rc = cmd_ingest(&cfg);
    else if (strcmp(cmd, "export") == 0)
        rc = cmd_export(&cfg);
    else {
        an_err_set(&err, AN_ERR_INVALID,
                   "unknown command '%.40s' (commands: serve, migrate, health, ingest, import, "
                   "indicators, "
                   "version; "
                   "see autonama --help)",
                   cmd);
        rc = fail("", &err);
    }
    an_config_free(&cfg);
    return rc;
}
