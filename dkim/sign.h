/*
 * dkim/sign - DKIM signatures (RFC 6376, RFC 8463) for one message, with
 * one or more keys in one pass.
 *
 * Two engines behind one interface:
 *  - native: header/body canonicalization and hashing here, signature by
 *    OpenSSL with the EVP_PKEY parsed once at load (struct dkim_key).
 *  - libopendkim: dkim_sign() per key per message; it re-parses the key
 *    blob each time.  It is the reference: for the same message, keys,
 *    options and fixed time both produce byte-identical header values
 *    (tests/unit/check_dkim_sign.c).
 *
 * Use:
 *	s = dkim_signer_new(&opts, sigs, nsigs, err, sizeof(err));
 *	for each header: dkim_signer_header(s, name, value, vlen);
 *	dkim_signer_eoh(s);
 *	for each body chunk: dkim_signer_body(s, buf, len);
 *	dkim_signer_finish(s, values, err, sizeof(err));
 *	values[i] is the value of the i-th DKIM-Signature header, starting
 *	at "v=1;", folded with "\r\n\t"; the caller emits it as
 *	"DKIM-Signature: " value (one space after the colon).
 *	dkim_signer_free(s);
 *
 * Header values are passed as the MTA gives them (no name, no colon,
 * leading whitespace kept or not); bare LF in values and body is taken
 * as CRLF, as it will be on the wire.  A field whose name holds a ';'
 * (RFC 5322 allows it; h= cannot carry it) is left out of the signature;
 * any other name that is not printable US-ASCII fails the signer.  Memory is bounded: the body is
 * hashed as it streams; only the headers are kept.
 * A signer is used by one thread; the keys it borrows are shared.
 */
#ifndef OUTPOST_DKIM_SIGN_H
#define OUTPOST_DKIM_SIGN_H

#include <stddef.h>
#include <time.h>

#include "conf/conf_dkim.h"
#include "dkim/key.h"
#include "util/buf.h"

struct dkim_signer;

/* Options common to all signatures of one message (borrowed). */
struct dkim_sign_opts {
	enum conf_engine engine;
	enum conf_canon canon_header;
	enum conf_canon canon_body;
	const char *const *headers;	/* names to sign if present (and
					 * always List-Unsubscribe and
					 * List-Unsubscribe-Post) */
	size_t nheaders;
	const char *const *oversign;	/* names signed once more */
	size_t noversign;
	time_t now;			/* t= ; fixed in tests */
	const char *id;			/* queue id, for log lines */
};

/* One signature to make (borrowed). */
struct dkim_sign_req {
	const struct dkim_key *key;
	const char *domain;		/* d= */
	const char *selector;		/* s= */
};

struct dkim_signer *dkim_signer_new(const struct dkim_sign_opts *,
    const struct dkim_sign_req *, size_t nreq, char *err, size_t errlen);
int dkim_signer_header(struct dkim_signer *, const char *name,
    const char *value, size_t vlen);
int dkim_signer_eoh(struct dkim_signer *);
int dkim_signer_body(struct dkim_signer *, const unsigned char *, size_t);
/* values: array of nreq struct buf, filled (appended) by finish */
int dkim_signer_finish(struct dkim_signer *, struct buf *values, char *err,
    size_t errlen);
struct dkim_signer *dkim_signer_free(struct dkim_signer *);
/*
 * dkim_thread_end - release what signing left in the calling thread
 * (OpenSSL's thread-local state: its random generators, its error
 * queue), for a thread about to end: then nothing of it is freed after
 * the thread has said it is done (leak checkers at exit, libraries shut
 * down by the exit).  The thread signs nothing afterwards.
 */
void dkim_thread_end(void);

#endif
