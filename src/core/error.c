/*
 * error.c - codes, their names and the message helpers (see error.h).
 */
#include "core/error.h"

#include "core/utf8.h"

#include <stdio.h>
#include <string.h>

const char *an_code_str(an_code code)
{
    switch (code) {
    case AN_OK: return "ok";
    case AN_ERR_INVALID: return "invalid";
    case AN_ERR_NOMEM: return "nomem";
    case AN_ERR_IO: return "io";
    case AN_ERR_CONNECT: return "connect";
    case AN_ERR_AUTH: return "auth";
    case AN_ERR_SCHEMA: return "schema";
    case AN_ERR_DB: return "db";
    case AN_ERR_PARSE: return "parse";
    case AN_ERR_NOT_FOUND: return "not_found";
    case AN_ERR_UNSUPPORTED: return "unsupported";
    case AN_ERR_READONLY: return "readonly";
    case AN_ERR_CORRUPT: return "corrupt";
    case AN_ERR_TIMEOUT: return "timeout";
    case AN_ERR_UNHEALTHY: return "unhealthy";
    case AN_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

int an_code_exit_status(an_code code)
{
    if (code == AN_OK)
        return 0;
    if (code == AN_ERR_INVALID)
        return 2;
    return 1;
}

an_code an_err_vset(an_err *e, an_code code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        an_utf8_fix(e->msg, sizeof e->msg); /* quoted input may be cut mid-character */
    }
    return code;
}

an_code an_err_set(an_err *e, an_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    an_err_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

an_code an_err_prefix(an_err *e, const char *fmt, ...)
{
    if (!e)
        return AN_ERR_INTERNAL;
    char pre[AN_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    char old[AN_ERR_MSG_MAX];
    memcpy(old, e->msg, sizeof old);
    size_t n = strnlen(pre, sizeof pre - 3);
    memcpy(e->msg, pre, n);
    e->msg[n++] = ':';
    e->msg[n++] = ' ';
    size_t rest = strnlen(old, sizeof e->msg - n - 1);
    memcpy(e->msg + n, old, rest);
    e->msg[n + rest] = '\0';
    an_utf8_fix(e->msg, sizeof e->msg);
    return e->code;
}

void an_err_clear(an_err *e)
{
    if (e) {
        e->code = AN_OK;
        e->msg[0] = '\0';
    }
}
