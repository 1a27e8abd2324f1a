/*
 * parse - the one place that turns text into numbers, with range checks.
 *
 * Each returns 0 on success or -1 with a reason in err (errlen bytes).
 * Durations accept a number with an optional unit s, m, h, d, w
 * ("90", "15m", "1h"); sizes accept k, m, g (powers of 1024).
 */
#ifndef OUTPOST_PARSE_H
#define OUTPOST_PARSE_H

#include <stddef.h>
#include <stdint.h>

int parse_u64(const char *, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen);
int parse_duration(const char *, uint64_t *seconds, char *err, size_t errlen);
int parse_size(const char *, uint64_t *bytes, char *err, size_t errlen);

#endif
