/*
 * check_policy_decide - what outpost-policyd answers and charges
 * (policy/decide.c), against the memory store with the time passed in;
 * the policyd config section; and the golden files
 * tests/data/policy/NAME.request -> NAME.reply.
 *
 * POLICY_GOLDEN_WRITE=1 rewrites the .reply files (review the diff).
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "policy/decide.h"
#include "policy/proto.h"
#include "quota/quota.h"
#include "quota/store.h"
#include "util/buf.h"
#include "util/log.h"

#define NOW 1764331200000LL	/* 2025-11-28 12:00 UTC */
#define DATADIR TOP_SRCDIR "/tests/data/policy"
#define TEMPFAIL "DEFER_IF_PERMIT Service temporarily unavailable"

#define LIMITS_RCPT3 \
	"limits = ( { name = \"rcpt\"; key = \"sasl_username\"; " \
	"count = \"recipients\"; kind = \"window\"; limit = 3; " \
	"period = \"1h\"; } );\n"

struct fixture {
	struct conf *conf;
	struct quota *quota;
	struct decide *d;
	struct decide_txn *txn;
};

/* ST - the counters of f's decide */
#define ST(f) (*decide_stats((f)->d))

/* fx_decide - f's decide and txn over f->quota */
static void
fx_decide(struct fixture *f)
{
	f->d = decide_new(f->conf, f->quota);
	f->txn = decide_txn_new(f->d);
}

static void
fx_open(struct fixture *f, const char *text)
{
	char err[512], full[4096];

	snprintf(full, sizeof(full), "store = { backend = \"memory\"; };\n%s",
	    text);
	memset(f, 0, sizeof(*f));
	f->conf = conf_load_string("test.conf", full, err, sizeof(err));
	ck_assert_msg(f->conf != NULL, "conf: %s", err);
	f->quota = quota_open(&f->conf->quota, err, sizeof(err));
	ck_assert_msg(f->quota != NULL, "quota_open: %s", err);
	fx_decide(f);
}

/* fx_end - the connection ends (its reservations released); a new one */
static void
fx_end(struct fixture *f)
{
	decide_txn_close(f->txn, NOW);
	decide_wait(f->d);
	f->txn = decide_txn_new(f->d);
}

/* fx_undecide - close f's txn and decide (before reopening the quota) */
static void
fx_undecide(struct fixture *f)
{
	decide_txn_close(f->txn, NOW);
	f->txn = NULL;
	f->d = decide_free(f->d);
}

static void
fx_close(struct fixture *f)
{
	fx_undecide(f);
	quota_close(f->quota);
	conf_free(f->conf);
}

/* reply_into - a reply function: the reply into the buffer arg */
static void
reply_into(void *arg, const char *reply)
{
	char *out = arg;

	ck_assert_msg(out[0] == '\0', "a second reply: %s", reply);
	snprintf(out, DECIDE_REPLY_MAX, "%s", reply);
}

/*
 * ask - one request "STATE INSTANCE [name=value ...]" (space separated)
 * with login alice; returns the reply without "action=" and the blank
 * line, in a static buffer (tests are single-threaded).
 */
static const char *
ask_at(struct fixture *f, int64_t now, const char *spec)
{
	static char out[DECIDE_REPLY_MAX];
	char reply[DECIDE_REPLY_MAX], err[256], copy[512], *tok, *save;
	struct buf b = BUF_INIT;
	struct proto *p = proto_new(NULL);
	enum proto_status st;
	size_t used;
	int i = 0;

	buf_appends(&b, "request=smtpd_access_policy\nsasl_username=alice\n"
	    "sender=alice@example.com\nclient_address=192.0.2.1\n");
	snprintf(copy, sizeof(copy), "%s", spec);
	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save), i++) {
		if (i == 0)
			buf_appendf(&b, "protocol_state=%s\n", tok);
		else if (i == 1)
			buf_appendf(&b, "instance=%s\n", tok);
		else
			buf_appendf(&b, "%s\n", tok);
	}
	buf_appends(&b, "\n");
	st = proto_feed(p, b.data, b.len, &used, err, sizeof(err));
	ck_assert_int_eq(st, PROTO_REQUEST);
	reply[0] = '\0';
	ck_assert_int_eq(decide_request(f->txn, p, now, reply_into, reply,
	    err, sizeof(err)), 0);
	decide_wait(f->d);
	ck_assert_msg(strncmp(reply, "action=", 7) == 0, "got %s", reply);
	ck_assert_uint_ge(strlen(reply), 9);
	ck_assert_str_eq(reply + strlen(reply) - 2, "\n\n");
	ck_assert_msg(strncmp(reply, "action=OK", 9) != 0, "never OK");
	snprintf(out, sizeof(out), "%.*s", (int)(strlen(reply) - 9),
	    reply + 7);
	proto_free(p);
	buf_free(&b);
	return out;
}

static const char *
ask(struct fixture *f, const char *spec)
{
	return ask_at(f, NOW, spec);
}

static int
starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* used - the counter of key under limit name, via quota_list */
struct used_arg {
	const char *key;
	uint64_t used;
};

static int
used_fn(const struct quota_entry *e, void *arg)
{
	struct used_arg *u = arg;

	if (strcmp(e->key, u->key) == 0)
		u->used = e->used;
	return 0;
}

static uint64_t
used(struct fixture *f, const char *limit, const char *key)
{
	struct used_arg u = { key, 0 };
	char err[256];

	ck_assert_int_eq(quota_list(f->quota, limit, NOW, used_fn, &u, err,
	    sizeof(err)), 0);
	return u.used;
}

START_TEST(rcpt_over_limit_is_deferred_with_text)
{
	struct fixture f;
	const char *r;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert_str_eq(ask(&f, "RCPT i1 recipient=a@x"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1 recipient=b@x"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1 recipient=c@x"), "DUNNO");
	r = ask(&f, "RCPT i1 recipient=d@x");
	ck_assert_msg(starts(r, "450 4.7.1 Quota exceeded for alice: 3/3"),
	    "got %s", r);
	ck_assert_uint_eq(ST(&f).refused, 1);
	ck_assert_uint_eq(ST(&f).admitted, 3);
	fx_close(&f);
}
END_TEST

START_TEST(eom_commits_reservations)
{
	struct fixture f;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i1 recipient_count=2 "
	    "size=10"), "DUNNO");
	ck_assert_uint_eq(f.txn->ntokens, 0);
	/* committed: a new instance does not get them back */
	ck_assert_str_eq(ask(&f, "RCPT i2"), "DUNNO");
	ck_assert(starts(ask(&f, "RCPT i2"), "450 4.7.1"));
	fx_end(&f);
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 2);
	fx_close(&f);
}
END_TEST

START_TEST(new_instance_releases_uncommitted)
{
	struct fixture f;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 3);
	/* i1 never reached END-OF-MESSAGE: aborted, refunded */
	ck_assert_str_eq(ask(&f, "RCPT i2"), "DUNNO");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 1);
	fx_close(&f);
}
END_TEST

START_TEST(connection_end_releases_uncommitted)
{
	struct fixture f;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	fx_end(&f);
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 0);
	ck_assert_uint_eq(f.txn->ntokens, 0);
	fx_close(&f);
}
END_TEST

/* Postfix rejected one recipient after us: only 2 of 3 are charged */
START_TEST(eom_recipient_count_settles_fewer)
{
	struct fixture f;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i1 recipient_count=2"),
	    "DUNNO");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 2);
	fx_close(&f);
}
END_TEST

/* only END-OF-MESSAGE configured: recipients admitted all or nothing */
START_TEST(eom_without_rcpt_admits_recipient_count)
{
	struct fixture f;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert(starts(ask(&f, "END-OF-MESSAGE i1 recipient_count=4"),
	    "450 4.7.1"));
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 0);
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i2 recipient_count=3"),
	    "DUNNO");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 3);
	fx_close(&f);
}
END_TEST

START_TEST(data_then_eom_counts_message_once)
{
	struct fixture f;

	fx_open(&f, "limits = ( { name = \"msgs\"; key = \"sender\"; "
	    "count = \"messages\"; kind = \"window\"; limit = 1; "
	    "period = \"1h\"; action = \"reject\"; }, { name = \"bytes\"; "
	    "key = \"sender\"; count = \"bytes\"; kind = \"window\"; "
	    "limit = 150; period = \"1h\"; } );\n");
	ck_assert_str_eq(ask(&f, "DATA i1 recipient_count=1 size=100"),
	    "DUNNO");
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i1 recipient_count=1 "
	    "size=150"), "DUNNO");
	ck_assert_uint_eq(used(&f, "msgs", "alice@example.com"), 1);
	ck_assert_uint_eq(used(&f, "bytes", "alice@example.com"), 150);
	ck_assert(starts(ask(&f, "DATA i2 recipient_count=1"), "550 5.7.1"));
	/* refused at DATA: END-OF-MESSAGE adds nothing */
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i2 recipient_count=1 "
	    "size=1"), "DUNNO");
	ck_assert_uint_eq(used(&f, "bytes", "alice@example.com"), 150);
	fx_close(&f);
}
END_TEST

/* refused at END-OF-MESSAGE: the message is not accepted, refund all */
START_TEST(eom_refusal_releases_reservations)
{
	struct fixture f;

	fx_open(&f, "limits = ( { name = \"rcpt\"; key = \"sasl_username\"; "
	    "count = \"recipients\"; kind = \"window\"; limit = 3; "
	    "period = \"1h\"; }, { name = \"bytes\"; key = \"sender\"; "
	    "count = \"bytes\"; kind = \"window\"; limit = 100; "
	    "period = \"1h\"; } );\n");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert(starts(ask(&f, "END-OF-MESSAGE i1 recipient_count=2 "
	    "size=1000"), "450 4.7.1"));
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 0);
	ck_assert_uint_eq(used(&f, "bytes", "alice@example.com"), 0);
	fx_close(&f);
}
END_TEST

static const struct {
	const char *action;
	const char *want;
} actions[] = {
	{ "defer", "450 4.7.1 " },
	{ "reject", "550 5.7.1 " },
	{ "hold", "HOLD " },
	{ "warn", "DUNNO" },
};

START_TEST(limit_actions_map_to_replies)
{
	struct fixture f;
	char text[512];
	const char *r;

	snprintf(text, sizeof(text), "limits = ( { name = \"rcpt\"; "
	    "key = \"sasl_username\"; count = \"recipients\"; "
	    "kind = \"window\"; limit = 1; period = \"1h\"; "
	    "action = \"%s\"; } );\n", actions[_i].action);
	fx_open(&f, text);
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	r = ask(&f, "RCPT i1");
	ck_assert_msg(starts(r, actions[_i].want), "%s: got %s, want %s",
	    actions[_i].action, r, actions[_i].want);
	fx_close(&f);
}
END_TEST

START_TEST(unusable_stages_answer_dunno_and_log_once)
{
	struct fixture f;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert_str_eq(ask(&f, "MAIL i1"), "DUNNO");
	ck_assert_uint_ne(f.txn->logged, 0);
	ck_assert_str_eq(ask(&f, "CONNECT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "VRFY i1"), "DUNNO");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 0);
	fx_close(&f);
	/* RCPT without a recipients limit */
	fx_open(&f, "limits = ( { name = \"m\"; key = \"sender\"; "
	    "count = \"messages\"; kind = \"window\"; limit = 1; "
	    "period = \"1h\"; } );\n");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_uint_ne(f.txn->logged, 0);
	ck_assert_uint_eq(f.txn->ntokens, 0);
	fx_close(&f);
	/* no limits at all */
	fx_open(&f, "");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i1 recipient_count=1"),
	    "DUNNO");
	fx_close(&f);
}
END_TEST

START_TEST(missing_request_attribute_is_malformed)
{
	struct fixture f;
	struct proto *p = proto_new(NULL);
	const char *t = "protocol_state=RCPT\ninstance=x\n\n";
	char reply[DECIDE_REPLY_MAX], err[256];
	size_t used_;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert_int_eq(proto_feed(p, t, strlen(t), &used_, err,
	    sizeof(err)), PROTO_REQUEST);
	ck_assert_int_eq(decide_request(f.txn, p, NOW, reply_into, reply,
	    err, sizeof(err)), -1);
	proto_free(p);
	fx_close(&f);
}
END_TEST

/* reservations are per instance: the window moves on with time */
START_TEST(time_is_passed_in)
{
	struct fixture f;

	fx_open(&f, LIMITS_RCPT3);
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i1 recipient_count=3"),
	    "DUNNO");
	ck_assert(starts(ask(&f, "RCPT i2"), "450 4.7.1"));
	ck_assert_str_eq(ask_at(&f, NOW + 2 * 3600 * 1000LL, "RCPT i3"),
	    "DUNNO");
	fx_close(&f);
}
END_TEST

START_TEST(store_error_follows_on_error)
{
	static const char *const modes[] = { "tempfail", "accept" };
	static const char *const want[] = {
		"DEFER_IF_PERMIT Service temporarily unavailable", "DUNNO" };
	struct fixture f;
	char text[1024], err[512];
	const char *r;

	/* a Redis store on a port where nothing listens */
	snprintf(text, sizeof(text), "store = { backend = \"redis\"; "
	    "url = \"redis://127.0.0.1:9/0\"; timeout = \"200ms\"; "
	    "on_error = \"%s\"; };\n" LIMITS_RCPT3, modes[_i]);
	memset(&f, 0, sizeof(f));
	f.conf = conf_load_string("test.conf", text, err, sizeof(err));
	ck_assert_msg(f.conf != NULL, "conf: %s", err);
	f.quota = quota_open(&f.conf->quota, err, sizeof(err));
	ck_assert_msg(f.quota != NULL, "quota_open must not fail on a "
	    "store that is down: %s", err);
	fx_decide(&f);
	r = ask(&f, "RCPT i1");
	ck_assert_msg(strcmp(r, want[_i]) == 0, "%s: got %s, want %s",
	    modes[_i], r, want[_i]);
	r = ask(&f, "END-OF-MESSAGE i1 recipient_count=1 size=5");
	ck_assert_msg(strcmp(r, want[_i]) == 0, "%s: got %s, want %s",
	    modes[_i], r, want[_i]);
	ck_assert_uint_eq(ST(&f).errors, 2);
	fx_close(&f);
}
END_TEST

/*
 * A memory store that pipelines (as Redis does): its pipeline op runs
 * the calls through the memory store's own ops, counting rounds.
 */
static const struct quota_store_ops *mem_ops;
static struct quota_store_ops pipe_ops;
static unsigned int pipe_rounds, pipe_calls;

static void
pipe_run(struct quota_store *s, struct quota_store_call *c, size_t n)
{
	size_t i;

	pipe_rounds++;
	for (i = 0; i < n; i++, pipe_calls++) {
		c[i].err[0] = '\0';
		if (c[i].kind == QUOTA_CALL_ADMIT)
			c[i].rc = mem_ops->admit(s, c[i].ops, c[i].n,
			    c[i].now_ms, c[i].token, c[i].expires_ms, c[i].res,
			    &c[i].admitted, c[i].err, sizeof(c[i].err));
		else if (c[i].kind == QUOTA_CALL_COMMIT)
			c[i].rc = mem_ops->commit(s, c[i].token, c[i].ops,
			    c[i].n, c[i].now_ms, c[i].res, &c[i].admitted,
			    c[i].err, sizeof(c[i].err));
		else
			c[i].rc = mem_ops->release(s, c[i].token, c[i].now_ms,
			    c[i].err, sizeof(c[i].err));
	}
}

/* fx_open_pipe - fx_open over the pipelining memory store */
static void
fx_open_pipe(struct fixture *f, const char *text)
{
	struct quota_store *st;
	char err[512];

	fx_open(f, text);
	fx_undecide(f);
	quota_close(f->quota);
	st = store_mem_open(&f->conf->quota, err, sizeof(err));
	ck_assert_msg(st != NULL, "store_mem_open: %s", err);
	mem_ops = st->ops;
	pipe_ops = *st->ops;
	pipe_ops.pipeline = pipe_run;
	st->ops = &pipe_ops;
	f->quota = quota_open_store(&f->conf->quota, st, err, sizeof(err));
	ck_assert_ptr_nonnull(f->quota);
	fx_decide(f);
	pipe_rounds = pipe_calls = 0;
}

/* submit - decide_request for spec into reply, which may stay empty */
static void
submit(struct fixture *f, struct decide_txn *t, const char *spec,
    char *reply)
{
	char err[256], copy[512], *tok, *save;
	struct buf b = BUF_INIT;
	struct proto *p = proto_new(NULL);
	size_t used;
	int i = 0;

	buf_appends(&b, "request=smtpd_access_policy\nsasl_username=alice\n");
	snprintf(copy, sizeof(copy), "%s", spec);
	for (tok = strtok_r(copy, " ", &save); tok != NULL;
	    tok = strtok_r(NULL, " ", &save), i++)
		buf_appendf(&b, i == 0 ? "protocol_state=%s\n" : i == 1 ?
		    "instance=%s\n" : "%s\n", tok);
	buf_appends(&b, "\n");
	ck_assert_int_eq(proto_feed(p, b.data, b.len, &used, err,
	    sizeof(err)), PROTO_REQUEST);
	reply[0] = '\0';
	ck_assert_int_eq(decide_request(t, p, NOW, reply_into, reply, err,
	    sizeof(err)), 0);
	proto_free(p);
	buf_free(&b);
}

/*
 * pipelined_rcpts_answer_when_the_batch_flushes - on a store that
 * pipelines, RCPT replies are written only when the batch is flushed
 * (one round for all), with the verdicts of one-by-one calls; an
 * END-OF-MESSAGE waits, without a round of its own, for its instance's
 * RCPTs and settles them in the next round of the same flush; the end
 * of a connection waits for its RCPT before releasing
 */
START_TEST(pipelined_rcpts_answer_when_the_batch_flushes)
{
	struct fixture f;
	struct decide_txn *t2;
	char r[6][DECIDE_REPLY_MAX], e[DECIDE_REPLY_MAX];
	int i;

	fx_open_pipe(&f, LIMITS_RCPT3);
	t2 = decide_txn_new(f.d);
	for (i = 0; i < 5; i++) {
		submit(&f, f.txn, "RCPT i1", r[i]);
		ck_assert_msg(r[i][0] == '\0', "RCPT %d answered before the "
		    "flush: %s", i, r[i]);
	}
	ck_assert_uint_eq(f.txn->busy, 5);
	submit(&f, f.txn, "END-OF-MESSAGE i1 recipient_count=3", e);
	ck_assert_uint_eq(pipe_rounds, 0);
	ck_assert_msg(e[0] == '\0', "END-OF-MESSAGE answered before its "
	    "commits: %s", e);
	ck_assert_int_eq(decide_flush(f.d), QUOTA_DONE);
	ck_assert_uint_eq(pipe_rounds, 2);	/* the RCPTs, the commits */
	ck_assert_uint_eq(pipe_calls, 8);
	ck_assert_uint_eq(f.txn->busy, 0);
	for (i = 0; i < 5; i++)
		ck_assert_msg(starts(r[i], i < 3 ? "action=DUNNO" :
		    "action=450 4.7.1 Quota exceeded for alice: 3/3"),
		    "RCPT %d: got %s", i, r[i]);
	ck_assert_str_eq(e, "action=DUNNO\n\n");
	/* another connection's RCPT, then its end */
	submit(&f, t2, "RCPT j1", r[5]);
	ck_assert(r[5][0] == '\0');
	decide_txn_close(t2, NOW);	/* waits for the RCPT */
	ck_assert(r[5][0] == '\0');
	ck_assert_int_eq(decide_flush(f.d), QUOTA_DONE);
	ck_assert(starts(r[5], "action=450 4.7.1"));
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 3);
	ck_assert_uint_eq(ST(&f).admitted, 4);
	ck_assert_uint_eq(ST(&f).refused, 3);
	fx_close(&f);
}
END_TEST

/*
 * eom_commits_share_the_turn - the commits of an END-OF-MESSAGE go to
 * the store in the same round as the other connections' calls of the
 * turn, not in one of their own (the message's own reservation, when
 * no limit counts messages or bytes, needs no call)
 */
START_TEST(eom_commits_share_the_turn)
{
	struct fixture f;
	struct decide_txn *t2;
	char r[3][DECIDE_REPLY_MAX], e[DECIDE_REPLY_MAX];

	fx_open_pipe(&f, LIMITS_RCPT3);
	t2 = decide_txn_new(f.d);
	submit(&f, f.txn, "RCPT i1", r[0]);
	submit(&f, f.txn, "RCPT i1", r[1]);
	ck_assert_int_eq(decide_flush(f.d), QUOTA_DONE);
	ck_assert_uint_eq(pipe_rounds, 1);
	/* one turn: another connection's RCPT, this one's END-OF-MESSAGE */
	submit(&f, t2, "RCPT j1", r[2]);
	submit(&f, f.txn, "END-OF-MESSAGE i1 recipient_count=2", e);
	ck_assert_uint_eq(pipe_rounds, 1);
	ck_assert_int_eq(decide_flush(f.d), QUOTA_DONE);
	ck_assert_msg(pipe_rounds == 2, "the turn took %u rounds, want 1",
	    pipe_rounds - 1);
	ck_assert_uint_eq(pipe_calls, 5);
	ck_assert_str_eq(e, "action=DUNNO\n\n");
	ck_assert_str_eq(r[2], "action=DUNNO\n\n");
	decide_txn_close(t2, NOW);
	decide_wait(f.d);
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 2);
	fx_close(&f);
}
END_TEST

/*
 * lapsed_reservations_are_charged_at_the_end - RCPT reservations that
 * lapsed before END-OF-MESSAGE (store.reserve_ttl) are admitted again
 * with the message: charged when they fit, else the message is refused
 * with the limit's action and nothing of it is charged
 */
START_TEST(lapsed_reservations_are_charged_at_the_end)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_amount one = { 0, 1, 0 };
	struct quota_verdict v;
	struct fixture f;
	char text[1024], err[512];

	snprintf(text, sizeof(text), "store = { backend = \"memory\"; "
	    "reserve_ttl = \"2s\"; };\n" LIMITS_RCPT3);
	memset(&f, 0, sizeof(f));
	f.conf = conf_load_string("test.conf", text, err, sizeof(err));
	ck_assert_msg(f.conf != NULL, "conf: %s", err);
	f.quota = quota_open(&f.conf->quota, err, sizeof(err));
	ck_assert_ptr_nonnull(f.quota);
	fx_decide(&f);
	ck_assert_str_eq(ask_at(&f, NOW, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask_at(&f, NOW, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask_at(&f, NOW + 3000,
	    "END-OF-MESSAGE i1 recipient_count=2"), "DUNNO");
	ck_assert_msg(used(&f, "rcpt", "alice") == 2, "a slow message: used "
	    "%llu, want 2", (unsigned long long)used(&f, "rcpt", "alice"));
	/* one more lapses while another message takes the last one */
	ck_assert_str_eq(ask_at(&f, NOW + 4000, "RCPT i2"), "DUNNO");
	ck_assert_int_eq(quota_admit(f.quota, &alice, &one, NOW + 7000, &v),
	    0);
	ck_assert_int_eq(v.result, QUOTA_ADMIT);
	ck_assert(starts(ask_at(&f, NOW + 8000,
	    "END-OF-MESSAGE i2 recipient_count=1"),
	    "450 4.7.1 Quota exceeded for alice: 3/3"));
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 3);
	fx_close(&f);
}
END_TEST

/*
 * An LMDB store whose batches fail on demand at their end, as a commit
 * that fails does: the batch is poisoned by a call LMDB refuses (an op
 * without a limit), so that LMDB aborts its transaction, and nothing of
 * it is stored.  The batches begun are counted.
 */
static const struct quota_store_ops *lm_ops;
static struct quota_store_ops pb_ops;
static int pb_fail;
static unsigned int pb_begins;

static int
pb_begin(struct quota_store *s, char *err, size_t errlen)
{
	pb_begins++;
	return lm_ops->batch_begin(s, err, errlen);
}

static int
pb_end(struct quota_store *s, char *err, size_t errlen)
{
	struct quota_op bad;
	struct quota_op_result res;
	int admitted;

	if (pb_fail) {
		pb_fail = 0;
		memset(&bad, 0, sizeof(bad));
		ck_assert_int_eq(lm_ops->admit(s, &bad, 1, NOW, 0, NOW, &res,
		    &admitted, err, errlen), -1);
	}
	return lm_ops->batch_end(s, err, errlen);
}

/* fx_open_lmdb - fx_open over that store, in a new directory dir */
static void
fx_open_lmdb(struct fixture *f, char *dir, const char *text)
{
	char full[4096], err[512];
	struct quota_store *st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(full, sizeof(full), "store = { backend = \"lmdb\"; "
	    "path = \"%s/quota.lmdb\"; %s };\n" "limits = ( { name = "
	    "\"rcpt\"; key = \"sasl_username\"; count = \"recipients\"; "
	    "kind = \"window\"; limit = 10; period = \"1h\"; } );\n", dir,
	    text);
	memset(f, 0, sizeof(*f));
	f->conf = conf_load_string("test.conf", full, err, sizeof(err));
	ck_assert_msg(f->conf != NULL, "conf: %s", err);
	st = store_lmdb_open(&f->conf->quota, err, sizeof(err));
	ck_assert_msg(st != NULL, "store_lmdb_open: %s", err);
	lm_ops = st->ops;
	pb_ops = *st->ops;
	pb_ops.batch_begin = pb_begin;
	pb_ops.batch_end = pb_end;
	st->ops = &pb_ops;
	f->quota = quota_open_store(&f->conf->quota, st, err, sizeof(err));
	ck_assert_ptr_nonnull(f->quota);
	fx_decide(f);
	pb_fail = 0;
	pb_begins = 0;
}

/* fx_rmdir - remove what fx_open_lmdb made */
static void
fx_rmdir(const char *dir)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/quota.lmdb", dir);
	(void)unlink(path);
	snprintf(path, sizeof(path), "%s/quota.lmdb-lock", dir);
	(void)unlink(path);
	ck_assert_int_eq(rmdir(dir), 0);
}

/*
 * lmdb_turn_is_one_transaction - with LMDB, every exchange of a flush
 * (the RCPTs of two connections, then an END-OF-MESSAGE's reservation,
 * its commits and its own commit) runs in one transaction, and the
 * replies and counts are those of one call per transaction
 */
START_TEST(lmdb_turn_is_one_transaction)
{
	struct fixture f;
	struct decide_txn *t2;
	char dir[] = "/tmp/check_policy_decide.XXXXXX";
	char r[5][DECIDE_REPLY_MAX];
	int i;

	fx_open_lmdb(&f, dir, "");
	t2 = decide_txn_new(f.d);
	submit(&f, f.txn, "RCPT i1", r[0]);
	submit(&f, t2, "RCPT j1", r[1]);
	submit(&f, t2, "RCPT j1", r[2]);
	submit(&f, t2, "END-OF-MESSAGE j1 recipient_count=2", r[3]);
	submit(&f, f.txn, "RCPT i1", r[4]);
	for (i = 0; i < 5; i++)
		ck_assert_str_eq(r[i], "");	/* not before the commit */
	ck_assert_int_eq(decide_flush(f.d), QUOTA_DONE);
	ck_assert_uint_eq(pb_begins, 1);
	for (i = 0; i < 5; i++)
		ck_assert_str_eq(r[i], "action=DUNNO\n\n");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 4);
	ck_assert_uint_eq(t2->prog.rcpt_charged, 2);
	ck_assert_uint_eq(t2->ntokens, 0);
	ck_assert_uint_eq(f.txn->ntokens, 2);
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i1 recipient_count=1"),
	    "DUNNO");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 3);	/* 1 released */
	decide_txn_close(t2, NOW);
	fx_close(&f);
	fx_rmdir(dir);
}
END_TEST

/*
 * failed_flush_answers_per_on_error - when the transaction of a flush
 * fails to commit after its completions ran, nothing of it took effect:
 * no counter changed, every request of the flush gets the store-error
 * answer (store.on_error), and the connections are as they were before
 * (a reservation from an earlier flush stands and is still theirs,
 * one never stored is forgotten); the same requests then succeed
 */
START_TEST(failed_flush_answers_per_on_error)
{
	static const char *const modes[] = { "tempfail", "accept" };
	static const char *const want[] = { "action=" TEMPFAIL "\n\n",
		"action=DUNNO\n\n" };
	struct fixture f;
	struct decide_txn *t2;
	char dir[] = "/tmp/check_policy_decide.XXXXXX";
	char text[128], r[5][DECIDE_REPLY_MAX];
	int i;

	snprintf(text, sizeof(text), "on_error = \"%s\";", modes[_i]);
	fx_open_lmdb(&f, dir, text);
	t2 = decide_txn_new(f.d);
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");	/* a reservation */
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 1);

	log_discard(1);
	submit(&f, f.txn, "END-OF-MESSAGE i1 recipient_count=1", r[0]);
	submit(&f, t2, "RCPT j1", r[1]);
	submit(&f, t2, "RCPT j1", r[2]);
	submit(&f, t2, "END-OF-MESSAGE j1 recipient_count=2", r[3]);
	submit(&f, f.txn, "RCPT i2", r[4]);
	pb_fail = 1;
	pb_begins = 0;
	ck_assert_int_eq(decide_flush(f.d), QUOTA_FAILED);
	log_discard(0);
	ck_assert_uint_eq(pb_begins, 1);
	for (i = 0; i < 5; i++)
		ck_assert_msg(strcmp(r[i], want[_i]) == 0, "%s: reply %d: %s",
		    modes[_i], i, r[i]);
	ck_assert_uint_eq(ST(&f).errors, 5);
	ck_assert_uint_eq(ST(&f).admitted, 1);
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 1);
	ck_assert_uint_eq(quota_errors(f.quota), 1);
	/* t2: nothing; f.txn: instance i2 begun meanwhile, from nothing
	 * (i1's reservation is released with the next flush) */
	ck_assert_uint_eq(t2->ntokens, 0);
	ck_assert_uint_eq(t2->prog.rcpt_charged, 0);
	ck_assert_uint_eq(t2->prog.msg_charged, 0);
	ck_assert_uint_eq(f.txn->ntokens, 0);

	/* the same again, without the failure: as before */
	submit(&f, t2, "RCPT j1", r[1]);
	submit(&f, t2, "RCPT j1", r[2]);
	submit(&f, t2, "END-OF-MESSAGE j1 recipient_count=2", r[3]);
	ck_assert_int_eq(decide_flush(f.d), QUOTA_DONE);
	for (i = 1; i < 4; i++)
		ck_assert_str_eq(r[i], "action=DUNNO\n\n");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 2);
	ck_assert_uint_eq(t2->prog.rcpt_charged, 2);
	decide_txn_close(t2, NOW);
	decide_wait(f.d);
	fx_close(&f);
	fx_rmdir(dir);
}
END_TEST

/*
 * failed_flush_keeps_earlier_reservations - a reservation made by an
 * earlier flush, whose commit fails with its flush, still stands and is
 * the connection's again: a later END-OF-MESSAGE commits it, charged once
 */
START_TEST(failed_flush_keeps_earlier_reservations)
{
	struct fixture f;
	char dir[] = "/tmp/check_policy_decide.XXXXXX";
	char r[DECIDE_REPLY_MAX];

	fx_open_lmdb(&f, dir, "");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_str_eq(ask(&f, "RCPT i1"), "DUNNO");
	ck_assert_uint_eq(f.txn->ntokens, 2);
	log_discard(1);
	submit(&f, f.txn, "END-OF-MESSAGE i1 recipient_count=1", r);
	pb_fail = 1;
	ck_assert_int_eq(decide_flush(f.d), QUOTA_FAILED);
	log_discard(0);
	ck_assert_str_eq(r, "action=" TEMPFAIL "\n\n");
	ck_assert_uint_eq(f.txn->ntokens, 2);	/* its own again */
	ck_assert_uint_eq(f.txn->prog.rcpt_charged, 0);
	ck_assert_uint_eq(f.txn->prog.msg_charged, 0);
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 2);	/* not released */
	ck_assert_str_eq(ask(&f, "END-OF-MESSAGE i1 recipient_count=2"),
	    "DUNNO");
	ck_assert_uint_eq(used(&f, "rcpt", "alice"), 2);
	ck_assert_uint_eq(f.txn->prog.rcpt_charged, 2);
	fx_close(&f);
	fx_rmdir(dir);
}
END_TEST

/*
 * pipelined_batch_store_down_answers_each_per_on_error - the RCPTs of a
 * batch over a Redis server that is down each get the store-error answer
 * when the batch ends
 */
START_TEST(pipelined_batch_store_down_answers_each_per_on_error)
{
	struct fixture f;
	char text[1024], err[512], r[3][DECIDE_REPLY_MAX];
	int i, fd;

	snprintf(text, sizeof(text), "store = { backend = \"redis\"; "
	    "url = \"redis://127.0.0.1:9/0\"; timeout = \"200ms\"; };\n"
	    LIMITS_RCPT3);
	memset(&f, 0, sizeof(f));
	f.conf = conf_load_string("test.conf", text, err, sizeof(err));
	ck_assert_msg(f.conf != NULL, "conf: %s", err);
	f.quota = quota_open(&f.conf->quota, err, sizeof(err));
	ck_assert_ptr_nonnull(f.quota);
	fx_decide(&f);
	fd = decide_fd(f.d);
	ck_assert_int_ge(fd, 0);	/* Redis answers through it */
	for (i = 0; i < 3; i++)
		submit(&f, f.txn, "RCPT i1", r[i]);
	ck_assert_uint_eq(ST(&f).errors, 0);
	if (decide_flush(f.d) == QUOTA_PENDING) {
		struct pollfd pfd = { fd, POLLIN, 0 };

		for (i = 0; i < 50 && decide_poll(f.d) == QUOTA_PENDING; i++)
			(void)poll(&pfd, 1, 100);
	}
	for (i = 0; i < 3; i++)
		ck_assert_str_eq(r[i], "action=DEFER_IF_PERMIT Service "
		    "temporarily unavailable\n\n");
	ck_assert_uint_eq(ST(&f).errors, 3);
	ck_assert_uint_eq(quota_errors(f.quota), 3);
	fx_close(&f);
}
END_TEST

/* ---- the policyd config section (conf/conf_policyd.c) ------------------ */

START_TEST(policyd_conf_defaults)
{
	char err[512];
	struct conf *c = conf_load_string("t.conf", "", err, sizeof(err));

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->policyd.nlisten, 1);
	ck_assert_str_eq(c->policyd.listen[0], "unix:/run/outpost/policy.sock");
	ck_assert_uint_eq(c->policyd.socket_mode, 0660);
	ck_assert_uint_eq(c->policyd.nnetworks, 2);
	ck_assert_uint_eq(c->policyd.idle_timeout, 300);
	ck_assert_uint_eq(c->policyd.line_max, 2048);
	ck_assert_uint_eq(c->policyd.attributes_max, 100);
	ck_assert_uint_eq(c->policyd.request_max, 16384);
	conf_free(c);
	c = conf_load_string("t.conf", "policyd = { listen = [ "
	    "\"unix:/tmp/p.sock\", \"inet:127.0.0.1:10040\", "
	    "\"inet:[::1]:10041\" ]; socket_mode = \"0600\"; "
	    "networks = [ \"10.0.0.0/8\" ]; idle_timeout = \"2m\"; "
	    "line_max = 512; };", err, sizeof(err));
	ck_assert_msg(c != NULL, "%s", err);
	ck_assert_uint_eq(c->policyd.nlisten, 3);
	ck_assert_uint_eq(c->policyd.socket_mode, 0600);
	ck_assert_uint_eq(c->policyd.nnetworks, 1);
	ck_assert_uint_eq(c->policyd.idle_timeout, 120);
	ck_assert_uint_eq(c->policyd.line_max, 512);
	conf_free(c);
}
END_TEST

static const struct {
	const char *text;
	const char *want;
} bad_policyd[] = {
	{ "policyd = { listen = [ \"tcp:1\" ]; };", "is not unix:" },
	{ "policyd = { listen = [ \"unix:relative\" ]; };", "is not unix:" },
	{ "policyd = { listen = [ \"inet:127.0.0.1\" ]; };", "is not unix:" },
	{ "policyd = { listen = [ \"inet:127.0.0.1:0\" ]; };", "is not unix:" },
	{ "policyd = { listen = [ ]; };", "must name a socket" },
	{ "policyd = { lisen = [ \"unix:/x\" ]; };", "unknown setting" },
	{ "policyd = { socket_mode = \"777\"; };", "octal" },
	{ "policyd = { networks = [ \"10.0.0.0/33\" ]; };", "networks" },
	{ "policyd = { line_max = 10; };", "line_max" },
	{ "policyd = { line_max = 4096; request_max = 1024; };",
	    "must not exceed" },
	{ "policyd = 1;", "must be a group" },
};

START_TEST(policyd_conf_errors)
{
	char err[512];
	struct conf *c = conf_load_string("t.conf", bad_policyd[_i].text, err,
	    sizeof(err));

	ck_assert_msg(c == NULL, "accepted: %s", bad_policyd[_i].text);
	ck_assert_msg(strstr(err, bad_policyd[_i].want) != NULL,
	    "%s: got \"%s\", want \"%s\"", bad_policyd[_i].text, err,
	    bad_policyd[_i].want);
}
END_TEST

/* ---- golden files ----------------------------------------------------- */

static char *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[4096];
	size_t n;

	if (fp == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, n);
	fclose(fp);
	*len = b.len;
	return b.data != NULL ? buf_steal(&b) : calloc(1, 1);
}

/* golden_one - answer NAME.request as one pipelined stream */
static void
golden_one(const char *name)
{
	char path[1024], err[512], reply[DECIDE_REPLY_MAX];
	struct buf got = BUF_INIT;
	struct decide_txn *txn;
	struct decide *d;
	struct conf *conf;
	struct quota *q;
	struct proto *p = proto_new(NULL);
	char *in, *want;
	size_t len, wlen, off = 0, used_;
	FILE *fp;

	conf = conf_load(DATADIR "/golden.conf", err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	q = quota_open(&conf->quota, err, sizeof(err));
	ck_assert_msg(q != NULL, "%s", err);
	d = decide_new(conf, q);
	txn = decide_txn_new(d);
	snprintf(path, sizeof(path), "%s/%s.request", DATADIR, name);
	in = slurp(path, &len);
	ck_assert_msg(in != NULL, "cannot read %s", path);
	while (off < len) {
		enum proto_status st = proto_feed(p, in + off, len - off,
		    &used_, err, sizeof(err));

		off += used_;
		ck_assert_msg(st != PROTO_ERROR, "%s: %s", name, err);
		if (st != PROTO_REQUEST)
			continue;
		reply[0] = '\0';
		if (decide_request(txn, p, NOW, reply_into, reply, err,
		    sizeof(err)) < 0)
			buf_appends(&got, "(closed without a reply)\n");
		else {
			decide_wait(d);
			buf_appends(&got, reply);
		}
	}
	ck_assert_int_eq(proto_eof(p, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/%s.reply", DATADIR, name);
	if (getenv("POLICY_GOLDEN_WRITE") != NULL) {
		fp = fopen(path, "wb");
		ck_assert_ptr_nonnull(fp);
		fwrite(got.data ? got.data : "", 1, got.len, fp);
		fclose(fp);
	}
	want = slurp(path, &wlen);
	ck_assert_msg(want != NULL, "cannot read %s", path);
	ck_assert_msg(wlen == got.len && memcmp(want, got.data ? got.data :
	    "", wlen) == 0, "%s: got\n%s\nwant\n%s", name,
	    got.data ? got.data : "", want);
	free(want);
	free(in);
	buf_free(&got);
	proto_free(p);
	decide_txn_close(txn, NOW);
	decide_free(d);
	quota_close(q);
	conf_free(conf);
}

START_TEST(golden_files)
{
	DIR *d = opendir(DATADIR);
	struct dirent *e;
	char name[256];
	size_t n, count = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL) {
		n = strlen(e->d_name);
		if (n <= 8 || strcmp(e->d_name + n - 8, ".request") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 8), e->d_name);
		golden_one(name);
		count++;
	}
	closedir(d);
	ck_assert_uint_ge(count, 8);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("policy_decide");
	TCase *tc = tcase_create("decide");
	TCase *tg = tcase_create("golden");
	SRunner *sr;
	int nf;

	log_discard(getenv("POLICY_TEST_LOG") == NULL);
	tcase_add_test(tc, rcpt_over_limit_is_deferred_with_text);
	tcase_add_test(tc, eom_commits_reservations);
	tcase_add_test(tc, new_instance_releases_uncommitted);
	tcase_add_test(tc, connection_end_releases_uncommitted);
	tcase_add_test(tc, eom_recipient_count_settles_fewer);
	tcase_add_test(tc, eom_without_rcpt_admits_recipient_count);
	tcase_add_test(tc, data_then_eom_counts_message_once);
	tcase_add_test(tc, eom_refusal_releases_reservations);
	tcase_add_loop_test(tc, limit_actions_map_to_replies, 0,
	    (int)(sizeof(actions) / sizeof(actions[0])));
	tcase_add_test(tc, unusable_stages_answer_dunno_and_log_once);
	tcase_add_test(tc, missing_request_attribute_is_malformed);
	tcase_add_test(tc, time_is_passed_in);
	tcase_add_loop_test(tc, store_error_follows_on_error, 0, 2);
	tcase_add_test(tc, pipelined_rcpts_answer_when_the_batch_flushes);
	tcase_add_test(tc,
	    pipelined_batch_store_down_answers_each_per_on_error);
	tcase_add_loop_test(tc, failed_flush_answers_per_on_error, 0, 2);
	tcase_add_test(tc, failed_flush_keeps_earlier_reservations);
	tcase_add_test(tc, lmdb_turn_is_one_transaction);
	tcase_add_test(tc, eom_commits_share_the_turn);
	tcase_add_test(tc, lapsed_reservations_are_charged_at_the_end);
	tcase_add_test(tc, policyd_conf_defaults);
	tcase_add_loop_test(tc, policyd_conf_errors, 0,
	    (int)(sizeof(bad_policyd) / sizeof(bad_policyd[0])));
	tcase_set_timeout(tc, 30);
	tcase_add_test(tg, golden_files);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tg);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
