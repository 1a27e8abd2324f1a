/*
 * b64 - see b64.h.  OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock do the
 * work; this adds the whitespace, padding and bounds rules.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "dkim/b64.h"
#include "util/xmalloc.h"

/* b64_encode - base64 of len bytes appended to out */
void
b64_encode(struct buf *out, const unsigned char *p, size_t len)
{
	size_t need = 4 * ((len + 2) / 3);

	buf_reserve(out, need + 1);
	(void)EVP_EncodeBlock((unsigned char *)out->data + out->len, p,
	    (int)len);
	out->len += need;
	out->data[out->len] = '\0';
}

/* b64_decode - whitespace-free base64 of in into out, bounded */
int
b64_decode(const char *in, size_t len, unsigned char *out, size_t outcap,
    size_t *outlen)
{
	unsigned char *clean;
	size_t i, n = 0;
	int dec = -1;

	clean = xmalloc(len + 1);
	for (i = 0; i < len; i++)
		if (in[i] != ' ' && in[i] != '\t' && in[i] != '\r' &&
		    in[i] != '\n')
			clean[n++] = (unsigned char)in[i];
	if (n > 0 && n % 4 == 0 && n / 4 * 3 <= outcap &&
	    (dec = EVP_DecodeBlock(out, clean, (int)n)) >= 0) {
		/* EVP_DecodeBlock counts the padding bytes as data */
		if (clean[n - 1] == '=')
			dec--;
		if (clean[n - 2] == '=')
			dec--;
		*outlen = (size_t)dec;
	}
	OPENSSL_cleanse(clean, len + 1);
	free(clean);
	return dec < 0 ? -1 : 0;
}
