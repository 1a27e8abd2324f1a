/*
 * cmd_check_domain - outpostctl check-domain DOMAIN [--json] [-c CONF]
 * [-t SECONDS]: audit a sending domain against this server's
 * configuration, before the first campaign.
 *
 * Checks, one line each (PASS, FAIL, TEMPERROR or SKIP), every FAIL
 * followed by the DNS record to publish:
 *   spf      the domain has one SPF record; each spf.outbound.addresses
 *            entry passes for MAIL FROM postmaster@DOMAIN, asked through
 *            the SPF worker pool (spf/pool.c, the RFC 7208 limits) as
 *            the milter's preflight does;
 *   dkim     each key the signing configuration uses for mail from the
 *            domain (dkim_decide) is published and matches its private
 *            key (tools/keycheck.c, shared with keytest);
 *   dmarc    the record (deliver/dmarc.c): policy, adkim, aspf, rua;
 *   aligned  mail signed here passes DMARC: a matching key whose d= is
 *            aligned under adkim, or SPF passing for all our addresses
 *            (MAIL FROM in the domain: aligned under either aspf);
 *   ptr      each outbound address has a PTR whose name resolves back;
 *   mx       the domain has an MX, or a null MX.
 * Every lookup but SPF's (the workers') goes through deliver/dns with
 * the -t deadline (default 5 s).  Exit: 0 all pass; 1 a FAIL; 75
 * (EX_TEMPFAIL) no FAIL but a TEMPERROR; EX_CONFIG, EX_USAGE.
 */
#include "config.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>
#include <unistd.h>

#include "deliver/dmarc.h"
#include "deliver/dns.h"
#include "dkim/decide.h"
#include "dkim/keygen.h"
#include "dkim/table.h"
#include "spf/pool.h"
#include "tools/outpostctl.h"
#include "util/xmalloc.h"

#define CD_TXT_MAX	16384
#define CD_TIMEOUT_S	5

enum cd_status { CD_PASS, CD_FAIL, CD_TEMPERROR, CD_SKIP };

static const char *const cd_status_names[] = { "pass", "fail", "temperror",
	"skip" };

/* One line of the report. */
struct cd_item {
	const char *check;		/* static */
	enum cd_status status;
	char *text;			/* owned */
	char *publish;			/* owned, or NULL */
};

/* One run. */
struct cd {
	struct conf *conf;
	struct dns *dns;
	const char *domain;
	struct cd_item *v;
	size_t n, cap;
	int spf_all_pass;		/* every outbound address passes */
	char spf_record[2048];		/* the domain's, or "" */
	int dkim_aligned;		/* a matching key with d= aligned */
	char dkim_ok_d[256];		/* its d= */
	char adkim, aspf;		/* from the DMARC record, else 'r' */
	enum dmarc_found dmarc;		/* looked up first (adkim) */
	struct dmarc_record rec;
	char dmarc_err[512];
	int unknown;			/* a DKIM or SPF answer is missing */
	enum dns_rc fetch_rc;		/* of the last DKIM record fetch */
};

/* add - one line; publish may be NULL */
static void
add(struct cd *cd, const char *check, enum cd_status st,
    const char *publish, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	buf_appends(&b, line);
	if (cd->n == cd->cap) {
		cd->cap = cd->cap ? cd->cap * 2 : 16;
		cd->v = xreallocarray(cd->v, cd->cap, sizeof(*cd->v));
	}
	cd->v[cd->n].check = check;
	cd->v[cd->n].status = st;
	cd->v[cd->n].text = buf_steal(&b);
	cd->v[cd->n].publish = publish != NULL ? xstrdup(publish) : NULL;
	cd->n++;
}

/* ---- SPF ---------------------------------------------------------------- */

/* spf_mechanism - what authorizes our addresses: spf.outbound.publish,
 * else ip4:/ip6: per address */
static void
spf_mechanism(const struct cd *cd, struct buf *b)
{
	size_t i;

	if (cd->conf->spf.outbound.publish != NULL) {
		buf_appends(b, cd->conf->spf.outbound.publish);
		return;
	}
	for (i = 0; i < cd->conf->spf.outbound.naddresses; i++) {
		const char *a = cd->conf->spf.outbound.addresses[i];

		buf_appendf(b, "%s%s:%s", i ? " " : "",
		    strchr(a, ':') != NULL ? "ip6" : "ip4", a);
	}
}

/* spf_publish - the SPF record to publish: ours added to the domain's
 * record after "v=spf1", or a new one */
static void
spf_publish(const struct cd *cd, struct buf *b)
{
	struct buf m = BUF_INIT;

	spf_mechanism(cd, &m);
	if (cd->spf_record[0] != '\0')
		buf_appendf(b, "%s. IN TXT \"v=spf1 %s%s\"", cd->domain,
		    buf_cstr(&m), cd->spf_record + 6);
	else
		buf_appendf(b, "%s. IN TXT \"v=spf1 %s -all\"", cd->domain,
		    buf_cstr(&m));
	buf_free(&m);
}

/* is_spf1 - the TXT line is an SPF record */
static int
is_spf1(const char *s, size_t len)
{
	return len >= 6 && strncasecmp(s, "v=spf1", 6) == 0 &&
	    (len == 6 || s[6] == ' ');
}

/* check_spf_record - the domain has exactly one SPF record */
static void
check_spf_record(struct cd *cd)
{
	char txt[CD_TXT_MAX], err[512];
	const char *p, *nl;
	struct buf pub = BUF_INIT;
	enum dns_rc rc;
	int n = 0;

	rc = dns_txt(cd->dns, cd->domain, txt, sizeof(txt), err, sizeof(err));
	if (rc == DNS_TEMPERROR) {
		add(cd, "spf", CD_TEMPERROR, NULL, "TXT %s", err);
		return;
	}
	for (p = rc == DNS_OK ? txt : ""; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (is_spf1(p, (size_t)(nl - p)) && n++ == 0)
			(void)snprintf(cd->spf_record, sizeof(cd->spf_record),
			    "%.*s", (int)(nl - p), p);
	}
	spf_publish(cd, &pub);
	if (n == 1)
		add(cd, "spf", CD_PASS, NULL, "record: %s", cd->spf_record);
	else if (n == 0)
		add(cd, "spf", CD_FAIL, buf_cstr(&pub), "no SPF record at %s",
		    cd->domain);
	else
		add(cd, "spf", CD_FAIL, NULL, "%d SPF records at %s (permerror:"
		    " keep one)", n, cd->domain);
	buf_free(&pub);
}

/* check_spf_addrs - each outbound address through the SPF workers */
static void
check_spf_addrs(struct cd *cd)
{
	const struct conf *c = cd->conf;
	struct spf_pool *pool;
	struct spf_answer ans;
	struct spf_query q;
	struct buf pub = BUF_INIT;
	char err[512], sender[300];
	size_t i;

	if (c->spf.outbound.naddresses == 0) {
		add(cd, "spf", CD_SKIP, NULL, "no spf.outbound.addresses "
		    "configured: our addresses cannot be checked");
		return;
	}
	if ((pool = spf_pool_new(&c->spf, &c->log, err, sizeof(err))) == NULL) {
		add(cd, "spf", CD_TEMPERROR, NULL, "SPF workers: %s", err);
		return;
	}
	(void)snprintf(sender, sizeof(sender), "postmaster@%s", cd->domain);
	spf_publish(cd, &pub);
	cd->spf_all_pass = 1;
	for (i = 0; i < c->spf.outbound.naddresses; i++) {
		memset(&ans, 0, sizeof(ans));
		q.ip = c->spf.outbound.addresses[i];
		q.helo = cd->domain;
		q.sender = sender;
		(void)spf_pool_check(pool, SPF_KIND_MAILFROM, &q, &ans);
		if (ans.result != SPF_RES_PASS)
			cd->spf_all_pass = 0;
		if (ans.result == SPF_RES_TEMPERROR)
			cd->unknown = 1;
		if (ans.result == SPF_RES_PASS)
			add(cd, "spf", CD_PASS, NULL, "%s passes for %s", q.ip,
			    sender);
		else
			add(cd, "spf", ans.result == SPF_RES_TEMPERROR ?
			    CD_TEMPERROR : CD_FAIL, ans.result ==
			    SPF_RES_TEMPERROR ? NULL : buf_cstr(&pub),
			    "%s: %s for %s%s%s", q.ip,
			    spf_result_name(ans.result), sender,
			    ans.text[0] ? ": " : "", ans.text);
	}
	buf_free(&pub);
	spf_pool_free(pool);
}

/* ---- DKIM ----------------------------------------------------------------- */

/* fetch_dns - keycheck's record through deliver/dns: one TXT record */
static int
fetch_dns(const char *selector, const char *domain, struct buf *rec,
    char *err, size_t errlen, void *arg)
{
	struct cd *cd = arg;
	char name[600], txt[CD_TXT_MAX], why[512];
	enum dns_rc rc;
	char *nl;

	(void)snprintf(name, sizeof(name), "%s._domainkey.%s", selector,
	    domain);
	rc = dns_txt(cd->dns, name, txt, sizeof(txt), why, sizeof(why));
	cd->fetch_rc = rc;
	if (rc != DNS_OK) {
		if (rc == DNS_TEMPERROR)
			(void)snprintf(err, errlen, "TXT %s", why);
		else
			(void)snprintf(err, errlen, "%s TXT: %s", name, rc ==
			    DNS_NXDOMAIN ? "no such name (NXDOMAIN)" :
			    "no TXT record");
		return -1;
	}
	nl = strchr(txt, '\n');
	if (nl != NULL && nl[1] != '\0') {
		(void)snprintf(err, errlen, "%s: more than one TXT record",
		    name);
		return -1;
	}
	if (nl != NULL)
		*nl = '\0';
	buf_appends(rec, txt);
	return 0;
}

/* check_one_key - one signature's key against its record */
static void
check_one_key(struct cd *cd, const struct dkim_sign_req *req)
{
	struct keycheck_fetch fetch = { fetch_dns, cd };
	struct keycheck k;

	cd->fetch_rc = DNS_OK;
	keycheck_key(req->key, req->domain, req->selector, fetch, &k);
	if (k.status == 0) {
		add(cd, "dkim", CD_PASS, NULL, "%s._domainkey.%s matches the "
		    "key (%s)", req->selector, req->domain,
		    conf_alg_name(k.alg));
		if (!cd->dkim_aligned &&
		    dmarc_aligned(cd->domain, req->domain, cd->adkim)) {
			cd->dkim_aligned = 1;
			(void)snprintf(cd->dkim_ok_d, sizeof(cd->dkim_ok_d),
			    "%s", req->domain);
		}
	} else if (cd->fetch_rc != DNS_TEMPERROR)
		add(cd, "dkim", CD_FAIL, k.zone, "%s", k.why);
	else {
		/* the record could not be fetched: unknown */
		cd->unknown = 1;
		add(cd, "dkim", CD_TEMPERROR, NULL, "%s", k.why);
	}
	keycheck_clear(&k);
}

/* check_dkim - the keys this server signs the domain's mail with */
static void
check_dkim(struct cd *cd)
{
	struct dkim_decide_in in;
	struct dkim_decision dec;
	struct dkim_table *t;
	char err[1024], from[300];
	size_t i;

	if ((t = dkim_table_new(&cd->conf->dkim, cd->conf->path, err,
	    sizeof(err))) == NULL) {
		add(cd, "dkim", CD_FAIL, NULL, "keys: %s", err);
		return;
	}
	/* Mail from a sender this server signs for: authenticated. */
	cd->conf->trusted.authenticated = 1;
	(void)snprintf(from, sizeof(from), "<postmaster@%s>", cd->domain);
	memset(&in, 0, sizeof(in));
	in.auth_authen = "outpostctl";
	in.nfrom = 1;
	in.from_value = from;
	in.from_len = strlen(from);
	dkim_decide(&cd->conf->trusted, t, &in, &dec);
	if (!dec.sign || dec.nreq == 0)
		add(cd, "dkim", CD_FAIL, NULL, "no key signs mail from %s "
		    "(%s): make one (outpostctl keygen -d %s -s SELECTOR), "
		    "add it to dkim.keys and dkim.signing, publish its record",
		    cd->domain, dec.reason ? dec.reason : "no rule",
		    cd->domain);
	for (i = 0; dec.sign && i < dec.nreq; i++)
		check_one_key(cd, &dec.req[i]);
	dkim_table_free(t);
}

/* ---- DMARC and alignment ------------------------------------------------ */

/* report_dmarc - the record found at the start */
static void
report_dmarc(struct cd *cd)
{
	const struct dmarc_record *r = &cd->rec;
	char pub[600];

	if (cd->dmarc == DMARC_TEMPERROR) {
		add(cd, "dmarc", CD_TEMPERROR, NULL, "%s", cd->dmarc_err);
		return;
	}
	if (cd->dmarc == DMARC_ABSENT) {
		(void)snprintf(pub, sizeof(pub), "_dmarc.%s. IN TXT "
		    "\"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s\"",
		    cd->domain, cd->domain);
		add(cd, "dmarc", CD_FAIL, pub, "%s (mailbox providers want "
		    "one for bulk mail)", cd->dmarc_err);
		return;
	}
	add(cd, "dmarc", CD_PASS, NULL, "_dmarc.%s: p=%s sp=%s adkim=%c "
	    "aspf=%c rua=%s%s", r->where, dmarc_policy_name(r->p),
	    dmarc_policy_name(r->sp), r->adkim, r->aspf,
	    r->rua[0] ? r->rua : "(none: no aggregate reports)",
	    r->p == DMARC_P_NONE ? " (p=none: monitoring only)" : "");
}

/* check_aligned - would mail signed here pass DMARC */
static void
check_aligned(struct cd *cd)
{
	struct buf pub = BUF_INIT;

	if (cd->dkim_aligned)
		add(cd, "aligned", CD_PASS, NULL, "DKIM d=%s is aligned with "
		    "%s (adkim=%c)", cd->dkim_ok_d, cd->domain, cd->adkim);
	else if (cd->spf_all_pass)
		add(cd, "aligned", CD_PASS, NULL, "SPF passes for MAIL FROM "
		    "in %s (aligned under aspf=%c); no aligned DKIM key",
		    cd->domain, cd->aspf);
	else if (cd->unknown)
		add(cd, "aligned", CD_TEMPERROR, NULL, "unknown: a DKIM or "
		    "SPF check ended in a temporary error");
	else {
		spf_publish(cd, &pub);
		add(cd, "aligned", CD_FAIL, buf_cstr(&pub), "no DKIM key "
		    "with d= aligned to %s (adkim=%c) is published and SPF "
		    "does not pass for our addresses: DMARC fails", cd->domain,
		    cd->adkim);
		buf_free(&pub);
	}
}

/* ---- our addresses, MX ------------------------------------------------------ */

/* resolves_back - 1 if name's A/AAAA records include addr */
static int
resolves_back(struct cd *cd, const char *name, const char *addr,
    enum dns_rc *rc)
{
	char out[4096], err[512], want[16], got[16];
	const char *p, *nl;
	int af = strchr(addr, ':') != NULL ? AF_INET6 : AF_INET;

	*rc = dns_addrs(cd->dns, name, out, sizeof(out), err, sizeof(err));
	if (*rc != DNS_OK || inet_pton(af, addr, want) != 1)
		return 0;
	for (p = out; *p != '\0'; p = nl + 1) {
		char one[64];

		nl = strchr(p, '\n');
		(void)snprintf(one, sizeof(one), "%.*s", (int)(nl - p), p);
		if (inet_pton(af, one, got) == 1 &&
		    memcmp(want, got, af == AF_INET ? 4 : 16) == 0)
			return 1;
	}
	return 0;
}

/* check_ptr_one - FCrDNS of one outbound address */
static void
check_ptr_one(struct cd *cd, const char *addr)
{
	char names[4096], err[512], owner[128], pub[800], first[256] = "";
	const char *p, *nl;
	enum dns_rc rc, arc = DNS_OK;

	(void)dns_reverse_name(addr, owner, sizeof(owner));
	rc = dns_ptr(cd->dns, addr, names, sizeof(names), err, sizeof(err));
	if (rc == DNS_TEMPERROR) {
		add(cd, "ptr", CD_TEMPERROR, NULL, "%s: %s", addr, err);
		return;
	}
	for (p = rc == DNS_OK ? names : ""; *p != '\0'; p = nl + 1) {
		char name[256];

		nl = strchr(p, '\n');
		(void)snprintf(name, sizeof(name), "%.*s", (int)(nl - p), p);
		if (first[0] == '\0')
			(void)snprintf(first, sizeof(first), "%s", name);
		if (resolves_back(cd, name, addr, &arc)) {
			add(cd, "ptr", CD_PASS, NULL, "%s: PTR %s resolves back",
			    addr, name);
			return;
		}
	}
	if (first[0] == '\0') {
		(void)snprintf(pub, sizeof(pub), "%s. IN PTR mail.%s.", owner,
		    cd->domain);
		add(cd, "ptr", CD_FAIL, pub, "%s has no PTR record (%s): "
		    "receivers junk or refuse mail from it; also publish "
		    "mail.%s. IN %s %s", addr, owner, cd->domain,
		    strchr(addr, ':') ? "AAAA" : "A", addr);
		return;
	}
	(void)snprintf(pub, sizeof(pub), "%s. IN %s %s", first,
	    strchr(addr, ':') ? "AAAA" : "A", addr);
	add(cd, "ptr", arc == DNS_TEMPERROR ? CD_TEMPERROR : CD_FAIL,
	    arc == DNS_TEMPERROR ? NULL : pub, "%s: PTR %s does not resolve "
	    "back to %s (no FCrDNS)", addr, first, addr);
}

/* check_mx - an MX or a null MX, so that bounces can come back */
static void
check_mx(struct cd *cd)
{
	char out[4096], err[512], pub[600];
	enum dns_rc rc;
	char *nl;

	rc = dns_mx(cd->dns, cd->domain, out, sizeof(out), err, sizeof(err));
	if (rc == DNS_TEMPERROR) {
		add(cd, "mx", CD_TEMPERROR, NULL, "MX %s", err);
		return;
	}
	if (rc != DNS_OK) {
		(void)snprintf(pub, sizeof(pub), "%s. IN MX 10 mail.%s.",
		    cd->domain, cd->domain);
		add(cd, "mx", CD_FAIL, pub, "%s has no MX record: bounces and "
		    "replies cannot come back (or publish a null MX, \"%s. IN "
		    "MX 0 .\", if it receives no mail)", cd->domain,
		    cd->domain);
		return;
	}
	for (nl = out; (nl = strchr(nl, '\n')) != NULL; nl++)
		if (nl[1] != '\0')
			*nl = ',';
		else
			*nl = '\0';
	add(cd, "mx", CD_PASS, NULL, "%s%s", out, strcmp(out, "0 .") == 0 ?
	    " (null MX: the domain receives no mail)" : "");
}

/* ---- output ---------------------------------------------------------------- */

/* print_text - the checklist */
static void
print_text(const struct cd *cd)
{
	static const char *const word[] = { "PASS", "FAIL", "TEMPERROR",
		"SKIP" };
	size_t i;

	printf("check-domain %s\n", cd->domain);
	for (i = 0; i < cd->n; i++) {
		printf("%-9s %-7s %s\n", word[cd->v[i].status], cd->v[i].check,
		    cd->v[i].text);
		if (cd->v[i].publish != NULL)
			printf("%-9s %-7s publish: %s\n", "", "",
			    cd->v[i].publish);
	}
}

/* print_json - the same as one object */
static void
print_json(const struct cd *cd, int rc)
{
	struct buf b = BUF_INIT;
	size_t i;

	buf_appends(&b, "{\"domain\":");
	json_str(&b, cd->domain);
	buf_appendf(&b, ",\"result\":\"%s\",\"checks\":[", rc == 0 ? "pass" :
	    rc == 1 ? "fail" : "temperror");
	for (i = 0; i < cd->n; i++) {
		buf_appendf(&b, "%s{\"check\":\"%s\",\"status\":\"%s\","
		    "\"text\":", i ? "," : "", cd->v[i].check,
		    cd_status_names[cd->v[i].status]);
		json_str(&b, cd->v[i].text);
		buf_appends(&b, ",\"publish\":");
		if (cd->v[i].publish != NULL)
			json_str(&b, cd->v[i].publish);
		else
			buf_appends(&b, "null");
		buf_appendc(&b, '}');
	}
	buf_appends(&b, "]}\n");
	fputs(buf_cstr(&b), stdout);
	buf_free(&b);
}

/* run - every check in order; the exit status */
static int
run(struct cd *cd)
{
	size_t i;
	int fail = 0, temp = 0;

	cd->adkim = cd->aspf = 'r';
	cd->dmarc = dmarc_lookup(cd->dns, cd->domain, &cd->rec,
	    cd->dmarc_err, sizeof(cd->dmarc_err));
	if (cd->dmarc == DMARC_FOUND) {
		cd->adkim = cd->rec.adkim;
		cd->aspf = cd->rec.aspf;
	}
	check_spf_record(cd);
	check_spf_addrs(cd);
	check_dkim(cd);
	report_dmarc(cd);
	check_aligned(cd);
	for (i = 0; i < cd->conf->spf.outbound.naddresses; i++)
		check_ptr_one(cd, cd->conf->spf.outbound.addresses[i]);
	check_mx(cd);
	for (i = 0; i < cd->n; i++) {
		fail |= cd->v[i].status == CD_FAIL;
		temp |= cd->v[i].status == CD_TEMPERROR;
	}
	return fail ? 1 : temp ? EX_TEMPFAIL : 0;
}

/* cmd_check_domain - outpostctl check-domain */
int
cmd_check_domain(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfile = CONF_DEFAULT_PATH;
	struct cd cd;
	char err[1024];
	int ch, json = 0, timeout = CD_TIMEOUT_S, rc;
	size_t i;

	while ((ch = getopt_long(argc, argv, "c:jt:", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			cfile = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 't':
			timeout = atoi(optarg);
			if (timeout < 1 || timeout > 600)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1 || !keygen_name_ok(argv[optind]))
		usage();
	memset(&cd, 0, sizeof(cd));
	cd.domain = argv[optind];
	if ((cd.conf = conf_load(cfile, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", progname, err);
		return EX_CONFIG;
	}
	if ((cd.dns = dns_new(timeout * 1000, 256, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", progname, err);
		conf_free(cd.conf);
		return EX_UNAVAILABLE;
	}
	rc = run(&cd);
	if (json)
		print_json(&cd, rc);
	else
		print_text(&cd);
	for (i = 0; i < cd.n; i++) {
		free(cd.v[i].text);
		free(cd.v[i].publish);
	}
	free(cd.v);
	dns_free(cd.dns);
	conf_free(cd.conf);
	return rc;
}
