/*
 * conf - see conf.h.
 *
 * The settings are the rows of conf_table.c; conf_param.c reads them,
 * refusing unknown names so that a typo never silently falls back to a
 * default.  This file holds the entry points and the hooks of the milter
 * and dkim rows: the socket's form, the keys and signing rules, the
 * canonicalization and the header field lists.
 */
#include "config.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "conf/conf_impl.h"
#include "util/daemon.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xmalloc.h"

const char *const conf_default_headers[] = {
	"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date",
	"Resent-From", "Resent-To", "Resent-Cc", "In-Reply-To", "References",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive", "Message-ID",
	"MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Content-ID", "Content-Description", NULL
};

/* log_facility_check - a syslog facility the daemons know */
int
log_facility_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;

	(void)p;
	if (daemon_facility(c->log.facility) < 0)
		return fail(ld, config_setting_get_member(g, "facility"),
		    "\"facility\" \"%s\" is unknown (mail, daemon or "
		    "local0 to local7)", c->log.facility);
	return 0;
}

/*
 * milter_socket_check - unix:PATH, inet:PORT@HOST or inet6:PORT@HOST.
 * inet:PORT and inet6:PORT without an address are refused: libmilter
 * binds those to every interface, and anyone who reaches the port gets
 * mail signed.  Loopback is inet:PORT@127.0.0.1; every interface must be
 * asked for (inet:PORT@0.0.0.0).
 */
int
milter_socket_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	const char *s = ((struct conf *)base)->milter.socket, *at;
	config_setting_t *m = config_setting_get_member(g, "socket");
	int v6 = strncmp(s, "inet6:", 6) == 0, n;

	(void)p;
	if (strncmp(s, "unix:", 5) != 0 && strncmp(s, "local:", 6) != 0 &&
	    strncmp(s, "inet:", 5) != 0 && !v6)
		return fail(ld, m, "\"socket\" must be unix:PATH, "
		    "inet:PORT@HOST or inet6:PORT@HOST");
	if (!v6 && strncmp(s, "inet:", 5) != 0)
		return 0;
	at = strchr(s, '@');
	if (at != NULL && at[1] != '\0')
		return 0;
	n = (int)(at != NULL ? (size_t)(at - s) : strlen(s));
	return fail(ld, m, "\"socket\" \"%s\" names no address: write "
	    "\"%.*s@%s\" for this host only, or \"%.*s@%s\" for every "
	    "interface (anyone who can reach that port gets mail signed)",
	    s, n, s, v6 ? "::1" : "127.0.0.1", n, s, v6 ? "::" : "0.0.0.0");
}

/*
 * metrics_listen_check - milter.metrics, policyd.metrics: a loopback
 * "inet:HOST:PORT" (metrics_spec_parse says why only loopback)
 */
int
metrics_listen_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	const char *spec = *(char **)(void *)((char *)base + p->off);
	const char *dot = strchr(p->name, '.');
	char host[64], port[8], why[256];

	if (metrics_spec_parse(spec, host, sizeof(host), port, sizeof(port),
	    why, sizeof(why)) < 0)
		return fail(ld, config_setting_get_member(g, dot ? dot + 1 :
		    p->name), "%s: %s", p->name, why);
	return 0;
}

/* dkim_keys_load - dkim.keys: each entry by conf_key_params */
int
dkim_keys_load(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;
	config_setting_t *list;
	int i, n;
	size_t j;

	(void)p;
	if ((list = get_entries(ld, g, "keys", "dkim.keys", &n)) == NULL)
		return -1;
	c->dkim.keys = xcalloc((size_t)n + 1, sizeof(struct conf_key));
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		struct conf_key *k = &c->dkim.keys[i];

		c->dkim.nkeys = (size_t)i + 1;
		params_defaults(conf_key_params, k);
		k->line = (int)config_setting_source_line(e);
		if (!config_setting_is_group(e))
			return fail(ld, e, "dkim.keys entries are { ... }");
		if (params_load(ld, e, "dkim.keys.", conf_key_params, k) < 0)
			return -1;
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

/* rule_check - rule r names keys that exist */
static int
rule_check(struct loader *ld, const config_setting_t *e,
    const struct conf *c, const struct conf_rule *r)
{
	size_t j, k;

	if (r->match == NULL || r->nkeys == 0)
		return fail(ld, e, "a signing rule needs match and keys");
	for (j = 0; j < r->nkeys; j++) {
		for (k = 0; k < c->dkim.nkeys; k++)
			if (strcmp(c->dkim.keys[k].name, r->keys[j]) == 0)
				break;
		if (k == c->dkim.nkeys)
			return fail(ld, e, "signing rule names unknown key "
			    "\"%s\"", r->keys[j]);
	}
	return 0;
}

/* dkim_rules_load - dkim.signing: each entry by conf_rule_params */
int
dkim_rules_load(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;
	config_setting_t *list;
	int i, n;

	(void)p;
	if ((list = get_entries(ld, g, "signing", "dkim.signing",
	    &n)) == NULL)
		return -1;
	c->dkim.rules = xcalloc((size_t)n + 1, sizeof(struct conf_rule));
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		struct conf_rule *r = &c->dkim.rules[i];

		c->dkim.nrules = (size_t)i + 1;
		params_defaults(conf_rule_params, r);
		r->line = (int)config_setting_source_line(e);
		if (!config_setting_is_group(e))
			return fail(ld, e, "dkim.signing entries are { ... }");
		if (params_load(ld, e, "dkim.signing.", conf_rule_params,
		    r) < 0 || rule_check(ld, e, c, r) < 0)
			return -1;
	}
	return 0;
}

/* dkim_keys_release - free dkim.keys */
void
dkim_keys_release(void *base)
{
	struct conf *c = base;
	size_t i;

	for (i = 0; i < c->dkim.nkeys; i++)
		params_free(conf_key_params, &c->dkim.keys[i]);
	free(c->dkim.keys);
}

/* dkim_rules_release - free dkim.signing */
void
dkim_rules_release(void *base)
{
	struct conf *c = base;
	size_t i;

	for (i = 0; i < c->dkim.nrules; i++)
		params_free(conf_rule_params, &c->dkim.rules[i]);
	free(c->dkim.rules);
}

/* dkim_tables_check - dkim.key_table and dkim.signing_table go together */
int
dkim_tables_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;

	(void)p;
	if ((c->dkim.key_table == NULL) != (c->dkim.signing_table == NULL))
		return fail(ld, g, "dkim.key_table and dkim.signing_table go "
		    "together");
	return 0;
}

/* canon_value - "relaxed" or "simple" (NULL: simple), -1 otherwise */
static int
canon_value(const char *s)
{
	if (s == NULL || strcmp(s, "simple") == 0)
		return CONF_CANON_SIMPLE;
	return strcmp(s, "relaxed") == 0 ? CONF_CANON_RELAXED : -1;
}

/* dkim_canon_init - relaxed/relaxed */
void
dkim_canon_init(void *base)
{
	struct conf *c = base;

	c->dkim.canon_header = CONF_CANON_RELAXED;
	c->dkim.canon_body = CONF_CANON_RELAXED;
}

/* dkim_canon_load - dkim.canonicalization: header[/body] */
int
dkim_canon_load(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;
	char *canon = NULL, *slash;
	int h, b;

	(void)p;
	if (get_string(ld, g, "canonicalization", &canon) < 0)
		return -1;
	if ((slash = strchr(canon, '/')) != NULL)
		*slash++ = '\0';
	h = canon_value(canon);
	b = canon_value(slash);
	free(canon);
	if (h < 0 || b < 0)
		return fail(ld, config_setting_get_member(g,
		    "canonicalization"), "\"canonicalization\" must be "
		    "simple|relaxed[/simple|relaxed]");
	c->dkim.canon_header = (enum conf_canon)h;
	c->dkim.canon_body = (enum conf_canon)b;
	return 0;
}

/*
 * dkim_field_names_check - header field names (dkim.headers,
 * dkim.oversign) are printable US-ASCII without ':' (RFC 5322 ftext) and
 * without ';', which the h= tag cannot carry (the signer leaves fields
 * named so out of every signature)
 */
int
dkim_field_names_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	const char *name = strrchr(p->name, '.') + 1, *f;
	char **v = *(char ***)(void *)((char *)base + p->off);
	size_t n = *(size_t *)(void *)((char *)base + p->noff), i;

	for (i = 0; i < n; i++)
		for (f = v[i]; *f != '\0'; f++)
			if (*f < 0x21 || *f > 0x7e || *f == ':' || *f == ';')
				return fail(ld, config_setting_get_member(g,
				    name), "\"%s\": \"%s\" is not a header "
				    "field name that can be signed", name,
				    v[i]);
	return 0;
}

/* conf_read - parse text (or the file path when text is NULL) */
static struct conf *
conf_read(const char *path, const char *text, char *err, size_t errlen)
{
	struct loader ld = { path, err, errlen };
	struct conf *c = xcalloc(1, sizeof(*c));
	config_t cf;

	c->path = xstrdup(path);
	params_defaults(conf_params, c);
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
	if (params_load(&ld, config_root_setting(&cf), "", conf_params,
	    c) < 0)
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
	if (c == NULL)
		return NULL;
	params_free(conf_params, c);
	free(c->path);
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
	return conf_on_error_names[e];
}

/* conf_dcheck_name - the name of a deliverability.* action */
const char *
conf_dcheck_name(enum conf_dcheck a)
{
	return conf_dcheck_names[a];
}
