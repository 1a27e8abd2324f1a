/*
 * reply - the text of outpost-policyd's answers (SMTPD_POLICY_README:
 * "action=...", then an empty line) and of its verdict log lines, made
 * from a request (policy/proto.h) and a quota verdict.  Pure functions:
 * no state, nothing allocated; every output goes into the caller's
 * buffer, cut to fit.
 */
#ifndef OUTPOST_POLICY_REPLY_H
#define OUTPOST_POLICY_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "conf/conf_common.h"
#include "policy/proto.h"
#include "quota/quota.h"

/* preq_who - who sends p's mail; who's strings point into p, and its
 * client address into addr (which must live as long as who) */
void preq_who(const struct proto *p, struct quota_who *who,
    uint8_t addr[16]);
/* preq_num - the numeric attribute a of p, 0 when absent or no number */
uint64_t preq_num(const struct proto *p, enum proto_attr a);
/* preq_log_id - what p's log lines start with: the queue id, else the
 * instance, else "NOQUEUE"; a string of p's or a constant */
const char *preq_log_id(const struct proto *p);

/* reply_on_error - the action for a store error under store.on_error:
 * DUNNO (accept) or DEFER_IF_PERMIT with a text; a constant */
const char *reply_on_error(enum conf_on_error);
/* reply_set - reply (len >= 3 bytes) is "action=ACTION\n\n"; a cut
 * reply still ends with its empty line */
void reply_set(char *reply, size_t len, const char *action);
/* reply_refused - reply is the action of v's refusing (or warning)
 * limit: 450 4.7.1, 550 5.7.1 or HOLD with the quota's text in printable
 * ASCII, or DUNNO for warn; 0 */
int reply_refused(const struct quota_verdict *v, char *reply, size_t len);
/* reply_log_verdict - log v's refusal or warning for request id at
 * stage (nothing when v neither refuses nor warns) */
void reply_log_verdict(const char *id, const char *stage,
    const struct quota_verdict *v);

#endif
