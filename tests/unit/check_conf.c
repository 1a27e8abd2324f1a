/*
 * check_conf - conf/: good files load, broken files fail with the file
 * and line at fault.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"

/* write_tmp - text into a new temporary file; returns its path (free) */
static char *
write_tmp(const char *text)
{
	char *path = strdup("/tmp/check_conf.XXXXXX");
	int fd = mkstemp(path);
	size_t n = strlen(text);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	return path;
}

static const struct {
	const char *name;
	const char *text;
	int line;		/* 0: must load */
	const char *want;	/* substring of the error */
} cases[] = {
	{ "empty file takes defaults", "", 0, NULL },
	{ "full milter group",
	  "milter = { socket = \"inet:8891@127.0.0.1\"; on_error = "
	  "\"accept\"; timeout = \"2m\"; backlog = 64; user = \"nobody\"; };",
	  0, NULL },
	{ "syntax error names line",
	  "milter = {\n socket = \"unix:/x\";\n timeout = ;\n};\n", 3,
	  "syntax error" },
	{ "unknown top-level setting",
	  "\n\nmiltr = { };\n", 3, "unknown setting \"miltr\"" },
	{ "unknown nested setting",
	  "milter = {\n  sokcet = \"unix:/x\";\n};\n", 2,
	  "unknown setting \"milter.sokcet\"" },
	{ "bad socket",
	  "milter = {\n socket = \"/run/x.sock\";\n};\n", 2, "socket" },
	{ "on_error reject not allowed",
	  "milter = { on_error = \"reject\"; };", 1, "tempfail or accept" },
	{ "on_error junk",
	  "milter = { on_error = \"maybe\"; };", 1, "unknown value" },
	{ "timeout out of range",
	  "milter = { timeout = 0; };", 1, "timeout" },
	{ "bad network",
	  "trusted = {\n networks = [ \"127.0.0.0/8\", \"10.0.0.0/40\" ];\n};",
	  2, "out of range" },
	{ "networks not a list",
	  "trusted = { networks = \"127.0.0.1\"; };", 1, "must be a list" },
	{ "authenticated not bool",
	  "trusted = { authenticated = \"yes\"; };", 1, "true or false" },
	{ "key without file",
	  "dkim = { keys = (\n { name = \"a\"; domain = \"x.org\"; "
	  "selector = \"s\"; }\n); };", 2, "needs name, domain" },
	{ "duplicate key name",
	  "dkim = { keys = (\n"
	  " { name = \"a\"; domain = \"x.org\"; selector = \"s\"; file = \"/k\"; },\n"
	  " { name = \"a\"; domain = \"y.org\"; selector = \"s\"; file = \"/k\"; }\n"
	  "); };", 3, "duplicate key name" },
	{ "unknown algorithm",
	  "dkim = { keys = ( { name = \"a\"; domain = \"x.org\"; selector = "
	  "\"s\"; file = \"/k\"; algorithm = \"rsa-sha1\"; } ); };", 1,
	  "unknown value \"rsa-sha1\"" },
	{ "rule names unknown key",
	  "dkim = {\n keys = ( { name = \"a\"; domain = \"x.org\"; selector ="
	  " \"s\"; file = \"/k\"; } );\n signing = (\n  { match = \"*@x.org\";"
	  " keys = [ \"a\", \"b\" ]; }\n );\n};", 4, "unknown key \"b\"" },
	{ "rule without keys",
	  "dkim = { signing = ( { match = \"*\"; } ); };", 1,
	  "needs match and keys" },
	{ "key_table without signing_table",
	  "dkim = { key_table = \"/etc/KeyTable\"; };", 1, "go together" },
	{ "bad canonicalization",
	  "dkim = { canonicalization = \"relaxed/loose\"; };", 1,
	  "canonicalization" },
	{ "on_malformed tempfail not allowed",
	  "dkim = { on_malformed = \"tempfail\"; };", 1, "accept or reject" },
	{ "socket mode not octal",
	  "milter = {\n socket_mode = \"660\";\n};", 2, "octal mode" },
	{ "socket mode too large",
	  "milter = { socket_mode = \"01777\"; };", 1, "octal mode" },
	{ "socket mode and group",
	  "milter = { socket_mode = \"0600\"; socket_group = \"postfix\"; };",
	  0, NULL },
	{ "empty string",
	  "milter = { socket = \"\"; };", 1, "must not be empty" },
	{ "include of missing file",
	  "@include \"/nonexistent/outpost.conf\"\n", 1, "" },
};

START_TEST(file_loads_or_names_line)
{
	char err[512], where[64];
	char *path = write_tmp(cases[_i].text);
	struct conf *c = conf_load(path, err, sizeof(err));

	if (cases[_i].line == 0) {
		ck_assert_msg(c != NULL, "%s: got error \"%s\", want success",
		    cases[_i].name, err);
	} else {
		ck_assert_msg(c == NULL, "%s: got success, want error",
		    cases[_i].name);
		snprintf(where, sizeof(where), "%s:%d: ", path, cases[_i].line);
		ck_assert_msg(strncmp(err, where, strlen(where)) == 0,
		    "%s: got \"%s\", want prefix \"%s\"", cases[_i].name, err,
		    where);
		ck_assert_msg(strstr(err, cases[_i].want) != NULL,
		    "%s: got \"%s\", want \"%s\" in it", cases[_i].name, err,
		    cases[_i].want);
	}
	conf_free(c);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(defaults_are_documented_values)
{
	char err[512];
	char *path = write_tmp("");
	struct conf *c = conf_load(path, err, sizeof(err));

	ck_assert_ptr_nonnull(c);
	ck_assert_str_eq(c->milter.socket, "unix:/run/outpost/milter.sock");
	ck_assert_int_eq(c->milter.on_error, CONF_ON_ERROR_TEMPFAIL);
	ck_assert_int_eq(c->trusted.authenticated, 1);
	ck_assert_uint_eq(c->trusted.nnetworks, 2);
	ck_assert_int_eq(c->dkim.canon_header, CONF_CANON_RELAXED);
	ck_assert_int_eq(c->dkim.canon_body, CONF_CANON_RELAXED);
	ck_assert_uint_eq(c->dkim.nheaders, 25);
	ck_assert_str_eq(c->dkim.headers[0], "From");
	ck_assert_uint_eq(c->dkim.noversign, 1);
	ck_assert_str_eq(c->dkim.oversign[0], "From");
	ck_assert_int_eq(c->dkim.on_malformed, CONF_ON_ERROR_ACCEPT);
	ck_assert_int_eq(c->dkim.engine, CONF_ENGINE_NATIVE);
	conf_free(c);
	unlink(path);
	free(path);
}
END_TEST

START_TEST(missing_file_is_named)
{
	char err[512];

	ck_assert_ptr_null(conf_load("/nonexistent/outpost.conf", err,
	    sizeof(err)));
	ck_assert_msg(strstr(err, "/nonexistent/outpost.conf") != NULL,
	    "got \"%s\"", err);
}
END_TEST

START_TEST(example_file_loads_with_every_section)
{
	char err[512], path[1024];
	struct conf *c;

	snprintf(path, sizeof(path), "%s/conf/outpost.conf", TOP_SRCDIR);
	c = conf_load(path, err, sizeof(err));
	ck_assert_msg(c != NULL, "got \"%s\", want the example to load", err);
	ck_assert_uint_eq(c->dkim.nkeys, 2);
	ck_assert_uint_eq(c->dkim.nrules, 1);
	ck_assert_uint_eq(c->dkim.rules[0].nkeys, 2);
	ck_assert_int_eq(c->dkim.keys[1].alg, CONF_ALG_ED25519_SHA256);
	conf_free(c);
}
END_TEST

START_TEST(opendkim_tables_and_options)
{
	char err[512];
	char *path = write_tmp("dkim = { key_table = \"file:/etc/KT\";\n"
	    "signing_table = \"refile:/etc/ST\"; multiple_signatures = true;\n"
	    "canonicalization = \"simple\"; engine = \"libopendkim\";\n"
	    "headers = [ \"From\", \"To\" ]; oversign = [ ]; };\n");
	struct conf *c = conf_load(path, err, sizeof(err));

	ck_assert_msg(c != NULL, "got \"%s\"", err);
	ck_assert_str_eq(c->dkim.key_table, "file:/etc/KT");
	ck_assert_str_eq(c->dkim.signing_table, "refile:/etc/ST");
	ck_assert_int_eq(c->dkim.multiple_signatures, 1);
	ck_assert_int_eq(c->dkim.canon_header, CONF_CANON_SIMPLE);
	ck_assert_int_eq(c->dkim.canon_body, CONF_CANON_SIMPLE);
	ck_assert_int_eq(c->dkim.engine, CONF_ENGINE_OPENDKIM);
	ck_assert_uint_eq(c->dkim.nheaders, 2);
	ck_assert_uint_eq(c->dkim.noversign, 0);
	conf_free(c);
	unlink(path);
	free(path);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("file_loads_or_names_line");
	tcase_add_loop_test(tc, file_loads_or_names_line, 0,
	    sizeof(cases) / sizeof(cases[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("defaults_are_documented_values");
	tcase_add_test(tc, defaults_are_documented_values);
	suite_add_tcase(s, tc);
	tc = tcase_create("missing_file_is_named");
	tcase_add_test(tc, missing_file_is_named);
	suite_add_tcase(s, tc);
	tc = tcase_create("example_file_loads_with_every_section");
	tcase_add_test(tc, example_file_loads_with_every_section);
	suite_add_tcase(s, tc);
	tc = tcase_create("opendkim_tables_and_options");
	tcase_add_test(tc, opendkim_tables_and_options);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
