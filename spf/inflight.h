/*
 * inflight - how many inbound SPF checks run now per client address and
 * per domain, with a limit on each, so that one client or one domain
 * whose DNS hangs cannot hold every SPF worker (spf/pool.c).
 *
 * Pure code, no clock: a bounded table of counters under one mutex,
 * searched linearly (at most one entry per check in flight, so a few
 * dozen).  Keys are compared without case; a key too long for the table
 * (SPF_NAME_MAX) is cut, which only merges counters.
 *
 * Use:
 *	spf_inflight_client_key(ip, key, sizeof(key));
 *	if (spf_inflight_enter(t, key, domain, why, sizeof(why)) < 0)
 *		return temperror, log why;
 *	... the check ...
 *	spf_inflight_leave(t, key, domain);
 *
 * A limit of 0 means no limit on that key.  Thread-safe.
 */
#ifndef OUTPOST_SPF_INFLIGHT_H
#define OUTPOST_SPF_INFLIGHT_H

#include <stddef.h>

struct spf_inflight;

/* spf_inflight_new - an empty table (spf_inflight_free) */
struct spf_inflight *spf_inflight_new(unsigned int per_client,
    unsigned int per_domain);
/* spf_inflight_free - release the table (no thread may use it); NULL ok */
struct spf_inflight *spf_inflight_free(struct spf_inflight *);

/*
 * spf_inflight_enter - count one more check of domain for client: 0, or
 * -1 with why saying which limit is reached (nothing counted then).
 * client or domain "" or NULL is not counted for that key.
 */
int spf_inflight_enter(struct spf_inflight *, const char *client,
    const char *domain, char *why, size_t whylen);
/* spf_inflight_leave - the check admitted by spf_inflight_enter ended */
void spf_inflight_leave(struct spf_inflight *, const char *client,
    const char *domain);
/*
 * spf_inflight_client_key - the key a client address counts under: an
 * IPv6 address by its /64 ("2001:db8:1:2::/64": one site or host has a
 * whole /64), an IPv4 or IPv4-mapped one as the IPv4 address, anything
 * else as given; into buf[len] (cut when too small)
 */
void spf_inflight_client_key(const char *ip, char *buf, size_t len);
/* spf_inflight_count - checks in flight for client (domain NULL) or for
 * domain (client NULL); for tests and logs */
unsigned int spf_inflight_count(struct spf_inflight *, const char *client,
    const char *domain);

#endif
