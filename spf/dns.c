/*
 * spf/dns.c - our DNS layer (struct layer, the hook of an SPF_dns_server_t
 * on top of libspf2's resolv or zone layer).  See spf/spf_impl.h; the
 * layer is made by spf_checker_new and lives as long as its checker.
 *
 * It does what libspf2 does not:
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
 * exactly one such record or permerror, none = none; the record then
 * goes through spf_record_check (spf/record.c) before libspf2 compiles it.
 *
 * In zone mode (tests, the RFC 7208 harness) libspf2's zone answers
 * NXDOMAIN for a name it has with other types; we know the names and turn
 * that into NODATA, as real DNS would.
 *
 * Out of memory inside a libspf2 callback is fatal (the worker is
 * replaced); nothing else here ends the process.
 */
#include <sys/types.h>
#include <sys/random.h>
#include <netinet/in.h>
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

#include "spf/spf.h"
#include "spf/spf_impl.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* spf_norm_name - lower case without a final dot, into buf; 0 or -1 */
int
spf_norm_name(const char *name, char *buf, size_t len)
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

/* spf_zone_has_name - zone mode: does the zone know name (any type)? */
int
spf_zone_has_name(const struct layer *l, const char *name)
{
	char n[SPF_NAME_MAX];
	size_t i;

	if (spf_norm_name(name, n, sizeof(n)) == -1)
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

	if (l->ndelayed == 0 || spf_norm_name(domain, n, sizeof(n)) == -1)
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
	    spf_zone_has_name(l, domain))
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
	if (spf_norm_name(domain, n, sizeof(n)) == 0 &&
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
		if (spf_norm_name(name, l->pending[l->npending],
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
 * synthetic - the exists: lookups spf_record_check() writes for a//0 (IPv6
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

/* fetch_none - no SPF record at domain: none for the check's own
 * domain, an error for an include/redirect target */
static SPF_errcode_t
fetch_none(struct layer *l, int first, SPF_response_t *resp,
    const char *domain)
{
	if (first) {
		l->first = FETCH_NONE;
		resp->result = SPF_RESULT_NONE;
	} else
		layer_why(l, "no SPF record at %.100s", domain);
	return SPF_E_NOT_SPF;
}

/* fetch_compile - check the one record txt of domain (spf/record.c) and
 * compile the normalized copy into *recordp; first: the check's own */
static SPF_errcode_t
fetch_compile(SPF_server_t *server, SPF_request_t *req, SPF_response_t *resp,
    int first, const char *domain, const char *txt, SPF_record_t **recordp)
{
	struct layer *l = server->resolver->hook;
	SPF_errcode_t err;
	char *norm, why[SPF_TEXT_MAX];

	norm = spf_record_check(txt, req->client_ver == AF_INET6, l->token,
	    why, sizeof(why));
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
	int first, i, found = 0;

	*recordp = NULL;
	first = l->fetches++ == 0;
	if (domain == NULL)
		return SPF_E_NOT_CONFIG;
	/* include: and redirect= are terms; the check's own fetch is not */
	if (!first && count_term(l, domain) == -1)
		return SPF_E_DNS_ERROR;
	rr = query(s, domain, ns_t_txt, 1);
	if (rr->herrno == HOST_NOT_FOUND || rr->herrno == NO_DATA) {
		SPF_dns_rr_free(rr);
		return fetch_none(l, first, resp, domain);
	}
	if (rr->herrno != NETDB_SUCCESS) {
		SPF_dns_rr_free(rr);
		l->dns_failed = 1;
		if (first)
			l->first = FETCH_TEMP;
		layer_why(l, "DNS lookup of %.100s failed", domain);
		return SPF_E_DNS_ERROR;
	}
	for (i = 0; i < rr->num_rr; i++) {
		if (rr->rr_type == ns_t_txt &&
		    spf_record_is_spf1(rr->rr[i]->txt)) {
			found++;
			txt = rr->rr[i]->txt;
		}
	}
	if (found != 1) {
		SPF_dns_rr_free(rr);
		if (found == 0)
			return fetch_none(l, first, resp, domain);
		if (first)
			l->first = FETCH_PERM;
		layer_why(l, "several SPF records at %.100s", domain);
		return SPF_E_MULTIPLE_RECORDS;
	}
	err = fetch_compile(server, req, resp, first, domain, txt, recordp);
	SPF_dns_rr_free(rr);
	return err;
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

/* spf_layer_reset - a fresh count and deadline for one check */
void
spf_layer_reset(struct layer *l)
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

/* spf_layer_new - our layer on top of below (see spf/spf_impl.h) */
SPF_dns_server_t *
spf_layer_new(const struct spf_options *opt, SPF_dns_server_t *below,
    struct layer **lp)
{
	SPF_dns_server_t *top;
	struct layer *l;

	l = xcalloc(1, sizeof(*l));
	l->below = below;
	l->max_lookups = opt->max_dns_lookups;
	l->max_void = opt->max_void_lookups;
	l->timeout_ms = opt->timeout_ms;
	make_token(l->token, sizeof(l->token));
	if (opt->use_zone)
		l->names = xcalloc(1, sizeof(*l->names));

	top = xcalloc(1, sizeof(*top));
	top->destroy = layer_destroy;
	top->lookup = layer_lookup;
	top->get_spf = layer_get_spf;
	top->get_exp = NULL;
	top->add_cache = NULL;
	top->layer_below = below;
	top->name = "outpost";
	top->debug = 0;
	top->hook = l;
	*lp = l;
	return top;
}
