/*
 * b64 - base64 (RFC 4648 alphabet, padded, no line breaks): the one copy
 * behind the signatures' b= and bh=, the key records' p= and the base64
 * forms of key files.
 *
 *	struct buf b = BUF_INIT;
 *	b64_encode(&b, digest, 32);		// b.data: 44 chars + NUL
 *	if (b64_decode(p, strlen(p), raw, sizeof(raw), &n) < 0)
 *		... not base64, or more than sizeof(raw) bytes ...
 *
 * Nothing here allocates for the caller; decode's scratch copy of its
 * input is wiped before it is freed, since key material passes through.
 */
#ifndef OUTPOST_DKIM_B64_H
#define OUTPOST_DKIM_B64_H

#include <stddef.h>

#include "util/buf.h"

/* b64_encode - base64 of len bytes, appended to out (NUL-terminated) */
void b64_encode(struct buf *out, const unsigned char *p, size_t len);

/* b64_decode - decode len characters of in, skipping SP, HT, CR and LF,
 * into out (at most outcap bytes); *outlen is the byte count.  -1 when
 * in is empty, not base64 (bad character, length, padding) or decodes
 * to more than outcap bytes. */
int b64_decode(const char *in, size_t len, unsigned char *out,
    size_t outcap, size_t *outlen);

#endif
