/*
 * conf_spf - the checks of the spf section: the worker pool that runs
 * libspf2, the inbound check and the outbound preflight (the rows are in
 * conf_table.c; see outpost.conf(5) for the settings).
 *
 * Addresses in spf.outbound.addresses are checked for form here (IPv4 or
 * IPv6, no prefix); the worker evaluates them.
 */
#include "config.h"

#include <arpa/inet.h>
#include <libconfig.h>
#include <netinet/in.h>

#include "conf/conf_impl.h"

const char *
conf_spf_action_name(enum conf_spf_action a)
{
	return conf_spf_action_names[a];
}

/* spf_worker_check - spf.worker is an absolute path */
int
spf_worker_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;

	(void)p;
	if (c->spf.worker[0] != '/')
		return fail(ld, config_setting_get_member(g, "worker"),
		    "\"spf.worker\" must be an absolute path");
	return 0;
}

/* spf_addresses_check - spf.outbound.addresses are IPv4 or IPv6 */
int
spf_addresses_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;
	unsigned char a[sizeof(struct in6_addr)];
	size_t i;

	(void)p;
	for (i = 0; i < c->spf.outbound.naddresses; i++)
		if (inet_pton(AF_INET, c->spf.outbound.addresses[i], a) != 1 &&
		    inet_pton(AF_INET6, c->spf.outbound.addresses[i], a) != 1)
			return fail(ld, config_setting_get_member(g,
			    "addresses"), "spf.outbound.addresses: \"%s\" is "
			    "not an IPv4 or IPv6 address",
			    c->spf.outbound.addresses[i]);
	return 0;
}

/* spf_outbound_check - an enabled preflight has addresses to check */
int
spf_outbound_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;

	(void)p;
	if (c->spf.outbound.enabled && c->spf.outbound.naddresses == 0)
		return fail(ld, g, "spf.outbound is enabled but "
		    "spf.outbound.addresses is empty");
	return 0;
}

/*
 * spf_check - max_workers is at least workers: an error when given,
 * raised to workers when not
 */
int
spf_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;

	(void)p;
	if (c->spf.max_workers >= c->spf.workers)
		return 0;
	if (config_setting_get_member(g, "max_workers") != NULL)
		return fail(ld, config_setting_get_member(g, "max_workers"),
		    "\"spf.max_workers\" must be at least spf.workers (%u)",
		    c->spf.workers);
	c->spf.max_workers = c->spf.workers;
	return 0;
}
