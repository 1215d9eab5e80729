/*
 * tasks.h - task runs and the task runtime: the seed's Celery tasks and beat
 * schedule, built in.
 *
 * A task run has an id and a state: PENDING, PROGRESS (meta: approach, a
 * status text, done and total), SUCCESS (result in the seed's JSON shape),
 * FAILURE (the error), or INTERRUPTED (stopped by SIGTERM/SIGINT, or its
 * instance died: no heartbeat). Runs are kept in autonama.task_runs, in the
 * primary store, or in the DuckDB fallback file while the primary is
 * unreachable (replayed with the data later), so they survive restarts.
 *
 * Tasks (the seed's names):
 *   update_market_data               Binance klines into the store (ingest.h);
 *                                    args {symbols, timeframe, since, until, force}
 *   calculate_indicators_for_symbol  indicators with DuckDB (engine.h);
 *                                    args {symbols, timeframes, indicators, load_path}
 * symbols is an array or "A,B" (default AUTONAMA_SYMBOLS); args may also be
 * the seed's positional form, an array of symbols: ["BTC/USDT"].
 *   health_check                     connection, schema, freshness (health.h)
 *
 * The hybrid chain: each task runs against the primary (TimescaleDB or
 * PostgreSQL) first. When the primary cannot be opened, or a symbol fails on
 * it with a connection error half-way, the work goes on against the DuckDB
 * fallback file (AUTONAMA_FALLBACK_PATH; approach "duckdb_fallback", said in
 * the result and the log). Once the primary answers again, every run first
 * replays the fallback file into it (sync.h) and empties it.
 *
 * The runtime (`autonama serve`): a beat thread drives the schedule
 * (scheduler.h) with the entries update-market-data, calculate-indicators and
 * health-check, one job per symbol; worker threads run the jobs. A scheduled
 * job for (task, symbol) runs under a PostgreSQL advisory lock and claims its
 * period in the task table (slot), so several instances on one database never
 * run it twice at once and share the symbols between them.
 *
 * Thread-safe: an_tasks_run may be called from several threads; the other
 * functions from any thread.
 */
#ifndef AN_TASKS_TASKS_H
#define AN_TASKS_TASKS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>

#include "core/config.h"
#include "core/error.h"
#include "tasks/service.h"

typedef enum an_task_state {
    AN_TASK_PENDING = 0,
    AN_TASK_PROGRESS,
    AN_TASK_SUCCESS,
    AN_TASK_FAILURE,
    AN_TASK_INTERRUPTED
} an_task_state;

/* "PENDING", "PROGRESS", "SUCCESS", "FAILURE", "INTERRUPTED". */
const char *an_task_state_name(an_task_state s);

/* The seed's name for the approach a store gives: "timescaledb_first",
 * "postgres_first" or "duckdb_embedded". */
const char *an_tasks_approach(an_store *s);

typedef struct an_tasks an_tasks;

/* The task layer over svc's primary store (svc and cfg outlive it). The
 * instance name is AUTONAMA_INSTANCE or host:pid. */
an_code an_tasks_new(const an_config *cfg, an_service *svc, an_tasks **out, an_err *err);
/* Stops the runtime if started (as an_tasks_shutdown with no grace) and frees. */
void an_tasks_free(an_tasks *t);
const char *an_tasks_instance(const an_tasks *t);

/* Runs task name now on the calling thread and records it. args (borrowed;
 * NULL for {}) are the task's arguments. symbol and slot (NULL for none) tag a
 * scheduled run; a slot already claimed (by another instance) makes this a
 * no-op: AN_OK with *result NULL. *result (a new reference; the seed's shape:
 * status, approach, categories_processed, summary{...}) and id_out
 * (AN_TASK_ID_MAX, may be NULL) tell the outcome. Returns AN_OK when the run
 * was recorded, whatever its state; the state is in (*result).task.state. A
 * thread heartbeats the run meanwhile (serve runs use an_tasks_submit). */
an_code an_tasks_run(an_tasks *t, const char *name, json_t *args, const char *symbol,
                     const char *slot, char *id_out, json_t **result, an_err *err);

/* Runs as a PostgreSQL advisory lock holder for (name, symbol): *ran = 0 when
 * another instance holds it (nothing is recorded then). */
an_code an_tasks_run_locked(an_tasks *t, const char *name, json_t *args, const char *symbol,
                            const char *slot, int *ran, json_t **result, an_err *err);

/* A run as JSON: {id, name, state, approach, args, meta, result, error,
 * instance, symbol, created_at, started_at, finished_at, heartbeat_at}. */
json_t *an_tasks_row_json(const an_task_row *r);

/* The newest runs (name NULL for all), as a JSON array; NULL with err. */
json_t *an_tasks_list(an_tasks *t, const char *name, size_t limit, an_err *err);
/* One run as JSON; NULL with AN_ERR_NOT_FOUND when there is none. */
json_t *an_tasks_get(an_tasks *t, const char *id, an_err *err);

/* Queues a run for the workers (serve only: after an_tasks_start) and
 * records it PENDING; id_out gets its id. AN_ERR_NOT_FOUND for an unknown task
 * name, AN_ERR_UNSUPPORTED when the runtime is not running. */
an_code an_tasks_submit(an_tasks *t, const char *name, json_t *args, char *id_out, an_err *err);

/* Prometheus text lines (malloc'd; the caller frees): runs by state,
 * whether the fallback is active, scheduler firings. */
char *an_tasks_metrics(an_tasks *t);

/* Replays the fallback file into the primary when it holds anything and the
 * primary answers. *report (may be NULL) gets what moved (NULL when nothing). */
an_code an_tasks_replay(an_tasks *t, json_t **report, an_err *err);

/* Starts the beat thread and the workers (AUTONAMA_WORKERS) with the clock
 * (an_clock_system() outside tests); marks runs of dead instances (stale
 * heartbeat) INTERRUPTED first. Once per an_tasks: a second start, also
 * after an_tasks_shutdown, is refused (AN_ERR_UNSUPPORTED). */
struct an_clock;
an_code an_tasks_start(an_tasks *t, const struct an_clock *clock, an_err *err);

/* Graceful stop: no new work; running tasks are asked to stop (ingest stops
 * between pages, keeping what it stored) and get grace_ms to end; runs
 * stopped this way, and queued ones, are recorded INTERRUPTED. Returns 1 when
 * every worker ended, 0 when some still run after the grace (their runs are
 * marked INTERRUPTED; the caller should exit without freeing). A submit or
 * an_tasks_metrics on another thread meanwhile is safe: the submit is
 * refused, or its run recorded INTERRUPTED. */
int an_tasks_shutdown(an_tasks *t, int64_t grace_ms);

/* The shutdown flag tasks poll (set by an_tasks_shutdown and
 * an_tasks_request_stop). */
atomic_int *an_tasks_stop_flag(an_tasks *t);

/* Asks the running tasks to stop (between pages and series) without
 * stopping the runtime: the command line's signal thread calls it. */
void an_tasks_request_stop(an_tasks *t);

/* ---- the registry: every task name, once ------------------------------------ */

typedef struct an_task_def {
    const char *name; /* the seed's name */
    const char *help; /* one line, for --help and messages */
    /* checks a run's arguments before it is queued (NULL: anything) */
    an_code (*check_args)(json_t *args, an_err *err);
} an_task_def;

/* The i-th task (0..), NULL past the last. */
const an_task_def *an_tasks_registry(size_t i);
/* The task named name, or NULL. */
const an_task_def *an_tasks_find(const char *name);
/* "update_market_data, calculate_indicators_for_symbol, health_check", for
 * messages. */
const char *an_tasks_names(void);
/* AN_ERR_NOT_FOUND for an unknown task (naming the known ones), else the
 * task's check of args (none, an object, or the seed's array of symbols;
 * AN_ERR_INVALID naming the problem). */
an_code an_tasks_check_args(const char *name, json_t *args, an_err *err);

#endif
