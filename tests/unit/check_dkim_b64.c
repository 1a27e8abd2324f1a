/*
 * check_dkim_b64 - dkim/b64: RFC 4648 vectors both ways, whitespace
 * skipped, bad input and short output buffers refused.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dkim/b64.h"

static const struct {
	const char *raw, *b64;
} vectors[] = {		/* RFC 4648 section 10 */
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

START_TEST(encode_matches_rfc4648)
{
	struct buf b = BUF_INIT;

	buf_append(&b, "b=", 2);	/* appends */
	b64_encode(&b, (const unsigned char *)vectors[_i].raw,
	    strlen(vectors[_i].raw));
	ck_assert_msg(b.len == 2 + strlen(vectors[_i].b64) &&
	    strcmp(b.data + 2, vectors[_i].b64) == 0 &&
	    memcmp(b.data, "b=", 2) == 0, "got \"%s\", want \"b=%s\"",
	    b.data, vectors[_i].b64);
	buf_free(&b);
}
END_TEST

START_TEST(decode_matches_rfc4648)
{
	unsigned char out[16];
	size_t n = 99;
	const char *in = vectors[_i].b64;

	if (*in == '\0') {	/* empty is not a value */
		ck_assert_int_eq(b64_decode(in, 0, out, sizeof(out), &n), -1);
		return;
	}
	ck_assert_int_eq(b64_decode(in, strlen(in), out, sizeof(out), &n), 0);
	ck_assert_msg(n == strlen(vectors[_i].raw) &&
	    memcmp(out, vectors[_i].raw, n) == 0, "%s: got %zu bytes, want "
	    "\"%s\"", in, n, vectors[_i].raw);
}
END_TEST

START_TEST(decode_skips_whitespace)
{
	const char *in = " Zm9v\r\n\tYmFy \n";
	unsigned char out[16];
	size_t n = 0;

	ck_assert_int_eq(b64_decode(in, strlen(in), out, sizeof(out), &n), 0);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(memcmp(out, "foobar", 6), 0);
}
END_TEST

static const char *const bad[] = {
	"Zm9",		/* not a multiple of 4 */
	"Zm9v!mFy",	/* not in the alphabet */
	"   \r\n",	/* nothing */
	"Zm 9",		/* 3 characters after the space */
};

START_TEST(decode_refuses_what_is_not_base64)
{
	unsigned char out[16];
	size_t n = 0;

	ck_assert_msg(b64_decode(bad[_i], strlen(bad[_i]), out, sizeof(out),
	    &n) == -1, "\"%s\": got 0, want -1", bad[_i]);
}
END_TEST

START_TEST(decode_refuses_output_over_its_bound)
{
	unsigned char out[6];
	size_t n = 0;

	ck_assert_int_eq(b64_decode("Zm9vYmFy", 8, out, 6, &n), 0);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(b64_decode("Zm9vYmFy", 8, out, 5, &n), -1);
	ck_assert_int_eq(b64_decode("Zm9vYmFyYg==", 12, out, sizeof(out),
	    &n), -1);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dkim_b64");
	TCase *tc;
	SRunner *sr;
	int nf;

	tc = tcase_create("encode_matches_rfc4648");
	tcase_add_loop_test(tc, encode_matches_rfc4648, 0,
	    sizeof(vectors) / sizeof(vectors[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("decode_matches_rfc4648");
	tcase_add_loop_test(tc, decode_matches_rfc4648, 0,
	    sizeof(vectors) / sizeof(vectors[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("decode_skips_whitespace");
	tcase_add_test(tc, decode_skips_whitespace);
	suite_add_tcase(s, tc);
	tc = tcase_create("decode_refuses_what_is_not_base64");
	tcase_add_loop_test(tc, decode_refuses_what_is_not_base64, 0,
	    sizeof(bad) / sizeof(bad[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("decode_refuses_output_over_its_bound");
	tcase_add_test(tc, decode_refuses_output_over_its_bound);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
