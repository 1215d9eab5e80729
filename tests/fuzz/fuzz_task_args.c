/*
 * fuzz_task_args.c - libFuzzer target: task arguments as they come in a
 * POST /api/v1/tasks/{name} body (JSON, any shape) through every task's
 * check (an_tasks_check_args, which runs before a run is created), and the
 * JSON string writer that echoes outside bytes in error bodies
 * (an_api_put_jstr): its output must read back as JSON, one string, valid
 * UTF-8, whatever the input bytes.
 */
#include <jansson.h>

#include "api/api.h"
#include "core/utf8.h"
#include "fuzz.h"
#include "tasks/tasks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t je;
    json_t *args = json_loadb((const char *)data, size, 0, &je);
    for (size_t i = 0; args && an_tasks_registry(i); i++) {
        an_err err = {0};
        if (an_tasks_check_args(an_tasks_registry(i)->name, args, &err) != AN_OK &&
            (!err.msg[0] || !an_utf8_valid(err.msg, strlen(err.msg))))
            abort(); /* a refusal names its problem, in valid UTF-8 */
    }
    json_decref(args);

    char *s = fz_cstr(data, size);
    an_api_reply rp = {0};
    an_api_put_jstr(&rp, s);
    if (!rp.oom) {
        json_t *back = json_loadb(rp.body, rp.len, JSON_DECODE_ANY, &je);
        if (!back || !json_is_string(back) || !an_utf8_valid(rp.body, rp.len))
            abort(); /* not one valid JSON string */
        json_decref(back);
    }
    free(rp.body);
    free(s);
    return 0;
}
