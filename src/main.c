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
#include "core/thread.h"
#include "store/store.h"
#include "tasks/health.h"
#include "tasks/ingest.h"
#include "tasks/oneshot.h"
#include "tasks/optimize.h"
#include "tasks/realtime.h"
#include "tasks/scheduler.h"
#include "tasks/service.h"
#include "tasks/tasks.h"

#define AN_VERSION "0.1.0"

static void print_json_flags(json_t *o, size_t flags)
{
    char *s = json_dumps(o, flags);
    if (s) {
        puts(s);
        free(s);
    }
    fflush(stdout);
}

static void print_json(json_t *o)
{
    print_json_flags(o, JSON_COMPACT);
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
    print_json_flags(o, AN_HEALTH_JSON_FLAGS);
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
    json_t *o = NULL;
    if (an_oneshot_import(cfg, cfg->args, cfg->nargs, &o, &err) != AN_OK)
        return fail("import", &err);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(o, "files"), i, f)
    {
        const char *e = json_string_value(json_object_get(f, "error"));
        if (e)
            fprintf(stderr, "autonama import: error: %s\n", e);
    }
    print_json(o);
    int failed =
        json_integer_value(json_object_get(json_object_get(o, "summary"), "total_failed")) > 0;
    json_decref(o);
    return failed ? 1 : 0;
}

/* SIGINT/SIGTERM during a command-line run: a thread of its own waits for
 * them (sigwait; no handler runs) and asks the tasks to stop, so the stop
 * flag is only ever touched as an atomic_int. SIGUSR1 ends the thread when
 * the run is over. The signals are blocked before any thread starts. */
typedef struct signal_watch {
    pthread_t th;
    an_tasks *t;
    int started;
} signal_watch;

static void block_signals(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
}

static void *watch_signals(void *arg)
{
    an_thread_name("an-signals");
    signal_watch *w = arg;
    sigset_t sigs;
    block_signals(&sigs);
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGUSR1)
            return NULL;
        an_tasks_request_stop(w->t);
    }
}

static void watch_start(signal_watch *w, an_tasks *t)
{
    w->t = t;
    w->started = pthread_create(&w->th, NULL, watch_signals, w) == 0;
}

static void watch_stop(signal_watch *w)
{
    if (!w->started)
        return;
    pthread_kill(w->th, SIGUSR1);
    pthread_join(w->th, NULL);
    w->started = 0;
}

/* The command line's task layer: the store opened and its schema checked
 * (a missing schema fails as before); an unreachable primary is left to the
 * task layer, which goes on against the fallback file. */
static an_code cli_tasks(const an_config *cfg, an_service *svc, an_tasks **t, an_err *err)
{
    sigset_t sigs;
    block_signals(&sigs); /* before the store starts any thread */
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
    signal_watch watch = {0};
    watch_start(&watch, t);
    json_t *res = NULL;
    an_code rc = an_tasks_run(t, task, args, NULL, NULL, NULL, &res, &err);
    watch_stop(&watch);
    json_decref(args);
    int status;
    if (rc != AN_OK) {
        json_decref(res);
        status = fail(command, &err);
    } else {
        print_json(res);
        /* "completed" (the seed's shape), or "success" (an optimizer run) */
        const char *st = json_string_value(json_object_get(res, "status"));
        status = st && (strcmp(st, "completed") == 0 || strcmp(st, "success") == 0) ? 0 : 1;
        json_decref(res);
    }
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
    if (cfg->from[AN_CFG_SYMBOLS] == AN_CFG_ORIGIN_FLAG)
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

/* Candles of one series as CSV on stdout (open time in ms, then OHLCV). */
static int cmd_export(const an_config *cfg)
{
    an_err err = {0};
    return an_oneshot_export(cfg, stdout, &err) == AN_OK ? 0 : fail("export", &err);
}

/* The seed's calculate_indicators_for_symbol, for each symbol x timeframe. */
static int cmd_indicators(const an_config *cfg)
{
    an_err err = {0};
    an_ind_set set;
    an_load_pref pref;
    char **tfs = NULL;
    size_t ntf = 0;
    /* --timeframe (the flag) else AUTONAMA_INDICATOR_TIMEFRAMES: the
     * environment's AUTONAMA_TIMEFRAME is the ingest timeframe only */
    an_config tcfg = *cfg;
    if (tcfg.from[AN_CFG_TIMEFRAME] != AN_CFG_ORIGIN_FLAG)
        tcfg.from[AN_CFG_TIMEFRAME] = AN_CFG_ORIGIN_DEFAULT;
    /* bad input fails before anything runs (exit 2) */
    if (an_ind_set_parse(an_config_get(cfg, AN_CFG_INDICATORS), &set, &err) != AN_OK ||
        an_load_pref_parse(an_config_get(cfg, AN_CFG_LOAD_PATH), &pref, &err) != AN_OK ||
        an_config_indicator_timeframes(&tcfg, &tfs, &ntf, &err) != AN_OK)
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
        if (an_tasks_check_args(cfg->args[1], args, &err) == AN_ERR_INVALID) {
            json_decref(args);
            return fail("tasks run", &err);
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
    json_t *o = NULL;
    if (an_oneshot_sync(cfg, &o, &err) != AN_OK)
        return fail("sync", &err);
    print_json(o);
    json_decref(o);
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

/* autonama optimize: the optimizer's flags were taken out of argv by main. */
static void opt_progress(void *ctx, const char *symbol, size_t done, size_t total)
{
    (void)ctx;
    fprintf(stderr, "\roptimize %s: %zu/%zu combinations%s", symbol, done, total,
            done == total ? "\n" : "");
}

/* The optimizer's own flags, taken out of argv by main before the
 * configuration reads the rest. */
static an_opt_spec opt_spec;

static int cmd_optimize(const an_config *cfg)
{
    const an_opt_spec *spec = &opt_spec;
    an_err err = {0};
    an_grid g;
    int64_t since = INT64_MIN, until = INT64_MAX;
    const char *s_since = an_config_get(cfg, AN_CFG_SINCE),
               *s_until = an_config_get(cfg, AN_CFG_UNTIL);
    /* bad input fails before the store is opened (exit 2) */
    if (an_opt_spec_check(spec, &g, &err) != AN_OK ||
        (s_since && an_time_parse(s_since, &since, &err) != AN_OK) ||
        (s_until && an_time_parse(s_until, &until, &err) != AN_OK))
        return fail("optimize", &err);
    an_grid_free(&g);
    an_store *s = NULL;
    int version = 0;
    json_t *res = NULL;
    if (an_service_open_store(cfg, &s, &err) != AN_OK ||
        an_store_check_schema(s, &version, &err) != AN_OK ||
        an_optimize_run(s, spec, an_config_get(cfg, AN_CFG_SYMBOLS),
                        an_config_get(cfg, AN_CFG_TIMEFRAME), since, until,
                        isatty(2) ? opt_progress : NULL, NULL, &res, &err) != AN_OK) {
        an_store_close(s);
        return fail("optimize", &err);
    }
    print_json(res);
    json_decref(res);
    an_store_close(s);
    return 0;
}

/* The commands: name, handler, the help lines of `autonama --help`. */
static const struct command {
    const char *name;
    int (*run)(const an_config *cfg);
    const char *help;
} COMMANDS[] = {
    {"serve", cmd_serve,
     "serve              the HTTP API (see openapi.json) on AUTONAMA_HTTP_ADDR, the\n"
     "                   beat schedule and its workers"},
    {"migrate", cmd_migrate, "migrate            create or upgrade the schema (idempotent)"},
    {"health", cmd_health,
     "health             check connection, schema and data freshness (JSON);\n"
     "                   exit 0 only when healthy"},
    {"import", cmd_import,
     "import FILE...     load candles from freqtrade JSON, CryptoDataDownload CSV,\n"
     "                   a CSV with a header, or a Binance public-data klines CSV\n"
     "                   [--format F] [--symbol BASE/QUOTE] [--timeframe TF]"},
    {"ingest", cmd_ingest,
     "ingest             fetch candles for each category from its provider\n"
     "                   (crypto: Binance klines; update_market_data)\n"
     "                   [--categories C,..] [--symbols S,..] [--timeframe TF]\n"
     "                   [--since T [--until T]] [--force]"},
    {"export", cmd_export,
     "export             one series' candles as CSV [--symbol S] [--timeframe TF]"},
    {"indicators", cmd_indicators,
     "indicators         calculate indicators with DuckDB and store the new ones\n"
     "                   [--symbols S,..] [--timeframe TF | --timeframes TF,..]\n"
     "                   [--indicators sma:20,rsi:14,...] [--load-path auto|direct|copy]"},
    {"tasks", cmd_tasks,
     "tasks              list the newest task runs [--limit N]\n"
     "tasks show ID      one task run (state, meta, result, error)\n"
     "tasks run NAME [ARGS_JSON]\n"
     "                   run a task now (the tasks are listed below)"},
    {"sync", cmd_sync,
     "sync [--from FILE] [--move]\n"
     "                   copy a DuckDB store (default: the fallback file, moved) into\n"
     "                   PostgreSQL; --move deletes what was copied from FILE"},
    {"optimize", cmd_optimize,
     "optimize           backtest every combination of a strategy's grid over stored\n"
     "                   candles into optimization.results: --strategy NAME\n"
     "                   --grid p=start:stop:step,q=a|b [--symbols S,..] [--timeframe TF]\n"
     "                   [--since T --until T] [--split 0.7 | --walk-forward N]\n"
     "                   [--keep K] [--sort sharpe] [--fees 0.001] [--slippage 0]\n"
     "                   [--max-combinations N]"},
    {"version", NULL, "version            print the version"},
};
#define NCOMMANDS (sizeof COMMANDS / sizeof COMMANDS[0])

static void usage(FILE *f)
{
    fprintf(f, "usage: autonama COMMAND [flags] [args]\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        /* each help line indented under "commands:" */
        for (const char *h = COMMANDS[i].help; *h;) {
            size_t len = strcspn(h, "\n");
            fprintf(f, "  %.*s\n", (int)len, h);
            h += len + (h[len] == '\n');
        }
    }
    fprintf(f, "\ntasks (tasks run NAME, POST /api/v1/tasks/NAME):\n");
    for (size_t i = 0; an_tasks_registry(i); i++)
        fprintf(f, "  %-33s%s\n", an_tasks_registry(i)->name, an_tasks_registry(i)->help);
    fprintf(f, "\n");
    an_config_print_help(f);
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
    const struct command *c = NULL;
    for (size_t i = 0; i < NCOMMANDS && !c; i++)
        if (COMMANDS[i].run && strcmp(COMMANDS[i].name, cmd) == 0)
            c = &COMMANDS[i];
    an_err err = {0};
    if (!c) {
        char names[160] = "";
        for (size_t i = 0; i < NCOMMANDS; i++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i ? ", " : "",
                     COMMANDS[i].name);
        an_err_set(&err, AN_ERR_INVALID,
                   "unknown command '%.40s' (commands: %s; see autonama --help)", cmd, names);
        return fail("", &err);
    }
    int nargs = argc - 2;
    if (c->run == cmd_optimize && an_opt_spec_from_args(&nargs, argv + 2, &opt_spec, &err) != AN_OK)
        return fail(cmd, &err);
    an_config cfg;
    if (an_config_load(&cfg, nargs, argv + 2, &err) != AN_OK) {
        an_config_free(&cfg);
        return fail(cmd, &err);
    }
    an_log_set_level((an_log_level)an_log_level_parse(an_config_get(&cfg, AN_CFG_LOG_LEVEL)));
    int rc = c->run(&cfg);
    an_config_free(&cfg);
    return rc;
}
