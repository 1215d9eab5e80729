/*
 * fuzz_config.c - libFuzzer target: configuration values as flags. The input
 * is split on newlines into an argument vector (`--symbols=...`, `--limit`,
 * `42`, ...) and loaded over the defaults; a loaded configuration then
 * yields its lists, categories and connection string.
 */
#include "core/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fz_cstr(data, size);
    char *argv[64];
    int argc = 0;
    for (char *p = s; argc < 64;) {
        argv[argc++] = p;
        char *nl = strchr(p, '\n');
        if (!nl)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    an_config cfg;
    an_err err = {0};
    if (an_config_load(&cfg, argc, argv, &err) == AN_OK) {
        char **list = NULL;
        size_t n = 0;
        if (an_config_symbols(&cfg, &list, &n, &err) == AN_OK)
            an_config_free_list(list, n);
        if (an_config_categories(&cfg, &list, &n, &err) == AN_OK) {
            for (size_t i = 0; i < n; i++) {
                an_category_config cc;
                if (an_config_category(&cfg, list[i], &cc, &err) == AN_OK)
                    an_config_free_list(cc.symbols, cc.n_symbols);
            }
            an_config_free_list(list, n);
        }
        if (an_config_indicator_timeframes(&cfg, &list, &n, &err) == AN_OK)
            an_config_free_list(list, n);
        free(an_config_pg_conninfo(&cfg));
    }
    an_config_free(&cfg);
    free(s);
    return 0;
}
