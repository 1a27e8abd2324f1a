/*
 * quota_impl - what quota.c offers the other files of the quota library
 * (quota_batch.c, quota_key.c, quota_admin.c) and they offer it; not for callers
 * outside quota/.
 */
#ifndef OUTPOST_QUOTA_QUOTA_IMPL_H
#define OUTPOST_QUOTA_QUOTA_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_quota.h"
#include "quota/quota.h"
#include "quota/store.h"

/* quota.c */
/* quota_metric_store - count one store exchange of kind op ("admit",
 * "commit", "release", "pipeline") that began at metrics_now_us() t0 */
void quota_metric_store(const char *op, uint64_t t0);
const struct conf_quota *quota_conf_of(const struct quota *q);
struct quota_store *quota_store_of(struct quota *q);
/* quota_new_token - a new reservation token, never 0 */
uint64_t quota_new_token(int64_t now);
/* quota_exempt - who is exempt from every limit */
int quota_exempt(const struct conf_quota *c, const struct quota_who *who);
/*
 * quota_build_ops - one op per limit that applies to who (quota.h, 2 and
 * 3) into ops (conf->nlimits of them); idx[k] is op k's limit index.  0,
 * or -1 when a calendar period cannot be found.
 */
int quota_build_ops(const struct quota *q, const struct quota_who *who,
    const struct quota_amount *amt, int64_t now, struct quota_op *ops,
    size_t *idx, size_t *nops, char *err, size_t errlen);
/*
 * quota_verdict_of - the verdict of the store's answer (res, admitted) to
 * ops; v was cleared to QUOTA_ADMIT
 */
void quota_verdict_of(const struct quota *q, const struct quota_op *ops,
    const size_t *idx, const struct quota_op_result *res, size_t n,
    int admitted, struct quota_verdict *v);
/* quota_limit_index - the index of the limit called name; 0, or -1 */
int quota_limit_index(const struct quota *q, const char *name,
    size_t *out);
/* quota_effective - the limit to run for (i, key): *eff, or -1 if unlimited */
int quota_effective(const struct quota *q, size_t i, const char *key,
    const struct conf_limit **lim, uint64_t *eff);
/* quota_store_failed - count and log a store error; -1 */
int quota_store_failed(struct quota *q, const char *what, const char *err);
/* quota_ms_to_s - ms in whole seconds, rounded up */
uint64_t quota_ms_to_s(uint64_t ms);

/* quota_key.c */
/*
 * quota_copy_trunc - s into out (outlen > 0), cut to outlen-1 bytes,
 * lower-cased if lower
 */
void quota_copy_trunc(const char *s, char *out, size_t outlen, int lower);
/* quota_norm_key - a key a person wrote, in the form quota_key() gives */
void quota_norm_key(const struct conf_limit *l, const char *in, char *out,
    size_t outlen);

#endif
