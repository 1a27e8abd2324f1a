/*
 * outpostctl - administration: check the configuration, make DKIM keys,
 * check keys against their DNS records, show and change quota counters.
 * See outpostctl(8).
 *
 * Exit codes: 0 success; 1 a record that does not match (or cannot be
 * fetched); 64 (EX_USAGE) bad command line; 78 (EX_CONFIG) bad
 * configuration or key; 73 (EX_CANTCREAT) keygen could not write; 69
 * (EX_UNAVAILABLE) the quota store cannot be opened or fails; 77
 * (EX_NOPERM) run as root, it cannot become the quota store's user.
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dkim/key.h"
#include "dkim/keygen.h"
#include "dkim/table.h"
#include "quota/algo.h"
#include "quota/quota.h"
#include "util/cidr.h"
#include "util/clock.h"
#include "util/buf.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define RECORD_FILE_MAX	(64 * 1024)
#define TABLE_LINE_MAX	4096

static const char *progname = "outpostctl";

/* usage_exit - print the synopsis, exit with code */
static void __attribute__((noreturn))
usage_exit(int code)
{
	fprintf(code == 0 ? stdout : stderr,
	    "usage: %s keygen -d domain -s selector [-a rsa|ed25519] "
	    "[-b bits] [-o dir] [-f]\n"
	    "       %s keytest [-c config]\n"
	    "       %s keytest -k keyfile -d domain -s selector "
	    "[-r recordfile]\n"
	    "       %s check-config [-c config]\n"
	    "       %s quota show key [-c config] [--json]\n"
	    "       %s quota list [--top n] [--limit name] [-c config] "
	    "[--json]\n"
	    "       %s quota reset key [--limit name] [-c config] [--json]\n"
	    "       %s quota set key --limit name value [-c config] "
	    "[--json]\n",
	    progname, progname, progname, progname, progname, progname,
	    progname, progname);
	exit(code);
}

/* usage - a bad command line: EX_USAGE */
static void __attribute__((noreturn))
usage(void)
{
	usage_exit(EX_USAGE);
}

/* read_small - a whole small text file into b */
static int
read_small(const char *path, struct buf *b, char *err, size_t errlen)
{
	char chunk[4096];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			(void)snprintf(err, errlen, "%s: %s", path,
			    strerror(errno));
			(void)close(fd);
			return -1;
		}
		if (n == 0)
			break;
		if (b->len + (size_t)n > RECORD_FILE_MAX) {
			(void)snprintf(err, errlen, "%s: too large", path);
			(void)close(fd);
			return -1;
		}
		buf_append(b, chunk, (size_t)n);
	}
	(void)close(fd);
	buf_reserve(b, 0);
	return 0;
}

/* cmd_keygen - outpostctl keygen */
static int
cmd_keygen(int argc, char **argv)
{
	struct keygen_opts o;
	char err[512], path[4096];
	uint64_t bits = 0;
	int ch, bits_given = 0;

	memset(&o, 0, sizeof(o));
	o.dir = ".";
	o.alg = CONF_ALG_RSA_SHA256;
	while ((ch = getopt(argc, argv, "a:b:d:fo:s:")) != -1) {
		switch (ch) {
		case 'a':
			if (strcasecmp(optarg, "rsa") == 0 ||
			    strcasecmp(optarg, "rsa-sha256") == 0)
				o.alg = CONF_ALG_RSA_SHA256;
			else if (strcasecmp(optarg, "ed25519") == 0 ||
			    strcasecmp(optarg, "ed25519-sha256") == 0)
				o.alg = CONF_ALG_ED25519_SHA256;
			else
				usage();
			break;
		case 'b':
			if (parse_u64(optarg, KEYGEN_RSA_MIN_BITS,
			    KEYGEN_RSA_MAX_BITS, &bits, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "%s: -b %s: %s\n", progname,
				    optarg, err);
				exit(EX_USAGE);
			}
			bits_given = 1;
			break;
		case 'd':
			o.domain = optarg;
			break;
		case 'f':
			o.force = 1;
			break;
		case 'o':
			o.dir = optarg;
			break;
		case 's':
			o.selector = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o.domain == NULL || o.selector == NULL)
		usage();
	if (bits_given && o.alg != CONF_ALG_RSA_SHA256) {
		fprintf(stderr, "%s: -b applies to rsa keys only\n", progname);
		exit(EX_USAGE);
	}
	if (!keygen_name_ok(o.domain) || !keygen_name_ok(o.selector)) {
		fprintf(stderr, "%s: bad domain or selector\n", progname);
		exit(EX_USAGE);
	}
	o.bits = (unsigned int)bits;
	if (keygen_write(&o, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_CANTCREAT;
	}
	(void)snprintf(path, sizeof(path), "%s/%s", o.dir, o.selector);
	printf("%s.private: private key (mode 0600)\n%s.txt: DNS record "
	    "for %s._domainkey.%s\n", path, path, o.selector, o.domain);
	return 0;
}

/*
 * test_one - check one key against its record (from file, or DNS).
 * Returns 0 match, 1 mismatch or no record.
 */
static int
test_one(const char *label, const struct dkim_key *key, const char *domain,
    const char *selector, const char *recfile)
{
	struct buf text = BUF_INIT, rec = BUF_INIT;
	enum keygen_result r;
	char err[512], why[512], owner[600];
	int rc = 1;

	if (recfile != NULL) {
		(void)snprintf(owner, sizeof(owner), "%s._domainkey.%s",
		    selector, domain);
		if (read_small(recfile, &text, err, sizeof(err)) == -1 ||
		    keygen_record_text(text.data, owner, &rec, err,
		    sizeof(err)) == -1) {
			printf("%s: FAIL %s\n", label, err);
			goto done;
		}
	} else if (keygen_lookup(selector, domain, &rec, err,
	    sizeof(err)) == -1) {
		printf("%s: FAIL %s\n", label, err);
		goto done;
	}
	buf_reserve(&rec, 0);
	r = keygen_check(key, rec.data, why, sizeof(why));
	if (r == KEYGEN_MATCH) {
		printf("%s: OK %s._domainkey.%s %s\n", label, selector, domain,
		    conf_alg_name(key->alg));
		rc = 0;
	} else {
		printf("%s: FAIL %s._domainkey.%s: %s\n", label, selector,
		    domain, why);
	}
done:
	buf_free(&text);
	buf_free(&rec);
	return rc;
}

/* test_entry - load one key file and test it; 78 if it cannot load */
static int
test_entry(const char *label, const char *file, enum conf_alg alg,
    const char *domain, const char *selector, const char *recfile)
{
	struct dkim_key *key;
	char err[512];
	int rc;

	if ((key = dkim_key_load(file, alg, err, sizeof(err))) == NULL) {
		printf("%s: FAIL %s\n", label, err);
		return EX_CONFIG;
	}
	if (strcmp(domain, "%") == 0) {
		printf("%s: SKIP domain is \"%%\" (the From domain); test it "
		    "with -k %s -d DOMAIN -s %s\n", label, file, selector);
		rc = 0;
	} else {
		rc = test_one(label, key, domain, selector, recfile);
	}
	dkim_key_free(key);
	return rc;
}

/*
 * test_keytable - every entry of an OpenDKIM KeyTable,
 * "KEYNAME DOMAIN:SELECTOR:KEYFILE"
 */
static int
test_keytable(const char *path, int *worst)
{
	char line[TABLE_LINE_MAX], *name, *val, *sel, *file, *end;
	unsigned int lineno = 0;
	FILE *fp;
	int rc;

	if (strncmp(path, "file:", 5) == 0)
		path += 5;
	if ((fp = fopen(path, "r")) == NULL) {
		fprintf(stderr, "%s: %s: %s\n", progname, path,
		    strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			fprintf(stderr, "%s: %s:%u: line too long\n", progname,
			    path, lineno);
			(void)fclose(fp);
			return -1;
		}
		if ((end = strchr(line, '#')) != NULL)
			*end = '\0';
		name = strtok(line, " \t\r\n");
		val = name != NULL ? strtok(NULL, " \t\r\n") : NULL;
		if (name == NULL)
			continue;
		if (val == NULL || (sel = strchr(val, ':')) == NULL ||
		    (file = strchr(sel + 1, ':')) == NULL) {
			fprintf(stderr, "%s: %s:%u: want \"KEYNAME "
			    "DOMAIN:SELECTOR:KEYFILE\"\n", progname, path,
			    lineno);
			(void)fclose(fp);
			return -1;
		}
		*sel++ = '\0';
		*file++ = '\0';
		rc = test_entry(name, file, CONF_ALG_ANY, val, sel, NULL);
		if (rc > *worst)
			*worst = rc;
	}
	(void)fclose(fp);
	return 0;
}

/* cmd_keytest - outpostctl keytest */
static int
cmd_keytest(int argc, char **argv)
{
	const char *cfile = NULL, *kfile = NULL, *domain = NULL;
	const char *selector = NULL, *rfile = NULL;
	struct conf *c;
	char err[1024];
	int ch, worst = 0, rc;
	size_t i;

	while ((ch = getopt(argc, argv, "c:d:k:r:s:")) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'd':
			domain = optarg;
			break;
		case 'k':
			kfile = optarg;
			break;
		case 'r':
			rfile = optarg;
			break;
		case 's':
			selector = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (kfile != NULL) {
		if (cfile != NULL || domain == NULL || selector == NULL)
			usage();
		if (!keygen_name_ok(domain) || !keygen_name_ok(selector)) {
			fprintf(stderr, "%s: bad domain or selector\n",
			    progname);
			exit(EX_USAGE);
		}
		return test_entry(kfile, kfile, CONF_ALG_ANY, domain, selector,
		    rfile);
	}
	if (domain != NULL || selector != NULL || rfile != NULL)
		usage();
	if (cfile == NULL)
		cfile = CONF_DEFAULT_PATH;
	if ((c = conf_load(cfile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_CONFIG;
	}
	for (i = 0; i < c->dkim.nkeys; i++) {
		rc = test_entry(c->dkim.keys[i].name, c->dkim.keys[i].file,
		    c->dkim.keys[i].alg, c->dkim.keys[i].domain,
		    c->dkim.keys[i].selector, NULL);
		if (rc > worst)
			worst = rc;
	}
	if (c->dkim.key_table != NULL &&
	    test_keytable(c->dkim.key_table, &worst) == -1)
		worst = EX_CONFIG;
	if (c->dkim.nkeys == 0 && c->dkim.key_table == NULL)
		printf("%s: no keys configured\n", cfile);
	conf_free(c);
	return worst;
}

/* count_table_rules - the rule lines of an OpenDKIM SigningTable */
static long
count_table_rules(const char *spec)
{
	char line[TABLE_LINE_MAX], *p;
	const char *path = spec;
	long n = 0;
	FILE *fp;

	if (strncmp(path, "refile:", 7) == 0)
		path += 7;
	else if (strncmp(path, "file:", 5) == 0)
		path += 5;
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL) {
		if ((p = strchr(line, '#')) != NULL)
			*p = '\0';
		for (p = line; *p == ' ' || *p == '\t' || *p == '\r' ||
		    *p == '\n'; p++)
			;
		if (*p != '\0')
			n++;
	}
	(void)fclose(fp);
	return n;
}

/* cmd_check_config - outpostctl check-config */
static int
cmd_check_config(int argc, char **argv)
{
	const char *cfile = CONF_DEFAULT_PATH;
	struct dkim_table *t;
	struct conf *c;
	char err[1024];
	long nrules;
	int ch;

	while ((ch = getopt(argc, argv, "c:")) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if ((c = conf_load(cfile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return EX_CONFIG;
	}
	if ((t = dkim_table_new(c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		conf_free(c);
		return EX_CONFIG;
	}
	nrules = (long)c->dkim.nrules;
	if (c->dkim.signing_table != NULL &&
	    (nrules = count_table_rules(c->dkim.signing_table)) < 0)
		nrules = 0;
	printf("%s: OK, %zu keys, %ld rules\n", cfile, dkim_table_nkeys(t),
	    nrules);
	dkim_table_free(t);
	conf_free(c);
	return 0;
}

/* ---- quota ------------------------------------------------------------- */

/* One counter to print. */
struct qrow {
	const struct conf_limit *limit;
	char *key;
	uint64_t used;
	uint64_t limit_value;
	uint64_t retry_after;
};

/* The rows of show and list: all of them, or the best top of them. */
struct qrows {
	struct qrow *v;
	size_t n;
	size_t cap;
	size_t top;			/* 0: keep all */
	const char *const *match;	/* show: the key per limit, or NULL */
	const struct conf *conf;
};

static const char *const qcount_names[] = { "messages", "recipients",
	"bytes" };
static const char *const qkind_names[] = { "window", "calendar", "rate" };

/*
 * qrow_before - 1 if a is listed before b: more used first, then by
 * limit name and key
 */
static int
qrow_before(const struct qrow *a, const struct qrow *b)
{
	int c;

	if (a->used != b->used)
		return a->used > b->used;
	if ((c = strcmp(a->limit->name, b->limit->name)) != 0)
		return c < 0;
	return strcmp(a->key, b->key) < 0;
}

/* qrow_cmp - qsort order of qrow_before */
static int
qrow_cmp(const void *a, const void *b)
{
	if (qrow_before(a, b))
		return -1;
	return qrow_before(b, a) ? 1 : 0;
}

/* heap_down - restore the heap (last-listed row at the root) from i */
static void
heap_down(struct qrow *v, size_t n, size_t i)
{
	struct qrow t;
	size_t c;

	for (; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && qrow_before(&v[c], &v[c + 1]))
			c++;
		if (!qrow_before(&v[i], &v[c]))
			break;
		t = v[i];
		v[i] = v[c];
		v[c] = t;
	}
}

/* heap_up - restore the heap after adding v[i] */
static void
heap_up(struct qrow *v, size_t i)
{
	struct qrow t;
	size_t p;

	for (; i > 0 && qrow_before(&v[p = (i - 1) / 2], &v[i]); i = p) {
		t = v[i];
		v[i] = v[p];
		v[p] = t;
	}
}

/*
 * qrows_add - quota_list callback: keep the row (show: if its key is the
 * one asked; --top n: if it is among the n first, in a heap whose root
 * is the last of them)
 */
static int
qrows_add(const struct quota_entry *e, void *arg)
{
	struct qrows *r = arg;
	struct qrow row;
	size_t li;

	if (r->match != NULL) {
		li = (size_t)(e->limit - r->conf->limits);
		if (li >= r->conf->nlimits || r->match[li] == NULL ||
		    strcmp(r->match[li], e->key) != 0)
			return 0;
	}
	row.limit = e->limit;
	row.key = NULL;
	row.used = e->used;
	row.limit_value = e->limit_value;
	row.retry_after = e->retry_after;
	if (r->top > 0 && r->n == r->top) {
		row.key = (char *)(uintptr_t)e->key;
		if (!qrow_before(&row, &r->v[0]))
			return 0;
		free(r->v[0].key);
		row.key = xstrdup(e->key);
		r->v[0] = row;
		heap_down(r->v, r->n, 0);
		return 0;
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = xreallocarray(r->v, r->cap, sizeof(*r->v));
	}
	row.key = xstrdup(e->key);
	r->v[r->n++] = row;
	if (r->top > 0)
		heap_up(r->v, r->n - 1);
	return 0;
}

/* qrows_free - free the rows */
static void
qrows_free(struct qrows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		free(r->v[i].key);
	free(r->v);
	r->v = NULL;
	r->n = r->cap = 0;
}

/* fmt_secs - a duration the way the config writes it: 1h, 90s, 1d2h */
static void
fmt_secs(uint64_t s, char *out, size_t outlen)
{
	static const struct {
		uint64_t secs;
		char unit;
	} units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' } };
	size_t i, len = 0, parts = 0;
	int n;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (s == 0) {
		(void)snprintf(out, outlen, "0s");
		return;
	}
	/* the two largest units, rounded up in the second */
	for (i = 0; i < 4 && s > 0 && parts < 2; i++) {
		uint64_t q = s / units[i].secs;

		if (q == 0)
			continue;
		if (parts == 1 && s % units[i].secs != 0)
			q++;
		n = snprintf(out + len, outlen - len, "%llu%c",
		    (unsigned long long)q, units[i].unit);
		if (n < 0 || (size_t)n >= outlen - len)
			return;
		len += (size_t)n;
		s = parts == 1 ? 0 : s - q * units[i].secs;
		parts++;
	}
}

/* fmt_period - a limit's period: "1h" (window, rate), "day", "month" */
static void
fmt_period(const struct conf_limit *l, char *out, size_t outlen)
{
	uint64_t p = l->period;

	if (l->kind == CONF_QKIND_CALENDAR) {
		(void)snprintf(out, outlen, "%s", l->month ? "month" : "day");
		return;
	}
	/* exact units only: 90m stays 90m */
	if (p != 0 && p % 86400 == 0)
		(void)snprintf(out, outlen, "%llud",
		    (unsigned long long)(p / 86400));
	else if (p != 0 && p % 3600 == 0)
		(void)snprintf(out, outlen, "%lluh",
		    (unsigned long long)(p / 3600));
	else if (p != 0 && p % 60 == 0)
		(void)snprintf(out, outlen, "%llum",
		    (unsigned long long)(p / 60));
	else
		(void)snprintf(out, outlen, "%llus", (unsigned long long)p);
}

/* text_key - a key for the terminal: control bytes as \xHH */
static void
text_key(const char *key, struct buf *b)
{
	const unsigned char *p;

	for (p = (const unsigned char *)key; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			buf_appendf(b, "\\x%02x", *p);
		else
			buf_appendc(b, (char)*p);
	}
}

/* utf8_len - length of the valid UTF-8 sequence at p, 0 if invalid */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* json_str - s as a JSON string; invalid UTF-8 bytes become U+FFFD */
static void
json_str(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	buf_appendc(b, '"');
	while (*p != '\0') {
		if (*p == '"' || *p == '\\') {
			buf_appendc(b, '\\');
			buf_appendc(b, (char)*p++);
		} else if (*p < 0x20 || *p == 0x7f) {
			buf_appendf(b, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) == 0) {
			buf_appends(b, "\\ufffd");
			p++;
		} else {
			buf_append(b, p, n);
			p += n;
		}
	}
	buf_appendc(b, '"');
}

/* json_row - one counter as a JSON object */
static void
json_row(struct buf *b, const struct qrow *r)
{
	char period[32];

	fmt_period(r->limit, period, sizeof(period));
	buf_appends(b, "{\"limit\": ");
	json_str(b, r->limit->name);
	buf_appends(b, ", \"key\": ");
	json_str(b, r->key);
	buf_appendf(b, ", \"used\": %llu, \"max\": ",
	    (unsigned long long)r->used);
	if (r->limit_value == QUOTA_UNLIMITED)
		buf_appends(b, "null, \"unlimited\": true");
	else
		buf_appendf(b, "%llu, \"unlimited\": false",
		    (unsigned long long)r->limit_value);
	buf_appendf(b, ", \"count\": \"%s\", \"kind\": \"%s\", \"period\": ",
	    qcount_names[r->limit->count], qkind_names[r->limit->kind]);
	json_str(b, period);
	buf_appendf(b, ", \"retry_after\": %llu}",
	    (unsigned long long)r->retry_after);
}

/* print_rows - the rows as a table (or "no counters" line) or JSON */
static void
print_rows(const struct qrows *r, int json, const char *none)
{
	static const char *const head[6] = { "LIMIT", "KEY", "USED", "LIMIT",
		"PERIOD", "RETRY-AFTER" };
	struct buf out = BUF_INIT, *cells;
	size_t w[6], i, j, len;
	char num[3][32], period[32];

	if (json) {
		buf_appendc(&out, '[');
		for (i = 0; i < r->n; i++) {
			buf_appends(&out, i ? ",\n " : "");
			json_row(&out, &r->v[i]);
		}
		buf_appends(&out, "]\n");
		fputs(buf_cstr(&out), stdout);
		buf_free(&out);
		return;
	}
	if (r->n == 0) {
		printf("%s\n", none);
		return;
	}
	/* six cells per row, the header first */
	cells = xcalloc((r->n + 1) * 6, sizeof(*cells));
	for (j = 0; j < 6; j++) {
		buf_appends(&cells[j], head[j]);
		w[j] = strlen(head[j]);
	}
	for (i = 0; i < r->n; i++) {
		const struct qrow *q = &r->v[i];
		struct buf *c = &cells[(i + 1) * 6];

		(void)snprintf(num[0], sizeof(num[0]), "%llu",
		    (unsigned long long)q->used);
		if (q->limit_value == QUOTA_UNLIMITED)
			(void)snprintf(num[1], sizeof(num[1]), "unlimited");
		else
			(void)snprintf(num[1], sizeof(num[1]), "%llu",
			    (unsigned long long)q->limit_value);
		if (q->retry_after == 0)
			(void)snprintf(num[2], sizeof(num[2]), "-");
		else
			fmt_secs(q->retry_after, num[2], sizeof(num[2]));
		fmt_period(q->limit, period, sizeof(period));
		buf_appends(&c[0], q->limit->name);
		text_key(q->key, &c[1]);
		buf_appends(&c[2], num[0]);
		buf_appends(&c[3], num[1]);
		buf_appends(&c[4], period);
		buf_appends(&c[5], num[2]);
		for (j = 0; j < 6; j++)
			if (c[j].len > w[j])
				w[j] = c[j].len;
	}
	for (i = 0; i <= r->n; i++) {
		for (j = 0; j < 6; j++) {
			const char *t = buf_cstr(&cells[i * 6 + j]);

			len = cells[i * 6 + j].len;
			/* numbers right-aligned, text left */
			if (j == 2 || j == 3)
				printf("%*s%s", (int)(w[j] - len), "", t);
			else if (j == 5)
				printf("%s", t);
			else
				printf("%s%*s", t, (int)(w[j] - len), "");
			if (j < 5)
				fputs("  ", stdout);
		}
		fputc('\n', stdout);
	}
	for (i = 0; i < (r->n + 1) * 6; i++)
		buf_free(&cells[i]);
	free(cells);
}

/*
 * show_key - the key value limit l gives KEY, as the daemons form it
 * (quota_key), or -1 if KEY cannot be one of l's keys: an address for
 * client_address; an address or network for client_network; an
 * address or a domain for sender_domain; "*" for global.
 */
static int
show_key(const struct conf_limit *l, const char *in, char *out,
    size_t outlen)
{
	struct quota_who who;
	char tmp[QUOTA_KEY_MAX + 2], *slash;
	uint8_t addr[16];

	memset(&who, 0, sizeof(who));
	switch (l->key) {
	case CONF_QKEY_SASL_USERNAME:
		who.sasl_username = in;
		break;
	case CONF_QKEY_SENDER:
		who.sender = in;
		break;
	case CONF_QKEY_SENDER_DOMAIN:
		if (strchr(in, '@') == NULL) {
			if (snprintf(tmp, sizeof(tmp), "@%s", in) >=
			    (int)sizeof(tmp))
				return -1;
			who.sender = tmp;
		} else {
			who.sender = in;
		}
		break;
	case CONF_QKEY_CLIENT_ADDRESS:
	case CONF_QKEY_CLIENT_NETWORK:
		if (snprintf(tmp, sizeof(tmp), "%s", in) >= (int)sizeof(tmp))
			return -1;
		if (l->key == CONF_QKEY_CLIENT_NETWORK &&
		    (slash = strchr(tmp, '/')) != NULL)
			*slash = '\0';
		if (cidr_addr_parse(tmp, addr) == -1)
			return -1;
		who.client_addr = addr;
		break;
	case CONF_QKEY_GLOBAL:
		if (strcmp(in, "*") != 0)
			return -1;
		break;
	}
	return quota_key(l, &who, out, outlen);
}

/* limit_named - the configured limit called name, or NULL */
static const struct conf_limit *
limit_named(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nlimits; i++)
		if (strcmp(c->limits[i].name, name) == 0)
			return &c->limits[i];
	return NULL;
}

/* rows_of - the rows of KEY (limit_name: of that limit only) */
static int
rows_of(struct quota *q, const struct conf *c, const char *key,
    const char *limit_name, struct qrows *rows, char *err, size_t errlen)
{
	char (*keys)[QUOTA_KEY_MAX];
	const char **match;
	size_t i;
	int rc;

	keys = xcalloc(c->nlimits + 1, sizeof(*keys));
	match = xcalloc(c->nlimits + 1, sizeof(*match));
	for (i = 0; i < c->nlimits; i++)
		if ((limit_name == NULL ||
		    strcmp(c->limits[i].name, limit_name) == 0) &&
		    show_key(&c->limits[i], key, keys[i],
		    sizeof(keys[i])) == 0)
			match[i] = keys[i];
	rows->match = match;
	rows->conf = c;
	rc = quota_list(q, limit_name, clock_wall_ms(), qrows_add, rows, err, errlen);
	rows->match = NULL;
	free(match);
	free(keys);
	return rc;
}

/*
 * become - switch for good to user pw and its groups; 0, or -1 with err
 */
static int
become(const struct passwd *pw, const char *why, char *err, size_t errlen)
{
	if (setgroups(0, NULL) == -1 ||
	    initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1) {
		(void)snprintf(err, errlen, "cannot become user %s (%s): %s",
		    pw->pw_name, why, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * store_user - run as root, before opening an LMDB store: become the
 * user that the file and the lock file LMDB may create (or a recovery
 * may start afresh) must belong to, so that the daemons can open them.
 * An existing file: its owner.  A missing one: milter.user (unless
 * milter.quotas is "off") or policyd.user (refused when both are set
 * and differ; neither: root, as the daemons run).  0, or -1 with err.
 * Not root: nothing to do.
 */
static int
store_user(const struct conf *c, const char *cfile, char *err,
    size_t errlen)
{
	const char *mu = c->milter.quotas != CONF_MQUOTA_OFF ?
	    c->milter.user : NULL, *pu = c->policyd.user, *u;
	struct passwd *pw;
	struct stat sb;

	if (geteuid() != 0 || c->store.backend != CONF_STORE_LMDB)
		return 0;
	if (stat(c->store.path, &sb) == 0) {
		if (sb.st_uid == 0)
			return 0;
		if ((pw = getpwuid(sb.st_uid)) == NULL) {
			(void)snprintf(err, errlen, "%s is owned by uid %lu, "
			    "which has no user name; run outpostctl as that "
			    "user", c->store.path, (unsigned long)sb.st_uid);
			return -1;
		}
		return become(pw, "the owner of store.path", err, errlen);
	}
	if (mu != NULL && pu != NULL && strcmp(mu, pu) != 0) {
		(void)snprintf(err, errlen, "%s does not exist, and %s names "
		    "two users for it (milter.user \"%s\", policyd.user "
		    "\"%s\"): start the daemon that uses it first, or run "
		    "outpostctl as its user", c->store.path, cfile, mu, pu);
		return -1;
	}
	if ((u = mu != NULL ? mu : pu) == NULL)
		return 0;
	if ((pw = getpwnam(u)) == NULL) {
		(void)snprintf(err, errlen, "%s: %s: no user \"%s\"", cfile,
		    mu != NULL ? "milter.user" : "policyd.user", u);
		return -1;
	}
	return become(pw, mu != NULL ? "milter.user" : "policyd.user", err,
	    errlen);
}

/* cmd_quota - outpostctl quota show|list|reset|set */
static int
cmd_quota(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'l' },
		{ "top", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *cfile = CONF_DEFAULT_PATH, *limit = NULL, *sub, *key = NULL;
	struct qrows rows;
	struct buf out = BUF_INIT;
	struct quota *q;
	struct conf *c;
	uint64_t top = 0, value = 0;
	char err[1024], none[QUOTA_KEY_MAX + 64];
	int ch, json = 0, rc = 0, have_top = 0, nargs;

	if (argc < 2)
		usage();
	sub = argv[1];
	argc--;
	argv++;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'l':
			limit = optarg;
			break;
		case 't':
			if (parse_u64(optarg, 1, 1000000000, &top, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "%s: --top %s: %s\n", progname,
				    optarg, err);
				exit(EX_USAGE);
			}
			have_top = 1;
			break;
		case 'h':
			usage_exit(0);
		default:
			usage();
		}
	}
	nargs = argc - optind;
	if (strcmp(sub, "show") == 0) {
		if (nargs != 1 || limit != NULL || have_top)
			usage();
	} else if (strcmp(sub, "list") == 0) {
		if (nargs != 0)
			usage();
	} else if (strcmp(sub, "reset") == 0) {
		if (nargs != 1 || have_top)
			usage();
	} else if (strcmp(sub, "set") == 0) {
		if (nargs != 2 || limit == NULL || have_top)
			usage();
		if (parse_u64(argv[optind + 1], 0, QUOTA_UNLIMITED - 1, &value,
		    err, sizeof(err)) == -1) {
			fprintf(stderr, "%s: value %s: %s\n", progname,
			    argv[optind + 1], err);
			exit(EX_USAGE);
		}
	} else {
		fprintf(stderr, "%s: unknown quota command \"%s\"\n", progname,
		    sub);
		usage();
	}
	if (nargs > 0)
		key = argv[optind];
	if (key != NULL && (key[0] == '\0' || strlen(key) >= QUOTA_KEY_MAX)) {
		fprintf(stderr, "%s: key must be 1 to %d bytes\n", progname,
		    QUOTA_KEY_MAX - 1);
		exit(EX_USAGE);
	}
	if ((c = conf_load(cfile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return EX_CONFIG;
	}
	if (limit != NULL && limit_named(c, limit) == NULL) {
		fprintf(stderr, "%s: %s: no limit named \"%s\"\n", progname,
		    cfile, limit);
		conf_free(c);
		return EX_USAGE;
	}
	if (store_user(c, cfile, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: quota: %s\n", progname, err);
		conf_free(c);
		return EX_NOPERM;
	}
	if ((q = quota_open(c, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", progname, err);
		conf_free(c);
		return EX_UNAVAILABLE;
	}
	memset(&rows, 0, sizeof(rows));
	if (strcmp(sub, "list") == 0) {
		rows.top = (size_t)top;
		rc = quota_list(q, limit, clock_wall_ms(), qrows_add, &rows, err,
		    sizeof(err));
	} else if (strcmp(sub, "show") == 0) {
		rc = rows_of(q, c, key, NULL, &rows, err, sizeof(err));
	} else if (strcmp(sub, "reset") == 0) {
		rc = quota_reset(q, key, limit, clock_wall_ms(), err, sizeof(err));
	} else {
		rc = quota_set(q, key, limit, value, clock_wall_ms(), err, sizeof(err));
		if (rc == 0)
			rc = rows_of(q, c, key, limit, &rows, err,
			    sizeof(err));
	}
	if (rc == -1) {
		fprintf(stderr, "%s: quota %s: %s\n", progname, sub, err);
		rc = EX_UNAVAILABLE;
	} else if (strcmp(sub, "reset") == 0) {
		if (json) {
			buf_appends(&out, "{\"reset\": true, \"key\": ");
			json_str(&out, key);
			buf_appends(&out, ", \"limit\": ");
			if (limit != NULL)
				json_str(&out, limit);
			else
				buf_appends(&out, "null");
			buf_appends(&out, "}\n");
			fputs(buf_cstr(&out), stdout);
		} else {
			text_key(key, &out);
			printf("%s: counters reset (%s%s)\n", buf_cstr(&out),
			    limit != NULL ? "limit " : "all limits",
			    limit != NULL ? limit : "");
		}
	} else {
		if (rows.n > 1)
			qsort(rows.v, rows.n, sizeof(*rows.v), qrow_cmp);
		if (key != NULL) {
			text_key(key, &out);
			(void)snprintf(none, sizeof(none), "%s: no counters in "
			    "use", buf_cstr(&out));
		} else {
			(void)snprintf(none, sizeof(none), "no counters in "
			    "use");
		}
		print_rows(&rows, json, none);
	}
	buf_free(&out);
	qrows_free(&rows);
	quota_close(q);
	conf_free(c);
	return rc;
}

/* main - dispatch on the subcommand */
int
main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 2)
		usage();
	cmd = argv[1];
	/* getopt sees the subcommand's arguments, the name as argv[0] */
	argc--;
	argv++;
	optind = 1;
	if (strcmp(cmd, "keygen") == 0)
		return cmd_keygen(argc, argv);
	if (strcmp(cmd, "keytest") == 0)
		return cmd_keytest(argc, argv);
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(argc, argv);
	if (strcmp(cmd, "quota") == 0)
		return cmd_quota(argc, argv);
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
		usage_exit(0);
	fprintf(stderr, "%s: unknown command \"%s\"\n", progname, cmd);
	usage();
}
