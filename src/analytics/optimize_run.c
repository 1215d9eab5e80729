/*
 * optimize_run.c - the threaded sweep (an_sweep_run, see optimize.h) and the
 * thread count (AUTONAMA_OPT_THREADS).
 *
 * Combinations are taken a tile at a time (consecutive indexes: a few values
 * of the first parameters with every value of the last, so a tile touches
 * few distinct indicator series, each shared by many combinations). The
 * bars are walked in blocks small enough that the tile's series stay in the
 * core's cache; in each block every combination of the tile turns its entry
 * and exit conditions into 64-bar bit words and its portfolio (an_opt_sim,
 * kept per combination across blocks) acts on the crossings (sim_word: the
 * same fills as an_sweep_backtest's), so a trade costs O(1) lookups.
 * Workers (started and joined by an_sweep_run, on the caller's thread) own
 * their scratch; the sweep is read-only meanwhile.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "analytics/optimize_internal.h"

int an_opt_threads(void)
{
    const char *e = getenv("AUTONAMA_OPT_THREADS");
    long n = 0;
    if (e && *e) {
        char *end;
        n = strtol(e, &end, 10);
        if (*end || n < 1 || n > 256)
            n = 0;
    }
    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

/* Bars per block of the signal pass: a multiple of 64. */
#define BLOCK 256
#define TILE_MAX 4096

/* One combination's scan: its conditions, the next bar to look at, the
 * conditions' values on the bar before, and its portfolio. */
typedef struct scan {
    an_strat_cond ce, cx;
    size_t pos;
    int pe, px, active;
    an_opt_sim s;
} scan;

typedef struct job {
    const an_sweep *sw;
    size_t lo, hi, tile;
    const an_fill *fill;
    an_metrics *out;
    unsigned char *skipped;
    atomic_size_t next, done;
    atomic_int failed;
} job;

/* The words of c up to bar end (the last may run past it). 1 while there
 * are bars left. */
static int scan_to(scan *c, const an_sweep *sw, const an_fill *fill, size_t end, size_t hi)
{
    while (c->pos < end && c->pos < hi) {
        size_t base = c->pos;
        int len = hi - base < 64 ? (int)(hi - base) : 64;
        uint64_t be = cond_bits(&c->ce, base, len, sw->simd),
                 bx = cond_bits(&c->cx, base, len, sw->simd);
        sim_word(&c->s, sw, fill, base, len, be, bx, &c->pe, &c->px, NULL);
        c->pos = base + (size_t)len;
    }
    return c->pos < hi;
}

/* Combinations [from, to) of the job with the scratch sc (to - from of them). */
static int run_tile(job *jb, size_t from, size_t to, scan *sc)
{
    const an_sweep *sw = jb->sw;
    const an_grid *g = sw->grid;
    size_t lo = jb->lo, hi = jb->hi, first = hi;
    double p[AN_STRAT_MAX_PARAMS];
    for (size_t i = from; i < to; i++) {
        scan *c = &sc[i - from];
        an_grid_combo(g, i, p);
        c->active = 0;
        sim_start(&c->s, jb->fill);
        jb->skipped[i] = (unsigned char)an_strategy_skip(g->strategy, p);
        if (jb->skipped[i])
            continue;
        c->pos = an_opt_conditions(sw, i, lo, &c->ce, &c->cx);
        if (c->pos < hi) {
            c->pe = cond_at(&c->ce, c->pos - 1);
            c->px = cond_at(&c->cx, c->pos - 1);
            c->active = 1;
            first = c->pos < first ? c->pos : first;
        }
    }
    /* the signals, block by block */
    for (size_t end = first + BLOCK; first < hi; end += BLOCK) {
        int more = 0;
        for (size_t k = 0; k < to - from; k++) {
            if (!sc[k].active)
                continue;
            sc[k].active = scan_to(&sc[k], sw, jb->fill, end, hi);
            more |= sc[k].active;
        }
        if (!more)
            break;
    }
    for (size_t i = from; i < to; i++)
        if (jb->skipped[i])
            an_opt_metrics_nan(&jb->out[i]);
        else
            an_opt_sim_finish(&sc[i - from].s, sw, jb->fill, lo, hi, &jb->out[i], NULL);
    return 0;
}

static size_t work(job *jb, scan *sc)
{
    size_t total = jb->sw->grid->total;
    size_t from = atomic_fetch_add(&jb->next, jb->tile);
    if (from >= total || atomic_load(&jb->failed))
        return 0;
    size_t to = from + jb->tile < total ? from + jb->tile : total;
    if (run_tile(jb, from, to, sc) != 0) {
        atomic_store(&jb->failed, 1);
        return 0;
    }
    atomic_fetch_add(&jb->done, to - from);
    return to - from;
}

static void *worker(void *arg)
{
    job *jb = arg;
    scan *sc = calloc(jb->tile, sizeof *sc);
    if (!sc)
        atomic_store(&jb->failed, 1);
    while (sc && work(jb, sc))
        ;
    free(sc);
    return NULL;
}

an_code an_sweep_run(an_sweep *sw, size_t lo, size_t hi, const an_fill *fill, int threads,
                     an_sweep_progress progress, void *ctx, an_metrics *out, unsigned char *skipped,
                     an_err *err)
{
    if (lo >= hi || hi > sw->n)
        return an_err_set(err, AN_ERR_INVALID, "optimize: empty period [%zu, %zu)", lo, hi);
    if (threads <= 0)
        threads = an_opt_threads();
    size_t total = sw->grid->total;
    /* big tiles share each series among many combinations (less memory
     * traffic); at least two per thread, for balance and progress */
    size_t tile = total / ((size_t)threads * 2) + 1;
    tile = tile > TILE_MAX ? TILE_MAX : tile < 16 ? 16 : tile;
    if ((size_t)threads > total / tile + 1)
        threads = (int)(total / tile + 1);
    job jb = {sw, lo, hi, tile, fill, out, skipped, 0, 0, 0};
    pthread_t tid[256];
    int started = 0;
    for (int t = 1; t < threads && t < 256; t++) {
        if (pthread_create(&tid[started], NULL, worker, &jb) != 0)
            break; /* fewer threads: the rest is done below */
        started++;
    }
    scan *sc = calloc(tile, sizeof *sc);
    size_t last = 0;
    if (!sc)
        atomic_store(&jb.failed, 1);
    while (sc && work(&jb, sc)) {
        size_t d = atomic_load(&jb.done);
        if (progress && d - last >= total / 100 + 1) {
            progress(ctx, d, total);
            last = d;
        }
    }
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    free(sc);
    if (atomic_load(&jb.failed))
        return an_err_set(err, AN_ERR_NOMEM, "optimize: out of memory for the sweep's threads");
    if (progress)
        progress(ctx, total, total);
    return AN_OK;
}
