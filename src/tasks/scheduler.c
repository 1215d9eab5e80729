/*
 * scheduler.c - the beat schedule state machine (see scheduler.h).
 */
#include "tasks/scheduler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/market.h"

#define ENTRIES_MAX 32

typedef struct entry {
    char name[64];
    int64_t interval_ms;
    int64_t next_due;
    an_entry_state state;
    an_sched_stats stats;
} entry;

struct an_sched {
    an_clock clock;
    an_sched_fire_fn fire;
    void *ctx;
    an_sched_state state;
    entry e[ENTRIES_MAX];
    int n;
};

static int64_t system_now(void *ctx)
{
    (void)ctx;
    return an_now_ms();
}

an_clock an_clock_system(void)
{
    an_clock c = {system_now, NULL};
    return c;
}

an_sched *an_sched_new(an_clock clock, an_sched_fire_fn fire, void *ctx)
{
    an_sched *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->clock = clock;
    s->fire = fire;
    s->ctx = ctx;
    s->state = AN_SCHED_RUNNING;
    return s;
}

void an_sched_free(an_sched *s)
{
    free(s);
}

int an_sched_add(an_sched *s, const char *name, int64_t interval_ms, int enabled)
{
    if (s->n == ENTRIES_MAX)
        return -1;
    entry *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->interval_ms = interval_ms;
    e->state = enabled && interval_ms > 0 ? AN_ENTRY_WAITING : AN_ENTRY_DISABLED;
    e->next_due = s->clock.now_ms(s->clock.ctx);
    return s->n++;
}

/* The start of the period now falls in, and the next one. */
static int64_t period_start(int64_t now, int64_t iv)
{
    int64_t p = now / iv * iv;
    return p > now ? p - iv : p;
}

static int any_running(const an_sched *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->e[i].state == AN_ENTRY_RUNNING)
            return 1;
    return 0;
}

int64_t an_sched_step(an_sched *s, an_sched_event ev, int idx)
{
    int64_t now = s->clock.now_ms(s->clock.ctx);
    switch (ev) {
    case AN_SCHED_TICK:
        if (s->state != AN_SCHED_RUNNING)
            break;
        for (int i = 0; i < s->n; i++) {
            entry *e = &s->e[i];
            if (e->state == AN_ENTRY_DISABLED || now < e->next_due)
                continue;
            int64_t slot = period_start(now, e->interval_ms);
            /* missed periods are not made up: the next firing is the next period */
            e->next_due = slot + e->interval_ms;
            if (e->state == AN_ENTRY_RUNNING) {
                e->stats.skipped++;
                AN_WARN("scheduler", "msg=\"previous run still going: period skipped\" entry=%s",
                        e->name);
                continue;
            }
            e->state = AN_ENTRY_RUNNING;
            e->stats.fired++;
            s->fire(s->ctx, i, slot);
        }
        break;
    case AN_SCHED_DONE:
        if (idx >= 0 && idx < s->n && s->e[idx].state == AN_ENTRY_RUNNING)
            s->e[idx].state = AN_ENTRY_WAITING;
        if (s->state == AN_SCHED_DRAINING && !any_running(s))
            s->state = AN_SCHED_STOPPED;
        break;
    case AN_SCHED_STOP:
        if (s->state == AN_SCHED_RUNNING)
            s->state = any_running(s) ? AN_SCHED_DRAINING : AN_SCHED_STOPPED;
        break;
    case AN_SCHED_GRACE_OVER: s->state = AN_SCHED_STOPPED; break;
    }
    if (s->state != AN_SCHED_RUNNING)
        return INT64_MAX;
    int64_t next = INT64_MAX;
    for (int i = 0; i < s->n; i++)
        if (s->e[i].state != AN_ENTRY_DISABLED && s->e[i].next_due < next)
            next = s->e[i].next_due;
    return next;
}

an_sched_state an_sched_get_state(const an_sched *s)
{
    return s->state;
}

an_entry_state an_sched_entry_state(const an_sched *s, int i)
{
    return i >= 0 && i < s->n ? s->e[i].state : AN_ENTRY_DISABLED;
}

const char *an_sched_entry_name(const an_sched *s, int i)
{
    return i >= 0 && i < s->n ? s->e[i].name : "";
}

int an_sched_count(const an_sched *s)
{
    return s->n;
}

void an_sched_entry_stats(const an_sched *s, int i, an_sched_stats *out)
{
    memset(out, 0, sizeof *out);
    if (i >= 0 && i < s->n)
        *out = s->e[i].stats;
}
