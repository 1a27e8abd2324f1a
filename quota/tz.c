/*
 * tz - see tz.h.
 *
 * Each zone asked for gets a table of local midnights (SPAN_DAYS either
 * side of the time that caused it) and of first days of months; a time
 * outside the table rebuilds it around that time.  Building sets TZ,
 * calls tzset() and mktime() on each local midnight, then puts TZ back,
 * all under tz_lock; "UTC" is built with timegm() and never touches TZ.
 * Lookups take the same lock for a binary search.
 *
 * setenv() is not safe against a getenv() running in another thread
 * (localtime() in a logger, say); a table is built once per zone and
 * per two years of time asked for, and quota_open() builds those of its
 * limits before any admission (at a daemon's start, while it is alone),
 * which keeps that window tiny.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quota/tz.h"
#include "util/xmalloc.h"

#define SPAN_DAYS 400
#define SPAN_MONTHS 14
#define NDAY (2 * SPAN_DAYS + 2)
#define NMON (2 * SPAN_MONTHS + 2)

struct tzent {
	struct tzent *next;
	char *name;
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

int
tz_valid(const char *name)
{
	const char *dir = getenv("TZDIR"), *p;
	char path[512], magic[4];
	FILE *f;
	size_t n;
	int r;

	if (name == NULL || *name == '\0')
		return 0;
	if (is_utc(name))
		return 1;
	if (name[0] == '/' || strlen(name) > 200 || strstr(name, "..") != NULL)
		return 0;
	for (p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/_+-", *p) != NULL))
			return 0;
	r = snprintf(path, sizeof(path), "%s/%s",
	    dir != NULL && *dir != '\0' ? dir : "/usr/share/zoneinfo", name);
	if (r < 0 || (size_t)r >= sizeof(path) ||
	    (f = fopen(path, "rb")) == NULL)
		return 0;
	n = fread(magic, 1, sizeof(magic), f);
	fclose(f);
	return n == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
}

/* local_start - ms of local 00:00 of y-m-d (normalized, like mktime) */
static int
local_start(int utc, int year, int mon, int mday, int64_t *out)
{
	struct tm tm;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year;
	tm.tm_mon = mon;
	tm.tm_mday = mday;
	tm.tm_isdst = -1;
	t = utc ? timegm(&tm) : mktime(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (int64_t)t * 1000;
	return 0;
}

/* tz_build - fill e's tables around now_ms; called with tz_lock held */
static int
tz_build(struct tzent *e, int64_t now_ms)
{
	int utc = is_utc(e->name), ret = -1, i;
	char *saved = NULL;
	const char *old;
	struct tm tm;
	time_t t = (time_t)(now_ms / 1000 - (now_ms % 1000 < 0));

	tz_nbuilt++;
	if (!utc) {
		if ((old = getenv("TZ")) != NULL)
			saved = xstrdup(old);
		if (setenv("TZ", e->name, 1) != 0)
			goto out;
		tzset();
	}
	if ((utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)) == NULL)
		goto out;
	for (i = 0; i < NDAY; i++)
		if (local_start(utc, tm.tm_year, tm.tm_mon,
		    tm.tm_mday - SPAN_DAYS + i, &e->day[i]) < 0 ||
		    (i > 0 && e->day[i] <= e->day[i - 1]))
			goto out;
	for (i = 0; i < NMON; i++)
		if (local_start(utc, tm.tm_year, tm.tm_mon - SPAN_MONTHS + i,
		    1, &e->mon[i]) < 0 || (i > 0 && e->mon[i] <= e->mon[i - 1]))
			goto out;
	ret = 0;
out:
	if (!utc) {
		if (saved != NULL)
			setenv("TZ", saved, 1);
		else
			unsetenv("TZ");
		tzset();
		free(saved);
	}
	return ret;
}

/* find - the period of a[0..n) holding t, or -1 outside the table */
static int
find(const int64_t *a, size_t n, int64_t t, struct quota_period *out)
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
    struct quota_period *out)
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
		if (!tz_valid(name))
			goto out;
		e = xcalloc(1, sizeof(*e));
		e->name = xstrdup(name);
		if (tz_build(e, now_ms) < 0) {
			free(e->name);
			free(e);
			goto out;
		}
		e->next = tz_cache;
		tz_cache = e;
	}
	r = month ? find(e->mon, NMON, now_ms, out) :
	    find(e->day, NDAY, now_ms, out);
	if (r < 0) {
		/* Rebuild aside: a failure keeps the old table whole. */
		struct tzent tmp;

		tmp.name = e->name;
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
