/*
 * util/tz - calendar periods (local days and months) in IANA time zones,
 * thread-safe.
 *
 * The boundaries (local midnights, first days of months) of each zone are
 * computed from its TZif file (util/tzif), never through libc's
 * process-wide TZ, once for a span around the time asked, and kept in a
 * sorted table under a lock; lookups are a binary search.  DST days come
 * out 23 or 25 hours long; a day whose midnight falls in a DST gap starts
 * at the end of the gap.  A caller that must not pay for a build on its
 * hot path asks once at start (quota_open() does, for its calendar
 * limits).
 */
#ifndef OUTPOST_UTIL_TZ_H
#define OUTPOST_UTIL_TZ_H

#include <stddef.h>
#include <stdint.h>


/* A local day or month: [start_ms, end_ms), milliseconds since the epoch. */
struct tz_span {
	int64_t start_ms;
	int64_t end_ms;
};

/* tz_valid - 1 if name is a time zone this host knows ("UTC" always) */
int tz_valid(const char *name);

/* tz_period - the local day (month = 0) or month holding now_ms; 0 or -1 */
int tz_period(const char *name, int month, int64_t now_ms,
    struct tz_span *out);

/* tz_builds - how many zone tables were built so far (tests) */
unsigned long tz_builds(void);

#endif
