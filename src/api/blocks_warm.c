/*
 * blocks_warm.c - how big the block cache is and how it fills before any
 * request asks (issue 12): the default size from the machine's memory,
 * and the warming thread. After serve starts, and after a write heard that
 * may have dropped or closed blocks, the thread reads the catalog's series
 * and loads their closed history in bulk (AN_BLOCK_WARM_MAX blocks a store
 * read, newest first, round robin over the series so each gets its recent
 * history first) until everything closed is cached or the cache is full.
 * It never evicts: warmed blocks sit at the cold end of the list, so the
 * blocks requests use stay. It runs at the lowest CPU priority, holds the
 * cache's lock only around lookups and inserts (blocks.c), never across a
 * store read, and stops within one read at shutdown: a read has a deadline
 * of READ_MS (a slower store gets fewer blocks a read).
 *
 * Owned by the HTTP server: started and stopped with its write hook
 * (http_watch.c); its own thread; w->lock guards the flags the server's
 * threads set (again, stop) and read (done).
 */
#include "api/blocks.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/abstime.h"
#include "core/log.h"
#include "core/thread.h"

#define PASS_GAP_MS 1000 /* at most one pass a second */
#define RETRY_MS 5000    /* after a failed pass */
#define PROGRESS_MS 5000 /* a progress line in the log this often */
#define READ_MS 1000     /* a warming read's deadline (then fewer blocks a read) */

size_t an_api_blocks_size_for(uint64_t usable_bytes)
{
    const uint64_t lo = (uint64_t)64 << 20, hi = (uint64_t)4096 << 20;
    uint64_t n = usable_bytes / 8;
    n = n < lo ? lo : n > hi ? hi : n;
    return (size_t)(n >> 20) << 20;
}

size_t an_api_blocks_default_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t usable = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
    /* a container's limit (cgroup v2, then v1) when lower */
    const char *limits[] = {"/sys/fs/cgroup/memory.max",
                            "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        FILE *f = fopen(limits[i], "r");
        unsigned long long v;
        if (!f)
            continue;
        if (fscanf(f, "%llu", &v) == 1 && v > 0 && (usable == 0 || v < usable))
            usable = v; /* "max" (no limit) reads as no number */
        fclose(f);
    }
    return an_api_blocks_size_for(usable);
}

struct an_api_warm {
    an_api_blocks *b;
    an_service *svc;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop, again, done;
    uint64_t passes; /* passes run: done only after one */
};

static int stopping(an_api_warm *w)
{
    pthread_mutex_lock(&w->lock);
    int s = w->stop;
    pthread_mutex_unlock(&w->lock);
    return s;
}

/* Waits ms or until stopped (w->lock held); 1 when stopped. */
static int nap(an_api_warm *w, int64_t ms)
{
    struct timespec until = an_abstime_in(ms);
    while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &until) == 0)
        ;
    return w->stop;
}

/* A series being warmed: its closed blocks [low, next] are left to load. */
typedef struct cursor {
    an_api_series_ref ref;
    int64_t low, next;
} cursor;

/* The series of list a pass warms (fixed-length timeframes with closed
 * blocks); *n of them. */
static cursor *cursors_of(const an_series_info *list, size_t nlist, size_t *n)
{
    cursor *c = calloc(nlist ? nlist : 1, sizeof *c);
    *n = 0;
    for (size_t i = 0; c && i < nlist; i++) {
        int monthly = 0;
        int64_t tf_ms = an_timeframe_ms(list[i].timeframe, &monthly);
        if (tf_ms <= 0 || monthly || list[i].rows <= 0 || tf_ms > INT64_MAX / AN_BLOCK_BARS / 4)
            continue;
        int64_t span = tf_ms * AN_BLOCK_BARS;
        c[*n] = (cursor){.ref = {.symbol = list[i].symbol,
                                 .timeframe = list[i].timeframe,
                                 .tf_ms = tf_ms,
                                 .first_ms = list[i].first_ms,
                                 .last_ms = list[i].last_ms,
                                 .rows = list[i].rows},
                         .low = an_api_floordiv(list[i].first_ms, span),
                         .next = an_api_floordiv(list[i].last_ms, span) - 1};
        if (c[*n].next >= c[*n].low)
            (*n)++;
    }
    return c;
}

static void log_progress(an_api_blocks *b, const char *msg, int64_t t0, size_t nser)
{
    an_api_blocks_stats st;
    an_api_blocks_get_stats(b, &st);
    AN_INFO("http",
            "msg=\"%s\" series=%zu warmed_blocks=%" PRIu64 " warmed_bytes=%" PRIu64
            " cache_bytes=%" PRIu64 " max_bytes=%" PRIu64 " seconds=%.1f",
            msg, nser, st.warm_blocks, st.warm_bytes, st.bytes, st.max_bytes,
            (double)(an_store_mono_ms() - t0) / 1000.0);
}

/* One pass over the catalog's series: AN_OK when it ended (everything
 * closed cached, the cache full, or stopped). */
static an_code pass(an_api_warm *w, an_err *err)
{
    an_store *s = an_service_store(w->svc, err);
    if (!s)
        return err->code;
    if (!an_service_hears_all(w->svc))
        return AN_OK; /* blocks last a TTL here: not warmed */
    an_series_info *list = NULL;
    size_t nlist = 0, n = 0;
    an_code rc = an_store_list_series(s, &list, &nlist, err);
    if (rc != AN_OK)
        return rc;
    cursor *c = cursors_of(list, nlist, &n);
    if (!c) {
        free(list);
        return an_err_set(err, AN_ERR_NOMEM, "out of memory warming %zu series", nlist);
    }
    int64_t t0 = an_store_mono_ms(), said = t0, chunk = AN_BLOCK_WARM_MAX;
    int full = 0, more = 1;
    while (rc == AN_OK && more && !full && !stopping(w)) {
        more = 0;
        for (size_t i = 0; rc == AN_OK && i < n && !full; i++) {
            if (c[i].next < c[i].low)
                continue;
            int64_t i0 = c[i].next - chunk + 1;
            /* a read lasts READ_MS at most, so stopping waits no longer
             * (the store's deadline is the only way to cut a read short) */
            an_store_set_deadline(an_store_mono_ms() + READ_MS);
            rc = an_api_blocks_warm(w->b, s, &c[i].ref, i0 > c[i].low ? i0 : c[i].low, c[i].next,
                                    an_now_ms(), &full, err);
            int late = rc == AN_ERR_TIMEOUT && an_store_deadline_passed();
            an_store_set_deadline(0);
            more = 1;
            if (late && chunk > 1) { /* a slow store: the same blocks, fewer a read */
                chunk /= 2;
                rc = AN_OK;
                continue;
            }
            c[i].next -= chunk;
            if (an_store_mono_ms() - said >= PROGRESS_MS) {
                said = an_store_mono_ms();
                log_progress(w->b, "warming the block cache", t0, n);
            }
            if (stopping(w))
                break;
        }
    }
    free(c);
    free(list);
    return rc;
}

static void *run(void *p)
{
    an_thread_name("an-block-warm");
    an_api_warm *w = p;
    /* the lowest priority for this thread only (Linux: a thread's own id) */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        if (!w->again) {
            w->done = w->passes > 0;
            pthread_cond_wait(&w->cond, &w->lock);
            continue;
        }
        w->again = 0;
        w->done = 0;
        pthread_mutex_unlock(&w->lock);
        an_api_blocks_stats st0;
        an_api_blocks_get_stats(w->b, &st0);
        int64_t t0 = an_store_mono_ms();
        an_err err = {0};
        an_code rc = pass(w, &err);
        an_api_blocks_stats st;
        an_api_blocks_get_stats(w->b, &st);
        if (rc != AN_OK)
            AN_WARN("http", "msg=\"warming the block cache failed; retrying\" error=\"%s\"",
                    err.msg);
        else if (st.warm_blocks > st0.warm_blocks)
            log_progress(w->b, "block cache warmed", t0, 0);
        pthread_mutex_lock(&w->lock);
        if (rc != AN_OK)
            w->again = 1;
        w->passes++;
        w->done = !w->again;
        nap(w, rc != AN_OK ? RETRY_MS : PASS_GAP_MS);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

an_code an_api_warm_start(an_api_blocks *b, an_service *svc, an_api_warm **out, an_err *err)
{
    *out = NULL;
    if (!b || !svc)
        return AN_OK;
    an_api_warm *w = calloc(1, sizeof *w);
    if (!w)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    w->b = b;
    w->svc = svc;
    pthread_cond_init(&w->cond, NULL);
    pthread_mutex_init(&w->lock, NULL);
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
        return an_err_set(err, AN_ERR_INTERNAL, "cannot start the block cache's warming thread");
    }
    *out = w;
    return AN_OK;
}

void an_api_warm_again(an_api_warm *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->lock);
    w->again = 1;
    w->done = 0;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

int an_api_warm_done(an_api_warm *w)
{
    if (!w)
        return 0;
    pthread_mutex_lock(&w->lock);
    int d = w->done;
    pthread_mutex_unlock(&w->lock);
    return d;
}

void an_api_warm_stop(an_api_warm *w)
{
    if (!w)
        return;
    an_thread_stop_join(&w->lock, &w->cond, &w->stop, w->thread);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
