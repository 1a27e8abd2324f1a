/*
 * check_deliver - deliver/: DMARC record parsing (libopendmarc and RFC
 * 7489's rules around it), organizational domains (libpsl, Debian's
 * list), relaxed and strict alignment, the answer cache (bound, TTL),
 * and lookups through c-ares against a real dnsmasq on 127.0.0.1 (a free
 * port; records in tests/data/deliver-zone/unit.conf): TXT joining, MX
 * and null MX, A+AAAA, PTR, NXDOMAIN/NODATA, DMARC discovery with the
 * fallback to the organizational domain, the deadline against a server
 * that never answers (a UDP socket of this test), what is cached for how
 * long, and a hanging lookup not holding other threads.
 */
#include "config.h"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deliver/dmarc.h"
#include "deliver/dns.h"
#include "deliver/dns_impl.h"
#include "util/clock.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"
#define ZONE		TOP_SRCDIR "/tests/data/deliver-zone/unit.conf"
#define LOCAL_TTL	2	/* seconds, dnsmasq --local-ttl */

/* ---- dmarc_parse ------------------------------------------------------- */

struct parse_case {
	const char *record;
	int ok;
	enum dmarc_policy p, sp;
	char adkim, aspf;
	const char *rua;
};

static const struct parse_case parses[] = {
	{ "v=DMARC1; p=reject", 1, DMARC_P_REJECT, DMARC_P_REJECT, 'r', 'r',
	    "" },
	{ "v=DMARC1; p=quarantine; sp=none; adkim=s; aspf=r; "
	    "rua=mailto:a@x.example,mailto:b@y.example", 1,
	    DMARC_P_QUARANTINE, DMARC_P_NONE, 's', 'r',
	    "mailto:a@x.example,mailto:b@y.example" },
	{ "v=DMARC1;p=none;aspf=s", 1, DMARC_P_NONE, DMARC_P_NONE, 'r', 's',
	    "" },
	{ "v=DMARC1; p=none; pct=50; ri=86400; fo=1", 1, DMARC_P_NONE,
	    DMARC_P_NONE, 'r', 'r', "" },
	/* no p=, or a bad one, but a rua=: p=none (RFC 7489 6.6.3) */
	{ "v=DMARC1; rua=mailto:r@x.example", 1, DMARC_P_NONE, DMARC_P_NONE,
	    'r', 'r', "mailto:r@x.example" },
	{ "v=DMARC1; rua=mailto:r@x.example; p=bogus", 1, DMARC_P_NONE,
	    DMARC_P_NONE, 'r', 'r', "mailto:r@x.example" },
	/* invalid */
	{ "v=DMARC1", 0, 0, 0, 0, 0, NULL },
	{ "v=DMARC1; p=bogus", 0, 0, 0, 0, 0, NULL },
	{ "v=DMARC2; p=reject", 0, 0, 0, 0, 0, NULL },
	{ "", 0, 0, 0, 0, 0, NULL },
};

START_TEST(dmarc_record_parsed_with_rfc7489_defaults)
{
	const struct parse_case *c = &parses[_i];
	struct dmarc_record r;
	char err[256] = "";
	int rc = dmarc_parse(c->record, &r, err, sizeof(err));

	if (!c->ok) {
		ck_assert_msg(rc == -1, "\"%s\": got valid, want invalid",
		    c->record);
		ck_assert_msg(err[0] != '\0', "\"%s\": no error text",
		    c->record);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\": got invalid (%s), want valid",
	    c->record, err);
	ck_assert_msg(r.p == c->p && r.sp == c->sp,
	    "\"%s\": got p=%s sp=%s, want p=%s sp=%s", c->record,
	    dmarc_policy_name(r.p), dmarc_policy_name(r.sp),
	    dmarc_policy_name(c->p), dmarc_policy_name(c->sp));
	ck_assert_msg(r.adkim == c->adkim && r.aspf == c->aspf,
	    "\"%s\": got adkim=%c aspf=%c, want %c %c", c->record, r.adkim,
	    r.aspf, c->adkim, c->aspf);
	ck_assert_str_eq(r.rua, c->rua);
}
END_TEST

/* ---- organizational domain and alignment ------------------------------- */

struct org_case {
	const char *domain, *org;	/* org NULL: -1 */
};

static const struct org_case orgs[] = {
	{ "example.com", "example.com" },
	{ "Mail.News.Example.COM.", "example.com" },
	{ "a.b.example.co.uk", "example.co.uk" },
	{ "shop.example.com.au", "example.com.au" },
	{ "x.sub.org.test", "org.test" },	/* unlisted TLD: "*" rule */
	{ "com", NULL },
	{ "co.uk", NULL },
	{ "", NULL },
};

START_TEST(org_domain_from_public_suffix_list)
{
	const struct org_case *c = &orgs[_i];
	char out[256] = "";
	int rc = dmarc_org_domain(c->domain, out, sizeof(out));

	if (c->org == NULL) {
		ck_assert_msg(rc == -1, "\"%s\": got %s, want -1", c->domain,
		    out);
		return;
	}
	ck_assert_msg(rc == 0, "\"%s\": got -1, want %s", c->domain, c->org);
	ck_assert_str_eq(out, c->org);
}
END_TEST

struct align_case {
	const char *from, *other;
	char mode;
	int want;
};

static const struct align_case aligns[] = {
	{ "example.com", "example.com", 's', 1 },
	{ "example.com", "EXAMPLE.com.", 's', 1 },
	{ "news.example.com", "example.com", 's', 0 },
	{ "news.example.com", "example.com", 'r', 1 },
	{ "example.com", "mail.example.com", 'r', 1 },
	{ "a.example.com", "b.example.com", 'r', 1 },
	{ "a.example.com", "b.example.com", 's', 0 },
	{ "example.com", "example.net", 'r', 0 },
	{ "example.co.uk", "other.co.uk", 'r', 0 },
	{ "a.example.co.uk", "example.co.uk", 'r', 1 },
	{ "co.uk", "x.co.uk", 'r', 0 },
	{ "", "", 'r', 0 },
};

START_TEST(alignment_relaxed_and_strict)
{
	const struct align_case *c = &aligns[_i];
	int got = dmarc_aligned(c->from, c->other, c->mode);

	ck_assert_msg(got == c->want, "%s vs %s (%c): got %d, want %d",
	    c->from, c->other, c->mode, got, c->want);
}
END_TEST

/* ---- the cache by itself ------------------------------------------------ */

START_TEST(cache_bounded_lru_and_ttl)
{
	struct dns_cache *c = dns_cache_new(2);
	const char *data;
	enum dns_rc rc;

	dns_cache_put(c, "a.test", 16, 0, 10, DNS_OK, "A\n");
	dns_cache_put(c, "b.test", 16, 0, 10, DNS_NXDOMAIN, "");
	ck_assert(dns_cache_get(c, "A.TEST", 16, 1000, &rc, &data));
	ck_assert_int_eq(rc, DNS_OK);
	ck_assert_str_eq(data, "A\n");
	ck_assert(!dns_cache_get(c, "a.test", 1, 1000, &rc, &data));
	/* full: c.test replaces b.test, the least recently used */
	dns_cache_put(c, "c.test", 16, 2000, 10, DNS_OK, "C\n");
	ck_assert(!dns_cache_get(c, "b.test", 16, 2000, &rc, &data));
	ck_assert(dns_cache_get(c, "a.test", 16, 2000, &rc, &data));
	ck_assert(dns_cache_get(c, "c.test", 16, 2000, &rc, &data));
	/* the TTL: a.test until 10 s, c.test until 12 s */
	ck_assert(dns_cache_get(c, "a.test", 16, 9999, &rc, &data));
	ck_assert(!dns_cache_get(c, "a.test", 16, 10000, &rc, &data));
	ck_assert(dns_cache_get(c, "c.test", 16, 11999, &rc, &data));
	/* a TTL of 0 is not stored */
	dns_cache_put(c, "d.test", 16, 0, 0, DNS_OK, "D\n");
	ck_assert(!dns_cache_get(c, "d.test", 16, 0, &rc, &data));
	dns_cache_free(c);
}
END_TEST

/* ---- a real DNS server ----------------------------------------------------- */

static pid_t dnsmasq_pid = -1;
static int silent_fd = -1;
static char dns_servers[64], silent_server[64];
static char dns_setup_err[256];

/* udp_port - bind a UDP socket on 127.0.0.1 to a free port; its fd */
static int
udp_port(int *port)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd == -1 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	*port = ntohs(sin.sin_port);
	return fd;
}

/* dns_new_test - a resolver on the test's dnsmasq */
static struct dns *
dns_new_test(int timeout_ms, size_t entries, const char *servers)
{
	char err[256];
	struct dns *d = dns_new(timeout_ms, entries, err, sizeof(err));

	ck_assert_msg(d != NULL, "dns_new: %s", err);
	ck_assert_msg(dns_set_servers(d, servers, err, sizeof(err)) == 0,
	    "%s", err);
	return d;
}

/* dnsmasq_up - 1 once dnsmasq answers split.test, within 5 s */
static int
dnsmasq_up(void)
{
	char out[512], err[256];
	struct dns *d = dns_new(200, 0, err, sizeof(err));
	int i, up = 0;

	if (d == NULL || dns_set_servers(d, dns_servers, err,
	    sizeof(err)) == -1) {
		dns_free(d);
		return 0;
	}
	for (i = 0; i < 25 && !up; i++) {
		up = dns_txt(d, "split.test", out, sizeof(out), err,
		    sizeof(err)) == DNS_OK;
		if (!up)
			usleep(200000);
	}
	dns_free(d);
	return up;
}

/* dns_start - unchecked fixture: the silent socket and dnsmasq */
static void
dns_start(void)
{
	char port[32], ttl[32], hang[64];
	int fd, p, sp;

	silent_fd = udp_port(&sp);
	fd = udp_port(&p);
	if (silent_fd == -1 || fd == -1) {
		snprintf(dns_setup_err, sizeof(dns_setup_err),
		    "no free UDP port on 127.0.0.1");
		return;
	}
	close(fd);		/* dnsmasq binds it next */
	snprintf(dns_servers, sizeof(dns_servers), "127.0.0.1:%d", p);
	snprintf(silent_server, sizeof(silent_server), "127.0.0.1:%d", sp);
	snprintf(port, sizeof(port), "--port=%d", p);
	snprintf(ttl, sizeof(ttl), "--local-ttl=%d", LOCAL_TTL);
	snprintf(hang, sizeof(hang), "--server=/hang.test/127.0.0.1#%d", sp);
	dnsmasq_pid = fork();
	if (dnsmasq_pid == 0) {
		execl(DNSMASQ, DNSMASQ, "--no-daemon", "--conf-file=" ZONE,
		    port, ttl, hang, "--pid-file=", "--log-facility=/dev/null",
		    (char *)NULL);
		_exit(127);
	}
	if (dnsmasq_pid == -1 || !dnsmasq_up())
		snprintf(dns_setup_err, sizeof(dns_setup_err),
		    "%s did not answer on %s (is dnsmasq-base installed?)",
		    DNSMASQ, dns_servers);
}

/* dns_stop - unchecked fixture: stop dnsmasq, close the socket */
static void
dns_stop(void)
{
	if (dnsmasq_pid > 0) {
		kill(dnsmasq_pid, SIGTERM);
		waitpid(dnsmasq_pid, NULL, 0);
		dnsmasq_pid = -1;
	}
	if (silent_fd != -1)
		close(silent_fd);
	silent_fd = -1;
}

#define NEED_DNS() ck_assert_msg(dns_setup_err[0] == '\0', "setup: %s", \
	dns_setup_err)

struct lookup_case {
	int kind;			/* 0 txt, 1 mx, 2 addrs, 3 ptr */
	const char *name;
	enum dns_rc rc;
	const char *out;
};

static const struct lookup_case lookups[] = {
	{ 0, "split.test", DNS_OK, "v=spf1 ip4:192.0.2.1 -all\n" },
	{ 0, "SPLIT.test.", DNS_OK, "v=spf1 ip4:192.0.2.1 -all\n" },
	{ 0, "nothing.test", DNS_NXDOMAIN, "" },
	{ 0, "mail.test", DNS_NODATA, "" },
	{ 1, "mail.test", DNS_OK, "10 mx1.mail.test\n" },
	{ 1, "nullmx.test", DNS_OK, "0 .\n" },
	{ 1, "nothing.test", DNS_NXDOMAIN, "" },
	{ 2, "mx1.mail.test", DNS_OK, "192.0.2.1\n2001:db8::1\n" },
	{ 2, "mail.test", DNS_NODATA, "" },
	{ 3, "192.0.2.1", DNS_OK, "mx1.mail.test\n" },
	{ 3, "2001:db8::1", DNS_OK, "mx1.mail.test\n" },
	{ 3, "192.0.2.99", DNS_NXDOMAIN, "" },
	{ 3, "not-an-address", DNS_NXDOMAIN, "" },
	{ 0, "bad..name", DNS_NXDOMAIN, "" },
};

/* lookup - one lookup of the kind of c */
static enum dns_rc
lookup(struct dns *d, int kind, const char *name, char *out, size_t len,
    char *err, size_t errlen)
{
	switch (kind) {
	case 0:
		return dns_txt(d, name, out, len, err, errlen);
	case 1:
		return dns_mx(d, name, out, len, err, errlen);
	case 2:
		return dns_addrs(d, name, out, len, err, errlen);
	}
	return dns_ptr(d, name, out, len, err, errlen);
}

START_TEST(lookups_against_dnsmasq)
{
	const struct lookup_case *c = &lookups[_i];
	char out[1024], err[256] = "";
	struct dns *d;
	enum dns_rc rc;

	NEED_DNS();
	d = dns_new_test(2000, 16, dns_servers);
	rc = lookup(d, c->kind, c->name, out, sizeof(out), err, sizeof(err));
	ck_assert_msg(rc == c->rc, "%d %s: got %s (%s), want %s", c->kind,
	    c->name, dns_rc_name(rc), err, dns_rc_name(c->rc));
	ck_assert_str_eq(out, c->out);
	if (rc != DNS_OK)
		ck_assert_msg(err[0] != '\0', "%s: no error text", c->name);
	dns_free(d);
}
END_TEST

START_TEST(txt_records_one_per_line_and_too_long)
{
	char out[64], small[8], err[256];
	struct dns *d;

	NEED_DNS();
	d = dns_new_test(2000, 16, dns_servers);
	ck_assert_int_eq(dns_txt(d, "multi.test", out, sizeof(out), err,
	    sizeof(err)), DNS_OK);
	ck_assert_msg(strcmp(out, "first\nsecond\n") == 0 ||
	    strcmp(out, "second\nfirst\n") == 0, "got \"%s\"", out);
	ck_assert_int_eq(dns_txt(d, "multi.test", small, sizeof(small), err,
	    sizeof(err)), DNS_TEMPERROR);
	ck_assert_str_eq(small, "");
	ck_assert_msg(strstr(err, "too long") != NULL, "err: %s", err);
	dns_free(d);
}
END_TEST

struct dmarc_case {
	const char *from;
	enum dmarc_found found;
	const char *where;
	enum dmarc_policy p, sp;
	char adkim;
};

static const struct dmarc_case dmarcs[] = {
	{ "own.test", DMARC_FOUND, "own.test", DMARC_P_REJECT, DMARC_P_REJECT,
	    'r' },
	{ "Own.Test.", DMARC_FOUND, "own.test", DMARC_P_REJECT,
	    DMARC_P_REJECT, 'r' },
	/* sub.org.test: a TXT that is not DMARC, then the org domain */
	{ "sub.org.test", DMARC_FOUND, "org.test", DMARC_P_QUARANTINE,
	    DMARC_P_REJECT, 's' },
	{ "deep.sub.org.test", DMARC_FOUND, "org.test", DMARC_P_QUARANTINE,
	    DMARC_P_REJECT, 's' },
	{ "norp.test", DMARC_FOUND, "norp.test", DMARC_P_NONE, DMARC_P_NONE,
	    'r' },
	{ "two.test", DMARC_ABSENT, "", 0, 0, 0 },
	{ "x.two.test", DMARC_ABSENT, "", 0, 0, 0 },
	{ "nothing.test", DMARC_ABSENT, "", 0, 0, 0 },
	{ "x.hang.test", DMARC_TEMPERROR, "", 0, 0, 0 },
};

START_TEST(dmarc_lookup_own_then_organizational)
{
	const struct dmarc_case *c = &dmarcs[_i];
	struct dmarc_record r;
	char err[256] = "";
	enum dmarc_found f;
	struct dns *d;

	NEED_DNS();
	d = dns_new_test(500, 16, dns_servers);
	f = dmarc_lookup(d, c->from, &r, err, sizeof(err));
	ck_assert_msg(f == c->found, "%s: got %d (%s), want %d", c->from, f,
	    err, c->found);
	if (f == DMARC_FOUND) {
		ck_assert_str_eq(r.where, c->where);
		ck_assert_int_eq(r.p, c->p);
		ck_assert_int_eq(r.sp, c->sp);
		ck_assert_int_eq(r.adkim, c->adkim);
	} else
		ck_assert_msg(err[0] != '\0', "%s: no error text", c->from);
	dns_free(d);
}
END_TEST

START_TEST(silent_server_temperror_by_the_deadline)
{
	char out[256], err[256];
	struct dns *d;
	int64_t t0, ms;
	enum dns_rc rc;

	NEED_DNS();
	d = dns_new_test(300, 16, silent_server);
	t0 = clock_mono_ms();
	rc = dns_txt(d, "split.test", out, sizeof(out), err, sizeof(err));
	ms = clock_mono_ms() - t0;
	ck_assert_msg(rc == DNS_TEMPERROR, "got %s, want temperror",
	    dns_rc_name(rc));
	ck_assert_msg(ms >= 250 && ms < 600, "took %lld ms, want ~300",
	    (long long)ms);
	ck_assert_msg(strstr(err, "timeout") != NULL, "err: %s", err);
	/* A and AAAA share the one deadline */
	t0 = clock_mono_ms();
	rc = dns_addrs(d, "mx1.mail.test", out, sizeof(out), err,
	    sizeof(err));
	ms = clock_mono_ms() - t0;
	ck_assert_int_eq(rc, DNS_TEMPERROR);
	ck_assert_msg(ms < 600, "addrs took %lld ms, want ~300",
	    (long long)ms);
	dns_free(d);
}
END_TEST

START_TEST(cache_answers_ttl_negative_and_temperror)
{
	char out[256], err[256];
	struct dns *d;

	NEED_DNS();
	d = dns_new_test(300, 64, dns_servers);
	ck_assert_int_eq(dns_txt(d, "split.test", out, sizeof(out), err,
	    sizeof(err)), DNS_OK);
	ck_assert_int_eq(dns_txt(d, "nothing.test", out, sizeof(out), err,
	    sizeof(err)), DNS_NXDOMAIN);
	/* the server goes silent: both come from the cache */
	ck_assert_int_eq(dns_set_servers(d, silent_server, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(dns_txt(d, "split.test", out, sizeof(out), err,
	    sizeof(err)), DNS_OK);
	ck_assert_str_eq(out, "v=spf1 ip4:192.0.2.1 -all\n");
	ck_assert_int_eq(dns_txt(d, "nothing.test", out, sizeof(out), err,
	    sizeof(err)), DNS_NXDOMAIN);
	ck_assert_int_eq(dns_txt(d, "multi.test", out, sizeof(out), err,
	    sizeof(err)), DNS_TEMPERROR);
	/* the server is back: the timeout is kept DNS_TTL_TEMP s only */
	ck_assert_int_eq(dns_set_servers(d, dns_servers, err, sizeof(err)),
	    0);
	ck_assert_int_eq(dns_txt(d, "multi.test", out, sizeof(out), err,
	    sizeof(err)), DNS_TEMPERROR);
	ck_assert_msg(strstr(err, "cached") != NULL, "err: %s", err);
	/* past LOCAL_TTL and DNS_TTL_TEMP: asked again */
	usleep((LOCAL_TTL > DNS_TTL_TEMP ? LOCAL_TTL : DNS_TTL_TEMP) *
	    1000000 + 100000);
	ck_assert_int_eq(dns_txt(d, "multi.test", out, sizeof(out), err,
	    sizeof(err)), DNS_OK);
	ck_assert_int_eq(dns_set_servers(d, silent_server, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(dns_txt(d, "split.test", out, sizeof(out), err,
	    sizeof(err)), DNS_TEMPERROR);
	/* NXDOMAIN is kept DNS_TTL_NEG s, longer than that */
	ck_assert_int_eq(dns_txt(d, "nothing.test", out, sizeof(out), err,
	    sizeof(err)), DNS_NXDOMAIN);
	dns_free(d);
}
END_TEST

struct hang_arg {
	struct dns *d;
	int64_t done_ms;
	enum dns_rc rc;
};

/* hang_thread - one lookup that goes to the silent server */
static void *
hang_thread(void *p)
{
	struct hang_arg *a = p;
	char out[256], err[256];

	a->rc = dns_txt(a->d, "x.hang.test", out, sizeof(out), err,
	    sizeof(err));
	a->done_ms = clock_mono_ms();
	return NULL;
}

START_TEST(hanging_lookup_does_not_hold_other_threads)
{
	struct hang_arg a;
	pthread_t t;
	char out[256], err[256];
	int64_t t0, others;
	int i;

	NEED_DNS();
	memset(&a, 0, sizeof(a));
	a.d = dns_new_test(1500, 0, dns_servers);	/* no cache */
	t0 = clock_mono_ms();
	ck_assert_int_eq(pthread_create(&t, NULL, hang_thread, &a), 0);
	usleep(50000);
	for (i = 0; i < 20; i++)
		ck_assert_int_eq(dns_txt(a.d, "split.test", out, sizeof(out),
		    err, sizeof(err)), DNS_OK);
	others = clock_mono_ms();
	pthread_join(t, NULL);
	ck_assert_int_eq(a.rc, DNS_TEMPERROR);
	ck_assert_msg(others < a.done_ms, "20 lookups ended at %lld ms, "
	    "after the hanging one (%lld ms)", (long long)(others - t0),
	    (long long)(a.done_ms - t0));
	ck_assert_msg(a.done_ms - t0 < 2000, "hang took %lld ms, want 1500",
	    (long long)(a.done_ms - t0));
	dns_free(a.d);
}
END_TEST

static Suite *
deliver_suite(void)
{
	Suite *s = suite_create("deliver");
	TCase *tc;

	tc = tcase_create("dmarc");
	tcase_add_loop_test(tc, dmarc_record_parsed_with_rfc7489_defaults, 0,
	    (int)(sizeof(parses) / sizeof(parses[0])));
	tcase_add_loop_test(tc, org_domain_from_public_suffix_list, 0,
	    (int)(sizeof(orgs) / sizeof(orgs[0])));
	tcase_add_loop_test(tc, alignment_relaxed_and_strict, 0,
	    (int)(sizeof(aligns) / sizeof(aligns[0])));
	tcase_add_test(tc, cache_bounded_lru_and_ttl);
	suite_add_tcase(s, tc);

	tc = tcase_create("dns");
	tcase_add_unchecked_fixture(tc, dns_start, dns_stop);
	tcase_set_timeout(tc, 20);
	tcase_add_loop_test(tc, lookups_against_dnsmasq, 0,
	    (int)(sizeof(lookups) / sizeof(lookups[0])));
	tcase_add_test(tc, txt_records_one_per_line_and_too_long);
	tcase_add_loop_test(tc, dmarc_lookup_own_then_organizational, 0,
	    (int)(sizeof(dmarcs) / sizeof(dmarcs[0])));
	tcase_add_test(tc, silent_server_temperror_by_the_deadline);
	tcase_add_test(tc, cache_answers_ttl_negative_and_temperror);
	tcase_add_test(tc, hanging_lookup_does_not_hold_other_threads);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(deliver_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
