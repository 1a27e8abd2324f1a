/*
 * dkim/key - see key.h.
 *
 * A key is read once, checked, and kept in two forms: the parsed EVP_PKEY
 * the native signer uses, and a PEM PKCS#8 text for libopendkim.
 * libopendkim 2.11's dkim_sign() takes a NUL-terminated string and
 * accepts PEM (anything starting "-----") or base64 DER starting "MII";
 * it cannot read the bare ed25519 seed form (d2i_PrivateKey fails), and
 * an ed25519 PKCS#8 DER is too short to start with "MII".  So the blob is
 * always PEM PKCS#8, regenerated from the parsed key whatever the file's
 * form was.
 */
#include "config.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "dkim/b64.h"
#include "dkim/key.h"
#include "util/xmalloc.h"

/* a PEM RSA-16384 key is about 13 KiB */
#define KEY_FILE_MAX	(64 * 1024)
#define KEY_MIN_RSA_BITS 1024
#define ED25519_LEN	32

/* key_err - "FILE: reason" into err; always returns NULL */
static struct dkim_key *
key_err(char *err, size_t errlen, const char *file, const char *reason)
{
	if (err != NULL && errlen > 0)
		(void)snprintf(err, errlen, "%s: %s", file, reason);
	return NULL;
}

/* key_read - read a small regular file, refusing loose permissions */
static unsigned char *
key_read(const char *file, size_t *lenp, char *err, size_t errlen)
{
	struct stat st;
	unsigned char *data = NULL;
	char reason[128];
	size_t len = 0;
	ssize_t n;
	int fd;

	/* stat first: open() would block on a FIFO */
	if (stat(file, &st) == -1) {
		(void)snprintf(reason, sizeof(reason), "cannot read: %s",
		    strerror(errno));
		key_err(err, errlen, file, reason);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		key_err(err, errlen, file, "not a regular file");
		return NULL;
	}
	if ((fd = open(file, O_RDONLY | O_NOCTTY | O_NONBLOCK)) == -1) {
		(void)snprintf(reason, sizeof(reason), "cannot read: %s",
		    strerror(errno));
		key_err(err, errlen, file, reason);
		return NULL;
	}
	/* check the file we opened, not the name we stat()ed */
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		key_err(err, errlen, file, "not a regular file");
		goto fail;
	}
	if ((st.st_mode & 077) != 0) {
		(void)snprintf(reason, sizeof(reason),
		    "group or world accessible (mode %04o), want 0600 or "
		    "stricter", (unsigned int)(st.st_mode & 07777));
		key_err(err, errlen, file, reason);
		goto fail;
	}
	if (st.st_size > KEY_FILE_MAX) {
		key_err(err, errlen, file, "too large to be a key");
		goto fail;
	}
	data = xmalloc(KEY_FILE_MAX + 1);
	for (;;) {
		n = read(fd, data + len, KEY_FILE_MAX - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			(void)snprintf(reason, sizeof(reason),
			    "cannot read: %s", strerror(errno));
			key_err(err, errlen, file, reason);
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == KEY_FILE_MAX) {
			key_err(err, errlen, file, "too large to be a key");
			goto fail;
		}
	}
	(void)close(fd);
	data[len] = '\0';
	*lenp = len;
	return data;

fail:
	(void)close(fd);
	if (data != NULL) {
		OPENSSL_cleanse(data, KEY_FILE_MAX + 1);
		free(data);
	}
	return NULL;
}

/* key_no_passphrase - PEM callback: encrypted keys are not supported */
static int
key_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* key_parse_seed - the RFC 8463 A.1 form: base64 of the 32-byte seed */
static EVP_PKEY *
key_parse_seed(const unsigned char *data, size_t len)
{
	unsigned char raw[96], pub[ED25519_LEN];
	EVP_PKEY *pkey;
	size_t dec, publen = sizeof(pub);

	/* 32: the seed; 64: seed and public key (libsodium's form) */
	if (b64_decode((const char *)data, len, raw, sizeof(raw), &dec) < 0 ||
	    (dec != ED25519_LEN && dec != 2 * ED25519_LEN)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return NULL;
	}
	pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, raw,
	    ED25519_LEN);
	if (pkey != NULL && dec == 2 * ED25519_LEN &&
	    (EVP_PKEY_get_raw_public_key(pkey, pub, &publen) != 1 ||
	    publen != ED25519_LEN ||
	    memcmp(pub, raw + ED25519_LEN, ED25519_LEN) != 0)) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	return pkey;
}

/* key_parse - PEM (PKCS#8 or traditional), bare ed25519 seed, or DER */
static EVP_PKEY *
key_parse(const unsigned char *data, size_t len)
{
	const unsigned char *p;
	EVP_PKEY *pkey = NULL;
	BIO *bio;

	if (strstr((const char *)data, "-----BEGIN") != NULL) {
		if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL)
			return NULL;
		pkey = PEM_read_bio_PrivateKey(bio, NULL, key_no_passphrase,
		    NULL);
		BIO_free(bio);
		return pkey;
	}
	if ((pkey = key_parse_seed(data, len)) != NULL)
		return pkey;
	p = data;
	return d2i_AutoPrivateKey(NULL, &p, (long)len);
}

/* dkim_key_pem_new - see key.h */
char *
dkim_key_pem_new(EVP_PKEY *pkey, size_t *lenp)
{
	char *mem, *out = NULL;
	long n;
	BIO *bio;

	if ((bio = BIO_new(BIO_s_mem())) == NULL)
		return NULL;
	if (PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL,
	    NULL) == 1 && (n = BIO_get_mem_data(bio, &mem)) > 0) {
		out = xmalloc((size_t)n + 1);
		memcpy(out, mem, (size_t)n);
		out[n] = '\0';
		*lenp = (size_t)n;
		OPENSSL_cleanse(mem, (size_t)n);
	}
	BIO_free(bio);
	return out;
}

/*
 * key_selftest - sign once at load time.  This proves the key works and
 * makes OpenSSL finish any lazy set-up on the shared EVP_PKEY before
 * several threads use it at once.
 */
static int
key_selftest(EVP_PKEY *pkey, enum conf_alg alg)
{
	unsigned char digest[32], sig[2048];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *pctx = NULL;
	EVP_MD_CTX *mctx = NULL;
	int ok = 0;

	memset(digest, 0x5a, sizeof(digest));
	if ((size_t)EVP_PKEY_size(pkey) > sizeof(sig))
		return 0;
	if (alg == CONF_ALG_RSA_SHA256) {
		if ((pctx = EVP_PKEY_CTX_new(pkey, NULL)) ==
		    NULL)
			return 0;
		ok = EVP_PKEY_sign_init(pctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(pctx, sig, &siglen, digest,
		    sizeof(digest)) == 1;
		EVP_PKEY_CTX_free(pctx);
	} else {
		if ((mctx = EVP_MD_CTX_new()) == NULL)
			return 0;
		ok = EVP_DigestSignInit(mctx, NULL, NULL, NULL, pkey) == 1 &&
		    EVP_DigestSign(mctx, sig, &siglen, digest,
		    sizeof(digest)) == 1;
		EVP_MD_CTX_free(mctx);
	}
	return ok;
}

/* dkim_key_load - read, check and parse a key file */
struct dkim_key *
dkim_key_load(const char *file, enum conf_alg alg, char *err, size_t errlen)
{
	struct dkim_key *k = NULL;
	enum conf_alg found;
	unsigned char *data;
	EVP_PKEY *pkey;
	char reason[160];
	size_t len = 0;
	int bits;

	if ((data = key_read(file, &len, err, errlen)) == NULL)
		return NULL;
	pkey = key_parse(data, len);
	OPENSSL_cleanse(data, len);
	free(data);
	ERR_clear_error();
	if (pkey == NULL)
		return key_err(err, errlen, file, "cannot parse: not a PEM "
		    "private key, a base64 ed25519 seed, or DER (encrypted "
		    "keys are not supported)");

	switch (EVP_PKEY_base_id(pkey)) {
	case EVP_PKEY_RSA:
		found = CONF_ALG_RSA_SHA256;
		break;
	case EVP_PKEY_ED25519:
		found = CONF_ALG_ED25519_SHA256;
		break;
	default:
		EVP_PKEY_free(pkey);
		return key_err(err, errlen, file, "unsupported key type "
		    "(want RSA or ed25519)");
	}
	if (alg != CONF_ALG_ANY && alg != found) {
		(void)snprintf(reason, sizeof(reason),
		    "wrong algorithm: file holds %s key, declared %s",
		    found == CONF_ALG_RSA_SHA256 ? "an RSA" : "an ed25519",
		    conf_alg_name(alg));
		EVP_PKEY_free(pkey);
		return key_err(err, errlen, file, reason);
	}
	bits = found == CONF_ALG_RSA_SHA256 ? EVP_PKEY_bits(pkey) : 256;
	if (found == CONF_ALG_RSA_SHA256 && bits < KEY_MIN_RSA_BITS) {
		(void)snprintf(reason, sizeof(reason),
		    "RSA key too small: %d bits, need at least %d", bits,
		    KEY_MIN_RSA_BITS);
		EVP_PKEY_free(pkey);
		return key_err(err, errlen, file, reason);
	}
	if (!key_selftest(pkey, found)) {
		ERR_clear_error();
		EVP_PKEY_free(pkey);
		return key_err(err, errlen, file, "test signature failed");
	}

	k = xcalloc(1, sizeof(*k));
	k->file = xstrdup(file);
	k->alg = found;
	k->bits = (unsigned int)bits;
	k->pkey = pkey;
	/* the PEM PKCS#8 text handed to libopendkim */
	if ((k->blob = (unsigned char *)dkim_key_pem_new(pkey,
	    &k->bloblen)) == NULL) {
		ERR_clear_error();
		dkim_key_free(k);
		return key_err(err, errlen, file, "cannot encode as PEM");
	}
	return k;
}

/* dkim_key_free - release a key, wiping its PEM copy */
struct dkim_key *
dkim_key_free(struct dkim_key *k)
{
	if (k == NULL)
		return NULL;
	if (k->blob != NULL) {
		OPENSSL_cleanse(k->blob, k->bloblen);
		free(k->blob);
	}
	EVP_PKEY_free(k->pkey);
	free(k->file);
	free(k);
	return NULL;
}

/* key_b64 - base64 of len bytes, as a new string */
static char *
key_b64(const unsigned char *p, size_t len)
{
	struct buf b = BUF_INIT;

	b64_encode(&b, p, len);
	return buf_steal(&b);
}

/* dkim_key_public_b64 - the p= of the key's record */
char *
dkim_key_public_b64(const struct dkim_key *k)
{
	unsigned char raw[ED25519_LEN], *der = NULL;
	size_t rawlen = sizeof(raw);
	char *out;
	int n;

	if (k == NULL || k->pkey == NULL)
		return NULL;
	if (k->alg == CONF_ALG_ED25519_SHA256) {
		if (EVP_PKEY_get_raw_public_key(k->pkey, raw, &rawlen) != 1 ||
		    rawlen != ED25519_LEN)
			return NULL;
		return key_b64(raw, rawlen);
	}
	/* RSA: the SubjectPublicKeyInfo DER, as RFC 6376 3.6.1 wants */
	if ((n = i2d_PUBKEY(k->pkey, &der)) <= 0)
		return NULL;
	out = key_b64(der, (size_t)n);
	OPENSSL_free(der);
	return out;
}
