/*
 * milter - the message handlers of outpost-milter (milter.h): the
 * engines (milter/engine.c, milter/lm.c) call them in protocol order.
 *
 * The handlers only move data between the engine and the modules: the
 * decision is dkim_decide(), the signature dkim_signer_*(), the quota
 * milter_quota.c, SPF milter_spf.c, the configuration gen.c.  State has
 * two lifetimes (milter_impl.h): struct milter_conn (connect..close) and
 * struct msg (MAIL..EOM or abort), each released by one function
 * (milter_conn_free, msg_reset).
 *
 * Protocol economy: we ask the MTA not to send HELO, RCPT, DATA, EOH and
 * unknown commands, and not to wait for our replies to headers and body
 * chunks.  A client that cannot be trusted is accepted at CONNECT (no
 * authentication possible) or at MAIL, so its messages never cross the
 * milter socket -- unless the milter counts quotas for it or checks its
 * SPF.  Mail that Postfix's cleanup(8) submits for sendmail(1) is told
 * by its client port 0 (conn_is_non_smtp).
 *
 * Peer input never ends the process: an internal error becomes the
 * configured reply (milter.on_error, milter_on_error).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include "milter/milter_impl.h"
#include "util/buf.h"
#include "util/cidr.h"
#include "util/log.h"
#include "util/xmalloc.h"

/*
 * Bounds on the header section we keep until the From field is known:
 * its fields, and its bytes with each field's own cost counted (its slot
 * and two allocations), so that a million empty fields cost as much as
 * their number says.  Past either, the fields are let go and the message
 * refused or passed unsigned (dkim.on_oversized).  MILTER_FIELDS_MAX is
 * also the signer's own bound (dkim/sign.c).
 */
#define MILTER_HEADERS_MAX (1024 * 1024)
#define MILTER_FIELDS_MAX 10000
#define MILTER_FIELD_COST 64

/*
 * The mix of senders seen lately, for milter_negotiate.  Under NR_MAIL
 * (trust decided by SMTP AUTH, at MAIL) an untrusted message still
 * crosses the socket whole: Postfix hands the milter to cleanup, which
 * reads the queue file again for the headers and body, and waits for the
 * end-of-message reply.  A reply to MAIL lets the milter accept it there
 * instead (measured behind Postfix: 20 system calls fewer of its 225 per
 * message) but costs every signed message a round trip (4 more of 231).
 * So the milter asks for it only while at least one message in
 * MILTER_MIX_SHARE came from an untrusted sender; the counts halve every
 * MILTER_MIX_WINDOW messages, and MILTER_MIX_MIN messages must have been
 * seen first.
 */
#define MILTER_MIX_WINDOW	256
#define MILTER_MIX_SHARE	5
#define MILTER_MIX_MIN		4

static pthread_mutex_t mix_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int mix_all, mix_untrusted;

/* mix_note - one more message at MAIL, from an untrusted sender or not */
static void
mix_note(int untrusted)
{
	pthread_mutex_lock(&mix_lock);
	mix_all++;
	if (untrusted)
		mix_untrusted++;
	if (mix_all >= MILTER_MIX_WINDOW) {
		mix_all /= 2;
		mix_untrusted /= 2;
	}
	pthread_mutex_unlock(&mix_lock);
}

/* mix_untrusted_often - is a reply to MAIL worth it (see above)? */
static int
mix_untrusted_often(void)
{
	int r;

	pthread_mutex_lock(&mix_lock);
	r = mix_all >= MILTER_MIX_MIN &&
	    mix_untrusted * MILTER_MIX_SHARE >= mix_all;
	pthread_mutex_unlock(&mix_lock);
	return r;
}

/* hdrs_free - let go of the header fields kept for the signer */
static void
hdrs_free(struct msg *m)
{
	size_t i;

	for (i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
	}
	free(m->hdrs);
	m->hdrs = NULL;
	m->nhdrs = m->caphdrs = 0;
	m->hbytes = 0;
}

/* msg_reset - release everything of the current message; reservations
 * not committed by now are refunded */
static void
msg_reset(struct milter_conn *c)
{
	struct msg *m = &c->msg;

	milter_quota_release(c);
	hdrs_free(m);
	dkim_signer_free(m->signer);
	free(m->sender);
	free(m->tokens);
	memset(m, 0, sizeof(*m));
}

/* milter_conn_new - state for one MTA connection (milter_conn_free) */
struct milter_conn *
milter_conn_new(const struct milter_io *io, void *ctx)
{
	struct milter_conn *c = xcalloc(1, sizeof(*c));

	c->io = io;
	c->ctx = ctx;
	metric_add(&milter_metric_conns, NULL, NULL, 1);
	return c;
}

/* milter_conn_free - release a connection and its message (NULL: nothing) */
void
milter_conn_free(struct milter_conn *c)
{
	if (c == NULL)
		return;
	metric_add(&milter_metric_conns, NULL, NULL, -1);
	msg_reset(c);
	milter_gen_release(c->gen);
	free(c->daemon_name);
	free(c->auth);
	free(c);
}

/* milter_symval - a macro from the MTA, or NULL */
const char *
milter_symval(const struct milter_conn *c, const char *name)
{
	return c->io->symval(c->ctx, name);
}

/* milter_qid - the queue id, or "NOQUEUE" before it is known */
const char *
milter_qid(const struct milter_conn *c)
{
	return c->msg.qid[0] ? c->msg.qid : "NOQUEUE";
}

/* set_qid - take {i} when the MTA has one for us */
static void
set_qid(const struct milter_conn *c, struct msg *m)
{
	const char *i = milter_symval(c, "i");

	if (i != NULL && *i != '\0')
		snprintf(m->qid, sizeof(m->qid), "%s", i);
}

/* milter_on_error - the configured reply for an internal error */
sfsistat
milter_on_error(struct milter_conn *c, const char *why)
{
	if (c->gen->conf->milter.on_error == CONF_ON_ERROR_ACCEPT) {
		log_warnx("%s: dkim=error reason=\"%s\" action=accept",
		    milter_qid(c), why);
		return SMFIS_ACCEPT;
	}
	log_warnx("%s: dkim=error reason=\"%s\" action=tempfail",
	    milter_qid(c), why);
	c->io->setreply(c->ctx, "451", "4.3.0", "Temporary signing failure, "
	    "try again later");
	return SMFIS_TEMPFAIL;
}

/*
 * connect_continues - does milter_connect() continue every client under
 * g (trust by authentication comes at MAIL; SPF and quotas on every
 * connection need the session)?  Then CONNECT is negotiated without a
 * reply (SMFIP_NR_CONN).
 */
static int
connect_continues(const struct milter_gen *g)
{
	return g->conf->trusted.authenticated ||
	    (g->conf->spf.inbound.enabled && milter_spf_ready()) ||
	    (milter_gen_counts_conn(g, 0) && milter_gen_counts_conn(g, 1));
}

/*
 * milter_negotiate - the steps skipped are decided by the generation
 * current now, which the connection keeps: it counts recipients only if
 * RCPT was negotiated for it.
 */
sfsistat
milter_negotiate(struct milter_conn *c, unsigned long actions,
    unsigned long protocol, unsigned long *want_actions,
    unsigned long *want_protocol)
{
	unsigned long want = MILTER_PROTOCOL;

	if ((actions & SMFIF_ADDHDRS) == 0) {
		log_warnx("MTA does not let milters add headers; not signing "
		    "on this connection");
		return SMFIS_REJECT;
	}
	if (c->gen == NULL)
		c->gen = milter_gen_acquire();
	if (c->gen != NULL && c->gen->conf->spf.inbound.enabled &&
	    milter_spf_ready())	/* the HELO name, and a reply at MAIL */
		want &= ~(unsigned long)(SMFIP_NOHELO | SMFIP_NR_MAIL);
	if (c->gen != NULL && milter_gen_counts_rcpts(c->gen->conf)) {
		want &= ~(unsigned long)SMFIP_NORCPT;
		/* all: SMTP recipients over quota get our reply */
		if (c->gen->conf->milter.quotas == CONF_MQUOTA_ALL)
			want &= ~(unsigned long)SMFIP_NR_RCPT;
	}
	if (c->gen != NULL && connect_continues(c->gen))
		want |= SMFIP_NR_CONN;
	/* untrusted senders often: accept their messages at MAIL */
	if (c->gen != NULL && c->gen->conf->trusted.authenticated &&
	    !milter_gen_counts_conn(c->gen, 0) && mix_untrusted_often())
		want &= ~(unsigned long)SMFIP_NR_MAIL;
	*want_actions = MILTER_ACTIONS & actions;
	*want_protocol = protocol & want;
	c->pflags = *want_protocol;
	c->pflags_actions = *want_actions;
	return SMFIS_CONTINUE;
}

/*
 * conn_is_non_smtp - is this connection Postfix's cleanup(8) passing on
 * mail from sendmail(1) (through pickup(8))?  cleanup(8) simulates the
 * SMTP session of such mail with client "localhost", address 127.0.0.1
 * (or ::1) and client port 0, which no real TCP client has.
 */
static int
conn_is_non_smtp(const struct sockaddr *sa)
{
	if (sa == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)sa)->
		    sin_port == 0;
	if (sa->sa_family == AF_INET6)
		return ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_port == 0;
	return 0;
}

/* connect_session - the work of milter_connect; its verdict */
static sfsistat
connect_session(struct milter_conn *c, const char *host,
    const struct sockaddr *sa)
{
	struct dkim_decide_in in;
	const char *dn;

	/* A second CONNECT on one connection starts over. */
	msg_reset(c);
	free(c->daemon_name);
	c->daemon_name = NULL;
	c->have_addr = 0;
	c->helo[0] = '\0';
	c->non_smtp = conn_is_non_smtp(sa);
	if (c->gen == NULL && (c->gen = milter_gen_acquire()) == NULL)
		return SMFIS_TEMPFAIL;
	milter_conn_take_current(c);
	c->counting = milter_gen_counts_conn(c->gen, c->non_smtp);
	if (cidr_addr_from_sockaddr(sa, c->addr) == 0) {
		c->have_addr = 1;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)
			    (const void *)sa)->sin_addr, c->client,
			    sizeof(c->client));
		else
			inet_ntop(AF_INET6, c->addr, c->client,
			    sizeof(c->client));
	} else
		snprintf(c->client, sizeof(c->client), "%s",
		    host ? host : "unknown");
	if ((dn = milter_symval(c, "{daemon_name}")) != NULL)
		c->daemon_name = xstrdup(dn);
	if (c->non_smtp)
		log_debug("client %s port 0: non-SMTP submission%s", c->client,
		    c->counting ? ", quotas counted at end of message" : "");
	if (c->gen->conf->trusted.authenticated || c->counting ||
	    (c->gen->conf->spf.inbound.enabled && milter_spf_ready()))
		return SMFIS_CONTINUE;	/* AUTH comes later */
	memset(&in, 0, sizeof(in));
	in.client_addr = c->have_addr ? c->addr : NULL;
	in.daemon_name = c->daemon_name;
	if (dkim_trust_reason(&c->gen->conf->trusted, &in) == NULL) {
		log_debug("client %s: dkim=skipped reason=not-trusted",
		    c->client);
		return SMFIS_ACCEPT;
	}
	return SMFIS_CONTINUE;
}

/* milter_connect - a new SMTP session: who the client is; untrusted ones
 * that nothing here counts or checks are accepted now, unless CONNECT
 * was negotiated without a reply (then their messages are passed at MAIL
 * or at their end, as untrusted) */
sfsistat
milter_connect(struct milter_conn *c, const char *host,
    const struct sockaddr *sa)
{
	sfsistat rc = connect_session(c, host, sa);

	return (c->pflags & SMFIP_NR_CONN) ? SMFIS_NOREPLY : rc;
}

/* noreply - NOREPLY for a step negotiated as no-reply, else CONTINUE */
static sfsistat
noreply(const struct milter_conn *c, unsigned long flag)
{
	return (c->pflags & flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* milter_clean_text - a reply text: printable ASCII only */
void
milter_clean_text(char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}

/* milter_helo - keep the HELO/EHLO name for SPF */
sfsistat
milter_helo(struct milter_conn *c, const char *name)
{
	snprintf(c->helo, sizeof(c->helo), "%s", name != NULL ? name : "");
	return noreply(c, SMFIP_NR_HELO);
}

/* sender_address - the envelope sender without its <>, "" for <> */
static char *
sender_address(const char *s)
{
	size_t n;

	if (s == NULL)
		return xstrdup("");
	while (*s == ' ')
		s++;
	n = strlen(s);
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
		return xstrndup(s + 1, n - 2);
	return xstrdup(s);
}

/* milter_envfrom - a new message: move to the current generation, decide
 * trust, check inbound SPF for untrusted clients */
sfsistat
milter_envfrom(struct milter_conn *c, const char *sender)
{
	struct dkim_decide_in in;
	const char *auth;
	int untrusted;

	if (c->gen == NULL)
		return SMFIS_TEMPFAIL;
	msg_reset(c);
	milter_conn_take_current(c);
	c->msg.active = 1;
	c->msg.sender = sender_address(sender);
	set_qid(c, &c->msg);
	free(c->auth);
	c->auth = NULL;
	if ((auth = milter_symval(c, "{auth_authen}")) != NULL &&
	    *auth != '\0')
		c->auth = xstrdup(auth);
	memset(&in, 0, sizeof(in));
	in.auth_authen = c->auth;
	in.client_addr = c->have_addr ? c->addr : NULL;
	in.daemon_name = c->daemon_name;
	untrusted = dkim_trust_reason(&c->gen->conf->trusted, &in) == NULL;
	mix_note(untrusted);
	if (untrusted) {
		if (milter_spf_inbound_on(c)) {
			sfsistat rc = milter_spf_inbound(c);

			if (rc != SMFIS_CONTINUE) {
				if (!(c->pflags & SMFIP_NR_MAIL))
					return rc;	/* msg ends: ABORT */
				c->msg.spf_in_due = 1;	/* at EOM */
			}
		}
		if (!(c->pflags & SMFIP_NR_MAIL) && !c->counting &&
		    !c->msg.spf_in) {
			/* Postfix has no queue id yet at MAIL (it opens the
			 * queue file at the first valid RCPT): name the
			 * sender too. */
			log_info("%s: dkim=skipped reason=not-trusted "
			    "client=%s from=%s", milter_qid(c), c->client,
			    sender ? sender : "?");
			metric_inc(&milter_metric_skipped, "not-trusted", NULL);
			msg_reset(c);
			return SMFIS_ACCEPT;
		}
		/* No reply to MAIL: ignore the message, and say why once
		 * the queue id is known (msg_start_body). */
		c->msg.untrusted = 1;
	}
	return noreply(c, SMFIP_NR_MAIL);
}

/*
 * milter_envrcpt - one recipient.  SMTP mail on a counting connection
 * reserves it now (milter.quotas = all); non-SMTP mail counts it for the
 * end of message and always continues.
 */
sfsistat
milter_envrcpt(struct milter_conn *c, const char *rcpt)
{
	struct msg *m = &c->msg;

	if (!m->active || !c->counting)
		return noreply(c, SMFIP_NR_RCPT);
	set_qid(c, m);
	if (c->non_smtp || (c->pflags & SMFIP_NR_RCPT)) {
		m->rcpts_eom++;
		return noreply(c, SMFIP_NR_RCPT);
	}
	return milter_quota_rcpt(c, rcpt);
}

/* count_lf - line feeds in s (header folds, sent as bare LF) */
static size_t
count_lf(const char *s)
{
	size_t n = 0;

	while ((s = strchr(s, '\n')) != NULL) {
		n++;
		s++;
	}
	return n;
}

/* milter_header - one header field: count its bytes, keep it for the
 * signer within the bounds */
sfsistat
milter_header(struct milter_conn *c, const char *name, const char *value)
{
	struct msg *m = &c->msg;
	size_t nlen = strlen(name), vlen = strlen(value), cost;
	struct hdr *h;

	if (m->active)	/* "Name: value" CRLF, folds as CRLF */
		m->size += nlen + 2 + vlen + 2 + count_lf(value);
	if (!m->active || m->failed || m->untrusted)
		return noreply(c, SMFIP_NR_HDR);
	m->hfields++;
	if (m->skip)
		return noreply(c, SMFIP_NR_HDR);
	cost = nlen + vlen + MILTER_FIELD_COST;
	if (m->hfields > MILTER_FIELDS_MAX ||
	    cost > MILTER_HEADERS_MAX - m->hbytes) {
		/* nothing of it will be signed: let it go now */
		hdrs_free(m);
		m->skip = 1;
		m->oversized = 1;
		return noreply(c, SMFIP_NR_HDR);
	}
	m->hbytes += cost;
	if (strcasecmp(name, "From") == 0 && m->nfrom++ == 0)
		m->from = m->nhdrs;
	if (m->nhdrs == m->caphdrs) {
		m->caphdrs = m->caphdrs > 0 ? 2 * m->caphdrs : 32;
		m->hdrs = xreallocarray(m->hdrs, m->caphdrs,
		    sizeof(*m->hdrs));
	}
	h = &m->hdrs[m->nhdrs++];
	h->name = xstrdup(name);
	h->value = xstrdup(value);
	h->vlen = vlen;
	return noreply(c, SMFIP_NR_HDR);
}

/* msg_start_body - decide; when signing, start the signer */
static void
msg_start_body(struct milter_conn *c)
{
	const struct conf *cf = c->gen->conf;
	struct msg *m = &c->msg;
	struct dkim_decide_in in;
	struct dkim_sign_opts opts;
	char err[256];
	size_t i;

	m->body_started = 1;
	set_qid(c, m);
	if (m->untrusted) {
		m->skip = 1;
		log_info("%s: dkim=skipped reason=not-trusted client=%s",
		    milter_qid(c), c->client);
		metric_inc(&milter_metric_skipped, "not-trusted", NULL);
		return;
	}
	if (m->skip || m->failed)
		return;
	memset(&in, 0, sizeof(in));
	in.auth_authen = c->auth;
	in.client_addr = c->have_addr ? c->addr : NULL;
	in.daemon_name = c->daemon_name;
	in.nfrom = m->nfrom;
	if (m->nfrom > 0) {
		in.from_value = m->hdrs[m->from].value;
		in.from_len = m->hdrs[m->from].vlen;
	}
	dkim_decide(&cf->trusted, c->gen->table, &in, &m->dec);
	if (!m->dec.sign) {
		m->skip = 1;
		if (m->dec.malformed &&
		    cf->dkim.on_malformed == CONF_ON_ERROR_REJECT)
			m->reject = 1;
		log_info("%s: dkim=skipped reason=%s%s%s", milter_qid(c),
		    m->dec.reason, m->dec.domain[0] ? " from_domain=" : "",
		    m->dec.domain);
		if (!m->reject)
			metric_inc(&milter_metric_skipped, m->dec.reason, NULL);
		return;
	}
	memset(&opts, 0, sizeof(opts));
	opts.engine = cf->dkim.engine;
	opts.canon_header = cf->dkim.canon_header;
	opts.canon_body = cf->dkim.canon_body;
	opts.headers = (const char *const *)cf->dkim.headers;
	opts.nheaders = cf->dkim.nheaders;
	opts.oversign = (const char *const *)cf->dkim.oversign;
	opts.noversign = cf->dkim.noversign;
	opts.now = time(NULL);
	opts.id = milter_qid(c);
	m->signer = dkim_signer_new(&opts, m->dec.req, m->dec.nreq, err,
	    sizeof(err));
	if (m->signer == NULL) {
		m->failed = 1;
		log_warnx("%s: signer: %s", milter_qid(c), err);
		return;
	}
	for (i = 0; i < m->nhdrs; i++)
		if (dkim_signer_header(m->signer, m->hdrs[i].name,
		    m->hdrs[i].value, m->hdrs[i].vlen) < 0) {
			m->failed = 1;
			return;
		}
	if (dkim_signer_eoh(m->signer) < 0)
		m->failed = 1;
}

/* milter_body - a body chunk: decide at the first one, feed the signer */
sfsistat
milter_body(struct milter_conn *c, const unsigned char *p, size_t len)
{
	struct msg *m = &c->msg;

	if (!m->active)
		return noreply(c, SMFIP_NR_BODY);
	m->size += len;
	if (!m->body_started)
		msg_start_body(c);
	if (!m->skip && !m->failed &&
	    dkim_signer_body(m->signer, p, len) < 0)
		m->failed = 1;
	return noreply(c, SMFIP_NR_BODY);
}

/*
 * append_lf - the header value with CRLF folds turned into LF: in the
 * milter protocol header values use bare LF (as Postfix and Sendmail
 * send them to us); a CR would reach the queue file as data.
 */
static void
append_lf(struct buf *v, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != '\r' || i + 1 >= n || p[i + 1] != '\n')
			buf_appendc(v, p[i]);
}

/*
 * msg_oversized - the header section was past the bounds, its fields let
 * go unsigned: refuse it (dkim.on_oversized = reject) or pass it
 */
static sfsistat
msg_oversized(struct milter_conn *c)
{
	const struct msg *m = &c->msg;

	if (c->gen->conf->dkim.on_oversized == CONF_ON_ERROR_ACCEPT) {
		log_warnx("%s: dkim=skipped reason=header-section-too-large "
		    "fields=%zu", milter_qid(c), m->hfields);
		metric_inc(&milter_metric_skipped, "header-section-too-large",
		    NULL);
		return SMFIS_CONTINUE;
	}
	log_warnx("%s: dkim=rejected reason=header-section-too-large "
	    "fields=%zu", milter_qid(c), m->hfields);
	c->io->setreply(c->ctx, "552", "5.3.4", "Message not signed: its "
	    "header section is too large");
	return SMFIS_REJECT;
}

/*
 * msg_eom_gate - what comes before the signature at the end of the
 * message, in order: the inbound SPF refusal due, the quota, the
 * outbound preflight, the SPF fields, the DKIM refusals.  SMFIS_CONTINUE
 * to go on (to sign, unless the message is skipped), else the reply.
 */
static sfsistat
msg_eom_gate(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	sfsistat rc;

	if (m->spf_in_due &&
	    (rc = milter_spf_inbound_verdict(c)) != SMFIS_CONTINUE)
		return rc;
	if (c->counting) {
		m->size += 2;		/* the empty line before the body */
		if ((rc = milter_quota_eom(c)) != SMFIS_CONTINUE)
			return rc;	/* msg_reset refunds the recipients */
	}
	if (!m->untrusted && c->gen->conf->spf.outbound.enabled &&
	    !milter_spf_pool_missing() &&
	    (rc = milter_spf_preflight(c)) != SMFIS_CONTINUE)
		return rc;
	if (m->spf_in && milter_spf_inbound_fields(c) < 0)
		return milter_on_error(c, "cannot insert header");
	if (m->failed)
		return milter_on_error(c, "signing failed");
	if (m->reject) {
		c->io->setreply(c->ctx, "550", "5.7.1", "Message not signed: "
		    "its From header field is malformed");
		log_info("%s: dkim=rejected reason=%s", milter_qid(c),
		    m->dec.reason);
		return SMFIS_REJECT;
	}
	if (m->oversized)
		return msg_oversized(c);	/* skipped when it goes on */
	return SMFIS_CONTINUE;
}

/* insert_signature - one DKIM-Signature field at the top; 0 or -1 */
static int
insert_signature(struct milter_conn *c, const struct buf *sig)
{
	struct buf v = BUF_INIT;
	int rc;

	if (c->pflags & SMFIP_HDR_LEADSPC)
		buf_appendc(&v, ' ');
	append_lf(&v, sig->data, sig->len);
	rc = c->io->insheader(c->ctx, 0, "DKIM-Signature", v.data);
	buf_free(&v);
	return rc;
}

/*
 * msg_sign - finish the signatures, insert them and log: SMFIS_CONTINUE,
 * or the reply for an internal error (milter_on_error)
 */
static sfsistat
msg_sign(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct buf vals[DKIM_MAX_SIGS], line = BUF_INIT;
	char err[256];
	sfsistat rc = SMFIS_CONTINUE;
	size_t i, n = m->dec.nreq;

	memset(vals, 0, sizeof(vals));
	if (dkim_signer_finish(m->signer, vals, err, sizeof(err)) < 0) {
		rc = milter_on_error(c, err);
		goto free;
	}
	/* Insert in reverse so the signatures end up in request order. */
	for (i = n; i-- > 0;)
		if (insert_signature(c, &vals[i]) < 0) {
			rc = milter_on_error(c, "cannot insert header");
			goto free;
		}
	metric_inc(&milter_metric_signed, NULL, NULL);
	for (i = 0; i < n; i++) {
		buf_appendf(&line, " d=%s s=%s a=%s", m->dec.req[i].domain,
		    m->dec.req[i].selector,
		    conf_alg_name(m->dec.req[i].key->alg));
		metric_inc(&milter_metric_signatures,
		    conf_alg_name(m->dec.req[i].key->alg), NULL);
	}
	log_info("%s: dkim=signed%s trust=%s", milter_qid(c), buf_cstr(&line),
	    m->dec.trust);
free:
	for (i = 0; i < n; i++)
		buf_free(&vals[i]);
	buf_free(&line);
	return rc;
}

/*
 * milter_eom - the end of the message: the checks of msg_eom_gate, the
 * signature, then what was reserved is committed if the message goes
 * on (accepted or continued), and everything of the message released
 */
sfsistat
milter_eom(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	sfsistat rc, qrc;
	uint64_t t0 = metrics_now_us();

	if (!m->active)
		return SMFIS_CONTINUE;
	set_qid(c, m);
	if (!m->body_started)
		msg_start_body(c);
	if ((rc = msg_eom_gate(c)) == SMFIS_CONTINUE)
		rc = milter_deliver_eom(c);
	if (rc == SMFIS_CONTINUE && !m->skip)
		rc = msg_sign(c);
	if (rc == SMFIS_CONTINUE || rc == SMFIS_ACCEPT) {
		qrc = milter_quota_accepted(c);
		if (qrc != SMFIS_CONTINUE)
			rc = qrc;	/* a lapsed reservation, refused */
	}
	msg_reset(c);		/* refunds what was not committed */
	metric_since(&milter_metric_eom, NULL, NULL, t0);
	return rc;
}

/* milter_abort - the message ends without EOM: release it */
void
milter_abort(struct milter_conn *c)
{
	msg_reset(c);
}
