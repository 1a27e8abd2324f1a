/*
 * keycheck - one DKIM key file against the record published for it: the
 * part of outpostctl keytest that check-domain shares.  The record comes
 * from a fetch function of the caller (keytest: the system resolver or a
 * record file; check-domain: deliver/dns with its deadline).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "dkim/key.h"
#include "dkim/keygen.h"
#include "tools/outpostctl.h"

/* keycheck_key - a loaded key against its record; see outpostctl.h */
void
keycheck_key(const struct dkim_key *key, const char *domain,
    const char *selector, struct keycheck_fetch fetch, struct keycheck *out)
{
	struct buf rec = BUF_INIT;
	char err[512], why[512];
	char *text;

	memset(out, 0, sizeof(*out));
	out->status = 1;
	out->alg = key->alg;
	if ((text = keygen_record(key)) != NULL) {
		out->zone = keygen_zone(selector, domain, text);
		free(text);
	}
	if (fetch.fn(selector, domain, &rec, err, sizeof(err),
	    fetch.arg) == -1) {
		(void)snprintf(out->why, sizeof(out->why), "%s", err);
		buf_free(&rec);
		return;
	}
	buf_reserve(&rec, 0);
	if (keygen_check(key, rec.data, why, sizeof(why)) == KEYGEN_MATCH)
		out->status = 0;
	else
		(void)snprintf(out->why, sizeof(out->why),
		    "%s._domainkey.%s: %s", selector, domain, why);
	buf_free(&rec);
}

/* keycheck_run - load the key file, then keycheck_key */
void
keycheck_run(const char *file, enum conf_alg alg, const char *domain,
    const char *selector, struct keycheck_fetch fetch, struct keycheck *out)
{
	struct dkim_key *key;
	char err[512];

	if ((key = dkim_key_load(file, alg, err, sizeof(err))) == NULL) {
		memset(out, 0, sizeof(*out));
		out->status = EX_CONFIG;
		(void)snprintf(out->why, sizeof(out->why), "%s", err);
		return;
	}
	keycheck_key(key, domain, selector, fetch, out);
	dkim_key_free(key);
}

/* keycheck_clear - free what keycheck_run allocated */
void
keycheck_clear(struct keycheck *k)
{
	free(k->zone);
	k->zone = NULL;
}
