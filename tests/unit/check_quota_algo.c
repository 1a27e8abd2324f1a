/*
 * check_quota_algo - quota/algo, util/tz and the state encoding of
 * quota/store.c, with the time passed in.
 *
 * The window test replays thousands of random admissions (fixed seeds)
 * against an exact log of what was admitted: no trailing period ever
 * holds more than the limit, and the algorithm counts exactly what the
 * log holds from its oldest bucket's start, so it refuses only what it
 * must.  Calendar periods are checked against hand-computed local
 * midnights in Europe/Berlin and America/New_York, DST days included.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "quota/algo.h"
#include "quota/store.h"
#include "util/tz.h"

#define H (3600LL * 1000)
#define MIN (60LL * 1000)

/* utc_ms - y-m-d h:00 UTC in ms since the epoch */
static int64_t
utc_ms(int y, int m, int d, int h)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	return (int64_t)timegm(&tm) * 1000;
}

/* rnd - xorshift64*, reproducible from its seed */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

static char name_t[] = "t", zone_utc[] = "UTC";
static char zone_berlin[] = "Europe/Berlin";
static char zone_ny[] = "America/New_York";

static struct conf_limit
mklimit(enum conf_qkind kind, uint64_t limit, uint64_t period,
    unsigned int buckets, uint64_t burst)
{
	struct conf_limit l;

	memset(&l, 0, sizeof(l));
	l.name = name_t;
	l.kind = kind;
	l.limit = limit;
	l.period = period;
	l.buckets = buckets;
	l.burst = burst;
	l.timezone = zone_utc;
	return l;
}

/* One randomized window run: limit, period (s), buckets, seed, max gap. */
static const struct {
	uint64_t limit;
	uint64_t period;
	unsigned int buckets;
	uint64_t seed;
	int64_t maxgap;		/* ms */
} wcases[] = {
	{ 100, 60, 6, 1, 3000 },
	{ 100, 60, 60, 2, 1500 },
	{ 500, 3600, 60, 3, 40000 },
	{ 10, 10, 1, 4, 2500 },
	{ 1000, 3600, 8, 5, 90000 },
	{ 7, 86400, 24, 6, 3 * 3600 * 1000 },
	{ 100, 60, 6, 7, 100 },		/* bursts inside one bucket */
	{ 50, 120, 40, 8, 20000 },
};

#define NEVENTS 5000

START_TEST(window_never_exceeds_limit_across_boundaries)
{
	struct conf_limit l = mklimit(CONF_QKIND_WINDOW, wcases[_i].limit,
	    wcases[_i].period, wcases[_i].buckets, 0);
	struct quota_state st;
	struct quota_check ck, ck2;
	int64_t *at = calloc(NEVENTS, sizeof(*at)), now = 1700000000123LL;
	int64_t p = (int64_t)l.period * 1000, w = p / l.buckets, from;
	uint64_t *amt = calloc(NEVENTS, sizeof(*amt)), seed = wcases[_i].seed;
	uint64_t sum, want_used, amount;
	size_t n = 0, i, k, nadmit = 0, nrefuse = 0;

	memset(&st, 0, sizeof(st));
	for (i = 0; i < NEVENTS; i++) {
		now += (int64_t)(rnd(&seed) % (uint64_t)wcases[_i].maxgap);
		if (rnd(&seed) % 50 == 0)	/* now and then a long pause */
			now += (int64_t)(rnd(&seed) % (uint64_t)(2 * p));
		amount = 1 + rnd(&seed) % (l.limit / 4 + 1);
		if (rnd(&seed) % 100 == 0)
			amount = l.limit + 1;	/* never fits */

		/* What the log holds since the oldest bucket's start. */
		from = (now - now % w) - (int64_t)l.buckets * w;
		want_used = 0;
		for (k = 0; k < n; k++)
			if (at[k] >= from)
				want_used += amt[k];
		algo_check(&l, &st, amount, l.limit, now, NULL, &ck);
		ck_assert_msg(ck.used == want_used, "event %zu at %lld: got used "
		    "%llu, want %llu (the log since the oldest bucket)", i,
		    (long long)now, (unsigned long long)ck.used,
		    (unsigned long long)want_used);
		ck_assert_msg(ck.admit == (want_used + amount <= l.limit),
		    "event %zu: got admit %d, want %d (used %llu + %llu, "
		    "limit %llu)", i, ck.admit, !ck.admit,
		    (unsigned long long)want_used, (unsigned long long)amount,
		    (unsigned long long)l.limit);
		ck_assert_uint_eq(algo_used(&l, &st, now, NULL), ck.used);
		if (!ck.admit) {
			nrefuse++;
			if (amount > l.limit) {
				ck_assert_uint_eq(ck.retry_ms, 0);
				continue;
			}
			/* retry_ms is exact: refused just before, admitted at. */
			ck_assert_msg(ck.retry_ms > 0, "refused with retry 0");
			algo_check(&l, &st, amount, l.limit,
			    now + (int64_t)ck.retry_ms, NULL, &ck2);
			ck_assert_msg(ck2.admit, "event %zu: still refused "
			    "after retry_ms %llu", i,
			    (unsigned long long)ck.retry_ms);
			algo_check(&l, &st, amount, l.limit,
			    now + (int64_t)ck.retry_ms - 1, NULL, &ck2);
			ck_assert_msg(!ck2.admit, "event %zu: admitted 1 ms "
			    "before retry_ms %llu", i,
			    (unsigned long long)ck.retry_ms);
			continue;
		}
		algo_charge(&l, &st, amount, now, NULL);
		at[n] = now;
		amt[n++] = amount;
		nadmit++;
		/* The exact reference: every trailing period ending now. */
		sum = 0;
		for (k = 0; k < n; k++)
			if (at[k] > now - p)
				sum += amt[k];
		ck_assert_msg(sum <= l.limit, "event %zu at %lld: %llu in the "
		    "trailing %llus, limit %llu", i, (long long)now,
		    (unsigned long long)sum, (unsigned long long)l.period,
		    (unsigned long long)l.limit);
		ck_assert_int_ge(algo_expires(&l, &st, NULL), now + p);
	}
	/* Not trivially refusing (nor admitting): both happened often. */
	ck_assert_msg(nadmit > NEVENTS / 10 && nrefuse > NEVENTS / 50,
	    "got %zu admitted, %zu refused", nadmit, nrefuse);
	free(at);
	free(amt);
}
END_TEST

START_TEST(window_admits_once_the_oldest_bucket_has_left)
{
	/* 10 per 60 s in 6 buckets of 10 s. */
	struct conf_limit l = mklimit(CONF_QKIND_WINDOW, 10, 60, 6, 0);
	struct quota_state st;
	struct quota_check ck;
	int64_t t = 1700000000000LL;	/* a multiple of 10 s */

	memset(&st, 0, sizeof(st));
	algo_charge(&l, &st, 10, t + 5000, NULL);
	algo_check(&l, &st, 1, 10, t + 64999, NULL, &ck);
	ck_assert_msg(!ck.admit, "got admit 60 s after, want refuse: the "
	    "charge at +5 s is inside (+4.999 s, +64.999 s]");
	ck_assert_uint_eq(ck.retry_ms, 70000 - 64999);
	algo_check(&l, &st, 1, 10, t + 70000, NULL, &ck);
	ck_assert_int_eq(ck.admit, 1);
	ck_assert_uint_eq(ck.used, 0);
	ck_assert_int_eq(algo_expires(&l, &st, NULL), t + 70000);
}
END_TEST

/* Calendar periods: local day or month holding `at` (UTC hours). */
static const struct {
	const char *zone;
	int month;
	int y, m, d, h;			/* a time inside, UTC */
	int sy, sm, sd, sh;		/* expected start, UTC */
	int ey, em, ed, eh;		/* expected end, UTC */
	int hours;			/* its length */
} pcases[] = {
	/* Berlin: DST starts 2026-03-29 (23 h), ends 2026-10-25 (25 h). */
	{ "Europe/Berlin", 0, 2026, 3, 29, 12, 2026, 3, 28, 23,
	  2026, 3, 29, 22, 23 },
	{ "Europe/Berlin", 0, 2026, 10, 25, 12, 2026, 10, 24, 22,
	  2026, 10, 25, 23, 25 },
	{ "Europe/Berlin", 0, 2026, 3, 28, 22, 2026, 3, 27, 23,
	  2026, 3, 28, 23, 24 },	/* 23:00 local, the day before */
	{ "Europe/Berlin", 0, 2026, 7, 1, 21, 2026, 6, 30, 22,
	  2026, 7, 1, 22, 24 },
	/* New York: DST starts 2026-03-08 (23 h), ends 2026-11-01 (25 h). */
	{ "America/New_York", 0, 2026, 3, 8, 12, 2026, 3, 8, 5,
	  2026, 3, 9, 4, 23 },
	{ "America/New_York", 0, 2026, 11, 1, 12, 2026, 11, 1, 4,
	  2026, 11, 2, 5, 25 },
	{ "America/New_York", 0, 2026, 11, 2, 4, 2026, 11, 1, 4,
	  2026, 11, 2, 5, 25 },		/* 23:00 local, its last hour */
	{ "UTC", 0, 2026, 3, 29, 12, 2026, 3, 29, 0, 2026, 3, 30, 0, 24 },
	/* Months, with the DST change inside them. */
	{ "Europe/Berlin", 1, 2026, 3, 15, 0, 2026, 2, 28, 23,
	  2026, 3, 31, 22, 31 * 24 - 1 },
	{ "America/New_York", 1, 2026, 11, 30, 12, 2026, 11, 1, 4,
	  2026, 12, 1, 5, 30 * 24 + 1 },
	{ "Europe/Berlin", 1, 2026, 12, 31, 22, 2026, 11, 30, 23,
	  2026, 12, 31, 23, 31 * 24 },
	{ "Europe/Berlin", 1, 2026, 12, 31, 23, 2026, 12, 31, 23,
	  2027, 1, 31, 23, 31 * 24 },	/* new year, local */
	{ "UTC", 1, 2028, 2, 29, 12, 2028, 2, 1, 0, 2028, 3, 1, 0, 29 * 24 },
};

START_TEST(calendar_periods_are_local_days_and_months)
{
	struct quota_period per;
	int64_t at = utc_ms(pcases[_i].y, pcases[_i].m, pcases[_i].d,
	    pcases[_i].h);
	int64_t ws = utc_ms(pcases[_i].sy, pcases[_i].sm, pcases[_i].sd,
	    pcases[_i].sh);
	int64_t we = utc_ms(pcases[_i].ey, pcases[_i].em, pcases[_i].ed,
	    pcases[_i].eh);

	ck_assert_int_eq(tz_period(pcases[_i].zone, pcases[_i].month, at,
	    &per), 0);
	ck_assert_msg(per.start_ms == ws && per.end_ms == we, "%s %s of "
	    "%lld: got [%lld, %lld), want [%lld, %lld)", pcases[_i].zone,
	    pcases[_i].month ? "month" : "day", (long long)at,
	    (long long)per.start_ms, (long long)per.end_ms, (long long)ws,
	    (long long)we);
	ck_assert_int_eq((per.end_ms - per.start_ms) / H, pcases[_i].hours);
}
END_TEST

START_TEST(calendar_periods_far_apart_and_unknown_zones)
{
	struct quota_period per;
	int64_t t;

	/* Years apart: the cached table is rebuilt around each time. */
	for (t = utc_ms(2001, 1, 1, 12); t < utc_ms(2040, 1, 1, 0);
	    t += 365LL * 24 * H + 7 * H) {
		ck_assert_int_eq(tz_period("Europe/Berlin", 0, t, &per), 0);
		ck_assert_int_le(per.start_ms, t);
		ck_assert_int_gt(per.end_ms, t);
		ck_assert_int_ge(per.end_ms - per.start_ms, 23 * H);
		ck_assert_int_le(per.end_ms - per.start_ms, 25 * H);
	}
	ck_assert_int_eq(tz_valid("Europe/Berlin"), 1);
	ck_assert_int_eq(tz_valid("UTC"), 1);
	ck_assert_int_eq(tz_valid("Europe/Atlantis"), 0);
	ck_assert_int_eq(tz_valid("../../etc/passwd"), 0);
	ck_assert_int_eq(tz_valid("/etc/localtime"), 0);
	ck_assert_int_eq(tz_valid(""), 0);
	ck_assert_int_eq(tz_period("Europe/Atlantis", 0, t, &per), -1);
}
END_TEST

/* calendar_check_at - check amount at t under a Berlin day limit of n */
static void
calendar_check_at(const struct conf_limit *l, const struct quota_state *st,
    uint64_t amount, int64_t t, struct quota_check *ck)
{
	struct quota_period per;

	ck_assert_int_eq(tz_period(l->timezone, l->month, t, &per), 0);
	algo_check(l, st, amount, l->limit, t, &per, ck);
}

static void
calendar_charge_at(const struct conf_limit *l, struct quota_state *st,
    uint64_t amount, int64_t t)
{
	struct quota_period per;

	ck_assert_int_eq(tz_period(l->timezone, l->month, t, &per), 0);
	algo_charge(l, st, amount, t, &per);
}

START_TEST(calendar_resets_at_local_midnight_on_dst_days)
{
	struct conf_limit l = mklimit(CONF_QKIND_CALENDAR, 5, 86400, 0, 0);
	struct quota_state st;
	struct quota_check ck;
	/* 2026-03-28 23:30 Berlin (CET) = 22:30 UTC. */
	int64_t t = utc_ms(2026, 3, 28, 22) + 30 * MIN;

	l.timezone = zone_berlin;
	memset(&st, 0, sizeof(st));
	calendar_charge_at(&l, &st, 5, t);
	calendar_check_at(&l, &st, 1, t, &ck);
	ck_assert_int_eq(ck.admit, 0);
	ck_assert_uint_eq(ck.used, 5);
	ck_assert_uint_eq(ck.retry_ms, 30 * MIN);
	calendar_check_at(&l, &st, 1, t + 30 * MIN - 1, &ck);
	ck_assert_int_eq(ck.admit, 0);
	/* Local midnight: a new day, 23 hours long. */
	calendar_check_at(&l, &st, 5, t + 30 * MIN, &ck);
	ck_assert_int_eq(ck.admit, 1);
	ck_assert_uint_eq(ck.used, 0);
	calendar_charge_at(&l, &st, 5, t + 30 * MIN);
	calendar_check_at(&l, &st, 1, t + 30 * MIN, &ck);
	ck_assert_int_eq(ck.admit, 0);
	ck_assert_msg(ck.retry_ms == (uint64_t)(23 * H), "got retry %llu ms, "
	    "want 23 h: 2026-03-29 is 23 hours long in Berlin",
	    (unsigned long long)ck.retry_ms);
	calendar_check_at(&l, &st, 1, t + 30 * MIN + 23 * H, &ck);
	ck_assert_int_eq(ck.admit, 1);

	/* New York's 25-hour day: full at its first minute, 25 h to go. */
	l.timezone = zone_ny;
	memset(&st, 0, sizeof(st));
	t = utc_ms(2026, 11, 1, 4);	/* 00:00 EDT */
	calendar_charge_at(&l, &st, 5, t);
	calendar_check_at(&l, &st, 1, t + MIN, &ck);
	ck_assert_int_eq(ck.admit, 0);
	ck_assert_uint_eq(ck.retry_ms, 25 * H - MIN);
	calendar_check_at(&l, &st, 1, t + 24 * H, &ck);	/* 23:00 EST */
	ck_assert_int_eq(ck.admit, 0);
	calendar_check_at(&l, &st, 1, t + 25 * H, &ck);
	ck_assert_int_eq(ck.admit, 1);

	/* A month limit resets on the first, at local midnight. */
	l.month = 1;
	l.timezone = zone_berlin;
	memset(&st, 0, sizeof(st));
	t = utc_ms(2026, 3, 31, 21);	/* 23:00 CEST, March 31 */
	calendar_charge_at(&l, &st, 5, t);
	calendar_check_at(&l, &st, 1, t, &ck);
	ck_assert_int_eq(ck.admit, 0);
	ck_assert_uint_eq(ck.retry_ms, H);
	calendar_check_at(&l, &st, 5, t + H, &ck);
	ck_assert_int_eq(ck.admit, 1);
}
END_TEST

START_TEST(gcra_retry_after_and_burst)
{
	/* 60 per minute, burst 20: T = 1 s, 21 at once. */
	struct conf_limit l = mklimit(CONF_QKIND_RATE, 60, 60, 0, 20);
	struct quota_state st;
	struct quota_check ck;
	int64_t t = 1700000000000LL;
	int i;

	memset(&st, 0, sizeof(st));
	for (i = 0; i < 21; i++) {
		algo_check(&l, &st, 1, 60, t, NULL, &ck);
		ck_assert_msg(ck.admit, "unit %d of the burst refused", i + 1);
		algo_charge(&l, &st, 1, t, NULL);
	}
	algo_check(&l, &st, 1, 60, t, NULL, &ck);
	ck_assert_int_eq(ck.admit, 0);
	ck_assert_uint_eq(ck.retry_ms, 1000);
	ck_assert_uint_eq(ck.used, 21);
	algo_check(&l, &st, 3, 60, t, NULL, &ck);
	ck_assert_uint_eq(ck.retry_ms, 3000);
	algo_check(&l, &st, 1, 60, t + 400, NULL, &ck);
	ck_assert_uint_eq(ck.retry_ms, 600);
	algo_check(&l, &st, 1, 60, t + 1000, NULL, &ck);
	ck_assert_int_eq(ck.admit, 1);
	algo_charge(&l, &st, 1, t + 1000, NULL);
	algo_check(&l, &st, 1, 60, t + 1000, NULL, &ck);
	ck_assert_uint_eq(ck.retry_ms, 1000);
	/* Steady: one per T forever after. */
	for (i = 2; i < 200; i++) {
		algo_check(&l, &st, 1, 60, t + i * 1000, NULL, &ck);
		ck_assert_int_eq(ck.admit, 1);
		algo_charge(&l, &st, 1, t + i * 1000, NULL);
	}
	/* More than burst+1 at once never fits: no retry. */
	algo_check(&l, &st, 22, 60, t + 10000000, NULL, &ck);
	ck_assert_int_eq(ck.admit, 0);
	ck_assert_uint_eq(ck.retry_ms, 0);
	/* Idle: the bucket empties at the TAT. */
	ck_assert_int_eq(algo_expires(&l, &st, NULL), t + 199 * 1000 + 21000);
	ck_assert_uint_eq(algo_used(&l, &st, t + 199 * 1000 + 21000, NULL), 0);
}
END_TEST

START_TEST(gcra_is_exact_for_fractional_intervals)
{
	/* 7 per hour: T = 514285.71 ms. */
	struct conf_limit l = mklimit(CONF_QKIND_RATE, 7, 3600, 0, 0);
	/* 1e9 bytes per second, burst 1e7: T = 1 ns. */
	struct conf_limit b = mklimit(CONF_QKIND_RATE, 1000000000, 1, 0,
	    10000000);
	struct quota_state st;
	struct quota_check ck;
	int64_t t = 1700000000000LL;
	int i;

	memset(&st, 0, sizeof(st));
	algo_charge(&l, &st, 1, t, NULL);
	algo_check(&l, &st, 1, 7, t, NULL, &ck);
	ck_assert_uint_eq(ck.retry_ms, 514286);
	/*
	 * Spaced by the rounded-up retry, each unit lands 2/7 ms late: after
	 * 7 the TAT is t + 3600001.71 ms, and the 8th waits for it exactly.
	 */
	for (i = 1; i < 7; i++) {
		algo_check(&l, &st, 1, 7, t + i * 514286LL, NULL, &ck);
		ck_assert_msg(ck.admit, "unit %d refused", i + 1);
		algo_charge(&l, &st, 1, t + i * 514286LL, NULL);
	}
	algo_check(&l, &st, 1, 7, t + 3600000, NULL, &ck);
	ck_assert_int_eq(ck.admit, 0);
	ck_assert_uint_eq(ck.retry_ms, 2);
	algo_check(&l, &st, 1, 7, t + 3600002, NULL, &ck);
	ck_assert_int_eq(ck.admit, 1);

	memset(&st, 0, sizeof(st));
	algo_check(&b, &st, 10000001, b.limit, t, NULL, &ck);
	ck_assert_int_eq(ck.admit, 1);
	algo_check(&b, &st, 10000002, b.limit, t, NULL, &ck);
	ck_assert_int_eq(ck.admit, 0);
	algo_charge(&b, &st, 10000000, t, NULL);
	algo_check(&b, &st, 1000000, b.limit, t, NULL, &ck);
	ck_assert_int_eq(ck.admit, 0);
	ck_assert_uint_eq(ck.retry_ms, 1);
	ck_assert_uint_eq(ck.used, 10000000);
	algo_check(&b, &st, 1000000, b.limit, t + 1, NULL, &ck);
	ck_assert_int_eq(ck.admit, 1);
}
END_TEST

START_TEST(refund_takes_back_where_it_was_charged)
{
	struct conf_limit w = mklimit(CONF_QKIND_WINDOW, 10, 60, 6, 0);
	struct conf_limit c = mklimit(CONF_QKIND_CALENDAR, 10, 86400, 0, 0);
	struct conf_limit r = mklimit(CONF_QKIND_RATE, 60, 60, 0, 9);
	struct quota_state st;
	struct quota_period per;
	int64_t t = 1700000000000LL;

	/* window: into the bucket charged, while it is counted */
	memset(&st, 0, sizeof(st));
	algo_charge(&w, &st, 4, t, NULL);
	algo_charge(&w, &st, 3, t + 20000, NULL);
	algo_refund(&w, &st, 4, t, t + 30000, NULL);
	ck_assert_uint_eq(algo_used(&w, &st, t + 30000, NULL), 3);
	algo_refund(&w, &st, 5, t + 20000, t + 30000, NULL);
	ck_assert_uint_eq(algo_used(&w, &st, t + 30000, NULL), 0);
	algo_charge(&w, &st, 4, t + 30000, NULL);
	algo_refund(&w, &st, 4, t + 30000, t + 100000, NULL);	/* left */
	ck_assert_uint_eq(algo_used(&w, &st, t + 100000, NULL), 0);
	algo_charge(&w, &st, 2, t + 100000, NULL);
	algo_refund(&w, &st, 2, t + 30000, t + 100000, NULL);	/* stale */
	ck_assert_uint_eq(algo_used(&w, &st, t + 100000, NULL), 2);

	/* calendar: from the period charged, not the next one */
	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(tz_period("UTC", 0, t, &per), 0);
	algo_charge(&c, &st, 6, t, &per);
	algo_refund(&c, &st, 2, t, t + 1000, &per);
	ck_assert_uint_eq(algo_used(&c, &st, t + 1000, &per), 4);
	algo_refund(&c, &st, 9, t, t + 1000, &per);
	ck_assert_uint_eq(algo_used(&c, &st, t + 1000, &per), 0);
	algo_charge(&c, &st, 3, per.end_ms, &(struct quota_period){
	    per.end_ms, per.end_ms + 86400000 });
	algo_refund(&c, &st, 3, t, per.end_ms + 1, &per);
	ck_assert_uint_eq(algo_used(&c, &st, per.end_ms + 1,
	    &(struct quota_period){ per.end_ms, per.end_ms + 86400000 }), 3);

	/* rate: the TAT moves back, never before now */
	memset(&st, 0, sizeof(st));
	algo_charge(&r, &st, 10, t, NULL);
	ck_assert_uint_eq(algo_used(&r, &st, t, NULL), 10);
	algo_refund(&r, &st, 4, t, t, NULL);
	ck_assert_uint_eq(algo_used(&r, &st, t, NULL), 6);
	algo_refund(&r, &st, 40, t, t + 1000, NULL);
	ck_assert_uint_eq(algo_used(&r, &st, t + 1000, NULL), 0);
	ck_assert_int_eq(algo_expires(&r, &st, NULL), t + 1000);
}
END_TEST

START_TEST(set_used_and_expires)
{
	struct conf_limit w = mklimit(CONF_QKIND_WINDOW, 10, 60, 6, 0);
	struct conf_limit c = mklimit(CONF_QKIND_CALENDAR, 10, 86400, 0, 0);
	struct conf_limit r = mklimit(CONF_QKIND_RATE, 60, 60, 0, 0);
	struct quota_state st;
	struct quota_period per;
	struct quota_check ck;
	int64_t t = 1700000000000LL;

	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(algo_expires(&w, &st, NULL), 0);
	algo_set(&w, &st, 7, t, NULL);
	ck_assert_uint_eq(algo_used(&w, &st, t, NULL), 7);
	ck_assert_int_eq(algo_expires(&w, &st, NULL), t + 70000);
	algo_check(&w, &st, 4, 10, t, NULL, &ck);
	ck_assert_int_eq(ck.admit, 0);

	ck_assert_int_eq(tz_period("UTC", 0, t, &per), 0);
	memset(&st, 0, sizeof(st));
	algo_set(&c, &st, 9, t, &per);
	ck_assert_uint_eq(algo_used(&c, &st, t, &per), 9);
	ck_assert_int_eq(algo_expires(&c, &st, &per), per.end_ms);
	ck_assert_int_eq(algo_expires(&c, &st, NULL),
	    per.start_ms + 2 * 86400000LL);

	memset(&st, 0, sizeof(st));
	algo_set(&r, &st, 30, t, NULL);
	ck_assert_uint_eq(algo_used(&r, &st, t, NULL), 30);
	ck_assert_int_eq(algo_expires(&r, &st, NULL), t + 30000);
	algo_set(&r, &st, 0, t, NULL);
	ck_assert_uint_eq(algo_used(&r, &st, t, NULL), 0);
}
END_TEST

START_TEST(state_encoding_round_trips)
{
	struct conf_limit w = mklimit(CONF_QKIND_WINDOW, 10, 3600, 60, 0);
	unsigned char buf[QUOTA_STATE_ENC_MAX + 8];
	struct quota_state st, got;
	uint64_t seed = 42;
	size_t len, i, k;

	for (i = 0; i < 2000; i++) {
		memset(&st, 0, sizeof(st));
		st.t0 = (int64_t)(rnd(&seed) >> 1) * (i % 2 ? -1 : 1);
		for (k = 0; k <= CONF_QBUCKETS_MAX; k++)
			if (rnd(&seed) % 4 == 0)
				st.n[k] = rnd(&seed) >> (rnd(&seed) % 64);
		if (i == 0)
			memset(st.n, 0xff, sizeof(st.n));
		len = quota_state_encode(&w, &st, buf, sizeof(buf));
		ck_assert_uint_gt(len, 0);
		ck_assert_uint_le(len, QUOTA_STATE_ENC_MAX);
		ck_assert_int_eq(quota_state_decode(buf, len, &got), 0);
		ck_assert_msg(memcmp(&st, &got, sizeof(st)) == 0,
		    "state %zu did not round-trip", i);
		/* Every cut short of the whole record is refused. */
		ck_assert_int_eq(quota_state_decode(buf, len - 1, &got), -1);
		ck_assert_int_eq(quota_state_decode(buf, len / 2, &got), -1);
		ck_assert_uint_eq(quota_state_encode(&w, &st, buf, len - 1),
		    0);
	}
	memset(&st, 0, sizeof(st));
	st.t0 = 1700000000000LL;
	ck_assert_uint_eq(quota_state_encode(&w, &st, buf, sizeof(buf)), 11);
	st.n[60] = 5;
	len = quota_state_encode(&w, &st, buf, sizeof(buf));
	ck_assert_uint_eq(len, 12);
	buf[0] = 2;		/* a version from the future */
	ck_assert_int_eq(quota_state_decode(buf, len, &got), -1);
	ck_assert_uint_eq(got.n[60], 0);
	buf[0] = 1;
	buf[1] = 61;		/* past the last bucket */
	ck_assert_int_eq(quota_state_decode(buf, len, &got), -1);
}
END_TEST

START_TEST(record_keys)
{
	char out[QUOTA_RKEY_MAX];

	ck_assert_int_eq(quota_rkey("login-hourly", "alice", out, sizeof(out)),
	    0);
	ck_assert_str_eq(out, "login-hourly\x1f" "alice");
	ck_assert_int_eq(quota_rkey("a", "0123456789", out, 12), -1);
	ck_assert_int_eq(quota_rkey("a", "012345678", out, 12), 0);
	ck_assert_int_eq(quota_rkey("a\x1f" "b", "c", out, sizeof(out)), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("quota_algo");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("window_never_exceeds_limit_across_boundaries");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, window_never_exceeds_limit_across_boundaries,
	    0, sizeof(wcases) / sizeof(wcases[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("window_admits_once_the_oldest_bucket_has_left");
	tcase_add_test(tc, window_admits_once_the_oldest_bucket_has_left);
	suite_add_tcase(s, tc);
	tc = tcase_create("calendar_periods_are_local_days_and_months");
	tcase_add_loop_test(tc, calendar_periods_are_local_days_and_months, 0,
	    sizeof(pcases) / sizeof(pcases[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("calendar_periods_far_apart_and_unknown_zones");
	tcase_add_test(tc, calendar_periods_far_apart_and_unknown_zones);
	suite_add_tcase(s, tc);
	tc = tcase_create("calendar_resets_at_local_midnight_on_dst_days");
	tcase_add_test(tc, calendar_resets_at_local_midnight_on_dst_days);
	suite_add_tcase(s, tc);
	tc = tcase_create("gcra_retry_after_and_burst");
	tcase_add_test(tc, gcra_retry_after_and_burst);
	suite_add_tcase(s, tc);
	tc = tcase_create("gcra_is_exact_for_fractional_intervals");
	tcase_add_test(tc, gcra_is_exact_for_fractional_intervals);
	suite_add_tcase(s, tc);
	tc = tcase_create("refund_takes_back_where_it_was_charged");
	tcase_add_test(tc, refund_takes_back_where_it_was_charged);
	suite_add_tcase(s, tc);
	tc = tcase_create("set_used_and_expires");
	tcase_add_test(tc, set_used_and_expires);
	suite_add_tcase(s, tc);
	tc = tcase_create("state_encoding_round_trips");
	tcase_add_test(tc, state_encoding_round_trips);
	suite_add_tcase(s, tc);
	tc = tcase_create("record_keys");
	tcase_add_test(tc, record_keys);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
