/*
 * milter_impl - what the parts of the milter's message handling share,
 * and nobody else may see: the state of one connection and of its
 * message, and the calls between the parts.
 *
 *	milter.c	the handlers (milter.h), the message lifetime
 *	gen.c		configuration generations and their references
 *	milter_spf.c	the SPF checks through the worker pool
 *	milter_quota.c	the quota reservations of a message
 *	milter_metrics.c what it counts
 *	milter_deliver.c deliverability checks at the end of message
 *
 * State has two lifetimes: struct milter_conn (connect..close) and
 * struct msg (MAIL..EOM or abort), each released by one function
 * (milter_conn_free, msg_reset in milter.c).  One connection is handled
 * by one thread at a time, so nothing here takes a lock except the
 * generation calls.  Strings in these structs are owned by them unless
 * marked borrowed.
 */
#ifndef OUTPOST_MILTER_IMPL_H
#define OUTPOST_MILTER_IMPL_H

#include <netinet/in.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>

#include "dkim/decide.h"
#include "dkim/sign.h"
#include "milter/milter.h"
#include "quota/quota.h"
#include "spf/spf.h"
#include "util/metrics.h"

/* One header field kept for the signer until the From field is known. */
struct hdr {
	char *name;
	char *value;
	size_t vlen;
};

/* A reservation of the message: its token and what it reserved. */
struct msg_resv {
	uint64_t token;
	struct quota_amount amt;
	int64_t at;			/* when it was made (ms) */
};

struct msg {
	int active;
	int skip;			/* not signing: ignore the rest */
	int untrusted;			/* found at MAIL; logged at body */
	int body_started;		/* decision made, signer fed */
	int failed;			/* internal error: on_error */
	int reject;			/* malformed and on_malformed=reject */
	char qid[64];
	struct hdr *hdrs;
	size_t nhdrs, caphdrs;
	size_t hbytes;			/* kept: text and MILTER_FIELD_COST */
	size_t hfields;			/* fields seen, kept or not */
	int oversized;			/* header section past the bounds */
	unsigned int nfrom;
	size_t from;			/* index of the first From */
	struct dkim_signer *signer;
	struct dkim_decision dec;
	/* quotas */
	char *sender;			/* envelope sender, no <>; "" = <> */
	struct msg_resv *tokens;	/* reservations to commit or release */
	size_t ntokens, captokens;
	uint64_t rcpts_eom;		/* recipients to charge at EOM */
	uint64_t size;			/* bytes seen: header fields, body */
	int hold;			/* quarantine at EOM */
	char hold_reason[400];
	/* SPF */
	int spf_in;			/* inbound checked: spf_ans is set */
	int spf_in_due;			/* its refusal is due at EOM */
	struct spf_answer spf_ans;
	int spf_out_pass;		/* outbound preflight passed */
};

struct milter_conn {
	const struct milter_io *io;	/* borrowed from the engine */
	void *ctx;			/* the engine's, passed to io */
	struct milter_gen *gen;		/* a reference (milter_gen_release) */
	unsigned long pflags;		/* negotiated SMFIP_* flags */
	unsigned long pflags_actions;	/* negotiated SMFIF_* actions */
	int have_addr;
	uint8_t addr[16];
	char client[INET6_ADDRSTRLEN + 2];
	char *daemon_name;
	char *auth;
	int non_smtp;			/* cleanup(8) for sendmail(1) */
	char helo[SPF_NAME_MAX];	/* HELO/EHLO name, "" if none */
	int counting;			/* quotas apply on this connection */
	struct msg msg;
};

/* ---- gen.c: configuration generations ---- */

/* milter_gen_acquire - a reference to the current generation, or NULL */
struct milter_gen *milter_gen_acquire(void);
/* milter_gen_release - drop a reference (NULL: nothing); the last frees */
void milter_gen_release(struct milter_gen *);
/* milter_gen_counts_rcpts - does cf count recipients (RCPT needed)? */
int milter_gen_counts_rcpts(const struct conf *cf);
/* milter_gen_counts_conn - do g's quotas apply on a connection? */
int milter_gen_counts_conn(const struct milter_gen *g, int non_smtp);
/* milter_conn_take_current - move c to the current generation (no
 * message active) */
void milter_conn_take_current(struct milter_conn *c);

/* ---- milter.c: helpers of the handlers ---- */

/* milter_symval - a macro from the MTA, or NULL (borrowed) */
const char *milter_symval(const struct milter_conn *c, const char *name);
/* milter_qid - the queue id of the message, or "NOQUEUE" */
const char *milter_qid(const struct milter_conn *c);
/* milter_on_error - the configured reply for an internal error */
sfsistat milter_on_error(struct milter_conn *c, const char *why);
/* milter_clean_text - make s a reply text: printable ASCII only */
void milter_clean_text(char *s);

/* ---- milter_spf.c: SPF through the worker pool ---- */

/* milter_spf_ready - was the pool started (milter_spf_start)? */
int milter_spf_ready(void);
/* milter_spf_pool_missing - SPF enabled by a reload without a pool
 * (logged once)? */
int milter_spf_pool_missing(void);
/* milter_spf_inbound_on - does the inbound check run on c? */
int milter_spf_inbound_on(const struct milter_conn *c);
/* milter_spf_inbound - check at MAIL: SMFIS_CONTINUE or the refusal */
sfsistat milter_spf_inbound(struct milter_conn *c);
/* milter_spf_inbound_verdict - the action of the result, reply set */
sfsistat milter_spf_inbound_verdict(struct milter_conn *c);
/* milter_spf_inbound_fields - insert Received-SPF and
 * Authentication-Results; 0, or -1 when the MTA refused */
int milter_spf_inbound_fields(struct milter_conn *c);
/* milter_spf_preflight - the outbound check at EOM: SMFIS_CONTINUE
 * (warning field added when not authorized) or the refusal */
sfsistat milter_spf_preflight(struct milter_conn *c);

/* ---- milter_quota.c: quota reservations of a message ---- */

/* milter_quota_rcpt - reserve one SMTP recipient: SMFIS_CONTINUE or
 * the refusal with its reply set */
sfsistat milter_quota_rcpt(struct milter_conn *c, const char *rcpt);
/* milter_quota_eom - reserve the message, its bytes and the recipients
 * left for the end */
sfsistat milter_quota_eom(struct milter_conn *c);
/* milter_quota_accepted - commit what was reserved, hold if asked */
sfsistat milter_quota_accepted(struct milter_conn *c);
/* milter_quota_release - release and forget every reservation */
void milter_quota_release(struct milter_conn *c);

/* ---- milter_metrics.c: what the milter counts (util/metrics.h) ---- */

extern struct metric milter_metric_signed, milter_metric_skipped,
    milter_metric_signatures, milter_metric_spf, milter_metric_conns,
    milter_metric_eom, milter_metric_deliver;

/* ---- milter_deliver.c: deliverability at submission ---- */

/* milter_deliver_eom - the deliverability checks of a trusted sender's
 * message (after the preflight, before the signature): SMFIS_CONTINUE,
 * with a warning field inserted when a "warn" check failed, or the
 * refusal with its reply set */
sfsistat milter_deliver_eom(struct milter_conn *c);

#endif
