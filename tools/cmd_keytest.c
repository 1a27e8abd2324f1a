/*
 * cmd_keytest - outpostctl keytest: check DKIM keys against their DNS
 * records (or a record file, -r): every key of the configuration (its
 * keys and its KeyTable), or one key file (-k).  Prints one OK, FAIL or
 * SKIP line per key on stdout.  Exit: 0 all match, 1 a record that
 * does not match or cannot be fetched, EX_CONFIG a key or the
 * configuration that cannot be loaded, EX_USAGE.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "dkim/key.h"
#include "dkim/keygen.h"
#include "tools/outpostctl.h"

#define RECORD_FILE_MAX	(64 * 1024)
#define TABLE_LINE_MAX	4096

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

/* fetch_record - keytest's record: from the -r file, or DNS */
static int
fetch_record(const char *selector, const char *domain, struct buf *rec,
    char *err, size_t errlen, void *arg)
{
	const char *recfile = arg;
	struct buf text = BUF_INIT;
	char owner[600];
	int rc;

	if (recfile == NULL)
		return keygen_lookup(selector, domain, rec, err, errlen);
	(void)snprintf(owner, sizeof(owner), "%s._domainkey.%s", selector,
	    domain);
	rc = read_small(recfile, &text, err, errlen) == -1 ||
	    keygen_record_text(text.data, owner, rec, err, errlen) == -1 ?
	    -1 : 0;
	buf_free(&text);
	return rc;
}

/* test_entry - test one key file against its record; 0 match, 1 not,
 * 78 if the key cannot load */
static int
test_entry(const char *label, const char *file, enum conf_alg alg,
    const char *domain, const char *selector, const char *recfile)
{
	struct keycheck_fetch fetch = { fetch_record, (void *)recfile };
	struct keycheck k;
	int rc;

	if (strcmp(domain, "%") == 0) {
		/* The key must load all the same. */
		struct dkim_key *key;
		char err[512];

		if ((key = dkim_key_load(file, alg, err, sizeof(err))) ==
		    NULL) {
			printf("%s: FAIL %s\n", label, err);
			return EX_CONFIG;
		}
		dkim_key_free(key);
		printf("%s: SKIP domain is \"%%\" (the From domain); test it "
		    "with -k %s -d DOMAIN -s %s\n", label, file, selector);
		return 0;
	}
	keycheck_run(file, alg, domain, selector, fetch, &k);
	if (k.status == 0)
		printf("%s: OK %s._domainkey.%s %s\n", label, selector, domain,
		    conf_alg_name(k.alg));
	else
		printf("%s: FAIL %s\n", label, k.why);
	rc = k.status;
	keycheck_clear(&k);
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
int
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
