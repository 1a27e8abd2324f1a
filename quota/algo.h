/*
 * quota/algo - the three limit algorithms as pure functions over one
 * counter's state, with the time passed in.  The stores run them inside
 * their transaction (LMDB) or mirror them in Lua (Redis, store_redis.c;
 * the behaviour suite holds both to the same results).
 *
 *  window:   at most limit units in any trailing period.  The period is
 *            cut into `buckets` fixed sub-buckets of w = period/buckets
 *            ms, aligned on the epoch; the count is the sum of the
 *            current bucket and the `buckets` buckets before it
 *            (n[0..buckets], buckets+1 of them: the oldest one still
 *            overlaps the trailing period until it has fully left it),
 *            each counted whole, so N is never exceeded in any trailing
 *            period (it may refuse up to w early, never admit late).
 *            retry_after: until enough old buckets expire.
 *  calendar: at most limit units per local day or month in the limit's
 *            time zone; the counter resets at local midnight (DST days
 *            are 23 or 25 hours long).  state.t0 holds the period's
 *            start (ms, UTC); retry_after: until the next period.
 *  rate:     GCRA.  Emission interval T = period/limit ms, tolerance
 *            tau = burst * T.  state.t0 is the theoretical arrival time
 *            (TAT, ms).  n units at now are admitted when
 *            new = max(TAT, now) + n*T satisfies new - now <= tau + T;
 *            then TAT = new.  Refused: retry_after = new - (tau+T) - now.
 *            So burst+1 units pass at once, then limit per period.
 *            TAT is kept exact: t0 ms plus n[0]/limit ms (n[0] <
 *            limit), so byte rates far above 1/ms work.  Every function
 *            takes T from l->limit (algo_check from eff_limit): for an
 *            override, quota.c hands the store a copy of the limit whose
 *            ->limit is the override's number (store.h, quota_op).
 *
 * Nothing here allocates, logs or reads a clock.
 */
#ifndef OUTPOST_QUOTA_ALGO_H
#define OUTPOST_QUOTA_ALGO_H

#include <stdint.h>

#include "conf/conf_quota.h"
#include "util/tz.h"

#define QUOTA_UNLIMITED UINT64_MAX

/* One counter's state; zeroed means "nothing counted yet". */
struct quota_state {
	int64_t t0;			/* window: start of bucket n[0], ms;
					 * calendar: period start, ms;
					 * rate: TAT, ms */
	uint64_t n[CONF_QBUCKETS_MAX + 1];	/* window: per bucket (n[0]
					 * oldest, n[buckets] current);
					 * calendar: n[0]; rate: n[0] the
					 * TAT's fraction of a ms, /limit */
};

/*
 * Calendar periods are found by the caller (tz_period(), util/tz.h) and
 * passed in: a quota period is a util/tz span.  (An alias rather than a
 * rename, so that the quota code keeps its word for it.)
 */
#define quota_period tz_span

struct quota_check {
	int admit;			/* 1: amount fits */
	uint64_t used;			/* counted at now, before amount */
	uint64_t retry_ms;		/* refused: wait before it would fit */
};

/*
 * algo_check - would amount fit under limit (eff_limit, after overrides)
 * at now?  Does not modify st.  per is for calendar limits only (may be
 * NULL otherwise).
 */
void algo_check(const struct conf_limit *, const struct quota_state *,
    uint64_t amount, uint64_t eff_limit, int64_t now_ms,
    const struct quota_period *per, struct quota_check *);

/* algo_charge - count amount at now (first advancing st to now). */
void algo_charge(const struct conf_limit *, struct quota_state *,
    uint64_t amount, int64_t now_ms, const struct quota_period *per);

/*
 * algo_refund - take back amount charged at charged_ms: from the bucket
 * it went into while that bucket is still counted (window), from the
 * period it went into (calendar), from the TAT (rate); never below 0.
 */
void algo_refund(const struct conf_limit *, struct quota_state *,
    uint64_t amount, int64_t charged_ms, int64_t now_ms,
    const struct quota_period *per);

/* algo_used - what the counter holds at now (for show and list). */
uint64_t algo_used(const struct conf_limit *, const struct quota_state *,
    int64_t now_ms, const struct quota_period *per);

/* algo_set - make the counter read used = value at now. */
void algo_set(const struct conf_limit *, struct quota_state *,
    uint64_t value, int64_t now_ms, const struct quota_period *per);

/* algo_expires - when st holds nothing any more (ms); for reclaiming. */
int64_t algo_expires(const struct conf_limit *, const struct quota_state *,
    const struct quota_period *per);

#endif
