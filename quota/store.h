/*
 * quota/store - where counters live; one interface, three backends.
 *
 * A counter is identified by a record key, quota_rkey(): the limit's
 * name and the key value, "login-hourly\x1falice".  The store runs the
 * algorithms (algo.h) on its records inside one atomic step:
 *
 *  - memory (store_mem.c): a mutex-protected hash table; tests only.
 *  - lmdb (store_lmdb.c): one file shared by every process on the host;
 *    one write transaction per admission, so concurrent processes and
 *    threads never overshoot; a process crash or kill -9 loses no
 *    committed admission (store.sync says what a host crash may lose).
 *    Records past algo_expires() are deleted as admissions meet them and
 *    by a bounded sweep, so the file does not grow forever.  The file
 *    keeps counters under their record keys turned around ("KEY\x1fNAME",
 *    record format 2, with a format 1 file migrated at open); callers
 *    always see quota_rkey()'s form.
 *  - redis (store_redis.c): one Lua script per admission or per run of
 *    pipelined calls (EVALSHA, loaded with SCRIPT LOAD, re-sent on
 *    NOSCRIPT), time from the server (TIME), each key with a TTL of its
 *    expiry; reconnects on its own; every operation bounded by
 *    store.timeout_ms.
 *
 * Reservations: an admission with a token != 0 records, beside the
 * charges, what was charged where and when, to expire at expires_ms;
 * commit drops the record, release refunds it (algo_refund), and a
 * lapsed record is refunded by the store when next met (LMDB: by the
 * sweep in each write transaction; Redis: by each script, which scans a
 * sorted set of reservation expiries).  A commit never refunds: when
 * its reservation no longer stands (lapsed, refunded, unknown), the
 * commit checks and charges the ops it carries (what was reserved), in
 * the same atomic step, as an admission without a token does, so what
 * is committed is always charged and never over the limit.
 *
 * Batches (how quota_flush() in quota.h runs a flush on a store
 * without pipelines: one batch around every exchange of the flush): a
 * store that has them (LMDB) runs the calls one thread makes between
 * batch_begin and batch_end in one atomic step (one write transaction);
 * each call still checks and charges as if alone,
 * and sees what the calls before it in the batch did, but nothing is
 * visible to other threads and processes, or durable, until batch_end
 * succeeds.  When a call in the batch fails, the later ones fail at once
 * and batch_end returns -1 with nothing of the batch applied.  get reads
 * inside the batch (it sees the batch's writes); iterate refuses to run
 * inside one.  A store without batches leaves both functions NULL.
 *
 * Pipelines (how quota_flush() runs a flush on a store that has them):
 * a store that has them (Redis) runs a list of admissions, commits and
 * releases, struct quota_store_call, in one exchange with the server
 * instead of one round trip each.  Each call is still atomic and runs as
 * if made alone, in list order, seeing the calls before it; each gets
 * its own result (rc, err).  Redis runs consecutive calls (up to a
 * bound) as one script, a run that is atomic as a whole, and answers
 * each run as one: a failure in the middle (connection lost, timeout)
 * fails every call of the runs whose answers did not arrive (they may
 * still have been applied, as a single admission that timed out may)
 * and leaves the runs before it as they were.  A store without
 * pipelines leaves pipeline NULL.
 *
 * Every function returns 0 or -1 with err filled; a store never exits or
 * aborts on I/O or server trouble.  Stores are thread-safe.
 */
#ifndef OUTPOST_QUOTA_STORE_H
#define OUTPOST_QUOTA_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_quota.h"
#include "quota/algo.h"

#define QUOTA_RKEY_MAX 400
#define QUOTA_RKEY_SEP '\x1f'

/* One limit's part of an admission. */
struct quota_op {
	const struct conf_limit *limit;	/* with an override: a copy whose
					 * ->limit is the override's number
					 * (rate limits take T from it) */
	char rkey[QUOTA_RKEY_MAX];	/* quota_rkey() */
	uint64_t amount;
	uint64_t eff_limit;		/* QUOTA_UNLIMITED: count, never refuse */
	struct quota_period period;	/* calendar limits */
	int warn_only;			/* exceeding it does not refuse */
};

struct quota_op_result {
	struct quota_check check;	/* per op */
};

enum quota_call_kind {
	QUOTA_CALL_ADMIT,
	QUOTA_CALL_COMMIT,
	QUOTA_CALL_RELEASE,
};

/* One call of a pipeline: the arguments of admit, commit or release. */
struct quota_store_call {
	enum quota_call_kind kind;
	const struct quota_op *ops;	/* admit, commit: n ops */
	size_t n;
	int64_t now_ms;
	uint64_t token;
	int64_t expires_ms;		/* admit */
	struct quota_op_result *res;	/* admit, commit: n results, filled */
	int admitted;			/* admit, commit: filled */
	int rc;				/* filled: 0 or -1 */
	char err[256];			/* filled when rc is -1 */
};

struct quota_store;

struct quota_store_ops {
	const char *name;
	/*
	 * admit - check every op; if each one that is not warn_only admits,
	 * charge all of them (and record reservation token, if != 0, to
	 * lapse at expires_ms); *admitted says which happened.  res[i] gets
	 * op i's check.  now_ms may be replaced by the store's own clock.
	 */
	int (*admit)(struct quota_store *, const struct quota_op *, size_t n,
	    int64_t now_ms, uint64_t token, int64_t expires_ms,
	    struct quota_op_result *res, int *admitted, char *err,
	    size_t errlen);
	/*
	 * commit - make reservation token final.  If it still stands
	 * (not lapsed at now), drop it and keep its charges: *admitted = 1
	 * and every res[i].check reads admit = 1, used = retry_ms = 0.
	 * Otherwise (lapsed: refunded first; or gone) check and charge the
	 * n ops as admit does with token 0; n = 0 admits.
	 */
	int (*commit)(struct quota_store *, uint64_t token,
	    const struct quota_op *ops, size_t n, int64_t now_ms,
	    struct quota_op_result *res, int *admitted, char *err,
	    size_t errlen);
	int (*release)(struct quota_store *, uint64_t token, int64_t now_ms,
	    char *err, size_t errlen);
	/* get - the state of one record; *found = 0 if none */
	int (*get)(struct quota_store *, const char *rkey,
	    struct quota_state *st, int *found, char *err, size_t errlen);
	/* put - replace one record's state (outpostctl quota set) */
	int (*put)(struct quota_store *, const char *rkey,
	    const struct quota_state *st, int64_t expires_ms, char *err,
	    size_t errlen);
	/* del - remove one record */
	int (*del)(struct quota_store *, const char *rkey, char *err,
	    size_t errlen);
	/* iterate - every record; stop when fn returns non-zero */
	int (*iterate)(struct quota_store *, int (*fn)(const char *rkey,
	    const struct quota_state *st, void *arg), void *arg, char *err,
	    size_t errlen);
	void (*close)(struct quota_store *);
	/*
	 * batch_begin, batch_end - see above; NULL when the store has no
	 * batches.  Batches of one thread nest (the outermost one counts).
	 */
	int (*batch_begin)(struct quota_store *, char *err, size_t errlen);
	int (*batch_end)(struct quota_store *, char *err, size_t errlen);
	/*
	 * pipeline - run the n calls in order in one exchange (see above);
	 * each call's rc, err and results are filled.  NULL when the store
	 * has no pipelines.
	 */
	void (*pipeline)(struct quota_store *, struct quota_store_call *,
	    size_t n);
};

struct quota_store {
	const struct quota_store_ops *ops;
	const struct conf_quota *conf;	/* borrowed */
};

/* Backends: each returns a new store, or NULL with err. */
struct quota_store *store_mem_open(const struct conf_quota *, char *err,
    size_t errlen);
struct quota_store *store_lmdb_open(const struct conf_quota *, char *err,
    size_t errlen);
struct quota_store *store_redis_open(const struct conf_quota *, char *err,
    size_t errlen);

/*
 * store_lmdb_recoveries - how many damaged LMDB files this process moved
 * aside and started afresh (for metrics)
 */
unsigned long store_lmdb_recoveries(void);

/*
 * store_redis_client_clock - tests only: on != 0 makes a Redis store run
 * its scripts at the now_ms passed in instead of the server's clock
 * (TIME), so the behaviour suite can drive the time; a store of another
 * backend is left as it is.
 */
void store_redis_client_clock(struct quota_store *, int on);

/* quota_rkey - "NAME\x1fKEY" into out; 0 or -1 if it does not fit */
int quota_rkey(const char *limit_name, const char *key, char *out,
    size_t outlen);

/*
 * quota_state_encode/decode - the on-disk (LMDB) and on-wire form of a
 * state: little-endian, versioned, only the buckets in use.  decode
 * returns -1 on a record it does not understand (treated as empty).
 * encode returns the length (at most QUOTA_STATE_ENC_MAX), 0 if outlen
 * is too small; the limit may be NULL (then every bucket is kept).
 */
#define QUOTA_STATE_ENC_MAX (11 + 10 * (CONF_QBUCKETS_MAX + 1))

size_t quota_state_encode(const struct conf_limit *,
    const struct quota_state *, unsigned char *out, size_t outlen);
int quota_state_decode(const unsigned char *, size_t len,
    struct quota_state *);

#endif
