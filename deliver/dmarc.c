/*
 * dmarc - DMARC record discovery, parsing and alignment (see dmarc.h).
 *
 * Parsing is libopendmarc's (opendmarc_policy_parse_dmarc): it needs a
 * policy context, but a bare one (connect_init with a placeholder
 * address) is enough and costs one allocation, so each parse makes and
 * frees its own.  What it leaves to the caller is done here: record
 * selection (only records that start with v=DMARC1, exactly one), the
 * default of sp (p) and RFC 7489 6.6.3 step 6 (no valid p= but a rua=:
 * p=none).
 */
#include <sys/param.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <resolv.h>

#include <ctype.h>
#include <libpsl.h>
#include <opendmarc/dmarc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "deliver/dmarc.h"
#include "util/buf.h"

#define PSL_DAFSA	"/usr/share/publicsuffix/public_suffix_list.dafsa"
#define DMARC_TXT_MAX	8192

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static const psl_ctx_t *psl;		/* for the life of the process */

/* psl_init - Debian's list, else libpsl's built-in one */
static void
psl_init(void)
{
	psl = psl_load_file(PSL_DAFSA);
	if (psl == NULL)
		psl = psl_builtin();
}

/* dmarc_policy_name - the policy as in the record */
const char *
dmarc_policy_name(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_P_REJECT:
		return "reject";
	case DMARC_P_QUARANTINE:
		return "quarantine";
	case DMARC_P_NONE:
		break;
	}
	return "none";
}

/* lower_name - domain in lower case without a final dot into out; -1
 * if it is empty or does not fit */
static int
lower_name(const char *domain, char *out, size_t outlen)
{
	size_t n = strlen(domain), i;

	if (n > 0 && domain[n - 1] == '.')
		n--;
	if (n == 0 || n >= outlen)
		return -1;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)domain[i]);
	out[n] = '\0';
	return 0;
}

/* dmarc_org_domain - the registrable domain under the PSL */
int
dmarc_org_domain(const char *domain, char *out, size_t outlen)
{
	char name[256];
	const char *reg;

	if (lower_name(domain, name, sizeof(name)) == -1)
		return -1;
	pthread_once(&psl_once, psl_init);
	if (psl == NULL)
		return -1;
	reg = psl_registrable_domain(psl, name);
	if (reg == NULL)
		return -1;
	if ((size_t)snprintf(out, outlen, "%s", reg) >= outlen)
		return -1;
	return 0;
}

/* dmarc_aligned - strict: the same name; relaxed: the same org domain */
int
dmarc_aligned(const char *from_domain, const char *other_domain, char mode)
{
	char a[256], b[256], oa[256], ob[256];

	if (lower_name(from_domain, a, sizeof(a)) == -1 ||
	    lower_name(other_domain, b, sizeof(b)) == -1)
		return 0;
	if (strcmp(a, b) == 0)
		return 1;
	if (mode == 's' || mode == 'S')
		return 0;
	if (dmarc_org_domain(a, oa, sizeof(oa)) == -1 ||
	    dmarc_org_domain(b, ob, sizeof(ob)) == -1)
		return 0;
	return strcmp(oa, ob) == 0;
}

/* policy_of - libopendmarc's policy letter as ours; -1 if unset */
static int
policy_of(int c, enum dmarc_policy *p)
{
	switch (c) {
	case DMARC_RECORD_P_NONE:
		*p = DMARC_P_NONE;
		return 0;
	case DMARC_RECORD_P_QUARANTINE:
		*p = DMARC_P_QUARANTINE;
		return 0;
	case DMARC_RECORD_P_REJECT:
		*p = DMARC_P_REJECT;
		return 0;
	}
	return -1;
}

/* fetch_rua - the rua URIs, comma-separated, into r->rua; 0 if none */
static size_t
fetch_rua(DMARC_POLICY_T *pc, struct dmarc_record *r)
{
	u_char **l = opendmarc_policy_fetch_rua(pc, NULL, 0, 1);
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; l != NULL && l[i] != NULL; i++)
		buf_appendf(&b, "%s%s", i > 0 ? "," : "", (const char *)l[i]);
	snprintf(r->rua, sizeof(r->rua), "%s", b.len > 0 ? b.data : "");
	buf_free(&b);
	return i;
}

/* dmarc_parse - a record through libopendmarc, then RFC 7489's rules */
int
dmarc_parse(const char *record, struct dmarc_record *r, char *err,
    size_t errlen)
{
	DMARC_POLICY_T *pc;
	int st, p = 0, sp = 0, adkim = 0, aspf = 0;
	size_t nrua;

	memset(r, 0, sizeof(*r));
	pc = opendmarc_policy_connect_init((u_char *)"0.0.0.0", 0);
	if (pc == NULL) {
		snprintf(err, errlen, "libopendmarc: out of memory");
		return -1;
	}
	st = opendmarc_policy_parse_dmarc(pc, (u_char *)"invalid",
	    (u_char *)record);
	nrua = fetch_rua(pc, r);
	(void)opendmarc_policy_fetch_p(pc, &p);
	(void)opendmarc_policy_fetch_sp(pc, &sp);
	(void)opendmarc_policy_fetch_adkim(pc, &adkim);
	(void)opendmarc_policy_fetch_aspf(pc, &aspf);
	opendmarc_policy_connect_shutdown(pc);
	if (st != DMARC_PARSE_OKAY || policy_of(p, &r->p) == -1) {
		if (st == DMARC_PARSE_ERROR_BAD_VERSION || nrua == 0) {
			snprintf(err, errlen, "invalid DMARC record: %s",
			    opendmarc_policy_status_to_str(st));
			return -1;
		}
		/* RFC 7489 6.6.3 step 6: as if p=none. */
		r->p = r->sp = DMARC_P_NONE;
		r->adkim = r->aspf = 'r';
		return 0;
	}
	if (policy_of(sp, &r->sp) == -1)
		r->sp = r->p;
	r->adkim = adkim == DMARC_RECORD_A_STRICT ? 's' : 'r';
	r->aspf = aspf == DMARC_RECORD_A_STRICT ? 's' : 'r';
	return 0;
}

/* is_dmarc1 - the record starts with the v=DMARC1 tag */
static int
is_dmarc1(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i + 1 >= len || (s[i] != 'v' && s[i] != 'V'))
		return 0;
	for (i++; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	if (i >= len || s[i++] != '=')
		return 0;
	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (len - i < 6 || strncmp(s + i, "DMARC1", 6) != 0)
		return 0;
	i += 6;
	return i == len || s[i] == ';' || s[i] == ' ' || s[i] == '\t';
}

/* select_record - the one v=DMARC1 line of txt into rec: 1 found, 0
 * none, -1 more than one */
static int
select_record(const char *txt, char *rec, size_t reclen)
{
	const char *p, *nl;
	int n = 0;

	for (p = txt; *p != '\0'; p = nl + 1) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (is_dmarc1(p, (size_t)(nl - p)) && n++ == 0)
			snprintf(rec, reclen, "%.*s", (int)(nl - p), p);
		if (*nl == '\0')
			break;
	}
	return n > 1 ? -1 : n;
}

/* lookup_at - the record at _dmarc.domain: FOUND, ABSENT (none there:
 * *none set, try the org domain) or TEMPERROR */
static enum dmarc_found
lookup_at(struct dns *d, const char *domain, struct dmarc_record *r,
    int *none, char *err, size_t errlen)
{
	char name[300], txt[DMARC_TXT_MAX], rec[DMARC_TXT_MAX];
	enum dns_rc rc;
	int n;

	*none = 0;
	snprintf(name, sizeof(name), "_dmarc.%s", domain);
	rc = dns_txt(d, name, txt, sizeof(txt), err, errlen);
	if (rc == DNS_TEMPERROR)
		return DMARC_TEMPERROR;
	n = rc == DNS_OK ? select_record(txt, rec, sizeof(rec)) : 0;
	if (n == 0) {
		*none = 1;
		snprintf(err, errlen, "no DMARC record at %s", name);
		return DMARC_ABSENT;
	}
	if (n == -1) {
		snprintf(err, errlen, "more than one DMARC record at %s",
		    name);
		return DMARC_ABSENT;
	}
	if (dmarc_parse(rec, r, err, errlen) == -1)
		return DMARC_ABSENT;
	snprintf(r->where, sizeof(r->where), "%s", domain);
	return DMARC_FOUND;
}

/* dmarc_lookup - the domain's own record, else its org domain's */
enum dmarc_found
dmarc_lookup(struct dns *d, const char *from_domain,
    struct dmarc_record *r, char *err, size_t errlen)
{
	char dom[256], org[256];
	enum dmarc_found f;
	int none;

	memset(r, 0, sizeof(*r));
	if (lower_name(from_domain, dom, sizeof(dom)) == -1) {
		snprintf(err, errlen, "not a domain: \"%.64s\"", from_domain);
		return DMARC_ABSENT;
	}
	f = lookup_at(d, dom, r, &none, err, errlen);
	if (f != DMARC_ABSENT || !none)
		return f;
	if (dmarc_org_domain(dom, org, sizeof(org)) == -1 ||
	    strcmp(org, dom) == 0)
		return DMARC_ABSENT;
	return lookup_at(d, org, r, &none, err, errlen);
}
