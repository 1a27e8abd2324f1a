/*
 * dkim/sign_native - the native engine: canonicalization (RFC 6376 3.4)
 * and hashing here, signatures by OpenSSL with the EVP_PKEY parsed once
 * at key load.  See sign_impl.h for the engine interface.
 *
 * libopendkim is the reference: this engine reproduces what libopendkim
 * 2.11 does, byte for byte, including where it departs from the letter
 * of the RFC (tests/unit/check_dkim_sign.c compares the two):
 *  - h= lists the signed fields in message order, with the names as the
 *    message spells them, then the oversigned names as configured; a
 *    name used n times is hashed bottom-up (RFC 6376 5.4.2).
 *  - Relaxed header canonicalization skips SP, HT, CR, LF after the
 *    colon, then folds every run of isspace() into one SP.
 *  - The body arrives CRLF-normalized and ending in CRLF (sign.c sees
 *    to it), where libopendkim's own handling of a last line without
 *    CRLF departs from the RFC; on such input the two agree.
 *  - The header is folded at 75 columns the way dkim_getsighdr_d() does
 *    it, and the field hashed is folded as libopendkim folds it with an
 *    empty b= (see sign_fix_bplacement() in sign_impl.h for ed25519).
 *
 * Memory: the body is hashed as it streams; header fields are kept until
 * end of header, then only their hash state.  The body
 * hash is computed once for all requests (they share c=).
 */
#include "config.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "dkim/b64.h"
#include "dkim/sign_impl.h"
#include "util/xmalloc.h"

#define HSINK_SIZE	4096
#define HLIST_MAX	4095	/* libopendkim copies h= into 4096 bytes */

/* A digest fed through a small buffer: canonicalizers emit byte-wise. */
struct hsink {
	EVP_MD_CTX *md;
	size_t len;
	unsigned char buf[HSINK_SIZE];
};

struct field {
	size_t off;		/* into native.fields */
	size_t len;
	size_t namelen;
	int used;
};

struct native {
	const struct sign_msg *msg;

	/* header fields, until end of header */
	struct buf fields;
	struct field *field;
	size_t nfield;
	size_t afield;

	/* after end of header */
	EVP_MD_CTX *hdr;	/* canonicalized signed fields */
	struct buf hlist;	/* h= value */

	/* body */
	struct hsink body;
	size_t blanks;		/* empty lines not yet hashed */
	int content;		/* this line has content (not empty) */
	int state;		/* relaxed: 0 line start, 1 in WSP, 3 word */
	unsigned long long wrote;	/* simple: bytes hashed */
};

enum { R_START = 0, R_WSP = 1, R_WORD = 3 };

/*
 * SHA-256 as fetched once from the default provider: EVP_sha256() makes
 * every EVP_DigestInit_ex() fetch it again (a locked lookup in OpenSSL
 * 3's method store, twice per message).  Never freed; EVP_sha256() if
 * the fetch fails.
 */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static const EVP_MD *sha256_md;

static void
sha256_fetch(void)
{
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);

	if (md == NULL)
		ERR_clear_error();
	sha256_md = md != NULL ? md : EVP_sha256();
}

/* sha256 - the SHA-256 to initialize digests with */
static const EVP_MD *
sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md;
}

/* hsink_init - a SHA-256 sink */
static int
hsink_init(struct hsink *h)
{
	h->len = 0;
	if ((h->md = EVP_MD_CTX_new()) == NULL)
		return -1;
	return EVP_DigestInit_ex(h->md, sha256(), NULL) == 1 ? 0 : -1;
}

/* hsink_flush - hash what the buffer holds */
static void
hsink_flush(struct hsink *h)
{
	if (h->len > 0)
		(void)EVP_DigestUpdate(h->md, h->buf, h->len);
	h->len = 0;
}

/* hsink_put - buffer bytes for the hash (large runs go straight) */
static void
hsink_put(struct hsink *h, const void *p, size_t n)
{
	if (h->len + n > sizeof(h->buf)) {
		hsink_flush(h);
		if (n > sizeof(h->buf)) {
			(void)EVP_DigestUpdate(h->md, p, n);
			return;
		}
	}
	memcpy(h->buf + h->len, p, n);
	h->len += n;
}

/* native_put - canonicalized body bytes to the hash */
static void
native_put(struct native *n, const void *p, size_t len)
{
	hsink_put(&n->body, p, len);
	n->wrote += len;
}

/* native_blanks - hash the empty lines held back so far */
static void
native_blanks(struct native *n)
{
	for (; n->blanks > 0; n->blanks--)
		native_put(n, "\r\n", 2);
}

/*
 * native_simple - simple body (RFC 6376 3.4.3): empty lines at the end
 * are dropped, so they are counted and hashed only when a line with
 * content follows.  Input is CRLF-normalized; CR is part of CRLF.
 */
static void
native_simple(struct native *n, const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len, *q;

	while (p < end) {
		if (*p == '\r') {
			p++;
			continue;
		}
		if (*p == '\n') {
			if (n->content)
				native_put(n, "\r\n", 2);
			else
				n->blanks++;
			n->content = 0;
			p++;
			continue;
		}
		for (q = p; q < end && *q != '\r' && *q != '\n'; q++)
			;
		if (!n->content)
			native_blanks(n);
		n->content = 1;
		native_put(n, p, (size_t)(q - p));
		p = q;
	}
}

/* a byte of a word in relaxed body canonicalization */
#define RELAXED_WORD(c)	((c) != ' ' && (c) != '\t' && (c) != '\r' && \
	(c) != '\n')

/*
 * native_relaxed - relaxed body (RFC 6376 3.4.4), as libopendkim's state
 * machine does it: WSP runs become one SP, WSP at line end goes, empty
 * lines are held back until content follows.
 */
static void
native_relaxed(struct native *n, const unsigned char *p, size_t len)
{
	const unsigned char *end = p + len, *q;

	while (p < end) {
		if (*p == ' ' || *p == '\t') {
			n->state = R_WSP;
			p++;
		} else if (*p == '\r') {
			p++;
		} else if (*p == '\n') {
			if (!n->content)
				n->blanks++;
			else
				native_put(n, "\r\n", 2);
			n->content = 0;
			n->state = R_START;
			p++;
		} else {
			/* a run of word bytes, with the single SPs between
			 * them (relaxed keeps those as they are), hashed at
			 * once: one call per line of ordinary text */
			for (q = p + 1; q < end; q++)
				if (!RELAXED_WORD(*q) && !(*q == ' ' &&
				    q + 1 < end && RELAXED_WORD(q[1])))
					break;
			if (n->state != R_WORD)
				native_blanks(n);
			/* WSP inside the line: one SP (leading WSP too) */
			if (n->state == R_WSP)
				native_put(n, " ", 1);
			native_put(n, p, (size_t)(q - p));
			n->content = 1;
			n->state = R_WORD;
			p = q;
		}
	}
}

/* native_start - state for one message */
static void *
native_start(const struct sign_msg *msg, char *err, size_t errlen)
{
	struct native *n;

	n = xcalloc(1, sizeof(*n));
	n->msg = msg;
	if (hsink_init(&n->body) == -1 ||
	    (n->hdr = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(n->hdr, sha256(), NULL) != 1) {
		(void)snprintf(err, errlen, "cannot set up SHA-256");
		EVP_MD_CTX_free(n->body.md);
		EVP_MD_CTX_free(n->hdr);
		free(n);
		return NULL;
	}
	return n;
}

/* native_header - keep a field until end of header */
static int
native_header(void *v, const char *text, size_t len, size_t namelen,
    char *err, size_t errlen)
{
	struct native *n = v;
	struct field *f;

	(void)err;
	(void)errlen;
	if (n->nfield == n->afield) {
		n->afield = n->afield ? 2 * n->afield : 32;
		n->field = xreallocarray(n->field, n->afield,
		    sizeof(*n->field));
	}
	f = &n->field[n->nfield++];
	f->off = n->fields.len;
	f->len = len;
	f->namelen = namelen;
	f->used = 0;
	buf_append(&n->fields, text, len);
	return 0;
}

/* native_glob - case-insensitive match with '*' for any run */
static int
native_glob(const char *pat, const char *s, size_t slen)
{
	size_t i;

	for (; *pat != '\0'; pat++) {
		if (*pat == '*') {
			for (i = 0; i <= slen; i++)
				if (native_glob(pat + 1, s + i, slen - i))
					return 1;
			return 0;
		}
		if (slen == 0 || tolower((unsigned char)*pat) !=
		    tolower((unsigned char)*s))
			return 0;
		s++;
		slen--;
	}
	return slen == 0;
}

/* native_signs - is this field name one we sign? From always is. */
static int
native_signs(const struct sign_msg *msg, const char *name, size_t len)
{
	size_t i;

	if (len == 4 && strncasecmp(name, "from", 4) == 0)
		return 1;
	for (i = 0; i < msg->nsign; i++)
		if (native_glob(msg->sign[i], name, len))
			return 1;
	return 0;
}

/* native_canon_header - one field, canonicalized, with CRLF */
static void
native_canon_header(EVP_MD_CTX *md, enum conf_canon canon, const char *t,
    size_t len, int crlf)
{
	unsigned char out[512];
	size_t i, o = 0;
	int space = 0;

	if (canon == CONF_CANON_SIMPLE) {
		(void)EVP_DigestUpdate(md, t, len);
		if (crlf)
			(void)EVP_DigestUpdate(md, "\r\n", 2);
		return;
	}
	/* name lowercased, without spaces before the colon, and the colon */
	for (i = 0; i < len; i++) {
		if (t[i] == ' ')
			continue;
		if (o == sizeof(out)) {
			(void)EVP_DigestUpdate(md, out, o);
			o = 0;
		}
		out[o++] = (unsigned char)tolower((unsigned char)t[i]);
		if (t[i] == ':')
			break;
	}
	i++;
	/* value: SP HT CR LF skipped first, then isspace() runs -> SP */
	for (; i < len && (t[i] == ' ' || t[i] == '\t' ||
	    t[i] == '\r' || t[i] == '\n'); i++)
		;
	for (; i < len; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c < 0x80 && isspace(c)) {
			space = 1;
			continue;
		}
		if (o + 2 > sizeof(out)) {
			(void)EVP_DigestUpdate(md, out, o);
			o = 0;
		}
		if (space)
			out[o++] = ' ';
		space = 0;
		out[o++] = c;
	}
	if (o > 0)
		(void)EVP_DigestUpdate(md, out, o);
	if (crlf)
		(void)EVP_DigestUpdate(md, "\r\n", 2);
}

/*
 * native_eoh - choose the fields to sign and hash them.  As libopendkim:
 * list the names of the fields to sign in message order (capped as its
 * 4096-byte copy caps it), then for each name in that list take the last
 * field of that name not yet taken.
 */
static int
native_eoh(void *v, char *err, size_t errlen)
{
	struct native *n = v;
	struct buf list = BUF_INIT;
	const char *tok, *name;
	size_t i, j, toklen;
	struct field *f, *pick;

	for (i = 0; i < n->nfield; i++) {
		f = &n->field[i];
		name = n->fields.data + f->off;
		if (!native_signs(n->msg, name, f->namelen))
			continue;
		if (list.len > 0)
			buf_appendc(&list, ':');
		buf_append(&list, name, f->namelen);
	}
	if (list.len > HLIST_MAX)
		buf_truncate(&list, HLIST_MAX);

	for (tok = list.data; tok != NULL && *tok != '\0'; tok += toklen) {
		if (*tok == ':') {
			toklen = 1;
			continue;
		}
		for (toklen = 0; tok[toklen] != '\0' && tok[toklen] != ':';
		    toklen++)
			;
		pick = NULL;
		for (j = 0; j < n->nfield; j++) {
			f = &n->field[j];
			if (!f->used && f->namelen == toklen &&
			    strncasecmp(n->fields.data + f->off, tok,
			    toklen) == 0)
				pick = f;
		}
		if (pick == NULL)
			continue;
		pick->used = 1;
		native_canon_header(n->hdr, n->msg->canon_header,
		    n->fields.data + pick->off, pick->len, 1);
	}
	buf_free(&list);

	/* h=: the signed fields in message order, then the oversigned */
	for (i = 0; i < n->nfield; i++) {
		f = &n->field[i];
		if (!f->used)
			continue;
		if (n->hlist.len > 0)
			buf_appendc(&n->hlist, ':');
		buf_append(&n->hlist, n->fields.data + f->off, f->namelen);
	}
	for (i = 0; i < n->msg->noversign; i++) {
		buf_appendc(&n->hlist, ':');
		buf_appends(&n->hlist, n->msg->oversign[i]);
	}
	if (n->hlist.len == 0) {
		(void)snprintf(err, errlen, "no header field to sign");
		return -1;
	}

	buf_free(&n->fields);
	free(n->field);
	n->field = NULL;
	n->nfield = n->afield = 0;
	return 0;
}

/* native_body - canonicalize and hash a normalized body chunk */
static int
native_body(void *v, const unsigned char *p, size_t len, char *err,
    size_t errlen)
{
	struct native *n = v;

	(void)err;
	(void)errlen;
	if (n->msg->canon_body == CONF_CANON_SIMPLE)
		native_simple(n, p, len);
	else
		native_relaxed(n, p, len);
	return 0;
}

/* native_body_final - the body hash */
static int
native_body_final(struct native *n, unsigned char *out)
{
	unsigned int len = 0;

	/* a last line without CRLF gets one (sign.c makes this moot) */
	if (n->content)
		native_put(n, "\r\n", 2);
	/* "simple" hashes at least a CRLF */
	if (n->msg->canon_body == CONF_CANON_SIMPLE && n->wrote == 0)
		native_put(n, "\r\n", 2);
	hsink_flush(&n->body);
	return EVP_DigestFinal_ex(n->body.md, out, &len) == 1 && len == 32 ?
	    0 : -1;
}

/* One tag of the header, "name=value;" (b= has no ';'). */
struct tag {
	const char *which;
	const char *pv;
};

/*
 * native_fold_h - h= on a new line, names wrapping at the margin; the
 * length of the last line
 */
static size_t
native_fold_h(struct buf *out, const char *pv)
{
	const char *x, *t;
	size_t len, tl;

	buf_append(out, "\r\n\t", 3);
	len = 8;
	/* first piece as is, then each name may wrap */
	for (t = pv, x = pv; ; t = x) {
		while (*t == ':')
			t++;
		if (*t == '\0')
			break;
		for (x = t; *x != '\0' && *x != ':'; x++)
			;
		tl = (size_t)(x - t);
		if (t == pv) {
			buf_append(out, t, tl);
			len += tl;
		} else if (len + tl + 1 > SIGN_MARGIN) {
			buf_append(out, ":\r\n\t ", 5);
			buf_append(out, t, tl);
			len = 9 + tl;
		} else {
			buf_appendc(out, ':');
			buf_append(out, t, tl);
			len += 1 + tl;
		}
	}
	return len;
}

/*
 * native_fold_b - b= or bh= (tag name of wl bytes) on a new line, the
 * base64 cut at the margin; the length of the last line
 */
static size_t
native_fold_b(struct buf *out, const char *pv, size_t pvlen, size_t wl)
{
	const char *x, *y;
	size_t len;

	buf_append(out, "\r\n\t", 3);
	len = 8;
	buf_append(out, pv, wl + 1);
	len += wl + 1;
	x = pv + wl + 1;
	y = pv + pvlen;
	if (x < y) {
		buf_appendc(out, *x++);
	}
	len++;
	while (x < y) {
		size_t take;

		if (len == SIGN_MARGIN) {
			buf_append(out, "\r\n\t ", 4);
			len = 9;
		}
		take = len < SIGN_MARGIN ? SIGN_MARGIN - len :
		    (size_t)(y - x);
		if (take > (size_t)(y - x))
			take = (size_t)(y - x);
		buf_append(out, x, take);
		x += take;
		len += take;
	}
	return len;
}

/*
 * native_layout - fold the tags the way dkim_getsighdr_d() does: a tag
 * that would pass the margin starts a new line ("\r\n\t", counted as 8
 * columns); h= breaks at colons and b=/bh= anywhere, continuing after
 * "\r\n\t " (9); an RSA b= always starts a new line.
 */
static void
native_layout(struct buf *out, const struct tag *tags, size_t ntag,
    const struct dkim_key *key)
{
	size_t i, len = SIGN_INITIAL, pvlen, wl, siglen;
	const char *pv;
	int force;

	for (i = 0; i < ntag; i++) {
		pv = tags[i].pv;
		pvlen = strlen(pv);
		wl = strlen(tags[i].which);
		force = 0;
		if (key->alg == CONF_ALG_RSA_SHA256 &&
		    strcmp(tags[i].which, "b") == 0) {
			siglen = 4 * ((key->bits / 8 + 2) / 3);
			force = len + wl + siglen + 1 >= SIGN_MARGIN;
		}
		if (i == 0) {
			buf_append(out, pv, pvlen);
			len += pvlen;
		} else if (!force && len + pvlen <= SIGN_MARGIN) {
			buf_appendc(out, ' ');
			buf_append(out, pv, pvlen);
			len += 1 + pvlen;
		} else if (strcmp(tags[i].which, "h") == 0) {
			len = native_fold_h(out, pv);
		} else if (strcmp(tags[i].which, "b") == 0 ||
		    strcmp(tags[i].which, "bh") == 0) {
			len = native_fold_b(out, pv, pvlen, wl);
		} else {
			buf_append(out, "\r\n\t", 3);
			buf_append(out, pv, pvlen);
			len = 8 + pvlen;
		}
	}
}

/* native_sign - sign the 32-byte header digest; base64 into out */
static int
native_sign(const struct dkim_key *key, const unsigned char *digest,
    struct buf *out)
{
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_PKEY_CTX *pctx;
	EVP_MD_CTX *mctx;
	int ok;

	if ((size_t)EVP_PKEY_size(key->pkey) > sizeof(sig))
		return -1;
	if (key->alg == CONF_ALG_RSA_SHA256) {
		/* RSASSA-PKCS1-v1_5 over SHA-256, as RSA_sign(NID_sha256) */
		if ((pctx = EVP_PKEY_CTX_new(key->pkey, NULL)) == NULL)
			return -1;
		ok = EVP_PKEY_sign_init(pctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(pctx,
		    RSA_PKCS1_PADDING) == 1 &&
		    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) == 1 &&
		    EVP_PKEY_sign(pctx, sig, &siglen, digest, 32) == 1;
		EVP_PKEY_CTX_free(pctx);
	} else {
		/* RFC 8463: PureEdDSA over the SHA-256 of the headers */
		if ((mctx = EVP_MD_CTX_new()) == NULL)
			return -1;
		ok = EVP_DigestSignInit(mctx, NULL, NULL, NULL,
		    key->pkey) == 1 &&
		    EVP_DigestSign(mctx, sig, &siglen, digest, 32) == 1;
		EVP_MD_CTX_free(mctx);
	}
	if (!ok) {
		ERR_clear_error();
		return -1;
	}
	b64_encode(out, sig, siglen);
	return 0;
}

/*
 * native_tags - the nine tags of request r into t (emptied first) and
 * tags, b= still empty
 */
static void
native_tags(const struct native *n, const struct dkim_sign_req *r,
    const char *bh, struct buf *t, struct tag *tags)
{
	const struct sign_msg *msg = n->msg;
	size_t k;

	for (k = 0; k < 9; k++)
		buf_truncate(&t[k], 0);
	buf_appends(&t[0], "v=1;");
	buf_appendf(&t[1], "a=%s;", conf_alg_name(r->key->alg));
	buf_appendf(&t[2], "c=%s/%s;",
	    msg->canon_header == CONF_CANON_RELAXED ? "relaxed" :
	    "simple", msg->canon_body == CONF_CANON_RELAXED ?
	    "relaxed" : "simple");
	buf_appendf(&t[3], "d=%s;", r->domain);
	buf_appendf(&t[4], "s=%s;", r->selector);
	buf_appendf(&t[5], "t=%llu;", (unsigned long long)msg->now);
	buf_appendf(&t[6], "bh=%s;", bh);
	buf_appendf(&t[7], "h=%s;", n->hlist.data);
	buf_appends(&t[8], "b=");
	for (k = 0; k < 9; k++)
		tags[k].pv = t[k].data;
	tags[0].which = "v";
	tags[1].which = "a";
	tags[2].which = "c";
	tags[3].which = "d";
	tags[4].which = "s";
	tags[5].which = "t";
	tags[6].which = "bh";
	tags[7].which = "h";
	tags[8].which = "b";
}

/* native_finish - bh=, then per request: hash, sign, fold */
static int
native_finish(void *v, struct buf *values, char *err, size_t errlen)
{
	struct native *n = v;
	const struct sign_msg *msg = n->msg;
	const struct dkim_sign_req *r;
	struct buf bh = BUF_INIT, t[9], hashed = BUF_INIT, sig = BUF_INIT;
	unsigned char digest[32];
	unsigned int dlen;
	struct tag tags[9];
	EVP_MD_CTX *md = NULL;
	size_t i, k;
	int rc = -1;

	if (native_body_final(n, digest) == -1) {
		(void)snprintf(err, errlen, "body hash failed");
		return -1;
	}
	b64_encode(&bh, digest, sizeof(digest));
	memset(t, 0, sizeof(t));
	if ((md = EVP_MD_CTX_new()) == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		goto done;
	}

	for (i = 0; i < msg->nreq; i++) {
		r = &msg->reqs[i];
		native_tags(n, r, bh.data, t, tags);

		/* the field as hashed: b= empty, folded the same way */
		buf_truncate(&hashed, 0);
		buf_appends(&hashed, "DKIM-Signature: ");
		native_layout(&hashed, tags, 9, r->key);
		if (EVP_MD_CTX_copy_ex(md, n->hdr) != 1) {
			(void)snprintf(err, errlen, "hash copy failed");
			goto done;
		}
		native_canon_header(md, msg->canon_header, hashed.data,
		    hashed.len, 0);
		if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32) {
			(void)snprintf(err, errlen, "header hash failed");
			goto done;
		}

		buf_truncate(&sig, 0);
		if (native_sign(r->key, digest, &sig) == -1) {
			(void)snprintf(err, errlen, "%s: signing failed",
			    r->key->file);
			goto done;
		}
		buf_appends(&t[8], sig.data);
		tags[8].pv = t[8].data;
		native_layout(&values[i], tags, 9, r->key);
	}
	rc = 0;
done:
	EVP_MD_CTX_free(md);
	for (k = 0; k < 9; k++)
		buf_free(&t[k]);
	buf_free(&bh);
	buf_free(&hashed);
	buf_free(&sig);
	return rc;
}

/* native_free - release the engine state */
static void
native_free(void *v)
{
	struct native *n = v;

	if (n == NULL)
		return;
	EVP_MD_CTX_free(n->body.md);
	EVP_MD_CTX_free(n->hdr);
	buf_free(&n->fields);
	buf_free(&n->hlist);
	free(n->field);
	free(n);
}

const struct sign_engine sign_engine_native = {
	"native",
	native_start,
	native_header,
	native_eoh,
	native_body,
	native_finish,
	native_free,
};
