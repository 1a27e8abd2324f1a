/*
 * conf_policyd - the checks of the policyd section: outpost-policyd's
 * listeners and its per-request limits (the rows are in conf_table.c;
 * see outpost-policyd(8) and outpost.conf(5) for the settings).
 *
 * Listener addresses are checked for form here ("unix:/abs/path",
 * "inet:HOST:PORT", "inet:[v6]:PORT"); binding them is the daemon's job.
 */
#include "config.h"

#include <libconfig.h>
#include <string.h>

#include "conf/conf_impl.h"
#include "util/parse.h"

/* listen_ok - "unix:/path" or "inet:host:port" with a port 1..65535 */
static int
listen_ok(const char *s)
{
	const char *port;
	uint64_t n;

	if (strncmp(s, "unix:", 5) == 0)
		return s[5] == '/' && strlen(s) - 5 < 108;
	if (strncmp(s, "inet:", 5) != 0)
		return 0;
	s += 5;
	if (*s == '[') {
		if ((port = strchr(s, ']')) == NULL || port[1] != ':')
			return 0;
		port += 2;
	} else {
		if ((port = strrchr(s, ':')) == NULL || port == s)
			return 0;
		port++;
	}
	return parse_u64(port, 1, 65535, &n, NULL, 0) == 0;
}

/* policyd_listen_check - at least one listener, each of a known form */
int
policyd_listen_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;
	config_setting_t *s = config_setting_get_member(g, "listen");
	size_t i;

	(void)p;
	if (c->policyd.nlisten == 0)
		return fail(ld, s, "\"policyd.listen\" must name a socket");
	for (i = 0; i < c->policyd.nlisten; i++)
		if (!listen_ok(c->policyd.listen[i]))
			return fail(ld, s, "policyd.listen: \"%s\" is not "
			    "unix:/PATH or inet:HOST:PORT",
			    c->policyd.listen[i]);
	return 0;
}

/* policyd_check - a line fits in a request */
int
policyd_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;

	(void)p;
	if (c->policyd.line_max > c->policyd.request_max)
		return fail(ld, g, "policyd.line_max must not exceed "
		    "policyd.request_max");
	return 0;
}
