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
 * milter socket -- unless the milter counts quotas for it.
 *
 * Quotas (milter.quotas, see outpost-milter(8)): on a connection that
 * counts, each RCPT reserves one recipient (quota_reserve) and the end
 * of message reserves one message and its bytes; an accepted message
 * commits every reservation (one that lapsed is admitted again, and
 * refused, refuses the message: msg_commit), anything else (a refusal,
 * an error, ABORT, the connection closing) releases them in
 * msg_reset().  Mail that
 * Postfix's cleanup(8) submits for sendmail(1) (client port 0, see
 * conn_is_non_smtp) never gets a RCPT refusal: its recipients are
 * counted at the end of message, and a message over quota is held.
 *
 * SPF: the checks go to the worker pool (spf/pool.h; libspf2 never runs
 * here), which main() starts before privileges drop (milter_spf_start).
 * Inbound: at MAIL for untrusted clients, the action at MAIL (or at EOM
 * when MAIL was negotiated without a reply), the header fields at EOM.
 * Outbound preflight: at EOM for trusted senders, cached per domain.
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
#include "quota/quota.h"
#include "spf/pool.h"
#include "spf/spf.h"
#include "util/buf.h"
#include "util/clock.h"
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
/* Domains whose outbound preflight result is kept (spf_cache). */
#define MILTER_SPF_CACHE_MAX 4096
/* How much longer than spf.timeout a message waits for another thread's
 * preflight of the same domain before checking itself (ms). */
#define MILTER_SPF_WAIT_MARGIN_MS 2000
/* Reservations one message keeps; beyond, recipients are charged at once
 * (quota_admit) and cannot be refunded. */
#define MILTER_TOKENS_MAX 10000

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

/* A reservation this close to store.reserve_ttl counts as lapsed. */
#define LAPSE_MARGIN_MS 1000

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
};

struct milter_conn {
	const struct milter_io *io;
	void *ctx;			/* the engine's, passed to io */
	struct milter_gen *gen;
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

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct milter_gen *gen_current;
/* Process-wide, made in main() before any thread (milter_spf_start). */
static struct spf_pool *spf_pool;
static struct spf_cache *spf_cache;

/* gen_free - release a generation no connection uses any more */
static void
gen_free(struct milter_gen *g)
{
	if (g == NULL)
		return;
	quota_close(g->quota);
	dkim_table_free(g->table);
	conf_free(g->conf);
	free(g);
}

/* gen_counts - does this generation count quotas at all? */
static int
gen_counts(const struct conf *cf)
{
	return cf->milter.quotas != CONF_MQUOTA_OFF && cf->nlimits > 0;
}

/* gen_counts_rcpts - ... and recipients (then RCPT is needed) */
static int
gen_counts_rcpts(const struct conf *cf)
{
	size_t i;

	if (!gen_counts(cf))
		return 0;
	for (i = 0; i < cf->nlimits; i++)
		if (cf->limits[i].count == CONF_QCOUNT_RECIPIENTS)
			return 1;
	return 0;
}

/* gen_load - a generation; open_store: open the quota store too */
static struct milter_gen *
gen_load(const char *path, int open_store, char *err, size_t errlen)
{
	struct milter_gen *g = xcalloc(1, sizeof(*g));

	if ((g->conf = conf_load(path, err, errlen)) == NULL ||
	    (g->table = dkim_table_new(g->conf, err, errlen)) == NULL ||
	    (open_store && milter_gen_open(g, err, errlen) < 0)) {
		gen_free(g);
		return NULL;
	}
	return g;
}

int
milter_gen_open(struct milter_gen *g, char *err, size_t errlen)
{
	char qerr[512];

	if (g->quota != NULL || !gen_counts(g->conf))
		return 0;
	/* The quota borrows g->conf: both live and die with g. */
	if ((g->quota = quota_open(g->conf, qerr, sizeof(qerr))) == NULL) {
		snprintf(err, errlen, "%s: quota store: %s", g->conf->path,
		    qerr);
		return -1;
	}
	return 0;
}

struct milter_gen *
milter_gen_load(const char *path, char *err, size_t errlen)
{
	return gen_load(path, 1, err, errlen);
}

struct milter_gen *
milter_gen_check(const char *path, char *err, size_t errlen)
{
	return gen_load(path, 0, err, errlen);
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

/* gen_counts_conn - do g's quotas apply on a connection (non_smtp: one
 * of cleanup(8) for sendmail(1))? */
static int
gen_counts_conn(const struct milter_gen *g, int non_smtp)
{
	return g->quota != NULL &&
	    (g->conf->milter.quotas == CONF_MQUOTA_ALL || non_smtp);
}

/*
 * conn_take_current - at a new transaction or SMTP session (an MTA such
 * as Sendmail keeps the milter connection across sessions, SMFIC_QUIT_NC),
 * move c to the current generation, so that a reload's keys and settings
 * apply to the next message on every connection.  Call it with no message
 * active (its reservations belong to the old store).  What was negotiated
 * stays: a connection negotiated without RCPT (no recipient limits then)
 * cannot count recipients under a generation that has them, which is
 * logged; its messages and bytes are counted.
 */
static void
conn_take_current(struct milter_conn *c)
{
	struct milter_gen *g = gen_acquire();

	if (g == NULL || g == c->gen) {
		gen_release(g);
		return;
	}
	gen_release(c->gen);
	c->gen = g;
	c->counting = gen_counts_conn(g, c->non_smtp);
	if (c->counting && (c->pflags & SMFIP_NORCPT) &&
	    gen_counts_rcpts(g->conf))
		log_info("recipient limits came with a reload: an MTA "
		    "connection that sends no recipients counts them from "
		    "its next connection");
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

/*
 * msg_release - release every reservation of the message, and forget
 * them.  Errors are logged: a reservation the store could not release
 * lapses after store.reserve_ttl on its own.
 */
static void
msg_release(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	char err[256];
	int64_t now = clock_wall_ms();
	size_t i;

	for (i = 0; i < m->ntokens; i++) {
		if (c->gen == NULL || c->gen->quota == NULL)
			break;
		if (quota_release(c->gen->quota, m->tokens[i].token, now, err,
		    sizeof(err)) < 0)
			log_warnx("%s: quota=error release: %s", m->qid[0] ?
			    m->qid : "NOQUEUE", err);
	}
	if (m->ntokens > 0)
		log_debug("%s: quota=released reservations=%zu", m->qid[0] ?
		    m->qid : "NOQUEUE", m->ntokens);
	m->ntokens = 0;
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

	msg_release(c);
	hdrs_free(m);
	dkim_signer_free(m->signer);
	free(m->sender);
	free(m->tokens);
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
	msg_reset(c);
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
		c->gen = gen_acquire();
	if (c->gen != NULL && c->gen->conf->spf.inbound.enabled &&
	    spf_pool != NULL)	/* the HELO name, and a reply at MAIL */
		want &= ~(unsigned long)(SMFIP_NOHELO | SMFIP_NR_MAIL);
	if (c->gen != NULL && gen_counts_rcpts(c->gen->conf)) {
		want &= ~(unsigned long)SMFIP_NORCPT;
		/* all: SMTP recipients over quota get our reply */
		if (c->gen->conf->milter.quotas == CONF_MQUOTA_ALL)
			want &= ~(unsigned long)SMFIP_NR_RCPT;
	}
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

sfsistat
milter_connect(struct milter_conn *c, const char *host,
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
	if (c->gen == NULL && (c->gen = gen_acquire()) == NULL)
		return SMFIS_TEMPFAIL;
	conn_take_current(c);
	c->counting = gen_counts_conn(c->gen, c->non_smtp);
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
	if (c->non_smtp)
		log_debug("client %s port 0: non-SMTP submission%s", c->client,
		    c->counting ? ", quotas counted at end of message" : "");
	if (c->gen->conf->trusted.authenticated || c->counting ||
	    (c->gen->conf->spf.inbound.enabled && spf_pool != NULL))
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

/* ---- SPF ------------------------------------------------------------------ */

/* clean_text - a reply text: printable ASCII only */
static void
clean_text(char *s)
{
	for (; *s != '\0'; s++)
		if (*s < 0x20 || *s > 0x7e)
			*s = '?';
}


int
milter_spf_start(const struct conf *cf, char *err, size_t errlen)
{
	if (!cf->spf.inbound.enabled && !cf->spf.outbound.enabled)
		return 0;
	if ((spf_pool = spf_pool_new(cf, err, errlen)) == NULL)
		return -1;
	spf_cache = spf_cache_new(MILTER_SPF_CACHE_MAX);
	return 0;
}

void
milter_spf_stop(void)
{
	spf_pool = spf_pool_free(spf_pool);
	spf_cache = spf_cache_free(spf_cache);
}

sfsistat
milter_helo(struct milter_conn *c, const char *name)
{
	snprintf(c->helo, sizeof(c->helo), "%s", name != NULL ? name : "");
	return noreply(c, SMFIP_NR_HELO);
}

/* spf_pool_missing - a reload enabled SPF without a pool: say so once */
static int
spf_pool_missing(void)
{
	static int logged;	/* guarded by gen_lock */

	if (spf_pool != NULL)
		return 0;
	pthread_mutex_lock(&gen_lock);
	if (!logged)
		log_warnx("spf is enabled by a reload, but the SPF workers "
		    "start only at start: restart outpost-milter");
	logged = 1;
	pthread_mutex_unlock(&gen_lock);
	return 1;
}

/* spf_inbound_on - does the inbound check run on this connection? */
static int
spf_inbound_on(const struct milter_conn *c)
{
	return c->gen->conf->spf.inbound.enabled && !spf_pool_missing() &&
	    c->have_addr;
}

/* spf_query_of - the inbound question, borrowing c's strings */
static void
spf_query_of(const struct milter_conn *c, struct spf_query *q)
{
	q->ip = c->client;
	q->helo = c->helo;
	q->sender = c->msg.sender != NULL ? c->msg.sender : "";
}

static sfsistat spf_inbound_verdict(struct milter_conn *);

/* spf_inbound_action - the configured action for a result */
static enum conf_spf_action
spf_inbound_action(const struct conf *cf, enum spf_result r)
{
	switch (r) {
	case SPF_RES_FAIL:
		return cf->spf.inbound.fail;
	case SPF_RES_SOFTFAIL:
		return cf->spf.inbound.softfail;
	case SPF_RES_TEMPERROR:
		return cf->spf.inbound.temperror;
	case SPF_RES_PERMERROR:
		return cf->spf.inbound.permerror;
	default:
		return CONF_SPF_ACCEPT;
	}
}

/*
 * spf_inbound - check the client against MAIL FROM (the null sender: the
 * HELO name) through a worker; SMFIS_CONTINUE, or the refusal with its
 * reply set (550 5.7.23 / 5.7.24, 451 4.7.24).
 */
static sfsistat
spf_inbound(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct spf_query q;
	enum conf_spf_action a;
	enum spf_kind kind;

	spf_query_of(c, &q);
	kind = q.sender[0] == '\0' ? SPF_KIND_HELO : SPF_KIND_MAILFROM;
	memset(&m->spf_ans, 0, sizeof(m->spf_ans));
	(void)spf_pool_check_inbound(spf_pool, kind, &q, &m->spf_ans);
	m->spf_in = 1;
	if (m->spf_ans.domain[0] == '\0') {	/* no answer: name it */
		const char *at = strrchr(q.sender, '@');

		snprintf(m->spf_ans.domain, sizeof(m->spf_ans.domain), "%s",
		    kind == SPF_KIND_HELO ? q.helo : at != NULL ? at + 1 :
		    q.sender);
		m->spf_ans.identity = kind == SPF_KIND_HELO ? SPF_ID_HELO :
		    SPF_ID_MAILFROM;
	}
	a = spf_inbound_action(c->gen->conf, m->spf_ans.result);
	if (m->spf_ans.identity == SPF_ID_HELO)
		kind = SPF_KIND_HELO;
	log_info("%s: spf=%s identity=%s domain=%s client=%s action=%s%s%s%s",
	    qid(c), spf_result_name(m->spf_ans.result),
	    m->spf_ans.identity == SPF_ID_HELO ? "helo" : "mailfrom",
	    m->spf_ans.domain[0] ? m->spf_ans.domain : "-", c->client,
	    conf_spf_action_name(a), m->spf_ans.text[0] ? " reason=\"" : "",
	    m->spf_ans.text, m->spf_ans.text[0] ? "\"" : "");
	return spf_inbound_verdict(c);
}

/* spf_inbound_verdict - the action of the inbound result, reply set */
static sfsistat
spf_inbound_verdict(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	char text[700];

	switch (spf_inbound_action(c->gen->conf, m->spf_ans.result)) {
	case CONF_SPF_REJECT:
		if (m->spf_ans.result == SPF_RES_FAIL ||
		    m->spf_ans.result == SPF_RES_SOFTFAIL)
			snprintf(text, sizeof(text), "SPF %s: %s does not "
			    "authorize %s to send its mail",
			    spf_result_name(m->spf_ans.result),
			    m->spf_ans.domain, c->client);
		else
			snprintf(text, sizeof(text), "SPF %s for %s: %s",
			    spf_result_name(m->spf_ans.result),
			    m->spf_ans.domain, m->spf_ans.text);
		clean_text(text);
		c->io->setreply(c->ctx, "550",
		    m->spf_ans.result == SPF_RES_FAIL ||
		    m->spf_ans.result == SPF_RES_SOFTFAIL ? "5.7.23" :
		    "5.7.24", text);
		return SMFIS_REJECT;
	case CONF_SPF_TEMPFAIL:
		snprintf(text, sizeof(text), "SPF %s for %s, try again later",
		    spf_result_name(m->spf_ans.result),
		    m->spf_ans.domain[0] ? m->spf_ans.domain : "the sender");
		clean_text(text);
		c->io->setreply(c->ctx, "451", "4.7.24", text);
		return SMFIS_TEMPFAIL;
	default:
		return SMFIS_CONTINUE;
	}
}

/* insert_field - insert name: value (folded with "\n\t") at the top */
static int
insert_field(struct milter_conn *c, const char *name, const char *value)
{
	struct buf v = BUF_INIT;
	int rc;

	if (c->pflags & SMFIP_HDR_LEADSPC)
		buf_appendc(&v, ' ');
	buf_appends(&v, value);
	rc = c->io->insheader(c->ctx, 0, name, buf_cstr(&v));
	buf_free(&v);
	return rc;
}

/* spf_receiver - authserv-id: spf.inbound.receiver, {j}, or a default */
static const char *
spf_receiver(const struct milter_conn *c)
{
	const char *j;

	if (c->gen->conf->spf.inbound.receiver != NULL)
		return c->gen->conf->spf.inbound.receiver;
	if ((j = symval(c, "j")) != NULL && *j != '\0')
		return j;
	return "localhost";
}

/* spf_inbound_fields - Received-SPF and Authentication-Results; 0/-1 */
static int
spf_inbound_fields(struct milter_conn *c)
{
	struct spf_query q;
	char rs[1024], ar[1024];
	const char *rcv = spf_receiver(c);

	spf_query_of(c, &q);
	if (spf_received_spf(&q, &c->msg.spf_ans, rcv, rs, sizeof(rs)) < 0 ||
	    spf_auth_results(&q, &c->msg.spf_ans, rcv, ar, sizeof(ar)) < 0) {
		log_warnx("%s: spf=error reason=\"header fields too long\"",
		    qid(c));
		return 0;
	}
	/* Authentication-Results ends up above Received-SPF. */
	if (insert_field(c, "Received-SPF", rs) < 0 ||
	    insert_field(c, "Authentication-Results", ar) < 0)
		return -1;
	return 0;
}

/* not_checked - the answer for an address left unasked after a
 * temperror for domain */
static void
not_checked(struct spf_answer *a, const char *domain)
{
	int r;

	a->result = SPF_RES_TEMPERROR;
	a->identity = SPF_ID_MAILFROM;
	(void)snprintf(a->domain, sizeof(a->domain), "%s", domain);
	r = snprintf(a->text, sizeof(a->text), "not checked: an earlier "
	    "check for %s failed temporarily", domain);
	if (r < 0 || (size_t)r >= sizeof(a->text))
		(void)snprintf(a->text, sizeof(a->text), "not checked: an "
		    "earlier check failed temporarily");
}

/*
 * preflight_check - ask the workers about each of our n addresses for
 * the sender (answers into ans) and decide for domain into pf; returns
 * how many were asked.  After the first temperror the rest are not
 * asked: any temperror makes the verdict temperror (spf_preflight_decide)
 * whatever they say, and each further check of a domain whose DNS hangs
 * would hold a worker for spf.timeout again.
 */
static size_t
preflight_check(struct milter_conn *c, const char *domain,
    struct spf_answer *ans, size_t n, struct spf_preflight *pf)
{
	const struct conf *cf = c->gen->conf;
	struct spf_query q;
	size_t i, asked = 0;
	int stop = 0;

	q.helo = c->helo;
	q.sender = c->msg.sender;
	for (i = 0; i < n; i++) {
		memset(&ans[i], 0, sizeof(ans[i]));
		if (stop) {
			not_checked(&ans[i], domain);
			continue;
		}
		q.ip = cf->spf.outbound.addresses[i];
		(void)spf_pool_check(spf_pool, SPF_KIND_MAILFROM, &q, &ans[i]);
		asked++;
		stop = ans[i].result == SPF_RES_TEMPERROR;
	}
	spf_preflight_decide(domain,
	    (const char *const *)cf->spf.outbound.addresses, ans, n,
	    cf->spf.outbound.publish, pf);
	return asked;
}

/*
 * spf_preflight - outbound: would our addresses pass SPF for the
 * sender's domain?  Adds the warning field, or returns SMFIS_REJECT with
 * 550 5.7.23 set (action reject; never on temperror).  One thread checks
 * a domain at a time (spf_cache_claim): the others wait for its result,
 * at most spf.timeout plus MILTER_SPF_WAIT_MARGIN_MS, then check alone.
 */
static sfsistat
spf_preflight(struct milter_conn *c)
{
	const struct conf *cf = c->gen->conf;
	struct spf_answer ans[16];
	struct spf_preflight pf;
	char domain[SPF_NAME_MAX], *p, how[48];
	const char *at;
	size_t n, asked;
	int64_t wait_until;

	if (c->msg.sender == NULL ||
	    (at = strrchr(c->msg.sender, '@')) == NULL || at[1] == '\0' ||
	    strlen(at + 1) >= sizeof(domain))
		return SMFIS_CONTINUE;	/* the null sender: nothing to ask */
	snprintf(domain, sizeof(domain), "%s", at + 1);
	for (p = domain; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	n = cf->spf.outbound.naddresses;
	if (n > sizeof(ans) / sizeof(ans[0]))
		n = sizeof(ans) / sizeof(ans[0]);
	wait_until = clock_mono_ms() + (int64_t)cf->spf.timeout_ms +
	    MILTER_SPF_WAIT_MARGIN_MS;
	switch (spf_cache_claim(spf_cache, domain, (int64_t)time(NULL),
	    wait_until, &pf)) {
	case SPF_CLAIM_HIT:
		(void)snprintf(how, sizeof(how), " cached=yes");
		break;
	case SPF_CLAIM_SHARED:		/* another thread's check, just made */
		(void)snprintf(how, sizeof(how), " shared=yes");
		break;
	default:
		asked = preflight_check(c, domain, ans, n, &pf);
		spf_cache_put(spf_cache, domain, (int64_t)time(NULL),
		    cf->spf.outbound.cache_ttl, &pf);
		how[0] = '\0';
		if (asked < n)
			(void)snprintf(how, sizeof(how), " checked=%zu/%zu",
			    asked, n);
		break;
	}
	if (pf.authorized) {
		log_debug("%s: spf-preflight=pass domain=%s%s", qid(c), domain,
		    how);
		return SMFIS_CONTINUE;
	}
	if (cf->spf.outbound.action == CONF_SPF_REJECT &&
	    pf.worst != SPF_RES_TEMPERROR) {
		log_info("%s: spf-preflight=%s domain=%s action=reject%s",
		    qid(c), spf_result_name(pf.worst), domain, how);
		clean_text(pf.reply);
		c->io->setreply(c->ctx, "550", "5.7.23", pf.reply);
		return SMFIS_REJECT;
	}
	log_info("%s: spf-preflight=%s domain=%s action=warn%s", qid(c),
	    spf_result_name(pf.worst), domain, how);
	if (insert_field(c, "X-Outpost-SPF-Preflight", pf.header) < 0)
		return on_error(c, "cannot insert header");
	return SMFIS_CONTINUE;
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

sfsistat
milter_envfrom(struct milter_conn *c, const char *sender)
{
	struct dkim_decide_in in;
	const char *auth;

	if (c->gen == NULL)
		return SMFIS_TEMPFAIL;
	msg_reset(c);
	conn_take_current(c);
	c->msg.active = 1;
	c->msg.sender = sender_address(sender);
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
		if (spf_inbound_on(c)) {
			sfsistat rc = spf_inbound(c);

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
			    "client=%s from=%s", qid(c), c->client,
			    sender ? sender : "?");
			msg_reset(c);
			return SMFIS_ACCEPT;
		}
		/* No reply to MAIL: ignore the message, and say why once
		 * the queue id is known (msg_start_body). */
		c->msg.untrusted = 1;
	}
	return noreply(c, SMFIP_NR_MAIL);
}

/* ---- quotas ------------------------------------------------------------ */

/* quota_who_of - who sends, for the quota */
static void
quota_who_of(const struct milter_conn *c, struct quota_who *who)
{
	memset(who, 0, sizeof(*who));
	who->sasl_username = c->auth;
	who->sender = c->msg.sender != NULL ? c->msg.sender : "";
	who->client_addr = c->have_addr ? c->addr : NULL;
}

/* log_verdict - one line per refusal or warning */
static void
log_verdict(const struct milter_conn *c, const char *stage,
    const struct quota_verdict *v, const char *action, const char *rcpt)
{
	if (v->limit == NULL)
		return;
	log_info("%s: quota=%s stage=%s limit=%s key=%s used=%llu "
	    "limit_value=%llu retry=%llu client=%s from=<%s>%s%s%s", qid(c),
	    action, stage, v->limit->name, v->key,
	    (unsigned long long)v->used, (unsigned long long)v->limit_value,
	    (unsigned long long)v->retry_after, c->client,
	    c->msg.sender ? c->msg.sender : "", rcpt ? " rcpt=" : "",
	    rcpt ? rcpt : "", c->non_smtp ? " non_smtp=yes" : "");
}

/* msg_add_token - keep a reservation (of amt) until the message ends */
static void
msg_add_token(struct msg *m, uint64_t token, const struct quota_amount *amt,
    int64_t now)
{
	if (token == 0)
		return;
	if (m->ntokens == m->captokens) {
		m->captokens = m->captokens ? m->captokens * 2 : 16;
		m->tokens = xreallocarray(m->tokens, m->captokens,
		    sizeof(*m->tokens));
	}
	m->tokens[m->ntokens].token = token;
	m->tokens[m->ntokens].at = now;
	m->tokens[m->ntokens++].amt = *amt;
}

/* msg_hold - ask for the hold queue at the end of the message */
static void
msg_hold(struct msg *m, const char *reason)
{
	if (m->hold)
		return;
	m->hold = 1;
	snprintf(m->hold_reason, sizeof(m->hold_reason), "%s", reason);
	clean_text(m->hold_reason);
}

/*
 * quota_store_failed - the store failed (logged): 0 to go on (on_error =
 * accept, or non-SMTP mail, which is held rather than tempfailed), or
 * SMFIS_TEMPFAIL with 451 4.3.0 set.
 */
static sfsistat
quota_store_failed(struct milter_conn *c, const char *stage,
    const struct quota_verdict *v)
{
	int accept = c->gen->conf->store.on_error == CONF_ON_ERROR_ACCEPT;

	log_warnx("%s: quota=error stage=%s error=\"%s\" action=%s", qid(c),
	    stage, v->error, accept ? "accept" : c->non_smtp ? "hold" :
	    "tempfail");
	if (accept)
		return SMFIS_CONTINUE;
	if (c->non_smtp) {
		msg_hold(&c->msg, "quota store unavailable");
		return SMFIS_CONTINUE;
	}
	c->io->setreply(c->ctx, "451", "4.3.0", "Temporary quota failure, "
	    "try again later");
	return SMFIS_TEMPFAIL;
}

/*
 * quota_refused - what a refusing limit does: SMFIS_TEMPFAIL (defer,
 * 450 4.7.1) or SMFIS_REJECT (reject, 550 5.7.1) with the reply set, or
 * SMFIS_CONTINUE (hold: marked for the hold queue; warn).  Non-SMTP mail
 * is never refused: it is held (warn: logged).
 */
static sfsistat
quota_refused(struct milter_conn *c, const char *stage,
    const struct quota_verdict *v, const char *rcpt)
{
	char text[400];
	enum conf_qaction a = v->action;

	quota_reply(v, text, sizeof(text));
	clean_text(text);
	if (c->non_smtp && a != CONF_QACTION_WARN)
		a = CONF_QACTION_HOLD;
	log_verdict(c, stage, v, conf_qaction_name(a), rcpt);
	switch (a) {
	case CONF_QACTION_REJECT:
		c->io->setreply(c->ctx, "550", "5.7.1", text);
		return SMFIS_REJECT;
	case CONF_QACTION_HOLD:
		msg_hold(&c->msg, text);
		return SMFIS_CONTINUE;
	case CONF_QACTION_WARN:
		return SMFIS_CONTINUE;
	case CONF_QACTION_DEFER:
	default:
		c->io->setreply(c->ctx, "450", "4.7.1", text);
		return SMFIS_TEMPFAIL;
	}
}

/*
 * msg_quota_take - act on one admission at stage (rc and v from
 * quota_reserve or quota_admit): keep its token with the message and go
 * on, or the store error or refusal with its reply set.
 */
static sfsistat
msg_quota_take(struct milter_conn *c, const char *stage, int rc,
    const struct quota_verdict *v, uint64_t token,
    const struct quota_amount *amt, const char *rcpt)
{
	if (rc < 0 || v->result == QUOTA_ERROR)
		return quota_store_failed(c, stage, v);
	if (v->result == QUOTA_REFUSE)
		return quota_refused(c, stage, v, rcpt);
	if (v->nwarned > 0)
		log_verdict(c, stage, v, "warn", rcpt);
	msg_add_token(&c->msg, token, amt, clock_wall_ms());
	return SMFIS_CONTINUE;
}

/*
 * msg_verdict - act on the verdict of the message's own admission at
 * the end (SMFIS_CONTINUE: charged, or held)
 */
static sfsistat
msg_verdict(struct milter_conn *c, int rc, const struct quota_verdict *v)
{
	if (rc < 0 || v->result == QUOTA_ERROR)
		return quota_store_failed(c, "EOM", v);
	if (v->result == QUOTA_REFUSE)
		return quota_refused(c, "EOM", v, NULL);
	if (v->nwarned > 0)
		log_verdict(c, "EOM", v, "warn", NULL);
	return SMFIS_CONTINUE;
}

/*
 * msg_readmit - some reservations lapsed (or are about to): release
 * them all and admit the whole message again, in one store batch (one
 * LMDB transaction, one Redis run), so that it is charged all or
 * nothing, against the limits as they are now
 */
static sfsistat
msg_readmit(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct quota *q = c->gen->quota;
	struct quota_amount all = { 0, 0, 0 };
	struct quota_verdict v;
	struct quota_who who;
	char err[256];
	int64_t now = clock_wall_ms();
	int batch, rc;
	size_t i;

	quota_who_of(c, &who);
	batch = quota_batch_begin(q, err, sizeof(err)) == 0;
	for (i = 0; i < m->ntokens; i++) {
		all.messages += m->tokens[i].amt.messages;
		all.recipients += m->tokens[i].amt.recipients;
		all.bytes += m->tokens[i].amt.bytes;
		(void)quota_release(q, m->tokens[i].token, now, err,
		    sizeof(err));
	}
	m->ntokens = 0;
	rc = quota_admit(q, &who, &all, now, &v);
	if (batch && quota_batch_end(q, err, sizeof(err)) < 0) {
		rc = -1;
		v.result = QUOTA_ERROR;
		snprintf(v.error, sizeof(v.error), "%s", err);
	}
	log_debug("%s: quota=readmitted lapsed reservations", qid(c));
	return msg_verdict(c, rc, &v);
}

/*
 * msg_commit - make the message's reservations final, in order, at the
 * end of an accepted message.  When some lapsed, msg_readmit() instead.
 * A commit admits a reservation that lapsed meanwhile again (quota.h):
 * if its limit is full by now, the message is refused with the limit's
 * action like any refusal (the reply set; hold: held), the store error
 * per store.on_error.  The reservations committed are forgotten;
 * msg_reset() releases the rest.
 */
static sfsistat
msg_commit(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct quota_verdict v;
	struct quota_who who;
	sfsistat rc = SMFIS_CONTINUE;
	int64_t oldest = clock_wall_ms() + LAPSE_MARGIN_MS -
	    (int64_t)c->gen->conf->store.reserve_ttl * 1000;
	size_t i;

	if (m->ntokens == 0)
		return SMFIS_CONTINUE;
	for (i = 0; i < m->ntokens; i++)
		if (m->tokens[i].at <= oldest)
			return msg_readmit(c);
	quota_who_of(c, &who);
	for (i = 0; i < m->ntokens && rc == SMFIS_CONTINUE; i++) {
		if (quota_commit(c->gen->quota, m->tokens[i].token, &who,
		    &m->tokens[i].amt, clock_wall_ms(), &v) < 0 ||
		    v.result == QUOTA_ERROR)
			rc = quota_store_failed(c, "EOM", &v);
		else if (v.result == QUOTA_REFUSE)
			rc = quota_refused(c, "EOM", &v, NULL);
	}
	if (rc != SMFIS_CONTINUE && v.result != QUOTA_ERROR)
		i--;		/* refused: not charged, released */
	log_debug("%s: quota=committed reservations=%zu", qid(c), i);
	memmove(m->tokens, m->tokens + i, (m->ntokens - i) *
	    sizeof(*m->tokens));
	m->ntokens -= i;
	return rc;
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
	struct quota_amount amt = { 0, 1, 0 };
	struct quota_verdict v;
	struct quota_who who;
	uint64_t token = 0;
	int rc;

	if (!m->active || !c->counting)
		return noreply(c, SMFIP_NR_RCPT);
	set_qid(c, m);
	if (c->non_smtp || (c->pflags & SMFIP_NR_RCPT)) {
		m->rcpts_eom++;
		return noreply(c, SMFIP_NR_RCPT);
	}
	quota_who_of(c, &who);
	memset(&v, 0, sizeof(v));
	if (m->ntokens < MILTER_TOKENS_MAX)
		rc = quota_reserve(c->gen->quota, &who, &amt, clock_wall_ms(), &token,
		    &v);
	else
		rc = quota_admit(c->gen->quota, &who, &amt, clock_wall_ms(), &v);
	return msg_quota_take(c, "RCPT", rc, &v, token, &amt, rcpt);
}

/*
 * msg_quota_eom - the message and its bytes (and the recipients not
 * reserved at RCPT): SMFIS_CONTINUE to go on (the reservation joins the
 * message's), else the refusal with its reply set.
 */
static sfsistat
msg_quota_eom(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	struct quota_amount amt;
	struct quota_verdict v;
	struct quota_who who;
	uint64_t token = 0;
	int rc;

	amt.messages = 1;
	amt.recipients = m->rcpts_eom;
	amt.bytes = m->size;
	quota_who_of(c, &who);
	memset(&v, 0, sizeof(v));
	rc = quota_reserve(c->gen->quota, &who, &amt, clock_wall_ms(), &token,
	    &v);
	return msg_quota_take(c, "EOM", rc, &v, token, &amt, NULL);
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
 * msg_accepted - charge what was reserved (msg_commit: SMFIS_CONTINUE,
 * or the refusal of a limit full by now); hold if a limit said so
 */
static sfsistat
msg_accepted(struct milter_conn *c)
{
	struct msg *m = &c->msg;
	sfsistat rc;

	if ((rc = msg_commit(c)) != SMFIS_CONTINUE)
		return rc;
	if (m->hold) {
		if (!(c->pflags_actions & SMFIF_QUARANTINE) ||
		    c->io->quarantine == NULL ||
		    c->io->quarantine(c->ctx, m->hold_reason) < 0)
			log_warnx("%s: quota=error cannot quarantine (the MTA "
			    "does not allow it): accepted", qid(c));
		else
			log_info("%s: quota=held reason=\"%s\"", qid(c),
			    m->hold_reason);
	}
	return SMFIS_CONTINUE;
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
		    "fields=%zu", qid(c), m->hfields);
		return SMFIS_CONTINUE;
	}
	log_warnx("%s: dkim=rejected reason=header-section-too-large "
	    "fields=%zu", qid(c), m->hfields);
	c->io->setreply(c->ctx, "552", "5.3.4", "Message not signed: its "
	    "header section is too large");
	return SMFIS_REJECT;
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
	if (m->spf_in_due && (rc = spf_inbound_verdict(c)) != SMFIS_CONTINUE)
		goto done;
	if (c->counting) {
		m->size += 2;		/* the empty line before the body */
		if ((rc = msg_quota_eom(c)) != SMFIS_CONTINUE)
			goto done;	/* msg_reset refunds the recipients */
	}
	if (!m->untrusted && c->gen->conf->spf.outbound.enabled &&
	    !spf_pool_missing() && (rc = spf_preflight(c)) != SMFIS_CONTINUE)
		goto done;
	if (m->spf_in && spf_inbound_fields(c) < 0) {
		rc = on_error(c, "cannot insert header");
		goto done;
	}
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
	if (m->oversized && (rc = msg_oversized(c)) != SMFIS_CONTINUE)
		goto done;
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
	if (rc == SMFIS_CONTINUE || rc == SMFIS_ACCEPT) {
		sfsistat qrc = msg_accepted(c);

		if (qrc != SMFIS_CONTINUE)
			rc = qrc;	/* a lapsed reservation, refused */
	}
	msg_reset(c);		/* refunds what was not committed */
	return rc;
}

void
milter_abort(struct milter_conn *c)
{
	msg_reset(c);
}
