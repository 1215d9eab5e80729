/*
 * list.h - the one tokenizer of comma-separated lists ("BTC/USDT, ETH/USDT",
 * "1m,1h,1d", "sma:20,rsi:14", "crypto,forex"): every list setting and the
 * indicator specs go through it, so spaces and empty items mean the same
 * everywhere. Items are trimmed of spaces; empty items are skipped.
 *
 * Pure functions on caller-owned strings; any thread.
 */
#ifndef AN_CORE_LIST_H
#define AN_CORE_LIST_H

#include <stddef.h>

#include "core/error.h"

/* The next item of the list at *p: 1 with *item and *len set (not
 * NUL-terminated: the item is a slice of the input) and *p moved past it,
 * 0 at the end. Start with *p = the list (NULL reads as empty). */
int an_list_next(const char **p, const char **item, size_t *len);

/* The items of v as a malloc'd array of malloc'd strings (*n of them; an
 * empty list gives *n = 0). Free with an_list_free. */
an_code an_list_split(const char *v, char ***out, size_t *n, an_err *err);
void an_list_free(char **list, size_t n);

#endif
