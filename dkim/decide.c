/*
 * dkim/decide - see decide.h.
 */
#include "config.h"

#include <string.h>

#include "dkim/decide.h"

const char *
dkim_trust_reason(const struct conf_trusted *tr,
    const struct dkim_decide_in *in)
{
	size_t i;

	if (tr->authenticated && in->auth_authen != NULL &&
	    in->auth_authen[0] != '\0')
		return "authenticated";
	if (in->client_addr != NULL && cidr_list_match(tr->networks,
	    tr->nnetworks, in->client_addr))
		return "trusted-network";
	if (in->daemon_name != NULL)
		for (i = 0; i < tr->ndaemon_names; i++)
			if (strcmp(tr->daemon_names[i],
			    in->daemon_name) == 0)
				return "trusted-daemon";
	return NULL;
}

void
dkim_decide(const struct conf_trusted *tr, const struct dkim_table *t,
    const struct dkim_decide_in *in, struct dkim_decision *d)
{
	enum from_result fr;

	memset(d, 0, sizeof(*d));
	if ((d->trust = dkim_trust_reason(tr, in)) == NULL) {
		d->reason = "not-trusted";
		return;
	}
	if (in->nfrom == 0) {
		d->malformed = 1;
		d->reason = "no-from";
		return;
	}
	if (in->nfrom > 1) {
		d->malformed = 1;
		d->reason = "several-from-fields";
		return;
	}
	fr = from_parse(in->from_value, in->from_len, d->local,
	    sizeof(d->local), d->domain, sizeof(d->domain));
	if (fr != FROM_OK) {
		d->malformed = 1;
		d->reason = from_result_str(fr);
		return;
	}
	d->nreq = dkim_table_lookup(t, d->local, d->domain, d->req,
	    DKIM_MAX_SIGS, &d->rule);
	if (d->nreq == 0) {
		d->reason = "no-signing-rule";
		return;
	}
	d->sign = 1;
	d->reason = d->trust;
}
