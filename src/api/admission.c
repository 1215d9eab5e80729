/*
 * admission.c - heavy-request admission and the per-request statement
 * deadline (admission.h; issue 11, fault 3: twelve bucketed reads of 5,000
 * rows held every handler thread and a cheap request waited 18.5 s).
 *
 * Threads: see admission.h.
 */
#include "api/admission.h"

#include <stdlib.h>
#include <string.h>

#include "store/store.h"

const char *const an_admission_retry_headers[] = {"Retry-After", "1", NULL};

void an_admission_init(an_admission *a, const an_config *cfg)
{
    atomic_init(&a->heavy, 0);
    a->heavy_max = (int)an_config_int(cfg, AN_CFG_HTTP_HEAVY_MAX);
    a->heavy_limit = an_config_int(cfg, AN_CFG_HTTP_HEAVY_LIMIT);
    a->timeout_ms = an_config_int(cfg, AN_CFG_HTTP_QUERY_TIMEOUT);
}

int an_admission_heavy(const an_admission *a, const an_api_route *rt, const an_api_arg *args,
                       size_t n)
{
    if (strncmp(rt->path, "/api/v1/data/", 13) != 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(args[i].key, "limit") == 0)
            return strtol(args[i].value, NULL, 10) > a->heavy_limit;
    return 0;
}

int an_admission_enter(an_admission *a, int heavy)
{
    if (!heavy)
        return 1;
    if (atomic_fetch_add(&a->heavy, 1) < a->heavy_max)
        return 1;
    atomic_fetch_sub(&a->heavy, 1);
    return 0;
}

void an_admission_leave(an_admission *a, int heavy)
{
    if (heavy)
        atomic_fetch_sub(&a->heavy, 1);
}

void an_admission_refusal(const an_admission *a, an_api_reply *rp)
{
    an_api_error(rp, 503, NULL, "too many heavy reads at once (AUTONAMA_HTTP_HEAVY_MAX=%d): %s",
                 a->heavy_max, "retry later, or ask for fewer rows");
    rp->headers = an_admission_retry_headers;
}

void an_admission_begin(const an_admission *a)
{
    an_store_set_deadline(a->timeout_ms > 0 ? an_store_mono_ms() + a->timeout_ms : 0);
}

void an_admission_end(void)
{
    an_store_set_deadline(0);
}
