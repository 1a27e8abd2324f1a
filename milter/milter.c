/*
 * milter - see milter.h.
 *
 * The callbacks only move data between libmilter and the modules: the
 * decision is dkim_decide(), the signature dkim_signer_*().  State has
 * two lifetimes: struct conn (connect..close) and struct msg (MAIL..EOM
 * or abort), each released by one function (conn_free, msg_reset).
 *
 * Protocol economy: we ask the MTA not to send HELO, RCPT, DATA, EOH and
 * unknown commands, and not to wait for our replies to headers and body
 * chunks.  A client that cannot be trusted is accepted at CONNECT (no
 * authentication possible) or at MAIL, so its messages never cross the
 * milter socket.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "dkim/decide.h"
#include "dkim/sign.h"
#include "milter/milter.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* Bound on the header section we keep until the From field is known. */
#define MILTER_HEADERS_MAX (1024 * 1024)

struct hdr {
	char *name;
	char *value;
	size_t vlen;
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
	size_t nhdrs;
	size_t hbytes;
	unsigned int nfrom;
	size_t from;			/* index of the first From */
	struct dkim_signer *signer;
	struct dkim_decision dec;
};

struct milter_conn {
	const struct milter_io *io;
	void *ctx;			/* the engine's, passed to io */
	struct milter_gen *gen;
	unsigned long pflags;		/* negotiated SMFIP_* flags */
	int have_addr;
	uint8_t addr[16];
	char client[INET6_ADDRSTRLEN + 2];
	char *daemon_name;
	char *auth;
	struct msg msg;
};

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct milter_gen *gen_current;

/* gen_free - release a generation no connection uses any more */
static void
gen_free(struct milter_gen *g)
{
	if (g == NULL)
		return;
	dkim_table_free(g->table);
	conf_free(g->conf);
	free(g);
}

struct milter_gen *
milter_gen_load(const char *path, char *err, size_t errlen)
{
	struct milter_gen *g = xcalloc(1, sizeof(*g));

	if ((g->conf = conf_load(path, err, errlen)) == NULL ||
	    (g->table = dkim_table_new(g->conf, err, errlen)) == NULL) {
		gen_free(g);
		return NULL;
	}
	return g;
}

/* gen_acquire - a reference to the current generation */
static struct milter_gen *
gen_acquire(void)
{
	struct milter_gen *g;

	pthread_mutex_lock(&gen_lock);
	g = gen_current;
	if (g != NULL)
		g->refs++;
	pthread_mutex_unlock(&gen_lock);
	return g;
}

static void
gen_release(struct milter_gen *g)
{
	int last;

	if (g == NULL)
		return;
	pthread_mutex_lock(&gen_lock);
	last = --g->refs == 0;
	pthread_mutex_unlock(&gen_lock);
	if (last)
		gen_free(g);
}

void
milter_install(struct milter_gen *g)
{
	struct milter_gen *old;

	pthread_mutex_lock(&gen_lock);
	old = gen_current;
	g->refs++;			/* the "current" reference */
	gen_current = g;
	pthread_mutex_unlock(&gen_lock);
	gen_release(old);
}

int
milter_reload(const char *path)
{
	struct milter_gen *g;
	char err[1024];

	if ((g = milter_gen_load(path, err, sizeof(err))) == NULL) {
		log_warnx("reload failed, keeping the running configuration: "
		    "%s", err);
		return -1;
	}
	log_set_verbose(g->conf->log.verbose);
	milter_install(g);
	log_info("configuration reloaded from %s: %zu keys", path,
	    dkim_table_nkeys(g->table));
	return 0;
}

void
milter_shutdown(void)
{
	struct milter_gen *old;

	pthread_mutex_lock(&gen_lock);
	old = gen_current;
	gen_current = NULL;
	pthread_mutex_unlock(&gen_lock);
	gen_release(old);
}

/* msg_reset - release everything of the current message */
static void
msg_reset(struct msg *m)
{
	size_t i;

	for (i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
	}
	free(m->hdrs);
	dkim_signer_free(m->signer);
	memset(m, 0, sizeof(*m));
}

struct milter_conn *
milter_conn_new(const struct milter_io *io, void *ctx)
{
	struct milter_conn *c = xcalloc(1, sizeof(*c));

	c->io = io;
	c->ctx = ctx;
	return c;
}

void
milter_conn_free(struct milter_conn *c)
{
	if (c == NULL)
		return;
	msg_reset(&c->msg);
	gen_release(c->gen);
	free(c->daemon_name);
	free(c->auth);
	free(c);
}

/* symval - a macro from the MTA, or NULL */
static const char *
symval(const struct milter_conn *c, const char *name)
{
	return c->io->symval(c->ctx, name);
}

static const char *
qid(const struct milter_conn *c)
{
	return c->msg.qid[0] ? c->msg.qid : "NOQUEUE";
}

/* set_qid - take {i} when the MTA has one for us */
static void
set_qid(const struct milter_conn *c, struct msg *m)
{
	const char *i = symval(c, "i");

	if (i != NULL && *i != '\0')
		snprintf(m->qid, sizeof(m->qid), "%s", i);
}

/* on_error - the configured reply for an internal error */
static sfsistat
on_error(struct milter_conn *c, const char *why)
{
	if (c->gen->conf->milter.on_error == CONF_ON_ERROR_ACCEPT) {
		log_warnx("%s: dkim=error reason=\"%s\" action=accept", qid(c),
		    why);
		return SMFIS_ACCEPT;
	}
	log_warnx("%s: dkim=error reason=\"%s\" action=tempfail", qid(c), why);
	c->io->setreply(c->ctx, "451", "4.3.0", "Temporary signing failure, "
	    "try again later");
	return SMFIS_TEMPFAIL;
}

sfsistat
milter_negotiate(struct milter_conn *c, unsigned long actions,
    unsigned long protocol, unsigned long *want_actions,
    unsigned long *want_protocol)
{
	if ((actions & SMFIF_ADDHDRS) == 0) {
		log_warnx("MTA does not let milters add headers; not signing "
		    "on this connection");
		return SMFIS_REJECT;
	}
	*want_actions = MILTER_ACTIONS;
	*want_protocol = protocol & MILTER_PROTOCOL;
	c->pflags = *want_protocol;
	return SMFIS_CONTINUE;
}

sfsistat
milter_connect(struct milter_conn *c, const char *host,
    const struct sockaddr *sa)
{
	struct dkim_decide_in in;
	const char *dn;

	/* A second CONNECT on one connection starts over. */
	msg_reset(&c->msg);
	free(c->daemon_name);
	c->daemon_name = NULL;
	c->have_addr = 0;
	if (c->gen == NULL && (c->gen = gen_acquire()) == NULL)
		return SMFIS_TEMPFAIL;
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
	if ((dn = symval(c, "{daemon_name}")) != NULL)
		c->daemon_name = xstrdup(dn);
	if (c->gen->conf->trusted.authenticated)
		return SMFIS_CONTINUE;	/* AUTH comes later */
	memset(&in, 0, sizeof(in));
	in.client_addr = c->have_addr ? c->addr : NULL;
	in.daemon_name = c->daemon_name;
	if (dkim_trust_reason(c->gen->conf, &in) == NULL) {
		log_debug("client %s: dkim=skipped reason=not-trusted",
		    c->client);
		return SMFIS_ACCEPT;
	}
	return SMFIS_CONTINUE;
}

/* noreply - NOREPLY for a step negotiated as no-reply, else CONTINUE */
static sfsistat
noreply(const struct milter_conn *c, unsigned long flag)
{
	return (c->pflags & flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat
milter_envfrom(struct milter_conn *c, const char *sender)
{
	struct dkim_decide_in in;
	const char *auth;

	if (c->gen == NULL)
		return SMFIS_TEMPFAIL;
	msg_reset(&c->msg);
	c->msg.active = 1;
	set_qid(c, &c->msg);
	free(c->auth);
	c->auth = NULL;
	if ((auth = symval(c, "{auth_authen}")) != NULL &&
	    *auth != '\0')
		c->auth = xstrdup(auth);
	memset(&in, 0, sizeof(in));
	in.auth_authen = c->auth;
	in.client_addr = c->have_addr ? c->addr : NULL;
	in.daemon_name = c->daemon_name;
	if (dkim_trust_reason(c->gen->conf, &in) == NULL) {
		if (!(c->pflags & SMFIP_NR_MAIL)) {
			/* Postfix has no queue id yet at MAIL (it opens the
			 * queue file at the first valid RCPT): name the
			 * sender too. */
			log_info("%s: dkim=skipped reason=not-trusted "
			    "client=%s from=%s", qid(c), c->client,
			    sender ? sender : "?");
			msg_reset(&c->msg);
			return SMFIS_ACCEPT;
		}
		/* No reply to MAIL: ignore the message, and say why once
		 * the queue id is known (msg_start_body). */
		c->msg.untrusted = 1;
	}
	return noreply(c, SMFIP_NR_MAIL);
}

sfsistat
milter_header(struct milter_conn *c, const char *name, const char *value)
{
	struct msg *m = &c->msg;
	size_t nlen = strlen(name), vlen = strlen(value);
	struct hdr *h;

	if (!m->active || m->skip || m->failed || m->untrusted)
		return noreply(c, SMFIP_NR_HDR);
	if (m->hbytes + nlen + vlen > MILTER_HEADERS_MAX) {
		m->skip = 1;
		log_warnx("%s: dkim=skipped reason=header-section-too-large",
		    qid(c));
		return noreply(c, SMFIP_NR_HDR);
	}
	m->hbytes += nlen + vlen;
	if (strcasecmp(name, "From") == 0 && m->nfrom++ == 0)
		m->from = m->nhdrs;
	m->hdrs = xreallocarray(m->hdrs, m->nhdrs + 1, sizeof(*m->hdrs));
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
		    qid(c), c->client);
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
	dkim_decide(cf, c->gen->table, &in, &m->dec);
	if (!m->dec.sign) {
		m->skip = 1;
		if (m->dec.malformed &&
		    cf->dkim.on_malformed == CONF_ON_ERROR_REJECT)
			m->reject = 1;
		log_info("%s: dkim=skipped reason=%s%s%s", qid(c),
		    m->dec.reason, m->dec.domain[0] ? " from_domain=" : "",
		    m->dec.domain);
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
	opts.id = qid(c);
	m->signer = dkim_signer_new(&opts, m->dec.req, m->dec.nreq, err,
	    sizeof(err));
	if (m->signer == NULL) {
		m->failed = 1;
		log_warnx("%s: signer: %s", qid(c), err);
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

sfsistat
milter_body(struct milter_conn *c, const unsigned char *p, size_t len)
{
	struct msg *m = &c->msg;

	if (!m->active)
		return noreply(c, SMFIP_NR_BODY);
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

sfsistat
milter_eom(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct buf vals[DKIM_MAX_SIGS], line = BUF_INIT;
	char err[256];
	sfsistat rc = SMFIS_CONTINUE;
	size_t i, n = 0;

	if (!m->active)
		return SMFIS_CONTINUE;
	set_qid(c, m);
	if (!m->body_started)
		msg_start_body(c);
	if (m->failed) {
		rc = on_error(c, "signing failed");
		goto done;
	}
	if (m->reject) {
		c->io->setreply(c->ctx, "550", "5.7.1", "Message not signed: "
		    "its From header field is malformed");
		log_info("%s: dkim=rejected reason=%s", qid(c), m->dec.reason);
		rc = SMFIS_REJECT;
		goto done;
	}
	if (m->skip)
		goto done;
	n = m->dec.nreq;
	memset(vals, 0, sizeof(vals));
	if (dkim_signer_finish(m->signer, vals, err, sizeof(err)) < 0) {
		rc = on_error(c, err);
		goto free;
	}
	/* Insert in reverse so the signatures end up in request order. */
	for (i = n; i-- > 0;) {
		struct buf v = BUF_INIT;

		if (c->pflags & SMFIP_HDR_LEADSPC)
			buf_appendc(&v, ' ');
		append_lf(&v, vals[i].data, vals[i].len);
		if (c->io->insheader(c->ctx, 0, "DKIM-Signature",
		    v.data) < 0) {
			buf_free(&v);
			rc = on_error(c, "cannot insert header");
			goto free;
		}
		buf_free(&v);
	}
	for (i = 0; i < n; i++)
		buf_appendf(&line, " d=%s s=%s a=%s", m->dec.req[i].domain,
		    m->dec.req[i].selector,
		    conf_alg_name(m->dec.req[i].key->alg));
	log_info("%s: dkim=signed%s trust=%s", qid(c), buf_cstr(&line),
	    m->dec.trust);
free:
	for (i = 0; i < n; i++)
		buf_free(&vals[i]);
	buf_free(&line);
done:
	msg_reset(m);
	return rc;
}

void
milter_abort(struct milter_conn *c)
{
	msg_reset(&c->msg);
}
