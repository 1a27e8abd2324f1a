/*
 * dkim/key - DKIM private keys, read and parsed once (start and reload).
 *
 * dkim_key_load() reads FILE, refuses it when it is not a regular file,
 * is group- or world-accessible (mode & 077), cannot be parsed, is not of
 * the declared algorithm, or is RSA under 1024 bits; err then names the
 * file and the reason.  Accepted forms: PEM (PKCS#8 "PRIVATE KEY", or
 * "RSA PRIVATE KEY"), and for ed25519 also a file holding only the
 * base64 32-byte seed (RFC 8463 A.1 form, OpenDKIM's ed25519 form).
 *
 * With alg CONF_ALG_ANY the algorithm is taken from the file (OpenDKIM
 * KeyTable entries do not declare one).
 *
 * The returned key is owned by the caller; dkim_key_free() accepts NULL
 * and returns NULL.  A loaded key is immutable and safe to share between
 * threads.
 */
#ifndef OUTPOST_DKIM_KEY_H
#define OUTPOST_DKIM_KEY_H

#include <stddef.h>

#include <openssl/evp.h>

#include "conf/conf_dkim.h"

struct dkim_key {
	char *file;
	enum conf_alg alg;
	unsigned int bits;		/* RSA modulus size; 256 for ed25519 */
	EVP_PKEY *pkey;			/* parsed once, used by the signer */
	unsigned char *blob;		/* what libopendkim's dkim_sign() takes */
	size_t bloblen;
};

struct dkim_key *dkim_key_load(const char *file, enum conf_alg alg,
    char *err, size_t errlen);
struct dkim_key *dkim_key_free(struct dkim_key *);

/*
 * dkim_key_public_b64 - the p= value of the key's DNS record: base64 of
 * the SubjectPublicKeyInfo for RSA, of the raw 32-byte key for ed25519.
 * Returns a new string (free()), or NULL.
 */
char *dkim_key_public_b64(const struct dkim_key *);

/*
 * dkim_key_pem_new - PKCS#8 PEM text of a private key, NUL-terminated,
 * its length in *lenp.  Returns a new string, or NULL (OpenSSL's error
 * queue then says why).  It holds the private key: the caller wipes it
 * (OPENSSL_cleanse) before free().
 */
char *dkim_key_pem_new(EVP_PKEY *, size_t *lenp);

#endif
