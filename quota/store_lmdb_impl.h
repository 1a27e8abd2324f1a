/*
 * store_lmdb_impl - what the LMDB store's files share (private to
 * quota/store_lmdb*.c): the environment, the store, the record layouts'
 * constants and the functions one file offers the others.
 *
 *   store_lmdb.c       the store interface, counters, write transactions
 *   store_lmdb_env.c   environments, transactions, format, recovery
 *   store_lmdb_resv.c  reservations and the sweep
 */
#ifndef OUTPOST_QUOTA_STORE_LMDB_IMPL_H
#define OUTPOST_QUOTA_STORE_LMDB_IMPL_H

#include <sys/types.h>

#include <lmdb.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/conf_quota.h"
#include "quota/store.h"

#define SWEEP_RESV	16	/* lapsed reservations refunded per txn */
#define SWEEP_SCAN	64	/* counters examined per sweep */
#define SWEEP_IDLE	7	/* txns without one after a sweep that
				 * found nothing to delete */
#define SWEEP_FULL_SCAN	4096	/* examined per txn of the sweep on a */
#define SWEEP_FULL_DEL	64	/* full map, and deleted: few pages each */
#define LMDB_MAXREADERS	1022	/* concurrent read transactions */
#define ITER_CHUNK	256	/* records copied per read transaction */
#define VAL_MAX		(8 + QUOTA_STATE_ENC_MAX)
#define RESV_VERSION	1
#define RESV_HDR	24	/* version, nops, charged_ms, expires_ms */
#define RESV_OP_HDR	34	/* amount, limit, period, rkey length */
#define OPS_ON_STACK	16
#define DEFAULT_MAP	(1024ULL * 1024 * 1024)
#define NO_TIME		INT64_MIN	/* put, del: no time, no sweep */
#define FORMAT		2		/* record format (see the top) */
#define ROOM_MARGIN	(16ULL * 1024 * 1024)	/* disk reserved ahead */
#define ROOM_MIN	(1024ULL * 1024)	/* at least, on a full disk */
#define FORMAT_KEY	"format"

/* One environment per file per process, shared by its stores. */
struct lmdb_env {
	struct lmdb_env *next;
	char *path;
	dev_t dev;
	ino_t ino;
	unsigned int refs;
	uint64_t map_size;
	MDB_env *env;
	MDB_dbi counters;
	MDB_dbi resv;
	MDB_dbi rexp;
	/*
	 * Every transaction holds this shared; adopting a map grown by
	 * another process (MDB_MAP_RESIZED) holds it exclusive, since
	 * mdb_env_set_mapsize() wants no transaction active.
	 */
	pthread_rwlock_t resize;
	/* Bytes of the file known to have their blocks allocated, and the
	 * page size; only touched with LMDB's writer lock held. */
	uint64_t room;
	unsigned int psize;
	/* Where the next counter sweep starts; only touched inside a write
	 * transaction, which LMDB makes exclusive. */
	unsigned char scan[QUOTA_RKEY_MAX];
	size_t scanlen;
	unsigned int sweep_idle;	/* write txns left without a sweep of
					 * the counters (writer lock held) */
	/*
	 * store.sync = "periodic": the flush thread (started by the first
	 * commit of process flush_pid), woken every sync_interval_ms or by
	 * flush_stop; commits counts the commits since the last flush.
	 * flush_lock guards the fields below it.
	 */
	int periodic;
	int64_t sync_interval_ms;
	uint64_t commits;		/* __atomic */
	pthread_mutex_t flush_lock;
	pthread_cond_t flush_cond;
	pthread_t flush_tid;
	pid_t flush_pid;		/* 0: no thread */
	int flush_stop;
	/*
	 * The open batch: batch_active and batch_owner are set (__atomic)
	 * by the owner, so other threads see that it is not theirs; the
	 * rest is only touched by the owner.
	 */
	int batch_active;
	pthread_t batch_owner;
	MDB_txn *batch_txn;
	unsigned int batch_depth;
	int batch_changed;
	int batch_swept;
	int batch_rc;			/* first error: LMDB's, or -1 */
	char batch_err[256];		/* batch_rc == -1: its text */
	int64_t batch_now;		/* latest time seen (full sweep) */
	int damaged;			/* __atomic: a transaction met a
					 * damaged page (see recovery) */
};

struct lmdb_store {
	struct quota_store base;	/* first: the ops cast back */
	struct lmdb_env *e;
};

/* One charge of a reservation, as recorded. */
struct resv_op {
	uint64_t amount;
	uint64_t limit;			/* the limit's number (overrides) */
	struct quota_period per;
	const unsigned char *rkey;
	size_t rkeylen;
};


/* put64 - v into 8 bytes, little-endian */
static inline void
put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* get64 - 8 bytes, little-endian */
static inline uint64_t
get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* put64be - v into 8 bytes, big-endian (keys that sort as numbers) */
static inline void
put64be(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* get64be - 8 bytes, big-endian */
static inline uint64_t
get64be(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* time_key - a signed time as 8 bytes that sort in time order */
static inline void
time_key(unsigned char *p, int64_t t)
{
	put64be(p, (uint64_t)t ^ (1ULL << 63));
}

/* time_unkey - the inverse of time_key */
static inline int64_t
time_unkey(const unsigned char *p)
{
	return (int64_t)(get64be(p) ^ (1ULL << 63));
}


/* store_lmdb.c */
int lmdb_err(struct lmdb_env *e, int rc, const char *what, char *err,
    size_t errlen);
const struct conf_limit *lmdb_limit_of(const struct conf_quota *c,
    const unsigned char *rkey, size_t len);
size_t lmdb_rkey_len(const char *rkey);
/* lmdb_counter_read - a counter's state at now (expired: empty) */
int lmdb_counter_read(struct lmdb_env *e, MDB_txn *txn, const void *rkey,
    size_t len, int64_t now, struct quota_state *st, int *found);
/* lmdb_counter_write - a counter's state and expiry, or its deletion */
int lmdb_counter_write(struct lmdb_env *e, MDB_txn *txn,
    const struct conf_limit *l, const void *rkey, size_t len,
    const struct quota_state *st, const struct quota_period *per,
    int64_t now);

/* store_lmdb_env.c */
struct lmdb_env *lmdb_env_acquire(const struct conf_quota *c, char *err,
    size_t errlen);
void lmdb_env_release(struct lmdb_env *e);
int lmdb_txn_begin(struct lmdb_env *e, int write, MDB_txn **txn);
void lmdb_txn_abort(struct lmdb_env *e, MDB_txn *txn);
int lmdb_txn_commit(struct lmdb_env *e, MDB_txn *txn);
void lmdb_mark_damaged(struct lmdb_env *e, int rc);

/* store_lmdb_resv.c */
int lmdb_resv_write(struct lmdb_env *e, MDB_txn *txn,
    const struct quota_op *ops, size_t n, int64_t now, uint64_t token,
    int64_t expires);
int lmdb_resv_drop(struct lmdb_store *s, MDB_txn *txn, uint64_t token,
    int refund, int64_t now, int *changed, int *stood);
int lmdb_sweep(struct lmdb_store *s, MDB_txn *txn, int64_t now,
    int *changed);
int lmdb_sweep_full(struct lmdb_store *s, int64_t now);

#endif
