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

/* settle - commit n tokens, release the rest; forget them all */
static int
settle(const struct decide_env *env, struct decide_txn *t, size_t ncommit,
    int64_t now, char *err, size_t errlen)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < t->ntokens; i++) {
		if ((i < ncommit ? quota_commit(env->quota, t->tokens[i], now,
		    err, errlen) : quota_release(env->quota, t->tokens[i], now,
		    err, errlen)) < 0)
			rc = -1;
	}
	t->ntokens = 0;
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
	    settle(env, t, 0, now, err, sizeof(err)) < 0)
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
	t->inflight++;
	return quota_defer(env->quota, &who, &amt, now,
	    t->ntokens + t->inflight <= DECIDE_TOKENS_MAX, at_rcpt_done, x);
}

/* A DATA or END-OF-MESSAGE admission: what its verdict completes. */
struct finish_ctx {
	struct answer a;
	int64_t now;
	const char *stage;		/* static */
	struct quota_amount amt;
	uint64_t ncommit;
};

/*
 * finish_apply - the verdict v of the message's admission (x->amt): the
 * reply, and the reservations settled
 */
static void
finish_apply(struct finish_ctx *x, int rc, const struct quota_verdict *vin)
{
	struct answer *a = &x->a;
	struct decide_txn *t = a->t;
	struct decide_stats *st = a->st;
	struct quota_verdict v = *vin;
	char err[256];

	if (rc < 0 || v.result == QUOTA_ERROR) {
		store_failed_id(a->env, a->id, x->stage, v.error, st,
		    a->reply, a->len);
		if (a->env->conf->store.on_error != CONF_ON_ERROR_ACCEPT)
			return;
		/* fail open: what was reserved stays charged */
		v.result = QUOTA_ADMIT;
		memset(&x->amt, 0, sizeof(x->amt));
	}
	log_verdict_id(a->id, x->stage, &v);
	if (v.result == QUOTA_REFUSE && v.action != CONF_QACTION_HOLD) {
		if (st != NULL)
			st->refused++;
		if (settle(a->env, t, 0, x->now, err, sizeof(err)) < 0)
			log_warnx("%s: policy=error releasing reservations: "
			    "%s", a->id, err);
		t->finished = 1;
		reply_refused(&v, a->reply, a->len);
		return;
	}
	if (settle(a->env, t, (size_t)x->ncommit, x->now, err,
	    sizeof(err)) < 0)
		log_warnx("%s: policy=error settling reservations: %s",
		    a->id, err);
	t->rcpt_charged += x->ncommit;
	if (v.result == QUOTA_REFUSE) {		/* hold: accepted, held */
		if (st != NULL)
			st->refused++;
		t->msg_charged = 1;
		reply_refused(&v, a->reply, a->len);
		return;
	}
	if (st != NULL)
		st->admitted++;
	t->rcpt_charged += x->amt.recipients;
	t->msg_charged = 1;
	t->bytes_charged += x->amt.bytes;
	reply_set(a->reply, a->len, "DUNNO");
}

/* at_finish_done - the verdict of a queued message admission */
static void
at_finish_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	struct finish_ctx *x = arg;

	(void)token;
	ASSERT(x->a.t->inflight > 0);
	x->a.t->inflight--;
	finish_apply(x, rc, v);
	free(x);
}

/*
 * at_finish - DATA or END-OF-MESSAGE: settle and charge the message; the
 * reply is written by finish_apply(), now or when the batch is flushed
 */
static int
at_finish(const struct decide_env *env, struct decide_txn *t,
    const struct proto *p, const char *stage, int64_t now,
    struct decide_stats *st, char *reply, size_t len)
{
	struct quota_verdict v;
	struct quota_who who;
	struct finish_ctx *x;
	uint8_t addr[16];
	uint64_t want, size, extra;

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
	x->ncommit = want > t->rcpt_charged ? want - t->rcpt_charged : 0;
	if (x->ncommit > t->ntokens)
		x->ncommit = t->ntokens;
	extra = want > t->rcpt_charged + x->ncommit ?
	    want - t->rcpt_charged - x->ncommit : 0;
	x->amt.messages = t->msg_charged ? 0 : 1;
	x->amt.recipients = extra;
	x->amt.bytes = size > t->bytes_charged ? size - t->bytes_charged : 0;
	if (x->amt.messages || x->amt.recipients || x->amt.bytes) {
		who_of(p, &who, addr);
		t->inflight++;
		return quota_defer(env->quota, &who, &x->amt, now, 0,
		    at_finish_done, x);
	}
	memset(&v, 0, sizeof(v));
	v.result = QUOTA_ADMIT;
	finish_apply(x, 0, &v);
	free(x);
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
