/*
 * decide - what outpost-policyd answers to one policy request, and what
 * it charges: pure decisions over a struct quota, with the time passed in.
 *
 * What is charged when (also in outpost-policyd(8)):
 *  - RCPT: one recipient is reserved (a reservation, recipients = 1)
 *    against the limits that count recipients, under the request's
 *    instance.  Refused: the limit's action (defer "450 4.7.1 text",
 *    reject "550 5.7.1 text", hold "HOLD text"); warn limits only log.
 *  - DATA and END-OF-MESSAGE (the first of them that comes, and what
 *    the later one adds): what is not charged yet is reserved in one
 *    all-or-nothing call: one message, the
 *    size bytes not yet charged, and the recipients beyond the
 *    reservations (when RCPT was not asked).  Refused (defer or
 *    reject): every reservation of the instance is released, since the
 *    message is not accepted.  Then the reservations are settled
 *    against recipient_count (committed up to that number, the rest
 *    released); a commit whose reservation lapsed admits it again
 *    (quota.h), and if that is refused the message is refused with the
 *    limit's action and its own reservation released; otherwise its
 *    own reservation is committed.  Hold: the message is accepted into
 *    the hold queue and its reservations are committed.  The reply
 *    waits for the commits' verdicts.  When the first reservation is
 *    older than store.reserve_ttl less a second, the reservations are
 *    released instead and their recipients join the message's own
 *    reservation: a slow message is charged all or nothing.
 *  - A request with another instance, the end of the connection, or its
 *    idle timeout releases what the previous instance left uncommitted.
 *  - Other stages (CONNECT, HELO, MAIL, VRFY, ETRN) and stages whose
 *    limits are absent (RCPT without a recipients limit) answer DUNNO and
 *    log once per connection.
 *  - A store error answers "DEFER_IF_PERMIT Service temporarily
 *    unavailable" (store.on_error tempfail) or DUNNO (accept).
 * The answer is never OK: a pass is DUNNO, so later restrictions run.
 *
 * Plan, quota, reply: decide_request() reads the request into a plan
 * (what to reserve, commit, release), submits its quota calls to the
 * struct decide's batch (quota.h) with completions, and returns; the
 * reply goes to the caller's reply function once the calls' answers are
 * in, which is after decide_flush() (QUOTA_DONE), or after the
 * decide_poll() that follows decide_fd() becoming readable (QUOTA_PENDING),
 * or at once when no store call is needed.  So the requests of every
 * connection in one turn of an event loop go to the store in one
 * exchange (one LMDB transaction, one Redis pipeline), commits at DATA and
 * END-OF-MESSAGE included; the steps that depend on an answer (the
 * commits after the message's own reservation, then its commit) go with
 * the next exchange of the same flush, shared by every connection (and
 * with LMDB still in the flush's one transaction).  A
 * connection's requests still reach the store in its order: one that
 * needs the outcome of the ones before it (DATA, END-OF-MESSAGE, a new
 * instance, the end) waits in the connection's queue until their
 * answers are in.
 *
 * A flush that fails late (quota.h, QUOTA_FAILED: the LMDB transaction
 * of the flush did not commit, after the completions ran): the replies
 * that the completions of a flush prepare are held until the flush ends
 * when the store can fail so (quota_batch_may_fail), and none leaves
 * before the transaction committed.  When it failed, nothing the flush
 * asked took effect: every reply held is replaced by the store-error
 * answer (store.on_error, as above; counted as an error, logged), and
 * each connection that made a request since the last flush is put back
 * as it was before it (decide_txn's mark): the reservations it made
 * were never stored and are forgotten, those it settled or released
 * still stand and are its own again, what it counted as charged was
 * not; an instance begun meanwhile starts from nothing (the
 * reservations of the one it ended are released with the next flush).
 * The releases
 * of a connection that ended meanwhile are lost with the flush; its
 * reservations lapse after store.reserve_ttl.
 *
 * Ownership: struct decide borrows conf and quota (they must outlive
 * it) and owns the batch, the counters and every struct decide_txn: a
 * txn lives until decide_txn_close() and until its last answer came;
 * decide_free() waits for every answer (the reply functions run) first.
 * The reply text passed to a reply function lives only during the call.
 */
#ifndef OUTPOST_POLICY_DECIDE_H
#define OUTPOST_POLICY_DECIDE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf.h"
#include "policy/proto.h"
#include "quota/quota.h"

#define DECIDE_INSTANCE_MAX 128
#define DECIDE_TOKENS_MAX 10000		/* more recipients: no refund */
#define DECIDE_REPLY_MAX 600

struct decide;
struct dreq;

/* What a txn has charged for good, and when its first reservation still
 * out was made; a mark keeps a copy of it (txn_mark, txn_undo). */
struct decide_progress {
	int64_t first_ms;		/* when tokens[0] was reserved */
	uint64_t rcpt_charged;		/* recipients settled for good */
	int msg_charged;
	uint64_t bytes_charged;
	int finished;			/* refused at DATA/EOM: nothing more */
};

struct decide_txn {
	struct decide *d;
	char instance[DECIDE_INSTANCE_MAX];
	int active;			/* instance holds state */
	uint64_t *tokens;		/* reservations not yet settled */
	size_t ntokens;
	size_t captokens;
	struct decide_progress prog;
	unsigned int busy;		/* requests whose answers are out */
	int finishing;			/* a DATA or END-OF-MESSAGE is out */
	unsigned int logged;		/* stages already logged as unusable */
	int closed;			/* decide_txn_close() was called */
	struct dreq *wait, *wait_tail;	/* requests waiting for busy == 0 */
	/* what the txn was before the flush to come (see above): the
	 * decide's list of marked txns, and their marks */
	int marked;
	struct decide_txn *mnext, **mprev;
	struct decide_txn_mark {
		char instance[DECIDE_INSTANCE_MAX];
		int active;
		int64_t now;		/* of the request that marked it */
		uint64_t *tokens;	/* owned */
		size_t ntokens, cap;
		struct decide_progress prog;
	} mark;
};

/* Counters of one struct decide (for logs). */
struct decide_stats {
	uint64_t requests, admitted, refused, errors;
};

/* decide_reply_fn - the reply "action=...\n\n" to one request */
typedef void decide_reply_fn(void *arg, const char *reply);

struct decide *decide_new(const struct conf *, struct quota *);
struct decide *decide_free(struct decide *);
const struct decide_stats *decide_stats(const struct decide *);

/* decide_txn_new - a connection's state */
struct decide_txn *decide_txn_new(struct decide *);
/*
 * decide_txn_close - the connection ended: once the answers to its
 * requests are in (their replies still go to the reply functions),
 * release the reservations its instance left uncommitted and free txn
 */
void decide_txn_close(struct decide_txn *, int64_t now_ms);

/*
 * decide_request - plan the complete request in p and submit its quota
 * calls; the reply goes to reply(arg, text) exactly once, now or later
 * (see above).  0, or -1 when the request is malformed (no "request"
 * attribute): then there is no reply and the caller closes the
 * connection.
 */
int decide_request(struct decide_txn *, const struct proto *,
    int64_t now_ms, decide_reply_fn *reply, void *arg, char *err,
    size_t errlen);

/* decide_new_instance - true when p starts an instance other than txn's */
int decide_new_instance(const struct decide_txn *, const struct proto *);

/*
 * decide_flush, decide_poll, decide_fd, decide_wait - quota_flush,
 * quota_poll, quota_batch_fd and quota_wait of the decide's batch: send
 * what the requests submitted, deliver the answers, and so the replies.
 * QUOTA_FAILED: the flush failed late, and every reply it held has been
 * given per store.on_error (see above); nothing is pending.
 */
enum quota_flush decide_flush(struct decide *);
enum quota_flush decide_poll(struct decide *);
int decide_fd(const struct decide *);
void decide_wait(struct decide *);

#endif
