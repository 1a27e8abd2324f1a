/*
 * dkim/decide - whether and with which keys one message is signed.
 *
 * A pure function of the trusted section (struct conf_trusted), the
 * table and what the MTA told us about the client and the message; no
 * I/O, no clock, so the tests call it directly.  Mail is signed when
 * the client is trusted (SMTP AUTH with trusted.authenticated, an
 * address in trusted.networks, or a {daemon_name} listed in
 * trusted.daemon_names), the message has exactly one From address with
 * a domain, and a signing rule matches it.
 * Otherwise reason says why not, in a word fit for a log line.
 */
#ifndef OUTPOST_DKIM_DECIDE_H
#define OUTPOST_DKIM_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_dkim.h"
#include "dkim/from.h"
#include "dkim/sign.h"
#include "dkim/table.h"

struct dkim_decide_in {
	const char *auth_authen;	/* {auth_authen}, NULL or "" if none */
	const uint8_t *client_addr;	/* 16 bytes (mapped v4), or NULL */
	const char *daemon_name;	/* {daemon_name}, or NULL */
	unsigned int nfrom;		/* From header fields seen */
	const char *from_value;		/* the (first) From value */
	size_t from_len;
};

struct dkim_decision {
	int sign;
	int malformed;			/* not signed: bad From */
	const char *reason;		/* "authenticated", "not-trusted"... */
	const char *trust;		/* why trusted: "auth", "network"... */
	const char *rule;		/* the rule that matched */
	char local[FROM_LOCAL_MAX];
	char domain[FROM_DOMAIN_MAX];	/* requests may point here */
	size_t nreq;
	struct dkim_sign_req req[DKIM_MAX_SIGS];
};

/* dkim_trust_reason - why the client may have mail signed, or NULL;
 * only auth_authen, client_addr and daemon_name of in are used */
const char *dkim_trust_reason(const struct conf_trusted *,
    const struct dkim_decide_in *);

void dkim_decide(const struct conf_trusted *, const struct dkim_table *,
    const struct dkim_decide_in *, struct dkim_decision *);

#endif
