/*
 * args.c - the checks of a task run's arguments before it is queued
 * (an_tasks_check_args, the registry's check_args): every key a task does
 * not read is refused, and every value is checked as the body will read it
 * (symbols, timeframes, times, categories, the indicator set, the load
 * path), so bad input is a 400 naming the problem rather than a queued run
 * that fails. openapi.json's per-task body schemas say the same (issue 11:
 * schemathesis found schema-valid bodies refused and invalid ones queued).
 * Pure functions: any thread (the HTTP workers, the command line).
 */
#include <stdio.h>
#include <string.h>

#include "analytics/engine.h"
#include "core/indspec.h"
#include "core/list.h"
#include "source/provider.h"
#include "tasks/tasks_internal.h"

/* Each item of the comma-separated list v through ok (NULL: any item); at
 * least one item. */
static an_code check_list(const char *key, const char *v, int (*ok)(const char *), an_err *err)
{
    size_t n = 0, len;
    const char *at;
    for (const char *p = v; an_list_next(&p, &at, &len); n++) {
        char one[64];
        snprintf(one, sizeof one, "%.*s", (int)(len < sizeof one ? len : sizeof one - 1), at);
        if (ok && (len >= sizeof one || !ok(one)))
            return an_err_set(err, AN_ERR_INVALID, "argument '%s': '%.40s' is not valid", key, one);
    }
    if (n == 0)
        return an_err_set(err, AN_ERR_INVALID, "argument '%s' is an empty list", key);
    return AN_OK;
}

static int symbol_ok(const char *s)
{
    an_err e;
    return an_symbol_validate(s, &e) == AN_OK;
}

static an_code check_symbols(const char *key, json_t *v, an_err *err)
{
    if (json_is_string(v))
        return check_list(key, json_string_value(v), symbol_ok, err);
    if (!json_is_array(v) || json_array_size(v) == 0)
        return an_err_set(err, AN_ERR_INVALID,
                          "argument '%s' must be a non-empty list of symbols (BASE/QUOTE)", key);
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item)
    {
        const char *s = json_string_value(item);
        if (!s)
            return an_err_set(err, AN_ERR_INVALID, "argument '%s': item %zu is not a string", key,
                              i);
        if (an_symbol_validate(s, err) != AN_OK)
            return an_err_prefix(err, "argument '%s': item %zu", key, i);
    }
    return AN_OK;
}

an_code an_task_check_arg(const char *key, json_t *v, an_err *err)
{
    if (!strcmp(key, "force") || !strcmp(key, "progress"))
        return json_is_boolean(v)
                   ? AN_OK
                   : an_err_set(err, AN_ERR_INVALID, "argument '%s' must be true or false", key);
    if (!strcmp(key, "symbols"))
        return check_symbols(key, v, err);
    const char *s = json_string_value(v);
    if (!s)
        return an_err_set(err, AN_ERR_INVALID, "argument '%s' must be a string", key);
    int64_t ms;
    an_ind_set set;
    an_load_pref pref;
    if (!strcmp(key, "symbol"))
        return an_symbol_validate(s, err) == AN_OK ? AN_OK
                                                   : an_err_prefix(err, "argument 'symbol'");
    if (!strcmp(key, "timeframe"))
        return an_timeframe_valid(s)
                   ? AN_OK
                   : an_err_set(err, AN_ERR_INVALID,
                                "argument 'timeframe': unknown timeframe '%.16s'", s);
    if (!strcmp(key, "timeframes"))
        return check_list(key, s, an_timeframe_valid, err);
    if (!strcmp(key, "categories"))
        return check_list(key, s, an_provider_category_valid, err);
    if (!strcmp(key, "since") || !strcmp(key, "until"))
        return an_time_parse_arg(s, &ms, err) == AN_OK ? AN_OK
                                                       : an_err_prefix(err, "argument '%s'", key);
    if (!strcmp(key, "indicators"))
        return an_ind_set_parse(s, &set, err) == AN_OK
                   ? AN_OK
                   : an_err_prefix(err, "argument 'indicators'");
    if (!strcmp(key, "load_path"))
        return an_load_pref_parse(s, &pref, err);
    return AN_OK;
}

/* args: none, an object of the keys in keys, or (positional) a non-empty
 * array of symbols. */
static an_code check_shape(const char *task, json_t *args, const char *const *keys, int positional,
                           an_err *err)
{
    if (!args)
        return AN_OK;
    if (json_is_array(args)) {
        if (json_array_size(args) == 0)
            return AN_OK;
        if (!positional)
            return an_err_set(err, AN_ERR_INVALID, "%s takes no positional arguments", task);
        return check_symbols("symbols", args, err);
    }
    if (!json_is_object(args))
        return an_err_set(err, AN_ERR_INVALID,
                          "a task's arguments are a JSON object or an array of symbols");
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v)
    {
        int known = 0;
        char list[160] = "";
        for (const char *const *k = keys; *k; k++) {
            known |= strcmp(*k, key) == 0;
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", k == keys ? "" : ", ",
                     *k);
        }
        if (!known)
            return an_err_set(err, AN_ERR_INVALID, "%s: unknown argument '%.40s' (%s)", task, key,
                              keys[0] ? list : "it takes none");
        an_code rc = an_task_check_arg(key, v, err);
        if (rc != AN_OK)
            return rc;
    }
    if (json_is_true(json_object_get(args, "force")) && !json_object_get(args, "since"))
        return an_err_set(err, AN_ERR_INVALID, "%s: force needs since (the range to refetch)",
                          task);
    int64_t since, until;
    if (an_time_parse_arg(json_string_value(json_object_get(args, "since")), &since, NULL) ==
            AN_OK &&
        an_time_parse_arg(json_string_value(json_object_get(args, "until")), &until, NULL) ==
            AN_OK &&
        until <= since)
        return an_err_set(err, AN_ERR_INVALID, "%s: until must be after since", task);
    return AN_OK;
}

an_code an_task_ingest_check(json_t *args, an_err *err)
{
    static const char *const keys[] = {"symbols",    "symbol", "timeframe", "since", "until",
                                       "categories", "force",  "progress",  NULL};
    return check_shape("update_market_data", args, keys, 1, err);
}

an_code an_task_indicators_check(json_t *args, an_err *err)
{
    static const char *const keys[] = {"symbols",    "symbol",    "timeframes",
                                       "indicators", "load_path", NULL};
    return check_shape("calculate_indicators_for_symbol", args, keys, 1, err);
}

an_code an_task_health_check_args(json_t *args, an_err *err)
{
    static const char *const keys[] = {NULL};
    return check_shape("health_check", args, keys, 0, err);
}
