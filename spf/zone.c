/*
 * spf/zone.c - DNS data for a checker made with use_zone (tests, the
 * RFC 7208 harness): records into libspf2's zone layer, and the names
 * our layer then answers NODATA for.  See spf_checker_zone_add in
 * spf/spf.h.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_zone.h>

#include "spf/spf.h"
#include "spf/spf_impl.h"
#include "util/xmalloc.h"

/* rr_type - a type name to libspf2's ns_type; 0 when unknown */
static ns_type
rr_type(const char *type)
{
	static const struct {
		const char *name;
		ns_type type;
	} types[] = {
		{ "A", ns_t_a }, { "AAAA", ns_t_aaaa }, { "TXT", ns_t_txt },
		{ "MX", ns_t_mx }, { "PTR", ns_t_ptr }, { "SPF", ns_t_spf },
		{ "ANY", ns_t_any },
	};
	size_t i;

	if (type == NULL)
		return ns_t_any;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(type, types[i].name) == 0)
			return types[i].type;
	return ns_t_invalid;
}

/*
 * spf_checker_zone_add - a record in the zone (use_zone only): name,
 * type ("A", "AAAA", "TXT", "MX", "PTR", "SPF"; NULL or "ANY": every
 * type), data; data NULL with timeout set makes lookups of name (and
 * type) time out, data NULL without it makes name (type) not exist.
 */
int
spf_checker_zone_add(struct spf_checker *c, const char *name,
    const char *type, const char *data, int timeout, char *err,
    size_t errlen)
{
	struct layer *l = c->layer;
	char n[SPF_NAME_MAX];
	ns_type t;
	SPF_errcode_t e;

	if (c->zone == NULL) {
		(void)snprintf(err, errlen, "not a zone checker");
		return -1;
	}
	if (name == NULL || spf_norm_name(name, n, sizeof(n)) == -1 ||
	    n[0] == '\0') {
		(void)snprintf(err, errlen, "bad zone name");
		return -1;
	}
	if (type != NULL && strcasecmp(type, "DELAY") == 0) {
		/* a test aid: lookups of name take data milliseconds */
		if (data == NULL || l->ndelayed >= sizeof(l->delay_ms) /
		    sizeof(l->delay_ms[0])) {
			(void)snprintf(err, errlen, "bad or too many DELAY");
			return -1;
		}
		(void)snprintf(l->delayed[l->ndelayed],
		    sizeof(l->delayed[0]), "%s", n);
		l->delay_ms[l->ndelayed++] = (unsigned int)strtoul(data,
		    NULL, 10) % 10000;
		return 0;
	}
	if ((t = rr_type(type)) == ns_t_invalid) {
		(void)snprintf(err, errlen, "unknown record type %s", type);
		return -1;
	}
	if (t == ns_t_any && data != NULL) {
		(void)snprintf(err, errlen, "type ANY takes no data");
		return -1;
	}
	if (data == NULL)
		e = SPF_dns_zone_add_str(c->zone, n, t,
		    timeout ? TRY_AGAIN : (t == ns_t_any ? HOST_NOT_FOUND :
		    NO_DATA), NULL);
	else
		e = SPF_dns_zone_add_str(c->zone, n, t, NETDB_SUCCESS, data);
	if (e != SPF_E_SUCCESS) {
		(void)snprintf(err, errlen, "zone %s %s: %s", n,
		    type != NULL ? type : "ANY", SPF_strerror(e));
		return -1;
	}
	/* A name that exists (or times out) answers NODATA, not NXDOMAIN,
	 * for types it lacks. */
	if (data != NULL || timeout || t != ns_t_any) {
		if (!spf_zone_has_name(l, n)) {
			l->names = xreallocarray(l->names, l->nnames + 1,
			    sizeof(*l->names));
			l->names[l->nnames++] = xstrdup(n);
		}
	}
	return 0;
}

