/*
 * admission.h - who gets a handler thread: heavy reads (a data route asking
 * for more than AUTONAMA_HTTP_HEAVY_LIMIT rows) are admitted at most
 * AUTONAMA_HTTP_HEAVY_MAX at a time, the others answered 503 with Retry-After
 * at once, so cheap requests never wait behind them; and the statement
 * deadline (AUTONAMA_HTTP_QUERY_TIMEOUT) each handler runs under.
 *
 * Threads: the event threads call an_admission_heavy and _enter (dispatch),
 * the handler workers _leave and _begin/_end around a handler; the counter is
 * atomic, the rest read-only after init.
 */
#ifndef AN_API_ADMISSION_H
#define AN_API_ADMISSION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "core/config.h"

typedef struct an_admission {
    atomic_int heavy; /* heavy requests admitted and not done */
    int heavy_max;
    long heavy_limit;
    int64_t timeout_ms; /* 0: no statement deadline */
} an_admission;

void an_admission_init(an_admission *a, const an_config *cfg);
/* 1 when a request of route rt with these arguments is heavy. */
int an_admission_heavy(const an_admission *a, const an_api_route *rt, const an_api_arg *args,
                       size_t n);
/* Takes a heavy slot (heavy 0: always admitted): 0 when every one is taken. */
int an_admission_enter(an_admission *a, int heavy);
void an_admission_leave(an_admission *a, int heavy);
/* Around a handler, on its thread: the statement deadline (store.h). */
void an_admission_begin(const an_admission *a);
void an_admission_end(void);

/* The reply to a heavy read refused: 503, Retry-After, a JSON error. */
void an_admission_refusal(const an_admission *a, an_api_reply *rp);

/* The Retry-After header of a 503 for a refused or timed-out request
 * (an_api_reply.headers). */
extern const char *const an_admission_retry_headers[];

#endif
