/*
 * dmarc - a From domain's DMARC record, organizational domain and
 * identifier alignment (RFC 7489), for checks of mail before it leaves.
 *
 * dmarc_org_domain uses libpsl with Debian's publicsuffix data
 * (/usr/share/publicsuffix/public_suffix_list.dafsa, loaded once per
 * process; libpsl's built-in list if that file cannot be read).
 *
 * dmarc_lookup follows RFC 7489 6.6.3: the TXT records at
 * _dmarc.<from_domain>, those starting with "v=DMARC1" kept; none: the
 * same at _dmarc.<organizational domain>; more than one: no DMARC
 * (DMARC_ABSENT).  The record is parsed by libopendmarc
 * (opendmarc_policy_parse_dmarc, a policy context per call: no state is
 * shared between threads).  A record without a valid p= (or with an
 * invalid sp=) that has a rua= counts as p=none, as 6.6.3 step 6 says;
 * without rua= it is no record (libopendmarc stops at the first invalid
 * value: a rua= after it is not seen).  When the record came from the
 * organizational domain and from_domain is a subdomain of it, the policy
 * that applies is sp (which is p when the record has no sp=): compare
 * from_domain with where.  A DNS failure at either name is
 * DMARC_TEMPERROR, never DMARC_ABSENT.
 *
 * All functions are thread-safe.  Domains are compared without case and
 * without a final dot.
 */
#ifndef OUTPOST_DELIVER_DMARC_H
#define OUTPOST_DELIVER_DMARC_H

#include <stddef.h>

#include "deliver/dns.h"

enum dmarc_policy {
	DMARC_P_NONE,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT,
};

enum dmarc_found {
	DMARC_FOUND,
	DMARC_ABSENT,
	DMARC_TEMPERROR,
};

struct dmarc_record {
	enum dmarc_policy p, sp;	/* sp is p when the record has none */
	char adkim, aspf;		/* 'r' or 's' */
	char rua[512];			/* the URIs, comma-separated; "" none */
	char where[256];		/* domain whose _dmarc record applied */
};

/* dmarc_org_domain - the organizational domain of domain (lower case,
 * no final dot) into out; 0, or -1 when domain is a public suffix
 * itself or not a domain name */
int dmarc_org_domain(const char *domain, char *out, size_t outlen);

/* dmarc_parse - one DMARC record's text into *r (where left empty); 0,
 * or -1 and err when it is not a valid record */
int dmarc_parse(const char *record, struct dmarc_record *r, char *err,
    size_t errlen);

/* dmarc_lookup - the record that applies to from_domain; err says why
 * when not DMARC_FOUND */
enum dmarc_found dmarc_lookup(struct dns *d, const char *from_domain,
    struct dmarc_record *r, char *err, size_t errlen);

/* dmarc_aligned - 1 when other_domain is aligned with from_domain in
 * mode 's' (the same name) or 'r' (the same organizational domain),
 * else 0 */
int dmarc_aligned(const char *from_domain, const char *other_domain,
    char mode);

/* dmarc_policy_name - "none", "quarantine" or "reject" */
const char *dmarc_policy_name(enum dmarc_policy p);

#endif
