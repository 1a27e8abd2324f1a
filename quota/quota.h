/*
 * quota - sending quotas: which limits apply to whom, and their admission
 * against a shared store, all or nothing.
 *
 * Used by both daemons and outpostctl.  quota_open() builds a struct
 * quota from the quota part of the configuration, struct conf_quota
 * (conf/conf_quota.h: store, limits, overrides, exempt; the member quota
 * of struct conf), which it borrows: it must outlive the quota.  It
 * opens the configured store (LMDB file, Redis, or memory for tests);
 * quota_close() accepts NULL and returns NULL.  A struct quota is
 * thread-safe.  Time is always passed in (milliseconds since the epoch),
 * so tests control it; the Redis store uses the server's clock instead
 * for window and rate limits (see store.h).
 *
 * Which limits apply to an admission (precedence, first match decides):
 *  1. exempt.logins holds the SASL login, or exempt.networks the client
 *     address: no limit applies, nothing is counted.
 *  2. A limit applies when its key can be formed from struct quota_who
 *     (no sasl_username: sasl_username limits do not apply; no client
 *     address: client_address and client_network limits do not apply;
 *     global always applies) and the amount of what it counts is not 0.
 *  3. An override for (limit, key value) replaces the limit's number,
 *     "unlimited" removes that limit for that key value.
 * Every applicable limit is checked, then charged only if all of them
 * admit (warn limits never refuse; they are reported in the verdict).
 *
 * Return values: 0 with a verdict (admitted or refused), or -1 when the
 * store failed (verdict->result = QUOTA_ERROR, error text in
 * verdict->error); the caller applies store.on_error.  Nothing here
 * exits or aborts on store or input trouble.
 */
#ifndef OUTPOST_QUOTA_H
#define OUTPOST_QUOTA_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_quota.h"

struct quota;

/* Who is sending; any field may be NULL. */
struct quota_who {
	const char *sasl_username;
	const char *sender;		/* envelope sender, "" for <> */
	const uint8_t *client_addr;	/* 16 bytes, IPv4 mapped */
};

/* What is admitted: each limit takes the amount of what it counts. */
struct quota_amount {
	uint64_t messages;
	uint64_t recipients;
	uint64_t bytes;
};

enum quota_result {
	QUOTA_ADMIT,
	QUOTA_REFUSE,
	QUOTA_ERROR,
};

#define QUOTA_KEY_MAX 320

struct quota_verdict {
	enum quota_result result;
	const struct conf_limit *limit;	/* refused (or first warned) */
	enum conf_qaction action;	/* of that limit */
	char key[QUOTA_KEY_MAX];	/* its key value */
	uint64_t used;			/* counted before this admission */
	uint64_t limit_value;		/* effective limit (overrides) */
	uint64_t retry_after;		/* seconds; 0 when unknown */
	unsigned int nwarned;		/* warn limits exceeded, admitted */
	char error[256];		/* QUOTA_ERROR: what failed */
};

/* quota_metrics - the quota's metrics (util/metrics.h), NULL-ended:
 * verdicts that refused or warned by limit and action, store errors,
 * store call times; a daemon registers them to serve them */
struct metric;
extern struct metric *const quota_metrics[];

struct quota *quota_open(const struct conf_quota *, char *err, size_t errlen);
struct quota *quota_close(struct quota *);

struct quota_store;
/*
 * quota_open_store - a quota over a store the caller opened (tests:
 * a store wrapper that fails on demand); the quota owns it from here and
 * closes it in quota_close().
 */
struct quota *quota_open_store(const struct conf_quota *, struct quota_store *,
    char *err, size_t errlen);

/*
 * One calling mode: submit, then flush.
 *
 * A struct quota_batch is one caller's queue of calls on a quota (an
 * admission, a reservation, a commit or a release), each submitted with
 * a completion: done(arg, rc, verdict, token), with rc and the verdict
 * as described at the top, and the token of a reservation (0 for the
 * rest, and when nothing was charged).  quota_flush() hands what is
 * queued to the store, which decides how it runs: LMDB runs the whole
 * flush in one write transaction (one commit), Redis in one pipelined
 * exchange (the calls of a run as one script), memory call by call.
 * Every call still decides on its own, all or nothing across its limits,
 * in the order it was submitted, and sees the calls before it.
 * Completions may submit more calls on the same batch; they go out in
 * the next exchange of the same flush (LMDB: still in its transaction),
 * or with the next run (Redis).  They must not flush, poll, wait or free
 * the batch.  The verdict passed to a completion lives only during the
 * call.
 *
 * When a completion runs: with Redis and memory, once its call's effect
 * is final.  With LMDB, after its call ran inside the flush's
 * transaction, before that commits: the effect is final only when the
 * flush returns QUOTA_DONE.  When the commit fails, none of the flush's
 * calls took effect, whatever their completions were told, and
 * quota_flush() returns QUOTA_FAILED (quota_wait() -1) with the error in
 * quota_batch_error(): the caller undoes what it did on the
 * completions' word (outpost-policyd answers every request of the flush
 * per store.on_error).  quota_batch_may_fail() says whether a batch's
 * store can do that.  A call that fails inside the transaction before
 * any completion ran makes the flush abandon the transaction and run
 * that exchange again call by call (LMDB: a transaction each, a full map
 * swept first), so one failing call does not fail its neighbours; only
 * the final commit can fail late.
 * A store error in a call makes QUOTA_ERROR of that call (Redis: of the
 * calls whose answers did not come, a run cut short).  Every error is
 * counted (quota_errors) and logged; a release has no completion, its
 * error is only counted and logged.  Nothing needs the store (exempt, no
 * limit applies, token 0): the completion may run at once, inside the
 * submit.
 *
 * quota_flush() returns QUOTA_DONE when every completion has run, or
 * QUOTA_PENDING when answers are still to come (a store that waits for a
 * server): quota_batch_fd() then becomes readable when some are back,
 * and quota_poll() (which reads the descriptor) delivers them and sends
 * what the completions submitted meanwhile; it returns QUOTA_DONE once
 * nothing is queued or in flight.  One exchange is in flight at a time:
 * calls flushed meanwhile go out together in the next one.  A lone call
 * with nothing in flight is sent from the calling thread (a hand-over
 * would cost more than it saves).
 * quota_wait() flushes and blocks until QUOTA_DONE (threads that may
 * block: the milter); 0, or -1 as QUOTA_FAILED above.
 *
 * A batch belongs to one thread at a time; a quota may have many
 * (outpost-policyd one per configuration, the milter one per call).
 * quota_batch_free() waits for what is in flight and runs its
 * completions first (NULL is fine; a failure then is only logged: wait
 * first when it matters); free every batch before
 * quota_close().  quota_batch_fd() is -1 when the store never leaves
 * answers pending; a batch whose descriptor was never asked for never
 * leaves answers pending either (quota_flush sends from the calling
 * thread and returns QUOTA_DONE).
 */
struct quota_batch;

typedef void quota_done_fn(void *arg, int rc, const struct quota_verdict *,
    uint64_t token);

enum quota_flush {
	QUOTA_DONE,
	QUOTA_PENDING,
	QUOTA_FAILED,
};

struct quota_batch *quota_batch_new(struct quota *);
struct quota_batch *quota_batch_free(struct quota_batch *);
/*
 * quota_submit_admit - an admission (reserve 0) or a reservation
 * (reserve 1, its token passed to done when admitted); see
 * quota_reserve for what a reservation is
 */
void quota_submit_admit(struct quota_batch *, const struct quota_who *,
    const struct quota_amount *, int64_t now_ms, int reserve,
    quota_done_fn *done, void *arg);
/* quota_submit_commit - quota_commit(), its verdict passed to done */
void quota_submit_commit(struct quota_batch *, uint64_t token,
    const struct quota_who *, const struct quota_amount *, int64_t now_ms,
    quota_done_fn *done, void *arg);
/* quota_submit_release - quota_release(); errors counted and logged */
void quota_submit_release(struct quota_batch *, uint64_t token,
    int64_t now_ms);
enum quota_flush quota_flush(struct quota_batch *);
enum quota_flush quota_poll(struct quota_batch *);
int quota_wait(struct quota_batch *);
int quota_batch_fd(struct quota_batch *);
int quota_batch_may_fail(const struct quota_batch *);
const char *quota_batch_error(const struct quota_batch *);

/*
 * One call alone, for callers that make one at a time (outpostctl,
 * tests): the same as submitting it to a batch of its own and waiting,
 * with the verdict returned.
 */
int quota_admit(struct quota *, const struct quota_who *,
    const struct quota_amount *, int64_t now_ms, struct quota_verdict *);

/*
 * Reservations: quota_reserve() admits and charges like quota_admit(),
 * and records the charge under a new token (*token, never 0).
 * quota_commit() makes it final; quota_release() refunds it.  A
 * reservation neither committed nor released within store.reserve_ttl
 * seconds is refunded by the store on its own.  Releasing an unknown or
 * lapsed token is not an error (returns 0, does nothing).  When nothing
 * was charged (refused, exempt, no limit applies) *token is 0, which
 * commit and release accept as a no-op (admitted).
 *
 * quota_commit() takes who and amt as they were reserved under token,
 * and gives a verdict, since a commit never refunds: a reservation
 * that still stands is made final (admitted, its charge kept); one that
 * lapsed (refunded by the store) or is unknown is admitted again, for
 * who and amt, at now_ms, in the same atomic step of the store, as
 * quota_admit() would: admitted and charged, or refused with nothing
 * charged (the caller then refuses the message with the verdict's
 * action: what was accepted is always charged, and the limit never
 * exceeded).  who or amt NULL: nothing to admit again (a lapsed
 * reservation then stays refunded: tests only).  Returns as
 * quota_admit() does.
 */
int quota_reserve(struct quota *, const struct quota_who *,
    const struct quota_amount *, int64_t now_ms, uint64_t *token,
    struct quota_verdict *);
int quota_commit(struct quota *, uint64_t token, const struct quota_who *,
    const struct quota_amount *, int64_t now_ms, struct quota_verdict *);
int quota_release(struct quota *, uint64_t token, int64_t now_ms, char *err,
    size_t errlen);

/*
 * quota_reply - the reply text of a refusal, from the limit's template
 * or the default: "Quota exceeded for alice: 500/500 recipients per 1h,
 * retry in 12m".  Template fields: ${key} ${used} ${limit} ${count}
 * ${period} ${retry} ${name}.
 */
void quota_reply(const struct quota_verdict *, char *buf, size_t len);

/* quota_key - the key value limit l takes for who, 0 or -1 (no key) */
int quota_key(const struct conf_limit *, const struct quota_who *,
    char *key, size_t keylen);

/* Inspection and administration (outpostctl quota ...). */
struct quota_entry {
	const struct conf_limit *limit;
	char key[QUOTA_KEY_MAX];
	uint64_t used;			/* at now_ms */
	uint64_t limit_value;		/* with overrides */
	uint64_t retry_after;		/* s until one more unit fits */
};

/* quota_list - call fn for every counter the store holds (limit_name
 * NULL: all limits); stops early when fn returns non-zero.  Counters
 * reading 0 at now_ms and those of limits no longer configured are
 * skipped.  fn runs inside the store's iteration: it must not call
 * back into this quota. */
int quota_list(struct quota *, const char *limit_name, int64_t now_ms,
    int (*fn)(const struct quota_entry *, void *), void *arg, char *err,
    size_t errlen);
/* quota_reset - forget the counters of key (limit_name NULL: all) */
int quota_reset(struct quota *, const char *key, const char *limit_name,
    int64_t now_ms, char *err, size_t errlen);
/* quota_used - what limit limit_name has counted for who at now_ms
 * (0 when who has no key for it or nothing is counted); one read of the
 * store, no admission.  0, or -1 with err. */
int quota_used(struct quota *, const char *limit_name,
    const struct quota_who *who, int64_t now_ms, uint64_t *used, char *err,
    size_t errlen);
/* quota_set - make key's counter of one limit read used = value */
int quota_set(struct quota *, const char *key, const char *limit_name,
    uint64_t value, int64_t now_ms, char *err, size_t errlen);

/* Store errors seen since quota_open (for logs and outpostctl stats). */
uint64_t quota_errors(const struct quota *);

#endif
