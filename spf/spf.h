/*
 * spf - SPF evaluation over libspf2, with our result mapping, our DNS
 * lookup limits and our own header text.
 *
 * Only the SPF worker (spf/worker.c, a separate process) calls
 * spf_checker_*: libspf2 can abort() and Debian 12's build carries
 * CVE-2023-42118, so the milter never loads it (see spf/pool.h).  The
 * header, mapping and preflight functions below are pure and safe
 * anywhere; the milter and the tests call them directly.
 *
 * Result mapping: libspf2's SPF_RESULT_* map one to one; its "(invalid)"
 * result becomes SPF_RES_TEMPERROR when a DNS lookup failed and
 * SPF_RES_PERMERROR otherwise.  IPv4-mapped IPv6 client addresses
 * (::ffff:192.0.2.1) are checked as IPv4.  A loopback client is checked
 * like any other unless allow_loopback is set (libspf2 alone would pass
 * it without looking).
 */
#ifndef OUTPOST_SPF_H
#define OUTPOST_SPF_H

#include <stddef.h>
#include <stdint.h>

enum spf_result {
	SPF_RES_NONE,
	SPF_RES_NEUTRAL,
	SPF_RES_PASS,
	SPF_RES_FAIL,
	SPF_RES_SOFTFAIL,
	SPF_RES_TEMPERROR,
	SPF_RES_PERMERROR,
};

enum spf_identity {
	SPF_ID_MAILFROM,
	SPF_ID_HELO,
};

#define SPF_NAME_MAX 256		/* a domain name or HELO, with NUL */
#define SPF_TEXT_MAX 160		/* our own short explanation */

/* One question: may ip send for sender (or helo)?  Strings are borrowed. */
struct spf_query {
	const char *ip;			/* textual v4, v6 or v4-mapped v6 */
	const char *helo;		/* HELO/EHLO name, "" if none */
	const char *sender;		/* envelope sender, "" = null sender */
};

/* One answer.  Plain data: copied through the worker socket as is. */
struct spf_answer {
	enum spf_result result;
	enum spf_identity identity;	/* what was checked */
	char domain[SPF_NAME_MAX];	/* the domain checked */
	char text[SPF_TEXT_MAX];	/* why, in our words (no libspf2
					 * explanation strings) */
};

/* How a checker looks things up. */
struct spf_options {
	unsigned int max_dns_lookups;	/* RFC 7208 4.6.4: 10 */
	unsigned int max_void_lookups;	/* RFC 7208 4.6.4: 2 */
	int allow_loopback;
	/* zone: NULL for the system resolver, or a libspf2 zone filled
	 * by spf_checker_zone_add (tests, the RFC 7208 harness) */
	int use_zone;
	/* added: deadline per check in ms, 0 = none.  Our DNS layer looks
	 * nothing up after it and the check ends in temperror (the pool's
	 * alarm/kill stays the hard limit: a lookup in flight is not cut). */
	unsigned int timeout_ms;
};

struct spf_checker;

/* spf_checker_new - a libspf2 server with our DNS layer (spf_checker_free) */
struct spf_checker *spf_checker_new(const struct spf_options *, char *err,
    size_t errlen);
struct spf_checker *spf_checker_free(struct spf_checker *);

/*
 * spf_checker_zone_add - a record in the zone (use_zone only): name,
 * type ("A", "AAAA", "TXT", "MX", "PTR", "SPF"), data; data NULL with
 * timeout set makes lookups of name time out (temperror), data NULL
 * without it makes name not exist.  0 or -1.
 * Added: type NULL or "ANY" with data NULL applies to every type; type
 * "DELAY" with data "MS" makes every lookup of name take MS milliseconds
 * (tests of the deadline; at most 4 names).
 */
int spf_checker_zone_add(struct spf_checker *, const char *name,
    const char *type, const char *data, int timeout, char *err,
    size_t errlen);

/*
 * spf_check - evaluate: MAIL FROM (the null sender: postmaster@HELO),
 * then, when the MAIL FROM check could not be made, nothing more (RFC
 * 7208 2.3: HELO is checked separately with spf_check_helo).  Always
 * fills answer; returns 0, or -1 when the query itself is unusable
 * (answer: permerror / temperror with text).
 */
int spf_check(struct spf_checker *, const struct spf_query *,
    struct spf_answer *);
/* spf_check_helo - evaluate the HELO identity alone */
int spf_check_helo(struct spf_checker *, const struct spf_query *,
    struct spf_answer *);

/*
 * spf_map_result - libspf2's SPF_RESULT_* (as an int, so this header
 * needs no libspf2) to ours: one to one; SPF_RESULT_INVALID (0) becomes
 * temperror when dns_failed (a lookup failed or timed out: libspf2's
 * SPF_E_DNS_ERROR, or our layer saw TRY_AGAIN) and permerror otherwise.
 * In libspfcheck.a (spf/spf.c).
 */
enum spf_result spf_map_result(int spf2_result, int dns_failed);

/* spf_result_name - "pass", "fail", ... (RFC 7208 section 2.6) */
const char *spf_result_name(enum spf_result);

/*
 * spf_received_spf - the value of a Received-SPF field (RFC 7208 9.1)
 * for answer, with client-ip=, envelope-from=, helo=, identity= and
 * receiver=; folded at 78 columns; 0, or -1 when buf is too small.
 */
int spf_received_spf(const struct spf_query *, const struct spf_answer *,
    const char *receiver, char *buf, size_t len);
/* spf_auth_results - an Authentication-Results value (RFC 8601):
 * "receiver; spf=RESULT smtp.mailfrom=..." (or smtp.helo=) */
int spf_auth_results(const struct spf_query *, const struct spf_answer *,
    const char *receiver, char *buf, size_t len);

/*
 * Outbound preflight: would our public sending addresses pass for the
 * sender's domain?  spf_preflight_decide() takes one answer per address
 * (in config order) and says whether the domain authorizes us, with the
 * header value and, on failure, the reply text naming the domain and
 * what to publish (publish may be NULL: then it names our addresses).
 */
struct spf_preflight {
	int authorized;			/* every address passes */
	enum spf_result worst;		/* the result that decided */
	char header[512];		/* X-Outpost-SPF-Preflight value */
	char reply[512];		/* text for 550 5.7.23 */
};

void spf_preflight_decide(const char *domain, const char *const *addresses,
    const struct spf_answer *answers, size_t n, const char *publish,
    struct spf_preflight *);

/*
 * A per-domain cache of preflight results, time passed in (seconds).
 * Thread-safe; bounded to max entries (oldest dropped).  A pass or fail
 * (anything but temperror) is kept for the ttl given to spf_cache_put;
 * a temperror for min(ttl, SPF_CACHE_TEMPERROR_TTL) seconds, so that
 * the messages behind one whose domain's DNS hangs get the warning at
 * once instead of each waiting out spf.timeout again.
 *
 * Single flight: spf_cache_claim() gives the cached result, or else the
 * right to check the domain (SPF_CLAIM_CLAIMED).  While a caller holds
 * the claim on a domain, other callers of spf_cache_claim() for it wait
 * (up to their deadline) and get that caller's result when it calls
 * spf_cache_put() (SPF_CLAIM_SHARED), so one hanging or slow domain
 * occupies one SPF worker, not one per message.  A claimer that gives
 * up without a result calls spf_cache_abandon(): one waiter then
 * claims the domain and checks it itself.  A waiter whose deadline
 * passes also checks itself (SPF_CLAIM_CLAIMED) without waiting more;
 * the first claim stays registered.  Put and abandon act on the domain,
 * not on a particular claimer: any result for the domain is good for
 * whoever waits for it.  One record per domain being claimed: at most
 * as many as threads that claim at the same time; records are freed
 * when their last waiter leaves.  spf_cache_free() only once no thread
 * uses the cache.
 *
 * Use:
 *	switch (spf_cache_claim(c, d, now_s, mono_ms + wait_ms, &pf)) {
 *	case SPF_CLAIM_HIT:
 *	case SPF_CLAIM_SHARED:
 *		break;			(pf holds the result)
 *	case SPF_CLAIM_CLAIMED:
 *		check each address, spf_preflight_decide(..., &pf);
 *		spf_cache_put(c, d, now_s, ttl, &pf);
 *		(or, with no result at all, spf_cache_abandon(c, d))
 *	}
 */
#define SPF_CACHE_TEMPERROR_TTL 60	/* s: a temperror is kept at most */

struct spf_cache;
struct spf_cache *spf_cache_new(size_t max);
struct spf_cache *spf_cache_free(struct spf_cache *);
/* spf_cache_get - 1 and *out filled when domain is cached and fresh */
int spf_cache_get(struct spf_cache *, const char *domain, int64_t now,
    struct spf_preflight *out);
/* spf_cache_put - keep value for domain (see above for how long; ttl 0:
 * not kept) and hand it to the threads waiting for the domain */
void spf_cache_put(struct spf_cache *, const char *domain, int64_t now,
    unsigned int ttl, const struct spf_preflight *);

enum spf_claim {
	SPF_CLAIM_HIT,		/* *out: fresh from the cache */
	SPF_CLAIM_SHARED,	/* *out: another thread's check, just made */
	SPF_CLAIM_CLAIMED,	/* check it; then spf_cache_put or _abandon */
};

/*
 * spf_cache_claim - the result for domain, or the claim to check it.
 * now: seconds, as for spf_cache_get; wait_deadline_ms: the latest
 * CLOCK_MONOTONIC time (milliseconds, util/clock.h clock_mono_ms) to
 * wait for another thread's check; one already past means no waiting.
 * A cache or domain unusable (NULL, too long) gives SPF_CLAIM_CLAIMED
 * with nothing registered (put and abandon then do nothing).
 */
enum spf_claim spf_cache_claim(struct spf_cache *, const char *domain,
    int64_t now, int64_t wait_deadline_ms, struct spf_preflight *out);
/* spf_cache_abandon - the claimer of domain gives up without a result:
 * wake the waiters, one of them claims the domain next */
void spf_cache_abandon(struct spf_cache *, const char *domain);
/* spf_cache_inflight - how many domains are claimed now (tests, stats) */
size_t spf_cache_inflight(struct spf_cache *);

#endif
