/*
 * fuzz_params.c - libFuzzer target: the parsers of request parameters and
 * other short outside strings: times (an_time_parse, the API's time and
 * limit), timeframes, symbols (validated and normalised), indicator names
 * and lists, indicator specs (--indicators / AUTONAMA_INDICATORS / task
 * bodies), load paths, import format names and the Authorization header.
 */
#include "analytics/engine.h"
#include "api/params.h"
#include "core/market.h"
#include "fuzz.h"
#include "source/import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fz_cstr(data, size);
    an_err err = {0};
    int64_t ms = 0;
    long lim = 0;
    if (an_time_parse(s, &ms, &err) == AN_OK) {
        char buf[64];
        an_time_format(ms, buf, sizeof buf);
    }
    an_api_parse_time(s, &ms, &err);
    an_api_parse_limit(s, 5000, &lim, &err);
    an_timeframe_valid(s);
    int monthly = 0;
    int64_t tfms = an_timeframe_ms(s, &monthly);
    if (tfms > 0) {
        an_timeframe_aligned(s, ms);
        int64_t fl = an_timeframe_floor(s, ms);
        an_timeframe_next(s, fl);
    }
    an_symbol_validate(s, &err);
    char sym[64];
    an_import_normalize_symbol(s, sym, sizeof sym, &err);
    an_api_indicator_name_valid(s);
    char names[16][AN_INDICATOR_NAME_MAX];
    int n = 0;
    an_api_parse_names(s, names, 16, &n, &err);
    an_ind_set set;
    an_ind_set_parse(s, &set, &err);
    an_load_pref lp;
    an_load_pref_parse(s, &lp, &err);
    an_import_format fmt;
    an_import_format_parse(s, &fmt, &err);
    an_api_bearer_ok(s, "k3y-0123456789");
    free(s);
    return 0;
}
