/*
 * xmalloc - allocation that never returns NULL: out of memory is fatal.
 *
 * Every pointer returned is owned by the caller and released with free().
 */
#ifndef OUTPOST_XMALLOC_H
#define OUTPOST_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);

#endif
