/*
 * workq.c - the work queue (see workq.h for the rules). Owns its threads and
 * the list of waiting items; q->mu guards every field below it in the struct.
 * Waits use CLOCK_MONOTONIC, so a wall-clock jump never stretches or cuts a
 * deadline.
 */
#include "core/workq.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/log.h"
#include "core/thread.h"

struct an_workq {
    char name[32];
    an_work_fn run;
    void *ctx;
    pthread_t *threads;
    int nthreads;

    pthread_mutex_t mu;  /* guards everything below */
    pthread_cond_t more; /* an item was queued, or the queue closed */
    pthread_cond_t idle; /* an item finished */
    an_work *head_locked, *tail_locked;
    int queued_locked, running_locked;
    int closed_locked;  /* no more pushes */
    int discard_locked; /* closed with DISCARD: threads exit at once */
};

static void *thread_main(void *arg)
{
    an_thread_name("an-workq");
    an_workq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head_locked && !q->closed_locked)
            pthread_cond_wait(&q->more, &q->mu);
        an_work *w = q->discard_locked ? NULL : q->head_locked;
        if (!w) /* closed and nothing left to drain */
            break;
        q->head_locked = w->next;
        if (!q->head_locked)
            q->tail_locked = NULL;
        q->queued_locked--;
        q->running_locked++;
        pthread_mutex_unlock(&q->mu);
        w->next = NULL;
        q->run(w, q->ctx);
        pthread_mutex_lock(&q->mu);
        q->running_locked--;
        pthread_cond_broadcast(&q->idle);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

static void condattr_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

an_code an_workq_new(const char *name, int nthreads, an_work_fn run, void *ctx, an_workq **out,
                     an_err *err)
{
    *out = NULL;
    if (nthreads < 1 || !run)
        return an_err_set(err, AN_ERR_INVALID,
                          "work queue %s: needs a run function and >= 1 thread", name);
    an_workq *q = calloc(1, sizeof *q);
    if (!q || !(q->threads = calloc((size_t)nthreads, sizeof *q->threads))) {
        free(q);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    }
    snprintf(q->name, sizeof q->name, "%s", name ? name : "workq");
    q->run = run;
    q->ctx = ctx;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->more, NULL);
    condattr_monotonic(&q->idle);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&q->threads[q->nthreads], NULL, thread_main, q) != 0)
            break;
        q->nthreads++;
    }
    if (q->nthreads == 0) {
        an_workq_free(q);
        return an_err_set(err, AN_ERR_INTERNAL, "work queue %s: cannot start a thread", name);
    }
    if (q->nthreads < nthreads)
        AN_WARN("workq", "msg=\"fewer threads started than asked\" queue=%s asked=%d started=%d",
                q->name, nthreads, q->nthreads);
    *out = q;
    return AN_OK;
}

int an_workq_threads(const an_workq *q)
{
    return q->nthreads;
}

int an_workq_push_with(an_workq *q, an_work *w, void (*before)(an_work *w, void *arg), void *arg)
{
    pthread_mutex_lock(&q->mu);
    int taken = !q->closed_locked;
    if (taken) {
        if (before)
            before(w, arg);
        w->next = NULL;
        if (q->tail_locked)
            q->tail_locked->next = w;
        else
            q->head_locked = w;
        q->tail_locked = w;
        q->queued_locked++;
        pthread_cond_signal(&q->more);
    }
    pthread_mutex_unlock(&q->mu);
    return taken;
}

int an_workq_push(an_workq *q, an_work *w)
{
    return an_workq_push_with(q, w, NULL, NULL);
}

an_work *an_workq_close(an_workq *q, an_workq_close_mode mode)
{
    an_work *left = NULL;
    pthread_mutex_lock(&q->mu);
    q->closed_locked = 1;
    if (mode == AN_WORKQ_DISCARD) {
        q->discard_locked = 1;
        left = q->head_locked;
        q->head_locked = q->tail_locked = NULL;
        q->queued_locked = 0;
    }
    pthread_cond_broadcast(&q->more);
    pthread_cond_broadcast(&q->idle);
    pthread_mutex_unlock(&q->mu);
    return left;
}

int an_workq_wait_idle(an_workq *q, int64_t timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    while ((q->running_locked > 0 || q->head_locked) && rc == 0)
        rc = pthread_cond_timedwait(&q->idle, &q->mu, &dl);
    int idle = q->running_locked == 0 && !q->head_locked;
    pthread_mutex_unlock(&q->mu);
    return idle;
}

void an_workq_counts(an_workq *q, int *queued, int *running)
{
    pthread_mutex_lock(&q->mu);
    if (queued)
        *queued = q->queued_locked;
    if (running)
        *running = q->running_locked;
    pthread_mutex_unlock(&q->mu);
}

void an_workq_free(an_workq *q)
{
    if (!q)
        return;
    an_workq_close(q, AN_WORKQ_DRAIN);
    for (int i = 0; i < q->nthreads; i++)
        pthread_join(q->threads[i], NULL);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->more);
    pthread_cond_destroy(&q->idle);
    free(q->threads);
    free(q);
}
