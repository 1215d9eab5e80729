/*
 * test_workq.c - the work queue (core/workq.c): FIFO order, every item run
 * exactly once across threads, pushes refused after close, DRAIN runs what
 * is queued, DISCARD hands it back unrun, wait_idle's deadline, the before
 * hook running ahead of the item, and items that push more items.
 */
#include "core/workq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <unistd.h>

#include "test.h"

typedef struct item {
    an_work w; /* first: the queue hands back &item->w */
    int id;
    int hooked; /* set by the before hook */
    struct ctx *c;
} item;

typedef struct ctx {
    pthread_mutex_t mu;
    int order[1000];
    int n;
    atomic_int ran[1000];
    atomic_int gate;      /* items with id < 0 spin until it is set */
    atomic_int hook_miss; /* an item ran before its hook */
    an_workq *q;
    item extra[10];
} ctx;

static void run(an_work *w, void *arg)
{
    ctx *c = arg;
    item *it = (item *)w;
    if (it->id < 0) {
        while (!atomic_load(&c->gate))
            usleep(1000);
        return;
    }
    if (it->id >= 2000 && !it->hooked)
        atomic_fetch_add(&c->hook_miss, 1);
    int id = it->id % 1000;
    atomic_fetch_add(&c->ran[id], 1);
    pthread_mutex_lock(&c->mu);
    c->order[c->n++] = id;
    pthread_mutex_unlock(&c->mu);
    /* items 500..509 each push one more (900..909) from a queue thread */
    if (id >= 500 && id < 510) {
        item *x = &c->extra[id - 500];
        x->id = 400 + id;
        AN_CHECK(an_workq_push(c->q, &x->w) == 1);
    }
}

static void ctx_init(ctx *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
}

static void test_fifo_one_thread(void)
{
    ctx c;
    ctx_init(&c);
    an_err e = {0};
    AN_CHECK(an_workq_new("t", 1, run, &c, &c.q, &e) == AN_OK);
    AN_CHECK_INT(an_workq_threads(c.q), 1);
    static item it[100];
    for (int i = 0; i < 100; i++) {
        it[i].id = i;
        AN_CHECK(an_workq_push(c.q, &it[i].w) == 1);
    }
    AN_CHECK(an_workq_wait_idle(c.q, 10000) == 1);
    AN_CHECK_INT(c.n, 100);
    for (int i = 0; i < 100; i++)
        AN_CHECK_INT(c.order[i], i);
    an_workq_free(c.q);
}

static void test_many_threads_each_once(void)
{
    ctx c;
    ctx_init(&c);
    an_err e = {0};
    AN_CHECK(an_workq_new("t", 4, run, &c, &c.q, &e) == AN_OK);
    static item it[600];
    for (int i = 0; i < 600; i++) {
        it[i].id = i;
        AN_CHECK(an_workq_push(c.q, &it[i].w) == 1);
    }
    AN_CHECK(an_workq_wait_idle(c.q, 10000) == 1);
    /* 600 items + the 10 pushed by items 500..509 */
    AN_CHECK_INT(c.n, 610);
    for (int i = 0; i < 600; i++)
        AN_CHECK_INT(atomic_load(&c.ran[i]), 1);
    for (int i = 900; i < 910; i++)
        AN_CHECK_INT(atomic_load(&c.ran[i]), 1);
    an_workq_free(c.q);
}

static void test_close_drain_and_discard(void)
{
    an_err e = {0};
    for (int mode = 0; mode < 2; mode++) {
        ctx c;
        ctx_init(&c);
        AN_CHECK(an_workq_new("t", 1, run, &c, &c.q, &e) == AN_OK);
        item block = {.id = -1};
        static item it[5];
        AN_CHECK(an_workq_push(c.q, &block.w) == 1);
        for (int i = 0; i < 5; i++) {
            it[i] = (item){.id = i};
            AN_CHECK(an_workq_push(c.q, &it[i].w) == 1);
        }
        int queued = -1, running = -1;
        for (int i = 0; i < 1000 && running != 1; i++) {
            an_workq_counts(c.q, &queued, &running);
            usleep(1000);
        }
        AN_CHECK_INT(running, 1);
        AN_CHECK_INT(queued, 5);
        /* blocked: not idle within the deadline */
        AN_CHECK(an_workq_wait_idle(c.q, 50) == 0);
        an_work *left = an_workq_close(c.q, mode ? AN_WORKQ_DISCARD : AN_WORKQ_DRAIN);
        item late = {.id = 7};
        AN_CHECK(an_workq_push(c.q, &late.w) == 0);
        int nleft = 0;
        for (an_work *w = left; w; w = w->next)
            AN_CHECK_INT(((item *)w)->id, nleft++);
        AN_CHECK_INT(nleft, mode ? 5 : 0);
        atomic_store(&c.gate, 1);
        AN_CHECK(an_workq_wait_idle(c.q, 10000) == 1);
        an_workq_free(c.q);
        AN_CHECK_INT(c.n, mode ? 0 : 5);
        AN_CHECK_INT(atomic_load(&c.ran[7]), 0);
    }
}

static void hook(an_work *w, void *arg)
{
    (void)arg;
    ((item *)w)->hooked = 1;
}

static void test_before_hook_runs_first(void)
{
    ctx c;
    ctx_init(&c);
    an_err e = {0};
    AN_CHECK(an_workq_new("t", 4, run, &c, &c.q, &e) == AN_OK);
    static item it[200];
    for (int i = 0; i < 200; i++) {
        it[i] = (item){.id = 2000 + i};
        AN_CHECK(an_workq_push_with(c.q, &it[i].w, hook, NULL) == 1);
    }
    AN_CHECK(an_workq_wait_idle(c.q, 10000) == 1);
    AN_CHECK_INT(atomic_load(&c.hook_miss), 0);
    AN_CHECK_INT(c.n, 200);
    an_workq_free(c.q);
}

static void test_bad_arguments(void)
{
    an_workq *q = (an_workq *)1;
    an_err e = {0};
    AN_CHECK(an_workq_new("t", 0, run, NULL, &q, &e) == AN_ERR_INVALID);
    AN_CHECK(q == NULL);
    AN_CHECK(strstr(e.msg, "thread") != NULL);
    an_workq_free(NULL);
}

int main(void)
{
    AN_RUN(test_fifo_one_thread);
    AN_RUN(test_many_threads_each_once);
    AN_RUN(test_close_drain_and_discard);
    AN_RUN(test_before_hook_runs_first);
    AN_RUN(test_bad_arguments);
    return AN_TEST_DONE();
}
