/*
 * quota_batch - see quota.h: submit, then flush.
 *
 * A batch keeps the calls submitted and not flushed yet in a queue:
 * b->calls (the store's arguments, struct quota_store_call) and b->pend
 * (what to do with each answer), in submission order.  A flush hands the
 * queue to the store as one exchange:
 *
 *  - a store with pipelines (Redis) gets it through its pipeline op.  A
 *    queue of one call, with nothing in flight, is sent at once from the
 *    calling thread (a hand-over costs more than it saves); a longer one
 *    becomes a run (struct qrun), once quota_batch_fd() has been asked
 *    for (else it is sent from the calling thread too), at the end of
 *    b->ahead .. b->atail,
 *    which a thread of the batch's own (run_thread, started with the
 *    first run) sends, marks sent and announces with a byte on b->apipe;
 *    the flush returns QUOTA_PENDING.  One run is in flight at a time:
 *    what is flushed meanwhile waits in the queue, and goes out as the
 *    next run once quota_poll() has delivered the one in flight, so the
 *    calls of every turn that passed meanwhile go out together.
 *  - any other store runs the queue in the calling thread (run_local),
 *    inside one batch of the store when it has them (LMDB: one write
 *    transaction), which stays open across every exchange of the flush:
 *    the queue that the completions fill again is run in the same
 *    batch, and the batch ends when the queue is empty.  So the
 *    completions run before the batch ends; when it then fails, none of
 *    the flush's calls took effect, and the flush says so (QUOTA_FAILED,
 *    b->err).  When a call fails inside the batch before any completion
 *    of it ran, the batch is abandoned and that exchange is run again
 *    call by call, each in a transaction of its own (LMDB then sweeps a
 *    full map and tries again), so one failing call does not fail the
 *    others and nothing that was answered is undone.
 *
 * Answers are delivered (deliver) in the thread that flushes, polls or
 * waits, in submission order; completions that submit more calls fill
 * the queue again, which the same flush, poll or wait sends in turn.
 * The run list and the sent marks are under amu.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quota/quota.h"
#include "quota/quota_impl.h"
#include "quota/store.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xmalloc.h"

/* A queued call's own part (its store arguments are in b->calls). */
struct qpend {
	struct quota_op *ops;		/* admit, commit: the ops, owned, in
					 * one block with idx and res */
	size_t *idx;			/* their limit indices */
	struct quota_op_result *res;
	int reserve;
	quota_done_fn *done;		/* NULL: a release */
	void *arg;
};

/* A queue handed to the run thread (see the top); the arrays owned. */
struct qrun {
	struct quota_store_call *calls;
	struct qpend *pend;
	size_t n;
	int sent;			/* answers in calls[] (under amu) */
	struct qrun *next;
};

struct quota_batch {
	struct quota *q;
	struct quota_store_call *calls;	/* the queue */
	struct qpend *pend;
	size_t nqueue, capqueue;
	/* runs (stores with pipelines; see the top) */
	pthread_mutex_t amu;
	pthread_cond_t acond;		/* a run sent, a run added, stop */
	struct qrun *ahead, *atail;	/* not delivered yet, in order */
	int apipe[2];			/* -1: no runs */
	int athread_on, astop;
	pthread_t athread;
	char err[256];			/* the last QUOTA_FAILED's error */
	/* a delivered queue's arrays, for the next queue (run_local) */
	struct quota_store_call *spare_calls;
	struct qpend *spare_pend;
	size_t spare_cap;
	/* per-call blocks (pend_alloc) delivered, for the next calls */
	void *blk_free;
	size_t nblk_free;
};

/* Blocks kept for reuse at most: a burst's beyond it go back to malloc. */
#define BLK_FREE_MAX 256

/* has_pipeline - the batch's store has pipelines */
static int
has_pipeline(const struct quota_batch *b)
{
	return quota_store_of(b->q)->ops->pipeline != NULL;
}

struct quota_batch *
quota_batch_new(struct quota *q)
{
	struct quota_batch *b = xcalloc(1, sizeof(*b));

	b->q = q;
	pthread_mutex_init(&b->amu, NULL);
	pthread_cond_init(&b->acond, NULL);
	b->apipe[0] = b->apipe[1] = -1;
	return b;
}

struct quota_batch *
quota_batch_free(struct quota_batch *b)
{
	if (b == NULL)
		return NULL;
	quota_wait(b);
	if (b->athread_on) {
		pthread_mutex_lock(&b->amu);
		b->astop = 1;
		pthread_cond_broadcast(&b->acond);
		pthread_mutex_unlock(&b->amu);
		pthread_join(b->athread, NULL);
	}
	if (b->apipe[0] >= 0) {
		close(b->apipe[0]);
		close(b->apipe[1]);
	}
	pthread_cond_destroy(&b->acond);
	pthread_mutex_destroy(&b->amu);
	free(b->calls);
	free(b->pend);
	free(b->spare_calls);
	free(b->spare_pend);
	while (b->blk_free != NULL) {
		void *next = *(void **)b->blk_free;

		free(b->blk_free);
		b->blk_free = next;
	}
	free(b);
	return NULL;
}

/*
 * quota_batch_fd - the pipe is made at the first call: a batch that is
 * only waited for (the milter's) sends its calls from its own thread
 */
int
quota_batch_fd(struct quota_batch *b)
{
	if (b->apipe[0] < 0 && has_pipeline(b) && pipe2(b->apipe,
	    O_CLOEXEC | O_NONBLOCK) < 0) {
		log_warn("quota: pipe for pipelined runs");
		b->apipe[0] = b->apipe[1] = -1;
	}
	return b->apipe[0];
}

/* queue_add - a new call at the end of the queue, cleared */
static size_t
queue_add(struct quota_batch *b)
{
	if (b->nqueue == 0 && b->capqueue == 0 && b->spare_calls != NULL) {
		b->calls = b->spare_calls;
		b->pend = b->spare_pend;
		b->capqueue = b->spare_cap;
		b->spare_calls = NULL;
		b->spare_pend = NULL;
	}
	if (b->nqueue == b->capqueue) {
		b->capqueue = b->capqueue ? b->capqueue * 2 : 64;
		b->calls = xreallocarray(b->calls, b->capqueue,
		    sizeof(*b->calls));
		b->pend = xreallocarray(b->pend, b->capqueue,
		    sizeof(*b->pend));
	}
	memset(&b->calls[b->nqueue], 0, sizeof(*b->calls));
	memset(&b->pend[b->nqueue], 0, sizeof(*b->pend));
	return b->nqueue++;
}

/* ALIGN16 - n rounded up for the next array of a block */
#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

/*
 * pend_alloc - p's ops, idx and res, for nl limits (the same for every
 * call of a batch: its quota's), in one block at p->ops: one allocation
 * per call, none while delivered blocks wait on b->blk_free.  The
 * results are cleared; the ops are not (quota_build_ops clears each op
 * it fills, and only those are read).  pend_release() gives it back.
 */
static void
pend_alloc(struct quota_batch *b, struct qpend *p, size_t nl)
{
	size_t cap = nl == 0 ? 1 : nl;
	size_t oidx = ALIGN16(cap * sizeof(*p->ops));
	size_t ores = oidx + ALIGN16(cap * sizeof(*p->idx));
	char *blk;

	if (b->blk_free != NULL) {
		blk = b->blk_free;
		b->blk_free = *(void **)b->blk_free;
		b->nblk_free--;
	} else
		blk = xmalloc(ores + cap * sizeof(*p->res));
	p->ops = (struct quota_op *)(void *)blk;
	p->idx = (size_t *)(void *)(blk + oidx);
	p->res = (struct quota_op_result *)(void *)(blk + ores);
	memset(p->res, 0, cap * sizeof(*p->res));
}

/* pend_release - p's block, from pend_alloc, kept for the next call
 * (BLK_FREE_MAX at most) or freed; in the batch's owner thread only */
static void
pend_release(struct quota_batch *b, struct qpend *p)
{
	void *blk = p->ops;

	p->ops = NULL;
	if (blk == NULL)
		return;
	if (b->nblk_free >= BLK_FREE_MAX) {
		free(blk);
		return;
	}
	*(void **)blk = b->blk_free;
	b->blk_free = blk;
	b->nblk_free++;
}

/*
 * queue_ops - a new admit or commit call for who and amt (either NULL:
 * no ops), its ops built; the index, or -1 when there is nothing to
 * queue: then done has run (an error, or nothing to ask the store when
 * empty_ok is 0)
 */
static ssize_t
queue_ops(struct quota_batch *b, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, int empty_ok,
    const char *what, quota_done_fn *done, void *arg)
{
	struct quota *q = b->q;
	struct quota_verdict v;
	size_t nl = quota_conf_of(q)->nlimits, i, n = 0;
	struct qpend *p;

	memset(&v, 0, sizeof(v));
	v.result = QUOTA_ADMIT;
	i = queue_add(b);
	p = &b->pend[i];
	pend_alloc(b, p, nl);
	if ((who != NULL && amt != NULL && !quota_exempt(quota_conf_of(q),
	    who) && quota_build_ops(q, who, amt, now, p->ops, p->idx, &n,
	    v.error, sizeof(v.error)) < 0) || (n == 0 && !empty_ok)) {
		pend_release(b, p);
		b->nqueue--;
		if (v.error[0] != '\0') {
			v.result = QUOTA_ERROR;
			done(arg, quota_store_failed(q, what, v.error), &v, 0);
		} else
			done(arg, 0, &v, 0);
		return -1;
	}
	p->done = done;
	p->arg = arg;
	b->calls[i].ops = p->ops;
	b->calls[i].n = n;
	b->calls[i].now_ms = now;
	b->calls[i].res = p->res;
	return (ssize_t)i;
}

void
quota_submit_admit(struct quota_batch *b, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, int reserve,
    quota_done_fn *done, void *arg)
{
	struct quota_store_call *c;
	ssize_t i;

	if ((i = queue_ops(b, who, amt, now, 0, "admission", done,
	    arg)) < 0)
		return;
	c = &b->calls[i];
	b->pend[i].reserve = reserve;
	c->kind = QUOTA_CALL_ADMIT;
	c->token = reserve ? quota_new_token(now) : 0;
	c->expires_ms = now +
	    (int64_t)quota_conf_of(b->q)->store.reserve_ttl * 1000;
}

void
quota_submit_commit(struct quota_batch *b, uint64_t token,
    const struct quota_who *who, const struct quota_amount *amt,
    int64_t now, quota_done_fn *done, void *arg)
{
	struct quota_verdict v;
	ssize_t i;

	if (token == 0) {
		memset(&v, 0, sizeof(v));
		v.result = QUOTA_ADMIT;
		done(arg, 0, &v, 0);
		return;
	}
	if ((i = queue_ops(b, who, amt, now, 1, "commit", done, arg)) < 0)
		return;
	b->calls[i].kind = QUOTA_CALL_COMMIT;
	b->calls[i].token = token;
}

void
quota_submit_release(struct quota_batch *b, uint64_t token, int64_t now)
{
	size_t i;

	if (token == 0)
		return;
	i = queue_add(b);
	b->calls[i].kind = QUOTA_CALL_RELEASE;
	b->calls[i].token = token;
	b->calls[i].now_ms = now;
}

/* deliver - the answer to one call; releases what its pend owns */
static void
deliver(struct quota_batch *b, const struct quota_store_call *c,
    struct qpend *p)
{
	struct quota *q = b->q;
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
		quota_verdict_of(q, p->ops, p->idx, p->res, c->n, c->admitted,
		    &v);
		p->done(p->arg, 0, &v, c->admitted && p->reserve ? c->token :
		    0);
	}
	pend_release(b, p);
}

/* run_one - one call on a store without pipelines */
static void
run_one(struct quota_store *s, struct quota_store_call *c)
{
	c->err[0] = '\0';
	switch (c->kind) {
	case QUOTA_CALL_ADMIT:
		c->rc = s->ops->admit(s, c->ops, c->n, c->now_ms, c->token,
		    c->expires_ms, c->res, &c->admitted, c->err,
		    sizeof(c->err));
		break;
	case QUOTA_CALL_COMMIT:
		c->rc = s->ops->commit(s, c->token, c->ops, c->n, c->now_ms,
		    c->res, &c->admitted, c->err, sizeof(c->err));
		break;
	case QUOTA_CALL_RELEASE:
		c->rc = s->ops->release(s, c->token, c->now_ms, c->err,
		    sizeof(c->err));
		break;
	}
}

/* call_op - the metric's name for one call's operation */
static const char *
call_op(const struct quota_store_call *c)
{
	switch (c->kind) {
	case QUOTA_CALL_ADMIT:
		return "admit";
	case QUOTA_CALL_COMMIT:
		return "commit";
	case QUOTA_CALL_RELEASE:
		break;
	}
	return "release";
}

/* run_pipeline - one exchange with a store that has pipelines */
static void
run_pipeline(struct quota_store *s, struct quota_store_call *calls,
    size_t n)
{
	uint64_t t0 = metrics_now_us();

	s->ops->pipeline(s, calls, n);
	quota_metric_store("pipeline", t0);
}

/* run_each - calls[0..n) one by one (in the store's batch, if open) */
static void
run_each(struct quota_store *s, struct quota_store_call *calls, size_t n)
{
	size_t i;
	uint64_t t0 = metrics_now_us();

	for (i = 0; i < n; i++)
		run_one(s, &calls[i]);
	quota_metric_store(n == 1 ? call_op(&calls[0]) : "pipeline", t0);
}

/* any_failed - some call of calls[0..n) failed */
static int
any_failed(const struct quota_store_call *calls, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (calls[i].rc < 0)
			return 1;
	return 0;
}

/* deliver_all - deliver calls[0..n) and free the arrays */
static void
deliver_all(struct quota_batch *b, struct quota_store_call *calls,
    struct qpend *pend, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		deliver(b, &calls[i], &pend[i]);
	free(calls);
	free(pend);
}

/*
 * deliver_here - deliver a queue run in the calling thread; its arrays
 * (cap long) are kept for the next queue when none are
 */
static void
deliver_here(struct quota_batch *b, struct quota_store_call *calls,
    struct qpend *pend, size_t n, size_t cap)
{
	size_t i;

	for (i = 0; i < n; i++)
		deliver(b, &calls[i], &pend[i]);
	if (b->spare_calls == NULL) {
		b->spare_calls = calls;
		b->spare_pend = pend;
		b->spare_cap = cap;
	} else {
		free(calls);
		free(pend);
	}
}

/* take_queue - the queue, which the batch forgets; *n its length,
 * *cap its arrays' */
static struct quota_store_call *
take_queue(struct quota_batch *b, struct qpend **pend, size_t *n,
    size_t *cap)
{
	struct quota_store_call *calls = b->calls;

	*pend = b->pend;
	*n = b->nqueue;
	*cap = b->capqueue;
	b->calls = NULL;
	b->pend = NULL;
	b->nqueue = b->capqueue = 0;
	return calls;
}

/*
 * run_exchange - one exchange of run_local (see the top) while the
 * store's batch is *open; 1 when its calls may have been answered
 * before the batch's end (they ran in it)
 */
static int
run_exchange(struct quota_store *s, int *open,
    int answered, struct quota_store_call *calls, size_t n)
{
	char err[256];

	run_each(s, calls, n);
	if (!*open)
		return 0;
	if (answered || !any_failed(calls, n))
		return 1;
	/* abandoned: nothing of it took effect, nothing answered; each
	 * call again, alone */
	(void)s->ops->batch_end(s, err, sizeof(err));
	*open = 0;
	run_each(s, calls, n);
	return 0;
}

/*
 * run_local - a flush on a store without pipelines: every exchange in
 * one batch of the store, when it has them (see the top)
 */
static enum quota_flush
run_local(struct quota_batch *b)
{
	struct quota_store *s = quota_store_of(b->q);
	struct quota_store_call *calls;
	struct qpend *pend;
	char err[256];
	int open = 0, answered = 0, tried = 0;
	size_t n, cap;

	while (b->nqueue > 0) {
		if (!open && !tried && s->ops->batch_begin != NULL) {
			tried = 1;	/* one batch per flush at most */
			open = s->ops->batch_begin(s, err, sizeof(err)) == 0;
		}
		calls = take_queue(b, &pend, &n, &cap);
		if (run_exchange(s, &open, answered, calls, n))
			answered = 1;
		deliver_here(b, calls, pend, n, cap);
	}
	if (open && s->ops->batch_end(s, err, sizeof(err)) < 0) {
		snprintf(b->err, sizeof(b->err), "%s", err);
		(void)quota_store_failed(b->q, "batch", err);
		return QUOTA_FAILED;
	}
	return QUOTA_DONE;
}

/*
 * run_here - a store with pipelines: send the queue from the calling
 * thread and deliver it (what the completions queue stays queued)
 */
static void
run_here(struct quota_batch *b)
{
	struct quota_store_call *calls;
	struct qpend *pend;
	size_t n, cap;

	calls = take_queue(b, &pend, &n, &cap);
	run_pipeline(quota_store_of(b->q), calls, n);
	deliver_here(b, calls, pend, n, cap);
}

/*
 * run_thread - send each run in list order, one after the other; mark
 * it sent and say so through the pipe
 */
static void *
run_thread(void *arg)
{
	struct quota_batch *b = arg;
	struct quota_store *s = quota_store_of(b->q);
	struct qrun *r;
	ssize_t w;

	pthread_mutex_lock(&b->amu);
	for (;;) {
		for (r = b->ahead; r != NULL && r->sent; r = r->next)
			;
		if (r == NULL) {
			if (b->astop)
				break;
			pthread_cond_wait(&b->acond, &b->amu);
			continue;
		}
		pthread_mutex_unlock(&b->amu);
		run_pipeline(s, r->calls, r->n);
		pthread_mutex_lock(&b->amu);
		r->sent = 1;
		pthread_cond_broadcast(&b->acond);
		/* a full pipe already holds a wake-up for the reader */
		do
			w = write(b->apipe[1], "r", 1);
		while (w < 0 && errno == EINTR);
	}
	pthread_mutex_unlock(&b->amu);
	return NULL;
}

/* start_run - the queue becomes a run; 0, or -1 (no thread) */
static int
start_run(struct quota_batch *b)
{
	struct qrun *r;
	int rc;

	if (b->apipe[0] < 0)
		return -1;
	if (!b->athread_on) {
		if ((rc = pthread_create(&b->athread, NULL, run_thread,
		    b)) != 0) {
			log_warnx("quota: cannot start the run thread: %s",
			    strerror(rc));
			return -1;
		}
		b->athread_on = 1;
	}
	r = xcalloc(1, sizeof(*r));
	r->calls = b->calls;
	r->pend = b->pend;
	r->n = b->nqueue;
	b->calls = NULL;
	b->pend = NULL;
	b->nqueue = b->capqueue = 0;
	pthread_mutex_lock(&b->amu);
	if (b->atail != NULL)
		b->atail->next = r;
	else
		b->ahead = r;
	b->atail = r;
	pthread_cond_broadcast(&b->acond);
	pthread_mutex_unlock(&b->amu);
	return 0;
}

/* in_flight - a run is out and not delivered yet */
static int
in_flight(struct quota_batch *b)
{
	int r;

	pthread_mutex_lock(&b->amu);
	r = b->ahead != NULL;
	pthread_mutex_unlock(&b->amu);
	return r;
}

/* collect - deliver the runs whose answers are back, in order */
static void
collect(struct quota_batch *b)
{
	struct qrun *r;

	for (;;) {
		pthread_mutex_lock(&b->amu);
		r = b->ahead;
		if (r == NULL || !r->sent) {
			pthread_mutex_unlock(&b->amu);
			break;
		}
		b->ahead = r->next;
		if (b->ahead == NULL)
			b->atail = NULL;
		pthread_mutex_unlock(&b->amu);
		deliver_all(b, r->calls, r->pend, r->n);
		free(r);
	}
}

enum quota_flush
quota_flush(struct quota_batch *b)
{
	if (!has_pipeline(b))
		return run_local(b);
	if (in_flight(b))
		return QUOTA_PENDING;	/* the queue is the next run */
	while (b->nqueue > 0) {
		if (b->nqueue == 1 || start_run(b) < 0)
			run_here(b);
		else
			return QUOTA_PENDING;
	}
	return QUOTA_DONE;
}

enum quota_flush
quota_poll(struct quota_batch *b)
{
	char buf[256];

	if (b->apipe[0] >= 0)
		while (read(b->apipe[0], buf, sizeof(buf)) > 0)
			;
	collect(b);
	return quota_flush(b);
}

int
quota_wait(struct quota_batch *b)
{
	if (!has_pipeline(b))
		return run_local(b) == QUOTA_FAILED ? -1 : 0;
	for (;;) {
		pthread_mutex_lock(&b->amu);
		while (b->ahead != NULL && !b->ahead->sent)
			pthread_cond_wait(&b->acond, &b->amu);
		pthread_mutex_unlock(&b->amu);
		collect(b);
		if (in_flight(b))
			continue;
		if (b->nqueue == 0)
			break;
		run_here(b);
	}
	return 0;
}

int
quota_batch_may_fail(const struct quota_batch *b)
{
	const struct quota_store_ops *o = quota_store_of(b->q)->ops;

	return o->pipeline == NULL && o->batch_begin != NULL;
}

const char *
quota_batch_error(const struct quota_batch *b)
{
	return b->err;
}
