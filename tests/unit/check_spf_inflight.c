/*
 * check_spf_inflight - the in-flight limits of inbound SPF checks per
 * client address and per domain (spf/inflight.c).
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf/inflight.h"

START_TEST(client_limit_refuses_then_admits_after_leave)
{
	struct spf_inflight *t = spf_inflight_new(2, 0);
	char why[160];

	ck_assert_ptr_nonnull(t);
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.1", "a.example", why,
	    sizeof(why)), 0);
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.1", "b.example", why,
	    sizeof(why)), 0);
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.1", "c.example", why,
	    sizeof(why)), -1);
	ck_assert_str_eq(why, "2 SPF checks for client 192.0.2.1 in flight "
	    "already");
	/* the refused one is not counted, another client is not limited */
	ck_assert_uint_eq(spf_inflight_count(t, NULL, "c.example"), 0);
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.2", "c.example", why,
	    sizeof(why)), 0);
	spf_inflight_leave(t, "192.0.2.1", "a.example");
	ck_assert_uint_eq(spf_inflight_count(t, "192.0.2.1", NULL), 1);
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.1", "c.example", why,
	    sizeof(why)), 0);
	ck_assert_uint_eq(spf_inflight_count(t, NULL, "c.example"), 2);
	spf_inflight_free(t);
}
END_TEST

START_TEST(domain_limit_is_per_domain_without_case)
{
	struct spf_inflight *t = spf_inflight_new(0, 1);
	char why[160];

	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.1", "Hang.Example",
	    why, sizeof(why)), 0);
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.2", "hang.example",
	    why, sizeof(why)), -1);
	ck_assert_str_eq(why, "1 SPF checks of domain hang.example in flight "
	    "already");
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.2", "pass.example",
	    why, sizeof(why)), 0);
	ck_assert_uint_eq(spf_inflight_count(t, "192.0.2.2", NULL), 1);
	spf_inflight_leave(t, "192.0.2.1", "hang.example");
	ck_assert_uint_eq(spf_inflight_count(t, NULL, "hang.example"), 0);
	ck_assert_uint_eq(spf_inflight_count(t, "192.0.2.1", NULL), 0);
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.2", "hang.example",
	    why, sizeof(why)), 0);
	spf_inflight_free(t);
}
END_TEST

START_TEST(zero_is_no_limit_and_empty_keys_are_not_counted)
{
	struct spf_inflight *t = spf_inflight_new(0, 0);
	char why[160], key[32];
	int i;

	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "d%d.example", i % 7);
		ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.1", key, why,
		    sizeof(why)), 0);
	}
	ck_assert_uint_eq(spf_inflight_count(t, "192.0.2.1", NULL), 100);
	for (i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "d%d.example", i % 7);
		spf_inflight_leave(t, "192.0.2.1", key);
	}
	ck_assert_uint_eq(spf_inflight_count(t, "192.0.2.1", NULL), 0);
	spf_inflight_free(t);

	t = spf_inflight_new(1, 1);
	ck_assert_int_eq(spf_inflight_enter(t, "", "", why, sizeof(why)), 0);
	ck_assert_int_eq(spf_inflight_enter(t, NULL, NULL, why, sizeof(why)),
	    0);
	spf_inflight_leave(t, "", NULL);
	/* leaving what never entered changes nothing */
	spf_inflight_leave(t, "192.0.2.9", "x.example");
	ck_assert_uint_eq(spf_inflight_count(t, "192.0.2.9", NULL), 0);
	ck_assert_ptr_null(spf_inflight_free(t));
	ck_assert_ptr_null(spf_inflight_free(NULL));
}
END_TEST

START_TEST(long_keys_are_cut_not_overrun)
{
	struct spf_inflight *t = spf_inflight_new(0, 1);
	char why[160], d1[600], d2[600];

	memset(d1, 'a', sizeof(d1) - 1);
	d1[sizeof(d1) - 1] = '\0';
	memcpy(d2, d1, sizeof(d2));
	d2[500] = 'b';		/* differs beyond the kept length */
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.1", d1, why,
	    sizeof(why)), 0);
	ck_assert_int_eq(spf_inflight_enter(t, "192.0.2.1", d2, why,
	    sizeof(why)), -1);
	spf_inflight_leave(t, "192.0.2.1", d2);
	ck_assert_uint_eq(spf_inflight_count(t, NULL, d1), 0);
	spf_inflight_free(t);
}
END_TEST

static const struct {
	const char *ip;
	const char *want;
} client_keys[] = {
	{ "192.0.2.1", "192.0.2.1" },
	{ "::ffff:192.0.2.1", "192.0.2.1" },
	{ "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
	{ "2001:DB8:1:2::ffff", "2001:db8:1:2::/64" },
	{ "::1", "::/64" },
	{ "not-an-address", "not-an-address" },
	{ "", "" },
};

START_TEST(client_key_is_ipv4_or_ipv6_slash_64)
{
	char key[64];

	spf_inflight_client_key(client_keys[_i].ip, key, sizeof(key));
	ck_assert_msg(strcmp(key, client_keys[_i].want) == 0,
	    "%s: got \"%s\", want \"%s\"", client_keys[_i].ip, key,
	    client_keys[_i].want);
}
END_TEST

struct racer {
	struct spf_inflight *t;
	int id;
};

static unsigned int racing;	/* admitted of one domain, now */
static unsigned int racing_max;
static pthread_mutex_t racing_mu = PTHREAD_MUTEX_INITIALIZER;

/* race - enter and leave one domain 2000 times, tracking the peak */
static void *
race(void *arg)
{
	struct racer *r = arg;
	char why[160], ip[32];
	int i;

	snprintf(ip, sizeof(ip), "192.0.2.%d", r->id);
	for (i = 0; i < 2000; i++) {
		if (spf_inflight_enter(r->t, ip, "busy.example", why,
		    sizeof(why)) < 0)
			continue;
		pthread_mutex_lock(&racing_mu);
		if (++racing > racing_max)
			racing_max = racing;
		pthread_mutex_unlock(&racing_mu);
		pthread_mutex_lock(&racing_mu);
		racing--;
		pthread_mutex_unlock(&racing_mu);
		spf_inflight_leave(r->t, ip, "busy.example");
	}
	return NULL;
}

START_TEST(eight_threads_never_exceed_the_domain_limit)
{
	struct spf_inflight *t = spf_inflight_new(0, 3);
	struct racer r[8];
	pthread_t th[8];
	int i;

	racing = racing_max = 0;
	for (i = 0; i < 8; i++) {
		r[i].t = t;
		r[i].id = i + 1;
		ck_assert_int_eq(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(racing_max <= 3, "got a peak of %u, want <= 3",
	    racing_max);
	ck_assert_uint_eq(spf_inflight_count(t, NULL, "busy.example"), 0);
	spf_inflight_free(t);
}
END_TEST

static Suite *
spf_inflight_suite(void)
{
	Suite *s = suite_create("spf_inflight");
	TCase *tc = tcase_create("limits");

	tcase_add_test(tc, client_limit_refuses_then_admits_after_leave);
	tcase_add_test(tc, domain_limit_is_per_domain_without_case);
	tcase_add_test(tc, zero_is_no_limit_and_empty_keys_are_not_counted);
	tcase_add_test(tc, long_keys_are_cut_not_overrun);
	tcase_add_test(tc, eight_threads_never_exceed_the_domain_limit);
	tcase_add_loop_test(tc, client_key_is_ipv4_or_ipv6_slash_64, 0,
	    (int)(sizeof(client_keys) / sizeof(client_keys[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(spf_inflight_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
