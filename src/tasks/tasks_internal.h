/*
 * tasks_internal.h - what the task layer's files share (runs.c, fallback.c,
 * bodies.c, runtime.c); nothing outside src/tasks includes it.
 *
 * Locks (docs/threads.md has the whole picture):
 *  - mu guards the runtime's fields below it; never held across I/O (store
 *    calls, network). Functions that need it held end in _locked.
 *  - fb_mu guards the fallback store and every use of it; it IS held across
 *    the fallback's I/O (DuckDB writes one at a time anyway), so it is never
 *    taken while mu is held, and mu may be taken under it.
 *  - the work queue's own lock (core/workq.h) may be taken under mu (the
 *    beat queues its jobs from the scheduler's fire callback), never the
 *    other way round.
 */
#ifndef AN_TASKS_INTERNAL_H
#define AN_TASKS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/workq.h"
#include "tasks/scheduler.h"
#include "tasks/tasks.h"

#define AN_TASKS_MAX_WORKERS 32
#define AN_TASKS_MAX_ENTRIES 8

/* A queued run: a beat firing's job, or a submitted run (id set, recorded
 * PENDING already). Owned by the queue, then by the worker that runs it. */
typedef struct an_job {
    an_work work; /* first: the queue's link */
    int entry;    /* scheduler entry, -1 for a submitted run */
    char name[AN_TASK_NAME_MAX];
    char symbol[AN_SYMBOL_MAX];
    char slot[160];
    char id[AN_TASK_ID_MAX];
    json_t *args;
} an_job;

typedef struct an_running {
    char id[AN_TASK_ID_MAX];
    int used;
} an_running;

typedef struct an_beat_entry {
    char task[AN_TASK_NAME_MAX];
    char **symbols; /* NULL: one job without symbol */
    size_t n;
    int pending;         /* jobs of the current firing not done yet */
    int64_t interval_ms; /* the period's length: part of its slot */
} an_beat_entry;

struct an_tasks {
    /* set by an_tasks_new; read-only after */
    const an_config *cfg;
    an_service *svc;
    char instance[96];

    /* shutdown asked: tasks poll it between pages and series */
    atomic_int stop;

    /* guarded by fb_mu (held across the fallback's I/O) */
    pthread_mutex_t fb_mu;
    an_store *fb; /* opened on first use */
    /* data sits in the fallback file: written under fb_mu, read lock-free
     * (/metrics must not wait behind a fallback run holding fb_mu) */
    atomic_int fallback_active;

    /* guarded by mu (never held across I/O) */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* wakes the beat; waits on CLOCK_MONOTONIC */
    an_sched *sched;
    an_beat_entry entries[AN_TASKS_MAX_ENTRIES];
    an_running run[AN_TASKS_MAX_WORKERS + 1];
    int64_t by_state[5]; /* finished runs of this process by state */

    /* the runtime's threads: set by an_tasks_start (the thread that owns the
     * an_tasks calls start, shutdown and free). q stays allocated, closed,
     * from shutdown until an_tasks_free, so a submit or /metrics racing the
     * shutdown holds a valid queue; started is written and read under mu */
    an_clock clock;
    an_workq *q;
    pthread_t beat;
    int started;

    /* the heartbeat thread of runs outside the runtime (the command line's):
     * hb_stop guarded by mu */
    pthread_t hb;
    int hb_stop;
};

/* ---- runs.c: recording a run ---------------------------------------------- */

/* One run being recorded, on the thread that runs it. */
typedef struct an_run_ctx {
    an_tasks *t;
    an_task_row row;
    an_store *rec; /* where the row is recorded (primary, or the fallback) */
    int rec_is_fb;
} an_run_ctx;

void an_tasks_new_id(char *out);
/* Writes the row where it is recorded; when the primary fails, to the
 * fallback file (replayed later). */
void an_tasks_save_row(an_run_ctx *rc);
/* The row's state PROGRESS with meta {approach, status, done, total}. */
void an_tasks_progress(an_run_ctx *rc, const char *approach, const char *status, int64_t done,
                       int64_t total);
void an_tasks_set_json(char **dst, json_t *v);
/* Where a new run is recorded: the primary, or the fallback while it is down. */
void an_tasks_pick_record_store(an_run_ctx *rc);
/* Runs and records one run (given_id: a submitted run recorded PENDING). */
an_code an_tasks_run_one(an_tasks *t, const char *name, json_t *args, const char *symbol,
                         const char *slot, const char *given_id, char *id_out, json_t **result,
                         an_err *err);
/* ---- runtime.c: heartbeats of runs outside the serve runtime --------------- */

/* Starts a thread that heartbeats the running runs (every 5 s, or a quarter
 * of AUTONAMA_TASK_STALE_AFTER) for a run outside the serve runtime (whose
 * beat thread heartbeats its workers' runs), so a command-line run is never
 * taken for a dead one; 1 when it started. The thread that owns t calls both. */
int an_tasks_heartbeat_begin(an_tasks *t);
/* Stops the thread begin started (begun: begin's return). */
void an_tasks_heartbeat_end(an_tasks *t, int begun);

/* Records a PENDING or PROGRESS run as INTERRUPTED with why. */
void an_tasks_interrupt_row(an_tasks *t, const char *id, const char *why);

/* ---- fallback.c: the primary, the fallback and the hybrid rule --------------- */

/* The primary, when it can be opened (and migrated) now. */
an_store *an_tasks_primary(an_tasks *t, an_err *err);
int an_tasks_fallback_enabled(const an_tasks *t);
/* A primary failure the fallback is for: the server is unreachable. */
int an_tasks_is_outage(an_code c);
/* The fallback store, opened and migrated on first use. */
an_store *an_tasks_fallback_store_locked(an_tasks *t, an_err *err);

/*
 * The hybrid rule, one function for every task that works on items (symbols,
 * series): the items run on the primary first; those that fail with an
 * outage (a connection error, or a statement error while the server no
 * longer answers a ping), or all of them when the primary cannot be opened
 * for an outage, run again on the DuckDB fallback file, unless the run is
 * stopping or the fallback is off.
 *
 * run(ctx, store, on_fb, todo, codes, err) does the work on one store: the
 * items i with todo[i] set (todo NULL: every item), codes[i] their outcomes.
 * It returns non-AN_OK only when the store itself failed for the whole
 * batch; that ends the hybrid call with that error (no fallback). The
 * fallback call runs with fb_mu held, so it must not record progress (that
 * may write to the fallback file): the hybrid records {fb_status, 0 of
 * n_fallback} before it takes fb_mu. A fallback that cannot be opened is a
 * call with store NULL (the callback records why, from *err).
 *
 * Returns AN_OK once the items ran (whatever their codes), or the primary's
 * error when it cannot be opened for another reason than an outage.
 */
typedef an_code (*an_hybrid_fn)(void *ctx, an_store *s, int on_fb, const unsigned char *todo,
                                an_code *codes, an_err *err);

typedef struct an_hybrid {
    const char *what;      /* for the log: "category=crypto", "task=..." */
    an_run_ctx *rc;        /* the run whose progress says the fallback started */
    const char *fb_status; /* that progress's status text */
    size_t n;              /* items */
    an_code *codes;        /* n outcomes (caller's) */
    unsigned char *todo;   /* n flags (caller's): set for the items that went to the fallback */
    /* out */
    const char *approach, *mode; /* the primary's, or duckdb_fallback / duckdb */
    const char *primary_mode;    /* the primary's mode when it opened, else NULL */
    size_t n_fallback;           /* items that went to the fallback */
    int fallback_ok;             /* the fallback store opened */
    char reason[AN_ERR_MSG_MAX]; /* why the fallback was used */
} an_hybrid;

an_code an_tasks_hybrid(an_tasks *t, an_hybrid *h, an_hybrid_fn run, void *ctx, an_err *err);

/* ---- bodies.c: the task bodies and their registry ----------------------------- */

typedef an_code (*an_task_body)(an_run_ctx *rc, json_t *args, json_t **out, an_err *err);

/* optimize.c: the body of optimize_strategy and its argument check. */
an_code an_task_optimize(an_run_ctx *rc, json_t *args, json_t **out, an_err *err);
an_code an_task_optimize_check(json_t *args, an_err *err);

/* args.c: the argument checks of the other tasks (the keys each one reads,
 * each value checked as its body reads it). */
an_code an_task_ingest_check(json_t *args, an_err *err);
an_code an_task_indicators_check(json_t *args, an_err *err);
an_code an_task_health_check_args(json_t *args, an_err *err);
/* One named argument of any task (symbols, symbol, timeframe, timeframes,
 * since, until, categories, indicators, load_path, force, progress): its type
 * and its value; other keys are not checked here. */
an_code an_task_check_arg(const char *key, json_t *v, an_err *err);

/* The body of a registered task; NULL for an unknown name. */
an_task_body an_tasks_body(const char *name);

#endif
