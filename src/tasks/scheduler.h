/*
 * scheduler.h - the beat schedule as a state machine (the seed's Celery beat):
 * entries fire every interval; an entry whose previous firing still runs is
 * not fired again (the period is counted as skipped); a stop drains the
 * running entries, a grace deadline ends the drain.
 *
 * No threads and no clock of its own: the clock is injected (an_clock), and
 * an_sched_step is the one function that performs every transition, so the
 * unit test drives it in virtual time. The serve runtime (tasks.c) calls it
 * under its own mutex; an an_sched is not thread-safe by itself.
 */
#ifndef AN_TASKS_SCHEDULER_H
#define AN_TASKS_SCHEDULER_H

#include <stdint.h>

typedef struct an_clock {
    int64_t (*now_ms)(void *ctx); /* ms since the epoch (or any fixed origin in tests) */
    void *ctx;
} an_clock;

/* The wall clock (an_now_ms). */
an_clock an_clock_system(void);

typedef enum an_sched_state {
    AN_SCHED_RUNNING = 0, /* firing entries when due */
    AN_SCHED_DRAINING,    /* stop asked: fires nothing, waits for running entries */
    AN_SCHED_STOPPED      /* nothing runs (or the grace time is over) */
} an_sched_state;

typedef enum an_entry_state {
    AN_ENTRY_WAITING = 0, /* until next_due */
    AN_ENTRY_RUNNING,     /* fired; not done yet */
    AN_ENTRY_DISABLED
} an_entry_state;

typedef enum an_sched_event {
    AN_SCHED_TICK = 0,   /* look at the clock: fire what is due */
    AN_SCHED_DONE,       /* the firing of `entry` finished */
    AN_SCHED_STOP,       /* SIGTERM/SIGINT: stop taking work */
    AN_SCHED_GRACE_OVER, /* the shutdown grace time ran out */
} an_sched_event;

/* Called from an_sched_step when entry fires; slot_ms is the start of the
 * period it fires for (the same on every instance with the same interval:
 * a multiple of the interval), so instances can claim the period once. */
typedef void (*an_sched_fire_fn)(void *ctx, int entry, int64_t slot_ms);

typedef struct an_sched an_sched;

an_sched *an_sched_new(an_clock clock, an_sched_fire_fn fire, void *ctx);
void an_sched_free(an_sched *s);

/* Adds an entry (enabled and interval_ms > 0 to fire); returns its index, or
 * -1 when full (32 entries). The first firing is due at once. */
int an_sched_add(an_sched *s, const char *name, int64_t interval_ms, int enabled);

/* The one transition function. entry is used by AN_SCHED_DONE only. Returns
 * the clock time of the next firing (INT64_MAX when none is due any more). */
int64_t an_sched_step(an_sched *s, an_sched_event ev, int entry);

an_sched_state an_sched_get_state(const an_sched *s);
an_entry_state an_sched_entry_state(const an_sched *s, int entry);
const char *an_sched_entry_name(const an_sched *s, int entry);
int an_sched_count(const an_sched *s);

typedef struct an_sched_stats {
    int64_t fired;   /* firings */
    int64_t skipped; /* periods not fired because the previous firing still ran */
} an_sched_stats;

void an_sched_entry_stats(const an_sched *s, int entry, an_sched_stats *out);

#endif
