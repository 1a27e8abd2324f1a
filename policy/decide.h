/*
 * decide - what outpost-policyd answers to one policy request, and what
 * it charges: pure decisions over a struct quota, with the time passed in.
 *
 * What is charged when (also in outpost-policyd(8)):
 *  - RCPT: one recipient is reserved (quota_reserve, recipients = 1)
 *    against the limits that count recipients, under the request's
 *    instance.  Refused: the limit's action (defer "450 4.7.1 text",
 *    reject "550 5.7.1 text", hold "HOLD text"); warn limits only log.
 *  - DATA and END-OF-MESSAGE (the first of them that comes, and what
 *    the later one adds): what is not charged yet is reserved in one
 *    all-or-nothing call (quota_reserve, synchronous): one message, the
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
 *    waits for the commits' verdicts (in a pipelined batch, for the
 *    flush).  When the first reservation is older than
 *    store.reserve_ttl less a second, the reservations are released
 *    instead and their recipients join the message's own reservation,
 *    in the same batch: a slow message is charged all or nothing.
 *  - A request with another instance, the end of the connection, or its
 *    idle timeout releases what the previous instance left uncommitted.
 *  - Other stages (CONNECT, HELO, MAIL, VRFY, ETRN) and stages whose
 *    limits are absent (RCPT without a recipients limit) answer DUNNO and
 *    log once per connection.
 *  - A store error answers "DEFER_IF_PERMIT Service temporarily
 *    unavailable" (store.on_error tempfail) or DUNNO (accept).
 * The answer is never OK: a pass is DUNNO, so later restrictions run.
 *
 * A struct decide_txn is one connection's state; it holds the
 * reservation tokens of the current instance and belongs to the caller,
 * who calls decide_txn_end() when the connection ends.
 *
 * Pipelined batches (Redis, quota.h): inside a quota batch on a store
 * with pipelines, a request's admission (the RCPT reservation, the
 * DATA or END-OF-MESSAGE message admission) is queued (quota_defer) and
 * its reply is written into the caller's reply buffer only when the
 * batch is flushed: by quota_flush(), quota_batch_end(), or a later
 * request that needs the outcome (DATA or END-OF-MESSAGE of the same
 * connection, a new instance, decide_txn_end).  So the requests of all
 * connections in one turn of the event loop cost one round trip to
 * Redis, and each connection's calls still reach the store in its
 * order.  The caller keeps the reply buffer, env, txn and stats alive
 * until then; outside such a batch the reply is written before
 * decide_request returns, as before.
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

struct decide_env {
	const struct conf *conf;
	struct quota *quota;
};

struct decide_txn {
	char instance[DECIDE_INSTANCE_MAX];
	int active;			/* instance holds state */
	uint64_t *tokens;		/* reservations not yet settled */
	size_t ntokens;
	size_t captokens;
	int64_t first_ms;		/* when tokens[0] was reserved */
	uint64_t rcpt_charged;		/* recipients settled for good */
	int msg_charged;
	uint64_t bytes_charged;
	int finished;			/* refused at DATA/EOM: nothing more */
	unsigned int inflight;		/* admissions queued, unanswered */
	unsigned int logged;		/* stages already logged as unusable */
	/* the state before the current batch (decide_txn_mark) */
	int marked;
	char mark_instance[DECIDE_INSTANCE_MAX];
	uint64_t *mark_tokens;		/* owned; mark_cap of them */
	size_t mark_ntokens, mark_cap;
	uint64_t mark_rcpt, mark_bytes;
	int64_t mark_first_ms;
	int mark_msg, mark_finished;
};

/* Counters of one process (for logs). */
struct decide_stats {
	uint64_t requests, admitted, refused, errors;
};

/*
 * decide_request - the reply to the complete request in p, "action=...\n\n"
 * in reply (in a pipelined batch, possibly only once the batch is
 * flushed: see above); 0, or -1 when the request is malformed (no
 * "request" attribute): then there is no reply and the caller closes the
 * connection.
 */
int decide_request(const struct decide_env *, struct decide_txn *,
    const struct proto *, int64_t now_ms, struct decide_stats *,
    char *reply, size_t replylen, char *err, size_t errlen);

/* decide_new_instance - true when p starts an instance other than txn's */
int decide_new_instance(const struct decide_txn *, const struct proto *);

/*
 * decide_txn_end - release the instance's uncommitted reservations
 * (flushing the batch first when some are still queued)
 */
void decide_txn_end(const struct decide_env *, struct decide_txn *,
    int64_t now_ms);
/* decide_txn_free - decide_txn_end's memory part: free the tokens */
void decide_txn_free(struct decide_txn *);

/*
 * Batches that fail (LMDB: quota_batch_end returns -1, and none of the
 * batch's calls took effect, whatever verdicts they gave): the caller
 * calls decide_txn_mark() before the first request of a connection in a
 * batch (later ones of the same batch: no-op), then, when the batch has
 * ended, decide_txn_keep() if it succeeded or decide_txn_undo() if it
 * failed.  Undo puts back what the batch's requests changed: the
 * reservations they added were never stored and are forgotten, those
 * they settled were not settled and are the instance's again, and what
 * they counted as charged was not; a new instance begun in the batch
 * starts from nothing.  Both accept a txn that is not marked.
 */
void decide_txn_mark(struct decide_txn *);
void decide_txn_keep(struct decide_txn *);
void decide_txn_undo(struct decide_txn *);

#endif
