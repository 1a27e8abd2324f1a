/*
 * algo - see algo.h.
 *
 * Window: n[0..B] are B+1 buckets of w ms, n[B] the one holding "now";
 * a state is first advanced to now (older buckets shifted out), then
 * read.  Calendar: n[0] counts the period starting at t0.  Rate: the
 * TAT is t0 + n[0]/L ms; the arithmetic is done in units of 1/L ms
 * (128 bits), where one unit costs period_ms and the tolerance is
 * (burst+1) * period_ms, so nothing is rounded.
 */
#include "config.h"

#include <string.h>

#include "quota/algo.h"

typedef __int128 i128;

/* add_sat - a + b, saturating at UINT64_MAX */
static uint64_t
add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* floor_to - the multiple of w at or below t (t may be negative) */
static int64_t
floor_to(int64_t t, int64_t w)
{
	int64_t q = t / w;

	if (t % w != 0 && t < 0)
		q--;
	return q * w;
}

/* bucket_ms - the width of one window bucket, at least 1 ms */
static int64_t
bucket_ms(const struct conf_limit *l)
{
	unsigned int b = l->buckets ? l->buckets : 1;
	int64_t w;

	if (b > CONF_QBUCKETS_MAX)
		b = CONF_QBUCKETS_MAX;
	w = (int64_t)(l->period * 1000 / b);
	return w > 0 ? w : 1;
}

static unsigned int
nbuckets(const struct conf_limit *l)
{
	unsigned int b = l->buckets ? l->buckets : 1;

	return b > CONF_QBUCKETS_MAX ? CONF_QBUCKETS_MAX : b;
}

static int
is_empty(const struct quota_state *st, unsigned int nslots)
{
	unsigned int i;

	for (i = 0; i < nslots; i++)
		if (st->n[i] != 0)
			return 0;
	return 1;
}

/*
 * window_advance - shift st so that n[B] is the bucket holding now.  A
 * time before the current bucket (a clock stepping back, another
 * process's clock) counts into the current bucket.
 */
static void
window_advance(const struct conf_limit *l, struct quota_state *st,
    int64_t now)
{
	unsigned int b = nbuckets(l), i;
	int64_t w = bucket_ms(l), cb = floor_to(now, w), cur, shift;

	if (is_empty(st, b + 1)) {
		st->t0 = cb - (int64_t)b * w;
		return;
	}
	cur = st->t0 + (int64_t)b * w;
	if (cb <= cur)
		return;
	shift = (cb - cur) / w;
	if (shift > (int64_t)b) {
		memset(st->n, 0, sizeof(st->n));
	} else {
		for (i = 0; i + shift <= b; i++)
			st->n[i] = st->n[i + shift];
		for (; i <= b; i++)
			st->n[i] = 0;
	}
	st->t0 = cb - (int64_t)b * w;
}

static uint64_t
window_sum(const struct conf_limit *l, const struct quota_state *st)
{
	unsigned int b = nbuckets(l), i;
	uint64_t sum = 0;

	for (i = 0; i <= b; i++)
		sum = add_sat(sum, st->n[i]);
	return sum;
}

static void
window_check(const struct conf_limit *l, const struct quota_state *st0,
    uint64_t amount, uint64_t lim, int64_t now, struct quota_check *out)
{
	struct quota_state st = *st0;
	unsigned int b = nbuckets(l), k;
	int64_t w = bucket_ms(l);
	uint64_t left;

	window_advance(l, &st, now);
	out->used = window_sum(l, &st);
	if (lim == QUOTA_UNLIMITED || (amount <= lim &&
	    out->used <= lim - amount)) {
		out->admit = 1;
		return;
	}
	out->admit = 0;
	if (amount > lim)
		return;		/* never fits: retry unknown */
	/* Bucket k leaves the count at t0 + (k + b + 1) * w. */
	left = out->used;
	for (k = 0; k <= b; k++) {
		left -= st.n[k];
		if (left <= lim - amount) {
			int64_t at = st.t0 + (int64_t)(k + b + 1) * w;

			out->retry_ms = at > now ? (uint64_t)(at - now) : 0;
			return;
		}
	}
}

/* calendar_used - the count of the period per holds, 0 if another */
static uint64_t
calendar_used(const struct quota_state *st, const struct quota_period *per)
{
	if (per == NULL)
		return st->n[0];
	return st->t0 == per->start_ms ? st->n[0] : 0;
}

static void
calendar_check(const struct quota_state *st, uint64_t amount, uint64_t lim,
    int64_t now, const struct quota_period *per, struct quota_check *out)
{
	out->used = calendar_used(st, per);
	if (lim == QUOTA_UNLIMITED || (amount <= lim &&
	    out->used <= lim - amount)) {
		out->admit = 1;
		return;
	}
	out->admit = 0;
	if (amount <= lim && per != NULL && per->end_ms > now)
		out->retry_ms = (uint64_t)(per->end_ms - now);
}

static void
calendar_roll(struct quota_state *st, const struct quota_period *per)
{
	if (per != NULL && st->t0 != per->start_ms) {
		memset(st->n, 0, sizeof(st->n));
		st->t0 = per->start_ms;
	}
}

/* rate_tat - the TAT in units of 1/L ms */
static i128
rate_tat(const struct quota_state *st, uint64_t lim)
{
	return (i128)st->t0 * lim + (i128)(st->n[0] % lim);
}

static void
rate_store(struct quota_state *st, i128 tat, uint64_t lim)
{
	i128 q = tat / (i128)lim, r = tat % (i128)lim;

	if (r < 0) {
		r += lim;
		q--;
	}
	memset(st->n, 0, sizeof(st->n));
	st->t0 = (int64_t)q;
	st->n[0] = (uint64_t)r;
}

/* rate_used - units in the bucket at now: ceil((TAT - now) / T) */
static uint64_t
rate_used(const struct conf_limit *l, const struct quota_state *st,
    uint64_t lim, int64_t now)
{
	i128 over = rate_tat(st, lim) - (i128)now * lim, p = l->period * 1000;
	i128 u;

	if (over <= 0 || p == 0)
		return 0;
	u = (over + p - 1) / p;
	return u > (i128)UINT64_MAX ? UINT64_MAX : (uint64_t)u;
}

static void
rate_check(const struct conf_limit *l, const struct quota_state *st,
    uint64_t amount, uint64_t lim, int64_t now, struct quota_check *out)
{
	i128 p = (i128)l->period * 1000, nowl, tat, nw, room;

	if (lim == QUOTA_UNLIMITED || lim == 0 || p == 0) {
		out->admit = lim != 0;
		out->used = 0;
		return;
	}
	nowl = (i128)now * lim;
	tat = rate_tat(st, lim);
	out->used = rate_used(l, st, lim, now);
	nw = (tat > nowl ? tat : nowl) + (i128)amount * p;
	room = ((i128)l->burst + 1) * p;
	if (nw - nowl <= room) {
		out->admit = 1;
		return;
	}
	out->admit = 0;
	if ((i128)amount * p > room)
		return;		/* more than the burst: never fits */
	/* ceil((new - room - now) / L) ms */
	out->retry_ms = (uint64_t)((nw - room - nowl + lim - 1) / lim);
}

void
algo_check(const struct conf_limit *l, const struct quota_state *st,
    uint64_t amount, uint64_t eff_limit, int64_t now_ms,
    const struct quota_period *per, struct quota_check *out)
{
	memset(out, 0, sizeof(*out));
	switch (l->kind) {
	case CONF_QKIND_WINDOW:
		window_check(l, st, amount, eff_limit, now_ms, out);
		break;
	case CONF_QKIND_CALENDAR:
		calendar_check(st, amount, eff_limit, now_ms, per, out);
		break;
	case CONF_QKIND_RATE:
		rate_check(l, st, amount, eff_limit, now_ms, out);
		break;
	}
}

void
algo_charge(const struct conf_limit *l, struct quota_state *st,
    uint64_t amount, int64_t now_ms, const struct quota_period *per)
{
	unsigned int b;
	uint64_t lim = l->limit;
	i128 tat, nowl;

	switch (l->kind) {
	case CONF_QKIND_WINDOW:
		b = nbuckets(l);
		window_advance(l, st, now_ms);
		st->n[b] = add_sat(st->n[b], amount);
		break;
	case CONF_QKIND_CALENDAR:
		calendar_roll(st, per);
		st->n[0] = add_sat(st->n[0], amount);
		break;
	case CONF_QKIND_RATE:
		if (lim == 0 || lim == QUOTA_UNLIMITED)
			break;
		tat = rate_tat(st, lim);
		nowl = (i128)now_ms * lim;
		if (tat < nowl)
			tat = nowl;
		tat += (i128)amount * l->period * 1000;
		rate_store(st, tat, lim);
		break;
	}
}

void
algo_refund(const struct conf_limit *l, struct quota_state *st,
    uint64_t amount, int64_t charged_ms, int64_t now_ms,
    const struct quota_period *per)
{
	unsigned int b;
	int64_t w, idx;
	uint64_t lim = l->limit;
	i128 tat, nowl;

	switch (l->kind) {
	case CONF_QKIND_WINDOW:
		b = nbuckets(l);
		w = bucket_ms(l);
		window_advance(l, st, now_ms);
		idx = (floor_to(charged_ms, w) - st->t0) / w;
		if (idx < 0)
			break;		/* that bucket is no longer counted */
		if (idx > (int64_t)b)
			idx = b;
		st->n[idx] -= amount < st->n[idx] ? amount : st->n[idx];
		break;
	case CONF_QKIND_CALENDAR:
		if (per != NULL && (st->t0 != per->start_ms ||
		    charged_ms < per->start_ms || charged_ms >= per->end_ms))
			break;		/* charged in an earlier period */
		st->n[0] -= amount < st->n[0] ? amount : st->n[0];
		break;
	case CONF_QKIND_RATE:
		if (lim == 0 || lim == QUOTA_UNLIMITED)
			break;
		tat = rate_tat(st, lim) - (i128)amount * l->period * 1000;
		nowl = (i128)now_ms * lim;
		if (tat < nowl)
			tat = nowl;
		if (tat < rate_tat(st, lim))
			rate_store(st, tat, lim);
		break;
	}
}

uint64_t
algo_used(const struct conf_limit *l, const struct quota_state *st,
    int64_t now_ms, const struct quota_period *per)
{
	struct quota_state tmp;

	switch (l->kind) {
	case CONF_QKIND_WINDOW:
		tmp = *st;
		window_advance(l, &tmp, now_ms);
		return window_sum(l, &tmp);
	case CONF_QKIND_CALENDAR:
		return calendar_used(st, per);
	case CONF_QKIND_RATE:
		if (l->limit == 0 || l->limit == QUOTA_UNLIMITED)
			return 0;
		return rate_used(l, st, l->limit, now_ms);
	}
	return 0;
}

void
algo_set(const struct conf_limit *l, struct quota_state *st, uint64_t value,
    int64_t now_ms, const struct quota_period *per)
{
	unsigned int b;
	uint64_t lim = l->limit;

	switch (l->kind) {
	case CONF_QKIND_WINDOW:
		b = nbuckets(l);
		window_advance(l, st, now_ms);
		memset(st->n, 0, sizeof(st->n));
		st->n[b] = value;
		break;
	case CONF_QKIND_CALENDAR:
		memset(st->n, 0, sizeof(st->n));
		st->t0 = per != NULL ? per->start_ms : st->t0;
		st->n[0] = value;
		break;
	case CONF_QKIND_RATE:
		if (lim == 0 || lim == QUOTA_UNLIMITED)
			break;
		rate_store(st, (i128)now_ms * lim + (i128)value * l->period *
		    1000, lim);
		break;
	}
}

int64_t
algo_expires(const struct conf_limit *l, const struct quota_state *st,
    const struct quota_period *per)
{
	unsigned int b;
	int64_t w;
	int i;

	switch (l->kind) {
	case CONF_QKIND_WINDOW:
		b = nbuckets(l);
		w = bucket_ms(l);
		for (i = (int)b; i >= 0; i--)
			if (st->n[i] != 0)
				return st->t0 + ((int64_t)i + b + 1) * w;
		return 0;
	case CONF_QKIND_CALENDAR:
		if (st->n[0] == 0)
			return 0;
		if (per != NULL && st->t0 == per->start_ms)
			return per->end_ms;
		if (per != NULL && st->t0 < per->start_ms)
			return per->start_ms;	/* an old period */
		/* Not knowing the period: its longest possible end. */
		return st->t0 + (l->month ? 32LL : 2LL) * 86400000;
	case CONF_QKIND_RATE:
		return st->t0 + (st->n[0] != 0);
	}
	return 0;
}
