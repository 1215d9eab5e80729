/*
 * config.c - the configuration's loader (see config.h) over the table of
 * config_table.c: each value is validated and converted once, at load, into
 * the an_config's typed fields. Called by main.c's thread before any other
 * thread starts; the an_config is read-only afterwards.
 */
#include "core/config.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/list.h"
#include "core/log.h"
#include "core/market.h"

/* ---- parsing one value ----------------------------------------------------- */

/* Where a value came from, for messages: "environment variable X" or "flag --x". */
typedef struct origin {
    char text[80];
} origin;

/* 1 when v[0..n) is one of choices ("a|b|c"). */
static int is_choice(const char *choices, const char *v, size_t n)
{
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t cn = bar ? (size_t)(bar - p) : strlen(p);
        if (cn == n && strncmp(p, v, n) == 0)
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static an_code parse_int(const an_cfg_def *d, const char *v, const char *shown, const origin *o,
                         long *num, an_err *err)
{
    errno = 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < d->min || x > d->max)
        return an_err_set(err, AN_ERR_INVALID, "%s: %s must be an integer in [%ld, %ld]", o->text,
                          shown, d->min, d->max);
    *num = x;
    return AN_OK;
}

/* Each item of a list setting, checked by type; at least one item. */
static an_code parse_list(const an_cfg_def *d, const char *v, const origin *o, an_err *err)
{
    int count = 0;
    size_t n;
    const char *it;
    for (const char *p = v; an_list_next(&p, &it, &n); count++) {
        char one[128];
        snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one ? n : sizeof one - 1), it);
        if (d->type == T_TIMEFRAMES && !an_timeframe_valid(one))
            return an_err_set(err, AN_ERR_INVALID, "%s: '%.16s' is not a timeframe", o->text, one);
        if (d->type == T_ENUMLIST && !is_choice(d->choices, it, n))
            return an_err_set(err, AN_ERR_INVALID, "%s: '%.40s' is not one of %s", o->text, one,
                              d->choices);
        if (d->type == T_SYMBOLS && (n >= sizeof one || an_symbol_validate(one, err) != AN_OK)) {
            if (n >= sizeof one)
                an_err_set(err, AN_ERR_INVALID, "symbol '%.40s...' is too long", one);
            return an_err_prefix(err, "%s", o->text);
        }
    }
    if (count)
        return AN_OK;
    if (d->type == T_ENUMLIST)
        return an_err_set(err, AN_ERR_INVALID, "%s: nothing given (one or more of %s)", o->text,
                          d->choices);
    return an_err_set(err, AN_ERR_INVALID, "%s: no %s given", o->text,
                      d->type == T_SYMBOLS ? "symbols" : "timeframes");
}

static an_code parse_addr(const char *v, const char *shown, const origin *o, an_err *err)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return an_err_set(err, AN_ERR_INVALID, "%s: %s must be host:port", o->text, shown);
    errno = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || port < 0 || port > 65535)
        return an_err_set(err, AN_ERR_INVALID, "%s: %s has a bad port (0..65535)", o->text, shown);
    return AN_OK;
}

/* Validates v for d and converts it into cfg's typed field for key. */
static an_code parse_value(an_config *cfg, an_cfg_key key, const char *v, const origin *o,
                           an_err *err)
{
    const an_cfg_def *d = &an_cfg_table[key];
    char shown[80];
    if (d->type == T_SECRET)
        snprintf(shown, sizeof shown, "(hidden)");
    else
        snprintf(shown, sizeof shown, "'%.60s'", v);
    switch (d->type) {
    case T_INT: return parse_int(d, v, shown, o, &cfg->num[key], err);
    case T_ENUM:
        if (!is_choice(d->choices, v, strlen(v)))
            return an_err_set(err, AN_ERR_INVALID, "%s: %s is not one of %s", o->text, shown,
                              d->choices);
        return AN_OK;
    case T_TIMEFRAME:
        if (!an_timeframe_valid(v))
            return an_err_set(err, AN_ERR_INVALID,
                              "%s: %s is not a timeframe (1s, 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, "
                              "6h, 8h, 12h, 1d, 3d, 1w, 1M)",
                              o->text, shown);
        return AN_OK;
    case T_TIMEFRAMES:
    case T_ENUMLIST:
    case T_SYMBOLS: return parse_list(d, v, o, err);
    case T_INDICATORS:
        if (an_ind_set_parse(v, &cfg->indicators, err) != AN_OK)
            return an_err_prefix(err, "%s", o->text);
        return AN_OK;
    case T_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "1") && strcmp(v, "0"))
            return an_err_set(err, AN_ERR_INVALID, "%s: %s must be true or false", o->text, shown);
        cfg->num[key] = strcmp(v, "true") == 0 || strcmp(v, "1") == 0;
        return AN_OK;
    case T_LEVEL:
        if ((cfg->num[key] = an_log_level_parse(v)) < 0)
            return an_err_set(err, AN_ERR_INVALID,
                              "%s: %s is not a log level (debug, info, warn, error, off)", o->text,
                              shown);
        return AN_OK;
    case T_ADDR: return parse_addr(v, shown, o, err);
    case T_STR:
    case T_SECRET:
        if (strlen(v) > 4096)
            return an_err_set(err, AN_ERR_INVALID, "%s: value too long", o->text);
        return AN_OK;
    }
    return AN_OK;
}

static an_code set_val(an_config *cfg, an_cfg_key key, const char *v, an_cfg_origin from,
                       an_err *err)
{
    const an_cfg_def *d = &an_cfg_table[key];
    origin o;
    if (from == AN_CFG_ORIGIN_ENV)
        snprintf(o.text, sizeof o.text, "environment variable %s", d->env);
    else if (from == AN_CFG_ORIGIN_FLAG)
        snprintf(o.text, sizeof o.text, "flag --%s", d->flag);
    else
        snprintf(o.text, sizeof o.text, "the default of %s", d->env ? d->env : d->flag);
    if (parse_value(cfg, key, v, &o, err) != AN_OK)
        return AN_ERR_INVALID;
    char *copy = strdup(v);
    if (!copy)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    free(cfg->val[key]);
    cfg->val[key] = copy;
    cfg->from[key] = from;
    return AN_OK;
}

/* ---- loading ----------------------------------------------------------------- */

/* The table entry of flag name[0..nlen), or -1. */
static int flag_key(const char *name, size_t nlen)
{
    for (int k = 0; k < AN_CFG__COUNT; k++)
        if (an_cfg_table[k].flag && strlen(an_cfg_table[k].flag) == nlen &&
            strncmp(an_cfg_table[k].flag, name, nlen) == 0)
            return k;
    return -1;
}

/* argv: flags (--name value, --name=value, a bare boolean) and positional
 * arguments (everything after "--" is positional). */
static an_code load_flags(an_config *cfg, int argc, char **argv, an_err *err)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (i++; i < argc; i++)
                cfg->args[cfg->nargs++] = argv[i];
            break;
        }
        if (strncmp(a, "--", 2) != 0) {
            cfg->args[cfg->nargs++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        int k = flag_key(name, nlen);
        if (k < 0)
            return an_err_set(err, AN_ERR_INVALID, "unknown flag --%.*s (see autonama --help)",
                              (int)(nlen > 40 ? 40 : nlen), name);
        const char *v = eq ? eq + 1 : NULL;
        if (!v && an_cfg_table[k].type == T_BOOL)
            v = "true"; /* a bare boolean flag */
        if (!v) {
            if (i + 1 >= argc)
                return an_err_set(err, AN_ERR_INVALID, "flag --%s needs a value",
                                  an_cfg_table[k].flag);
            v = argv[++i];
        }
        if (set_val(cfg, (an_cfg_key)k, v, AN_CFG_ORIGIN_FLAG, err) != AN_OK)
            return AN_ERR_INVALID;
    }
    return AN_OK;
}

an_code an_config_load(an_config *cfg, int argc, char **argv, an_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->args = calloc((size_t)argc + 1, sizeof *cfg->args);
    if (!cfg->args)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        assert(an_cfg_table[i].help); /* every key has its entry */
        an_code drc = an_cfg_table[i].def ? set_val(cfg, (an_cfg_key)i, an_cfg_table[i].def,
                                                    AN_CFG_ORIGIN_DEFAULT, err)
                                          : AN_OK;
        if (drc != AN_OK)
            return drc;
    }
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        const char *v = an_cfg_table[i].env ? getenv(an_cfg_table[i].env) : NULL;
        if (v && *v && set_val(cfg, (an_cfg_key)i, v, AN_CFG_ORIGIN_ENV, err) != AN_OK)
            return AN_ERR_INVALID;
    }
    return load_flags(cfg, argc, argv, err);
}

void an_config_free(an_config *cfg)
{
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        if (cfg->val[i]) {
            if (an_cfg_table[i].type == T_SECRET)
                memset(cfg->val[i], 0, strlen(cfg->val[i]));
            free(cfg->val[i]);
        }
        cfg->val[i] = NULL;
    }
    free(cfg->args);
    cfg->args = NULL;
    cfg->nargs = 0;
}

/* ---- accessors ------------------------------------------------------------- */

const char *an_config_get(const an_config *cfg, an_cfg_key key)
{
    return cfg->val[key];
}

long an_config_int(const an_config *cfg, an_cfg_key key)
{
    assert(an_cfg_table[key].type == T_INT || an_cfg_table[key].type == T_BOOL ||
           an_cfg_table[key].type == T_LEVEL);
    return cfg->val[key] ? cfg->num[key] : 0;
}

int an_config_is_set(const an_config *cfg, an_cfg_key key)
{
    return cfg->from[key] != AN_CFG_ORIGIN_DEFAULT;
}

an_cfg_origin an_config_origin(const an_config *cfg, an_cfg_key key)
{
    return cfg->from[key];
}

int an_config_bool(const an_config *cfg, an_cfg_key key)
{
    assert(an_cfg_table[key].type == T_BOOL);
    return cfg->val[key] && cfg->num[key];
}

const an_ind_set *an_config_indicators(const an_config *cfg)
{
    return &cfg->indicators;
}

int an_config_has_postgres(const an_config *cfg)
{
    const char *s = cfg->val[AN_CFG_POSTGRES_SERVER];
    return s && *s;
}

/* Appends key='value' with libpq quoting (backslash before ' and \). */
static void append_kv(char *buf, size_t len, const char *key, const char *val)
{
    size_t o = strlen(buf);
    int w = snprintf(buf + o, len - o, "%s%s='", o ? " " : "", key);
    if (w < 0)
        return;
    o += (size_t)w;
    for (const char *p = val; *p && o + 3 < len; p++) {
        if (*p == '\'' || *p == '\\')
            buf[o++] = '\\';
        buf[o++] = *p;
    }
    if (o + 1 < len)
        buf[o++] = '\'';
    buf[o] = '\0';
}

char *an_config_pg_conninfo(const an_config *cfg)
{
    size_t len = 64;
    for (int k = AN_CFG_POSTGRES_SERVER; k <= AN_CFG_POSTGRES_SSLMODE; k++)
        len += 16 + 2 * (cfg->val[k] ? strlen(cfg->val[k]) : 0);
    char *buf = calloc(1, len);
    if (!buf)
        return NULL;
    append_kv(buf, len, "host",
              cfg->val[AN_CFG_POSTGRES_SERVER] ? cfg->val[AN_CFG_POSTGRES_SERVER] : "localhost");
    append_kv(buf, len, "port", cfg->val[AN_CFG_POSTGRES_PORT]);
    append_kv(buf, len, "user", cfg->val[AN_CFG_POSTGRES_USER]);
    if (cfg->val[AN_CFG_POSTGRES_PASSWORD])
        append_kv(buf, len, "password", cfg->val[AN_CFG_POSTGRES_PASSWORD]);
    append_kv(buf, len, "dbname", cfg->val[AN_CFG_POSTGRES_DB]);
    append_kv(buf, len, "sslmode", cfg->val[AN_CFG_POSTGRES_SSLMODE]);
    return buf;
}

/* A list setting's items (the one tokenizer, list.h); symbols are
 * validated (the text may be a task's argument, not a loaded value). */
static an_code split_list(const char *v, int symbols, char ***out, size_t *n, an_err *err)
{
    an_code rc = an_list_split(v, out, n, err);
    if (rc != AN_OK)
        return rc;
    for (size_t i = 0; symbols && i < *n; i++) {
        if (an_symbol_validate((*out)[i], err) != AN_OK) {
            an_list_free(*out, *n);
            *out = NULL;
            *n = 0;
            return AN_ERR_INVALID;
        }
    }
    return AN_OK;
}

an_code an_config_symbols(const an_config *cfg, char ***out, size_t *n, an_err *err)
{
    return split_list(cfg->val[AN_CFG_SYMBOLS], 1, out, n, err);
}

an_code an_config_categories(const an_config *cfg, char ***out, size_t *n, an_err *err)
{
    return split_list(cfg->val[AN_CFG_CATEGORIES], 0, out, n, err);
}

an_code an_config_list(const an_config *cfg, an_cfg_key key, char ***out, size_t *n, an_err *err)
{
    *out = NULL;
    *n = 0;
    if (key < 0 || key >= AN_CFG__COUNT || !cfg->val[key])
        return AN_OK;
    return split_list(cfg->val[key], an_cfg_table[key].type == T_SYMBOLS, out, n, err);
}

an_code an_config_category(const an_config *cfg, const char *category, an_category_config *out,
                           an_err *err)
{
    static const struct {
        const char *name, *env;
        an_cfg_key provider, source, symbols;
    } cats[] = {
        {"crypto", "CRYPTO", AN_CFG_CRYPTO_PROVIDER, AN_CFG_CRYPTO_SOURCE, AN_CFG_SYMBOLS},
        {"forex", "FOREX", AN_CFG_FOREX_PROVIDER, AN_CFG_FOREX_SOURCE, AN_CFG_FOREX_SYMBOLS},
        {"stock", "STOCK", AN_CFG_STOCK_PROVIDER, AN_CFG_STOCK_SOURCE, AN_CFG_STOCK_SYMBOLS},
        {"commodity", "COMMODITY", AN_CFG_COMMODITY_PROVIDER, AN_CFG_COMMODITY_SOURCE,
         AN_CFG_COMMODITY_SYMBOLS},
    };
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < sizeof cats / sizeof *cats; i++) {
        if (strcmp(cats[i].name, category) != 0)
            continue;
        out->provider = cfg->val[cats[i].provider];
        out->source = cfg->val[cats[i].source];
        if (!out->source && out->provider && strcmp(out->provider, "binance") == 0)
            out->source = cfg->val[AN_CFG_BINANCE_BASE_URL];
        if (!out->provider || !*out->provider)
            return an_err_set(err, AN_ERR_INVALID,
                              "category %s has no provider: set AUTONAMA_%s_PROVIDER (e.g. files) "
                              "and AUTONAMA_%s_SOURCE",
                              category, cats[i].env, cats[i].env);
        const char *syms = cfg->from[AN_CFG_SYMBOLS] == AN_CFG_ORIGIN_FLAG
                               ? cfg->val[AN_CFG_SYMBOLS]
                               : cfg->val[cats[i].symbols];
        if (!syms || !*syms)
            return an_err_set(err, AN_ERR_INVALID,
                              "category %s has no symbols: set AUTONAMA_%s_SYMBOLS or --symbols",
                              category, cats[i].env);
        return split_list(syms, 1, &out->symbols, &out->n_symbols, err);
    }
    return an_err_set(err, AN_ERR_INVALID,
                      "unknown category '%.40s' (crypto, forex, stock, commodity)", category);
}

void an_config_free_list(char **list, size_t n)
{
    an_list_free(list, n);
}

void an_config_print_help(void *file)
{
    FILE *f = file;
    fprintf(f, "Settings (flags override environment variables, which override defaults):\n");
    for (int i = 0; i < AN_CFG__COUNT; i++) {
        const an_cfg_def *d = &an_cfg_table[i];
        char flag[48] = "", env[48] = "";
        if (d->flag)
            snprintf(flag, sizeof flag, "--%s", d->flag);
        if (d->env)
            snprintf(env, sizeof env, "%s", d->env);
        fprintf(f, "  %-22s %-28s %s", flag, env, d->help);
        if (d->def && *d->def)
            fprintf(f, " [default: %s]", d->def);
        fputc('\n', f);
    }
}

an_code an_config_indicator_timeframes(const an_config *cfg, char ***out, size_t *n, an_err *err)
{
    const char *v = cfg->from[AN_CFG_TIMEFRAME] != AN_CFG_ORIGIN_DEFAULT
                        ? cfg->val[AN_CFG_TIMEFRAME]
                        : cfg->val[AN_CFG_INDICATOR_TIMEFRAMES];
    return split_list(v, 0, out, n, err);
}
