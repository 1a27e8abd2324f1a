/*
 * check_policy_proto - the incremental policy request parser
 * (policy/proto.c): split reads, pipelining, line ends, limits, junk.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/proto.h"

#define RCPT_REQ "request=smtpd_access_policy\nprotocol_state=RCPT\n" \
	"sender=alice@example.com\nrecipient=bob@example.net\n" \
	"instance=11.22.33\nsasl_username=alice\n\n"

/*
 * feed_all - feed text in pieces of step bytes; count complete requests
 * (checking each with fn) and return them, or -1 at the first error.
 */
static int
feed_all(struct proto *p, const char *text, size_t len, size_t step,
    void (*fn)(const struct proto *, int), char *err, size_t errlen)
{
	size_t off = 0, n, used;
	int nreq = 0;

	while (off < len) {
		n = len - off < step ? len - off : step;
		while (n > 0) {
			enum proto_status st = proto_feed(p, text + off, n,
			    &used, err, errlen);

			ck_assert_uint_le(used, n);
			off += used;
			n -= used;
			if (st == PROTO_ERROR)
				return -1;
			if (st == PROTO_REQUEST) {
				if (fn != NULL)
					fn(p, nreq);
				nreq++;
			}
		}
	}
	return nreq;
}

static void
check_rcpt(const struct proto *p, int i)
{
	ck_assert_str_eq(proto_get(p, PA_REQUEST), "smtpd_access_policy");
	ck_assert_str_eq(proto_get(p, PA_PROTOCOL_STATE), "RCPT");
	ck_assert_str_eq(proto_get(p, PA_SENDER), "alice@example.com");
	ck_assert_str_eq(proto_get(p, PA_RECIPIENT), "bob@example.net");
	ck_assert_str_eq(proto_get(p, PA_INSTANCE), "11.22.33");
	ck_assert_str_eq(proto_get(p, PA_SASL_USERNAME), "alice");
	ck_assert_ptr_null(proto_get(p, PA_SIZE));
	ck_assert_uint_eq(proto_nattrs(p), 6);
}

/* split reads: every piece size from 1 byte to the whole request */
START_TEST(split_reads_any_piece_size)
{
	size_t len = strlen(RCPT_REQ);
	struct proto *p = proto_new(NULL);
	char err[128];

	ck_assert_int_eq(feed_all(p, RCPT_REQ, len, (size_t)_i + 1,
	    check_rcpt, err, sizeof(err)), 1);
	ck_assert_int_eq(proto_eof(p, err, sizeof(err)), 0);
	proto_free(p);
}
END_TEST

static void
check_numbered(const struct proto *p, int i)
{
	char want[32];

	snprintf(want, sizeof(want), "q%d", i);
	ck_assert_str_eq(proto_get(p, PA_QUEUE_ID), want);
}

/* pipelining: 50 requests in one buffer come out one by one, in order */
START_TEST(pipelined_requests_in_order)
{
	char text[8192];
	size_t len = 0;
	struct proto *p = proto_new(NULL);
	char err[128];
	int i;

	for (i = 0; i < 50; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len,
		    "request=smtpd_access_policy\nqueue_id=q%d\n\n", i);
	ck_assert_int_eq(feed_all(p, text, len, len, check_numbered, err,
	    sizeof(err)), 50);
	proto_free(p);
	p = proto_new(NULL);
	ck_assert_int_eq(feed_all(p, text, len, 3, check_numbered, err,
	    sizeof(err)), 50);
	proto_free(p);
}
END_TEST

START_TEST(crlf_and_lf_alike)
{
	const char *crlf = "request=smtpd_access_policy\r\nprotocol_state="
	    "RCPT\r\nsender=alice@example.com\r\nrecipient=bob@example.net\r\n"
	    "instance=11.22.33\r\nsasl_username=alice\r\n\r\n";
	const char *mixed = "request=smtpd_access_policy\nprotocol_state="
	    "RCPT\r\nsender=alice@example.com\nrecipient=bob@example.net\r\n"
	    "instance=11.22.33\nsasl_username=alice\r\n\n";
	struct proto *p = proto_new(NULL);
	char err[128];

	ck_assert_int_eq(feed_all(p, crlf, strlen(crlf), 1, check_rcpt, err,
	    sizeof(err)), 1);
	ck_assert_int_eq(feed_all(p, mixed, strlen(mixed), 5, check_rcpt, err,
	    sizeof(err)), 1);
	proto_free(p);
}
END_TEST

START_TEST(missing_terminator_is_error_at_eof)
{
	const char *t = "request=smtpd_access_policy\nprotocol_state=RCPT\n";
	struct proto *p = proto_new(NULL);
	char err[128];

	ck_assert_int_eq(feed_all(p, t, strlen(t), 4, NULL, err,
	    sizeof(err)), 0);
	ck_assert(proto_pending(p));
	ck_assert_int_eq(proto_eof(p, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "empty line"));
	proto_free(p);
	/* a line cut short too */
	p = proto_new(NULL);
	ck_assert_int_eq(feed_all(p, "request=smtpd", 13, 13, NULL, err,
	    sizeof(err)), 0);
	ck_assert_int_eq(proto_eof(p, err, sizeof(err)), -1);
	proto_free(p);
	/* nothing at all is fine */
	p = proto_new(NULL);
	ck_assert_int_eq(proto_eof(p, err, sizeof(err)), 0);
	proto_free(p);
}
END_TEST

START_TEST(oversized_line_is_error)
{
	struct proto_limits lim = { 100, 10, 4000 };
	struct proto *p = proto_new(&lim);
	char text[300], err[128];

	memset(text, 'a', sizeof(text));
	memcpy(text, "sender=", 7);
	ck_assert_int_eq(feed_all(p, text, sizeof(text), 1, NULL, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "line too long");
	/* sticky */
	ck_assert_int_eq(feed_all(p, RCPT_REQ, strlen(RCPT_REQ), 100, NULL,
	    err, sizeof(err)), -1);
	proto_free(p);
	/* exactly line_max is fine */
	p = proto_new(&lim);
	memset(text, 'a', 100);
	memcpy(text, "sender=", 7);
	text[100] = '\n';
	text[101] = '\n';
	ck_assert_int_eq(feed_all(p, text, 102, 7, NULL, err, sizeof(err)), 1);
	ck_assert_uint_eq(strlen(proto_get(p, PA_SENDER)), 93);
	proto_free(p);
}
END_TEST

START_TEST(too_many_attributes_or_bytes_is_error)
{
	struct proto_limits lim = { 100, 5, 120 };
	struct proto *p = proto_new(&lim);
	char err[128];
	const char *six = "a=1\nb=2\nc=3\nd=4\ne=5\nf=6\n\n";
	const char *big = "x=0123456789012345678901234567890123456789\n"
	    "y=0123456789012345678901234567890123456789\n"
	    "z=0123456789012345678901234567890123456789\n\n";

	ck_assert_int_eq(feed_all(p, six, strlen(six), 64, NULL, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "too many attributes");
	proto_free(p);
	p = proto_new(&lim);
	ck_assert_int_eq(feed_all(p, big, strlen(big), 64, NULL, err,
	    sizeof(err)), -1);
	ck_assert_str_eq(err, "request too large");
	proto_free(p);
}
END_TEST

/* binary junk: NUL, control bytes, a lone CR, a line without "=" */
static const struct {
	const char *text;
	size_t len;
} junk[] = {
	{ "request=smtpd\0access\n\n", 22 },
	{ "request=x\x01y\n\n", 13 },
	{ "request=x\ry\n\n", 13 },
	{ "\x7f\x45\x4c\x46\x02\x01\x01\n\n", 9 },
	{ "GET / HTTP/1.0\r\n\r\n", 18 },
	{ "=value\n\n", 8 },
	{ "\n", 1 },
	{ "\r\n", 2 },
};

START_TEST(binary_junk_is_error)
{
	struct proto *p = proto_new(NULL);
	char err[128];

	ck_assert_int_eq(feed_all(p, junk[_i].text, junk[_i].len, 1, NULL,
	    err, sizeof(err)), -1);
	ck_assert_int_eq(proto_eof(p, err, sizeof(err)), -1);
	proto_free(p);
}
END_TEST

START_TEST(high_bytes_are_kept)
{
	const char *t = "request=smtpd_access_policy\nsender=j\xc3\xb6rg@"
	    "example.de\n\n";
	struct proto *p = proto_new(NULL);
	char err[128];

	ck_assert_int_eq(feed_all(p, t, strlen(t), 2, NULL, err,
	    sizeof(err)), 1);
	ck_assert_str_eq(proto_get(p, PA_SENDER), "j\xc3\xb6rg@example.de");
	proto_free(p);
}
END_TEST

START_TEST(duplicate_attribute_last_wins)
{
	const char *t = "request=smtpd_access_policy\nsender=first@x\n"
	    "sender=second@x\nsasl_username=a\nsasl_username=\n\n";
	struct proto *p = proto_new(NULL);
	char err[128];

	ck_assert_int_eq(feed_all(p, t, strlen(t), 3, NULL, err,
	    sizeof(err)), 1);
	ck_assert_str_eq(proto_get(p, PA_SENDER), "second@x");
	ck_assert_str_eq(proto_get(p, PA_SASL_USERNAME), "");
	ck_assert_uint_eq(proto_nattrs(p), 5);
	proto_free(p);
}
END_TEST

START_TEST(empty_values_and_unknown_names)
{
	const char *t = "request=smtpd_access_policy\nsender=\n"
	    "future_attribute=42\nccert_subject=\nvalue_with=equals=sign\n"
	    "queue_id=AB=CD\n\n";
	struct proto *p = proto_new(NULL);
	char err[128];

	ck_assert_int_eq(feed_all(p, t, strlen(t), 1, NULL, err,
	    sizeof(err)), 1);
	ck_assert_str_eq(proto_get(p, PA_SENDER), "");
	ck_assert_str_eq(proto_get(p, PA_CCERT_SUBJECT), "");
	ck_assert_str_eq(proto_get(p, PA_QUEUE_ID), "AB=CD");
	ck_assert_ptr_null(proto_get(p, PA_RECIPIENT));
	ck_assert_uint_eq(proto_nattrs(p), 6);
	proto_free(p);
}
END_TEST

/* every attribute of Postfix 2.1 to 3.8 is known by its name */
START_TEST(knows_postfix_attribute_names)
{
	static const char *const names[] = { "request", "protocol_state",
		"protocol_name", "helo_name", "queue_id", "sender",
		"recipient", "recipient_count", "client_address",
		"client_name", "reverse_client_name", "instance",
		"sasl_method", "sasl_username", "sasl_sender", "size",
		"ccert_subject", "ccert_issuer", "ccert_fingerprint",
		"encryption_protocol", "encryption_cipher",
		"encryption_keysize", "etrn_domain", "stress",
		"ccert_pubkey_fingerprint", "client_port", "policy_context",
		"server_address", "server_port", "compatibility_level",
		"mail_version" };
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int a = proto_attr_lookup(names[i], strlen(names[i]));

		ck_assert_int_ge(a, 0);
		ck_assert_str_eq(proto_attr_name((enum proto_attr)a),
		    names[i]);
	}
	ck_assert_int_eq(proto_attr_lookup("send", 4), -1);
	ck_assert_int_eq(proto_attr_lookup("senderx", 7), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("policy_proto");
	TCase *tc = tcase_create("parser");
	SRunner *sr;
	int nf;

	tcase_add_loop_test(tc, split_reads_any_piece_size, 0,
	    (int)strlen(RCPT_REQ));
	tcase_add_test(tc, pipelined_requests_in_order);
	tcase_add_test(tc, crlf_and_lf_alike);
	tcase_add_test(tc, missing_terminator_is_error_at_eof);
	tcase_add_test(tc, oversized_line_is_error);
	tcase_add_test(tc, too_many_attributes_or_bytes_is_error);
	tcase_add_loop_test(tc, binary_junk_is_error, 0,
	    (int)(sizeof(junk) / sizeof(junk[0])));
	tcase_add_test(tc, high_bytes_are_kept);
	tcase_add_test(tc, duplicate_attribute_last_wins);
	tcase_add_test(tc, empty_values_and_unknown_names);
	tcase_add_test(tc, knows_postfix_attribute_names);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
