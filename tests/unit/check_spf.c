/*
 * check_spf - SPF evaluation (spf/spf.c over libspf2's zone DNS layer: no
 * network), the result mapping, our lookup limits, the header text
 * (golden files tests/data/spf/NAME.received-spf and NAME.auth-results)
 * and the outbound preflight decision and cache (spf/header.c,
 * spf/preflight.c): temperror kept a minute at most, and single flight
 * per domain with real threads (wait, share, abandon, deadline, storm).
 *
 * SPF_GOLDEN_WRITE=1 rewrites the golden files (review the diff).
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spf/spf.h"
#include "util/clock.h"
#include "util/log.h"

#define DATADIR TOP_SRCDIR "/tests/data/spf"

/* libspf2's SPF_RESULT_* values (spf_response.h), without its headers */
enum {
	SPF2_INVALID, SPF2_NEUTRAL, SPF2_PASS, SPF2_FAIL, SPF2_SOFTFAIL,
	SPF2_NONE, SPF2_TEMPERROR, SPF2_PERMERROR,
};

/* The test zone: name, type, data (NULL: see timeout), timeout. */
static const struct zrec {
	const char *name, *type, *data;
	int timeout;
} zone[] = {
	{ "pass.example", "TXT", "v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 -all", 0 },
	{ "pass.example", "TXT", "some other text", 0 },
	{ "soft.example", "TXT", "v=spf1 ip4:192.0.2.1 ~all", 0 },
	{ "neutral.example", "TXT", "v=spf1 ?all", 0 },
	{ "norecord.example", "A", "192.0.2.50", 0 },
	{ "othertxt.example", "TXT", "google-site-verification=x", 0 },
	{ "broken.example", "TXT", "v=spf1 ip4:192.0.2.1 frobnicate:x -all", 0 },
	{ "two.example", "TXT", "v=spf1 -all", 0 },
	{ "two.example", "TXT", "v=spf1 +all", 0 },
	{ "slow.example", "TXT", NULL, 1 },
	{ "incslow.example", "TXT", "v=spf1 include:slow.example -all", 0 },
	{ "incnone.example", "TXT", "v=spf1 include:norecord.example -all", 0 },
	{ "helo.example", "TXT", "v=spf1 a -all", 0 },
	{ "helo.example", "A", "192.0.2.7", 0 },
	{ "deny.example", "TXT", "v=spf1 -all", 0 },
	/* lookups: ten a: terms that do not match, then the address */
	{ "ten.example", "TXT", "v=spf1 a:h1.example a:h2.example "
	    "a:h3.example a:h4.example a:h5.example a:h6.example a:h7.example "
	    "a:h8.example a:h9.example a:h10.example ip4:192.0.2.1 -all", 0 },
	{ "eleven.example", "TXT", "v=spf1 a:h1.example a:h2.example "
	    "a:h3.example a:h4.example a:h5.example a:h6.example a:h7.example "
	    "a:h8.example a:h9.example a:h10.example a:h11.example "
	    "ip4:192.0.2.1 -all", 0 },
	/* across includes: 1 + 5 + 1 + 4 = 11 (libspf2 counts per record) */
	{ "incmany.example", "TXT", "v=spf1 include:five.example "
	    "include:four.example ip4:192.0.2.1 -all", 0 },
	{ "five.example", "TXT", "v=spf1 a:h1.example a:h2.example "
	    "a:h3.example a:h4.example a:h5.example", 0 },
	{ "four.example", "TXT", "v=spf1 a:h6.example a:h7.example "
	    "a:h8.example a:h9.example", 0 },
	{ "loop.example", "TXT", "v=spf1 include:loop2.example -all", 0 },
	{ "loop2.example", "TXT", "v=spf1 include:loop.example -all", 0 },
	/* mx: its host lookups are part of the one term */
	{ "mx.example", "TXT", "v=spf1 mx -all", 0 },
	{ "mx.example", "MX", "10 m1.mx.example", 0 },
	{ "mx.example", "MX", "20 m2.mx.example", 0 },
	{ "m1.mx.example", "A", "192.0.2.31", 0 },
	{ "m2.mx.example", "A", "192.0.2.32", 0 },
	/* void lookups: two are allowed, the third is permerror */
	{ "void2.example", "TXT", "v=spf1 a:nx1.example a:nx2.example "
	    "ip4:192.0.2.1 -all", 0 },
	{ "void3.example", "TXT", "v=spf1 a:nx1.example a:nx2.example "
	    "a:norecord.example.sub ip4:192.0.2.1 -all", 0 },
	{ "voidnodata.example", "TXT", "v=spf1 a:othertxt.example "
	    "a:neutral.example a:deny.example ip4:192.0.2.1 -all", 0 },
	/* records libspf2 alone gets wrong (our record check) */
	{ "oddmod.example", "TXT", "v=spf1 moo.cow-far_out=man:dog/cat "
	    "ip4:192.0.2.1 -all", 0 },
	{ "redirall.example", "TXT", "v=spf1 redirect=redirall.example ~all",
	    0 },
	{ "redirlast.example", "TXT", "v=spf1 redirect=pass.example "
	    "ip4:192.0.2.77", 0 },
	{ "cidr0.example", "TXT", "v=spf1 ip4:198.51.100.1/0 -all", 0 },
	{ "a0.example", "TXT", "v=spf1 a/0 -all", 0 },
	{ "a0.example", "A", "198.51.100.200", 0 },
	{ "a60.example", "TXT", "v=spf1 a//0 -all", 0 },
	{ "a60.example", "AAAA", "2001:db8::99", 0 },
	{ "a60none.example", "TXT", "v=spf1 a//0 -all", 0 },
	{ "a60none.example", "A", "192.0.2.99", 0 },
	{ "mx0.example", "TXT", "v=spf1 mx/0 mx//0 -all", 0 },
	{ "mx0.example", "MX", "10 m1.mx.example", 0 },
	{ "guess.example", "TXT", "v=spf1 exists:x0123456789abcdef-a6."
	    "a60.example -all", 0 },
	{ "exptwice.example", "TXT", "v=spf1 exp=a.example -all "
	    "exp=b.example", 0 },
	{ "toplabel.example", "TXT", "v=spf1 a:museum -all", 0 },
	{ "badmacro.example", "TXT", "v=spf1 exists:%(ir).x.example -all", 0 },
	{ "ctrl.example", "TXT", "v=spf1 a:ctrl.example\rptr -all", 0 },
	{ "cidr032.example", "TXT", "v=spf1 ip4:192.0.2.1/032 -all", 0 },
	/* twelve PTR names: the first ten are looked at, no permerror */
	{ "ptr.example", "TXT", "v=spf1 ptr ?all", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p1.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p2.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p3.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p4.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p5.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p6.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p7.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p8.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p9.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "p10.example", 0 },
	{ "1.2.0.192.in-addr.arpa", "PTR", "mail.ptr.example", 0 },
	{ "mail.ptr.example", "A", "192.0.2.1", 0 },
	{ "h1.example", "A", "198.51.100.1", 0 },
	{ "h2.example", "A", "198.51.100.2", 0 },
	{ "h3.example", "A", "198.51.100.3", 0 },
	{ "h4.example", "A", "198.51.100.4", 0 },
	{ "h5.example", "A", "198.51.100.5", 0 },
	{ "h6.example", "A", "198.51.100.6", 0 },
	{ "h7.example", "A", "198.51.100.7", 0 },
	{ "h8.example", "A", "198.51.100.8", 0 },
	{ "h9.example", "A", "198.51.100.9", 0 },
	{ "h10.example", "A", "198.51.100.10", 0 },
	{ "h11.example", "A", "198.51.100.11", 0 },
};

/* checker - a zone checker with the test zone and the given limits */
static struct spf_checker *
checker(unsigned int max_lookups, unsigned int max_void, int loopback)
{
	struct spf_options opt;
	struct spf_checker *c;
	char err[256];
	size_t i;

	memset(&opt, 0, sizeof(opt));
	opt.max_dns_lookups = max_lookups;
	opt.max_void_lookups = max_void;
	opt.allow_loopback = loopback;
	opt.use_zone = 1;
	c = spf_checker_new(&opt, err, sizeof(err));
	ck_assert_msg(c != NULL, "spf_checker_new: %s", err);
	for (i = 0; i < sizeof(zone) / sizeof(zone[0]); i++)
		ck_assert_msg(spf_checker_zone_add(c, zone[i].name,
		    zone[i].type, zone[i].data, zone[i].timeout, err,
		    sizeof(err)) == 0, "zone_add %s: %s", zone[i].name, err);
	return c;
}

/* One evaluation and what it must give. */
static const struct ecase {
	const char *what, *ip, *helo, *sender;
	int helo_identity;
	enum spf_result want;
	const char *domain;	/* answer->domain, NULL: not checked */
	const char *text;	/* substring of answer->text, or NULL */
} ecases[] = {
	{ "pass", "192.0.2.1", "mta.example", "a@pass.example", 0,
	    SPF_RES_PASS, "pass.example", NULL },
	{ "pass ipv6", "2001:db8::1", "mta.example", "a@pass.example", 0,
	    SPF_RES_PASS, NULL, NULL },
	{ "fail", "192.0.2.9", "mta.example", "a@pass.example", 0,
	    SPF_RES_FAIL, NULL, NULL },
	{ "softfail", "192.0.2.9", "mta.example", "a@soft.example", 0,
	    SPF_RES_SOFTFAIL, NULL, NULL },
	{ "neutral", "192.0.2.9", "mta.example", "a@neutral.example", 0,
	    SPF_RES_NEUTRAL, NULL, NULL },
	{ "none: name without TXT", "192.0.2.9", "mta.example",
	    "a@norecord.example", 0, SPF_RES_NONE, NULL, NULL },
	{ "none: NXDOMAIN", "192.0.2.9", "mta.example", "a@nx.example", 0,
	    SPF_RES_NONE, NULL, NULL },
	{ "none: TXT but no v=spf1", "192.0.2.9", "mta.example",
	    "a@othertxt.example", 0, SPF_RES_NONE, NULL, NULL },
	{ "none: malformed domain", "192.0.2.9", "mta.example",
	    "a@[192.0.2.9]", 0, SPF_RES_NONE, NULL, NULL },
	{ "permerror: unknown mechanism", "192.0.2.1", "mta.example",
	    "a@broken.example", 0, SPF_RES_PERMERROR, NULL, "broken.example" },
	{ "permerror: two records", "192.0.2.1", "mta.example",
	    "a@two.example", 0, SPF_RES_PERMERROR, NULL, "several" },
	{ "temperror: record lookup times out", "192.0.2.1", "mta.example",
	    "a@slow.example", 0, SPF_RES_TEMPERROR, NULL, "slow.example" },
	{ "temperror: include times out", "192.0.2.1", "mta.example",
	    "a@incslow.example", 0, SPF_RES_TEMPERROR, NULL, NULL },
	{ "permerror: include of a domain without SPF", "192.0.2.1",
	    "mta.example", "a@incnone.example", 0, SPF_RES_PERMERROR, NULL,
	    NULL },
	{ "IPv4-mapped IPv6 checked as IPv4", "::ffff:192.0.2.1",
	    "mta.example", "a@pass.example", 0, SPF_RES_PASS, NULL, NULL },
	{ "IPv4-mapped IPv6 fail", "::ffff:192.0.2.9", "mta.example",
	    "a@pass.example", 0, SPF_RES_FAIL, NULL, NULL },
	{ "null sender: postmaster@HELO", "192.0.2.7", "helo.example", "",
	    0, SPF_RES_PASS, "helo.example", NULL },
	{ "null sender fails for HELO's domain", "192.0.2.8",
	    "helo.example", "", 0, SPF_RES_FAIL, "helo.example", NULL },
	{ "no local part: postmaster", "192.0.2.1", "mta.example",
	    "@pass.example", 0, SPF_RES_PASS, "pass.example", NULL },
	{ "HELO identity", "192.0.2.7", "helo.example", "a@deny.example",
	    1, SPF_RES_PASS, "helo.example", NULL },
	{ "HELO not a FQDN: none", "192.0.2.7", "localhost", "", 0,
	    SPF_RES_NONE, NULL, NULL },
	{ "loopback is checked (no free pass)", "127.0.0.1", "mta.example",
	    "a@deny.example", 0, SPF_RES_FAIL, NULL, NULL },
	{ "loopback ::1 is checked", "::1", "mta.example", "a@deny.example",
	    0, SPF_RES_FAIL, NULL, NULL },
	{ "ten lookups: pass", "192.0.2.1", "mta.example", "a@ten.example",
	    0, SPF_RES_PASS, NULL, NULL },
	{ "eleven lookups: permerror", "192.0.2.1", "mta.example",
	    "a@eleven.example", 0, SPF_RES_PERMERROR, NULL,
	    "more than 10 DNS lookups" },
	{ "eleven lookups across includes: permerror", "192.0.2.1",
	    "mta.example", "a@incmany.example", 0, SPF_RES_PERMERROR, NULL,
	    "more than 10 DNS lookups" },
	{ "include loop: permerror", "192.0.2.1", "mta.example",
	    "a@loop.example", 0, SPF_RES_PERMERROR, NULL, NULL },
	{ "mx hosts are one term", "192.0.2.32", "mta.example",
	    "a@mx.example", 0, SPF_RES_PASS, NULL, NULL },
	{ "two void lookups: allowed", "192.0.2.1", "mta.example",
	    "a@void2.example", 0, SPF_RES_PASS, NULL, NULL },
	{ "three void lookups: permerror", "192.0.2.1", "mta.example",
	    "a@void3.example", 0, SPF_RES_PERMERROR, NULL,
	    "more than 2 void" },
	{ "NODATA answers are void too", "192.0.2.1", "mta.example",
	    "a@voidnodata.example", 0, SPF_RES_PERMERROR, NULL, "void" },
	{ "unknown modifier with an odd name is ignored", "192.0.2.1",
	    "mta.example", "a@oddmod.example", 0, SPF_RES_PASS, NULL, NULL },
	{ "redirect= is ignored when there is an all", "192.0.2.1",
	    "mta.example", "a@redirall.example", 0, SPF_RES_SOFTFAIL, NULL,
	    NULL },
	{ "redirect= runs after the mechanisms", "192.0.2.77",
	    "mta.example", "a@redirlast.example", 0, SPF_RES_PASS, NULL,
	    NULL },
	{ "redirect= result when nothing matched", "192.0.2.9",
	    "mta.example", "a@redirlast.example", 0, SPF_RES_FAIL, NULL,
	    NULL },
	{ "ip4:/0 matches every IPv4 address", "203.0.113.5", "mta.example",
	    "a@cidr0.example", 0, SPF_RES_PASS, NULL, NULL },
	{ "a/0 for IPv4: any A record", "203.0.113.5", "mta.example",
	    "a@a0.example", 0, SPF_RES_PASS, NULL, NULL },
	{ "a//0 for IPv6: any AAAA record", "2001:db8::5", "mta.example",
	    "a@a60.example", 0, SPF_RES_PASS, NULL, NULL },
	{ "a//0 for IPv6: no AAAA record", "2001:db8::5", "mta.example",
	    "a@a60none.example", 0, SPF_RES_FAIL, NULL, NULL },
	{ "a//0 does not apply to IPv4", "192.0.2.5", "mta.example",
	    "a@a60none.example", 0, SPF_RES_FAIL, NULL, NULL },
	{ "mx/0 for IPv4: an MX host with an A record", "203.0.113.9",
	    "mta.example", "a@mx0.example", 0, SPF_RES_PASS, NULL, NULL },
	{ "mx//0 for IPv6: no MX host with AAAA", "2001:db8::5",
	    "mta.example", "a@mx0.example", 0, SPF_RES_FAIL, NULL, NULL },
	{ "a record cannot name our synthetic lookups", "2001:db8::5",
	    "mta.example", "a@guess.example", 0, SPF_RES_FAIL, NULL, NULL },
	{ "exp= twice: permerror", "192.0.2.1", "mta.example",
	    "a@exptwice.example", 0, SPF_RES_PERMERROR, NULL, "exp= twice" },
	{ "domain without a dot: permerror", "192.0.2.1", "mta.example",
	    "a@toplabel.example", 0, SPF_RES_PERMERROR, NULL, "bad domain" },
	{ "bad macro: permerror", "192.0.2.1", "mta.example",
	    "a@badmacro.example", 0, SPF_RES_PERMERROR, NULL, NULL },
	{ "control character in record: permerror", "192.0.2.1",
	    "mta.example", "a@ctrl.example", 0, SPF_RES_PERMERROR, NULL,
	    "control" },
	{ "CIDR length with a leading zero: permerror", "192.0.2.1",
	    "mta.example", "a@cidr032.example", 0, SPF_RES_PERMERROR, NULL,
	    "CIDR" },
	{ "more than ten PTR names: the first ten count", "192.0.2.1",
	    "mta.example", "a@ptr.example", 0, SPF_RES_NEUTRAL, NULL, NULL },
};

START_TEST(evaluation_gives_expected_result)
{
	const struct ecase *t = &ecases[_i];
	struct spf_checker *c = checker(10, 2, 0);
	struct spf_query q = { t->ip, t->helo, t->sender };
	struct spf_answer a;

	if (t->helo_identity)
		(void)spf_check_helo(c, &q, &a);
	else
		(void)spf_check(c, &q, &a);
	ck_assert_msg(a.result == t->want, "%s: got %s (%s), want %s",
	    t->what, spf_result_name(a.result), a.text,
	    spf_result_name(t->want));
	ck_assert_msg(a.identity == (t->helo_identity ? SPF_ID_HELO :
	    SPF_ID_MAILFROM), "%s: identity", t->what);
	if (t->domain != NULL)
		ck_assert_msg(strcmp(a.domain, t->domain) == 0,
		    "%s: domain got %s, want %s", t->what, a.domain, t->domain);
	if (t->text != NULL)
		ck_assert_msg(strstr(a.text, t->text) != NULL,
		    "%s: text got \"%s\", want \"%s\" in it", t->what, a.text,
		    t->text);
	spf_checker_free(c);
}
END_TEST

START_TEST(checker_is_reusable_across_checks)
{
	struct spf_checker *c = checker(10, 2, 0);
	struct spf_query fail = { "192.0.2.1", "mta.example",
	    "a@eleven.example" };
	struct spf_query pass = { "192.0.2.1", "mta.example",
	    "a@ten.example" };
	struct spf_answer a;
	int i;

	/* The counts start again with each check. */
	for (i = 0; i < 3; i++) {
		(void)spf_check(c, &fail, &a);
		ck_assert_int_eq(a.result, SPF_RES_PERMERROR);
		(void)spf_check(c, &pass, &a);
		ck_assert_msg(a.result == SPF_RES_PASS, "round %d: got %s", i,
		    spf_result_name(a.result));
	}
	spf_checker_free(c);
}
END_TEST

START_TEST(loopback_passes_only_when_allowed)
{
	struct spf_checker *c = checker(10, 2, 1);
	struct spf_query q = { "127.0.0.1", "mta.example", "a@deny.example" };
	struct spf_query q6 = { "::1", "mta.example", "a@deny.example" };
	struct spf_query other = { "192.0.2.9", "mta.example",
	    "a@deny.example" };
	struct spf_answer a;

	(void)spf_check(c, &q, &a);
	ck_assert_msg(a.result == SPF_RES_PASS, "127.0.0.1: got %s",
	    spf_result_name(a.result));
	(void)spf_check(c, &q6, &a);
	ck_assert_msg(a.result == SPF_RES_PASS, "::1: got %s",
	    spf_result_name(a.result));
	(void)spf_check(c, &other, &a);
	ck_assert_msg(a.result == SPF_RES_FAIL, "192.0.2.9: got %s",
	    spf_result_name(a.result));
	spf_checker_free(c);
}
END_TEST

START_TEST(configured_limits_apply)
{
	struct spf_checker *c = checker(9, 1, 0);
	struct spf_query ten = { "192.0.2.1", "mta.example", "a@ten.example" };
	struct spf_query void2 = { "192.0.2.1", "mta.example",
	    "a@void2.example" };
	struct spf_answer a;

	(void)spf_check(c, &ten, &a);
	ck_assert_msg(a.result == SPF_RES_PERMERROR, "ten under 9: got %s",
	    spf_result_name(a.result));
	(void)spf_check(c, &void2, &a);
	ck_assert_msg(a.result == SPF_RES_PERMERROR, "two voids under 1: "
	    "got %s", spf_result_name(a.result));
	spf_checker_free(c);
}
END_TEST

START_TEST(unusable_query_is_refused)
{
	struct spf_checker *c = checker(10, 2, 0);
	struct spf_query q = { "not-an-ip", "mta.example", "a@pass.example" };
	struct spf_answer a;

	char longsender[400];
	struct spf_query ql = { "192.0.2.1", "mta.example", longsender };

	ck_assert_int_eq(spf_check(c, &q, &a), -1);
	ck_assert_int_eq(a.result, SPF_RES_PERMERROR);
	memset(longsender, 'x', sizeof(longsender) - 1);
	longsender[sizeof(longsender) - 1] = '\0';
	longsender[10] = '@';
	ck_assert_int_eq(spf_check(c, &ql, &a), -1);
	ck_assert_int_eq(a.result, SPF_RES_PERMERROR);
	spf_checker_free(c);
}
END_TEST

START_TEST(deadline_stops_the_check_with_temperror)
{
	struct spf_options opt;
	struct spf_checker *c;
	struct spf_query q = { "192.0.2.1", "mta.example",
	    "a@deadline.example" };
	struct spf_answer a;
	char err[256];
	unsigned int timeout;

	/* slowa.example answers after 60 ms: with a 20 ms deadline the
	 * next lookup is never made; without one the check passes. */
	for (timeout = 0; timeout <= 20; timeout += 20) {
		memset(&opt, 0, sizeof(opt));
		opt.max_dns_lookups = 10;
		opt.max_void_lookups = 2;
		opt.use_zone = 1;
		opt.timeout_ms = timeout;
		c = spf_checker_new(&opt, err, sizeof(err));
		ck_assert_msg(c != NULL, "spf_checker_new: %s", err);
		ck_assert_int_eq(spf_checker_zone_add(c, "deadline.example",
		    "TXT", "v=spf1 a:slowa.example a:h1.example ip4:192.0.2.1 "
		    "-all", 0, err, sizeof(err)), 0);
		ck_assert_int_eq(spf_checker_zone_add(c, "slowa.example", "A",
		    "198.51.100.99", 0, err, sizeof(err)), 0);
		ck_assert_int_eq(spf_checker_zone_add(c, "h1.example", "A",
		    "198.51.100.1", 0, err, sizeof(err)), 0);
		ck_assert_int_eq(spf_checker_zone_add(c, "slowa.example",
		    "DELAY", "60", 0, err, sizeof(err)), 0);
		(void)spf_check(c, &q, &a);
		if (timeout == 0)
			ck_assert_msg(a.result == SPF_RES_PASS, "no deadline: "
			    "got %s (%s)", spf_result_name(a.result), a.text);
		else {
			ck_assert_msg(a.result == SPF_RES_TEMPERROR, "20 ms: "
			    "got %s (%s)", spf_result_name(a.result), a.text);
			ck_assert_ptr_nonnull(strstr(a.text, "deadline"));
		}
		spf_checker_free(c);
	}
}
END_TEST

START_TEST(resolver_checker_is_made_and_freed)
{
	struct spf_options opt;
	struct spf_checker *c;
	char err[256];

	/* The system resolver layer (no lookup made here). */
	memset(&opt, 0, sizeof(opt));
	opt.max_dns_lookups = 10;
	opt.max_void_lookups = 2;
	opt.timeout_ms = 1000;
	c = spf_checker_new(&opt, err, sizeof(err));
	ck_assert_msg(c != NULL, "spf_checker_new: %s", err);
	ck_assert_int_eq(spf_checker_zone_add(c, "x.example", "A",
	    "192.0.2.1", 0, err, sizeof(err)), -1);
	ck_assert_ptr_null(spf_checker_free(c));
}
END_TEST

START_TEST(zone_add_rejects_bad_input)
{
	struct spf_checker *c = checker(10, 2, 0);
	char err[256];

	ck_assert_int_eq(spf_checker_zone_add(c, "x.example", "WKS", "1",
	    0, err, sizeof(err)), -1);
	ck_assert_int_eq(spf_checker_zone_add(c, "x.example", "A",
	    "not-an-address", 0, err, sizeof(err)), -1);
	spf_checker_free(c);
}
END_TEST

/* The mapping from libspf2: one to one, "(invalid)" both ways. */
static const struct mcase {
	int spf2, dns_failed;
	enum spf_result want;
} mcases[] = {
	{ SPF2_NEUTRAL, 0, SPF_RES_NEUTRAL },
	{ SPF2_PASS, 0, SPF_RES_PASS },
	{ SPF2_FAIL, 0, SPF_RES_FAIL },
	{ SPF2_SOFTFAIL, 0, SPF_RES_SOFTFAIL },
	{ SPF2_NONE, 0, SPF_RES_NONE },
	{ SPF2_TEMPERROR, 0, SPF_RES_TEMPERROR },
	{ SPF2_PERMERROR, 0, SPF_RES_PERMERROR },
	{ SPF2_PASS, 1, SPF_RES_PASS },
	{ SPF2_INVALID, 1, SPF_RES_TEMPERROR },
	{ SPF2_INVALID, 0, SPF_RES_PERMERROR },
	{ 99, 0, SPF_RES_PERMERROR },
};

START_TEST(libspf2_result_maps_one_to_one)
{
	const struct mcase *t = &mcases[_i];
	enum spf_result got = spf_map_result(t->spf2, t->dns_failed);

	ck_assert_msg(got == t->want, "libspf2 %d (dns_failed %d): got %s, "
	    "want %s", t->spf2, t->dns_failed, spf_result_name(got),
	    spf_result_name(t->want));
}
END_TEST

START_TEST(result_names_are_rfc7208)
{
	ck_assert_str_eq(spf_result_name(SPF_RES_NONE), "none");
	ck_assert_str_eq(spf_result_name(SPF_RES_NEUTRAL), "neutral");
	ck_assert_str_eq(spf_result_name(SPF_RES_PASS), "pass");
	ck_assert_str_eq(spf_result_name(SPF_RES_FAIL), "fail");
	ck_assert_str_eq(spf_result_name(SPF_RES_SOFTFAIL), "softfail");
	ck_assert_str_eq(spf_result_name(SPF_RES_TEMPERROR), "temperror");
	ck_assert_str_eq(spf_result_name(SPF_RES_PERMERROR), "permerror");
}
END_TEST

/* Header golden files: one answer each, fixed (no DNS involved). */
static const struct hcase {
	const char *name;
	struct spf_query q;
	struct spf_answer a;
	const char *receiver;
} hcases[] = {
	{ "pass", { "192.0.2.1", "mta.example.net", "alice@example.com" },
	    { SPF_RES_PASS, SPF_ID_MAILFROM, "example.com",
	    "sender authorized" }, "mx.example.org" },
	{ "fail", { "192.0.2.9", "mta.example.net", "alice@example.com" },
	    { SPF_RES_FAIL, SPF_ID_MAILFROM, "example.com",
	    "sender not authorized" }, "mx.example.org" },
	{ "softfail", { "2001:db8::9", "mta.example.net",
	    "bob@example.com" }, { SPF_RES_SOFTFAIL, SPF_ID_MAILFROM,
	    "example.com", "sender probably not authorized" },
	    "mx.example.org" },
	{ "neutral", { "192.0.2.9", "mta.example.net", "bob@example.com" },
	    { SPF_RES_NEUTRAL, SPF_ID_MAILFROM, "example.com", "" },
	    "mx.example.org" },
	{ "none", { "192.0.2.9", "mta.example.net", "bob@example.com" },
	    { SPF_RES_NONE, SPF_ID_MAILFROM, "example.com",
	    "no SPF record" }, "mx.example.org" },
	{ "temperror", { "192.0.2.9", "mta.example.net", "bob@example.com" },
	    { SPF_RES_TEMPERROR, SPF_ID_MAILFROM, "example.com",
	    "DNS lookup of example.com failed" }, "mx.example.org" },
	{ "permerror", { "192.0.2.9", "mta.example.net", "bob@example.com" },
	    { SPF_RES_PERMERROR, SPF_ID_MAILFROM, "example.com",
	    "more than 10 DNS lookups, at h11.example.com" },
	    "mx.example.org" },
	{ "null-sender", { "192.0.2.7", "mta.example.net", "" },
	    { SPF_RES_PASS, SPF_ID_MAILFROM, "mta.example.net",
	    "sender authorized" }, "mx.example.org" },
	{ "helo", { "192.0.2.7", "mta.example.net", "carol@example.com" },
	    { SPF_RES_FAIL, SPF_ID_HELO, "mta.example.net",
	    "sender not authorized" }, "mx.example.org" },
	{ "hostile", { "192.0.2.9", "evil) (x\"y\\z\001",
	    "\"quoted (local)\"@bad\tdomain.example" },
	    { SPF_RES_FAIL, SPF_ID_MAILFROM, "bad\tdomain.example",
	    "sender not authorized" }, "mx.example.org" },
	{ "long", { "2001:db8:1234:5678:9abc:def0:1234:5678",
	    "a-very-long-helo-name.with.many.labels.mail-servers.example.net",
	    "a.very.long.local.part.for.folding@a-long-sender-domain."
	    "subdomain.example.com" },
	    { SPF_RES_SOFTFAIL, SPF_ID_MAILFROM,
	    "a-long-sender-domain.subdomain.example.com", "" },
	    "a-receiving-host.example.org" },
};

/* slurp - a whole small file, or NULL */
static char *
slurp(const char *path)
{
	FILE *fp;
	char *buf;
	size_t n;

	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	buf = calloc(1, 8192);
	ck_assert_ptr_nonnull(buf);
	n = fread(buf, 1, 8191, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* golden - compare text with DATADIR/name.ext (or write it) */
static void
golden(const char *name, const char *ext, const char *field,
    const char *value)
{
	char path[512], want_text[8192];
	char *have;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s.%s", DATADIR, name, ext);
	snprintf(want_text, sizeof(want_text), "%s: %s\n", field, value);
	if (getenv("SPF_GOLDEN_WRITE") != NULL) {
		fp = fopen(path, "wb");
		ck_assert_msg(fp != NULL, "cannot write %s", path);
		fputs(want_text, fp);
		fclose(fp);
		return;
	}
	have = slurp(path);
	ck_assert_msg(have != NULL, "missing golden file %s", path);
	ck_assert_msg(strcmp(have, want_text) == 0,
	    "%s: got\n%s\nwant\n%s", path, want_text, have);
	free(have);
}

/* check_folding - every line of v (after "Field: ") within 78 columns
 * unless it is one token; folds are "\n\t"; printable ASCII only */
static void
check_folding(const char *name, const char *field, const char *v)
{
	size_t col = strlen(field) + 2;
	const char *p, *line = v;

	for (p = v; ; p++) {
		if (*p == '\n' || *p == '\0') {
			if (col > 78)
				ck_assert_msg(memchr(line, ' ', (size_t)(p -
				    line)) == NULL, "%s: %s line over 78 "
				    "columns", name, field);
			if (*p == '\0')
				break;
			ck_assert_msg(p[1] == '\t', "%s: fold without tab",
			    name);
			line = p + 2;
			col = 0;
			continue;
		}
		col += *p == '\t' ? 8 : 1;
		ck_assert_msg((unsigned char)*p >= 0x20 || *p == '\t',
		    "%s: control byte in %s", name, field);
		ck_assert_msg((unsigned char)*p < 0x7f, "%s: non-ASCII in %s",
		    name, field);
	}
}

START_TEST(headers_match_golden_files)
{
	const struct hcase *t = &hcases[_i];
	char rs[1024], ar[1024];

	ck_assert_int_eq(spf_received_spf(&t->q, &t->a, t->receiver, rs,
	    sizeof(rs)), 0);
	ck_assert_int_eq(spf_auth_results(&t->q, &t->a, t->receiver, ar,
	    sizeof(ar)), 0);
	check_folding(t->name, "Received-SPF", rs);
	check_folding(t->name, "Authentication-Results", ar);
	golden(t->name, "received-spf", "Received-SPF", rs);
	golden(t->name, "auth-results", "Authentication-Results", ar);
}
END_TEST

START_TEST(headers_refuse_small_buffers)
{
	const struct hcase *t = &hcases[0];
	char small[40];

	ck_assert_int_eq(spf_received_spf(&t->q, &t->a, t->receiver, small,
	    sizeof(small)), -1);
	ck_assert_int_eq(spf_auth_results(&t->q, &t->a, t->receiver, small,
	    sizeof(small)), -1);
}
END_TEST

START_TEST(received_spf_names_identity_and_receiver)
{
	const struct hcase *t = &hcases[8];	/* helo */
	char rs[1024];

	ck_assert_int_eq(spf_received_spf(&t->q, &t->a, t->receiver, rs,
	    sizeof(rs)), 0);
	ck_assert_ptr_nonnull(strstr(rs, "identity=helo;"));
	ck_assert_ptr_nonnull(strstr(rs, "receiver=mx.example.org;"));
	ck_assert_ptr_nonnull(strstr(rs, "client-ip=192.0.2.7;"));
	ck_assert_ptr_nonnull(strstr(rs, "helo=mta.example.net;"));
}
END_TEST

/* answer - an answer with result r */
static struct spf_answer
answer(enum spf_result r, const char *text)
{
	struct spf_answer a;

	memset(&a, 0, sizeof(a));
	a.result = r;
	a.identity = SPF_ID_MAILFROM;
	snprintf(a.domain, sizeof(a.domain), "customer.example");
	snprintf(a.text, sizeof(a.text), "%s", text);
	return a;
}

START_TEST(preflight_authorized_when_every_address_passes)
{
	const char *addrs[] = { "192.0.2.1", "2001:db8::1" };
	struct spf_answer a[2];
	struct spf_preflight p;

	a[0] = answer(SPF_RES_PASS, "");
	a[1] = answer(SPF_RES_PASS, "");
	spf_preflight_decide("customer.example", addrs, a, 2,
	    "include:spf.example.net", &p);
	ck_assert_int_eq(p.authorized, 1);
	ck_assert_int_eq(p.worst, SPF_RES_PASS);
	ck_assert_str_eq(p.header, "pass domain=customer.example; "
	    "192.0.2.1=pass 2001:db8::1=pass");
	ck_assert_str_eq(p.reply, "");
}
END_TEST

START_TEST(preflight_fail_names_domain_and_publish)
{
	const char *addrs[] = { "192.0.2.1", "2001:db8::1" };
	struct spf_answer a[2];
	struct spf_preflight p;

	a[0] = answer(SPF_RES_PASS, "");
	a[1] = answer(SPF_RES_FAIL, "sender not authorized");
	spf_preflight_decide("customer.example", addrs, a, 2,
	    "include:spf.example.net", &p);
	ck_assert_int_eq(p.authorized, 0);
	ck_assert_int_eq(p.worst, SPF_RES_FAIL);
	ck_assert_str_eq(p.header, "fail domain=customer.example; "
	    "192.0.2.1=pass 2001:db8::1=fail");
	ck_assert_str_eq(p.reply, "SPF record of domain customer.example "
	    "does not authorize this server (fail for 2001:db8::1: sender "
	    "not authorized); add include:spf.example.net to it");
}
END_TEST

START_TEST(preflight_without_publish_names_our_addresses)
{
	const char *addrs[] = { "192.0.2.1", "2001:db8::1" };
	struct spf_answer a[2];
	struct spf_preflight p;

	a[0] = answer(SPF_RES_NONE, "no SPF record");
	a[1] = answer(SPF_RES_NONE, "no SPF record");
	spf_preflight_decide("customer.example", addrs, a, 2, NULL, &p);
	ck_assert_int_eq(p.authorized, 0);
	ck_assert_int_eq(p.worst, SPF_RES_NONE);
	ck_assert_str_eq(p.reply, "Domain customer.example publishes no SPF "
	    "record; publish \"v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 ~all\" "
	    "in its DNS");
}
END_TEST

/* Which result decides: the worst one. */
static const struct wcase {
	enum spf_result a, b, want;
	int authorized;
} wcases[] = {
	{ SPF_RES_PASS, SPF_RES_SOFTFAIL, SPF_RES_SOFTFAIL, 0 },
	{ SPF_RES_NEUTRAL, SPF_RES_PASS, SPF_RES_NEUTRAL, 0 },
	{ SPF_RES_FAIL, SPF_RES_SOFTFAIL, SPF_RES_FAIL, 0 },
	{ SPF_RES_PERMERROR, SPF_RES_FAIL, SPF_RES_PERMERROR, 0 },
	{ SPF_RES_TEMPERROR, SPF_RES_PERMERROR, SPF_RES_TEMPERROR, 0 },
	{ SPF_RES_PASS, SPF_RES_PASS, SPF_RES_PASS, 1 },
};

START_TEST(preflight_worst_result_decides)
{
	const struct wcase *t = &wcases[_i];
	const char *addrs[] = { "192.0.2.1", "192.0.2.2" };
	struct spf_answer a[2];
	struct spf_preflight p;

	a[0] = answer(t->a, "");
	a[1] = answer(t->b, "");
	spf_preflight_decide("customer.example", addrs, a, 2,
	    "include:spf.example.net", &p);
	ck_assert_msg(p.worst == t->want, "got %s, want %s",
	    spf_result_name(p.worst), spf_result_name(t->want));
	ck_assert_int_eq(p.authorized, t->authorized);
	if (!t->authorized)
		ck_assert_ptr_nonnull(strstr(p.reply, "customer.example"));
}
END_TEST

START_TEST(preflight_with_no_answers_is_not_authorized)
{
	struct spf_preflight p;

	spf_preflight_decide("customer.example", NULL, NULL, 0, NULL, &p);
	ck_assert_int_eq(p.authorized, 0);
}
END_TEST

START_TEST(cache_keeps_result_until_ttl)
{
	struct spf_cache *c = spf_cache_new(8);
	struct spf_preflight p, got;

	memset(&p, 0, sizeof(p));
	p.worst = SPF_RES_FAIL;
	snprintf(p.reply, sizeof(p.reply), "cached reply");
	ck_assert_int_eq(spf_cache_get(c, "customer.example", 1000, &got), 0);
	spf_cache_put(c, "customer.example", 1000, 600, &p);
	ck_assert_int_eq(spf_cache_get(c, "customer.example", 1000, &got), 1);
	ck_assert_str_eq(got.reply, "cached reply");
	ck_assert_int_eq(spf_cache_get(c, "CUSTOMER.example", 1599, &got), 1);
	ck_assert_int_eq(spf_cache_get(c, "customer.example", 1600, &got), 0);
	ck_assert_int_eq(spf_cache_get(c, "other.example", 1001, &got), 0);
	/* a fresh put replaces the entry */
	p.worst = SPF_RES_PASS;
	spf_cache_put(c, "customer.example", 2000, 10, &p);
	ck_assert_int_eq(spf_cache_get(c, "customer.example", 2005, &got), 1);
	ck_assert_int_eq(got.worst, SPF_RES_PASS);
	ck_assert_int_eq(spf_cache_get(c, "customer.example", 2010, &got), 0);
	spf_cache_free(c);
}
END_TEST

/* The ttl a put is kept for: temperror at most SPF_CACHE_TEMPERROR_TTL. */
static const struct {
	enum spf_result worst;
	unsigned int ttl;
	int64_t kept;			/* seconds after the put */
} tcases[] = {
	{ SPF_RES_TEMPERROR, 600, 60 },
	{ SPF_RES_TEMPERROR, 30, 30 },
	{ SPF_RES_TEMPERROR, 60, 60 },
	{ SPF_RES_TEMPERROR, 0, 0 },
	{ SPF_RES_FAIL, 600, 600 },
	{ SPF_RES_PASS, 600, 600 },
	{ SPF_RES_NONE, 90, 90 },
	{ SPF_RES_PERMERROR, 0, 0 },
};

START_TEST(cache_keeps_temperror_a_minute_at_most)
{
	struct spf_cache *c = spf_cache_new(8);
	struct spf_preflight p, got;
	int64_t t = 1000;

	memset(&p, 0, sizeof(p));
	p.worst = tcases[_i].worst;
	spf_cache_put(c, "customer.example", t, tcases[_i].ttl, &p);
	if (tcases[_i].kept > 0) {
		ck_assert_msg(spf_cache_get(c, "customer.example",
		    t + tcases[_i].kept - 1, &got) == 1,
		    "%s ttl %u: gone at +%lld s, want kept",
		    spf_result_name(p.worst), tcases[_i].ttl,
		    (long long)tcases[_i].kept - 1);
		ck_assert_int_eq(got.worst, p.worst);
	}
	ck_assert_msg(spf_cache_get(c, "customer.example",
	    t + tcases[_i].kept, &got) == 0,
	    "%s ttl %u: still kept at +%lld s, want gone",
	    spf_result_name(p.worst), tcases[_i].ttl,
	    (long long)tcases[_i].kept);
	spf_cache_free(c);
}
END_TEST

/* A thread that claims a domain (single flight tests). */
struct claimer {
	pthread_t tid;
	struct spf_cache *cache;
	const char *domain;
	int64_t wait_ms;		/* deadline: start + wait_ms */
	unsigned int work_ms;		/* CLAIMED: "check" this long, */
	int abandon;			/* then abandon instead of put */
	/* out */
	enum spf_claim got;
	struct spf_preflight pf;
	int64_t waited_ms;
	volatile int done;
};

/* sleep_ms - nanosleep ms milliseconds */
static void
sleep_ms(unsigned int ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1)
		;
}

/* claimer_run - claim a domain; when claimed, "check" and put or abandon */
static void *
claimer_run(void *arg)
{
	struct claimer *cl = arg;
	int64_t t0 = clock_mono_ms();
	struct spf_preflight mine;

	cl->got = spf_cache_claim(cl->cache, cl->domain, 1000,
	    t0 + cl->wait_ms, &cl->pf);
	cl->waited_ms = clock_mono_ms() - t0;
	if (cl->got == SPF_CLAIM_CLAIMED) {
		sleep_ms(cl->work_ms);
		if (cl->abandon)
			spf_cache_abandon(cl->cache, cl->domain);
		else {
			memset(&mine, 0, sizeof(mine));
			mine.worst = SPF_RES_FAIL;
			(void)snprintf(mine.header, sizeof(mine.header),
			    "%s", cl->domain);
			(void)snprintf(mine.reply, sizeof(mine.reply),
			    "by a waiter");
			spf_cache_put(cl->cache, cl->domain, 1000, 600, &mine);
		}
	}
	__atomic_store_n(&cl->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* claimer_start - a thread claiming domain with the given wait */
static void
claimer_start(struct claimer *cl, struct spf_cache *c, const char *domain,
    int64_t wait_ms, unsigned int work_ms, int abandon)
{
	memset(cl, 0, sizeof(*cl));
	cl->cache = c;
	cl->domain = domain;
	cl->wait_ms = wait_ms;
	cl->work_ms = work_ms;
	cl->abandon = abandon;
	ck_assert_int_eq(pthread_create(&cl->tid, NULL, claimer_run, cl), 0);
}

START_TEST(claim_then_put_then_hit)
{
	struct spf_cache *c = spf_cache_new(8);
	struct spf_preflight p, got;

	ck_assert_int_eq(spf_cache_claim(c, "d.example", 1000, 0, &got),
	    SPF_CLAIM_CLAIMED);
	ck_assert_uint_eq(spf_cache_inflight(c), 1);
	/* claimed by someone: a deadline already past does not wait */
	ck_assert_int_eq(spf_cache_claim(c, "D.example", 1000, 0, &got),
	    SPF_CLAIM_CLAIMED);
	ck_assert_uint_eq(spf_cache_inflight(c), 1);
	memset(&p, 0, sizeof(p));
	p.worst = SPF_RES_FAIL;
	snprintf(p.reply, sizeof(p.reply), "the result");
	spf_cache_put(c, "d.example", 1000, 600, &p);
	ck_assert_uint_eq(spf_cache_inflight(c), 0);
	ck_assert_int_eq(spf_cache_claim(c, "d.example", 1001, 0, &got),
	    SPF_CLAIM_HIT);
	ck_assert_str_eq(got.reply, "the result");
	/* expired: claimed again; abandon ends the claim */
	ck_assert_int_eq(spf_cache_claim(c, "d.example", 1600, 0, &got),
	    SPF_CLAIM_CLAIMED);
	spf_cache_abandon(c, "d.example");
	ck_assert_uint_eq(spf_cache_inflight(c), 0);
	/* unusable input: claimed, nothing registered */
	ck_assert_int_eq(spf_cache_claim(NULL, "d.example", 1, 0, &got),
	    SPF_CLAIM_CLAIMED);
	ck_assert_int_eq(spf_cache_claim(c, NULL, 1, 0, &got),
	    SPF_CLAIM_CLAIMED);
	ck_assert_uint_eq(spf_cache_inflight(c), 0);
	spf_cache_abandon(NULL, "d.example");
	spf_cache_free(c);
}
END_TEST

START_TEST(waiter_gets_the_claimers_result)
{
	struct spf_cache *c = spf_cache_new(8);
	struct spf_preflight p, got;
	struct claimer w;

	ck_assert_int_eq(spf_cache_claim(c, "slow.example", 1000,
	    clock_mono_ms(), &got), SPF_CLAIM_CLAIMED);
	claimer_start(&w, c, "slow.example", 10000, 0, 0);
	sleep_ms(300);
	ck_assert_msg(!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST),
	    "the waiter returned while the claim was held, want it waiting");
	memset(&p, 0, sizeof(p));
	p.worst = SPF_RES_TEMPERROR;
	snprintf(p.reply, sizeof(p.reply), "from the claimer");
	spf_cache_put(c, "slow.example", 1000, 600, &p);
	ck_assert_int_eq(pthread_join(w.tid, NULL), 0);
	ck_assert_msg(w.got == SPF_CLAIM_SHARED, "got %d, want SHARED (%d)",
	    (int)w.got, (int)SPF_CLAIM_SHARED);
	ck_assert_str_eq(w.pf.reply, "from the claimer");
	ck_assert_int_eq(w.pf.worst, SPF_RES_TEMPERROR);
	ck_assert_msg(w.waited_ms >= 250 && w.waited_ms < 5000,
	    "waited %lld ms, want about 300", (long long)w.waited_ms);
	ck_assert_uint_eq(spf_cache_inflight(c), 0);
	spf_cache_free(c);
}
END_TEST

START_TEST(abandon_makes_one_waiter_the_claimer)
{
	struct spf_cache *c = spf_cache_new(8);
	struct spf_preflight got;
	struct claimer w[4];
	int i, claimed = 0, shared = 0;

	ck_assert_int_eq(spf_cache_claim(c, "gone.example", 1000,
	    clock_mono_ms(), &got), SPF_CLAIM_CLAIMED);
	for (i = 0; i < 4; i++)
		claimer_start(&w[i], c, "gone.example", 10000, 100, 0);
	sleep_ms(200);
	for (i = 0; i < 4; i++)
		ck_assert_msg(!__atomic_load_n(&w[i].done, __ATOMIC_SEQ_CST),
		    "waiter %d returned before the abandon", i);
	spf_cache_abandon(c, "gone.example");
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(pthread_join(w[i].tid, NULL), 0);
		if (w[i].got == SPF_CLAIM_CLAIMED)
			claimed++;
		else if (w[i].got == SPF_CLAIM_SHARED) {
			shared++;
			ck_assert_str_eq(w[i].pf.reply, "by a waiter");
		}
	}
	ck_assert_msg(claimed == 1 && shared == 3,
	    "got %d claimed, %d shared, want 1 and 3", claimed, shared);
	ck_assert_uint_eq(spf_cache_inflight(c), 0);
	spf_cache_free(c);
}
END_TEST

START_TEST(waiter_wait_is_bounded_by_its_deadline)
{
	struct spf_cache *c = spf_cache_new(8);
	struct spf_preflight p, got;
	struct claimer w;

	ck_assert_int_eq(spf_cache_claim(c, "hang.example", 1000,
	    clock_mono_ms(), &got), SPF_CLAIM_CLAIMED);
	claimer_start(&w, c, "hang.example", 300, 0, 1);
	ck_assert_int_eq(pthread_join(w.tid, NULL), 0);
	ck_assert_msg(w.got == SPF_CLAIM_CLAIMED, "got %d, want CLAIMED",
	    (int)w.got);
	ck_assert_msg(w.waited_ms >= 250 && w.waited_ms < 3000,
	    "waited %lld ms, want about 300", (long long)w.waited_ms);
	/* the late waiter's abandon ended the first claim too: a result for
	 * the domain is good for anyone */
	ck_assert_uint_eq(spf_cache_inflight(c), 0);
	memset(&p, 0, sizeof(p));
	spf_cache_put(c, "hang.example", 1000, 600, &p);
	ck_assert_uint_eq(spf_cache_inflight(c), 0);
	spf_cache_free(c);
}
END_TEST

#define STORM_THREADS 8
#define STORM_ROUNDS 300

struct storm {
	pthread_t tid;
	struct spf_cache *cache;
	unsigned int seed;
	int claimed, shared, wrong;
};

/* storm_run - claim among 5 domains, put or abandon, check what is shared */
static void *
storm_run(void *arg)
{
	static const char *domains[] = { "a.example", "b.example",
	    "c.example", "d.example", "e.example" };
	struct storm *st = arg;
	struct spf_preflight pf;
	const char *d;
	int i;

	for (i = 0; i < STORM_ROUNDS; i++) {
		d = domains[(st->seed * 7 + (unsigned int)i) % 5];
		switch (spf_cache_claim(st->cache, d, 1000,
		    clock_mono_ms() + 10000, &pf)) {
		case SPF_CLAIM_CLAIMED:
			st->claimed++;
			if ((i + (int)st->seed) % 5 == 0) {
				spf_cache_abandon(st->cache, d);
				break;
			}
			sched_yield();
			memset(&pf, 0, sizeof(pf));
			(void)snprintf(pf.header, sizeof(pf.header), "%s", d);
			/* ttl 0: nothing cached, every round claims or waits */
			spf_cache_put(st->cache, d, 1000, 0, &pf);
			break;
		case SPF_CLAIM_SHARED:
			st->shared++;
			if (strcmp(pf.header, d) != 0)
				st->wrong++;
			break;
		default:
			st->wrong++;	/* nothing is cached: no hit */
			break;
		}
	}
	return NULL;
}

START_TEST(many_threads_and_domains_do_not_deadlock)
{
	struct spf_cache *c = spf_cache_new(8);
	struct storm st[STORM_THREADS];
	int64_t t0 = clock_mono_ms();
	int i, claimed = 0, shared = 0;

	for (i = 0; i < STORM_THREADS; i++) {
		memset(&st[i], 0, sizeof(st[i]));
		st[i].cache = c;
		st[i].seed = (unsigned int)i;
		ck_assert_int_eq(pthread_create(&st[i].tid, NULL, storm_run,
		    &st[i]), 0);
	}
	for (i = 0; i < STORM_THREADS; i++) {
		ck_assert_int_eq(pthread_join(st[i].tid, NULL), 0);
		ck_assert_msg(st[i].wrong == 0, "thread %d: %d wrong answers",
		    i, st[i].wrong);
		claimed += st[i].claimed;
		shared += st[i].shared;
	}
	ck_assert_int_eq(claimed + shared, STORM_THREADS * STORM_ROUNDS);
	ck_assert_uint_eq(spf_cache_inflight(c), 0);
	/* no waiter ran into its 10 s deadline */
	ck_assert_msg(clock_mono_ms() - t0 < 10000, "took %lld ms",
	    (long long)(clock_mono_ms() - t0));
	spf_cache_free(c);
}
END_TEST

START_TEST(cache_is_bounded_and_drops_oldest)
{
	struct spf_cache *c = spf_cache_new(2);
	struct spf_preflight p, got;

	memset(&p, 0, sizeof(p));
	p.worst = SPF_RES_PASS;
	spf_cache_put(c, "a.example", 100, 600, &p);
	spf_cache_put(c, "b.example", 101, 600, &p);
	spf_cache_put(c, "c.example", 102, 600, &p);
	ck_assert_int_eq(spf_cache_get(c, "a.example", 103, &got), 0);
	ck_assert_int_eq(spf_cache_get(c, "b.example", 103, &got), 1);
	ck_assert_int_eq(spf_cache_get(c, "c.example", 103, &got), 1);
	spf_cache_free(c);
	ck_assert_ptr_null(spf_cache_free(NULL));
	ck_assert_ptr_null(spf_checker_free(NULL));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("spf");
	TCase *tc;
	SRunner *sr;
	int nf;

	log_init("check_spf", 1, 0);

	tc = tcase_create("evaluation");
	tcase_add_loop_test(tc, evaluation_gives_expected_result, 0,
	    (int)(sizeof(ecases) / sizeof(ecases[0])));
	tcase_add_test(tc, checker_is_reusable_across_checks);
	tcase_add_test(tc, loopback_passes_only_when_allowed);
	tcase_add_test(tc, configured_limits_apply);
	tcase_add_test(tc, unusable_query_is_refused);
	tcase_add_test(tc, zone_add_rejects_bad_input);
	tcase_add_test(tc, resolver_checker_is_made_and_freed);
	tcase_add_test(tc, deadline_stops_the_check_with_temperror);
	suite_add_tcase(s, tc);

	tc = tcase_create("mapping");
	tcase_add_loop_test(tc, libspf2_result_maps_one_to_one, 0,
	    (int)(sizeof(mcases) / sizeof(mcases[0])));
	tcase_add_test(tc, result_names_are_rfc7208);
	suite_add_tcase(s, tc);

	tc = tcase_create("headers");
	tcase_add_loop_test(tc, headers_match_golden_files, 0,
	    (int)(sizeof(hcases) / sizeof(hcases[0])));
	tcase_add_test(tc, headers_refuse_small_buffers);
	tcase_add_test(tc, received_spf_names_identity_and_receiver);
	suite_add_tcase(s, tc);

	tc = tcase_create("preflight");
	tcase_add_test(tc, preflight_authorized_when_every_address_passes);
	tcase_add_test(tc, preflight_fail_names_domain_and_publish);
	tcase_add_test(tc, preflight_without_publish_names_our_addresses);
	tcase_add_loop_test(tc, preflight_worst_result_decides, 0,
	    (int)(sizeof(wcases) / sizeof(wcases[0])));
	tcase_add_test(tc, preflight_with_no_answers_is_not_authorized);
	tcase_add_test(tc, cache_keeps_result_until_ttl);
	tcase_add_loop_test(tc, cache_keeps_temperror_a_minute_at_most, 0,
	    (int)(sizeof(tcases) / sizeof(tcases[0])));
	tcase_add_test(tc, cache_is_bounded_and_drops_oldest);
	suite_add_tcase(s, tc);

	tc = tcase_create("single flight");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, claim_then_put_then_hit);
	tcase_add_test(tc, waiter_gets_the_claimers_result);
	tcase_add_test(tc, abandon_makes_one_waiter_the_claimer);
	tcase_add_test(tc, waiter_wait_is_bounded_by_its_deadline);
	tcase_add_test(tc, many_threads_and_domains_do_not_deadlock);
	suite_add_tcase(s, tc);

	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
