/*
 * milter_deliver - deliverability at submission (deliverability.*, see
 * outpost-milter(8)): glue between the end of message (milter.c) and the
 * rules (deliver_rules.c).
 *
 * For mail from trusted and authenticated senders (the mail the milter
 * signs for) milter_deliver_eom() runs, at the end of the message, the
 * DMARC alignment check and the bulk-sender rules, from the header fields
 * the message kept, the signatures it is about to get (struct msg's
 * decision) and the outbound SPF preflight's verdict, and applies the
 * configured action of each check that failed: "warn" logs and inserts
 * one X-Outpost-Deliverability field naming what failed, "reject" refuses
 * with 550 5.7.x and the fix in the reply.  Every check and its result is
 * one log line from deliver_note(), which also counts it
 * (outpost_deliverability_checks_total{check,result}).
 *
 * DNS: the DMARC record is looked up once per message, only when needed
 * (not when a signature's d= is the From domain itself, which aligns
 * under any adkim, unless the message is bulk), through deliver/dns.h:
 * c-ares with a deadline per lookup and a per-name cache, shared by all
 * threads.  dmarc_lookup() makes at most two lookups (the From domain,
 * then its organizational domain), so each gets half of
 * deliverability.dns_timeout: a message never waits longer than that.
 * The resolvers are process-wide, one per timeout ever configured (a
 * reload that changes it adds one; they live until exit, since threads
 * of the old generation may still use theirs); nothing else here takes a
 * lock: a connection is served by one thread at a time.
 */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/dmarc.h"
#include "deliver/dns.h"
#include "milter/deliver_rules.h"
#include "milter/milter_impl.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/xmalloc.h"

/* Names whose answers the resolvers keep (deliver/dns.h). */
#define DELIVER_DNS_CACHE 4096

/* The process-wide resolvers, one per timeout (deliver_dns). */
struct deliver_resolver {
	struct dns *dns;
	unsigned int timeout_ms;
	struct deliver_resolver *next;
};
static struct deliver_resolver *resolvers;	/* guarded by resolvers_lock */
static pthread_mutex_t resolvers_lock = PTHREAD_MUTEX_INITIALIZER;

/* The DMARC record of the From domain, looked up at most once. */
struct dlookup {
	int done;
	enum dmarc_found found;
	struct dmarc_record rec;
	char err[256];
};

/* What the checks of one message found, for the actions. */
struct dverdict {
	char warn[512];			/* X-Outpost-Deliverability value */
	char fix[600];			/* reply text of a refusal */
	const char *code;		/* its enhanced code, or NULL */
};

/*
 * deliver_note - one log line for a check and its result:
 * "QID: deliverability=CHECK result=RESULT ...".  Metrics: the counter
 * of (check, result) is bumped here and nowhere else.
 */
static void
deliver_note(const struct milter_conn *c, const char *check,
    const char *result, const char *fmt, ...)
{
	char more[600];
	va_list ap;

	more[0] = '\0';
	if (fmt != NULL) {
		va_start(ap, fmt);
		(void)vsnprintf(more, sizeof(more), fmt, ap);
		va_end(ap);
	}
	log_info("%s: deliverability=%s result=%s%s%s", milter_qid(c), check,
	    result, more[0] ? " " : "", more);
	metric_inc(&milter_metric_deliver, check, result);
}

/* verdict_add - record a failed check: its header text and, for
 * "reject", its fix and code (the first refusal's code wins) */
static void
verdict_add(struct dverdict *v, enum conf_dcheck action, const char *code,
    const char *what, const char *fix)
{
	size_t n;

	n = strlen(v->warn);
	if (n + 1 < sizeof(v->warn))
		(void)snprintf(v->warn + n, sizeof(v->warn) - n, "%s%s",
		    n ? "; " : "", what);
	if (action != CONF_DCHECK_REJECT)
		return;
	if (v->code == NULL)
		v->code = code;
	n = strlen(v->fix);
	if (n + 1 < sizeof(v->fix))
		(void)snprintf(v->fix + n, sizeof(v->fix) - n, "%s%s",
		    n ? "; " : "", fix);
}

/* deliver_dns - the resolver for a message deadline of timeout_ms (each
 * of the two lookups gets half), or NULL with err */
static struct dns *
deliver_dns(unsigned int timeout_ms, char *err, size_t errlen)
{
	struct deliver_resolver *r;
	struct dns *d = NULL;
	int per = timeout_ms >= 2 ? (int)(timeout_ms / 2) : 1;

	pthread_mutex_lock(&resolvers_lock);
	for (r = resolvers; r != NULL; r = r->next)
		if (r->timeout_ms == timeout_ms) {
			d = r->dns;
			break;
		}
	if (d == NULL && (d = dns_new(per, DELIVER_DNS_CACHE, err,
	    errlen)) != NULL) {
		r = xcalloc(1, sizeof(*r));
		r->dns = d;
		r->timeout_ms = timeout_ms;
		r->next = resolvers;
		resolvers = r;
	}
	pthread_mutex_unlock(&resolvers_lock);
	return d;
}

/* deliver_lookup - the From domain's DMARC record, once per message */
static void
deliver_lookup(struct milter_conn *c, struct dlookup *l)
{
	struct dns *d;

	if (l->done)
		return;
	l->done = 1;
	d = deliver_dns(c->gen->conf->deliverability.dns_timeout_ms, l->err,
	    sizeof(l->err));
	if (d == NULL) {
		l->found = DMARC_TEMPERROR;
		return;
	}
	l->found = dmarc_lookup(d, c->msg.dec.domain, &l->rec, l->err,
	    sizeof(l->err));
}

/* deliver_fields - the kept header fields as rules fields (caller frees) */
static struct rules_field *
deliver_fields(const struct msg *m)
{
	struct rules_field *f;
	size_t i;

	f = xcalloc(m->nhdrs > 0 ? m->nhdrs : 1, sizeof(*f));
	for (i = 0; i < m->nhdrs; i++) {
		f[i].name = m->hdrs[i].name;
		f[i].value = m->hdrs[i].value;
	}
	return f;
}

/*
 * over_recipients - has the sender's key of deliverability.bulk_limit
 * counted more than deliverability.bulk_recipients (this message's
 * recipients included: they are reserved by now)?  A store error is
 * logged and counts as not.
 */
static int
over_recipients(struct milter_conn *c, uint64_t *used)
{
	const struct conf *cf = c->gen->conf;
	struct quota_who who;
	char err[256];

	*used = 0;
	if (cf->deliverability.bulk_recipients == 0 || c->gen->quota == NULL)
		return 0;
	memset(&who, 0, sizeof(who));
	who.sasl_username = c->auth;
	who.sender = c->msg.sender != NULL ? c->msg.sender : "";
	who.client_addr = c->have_addr ? c->addr : NULL;
	if (quota_used(c->gen->quota, cf->deliverability.bulk_limit, &who,
	    clock_wall_ms(), used, err, sizeof(err)) < 0) {
		deliver_note(c, "bulk", "temperror", "limit=%s reason=\"%s\"",
		    cf->deliverability.bulk_limit, err);
		return 0;
	}
	return *used > cf->deliverability.bulk_recipients;
}

/* deliver_bulk - the bulk-sender rules; failures into v */
static void
deliver_bulk(struct milter_conn *c, struct dlookup *l, struct dverdict *v)
{
	enum conf_dcheck action = c->gen->conf->deliverability.bulk;
	struct msg *m = &c->msg;
	struct rules_field *f;
	struct rules_bulk r;
	char names[200], fix[500], what[300];
	uint64_t used;

	f = deliver_fields(m);
	rules_bulk(f, m->nhdrs, &r);
	free(f);
	if (!r.bulk && over_recipients(c, &used)) {
		r.bulk = 1;
		r.why = "recipients";
		log_debug("%s: bulk: %s has %llu recipients today, over %llu",
		    milter_qid(c), c->gen->conf->deliverability.bulk_limit,
		    (unsigned long long)used, (unsigned long long)
		    c->gen->conf->deliverability.bulk_recipients);
	}
	if (!r.bulk)
		return;
	deliver_lookup(c, l);
	if (l->found == DMARC_ABSENT)
		r.missing |= RULES_NO_DMARC;
	if (r.missing == 0) {
		deliver_note(c, "bulk", "pass", "why=%s domain=%s%s", r.why,
		    m->dec.domain, l->found == DMARC_TEMPERROR ?
		    " dmarc-record=temperror" : "");
		return;
	}
	rules_missing_names(r.missing, names, sizeof(names));
	rules_missing_fix(r.missing, m->dec.domain, fix, sizeof(fix));
	deliver_note(c, "bulk", "fail", "why=%s domain=%s missing=%s "
	    "action=%s", r.why, m->dec.domain, names,
	    conf_dcheck_name(action));
	(void)snprintf(what, sizeof(what), "bulk=fail (%s) missing=%s", r.why,
	    names);
	verdict_add(v, action, "5.7.1", what, fix);
}

/* our_domains - the d= of the signatures the message will get */
static size_t
our_domains(const struct msg *m, const char **d, size_t max)
{
	size_t i, n = 0;

	if (!m->dec.sign || m->skip)
		return 0;
	for (i = 0; i < m->dec.nreq && n < max; i++)
		d[n++] = m->dec.req[i].domain;
	return n;
}

/* mailfrom_domain - the envelope sender's domain, or NULL */
static const char *
mailfrom_domain(const struct msg *m)
{
	const char *at;

	if (m->sender == NULL || (at = strrchr(m->sender, '@')) == NULL ||
	    at[1] == '\0')
		return NULL;
	return at + 1;
}

/* dmarc_fix - the reply's fix for a message that would fail DMARC */
static void
dmarc_fix(const struct milter_conn *c, const struct dmarc_record *r,
    enum dmarc_policy p, char *buf, size_t len)
{
	const struct conf *cf = c->gen->conf;
	const char *from = c->msg.dec.domain;
	char spf[700];

	spf[0] = '\0';
	if (cf->spf.outbound.enabled && cf->spf.outbound.publish != NULL)
		(void)snprintf(spf, sizeof(spf), ", or publish \"%s\" in the "
		    "SPF record of %s and send with a MAIL FROM in it",
		    cf->spf.outbound.publish, from);
	(void)snprintf(buf, len, "%s publishes DMARC p=%s (adkim=%c aspf=%c) "
	    "and this message would fail it: sign it with a key of %s "
	    "(dkim.keys and a dkim.signing rule; outpostctl keygen -d %s, "
	    "then publish the record)%s", from, dmarc_policy_name(p),
	    r->adkim, r->aspf, from, from, spf);
}

/* dmarc_unchecked - the outcome without a record: none or temperror */
static void
dmarc_unchecked(struct milter_conn *c, const struct dlookup *l)
{
	deliver_note(c, "dmarc", l->found == DMARC_TEMPERROR ? "temperror" :
	    "none", "domain=%s reason=\"%s\"", c->msg.dec.domain, l->err);
}

/* deliver_dmarc - DMARC alignment; a failure into v */
static void
deliver_dmarc(struct milter_conn *c, struct dlookup *l, struct dverdict *v)
{
	enum conf_dcheck action = c->gen->conf->deliverability.dmarc;
	const struct msg *m = &c->msg;
	const char *d[DKIM_MAX_SIGS], *from = m->dec.domain;
	const char *mf = mailfrom_domain(m);
	size_t i, n = our_domains(m, d, DKIM_MAX_SIGS);
	enum dmarc_policy p;
	enum rules_align a;
	char what[800], fix[1600];

	for (i = 0; i < n; i++)
		if (strcasecmp(d[i], from) == 0) {	/* any adkim aligns */
			deliver_note(c, "dmarc", "pass", "domain=%s aligned=dkim "
			    "d=%s%s", from, d[i], l->done ? "" :
			    " lookup=skipped");
			return;
		}
	deliver_lookup(c, l);
	if (l->found != DMARC_FOUND) {
		dmarc_unchecked(c, l);
		return;
	}
	p = rules_dmarc_policy(&l->rec, from);
	a = rules_dmarc_align(&l->rec, from, d, n, mf, m->spf_out_pass);
	(void)snprintf(what, sizeof(what), "domain=%s where=%s p=%s adkim=%c "
	    "aspf=%c", from, l->rec.where, dmarc_policy_name(p),
	    l->rec.adkim, l->rec.aspf);
	if (a != RULES_ALIGN_NONE) {
		deliver_note(c, "dmarc", "pass", "%s aligned=%s", what,
		    rules_align_name(a));
		return;
	}
	if (p == DMARC_P_NONE) {
		deliver_note(c, "dmarc", "noted", "%s aligned=none", what);
		return;
	}
	deliver_note(c, "dmarc", "fail", "%s aligned=none dkim_d=%s "
	    "spf_preflight=%s action=%s", what, n > 0 ? d[0] : "-",
	    m->spf_out_pass ? "pass" : "fail-or-off",
	    conf_dcheck_name(action));
	dmarc_fix(c, &l->rec, p, fix, sizeof(fix));
	(void)snprintf(what, sizeof(what), "dmarc=fail domain=%s p=%s "
	    "(neither DKIM nor SPF aligned)", from, dmarc_policy_name(p));
	verdict_add(v, action, "5.7.26", what, fix);
}

/* deliver_apply - refuse, or insert the warning field; the SMFIS code */
static sfsistat
deliver_apply(struct milter_conn *c, struct dverdict *v)
{
	char text[450];		/* one SMTP reply line */
	struct buf b = BUF_INIT;
	int rc;

	if (v->code != NULL) {
		rc = snprintf(text, sizeof(text), "Message not sent, receivers "
		    "would junk or bounce it: %s", v->fix);
		if (rc < 0 || (size_t)rc >= sizeof(text))	/* as fits */
			log_debug("%s: deliverability reply cut to %zu bytes",
			    milter_qid(c), sizeof(text) - 1);
		milter_clean_text(text);
		c->io->setreply(c->ctx, "550", v->code, text);
		return SMFIS_REJECT;
	}
	if (v->warn[0] == '\0')
		return SMFIS_CONTINUE;
	if (c->pflags & SMFIP_HDR_LEADSPC)
		buf_appendc(&b, ' ');
	buf_appends(&b, v->warn);
	rc = c->io->insheader(c->ctx, 0, "X-Outpost-Deliverability",
	    buf_cstr(&b));
	buf_free(&b);
	if (rc < 0)
		return milter_on_error(c, "cannot insert header");
	return SMFIS_CONTINUE;
}

/* milter_deliver_eom - see milter_impl.h */
sfsistat
milter_deliver_eom(struct milter_conn *c)
{
	const struct conf *cf = c->gen->conf;
	struct msg *m = &c->msg;
	struct dverdict v;
	struct dlookup l;

	if (m->untrusted || m->oversized || m->dec.trust == NULL ||
	    m->nfrom != 1 || m->dec.domain[0] == '\0')
		return SMFIS_CONTINUE;	/* not ours to check */
	if (cf->deliverability.dmarc == CONF_DCHECK_OFF &&
	    cf->deliverability.bulk == CONF_DCHECK_OFF)
		return SMFIS_CONTINUE;
	memset(&v, 0, sizeof(v));
	memset(&l, 0, sizeof(l));
	if (cf->deliverability.bulk != CONF_DCHECK_OFF)
		deliver_bulk(c, &l, &v);
	if (cf->deliverability.dmarc != CONF_DCHECK_OFF)
		deliver_dmarc(c, &l, &v);
	return deliver_apply(c, &v);
}
