/*
 * tz - see tz.h.
 *
 * Each zone asked for gets a table of local midnights (SPAN_DAYS either
 * side of the time that caused it) and of first days of months; a time
 * outside the table rebuilds it around that time.  The zone itself is
 * read once from its TZif file (util/tzif), so building a table touches
 * neither the process environment (TZ) nor libc's time zone state:
 * localtime_r() and getenv() in other threads are never disturbed.
 * tz_lock guards the cache; lookups take it for a binary search.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/tz.h"
#include "util/tzif.h"
#include "util/xmalloc.h"

#define SPAN_DAYS 400
#define SPAN_MONTHS 14
#define NDAY (2 * SPAN_DAYS + 2)
#define NMON (2 * SPAN_MONTHS + 2)

struct tzent {
	struct tzent *next;
	char *name;
	struct tzif *zone;		/* owned */
	int64_t day[NDAY];		/* ms of local midnights, ascending */
	int64_t mon[NMON];		/* ms of local months' starts */
};

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tzent *tz_cache;
static unsigned long tz_nbuilt;		/* under tz_lock */

static int
is_utc(const char *name)
{
	return strcmp(name, "UTC") == 0;
}

/* tz_open - the zone called name, or NULL (caller owns it) */
static struct tzif *
tz_open(const char *name)
{
	const char *dir = getenv("TZDIR"), *p;
	char path[512], err[128];
	int r;

	if (name == NULL || *name == '\0')
		return NULL;
	if (is_utc(name))
		return tzif_posix("UTC0", err, sizeof(err));
	if (name[0] == '/' || strlen(name) > 200 || strstr(name, "..") != NULL)
		return NULL;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/_+-", *p) != NULL))
			return NULL;
	r = snprintf(path, sizeof(path), "%s/%s",
	    dir != NULL && *dir != '\0' ? dir : "/usr/share/zoneinfo", name);
	if (r < 0 || (size_t)r >= sizeof(path))
		return NULL;
	return tzif_load(path, err, sizeof(err));
}

int
tz_valid(const char *name)
{
	struct tzif *z = tz_open(name);

	if (z == NULL)
		return 0;
	tzif_free(z);
	return 1;
}

/* tz_build - fill e's tables around now_ms; called with tz_lock held */
static int
tz_build(struct tzent *e, int64_t now_ms)
{
	int64_t t = now_ms / 1000 - (now_ms % 1000 < 0), today, y;
	int i, m, d;

	tz_nbuilt++;
	today = t + tzif_offset(e->zone, t, NULL);
	today = today / 86400 - (today % 86400 < 0);
	tzif_civil(today, &y, &m, &d);
	for (i = 0; i < NDAY; i++) {
		e->day[i] = tzif_day_start(e->zone, today - SPAN_DAYS + i) *
		    1000;
		if (i > 0 && e->day[i] <= e->day[i - 1])
			return -1;
	}
	for (i = 0; i < NMON; i++) {
		e->mon[i] = tzif_day_start(e->zone, tzif_days(y,
		    m - SPAN_MONTHS + i, 1)) * 1000;
		if (i > 0 && e->mon[i] <= e->mon[i - 1])
			return -1;
	}
	return 0;
}

/* find - the period of a[0..n) holding t, or -1 outside the table */
static int
find(const int64_t *a, size_t n, int64_t t, struct tz_span *out)
{
	size_t lo = 0, hi = n - 1, mid;

	if (t < a[0] || t >= a[n - 1])
		return -1;
	/* a[lo] <= t < a[hi] */
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		if (a[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	out->start_ms = a[lo];
	out->end_ms = a[hi];
	return 0;
}

int
tz_period(const char *name, int month, int64_t now_ms,
    struct tz_span *out)
{
	struct tzent *e;
	int r = -1;

	if (name == NULL || *name == '\0')
		return -1;
	pthread_mutex_lock(&tz_lock);
	for (e = tz_cache; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			break;
	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		if ((e->zone = tz_open(name)) == NULL ||
		    tz_build(e, now_ms) < 0) {
			tzif_free(e->zone);
			free(e);
			goto out;
		}
		e->name = xstrdup(name);
		e->next = tz_cache;
		tz_cache = e;
	}
	r = month ? find(e->mon, NMON, now_ms, out) :
	    find(e->day, NDAY, now_ms, out);
	if (r < 0) {
		/* Rebuild aside: a failure keeps the old table whole. */
		struct tzent tmp;

		tmp.name = e->name;
		tmp.zone = e->zone;
		if (tz_build(&tmp, now_ms) == 0) {
			memcpy(e->day, tmp.day, sizeof(e->day));
			memcpy(e->mon, tmp.mon, sizeof(e->mon));
			r = month ? find(e->mon, NMON, now_ms, out) :
			    find(e->day, NDAY, now_ms, out);
		}
	}
out:
	pthread_mutex_unlock(&tz_lock);
	return r;
}

unsigned long
tz_builds(void)
{
	unsigned long n;

	pthread_mutex_lock(&tz_lock);
	n = tz_nbuilt;
	pthread_mutex_unlock(&tz_lock);
	return n;
}
