/*
 * milterproto - the MTA side of the Sendmail milter protocol, version 6.
 *
 * A client for tests and benchmarks that talks to a milter the way Postfix
 * 3.7's milter8.c does, so that what a milter sees here is what it sees
 * behind Postfix:
 *
 *	- OPTNEG offers protocol version 6, the actions 0x1ff (every SMFIF_*
 *	  of version 6) and the protocol mask 0x1fffff (every SMFIP_NO*,
 *	  SMFIP_NR_*, SKIP, RCPT_REJ and HDR_LEADSPC).  The milter's answer
 *	  is honoured: steps it asked to skip (SMFIP_NO*) are not sent,
 *	  steps it will not answer (SMFIP_NR_*) are not waited for, a
 *	  SMFIR_SKIP stops the body, SMFIR_SETSYMLIST lists replace the MTA's
 *	  macro lists.
 *	- Macros: one name -> value table per connection (mp_macro_set), sent
 *	  before each event for the names on that stage's list (Postfix's
 *	  default lists, mp_macro_list, or the milter's own list); names
 *	  without a value are left out.  As in Postfix, the macros of a
 *	  stage are sent even when the milter skips the event itself, HEADER
 *	  carries the end-of-header list and BODY the end-of-data list.
 *	  mp_send_message() sets {mail_addr} and {rcpt_addr} from the
 *	  envelope, as Postfix does.
 *	- Headers: the value is what follows the colon, continuation lines
 *	  joined with "\n" (no CR).  The library removes one leading space
 *	  (not a tab) unless the milter negotiated SMFIP_HDR_LEADSPC, exactly
 *	  as Postfix does; header values coming back (SMFIR_INSHEADER...) are
 *	  returned as sent, so with HDR_LEADSPC they carry their own space.
 *	- Body: the caller passes on-the-wire (CRLF) bytes; they are sent in
 *	  chunks of MILTER_CHUNK_SIZE (65535) bytes, the last one at EOM.
 *	- Transactions end with ABORT, as Postfix resets its milters after
 *	  each one (also after a complete EOM); ABORT expects no reply and
 *	  leaves with the next command.
 *	- Writes: each command is built whole in an output buffer; the buffer
 *	  is written when a reply is due (or when it passes 64 KiB), so a
 *	  command is never split over two writes and commands that get no
 *	  reply travel together, as with Postfix's VSTREAM.  TCP sockets get
 *	  TCP_NODELAY.  The client does not force quick ACKs: a milter that
 *	  answers with several small writes meets the same Nagle/delayed-ACK
 *	  interplay behind this client as behind Postfix (40 ms stalls).
 *
 * Use:
 *	struct mp_options opt = MP_OPTIONS_INIT;
 *	struct mp_conn *c = mp_open("unix:/run/x.sock", &opt, err, sizeof(err));
 *	mp_macro_set(c, "{auth_authen}", "alice");
 *	mp_connect_event(c, "client.example", "127.0.0.1", 4711, &r, err, n);
 *	mp_helo(c, "client.example", &r, err, n);
 *	mp_send_message(c, &msg, &r, err, n);	... or the steps one by one
 *	c = mp_close(c);
 *
 * Ownership: mp_open() returns a connection owned by the caller;
 * mp_close() sends QUIT when it can, closes and frees it (accepts NULL,
 * returns NULL).  A struct mp_reply is caller storage filled by the event
 * functions; what it points to belongs to it and is released by
 * mp_reply_free() (which leaves it ready for reuse; every event function
 * frees the previous contents first).  Strings passed in are copied or
 * used only during the call.
 *
 * Errors: int functions return 0, or -1 with a reason in err (errlen
 * bytes).  -1 means the connection is no longer usable: connect or I/O
 * error, timeout, the milter closed, or broke the protocol (unknown reply,
 * malformed packet, packet over max_packet, a modification it did not
 * negotiate, a modification outside end of message).  The caller then
 * only calls mp_close().  A milter decision (reject, tempfail...) is not
 * an error: it is reply->verdict.  Nothing here exits or aborts on what
 * the milter sends.
 *
 * Threads: no global state; one connection is used by one thread at a
 * time.  SIGPIPE is avoided with MSG_NOSIGNAL.
 */
#ifndef OUTPOST_MILTERPROTO_H
#define OUTPOST_MILTERPROTO_H

#include <stddef.h>
#include <stdint.h>

#include <libmilter/mfdef.h>

#include "util/buf.h"

/* Postfix 3.7 (milter_protocol = 6) offers exactly these. */
#define MP_POSTFIX_ACTIONS	0x000001ffU	/* SMFIF_ADDHDRS..SETSYMLIST */
#define MP_POSTFIX_PROTOCOL	0x001fffffU	/* SMFI_CURR_PROT */

#define MP_DEFAULT_TIMEOUT_MS	30000
#define MP_DEFAULT_MAX_PACKET	(1024 * 1024)
#define MP_DEFAULT_MAX_BODY	(64 * 1024 * 1024)
#define MP_MAX_MODS		4096	/* modifications in one EOM reply */

/* Macro stages, numbered as the milter's SMFIR_SETSYMLIST (SMFIM_*). */
enum mp_stage {
	MP_STAGE_CONNECT = 0,
	MP_STAGE_HELO = 1,
	MP_STAGE_MAIL = 2,
	MP_STAGE_RCPT = 3,
	MP_STAGE_DATA = 4,
	MP_STAGE_EOM = 5,
	MP_STAGE_EOH = 6,
};
#define MP_NSTAGES 7

struct mp_options {
	int timeout_ms;		/* each connect/read/write; 0: default */
	uint32_t version;	/* offered protocol version; 0: 6 */
	uint32_t actions;	/* offered SMFIF_*; 0: MP_POSTFIX_ACTIONS */
	uint32_t protocol;	/* offered SMFIP_*; 0: MP_POSTFIX_PROTOCOL */
	size_t max_packet;	/* largest packet accepted; 0: 1 MiB */
	size_t max_body;	/* largest replaced body kept; 0: 64 MiB */
};
#define MP_OPTIONS_INIT { 0, 0, 0, 0, 0, 0 }

enum mp_verdict {
	MP_NOREPLY,	/* not sent (skipped) or no reply due (SMFIP_NR_*) */
	MP_CONTINUE,
	MP_ACCEPT,	/* at connect/helo: the whole connection */
	MP_REJECT,
	MP_TEMPFAIL,
	MP_DISCARD,
	MP_REPLYCODE,	/* reply->text holds "4xx/5xx x.y.z text" */
	MP_SKIP,	/* body chunk: send no more body */
	MP_SHUTDOWN,	/* SMFIR_SHUTDOWN: 421, close */
	MP_CONNFAIL,	/* SMFIR_CONN_FAIL */
};

enum mp_mod_type {
	MP_MOD_INSHEADER,	/* index: position, 0 = top */
	MP_MOD_ADDHEADER,	/* appended after the last header */
	MP_MOD_CHGHEADER,	/* index: nth header of that name, from 1 */
	MP_MOD_ADDRCPT,
	MP_MOD_ADDRCPT_PAR,
	MP_MOD_DELRCPT,
	MP_MOD_CHGFROM,
};

struct mp_mod {
	enum mp_mod_type type;
	uint32_t index;		/* as sent (CHGHEADER 0 means 1) */
	char *name;		/* header name, or the address */
	char *value;		/* header value ("" = delete for CHGHEADER),
				   or ESMTP arguments (may be NULL) */
};

/* Result for one recipient of mp_send_message(). */
struct mp_rcpt_result {
	enum mp_verdict verdict;
	char *text;		/* MP_REPLYCODE text, or NULL */
};

struct mp_reply {
	enum mp_verdict verdict;
	char stage;		/* SMFIC_* of the event that gave verdict */
	char *text;		/* MP_REPLYCODE: the SMTP reply, else NULL */
	char *quarantine;	/* SMFIR_QUARANTINE reason, or NULL */
	struct mp_mod *mods;	/* end of message: modifications, in order */
	size_t nmods;
	int body_replaced;	/* SMFIR_REPLBODY seen: body holds it */
	struct buf body;
	unsigned progress;	/* SMFIR_PROGRESS packets seen */
	struct mp_rcpt_result *rcpts;	/* mp_send_message(): one each */
	size_t nrcpts;
};
#define MP_REPLY_INIT { MP_NOREPLY, 0, NULL, NULL, NULL, 0, 0, BUF_INIT, \
	0, NULL, 0 }

/* One header as the MTA received it. */
struct mp_header {
	const char *name;	/* without the colon or spaces before it */
	const char *value;	/* after the colon, folded lines joined by
				   "\n", the leading space still there */
};

/* One message for mp_send_message(). */
struct mp_message {
	const char *sender;		/* "<a@b>", "<>" */
	const char *const *mail_args;	/* ESMTP args or NULL */
	const char *const *rcpts;	/* "<a@b>" each */
	size_t nrcpts;
	const struct mp_header *headers;
	size_t nheaders;
	const char *body;		/* CRLF lines */
	size_t bodylen;
};

struct mp_conn;

struct mp_conn *mp_open(const char *spec, const struct mp_options *,
    char *err, size_t errlen);
struct mp_conn *mp_close(struct mp_conn *);

uint32_t mp_version(const struct mp_conn *);
uint32_t mp_actions(const struct mp_conn *);
uint32_t mp_protocol(const struct mp_conn *);
const char *mp_symlist(const struct mp_conn *, enum mp_stage);
int mp_is_tcp(const struct mp_conn *);

void mp_macro_set(struct mp_conn *, const char *name, const char *value);
void mp_macro_list(struct mp_conn *, enum mp_stage, const char *names);
const char *mp_macro_list_get(const struct mp_conn *, enum mp_stage);

int mp_connect_event(struct mp_conn *, const char *hostname,
    const char *addr, unsigned port, struct mp_reply *, char *err,
    size_t errlen);
int mp_helo(struct mp_conn *, const char *name, struct mp_reply *,
    char *err, size_t errlen);
int mp_mail(struct mp_conn *, const char *sender, const char *const *args,
    struct mp_reply *, char *err, size_t errlen);
int mp_rcpt(struct mp_conn *, const char *rcpt, const char *const *args,
    struct mp_reply *, char *err, size_t errlen);
int mp_data(struct mp_conn *, struct mp_reply *, char *err, size_t errlen);
int mp_header(struct mp_conn *, const char *name, const char *value,
    struct mp_reply *, char *err, size_t errlen);
int mp_eoh(struct mp_conn *, struct mp_reply *, char *err, size_t errlen);
int mp_body(struct mp_conn *, const void *, size_t, struct mp_reply *,
    char *err, size_t errlen);
int mp_eom(struct mp_conn *, struct mp_reply *, char *err, size_t errlen);
int mp_abort(struct mp_conn *, char *err, size_t errlen);

int mp_send_message(struct mp_conn *, const struct mp_message *,
    struct mp_reply *, char *err, size_t errlen);

int mp_verdict_final(enum mp_verdict);
const char *mp_verdict_name(enum mp_verdict);
void mp_reply_free(struct mp_reply *);

#endif
