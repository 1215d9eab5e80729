/*
 * thread.h - the one way a long-lived worker thread is stopped: its stop
 * flag set under the lock that guards it, its condition broadcast, the lock
 * released, then the thread joined. For workers that sleep on one
 * (mutex, condition) pair and read the flag under that mutex (the HTTP
 * guard's sweeper, the task heartbeat, ingest's writers). Called by the
 * thread that owns the worker; never with the mutex held.
 */
#ifndef AN_CORE_THREAD_H
#define AN_CORE_THREAD_H

#include <pthread.h>

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
