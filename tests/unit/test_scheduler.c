/*
 * test_scheduler.c - the beat schedule state machine in virtual time: first
 * firing at once, one firing per period, missed periods not made up, no
 * overlap (a period skipped while the previous firing runs), disabled
 * entries, the period slots shared by instances, draining on stop, the grace
 * deadline; and the task-run table on a DuckDB store (claim, put, list,
 * interrupt stale runs).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "tasks/scheduler.h"
#include "test.h"

typedef struct vclock {
    int64_t now;
} vclock;

static int64_t vnow(void *ctx)
{
    return ((vclock *)ctx)->now;
}

typedef struct fired {
    int entry[64];
    int64_t slot[64];
    int n;
} fired;

static void on_fire(void *ctx, int entry, int64_t slot)
{
    fired *f = ctx;
    if (f->n < 64) {
        f->entry[f->n] = entry;
        f->slot[f->n] = slot;
        f->n++;
    }
}

static void test_periods(void)
{
    vclock vc = {1000000};
    an_clock clock = {vnow, &vc};
    fired f = {0};
    an_sched *s = an_sched_new(clock, on_fire, &f);
    int upd = an_sched_add(s, "update-market-data", 900000, 1);
    int ind = an_sched_add(s, "calculate-indicators", 1800000, 1);
    int off = an_sched_add(s, "health-check", 300000, 0);
    AN_CHECK_INT(an_sched_entry_state(s, off), AN_ENTRY_DISABLED);
    /* both fire at once, for the period now falls in */
    int64_t next = an_sched_step(s, AN_SCHED_TICK, -1);
    AN_CHECK_INT(f.n, 2);
    AN_CHECK_INT(f.entry[0], upd);
    AN_CHECK_INT(f.slot[0], 900000);
    AN_CHECK_INT(f.slot[1], 0);
    AN_CHECK_INT(next, 1800000);
    AN_CHECK_INT(an_sched_entry_state(s, upd), AN_ENTRY_RUNNING);
    /* a tick before the next period fires nothing */
    vc.now = 1799999;
    an_sched_step(s, AN_SCHED_TICK, -1);
    AN_CHECK_INT(f.n, 2);
    an_sched_step(s, AN_SCHED_DONE, upd);
    an_sched_step(s, AN_SCHED_DONE, ind);
    AN_CHECK_INT(an_sched_entry_state(s, upd), AN_ENTRY_WAITING);
    /* the next period: update fires (slot 1,800,000), indicators too (its period starts there) */
    vc.now = 1800000;
    an_sched_step(s, AN_SCHED_TICK, -1);
    AN_CHECK_INT(f.n, 4);
    AN_CHECK_INT(f.slot[2], 1800000);
    AN_CHECK_INT(f.slot[3], 1800000);
    /* update still running at its next period: skipped, not queued */
    vc.now = 2700000;
    an_sched_step(s, AN_SCHED_TICK, -1);
    AN_CHECK_INT(f.n, 4);
    an_sched_stats st;
    an_sched_entry_stats(s, upd, &st);
    AN_CHECK_INT(st.skipped, 1);
    AN_CHECK_INT(st.fired, 2);
    an_sched_step(s, AN_SCHED_DONE, upd);
    an_sched_step(s, AN_SCHED_DONE, ind);
    /* a long pause (the process was suspended): one firing, not five */
    vc.now = 2700000 + 5 * 900000 + 10;
    an_sched_step(s, AN_SCHED_TICK, -1);
    int n_upd = 0;
    for (int i = 4; i < f.n; i++)
        n_upd += f.entry[i] == upd;
    AN_CHECK_INT(n_upd, 1);
    AN_CHECK_INT(f.slot[4], 7200000);
    an_sched_free(s);
}

static void test_stop(void)
{
    vclock vc = {0};
    an_clock clock = {vnow, &vc};
    fired f = {0};
    an_sched *s = an_sched_new(clock, on_fire, &f);
    int a = an_sched_add(s, "a", 1000, 1);
    an_sched_add(s, "b", 1000, 1);
    an_sched_step(s, AN_SCHED_TICK, -1);
    AN_CHECK_INT(f.n, 2);
    /* stop while both run: draining, nothing new fires */
    AN_CHECK_INT(an_sched_step(s, AN_SCHED_STOP, -1), INT64_MAX);
    AN_CHECK_INT(an_sched_get_state(s), AN_SCHED_DRAINING);
    vc.now = 5000;
    an_sched_step(s, AN_SCHED_TICK, -1);
    AN_CHECK_INT(f.n, 2);
    an_sched_step(s, AN_SCHED_DONE, a);
    AN_CHECK_INT(an_sched_get_state(s), AN_SCHED_DRAINING);
    /* the grace runs out before b ends */
    an_sched_step(s, AN_SCHED_GRACE_OVER, -1);
    AN_CHECK_INT(an_sched_get_state(s), AN_SCHED_STOPPED);
    an_sched_free(s);

    /* a stop with nothing running stops at once; the last DONE ends a drain */
    s = an_sched_new(clock, on_fire, &f);
    a = an_sched_add(s, "a", 1000, 1);
    an_sched_step(s, AN_SCHED_STOP, -1);
    AN_CHECK_INT(an_sched_get_state(s), AN_SCHED_STOPPED);
    an_sched_free(s);
    s = an_sched_new(clock, on_fire, &f);
    a = an_sched_add(s, "a", 1000, 1);
    an_sched_step(s, AN_SCHED_TICK, -1);
    an_sched_step(s, AN_SCHED_STOP, -1);
    an_sched_step(s, AN_SCHED_DONE, a);
    AN_CHECK_INT(an_sched_get_state(s), AN_SCHED_STOPPED);
    an_sched_free(s);
}

/* Two instances with the same interval compute the same slot for a period,
 * whatever their start times: the task table's claim then lets one run it. */
static void test_shared_slots(void)
{
    vclock v1 = {10000}, v2 = {10700};
    fired f1 = {0}, f2 = {0};
    an_sched *s1 = an_sched_new((an_clock){vnow, &v1}, on_fire, &f1);
    an_sched *s2 = an_sched_new((an_clock){vnow, &v2}, on_fire, &f2);
    an_sched_add(s1, "u", 2000, 1);
    an_sched_add(s2, "u", 2000, 1);
    for (int k = 0; k < 5; k++) {
        an_sched_step(s1, AN_SCHED_TICK, -1);
        an_sched_step(s2, AN_SCHED_TICK, -1);
        an_sched_step(s1, AN_SCHED_DONE, 0);
        an_sched_step(s2, AN_SCHED_DONE, 0);
        v1.now += 2000;
        v2.now += 2000;
    }
    AN_CHECK_INT(f1.n, 5);
    AN_CHECK_INT(f2.n, 5);
    for (int i = 0; i < 5; i++)
        AN_CHECK_INT(f1.slot[i], f2.slot[i]);
    an_sched_free(s1);
    an_sched_free(s2);
}

static void test_task_table(void)
{
    char path[] = "/tmp/an-sched-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    an_store_options o = {0};
    o.mode = "duckdb";
    o.duckdb_path = path;
    an_store *s = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_store_open(&o, &s, &err), err);
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    an_task_row r = {0};
    snprintf(r.id, sizeof r.id, "id-1");
    snprintf(r.name, sizeof r.name, "update_market_data");
    snprintf(r.state, sizeof r.state, "PENDING");
    snprintf(r.slot, sizeof r.slot, "update-market-data|BTC/USDT|900000");
    snprintf(r.instance, sizeof r.instance, "a");
    r.args = strdup("{\"symbols\":[\"BTC/USDT\"]}");
    r.created_ms = r.heartbeat_ms = 1000;
    int inserted = 0;
    AN_CHECK_OK(an_store_task_claim(s, &r, &inserted, &err), err);
    AN_CHECK_INT(inserted, 1);
    /* another instance claiming the same period gets nothing */
    an_task_row r2 = r;
    snprintf(r2.id, sizeof r2.id, "id-2");
    snprintf(r2.instance, sizeof r2.instance, "b");
    AN_CHECK_OK(an_store_task_claim(s, &r2, &inserted, &err), err);
    AN_CHECK_INT(inserted, 0);
    /* progress, then a second run without slot */
    snprintf(r.state, sizeof r.state, "PROGRESS");
    r.meta = strdup("{\"done\":1,\"total\":3}");
    r.started_ms = 1500;
    AN_CHECK_OK(an_store_task_put(s, &r, &err), err);
    r2.slot[0] = '\0';
    r2.args = NULL;
    r2.created_ms = 2000;
    r2.heartbeat_ms = 2000;
    snprintf(r2.state, sizeof r2.state, "SUCCESS");
    r2.finished_ms = 2500;
    AN_CHECK_OK(an_store_task_claim(s, &r2, &inserted, &err), err);
    AN_CHECK_INT(inserted, 1);
    an_task_row *rows = NULL;
    size_t n = 0;
    AN_CHECK_OK(an_store_task_list(s, NULL, 10, &rows, &n, &err), err);
    AN_CHECK_INT(n, 2);
    AN_CHECK_STR(rows[0].id, "id-2"); /* newest first */
    AN_CHECK_INT(rows[1].started_ms, 1500);
    AN_CHECK_STR(rows[1].meta, "{\"done\":1,\"total\":3}");
    for (size_t i = 0; i < n; i++)
        an_task_row_free(&rows[i]);
    free(rows);
    /* a heartbeat older than the limit: the run is marked INTERRUPTED */
    AN_CHECK_OK(an_store_task_heartbeat(s, "id-1", 3000, &err), err);
    int marked = 0;
    AN_CHECK_OK(an_store_task_interrupt_stale(s, NULL, 2999, 4000, &marked, &err), err);
    AN_CHECK_INT(marked, 0);
    AN_CHECK_OK(an_store_task_interrupt_stale(s, NULL, 3001, 4000, &marked, &err), err);
    AN_CHECK_INT(marked, 1);
    an_task_row got;
    int found = 0;
    AN_CHECK_OK(an_store_task_get(s, "id-1", &got, &found, &err), err);
    AN_CHECK_INT(found, 1);
    AN_CHECK_STR(got.state, "INTERRUPTED");
    AN_CHECK_INT(got.finished_ms, 4000);
    AN_CHECK(got.error[0] != '\0');
    an_task_row_free(&got);
    AN_CHECK_OK(an_store_task_delete(s, "id-2", &err), err);
    AN_CHECK_OK(an_store_task_get(s, "id-2", &got, &found, &err), err);
    AN_CHECK_INT(found, 0);
    an_task_row_free(&r);
    an_store_close(s);
    unlink(path);
    char wal[64];
    snprintf(wal, sizeof wal, "%s.wal", path);
    unlink(wal);
}

int main(void)
{
    AN_RUN(test_periods);
    AN_RUN(test_stop);
    AN_RUN(test_shared_slots);
    AN_RUN(test_task_table);
    return AN_TEST_DONE();
}
