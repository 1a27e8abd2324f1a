/*
 * dkim/from - see from.h.
 *
 * One pass over the value splits it into top-level elements (commas
 * outside quotes, comments and angle brackets).  Comments are dropped,
 * quoted strings kept whole; an element with an angle-addr takes what is
 * between the brackets, otherwise the element itself is the addr-spec.
 * Group syntax ("team: a@x, b@y;") counts the mailboxes of the group.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "dkim/from.h"

#define FROM_ELEM_MAX 1024

struct elem {
	char text[FROM_ELEM_MAX];	/* comments removed */
	size_t len;
	int angle_start;		/* offset of '<'+1, or -1 */
	int angle_end;			/* offset of '>', or -1 */
	int overflow;
};

static void
elem_put(struct elem *e, char c)
{
	if (e->len + 1 >= sizeof(e->text)) {
		e->overflow = 1;
		return;
	}
	e->text[e->len++] = c;
	e->text[e->len] = '\0';
}

/* trim - copy s[0..n) without surrounding white space into out */
static size_t
trim(const char *s, size_t n, char *out, size_t outlen)
{
	while (n > 0 && isspace((unsigned char)*s))
		s++, n--;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		n--;
	if (n >= outlen)
		return (size_t)-1;
	memcpy(out, s, n);
	out[n] = '\0';
	return n;
}

/* addr_split - "local@domain" into its parts; the last '@' outside quotes */
static enum from_result
addr_split(const char *spec, char *local, size_t locallen, char *domain,
    size_t domainlen)
{
	const char *at = NULL, *p;
	int quoted = 0;
	size_t n;

	for (p = spec; *p; p++) {
		if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (*p == '@' && !quoted)
			at = p;
	}
	if (*spec == '\0')
		return FROM_EMPTY;
	if (at == NULL || at[1] == '\0')
		return FROM_NO_DOMAIN;
	if (trim(spec, (size_t)(at - spec), local, locallen) == (size_t)-1 ||
	    (n = trim(at + 1, strlen(at + 1), domain, domainlen)) ==
	    (size_t)-1)
		return FROM_TOO_LONG;
	if (n == 0)
		return FROM_NO_DOMAIN;
	for (p = domain; *p; p++)
		if (isspace((unsigned char)*p))
			return FROM_NO_DOMAIN;
	if (domain[n - 1] == '.')
		domain[--n] = '\0';
	for (n = 0; domain[n]; n++)
		domain[n] = (char)tolower((unsigned char)domain[n]);
	return FROM_OK;
}

/* elem_addr - the addr-spec of one element, into spec */
static int
elem_addr(const struct elem *e, char *spec, size_t speclen)
{
	if (e->angle_start >= 0 && e->angle_end >= e->angle_start)
		return trim(e->text + e->angle_start,
		    (size_t)(e->angle_end - e->angle_start), spec, speclen) ==
		    (size_t)-1 ? -1 : 0;
	return trim(e->text, e->len, spec, speclen) == (size_t)-1 ? -1 : 0;
}

/* elem_reset - an empty element, no angle brackets seen */
static void
elem_reset(struct elem *e)
{
	memset(e, 0, sizeof(*e));
	e->angle_start = e->angle_end = -1;
}

/*
 * elem_end - at the end of an element, count its address and keep the
 * first in first (FROM_ELEM_MAX bytes); -1 if too long
 */
static int
elem_end(const struct elem *e, char *first, unsigned int *naddr)
{
	char spec[FROM_ELEM_MAX];

	if (e->overflow)
		return -1;
	if (elem_addr(e, spec, sizeof(spec)) < 0)
		return -1;
	if (spec[0] != '\0') {
		if ((*naddr)++ == 0)
			memcpy(first, spec, sizeof(spec));
	}
	return 0;
}

/*
 * comment_step - byte c at *i inside a comment *depth deep; 0 at the end
 * of the value (an unterminated comment ends there), else 1
 */
static int
comment_step(char c, size_t *i, size_t len, int *depth)
{
	if (c == '\\' && *i + 1 < len)
		(*i)++;
	else if (c == '(')
		(*depth)++;
	else if (c == ')')
		(*depth)--;
	if (*i == len) {
		*depth = 0;	/* unterminated: end it */
		return 0;
	}
	return 1;
}

enum from_result
from_parse(const char *v, size_t len, char *local, size_t locallen,
    char *domain, size_t domainlen)
{
	struct elem e;
	char first[FROM_ELEM_MAX];
	unsigned int naddr = 0;
	int depth = 0, quoted = 0, angle = 0, ingroup = 0;
	size_t i;

	elem_reset(&e);
	first[0] = '\0';
	for (i = 0; i <= len; i++) {
		char c = i < len ? v[i] : ',';	/* a final separator */

		if (i < len && c == '\0')
			c = ' ';
		if (depth > 0 && comment_step(c, &i, len, &depth))
			continue;		/* inside a comment */
		if (quoted) {
			if (i == len)
				return FROM_EMPTY;	/* unterminated quote */
			elem_put(&e, c);
			if (c == '\\' && i + 1 < len)
				elem_put(&e, v[++i]);
			else if (c == '"')
				quoted = 0;
			continue;
		}
		if (c == '(' && i < len) {
			depth = 1;
			continue;
		}
		if (c == '"') {
			quoted = 1;
			elem_put(&e, c);
			continue;
		}
		if (c == '<' && !angle) {
			angle = 1;
			e.angle_start = (int)e.len;
			continue;
		}
		if (c == '>' && angle) {
			angle = 0;
			e.angle_end = (int)e.len;
			continue;
		}
		if (c == ':' && !angle && !ingroup) {
			/* group: what came before is the group's name */
			ingroup = 1;
			elem_reset(&e);
			continue;
		}
		if ((c == ',' || (c == ';' && ingroup)) && !angle) {
			if (elem_end(&e, first, &naddr) < 0)
				return FROM_TOO_LONG;
			if (c == ';')
				ingroup = 0;
			elem_reset(&e);
			continue;
		}
		if (c == '\r' || c == '\n')
			c = ' ';
		if (i < len)
			elem_put(&e, c);
	}
	if (naddr == 0)
		return FROM_EMPTY;
	if (naddr > 1)
		return FROM_MULTIPLE;
	return addr_split(first, local, locallen, domain, domainlen);
}

const char *
from_result_str(enum from_result r)
{
	switch (r) {
	case FROM_OK:
		return "ok";
	case FROM_EMPTY:
		return "from-without-address";
	case FROM_MULTIPLE:
		return "from-with-several-addresses";
	case FROM_NO_DOMAIN:
		return "from-without-domain";
	case FROM_TOO_LONG:
		return "from-too-long";
	}
	return "?";
}
