/*
 * deliver_rules - the deliverability rules of outpost-milter
 * (deliverability.*, see outpost-milter(8)) as pure functions of the
 * header fields and of what DNS said, so that Check calls them directly;
 * milter/milter_deliver.c feeds them and applies the actions.
 *
 * Bulk mail (rules_bulk): a message with List-Id, List-Unsubscribe, or
 * Precedence: bulk|list.  It needs (RFC 8058, the mailbox providers'
 * published rules) List-Unsubscribe with an https: URI,
 * List-Unsubscribe-Post: List-Unsubscribe=One-Click, exactly one
 * syntactically valid Message-ID and Date (RFC 5322 3.6.4, 3.3), and a
 * From domain with a DMARC record (RULES_NO_DMARC, set by the caller).
 *
 * DMARC (rules_dmarc_*): the policy that applies to the From domain, and
 * whether the message as it leaves aligns: a signature we add whose d=
 * is aligned under adkim, or the envelope sender's domain aligned under
 * aspf when the SPF preflight passed for it (RFC 7489 3.1, 6.6.2).
 *
 * Nothing here allocates; strings are borrowed; texts are written into
 * the caller's buffers, truncated to fit.
 */
#ifndef OUTPOST_DELIVER_RULES_H
#define OUTPOST_DELIVER_RULES_H

#include <stddef.h>

#include "deliver/dmarc.h"

/* One header field as the MTA gave it (borrowed). */
struct rules_field {
	const char *name;
	const char *value;
};

/* What a bulk message lacks: bits of struct rules_bulk.missing. */
#define RULES_NO_HTTPS_UNSUB	0x01u	/* List-Unsubscribe <https:...> */
#define RULES_NO_ONE_CLICK	0x02u	/* List-Unsubscribe-Post */
#define RULES_BAD_MESSAGE_ID	0x04u	/* one valid Message-ID */
#define RULES_BAD_DATE		0x08u	/* one valid Date */
#define RULES_NO_DMARC		0x10u	/* the From domain has no record */

struct rules_bulk {
	int bulk;			/* its fields make it bulk */
	const char *why;		/* "list-id", "list-unsubscribe",
					 * "precedence", or "" */
	unsigned int missing;		/* RULES_* bits, bulk or not */
};

/* rules_bulk - do the fields make the message bulk, and what of the
 * rules does it miss (filled either way: the caller may count it bulk
 * for another reason; RULES_NO_DMARC is never set here) */
void rules_bulk(const struct rules_field *, size_t n, struct rules_bulk *);

/* rules_msgid_ok - a Message-ID value: "<left@right>" (RFC 5322 msg-id,
 * surrounding whitespace allowed)?  1 or 0 */
int rules_msgid_ok(const char *value);
/* rules_date_ok - a Date value: RFC 5322 date-time (obsolete zones and
 * a trailing comment allowed)?  1 or 0 */
int rules_date_ok(const char *value);
/* rules_unsub_https - a List-Unsubscribe value holding <https:...>? */
int rules_unsub_https(const char *value);
/* rules_one_click - List-Unsubscribe-Post: List-Unsubscribe=One-Click? */
int rules_one_click(const char *value);

/* rules_missing_names - "one-click,message-id" for header and log; "" for
 * none */
void rules_missing_names(unsigned int missing, char *buf, size_t len);
/* rules_missing_fix - what to add, for a reply: "add List-Unsubscribe-
 * Post: List-Unsubscribe=One-Click; ..."; domain names the From domain */
void rules_missing_fix(unsigned int missing, const char *domain, char *buf,
    size_t len);

/* How a message would pass DMARC, if at all. */
enum rules_align {
	RULES_ALIGN_NONE,		/* neither identifier aligns */
	RULES_ALIGN_DKIM,		/* a d= of ours, under adkim */
	RULES_ALIGN_SPF,		/* the envelope domain, under aspf */
};

/* rules_dmarc_policy - the policy of r for from: sp when the record came
 * from the organizational domain of a subdomain (r->where != from) */
enum dmarc_policy rules_dmarc_policy(const struct dmarc_record *r,
    const char *from);
/* rules_dmarc_align - does the message align?  dkim_d: the n d= of the
 * signatures we add; mailfrom: the envelope sender's domain (NULL for
 * the null sender); spf_pass: the SPF preflight passed for it */
enum rules_align rules_dmarc_align(const struct dmarc_record *r,
    const char *from, const char *const *dkim_d, size_t n,
    const char *mailfrom, int spf_pass);
/* rules_align_name - "none", "dkim" or "spf" */
const char *rules_align_name(enum rules_align);

#endif
