/*
 * redis_conn - the Redis store's connection pool, operation deadlines
 * and commands (private to quota/store_redis*.c).  Use:
 *
 *	struct redis_op op;
 *
 *	if (redis_op_begin(&op, pool, err, errlen) == -1)
 *		return -1;
 *	r = redis_command(&op, &args, &ioerr);
 *	redis_op_end(&op);
 *
 * or redis_run() for one command in an operation of its own, with the
 * retries that a pooled connection needs.
 */
#ifndef OUTPOST_QUOTA_REDIS_CONN_H
#define OUTPOST_QUOTA_REDIS_CONN_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "quota/redis_url.h"
#include "util/log.h"

#define REDIS_SCRIPTS_MAX 4

/* A pooled connection (c NULL: to connect when next used). */
struct redis_conn {
	redisContext *c;
	long tmo_ms;		/* socket timeout set on c */
	struct redis_conn *next;
};

/* An operation in progress: its deadline and its connection. */
struct redis_op {
	struct redis_pool *pool;
	int64_t deadline;	/* monotonic ms */
	struct redis_conn *rc;
	int fresh;		/* rc connected during this operation */
	char *err;
	size_t errlen;
};

/* redis_args - an argument vector for redisCommandArgv */
struct redis_args {
	size_t n, cap;
	const char **v;
	size_t *len;
	char (*num)[24];
};

/* redis_pipe_guard - SIGPIPE blocked around a command (see below) */
struct redis_pipe_guard {
	int on;
	int was_pending;
	sigset_t old;
};


/* The pool, one per store. */
struct redis_pool {
	struct redis_url url;	/* where, who, which database */
	long timeout_ms;	/* each operation's deadline */
	int guard_pipe;		/* SIGPIPE not ignored: block it in I/O */
	const char *const *scripts;	/* borrowed, loaded on connect */
	int nscript;
	char sha[REDIS_SCRIPTS_MAX][41];

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct redis_conn *idle; /* free connections (c may be NULL) */
	unsigned int nconn;
	int64_t down_until;	/* monotonic ms: no connect before */
	char down_err[256];
};

/*
 * redis_pool_init - parse url, digest the nscript scripts (borrowed);
 * no connection yet.  0, or -1 with err; redis_pool_free() either way.
 */
int redis_pool_init(struct redis_pool *pool, const char *url,
    long timeout_ms, const char *const *scripts, int nscript, char *err,
    size_t errlen);
/* redis_pool_free - close every pooled connection, free the URL */
void redis_pool_free(struct redis_pool *pool);

/* redis_err - "redis LABEL: reason" into err; -1 */
int redis_err(struct redis_pool *pool, char *err, size_t errlen,
    const char *fmt, ...) LOG_PRINTF(4, 5);

/* argument vectors for redisCommandArgv (strings borrowed) */
void redis_args_init(struct redis_args *a, size_t cap);
void redis_args_add(struct redis_args *a, const char *s, size_t len);
void redis_args_adds(struct redis_args *a, const char *s);
void redis_args_addi(struct redis_args *a, int64_t x);
void redis_args_addu(struct redis_args *a, uint64_t x);
void redis_args_free(struct redis_args *a);

/* operations: a connection of the pool, within one deadline */
int redis_op_begin(struct redis_op *op, struct redis_pool *pool,
    char *err, size_t errlen);
void redis_op_end(struct redis_op *op);
int redis_op_timeout(struct redis_op *op);
int redis_conn_open(struct redis_op *op);
void redis_conn_close(struct redis_conn *rc);
int redis_conn_error(struct redis_op *op);
int redis_load_script(struct redis_op *op, int i);
void redis_pipe_block(const struct redis_pool *pool,
    struct redis_pipe_guard *g);
void redis_pipe_unblock(struct redis_pipe_guard *g);
redisReply *redis_command(struct redis_op *op, struct redis_args *a,
    int *ioerr);
redisReply *redis_run(struct redis_pool *pool, int script,
    struct redis_args *a, char *err, size_t errlen);

#endif
