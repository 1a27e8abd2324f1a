/*
 * pool - the milter's side of SPF isolation: a small pool of worker
 * processes (outpost-spf-worker) that run libspf2, and the one call that
 * asks them.
 *
 * At start, while still root, spf_pool_new() starts a supervisor
 * (outpost-spf-worker --supervisor) over a socketpair: a fresh exec, so it
 * holds no DKIM keys.  The supervisor forks the workers, each under
 * spf.user, with resource limits (address space spf.memory, CPU, no core
 * files, few descriptors), and hands each worker's socket back to the
 * milter (SCM_RIGHTS).  The milter never links libspf2.
 *
 * spf_pool_check() borrows an idle worker (when all are busy, it starts
 * one more, up to spf.max_workers, and only then waits), writes one
 * bounded request, and waits for the answer until the
 * deadline (spf.timeout).  A worker that dies, sends garbage or overruns
 * is killed (by the supervisor) and replaced, and that one check returns
 * SPF_RES_TEMPERROR with text saying why; the milter goes on.
 * Thread-safe: one check per milter thread at a time.
 *
 * The wire format (spf/wire.h) is fixed-size records, checked on both
 * sides.
 *
 * How the milter uses it:
 *	- spf_pool_new() while still root and before any thread (after the
 *	  config is loaded, before daemon_drop_privileges): it forks and
 *	  execs spf.worker, so calling it later works too (only
 *	  async-signal-safe calls run between fork and exec), but then
 *	  the supervisor is not root and the workers keep the milter's
 *	  uid (logged once).  The pool keeps its start-time settings
 *	  across reloads (spf.workers, max_workers, user, worker, memory,
 *	  timeout, the lookup limits and spf.inbound.max_per_client and
 *	  max_per_domain take effect at restart).  It starts spf.workers
 *	  workers; the ones added when all were busy stay until
 *	  spf_pool_free.
 *	  Before or after daemon(3) does not matter: the supervisor
 *	  follows the socket, not its parent.
 *	- spf_pool_check() from any thread; it waits at most spf.timeout
 *	  in all (for a free worker, then for the answer); replacing a
 *	  failed worker adds one round trip to the supervisor (a fork:
 *	  milliseconds; 10 s at most if it hangs).  A worker found dead
 *	  while idle, or retiring (after 10000 checks), is replaced
 *	  without failing a check.  A query whose HELO or sender is too
 *	  long for the wire (spf/wire.h) or holds control bytes gets
 *	  "none" without asking a worker (RFC 7208 4.3); one without a
 *	  client address gets temperror.  If the supervisor dies, every
 *	  check tempfails (logged once) and the milter goes on.
 *	- spf_pool_free() once no check runs; the supervisor kills its
 *	  workers when its socket closes, so a milter that dies leaves no
 *	  worker behind either.
 * Installed: spf.worker (default LIBEXECDIR/outpost-spf-worker), which
 * links libspf2; the milter does not.  spf.user must exist and must not
 * be root.
 *
 * Tests point spf.worker at tests/outpost-spf-worker-test, which reads
 * a zone file named by $OUTPOST_SPF_ZONE in the environment it inherits
 * from the milter (spf/testhooks.h); the pool knows nothing of it.
 * $OUTPOST_SPF_STDERR makes the supervisor and workers log to stderr
 * instead of syslog (log.facility).
 */
#ifndef OUTPOST_SPF_POOL_H
#define OUTPOST_SPF_POOL_H

#include <stddef.h>

#include "conf/conf_spf.h"
#include "spf/spf.h"

enum spf_kind {
	SPF_KIND_MAILFROM,	/* inbound: the MAIL FROM identity */
	SPF_KIND_HELO,		/* inbound: the HELO identity */
};

struct spf_pool;

/* spf_pool_metrics - the pool's metrics (util/metrics.h), NULL-ended:
 * workers replaced */
struct metric;
extern struct metric *const spf_pool_metrics[];

/* spf_pool_new - supervisor and workers per the spf section, logging per
 * the log section (both only read during the call); spf_pool_free */
struct spf_pool *spf_pool_new(const struct conf_spf *, const struct conf_log *,
    char *err, size_t errlen);
/* spf_pool_free - stop the supervisor and every worker */
struct spf_pool *spf_pool_free(struct spf_pool *);

/* spf_pool_check - one check; always fills answer; 0, or -1 with
 * answer->result = SPF_RES_TEMPERROR when no worker answered in time */
int spf_pool_check(struct spf_pool *, enum spf_kind,
    const struct spf_query *, struct spf_answer *);

/*
 * spf_pool_check_inbound - spf_pool_check for an inbound session, with
 * the limits that keep one client or one slow domain from holding every
 * worker: a domain (the sender's, or the HELO name) whose check timed
 * out (or answered temperror after half of spf.timeout or more) gets
 * temperror at once for SPF_CACHE_TEMPERROR_TTL seconds; a client
 * address (IPv6: its /64; spf/inflight.h) with
 * spf.inbound.max_per_client checks in flight, or a domain
 * with spf.inbound.max_per_domain, gets temperror at once (logged).
 * Such answers carry the domain and the reason in text; return -1.
 */
int spf_pool_check_inbound(struct spf_pool *, enum spf_kind,
    const struct spf_query *, struct spf_answer *);

/* Counters for logs: checks made, workers replaced (killed or retired
 * and started again). */
unsigned long spf_pool_checks(struct spf_pool *);
unsigned long spf_pool_replaced(const struct spf_pool *);

/* spf_pool_pids - the workers' pids (0: slot empty) into pids[max], for
 * status lines and tests; exact only while no check runs; returns the
 * pool size */
size_t spf_pool_pids(struct spf_pool *, long *pids, size_t max);

#endif
