/*
 * check_quota_store - ONE behaviour suite for every quota store (store.h):
 * memory, LMDB (a file in a temporary directory) and Redis (a real
 * redis-server this program starts on a free loopback port, in a
 * temporary directory).  Each backend is a Check suite holding the same
 * TCases; a TCase's test runs with _i = the backend's index in backends[].
 *
 * If redis-server cannot be started, every Redis case FAILS with the
 * reason: a missing server must never pass as skipped.
 *
 * Time: the stores run on the time passed in (the Redis store too, after
 * store_redis_client_clock()), so most cases drive a virtual clock.  The
 * *_real_clock cases use the wall clock and the Redis server's own
 * clock, and sleep a few seconds.
 */
#include "config.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf_quota.h"
#include "quota/algo.h"
#include "quota/quota.h"
#include "quota/store.h"
#include "util/tz.h"

enum { B_MEMORY, B_LMDB, B_REDIS, B_LMDB_ALWAYS, NBACKENDS };

static const struct backend {
	const char *name;
	enum conf_backend kind;
	int persistent;		/* counters survive close and reopen */
	int virtual_expiry;	/* records expire on the time passed in */
	int sync_always;	/* LMDB store.sync = "always" */
} backends[NBACKENDS] = {
	{ "memory", CONF_STORE_MEMORY, 0, 1, 0 },
	{ "lmdb", CONF_STORE_LMDB, 1, 1, 0 },
	/* Redis keys expire by their TTL, in real time */
	{ "redis", CONF_STORE_REDIS, 1, 0, 0 },
	/* The same suite with a disk sync at every commit */
	{ "lmdb-always", CONF_STORE_LMDB, 1, 1, 1 },
};

/* The limits every case may use (index into conf->limits). */
enum { L_WIN, L_CAL, L_RATE, L_HOUR, L_SHORT, L_MANY, L_BERLIN, NLIMITS };

static const struct conf_limit limit_defs[NLIMITS] = {
	/* name, key, p4, p6, count, kind, limit, period, month, tz, burst,
	 * buckets, action */
	{ (char *)"win", CONF_QKEY_SASL_USERNAME, 0, 0, CONF_QCOUNT_MESSAGES,
	    CONF_QKIND_WINDOW, 10, 60, 0, NULL, 0, 6, CONF_QACTION_DEFER,
	    NULL, 0 },
	{ (char *)"cal", CONF_QKEY_SASL_USERNAME, 0, 0, CONF_QCOUNT_MESSAGES,
	    CONF_QKIND_CALENDAR, 5, 0, 0, (char *)"UTC", 0, 0, CONF_QACTION_DEFER,
	    NULL, 0 },
	{ (char *)"rate", CONF_QKEY_SASL_USERNAME, 0, 0, CONF_QCOUNT_MESSAGES,
	    CONF_QKIND_RATE, 60, 60, 0, NULL, 4, 0, CONF_QACTION_DEFER,
	    NULL, 0 },
	{ (char *)"hour", CONF_QKEY_SASL_USERNAME, 0, 0, CONF_QCOUNT_MESSAGES,
	    CONF_QKIND_WINDOW, 1000, 3600, 0, NULL, 0, 4, CONF_QACTION_DEFER,
	    NULL, 0 },
	{ (char *)"short", CONF_QKEY_SASL_USERNAME, 0, 0, CONF_QCOUNT_MESSAGES,
	    CONF_QKIND_WINDOW, 100, 2, 0, NULL, 0, 2, CONF_QACTION_DEFER,
	    NULL, 0 },
	{ (char *)"many", CONF_QKEY_SASL_USERNAME, 0, 0, CONF_QCOUNT_MESSAGES,
	    CONF_QKIND_WINDOW, 300, 3600, 0, NULL, 0, 60, CONF_QACTION_DEFER,
	    NULL, 0 },
	{ (char *)"berlin", CONF_QKEY_SASL_USERNAME, 0, 0, CONF_QCOUNT_RECIPIENTS,
	    CONF_QKIND_CALENDAR, 100, 0, 0, (char *)"Europe/Berlin", 0, 0,
	    CONF_QACTION_DEFER, NULL, 0 },
};

/* 2026-05-28 20:26:40 UTC: the virtual clock starts here. */
#define T0 1780000000000LL
#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)

/* The redis-server of this run (main starts it before the suites). */
static pid_t redis_pid = -1;
static int redis_port;
static char redis_dir[64];
static char redis_why[512] = "not started";

/* One case's world: a config, a store, a temporary directory. */
struct tenv {
	int b;
	struct conf_quota conf;
	struct conf_limit limits[NLIMITS];
	char dir[64];
	char path[128];
	char url[64];
	struct quota_store *s;
	int64_t now;
};

/* wall_ms - the wall clock, ms */
static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* redis_conn - a connection to the test's server (redisFree), or NULL */
static redisContext *
redis_conn(void)
{
	struct timeval tv = { 2, 0 };
	redisContext *rc;

	rc = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
	if (rc == NULL || rc->err) {
		if (rc != NULL)
			redisFree(rc);
		return NULL;
	}
	(void)redisSetTimeout(rc, tv);
	return rc;
}

/* redis_cmd - run one command on the test's server; 0 if it answered */
static int
redis_cmd(const char *cmd, long long *integer)
{
	redisContext *rc;
	redisReply *r;
	int ok = -1;

	if ((rc = redis_conn()) == NULL)
		return -1;
	if ((r = redisCommand(rc, cmd)) != NULL) {
		if (r->type != REDIS_REPLY_ERROR)
			ok = 0;
		if (integer != NULL && r->type == REDIS_REPLY_INTEGER)
			*integer = r->integer;
		freeReplyObject(r);
	}
	redisFree(rc);
	return ok;
}

/* free_port - a TCP port free on 127.0.0.1 right now */
static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd, port = 0;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* redis_stop - stop our redis-server and remove its directory */
static void
redis_stop(void)
{
	char cmd[128];

	if (redis_pid > 0) {
		kill(redis_pid, SIGTERM);
		waitpid(redis_pid, NULL, 0);
		redis_pid = -1;
	}
	if (redis_dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", redis_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", redis_dir);
		redis_dir[0] = '\0';
	}
}

/*
 * redis_start - redis-server on a free loopback port, no persistence, in
 * a temporary directory; waits until it answers PING.  Sets redis_why
 * and returns -1 when it cannot.
 */
static int
redis_start(void)
{
	char port[16], log[128];
	int tries, i, st;
	pid_t pid;

	snprintf(redis_dir, sizeof(redis_dir), "/tmp/check_quota_redis.XXXXXX");
	if (mkdtemp(redis_dir) == NULL) {
		snprintf(redis_why, sizeof(redis_why), "mkdtemp: %s",
		    strerror(errno));
		redis_dir[0] = '\0';
		return -1;
	}
	snprintf(log, sizeof(log), "%s/redis.log", redis_dir);
	for (tries = 0; tries < 3; tries++) {
		if ((redis_port = free_port()) == 0) {
			snprintf(redis_why, sizeof(redis_why), "no free port");
			return -1;
		}
		snprintf(port, sizeof(port), "%d", redis_port);
		if ((pid = fork()) == -1) {
			snprintf(redis_why, sizeof(redis_why), "fork: %s",
			    strerror(errno));
			return -1;
		}
		if (pid == 0) {
			/* Die with the test, whatever kills it. */
			(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
			execlp("redis-server", "redis-server", "--port", port,
			    "--bind", "127.0.0.1", "--save", "",
			    "--appendonly", "no", "--daemonize", "no",
			    "--dir", redis_dir, "--logfile", log,
			    (char *)NULL);
			_exit(127);
		}
		redis_pid = pid;
		for (i = 0; i < 100; i++) {	/* 10 s */
			if (redis_cmd("PING", NULL) == 0)
				return 0;
			if (waitpid(pid, &st, WNOHANG) == pid) {
				redis_pid = -1;
				snprintf(redis_why, sizeof(redis_why),
				    "redis-server exited with status %d "
				    "(see its log: %s; 127: not installed)",
				    WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
				break;
			}
			usleep(100000);
		}
		if (redis_pid > 0) {
			snprintf(redis_why, sizeof(redis_why), "redis-server "
			    "on 127.0.0.1:%d did not answer PING in 10 s",
			    redis_port);
			kill(redis_pid, SIGKILL);
			waitpid(redis_pid, NULL, 0);
			redis_pid = -1;
		}
	}
	redis_port = 0;
	return -1;
}

/* topen - open the case's store (Redis: on the clock passed in) */
static struct quota_store *
topen(struct tenv *t, int client_clock)
{
	struct quota_store *s = NULL;
	char err[512] = "";

	switch (backends[t->b].kind) {
	case CONF_STORE_MEMORY:
		s = store_mem_open(&t->conf, err, sizeof(err));
		break;
	case CONF_STORE_LMDB:
		s = store_lmdb_open(&t->conf, err, sizeof(err));
		break;
	case CONF_STORE_REDIS:
		s = store_redis_open(&t->conf, err, sizeof(err));
		if (s != NULL)
			store_redis_client_clock(s, client_clock);
		break;
	}
	ck_assert_msg(s != NULL, "%s: open: %s", backends[t->b].name, err);
	return s;
}

/*
 * tenv_new - a fresh store of backend b; virtual: on the clock passed in
 * (else the Redis server's clock).  Fails the case if Redis is missing.
 */
static struct tenv *
tenv_new(int b, int virtual)
{
	struct tenv *t = calloc(1, sizeof(*t));
	size_t i;

	ck_assert_ptr_nonnull(t);
	t->b = b;
	if (b == B_REDIS) {
		ck_assert_msg(redis_port != 0, "redis: redis-server could not "
		    "be started, so the Redis store cannot be tested: %s",
		    redis_why);
		ck_assert_msg(redis_cmd("FLUSHALL", NULL) == 0,
		    "redis: FLUSHALL failed on 127.0.0.1:%d", redis_port);
	}
	snprintf(t->dir, sizeof(t->dir), "/tmp/check_quota_store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/quota.lmdb", t->dir);
	snprintf(t->url, sizeof(t->url), "redis://127.0.0.1:%d/0",
	    redis_port);
	for (i = 0; i < NLIMITS; i++)
		t->limits[i] = limit_defs[i];
	t->conf.limits = t->limits;
	t->conf.nlimits = NLIMITS;
	t->conf.store.backend = backends[b].kind;
	t->conf.store.path = t->path;
	t->conf.store.map_size = 64ULL * 1024 * 1024;
	t->conf.store.url = t->url;
	t->conf.store.timeout_ms = 2000;
	t->conf.store.reserve_ttl = 600;
	t->conf.store.sync_always = backends[b].sync_always;
	t->conf.store.sync_interval = 1;
	t->now = virtual ? T0 : wall_ms();
	t->s = topen(t, virtual);
	return t;
}

/* tenv_free - close the store, remove the directory */
static void
tenv_free(struct tenv *t)
{
	char cmd[128];

	if (t->s != NULL)
		t->s->ops->close(t->s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	ck_assert_int_eq(system(cmd), 0);
	free(t);
}

/* op_set - op i of an admission: limit l, key, amount, at t->now */
static void
op_set(struct tenv *t, struct quota_op *op, int l, const char *key,
    uint64_t amount)
{
	memset(op, 0, sizeof(*op));
	op->limit = &t->limits[l];
	ck_assert_int_eq(quota_rkey(op->limit->name, key, op->rkey,
	    sizeof(op->rkey)), 0);
	op->amount = amount;
	op->eff_limit = op->limit->limit;
	if (op->limit->kind == CONF_QKIND_CALENDAR)
		ck_assert_int_eq(tz_period(op->limit->timezone,
		    op->limit->month, t->now, &op->period), 0);
}

/* ops_periods - the calendar ops' periods at t->now, as quota.c sets them */
static void
ops_periods(const struct tenv *t, struct quota_op *ops, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (ops[i].limit->kind == CONF_QKIND_CALENDAR)
			ck_assert_int_eq(tz_period(ops[i].limit->timezone,
			    ops[i].limit->month, t->now, &ops[i].period), 0);
}

/* admit_ops - admit n ops at t->now (token 0: none); returns admitted */
static int
admit_ops(struct tenv *t, struct quota_op *ops, size_t n, uint64_t token,
    int64_t expires, struct quota_op_result *res)
{
	struct quota_op_result local[8];
	char err[512] = "";
	int admitted = -1, rc;

	if (res == NULL)
		res = local;
	ops_periods(t, ops, n);
	rc = t->s->ops->admit(t->s, ops, n, t->now, token, expires, res,
	    &admitted, err, sizeof(err));
	ck_assert_msg(rc == 0, "%s: admit: got -1 (%s), want 0",
	    backends[t->b].name, err);
	ck_assert_msg(admitted == 0 || admitted == 1, "%s: admitted = %d",
	    backends[t->b].name, admitted);
	return admitted;
}

/* admit1 - admit amount on one limit and key; returns admitted */
static int
admit1(struct tenv *t, int l, const char *key, uint64_t amount,
    struct quota_check *check)
{
	struct quota_op op;
	struct quota_op_result res;
	int a;

	op_set(t, &op, l, key, amount);
	a = admit_ops(t, &op, 1, 0, 0, &res);
	if (check != NULL)
		*check = res.check;
	return a;
}

/*
 * commit_ops - commit token at t->now, admitting ops again when it does
 * not stand (store.h); returns admitted
 */
static int
commit_ops(struct tenv *t, uint64_t token, struct quota_op *ops, size_t n,
    struct quota_op_result *res)
{
	struct quota_op_result local[8];
	char err[512] = "";
	int admitted = -1, rc;

	if (res == NULL)
		res = local;
	ops_periods(t, ops, n);
	rc = t->s->ops->commit(t->s, token, ops, n, t->now, res, &admitted,
	    err, sizeof(err));
	ck_assert_msg(rc == 0, "%s: commit: got -1 (%s), want 0",
	    backends[t->b].name, err);
	ck_assert_msg(admitted == 0 || admitted == 1, "%s: admitted = %d",
	    backends[t->b].name, admitted);
	return admitted;
}

/* store_commit - commit token with nothing to admit again (0 or -1) */
static int
store_commit(struct tenv *t, uint64_t token, int64_t now, char *err,
    size_t errlen)
{
	int admitted;

	return t->s->ops->commit(t->s, token, NULL, 0, now, NULL, &admitted,
	    err, errlen);
}

/* used - what the counter of (l, key) holds at t->now */
static uint64_t
used(struct tenv *t, int l, const char *key)
{
	struct quota_state st;
	struct quota_period per, *pp = NULL;
	char rkey[QUOTA_RKEY_MAX], err[512] = "";
	int found = -1;

	ck_assert_int_eq(quota_rkey(t->limits[l].name, key, rkey,
	    sizeof(rkey)), 0);
	ck_assert_msg(t->s->ops->get(t->s, rkey, &st, &found, err,
	    sizeof(err)) == 0, "%s: get: %s", backends[t->b].name, err);
	if (!found)
		return 0;
	if (t->limits[l].kind == CONF_QKIND_CALENDAR) {
		ck_assert_int_eq(tz_period(t->limits[l].timezone,
		    t->limits[l].month, t->now, &per), 0);
		pp = &per;
	}
	return algo_used(&t->limits[l], &st, t->now, pp);
}

struct count_arg {
	const char *prefix;	/* limit name + separator */
	size_t n;
};

/* count_fn - iterate callback: count the records of one limit */
static int
count_fn(const char *rkey, const struct quota_state *st, void *arg)
{
	struct count_arg *a = arg;

	(void)st;
	if (strncmp(rkey, a->prefix, strlen(a->prefix)) == 0)
		a->n++;
	return 0;
}

/* nrecords - how many records of limit l the store holds */
static size_t
nrecords(struct tenv *t, int l)
{
	char prefix[64], err[512] = "";
	struct count_arg a;

	snprintf(prefix, sizeof(prefix), "%s%c", t->limits[l].name,
	    QUOTA_RKEY_SEP);
	a.prefix = prefix;
	a.n = 0;
	ck_assert_msg(t->s->ops->iterate(t->s, count_fn, &a, err,
	    sizeof(err)) == 0, "%s: iterate: %s", backends[t->b].name, err);
	return a.n;
}

/* ---- admit and refuse at the limit, per kind ---------------------------- */

START_TEST(window_admits_limit_then_refuses)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_check c;
	int k;

	for (k = 0; k < 10; k++)
		ck_assert_msg(admit1(t, L_WIN, "alice", 1, &c) == 1,
		    "%s: admission %d refused, want admitted", 
		    backends[_i].name, k + 1);
	ck_assert_msg(admit1(t, L_WIN, "alice", 1, &c) == 0,
	    "%s: 11th admitted, want refused", backends[_i].name);
	ck_assert_msg(c.used == 10, "%s: used got %llu, want 10",
	    backends[_i].name, (unsigned long long)c.used);
	ck_assert_msg(c.retry_ms > 0 && c.retry_ms <= 70000,
	    "%s: retry got %llu ms, want (0, 70000]", backends[_i].name,
	    (unsigned long long)c.retry_ms);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 10);
	/* another key has its own counter */
	ck_assert_int_eq(admit1(t, L_WIN, "bob", 10, NULL), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "bob", 1, NULL), 0);
	/* once the period (and the bucket) has passed, it admits again */
	t->now += c.retry_ms;
	ck_assert_msg(admit1(t, L_WIN, "alice", 1, NULL) == 1,
	    "%s: refused after the retry time", backends[_i].name);
	t->now += 70000;
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 10, NULL), 1);
	tenv_free(t);
}
END_TEST

START_TEST(calendar_admits_limit_then_refuses_until_midnight)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_period per;
	struct quota_check c;

	ck_assert_int_eq(admit1(t, L_CAL, "alice", 2, NULL), 1);
	ck_assert_int_eq(admit1(t, L_CAL, "alice", 3, NULL), 1);
	ck_assert_int_eq(admit1(t, L_CAL, "alice", 1, &c), 0);
	ck_assert_uint_eq(c.used, 5);
	ck_assert_int_eq(tz_period("UTC", 0, t->now, &per), 0);
	ck_assert_msg(c.retry_ms == (uint64_t)(per.end_ms - t->now),
	    "%s: retry got %llu, want %lld (until midnight)",
	    backends[_i].name, (unsigned long long)c.retry_ms,
	    (long long)(per.end_ms - t->now));
	t->now = per.end_ms - 1;
	ck_assert_int_eq(admit1(t, L_CAL, "alice", 1, NULL), 0);
	t->now = per.end_ms;
	ck_assert_int_eq(admit1(t, L_CAL, "alice", 5, NULL), 1);
	ck_assert_uint_eq(used(t, L_CAL, "alice"), 5);
	tenv_free(t);
}
END_TEST

START_TEST(rate_admits_burst_then_one_per_interval)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_check c;
	int k;

	/* 60 per 60 s, burst 4: 5 at once, then one a second */
	for (k = 0; k < 5; k++)
		ck_assert_msg(admit1(t, L_RATE, "alice", 1, NULL) == 1,
		    "%s: burst admission %d refused", backends[_i].name,
		    k + 1);
	ck_assert_int_eq(admit1(t, L_RATE, "alice", 1, &c), 0);
	ck_assert_msg(c.retry_ms == 1000, "%s: retry got %llu ms, want 1000",
	    backends[_i].name, (unsigned long long)c.retry_ms);
	t->now += 999;
	ck_assert_int_eq(admit1(t, L_RATE, "alice", 1, NULL), 0);
	t->now += 1;
	ck_assert_int_eq(admit1(t, L_RATE, "alice", 1, NULL), 1);
	ck_assert_int_eq(admit1(t, L_RATE, "alice", 1, NULL), 0);
	tenv_free(t);
}
END_TEST

START_TEST(amounts_larger_than_one_fit_or_not_whole)
{
	struct tenv *t = tenv_new(_i, 1);

	ck_assert_int_eq(admit1(t, L_WIN, "alice", 4, NULL), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 4, NULL), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 3, NULL), 0);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 8);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 2, NULL), 1);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 10);
	ck_assert_int_eq(admit1(t, L_WIN, "carol", 11, NULL), 0);
	ck_assert_uint_eq(used(t, L_WIN, "carol"), 0);
	tenv_free(t);
}
END_TEST

/* ---- several limits: all or nothing, warn, unlimited -------------------- */

START_TEST(all_or_nothing_across_ops)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op ops[3];
	struct quota_op_result res[3];
	int k;

	/* win 10, cal 5, hour 1000: the calendar refuses the 6th */
	for (k = 0; k < 6; k++) {
		op_set(t, &ops[0], L_WIN, "alice", 1);
		op_set(t, &ops[1], L_CAL, "alice", 1);
		op_set(t, &ops[2], L_HOUR, "alice", 1);
		ck_assert_int_eq(admit_ops(t, ops, 3, 0, 0, res), k < 5);
	}
	ck_assert_msg(res[0].check.admit == 1 && res[1].check.admit == 0 &&
	    res[2].check.admit == 1, "%s: per-op checks got %d %d %d, want "
	    "1 0 1", backends[_i].name, res[0].check.admit,
	    res[1].check.admit, res[2].check.admit);
	ck_assert_uint_eq(res[1].check.used, 5);
	/* the refused admission charged none of them */
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 5);
	ck_assert_uint_eq(used(t, L_CAL, "alice"), 5);
	ck_assert_uint_eq(used(t, L_HOUR, "alice"), 5);
	/* nor when the first op refuses and the others would fit */
	ck_assert_int_eq(admit1(t, L_WIN, "bob", 10, NULL), 1);
	op_set(t, &ops[0], L_WIN, "bob", 1);
	op_set(t, &ops[1], L_HOUR, "bob", 1);
	ck_assert_int_eq(admit_ops(t, ops, 2, 0, 0, res), 0);
	ck_assert_uint_eq(used(t, L_HOUR, "bob"), 0);
	tenv_free(t);
}
END_TEST

START_TEST(warn_only_ops_never_refuse_and_keep_counting)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op ops[2];
	struct quota_op_result res[2];
	int k;

	for (k = 0; k < 8; k++) {
		op_set(t, &ops[0], L_CAL, "alice", 1);	/* 5, warn only */
		ops[0].warn_only = 1;
		op_set(t, &ops[1], L_WIN, "alice", 1);	/* 10 */
		ck_assert_msg(admit_ops(t, ops, 2, 0, 0, res) == 1,
		    "%s: admission %d refused by a warn-only op",
		    backends[_i].name, k + 1);
		ck_assert_int_eq(res[0].check.admit, k < 5);
	}
	ck_assert_uint_eq(used(t, L_CAL, "alice"), 8);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 8);
	tenv_free(t);
}
END_TEST

START_TEST(unlimited_ops_count_and_never_refuse)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op op;
	int k;

	for (k = 0; k < 3; k++) {
		op_set(t, &op, L_WIN, "newsletter", 7);
		op.eff_limit = QUOTA_UNLIMITED;
		ck_assert_int_eq(admit_ops(t, &op, 1, 0, 0, NULL), 1);
	}
	ck_assert_uint_eq(used(t, L_WIN, "newsletter"), 21);
	/* an override above the limit (eff_limit) is honoured */
	for (k = 0; k < 3; k++) {
		op_set(t, &op, L_WIN, "big", 10);
		op.eff_limit = 25;
		ck_assert_int_eq(admit_ops(t, &op, 1, 0, 0, NULL), k < 2);
	}
	tenv_free(t);
}
END_TEST

/* ---- reservations ------------------------------------------------------- */

START_TEST(reservation_commit_keeps_release_refunds)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op ops[2];
	char err[512] = "";

	op_set(t, &ops[0], L_WIN, "alice", 3);
	op_set(t, &ops[1], L_CAL, "alice", 3);
	ck_assert_int_eq(admit_ops(t, ops, 2, 101, t->now + 60000, NULL), 1);
	op_set(t, &ops[0], L_WIN, "alice", 2);
	op_set(t, &ops[1], L_CAL, "alice", 2);
	ck_assert_int_eq(admit_ops(t, ops, 2, 102, t->now + 60000, NULL), 1);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 5);
	ck_assert_uint_eq(used(t, L_CAL, "alice"), 5);
	t->now += 1000;
	ck_assert_int_eq(store_commit(t, 101, t->now, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(t->s->ops->release(t->s, 102, t->now, err,
	    sizeof(err)), 0);
	ck_assert_msg(used(t, L_WIN, "alice") == 3, "%s: win used got %llu "
	    "after commit 3 + release 2, want 3", backends[_i].name,
	    (unsigned long long)used(t, L_WIN, "alice"));
	ck_assert_uint_eq(used(t, L_CAL, "alice"), 3);
	/* ended tokens, and unknown ones, are no error and do nothing */
	ck_assert_int_eq(t->s->ops->release(t->s, 101, t->now, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(t->s->ops->release(t->s, 102, t->now, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(store_commit(t, 999, t->now, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 3);
	/* the refund made room for 2 more under the calendar's 5 */
	ck_assert_int_eq(admit1(t, L_CAL, "alice", 2, NULL), 1);
	ck_assert_int_eq(admit1(t, L_CAL, "alice", 1, NULL), 0);
	tenv_free(t);
}
END_TEST

START_TEST(reservation_lapses_and_is_refunded)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op op;
	char err[512] = "";

	op_set(t, &op, L_WIN, "alice", 10);
	ck_assert_int_eq(admit_ops(t, &op, 1, 7, t->now + 5000, NULL), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 0);
	t->now += 4999;
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 0);
	t->now += 1;
	/* lapsed: the store refunds it before it checks */
	ck_assert_msg(admit1(t, L_WIN, "alice", 1, NULL) == 1,
	    "%s: a lapsed reservation still holds its charge",
	    backends[_i].name);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 1);
	/* committing it late admits it again: 1 + 10 do not fit */
	ck_assert_msg(commit_ops(t, 7, &op, 1, NULL) == 0, "%s: a lapsed "
	    "reservation committed over the limit", backends[_i].name);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 1);
	/* a lapsed reservation is refunded by release too */
	op_set(t, &op, L_CAL, "bob", 4);
	ck_assert_int_eq(admit_ops(t, &op, 1, 8, t->now + 1000, NULL), 1);
	t->now += 2000;
	ck_assert_int_eq(t->s->ops->release(t->s, 8, t->now, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(used(t, L_CAL, "bob"), 0);
	tenv_free(t);
}
END_TEST

/*
 * lapsed_reservation_commit_charges_or_refuses - a reservation that
 * lapsed before its commit (refunded by the store) is admitted again by
 * the commit: charged when it fits, refused with nothing charged when
 * the limit filled meanwhile; one that stands keeps its charge
 */
START_TEST(lapsed_reservation_commit_charges_or_refuses)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op op;
	struct quota_op_result res;

	/* lapses, then committed: charged again */
	op_set(t, &op, L_CAL, "carol", 3);
	ck_assert_int_eq(admit_ops(t, &op, 1, 11, t->now + 2000, NULL), 1);
	t->now += 3000;
	ck_assert_int_eq(commit_ops(t, 11, &op, 1, &res), 1);
	ck_assert_msg(used(t, L_CAL, "carol") == 3, "%s: lapsed commit: used "
	    "got %llu, want 3", backends[_i].name,
	    (unsigned long long)used(t, L_CAL, "carol"));
	/* lapses, someone else fills the limit, then committed: refused */
	op_set(t, &op, L_CAL, "carol", 2);
	ck_assert_int_eq(admit_ops(t, &op, 1, 12, t->now + 2000, NULL), 1);
	ck_assert_uint_eq(used(t, L_CAL, "carol"), 5);
	t->now += 3000;
	ck_assert_int_eq(admit1(t, L_CAL, "carol", 2, NULL), 1);
	ck_assert_int_eq(commit_ops(t, 12, &op, 1, &res), 0);
	ck_assert_int_eq(res.check.admit, 0);
	ck_assert_uint_eq(res.check.used, 5);
	ck_assert_uint_eq(used(t, L_CAL, "carol"), 5);
	/* stands: committed as it is, even with the limit full */
	op_set(t, &op, L_WIN, "dave", 10);
	ck_assert_int_eq(admit_ops(t, &op, 1, 13, t->now + 2000, NULL), 1);
	t->now += 1999;
	ck_assert_int_eq(commit_ops(t, 13, &op, 1, &res), 1);
	ck_assert_uint_eq(used(t, L_WIN, "dave"), 10);
	/* unknown token: admitted from its ops */
	op_set(t, &op, L_CAL, "erin", 1);
	ck_assert_int_eq(commit_ops(t, 14, &op, 1, &res), 1);
	ck_assert_uint_eq(used(t, L_CAL, "erin"), 1);
	tenv_free(t);
}
END_TEST

START_TEST(refused_reservation_records_nothing)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op op;
	char err[512] = "";

	ck_assert_int_eq(admit1(t, L_WIN, "alice", 8, NULL), 1);
	op_set(t, &op, L_WIN, "alice", 3);
	ck_assert_int_eq(admit_ops(t, &op, 1, 55, t->now + 1000, NULL), 0);
	t->now += 2000;
	ck_assert_int_eq(t->s->ops->release(t->s, 55, t->now, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 8);
	tenv_free(t);
}
END_TEST

START_TEST(reservation_token_in_use_is_an_error)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op op;
	struct quota_op_result res;
	char err[512] = "";
	int admitted = -1, rc;

	op_set(t, &op, L_WIN, "alice", 1);
	ck_assert_int_eq(admit_ops(t, &op, 1, 77, t->now + 60000, NULL), 1);
	rc = t->s->ops->admit(t->s, &op, 1, t->now, 77, t->now + 60000, &res,
	    &admitted, err, sizeof(err));
	ck_assert_msg(rc == -1 && err[0] != '\0', "%s: a second reservation "
	    "under token 77 got rc %d, want -1 with a reason",
	    backends[_i].name, rc);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 1);
	tenv_free(t);
}
END_TEST

/* ---- get, put, del, iterate --------------------------------------------- */

START_TEST(get_put_del_iterate)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_state st, got;
	char rkey[QUOTA_RKEY_MAX], err[512] = "";
	int found = -1;

	ck_assert_int_eq(quota_rkey("win", "alice", rkey, sizeof(rkey)), 0);
	ck_assert_int_eq(t->s->ops->get(t->s, rkey, &got, &found, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(found, 0);
	memset(&st, 0, sizeof(st));
	algo_set(&t->limits[L_WIN], &st, 7, t->now, NULL);
	ck_assert_msg(t->s->ops->put(t->s, rkey, &st, algo_expires(
	    &t->limits[L_WIN], &st, NULL), err, sizeof(err)) == 0,
	    "%s: put: %s", backends[_i].name, err);
	ck_assert_int_eq(t->s->ops->get(t->s, rkey, &got, &found, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(found, 1);
	ck_assert_uint_eq(algo_used(&t->limits[L_WIN], &got, t->now, NULL), 7);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 7);
	/* admissions count on top of what was put */
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 3, NULL), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 0);
	ck_assert_int_eq(admit1(t, L_CAL, "alice", 1, NULL), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "bob", 1, NULL), 1);
	ck_assert_uint_eq(nrecords(t, L_WIN), 2);
	ck_assert_uint_eq(nrecords(t, L_CAL), 1);
	ck_assert_int_eq(t->s->ops->del(t->s, rkey, err, sizeof(err)), 0);
	ck_assert_int_eq(t->s->ops->get(t->s, rkey, &got, &found, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(found, 0);
	ck_assert_uint_eq(nrecords(t, L_WIN), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 10, NULL), 1);
	/* deleting what is not there is no error */
	ck_assert_int_eq(quota_rkey("win", "nobody", rkey, sizeof(rkey)), 0);
	ck_assert_int_eq(t->s->ops->del(t->s, rkey, err, sizeof(err)), 0);
	tenv_free(t);
}
END_TEST

/* stop_fn - iterate callback that stops at the second record */
static int
stop_fn(const char *rkey, const struct quota_state *st, void *arg)
{
	(void)rkey;
	(void)st;
	return ++*(int *)arg == 2;
}

START_TEST(iterate_visits_every_record_and_stops_on_request)
{
	struct tenv *t = tenv_new(_i, 1);
	char key[32], err[512] = "";
	int k, calls = 0;

	/* more than one chunk of the LMDB store's iteration */
	for (k = 0; k < 600; k++) {
		snprintf(key, sizeof(key), "user%04d", k);
		ck_assert_int_eq(admit1(t, L_HOUR, key, 1, NULL), 1);
	}
	ck_assert_uint_eq(nrecords(t, L_HOUR), 600);
	ck_assert_int_eq(t->s->ops->iterate(t->s, stop_fn, &calls, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(calls, 2);
	tenv_free(t);
}
END_TEST

/* ---- persistence -------------------------------------------------------- */

/*
 * counters_survive_close_and_reopen - counters and a reservation are
 * there again after the store is closed and opened (persistent backends
 * only: registered where backends[].persistent says so)
 */
START_TEST(counters_survive_close_and_reopen)
{
	struct tenv *t;
	struct quota_op op;
	char err[512] = "";

	ck_assert_msg(backends[_i].persistent, "%s: not persistent, the "
	    "case checks nothing there", backends[_i].name);
	t = tenv_new(_i, 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 6, NULL), 1);
	ck_assert_int_eq(admit1(t, L_CAL, "alice", 4, NULL), 1);
	op_set(t, &op, L_HOUR, "alice", 9);
	ck_assert_int_eq(admit_ops(t, &op, 1, 4242, t->now + 60000, NULL), 1);
	t->s->ops->close(t->s);
	t->s = topen(t, 1);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 6);
	ck_assert_uint_eq(used(t, L_CAL, "alice"), 4);
	ck_assert_uint_eq(used(t, L_HOUR, "alice"), 9);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 5, NULL), 0);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 4, NULL), 1);
	/* the reservation survived too */
	ck_assert_int_eq(t->s->ops->release(t->s, 4242, t->now, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(used(t, L_HOUR, "alice"), 0);
	tenv_free(t);
}
END_TEST

/* ---- reclaiming --------------------------------------------------------- */

/*
 * expired_records_reclaimed_over_simulated_days - 1000 distinct keys a
 * day for 10 days on a 1h window: the store keeps about an hour's keys,
 * never the lot; the LMDB file stops growing.  Only where records expire
 * on the time passed in (not Redis: see ..._real_clock).
 */
START_TEST(expired_records_reclaimed_over_simulated_days)
{
	struct tenv *t;
	struct stat sb;
	off_t size2 = 0;
	size_t n, most = 0;
	char key[32];
	int day, k;

	ck_assert_msg(backends[_i].virtual_expiry, "%s: records expire in "
	    "real time, the case checks nothing there", backends[_i].name);
	t = tenv_new(_i, 1);
	for (day = 0; day < 10; day++) {
		for (k = 0; k < 1000; k++) {
			snprintf(key, sizeof(key), "d%d-u%d", day, k);
			ck_assert_int_eq(admit1(t, L_HOUR, key, 1, NULL), 1);
			t->now += DAY_MS / 1000;
		}
		n = nrecords(t, L_HOUR);
		if (n > most)
			most = n;
		/* ~52 keys in the last 1h15m, plus the sweep's lag */
		ck_assert_msg(n <= 250, "%s: day %d: %zu records, want <= 250",
		    backends[_i].name, day, n);
		if (_i == B_LMDB || _i == B_LMDB_ALWAYS) {
			ck_assert_int_eq(stat(t->path, &sb), 0);
			if (day == 1)
				size2 = sb.st_size;
			if (day > 1)
				ck_assert_msg(sb.st_size <= size2,
				    "lmdb: file grew from %lld to %lld bytes "
				    "on day %d", (long long)size2,
				    (long long)sb.st_size, day);
		}
	}
	fprintf(stderr, "%s: at most %zu records of 10000 keys\n",
	    backends[_i].name, most);
	tenv_free(t);
}
END_TEST

/*
 * expired_records_reclaimed_real_clock - on the wall clock (the Redis
 * server's own): records of a 2 s window are gone 3 s later, once a few
 * admissions have passed (LMDB, memory: their sweeps; Redis: TTLs).
 */
START_TEST(expired_records_reclaimed_real_clock)
{
	struct tenv *t = tenv_new(_i, 0);
	char key[32];
	int k;

	for (k = 0; k < 20; k++) {
		snprintf(key, sizeof(key), "r%d", k);
		ck_assert_int_eq(admit1(t, L_SHORT, key, 1, NULL), 1);
	}
	ck_assert_uint_eq(nrecords(t, L_SHORT), 20);
	ck_assert_uint_eq(used(t, L_SHORT, "r0"), 1);
	usleep(3500000);
	t->now = wall_ms();
	ck_assert_uint_eq(used(t, L_SHORT, "r0"), 0);
	for (k = 0; k < 10; k++)
		ck_assert_int_eq(admit1(t, L_WIN, "trigger", 1, NULL), 1);
	ck_assert_msg(nrecords(t, L_SHORT) == 0, "%s: %zu expired records "
	    "left, want 0", backends[_i].name, nrecords(t, L_SHORT));
	tenv_free(t);
}
END_TEST

START_TEST(window_refuses_on_the_server_clock)
{
	struct tenv *t = tenv_new(_i, 0);
	struct quota_check c;
	int k;

	for (k = 0; k < 10; k++)
		ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, &c), 0);
	ck_assert_uint_eq(c.used, 10);
	ck_assert(c.retry_ms > 0 && c.retry_ms <= 70000);
	for (k = 0; k < 5; k++)
		ck_assert_int_eq(admit1(t, L_RATE, "alice", 1, NULL), 1);
	ck_assert_int_eq(admit1(t, L_RATE, "alice", 1, &c), 0);
	ck_assert(c.retry_ms > 0 && c.retry_ms <= 1000);
	tenv_free(t);
}
END_TEST

/* ---- threads ------------------------------------------------------------ */

struct thr {
	struct tenv *t;
	int admitted;
};

/* thr_main - 60 admissions of one unit on ("many", "shared") */
static void *
thr_main(void *arg)
{
	struct thr *th = arg;
	struct quota_op op;
	struct quota_op_result res;
	char err[512];
	int k, admitted;

	for (k = 0; k < 60; k++) {
		memset(&op, 0, sizeof(op));
		op.limit = &th->t->limits[L_MANY];
		(void)quota_rkey("many", "shared", op.rkey, sizeof(op.rkey));
		op.amount = 1;
		op.eff_limit = 300;
		if (th->t->s->ops->admit(th->t->s, &op, 1, th->t->now, 0, 0,
		    &res, &admitted, err, sizeof(err)) == 0 && admitted)
			th->admitted++;
	}
	return NULL;
}

START_TEST(threads_admit_exactly_the_limit)
{
	struct tenv *t = tenv_new(_i, 1);
	struct thr th[8];
	pthread_t tid[8];
	int k, total = 0;

	for (k = 0; k < 8; k++) {
		th[k].t = t;
		th[k].admitted = 0;
		ck_assert_int_eq(pthread_create(&tid[k], NULL, thr_main,
		    &th[k]), 0);
	}
	for (k = 0; k < 8; k++) {
		pthread_join(tid[k], NULL);
		total += th[k].admitted;
	}
	ck_assert_msg(total == 300, "%s: 8 threads x 60 admitted %d, want 300",
	    backends[_i].name, total);
	ck_assert_uint_eq(used(t, L_MANY, "shared"), 300);
	tenv_free(t);
}
END_TEST

/* ---- LMDB only ---------------------------------------------------------- */

START_TEST(lmdb_file_is_private_and_shared_in_process)
{
	struct tenv *t = tenv_new(B_LMDB, 1);
	struct quota_store *s1 = t->s, *s2;
	struct stat sb;

	ck_assert_int_eq(stat(t->path, &sb), 0);
	ck_assert_msg((sb.st_mode & 0777) == 0600, "mode got %o, want 600",
	    (unsigned)(sb.st_mode & 0777));
	ck_assert_msg(S_ISREG(sb.st_mode), "not a regular file");
	/* a second store on the same file shares the environment */
	s2 = topen(t, 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 6, NULL), 1);
	t->s = s2;
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 6);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 5, NULL), 0);
	s1->ops->close(s1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 4, NULL), 1);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 10);
	tenv_free(t);
}
END_TEST

START_TEST(lmdb_missing_directory_is_an_error)
{
	struct tenv *t = tenv_new(B_LMDB, 1);
	struct conf_quota c = t->conf;
	char err[512] = "";

	c.store.path = (char *)"/nonexistent-outpost-dir/quota.lmdb";
	ck_assert_ptr_null(store_lmdb_open(&c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "/nonexistent-outpost-dir") != NULL,
	    "error does not name the file: %s", err);
	tenv_free(t);
}
END_TEST

/*
 * lmdb_small_map_reclaims_then_fails_cleanly_when_full - in a 256 KiB map,
 * 20000 distinct keys of a 60 s window over 2000 s fit, since expired
 * ones are reclaimed; live keys beyond the map's room make admissions
 * fail with an error naming store.map_size, while reads still work; a
 * larger store.map_size on the same file makes room again.
 */
START_TEST(lmdb_small_map_reclaims_then_fails_cleanly_when_full)
{
	struct tenv *t = tenv_new(B_LMDB, 1);
	struct quota_op op;
	struct quota_op_result res;
	char key[32], err[512];
	int k, admitted = -1, rc = 0;

	t->s->ops->close(t->s);
	ck_assert_int_eq(unlink(t->path), 0);
	t->conf.store.map_size = 256 * 1024;
	t->s = topen(t, 1);
	for (k = 0; k < 100; k++) {
		snprintf(key, sizeof(key), "early-%03d", k);
		ck_assert_int_eq(admit1(t, L_HOUR, key, 1, NULL), 1);
	}
	for (k = 0; k < 20000; k++) {
		snprintf(key, sizeof(key), "flow-%06d", k);
		ck_assert_msg(admit1(t, L_WIN, key, 1, NULL) == 1,
		    "lmdb: key %d of a moving 60 s window refused", k);
		t->now += 100;
	}
	ck_assert_msg(nrecords(t, L_WIN) <= 1000, "lmdb: %zu records of a "
	    "60 s window after 2000 s, want <= 1000", nrecords(t, L_WIN));
	/* now live keys only, until the map is full */
	for (k = 0; k < 100000; k++) {
		snprintf(key, sizeof(key), "live-%06d", k);
		op_set(t, &op, L_WIN, key, 1);
		err[0] = '\0';
		rc = t->s->ops->admit(t->s, &op, 1, t->now, 0, 0, &res,
		    &admitted, err, sizeof(err));
		if (rc != 0)
			break;
	}
	ck_assert_msg(rc == -1, "lmdb: 100000 live keys fit in 256 KiB?");
	ck_assert_msg(strstr(err, "store.map_size") != NULL, "lmdb: a full "
	    "map's error does not name store.map_size: %s", err);
	ck_assert_int_eq(admitted, 0);
	ck_assert_uint_eq(used(t, L_WIN, "live-000000"), 1);
	ck_assert_uint_eq(used(t, L_HOUR, "early-000"), 1);
	/* a larger map on the same file */
	t->s->ops->close(t->s);
	t->conf.store.map_size = 4 * 1024 * 1024;
	t->s = topen(t, 1);
	ck_assert_int_eq(admit1(t, L_WIN, key, 1, NULL), 1);
	ck_assert_uint_eq(used(t, L_WIN, "live-000000"), 1);
	ck_assert_uint_eq(used(t, L_HOUR, "early-099"), 1);
	tenv_free(t);
}
END_TEST

/*
 * lmdb_raw - open t's file with LMDB directly (the store closed), run
 * fn in one write transaction, commit
 */
static void
lmdb_raw(struct tenv *t, void (*fn)(MDB_txn *))
{
	MDB_env *env;
	MDB_txn *txn;

	t->s->ops->close(t->s);
	t->s = NULL;
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 8), 0);
	ck_assert_int_eq(mdb_env_set_mapsize(env, t->conf.store.map_size), 0);
	ck_assert_int_eq(mdb_env_open(env, t->path, MDB_NOSUBDIR |
	    MDB_WRITEMAP, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	fn(txn);
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* format9 - mark the file as written in a record format from the future */
static void
format9(MDB_txn *txn)
{
	MDB_dbi meta;
	MDB_val k = { 6, (void *)"format" }, v = { 1, (void *)"9" };

	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	ck_assert_int_eq(mdb_put(txn, meta, &k, &v, 0), 0);
}

static int ncorrupt(struct tenv *);

/* lmdb_newer_format_is_refused - a record format this code does not know */
START_TEST(lmdb_newer_format_is_refused)
{
	struct tenv *t = tenv_new(B_LMDB, 1);
	char err[512] = "";

	lmdb_raw(t, format9);
	ck_assert_ptr_null(store_lmdb_open(&t->conf, err, sizeof(err)));
	ck_assert_msg(strstr(err, "record format 9") != NULL &&
	    strstr(err, t->path) != NULL, "unclear error: %s", err);
	ck_assert_int_eq(ncorrupt(t), 0);	/* not damage: kept */
	tenv_free(t);
}
END_TEST

/* no_format - drop the file's record format, keep its counters */
static void
no_format(MDB_txn *txn)
{
	MDB_dbi meta;

	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	ck_assert_int_eq(mdb_drop(txn, meta, 1), 0);
}

/*
 * lmdb_counters_without_format_are_damage - a file with counters but no
 * record format was written by no release: it is moved aside as damage
 * and counting starts afresh, never read with a guessed layout
 */
START_TEST(lmdb_counters_without_format_are_damage)
{
	struct tenv *t = tenv_new(B_LMDB, 1);

	ck_assert_int_eq(admit1(t, L_WIN, "alice", 6, NULL), 1);
	lmdb_raw(t, no_format);
	t->s = topen(t, 1);
	ck_assert_int_eq(ncorrupt(t), 1);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 0);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 1);
	tenv_free(t);
}
END_TEST

/* ncorrupt - files (not lock files) moved aside in t's directory */
static int
ncorrupt(struct tenv *t)
{
	struct dirent *d;
	DIR *dir;
	size_t len;
	int n = 0;

	ck_assert_ptr_nonnull(dir = opendir(t->dir));
	while ((d = readdir(dir)) != NULL) {
		len = strlen(d->d_name);
		if (strstr(d->d_name, ".lmdb.corrupt-") != NULL &&
		    !(len > 5 && strcmp(d->d_name + len - 5, "-lock") == 0))
			n++;
	}
	closedir(dir);
	return n;
}

/* lastpage - the number of t's file's last page in use (store closed) */
static size_t
lastpage(struct tenv *t)
{
	MDB_env *env;
	MDB_envinfo in;

	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_mapsize(env, t->conf.store.map_size), 0);
	ck_assert_int_eq(mdb_env_open(env, t->path, MDB_NOSUBDIR |
	    MDB_RDONLY, 0600), 0);
	ck_assert_int_eq(mdb_env_info(env, &in), 0);
	mdb_env_close(env);
	return in.me_last_pgno;
}

/*
 * scribble - overwrite pages [from, to] of path: zeros, or bytes of a
 * fixed pseudo-random sequence (garbage)
 */
static void
scribble(const char *path, size_t from, size_t to, int garbage)
{
	unsigned char page[4096];
	uint32_t x = 2463534242u;
	size_t p, i;
	int fd;

	ck_assert_int_ge(fd = open(path, O_WRONLY), 0);
	for (p = from; p <= to; p++) {
		for (i = 0; i < sizeof(page); i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			page[i] = garbage ? (unsigned char)x : 0;
		}
		ck_assert_int_eq(pwrite(fd, page, sizeof(page),
		    (off_t)(p * sizeof(page))), (ssize_t)sizeof(page));
	}
	ck_assert_int_eq(close(fd), 0);
}

/* How the damaged-file cases damage a file of a few pages. */
enum { DMG_TRUNC_HEADER, DMG_TRUNC_DATA, DMG_GARBAGE, DMG_ZERO_DATA,
    DMG_GARBAGE_META, NDMG };
static const char *const dmg_names[NDMG] = {
	"truncated inside the header", "truncated after the meta pages",
	"garbage data pages", "zeroed data pages", "garbage meta pages"
};

/* damage - close t's store and damage its file as case d says */
static void
damage(struct tenv *t, int d)
{
	size_t last;

	t->s->ops->close(t->s);
	t->s = NULL;
	last = lastpage(t);
	ck_assert_uint_ge(last, 3);
	switch (d) {
	case DMG_TRUNC_HEADER:
		ck_assert_int_eq(truncate(t->path, 100), 0);
		break;
	case DMG_TRUNC_DATA:
		ck_assert_int_eq(truncate(t->path, 2 * 4096 + 10), 0);
		break;
	case DMG_GARBAGE:
	case DMG_ZERO_DATA:
		scribble(t->path, 2, last, d == DMG_GARBAGE);
		break;
	case DMG_GARBAGE_META:
		scribble(t->path, 0, 1, 1);
		break;
	}
}

/*
 * lmdb_damaged_file_is_moved_aside - a file cut short or overwritten
 * (a host crash with store.sync = "periodic") opens as a fresh store,
 * once: the damaged file is kept beside it, counted, and counting goes on
 */
START_TEST(lmdb_damaged_file_is_moved_aside)
{
	struct tenv *t;
	unsigned long before;
	char rkey[QUOTA_RKEY_MAX], lock[PATH_MAX + 8];
	int d, i;

	for (d = 0; d < NDMG; d++) {
		t = tenv_new(B_LMDB, 1);
		for (i = 0; i < 300; i++) {	/* several pages */
			ck_assert_int_lt(snprintf(rkey, sizeof(rkey),
			    "sender-%03d", i), (int)sizeof(rkey));
			ck_assert_int_eq(admit1(t, L_HOUR, rkey, 2, NULL), 1);
		}
		ck_assert_int_eq(admit1(t, L_WIN, "alice", 9, NULL), 1);
		damage(t, d);
		before = store_lmdb_recoveries();
		t->s = topen(t, 1);
		ck_assert_msg(store_lmdb_recoveries() == before + 1 &&
		    ncorrupt(t) == 1, "%s: recoveries %lu -> %lu, %d files "
		    "moved aside; want one", dmg_names[d], before,
		    store_lmdb_recoveries(), ncorrupt(t));
		ck_assert_uint_eq(used(t, L_WIN, "alice"), 0);
		ck_assert_int_eq(admit1(t, L_WIN, "alice", 10, NULL), 1);
		ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 0);
		/* The fresh file has its own lock file. */
		ck_assert_int_lt(snprintf(lock, sizeof(lock), "%s-lock",
		    t->path), (int)sizeof(lock));
		ck_assert_int_eq(access(lock, F_OK), 0);
		/* recovered once: reopening keeps the counts */
		t->s->ops->close(t->s);
		t->s = topen(t, 1);
		ck_assert_uint_eq(used(t, L_WIN, "alice"), 10);
		ck_assert_uint_eq(store_lmdb_recoveries(), before + 1);
		tenv_free(t);
	}
}
END_TEST

/*
 * lmdb_damage_met_in_a_transaction_recovers_at_next_open - pages damaged
 * under an open store make its calls fail; the next open (a reload)
 * moves the file aside and counts afresh while the old store still works
 * as far as it can
 */
START_TEST(lmdb_damage_met_in_a_transaction_recovers_at_next_open)
{
	struct tenv *t = tenv_new(B_LMDB, 1);
	struct quota_store *old;
	struct quota_state st;
	char rkey[QUOTA_RKEY_MAX], err[512] = "";
	unsigned long before;
	int found = 0, i, rc;
	size_t last;

	for (i = 0; i < 300; i++) {
		ck_assert_int_lt(snprintf(rkey, sizeof(rkey), "sender-%03d",
		    i), (int)sizeof(rkey));
		ck_assert_int_eq(admit1(t, L_HOUR, rkey, 2, NULL), 1);
	}
	t->s->ops->close(t->s);
	last = lastpage(t);
	t->s = topen(t, 1);
	scribble(t->path, 2, last, 0);	/* through the shared map */
	ck_assert_int_eq(quota_rkey("hour", "sender-150", rkey, sizeof(rkey)),
	    0);
	rc = t->s->ops->get(t->s, rkey, &st, &found, err, sizeof(err));
	ck_assert_msg(rc == -1 && strstr(err, t->path) != NULL,
	    "get on zeroed pages: rc %d, %s", rc, err);
	before = store_lmdb_recoveries();
	old = t->s;
	t->s = topen(t, 1);
	ck_assert_uint_eq(store_lmdb_recoveries(), before + 1);
	ck_assert_int_eq(ncorrupt(t), 1);
	ck_assert_uint_eq(used(t, L_HOUR, "sender-150"), 0);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 3, NULL), 1);
	old->ops->close(old);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 3);
	tenv_free(t);
}
END_TEST

/*
 * lmdb_processes_recover_once - processes that open one damaged file at
 * once move it aside once, and all count in the fresh one
 */
START_TEST(lmdb_processes_recover_once)
{
	struct tenv *t = tenv_new(B_LMDB, 1);
	pid_t pid[4];
	int i, status;

	ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 1);
	damage(t, DMG_GARBAGE);
	for (i = 0; i < 4; i++) {
		ck_assert_int_ge(pid[i] = fork(), 0);
		if (pid[i] == 0) {
			char err[512] = "";
			struct quota_store *s;

			s = store_lmdb_open(&t->conf, err, sizeof(err));
			if (s == NULL) {
				fprintf(stderr, "child open: %s\n", err);
				_exit(1);
			}
			t->s = s;
			_exit(admit1(t, L_WIN, "alice", 1, NULL) == 1 ? 0 : 1);
		}
	}
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "process %d could not open and count", i);
	}
	ck_assert_int_eq(ncorrupt(t), 1);
	t->s = topen(t, 1);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 4);
	tenv_free(t);
}
END_TEST

/* batch_begin, batch_end - the store's, when it has batches; 0 */
static int
batch_begin(struct tenv *t)
{
	char err[512] = "";

	if (t->s->ops->batch_begin == NULL)
		return 0;
	ck_assert_msg(t->s->ops->batch_begin(t->s, err, sizeof(err)) == 0,
	    "%s: batch_begin: %s", backends[t->b].name, err);
	return 1;
}

static int
batch_end(struct tenv *t, char *err, size_t errlen)
{
	if (t->s->ops->batch_end == NULL)
		return 0;
	return t->s->ops->batch_end(t->s, err, errlen);
}

struct peek_arg {
	struct tenv *t;
	uint64_t used;
};

/* peek_main - used(win, alice) from another thread */
static void *
peek_main(void *arg)
{
	struct peek_arg *a = arg;

	a->used = used(a->t, L_WIN, "alice");
	return NULL;
}

/*
 * batch_calls_see_each_other_and_apply_at_the_end - inside a batch each
 * admission sees the ones before it (never overshoots), reservations and
 * their commit and release work, other threads see nothing until the
 * end, and the end applies everything; a store without batches applies
 * each call at once
 */
START_TEST(batch_calls_see_each_other_and_apply_at_the_end)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op op;
	struct peek_arg pa = { t, 99 };
	pthread_t tid;
	char err[512] = "";
	int batched;

	batched = batch_begin(t);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 6, NULL), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 5, NULL), 0);
	op_set(t, &op, L_WIN, "alice", 2);
	ck_assert_int_eq(admit_ops(t, &op, 1, 41, t->now + 60000, NULL), 1);
	ck_assert_int_eq(t->s->ops->release(t->s, 41, t->now, err,
	    sizeof(err)), 0);
	op_set(t, &op, L_WIN, "alice", 3);
	ck_assert_int_eq(admit_ops(t, &op, 1, 42, t->now + 60000, NULL), 1);
	ck_assert_int_eq(store_commit(t, 42, t->now, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 2, NULL), 0);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 9);
	ck_assert_int_eq(pthread_create(&tid, NULL, peek_main, &pa), 0);
	ck_assert_int_eq(pthread_join(tid, NULL), 0);
	ck_assert_msg(pa.used == (batched ? 0 : 9), "%s: another thread "
	    "sees %llu inside the batch, want %d", backends[_i].name,
	    (unsigned long long)pa.used, batched ? 0 : 9);
	ck_assert_msg(batch_end(t, err, sizeof(err)) == 0, "%s: batch_end: "
	    "%s", backends[_i].name, err);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 9);
	ck_assert_int_eq(pthread_create(&tid, NULL, peek_main, &pa), 0);
	ck_assert_int_eq(pthread_join(tid, NULL), 0);
	ck_assert_uint_eq(pa.used, 9);
	if (backends[_i].persistent) {
		t->s->ops->close(t->s);
		t->s = topen(t, 1);
		ck_assert_uint_eq(used(t, L_WIN, "alice"), 9);
	}
	tenv_free(t);
}
END_TEST

/*
 * batch_that_fails_applies_nothing - a call that fails inside a batch
 * fails the later ones and the batch: none of its charges remain (LMDB)
 */
START_TEST(batch_that_fails_applies_nothing)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_op op;
	struct quota_op_result res;
	char err[512] = "";
	int admitted = -1;

	ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 1);
	ck_assert_int_eq(batch_begin(t), 1);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 2, NULL), 1);
	op_set(t, &op, L_WIN, "bob", 1);
	ck_assert_int_eq(admit_ops(t, &op, 1, 77, t->now + 60000, NULL), 1);
	/* token 77 again: an error, after its counter was written */
	ck_assert_int_eq(t->s->ops->admit(t->s, &op, 1, t->now, 77,
	    t->now + 60000, &res, &admitted, err, sizeof(err)), -1);
	err[0] = '\0';
	op_set(t, &op, L_WIN, "carol", 1);
	ck_assert_int_eq(t->s->ops->admit(t->s, &op, 1, t->now, 0, 0, &res,
	    &admitted, err, sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0', "no reason for the failed call");
	err[0] = '\0';
	ck_assert_int_eq(batch_end(t, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "batch") != NULL, "unclear error: %s", err);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 1);
	ck_assert_uint_eq(used(t, L_WIN, "bob"), 0);
	ck_assert_uint_eq(used(t, L_WIN, "carol"), 0);
	/* the store works on */
	ck_assert_int_eq(admit1(t, L_WIN, "carol", 1, NULL), 1);
	ck_assert_uint_eq(used(t, L_WIN, "carol"), 1);
	tenv_free(t);
}
END_TEST

/* What a deferred call's done function got. */
struct got {
	int ncalls;
	int rc[64];
	enum quota_result result[64];
	uint64_t used[64];
	uint64_t token[64];
};

/* got_done - a completion: note the answer in call order */
static void
got_done(void *arg, int rc, const struct quota_verdict *v, uint64_t token)
{
	struct got *g = arg;

	ck_assert_int_lt(g->ncalls, 64);
	g->rc[g->ncalls] = rc;
	g->result[g->ncalls] = v->result;
	g->used[g->ncalls] = v->used;
	g->token[g->ncalls] = token;
	g->ncalls++;
}

/*
 * flush_all - quota_flush(b), then, while answers are pending, wait for
 * the batch's descriptor and quota_poll (at most 10 s); asks for the
 * descriptor first, so that a store with pipelines answers through it
 */
static void
flush_all(struct quota_batch *b)
{
	struct pollfd pfd;
	enum quota_flush st;
	int i;

	pfd.fd = quota_batch_fd(b);
	pfd.events = POLLIN;
	st = quota_flush(b);
	for (i = 0; st == QUOTA_PENDING && i < 100; i++) {
		ck_assert_int_ge(pfd.fd, 0);
		(void)poll(&pfd, 1, 100);
		st = quota_poll(b);
	}
	ck_assert_int_eq(st, QUOTA_DONE);
}

/* tquota - a quota over the case's store (which it takes over) */
static struct quota *
tquota(struct tenv *t)
{
	char err[512] = "";
	struct quota *q;

	t->conf.nlimits = 1;	/* L_WIN only: 10 messages per 60 s */
	q = quota_open_store(&t->conf, t->s, err, sizeof(err));
	ck_assert_msg(q != NULL, "%s: quota_open_store: %s",
	    backends[t->b].name, err);
	t->s = NULL;
	return q;
}

/*
 * pipelined_batch_gives_the_one_by_one_results - 3N admissions submitted
 * to one batch (LMDB: one transaction; Redis: one pipeline, answered
 * through the batch's descriptor) are answered only by the flush, and get
 * exactly the verdicts of the same admissions made one by one: the first
 * N admitted, the rest refused at N; reservations, commits and releases
 * submitted together run in order
 */
START_TEST(pipelined_batch_gives_the_one_by_one_results)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_who bob = { "bob", NULL, NULL };
	struct quota_who carol = { "carol", NULL, NULL };
	struct quota_who dave = { "dave", NULL, NULL };
	struct quota_amount one = { 1, 0, 0 };
	struct quota_verdict v;
	struct got g, r;
	struct quota *q = tquota(t);
	struct quota_batch *b = quota_batch_new(q);
	int i, n = 30;

	memset(&g, 0, sizeof(g));
	for (i = 0; i < n; i++)
		quota_submit_admit(b, &alice, &one, t->now, 0, got_done, &g);
	ck_assert_msg(g.ncalls == 0, "%s: %d answers before the flush",
	    backends[_i].name, g.ncalls);
	flush_all(b);
	ck_assert_int_eq(g.ncalls, n);
	for (i = 0; i < n; i++) {
		ck_assert_int_eq(quota_admit(q, &bob, &one, t->now, &v), 0);
		ck_assert_msg(g.rc[i] == 0 && g.result[i] == v.result &&
		    g.used[i] == v.used, "%s: call %d: got rc %d result %d "
		    "used %llu, want 0 %d %llu (one by one)",
		    backends[_i].name, i, g.rc[i], g.result[i],
		    (unsigned long long)g.used[i], v.result,
		    (unsigned long long)v.used);
		ck_assert_int_eq(g.result[i], i < 10 ? QUOTA_ADMIT :
		    QUOTA_REFUSE);
	}

	/* reservations: 3 reserved, then one released, one committed */
	memset(&r, 0, sizeof(r));
	for (i = 0; i < 3; i++)
		quota_submit_admit(b, &carol, &one, t->now, 1, got_done, &r);
	flush_all(b);
	ck_assert_int_eq(r.ncalls, 3);
	for (i = 0; i < 3; i++)
		ck_assert_msg(r.rc[i] == 0 && r.result[i] == QUOTA_ADMIT &&
		    r.token[i] != 0 && r.used[i] == 0, "%s: reservation %d",
		    backends[_i].name, i);
	memset(&g, 0, sizeof(g));
	quota_submit_release(b, r.token[0], t->now);
	quota_submit_commit(b, r.token[1], &carol, &one, t->now, got_done,
	    &g);
	quota_submit_admit(b, &carol, &one, t->now, 1, got_done, &g);
	flush_all(b);
	ck_assert_int_eq(g.ncalls, 2);
	ck_assert_int_eq(g.result[0], QUOTA_ADMIT);
	ck_assert_int_eq(g.result[1], QUOTA_ADMIT);
	ck_assert_uint_ne(g.token[1], 0);
	quota_submit_release(b, g.token[1], t->now);
	flush_all(b);
	/* 2 of the 4 stay charged: 8 more fit, not a 9th */
	for (i = 0; i < 8; i++) {
		ck_assert_int_eq(quota_admit(q, &carol, &one, t->now, &v), 0);
		ck_assert_int_eq(v.result, QUOTA_ADMIT);
	}
	ck_assert_int_eq(quota_admit(q, &carol, &one, t->now, &v), 0);
	ck_assert_int_eq(v.result, QUOTA_REFUSE);
	ck_assert_uint_eq(v.used, 10);

	/* runs of releases and of commits (Redis: one script each) */
	memset(&r, 0, sizeof(r));
	for (i = 0; i < 7; i++)
		quota_submit_admit(b, &dave, &one, t->now, 1, got_done, &r);
	flush_all(b);
	ck_assert_int_eq(r.ncalls, 7);
	memset(&g, 0, sizeof(g));
	for (i = 0; i < 7; i++) {
		ck_assert_uint_ne(r.token[i], 0);
		if (i < 4)
			quota_submit_release(b, r.token[i], t->now);
		else
			quota_submit_commit(b, r.token[i], &dave, &one,
			    t->now, got_done, &g);
	}
	flush_all(b);
	ck_assert_int_eq(g.ncalls, 3);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(g.result[i], QUOTA_ADMIT);
	/* 3 committed: 7 more fit, not an 8th */
	for (i = 0; i < 7; i++) {
		ck_assert_int_eq(quota_admit(q, &dave, &one, t->now, &v), 0);
		ck_assert_int_eq(v.result, QUOTA_ADMIT);
	}
	ck_assert_int_eq(quota_admit(q, &dave, &one, t->now, &v), 0);
	ck_assert_int_eq(v.result, QUOTA_REFUSE);
	ck_assert_uint_eq(quota_errors(q), 0);
	quota_batch_free(b);
	quota_close(q);
	tenv_free(t);
}
END_TEST

/*
 * pipelined_batch_store_down_fails_each_call - with the Redis server
 * unreachable, every admission of a pipelined batch gets QUOTA_ERROR
 * (rc -1) when the batch ends, each counted as a store error; the store
 * serves again once the server is there
 */
START_TEST(pipelined_batch_store_down_fails_each_call)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_amount one = { 1, 0, 0 };
	struct quota_store *down;
	struct quota_batch *b;
	struct quota *q;
	struct got g;
	char url[64], err[512] = "";
	int i;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", free_port());
	t->conf.store.url = url;
	t->conf.store.timeout_ms = 300;
	t->conf.nlimits = 1;
	down = store_redis_open(&t->conf, err, sizeof(err));
	ck_assert_msg(down != NULL, "open: %s", err);
	q = quota_open_store(&t->conf, down, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	b = quota_batch_new(q);
	memset(&g, 0, sizeof(g));
	for (i = 0; i < 5; i++)
		quota_submit_admit(b, &alice, &one, t->now, i % 2, got_done,
		    &g);
	ck_assert_int_eq(g.ncalls, 0);
	flush_all(b);
	ck_assert_int_eq(g.ncalls, 5);
	for (i = 0; i < 5; i++)
		ck_assert_msg(g.rc[i] == -1 && g.result[i] == QUOTA_ERROR &&
		    g.token[i] == 0, "call %d: got rc %d result %d, want -1 "
		    "QUOTA_ERROR", i, g.rc[i], g.result[i]);
	ck_assert_uint_eq(quota_errors(q), 5);
	b = quota_batch_free(b);
	quota_close(q);

	/* the real server: the same quota code works on */
	t->conf.store.url = t->url;
	q = tquota(t);
	b = quota_batch_new(q);
	memset(&g, 0, sizeof(g));
	quota_submit_admit(b, &alice, &one, t->now, 0, got_done, &g);
	flush_all(b);
	ck_assert_int_eq(g.ncalls, 1);
	ck_assert_int_eq(g.result[0], QUOTA_ADMIT);
	b = quota_batch_free(b);
	quota_close(q);
	tenv_free(t);
}
END_TEST

/* pcall_admit - call i of a store pipeline: admit op with token */
static void
pcall_admit(struct quota_store_call *c, struct quota_op *op,
    struct quota_op_result *res, uint64_t token, int64_t now)
{
	memset(c, 0, sizeof(*c));
	c->kind = QUOTA_CALL_ADMIT;
	c->ops = op;
	c->n = 1;
	c->now_ms = now;
	c->token = token;
	c->expires_ms = now + 60000;
	c->res = res;
}

/* pcall_settle - call i of a store pipeline: commit or release token */
static void
pcall_settle(struct quota_store_call *c, enum quota_call_kind kind,
    uint64_t token, int64_t now)
{
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->now_ms = now;
	c->token = token;
}

/* run_calls - the store's pipeline op, or each call alone without one */
static void
run_calls(struct tenv *t, struct quota_store_call *c, size_t n)
{
	size_t i;

	if (t->s->ops->pipeline != NULL) {
		t->s->ops->pipeline(t->s, c, n);
		return;
	}
	for (i = 0; i < n; i++) {
		c[i].err[0] = '\0';
		if (c[i].kind == QUOTA_CALL_ADMIT)
			c[i].rc = t->s->ops->admit(t->s, c[i].ops, c[i].n,
			    c[i].now_ms, c[i].token, c[i].expires_ms,
			    c[i].res, &c[i].admitted, c[i].err,
			    sizeof(c[i].err));
		else if (c[i].kind == QUOTA_CALL_COMMIT)
			c[i].rc = t->s->ops->commit(t->s, c[i].token,
			    c[i].ops, c[i].n, c[i].now_ms, c[i].res,
			    &c[i].admitted, c[i].err, sizeof(c[i].err));
		else
			c[i].rc = t->s->ops->release(t->s, c[i].token,
			    c[i].now_ms, c[i].err, sizeof(c[i].err));
	}
}

/*
 * store_pipeline_runs_mixed_calls_in_order - admissions, commits and
 * releases on one counter in one store pipeline (Redis: one run script)
 * each act as if made alone, in order, seeing those before them; a
 * reservation token in use fails that call alone
 */
START_TEST(store_pipeline_runs_mixed_calls_in_order)
{
	static const struct {
		int kind;		/* QUOTA_CALL_* */
		uint64_t token, amount;
		int rc, admitted, used;	/* want; used: -1 unchecked */
	} plan[] = {
		{ QUOTA_CALL_ADMIT, 301, 4, 0, 1, 0 },
		{ QUOTA_CALL_ADMIT, 302, 4, 0, 1, 4 },
		{ QUOTA_CALL_ADMIT, 303, 4, 0, 0, 8 },	/* 12 > 10 */
		{ QUOTA_CALL_ADMIT, 301, 1, -1, 0, -1 },	/* in use */
		{ QUOTA_CALL_RELEASE, 302, 0, 0, 0, -1 },	/* back to 4 */
		{ QUOTA_CALL_ADMIT, 303, 4, 0, 1, 4 },
		{ QUOTA_CALL_COMMIT, 301, 0, 0, 0, -1 },
		{ QUOTA_CALL_COMMIT, 303, 0, 0, 0, -1 },
		{ QUOTA_CALL_COMMIT, 0, 0, 0, 0, -1 },	/* no token */
		{ QUOTA_CALL_ADMIT, 0, 2, 0, 1, 8 },
		{ QUOTA_CALL_ADMIT, 0, 1, 0, 0, 10 },
		{ QUOTA_CALL_ADMIT, 301, 1, 0, 0, 10 },	/* free again */
		{ QUOTA_CALL_RELEASE, 303, 0, 0, 0, -1 },	/* committed */
	};
	enum { N = sizeof(plan) / sizeof(plan[0]) };
	struct tenv *t = tenv_new(_i, 1);
	struct quota_store_call c[N];
	struct quota_op ops[N];
	struct quota_op_result res[N];
	size_t i;

	for (i = 0; i < N; i++) {
		if (plan[i].kind == QUOTA_CALL_ADMIT) {
			op_set(t, &ops[i], L_WIN, "alice", plan[i].amount);
			pcall_admit(&c[i], &ops[i], &res[i], plan[i].token,
			    t->now);
		} else
			pcall_settle(&c[i], plan[i].kind, plan[i].token,
			    t->now);
	}
	run_calls(t, c, N);
	for (i = 0; i < N; i++) {
		ck_assert_msg(c[i].rc == plan[i].rc, "%s: call %zu: rc %d "
		    "(%s), want %d", backends[_i].name, i, c[i].rc, c[i].err,
		    plan[i].rc);
		if (plan[i].rc == -1)
			ck_assert_msg(c[i].err[0] != '\0', "%s: call %zu "
			    "failed without a reason", backends[_i].name, i);
		if (plan[i].kind != QUOTA_CALL_ADMIT || plan[i].rc != 0)
			continue;
		ck_assert_msg(c[i].admitted == plan[i].admitted, "%s: call "
		    "%zu: admitted %d, want %d", backends[_i].name, i,
		    c[i].admitted, plan[i].admitted);
		ck_assert_msg(res[i].check.used == (uint64_t)plan[i].used,
		    "%s: call %zu: used %llu, want %d", backends[_i].name, i,
		    (unsigned long long)res[i].check.used, plan[i].used);
	}
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 10);
	tenv_free(t);
}
END_TEST

/*
 * redis_pipeline_cut_fails_whole_runs - against a server that is not
 * there, every call of a store pipeline fails with a reason, and a
 * settle without a token still succeeds (nothing to send)
 */
START_TEST(redis_pipeline_cut_fails_whole_runs)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_store_call c[4];
	struct quota_op ops[2];
	struct quota_op_result res[2];
	struct quota_store *down;
	char url[64], err[512] = "";
	size_t i;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", free_port());
	t->conf.store.url = url;
	t->conf.store.timeout_ms = 300;
	down = store_redis_open(&t->conf, err, sizeof(err));
	ck_assert_msg(down != NULL, "open: %s", err);
	op_set(t, &ops[0], L_WIN, "alice", 1);
	op_set(t, &ops[1], L_WIN, "bob", 1);
	pcall_admit(&c[0], &ops[0], &res[0], 5, t->now);
	pcall_settle(&c[1], QUOTA_CALL_COMMIT, 0, t->now);
	pcall_admit(&c[2], &ops[1], &res[1], 0, t->now);
	pcall_settle(&c[3], QUOTA_CALL_RELEASE, 5, t->now);
	down->ops->pipeline(down, c, 4);
	for (i = 0; i < 4; i++)
		ck_assert_msg(i == 1 ? c[i].rc == 0 : c[i].rc == -1 &&
		    c[i].err[0] != '\0' && !c[i].admitted, "call %zu: rc %d "
		    "admitted %d (%s)", i, c[i].rc, c[i].admitted, c[i].err);
	down->ops->close(down);
	tenv_free(t);
}
END_TEST

/*
 * redis_scripts_and_connections_come_back - after SCRIPT FLUSH (the
 * server forgot the script: NOSCRIPT) and after the server closed the
 * pooled connections (CLIENT KILL), single calls and a pipeline of
 * several runs succeed, each applied exactly once
 */
START_TEST(redis_scripts_and_connections_come_back)
{
	struct tenv *t = tenv_new(_i, 1);
	struct quota_store_call c[70];
	struct quota_op ops[70];
	struct quota_op_result res[70];
	size_t i, n = sizeof(c) / sizeof(c[0]);
	char err[512] = "";
	int round;

	t->limits[L_HOUR].limit = 100000;
	ck_assert_int_eq(admit1(t, L_HOUR, "alice", 1, NULL), 1);
	for (round = 0; round < 2; round++) {
		ck_assert_int_eq(redis_cmd(round == 0 ? "SCRIPT FLUSH" :
		    "CLIENT KILL TYPE normal", NULL), 0);
		ck_assert_int_eq(admit1(t, L_HOUR, "alice", 1, NULL), 1);
		ck_assert_int_eq(redis_cmd(round == 0 ? "SCRIPT FLUSH" :
		    "CLIENT KILL TYPE normal", NULL), 0);
		/* more calls than one run takes: several runs */
		for (i = 0; i < n; i++) {
			op_set(t, &ops[i], L_HOUR, "alice", 1);
			pcall_admit(&c[i], &ops[i], &res[i], 0, t->now);
		}
		t->s->ops->pipeline(t->s, c, n);
		for (i = 0; i < n; i++)
			ck_assert_msg(c[i].rc == 0 && c[i].admitted, "round "
			    "%d call %zu: rc %d admitted %d (%s)", round, i,
			    c[i].rc, c[i].admitted, c[i].err);
		ck_assert_uint_eq(used(t, L_HOUR, "alice"),
		    1 + (uint64_t)(round + 1) * (n + 1));
	}
	ck_assert_int_eq(store_commit(t, 1, t->now, err,
	    sizeof(err)), 0);
	tenv_free(t);
}
END_TEST

/* redis_argv - one command with its arguments; 0 if it answered */
static int
redis_argv(int argc, const char **argv)
{
	redisContext *rc;
	redisReply *r;
	int ok = -1;

	if ((rc = redis_conn()) == NULL)
		return -1;
	if ((r = redisCommandArgv(rc, argc, argv, NULL)) != NULL) {
		if (r->type != REDIS_REPLY_ERROR)
			ok = 0;
		freeReplyObject(r);
	}
	redisFree(rc);
	return ok;
}

/* redis_value - the value of key into buf (NUL-ended); its length, -1 */
static long
redis_value(const char *key, char *buf, size_t len)
{
	redisContext *rc;
	redisReply *r;
	long n = -1;

	if ((rc = redis_conn()) == NULL)
		return -1;
	if ((r = redisCommand(rc, "GET %s", key)) != NULL) {
		if (r->type == REDIS_REPLY_STRING && r->len < len) {
			memcpy(buf, r->str, r->len);
			buf[r->len] = '\0';
			n = (long)r->len;
		}
		freeReplyObject(r);
	}
	redisFree(rc);
	return n;
}

/*
 * redis_malformed_counter_reads_as_none - a value that is not a counter
 * (text, or a binary value cut short) reads as no counter, by get() and
 * by the run script, whose next admission starts it again binary; never
 * as garbage counts
 */
START_TEST(redis_malformed_counter_reads_as_none)
{
	struct tenv *t = tenv_new(_i, 1);
	const struct conf_limit *l = &t->limits[L_WIN];
	char key[64], got[1024];
	const char *text[] = { "SET", key, "0 59 3 4" };
	const char *cut[] = { "SET", key, "\001\000\000\000" };

	snprintf(key, sizeof(key), "outpost:q:%s%calice", l->name,
	    QUOTA_RKEY_SEP);
	ck_assert_int_eq(redis_argv(3, text), 0);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 0);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 2, NULL), 1);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 2);
	/* written binary: tag, T0, F, K = 1 bucket, 1 double */
	ck_assert_int_eq(redis_value(key, got, sizeof(got)), 11 + 8);
	ck_assert_int_eq(got[0], 1);
	ck_assert_int_eq(got[10], 1);

	ck_assert_int_eq(redis_argv(3, cut), 0);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 0);
	ck_assert_int_eq(admit1(t, L_WIN, "alice", 1, NULL), 1);
	ck_assert_uint_eq(used(t, L_WIN, "alice"), 1);
	tenv_free(t);
}
END_TEST

/* rnd - the next number of a xorshift64 sequence, in [0, n) */
static uint64_t
rnd(uint64_t *x, uint64_t n)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x % n;
}

#define AGREE_STEPS	20000
#define AGREE_TOKENS	12

/*
 * stores_agree_with_memory - a random run of admissions (one to three
 * ops of window, calendar and rate limits on four keys, with overrides,
 * unlimited and warn-only ops, amounts of 1 to 4), reservations
 * committed, released and left to lapse, on a clock that moves by
 * seconds, minutes and sometimes days, made on this backend and on the
 * memory store (quota/algo.c as it is); every verdict, used and
 * retry-after must be the same, and so must every counter at the end.
 * For Redis this checks the run script's transcription of algo.c.
 * It starts with a sender busy all hour (a full window).
 */
START_TEST(stores_agree_with_memory)
{
	static const int lims[] = { L_WIN, L_CAL, L_RATE, L_SHORT, L_MANY,
	    L_BERLIN };
	static const char *const keys[] = { "k0", "k1", "k2", "k3" };
	const size_t nl = sizeof(lims) / sizeof(lims[0]);
	const size_t nk = sizeof(keys) / sizeof(keys[0]);
	struct tenv *t = tenv_new(_i, 1), *m = tenv_new(B_MEMORY, 1);
	uint64_t x = 0x9e3779b97f4a7c15ULL, tokens[AGREE_TOKENS], next = 1;
	struct quota_op tops[AGREE_TOKENS][3], mops[AGREE_TOKENS][3];
	size_t tn[AGREE_TOKENS];
	size_t ntok = 0, step, i, j, k;
	char err[512] = "";

	/* first k0 sends every 20 s for 70 minutes: its window of 60
	 * buckets is full (a dense state, which the script walks by index) */
	for (step = 0; step < 210; step++) {
		struct quota_check ct, cm;
		int at, am;

		t->now += 20000;
		m->now = t->now;
		at = admit1(t, L_MANY, "k0", 1, &ct);
		am = admit1(m, L_MANY, "k0", 1, &cm);
		ck_assert_msg(at == am && ct.used == cm.used &&
		    ct.retry_ms == cm.retry_ms, "busy step %zu: %s admitted "
		    "%d used %llu retry %llu; memory %d %llu %llu", step,
		    backends[_i].name, at, (unsigned long long)ct.used,
		    (unsigned long long)ct.retry_ms, am,
		    (unsigned long long)cm.used,
		    (unsigned long long)cm.retry_ms);
	}
	/* 61 buckets of 3: the oldest one counts whole */
	ck_assert_uint_eq(used(t, L_MANY, "k0"), 183);
	for (step = 0; step < AGREE_STEPS; step++) {
		uint64_t r = rnd(&x, 100);

		if (r < 60)
			t->now += (int64_t)rnd(&x, 20000);
		else if (r < 95)
			t->now += (int64_t)rnd(&x, 600000);
		else
			t->now += (int64_t)rnd(&x, 2 * 86400000ULL);
		m->now = t->now;
		r = rnd(&x, 100);
		if (r < 70 || ntok == 0) {
			struct quota_op ot[3], om[3];
			struct quota_op_result rt[3], rm[3];
			size_t n = 1 + (size_t)rnd(&x, 3);
			uint64_t tok = 0;
			int at, am;

			for (i = 0; i < n; i++) {
				int l = lims[(i + rnd(&x, nl)) % nl];
				const char *key = keys[rnd(&x, nk)];
				uint64_t amount = 1 + rnd(&x, 4);

				for (j = 0; j < i; j++)	/* one op per counter */
					if (ot[j].limit == &t->limits[l] &&
					    strcmp(ot[j].rkey + strlen(
					    t->limits[l].name) + 1, key) == 0)
						break;
				if (j < i) {
					n = i;
					break;
				}
				op_set(t, &ot[i], l, key, amount);
				op_set(m, &om[i], l, key, amount);
				if (t->limits[l].kind != CONF_QKIND_RATE) {
					switch (rnd(&x, 6)) {
					case 0:
						ot[i].eff_limit = QUOTA_UNLIMITED;
						break;
					case 1:
						ot[i].eff_limit =
						    t->limits[l].limit / 2;
						break;
					case 2:
						ot[i].eff_limit =
						    t->limits[l].limit * 2;
						break;
					}
					om[i].eff_limit = ot[i].eff_limit;
				}
				ot[i].warn_only = om[i].warn_only =
				    rnd(&x, 8) == 0;
			}
			if (ntok < AGREE_TOKENS && rnd(&x, 2) == 0)
				tok = next++;
			k = (size_t)(1 + rnd(&x, 120)) * 1000;
			at = admit_ops(t, ot, n, tok, t->now + (int64_t)k, rt);
			am = admit_ops(m, om, n, tok, m->now + (int64_t)k, rm);
			ck_assert_msg(at == am, "step %zu: %s admitted %d, "
			    "memory %d", step, backends[_i].name, at, am);
			for (i = 0; i < n; i++) {
				ck_assert_msg(rt[i].check.admit ==
				    rm[i].check.admit && rt[i].check.used ==
				    rm[i].check.used && rt[i].check.retry_ms ==
				    rm[i].check.retry_ms, "step %zu, op %zu "
				    "(%s, %s): %s admit %d used %llu retry "
				    "%llu; memory admit %d used %llu retry "
				    "%llu", step, i, ot[i].limit->name,
				    ot[i].rkey, backends[_i].name,
				    rt[i].check.admit,
				    (unsigned long long)rt[i].check.used,
				    (unsigned long long)rt[i].check.retry_ms,
				    rm[i].check.admit,
				    (unsigned long long)rm[i].check.used,
				    (unsigned long long)rm[i].check.retry_ms);
			}
			if (tok != 0 && at == 1) {
				memcpy(tops[ntok], ot, n * sizeof(ot[0]));
				memcpy(mops[ntok], om, n * sizeof(om[0]));
				tn[ntok] = n;
				tokens[ntok++] = tok;
			}
		} else if (r < 85) {
			struct quota_op_result rt[3], rm[3];
			int at, am;

			/* a commit, of a reservation that may have lapsed:
			 * then admitted again from what it reserved */
			k = (size_t)rnd(&x, ntok);
			at = commit_ops(t, tokens[k], tops[k], tn[k], rt);
			am = commit_ops(m, tokens[k], mops[k], tn[k], rm);
			ck_assert_msg(at == am, "step %zu: commit: %s "
			    "admitted %d, memory %d", step, backends[_i].name,
			    at, am);
			for (i = 0; i < tn[k]; i++)
				ck_assert_msg(rt[i].check.admit ==
				    rm[i].check.admit && rt[i].check.used ==
				    rm[i].check.used && rt[i].check.retry_ms ==
				    rm[i].check.retry_ms, "step %zu, commit op "
				    "%zu: %s admit %d used %llu retry %llu; "
				    "memory %d %llu %llu", step, i,
				    backends[_i].name, rt[i].check.admit,
				    (unsigned long long)rt[i].check.used,
				    (unsigned long long)rt[i].check.retry_ms,
				    rm[i].check.admit,
				    (unsigned long long)rm[i].check.used,
				    (unsigned long long)rm[i].check.retry_ms);
			tokens[k] = tokens[--ntok];
			memmove(tops[k], tops[ntok], sizeof(tops[k]));
			memmove(mops[k], mops[ntok], sizeof(mops[k]));
			tn[k] = tn[ntok];
		} else {
			k = (size_t)rnd(&x, ntok);
			ck_assert_int_eq(t->s->ops->release(t->s, tokens[k],
			    t->now, err, sizeof(err)), 0);
			ck_assert_int_eq(m->s->ops->release(m->s, tokens[k],
			    m->now, err, sizeof(err)), 0);
			tokens[k] = tokens[--ntok];
			memmove(tops[k], tops[ntok], sizeof(tops[k]));
			memmove(mops[k], mops[ntok], sizeof(mops[k]));
			tn[k] = tn[ntok];
		}
	}
	/* an admission elsewhere refunds what lapsed; then every counter */
	ck_assert_int_eq(admit1(t, L_HOUR, "other", 1, NULL), 1);
	ck_assert_int_eq(admit1(m, L_HOUR, "other", 1, NULL), 1);
	for (i = 0; i < nl; i++)
		for (j = 0; j < nk; j++)
			ck_assert_msg(used(t, lims[i], keys[j]) ==
			    used(m, lims[i], keys[j]), "end: %s %s: %s %llu, "
			    "memory %llu", t->limits[lims[i]].name, keys[j],
			    backends[_i].name, (unsigned long long)used(t,
			    lims[i], keys[j]), (unsigned long long)used(m,
			    lims[i], keys[j]));
	tenv_free(m);
	tenv_free(t);
}
END_TEST

/* add - one TCase per behaviour, run on backend b */
static void
add(Suite *s, int b, const char *name, const TTest *test, int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_loop_test(tc, test, b, b + 1);
	if (timeout > 0)
		tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
}

#define ADD(s, b, fn, timeout) add(s, b, #fn, fn, timeout)

/* backend_suite - the behaviour suite on backend b */
static Suite *
backend_suite(int b)
{
	static const char *const names[NBACKENDS] = {
		"store memory", "store lmdb", "store redis",
		"store lmdb sync=always"
	};
	Suite *s;

	s = suite_create(names[b]);
	ADD(s, b, window_admits_limit_then_refuses, 0);
	ADD(s, b, calendar_admits_limit_then_refuses_until_midnight, 0);
	ADD(s, b, rate_admits_burst_then_one_per_interval, 0);
	ADD(s, b, amounts_larger_than_one_fit_or_not_whole, 0);
	ADD(s, b, all_or_nothing_across_ops, 0);
	ADD(s, b, warn_only_ops_never_refuse_and_keep_counting, 0);
	ADD(s, b, unlimited_ops_count_and_never_refuse, 0);
	ADD(s, b, reservation_commit_keeps_release_refunds, 0);
	ADD(s, b, reservation_lapses_and_is_refunded, 0);
	ADD(s, b, refused_reservation_records_nothing, 0);
	ADD(s, b, reservation_token_in_use_is_an_error, 0);
	ADD(s, b, get_put_del_iterate, 0);
	ADD(s, b, iterate_visits_every_record_and_stops_on_request, 30);
	/* only where they check something */
	if (backends[b].persistent)
		ADD(s, b, counters_survive_close_and_reopen, 0);
	if (backends[b].virtual_expiry)
		ADD(s, b, expired_records_reclaimed_over_simulated_days, 60);
	ADD(s, b, expired_records_reclaimed_real_clock, 20);
	ADD(s, b, window_refuses_on_the_server_clock, 0);
	ADD(s, b, threads_admit_exactly_the_limit, 30);
	ADD(s, b, batch_calls_see_each_other_and_apply_at_the_end, 0);
	ADD(s, b, pipelined_batch_gives_the_one_by_one_results, 0);
	ADD(s, b, store_pipeline_runs_mixed_calls_in_order, 0);
	ADD(s, b, lapsed_reservation_commit_charges_or_refuses, 30);
	if (b == B_LMDB || b == B_REDIS)
		ADD(s, b, stores_agree_with_memory, 60);
	if (b == B_REDIS) {
		ADD(s, b, pipelined_batch_store_down_fails_each_call, 0);
		ADD(s, b, redis_pipeline_cut_fails_whole_runs, 0);
		ADD(s, b, redis_malformed_counter_reads_as_none, 0);
		ADD(s, b, redis_scripts_and_connections_come_back, 0);
	}
	if (b == B_LMDB || b == B_LMDB_ALWAYS)
		ADD(s, b, batch_that_fails_applies_nothing, 0);
	if (b == B_LMDB) {
		ADD(s, b, lmdb_file_is_private_and_shared_in_process, 0);
		ADD(s, b, lmdb_missing_directory_is_an_error, 0);
		ADD(s, b, lmdb_small_map_reclaims_then_fails_cleanly_when_full, 60);
		ADD(s, b, lmdb_newer_format_is_refused, 0);
		ADD(s, b, lmdb_counters_without_format_are_damage, 0);
		ADD(s, b, lmdb_damaged_file_is_moved_aside, 30);
		ADD(s, b, lmdb_damage_met_in_a_transaction_recovers_at_next_open, 0);
		ADD(s, b, lmdb_processes_recover_once, 30);
	}
	return s;
}

int
main(void)
{
	SRunner *sr;
	int b, nf;

	if (redis_start() == -1)
		fprintf(stderr, "check_quota_store: REDIS CASES WILL FAIL: "
		    "%s\n", redis_why);
	sr = srunner_create(backend_suite(B_MEMORY));
	for (b = B_LMDB; b < NBACKENDS; b++)
		srunner_add_suite(sr, backend_suite(b));
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	redis_stop();
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
