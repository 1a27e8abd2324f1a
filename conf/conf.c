/*
 * conf - see conf.h.
 *
 * Each section is read by one static function; every setting is looked up
 * by name and checked where it is read, and unknown names are errors so
 * that a typo never silently falls back to a default.
 */
#include "config.h"

#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "conf/conf_impl.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

const char *const conf_default_headers[] = {
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date",
	"Resent-From", "Resent-To", "Resent-Cc", "In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive", "Message-ID",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Content-ID", "Content-Description", NULL
};

/* fail - record "FILE:LINE: reason" for setting s (or the file) */
int LOG_PRINTF(3, 4)
fail(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int line = s ? (int)config_setting_source_line(s) : 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->path, line, msg);
	else
		snprintf(ld->err, ld->errlen, "%s: %s", ld->path, msg);
	return -1;
}

/* check_names - every child of group must be one of the known names */
int
check_names(struct loader *ld, const config_setting_t *group,
    const char *where, const char *const *known)
{
	int i, n = config_setting_length(group);
	const char *const *k;

	for (i = 0; i < n; i++) {
		config_setting_t *c = config_setting_get_elem(group, i);
		const char *name = config_setting_name(c);

		for (k = known; *k; k++)
			if (name && strcmp(name, *k) == 0)
				break;
		if (*k == NULL)
			return fail(ld, c, "unknown setting \"%s%s\"", where,
			    name ? name : "?");
	}
	return 0;
}

/* get_string - optional string member; out is a new copy or untouched */
int
get_string(struct loader *ld, const config_setting_t *g, const char *name,
    char **out)
{
	config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	const char *v;

	if (s == NULL)
		return 0;
	if ((v = config_setting_get_string(s)) == NULL)
		return fail(ld, s, "\"%s\" must be a string", name);
	if (*v == '\0')
		return fail(ld, s, "\"%s\" must not be empty", name);
	free(*out);
	*out = xstrdup(v);
	return 0;
}

int
get_bool(struct loader *ld, const config_setting_t *g, const char *name,
    int *out)
{
	config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return fail(ld, s, "\"%s\" must be true or false", name);
	*out = config_setting_get_bool(s);
	return 0;
}

/*
 * get_u64 - optional number member: an integer, or a string read by
 * parse (parse_size or parse_duration; NULL: integers only).
 */
int
get_u64(struct loader *ld, const config_setting_t *g, const char *name,
    uint64_t min, uint64_t max, int (*parse)(const char *, uint64_t *,
    char *, size_t), uint64_t *out)
{
	config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	char err[128];
	uint64_t v;

	if (s == NULL)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64) {
		long long x = config_setting_get_int64(s);

		if (x < 0)
			return fail(ld, s, "\"%s\" must not be negative", name);
		v = (uint64_t)x;
	} else if (parse != NULL &&
	    config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (parse(config_setting_get_string(s), &v, err,
		    sizeof(err)) < 0)
			return fail(ld, s, "\"%s\": %s", name, err);
	} else
		return fail(ld, s, "\"%s\" must be a number", name);
	if (v < min || v > max)
		return fail(ld, s, "\"%s\" must be in %llu..%llu", name,
		    (unsigned long long)min, (unsigned long long)max);
	*out = v;
	return 0;
}

/* get_uint - get_u64 for unsigned int, durations allowed when duration */
int
get_uint(struct loader *ld, const config_setting_t *g, const char *name,
    unsigned int min, unsigned int max, int duration, unsigned int *out)
{
	uint64_t v = *out;

	if (get_u64(ld, g, name, min, max, duration ? parse_duration : NULL,
	    &v) < 0)
		return -1;
	*out = (unsigned int)v;
	return 0;
}

/* get_mode - optional octal permissions string ("0660") */
int
get_mode(struct loader *ld, const config_setting_t *g, const char *name,
    unsigned int *out)
{
	char *mode = NULL, *end;
	unsigned long m;

	if (get_string(ld, g, name, &mode) < 0)
		return -1;
	if (mode == NULL)
		return 0;
	m = strtoul(mode, &end, 8);
	if (*end != '\0' || m > 0777 || mode[0] != '0') {
		free(mode);
		return fail(ld, config_setting_get_member(g, name),
		    "\"%s\" must be an octal mode in quotes, like \"0660\"",
		    name);
	}
	free(mode);
	*out = (unsigned int)m;
	return 0;
}

/* get_enum - string member mapped through names[] (NULL-terminated) */
int
get_enum(struct loader *ld, const config_setting_t *g, const char *name,
    const char *const *names, int *out)
{
	char *v = NULL;
	int i;

	if (get_string(ld, g, name, &v) < 0)
		return -1;
	if (v == NULL)
		return 0;
	for (i = 0; names[i]; i++)
		if (strcasecmp(v, names[i]) == 0) {
			*out = i;
			free(v);
			return 0;
		}
	fail(ld, config_setting_get_member(g, name),
	    "\"%s\" has unknown value \"%s\"", name, v);
	free(v);
	return -1;
}

/* get_strings - optional array/list of non-empty strings */
int
get_strings(struct loader *ld, const config_setting_t *g, const char *name,
    char ***out, size_t *nout)
{
	config_setting_t *s = g ? config_setting_get_member(g, name) : NULL;
	char **v;
	int i, n;

	if (s == NULL)
		return 0;
	if (!config_setting_is_aggregate(s))
		return fail(ld, s, "\"%s\" must be a list [ \"...\" ]", name);
	n = config_setting_length(s);
	v = xcalloc((size_t)n + 1, sizeof(*v));
	for (i = 0; i < n; i++) {
		const char *e = config_setting_get_string_elem(s, i);

		if (e == NULL || *e == '\0') {
			while (i-- > 0)
				free(v[i]);
			free(v);
			return fail(ld, s, "\"%s\" must hold non-empty strings",
			    name);
		}
		v[i] = xstrdup(e);
	}
	*out = v;
	*nout = (size_t)n;
	return 0;
}

void
free_strings(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static const char *const on_error_names[] = { "tempfail", "accept",
	"reject", NULL };

/*
 * milter_socket_has_host - refuse inet:PORT and inet6:PORT without an
 * address: libmilter binds those to every interface, and anyone who
 * reaches the port gets mail signed.  Loopback is inet:PORT@127.0.0.1;
 * every interface must be asked for (inet:PORT@0.0.0.0).
 */
static int
milter_socket_has_host(struct loader *ld, const config_setting_t *g,
    const char *s)
{
	const char *at = strchr(s, '@');
	int v6 = strncmp(s, "inet6:", 6) == 0, n;

	if (!v6 && strncmp(s, "inet:", 5) != 0)
		return 0;
	if (at != NULL && at[1] != '\0')
		return 0;
	n = (int)(at != NULL ? (size_t)(at - s) : strlen(s));
	return fail(ld, config_setting_get_member(g, "socket"),
	    "\"socket\" \"%s\" names no address: write \"%.*s@%s\" for this "
	    "host only, or \"%.*s@%s\" for every interface (anyone who can "
	    "reach that port gets mail signed)", s, n, s,
	    v6 ? "::1" : "127.0.0.1", n, s, v6 ? "::" : "0.0.0.0");
}

static int
load_milter(struct loader *ld, config_t *cf, struct conf *c)
{
	static const char *const known[] = { "socket", "socket_mode",
		"socket_group", "on_error", "timeout", "backlog", "user",
		"pid_file", "engine", "quotas", NULL };
	static const char *const engines[] = { "native", "libmilter", NULL };
	static const char *const quotas[] = { "all", "non_smtpd", "off",
		NULL };
	int q = (int)c->milter.quotas;
	config_setting_t *g = config_lookup(cf, "milter");
	int e = (int)c->milter.on_error;

	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return fail(ld, g, "\"milter\" must be a group { ... }");
	if (check_names(ld, g, "milter.", known) < 0 ||
	    get_string(ld, g, "socket", &c->milter.socket) < 0 ||
	    get_enum(ld, g, "on_error", on_error_names, &e) < 0 ||
	    get_uint(ld, g, "timeout", 1, 86400, 1, &c->milter.timeout) < 0 ||
	    get_uint(ld, g, "backlog", 1, 65535, 0, &c->milter.backlog) < 0 ||
	    get_string(ld, g, "user", &c->milter.user) < 0 ||
	    get_string(ld, g, "pid_file", &c->milter.pid_file) < 0 ||
	    get_string(ld, g, "socket_group", &c->milter.socket_group) < 0 ||
	    get_mode(ld, g, "socket_mode", &c->milter.socket_mode) < 0)
		return -1;
	if (e == CONF_ON_ERROR_REJECT)
		return fail(ld, config_setting_get_member(g, "on_error"),
		    "\"on_error\" must be tempfail or accept");
	c->milter.on_error = (enum conf_on_error)e;
	e = (int)c->milter.engine;
	if (get_enum(ld, g, "engine", engines, &e) < 0 ||
	    get_enum(ld, g, "quotas", quotas, &q) < 0)
		return -1;
	c->milter.engine = (enum conf_milter_engine)e;
	c->milter.quotas = (enum conf_mquota)q;
	if (strncmp(c->milter.socket, "unix:", 5) != 0 &&
	    strncmp(c->milter.socket, "local:", 6) != 0 &&
	    strncmp(c->milter.socket, "inet:", 5) != 0 &&
	    strncmp(c->milter.socket, "inet6:", 6) != 0)
		return fail(ld, config_setting_get_member(g, "socket"),
		    "\"socket\" must be unix:PATH, inet:PORT@HOST or "
		    "inet6:PORT@HOST");
	return milter_socket_has_host(ld, g, c->milter.socket);
}

static int
load_trusted(struct loader *ld, config_t *cf, struct conf *c)
{
	static const char *const known[] = { "networks", "authenticated",
		"daemon_names", NULL };
	config_setting_t *g = config_lookup(cf, "trusted");
	char **nets = NULL, err[160];
	size_t nnets = 0, i;

	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return fail(ld, g, "\"trusted\" must be a group { ... }");
	if (check_names(ld, g, "trusted.", known) < 0 ||
	    get_bool(ld, g, "authenticated", &c->trusted.authenticated) < 0 ||
	    get_strings(ld, g, "daemon_names", &c->trusted.daemon_names,
	    &c->trusted.ndaemon_names) < 0 ||
	    get_strings(ld, g, "networks", &nets, &nnets) < 0)
		return -1;
	if (nets == NULL)
		return 0;
	free(c->trusted.networks);
	c->trusted.networks = xcalloc(nnets + 1, sizeof(struct cidr));
	c->trusted.nnetworks = nnets;
	for (i = 0; i < nnets; i++)
		if (cidr_parse(nets[i], &c->trusted.networks[i], err,
		    sizeof(err)) < 0) {
			free_strings(nets, nnets);
			return fail(ld, config_setting_get_member(g, "networks"),
			    "trusted.networks: %s", err);
		}
	free_strings(nets, nnets);
	return 0;
}

static int
load_keys(struct loader *ld, config_setting_t *list, struct conf *c)
{
	static const char *const known[] = { "name", "domain", "selector",
		"algorithm", "file", NULL };
	static const char *const algs[] = { "rsa-sha256", "ed25519-sha256",
		NULL };
	int i, n = config_setting_length(list);

	if (!config_setting_is_list(list) && !config_setting_is_array(list))
		return fail(ld, list, "\"dkim.keys\" must be a list ( {...} )");
	c->dkim.keys = xcalloc((size_t)n + 1, sizeof(struct conf_key));
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		struct conf_key *k = &c->dkim.keys[i];
		int alg = CONF_ALG_RSA_SHA256;
		size_t j;

		c->dkim.nkeys = (size_t)i + 1;
		k->line = (int)config_setting_source_line(e);
		if (!config_setting_is_group(e))
			return fail(ld, e, "dkim.keys entries are { ... }");
		if (check_names(ld, e, "dkim.keys.", known) < 0 ||
		    get_string(ld, e, "name", &k->name) < 0 ||
		    get_string(ld, e, "domain", &k->domain) < 0 ||
		    get_string(ld, e, "selector", &k->selector) < 0 ||
		    get_string(ld, e, "file", &k->file) < 0 ||
		    get_enum(ld, e, "algorithm", algs, &alg) < 0)
			return -1;
		k->alg = (enum conf_alg)alg;
		if (!k->name || !k->domain || !k->selector || !k->file)
			return fail(ld, e, "a dkim key needs name, domain, "
			    "selector and file");
		for (j = 0; j + 1 < c->dkim.nkeys; j++)
			if (strcmp(c->dkim.keys[j].name, k->name) == 0)
				return fail(ld, e, "duplicate key name \"%s\"",
				    k->name);
	}
	return 0;
}

static int
load_rules(struct loader *ld, config_setting_t *list, struct conf *c)
{
	static const char *const known[] = { "match", "keys", NULL };
	int i, n = config_setting_length(list);

	if (!config_setting_is_list(list) && !config_setting_is_array(list))
		return fail(ld, list,
		    "\"dkim.signing\" must be a list ( {...} )");
	c->dkim.rules = xcalloc((size_t)n + 1, sizeof(struct conf_rule));
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		struct conf_rule *r = &c->dkim.rules[i];
		size_t j, k;

		c->dkim.nrules = (size_t)i + 1;
		r->line = (int)config_setting_source_line(e);
		if (!config_setting_is_group(e))
			return fail(ld, e, "dkim.signing entries are { ... }");
		if (check_names(ld, e, "dkim.signing.", known) < 0 ||
		    get_string(ld, e, "match", &r->match) < 0 ||
		    get_strings(ld, e, "keys", &r->keys, &r->nkeys) < 0)
			return -1;
		if (r->match == NULL || r->nkeys == 0)
			return fail(ld, e, "a signing rule needs match and "
			    "keys");
		for (j = 0; j < r->nkeys; j++) {
			for (k = 0; k < c->dkim.nkeys; k++)
				if (strcmp(c->dkim.keys[k].name,
				    r->keys[j]) == 0)
					break;
			if (k == c->dkim.nkeys)
				return fail(ld, e, "signing rule names unknown "
				    "key \"%s\"", r->keys[j]);
		}
	}
	return 0;
}

/*
 * get_field_names - optional list of header field names, replacing the
 * default: printable US-ASCII without ':' (RFC 5322 ftext) and without
 * ';', which the h= tag cannot carry (the signer leaves fields named so
 * out of every signature)
 */
static int
get_field_names(struct loader *ld, const config_setting_t *g,
    const char *name, char ***v, size_t *n)
{
	config_setting_t *s = config_setting_get_member(g, name);
	const char *p;
	size_t i;

	if (s == NULL)
		return 0;
	free_strings(*v, *n);
	*v = NULL;
	*n = 0;
	if (get_strings(ld, g, name, v, n) < 0)
		return -1;
	for (i = 0; i < *n; i++)
		for (p = (*v)[i]; *p != '\0'; p++)
			if (*p < 0x21 || *p > 0x7e || *p == ':' || *p == ';')
				return fail(ld, s, "\"%s\": \"%s\" is not a "
				    "header field name that can be signed",
				    name, (*v)[i]);
	return 0;
}

/* get_accept_reject - optional "accept" or "reject" (no tempfail) */
static int
get_accept_reject(struct loader *ld, const config_setting_t *g,
    const char *name, enum conf_on_error *out)
{
	int e = (int)*out;

	if (get_enum(ld, g, name, on_error_names, &e) < 0)
		return -1;
	if (e == CONF_ON_ERROR_TEMPFAIL)
		return fail(ld, config_setting_get_member(g, name),
		    "\"%s\" must be accept or reject", name);
	*out = (enum conf_on_error)e;
	return 0;
}

static int
load_dkim(struct loader *ld, config_t *cf, struct conf *c)
{
	static const char *const known[] = { "keys", "signing", "key_table",
		"signing_table", "canonicalization", "headers", "oversign",
		"on_malformed", "on_oversized", "engine", "multiple_signatures",
		NULL };
	static const char *const engines[] = { "native", "libopendkim",
		NULL };
	config_setting_t *g = config_lookup(cf, "dkim"), *s;
	char *canon = NULL, *slash;
	int e;

	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return fail(ld, g, "\"dkim\" must be a group { ... }");
	if (check_names(ld, g, "dkim.", known) < 0)
		return -1;
	if ((s = config_setting_get_member(g, "keys")) != NULL &&
	    load_keys(ld, s, c) < 0)
		return -1;
	if ((s = config_setting_get_member(g, "signing")) != NULL &&
	    load_rules(ld, s, c) < 0)
		return -1;
	if (get_string(ld, g, "key_table", &c->dkim.key_table) < 0 ||
	    get_string(ld, g, "signing_table", &c->dkim.signing_table) < 0)
		return -1;
	if ((c->dkim.key_table == NULL) != (c->dkim.signing_table == NULL))
		return fail(ld, g, "dkim.key_table and dkim.signing_table go "
		    "together");
	if (get_string(ld, g, "canonicalization", &canon) < 0)
		return -1;
	if (canon != NULL) {
		int h, b;

		slash = strchr(canon, '/');
		if (slash)
			*slash++ = '\0';
		h = strcmp(canon, "relaxed") == 0 ? CONF_CANON_RELAXED :
		    strcmp(canon, "simple") == 0 ? CONF_CANON_SIMPLE : -1;
		b = slash == NULL ? CONF_CANON_SIMPLE :
		    strcmp(slash, "relaxed") == 0 ? CONF_CANON_RELAXED :
		    strcmp(slash, "simple") == 0 ? CONF_CANON_SIMPLE : -1;
		free(canon);
		if (h < 0 || b < 0)
			return fail(ld, config_setting_get_member(g,
			    "canonicalization"), "\"canonicalization\" must "
			    "be simple|relaxed[/simple|relaxed]");
		c->dkim.canon_header = (enum conf_canon)h;
		c->dkim.canon_body = (enum conf_canon)b;
	}
	if (get_field_names(ld, g, "headers", &c->dkim.headers,
	    &c->dkim.nheaders) < 0 || get_field_names(ld, g, "oversign",
	    &c->dkim.oversign, &c->dkim.noversign) < 0)
		return -1;
	if (get_accept_reject(ld, g, "on_malformed", &c->dkim.on_malformed) <
	    0 || get_accept_reject(ld, g, "on_oversized",
	    &c->dkim.on_oversized) < 0)
		return -1;
	if (get_bool(ld, g, "multiple_signatures",
	    &c->dkim.multiple_signatures) < 0)
		return -1;
	e = (int)c->dkim.engine;
	if (get_enum(ld, g, "engine", engines, &e) < 0)
		return -1;
	c->dkim.engine = (enum conf_engine)e;
	return 0;
}

static int
load_log(struct loader *ld, config_t *cf, struct conf *c)
{
	static const char *const known[] = { "verbose", "facility", NULL };
	config_setting_t *g = config_lookup(cf, "log");

	if (g == NULL)
		return 0;
	if (!config_setting_is_group(g))
		return fail(ld, g, "\"log\" must be a group { ... }");
	return check_names(ld, g, "log.", known) < 0 ||
	    get_bool(ld, g, "verbose", &c->log.verbose) < 0 ||
	    get_string(ld, g, "facility", &c->log.facility) < 0 ? -1 : 0;
}

/* conf_defaults - a struct conf holding every default */
static struct conf *
conf_defaults(const char *path)
{
	struct conf *c = xcalloc(1, sizeof(*c));
	size_t n;

	c->path = xstrdup(path);
	c->milter.socket = xstrdup("unix:/run/outpost/milter.sock");
	c->milter.socket_mode = 0660;
	c->milter.on_error = CONF_ON_ERROR_TEMPFAIL;
	c->milter.timeout = 300;
	c->milter.backlog = 128;
	c->trusted.networks = xcalloc(2, sizeof(struct cidr));
	cidr_parse("127.0.0.0/8", &c->trusted.networks[0], NULL, 0);
	cidr_parse("::1/128", &c->trusted.networks[1], NULL, 0);
	c->trusted.nnetworks = 2;
	c->trusted.authenticated = 1;
	c->dkim.canon_header = CONF_CANON_RELAXED;
	c->dkim.canon_body = CONF_CANON_RELAXED;
	for (n = 0; conf_default_headers[n]; n++)
		;
	c->dkim.headers = xcalloc(n + 1, sizeof(char *));
	for (c->dkim.nheaders = 0; c->dkim.nheaders < n; c->dkim.nheaders++)
		c->dkim.headers[c->dkim.nheaders] =
		    xstrdup(conf_default_headers[c->dkim.nheaders]);
	c->dkim.oversign = xcalloc(2, sizeof(char *));
	c->dkim.oversign[0] = xstrdup("From");
	c->dkim.noversign = 1;
	c->dkim.on_malformed = CONF_ON_ERROR_ACCEPT;
	c->dkim.on_oversized = CONF_ON_ERROR_REJECT;
	c->dkim.engine = CONF_ENGINE_NATIVE;
	c->log.facility = xstrdup("mail");
	conf_quota_defaults(c);
	return c;
}

/* conf_read - parse text (or the file path when text is NULL) */
static struct conf *
conf_read(const char *path, const char *text, char *err, size_t errlen)
{
	static const char *const known[] = { "milter", "trusted", "dkim",
		"log", "store", "limits", "overrides", "exempt", "policyd",
		"spf", NULL };
	struct loader ld = { path, err, errlen };
	struct conf *c = conf_defaults(path);
	config_t cf;

	config_init(&cf);
	if ((text ? config_read_string(&cf, text) :
	    config_read_file(&cf, path)) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read file", path);
		else
			snprintf(err, errlen, "%s:%d: %s",
			    config_error_file(&cf) ? config_error_file(&cf) :
			    path, config_error_line(&cf),
			    config_error_text(&cf));
		goto fail;
	}
	if (check_names(&ld, config_root_setting(&cf), "", known) < 0 ||
	    load_milter(&ld, &cf, c) < 0 || load_trusted(&ld, &cf, c) < 0 ||
	    load_dkim(&ld, &cf, c) < 0 || load_log(&ld, &cf, c) < 0 ||
	    load_quota(&ld, &cf, c) < 0 || load_policyd(&ld, &cf, c) < 0 ||
	    load_spf(&ld, &cf, c) < 0)
		goto fail;
	config_destroy(&cf);
	return c;
fail:
	config_destroy(&cf);
	conf_free(c);
	return NULL;
}

struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	return conf_read(path, NULL, err, errlen);
}

struct conf *
conf_load_string(const char *name, const char *text, char *err,
    size_t errlen)
{
	return conf_read(name, text, err, errlen);
}

struct conf *
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return NULL;
	free(c->path);
	free(c->milter.socket);
	free(c->milter.user);
	free(c->milter.socket_group);
	free(c->milter.pid_file);
	free(c->trusted.networks);
	free_strings(c->trusted.daemon_names, c->trusted.ndaemon_names);
	for (i = 0; i < c->dkim.nkeys; i++) {
		free(c->dkim.keys[i].name);
		free(c->dkim.keys[i].domain);
		free(c->dkim.keys[i].selector);
		free(c->dkim.keys[i].file);
	}
	free(c->dkim.keys);
	for (i = 0; i < c->dkim.nrules; i++) {
		free(c->dkim.rules[i].match);
		free_strings(c->dkim.rules[i].keys, c->dkim.rules[i].nkeys);
	}
	free(c->dkim.rules);
	free(c->dkim.key_table);
	free(c->dkim.signing_table);
	free_strings(c->dkim.headers, c->dkim.nheaders);
	free_strings(c->dkim.oversign, c->dkim.noversign);
	free(c->log.facility);
	conf_quota_free(c);
	conf_policyd_free(c);
	conf_spf_free(c);
	free(c);
	return NULL;
}

const char *
conf_alg_name(enum conf_alg a)
{
	return a == CONF_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

const char *
conf_on_error_name(enum conf_on_error e)
{
	return on_error_names[e];
}
