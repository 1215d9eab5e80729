/*
 * oneshot.c - import, export and sync for the command line (oneshot.h).
 *
 * Threads: the caller's; no shared state.
 */
#include "tasks/oneshot.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "source/import.h"
#include "store/store.h"
#include "tasks/service.h"
#include "tasks/sync.h"
#include "tasks/tasks.h"

/* Candles per write of an import: memory follows this, not the file
 * (48 bytes a candle: about 9.2 MiB). */
#define IMPORT_BATCH 200000

/* import_file's stream target: each batch written to the store. */
typedef struct import_sink {
    an_store *s;
    an_upsert_counts counts;
} import_sink;

static an_code write_batch(void *ctx, const an_import_info *info, const an_candle *v, size_t n,
                           an_err *err)
{
    import_sink *k = ctx;
    an_upsert_counts c = {0};
    an_code rc = an_store_insert_ohlc(k->s, info->symbol, info->timeframe, v, n, &c, err);
    k->counts.inserted += c.inserted;
    k->counts.updated += c.updated;
    k->counts.unchanged += c.unchanged;
    return rc;
}

/* One file into s, streamed in batches: its entry of files[]; the 1m range
 * it covered widens [*from, *to) for the rollup refresh. */
static json_t *import_file(an_store *s, const char *path, an_import_format fmt, const char *symbol,
                           const char *tf, int *ok, int64_t *from, int64_t *to)
{
    import_sink sink = {.s = s};
    an_import_info info;
    json_t *fo = json_pack("{s:s}", "path", path);
    an_err ferr = {0};
    *ok = an_import_stream(path, fmt, symbol, tf, IMPORT_BATCH, write_batch, &sink, &info, &ferr) ==
          AN_OK;
    if (*ok) {
        json_object_set_new(fo, "status", json_string("success"));
        json_object_set_new(fo, "format", json_string(an_import_format_name(info.format)));
        json_object_set_new(fo, "symbol", json_string(info.symbol));
        json_object_set_new(fo, "timeframe", json_string(info.timeframe));
        json_object_set_new(fo, "rows", json_integer((json_int_t)info.rows));
        json_object_set_new(fo, "inserted", json_integer(sink.counts.inserted));
        json_object_set_new(fo, "updated", json_integer(sink.counts.updated));
        json_object_set_new(fo, "unchanged", json_integer(sink.counts.unchanged));
        AN_INFO("import",
                "msg=\"imported\" file=\"%s\" symbol=%s timeframe=%s rows=%zu inserted=%" PRId64
                " updated=%" PRId64,
                path, info.symbol, info.timeframe, info.rows, sink.counts.inserted,
                sink.counts.updated);
        if (strcmp(info.timeframe, "1m") == 0) {
            if (info.first_ms < *from)
                *from = info.first_ms;
            if (info.last_ms + 60000 > *to)
                *to = info.last_ms + 60000;
        }
    } else {
        json_object_set_new(fo, "status", json_string("failed"));
        json_object_set_new(fo, "error", json_string(ferr.msg));
        if (sink.counts.inserted + sink.counts.updated > 0)
            /* a store write failed part-way: what was written stays (a
             * rerun completes it; every write is an upsert) */
            json_object_set_new(fo, "written_before_the_error",
                                json_integer(sink.counts.inserted + sink.counts.updated));
    }
    return fo;
}

an_code an_oneshot_import(const an_config *cfg, char *const *paths, int n, json_t **result,
                          an_err *err)
{
    an_err local_err; /* err may be NULL (error.h): this function reads the code */
    if (!err)
        err = &local_err;
    *result = NULL;
    if (n < 1)
        return an_err_set(err, AN_ERR_INVALID, "no file given: autonama import FILE...");
    an_import_format fmt;
    if (an_import_format_parse(an_config_get(cfg, AN_CFG_FORMAT), &fmt, err) != AN_OK)
        return err->code;
    const char *symbol = an_config_get(cfg, AN_CFG_SYMBOL);
    /* a file's timeframe comes from its name or --timeframe, never from
     * AUTONAMA_TIMEFRAME (the ingest timeframe) */
    const char *tf = cfg->from[AN_CFG_TIMEFRAME] == AN_CFG_ORIGIN_FLAG
                         ? an_config_get(cfg, AN_CFG_TIMEFRAME)
                         : NULL;
    an_store *s = NULL;
    int version = 0;
    if (an_service_open_store(cfg, &s, err) != AN_OK)
        return err->code;
    if (an_store_check_schema(s, &version, err) != AN_OK) {
        an_store_close(s);
        return err->code;
    }
    json_t *files = json_array();
    int64_t ok = 0, failed = 0;
    int64_t rollup_from = INT64_MAX, rollup_to = INT64_MIN;
    for (int i = 0; i < n; i++) {
        int fine = 0;
        json_array_append_new(
            files, import_file(s, paths[i], fmt, symbol, tf, &fine, &rollup_from, &rollup_to));
        ok += fine;
        failed += !fine;
    }
    if (rollup_from < rollup_to) {
        /* whole days around the range, so the 1d buckets are complete */
        int64_t day = 86400000LL;
        an_err rerr = {0};
        if (an_store_refresh_rollups(s, rollup_from / day * day, (rollup_to + day - 1) / day * day,
                                     &rerr) != AN_OK)
            AN_WARN("import", "msg=\"rollup refresh failed\" error=\"%s\"", rerr.msg);
    }
    *result = json_pack("{s:s, s:s, s:s, s:i, s:{s:I, s:I, s:I}, s:o}", "status",
                        failed ? (ok ? "partial" : "failed") : "completed", "approach",
                        an_tasks_approach(s), "store_mode",
                        an_store_mode_name(an_store_get_mode(s)), "categories_processed", 1,
                        "summary", "total_success", (json_int_t)ok, "total_failed",
                        (json_int_t)failed, "total_skipped", (json_int_t)0, "files", files);
    an_store_close(s);
    return AN_OK;
}

/* The shortest %g form that reads back as the same double. */
static const char *fmt_double(double v, char *buf, size_t len)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

an_code an_oneshot_export(const an_config *cfg, FILE *out, an_err *err)
{
    an_err local_err; /* err may be NULL (error.h): this function reads the code */
    if (!err)
        err = &local_err;
    const char *symbol = an_config_get(cfg, AN_CFG_SYMBOL);
    const char *tf = an_config_get(cfg, AN_CFG_TIMEFRAME);
    an_query q = an_query_all();
    const char *s_since = an_config_get(cfg, AN_CFG_SINCE),
               *s_until = an_config_get(cfg, AN_CFG_UNTIL);
    if (!symbol)
        return an_err_set(err, AN_ERR_INVALID, "export needs --symbol BASE/QUOTE");
    if ((s_since && an_time_parse(s_since, &q.start_ms, err) != AN_OK) ||
        (s_until && an_time_parse(s_until, &q.end_ms, err) != AN_OK))
        return err->code;
    an_store *s = NULL;
    int version = 0;
    an_candles c = {0};
    /* export only reads: a DuckDB file on a read-only disk still exports */
    an_store_options so;
    char *conninfo = NULL;
    an_code rc = an_service_store_options(cfg, &so, &conninfo, err);
    so.read_only = 1;
    if (rc != AN_OK || an_store_open(&so, &s, err) != AN_OK ||
        an_store_check_schema(s, &version, err) != AN_OK ||
        an_store_get_ohlc(s, symbol, tf, &q, &c, err) != AN_OK) {
        an_store_close(s);
        free(conninfo);
        return err->code;
    }
    free(conninfo);
    fprintf(out, "timestamp,open,high,low,close,volume\n");
    for (size_t i = 0; i < c.n; i++) {
        char a[32], b[32], d[32], e[32], f[32];
        fprintf(out, "%" PRId64 ",%s,%s,%s,%s,%s\n", c.v[i].ts,
                fmt_double(c.v[i].open, a, sizeof a), fmt_double(c.v[i].high, b, sizeof b),
                fmt_double(c.v[i].low, d, sizeof d), fmt_double(c.v[i].close, e, sizeof e),
                fmt_double(c.v[i].volume, f, sizeof f));
    }
    fflush(out);
    an_candles_free(&c);
    an_store_close(s);
    return AN_OK;
}

an_code an_oneshot_sync(const an_config *cfg, json_t **result, an_err *err)
{
    an_err local_err; /* err may be NULL (error.h): this function reads the code */
    if (!err)
        err = &local_err;
    *result = NULL;
    const char *from = an_config_get(cfg, AN_CFG_FROM);
    int move = an_config_bool(cfg, AN_CFG_MOVE);
    if (!from) {
        from = an_config_get(cfg, AN_CFG_FALLBACK_PATH);
        move = 1; /* the fallback file is emptied by its replay */
    }
    if (!an_config_has_postgres(cfg) || strcmp(an_config_get(cfg, AN_CFG_STORE), "duckdb") == 0)
        return an_err_set(err, AN_ERR_INVALID, "sync moves into PostgreSQL: set POSTGRES_SERVER");
    if (access(from, R_OK) != 0)
        return an_err_set(err, AN_ERR_NOT_FOUND, "no DuckDB file %s", from);
    an_store *dst = NULL, *src = NULL;
    an_store_options so = {0};
    so.mode = "duckdb";
    so.duckdb_path = from;
    int version = 0;
    an_sync_stats st;
    an_err ignored = {0};
    /* migrate only when needed (it also re-applies the TimescaleDB policies) */
    if (an_service_open_store(cfg, &dst, err) != AN_OK ||
        (an_store_check_schema(dst, &version, &ignored) != AN_OK &&
         an_store_migrate(dst, NULL, err) != AN_OK) ||
        an_store_open(&so, &src, err) != AN_OK ||
        an_sync_stores(src, dst, move, &st, err) != AN_OK) {
        an_store_close(src);
        an_store_close(dst);
        return err->code;
    }
    *result = json_pack(
        "{s:s, s:s, s:s, s:s, s:b, s:i, s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I}}",
        "status", "completed", "approach", "duckdb_sync", "from", from, "store",
        an_store_describe(dst), "moved", move, "categories_processed", 1, "summary",
        "total_success", (json_int_t)st.series, "total_failed", (json_int_t)st.tasks_kept,
        "total_skipped", (json_int_t)0, "synced", "series", (json_int_t)st.series, "candles",
        (json_int_t)st.candles, "candles_inserted", (json_int_t)st.candle_counts.inserted,
        "candles_updated", (json_int_t)st.candle_counts.updated, "indicator_series",
        (json_int_t)st.indicator_series, "indicators", (json_int_t)st.indicators, "tasks",
        (json_int_t)st.tasks, "tasks_without_slot", (json_int_t)st.tasks_unslotted, "tasks_kept",
        (json_int_t)st.tasks_kept);
    if (st.tasks_kept > 0) /* what was left in the file, and why */
        json_object_set_new(*result, "kept", json_string(st.kept_error));
    an_store_close(src);
    an_store_close(dst);
    return AN_OK;
}
