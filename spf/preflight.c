/*
 * preflight - the outbound SPF decision (do our public sending addresses
 * pass for this sender's domain?) and a small per-domain cache of it.
 *
 * Pure code (no libspf2, no clock): the answers come from the SPF workers,
 * the time is passed in.  The cache is a bounded array searched linearly
 * (a few hundred domains at most in practice), under one mutex.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

struct spf_cache {
	pthread_mutex_t lock;
	struct cache_entry *entries;
	size_t n;
	size_t max;
};

/* spf_cache_new - an empty cache of at most max domains (spf_cache_free) */
struct spf_cache *
spf_cache_new(size_t max)
{
	struct spf_cache *c;

	c = xcalloc(1, sizeof(*c));
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	c->max = max;
	if (max > 0)
		c->entries = xcalloc(max, sizeof(*c->entries));
	return c;
}

/* spf_cache_free - release the cache; accepts NULL */
struct spf_cache *
spf_cache_free(struct spf_cache *c)
{
	if (c == NULL)
		return NULL;
	pthread_mutex_destroy(&c->lock);
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

/* spf_cache_get - 1 and *out filled when domain is cached and fresh */
int
spf_cache_get(struct spf_cache *c, const char *domain, int64_t now,
    struct spf_preflight *out)
{
	struct cache_entry *e;
	int hit = 0;

	if (c == NULL || domain == NULL)
		return 0;
	pthread_mutex_lock(&c->lock);
	if ((e = find(c, domain)) != NULL && now < e->expires &&
	    now >= e->stored) {
		*out = e->value;
		hit = 1;
	}
	pthread_mutex_unlock(&c->lock);
	return hit;
}

/* spf_cache_put - remember value for domain until now + ttl (a temperror
 * is not remembered; the oldest entry makes room when full) */
void
spf_cache_put(struct spf_cache *c, const char *domain, int64_t now,
    unsigned int ttl, const struct spf_preflight *value)
{
	struct cache_entry *e;
	size_t i;

	if (c == NULL || domain == NULL || c->max == 0 || ttl == 0 ||
	    value->worst == SPF_RES_TEMPERROR ||
	    strlen(domain) >= SPF_NAME_MAX)
		return;
	pthread_mutex_lock(&c->lock);
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
	pthread_mutex_unlock(&c->lock);
}
