/*
 * store_redis - the quota store in Redis or Valkey (hiredis), for several
 * MTAs sharing one quota.  See store.h for the interface.
 *
 * Keys (standalone server or Sentinel master; not Redis Cluster, since
 * the scripts touch reservation keys they are not passed):
 *
 *   outpost:q:RKEY   a counter: struct quota_state in binary (BIN_TAG
 *                    below), with the buckets before its first and after
 *                    its last busy one left out (so a window counter
 *                    carries only its busy buckets).  Its TTL is
 *                    algo_expires() - now, so Redis drops it once it
 *                    holds nothing.
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
 * Connections: a pool of at most POOL_MAX connections, each used by one
 * thread at a time (mutex and condition variable), so the store is
 * thread-safe and threads do not wait on each other's round trips.
 * Every operation has a deadline of store.timeout_ms from its start:
 * waiting for a pooled connection, connecting, and each command's
 * socket timeout all count against it.  A connection that fails is
 * closed; the next operation connects again (at most once per
 * HOLDDOWN_MS after a failed connect, so a dead server costs each
 * caller at most one timeout, not one per pooled connection).  An idle
 * pooled connection found broken (server restarted) is replaced and
 * the command retried once, unless it timed out.  An admission that
 * timed out may still have run on the server (it counts then: the error
 * errs on the side of the limit).  SIGPIPE, when the program has not
 * ignored it, is blocked around each command.
 *
 * Lapsed reservations are refunded SWEEP_MAX at a time, oldest first, by
 * every run script, so one script never runs long however
 * many reservations lapse at once (a crashed MTA's); the rest follow with
 * the next scripts.  With the client clock (tests), put() sets no TTL:
 * the record's expiry is in the test's time, not the server's.
 *
 * URLs: see redis_url.h.
 */
#include "config.h"

#include <sys/time.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "quota/redis_run.h"
#include "quota/redis_url.h"
#include "quota/store.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define POOL_MAX	16
#define HOLDDOWN_MS	100
#define SWEEP_MAX	100
#define SCAN_COUNT	"512"
#define KEY_PREFIX	"outpost:"
#define QKEY_PREFIX	KEY_PREFIX "q:"
#define QKEY_MAX	(sizeof(QKEY_PREFIX) + QUOTA_RKEY_MAX)
#define DEFAULT_URL	"redis://127.0.0.1:6379/0"

/*
 * A counter's value (binary, little-endian): BIN_TAG, the double T0, the
 * index F of its first bucket and the number K of buckets kept (a byte
 * each), then K doubles N_F .. N_F+K-1 (the buckets before F and after
 * the last, all 0, left out).  A value that starts otherwise is not a
 * counter (read as none).  Binary because the scripts parse and print a
 * counter at every admission: with one window limit whose 61 buckets are all busy (a
 * sender active all hour), an admission cost redis-server 660,000
 * instructions with the text (string.gmatch, tonumber, string.format)
 * and 405,000 binary; 146,000 either way for a counter of one bucket
 * (callgrind).  The loops over a state's buckets then go by index when
 * its table is dense (dense(): #n >= 8, a busy window, whose binary
 * value becomes the table as it is) and by pairs() when it holds a few
 * buckets (most counters): 259,000 for the busy one, 146,000 for one.
 */
#define BIN_TAG		1
#define BIN_HFMT	"<dBB"
#define BIN_HDR		11

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

struct rconn {
	redisContext *c;
	long tmo_ms;		/* socket timeout set on c */
	struct rconn *next;
};

struct redis_store {
	struct quota_store base;
	struct redis_url url;	/* where, who, which database */
	long timeout_ms;
	int client_clock;
	int guard_pipe;		/* SIGPIPE not ignored: block it in I/O */
	char sha[NSCRIPT][41];

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct rconn *idle;	/* free connections (c may be NULL) */
	unsigned int nconn;
	int64_t down_until;	/* monotonic ms: no connect before */
	char down_err[256];
};

/* An operation in progress: its deadline and its connection. */
struct rop {
	struct redis_store *rs;
	int64_t deadline;	/* monotonic ms */
	struct rconn *rc;
	int fresh;		/* rc connected during this operation */
	char *err;
	size_t errlen;
};

/* rargs - an argument vector for redisCommandArgv */
struct rargs {
	size_t n, cap;
	const char **v;
	size_t *len;
	char (*num)[24];
};

/* rerr - "redis LABEL: reason" into err */
static int
rerr(struct redis_store *rs, char *err, size_t errlen, const char *fmt, ...)
    LOG_PRINTF(4, 5);

static int
rerr(struct redis_store *rs, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "redis %s: %s", rs->url.label, msg);
	return -1;
}

/* rargs_init - room for cap arguments */
static void
rargs_init(struct rargs *a, size_t cap)
{
	a->n = 0;
	a->cap = cap;
	a->v = xcalloc(cap, sizeof(*a->v));
	a->len = xcalloc(cap, sizeof(*a->len));
	a->num = xcalloc(cap, sizeof(*a->num));
}

/* rargs_add - one argument, borrowed */
static void
rargs_add(struct rargs *a, const char *s, size_t len)
{
	ASSERT(a->n < a->cap);
	a->v[a->n] = s;
	a->len[a->n] = len;
	a->n++;
}

/* rargs_adds - one NUL-terminated argument, borrowed */
static void
rargs_adds(struct rargs *a, const char *s)
{
	rargs_add(a, s, strlen(s));
}

/* rargs_addi - a signed number, formatted in place */
static void
rargs_addi(struct rargs *a, int64_t x)
{
	int len;

	ASSERT(a->n < a->cap);
	len = snprintf(a->num[a->n], sizeof(a->num[0]), "%" PRId64, x);
	rargs_add(a, a->num[a->n], (size_t)len);
}

/* rargs_addu - an unsigned number, formatted in place (no printf) */
static void
rargs_addu(struct rargs *a, uint64_t x)
{
	char tmp[24];
	size_t len = 0, i;

	ASSERT(a->n < a->cap);
	do {
		tmp[len++] = (char)('0' + x % 10);
		x /= 10;
	} while (x != 0);
	for (i = 0; i < len; i++)
		a->num[a->n][i] = tmp[len - 1 - i];
	a->num[a->n][len] = '\0';
	rargs_add(a, a->num[a->n], len);
}

/* rargs_free - release the vector (not the borrowed strings) */
static void
rargs_free(struct rargs *a)
{
	free(a->v);
	free(a->len);
	free(a->num);
	memset(a, 0, sizeof(*a));
}

/* tv_of - ms as a struct timeval (at least 1 ms) */
static struct timeval
tv_of(int64_t ms)
{
	struct timeval tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/* conn_close - drop the connection of rc (it is reconnected when next used) */
static void
conn_close(struct rconn *rc)
{
	if (rc->c != NULL)
		redisFree(rc->c);
	rc->c = NULL;
	rc->tmo_ms = 0;
}

/* conn_error - the hiredis error of rc's context as text, then close it */
static int
conn_error(struct rop *op)
{
	struct redisContext *c = op->rc->c;

	if (c->err == REDIS_ERR_IO && (errno == EAGAIN ||
	    errno == EWOULDBLOCK || errno == EINPROGRESS ||
	    strstr(c->errstr, "temporarily unavailable") != NULL))
		rerr(op->rs, op->err, op->errlen, "timed out (%ld ms)",
		    op->rs->timeout_ms);
	else if (c->err == REDIS_ERR_EOF)
		rerr(op->rs, op->err, op->errlen, "connection closed by "
		    "server");
	else
		rerr(op->rs, op->err, op->errlen, "%s", c->errstr[0] != '\0' ?
		    c->errstr : "I/O error");
	conn_close(op->rc);
	return -1;
}

/*
 * op_timeout - set the socket timeout of the connection to what is left
 * of the operation's time; -1 if none is left
 */
static int
op_timeout(struct rop *op)
{
	int64_t left = op->deadline - clock_mono_ms();

	if (left <= 0) {
		rerr(op->rs, op->err, op->errlen, "timed out (%ld ms)",
		    op->rs->timeout_ms);
		return -1;
	}
	/* a syscall pair per change: only when it drifts by 2 ms */
	if (left < op->rc->tmo_ms - 2 || left > op->rc->tmo_ms + 2) {
		if (redisSetTimeout(op->rc->c, tv_of(left)) != REDIS_OK)
			return conn_error(op);
		op->rc->tmo_ms = (long)left;
	}
	return 0;
}

/*
 * pipe_block/pipe_unblock - keep a write to a socket the server closed
 * from killing the process with SIGPIPE when the program has not ignored
 * it (the daemons do; a tool may not): block it in this thread around
 * the I/O, then drop one that the I/O raised.
 */
struct pipe_guard {
	int on;
	int was_pending;
	sigset_t old;
};

static void
pipe_block(const struct redis_store *rs, struct pipe_guard *g)
{
	sigset_t set, pend;

	g->on = rs->guard_pipe;
	if (!g->on)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	g->was_pending = sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void
pipe_unblock(struct pipe_guard *g)
{
	struct timespec zero = { 0, 0 };
	sigset_t set;
	int saved = errno;

	if (!g->on)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (!g->was_pending)
		while (sigtimedwait(&set, NULL, &zero) == -1 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = saved;
}

/*
 * command - send one command, return its reply; NULL with err on an I/O
 * error (connection closed) or an error reply (connection kept), and
 * *ioerr says which
 */
static redisReply *
command(struct rop *op, struct rargs *a, int *ioerr)
{
	struct pipe_guard g;
	redisReply *r;

	*ioerr = 1;
	if (op_timeout(op) == -1)
		return NULL;
	pipe_block(op->rs, &g);
	r = redisCommandArgv(op->rc->c, (int)a->n, a->v, a->len);
	pipe_unblock(&g);
	if (r == NULL) {
		conn_error(op);
		return NULL;
	}
	*ioerr = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		rerr(op->rs, op->err, op->errlen, "%.*s", (int)r->len, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* command_simple - a command of up to 3 words, reply freed; 0 or -1 */
static int
command_simple(struct rop *op, const char *w0, const char *w1,
    const char *w2)
{
	struct rargs a;
	redisReply *r;
	int ioerr;

	rargs_init(&a, 3);
	rargs_adds(&a, w0);
	if (w1 != NULL)
		rargs_adds(&a, w1);
	if (w2 != NULL)
		rargs_adds(&a, w2);
	r = command(op, &a, &ioerr);
	rargs_free(&a);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* load_script - SCRIPT LOAD script i; its digest must be ours */
static int
load_script(struct rop *op, int i)
{
	struct rargs a;
	redisReply *r;
	int ioerr;

	rargs_init(&a, 3);
	rargs_adds(&a, "SCRIPT");
	rargs_adds(&a, "LOAD");
	rargs_adds(&a, scripts[i]);
	r = command(op, &a, &ioerr);
	rargs_free(&a);
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_STRING || r->len != 40 ||
	    memcmp(r->str, op->rs->sha[i], 40) != 0) {
		freeReplyObject(r);
		return rerr(op->rs, op->err, op->errlen, "SCRIPT LOAD: "
		    "unexpected reply");
	}
	freeReplyObject(r);
	return 0;
}

/* conn_open - connect op->rc, log in, select the db, load the scripts */
static int
conn_open(struct rop *op)
{
	struct redis_store *rs = op->rs;
	struct rconn *rc = op->rc;
	int64_t now = clock_mono_ms(), left = op->deadline - now;
	int i;

	pthread_mutex_lock(&rs->mu);
	if (now < rs->down_until) {
		snprintf(op->err, op->errlen, "%s", rs->down_err);
		pthread_mutex_unlock(&rs->mu);
		return -1;
	}
	pthread_mutex_unlock(&rs->mu);
	if (left <= 0)
		return rerr(rs, op->err, op->errlen, "timed out (%ld ms)",
		    rs->timeout_ms);
	if (rs->url.unix_sock)
		rc->c = redisConnectUnixWithTimeout(rs->url.path, tv_of(left));
	else
		rc->c = redisConnectWithTimeout(rs->url.host, rs->url.port,
		    tv_of(left));
	if (rc->c == NULL) {
		rerr(rs, op->err, op->errlen, "out of memory");
		goto fail;
	}
	if (rc->c->err) {
		if (rc->c->err == REDIS_ERR_IO && errno == EINPROGRESS)
			rerr(rs, op->err, op->errlen, "connect timed out "
			    "(%ld ms)", rs->timeout_ms);
		else
			rerr(rs, op->err, op->errlen, "%s", rc->c->errstr);
		conn_close(rc);
		goto fail;
	}
	rc->tmo_ms = 0;
	op->fresh = 1;
	if (rs->url.password != NULL && command_simple(op, "AUTH",
	    rs->url.user != NULL ? rs->url.user : rs->url.password,
	    rs->url.user != NULL ? rs->url.password : NULL) == -1)
		goto fail_close;
	if (rs->url.db != 0) {
		char db[16];

		snprintf(db, sizeof(db), "%u", rs->url.db);
		if (command_simple(op, "SELECT", db, NULL) == -1)
			goto fail_close;
	}
	for (i = 0; i < NSCRIPT; i++)
		if (load_script(op, i) == -1)
			goto fail_close;
	return 0;
fail_close:
	conn_close(rc);
fail:
	pthread_mutex_lock(&rs->mu);
	rs->down_until = clock_mono_ms() + HOLDDOWN_MS;
	snprintf(rs->down_err, sizeof(rs->down_err), "%s", op->err);
	pthread_mutex_unlock(&rs->mu);
	return -1;
}

static void op_end(struct rop *);
static void redis_pipeline(struct quota_store *, struct quota_store_call *,
    size_t);

/* op_begin - take a pooled connection within the deadline */
static int
op_begin(struct rop *op, struct redis_store *rs, char *err, size_t errlen)
{
	struct timespec ts;

	memset(op, 0, sizeof(*op));
	op->rs = rs;
	op->err = err;
	op->errlen = errlen;
	op->deadline = clock_mono_ms() + rs->timeout_ms;
	ts.tv_sec = (time_t)(op->deadline / 1000);
	ts.tv_nsec = (long)(op->deadline % 1000) * 1000000;
	pthread_mutex_lock(&rs->mu);
	while (rs->idle == NULL && rs->nconn >= POOL_MAX) {
		if (pthread_cond_timedwait(&rs->cv, &rs->mu, &ts) ==
		    ETIMEDOUT && rs->idle == NULL) {
			pthread_mutex_unlock(&rs->mu);
			return rerr(rs, err, errlen, "no free connection "
			    "within %ld ms", rs->timeout_ms);
		}
	}
	if (rs->idle != NULL) {
		op->rc = rs->idle;
		rs->idle = op->rc->next;
	} else {
		op->rc = xcalloc(1, sizeof(*op->rc));
		rs->nconn++;
	}
	pthread_mutex_unlock(&rs->mu);
	op->rc->next = NULL;
	if (op->rc->c != NULL && op->rc->c->err)
		conn_close(op->rc);
	if (op->rc->c == NULL && conn_open(op) == -1) {
		op_end(op);
		return -1;
	}
	return 0;
}

/* op_end - give the connection back to the pool */
static void
op_end(struct rop *op)
{
	struct redis_store *rs = op->rs;

	if (op->rc == NULL)
		return;
	pthread_mutex_lock(&rs->mu);
	op->rc->next = rs->idle;
	rs->idle = op->rc;
	pthread_cond_signal(&rs->cv);
	pthread_mutex_unlock(&rs->mu);
	op->rc = NULL;
}

/*
 * run - one command (script < 0) or EVALSHA of scripts[script] (a->v[1]
 * is filled here) in its own operation; the reply, or NULL with err.
 * A reused connection that turns out broken is replaced and the command
 * sent once more; a timeout is never retried.
 */
static redisReply *
run(struct redis_store *rs, int script, struct rargs *a, char *err,
    size_t errlen)
{
	struct rop op;
	redisReply *r = NULL;
	int ioerr, tries;

	if (script >= 0) {
		a->v[1] = rs->sha[script];
		a->len[1] = 40;
	}
	if (op_begin(&op, rs, err, errlen) == -1)
		return NULL;
	for (tries = 0; tries < 2; tries++) {
		r = command(&op, a, &ioerr);
		if (r != NULL)
			break;
		if (!ioerr) {
			if (script < 0 || strstr(err, "NOSCRIPT") == NULL)
				break;
			/* the server forgot our scripts: load them again */
			if (load_script(&op, script) == -1)
				break;
			continue;
		}
		if (op.fresh || strstr(err, "timed out") != NULL)
			break;
		/* a pooled connection the server closed: replace it */
		if (conn_open(&op) == -1)
			break;
	}
	op_end(&op);
	return r;
}

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

/* qkey - the Redis key of a counter */
static int
qkey(const char *rkey, char *out, size_t outlen)
{
	const size_t plen = sizeof(QKEY_PREFIX) - 1;
	size_t len = strnlen(rkey, outlen);

	if (plen + len >= outlen)
		return -1;
	memcpy(out, QKEY_PREFIX, plen);
	memcpy(out + plen, rkey, len);
	out[plen + len] = '\0';
	return (int)(plen + len);
}

/* clock_arg - the now argument of the scripts: "" for the server's */
static void
clock_arg(struct redis_store *rs, struct rargs *a, int64_t now_ms)
{
	if (rs->client_clock)
		rargs_addi(a, now_ms);
	else
		rargs_add(a, "", 0);
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
	struct rargs a;
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
	rargs_init(&ra->a, 3 + nkeys + 2 + 3 * n);
	rargs_adds(&ra->a, "EVALSHA");
	rargs_add(&ra->a, rs->sha[SCRIPT_RUN], 40);
	rargs_addu(&ra->a, nkeys);
	for (i = 0; i < n; i++)
		for (j = 0; c[i].kind != QUOTA_CALL_RELEASE && j < c[i].n;
		    j++) {
			len = strlen(c[i].ops[j].rkey);
			memcpy(k, QKEY_PREFIX, plen);
			memcpy(k + plen, c[i].ops[j].rkey, len);
			rargs_add(&ra->a, k, plen + len);
			k += plen + len;
		}
	rargs_adds(&ra->a, KEY_PREFIX);
	clock_arg(rs, &ra->a, c[0].now_ms);
	p = ra->ops;
	for (i = 0; i < n; i++) {
		const unsigned char *start = p;

		rargs_adds(&ra->a, c[i].kind == QUOTA_CALL_ADMIT ? "A" :
		    c[i].kind == QUOTA_CALL_COMMIT ? "C" : "R");
		rargs_addu(&ra->a, c[i].token);
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
		rargs_add(&ra->a, (const char *)start, (size_t)(p - start));
	}
}

/* run_args_free - release what run_args made */
static void
run_args_free(struct runargs *ra)
{
	rargs_free(&ra->a);
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
			rerr(rs, c[i].err, sizeof(c[i].err), "%.*s",
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
		rerr(rs, c[i].err, sizeof(c[i].err), "run script: "
		    "unexpected reply");
	}
}

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
pipe_round(struct rop *op, struct quota_store_call *calls,
    unsigned char *todo, size_t n, size_t *got, int *noscript)
{
	size_t *span = xcalloc(n == 0 ? 1 : n, sizeof(*span));
	struct runargs ra;
	struct pipe_guard g;
	redisReply *r;
	size_t i, k;
	int rv, rc = 0;

	*got = 0;
	*noscript = 0;
	for (i = 0; i < n; i += span[i] ? span[i] : 1) {
		if (!todo[i])
			continue;
		span[i] = pipe_span(op->rs, calls, todo, i, n);
		run_args(op->rs, &calls[i], span[i], &ra);
		rv = redisAppendCommandArgv(op->rc->c, (int)ra.a.n, ra.a.v,
		    ra.a.len);
		run_args_free(&ra);
		if (rv != REDIS_OK) {
			for (k = i; k < i + span[i]; k++) {
				todo[k] = 0;
				calls[k].rc = -1;
				rerr(op->rs, calls[k].err,
				    sizeof(calls[k].err), "out of memory");
			}
			span[i] = 0;
		}
	}
	for (i = 0; i < n; i++) {
		if (span[i] == 0)
			continue;	/* not sent, or inside a run */
		if (op_timeout(op) == -1) {
			conn_close(op->rc);
			rc = -1;
			break;
		}
		pipe_block(op->rs, &g);
		rv = redisGetReply(op->rc->c, (void **)&r);
		pipe_unblock(&g);
		if (rv != REDIS_OK || r == NULL) {
			conn_error(op);
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
				rerr(op->rs, calls[k].err,
				    sizeof(calls[k].err), "%.*s",
				    (int)r->len, r->str);
			}
		}
		if (r->type != REDIS_REPLY_ERROR)
			run_parse(op->rs, r, &calls[i], span[i]);
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
	struct rop op;
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
	if (op_begin(&op, rs, err, sizeof(err)) == -1) {
		pipe_fail(calls, todo, n, err);
		goto out;
	}
	for (tries = 0; tries < 4; tries++) {
		if (pipe_round(&op, calls, todo, n, &got, &noscript) == -1) {
			if (got > 0 || op.fresh || retried ||
			    strstr(err, "timed out") != NULL)
				break;
			/* a pooled connection the server closed */
			retried = 1;
			if (conn_open(&op) == -1)
				break;
			continue;
		}
		if (!noscript)
			break;
		/* the server forgot our script: load it again */
		if (load_script(&op, SCRIPT_RUN) == -1)
			break;
	}
	pipe_fail(calls, todo, n, err[0] != '\0' ? err :
	    "redis: NOSCRIPT after loading the scripts");
	op_end(&op);
out:
	free(todo);
}

/* le_double - the little-endian double at p */
static double
le_double(const unsigned char *p)
{
	uint64_t bits = 0;
	double d;
	int i;

	for (i = 7; i >= 0; i--)
		bits = bits << 8 | p[i];
	memcpy(&d, &bits, sizeof(d));
	return d;
}

/* put_le_double - d at p, little-endian */
static void
put_le_double(unsigned char *p, double d)
{
	uint64_t bits;
	int i;

	memcpy(&bits, &d, sizeof(bits));
	for (i = 0; i < 8; i++, bits >>= 8)
		p[i] = (unsigned char)(bits & 0xff);
}

/* count_of - d as a count into *x; -1 if it is not a whole number >= 0 */
static int
count_of(double d, uint64_t *x)
{
	if (!(d >= 0 && d < 18446744073709551616.0) ||
	    d != (double)(uint64_t)d)
		return -1;
	*x = (uint64_t)d;
	return 0;
}

/* time_of - d as a time in ms into *t; -1 if it is not a whole number */
static int
time_of(double d, int64_t *t)
{
	if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) ||
	    d != (double)(int64_t)d)
		return -1;
	*t = (int64_t)d;
	return 0;
}

/* state_decode - a counter's value (BIN_TAG) into st; -1 if bad */
static int
state_decode(const char *s, size_t len, struct quota_state *st)
{
	const size_t nmax = sizeof(st->n) / sizeof(st->n[0]);
	const unsigned char *u = (const unsigned char *)s;
	size_t first, k, i;

	memset(st, 0, sizeof(*st));
	if (len < BIN_HDR || u[0] != BIN_TAG)
		return -1;
	first = u[9];
	k = u[10];
	if (first + k > nmax || len != BIN_HDR + 8 * k ||
	    time_of(le_double(u + 1), &st->t0) == -1)
		return -1;
	for (i = 0; i < k; i++)
		if (count_of(le_double(u + BIN_HDR + 8 * i),
		    &st->n[first + i]) == -1)
			return -1;
	return 0;
}

/*
 * state_encode - st as a counter's value (BIN_TAG: the buckets from the
 * first to the last that is not 0) into out, which has room for
 * STATE_MAX bytes; its length
 */
#define STATE_MAX (BIN_HDR + 8 * (CONF_QBUCKETS_MAX + 1))
static size_t
state_encode(const struct quota_state *st, unsigned char *out)
{
	const int nmax = (int)(sizeof(st->n) / sizeof(st->n[0]));
	int i, first = -1, last = -1;
	size_t len = BIN_HDR;

	for (i = 0; i < nmax; i++)
		if (st->n[i] != 0) {
			if (first < 0)
				first = i;
			last = i;
		}
	out[0] = BIN_TAG;
	put_le_double(out + 1, (double)st->t0);
	out[9] = (unsigned char)(first < 0 ? 0 : first);
	out[10] = (unsigned char)(first < 0 ? 0 : last - first + 1);
	for (i = first; first >= 0 && i <= last; i++, len += 8)
		put_le_double(out + len, (double)st->n[i]);
	return len;
}

/* redis_get - one counter's state (GET), *found = 0 if none */
static int
redis_get(struct quota_store *s, const char *rkey, struct quota_state *st,
    int *found, char *err, size_t errlen)
{
	struct redis_store *rs = (struct redis_store *)s;
	char key[QKEY_MAX];
	struct rargs a;
	redisReply *r;
	int len;

	*found = 0;
	memset(st, 0, sizeof(*st));
	if ((len = qkey(rkey, key, sizeof(key))) == -1) {
		snprintf(err, errlen, "redis: key too long");
		return -1;
	}
	rargs_init(&a, 2);
	rargs_adds(&a, "GET");
	rargs_add(&a, key, (size_t)len);
	r = run(rs, -1, &a, err, errlen);
	rargs_free(&a);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_STRING &&
	    state_decode(r->str, r->len, st) == 0)
		*found = 1;
	else
		memset(st, 0, sizeof(*st));
	freeReplyObject(r);
	return 0;
}

/*
 * redis_put - SET with the expiry as an absolute server time (PXAT);
 * with the client clock (tests) the time is not the server's, so the
 * record gets no TTL (the next admission on it sets one).
 */
static int
redis_put(struct quota_store *s, const char *rkey,
    const struct quota_state *st, int64_t expires_ms, char *err,
    size_t errlen)
{
	struct redis_store *rs = (struct redis_store *)s;
	char key[QKEY_MAX];
	unsigned char val[STATE_MAX];
	struct rargs a;
	redisReply *r;
	int len;

	if ((len = qkey(rkey, key, sizeof(key))) == -1) {
		snprintf(err, errlen, "redis: key too long");
		return -1;
	}
	rargs_init(&a, 5);
	rargs_adds(&a, "SET");
	rargs_add(&a, key, (size_t)len);
	rargs_add(&a, (const char *)val, state_encode(st, val));
	if (!rs->client_clock && expires_ms > 0) {
		rargs_adds(&a, "PXAT");
		rargs_addi(&a, expires_ms);
	}
	r = run(rs, -1, &a, err, errlen);
	rargs_free(&a);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* redis_del - remove one counter (DEL) */
static int
redis_del(struct quota_store *s, const char *rkey, char *err, size_t errlen)
{
	struct redis_store *rs = (struct redis_store *)s;
	char key[QKEY_MAX];
	struct rargs a;
	redisReply *r;
	int len;

	if ((len = qkey(rkey, key, sizeof(key))) == -1) {
		snprintf(err, errlen, "redis: key too long");
		return -1;
	}
	rargs_init(&a, 2);
	rargs_adds(&a, "DEL");
	rargs_add(&a, key, (size_t)len);
	r = run(rs, -1, &a, err, errlen);
	rargs_free(&a);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/*
 * redis_iterate - SCAN over outpost:q:*, a page at a time, each page's
 * values read with one MGET; a record gone in between is skipped.  Each
 * command is its own operation, with its own timeout.
 */
static int
redis_iterate(struct quota_store *s, int (*fn)(const char *rkey,
    const struct quota_state *st, void *arg), void *arg, char *err,
    size_t errlen)
{
	struct redis_store *rs = (struct redis_store *)s;
	char cursor[32] = "0", rkey[QUOTA_RKEY_MAX];
	const size_t plen = sizeof(QKEY_PREFIX) - 1;
	struct quota_state st;
	struct rargs a;
	redisReply *r, *v, *keys;
	size_t i;
	int stop = 0;

	do {
		rargs_init(&a, 6);
		rargs_adds(&a, "SCAN");
		rargs_adds(&a, cursor);
		rargs_adds(&a, "MATCH");
		rargs_adds(&a, QKEY_PREFIX "*");
		rargs_adds(&a, "COUNT");
		rargs_adds(&a, SCAN_COUNT);
		r = run(rs, -1, &a, err, errlen);
		rargs_free(&a);
		if (r == NULL)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return rerr(rs, err, errlen, "SCAN: unexpected reply");
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len);
		cursor[r->element[0]->len] = '\0';
		keys = r->element[1];
		if (keys->elements == 0) {
			freeReplyObject(r);
			continue;
		}
		rargs_init(&a, 1 + keys->elements);
		rargs_adds(&a, "MGET");
		for (i = 0; i < keys->elements; i++) {
			if (keys->element[i]->type != REDIS_REPLY_STRING) {
				rargs_free(&a);
				freeReplyObject(r);
				return rerr(rs, err, errlen, "SCAN: "
				    "unexpected reply");
			}
			rargs_add(&a, keys->element[i]->str,
			    keys->element[i]->len);
		}
		v = run(rs, -1, &a, err, errlen);
		rargs_free(&a);
		if (v == NULL) {
			freeReplyObject(r);
			return -1;
		}
		if (v->type != REDIS_REPLY_ARRAY ||
		    v->elements != keys->elements) {
			freeReplyObject(v);
			freeReplyObject(r);
			return rerr(rs, err, errlen, "MGET: unexpected reply");
		}
		for (i = 0; i < v->elements && !stop; i++) {
			const redisReply *k = keys->element[i];
			size_t klen = k->len - plen;

			if (v->element[i]->type != REDIS_REPLY_STRING ||
			    k->len <= plen || klen >= sizeof(rkey) ||
			    memchr(k->str, '\0', k->len) != NULL ||
			    state_decode(v->element[i]->str,
			    v->element[i]->len, &st) == -1)
				continue;
			memcpy(rkey, k->str + plen, klen);
			rkey[klen] = '\0';
			stop = fn(rkey, &st, arg) != 0;
		}
		freeReplyObject(v);
		freeReplyObject(r);
	} while (!stop && strcmp(cursor, "0") != 0);
	return 0;
}

/* redis_close - close every pooled connection and free the store */
static void
redis_close(struct quota_store *s)
{
	struct redis_store *rs = (struct redis_store *)s;
	struct rconn *rc, *next;

	if (rs == NULL)
		return;
	for (rc = rs->idle; rc != NULL; rc = next) {
		next = rc->next;
		conn_close(rc);
		free(rc);
	}
	pthread_cond_destroy(&rs->cv);
	pthread_mutex_destroy(&rs->mu);
	redis_url_clear(&rs->url);
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

/* sha1_hex - the SHA-1 of s in hex, as Redis names scripts */
static int
sha1_hex(const char *s, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return -1;
	for (i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/*
 * store_redis_open - parse the URL and try one connection, so that a
 * wrong URL or password shows at start-up; a server that is down is not
 * an error here (the store connects when it is used).
 */
struct quota_store *
store_redis_open(const struct conf *conf, char *err, size_t errlen)
{
	struct redis_store *rs;
	struct sigaction sa;
	pthread_condattr_t ca;
	char cerr[256];
	struct rop op;
	int i;

	rs = xcalloc(1, sizeof(*rs));
	rs->base.ops = &redis_ops;
	rs->base.conf = conf;
	rs->timeout_ms = conf->store.timeout_ms > 0 ?
	    (long)conf->store.timeout_ms : 1000;
	pthread_mutex_init(&rs->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rs->cv, &ca);
	pthread_condattr_destroy(&ca);
	rs->guard_pipe = sigaction(SIGPIPE, NULL, &sa) == -1 ||
	    sa.sa_handler != SIG_IGN;
	if (redis_url_parse(&rs->url, conf->store.url != NULL ? conf->store.url :
	    DEFAULT_URL, err, errlen) == -1)
		goto fail;
	for (i = 0; i < NSCRIPT; i++)
		if (sha1_hex(scripts[i], rs->sha[i]) == -1) {
			snprintf(err, errlen, "redis: SHA-1 unavailable");
			goto fail;
		}
	if (op_begin(&op, rs, cerr, sizeof(cerr)) == -1)
		log_warnx("quota store: %s (will retry)", cerr);
	else
		op_end(&op);
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
