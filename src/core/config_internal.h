/*
 * config_internal.h - the configuration table's entry type, shared by the
 * table (config_table.c) and the loader (config.c). Read-only data.
 */
#ifndef AN_CONFIG_INTERNAL_H
#define AN_CONFIG_INTERNAL_H

#include "core/config.h"

typedef enum {
    T_STR,
    T_INT,
    T_SECRET,
    T_ENUM,
    T_SYMBOLS,
    T_TIMEFRAME,
    T_TIMEFRAMES,
    T_ADDR,
    T_LEVEL,
    T_BOOL,
    T_ENUMLIST,
    T_INDICATORS
} an_cfg_type;

typedef struct cdef {
    const char *env;  /* NULL: flag only */
    const char *flag; /* without the leading "--" */
    an_cfg_type type;
    const char *def;
    long min, max;       /* T_INT bounds */
    const char *choices; /* T_ENUM: "a|b|c" */
    const char *help;
} an_cfg_def;

/* One entry per an_cfg_key, in key order (config_table.c). */
extern const an_cfg_def an_cfg_table[AN_CFG__COUNT];

#endif
