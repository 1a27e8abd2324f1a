/*
 * store_lmdb_resv - the LMDB store's reservations and sweep: recording
 * what an admission charged where (reservations, resv_expiry), dropping
 * a reservation with or without its refund, and the bounded sweep that
 * every write transaction runs (lapsed reservations refunded, expired
 * counters deleted round robin), plus the full sweep on a full map.
 * The record layouts and the reclaiming policy are described at the top
 * of store_lmdb.c.
 *
 * Ownership: every function works inside the caller's write transaction
 * and allocates nothing that outlives the call.  Failures: an LMDB error
 * is returned as it is (the caller aborts the transaction); a record
 * that does not parse is dropped, never trusted.
 */
#include "config.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota/algo.h"
#include "quota/store_lmdb_impl.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

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

/* lmdb_resv_write - record what an admission charged under token */
int
lmdb_resv_write(struct lmdb_env *e, MDB_txn *txn, const struct quota_op *ops,
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
		len = lmdb_rkey_len(ops[i].rkey);
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
	if ((cl = lmdb_limit_of(s->base.conf, op->rkey, op->rkeylen)) == NULL)
		return 0;
	l = *cl;
	l.limit = op->limit;
	rc = lmdb_counter_read(s->e, txn, op->rkey, op->rkeylen, now, &st,
	    &found);
	if (rc != 0 || !found)
		return rc;
	per = l.kind == CONF_QKIND_CALENDAR ? &op->per : NULL;
	algo_refund(&l, &st, op->amount, charged, now, per);
	return lmdb_counter_write(s->e, txn, &l, op->rkey, op->rkeylen, &st,
	    NULL, now);
}

/*
 * lmdb_resv_drop - end reservation token: refund it when refund is set or it
 * has lapsed at now, then delete it.  An unknown token is no error.
 * *stood says whether it was found and not lapsed (may be NULL).
 */
int
lmdb_resv_drop(struct lmdb_store *s, MDB_txn *txn, uint64_t token, int refund,
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
		if ((rc = lmdb_resv_drop(s, txn, token, 1, now, changed,
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

/* lmdb_sweep - the bounded reclaiming every write transaction does first */
int
lmdb_sweep(struct lmdb_store *s, MDB_txn *txn, int64_t now, int *changed)
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
 * lmdb_sweep_full - on a full map: reclaim everything expired at now, in
 * small transactions (a deleting transaction needs free pages for its
 * copies; each commit frees more for the next).  Returns 0 if anything
 * could be freed.
 */
int
lmdb_sweep_full(struct lmdb_store *s, int64_t now)
{
	struct lmdb_env *e = s->e;
	MDB_txn *txn;
	int rc, changed, wrapped = 0, any = 0;
	size_t rounds;

	for (rounds = 0; !wrapped && rounds < 1000000; rounds++) {
		changed = 0;
		if ((rc = lmdb_txn_begin(e, 1, &txn)) != 0)
			return rc;
		if (rounds == 0)	/* from the first record */
			e->scanlen = 0;
		rc = sweep_resv(s, txn, now, SWEEP_RESV, &changed);
		if (rc == 0)
			rc = sweep_counters(e, txn, now, SWEEP_FULL_SCAN,
			    SWEEP_FULL_DEL, &changed, &wrapped);
		if (rc == 0 && changed)
			rc = lmdb_txn_commit(e, txn);
		else
			lmdb_txn_abort(e, txn);
		if (rc == MDB_MAP_FULL && any)
			return 0;	/* freed some: try with that */
		if (rc != 0)
			return rc;
		any |= changed;
	}
	return any ? 0 : MDB_MAP_FULL;
}
