/*
 * milter_deliver - deliverability at submission (deliverability.*, see
 * outpost-milter(8)): glue between the end of message (milter.c) and the
 * rules (deliver_rules.c).
 *
 * For mail from trusted and authenticated senders (the mail the milter
 * signs for) milter_deliver_eom() runs the bulk-sender rules at the end of
 * the message, from the header fields the message kept, and applies the
 * configured action of each check that failed: "warn" logs and inserts
 * one X-Outpost-Deliverability field naming what failed, "reject" refuses
 * with 550 5.7.x and the fix in the reply.  Every check and its result is
 * one log line from deliver_note(), the one place where counters would
 * be bumped.
 *
 * Nothing here takes a lock: a connection is served by one thread at a
 * time.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "milter/deliver_rules.h"
#include "milter/milter_impl.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

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

/* deliver_bulk - the bulk-sender rules; failures into v */
static void
deliver_bulk(struct milter_conn *c, struct dverdict *v)
{
	enum conf_dcheck action = c->gen->conf->deliverability.bulk;
	struct msg *m = &c->msg;
	struct rules_field *f;
	struct rules_bulk r;
	char names[200], fix[500], what[300];

	f = deliver_fields(m);
	rules_bulk(f, m->nhdrs, &r);
	free(f);
	if (!r.bulk)
		return;
	if (r.missing == 0) {
		deliver_note(c, "bulk", "pass", "why=%s domain=%s", r.why,
		    m->dec.domain);
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

/* deliver_apply - refuse, or insert the warning field; the SMFIS code */
static sfsistat
deliver_apply(struct milter_conn *c, struct dverdict *v)
{
	char text[700];
	struct buf b = BUF_INIT;
	int rc;

	if (v->code != NULL) {
		(void)snprintf(text, sizeof(text), "Message not sent, receivers "
		    "would junk or bounce it: %s", v->fix);
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

	if (m->untrusted || m->oversized || m->dec.trust == NULL ||
	    m->nfrom != 1 || m->dec.domain[0] == '\0')
		return SMFIS_CONTINUE;	/* not ours to check */
	if (cf->deliverability.dmarc == CONF_DCHECK_OFF &&
	    cf->deliverability.bulk == CONF_DCHECK_OFF)
		return SMFIS_CONTINUE;
	memset(&v, 0, sizeof(v));
	if (cf->deliverability.bulk != CONF_DCHECK_OFF)
		deliver_bulk(c, &v);
	return deliver_apply(c, &v);
}
