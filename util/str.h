/*
 * str - bounded string copies without printf's machinery (a "%s"
 * snprintf costs about 0.1 us, on paths taken per request).
 */
#ifndef OUTPOST_UTIL_STR_H
#define OUTPOST_UTIL_STR_H

#include <string.h>

/* str_copy - s into out (len > 0 bytes), cut to fit, always ended */
static inline void
str_copy(char *out, const char *s, size_t len)
{
	size_t n = strnlen(s, len - 1);

	memcpy(out, s, n);
	out[n] = '\0';
}

#endif
