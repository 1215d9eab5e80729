/*
 * test_optimize.c - the optimizer's engine (analytics/strategy.c, optimize.c):
 * grid parsing and its errors, the fill model on a series worked by hand,
 * and the vectorbt oracle (PyPI vectorbt run through
 * tests/oracle/vectorbt_backtest.py): for each of the five strategies, on a
 * real candle file and on a generated series, 50 random parameter sets must
 * give vectorbt's trades (count, entry and exit bars), final_value and
 * total_return within 1e-9 relative, and vectorbt's own max_drawdown,
 * sharpe, sortino, annual return and win_rate. The threaded sweep gives
 * every combination of every strategy the single backtest's metrics to the
 * bit, and the equity replay agrees with them. Then the walk-forward and
 * split of an optimizer run on a DuckDB store, over a series built so that
 * the best in-sample parameters of each fold are known.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analytics/optimize.h"
#include "source/import.h"
#include "store/store.h"
#include "tasks/optimize.h"
#include "test.h"

static void test_grid(void)
{
    an_grid g;
    an_err err;
    AN_CHECK_OK(an_grid_parse("sma_cross", "fast=5:50:5,slow=20:200:10", 0, &g, &err), err);
    AN_CHECK_INT(g.count[0], 10);
    AN_CHECK_INT(g.count[1], 19);
    AN_CHECK_INT(g.total, 190);
    /* fast >= slow: fast 20..50 against slow 20..50 */
    size_t skip = 0;
    for (int f = 5; f <= 50; f += 5)
        for (int s = 20; s <= 200; s += 10)
            skip += f >= s;
    AN_CHECK_INT(g.skipped, skip);
    double p[3];
    an_grid_combo(&g, 20, p); /* second fast, third slow */
    AN_CHECK_DBL(p[0], 10);
    AN_CHECK_DBL(p[1], 30);
    AN_CHECK_INT(an_grid_warmup(&g), 199);
    an_grid_free(&g);

    AN_CHECK_OK(an_grid_parse("bbands_revert", "period=20|30,k=1.5:2.5:0.5", 0, &g, &err), err);
    AN_CHECK_INT(g.total, 6);
    AN_CHECK_DBL(g.values[1][2], 2.5);
    AN_CHECK_STR(g.text, "period=20|30,k=1.5|2|2.5");
    an_grid_free(&g);

    struct {
        const char *strategy, *grid, *needle;
        size_t max;
    } bad[] = {
        {"sma_crossing", "fast=5,slow=20", "unknown strategy 'sma_crossing'", 0},
        {"sma_cross", "fast=5,slowest=20", "no parameter 'slowest'", 0},
        {"sma_cross", "fast=50:5:5,slow=20", "inverted range", 0},
        {"sma_cross", "fast=5:50:0,slow=20", "step must be > 0", 0},
        {"sma_cross", "fast=5,slow=", "'' is not a number", 0},
        {"sma_cross", "", "--grid is empty", 0},
        {"sma_cross", "fast=5", "slow of sma_cross is missing", 0},
        {"sma_cross", "fast=5,fast=6,slow=9", "fast given twice", 0},
        {"sma_cross", "fast=5.5,slow=20", "whole number", 0},
        {"sma_cross", "fast=1,slow=20", "must be in [2, 100000]", 0},
        {"rsi_revert", "period=14,lower=-5,upper=70", "must be in [0, 100]", 0},
        {"sma_cross", "fast=2:1002:1,slow=2:1001:1", "1001000 combinations is over", 0},
        {"sma_cross", "fast=2:1001:1,slow=2:1001:1", "over the limit of 999999", 999999},
        {"macd_cross", "fast=2:101,slow=3,signal=9", "start:stop:step", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        an_code rc = an_grid_parse(bad[i].strategy, bad[i].grid, bad[i].max, &g, &err);
        AN_CHECK_MSG(rc == AN_ERR_INVALID && strstr(err.msg, bad[i].needle), "%s %s: %s",
                     bad[i].strategy, bad[i].grid, rc == AN_OK ? "accepted" : err.msg);
        if (rc == AN_OK)
            an_grid_free(&g);
    }
    /* exactly the limit is allowed; --max-combinations raises it */
    AN_CHECK_OK(an_grid_parse("sma_cross", "fast=2:1001:1,slow=2:1001:1", 1000000, &g, &err), err);
    AN_CHECK_INT(g.total, 1000000);
    an_grid_free(&g);
}

/* sma_cross(2, 3) on a series worked by hand: one closed trade, one open. */
static void test_fill_by_hand(void)
{
    /* sma2 vs sma3: equal on bar 4, crosses above on bar 5, below on bar 7,
     * above on bar 10 */
    double c[] = {10, 9, 8, 7, 9, 11, 10, 7, 6, 7, 9, 10};
    size_t n = sizeof c / sizeof c[0];
    an_grid g;
    an_err err;
    AN_CHECK_OK(an_grid_parse("sma_cross", "fast=2,slow=3", 0, &g, &err), err);
    an_sweep *sw = NULL;
    AN_CHECK_OK(an_sweep_create(&g, c, n, 8760, &sw, &err), err);
    if (!sw)
        return;
    an_fill fill = {0.001, 0.002, 10000};
    an_metrics m;
    an_trade *t = NULL;
    size_t nt = 0;
    AN_CHECK_OK(an_sweep_backtest(sw, 0, 0, n, &fill, &m, &t, &nt, &err), err);
    AN_CHECK_INT(nt, 2);
    if (nt == 2) {
        AN_CHECK_INT(t[0].entry, 5);
        AN_CHECK_INT(t[0].exit, 7);
        AN_CHECK_INT(t[1].entry, 10);
        AN_CHECK(t[1].exit == SIZE_MAX);
    }
    double size = 10000 / 1.001 / (11 * 1.002);
    double cash = size * 7 * 0.998 * 0.999;
    double size2 = cash / 1.001 / (9 * 1.002);
    AN_CHECK_DBL(m.final_value, size2 * 10);
    AN_CHECK_DBL(m.total_return, size2 * 10 / 10000 - 1);
    AN_CHECK_INT(m.trades, 1);
    AN_CHECK_DBL(m.win_rate, 0);
    AN_CHECK_DBL(m.exposure, 4.0 / 12);
    /* the peak is the initial cash (fees make bar 5's value lower), the
     * trough the second entry's value on bar 10 */
    AN_CHECK_DBL(m.max_drawdown, 1 - size2 * 9 / 10000);
    /* the sweep gives the same as the single backtest */
    an_metrics ms;
    unsigned char skipped;
    AN_CHECK_OK(an_sweep_run(sw, 0, n, &fill, 2, NULL, NULL, &ms, &skipped, &err), err);
    AN_CHECK_DBL(ms.final_value, m.final_value);
    AN_CHECK_DBL(ms.sharpe, m.sharpe);
    AN_CHECK_INT(skipped, 0);
    /* a period starting on bar 8: a fresh portfolio, only the entry on bar 10 */
    AN_CHECK_OK(an_sweep_backtest(sw, 0, 8, n, &fill, &m, NULL, NULL, &err), err);
    AN_CHECK_INT(m.trades, 0);
    AN_CHECK_DBL(m.final_value, 10000 / 1.001 / (9 * 1.002) * 10);
    free(t);
    an_sweep_destroy(sw);
    an_grid_free(&g);
}

/* 1 when a and b are the same double, NAN equal to NAN. */
static int same_bits(double a, double b)
{
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

/* The threaded sweep (tiles: signals block by block, then each
 * combination's events) gives every combination of every strategy the very
 * metrics of the single backtest (the oracle's path), to the bit, on the
 * whole series and on a later period; and the equity replay of a
 * combination ends on its final value, its trades' returns compounding to
 * its total return. */
static void test_sweep_equals_backtest(void)
{
    enum { N = 6000 };
    static double c[N];
    uint64_t st = 11;
    double x = 100;
    for (size_t i = 0; i < N; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        x *= 1 + ((double)(st >> 11) / 9007199254740992.0 - 0.5) * 0.02 +
             (i / 700 % 2 ? -1e-4 : 1e-4);
        c[i] = x;
    }
    static const char *const grids[][2] = {
        {"sma_cross", "fast=2:40:3,slow=5:80:5"},
        {"ema_cross", "fast=3:30:3,slow=10:60:10"},
        {"rsi_revert", "period=7|14|21,lower=20:35:5,upper=60:80:10"},
        {"bbands_revert", "period=10:40:10,k=1|1.5|2|2.5"},
        {"macd_cross", "fast=6|12,slow=20|26|40,signal=5|9"},
    };
    an_fill fill = {0.001, 0.0005, 10000};
    size_t compared = 0;
    for (size_t gi = 0; gi < sizeof grids / sizeof grids[0]; gi++) {
        an_grid g;
        an_err err;
        AN_CHECK_OK(an_grid_parse(grids[gi][0], grids[gi][1], 0, &g, &err), err);
        /* the reference: single backtests in plain C; the sweeps: plain C,
         * AVX2, and AVX-512 where the CPU has them */
        an_sweep *sw = NULL, *swr = NULL;
        setenv("AN_OPT_SIMD", "0", 1);
        AN_CHECK_OK(an_sweep_create(&g, c, N, 8760, &swr, &err), err);
        an_metrics *ms = calloc(g.total, sizeof *ms);
        unsigned char *skipped = calloc(g.total, 1);
        size_t lo_of[2] = {0, N / 3};
        for (int pass = 0; swr && ms && skipped && pass < 6; pass++) {
            size_t lo = lo_of[pass % 2];
            if (pass % 2 == 0) {
                an_sweep_destroy(sw);
                sw = NULL;
                if (pass < 4)
                    setenv("AN_OPT_SIMD", pass ? "1" : "0", 1);
                else
                    unsetenv("AN_OPT_SIMD");
                AN_CHECK_OK(an_sweep_create(&g, c, N, 8760, &sw, &err), err);
                if (!sw)
                    break;
            }
            AN_CHECK_OK(an_sweep_run(sw, lo, N, &fill, 2, NULL, NULL, ms, skipped, &err), err);
            for (size_t i = 0; i < g.total; i++) {
                an_metrics m;
                AN_CHECK_OK(an_sweep_backtest(swr, i, lo, N, &fill, &m, NULL, NULL, &err), err);
                int same = m.trades == ms[i].trades;
                for (int k = 0; k < AN_METRIC_COUNT; k++)
                    same &= same_bits(an_metric_get(&m, k), an_metric_get(&ms[i], k));
                AN_CHECK_MSG(same, "%s combination %zu from bar %zu (pass %d): the sweep differs",
                             grids[gi][0], i, lo, pass);
                compared += !skipped[i];
            }
        }
        /* the equity replay of the last combination over the whole series */
        an_trade *t = NULL;
        size_t nt = 0;
        an_metrics m;
        double *eq = malloc(N * sizeof *eq), *ret = NULL;
        size_t last = g.total - 1;
        if (sw && eq && an_sweep_backtest(sw, last, 0, N, &fill, &m, &t, &nt, &err) == AN_OK &&
            (ret = malloc((nt ? nt : 1) * sizeof *ret))) {
            an_sweep_equity(sw, t, nt, 0, N, &fill, eq, ret);
            double growth = 1;
            for (size_t k = 0; k < nt; k++)
                growth *= 1 + ret[k];
            AN_CHECK_MSG(fabs(eq[N - 1] - m.final_value) <= 1e-9 * m.final_value,
                         "%s: the equity ends on %.17g, the final value is %.17g", grids[gi][0],
                         eq[N - 1], m.final_value);
            AN_CHECK_MSG(fabs(growth - 1 - m.total_return) <= 1e-9,
                         "%s: the trades compound to %.17g, the total return is %.17g",
                         grids[gi][0], growth - 1, m.total_return);
            AN_CHECK(nt > 0 && eq[0] == 10000);
        }
        free(ret);
        free(eq);
        free(t);
        free(ms);
        free(skipped);
        an_sweep_destroy(sw);
        an_sweep_destroy(swr);
        an_grid_free(&g);
    }
    AN_CHECK_MSG(compared > 1500, "only %zu combinations compared", compared);
}

/* ---- the vectorbt oracle ------------------------------------------------ */

static uint64_t rng_state = 42;

static double rnd(void) /* [0, 1) */
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static int rnd_int(int lo, int hi) /* [lo, hi] */
{
    return lo + (int)(rnd() * (hi - lo + 1));
}

static void random_params(const char *strategy, double *p)
{
    if (strcmp(strategy, "sma_cross") == 0 || strcmp(strategy, "ema_cross") == 0) {
        p[0] = rnd_int(2, 40);
        p[1] = rnd_int((int)p[0] + 1, 150);
    } else if (strcmp(strategy, "rsi_revert") == 0) {
        p[0] = rnd_int(2, 30);
        p[1] = rnd_int(10, 45) + (rnd() < 0.5 ? 0.5 : 0);
        p[2] = rnd_int(55, 90);
    } else if (strcmp(strategy, "bbands_revert") == 0) {
        p[0] = rnd_int(5, 60);
        p[1] = rnd_int(2, 12) * 0.25;
    } else {
        p[0] = rnd_int(2, 20);
        p[1] = rnd_int((int)p[0] + 1, 60);
        p[2] = rnd_int(2, 15);
    }
}

static int close_enough(double ours, json_t *theirs)
{
    if (json_is_null(theirs))
        return isnan(ours);
    double v = json_number_value(theirs);
    return ours == v || fabs(ours - v) <= 1e-9 * fmax(fabs(ours), fabs(v));
}

enum { SETS = 50, JOBS = 10 };

typedef struct job {
    const char *label, *strategy;
    const double *c;
    size_t n;
    an_fill fill;
    double params[SETS][3];
} job;

/* The job's input for the oracle: the closes and 50 random sets. */
static json_t *job_json(job *jb)
{
    const an_strategy *st = an_strategy_find(jb->strategy);
    json_t *in = json_object(), *closes = json_array(), *plist = json_array();
    for (size_t i = 0; i < jb->n; i++)
        json_array_append_new(closes, json_real(jb->c[i]));
    for (int k = 0; k < SETS; k++) {
        random_params(jb->strategy, jb->params[k]);
        json_t *one = json_array();
        for (int j = 0; j < st->n_params; j++)
            json_array_append_new(one, json_real(jb->params[k][j]));
        json_array_append_new(plist, one);
    }
    json_object_set_new(in, "closes", closes);
    json_object_set_new(in, "params", plist);
    json_object_set_new(in, "strategy", json_string(jb->strategy));
    json_object_set_new(in, "fees", json_real(jb->fill.fees));
    json_object_set_new(in, "slippage", json_real(jb->fill.slippage));
    return in;
}

/* Runs vectorbt on every job in one process; NULL when it failed. */
static json_t *run_oracle(json_t *jobs)
{
    char path[] = "/tmp/autonama-vbt-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    json_dump_file(jobs, path, JSON_REAL_PRECISION(17));
    const char *py = getenv("AN_PYTHON");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s/tests/oracle/vectorbt_backtest.py' '%s'",
             py ? py : AN_SOURCE_DIR "/.deps/venv/bin/python", AN_SOURCE_DIR, path);
    FILE *pp = popen(cmd, "r");
    json_error_t jerr;
    json_t *out = pp ? json_loadf(pp, 0, &jerr) : NULL;
    int prc = pp ? pclose(pp) : -1;
    unlink(path);
    if (prc != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* Ours against vectorbt's (out: one entry per parameter set). */
static void compare_job(const job *jb, json_t *out, int *checked)
{
    const char *label = jb->label, *strategy = jb->strategy;
    const double *c = jb->c;
    size_t n = jb->n;
    an_fill fill = jb->fill;
    const an_strategy *st = an_strategy_find(strategy);
    AN_CHECK_MSG(json_array_size(out) == SETS, "%s %s: the oracle gave %zu results", label,
                 strategy, json_array_size(out));
    if (json_array_size(out) != SETS)
        return;
    for (int k = 0; k < SETS; k++) {
        char text[128] = "";
        for (int j = 0; j < st->n_params; j++)
            snprintf(text + strlen(text), sizeof text - strlen(text), "%s%s=%.10g", j ? "," : "",
                     st->params[j].name, jb->params[k][j]);
        an_grid g;
        an_err err;
        an_code rc = an_grid_parse(strategy, text, 0, &g, &err);
        AN_CHECK_OK(rc, err);
        if (rc != AN_OK)
            continue;
        an_sweep *sw = NULL;
        AN_CHECK_OK(an_sweep_create(&g, c, n, 8760, &sw, &err), err);
        an_metrics m, ms;
        an_trade *t = NULL;
        size_t nt = 0;
        unsigned char skipped = 1;
        if (sw) {
            AN_CHECK_OK(an_sweep_backtest(sw, 0, 0, n, &fill, &m, &t, &nt, &err), err);
            AN_CHECK_OK(an_sweep_run(sw, 0, n, &fill, 1, NULL, NULL, &ms, &skipped, &err), err);
        }
        json_t *v = json_array_get(out, (size_t)k), *vt = json_object_get(v, "trades");
        int ok = sw && !skipped && nt == json_array_size(vt);
        for (size_t i = 0; ok && i < nt; i++) {
            json_t *tr = json_array_get(vt, i);
            int open = json_integer_value(json_array_get(tr, 2)) == 0;
            ok = (size_t)json_integer_value(json_array_get(tr, 0)) == t[i].entry &&
                 (open ? t[i].exit == SIZE_MAX
                       : (size_t)json_integer_value(json_array_get(tr, 1)) == t[i].exit);
        }
        AN_CHECK_MSG(ok, "%s %s %s: trades differ (ours %zu, vectorbt %zu)", label, strategy, text,
                     nt, json_array_size(vt));
        if (sw) {
            struct {
                const char *key;
                double ours;
            } fig[] = {{"final_value", m.final_value},
                       {"total_return", m.total_return},
                       {"max_drawdown", m.max_drawdown},
                       {"sharpe", m.sharpe},
                       {"sortino", m.sortino},
                       {"annual_return", m.annual_return},
                       {"win_rate", m.win_rate},
                       {"final_value", ms.final_value},
                       {"sharpe", ms.sharpe}};
            for (size_t f = 0; f < sizeof fig / sizeof fig[0]; f++) {
                json_t *want = json_object_get(v, fig[f].key);
                AN_CHECK_MSG(close_enough(fig[f].ours, want),
                             "%s %s %s: %s ours %.17g vectorbt %.17g", label, strategy, text,
                             fig[f].key, fig[f].ours,
                             json_is_null(want) ? NAN : json_number_value(want));
            }
            (*checked)++;
        }
        free(t);
        an_sweep_destroy(sw);
        an_grid_free(&g);
    }
}

static void test_vectorbt_oracle(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/BTC_USDT-1h.json", an_test_data_dir());
    an_import_result r;
    an_err err;
    AN_CHECK_OK(an_import_read(path, AN_IMPORT_AUTO, NULL, NULL, &r, &err), err);
    double *real = malloc(r.candles.n * sizeof *real);
    size_t nr = r.candles.n;
    for (size_t i = 0; i < nr; i++)
        real[i] = r.candles.v[i].close;
    an_import_result_free(&r);
    /* generated: a random walk with regimes, 3,000 bars */
    size_t ng = 3000;
    double *gen = malloc(ng * sizeof *gen);
    double x = 100;
    for (size_t i = 0; i < ng; i++) {
        double drift = ((i / 500) % 2 ? -0.0004 : 0.0005);
        x *= 1 + drift + (rnd() - 0.5) * 0.03;
        gen[i] = x;
    }
    const char *names[] = {"sma_cross", "ema_cross", "rsi_revert", "bbands_revert", "macd_cross"};
    static job jobs[JOBS];
    json_t *in = json_array();
    for (int s = 0; s < 5; s++) {
        jobs[2 * s] = (job){"BTC_USDT-1h", names[s], real, nr, an_fill_default(), {{0}}};
        jobs[2 * s + 1] = (job){"generated", names[s], gen, ng, {0.0025, 0.001, 10000}, {{0}}};
        json_array_append_new(in, job_json(&jobs[2 * s]));
        json_array_append_new(in, job_json(&jobs[2 * s + 1]));
    }
    json_t *out = run_oracle(in);
    json_decref(in);
    AN_CHECK_MSG(out && json_array_size(out) == JOBS, "the vectorbt oracle failed");
    int checked = 0;
    for (int j = 0; out && j < JOBS; j++)
        compare_job(&jobs[j], json_array_get(out, (size_t)j), &checked);
    json_decref(out);
    fprintf(stderr, "  %d parameter sets checked against vectorbt\n", checked);
    AN_CHECK_INT(checked, 500);
    free(real);
    free(gen);
}

/* Four segments of 400 hourly bars: a 5% oscillation (a 20-bar cycle: the
 * 20-bar middle band stays at its centre), a
 * steady fall, the oscillation again, then a rise. bbands_revert(20, k):
 * k = 1 buys the oscillation's dips and sells at the middle band (a gain);
 * in the fall it buys the first break of the lower band and never sees the
 * middle band again (a loss); k = 50 never trades (0). Best by total_return:
 * fold 1 (train on the oscillation) k = 1, fold 2 (train on the fall) k = 50,
 * fold 3 (the oscillation) k = 1. */
static void test_walk_forward_and_split(void)
{
    enum { SEG = 400, N = 4 * SEG };
    static an_candle c[N];
    int64_t t0 = 1704067200000;
    for (int i = 0; i < N; i++) {
        int seg = i / SEG;
        double x;
        if (seg == 0 || seg == 2)
            x = 100 * (1 + 0.05 * sin(2 * M_PI * i / 20.0));
        else if (seg == 1)
            x = 100 - 0.1 * (i - SEG);
        else
            x = 100 + 0.05 * (i - 3 * SEG);
        c[i] = (an_candle){t0 + (int64_t)i * 3600000, x, x * 1.001, x * 0.999, x, 1, 0};
    }
    char dir[] = "/tmp/autonama-test-opt-XXXXXX";
    AN_CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof path, "%s/s.duckdb", dir);
    an_store_options o = {.mode = "duckdb", .duckdb_path = path, .pool_size = 1};
    an_store *s = NULL;
    an_err err = {0};
    AN_CHECK_OK(an_store_open(&o, &s, &err), err);
    if (!s)
        return;
    AN_CHECK_OK(an_store_migrate(s, NULL, &err), err);
    AN_CHECK_OK(an_store_insert_ohlc(s, "WF/USDT", "1h", c, N, NULL, &err), err);

    an_opt_spec spec = {.strategy = "bbands_revert",
                        .grid = "period=20,k=1|50",
                        .sort = "total_return",
                        .walk_forward = 3,
                        .fill = an_fill_default()};
    json_t *res = NULL;
    AN_CHECK_OK(
        an_optimize_run(s, &spec, "WF/USDT", "1h", INT64_MIN, INT64_MAX, NULL, NULL, &res, &err),
        err);
    json_t *folds = json_object_get(json_array_get(json_object_get(res, "symbols"), 0), "folds");
    AN_CHECK_INT(json_array_size(folds), 3);
    /* an independent backtest of each fold's choice on its test window */
    double close[N];
    for (int i = 0; i < N; i++)
        close[i] = c[i].close;
    an_grid g;
    AN_CHECK_OK(an_grid_parse("bbands_revert", "period=20,k=1|50", 0, &g, &err), err);
    an_sweep *sw = NULL;
    AN_CHECK_OK(an_sweep_create(&g, close, N, 8760, &sw, &err), err);
    const double want_k[3] = {1, 50, 1};
    for (size_t k = 0; sw && k < json_array_size(folds); k++) {
        json_t *f = json_array_get(folds, k);
        double got_k = json_number_value(json_object_get(json_object_get(f, "parameters"), "k"));
        AN_CHECK_MSG(got_k == want_k[k], "fold %zu chose k=%g, not %g", k + 1, got_k, want_k[k]);
        size_t lo = (k + 1) * SEG, hi = (k + 2) * SEG;
        AN_CHECK_INT(json_integer_value(json_object_get(f, "train_start")), c[k * SEG].ts);
        AN_CHECK_INT(json_integer_value(json_object_get(f, "test_start")), c[lo].ts);
        AN_CHECK_INT(json_integer_value(json_object_get(f, "test_end")), c[hi - 1].ts + 3600000);
        an_metrics m;
        AN_CHECK_OK(
            an_sweep_backtest(sw, got_k == 1 ? 0 : 1, lo, hi, &spec.fill, &m, NULL, NULL, &err),
            err);
        json_t *oos = json_object_get(f, "out_of_sample");
        AN_CHECK_DBL(json_number_value(json_object_get(oos, "final_value")), m.final_value);
        AN_CHECK_INT(json_integer_value(json_object_get(oos, "trades")), m.trades);
        /* and the in-sample figures that made it the choice */
        json_t *ins = json_object_get(f, "in_sample");
        double tr = json_number_value(json_object_get(ins, "total_return"));
        AN_CHECK_MSG(want_k[k] == 1 ? tr > 0 : tr == 0, "fold %zu in-sample total_return %g", k + 1,
                     tr);
    }
    /* fold 2 tests k = 50 on the oscillation: no trade, the cash untouched */
    json_t *oos2 = json_object_get(json_array_get(folds, 1), "out_of_sample");
    AN_CHECK_INT(json_integer_value(json_object_get(oos2, "trades")), 0);
    AN_CHECK_DBL(json_number_value(json_object_get(oos2, "final_value")), 10000);
    json_decref(res);

    /* --split 0.25: in = the oscillation, out = the rest; both rows for each */
    spec.walk_forward = 0;
    spec.split = 0.25;
    res = NULL;
    AN_CHECK_OK(
        an_optimize_run(s, &spec, "WF/USDT", "1h", INT64_MIN, INT64_MAX, NULL, NULL, &res, &err),
        err);
    AN_CHECK_INT(json_integer_value(json_object_get(res, "rows_stored")), 4);
    json_t *best = json_object_get(json_array_get(json_object_get(res, "symbols"), 0), "best");
    AN_CHECK_DBL(json_number_value(json_object_get(json_object_get(best, "parameters"), "k")), 1);
    an_metrics m;
    AN_CHECK_OK(an_sweep_backtest(sw, 0, SEG, N, &spec.fill, &m, NULL, NULL, &err), err);
    AN_CHECK_DBL(
        json_number_value(json_object_get(json_object_get(best, "out_of_sample"), "final_value")),
        m.final_value);
    json_decref(res);

    /* too few candles for the slowest window: refused before anything runs */
    spec.split = 0;
    spec.grid = "period=20|2000,k=1";
    res = NULL;
    AN_CHECK(an_optimize_run(s, &spec, "WF/USDT", "1h", INT64_MIN, INT64_MAX, NULL, NULL, &res,
                             &err) == AN_ERR_INVALID &&
             strstr(err.msg, "too few for the slowest window"));
    an_sweep_destroy(sw);
    an_grid_free(&g);
    an_store_close(s);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    AN_CHECK(system(cmd) == 0);
}

int main(void)
{
    AN_RUN(test_grid);
    AN_RUN(test_fill_by_hand);
    AN_RUN(test_sweep_equals_backtest);
    AN_RUN(test_walk_forward_and_split);
    if (!getenv("AN_SKIP_ORACLE"))
        AN_RUN(test_vectorbt_oracle);
    return AN_TEST_DONE();
}
