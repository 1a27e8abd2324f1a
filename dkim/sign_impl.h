/*
 * dkim/sign_impl - the engines behind dkim/sign.h (private to dkim/ and
 * its tests).
 *
 * dkim/sign.c owns what both engines must agree on, so that they see the
 * same input and can give byte-identical values:
 *  - checks: header names, d= and s= syntax, a From field present;
 *  - line ends: bare LF and bare CR become CRLF in header values and in
 *    the body (a CR split from its LF by a chunk boundary is held until
 *    the next chunk); CR and LF at the very end of a header value are
 *    dropped;
 *  - the header names to sign: opts->headers, List-Unsubscribe and
 *    List-Unsubscribe-Post (RFC 8058), plus opts->oversign (an
 *    oversigned name must also be signed where present, or a verifier
 *    would hash a field the signer did not);
 *  - t=: opts->now, or the clock when it is 0;
 *  - after the engine: sign_fix_bplacement() (see below).
 * An engine gets struct sign_msg, then header/eoh/body/finish calls with
 * input already normalized, and appends one value per request in finish.
 * A failed call leaves the engine state to be freed, nothing more.
 */
#ifndef OUTPOST_DKIM_SIGN_IMPL_H
#define OUTPOST_DKIM_SIGN_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "dkim/sign.h"
#include "util/buf.h"

#define SIGN_MARGIN	75	/* libopendkim's DKIM_HDRMARGIN */
#define SIGN_INITIAL	16	/* strlen("DKIM-Signature: ") */

/* What one message is signed with (all borrowed from the signer). */
struct sign_msg {
	enum conf_canon canon_header;
	enum conf_canon canon_body;
	const char *const *sign;	/* names to sign, NULL-terminated */
	size_t nsign;
	const char *const *oversign;	/* NULL-terminated */
	size_t noversign;
	uint64_t now;			/* t=, never 0 */
	const char *id;			/* queue id, or "" */
	const struct dkim_sign_req *reqs;
	size_t nreq;
};

struct sign_engine {
	const char *name;
	void *(*start)(const struct sign_msg *, char *err, size_t errlen);
	/*
	 * text is "Name:value" as given (the name may end in spaces,
	 * which namelen leaves out), CRLF-normalized, len bytes, no NUL
	 */
	int (*header)(void *, const char *text, size_t len, size_t namelen,
	    char *err, size_t errlen);
	int (*eoh)(void *, char *err, size_t errlen);
	int (*body)(void *, const unsigned char *, size_t, char *err,
	    size_t errlen);
	/* append the value of request i to values[i], i < nreq */
	int (*finish)(void *, struct buf *values, char *err, size_t errlen);
	void (*free)(void *);
};

extern const struct sign_engine sign_engine_native;
extern const struct sign_engine sign_engine_opendkim;

/*
 * sign_fix_bplacement - libopendkim 2.11 hashes its ed25519 header with
 * "b=" placed as if the value were empty (on the current line when it
 * fits), then emits it with "b=" forced onto a new line.  With simple
 * header canonicalization the emitted field then differs from the hashed
 * one and no verifier accepts the signature (relaxed folds both to the
 * same text).  This moves "b=" back to where it was hashed and refolds
 * its value at the margin.  sign.c applies it to both engines' values for
 * ed25519 with simple header canonicalization; in every other case the
 * placements already agree and it is not called.
 */
void sign_fix_bplacement(struct buf *value);

#endif
