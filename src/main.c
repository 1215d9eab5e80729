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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analytics/engine.h"
#include "api/http.h"
#include "api/sse.h"
#include "core/config.h"
#include "core/log.h"
#include "source/import.h"
#include "store/store.h"
#include "tasks/health.h"
#include "tasks/ingest.h"
#include "tasks/realtime.h"
#include "tasks/scheduler.h"
#include "tasks/service.h"
#include "tasks/sync.h"
#include "tasks/tasks.h"

#define AN_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: autonama COMMAND [flags] [args]\n\n"
            "commands:\n"
            "  serve              the HTTP API (see openapi.json) on AUTONAMA_HTTP_ADDR, the\n"
            "                     beat schedule and its workers\n"
            "  migrate            create or upgrade the schema (idempotent)\n"
            "  health             check connection, schema and data freshness (JSON);\n"
            "                     exit 0 only when healthy\n"
            "  import FILE...     load candles from freqtrade JSON, CryptoDataDownload CSV,\n"
            "                     a CSV with a header, or a Binance public-data klines CSV\n"
            "                     [--format F] [--symbol BASE/QUOTE] [--timeframe TF]\n"
            "  ingest             fetch candles for each category from its provider\n"
            "                     (crypto: Binance klines; update_market_data)\n"
            "                     [--categories C,..] [--symbols S,..] [--timeframe TF]\n"
            "                     [--since T [--until T]] [--force]\n"
            "  export             one series' candles as CSV [--symbol S] [--timeframe TF]\n"
            "  indicators         calculate indicators with DuckDB and store the new ones\n"
            "                     [--symbols S,..] [--timeframe TF | --timeframes TF,..]\n"
            "                     [--indicators sma:20,rsi:14,...] [--load-path auto|direct|copy]\n"
            "  tasks              list the newest task runs [--limit N]\n"
            "  tasks show ID      one task run (state, meta, result, error)\n"
            "  tasks run NAME [ARGS_JSON]\n"
            "                     run a task now (update_market_data,\n"
            "                     calculate_indicators_for_symbol, health_check)\n"
            "  sync [--from FILE] [--move]\n"
            "                     copy a DuckDB store (default: the fallback file, moved) into\n"
            "                     PostgreSQL; --move deletes what was copied from FILE\n"
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
    json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:o}", "status",
                          failed ? (ok ? "partial" : "failed") : "completed", "approach",
                          an_tasks_approach(s), "store_mode",
                          an_store_mode_name(an_store_get_mode(s)), "categories_processed", 1,
                          "summary", "total_success", (json_int_t)ok, "total_failed",
                          (json_int_t)failed, "total_skipped", (json_int_t)0, "files", files);
    print_json(o);
    json_decref(o);
    an_store_close(s);
    return failed ? 1 : 0;
}

static volatile int *task_stop;

static void on_task_signal(int sig)
{
    (void)sig;
    if (task_stop)
        *task_stop = 1;
}

/* The command line's task layer: the store opened and its schema checked
 * (a missing schema fails as before); an unreachable primary is left to the
 * task layer, which goes on against the fallback file. */
static an_code cli_tasks(const an_config *cfg, an_service *svc, an_tasks **t, an_err *err)
{
    an_service_init(svc, cfg);
    an_store *s = NULL;
    int version = 0;
    an_code rc = an_service_open_store(cfg, &s, err);
    if (rc == AN_OK && (rc = an_store_check_schema(s, &version, err)) != AN_OK) {
        an_store_close(s);
        an_service_destroy(svc);
        return rc;
    }
    if (rc != AN_OK && !((rc == AN_ERR_CONNECT || rc == AN_ERR_TIMEOUT) &&
                         an_config_bool(cfg, AN_CFG_FALLBACK) && an_config_has_postgres(cfg))) {
        an_service_destroy(svc);
        return rc;
    }
    svc->store = s; /* NULL while unreachable: the service retries */
    if ((rc = an_tasks_new(cfg, svc, t, err)) != AN_OK) {
        an_service_destroy(svc);
        return rc;
    }
    task_stop = an_tasks_stop_flag(*t);
    struct sigaction sa = {0};
    sa.sa_handler = on_task_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return AN_OK;
}

/* Runs one task from the command line, prints its result; exit status. */
static int cli_run(const an_config *cfg, const char *command, const char *task, json_t *args)
{
    an_err err = {0};
    an_service svc;
    an_tasks *t = NULL;
    if (cli_tasks(cfg, &svc, &t, &err) != AN_OK) {
        json_decref(args);
        return fail(command, &err);
    }
    json_t *res = NULL;
    an_code rc = an_tasks_run(t, task, args, NULL, NULL, NULL, &res, &err);
    json_decref(args);
    int status;
    if (rc != AN_OK) {
        json_decref(res);
        status = fail(command, &err);
    } else {
        print_json(res);
        const char *st = json_string_value(json_object_get(res, "status"));
        status = st && strcmp(st, "completed") == 0 ? 0 : 1;
        json_decref(res);
    }
    task_stop = NULL;
    an_tasks_free(t);
    an_service_destroy(&svc);
    return status;
}

/* The seed's update_market_data: every configured category (crypto from
 * Binance by default) from its provider into the store. */
static int cmd_ingest(const an_config *cfg)
{
    json_t *args = json_object();
    if (an_config_is_set(cfg, AN_CFG_CATEGORIES))
        json_object_set_new(args, "categories", json_string(an_config_get(cfg, AN_CFG_CATEGORIES)));
    /* --symbols names the symbols of every category of the run; without it
     * each category has its own (AUTONAMA_SYMBOLS is crypto's) */
    if (cfg->from[AN_CFG_SYMBOLS] == 2)
        json_object_set_new(args, "symbols", json_string(an_config_get(cfg, AN_CFG_SYMBOLS)));
    json_object_set_new(args, "timeframe", json_string(an_config_get(cfg, AN_CFG_TIMEFRAME)));
    if (an_config_get(cfg, AN_CFG_SINCE))
        json_object_set_new(args, "since", json_string(an_config_get(cfg, AN_CFG_SINCE)));
    if (an_config_get(cfg, AN_CFG_UNTIL))
        json_object_set_new(args, "until", json_string(an_config_get(cfg, AN_CFG_UNTIL)));
    if (an_config_bool(cfg, AN_CFG_FORCE))
        json_object_set_new(args, "force", json_true());
    if (isatty(2))
        json_object_set_new(args, "progress", json_true());
    return cli_run(cfg, "ingest", "update_market_data", args);
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
    char **tfs = NULL;
    size_t ntf = 0;
    /* bad input fails before anything runs (exit 2) */
    if (an_ind_set_parse(an_config_get(cfg, AN_CFG_INDICATORS), &set, &err) != AN_OK ||
        an_load_pref_parse(an_config_get(cfg, AN_CFG_LOAD_PATH), &pref, &err) != AN_OK ||
        an_config_indicator_timeframes(cfg, &tfs, &ntf, &err) != AN_OK)
        return fail("indicators", &err);
    json_t *args = json_object();
    char joined[256] = "";
    for (size_t i = 0; i < ntf; i++)
        snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", i ? "," : "",
                 tfs[i]);
    an_config_free_list(tfs, ntf);
    if (an_config_is_set(cfg, AN_CFG_SYMBOLS))
        json_object_set_new(args, "symbols", json_string(an_config_get(cfg, AN_CFG_SYMBOLS)));
    json_object_set_new(args, "timeframes", json_string(joined));
    json_object_set_new(args, "indicators", json_string(set.text));
    json_object_set_new(args, "load_path", json_string(an_config_get(cfg, AN_CFG_LOAD_PATH)));
    return cli_run(cfg, "indicators", "calculate_indicators_for_symbol", args);
}

/* autonama tasks [--limit N] | tasks show ID */
static int cmd_tasks(const an_config *cfg)
{
    an_err err = {0};
    an_service svc;
    an_tasks *t = NULL;
    if (cfg->nargs >= 2 && cfg->nargs <= 3 && strcmp(cfg->args[0], "run") == 0) {
        /* tasks run NAME [ARGS_JSON]: one run now, recorded like the others */
        json_error_t je;
        json_t *args = cfg->nargs == 3 ? json_loads(cfg->args[2], JSON_DECODE_ANY, &je) : NULL;
        if (cfg->nargs == 3 && !(json_is_object(args) || json_is_array(args))) {
            json_decref(args);
            an_err_set(&err, AN_ERR_INVALID, "tasks run: ARGS must be a JSON object or array");
            return fail("tasks", &err);
        }
        return cli_run(cfg, "tasks run", cfg->args[1], args);
    }
    if (cfg->nargs > 0 && strcmp(cfg->args[0], "show") != 0) {
        an_err_set(
            &err, AN_ERR_INVALID,
            "usage: autonama tasks [--limit N] | tasks show ID | tasks run NAME [ARGS_JSON]");
        return fail("tasks", &err);
    }
    if (cfg->nargs > 0 && cfg->nargs != 2) {
        an_err_set(&err, AN_ERR_INVALID, "usage: autonama tasks show ID");
        return fail("tasks", &err);
    }
    an_service_init(&svc, cfg);
    if (an_tasks_new(cfg, &svc, &t, &err) != AN_OK) {
        an_service_destroy(&svc);
        return fail("tasks", &err);
    }
    json_t *o;
    if (cfg->nargs == 2) {
        o = an_tasks_get(t, cfg->args[1], &err);
    } else {
        json_t *list = an_tasks_list(t, NULL, (size_t)an_config_int(cfg, AN_CFG_LIMIT), &err);
        o = list ? json_pack("{s:s, s:I, s:o}", "status", "completed", "count",
                             (json_int_t)json_array_size(list), "tasks", list)
                 : NULL;
    }
    int rc = o ? 0 : fail("tasks", &err);
    if (o)
        print_json(o);
    json_decref(o);
    an_tasks_free(t);
    an_service_destroy(&svc);
    return rc;
}

/* autonama sync [--from FILE] [--move]: a DuckDB store into the primary. */
static int cmd_sync(const an_config *cfg)
{
    an_err err = {0};
    const char *from = an_config_get(cfg, AN_CFG_FROM);
    int move = an_config_bool(cfg, AN_CFG_MOVE);
    if (!from) {
        from = an_config_get(cfg, AN_CFG_FALLBACK_PATH);
        move = 1; /* the fallback file is emptied by its replay */
    }
    if (!an_config_has_postgres(cfg) || strcmp(an_config_get(cfg, AN_CFG_STORE), "duckdb") == 0) {
        an_err_set(&err, AN_ERR_INVALID, "sync moves into PostgreSQL: set POSTGRES_SERVER");
        return fail("sync", &err);
    }
    if (access(from, R_OK) != 0) {
        an_err_set(&err, AN_ERR_NOT_FOUND, "no DuckDB file %s", from);
        return fail("sync", &err);
    }
    an_store *dst = NULL, *src = NULL;
    an_store_options so = {0};
    so.mode = "duckdb";
    so.duckdb_path = from;
    int version = 0;
    an_sync_stats st;
    an_err ignored = {0};
    /* migrate only when needed (it also re-applies the TimescaleDB policies) */
    if (an_service_open_store(cfg, &dst, &err) != AN_OK ||
        (an_store_check_schema(dst, &version, &ignored) != AN_OK &&
         an_store_migrate(dst, NULL, &err) != AN_OK) ||
        an_store_open(&so, &src, &err) != AN_OK ||
        an_sync_stores(src, dst, move, &st, &err) != AN_OK) {
        an_store_close(src);
        an_store_close(dst);
        return fail("sync", &err);
    }
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s, s:b, s:i, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I}}",
        "status", "completed", "approach", "duckdb_sync", "from", from, "store",
        an_store_describe(dst), "moved", move, "categories_processed", 1, "summary",
        "total_success", (json_int_t)st.series, "total_failed", (json_int_t)0, "total_skipped",
        (json_int_t)0, "synced", "series", (json_int_t)st.series, "candles", (json_int_t)st.candles,
        "candles_inserted", (json_int_t)st.candle_counts.inserted, "candles_updated",
        (json_int_t)st.candle_counts.updated, "indicator_series", (json_int_t)st.indicator_series,
        "indicators", (json_int_t)st.indicators, "tasks", (json_int_t)st.tasks);
    print_json(o);
    json_decref(o);
    an_store_close(src);
    an_store_close(dst);
    return 0;
}

/* GET /metrics: the task system's lines (runs by state, fallback active),
 * then the realtime path's (stream connections, messages, lag). */
typedef struct serve_parts {
    an_tasks *tasks;
    an_realtime *rt;
    an_sse_hub *sse;
} serve_parts;

/* GET /health: the live path's state, as "stream" */
static char *stream_health(void *ctx)
{
    return an_realtime_health(ctx);
}

static char *tasks_metrics(void *ctx)
{
    serve_parts *p = ctx;
    char *a = an_tasks_metrics(p->tasks);
    if (!p->rt || !a)
        return a;
    char *b = an_realtime_metrics(p->rt);
    char *c = p->sse ? an_sse_metrics(p->sse) : NULL;
    if (b && c) {
        size_t l1 = strlen(b), l2 = strlen(c);
        char *bc = realloc(b, l1 + l2 + 1);
        if (bc) {
            memcpy(bc + l1, c, l2 + 1);
            b = bc;
        }
    }
    free(c);
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    char *both = b ? realloc(a, la + lb + 1) : NULL;
    if (!both) {
        free(b);
        return a;
    }
    memcpy(both + la, b, lb + 1);
    free(b);
    return both;
}

static int cmd_serve(const an_config *cfg)
{
    an_err err = {0};
    /* SIGINT and SIGTERM are taken by this thread alone, with sigwait below:
     * every thread started from here (HTTP, workers, DuckDB's) inherits them
     * blocked. (A handler + pause() loses the signal when the kernel hands it
     * to another thread: pause() never returns.) */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    an_service svc;
    an_service_init(&svc, cfg);
    an_tasks *tasks = NULL;
    if (an_tasks_new(cfg, &svc, &tasks, &err) != AN_OK) {
        an_service_destroy(&svc);
        return fail("serve", &err);
    }
    /* the live path (AUTONAMA_REALTIME): its own threads, off by default */
    an_realtime *rt = NULL;
    if (an_realtime_start(cfg, &svc, &rt, &err) != AN_OK) {
        an_tasks_free(tasks);
        an_service_destroy(&svc);
        return fail("serve", &err);
    }
    an_sse_hub *sse = NULL; /* GET /api/v1/stream, fed by the live path */
    if (rt &&
        an_sse_hub_new(rt, &svc, (int)an_config_int(cfg, AN_CFG_HTTP_MAX_STREAMS),
                       (size_t)an_config_int(cfg, AN_CFG_HTTP_STREAM_QUEUE), &sse, &err) != AN_OK) {
        an_realtime_stop(rt);
        an_tasks_free(tasks);
        an_service_destroy(&svc);
        return fail("serve", &err);
    }
    an_http_server *h = NULL;
    serve_parts parts = {tasks, rt, sse};
    an_http_options hopt = {tasks_metrics, &parts, tasks, sse, rt ? stream_health : NULL, rt};
    if (an_http_start_with(cfg, &svc, &hopt, &h, &err) != AN_OK) {
        an_sse_hub_free(sse);
        an_realtime_stop(rt);
        an_tasks_free(tasks);
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
    an_clock clock = an_clock_system();
    if (an_tasks_start(tasks, &clock, &err) != AN_OK) {
        an_sse_hub_close(sse);
        an_http_stop(h);
        an_sse_hub_free(sse);
        an_realtime_stop(rt);
        an_tasks_free(tasks);
        an_service_destroy(&svc);
        return fail("serve", &err);
    }
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    AN_INFO("serve", "msg=\"stopping\" signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    an_sse_hub_close(sse); /* the streams end, so the server can stop */
    an_http_stop(h);
    an_sse_hub_free(sse);
    an_realtime_stop(rt);
    if (!an_tasks_shutdown(tasks, an_config_int(cfg, AN_CFG_SHUTDOWN_GRACE) * 1000)) {
        /* a task did not stop in time: it is marked INTERRUPTED; leave now */
        json_t *o = json_pack("{s:s, s:b}", "status", "stopped", "interrupted_runs", 1);
        print_json(o);
        json_decref(o);
        fflush(NULL);
        _exit(0);
    }
    an_tasks_free(tasks);
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
    else if (strcmp(cmd, "tasks") == 0)
        rc = cmd_tasks(&cfg);
    else if (strcmp(cmd, "sync") == 0)
        rc = cmd_sync(&cfg);
    else {
        an_err_set(&err, AN_ERR_INVALID,
                   "unknown command '%.40s' (commands: serve, migrate, health, ingest, import, "
                   "indicators, tasks, sync, "
                   "version; "
                   "see autonama --help)",
                   cmd);
        rc = fail("", &err);
    }
    an_config_free(&cfg);
    return rc;
}
