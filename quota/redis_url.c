/*
 * redis_url - parse the Redis store's URL (store.url) into a struct
 * redis_url: pure string work, no I/O, so that every form can be tested
 * on its own (tests/unit/check_redis_url.c).
 *
 * Ownership: redis_url_parse() fills the caller's struct; user and
 * password are allocated (NULL when absent) and freed by
 * redis_url_clear().  Failure: -1 with a message in err naming what is
 * wrong (the URL itself is named, but never the password on its own);
 * the struct may then hold parts, which redis_url_clear() frees.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota/redis_url.h"
#include "util/xmalloc.h"

/* pct_decode - %XX decoding of s[0..len) into a new string, or NULL */
static char *
pct_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1), *o = out;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '%') {
			unsigned int x;
			char hex[3];

			if (i + 2 >= len || !isxdigit((unsigned char)s[i + 1]) ||
			    !isxdigit((unsigned char)s[i + 2])) {
				free(out);
				return NULL;
			}
			hex[0] = s[i + 1];
			hex[1] = s[i + 2];
			hex[2] = '\0';
			x = (unsigned int)strtoul(hex, NULL, 16);
			*o++ = (char)x;
			i += 2;
		} else
			*o++ = s[i];
	}
	*o = '\0';
	return out;
}

/* parse_num - a decimal number in [0, max] from s[0..len) */
static int
parse_num(const char *s, size_t len, unsigned long max, unsigned long *out)
{
	unsigned long x = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		x = x * 10 + (unsigned long)(s[i] - '0');
	}
	if (x > max)
		return -1;
	*out = x;
	return 0;
}

/* parse_unix_url - unix:///PATH[?db=N][&password=P] */
static int
parse_unix_url(struct redis_url *u, const char *s, char *err,
    size_t errlen)
{
	const char *q = strchr(s, '?');
	size_t plen = q != NULL ? (size_t)(q - s) : strlen(s);

	if (plen == 0 || s[0] != '/' || plen >= sizeof(u->path)) {
		snprintf(err, errlen, "redis url: unix socket path must be "
		    "absolute and shorter than %zu", sizeof(u->path));
		return -1;
	}
	memcpy(u->path, s, plen);
	u->path[plen] = '\0';
	u->unix_sock = 1;
	while (q != NULL) {
		const char *p = q + 1, *eq, *end;
		unsigned long x;

		end = strchr(p, '&');
		q = end;
		if (end == NULL)
			end = p + strlen(p);
		eq = memchr(p, '=', (size_t)(end - p));
		if (eq == NULL)
			goto bad;
		if ((size_t)(eq - p) == 2 && strncmp(p, "db", 2) == 0) {
			if (parse_num(eq + 1, (size_t)(end - eq - 1),
			    1000000, &x) == -1)
				goto bad;
			u->db = (unsigned int)x;
		} else if ((size_t)(eq - p) == 8 &&
		    strncmp(p, "password", 8) == 0) {
			free(u->password);
			u->password = pct_decode(eq + 1,
			    (size_t)(end - eq - 1));
			if (u->password == NULL)
				goto bad;
		} else
			goto bad;
	}
	snprintf(u->label, sizeof(u->label), "%s", u->path);
	return 0;
bad:
	snprintf(err, errlen, "redis url: unix:// takes ?db=N and "
	    "&password=P only");
	return -1;
}

/*
 * parse_userinfo - [USER]:PASSWORD or PASSWORD before the '@' at (both
 * %-decoded) into u; -1 with err on a bad %-escape
 */
static int
parse_userinfo(struct redis_url *u, const char *p, const char *at, char *err,
    size_t errlen)
{
	const char *c = memchr(p, ':', (size_t)(at - p));

	if (c != NULL) {
		if (c > p)
			u->user = pct_decode(p, (size_t)(c - p));
		u->password = pct_decode(c + 1, (size_t)(at - c - 1));
	} else
		u->password = pct_decode(p, (size_t)(at - p));
	if (u->password == NULL || (c != NULL && c > p && u->user == NULL)) {
		snprintf(err, errlen, "redis url: bad %%-escape in "
		    "credentials");
		return -1;
	}
	return 0;
}

/*
 * parse_hostport - HOST, [V6] or NAME, then [:PORT], in hp[0..slash)
 * into u; -1 if malformed
 */
static int
parse_hostport(struct redis_url *u, const char *hp, const char *slash)
{
	const char *hend, *colon;
	unsigned long x;
	size_t hlen;

	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(slash - hp));

		if (rb == NULL)
			return -1;
		hlen = (size_t)(rb - hp - 1);
		hend = rb + 1;
		colon = hend < slash && *hend == ':' ? hend : NULL;
		if (hend < slash && colon == NULL)
			return -1;
		hp++;
	} else {
		colon = memchr(hp, ':', (size_t)(slash - hp));
		hend = colon != NULL ? colon : slash;
		hlen = (size_t)(hend - hp);
	}
	if (hlen == 0 || hlen >= sizeof(u->host))
		return -1;
	memcpy(u->host, hp, hlen);
	u->host[hlen] = '\0';
	if (colon != NULL) {
		if (parse_num(colon + 1, (size_t)(slash - colon - 1), 65535,
		    &x) == -1 || x == 0)
			return -1;
		u->port = (int)x;
	}
	return 0;
}

/* redis_url_parse - see redis_url.h */
int
redis_url_parse(struct redis_url *u, const char *url, char *err,
    size_t errlen)
{
	const char *p, *at, *slash;
	unsigned long x;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(url, "unix:", 5) == 0)
		return parse_unix_url(u, url + (strncmp(url, "unix://", 7) ==
		    0 ? 7 : 5), err, errlen);
	if (strncmp(url, "rediss://", 9) == 0) {
		snprintf(err, errlen, "redis url %s: TLS is not supported",
		    url);
		return -1;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		snprintf(err, errlen, "redis url %s: want redis://HOST:PORT/DB "
		    "or unix:/PATH?db=N", url);
		return -1;
	}
	p = url + 8;
	slash = strchr(p, '/');
	if (slash == NULL)
		slash = p + strlen(p);
	at = memrchr(p, '@', (size_t)(slash - p));
	if (at != NULL && parse_userinfo(u, p, at, err, errlen) == -1)
		return -1;
	if (parse_hostport(u, at != NULL ? at + 1 : p, slash) == -1)
		goto bad;
	if (*slash == '/' && slash[1] != '\0') {
		if (parse_num(slash + 1, strlen(slash + 1), 1000000, &x) == -1)
			goto bad;
		u->db = (unsigned int)x;
	}
	if (strchr(u->host, ':') != NULL)
		snprintf(u->label, sizeof(u->label), "[%s]:%d", u->host,
		    u->port);
	else
		snprintf(u->label, sizeof(u->label), "%s:%d", u->host,
		    u->port);
	return 0;
bad:
	snprintf(err, errlen, "redis url %s: want "
	    "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]", url);
	return -1;
}

/* redis_url_clear - free what redis_url_parse() allocated in u */
void
redis_url_clear(struct redis_url *u)
{
	if (u == NULL)
		return;
	free(u->user);
	free(u->password);
	u->user = u->password = NULL;
}
