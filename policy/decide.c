/*
 * decide - see decide.h.
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

static const char *
action_name(enum conf_qaction a)
{
	switch (a) {
	case CONF_QACTION_REJECT:
		return "reject";
	case CONF_QACTION_HOLD:
		return "hold";
	case CONF_QACTION_WARN:
		return "warn";
	default:
		return "defer";
	}
}

/* store_failed - a store error: log it, answer per store.on_error */
static int
store_failed(const struct decide_env *env, const struct proto *p,
    const char *what, struct decide_stats *st, char *reply, size_t len)
{
	int accept = env->conf->store.on_error == CONF_ON_ERROR_ACCEPT;

	if (st != NULL)
		st->errors++;
	log_warnx("%s: policy=error stage=%s error=\"%s\" action=%s", log_id(p),
	    proto_get(p, PA_PROTOCOL_STATE), what, accept ? "DUNNO" :
	    "DEFER_IF_PERMIT");
	reply_set(reply, len, accept ? "DUNNO" : TEMPFAIL_TEXT);
	return 0;
}

static void
log_verdict(const struct proto *p, const char *stage,
    const struct quota_verdict *v)
{
	if (v->result == QUOTA_REFUSE && v->limit != NULL)
		log_info("%s: policy=%s stage=%s limit=%s key=%s used=%llu "
		    "limit_value=%llu retry=%llu", log_id(p),
		    action_name(v->action), stage, v->limit->name, v->key,
		    (unsigned long long)v->used,
		    (unsigned long long)v->limit_value,
		    (unsigned long long)v->retry_after);
	else if (v->nwarned > 0 && v->limit != NULL)
		log_info("%s: policy=warn stage=%s limit=%s key=%s used=%llu "
		    "limit_value=%llu", log_id(p), stage, v->limit->name,
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

/* at_rcpt - reserve one recipient */
static int
at_rcpt(const struct decide_env *env, struct decide_txn *t,
    const struct proto *p, int64_t now, struct decide_stats *st,
    char *reply, size_t len)
{
	struct quota_amount amt = { 0, 1, 0 };
	struct quota_verdict v;
	struct quota_who who;
	uint8_t addr[16];
	uint64_t token = 0;
	int rc;

	who_of(p, &who, addr);
	if (t->ntokens < DECIDE_TOKENS_MAX)
		rc = quota_reserve(env->quota, &who, &amt, now, &token, &v);
	else
		rc = quota_admit(env->quota, &who, &amt, now, &v);
	if (rc < 0 || v.result == QUOTA_ERROR)
		return store_failed(env, p, v.error, st, reply, len);
	log_verdict(p, "RCPT", &v);
	if (v.result == QUOTA_REFUSE) {
		if (st != NULL)
			st->refused++;
		return reply_refused(&v, reply, len);
	}
	if (st != NULL)
		st->admitted++;
	if (token != 0) {
		if (t->ntokens == t->captokens) {
			t->captokens = t->captokens ? t->captokens * 2 : 8;
			t->tokens = xreallocarray(t->tokens, t->captokens,
			    sizeof(*t->tokens));
		}
		t->tokens[t->ntokens++] = token;
	} else
		t->rcpt_charged++;
	reply_set(reply, len, "DUNNO");
	return 0;
}

/* at_finish - DATA or END-OF-MESSAGE: settle and charge the message */
static int
at_finish(const struct decide_env *env, struct decide_txn *t,
    const struct proto *p, const char *stage, int64_t now,
    struct decide_stats *st, char *reply, size_t len)
{
	struct quota_amount amt = { 0, 0, 0 };
	struct quota_verdict v;
	struct quota_who who;
	uint8_t addr[16];
	uint64_t want, size, ncommit, extra;
	char err[256];

	if (t->finished) {
		reply_set(reply, len, "DUNNO");
		return 0;
	}
	want = num_attr(p, PA_RECIPIENT_COUNT);
	if (want == 0)		/* before Postfix 2.3: what RCPT saw */
		want = t->rcpt_charged + t->ntokens;
	size = num_attr(p, PA_SIZE);
	ncommit = want > t->rcpt_charged ? want - t->rcpt_charged : 0;
	if (ncommit > t->ntokens)
		ncommit = t->ntokens;
	extra = want > t->rcpt_charged + ncommit ?
	    want - t->rcpt_charged - ncommit : 0;
	amt.messages = t->msg_charged ? 0 : 1;
	amt.recipients = extra;
	amt.bytes = size > t->bytes_charged ? size - t->bytes_charged : 0;

	memset(&v, 0, sizeof(v));
	v.result = QUOTA_ADMIT;
	if (amt.messages || amt.recipients || amt.bytes) {
		who_of(p, &who, addr);
		if (quota_admit(env->quota, &who, &amt, now, &v) < 0 ||
		    v.result == QUOTA_ERROR) {
			if (env->conf->store.on_error != CONF_ON_ERROR_ACCEPT)
				return store_failed(env, p, v.error, st, reply,
				    len);
			/* fail open: what was reserved stays charged */
			store_failed(env, p, v.error, st, reply, len);
			v.result = QUOTA_ADMIT;
			memset(&amt, 0, sizeof(amt));
		}
	}
	log_verdict(p, stage, &v);
	if (v.result == QUOTA_REFUSE && v.action != CONF_QACTION_HOLD) {
		if (st != NULL)
			st->refused++;
		if (settle(env, t, 0, now, err, sizeof(err)) < 0)
			log_warnx("%s: policy=error releasing reservations: "
			    "%s", log_id(p), err);
		t->finished = 1;
		return reply_refused(&v, reply, len);
	}
	if (settle(env, t, (size_t)ncommit, now, err, sizeof(err)) < 0)
		log_warnx("%s: policy=error settling reservations: %s",
		    log_id(p), err);
	t->rcpt_charged += ncommit;
	if (v.result == QUOTA_REFUSE) {		/* hold: accepted, held */
		if (st != NULL)
			st->refused++;
		t->msg_charged = 1;
		return reply_refused(&v, reply, len);
	}
	if (st != NULL)
		st->admitted++;
	t->rcpt_charged += amt.recipients;
	t->msg_charged = 1;
	t->bytes_charged += amt.bytes;
	reply_set(reply, len, "DUNNO");
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
