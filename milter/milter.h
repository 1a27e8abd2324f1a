/*
 * milter - outpost-milter's message handling, independent of the engine
 * that speaks the milter protocol, and its configuration generations.
 *
 * Two engines drive these handlers: our own (milter/engine.c, the
 * default: buffered reads, one write per reply) and libmilter
 * (milter/lm.c, the reference).  An engine creates one struct milter_conn
 * per MTA connection with milter_conn_new(), passing the functions by which
 * the handlers read macros, set reply text and insert header fields, and
 * calls the handlers in protocol order.  Handlers return SMFIS_* codes
 * from <libmilter/mfapi.h>; SMFIS_NOREPLY only for steps negotiated as
 * no-reply.
 *
 * A generation (struct milter_gen) is a loaded struct conf plus the DKIM
 * table built from it (keys parsed).  Each connection holds a reference
 * to the generation that was current at its last CONNECT or MAIL, so a
 * reload (milter_reload) swaps in a new generation without disturbing
 * messages in flight, and the next message on every connection (reused
 * ones too) takes the new one; the old one is freed when its last
 * connection leaves it.  Everything here is thread-safe; one connection is handled by
 * one thread at a time.
 *
 * Besides DKIM signing the handlers count sending quotas (milter.quotas:
 * a generation opens the quota store, which borrows its conf) and check
 * SPF through the worker pool started by milter_spf_start(); see
 * milter_quota.c, milter_spf.c and outpost-milter(8).
 */
#ifndef OUTPOST_MILTER_H
#define OUTPOST_MILTER_H

#include <stddef.h>
#include <sys/socket.h>

#include <libmilter/mfapi.h>

#include "conf/conf.h"
#include "dkim/table.h"
#include "quota/quota.h"

struct milter_gen {
	struct conf *conf;
	struct dkim_table *table;
	struct quota *quota;		/* milter.quotas not off and limits
					 * configured; else NULL */
	unsigned int refs;		/* guarded by the generation lock */
};

/* milter_gen_load - a new generation from path, or NULL with err; it
 * opens the quota store when the milter counts (see milter_gen_check) */
struct milter_gen *milter_gen_load(const char *path, char *err,
    size_t errlen);
/* milter_gen_check - the same without opening the quota store (-n: as
 * root, it must not create the store's files) */
struct milter_gen *milter_gen_check(const char *path, char *err,
    size_t errlen);

/* milter_gen_open - open the quota store of a generation made by
 * milter_gen_check (when it counts); 0, or -1 with err.  Call it in the
 * process that serves: an LMDB environment must not cross a fork(),
 * daemon(3) included. */
int milter_gen_open(struct milter_gen *, char *err, size_t errlen);

/* milter_install - make gen current (takes ownership) */
void milter_install(struct milter_gen *);

/* milter_reload - load path; swap it in, or keep the current one and
 * log why.  Returns 0 or -1. */
int milter_reload(const char *path);

/* milter_shutdown - drop the current generation (at exit) */
void milter_shutdown(void);
/* milter_thread_end - a connection thread is about to end and has no
 * handler call left: release the state the handlers left in it */
void milter_thread_end(void);

/*
 * milter_spf_start - start the SPF worker pool (spf/pool.h) when the
 * configuration enables spf.inbound or spf.outbound; 0, or -1 with err.
 * Call it in main() while still root and before any thread starts; a
 * reload that enables SPF later finds no pool and logs that a restart is
 * needed.  milter_spf_stop() ends the pool (at exit).
 */
int milter_spf_start(const struct conf *, char *err, size_t errlen);
void milter_spf_stop(void);

/* What the handlers need from the engine, for one connection. */
struct milter_io {
	/* macro value ("i" and "{i}" are the same name), or NULL */
	const char *(*symval)(void *ctx, const char *name);
	/* text for the next reject/tempfail reply; 0 or -1 */
	int (*setreply)(void *ctx, const char *rcode, const char *xcode,
	    const char *text);
	/* insert a header field at index (0 = top); 0 or -1 */
	int (*insheader)(void *ctx, int index, const char *name,
	    const char *value);
	/* put the message in the MTA's hold queue (end of message only);
	 * 0 or -1 */
	int (*quarantine)(void *ctx, const char *reason);
};

/* The milter's wishes, answered at option negotiation: headers, and
 * the hold queue for quota action "hold" (asked for when offered). */
#define MILTER_ACTIONS		(SMFIF_ADDHDRS | SMFIF_QUARANTINE)
/* No reply to MAIL either: a signed message then costs one round trip
 * (end of message) instead of two; an untrusted one crosses the socket
 * but is ignored.  Without NR_MAIL (older MTAs) untrusted messages are
 * accepted at MAIL.  This is the most the milter skips; what the
 * generation current at negotiation needs is taken out of it
 * (milter_negotiate): RCPT when recipient quotas are counted (with a
 * reply when milter.quotas = all); HELO (no reply) and a reply to MAIL
 * when spf.inbound is enabled, and a reply to MAIL while untrusted
 * senders are frequent (milter.c, mix_untrusted_often: they are then
 * accepted at MAIL).  SMFIP_NR_CONN is added when CONNECT can only
 * continue (milter_negotiate): one round trip less per MTA connection,
 * which Postfix opens for each SMTP session. */
#define MILTER_PROTOCOL		(SMFIP_NOHELO | SMFIP_NORCPT | \
	SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_NOEOH | SMFIP_NR_HELO | \
	SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_BODY | \
	SMFIP_HDR_LEADSPC)
/*
 * Macros asked for, one list per stage (Postfix sends no {auth_authen} at
 * EOM unless asked).  The MTA sends a stage's macros even for a step the
 * milter skips, and Postfix falls back to its own main.cf list for a
 * stage the milter leaves out: HELO and DATA, which need nothing, get
 * MILTER_MACRO_NONE, a name no MTA defines, so that nothing is sent.
 */
#define MILTER_MACRO_NONE	"{outpost_none}"
#define MILTER_MACROS_CONNECT	"j {daemon_name}"
#define MILTER_MACROS_HELO	MILTER_MACRO_NONE
#define MILTER_MACROS_ENVFROM	"i {auth_authen}"
#define MILTER_MACROS_ENVRCPT	"i"
#define MILTER_MACROS_DATA	MILTER_MACRO_NONE
#define MILTER_MACROS_EOM	"i {auth_authen}"
/* Postfix opens the queue file at the first valid RCPT, so {i} is known
 * by the header section (sent with it even though EOH is skipped; under
 * libmilter the body's own macros are not kept, these are). */
#define MILTER_MACROS_EOH	"i"

struct milter_conn;

/* milter_conn_new - state for one MTA connection (milter_conn_free) */
struct milter_conn *milter_conn_new(const struct milter_io *, void *ctx);
void milter_conn_free(struct milter_conn *);

/*
 * milter_negotiate - given what the MTA offers (actions, protocol), the
 * actions and protocol flags to ask for; SMFIS_CONTINUE, or SMFIS_REJECT
 * when this MTA cannot be served (then the milter is not used).
 */
sfsistat milter_negotiate(struct milter_conn *, unsigned long actions,
    unsigned long protocol, unsigned long *want_actions,
    unsigned long *want_protocol);
sfsistat milter_connect(struct milter_conn *, const char *host,
    const struct sockaddr *);
sfsistat milter_helo(struct milter_conn *, const char *name);
sfsistat milter_envfrom(struct milter_conn *, const char *sender);
sfsistat milter_envrcpt(struct milter_conn *, const char *rcpt);
sfsistat milter_header(struct milter_conn *, const char *name,
    const char *value);
sfsistat milter_body(struct milter_conn *, const unsigned char *, size_t);
sfsistat milter_eom(struct milter_conn *);
void milter_abort(struct milter_conn *);

/* milter_metrics_register - register what the milter counts, the
 * quota's and the SPF pool's metrics (milter_metrics.c) */
void milter_metrics_register(void);

#endif
