/*
 * abstime.h - the absolute CLOCK_REALTIME time `ms` from now, as
 * pthread_cond_timedwait wants it (the live path's threads wait with it).
 */
#ifndef AN_CORE_ABSTIME_H
#define AN_CORE_ABSTIME_H

#include <stdint.h>
#include <time.h>

static inline struct timespec an_abstime_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

#endif
