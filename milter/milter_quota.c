/*
 * milter_quota - the milter's sending quotas (milter.quotas, see
 * outpost-milter(8)): glue between the handlers (milter.c) and the
 * quota store of the connection's generation (quota/quota.h).
 *
 * On a connection that counts, each RCPT reserves one recipient
 * (milter_quota_rcpt) and the end of message reserves one message and
 * its bytes (milter_quota_eom); an accepted message commits every
 * reservation (milter_quota_accepted: one that lapsed is admitted
 * again, and refused, refuses the message), anything else (a refusal,
 * an error, ABORT, the connection closing) releases them
 * (milter_quota_release, from msg_reset).  Mail that Postfix's
 * cleanup(8) submits for sendmail(1) (client port 0) never gets a
 * RCPT refusal: its recipients are counted at the end of message, and
 * a message over quota is held.
 *
 * Every store call is submitted to a batch of the call's own and waited
 * for (quota.h, quota_wait): a milter thread may block.  The releases
 * of a message, and the releases and admission that replace lapsed
 * reservations, go together in one exchange (one LMDB transaction, one
 * Redis pipeline); the commits go one after the other, each submitted
 * by the completion of the one before, since the first refusal stops
 * them (LMDB: all in one transaction).  With LMDB the completions run
 * before the transaction commits: when quota_wait() then says it
 * failed, nothing of the batch took effect, and what the completions
 * were told is replaced by the store error (answer_failed, msg_commit).
 *
 * The reservations live in the message (struct msg, milter_impl.h).
 * A refusal or a store error sets its reply through the engine and
 * returns the SMFIS_* code; store.on_error = accept lets mail through
 * when the store fails.  Nothing here takes a lock: the store is
 * thread-safe, a connection is served by one thread at a time.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter/milter_impl.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

/* Reservations one message keeps; beyond, recipients are charged at once
 * (an admission) and cannot be refunded. */
#define MILTER_TOKENS_MAX 10000
/* A reservation this close to store.reserve_ttl counts as lapsed. */
#define LAPSE_MARGIN_MS 1000

/*
 * milter_quota_release - release every reservation of the message, and
 * forget them.
 */
void
milter_quota_release(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct quota_batch *b;
	int64_t now = clock_wall_ms();
	size_t i;

	if (m->ntokens > 0 && c->gen != NULL && c->gen->quota != NULL) {
		/* errors are logged by the quota; a reservation the store
		 * could not release lapses on its own */
		b = quota_batch_new(c->gen->quota);
		for (i = 0; i < m->ntokens; i++)
			quota_submit_release(b, m->tokens[i].token, now);
		quota_batch_free(b);	/* waits */
	}
	if (m->ntokens > 0)
		log_debug("%s: quota=released reservations=%zu", m->qid[0] ?
		    m->qid : "NOQUEUE", m->ntokens);
	m->ntokens = 0;
}

/* The answer to one call: what its completion was given. */
struct answer {
	int rc;
	struct quota_verdict v;
	uint64_t token;
};

/* answer_done - a completion that keeps the answer */
static void
answer_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	struct answer *a = arg;

	a->rc = rc;
	a->v = *v;
	a->token = token;
}

/*
 * answer_failed - the batch of a's call failed when it ended (quota.h):
 * whatever a's completion was told, the call did not take effect
 */
static void
answer_failed(struct answer *a, struct quota_batch *b)
{
	memset(a, 0, sizeof(*a));
	a->rc = -1;
	a->v.result = QUOTA_ERROR;
	str_copy(a->v.error, quota_batch_error(b), sizeof(a->v.error));
}

/* quota_who_of - who sends, for the quota */
static void
quota_who_of(const struct milter_conn *c, struct quota_who *who)
{
	memset(who, 0, sizeof(*who));
	who->sasl_username = c->auth;
	who->sender = c->msg.sender != NULL ? c->msg.sender : "";
	who->client_addr = c->have_addr ? c->addr : NULL;
}

/*
 * quota_ask - one admission (reserve 0) or reservation (reserve 1),
 * submitted and waited for; the answer in *a
 */
static void
quota_ask(struct milter_conn *c, const struct quota_amount *amt,
    int reserve, struct answer *a)
{
	struct quota_batch *b = quota_batch_new(c->gen->quota);
	struct quota_who who;

	memset(a, 0, sizeof(*a));
	quota_who_of(c, &who);
	quota_submit_admit(b, &who, amt, clock_wall_ms(), reserve,
	    answer_done, a);
	if (quota_wait(b) < 0)
		answer_failed(a, b);
	quota_batch_free(b);
}

/* log_verdict - one line per refusal or warning */
static void
log_verdict(const struct milter_conn *c, const char *stage,
    const struct quota_verdict *v, const char *action, const char *rcpt)
{
	if (v->limit == NULL)
		return;
	log_info("%s: quota=%s stage=%s limit=%s key=%s used=%llu "
	    "limit_value=%llu retry=%llu client=%s from=<%s>%s%s%s",
	    milter_qid(c), action, stage, v->limit->name, v->key,
	    (unsigned long long)v->used, (unsigned long long)v->limit_value,
	    (unsigned long long)v->retry_after, c->client,
	    c->msg.sender ? c->msg.sender : "", rcpt ? " rcpt=" : "",
	    rcpt ? rcpt : "", c->non_smtp ? " non_smtp=yes" : "");
}

/* msg_add_token - keep a reservation (of amt) until the message ends */
static void
msg_add_token(struct msg *m, uint64_t token, const struct quota_amount *amt,
    int64_t now)
{
	if (token == 0)
		return;
	if (m->ntokens == m->captokens) {
		m->captokens = m->captokens ? m->captokens * 2 : 16;
		m->tokens = xreallocarray(m->tokens, m->captokens,
		    sizeof(*m->tokens));
	}
	m->tokens[m->ntokens].token = token;
	m->tokens[m->ntokens].at = now;
	m->tokens[m->ntokens++].amt = *amt;
}

/* msg_hold - ask for the hold queue at the end of the message */
static void
msg_hold(struct msg *m, const char *reason)
{
	if (m->hold)
		return;
	m->hold = 1;
	str_copy(m->hold_reason, reason, sizeof(m->hold_reason));
	milter_clean_text(m->hold_reason);
}

/*
 * quota_store_failed - the store failed (logged): 0 to go on (on_error =
 * accept, or non-SMTP mail, which is held rather than tempfailed), or
 * SMFIS_TEMPFAIL with 451 4.3.0 set.
 */
static sfsistat
quota_store_failed(struct milter_conn *c, const char *stage,
    const struct quota_verdict *v)
{
	int accept = c->gen->conf->quota.store.on_error == CONF_ON_ERROR_ACCEPT;

	log_warnx("%s: quota=error stage=%s error=\"%s\" action=%s",
	    milter_qid(c), stage, v->error, accept ? "accept" :
	    c->non_smtp ? "hold" : "tempfail");
	if (accept)
		return SMFIS_CONTINUE;
	if (c->non_smtp) {
		msg_hold(&c->msg, "quota store unavailable");
		return SMFIS_CONTINUE;
	}
	c->io->setreply(c->ctx, "451", "4.3.0", "Temporary quota failure, "
	    "try again later");
	return SMFIS_TEMPFAIL;
}

/*
 * quota_refused - what a refusing limit does: SMFIS_TEMPFAIL (defer,
 * 450 4.7.1) or SMFIS_REJECT (reject, 550 5.7.1) with the reply set, or
 * SMFIS_CONTINUE (hold: marked for the hold queue; warn).  Non-SMTP mail
 * is never refused: it is held (warn: logged).
 */
static sfsistat
quota_refused(struct milter_conn *c, const char *stage,
    const struct quota_verdict *v, const char *rcpt)
{
	char text[400];
	enum conf_qaction a = v->action;

	quota_reply(v, text, sizeof(text));
	milter_clean_text(text);
	if (c->non_smtp && a != CONF_QACTION_WARN)
		a = CONF_QACTION_HOLD;
	log_verdict(c, stage, v, conf_qaction_name(a), rcpt);
	switch (a) {
	case CONF_QACTION_REJECT:
		c->io->setreply(c->ctx, "550", "5.7.1", text);
		return SMFIS_REJECT;
	case CONF_QACTION_HOLD:
		msg_hold(&c->msg, text);
		return SMFIS_CONTINUE;
	case CONF_QACTION_WARN:
		return SMFIS_CONTINUE;
	case CONF_QACTION_DEFER:
	default:
		c->io->setreply(c->ctx, "450", "4.7.1", text);
		return SMFIS_TEMPFAIL;
	}
}

/*
 * msg_quota_take - act on one admission at stage (rc and v from
 * quota_reserve or quota_admit): keep its token with the message and go
 * on, or the store error or refusal with its reply set.
 */
static sfsistat
msg_quota_take(struct milter_conn *c, const char *stage, int rc,
    const struct quota_verdict *v, uint64_t token,
    const struct quota_amount *amt, const char *rcpt)
{
	if (rc < 0 || v->result == QUOTA_ERROR)
		return quota_store_failed(c, stage, v);
	if (v->result == QUOTA_REFUSE)
		return quota_refused(c, stage, v, rcpt);
	if (v->nwarned > 0)
		log_verdict(c, stage, v, "warn", rcpt);
	msg_add_token(&c->msg, token, amt, clock_wall_ms());
	return SMFIS_CONTINUE;
}

/*
 * msg_verdict - act on the verdict of the message's own admission at
 * the end (SMFIS_CONTINUE: charged, or held)
 */
static sfsistat
msg_verdict(struct milter_conn *c, int rc, const struct quota_verdict *v)
{
	if (rc < 0 || v->result == QUOTA_ERROR)
		return quota_store_failed(c, "EOM", v);
	if (v->result == QUOTA_REFUSE)
		return quota_refused(c, "EOM", v, NULL);
	if (v->nwarned > 0)
		log_verdict(c, "EOM", v, "warn", NULL);
	return SMFIS_CONTINUE;
}

/*
 * msg_readmit - some reservations lapsed (or are about to): release
 * them all and admit the whole message again, in one store batch (one
 * LMDB transaction, one Redis run), so that it is charged all or
 * nothing, against the limits as they are now
 */
static sfsistat
msg_readmit(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct quota_batch *b = quota_batch_new(c->gen->quota);
	struct quota_amount all = { 0, 0, 0 };
	struct quota_who who;
	struct answer a;
	int64_t now = clock_wall_ms();
	size_t i;

	memset(&a, 0, sizeof(a));
	quota_who_of(c, &who);
	for (i = 0; i < m->ntokens; i++) {
		all.messages += m->tokens[i].amt.messages;
		all.recipients += m->tokens[i].amt.recipients;
		all.bytes += m->tokens[i].amt.bytes;
		quota_submit_release(b, m->tokens[i].token, now);
	}
	m->ntokens = 0;
	quota_submit_admit(b, &who, &all, now, 0, answer_done, &a);
	if (quota_wait(b) < 0)	/* the releases too: the tokens lapse */
		answer_failed(&a, b);
	quota_batch_free(b);
	log_debug("%s: quota=readmitted lapsed reservations", milter_qid(c));
	return msg_verdict(c, a.rc, &a.v);
}

/* The commits of a message, one after the other (see the top). */
struct commits {
	struct milter_conn *c;
	struct quota_batch *b;
	struct quota_who who;
	size_t next;			/* the token being committed */
	sfsistat rc;			/* what the answers so far say */
	enum quota_result last;		/* the last answer's */
};

static quota_done_fn commit_done;

/* commit_next - submit the commit of token x->next */
static void
commit_next(struct commits *x)
{
	struct msg *m = &x->c->msg;

	quota_submit_commit(x->b, m->tokens[x->next].token, &x->who,
	    &m->tokens[x->next].amt, clock_wall_ms(), commit_done, x);
}

/*
 * commit_done - act on one commit's verdict (a refusal or a store error
 * sets the reply, or holds); the next one while the message goes on
 */
static void
commit_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	struct commits *x = arg;

	(void)token;
	x->last = rc < 0 ? QUOTA_ERROR : v->result;
	if (x->last == QUOTA_ERROR)
		x->rc = quota_store_failed(x->c, "EOM", v);
	else if (x->last == QUOTA_REFUSE)
		x->rc = quota_refused(x->c, "EOM", v, NULL);
	if (++x->next < x->c->msg.ntokens && x->rc == SMFIS_CONTINUE)
		commit_next(x);
}

/*
 * msg_commit - make the message's reservations final, in order, at the
 * end of an accepted message.  When some lapsed, msg_readmit() instead.
 * A commit admits a reservation that lapsed meanwhile again (quota.h):
 * if its limit is full by now, the message is refused with the limit's
 * action like any refusal (the reply set; hold: held), the store error
 * per store.on_error.  The reservations committed are forgotten;
 * msg_reset() releases the rest.
 */
static sfsistat
msg_commit(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct commits x;
	char reason[sizeof(m->hold_reason)];
	int hold;
	int64_t oldest = clock_wall_ms() + LAPSE_MARGIN_MS -
	    (int64_t)c->gen->conf->quota.store.reserve_ttl * 1000;
	size_t i;

	if (m->ntokens == 0)
		return SMFIS_CONTINUE;
	for (i = 0; i < m->ntokens; i++)
		if (m->tokens[i].at <= oldest)
			return msg_readmit(c);
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.b = quota_batch_new(c->gen->quota);
	x.rc = SMFIS_CONTINUE;
	quota_who_of(c, &x.who);
	hold = m->hold;
	str_copy(reason, m->hold_reason, sizeof(reason));
	commit_next(&x);
	if (quota_wait(x.b) < 0) {
		/* nothing committed, whatever the chain was told */
		struct answer a;

		answer_failed(&a, x.b);
		m->hold = hold;
		str_copy(m->hold_reason, reason, sizeof(m->hold_reason));
		x.next = 0;
		x.last = QUOTA_ERROR;
		x.rc = quota_store_failed(c, "EOM", &a.v);
	}
	quota_batch_free(x.b);
	i = x.next;		/* answered */
	if (x.rc != SMFIS_CONTINUE && x.last != QUOTA_ERROR)
		i--;		/* refused: not charged, released */
	log_debug("%s: quota=committed reservations=%zu", milter_qid(c), i);
	memmove(m->tokens, m->tokens + i, (m->ntokens - i) *
	    sizeof(*m->tokens));
	m->ntokens -= i;
	return x.rc;
}

/*
 * milter_quota_rcpt - reserve one recipient of SMTP mail now
 * (milter.quotas = all); past MILTER_TOKENS_MAX reservations it is
 * charged at once
 */
sfsistat
milter_quota_rcpt(struct milter_conn *c, const char *rcpt)
{
	struct quota_amount amt = { 0, 1, 0 };
	struct answer a;

	quota_ask(c, &amt, c->msg.ntokens < MILTER_TOKENS_MAX, &a);
	return msg_quota_take(c, "RCPT", a.rc, &a.v, a.token, &amt, rcpt);
}

/*
 * milter_quota_eom - the message and its bytes (and the recipients not
 * reserved at RCPT): SMFIS_CONTINUE to go on (the reservation joins the
 * message's), else the refusal with its reply set.
 */
sfsistat
milter_quota_eom(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct quota_amount amt;
	struct answer a;

	amt.messages = 1;
	amt.recipients = m->rcpts_eom;
	amt.bytes = m->size;
	quota_ask(c, &amt, 1, &a);
	return msg_quota_take(c, "EOM", a.rc, &a.v, a.token, &amt, NULL);
}

/*
 * milter_quota_accepted - charge what was reserved (msg_commit: SMFIS_CONTINUE,
 * or the refusal of a limit full by now); hold if a limit said so
 */
sfsistat
milter_quota_accepted(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	sfsistat rc;

	if ((rc = msg_commit(c)) != SMFIS_CONTINUE)
		return rc;
	if (m->hold) {
		if (!(c->pflags_actions & SMFIF_QUARANTINE) ||
		    c->io->quarantine == NULL ||
		    c->io->quarantine(c->ctx, m->hold_reason) < 0)
			log_warnx("%s: quota=error cannot quarantine (the MTA "
			    "does not allow it): accepted", milter_qid(c));
		else
			log_info("%s: quota=held reason=\"%s\"", milter_qid(c),
			    m->hold_reason);
	}
	return SMFIS_CONTINUE;
}
