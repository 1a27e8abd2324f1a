/*
 * spf/testhooks.h - the test hooks of the SPF worker: a zone file of DNS
 * data and TEST pseudo-records that make a worker misbehave on purpose.
 *
 * Only tests/outpost-spf-worker-test has them: it is spf/worker.c built
 * with -DOUTPOST_TEST_HOOKS and spf/testhooks.c, and the tests point
 * spf.worker at it.  The installed outpost-spf-worker is built without
 * the macro: there every function below is an inline no-op, so neither
 * the hooks nor the name of their environment variable are in it
 * (tests/check_worker_hooks.sh checks that with strings(1)).
 *
 * The zone file is named by $OUTPOST_SPF_ZONE in the worker's
 * environment (the milter's, which the supervisor inherits).  One record
 * a line, "#" comments:
 *	NAME TYPE DATA...	a record (A, AAAA, TXT, MX, PTR, SPF)
 *	NAME TYPE @timeout	lookups of NAME/TYPE time out
 *	NAME TYPE @nxdomain	NAME does not exist
 *	NAME TEST sleep MS	checks of the domain NAME first sleep MS
 *	NAME TEST crash|exit|garbage|short	the worker abort()s, exits,
 *				sends garbage or half an answer instead
 *	NAME TEST open PATH	answer "none" with the result of open(PATH)
 *				(proves what the worker's user can read)
 *	NAME TEST alloc MIB	answer "none" saying whether MIB MiB could
 *				be allocated (proves RLIMIT_AS)
 *	NAME TEST retire	check as usual, then retire
 * The domain of a check is the sender's domain (HELO for the null
 * sender) or the HELO name.
 */
#ifndef OUTPOST_SPF_TESTHOOKS_H
#define OUTPOST_SPF_TESTHOOKS_H

#include <stddef.h>
#include <stdint.h>

#include "spf/pool.h"
#include "spf/spf.h"

struct spf_hooks;

/* What the worker does with a check after spf_hooks_run. */
enum spf_hook_act {
	SPF_HOOK_CHECK,		/* check as usual */
	SPF_HOOK_RETIRE,	/* check as usual, then retire */
	SPF_HOOK_ANSWER,	/* send the answer the hook filled in */
	SPF_HOOK_DONE,		/* the hook has answered (or not) itself */
};

#ifdef OUTPOST_TEST_HOOKS

/*
 * spf_hooks_load - read the zone file of $OUTPOST_SPF_ZONE into *hp
 * (caller owns it, spf_hooks_free); *hp NULL when the variable is unset
 * or empty.  0, or -1 with err naming the file.
 */
int spf_hooks_load(struct spf_hooks **hp, char *err, size_t errlen);

/* spf_hooks_free - release h (NULL is fine); returns NULL */
struct spf_hooks *spf_hooks_free(struct spf_hooks *h);

/*
 * spf_hooks_zone_add - the zone's DNS records into c, a checker made
 * with use_zone set; 0, or -1 with err.
 */
int spf_hooks_zone_add(const struct spf_hooks *h, struct spf_checker *c,
    char *err, size_t errlen);

/*
 * spf_hooks_run - the TEST record of domain, if any, for request seq on
 * the worker's socket fd; may sleep, send on fd, or end the process.
 * With SPF_HOOK_ANSWER *a is the answer to send.
 */
enum spf_hook_act spf_hooks_run(const struct spf_hooks *h, int fd,
    uint32_t seq, enum spf_kind kind, const char *domain,
    struct spf_answer *a);

#else /* the installed worker: no hooks */

static inline int
spf_hooks_load(struct spf_hooks **hp, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	*hp = NULL;
	return 0;
}

static inline struct spf_hooks *
spf_hooks_free(struct spf_hooks *h)
{
	(void)h;
	return NULL;
}

static inline int
spf_hooks_zone_add(const struct spf_hooks *h, struct spf_checker *c,
    char *err, size_t errlen)
{
	(void)h;
	(void)c;
	(void)err;
	(void)errlen;
	return 0;
}

static inline enum spf_hook_act
spf_hooks_run(const struct spf_hooks *h, int fd, uint32_t seq,
    enum spf_kind kind, const char *domain, struct spf_answer *a)
{
	(void)h;
	(void)fd;
	(void)seq;
	(void)kind;
	(void)domain;
	(void)a;
	return SPF_HOOK_CHECK;
}

#endif /* OUTPOST_TEST_HOOKS */

#endif /* OUTPOST_SPF_TESTHOOKS_H */
