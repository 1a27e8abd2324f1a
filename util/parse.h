/*
 * parse - the one place that turns text into numbers, with range checks.
 *
 * Each returns 0 on success or -1 with a reason in err (errlen bytes).
 * Durations accept a number with an optional unit s, m, h, d, w
 * ("90", "15m", "1h"); sizes accept k, m, g (powers of 1024).
 *
 * fmt_duration goes the other way: seconds as the configuration writes
 * them, in the largest unit that is exact (86400 "1d", 5400 "90m", 45
 * "45s", 0 "0s"; never w), so that parse_duration reads it back.  It
 * writes a terminated string into out (outlen bytes) and returns 0, or
 * -1 when out is too small (what fits is kept, terminated).
 */
#ifndef OUTPOST_PARSE_H
#define OUTPOST_PARSE_H

#include <stddef.h>
#include <stdint.h>

int parse_u64(const char *, uint64_t min, uint64_t max, uint64_t *out,
    char *err, size_t errlen);
int parse_duration(const char *, uint64_t *seconds, char *err, size_t errlen);
int parse_size(const char *, uint64_t *bytes, char *err, size_t errlen);
int fmt_duration(uint64_t seconds, char *out, size_t outlen);

#endif
