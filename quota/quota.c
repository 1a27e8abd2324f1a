/*
 * quota - see quota.h.  Admissions, commits, releases, batches and
 * pipelines live here; key derivation in quota_key.c, the reply text in
 * quota_reply.c and what only outpostctl calls in quota_admin.c.
 *
 * quota_open() prepares what every admission needs: the overrides sorted
 * by (limit, key) with their keys in the form quota_key() makes, and for
 * each numeric override a copy of its limit carrying the override's
 * number (the store's algorithms take a rate limit's T from it; see
 * store.h).  An admission builds one quota_op per applicable limit and
 * hands them to the store in one call, which checks and charges them
 * atomically.
 *
 * Reservation tokens are 64-bit numbers from a generator of this
 * process: splitmix64 over a seed from getrandom() plus a counter, so
 * tokens of one process never repeat and those of different processes
 * (sharing a store) collide no more often than random numbers; a forked
 * child takes a new seed (pthread_atfork).  A reservation thus costs no
 * system call (getrandom for each one was a tenth of outpost-policyd's
 * system calls).
 *
 * Pipelines: inside a batch on a store that has them (Redis), the calls
 * of the thread that opened the batch queue up in q->calls (the store's
 * arguments) and q->pend (what to do with the answer), in call order,
 * and quota_flush() hands the whole queue to the store's pipeline op,
 * then delivers each answer: the verdict to the done function of a
 * deferred admission, a store error counted and logged for a commit or a
 * release.  The synchronous calls of that thread join the queue and
 * flush it (one round trip for all that waited), so their order with
 * the deferred ones is the order of the calls.
 *
 * Asynchronous runs (quota_batch_end_async): the queue becomes a run
 * (struct qrun) at the end of the list q->ahead .. q->atail, and a
 * thread of the quota's own (run_thread, started with the first run)
 * hands each run to the store's pipeline op in list order, one after
 * the other, marks it sent and writes a byte to q->apipe.  Answers are
 * delivered only by quota_collect(), in the thread that made the calls,
 * in list order; q->delivered is the number of the last run delivered.
 * One run is in flight at a time: a batch that ends meanwhile leaves its
 * calls queued, promised to the next run (q->promised, number started +
 * 1), which quota_collect() starts once the run in flight is delivered;
 * so the calls of every turn that passed meanwhile go out together.  A
 * synchronous call of that thread first waits for the run in flight and
 * delivers it (drain), then sends the queue itself (quota_flush), so
 * calls reach the store in the order they were made; calls promised to
 * a run are then delivered as that run, and the pipe says so.  The list
 * and the sent marks are under amu.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "quota/quota.h"
#include "quota/quota_impl.h"
#include "quota/store.h"
#include "util/tz.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/parse.h"
#include "util/xmalloc.h"

#define OPS_ON_STACK 16

/* The quota's metrics (quota.h), counted by every process that links
 * this and registers them. */
static const char *const m_actions[] = { "defer", "reject", "hold", "warn",
	NULL };
static const char *const m_calls[] = { "admit", "commit", "release",
	"pipeline", NULL };
static const char *const m_whats[] = { "admission", "commit", "release",
	"batch", NULL };
static const char *const m_kinds[] = { "error", "timeout", NULL };
static struct metric m_verdicts = METRIC_DEF("outpost_quota_verdicts_total",
	"Quota limits that refused or warned, by limit and action.",
	METRIC_COUNTER, "limit", NULL, "action", m_actions);
static struct metric m_errors = METRIC_DEF("outpost_store_errors_total",
	"Quota store calls that failed, by operation and kind.",
	METRIC_COUNTER, "op", m_whats, "kind", m_kinds);
static struct metric m_store = METRIC_DEF("outpost_store_call_seconds",
	"Time of quota store calls, by operation.", METRIC_HISTOGRAM,
	"op", m_calls, NULL, NULL);
struct metric *const quota_metrics[] = { &m_verdicts, &m_errors, &m_store,
	NULL };

struct qov {
	size_t limit;			/* index into conf->limits */
	char key[QUOTA_KEY_MAX];	/* as quota_key() forms it */
	int unlimited;
	size_t order;			/* position in conf->overrides */
	struct conf_limit copy;		/* ->limit = the override's value */
};

/* A queued call's own part (its store arguments are in q->calls). */
struct qpend {
	struct quota_op *ops;		/* admit: the ops, owned */
	size_t *idx;			/* their limit indices */
	struct quota_op_result *res;
	int reserve;
	void (*done)(void *, int, const struct quota_verdict *, uint64_t);
	void *arg;
};

/* A queue handed to the run thread (see the top); the arrays owned. */
struct qrun {
	struct quota_store_call *calls;
	struct qpend *pend;
	size_t n;
	uint64_t seq;			/* run number, from 1 */
	int sent;			/* answers in calls[] (under amu) */
	struct qrun *next;
};

struct quota {
	const struct conf *conf;
	struct quota_store *store;
	struct qov *ov;			/* sorted by (limit, key) */
	size_t nov;
	uint64_t errors;		/* atomic */
	/* pipelined batch (see the top); depth and owner under pmu */
	pthread_mutex_t pmu;
	unsigned int pdepth;
	pthread_t powner;
	struct quota_store_call *calls;	/* the queue */
	struct qpend *pend;
	size_t nqueue, capqueue;
	/* asynchronous runs (see the top) */
	pthread_mutex_t amu;
	pthread_cond_t acond;		/* a run sent, a run added, stop */
	struct qrun *ahead, *atail;	/* not delivered yet, in order */
	uint64_t started, delivered;	/* run numbers */
	int apipe[2];			/* -1: no runs (store without pipelines) */
	int promised;			/* queued calls of ended batches */
	int athread_on, astop;
	pthread_t athread;
};

static int runs_pending(struct quota *);
static void runs_promised_done(struct quota *);
static void drain(struct quota *);

/* The token generator (see the top); __atomic throughout. */
static uint64_t tok_seed, tok_count;
static int tok_seeded;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;

/* tok_forked - a forked child draws a seed of its own */
static void
tok_forked(void)
{
	__atomic_store_n(&tok_seeded, 0, __ATOMIC_RELEASE);
}

static void
tok_init(void)
{
	(void)pthread_atfork(NULL, NULL, tok_forked);
}

/* new_token - a reservation token, never 0 */
static uint64_t
new_token(int64_t now)
{
	uint64_t seed, z;

	(void)pthread_once(&tok_once, tok_init);
	if (!__atomic_load_n(&tok_seeded, __ATOMIC_ACQUIRE)) {
		while (getrandom(&seed, sizeof(seed), 0) !=
		    (ssize_t)sizeof(seed))
			if (errno != EINTR) {
				seed = ((uint64_t)getpid() << 40) ^
				    (uint64_t)now ^ (uint64_t)clock();
				break;
			}
		__atomic_store_n(&tok_seed, seed, __ATOMIC_RELAXED);
		__atomic_store_n(&tok_seeded, 1, __ATOMIC_RELEASE);
	}
	do {	/* splitmix64: a bijection, so no repeats in one seed */
		z = __atomic_load_n(&tok_seed, __ATOMIC_RELAXED) +
		    __atomic_add_fetch(&tok_count, 1, __ATOMIC_RELAXED) *
		    0x9e3779b97f4a7c15ULL;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
	} while (z == 0);
	return z;
}

static int
ov_cmp(const void *a, const void *b)
{
	const struct qov *x = a, *y = b;

	if (x->limit != y->limit)
		return x->limit < y->limit ? -1 : 1;
	return strcmp(x->key, y->key);
}

/* ov_sort_cmp - ov_cmp, then the order of the config */
static int
ov_sort_cmp(const void *a, const void *b)
{
	const struct qov *x = a, *y = b;
	int r = ov_cmp(a, b);

	if (r != 0 || x->order == y->order)
		return r;
	return x->order < y->order ? -1 : 1;
}

/* ov_find - the override of limit i for key, or NULL */
static const struct qov *
ov_find(const struct quota *q, size_t i, const char *key)
{
	struct qov k;

	if (q->nov == 0)
		return NULL;
	k.limit = i;
	quota_copy_trunc(key, k.key, sizeof(k.key), 0);
	return bsearch(&k, q->ov, q->nov, sizeof(*q->ov), ov_cmp);
}

/* quota_effective - the limit to run for (i, key): *eff, or -1 if unlimited */
int
quota_effective(const struct quota *q, size_t i, const char *key,
    const struct conf_limit **lim, uint64_t *eff)
{
	const struct qov *o = ov_find(q, i, key);

	if (o != NULL && o->unlimited)
		return -1;
	*lim = o != NULL ? &o->copy : &q->conf->limits[i];
	*eff = (*lim)->limit;
	return 0;
}

/* quota_limit_index - see quota_impl.h */
int
quota_limit_index(const struct quota *q, const char *name, size_t *out)
{
	size_t i;

	for (i = 0; i < q->conf->nlimits; i++)
		if (strcmp(q->conf->limits[i].name, name) == 0) {
			*out = i;
			return 0;
		}
	return -1;
}

/* quota_open_with - the quota over an opened store (owned from here) */
static struct quota *
quota_open_with(const struct conf *c, struct quota_store *s)
{
	struct quota *q = xcalloc(1, sizeof(*q));
	int64_t now = clock_wall_ms();
	size_t i, n = 0;

	q->conf = c;
	q->store = s;
	pthread_mutex_init(&q->pmu, NULL);
	pthread_mutex_init(&q->amu, NULL);
	pthread_cond_init(&q->acond, NULL);
	q->apipe[0] = q->apipe[1] = -1;
	if (s->ops->pipeline != NULL && pipe2(q->apipe, O_CLOEXEC |
	    O_NONBLOCK) < 0) {
		log_warn("quota: pipe for asynchronous runs");
		q->apipe[0] = q->apipe[1] = -1;
	}
	q->ov = xcalloc(c->noverrides + 1, sizeof(*q->ov));
	for (i = 0; i < c->noverrides; i++) {
		const struct conf_override *o = &c->overrides[i];
		struct qov *v = &q->ov[n];

		if (o->limit >= c->nlimits)
			continue;
		v->limit = o->limit;
		quota_norm_key(&c->limits[o->limit], o->key, v->key,
		    sizeof(v->key));
		v->unlimited = o->unlimited;
		v->order = i;
		v->copy = c->limits[o->limit];
		if (!o->unlimited)
			v->copy.limit = o->value;
		n++;
	}
	/*
	 * The calendar limits' zone tables now (tz.h: reading the zone
	 * files), not at the first admission.
	 */
	for (i = 0; i < c->nlimits; i++) {
		struct quota_period per;

		if (c->limits[i].kind == CONF_QKIND_CALENDAR)
			(void)tz_period(c->limits[i].timezone,
			    c->limits[i].month, now, &per);
	}
	qsort(q->ov, n, sizeof(*q->ov), ov_sort_cmp);
	/* Keys written apart that normalize alike: the first one stays. */
	for (q->nov = 0, i = 0; i < n; i++)
		if (q->nov == 0 || ov_cmp(&q->ov[q->nov - 1], &q->ov[i]) != 0)
			q->ov[q->nov++] = q->ov[i];
	return q;
}

struct quota *
quota_open(const struct conf *c, char *err, size_t errlen)
{
	struct quota_store *s = NULL;

	switch (c->store.backend) {
	case CONF_STORE_MEMORY:
		s = store_mem_open(c, err, errlen);
		break;
	case CONF_STORE_LMDB:
		s = store_lmdb_open(c, err, errlen);
		break;
	case CONF_STORE_REDIS:
		s = store_redis_open(c, err, errlen);
		break;
	}
	if (s == NULL)
		return NULL;
	return quota_open_with(c, s);
}

struct quota *
quota_open_store(const struct conf *c, struct quota_store *s, char *err,
    size_t errlen)
{
	if (s == NULL) {
		snprintf(err, errlen, "no store");
		return NULL;
	}
	return quota_open_with(c, s);
}

struct quota *
quota_close(struct quota *q)
{
	if (q == NULL)
		return NULL;
	if (q->nqueue > 0 || runs_pending(q))
		(void)quota_flush(q);
	if (q->athread_on) {
		pthread_mutex_lock(&q->amu);
		q->astop = 1;
		pthread_cond_broadcast(&q->acond);
		pthread_mutex_unlock(&q->amu);
		pthread_join(q->athread, NULL);
	}
	if (q->apipe[0] >= 0) {
		close(q->apipe[0]);
		close(q->apipe[1]);
	}
	if (q->store != NULL)
		q->store->ops->close(q->store);
	pthread_cond_destroy(&q->acond);
	pthread_mutex_destroy(&q->amu);
	pthread_mutex_destroy(&q->pmu);
	free(q->calls);
	free(q->pend);
	free(q->ov);
	free(q);
	return NULL;
}

uint64_t
quota_errors(const struct quota *q)
{
	return __atomic_load_n(&q->errors, __ATOMIC_RELAXED);
}

/* quota_store_failed - count and log a store error; -1 */
int
quota_store_failed(struct quota *q, const char *what, const char *err)
{
	__atomic_add_fetch(&q->errors, 1, __ATOMIC_RELAXED);
	metric_inc(&m_errors, what, strstr(err, "timed out") != NULL ||
	    strstr(err, "within") != NULL ? "timeout" : "error");
	log_warnx("quota: %s store: %s: %s", q->store->ops->name, what, err);
	return -1;
}

static int
is_exempt(const struct conf *c, const struct quota_who *who)
{
	size_t i;

	if (who->sasl_username != NULL)
		for (i = 0; i < c->exempt.nlogins; i++)
			if (strcmp(c->exempt.logins[i], who->sasl_username) == 0)
				return 1;
	return who->client_addr != NULL &&
	    cidr_list_match(c->exempt.networks, c->exempt.nnetworks,
	    who->client_addr);
}

static uint64_t
amount_of(const struct conf_limit *l, const struct quota_amount *a)
{
	switch (l->count) {
	case CONF_QCOUNT_MESSAGES:
		return a->messages;
	case CONF_QCOUNT_RECIPIENTS:
		return a->recipients;
	case CONF_QCOUNT_BYTES:
		return a->bytes;
	}
	return 0;
}

/*
 * build_ops - one op per limit that applies to who (quota.h, 2 and 3);
 * idx[k] is op k's limit index.  0, or -1 when a calendar period cannot
 * be found.
 */
static int
build_ops(const struct quota *q, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, struct quota_op *ops,
    size_t *idx, size_t *nops, char *err, size_t errlen)
{
	const struct conf *c = q->conf;
	char key[QUOTA_KEY_MAX];
	size_t i, n = 0;

	for (i = 0; i < c->nlimits; i++) {
		const struct conf_limit *l = &c->limits[i], *run;
		struct quota_op *op = &ops[n];
		uint64_t amount = amount_of(l, amt), eff;

		if (amount == 0 || quota_key(l, who, key, sizeof(key)) < 0 ||
		    quota_effective(q, i, key, &run, &eff) < 0)
			continue;
		memset(op, 0, sizeof(*op));
		op->limit = run;
		op->amount = amount;
		op->eff_limit = eff;
		op->warn_only = l->action == CONF_QACTION_WARN;
		if (quota_rkey(l->name, key, op->rkey, sizeof(op->rkey)) < 0) {
			snprintf(err, errlen, "limit %s: record key too long",
			    l->name);
			return -1;
		}
		if (l->kind == CONF_QKIND_CALENDAR &&
		    tz_period(l->timezone, l->month, now, &op->period) < 0) {
			snprintf(err, errlen, "limit %s: no calendar period in "
			    "time zone %s", l->name, l->timezone);
			return -1;
		}
		idx[n++] = i;
	}
	*nops = n;
	return 0;
}

/* quota_ms_to_s - see quota_impl.h */
uint64_t
quota_ms_to_s(uint64_t ms)
{
	return ms / 1000 + (ms % 1000 != 0);
}

/* fill_from - the verdict's limit part from op k */
static void
fill_from(const struct quota *q, struct quota_verdict *v,
    const struct quota_op *op, size_t li, const struct quota_check *ck)
{
	const char *sep = strchr(op->rkey, QUOTA_RKEY_SEP);

	v->limit = &q->conf->limits[li];
	v->action = v->limit->action;
	quota_copy_trunc(sep ? sep + 1 : "", v->key, sizeof(v->key), 0);
	v->used = ck->used;
	v->limit_value = op->eff_limit;
	v->retry_after = quota_ms_to_s(ck->retry_ms);
	metric_inc(&m_verdicts, v->limit->name,
	    conf_qaction_name(v->action));
}

/*
 * verdict_of - the verdict of the store's answer (res, admitted) to ops;
 * v was cleared to QUOTA_ADMIT
 */
static void
verdict_of(const struct quota *q, const struct quota_op *ops,
    const size_t *idx, const struct quota_op_result *res, size_t n,
    int admitted, struct quota_verdict *v)
{
	size_t k, pick;

	if (!admitted) {
		/* The refusing limit that keeps the sender waiting longest. */
		for (pick = n, k = 0; k < n; k++)
			if (!ops[k].warn_only && !res[k].check.admit &&
			    (pick == n || res[k].check.retry_ms >
			    res[pick].check.retry_ms))
				pick = k;
		v->result = QUOTA_REFUSE;
		if (pick < n)
			fill_from(q, v, &ops[pick], idx[pick],
			    &res[pick].check);
		return;
	}
	for (k = 0; k < n; k++)
		if (ops[k].warn_only && !res[k].check.admit) {
			if (v->nwarned++ == 0)
				fill_from(q, v, &ops[k], idx[k],
				    &res[k].check);
			else
				metric_inc(&m_verdicts,
				    q->conf->limits[idx[k]].name, "warn");
		}
}

/* in_pipe - the calling thread has a pipelined batch open on q */
static int
in_pipe(struct quota *q)
{
	int r;

	if (q->store->ops->pipeline == NULL)
		return 0;
	pthread_mutex_lock(&q->pmu);
	r = q->pdepth > 0 && pthread_equal(q->powner, pthread_self());
	pthread_mutex_unlock(&q->pmu);
	return r;
}

/* queue_add - a new call at the end of the queue, cleared */
static size_t
queue_add(struct quota *q)
{
	if (q->nqueue == q->capqueue) {
		q->capqueue = q->capqueue ? q->capqueue * 2 : 64;
		q->calls = xreallocarray(q->calls, q->capqueue,
		    sizeof(*q->calls));
		q->pend = xreallocarray(q->pend, q->capqueue,
		    sizeof(*q->pend));
	}
	memset(&q->calls[q->nqueue], 0, sizeof(*q->calls));
	memset(&q->pend[q->nqueue], 0, sizeof(*q->pend));
	return q->nqueue++;
}

struct sync_res {
	int rc;
	struct quota_verdict *v;
	uint64_t *token;
};

/* sync_done - the answer of a synchronous call made through the queue */
static void
sync_done(void *arg, int rc, const struct quota_verdict *v, uint64_t token)
{
	struct sync_res *r = arg;

	r->rc = rc;
	*r->v = *v;
	if (r->token != NULL)
		*r->token = token;
}

/* admit - quota_admit and quota_reserve (token != NULL) */
static int
admit(struct quota *q, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, uint64_t *token,
    struct quota_verdict *v)
{
	struct quota_op ops_stack[OPS_ON_STACK], *ops = ops_stack;
	struct quota_op_result res_stack[OPS_ON_STACK], *res = res_stack;
	size_t idx_stack[OPS_ON_STACK], *idx = idx_stack, n = 0;
	size_t nl = q->conf->nlimits;
	uint64_t tok = 0, t0;
	int admitted = 0, ret = 0, rc;

	memset(v, 0, sizeof(*v));
	v->result = QUOTA_ADMIT;
	if (token != NULL)
		*token = 0;
	if (is_exempt(q->conf, who))
		return 0;
	if (in_pipe(q)) {
		struct sync_res r = { 0, v, token };

		(void)quota_defer(q, who, amt, now, token != NULL, sync_done,
		    &r);
		(void)quota_flush(q);
		return r.rc;
	}
	if (runs_pending(q))
		drain(q);	/* the runs started before go first */
	if (nl > OPS_ON_STACK) {
		ops = xcalloc(nl, sizeof(*ops));
		res = xcalloc(nl, sizeof(*res));
		idx = xcalloc(nl, sizeof(*idx));
	}
	if (build_ops(q, who, amt, now, ops, idx, &n, v->error,
	    sizeof(v->error)) < 0) {
		v->result = QUOTA_ERROR;
		ret = quota_store_failed(q, "admission", v->error);
		goto out;
	}
	if (n == 0)
		goto out;
	if (token != NULL)
		tok = new_token(now);
	memset(res, 0, n * sizeof(*res));
	t0 = metrics_now_us();
	rc = q->store->ops->admit(q->store, ops, n, now, tok,
	    now + (int64_t)q->conf->store.reserve_ttl * 1000, res, &admitted,
	    v->error, sizeof(v->error));
	metric_since(&m_store, "admit", NULL, t0);
	if (rc < 0) {
		v->result = QUOTA_ERROR;
		ret = quota_store_failed(q, "admission", v->error);
		goto out;
	}
	verdict_of(q, ops, idx, res, n, admitted, v);
	if (admitted && token != NULL)
		*token = tok;
out:
	if (ops != ops_stack) {
		free(ops);
		free(res);
		free(idx);
	}
	return ret;
}

int
quota_admit(struct quota *q, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now_ms, struct quota_verdict *v)
{
	return admit(q, who, amt, now_ms, NULL, v);
}

int
quota_reserve(struct quota *q, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now_ms, uint64_t *token,
    struct quota_verdict *v)
{
	return admit(q, who, amt, now_ms, token, v);
}

/* queue_settle - a release joins the queue; 0 */
static int
queue_settle(struct quota *q, enum quota_call_kind kind, uint64_t token,
    int64_t now)
{
	size_t i = queue_add(q);

	q->calls[i].kind = kind;
	q->calls[i].token = token;
	q->calls[i].now_ms = now;
	return 0;
}

int
quota_defer(struct quota *q, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now_ms, int reserve,
    void (*done)(void *, int, const struct quota_verdict *, uint64_t),
    void *arg)
{
	struct quota_verdict v;
	struct quota_store_call *c;
	struct qpend *p;
	uint64_t token = 0;
	size_t nl = q->conf->nlimits, i, n = 0;
	int rc;

	if (!in_pipe(q)) {
		rc = admit(q, who, amt, now_ms, reserve ? &token : NULL, &v);
		done(arg, rc, &v, token);
		return 0;
	}
	memset(&v, 0, sizeof(v));
	v.result = QUOTA_ADMIT;
	if (is_exempt(q->conf, who)) {
		done(arg, 0, &v, 0);
		return 0;
	}
	i = queue_add(q);
	c = &q->calls[i];
	p = &q->pend[i];
	p->ops = xcalloc(nl == 0 ? 1 : nl, sizeof(*p->ops));
	p->idx = xcalloc(nl == 0 ? 1 : nl, sizeof(*p->idx));
	if (build_ops(q, who, amt, now_ms, p->ops, p->idx, &n, v.error,
	    sizeof(v.error)) < 0 || n == 0) {
		free(p->ops);
		free(p->idx);
		q->nqueue--;
		rc = 0;
		if (v.error[0] != '\0') {
			v.result = QUOTA_ERROR;
			rc = quota_store_failed(q, "admission", v.error);
		}
		done(arg, rc, &v, 0);
		return 0;
	}
	p->res = xcalloc(n, sizeof(*p->res));
	p->reserve = reserve;
	p->done = done;
	p->arg = arg;
	c->kind = QUOTA_CALL_ADMIT;
	c->ops = p->ops;
	c->n = n;
	c->now_ms = now_ms;
	c->token = reserve ? new_token(now_ms) : 0;
	c->expires_ms = now_ms + (int64_t)q->conf->store.reserve_ttl * 1000;
	c->res = p->res;
	return 0;
}

/* deliver - the answer to one queued call */
static void
deliver(struct quota *q, const struct quota_store_call *c,
    struct qpend *p)
{
	struct quota_verdict v;
	const char *what = c->kind == QUOTA_CALL_COMMIT ? "commit" :
	    "admission";

	if (c->kind == QUOTA_CALL_RELEASE) {
		if (c->rc < 0)
			(void)quota_store_failed(q, "release", c->err);
		return;
	}
	memset(&v, 0, sizeof(v));
	v.result = QUOTA_ADMIT;
	if (c->rc < 0) {
		v.result = QUOTA_ERROR;
		snprintf(v.error, sizeof(v.error), "%s", c->err);
		p->done(p->arg, quota_store_failed(q, what, v.error), &v, 0);
	} else {
		verdict_of(q, p->ops, p->idx, p->res, c->n, c->admitted, &v);
		p->done(p->arg, 0, &v, c->admitted && p->reserve ? c->token :
		    0);
	}
	free(p->ops);
	free(p->idx);
	free(p->res);
}

int
quota_flush(struct quota *q)
{
	struct quota_store_call *calls;
	struct qpend *pend;
	size_t i, n;
	uint64_t t0;

	if (runs_pending(q))
		drain(q);	/* the runs started before go first */
	/* what the done functions queue goes out in the next round */
	while ((n = q->nqueue) > 0) {
		calls = q->calls;
		pend = q->pend;
		q->calls = NULL;
		q->pend = NULL;
		q->nqueue = q->capqueue = 0;
		t0 = metrics_now_us();
		q->store->ops->pipeline(q->store, calls, n);
		metric_since(&m_store, "pipeline", NULL, t0);
		for (i = 0; i < n; i++)
			deliver(q, &calls[i], &pend[i]);
		free(calls);
		free(pend);
	}
	if (q->promised)
		runs_promised_done(q);
	return 0;
}

/* runs_promised_done - the calls promised to the next run went out
 * alone: count them as that run, and wake the collector */
static void
runs_promised_done(struct quota *q)
{
	ssize_t w;

	pthread_mutex_lock(&q->amu);
	q->started++;
	pthread_mutex_unlock(&q->amu);
	q->delivered = q->started;
	q->promised = 0;
	do
		w = write(q->apipe[1], "p", 1);
	while (w < 0 && errno == EINTR);
}

/* runs_pending - runs started and not delivered yet */
static int
runs_pending(struct quota *q)
{
	int r;

	pthread_mutex_lock(&q->amu);
	r = q->ahead != NULL;
	pthread_mutex_unlock(&q->amu);
	return r;
}

/*
 * run_thread - send each run in list order, one after the other; mark
 * it sent and say so through the pipe
 */
static void *
run_thread(void *arg)
{
	struct quota *q = arg;
	struct qrun *r;
	ssize_t w;
	uint64_t t0;

	pthread_mutex_lock(&q->amu);
	for (;;) {
		for (r = q->ahead; r != NULL && r->sent; r = r->next)
			;
		if (r == NULL) {
			if (q->astop)
				break;
			pthread_cond_wait(&q->acond, &q->amu);
			continue;
		}
		pthread_mutex_unlock(&q->amu);
		t0 = metrics_now_us();
		q->store->ops->pipeline(q->store, r->calls, r->n);
		metric_since(&m_store, "pipeline", NULL, t0);
		pthread_mutex_lock(&q->amu);
		r->sent = 1;
		pthread_cond_broadcast(&q->acond);
		/* a full pipe already holds a wake-up for the reader */
		do
			w = write(q->apipe[1], "r", 1);
		while (w < 0 && errno == EINTR);
	}
	pthread_mutex_unlock(&q->amu);
	return NULL;
}

/* start_run - the queue becomes the next run; 0, or -1 (no thread) */
static int
start_run(struct quota *q)
{
	struct qrun *r;
	int rc;

	if (!q->athread_on) {
		if ((rc = pthread_create(&q->athread, NULL, run_thread,
		    q)) != 0) {
			log_warnx("quota: cannot start the run thread: %s",
			    strerror(rc));
			return -1;
		}
		q->athread_on = 1;
	}
	r = xcalloc(1, sizeof(*r));
	r->calls = q->calls;
	r->pend = q->pend;
	r->n = q->nqueue;
	q->calls = NULL;
	q->pend = NULL;
	q->nqueue = q->capqueue = 0;
	q->promised = 0;		/* this is the run they were promised */
	pthread_mutex_lock(&q->amu);
	r->seq = ++q->started;
	if (q->atail != NULL)
		q->atail->next = r;
	else
		q->ahead = r;
	q->atail = r;
	pthread_cond_broadcast(&q->acond);
	pthread_mutex_unlock(&q->amu);
	return 0;
}

/* pipe_enter, pipe_leave - quota_batch_begin and _end's depth, alone */
static void
pipe_enter(struct quota *q)
{
	pthread_mutex_lock(&q->pmu);
	if (q->pdepth == 0) {
		q->powner = pthread_self();
		q->pdepth = 1;
	} else if (pthread_equal(q->powner, pthread_self()))
		q->pdepth++;
	pthread_mutex_unlock(&q->pmu);
}

static void
pipe_leave(struct quota *q)
{
	pthread_mutex_lock(&q->pmu);
	q->pdepth--;
	pthread_mutex_unlock(&q->pmu);
}

/*
 * collect_runs - deliver the runs whose answers are back, in order;
 * what their done functions queue stays queued; how many
 */
static size_t
collect_runs(struct quota *q)
{
	struct qrun *r;
	size_t i, nruns = 0;

	pipe_enter(q);
	for (;;) {
		pthread_mutex_lock(&q->amu);
		r = q->ahead;
		if (r == NULL || !r->sent) {
			pthread_mutex_unlock(&q->amu);
			break;
		}
		q->ahead = r->next;
		if (q->ahead == NULL)
			q->atail = NULL;
		pthread_mutex_unlock(&q->amu);
		for (i = 0; i < r->n; i++)
			deliver(q, &r->calls[i], &r->pend[i]);
		q->delivered = r->seq;
		free(r->calls);
		free(r->pend);
		free(r);
		nruns++;
	}
	pipe_leave(q);
	return nruns;
}

size_t
quota_collect(struct quota *q)
{
	size_t nruns;
	int outer;

	if (q->apipe[0] < 0)
		return 0;
	outer = in_pipe(q);
	nruns = collect_runs(q);
	/* what waited for the run in flight, and what the done functions
	 * queued, is the next run; inside a batch, the batch's end sends
	 * it */
	if (!outer && q->nqueue > 0 && !runs_pending(q) && start_run(q) < 0)
		(void)quota_flush(q);
	return nruns;
}

/* drain - wait for the runs started and deliver them (the queue stays) */
static void
drain(struct quota *q)
{
	do {
		pthread_mutex_lock(&q->amu);
		while (q->atail != NULL && !q->atail->sent)
			pthread_cond_wait(&q->acond, &q->amu);
		pthread_mutex_unlock(&q->amu);
		(void)collect_runs(q);
	} while (runs_pending(q));
}

int
quota_async_fd(const struct quota *q)
{
	return q->apipe[0];
}

uint64_t
quota_delivered(const struct quota *q)
{
	return q->delivered;
}

int
quota_batch_end_async(struct quota *q, uint64_t *run, char *err,
    size_t errlen)
{
	*run = 0;
	if (q->apipe[0] < 0)
		return quota_batch_end(q, err, errlen);
	if (!in_pipe(q))
		return 0;
	if (q->pdepth == 1 && q->nqueue > 0) {
		if (runs_pending(q))
			q->promised = 1;	/* the next run takes them */
		else if (q->nqueue == 1 || start_run(q) < 0)
			(void)quota_flush(q);	/* as quota_batch_end */
	}
	pthread_mutex_lock(&q->amu);
	*run = q->promised ? q->started + 1 : q->ahead != NULL ?
	    q->started : 0;
	pthread_mutex_unlock(&q->amu);
	pipe_leave(q);
	return 0;
}

/*
 * commit - quota_commit outside a pipelined batch: the store commits
 * token, or admits again what who reserved (amt) when it lapsed
 */
static int
commit(struct quota *q, uint64_t token, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, struct quota_verdict *v)
{
	struct quota_op ops_stack[OPS_ON_STACK], *ops = ops_stack;
	struct quota_op_result res_stack[OPS_ON_STACK], *res = res_stack;
	size_t idx_stack[OPS_ON_STACK], *idx = idx_stack, n = 0;
	size_t nl = q->conf->nlimits;
	int admitted = 0, ret = 0, rc;
	uint64_t t0;

	if (runs_pending(q))
		drain(q);
	if (nl > OPS_ON_STACK) {
		ops = xcalloc(nl, sizeof(*ops));
		res = xcalloc(nl, sizeof(*res));
		idx = xcalloc(nl, sizeof(*idx));
	}
	if (amt != NULL && who != NULL && !is_exempt(q->conf, who) &&
	    build_ops(q, who, amt,
	    now, ops, idx, &n, v->error, sizeof(v->error)) < 0) {
		v->result = QUOTA_ERROR;
		ret = quota_store_failed(q, "commit", v->error);
		goto out;
	}
	t0 = metrics_now_us();
	rc = q->store->ops->commit(q->store, token, ops, n, now, res,
	    &admitted, v->error, sizeof(v->error));
	metric_since(&m_store, "commit", NULL, t0);
	if (rc < 0) {
		v->result = QUOTA_ERROR;
		ret = quota_store_failed(q, "commit", v->error);
		goto out;
	}
	verdict_of(q, ops, idx, res, n, admitted, v);
out:
	if (ops != ops_stack) {
		free(ops);
		free(res);
		free(idx);
	}
	return ret;
}

int
quota_commit(struct quota *q, uint64_t token, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now_ms, struct quota_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->result = QUOTA_ADMIT;
	if (token == 0)
		return 0;
	if (in_pipe(q)) {
		struct sync_res r = { 0, v, NULL };

		(void)quota_defer_commit(q, token, who, amt, now_ms,
		    sync_done, &r);
		(void)quota_flush(q);
		return r.rc;
	}
	return commit(q, token, who, amt, now_ms, v);
}

int
quota_defer_commit(struct quota *q, uint64_t token,
    const struct quota_who *who, const struct quota_amount *amt,
    int64_t now_ms, void (*done)(void *, int, const struct quota_verdict *,
    uint64_t), void *arg)
{
	struct quota_verdict v;
	struct quota_store_call *c;
	struct qpend *p;
	size_t nl = q->conf->nlimits, i, n = 0;
	int rc;

	memset(&v, 0, sizeof(v));
	v.result = QUOTA_ADMIT;
	if (token == 0) {
		done(arg, 0, &v, 0);
		return 0;
	}
	if (!in_pipe(q)) {
		rc = commit(q, token, who, amt, now_ms, &v);
		done(arg, rc, &v, 0);
		return 0;
	}
	i = queue_add(q);
	c = &q->calls[i];
	p = &q->pend[i];
	p->ops = xcalloc(nl == 0 ? 1 : nl, sizeof(*p->ops));
	p->idx = xcalloc(nl == 0 ? 1 : nl, sizeof(*p->idx));
	if (amt != NULL && who != NULL && !is_exempt(q->conf, who) &&
	    build_ops(q, who, amt,
	    now_ms, p->ops, p->idx, &n, v.error, sizeof(v.error)) < 0) {
		free(p->ops);
		free(p->idx);
		q->nqueue--;
		v.result = QUOTA_ERROR;
		done(arg, quota_store_failed(q, "commit", v.error), &v, 0);
		return 0;
	}
	p->res = xcalloc(n == 0 ? 1 : n, sizeof(*p->res));
	p->done = done;
	p->arg = arg;
	c->kind = QUOTA_CALL_COMMIT;
	c->ops = p->ops;
	c->n = n;
	c->now_ms = now_ms;
	c->token = token;
	c->res = p->res;
	return 0;
}

int
quota_release(struct quota *q, uint64_t token, int64_t now_ms, char *err,
    size_t errlen)
{
	uint64_t t0;
	int rc;

	if (token == 0)
		return 0;
	if (in_pipe(q))
		return queue_settle(q, QUOTA_CALL_RELEASE, token, now_ms);
	if (runs_pending(q))
		drain(q);
	t0 = metrics_now_us();
	rc = q->store->ops->release(q->store, token, now_ms, err, errlen);
	metric_since(&m_store, "release", NULL, t0);
	return rc < 0 ? quota_store_failed(q, "release", err) : 0;
}

int
quota_batch_begin(struct quota *q, char *err, size_t errlen)
{
	if (q->store->ops->pipeline != NULL) {
		/* another thread's batch: this one's calls run alone */
		pipe_enter(q);
		return 0;
	}
	if (q->store->ops->batch_begin == NULL)
		return 0;
	if (q->store->ops->batch_begin(q->store, err, errlen) < 0)
		return quota_store_failed(q, "batch", err);
	return 0;
}

int
quota_batch_end(struct quota *q, char *err, size_t errlen)
{
	if (q->store->ops->pipeline != NULL) {
		if (!in_pipe(q))
			return 0;
		if (q->pdepth == 1)
			(void)quota_flush(q);
		pipe_leave(q);
		return 0;
	}
	if (q->store->ops->batch_end == NULL)
		return 0;
	if (q->store->ops->batch_end(q->store, err, errlen) < 0)
		return quota_store_failed(q, "batch", err);
	return 0;
}

/* quota_conf_of - see quota_impl.h */
const struct conf *
quota_conf_of(const struct quota *q)
{
	return q->conf;
}

/* quota_store_of - see quota_impl.h */
struct quota_store *
quota_store_of(struct quota *q)
{
	return q->store;
}

/* quota_quiesce - see quota_impl.h */
void
quota_quiesce(struct quota *q)
{
	if (in_pipe(q))
		(void)quota_flush(q);
	else if (runs_pending(q))
		drain(q);
}
