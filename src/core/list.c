/*
 * list.c - the comma-separated list tokenizer (see list.h).
 */
#include "core/list.h"

#include <stdlib.h>
#include <string.h>

int an_list_next(const char **p, const char **item, size_t *len)
{
    const char *s = *p;
    if (!s)
        return 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s) {
            *p = s;
            return 0;
        }
        const char *end = strchr(s, ',');
        const char *next = end ? end + 1 : s + strlen(s);
        if (!end)
            end = next;
        while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > s) {
            *item = s;
            *len = (size_t)(end - s);
            *p = next;
            return 1;
        }
        s = next; /* an empty item */
    }
}

an_code an_list_split(const char *v, char ***out, size_t *n, an_err *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *c = v; c && *c; c++)
        cap += *c == ',';
    char **list = calloc(cap, sizeof *list);
    if (!list)
        return an_err_set(err, AN_ERR_NOMEM, "out of memory");
    size_t count = 0, len;
    const char *item;
    for (const char *p = v; an_list_next(&p, &item, &len);) {
        if (!(list[count] = strndup(item, len))) {
            an_list_free(list, count);
            return an_err_set(err, AN_ERR_NOMEM, "out of memory");
        }
        count++;
    }
    *out = list;
    *n = count;
    return AN_OK;
}

void an_list_free(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}
