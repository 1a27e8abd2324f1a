/*
 * quota - see quota.h.  Admissions, commits and releases made one at a
 * time live here; the batches (submit, then flush) in quota_batch.c, key
 * derivation in quota_key.c, the reply text in quota_reply.c and what
 * only outpostctl calls in quota_admin.c.
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

/* quota_metric_store - see quota_impl.h */
void
quota_metric_store(const char *op, uint64_t t0)
{
	metric_since(&m_store, op, NULL, t0);
}

struct qov {
	size_t limit;			/* index into conf->limits */
	char key[QUOTA_KEY_MAX];	/* as quota_key() forms it */
	int unlimited;
	size_t order;			/* position in conf->overrides */
	struct conf_limit copy;		/* ->limit = the override's value */
};

struct quota {
	const struct conf_quota *conf;
	struct quota_store *store;
	struct qov *ov;			/* sorted by (limit, key) */
	size_t nov;
	uint64_t errors;		/* atomic */
};

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

/* quota_new_token - see quota_impl.h */
uint64_t
quota_new_token(int64_t now)
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
quota_open_with(const struct conf_quota *c, struct quota_store *s)
{
	struct quota *q = xcalloc(1, sizeof(*q));
	int64_t now = clock_wall_ms();
	size_t i, n = 0;

	q->conf = c;
	q->store = s;
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
quota_open(const struct conf_quota *c, char *err, size_t errlen)
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
quota_open_store(const struct conf_quota *c, struct quota_store *s, char *err,
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
	if (q->store != NULL)
		q->store->ops->close(q->store);
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

/* quota_exempt - see quota_impl.h */
int
quota_exempt(const struct conf_quota *c, const struct quota_who *who)
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

/* quota_build_ops - see quota_impl.h */
int
quota_build_ops(const struct quota *q, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, struct quota_op *ops,
    size_t *idx, size_t *nops, char *err, size_t errlen)
{
	const struct conf_quota *c = q->conf;
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

/* quota_verdict_of - see quota_impl.h */
void
quota_verdict_of(const struct quota *q, const struct quota_op *ops,
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

/*
 * The ops of one call, their results and the index of each op's limit:
 * in the struct itself up to OPS_ON_STACK limits, else allocated by
 * opspace_init; opspace_free releases what opspace_init allocated.  The
 * struct points into itself: never copy it.
 */
struct opspace {
	struct quota_op ops_stack[OPS_ON_STACK], *ops;
	struct quota_op_result res_stack[OPS_ON_STACK], *res;
	size_t idx_stack[OPS_ON_STACK], *idx;
};

static void
opspace_init(struct opspace *sp, size_t nlimits)
{
	if (nlimits > OPS_ON_STACK) {
		sp->ops = xcalloc(nlimits, sizeof(*sp->ops));
		sp->res = xcalloc(nlimits, sizeof(*sp->res));
		sp->idx = xcalloc(nlimits, sizeof(*sp->idx));
	} else {
		sp->ops = sp->ops_stack;
		sp->res = sp->res_stack;
		sp->idx = sp->idx_stack;
	}
}

static void
opspace_free(struct opspace *sp)
{
	if (sp->ops != sp->ops_stack) {
		free(sp->ops);
		free(sp->res);
		free(sp->idx);
	}
}

/* admit - quota_admit and quota_reserve (token != NULL) */
static int
admit(struct quota *q, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, uint64_t *token,
    struct quota_verdict *v)
{
	struct opspace sp;
	struct quota_op *ops;
	struct quota_op_result *res;
	size_t *idx, n = 0;
	uint64_t tok = 0, t0;
	int admitted = 0, ret = 0, rc;

	memset(v, 0, sizeof(*v));
	v->result = QUOTA_ADMIT;
	if (token != NULL)
		*token = 0;
	if (quota_exempt(q->conf, who))
		return 0;
	opspace_init(&sp, q->conf->nlimits);
	ops = sp.ops;
	res = sp.res;
	idx = sp.idx;
	if (quota_build_ops(q, who, amt, now, ops, idx, &n, v->error,
	    sizeof(v->error)) < 0) {
		v->result = QUOTA_ERROR;
		ret = quota_store_failed(q, "admission", v->error);
		goto out;
	}
	if (n == 0)
		goto out;
	if (token != NULL)
		tok = quota_new_token(now);
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
	quota_verdict_of(q, ops, idx, res, n, admitted, v);
	if (admitted && token != NULL)
		*token = tok;
out:
	opspace_free(&sp);
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

/*
 * commit - quota_commit: the store commits token, or admits again what
 * who reserved (amt) when it lapsed
 */
static int
commit(struct quota *q, uint64_t token, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, struct quota_verdict *v)
{
	struct opspace sp;
	struct quota_op *ops;
	struct quota_op_result *res;
	size_t *idx, n = 0;
	int admitted = 0, ret = 0, rc;
	uint64_t t0;

	opspace_init(&sp, q->conf->nlimits);
	ops = sp.ops;
	res = sp.res;
	idx = sp.idx;
	if (amt != NULL && who != NULL && !quota_exempt(q->conf, who) &&
	    quota_build_ops(q, who, amt,
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
	quota_verdict_of(q, ops, idx, res, n, admitted, v);
out:
	opspace_free(&sp);
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
	return commit(q, token, who, amt, now_ms, v);
}

int
quota_release(struct quota *q, uint64_t token, int64_t now_ms, char *err,
    size_t errlen)
{
	uint64_t t0;
	int rc;

	if (token == 0)
		return 0;
	t0 = metrics_now_us();
	rc = q->store->ops->release(q->store, token, now_ms, err, errlen);
	metric_since(&m_store, "release", NULL, t0);
	return rc < 0 ? quota_store_failed(q, "release", err) : 0;
}

/* quota_conf_of - see quota_impl.h */
const struct conf_quota *
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
