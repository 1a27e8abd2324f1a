/*
 * check_spf_pool - the SPF worker pool (spf/pool.c) with real workers
 * (tests/outpost-spf-worker-test, WORKER_PATH) on a test zone, and the wire
 * format (spf/wire.c).
 */
#include "config.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf_spf.h"
#include "spf/pool.h"
#include "spf/wire.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1	/* the worker then has no RLIMIT_AS */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#ifndef WORKER_PATH
#error WORKER_PATH must name the built tests/outpost-spf-worker-test
#endif

static char tmpdir[64];
static char secret[128];

static const char zone_text[] =
    "# test zone\n"
    "pass.test TXT v=spf1 ip4:192.0.2.0/24 -all\n"
    "fail.test TXT v=spf1 -all\n"
    "softfail.test TXT v=spf1 ~all\n"
    "helo.test TXT v=spf1 a -all\n"
    "helo.test A 192.0.2.10\n"
    "slow.test TEST sleep 30000\n"
    "nap.test TEST sleep 300\n"
    "nap.test TXT v=spf1 ip4:192.0.2.0/24 -all\n"
    "crash.test TEST crash\n"
    "exit.test TEST exit\n"
    "garbage.test TEST garbage\n"
    "short.test TEST short\n"
    "retire.test TEST retire\n"
    "retire.test TXT v=spf1 ip4:192.0.2.0/24 -all\n"
    "small.test TEST alloc 16\n"
    "huge.test TEST alloc 512\n";

/* ms_now - monotonic milliseconds */
static long long
ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* setup - a temp dir with the zone and a root-only secret file */
static void
setup(void)
{
	char path[160];
	FILE *fp;
	int fd;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_spf_pool.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(chmod(tmpdir, 0755), 0);
	snprintf(secret, sizeof(secret), "%s/secret.key", tmpdir);
	fd = open(secret, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "key\n", 4), 4);
	close(fd);
	snprintf(path, sizeof(path), "%s/zone", tmpdir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(zone_text, fp);
	fprintf(fp, "secret.test TEST open %s\n", secret);
	fclose(fp);
	ck_assert_int_eq(setenv("OUTPOST_SPF_ZONE", path, 1), 0);
}

/* teardown - remove the temp dir */
static void
teardown(void)
{
	char path[160];

	snprintf(path, sizeof(path), "%s/zone", tmpdir);
	unlink(path);
	unlink(secret);
	rmdir(tmpdir);
}

/* The log section of the pools: facility and verbose unset. */
static const struct conf_log no_log;

/* test_conf - the spf settings a pool reads */
static void
test_conf(struct conf_spf *c, unsigned int workers, unsigned int timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->workers = workers;
	c->user = (char *)"nobody";
	c->worker = (char *)WORKER_PATH;
	c->timeout_ms = timeout_ms;
	c->memory = 256ULL << 20;
	c->max_dns_lookups = 10;
	c->max_void_lookups = 2;
}

/* new_pool - a pool of n workers with deadline timeout_ms, or fail */
static struct spf_pool *
new_pool(unsigned int n, unsigned int timeout_ms)
{
	struct spf_pool *p;
	struct conf_spf c;
	char err[256];

	test_conf(&c, n, timeout_ms);
	p = spf_pool_new(&c, &no_log, err, sizeof(err));
	ck_assert_msg(p != NULL, "spf_pool_new: %s", err);
	return p;
}

/* check - one check through p; the return value of spf_pool_check */
static int
check(struct spf_pool *p, enum spf_kind kind, const char *ip,
    const char *helo, const char *sender, struct spf_answer *a)
{
	struct spf_query q;

	q.ip = ip;
	q.helo = helo;
	q.sender = sender;
	return spf_pool_check(p, kind, &q, a);
}

/* expect - check and compare the result */
static void
expect(struct spf_pool *p, enum spf_kind kind, const char *ip,
    const char *helo, const char *sender, enum spf_result want)
{
	struct spf_answer a;

	check(p, kind, ip, helo, sender, &a);
	ck_assert_msg(a.result == want, "%s/%s from %s: got %s (%s), want %s",
	    sender, helo, ip, spf_result_name(a.result), a.text,
	    spf_result_name(want));
}

/* worker_pid - the pid of slot 0 */
static long
worker_pid(struct spf_pool *p)
{
	long pids[8];

	ck_assert_uint_ge(spf_pool_pids(p, pids, 8), 1);
	return pids[0];
}

START_TEST(answers_pass_fail_softfail_helo_through_workers)
{
	struct spf_pool *p = new_pool(2, 10000);
	struct spf_answer a;

	expect(p, SPF_KIND_MAILFROM, "192.0.2.1", "mx.example",
	    "alice@pass.test", SPF_RES_PASS);
	expect(p, SPF_KIND_MAILFROM, "198.51.100.1", "mx.example",
	    "alice@pass.test", SPF_RES_FAIL);
	expect(p, SPF_KIND_MAILFROM, "192.0.2.1", "mx.example",
	    "bob@fail.test", SPF_RES_FAIL);
	expect(p, SPF_KIND_MAILFROM, "192.0.2.1", "mx.example",
	    "bob@softfail.test", SPF_RES_SOFTFAIL);
	ck_assert_int_eq(check(p, SPF_KIND_HELO, "192.0.2.10", "helo.test",
	    "", &a), 0);
	ck_assert_int_eq(a.result, SPF_RES_PASS);
	ck_assert_int_eq(a.identity, SPF_ID_HELO);
	ck_assert_str_eq(a.domain, "helo.test");
	ck_assert_uint_eq(spf_pool_checks(p), 5);
	ck_assert_uint_eq(spf_pool_replaced(p), 0);
	spf_pool_free(p);
}
END_TEST

struct runner {
	struct spf_pool *p;
	int id;
	int wrong;
	char why[256];
};

/* run_checks - 20 alternating pass/fail checks; counts wrong answers */
static void *
run_checks(void *arg)
{
	struct runner *r = arg;
	struct spf_answer a;
	enum spf_result want;
	int i;

	for (i = 0; i < 20; i++) {
		want = (i + r->id) % 2 ? SPF_RES_PASS : SPF_RES_FAIL;
		check(r->p, SPF_KIND_MAILFROM, want == SPF_RES_PASS ?
		    "192.0.2.7" : "203.0.113.7", "h.example", "u@pass.test",
		    &a);
		if (a.result != want) {
			r->wrong++;
			snprintf(r->why, sizeof(r->why), "got %s (%s), want %s",
			    spf_result_name(a.result), a.text,
			    spf_result_name(want));
		}
	}
	return NULL;
}

START_TEST(concurrent_checks_from_eight_threads_all_right)
{
	struct spf_pool *p = new_pool(3, 10000);
	struct runner r[8];
	pthread_t t[8];
	int i;

	for (i = 0; i < 8; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		r[i].p = p;
		r[i].id = i;
		ck_assert_int_eq(pthread_create(&t[i], NULL, run_checks,
		    &r[i]), 0);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(r[i].wrong == 0, "thread %d: %d wrong: %s", i,
		    r[i].wrong, r[i].why);
	}
	ck_assert_uint_eq(spf_pool_checks(p), 160);
	ck_assert_uint_eq(spf_pool_replaced(p), 0);
	spf_pool_free(p);
}
END_TEST

struct slow {
	struct spf_pool *p;
	const char *ip;		/* slow_inbound only */
	const char *sender;
	struct spf_answer a;
	int rc;
	long long ms;
};

/* slow_check - one check of s->sender, timed */
static void *
slow_check(void *arg)
{
	struct slow *s = arg;
	long long t0 = ms_now();

	s->rc = check(s->p, SPF_KIND_MAILFROM, "192.0.2.1", "h.example",
	    s->sender, &s->a);
	s->ms = ms_now() - t0;
	return NULL;
}

START_TEST(two_threads_share_one_worker)
{
	struct spf_pool *p = new_pool(1, 5000);
	struct slow s[2];
	pthread_t t[2];
	int i;

	for (i = 0; i < 2; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].p = p;
		s[i].sender = "x@nap.test";
		ck_assert_int_eq(pthread_create(&t[i], NULL, slow_check,
		    &s[i]), 0);
	}
	for (i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(s[i].a.result == SPF_RES_PASS, "thread %d: got "
		    "%s (%s), want pass", i, spf_result_name(s[i].a.result),
		    s[i].a.text);
	}
	/* one of them waited for the other: 300 ms + 300 ms */
	ck_assert_msg(s[0].ms >= 550 || s[1].ms >= 550, "got %lld and %lld "
	    "ms, want one >= 550", s[0].ms, s[1].ms);
	ck_assert_uint_eq(spf_pool_replaced(p), 0);
	spf_pool_free(p);
}
END_TEST

START_TEST(worker_killed_mid_check_gives_temperror_then_recovers)
{
	struct spf_pool *p = new_pool(1, 20000);
	struct slow s;
	pthread_t t;
	long old, now;

	memset(&s, 0, sizeof(s));
	s.p = p;
	s.sender = "x@slow.test";
	old = worker_pid(p);
	ck_assert_int_gt(old, 0);
	ck_assert_int_eq(pthread_create(&t, NULL, slow_check, &s), 0);
	usleep(300000);
	ck_assert_int_eq(kill((pid_t)old, SIGKILL), 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(s.rc, -1);
	ck_assert_int_eq(s.a.result, SPF_RES_TEMPERROR);
	ck_assert_str_eq(s.a.text, "SPF worker died");
	ck_assert_msg(s.ms < 5000, "got %lld ms, want the death seen at once",
	    s.ms);
	/* the pool is whole again, with a new worker */
	now = worker_pid(p);
	ck_assert_int_gt(now, 0);
	ck_assert_int_ne(now, old);
	ck_assert_int_eq(kill((pid_t)now, 0), 0);
	ck_assert_uint_eq(spf_pool_replaced(p), 1);
	expect(p, SPF_KIND_MAILFROM, "192.0.2.1", "h", "a@pass.test",
	    SPF_RES_PASS);
	spf_pool_free(p);
}
END_TEST

START_TEST(worker_over_deadline_is_killed_and_replaced)
{
	struct spf_pool *p = new_pool(1, 1000);
	struct spf_answer a;
	long long t0;
	long old = worker_pid(p);

	t0 = ms_now();
	ck_assert_int_eq(check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h",
	    "x@slow.test", &a), -1);
	t0 = ms_now() - t0;
	ck_assert_int_eq(a.result, SPF_RES_TEMPERROR);
	ck_assert_str_eq(a.text, "SPF check timed out");
	ck_assert_msg(t0 >= 950 && t0 < 3000, "got %lld ms, want about 1000",
	    t0);
	/* the overrunning worker is gone (killed and reaped) */
	ck_assert_int_eq(kill((pid_t)old, 0), -1);
	ck_assert_int_eq(errno, ESRCH);
	ck_assert_int_ne(worker_pid(p), old);
	ck_assert_uint_eq(spf_pool_replaced(p), 1);
	expect(p, SPF_KIND_MAILFROM, "192.0.2.1", "h", "a@pass.test",
	    SPF_RES_PASS);
	spf_pool_free(p);
}
END_TEST

/* new_pool_limited - a pool that grows from n to max workers, with the
 * inbound limits per client and per domain, or fail */
static struct spf_pool *
new_pool_limited(unsigned int n, unsigned int max, unsigned int per_client,
    unsigned int per_domain, unsigned int timeout_ms)
{
	struct spf_pool *p;
	struct conf_spf c;
	char err[256];

	test_conf(&c, n, timeout_ms);
	c.max_workers = max;
	c.inbound.max_per_client = per_client;
	c.inbound.max_per_domain = per_domain;
	p = spf_pool_new(&c, &no_log, err, sizeof(err));
	ck_assert_msg(p != NULL, "spf_pool_new: %s", err);
	return p;
}

/* inbound - one spf_pool_check_inbound of sender from ip; its ms */
static long long
inbound(struct spf_pool *p, const char *ip, const char *sender,
    struct spf_answer *a, int *rc)
{
	struct spf_query q;
	long long t0 = ms_now();

	q.ip = ip;
	q.helo = "h.example";
	q.sender = sender;
	*rc = spf_pool_check_inbound(p, SPF_KIND_MAILFROM, &q, a);
	return ms_now() - t0;
}

/* slow_inbound - slow_check through spf_pool_check_inbound, from s->ip */
static void *
slow_inbound(void *arg)
{
	struct slow *s = arg;

	s->ms = inbound(s->p, s->ip, s->sender, &s->a, &s->rc);
	return NULL;
}

/* start_slow - a thread checking sender from ip (inbound) */
static void
start_slow(pthread_t *t, struct slow *s, struct spf_pool *p, const char *ip,
    const char *sender)
{
	memset(s, 0, sizeof(*s));
	s->p = p;
	s->ip = ip;
	s->sender = sender;
	ck_assert_int_eq(pthread_create(t, NULL, slow_inbound, s), 0);
}

START_TEST(pool_grows_when_all_busy_up_to_max_workers)
{
	struct spf_pool *p = new_pool_limited(1, 3, 0, 0, 5000);
	struct slow s[6];
	pthread_t t[6];
	long pids[8];
	long long slowest = 0;
	int i;

	for (i = 0; i < 3; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].p = p;
		s[i].sender = "x@nap.test";
		ck_assert_int_eq(pthread_create(&t[i], NULL, slow_check,
		    &s[i]), 0);
	}
	for (i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ck_assert_msg(s[i].a.result == SPF_RES_PASS && s[i].ms < 550,
		    "thread %d: got %s in %lld ms, want pass without waiting",
		    i, spf_result_name(s[i].a.result), s[i].ms);
	}
	ck_assert_uint_eq(spf_pool_pids(p, pids, 8), 3);
	/* six at once: never more than 3 workers, so some wait */
	for (i = 0; i < 6; i++) {
		memset(&s[i], 0, sizeof(s[i]));
		s[i].p = p;
		s[i].sender = "x@nap.test";
		ck_assert_int_eq(pthread_create(&t[i], NULL, slow_check,
		    &s[i]), 0);
	}
	for (i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(s[i].a.result, SPF_RES_PASS);
		if (s[i].ms > slowest)
			slowest = s[i].ms;
	}
	ck_assert_msg(slowest >= 550, "got %lld ms at most, want >= 550",
	    slowest);
	ck_assert_uint_eq(spf_pool_pids(p, pids, 8), 3);
	ck_assert_uint_eq(spf_pool_replaced(p), 0);
	spf_pool_free(p);
}
END_TEST

START_TEST(hanging_domain_limited_then_kept_as_temperror)
{
	struct spf_pool *p = new_pool_limited(1, 4, 0, 1, 2000);
	struct spf_answer a;
	struct slow s;
	pthread_t t;
	unsigned long checks;
	long long ms;
	int rc;

	start_slow(&t, &s, p, "192.0.2.1", "x@slow.test");
	usleep(300000);
	/* a second check of the hanging domain: at once, no worker */
	ms = inbound(p, "192.0.2.2", "y@SLOW.test", &a, &rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(a.result, SPF_RES_TEMPERROR);
	ck_assert_str_eq(a.text, "1 SPF checks of domain SLOW.test in flight "
	    "already");
	ck_assert_str_eq(a.domain, "SLOW.test");
	ck_assert_msg(ms < 200, "got %lld ms, want at once", ms);
	/* other domains meanwhile: a worker of their own, at once */
	ms = inbound(p, "192.0.2.1", "a@pass.test", &a, &rc);
	ck_assert_int_eq(a.result, SPF_RES_PASS);
	ck_assert_msg(ms < 1000, "got %lld ms, want < 1000", ms);
	pthread_join(t, NULL);
	ck_assert_int_eq(s.a.result, SPF_RES_TEMPERROR);
	ck_assert_str_eq(s.a.text, "SPF check timed out");
	/* timed out: kept as temperror, no worker asked */
	checks = spf_pool_checks(p);
	ms = inbound(p, "192.0.2.3", "z@slow.test", &a, &rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(a.result, SPF_RES_TEMPERROR);
	ck_assert_str_eq(a.text, "SPF check of slow.test timed out less than "
	    "60 s ago");
	ck_assert_msg(ms < 200, "got %lld ms, want at once", ms);
	ck_assert_uint_eq(spf_pool_checks(p), checks);
	/* the outbound path (spf_pool_check) is not limited by it */
	ck_assert_int_eq(check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h",
	    "a@pass.test", &a), 0);
	spf_pool_free(p);
}
END_TEST

START_TEST(client_limit_gives_immediate_temperror)
{
	struct spf_pool *p = new_pool_limited(2, 4, 1, 0, 2000);
	struct spf_answer a;
	struct slow s;
	pthread_t t;
	long long ms;
	int rc;

	start_slow(&t, &s, p, "192.0.2.1", "x@slow.test");
	usleep(300000);
	ms = inbound(p, "192.0.2.1", "a@pass.test", &a, &rc);
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(a.result, SPF_RES_TEMPERROR);
	ck_assert_str_eq(a.text, "1 SPF checks for client 192.0.2.1 in "
	    "flight already");
	ck_assert_str_eq(a.domain, "pass.test");
	ck_assert_msg(ms < 200, "got %lld ms, want at once", ms);
	ms = inbound(p, "192.0.2.7", "a@pass.test", &a, &rc);
	ck_assert_int_eq(a.result, SPF_RES_PASS);
	pthread_join(t, NULL);
	ck_assert_int_eq(s.a.result, SPF_RES_TEMPERROR);
	/* the client's slot is free again */
	ms = inbound(p, "192.0.2.1", "a@pass.test", &a, &rc);
	ck_assert_int_eq(a.result, SPF_RES_PASS);
	spf_pool_free(p);
}
END_TEST

static const struct {
	const char *sender;
	const char *text;	/* prefix of the temperror text */
} bad_workers[] = {
	{ "x@crash.test", "SPF worker died" },
	{ "x@exit.test", "SPF worker died" },
	{ "x@garbage.test", "SPF worker sent a bad answer (not an "
	    "answer)" },
	{ "x@short.test", "SPF worker sent a bad answer (answer of the "
	    "wrong size)" },
};

START_TEST(bad_worker_output_gives_temperror_then_recovers)
{
	struct spf_pool *p = new_pool(1, 10000);
	struct spf_answer a;

	ck_assert_int_eq(check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h",
	    bad_workers[_i].sender, &a), -1);
	ck_assert_int_eq(a.result, SPF_RES_TEMPERROR);
	ck_assert_msg(strcmp(a.text, bad_workers[_i].text) == 0,
	    "got \"%s\", want \"%s\"", a.text, bad_workers[_i].text);
	ck_assert_uint_eq(spf_pool_replaced(p), 1);
	expect(p, SPF_KIND_MAILFROM, "192.0.2.1", "h", "a@pass.test",
	    SPF_RES_PASS);
	spf_pool_free(p);
}
END_TEST

START_TEST(idle_worker_death_costs_no_check)
{
	struct spf_pool *p = new_pool(1, 10000);
	long old = worker_pid(p);

	ck_assert_int_eq(kill((pid_t)old, SIGKILL), 0);
	usleep(100000);
	expect(p, SPF_KIND_MAILFROM, "192.0.2.1", "h", "a@pass.test",
	    SPF_RES_PASS);
	ck_assert_int_ne(worker_pid(p), old);
	ck_assert_uint_eq(spf_pool_replaced(p), 1);
	spf_pool_free(p);
}
END_TEST

START_TEST(retiring_worker_answers_and_is_replaced)
{
	struct spf_pool *p = new_pool(1, 10000);
	struct spf_answer a;
	long old = worker_pid(p);

	ck_assert_int_eq(check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h",
	    "x@retire.test", &a), 0);
	ck_assert_int_eq(a.result, SPF_RES_PASS);
	ck_assert_int_ne(worker_pid(p), old);
	ck_assert_uint_eq(spf_pool_replaced(p), 1);
	expect(p, SPF_KIND_MAILFROM, "192.0.2.1", "h", "a@pass.test",
	    SPF_RES_PASS);
	spf_pool_free(p);
}
END_TEST

static long status_field(long pid, const char *name);

START_TEST(supervisor_death_tempfails_checks_and_nothing_crashes)
{
	struct spf_pool *p = new_pool(2, 2000);
	struct spf_answer a;
	long sup = status_field(worker_pid(p), "PPid");
	int i, rc;

	ck_assert_int_gt(sup, 1);
	ck_assert_int_eq(kill((pid_t)sup, SIGKILL), 0);
	usleep(200000);
	/* the workers died with it (PDEATHSIG); every check tempfails */
	for (i = 0; i < 3; i++) {
		rc = check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h",
		    "a@pass.test", &a);
		ck_assert_int_eq(rc, -1);
		ck_assert_int_eq(a.result, SPF_RES_TEMPERROR);
		ck_assert_msg(strstr(a.text, "SPF") != NULL, "got \"%s\"",
		    a.text);
	}
	spf_pool_free(p);
}
END_TEST

START_TEST(worker_memory_is_limited)
{
	struct spf_pool *p = new_pool(1, 10000);
	struct spf_answer a;

	check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h", "x@small.test", &a);
	ck_assert_str_eq(a.text, "alloc: ok");
	check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h", "x@huge.test", &a);
	if (UNDER_ASAN)
		fprintf(stderr, "check_spf_pool: ASan build: no RLIMIT_AS "
		    "in workers, 512 MiB gave \"%s\"\n", a.text);
	else
		ck_assert_msg(strcmp(a.text, "alloc: failed") == 0, "got "
		    "\"%s\", want 512 MiB refused under spf.memory 256 MiB",
		    a.text);
	spf_pool_free(p);
}
END_TEST

START_TEST(oversized_identity_is_none_without_a_worker)
{
	struct spf_pool *p = new_pool(1, 10000);
	struct spf_answer a;
	char big[700];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ck_assert_int_eq(check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h", big,
	    &a), 0);
	ck_assert_int_eq(a.result, SPF_RES_NONE);
	ck_assert_int_eq(check(p, SPF_KIND_HELO, "192.0.2.1", "bad\r\nhelo",
	    "", &a), 0);
	ck_assert_int_eq(a.result, SPF_RES_NONE);
	ck_assert_int_eq(check(p, SPF_KIND_HELO, "", "h", "", &a), -1);
	ck_assert_int_eq(a.result, SPF_RES_TEMPERROR);
	ck_assert_uint_eq(spf_pool_checks(p), 0);
	spf_pool_free(p);
}
END_TEST

/* status_field - the first number after "name:" in /proc/pid/status */
static long
status_field(long pid, const char *name)
{
	char path[64], line[256];
	size_t len = strlen(name);
	long v = -1;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, name, len) == 0 && line[len] == ':') {
			v = strtol(line + len + 1, NULL, 10);
			break;
		}
	fclose(fp);
	return v;
}

/* name_is - 1 when /proc/pid/comm is name */
static int
name_is(long pid, const char *name)
{
	char path[64], line[64];
	FILE *fp;
	int r = 0;

	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		r = strcmp(line, name) == 0;
	}
	fclose(fp);
	return r;
}

/* limit_of - the soft limit named name in /proc/pid/limits, or -2 */
static long
limit_of(long pid, const char *name)
{
	char path[64], line[256];
	size_t len = strlen(name);
	long v = -2;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/limits", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -2;
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, name, len) == 0) {
			v = strncmp(line + 26, "unlimited", 9) == 0 ? -1 :
			    strtol(line + 26, NULL, 10);
			break;
		}
	fclose(fp);
	return v;
}

START_TEST(worker_has_its_limits)
{
	struct spf_pool *p = new_pool(1, 10000);
	long pid = worker_pid(p);

	ck_assert_int_eq(limit_of(pid, "Max core file size"), 0);
	ck_assert_int_eq(limit_of(pid, "Max open files"), 16);
	ck_assert_int_eq(limit_of(pid, "Max processes"), 0);
	ck_assert_int_eq(limit_of(pid, "Max cpu time"), 300);
	if (!UNDER_ASAN)
		ck_assert_int_eq(limit_of(pid, "Max address space"),
		    256L << 20);
	spf_pool_free(p);
}
END_TEST

START_TEST(worker_runs_as_spf_user_and_cannot_read_root_files)
{
	struct spf_pool *p;
	struct spf_answer a;
	struct passwd *pw;
	long pid;
	int fd;

	/* A test that needs root fails when it is not root: skipping
	 * would report the user switch as checked when it was not. */
	ck_assert_msg(geteuid() == 0, "check_spf_pool: this test needs root "
	    "(the worker's user switch); run make check as root");
	ck_assert_ptr_nonnull(pw = getpwnam("nobody"));
	/* root itself can read the file */
	ck_assert_int_ge(fd = open(secret, O_RDONLY), 0);
	close(fd);
	p = new_pool(2, 10000);
	pid = worker_pid(p);
	ck_assert_int_eq(status_field(pid, "Uid"), (long)pw->pw_uid);
	ck_assert_int_eq(status_field(pid, "Gid"), (long)pw->pw_gid);
	ck_assert_int_eq(status_field(pid, "NoNewPrivs"), 1);
	ck_assert_int_eq(name_is(pid, "spf-worker"), 1);
	ck_assert_int_eq(status_field(pid, "Groups"), (long)pw->pw_gid);
	ck_assert_int_eq(check(p, SPF_KIND_MAILFROM, "192.0.2.1", "h",
	    "x@secret.test", &a), 0);
	ck_assert_msg(strcmp(a.text, "open: Permission denied") == 0,
	    "got \"%s\", want \"open: Permission denied\"", a.text);
	spf_pool_free(p);
}
END_TEST

START_TEST(free_ends_supervisor_and_workers)
{
	struct spf_pool *p = new_pool(3, 10000);
	long pids[3];
	int i;

	ck_assert_uint_eq(spf_pool_pids(p, pids, 3), 3);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(kill((pid_t)pids[i], 0), 0);
	spf_pool_free(p);
	usleep(100000);
	for (i = 0; i < 3; i++)
		ck_assert_msg(kill((pid_t)pids[i], 0) == -1 && errno == ESRCH,
		    "worker %ld still there", pids[i]);
}
END_TEST

START_TEST(bad_settings_fail_to_start)
{
	struct spf_pool *p;
	struct conf_spf c;
	char err[256];

	test_conf(&c, 1, 1000);
	c.worker = (char *)"/nonexistent/outpost-spf-worker";
	ck_assert_ptr_null(p = spf_pool_new(&c, &no_log, err, sizeof(err)));
	ck_assert_msg(strstr(err, "/nonexistent/outpost-spf-worker") != NULL,
	    "got \"%s\"", err);
	if (geteuid() == 0) {
		test_conf(&c, 1, 1000);
		c.user = (char *)"no-such-user-outpost";
		ck_assert_ptr_null(p = spf_pool_new(&c, &no_log, err,
		    sizeof(err)));
		ck_assert_msg(strstr(err, "no user") != NULL, "got \"%s\"",
		    err);
		test_conf(&c, 1, 1000);
		c.user = (char *)"root";
		ck_assert_ptr_null(p = spf_pool_new(&c, &no_log, err,
		    sizeof(err)));
		ck_assert_msg(strstr(err, "root") != NULL, "got \"%s\"", err);
	}
	ck_assert_int_eq(setenv("OUTPOST_SPF_ZONE", "/nonexistent/zone", 1),
	    0);
	test_conf(&c, 1, 1000);
	ck_assert_ptr_null(p = spf_pool_new(&c, &no_log, err, sizeof(err)));
	ck_assert_msg(strstr(err, "/nonexistent/zone") != NULL, "got \"%s\"",
	    err);
}
END_TEST

/* Wire format. */

static char long_sender[SPF_WIRE_SENDER_MAX + 1];
static char max_sender[SPF_WIRE_SENDER_MAX];
static char long_helo[SPF_NAME_MAX + 1];

static const struct {
	const char *ip;
	const char *helo;
	const char *sender;
	int ok;
} req_cases[] = {
	{ "192.0.2.1", "mx.example", "a@example.com", 1 },
	{ "::ffff:192.0.2.1", "", "", 1 },
	{ "192.0.2.1", "mx.example", max_sender, 1 },
	{ "192.0.2.1", "mx.example", long_sender, 0 },
	{ "192.0.2.1", long_helo, "a@b", 0 },
	{ "", "h", "a@b", 0 },
	{ NULL, "h", "a@b", 0 },
	{ "192.0.2.1", NULL, "a@b", 0 },
	{ "192.0.2.1", "h", NULL, 0 },
	{ "192.0.2.1", "h\r\nX-Injected: 1", "a@b", 0 },
	{ "192.0.2.1", "h", "a\tb@c", 0 },
	{ "0123456789012345678901234567890123456789012345678901234567890123",
	    "h", "a@b", 0 },
};

START_TEST(wire_request_fields_bounded)
{
	struct spf_wire_req r, out;
	struct spf_query q, back;
	enum spf_kind kind;
	char err[128];
	int rc;

	memset(long_sender, 'a', sizeof(long_sender) - 1);
	memset(max_sender, 'a', sizeof(max_sender) - 1);
	memset(long_helo, 'h', sizeof(long_helo) - 1);
	q.ip = req_cases[_i].ip;
	q.helo = req_cases[_i].helo;
	q.sender = req_cases[_i].sender;
	rc = spf_wire_req_encode(&r, 42, SPF_KIND_HELO, &q, err, sizeof(err));
	ck_assert_msg((rc == 0) == req_cases[_i].ok, "case %d: got %d (%s), "
	    "want %s", _i, rc, rc < 0 ? err : "", req_cases[_i].ok ? "ok" :
	    "refused");
	if (rc < 0)
		return;
	ck_assert_int_eq(spf_wire_req_decode(&r, sizeof(r), &out, &kind,
	    &back, err, sizeof(err)), 0);
	ck_assert_int_eq(kind, SPF_KIND_HELO);
	ck_assert_uint_eq(out.seq, 42);
	ck_assert_str_eq(back.ip, q.ip);
	ck_assert_str_eq(back.helo, q.helo);
	ck_assert_str_eq(back.sender, q.sender);
}
END_TEST

START_TEST(wire_request_decode_refuses_bad_records)
{
	struct spf_wire_req r, out;
	struct spf_query q = { "192.0.2.1", "h", "a@b" }, back;
	enum spf_kind kind;
	char err[128], big[sizeof(r) + 8];

	ck_assert_int_eq(spf_wire_req_encode(&r, 1, SPF_KIND_MAILFROM, &q,
	    err, sizeof(err)), 0);
	ck_assert_int_eq(spf_wire_req_decode(&r, sizeof(r) - 1, &out, &kind,
	    &back, err, sizeof(err)), -1);
	memset(big, 0, sizeof(big));
	memcpy(big, &r, sizeof(r));
	ck_assert_int_eq(spf_wire_req_decode(big, sizeof(big), &out, &kind,
	    &back, err, sizeof(err)), -1);
	r.kind = 7;
	ck_assert_int_eq(spf_wire_req_decode(&r, sizeof(r), &out, &kind,
	    &back, err, sizeof(err)), -1);
	r.kind = SPF_KIND_MAILFROM;
	memset(r.sender, 'x', sizeof(r.sender));	/* no NUL */
	ck_assert_int_eq(spf_wire_req_decode(&r, sizeof(r), &out, &kind,
	    &back, err, sizeof(err)), -1);
	ck_assert_int_eq(spf_wire_req_encode(&r, 1, SPF_KIND_MAILFROM, &q,
	    err, sizeof(err)), 0);
	r.magic ^= 1;
	ck_assert_int_eq(spf_wire_req_decode(&r, sizeof(r), &out, &kind,
	    &back, err, sizeof(err)), -1);
}
END_TEST

START_TEST(wire_answer_checked_on_decode)
{
	struct spf_wire_ans w, bad;
	struct spf_answer a, back;
	uint32_t flags;
	char err[128];

	memset(&a, 0, sizeof(a));
	a.result = SPF_RES_SOFTFAIL;
	a.identity = SPF_ID_MAILFROM;
	snprintf(a.domain, sizeof(a.domain), "example.com");
	snprintf(a.text, sizeof(a.text), "not authorized");
	ck_assert_int_eq(spf_wire_ans_encode(&w, 9, SPF_WIRE_RETIRE, &a, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(spf_wire_ans_decode(&w, sizeof(w), 9, &back, &flags,
	    err, sizeof(err)), 0);
	ck_assert_int_eq(back.result, SPF_RES_SOFTFAIL);
	ck_assert_str_eq(back.domain, "example.com");
	ck_assert_str_eq(back.text, "not authorized");
	ck_assert_uint_eq(flags, SPF_WIRE_RETIRE);
	/* another request's answer, wrong sizes */
	ck_assert_int_eq(spf_wire_ans_decode(&w, sizeof(w), 10, &back,
	    &flags, err, sizeof(err)), -1);
	ck_assert_int_eq(spf_wire_ans_decode(&w, sizeof(w) - 1, 9, &back,
	    &flags, err, sizeof(err)), -1);
	ck_assert_int_eq(spf_wire_ans_decode(&w, 0, 9, &back, &flags, err,
	    sizeof(err)), -1);
	/* result out of range */
	bad = w;
	bad.result = 99;
	ck_assert_int_eq(spf_wire_ans_decode(&bad, sizeof(bad), 9, &back,
	    &flags, err, sizeof(err)), -1);
	bad = w;
	bad.flags = 0x80;
	ck_assert_int_eq(spf_wire_ans_decode(&bad, sizeof(bad), 9, &back,
	    &flags, err, sizeof(err)), -1);
	/* unterminated domain; header injection in the text */
	bad = w;
	memset(bad.domain, 'd', sizeof(bad.domain));
	ck_assert_int_eq(spf_wire_ans_decode(&bad, sizeof(bad), 9, &back,
	    &flags, err, sizeof(err)), -1);
	bad = w;
	snprintf(bad.text, sizeof(bad.text), "ok\r\nX-Evil: 1");
	ck_assert_int_eq(spf_wire_ans_decode(&bad, sizeof(bad), 9, &back,
	    &flags, err, sizeof(err)), -1);
	/* the encoder refuses the same */
	snprintf(a.text, sizeof(a.text), "bad\nline");
	ck_assert_int_eq(spf_wire_ans_encode(&w, 9, 0, &a, err, sizeof(err)),
	    -1);
	snprintf(a.text, sizeof(a.text), "fine");
	a.result = (enum spf_result)42;
	ck_assert_int_eq(spf_wire_ans_encode(&w, 9, 0, &a, err, sizeof(err)),
	    -1);
}
END_TEST

START_TEST(wire_hello_and_control_checked)
{
	struct spf_wire_hello h, out;
	struct spf_wire_ctl c, cout;
	char err[128];

	spf_wire_hello_encode(&h, 0, 0, 1234, 65534, 65534, "line\none");
	ck_assert_int_eq(spf_wire_hello_decode(&h, sizeof(h), &out, err,
	    sizeof(err)), 0);
	ck_assert_str_eq(out.text, "line?one");
	ck_assert_int_eq(out.pid, 1234);
	ck_assert_int_eq(spf_wire_hello_decode(&h, sizeof(h) + 1, &out, err,
	    sizeof(err)), -1);
	spf_wire_hello_encode(&h, 0, 0, 0, 0, 0, NULL);
	ck_assert_int_eq(spf_wire_hello_decode(&h, sizeof(h), &out, err,
	    sizeof(err)), -1);
	spf_wire_ctl_encode(&c, 77);
	ck_assert_int_eq(spf_wire_ctl_decode(&c, sizeof(c), &cout, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(cout.kill_pid, 77);
	c.kill_pid = -1;
	ck_assert_int_eq(spf_wire_ctl_decode(&c, sizeof(c), &cout, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(spf_wire_ctl_decode(&c, 3, &cout, err, sizeof(err)),
	    -1);
}
END_TEST

static Suite *
spf_pool_suite(void)
{
	Suite *s = suite_create("spf_pool");
	TCase *tc;

	tc = tcase_create("pool");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, answers_pass_fail_softfail_helo_through_workers);
	tcase_add_test(tc, concurrent_checks_from_eight_threads_all_right);
	tcase_add_test(tc, two_threads_share_one_worker);
	tcase_add_test(tc, worker_killed_mid_check_gives_temperror_then_recovers);
	tcase_add_test(tc, worker_over_deadline_is_killed_and_replaced);
	tcase_add_loop_test(tc, bad_worker_output_gives_temperror_then_recovers,
	    0, (int)(sizeof(bad_workers) / sizeof(bad_workers[0])));
	tcase_add_test(tc, idle_worker_death_costs_no_check);
	tcase_add_test(tc, retiring_worker_answers_and_is_replaced);
	tcase_add_test(tc,
	    supervisor_death_tempfails_checks_and_nothing_crashes);
	tcase_add_test(tc, worker_memory_is_limited);
	tcase_add_test(tc, worker_has_its_limits);
	tcase_add_test(tc, oversized_identity_is_none_without_a_worker);
	tcase_add_test(tc, worker_runs_as_spf_user_and_cannot_read_root_files);
	tcase_add_test(tc, free_ends_supervisor_and_workers);
	tcase_add_test(tc, bad_settings_fail_to_start);
	tcase_add_test(tc, pool_grows_when_all_busy_up_to_max_workers);
	tcase_add_test(tc, hanging_domain_limited_then_kept_as_temperror);
	tcase_add_test(tc, client_limit_gives_immediate_temperror);
	suite_add_tcase(s, tc);

	tc = tcase_create("wire");
	tcase_add_loop_test(tc, wire_request_fields_bounded, 0,
	    (int)(sizeof(req_cases) / sizeof(req_cases[0])));
	tcase_add_test(tc, wire_request_decode_refuses_bad_records);
	tcase_add_test(tc, wire_answer_checked_on_decode);
	tcase_add_test(tc, wire_hello_and_control_checked);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(spf_pool_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
