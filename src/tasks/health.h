/*
 * health.h - the health check: connection, schema, data freshness per symbol
 * (the seed's maintenance health checks). Used by `autonama health`, by
 * GET /health, and (later) as a scheduled task. Thread-safe: it only reads.
 */
#ifndef AN_TASKS_HEALTH_H
#define AN_TASKS_HEALTH_H

#include <jansson.h>
#include <stdint.h>

#include "core/config.h"
#include "store/store.h"

/* Runs the check against store (NULL when it could not be opened; open_err
 * then says why). Returns a new JSON object (the caller decrefs):
 *   {"status": "healthy"|"unhealthy", "checked_at": ..., "store": {...},
 *    "checks": {"connection": {...}, "schema": {...}, "freshness": {...}},
 *    "problems": ["..."]}
 * *healthy is 1 only when every check passed. now_ms is the clock to judge
 * freshness by (an_now_ms() outside tests). */
json_t *an_health_check(const an_config *cfg, an_store *store, const an_err *open_err,
                        int64_t now_ms, int *healthy);

/* How the report is printed (GET /health, `autonama health`): its reals are
 * times (latency_ms in microsecond steps, the stream's lags), so 15
 * significant digits print them as written ("1.129", not jansson's default
 * 17-digit "1.1289999999999999") and lose nothing they carry. */
#define AN_HEALTH_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

#endif
