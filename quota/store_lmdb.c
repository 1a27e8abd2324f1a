/*
 * store_lmdb - the quota store in one LMDB file shared by every process
 * on the host (both daemons and outpostctl).  See store.h.
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
 * that finds expired records keeps sweeping every transaction.  When the map is full (MDB_MAP_FULL), the write
 * is retried once after a full sweep; if it is still full, it fails with
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

#include "quota/store.h"
#include "quota/tz.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

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

static pthread_mutex_t envs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lmdb_env *envs;
static unsigned long lmdb_nrecovered;	/* __atomic: files moved aside */

static void mark_damaged(struct lmdb_env *, int);

/* put64 - v into 8 bytes, little-endian */
static void
put64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* get64 - 8 bytes, little-endian */
static uint64_t
get64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* put64be - v into 8 bytes, big-endian (keys that sort as numbers) */
static void
put64be(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* get64be - 8 bytes, big-endian */
static uint64_t
get64be(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

/* time_key - a signed time as 8 bytes that sort in time order */
static void
time_key(unsigned char *p, int64_t t)
{
	put64be(p, (uint64_t)t ^ (1ULL << 63));
}

/* time_unkey - the inverse of time_key */
static int64_t
time_unkey(const unsigned char *p)
{
	return (int64_t)(get64be(p) ^ (1ULL << 63));
}

/* lmdb_err - fill err for LMDB error rc (-1: err already filled) */
static int
lmdb_err(struct lmdb_env *e, int rc, const char *what, char *err,
    size_t errlen)
{
	if (rc == -1)
		return -1;
	mark_damaged(e, rc);
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

/* limit_of - the configured limit whose name starts rkey, or NULL */
static const struct conf_limit *
limit_of(const struct conf *c, const unsigned char *rkey, size_t len)
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

/* rkey_len - length of a NUL-terminated rkey; 0 if empty or too long */
static size_t
rkey_len(const char *rkey)
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

/* ---- transactions ------------------------------------------------------ */

/*
 * room_check - with the writer lock held: allocate the file's blocks up
 * to ROOM_MARGIN (and extra bytes) beyond the pages in use (see the
 * top); 0 or an errno
 */
static int
room_check(struct lmdb_env *e, uint64_t extra)
{
	MDB_envinfo in;
	uint64_t used, want;
	int fd, rc;

	if (e->room == UINT64_MAX || mdb_env_info(e->env, &in) != 0)
		return 0;
	used = ((uint64_t)in.me_last_pgno + 1) * e->psize + extra;
	if (used + ROOM_MARGIN / 2 <= e->room)
		return 0;
	want = used + ROOM_MARGIN;
	if (want > in.me_mapsize)
		want = in.me_mapsize;
	if (want <= e->room || mdb_env_get_fd(e->env, &fd) != 0)
		return 0;
	rc = posix_fallocate(fd, (off_t)e->room, (off_t)(want - e->room));
	if (rc == ENOSPC && want > used + ROOM_MIN &&
	    used + ROOM_MIN > e->room) {
		want = used + ROOM_MIN;		/* the disk is nearly full */
		rc = posix_fallocate(fd, (off_t)e->room,
		    (off_t)(want - e->room));
	}
	if (rc == EOPNOTSUPP || rc == EINVAL) {
		e->room = UINT64_MAX;	/* cannot tell: stop asking */
		return 0;
	}
	if (rc != 0)
		return rc;
	e->room = want;
	return 0;
}

/*
 * txn_begin - begin a transaction, holding e->resize shared until
 * txn_end.  Adopts a map grown by another process, and clears stale
 * reader slots when they run out, once each.
 */
static int
txn_begin(struct lmdb_env *e, int write, MDB_txn **txn)
{
	int rc, tries, dead;

	for (tries = 0;; tries++) {
		(void)pthread_rwlock_rdlock(&e->resize);
		rc = mdb_txn_begin(e->env, NULL, write ? 0 : MDB_RDONLY, txn);
		if (rc == 0 && write && (rc = room_check(e, 0)) != 0) {
			mdb_txn_abort(*txn);
			(void)pthread_rwlock_unlock(&e->resize);
			return rc;
		}
		if (rc == 0)
			return 0;
		(void)pthread_rwlock_unlock(&e->resize);
		if (tries > 0)
			return rc;
		if (rc == MDB_MAP_RESIZED) {
			(void)pthread_rwlock_wrlock(&e->resize);
			rc = mdb_env_set_mapsize(e->env, 0);
			(void)pthread_rwlock_unlock(&e->resize);
			if (rc != 0)
				return rc;
		} else if (rc == MDB_READERS_FULL) {
			(void)mdb_reader_check(e->env, &dead);
		} else {
			return rc;
		}
	}
}

/* txn_abort - abort a transaction begun by txn_begin */
static void
txn_abort(struct lmdb_env *e, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	(void)pthread_rwlock_unlock(&e->resize);
}

/*
 * flush_main - the flush thread of a periodic environment: every
 * sync_interval_ms, flush the file if anything was committed since the
 * last flush; until flush_stop.
 */
static void *
flush_main(void *arg)
{
	struct lmdb_env *e = arg;
	struct timespec ts;
	uint64_t seen = 0, now;
	int rc, stop;

	for (;;) {
		(void)pthread_mutex_lock(&e->flush_lock);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += e->sync_interval_ms / 1000;
		ts.tv_nsec += (e->sync_interval_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		while (!e->flush_stop && pthread_cond_timedwait(&e->flush_cond,
		    &e->flush_lock, &ts) != ETIMEDOUT)
			;
		stop = e->flush_stop;
		(void)pthread_mutex_unlock(&e->flush_lock);
		if (stop)
			return NULL;
		now = __atomic_load_n(&e->commits, __ATOMIC_RELAXED);
		if (now == seen)
			continue;
		seen = now;
		/* mdb_env_sync reads the map size: no resize meanwhile */
		(void)pthread_rwlock_rdlock(&e->resize);
		rc = mdb_env_sync(e->env, 1);
		(void)pthread_rwlock_unlock(&e->resize);
		if (rc != 0)
			log_warnx("quota store %s: flush: %s", e->path,
			    mdb_strerror(rc));
	}
}

/* flush_start - start this process's flush thread if it has none */
static void
flush_start(struct lmdb_env *e)
{
	pid_t pid = getpid();

	(void)pthread_mutex_lock(&e->flush_lock);
	if (e->flush_pid != pid && !e->flush_stop) {
		if (pthread_create(&e->flush_tid, NULL, flush_main, e) == 0)
			__atomic_store_n(&e->flush_pid, pid, __ATOMIC_RELAXED);
		else
			log_warnx("quota store %s: cannot start the flush "
			    "thread; flushing at close only", e->path);
	}
	(void)pthread_mutex_unlock(&e->flush_lock);
}

/* flush_stop - stop this process's flush thread, if it runs */
static void
flush_stop(struct lmdb_env *e)
{
	int join;

	(void)pthread_mutex_lock(&e->flush_lock);
	e->flush_stop = 1;
	join = e->flush_pid == getpid();
	(void)pthread_cond_signal(&e->flush_cond);
	(void)pthread_mutex_unlock(&e->flush_lock);
	if (join)
		(void)pthread_join(e->flush_tid, NULL);
}

/*
 * txn_commit - commit a transaction begun by txn_begin; with
 * store.sync = "periodic", count it for the flush thread.
 */
static int
txn_commit(struct lmdb_env *e, MDB_txn *txn)
{
	int rc;

	rc = mdb_txn_commit(txn);
	(void)pthread_rwlock_unlock(&e->resize);
	if (rc == 0 && e->periodic) {
		if (__atomic_fetch_add(&e->commits, 1, __ATOMIC_RELAXED) == 0 ||
		    __atomic_load_n(&e->flush_pid, __ATOMIC_RELAXED) !=
		    getpid())
			flush_start(e);
	}
	return rc;
}

/* ---- counters ------------------------------------------------------------ */

/*
 * counter_read - the state of rkey at now into st; *found = 0 and st
 * zeroed when there is none, it has expired, or it cannot be decoded.
 */
static int
counter_read(struct lmdb_env *e, MDB_txn *txn, const void *rkey, size_t len,
    int64_t now, struct quota_state *st, int *found)
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
 * counter_write - store st for rkey with its expiry, or delete the record
 * when st holds nothing at now.  per: the calendar period st.t0 lies in
 * (NULL: found here from the limit's zone).
 */
static int
counter_write(struct lmdb_env *e, MDB_txn *txn, const struct conf_limit *l,
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

/* ---- reservations -------------------------------------------------------- */

/* resv_key - the reservations key of token */
static void
resv_key(unsigned char *p, uint64_t token)
{
	put64be(p, token);
}

/* rexp_key - the resv_expiry key of (expires, token) */
static void
rexp_key(unsigned char *p, int64_t expires, uint64_t token)
{
	time_key(p, expires);
	put64be(p + 8, token);
}

/*
 * resv_parse - the ops of a reservation record (pointing into rec);
 * -1 if malformed.  *ops is allocated; the caller frees it.
 */
static int
resv_parse(const unsigned char *rec, size_t len, int64_t *charged,
    int64_t *expires, struct resv_op **ops, size_t *nops)
{
	size_t i, n, off;

	*ops = NULL;
	*nops = 0;
	if (len < RESV_HDR || rec[0] != RESV_VERSION)
		return -1;
	n = (size_t)(get64(rec) >> 32);
	*charged = (int64_t)get64(rec + 8);
	*expires = (int64_t)get64(rec + 16);
	if (n > len / RESV_OP_HDR)
		return -1;
	*ops = xcalloc(n == 0 ? 1 : n, sizeof(**ops));
	off = RESV_HDR;
	for (i = 0; i < n; i++) {
		if (len - off < RESV_OP_HDR)
			goto bad;
		(*ops)[i].amount = get64(rec + off);
		(*ops)[i].limit = get64(rec + off + 8);
		(*ops)[i].per.start_ms = (int64_t)get64(rec + off + 16);
		(*ops)[i].per.end_ms = (int64_t)get64(rec + off + 24);
		(*ops)[i].rkeylen = (size_t)rec[off + 32] |
		    (size_t)rec[off + 33] << 8;
		off += RESV_OP_HDR;
		if (len - off < (*ops)[i].rkeylen)
			goto bad;
		(*ops)[i].rkey = rec + off;
		off += (*ops)[i].rkeylen;
	}
	*nops = n;
	return 0;
bad:
	free(*ops);
	*ops = NULL;
	return -1;
}

/* resv_write - record what an admission charged under token */
static int
resv_write(struct lmdb_env *e, MDB_txn *txn, const struct quota_op *ops,
    size_t n, int64_t now, uint64_t token, int64_t expires)
{
	struct buf b = BUF_INIT;
	unsigned char hdr[RESV_OP_HDR], kb[16];
	MDB_val k, v;
	size_t i, len;
	int rc;

	memset(hdr, 0, sizeof(hdr));
	put64(hdr, (uint64_t)n << 32 | RESV_VERSION);
	put64(hdr + 8, (uint64_t)now);
	put64(hdr + 16, (uint64_t)expires);
	buf_append(&b, hdr, RESV_HDR);
	for (i = 0; i < n; i++) {
		len = rkey_len(ops[i].rkey);
		put64(hdr, ops[i].amount);
		put64(hdr + 8, ops[i].limit->limit);
		put64(hdr + 16, (uint64_t)ops[i].period.start_ms);
		put64(hdr + 24, (uint64_t)ops[i].period.end_ms);
		hdr[32] = (unsigned char)(len & 0xff);
		hdr[33] = (unsigned char)(len >> 8);
		buf_append(&b, hdr, RESV_OP_HDR);
		buf_append(&b, ops[i].rkey, len);
	}
	resv_key(kb, token);
	k.mv_data = kb;
	k.mv_size = 8;
	v.mv_data = b.data;
	v.mv_size = b.len;
	rc = mdb_put(txn, e->resv, &k, &v, MDB_NOOVERWRITE);
	buf_free(&b);
	if (rc != 0)
		return rc;
	rexp_key(kb, expires, token);
	k.mv_data = kb;
	k.mv_size = 16;
	v.mv_data = kb;	/* any pointer: the value is empty */
	v.mv_size = 0;
	return mdb_put(txn, e->rexp, &k, &v, 0);
}

/*
 * refund_one - take back one charge of a reservation, with the limit's
 * number it was charged under (an override's: rate limits need it)
 */
static int
refund_one(struct lmdb_store *s, MDB_txn *txn, const struct resv_op *op,
    int64_t charged, int64_t now)
{
	const struct conf_limit *cl;
	const struct quota_period *per;
	struct conf_limit l;
	struct quota_state st;
	int rc, found;

	/* A limit gone from this process's configuration: nothing to do. */
	if ((cl = limit_of(s->base.conf, op->rkey, op->rkeylen)) == NULL)
		return 0;
	l = *cl;
	l.limit = op->limit;
	rc = counter_read(s->e, txn, op->rkey, op->rkeylen, now, &st, &found);
	if (rc != 0 || !found)
		return rc;
	per = l.kind == CONF_QKIND_CALENDAR ? &op->per : NULL;
	algo_refund(&l, &st, op->amount, charged, now, per);
	return counter_write(s->e, txn, &l, op->rkey, op->rkeylen, &st, NULL,
	    now);
}

/*
 * resv_drop - end reservation token: refund it when refund is set or it
 * has lapsed at now, then delete it.  An unknown token is no error.
 * *stood says whether it was found and not lapsed (may be NULL).
 */
static int
resv_drop(struct lmdb_store *s, MDB_txn *txn, uint64_t token, int refund,
    int64_t now, int *changed, int *stood)
{
	struct lmdb_env *e = s->e;
	unsigned char kb[16], *rec = NULL;
	struct resv_op *ops = NULL;
	int64_t charged, expires;
	MDB_val k, v;
	size_t i, nops;
	int rc;

	if (stood != NULL)
		*stood = 0;
	resv_key(kb, token);
	k.mv_data = kb;
	k.mv_size = 8;
	if ((rc = mdb_get(txn, e->resv, &k, &v)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	/* Copy: writes below may move the page v points into. */
	rec = xmalloc(v.mv_size == 0 ? 1 : v.mv_size);
	memcpy(rec, v.mv_data, v.mv_size);
	if (resv_parse(rec, v.mv_size, &charged, &expires, &ops,
	    &nops) == 0) {
		if (expires <= now)
			refund = 1;
		else if (stood != NULL)
			*stood = 1;
		for (i = 0; refund && i < nops; i++)
			if ((rc = refund_one(s, txn, &ops[i], charged,
			    now)) != 0)
				goto done;
		rexp_key(kb + 0, expires, token);
		k.mv_data = kb;
		k.mv_size = 16;
		rc = mdb_del(txn, e->rexp, &k, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			goto done;
	}
	/* (A record we cannot parse is dropped without a refund.) */
	resv_key(kb, token);
	k.mv_data = kb;
	k.mv_size = 8;
	rc = mdb_del(txn, e->resv, &k, NULL);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (rc == 0)
		*changed = 1;
done:
	free(ops);
	free(rec);
	return rc;
}

/* ---- sweep --------------------------------------------------------------- */

/* sweep_resv - refund at most max reservations lapsed at now */
static int
sweep_resv(struct lmdb_store *s, MDB_txn *txn, int64_t now, size_t max,
    int *changed)
{
	struct lmdb_env *e = s->e;
	unsigned char kb[16];
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t token;
	size_t i;
	int rc;

	for (i = 0; i < max; i++) {
		if ((rc = mdb_cursor_open(txn, e->rexp, &c)) != 0)
			return rc;
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc == 0 && k.mv_size == 16)
			memcpy(kb, k.mv_data, 16);
		mdb_cursor_close(c);
		if (rc == MDB_NOTFOUND)
			return 0;
		if (rc != 0)
			return rc;
		if (k.mv_size != 16) {	/* not ours: drop it */
			if ((rc = mdb_del(txn, e->rexp, &k, NULL)) != 0)
				return rc;
			*changed = 1;
			continue;
		}
		if (time_unkey(kb) > now)
			return 0;
		token = get64be(kb + 8);
		if ((rc = resv_drop(s, txn, token, 1, now, changed,
		    NULL)) != 0)
			return rc;
		/* An index entry without its reservation goes too. */
		k.mv_data = kb;
		k.mv_size = 16;
		rc = mdb_del(txn, e->rexp, &k, NULL);
		if (rc == 0)
			*changed = 1;
		else if (rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

/*
 * sweep_counters - examine at most max counters from where the last sweep
 * stopped and delete those expired at now, at most maxdel of them;
 * *wrapped = 1 when it reached the end (the next sweep starts from the
 * first record).
 */
static int
sweep_counters(struct lmdb_env *e, MDB_txn *txn, int64_t now, size_t max,
    size_t maxdel, int *changed, int *wrapped)
{
	MDB_cursor *c;
	MDB_val k, v;
	size_t n = 0, ndel = 0;
	int rc;

	*wrapped = 0;
	if ((rc = mdb_cursor_open(txn, e->counters, &c)) != 0)
		return rc;
	if (e->scanlen > 0) {
		k.mv_data = e->scan;
		k.mv_size = e->scanlen;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	} else {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	}
	while (rc == 0) {
		if (n == max || ndel == maxdel) {
			if (k.mv_size <= sizeof(e->scan)) {
				memcpy(e->scan, k.mv_data, k.mv_size);
				e->scanlen = k.mv_size;
			} else {
				e->scanlen = 0;
			}
			break;
		}
		n++;
		if (v.mv_size < 8 || (int64_t)get64(v.mv_data) <= now) {
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				break;
			ndel++;
			*changed = 1;
		}
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND) {
		e->scanlen = 0;
		*wrapped = 1;
		rc = 0;
	}
	return rc;
}

/* sweep - the bounded reclaiming every write transaction does first */
static int
sweep(struct lmdb_store *s, MDB_txn *txn, int64_t now, int *changed)
{
	struct lmdb_env *e = s->e;
	int rc, wrapped, deleted = 0;

	if ((rc = sweep_resv(s, txn, now, SWEEP_RESV, changed)) != 0)
		return rc;
	if (e->sweep_idle > 0) {
		e->sweep_idle--;
		return 0;
	}
	rc = sweep_counters(e, txn, now, SWEEP_SCAN, SWEEP_SCAN, &deleted,
	    &wrapped);
	*changed |= deleted;
	e->sweep_idle = deleted || wrapped ? 0 : SWEEP_IDLE;
	return rc;
}

/*
 * sweep_full - on a full map: reclaim everything expired at now, in
 * small transactions (a deleting transaction needs free pages for its
 * copies; each commit frees more for the next).  Returns 0 if anything
 * could be freed.
 */
static int
sweep_full(struct lmdb_store *s, int64_t now)
{
	struct lmdb_env *e = s->e;
	MDB_txn *txn;
	int rc, changed, wrapped = 0, any = 0;
	size_t rounds;

	for (rounds = 0; !wrapped && rounds < 1000000; rounds++) {
		changed = 0;
		if ((rc = txn_begin(e, 1, &txn)) != 0)
			return rc;
		if (rounds == 0)	/* from the first record */
			e->scanlen = 0;
		rc = sweep_resv(s, txn, now, SWEEP_RESV, &changed);
		if (rc == 0)
			rc = sweep_counters(e, txn, now, SWEEP_FULL_SCAN,
			    SWEEP_FULL_DEL, &changed, &wrapped);
		if (rc == 0 && changed)
			rc = txn_commit(e, txn);
		else
			txn_abort(e, txn);
		if (rc == MDB_MAP_FULL && any)
			return 0;	/* freed some: try with that */
		if (rc != 0)
			return rc;
		any |= changed;
	}
	return any ? 0 : MDB_MAP_FULL;
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
			rc = sweep(s, e->batch_txn, now, &changed);
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
		if ((rc = txn_begin(e, 1, &txn)) != 0)
			return lmdb_err(e, rc, "begin transaction", err,
			    errlen);
		rc = now != NO_TIME ? sweep(s, txn, now, &changed) : 0;
		if (rc == 0)
			rc = body(s, txn, arg, &changed, err, errlen);
		if (rc == 0 && changed)
			rc = txn_commit(e, txn);
		else
			txn_abort(e, txn);
		if (rc == MDB_MAP_FULL && attempt == 0 && now != NO_TIME) {
			log_warnx("quota store %s: map full, sweeping expired "
			    "records", e->path);
			if ((rc = sweep_full(s, now)) == 0)
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
		if ((len = rkey_len(op->rkey)) == 0 || op->limit == NULL) {
			(void)snprintf(err, errlen, "quota store %s: bad "
			    "record key", s->e->path);
			return -1;
		}
		rc = counter_read(s->e, txn, op->rkey, len, a->now, &a->st[i],
		    &found);
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
		rc = counter_write(s->e, txn, op->limit, op->rkey,
		    rkey_len(op->rkey), &a->st[i], per, a->now);
		if (rc != 0)
			return rc;
	}
	if (a->token != 0) {
		rc = resv_write(s->e, txn, a->ops, a->n, a->now, a->token,
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

	rc = resv_drop(s, txn, a->token, a->refund, a->now, changed, &stood);
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
	if ((k.mv_size = rkey_len(rkey)) == 0) {
		(void)snprintf(err, errlen, "quota store %s: bad record key",
		    e->path);
		return -1;
	}
	dbkey(rkey, k.mv_size, dk);
	k.mv_data = dk;
	if ((inbatch = batch_mine(e)) != 0)	/* what the batch wrote */
		txn = e->batch_txn;
	else if ((rc = txn_begin(e, 0, &txn)) != 0)
		return lmdb_err(e, rc, "begin transaction", err, errlen);
	rc = mdb_get(txn, e->counters, &k, &v);
	if (rc == 0 && v.mv_size >= 8 &&
	    quota_state_decode((const unsigned char *)v.mv_data + 8,
	    v.mv_size - 8, st) == 0)
		*found = 1;
	else if (rc == 0)
		memset(st, 0, sizeof(*st));
	if (!inbatch)
		txn_abort(e, txn);
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

	k.mv_size = rkey_len(a->rkey);
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
	if ((l = limit_of(s->base.conf, (const unsigned char *)a->rkey,
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

	if (rkey_len(rkey) == 0) {
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

	if (rkey_len(rkey) == 0) {
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
		if ((rc = txn_begin(e, 0, &txn)) != 0)
			break;
		if ((rc = mdb_cursor_open(txn, e->counters, &c)) != 0) {
			txn_abort(e, txn);
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
		txn_abort(e, txn);
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
	if ((rc = txn_begin(e, 1, &txn)) != 0)
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
		txn_abort(e, txn);
		if (rc == MDB_MAP_FULL && e->batch_now != NO_TIME) {
			log_warnx("quota store %s: map full, sweeping expired "
			    "records", e->path);
			(void)sweep_full(s, e->batch_now);
		}
		if (rc == -1)
			(void)snprintf(err, errlen, "quota store %s: batch "
			    "abandoned: %s", e->path, e->batch_err);
		else
			(void)lmdb_err(e, rc, "batch abandoned", err, errlen);
		return -1;
	}
	if (!e->batch_changed) {
		txn_abort(e, txn);
		return 0;
	}
	if ((rc = txn_commit(e, txn)) != 0)
		return lmdb_err(e, rc, "commit batch", err, errlen);
	return 0;
}

/* ---- open and close ------------------------------------------------------ */

/* env_free - close and free one environment */
static void
env_free(struct lmdb_env *e)
{
	if (e == NULL)
		return;
	if (e->env != NULL) {
		if (e->batch_txn != NULL) {	/* closed inside a batch */
			log_warnx("quota store %s: closed with a batch open; "
			    "its calls are abandoned", e->path);
			txn_abort(e, e->batch_txn);
			e->batch_txn = NULL;
		}
		if (e->periodic) {
			flush_stop(e);
			(void)mdb_env_sync(e->env, 1);
		}
		mdb_env_close(e->env);
	}
	(void)pthread_cond_destroy(&e->flush_cond);
	(void)pthread_mutex_destroy(&e->flush_lock);
	(void)pthread_rwlock_destroy(&e->resize);
	free(e->path);
	free(e);
}

/*
 * format_check - make sure the file holds format FORMAT: a new file
 * gets it, any other format is refused.  0, an LMDB error, or -1 with
 * err.
 */
static int
format_check(struct lmdb_env *e, MDB_txn *txn, char *err, size_t errlen)
{
	MDB_dbi meta;
	MDB_val k, v;
	char fmt[16];
	long have;
	int rc;

	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta)) != 0)
		return rc;
	k.mv_data = (void *)(uintptr_t)FORMAT_KEY;
	k.mv_size = strlen(FORMAT_KEY);
	rc = mdb_get(txn, meta, &k, &v);
	if (rc == 0) {
		if (v.mv_size == 0 || v.mv_size >= sizeof(fmt)) {
			have = -1;
		} else {
			memcpy(fmt, v.mv_data, v.mv_size);
			fmt[v.mv_size] = '\0';
			have = strtol(fmt, NULL, 10);
		}
		if (have == FORMAT)
			return 0;
		if (have < 0)
			return MDB_CORRUPTED;	/* damage: see recovery */
		(void)snprintf(err, errlen, "quota store %s: record format "
		    "%s, this outpost reads format %d (written by a newer "
		    "version? remove the file to start counting afresh)",
		    e->path, fmt, FORMAT);
		return -1;
	}
	if (rc != MDB_NOTFOUND)
		return rc;
	/* No format: a new file. */
	(void)snprintf(fmt, sizeof(fmt), "%d", FORMAT);
	v.mv_data = fmt;
	v.mv_size = strlen(fmt);
	return mdb_put(txn, meta, &k, &v, 0);
}

/*
 * is_damage - 1 if LMDB error rc says the file itself is unusable (see
 * recovery at the top), not the host or the configuration
 */
static int
is_damage(int rc)
{
	return rc == MDB_INVALID || rc == MDB_CORRUPTED ||
	    rc == MDB_PAGE_NOTFOUND || rc == MDB_VERSION_MISMATCH;
}

/*
 * mark_damaged - note (once, loudly) an error in a transaction that a
 * damaged page gives: a damage error, or MDB_BAD_TXN (LMDB's answer
 * once a lookup in the transaction met such a page); env_verify() at the
 * next open tells whether the file is damaged indeed
 */
static void
mark_damaged(struct lmdb_env *e, int rc)
{
	if ((!is_damage(rc) && rc != MDB_BAD_TXN) ||
	    __atomic_exchange_n(&e->damaged, 1, __ATOMIC_SEQ_CST) != 0)
		return;
	log_warnx("quota store %s: the file looks damaged (%s); it is "
	    "checked, and if so moved aside and started afresh, at the next "
	    "open (reload or restart)", e->path, mdb_strerror(rc));
}

/*
 * env_verify - read every record of e's databases in one read
 * transaction: 0 when all of them read, else the LMDB error
 */
static int
env_verify(struct lmdb_env *e)
{
	MDB_dbi dbi[3] = { e->counters, e->resv, e->rexp };
	MDB_cursor *c;
	MDB_txn *txn;
	MDB_val k, v;
	size_t i;
	int rc;

	if ((rc = txn_begin(e, 0, &txn)) != 0)
		return rc;
	for (i = 0; i < 3 && (rc == 0 || rc == MDB_NOTFOUND); i++) {
		if ((rc = mdb_cursor_open(txn, dbi[i], &c)) != 0)
			break;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
			;
		mdb_cursor_close(c);
	}
	txn_abort(e, txn);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * edges_check - read the first and the last record of dbi: a cheap walk
 * of both edges of its B-tree from the root, where a file cut short or
 * overwritten with garbage shows first.  0 or an LMDB error.
 */
static int
edges_check(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(txn, dbi, &c)) != 0)
		return rc;
	if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * env_dbs - in one write transaction: open the databases, check their
 * edges and the record format.  0, an LMDB error, or -1 with err.
 */
static int
env_dbs(struct lmdb_env *e, char *err, size_t errlen)
{
	MDB_txn *txn;
	int rc;

	if ((rc = mdb_txn_begin(e->env, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = room_check(e, 0)) != 0)	/* writes will say so */
		log_warnx("quota store %s: cannot reserve disk space: %s",
		    e->path, strerror(rc));
	if ((rc = mdb_dbi_open(txn, "counters", MDB_CREATE,
	    &e->counters)) != 0 ||
	    (rc = mdb_dbi_open(txn, "reservations", MDB_CREATE,
	    &e->resv)) != 0 ||
	    (rc = mdb_dbi_open(txn, "resv_expiry", MDB_CREATE,
	    &e->rexp)) != 0 ||
	    (rc = edges_check(txn, e->counters)) != 0 ||
	    (rc = edges_check(txn, e->resv)) != 0 ||
	    (rc = edges_check(txn, e->rexp)) != 0 ||
	    (rc = format_check(e, txn, err, errlen)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/*
 * env_open - open (creating) the file, clear stale readers, open the
 * dbs.  NULL with err and *rcp: the LMDB error (is_damage() tells a
 * damaged file), or -1.
 */
static struct lmdb_env *
env_open(const struct conf *c, int *rcp, char *err, size_t errlen)
{
	pthread_rwlockattr_t ra;
	pthread_condattr_t ca;
	struct lmdb_env *e;
	MDB_envinfo in;
	struct stat sb;
	off_t size;
	int rc, dead = 0;

	e = xcalloc(1, sizeof(*e));
	e->path = xstrdup(c->store.path);
	e->map_size = c->store.map_size != 0 ? c->store.map_size : DEFAULT_MAP;
	(void)pthread_rwlockattr_init(&ra);
	/* A resize waits for the running transactions, not for new ones. */
	(void)pthread_rwlockattr_setkind_np(&ra,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	(void)pthread_rwlock_init(&e->resize, &ra);
	(void)pthread_rwlockattr_destroy(&ra);
	(void)pthread_mutex_init(&e->flush_lock, NULL);
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&e->flush_cond, &ca);
	(void)pthread_condattr_destroy(&ca);
	if ((rc = mdb_env_create(&e->env)) != 0) {
		e->env = NULL;
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(e->env, 8)) != 0 ||
	    (rc = mdb_env_set_maxreaders(e->env, LMDB_MAXREADERS)) != 0 ||
	    (rc = mdb_env_set_mapsize(e->env, (size_t)e->map_size)) != 0)
		goto fail;
	/* Durability: see the top. */
	e->periodic = !c->store.sync_always;
	e->sync_interval_ms = (int64_t)(c->store.sync_interval ?
	    c->store.sync_interval : 1) * 1000;
	/* The size before LMDB extends the file to the map (WRITEMAP). */
	size = stat(e->path, &sb) == 0 ? sb.st_size : 0;
	if ((rc = mdb_env_open(e->env, e->path, MDB_NOSUBDIR | MDB_NOTLS |
	    MDB_WRITEMAP | (e->periodic ? MDB_NOSYNC : 0), 0600)) != 0) {
		*rcp = rc;
		(void)snprintf(err, errlen, "quota store %s: open: %s%s",
		    e->path, mdb_strerror(rc), rc == ENOENT ?
		    " (does its directory exist?)" : "");
		goto fail_filled;
	}
	if ((rc = mdb_reader_check(e->env, &dead)) != 0)
		goto fail;
	if (dead > 0)
		log_info("quota store %s: cleared %d reader slots of dead "
		    "processes", e->path, dead);
	{
		MDB_stat est;

		e->psize = mdb_env_stat(e->env, &est) == 0 ? est.ms_psize :
		    4096;
	}
	/* A file cut short of its last page: zeros would read as pages. */
	if (size > 0 && mdb_env_info(e->env, &in) == 0 &&
	    ((uint64_t)in.me_last_pgno + 1) * e->psize > (uint64_t)size) {
		rc = MDB_CORRUPTED;
		goto fail;
	}
	if ((rc = env_dbs(e, err, errlen)) == -1) {
		*rcp = -1;
		goto fail_filled;
	} else if (rc != 0)
		goto fail;
	if (stat(e->path, &sb) == 0) {
		e->dev = sb.st_dev;
		e->ino = sb.st_ino;
	}
	return e;
fail:
	*rcp = rc;
	(void)snprintf(err, errlen, "quota store %s: open: %s", e->path,
	    mdb_strerror(rc));
fail_filled:
	env_free(e);
	return NULL;
}

/*
 * dir_lock - an flock(2) on the directory of path (how: LOCK_EX to
 * recover, LOCK_SH to open), so that no process opens the file while
 * another moves it and its lock file aside (they are what is replaced,
 * so neither can hold the lock).  The descriptor, to close, or -1 with
 * err.
 */
static int
dir_lock(const char *path, int how, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, r;

	if (slash == NULL)
		r = snprintf(dir, sizeof(dir), ".");
	else
		r = snprintf(dir, sizeof(dir), "%.*s",
		    slash == path ? 1 : (int)(slash - path), path);
	if (r < 0 || (size_t)r >= sizeof(dir)) {
		(void)snprintf(err, errlen, "quota store %s: path too long",
		    path);
		return -1;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1 ||
	    flock(fd, how) == -1) {
		(void)snprintf(err, errlen, "quota store %s: lock %s for "
		    "recovery: %s", path, dir, strerror(errno));
		if (fd != -1)
			(void)close(fd);
		return -1;
	}
	return fd;
}

/*
 * move_aside - rename path to PATH.corrupt-YYYYmmddTHHMMSS (UTC; a
 * suffix -N when taken) and its lock file PATH-lock along, so that
 * LMDB's tools open the pair; called under dir_lock
 */
static int
move_aside(const char *path, char *to, size_t tolen, char *err,
    size_t errlen)
{
	char stamp[32], from_lock[PATH_MAX + 8], to_lock[PATH_MAX + 80];
	struct stat sb;
	struct tm tm;
	time_t now = time(NULL);
	int i, r = -1;

	if (gmtime_r(&now, &tm) == NULL ||
	    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm) == 0)
		stamp[0] = '\0';
	for (i = 0; i < 100; i++) {
		r = i == 0 ? snprintf(to, tolen, "%s.corrupt-%s", path,
		    stamp) : snprintf(to, tolen, "%s.corrupt-%s-%d", path,
		    stamp, i);
		if (r < 0 || (size_t)r >= tolen || lstat(to, &sb) == -1)
			break;
	}
	if (r < 0 || (size_t)r >= tolen || i == 100) {
		(void)snprintf(err, errlen, "quota store %s: no name to move "
		    "the damaged file to", path);
		return -1;
	}
	if (rename(path, to) == -1) {
		(void)snprintf(err, errlen, "quota store %s: damaged, and "
		    "cannot be moved aside to %s: %s", path, to,
		    strerror(errno));
		return -1;
	}
	(void)snprintf(from_lock, sizeof(from_lock), "%s-lock", path);
	(void)snprintf(to_lock, sizeof(to_lock), "%s-lock", to);
	if (rename(from_lock, to_lock) == -1 && errno != ENOENT &&
	    unlink(from_lock) == -1)
		log_warn("quota store %s: cannot move its lock file %s",
		    path, from_lock);
	return 0;
}

/*
 * env_recover - under dir_lock: when the file at c's path is still
 * unusable (it opens with a damage error, or it is the file of the
 * damaged environment old), move it aside and open a fresh one.  A file
 * that opens now (another process recovered it first) is used as it
 * is.  The new environment, or NULL with err.
 */
static struct lmdb_env *
env_recover(const struct conf *c, const struct lmdb_env *old, char *err,
    size_t errlen)
{
	char to[PATH_MAX + 64];
	struct lmdb_env *e = NULL;
	struct stat sb;
	int fd, rc = 0, same;

	if ((fd = dir_lock(c->store.path, LOCK_EX, err, errlen)) == -1)
		return NULL;
	same = old != NULL && stat(c->store.path, &sb) == 0 &&
	    sb.st_dev == old->dev && sb.st_ino == old->ino;
	/* Never a second environment on old's file (see Concurrency). */
	if (!same && ((e = env_open(c, &rc, err, errlen)) != NULL ||
	    !is_damage(rc)))
		goto out;
	if (move_aside(c->store.path, to, sizeof(to), err, errlen) == -1)
		goto out;
	__atomic_add_fetch(&lmdb_nrecovered, 1, __ATOMIC_SEQ_CST);
	log_warnx("quota store %s: DAMAGED (%s), moved aside to %s; "
	    "counting starts afresh", c->store.path, old != NULL ?
	    "met in a transaction" : err, to);
	e = env_open(c, &rc, err, errlen);
out:
	(void)close(fd);	/* drops the flock */
	return e;
}

/* lmdb_close - store.h close: drop this store's hold on its environment */
static void
lmdb_close(struct quota_store *qs)
{
	struct lmdb_store *s = (struct lmdb_store *)qs;
	struct lmdb_env **pp;

	if (s == NULL)
		return;
	(void)pthread_mutex_lock(&envs_lock);
	if (--s->e->refs == 0) {
		for (pp = &envs; *pp != NULL; pp = &(*pp)->next)
			if (*pp == s->e) {
				*pp = s->e->next;
				break;
			}
		env_free(s->e);
	}
	(void)pthread_mutex_unlock(&envs_lock);
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
 * env_replace - with envs_lock held, for *pp marked damaged: check it,
 * and when the damage is real recover the file and put the new
 * environment in *pp's place (the old one lives on, unlisted, until its
 * stores close).  The environment to use, or NULL with err.
 */
static struct lmdb_env *
env_replace(const struct conf *c, struct lmdb_env **pp, char *err,
    size_t errlen)
{
	struct lmdb_env *old = *pp, *e;
	int rc;

	if ((rc = env_verify(old)) == 0) {
		log_warnx("quota store %s: checked every record: the file is "
		    "sound", old->path);
		__atomic_store_n(&old->damaged, 0, __ATOMIC_SEQ_CST);
		return old;
	}
	if (!is_damage(rc) && rc != MDB_BAD_TXN)
		return old;		/* cannot tell now: the next open */
	if ((e = env_recover(c, old, err, errlen)) == NULL)
		return NULL;
	*pp = old->next;
	old->next = NULL;
	e->next = envs;
	envs = e;
	return e;
}

/*
 * store_lmdb_open - store.h: the LMDB store on conf->store.path; a
 * damaged file is recovered (see the top)
 */
struct quota_store *
store_lmdb_open(const struct conf *c, char *err, size_t errlen)
{
	struct lmdb_store *s;
	struct lmdb_env *e, **pp;
	struct stat sb;
	int have, rc = 0, fd;

	if (c->store.path == NULL || c->store.path[0] == '\0') {
		(void)snprintf(err, errlen, "quota store: store.path is empty");
		return NULL;
	}
	have = stat(c->store.path, &sb) == 0;
	(void)pthread_mutex_lock(&envs_lock);
	for (pp = &envs; (e = *pp) != NULL; pp = &e->next)
		if (have ? e->dev == sb.st_dev && e->ino == sb.st_ino :
		    strcmp(e->path, c->store.path) == 0)
			break;
	if (e != NULL && __atomic_load_n(&e->damaged, __ATOMIC_SEQ_CST)) {
		/* Its stores keep the old one until they close. */
		if ((e = env_replace(c, pp, err, errlen)) == NULL) {
			(void)pthread_mutex_unlock(&envs_lock);
			return NULL;
		}
	} else if (e == NULL) {
		/* Not while another process recovers (best effort: a
		 * directory that cannot be locked fails in env_open). */
		fd = dir_lock(c->store.path, LOCK_SH, err, errlen);
		e = env_open(c, &rc, err, errlen);
		if (fd != -1)
			(void)close(fd);
		if (e == NULL && (!is_damage(rc) ||
		    (e = env_recover(c, NULL, err, errlen)) == NULL)) {
			(void)pthread_mutex_unlock(&envs_lock);
			return NULL;
		}
		e->next = envs;
		envs = e;
	}
	e->refs++;
	(void)pthread_mutex_unlock(&envs_lock);
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &lmdb_ops;
	s->base.conf = c;
	s->e = e;
	return &s->base;
}

/* store_lmdb_recoveries - store.h: damaged files moved aside so far */
unsigned long
store_lmdb_recoveries(void)
{
	return __atomic_load_n(&lmdb_nrecovered, __ATOMIC_SEQ_CST);
}
