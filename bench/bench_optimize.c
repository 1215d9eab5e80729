/*
 * bench_optimize.c - bench/optimize (issue 13): 10,000 sma_cross parameter
 * sets (fast 5..104 x slow 110..209) over 200,000 1m candles of one symbol.
 *
 *   ours, compute: the sweep in process (each SMA once, signals, fills and
 *                  the ten metrics of every combination), AUTONAMA_OPT_THREADS
 *   ours, whole:   `autonama optimize ... --keep 100` on a DuckDB store holding
 *                  the candles: process start, load, compute, store the best
 *                  100; wall time and the process's memory peak (wait4)
 *   vectorbt:      bench/optimize_vectorbt.py on the same closes, after a
 *                  warm-up (Numba compiled); vectorbt needs minutes per 100
 *                  combinations of this size here, so it runs the first
 *                  AN_BENCH_VBT_FAST fast windows (2: 200 combinations) and
 *                  its time is scaled to 10,000 (printed as such)
 * Targets: ours >= 20x vectorbt; the whole sweep under 2 s.
 * Env: AN_BIN (the autonama binary), AN_PYTHON, AN_BENCH_CANDLES (200000),
 * AN_BENCH_VBT_FAST (0: skip vectorbt, for quick runs of ours only).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analytics/optimize.h"
#include "store/store.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of this process or of its waited children. */
static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    const char *bin = getenv("AN_BIN") ? getenv("AN_BIN") : "build/autonama";
    const char *py = getenv("AN_PYTHON") ? getenv("AN_PYTHON") : ".deps/venv/bin/python";
    size_t n = getenv("AN_BENCH_CANDLES") ? strtoul(getenv("AN_BENCH_CANDLES"), NULL, 10) : 200000;
    int vbt_fast = getenv("AN_BENCH_VBT_FAST") ? atoi(getenv("AN_BENCH_VBT_FAST")) : 2;
    an_candles cs = {0};
    cs.v = malloc(n * sizeof *cs.v);
    cs.n = cs.cap = n;
    double *close = malloc(n * sizeof *close);
    uint64_t st = 7;
    double x = 40000;
    int64_t t0 = 1704067200000; /* 2024-01-01 */
    for (size_t i = 0; i < n; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(st >> 11) / 9007199254740992.0 - 0.5;
        double o = x;
        x *= 1 + u * 0.004 + ((i / 20000) % 2 ? -0.00002 : 0.00003);
        close[i] = x;
        cs.v[i] = (an_candle){t0 + (int64_t)i * 60000,
                              o,
                              (o > x ? o : x) * 1.0005,
                              (o < x ? o : x) * 0.9995,
                              x,
                              1.0,
                              0};
    }
    char dir[] = "/tmp/autonama-bench-opt-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char db[256], closes_path[256];
    snprintf(db, sizeof db, "%s/bench.duckdb", dir);
    snprintf(closes_path, sizeof closes_path, "%s/closes.f64", dir);
    FILE *f = fopen(closes_path, "wb");
    fwrite(close, sizeof *close, n, f);
    fclose(f);

    /* the store the whole-sweep run reads */
    an_store_options opt = {.mode = "duckdb", .duckdb_path = db, .pool_size = 1};
    an_store *s = NULL;
    an_err err = {0};
    if (an_store_open(&opt, &s, &err) != AN_OK || an_store_migrate(s, NULL, &err) != AN_OK ||
        an_store_insert_ohlc(s, "BTC/USDT", "1m", cs.v, n, NULL, &err) != AN_OK) {
        fprintf(stderr, "bench_optimize: %s\n", err.msg);
        return 1;
    }
    an_store_close(s);

    /* ours, compute only: median of 3 */
    const char *grid = "fast=5:104:1,slow=110:209:1";
    an_grid g;
    if (an_grid_parse("sma_cross", grid, 0, &g, &err) != AN_OK) {
        fprintf(stderr, "bench_optimize: %s\n", err.msg);
        return 1;
    }
    an_metrics *m = malloc(g.total * sizeof *m);
    unsigned char *skipped = malloc(g.total);
    an_fill fill = an_fill_default();
    double comp[3], cpu0 = cpu_s(RUSAGE_SELF);
    for (int r = 0; r < 3; r++) {
        double a = now_s();
        an_sweep *sw = NULL;
        if (an_sweep_create(&g, close, n, 525600, &sw, &err) != AN_OK ||
            an_sweep_run(sw, 0, n, &fill, 0, NULL, NULL, m, skipped, &err) != AN_OK) {
            fprintf(stderr, "bench_optimize: %s\n", err.msg);
            return 1;
        }
        comp[r] = now_s() - a;
        an_sweep_destroy(sw);
    }
    double comp_cpu = (cpu_s(RUSAGE_SELF) - cpu0) / 3;
    long long trades = 0;
    for (size_t i = 0; i < g.total; i++)
        trades += skipped[i] ? 0 : (long long)m[i].trades;
    qsort(comp, 3, sizeof comp[0], cmp_dbl);

    /* ours, the whole sweep through the binary: median of 3, memory peak */
    double whole[3], child0 = cpu_s(RUSAGE_CHILDREN);
    long peak_kb = 0;
    for (int r = 0; r < 3; r++) {
        double a = now_s();
        pid_t pid = fork();
        if (pid == 0) {
            setenv("DUCKDB_PATH", db, 1);
            setenv("AUTONAMA_STORE", "duckdb", 1);
            setenv("AUTONAMA_LOG_LEVEL", "warn", 1);
            unsetenv("POSTGRES_SERVER");
            if (!freopen("/dev/null", "w", stdout))
                _exit(127);
            execl(bin, bin, "optimize", "--strategy", "sma_cross", "--grid", grid, "--symbols",
                  "BTC/USDT", "--timeframe", "1m", "--keep", "100", (char *)NULL);
            _exit(127);
        }
        int status;
        struct rusage ru;
        if (pid < 0 || wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "bench_optimize: %s optimize failed\n", bin);
            return 1;
        }
        whole[r] = now_s() - a;
        if (ru.ru_maxrss > peak_kb)
            peak_kb = ru.ru_maxrss;
    }
    double whole_cpu = (cpu_s(RUSAGE_CHILDREN) - child0) / 3;
    qsort(whole, 3, sizeof whole[0], cmp_dbl);

    /* vectorbt on the same closes */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' 5 104 110 209 1min %d", py,
             AN_SOURCE_DIR "/bench/optimize_vectorbt.py", closes_path, vbt_fast);
    FILE *p = vbt_fast > 0 ? popen(cmd, "r") : NULL;
    double vbt = 0;
    long vbt_n = 0;
    char line[256];
    while (p && fgets(line, sizeof line, p))
        sscanf(line, "vectorbt_seconds=%lf combinations=%ld", &vbt, &vbt_n);
    if (vbt_fast > 0 && (!p || pclose(p) != 0 || vbt_n <= 0)) {
        fprintf(stderr, "bench_optimize: the vectorbt baseline failed (%s)\n", cmd);
        return 1;
    }
    double vbt_all = vbt_n > 0 ? vbt / (double)vbt_n * (double)g.total : 0, load = 0;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load) != 1)
            load = 0;
        fclose(la);
    }
    printf("bench/optimize: sma_cross, %zu combinations, %zu 1m candles, %d threads, load "
           "average %.1f (times are wall clock on a shared machine)\n",
           g.total, n, an_opt_threads(), load);
    printf(
        "  ours compute (sweep in process, median of 3): %.3f s (CPU %.3f s per run; %lld closed "
        "trades)\n",
        comp[1], comp_cpu, trades);
    printf("  ours whole (autonama optimize: load + compute + store best 100, median of 3): "
           "%.3f s (CPU %.3f s per run; target < 2 s) %s\n",
           whole[1], whole_cpu, whole[1] < 2 ? "ok" : "MISSED");
    printf("  ours memory peak (autonama optimize, max RSS): %.1f MiB\n", peak_kb / 1024.0);
    if (vbt_fast <= 0) /* AN_BENCH_VBT_FAST=0: ours only */
        vbt = 1, vbt_n = 0,
        printf("  vectorbt: skipped (AN_BENCH_VBT_FAST=0); its figures below are 0\n");
    printf("  vectorbt (after warm-up): %.3f s for %ld combinations -> %.1f s for %zu\n", vbt,
           vbt_n, vbt_all, g.total);
    printf("  ratio vectorbt / ours compute: %.1fx; vectorbt / ours whole: %.1fx (target >= 20x) "
           "%s\n",
           vbt_all / comp[1], vbt_all / whole[1], vbt_all / whole[1] >= 20 ? "ok" : "MISSED");
    free(m);
    free(skipped);
    an_grid_free(&g);
    free(close);
    free(cs.v);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
    return 0;
}
