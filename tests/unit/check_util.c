/*
 * check_util - util/: number parsing and duration formatting, CIDR
 * matching, buffers.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/cidr.h"
#include "util/parse.h"

static const struct {
	const char *in;
	int ok;
	uint64_t want;
} durations[] = {
	{ "0", 1, 0 }, { "90", 1, 90 }, { "15m", 1, 900 }, { "1h", 1, 3600 },
	{ "2d", 1, 172800 }, { "1w", 1, 604800 }, { "1H", 1, 3600 },
	{ "", 0, 0 }, { "h", 0, 0 }, { "1x", 0, 0 }, { "1hh", 0, 0 },
	{ "-1", 0, 0 }, { "99999999999999999999", 0, 0 },
	{ "18446744073709551615w", 0, 0 },
};

START_TEST(duration_parses_units_and_rejects_junk)
{
	uint64_t v = 12345;
	char err[128];
	int rc = parse_duration(durations[_i].in, &v, err, sizeof(err));

	ck_assert_msg((rc == 0) == durations[_i].ok,
	    "\"%s\": got rc %d, want ok=%d", durations[_i].in, rc,
	    durations[_i].ok);
	if (durations[_i].ok)
		ck_assert_msg(v == durations[_i].want,
		    "\"%s\": got %llu, want %llu", durations[_i].in,
		    (unsigned long long)v,
		    (unsigned long long)durations[_i].want);
}
END_TEST

static const struct {
	uint64_t in;
	const char *want;
} formatted[] = {
	{ 0, "0s" }, { 1, "1s" }, { 45, "45s" }, { 60, "1m" }, { 90, "90s" },
	{ 900, "15m" }, { 3600, "1h" }, { 5400, "90m" }, { 86400, "1d" },
	{ 90000, "25h" }, { 86401, "86401s" }, { 604800, "7d" },
	{ UINT64_MAX, "18446744073709551615s" },
};

START_TEST(duration_formats_in_exact_units_and_parses_back)
{
	uint64_t back = 0;
	char out[32], err[128];

	ck_assert_int_eq(fmt_duration(formatted[_i].in, out, sizeof(out)), 0);
	ck_assert_msg(strcmp(out, formatted[_i].want) == 0,
	    "%llu: got \"%s\", want \"%s\"",
	    (unsigned long long)formatted[_i].in, out, formatted[_i].want);
	ck_assert_int_eq(parse_duration(out, &back, err, sizeof(err)), 0);
	ck_assert_msg(back == formatted[_i].in, "\"%s\": got %llu, want %llu",
	    out, (unsigned long long)back,
	    (unsigned long long)formatted[_i].in);
}
END_TEST

START_TEST(duration_format_reports_truncation)
{
	char out[3];

	ck_assert_int_eq(fmt_duration(10 * 86400, out, sizeof(out)), -1);
	ck_assert_msg(strcmp(out, "10") == 0, "got \"%s\", want \"10\"", out);
	ck_assert_int_eq(fmt_duration(9 * 86400, out, sizeof(out)), 0);
	ck_assert_msg(strcmp(out, "9d") == 0, "got \"%s\", want \"9d\"", out);
}
END_TEST

START_TEST(u64_enforces_range)
{
	uint64_t v;
	char err[128];

	ck_assert_int_eq(parse_u64("1024", 1024, 65536, &v, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(v, 1024);
	ck_assert_int_eq(parse_u64("1023", 1024, 65536, &v, err, sizeof(err)),
	    -1);
	ck_assert_msg(strstr(err, "out of range") != NULL, "got \"%s\"", err);
	ck_assert_int_eq(parse_size("2k", &v, err, sizeof(err)), 0);
	ck_assert_uint_eq(v, 2048);
}
END_TEST

static const struct {
	const char *net;
	const char *addr;
	int match;
} cidrs[] = {
	{ "127.0.0.0/8", "127.0.0.1", 1 },
	{ "127.0.0.0/8", "128.0.0.1", 0 },
	{ "127.0.0.0/8", "::ffff:127.0.0.2", 1 },
	{ "10.1.2.0/24", "10.1.2.255", 1 },
	{ "10.1.2.0/24", "10.1.3.0", 0 },
	{ "192.0.2.1", "192.0.2.1", 1 },
	{ "192.0.2.1", "192.0.2.2", 0 },
	{ "::1/128", "::1", 1 },
	{ "::1/128", "127.0.0.1", 0 },
	{ "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "2001:db8::/33", "2001:db8:8000::1", 0 },
	{ "0.0.0.0/0", "203.0.113.9", 1 },
	{ "10.0.0.0/9", "10.127.255.255", 1 },
	{ "10.0.0.0/9", "10.128.0.0", 0 },
	{ "::1/128", "IPv6:::1", 1 },
	{ "::1/128", "[::1]", 1 },
};

START_TEST(cidr_matches_v4_v6_and_mapped)
{
	struct cidr c;
	uint8_t a[16];
	char err[128];

	ck_assert_int_eq(cidr_parse(cidrs[_i].net, &c, err, sizeof(err)), 0);
	ck_assert_int_eq(cidr_addr_parse(cidrs[_i].addr, a), 0);
	ck_assert_msg(cidr_match(&c, a) == cidrs[_i].match,
	    "%s in %s: got %d, want %d", cidrs[_i].addr, cidrs[_i].net,
	    !cidrs[_i].match, cidrs[_i].match);
}
END_TEST

START_TEST(cidr_rejects_bad_networks)
{
	static const char *bad[] = { "", "10.0.0.0/33", "::/129", "10.0.0/8",
		"example.com", "10.0.0.0/x", "1.2.3.4/-1" };
	struct cidr c;
	char err[128];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(cidr_parse(bad[i], &c, err, sizeof(err)) == -1,
		    "\"%s\": got accepted, want an error", bad[i]);
}
END_TEST

START_TEST(buf_grows_and_formats)
{
	struct buf b = BUF_INIT;
	char *s;
	int i;

	ck_assert_str_eq(buf_cstr(&b), "");
	for (i = 0; i < 1000; i++)
		buf_appendf(&b, "%d,", i);
	ck_assert_uint_eq(b.len, strlen(b.data));
	ck_assert(strncmp(b.data, "0,1,2,", 6) == 0);
	buf_truncate(&b, 2);
	ck_assert_str_eq(b.data, "0,");
	buf_append(&b, "x\0y", 3);
	ck_assert_uint_eq(b.len, 5);
	s = buf_steal(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_int_eq(memcmp(s, "0,x\0y", 6), 0);
	free(s);
	buf_free(&b);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("util");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("duration_parses_units_and_rejects_junk");
	tcase_add_loop_test(tc, duration_parses_units_and_rejects_junk, 0,
	    sizeof(durations) / sizeof(durations[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("duration_formats_in_exact_units_and_parses_back");
	tcase_add_loop_test(tc,
	    duration_formats_in_exact_units_and_parses_back, 0,
	    sizeof(formatted) / sizeof(formatted[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("duration_format_reports_truncation");
	tcase_add_test(tc, duration_format_reports_truncation);
	suite_add_tcase(s, tc);
	tc = tcase_create("u64_enforces_range");
	tcase_add_test(tc, u64_enforces_range);
	suite_add_tcase(s, tc);
	tc = tcase_create("cidr_matches_v4_v6_and_mapped");
	tcase_add_loop_test(tc, cidr_matches_v4_v6_and_mapped, 0,
	    sizeof(cidrs) / sizeof(cidrs[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("cidr_rejects_bad_networks");
	tcase_add_test(tc, cidr_rejects_bad_networks);
	suite_add_tcase(s, tc);
	tc = tcase_create("buf_grows_and_formats");
	tcase_add_test(tc, buf_grows_and_formats);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
