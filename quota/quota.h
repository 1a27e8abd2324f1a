/*
 * quota - sending quotas: which limits apply to whom, and their admission
 * against a shared store, all or nothing.
 *
 * Used by both daemons and outpostctl.  quota_open() builds a struct
 * quota from a struct conf (which it borrows: it must outlive the quota)
 * and opens the configured store (LMDB file, Redis, or memory for
 * tests); quota_close() accepts NULL and returns NULL.  A struct quota is
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

#include "conf/conf.h"

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

struct quota *quota_open(const struct conf *, char *err, size_t errlen);
struct quota *quota_close(struct quota *);

struct quota_store;
/*
 * quota_open_store - a quota over a store the caller opened (tests:
 * a store wrapper that fails on demand); the quota owns it from here and
 * closes it in quota_close().
 */
struct quota *quota_open_store(const struct conf *, struct quota_store *,
    char *err, size_t errlen);

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
 * quota_admit() does.  quota_defer_commit() is quota_commit() with the
 * verdict delivered to done(arg, rc, verdict, 0) as quota_defer()
 * delivers it (queued inside a pipelined batch).
 */
int quota_reserve(struct quota *, const struct quota_who *,
    const struct quota_amount *, int64_t now_ms, uint64_t *token,
    struct quota_verdict *);
int quota_commit(struct quota *, uint64_t token, const struct quota_who *,
    const struct quota_amount *, int64_t now_ms, struct quota_verdict *);
int quota_defer_commit(struct quota *, uint64_t token,
    const struct quota_who *, const struct quota_amount *, int64_t now_ms,
    void (*done)(void *arg, int rc, const struct quota_verdict *,
    uint64_t token), void *arg);
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

/*
 * Batches: quota_batch_begin() makes the admissions, reservations,
 * commits and releases the calling thread makes next, until
 * quota_batch_end(), share one step of the store: with LMDB, one write
 * transaction and one commit instead of one each (outpost-policyd runs
 * the requests of one turn of its event loop as a batch).  Every call
 * still decides on its own, all or nothing across its limits, and sees
 * the charges of the calls before it in the batch.  But nothing of the
 * batch is visible to other processes and threads, nor survives a crash,
 * until quota_batch_end() returns 0; when it returns -1 (a store error,
 * counted and logged like any other), NONE of the batch's calls took
 * effect, whatever verdicts they returned: the caller must treat them
 * all as QUOTA_ERROR (apply store.on_error) and must not act on them
 * before quota_batch_end() has said which.  Other threads and processes
 * wait for the store while a batch is open, so keep batches short and
 * never wait for a peer inside one.  Batches nest within one thread (the
 * outermost quota_batch_end() decides).  A store without batches
 * (memory) runs each call on its own; both functions then return 0 and
 * do nothing.  quota_list() fails inside a batch.
 *
 * Redis has no transactions but pipelines: inside a batch, the
 * admissions made with quota_defer() and the commits and releases of
 * the thread that opened it are queued, and go to the server together,
 * in the order they were made, when the batch is flushed: by
 * quota_flush(), by the outermost quota_batch_end(), or by a synchronous
 * call of that thread (quota_admit, quota_reserve, quota_list, ...)
 * which joins the queue and waits for it.  One round trip then serves
 * the whole queue, instead of one each.  Each admission is still one
 * atomic script, decided as if alone; its verdict goes to its own done
 * function, and a store error (server down, timeout, a pipeline cut
 * short) makes QUOTA_ERROR only of the calls whose answers did not come.
 * quota_batch_end() then always returns 0.  A queued release returns 0
 * at once; its store error is counted and logged when the queue is
 * flushed (a commit, which has a verdict, is queued only by
 * quota_defer_commit).  The calls of other threads run on their own.
 */
int quota_batch_begin(struct quota *, char *err, size_t errlen);
int quota_batch_end(struct quota *, char *err, size_t errlen);

/*
 * quota_defer - quota_admit (reserve 0) or quota_reserve (reserve 1)
 * with the result delivered to done(arg, rc, verdict, token) instead of
 * returned: rc and the verdict as quota_admit returns them, the token as
 * quota_reserve sets it (0 for an admission).  Inside a batch on a store
 * with pipelines (Redis, see above) the call is queued and done runs
 * when the queue is flushed, from quota_flush() or whatever call flushes
 * it, in the order the calls were made; otherwise, and when nothing
 * needs the store (exempt, no limit applies), done runs before
 * quota_defer returns.  The verdict passed to done lives only during the
 * call.  done must not call quota_flush() or make synchronous calls on
 * this quota.  Returns 0.
 */
int quota_defer(struct quota *, const struct quota_who *,
    const struct quota_amount *, int64_t now_ms, int reserve,
    void (*done)(void *arg, int rc, const struct quota_verdict *,
    uint64_t token), void *arg);

/*
 * quota_flush - send what the calling thread's batch queued (nothing
 * when none is queued) and deliver every answer; returns 0 (errors go
 * to each call, see above).
 */
int quota_flush(struct quota *);

/*
 * Asynchronous runs (stores with pipelines; outpost-policyd's event
 * loop): quota_batch_end_async() ends the calling thread's batch like
 * quota_batch_end(), but what the batch queued is not sent there: it
 * becomes a run, which a thread of the quota's own sends while the
 * caller goes on; runs are sent one after another in the order they
 * were made.  *run is the number of the last run started so far (0:
 * none is waiting), so the batch's answers are all in once
 * quota_delivered() >= *run.  They are delivered only by
 * quota_collect(), in the calling thread: it runs the done functions of
 * every run whose answers are back, in order, and returns how many runs
 * it delivered; the commits and releases those make become the next
 * run (or join the caller's batch, when one is open).  quota_async_fd()
 * becomes readable when a run's answers are back (read and discard
 * what it holds, then call quota_collect); -1 when the store has no
 * pipelines, and then quota_batch_end_async() is quota_batch_end() with
 * *run 0.  Every synchronous call of that thread (quota_flush, and
 * quota_admit, quota_reserve, quota_commit, quota_release, quota_list,
 * quota_reset, quota_set outside a batch) first waits for the runs
 * started and delivers them, so the store sees the calls in the order
 * they were made.  quota_close() does too.  Use all of it from one
 * thread only.
 */
int quota_batch_end_async(struct quota *, uint64_t *run, char *err,
    size_t errlen);
size_t quota_collect(struct quota *);
int quota_async_fd(const struct quota *);
uint64_t quota_delivered(const struct quota *);

/* Store errors seen since quota_open (for logs and outpostctl stats). */
uint64_t quota_errors(const struct quota *);

#endif
