/*
 * error.h - the one error convention of autonama.
 *
 * Every fallible function returns an an_code and, when it fails, fills the
 * caller's an_err with the code and a human-readable message that names the
 * problem (the SQLSTATE text, the DuckDB error, the curl error, the row and
 * field of bad input). The caller owns the an_err; it is plain data, nothing
 * to free. Thread-safe: no globals.
 *
 * The NULL rule: every function that takes an `an_err *err` accepts NULL
 * (the caller does not want the message) and reports failure through the
 * an_code it returns. So a function handed an err never reads err->code or
 * err->msg: it branches on the returned codes of what it called. Only the
 * owner of an an_err (the function that declared it, or a reporter it hands
 * its own &e to) reads it, after a call returned a failure. A function that
 * needs the code or message of a callee's failure that no return value
 * carries (a callee returning a pointer) points err at a local an_err first
 * when its own err is NULL, and reads that.
 */
#ifndef AN_CORE_ERROR_H
#define AN_CORE_ERROR_H

#include <stdarg.h>

typedef enum an_code {
    AN_OK = 0,
    AN_ERR_INVALID,     /* bad input: argument, request, config value, file row */
    AN_ERR_NOMEM,       /* allocation failed or a capped buffer is full */
    AN_ERR_IO,          /* file or socket I/O */
    AN_ERR_CONNECT,     /* database or server unreachable */
    AN_ERR_AUTH,        /* authentication refused */
    AN_ERR_SCHEMA,      /* schema missing or at the wrong version */
    AN_ERR_DB,          /* a database statement failed */
    AN_ERR_PARSE,       /* malformed file or reply */
    AN_ERR_NOT_FOUND,   /* no such symbol, file, task */
    AN_ERR_UNSUPPORTED, /* not available in this mode */
    AN_ERR_READONLY,    /* target is read-only */
    AN_ERR_CORRUPT,     /* a file is not what it claims to be */
    AN_ERR_TIMEOUT,     /* an operation ran out of time */
    AN_ERR_UNHEALTHY,   /* a health check failed */
    AN_ERR_INTERNAL     /* a bug: should not happen */
} an_code;

#define AN_ERR_MSG_MAX 512

typedef struct an_err {
    an_code code;
    char msg[AN_ERR_MSG_MAX];
} an_err;

/* Short stable name of a code, e.g. "invalid", "connect". Never NULL. */
const char *an_code_str(an_code code);

/* Process exit status for a code (0 for AN_OK, 2 for invalid input/config, 1 otherwise). */
int an_code_exit_status(an_code code);

/* Fills e (may be NULL) with code and a printf-style message; returns code. */
an_code an_err_set(an_err *e, an_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
an_code an_err_vset(an_err *e, an_code code, const char *fmt, va_list ap);

/* Prefixes e->msg (e may be NULL) with "prefix: " (context on the way up);
 * returns e->code, or AN_ERR_INTERNAL when e is NULL. */
an_code an_err_prefix(an_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Resets e to AN_OK with an empty message. */
void an_err_clear(an_err *e);

#endif
