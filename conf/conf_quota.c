/*
 * conf_quota - the hooks of the quota sections of the config: store,
 * limits, overrides (the rows are in conf_table.c; see conf.h for the
 * fields, outpost.conf(5) for the settings).
 *
 * Every limit is checked whole here (kind against period, timezone,
 * burst and buckets; the reply template's fields), and overrides must
 * name a limit, so quota_open() never meets a bad limit.
 */
#include "config.h"

#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf_impl.h"
#include "util/tz.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define LIMIT_NAME_MAX 64
#define REPLY_MAX 256
#define PERIOD_MAX (366ULL * 86400)

/* parse_ms - "250ms" or a duration ("2s", "1m") into milliseconds */
int
parse_ms(const char *s, uint64_t *ms, char *err, size_t errlen)
{
	size_t n = strlen(s);
	uint64_t v;
	char *num;
	int r;

	if (n > 2 && strcasecmp(s + n - 2, "ms") == 0) {
		num = xstrndup(s, n - 2);
		r = parse_u64(num, 0, UINT64_MAX, ms, err, errlen);
		free(num);
		return r;
	}
	if (parse_duration(s, &v, err, errlen) < 0)
		return -1;
	if (v > UINT64_MAX / 1000) {
		snprintf(err, errlen, "\"%s\" is too large", s);
		return -1;
	}
	*ms = v * 1000;
	return 0;
}

/* store_url_check - redis://HOST[:PORT][/DB] or unix:PATH */
int
store_url_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;

	(void)p;
	if (strncmp(c->quota.store.url, "redis://", 8) != 0 &&
	    strncmp(c->quota.store.url, "unix:", 5) != 0)
		return fail(ld, config_setting_get_member(g, "url"),
		    "\"url\" must be redis://HOST[:PORT][/DB] or unix:PATH");
	return 0;
}

/* store_check - the redis backend without a url takes the local server */
int
store_check(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;

	(void)ld;
	(void)g;
	(void)p;
	if (c->quota.store.backend == CONF_STORE_REDIS &&
	    c->quota.store.url == NULL)
		c->quota.store.url = xstrdup("redis://127.0.0.1:6379/0");
	return 0;
}

/* limit_key - "sasl_username", ..., "client_network[/PREFIX]" */
static int
limit_key(struct loader *ld, config_setting_t *e, struct conf_limit *l)
{
	static const char *const keys[] = { "sasl_username", "sender",
		"sender_domain", "client_address", "client_network", "global",
		NULL };
	config_setting_t *s = config_setting_get_member(e, "key");
	char *v = NULL, *slash, err[128];
	uint64_t p;
	int i;

	if (get_string(ld, e, "key", &v) < 0)
		return -1;
	if (v == NULL)
		return fail(ld, e, "limit \"%s\" needs a key", l->name);
	if ((slash = strchr(v, '/')) != NULL)
		*slash++ = '\0';
	for (i = 0; keys[i]; i++)
		if (strcmp(v, keys[i]) == 0)
			break;
	if (keys[i] == NULL || (slash && i != CONF_QKEY_CLIENT_NETWORK)) {
		fail(ld, s, "\"key\" has unknown value \"%s%s%s\"", v,
		    slash ? "/" : "", slash ? slash : "");
		free(v);
		return -1;
	}
	l->key = (enum conf_qkey)i;
	if (slash != NULL && parse_u64(slash, 0, 32, &p, err,
	    sizeof(err)) < 0) {
		free(v);
		return fail(ld, s, "\"key\": IPv4 prefix: %s", err);
	}
	free(v);
	if (slash != NULL)
		l->prefix4 = (unsigned int)p;
	if (get_uint(ld, e, "prefix", 0, 32, 0, &l->prefix4) < 0 ||
	    get_uint(ld, e, "prefix6", 0, 128, 0, &l->prefix6) < 0)
		return -1;
	if (l->key != CONF_QKEY_CLIENT_NETWORK &&
	    (config_setting_get_member(e, "prefix") != NULL ||
	    config_setting_get_member(e, "prefix6") != NULL))
		return fail(ld, e, "limit \"%s\": prefix and prefix6 are for "
		    "key client_network", l->name);
	return 0;
}

/* reply_ok - a template of printable ASCII and known ${fields} */
static int
reply_ok(const char *t, char *why, size_t whylen)
{
	static const char *const fields[] = { "key", "used", "limit",
		"count", "period", "retry", "name", NULL };
	const char *p, *end;
	size_t i;

	if (strlen(t) > REPLY_MAX) {
		snprintf(why, whylen, "longer than %d characters", REPLY_MAX);
		return 0;
	}
	for (p = t; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			snprintf(why, whylen, "holds a non-printable or "
			    "non-ASCII character");
			return 0;
		}
	for (p = t; (p = strstr(p, "${")) != NULL; p = end + 1) {
		if ((end = strchr(p, '}')) == NULL) {
			snprintf(why, whylen, "has an unclosed ${");
			return 0;
		}
		for (i = 0; fields[i]; i++)
			if ((size_t)(end - p - 2) == strlen(fields[i]) &&
			    strncmp(p + 2, fields[i], strlen(fields[i])) == 0)
				break;
		if (fields[i] == NULL) {
			snprintf(why, whylen, "has unknown field %.*s",
			    (int)(end - p + 1), p);
			return 0;
		}
	}
	return 1;
}

/* limit_name_ok - 1..64 of [A-Za-z0-9._:@+-] */
static int
limit_name_ok(const char *n)
{
	const char *p;

	if (strlen(n) > LIMIT_NAME_MAX)
		return 0;
	for (p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("._:@+-", *p) != NULL))
			return 0;
	return 1;
}

/* limit_period - window/rate: a duration; calendar: "day" or "month" */
static int
limit_period(struct loader *ld, config_setting_t *e, struct conf_limit *l)
{
	config_setting_t *s = config_setting_get_member(e, "period");
	const char *v;

	if (s == NULL)
		return fail(ld, e, "limit \"%s\" needs a period", l->name);
	if (l->kind == CONF_QKIND_CALENDAR) {
		v = config_setting_get_string(s);
		if (v == NULL || (strcmp(v, "day") != 0 &&
		    strcmp(v, "month") != 0))
			return fail(ld, s, "a calendar limit's \"period\" is "
			    "\"day\" or \"month\"");
		l->month = strcmp(v, "month") == 0;
		l->period = l->month ? 31 * 86400 : 86400;
		return 0;
	}
	return get_u64(ld, e, "period", 1, PERIOD_MAX, parse_duration,
	    &l->period);
}

/* limit_buckets - window: given (must divide period) or the most <= 60 */
static int
limit_buckets(struct loader *ld, config_setting_t *e, struct conf_limit *l)
{
	config_setting_t *s = config_setting_get_member(e, "buckets");
	unsigned int b;

	if (s == NULL) {
		for (b = CONF_QBUCKETS_MAX; b > 1; b--)
			if (l->period % b == 0)
				break;
		l->buckets = b;
		return 0;
	}
	if (get_uint(ld, e, "buckets", 1, CONF_QBUCKETS_MAX, 0,
	    &l->buckets) < 0)
		return -1;
	if (l->period % l->buckets != 0)
		return fail(ld, s, "\"buckets\": a period of %llus does not "
		    "cut into %u buckets of whole seconds",
		    (unsigned long long)l->period, l->buckets);
	return 0;
}

const char *
conf_qaction_name(enum conf_qaction a)
{
	return conf_qaction_names[a];
}

/* limit_name - the limit's name: present, of allowed characters, unique */
static int
limit_name(struct loader *ld, config_setting_t *e, const struct conf *c,
    struct conf_limit *l)
{
	size_t j;

	if (get_string(ld, e, "name", &l->name) < 0)
		return -1;
	if (l->name == NULL)
		return fail(ld, e, "a limit needs a name");
	if (!limit_name_ok(l->name))
		return fail(ld, config_setting_get_member(e, "name"),
		    "limit name \"%s\": use up to %d of A-Z a-z 0-9 . _ : @ "
		    "+ -", l->name, LIMIT_NAME_MAX);
	for (j = 0; &c->quota.limits[j] != l; j++)
		if (strcmp(c->quota.limits[j].name, l->name) == 0)
			return fail(ld, e, "duplicate limit name \"%s\"",
			    l->name);
	return 0;
}

/* limit_misplaced - a field given that l's kind has no use for */
static int
limit_misplaced(struct loader *ld, config_setting_t *e,
    const struct conf_limit *l)
{
	config_setting_t *s;

	if (l->kind != CONF_QKIND_CALENDAR &&
	    (s = config_setting_get_member(e, "timezone")) != NULL)
		return fail(ld, s, "\"timezone\" is for calendar limits");
	if (l->kind != CONF_QKIND_RATE &&
	    (s = config_setting_get_member(e, "burst")) != NULL)
		return fail(ld, s, "\"burst\" is for rate limits");
	if (l->kind != CONF_QKIND_WINDOW &&
	    (s = config_setting_get_member(e, "buckets")) != NULL)
		return fail(ld, s, "\"buckets\" is for window limits");
	return 0;
}

/* limit_kind_fields - timezone, burst or buckets, as l's kind wants */
static int
limit_kind_fields(struct loader *ld, config_setting_t *e,
    struct conf_limit *l)
{
	if (limit_misplaced(ld, e, l) < 0)
		return -1;
	if (l->kind == CONF_QKIND_CALENDAR) {
		l->timezone = xstrdup("UTC");
		if (get_string(ld, e, "timezone", &l->timezone) < 0)
			return -1;
		if (!tz_valid(l->timezone))
			return fail(ld, config_setting_get_member(e,
			    "timezone"), "unknown time zone \"%s\"",
			    l->timezone);
	}
	if (l->kind == CONF_QKIND_RATE && get_u64(ld, e, "burst", 0,
	    UINT64_MAX - 1, parse_size, &l->burst) < 0)
		return -1;
	if (l->kind == CONF_QKIND_WINDOW && limit_buckets(ld, e, l) < 0)
		return -1;
	return 0;
}

/* load_limit - one limits entry (its names checked already) */
static int
load_limit(struct loader *ld, config_setting_t *e, struct conf *c,
    struct conf_limit *l)
{
	static const char *const counts[] = { "messages", "recipients",
		"bytes", NULL };
	static const char *const kinds[] = { "window", "calendar", "rate",
		NULL };
	int count = -1, kind = CONF_QKIND_WINDOW, action = CONF_QACTION_DEFER;
	char why[128];

	if (limit_name(ld, e, c, l) < 0)
		return -1;
	l->prefix4 = 24;
	l->prefix6 = 64;
	if (limit_key(ld, e, l) < 0 ||
	    get_enum(ld, e, "count", counts, &count) < 0 ||
	    get_enum(ld, e, "kind", kinds, &kind) < 0 ||
	    get_enum(ld, e, "action", conf_qaction_names, &action) < 0)
		return -1;
	if (count < 0)
		return fail(ld, e, "limit \"%s\" needs count (messages, "
		    "recipients or bytes)", l->name);
	l->count = (enum conf_qcount)count;
	l->kind = (enum conf_qkind)kind;
	l->action = (enum conf_qaction)action;
	if (config_setting_get_member(e, "limit") == NULL)
		return fail(ld, e, "limit \"%s\" needs a limit", l->name);
	if (get_u64(ld, e, "limit", 1, UINT64_MAX - 1, parse_size,
	    &l->limit) < 0 || limit_period(ld, e, l) < 0 ||
	    limit_kind_fields(ld, e, l) < 0 ||
	    get_string(ld, e, "reply", &l->reply) < 0)
		return -1;
	if (l->reply != NULL && !reply_ok(l->reply, why, sizeof(why)))
		return fail(ld, config_setting_get_member(e, "reply"),
		    "\"reply\" %s", why);
	return 0;
}

/* limits_load - the limits list (names from conf_limit_params) */
int
limits_load(struct loader *ld, const config_setting_t *root,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;
	config_setting_t *list;
	int i, n;

	(void)p;
	if ((list = get_entries(ld, root, "limits", "limits", &n)) == NULL)
		return -1;
	c->quota.limits = xcalloc((size_t)n + 1, sizeof(struct conf_limit));
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		struct conf_limit *l = &c->quota.limits[i];

		c->quota.nlimits = (size_t)i + 1;
		l->line = (int)config_setting_source_line(e);
		if (!config_setting_is_group(e))
			return fail(ld, e, "limits entries are { ... }");
		if (params_load(ld, e, "limits.", conf_limit_params, l) < 0 ||
		    load_limit(ld, e, c, l) < 0)
			return -1;
	}
	return 0;
}

/* override_limit - the index of the limit override e names */
static int
override_limit(struct loader *ld, config_setting_t *e, const struct conf *c,
    size_t *index)
{
	char *name = NULL;
	size_t j;

	if (get_string(ld, e, "limit", &name) < 0)
		return -1;
	if (name == NULL)
		return fail(ld, e, "an override needs limit, key and value");
	for (j = 0; j < c->quota.nlimits; j++)
		if (strcmp(c->quota.limits[j].name, name) == 0)
			break;
	if (j == c->quota.nlimits) {
		fail(ld, config_setting_get_member(e, "limit"),
		    "override names unknown limit \"%s\"", name);
		free(name);
		return -1;
	}
	free(name);
	*index = j;
	return 0;
}

/* load_override - one overrides entry (its names checked already) */
static int
load_override(struct loader *ld, config_setting_t *e, const struct conf *c,
    struct conf_override *o)
{
	config_setting_t *v;
	size_t j;

	if (override_limit(ld, e, c, &o->limit) < 0 ||
	    get_string(ld, e, "key", &o->key) < 0)
		return -1;
	if ((v = config_setting_get_member(e, "value")) == NULL ||
	    o->key == NULL)
		return fail(ld, e, "an override needs limit, key and value");
	if (config_setting_type(v) == CONFIG_TYPE_STRING &&
	    strcmp(config_setting_get_string(v), "unlimited") == 0)
		o->unlimited = 1;
	else if (get_u64(ld, e, "value", 1, UINT64_MAX - 1, parse_size,
	    &o->value) < 0)
		return -1;
	for (j = 0; &c->quota.overrides[j] != o; j++)
		if (c->quota.overrides[j].limit == o->limit &&
		    strcmp(c->quota.overrides[j].key, o->key) == 0)
			return fail(ld, e, "duplicate override of \"%s\" for "
			    "\"%s\"", c->quota.limits[o->limit].name, o->key);
	return 0;
}

/* overrides_load - the overrides list (after limits: they name one) */
int
overrides_load(struct loader *ld, const config_setting_t *root,
    const struct conf_param *p, void *base)
{
	struct conf *c = base;
	config_setting_t *list;
	int i, n;

	(void)p;
	if ((list = get_entries(ld, root, "overrides", "overrides",
	    &n)) == NULL)
		return -1;
	c->quota.overrides = xcalloc((size_t)n + 1,
	    sizeof(struct conf_override));
	for (i = 0; i < n; i++) {
		config_setting_t *e = config_setting_get_elem(list, i);
		struct conf_override *o = &c->quota.overrides[i];

		c->quota.noverrides = (size_t)i + 1;
		o->line = (int)config_setting_source_line(e);
		if (!config_setting_is_group(e))
			return fail(ld, e, "overrides entries are { ... }");
		if (params_load(ld, e, "overrides.", conf_override_params,
		    o) < 0 || load_override(ld, e, c, o) < 0)
			return -1;
	}
	return 0;
}

/* limits_release - free the limits */
void
limits_release(void *base)
{
	struct conf *c = base;
	size_t i;

	for (i = 0; i < c->quota.nlimits; i++) {
		free(c->quota.limits[i].name);
		free(c->quota.limits[i].timezone);
		free(c->quota.limits[i].reply);
	}
	free(c->quota.limits);
}

/* overrides_release - free the overrides */
void
overrides_release(void *base)
{
	struct conf *c = base;
	size_t i;

	for (i = 0; i < c->quota.noverrides; i++)
		free(c->quota.overrides[i].key);
	free(c->quota.overrides);
}
