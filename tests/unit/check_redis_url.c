/*
 * check_redis_url - the Redis store's URL parser (quota/redis_url): every
 * accepted form gives the right host, port, socket path, credentials,
 * database and label; malformed URLs are refused with a message, and
 * what was allocated before the error is freed by redis_url_clear().
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota/redis_url.h"

struct good {
	const char *url;
	int unix_sock;
	const char *host;	/* or the path */
	int port;
	const char *user, *password;
	unsigned int db;
	const char *label;
};

static const struct good goods[] = {
	{ "redis://127.0.0.1:6379/0", 0, "127.0.0.1", 6379, NULL, NULL, 0,
	    "127.0.0.1:6379" },
	{ "redis://localhost", 0, "localhost", 6379, NULL, NULL, 0,
	    "localhost:6379" },
	{ "redis://h:7000/", 0, "h", 7000, NULL, NULL, 0, "h:7000" },
	{ "redis://h/15", 0, "h", 6379, NULL, NULL, 15, "h:6379" },
	{ "redis://[::1]:6380/2", 0, "::1", 6380, NULL, NULL, 2,
	    "[::1]:6380" },
	{ "redis://[::1]", 0, "::1", 6379, NULL, NULL, 0, "[::1]:6379" },
	{ "redis://secret@h", 0, "h", 6379, NULL, "secret", 0, "h:6379" },
	{ "redis://:secret@h", 0, "h", 6379, NULL, "secret", 0, "h:6379" },
	{ "redis://bob:p%40ss%3a@h:1/3", 0, "h", 1, "bob", "p@ss:", 3,
	    "h:1" },
	{ "redis://a@b@h", 0, "h", 6379, NULL, "a@b", 0, "h:6379" },
	{ "unix:/run/redis.sock", 1, "/run/redis.sock", 6379, NULL, NULL, 0,
	    "/run/redis.sock" },
	{ "unix:///run/redis.sock?db=4&password=x%20y", 1, "/run/redis.sock",
	    6379, NULL, "x y", 4, "/run/redis.sock" },
};
#define NGOODS (sizeof(goods) / sizeof(goods[0]))

/* streq_null - a == b, NULL equal only to NULL */
static int
streq_null(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* good_urls_parse - each accepted form, field by field */
START_TEST(good_urls_parse)
{
	const struct good *g = &goods[_i];
	struct redis_url u;
	char err[256] = "";

	ck_assert_msg(redis_url_parse(&u, g->url, err, sizeof(err)) == 0,
	    "%s: refused: %s", g->url, err);
	ck_assert_msg(u.unix_sock == g->unix_sock, "%s: unix_sock got %d, "
	    "want %d", g->url, u.unix_sock, g->unix_sock);
	ck_assert_msg(strcmp(g->unix_sock ? u.path : u.host, g->host) == 0,
	    "%s: host got %s, want %s", g->url, g->unix_sock ? u.path :
	    u.host, g->host);
	if (!g->unix_sock)
		ck_assert_msg(u.port == g->port, "%s: port got %d, want %d",
		    g->url, u.port, g->port);
	ck_assert_msg(streq_null(u.user, g->user), "%s: user got %s, "
	    "want %s", g->url, u.user ? u.user : "(none)",
	    g->user ? g->user : "(none)");
	ck_assert_msg(streq_null(u.password, g->password), "%s: password "
	    "got %s, want %s", g->url, u.password ? u.password : "(none)",
	    g->password ? g->password : "(none)");
	ck_assert_msg(u.db == g->db, "%s: db got %u, want %u", g->url, u.db,
	    g->db);
	ck_assert_msg(strcmp(u.label, g->label) == 0, "%s: label got %s, "
	    "want %s", g->url, u.label, g->label);
	redis_url_clear(&u);
}
END_TEST

struct bad {
	const char *url;
	const char *says;	/* in the message */
};

static const struct bad bads[] = {
	{ "rediss://h", "TLS" },
	{ "http://h", "want redis://" },
	{ "h:6379", "want redis://" },
	{ "redis://", "want redis://" },
	{ "redis://:6379", "want redis://" },
	{ "redis://h:0", "want redis://" },
	{ "redis://h:65536", "want redis://" },
	{ "redis://h:12x", "want redis://" },
	{ "redis://h/x", "want redis://" },
	{ "redis://h/1000001", "want redis://" },
	{ "redis://[::1", "want redis://" },
	{ "redis://[::1]x", "want redis://" },
	{ "redis://u:%zz@h", "%-escape" },
	{ "redis://%4@h", "%-escape" },
	{ "unix:relative.sock", "absolute" },
	{ "unix:", "absolute" },
	{ "unix:/s?db=x", "?db=N" },
	{ "unix:/s?user=x", "?db=N" },
	{ "unix:/s?password=%g0", "?db=N" },
};
#define NBADS (sizeof(bads) / sizeof(bads[0]))

/* bad_urls_refused - each malformed URL, with a message that says why */
START_TEST(bad_urls_refused)
{
	const struct bad *b = &bads[_i];
	struct redis_url u;
	char err[256] = "";

	ck_assert_msg(redis_url_parse(&u, b->url, err, sizeof(err)) == -1,
	    "%s: accepted", b->url);
	ck_assert_msg(strstr(err, b->says) != NULL, "%s: error got \"%s\", "
	    "want one with \"%s\"", b->url, err, b->says);
	redis_url_clear(&u);
}
END_TEST

/* long_host_refused - a host of 256 bytes does not fit, 255 does */
START_TEST(long_host_refused)
{
	char url[400], err[256] = "";
	struct redis_url u;

	snprintf(url, sizeof(url), "redis://%0255d:1", 0);
	ck_assert_int_eq(redis_url_parse(&u, url, err, sizeof(err)), 0);
	ck_assert_uint_eq(strlen(u.host), 255);
	redis_url_clear(&u);
	snprintf(url, sizeof(url), "redis://%0256d:1", 0);
	ck_assert_int_eq(redis_url_parse(&u, url, err, sizeof(err)), -1);
	redis_url_clear(&u);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("redis_url");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("good_urls_parse");
	tcase_add_loop_test(tc, good_urls_parse, 0, NGOODS);
	suite_add_tcase(s, tc);
	tc = tcase_create("bad_urls_refused");
	tcase_add_loop_test(tc, bad_urls_refused, 0, NBADS);
	suite_add_tcase(s, tc);
	tc = tcase_create("long_host_refused");
	tcase_add_test(tc, long_host_refused);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
