/*
 * dns_impl - the parts of deliver/dns.c that are not its API: the answer
 * cache (deliver/dns_cache.c).  Not thread-safe by itself: dns.c holds
 * its lock around every call.
 */
#ifndef OUTPOST_DELIVER_DNS_IMPL_H
#define OUTPOST_DELIVER_DNS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "deliver/dns.h"

struct dns_cache;

/* dns_cache_new - a cache of at most n entries (n > 0); caller frees */
struct dns_cache *dns_cache_new(size_t n);
/* dns_cache_free - free c and its entries (NULL is fine) */
void dns_cache_free(struct dns_cache *c);
/* dns_cache_get - the live entry for (name, type) at time now_ms: 1 and
 * *rc, *data (borrowed: valid until the next call on c), or 0 */
int dns_cache_get(struct dns_cache *c, const char *name, int type,
    int64_t now_ms, enum dns_rc *rc, const char **data);
/* dns_cache_put - store a copy of the answer until now_ms + ttl_s
 * seconds, replacing any entry for (name, type) or the least recently
 * used one */
void dns_cache_put(struct dns_cache *c, const char *name, int type,
    int64_t now_ms, unsigned ttl_s, enum dns_rc rc, const char *data);

#endif
