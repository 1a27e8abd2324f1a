/*
 * outpostctl - administration: check the configuration, make DKIM keys,
 * check keys against their DNS records.  See outpostctl(8).
 *
 * Exit codes: 0 success; 1 a record that does not match (or cannot be
 * fetched); 64 (EX_USAGE) bad command line; 78 (EX_CONFIG) bad
 * configuration or key; 73 (EX_CANTCREAT) keygen could not write.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dkim/key.h"
#include "dkim/keygen.h"
#include "dkim/table.h"
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
	    "       %s check-config [-c config]\n",
	    progname, progname, progname, progname);
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
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)
		usage_exit(0);
	fprintf(stderr, "%s: unknown command \"%s\"\n", progname, cmd);
	usage();
}
