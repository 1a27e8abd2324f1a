/*
 * milter_spf - the milter's SPF checks (spf.inbound, spf.outbound; see
 * outpost-milter(8)), glue between the handlers (milter.c) and the
 * worker pool (spf/pool.h): libspf2 never runs in this process.
 *
 * main() starts the pool before privileges drop (milter_spf_start); a
 * reload that enables SPF later finds no pool and says so once
 * (milter_spf_pool_missing).  Inbound: at MAIL for untrusted clients
 * (milter_spf_inbound), its action at MAIL or, when MAIL was negotiated
 * without a reply, at EOM (milter_spf_inbound_verdict), the
 * Received-SPF and Authentication-Results fields at EOM
 * (milter_spf_inbound_fields).  Outbound preflight: at EOM for trusted
 * senders, one check per domain at a time, cached
 * (milter_spf_preflight).
 *
 * The answers live in the message (struct msg, milter_impl.h).  A
 * refusal sets its reply through the engine and returns the SMFIS_*
 * code; a worker that fails gives temperror, which follows its
 * configured action.  The pool and the cache are process-wide, made
 * before any thread starts and freed after the last one ends.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "milter/milter_impl.h"
#include "spf/pool.h"
#include "spf/spf.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"

/* Domains whose outbound preflight result is kept (spf_cache). */
#define MILTER_SPF_CACHE_MAX 4096
/* How much longer than spf.timeout a message waits for another thread's
 * preflight of the same domain before checking itself (ms). */
#define MILTER_SPF_WAIT_MARGIN_MS 2000

/* Process-wide, made in main() before any thread (milter_spf_start). */
static struct spf_pool *spf_pool;
static struct spf_cache *spf_cache;
static pthread_mutex_t missing_lock = PTHREAD_MUTEX_INITIALIZER;

/* milter_spf_start - start the pool when SPF is enabled (milter.h) */
int
milter_spf_start(const struct conf *cf, char *err, size_t errlen)
{
	if (!cf->spf.inbound.enabled && !cf->spf.outbound.enabled)
		return 0;
	if ((spf_pool = spf_pool_new(&cf->spf, &cf->log, err, errlen)) == NULL)
		return -1;
	spf_cache = spf_cache_new(MILTER_SPF_CACHE_MAX);
	return 0;
}

/* milter_spf_stop - end the pool (at exit) */
void
milter_spf_stop(void)
{
	spf_pool = spf_pool_free(spf_pool);
	spf_cache = spf_cache_free(spf_cache);
}

/* milter_spf_ready - was the pool started? */
int
milter_spf_ready(void)
{
	return spf_pool != NULL;
}

/* milter_spf_pool_missing - a reload enabled SPF without a pool: say so
 * once */
int
milter_spf_pool_missing(void)
{
	static int logged;	/* guarded by missing_lock */

	if (spf_pool != NULL)
		return 0;
	pthread_mutex_lock(&missing_lock);
	if (!logged)
		log_warnx("spf is enabled by a reload, but the SPF workers "
		    "start only at start: restart outpost-milter");
	logged = 1;
	pthread_mutex_unlock(&missing_lock);
	return 1;
}

/* milter_spf_inbound_on - does the inbound check run on this
 * connection? */
int
milter_spf_inbound_on(const struct milter_conn *c)
{
	return c->gen->conf->spf.inbound.enabled &&
	    !milter_spf_pool_missing() && c->have_addr;
}

/* spf_query_of - the inbound question, borrowing c's strings */
static void
spf_query_of(const struct milter_conn *c, struct spf_query *q)
{
	q->ip = c->client;
	q->helo = c->helo;
	q->sender = c->msg.sender != NULL ? c->msg.sender : "";
}

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
 * milter_spf_inbound - check the client against MAIL FROM (the null sender: the
 * HELO name) through a worker; SMFIS_CONTINUE, or the refusal with its
 * reply set (550 5.7.23 / 5.7.24, 451 4.7.24).
 */
sfsistat
milter_spf_inbound(struct milter_conn *c)
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
	metric_inc(&milter_metric_spf, m->spf_ans.identity == SPF_ID_HELO ?
	    "helo" : "mailfrom", spf_result_name(m->spf_ans.result));
	if (m->spf_ans.identity == SPF_ID_HELO)
		kind = SPF_KIND_HELO;
	log_info("%s: spf=%s identity=%s domain=%s client=%s action=%s%s%s%s",
	    milter_qid(c), spf_result_name(m->spf_ans.result),
	    m->spf_ans.identity == SPF_ID_HELO ? "helo" : "mailfrom",
	    m->spf_ans.domain[0] ? m->spf_ans.domain : "-", c->client,
	    conf_spf_action_name(a), m->spf_ans.text[0] ? " reason=\"" : "",
	    m->spf_ans.text, m->spf_ans.text[0] ? "\"" : "");
	return milter_spf_inbound_verdict(c);
}

/* milter_spf_inbound_verdict - the action of the inbound result, reply
 * set */
sfsistat
milter_spf_inbound_verdict(struct milter_conn *c)
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
		milter_clean_text(text);
		c->io->setreply(c->ctx, "550",
		    m->spf_ans.result == SPF_RES_FAIL ||
		    m->spf_ans.result == SPF_RES_SOFTFAIL ? "5.7.23" :
		    "5.7.24", text);
		return SMFIS_REJECT;
	case CONF_SPF_TEMPFAIL:
		snprintf(text, sizeof(text), "SPF %s for %s, try again later",
		    spf_result_name(m->spf_ans.result),
		    m->spf_ans.domain[0] ? m->spf_ans.domain : "the sender");
		milter_clean_text(text);
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
	if ((j = milter_symval(c, "j")) != NULL && *j != '\0')
		return j;
	return "localhost";
}

/* milter_spf_inbound_fields - Received-SPF and Authentication-Results;
 * 0/-1 */
int
milter_spf_inbound_fields(struct milter_conn *c)
{
	struct spf_query q;
	char rs[1024], ar[1024];
	const char *rcv = spf_receiver(c);

	spf_query_of(c, &q);
	if (spf_received_spf(&q, &c->msg.spf_ans, rcv, rs, sizeof(rs)) < 0 ||
	    spf_auth_results(&q, &c->msg.spf_ans, rcv, ar, sizeof(ar)) < 0) {
		log_warnx("%s: spf=error reason=\"header fields too long\"",
		    milter_qid(c));
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
 * milter_spf_preflight - outbound: would our addresses pass SPF for the
 * sender's domain?  Adds the warning field, or returns SMFIS_REJECT with
 * 550 5.7.23 set (action reject; never on temperror).  One thread checks
 * a domain at a time (spf_cache_claim): the others wait for its result,
 * at most spf.timeout plus MILTER_SPF_WAIT_MARGIN_MS, then check alone.
 */
sfsistat
milter_spf_preflight(struct milter_conn *c)
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
	c->msg.spf_out_pass = pf.authorized;
	metric_inc(&milter_metric_spf, "outbound", pf.authorized ? "pass" :
	    spf_result_name(pf.worst));
	if (pf.authorized) {
		log_debug("%s: spf-preflight=pass domain=%s%s", milter_qid(c),
		    domain, how);
		return SMFIS_CONTINUE;
	}
	if (cf->spf.outbound.action == CONF_SPF_REJECT &&
	    pf.worst != SPF_RES_TEMPERROR) {
		log_info("%s: spf-preflight=%s domain=%s action=reject%s",
		    milter_qid(c), spf_result_name(pf.worst), domain, how);
		milter_clean_text(pf.reply);
		c->io->setreply(c->ctx, "550", "5.7.23", pf.reply);
		return SMFIS_REJECT;
	}
	log_info("%s: spf-preflight=%s domain=%s action=warn%s", milter_qid(c),
	    spf_result_name(pf.worst), domain, how);
	if (insert_field(c, "X-Outpost-SPF-Preflight", pf.header) < 0)
		return milter_on_error(c, "cannot insert header");
	return SMFIS_CONTINUE;
}
