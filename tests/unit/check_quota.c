/*
 * check_quota - quota/quota.c over the memory store: which limits apply
 * (keys, exemptions, overrides), all-or-nothing admission, warn limits,
 * reservations, reply text, store failures and the administration calls.
 * The time is passed in.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "quota/quota.h"
#include "quota/store.h"
#include "util/tz.h"
#include "util/cidr.h"
#include "util/clock.h"
#include "util/log.h"

#define T0 1800000000000LL	/* a multiple of every bucket width used */
#define MIN (60LL * 1000)
#define H (60 * MIN)

static struct conf *conf;
static struct quota *q;

/* setup_with - conf from text (memory store, more store settings) */
static void
setup_with(const char *store, const char *text)
{
	char err[512], *full;
	size_t n = strlen(store) + strlen(text) + 64;

	full = malloc(n);
	snprintf(full, n, "store = { backend = \"memory\"; %s };\n%s", store,
	    text);
	conf = conf_load_string("test.conf", full, err, sizeof(err));
	free(full);
	ck_assert_msg(conf != NULL, "config: %s", err);
	q = quota_open(&conf->quota, err, sizeof(err));
	ck_assert_msg(q != NULL, "quota_open: %s", err);
}

static void
setup(const char *text)
{
	setup_with("", text);
}

static void
teardown(void)
{
	q = quota_close(q);
	conf = conf_free(conf);
}

static uint8_t addr_buf[16];

static const uint8_t *
addr(const char *s)
{
	ck_assert_int_eq(cidr_addr_parse(s, addr_buf), 0);
	return addr_buf;
}

static struct quota_amount
units(uint64_t msgs, uint64_t rcpts, uint64_t bytes)
{
	struct quota_amount a = { msgs, rcpts, bytes };

	return a;
}

/* admit1 - admit and return the result, checking the return value */
static enum quota_result
admit1(const struct quota_who *w, struct quota_amount a, int64_t now,
    struct quota_verdict *v)
{
	int r = quota_admit(q, w, &a, now, v);

	ck_assert_int_eq(r, v->result == QUOTA_ERROR ? -1 : 0);
	return v->result;
}

struct found {
	char name[64];
	char key[QUOTA_KEY_MAX];
	uint64_t used, limit, retry;
	int n;
};

static int
find_fn(const struct quota_entry *e, void *arg)
{
	struct found *f = arg;

	if (strcmp(e->limit->name, f->name) == 0 &&
	    strcmp(e->key, f->key) == 0) {
		f->used = e->used;
		f->limit = e->limit_value;
		f->retry = e->retry_after;
		f->n++;
	}
	return 0;
}

/* used_of - what quota_list says limit name holds for key (0: none) */
static uint64_t
used_of(const char *name, const char *key, int64_t now)
{
	struct found f;
	char err[256];

	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "%s", name);
	snprintf(f.key, sizeof(f.key), "%s", key);
	ck_assert_msg(quota_list(q, NULL, now, find_fn, &f, err,
	    sizeof(err)) == 0, "quota_list: %s", err);
	ck_assert_int_le(f.n, 1);
	return f.used;
}

static int
count_fn(const struct quota_entry *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

static int
entries(int64_t now)
{
	char err[256];
	int n = 0;

	ck_assert_int_eq(quota_list(q, NULL, now, count_fn, &n, err,
	    sizeof(err)), 0);
	return n;
}

/* quota_key for every kind of key. */
static const struct {
	const char *limit;	/* limits entry, name "k" */
	const char *sasl, *sender, *client;
	const char *want;	/* NULL: no key */
} kcases[] = {
	{ "key = \"sasl_username\";", "Alice", NULL, NULL, "Alice" },
	{ "key = \"sasl_username\";", NULL, "a@b.c", "192.0.2.1", NULL },
	{ "key = \"sasl_username\";", "", NULL, NULL, NULL },
	{ "key = \"sender\";", NULL, "Bob@Example.COM", NULL,
	  "bob@example.com" },
	{ "key = \"sender\";", NULL, "", NULL, "<>" },
	{ "key = \"sender\";", "alice", NULL, NULL, NULL },
	{ "key = \"sender_domain\";", NULL, "bob@Mail.Example.COM", NULL,
	  "mail.example.com" },
	{ "key = \"sender_domain\";", NULL, "", NULL, NULL },
	{ "key = \"sender_domain\";", NULL, "postmaster", NULL, NULL },
	{ "key = \"client_address\";", NULL, NULL, "192.0.2.77",
	  "192.0.2.77" },
	{ "key = \"client_address\";", NULL, NULL, "::ffff:192.0.2.77",
	  "192.0.2.77" },
	{ "key = \"client_address\";", NULL, NULL, "2001:db8::1",
	  "2001:db8::1" },
	{ "key = \"client_address\";", "alice", "a@b.c", NULL, NULL },
	{ "key = \"client_network\";", NULL, NULL, "192.0.2.77",
	  "192.0.2.0/24" },
	{ "key = \"client_network/16\";", NULL, NULL, "192.0.2.77",
	  "192.0.0.0/16" },
	{ "key = \"client_network\"; prefix = 32;", NULL, NULL, "192.0.2.77",
	  "192.0.2.77/32" },
	{ "key = \"client_network\";", NULL, NULL, "2001:db8:1:2:3::9",
	  "2001:db8:1:2::/64" },
	{ "key = \"client_network\"; prefix6 = 48;", NULL, NULL,
	  "2001:db8:1:2:3::9", "2001:db8:1::/48" },
	{ "key = \"client_network\";", "alice", NULL, NULL, NULL },
	{ "key = \"global\";", NULL, NULL, NULL, "*" },
};

START_TEST(keys_are_formed_per_kind)
{
	char text[512], key[QUOTA_KEY_MAX];
	struct quota_who w = { kcases[_i].sasl, kcases[_i].sender, NULL };
	int r;

	snprintf(text, sizeof(text), "limits = ( { name = \"k\"; %s count = "
	    "\"messages\"; limit = 10; period = \"1h\"; } );",
	    kcases[_i].limit);
	setup(text);
	if (kcases[_i].client != NULL)
		w.client_addr = addr(kcases[_i].client);
	r = quota_key(&conf->quota.limits[0], &w, key, sizeof(key));
	if (kcases[_i].want == NULL)
		ck_assert_msg(r == -1, "%s: got key \"%s\", want none",
		    kcases[_i].limit, key);
	else
		ck_assert_msg(r == 0 && strcmp(key, kcases[_i].want) == 0,
		    "%s: got %d \"%s\", want \"%s\"", kcases[_i].limit, r,
		    r == 0 ? key : "", kcases[_i].want);
	teardown();
}
END_TEST

/*
 * keys_are_cut_to_the_buffer - a key is cut to keylen-1 bytes and ended,
 * as written (SASL user name) or lower-cased (sender), and nothing past
 * its end is touched, for every buffer size from 1 on
 */
START_TEST(keys_are_cut_to_the_buffer)
{
	static const char *const cfg[] = {
		"limits = ( { name = \"u\"; key = \"sasl_username\"; count = "
		    "\"messages\"; limit = 1; period = \"1h\"; } );",
		"limits = ( { name = \"s\"; key = \"sender\"; count = "
		    "\"messages\"; limit = 1; period = \"1h\"; } );",
	};
	static const char *const want[] = { "AbCdE", "abcde" };
	struct quota_who w = { "AbCdE", "AbCdE", NULL };
	char key[16];
	size_t k, len, n;

	for (k = 0; k < 2; k++) {
		setup(cfg[k]);
		for (len = 1; len <= 8; len++) {
			memset(key, '#', sizeof(key));
			ck_assert_int_eq(quota_key(&conf->quota.limits[0], &w,
			    key, len), 0);
			n = len - 1 < 5 ? len - 1 : 5;
			ck_assert_msg(strlen(key) == n &&
			    strncmp(key, want[k], n) == 0, "%s, %zu bytes: "
			    "got \"%s\"", want[k], len, key);
			for (n++; n < sizeof(key); n++)
				ck_assert_msg(key[n] == '#', "%s, %zu bytes: "
				    "byte %zu written", want[k], len, n);
		}
		teardown();
	}
}
END_TEST

START_TEST(long_keys_are_cut_not_skipped)
{
	char sender[1000], key[QUOTA_KEY_MAX];
	struct quota_who w = { NULL, sender, NULL };
	struct quota_verdict v;

	memset(sender, 'a', sizeof(sender) - 1);
	sender[sizeof(sender) - 1] = '\0';
	setup("limits = ( { name = \"s\"; key = \"sender\"; count = "
	    "\"messages\"; limit = 1; period = \"1h\"; } );");
	ck_assert_int_eq(quota_key(&conf->quota.limits[0], &w, key, sizeof(key)),
	    0);
	ck_assert_uint_eq(strlen(key), QUOTA_KEY_MAX - 1);
	ck_assert_int_eq(admit1(&w, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&w, units(1, 1, 1), T0, &v), QUOTA_REFUSE);
	teardown();
}
END_TEST

START_TEST(limits_apply_only_when_their_key_forms)
{
	struct quota_who anon = { NULL, "x@example.org", NULL };
	struct quota_who alice = { "alice", "x@example.org", NULL };
	struct quota_verdict v;

	setup("limits = (\n"
	    "{ name = \"login\"; key = \"sasl_username\"; count = \"messages\";"
	    " limit = 1; period = \"1h\"; },\n"
	    "{ name = \"ip\"; key = \"client_address\"; count = \"messages\";"
	    " limit = 1; period = \"1h\"; },\n"
	    "{ name = \"all\"; key = \"global\"; count = \"messages\";"
	    " limit = 3; period = \"1h\"; } );");
	/* No login, no address: only global applies. */
	ck_assert_int_eq(admit1(&anon, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&anon, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_uint_eq(used_of("all", "*", T0), 2);
	ck_assert_uint_eq(entries(T0), 1);
	/* A login: its limit of 1 applies too. */
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v),
	    QUOTA_REFUSE);
	ck_assert_str_eq(v.limit->name, "login");
	ck_assert_str_eq(v.key, "alice");
	/* An amount of 0 for what a limit counts: it does not apply. */
	ck_assert_int_eq(admit1(&alice, units(0, 5, 100), T0, &v),
	    QUOTA_ADMIT);
	teardown();
}
END_TEST

START_TEST(exemptions_come_before_overrides_and_limits)
{
	struct quota_who mon = { "monitoring", NULL, NULL };
	struct quota_who inside = { "alice", NULL, NULL };
	struct quota_who bob = { "bob", NULL, NULL };
	struct quota_who carol = { "carol", NULL, NULL };
	struct quota_who dave = { "dave", NULL, NULL };
	struct quota_verdict v;
	int i;

	setup("limits = ( { name = \"login\"; key = \"sasl_username\"; "
	    "count = \"messages\"; limit = 1; period = \"1h\"; } );\n"
	    "overrides = ( { limit = \"login\"; key = \"monitoring\"; "
	    "value = 1; },\n"
	    " { limit = \"login\"; key = \"bob\"; value = 3; },\n"
	    " { limit = \"login\"; key = \"carol\"; value = \"unlimited\"; } );\n"
	    "exempt = { logins = [ \"monitoring\" ]; "
	    "networks = [ \"10.1.2.0/24\" ]; };");
	inside.client_addr = addr("10.1.2.9");
	for (i = 0; i < 10; i++) {
		/* exempt login: its override of 1 is never reached */
		ck_assert_int_eq(admit1(&mon, units(1, 1, 1), T0, &v),
		    QUOTA_ADMIT);
		ck_assert_ptr_null(v.limit);
		/* exempt network, whatever the login */
		ck_assert_int_eq(admit1(&inside, units(1, 1, 1), T0, &v),
		    QUOTA_ADMIT);
		/* unlimited override: the limit is gone for carol */
		ck_assert_int_eq(admit1(&carol, units(1, 1, 1), T0, &v),
		    QUOTA_ADMIT);
	}
	ck_assert_msg(entries(T0) == 0, "got %d counters, want none: exempt "
	    "and unlimited senders are not counted", entries(T0));
	/* numeric override replaces the limit's number */
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(admit1(&bob, units(1, 1, 1), T0, &v),
		    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&bob, units(1, 1, 1), T0, &v), QUOTA_REFUSE);
	ck_assert_uint_eq(v.used, 3);
	ck_assert_uint_eq(v.limit_value, 3);
	/* everyone else: the limit */
	ck_assert_int_eq(admit1(&dave, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&dave, units(1, 1, 1), T0, &v),
	    QUOTA_REFUSE);
	ck_assert_uint_eq(v.limit_value, 1);
	/* outside the exempt network alice counts again */
	inside.client_addr = addr("10.1.3.9");
	ck_assert_int_eq(admit1(&inside, units(1, 1, 1), T0, &v),
	    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&inside, units(1, 1, 1), T0, &v),
	    QUOTA_REFUSE);
	teardown();
}
END_TEST

START_TEST(override_keys_match_as_keys_are_formed)
{
	struct quota_who nl = { NULL, "NewsLetter@example.com", NULL };
	struct quota_who net = { NULL, NULL, NULL };
	struct quota_verdict v;
	int i;

	setup("limits = (\n"
	    "{ name = \"snd\"; key = \"sender\"; count = \"messages\"; "
	    "limit = 1; period = \"1h\"; },\n"
	    "{ name = \"net\"; key = \"client_network\"; count = \"messages\";"
	    " limit = 1; period = \"1h\"; } );\n"
	    "overrides = ( { limit = \"snd\"; key = \"newsletter@EXAMPLE.com\";"
	    " value = 5; },\n"
	    " { limit = \"net\"; key = \"192.0.2.200/24\"; value = 4; },\n"
	    " { limit = \"snd\"; key = \"NEWSLETTER@example.com\"; "
	    "value = 9; } );");
	for (i = 0; i < 5; i++)
		ck_assert_int_eq(admit1(&nl, units(1, 1, 1), T0, &v),
		    QUOTA_ADMIT);
	/* the first of two overrides that normalize alike decides */
	ck_assert_int_eq(admit1(&nl, units(1, 1, 1), T0, &v), QUOTA_REFUSE);
	ck_assert_str_eq(v.key, "newsletter@example.com");
	ck_assert_uint_eq(v.limit_value, 5);
	net.client_addr = addr("192.0.2.33");
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(admit1(&net, units(1, 1, 1), T0, &v),
		    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&net, units(1, 1, 1), T0, &v), QUOTA_REFUSE);
	ck_assert_str_eq(v.key, "192.0.2.0/24");
	teardown();
}
END_TEST

START_TEST(refusal_by_one_limit_charges_none)
{
	struct quota_who alice = { "alice", "alice@example.com", NULL };
	struct quota_verdict v;

	setup("limits = (\n"
	    "{ name = \"rcpt\"; key = \"sasl_username\"; count = "
	    "\"recipients\"; limit = 10; period = \"1h\"; },\n"
	    "{ name = \"msgs\"; key = \"sender\"; count = \"messages\"; "
	    "limit = 2; period = \"1h\"; },\n"
	    "{ name = \"bytes\"; key = \"global\"; count = \"bytes\"; "
	    "limit = 1000; period = \"1h\"; } );");
	ck_assert_int_eq(admit1(&alice, units(1, 3, 100), T0, &v),
	    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&alice, units(1, 3, 100), T0, &v),
	    QUOTA_ADMIT);
	/* msgs (second of three) refuses: none of the three is charged */
	ck_assert_int_eq(admit1(&alice, units(1, 3, 100), T0, &v),
	    QUOTA_REFUSE);
	ck_assert_str_eq(v.limit->name, "msgs");
	ck_assert_uint_eq(used_of("rcpt", "alice", T0), 6);
	ck_assert_uint_eq(used_of("msgs", "alice@example.com", T0), 2);
	ck_assert_uint_eq(used_of("bytes", "*", T0), 200);
	/* the last limit refuses: the first two are not charged either */
	ck_assert_int_eq(admit1(&alice, units(0, 4, 900), T0, &v),
	    QUOTA_REFUSE);
	ck_assert_str_eq(v.limit->name, "bytes");
	ck_assert_uint_eq(v.used, 200);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0), 6);
	ck_assert_int_eq(admit1(&alice, units(0, 4, 800), T0, &v),
	    QUOTA_ADMIT);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0), 10);
	ck_assert_uint_eq(used_of("bytes", "*", T0), 1000);
	teardown();
}
END_TEST

START_TEST(refusal_reports_the_longest_wait)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_verdict v;

	setup("limits = (\n"
	    "{ name = \"min\"; key = \"sasl_username\"; count = \"messages\";"
	    " limit = 1; period = \"1m\"; },\n"
	    "{ name = \"hour\"; key = \"sasl_username\"; count = "
	    "\"messages\"; limit = 1; period = \"1h\"; } );");
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v),
	    QUOTA_REFUSE);
	ck_assert_str_eq(v.limit->name, "hour");
	ck_assert_uint_eq(v.retry_after, 3660);
	ck_assert_int_eq(v.action, CONF_QACTION_DEFER);
	teardown();
}
END_TEST

START_TEST(warn_limits_admit_count_and_report)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_verdict v;

	setup("limits = (\n"
	    "{ name = \"soft\"; key = \"sasl_username\"; count = \"messages\";"
	    " limit = 1; period = \"1h\"; action = \"warn\"; },\n"
	    "{ name = \"hard\"; key = \"sasl_username\"; count = \"messages\";"
	    " limit = 3; period = \"1h\"; action = \"reject\"; } );");
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_uint_eq(v.nwarned, 0);
	ck_assert_ptr_null(v.limit);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_uint_eq(v.nwarned, 1);
	ck_assert_ptr_nonnull(v.limit);
	ck_assert_str_eq(v.limit->name, "soft");
	ck_assert_int_eq(v.action, CONF_QACTION_WARN);
	ck_assert_uint_eq(v.used, 1);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_uint_eq(used_of("soft", "alice", T0), 3);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v),
	    QUOTA_REFUSE);
	ck_assert_str_eq(v.limit->name, "hard");
	ck_assert_int_eq(v.action, CONF_QACTION_REJECT);
	ck_assert_uint_eq(used_of("soft", "alice", T0), 3);
	teardown();
}
END_TEST

START_TEST(reservations_commit_release_and_lapse)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_amount three = units(0, 3, 0);
	struct quota_verdict v;
	uint64_t t1, t2, t3, t4;
	char err[256];

	setup_with("reserve_ttl = \"10m\";",
	    "limits = ( { name = \"rcpt\"; key = \"sasl_username\"; count = "
	    "\"recipients\"; limit = 10; period = \"1d\"; } );");
	ck_assert_int_eq(quota_reserve(q, &alice, &three, T0, &t1, &v), 0);
	ck_assert_int_eq(v.result, QUOTA_ADMIT);
	ck_assert_uint_ne(t1, 0);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0), 3);
	/* released: refunded */
	ck_assert_int_eq(quota_release(q, t1, T0 + MIN, err, sizeof(err)), 0);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0 + MIN), 0);
	ck_assert_int_eq(quota_release(q, t1, T0 + MIN, err, sizeof(err)), 0);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0 + MIN), 0);
	/* committed: stays, also past reserve_ttl */
	ck_assert_int_eq(quota_reserve(q, &alice, &three, T0 + MIN, &t2, &v),
	    0);
	ck_assert_uint_ne(t2, t1);
	ck_assert_int_eq(quota_commit(q, t2, &alice, &three, T0 + 2 * MIN,
	    &v), 0);
	ck_assert_int_eq(v.result, QUOTA_ADMIT);
	ck_assert_int_eq(quota_release(q, t2, T0 + 3 * MIN, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0 + 3 * MIN), 3);
	/* neither: refunded once reserve_ttl has passed */
	ck_assert_int_eq(quota_reserve(q, &alice, &three, T0 + 3 * MIN, &t3,
	    &v), 0);
	ck_assert_int_eq(quota_reserve(q, &alice, &three, T0 + 3 * MIN, &t4,
	    &v), 0);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0 + 3 * MIN), 9);
	ck_assert_int_eq(quota_reserve(q, &alice, &three, T0 + 4 * MIN, &t1,
	    &v), 0);
	ck_assert_int_eq(v.result, QUOTA_REFUSE);
	ck_assert_uint_eq(t1, 0);
	ck_assert_int_eq(quota_commit(q, t4, &alice, &three, T0 + 5 * MIN,
	    &v), 0);
	ck_assert_int_eq(v.result, QUOTA_ADMIT);
	/* t3 lapses at T0 + 13 min; the admission at that time sees it. */
	ck_assert_int_eq(admit1(&alice, three, T0 + 13 * MIN - 1, &v),
	    QUOTA_REFUSE);
	ck_assert_int_eq(admit1(&alice, three, T0 + 13 * MIN, &v),
	    QUOTA_ADMIT);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0 + 13 * MIN), 9);
	/* a lapsed token's commit admits it again: full, refused */
	ck_assert_int_eq(quota_commit(q, t3, &alice, &three, T0 + 14 * MIN,
	    &v), 0);
	ck_assert_int_eq(v.result, QUOTA_REFUSE);
	ck_assert_uint_eq(v.used, 9);
	ck_assert_int_eq(quota_release(q, t3, T0 + 14 * MIN, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0 + 14 * MIN), 9);
	ck_assert_int_eq(quota_release(q, 0, T0, err, sizeof(err)), 0);
	ck_assert_int_eq(quota_commit(q, 0, &alice, &three, T0, &v), 0);
	ck_assert_int_eq(v.result, QUOTA_ADMIT);
	ck_assert_uint_eq(used_of("rcpt", "alice", T0 + 14 * MIN), 9);
	teardown();
}
END_TEST

START_TEST(reservations_refund_every_limit_they_charged)
{
	struct quota_who alice = { "alice", "alice@example.com", NULL };
	struct quota_amount a = units(1, 2, 500);
	struct quota_verdict v;
	uint64_t tok;
	char err[256];

	setup("limits = (\n"
	    "{ name = \"w\"; key = \"sasl_username\"; count = \"recipients\";"
	    " limit = 10; period = \"1h\"; },\n"
	    "{ name = \"c\"; key = \"sender\"; count = \"messages\"; "
	    "kind = \"calendar\"; limit = 10; period = \"day\"; "
	    "timezone = \"Europe/Berlin\"; },\n"
	    "{ name = \"r\"; key = \"global\"; count = \"bytes\"; "
	    "kind = \"rate\"; limit = 1000; period = \"1s\"; burst = 999; "
	    "} );");
	ck_assert_int_eq(quota_reserve(q, &alice, &a, T0, &tok, &v), 0);
	ck_assert_uint_eq(used_of("w", "alice", T0), 2);
	ck_assert_uint_eq(used_of("c", "alice@example.com", T0), 1);
	ck_assert_uint_eq(used_of("r", "*", T0), 500);
	ck_assert_int_eq(quota_release(q, tok, T0, err, sizeof(err)), 0);
	ck_assert_uint_eq(entries(T0), 0);
	teardown();
}
END_TEST

/* Reply text. */
static char name_h[] = "login-hourly", name_d[] = "login-daily";

static const struct {
	uint64_t period;	/* s; 0: calendar day */
	uint64_t used, limit, retry;
	const char *key;
	const char *tmpl;
	const char *want;
} rcases[] = {
	{ 3600, 500, 500, 720, "alice", NULL,
	  "Quota exceeded for alice: 500/500 recipients per 1h, retry in 12m" },
	{ 3600, 500, 500, 0, "alice", NULL,
	  "Quota exceeded for alice: 500/500 recipients per 1h" },
	{ 0, 10000, 10000, 5400, "bob", NULL,
	  "Quota exceeded for bob: 10000/10000 recipients per day, retry in "
	  "1h30m" },
	{ 86400, 1, 1, 30, "x", NULL,
	  "Quota exceeded for x: 1/1 recipients per 1d, retry in 30s" },
	{ 5400, 1, 1, 59, "x", NULL,
	  "Quota exceeded for x: 1/1 recipients per 90m, retry in 59s" },
	{ 90, 1, 1, 61, "x", NULL,
	  "Quota exceeded for x: 1/1 recipients per 90s, retry in 2m" },
	{ 3600, 1, 1, 3599, "x", "${retry}", "1h" },
	{ 3600, 1, 1, 3600, "x", "${retry}", "1h" },
	{ 3600, 1, 1, 3601, "x", "${retry}", "1h1m" },
	{ 3600, 1, 1, 86399, "x", "${retry}", "1d" },
	{ 3600, 1, 1, 90000, "x", "${retry}", "1d1h" },
	{ 3600, 1, 1, 60, "x", "${retry}", "1m" },
	{ 3600, 7, 9, 60, "al\r\nice", "${name}: ${key} ${used} of ${limit} "
	  "${count} a ${period}; ${retry} $5 ${", "login-hourly: al??ice 7 of 9 "
	  "recipients a 1h; 1m $5 ${" },
};

START_TEST(reply_text_from_template_or_default)
{
	struct conf_limit l;
	struct quota_verdict v;
	char buf[512];

	memset(&l, 0, sizeof(l));
	l.name = rcases[_i].period ? name_h : name_d;
	l.count = CONF_QCOUNT_RECIPIENTS;
	l.kind = rcases[_i].period ? CONF_QKIND_WINDOW : CONF_QKIND_CALENDAR;
	l.period = rcases[_i].period;
	l.reply = (char *)(uintptr_t)rcases[_i].tmpl;
	memset(&v, 0, sizeof(v));
	v.result = QUOTA_REFUSE;
	v.limit = &l;
	v.used = rcases[_i].used;
	v.limit_value = rcases[_i].limit;
	v.retry_after = rcases[_i].retry;
	snprintf(v.key, sizeof(v.key), "%s", rcases[_i].key);
	quota_reply(&v, buf, sizeof(buf));
	ck_assert_msg(strcmp(buf, rcases[_i].want) == 0, "got \"%s\", want "
	    "\"%s\"", buf, rcases[_i].want);
	/* cut to the buffer, never past it */
	quota_reply(&v, buf, 10);
	ck_assert_int_eq(strncmp(buf, rcases[_i].want, 9), 0);
	ck_assert_uint_eq(strlen(buf), strlen(rcases[_i].want) < 9 ?
	    strlen(rcases[_i].want) : 9);
}
END_TEST

START_TEST(reply_of_a_real_refusal)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_verdict v;
	char buf[256];

	setup("limits = ( { name = \"login-hourly\"; key = \"sasl_username\"; "
	    "count = \"recipients\"; kind = \"window\"; limit = 500; "
	    "period = \"1h\"; } );");
	ck_assert_int_eq(admit1(&alice, units(1, 500, 1), T0, &v),
	    QUOTA_ADMIT);
	/* The bucket of T0 leaves the count at T0 + 61 min. */
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0 + 49 * MIN, &v),
	    QUOTA_REFUSE);
	quota_reply(&v, buf, sizeof(buf));
	ck_assert_str_eq(buf, "Quota exceeded for alice: 500/500 recipients "
	    "per 1h, retry in 12m");
	teardown();
}
END_TEST

START_TEST(calendar_and_rate_through_admission)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_who bulk = { "bulk", NULL, NULL };
	struct quota_verdict v;
	/* 2026-03-28 23:30 in Berlin (22:30 UTC) */
	int64_t t = 1774737000000LL;

	setup("limits = (\n"
	    "{ name = \"day\"; key = \"sasl_username\"; count = \"messages\";"
	    " kind = \"calendar\"; limit = 2; period = \"day\"; "
	    "timezone = \"Europe/Berlin\"; },\n"
	    "{ name = \"rate\"; key = \"sasl_username\"; count = "
	    "\"recipients\"; kind = \"rate\"; limit = 60; period = \"1m\"; } );\n"
	    "overrides = ( { limit = \"rate\"; key = \"bulk\"; value = 120; },\n"
	    " { limit = \"day\"; key = \"bulk\"; value = 100; } );");
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), t, &v), QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), t + 1000, &v),
	    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), t + 2000, &v),
	    QUOTA_REFUSE);
	ck_assert_str_eq(v.limit->name, "day");
	ck_assert_uint_eq(v.retry_after, 30 * 60 - 2);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), t + 30 * MIN, &v),
	    QUOTA_ADMIT);
	/* rate: 1 per second for alice, 2 per second for bulk */
	ck_assert_int_eq(admit1(&alice, units(0, 1, 1), t + 30 * MIN + 500,
	    &v), QUOTA_REFUSE);
	ck_assert_str_eq(v.limit->name, "rate");
	ck_assert_uint_eq(v.retry_after, 1);
	ck_assert_int_eq(admit1(&bulk, units(0, 1, 1), t, &v), QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&bulk, units(0, 1, 1), t + 500, &v),
	    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&bulk, units(0, 1, 1), t + 999, &v),
	    QUOTA_REFUSE);
	ck_assert_uint_eq(v.limit_value, 120);
	teardown();
}
END_TEST

/*
 * zone_tables_built_when_quota_opens - quota_open() builds the calendar
 * limits' zone tables (which sets TZ, tz.h), so that the first admission
 * among a daemon's threads does not; admissions now then build none
 */
START_TEST(zone_tables_built_when_quota_opens)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_verdict v;
	unsigned long n0 = tz_builds();

	setup("limits = (\n"
	    "{ name = \"day\"; key = \"sasl_username\"; count = \"messages\";"
	    " kind = \"calendar\"; limit = 2; period = \"day\"; "
	    "timezone = \"Asia/Kathmandu\"; },\n"
	    "{ name = \"month\"; key = \"sasl_username\"; count = "
	    "\"messages\"; kind = \"calendar\"; limit = 9; "
	    "period = \"month\"; timezone = \"America/St_Johns\"; } );");
	ck_assert_uint_eq(tz_builds(), n0 + 2);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), clock_wall_ms(), &v),
	    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), clock_wall_ms(), &v),
	    QUOTA_ADMIT);
	ck_assert_uint_eq(tz_builds(), n0 + 2);
	teardown();
}
END_TEST

START_TEST(many_limits_in_one_admission)
{
	char text[8192];
	size_t len = 0;
	struct quota_who w = { "alice", NULL, NULL };
	struct quota_verdict v;
	int i;

	len += (size_t)snprintf(text + len, sizeof(text) - len, "limits = (");
	for (i = 0; i < 40; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "%s{ name = \"l%d\"; key = \"global\"; count = "
		    "\"messages\"; limit = %d; period = \"1h\"; }",
		    i ? ", " : "", i, 100 - i);
	snprintf(text + len, sizeof(text) - len, " );");
	setup(text);
	for (i = 0; i < 61; i++)
		ck_assert_int_eq(admit1(&w, units(1, 1, 1), T0, &v),
		    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&w, units(1, 1, 1), T0, &v), QUOTA_REFUSE);
	ck_assert_str_eq(v.limit->name, "l39");
	ck_assert_uint_eq(used_of("l0", "*", T0), 61);
	teardown();
}
END_TEST

START_TEST(list_set_and_reset)
{
	struct quota_who alice = { "alice", "Alice@Example.com", NULL };
	struct quota_verdict v;
	struct found f;
	char err[256];

	setup("limits = (\n"
	    "{ name = \"h\"; key = \"sasl_username\"; count = \"messages\"; "
	    "limit = 10; period = \"1h\"; },\n"
	    "{ name = \"s\"; key = \"sender\"; count = \"messages\"; "
	    "limit = 10; period = \"1h\"; } );\n"
	    "overrides = ( { limit = \"h\"; key = \"alice\"; value = 50; } );");
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v), QUOTA_ADMIT);
	ck_assert_int_eq(quota_set(q, "alice", "h", 42, T0, err, sizeof(err)),
	    0);
	memset(&f, 0, sizeof(f));
	snprintf(f.name, sizeof(f.name), "h");
	snprintf(f.key, sizeof(f.key), "alice");
	ck_assert_int_eq(quota_list(q, "h", T0, find_fn, &f, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(f.n, 1);
	ck_assert_uint_eq(f.used, 42);
	ck_assert_uint_eq(f.limit, 50);
	ck_assert_uint_eq(f.retry, 0);
	ck_assert_int_eq(quota_set(q, "alice", "h", 50, T0, err, sizeof(err)),
	    0);
	ck_assert_int_eq(admit1(&alice, units(1, 1, 1), T0, &v),
	    QUOTA_REFUSE);
	ck_assert_uint_eq(v.used, 50);
	/* set keys are normalized as admissions form them */
	ck_assert_int_eq(quota_set(q, "ALICE@example.COM", "s", 10, T0, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(used_of("s", "alice@example.com", T0), 10);
	ck_assert_int_eq(quota_set(q, "alice", NULL, 1, T0, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(quota_set(q, "alice", "nope", 1, T0, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(quota_list(q, "nope", T0, find_fn, &f, err,
	    sizeof(err)), -1);
	/* reset one limit, then all */
	ck_assert_int_eq(quota_reset(q, "alice", "h", T0, err, sizeof(err)),
	    0);
	ck_assert_uint_eq(used_of("h", "alice", T0), 0);
	ck_assert_uint_eq(used_of("s", "alice@example.com", T0), 10);
	ck_assert_int_eq(quota_reset(q, "Alice@Example.com", NULL, T0, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(entries(T0), 0);
	ck_assert_int_eq(quota_reset(q, "alice", "nope", T0, err,
	    sizeof(err)), -1);
	teardown();
}
END_TEST

/* quota_used reads one key's counter of one limit, as admissions form
 * the key; nothing for a key never charged or a who without one */
START_TEST(used_reads_one_counter)
{
	struct quota_who alice = { NULL, "alice@Example.com", NULL };
	struct quota_who bob = { NULL, "bob@example.org", NULL };
	struct quota_who null = { NULL, NULL, NULL };
	struct quota_verdict v;
	uint64_t used = 99;
	char err[256];

	setup("limits = (\n"
	    "{ name = \"d\"; key = \"sender_domain\"; count = "
	    "\"recipients\"; kind = \"calendar\"; period = \"day\"; "
	    "limit = 1000; action = \"warn\"; } );");
	ck_assert_int_eq(admit1(&alice, units(1, 3, 100), T0, &v),
	    QUOTA_ADMIT);
	ck_assert_int_eq(admit1(&alice, units(1, 4, 100), T0, &v),
	    QUOTA_ADMIT);
	ck_assert_int_eq(quota_used(q, "d", &alice, T0, &used, err,
	    sizeof(err)), 0);
	ck_assert_msg(used == 7, "got %llu, want 7",
	    (unsigned long long)used);
	ck_assert_int_eq(quota_used(q, "d", &bob, T0, &used, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(used, 0);
	ck_assert_int_eq(quota_used(q, "d", &null, T0, &used, err,
	    sizeof(err)), 0);
	ck_assert_uint_eq(used, 0);
	ck_assert_int_eq(quota_used(q, "nope", &alice, T0, &used, err,
	    sizeof(err)), -1);
	ck_assert_msg(strstr(err, "nope") != NULL, "got \"%s\"", err);
	teardown();
}
END_TEST

/* A store that fails when told to: the memory store behind a switch. */
struct flaky {
	struct quota_store base;
	struct quota_store *mem;
	int fail;
	int fail_end;		/* batch_end fails (as a full LMDB map) */
	int fail_in_batch;	/* calls fail inside a batch (then not) */
	int in_batch;
	unsigned int begins;
};

#define FLAKY(s) ((struct flaky *)(s))
#define FAILS(s, err, errlen) do {					\
	if (FLAKY(s)->fail || (FLAKY(s)->in_batch &&			\
	    FLAKY(s)->fail_in_batch)) {					\
		snprintf(err, errlen, "connection refused");		\
		return -1;						\
	}								\
} while (0)

static int
flaky_admit(struct quota_store *s, const struct quota_op *ops, size_t n,
    int64_t now, uint64_t token, int64_t exp, struct quota_op_result *res,
    int *admitted, char *err, size_t errlen)
{
	FAILS(s, err, errlen);
	return FLAKY(s)->mem->ops->admit(FLAKY(s)->mem, ops, n, now, token,
	    exp, res, admitted, err, errlen);
}

static int
flaky_commit(struct quota_store *s, uint64_t token, const struct quota_op *ops,
    size_t n, int64_t now, struct quota_op_result *res, int *admitted,
    char *err, size_t errlen)
{
	FAILS(s, err, errlen);
	return FLAKY(s)->mem->ops->commit(FLAKY(s)->mem, token, ops, n, now,
	    res, admitted, err, errlen);
}

static int
flaky_release(struct quota_store *s, uint64_t token, int64_t now, char *err,
    size_t errlen)
{
	FAILS(s, err, errlen);
	return FLAKY(s)->mem->ops->release(FLAKY(s)->mem, token, now, err,
	    errlen);
}

static int
flaky_get(struct quota_store *s, const char *rkey, struct quota_state *st,
    int *found, char *err, size_t errlen)
{
	FAILS(s, err, errlen);
	return FLAKY(s)->mem->ops->get(FLAKY(s)->mem, rkey, st, found, err,
	    errlen);
}

static int
flaky_put(struct quota_store *s, const char *rkey,
    const struct quota_state *st, int64_t exp, char *err, size_t errlen)
{
	FAILS(s, err, errlen);
	return FLAKY(s)->mem->ops->put(FLAKY(s)->mem, rkey, st, exp, err,
	    errlen);
}

static int
flaky_del(struct quota_store *s, const char *rkey, char *err, size_t errlen)
{
	FAILS(s, err, errlen);
	return FLAKY(s)->mem->ops->del(FLAKY(s)->mem, rkey, err, errlen);
}

static int
flaky_iterate(struct quota_store *s, int (*fn)(const char *,
    const struct quota_state *, void *), void *arg, char *err, size_t errlen)
{
	FAILS(s, err, errlen);
	return FLAKY(s)->mem->ops->iterate(FLAKY(s)->mem, fn, arg, err,
	    errlen);
}

static void
flaky_close(struct quota_store *s)
{
	FLAKY(s)->mem->ops->close(FLAKY(s)->mem);
	free(s);
}

static const struct quota_store_ops flaky_ops = {
	"flaky", flaky_admit, flaky_commit, flaky_release, flaky_get,
	flaky_put, flaky_del, flaky_iterate, flaky_close, NULL, NULL, NULL,
};

static int
flaky_batch(struct quota_store *s, char *err, size_t errlen)
{
	FAILS(s, err, errlen);
	FLAKY(s)->in_batch = 1;
	FLAKY(s)->begins++;
	return 0;
}

static int
flaky_batch_end(struct quota_store *s, char *err, size_t errlen)
{
	FLAKY(s)->in_batch = 0;
	if (FLAKY(s)->fail_in_batch) {
		FLAKY(s)->fail_in_batch = 0;
		snprintf(err, errlen, "abandoned");
		return -1;
	}
	FAILS(s, err, errlen);
	if (FLAKY(s)->fail_end) {
		snprintf(err, errlen, "MDB_MAP_FULL");
		return -1;
	}
	return 0;
}

/* the same store with batch operations that fail with it */
static const struct quota_store_ops flaky_batch_ops = {
	"flaky", flaky_admit, flaky_commit, flaky_release, flaky_get,
	flaky_put, flaky_del, flaky_iterate, flaky_close, flaky_batch,
	flaky_batch_end, NULL,
};

/*
 * A memory store that pipelines (as Redis does) and holds each run at a
 * gate until the test opens it, so that runs stay in flight as long as
 * the test wants (a batch whose descriptor was asked for).
 */
static const struct quota_store_ops *gate_mem;
static struct quota_store_ops gate_ops;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static unsigned int gate_open, gate_runs;
static size_t gate_sizes[16];

static void
gate_pipeline(struct quota_store *s, struct quota_store_call *c, size_t n)
{
	size_t i;

	pthread_mutex_lock(&gate_mu);
	while (gate_open == 0)
		pthread_cond_wait(&gate_cv, &gate_mu);
	gate_open--;
	if (gate_runs < 16)
		gate_sizes[gate_runs] = n;
	gate_runs++;
	pthread_mutex_unlock(&gate_mu);
	for (i = 0; i < n; i++) {
		c[i].err[0] = '\0';
		if (c[i].kind == QUOTA_CALL_ADMIT)
			c[i].rc = gate_mem->admit(s, c[i].ops, c[i].n,
			    c[i].now_ms, c[i].token, c[i].expires_ms, c[i].res,
			    &c[i].admitted, c[i].err, sizeof(c[i].err));
		else if (c[i].kind == QUOTA_CALL_COMMIT)
			c[i].rc = gate_mem->commit(s, c[i].token, c[i].ops,
			    c[i].n, c[i].now_ms, c[i].res, &c[i].admitted,
			    c[i].err, sizeof(c[i].err));
		else
			c[i].rc = gate_mem->release(s, c[i].token, c[i].now_ms,
			    c[i].err, sizeof(c[i].err));
	}
}

/* gate_let - let n more runs through */
static void
gate_let(unsigned int n)
{
	pthread_mutex_lock(&gate_mu);
	gate_open += n;
	pthread_cond_broadcast(&gate_cv);
	pthread_mutex_unlock(&gate_mu);
}

/* wait_answer - the async descriptor readable within 5 s; 1 if so */
static int
wait_answer(int fd)
{
	struct timespec ts = { 0, 1000000 };
	char b[64];
	int i;

	for (i = 0; i < 5000; i++) {
		if (read(fd, b, sizeof(b)) > 0)
			return 1;
		nanosleep(&ts, NULL);
	}
	return 0;
}

/* What the done functions saw, in the order they ran. */
static int seen[32], nseen;

static void
note_done(void *arg, int rc, const struct quota_verdict *v, uint64_t tok)
{
	ck_assert_int_eq(rc, 0);
	if (nseen < 32) {
		seen[nseen++] = (int)(intptr_t)arg * 10 +
		    (v->result == QUOTA_ADMIT);
	}
}

/* committed - a commit queued by settle_done went through */
static void
committed(void *arg, int rc, const struct quota_verdict *v, uint64_t tok)
{
	(void)arg;
	(void)tok;
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(v->result, QUOTA_ADMIT);
}

static struct quota_batch *gb;	/* the gated tests' batch */

/* settle_done - as a policy daemon does: commit once admitted */
static void
settle_done(void *arg, int rc, const struct quota_verdict *v, uint64_t tok)
{
	note_done(arg, rc, v, tok);
	if (tok != 0)
		quota_submit_commit(gb, tok, NULL, NULL, T0, committed, NULL);
}

/* gate_open_quota - the quota over the gated store, limit 3 per hour */
static int
gate_open_quota(void)
{
	struct quota_store *st;
	char err[256];

	conf = conf_load_string("test.conf", "store = { backend = \"memory\"; "
	    "reserve_ttl = 60; };\nlimits = ( { name = \"h\"; key = "
	    "\"sasl_username\"; count = \"recipients\"; limit = 3; "
	    "period = \"1h\"; } );", err, sizeof(err));
	ck_assert_msg(conf != NULL, "%s", err);
	st = store_mem_open(&conf->quota, err, sizeof(err));
	ck_assert_ptr_nonnull(st);
	gate_mem = st->ops;
	gate_ops = *st->ops;
	gate_ops.pipeline = gate_pipeline;
	st->ops = &gate_ops;
	q = quota_open_store(&conf->quota, st, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	gate_open = gate_runs = 0;
	nseen = 0;
	gb = quota_batch_new(q);
	return quota_batch_fd(gb);
}

/*
 * async_runs_go_in_order_and_coalesce - what is flushed while a run is
 * in flight waits, with every flush after it, for the next run; the
 * answers come only from quota_poll, in call order, each call seeing
 * the ones before it; the completions' commits go with the next run;
 * quota_wait waits for what is in flight
 */
START_TEST(async_runs_go_in_order_and_coalesce)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_amount one = units(0, 1, 0);
	int fd = gate_open_quota();

	ck_assert_int_ge(fd, 0);
	/* two reservations: their run leaves, held at the gate */
	quota_submit_admit(gb, &alice, &one, T0, 1, settle_done, (void *)1);
	quota_submit_admit(gb, &alice, &one, T0, 1, settle_done, (void *)2);
	ck_assert_int_eq(quota_flush(gb), QUOTA_PENDING);
	ck_assert_int_eq(nseen, 0);	/* nothing delivered yet */
	/* two more flushes meanwhile: both wait for run 2 */
	quota_submit_admit(gb, &alice, &one, T0, 1, note_done, (void *)3);
	ck_assert_int_eq(quota_flush(gb), QUOTA_PENDING);
	quota_submit_admit(gb, &alice, &one, T0, 1, note_done, (void *)4);
	ck_assert_int_eq(quota_flush(gb), QUOTA_PENDING);
	ck_assert_int_eq(quota_poll(gb), QUOTA_PENDING); /* still in flight */
	ck_assert_int_eq(nseen, 0);

	/* run 1 answers: its two admissions, in order */
	gate_let(1);
	ck_assert(wait_answer(fd));
	ck_assert_int_eq(quota_poll(gb), QUOTA_PENDING);
	ck_assert_int_eq(nseen, 2);
	ck_assert_int_eq(seen[0], 11);
	ck_assert_int_eq(seen[1], 21);
	/* the poll started run 2: 3 and 4, and the two commits */
	gate_let(1);
	ck_assert(wait_answer(fd));
	ck_assert_int_eq(quota_poll(gb), QUOTA_DONE);
	ck_assert_int_eq(nseen, 4);
	ck_assert_int_eq(seen[2], 31);	/* the third of 3: admitted */
	ck_assert_int_eq(seen[3], 40);	/* the fourth: refused */
	pthread_mutex_lock(&gate_mu);
	ck_assert_uint_eq(gate_runs, 2);
	ck_assert_uint_eq(gate_sizes[0], 2);
	ck_assert_uint_eq(gate_sizes[1], 4);	/* 3 and 4, 2 commits */
	pthread_mutex_unlock(&gate_mu);

	/* a run in flight, then quota_wait: it delivers the answers */
	quota_submit_admit(gb, &alice, &one, T0, 0, note_done, (void *)5);
	quota_submit_admit(gb, &alice, &one, T0, 0, note_done, (void *)6);
	ck_assert_int_eq(quota_flush(gb), QUOTA_PENDING);
	gate_let(1);
	quota_wait(gb);
	ck_assert_int_eq(nseen, 6);
	ck_assert_int_eq(seen[4], 50);
	ck_assert_int_eq(seen[5], 60);
	gb = quota_batch_free(gb);
	teardown();
}
END_TEST

/*
 * one_call_and_batch_free - a flush of one call with nothing in flight
 * is answered at once (QUOTA_DONE, no run); quota_batch_free delivers a
 * run still in flight
 */
START_TEST(one_call_and_batch_free)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_amount one = units(0, 1, 0);

	(void)gate_open_quota();
	gate_let(1);
	quota_submit_admit(gb, &alice, &one, T0, 1, note_done, (void *)1);
	ck_assert_int_eq(quota_flush(gb), QUOTA_DONE);
	ck_assert_int_eq(nseen, 1);
	ck_assert_int_eq(seen[0], 11);
	/* two in flight at the batch's end: delivered there */
	quota_submit_admit(gb, &alice, &one, T0, 1, note_done, (void *)2);
	quota_submit_admit(gb, &alice, &one, T0, 1, note_done, (void *)3);
	ck_assert_int_eq(quota_flush(gb), QUOTA_PENDING);
	gate_let(1);
	gb = quota_batch_free(gb);
	ck_assert_int_eq(nseen, 3);
	ck_assert_int_eq(seen[2], 31);
	q = quota_close(q);
	conf = conf_free(conf);
}
END_TEST

/* Answers noted by noted_done. */
static int nnoted, noted_rc[8];
static enum quota_result noted_res[8];

static void
noted_done(void *arg, int rc, const struct quota_verdict *v, uint64_t tok)
{
	(void)arg;
	(void)tok;
	if (nnoted < 8) {
		noted_rc[nnoted] = rc;
		noted_res[nnoted] = v->result;
	}
	nnoted++;
}

/* chain_done - noted, and the first answer submits one more admission */
static struct quota_batch *chain_b;

static void
chain_done(void *arg, int rc, const struct quota_verdict *v,
    uint64_t token)
{
	static struct quota_who alice = { "alice", NULL, NULL };
	static struct quota_amount one = { 1, 1, 1 };

	noted_done(arg, rc, v, token);
	if (nnoted == 1)
		quota_submit_admit(chain_b, &alice, &one, T0, 0, noted_done,
		    NULL);
}

/*
 * batch_calls_reach_the_store_and_count_errors - a flush runs its calls
 * in one batch of a store that has them, what the completions submit
 * included; when the batch fails at its end, after the completions
 * ran, the flush says so (QUOTA_FAILED, one store error counted); when
 * it cannot begin, the calls run one by one; a call that fails inside
 * the batch before any completion ran makes the flush run them again,
 * one by one, outside it
 */
START_TEST(batch_calls_reach_the_store_and_count_errors)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_amount one = units(1, 1, 1);
	struct flaky *fl = calloc(1, sizeof(*fl));
	struct quota_batch *b;
	char err[256];
	int i;

	conf = conf_load_string("test.conf", "limits = ( { name = \"h\"; "
	    "key = \"sasl_username\"; count = \"messages\"; limit = 50; "
	    "period = \"1h\"; } );", err, sizeof(err));
	ck_assert_ptr_nonnull(conf);
	fl->base.ops = &flaky_ops;
	fl->base.conf = &conf->quota;
	fl->mem = store_mem_open(&conf->quota, err, sizeof(err));
	q = quota_open_store(&conf->quota, &fl->base, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	b = quota_batch_new(q);
	log_discard(1);
	/* no batch operations: the calls one by one */
	ck_assert_int_eq(quota_batch_may_fail(b), 0);
	quota_submit_admit(b, &alice, &one, T0, 0, noted_done, NULL);
	quota_submit_admit(b, &alice, &one, T0, 0, noted_done, NULL);
	ck_assert_int_eq(quota_flush(b), QUOTA_DONE);
	ck_assert_int_eq(nnoted, 2);
	ck_assert_int_eq(noted_res[1], QUOTA_ADMIT);
	ck_assert_uint_eq(quota_errors(q), 0);
	/* with them: one batch, the completion's call in it too */
	fl->base.ops = &flaky_batch_ops;
	ck_assert_int_eq(quota_batch_may_fail(b), 1);
	nnoted = 0;
	chain_b = b;
	quota_submit_admit(b, &alice, &one, T0, 0, chain_done, NULL);
	ck_assert_int_eq(quota_flush(b), QUOTA_DONE);
	ck_assert_int_eq(nnoted, 2);
	ck_assert_uint_eq(fl->begins, 1);
	ck_assert_int_eq(noted_res[1], QUOTA_ADMIT);
	/* the batch fails at its end: the completions ran, the flush fails */
	nnoted = 0;
	fl->fail_end = 1;
	quota_submit_admit(b, &alice, &one, T0, 0, chain_done, NULL);
	quota_submit_admit(b, &alice, &one, T0, 1, noted_done, NULL);
	quota_submit_release(b, 42, T0);
	ck_assert_int_eq(nnoted, 0);
	ck_assert_int_eq(quota_flush(b), QUOTA_FAILED);
	ck_assert_int_eq(nnoted, 3);
	ck_assert_uint_eq(fl->begins, 2);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(noted_rc[i], 0);
		ck_assert_int_eq(noted_res[i], QUOTA_ADMIT);
	}
	ck_assert_msg(strstr(quota_batch_error(b), "MDB_MAP_FULL") != NULL,
	    "error: %s", quota_batch_error(b));
	ck_assert_uint_eq(quota_errors(q), 1);
	/* the same through quota_wait: -1 */
	nnoted = 0;
	quota_submit_admit(b, &alice, &one, T0, 0, noted_done, NULL);
	ck_assert_int_eq(quota_wait(b), -1);
	ck_assert_int_eq(nnoted, 1);
	ck_assert_uint_eq(quota_errors(q), 2);
	fl->fail_end = 0;
	ck_assert_int_eq(quota_wait(b), 0);
	/* a call fails in the batch: run again alone, it succeeds */
	nnoted = 0;
	fl->fail_in_batch = 1;
	quota_submit_admit(b, &alice, &one, T0, 0, noted_done, NULL);
	quota_submit_admit(b, &alice, &one, T0, 0, noted_done, NULL);
	ck_assert_int_eq(quota_flush(b), QUOTA_DONE);
	ck_assert_int_eq(nnoted, 2);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(noted_res[i], QUOTA_ADMIT);
	ck_assert_uint_eq(quota_errors(q), 2);
	/* it cannot begin: the calls one by one, each failing */
	fl->fail = 1;
	nnoted = 0;
	quota_submit_admit(b, &alice, &one, T0, 0, noted_done, NULL);
	quota_submit_admit(b, &alice, &one, T0, 0, noted_done, NULL);
	ck_assert_int_eq(quota_flush(b), QUOTA_DONE);
	ck_assert_int_eq(nnoted, 2);
	ck_assert_int_eq(noted_res[0], QUOTA_ERROR);
	ck_assert_int_eq(noted_res[1], QUOTA_ERROR);
	ck_assert_uint_eq(quota_errors(q), 4);
	fl->fail = 0;
	b = quota_batch_free(b);
	log_discard(0);
	teardown();
}
END_TEST

START_TEST(store_failure_is_quota_error)
{
	struct quota_who alice = { "alice", NULL, NULL };
	struct quota_amount one = units(1, 1, 1);
	struct quota_verdict v;
	struct flaky *fl = calloc(1, sizeof(*fl));
	char err[256], buf[256];
	uint64_t tok;

	conf = conf_load_string("test.conf", "limits = ( { name = \"h\"; "
	    "key = \"sasl_username\"; count = \"messages\"; limit = 1; "
	    "period = \"1h\"; } );", err, sizeof(err));
	ck_assert_ptr_nonnull(conf);
	fl->base.ops = &flaky_ops;
	fl->base.conf = &conf->quota;
	fl->mem = store_mem_open(&conf->quota, err, sizeof(err));
	q = quota_open_store(&conf->quota, &fl->base, err, sizeof(err));
	ck_assert_ptr_nonnull(q);
	log_discard(1);

	ck_assert_int_eq(quota_reserve(q, &alice, &one, T0, &tok, &v), 0);
	ck_assert_uint_ne(tok, 0);
	fl->fail = 1;
	ck_assert_int_eq(quota_admit(q, &alice, &one, T0, &v), -1);
	ck_assert_int_eq(v.result, QUOTA_ERROR);
	ck_assert_msg(strstr(v.error, "connection refused") != NULL,
	    "got error \"%s\"", v.error);
	ck_assert_uint_eq(quota_errors(q), 1);
	quota_reply(&v, buf, sizeof(buf));
	ck_assert_str_eq(buf, "Quota service temporarily unavailable");
	ck_assert_int_eq(quota_reserve(q, &alice, &one, T0, &tok, &v), -1);
	ck_assert_uint_eq(tok, 0);
	ck_assert_int_eq(quota_commit(q, 77, &alice, &one, T0, &v), -1);
	ck_assert_int_eq(v.result, QUOTA_ERROR);
	ck_assert_int_eq(quota_release(q, 77, T0, err, sizeof(err)), -1);
	ck_assert_int_eq(quota_list(q, NULL, T0, count_fn, &(int){ 0 }, err,
	    sizeof(err)), -1);
	ck_assert_int_eq(quota_reset(q, "alice", NULL, T0, err, sizeof(err)),
	    -1);
	ck_assert_int_eq(quota_set(q, "alice", "h", 1, T0, err, sizeof(err)),
	    -1);
	ck_assert_uint_eq(quota_errors(q), 7);
	/* exempt or nothing to count: the store is not asked */
	alice.sasl_username = NULL;
	ck_assert_int_eq(quota_admit(q, &alice, &one, T0, &v), 0);
	ck_assert_int_eq(v.result, QUOTA_ADMIT);
	/* back: the counter held */
	fl->fail = 0;
	alice.sasl_username = "alice";
	ck_assert_int_eq(quota_admit(q, &alice, &one, T0, &v), 0);
	ck_assert_int_eq(v.result, QUOTA_REFUSE);
	log_discard(0);
	teardown();
}
END_TEST

START_TEST(memory_store_reclaims_expired_records)
{
	struct quota_who w = { NULL, NULL, NULL };
	struct quota_verdict v;
	char sender[64];
	int i;

	setup("limits = ( { name = \"s\"; key = \"sender\"; count = "
	    "\"messages\"; limit = 5; period = \"1m\"; buckets = 6; } );");
	w.sender = sender;
	for (i = 0; i < 500; i++) {
		snprintf(sender, sizeof(sender), "u%d@example.com", i);
		ck_assert_int_eq(admit1(&w, units(1, 1, 1), T0, &v),
		    QUOTA_ADMIT);
	}
	ck_assert_int_eq(entries(T0), 500);
	/* Long after, every admission sweeps a few chains. */
	for (i = 0; i < 2000; i++) {
		snprintf(sender, sizeof(sender), "late%d@example.com", i % 3);
		ck_assert_int_eq(admit1(&w, units(1, 1, 1), T0 + H + i * MIN,
		    &v), QUOTA_ADMIT);
	}
	ck_assert_int_le(entries(T0 + H), 3);
	teardown();
}
END_TEST

#define NTHREADS 8
#define PER_THREAD 400

static void *
admit_many(void *arg)
{
	struct quota_who w = { "alice", NULL, NULL };
	struct quota_amount a = { 1, 1, 1 };
	struct quota_verdict v;
	long *admitted = arg;
	int i;

	for (i = 0; i < PER_THREAD; i++)
		if (quota_admit(q, &w, &a, T0 + i, &v) == 0 &&
		    v.result == QUOTA_ADMIT)
			(*admitted)++;
	return NULL;
}

START_TEST(threads_admit_exactly_the_limit)
{
	pthread_t th[NTHREADS];
	long n[NTHREADS], total = 0;
	int i;

	setup("limits = ( { name = \"h\"; key = \"sasl_username\"; count = "
	    "\"messages\"; limit = 1000; period = \"1h\"; } );");
	for (i = 0; i < NTHREADS; i++) {
		n[i] = 0;
		ck_assert_int_eq(pthread_create(&th[i], NULL, admit_many, &n[i]),
		    0);
	}
	for (i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		total += n[i];
	}
	ck_assert_msg(total == 1000, "got %ld admitted by %d threads, want "
	    "1000", total, NTHREADS);
	ck_assert_uint_eq(used_of("h", "alice", T0 + PER_THREAD), 1000);
	teardown();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("quota");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("keys_are_formed_per_kind");
	tcase_add_loop_test(tc, keys_are_formed_per_kind, 0,
	    sizeof(kcases) / sizeof(kcases[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("long_keys_are_cut_not_skipped");
	tcase_add_test(tc, long_keys_are_cut_not_skipped);
	suite_add_tcase(s, tc);
	tc = tcase_create("keys_are_cut_to_the_buffer");
	tcase_add_test(tc, keys_are_cut_to_the_buffer);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits_apply_only_when_their_key_forms");
	tcase_add_test(tc, limits_apply_only_when_their_key_forms);
	suite_add_tcase(s, tc);
	tc = tcase_create("exemptions_come_before_overrides_and_limits");
	tcase_add_test(tc, exemptions_come_before_overrides_and_limits);
	suite_add_tcase(s, tc);
	tc = tcase_create("override_keys_match_as_keys_are_formed");
	tcase_add_test(tc, override_keys_match_as_keys_are_formed);
	suite_add_tcase(s, tc);
	tc = tcase_create("refusal_by_one_limit_charges_none");
	tcase_add_test(tc, refusal_by_one_limit_charges_none);
	suite_add_tcase(s, tc);
	tc = tcase_create("refusal_reports_the_longest_wait");
	tcase_add_test(tc, refusal_reports_the_longest_wait);
	suite_add_tcase(s, tc);
	tc = tcase_create("warn_limits_admit_count_and_report");
	tcase_add_test(tc, warn_limits_admit_count_and_report);
	suite_add_tcase(s, tc);
	tc = tcase_create("reservations_commit_release_and_lapse");
	tcase_add_test(tc, reservations_commit_release_and_lapse);
	suite_add_tcase(s, tc);
	tc = tcase_create("reservations_refund_every_limit_they_charged");
	tcase_add_test(tc, reservations_refund_every_limit_they_charged);
	suite_add_tcase(s, tc);
	tc = tcase_create("reply_text_from_template_or_default");
	tcase_add_loop_test(tc, reply_text_from_template_or_default, 0,
	    sizeof(rcases) / sizeof(rcases[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("reply_of_a_real_refusal");
	tcase_add_test(tc, reply_of_a_real_refusal);
	suite_add_tcase(s, tc);
	tc = tcase_create("calendar_and_rate_through_admission");
	tcase_add_test(tc, calendar_and_rate_through_admission);
	tcase_add_test(tc, zone_tables_built_when_quota_opens);
	suite_add_tcase(s, tc);
	tc = tcase_create("many_limits_in_one_admission");
	tcase_add_test(tc, many_limits_in_one_admission);
	suite_add_tcase(s, tc);
	tc = tcase_create("used_reads_one_counter");
	tcase_add_test(tc, used_reads_one_counter);
	suite_add_tcase(s, tc);
	tc = tcase_create("list_set_and_reset");
	tcase_add_test(tc, list_set_and_reset);
	suite_add_tcase(s, tc);
	tc = tcase_create("store_failure_is_quota_error");
	tcase_add_test(tc, store_failure_is_quota_error);
	suite_add_tcase(s, tc);
	tc = tcase_create("batch_calls_reach_the_store_and_count_errors");
	tcase_add_test(tc, batch_calls_reach_the_store_and_count_errors);
	suite_add_tcase(s, tc);
	tc = tcase_create("memory_store_reclaims_expired_records");
	tcase_add_test(tc, memory_store_reclaims_expired_records);
	suite_add_tcase(s, tc);
	tc = tcase_create("async_runs");
	tcase_add_test(tc, async_runs_go_in_order_and_coalesce);
	tcase_add_test(tc, one_call_and_batch_free);
	suite_add_tcase(s, tc);
	tc = tcase_create("threads_admit_exactly_the_limit");
	tcase_add_test(tc, threads_admit_exactly_the_limit);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
