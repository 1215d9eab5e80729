/*
 * health.c - the health check (see health.h).
 */
#include "tasks/health.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double elapsed_ms(const struct timespec *a)
{
    struct timespec b;
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static json_t *iso(int64_t ms)
{
    char buf[40];
    return json_string(an_time_format(ms, buf, sizeof buf));
}

/* One symbol's freshness entry into syms (problems gets why it is not). */
static int symbol_fresh(an_store *store, const char *symbol, const char *tf, long max_age,
                        int64_t now_ms, json_t *syms, json_t *problems)
{
    an_err err = {0};
    json_t *o = json_object();
    int64_t ts = 0;
    int found = 0, ok = 0;
    json_object_set_new(o, "symbol", json_string(symbol));
    if (an_store_get_latest_timestamp(store, symbol, tf, &ts, &found, &err) != AN_OK) {
        json_object_set_new(o, "fresh", json_false());
        json_object_set_new(o, "error", json_string(err.msg));
        json_array_append_new(problems, json_string(err.msg));
    } else if (!found) {
        json_object_set_new(o, "fresh", json_false());
        json_object_set_new(o, "latest", json_null());
        char msg[128];
        snprintf(msg, sizeof msg, "no %s candles stored for %s", tf, symbol);
        json_array_append_new(problems, json_string(msg));
    } else {
        /* a candle is as fresh as its close time */
        int64_t tf_ms = an_timeframe_ms(tf, NULL);
        int64_t close_ms = ts + (tf_ms > 0 ? tf_ms : 0);
        int64_t age_s = (now_ms - close_ms) / 1000;
        if (age_s < 0)
            age_s = 0;
        ok = age_s <= max_age;
        if (!ok) {
            char msg[160], t[40];
            snprintf(msg, sizeof msg, "%s %s is stale: newest candle %s, %lld s old", symbol, tf,
                     an_time_format(ts, t, sizeof t), (long long)age_s);
            json_array_append_new(problems, json_string(msg));
        }
        json_object_set_new(o, "latest", iso(ts));
        json_object_set_new(o, "age_s", json_integer(age_s));
        json_object_set_new(o, "fresh", json_boolean(ok));
    }
    json_array_append_new(syms, o);
    return ok;
}

json_t *an_health_check(const an_config *cfg, an_store *store, const an_err *open_err,
                        int64_t now_ms, int *healthy)
{
    json_t *root = json_object(), *checks = json_object(), *problems = json_array();
    int ok_conn = 0, ok_schema = 0, ok_fresh = 0;
    an_err err = {0};
    json_object_set_new(root, "checked_at", iso(now_ms));
    json_t *st = json_object();
    if (store) {
        json_object_set_new(st, "mode", json_string(an_store_mode_name(an_store_get_mode(store))));
        json_object_set_new(st, "where", json_string(an_store_describe(store)));
    } else {
        json_object_set_new(st, "mode", json_null());
    }
    json_object_set_new(root, "store", st);

    /* connection */
    json_t *conn = json_object();
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!store) {
        json_object_set_new(conn, "error", json_string(open_err ? open_err->msg : "no store"));
        json_array_append_new(problems, json_string(open_err ? open_err->msg : "store not opened"));
    } else if (an_store_ping(store, &err) != AN_OK) {
        json_object_set_new(conn, "error", json_string(err.msg));
        json_array_append_new(problems, json_string(err.msg));
    } else {
        ok_conn = 1;
        json_object_set_new(conn, "latency_ms", json_real(round(elapsed_ms(&t0) * 1000) / 1000));
    }
    json_object_set_new(conn, "ok", json_boolean(ok_conn));
    json_object_set_new(checks, "connection", conn);

    /* schema */
    json_t *schema = json_object();
    int version = 0;
    if (ok_conn) {
        if (an_store_check_schema(store, &version, &err) == AN_OK) {
            ok_schema = 1;
        } else {
            json_object_set_new(schema, "error", json_string(err.msg));
            json_array_append_new(problems, json_string(err.msg));
        }
        json_object_set_new(schema, "version", json_integer(version));
    }
    json_object_set_new(schema, "expected_version", json_integer(an_store_schema_version()));
    json_object_set_new(schema, "ok", json_boolean(ok_schema));
    json_object_set_new(checks, "schema", schema);

    /* freshness */
    json_t *fresh = json_object(), *syms = json_array();
    long max_age = an_config_int(cfg, AN_CFG_FRESHNESS_MAX_AGE);
    const char *tf = an_config_get(cfg, AN_CFG_TIMEFRAME);
    json_object_set_new(fresh, "timeframe", json_string(tf));
    json_object_set_new(fresh, "max_age_s", json_integer(max_age));
    if (ok_schema) {
        char **list = NULL;
        size_t n = 0;
        if (an_config_symbols(cfg, &list, &n, &err) != AN_OK) {
            json_array_append_new(problems, json_string(err.msg));
        } else {
            ok_fresh = 1;
            for (size_t i = 0; i < n; i++)
                ok_fresh &= symbol_fresh(store, list[i], tf, max_age, now_ms, syms, problems);
            an_config_free_list(list, n);
        }
    }
    json_object_set_new(fresh, "symbols", syms);
    json_object_set_new(fresh, "ok", json_boolean(ok_fresh));
    json_object_set_new(checks, "freshness", fresh);

    *healthy = ok_conn && ok_schema && ok_fresh;
    json_object_set_new(root, "status", json_string(*healthy ? "healthy" : "unhealthy"));
    json_object_set_new(root, "checks", checks);
    json_object_set_new(root, "problems", problems);
    return root;
}
