/*
 * dkim/from - the author address of a From header value (RFC 5322 §3.4).
 *
 * from_parse() takes the raw header value (display names, quoted strings,
 * comments, angle brackets, folding, RFC 2047 words in the display name)
 * and copies the single mailbox's local part and domain into the caller's
 * buffers, lower-casing the domain.  It returns FROM_OK, or why the value
 * cannot be signed for: no address, several addresses, no domain.
 */
#ifndef OUTPOST_DKIM_FROM_H
#define OUTPOST_DKIM_FROM_H

#include <stddef.h>

enum from_result {
	FROM_OK,
	FROM_EMPTY,		/* no address */
	FROM_MULTIPLE,		/* a mailbox list */
	FROM_NO_DOMAIN,		/* "alice" or "alice@" */
	FROM_TOO_LONG,
};

#define FROM_LOCAL_MAX 256
#define FROM_DOMAIN_MAX 256

enum from_result from_parse(const char *value, size_t len, char *local,
    size_t locallen, char *domain, size_t domainlen);
const char *from_result_str(enum from_result);

#endif
