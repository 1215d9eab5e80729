/*
 * thread.h - a worker thread's name, and the one way a long-lived worker
 * thread is stopped: its stop
 * flag set under the lock that guards it, its condition broadcast, the lock
 * released, then the thread joined. For workers that sleep on one
 * (mutex, condition) pair and read the flag under that mutex (the HTTP
 * guard's sweeper, the task heartbeat, ingest's writers). Called by the
 * thread that owns the worker; never with the mutex held.
 */
#ifndef AN_CORE_THREAD_H
#define AN_CORE_THREAD_H

#include <pthread.h>

/* Names the calling thread (at most 15 characters: top -H, perf, gdb and
 * /proc/<pid>/task/<tid>/comm show it; bench/realtime reports CPU by it). */
static inline void an_thread_name(const char *name)
{
    pthread_setname_np(pthread_self(), name);
}

static inline void an_thread_stop_join(pthread_mutex_t *mu, pthread_cond_t *cv, int *stop_flag,
                                       pthread_t th)
{
    pthread_mutex_lock(mu);
    *stop_flag = 1;
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(mu);
    pthread_join(th, NULL);
}

#endif
