/*
 * routes_tasks.c - the task routes (declared in openapi.json, listed in
 * routes.c's table):
 *   GET  /api/v1/tasks[?name=&limit=]   the newest runs first
 *   GET  /api/v1/tasks/{id}             one run
 *   POST /api/v1/tasks/NAME             a run queued for the workers (202): one
 *                                       route per task (its body schema)
 * A run's host:pid ("instance") is shown only to the API key's holder.
 * Called on the server's worker threads; the task runtime is the state.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analytics/indicators.h"
#include "api/api.h"
#include "api/params.h"
#include "tasks/tasks.h"

/* The task registry's names (tasks.h), for checks and messages. */
static int task_name_known(const char *name)
{
    return an_tasks_find(name) != NULL;
}

static int no_tasks(const an_api_request *rq, an_api_reply *rp)
{
    if (rq->tasks)
        return 0;
    an_api_error(rp, 503, NULL, "the task system is not running in this process");
    return 1;
}

/* The task runtime's answer as the reply: its error (v NULL: err, naming
 * param), or v, one run or (json array) a list of runs sent as {"tasks":
 * [...]}, each without its "instance" (host:pid) unless the caller holds
 * the key. Takes v. */
static void reply_runs(const an_api_request *rq, an_api_reply *rp, json_t *v, const char *param,
                       const an_err *err)
{
    if (!v) {
        an_api_error(rp, an_api_status_for(err->code), param, "%s", err->msg);
        return;
    }
    int list = json_is_array(v);
    rp->rows = list ? (int64_t)json_array_size(v) : 1;
    for (size_t i = 0; !rq->trusted && i < (size_t)rp->rows; i++)
        json_object_del(list ? json_array_get(v, i) : v, "instance");
    json_t *o = list ? json_pack("{s:o}", "tasks", v) : v;
    an_api_put_json(rp, o, JSON_COMPACT);
    json_decref(o);
}

/* GET /api/v1/tasks[?name=&limit=]: the newest runs first. */
void an_api_h_tasks(const an_api_request *rq, an_api_reply *rp)
{
    if (no_tasks(rq, rp))
        return;
    const char *name = an_api_param(rq, "name"), *lim = an_api_param(rq, "limit");
    long limit = 50;
    an_err err = {0};
    if (name && !task_name_known(name)) {
        an_api_error(rp, 400, "name", "unknown task '%.60s' (%s)", name, an_tasks_names());
        return;
    }
    if (lim && an_api_parse_limit(lim, 1000, &limit, &err) != AN_OK) {
        an_api_error(rp, 400, "limit", "%s", err.msg);
        return;
    }
    reply_runs(rq, rp, an_tasks_list(rq->tasks, name, (size_t)limit, &err), NULL, &err);
}

/* GET /api/v1/tasks/{id}: one run. */
void an_api_h_task(const an_api_request *rq, an_api_reply *rp)
{
    if (no_tasks(rq, rp))
        return;
    const char *id = rq->tail;
    size_t n = strlen(id);
    int ok = n > 0 && n < AN_TASK_ID_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
             (id[i] >= 'A' && id[i] <= 'Z') || id[i] == '-' || id[i] == '_';
    if (!ok) {
        an_api_error(rp, 400, "id", "'%.60s' is not a task run id", id);
        return;
    }
    an_err err = {0};
    reply_runs(rq, rp, an_tasks_get(rq->tasks, id, &err), "id", &err);
}

/* POST /api/v1/tasks/{name} with the task's arguments as a JSON body (an
 * object, or the seed's positional list; empty for none): queued for the
 * workers, 202 with the run's id. */
void an_api_h_task_submit(const an_api_request *rq, an_api_reply *rp)
{
    if (no_tasks(rq, rp))
        return;
    const char *name = rq->path + strlen("/api/v1/tasks/"); /* one route per task */
    if (!task_name_known(name)) {
        an_api_error(rp, 404, "name", "no task '%.60s' (%s)", name, an_tasks_names());
        return;
    }
    json_t *args = NULL;
    if (rq->body && rq->body_len > 0) {
        json_error_t je;
        args = json_loadb(rq->body, rq->body_len, 0, &je);
        if (!args) {
            an_api_error(rp, 400, "body", "the body is not JSON: %s (at byte %d)", je.text,
                         je.position);
            return;
        }
        if (!json_is_object(args) && !json_is_array(args)) {
            json_decref(args);
            an_api_error(rp, 400, "body",
                         "the body must be a JSON object of arguments or a list of symbols");
            return;
        }
    } else {
        args = json_object();
    }
    /* an indicator spec is checked here, so a bad one is a 400 naming it
     * rather than a queued run that fails */
    const char *spec = json_string_value(json_object_get(args, "indicators"));
    an_ind_set set;
    an_err perr = {0};
    if (spec && an_ind_set_parse(spec, &set, &perr) != AN_OK) {
        json_decref(args);
        an_api_error(rp, 400, "indicators", "%s", perr.msg);
        return;
    }
    char id[AN_TASK_ID_MAX] = "";
    an_err err = {0};
    an_code rc = an_tasks_submit(rq->tasks, name, args, id, &err);
    json_decref(args);
    if (rc != AN_OK) {
        an_api_error(rp, an_api_status_for(rc), NULL, "%s", err.msg);
        return;
    }
    char href[96];
    snprintf(href, sizeof href, "/api/v1/tasks/%s", id);
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s}", "id", id, "name", name, "state", "PENDING", "href", href);
    rp->status = 202;
    an_api_put_json(rp, o, JSON_COMPACT);
    json_decref(o);
}
