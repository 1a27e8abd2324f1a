/*
 * store_redis - the quota store in Redis or Valkey (hiredis), for several
 * MTAs sharing one quota.  See store.h for the interface.
 *
 * Keys (standalone server or Sentinel master; not Redis Cluster, since
 * the scripts touch reservation keys they are not passed):
 *
 *   outpost:q:RKEY   a counter: struct quota_state in binary (BIN_TAG
 *                    in store_redis_impl.h), with the buckets before
 *                    its first and after its last busy one left out (so
 *                    a window counter carries only its busy buckets).
 *                    Its TTL is algo_expires() - now, so Redis drops it
 *                    once it holds nothing.
 *   outpost:res      the reservations: a hash from token to a record of
 *                    what it charged where, to refund it (binary: the
 *                    time of the charge, then for each counter its key
 *                    and the limit as it was then, as the run script's
 *                    OPS carry it).
 *   outpost:rexp     the sorted set of reservation tokens by the time
 *                    they lapse (ms), and SENTINEL, which never lapses.
 *
 * Every call (admit, commit, release) runs inside ONE EVALSHA of the run
 * script, so it is atomic on the server whatever number of MTAs,
 * processes and threads admit at once: the script refunds lapsed
 * reservations (at most SWEEP_MAX per script, found in outpost:rexp),
 * then, for an admission, reads every counter, runs the checks, and
 * charges all of them or none, then records the reservation; for a
 * commit or release, drops or refunds the reservation.  The script
 * mirrors quota/algo.c function by function (algo_check, algo_charge,
 * algo_refund, algo_expires), in integer arithmetic.  The numbers of
 * the ops travel as binary doubles (struct.unpack), not decimal text.
 *
 * Runs (store.h, redis_pipeline): a pipeline's calls go out in one
 * write, a run of up to RUN_CALLS consecutive calls (RUN_KEYS counters)
 * as ONE EVALSHA, and the answers are read in order.  The script makes
 * the calls of a run one after the other, each checking and charging as
 * if alone and seeing those before it, and the whole run is atomic (no
 * other client's command runs in between); the per-script costs (the
 * script's setup, TIME, the sweep) are paid once per run.  Each call
 * gets its own verdict or error (a reservation token in use fails that
 * call only).  A run fails as a whole when its answer does not come
 * (connection lost, timeout: every call of the run gets the error, and,
 * as with a single admission that timed out, the run may still have been
 * applied on the server) or is an error (a script error: the calls of
 * the run before the faulty one may have been applied, as Redis does not
 * roll a script back); the runs before it in the pipeline keep their
 * answers.  The script is sent with SCRIPT LOAD when a connection is
 * made and run with EVALSHA; on NOSCRIPT (the server restarted or
 * SCRIPT FLUSH) it is loaded again and the run sent once more.
 *
 * Clock: the scripts read the server's clock (TIME), so the MTAs that
 * share a server agree on time whatever their own clocks say; now_ms
 * passed in is not used (store_redis_client_clock() makes it used, for
 * tests).  Calendar limits: Lua in Redis has no time zones, so the
 * caller passes the local day or month (tz_period() on its own clock)
 * as op->period, and the script counts in that period, with the
 * server's clock for everything else.  Around local midnight a host
 * whose clock is off by d counts up to d of traffic in the neighbouring
 * day; keep the MTA clocks synchronised (NTP).
 *
 * Numbers: Lua 5.1 numbers are doubles, so counts and times are exact up
 * to 2^53 (9e15: 285,000 years of milliseconds, 9 PB of bytes); an
 * unlimited limit travels as -1.
 *
 * Connections: redis_conn.c, a pool of connections, each used by one
 * thread at a time, so the store is thread-safe and threads do not wait
 * on each other's round trips; every operation has a deadline of
 * store.timeout_ms.  An idle pooled connection found broken (server
 * restarted) is replaced and the command retried once, unless it timed
 * out.  An admission that timed out may still have run on the server
 * (it counts then: the error errs on the side of the limit).
 *
 * Lapsed reservations are refunded SWEEP_MAX at a time, oldest first, by
 * every run script, so one script never runs long however
 * many reservations lapse at once (a crashed MTA's); the rest follow with
 * the next scripts.
 *
 * Counters one at a time, for outpostctl and quota_used() (get, put,
 * del, iterate): store_redis_admin.c.  URLs: see redis_url.h.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "quota/redis_conn.h"
#include "quota/redis_run.h"
#include "quota/store.h"
#include "quota/store_redis_impl.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define SWEEP_MAX	100
#define DEFAULT_URL	"redis://127.0.0.1:6379/0"

/*
 * The run script is quota/redis_run.lua (its arguments, answer and
 * reservation record are described there), embedded at build time as
 * REDIS_RUN_LUA, after the constants it shares with this file.  An op
 * travels as NARG_OP little-endian doubles.
 */
#define NARG_OP 11
#define OP_BYTES (8 * NARG_OP)
/*
 * A member of outpost:rexp that never lapses (score +inf), longer than
 * Redis keeps in a listpack (zset-max-listpack-value, 64), so that the
 * set is a skiplist: a listpack is searched from its start by every
 * ZADD, ZSCORE and ZREM (with a hundred reservations in flight, ZADD
 * took 17% of the server's instructions).
 */
#define SENTINEL "outpost: a member of more than 64 bytes keeps this set " \
	"a skiplist, not a listpack"
#define XSTR(x) STR(x)
#define STR(x) #x
static const char lua_run[] =
"local BIN_TAG, BIN_HDR, BIN_HFMT = " XSTR(BIN_TAG) ", " XSTR(BIN_HDR)
	", '" BIN_HFMT "'\n"
"local OP_BYTES, SWEEP_MAX = " XSTR(OP_BYTES) ", " XSTR(SWEEP_MAX) "\n"
"local SENTINEL = '" SENTINEL "'\n"
REDIS_RUN_LUA;

enum {
	SCRIPT_RUN,
	NSCRIPT,
};

static const char *const scripts[NSCRIPT] = { lua_run };

/* int_at - element i of an array reply as a number, or -1 */
static int
int_at(const redisReply *r, size_t i, long long *out)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	*out = r->element[i]->integer;
	return 0;
}

/* clock_arg - the now argument of the scripts: "" for the server's */
static void
clock_arg(struct redis_store *rs, struct redis_args *a, int64_t now_ms)
{
	if (rs->client_clock)
		redis_args_addi(a, now_ms);
	else
		redis_args_add(a, "", 0);
}

/* put_double - x as 8 little-endian bytes of an IEEE double at p */
static unsigned char *
put_double(unsigned char *p, double x)
{
	uint64_t u;
	int i;

	memcpy(&u, &x, sizeof(u));
	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(u >> (8 * i));
	return p + 8;
}

/* put_limit - a limit value: -1 when unlimited */
static unsigned char *
put_limit(unsigned char *p, uint64_t x)
{
	return put_double(p, x == QUOTA_UNLIMITED ? -1.0 : (double)x);
}

#define RUN_CALLS	64	/* calls in one run script at most */
#define RUN_KEYS	256	/* counters in one run script at most */

/* The arguments of one run script and the memory they borrow. */
struct runargs {
	struct redis_args a;
	char *keys;		/* the counter keys, one after the other */
	unsigned char *ops;
};

/*
 * run_args - the EVALSHA of the run script for the calls c[0..n) (their
 * keys fit: redis_pipeline checked), digest in a.v[1]; free with
 * run_args_free
 */
static void
run_args(struct redis_store *rs, const struct quota_store_call *c,
    size_t n, struct runargs *ra)
{
	const size_t plen = sizeof(QKEY_PREFIX) - 1;
	size_t i, j, nkeys = 0, nops = 0, kbytes = 0, len;
	unsigned char *p;
	char *k;

	for (i = 0; i < n; i++)
		if (c[i].kind != QUOTA_CALL_RELEASE) {
			nkeys += c[i].n;
			nops += 8 + OP_BYTES * c[i].n;
			for (j = 0; j < c[i].n; j++)
				kbytes += plen + strlen(c[i].ops[j].rkey);
		}
	ra->keys = k = xmalloc(kbytes == 0 ? 1 : kbytes);
	ra->ops = xmalloc(nops == 0 ? 1 : nops);
	redis_args_init(&ra->a, 3 + nkeys + 2 + 3 * n);
	redis_args_adds(&ra->a, "EVALSHA");
	redis_args_add(&ra->a, rs->pool.sha[SCRIPT_RUN], 40);
	redis_args_addu(&ra->a, nkeys);
	for (i = 0; i < n; i++)
		for (j = 0; c[i].kind != QUOTA_CALL_RELEASE && j < c[i].n;
		    j++) {
			len = strlen(c[i].ops[j].rkey);
			memcpy(k, QKEY_PREFIX, plen);
			memcpy(k + plen, c[i].ops[j].rkey, len);
			redis_args_add(&ra->a, k, plen + len);
			k += plen + len;
		}
	redis_args_adds(&ra->a, KEY_PREFIX);
	clock_arg(rs, &ra->a, c[0].now_ms);
	p = ra->ops;
	for (i = 0; i < n; i++) {
		const unsigned char *start = p;

		redis_args_adds(&ra->a, c[i].kind == QUOTA_CALL_ADMIT ? "A" :
		    c[i].kind == QUOTA_CALL_COMMIT ? "C" : "R");
		redis_args_addu(&ra->a, c[i].token);
		if (c[i].kind == QUOTA_CALL_RELEASE)
			continue;
		p = put_double(p, c[i].expires_ms - c[i].now_ms > 0 ?
		    (double)(c[i].expires_ms - c[i].now_ms) : 1.0);
		for (j = 0; j < c[i].n; j++) {
			const struct quota_op *o = &c[i].ops[j];
			const struct conf_limit *l = o->limit;

			p = put_double(p, (double)l->kind);
			p = put_double(p, (double)l->period * 1000.0);
			p = put_double(p, (double)l->buckets);
			p = put_limit(p, l->limit);
			p = put_double(p, (double)l->burst);
			p = put_double(p, (double)o->period.start_ms);
			p = put_double(p, (double)o->period.end_ms);
			p = put_double(p, l->month ? 1.0 : 0.0);
			p = put_limit(p, o->eff_limit);
			p = put_double(p, (double)o->amount);
			p = put_double(p, o->warn_only ? 1.0 : 0.0);
		}
		redis_args_add(&ra->a, (const char *)start,
		    (size_t)(p - start));
	}
}

/* run_args_free - release what run_args made */
static void
run_args_free(struct runargs *ra)
{
	redis_args_free(&ra->a);
	free(ra->keys);
	free(ra->ops);
	ra->keys = NULL;
	ra->ops = NULL;
}

/*
 * run_parse - the run script's reply r into the calls c[0..n): each
 * gets its rc (and err, results); a reply that does not fit fails the
 * calls from where it stops fitting
 */
static void
run_parse(struct redis_store *rs, const redisReply *r,
    struct quota_store_call *c, size_t n)
{
	size_t i, j, at = 1;
	long long x;

	for (i = 0; i < n; i++) {
		c[i].rc = -1;
		if (int_at(r, at, &x) == -1)
			goto bad;
		if (c[i].kind == QUOTA_CALL_RELEASE) {
			c[i].rc = 0;
			at++;
			continue;
		}
		if (x == -1) {
			const redisReply *m;

			if (at + 1 >= r->elements ||
			    (m = r->element[at + 1])->type !=
			    REDIS_REPLY_STRING)
				goto bad;
			redis_err(&rs->pool, c[i].err, sizeof(c[i].err), "%.*s",
			    (int)m->len, m->str);
			at += 2;
			continue;
		}
		for (j = 0; j < c[i].n; j++) {
			struct quota_check *ck = &c[i].res[j].check;
			long long ad, used, retry;

			if (int_at(r, at + 1 + 3 * j, &ad) == -1 ||
			    int_at(r, at + 2 + 3 * j, &used) == -1 ||
			    int_at(r, at + 3 + 3 * j, &retry) == -1)
				goto bad;
			memset(ck, 0, sizeof(*ck));
			ck->admit = ad == 1;
			ck->used = used < 0 ? 0 : (uint64_t)used;
			ck->retry_ms = retry < 0 ? 0 : (uint64_t)retry;
		}
		c[i].admitted = x == 1;
		c[i].rc = 0;
		at += 1 + 3 * c[i].n;
	}
	if (at == r->elements)
		return;
	i = n - 1;	/* more than asked: the last call is suspect */
bad:
	for (; i < n; i++) {
		c[i].rc = -1;
		c[i].admitted = 0;
		redis_err(&rs->pool, c[i].err, sizeof(c[i].err), "run script: "
		    "unexpected reply");
	}
}

static void redis_pipeline(struct quota_store *, struct quota_store_call *,
    size_t);

/* one_call - a pipeline of one call, its outcome into err */
static int
one_call(struct redis_store *rs, struct quota_store_call *c, char *err,
    size_t errlen)
{
	redis_pipeline(&rs->base, c, 1);
	if (c->rc == -1)
		snprintf(err, errlen, "%s", c->err);
	return c->rc;
}

/* redis_admit - one run script of one admission; see store.h */
static int
redis_admit(struct quota_store *s, const struct quota_op *ops, size_t n,
    int64_t now_ms, uint64_t token, int64_t expires_ms,
    struct quota_op_result *res, int *admitted, char *err, size_t errlen)
{
	struct quota_store_call c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.kind = QUOTA_CALL_ADMIT;
	c.ops = ops;
	c.n = n;
	c.now_ms = now_ms;
	c.token = token;
	c.expires_ms = expires_ms;
	c.res = res;
	rc = one_call((struct redis_store *)s, &c, err, errlen);
	*admitted = rc == 0 && c.admitted;
	return rc;
}

/* redis_commit - make a reservation final; see store.h */
static int
redis_commit(struct quota_store *s, uint64_t token, const struct quota_op *ops,
    size_t n, int64_t now_ms, struct quota_op_result *res, int *admitted,
    char *err, size_t errlen)
{
	struct quota_store_call c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.kind = QUOTA_CALL_COMMIT;
	c.ops = ops;
	c.n = n;
	c.now_ms = now_ms;
	c.token = token;
	c.expires_ms = now_ms + 1;
	c.res = res;
	rc = one_call((struct redis_store *)s, &c, err, errlen);
	*admitted = rc == 0 && c.admitted;
	return rc;
}

/* redis_release - refund a reservation; see store.h */
static int
redis_release(struct quota_store *s, uint64_t token, int64_t now_ms,
    char *err, size_t errlen)
{
	struct quota_store_call c;

	if (token == 0)
		return 0;
	memset(&c, 0, sizeof(c));
	c.kind = QUOTA_CALL_RELEASE;
	c.token = token;
	c.now_ms = now_ms;
	return one_call((struct redis_store *)s, &c, err, errlen);
}

/* pipe_fail - every call still to send (todo) fails with err */
static void
pipe_fail(struct quota_store_call *calls, unsigned char *todo, size_t n,
    const char *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (todo[i]) {
			todo[i] = 0;
			calls[i].rc = -1;
			snprintf(calls[i].err, sizeof(calls[i].err), "%s", err);
		}
}

/*
 * pipe_span - how many calls from i on go in one run script: those
 * still to send that follow it, up to RUN_CALLS calls and RUN_KEYS
 * counters, and with the client clock (tests) only those of one time
 */
static size_t
pipe_span(const struct redis_store *rs, const struct quota_store_call *calls,
    const unsigned char *todo, size_t i, size_t n)
{
	size_t j = i + 1, keys;

	keys = calls[i].kind != QUOTA_CALL_RELEASE ? calls[i].n : 0;
	while (j < n && j - i < RUN_CALLS && todo[j] &&
	    (!rs->client_clock || calls[j].now_ms == calls[i].now_ms)) {
		if (calls[j].kind != QUOTA_CALL_RELEASE) {
			if (keys + calls[j].n > RUN_KEYS)
				break;
			keys += calls[j].n;
		}
		j++;
	}
	return j - i;
}

/*
 * pipe_round - send the calls marked in todo at once, a run script per
 * span, then read the answers in order; the calls of a span answered are
 * unmarked (done, their rc set), those of a span answered NOSCRIPT stay
 * marked and set *noscript.  0, or -1 with op->err on an I/O error (the
 * connection is closed; *got says how many answers came before it).
 */
static int
pipe_round(struct redis_store *rs, struct redis_op *op,
    struct quota_store_call *calls,
    unsigned char *todo, size_t n, size_t *got, int *noscript)
{
	size_t *span = xcalloc(n == 0 ? 1 : n, sizeof(*span));
	struct runargs ra;
	struct redis_pipe_guard g;
	redisReply *r;
	size_t i, k;
	int rv, rc = 0;

	*got = 0;
	*noscript = 0;
	for (i = 0; i < n; i += span[i] ? span[i] : 1) {
		if (!todo[i])
			continue;
		span[i] = pipe_span(rs, calls, todo, i, n);
		run_args(rs, &calls[i], span[i], &ra);
		rv = redisAppendCommandArgv(op->rc->c, (int)ra.a.n, ra.a.v,
		    ra.a.len);
		run_args_free(&ra);
		if (rv != REDIS_OK) {
			for (k = i; k < i + span[i]; k++) {
				todo[k] = 0;
				calls[k].rc = -1;
				redis_err(op->pool, calls[k].err,
				    sizeof(calls[k].err), "out of memory");
			}
			span[i] = 0;
		}
	}
	for (i = 0; i < n; i++) {
		if (span[i] == 0)
			continue;	/* not sent, or inside a run */
		if (redis_op_timeout(op) == -1) {
			redis_conn_close(op->rc);
			rc = -1;
			break;
		}
		redis_pipe_block(op->pool, &g);
		rv = redisGetReply(op->rc->c, (void **)&r);
		redis_pipe_unblock(&g);
		if (rv != REDIS_OK || r == NULL) {
			redis_conn_error(op);
			rc = -1;
			break;
		}
		(*got)++;
		if (r->type == REDIS_REPLY_ERROR &&
		    strstr(r->str, "NOSCRIPT") != NULL) {
			*noscript = 1;
			freeReplyObject(r);
			continue;
		}
		for (k = i; k < i + span[i]; k++) {
			todo[k] = 0;
			if (r->type == REDIS_REPLY_ERROR) {
				calls[k].rc = -1;
				redis_err(op->pool, calls[k].err,
				    sizeof(calls[k].err), "%.*s",
				    (int)r->len, r->str);
			}
		}
		if (r->type != REDIS_REPLY_ERROR)
			run_parse(rs, r, &calls[i], span[i]);
		freeReplyObject(r);
	}
	free(span);
	return rc;
}

/*
 * redis_pipeline - see store.h: the calls go out in one write, a run
 * script for each span of them (pipe_span), and the answers are read in
 * order, on one pooled connection within one deadline of
 * store.timeout_ms.  A pooled connection that turns out broken before
 * any answer came is replaced and the calls sent once more (not after a
 * timeout), and the spans answered NOSCRIPT are sent again after the
 * script is loaded (then after the spans of the pipeline that did run:
 * only when another client loaded a script in between can two calls
 * change places).
 */
static void
redis_pipeline(struct quota_store *s, struct quota_store_call *calls,
    size_t n)
{
	struct redis_store *rs = (struct redis_store *)s;
	unsigned char *todo = xcalloc(n == 0 ? 1 : n, 1);
	char err[256];
	struct redis_op op;
	size_t i, j;
	size_t got;
	int noscript, tries, retried = 0;

	err[0] = '\0';
	for (i = 0; i < n; i++) {
		struct quota_store_call *c = &calls[i];

		c->rc = 0;
		c->err[0] = '\0';
		c->admitted = 0;
		if (c->kind == QUOTA_CALL_COMMIT && c->token == 0) {
			c->admitted = 1;	/* nothing to commit */
			continue;
		}
		if (c->kind != QUOTA_CALL_RELEASE) {
			if (c->n > 0)
				memset(c->res, 0, c->n * sizeof(*c->res));
			for (j = 0; j < c->n; j++)
				if (strnlen(c->ops[j].rkey, QUOTA_RKEY_MAX) ==
				    QUOTA_RKEY_MAX)
					break;
			if (j < c->n || c->n > RUN_KEYS) {
				c->rc = -1;
				snprintf(c->err, sizeof(c->err), "redis: %s",
				    j < c->n ? "key too long" :
				    "too many limits");
				continue;
			}
		} else if (c->token == 0)
			continue;	/* nothing to settle */
		todo[i] = 1;
	}
	if (redis_op_begin(&op, &rs->pool, err, sizeof(err)) == -1) {
		pipe_fail(calls, todo, n, err);
		goto out;
	}
	for (tries = 0; tries < 4; tries++) {
		if (pipe_round(rs, &op, calls, todo, n, &got,
		    &noscript) == -1) {
			if (got > 0 || op.fresh || retried ||
			    strstr(err, "timed out") != NULL)
				break;
			/* a pooled connection the server closed */
			retried = 1;
			if (redis_conn_open(&op) == -1)
				break;
			continue;
		}
		if (!noscript)
			break;
		/* the server forgot our script: load it again */
		if (redis_load_script(&op, SCRIPT_RUN) == -1)
			break;
	}
	pipe_fail(calls, todo, n, err[0] != '\0' ? err :
	    "redis: NOSCRIPT after loading the scripts");
	redis_op_end(&op);
out:
	free(todo);
}


/* redis_close - close every pooled connection and free the store */
static void
redis_close(struct quota_store *s)
{
	struct redis_store *rs = (struct redis_store *)s;

	if (rs == NULL)
		return;
	redis_pool_free(&rs->pool);
	free(rs);
}

static const struct quota_store_ops redis_ops = {
	"redis",
	redis_admit,
	redis_commit,
	redis_release,
	redis_get,
	redis_put,
	redis_del,
	redis_iterate,
	redis_close,
	NULL,		/* no batches: one script per call */
	NULL,
	redis_pipeline,
};

/*
 * store_redis_open - parse the URL and try one connection, so that a
 * wrong URL or password shows at start-up; a server that is down is not
 * an error here (the store connects when it is used).
 */
struct quota_store *
store_redis_open(const struct conf_quota *conf, char *err, size_t errlen)
{
	struct redis_store *rs;
	char cerr[256];
	struct redis_op op;

	rs = xcalloc(1, sizeof(*rs));
	rs->base.ops = &redis_ops;
	rs->base.conf = conf;
	if (redis_pool_init(&rs->pool, conf->store.url != NULL ?
	    conf->store.url : DEFAULT_URL, conf->store.timeout_ms > 0 ?
	    (long)conf->store.timeout_ms : 1000, scripts, NSCRIPT, err,
	    errlen) == -1)
		goto fail;
	if (redis_op_begin(&op, &rs->pool, cerr, sizeof(cerr)) == -1)
		log_warnx("quota store: %s (will retry)", cerr);
	else
		redis_op_end(&op);
	return &rs->base;
fail:
	redis_close(&rs->base);
	return NULL;
}

/* store_redis_client_clock - see store.h */
void
store_redis_client_clock(struct quota_store *s, int on)
{
	struct redis_store *rs = (struct redis_store *)s;

	if (s != NULL && s->ops == &redis_ops)
		rs->client_clock = on != 0;
}
