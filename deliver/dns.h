/*
 * dns - DNS lookups with a deadline and a per-name cache (thread-safe).
 *
 * The resolver is c-ares: every call ends by its deadline (timeout_ms
 * from dns_new), whatever the servers do; a lookup that does not end in
 * time is DNS_TEMPERROR.  The servers are those of /etc/resolv.conf, read
 * once by dns_new (dns_set_servers replaces them).
 *
 * Answers are cached per (name, type) in at most cache_entries entries
 * (the least recently used goes first): a positive answer for its TTL,
 * capped at DNS_TTL_MAX seconds; NXDOMAIN and NODATA for DNS_TTL_NEG
 * seconds; a temporary error (timeout, SERVFAIL, refused) for
 * DNS_TTL_TEMP seconds only, so that a burst of messages for a domain
 * whose DNS is down costs one timeout, not one each.  cache_entries 0
 * turns the cache off.
 *
 * Output: one item per line, every line ending in '\n' ("" when the
 * answer is not DNS_OK):
 *   dns_txt    each TXT record's strings joined, one record per line
 *              (bytes below 0x20 and 0x7f become '?');
 *   dns_mx     "pref host" per record; a null MX (RFC 7505) is "0 .";
 *   dns_ptr    the names of the address (IPv4 or IPv6 text form);
 *   dns_addrs  the A then the AAAA addresses of the name, as text.
 * Names are without the final dot.  An answer that does not fit outlen
 * is DNS_TEMPERROR ("answer too long").  err is always filled when the
 * result is not DNS_OK.
 *
 * Thread-safety: any number of threads may use one struct dns at once.
 * c-ares 1.18 channels are not thread-safe, and one lock around a shared
 * channel would make every lookup wait behind the slowest one (a server
 * that never answers would hold all the milter's threads for the whole
 * timeout): so each call makes its own channel, copied (ares_dup) from a
 * template channel that holds the options and servers.  Only that copy
 * and the cache are under the lock.
 */
#ifndef OUTPOST_DELIVER_DNS_H
#define OUTPOST_DELIVER_DNS_H

#include <stddef.h>

#define DNS_TTL_MAX	300	/* seconds: positive answers, at most */
#define DNS_TTL_NEG	60	/* seconds: NXDOMAIN, NODATA */
#define DNS_TTL_TEMP	2	/* seconds: timeouts and server failures */

struct dns;

enum dns_rc {
	DNS_OK,
	DNS_NXDOMAIN,
	DNS_NODATA,
	DNS_TEMPERROR,
};

/* dns_new - a resolver with its cache; NULL and err on failure.  The
 * caller frees it with dns_free. */
struct dns *dns_new(int timeout_ms, size_t cache_entries, char *err,
    size_t errlen);
/* dns_free - free d and its cache (NULL is fine) */
void dns_free(struct dns *d);
/* dns_set_servers - use these servers instead of resolv.conf's:
 * "ADDR[:PORT],...", IPv6 as "[ADDR]:PORT"; 0 or -1 and err.  Cached
 * answers are kept. */
int dns_set_servers(struct dns *d, const char *csv, char *err,
    size_t errlen);

enum dns_rc dns_txt(struct dns *d, const char *name, char *out,
    size_t outlen, char *err, size_t errlen);
enum dns_rc dns_mx(struct dns *d, const char *name, char *out,
    size_t outlen, char *err, size_t errlen);
enum dns_rc dns_ptr(struct dns *d, const char *addr, char *out,
    size_t outlen, char *err, size_t errlen);
enum dns_rc dns_addrs(struct dns *d, const char *name, char *out,
    size_t outlen, char *err, size_t errlen);

/* dns_rc_name - "ok", "nxdomain", "nodata" or "temperror" */
const char *dns_rc_name(enum dns_rc rc);

#endif
