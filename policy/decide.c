/*
 * decide - see decide.h.
 *
 * Admissions go through quota_defer(): inside a pipelined batch (Redis)
 * they are queued, and at_rcpt_done() or at_finish_done() writes the
 * reply when the batch is flushed; txn->inflight counts the
 * connection's queued ones.  Whatever needs their outcome first flushes
 * the queue (quota_flush): DATA and END-OF-MESSAGE (which settle the
 * reservations), a new instance and the end of the connection (which
 * release them).  The commits and releases that a message's verdict
 * makes join the queue too (quota.h), behind the calls made before.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/decide.h"
#include "util/cidr.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/xmalloc.h"

enum stage {
	ST_RCPT,
	ST_DATA,
	ST_EOM,
	ST_OTHER,
};

#define LOGGED_BIT(s) (1u << (s))
#define LOGGED_REQUEST (1u << 8)

#define TEMPFAIL_TEXT "DEFER_IF_PERMIT Service temporarily unavailable"

/* A reservation this close to store.reserve_ttl counts as lapsed. */
#define LAPSE_MARGIN_MS 1000

/* who_of - who sends, from the request; addr holds the client address */
static void
who_of(const struct proto *p, struct quota_who *who, uint8_t addr[16])
{
	const char *v;

	memset(who, 0, sizeof(*who));
	v = proto_get(p, PA_SASL_USERNAME);
	who->sasl_username = v != NULL && *v != '\0' ? v : NULL;
	who->sender = proto_get(p, PA_SENDER);
	v = proto_get(p, PA_CLIENT_ADDRESS);
	if (v != NULL && cidr_addr_parse(v, addr) == 0)
		who->client_addr = addr;
}

/* num_attr - a numeric attribute, 0 when absent or not a number */
static uint64_t
num_attr(const struct proto *p, enum proto_attr a)
{
	const char *v = proto_get(p, a);
	uint64_t n;

	if (v == NULL || *v == '\0' ||
	    parse_u64(v, 0, UINT64_MAX / 2, &n, NULL, 0) < 0)
		return 0;
	return n;
}

/* log_id - what log lines start with: queue id, else instance */
static const char *
log_id(const struct proto *p)
{
	const char *v = proto_get(p, PA_QUEUE_ID);

	if (v == NULL || *v == '\0')
		v = proto_get(p, PA_INSTANCE);
	return v != NULL && *v != '\0' ? v : "NOQUEUE";
}

/* clean_text - copy text for a reply line: printable ASCII only */
static void
clean_text(const char *in, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; in[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? in[i] : '?';
	if (outlen > 0)
		out[i] = '\0';
}

static void
reply_set(char *reply, size_t len, const char *action)
{
	int n = snprintf(reply, len, "action=%s\n\n", action);

	/* a cut reply still ends with its empty line */
	if (n < 0 || (size_t)n >= len) {
		ASSERT(len >= 3);
		reply[len - 3] = '\n';
		reply[len - 2] = '\n';
		reply[len - 1] = '\0';
	}
}

/* reply_refused - the action of a refusing limit */
static int
reply_refused(const struct quota_verdict *v, char *reply, size_t len)
{
	char text[400], clean[400], action[500];

	quota_reply(v, text, sizeof(text));
	clean_text(text, clean, sizeof(clean));
	switch (v->action) {
	case CONF_QACTION_REJECT:
		snprintf(action, sizeof(action), "550 5.7.1 %s", clean);
		break;
	case CONF_QACTION_HOLD:
		snprintf(action, sizeof(action), "HOLD %s", clean);
		break;
	case CONF_QACTION_WARN:
		snprintf(action, sizeof(action), "DUNNO");
		break;
	case CONF_QACTION_DEFER:
	default:
		snprintf(action, sizeof(action), "450 4.7.1 %s", clean);
		break;
	}
	reply_set(reply, len, action);
	return 0;
}

/* store_failed_id - a store error: log it, answer per store.on_error */
static int
store_failed_id(const struct decide_env *env, const char *id,
    const char *state, const char *what, struct decide_stats *st,
    char *reply, size_t len)
{
	int accept = env->conf->store.on_error == CONF_ON_ERROR_ACCEPT;

	if (st != NULL)
		st->errors++;
	log_warnx("%s: policy=error stage=%s error=\"%s\" action=%s", id,
	    state != NULL ? state : "(null)", what, accept ? "DUNNO" :
	    "DEFER_IF_PERMIT");
	reply_set(reply, len, accept ? "DUNNO" : TEMPFAIL_TEXT);
	return 0;
}

/* log_verdict_id - log a refusal or a warning of the request id */
static void
log_verdict_id(const char *id, const char *stage,
    const struct quota_verdict *v)
{
	if (v->result == QUOTA_REFUSE && v->limit != NULL)
		log_info("%s: policy=%s stage=%s limit=%s key=%s used=%llu "
		    "limit_value=%llu retry=%llu", id,
		    conf_qaction_name(v->action), stage, v->limit->name, v->key,
		    (unsigned long long)v->used,
		    (unsigned long long)v->limit_value,
		    (unsigned long long)v->retry_after);
	else if (v->nwarned > 0 && v->limit != NULL)
		log_info("%s: policy=warn stage=%s limit=%s key=%s used=%llu "
		    "limit_value=%llu", id, stage, v->limit->name,
		    v->key, (unsigned long long)v->used,
		    (unsigned long long)v->limit_value);
}

/* release_from - release the tokens from the first'th on; forget them */
static int
release_from(const struct decide_env *env, struct decide_txn *t,
    size_t first, int64_t now, char *err, size_t errlen)
{
	size_t i;
	int rc = 0;

	for (i = first; i < t->ntokens; i++)
		if (quota_release(env->quota, t->tokens[i], now, err,
		    errlen) < 0)
			rc = -1;
	t->ntokens = first < t->ntokens ? first : t->ntokens;
	return rc;
}

void
decide_txn_end(const struct decide_env *env, struct decide_txn *t,
    int64_t now)
{
	char err[256];

	/* the reservations still queued are needed to release them */
	if (t->inflight > 0 && env != NULL && env->quota != NULL)
		(void)quota_flush(env->quota);
	if (t->ntokens > 0 && env != NULL && env->quota != NULL &&
	    release_from(env, t, 0, now, err, sizeof(err)) < 0)
		log_warnx("%s: policy=error releasing reservations: %s",
		    t->instance, err);
	t->ntokens = 0;
	t->active = 0;
	t->instance[0] = '\0';
	t->rcpt_charged = 0;
	t->msg_charged = 0;
	t->bytes_charged = 0;
	t->finished = 0;
}

void
decide_txn_free(struct decide_txn *t)
{
	ASSERT(t->inflight == 0);
	free(t->tokens);
	t->tokens = NULL;
	t->ntokens = t->captokens = 0;
	free(t->mark_tokens);
	t->mark_tokens = NULL;
	t->mark_ntokens = t->mark_cap = 0;
	t->marked = 0;
}

void
decide_txn_mark(struct decide_txn *t)
{
	if (t->marked)
		return;
	t->marked = 1;
	memcpy(t->mark_instance, t->instance, sizeof(t->mark_instance));
	t->mark_ntokens = t->ntokens;
	if (t->ntokens > t->mark_cap) {
		t->mark_cap = t->captokens;
		t->mark_tokens = xreallocarray(t->mark_tokens, t->mark_cap,
		    sizeof(*t->mark_tokens));
	}
	if (t->ntokens > 0)
		memcpy(t->mark_tokens, t->tokens, t->ntokens *
		    sizeof(*t->tokens));
	t->mark_first_ms = t->first_ms;
	t->mark_rcpt = t->rcpt_charged;
	t->mark_bytes = t->bytes_charged;
	t->mark_msg = t->msg_charged;
	t->mark_finished = t->finished;
}

void
decide_txn_keep(struct decide_txn *t)
{
	t->marked = 0;
}

void
decide_txn_undo(struct decide_txn *t)
{
	if (!t->marked)
		return;
	if (strncmp(t->instance, t->mark_instance, sizeof(t->instance)) !=
	    0) {
		/* the batch began this instance: nothing of it happened */
		t->ntokens = 0;
		t->rcpt_charged = t->bytes_charged = 0;
		t->msg_charged = t->finished = 0;
		decide_txn_keep(t);
		return;
	}
	if (t->mark_ntokens > t->captokens) {
		t->captokens = t->mark_ntokens;
		t->tokens = xreallocarray(t->tokens, t->captokens,
		    sizeof(*t->tokens));
	}
	if (t->mark_ntokens > 0)
		memcpy(t->tokens, t->mark_tokens, t->mark_ntokens *
		    sizeof(*t->tokens));
	t->ntokens = t->mark_ntokens;
	t->first_ms = t->mark_first_ms;
	t->rcpt_charged = t->mark_rcpt;
	t->bytes_charged = t->mark_bytes;
	t->msg_charged = t->mark_msg;
	t->finished = t->mark_finished;
	decide_txn_keep(t);
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

/* begin_instance - make txn the instance of p, ending another one */
static void
begin_instance(const struct decide_env *env, struct decide_txn *t,
    const struct proto *p, int64_t now)
{
	const char *inst = proto_get(p, PA_INSTANCE);

	if (inst == NULL)
		inst = "";
	if (t->active && strncmp(t->instance, inst, sizeof(t->instance)) == 0)
		return;
	if (t->active)
		decide_txn_end(env, t, now);
	snprintf(t->instance, sizeof(t->instance), "%s", inst);
	t->active = 1;
}

static int
has_count(const struct conf *c, enum conf_qcount what)
{
	size_t i;

	for (i = 0; i < c->nlimits; i++)
		if (c->limits[i].count == what)
			return 1;
	return 0;
}

/* unusable - DUNNO, logged once per connection and stage */
static int
unusable(struct decide_txn *t, const struct proto *p, unsigned int bit,
    const char *why, char *reply, size_t len)
{
	if ((t->logged & bit) == 0) {
		t->logged |= bit;
		log_info("%s: policy=unused stage=%s: %s (logged once per "
		    "connection)", log_id(p), proto_get(p, PA_PROTOCOL_STATE) ?
		    proto_get(p, PA_PROTOCOL_STATE) : "?", why);
	}
	reply_set(reply, len, "DUNNO");
	return 0;
}

/*
 * Where a queued admission's verdict goes: the request's transaction,
 * reply and counters (a RCPT admission needs nothing more).
 */
struct answer {
	const struct decide_env *env;
	struct decide_txn *t;
	struct decide_stats *st;
	char *reply;
	size_t len;
	int64_t now;			/* of the request */
	char id[DECIDE_INSTANCE_MAX];	/* log_id() of the request */
};

/* answer_init - a for request p of t, whose reply goes to reply */
static void
answer_init(struct answer *a, const struct decide_env *env,
    struct decide_txn *t, const struct proto *p, struct decide_stats *st,
    char *reply, size_t len)
{
	a->env = env;
	a->t = t;
	a->st = st;
	a->reply = reply;
	a->len = len;
	snprintf(a->id, sizeof(a->id), "%s", log_id(p));
}

/* at_rcpt_done - the verdict of a RCPT admission: the reply */
static void
at_rcpt_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	struct answer *x = arg;
	struct decide_txn *t = x->t;

	ASSERT(t->inflight > 0);
	t->inflight--;
	if (rc < 0 || v->result == QUOTA_ERROR) {
		store_failed_id(x->env, x->id, "RCPT", v->error, x->st,
		    x->reply, x->len);
		goto out;
	}
	log_verdict_id(x->id, "RCPT", v);
	if (v->result == QUOTA_REFUSE) {
		if (x->st != NULL)
			x->st->refused++;
		reply_refused(v, x->reply, x->len);
		goto out;
	}
	if (x->st != NULL)
		x->st->admitted++;
	if (token != 0) {
		if (t->ntokens == t->captokens) {
			t->captokens = t->captokens ? t->captokens * 2 : 8;
			t->tokens = xreallocarray(t->tokens, t->captokens,
			    sizeof(*t->tokens));
		}
		if (t->ntokens == 0)
			t->first_ms = x->now;
		t->tokens[t->ntokens++] = token;
	} else
		t->rcpt_charged++;
	reply_set(x->reply, x->len, "DUNNO");
out:
	free(x);
}

/*
 * at_rcpt - reserve one recipient; the reply is written by
 * at_rcpt_done(), now or when the batch is flushed
 */
static int
at_rcpt(const struct decide_env *env, struct decide_txn *t,
    const struct proto *p, int64_t now, struct decide_stats *st,
    char *reply, size_t len)
{
	struct quota_amount amt = { 0, 1, 0 };
	struct quota_who who;
	struct answer *x;
	uint8_t addr[16];

	who_of(p, &who, addr);
	x = xcalloc(1, sizeof(*x));
	answer_init(x, env, t, p, st, reply, len);
	x->now = now;
	t->inflight++;
	return quota_defer(env->quota, &who, &amt, now,
	    t->ntokens + t->inflight <= DECIDE_TOKENS_MAX, at_rcpt_done, x);
}

/*
 * A DATA or END-OF-MESSAGE request: the message's own reservation (one
 * message, its bytes, the recipients not reserved at RCPT), then the
 * commits of the RCPT reservations, whose verdicts complete it.  The
 * sender is copied: the message's reservation is committed last, when
 * the request may be gone.
 */
struct finish_ctx {
	struct answer a;
	int64_t now;
	const char *stage;		/* static */
	struct quota_amount amt;	/* reserved under mtok */
	uint64_t mtok;
	struct quota_verdict hold;	/* a hold verdict, to reply */
	struct quota_verdict refused;	/* a commit refused (lapsed, full) */
	unsigned int pending;		/* commits unanswered, + 1 */
	uint64_t committed;
	int error;
	char err[256];
	char *sasl, *sender;		/* who, owned */
	uint8_t addr[16];
	int have_addr;
};

/* finish_who - who sends, as the context keeps it */
static void
finish_who(const struct finish_ctx *x, struct quota_who *who)
{
	memset(who, 0, sizeof(*who));
	who->sasl_username = x->sasl;
	who->sender = x->sender;
	who->client_addr = x->have_addr ? x->addr : NULL;
}

/* finish_free - x and what it owns */
static void
finish_free(struct finish_ctx *x)
{
	free(x->sasl);
	free(x->sender);
	free(x);
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

/*
 * finish_done - every commit answered: the reply; the message's own
 * reservation is committed, or released when the message is refused
 */
static void
finish_done(struct finish_ctx *x)
{
	struct answer *a = &x->a;
	struct decide_txn *t = a->t;
	struct quota_who who;
	char err[256];
	int accept = a->env->conf->store.on_error == CONF_ON_ERROR_ACCEPT;

	t->rcpt_charged += x->committed;
	if (x->error)
		store_failed_id(a->env, a->id, x->stage, x->err, a->st,
		    a->reply, a->len);
	if ((x->error && !accept) || (x->refused.result == QUOTA_REFUSE &&
	    x->refused.action != CONF_QACTION_HOLD)) {
		if (quota_release(a->env->quota, x->mtok, x->now, err,
		    sizeof(err)) < 0)
			log_warnx("%s: policy=error releasing reservations: "
			    "%s", a->id, err);
		if (!x->error) {
			log_verdict_id(a->id, x->stage, &x->refused);
			if (a->st != NULL)
				a->st->refused++;
			t->finished = 1;
			reply_refused(&x->refused, a->reply, a->len);
		}
		finish_free(x);
		return;
	}
	finish_who(x, &who);
	(void)quota_defer_commit(a->env->quota, x->mtok, &who, &x->amt,
	    x->now, at_mcommit_done, xstrdup(a->id));
	t->rcpt_charged += x->amt.recipients;
	t->msg_charged = 1;
	t->bytes_charged += x->amt.bytes;
	if (x->refused.result == QUOTA_REFUSE)	/* hold, for a commit */
		x->hold = x->refused;
	if (x->error) {
		/* fail open: accepted, answered by store_failed_id */
	} else if (x->hold.result == QUOTA_REFUSE) {	/* accepted, held */
		log_verdict_id(a->id, x->stage, &x->hold);
		if (a->st != NULL)
			a->st->refused++;
		reply_refused(&x->hold, a->reply, a->len);
	} else {
		if (a->st != NULL)
			a->st->admitted++;
		reply_set(a->reply, a->len, "DUNNO");
	}
	finish_free(x);
}

/* at_commit_done - the verdict of one RCPT reservation's commit */
static void
at_commit_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	struct finish_ctx *x = arg;

	(void)token;
	ASSERT(x->a.t->inflight > 0);
	x->a.t->inflight--;
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
 * finish_reserve - reserve the message's own part (x->amt) now; 0 to go
 * on to the commits, -1 when the request is answered (refused, or a
 * store error that defers)
 */
static int
finish_reserve(struct finish_ctx *x, const struct quota_who *who)
{
	struct answer *a = &x->a;
	struct decide_txn *t = a->t;
	struct quota_verdict v;
	char err[256];

	if (x->amt.messages == 0 && x->amt.recipients == 0 &&
	    x->amt.bytes == 0)
		return 0;
	if (quota_reserve(a->env->quota, who, &x->amt, x->now, &x->mtok,
	    &v) < 0 || v.result == QUOTA_ERROR) {
		store_failed_id(a->env, a->id, x->stage, v.error, a->st,
		    a->reply, a->len);
		if (a->env->conf->store.on_error != CONF_ON_ERROR_ACCEPT)
			return -1;
		/* fail open (answered): what was reserved stays charged */
		memset(&x->amt, 0, sizeof(x->amt));
		return 0;
	}
	if (v.result == QUOTA_REFUSE && v.action != CONF_QACTION_HOLD) {
		log_verdict_id(a->id, x->stage, &v);
		if (a->st != NULL)
			a->st->refused++;
		if (release_from(a->env, t, 0, x->now, err, sizeof(err)) < 0)
			log_warnx("%s: policy=error releasing reservations: "
			    "%s", a->id, err);
		t->finished = 1;
		reply_refused(&v, a->reply, a->len);
		return -1;
	}
	if (v.result == QUOTA_REFUSE)
		x->hold = v;
	else
		log_verdict_id(a->id, x->stage, &v);	/* warnings */
	return 0;
}

/*
 * at_finish - DATA or END-OF-MESSAGE: reserve the message, commit the
 * RCPT reservations (ncommit of them, the rest released); the reply is
 * written by finish_done(), now or when the batch is flushed.  A
 * reservation that lapsed is admitted again by its commit; refused by
 * then, the message is refused with that limit's action.
 */
static int
at_finish(const struct decide_env *env, struct decide_txn *t,
    const struct proto *p, const char *stage, int64_t now,
    struct decide_stats *st, char *reply, size_t len)
{
	struct quota_amount one = { 0, 1, 0 };
	struct quota_who who;
	struct finish_ctx *x;
	uint8_t addr[16];
	uint64_t want, size, extra, ncommit, i;
	char err[256];

	/* the instance's queued answers decide what there is to settle */
	if (t->inflight > 0)
		(void)quota_flush(env->quota);
	if (t->finished) {
		reply_set(reply, len, "DUNNO");
		return 0;
	}
	x = xcalloc(1, sizeof(*x));
	answer_init(&x->a, env, t, p, st, reply, len);
	x->now = now;
	x->stage = stage;
	want = num_attr(p, PA_RECIPIENT_COUNT);
	if (want == 0)		/* before Postfix 2.3: what RCPT saw */
		want = t->rcpt_charged + t->ntokens;
	size = num_attr(p, PA_SIZE);
	ncommit = want > t->rcpt_charged ? want - t->rcpt_charged : 0;
	if (ncommit > t->ntokens)
		ncommit = t->ntokens;
	extra = want > t->rcpt_charged + ncommit ?
	    want - t->rcpt_charged - ncommit : 0;
	if (ncommit > 0 && now - t->first_ms + LAPSE_MARGIN_MS >=
	    (int64_t)env->conf->store.reserve_ttl * 1000) {
		/*
		 * Some reservations lapsed (or are about to): give them all
		 * back and reserve the message whole below, in this batch,
		 * so that it is charged all or nothing.  (A commit would
		 * admit each lapsed one again, alone: see finish_done.)
		 */
		extra += ncommit;
		ncommit = 0;
		if (release_from(env, t, 0, now, err, sizeof(err)) < 0)
			log_warnx("%s: policy=error releasing reservations: "
			    "%s", x->a.id, err);
	}
	x->amt.messages = t->msg_charged ? 0 : 1;
	x->amt.recipients = extra;
	x->amt.bytes = size > t->bytes_charged ? size - t->bytes_charged : 0;
	who_of(p, &who, addr);
	x->sasl = who.sasl_username != NULL ? xstrdup(who.sasl_username) :
	    NULL;
	x->sender = who.sender != NULL ? xstrdup(who.sender) : NULL;
	memcpy(x->addr, addr, sizeof(x->addr));
	x->have_addr = who.client_addr != NULL;
	if (finish_reserve(x, &who) < 0) {
		finish_free(x);
		return 0;
	}
	x->pending = 1;
	for (i = 0; i < ncommit; i++) {
		x->pending++;
		t->inflight++;
		(void)quota_defer_commit(env->quota, t->tokens[i], &who, &one,
		    now, at_commit_done, x);
	}
	if (release_from(env, t, (size_t)ncommit, now, err, sizeof(err)) < 0)
		log_warnx("%s: policy=error releasing reservations: %s",
		    x->a.id, err);
	t->ntokens = 0;
	if (--x->pending == 0)
		finish_done(x);
	return 0;
}

int
decide_request(const struct decide_env *env, struct decide_txn *t,
    const struct proto *p, int64_t now, struct decide_stats *st,
    char *reply, size_t len, char *err, size_t errlen)
{
	const char *req = proto_get(p, PA_REQUEST);
	const char *state = proto_get(p, PA_PROTOCOL_STATE);
	enum stage s;

	ASSERT(len >= 16);
	reply[0] = '\0';
	if (req == NULL) {
		snprintf(err, errlen, "no \"request\" attribute");
		return -1;
	}
	if (st != NULL)
		st->requests++;
	if (strcmp(req, "smtpd_access_policy") != 0)
		return unusable(t, p, LOGGED_REQUEST, "not an "
		    "smtpd_access_policy request", reply, len);
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
		    "END-OF-MESSAGE are used", reply, len);
	if (env->conf->nlimits == 0)
		return unusable(t, p, LOGGED_BIT(s), "no limits are "
		    "configured", reply, len);
	if (s == ST_RCPT && !has_count(env->conf, CONF_QCOUNT_RECIPIENTS))
		return unusable(t, p, LOGGED_BIT(s), "no limit counts "
		    "recipients", reply, len);
	begin_instance(env, t, p, now);
	if (s == ST_RCPT)
		return at_rcpt(env, t, p, now, st, reply, len);
	return at_finish(env, t, p, s == ST_DATA ? "DATA" : "END-OF-MESSAGE",
	    now, st, reply, len);
}
