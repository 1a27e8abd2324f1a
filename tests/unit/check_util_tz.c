/*
 * check_util_tz - calendar zones (util/tz) built from TZif files
 * (util/tzif) without the process environment: offsets, local midnights
 * and months' starts agree with libc (setenv TZ, tzset, mktime) across
 * 1975-2045 in zones with DST, half-hour DST and none; building tables
 * leaves TZ and other threads' localtime_r alone; damaged TZif data is
 * refused or read safely, never past its end.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/tz.h"
#include "util/tzif.h"

#define ZONEINFO "/usr/share/zoneinfo"

static const char *const zones[] = {
	"Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
	"Asia/Kolkata", "UTC", "America/St_Johns", "Pacific/Chatham",
	"Europe/Dublin"
};
#define NZONES (sizeof(zones) / sizeof(zones[0]))

/* use_tz - point libc at zone (this test's reference only) */
static void
use_tz(const char *zone)
{
	ck_assert_int_eq(setenv("TZ", zone, 1), 0);
	tzset();
}

/* libc_start - libc's local 00:00 of y-m-d (normalized), seconds */
static int64_t
libc_start(int y, int m, int d)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y;
	tm.tm_mon = m;
	tm.tm_mday = d;
	tm.tm_isdst = -1;
	return (int64_t)mktime(&tm);
}

/* zone_file - the TZif zone called name (UTC: its POSIX string) */
static struct tzif *
zone_file(const char *name)
{
	char path[256], err[256] = "";
	struct tzif *z;

	if (strcmp(name, "UTC") == 0)
		z = tzif_posix("UTC0", err, sizeof(err));
	else {
		snprintf(path, sizeof(path), "%s/%s", ZONEINFO, name);
		z = tzif_load(path, err, sizeof(err));
	}
	ck_assert_msg(z != NULL, "%s: %s", name, err);
	return z;
}

/*
 * offsets_match_libc - at ~9,000 times from 1975 to 2045 (past the last
 * transition in the file, where its footer rule applies) and around each
 * change, the offset is libc's tm_gmtoff
 */
START_TEST(offsets_match_libc)
{
	const char *zone = zones[_i];
	struct tzif *z = zone_file(zone);
	struct tm tm;
	int64_t t, next, lo = 157766400, hi = 2398291200LL;
	time_t tt;
	int32_t off;
	int n = 0;

	use_tz(zone);
	for (t = lo; t < hi; t += 3 * 86400 + 4567, n++) {
		off = tzif_offset(z, t, &next);
		tt = (time_t)t;
		ck_assert_ptr_nonnull(localtime_r(&tt, &tm));
		ck_assert_msg(off == tm.tm_gmtoff, "%s at %lld: got %d, want "
		    "%ld", zone, (long long)t, off, tm.tm_gmtoff);
		ck_assert_int_gt(next, t);
		if (next < hi) {	/* both sides of the next change */
			tt = (time_t)(next - 1);
			ck_assert_ptr_nonnull(localtime_r(&tt, &tm));
			ck_assert_int_eq(tzif_offset(z, next - 1, NULL),
			    tm.tm_gmtoff);
		}
	}
	ck_assert_int_gt(n, 8000);
	tzif_free(z);
}
END_TEST

/* local_day - the local date of t in z, as days since 1970-01-01 */
static int64_t
local_day(const struct tzif *z, int64_t t)
{
	int64_t l = t + tzif_offset(z, t, NULL);

	return l / 86400 - (l % 86400 < 0);
}

/*
 * agrees - got is libc's want, or (where the offset changes within 2 h
 * of want: a DST change at midnight, where mktime() picks one of two
 * readings) a start of a local date all the same
 */
static int
agrees(const struct tzif *z, int64_t got, int64_t want)
{
	int64_t next;

	if (got == want)
		return 1;
	(void)tzif_offset(z, want - 7200, &next);
	return next <= want + 7200 &&
	    local_day(z, got - 1) < local_day(z, got);
}

/*
 * periods_match_libc - the local day and month holding each of ~5,000
 * times are what mktime() makes of their local midnights
 */
START_TEST(periods_match_libc)
{
	const char *zone = zones[_i];
	struct tzif *z = zone_file(zone);
	struct tz_span per;
	struct tm tm;
	int64_t t, ws, we;
	time_t tt;
	int month;

	use_tz(zone);
	for (t = 157766400; t < 2398291200LL; t += 5 * 86400 + 7 * 3613) {
		tt = (time_t)t;
		ck_assert_ptr_nonnull(localtime_r(&tt, &tm));
		for (month = 0; month < 2; month++) {
			ws = month ? libc_start(tm.tm_year, tm.tm_mon, 1) :
			    libc_start(tm.tm_year, tm.tm_mon, tm.tm_mday);
			we = month ? libc_start(tm.tm_year, tm.tm_mon + 1, 1) :
			    libc_start(tm.tm_year, tm.tm_mon, tm.tm_mday + 1);
			ck_assert_int_eq(tz_period(zone, month, t * 1000,
			    &per), 0);
			ck_assert_msg(agrees(z, per.start_ms / 1000, ws) &&
			    agrees(z, per.end_ms / 1000, we), "%s %s of "
			    "%lld: got [%lld, %lld), want [%lld, %lld)", zone,
			    month ? "month" : "day", (long long)t,
			    (long long)per.start_ms / 1000,
			    (long long)per.end_ms / 1000, (long long)ws,
			    (long long)we);
			ck_assert_int_le(per.start_ms, t * 1000);
			ck_assert_int_gt(per.end_ms, t * 1000);
		}
	}
	tzif_free(z);
}
END_TEST

/* Shared with the reader thread of tables_leave_tz_alone. */
static volatile int reader_stop;
static const char *reader_tz;
static long reader_bad, reader_runs;

/* reader - localtime_r of a fixed time, again and again: Tokyo's +9h */
static void *
reader(void *arg)
{
	time_t t = 1774000000;
	struct tm tm;
	const char *tz;

	(void)arg;
	while (!reader_stop && reader_runs < 50000000) {
		reader_runs++;
		tz = getenv("TZ");
		if (localtime_r(&t, &tm) == NULL || tm.tm_gmtoff != 9 * 3600 ||
		    tz != reader_tz)
			reader_bad++;
	}
	return NULL;
}

/*
 * tables_leave_tz_alone - building zone tables (new zones, times years
 * apart) changes neither TZ nor what localtime_r says in another thread
 */
START_TEST(tables_leave_tz_alone)
{
	struct tz_span per;
	pthread_t tid;
	size_t i;
	int k;

	use_tz("Asia/Tokyo");
	reader_tz = getenv("TZ");
	ck_assert_int_eq(pthread_create(&tid, NULL, reader, NULL), 0);
	for (k = 0; k < 8; k++)
		for (i = 0; i < NZONES; i++)
			ck_assert_int_eq(tz_period(zones[i], k & 1,
			    (1000000000LL + k * 90000000LL) * 1000, &per), 0);
	reader_stop = 1;
	ck_assert_int_eq(pthread_join(tid, NULL), 0);
	ck_assert_ptr_eq(getenv("TZ"), reader_tz);
	ck_assert_str_eq(getenv("TZ"), "Asia/Tokyo");
	ck_assert_msg(reader_bad == 0, "%ld of %ld localtime_r/getenv calls "
	    "in another thread saw another zone", reader_bad, reader_runs);
	ck_assert_uint_ge(tz_builds(), 8 * NZONES);
}
END_TEST

/* file_bytes - the bytes of a zone file; caller frees */
static unsigned char *
file_bytes(const char *name, size_t *len)
{
	char path[256];
	unsigned char *p = malloc(TZIF_MAX);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", ZONEINFO, name);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(f = fopen(path, "rb"));
	*len = fread(p, 1, TZIF_MAX, f);
	fclose(f);
	ck_assert_uint_gt(*len, 100);
	return p;
}

/* use_zone - look the zone up at a few times (memory checkers watch) */
static void
use_zone(struct tzif *z)
{
	int64_t t;

	for (t = -4000000000LL; t < 8000000000LL; t += 400000000LL) {
		(void)tzif_offset(z, t, NULL);
		(void)tzif_day_start(z, t / 86400);
	}
}

/*
 * damaged_tzif_is_refused_or_read_safely - every cut of a real file is
 * refused; 3,000 files with a few bytes changed parse or are refused,
 * and those that parse answer lookups
 */
START_TEST(damaged_tzif_is_refused_or_read_safely)
{
	unsigned char *p, *q;
	char err[256];
	struct tzif *z;
	uint64_t x = 88172645463325252ULL;
	size_t len, cut, i;
	int k, parsed = 0;

	p = file_bytes("Australia/Lord_Howe", &len);
	ck_assert_ptr_nonnull(q = malloc(len));
	for (cut = 0; cut < len; cut++) {
		memcpy(q, p, cut);
		z = tzif_parse(q, cut, err, sizeof(err));
		ck_assert_msg(z == NULL, "a file cut at %zu of %zu bytes "
		    "parsed", cut, len);
	}
	for (i = 0; i < 3000; i++) {
		memcpy(q, p, len);
		for (k = 0; k < 3; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			q[x % len] = (unsigned char)(x >> 32);
		}
		if ((z = tzif_parse(q, len, err, sizeof(err))) != NULL) {
			parsed++;
			use_zone(z);
			tzif_free(z);
		}
	}
	ck_assert_int_gt(parsed, 0);
	free(q);
	free(p);
	ck_assert_ptr_null(tzif_parse((const unsigned char *)"TZif", 4, err,
	    sizeof(err)));
	ck_assert_ptr_null(tzif_posix("CET-1CEST,M3.5.0,M10.5.9", err,
	    sizeof(err)));
	ck_assert_ptr_null(tzif_posix("X1", err, sizeof(err)));
}
END_TEST

/*
 * posix_rules - footer rules by themselves: all-year DST, a southern
 * hemisphere zone, Julian days
 */
START_TEST(posix_rules)
{
	char err[256];
	struct tzif *z;
	int64_t t;

	/* always DST: -4h all year */
	ck_assert_ptr_nonnull(z = tzif_posix("EST5EDT,0/0,J365/25", err,
	    sizeof(err)));
	for (t = 1700000000; t < 1800000000; t += 86400 * 3 + 17)
		ck_assert_int_eq(tzif_offset(z, t, NULL), -4 * 3600);
	tzif_free(z);
	/* Lord Howe's: +11 from October's first Sunday 2:00 to April's */
	ck_assert_ptr_nonnull(z = tzif_posix(
	    "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", err, sizeof(err)));
	/* 2041-01-15 and 2041-07-15, 00:00 UTC */
	ck_assert_int_eq(tzif_offset(z, 2241820800LL, NULL), 11 * 3600);
	ck_assert_int_eq(tzif_offset(z, 2257459200LL, NULL), 37800);
	tzif_free(z);
	/* J60 is March 1 even in leap years */
	ck_assert_ptr_nonnull(z = tzif_posix("AAA0BBB,J60/0,J300/0", err,
	    sizeof(err)));
	/* 2040-02-29 12:00 UTC: not yet; 2040-03-01 12:00: DST */
	ck_assert_int_eq(tzif_offset(z, 2214129600LL, NULL), 0);
	ck_assert_int_eq(tzif_offset(z, 2214216000LL, NULL), 3600);
	tzif_free(z);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("util tz");
	SRunner *sr;
	TCase *tc;
	int nf;

	tc = tcase_create("offsets_match_libc");
	tcase_add_loop_test(tc, offsets_match_libc, 0, NZONES);
	suite_add_tcase(s, tc);
	tc = tcase_create("periods_match_libc");
	tcase_add_loop_test(tc, periods_match_libc, 0, NZONES);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	tc = tcase_create("tables_leave_tz_alone");
	tcase_add_test(tc, tables_leave_tz_alone);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	tc = tcase_create("damaged_tzif_is_refused_or_read_safely");
	tcase_add_test(tc, damaged_tzif_is_refused_or_read_safely);
	tcase_set_timeout(tc, 30);
	suite_add_tcase(s, tc);
	tc = tcase_create("posix_rules");
	tcase_add_test(tc, posix_rules);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
