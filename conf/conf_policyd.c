/*
 * conf_policyd - the policyd section of the config: outpost-policyd's
 * listeners, their access, and its per-request limits (see conf.h for the
 * fields, outpost-policyd(8) and outpost.conf(5) for the settings).
 *
 * Listener addresses are checked for form here ("unix:/abs/path",
 * "inet:HOST:PORT", "inet:[v6]:PORT"); binding them is the daemon's job.
 */
#include "config.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf_impl.h"
#include "util/parse.h"
#include "util/xmalloc.h"

/* policyd_defaults - the settings of an absent policyd section */
static void
policyd_defaults(struct conf *c)
{
	c->policyd.listen = xcalloc(2, sizeof(char *));
	c->policyd.listen[0] = xstrdup("unix:/run/outpost/policy.sock");
	c->policyd.nlisten = 1;
	c->policyd.socket_mode = 0660;
	c->policyd.networks = xcalloc(2, sizeof(struct cidr));
	cidr_parse("127.0.0.0/8", &c->policyd.networks[0], NULL, 0);
	cidr_parse("::1/128", &c->policyd.networks[1], NULL, 0);
	c->policyd.nnetworks = 2;
	c->policyd.idle_timeout = 300;
	c->policyd.max_connections = 10000;
	c->policyd.backlog = 1024;
	c->policyd.line_max = 2048;
	c->policyd.attributes_max = 100;
	c->policyd.request_max = 16384;
}

void
conf_policyd_free(struct conf *c)
{
	free_strings(c->policyd.listen, c->policyd.nlisten);
	free(c->policyd.socket_owner);
	free(c->policyd.socket_group);
	free(c->policyd.networks);
	free(c->policyd.user);
	free(c->policyd.pid_file);
	memset(&c->policyd, 0, sizeof(c->policyd));
}

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

int
load_policyd(struct loader *ld, config_t *cf, struct conf *c)
{
	static const char *const known[] = { "listen", "socket_mode",
		"socket_owner", "socket_group", "networks", "idle_timeout",
		"max_connections", "backlog", "line_max", "attributes_max",
		"request_max", "user", "pid_file", NULL };
	config_setting_t *g = config_lookup(cf, "policyd");
	char **v = NULL, err[160];
	size_t n = 0, i;

	policyd_defaults(c);
	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return fail(ld, g, "\"policyd\" must be a group { ... }");
	if (check_names(ld, g, "policyd.", known) < 0 ||
	    get_string(ld, g, "socket_owner", &c->policyd.socket_owner) < 0 ||
	    get_string(ld, g, "socket_group", &c->policyd.socket_group) < 0 ||
	    get_uint(ld, g, "idle_timeout", 1, 86400, 1,
	    &c->policyd.idle_timeout) < 0 ||
	    get_uint(ld, g, "max_connections", 1, 1000000, 0,
	    &c->policyd.max_connections) < 0 ||
	    get_uint(ld, g, "backlog", 1, 65535, 0, &c->policyd.backlog) < 0 ||
	    get_uint(ld, g, "line_max", 64, 65536, 0,
	    &c->policyd.line_max) < 0 ||
	    get_uint(ld, g, "attributes_max", 8, 10000, 0,
	    &c->policyd.attributes_max) < 0 ||
	    get_uint(ld, g, "request_max", 256, 1048576, 0,
	    &c->policyd.request_max) < 0 ||
	    get_string(ld, g, "user", &c->policyd.user) < 0 ||
	    get_string(ld, g, "pid_file", &c->policyd.pid_file) < 0 ||
	    get_mode(ld, g, "socket_mode", &c->policyd.socket_mode) < 0)
		return -1;
	if (config_setting_get_member(g, "listen") != NULL) {
		if (get_strings(ld, g, "listen", &v, &n) < 0)
			return -1;
		free_strings(c->policyd.listen, c->policyd.nlisten);
		c->policyd.listen = v;
		c->policyd.nlisten = n;
		if (n == 0)
			return fail(ld, config_setting_get_member(g, "listen"),
			    "\"policyd.listen\" must name a socket");
		for (i = 0; i < n; i++)
			if (!listen_ok(v[i]))
				return fail(ld, config_setting_get_member(g,
				    "listen"), "policyd.listen: \"%s\" is not "
				    "unix:/PATH or inet:HOST:PORT", v[i]);
	}
	if (config_setting_get_member(g, "networks") != NULL) {
		v = NULL;
		n = 0;
		if (get_strings(ld, g, "networks", &v, &n) < 0)
			return -1;
		free(c->policyd.networks);
		c->policyd.networks = xcalloc(n + 1, sizeof(struct cidr));
		c->policyd.nnetworks = n;
		for (i = 0; i < n; i++)
			if (cidr_parse(v[i], &c->policyd.networks[i], err,
			    sizeof(err)) < 0) {
				free_strings(v, n);
				return fail(ld, config_setting_get_member(g,
				    "networks"), "policyd.networks: %s", err);
			}
		free_strings(v, n);
	}
	if (c->policyd.line_max > c->policyd.request_max)
		return fail(ld, g, "policyd.line_max must not exceed "
		    "policyd.request_max");
	return 0;
}
