/*
 * proto - incremental parser of Postfix policy delegation requests
 * (SMTPD_POLICY_README): "name=value" lines ended by an empty line.
 *
 * Pure: no I/O, no clock, no logging.  The caller feeds whatever bytes it
 * read, in pieces of any size; proto_feed() consumes up to the end of one
 * request and says so, leaving the rest (a pipelined next request) for the
 * next call:
 *
 *	while (len > 0) {
 *		st = proto_feed(p, data, len, &used, err, sizeof(err));
 *		data += used, len -= used;
 *		if (st == PROTO_ERROR)
 *			close_without_reply();
 *		if (st == PROTO_REQUEST)
 *			answer(proto_get(p, PA_PROTOCOL_STATE), ...);
 *	}
 *	at EOF: proto_eof() is -1 when a request was cut short.
 *
 * Lines end in LF or CRLF.  Limits (struct proto_limits) bound each line,
 * the number of attributes and the whole request; exceeding one, a line
 * without "=", an empty name, a NUL or another control character (TAB
 * excepted; CR only before LF) is an error, and the error is sticky.
 * An empty line with no attribute before it is an error too.
 *
 * Attributes: the names Postfix 2.1 to 3.8 sends are known (enum
 * proto_attr); unknown names are counted against the limits and ignored.
 * A name sent twice keeps the last value (SMTPD_POLICY_README allows the
 * first or the last).  Empty values are kept as "".  Values returned by
 * proto_get() belong to the parser and stay valid until the next
 * proto_feed() or proto_free().
 */
#ifndef OUTPOST_POLICY_PROTO_H
#define OUTPOST_POLICY_PROTO_H

#include <stddef.h>

enum proto_attr {
	PA_REQUEST,
	PA_PROTOCOL_STATE,
	PA_PROTOCOL_NAME,
	PA_HELO_NAME,
	PA_QUEUE_ID,
	PA_SENDER,
	PA_RECIPIENT,
	PA_RECIPIENT_COUNT,
	PA_CLIENT_ADDRESS,
	PA_CLIENT_NAME,
	PA_REVERSE_CLIENT_NAME,
	PA_INSTANCE,
	PA_SASL_METHOD,		/* 2.2 */
	PA_SASL_USERNAME,
	PA_SASL_SENDER,
	PA_SIZE,
	PA_CCERT_SUBJECT,
	PA_CCERT_ISSUER,
	PA_CCERT_FINGERPRINT,
	PA_ENCRYPTION_PROTOCOL,	/* 2.3 */
	PA_ENCRYPTION_CIPHER,
	PA_ENCRYPTION_KEYSIZE,
	PA_ETRN_DOMAIN,
	PA_STRESS,		/* 2.5 */
	PA_CCERT_PUBKEY_FINGERPRINT, /* 2.9 */
	PA_CLIENT_PORT,		/* 3.0 */
	PA_POLICY_CONTEXT,	/* 3.1 */
	PA_SERVER_ADDRESS,	/* 3.2 */
	PA_SERVER_PORT,
	PA_COMPATIBILITY_LEVEL,	/* 3.8 */
	PA_MAIL_VERSION,
	PA_COUNT
};

enum proto_status {
	PROTO_MORE,		/* all input used, request not complete */
	PROTO_REQUEST,		/* a request is complete: proto_get() */
	PROTO_ERROR,		/* malformed or oversized: close */
};

struct proto_limits {
	size_t line_max;	/* bytes of one line, without its end */
	size_t attrs_max;	/* attribute lines per request */
	size_t request_max;	/* bytes of one request, line ends included */
};

#define PROTO_LINE_MAX 2048
#define PROTO_ATTRS_MAX 100
#define PROTO_REQUEST_MAX 16384

struct proto;

/* proto_new - a parser; limits NULL means the PROTO_*_MAX defaults */
struct proto *proto_new(const struct proto_limits *);
struct proto *proto_free(struct proto *);

enum proto_status proto_feed(struct proto *, const void *data, size_t len,
    size_t *used, char *err, size_t errlen);
/* proto_eof - 0 when the input ended between requests, else -1 and err */
int proto_eof(const struct proto *, char *err, size_t errlen);
/* proto_pending - true when part of a request has been fed */
int proto_pending(const struct proto *);

/* proto_get - the value of a known attribute of the complete request */
const char *proto_get(const struct proto *, enum proto_attr);
/* proto_nattrs - attribute lines of the complete request (known or not) */
size_t proto_nattrs(const struct proto *);

const char *proto_attr_name(enum proto_attr);
/* proto_attr_lookup - the attribute called name[0..len), or -1 */
int proto_attr_lookup(const char *name, size_t len);

#endif
