/*
 * store_lmdb - the quota store in one LMDB file shared by every process
 * on the host (both daemons and outpostctl).  See store.h.
 *
 * Files: this one holds the store interface, the counters and the write
 * transactions that run each call; store_lmdb_env.c the environments,
 * transactions, record format and recovery; store_lmdb_resv.c the
 * reservations and the sweep; store_lmdb_impl.h what they share.  This
 * comment describes the design of all three.
 *
 * File: conf->store.path, a single file (MDB_NOSUBDIR) created mode 0600
 * beside its lock file PATH-lock; the directory must exist.  The map is
 * conf->store.map_size bytes.  Named databases:
 *
 *   meta          "format" -> the record format, "2" (text)
 *   counters      dbkey -> expires_ms (8 bytes LE) + quota_state_encode()
 *   reservations  token (8 bytes BE) -> what was charged where, and when
 *                 (record keys as quota_rkey() makes them)
 *   resv_expiry   expires_ms (8 bytes, order-preserving BE) + token -> ""
 *
 * Record format 2: a counter's database key (dbkey) is its record key
 * turned around, "KEY\x1fNAME" for quota_rkey()'s "NAME\x1fKEY", so that
 * the records of one sender sort next to each other: an admission
 * against three limits changes one leaf page of the B-tree instead of
 * three leaves in three parts of it, each with its own branch pages to
 * copy.  With a million keys that took the median admission from 52 to
 * 19 us (bench/RESULTS.md).  The limit's name never holds the separator
 * (quota_rkey() refuses it), so a dbkey splits at its last separator.
 * The interface (store.h) still speaks quota_rkey()'s form; only this
 * file sees dbkeys.  A new file is stamped with FORMAT; a file of any
 * other format (written by a newer version) is refused with a message
 * that says so.
 *
 * Concurrency: every admission is one write transaction (check all ops,
 * charge all or none, record the reservation), and LMDB serializes write
 * transactions across threads and processes with a robust process-shared
 * mutex, so no interleaving can overshoot a limit.  A process killed
 * while holding that mutex leaves it to the next writer (EOWNERDEAD is
 * recovered inside LMDB); the reader slots of dead processes are cleared
 * at open (mdb_reader_check).  MDB_NOTLS: read transactions are not tied
 * to threads, so any number of threads may use one store.  LMDB allows
 * one environment per file per process (closing a second one would drop
 * the first one's fcntl locks), so stores on the same file share one
 * environment, reference-counted.
 *
 * Map: the file is opened with MDB_WRITEMAP: a write transaction writes
 * its pages into the shared map directly instead of copying each dirty
 * page into the file with a pwrite at commit (that copy was more than
 * half of an admission's time: 93,000 admissions/s from one thread with
 * three limits without it, 310,000 with it; bench/RESULTS.md).  Its
 * costs, per LMDB's documentation: the file is sized to store.map_size
 * at open (a sparse file: only the pages in use take disk space), a
 * stray write through a pointer into the map could damage the file, and
 * every process must open the file the same way (all of ours use this
 * code; after an upgrade from a build without it, stop every process
 * that has the file open before starting the new ones).  It does not
 * depend on store.sync, so processes whose configurations differ there
 * still open the file alike.  Disk space: writes through a map cannot
 * report a full disk (the kernel kills the process with SIGBUS when it
 * cannot find a block for a page), so every write transaction first
 * makes sure the file's blocks are allocated (posix_fallocate) up to
 * ROOM_MARGIN beyond the pages LMDB uses (ROOM_MIN when the disk is
 * nearly full); when even that fails, the transaction fails with "No
 * space left on device" like any store error (store.on_error), and
 * nothing crashes.  A new file thus takes ROOM_MARGIN of disk at once.
 *
 * Durability (store.sync): "periodic", the default, opens the file with
 * MDB_NOSYNC: a commit leaves its pages in the shared map (the kernel's
 * page cache) and returns, and a thread of the environment's own flushes
 * the file (mdb_env_sync, an msync of the map) every store.sync_interval
 * seconds when something was committed since the last flush, and at
 * close; so no admission waits for a flush (it used to run inside the
 * first admission after the interval, which then took up to 0.2 s with
 * a million keys).  The thread is started by the first commit of the
 * process that uses the environment (so a store opened before a fork
 * gets its thread in the child that uses it).  A crashed or killed
 * process (kill -9 included) loses nothing it committed: the kernel
 * holds the pages.  A crash of the whole host can lose the commits of
 * the last interval, and since LMDB then cannot vouch for the order in
 * which pages reached the disk, the file may be damaged: it is then
 * recovered (below), and its counters start again from zero.  This
 * stays the default: counters are soft state, and a lost interval costs
 * some senders a fresh allowance once per host crash, while "always"
 * costs every admission two disk syncs.  "always" syncs every commit
 * (LMDB's default: data pages, then the meta page, before admit()
 * returns): nothing is lost even when the host crashes, at the price of
 * two syncs per charging admission (about 3,400/s from one thread
 * here).  Either way an interrupted commit is invisible: copy-on-write
 * leaves the previous meta page in force.  Refused admissions change and
 * commit nothing.
 *
 * Batches (store.h): batch_begin opens a write transaction that the
 * calling thread's admissions, commits, releases, puts and deletes use
 * until batch_end commits it (or aborts it, when a call in it failed:
 * then the later calls fail at once, and a full map gets its sweep after
 * the abort).  Other threads and processes wait on LMDB's writer lock
 * meanwhile.  The batch belongs to the environment, so every store on
 * the file (a reloaded configuration's too) joins it from that thread;
 * the bounded sweep below runs once per batch.  With one admission per
 * transaction, the commit and the sweep were most of an admission's
 * cost once the page copies were gone (MDB_WRITEMAP).
 *
 * Reclaiming: a counter holds its expiry, algo_expires(); one past it is
 * treated as empty when met (and replaced by the next charge).  Each
 * write transaction also refunds at most SWEEP_RESV lapsed reservations
 * (the oldest first, from resv_expiry), and a sweep examines at most
 * SWEEP_SCAN counters, round robin from where the last sweep of this
 * process stopped, deleting the expired ones; so the file holds the live
 * records plus a bounded backlog.  A sweep that deleted nothing (and did
 * not reach the end of the tree) lets the next SWEEP_IDLE transactions
 * go without one: each sweep starts with a search from the root to a
 * leaf that is cold when there are many keys (with a million keys, a
 * sweep in every transaction was 15% of an admission's time), while one
 * that finds expired records keeps sweeping every transaction.  When the
 * map is full (MDB_MAP_FULL), the write is retried once after a full
 * sweep; if it is still full, it fails with
 * an error that names store.map_size.  Nothing here exits or aborts.
 *
 * Recovery: a damaged file (a host crash under store.sync = "periodic",
 * a disk error) would otherwise fail every counted admission until
 * someone removed it.  Damage is what LMDB reports as MDB_INVALID (no
 * valid meta page), MDB_CORRUPTED, MDB_PAGE_NOTFOUND or
 * MDB_VERSION_MISMATCH, an unreadable record format, or a file shorter
 * than its last page in use; the open reads both edges of every
 * database's B-tree to meet it early.  An open that meets it takes an
 * exclusive flock(2) on the file's directory (the file and its lock file
 * are what is replaced; every open holds it shared, so that none opens
 * one new file with the other old one), opens the file again in case
 * another process has recovered it meanwhile, and only if it is still
 * damaged renames it to PATH.corrupt-YYYYmmddTHHMMSS (UTC) and its lock
 * file to that name plus "-lock", opens a fresh file, logs a warning
 * with both names and counts it (store_lmdb_recoveries()).  A process
 * that cannot rename them fails to open, as before.  Processes that
 * still have the
 * old file open go on using it until they open the store again.  Damage
 * met later, in a transaction (MDB_BAD_TXN included: LMDB's answer once
 * a lookup met a bad page), fails that call per store.on_error, is
 * logged once, and marks the environment: the next open in the process
 * (a reload) reads every record, and recovers the same way if one does
 * not read.  Newer record formats, a full disk or missing permissions
 * are not damage: those opens fail and the file stays.  LMDB does not
 * checksum pages: damage that still parses reads as wrong counts.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "quota/store_lmdb_impl.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/tz.h"
#include "util/xmalloc.h"

/* lmdb_err - fill err for LMDB error rc (-1: err already filled) */
int
lmdb_err(struct lmdb_env *e, int rc, const char *what, char *err,
    size_t errlen)
{
	if (rc == -1)
		return -1;
	lmdb_mark_damaged(e, rc);
	if (rc == MDB_MAP_FULL)
		(void)snprintf(err, errlen, "quota store %s: full even after "
		    "sweeping expired records (store.map_size = %llu bytes); "
		    "raise store.map_size", e->path,
		    (unsigned long long)e->map_size);
	else
		(void)snprintf(err, errlen, "quota store %s: %s: %s", e->path,
		    what, mdb_strerror(rc));
	return -1;
}

/* lmdb_limit_of - the configured limit whose name starts rkey, or NULL */
const struct conf_limit *
lmdb_limit_of(const struct conf_quota *c, const unsigned char *rkey, size_t len)
{
	const unsigned char *sep;
	size_t i, nlen;

	if ((sep = memchr(rkey, QUOTA_RKEY_SEP, len)) == NULL)
		return NULL;
	nlen = (size_t)(sep - rkey);
	for (i = 0; i < c->nlimits; i++)
		if (strlen(c->limits[i].name) == nlen &&
		    memcmp(c->limits[i].name, rkey, nlen) == 0)
			return &c->limits[i];
	return NULL;
}

/* lmdb_rkey_len - length of a NUL-terminated rkey; 0 if empty or too long */
size_t
lmdb_rkey_len(const char *rkey)
{
	size_t n = strnlen(rkey, QUOTA_RKEY_MAX);

	return n == QUOTA_RKEY_MAX ? 0 : n;
}

/*
 * dbkey - the database key of record key rkey (len bytes): "NAME\x1fKEY"
 * turned into "KEY\x1fNAME"; out holds len bytes.  A record key without
 * a separator is kept as it is.
 */
static void
dbkey(const void *rkey, size_t len, unsigned char *out)
{
	const unsigned char *r = rkey, *sep;
	size_t nlen;

	if ((sep = memchr(r, QUOTA_RKEY_SEP, len)) == NULL) {
		memcpy(out, r, len);
		return;
	}
	nlen = (size_t)(sep - r);
	memcpy(out, sep + 1, len - nlen - 1);
	out[len - nlen - 1] = QUOTA_RKEY_SEP;
	memcpy(out + len - nlen, r, nlen);
}

/* rkey_of - the record key of database key k (len bytes), the inverse */
static void
rkey_of(const unsigned char *k, size_t len, char *out)
{
	const unsigned char *sep = NULL;
	size_t i, klen;

	for (i = len; i > 0; i--)
		if (k[i - 1] == QUOTA_RKEY_SEP) {
			sep = k + i - 1;
			break;
		}
	if (sep == NULL) {
		memcpy(out, k, len);
		return;
	}
	klen = (size_t)(sep - k);
	memcpy(out, sep + 1, len - klen - 1);
	out[len - klen - 1] = QUOTA_RKEY_SEP;
	memcpy(out + len - klen, k, klen);
}

/* ---- counters ------------------------------------------------------------ */

/*
 * lmdb_counter_read - the state of rkey at now into st; *found = 0 and st
 * zeroed when there is none, it has expired, or it cannot be decoded.
 */
int
lmdb_counter_read(struct lmdb_env *e, MDB_txn *txn, const void *rkey,
    size_t len, int64_t now, struct quota_state *st, int *found)
{
	unsigned char dk[QUOTA_RKEY_MAX];
	MDB_val k, v;
	int rc;

	memset(st, 0, sizeof(*st));
	*found = 0;
	if (len > sizeof(dk))
		return EINVAL;
	dbkey(rkey, len, dk);
	k.mv_data = dk;
	k.mv_size = len;
	if ((rc = mdb_get(txn, e->counters, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	if (v.mv_size < 8 || (int64_t)get64(v.mv_data) <= now)
		return 0;
	if (quota_state_decode((const unsigned char *)v.mv_data + 8,
	    v.mv_size - 8, st) == -1) {
		memset(st, 0, sizeof(*st));
		return 0;
	}
	*found = 1;
	return 0;
}

/*
 * lmdb_counter_write - store st for rkey with its expiry, or delete the record
 * when st holds nothing at now.  per: the calendar period st.t0 lies in
 * (NULL: found here from the limit's zone).
 */
int
lmdb_counter_write(struct lmdb_env *e, MDB_txn *txn, const struct conf_limit *l,
    const void *rkey, size_t len, const struct quota_state *st,
    const struct quota_period *per, int64_t now)
{
	unsigned char val[VAL_MAX], dk[QUOTA_RKEY_MAX];
	struct quota_period p;
	MDB_val k, v;
	int64_t exp;
	size_t n;
	int rc;

	if (len > sizeof(dk))
		return EINVAL;
	if (l->kind == CONF_QKIND_CALENDAR) {
		if (per == NULL || st->t0 < per->start_ms ||
		    st->t0 >= per->end_ms) {
			if (tz_period(l->timezone, l->month, st->t0, &p) == 0)
				per = &p;
			else	/* keep it; a later sweep finds the end */
				per = NULL;
		}
		exp = per != NULL ? algo_expires(l, st, per) :
		    now + 32LL * 86400 * 1000;
	} else {
		exp = algo_expires(l, st, NULL);
	}
	dbkey(rkey, len, dk);
	k.mv_data = dk;
	k.mv_size = len;
	if (exp <= now) {
		rc = mdb_del(txn, e->counters, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : rc;
	}
	put64(val, (uint64_t)exp);
	if ((n = quota_state_encode(l, st, val + 8, sizeof(val) - 8)) == 0)
		return EINVAL;
	v.mv_data = val;
	v.mv_size = 8 + n;
	return mdb_put(txn, e->counters, &k, &v, 0);
}

/* batch_mine - the calling thread has a batch open on e */
static int
batch_mine(struct lmdb_env *e)
{
	return __atomic_load_n(&e->batch_active, __ATOMIC_ACQUIRE) &&
	    pthread_equal(__atomic_load_n(&e->batch_owner, __ATOMIC_RELAXED),
	    pthread_self());
}

/*
 * batch_run - write_txn inside the thread's batch: the sweep once per
 * batch, then body; an error fails the batch.
 */
static int
batch_run(struct lmdb_store *s, int64_t now, int (*body)(struct lmdb_store *,
    MDB_txn *, void *, int *, char *, size_t), void *arg, const char *what,
    char *err, size_t errlen)
{
	struct lmdb_env *e = s->e;
	int rc = 0, changed = 0;

	if (e->batch_rc == -1) {
		(void)snprintf(err, errlen, "%s", e->batch_err);
		return -1;
	}
	if (e->batch_rc != 0)
		return lmdb_err(e, e->batch_rc, what, err, errlen);
	if (now != NO_TIME) {
		e->batch_now = now;
		if (!e->batch_swept) {
			e->batch_swept = 1;
			rc = lmdb_sweep(s, e->batch_txn, now, &changed);
		}
	}
	if (rc == 0)
		rc = body(s, e->batch_txn, arg, &changed, err, errlen);
	if (changed)
		e->batch_changed = 1;
	if (rc == 0)
		return 0;
	e->batch_rc = rc;
	if (rc == -1) {
		(void)snprintf(e->batch_err, sizeof(e->batch_err), "%s", err);
		return -1;
	}
	return lmdb_err(e, rc, what, err, errlen);
}

/*
 * write_txn - run body in one write transaction, after the bounded sweep
 * when the time is known (now != NO_TIME); commit if anything changed.
 * On MDB_MAP_FULL, sweep everything expired and try once more.  body
 * returns 0, an LMDB error, or -1 with err.
 */
static int
write_txn(struct lmdb_store *s, int64_t now, int (*body)(struct lmdb_store *,
    MDB_txn *, void *, int *, char *, size_t), void *arg, const char *what,
    char *err, size_t errlen)
{
	struct lmdb_env *e = s->e;
	MDB_txn *txn;
	int rc, attempt, changed;

	if (batch_mine(e))
		return batch_run(s, now, body, arg, what, err, errlen);
	for (attempt = 0;; attempt++) {
		changed = 0;
		if ((rc = lmdb_txn_begin(e, 1, &txn)) != 0)
			return lmdb_err(e, rc, "begin transaction", err,
			    errlen);
		rc = now != NO_TIME ? lmdb_sweep(s, txn, now, &changed) : 0;
		if (rc == 0)
			rc = body(s, txn, arg, &changed, err, errlen);
		if (rc == 0 && changed)
			rc = lmdb_txn_commit(e, txn);
		else
			lmdb_txn_abort(e, txn);
		if (rc == MDB_MAP_FULL && attempt == 0 && now != NO_TIME) {
			log_warnx("quota store %s: map full, sweeping expired "
			    "records", e->path);
			if ((rc = lmdb_sweep_full(s, now)) == 0)
				continue;
			if (rc != MDB_MAP_FULL)
				return lmdb_err(e, rc, "sweep", err, errlen);
		}
		if (rc != 0)
			return lmdb_err(e, rc, what, err, errlen);
		return 0;
	}
}

/* ---- operations ---------------------------------------------------------- */

struct admit_arg {
	const struct quota_op *ops;
	size_t n;
	int64_t now;
	uint64_t token;
	int64_t expires;
	struct quota_op_result *res;
	int *admitted;
	struct quota_state *st;
};

/* admit_body - check every op, then charge all of them or none */
static int
admit_body(struct lmdb_store *s, MDB_txn *txn, void *varg, int *changed,
    char *err, size_t errlen)
{
	struct admit_arg *a = varg;
	const struct quota_op *op;
	const struct quota_period *per;
	size_t i, len;
	int rc, found, ok = 1;

	*a->admitted = 0;
	for (i = 0; i < a->n; i++) {
		op = &a->ops[i];
		if ((len = lmdb_rkey_len(op->rkey)) == 0 || op->limit == NULL) {
			(void)snprintf(err, errlen, "quota store %s: bad "
			    "record key", s->e->path);
			return -1;
		}
		rc = lmdb_counter_read(s->e, txn, op->rkey, len, a->now,
		    &a->st[i], &found);
		if (rc != 0)
			return rc;
		per = op->limit->kind == CONF_QKIND_CALENDAR ? &op->period :
		    NULL;
		algo_check(op->limit, &a->st[i], op->amount, op->eff_limit,
		    a->now, per, &a->res[i].check);
		if (op->eff_limit == QUOTA_UNLIMITED)
			a->res[i].check.admit = 1;
		if (!a->res[i].check.admit && !op->warn_only)
			ok = 0;
	}
	if (!ok)
		return 0;
	for (i = 0; i < a->n; i++) {
		op = &a->ops[i];
		per = op->limit->kind == CONF_QKIND_CALENDAR ? &op->period :
		    NULL;
		algo_charge(op->limit, &a->st[i], op->amount, a->now, per);
		rc = lmdb_counter_write(s->e, txn, op->limit, op->rkey,
		    lmdb_rkey_len(op->rkey), &a->st[i], per, a->now);
		if (rc != 0)
			return rc;
	}
	if (a->token != 0) {
		rc = lmdb_resv_write(s->e, txn, a->ops, a->n, a->now, a->token,
		    a->expires);
		if (rc == MDB_KEYEXIST) {
			(void)snprintf(err, errlen, "quota store %s: "
			    "reservation token in use", s->e->path);
			return -1;
		}
		if (rc != 0)
			return rc;
	}
	*changed = 1;
	*a->admitted = 1;
	return 0;
}

/* lmdb_admit - store.h admit */
static int
lmdb_admit(struct quota_store *qs, const struct quota_op *ops, size_t n,
    int64_t now_ms, uint64_t token, int64_t expires_ms,
    struct quota_op_result *res, int *admitted, char *err, size_t errlen)
{
	struct lmdb_store *s = (struct lmdb_store *)qs;
	struct quota_state stack[OPS_ON_STACK];
	struct admit_arg a;
	int rc;

	a.ops = ops;
	a.n = n;
	a.now = now_ms;
	a.token = token;
	a.expires = expires_ms;
	a.res = res;
	a.admitted = admitted;
	a.st = n <= OPS_ON_STACK ? stack : xcalloc(n, sizeof(*a.st));
	rc = write_txn(s, now_ms, admit_body, &a, "admit", err, errlen);
	if (a.st != stack)
		free(a.st);
	if (rc == -1)
		*admitted = 0;
	return rc;
}

struct token_arg {
	uint64_t token;
	int refund;
	int64_t now;
	struct admit_arg *readmit;	/* commit: the ops reserved */
};

/*
 * token_body - commit (drop) or release (refund) one reservation; a
 * commit whose reservation does not stand admits its ops again
 */
static int
token_body(struct lmdb_store *s, MDB_txn *txn, void *varg, int *changed,
    char *err, size_t errlen)
{
	struct token_arg *a = varg;
	size_t i;
	int rc, stood;

	rc = lmdb_resv_drop(s, txn, a->token, a->refund, a->now, changed,
	    &stood);
	if (rc != 0 || a->readmit == NULL)
		return rc;
	if (!stood)
		return admit_body(s, txn, a->readmit, changed, err, errlen);
	for (i = 0; i < a->readmit->n; i++) {
		memset(&a->readmit->res[i], 0, sizeof(a->readmit->res[i]));
		a->readmit->res[i].check.admit = 1;
	}
	*a->readmit->admitted = 1;
	return 0;
}

/* lmdb_commit - store.h commit */
static int
lmdb_commit(struct quota_store *qs, uint64_t token, const struct quota_op *ops,
    size_t n, int64_t now_ms, struct quota_op_result *res, int *admitted,
    char *err, size_t errlen)
{
	struct quota_state stack[OPS_ON_STACK];
	struct admit_arg r;
	struct token_arg a = { token, 0, now_ms, &r };
	int rc;

	memset(&r, 0, sizeof(r));
	r.ops = ops;
	r.n = n;
	r.now = now_ms;
	r.res = res;
	r.admitted = admitted;
	r.st = n <= OPS_ON_STACK ? stack : xcalloc(n, sizeof(*r.st));
	rc = write_txn((struct lmdb_store *)qs, now_ms, token_body, &a,
	    "commit", err, errlen);
	if (r.st != stack)
		free(r.st);
	if (rc == -1)
		*admitted = 0;
	return rc;
}

/* lmdb_release - store.h release */
static int
lmdb_release(struct quota_store *qs, uint64_t token, int64_t now_ms,
    char *err, size_t errlen)
{
	struct token_arg a = { token, 1, now_ms, NULL };

	return write_txn((struct lmdb_store *)qs, now_ms, token_body, &a,
	    "release", err, errlen);
}

/* lmdb_get - store.h get (expired or not: what the file holds) */
static int
lmdb_get(struct quota_store *qs, const char *rkey, struct quota_state *st,
    int *found, char *err, size_t errlen)
{
	struct lmdb_store *s = (struct lmdb_store *)qs;
	struct lmdb_env *e = s->e;
	unsigned char dk[QUOTA_RKEY_MAX];
	MDB_txn *txn;
	MDB_val k, v;
	int rc, inbatch;

	*found = 0;
	memset(st, 0, sizeof(*st));
	if ((k.mv_size = lmdb_rkey_len(rkey)) == 0) {
		(void)snprintf(err, errlen, "quota store %s: bad record key",
		    e->path);
		return -1;
	}
	dbkey(rkey, k.mv_size, dk);
	k.mv_data = dk;
	if ((inbatch = batch_mine(e)) != 0)	/* what the batch wrote */
		txn = e->batch_txn;
	else if ((rc = lmdb_txn_begin(e, 0, &txn)) != 0)
		return lmdb_err(e, rc, "begin transaction", err, errlen);
	rc = mdb_get(txn, e->counters, &k, &v);
	if (rc == 0 && v.mv_size >= 8 &&
	    quota_state_decode((const unsigned char *)v.mv_data + 8,
	    v.mv_size - 8, st) == 0)
		*found = 1;
	else if (rc == 0)
		memset(st, 0, sizeof(*st));
	if (!inbatch)
		lmdb_txn_abort(e, txn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return lmdb_err(e, rc, "get", err, errlen);
	return 0;
}

struct put_arg {
	const char *rkey;
	const struct quota_state *st;
	int64_t expires;
	int del;
};

/* put_body - replace or delete one counter */
static int
put_body(struct lmdb_store *s, MDB_txn *txn, void *varg, int *changed,
    char *err, size_t errlen)
{
	struct put_arg *a = varg;
	const struct conf_limit *l;
	unsigned char val[VAL_MAX], dk[QUOTA_RKEY_MAX];
	MDB_val k, v;
	size_t n;
	int rc;

	k.mv_size = lmdb_rkey_len(a->rkey);
	dbkey(a->rkey, k.mv_size, dk);
	k.mv_data = dk;
	if (a->del) {
		rc = mdb_del(txn, s->e->counters, &k, NULL);
		if (rc == MDB_NOTFOUND)
			return 0;
		if (rc == 0)
			*changed = 1;
		return rc;
	}
	if ((l = lmdb_limit_of(s->base.conf, (const unsigned char *)a->rkey,
	    k.mv_size)) == NULL) {
		(void)snprintf(err, errlen, "quota store %s: no limit for "
		    "record key", s->e->path);
		return -1;
	}
	put64(val, (uint64_t)(a->expires > 0 ? a->expires : INT64_MAX));
	if ((n = quota_state_encode(l, a->st, val + 8, sizeof(val) - 8)) ==
	    0) {
		(void)snprintf(err, errlen, "quota store %s: cannot encode "
		    "state", s->e->path);
		return -1;
	}
	v.mv_data = val;
	v.mv_size = 8 + n;
	if ((rc = mdb_put(txn, s->e->counters, &k, &v, 0)) == 0)
		*changed = 1;
	return rc;
}

/* lmdb_put - store.h put */
static int
lmdb_put(struct quota_store *qs, const char *rkey,
    const struct quota_state *st, int64_t expires_ms, char *err,
    size_t errlen)
{
	struct lmdb_store *s = (struct lmdb_store *)qs;
	struct put_arg a = { rkey, st, expires_ms, 0 };

	if (lmdb_rkey_len(rkey) == 0) {
		(void)snprintf(err, errlen, "quota store %s: bad record key",
		    s->e->path);
		return -1;
	}
	return write_txn(s, NO_TIME, put_body, &a, "put", err, errlen);
}

/* lmdb_del - store.h del */
static int
lmdb_del(struct quota_store *qs, const char *rkey, char *err, size_t errlen)
{
	struct lmdb_store *s = (struct lmdb_store *)qs;
	struct put_arg a = { rkey, NULL, 0, 1 };

	if (lmdb_rkey_len(rkey) == 0) {
		(void)snprintf(err, errlen, "quota store %s: bad record key",
		    s->e->path);
		return -1;
	}
	return write_txn(s, NO_TIME, put_body, &a, "delete", err, errlen);
}

struct iter_rec {
	char rkey[QUOTA_RKEY_MAX];
	struct quota_state st;
};

/*
 * lmdb_iterate - store.h iterate.  Records are copied out ITER_CHUNK at a
 * time and fn runs outside any transaction: a long read transaction would
 * keep LMDB from reusing freed pages, and fn may write to the store.
 */
static int
lmdb_iterate(struct quota_store *qs, int (*fn)(const char *,
    const struct quota_state *, void *), void *arg, char *err, size_t errlen)
{
	struct lmdb_store *s = (struct lmdb_store *)qs;
	struct lmdb_env *e = s->e;
	struct iter_rec *recs;
	char last[QUOTA_RKEY_MAX];
	size_t lastlen = 0, n, i;
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val k, v;
	int rc, started = 0, stop = 0;

	if (batch_mine(e)) {
		(void)snprintf(err, errlen, "quota store %s: cannot list "
		    "inside a batch", e->path);
		return -1;
	}
	recs = xcalloc(ITER_CHUNK, sizeof(*recs));
	do {
		if ((rc = lmdb_txn_begin(e, 0, &txn)) != 0)
			break;
		if ((rc = mdb_cursor_open(txn, e->counters, &c)) != 0) {
			lmdb_txn_abort(e, txn);
			break;
		}
		if (!started) {
			rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		} else {
			k.mv_data = last;
			k.mv_size = lastlen;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
			if (rc == 0 && k.mv_size == lastlen &&
			    memcmp(k.mv_data, last, lastlen) == 0)
				rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		}
		started = 1;
		for (n = 0; rc == 0 && n < ITER_CHUNK;
		    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			if (k.mv_size >= QUOTA_RKEY_MAX)
				continue;
			memcpy(last, k.mv_data, k.mv_size);
			lastlen = k.mv_size;
			if (v.mv_size < 8 || quota_state_decode(
			    (const unsigned char *)v.mv_data + 8,
			    v.mv_size - 8, &recs[n].st) == -1)
				continue;
			rkey_of(k.mv_data, k.mv_size, recs[n].rkey);
			recs[n].rkey[k.mv_size] = '\0';
			n++;
		}
		mdb_cursor_close(c);
		lmdb_txn_abort(e, txn);
		if (rc == MDB_NOTFOUND)
			rc = 0;
		else if (rc == 0)
			rc = -2;	/* chunk full: more to come */
		else
			break;
		for (i = 0; i < n && !stop; i++)
			stop = fn(recs[i].rkey, &recs[i].st, arg) != 0;
	} while (rc == -2 && !stop);
	free(recs);
	if (rc != 0 && rc != -2)
		return lmdb_err(e, rc, "iterate", err, errlen);
	return 0;
}

/* ---- batches ------------------------------------------------------------- */

/* lmdb_batch_begin - store.h batch_begin */
static int
lmdb_batch_begin(struct quota_store *qs, char *err, size_t errlen)
{
	struct lmdb_env *e = ((struct lmdb_store *)qs)->e;
	MDB_txn *txn;
	int rc;

	if (batch_mine(e)) {
		e->batch_depth++;
		return 0;
	}
	if ((rc = lmdb_txn_begin(e, 1, &txn)) != 0)
		return lmdb_err(e, rc, "begin batch", err, errlen);
	e->batch_txn = txn;
	e->batch_depth = 1;
	e->batch_changed = 0;
	e->batch_swept = 0;
	e->batch_rc = 0;
	e->batch_err[0] = '\0';
	e->batch_now = NO_TIME;
	__atomic_store_n(&e->batch_owner, pthread_self(), __ATOMIC_RELAXED);
	__atomic_store_n(&e->batch_active, 1, __ATOMIC_RELEASE);
	return 0;
}

/* lmdb_batch_end - store.h batch_end: commit the batch, or abort it */
static int
lmdb_batch_end(struct quota_store *qs, char *err, size_t errlen)
{
	struct lmdb_store *s = (struct lmdb_store *)qs;
	struct lmdb_env *e = s->e;
	MDB_txn *txn;
	int rc;

	if (!batch_mine(e)) {
		(void)snprintf(err, errlen, "quota store %s: no batch open",
		    e->path);
		return -1;
	}
	if (--e->batch_depth > 0)
		return 0;
	txn = e->batch_txn;
	rc = e->batch_rc;
	e->batch_txn = NULL;
	__atomic_store_n(&e->batch_active, 0, __ATOMIC_RELEASE);
	if (rc != 0) {
		lmdb_txn_abort(e, txn);
		if (rc == MDB_MAP_FULL && e->batch_now != NO_TIME) {
			log_warnx("quota store %s: map full, sweeping expired "
			    "records", e->path);
			(void)lmdb_sweep_full(s, e->batch_now);
		}
		if (rc == -1)
			(void)snprintf(err, errlen, "quota store %s: batch "
			    "abandoned: %s", e->path, e->batch_err);
		else
			(void)lmdb_err(e, rc, "batch abandoned", err, errlen);
		return -1;
	}
	if (!e->batch_changed) {
		lmdb_txn_abort(e, txn);
		return 0;
	}
	if ((rc = lmdb_txn_commit(e, txn)) != 0)
		return lmdb_err(e, rc, "commit batch", err, errlen);
	return 0;
}

/* lmdb_close - store.h close: drop this store's hold on its environment */
static void
lmdb_close(struct quota_store *qs)
{
	struct lmdb_store *s = (struct lmdb_store *)qs;

	if (s == NULL)
		return;
	lmdb_env_release(s->e);
	free(s);
}

static const struct quota_store_ops lmdb_ops = {
	"lmdb",
	lmdb_admit,
	lmdb_commit,
	lmdb_release,
	lmdb_get,
	lmdb_put,
	lmdb_del,
	lmdb_iterate,
	lmdb_close,
	lmdb_batch_begin,
	lmdb_batch_end,
	NULL,		/* no pipelines: no round trips to save */
};

/*
 * store_lmdb_open - store.h: the LMDB store on conf->store.path; a
 * damaged file is recovered (see the top)
 */
struct quota_store *
store_lmdb_open(const struct conf_quota *c, char *err, size_t errlen)
{
	struct lmdb_store *s;
	struct lmdb_env *e;

	if (c->store.path == NULL || c->store.path[0] == '\0') {
		(void)snprintf(err, errlen, "quota store: store.path is empty");
		return NULL;
	}
	if ((e = lmdb_env_acquire(c, err, errlen)) == NULL)
		return NULL;
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &lmdb_ops;
	s->base.conf = c;
	s->e = e;
	return &s->base;
}
