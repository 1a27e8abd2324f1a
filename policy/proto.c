/*
 * proto - see proto.h.
 *
 * One buffer holds the request being read: the values of the known
 * attributes seen so far (NUL-terminated, offsets in val[]), then the
 * line being read.  A finished line is either kept (known name: its
 * value stays where it is) or dropped (unknown name: the buffer is cut
 * back), so the buffer never holds more than the limits allow.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/proto.h"
#include "util/buf.h"
#include "util/xmalloc.h"

static const char *const attr_names[PA_COUNT] = {
	"request", "protocol_state", "protocol_name", "helo_name",
	"queue_id", "sender", "recipient", "recipient_count",
	"client_address", "client_name", "reverse_client_name", "instance",
	"sasl_method", "sasl_username", "sasl_sender", "size",
	"ccert_subject", "ccert_issuer", "ccert_fingerprint",
	"encryption_protocol", "encryption_cipher", "encryption_keysize",
	"etrn_domain", "stress", "ccert_pubkey_fingerprint", "client_port",
	"policy_context", "server_address", "server_port",
	"compatibility_level", "mail_version",
};

enum pstate {
	PS_READING,		/* inside a request (or before one) */
	PS_DONE,		/* a request is complete */
	PS_ERROR,		/* sticky */
};

struct proto {
	struct proto_limits lim;
	enum pstate state;
	struct buf b;		/* kept values, then the current line */
	size_t line;		/* offset of the current line in b */
	int cr;			/* the current line ended in CR so far */
	size_t reqlen;		/* bytes of this request so far */
	size_t nattrs;
	long val[PA_COUNT];	/* offsets into b, -1: absent */
};

struct proto *
proto_new(const struct proto_limits *lim)
{
	struct proto *p = xcalloc(1, sizeof(*p));
	int i;

	if (lim != NULL)
		p->lim = *lim;
	else {
		p->lim.line_max = PROTO_LINE_MAX;
		p->lim.attrs_max = PROTO_ATTRS_MAX;
		p->lim.request_max = PROTO_REQUEST_MAX;
	}
	for (i = 0; i < PA_COUNT; i++)
		p->val[i] = -1;
	return p;
}

struct proto *
proto_free(struct proto *p)
{
	if (p == NULL)
		return NULL;
	buf_free(&p->b);
	free(p);
	return NULL;
}

/* proto_reset - forget the complete request, start the next one */
static void
proto_reset(struct proto *p)
{
	int i;

	buf_truncate(&p->b, 0);
	if (p->b.cap > 4096) {
		/* an idle connection keeps little memory */
		buf_free(&p->b);
	}
	p->line = 0;
	p->cr = 0;
	p->reqlen = 0;
	p->nattrs = 0;
	for (i = 0; i < PA_COUNT; i++)
		p->val[i] = -1;
	p->state = PS_READING;
}

/* perr - enter the error state with a reason */
static enum proto_status
perr(struct proto *p, char *err, size_t errlen, const char *why)
{
	p->state = PS_ERROR;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", why);
	return PROTO_ERROR;
}

int
proto_attr_lookup(const char *name, size_t len)
{
	int i;

	/* the first byte rules out most names (a request has ~25 lines) */
	for (i = 0; i < PA_COUNT; i++)
		if (len > 0 && attr_names[i][0] == name[0] &&
		    strncmp(attr_names[i], name, len) == 0 &&
		    attr_names[i][len] == '\0')
			return i;
	return -1;
}

const char *
proto_attr_name(enum proto_attr a)
{
	return (unsigned int)a < PA_COUNT ? attr_names[a] : "?";
}

/* end_line - the current line is complete (its end not in b) */
static enum proto_status
end_line(struct proto *p, char *err, size_t errlen)
{
	size_t len = p->b.len - p->line;
	char *line, *eq;
	int a;

	p->cr = 0;
	if (len == 0) {	/* b.data may still be NULL: no pointer made */
		if (p->nattrs == 0)
			return perr(p, err, errlen, "empty request");
		p->state = PS_DONE;
		return PROTO_REQUEST;
	}
	if (++p->nattrs > p->lim.attrs_max)
		return perr(p, err, errlen, "too many attributes");
	line = p->b.data + p->line;
	if ((eq = memchr(line, '=', len)) == NULL)
		return perr(p, err, errlen, "line without \"=\"");
	if (eq == line)
		return perr(p, err, errlen, "attribute without a name");
	a = proto_attr_lookup(line, (size_t)(eq - line));
	if (a < 0) {
		buf_truncate(&p->b, p->line);	/* unknown: ignored */
		return PROTO_MORE;
	}
	/* last value wins; the earlier one stays in b, unused */
	p->val[a] = (long)(p->line + (size_t)(eq - line) + 1);
	buf_appendc(&p->b, '\0');
	p->line = p->b.len;
	return PROTO_MORE;
}

enum proto_status
proto_feed(struct proto *p, const void *data, size_t len, size_t *used,
    char *err, size_t errlen)
{
	const unsigned char *d = data;
	enum proto_status st;
	size_t i, run;

	*used = 0;
	if (p->state == PS_ERROR)
		return perr(p, err, errlen, "earlier error");
	if (p->state == PS_DONE)
		proto_reset(p);
	for (i = 0; i < len; i++) {
		unsigned char c = d[i];

		if (++p->reqlen > p->lim.request_max) {
			*used = i + 1;
			return perr(p, err, errlen, "request too large");
		}
		if (c == '\n') {
			st = end_line(p, err, errlen);
			if (st != PROTO_MORE) {
				*used = i + 1;
				return st;
			}
			continue;
		}
		if (p->cr || c == '\0' || (c < 0x20 && c != '\t' &&
		    c != '\r') || c == 0x7f) {
			*used = i + 1;
			return perr(p, err, errlen, c == '\0' ? "NUL byte" :
			    p->cr ? "CR inside a line" : "control character");
		}
		if (c == '\r') {
			p->cr = 1;
			continue;
		}
		/* copy the run of plain bytes at once */
		for (run = i + 1; run < len && d[run] >= 0x20 &&
		    d[run] != 0x7f; run++)
			;
		if (p->b.len - p->line + (run - i) > p->lim.line_max ||
		    p->reqlen - 1 + (run - i) > p->lim.request_max) {
			*used = run;
			return perr(p, err, errlen, p->b.len - p->line +
			    (run - i) > p->lim.line_max ? "line too long" :
			    "request too large");
		}
		buf_append(&p->b, d + i, run - i);
		p->reqlen += run - i - 1;
		i = run - 1;
	}
	*used = len;
	return PROTO_MORE;
}

int
proto_eof(const struct proto *p, char *err, size_t errlen)
{
	if (p->state == PS_ERROR || proto_pending(p)) {
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%s", p->state == PS_ERROR ?
			    "malformed request" : "request without its "
			    "empty line at end of input");
		return -1;
	}
	return 0;
}

int
proto_pending(const struct proto *p)
{
	return p->state == PS_READING && p->reqlen > 0;
}

const char *
proto_get(const struct proto *p, enum proto_attr a)
{
	if (p->state != PS_DONE || (unsigned int)a >= PA_COUNT ||
	    p->val[a] < 0)
		return NULL;
	return p->b.data + p->val[a];
}

size_t
proto_nattrs(const struct proto *p)
{
	return p->state == PS_DONE ? p->nattrs : 0;
}
