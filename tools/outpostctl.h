/*
 * outpostctl - what the commands of outpostctl(8) share.
 *
 * Each command is one file, tools/cmd_NAME.c, with one entry point
 * int cmd_NAME(int argc, char **argv) that main() (tools/outpostctl.c)
 * finds in its dispatch table: argv[0] is the command's name, getopt is
 * reset for it, and the return value is the exit status.  A bad command
 * line ends the process through usage() (EX_USAGE).
 *
 * Exit codes: 0 success; 1 a record that does not match (or cannot be
 * fetched); 64 (EX_USAGE) bad command line; 78 (EX_CONFIG) bad
 * configuration or key; 73 (EX_CANTCREAT) keygen could not write; 69
 * (EX_UNAVAILABLE) the quota store cannot be opened or fails; 77
 * (EX_NOPERM) run as root, it cannot become the quota store's user.
 */
#ifndef OUTPOST_OUTPOSTCTL_H
#define OUTPOST_OUTPOSTCTL_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "quota/quota.h"
#include "util/buf.h"

/* The name in messages: "outpostctl". */
extern const char *const progname;

/* usage_exit - print the synopsis of every command, exit with code */
void usage_exit(int code) __attribute__((noreturn));
/* usage - a bad command line: the synopsis on stderr, EX_USAGE */
void usage(void) __attribute__((noreturn));

int cmd_keygen(int argc, char **argv);
int cmd_keytest(int argc, char **argv);
int cmd_check_config(int argc, char **argv);
int cmd_quota(int argc, char **argv);
int cmd_check_domain(int argc, char **argv);

/* ---- tools/keycheck.c: a DKIM key against its record (keytest,
 * check-domain) ---- */

/* Where the record comes from: fn fills rec with the TXT text of
 * SELECTOR._domainkey.DOMAIN (character-strings joined), or returns -1
 * with err. */
struct keycheck_fetch {
	int (*fn)(const char *selector, const char *domain, struct buf *rec,
	    char *err, size_t errlen, void *arg);
	void *arg;
};

/* The outcome of one key. */
struct keycheck {
	int status;		/* 0 match; 1 no record or another key;
				 * EX_CONFIG the key file cannot load */
	enum conf_alg alg;	/* of the loaded key */
	char why[600];		/* not 0: what is wrong */
	char *zone;		/* the zone line to publish (owned, see
				 * keycheck_clear), NULL if no key */
};

/* keycheck_run - load file (alg, or CONF_ALG_ANY), fetch its record
 * and compare them (keygen_check); always fills *out */
void keycheck_run(const char *file, enum conf_alg alg, const char *domain,
    const char *selector, struct keycheck_fetch fetch, struct keycheck *out);
/* keycheck_key - the same with a key already loaded (borrowed) */
struct dkim_key;
void keycheck_key(const struct dkim_key *key, const char *domain,
    const char *selector, struct keycheck_fetch fetch, struct keycheck *out);
/* keycheck_clear - free what keycheck_run allocated in k */
void keycheck_clear(struct keycheck *k);

/* ---- tools/quota_rows.c: the counters that quota show/list print ---- */

/* One counter to print. */
struct qrow {
	const struct conf_limit *limit;	/* borrowed from the conf */
	char *key;			/* owned */
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

/* qrows_add - quota_list callback: keep the row (see quota_rows.c) */
int qrows_add(const struct quota_entry *e, void *arg);
/* qrows_sort - most used first, then by limit name and key */
void qrows_sort(struct qrows *r);
/* qrows_free - free the rows (the struct itself is the caller's) */
void qrows_free(struct qrows *r);
/* qrows_print - the rows as a table (none: the line when there are
 * none) or as a JSON array, on stdout */
void qrows_print(const struct qrows *r, int json, const char *none);

/* text_key - append a key for the terminal: control bytes as \xHH */
void text_key(const char *key, struct buf *b);
/* json_str - append s as a JSON string; invalid UTF-8 becomes U+FFFD */
void json_str(struct buf *b, const char *s);

#endif
