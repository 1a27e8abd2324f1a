/*
 * header - Received-SPF (RFC 7208 9.1) and Authentication-Results (RFC
 * 8601) values for an SPF answer, in our own words.
 *
 * Pure code (no libspf2): the milter calls it.  Every string that came
 * from the peer (HELO, sender) is made safe before it goes into a header:
 * inside a comment '(' ')' '"' '\' are escaped, inside a quoted-string '"'
 * and '\' are; control and non-ASCII bytes become '?'.  Values are
 * folded at 78 columns with "\n\t" (libmilter's convention), never
 * inside a quoted-string.
 */
#include <stdio.h>
#include <string.h>

#include "spf/spf.h"

#define FOLD_AT 78

/* A bounded string under construction; len reaches cap on overflow. */
struct out {
	char *buf;
	size_t cap;
	size_t len;
	int overflow;
};

/* out_char - append one byte */
static void
out_char(struct out *o, char c)
{
	if (o->len + 1 >= o->cap) {
		o->overflow = 1;
		return;
	}
	o->buf[o->len++] = c;
	o->buf[o->len] = '\0';
}

/* out_str - append a trusted string (ours) */
static void
out_str(struct out *o, const char *s)
{
	while (*s != '\0')
		out_char(o, *s++);
}

/* safe_byte - a peer byte as printable ASCII ('?' otherwise) */
static char
safe_byte(unsigned char c)
{
	if (c < 0x21 || c > 0x7e)
		return c == ' ' ? ' ' : '?';
	return (char)c;
}

/* out_comment_text - append peer text for use inside a comment */
static void
out_comment_text(struct out *o, const char *s)
{
	char c;

	for (; *s != '\0'; s++) {
		c = safe_byte((unsigned char)*s);
		if (c == '(' || c == ')' || c == '\\' || c == '"')
			out_char(o, '\\');
		out_char(o, c);
	}
}

/* is_atext - RFC 5322 atext */
static int
is_atext(char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* is_dot_atom - RFC 5322 dot-atom-text (no empty atoms) */
static int
is_dot_atom(const char *s)
{
	int atom = 0;

	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (atom == 0)
				return 0;
			atom = 0;
		} else if (is_atext(*s))
			atom++;
		else
			return 0;
	}
	return atom > 0;
}

/* out_value - append a value: as is when a dot-atom, else quoted */
static void
out_value(struct out *o, const char *s)
{
	char c;

	if (is_dot_atom(s)) {
		out_str(o, s);
		return;
	}
	out_char(o, '"');
	for (; *s != '\0'; s++) {
		c = safe_byte((unsigned char)*s);
		if (c == '"' || c == '\\')
			out_char(o, '\\');
		out_char(o, c);
	}
	out_char(o, '"');
}

/* is_address_value - local@domain fit for an RFC 8601 pvalue unquoted */
static int
is_address_value(const char *s)
{
	const char *at;
	char local[SPF_NAME_MAX];
	size_t n;

	if ((at = strrchr(s, '@')) == NULL)
		return is_dot_atom(s);
	n = (size_t)(at - s);
	if (n >= sizeof(local))
		return 0;
	memcpy(local, s, n);
	local[n] = '\0';
	return (n == 0 || is_dot_atom(local)) && is_dot_atom(at + 1);
}

/*
 * fold - copy the one-line text into buf, breaking at spaces outside
 * quoted-strings so no line passes FOLD_AT columns where it can be
 * helped; col is where the value starts (after "Name: ").  0 or -1.
 */
static int
fold(const char *text, size_t col, char *buf, size_t len)
{
	struct out o = { buf, len, 0, 0 };
	const char *p, *tok;
	size_t toklen, i;
	int quoted, first = 1;

	if (len == 0)
		return -1;
	buf[0] = '\0';
	p = text;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		/* One token: up to a space outside quotes. */
		tok = p;
		quoted = 0;
		while (*p != '\0' && (quoted || *p != ' ')) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				quoted = !quoted;
			p++;
		}
		toklen = (size_t)(p - tok);
		if (!first) {
			if (col + 1 + toklen > FOLD_AT) {
				out_str(&o, "\n\t");
				col = 8;
			} else {
				out_char(&o, ' ');
				col++;
			}
		}
		for (i = 0; i < toklen; i++)
			out_char(&o, tok[i]);
		col += toklen;
		first = 0;
	}
	return o.overflow ? -1 : 0;
}

/* spf_result_name - "pass", "fail", ... (RFC 7208 section 2.6) */
const char *
spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_RES_NONE:
		return "none";
	case SPF_RES_NEUTRAL:
		return "neutral";
	case SPF_RES_PASS:
		return "pass";
	case SPF_RES_FAIL:
		return "fail";
	case SPF_RES_SOFTFAIL:
		return "softfail";
	case SPF_RES_TEMPERROR:
		return "temperror";
	case SPF_RES_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

/* checked_sender - the mailbox the MAIL FROM identity stood for */
static void
checked_sender(const struct spf_query *q, char *buf, size_t len)
{
	const char *s = q->sender != NULL ? q->sender : "";
	const char *helo = q->helo != NULL ? q->helo : "";

	if (*s == '\0')
		(void)snprintf(buf, len, "postmaster@%s", helo);
	else if (*s == '@')
		(void)snprintf(buf, len, "postmaster%s", s);
	else if (strchr(s, '@') == NULL)
		(void)snprintf(buf, len, "postmaster@%s", s);
	else
		(void)snprintf(buf, len, "%s", s);
}

/* who - "domain of SENDER" or "HELO name NAME", peer text made safe */
static void
out_who(struct out *o, const struct spf_query *q, const struct spf_answer *a)
{
	char sender[2 * SPF_NAME_MAX];

	if (a->identity == SPF_ID_HELO) {
		out_str(o, "HELO name ");
		out_comment_text(o, q->helo != NULL ? q->helo : "");
	} else {
		checked_sender(q, sender, sizeof(sender));
		out_str(o, "domain of ");
		out_comment_text(o, sender);
	}
}

/* out_comment - our explanation of the result, without parentheses */
static void
out_comment(struct out *o, const struct spf_query *q,
    const struct spf_answer *a)
{
	const char *ip = q->ip != NULL ? q->ip : "";

	switch (a->result) {
	case SPF_RES_PASS:
		out_who(o, q, a);
		out_str(o, " designates ");
		out_comment_text(o, ip);
		out_str(o, " as permitted sender");
		break;
	case SPF_RES_FAIL:
		out_who(o, q, a);
		out_str(o, " does not designate ");
		out_comment_text(o, ip);
		out_str(o, " as permitted sender");
		break;
	case SPF_RES_SOFTFAIL:
		out_who(o, q, a);
		out_str(o, " discourages use of ");
		out_comment_text(o, ip);
		out_str(o, " (softfail)");
		break;
	case SPF_RES_NEUTRAL:
		out_who(o, q, a);
		out_str(o, " makes no assertion about ");
		out_comment_text(o, ip);
		break;
	case SPF_RES_NONE:
		out_who(o, q, a);
		out_str(o, " publishes no SPF record");
		break;
	case SPF_RES_TEMPERROR:
		out_str(o, "temporary error checking ");
		out_who(o, q, a);
		break;
	case SPF_RES_PERMERROR:
		out_str(o, "permanent error checking ");
		out_who(o, q, a);
		break;
	}
	if (a->text[0] != '\0' && (a->result == SPF_RES_TEMPERROR ||
	    a->result == SPF_RES_PERMERROR)) {
		out_str(o, ": ");
		out_comment_text(o, a->text);
	}
}

/*
 * spf_received_spf - the value of a Received-SPF field (RFC 7208 9.1)
 * for answer, with client-ip=, envelope-from=, helo=, identity= and
 * receiver=; folded at 78 columns; 0, or -1 when buf is too small.
 */
int
spf_received_spf(const struct spf_query *q, const struct spf_answer *a,
    const char *receiver, char *buf, size_t len)
{
	char line[2048];
	struct out o = { line, sizeof(line), 0, 0 };

	line[0] = '\0';
	if (receiver == NULL || *receiver == '\0')
		receiver = "localhost";
	out_str(&o, spf_result_name(a->result));
	out_str(&o, " (");
	out_comment_text(&o, receiver);
	out_str(&o, ": ");
	out_comment(&o, q, a);
	out_str(&o, ") client-ip=");
	out_value(&o, q->ip != NULL ? q->ip : "");
	out_str(&o, "; envelope-from=");
	out_value(&o, q->sender != NULL ? q->sender : "");
	out_str(&o, "; helo=");
	out_value(&o, q->helo != NULL ? q->helo : "");
	out_str(&o, "; identity=");
	out_str(&o, a->identity == SPF_ID_HELO ? "helo" : "mailfrom");
	out_str(&o, "; receiver=");
	out_value(&o, receiver);
	out_str(&o, ";");
	if (o.overflow)
		return -1;
	return fold(line, sizeof("Received-SPF: ") - 1, buf, len);
}

/* spf_auth_results - an Authentication-Results value (RFC 8601):
 * "receiver; spf=RESULT smtp.mailfrom=..." (or smtp.helo=) */
int
spf_auth_results(const struct spf_query *q, const struct spf_answer *a,
    const char *receiver, char *buf, size_t len)
{
	char line[2048], sender[2 * SPF_NAME_MAX];
	struct out o = { line, sizeof(line), 0, 0 };
	const char *helo = q->helo != NULL ? q->helo : "";

	line[0] = '\0';
	if (receiver == NULL || *receiver == '\0')
		receiver = "localhost";
	out_value(&o, receiver);
	out_str(&o, "; spf=");
	out_str(&o, spf_result_name(a->result));
	out_str(&o, " (");
	out_comment(&o, q, a);
	out_str(&o, ")");
	if (a->identity == SPF_ID_HELO) {
		out_str(&o, " smtp.helo=");
		out_value(&o, helo);
	} else {
		checked_sender(q, sender, sizeof(sender));
		out_str(&o, " smtp.mailfrom=");
		if (is_address_value(sender))
			out_str(&o, sender);
		else
			out_value(&o, sender);
	}
	if (o.overflow)
		return -1;
	return fold(line, sizeof("Authentication-Results: ") - 1, buf, len);
}
