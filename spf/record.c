/*
 * spf/record.c - the RFC 7208 record checks: is a TXT string an SPF
 * version 1 record, and is that record grammatical (section 12), with
 * the normalized copy libspf2 compiles.  Pure: no DNS, no libspf2, no
 * global state; the copy is malloc'ed and the caller frees it.
 * See spf/spf_impl.h; spf/dns.c calls it on every fetched record.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "spf/spf.h"
#include "spf/spf_impl.h"
#include "util/buf.h"

/* spf_record_is_spf1 - does a TXT string start an SPF version 1 record? */
int
spf_record_is_spf1(const char *txt)
{
	return strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (txt[6] == ' ' || txt[6] == '\0');
}

/*
 * The record check.  libspf2 accepts records RFC 7208 says are in error
 * and refuses some that are fine, and it runs redirect= where it stands
 * instead of after the mechanisms.  So before it compiles a record we
 * check the record against the RFC 7208 section 12 grammar (any error is
 * permerror, 4.6) and hand it a normalized copy:
 * - unknown modifiers are dropped (6: they are ignored; libspf2 refuses
 *   some legal names), and so is exp= once checked (we write our own
 *   text, so the explanation lookup and its macro expansion are waste);
 * - redirect= goes last, or away when there is an "all" (6.1);
 * - a CIDR length of 0, which libspf2 refuses, is rewritten: ip4:/0 and
 *   ip6:/0 become two /1 halves; a/0 for an IPv4 client becomes exists:;
 *   a//0 for an IPv6 client and mx/0, mx//0 become an exists: that our
 *   layer answers itself (synthetic() in spf/dns.c); a dual-CIDR length
 *   for the other address family than the client's is dropped.
 */

/* macro_string_ok - RFC 7208 7.1 macro-string; exp_letters allows the
 * c, r and t macros (explanation text only) */
static int
macro_string_ok(const char *s, const char *end, int exp_letters)
{
	const char *letters = exp_letters ? "slodiphcrtvSLODIPHCRTV" :
	    "slodiphvSLODIPHV";

	while (s < end) {
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
		if (*s != '%') {
			s++;
			continue;
		}
		if (++s >= end)
			return 0;
		if (*s == '%' || *s == '_' || *s == '-') {
			s++;
			continue;
		}
		if (*s != '{' || ++s >= end || strchr(letters, *s) == NULL)
			return 0;
		s++;
		while (s < end && isdigit((unsigned char)*s))
			s++;
		if (s < end && (*s == 'r' || *s == 'R'))
			s++;
		while (s < end && strchr(".-+,/_=", *s) != NULL)
			s++;
		if (s >= end || *s != '}')
			return 0;
		s++;
	}
	return 1;
}

/* toplabel_ok - RFC 7208 toplabel: alphanumeric with a letter, or with
 * inner hyphens */
static int
toplabel_ok(const char *s, const char *end)
{
	const char *p;
	int alpha = 0, hyphen = 0;

	if (s >= end || !isalnum((unsigned char)*s) ||
	    !isalnum((unsigned char)end[-1]))
		return 0;
	for (p = s; p < end; p++) {
		if (isalpha((unsigned char)*p))
			alpha = 1;
		else if (*p == '-')
			hyphen = 1;
		else if (!isdigit((unsigned char)*p))
			return 0;
	}
	return alpha || hyphen;
}

/* domain_spec_ok - RFC 7208 domain-spec = macro-string domain-end */
static int
domain_spec_ok(const char *s, const char *end)
{
	const char *p, *dot;

	if (s >= end || !macro_string_ok(s, end, 0))
		return 0;
	/* domain-end = macro-expand, or "." toplabel [ "." ] */
	if (end[-1] == '}' || (end - s >= 2 && end[-2] == '%' &&
	    strchr("%_-", end[-1]) != NULL))
		return 1;
	p = end;
	if (p[-1] == '.')
		p--;
	for (dot = p; dot > s && dot[-1] != '.'; dot--)
		;
	if (dot == s)
		return 0;		/* no "." before the top label */
	return toplabel_ok(dot, p);
}

/* cidr_len - RFC 7208 cidr length: "0" or no leading zero, <= max;
 * the length or -1 */
static int
cidr_len(const char *s, const char *end, int max)
{
	int v = 0;

	if (s >= end || end - s > 3 || (*s == '0' && end - s > 1))
		return -1;
	for (; s < end; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v <= max ? v : -1;
}

/* split_dual_cidr - find [ "/" ip4-cidr ] [ "//" ip6-cidr ] at the end
 * of s..end: sets *dend (end of the domain part) and the lengths (-2:
 * absent); 0, or -1 when malformed */
static int
split_dual_cidr(const char *s, const char *end, const char **dend, int *c4,
    int *c6)
{
	const char *p;

	*c4 = *c6 = -2;
	*dend = end;
	/* "//" ip6 */
	for (p = end; p > s && isdigit((unsigned char)p[-1]); p--)
		;
	if (p - s >= 2 && p[-1] == '/' && p[-2] == '/') {
		if ((*c6 = cidr_len(p, end, 128)) == -1)
			return -1;
		end = p - 2;
		*dend = end;
		for (p = end; p > s && isdigit((unsigned char)p[-1]); p--)
			;
	}
	if (p - s >= 1 && p[-1] == '/' && p < end) {
		if ((*c4 = cidr_len(p, end, 32)) == -1)
			return -1;
		*dend = p - 1;
	} else if (p < end && p - s >= 1 && p[-1] == '/')
		return -1;
	return 0;
}

struct rec_check {
	struct buf out;		/* the normalized record */
	char redirect[512];	/* the redirect= term, moved last */
	int has_all;
	int has_exp;
	int client_v6;
	const char *token;	/* the layer's, for a/0 and mx/0 (see below) */
	char why[SPF_TEXT_MAX];
};

/* rec_error - a grammar error: our words, 0 to return */
static int
rec_error(struct rec_check *rc, const char *what, const char *t, size_t n)
{
	(void)snprintf(rc->why, sizeof(rc->why), "%s: %.*s", what,
	    (int)(n > 60 ? 60 : n), t);
	return 0;
}

/* out_term - append one term to the normalized record */
static void
out_term(struct rec_check *rc, const char *prefix, const char *t, size_t n)
{
	buf_appendc(&rc->out, ' ');
	buf_appends(&rc->out, prefix);
	buf_append(&rc->out, t, n);
}

/* check_dual_mech - a, mx: [ ":" domain-spec ] [ dual-cidr ] */
static int
check_dual_mech(struct rec_check *rc, const char *prefix, const char *t,
    size_t n, size_t namelen)
{
	const char *end = t + n, *arg = t + namelen, *dend;
	int c4, c6, mine, is_a = namelen == 1;
	struct buf b = BUF_INIT;

	if (split_dual_cidr(arg, end, &dend, &c4, &c6) == -1)
		return rec_error(rc, "bad CIDR length", t, n);
	if (dend > arg) {
		if (*arg != ':' || !domain_spec_ok(arg + 1, dend))
			return rec_error(rc, "bad domain", t, n);
	}
	mine = rc->client_v6 ? c6 : c4;
	if (mine != 0 && (rc->client_v6 ? c4 : c6) != 0) {
		out_term(rc, prefix, t, n);
		return 1;
	}
	if (mine == 0) {
		/* a/0 for an IPv4 client: any A record of the domain, which
		 * is exists:.  The others (any AAAA record; any address of
		 * an MX host) have no libspf2 form: an exists: of a name only
		 * our layer answers (TOKEN-a6., TOKEN-mx4., TOKEN-mx6.). */
		buf_appends(&b, "exists:");
		if (!is_a || rc->client_v6)
			buf_appendf(&b, "%s-%s.", rc->token, !is_a ?
			    (rc->client_v6 ? "mx6" : "mx4") : "a6");
		if (dend > arg)
			buf_append(&b, arg + 1, (size_t)(dend - arg - 1));
		else
			buf_appends(&b, "%{d}");
	} else {
		/* drop the other family's /0 (it does not apply) */
		buf_append(&b, t, namelen);
		buf_append(&b, arg, (size_t)(dend - arg));
		if (mine >= 0)
			buf_appendf(&b, rc->client_v6 ? "//%d" : "/%d", mine);
	}
	out_term(rc, prefix, b.data, b.len);
	buf_free(&b);
	return 1;
}

/* check_ip_mech - ip4:, ip6: network [ "/" length ] */
static int
check_ip_mech(struct rec_check *rc, const char *prefix, const char *t,
    size_t n, int v6)
{
	const char *end = t + n, *arg = t + 4, *slash;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	int len = -2;
	size_t alen;

	if (arg > end || arg[-1] != ':')
		return rec_error(rc, "bad address", t, n);
	for (slash = end; slash > arg && slash[-1] != '/'; slash--)
		;
	if (slash > arg) {
		if ((len = cidr_len(slash, end, v6 ? 128 : 32)) == -1)
			return rec_error(rc, "bad CIDR length", t, n);
		alen = (size_t)(slash - 1 - arg);
	} else
		alen = (size_t)(end - arg);
	if (alen == 0 || alen >= sizeof(addr))
		return rec_error(rc, "bad address", t, n);
	memcpy(addr, arg, alen);
	addr[alen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) != 1)
		return rec_error(rc, "bad address", t, n);
	if (len == 0) {
		/* all addresses of the family: the two halves */
		buf_appendf(&rc->out, " %sip%c:%s %sip%c:%s", prefix,
		    v6 ? '6' : '4', v6 ? "::/1" : "0.0.0.0/1", prefix,
		    v6 ? '6' : '4', v6 ? "8000::/1" : "128.0.0.0/1");
		return 1;
	}
	out_term(rc, prefix, t, n);
	return 1;
}

/* check_term - one term: checked, and appended in normalized form */
static int
check_term(struct rec_check *rc, const char *t, size_t n)
{
	const char *end = t + n, *p;
	char prefix[2] = "";
	size_t namelen;

	if (strchr("+-?~", *t) != NULL) {
		prefix[0] = *t;
		t++;
		n--;
		end = t + n;
	}
	if (n == 0 || !isalpha((unsigned char)*t))
		return rec_error(rc, "unknown term", t, n);
	for (p = t; p < end && (isalnum((unsigned char)*p) ||
	    strchr("-_.", *p) != NULL); p++)
		;
	namelen = (size_t)(p - t);

	if (p < end && *p == '=') {
		/* A modifier: name "=" macro-string */
		if (prefix[0] != '\0')
			return rec_error(rc, "modifier with a prefix", t, n);
		if (namelen == 8 && strncasecmp(t, "redirect", 8) == 0) {
			if (rc->redirect[0] != '\0')
				return rec_error(rc, "redirect= twice", t, n);
			if (!domain_spec_ok(p + 1, end) ||
			    n >= sizeof(rc->redirect))
				return rec_error(rc, "bad redirect=", t, n);
			memcpy(rc->redirect, t, n);
			rc->redirect[n] = '\0';
			return 1;
		}
		if (namelen == 3 && strncasecmp(t, "exp", 3) == 0) {
			if (rc->has_exp++)
				return rec_error(rc, "exp= twice", t, n);
			if (!domain_spec_ok(p + 1, end))
				return rec_error(rc, "bad exp=", t, n);
			/* Checked, then dropped: we never use explanations,
			 * so libspf2 need not look one up and expand it. */
			return 1;
		}
		if (!macro_string_ok(p + 1, end, 0))
			return rec_error(rc, "bad modifier", t, n);
		return 1;	/* unknown modifier: ignored (RFC 7208 6) */
	}
#define IS(name) (namelen == sizeof(name) - 1 && \
	strncasecmp(t, name, sizeof(name) - 1) == 0)
	if (IS("all")) {
		if (p != end)
			return rec_error(rc, "bad all", t, n);
		rc->has_all = 1;
		out_term(rc, prefix, t, n);
		return 1;
	}
	if (IS("include") || IS("exists")) {
		if (p >= end || *p != ':' || !domain_spec_ok(p + 1, end))
			return rec_error(rc, "bad domain", t, n);
		out_term(rc, prefix, t, n);
		return 1;
	}
	if (IS("ptr")) {
		if (p < end && (*p != ':' || !domain_spec_ok(p + 1, end)))
			return rec_error(rc, "bad domain", t, n);
		out_term(rc, prefix, t, n);
		return 1;
	}
	if (IS("a"))
		return check_dual_mech(rc, prefix, t, n, 1);
	if (IS("mx"))
		return check_dual_mech(rc, prefix, t, n, 2);
	if (IS("ip4"))
		return check_ip_mech(rc, prefix, t, n, 0);
	if (IS("ip6"))
		return check_ip_mech(rc, prefix, t, n, 1);
#undef IS
	return rec_error(rc, "unknown mechanism", t, n);
}

/*
 * spf_record_check - check txt (one "v=spf1" record) and make the copy libspf2
 * compiles; the copy (caller frees) or NULL with why filled
 */
char *
spf_record_check(const char *txt, int client_v6, const char *token, char *why,
    size_t whylen)
{
	struct rec_check rc;
	const char *p, *t;

	memset(&rc, 0, sizeof(rc));
	rc.client_v6 = client_v6;
	rc.token = token;
	for (p = txt; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			(void)snprintf(why, whylen, "control or non-ASCII "
			    "byte in record");
			return NULL;
		}
	}
	buf_appends(&rc.out, "v=spf1");
	p = txt + 6;
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		for (t = p; *p != '\0' && *p != ' '; p++)
			;
		if (!check_term(&rc, t, (size_t)(p - t))) {
			(void)snprintf(why, whylen, "%s", rc.why);
			buf_free(&rc.out);
			return NULL;
		}
	}
	if (rc.redirect[0] != '\0' && !rc.has_all)
		out_term(&rc, "", rc.redirect, strlen(rc.redirect));
	return buf_steal(&rc.out);
}

