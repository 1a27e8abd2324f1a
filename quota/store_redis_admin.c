/*
 * store_redis_admin - the Redis store's counters one at a time: get,
 * put, del and iterate of store.h, which outpostctl uses to inspect and
 * edit counters (quota_list, quota_reset, quota_set) and the milter to
 * read one (quota_used).  The calls, reservations and the run script
 * are in store_redis.c; see its top for the keys and the clock.
 *
 * These run plain commands (GET, SET with PXAT, DEL, SCAN and MGET), not
 * the run script: each command is its own operation on a pooled
 * connection (redis_run()) with its own deadline of store.timeout_ms,
 * and none touches the reservations.  With the client clock (tests),
 * put() sets no TTL: the record's expiry is in the test's time, not the
 * server's.
 *
 * A counter's value (outpost:q:RKEY) is the binary state described in
 * store_redis_impl.h, the form the run script reads and writes: BIN_TAG,
 * T0 as a little-endian double, the index of the first bucket kept and
 * the number kept (a byte each), then the buckets kept as little-endian
 * doubles.  state_decode() reads it (a value that does not parse, or
 * whose numbers are not whole, is no counter) and state_encode() writes
 * it, leaving out the empty buckets before the first busy one and after
 * the last.
 *
 * Ownership: the arguments and replies of a command live for the call
 * only; iterate passes fn a key and state on its stack, valid during
 * that call of fn only.  Failures: -1 with err.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "quota/redis_conn.h"
#include "quota/store_redis_impl.h"

#define SCAN_COUNT	"512"
#define QKEY_MAX	(sizeof(QKEY_PREFIX) + QUOTA_RKEY_MAX)

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

/*
 * key_cmd - VERB (GET or DEL) on one counter's key: the reply, which
 * the caller frees (freeReplyObject), or NULL with err
 */
static redisReply *
key_cmd(struct redis_store *rs, const char *verb, const char *rkey,
    char *err, size_t errlen)
{
	char key[QKEY_MAX];
	struct redis_args a;
	redisReply *r;
	int len;

	if ((len = qkey(rkey, key, sizeof(key))) == -1) {
		snprintf(err, errlen, "redis: key too long");
		return NULL;
	}
	redis_args_init(&a, 2);
	redis_args_adds(&a, verb);
	redis_args_add(&a, key, (size_t)len);
	r = redis_run(&rs->pool, -1, &a, err, errlen);
	redis_args_free(&a);
	return r;
}

/* redis_get - one counter's state (GET), *found = 0 if none */
int
redis_get(struct quota_store *s, const char *rkey, struct quota_state *st,
    int *found, char *err, size_t errlen)
{
	redisReply *r;

	*found = 0;
	memset(st, 0, sizeof(*st));
	r = key_cmd((struct redis_store *)s, "GET", rkey, err, errlen);
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
int
redis_put(struct quota_store *s, const char *rkey,
    const struct quota_state *st, int64_t expires_ms, char *err,
    size_t errlen)
{
	struct redis_store *rs = (struct redis_store *)s;
	char key[QKEY_MAX];
	unsigned char val[STATE_MAX];
	struct redis_args a;
	redisReply *r;
	int len;

	if ((len = qkey(rkey, key, sizeof(key))) == -1) {
		snprintf(err, errlen, "redis: key too long");
		return -1;
	}
	redis_args_init(&a, 5);
	redis_args_adds(&a, "SET");
	redis_args_add(&a, key, (size_t)len);
	redis_args_add(&a, (const char *)val, state_encode(st, val));
	if (!rs->client_clock && expires_ms > 0) {
		redis_args_adds(&a, "PXAT");
		redis_args_addi(&a, expires_ms);
	}
	r = redis_run(&rs->pool, -1, &a, err, errlen);
	redis_args_free(&a);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* redis_del - remove one counter (DEL) */
int
redis_del(struct quota_store *s, const char *rkey, char *err, size_t errlen)
{
	redisReply *r;

	r = key_cmd((struct redis_store *)s, "DEL", rkey, err, errlen);
	if (r == NULL)
		return -1;
	freeReplyObject(r);
	return 0;
}

/*
 * iterate_page - the values of one SCAN page's keys (one MGET), each
 * counter passed to fn; a record gone in between is skipped.  *stop is
 * set when fn asks to stop.  0, or -1 with err.
 */
static int
iterate_page(struct redis_store *rs, const redisReply *keys,
    int (*fn)(const char *rkey, const struct quota_state *st, void *arg),
    void *arg, int *stop, char *err, size_t errlen)
{
	const size_t plen = sizeof(QKEY_PREFIX) - 1;
	char rkey[QUOTA_RKEY_MAX];
	struct quota_state st;
	struct redis_args a;
	redisReply *v;
	size_t i;

	redis_args_init(&a, 1 + keys->elements);
	redis_args_adds(&a, "MGET");
	for (i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING) {
			redis_args_free(&a);
			return redis_err(&rs->pool, err, errlen, "SCAN: "
			    "unexpected reply");
		}
		redis_args_add(&a, keys->element[i]->str,
		    keys->element[i]->len);
	}
	v = redis_run(&rs->pool, -1, &a, err, errlen);
	redis_args_free(&a);
	if (v == NULL)
		return -1;
	if (v->type != REDIS_REPLY_ARRAY || v->elements != keys->elements) {
		freeReplyObject(v);
		return redis_err(&rs->pool, err, errlen, "MGET: unexpected "
		    "reply");
	}
	for (i = 0; i < v->elements && !*stop; i++) {
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
		*stop = fn(rkey, &st, arg) != 0;
	}
	freeReplyObject(v);
	return 0;
}

/*
 * redis_iterate - SCAN over outpost:q:*, a page at a time, each page's
 * values read with one MGET (iterate_page).  Each command is its own
 * operation, with its own timeout.
 */
int
redis_iterate(struct quota_store *s, int (*fn)(const char *rkey,
    const struct quota_state *st, void *arg), void *arg, char *err,
    size_t errlen)
{
	struct redis_store *rs = (struct redis_store *)s;
	char cursor[32] = "0";
	struct redis_args a;
	redisReply *r;
	int stop = 0, rc;

	do {
		redis_args_init(&a, 6);
		redis_args_adds(&a, "SCAN");
		redis_args_adds(&a, cursor);
		redis_args_adds(&a, "MATCH");
		redis_args_adds(&a, QKEY_PREFIX "*");
		redis_args_adds(&a, "COUNT");
		redis_args_adds(&a, SCAN_COUNT);
		r = redis_run(&rs->pool, -1, &a, err, errlen);
		redis_args_free(&a);
		if (r == NULL)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len >= sizeof(cursor) ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return redis_err(&rs->pool, err, errlen, "SCAN: "
			    "unexpected reply");
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len);
		cursor[r->element[0]->len] = '\0';
		rc = r->element[1]->elements == 0 ? 0 : iterate_page(rs,
		    r->element[1], fn, arg, &stop, err, errlen);
		freeReplyObject(r);
		if (rc == -1)
			return -1;
	} while (!stop && strcmp(cursor, "0") != 0);
	return 0;
}
