/*
 * dkim/table - see table.h.
 *
 * The table is a list of keys (name, d=, s=, loaded key) and a list of
 * rules (pattern, key indexes).  Both the native settings and OpenDKIM's
 * files are turned into these two lists; only the way a rule's pattern
 * is compared differs (glob on address or domain, glob on address, or
 * OpenDKIM's exact candidates).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dkim/key.h"
#include "dkim/table.h"
#include "util/buf.h"
#include "util/xmalloc.h"

#define TABLE_LINE_MAX 4096

enum table_mode {
	TABLE_RULES,		/* dkim.signing */
	TABLE_REFILE,		/* SigningTable refile: */
	TABLE_FILE,		/* SigningTable file: */
};

struct table_key {
	char *name;
	char *domain;		/* "%" = From domain */
	char *selector;
	char *file;
	enum conf_alg alg;
	struct dkim_key *key;	/* NULL when built without keys */
	int shared;		/* key is owned by an earlier entry */
};

struct table_rule {
	char *pattern;
	int on_address;		/* pattern compared with local@domain */
	size_t keys[DKIM_MAX_SIGS];
	size_t nkeys;
	char desc[96];
};

struct dkim_table {
	enum table_mode mode;
	int multiple;
	struct table_key *keys;
	size_t nkeys;
	struct table_rule *rules;
	size_t nrules;
};

/* glob_match - case-insensitive, '*' matches any run of characters */
static int
glob_match(const char *pat, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s) {
		if (*pat == '*') {
			star = pat++;
			resume = s;
		} else if (tolower((unsigned char)*pat) ==
		    tolower((unsigned char)*s)) {
			pat++;
			s++;
		} else if (star) {
			pat = star + 1;
			s = ++resume;
		} else
			return 0;
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static void
table_add_key(struct dkim_table *t, const char *name, const char *domain,
    const char *selector, const char *file, enum conf_alg alg)
{
	struct table_key *k;

	t->keys = xreallocarray(t->keys, t->nkeys + 1, sizeof(*t->keys));
	k = &t->keys[t->nkeys++];
	memset(k, 0, sizeof(*k));
	k->name = xstrdup(name);
	k->domain = xstrdup(domain);
	k->selector = xstrdup(selector);
	k->file = xstrdup(file);
	k->alg = alg;
}

static struct table_rule *
table_add_rule(struct dkim_table *t, const char *pattern)
{
	struct table_rule *r;

	t->rules = xreallocarray(t->rules, t->nrules + 1, sizeof(*t->rules));
	r = &t->rules[t->nrules++];
	memset(r, 0, sizeof(*r));
	r->pattern = xstrdup(pattern);
	r->on_address = strchr(pattern, '@') != NULL;
	return r;
}

static ssize_t
table_find_key(const struct dkim_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nkeys; i++)
		if (strcmp(t->keys[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* table_from_conf - dkim.keys and dkim.signing */
static int
table_from_conf(struct dkim_table *t, const struct conf_dkim *d,
    const char *path, char *err, size_t errlen)
{
	size_t i, j;

	for (i = 0; i < d->nkeys; i++) {
		const struct conf_key *k = &d->keys[i];

		table_add_key(t, k->name, k->domain, k->selector, k->file,
		    k->alg);
	}
	for (i = 0; i < d->nrules; i++) {
		const struct conf_rule *cr = &d->rules[i];
		struct table_rule *r;

		if (cr->nkeys > DKIM_MAX_SIGS) {
			snprintf(err, errlen, "%s:%d: a rule names more than "
			    "%d keys", path, cr->line, DKIM_MAX_SIGS);
			return -1;
		}
		r = table_add_rule(t, cr->match);
		snprintf(r->desc, sizeof(r->desc), "%s:%d", "rule", cr->line);
		for (j = 0; j < cr->nkeys; j++) {
			ssize_t k = table_find_key(t, cr->keys[j]);

			ASSERT(k >= 0);		/* conf_load checked */
			r->keys[r->nkeys++] = (size_t)k;
		}
	}
	return 0;
}

/* split_words - up to max white-space separated words of line, in place */
static size_t
split_words(char *line, char **w, size_t max)
{
	size_t n = 0;
	char *p = line;

	while (*p) {
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0' || *p == '#')
			break;
		if (n == max)
			return max + 1;
		w[n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

/*
 * read_lines - call fn for each non-empty, non-comment line of path;
 * fn returns 0 or -1 with err already set.
 */
static int
read_lines(const char *path, int (*fn)(struct dkim_table *, char **, size_t,
    const char *, unsigned int, char *, size_t), struct dkim_table *t,
    char *err, size_t errlen)
{
	char line[TABLE_LINE_MAX], *w[4];
	unsigned int lineno = 0;
	FILE *fp;
	size_t n;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			snprintf(err, errlen, "%s:%u: line too long", path,
			    lineno);
			goto fail;
		}
		n = split_words(line, w, 3);
		if (n == 0)
			continue;
		if (fn(t, w, n, path, lineno, err, errlen) < 0)
			goto fail;
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(fp);
	return 0;
fail:
	fclose(fp);
	return -1;
}

/* keytable_line - "NAME DOMAIN:SELECTOR:KEYFILE" */
static int
keytable_line(struct dkim_table *t, char **w, size_t n, const char *path,
    unsigned int lineno, char *err, size_t errlen)
{
	char *domain, *selector, *file;

	if (n != 2 || (selector = strchr(w[1], ':')) == NULL ||
	    (file = strchr(selector + 1, ':')) == NULL) {
		snprintf(err, errlen, "%s:%u: want \"NAME DOMAIN:SELECTOR:"
		    "KEYFILE\"", path, lineno);
		return -1;
	}
	domain = w[1];
	*selector++ = '\0';
	*file++ = '\0';
	if (*domain == '\0' || *selector == '\0' || *file == '\0') {
		snprintf(err, errlen, "%s:%u: empty domain, selector or key "
		    "file", path, lineno);
		return -1;
	}
	if (*file != '/') {
		snprintf(err, errlen, "%s:%u: key data inline in the KeyTable "
		    "is not supported; give the path of a key file", path,
		    lineno);
		return -1;
	}
	if (table_find_key(t, w[0]) >= 0) {
		snprintf(err, errlen, "%s:%u: duplicate key name \"%s\"", path,
		    lineno, w[0]);
		return -1;
	}
	table_add_key(t, w[0], domain, selector, file, CONF_ALG_ANY);
	return 0;
}

/* signtable_line - "PATTERN KEYNAME" */
static int
signtable_line(struct dkim_table *t, char **w, size_t n, const char *path,
    unsigned int lineno, char *err, size_t errlen)
{
	struct table_rule *r;
	ssize_t k;

	if (n != 2) {
		snprintf(err, errlen, "%s:%u: want \"PATTERN KEYNAME\"", path,
		    lineno);
		return -1;
	}
	if ((k = table_find_key(t, w[1])) < 0) {
		snprintf(err, errlen, "%s:%u: key \"%s\" is not in the "
		    "KeyTable", path, lineno, w[1]);
		return -1;
	}
	r = table_add_rule(t, w[0]);
	r->on_address = 1;
	r->keys[0] = (size_t)k;
	r->nkeys = 1;
	snprintf(r->desc, sizeof(r->desc), "SigningTable:%u", lineno);
	return 0;
}

/* table_from_files - OpenDKIM KeyTable and SigningTable */
static int
table_from_files(struct dkim_table *t, const struct conf_dkim *d,
    const char *path, char *err, size_t errlen)
{
	const char *kt = d->key_table, *st = d->signing_table;

	if (strncmp(kt, "file:", 5) == 0)
		kt += 5;
	else if (strchr(kt, ':') != NULL && kt[0] != '/') {
		snprintf(err, errlen, "%s: dkim.key_table \"%s\": only file: "
		    "tables are supported", path, kt);
		return -1;
	}
	t->mode = TABLE_FILE;
	if (strncmp(st, "refile:", 7) == 0) {
		st += 7;
		t->mode = TABLE_REFILE;
	} else if (strncmp(st, "file:", 5) == 0)
		st += 5;
	else if (strchr(st, ':') != NULL && st[0] != '/') {
		snprintf(err, errlen, "%s: dkim.signing_table \"%s\": only "
		    "file: and refile: tables are supported", path, st);
		return -1;
	}
	if (read_lines(kt, keytable_line, t, err, errlen) < 0 ||
	    read_lines(st, signtable_line, t, err, errlen) < 0)
		return -1;
	return 0;
}

/* table_load_keys - load every key file once, share equal ones */
static int
table_load_keys(struct dkim_table *t, char *err, size_t errlen)
{
	size_t i, j;

	for (i = 0; i < t->nkeys; i++) {
		struct table_key *k = &t->keys[i];

		for (j = 0; j < i; j++)
			if (strcmp(t->keys[j].file, k->file) == 0 &&
			    t->keys[j].alg == k->alg)
				break;
		if (j < i) {
			k->key = t->keys[j].key;
			k->shared = 1;
			continue;
		}
		if ((k->key = dkim_key_load(k->file, k->alg, err,
		    errlen)) == NULL)
			return -1;
	}
	return 0;
}

static struct dkim_table *
table_build(const struct conf_dkim *d, const char *path, int load, char *err,
    size_t errlen)
{
	struct dkim_table *t = xcalloc(1, sizeof(*t));

	t->mode = TABLE_RULES;
	t->multiple = d->multiple_signatures;
	if (table_from_conf(t, d, path, err, errlen) < 0)
		goto fail;
	if (d->key_table && d->nrules > 0) {
		snprintf(err, errlen, "%s: dkim.signing and dkim.signing_table "
		    "exclude each other; use one of them", path);
		goto fail;
	}
	if (d->key_table && table_from_files(t, d, path, err, errlen) < 0)
		goto fail;
	if (load && table_load_keys(t, err, errlen) < 0)
		goto fail;
	return t;
fail:
	dkim_table_free(t);
	return NULL;
}

struct dkim_table *
dkim_table_new(const struct conf_dkim *d, const char *path, char *err,
    size_t errlen)
{
	return table_build(d, path, 1, err, errlen);
}

struct dkim_table *
dkim_table_new_nokeys(const struct conf_dkim *d, const char *path,
    char *err, size_t errlen)
{
	return table_build(d, path, 0, err, errlen);
}

struct dkim_table *
dkim_table_free(struct dkim_table *t)
{
	size_t i;

	if (t == NULL)
		return NULL;
	for (i = 0; i < t->nkeys; i++) {
		struct table_key *k = &t->keys[i];

		free(k->name);
		free(k->domain);
		free(k->selector);
		free(k->file);
		if (!k->shared)
			dkim_key_free(k->key);
	}
	free(t->keys);
	for (i = 0; i < t->nrules; i++)
		free(t->rules[i].pattern);
	free(t->rules);
	free(t);
	return NULL;
}

size_t
dkim_table_nkeys(const struct dkim_table *t)
{
	return t->nkeys;
}

/* add_rule_keys - append rule's keys to out, skipping repeats */
static size_t
add_rule_keys(const struct dkim_table *t, const struct table_rule *r,
    const char *domain, struct dkim_sign_req *out, size_t n, size_t max)
{
	size_t i, j;

	for (i = 0; i < r->nkeys && n < max; i++) {
		const struct table_key *k = &t->keys[r->keys[i]];

		for (j = 0; j < n; j++)
			if (out[j].selector == k->selector &&
			    out[j].key == k->key)
				break;
		if (j < n)
			continue;
		out[n].key = k->key;
		out[n].domain = strcmp(k->domain, "%") == 0 ? domain :
		    k->domain;
		out[n].selector = k->selector;
		n++;
	}
	return n;
}

/* lookup_exact - OpenDKIM file: candidates, most specific first */
static size_t
lookup_exact(const struct dkim_table *t, const char *local,
    const char *domain, struct dkim_sign_req *out, size_t max,
    const char **rule)
{
	struct buf cands = BUF_INIT;	/* NUL-separated candidates */
	const char *p, *cand;
	size_t i, n = 0;

	buf_appendf(&cands, "%s@%s%c%s%c", local, domain, 0, domain, 0);
	for (p = strchr(domain, '.'); p != NULL; p = strchr(p + 1, '.'))
		buf_appendf(&cands, "%s@%s%c%s%c", local, p, 0, p, 0);
	buf_appendf(&cands, "*%c", 0);
	for (cand = cands.data; n == 0 && cand < cands.data + cands.len;
	    cand += strlen(cand) + 1) {
		for (i = 0; i < t->nrules && n < max; i++) {
			if (strcasecmp(t->rules[i].pattern, cand) != 0)
				continue;
			if (n == 0 && rule)
				*rule = t->rules[i].desc;
			n = add_rule_keys(t, &t->rules[i], domain, out, n, max);
			if (!t->multiple)
				break;
		}
	}
	buf_free(&cands);
	return n;
}

size_t
dkim_table_lookup(const struct dkim_table *t, const char *local,
    const char *domain, struct dkim_sign_req *out, size_t max,
    const char **rule)
{
	char addr[FROM_CAND_MAX];
	size_t i, n = 0;

	if (t->mode == TABLE_FILE)
		return lookup_exact(t, local, domain, out, max, rule);
	snprintf(addr, sizeof(addr), "%s@%s", local, domain);
	for (i = 0; i < t->nrules && n < max; i++) {
		const struct table_rule *r = &t->rules[i];

		if (!glob_match(r->pattern, r->on_address ? addr : domain))
			continue;
		if (n == 0 && rule)
			*rule = r->desc;
		n = add_rule_keys(t, r, domain, out, n, max);
		if (t->mode == TABLE_RULES || !t->multiple)
			break;
	}
	return n;
}
