/*
 * blocks.h - closed candle history cached per series in fixed blocks
 * (issue 12), internal to src/api/: a stored series' candles are cut into
 * blocks of AN_BLOCK_BARS bars of its timeframe, aligned on the Unix epoch;
 * a block wholly older than the series' newest stored candle (closed) is
 * read from the store once and kept as its rows' times and numbers' text
 * (blocks.c), and is filled at start by the warming thread, so a candle read
 * touches the store only for the newest block (and for blocks not cached
 * yet) and prints only the rows no block holds. Replies are the store's own
 * answer, row for row (an_store_get_ohlc's order, range and limit).
 *
 * Owned by the HTTP server (created and freed with it); read by the handler
 * workers (routes.c), emptied by the writes heard (http_watch.c, on the
 * writing thread or the listener's). Thread-safe: one mutex guards every
 * block and counter (docs/threads.md: "block cache"); it is never held
 * across a store read, so a block being loaded is marked, and a write heard
 * meanwhile marks it dirty: what it read is sent but not kept.
 */
#ifndef AN_API_BLOCKS_H
#define AN_API_BLOCKS_H

#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "store/store.h"

#define AN_BLOCK_BARS 1024   /* bars of the timeframe per block (docs/decisions.md) */
#define AN_BLOCK_WARM_MAX 64 /* blocks one warming read loads at most */

typedef struct an_api_blocks an_api_blocks;

/* a / b rounded down (block indexes of times before 1970 too) */
int64_t an_api_floordiv(int64_t a, int64_t b);

/* A cache holding at most max_bytes of blocks (least recently used first
 * out). NULL when max_bytes is 0 (the cache is off) or out of memory;
 * every function takes a NULL cache (reads then go to the store). */
an_api_blocks *an_api_blocks_new(size_t max_bytes);
void an_api_blocks_free(an_api_blocks *b);

/* The default size (AUTONAMA_HTTP_BLOCK_CACHE_MB -1): an eighth of the
 * memory this process may use (physical memory, or the cgroup's limit when
 * lower), at least 64 MiB and at most 4 GiB. */
size_t an_api_blocks_default_bytes(void);
size_t an_api_blocks_size_for(uint64_t usable_bytes);

/* The series a read is for, as the catalog knows it. */
typedef struct an_api_series_ref {
    const char *symbol, *timeframe; /* stored as such in trading.ohlc_data */
    int64_t tf_ms;
    int64_t first_ms, last_ms; /* the oldest and newest stored candle's open time */
    int64_t rows;              /* 0: nothing stored (the store is read directly) */
    /* blocks loaded longer ago than this are read again (ms; the process
     * does not hear every write); 0: kept until a write drops them; <0: the
     * cache is not used for this read */
    int64_t max_age_ms;
} an_api_series_ref;

/* The JSON of rows: row i's members (an_api_put_candle's text, no braces)
 * are buf.body[i ? end[i - 1] : 0 .. end[i]). Zero-initialise; the caller
 * frees it (an_api_rendered_free); reset (n = buf.len = 0) to reuse. */
typedef struct an_api_rendered {
    an_api_reply buf;
    size_t *end;
    size_t n, cap;
} an_api_rendered;

void an_api_rendered_free(an_api_rendered *r);

/* Candles of the series under q, appended to out: exactly the rows
 * an_store_get_ohlc(s, symbol, timeframe, q) appends, with closed blocks
 * taken from the cache (and kept there when read now). When txt is not
 * NULL, each row's JSON is appended to it (a closed block keeps its rows'
 * text, so most rows are copied, not printed) and out's rows carry only
 * their ts (the other fields are unspecified: the numbers are in the
 * text); without txt, out gets whole candles. now_ms is the clock the ages
 * follow. */
an_code an_api_blocks_read(an_api_blocks *b, an_store *s, const an_api_series_ref *ser,
                           const an_query *q, int64_t now_ms, an_candles *out, an_api_rendered *txt,
                           an_err *err);

/* A write changed the candles of (symbol, timeframe) in [first_ms, last_ms]:
 * drops every block overlapping it; symbol "" drops every block. Returns 1
 * when warming may have work after it: a block was dropped, the write was
 * of everything or of a timeframe of no fixed length, or it may have closed
 * a block (its range crosses a block's start or holds a block's first bar);
 * 0 for the common live write, the open candle of an open block again. */
int an_api_blocks_drop(an_api_blocks *b, const an_store_change *ch);

typedef struct an_api_blocks_stats {
    uint64_t hits, misses, evictions, dropped;
    uint64_t passed; /* misses not kept (a full cache's doorkeeper): read from the store */
    uint64_t bytes, blocks, max_bytes;
    uint64_t warm_blocks, warm_bytes; /* loaded by warming (an_api_blocks_warm) */
} an_api_blocks_stats;

void an_api_blocks_get_stats(an_api_blocks *b, an_api_blocks_stats *st);

/* Warming: loads the closed blocks [i0, i1] of ser (at most the newest
 * AN_BLOCK_WARM_MAX of them) that are not cached, with one store read, and
 * keeps them at the cold end of the list (first out) while the cache has
 * room, never evicting; *full = 1 when it has none left. The lock is not
 * held across the read (a write heard meanwhile keeps a block out, as for
 * a request's load). */
an_code an_api_blocks_warm(an_api_blocks *b, an_store *s, const an_api_series_ref *ser, int64_t i0,
                           int64_t i1, int64_t now_ms, int *full, an_err *err);

/* The warming thread (blocks_warm.c): after serve starts, and again after
 * writes that dropped blocks or closed new ones, it fills the cache from
 * the store in bulk, newest closed history first, round robin over the
 * catalog's series, until everything closed is cached or the cache is
 * full; at the lowest CPU priority; only when this process hears every
 * write (an_service_hears_all: else blocks live a TTL and warming is
 * pointless). NULL b or svc: nothing starts (*out NULL, AN_OK). The
 * thread waits for the first an_api_warm_again (the caller's write hook on). */
typedef struct an_api_warm an_api_warm;
an_code an_api_warm_start(an_api_blocks *b, an_service *svc, an_api_warm **out, an_err *err);
/* Asks for a pass (the first, or a write was heard); cheap, any thread. */
void an_api_warm_again(an_api_warm *w);
/* 1 when the last pass ended (everything closed cached, or full) and no
 * other is asked for; 0 while one runs or is due. */
int an_api_warm_done(an_api_warm *w);
/* Stops the thread (within one store read) and frees w. */
void an_api_warm_stop(an_api_warm *w);

#endif
