/*
 * conf_spf - the spf section of the config: the worker pool that runs
 * libspf2, the inbound check and the outbound preflight (see conf.h for
 * the fields, outpost.conf(5) for the settings).
 *
 * Addresses in spf.outbound.addresses are checked for form here (IPv4 or
 * IPv6, no prefix); the worker evaluates them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <libconfig.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_impl.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#ifndef LIBEXECDIR
#define LIBEXECDIR "/usr/lib/outpost"
#endif

static const char *const actions[] = { "accept", "warn", "reject",
	"tempfail", NULL };

const char *
conf_spf_action_name(enum conf_spf_action a)
{
	return actions[a];
}

/* spf_defaults - the settings of an absent spf section */
static void
spf_defaults(struct conf *c)
{
	c->spf.workers = 2;
	c->spf.max_workers = 16;
	c->spf.user = xstrdup("nobody");
	c->spf.worker = xstrdup(LIBEXECDIR "/outpost-spf-worker");
	c->spf.timeout_ms = 20000;
	c->spf.memory = 256ULL << 20;
	c->spf.max_dns_lookups = 10;
	c->spf.max_void_lookups = 2;
	c->spf.inbound.fail = CONF_SPF_REJECT;
	c->spf.inbound.softfail = CONF_SPF_ACCEPT;
	c->spf.inbound.temperror = CONF_SPF_TEMPFAIL;
	c->spf.inbound.permerror = CONF_SPF_ACCEPT;
	c->spf.inbound.max_per_client = 4;
	c->spf.inbound.max_per_domain = 8;
	c->spf.outbound.action = CONF_SPF_WARN;
	c->spf.outbound.cache_ttl = 600;
}

void
conf_spf_free(struct conf *c)
{
	free(c->spf.user);
	free(c->spf.worker);
	free(c->spf.inbound.receiver);
	free_strings(c->spf.outbound.addresses, c->spf.outbound.naddresses);
	free(c->spf.outbound.publish);
	memset(&c->spf, 0, sizeof(c->spf));
}

/* get_action - one per-result action member, limited to allowed[] */
static int
get_action(struct loader *ld, const config_setting_t *g, const char *name,
    const int *allowed, enum conf_spf_action *out)
{
	int a = (int)*out, i;

	if (get_enum(ld, g, name, actions, &a) < 0)
		return -1;
	for (i = 0; allowed[i] >= 0; i++)
		if (allowed[i] == a) {
			*out = (enum conf_spf_action)a;
			return 0;
		}
	return fail(ld, config_setting_get_member(g, name),
	    "\"%s\": \"%s\" is not allowed here", name, actions[a]);
}

/* load_inbound - spf.inbound */
static int
load_inbound(struct loader *ld, const config_setting_t *spf, struct conf *c)
{
	static const char *const known[] = { "enabled", "receiver",
		"allow_loopback", "fail", "softfail", "temperror",
		"permerror", "max_per_client", "max_per_domain", NULL };
	static const int any[] = { CONF_SPF_ACCEPT, CONF_SPF_REJECT,
		CONF_SPF_TEMPFAIL, -1 };
	config_setting_t *g = config_setting_get_member(spf, "inbound");

	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return fail(ld, g, "\"spf.inbound\" must be a group { ... }");
	return check_names(ld, g, "spf.inbound.", known) < 0 ||
	    get_bool(ld, g, "enabled", &c->spf.inbound.enabled) < 0 ||
	    get_string(ld, g, "receiver", &c->spf.inbound.receiver) < 0 ||
	    get_bool(ld, g, "allow_loopback",
	    &c->spf.inbound.allow_loopback) < 0 ||
	    get_action(ld, g, "fail", any, &c->spf.inbound.fail) < 0 ||
	    get_action(ld, g, "softfail", any, &c->spf.inbound.softfail) < 0 ||
	    get_action(ld, g, "temperror", any,
	    &c->spf.inbound.temperror) < 0 ||
	    get_action(ld, g, "permerror", any,
	    &c->spf.inbound.permerror) < 0 ||
	    get_uint(ld, g, "max_per_client", 0, 1024, 0,
	    &c->spf.inbound.max_per_client) < 0 ||
	    get_uint(ld, g, "max_per_domain", 0, 1024, 0,
	    &c->spf.inbound.max_per_domain) < 0 ? -1 : 0;
}

/* load_outbound - spf.outbound */
static int
load_outbound(struct loader *ld, const config_setting_t *spf,
    struct conf *c)
{
	static const char *const known[] = { "enabled", "addresses",
		"action", "publish", "cache_ttl", NULL };
	static const int allowed[] = { CONF_SPF_WARN, CONF_SPF_REJECT, -1 };
	config_setting_t *g = config_setting_get_member(spf, "outbound");
	unsigned char a[sizeof(struct in6_addr)];
	size_t i;

	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return fail(ld, g, "\"spf.outbound\" must be a group { ... }");
	if (check_names(ld, g, "spf.outbound.", known) < 0 ||
	    get_bool(ld, g, "enabled", &c->spf.outbound.enabled) < 0 ||
	    get_strings(ld, g, "addresses", &c->spf.outbound.addresses,
	    &c->spf.outbound.naddresses) < 0 ||
	    get_action(ld, g, "action", allowed, &c->spf.outbound.action) < 0 ||
	    get_string(ld, g, "publish", &c->spf.outbound.publish) < 0 ||
	    get_uint(ld, g, "cache_ttl", 0, 86400, 1,
	    &c->spf.outbound.cache_ttl) < 0)
		return -1;
	for (i = 0; i < c->spf.outbound.naddresses; i++)
		if (inet_pton(AF_INET, c->spf.outbound.addresses[i], a) != 1 &&
		    inet_pton(AF_INET6, c->spf.outbound.addresses[i], a) != 1)
			return fail(ld, config_setting_get_member(g,
			    "addresses"), "spf.outbound.addresses: \"%s\" is "
			    "not an IPv4 or IPv6 address",
			    c->spf.outbound.addresses[i]);
	if (c->spf.outbound.enabled && c->spf.outbound.naddresses == 0)
		return fail(ld, g, "spf.outbound is enabled but "
		    "spf.outbound.addresses is empty");
	return 0;
}

int
load_spf(struct loader *ld, config_t *cf, struct conf *c)
{
	static const char *const known[] = { "workers", "max_workers",
		"user", "worker", "timeout", "memory", "max_dns_lookups",
		"max_void_lookups", "inbound", "outbound", NULL };
	config_setting_t *g = config_lookup(cf, "spf");
	unsigned int timeout;

	spf_defaults(c);
	timeout = c->spf.timeout_ms / 1000;
	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return fail(ld, g, "\"spf\" must be a group { ... }");
	if (check_names(ld, g, "spf.", known) < 0 ||
	    get_uint(ld, g, "workers", 1, 64, 0, &c->spf.workers) < 0 ||
	    get_uint(ld, g, "max_workers", 1, 256, 0,
	    &c->spf.max_workers) < 0 ||
	    get_string(ld, g, "user", &c->spf.user) < 0 ||
	    get_string(ld, g, "worker", &c->spf.worker) < 0 ||
	    get_uint(ld, g, "timeout", 1, 600, 1, &timeout) < 0 ||
	    get_u64(ld, g, "memory", 16ULL << 20, 1ULL << 40, parse_size,
	    &c->spf.memory) < 0 ||
	    get_uint(ld, g, "max_dns_lookups", 1, 100, 0,
	    &c->spf.max_dns_lookups) < 0 ||
	    get_uint(ld, g, "max_void_lookups", 0, 100, 0,
	    &c->spf.max_void_lookups) < 0 ||
	    load_inbound(ld, g, c) < 0 || load_outbound(ld, g, c) < 0)
		return -1;
	c->spf.timeout_ms = timeout * 1000;
	if (c->spf.max_workers < c->spf.workers) {
		if (config_setting_get_member(g, "max_workers") != NULL)
			return fail(ld, config_setting_get_member(g,
			    "max_workers"), "\"spf.max_workers\" must be at "
			    "least spf.workers (%u)", c->spf.workers);
		c->spf.max_workers = c->spf.workers;
	}
	if (c->spf.worker[0] != '/')
		return fail(ld, config_setting_get_member(g, "worker"),
		    "\"spf.worker\" must be an absolute path");
	return 0;
}
