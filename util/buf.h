/*
 * buf - a growable, length-tracking byte string, always NUL-terminated.
 *
 * A struct buf owns its data; buf_free() releases it and leaves an empty
 * buffer that may be reused.  Growth is fatal only when memory runs out
 * (xmalloc); callers bound what they append from the network themselves.
 *
 *	struct buf b = BUF_INIT;
 *	buf_appendf(&b, "%s=%d", name, value);
 *	use(b.data, b.len);
 *	buf_free(&b);
 */
#ifndef OUTPOST_BUF_H
#define OUTPOST_BUF_H

#include <stddef.h>

#include "util/log.h"

struct buf {
	char *data;	/* NUL-terminated when cap > 0 */
	size_t len;
	size_t cap;
};

#define BUF_INIT { NULL, 0, 0 }

void buf_reserve(struct buf *, size_t extra);
void buf_append(struct buf *, const void *, size_t);
void buf_appends(struct buf *, const char *);
void buf_appendc(struct buf *, char);
void buf_appendf(struct buf *, const char *, ...) LOG_PRINTF(2, 3);
void buf_truncate(struct buf *, size_t len);
const char *buf_cstr(struct buf *);
char *buf_steal(struct buf *);
void buf_free(struct buf *);

#endif
