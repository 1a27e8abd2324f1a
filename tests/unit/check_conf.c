/*
 * check_conf - conf/: good files load, broken files fail with the file
 * and line at fault.
 */
#include "config.h"

#include <check.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	{ "unknown log facility names its line",
	  "log = {\n verbose = true;\n facility = \"mial\";\n};\n", 3,
	  "\"facility\" \"mial\" is unknown" },
	{ "log facility local3", "log = { facility = \"local3\"; };", 0,
	  NULL },
	{ "inet socket without an address is refused",
	  "milter = {\n socket = \"inet:8891\";\n};\n", 2,
	  "\"inet:8891\" names no address: write \"inet:8891@127.0.0.1\"" },
	{ "inet socket with an empty address is refused",
	  "milter = { socket = \"inet:8891@\"; };", 1, "names no address" },
	{ "inet6 socket without an address is refused",
	  "milter = { socket = \"inet6:8891\"; };", 1,
	  "write \"inet6:8891@::1\"" },
	{ "every interface when asked for",
	  "milter = { socket = \"inet:8891@0.0.0.0\"; };", 0, NULL },
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
	{ "on_oversized accept",
	  "dkim = { on_oversized = \"accept\"; };", 0, NULL },
	{ "on_oversized tempfail not allowed",
	  "dkim = { on_oversized = \"tempfail\"; };", 1,
	  "\"on_oversized\" must be accept or reject" },
	{ "header name with ';' refused",
	  "dkim = { headers = [ \"From\", \"X;Y\" ]; };", 1,
	  "\"X;Y\" is not a header field name" },
	{ "oversigned name with a space refused",
	  "dkim = { oversign = [ \"Fr om\" ]; };", 1,
	  "\"oversign\": \"Fr om\"" },
	{ "store sync always",
	  "store = { sync = \"always\"; sync_interval = \"5s\"; };", 0, NULL },
	{ "store sync junk",
	  "store = {\n sync = \"sometimes\";\n};", 2, "unknown value" },
	{ "store sync_interval zero",
	  "store = { sync_interval = 0; };", 1, "sync_interval" },
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
	{ "quota sections of the issue load",
	  "store = { backend = \"lmdb\"; path = \"/tmp/q.lmdb\"; "
	  "map_size = \"64m\"; on_error = \"accept\"; reserve_ttl = \"5m\"; "
	  "timeout = \"250ms\"; };\n"
	  "limits = (\n"
	  " { name = \"login-hourly\"; key = \"sasl_username\"; count = "
	  "\"recipients\"; kind = \"window\"; limit = 500; period = \"1h\"; "
	  "action = \"defer\"; },\n"
	  " { name = \"login-daily\"; key = \"sasl_username\"; count = "
	  "\"recipients\"; kind = \"calendar\"; limit = 10000; period = "
	  "\"day\"; timezone = \"Europe/Berlin\"; },\n"
	  " { name = \"login-burst\"; key = \"sasl_username\"; count = "
	  "\"messages\"; kind = \"rate\"; limit = 60; period = \"1m\"; "
	  "burst = 20; },\n"
	  " { name = \"net\"; key = \"client_network/16\"; prefix6 = 48; "
	  "count = \"bytes\"; limit = \"10g\"; period = \"1d\"; "
	  "buckets = 24; action = \"warn\"; reply = \"${key} over ${limit}\"; }\n"
	  ");\n"
	  "overrides = ( { limit = \"login-daily\"; key = "
	  "\"newsletter@example.com\"; value = 200000; },\n"
	  " { limit = \"login-burst\"; key = \"bulk\"; value = "
	  "\"unlimited\"; } );\n"
	  "exempt = { networks = [ \"10.1.2.0/24\" ]; logins = "
	  "[ \"monitoring\" ]; };\n", 0, NULL },
	{ "unknown limit setting",
	  "limits = (\n { name = \"a\"; key = \"global\"; count = "
	  "\"messages\"; limit = 1; period = \"1h\"; burts = 2; }\n);", 2,
	  "unknown setting \"limits.burts\"" },
	{ "duplicate limit name",
	  "limits = (\n { name = \"a\"; key = \"global\"; count = "
	  "\"messages\"; limit = 1; period = \"1h\"; },\n"
	  " { name = \"a\"; key = \"sender\"; count = \"messages\"; "
	  "limit = 1; period = \"1h\"; }\n);", 3, "duplicate limit name" },
	{ "unknown limit key",
	  "limits = (\n { name = \"a\";\n key = \"helo\"; count = "
	  "\"messages\"; limit = 1; period = \"1h\"; }\n);", 3,
	  "unknown value \"helo\"" },
	{ "client_network prefix out of range",
	  "limits = ( { name = \"a\"; key = \"client_network/33\"; count = "
	  "\"messages\"; limit = 1; period = \"1h\"; } );", 1,
	  "IPv4 prefix" },
	{ "prefix on a non-network key",
	  "limits = ( { name = \"a\"; key = \"sender\"; prefix = 24; count = "
	  "\"messages\"; limit = 1; period = \"1h\"; } );", 1,
	  "for key client_network" },
	{ "limit without count",
	  "limits = ( { name = \"a\"; key = \"sender\"; limit = 1; "
	  "period = \"1h\"; } );", 1, "needs count" },
	{ "limit of zero",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\";\n limit = 0; period = \"1h\"; } );", 2,
	  "\"limit\" must be in 1.." },
	{ "calendar period is day or month",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; kind = \"calendar\"; limit = 5;\n period = "
	  "\"1w\"; } );", 2, "\"day\" or \"month\"" },
	{ "timezone only for calendar",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; limit = 5; period = \"1h\";\n timezone = "
	  "\"UTC\"; } );", 2, "for calendar limits" },
	{ "unknown time zone",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; kind = \"calendar\"; limit = 5; period = \"day\";"
	  "\n timezone = \"Europe/Atlantis\"; } );", 2,
	  "unknown time zone \"Europe/Atlantis\"" },
	{ "burst only for rate",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; limit = 5; period = \"1h\";\n burst = 3; } );", 2,
	  "for rate limits" },
	{ "buckets must cut the period in whole seconds",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; limit = 5; period = \"90s\";\n buckets = 60; } );",
	  2, "whole seconds" },
	{ "unknown action",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; limit = 5; period = \"1h\"; action = \"drop\"; "
	  "} );", 1, "unknown value \"drop\"" },
	{ "reply with unknown field",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; limit = 5; period = \"1h\";\n reply = "
	  "\"over ${quota}\"; } );", 2, "unknown field ${quota}" },
	{ "override of unknown limit",
	  "overrides = (\n { limit = \"nope\"; key = \"x\"; value = 1; }\n"
	  ");", 2, "unknown limit \"nope\"" },
	{ "override value neither number nor unlimited",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; limit = 5; period = \"1h\"; } );\n"
	  "overrides = ( { limit = \"a\"; key = \"x\"; value = \"lots\"; "
	  "} );", 2, "value" },
	{ "duplicate override",
	  "limits = ( { name = \"a\"; key = \"sender\"; count = "
	  "\"messages\"; limit = 5; period = \"1h\"; } );\n"
	  "overrides = ( { limit = \"a\"; key = \"x\"; value = 1; },\n"
	  " { limit = \"a\"; key = \"x\"; value = 2; } );", 3,
	  "duplicate override" },
	{ "unknown store backend",
	  "store = { backend = \"sqlite\"; };", 1, "unknown value" },
	{ "store on_error reject not allowed",
	  "store = { on_error = \"reject\"; };", 1, "unknown value" },
	{ "store url scheme",
	  "store = { backend = \"redis\";\n url = \"http://x/\"; };", 2,
	  "redis://" },
	{ "unknown store setting",
	  "store = { ttl = 5; };", 1, "unknown setting \"store.ttl\"" },
	{ "bad exempt network",
	  "exempt = { networks = [ \"10.0.0.0/99\" ]; };", 1,
	  "exempt.networks" },
	{ "spf pool bound and inbound limits",
	  "spf = { workers = 4; max_workers = 32;\n inbound = { "
	  "max_per_client = 0; max_per_domain = 2; }; };", 0, NULL },
	{ "spf many workers raise the default bound",
	  "spf = { workers = 40; };", 0, NULL },
	{ "spf max_workers below workers",
	  "spf = { workers = 4;\n max_workers = 3; };", 2,
	  "\"spf.max_workers\" must be at least spf.workers (4)" },
	{ "deliverability actions and timeout",
	  "deliverability = { dmarc = \"reject\"; bulk = \"off\"; "
	  "dns_timeout = \"250ms\"; };", 0, NULL },
	{ "deliverability action unknown",
	  "deliverability = {\n dmarc = \"tempfail\"; };", 2,
	  "unknown value \"tempfail\"" },
	{ "deliverability dns_timeout over a minute",
	  "deliverability = {\n dns_timeout = \"2m\"; };", 2,
	  "dns_timeout" },
	{ "deliverability bulk_recipients without bulk_limit",
	  "deliverability = {\n bulk_recipients = 500; };", 2,
	  "needs deliverability.bulk_limit" },
	{ "deliverability bulk_limit counts messages",
	  "limits = ( { name = \"m\"; key = \"sender\"; count = "
	  "\"messages\"; limit = 5; period = \"1h\"; } );\n"
	  "deliverability = { bulk_recipients = 500;\n bulk_limit = \"m\"; };",
	  3, "does not count recipients" },
	{ "deliverability bulk_limit unknown",
	  "deliverability = { bulk_recipients = 500;\n bulk_limit = \"x\"; };",
	  2, "\"x\" is no limit" },
	{ "deliverability bulk_limit counting recipients",
	  "limits = ( { name = \"r\"; key = \"sender_domain\"; count = "
	  "\"recipients\"; kind = \"calendar\"; period = \"day\"; "
	  "limit = 9999; action = \"warn\"; } );\n"
	  "deliverability = { bulk_recipients = 500; bulk_limit = \"r\"; };",
	  0, NULL },
	{ "spf max_per_domain out of range",
	  "spf = { inbound = {\n max_per_domain = 5000; }; };", 2,
	  "max_per_domain" },
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
	ck_assert_int_eq(c->dkim.on_oversized, CONF_ON_ERROR_REJECT);
	ck_assert_int_eq(c->dkim.engine, CONF_ENGINE_NATIVE);
	ck_assert_int_eq(c->deliverability.dmarc, CONF_DCHECK_WARN);
	ck_assert_int_eq(c->deliverability.bulk, CONF_DCHECK_WARN);
	ck_assert_uint_eq(c->deliverability.dns_timeout_ms, 5000);
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

/*
 * host_check_users_and_keys - conf_check_host names a missing user and a
 * key file that milter.user cannot read, and passes one it can
 */
START_TEST(host_check_users_and_keys)
{
	char err[512], text[1024], key[] = "/tmp/check_conf_key.XXXXXX";
	struct passwd *me = getpwuid(getuid());
	struct conf *c;
	char *path;
	int fd;

	ck_assert_ptr_nonnull(me);
	ck_assert_int_ge(fd = mkstemp(key), 0);
	close(fd);
	ck_assert_int_eq(chmod(key, 0600), 0);

	path = write_tmp("milter = { user = \"no-such-outpost-user\"; };");
	ck_assert_ptr_nonnull(c = conf_load(path, err, sizeof(err)));
	ck_assert_int_eq(conf_check_host(c, CONF_HOST_MILTER, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "milter.user: no user "
	    "\"no-such-outpost-user\"") != NULL, "got \"%s\"", err);
	ck_assert_int_eq(conf_check_host(c, CONF_HOST_POLICYD, err,
	    sizeof(err)), 0);
	conf_free(c);
	unlink(path);
	free(path);

	path = write_tmp("policyd = { user = \"no-such-outpost-user\"; };");
	ck_assert_ptr_nonnull(c = conf_load(path, err, sizeof(err)));
	ck_assert_int_eq(conf_check_host(c, CONF_HOST_POLICYD, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "policyd.user") != NULL, "got \"%s\"",
	    err);
	conf_free(c);
	unlink(path);
	free(path);

	/* A key of ours, mode 0600: nobody cannot read it, we can. */
	snprintf(text, sizeof(text), "milter = { user = \"%s\"; };\n"
	    "dkim = { keys = ( { name = \"k\"; domain = \"example.com\"; "
	    "selector = \"s\"; file = \"%s\"; } ); };", getuid() == 0 ?
	    "nobody" : "root", key);
	path = write_tmp(text);
	ck_assert_ptr_nonnull(c = conf_load(path, err, sizeof(err)));
	ck_assert_int_eq(conf_check_host(c, CONF_HOST_MILTER, err,
	    sizeof(err)), getuid() == 0 ? -1 : 0);
	if (getuid() == 0)
		ck_assert_msg(strstr(err, "cannot read") != NULL &&
		    strstr(err, key) != NULL, "got \"%s\"", err);
	conf_free(c);
	unlink(path);
	free(path);

	snprintf(text, sizeof(text), "milter = { user = \"%s\"; };\n"
	    "dkim = { keys = ( { name = \"k\"; domain = \"example.com\"; "
	    "selector = \"s\"; file = \"%s\"; } ); };", me->pw_name, key);
	path = write_tmp(text);
	ck_assert_ptr_nonnull(c = conf_load(path, err, sizeof(err)));
	ck_assert_msg(conf_check_host(c, CONF_HOST_MILTER, err,
	    sizeof(err)) == 0, "got \"%s\"", err);
	conf_free(c);
	unlink(path);
	free(path);
	unlink(key);
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
	tc = tcase_create("host_check_users_and_keys");
	tcase_add_test(tc, host_check_users_and_keys);
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
