/*
 * store_mem - the memory store (store.h): a hash table of records and a
 * list of reservations behind one mutex.  For tests; it keeps nothing
 * across processes or restarts.
 *
 * Records past their expiry (algo_expires at their last write) are
 * dropped a few hash chains at a time by each admission.  Reservations
 * hold copies of what they charged (limit, period, amount, time) so a
 * release or a lapse refunds exactly there; lapsed ones are refunded by
 * every operation that takes the lock (a commit's own included: its
 * ops are then admitted again).  The time is the caller's now_ms.
 * iterate() calls fn with the lock held: fn must not call the store.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota/store.h"
#include "util/xmalloc.h"

struct mrec {
	struct mrec *next;
	uint64_t hash;
	struct quota_state st;
	int64_t expires;		/* ms; 0: holds nothing */
	char rkey[];
};

struct mres_entry {
	char rkey[QUOTA_RKEY_MAX];
	struct conf_limit limit;	/* copy; its strings are borrowed */
	struct quota_period period;
	uint64_t amount;
	int64_t charged_ms;
};

struct mres {
	struct mres *next;
	uint64_t token;
	int64_t expires_ms;
	size_t n;
	struct mres_entry e[];
};

struct mem_store {
	struct quota_store base;	/* first: the struct quota_store * */
	pthread_mutex_t lock;
	struct mrec **tab;
	size_t ntab;			/* power of two */
	size_t nrec;
	size_t sweep;			/* next chain the sweep visits */
	struct mres *res;
};

#define SWEEP_CHAINS 8

static uint64_t
fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct mrec *
mem_find(struct mem_store *m, const char *rkey)
{
	uint64_t h = fnv1a(rkey);
	struct mrec *r;

	for (r = m->tab[h & (m->ntab - 1)]; r; r = r->next)
		if (r->hash == h && strcmp(r->rkey, rkey) == 0)
			return r;
	return NULL;
}

static void
mem_grow(struct mem_store *m)
{
	size_t nt = m->ntab * 2, i;
	struct mrec **tab = xcalloc(nt, sizeof(*tab)), *r, *next;

	for (i = 0; i < m->ntab; i++)
		for (r = m->tab[i]; r; r = next) {
			next = r->next;
			r->next = tab[r->hash & (nt - 1)];
			tab[r->hash & (nt - 1)] = r;
		}
	free(m->tab);
	m->tab = tab;
	m->ntab = nt;
}

/* mem_get_rec - the record of rkey, created empty if absent */
static struct mrec *
mem_get_rec(struct mem_store *m, const char *rkey)
{
	struct mrec *r = mem_find(m, rkey);
	size_t len = strlen(rkey);

	if (r != NULL)
		return r;
	if (m->nrec >= m->ntab)
		mem_grow(m);
	r = xcalloc(1, sizeof(*r) + len + 1);
	memcpy(r->rkey, rkey, len + 1);
	r->hash = fnv1a(rkey);
	r->next = m->tab[r->hash & (m->ntab - 1)];
	m->tab[r->hash & (m->ntab - 1)] = r;
	m->nrec++;
	return r;
}

static int
mem_del_rec(struct mem_store *m, const char *rkey)
{
	uint64_t h = fnv1a(rkey);
	struct mrec **pp, *r;

	for (pp = &m->tab[h & (m->ntab - 1)]; (r = *pp) != NULL;
	    pp = &r->next)
		if (r->hash == h && strcmp(r->rkey, rkey) == 0) {
			*pp = r->next;
			free(r);
			m->nrec--;
			return 1;
		}
	return 0;
}

/* mem_refund - give back what reservation v charged */
static void
mem_refund(struct mem_store *m, const struct mres *v, int64_t now)
{
	struct mrec *r;
	size_t i;

	for (i = 0; i < v->n; i++) {
		const struct mres_entry *e = &v->e[i];

		if ((r = mem_find(m, e->rkey)) == NULL)
			continue;	/* reclaimed: nothing left to refund */
		algo_refund(&e->limit, &r->st, e->amount, e->charged_ms, now,
		    &e->period);
		r->expires = algo_expires(&e->limit, &r->st, &e->period);
	}
}

/* mem_unlink_res - take reservation token out of the list, or NULL */
static struct mres *
mem_unlink_res(struct mem_store *m, uint64_t token)
{
	struct mres **pp, *v;

	for (pp = &m->res; (v = *pp) != NULL; pp = &v->next)
		if (v->token == token) {
			*pp = v->next;
			return v;
		}
	return NULL;
}

/* mem_lapse - refund and drop every reservation past its expiry */
static void
mem_lapse(struct mem_store *m, int64_t now)
{
	struct mres **pp = &m->res, *v;

	while ((v = *pp) != NULL) {
		if (v->expires_ms > now) {
			pp = &v->next;
			continue;
		}
		*pp = v->next;
		mem_refund(m, v, now);
		free(v);
	}
}

/* mem_sweep - drop expired records from a few chains */
static void
mem_sweep(struct mem_store *m, int64_t now)
{
	struct mrec **pp, *r;
	size_t k;

	for (k = 0; k < SWEEP_CHAINS && k < m->ntab; k++) {
		pp = &m->tab[m->sweep++ & (m->ntab - 1)];
		while ((r = *pp) != NULL) {
			if (r->expires <= now) {
				*pp = r->next;
				free(r);
				m->nrec--;
			} else
				pp = &r->next;
		}
	}
}

/* mem_admit_locked - admit with the lock held (and lapse, sweep done) */
static int
mem_admit_locked(struct mem_store *m, const struct quota_op *ops, size_t n,
    int64_t now, uint64_t token, int64_t expires_ms,
    struct quota_op_result *res, int *admitted, char *err, size_t errlen)
{
	struct quota_state zero;
	struct mres *v = NULL;
	struct mrec *r;
	size_t i;
	int ok = 1;

	memset(&zero, 0, sizeof(zero));
	if (token != 0) {
		for (v = m->res; v; v = v->next)
			if (v->token == token)
				break;
		if (v != NULL) {
			snprintf(err, errlen, "memory store: reservation "
			    "token in use");
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		r = mem_find(m, ops[i].rkey);
		algo_check(ops[i].limit, r ? &r->st : &zero, ops[i].amount,
		    ops[i].eff_limit, now, &ops[i].period, &res[i].check);
		if (!res[i].check.admit && !ops[i].warn_only)
			ok = 0;
	}
	*admitted = ok;
	if (!ok)
		return 0;
	if (token != 0 && n > 0) {
		v = xcalloc(1, sizeof(*v) + n * sizeof(v->e[0]));
		v->token = token;
		v->expires_ms = expires_ms;
		v->n = n;
	}
	for (i = 0; i < n; i++) {
		r = mem_get_rec(m, ops[i].rkey);
		algo_charge(ops[i].limit, &r->st, ops[i].amount, now,
		    &ops[i].period);
		r->expires = algo_expires(ops[i].limit, &r->st,
		    &ops[i].period);
		if (v != NULL) {
			memcpy(v->e[i].rkey, ops[i].rkey, sizeof(v->e[i].rkey));
			v->e[i].limit = *ops[i].limit;
			v->e[i].period = ops[i].period;
			v->e[i].amount = ops[i].amount;
			v->e[i].charged_ms = now;
		}
	}
	if (v != NULL) {
		v->next = m->res;
		m->res = v;
	}
	return 0;
}

static int
mem_admit(struct quota_store *s, const struct quota_op *ops, size_t n,
    int64_t now, uint64_t token, int64_t expires_ms,
    struct quota_op_result *res, int *admitted, char *err, size_t errlen)
{
	struct mem_store *m = (struct mem_store *)s;
	int rc;

	pthread_mutex_lock(&m->lock);
	mem_lapse(m, now);
	mem_sweep(m, now);
	rc = mem_admit_locked(m, ops, n, now, token, expires_ms, res,
	    admitted, err, errlen);
	pthread_mutex_unlock(&m->lock);
	return rc;
}

/*
 * mem_commit - store.h commit: a reservation that stands is dropped, its
 * charges kept; one that lapsed (refunded by mem_lapse) or is unknown
 * is admitted again from ops
 */
static int
mem_commit(struct quota_store *s, uint64_t token, const struct quota_op *ops,
    size_t n, int64_t now, struct quota_op_result *res, int *admitted,
    char *err, size_t errlen)
{
	struct mem_store *m = (struct mem_store *)s;
	struct mres *v;
	size_t i;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	mem_lapse(m, now);
	if ((v = mem_unlink_res(m, token)) != NULL) {
		free(v);
		for (i = 0; i < n; i++) {
			memset(&res[i], 0, sizeof(res[i]));
			res[i].check.admit = 1;
		}
		*admitted = 1;
	} else {
		mem_sweep(m, now);
		rc = mem_admit_locked(m, ops, n, now, 0, 0, res, admitted,
		    err, errlen);
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int
mem_release(struct quota_store *s, uint64_t token, int64_t now, char *err,
    size_t errlen)
{
	struct mem_store *m = (struct mem_store *)s;
	struct mres *v;

	(void)err;
	(void)errlen;
	pthread_mutex_lock(&m->lock);
	mem_lapse(m, now);
	if ((v = mem_unlink_res(m, token)) != NULL) {
		mem_refund(m, v, now);
		free(v);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int
mem_get(struct quota_store *s, const char *rkey, struct quota_state *st,
    int *found, char *err, size_t errlen)
{
	struct mem_store *m = (struct mem_store *)s;
	struct mrec *r;

	(void)err;
	(void)errlen;
	pthread_mutex_lock(&m->lock);
	if ((r = mem_find(m, rkey)) != NULL)
		*st = r->st;
	else
		memset(st, 0, sizeof(*st));
	*found = r != NULL;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int
mem_put(struct quota_store *s, const char *rkey, const struct quota_state *st,
    int64_t expires_ms, char *err, size_t errlen)
{
	struct mem_store *m = (struct mem_store *)s;
	struct mrec *r;

	if (strlen(rkey) >= QUOTA_RKEY_MAX) {
		snprintf(err, errlen, "memory store: record key too long");
		return -1;
	}
	pthread_mutex_lock(&m->lock);
	r = mem_get_rec(m, rkey);
	r->st = *st;
	r->expires = expires_ms;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int
mem_del(struct quota_store *s, const char *rkey, char *err, size_t errlen)
{
	struct mem_store *m = (struct mem_store *)s;

	(void)err;
	(void)errlen;
	pthread_mutex_lock(&m->lock);
	mem_del_rec(m, rkey);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int
mem_iterate(struct quota_store *s, int (*fn)(const char *,
    const struct quota_state *, void *), void *arg, char *err, size_t errlen)
{
	struct mem_store *m = (struct mem_store *)s;
	struct mrec *r;
	size_t i;
	int stop = 0;

	(void)err;
	(void)errlen;
	pthread_mutex_lock(&m->lock);
	for (i = 0; i < m->ntab && !stop; i++)
		for (r = m->tab[i]; r && !stop; r = r->next)
			stop = fn(r->rkey, &r->st, arg);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void
mem_close(struct quota_store *s)
{
	struct mem_store *m = (struct mem_store *)s;
	struct mrec *r, *rn;
	struct mres *v, *vn;
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->ntab; i++)
		for (r = m->tab[i]; r; r = rn) {
			rn = r->next;
			free(r);
		}
	for (v = m->res; v; v = vn) {
		vn = v->next;
		free(v);
	}
	free(m->tab);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static const struct quota_store_ops mem_ops = {
	"memory",
	mem_admit,
	mem_commit,
	mem_release,
	mem_get,
	mem_put,
	mem_del,
	mem_iterate,
	mem_close,
	NULL,		/* no batches: each call is atomic on its own */
	NULL,
	NULL,		/* no pipelines */
};

struct quota_store *
store_mem_open(const struct conf_quota *conf, char *err, size_t errlen)
{
	struct mem_store *m = xcalloc(1, sizeof(*m));

	(void)err;
	(void)errlen;
	m->base.ops = &mem_ops;
	m->base.conf = conf;
	pthread_mutex_init(&m->lock, NULL);
	m->ntab = 64;
	m->tab = xcalloc(m->ntab, sizeof(*m->tab));
	return &m->base;
}
