/*
 * workq.h - one work queue served by a fixed pool of threads: the HTTP
 * server's handler workers and the task runtime's workers both use it.
 *
 * Items are intrusive: a job embeds an an_work and the run callback gets it
 * back (container-of). Items run in FIFO order, each on one of the queue's
 * threads, with no queue lock held.
 *
 * Safety (the rules every user relies on):
 *  - an_workq_push may be called from any thread, a queue thread included.
 *    It returns 0 once the queue is closed: the item was not taken and the
 *    caller still owns it. Once taken, the run callback owns the item.
 *  - an_workq_push_with runs `before(w, arg)` under the queue's lock after
 *    the item is accepted and before any thread can take it (the HTTP server
 *    suspends the connection there, so a worker cannot resume it first).
 *    `before` must not block and must not call back into the queue.
 *  - an_workq_close stops new pushes. AN_WORKQ_DRAIN: the threads still run
 *    everything queued, then exit. AN_WORKQ_DISCARD: nothing queued runs; the
 *    queued items come back to the caller as a list (owned by the caller).
 *    Items already running are never interrupted: their owners have their
 *    own stop flags.
 *  - an_workq_wait_idle waits (monotonic clock) until no item runs and none
 *    is queued; after a close that means the threads are exiting.
 *  - an_workq_free closes (DRAIN) if needed, joins every thread and frees
 *    the queue. It must not be called from a queue thread, and blocks until
 *    running items return: callers that cannot wait call wait_idle first and
 *    leave the queue to the process exit when it says no.
 *
 * Lock: one mutex per queue (q->mu), held only to move items and counters;
 * never across a run callback or any I/O.
 */
#ifndef AN_CORE_WORKQ_H
#define AN_CORE_WORKQ_H

#include <stdint.h>

#include "core/error.h"

typedef struct an_work {
    struct an_work *next;
} an_work;

typedef void (*an_work_fn)(an_work *w, void *ctx);

typedef struct an_workq an_workq;

typedef enum an_workq_close_mode { AN_WORKQ_DRAIN, AN_WORKQ_DISCARD } an_workq_close_mode;

/* Starts nthreads threads (at least one must start, else AN_ERR_INTERNAL)
 * that call run(w, ctx) for each item. name is for logs ("http", "tasks"). */
an_code an_workq_new(const char *name, int nthreads, an_work_fn run, void *ctx, an_workq **out,
                     an_err *err);

/* The number of threads that started. */
int an_workq_threads(const an_workq *q);

/* Queues w; 1 when taken, 0 when the queue is closed (w still the caller's). */
int an_workq_push(an_workq *q, an_work *w);
int an_workq_push_with(an_workq *q, an_work *w, void (*before)(an_work *w, void *arg), void *arg);

/* Stops new pushes (see the rules above); returns the discarded items. */
an_work *an_workq_close(an_workq *q, an_workq_close_mode mode);

/* 1 when nothing runs or waits within timeout_ms, else 0. */
int an_workq_wait_idle(an_workq *q, int64_t timeout_ms);

/* Items waiting and items running now. */
void an_workq_counts(an_workq *q, int *queued, int *running);

/* Closes (DRAIN), joins the threads, frees. NULL is a no-op. */
void an_workq_free(an_workq *q);

#endif
