/*
 * store_redis_impl - what the Redis store's files share (private to
 * quota/store_redis*.c): the store, the key prefixes, a counter's binary
 * value and the functions one file offers the other.
 *
 *   store_redis.c        the store interface, the calls (admit, commit,
 *                        release) and their pipeline of run scripts
 *   store_redis_admin.c  counters one at a time (get, put, del,
 *                        iterate), with plain commands
 *
 * Connections, deadlines and commands: redis_conn.h.
 */
#ifndef OUTPOST_QUOTA_STORE_REDIS_IMPL_H
#define OUTPOST_QUOTA_STORE_REDIS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "quota/redis_conn.h"
#include "quota/store.h"

#define KEY_PREFIX	"outpost:"
#define QKEY_PREFIX	KEY_PREFIX "q:"

/*
 * A counter's value (binary, little-endian): BIN_TAG, the double T0, the
 * index F of its first bucket and the number K of buckets kept (a byte
 * each), then K doubles N_F .. N_F+K-1 (the buckets before F and after
 * the last, all 0, left out).  A value that starts otherwise is not a
 * counter (read as none).  Binary because the scripts parse and print a
 * counter at every admission: with one window limit whose 61 buckets
 * are all busy (a sender active all hour), an admission cost
 * redis-server 660,000 instructions with the text (string.gmatch,
 * tonumber, string.format) and 405,000 binary; 146,000 either way for a counter of one bucket
 * (callgrind).  The loops over a state's buckets then go by index when
 * its table is dense (dense(): #n >= 8, a busy window, whose binary
 * value becomes the table as it is) and by pairs() when it holds a few
 * buckets (most counters): 259,000 for the busy one, 146,000 for one.
 */
#define BIN_TAG		1
#define BIN_HFMT	"<dBB"
#define BIN_HDR		11

/* The store: opened by store_redis_open(), freed by redis_close(). */
struct redis_store {
	struct quota_store base;
	struct redis_pool pool;	/* connections, deadlines, the script */
	int client_clock;
};

/* store_redis_admin.c */
int redis_get(struct quota_store *s, const char *rkey, struct quota_state *st,
    int *found, char *err, size_t errlen);
int redis_put(struct quota_store *s, const char *rkey,
    const struct quota_state *st, int64_t expires_ms, char *err,
    size_t errlen);
int redis_del(struct quota_store *s, const char *rkey, char *err,
    size_t errlen);
int redis_iterate(struct quota_store *s, int (*fn)(const char *rkey,
    const struct quota_state *st, void *arg), void *arg, char *err,
    size_t errlen);

#endif
