/*
 * spf - SPF evaluation over libspf2, with our DNS layer (spf/dns.c) in
 * front of its resolv (or zone) layer.  See spf/spf.h for the contract
 * and spf/spf_impl.h for how the files of the checker divide the work.
 *
 * We never call SPF_request_query_mailfrom(): it passes a loopback client
 * without looking.  We fetch the record and call SPF_record_interpret()
 * ourselves, which is what it does for any other client.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_resolv.h>
#include <spf2/spf_dns_zone.h>

#include "spf/spf.h"
#include "spf/spf_impl.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define SENDER_MAX 320		/* local part 64 + "@" + domain 255 */
#define SPF2_MAX_MECH 100	/* libspf2's own per-record count: ours
				 * decides, keep it out of the way */

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

/* spf_checker_new - a libspf2 server with our DNS layer (spf_checker_free) */
struct spf_checker *
spf_checker_new(const struct spf_options *opt, char *err, size_t errlen)
{
	struct spf_checker *c;
	SPF_dns_server_t *below;

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
	c->top = spf_layer_new(opt, below, &c->layer);
	c->zone = opt->use_zone ? below : NULL;

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

/* client_addr - ip as AF_INET (a v4-mapped v6 address too) into v4 or
 * AF_INET6 into v6; -1 when it is neither */
static int
client_addr(const char *ip, struct in_addr *v4, struct in6_addr *v6)
{
	if (ip != NULL && inet_pton(AF_INET, ip, v4) == 1)
		return AF_INET;
	if (ip != NULL && inet_pton(AF_INET6, ip, v6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(v6)) {
			memcpy(&v4->s_addr, &v6->s6_addr[12], 4);
			return AF_INET;
		}
		return AF_INET6;
	}
	return -1;
}

/*
 * request_new - libspf2's request for identity id: the client (af, v4
 * or v6), HELO and sender (the null sender: postmaster@HELO); cur_dom
 * is the identity's domain (NULL when libspf2 found none).  The caller
 * frees it; NULL when out of memory.
 */
static SPF_request_t *
request_new(struct spf_checker *c, int af, const struct in_addr *v4,
    const struct in6_addr *v6, const char *helo, const char *sender,
    enum spf_identity id)
{
	SPF_request_t *req;
	SPF_errcode_t err;

	if ((req = SPF_request_new(c->server)) == NULL)
		return NULL;
	if (af == AF_INET)
		err = SPF_request_set_ipv4(req, *v4);
	else
		err = SPF_request_set_ipv6(req, *v6);
	if (err != SPF_E_SUCCESS ||
	    (*helo != '\0' && SPF_request_set_helo_dom(req, helo) !=
	    SPF_E_SUCCESS) ||
	    SPF_request_set_env_from(req, id == SPF_ID_HELO ? helo :
	    (*sender != '\0' ? sender : helo)) != SPF_E_SUCCESS) {
		SPF_request_free(req);
		return NULL;
	}
	req->cur_dom = id == SPF_ID_HELO ? req->helo_dom : req->env_from_dp;
	return req;
}

/* fetch_result - the result when the record fetch failed with err */
static enum spf_result
fetch_result(const struct layer *l, SPF_errcode_t err)
{
	switch (l->first) {
	case FETCH_NONE:
		return SPF_RES_NONE;
	case FETCH_TEMP:
		return SPF_RES_TEMPERROR;
	case FETCH_PERM:
		return SPF_RES_PERMERROR;
	case FETCH_OK:
	default:
		return spf_map_result(SPF_RESULT_INVALID,
		    err == SPF_E_DNS_ERROR || l->dns_failed);
	}
}

/* run - fetch and interpret the record of req's domain: the result, after
 * our layer's stop (a limit: permerror; the deadline: temperror) */
static enum spf_result
run(struct spf_checker *c, SPF_request_t *req, SPF_response_t *resp)
{
	struct layer *l = c->layer;
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;
	enum spf_result r;

	err = SPF_server_get_record(c->server, req, resp, &rec);
	if (err != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		r = fetch_result(l, err);
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
		return SPF_RES_PERMERROR;
	case STOP_DEADLINE:
		return SPF_RES_TEMPERROR;
	case STOP_NONE:
		break;
	}
	return r;
}

/* identity_domain - the domain identity id is about (the null sender's
 * is HELO's), also copied (truncated) into a->domain */
static const char *
identity_domain(const char *helo, const char *sender, enum spf_identity id,
    struct spf_answer *a)
{
	const char *domain, *at;
	size_t n;

	if (id == SPF_ID_HELO || *sender == '\0')
		domain = helo;
	else
		domain = (at = strrchr(sender, '@')) != NULL ? at + 1 : sender;
	n = strlen(domain);
	if (n >= sizeof(a->domain))
		n = sizeof(a->domain) - 1;
	memcpy(a->domain, domain, n);
	a->domain[n] = '\0';
	return domain;
}

/* evaluate - one identity through libspf2 and our layer */
static int
evaluate(struct spf_checker *c, const struct spf_query *q,
    enum spf_identity id, struct spf_answer *a)
{
	struct layer *l = c->layer;
	const char *helo = q->helo != NULL ? q->helo : "";
	const char *sender = q->sender != NULL ? q->sender : "";
	SPF_request_t *req;
	SPF_response_t *resp;
	struct in_addr v4;
	struct in6_addr v6;
	enum spf_result r;
	int af;

	memset(a, 0, sizeof(*a));
	a->identity = id;
	if ((af = client_addr(q->ip, &v4, &v6)) == -1) {
		answer_set(a, SPF_RES_PERMERROR, "unusable client address");
		return -1;
	}
	/* RFC 5321 4.5.3.1: a path is at most 256 octets; anything longer is
	 * not handed to libspf2's macro expansion. */
	if (strlen(sender) > SENDER_MAX || strlen(helo) > SPF_NAME_MAX - 1) {
		answer_set(a, SPF_RES_PERMERROR, "sender or HELO too long");
		return -1;
	}
	if (!domain_ok(identity_domain(helo, sender, id, a))) {
		answer_set(a, SPF_RES_NONE, "no usable domain to check");
		return 0;
	}
	if (c->opt.allow_loopback && is_loopback(af, &v4, &v6)) {
		answer_set(a, SPF_RES_PASS, "loopback client, not checked");
		return 0;
	}

	spf_layer_reset(l);
	if ((req = request_new(c, af, &v4, &v6, helo, sender, id)) == NULL)
		goto nomem;
	if (req->cur_dom == NULL) {
		answer_set(a, SPF_RES_NONE, "no usable domain to check");
		SPF_request_free(req);
		return 0;
	}
	if ((resp = SPF_response_new(req)) == NULL) {
		SPF_request_free(req);
		goto nomem;
	}
	r = run(c, req, resp);
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

