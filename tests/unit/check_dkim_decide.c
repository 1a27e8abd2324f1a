/*
 * check_dkim_decide - dkim/from and dkim/decide: whose mail is signed,
 * which From values are usable, and why a message is not signed.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dkim/decide.h"
#include "dkim/from.h"
#include "util/cidr.h"

static const struct {
	const char *value;
	enum from_result want;
	const char *local, *domain;
} froms[] = {
	{ "alice@example.com", FROM_OK, "alice", "example.com" },
	{ " Alice <alice@Example.COM>", FROM_OK, "alice", "example.com" },
	{ "\"Smith, Alice\" <alice@example.com>", FROM_OK, "alice",
	  "example.com" },
	{ "alice@example.com (Alice, at work)", FROM_OK, "alice",
	  "example.com" },
	{ "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>", FROM_OK, "jm",
	  "example.de" },
	{ "Alice\n\t<alice@example.com>", FROM_OK, "alice", "example.com" },
	{ "\"a@b\" <real@example.com>", FROM_OK, "real", "example.com" },
	{ "\"odd local\"@example.com", FROM_OK, "\"odd local\"",
	  "example.com" },
	{ "alice@example.com.", FROM_OK, "alice", "example.com" },
	{ "Team: alice@example.com;", FROM_OK, "alice", "example.com" },
	{ "(comment (nested)) bob@example.org", FROM_OK, "bob",
	  "example.org" },
	{ "", FROM_EMPTY, NULL, NULL },
	{ "   ", FROM_EMPTY, NULL, NULL },
	{ "Undisclosed: ;", FROM_EMPTY, NULL, NULL },
	{ "alice@example.com, bob@example.com", FROM_MULTIPLE, NULL, NULL },
	{ "Team: a@x.org, b@x.org;", FROM_MULTIPLE, NULL, NULL },
	{ "alice", FROM_NO_DOMAIN, NULL, NULL },
	{ "Alice <alice>", FROM_NO_DOMAIN, NULL, NULL },
	{ "alice@", FROM_NO_DOMAIN, NULL, NULL },
	{ "\"unterminated <a@b.c>", FROM_EMPTY, NULL, NULL },
};

START_TEST(from_parse_finds_the_author)
{
	char local[FROM_LOCAL_MAX], domain[FROM_DOMAIN_MAX];
	enum from_result r = from_parse(froms[_i].value,
	    strlen(froms[_i].value), local, sizeof(local), domain,
	    sizeof(domain));

	ck_assert_msg(r == froms[_i].want, "\"%s\": got %s, want %s",
	    froms[_i].value, from_result_str(r),
	    from_result_str(froms[_i].want));
	if (r != FROM_OK)
		return;
	ck_assert_msg(strcmp(local, froms[_i].local) == 0 &&
	    strcmp(domain, froms[_i].domain) == 0,
	    "\"%s\": got %s@%s, want %s@%s", froms[_i].value, local, domain,
	    froms[_i].local, froms[_i].domain);
}
END_TEST

START_TEST(from_parse_bounds_long_values)
{
	char local[FROM_LOCAL_MAX], domain[FROM_DOMAIN_MAX];
	size_t n = 100000, i;
	char *v = malloc(n + 1);

	for (i = 0; i < n; i++)
		v[i] = (i % 7 == 0) ? '@' : 'a';
	v[n] = '\0';
	ck_assert_int_ne(from_parse(v, n, local, sizeof(local), domain,
	    sizeof(domain)), FROM_OK);
	for (i = 0; i < n; i++)
		v[i] = "(<\"\\,:;@> "[i % 11];
	from_parse(v, n, local, sizeof(local), domain, sizeof(domain));
	free(v);
}
END_TEST

static struct conf *
load(const char *text)
{
	char err[512], path[] = "/tmp/check_decide.XXXXXX";
	int fd = mkstemp(path);
	struct conf *c;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	c = conf_load(path, err, sizeof(err));
	ck_assert_msg(c != NULL, "config: %s", err);
	unlink(path);
	return c;
}

static const char *decide_conf =
    "trusted = { networks = [ \"192.0.2.0/24\", \"2001:db8::/32\" ];\n"
    "  authenticated = true; daemon_names = [ \"ORIGINATING\" ]; };\n"
    "dkim = { keys = (\n"
    "  { name = \"r\"; domain = \"example.com\"; selector = \"r1\"; file = \"/k\"; },\n"
    "  { name = \"e\"; domain = \"example.com\"; selector = \"e1\"; file = \"/k2\";"
    " algorithm = \"ed25519-sha256\"; } );\n"
    " signing = ( { match = \"*@example.com\"; keys = [ \"r\", \"e\" ]; } ); };\n";

static const struct {
	const char *name;
	const char *auth, *addr, *daemon;
	unsigned int nfrom;
	const char *from;
	int sign, malformed;
	const char *reason;
	size_t nreq;
} decisions[] = {
	{ "authenticated client", "alice", "203.0.113.5", NULL, 1,
	  "alice@example.com", 1, 0, "authenticated", 2 },
	{ "trusted v4 network", NULL, "192.0.2.7", NULL, 1,
	  "Alice <alice@example.com>", 1, 0, "trusted-network", 2 },
	{ "trusted v6 network", NULL, "2001:db8::25", NULL, 1,
	  "alice@example.com", 1, 0, "trusted-network", 2 },
	{ "trusted daemon name", NULL, "203.0.113.5", "ORIGINATING", 1,
	  "alice@example.com", 1, 0, "trusted-daemon", 2 },
	{ "stranger", NULL, "203.0.113.5", "smtpd", 1, "alice@example.com",
	  0, 0, "not-trusted", 0 },
	{ "empty auth is no auth", "", "203.0.113.5", NULL, 1,
	  "alice@example.com", 0, 0, "not-trusted", 0 },
	{ "no client address", NULL, NULL, NULL, 1, "alice@example.com", 0,
	  0, "not-trusted", 0 },
	{ "no From", "alice", NULL, NULL, 0, NULL, 0, 1, "no-from", 0 },
	{ "two From", "alice", NULL, NULL, 2, "alice@example.com", 0, 1,
	  "several-from-fields", 0 },
	{ "From without domain", "alice", NULL, NULL, 1, "alice", 0, 1,
	  "from-without-domain", 0 },
	{ "From with two addresses", "alice", NULL, NULL, 1,
	  "a@example.com, b@example.com", 0, 1,
	  "from-with-several-addresses", 0 },
	{ "foreign domain", "alice", NULL, NULL, 1, "alice@elsewhere.org", 0,
	  0, "no-signing-rule", 0 },
};

START_TEST(decide_signs_only_trusted_wellformed_matching)
{
	struct conf *c = load(decide_conf);
	char err[512];
	struct dkim_table *t = dkim_table_new_nokeys(&c->dkim, c->path,
	    err, sizeof(err));
	struct dkim_decide_in in;
	struct dkim_decision d;
	uint8_t addr[16];

	ck_assert_msg(t != NULL, "%s", err);
	memset(&in, 0, sizeof(in));
	in.auth_authen = decisions[_i].auth;
	if (decisions[_i].addr) {
		ck_assert_int_eq(cidr_addr_parse(decisions[_i].addr, addr), 0);
		in.client_addr = addr;
	}
	in.daemon_name = decisions[_i].daemon;
	in.nfrom = decisions[_i].nfrom;
	in.from_value = decisions[_i].from;
	in.from_len = decisions[_i].from ? strlen(decisions[_i].from) : 0;
	dkim_decide(&c->trusted, t, &in, &d);
	ck_assert_msg(d.sign == decisions[_i].sign &&
	    d.malformed == decisions[_i].malformed &&
	    strcmp(d.reason, decisions[_i].reason) == 0 &&
	    d.nreq == decisions[_i].nreq,
	    "%s: got sign=%d malformed=%d reason=%s nreq=%zu, want "
	    "sign=%d malformed=%d reason=%s nreq=%zu", decisions[_i].name,
	    d.sign, d.malformed, d.reason, d.nreq, decisions[_i].sign,
	    decisions[_i].malformed, decisions[_i].reason,
	    decisions[_i].nreq);
	if (d.sign) {
		ck_assert_str_eq(d.req[0].domain, "example.com");
		ck_assert_str_eq(d.req[0].selector, "r1");
		ck_assert_str_eq(d.req[1].selector, "e1");
	}
	dkim_table_free(t);
	conf_free(c);
}
END_TEST

START_TEST(authenticated_ignored_when_disabled)
{
	struct conf *c = load("trusted = { networks = [ ]; authenticated = "
	    "false; };\n");
	struct dkim_decide_in in;

	memset(&in, 0, sizeof(in));
	in.auth_authen = "alice";
	ck_assert_ptr_null(dkim_trust_reason(&c->trusted, &in));
	conf_free(c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dkim_decide");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("from_parse_finds_the_author");
	tcase_add_loop_test(tc, from_parse_finds_the_author, 0,
	    sizeof(froms) / sizeof(froms[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("from_parse_bounds_long_values");
	tcase_add_test(tc, from_parse_bounds_long_values);
	suite_add_tcase(s, tc);
	tc = tcase_create("decide_signs_only_trusted_wellformed_matching");
	tcase_add_loop_test(tc, decide_signs_only_trusted_wellformed_matching,
	    0, sizeof(decisions) / sizeof(decisions[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("authenticated_ignored_when_disabled");
	tcase_add_test(tc, authenticated_ignored_when_disabled);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
