/*
 * conf_param - the walker over the setting tables (conf_impl.h): it sets
 * the defaults, reads each row from its group, refuses names no row has,
 * and frees what it read.  Also the readers of one value (get_*) that
 * the section loaders share, and conf_setting_names().
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
#include "util/cidr.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

/* Enums are read and written as int (conf_impl.h, CONF_T_ENUM). */
_Static_assert(sizeof(enum conf_on_error) == sizeof(int) &&
    sizeof(enum conf_spf_action) == sizeof(int) &&
    sizeof(enum conf_alg) == sizeof(int), "enum fields are ints");

#define FIELD(base, p, type)	((type *)(void *)((char *)(base) + (p)->off))
#define COUNT(base, p)		((size_t *)(void *)((char *)(base) + (p)->noff))

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

/* get_bool - optional true or false */
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

/*
 * get_entries - member name of g, a list ( {...} ) of *n entries; what
 * names it in errors.  NULL with err when it is no list.
 */
config_setting_t *
get_entries(struct loader *ld, const config_setting_t *g, const char *name,
    const char *what, int *n)
{
	config_setting_t *list = config_setting_get_member(g, name);

	if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
		fail(ld, list, "\"%s\" must be a list ( {...} )", what);
		return NULL;
	}
	*n = config_setting_length(list);
	return list;
}

/* free_strings - free v[0..n) and v (NULL accepted) */
void
free_strings(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}


/* param_group_len - the length of p's group path ("spf.inbound": 11) */
static size_t
param_group_len(const struct conf_param *p)
{
	const char *dot;

	if (p->type == CONF_T_CHECK)
		return strlen(p->name);
	dot = strrchr(p->name, '.');
	return dot != NULL ? (size_t)(dot - p->name) : 0;
}

/* param_leaf - the last part of p's name, as written in its group */
static const char *
param_leaf(const struct conf_param *p)
{
	const char *dot = strrchr(p->name, '.');

	return dot != NULL ? dot + 1 : p->name;
}

/* param_known - does group (gl bytes of path) of table t hold child? */
static int
param_known(const struct conf_param *t, const char *path, size_t gl,
    const char *child)
{
	size_t cl = strlen(child);
	const char *n;

	for (; t->name != NULL; t++) {
		if (t->type == CONF_T_CHECK)
			continue;
		n = t->name;
		if (gl > 0) {
			if (strncmp(n, path, gl) != 0 || n[gl] != '.')
				continue;
			n += gl + 1;
		}
		if (strncmp(n, child, cl) == 0 &&
		    (n[cl] == '\0' || n[cl] == '.'))
			return 1;
	}
	return 0;
}

/* check_names - every child of group g is a setting or group of t */
static int
check_names(struct loader *ld, const config_setting_t *g, const char *where,
    const struct conf_param *t, const char *path, size_t gl)
{
	int i, n = config_setting_length(g);

	for (i = 0; i < n; i++) {
		config_setting_t *c = config_setting_get_elem(g, i);
		const char *name = config_setting_name(c);

		if (name == NULL || !param_known(t, path, gl, name))
			return fail(ld, c, "unknown setting \"%s%s\"", where,
			    name ? name : "?");
	}
	return 0;
}

/*
 * enter_group - find group path[0..gl) under root (NULL when absent),
 * check that it is a group and that it holds only names t knows
 */
static int
enter_group(struct loader *ld, const config_setting_t *root,
    const char *prefix, const struct conf_param *t, const char *path,
    size_t gl, const config_setting_t **g)
{
	char where[128], sub[96];

	*g = root;
	if (gl == 0)
		return 0;
	snprintf(sub, sizeof(sub), "%.*s", (int)gl, path);
	if ((*g = config_setting_lookup((config_setting_t *)root, sub)) ==
	    NULL)
		return 0;
	if (!config_setting_is_group(*g))
		return fail(ld, *g, "\"%s%s\" must be a group { ... }", prefix,
		    sub);
	snprintf(where, sizeof(where), "%s%s.", prefix, sub);
	return check_names(ld, *g, where, t, path, gl);
}

/* get_cidrs - optional list of networks, replacing the default */
static int
get_cidrs(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	struct cidr **nets = FIELD(base, p, struct cidr *);
	char **v = NULL, err[160];
	size_t n = 0, i;

	if (get_strings(ld, g, param_leaf(p), &v, &n) < 0)
		return -1;
	free(*nets);
	*nets = xcalloc(n + 1, sizeof(struct cidr));
	*COUNT(base, p) = n;
	for (i = 0; i < n; i++)
		if (cidr_parse(v[i], &(*nets)[i], err, sizeof(err)) < 0) {
			free_strings(v, n);
			return fail(ld, config_setting_get_member(g,
			    param_leaf(p)), "%s: %s", p->name, err);
		}
	free_strings(v, n);
	return 0;
}

/* get_param_enum - names[] value; those in deny are refused here */
static int
get_param_enum(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	int *out = FIELD(base, p, int), e = *out;
	const char *name = param_leaf(p);

	if (get_enum(ld, g, name, p->names, &e) < 0)
		return -1;
	if (p->deny & (1u << e)) {
		if (p->deny_why != NULL)
			return fail(ld, config_setting_get_member(g, name),
			    "\"%s\" %s", name, p->deny_why);
		return fail(ld, config_setting_get_member(g, name),
		    "\"%s\": \"%s\" is not allowed here", name, p->names[e]);
	}
	*out = e;
	return 0;
}

/* get_param - read row p (its member of g is present) into base */
static int
get_param(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	const char *name = param_leaf(p);
	uint64_t v;

	switch (p->type) {
	case CONF_T_STRING:
		return get_string(ld, g, name, FIELD(base, p, char *));
	case CONF_T_BOOL:
		return get_bool(ld, g, name, FIELD(base, p, int));
	case CONF_T_UINT:
		if (get_u64(ld, g, name, p->min, p->max, p->parse, &v) < 0)
			return -1;
		*FIELD(base, p, unsigned int) =
		    (unsigned int)(v * (p->scale ? p->scale : 1));
		return 0;
	case CONF_T_U64:
		return get_u64(ld, g, name, p->min, p->max, p->parse,
		    FIELD(base, p, uint64_t));
	case CONF_T_MODE:
		return get_mode(ld, g, name, FIELD(base, p, unsigned int));
	case CONF_T_ENUM:
		return get_param_enum(ld, g, p, base);
	case CONF_T_STRINGS:
		free_strings(*FIELD(base, p, char **), *COUNT(base, p));
		*FIELD(base, p, char **) = NULL;
		*COUNT(base, p) = 0;
		return get_strings(ld, g, name, FIELD(base, p, char **),
		    COUNT(base, p));
	case CONF_T_CIDRS:
		return get_cidrs(ld, g, p, base);
	case CONF_T_CUSTOM:
	case CONF_T_CHECK:
		break;
	}
	return 0;
}

/* load_param - row p from group g: read, then its hook */
static int
load_param(struct loader *ld, const config_setting_t *g,
    const struct conf_param *p, void *base)
{
	if (p->type == CONF_T_CHECK)
		return p->load(ld, g, p, base);
	if (config_setting_get_member(g, param_leaf(p)) == NULL)
		return 0;
	if (get_param(ld, g, p, base) < 0)
		return -1;
	return p->load != NULL ? p->load(ld, g, p, base) : 0;
}

/*
 * params_load - read the rows of t from root (the file, or one list
 * entry) into base, in table order; prefix goes before names in errors
 */
int
params_load(struct loader *ld, const config_setting_t *root,
    const char *prefix, const struct conf_param *t, void *base)
{
	const config_setting_t *g = root;
	const struct conf_param *p, *cur = NULL;
	size_t gl;

	if (check_names(ld, root, prefix, t, "", 0) < 0)
		return -1;
	for (p = t; p->name != NULL; p++) {
		gl = param_group_len(p);
		if (cur == NULL || gl != param_group_len(cur) ||
		    strncmp(p->name, cur->name, gl) != 0) {
			cur = p;
			if (enter_group(ld, root, prefix, t, p->name, gl,
			    &g) < 0)
				return -1;
		}
		if (g != NULL && load_param(ld, g, p, base) < 0)
			return -1;
	}
	return 0;
}

/* copy_list - a new NULL-terminated copy of def; *n its length */
static char **
copy_list(const char *const *def, size_t *n)
{
	char **v;

	for (*n = 0; def[*n] != NULL; (*n)++)
		;
	v = xcalloc(*n + 1, sizeof(*v));
	for (*n = 0; def[*n] != NULL; (*n)++)
		v[*n] = xstrdup(def[*n]);
	return v;
}

/* params_defaults - every row of t to its default in base */
void
params_defaults(const struct conf_param *t, void *base)
{
	const struct conf_param *p;
	size_t i;

	for (p = t; p->name != NULL; p++)
		switch (p->type) {
		case CONF_T_STRING:
			*FIELD(base, p, char *) = p->def_str ?
			    xstrdup(p->def_str) : NULL;
			break;
		case CONF_T_BOOL:
		case CONF_T_ENUM:
			*FIELD(base, p, int) = (int)p->def;
			break;
		case CONF_T_UINT:
		case CONF_T_MODE:
			*FIELD(base, p, unsigned int) = (unsigned int)p->def;
			break;
		case CONF_T_U64:
			*FIELD(base, p, uint64_t) = p->def;
			break;
		case CONF_T_STRINGS:
			if (p->def_list != NULL)
				*FIELD(base, p, char **) =
				    copy_list(p->def_list, COUNT(base, p));
			break;
		case CONF_T_CIDRS:
			if (p->def_list == NULL)
				break;
			for (i = 0; p->def_list[i] != NULL; i++)
				;
			*FIELD(base, p, struct cidr *) = xcalloc(i + 1,
			    sizeof(struct cidr));
			*COUNT(base, p) = i;
			while (i-- > 0)
				cidr_parse(p->def_list[i],
				    &(*FIELD(base, p, struct cidr *))[i],
				    NULL, 0);
			break;
		case CONF_T_CUSTOM:
			if (p->init != NULL)
				p->init(base);
			break;
		case CONF_T_CHECK:
			break;
		}
}

/* params_free - free what the rows of t hold in base */
void
params_free(const struct conf_param *t, void *base)
{
	const struct conf_param *p;

	for (p = t; p->name != NULL; p++)
		switch (p->type) {
		case CONF_T_STRING:
			free(*FIELD(base, p, char *));
			break;
		case CONF_T_STRINGS:
			free_strings(*FIELD(base, p, char **),
			    *COUNT(base, p));
			break;
		case CONF_T_CIDRS:
			free(*FIELD(base, p, struct cidr *));
			break;
		case CONF_T_CUSTOM:
			if (p->release != NULL)
				p->release(base);
			break;
		default:
			break;
		}
}

/* conf_setting_names - see conf.h */
void
conf_setting_names(void (*fn)(const char *, void *), void *arg)
{
	const struct conf_param *p, *e;
	char name[128];

	for (p = conf_params; p->name != NULL; p++) {
		if (p->type == CONF_T_CHECK)
			continue;
		fn(p->name, arg);
		for (e = p->elems; e != NULL && e->name != NULL; e++) {
			snprintf(name, sizeof(name), "%s.%s", p->name,
			    e->name);
			fn(name, arg);
		}
	}
}
