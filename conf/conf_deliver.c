/*
 * conf_deliver - the check of the deliverability section (the rows are
 * in conf_table.c; see outpost.conf(5), DELIVERABILITY): a recipient
 * threshold names a limit that counts recipients, whose counter for the
 * sender the milter reads.
 */
#include "config.h"

#include <libconfig.h>
#include <string.h>

#include "conf/conf_impl.h"

/* deliverability_check - bulk_recipients needs bulk_limit, a limit that
 * counts recipients */
int
deliverability_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;
	const char *name = c->deliverability.bulk_limit;
	size_t i;

	(void)p;
	if (c->deliverability.bulk_recipients == 0)
		return 0;
	if (name == NULL)
		return fail(ld, config_setting_get_member(g,
		    "bulk_recipients"), "\"deliverability.bulk_recipients\" "
		    "needs deliverability.bulk_limit, the limit that counts "
		    "a sender's recipients");
	for (i = 0; i < c->quota.nlimits; i++)
		if (strcmp(c->quota.limits[i].name, name) == 0)
			break;
	if (i == c->quota.nlimits)
		return fail(ld, config_setting_get_member(g, "bulk_limit"),
		    "\"deliverability.bulk_limit\" \"%s\" is no limit", name);
	if (c->quota.limits[i].count != CONF_QCOUNT_RECIPIENTS)
		return fail(ld, config_setting_get_member(g, "bulk_limit"),
		    "\"deliverability.bulk_limit\" \"%s\" does not count "
		    "recipients", name);
	return 0;
}
