/*
 * check_metrics - util/metrics.c: counting, label sets, histograms, the
 * text exposition and the listener address.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/metrics.h"

static const char *const colours[] = { "red", "green", NULL };
static const char *const kinds[] = { "a", "b", NULL };

static struct metric fixed = METRIC_DEF("t_fixed_total", "Fixed labels.",
    METRIC_COUNTER, "colour", colours, "kind", kinds);
static struct metric dyn = METRIC_DEF("t_dyn_total", "A dynamic label.",
    METRIC_COUNTER, "limit", NULL, NULL, NULL);
static struct metric hist = METRIC_DEF("t_seconds", "A histogram.",
    METRIC_HISTOGRAM, NULL, NULL, NULL, NULL);
static struct metric gauge = METRIC_DEF("t_open", "A gauge.", METRIC_GAUGE,
    NULL, NULL, NULL, NULL);
static struct metric busy = METRIC_DEF("t_busy_total", "Threads.",
    METRIC_COUNTER, NULL, NULL, NULL, NULL);

/* render - the exposition of every registered metric (caller frees) */
static char *
render(void)
{
	struct buf b = BUF_INIT;
	char err[128];

	ck_assert_int_eq(metrics_render(&b, 1 << 20, err, sizeof(err)), 0);
	return buf_steal(&b);
}

/* has_line - is line a whole line of text? */
static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

#define ASSERT_LINE(text, line) \
	ck_assert_msg(has_line(text, line), "no line \"%s\" in:\n%s", line, text)

START_TEST(unregistered_metric_counts_nothing)
{
	static struct metric none = METRIC_DEF("t_none_total", "x",
	    METRIC_COUNTER, NULL, NULL, NULL, NULL);

	metric_inc(&none, NULL, NULL);
	ck_assert_int_eq(metric_value(&none, NULL, NULL), 0);
}
END_TEST

START_TEST(fixed_labels_count_and_unknown_is_other)
{
	char *t;

	metrics_register(&fixed);
	metric_inc(&fixed, "red", "a");
	metric_add(&fixed, "red", "a", 2);
	metric_inc(&fixed, "blue", "b");
	ck_assert_int_eq(metric_value(&fixed, "red", "a"), 3);
	t = render();
	ASSERT_LINE(t, "# HELP t_fixed_total Fixed labels.");
	ASSERT_LINE(t, "# TYPE t_fixed_total counter");
	ASSERT_LINE(t, "t_fixed_total{colour=\"red\",kind=\"a\"} 3");
	ASSERT_LINE(t, "t_fixed_total{colour=\"green\",kind=\"b\"} 0");
	ASSERT_LINE(t, "t_fixed_total{colour=\"other\",kind=\"b\"} 1");
	ck_assert_ptr_null(strstr(t, "colour=\"other\",kind=\"a\""));
	free(t);
}
END_TEST

START_TEST(dynamic_label_keeps_the_first_values_then_other)
{
	char v[32], *t;
	int i;

	metrics_register(&dyn);
	for (i = 0; i < METRIC_DYN_MAX + 5; i++) {
		snprintf(v, sizeof(v), "limit%d", i);
		metric_inc(&dyn, v, NULL);
	}
	ck_assert_int_eq(metric_value(&dyn, "limit0", NULL), 1);
	t = render();
	ASSERT_LINE(t, "t_dyn_total{limit=\"limit31\"} 1");
	ASSERT_LINE(t, "t_dyn_total{limit=\"other\"} 5");
	ck_assert_ptr_null(strstr(t, "limit32"));
	free(t);
}
END_TEST

START_TEST(label_values_are_escaped)
{
	static struct metric esc = METRIC_DEF("t_esc_total", "x",
	    METRIC_COUNTER, "limit", NULL, NULL, NULL);
	char *t;

	metrics_register(&esc);
	metric_inc(&esc, "a\"b\\c\nd", NULL);
	t = render();
	ASSERT_LINE(t, "t_esc_total{limit=\"a\\\"b\\\\c\\nd\"} 1");
	free(t);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
	char *t;

	metrics_register(&hist);
	metric_observe(&hist, NULL, NULL, 400);		/* 0.0004 s */
	metric_observe(&hist, NULL, NULL, 1000);	/* on the bound */
	metric_observe(&hist, NULL, NULL, 3000000);	/* 3 s */
	metric_observe(&hist, NULL, NULL, 60000000);	/* past 10 s */
	t = render();
	ASSERT_LINE(t, "# TYPE t_seconds histogram");
	ASSERT_LINE(t, "t_seconds_bucket{le=\"0.0005\"} 1");
	ASSERT_LINE(t, "t_seconds_bucket{le=\"0.001\"} 2");
	ASSERT_LINE(t, "t_seconds_bucket{le=\"2.5\"} 2");
	ASSERT_LINE(t, "t_seconds_bucket{le=\"5\"} 3");
	ASSERT_LINE(t, "t_seconds_bucket{le=\"10\"} 3");
	ASSERT_LINE(t, "t_seconds_bucket{le=\"+Inf\"} 4");
	ASSERT_LINE(t, "t_seconds_sum 63.001400");
	ASSERT_LINE(t, "t_seconds_count 4");
	free(t);
}
END_TEST

START_TEST(gauge_goes_down)
{
	char *t;

	metrics_register(&gauge);
	metric_add(&gauge, NULL, NULL, 2);
	metric_add(&gauge, NULL, NULL, -3);
	t = render();
	ASSERT_LINE(t, "# TYPE t_open gauge");
	ASSERT_LINE(t, "t_open -1");
	free(t);
}
END_TEST

START_TEST(render_past_the_bound_fails)
{
	struct buf b = BUF_INIT;
	char err[128];

	metrics_register(&fixed);
	ck_assert_int_eq(metrics_render(&b, 16, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "more than 16 bytes"));
	buf_free(&b);
}
END_TEST

static void *
count_many(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < 100000; i++)
		metric_inc(&busy, NULL, NULL);
	return NULL;
}

START_TEST(threads_lose_no_count)
{
	pthread_t t[4];
	int i;

	metrics_register(&busy);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, count_many, NULL),
		    0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_int_eq(metric_value(&busy, NULL, NULL), 400000);
}
END_TEST

static const struct {
	const char *spec, *host, *port;	/* host NULL: refused */
} specs[] = {
	{ "inet:127.0.0.1:9471", "127.0.0.1", "9471" },
	{ "inet:127.1.2.3:1", "127.1.2.3", "1" },
	{ "inet:[::1]:9470", "::1", "9470" },
	{ "inet:localhost:80", "localhost", "80" },
	{ "inet:0.0.0.0:9471", NULL, NULL },
	{ "inet:192.0.2.1:9471", NULL, NULL },
	{ "inet:[::]:9471", NULL, NULL },
	{ "inet:127.0.0.1:0", NULL, NULL },
	{ "inet:127.0.0.1:65536", NULL, NULL },
	{ "inet:127.0.0.1", NULL, NULL },
	{ "unix:/run/x.sock", NULL, NULL },
	{ "inet::9471", NULL, NULL },
};

START_TEST(listener_address_must_be_loopback)
{
	char host[64], port[8], err[256];
	int rc = metrics_spec_parse(specs[_i].spec, host, sizeof(host), port,
	    sizeof(port), err, sizeof(err));

	if (specs[_i].host == NULL) {
		ck_assert_msg(rc == -1, "%s: accepted", specs[_i].spec);
		return;
	}
	ck_assert_msg(rc == 0, "%s: %s", specs[_i].spec, err);
	ck_assert_str_eq(host, specs[_i].host);
	ck_assert_str_eq(port, specs[_i].port);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("metrics");

	tcase_add_test(tc, unregistered_metric_counts_nothing);
	tcase_add_test(tc, fixed_labels_count_and_unknown_is_other);
	tcase_add_test(tc, dynamic_label_keeps_the_first_values_then_other);
	tcase_add_test(tc, label_values_are_escaped);
	tcase_add_test(tc, histogram_buckets_are_cumulative);
	tcase_add_test(tc, gauge_goes_down);
	tcase_add_test(tc, render_past_the_bound_fails);
	tcase_add_test(tc, threads_lose_no_count);
	tcase_add_loop_test(tc, listener_address_must_be_loopback, 0,
	    (int)(sizeof(specs) / sizeof(specs[0])));
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
