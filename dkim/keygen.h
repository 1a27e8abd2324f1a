/*
 * dkim/keygen - make DKIM keys and their DNS records; check a key
 * against the record published for it (outpostctl keygen, keytest).
 *
 * keygen_write() generates a key (RSA, 2048 bits by default, 1024 to
 * 8192; or ed25519) and writes DIR/SELECTOR.private (PEM PKCS#8, mode
 * 0600) and DIR/SELECTOR.txt (the zone-file line of keygen_zone()).  It
 * never overwrites a file unless force is set; files are created with
 * O_EXCL, so a name that appears meanwhile is not clobbered either.
 *
 * keygen_record() is the TXT text, "v=DKIM1; k=rsa; p=...".
 * keygen_zone() is that text as one zone-file line,
 *	SELECTOR._domainkey.DOMAIN. IN TXT ( "v=DKIM1; k=rsa; p=..." "..." )
 * split into character-strings of at most 255 bytes.
 * keygen_record_text() takes either form (or a zone line spread over
 * several lines in parentheses) and returns the TXT text: of the record
 * named owner ("SEL._domainkey.DOMAIN", final dot optional) when the
 * file has several, or of its only record.
 *
 * keygen_check() compares a loaded key with a TXT text and says what
 * differs.  keygen_lookup() fetches SELECTOR._domainkey.DOMAIN TXT with
 * the system resolver and joins its character-strings.
 *
 * Strings returned are new (free()); int functions return 0 or -1 with a
 * reason in err.
 */
#ifndef OUTPOST_DKIM_KEYGEN_H
#define OUTPOST_DKIM_KEYGEN_H

#include <stddef.h>

#include "conf/conf_dkim.h"
#include "dkim/key.h"
#include "util/buf.h"

#define KEYGEN_RSA_BITS		2048
#define KEYGEN_RSA_MIN_BITS	1024
#define KEYGEN_RSA_MAX_BITS	8192
#define KEYGEN_STRING_MAX	255	/* one DNS character-string */

struct keygen_opts {
	const char *dir;
	const char *domain;
	const char *selector;
	enum conf_alg alg;
	unsigned int bits;		/* RSA; 0 for the default */
	int force;			/* replace existing files */
};

int keygen_write(const struct keygen_opts *, char *err, size_t errlen);

/* keygen_name_ok - a domain or selector: DNS labels of [A-Za-z0-9_-] */
int keygen_name_ok(const char *);

char *keygen_record(const struct dkim_key *);
char *keygen_zone(const char *selector, const char *domain,
    const char *record);
int keygen_record_text(const char *text, const char *owner,
    struct buf *record, char *err, size_t errlen);

enum keygen_result {
	KEYGEN_MATCH = 0,
	KEYGEN_SYNTAX,		/* not a DKIM key record */
	KEYGEN_REVOKED,		/* p= is empty */
	KEYGEN_ALGORITHM,	/* k= is not the key's algorithm */
	KEYGEN_PUBKEY,		/* p= is another key */
};

enum keygen_result keygen_check(const struct dkim_key *,
    const char *record, char *why, size_t whylen);
int keygen_lookup(const char *selector, const char *domain,
    struct buf *record, char *err, size_t errlen);

#endif
