/*
 * dns_cache - a bounded cache of DNS answers keyed by (name, type).
 *
 * A fixed array of entries searched by hash: the sizes are small (the
 * milter's configured entries, a few thousand at most) and the search is
 * one pass over 32-bit hashes, so no index to keep in step.  When full,
 * an expired entry or else the least recently used one is replaced.
 * Names are compared without case.  The cache owns its copies.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/dns_impl.h"
#include "util/xmalloc.h"

struct dns_entry {
	uint32_t hash;			/* 0: slot unused */
	int type;
	char *name;			/* owned, lower case */
	char *data;			/* owned */
	enum dns_rc rc;
	int64_t expires_ms;
	uint64_t used;			/* last use, for LRU */
};

struct dns_cache {
	struct dns_entry *v;
	size_t n;
	uint64_t tick;
};

/* key_hash - FNV-1a over the lower-cased name and the type; never 0 */
static uint32_t
key_hash(const char *name, int type)
{
	uint32_t h = 2166136261u;
	const unsigned char *p;

	for (p = (const unsigned char *)name; *p != '\0'; p++) {
		unsigned char c = *p;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 16777619u;
	}
	h = (h ^ (uint32_t)type) * 16777619u;
	return h == 0 ? 1 : h;
}

/* dns_cache_new - a cache of at most n entries */
struct dns_cache *
dns_cache_new(size_t n)
{
	struct dns_cache *c = xcalloc(1, sizeof(*c));

	c->v = xcalloc(n, sizeof(*c->v));
	c->n = n;
	return c;
}

/* entry_clear - release one entry's strings, mark the slot unused */
static void
entry_clear(struct dns_entry *e)
{
	free(e->name);
	free(e->data);
	memset(e, 0, sizeof(*e));
}

/* dns_cache_free - free the cache and its entries */
void
dns_cache_free(struct dns_cache *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++)
		entry_clear(&c->v[i]);
	free(c->v);
	free(c);
}

/* find - the slot holding (name, type), or NULL */
static struct dns_entry *
find(struct dns_cache *c, const char *name, int type, uint32_t h)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		struct dns_entry *e = &c->v[i];

		if (e->hash == h && e->type == type &&
		    strcasecmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

/* dns_cache_get - a live entry: 1 with *rc and *data, else 0 */
int
dns_cache_get(struct dns_cache *c, const char *name, int type,
    int64_t now_ms, enum dns_rc *rc, const char **data)
{
	struct dns_entry *e = find(c, name, type, key_hash(name, type));

	if (e == NULL)
		return 0;
	if (e->expires_ms <= now_ms) {
		entry_clear(e);
		return 0;
	}
	e->used = ++c->tick;
	*rc = e->rc;
	*data = e->data;
	return 1;
}

/* victim - the slot to reuse: free, else expired, else least recent */
static struct dns_entry *
victim(struct dns_cache *c, int64_t now_ms)
{
	struct dns_entry *best = &c->v[0];
	size_t i;

	for (i = 0; i < c->n; i++) {
		struct dns_entry *e = &c->v[i];

		if (e->hash == 0 || e->expires_ms <= now_ms)
			return e;
		if (e->used < best->used)
			best = e;
	}
	return best;
}

/* dns_cache_put - store a copy of an answer for ttl_s seconds */
void
dns_cache_put(struct dns_cache *c, const char *name, int type,
    int64_t now_ms, unsigned ttl_s, enum dns_rc rc, const char *data)
{
	uint32_t h = key_hash(name, type);
	struct dns_entry *e;
	char *p;

	if (ttl_s == 0)
		return;
	e = find(c, name, type, h);
	if (e == NULL)
		e = victim(c, now_ms);
	entry_clear(e);
	e->hash = h;
	e->type = type;
	e->name = xstrdup(name);
	for (p = e->name; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	e->data = xstrdup(data);
	e->rc = rc;
	e->expires_ms = now_ms + (int64_t)ttl_s * 1000;
	e->used = ++c->tick;
}
