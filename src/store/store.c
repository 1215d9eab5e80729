/*
 * store.c - the store's front: picks the backend, validates arguments once,
 * and dispatches through the backend's ops table (see store.h).
 */
#include "store/store_impl.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *an_store_mode_name(an_store_mode mode)
{
    switch (mode) {
    case AN_STORE_TIMESCALEDB: return "timescaledb";
    case AN_STORE_POSTGRES: return "postgres";
    case AN_STORE_DUCKDB: return "duckdb";
    }
    return "unknown";
}

static an_code check_key(const char *symbol, const char *tf, an_err *err);

static _Thread_local int64_t deadline_ms; /* the calling thread's; 0: none */

void an_store_set_deadline(int64_t mono_ms)
{
    deadline_ms = mono_ms;
}

int64_t an_store_deadline(void)
{
    return deadline_ms;
}

int64_t an_store_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int an_store_deadline_passed(void)
{
    return deadline_ms > 0 && an_store_mono_ms() >= deadline_ms;
}

an_query an_query_all(void)
{
    an_query q = {INT64_MIN, INT64_MAX, 0, 0};
    return q;
}

an_code an_store_open(const an_store_options *opt, an_store **out, an_err *err)
{
    *out = NULL;
    const char *mode = opt->mode && *opt->mode ? opt->mode : "auto";
    int want_pg;
    if (strcmp(mode, "duckdb") == 0)
        want_pg = 0;
    else if (strcmp(mode, "auto") == 0)
        want_pg = opt->pg_conninfo && *opt->pg_conninfo;
    else if (strcmp(mode, "postgres") == 0 || strcmp(mode, "timescaledb") == 0)
        want_pg = 1;
    else
        return an_err_set(err, AN_ERR_INVALID,
                          "unknown store mode '%.32s': expected auto, timescaledb, postgres or "
                          "duckdb",
                          mode);
    if (want_pg && !(opt->pg_conninfo && *opt->pg_conninfo))
        return an_err_set(err, AN_ERR_INVALID,
                          "store mode %s needs a PostgreSQL server: set POSTGRES_SERVER", mode);
    an_store *s = calloc(1, sizeof *s);
    if (!s)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory opening the store");
    an_code rc = want_pg ? an_pg_store_open(opt, s, err) : an_duckdb_store_open(opt, s, err);
    if (rc != AN_OK) {
        free(s);
        return rc;
    }
    if (strcmp(mode, "timescaledb") == 0 && s->mode != AN_STORE_TIMESCALEDB) {
        an_err_set(err, AN_ERR_UNSUPPORTED,
                   "store mode timescaledb asked for, but %s has no timescaledb extension",
                   s->describe);
        an_store_close(s);
        return AN_ERR_UNSUPPORTED;
    }
    *out = s;
    return AN_OK;
}

void an_store_close(an_store *s)
{
    if (!s)
        return;
    if (s->ops && s->ops->close)
        s->ops->close(s);
    free(s);
}

an_store_mode an_store_get_mode(const an_store *s)
{
    return s->mode;
}

const char *an_store_describe(const an_store *s)
{
    return s->describe;
}

int an_store_schema_version(void)
{
    return AN_SCHEMA_VERSION;
}

an_code an_store_version_check(const char *kind, const char *where, int version, an_err *err)
{
    if (version == 0)
        return an_err_set(err, AN_ERR_SCHEMA,
                          "%s %s has no autonama schema: run `autonama migrate`", kind, where);
    if (version != AN_SCHEMA_VERSION)
        return an_err_set(
            err, AN_ERR_SCHEMA, "%s %s has schema version %d, this autonama needs %d: %s", kind,
            where, version, AN_SCHEMA_VERSION,
            version > AN_SCHEMA_VERSION ? "upgrade autonama" : "run `autonama migrate`");
    return AN_OK;
}

an_code an_store_migrate(an_store *s, int *applied, an_err *err)
{
    int dummy;
    return s->ops->migrate(s, applied ? applied : &dummy, err);
}

an_code an_store_check_schema(an_store *s, int *version, an_err *err)
{
    int dummy;
    return s->ops->check_schema(s, version ? version : &dummy, err);
}

an_code an_store_ping(an_store *s, an_err *err)
{
    return s->ops->ping(s, err);
}

an_code an_store_insert_ohlc(an_store *s, const char *symbol, const char *timeframe,
                             const an_candle *v, size_t n, an_upsert_counts *counts, an_err *err)
{
    an_upsert_counts dummy;
    if (!counts)
        counts = &dummy;
    memset(counts, 0, sizeof *counts);
    if (n > 0 && !v)
        return an_err_set(err, AN_ERR_INVALID, "insert_ohlc_data: no candles given");
    if (an_candles_validate(symbol, timeframe, v, n, err) != AN_OK)
        return an_err_prefix(err, "insert_ohlc_data refused the batch");
    if (n == 0)
        return AN_OK;
    an_code rc = s->ops->insert_ohlc(s, symbol, timeframe, v, n, counts, err);
    if (rc == AN_OK && counts->inserted + counts->updated > 0)
        an_store_changed(symbol, timeframe, v[0].ts, v[n - 1].ts);
    return rc;
}

/* The hooks hear of each candle an upsert_candles wrote (watch.c; one
 * candle per key, so one call per key). */
static void changed_many(const an_series_candle *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        an_store_changed(v[i].symbol, v[i].timeframe, v[i].c.ts, v[i].c.ts);
}

an_code an_store_upsert_candles(an_store *s, const an_series_candle *v, size_t n, an_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (an_candles_validate(v[i].symbol, v[i].timeframe, &v[i].c, 1, err) != AN_OK)
            return an_err_prefix(err, "upsert_candles refused the batch");
    if (n == 0)
        return AN_OK;
    if (s->ops->upsert_candles) {
        an_code rc = s->ops->upsert_candles(s, v, n, err);
        if (rc == AN_OK)
            changed_many(v, n);
        return rc;
    }
    an_upsert_counts counts;
    for (size_t i = 0; i < n; i++) {
        an_code rc = s->ops->insert_ohlc(s, v[i].symbol, v[i].timeframe, &v[i].c, 1, &counts, err);
        if (rc != AN_OK)
            return rc;
        if (counts.inserted + counts.updated > 0)
            an_store_changed(v[i].symbol, v[i].timeframe, v[i].c.ts, v[i].c.ts);
    }
    return AN_OK;
}

static an_code check_query(const an_query *q, an_err *err)
{
    if (q->start_ms != INT64_MIN && q->end_ms != INT64_MAX && q->end_ms < q->start_ms)
        return an_err_set(err, AN_ERR_INVALID, "the end of the time range is before its start");
    return AN_OK;
}

/* The checks of a read: the key and *q, which is pointed at all (the whole
 * range) when NULL. */
static an_code check_read(const char *symbol, const char *tf, const an_query **q, an_query *all,
                          an_err *err)
{
    *all = an_query_all();
    if (!*q)
        *q = all;
    if (check_key(symbol, tf, err) != AN_OK || check_query(*q, err) != AN_OK)
        return AN_ERR_INVALID;
    return AN_OK;
}

an_code an_store_get_ohlc(an_store *s, const char *symbol, const char *timeframe, const an_query *q,
                          an_candles *out, an_err *err)
{
    an_query all;
    if (check_read(symbol, timeframe, &q, &all, err) != AN_OK)
        return AN_ERR_INVALID;
    return s->ops->get_ohlc(s, "ohlc_data", symbol, timeframe, q, out, err);
}

an_code an_store_get_rollup(an_store *s, const char *symbol, const char *rollup, const an_query *q,
                            an_candles *out, an_err *err)
{
    an_query all = an_query_all();
    if (!q)
        q = &all;
    if (an_symbol_validate(symbol, err) != AN_OK)
        return AN_ERR_INVALID;
    const char *src;
    if (rollup && strcmp(rollup, "1h") == 0)
        src = "ohlc_1h";
    else if (rollup && strcmp(rollup, "1d") == 0)
        src = "ohlc_1d";
    else
        return an_err_set(err, AN_ERR_INVALID, "no rollup '%.16s': there are 1h and 1d",
                          rollup ? rollup : "(null)");
    if (check_query(q, err) != AN_OK)
        return AN_ERR_INVALID;
    return s->ops->get_ohlc(s, src, symbol, NULL, q, out, err);
}

/* The first multiple of b at or after v (b > 0), saturating. */
static int64_t align_up(int64_t v, int64_t b)
{
    int64_t r = v % b;
    if (r < 0)
        r += b;
    if (r == 0)
        return v;
    return v > INT64_MAX - (b - r) ? INT64_MAX : v + (b - r);
}

an_code an_store_get_ohlc_bucketed(an_store *s, const char *symbol, const char *src_tf,
                                   int64_t bucket_ms, const an_query *q, an_candles *out,
                                   an_err *err)
{
    an_query all;
    if (check_read(symbol, src_tf, &q, &all, err) != AN_OK)
        return AN_ERR_INVALID;
    int64_t tf_ms = an_timeframe_ms(src_tf, NULL);
    if (tf_ms <= 0 || bucket_ms <= 0 || bucket_ms % tf_ms != 0)
        return an_err_set(err, AN_ERR_INVALID,
                          "cannot bucket %s candles into %" PRId64 " ms: not a multiple", src_tf,
                          bucket_ms);
    /* a bucket opens in [start, end) exactly when its first candle does
     * after both bounds are moved up to the next bucket boundary */
    an_query aq = *q;
    if (aq.start_ms != INT64_MIN)
        aq.start_ms = align_up(aq.start_ms, bucket_ms);
    if (aq.end_ms != INT64_MAX)
        aq.end_ms = align_up(aq.end_ms, bucket_ms);
    if (!s->ops->get_bucketed)
        return an_err_set(err, AN_ERR_UNSUPPORTED, "bucketing is not available in this store");
    return s->ops->get_bucketed(s, symbol, src_tf, bucket_ms, &aq, out, err);
}

an_code an_store_get_latest_timestamp(an_store *s, const char *symbol, const char *timeframe,
                                      int64_t *ts, int *found, an_err *err)
{
    *found = 0;
    *ts = 0;
    if (check_key(symbol, timeframe, err) != AN_OK)
        return AN_ERR_INVALID;
    return s->ops->latest(s, symbol, timeframe, ts, found, err);
}

an_code an_store_get_first_timestamp(an_store *s, const char *symbol, const char *timeframe,
                                     int64_t *ts, int *found, an_err *err)
{
    *found = 0;
    *ts = 0;
    /* the oldest row by the key's order: an index walk on every backend */
    an_query q = an_query_all();
    q.limit = 1;
    an_candles c = {0};
    an_code rc = an_store_get_ohlc(s, symbol, timeframe, &q, &c, err);
    if (rc == AN_OK && c.n == 1) {
        *ts = c.v[0].ts;
        *found = 1;
    }
    an_candles_free(&c);
    return rc;
}

an_code an_store_refresh_rollups(an_store *s, int64_t from_ms, int64_t to_ms, an_err *err)
{
    return s->ops->refresh_rollups(s, from_ms, to_ms, err);
}

/* A backend's series list (list_series or list_indicator_series) as an
 * array; *out malloc'd, NULL when there are none. */
static an_code series_list(an_store *s, an_store_list_series_fn *op, const char *what,
                           an_series_info **out, size_t *n, an_err *err)
{
    an_store_rows rows = {&AN_SERIES_FIELDS, sizeof **out, what, NULL, 0};
    an_code rc = op(s, &rows, err);
    *out = rows.v;
    *n = rows.n;
    return rc;
}

an_code an_store_list_series(an_store *s, an_series_info **out, size_t *n, an_err *err)
{
    return series_list(s, s->ops->list_series, "list series", out, n, err);
}

void an_indicator_points_free(an_indicator_points *p)
{
    if (!p)
        return;
    free(p->v);
    p->v = NULL;
    p->n = p->cap = 0;
}

static int valid_name(const char *n)
{
    size_t len = n ? strlen(n) : 0;
    if (len == 0 || len >= AN_INDICATOR_NAME_MAX)
        return 0;
    for (const char *c = n; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '.'))
            return 0;
    return 1;
}

static an_code check_key(const char *symbol, const char *tf, an_err *err)
{
    if (an_symbol_validate(symbol, err) != AN_OK)
        return AN_ERR_INVALID;
    if (!an_timeframe_valid(tf))
        return an_err_set(err, AN_ERR_INVALID, "unknown timeframe '%.16s'", tf ? tf : "(null)");
    return AN_OK;
}

/* The series key, the names and every row of an indicator batch. */
static an_code check_batch(const char *symbol, const char *timeframe, const an_indicator_batch *b,
                           an_err *err)
{
    if (check_key(symbol, timeframe, err) != AN_OK)
        return AN_ERR_INVALID;
    for (int k = 0; k < b->n_names; k++)
        if (!valid_name(b->names[k]))
            return an_err_set(err, AN_ERR_INVALID,
                              "invalid indicator name '%.40s': lower-case letters, digits, _ "
                              "and . only",
                              b->names[k] ? b->names[k] : "(null)");
    for (size_t i = 0; i < b->n; i++) {
        if (b->name_idx[i] < 0 || b->name_idx[i] >= b->n_names)
            return an_err_set(err, AN_ERR_INVALID, "indicator row %zu: bad name index", i);
        if (!isfinite(b->value[i]))
            return an_err_set(err, AN_ERR_INVALID, "indicator row %zu (%s): value not finite", i,
                              b->names[b->name_idx[i]]);
    }
    return AN_OK;
}

an_code an_store_upsert_indicators(an_store *s, const char *symbol, const char *timeframe,
                                   const an_indicator_batch *b, an_upsert_counts *counts,
                                   an_err *err)
{
    an_upsert_counts dummy;
    if (!counts)
        counts = &dummy;
    memset(counts, 0, sizeof *counts);
    if (check_batch(symbol, timeframe, b, err) != AN_OK)
        return AN_ERR_INVALID;
    if (b->n == 0)
        return AN_OK;
    return s->ops->upsert_indicators(s, symbol, timeframe, b, counts, err);
}

an_code an_store_upsert_indicators_many(an_store *s, const an_series_indicators *v, size_t n,
                                        an_err *err)
{
    size_t rows = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_batch(v[i].symbol, v[i].timeframe, &v[i].b, err) != AN_OK)
            return an_err_prefix(err, "upsert_indicators_many refused the batch");
        rows += v[i].b.n;
    }
    if (rows == 0)
        return AN_OK;
    if (s->ops->upsert_indicators_many)
        return s->ops->upsert_indicators_many(s, v, n, err);
    an_upsert_counts counts;
    for (size_t i = 0; i < n; i++) {
        an_code rc = v[i].b.n ? s->ops->upsert_indicators(s, v[i].symbol, v[i].timeframe, &v[i].b,
                                                          &counts, err)
                              : AN_OK;
        if (rc != AN_OK)
            return rc;
    }
    return AN_OK;
}

an_code an_store_get_indicators(an_store *s, const char *symbol, const char *timeframe,
                                const char *name, const an_query *q, an_indicator_points *out,
                                an_err *err)
{
    an_query all;
    if (check_read(symbol, timeframe, &q, &all, err) != AN_OK)
        return AN_ERR_INVALID;
    if (name && !valid_name(name))
        return an_err_set(err, AN_ERR_INVALID, "invalid indicator name '%.40s'", name);
    return s->ops->get_indicators(s, symbol, timeframe, name, q, out, err);
}

an_code an_store_get_indicator_run(an_store *s, const char *symbol, const char *timeframe,
                                   an_indicator_run *run, int *found, an_err *err)
{
    *found = 0;
    memset(run, 0, sizeof *run);
    if (check_key(symbol, timeframe, err) != AN_OK)
        return AN_ERR_INVALID;
    return s->ops->get_run(s, symbol, timeframe, run, found, err);
}

an_code an_store_put_indicator_run(an_store *s, const char *symbol, const char *timeframe,
                                   const an_indicator_run *run, an_err *err)
{
    if (check_key(symbol, timeframe, err) != AN_OK)
        return AN_ERR_INVALID;
    return s->ops->put_run(s, symbol, timeframe, run, err);
}

an_code an_store_export_closes(an_store *s, const char *source, const char *symbol,
                               const char *timeframe, an_closes_cb cb, void *ctx, an_err *err)
{
    if (an_symbol_validate(symbol, err) != AN_OK)
        return AN_ERR_INVALID;
    int rollup = strcmp(source, "ohlc_1h") == 0 || strcmp(source, "ohlc_1d") == 0;
    if (!rollup && strcmp(source, "ohlc_data") != 0)
        return an_err_set(err, AN_ERR_INVALID, "no series source '%.20s'", source);
    if (!rollup && !an_timeframe_valid(timeframe))
        return an_err_set(err, AN_ERR_INVALID, "unknown timeframe '%.16s'",
                          timeframe ? timeframe : "(null)");
    return s->ops->export_closes(s, source, symbol, rollup ? NULL : timeframe, cb, ctx, err);
}

const char *an_store_pg_conninfo(const an_store *s)
{
    return s->ops->pg_conninfo ? s->ops->pg_conninfo(s) : NULL;
}

void an_store_release_idle(an_store *s)
{
    if (s->ops->release_idle)
        s->ops->release_idle(s);
}

/* ---- task runs, locks, moving data (schema v3) -------------------------- */

void an_task_row_free(an_task_row *r)
{
    if (!r)
        return;
    free(r->args);
    free(r->meta);
    free(r->result);
    r->args = r->meta = r->result = NULL;
}

static an_code check_task(const an_task_row *r, an_err *err)
{
    if (!r->id[0] || !r->name[0] || !r->state[0])
        return an_err_set(err, AN_ERR_INVALID, "task run needs an id, a name and a state");
    return AN_OK;
}

an_code an_store_task_claim(an_store *s, const an_task_row *r, int *inserted, an_err *err)
{
    int dummy;
    if (check_task(r, err) != AN_OK)
        return AN_ERR_INVALID;
    return s->ops->task_claim(s, r, inserted ? inserted : &dummy, err);
}

an_code an_store_task_put(an_store *s, const an_task_row *r, an_err *err)
{
    if (check_task(r, err) != AN_OK)
        return AN_ERR_INVALID;
    return s->ops->task_put(s, r, err);
}

an_code an_store_task_heartbeat(an_store *s, const char *id, int64_t now_ms, an_err *err)
{
    return s->ops->task_heartbeat(s, id, now_ms, err);
}

an_code an_store_task_get(an_store *s, const char *id, an_task_row *r, int *found, an_err *err)
{
    memset(r, 0, sizeof *r);
    *found = 0;
    return s->ops->task_get(s, id, r, found, err);
}

an_code an_store_task_list(an_store *s, const char *name, size_t limit, an_task_row **out,
                           size_t *n, an_err *err)
{
    *out = NULL;
    *n = 0;
    return s->ops->task_list(s, name, limit ? limit : 100, out, n, err);
}

an_code an_store_task_interrupt_stale(an_store *s, const char *instance, int64_t stale_before_ms,
                                      int64_t now_ms, int *n, an_err *err)
{
    int dummy;
    return s->ops->task_interrupt(s, instance, stale_before_ms, now_ms, n ? n : &dummy, err);
}

an_code an_store_task_delete(an_store *s, const char *id, an_err *err)
{
    return s->ops->task_delete(s, id, err);
}

an_code an_store_try_lock(an_store *s, int64_t key, int *got, an_err *err)
{
    *got = 1;
    return s->ops->try_lock ? s->ops->try_lock(s, key, got, err) : AN_OK;
}

an_code an_store_unlock(an_store *s, int64_t key, an_err *err)
{
    return s->ops->unlock ? s->ops->unlock(s, key, err) : AN_OK;
}

an_code an_store_list_indicator_series(an_store *s, an_series_info **out, size_t *n, an_err *err)
{
    return series_list(s, s->ops->list_indicator_series, "list indicator series", out, n, err);
}

an_code an_store_delete_range(an_store *s, const char *table, const char *symbol,
                              const char *timeframe, int64_t from_ms, int64_t to_ms, an_err *err)
{
    if (check_key(symbol, timeframe, err) != AN_OK)
        return AN_ERR_INVALID;
    if (strcmp(table, "ohlc_data") != 0 && strcmp(table, "indicators") != 0)
        return an_err_set(err, AN_ERR_INVALID, "cannot delete from '%.20s'", table);
    an_code rc = s->ops->delete_range(s, table, symbol, timeframe, from_ms, to_ms, err);
    if (rc == AN_OK && strcmp(table, "ohlc_data") == 0)
        an_store_changed(symbol, timeframe, from_ms, to_ms);
    return rc;
}

an_code an_store_put_opt_results(an_store *s, const char *run_json, const char *rows_json,
                                 an_err *err)
{
    if (!s || !run_json || !rows_json)
        return an_err_set(err, AN_ERR_INVALID, "put optimizer results: no store, run or rows");
    return s->ops->put_opt_results(s, run_json, rows_json, err);
}

an_code an_store_opt_run_spec(an_store *s, const char *run_id, char **json, an_err *err)
{
    *json = NULL;
    if (!s || !run_id || !*run_id)
        return an_err_set(err, AN_ERR_INVALID, "optimizer run: no store or run_id");
    return s->ops->opt_run_spec(s, run_id, json, err);
}

/* The optimizer queries always yield one JSON text: none after AN_OK means
 * its copy ran out of memory. */
static an_code json_or_nomem(an_code rc, char **json, const char *what, an_err *err)
{
    if (rc == AN_OK && !*json)
        return an_err_set(err, AN_ERR_NOMEM, "%s: out of memory", what);
    return rc;
}

an_code an_store_opt_runs(an_store *s, long limit, char **json, an_err *err)
{
    *json = NULL;
    if (!s || limit < 1)
        return an_err_set(err, AN_ERR_INVALID, "optimizer runs: no store or a limit < 1");
    return json_or_nomem(s->ops->opt_runs(s, limit, json, err), json, "optimizer runs", err);
}

an_code an_store_opt_results(an_store *s, const char *run_id, const char *symbol,
                             const char *sample, const char *sort, long limit, char **json,
                             an_err *err)
{
    *json = NULL;
    if (!s || limit < 1)
        return an_err_set(err, AN_ERR_INVALID, "optimizer results: no store or a limit < 1");
    /* the sort key goes into SQL text: only a known metric name */
    static const char *const keys[] = {"total_return",  "annual_return", "sharpe",   "sortino",
                                       "max_drawdown",  "trades",        "win_rate", "exposure",
                                       "profit_factor", "final_value"};
    int ok = 0;
    for (size_t i = 0; sort && i < sizeof keys / sizeof keys[0]; i++)
        ok |= strcmp(sort, keys[i]) == 0;
    if (!ok)
        return an_err_set(err, AN_ERR_INVALID, "optimizer results: unknown sort metric");
    an_code rc =
        s->ops->opt_results(s, run_id ? run_id : "", symbol ? symbol : "", sample ? sample : "",
                            sort, strcmp(sort, "max_drawdown") == 0, limit, json, err);
    return json_or_nomem(rc, json, "optimizer results", err);
}
