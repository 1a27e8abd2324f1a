/*
 * spf/spf_impl.h - what the files of the SPF checker (libspfcheck.a)
 * share; nothing outside them includes it.  The public contract is
 * spf/spf.h.
 *
 *	spf/spf.c	the checker (libspf2 server and our layer) and one
 *			evaluation per identity
 *	spf/dns.c	our DNS layer on top of libspf2's resolv (or zone)
 *			layer: lookup and void-lookup limits, the deadline,
 *			the record fetch
 *	spf/record.c	the RFC 7208 grammar check of a record and the
 *			normalized copy libspf2 compiles (pure)
 *	spf/zone.c	DNS data for tests and the RFC 7208 harness
 *			(spf_checker_zone_add)
 */
#ifndef OUTPOST_SPF_IMPL_H
#define OUTPOST_SPF_IMPL_H

#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stddef.h>
#include <time.h>

#include <spf2/spf.h>

#include "spf/spf.h"

#define PENDING_MAX 16		/* MX hosts / PTR names awaiting lookup */
#define PTR_MAX 10		/* PTR names looked at (RFC 7208 4.6.4) */

enum stop {
	STOP_NONE,
	STOP_LOOKUPS,		/* too many DNS-querying terms: permerror */
	STOP_VOID,		/* too many void lookups: permerror */
	STOP_DEADLINE,		/* out of time: temperror */
};

/* What the record fetch (get_spf) found for the check's own domain. */
enum fetch {
	FETCH_OK,
	FETCH_NONE,		/* no name, no TXT, no v=spf1 record */
	FETCH_TEMP,		/* DNS failure */
	FETCH_PERM,		/* several records, or one that won't compile */
};

/* Our DNS layer's state: per checker, reset for each check. */
struct layer {
	SPF_dns_server_t *below;
	unsigned int max_lookups;
	unsigned int max_void;
	unsigned int timeout_ms;
	/* zone mode: the names the zone has (lower case, no final dot) */
	char **names;
	size_t nnames;
	/* zone mode: names whose lookups are slow ("DELAY"; tests) */
	char token[20];		/* random, per checker: synthetic names */
	char delayed[4][SPF_NAME_MAX];
	unsigned int delay_ms[4];
	size_t ndelayed;

	/* per check */
	unsigned int lookups;
	unsigned int voids;
	unsigned int fetches;	/* get_spf calls */
	enum stop stop;
	int dns_failed;		/* some lookup answered TRY_AGAIN */
	enum fetch first;	/* outcome of the check's own record fetch */
	char why[SPF_TEXT_MAX];	/* our words for a permerror/temperror */
	struct timespec deadline;
	char pending[PENDING_MAX][SPF_NAME_MAX];
	size_t npending, ipending;
};

struct spf_checker {
	SPF_server_t *server;
	SPF_dns_server_t *top;	/* ours; server->resolver */
	SPF_dns_server_t *zone;	/* use_zone: libspf2's zone layer */
	struct layer *layer;
	struct spf_options opt;
};

/* spf/dns.c */

/*
 * spf_layer_new - our layer on top of below, per opt; *lp is its state.
 * The caller owns the returned layer: SPF_dns_free() frees it, its
 * state and every layer below.
 */
SPF_dns_server_t *spf_layer_new(const struct spf_options *opt,
    SPF_dns_server_t *below, struct layer **lp);
/* spf_layer_reset - a fresh count and deadline for one check */
void spf_layer_reset(struct layer *l);
/* spf_norm_name - lower case without a final dot, into buf; 0 or -1 */
int spf_norm_name(const char *name, char *buf, size_t len);
/* spf_zone_has_name - zone mode: does the zone know name (any type)? */
int spf_zone_has_name(const struct layer *l, const char *name);

/* spf/record.c */

/* spf_record_is_spf1 - does a TXT string start an SPF version 1 record? */
int spf_record_is_spf1(const char *txt);
/*
 * spf_record_check - check txt (one "v=spf1" record) against the RFC 7208
 * grammar and make the copy libspf2 compiles; the copy (caller frees) or
 * NULL with why filled.  token is the layer's (synthetic names).
 */
char *spf_record_check(const char *txt, int client_v6, const char *token,
    char *why, size_t whylen);

#endif /* OUTPOST_SPF_IMPL_H */
