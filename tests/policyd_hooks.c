/*
 * policyd_hooks - the test hook of tests/outpost-policyd-test, which is
 * outpost-policyd linked with -Wl,--wrap=store_lmdb_open and this file;
 * never in the installed daemon.
 *
 * With OUTPOST_TEST_FAIL_COMMIT=PATH in the environment, the LMDB store
 * that quota_open() opens gets a batch_end that, while the file PATH
 * exists, makes the batch's transaction fail as a commit that fails
 * does: it poisons the batch with a call LMDB refuses (an op without a
 * limit), so that LMDB aborts it and nothing of it is stored, after
 * every completion of the flush ran (quota.h, QUOTA_FAILED).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quota/store.h"

struct quota_store *__real_store_lmdb_open(const struct conf_quota *, char *,
    size_t);
struct quota_store *__wrap_store_lmdb_open(const struct conf_quota *, char *,
    size_t);

static const struct quota_store_ops *real_ops;
static struct quota_store_ops hook_ops;

/* hook_batch_end - batch_end, failing while the file named exists */
static int
hook_batch_end(struct quota_store *s, char *err, size_t errlen)
{
	const char *path = getenv("OUTPOST_TEST_FAIL_COMMIT");
	struct quota_op bad;
	struct quota_op_result res;
	int admitted;

	if (path != NULL && access(path, F_OK) == 0) {
		memset(&bad, 0, sizeof(bad));
		(void)real_ops->admit(s, &bad, 1, 0, 0, 0, &res, &admitted,
		    err, errlen);
	}
	return real_ops->batch_end(s, err, errlen);
}

struct quota_store *
__wrap_store_lmdb_open(const struct conf_quota *c, char *err, size_t errlen)
{
	struct quota_store *s = __real_store_lmdb_open(c, err, errlen);

	if (s == NULL || getenv("OUTPOST_TEST_FAIL_COMMIT") == NULL)
		return s;
	real_ops = s->ops;
	hook_ops = *s->ops;
	hook_ops.batch_end = hook_batch_end;
	s->ops = &hook_ops;
	return s;
}
