/*
 * cmd_quota - outpostctl quota show|list|reset|set: read and change the
 * counters of the quota store that the configuration names, as the
 * daemons count them (quota/quota.h).
 *
 *	show KEY	the counters of KEY under every limit it can be a
 *			key of (show_key: KEY as the daemons derive it)
 *	list		every counter in use, most used first (--top n,
 *			--limit name)
 *	reset KEY	forget KEY's counters (--limit: of one limit)
 *	set KEY VALUE	set KEY's counter of --limit, then show it
 *
 * Run as root on an LMDB store, it first becomes the user the store
 * belongs to (store_user), so that files it creates stay usable by the
 * daemons.  Output on stdout as a table or JSON (--json, quota_rows.c).
 * Exit: 0; EX_USAGE; EX_CONFIG; EX_NOPERM (cannot become that user);
 * EX_UNAVAILABLE (the store cannot be opened or fails).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "quota/algo.h"
#include "tools/outpostctl.h"
#include "util/cidr.h"
#include "util/clock.h"
#include "util/parse.h"
#include "util/xmalloc.h"

/* The command line of outpostctl quota. */
struct quota_args {
	const char *sub;		/* show, list, reset or set */
	const char *cfile;
	const char *limit;		/* --limit, or NULL */
	const char *key;		/* KEY, or NULL (list) */
	uint64_t top;			/* --top, 0 if not given */
	int have_top;
	uint64_t value;			/* set: VALUE */
	int json;
};

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

	for (i = 0; i < c->quota.nlimits; i++)
		if (strcmp(c->quota.limits[i].name, name) == 0)
			return &c->quota.limits[i];
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

	keys = xcalloc(c->quota.nlimits + 1, sizeof(*keys));
	match = xcalloc(c->quota.nlimits + 1, sizeof(*match));
	for (i = 0; i < c->quota.nlimits; i++)
		if ((limit_name == NULL ||
		    strcmp(c->quota.limits[i].name, limit_name) == 0) &&
		    show_key(&c->quota.limits[i], key, keys[i],
		    sizeof(keys[i])) == 0)
			match[i] = keys[i];
	rows->match = match;
	rows->conf = c;
	rc = quota_list(q, limit_name, clock_wall_ms(), qrows_add, rows, err,
	    errlen);
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
	const char *path = c->quota.store.path;
	struct passwd *pw;
	struct stat sb;

	if (geteuid() != 0 || c->quota.store.backend != CONF_STORE_LMDB)
		return 0;
	if (stat(path, &sb) == 0) {
		if (sb.st_uid == 0)
			return 0;
		if ((pw = getpwuid(sb.st_uid)) == NULL) {
			(void)snprintf(err, errlen, "%s is owned by uid %lu, "
			    "which has no user name; run outpostctl as that "
			    "user", path, (unsigned long)sb.st_uid);
			return -1;
		}
		return become(pw, "the owner of store.path", err, errlen);
	}
	if (mu != NULL && pu != NULL && strcmp(mu, pu) != 0) {
		(void)snprintf(err, errlen, "%s does not exist, and %s names "
		    "two users for it (milter.user \"%s\", policyd.user "
		    "\"%s\"): start the daemon that uses it first, or run "
		    "outpostctl as its user", path, cfile, mu, pu);
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

/* parse_opts - the options of outpostctl quota SUB into a; returns
 * optind (a bad option ends the process) */
static int
parse_opts(int argc, char **argv, struct quota_args *a)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'l' },
		{ "top", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	char err[1024];
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a->cfile = optarg;
			break;
		case 'j':
			a->json = 1;
			break;
		case 'l':
			a->limit = optarg;
			break;
		case 't':
			if (parse_u64(optarg, 1, 1000000000, &a->top, err,
			    sizeof(err)) == -1) {
				fprintf(stderr, "%s: --top %s: %s\n", progname,
				    optarg, err);
				exit(EX_USAGE);
			}
			a->have_top = 1;
			break;
		case 'h':
			usage_exit(0);
		default:
			usage();
		}
	}
	return optind;
}

/* check_args - the arguments left (args, nargs) for a->sub: KEY and
 * VALUE into a, or the end of the process with EX_USAGE */
static void
check_args(struct quota_args *a, char **args, int nargs)
{
	char err[1024];

	if (strcmp(a->sub, "show") == 0) {
		if (nargs != 1 || a->limit != NULL || a->have_top)
			usage();
	} else if (strcmp(a->sub, "list") == 0) {
		if (nargs != 0)
			usage();
	} else if (strcmp(a->sub, "reset") == 0) {
		if (nargs != 1 || a->have_top)
			usage();
	} else if (strcmp(a->sub, "set") == 0) {
		if (nargs != 2 || a->limit == NULL || a->have_top)
			usage();
		if (parse_u64(args[1], 0, QUOTA_UNLIMITED - 1, &a->value,
		    err, sizeof(err)) == -1) {
			fprintf(stderr, "%s: value %s: %s\n", progname,
			    args[1], err);
			exit(EX_USAGE);
		}
	} else {
		fprintf(stderr, "%s: unknown quota command \"%s\"\n", progname,
		    a->sub);
		usage();
	}
	if (nargs > 0)
		a->key = args[0];
	if (a->key != NULL && (a->key[0] == '\0' ||
	    strlen(a->key) >= QUOTA_KEY_MAX)) {
		fprintf(stderr, "%s: key must be 1 to %d bytes\n", progname,
		    QUOTA_KEY_MAX - 1);
		exit(EX_USAGE);
	}
}

/*
 * open_store - load the configuration and open its quota store (as the
 * store's user when root); 0 with *cp and *qp set (the caller frees
 * both), or the exit status with the reason on stderr
 */
static int
open_store(const struct quota_args *a, struct conf **cp, struct quota **qp)
{
	struct conf *c;
	char err[1024];

	if ((c = conf_load(a->cfile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return EX_CONFIG;
	}
	if (a->limit != NULL && limit_named(c, a->limit) == NULL) {
		fprintf(stderr, "%s: %s: no limit named \"%s\"\n", progname,
		    a->cfile, a->limit);
		conf_free(c);
		return EX_USAGE;
	}
	if (store_user(c, a->cfile, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: quota: %s\n", progname, err);
		conf_free(c);
		return EX_NOPERM;
	}
	if ((*qp = quota_open(&c->quota, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", progname, err);
		conf_free(c);
		return EX_UNAVAILABLE;
	}
	*cp = c;
	return 0;
}

/* run_sub - do what a->sub asks of the store, the rows to print into
 * rows; 0, or -1 with err */
static int
run_sub(const struct quota_args *a, struct quota *q, const struct conf *c,
    struct qrows *rows, char *err, size_t errlen)
{
	int rc;

	if (strcmp(a->sub, "list") == 0) {
		rows->top = (size_t)a->top;
		return quota_list(q, a->limit, clock_wall_ms(), qrows_add,
		    rows, err, errlen);
	}
	if (strcmp(a->sub, "show") == 0)
		return rows_of(q, c, a->key, NULL, rows, err, errlen);
	if (strcmp(a->sub, "reset") == 0)
		return quota_reset(q, a->key, a->limit, clock_wall_ms(), err,
		    errlen);
	rc = quota_set(q, a->key, a->limit, a->value, clock_wall_ms(), err,
	    errlen);
	if (rc == 0)
		rc = rows_of(q, c, a->key, a->limit, rows, err, errlen);
	return rc;
}

/* print_reset - what reset says: a line, or a JSON object */
static void
print_reset(const struct quota_args *a)
{
	struct buf out = BUF_INIT;

	if (a->json) {
		buf_appends(&out, "{\"reset\": true, \"key\": ");
		json_str(&out, a->key);
		buf_appends(&out, ", \"limit\": ");
		if (a->limit != NULL)
			json_str(&out, a->limit);
		else
			buf_appends(&out, "null");
		buf_appends(&out, "}\n");
		fputs(buf_cstr(&out), stdout);
	} else {
		text_key(a->key, &out);
		printf("%s: counters reset (%s%s)\n", buf_cstr(&out),
		    a->limit != NULL ? "limit " : "all limits",
		    a->limit != NULL ? a->limit : "");
	}
	buf_free(&out);
}

/* print_counters - the rows of show, list and set, sorted */
static void
print_counters(const struct quota_args *a, struct qrows *rows)
{
	struct buf out = BUF_INIT;
	char none[QUOTA_KEY_MAX + 64];

	qrows_sort(rows);
	if (a->key != NULL) {
		text_key(a->key, &out);
		(void)snprintf(none, sizeof(none), "%s: no counters in use",
		    buf_cstr(&out));
	} else {
		(void)snprintf(none, sizeof(none), "no counters in use");
	}
	qrows_print(rows, a->json, none);
	buf_free(&out);
}

/* cmd_quota - outpostctl quota show|list|reset|set */
int
cmd_quota(int argc, char **argv)
{
	struct quota_args a;
	struct qrows rows;
	struct quota *q;
	struct conf *c;
	char err[1024];
	int rc, ind;

	if (argc < 2)
		usage();
	memset(&a, 0, sizeof(a));
	a.cfile = CONF_DEFAULT_PATH;
	a.sub = argv[1];
	ind = parse_opts(argc - 1, argv + 1, &a);
	check_args(&a, argv + 1 + ind, argc - 1 - ind);
	if ((rc = open_store(&a, &c, &q)) != 0)
		return rc;
	memset(&rows, 0, sizeof(rows));
	rc = run_sub(&a, q, c, &rows, err, sizeof(err));
	if (rc == -1) {
		fprintf(stderr, "%s: quota %s: %s\n", progname, a.sub, err);
		rc = EX_UNAVAILABLE;
	} else if (strcmp(a.sub, "reset") == 0) {
		print_reset(&a);
	} else {
		print_counters(&a, &rows);
	}
	qrows_free(&rows);
	quota_close(q);
	conf_free(c);
	return rc;
}
