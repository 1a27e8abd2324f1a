/*
 * preflight - the outbound SPF decision (do our public sending addresses
 * pass for this sender's domain?) and a small per-domain cache of it.
 *
 * Pure code (no libspf2, no clock): the answers come from the SPF workers,
 * the time is passed in.  The cache is a bounded array searched linearly
 * (a few hundred domains at most in practice), under one mutex.  The
 * domains being checked now (single flight, spf_cache_claim) are a short
 * list of flight records under the same mutex, each with a condition
 * variable on CLOCK_MONOTONIC that its waiters sleep on; a record lives
 * while it is listed (claimed) or a waiter still holds it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "spf/spf.h"
#include "util/xmalloc.h"

/* severity - how bad a result is for the preflight (higher decides) */
static int
severity(enum spf_result r)
{
	switch (r) {
	case SPF_RES_PASS:
		return 0;
	case SPF_RES_NEUTRAL:
		return 1;
	case SPF_RES_NONE:
		return 2;
	case SPF_RES_SOFTFAIL:
		return 3;
	case SPF_RES_FAIL:
		return 4;
	case SPF_RES_PERMERROR:
		return 5;
	case SPF_RES_TEMPERROR:
		return 6;
	}
	return 6;
}

/* append - snprintf at the end of buf; 0, or -1 when truncated */
static int
append(char *buf, size_t len, const char *fmt, const char *a, const char *b)
{
	size_t used = strlen(buf);
	int n;

	if (used >= len)
		return -1;
	n = snprintf(buf + used, len - used, fmt, a, b);
	if (n < 0 || (size_t)n >= len - used)
		return -1;
	return 0;
}

/* advice - what to publish: config's text, or our addresses as terms */
static void
advice(const char *const *addresses, size_t n, const char *publish,
    char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	if (publish != NULL && *publish != '\0') {
		(void)snprintf(buf, len, "%s", publish);
		return;
	}
	for (i = 0; i < n; i++) {
		if (append(buf, len, "%s%s", i > 0 ? " " : "",
		    strchr(addresses[i], ':') != NULL ? "ip6:" : "ip4:") == -1 ||
		    append(buf, len, "%s%s", addresses[i], "") == -1)
			return;
	}
}

/*
 * spf_preflight_decide - one answer per address (in config order): does
 * the domain authorize every one of our addresses?  Fills out with the
 * header value and, when not, the reply text naming the domain and what
 * to publish.
 */
void
spf_preflight_decide(const char *domain, const char *const *addresses,
    const struct spf_answer *answers, size_t n, const char *publish,
    struct spf_preflight *out)
{
	char what[256], detail[256];
	size_t i, worst_i = 0;
	const char *name;

	memset(out, 0, sizeof(*out));
	if (domain == NULL || *domain == '\0')
		domain = "(none)";
	out->worst = n > 0 ? SPF_RES_PASS : SPF_RES_NONE;
	for (i = 0; i < n; i++) {
		if (severity(answers[i].result) > severity(out->worst)) {
			out->worst = answers[i].result;
			worst_i = i;
		}
	}
	out->authorized = n > 0 && out->worst == SPF_RES_PASS;
	name = spf_result_name(out->worst);

	/* Header: "fail domain=example.com; 192.0.2.1=fail 2001:db8::1=pass" */
	(void)snprintf(out->header, sizeof(out->header), "%s domain=%s;",
	    name, domain);
	for (i = 0; i < n; i++)
		if (append(out->header, sizeof(out->header), " %s=%s",
		    addresses[i], spf_result_name(answers[i].result)) == -1)
			break;

	if (out->authorized)
		return;
	advice(addresses, n, publish, what, sizeof(what));
	detail[0] = '\0';
	if (n > 0)
		(void)snprintf(detail, sizeof(detail), "%s for %s%s%s",
		    name, addresses[worst_i],
		    answers[worst_i].text[0] != '\0' ? ": " : "",
		    answers[worst_i].text);
	switch (out->worst) {
	case SPF_RES_NONE:
		(void)snprintf(out->reply, sizeof(out->reply),
		    "Domain %s publishes no SPF record; publish "
		    "\"v=spf1 %s ~all\" in its DNS", domain, what);
		break;
	case SPF_RES_TEMPERROR:
		(void)snprintf(out->reply, sizeof(out->reply),
		    "SPF check of domain %s failed temporarily (%s); "
		    "try again later", domain, detail);
		break;
	case SPF_RES_PERMERROR:
		(void)snprintf(out->reply, sizeof(out->reply),
		    "SPF record of domain %s is broken (%s); fix it and "
		    "make sure it contains %s", domain, detail, what);
		break;
	default:
		(void)snprintf(out->reply, sizeof(out->reply),
		    "SPF record of domain %s does not authorize this server "
		    "(%s); add %s to it", domain, detail, what);
		break;
	}
}

struct cache_entry {
	char domain[SPF_NAME_MAX];
	int64_t stored;
	int64_t expires;
	struct spf_preflight value;
};

enum flight_state {
	FLIGHT_RUNNING,			/* its claimer is checking */
	FLIGHT_DONE,			/* value is the result */
	FLIGHT_ABANDONED,		/* no result: claim it again */
};

/* One domain being checked (spf_cache_claim). */
struct flight {
	struct flight *next;		/* list of running flights */
	char domain[SPF_NAME_MAX];
	enum flight_state state;
	unsigned int refs;		/* 1 while listed, +1 per waiter */
	pthread_cond_t changed;		/* state left RUNNING */
	struct spf_preflight value;	/* FLIGHT_DONE only */
};

struct spf_cache {
	pthread_mutex_t lock;
	pthread_condattr_t cattr;	/* CLOCK_MONOTONIC, for flights */
	struct cache_entry *entries;
	size_t n;
	size_t max;
	struct flight *flights;		/* running, one per domain */
	size_t nflights;
};

/* spf_cache_new - an empty cache of at most max domains (spf_cache_free) */
struct spf_cache *
spf_cache_new(size_t max)
{
	struct spf_cache *c;

	c = xcalloc(1, sizeof(*c));
	if (pthread_condattr_init(&c->cattr) != 0) {
		free(c);
		return NULL;
	}
	if (pthread_condattr_setclock(&c->cattr, CLOCK_MONOTONIC) != 0 ||
	    pthread_mutex_init(&c->lock, NULL) != 0) {
		pthread_condattr_destroy(&c->cattr);
		free(c);
		return NULL;
	}
	c->max = max;
	if (max > 0)
		c->entries = xcalloc(max, sizeof(*c->entries));
	return c;
}

/* flight_release - drop one reference to f (lock held); the last one
 * (f no longer listed) frees it */
static void
flight_release(struct flight *f)
{
	if (--f->refs > 0)
		return;
	pthread_cond_destroy(&f->changed);
	free(f);
}

/* spf_cache_free - release the cache (no thread may use it); accepts NULL */
struct spf_cache *
spf_cache_free(struct spf_cache *c)
{
	struct flight *f;

	if (c == NULL)
		return NULL;
	while ((f = c->flights) != NULL) {	/* claims never ended */
		c->flights = f->next;
		pthread_cond_destroy(&f->changed);
		free(f);
	}
	pthread_mutex_destroy(&c->lock);
	pthread_condattr_destroy(&c->cattr);
	free(c->entries);
	free(c);
	return NULL;
}

/* find - the entry for domain, or NULL (lock held) */
static struct cache_entry *
find(struct spf_cache *c, const char *domain)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcasecmp(c->entries[i].domain, domain) == 0)
			return &c->entries[i];
	return NULL;
}

/* lookup - 1 and *out filled when domain is cached and fresh (lock held) */
static int
lookup(struct spf_cache *c, const char *domain, int64_t now,
    struct spf_preflight *out)
{
	struct cache_entry *e;

	if ((e = find(c, domain)) == NULL || now >= e->expires ||
	    now < e->stored)
		return 0;
	*out = e->value;
	return 1;
}

/* spf_cache_get - 1 and *out filled when domain is cached and fresh */
int
spf_cache_get(struct spf_cache *c, const char *domain, int64_t now,
    struct spf_preflight *out)
{
	int hit;

	if (c == NULL || domain == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	hit = lookup(c, domain, now, out);
	pthread_mutex_unlock(&c->lock);
	return hit;
}

/* flight_find - the running flight for domain, or NULL (lock held) */
static struct flight *
flight_find(struct spf_cache *c, const char *domain)
{
	struct flight *f;

	for (f = c->flights; f != NULL; f = f->next)
		if (strcasecmp(f->domain, domain) == 0)
			return f;
	return NULL;
}

/* flight_end - f leaves the list in state (DONE: value is the result),
 * its waiters wake (lock held) */
static void
flight_end(struct spf_cache *c, struct flight *f, enum flight_state state,
    const struct spf_preflight *value)
{
	struct flight **pp;

	for (pp = &c->flights; *pp != f; pp = &(*pp)->next)
		;
	*pp = f->next;
	c->nflights--;
	f->state = state;
	if (value != NULL)
		f->value = *value;
	pthread_cond_broadcast(&f->changed);
	flight_release(f);
}

/* store - keep value for domain until now + ttl; the oldest entry, or
 * an expired one, makes room when full (lock held) */
static void
store(struct spf_cache *c, const char *domain, int64_t now,
    unsigned int ttl, const struct spf_preflight *value)
{
	struct cache_entry *e;
	size_t i;

	if ((e = find(c, domain)) == NULL) {
		if (c->n < c->max)
			e = &c->entries[c->n++];
		else {
			/* Full: drop an expired entry, else the oldest. */
			e = &c->entries[0];
			for (i = 1; i < c->n; i++) {
				if (e->expires <= now)
					break;
				if (c->entries[i].expires <= now ||
				    c->entries[i].stored < e->stored)
					e = &c->entries[i];
			}
		}
		(void)snprintf(e->domain, sizeof(e->domain), "%s", domain);
	}
	e->stored = now;
	e->expires = now + (int64_t)ttl;
	e->value = *value;
}

/*
 * spf_cache_put - remember value for domain until now + ttl (a temperror
 * for min(ttl, SPF_CACHE_TEMPERROR_TTL)); hand it to the threads waiting
 * for the domain's flight, which ends
 */
void
spf_cache_put(struct spf_cache *c, const char *domain, int64_t now,
    unsigned int ttl, const struct spf_preflight *value)
{
	struct flight *f;

	if (c == NULL || domain == NULL || value == NULL ||
	    strlen(domain) >= SPF_NAME_MAX)
		return;
	if (value->worst == SPF_RES_TEMPERROR && ttl > SPF_CACHE_TEMPERROR_TTL)
		ttl = SPF_CACHE_TEMPERROR_TTL;
	pthread_mutex_lock(&c->lock);
	if (c->max > 0 && ttl > 0)
		store(c, domain, now, ttl, value);
	if ((f = flight_find(c, domain)) != NULL)
		flight_end(c, f, FLIGHT_DONE, value);
	pthread_mutex_unlock(&c->lock);
}

/* spf_cache_abandon - the claimer of domain ends without a result; a
 * waiter claims next */
void
spf_cache_abandon(struct spf_cache *c, const char *domain)
{
	struct flight *f;

	if (c == NULL || domain == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	if ((f = flight_find(c, domain)) != NULL)
		flight_end(c, f, FLIGHT_ABANDONED, NULL);
	pthread_mutex_unlock(&c->lock);
}

/* flight_start - list a new running flight for domain (lock held) */
static void
flight_start(struct spf_cache *c, const char *domain)
{
	struct flight *f;

	f = xcalloc(1, sizeof(*f));
	if (pthread_cond_init(&f->changed, &c->cattr) != 0) {
		free(f);		/* no single flight: the claimer */
		return;			/* checks alone, as before */
	}
	(void)snprintf(f->domain, sizeof(f->domain), "%s", domain);
	f->state = FLIGHT_RUNNING;
	f->refs = 1;
	f->next = c->flights;
	c->flights = f;
	c->nflights++;
}

/*
 * spf_cache_claim - the cached result (HIT), the result of the thread
 * that checks domain now (SHARED, waiting for it until wait_deadline_ms
 * on CLOCK_MONOTONIC), or the claim to check it (CLAIMED)
 */
enum spf_claim
spf_cache_claim(struct spf_cache *c, const char *domain, int64_t now,
    int64_t wait_deadline_ms, struct spf_preflight *out)
{
	struct timespec until;
	struct flight *f;
	enum flight_state state;
	enum spf_claim r;
	int late = 0;

	if (c == NULL || domain == NULL || out == NULL ||
	    strlen(domain) >= SPF_NAME_MAX)
		return SPF_CLAIM_CLAIMED;
	if (wait_deadline_ms < 0)
		wait_deadline_ms = 0;
	until.tv_sec = (time_t)(wait_deadline_ms / 1000);
	until.tv_nsec = (long)(wait_deadline_ms % 1000) * 1000000L;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (lookup(c, domain, now, out)) {
			r = SPF_CLAIM_HIT;
			break;
		}
		if ((f = flight_find(c, domain)) == NULL) {
			flight_start(c, domain);
			r = SPF_CLAIM_CLAIMED;
			break;
		}
		if (late) {		/* waited long enough: check alone */
			r = SPF_CLAIM_CLAIMED;
			break;
		}
		f->refs++;		/* keeps f while we sleep */
		/* ETIMEDOUT (or any error): stop waiting */
		while (f->state == FLIGHT_RUNNING && !late)
			if (pthread_cond_timedwait(&f->changed, &c->lock,
			    &until) != 0)
				late = 1;
		state = f->state;
		if (state == FLIGHT_DONE)
			*out = f->value;
		flight_release(f);
		if (state == FLIGHT_DONE) {
			r = SPF_CLAIM_SHARED;
			break;
		}
		/* Abandoned, or still running and we are late: look again
		 * (another waiter may have claimed it meanwhile). */
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* spf_cache_inflight - the number of domains claimed now */
size_t
spf_cache_inflight(struct spf_cache *c)
{
	size_t n;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	n = c->nflights;
	pthread_mutex_unlock(&c->lock);
	return n;
}
