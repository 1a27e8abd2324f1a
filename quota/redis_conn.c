/*
 * redis_conn - the Redis store's connections: a pool of at most POOL_MAX
 * hiredis connections, each used by one thread at a time, the deadline
 * of an operation (store.timeout_ms from its start: waiting for a
 * connection, connecting and every command count against it), and
 * commands sent on them.  See store_redis.c for how the store uses it.
 *
 * Ownership: the pool owns its connections and its URL's strings
 * (redis_pool_free() frees them); the scripts are borrowed and must
 * outlive the pool.  An operation borrows one connection between
 * redis_op_begin() and redis_op_end().  Argument vectors borrow their
 * strings (numbers are formatted inside the vector).
 *
 * Failures: every call that can fail returns -1 (or NULL) with
 * "redis LABEL: reason" in the caller's err.  A connection with an I/O
 * error is closed, and the next operation connects again, at most once
 * per HOLDDOWN_MS after a failed connect (so a dead server costs each
 * caller one timeout, not one per pooled connection).  SIGPIPE, when the
 * program has not ignored it, is blocked around each command.
 */
#include "config.h"

#include <sys/time.h>
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

#include "quota/redis_conn.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define POOL_MAX	16
#define HOLDDOWN_MS	100

/* redis_err - "redis LABEL: reason" into err */
int
redis_err(struct redis_pool *pool, char *err, size_t errlen,
    const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "redis %s: %s", pool->url.label, msg);
	return -1;
}

/* redis_args_init - room for cap arguments */
void
redis_args_init(struct redis_args *a, size_t cap)
{
	a->n = 0;
	a->cap = cap;
	a->v = xcalloc(cap, sizeof(*a->v));
	a->len = xcalloc(cap, sizeof(*a->len));
	a->num = xcalloc(cap, sizeof(*a->num));
}

/* redis_args_add - one argument, borrowed */
void
redis_args_add(struct redis_args *a, const char *s, size_t len)
{
	ASSERT(a->n < a->cap);
	a->v[a->n] = s;
	a->len[a->n] = len;
	a->n++;
}

/* redis_args_adds - one NUL-terminated argument, borrowed */
void
redis_args_adds(struct redis_args *a, const char *s)
{
	redis_args_add(a, s, strlen(s));
}

/* redis_args_addi - a signed number, formatted in place */
void
redis_args_addi(struct redis_args *a, int64_t x)
{
	int len;

	ASSERT(a->n < a->cap);
	len = snprintf(a->num[a->n], sizeof(a->num[0]), "%" PRId64, x);
	redis_args_add(a, a->num[a->n], (size_t)len);
}

/* redis_args_addu - an unsigned number, formatted in place (no printf) */
void
redis_args_addu(struct redis_args *a, uint64_t x)
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
	redis_args_add(a, a->num[a->n], len);
}

/* redis_args_free - release the vector (not the borrowed strings) */
void
redis_args_free(struct redis_args *a)
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

/* redis_conn_close - drop rc's connection (made again when next used) */
void
redis_conn_close(struct redis_conn *rc)
{
	if (rc->c != NULL)
		redisFree(rc->c);
	rc->c = NULL;
	rc->tmo_ms = 0;
}

/*
 * redis_conn_error - the hiredis error of op's connection as text into
 * op->err, then close it; -1
 */
int
redis_conn_error(struct redis_op *op)
{
	struct redisContext *c = op->rc->c;

	if (c->err == REDIS_ERR_IO && (errno == EAGAIN ||
	    errno == EWOULDBLOCK || errno == EINPROGRESS ||
	    strstr(c->errstr, "temporarily unavailable") != NULL))
		redis_err(op->pool, op->err, op->errlen, "timed out (%ld ms)",
		    op->pool->timeout_ms);
	else if (c->err == REDIS_ERR_EOF)
		redis_err(op->pool, op->err, op->errlen, "connection closed by "
		    "server");
	else
		redis_err(op->pool, op->err, op->errlen, "%s",
		    c->errstr[0] != '\0' ?
		    c->errstr : "I/O error");
	redis_conn_close(op->rc);
	return -1;
}

/*
 * redis_op_timeout - set the socket timeout of the connection to what is left
 * of the operation's time; -1 if none is left
 */
int
redis_op_timeout(struct redis_op *op)
{
	int64_t left = op->deadline - clock_mono_ms();

	if (left <= 0) {
		redis_err(op->pool, op->err, op->errlen, "timed out (%ld ms)",
		    op->pool->timeout_ms);
		return -1;
	}
	/* a syscall pair per change: only when it drifts by 2 ms */
	if (left < op->rc->tmo_ms - 2 || left > op->rc->tmo_ms + 2) {
		if (redisSetTimeout(op->rc->c, tv_of(left)) != REDIS_OK)
			return redis_conn_error(op);
		op->rc->tmo_ms = (long)left;
	}
	return 0;
}

/*
 * redis_pipe_block/redis_pipe_unblock - keep a write to a socket the
 * server closed from killing the process with SIGPIPE when the program
 * has not ignored it (the daemons do; a tool may not): block it in this
 * thread around the I/O, then drop one that the I/O raised.
 */
void
redis_pipe_block(const struct redis_pool *pool,
    struct redis_pipe_guard *g)
{
	sigset_t set, pend;

	g->on = pool->guard_pipe;
	if (!g->on)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	g->was_pending = sigismember(&pend, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void
redis_pipe_unblock(struct redis_pipe_guard *g)
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
 * redis_command - send one command, return its reply; NULL with err on an I/O
 * error (connection closed) or an error reply (connection kept), and
 * *ioerr says which
 */
redisReply *
redis_command(struct redis_op *op, struct redis_args *a, int *ioerr)
{
	struct redis_pipe_guard g;
	redisReply *r;

	*ioerr = 1;
	if (redis_op_timeout(op) == -1)
		return NULL;
	redis_pipe_block(op->pool, &g);
	r = redisCommandArgv(op->rc->c, (int)a->n, a->v, a->len);
	redis_pipe_unblock(&g);
	if (r == NULL) {
		redis_conn_error(op);
		return NULL;
	}
	*ioerr = 0;
	if (r->type == REDIS_REPLY_ERROR) {
		redis_err(op->pool, op->err, op->errlen, "%.*s", (int)r->len,
		    r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

/* redis_command_simple - a command of up to 3 words, reply freed; 0 or -1 */
static int
redis_command_simple(struct redis_op *op, const char *w0, const char *w1,
    const char *w2)
{
	struct redis_args a;
	redisReply *r;
	int ioerr;

	redis_args_init(&a, 3);
	redis_args_adds(&a, w0);
	if (w1 != NULL)
		redis_args_adds(&a, w1);
	if (w2 != NULL)
		redis_args_adds(&a, w2);
	r = redis_command(op, &a, &ioerr);
	redis_args_free(&a);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* redis_load_script - SCRIPT LOAD script i; its digest must be ours */
int
redis_load_script(struct redis_op *op, int i)
{
	struct redis_args a;
	redisReply *r;
	int ioerr;

	redis_args_init(&a, 3);
	redis_args_adds(&a, "SCRIPT");
	redis_args_adds(&a, "LOAD");
	redis_args_adds(&a, op->pool->scripts[i]);
	r = redis_command(op, &a, &ioerr);
	redis_args_free(&a);
	if (r == NULL)
		return -1;
	if (r->type != REDIS_REPLY_STRING || r->len != 40 ||
	    memcmp(r->str, op->pool->sha[i], 40) != 0) {
		freeReplyObject(r);
		return redis_err(op->pool, op->err, op->errlen, "SCRIPT LOAD: "
		    "unexpected reply");
	}
	freeReplyObject(r);
	return 0;
}

/* redis_conn_open - connect op->rc, log in, select the db, load the scripts */
int
redis_conn_open(struct redis_op *op)
{
	struct redis_pool *pool = op->pool;
	struct redis_conn *rc = op->rc;
	int64_t now = clock_mono_ms(), left = op->deadline - now;
	int i;

	pthread_mutex_lock(&pool->mu);
	if (now < pool->down_until) {
		snprintf(op->err, op->errlen, "%s", pool->down_err);
		pthread_mutex_unlock(&pool->mu);
		return -1;
	}
	pthread_mutex_unlock(&pool->mu);
	if (left <= 0)
		return redis_err(pool, op->err, op->errlen,
		    "timed out (%ld ms)", pool->timeout_ms);
	if (pool->url.unix_sock)
		rc->c = redisConnectUnixWithTimeout(pool->url.path,
		    tv_of(left));
	else
		rc->c = redisConnectWithTimeout(pool->url.host, pool->url.port,
		    tv_of(left));
	if (rc->c == NULL) {
		redis_err(pool, op->err, op->errlen, "out of memory");
		goto fail;
	}
	if (rc->c->err) {
		if (rc->c->err == REDIS_ERR_IO && errno == EINPROGRESS)
			redis_err(pool, op->err, op->errlen,
			    "connect timed out (%ld ms)", pool->timeout_ms);
		else
			redis_err(pool, op->err, op->errlen, "%s",
			    rc->c->errstr);
		redis_conn_close(rc);
		goto fail;
	}
	rc->tmo_ms = 0;
	op->fresh = 1;
	if (pool->url.password != NULL && redis_command_simple(op, "AUTH",
	    pool->url.user != NULL ? pool->url.user : pool->url.password,
	    pool->url.user != NULL ? pool->url.password : NULL) == -1)
		goto fail_close;
	if (pool->url.db != 0) {
		char db[16];

		snprintf(db, sizeof(db), "%u", pool->url.db);
		if (redis_command_simple(op, "SELECT", db, NULL) == -1)
			goto fail_close;
	}
	for (i = 0; i < pool->nscript; i++)
		if (redis_load_script(op, i) == -1)
			goto fail_close;
	return 0;
fail_close:
	redis_conn_close(rc);
fail:
	pthread_mutex_lock(&pool->mu);
	pool->down_until = clock_mono_ms() + HOLDDOWN_MS;
	snprintf(pool->down_err, sizeof(pool->down_err), "%s", op->err);
	pthread_mutex_unlock(&pool->mu);
	return -1;
}

/* redis_op_begin - take a pooled connection within the deadline */
int
redis_op_begin(struct redis_op *op, struct redis_pool *pool, char *err,
    size_t errlen)
{
	struct timespec ts;

	memset(op, 0, sizeof(*op));
	op->pool = pool;
	op->err = err;
	op->errlen = errlen;
	op->deadline = clock_mono_ms() + pool->timeout_ms;
	ts.tv_sec = (time_t)(op->deadline / 1000);
	ts.tv_nsec = (long)(op->deadline % 1000) * 1000000;
	pthread_mutex_lock(&pool->mu);
	while (pool->idle == NULL && pool->nconn >= POOL_MAX) {
		if (pthread_cond_timedwait(&pool->cv, &pool->mu, &ts) ==
		    ETIMEDOUT && pool->idle == NULL) {
			pthread_mutex_unlock(&pool->mu);
			return redis_err(pool, err, errlen,
			    "no free connection "
			    "within %ld ms", pool->timeout_ms);
		}
	}
	if (pool->idle != NULL) {
		op->rc = pool->idle;
		pool->idle = op->rc->next;
	} else {
		op->rc = xcalloc(1, sizeof(*op->rc));
		pool->nconn++;
	}
	pthread_mutex_unlock(&pool->mu);
	op->rc->next = NULL;
	if (op->rc->c != NULL && op->rc->c->err)
		redis_conn_close(op->rc);
	if (op->rc->c == NULL && redis_conn_open(op) == -1) {
		redis_op_end(op);
		return -1;
	}
	return 0;
}

/* redis_op_end - give the connection back to the pool */
void
redis_op_end(struct redis_op *op)
{
	struct redis_pool *pool = op->pool;

	if (op->rc == NULL)
		return;
	pthread_mutex_lock(&pool->mu);
	op->rc->next = pool->idle;
	pool->idle = op->rc;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	op->rc = NULL;
}

/*
 * redis_run - one command (script < 0) or EVALSHA of
 * pool->scripts[script] (a->v[1] is filled here) in its own operation;
 * the reply, or NULL with err.  A reused connection that turns out
 * broken is replaced and the command sent once more; a timeout is never
 * retried.
 */
redisReply *
redis_run(struct redis_pool *pool, int script, struct redis_args *a, char *err,
    size_t errlen)
{
	struct redis_op op;
	redisReply *r = NULL;
	int ioerr, tries;

	if (script >= 0) {
		a->v[1] = pool->sha[script];
		a->len[1] = 40;
	}
	if (redis_op_begin(&op, pool, err, errlen) == -1)
		return NULL;
	for (tries = 0; tries < 2; tries++) {
		r = redis_command(&op, a, &ioerr);
		if (r != NULL)
			break;
		if (!ioerr) {
			if (script < 0 || strstr(err, "NOSCRIPT") == NULL)
				break;
			/* the server forgot our scripts: load them again */
			if (redis_load_script(&op, script) == -1)
				break;
			continue;
		}
		if (op.fresh || strstr(err, "timed out") != NULL)
			break;
		/* a pooled connection the server closed: replace it */
		if (redis_conn_open(&op) == -1)
			break;
	}
	redis_op_end(&op);
	return r;
}

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


/* redis_pool_init - see redis_conn.h */
int
redis_pool_init(struct redis_pool *pool, const char *url, long timeout_ms,
    const char *const *scripts, int nscript, char *err, size_t errlen)
{
	struct sigaction sa;
	pthread_condattr_t ca;
	int i;

	ASSERT(nscript >= 0 && nscript <= REDIS_SCRIPTS_MAX);
	memset(pool, 0, sizeof(*pool));
	pool->timeout_ms = timeout_ms;
	pool->scripts = scripts;
	pool->nscript = nscript;
	pthread_mutex_init(&pool->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pool->cv, &ca);
	pthread_condattr_destroy(&ca);
	pool->guard_pipe = sigaction(SIGPIPE, NULL, &sa) == -1 ||
	    sa.sa_handler != SIG_IGN;
	if (redis_url_parse(&pool->url, url, err, errlen) == -1)
		return -1;
	for (i = 0; i < nscript; i++)
		if (sha1_hex(scripts[i], pool->sha[i]) == -1) {
			snprintf(err, errlen, "redis: SHA-1 unavailable");
			return -1;
		}
	return 0;
}

/* redis_pool_free - see redis_conn.h */
void
redis_pool_free(struct redis_pool *pool)
{
	struct redis_conn *rc, *next;

	for (rc = pool->idle; rc != NULL; rc = next) {
		next = rc->next;
		redis_conn_close(rc);
		free(rc);
	}
	pool->idle = NULL;
	pthread_cond_destroy(&pool->cv);
	pthread_mutex_destroy(&pool->mu);
	redis_url_clear(&pool->url);
}
