/*
 * quota_admin - what only outpostctl calls: list the live counters
 * (quota_list), reset a key's counters (quota_reset) and set one
 * (quota_set); and one read the milter makes, a sender's counter of one
 * limit (quota_used, for deliverability.bulk_recipients).  Each works
 * through the store's get/put/del/iterate operations, outside any
 * admission (and any batch).
 *
 * Ownership: entries passed to the list callback live for the call
 * only.  Failures: -1 with err (an unknown limit, a key too long, a
 * calendar limit without a period, or a store error, which is counted
 * and logged as in an admission).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "quota/algo.h"
#include "quota/quota.h"
#include "quota/quota_impl.h"
#include "quota/store.h"
#include "util/tz.h"

struct list_ctx {
	struct quota *q;
	const char *limit_name;
	int64_t now;
	int (*fn)(const struct quota_entry *, void *);
	void *arg;
	int bad_period;
};

/* list_one - iterate callback: one record as a quota_entry, if live */
static int
list_one(const char *rkey, const struct quota_state *st, void *arg)
{
	struct list_ctx *x = arg;
	const struct conf_limit *l, *run;
	const char *sep = strchr(rkey, QUOTA_RKEY_SEP);
	struct quota_period per, *pp = NULL;
	struct quota_entry e;
	struct quota_check ck;
	char name[QUOTA_RKEY_MAX];
	size_t i;
	uint64_t eff;

	if (sep == NULL || (size_t)(sep - rkey) >= sizeof(name))
		return 0;
	memcpy(name, rkey, (size_t)(sep - rkey));
	name[sep - rkey] = '\0';
	if ((x->limit_name != NULL && strcmp(name, x->limit_name) != 0) ||
	    quota_limit_index(x->q, name, &i) < 0)
		return 0;	/* another limit, or one no longer configured */
	l = &quota_conf_of(x->q)->limits[i];
	memset(&e, 0, sizeof(e));
	e.limit = l;
	quota_copy_trunc(sep + 1, e.key, sizeof(e.key), 0);
	if (quota_effective(x->q, i, e.key, &run, &eff) < 0) {
		run = l;
		eff = QUOTA_UNLIMITED;
	}
	if (l->kind == CONF_QKIND_CALENDAR) {
		if (tz_period(l->timezone, l->month, x->now, &per) < 0) {
			x->bad_period = 1;
			return 1;
		}
		pp = &per;
	}
	if ((e.used = algo_used(run, st, x->now, pp)) == 0)
		return 0;
	e.limit_value = eff;
	algo_check(run, st, 1, eff, x->now, pp, &ck);
	e.retry_after = ck.admit ? 0 : quota_ms_to_s(ck.retry_ms);
	return x->fn(&e, x->arg);
}

/* quota_list - see quota.h */
int
quota_list(struct quota *q, const char *limit_name, int64_t now_ms,
    int (*fn)(const struct quota_entry *, void *), void *arg, char *err,
    size_t errlen)
{
	struct quota_store *qs = quota_store_of(q);
	struct list_ctx x = { q, limit_name, now_ms, fn, arg, 0 };
	size_t i;


	if (limit_name != NULL && quota_limit_index(q, limit_name, &i) < 0) {
		snprintf(err, errlen, "no limit named \"%s\"", limit_name);
		return -1;
	}
	if (qs->ops->iterate(qs, list_one, &x, err, errlen) < 0)
		return quota_store_failed(q, "list", err);
	if (x.bad_period) {
		snprintf(err, errlen, "a calendar limit's time zone failed");
		return -1;
	}
	return 0;
}

/* quota_reset - see quota.h */
int
quota_reset(struct quota *q, const char *key, const char *limit_name,
    int64_t now_ms, char *err, size_t errlen)
{
	struct quota_store *qs = quota_store_of(q);
	char nk[QUOTA_KEY_MAX], rkey[QUOTA_RKEY_MAX];
	size_t i, only = 0;

	(void)now_ms;
	if (limit_name != NULL && quota_limit_index(q, limit_name, &only) < 0) {
		snprintf(err, errlen, "no limit named \"%s\"", limit_name);
		return -1;
	}
	for (i = 0; i < quota_conf_of(q)->nlimits; i++) {
		if (limit_name != NULL && i != only)
			continue;
		quota_norm_key(&quota_conf_of(q)->limits[i], key, nk,
		    sizeof(nk));
		if (quota_rkey(quota_conf_of(q)->limits[i].name, nk, rkey,
		    sizeof(rkey)) < 0) {
			snprintf(err, errlen, "key too long");
			return -1;
		}
		if (qs->ops->del(qs, rkey, err, errlen) < 0)
			return quota_store_failed(q, "reset", err);
	}
	return 0;
}

/* One limit's counter for one key, as the store holds it now. */
struct counter {
	char rkey[QUOTA_RKEY_MAX];
	const struct conf_limit *run;	/* the limit in force for the key */
	struct quota_period per, *pp;	/* a calendar limit's period */
	struct quota_state st;		/* zero when not found */
	int found;
};

/* limit_named - the index of the limit called name; 0, or -1 with err */
static int
limit_named(struct quota *q, const char *name, size_t *i, char *err,
    size_t errlen)
{
	if (name != NULL && quota_limit_index(q, name, i) == 0)
		return 0;
	snprintf(err, errlen, "no limit named \"%s\"", name ? name : "");
	return -1;
}

/*
 * counter_get - limit i's counter for key (already normalized) into *c,
 * with the limit in force for key (an unlimited key still counts under
 * its limit); 0, or -1 with err
 */
static int
counter_get(struct quota *q, size_t i, const char *key, int64_t now_ms,
    struct counter *c, char *err, size_t errlen)
{
	const struct conf_limit *l = &quota_conf_of(q)->limits[i];
	struct quota_store *qs = quota_store_of(q);
	uint64_t eff;

	if (quota_rkey(l->name, key, c->rkey, sizeof(c->rkey)) < 0) {
		snprintf(err, errlen, "key too long");
		return -1;
	}
	if (quota_effective(q, i, key, &c->run, &eff) < 0)
		c->run = l;
	c->pp = NULL;
	if (l->kind == CONF_QKIND_CALENDAR) {
		if (tz_period(l->timezone, l->month, now_ms, &c->per) < 0) {
			snprintf(err, errlen, "no calendar period in time "
			    "zone %s", l->timezone);
			return -1;
		}
		c->pp = &c->per;
	}
	if (qs->ops->get(qs, c->rkey, &c->st, &c->found, err, errlen) < 0)
		return quota_store_failed(q, "get", err);
	if (!c->found)
		memset(&c->st, 0, sizeof(c->st));
	return 0;
}

/* quota_set - see quota.h */
int
quota_set(struct quota *q, const char *key, const char *limit_name,
    uint64_t value, int64_t now_ms, char *err, size_t errlen)
{
	struct quota_store *qs = quota_store_of(q);
	char nk[QUOTA_KEY_MAX];
	struct counter c;
	size_t i;

	if (limit_named(q, limit_name, &i, err, errlen) < 0)
		return -1;
	quota_norm_key(&quota_conf_of(q)->limits[i], key, nk, sizeof(nk));
	if (counter_get(q, i, nk, now_ms, &c, err, errlen) < 0)
		return -1;
	algo_set(c.run, &c.st, value, now_ms, c.pp);
	if (qs->ops->put(qs, c.rkey, &c.st, algo_expires(c.run, &c.st, c.pp),
	    err, errlen) < 0)
		return quota_store_failed(q, "set", err);
	return 0;
}

/* quota_used - see quota.h */
int
quota_used(struct quota *q, const char *limit_name,
    const struct quota_who *who, int64_t now_ms, uint64_t *used, char *err,
    size_t errlen)
{
	char key[QUOTA_KEY_MAX];
	struct counter c;
	size_t i;

	*used = 0;
	if (limit_named(q, limit_name, &i, err, errlen) < 0)
		return -1;
	if (quota_key(&quota_conf_of(q)->limits[i], who, key,
	    sizeof(key)) < 0)
		return 0;		/* no key for who: nothing counted */
	if (counter_get(q, i, key, now_ms, &c, err, errlen) < 0)
		return -1;
	if (c.found)
		*used = algo_used(c.run, &c.st, now_ms, c.pp);
	return 0;
}
