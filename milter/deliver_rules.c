/*
 * deliver_rules - see deliver_rules.h: the bulk-sender rules as pure
 * functions of the header fields.
 *
 * The syntax checks are the RFC 5322 grammar, read leniently where the
 * RFC's obsolete syntax allows (zone names, a two-digit year, folding
 * whitespace anywhere between tokens), strictly where receivers are
 * strict (the angle brackets and the "@" of a Message-ID).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "milter/deliver_rules.h"

/* is_ws - folding whitespace as the MTA passes it */
static int
is_ws(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* skip_ws - past whitespace */
static const char *
skip_ws(const char *p)
{
	while (is_ws(*p))
		p++;
	return p;
}

/* is_atext - RFC 5322 atext */
static int
is_atext(char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return 1;
	return ch != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", ch) != NULL;
}

/* dot_atom - past an RFC 5322 dot-atom-text, or NULL */
static const char *
dot_atom(const char *p)
{
	for (;;) {
		if (!is_atext(*p))
			return NULL;
		while (is_atext(*p))
			p++;
		if (*p != '.')
			return p;
		p++;
	}
}

/* rules_msgid_ok - "<dot-atom@dot-atom>" or "<dot-atom@[dtext]>" */
int
rules_msgid_ok(const char *v)
{
	const char *p = skip_ws(v);

	if (*p++ != '<' || (p = dot_atom(p)) == NULL || *p++ != '@')
		return 0;
	if (*p == '[') {
		for (p++; *p > 0x20 && *p < 0x7f && *p != '[' && *p != ']' &&
		    *p != '\\'; p++)
			;
		if (*p++ != ']')
			return 0;
	} else if ((p = dot_atom(p)) == NULL)
		return 0;
	if (*p++ != '>')
		return 0;
	return *skip_ws(p) == '\0';
}

/* digits - read between min and max digits into *n; past them, or NULL */
static const char *
digits(const char *p, int min, int max, int *n)
{
	int i;

	*n = 0;
	for (i = 0; i < max && *p >= '0' && *p <= '9'; i++, p++)
		*n = *n * 10 + (*p - '0');
	return i >= min ? p : NULL;
}

/* word_in - past a three-letter name of list (any case), index in *i */
static const char *
word_in(const char *p, const char *const *list, int *i)
{
	for (*i = 0; list[*i] != NULL; (*i)++)
		if (strncasecmp(p, list[*i], 3) == 0)
			return p + 3;
	return NULL;
}

/* date_zone - past a zone: +hhmm / -hhmm or an obsolete name */
static const char *
date_zone(const char *p)
{
	static const char *const names[] = { "UT", "GMT", "EST", "EDT",
		"CST", "CDT", "MST", "MDT", "PST", "PDT", NULL };
	size_t i, n;
	int z;

	if (*p == '+' || *p == '-')
		return digits(p + 1, 4, 4, &z);
	for (i = 0; names[i] != NULL; i++) {
		n = strlen(names[i]);
		if (strncasecmp(p, names[i], n) == 0 &&
		    !(p[n] >= 'A' && p[n] <= 'Z') &&
		    !(p[n] >= 'a' && p[n] <= 'z'))
			return p + n;
	}
	return NULL;
}

/* date_time - past "hh:mm[:ss]", or NULL */
static const char *
date_time(const char *p)
{
	int h, m, s;

	if ((p = digits(p, 2, 2, &h)) == NULL || h > 23 || *p++ != ':' ||
	    (p = digits(p, 2, 2, &m)) == NULL || m > 59)
		return NULL;
	if (*p == ':' && ((p = digits(p + 1, 2, 2, &s)) == NULL || s > 60))
		return NULL;
	return p;
}

/* rules_date_ok - [dow ","] day month year time zone [comment] */
int
rules_date_ok(const char *v)
{
	static const char *const dows[] = { "Mon", "Tue", "Wed", "Thu",
		"Fri", "Sat", "Sun", NULL };
	static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
		"May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", NULL };
	const char *p = skip_ws(v), *q;
	int i, day, year;

	if ((q = word_in(p, dows, &i)) != NULL) {
		q = skip_ws(q);
		if (*q != ',')
			return 0;
		p = skip_ws(q + 1);
	}
	if ((p = digits(p, 1, 2, &day)) == NULL || day < 1 || day > 31 ||
	    !is_ws(*p))
		return 0;
	if ((p = word_in(skip_ws(p), months, &i)) == NULL || !is_ws(*p))
		return 0;
	if ((p = digits(skip_ws(p), 2, 4, &year)) == NULL || !is_ws(*p))
		return 0;
	if ((p = date_time(skip_ws(p))) == NULL || !is_ws(*p))
		return 0;
	if ((p = date_zone(skip_ws(p))) == NULL)
		return 0;
	p = skip_ws(p);
	if (*p == '(') {	/* a comment such as "(UTC)" */
		if ((q = strchr(p, ')')) == NULL)
			return 0;
		p = skip_ws(q + 1);
	}
	return *p == '\0';
}

/* rules_unsub_https - one of the <URI> entries is https://... */
int
rules_unsub_https(const char *v)
{
	const char *p = v, *end;

	while ((p = strchr(p, '<')) != NULL) {
		p = skip_ws(p + 1);
		if ((end = strchr(p, '>')) == NULL)
			return 0;
		if (strncasecmp(p, "https://", 8) == 0 && end > p + 8 &&
		    !is_ws(p[8]))
			return 1;
		p = end + 1;
	}
	return 0;
}

/* rules_one_click - exactly "List-Unsubscribe=One-Click" (RFC 8058 3.1) */
int
rules_one_click(const char *v)
{
	static const char want[] = "List-Unsubscribe=One-Click";
	const char *p = skip_ws(v);

	if (strncasecmp(p, want, sizeof(want) - 1) != 0)
		return 0;
	return *skip_ws(p + sizeof(want) - 1) == '\0';
}

/* precedence_bulk - Precedence: bulk or list */
static int
precedence_bulk(const char *v)
{
	const char *p = skip_ws(v);
	size_t n;

	for (n = 0; p[n] != '\0' && !is_ws(p[n]) && p[n] != '('; n++)
		;
	return (n == 4 && (strncasecmp(p, "bulk", 4) == 0 ||
	    strncasecmp(p, "list", 4) == 0));
}

/* rules_bulk - see deliver_rules.h */
void
rules_bulk(const struct rules_field *f, size_t n, struct rules_bulk *out)
{
	size_t i, nid = 0, ndate = 0;
	int https = 0, click = 0, id_ok = 0, date_ok = 0;

	memset(out, 0, sizeof(*out));
	out->why = "";
	for (i = 0; i < n; i++) {
		const char *name = f[i].name, *v = f[i].value;

		if (strcasecmp(name, "List-Id") == 0 && !out->bulk) {
			out->bulk = 1;
			out->why = "list-id";
		} else if (strcasecmp(name, "List-Unsubscribe") == 0) {
			if (!out->bulk)
				out->why = "list-unsubscribe";
			out->bulk = 1;
			https |= rules_unsub_https(v);
		} else if (strcasecmp(name, "Precedence") == 0 &&
		    precedence_bulk(v) && !out->bulk) {
			out->bulk = 1;
			out->why = "precedence";
		} else if (strcasecmp(name, "List-Unsubscribe-Post") == 0)
			click |= rules_one_click(v);
		else if (strcasecmp(name, "Message-ID") == 0) {
			nid++;
			id_ok = rules_msgid_ok(v);
		} else if (strcasecmp(name, "Date") == 0) {
			ndate++;
			date_ok = rules_date_ok(v);
		}
	}
	if (!https)
		out->missing |= RULES_NO_HTTPS_UNSUB;
	if (!click)
		out->missing |= RULES_NO_ONE_CLICK;
	if (nid != 1 || !id_ok)
		out->missing |= RULES_BAD_MESSAGE_ID;
	if (ndate != 1 || !date_ok)
		out->missing |= RULES_BAD_DATE;
}

/* The rules: bit, name for logs and header, the fix for replies. */
static const struct {
	unsigned int bit;
	const char *name;
	const char *fix;
} rules[] = {
	{ RULES_NO_HTTPS_UNSUB, "list-unsubscribe-https",
	  "add List-Unsubscribe: <https://...>" },
	{ RULES_NO_ONE_CLICK, "one-click",
	  "add List-Unsubscribe-Post: List-Unsubscribe=One-Click" },
	{ RULES_BAD_MESSAGE_ID, "message-id",
	  "add one valid Message-ID: <id@domain>" },
	{ RULES_BAD_DATE, "date", "add one valid RFC 5322 Date" },
	{ RULES_NO_DMARC, "dmarc-record", NULL },
};

/* append - add s to buf (truncated), separated by sep when not first */
static void
append(char *buf, size_t len, const char *sep, const char *s)
{
	size_t used = strlen(buf);

	if (used + 1 >= len)
		return;
	(void)snprintf(buf + used, len - used, "%s%s", used ? sep : "", s);
}

/* rules_missing_names - see deliver_rules.h */
void
rules_missing_names(unsigned int missing, char *buf, size_t len)
{
	size_t i;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (missing & rules[i].bit)
			append(buf, len, ",", rules[i].name);
}

/* rules_missing_fix - see deliver_rules.h */
void
rules_missing_fix(unsigned int missing, const char *domain, char *buf,
    size_t len)
{
	char dmarc[300];
	size_t i;

	if (len == 0)
		return;
	buf[0] = '\0';
	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		if (!(missing & rules[i].bit))
			continue;
		if (rules[i].fix != NULL) {
			append(buf, len, "; ", rules[i].fix);
			continue;
		}
		(void)snprintf(dmarc, sizeof(dmarc), "publish _dmarc.%s TXT "
		    "\"v=DMARC1; p=none\"", domain);
		append(buf, len, "; ", dmarc);
	}
}

/* rules_dmarc_policy - see deliver_rules.h */
enum dmarc_policy
rules_dmarc_policy(const struct dmarc_record *r, const char *from)
{
	if (r->where[0] != '\0' && strcasecmp(r->where, from) != 0)
		return r->sp;
	return r->p;
}

/* rules_dmarc_align - see deliver_rules.h */
enum rules_align
rules_dmarc_align(const struct dmarc_record *r, const char *from,
    const char *const *dkim_d, size_t n, const char *mailfrom, int spf_pass)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (dmarc_aligned(from, dkim_d[i], r->adkim == 's' ? 's' : 'r'))
			return RULES_ALIGN_DKIM;
	if (spf_pass && mailfrom != NULL && mailfrom[0] != '\0' &&
	    dmarc_aligned(from, mailfrom, r->aspf == 's' ? 's' : 'r'))
		return RULES_ALIGN_SPF;
	return RULES_ALIGN_NONE;
}

/* rules_align_name - see deliver_rules.h */
const char *
rules_align_name(enum rules_align a)
{
	switch (a) {
	case RULES_ALIGN_DKIM:
		return "dkim";
	case RULES_ALIGN_SPF:
		return "spf";
	default:
		return "none";
	}
}
