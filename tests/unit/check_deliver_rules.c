/*
 * check_deliver_rules - milter/deliver_rules: what counts as bulk, what
 * a bulk message lacks, the Message-ID, Date, List-Unsubscribe and
 * List-Unsubscribe-Post syntax, the names and fixes reported.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "milter/deliver_rules.h"

static const struct {
	const char *v;
	int ok;
} msgids[] = {
	{ "<a.b@example.com>", 1 },
	{ " <x-1+y@[192.0.2.1]> ", 1 },
	{ "\n\t<abc@mail.example>", 1 },
	{ "a.b@example.com", 0 },		/* no brackets */
	{ "<a.b.example.com>", 0 },		/* no @ */
	{ "<a..b@example.com>", 0 },		/* empty atom */
	{ "<a b@example.com>", 0 },
	{ "<a@example.com> junk", 0 },
	{ "<@example.com>", 0 },
	{ "<a@>", 0 },
	{ "", 0 },
};

START_TEST(msgid_syntax)
{
	ck_assert_msg(rules_msgid_ok(msgids[_i].v) == msgids[_i].ok,
	    "\"%s\": got %d, want %d", msgids[_i].v, !msgids[_i].ok,
	    msgids[_i].ok);
}
END_TEST

static const struct {
	const char *v;
	int ok;
} dates[] = {
	{ "Sun, 06 Dec 2026 19:51:02 +0000", 1 },
	{ "6 Dec 2026 19:51 -0800", 1 },
	{ " Sun, 6 Dec 2026 19:51:02 +0100 (CET)", 1 },
	{ "Sun,\n\t06 Dec 2026 19:51:02 GMT", 1 },
	{ "06 dec 26 19:51:02 EST", 1 },
	{ "2026-12-06T19:51:02Z", 0 },		/* ISO 8601 */
	{ "Sun, 06 Dec 2026 19:51:02", 0 },	/* no zone */
	{ "Sun, 32 Dec 2026 19:51:02 +0000", 0 },
	{ "Sun, 06 Dez 2026 19:51:02 +0000", 0 },
	{ "Sun, 06 Dec 2026 24:00:00 +0000", 0 },
	{ "Sun 06 Dec 2026 19:51:02 +0000", 0 },	/* no comma */
	{ "Sun, 06 Dec 2026 19:51:02 +000", 0 },
	{ "", 0 },
};

START_TEST(date_syntax)
{
	ck_assert_msg(rules_date_ok(dates[_i].v) == dates[_i].ok,
	    "\"%s\": got %d, want %d", dates[_i].v, !dates[_i].ok,
	    dates[_i].ok);
}
END_TEST

START_TEST(unsubscribe_needs_https_and_one_click)
{
	ck_assert_int_eq(rules_unsub_https("<https://ex.com/u?x=1>"), 1);
	ck_assert_int_eq(rules_unsub_https("<mailto:u@ex.com>, "
	    "<HTTPS://ex.com/u>"), 1);
	ck_assert_int_eq(rules_unsub_https("<mailto:u@ex.com>"), 0);
	ck_assert_int_eq(rules_unsub_https("<http://ex.com/u>"), 0);
	ck_assert_int_eq(rules_unsub_https("https://ex.com/u"), 0);
	ck_assert_int_eq(rules_unsub_https("<https://>"), 0);
	ck_assert_int_eq(rules_one_click(" List-Unsubscribe=One-Click"), 1);
	ck_assert_int_eq(rules_one_click("List-Unsubscribe=One-Click x"), 0);
	ck_assert_int_eq(rules_one_click("List-Unsubscribe"), 0);
}
END_TEST

#define GOOD_ID	{ "Message-ID", "<1@example.com>" }
#define GOOD_DATE { "Date", "Sun, 06 Dec 2026 19:51:02 +0000" }

START_TEST(bulk_detection)
{
	const struct rules_field plain[] = { { "From", "a@example.com" },
		GOOD_ID, GOOD_DATE, { "Precedence", "junk" } };
	const struct rules_field listid[] = { { "List-Id", "<n.example.com>" },
		GOOD_ID, GOOD_DATE };
	const struct rules_field prec[] = { { "Precedence", " Bulk" } };
	const struct rules_field prec2[] = { { "precedence", "list" } };
	struct rules_bulk r;

	rules_bulk(plain, 4, &r);
	ck_assert_msg(!r.bulk && r.missing == (RULES_NO_HTTPS_UNSUB |
	    RULES_NO_ONE_CLICK), "plain: bulk %d missing %x", r.bulk,
	    r.missing);
	rules_bulk(listid, 3, &r);
	ck_assert_msg(r.bulk && strcmp(r.why, "list-id") == 0 &&
	    r.missing == (RULES_NO_HTTPS_UNSUB | RULES_NO_ONE_CLICK),
	    "List-Id: got bulk %d why %s missing %x", r.bulk, r.why,
	    r.missing);
	rules_bulk(prec, 1, &r);
	ck_assert_msg(r.bulk && strcmp(r.why, "precedence") == 0 &&
	    r.missing == (RULES_NO_HTTPS_UNSUB | RULES_NO_ONE_CLICK |
	    RULES_BAD_MESSAGE_ID | RULES_BAD_DATE), "Precedence: got %x",
	    r.missing);
	rules_bulk(prec2, 1, &r);
	ck_assert_int_eq(r.bulk, 1);
}
END_TEST

START_TEST(bulk_with_everything_passes)
{
	const struct rules_field f[] = {
		{ "List-Unsubscribe", "<mailto:u@ex.com>, <https://ex.com/u>" },
		{ "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
		GOOD_ID, GOOD_DATE };
	const struct rules_field twodates[] = {
		{ "List-Unsubscribe", "<https://ex.com/u>" },
		{ "List-Unsubscribe-Post", "List-Unsubscribe=One-Click" },
		GOOD_ID, GOOD_DATE, GOOD_DATE };
	struct rules_bulk r;

	rules_bulk(f, 4, &r);
	ck_assert_msg(r.bulk && strcmp(r.why, "list-unsubscribe") == 0 &&
	    r.missing == 0, "got bulk %d why %s missing %x", r.bulk, r.why,
	    r.missing);
	rules_bulk(twodates, 5, &r);
	ck_assert_msg(r.missing == RULES_BAD_DATE, "two Dates: got %x",
	    r.missing);
}
END_TEST

START_TEST(names_and_fixes)
{
	char buf[512], small[12];

	rules_missing_names(RULES_NO_ONE_CLICK | RULES_NO_DMARC, buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, "one-click,dmarc-record");
	rules_missing_names(0, buf, sizeof(buf));
	ck_assert_str_eq(buf, "");
	rules_missing_fix(RULES_NO_ONE_CLICK | RULES_NO_DMARC, "ex.com", buf,
	    sizeof(buf));
	ck_assert_str_eq(buf, "add List-Unsubscribe-Post: "
	    "List-Unsubscribe=One-Click; publish _dmarc.ex.com TXT "
	    "\"v=DMARC1; p=none\"");
	rules_missing_fix(RULES_NO_ONE_CLICK, "ex.com", small, sizeof(small));
	ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

/* a record as dmarc_lookup gives it */
static struct dmarc_record
rec(enum dmarc_policy p, enum dmarc_policy sp, char adkim, char aspf,
    const char *where)
{
	struct dmarc_record r;

	memset(&r, 0, sizeof(r));
	r.p = p;
	r.sp = sp;
	r.adkim = adkim;
	r.aspf = aspf;
	snprintf(r.where, sizeof(r.where), "%s", where);
	return r;
}

START_TEST(dmarc_policy_of_subdomain_is_sp)
{
	struct dmarc_record r = rec(DMARC_P_REJECT, DMARC_P_NONE, 'r', 'r',
	    "example.com");

	ck_assert_int_eq(rules_dmarc_policy(&r, "example.com"),
	    DMARC_P_REJECT);
	ck_assert_int_eq(rules_dmarc_policy(&r, "EXAMPLE.com"),
	    DMARC_P_REJECT);
	ck_assert_int_eq(rules_dmarc_policy(&r, "news.example.com"),
	    DMARC_P_NONE);
}
END_TEST

static const struct {
	const char *name;
	char adkim, aspf;
	const char *from;
	const char *d;			/* our signature's d=, or NULL */
	const char *mailfrom;
	int spf_pass;
	enum rules_align want;
} aligns[] = {
	{ "relaxed d= of the org domain", 'r', 'r', "news.example.com",
	  "example.com", NULL, 0, RULES_ALIGN_DKIM },
	{ "strict d= of the org domain", 's', 'r', "news.example.com",
	  "example.com", NULL, 0, RULES_ALIGN_NONE },
	{ "strict d= the same", 's', 's', "example.com", "EXAMPLE.COM",
	  NULL, 0, RULES_ALIGN_DKIM },
	{ "d= of another domain", 'r', 'r', "example.com", "esp.example.net",
	  "bounce.example.com", 0, RULES_ALIGN_NONE },
	{ "no signature, SPF passes, relaxed", 'r', 'r', "example.com",
	  NULL, "bounce.example.com", 1, RULES_ALIGN_SPF },
	{ "no signature, SPF passes, strict", 'r', 's', "example.com", NULL,
	  "bounce.example.com", 1, RULES_ALIGN_NONE },
	{ "no signature, aligned MAIL FROM, SPF fails", 'r', 'r',
	  "example.com", NULL, "example.com", 0, RULES_ALIGN_NONE },
	{ "no signature, null sender", 'r', 'r', "example.com", NULL, NULL,
	  1, RULES_ALIGN_NONE },
	{ "public suffix is no org domain", 'r', 'r', "a.co.uk", "b.co.uk",
	  NULL, 0, RULES_ALIGN_NONE },
};

START_TEST(dmarc_alignment)
{
	struct dmarc_record r = rec(DMARC_P_REJECT, DMARC_P_REJECT,
	    aligns[_i].adkim, aligns[_i].aspf, "example.com");
	const char *d[1] = { aligns[_i].d };
	enum rules_align got;

	got = rules_dmarc_align(&r, aligns[_i].from, d, aligns[_i].d ? 1 : 0,
	    aligns[_i].mailfrom, aligns[_i].spf_pass);
	ck_assert_msg(got == aligns[_i].want, "%s: got %s, want %s",
	    aligns[_i].name, rules_align_name(got),
	    rules_align_name(aligns[_i].want));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("deliver_rules");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("msgid_syntax");
	tcase_add_loop_test(tc, msgid_syntax, 0,
	    sizeof(msgids) / sizeof(msgids[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("date_syntax");
	tcase_add_loop_test(tc, date_syntax, 0,
	    sizeof(dates) / sizeof(dates[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("unsubscribe_needs_https_and_one_click");
	tcase_add_test(tc, unsubscribe_needs_https_and_one_click);
	suite_add_tcase(s, tc);
	tc = tcase_create("bulk_detection");
	tcase_add_test(tc, bulk_detection);
	suite_add_tcase(s, tc);
	tc = tcase_create("bulk_with_everything_passes");
	tcase_add_test(tc, bulk_with_everything_passes);
	suite_add_tcase(s, tc);
	tc = tcase_create("names_and_fixes");
	tcase_add_test(tc, names_and_fixes);
	suite_add_tcase(s, tc);
	tc = tcase_create("dmarc_policy_of_subdomain_is_sp");
	tcase_add_test(tc, dmarc_policy_of_subdomain_is_sp);
	suite_add_tcase(s, tc);
	tc = tcase_create("dmarc_alignment");
	tcase_add_loop_test(tc, dmarc_alignment, 0,
	    sizeof(aligns) / sizeof(aligns[0]));
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
