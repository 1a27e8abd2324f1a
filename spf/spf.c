/*
 * spf - SPF evaluation over libspf2, with our DNS layer in front of its
 * resolv (or zone) layer.  See spf/spf.h for the contract.
 *
 * Our layer (struct layer, the hook of an SPF_dns_server_t on top of the
 * chain) does what libspf2 does not:
 *
 * - counts the lookups of the terms that cause them (RFC 7208 4.6.4):
 *   a, mx, ptr, exists (their first query) and include, redirect (the
 *   record fetch), across includes (libspf2 counts per record and lets
 *   an eleventh through); the address lookups of MX hosts and PTR names
 *   are part of their mx/ptr term and are not counted;
 * - counts void lookups (NXDOMAIN or no answer) of those terms;
 * - stops at a deadline.
 * When it must stop, it answers TRY_AGAIN to everything (libspf2 then
 * ends at once with temperror) and remembers why; the final result is
 * then permerror (a limit) or temperror (the deadline).
 *
 * It also fetches SPF records itself (the layer's get_spf hook, used by
 * libspf2 for the check's record and every include/redirect): TXT only,
 * never type SPF (RFC 7208 3.1), "v=spf1" followed by a space or the end,
 * exactly one such record or permerror, none = none.
 *
 * We never call SPF_request_query_mailfrom(): it passes a loopback client
 * without looking.  We fetch the record and call SPF_record_interpret()
 * ourselves, which is what it does for any other client.
 *
 * In zone mode (tests, the RFC 7208 harness) libspf2's zone answers
 * NXDOMAIN for a name it has with other types; we know the names and turn
 * that into NODATA, as real DNS would.
 */
#include <sys/types.h>
#include <sys/random.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_resolv.h>
#include <spf2/spf_dns_zone.h>

#include "spf/spf.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define PENDING_MAX 16		/* MX hosts / PTR names awaiting lookup */
#define PTR_MAX 10		/* PTR names looked at (RFC 7208 4.6.4) */
#define SENDER_MAX 320		/* local part 64 + "@" + domain 255 */
#define SPF2_MAX_MECH 100	/* libspf2's own per-record count: ours
				 * decides, keep it out of the way */

enum stop {
	STOP_NONE,
	STOP_LOOKUPS,		/* too many DNS-querying terms: permerror */
	STOP_VOID,		/* too many void lookups: permerror */
	STOP_DEADLINE,		/* out of time: temperror */
};

/* What the record fetch (get_spf) found for the check's own domain. */
enum fetch {
	FETCH_OK,
	FETCH_NONE,		/* no name, no TXT, no v=spf1 record */
	FETCH_TEMP,		/* DNS failure */
	FETCH_PERM,		/* several records, or one that won't compile */
};

/* Our DNS layer's state: per checker, reset for each check. */
struct layer {
	SPF_dns_server_t *below;
	unsigned int max_lookups;
	unsigned int max_void;
	unsigned int timeout_ms;
	/* zone mode: the names the zone has (lower case, no final dot) */
	char **names;
	size_t nnames;
	/* zone mode: names whose lookups are slow ("DELAY"; tests) */
	char token[20];		/* random, per checker: synthetic names */
	char delayed[4][SPF_NAME_MAX];
	unsigned int delay_ms[4];
	size_t ndelayed;

	/* per check */
	unsigned int lookups;
	unsigned int voids;
	unsigned int fetches;	/* get_spf calls */
	enum stop stop;
	int dns_failed;		/* some lookup answered TRY_AGAIN */
	enum fetch first;	/* outcome of the check's own record fetch */
	char why[SPF_TEXT_MAX];	/* our words for a permerror/temperror */
	struct timespec deadline;
	char pending[PENDING_MAX][SPF_NAME_MAX];
	size_t npending, ipending;
};

struct spf_checker {
	SPF_server_t *server;
	SPF_dns_server_t *top;	/* ours; server->resolver */
	SPF_dns_server_t *zone;	/* use_zone: libspf2's zone layer */
	struct layer *layer;
	struct spf_options opt;
};

/* spf2_error - libspf2's fatal error handler: log, then abort (it must
 * not return; the worker pool replaces the worker) */
__attribute__((noreturn)) static void
spf2_error(const char *file, int line, const char *msg)
{
	log_warnx("libspf2 internal error at %s:%d: %s", file != NULL ?
	    file : "?", line, msg != NULL ? msg : "?");
	abort();
}

/* spf2_warning - libspf2's warnings: debug log only */
static void
spf2_warning(const char *file, int line, const char *msg)
{
	log_debug("libspf2: %s", msg != NULL ? msg : "?");
}

/* spf2_quiet - libspf2's info and debug chatter: dropped */
static void
spf2_quiet(const char *file, int line, const char *msg)
{
}

/* norm_name - lower case without a final dot, into buf; 0 or -1 */
static int
norm_name(const char *name, char *buf, size_t len)
{
	size_t n = strlen(name), i;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n >= len)
		return -1;
	for (i = 0; i < n; i++)
		buf[i] = (char)tolower((unsigned char)name[i]);
	buf[n] = '\0';
	return 0;
}

/* layer_why - remember our explanation (the first one wins) */
static void
layer_why(struct layer *l, const char *fmt, ...) LOG_PRINTF(2, 3);
static void
layer_why(struct layer *l, const char *fmt, ...)
{
	va_list ap;

	if (l->why[0] != '\0')
		return;
	va_start(ap, fmt);
	(void)vsnprintf(l->why, sizeof(l->why), fmt, ap);
	va_end(ap);
}

/* zone_has_name - does the zone know name (any type)? */
static int
zone_has_name(const struct layer *l, const char *name)
{
	char n[SPF_NAME_MAX];
	size_t i;

	if (norm_name(name, n, sizeof(n)) == -1)
		return 0;
	for (i = 0; i < l->nnames; i++)
		if (strcmp(l->names[i], n) == 0)
			return 1;
	return 0;
}

/* past_deadline - has this check run out of time? */
static int
past_deadline(const struct layer *l)
{
	struct timespec now;

	if (l->timeout_ms == 0)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > l->deadline.tv_sec ||
	    (now.tv_sec == l->deadline.tv_sec &&
	    now.tv_nsec >= l->deadline.tv_nsec);
}

/* delay - zone mode: a name made slow with a "DELAY" entry sleeps */
static void
delay(const struct layer *l, const char *domain)
{
	struct timespec ts;
	char n[SPF_NAME_MAX];
	size_t i;

	if (l->ndelayed == 0 || norm_name(domain, n, sizeof(n)) == -1)
		return;
	for (i = 0; i < l->ndelayed; i++) {
		if (strcmp(l->delayed[i], n) == 0) {
			ts.tv_sec = l->delay_ms[i] / 1000;
			ts.tv_nsec = (long)(l->delay_ms[i] % 1000) * 1000000L;
			while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
				;
			return;
		}
	}
}

/* stopped - an answer that makes libspf2 end the check (TRY_AGAIN) */
static SPF_dns_rr_t *
stopped(SPF_dns_server_t *s, const char *domain, ns_type type)
{
	SPF_dns_rr_t *rr;

	rr = SPF_dns_rr_new_init(s, domain, type, 0, TRY_AGAIN);
	if (rr == NULL)
		fatalx(1, "spf: out of memory");
	return rr;
}

/* layer_stop - stop the check for reason (the first reason wins) */
static void
layer_stop(struct layer *l, enum stop why)
{
	if (l->stop == STOP_NONE)
		l->stop = why;
}

/* query - one lookup below us, with the deadline and the zone fix */
static SPF_dns_rr_t *
query(SPF_dns_server_t *s, const char *domain, ns_type type, int cache)
{
	struct layer *l = s->hook;
	SPF_dns_rr_t *rr;

	if (l->stop != STOP_NONE)
		return stopped(s, domain, type);
	if (past_deadline(l)) {
		layer_stop(l, STOP_DEADLINE);
		layer_why(l, "deadline of %u ms passed", l->timeout_ms);
		return stopped(s, domain, type);
	}
	delay(l, domain);
	rr = SPF_dns_lookup(l->below, domain, type, cache);
	if (rr == NULL)
		return stopped(s, domain, type);
	if (rr->herrno == HOST_NOT_FOUND && l->names != NULL &&
	    zone_has_name(l, domain))
		rr->herrno = NO_DATA;
	if (rr->herrno == TRY_AGAIN) {
		l->dns_failed = 1;
		layer_why(l, "DNS lookup of %.100s failed", domain);
	}
	return rr;
}

/* is_void - NXDOMAIN or an empty answer (RFC 7208 4.6.4) */
static int
is_void(const SPF_dns_rr_t *rr)
{
	return rr->herrno == HOST_NOT_FOUND || rr->herrno == NO_DATA ||
	    (rr->herrno == NETDB_SUCCESS && rr->num_rr == 0);
}

/* count_term - one more DNS-querying term; 0, or -1 when over the limit */
static int
count_term(struct layer *l, const char *domain)
{
	if (l->lookups >= l->max_lookups) {
		layer_stop(l, STOP_LOOKUPS);
		layer_why(l, "more than %u DNS lookups, at %.100s",
		    l->max_lookups, domain);
		return -1;
	}
	l->lookups++;
	return 0;
}

/* take_pending - is this the next MX host / PTR name libspf2 resolves?
 * (then it is part of the mx/ptr term; anything else ends the list) */
static int
take_pending(struct layer *l, const char *domain)
{
	char n[SPF_NAME_MAX];

	if (l->ipending >= l->npending)
		return 0;
	if (norm_name(domain, n, sizeof(n)) == 0 &&
	    strcmp(n, l->pending[l->ipending]) == 0) {
		l->ipending++;
		return 1;
	}
	l->npending = l->ipending = 0;
	return 0;
}

/* remember_names - MX hosts or PTR names: their address lookups follow */
static void
remember_names(struct layer *l, const SPF_dns_rr_t *rr, ns_type type)
{
	const char *name;
	int i;

	l->npending = l->ipending = 0;
	if (rr->herrno != NETDB_SUCCESS || rr->rr_type != type)
		return;
	for (i = 0; i < rr->num_rr && l->npending < PENDING_MAX; i++) {
		name = type == ns_t_mx ? rr->rr[i]->mx : rr->rr[i]->ptr;
		if (norm_name(name, l->pending[l->npending],
		    sizeof(l->pending[0])) == 0)
			l->npending++;
	}
}

/* synthetic_answer - an A answer (127.0.0.2) when match, else NODATA */
static SPF_dns_rr_t *
synthetic_answer(SPF_dns_server_t *s, const char *domain, int match)
{
	SPF_dns_rr_t *rr;

	rr = SPF_dns_rr_new_init(s, domain, ns_t_a, 0, match ? NETDB_SUCCESS :
	    NO_DATA);
	if (rr == NULL)
		fatalx(1, "spf: out of memory");
	if (match) {
		if (SPF_dns_rr_buf_realloc(rr, 0, sizeof(rr->rr[0]->a)) !=
		    SPF_E_SUCCESS)
			fatalx(1, "spf: out of memory");
		rr->rr[0]->a.s_addr = htonl(0x7f000002);
		rr->num_rr = 1;
	}
	return rr;
}

/* any_address - does name have an address of type (A, AAAA)?  1, 0, or
 * -1 on a DNS failure */
static int
any_address(SPF_dns_server_t *s, const char *name, ns_type type)
{
	SPF_dns_rr_t *rr;
	int r;

	rr = query(s, name, type, 1);
	if (rr->herrno == TRY_AGAIN)
		r = -1;
	else
		r = rr->herrno == NETDB_SUCCESS && rr->num_rr > 0 &&
		    rr->rr_type == type;
	SPF_dns_rr_free(rr);
	return r;
}

/*
 * synthetic - the exists: lookups record_check() writes for a//0 (IPv6
 * client: "TOKEN-a6.DOMAIN": does DOMAIN have any AAAA record?) and
 * mx/0, mx//0 ("TOKEN-mx4.DOMAIN", "TOKEN-mx6.DOMAIN": does any of
 * DOMAIN's MX hosts, at most 10, have an address of that family?).  The
 * term was counted by the caller; its first query may be void.  NULL when
 * name is not one of ours.
 */
static SPF_dns_rr_t *
synthetic(SPF_dns_server_t *s, const char *name)
{
	struct layer *l = s->hook;
	size_t tl = strlen(l->token);
	const char *domain;
	SPF_dns_rr_t *mx;
	ns_type type;
	int i, r = 0;

	if (strncasecmp(name, l->token, tl) != 0 || name[tl] != '-')
		return NULL;
	if (strncasecmp(name + tl, "-a6.", 4) == 0) {
		domain = name + tl + 4;
		if ((r = any_address(s, domain, ns_t_aaaa)) == -1)
			return stopped(s, name, ns_t_a);
		if (r == 0 && ++l->voids > l->max_void)
			goto void_limit;
		return synthetic_answer(s, name, r);
	}
	if (strncasecmp(name + tl, "-mx4.", 5) != 0 &&
	    strncasecmp(name + tl, "-mx6.", 5) != 0)
		return NULL;
	domain = name + tl + 5;
	type = name[tl + 3] == '6' ? ns_t_aaaa : ns_t_a;
	mx = query(s, domain, ns_t_mx, 1);
	if (mx->herrno == TRY_AGAIN) {
		SPF_dns_rr_free(mx);
		return stopped(s, name, ns_t_a);
	}
	if (is_void(mx) && ++l->voids > l->max_void) {
		SPF_dns_rr_free(mx);
		goto void_limit;
	}
	if (mx->herrno == NETDB_SUCCESS && mx->rr_type == ns_t_mx &&
	    mx->num_rr > PTR_MAX) {
		/* RFC 7208 4.6.4: more than 10 MX records is permerror */
		SPF_dns_rr_free(mx);
		layer_stop(l, STOP_LOOKUPS);
		layer_why(l, "more than %d MX records at %.100s", PTR_MAX,
		    domain);
		return stopped(s, name, ns_t_a);
	}
	for (i = 0; mx->herrno == NETDB_SUCCESS && mx->rr_type == ns_t_mx &&
	    i < mx->num_rr && r == 0; i++)
		r = any_address(s, mx->rr[i]->mx, type);
	SPF_dns_rr_free(mx);
	if (r == -1)
		return stopped(s, name, ns_t_a);
	return synthetic_answer(s, name, r);

void_limit:
	layer_stop(l, STOP_VOID);
	layer_why(l, "more than %u void DNS lookups, at %.100s", l->max_void,
	    name);
	return stopped(s, name, ns_t_a);
}

/* layer_lookup - our SPF_dns_lookup_t: count, then ask the layer below */
static SPF_dns_rr_t *
layer_lookup(SPF_dns_server_t *s, const char *domain, ns_type type,
    int cache)
{
	struct layer *l = s->hook;
	SPF_dns_rr_t *rr;
	int term = 0;

	if (l->stop != STOP_NONE)
		return stopped(s, domain, type);
	switch (type) {
	case ns_t_mx:
	case ns_t_ptr:
		/* the mx or ptr term itself (or the %{p} macro) */
		term = 1;
		break;
	case ns_t_a:
	case ns_t_aaaa:
		/* a, exists; or an address of an MX host / PTR name */
		term = !take_pending(l, domain);
		break;
	default:
		/* TXT outside get_spf: the exp= explanation, not counted */
		break;
	}
	if (term && count_term(l, domain) == -1)
		return stopped(s, domain, type);
	if (type == ns_t_a && (rr = synthetic(s, domain)) != NULL)
		return rr;
	rr = query(s, domain, type, cache);
	if (term && rr->herrno != TRY_AGAIN && is_void(rr) &&
	    ++l->voids > l->max_void) {
		layer_stop(l, STOP_VOID);
		layer_why(l, "more than %u void DNS lookups, at %.100s",
		    l->max_void, domain);
		SPF_dns_rr_free(rr);
		return stopped(s, domain, type);
	}
	/* RFC 7208 4.6.4: at most 10 PTR names are looked at, the rest are
	 * ignored (libspf2 would make more than its limit a permerror). */
	if (type == ns_t_ptr && rr->herrno == NETDB_SUCCESS &&
	    rr->num_rr > PTR_MAX)
		rr->num_rr = PTR_MAX;
	if (type == ns_t_mx || type == ns_t_ptr)
		remember_names(l, rr, type);
	return rr;
}

/* is_spf1 - does a TXT string start an SPF version 1 record? */
static int
is_spf1(const char *txt)
{
	return strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (txt[6] == ' ' || txt[6] == '\0');
}

/*
 * The record check.  libspf2 accepts records RFC 7208 says are in error
 * and refuses some that are fine, and it runs redirect= where it stands
 * instead of after the mechanisms.  So before it compiles a record we
 * check the record against the RFC 7208 section 12 grammar (any error is
 * permerror, 4.6) and hand it a normalized copy:
 * - unknown modifiers are dropped (6: they are ignored; libspf2 refuses
 *   some legal names), and so is exp= once checked (we write our own
 *   text, so the explanation lookup and its macro expansion are waste);
 * - redirect= goes last, or away when there is an "all" (6.1);
 * - a CIDR length of 0, which libspf2 refuses, is rewritten: ip4:/0 and
 *   ip6:/0 become two /1 halves; a/0 for an IPv4 client becomes exists:;
 *   a//0 for an IPv6 client and mx/0, mx//0 become an exists: that our
 *   layer answers itself (synthetic()); a dual-CIDR length for the other
 *   address family than the client's is dropped.
 */

/* macro_string_ok - RFC 7208 7.1 macro-string; exp_letters allows the
 * c, r and t macros (explanation text only) */
static int
macro_string_ok(const char *s, const char *end, int exp_letters)
{
	const char *letters = exp_letters ? "slodiphcrtvSLODIPHCRTV" :
	    "slodiphvSLODIPHV";

	while (s < end) {
		if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
			return 0;
		if (*s != '%') {
			s++;
			continue;
		}
		if (++s >= end)
			return 0;
		if (*s == '%' || *s == '_' || *s == '-') {
			s++;
			continue;
		}
		if (*s != '{' || ++s >= end || strchr(letters, *s) == NULL)
			return 0;
		s++;
		while (s < end && isdigit((unsigned char)*s))
			s++;
		if (s < end && (*s == 'r' || *s == 'R'))
			s++;
		while (s < end && strchr(".-+,/_=", *s) != NULL)
			s++;
		if (s >= end || *s != '}')
			return 0;
		s++;
	}
	return 1;
}

/* toplabel_ok - RFC 7208 toplabel: alphanumeric with a letter, or with
 * inner hyphens */
static int
toplabel_ok(const char *s, const char *end)
{
	const char *p;
	int alpha = 0, hyphen = 0;

	if (s >= end || !isalnum((unsigned char)*s) ||
	    !isalnum((unsigned char)end[-1]))
		return 0;
	for (p = s; p < end; p++) {
		if (isalpha((unsigned char)*p))
			alpha = 1;
		else if (*p == '-')
			hyphen = 1;
		else if (!isdigit((unsigned char)*p))
			return 0;
	}
	return alpha || hyphen;
}

/* domain_spec_ok - RFC 7208 domain-spec = macro-string domain-end */
static int
domain_spec_ok(const char *s, const char *end)
{
	const char *p, *dot;

	if (s >= end || !macro_string_ok(s, end, 0))
		return 0;
	/* domain-end = macro-expand, or "." toplabel [ "." ] */
	if (end[-1] == '}' || (end - s >= 2 && end[-2] == '%' &&
	    strchr("%_-", end[-1]) != NULL))
		return 1;
	p = end;
	if (p[-1] == '.')
		p--;
	for (dot = p; dot > s && dot[-1] != '.'; dot--)
		;
	if (dot == s)
		return 0;		/* no "." before the top label */
	return toplabel_ok(dot, p);
}

/* cidr_len - RFC 7208 cidr length: "0" or no leading zero, <= max;
 * the length or -1 */
static int
cidr_len(const char *s, const char *end, int max)
{
	int v = 0;

	if (s >= end || end - s > 3 || (*s == '0' && end - s > 1))
		return -1;
	for (; s < end; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v <= max ? v : -1;
}

/* split_dual_cidr - find [ "/" ip4-cidr ] [ "//" ip6-cidr ] at the end
 * of s..end: sets *dend (end of the domain part) and the lengths (-2:
 * absent); 0, or -1 when malformed */
static int
split_dual_cidr(const char *s, const char *end, const char **dend, int *c4,
    int *c6)
{
	const char *p;

	*c4 = *c6 = -2;
	*dend = end;
	/* "//" ip6 */
	for (p = end; p > s && isdigit((unsigned char)p[-1]); p--)
		;
	if (p - s >= 2 && p[-1] == '/' && p[-2] == '/') {
		if ((*c6 = cidr_len(p, end, 128)) == -1)
			return -1;
		end = p - 2;
		*dend = end;
		for (p = end; p > s && isdigit((unsigned char)p[-1]); p--)
			;
	}
	if (p - s >= 1 && p[-1] == '/' && p < end) {
		if ((*c4 = cidr_len(p, end, 32)) == -1)
			return -1;
		*dend = p - 1;
	} else if (p < end && p - s >= 1 && p[-1] == '/')
		return -1;
	return 0;
}

struct rec_check {
	struct buf out;		/* the normalized record */
	char redirect[512];	/* the redirect= term, moved last */
	int has_all;
	int has_exp;
	int client_v6;
	const char *token;	/* the layer's, for a/0 and mx/0 (see below) */
	char why[SPF_TEXT_MAX];
};

/* rec_error - a grammar error: our words, 0 to return */
static int
rec_error(struct rec_check *rc, const char *what, const char *t, size_t n)
{
	(void)snprintf(rc->why, sizeof(rc->why), "%s: %.*s", what,
	    (int)(n > 60 ? 60 : n), t);
	return 0;
}

/* out_term - append one term to the normalized record */
static void
out_term(struct rec_check *rc, const char *prefix, const char *t, size_t n)
{
	buf_appendc(&rc->out, ' ');
	buf_appends(&rc->out, prefix);
	buf_append(&rc->out, t, n);
}

/* check_dual_mech - a, mx: [ ":" domain-spec ] [ dual-cidr ] */
static int
check_dual_mech(struct rec_check *rc, const char *prefix, const char *t,
    size_t n, size_t namelen)
{
	const char *end = t + n, *arg = t + namelen, *dend;
	int c4, c6, mine, is_a = namelen == 1;
	struct buf b = BUF_INIT;

	if (split_dual_cidr(arg, end, &dend, &c4, &c6) == -1)
		return rec_error(rc, "bad CIDR length", t, n);
	if (dend > arg) {
		if (*arg != ':' || !domain_spec_ok(arg + 1, dend))
			return rec_error(rc, "bad domain", t, n);
	}
	mine = rc->client_v6 ? c6 : c4;
	if (mine != 0 && (rc->client_v6 ? c4 : c6) != 0) {
		out_term(rc, prefix, t, n);
		return 1;
	}
	if (mine == 0) {
		/* a/0 for an IPv4 client: any A record of the domain, which
		 * is exists:.  The others (any AAAA record; any address of
		 * an MX host) have no libspf2 form: an exists: of a name only
		 * our layer answers (TOKEN-a6., TOKEN-mx4., TOKEN-mx6.). */
		buf_appends(&b, "exists:");
		if (!is_a || rc->client_v6)
			buf_appendf(&b, "%s-%s.", rc->token, !is_a ?
			    (rc->client_v6 ? "mx6" : "mx4") : "a6");
		if (dend > arg)
			buf_append(&b, arg + 1, (size_t)(dend - arg - 1));
		else
			buf_appends(&b, "%{d}");
	} else {
		/* drop the other family's /0 (it does not apply) */
		buf_append(&b, t, namelen);
		buf_append(&b, arg, (size_t)(dend - arg));
		if (mine >= 0)
			buf_appendf(&b, rc->client_v6 ? "//%d" : "/%d", mine);
	}
	out_term(rc, prefix, b.data, b.len);
	buf_free(&b);
	return 1;
}

/* check_ip_mech - ip4:, ip6: network [ "/" length ] */
static int
check_ip_mech(struct rec_check *rc, const char *prefix, const char *t,
    size_t n, int v6)
{
	const char *end = t + n, *arg = t + 4, *slash;
	char addr[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	int len = -2;
	size_t alen;

	if (arg > end || arg[-1] != ':')
		return rec_error(rc, "bad address", t, n);
	for (slash = end; slash > arg && slash[-1] != '/'; slash--)
		;
	if (slash > arg) {
		if ((len = cidr_len(slash, end, v6 ? 128 : 32)) == -1)
			return rec_error(rc, "bad CIDR length", t, n);
		alen = (size_t)(slash - 1 - arg);
	} else
		alen = (size_t)(end - arg);
	if (alen == 0 || alen >= sizeof(addr))
		return rec_error(rc, "bad address", t, n);
	memcpy(addr, arg, alen);
	addr[alen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) != 1)
		return rec_error(rc, "bad address", t, n);
	if (len == 0) {
		/* all addresses of the family: the two halves */
		buf_appendf(&rc->out, " %sip%c:%s %sip%c:%s", prefix,
		    v6 ? '6' : '4', v6 ? "::/1" : "0.0.0.0/1", prefix,
		    v6 ? '6' : '4', v6 ? "8000::/1" : "128.0.0.0/1");
		return 1;
	}
	out_term(rc, prefix, t, n);
	return 1;
}

/* check_term - one term: checked, and appended in normalized form */
static int
check_term(struct rec_check *rc, const char *t, size_t n)
{
	const char *end = t + n, *p;
	char prefix[2] = "";
	size_t namelen;

	if (strchr("+-?~", *t) != NULL) {
		prefix[0] = *t;
		t++;
		n--;
		end = t + n;
	}
	if (n == 0 || !isalpha((unsigned char)*t))
		return rec_error(rc, "unknown term", t, n);
	for (p = t; p < end && (isalnum((unsigned char)*p) ||
	    strchr("-_.", *p) != NULL); p++)
		;
	namelen = (size_t)(p - t);

	if (p < end && *p == '=') {
		/* A modifier: name "=" macro-string */
		if (prefix[0] != '\0')
			return rec_error(rc, "modifier with a prefix", t, n);
		if (namelen == 8 && strncasecmp(t, "redirect", 8) == 0) {
			if (rc->redirect[0] != '\0')
				return rec_error(rc, "redirect= twice", t, n);
			if (!domain_spec_ok(p + 1, end) ||
			    n >= sizeof(rc->redirect))
				return rec_error(rc, "bad redirect=", t, n);
			memcpy(rc->redirect, t, n);
			rc->redirect[n] = '\0';
			return 1;
		}
		if (namelen == 3 && strncasecmp(t, "exp", 3) == 0) {
			if (rc->has_exp++)
				return rec_error(rc, "exp= twice", t, n);
			if (!domain_spec_ok(p + 1, end))
				return rec_error(rc, "bad exp=", t, n);
			/* Checked, then dropped: we never use explanations,
			 * so libspf2 need not look one up and expand it. */
			return 1;
		}
		if (!macro_string_ok(p + 1, end, 0))
			return rec_error(rc, "bad modifier", t, n);
		return 1;	/* unknown modifier: ignored (RFC 7208 6) */
	}
#define IS(name) (namelen == sizeof(name) - 1 && \
	strncasecmp(t, name, sizeof(name) - 1) == 0)
	if (IS("all")) {
		if (p != end)
			return rec_error(rc, "bad all", t, n);
		rc->has_all = 1;
		out_term(rc, prefix, t, n);
		return 1;
	}
	if (IS("include") || IS("exists")) {
		if (p >= end || *p != ':' || !domain_spec_ok(p + 1, end))
			return rec_error(rc, "bad domain", t, n);
		out_term(rc, prefix, t, n);
		return 1;
	}
	if (IS("ptr")) {
		if (p < end && (*p != ':' || !domain_spec_ok(p + 1, end)))
			return rec_error(rc, "bad domain", t, n);
		out_term(rc, prefix, t, n);
		return 1;
	}
	if (IS("a"))
		return check_dual_mech(rc, prefix, t, n, 1);
	if (IS("mx"))
		return check_dual_mech(rc, prefix, t, n, 2);
	if (IS("ip4"))
		return check_ip_mech(rc, prefix, t, n, 0);
	if (IS("ip6"))
		return check_ip_mech(rc, prefix, t, n, 1);
#undef IS
	return rec_error(rc, "unknown mechanism", t, n);
}

/*
 * record_check - check txt (one "v=spf1" record) and make the copy libspf2
 * compiles; the copy (caller frees) or NULL with why filled.
 */
static char *
record_check(const char *txt, int client_v6, const char *token, char *why,
    size_t whylen)
{
	struct rec_check rc;
	const char *p, *t;

	memset(&rc, 0, sizeof(rc));
	rc.client_v6 = client_v6;
	rc.token = token;
	for (p = txt; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
			(void)snprintf(why, whylen, "control or non-ASCII "
			    "byte in record");
			return NULL;
		}
	}
	buf_appends(&rc.out, "v=spf1");
	p = txt + 6;
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		for (t = p; *p != '\0' && *p != ' '; p++)
			;
		if (!check_term(&rc, t, (size_t)(p - t))) {
			(void)snprintf(why, whylen, "%s", rc.why);
			buf_free(&rc.out);
			return NULL;
		}
	}
	if (rc.redirect[0] != '\0' && !rc.has_all)
		out_term(&rc, "", rc.redirect, strlen(rc.redirect));
	return buf_steal(&rc.out);
}

/* layer_get_spf - our SPF_dns_get_spf_t: the SPF record of cur_dom */
static SPF_errcode_t
layer_get_spf(SPF_server_t *server, SPF_request_t *req, SPF_response_t *resp,
    SPF_record_t **recordp)
{
	SPF_dns_server_t *s = server->resolver;
	struct layer *l = s->hook;
	const char *domain = req->cur_dom;
	SPF_dns_rr_t *rr;
	SPF_errcode_t err;
	const char *txt = NULL;
	char *norm, why[SPF_TEXT_MAX];
	int first, i, found = 0;

	*recordp = NULL;
	first = l->fetches++ == 0;
	if (domain == NULL)
		return SPF_E_NOT_CONFIG;
	/* include: and redirect= are terms; the check's own fetch is not */
	if (!first && count_term(l, domain) == -1)
		return SPF_E_DNS_ERROR;
	rr = query(s, domain, ns_t_txt, 1);
	switch (rr->herrno) {
	case NETDB_SUCCESS:
		break;
	case HOST_NOT_FOUND:
	case NO_DATA:
		SPF_dns_rr_free(rr);
		if (first) {
			l->first = FETCH_NONE;
			resp->result = SPF_RESULT_NONE;
		} else
			layer_why(l, "no SPF record at %.100s", domain);
		return SPF_E_NOT_SPF;
	default:
		SPF_dns_rr_free(rr);
		l->dns_failed = 1;
		if (first)
			l->first = FETCH_TEMP;
		layer_why(l, "DNS lookup of %.100s failed", domain);
		return SPF_E_DNS_ERROR;
	}
	for (i = 0; i < rr->num_rr; i++) {
		if (rr->rr_type == ns_t_txt && is_spf1(rr->rr[i]->txt)) {
			found++;
			txt = rr->rr[i]->txt;
		}
	}
	if (found == 0) {
		SPF_dns_rr_free(rr);
		if (first) {
			l->first = FETCH_NONE;
			resp->result = SPF_RESULT_NONE;
		} else
			layer_why(l, "no SPF record at %.100s", domain);
		return SPF_E_NOT_SPF;
	}
	if (found > 1) {
		SPF_dns_rr_free(rr);
		if (first)
			l->first = FETCH_PERM;
		layer_why(l, "several SPF records at %.100s", domain);
		return SPF_E_MULTIPLE_RECORDS;
	}
	norm = record_check(txt, req->client_ver == AF_INET6, l->token, why,
	    sizeof(why));
	SPF_dns_rr_free(rr);
	if (norm == NULL) {
		if (first)
			l->first = FETCH_PERM;
		layer_why(l, "bad SPF record at %.100s: %s", domain, why);
		return SPF_E_SYNTAX;
	}
	err = SPF_record_compile(server, resp, recordp, norm);
	free(norm);
	if (err != SPF_E_SUCCESS) {
		if (*recordp != NULL) {
			SPF_record_free(*recordp);
			*recordp = NULL;
		}
		if (first)
			l->first = FETCH_PERM;
		layer_why(l, "bad SPF record at %.100s: %s", domain,
		    SPF_strerror(err));
		return err == SPF_E_DNS_ERROR ? SPF_E_SYNTAX : err;
	}
	return SPF_E_SUCCESS;
}

/* layer_destroy - free our layer (libspf2 frees the ones below) */
static void
layer_destroy(SPF_dns_server_t *s)
{
	struct layer *l = s->hook;
	size_t i;

	if (l != NULL) {
		for (i = 0; i < l->nnames; i++)
			free(l->names[i]);
		free(l->names);
		free(l);
	}
	free(s);
}

/* make_token - "x" and 16 random hex digits: a label no record can know
 * in advance, for our synthetic names */
static void
make_token(char *buf, size_t len)
{
	unsigned char r[8];
	size_t i, got = 0;
	ssize_t n;

	while (got < sizeof(r)) {
		n = getrandom(r + got, sizeof(r) - got, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			fatal(1, "spf: getrandom");
		got += (size_t)n;
	}
	buf[0] = 'x';
	for (i = 0; i < sizeof(r) && 2 * i + 2 < len; i++)
		(void)snprintf(buf + 1 + 2 * i, len - 1 - 2 * i, "%02x", r[i]);
}

/* spf_checker_new - a libspf2 server with our DNS layer (spf_checker_free) */
struct spf_checker *
spf_checker_new(const struct spf_options *opt, char *err, size_t errlen)
{
	struct spf_checker *c;
	SPF_dns_server_t *below;
	struct layer *l;

	SPF_error_handler = spf2_error;
	SPF_warning_handler = spf2_warning;
	SPF_info_handler = spf2_quiet;
	SPF_debug_handler = spf2_quiet;

	if (opt->use_zone)
		below = SPF_dns_zone_new(NULL, "outpost-zone", 0);
	else
		below = SPF_dns_resolv_new(NULL, "outpost-resolv", 0);
	if (below == NULL) {
		(void)snprintf(err, errlen, "cannot create libspf2 %s layer",
		    opt->use_zone ? "zone" : "resolver");
		return NULL;
	}
	c = xcalloc(1, sizeof(*c));
	c->opt = *opt;
	l = xcalloc(1, sizeof(*l));
	l->below = below;
	l->max_lookups = opt->max_dns_lookups;
	l->max_void = opt->max_void_lookups;
	l->timeout_ms = opt->timeout_ms;
	make_token(l->token, sizeof(l->token));
	if (opt->use_zone)
		l->names = xcalloc(1, sizeof(*l->names));
	c->layer = l;
	c->zone = opt->use_zone ? below : NULL;

	c->top = xcalloc(1, sizeof(*c->top));
	c->top->destroy = layer_destroy;
	c->top->lookup = layer_lookup;
	c->top->get_spf = layer_get_spf;
	c->top->get_exp = NULL;
	c->top->add_cache = NULL;
	c->top->layer_below = below;
	c->top->name = "outpost";
	c->top->debug = 0;
	c->top->hook = l;

	c->server = SPF_server_new_dns(c->top, 0);
	if (c->server == NULL) {
		(void)snprintf(err, errlen, "cannot create libspf2 server");
		SPF_dns_free(c->top);
		free(c);
		return NULL;
	}
	/* Our layer counts lookups across the whole check; libspf2 counts
	 * per record (and lets one more through): keep it out of the way.
	 * Its MX and PTR limits (10 each, RFC 7208 4.6.4) stay. */
	SPF_server_set_max_dns_mech(c->server, SPF2_MAX_MECH);
	return c;
}

/* spf_checker_free - free the server and every DNS layer; accepts NULL */
struct spf_checker *
spf_checker_free(struct spf_checker *c)
{
	if (c == NULL)
		return NULL;
	/* A server made by SPF_server_new_dns() does not own its resolver
	 * (destroy_resolver is 0): free our layer and those below. */
	SPF_server_free(c->server);
	SPF_dns_free(c->top);
	free(c);
	return NULL;
}

/* rr_type - a type name to libspf2's ns_type; 0 when unknown */
static ns_type
rr_type(const char *type)
{
	static const struct {
		const char *name;
		ns_type type;
	} types[] = {
		{ "A", ns_t_a }, { "AAAA", ns_t_aaaa }, { "TXT", ns_t_txt },
		{ "MX", ns_t_mx }, { "PTR", ns_t_ptr }, { "SPF", ns_t_spf },
		{ "ANY", ns_t_any },
	};
	size_t i;

	if (type == NULL)
		return ns_t_any;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(type, types[i].name) == 0)
			return types[i].type;
	return ns_t_invalid;
}

/*
 * spf_checker_zone_add - a record in the zone (use_zone only): name,
 * type ("A", "AAAA", "TXT", "MX", "PTR", "SPF"; NULL or "ANY": every
 * type), data; data NULL with timeout set makes lookups of name (and
 * type) time out, data NULL without it makes name (type) not exist.
 */
int
spf_checker_zone_add(struct spf_checker *c, const char *name,
    const char *type, const char *data, int timeout, char *err,
    size_t errlen)
{
	struct layer *l = c->layer;
	char n[SPF_NAME_MAX];
	ns_type t;
	SPF_errcode_t e;

	if (c->zone == NULL) {
		(void)snprintf(err, errlen, "not a zone checker");
		return -1;
	}
	if (name == NULL || norm_name(name, n, sizeof(n)) == -1 ||
	    n[0] == '\0') {
		(void)snprintf(err, errlen, "bad zone name");
		return -1;
	}
	if (type != NULL && strcasecmp(type, "DELAY") == 0) {
		/* a test aid: lookups of name take data milliseconds */
		if (data == NULL || l->ndelayed >= sizeof(l->delay_ms) /
		    sizeof(l->delay_ms[0])) {
			(void)snprintf(err, errlen, "bad or too many DELAY");
			return -1;
		}
		(void)snprintf(l->delayed[l->ndelayed],
		    sizeof(l->delayed[0]), "%s", n);
		l->delay_ms[l->ndelayed++] = (unsigned int)strtoul(data,
		    NULL, 10) % 10000;
		return 0;
	}
	if ((t = rr_type(type)) == ns_t_invalid) {
		(void)snprintf(err, errlen, "unknown record type %s", type);
		return -1;
	}
	if (t == ns_t_any && data != NULL) {
		(void)snprintf(err, errlen, "type ANY takes no data");
		return -1;
	}
	if (data == NULL)
		e = SPF_dns_zone_add_str(c->zone, n, t,
		    timeout ? TRY_AGAIN : (t == ns_t_any ? HOST_NOT_FOUND :
		    NO_DATA), NULL);
	else
		e = SPF_dns_zone_add_str(c->zone, n, t, NETDB_SUCCESS, data);
	if (e != SPF_E_SUCCESS) {
		(void)snprintf(err, errlen, "zone %s %s: %s", n,
		    type != NULL ? type : "ANY", SPF_strerror(e));
		return -1;
	}
	/* A name that exists (or times out) answers NODATA, not NXDOMAIN,
	 * for types it lacks. */
	if (data != NULL || timeout || t != ns_t_any) {
		if (!zone_has_name(l, n)) {
			l->names = xreallocarray(l->names, l->nnames + 1,
			    sizeof(*l->names));
			l->names[l->nnames++] = xstrdup(n);
		}
	}
	return 0;
}

/*
 * spf_map_result - libspf2's result to ours; "(invalid)" is temperror
 * after a DNS failure, permerror otherwise.
 */
enum spf_result
spf_map_result(int spf2_result, int dns_failed)
{
	switch (spf2_result) {
	case SPF_RESULT_NEUTRAL:
		return SPF_RES_NEUTRAL;
	case SPF_RESULT_PASS:
		return SPF_RES_PASS;
	case SPF_RESULT_FAIL:
		return SPF_RES_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return SPF_RES_SOFTFAIL;
	case SPF_RESULT_NONE:
		return SPF_RES_NONE;
	case SPF_RESULT_TEMPERROR:
		return SPF_RES_TEMPERROR;
	case SPF_RESULT_PERMERROR:
		return SPF_RES_PERMERROR;
	case SPF_RESULT_INVALID:
	default:
		return dns_failed ? SPF_RES_TEMPERROR : SPF_RES_PERMERROR;
	}
}

/*
 * domain_ok - RFC 7208 4.3: a malformed domain (a label over 63 octets,
 * an empty label, one label only, a literal, over 253 octets) gives
 * none without a lookup.
 */
static int
domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0, labels = 0;
	const char *p;

	if (len > 0 && d[len - 1] == '.')
		len--;
	if (len == 0 || len > 253 || d[0] == '[')
		return 0;
	for (p = d; p < d + len; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			labels++;
			label = 0;
		} else if ((unsigned char)*p <= ' ' || *p == '@') {
			return 0;
		} else if (++label > 63)
			return 0;
	}
	if (label == 0)
		return 0;
	labels++;
	return labels >= 2;
}

/* answer_set - fill an answer */
static void
answer_set(struct spf_answer *a, enum spf_result r, const char *fmt, ...)
    LOG_PRINTF(3, 4);
static void
answer_set(struct spf_answer *a, enum spf_result r, const char *fmt, ...)
{
	va_list ap;

	a->result = r;
	va_start(ap, fmt);
	(void)vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

/* is_loopback - 127.0.0.0/8 or ::1 */
static int
is_loopback(int af, const struct in_addr *v4, const struct in6_addr *v6)
{
	if (af == AF_INET)
		return (ntohl(v4->s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(v6);
}

/* layer_reset - a fresh count and deadline for one check */
static void
layer_reset(struct layer *l)
{
	l->lookups = l->voids = l->fetches = 0;
	l->stop = STOP_NONE;
	l->dns_failed = 0;
	l->first = FETCH_OK;
	l->why[0] = '\0';
	l->npending = l->ipending = 0;
	if (l->timeout_ms > 0) {
		clock_gettime(CLOCK_MONOTONIC, &l->deadline);
		l->deadline.tv_sec += l->timeout_ms / 1000;
		l->deadline.tv_nsec += (long)(l->timeout_ms % 1000) * 1000000L;
		if (l->deadline.tv_nsec >= 1000000000L) {
			l->deadline.tv_sec++;
			l->deadline.tv_nsec -= 1000000000L;
		}
	}
}

/* result_text - our words for a result (when the layer has none) */
static const char *
result_text(enum spf_result r)
{
	switch (r) {
	case SPF_RES_PASS:
		return "sender authorized";
	case SPF_RES_FAIL:
		return "sender not authorized";
	case SPF_RES_SOFTFAIL:
		return "sender probably not authorized";
	case SPF_RES_NEUTRAL:
		return "no assertion about sender";
	case SPF_RES_NONE:
		return "no SPF record";
	case SPF_RES_TEMPERROR:
		return "temporary DNS failure";
	case SPF_RES_PERMERROR:
		return "SPF record in error";
	}
	return "";
}

/* evaluate - one identity through libspf2 and our layer */
static int
evaluate(struct spf_checker *c, const struct spf_query *q,
    enum spf_identity id, struct spf_answer *a)
{
	struct layer *l = c->layer;
	const char *helo = q->helo != NULL ? q->helo : "";
	const char *sender = q->sender != NULL ? q->sender : "";
	const char *domain, *at;
	SPF_request_t *req = NULL;
	SPF_response_t *resp = NULL;
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;
	struct in_addr v4;
	struct in6_addr v6;
	size_t n;
	int af;
	enum spf_result r;

	memset(a, 0, sizeof(*a));
	a->identity = id;

	/* The client address: v4, v6, or v4-mapped v6 checked as v4. */
	if (q->ip != NULL && inet_pton(AF_INET, q->ip, &v4) == 1)
		af = AF_INET;
	else if (q->ip != NULL && inet_pton(AF_INET6, q->ip, &v6) == 1) {
		af = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED(&v6)) {
			memcpy(&v4.s_addr, &v6.s6_addr[12], 4);
			af = AF_INET;
		}
	} else {
		answer_set(a, SPF_RES_PERMERROR, "unusable client address");
		return -1;
	}

	/* RFC 5321 4.5.3.1: a path is at most 256 octets; anything longer is
	 * not handed to libspf2's macro expansion. */
	if (strlen(sender) > SENDER_MAX || strlen(helo) > SPF_NAME_MAX - 1) {
		answer_set(a, SPF_RES_PERMERROR, "sender or HELO too long");
		return -1;
	}

	/* The identity: MAIL FROM (null sender: postmaster@HELO), or HELO. */
	if (id == SPF_ID_HELO || *sender == '\0')
		domain = helo;
	else
		domain = (at = strrchr(sender, '@')) != NULL ? at + 1 : sender;
	n = strlen(domain);
	if (n >= sizeof(a->domain))
		n = sizeof(a->domain) - 1;
	memcpy(a->domain, domain, n);
	a->domain[n] = '\0';
	if (!domain_ok(domain)) {
		answer_set(a, SPF_RES_NONE, "no usable domain to check");
		return 0;
	}
	if (c->opt.allow_loopback && is_loopback(af, &v4, &v6)) {
		answer_set(a, SPF_RES_PASS, "loopback client, not checked");
		return 0;
	}

	layer_reset(l);
	if ((req = SPF_request_new(c->server)) == NULL)
		goto nomem;
	if (af == AF_INET)
		err = SPF_request_set_ipv4(req, v4);
	else
		err = SPF_request_set_ipv6(req, v6);
	if (err != SPF_E_SUCCESS)
		goto nomem;
	if (*helo != '\0' && SPF_request_set_helo_dom(req, helo) !=
	    SPF_E_SUCCESS)
		goto nomem;
	if (SPF_request_set_env_from(req, id == SPF_ID_HELO ? helo :
	    (*sender != '\0' ? sender : helo)) != SPF_E_SUCCESS)
		goto nomem;
	req->cur_dom = id == SPF_ID_HELO ? req->helo_dom : req->env_from_dp;
	if (req->cur_dom == NULL) {
		answer_set(a, SPF_RES_NONE, "no usable domain to check");
		SPF_request_free(req);
		return 0;
	}
	if ((resp = SPF_response_new(req)) == NULL)
		goto nomem;

	err = SPF_server_get_record(c->server, req, resp, &rec);
	if (err != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		switch (l->first) {
		case FETCH_NONE:
			r = SPF_RES_NONE;
			break;
		case FETCH_TEMP:
			r = SPF_RES_TEMPERROR;
			break;
		case FETCH_PERM:
			r = SPF_RES_PERMERROR;
			break;
		case FETCH_OK:
		default:
			r = spf_map_result(SPF_RESULT_INVALID,
			    err == SPF_E_DNS_ERROR || l->dns_failed);
			break;
		}
	} else {
		resp->spf_record_exp = rec;
		(void)SPF_record_interpret(rec, req, resp, 0);
		SPF_record_free(rec);
		r = spf_map_result(resp->result,
		    resp->err == SPF_E_DNS_ERROR || l->dns_failed);
	}
	switch (l->stop) {
	case STOP_LOOKUPS:
	case STOP_VOID:
		r = SPF_RES_PERMERROR;
		break;
	case STOP_DEADLINE:
		r = SPF_RES_TEMPERROR;
		break;
	case STOP_NONE:
		break;
	}
	if ((r == SPF_RES_PERMERROR || r == SPF_RES_TEMPERROR) &&
	    l->why[0] != '\0')
		answer_set(a, r, "%s", l->why);
	else if (r == SPF_RES_PERMERROR && resp->err != SPF_E_SUCCESS)
		answer_set(a, r, "%s", SPF_strerror(resp->err));
	else
		answer_set(a, r, "%s", result_text(r));
	SPF_response_free(resp);
	SPF_request_free(req);
	return 0;

nomem:
	if (resp != NULL)
		SPF_response_free(resp);
	if (req != NULL)
		SPF_request_free(req);
	answer_set(a, SPF_RES_TEMPERROR, "out of memory");
	return -1;
}

/* spf_check - evaluate the MAIL FROM identity (null sender: HELO's
 * postmaster) */
int
spf_check(struct spf_checker *c, const struct spf_query *q,
    struct spf_answer *a)
{
	return evaluate(c, q, SPF_ID_MAILFROM, a);
}

/* spf_check_helo - evaluate the HELO identity alone */
int
spf_check_helo(struct spf_checker *c, const struct spf_query *q,
    struct spf_answer *a)
{
	return evaluate(c, q, SPF_ID_HELO, a);
}
