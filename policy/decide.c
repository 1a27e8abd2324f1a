/*
 * decide - see decide.h.
 *
 * A request becomes a plan, struct dreq: what it asks, copied from the
 * request (who, the counts, the instance), and where its reply goes.
 * A RCPT's plan runs at once: its reservation is submitted to the batch
 * and at_rcpt_done() replies.  The other plans (DATA, END-OF-MESSAGE,
 * the end of the connection) and a RCPT of a new instance need the
 * answers to the connection's calls before them (the tokens to settle):
 * while some are out (txn->busy) they wait in txn->wait, in order, and
 * run from the completion that makes busy 0 (txn_run).  A DATA or
 * END-OF-MESSAGE is a chain of completions: the message's reservation
 * (at_mreserve_done), then the commits of the RCPT reservations
 * (at_commit_done), then the reply and the message's own commit
 * (finish_done), each step submitted to the same batch, so that it goes
 * with the next exchange of every connection's calls.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/decide.h"
#include "policy/reply.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

enum stage {
	ST_RCPT,
	ST_DATA,
	ST_EOM,
	ST_OTHER,
};

#define LOGGED_BIT(s) (1u << (s))
#define LOGGED_REQUEST (1u << 8)

/* A reply held until the flush ends (decide.h); the strings copied. */
struct held {
	decide_reply_fn *fn;
	void *arg;
	const char *stage;		/* static */
	char id[DECIDE_INSTANCE_MAX];
	char reply[DECIDE_REPLY_MAX];
};

struct decide {
	const struct conf *conf;	/* borrowed */
	struct quota *quota;		/* borrowed */
	struct quota_batch *batch;
	struct decide_stats st;
	int may_fail;			/* quota_batch_may_fail: hold replies */
	int in_flush;			/* replies go to held */
	struct held *held;
	size_t nheld, capheld;
	struct decide_txn *marked;	/* txns marked since the last flush */
};

/* A request's plan (see the top); its strings in the same allocation. */
struct dreq {
	enum stage stage;		/* ST_OTHER: the end of the txn */
	struct decide_txn *t;
	char instance[DECIDE_INSTANCE_MAX];
	char id[DECIDE_INSTANCE_MAX];	/* preq_log_id() */
	char *sasl, *sender;
	uint8_t addr[16];
	int have_addr;
	uint64_t want;			/* recipient_count */
	uint64_t size;
	int64_t now;
	decide_reply_fn *reply;
	void *arg;
	struct dreq *next;
};

/* A reservation this close to store.reserve_ttl counts as lapsed. */
#define LAPSE_MARGIN_MS 1000

/* stage_name - what log lines call r's stage */
static const char *
stage_name(const struct dreq *r)
{
	switch (r->stage) {
	case ST_RCPT:
		return "RCPT";
	case ST_DATA:
		return "DATA";
	case ST_EOM:
		return "END-OF-MESSAGE";
	case ST_OTHER:
		break;
	}
	return "?";
}

/* reply_out - r's reply: now, or held until the flush ends (decide.h) */
static void
reply_out(struct dreq *r, const char *reply)
{
	struct decide *d = r->t->d;
	struct held *h;

	if (!d->in_flush) {
		r->reply(r->arg, reply);
		return;
	}
	if (d->nheld == d->capheld) {
		d->capheld = d->capheld ? d->capheld * 2 : 64;
		d->held = xreallocarray(d->held, d->capheld,
		    sizeof(*d->held));
	}
	h = &d->held[d->nheld++];
	h->fn = r->reply;
	h->arg = r->arg;
	h->stage = stage_name(r);
	str_copy(h->id, r->id, sizeof(h->id));
	str_copy(h->reply, reply, sizeof(h->reply));
}

/* respond - r's reply: action */
static void
respond(struct dreq *r, const char *action)
{
	char reply[DECIDE_REPLY_MAX];

	reply_set(reply, sizeof(reply), action);
	reply_out(r, reply);
}

/* respond_refused - r's reply: the action of a refusing limit */
static void
respond_refused(struct dreq *r, const struct quota_verdict *v)
{
	char reply[DECIDE_REPLY_MAX];

	reply_refused(v, reply, sizeof(reply));
	reply_out(r, reply);
}

/* error_log - log a store error of request id at stage: the action
 * logged is the first word of what store.on_error answers */
static void
error_log(const struct decide *d, const char *id, const char *stage,
    const char *what)
{
	const char *action = reply_on_error(d->conf->quota.store.on_error);

	log_warnx("%s: policy=error stage=%s error=\"%s\" action=%.*s", id,
	    stage, what, (int)strcspn(action, " "), action);
}

/*
 * store_failed_log - a store error at stage: count and log it; the
 * answer per store.on_error
 */
static const char *
store_failed_log(struct dreq *r, const char *stage, const char *what)
{
	struct decide *d = r->t->d;

	d->st.errors++;
	error_log(d, r->id, stage, what);
	return reply_on_error(d->conf->quota.store.on_error);
}

/* store_failed - a store error at stage: log it, answer per on_error */
static void
store_failed(struct dreq *r, const char *stage, const char *what)
{
	respond(r, store_failed_log(r, stage, what));
}

/* dreq_who - who sends, as the plan keeps it */
static void
dreq_who(const struct dreq *r, struct quota_who *who)
{
	memset(who, 0, sizeof(*who));
	who->sasl_username = r->sasl;
	who->sender = r->sender;
	who->client_addr = r->have_addr ? r->addr : NULL;
}

/* dreq_free - r and its strings */
static void
dreq_free(struct dreq *r)
{
	free(r);
}

/* dreq_new - the plan of request p at stage */
static struct dreq *
dreq_new(struct decide_txn *t, const struct proto *p, enum stage stage,
    int64_t now, decide_reply_fn *reply, void *arg)
{
	struct dreq *r;
	struct quota_who who;
	const char *inst = proto_get(p, PA_INSTANCE);
	uint8_t addr[16];
	size_t ls, lf;
	char *tail;

	preq_who(p, &who, addr);
	ls = who.sasl_username != NULL ? strlen(who.sasl_username) + 1 : 0;
	lf = who.sender != NULL ? strlen(who.sender) + 1 : 0;
	r = xcalloc(1, sizeof(*r) + ls + lf);
	tail = (char *)(r + 1);
	if (ls > 0) {
		r->sasl = memcpy(tail, who.sasl_username, ls);
		tail += ls;
	}
	if (lf > 0)
		r->sender = memcpy(tail, who.sender, lf);
	r->have_addr = who.client_addr != NULL;
	memcpy(r->addr, addr, sizeof(r->addr));
	r->stage = stage;
	r->t = t;
	str_copy(r->instance, inst != NULL ? inst : "", sizeof(r->instance));
	str_copy(r->id, preq_log_id(p), sizeof(r->id));
	r->want = preq_num(p, PA_RECIPIENT_COUNT);
	r->size = preq_num(p, PA_SIZE);
	r->now = now;
	r->reply = reply;
	r->arg = arg;
	return r;
}

/* release_from - release the tokens from the first'th on; forget them */
static void
release_from(struct decide_txn *t, size_t first, int64_t now)
{
	size_t i;

	for (i = first; i < t->ntokens; i++)
		quota_submit_release(t->d->batch, t->tokens[i], now);
	t->ntokens = first < t->ntokens ? first : t->ntokens;
}

/* txn_end - release the instance's uncommitted reservations; forget it */
static void
txn_end(struct decide_txn *t, int64_t now)
{
	release_from(t, 0, now);
	t->active = 0;
	t->instance[0] = '\0';
	memset(&t->prog, 0, sizeof(t->prog));
}

/* begin_instance - make t the instance of r, ending another one */
static void
begin_instance(struct decide_txn *t, const struct dreq *r)
{
	if (t->active && strncmp(t->instance, r->instance,
	    sizeof(t->instance)) == 0)
		return;
	if (t->active)
		txn_end(t, r->now);
	str_copy(t->instance, r->instance, sizeof(t->instance));
	t->active = 1;
}

int
decide_new_instance(const struct decide_txn *t, const struct proto *p)
{
	const char *inst = proto_get(p, PA_INSTANCE);

	if (inst == NULL)
		inst = "";
	return t->active && strncmp(t->instance, inst, sizeof(t->instance))
	    != 0;
}

static int
has_count(const struct conf *c, enum conf_qcount what)
{
	size_t i;

	for (i = 0; i < c->quota.nlimits; i++)
		if (c->quota.limits[i].count == what)
			return 1;
	return 0;
}

/* unusable - DUNNO, logged once per connection and stage */
static int
unusable(struct decide_txn *t, const struct proto *p, unsigned int bit,
    const char *why, decide_reply_fn *reply, void *arg)
{
	char text[32];

	if ((t->logged & bit) == 0) {
		t->logged |= bit;
		log_info("%s: policy=unused stage=%s: %s (logged once per "
		    "connection)", preq_log_id(p), proto_get(p, PA_PROTOCOL_STATE) ?
		    proto_get(p, PA_PROTOCOL_STATE) : "?", why);
	}
	reply_set(text, sizeof(text), "DUNNO");
	reply(arg, text);
	return 0;
}

static void txn_run(struct decide_txn *);

/* txn_done - one of t's requests is answered: run what waited for it */
static void
txn_done(struct decide_txn *t)
{
	ASSERT(t->busy > 0);
	t->busy--;
	txn_run(t);	/* may free t */
}

/* at_rcpt_done - the verdict of a RCPT reservation: the reply */
static void
at_rcpt_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	struct dreq *r = arg;
	struct decide_txn *t = r->t;
	struct decide_stats *st = &t->d->st;

	if (rc < 0 || v->result == QUOTA_ERROR) {
		store_failed(r, "RCPT", v->error);
		goto out;
	}
	reply_log_verdict(r->id, "RCPT", v);
	if (v->result == QUOTA_REFUSE) {
		st->refused++;
		respond_refused(r, v);
		goto out;
	}
	st->admitted++;
	if (token != 0) {
		if (t->ntokens == t->captokens) {
			t->captokens = t->captokens ? t->captokens * 2 : 8;
			t->tokens = xreallocarray(t->tokens, t->captokens,
			    sizeof(*t->tokens));
		}
		if (t->ntokens == 0)
			t->prog.first_ms = r->now;
		t->tokens[t->ntokens++] = token;
	} else
		t->prog.rcpt_charged++;
	respond(r, "DUNNO");
out:
	dreq_free(r);
	txn_done(t);
}

/* at_rcpt - reserve one recipient; at_rcpt_done() replies */
static void
at_rcpt(struct decide_txn *t, struct dreq *r)
{
	struct quota_amount amt = { 0, 1, 0 };
	struct quota_who who;

	begin_instance(t, r);
	dreq_who(r, &who);
	t->busy++;
	quota_submit_admit(t->d->batch, &who, &amt, r->now,
	    t->ntokens + t->busy <= DECIDE_TOKENS_MAX, at_rcpt_done, r);
}

/*
 * A DATA or END-OF-MESSAGE request: the message's own reservation (one
 * message, its bytes, the recipients not reserved at RCPT), then the
 * commits of the RCPT reservations, whose verdicts complete it.
 */
struct finish_ctx {
	struct dreq *r;
	const char *stage;		/* static */
	struct quota_amount amt;	/* reserved under mtok */
	uint64_t mtok;
	uint64_t ncommit;		/* RCPT reservations to commit */
	uint64_t *ctokens;		/* their tokens, owned */
	struct quota_verdict hold;	/* a hold verdict, to reply */
	struct quota_verdict refused;	/* a commit refused (lapsed, full) */
	unsigned int pending;		/* commits unanswered, + 1 */
	uint64_t committed;
	int error;
	char err[256];
};

/* finish_end - the request is answered: free x, run what waits */
static void
finish_end(struct finish_ctx *x)
{
	struct decide_txn *t = x->r->t;

	t->finishing = 0;
	dreq_free(x->r);
	free(x->ctokens);
	free(x);
	txn_done(t);
}

/* at_mcommit_done - the message's own reservation made final (logged) */
static void
at_mcommit_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	char *id = arg;

	(void)token;
	if (rc < 0 || v->result != QUOTA_ADMIT)
		log_warnx("%s: policy=error committing the message: %s", id,
		    rc < 0 || v->result == QUOTA_ERROR ? v->error :
		    "lapsed, and refused by now");
	free(id);
}

/* finish_refused - the message is refused (v): reply; nothing charged */
static void
finish_refused(struct finish_ctx *x, const struct quota_verdict *v)
{
	struct decide_txn *t = x->r->t;

	reply_log_verdict(x->r->id, x->stage, v);
	t->d->st.refused++;
	t->prog.finished = 1;
	respond_refused(x->r, v);
}

/*
 * finish_done - every commit answered: the reply; the message's own
 * reservation is committed, or released when the message is refused
 */
static void
finish_done(struct finish_ctx *x)
{
	struct dreq *r = x->r;
	struct decide_txn *t = r->t;
	struct decide *d = t->d;
	struct quota_who who;
	int accept = d->conf->quota.store.on_error == CONF_ON_ERROR_ACCEPT;
	uint64_t i;

	t->prog.rcpt_charged += x->committed;
	if (x->error) {
		store_failed(r, x->stage, x->err);
		/* what a failed commit left reserved (a commit that took
		 * effect left nothing: its release does nothing) */
		for (i = 0; i < x->ncommit; i++)
			quota_submit_release(d->batch, x->ctokens[i], r->now);
	}
	if ((x->error && !accept) || (x->refused.result == QUOTA_REFUSE &&
	    x->refused.action != CONF_QACTION_HOLD)) {
		quota_submit_release(d->batch, x->mtok, r->now);
		if (!x->error)
			finish_refused(x, &x->refused);
		finish_end(x);
		return;
	}
	dreq_who(r, &who);
	quota_submit_commit(d->batch, x->mtok, &who, &x->amt, r->now,
	    at_mcommit_done, xstrdup(r->id));
	t->prog.rcpt_charged += x->amt.recipients;
	t->prog.msg_charged = 1;
	t->prog.bytes_charged += x->amt.bytes;
	if (x->refused.result == QUOTA_REFUSE)	/* hold, for a commit */
		x->hold = x->refused;
	if (x->error) {
		/* fail open: accepted, answered by store_failed */
	} else if (x->hold.result == QUOTA_REFUSE) {	/* accepted, held */
		reply_log_verdict(r->id, x->stage, &x->hold);
		d->st.refused++;
		respond_refused(r, &x->hold);
	} else {
		d->st.admitted++;
		respond(r, "DUNNO");
	}
	finish_end(x);
}

/* at_commit_done - the verdict of one RCPT reservation's commit */
static void
at_commit_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	struct finish_ctx *x = arg;

	(void)token;
	if (rc < 0 || v->result == QUOTA_ERROR) {
		x->error = 1;
		snprintf(x->err, sizeof(x->err), "%s", v->error);
	} else if (v->result == QUOTA_REFUSE) {
		if (x->refused.result != QUOTA_REFUSE)
			x->refused = *v;
	} else
		x->committed++;
	if (--x->pending == 0)
		finish_done(x);
}

/*
 * finish_commits - commit the first ncommit RCPT reservations, release
 * the rest; finish_done() once every commit is answered
 */
static void
finish_commits(struct finish_ctx *x)
{
	struct quota_amount one = { 0, 1, 0 };
	struct decide_txn *t = x->r->t;
	struct quota_who who;
	uint64_t i;

	dreq_who(x->r, &who);
	if (x->ncommit > t->ntokens)
		x->ncommit = t->ntokens;
	x->ctokens = xcalloc(x->ncommit + 1, sizeof(*x->ctokens));
	x->pending = 1;
	for (i = 0; i < x->ncommit; i++) {
		x->ctokens[i] = t->tokens[i];
		x->pending++;
		quota_submit_commit(t->d->batch, t->tokens[i], &who, &one,
		    x->r->now, at_commit_done, x);
	}
	release_from(t, (size_t)i, x->r->now);
	t->ntokens = 0;
	if (--x->pending == 0)
		finish_done(x);
}

/*
 * at_mreserve_done - the verdict of the message's own reservation:
 * refused (not hold), the request is answered and every reservation
 * released; a store error answers per store.on_error (accept: go on
 * without it); else on to the commits
 */
static void
at_mreserve_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	struct finish_ctx *x = arg;
	struct decide_txn *t = x->r->t;

	if (rc < 0 || v->result == QUOTA_ERROR) {
		if (t->d->conf->quota.store.on_error != CONF_ON_ERROR_ACCEPT) {
			store_failed(x->r, x->stage, v->error);
			finish_end(x);
			return;
		}
		/* fail open (finish_done answers): what was reserved stays
		 * charged */
		(void)store_failed_log(x->r, x->stage, v->error);
		memset(&x->amt, 0, sizeof(x->amt));
	} else if (v->result == QUOTA_REFUSE &&
	    v->action != CONF_QACTION_HOLD) {
		release_from(t, 0, x->r->now);
		finish_refused(x, v);
		finish_end(x);
		return;
	} else if (v->result == QUOTA_REFUSE)
		x->hold = *v;
	else
		reply_log_verdict(x->r->id, x->stage, v);	/* warnings */
	x->mtok = token;
	finish_commits(x);
}

/*
 * at_finish - DATA or END-OF-MESSAGE: reserve the message, commit the
 * RCPT reservations (ncommit of them, the rest released); the reply is
 * written by finish_done().  A reservation that lapsed is admitted
 * again by its commit; refused by then, the message is refused with
 * that limit's action.
 */
static void
at_finish(struct decide_txn *t, struct dreq *r)
{
	struct finish_ctx *x;
	struct quota_who who;
	uint64_t want = r->want, extra, ncommit;

	begin_instance(t, r);
	if (t->prog.finished) {
		respond(r, "DUNNO");
		dreq_free(r);
		return;
	}
	x = xcalloc(1, sizeof(*x));
	x->r = r;
	x->stage = r->stage == ST_DATA ? "DATA" : "END-OF-MESSAGE";
	if (want == 0)		/* before Postfix 2.3: what RCPT saw */
		want = t->prog.rcpt_charged + t->ntokens;
	ncommit = want > t->prog.rcpt_charged ?
	    want - t->prog.rcpt_charged : 0;
	if (ncommit > t->ntokens)
		ncommit = t->ntokens;
	extra = want > t->prog.rcpt_charged + ncommit ?
	    want - t->prog.rcpt_charged - ncommit : 0;
	if (ncommit > 0 && r->now - t->prog.first_ms + LAPSE_MARGIN_MS >=
	    (int64_t)t->d->conf->quota.store.reserve_ttl * 1000) {
		/*
		 * Some reservations lapsed (or are about to): give them all
		 * back and reserve the message whole below, so that it is
		 * charged all or nothing.  (A commit would admit each
		 * lapsed one again, alone: see finish_done.)
		 */
		extra += ncommit;
		ncommit = 0;
		release_from(t, 0, r->now);
	}
	x->ncommit = ncommit;
	x->amt.messages = t->prog.msg_charged ? 0 : 1;
	x->amt.recipients = extra;
	x->amt.bytes = r->size > t->prog.bytes_charged ? r->size -
	    t->prog.bytes_charged : 0;
	t->busy++;
	t->finishing = 1;
	if (x->amt.messages == 0 && x->amt.recipients == 0 &&
	    x->amt.bytes == 0) {
		finish_commits(x);
		return;
	}
	dreq_who(r, &who);
	quota_submit_admit(t->d->batch, &who, &x->amt, r->now, 1,
	    at_mreserve_done, x);
}

/* tokens_copy - *dst (room for *cap, grown to fit) gets src[0..n) */
static void
tokens_copy(uint64_t **dst, size_t *cap, const uint64_t *src, size_t n)
{
	if (n > *cap) {
		*cap = n;
		*dst = xreallocarray(*dst, *cap, sizeof(**dst));
	}
	if (n > 0)
		memcpy(*dst, src, n * sizeof(*src));
}

/* txn_unmark - t leaves the decide's marked list; its mark is kept */
static void
txn_unmark(struct decide_txn *t)
{
	if (!t->marked)
		return;
	*t->mprev = t->mnext;
	if (t->mnext != NULL)
		t->mnext->mprev = t->mprev;
	t->mnext = NULL;
	t->mprev = NULL;
	t->marked = 0;
}

/*
 * txn_mark - before t's first request since the last flush, when that
 * flush may fail late: what t is now (decide.h)
 */
static void
txn_mark(struct decide_txn *t, int64_t now)
{
	struct decide *d = t->d;
	struct decide_txn_mark *m = &t->mark;

	if (!d->may_fail || t->marked)
		return;
	t->marked = 1;
	t->mprev = &d->marked;
	t->mnext = d->marked;
	if (d->marked != NULL)
		d->marked->mprev = &t->mnext;
	d->marked = t;
	memcpy(m->instance, t->instance, sizeof(m->instance));
	m->active = t->active;
	m->now = now;
	tokens_copy(&m->tokens, &m->cap, t->tokens, t->ntokens);
	m->ntokens = t->ntokens;
	m->prog = t->prog;
}

/* txn_undo - the flush failed: t as it was when marked (decide.h) */
static void
txn_undo(struct decide_txn *t)
{
	const struct decide_txn_mark *m = &t->mark;

	size_t i;

	if (!m->active || strncmp(t->instance, m->instance,
	    sizeof(t->instance)) != 0) {
		/* begun since: nothing of it happened; the reservations of
		 * the instance it ended still stand: released now */
		for (i = 0; m->active && i < m->ntokens; i++)
			quota_submit_release(t->d->batch, m->tokens[i],
			    m->now);
		t->ntokens = 0;
		memset(&t->prog, 0, sizeof(t->prog));
		return;
	}
	tokens_copy(&t->tokens, &t->captokens, m->tokens, m->ntokens);
	t->ntokens = m->ntokens;
	t->prog = m->prog;
}

/* txn_free - t's memory */
static void
txn_free(struct decide_txn *t)
{
	txn_unmark(t);
	free(t->mark.tokens);
	free(t->tokens);
	free(t);
}

/* txn_blocks - r must wait for the answers of t's calls out now */
static int
txn_blocks(const struct decide_txn *t, const struct dreq *r)
{
	if (t->busy == 0)
		return 0;
	return r->stage != ST_RCPT || t->finishing || !t->active ||
	    strncmp(t->instance, r->instance, sizeof(t->instance)) != 0;
}

/*
 * txn_run - run the plans that wait, in order, until one must wait for
 * answers; the end of the txn frees it
 */
static void
txn_run(struct decide_txn *t)
{
	struct dreq *r;

	while ((r = t->wait) != NULL && !txn_blocks(t, r)) {
		t->wait = r->next;
		if (t->wait == NULL)
			t->wait_tail = NULL;
		r->next = NULL;
		if (r->stage == ST_RCPT)
			at_rcpt(t, r);
		else if (r->stage != ST_OTHER)
			at_finish(t, r);
		else {
			txn_end(t, r->now);
			dreq_free(r);
			if (t->wait == NULL) {
				txn_free(t);
				return;
			}
		}
	}
}

/* txn_push - r joins t's plans, and runs when its turn comes */
static void
txn_push(struct decide_txn *t, struct dreq *r)
{
	if (t->wait_tail != NULL)
		t->wait_tail->next = r;
	else
		t->wait = r;
	t->wait_tail = r;
	txn_run(t);
}

struct decide_txn *
decide_txn_new(struct decide *d)
{
	struct decide_txn *t = xcalloc(1, sizeof(*t));

	t->d = d;
	return t;
}

void
decide_txn_close(struct decide_txn *t, int64_t now)
{
	struct dreq *r;

	if (t == NULL)
		return;
	t->closed = 1;
	txn_mark(t, now);
	r = xcalloc(1, sizeof(*r));
	r->stage = ST_OTHER;
	r->t = t;
	r->now = now;
	txn_push(t, r);		/* may free t */
}

int
decide_request(struct decide_txn *t, const struct proto *p, int64_t now,
    decide_reply_fn *reply, void *arg, char *err, size_t errlen)
{
	const struct conf *c = t->d->conf;
	const char *req = proto_get(p, PA_REQUEST);
	const char *state = proto_get(p, PA_PROTOCOL_STATE);
	enum stage s;

	ASSERT(!t->closed);
	if (req == NULL) {
		snprintf(err, errlen, "no \"request\" attribute");
		return -1;
	}
	t->d->st.requests++;
	if (strcmp(req, "smtpd_access_policy") != 0)
		return unusable(t, p, LOGGED_REQUEST, "not an "
		    "smtpd_access_policy request", reply, arg);
	if (state == NULL)
		s = ST_OTHER;
	else if (strcasecmp(state, "RCPT") == 0)
		s = ST_RCPT;
	else if (strcasecmp(state, "DATA") == 0)
		s = ST_DATA;
	else if (strcasecmp(state, "END-OF-MESSAGE") == 0)
		s = ST_EOM;
	else
		s = ST_OTHER;
	if (s == ST_OTHER)
		return unusable(t, p, LOGGED_BIT(s), "only RCPT, DATA and "
		    "END-OF-MESSAGE are used", reply, arg);
	if (c->quota.nlimits == 0)
		return unusable(t, p, LOGGED_BIT(s), "no limits are "
		    "configured", reply, arg);
	if (s == ST_RCPT && !has_count(c, CONF_QCOUNT_RECIPIENTS))
		return unusable(t, p, LOGGED_BIT(s), "no limit counts "
		    "recipients", reply, arg);
	txn_mark(t, now);
	txn_push(t, dreq_new(t, p, s, now, reply, arg));
	return 0;
}

struct decide *
decide_new(const struct conf *c, struct quota *q)
{
	struct decide *d = xcalloc(1, sizeof(*d));

	d->conf = c;
	d->quota = q;
	d->batch = quota_batch_new(q);
	d->may_fail = quota_batch_may_fail(d->batch);
	return d;
}

struct decide *
decide_free(struct decide *d)
{
	if (d == NULL)
		return NULL;
	decide_wait(d);
	quota_batch_free(d->batch);
	free(d->held);
	free(d);
	return NULL;
}

const struct decide_stats *
decide_stats(const struct decide *d)
{
	return &d->st;
}

/*
 * flush_failed - the flush failed late (decide.h): the txns as they were
 * before it, the replies it held per store.on_error, its verdicts
 * counted as errors instead (st0: the counters before it)
 */
static void
flush_failed(struct decide *d, const struct decide_stats *st0)
{
	char reply[DECIDE_REPLY_MAX];
	struct decide_txn *t;
	size_t i;

	for (t = d->marked; t != NULL; t = t->mnext)
		txn_undo(t);
	d->st.admitted = st0->admitted;
	d->st.refused = st0->refused;
	d->st.errors = st0->errors + d->nheld;
	reply_set(reply, sizeof(reply),
	    reply_on_error(d->conf->quota.store.on_error));
	for (i = 0; i < d->nheld; i++) {
		error_log(d, d->held[i].id, d->held[i].stage,
		    quota_batch_error(d->batch));
		str_copy(d->held[i].reply, reply, sizeof(d->held[i].reply));
	}
}

/*
 * flushed - run fn (a flush, poll or wait of the batch), holding the
 * replies when it may fail late; then give them, per its outcome
 */
static enum quota_flush
flushed(struct decide *d, enum quota_flush (*fn)(struct quota_batch *))
{
	struct decide_stats st0 = d->st;
	enum quota_flush st;
	size_t i, n;

	if (!d->may_fail)
		return fn(d->batch);
	d->in_flush = 1;
	st = fn(d->batch);
	d->in_flush = 0;
	if (st == QUOTA_FAILED)
		flush_failed(d, &st0);
	while (d->marked != NULL)
		txn_unmark(d->marked);
	n = d->nheld;
	d->nheld = 0;
	for (i = 0; i < n; i++)
		d->held[i].fn(d->held[i].arg, d->held[i].reply);
	return st;
}

/* wait_flush - quota_wait as a flush (a store that may fail late) */
static enum quota_flush
wait_flush(struct quota_batch *b)
{
	return quota_wait(b) < 0 ? QUOTA_FAILED : QUOTA_DONE;
}

enum quota_flush
decide_flush(struct decide *d)
{
	return flushed(d, quota_flush);
}

enum quota_flush
decide_poll(struct decide *d)
{
	return flushed(d, quota_poll);
}

int
decide_fd(const struct decide *d)
{
	return quota_batch_fd(d->batch);
}

void
decide_wait(struct decide *d)
{
	(void)flushed(d, wait_flush);
}
