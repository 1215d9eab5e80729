/*
 * log.c - logfmt lines on stderr (see log.h).
 */
#include "core/log.h"

#include "core/utf8.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

an_log_level an_log_min_level = AN_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

int an_log_level_parse(const char *s)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

void an_log_set_level(an_log_level lvl)
{
    an_log_min_level = lvl;
}

void an_log_write(an_log_level lvl, const char *component, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    char line[4096];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s component=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, names[lvl], component);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = strnlen(line, sizeof line - 2);
    line[len] = '\n';
    line[len + 1] = '\0';
    pthread_mutex_lock(&log_lock);
    fputs(line, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

char *an_log_redact(const char *s, char *out, size_t len)
{
    if (!len)
        return out;
    size_t o = 0;
    const char *p = s ? s : "";
    while (*p && o + 1 < len) {
        if (strncmp(p, "password=", 9) == 0 && (p == s || p[-1] == ' ')) {
            const char *rep = "password=***";
            for (const char *r = rep; *r && o + 1 < len; r++)
                out[o++] = *r;
            p += 9;
            if (*p == '\'') {
                p++;
                while (*p && *p != '\'')
                    p += (*p == '\\' && p[1]) ? 2 : 1;
                if (*p)
                    p++;
            } else {
                while (*p && *p != ' ')
                    p++;
            }
            continue;
        }
        if (strncmp(p, "://", 3) == 0) {
            const char *at = strchr(p + 3, '@');
            const char *colon = strchr(p + 3, ':');
            const char *slash = strchr(p + 3, '/');
            if (at && colon && colon < at && (!slash || at < slash)) {
                for (const char *r = p; r <= colon && o + 1 < len; r++)
                    out[o++] = *r;
                for (const char *r = "***"; *r && o + 1 < len; r++)
                    out[o++] = *r;
                p = at;
                continue;
            }
        }
        out[o++] = *p++;
    }
    out[o] = '\0';
    an_utf8_fix(out, len); /* cut mid-character, or invalid bytes from outside */
    return out;
}

char *an_log_quote(const char *s, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = s ? s : ""; *p && o + 2 < len; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = *p;
        } else if (*p == '\n' || *p == '\r') {
            out[o++] = ' ';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    an_utf8_fix(out, len); /* cut mid-character, or invalid bytes from outside */
    return out;
}
