/*
 * store_lmdb_env - the LMDB store's environments and file format: one
 * environment per file per process, shared by the stores on it and
 * reference-counted (lmdb_env_acquire, lmdb_env_release); transactions
 * with the map adopted when another process grew it, disk room reserved
 * ahead and the periodic flush thread; the record format check; damage
 * found at open or in a transaction, and the recovery that moves a
 * damaged file aside.  The design is described at the top of
 * store_lmdb.c (Concurrency, Recovery).
 *
 * Ownership: the list of environments and each environment belong to
 * this file; a store holds one reference.  Failures: LMDB errors are
 * returned as they are, or -1 with err filled; a newer record format is
 * refused with a message that names the file.  Nothing here exits.
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
#include "util/log.h"
#include "util/xmalloc.h"

static pthread_mutex_t envs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lmdb_env *envs;
static unsigned long lmdb_nrecovered;	/* __atomic: files moved aside */



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
 * lmdb_txn_begin - begin a transaction, holding e->resize shared until
 * txn_end.  Adopts a map grown by another process, and clears stale
 * reader slots when they run out, once each.
 */
int
lmdb_txn_begin(struct lmdb_env *e, int write, MDB_txn **txn)
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

/* lmdb_txn_abort - abort a transaction begun by txn_begin */
void
lmdb_txn_abort(struct lmdb_env *e, MDB_txn *txn)
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
 * lmdb_txn_commit - commit a transaction begun by txn_begin; with
 * store.sync = "periodic", count it for the flush thread.
 */
int
lmdb_txn_commit(struct lmdb_env *e, MDB_txn *txn)
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
			lmdb_txn_abort(e, e->batch_txn);
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
 * gets it, any other format is refused, counters without a format are
 * damage.  0, an LMDB error, or -1 with err.
 */
static int
format_check(struct lmdb_env *e, MDB_txn *txn, char *err, size_t errlen)
{
	MDB_dbi meta;
	MDB_stat st;
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
	/*
	 * No format: a new file, stamped.  A file with counters but no
	 * format was not written by any release: damage (see recovery).
	 */
	if ((rc = mdb_stat(txn, e->counters, &st)) != 0)
		return rc;
	if (st.ms_entries > 0)
		return MDB_CORRUPTED;
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
 * lmdb_mark_damaged - note (once, loudly) an error in a transaction that a
 * damaged page gives: a damage error, or MDB_BAD_TXN (LMDB's answer
 * once a lookup in the transaction met such a page); env_verify() at the
 * next open tells whether the file is damaged indeed
 */
void
lmdb_mark_damaged(struct lmdb_env *e, int rc)
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

	if ((rc = lmdb_txn_begin(e, 0, &txn)) != 0)
		return rc;
	for (i = 0; i < 3 && (rc == 0 || rc == MDB_NOTFOUND); i++) {
		if ((rc = mdb_cursor_open(txn, dbi[i], &c)) != 0)
			break;
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
			;
		mdb_cursor_close(c);
	}
	lmdb_txn_abort(e, txn);
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

/* env_new - an environment for c's file, its locks made, not open */
static struct lmdb_env *
env_new(const struct conf_quota *c)
{
	pthread_rwlockattr_t ra;
	pthread_condattr_t ca;
	struct lmdb_env *e;

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
	return e;
}

/*
 * env_open - open (creating) the file, clear stale readers, open the
 * dbs.  NULL with err and *rcp: the LMDB error (is_damage() tells a
 * damaged file), or -1.
 */
static struct lmdb_env *
env_open(const struct conf_quota *c, int *rcp, char *err, size_t errlen)
{
	struct lmdb_env *e;
	MDB_envinfo in;
	struct stat sb;
	off_t size;
	int rc, dead = 0;

	e = env_new(c);
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
env_recover(const struct conf_quota *c, const struct lmdb_env *old, char *err,
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

/*
 * env_replace - with envs_lock held, for *pp marked damaged: check it,
 * and when the damage is real recover the file and put the new
 * environment in *pp's place (the old one lives on, unlisted, until its
 * stores close).  The environment to use, or NULL with err.
 */
static struct lmdb_env *
env_replace(const struct conf_quota *c, struct lmdb_env **pp, char *err,
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
 * lmdb_env_acquire - see store_lmdb_impl.h: the environment of
 * c->store.path, shared with this process's other stores on the file;
 * one marked damaged is checked and recovered first, and a damaged file
 * met at open is recovered (see store_lmdb.c)
 */
struct lmdb_env *
lmdb_env_acquire(const struct conf_quota *c, char *err, size_t errlen)
{
	struct lmdb_env *e, **pp;
	struct stat sb;
	int have, rc = 0, fd;

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
	return e;
}

/* lmdb_env_release - see store_lmdb_impl.h */
void
lmdb_env_release(struct lmdb_env *e)
{
	struct lmdb_env **pp;

	(void)pthread_mutex_lock(&envs_lock);
	if (--e->refs == 0) {
		for (pp = &envs; *pp != NULL; pp = &(*pp)->next)
			if (*pp == e) {
				*pp = e->next;
				break;
			}
		env_free(e);
	}
	(void)pthread_mutex_unlock(&envs_lock);
}

/* store_lmdb_recoveries - store.h: damaged files moved aside so far */
unsigned long
store_lmdb_recoveries(void)
{
	return __atomic_load_n(&lmdb_nrecovered, __ATOMIC_SEQ_CST);
}
