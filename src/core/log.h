/*
 * log.h - one logfmt line per event on stderr:
 *   ts=2026-11-24T06:00:00Z level=info component=ingest msg="stored" symbol=BTC/USDT rows=1000
 * The macros check the level before they evaluate their arguments. Thread-safe
 * (each line is written with one fputs under a lock). Never log secrets: pass
 * connection strings through an_log_redact first.
 */
#ifndef AN_CORE_LOG_H
#define AN_CORE_LOG_H

#include <stddef.h>

typedef enum an_log_level {
    AN_LOG_DEBUG = 0,
    AN_LOG_INFO,
    AN_LOG_WARN,
    AN_LOG_ERROR,
    AN_LOG_OFF
} an_log_level;

extern an_log_level an_log_min_level;

/* Parses "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int an_log_level_parse(const char *s);
void an_log_set_level(an_log_level lvl);

/* component: short subsystem name; fmt: the rest of the line as key=value pairs,
 * conventionally starting with msg="...". */
void an_log_write(an_log_level lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define AN_LOG(lvl, comp, ...)                                                                     \
    do {                                                                                           \
        if ((lvl) >= an_log_min_level)                                                             \
            an_log_write((lvl), (comp), __VA_ARGS__);                                              \
    } while (0)
#define AN_DEBUG(comp, ...) AN_LOG(AN_LOG_DEBUG, comp, __VA_ARGS__)
#define AN_INFO(comp, ...) AN_LOG(AN_LOG_INFO, comp, __VA_ARGS__)
#define AN_WARN(comp, ...) AN_LOG(AN_LOG_WARN, comp, __VA_ARGS__)
#define AN_ERROR(comp, ...) AN_LOG(AN_LOG_ERROR, comp, __VA_ARGS__)

/* Copies s into out, replacing the value of any password=... (key/value form)
 * or the password of a postgresql://user:pass@host URI with "***". */
char *an_log_redact(const char *s, char *out, size_t len);

/* Escapes s for use inside a quoted logfmt value (quotes, backslashes,
 * newlines) into out; returns out. */
char *an_log_quote(const char *s, char *out, size_t len);

#endif
