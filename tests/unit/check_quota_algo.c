#include "config.h"
#include <check.h>
#include <stdlib.h>
START_TEST(placeholder)
{
	ck_assert_int_eq(1, 1);
}
END_TEST
int
main(void)
{
	Suite *s = suite_create("placeholder");
	TCase *tc = tcase_create("placeholder");
	SRunner *sr;
	int nf;
	tcase_add_test(tc, placeholder);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
