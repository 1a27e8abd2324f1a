/*
 * util/tzif - time zones read from TZif files (RFC 8536) and POSIX TZ
 * strings, without libc's process-wide TZ: any number of zones at once,
 * from any thread, with no setenv() or tzset().
 *
 * A zone is immutable once made, so lookups need no lock.  The parser
 * takes untrusted bytes: every count and index is checked against the
 * data, a file is at most TZIF_MAX bytes, and a zone has at most
 * TZIF_MAX_TIMES transitions and TZIF_MAX_TYPES local time types.  Leap
 * second files ("right/" zones) are refused.  Times after the last
 * transition follow the file's footer (a POSIX TZ string), as libc does.
 */
#ifndef OUTPOST_UTIL_TZIF_H
#define OUTPOST_UTIL_TZIF_H

#include <stddef.h>
#include <stdint.h>

#define TZIF_MAX	(256 * 1024)
#define TZIF_MAX_TIMES	10000
#define TZIF_MAX_TYPES	256

struct tzif;

/*
 * tzif_parse - the zone in TZif bytes p[0..len), or NULL with err; the
 * caller owns it (tzif_free)
 */
struct tzif *tzif_parse(const unsigned char *p, size_t len, char *err,
    size_t errlen);

/* tzif_load - tzif_parse() of the file at path */
struct tzif *tzif_load(const char *path, char *err, size_t errlen);

/*
 * tzif_posix - the zone a POSIX TZ string such as "CET-1CEST,M3.5.0,
 * M10.5.0/3" or "UTC0" describes, or NULL with err; the caller owns it
 */
struct tzif *tzif_posix(const char *s, char *err, size_t errlen);

/*
 * tzif_offset - the offset from UTC (seconds east) in force at t (seconds
 * since the epoch), and in *next (may be NULL) the next time after t at
 * which it may change (INT64_MAX: never)
 */
int32_t tzif_offset(const struct tzif *z, int64_t t, int64_t *next);

/*
 * tzif_day_start - the first instant (seconds since the epoch) whose
 * local date is day (days since 1970-01-01) or later: local midnight, or
 * the end of a gap that swallowed it
 */
int64_t tzif_day_start(const struct tzif *z, int64_t day);

/* tzif_days - days since 1970-01-01 of y-m-d (m 1..12; d may overflow) */
int64_t tzif_days(int64_t y, int m, int64_t d);

/* tzif_civil - the y-m-d (m 1..12) of days since 1970-01-01 */
void tzif_civil(int64_t days, int64_t *y, int *m, int *d);

/* tzif_free - free z (NULL: nothing); returns NULL */
struct tzif *tzif_free(struct tzif *z);

#endif
