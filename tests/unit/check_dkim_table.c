/*
 * check_dkim_table - dkim/table: which keys sign which From address, from
 * dkim.signing rules and from OpenDKIM KeyTable/SigningTable files.
 * Built without reading key files (dkim_table_new_nokeys); key loading
 * is tested in check_dkim_key.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "dkim/table.h"

static char *
write_tmp(const char *text)
{
	char *path = strdup("/tmp/check_table.XXXXXX");
	int fd = mkstemp(path);
	size_t n = strlen(text);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	return path;
}

static struct conf *
load(const char *text)
{
	char err[512], *path = write_tmp(text);
	struct conf *c = conf_load(path, err, sizeof(err));

	ck_assert_msg(c != NULL, "config: %s", err);
	unlink(path);
	free(path);
	return c;
}

/* sigs - "d/s,d/s" of a lookup, or "" */
static void
sigs(const struct dkim_table *t, const char *local, const char *domain,
    char *out, size_t outlen)
{
	struct dkim_sign_req req[DKIM_MAX_SIGS];
	size_t i, n, off = 0;

	out[0] = '\0';
	n = dkim_table_lookup(t, local, domain, req, DKIM_MAX_SIGS, NULL);
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(out + off, outlen - off, "%s%s/%s",
		    i ? "," : "", req[i].domain, req[i].selector);
}

static const char *rules_conf =
    "dkim = {\n"
    " keys = (\n"
    "  { name = \"ex-rsa\"; domain = \"example.com\"; selector = \"r1\"; file = \"/k1\"; },\n"
    "  { name = \"ex-ed\"; domain = \"example.com\"; selector = \"e1\"; "
    "algorithm = \"ed25519-sha256\"; file = \"/k2\"; },\n"
    "  { name = \"org\"; domain = \"example.org\"; selector = \"o1\"; file = \"/k3\"; },\n"
    "  { name = \"subs\"; domain = \"%\"; selector = \"sub\"; file = \"/k4\"; },\n"
    "  { name = \"vip\"; domain = \"example.com\"; selector = \"vip\"; file = \"/k5\"; },\n"
    "  { name = \"any\"; domain = \"%\"; selector = \"any\"; file = \"/k6\"; }\n"
    " );\n"
    " signing = (\n"
    "  { match = \"ceo@example.com\"; keys = [ \"vip\" ]; },\n"
    "  { match = \"*@example.com\"; keys = [ \"ex-rsa\", \"ex-ed\" ]; },\n"
    "  { match = \"example.org\"; keys = [ \"org\" ]; },\n"
    "  { match = \"*.example.net\"; keys = [ \"subs\" ]; },\n"
    "  { match = \"*@*.test\"; keys = [ \"any\" ]; }\n"
    " );\n"
    "};\n";

static const struct {
	const char *local, *domain, *want;
} rule_cases[] = {
	{ "alice", "example.com", "example.com/r1,example.com/e1" },
	{ "ALICE", "EXAMPLE.COM", "example.com/r1,example.com/e1" },
	{ "ceo", "example.com", "example.com/vip" },
	{ "bob", "example.org", "example.org/o1" },
	{ "bob", "sub.example.org", "" },
	{ "x", "mail.example.net", "mail.example.net/sub" },
	{ "x", "a.b.example.net", "a.b.example.net/sub" },
	{ "x", "example.net", "" },
	{ "x", "foo.test", "foo.test/any" },
	{ "x", "example.com.evil", "" },
	{ "x", "notexample.com", "" },
};

START_TEST(rules_match_first_wins_with_wildcards)
{
	char err[512], got[512];
	struct conf *c = load(rules_conf);
	struct dkim_table *t = dkim_table_new_nokeys(&c->dkim, c->path,
	    err, sizeof(err));

	ck_assert_msg(t != NULL, "%s", err);
	sigs(t, rule_cases[_i].local, rule_cases[_i].domain, got, sizeof(got));
	ck_assert_msg(strcmp(got, rule_cases[_i].want) == 0,
	    "%s@%s: got \"%s\", want \"%s\"", rule_cases[_i].local,
	    rule_cases[_i].domain, got, rule_cases[_i].want);
	dkim_table_free(t);
	conf_free(c);
}
END_TEST

START_TEST(lookup_respects_max)
{
	char err[512];
	struct conf *c = load(rules_conf);
	struct dkim_table *t = dkim_table_new_nokeys(&c->dkim, c->path,
	    err, sizeof(err));
	struct dkim_sign_req req[1];
	const char *rule = NULL;

	ck_assert_uint_eq(dkim_table_lookup(t, "a", "example.com", req, 1,
	    &rule), 1);
	ck_assert_str_eq(req[0].selector, "r1");
	ck_assert_ptr_nonnull(rule);
	dkim_table_free(t);
	conf_free(c);
}
END_TEST

/* opendkim - a config pointing at a KeyTable and a SigningTable */
static struct dkim_table *
opendkim(const char *kt, const char *st, const char *kind, int multiple,
    char *err, size_t errlen)
{
	char *ktp = write_tmp(kt), *stp = write_tmp(st), text[1024];
	struct conf *c;
	struct dkim_table *t;

	snprintf(text, sizeof(text), "dkim = { key_table = \"%s\"; "
	    "signing_table = \"%s%s\"; multiple_signatures = %s; };", ktp,
	    kind, stp, multiple ? "true" : "false");
	c = load(text);
	t = dkim_table_new_nokeys(&c->dkim, c->path, err, errlen);
	conf_free(c);
	unlink(ktp);
	unlink(stp);
	free(ktp);
	free(stp);
	return t;
}

static const char *keytable =
    "# OpenDKIM KeyTable\n"
    "rsa    example.com:r1:/etc/keys/r1.private\n"
    "ed     example.com:e1:/etc/keys/e1.private\n"
    "\n"
    "alice  example.com:alice:/etc/keys/alice.private\n"
    "dflt   %:default:/etc/keys/default.private\n"
    "parent example.net:p:/etc/keys/p.private\n";

START_TEST(opendkim_refile_first_match)
{
	char err[512], got[512];
	struct dkim_table *t = opendkim(keytable,
	    "*@example.com rsa\n*@example.com ed\n* dflt\n", "refile:", 0,
	    err, sizeof(err));

	ck_assert_msg(t != NULL, "%s", err);
	sigs(t, "bob", "example.com", got, sizeof(got));
	ck_assert_str_eq(got, "example.com/r1");
	sigs(t, "bob", "other.org", got, sizeof(got));
	ck_assert_str_eq(got, "other.org/default");
	dkim_table_free(t);
}
END_TEST

START_TEST(opendkim_refile_multiple_signatures)
{
	char err[512], got[512];
	struct dkim_table *t = opendkim(keytable,
	    "*@example.com rsa\n*@example.com ed\n* dflt\n", "refile:", 1,
	    err, sizeof(err));

	ck_assert_msg(t != NULL, "%s", err);
	sigs(t, "bob", "example.com", got, sizeof(got));
	ck_assert_str_eq(got, "example.com/r1,example.com/e1,"
	    "example.com/default");
	dkim_table_free(t);
}
END_TEST

START_TEST(opendkim_file_exact_order)
{
	char err[512], got[512];
	struct dkim_table *t = opendkim(keytable,
	    "example.com rsa\nalice@example.com alice\n.example.net parent\n"
	    "* dflt\n", "file:", 0, err, sizeof(err));

	ck_assert_msg(t != NULL, "%s", err);
	sigs(t, "alice", "example.com", got, sizeof(got));
	ck_assert_str_eq(got, "example.com/alice");
	sigs(t, "bob", "example.com", got, sizeof(got));
	ck_assert_str_eq(got, "example.com/r1");
	sigs(t, "bob", "mail.example.net", got, sizeof(got));
	ck_assert_str_eq(got, "example.net/p");
	sigs(t, "bob", "elsewhere.org", got, sizeof(got));
	ck_assert_str_eq(got, "elsewhere.org/default");
	dkim_table_free(t);
}
END_TEST

static const struct {
	const char *kt, *st;
	const char *want;
} bad_tables[] = {
	{ "rsa example.com:r1\n", "* rsa\n", "KT:1: want" },
	{ "rsa example.com:r1:/k\nrsa example.com:r2:/k\n", "* rsa\n",
	  "KT:2: duplicate key name" },
	{ "rsa example.com:r1:MIIEvQIBADANBgkqhkiG9w0BAQEF\n", "* rsa\n",
	  "KT:1: key data inline" },
	{ "rsa example.com:r1:/k\n", "\n\n*@example.com nokey\n",
	  "ST:3: key \"nokey\" is not in the KeyTable" },
	{ "rsa example.com:r1:/k\n", "*@example.com rsa extra\n",
	  "ST:1: want" },
};

START_TEST(opendkim_bad_lines_are_named)
{
	char err[512], *ktp = write_tmp(bad_tables[_i].kt);
	char *stp = write_tmp(bad_tables[_i].st), text[1024], want[1100];
	const char *w = bad_tables[_i].want;
	struct conf *c;
	struct dkim_table *t;

	snprintf(text, sizeof(text), "dkim = { key_table = \"%s\"; "
	    "signing_table = \"refile:%s\"; };", ktp, stp);
	c = load(text);
	t = dkim_table_new_nokeys(&c->dkim, c->path, err, sizeof(err));
	ck_assert_msg(t == NULL, "case %d: got a table, want an error", _i);
	snprintf(want, sizeof(want), "%s%s", strncmp(w, "KT", 2) == 0 ? ktp :
	    stp, w + 2);
	ck_assert_msg(strstr(err, want) != NULL, "got \"%s\", want \"%s\"",
	    err, want);
	conf_free(c);
	unlink(ktp);
	unlink(stp);
	free(ktp);
	free(stp);
}
END_TEST

START_TEST(missing_table_file_is_named)
{
	char err[512];
	struct conf *c = load("dkim = { key_table = \"/nonexistent/KT\"; "
	    "signing_table = \"refile:/nonexistent/ST\"; };");
	struct dkim_table *t = dkim_table_new_nokeys(&c->dkim, c->path,
	    err, sizeof(err));

	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, "/nonexistent/KT") != NULL, "got \"%s\"",
	    err);
	conf_free(c);
}
END_TEST

START_TEST(rules_and_signing_table_exclude_each_other)
{
	char err[512];
	struct conf *c = load("dkim = { keys = ( { name = \"a\"; domain = "
	    "\"x.org\"; selector = \"s\"; file = \"/k\"; } ); signing = ( { "
	    "match = \"*\"; keys = [ \"a\" ]; } ); key_table = \"/KT\"; "
	    "signing_table = \"/ST\"; };");

	ck_assert_ptr_null(dkim_table_new_nokeys(&c->dkim, c->path, err,
	    sizeof(err)));
	ck_assert_msg(strstr(err, "exclude each other") != NULL, "got \"%s\"",
	    err);
	conf_free(c);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dkim_table");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("rules_match_first_wins_with_wildcards");
	tcase_add_loop_test(tc, rules_match_first_wins_with_wildcards, 0,
	    sizeof(rule_cases) / sizeof(rule_cases[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("lookup_respects_max");
	tcase_add_test(tc, lookup_respects_max);
	suite_add_tcase(s, tc);
	tc = tcase_create("opendkim_refile_first_match");
	tcase_add_test(tc, opendkim_refile_first_match);
	suite_add_tcase(s, tc);
	tc = tcase_create("opendkim_refile_multiple_signatures");
	tcase_add_test(tc, opendkim_refile_multiple_signatures);
	suite_add_tcase(s, tc);
	tc = tcase_create("opendkim_file_exact_order");
	tcase_add_test(tc, opendkim_file_exact_order);
	suite_add_tcase(s, tc);
	tc = tcase_create("opendkim_bad_lines_are_named");
	tcase_add_loop_test(tc, opendkim_bad_lines_are_named, 0,
	    sizeof(bad_tables) / sizeof(bad_tables[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("missing_table_file_is_named");
	tcase_add_test(tc, missing_table_file_is_named);
	suite_add_tcase(s, tc);
	tc = tcase_create("rules_and_signing_table_exclude_each_other");
	tcase_add_test(tc, rules_and_signing_table_exclude_each_other);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
